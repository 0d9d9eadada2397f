//! Scripted speech in the session's output format: WAV audio held at 24 kHz and encoded per
//! session (protocol §6: `audio/pcm` 24 kHz LE, G.711 u/A-law at 8 kHz).

use codec::{ResampleError, Resampler};
use realtime::{AudioFormat, PCM_RATE};

/// Converts a whole clip from `from` Hz to `to` Hz with the call path's resampler. The filter
/// delay is removed and its tail flushed, so the output has `ceil(len * to / from)` samples
/// (rounded to the resampler's block) and lines up with the input in time.
pub(crate) fn resample(from: u32, to: u32, input: &[i16]) -> Result<Vec<i16>, ResampleError> {
    if from == to {
        return Ok(input.to_vec());
    }
    let mut r = Resampler::new(from, to)?;
    let block = r.input_multiple();
    let want = r.output_len(input.len().next_multiple_of(block));
    let delay = r.delay_samples();
    // Enough trailing zeros to push `delay` more output samples out of the filter.
    let flush = (delay * from as usize).div_ceil(to as usize) + block;
    let mut padded = Vec::with_capacity(input.len() + flush + block);
    padded.extend_from_slice(input);
    padded.resize((input.len() + flush).next_multiple_of(block), 0);
    let mut out = vec![0i16; r.output_len(padded.len())];
    let n = r.process(&padded, &mut out)?;
    out.truncate(n);
    let end = (delay + want).min(out.len());
    Ok(out.get(delay..end).map(<[i16]>::to_vec).unwrap_or_default())
}

/// 24 kHz samples as the bytes of `format`.
pub(crate) fn encode(format: AudioFormat, samples_24k: &[i16]) -> Result<Vec<u8>, ResampleError> {
    Ok(match format {
        AudioFormat::Pcm { .. } => samples_24k.iter().flat_map(|s| s.to_le_bytes()).collect(),
        AudioFormat::Pcmu => resample(PCM_RATE, 8_000, samples_24k)?
            .into_iter()
            .map(codec::g711::linear_to_ulaw)
            .collect(),
        AudioFormat::Pcma => resample(PCM_RATE, 8_000, samples_24k)?
            .into_iter()
            .map(codec::g711::linear_to_alaw)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, hz: f64, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                (8_000.0 * (2.0 * std::f64::consts::PI * hz * i as f64 / rate as f64).sin()) as i16
            })
            .collect()
    }

    #[test]
    fn lengths_follow_the_rate_ratio_and_the_tail_is_kept() {
        for (rate, n) in [
            (8_000, 8_000),
            (16_000, 1_601),
            (48_000, 48_001),
            (24_000, 777),
        ] {
            let out = resample(rate, PCM_RATE, &sine(rate, 440.0, n)).unwrap();
            let want = (n as u64 * 24_000).div_ceil(rate as u64) as usize;
            assert!(
                out.len().abs_diff(want) <= 1,
                "{rate}: {} vs {want}",
                out.len()
            );
            // The last 10 ms still carry the tone: the filter's tail was flushed.
            let tail = &out[out.len() - 240..];
            assert!(tail.iter().any(|s| s.unsigned_abs() > 4_000), "{rate}");
        }
    }

    #[test]
    fn delay_is_removed() {
        // A click at 100 ms stays at 100 ms after 8 -> 24 kHz.
        let mut x = vec![0i16; 1_600];
        x[800] = 20_000;
        let y = resample(8_000, PCM_RATE, &x).unwrap();
        let peak = (0..y.len()).max_by_key(|&i| y[i].unsigned_abs()).unwrap();
        assert!(peak.abs_diff(2_400) <= 3, "peak at {peak}");
    }

    #[test]
    fn g711_is_a_third_of_the_samples_and_pcm_two_bytes_each() {
        let s = sine(24_000, 300.0, 24_000);
        assert_eq!(encode(AudioFormat::pcm24k(), &s).unwrap().len(), 48_000);
        assert_eq!(encode(AudioFormat::Pcmu, &s).unwrap().len(), 8_000);
        assert_eq!(encode(AudioFormat::Pcma, &s).unwrap().len(), 8_000);
    }
}
