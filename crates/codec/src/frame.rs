//! The unit of audio above RTP: 20 ms of 24 kHz mono PCM.

/// 20 ms of 24 kHz mono signed 16-bit PCM: the Realtime API's `audio/pcm` format (rate 24000
/// only) in the packet time every RTP codec we negotiate uses (`a=ptime:20`).
#[derive(Clone, PartialEq, Eq)]
pub struct Frame(pub [i16; Frame::SAMPLES]);

impl Frame {
    /// Sample rate in Hz.
    pub const RATE: u32 = 24_000;
    /// Frame duration in milliseconds.
    pub const DURATION_MS: u32 = 20;
    /// Samples per frame: 24,000 Hz x 20 ms.
    pub const SAMPLES: usize = (Self::RATE * Self::DURATION_MS / 1000) as usize;

    /// Digital silence, sent when no one speaks.
    pub const fn silence() -> Self {
        Frame([0; Self::SAMPLES])
    }

    /// The samples, oldest first.
    pub fn as_slice(&self) -> &[i16] {
        &self.0
    }

    /// The samples, writable (for mixing or gain in place).
    pub fn as_mut_slice(&mut self) -> &mut [i16] {
        &mut self.0
    }

    /// Copies a frame out of a slice of exactly [`Frame::SAMPLES`] samples.
    pub fn from_slice(samples: &[i16]) -> Option<Self> {
        let array: [i16; Self::SAMPLES] = samples.try_into().ok()?;
        Some(Frame(array))
    }

    /// Little-endian bytes, as `input_audio_buffer.append` carries them (base64 of s16le).
    pub fn to_le_bytes(&self) -> Vec<u8> {
        self.0.iter().flat_map(|s| s.to_le_bytes()).collect()
    }
}

impl Default for Frame {
    fn default() -> Self {
        Self::silence()
    }
}

impl std::fmt::Debug for Frame {
    // 480 numbers help no one in a test failure; the level does.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let peak = self.0.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
        write!(f, "Frame {{ samples: {}, peak: {} }}", Self::SAMPLES, peak)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_is_20_ms_at_24_khz() {
        assert_eq!(Frame::SAMPLES, 480);
        assert!(Frame::silence().as_slice().iter().all(|&s| s == 0));
        assert!(Frame::from_slice(&[0; 479]).is_none());
        assert_eq!(Frame::from_slice(&[7; 480]).map(|f| f.0[479]), Some(7));
        assert_eq!(Frame::silence().to_le_bytes().len(), 960);
    }
}
