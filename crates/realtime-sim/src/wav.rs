//! A reader for the WAV files a scenario speaks: RIFF/WAVE, PCM (or extensible PCM), mono,
//! 16-bit. Just enough of the format for our fixtures; anything else is refused by name.

/// Why a WAV file cannot be spoken.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    /// The file could not be read.
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    /// Not a RIFF/WAVE file, or a chunk runs past the end.
    #[error("not a WAV file: {0}")]
    Malformed(&'static str),
    /// A WAV the simulator does not play (it wants mono 16-bit PCM).
    #[error("unsupported WAV: {0} (need mono 16-bit PCM)")]
    Unsupported(String),
    /// The rate has no resampler to 24 kHz.
    #[error("{0}")]
    Rate(#[from] codec::ResampleError),
}

/// Decoded WAV audio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wav {
    /// Samples per second.
    pub rate: u32,
    /// Mono linear samples.
    pub samples: Vec<i16>,
}

const WAVE_FORMAT_PCM: u16 = 1;
const WAVE_FORMAT_EXTENSIBLE: u16 = 0xFFFE;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Parses a whole WAV file held in memory.
pub(crate) fn parse(bytes: &[u8]) -> Result<Wav, WavError> {
    if bytes.get(0..4) != Some(b"RIFF") || bytes.get(8..12) != Some(b"WAVE") {
        return Err(WavError::Malformed("no RIFF/WAVE header"));
    }
    let mut at = 12;
    let mut rate = None;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let size = u32_at(bytes, at + 4).ok_or(WavError::Malformed("truncated chunk header"))?;
        let body_start = at + 8;
        // A streaming writer may leave the size unset (0xFFFFFFFF): take what is there.
        let body_end = body_start.saturating_add(size as usize).min(bytes.len());
        let body = &bytes[body_start..body_end];
        match id {
            b"fmt " => rate = Some(check_fmt(body)?),
            b"data" => {
                let rate = rate.ok_or(WavError::Malformed("data chunk before fmt chunk"))?;
                let samples = body
                    .chunks_exact(2)
                    .map(|c| i16::from_le_bytes([c[0], c[1]]))
                    .collect();
                return Ok(Wav { rate, samples });
            }
            _ => {}
        }
        // Chunks are padded to an even length.
        at = body_start
            .saturating_add(size as usize)
            .saturating_add(size as usize & 1);
    }
    Err(WavError::Malformed("no data chunk"))
}

/// The `fmt ` chunk: returns the rate of a mono 16-bit PCM stream.
fn check_fmt(fmt: &[u8]) -> Result<u32, WavError> {
    let short = WavError::Malformed("fmt chunk shorter than 16 bytes");
    let tag = u16_at(fmt, 0).ok_or(short)?;
    let channels = u16_at(fmt, 2).unwrap_or(0);
    let rate = u32_at(fmt, 4).unwrap_or(0);
    let bits = u16_at(fmt, 14).unwrap_or(0);
    let pcm = match tag {
        WAVE_FORMAT_PCM => true,
        // The sub-format GUID starts with the format tag.
        WAVE_FORMAT_EXTENSIBLE => u16_at(fmt, 24) == Some(WAVE_FORMAT_PCM),
        _ => false,
    };
    if !pcm {
        return Err(WavError::Unsupported(format!("format tag {tag:#06x}")));
    }
    if channels != 1 {
        return Err(WavError::Unsupported(format!("{channels} channels")));
    }
    if bits != 16 {
        return Err(WavError::Unsupported(format!("{bits}-bit samples")));
    }
    if rate == 0 {
        return Err(WavError::Malformed("sample rate 0"));
    }
    Ok(rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(fmt_tag: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
        let mut b = b"RIFF\0\0\0\0WAVE".to_vec();
        // An unknown chunk with an odd size, padded: it must be skipped.
        b.extend_from_slice(b"LIST\x03\0\0\0abc\0");
        b.extend_from_slice(b"fmt \x10\0\0\0");
        b.extend_from_slice(&fmt_tag.to_le_bytes());
        b.extend_from_slice(&channels.to_le_bytes());
        b.extend_from_slice(&rate.to_le_bytes());
        b.extend_from_slice(&(rate * 2).to_le_bytes());
        b.extend_from_slice(&2u16.to_le_bytes());
        b.extend_from_slice(&bits.to_le_bytes());
        b.extend_from_slice(b"data");
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn reads_mono_16_bit_pcm_after_unknown_chunks() {
        let w = parse(&wav(1, 1, 8_000, 16, &[1, 0, 0xff, 0xff])).unwrap();
        assert_eq!(
            w,
            Wav {
                rate: 8_000,
                samples: vec![1, -1]
            }
        );
    }

    #[test]
    fn refuses_stereo_8_bit_float_and_garbage() {
        assert!(matches!(
            parse(&wav(1, 2, 8_000, 16, &[])),
            Err(WavError::Unsupported(_))
        ));
        assert!(matches!(
            parse(&wav(1, 1, 8_000, 8, &[])),
            Err(WavError::Unsupported(_))
        ));
        assert!(matches!(
            parse(&wav(3, 1, 8_000, 32, &[])),
            Err(WavError::Unsupported(_))
        ));
        assert!(matches!(
            parse(b"RIFF\0\0\0\0WAVE"),
            Err(WavError::Malformed(_))
        ));
        assert!(matches!(parse(b"ID3"), Err(WavError::Malformed(_))));
    }
}
