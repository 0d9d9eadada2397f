//! Audio formats as the GA session carries them (protocol §2, §6).

use serde::{Deserialize, Serialize};

/// The only PCM rate GA accepts (protocol §6: `rate: 24000` is the only allowed literal).
pub const PCM_RATE: u32 = 24_000;

/// `audio.input.format` / `audio.output.format`: an object with a MIME `type`, never the beta
/// strings `pcm16`/`g711_ulaw` (protocol §2: the GA server rejects `'pcm16'`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum AudioFormat {
    /// 16-bit signed little-endian mono PCM.
    #[serde(rename = "audio/pcm")]
    Pcm {
        /// Samples per second; must be 24000.
        rate: u32,
    },
    /// G.711 u-law at 8 kHz, for pass-through of a PCMU call.
    #[serde(rename = "audio/pcmu")]
    Pcmu,
    /// G.711 A-law at 8 kHz, for pass-through of a PCMA call.
    #[serde(rename = "audio/pcma")]
    Pcma,
}

impl Default for AudioFormat {
    fn default() -> Self {
        Self::pcm24k()
    }
}

impl AudioFormat {
    /// The default format: `{type:"audio/pcm", rate:24000}`.
    pub const fn pcm24k() -> Self {
        Self::Pcm { rate: PCM_RATE }
    }

    /// Bytes per millisecond of audio, used to turn delta lengths into durations
    /// (protocol §6: PCM ms = bytes/48, G.711 ms = bytes/8).
    pub const fn bytes_per_ms(self) -> u64 {
        match self {
            // A zero or odd rate would make 0 here; clamp so callers never divide by zero.
            Self::Pcm { rate } => {
                let b = rate as u64 * 2 / 1000;
                if b == 0 {
                    1
                } else {
                    b
                }
            }
            Self::Pcmu | Self::Pcma => 8,
        }
    }

    /// Whole milliseconds in `bytes` of this format, rounded down so a truncate never
    /// overshoots what was received (protocol §8, pipecat #2106).
    pub const fn ms_for_bytes(self, bytes: u64) -> u64 {
        bytes / self.bytes_per_ms()
    }
}

/// Decoded length of a base64 string without decoding it: the tracker counts audio on every
/// delta, and decoding twice (tracker and playout) would double the hot-path cost.
pub(crate) fn base64_decoded_len(b64: &str) -> u64 {
    let bytes = b64.as_bytes();
    let len = bytes.len() as u64;
    let pad = bytes.iter().rev().take(2).filter(|&&c| c == b'=').count() as u64;
    let tail = match len % 4 {
        2 => 1,
        3 => 2,
        _ => 0,
    };
    // Saturating: a malformed "==" must not underflow; the decoder reports it later.
    ((len / 4) * 3 + tail).saturating_sub(pad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn protocol_6_pcm24k_is_48_bytes_per_ms_and_g711_is_8() {
        assert_eq!(AudioFormat::pcm24k().bytes_per_ms(), 48);
        assert_eq!(AudioFormat::Pcmu.bytes_per_ms(), 8);
        assert_eq!(AudioFormat::Pcma.ms_for_bytes(160), 20);
        assert_eq!(AudioFormat::pcm24k().ms_for_bytes(960), 20);
        assert_eq!(AudioFormat::pcm24k().ms_for_bytes(959), 19);
    }

    #[test]
    fn format_wire_shape_is_ga() {
        let j = serde_json::to_string(&AudioFormat::pcm24k()).unwrap();
        assert_eq!(j, r#"{"type":"audio/pcm","rate":24000}"#);
        let j = serde_json::to_string(&AudioFormat::Pcmu).unwrap();
        assert_eq!(j, r#"{"type":"audio/pcmu"}"#);
        assert!(serde_json::from_str::<AudioFormat>(r#""pcm16""#).is_err());
    }

    proptest::proptest! {
        #[test]
        fn base64_len_matches_decoder(data in proptest::collection::vec(0u8.., 0..200)) {
            let b = base64::engine::general_purpose::STANDARD.encode(&data);
            proptest::prop_assert_eq!(base64_decoded_len(&b), data.len() as u64);
        }
    }
}
