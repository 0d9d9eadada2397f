//! The audio format on the Realtime socket. By default 24 kHz PCM (`audio/pcm`); with
//! `--realtime-audio g711` a PCMU or PCMA call talks G.711 to the model (`audio/pcmu` /
//! `audio/pcma`, 8 kHz, a sixth of the bytes on the wire), the caller's law in both
//! directions. The media path keeps working in 24 kHz [`Frame`]s (jitter buffer, loss
//! concealment, playout, barge-in), so this side converts: caller frames are encoded as the
//! RTP encoder does (24 kHz -> 8 kHz FIR, G.711), model audio is decoded and brought back up
//! to 24 kHz. Through 8k -> 24k -> 8k a G.711 signal comes back within one quantisation step
//! (the resampler's passband is flat to 0.002 dB), so the model hears what the caller sent.

use codec::{g711, Frame, PayloadCodec, Resampler};
use realtime::AudioFormat;

/// Caller frames to the wire format and model audio back to 24 kHz samples, for one session.
pub enum WireAudio {
    Pcm,
    G711 {
        ulaw: bool,
        up: Box<Resampler>,
        down: Box<Resampler>,
    },
}

impl std::fmt::Debug for WireAudio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireAudio::Pcm => f.write_str("WireAudio::Pcm"),
            WireAudio::G711 { ulaw, .. } => write!(f, "WireAudio::G711 {{ ulaw: {ulaw} }}"),
        }
    }
}

impl WireAudio {
    /// The converter for a session whose input format is `format` (input and output always
    /// match: the bridge configures both the same).
    pub fn for_format(format: AudioFormat) -> Self {
        let g711 = |ulaw: bool| {
            // Both rate pairs are supported by the codec crate, so these cannot fail; if they
            // ever did, PCM is still a valid format for the model.
            match (
                Resampler::new(g711::RATE, Frame::RATE),
                Resampler::new(Frame::RATE, g711::RATE),
            ) {
                (Ok(up), Ok(down)) => WireAudio::G711 {
                    ulaw,
                    up: Box::new(up),
                    down: Box::new(down),
                },
                _ => WireAudio::Pcm,
            }
        };
        match format {
            AudioFormat::Pcm { .. } => WireAudio::Pcm,
            AudioFormat::Pcmu => g711(true),
            AudioFormat::Pcma => g711(false),
        }
    }

    /// Appends one caller frame in the wire format to `out` (960 bytes of PCM or 160 G.711
    /// codes).
    pub fn push_frame(&mut self, frame: &Frame, out: &mut Vec<u8>) {
        match self {
            WireAudio::Pcm => {
                let start = out.len();
                out.resize(start + Frame::SAMPLES * 2, 0);
                for (dst, s) in out[start..].chunks_exact_mut(2).zip(frame.as_slice()) {
                    dst.copy_from_slice(&s.to_le_bytes());
                }
            }
            WireAudio::G711 { ulaw, down, .. } => {
                let mut pcm = [0i16; g711::SAMPLES_PER_20MS];
                if down.process(frame.as_slice(), &mut pcm).is_ok() {
                    let start = out.len();
                    out.resize(start + pcm.len(), 0);
                    if *ulaw {
                        g711::encode_ulaw(&pcm, &mut out[start..]);
                    } else {
                        g711::encode_alaw(&pcm, &mut out[start..]);
                    }
                }
            }
        }
    }

    /// Model audio (a decoded delta) as 24 kHz samples.
    pub fn to_samples(&mut self, bytes: &[u8]) -> Vec<i16> {
        match self {
            WireAudio::Pcm => bytes
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect(),
            WireAudio::G711 { ulaw, up, .. } => {
                let mut pcm8k = vec![0i16; bytes.len()];
                if *ulaw {
                    g711::decode_ulaw(bytes, &mut pcm8k);
                } else {
                    g711::decode_alaw(bytes, &mut pcm8k);
                }
                let mut out = vec![0i16; up.output_len(pcm8k.len())];
                match up.process(&pcm8k, &mut out) {
                    Ok(n) => {
                        out.truncate(n);
                        out
                    }
                    Err(_) => Vec::new(),
                }
            }
        }
    }
}

/// The session's audio format for a call: G.711 pass-through when the operator asked for it
/// and the call's codec is G.711, else 24 kHz PCM.
pub fn format_for_call(g711: bool, call_codec: Option<PayloadCodec>) -> AudioFormat {
    match (g711, call_codec) {
        (true, Some(PayloadCodec::Pcmu)) => AudioFormat::Pcmu,
        (true, Some(PayloadCodec::Pcma)) => AudioFormat::Pcma,
        _ => AudioFormat::pcm24k(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone_frame(n: usize) -> Frame {
        let mut f = Frame::default();
        for (i, s) in f.as_mut_slice().iter_mut().enumerate() {
            let t = (n * Frame::SAMPLES + i) as f64 / 24_000.0;
            *s = (8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin()) as i16;
        }
        f
    }

    #[test]
    fn pcm_is_little_endian_960_bytes_a_frame_and_back() {
        let mut w = WireAudio::for_format(AudioFormat::pcm24k());
        let f = tone_frame(0);
        let mut out = Vec::new();
        w.push_frame(&f, &mut out);
        assert_eq!(out.len(), 960);
        assert_eq!(out, f.to_le_bytes());
        assert_eq!(w.to_samples(&out), f.as_slice());
    }

    #[test]
    fn g711_frames_are_160_codes_and_model_audio_comes_back_at_24k() {
        for format in [AudioFormat::Pcmu, AudioFormat::Pcma] {
            let mut w = WireAudio::for_format(format);
            let mut wire = Vec::new();
            for n in 0..10 {
                let before = wire.len();
                w.push_frame(&tone_frame(n), &mut wire);
                assert_eq!(wire.len() - before, 160, "{format:?}");
            }
            // The model's 8 kHz reply (here: our own codes) comes back as 3 samples per code.
            let samples = w.to_samples(&wire);
            assert_eq!(samples.len(), 1600 * 3);
            // A 1 kHz tone at 8000 peak survives (after the filters' start-up).
            let peak = samples[2400..].iter().map(|s| s.unsigned_abs()).max();
            assert!(
                peak.is_some_and(|p| (7000..=9000).contains(&p)),
                "{format:?} {peak:?}"
            );
            // Odd lengths too: a delta need not be a whole frame.
            assert_eq!(w.to_samples(&wire[..37]).len(), 111);
        }
    }

    #[test]
    fn pass_through_only_for_g711_calls_when_asked() {
        assert_eq!(
            format_for_call(true, Some(PayloadCodec::Pcmu)),
            AudioFormat::Pcmu
        );
        assert_eq!(
            format_for_call(true, Some(PayloadCodec::Pcma)),
            AudioFormat::Pcma
        );
        assert_eq!(
            format_for_call(true, Some(PayloadCodec::Opus)),
            AudioFormat::pcm24k()
        );
        assert_eq!(
            format_for_call(false, Some(PayloadCodec::Pcmu)),
            AudioFormat::pcm24k()
        );
        assert_eq!(format_for_call(true, None), AudioFormat::pcm24k());
    }
}
