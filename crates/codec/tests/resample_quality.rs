//! Resampler quality, pass/fail on measured signal figures (never on time): passband ripple,
//! image and alias rejection >= 70 dB, round-trip SNR, and seamless 20 ms chunking.

mod common;

use codec::Resampler;
use common::{db, fit_tone, rms, snr_db, tone};

const AMP: f64 = 16_000.0;

/// Runs `input` through a fresh `from -> to` resampler in 20 ms chunks.
fn run_chunked(from: u32, to: u32, input: &[i16]) -> Vec<i16> {
    let mut r = Resampler::new(from, to).unwrap();
    let chunk = from as usize / 50;
    let mut out = Vec::new();
    let mut buf = vec![0i16; r.output_len(chunk)];
    for piece in input.chunks(chunk) {
        let n = r.process(piece, &mut buf).unwrap();
        out.extend_from_slice(&buf[..n]);
    }
    out
}

/// Tone of `freq` Hz through `from -> to`; returns (gain in dB, rest relative to the input
/// tone in dB). Above the lower Nyquist frequency the whole output counts as rest (alias).
fn tone_through(from: u32, to: u32, freq: f64) -> (f64, f64) {
    let input = tone(freq, from, AMP, 2 * from as usize);
    let out = run_chunked(from, to, &input);
    // One second after the first half second: the filter has settled, whole cycles.
    let window = &out[to as usize / 2..to as usize / 2 + to as usize];
    let tone_rms = AMP / 2f64.sqrt();
    if freq < f64::from(from.min(to)) / 2.0 {
        let (amp, rest) = fit_tone(window, freq, to);
        (db(amp / AMP), db(rest / tone_rms))
    } else {
        (f64::NEG_INFINITY, db(rms(window) / tone_rms))
    }
}

/// (from, to, highest passband frequency, first frequency that must be rejected)
const PAIRS: [(u32, u32, f64, f64); 6] = [
    (8_000, 24_000, 3_400.0, 4_600.0),
    (24_000, 8_000, 3_400.0, 4_600.0),
    (16_000, 24_000, 7_000.0, 9_000.0),
    (24_000, 16_000, 7_000.0, 9_000.0),
    (24_000, 48_000, 10_000.0, 14_000.0),
    (48_000, 24_000, 10_000.0, 14_000.0),
];

#[test]
fn passband_ripple_below_0_1_db() {
    for (from, to, pass, _) in PAIRS {
        let gains: Vec<f64> = (1..=34)
            .map(|i| pass * f64::from(i) / 34.0)
            .map(|f| f.round())
            .map(|f| tone_through(from, to, f).0)
            .collect();
        let max = gains.iter().cloned().fold(f64::MIN, f64::max);
        let min = gains.iter().cloned().fold(f64::MAX, f64::min);
        println!("{from} -> {to}: passband gain {min:+.4} .. {max:+.4} dB up to {pass} Hz");
        assert!(
            max - min < 0.1,
            "{from} -> {to}: ripple {:.3} dB",
            max - min
        );
        assert!(
            max.abs() < 0.1 && min.abs() < 0.1,
            "{from} -> {to}: gain off 0 dB"
        );
    }
}

#[test]
fn images_of_upsampling_at_least_70_db_down() {
    for (from, to, pass, _) in PAIRS.into_iter().filter(|p| p.1 > p.0) {
        for f in [300.0, 1_000.0, pass / 2.0, pass] {
            let (_, rest) = tone_through(from, to, f.round());
            println!("{from} -> {to}: {f} Hz tone, images and noise {rest:.1} dB");
            assert!(rest <= -70.0, "{from} -> {to} at {f} Hz: {rest:.1} dB");
        }
    }
}

#[test]
fn aliases_of_downsampling_at_least_70_db_down() {
    for (from, to, _, stop) in PAIRS.into_iter().filter(|p| p.1 < p.0) {
        let nyquist_in = f64::from(from) / 2.0;
        for f in [stop, (stop + nyquist_in) / 2.0, nyquist_in - 100.0] {
            let (_, rest) = tone_through(from, to, f.round());
            // -240 dB means every output sample rounded to 0 (residue below 0.5 LSB).
            println!("{from} -> {to}: {f} Hz tone aliases at {rest:.1} dB");
            assert!(rest <= -70.0, "{from} -> {to} at {f} Hz: {rest:.1} dB");
        }
        // Below the stopband but inside the passband the tone itself is clean.
        let (_, rest) = tone_through(from, to, 1_000.0);
        assert!(
            rest <= -70.0,
            "{from} -> {to} 1 kHz distortion {rest:.1} dB"
        );
    }
}

#[test]
fn round_trip_8k_24k_8k_1_khz_snr_at_least_60_db() {
    let input = tone(1_000.0, 8_000, AMP, 16_000);
    let up = run_chunked(8_000, 24_000, &input);
    let back = run_chunked(24_000, 8_000, &up);
    let delay = Resampler::new(8_000, 24_000).unwrap().delay_samples() / 3
        + Resampler::new(24_000, 8_000).unwrap().delay_samples();
    // Skip the first 100 ms while the filters fill.
    let skip = 800;
    let snr = snr_db(&input[skip..input.len() - delay], &back[skip + delay..]);
    println!("8k -> 24k -> 8k: 1 kHz SNR {snr:.1} dB after {delay} samples (8 kHz) of delay");
    assert!(snr >= 60.0, "SNR {snr:.1} dB");
}

#[test]
fn chunked_20_ms_equals_all_at_once() {
    for (from, to, _, _) in PAIRS {
        // Tone plus a deterministic pseudo-random signal: every tap matters.
        let mut seed = 0x1234_5678u32;
        let input: Vec<i16> = tone(440.0, from, 8_000.0, from as usize / 2)
            .into_iter()
            .map(|s| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                s.saturating_add((seed >> 20) as i16 - 2048)
            })
            .collect();
        let chunked = run_chunked(from, to, &input);
        let mut r = Resampler::new(from, to).unwrap();
        let mut whole = vec![0i16; r.output_len(input.len())];
        r.process(&input, &mut whole).unwrap();
        assert_eq!(chunked, whole, "{from} -> {to}");
    }
}

#[test]
fn delay_at_most_3_ms_reported() {
    for (from, to, _, _) in PAIRS {
        let r = Resampler::new(from, to).unwrap();
        println!(
            "{from} -> {to}: {} taps, delay {} output samples = {:.3} ms",
            r.prototype_taps(),
            r.delay_samples(),
            r.delay_micros() as f64 / 1000.0
        );
        assert!(r.delay_micros() <= 3_000);
    }
}

#[test]
fn delay_matches_measured_impulse_peak() {
    // The reported delay is where an impulse comes out (linear phase: the filter's centre).
    for (from, to, _, _) in PAIRS {
        let mut r = Resampler::new(from, to).unwrap();
        let mut input = vec![0i16; from as usize / 50 * 4];
        input[0] = 16_000;
        let mut out = vec![0i16; r.output_len(input.len())];
        r.process(&input, &mut out).unwrap();
        let peak = (0..out.len())
            .max_by_key(|&i| out[i].unsigned_abs())
            .unwrap();
        // An impulse at input 0 sits at high-rate index 0; its peak is the filter centre.
        assert_eq!(peak, r.delay_samples(), "{from} -> {to}");
    }
}
