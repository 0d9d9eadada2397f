//! The assistant's "voice": a 440 Hz tone pattern in the session's output format.

use realtime::AudioFormat;

/// Tone frequency.
const TONE_HZ: f64 = 440.0;
/// Peak amplitude (about -12 dBFS).
const AMPLITUDE: f64 = 8_000.0;
/// Pattern: `ON_MS` of tone, then `OFF_MS` of silence, repeated.
const ON_MS: u64 = 250;
const OFF_MS: u64 = 50;

/// `ms` milliseconds of the tone pattern as linear samples at `rate`.
fn samples(rate: u32, ms: u64) -> Vec<i16> {
    let n = (rate as u64 * ms / 1000) as usize;
    let period = ON_MS + OFF_MS;
    (0..n)
        .map(|i| {
            let t_ms = i as u64 * 1000 / rate as u64;
            if t_ms % period >= ON_MS {
                return 0;
            }
            let t = i as f64 / rate as f64;
            (AMPLITUDE * (2.0 * std::f64::consts::PI * TONE_HZ * t).sin()) as i16
        })
        .collect()
}

/// `ms` milliseconds of the pattern encoded in `format` (pcm16 LE at 24 kHz, or G.711 at 8 kHz).
pub(crate) fn render(format: AudioFormat, ms: u64) -> Vec<u8> {
    match format {
        AudioFormat::Pcm { rate } => samples(rate, ms)
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect(),
        AudioFormat::Pcmu => samples(8_000, ms)
            .iter()
            .map(|&s| codec::g711::linear_to_ulaw(s))
            .collect(),
        AudioFormat::Pcma => samples(8_000, ms)
            .iter()
            .map(|&s| codec::g711::linear_to_alaw(s))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_second_of_pcm24k_is_48000_bytes_and_g711_8000() {
        assert_eq!(render(AudioFormat::pcm24k(), 1000).len(), 48_000);
        assert_eq!(render(AudioFormat::Pcmu, 1000).len(), 8_000);
    }

    #[test]
    fn pattern_has_tone_then_silence() {
        let s = samples(24_000, 300);
        let on = &s[..6_000];
        let off = &s[6_000..];
        assert!(on.iter().any(|&x| x.unsigned_abs() > 7_000));
        assert!(off.iter().all(|&x| x == 0));
    }
}
