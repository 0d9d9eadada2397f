//! Signal helpers shared by the integration tests: tones, tone fitting, SNR, alignment.
#![allow(dead_code)] // each test binary uses a different subset

use std::f64::consts::PI;

/// `len` samples of a sine of `freq` Hz at `rate` Hz, peak `amp`.
pub fn tone(freq: f64, rate: u32, amp: f64, len: usize) -> Vec<i16> {
    (0..len)
        .map(|n| (amp * (2.0 * PI * freq * n as f64 / f64::from(rate)).sin()).round() as i16)
        .collect()
}

/// Amplitude of `freq` in `x` and the RMS of what is left once that sine is removed.
/// Exact (the sine and cosine are orthogonal) when `x` spans whole cycles: integer Hz over
/// exactly one second does.
pub fn fit_tone(x: &[i16], freq: f64, rate: u32) -> (f64, f64) {
    let n = x.len() as f64;
    let w = 2.0 * PI * freq / f64::from(rate);
    let (mut c, mut s) = (0.0, 0.0);
    for (i, &v) in x.iter().enumerate() {
        c += f64::from(v) * (w * i as f64).cos();
        s += f64::from(v) * (w * i as f64).sin();
    }
    let (a, b) = (2.0 * c / n, 2.0 * s / n);
    let residual: f64 = x
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let e = f64::from(v) - a * (w * i as f64).cos() - b * (w * i as f64).sin();
            e * e
        })
        .sum();
    ((a * a + b * b).sqrt(), (residual / n).sqrt())
}

pub fn rms(x: &[i16]) -> f64 {
    (x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
}

pub fn db(ratio: f64) -> f64 {
    20.0 * ratio.max(1e-12).log10()
}

/// SNR in dB of `out` against `reference` sample by sample.
pub fn snr_db(reference: &[i16], out: &[i16]) -> f64 {
    let (mut sig, mut err) = (0.0, 0.0);
    for (&r, &o) in reference.iter().zip(out) {
        sig += f64::from(r).powi(2);
        err += (f64::from(r) - f64::from(o)).powi(2);
    }
    10.0 * (sig / err.max(1e-12)).log10()
}

/// The lag in `0..max_lag` at which `out[lag..]` best matches `reference` (normalised
/// cross-correlation), and that correlation.
pub fn best_lag(reference: &[i16], out: &[i16], max_lag: usize) -> (usize, f64) {
    let mut best = (0, f64::MIN);
    for lag in 0..max_lag {
        let n = reference.len().min(out.len().saturating_sub(lag));
        let (mut xy, mut xx, mut yy) = (0.0, 0.0, 0.0);
        for i in 0..n {
            let (x, y) = (f64::from(reference[i]), f64::from(out[i + lag]));
            xy += x * y;
            xx += x * x;
            yy += y * y;
        }
        let r = xy / (xx * yy).sqrt().max(1e-12);
        if r > best.1 {
            best = (lag, r);
        }
    }
    best
}

/// Reads a 16-bit mono PCM WAV fixture (canonical 44-byte header, as SoX writes it).
pub fn read_wav_fixture(name: &str) -> (u32, Vec<i16>) {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/audio")
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[0..4], b"RIFF");
    assert_eq!(&bytes[8..12], b"WAVE");
    let rate = u32::from_le_bytes([bytes[24], bytes[25], bytes[26], bytes[27]]);
    // Walk the chunks to "data" rather than trusting a fixed offset.
    let mut pos = 12;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let len = u32::from_le_bytes([
            bytes[pos + 4],
            bytes[pos + 5],
            bytes[pos + 6],
            bytes[pos + 7],
        ]) as usize;
        if id == b"data" {
            let data = &bytes[pos + 8..(pos + 8 + len).min(bytes.len())];
            let pcm = data
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect();
            return (rate, pcm);
        }
        pos += 8 + len + (len & 1);
    }
    panic!("{}: no data chunk", path.display());
}
