//! Errors, one variant per rule a caller or a peer broke.

/// A resampler was asked for something it does not do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResampleError {
    /// Only the conversions a call needs are built (8/16/48 kHz <-> 24 kHz).
    #[error("no resampler from {from} Hz to {to} Hz (supported: 8000, 16000, 48000 <-> 24000)")]
    UnsupportedRates { from: u32, to: u32 },
    /// A chunk must map to a whole number of output samples.
    #[error("input chunk of {len} samples is not a multiple of {multiple}")]
    InputNotMultiple { len: usize, multiple: usize },
    /// The caller's output buffer cannot hold the converted chunk.
    #[error("output buffer holds {got} samples, {needed} needed")]
    OutputTooShort { needed: usize, got: usize },
}

/// A payload could not be decoded or a frame encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// We answer with `a=ptime:20`; G.711 at 8 kHz is then 160 bytes (RFC 3551 section 4.5.14).
    #[error("G.711 payload must be 160 bytes (20 ms at 8 kHz, a=ptime:20), got {0}")]
    G711PayloadLength(usize),
    /// An empty payload is not a frame; loss is signalled with `decode_missing`.
    #[error("empty payload (a lost packet is decoded with decode_missing)")]
    EmptyPayload,
    /// Opus packets may carry 2.5 to 120 ms (RFC 6716 section 3.1); we send and accept 20 ms.
    #[error("Opus packet holds {samples} samples at 24 kHz; only 20 ms (480) is accepted")]
    OpusPacketDuration { samples: usize },
    /// libopus refused the packet or the call (RFC 6716 section 3.4 lists malformed packets).
    #[error("libopus {function} failed: {reason}")]
    Opus {
        function: &'static str,
        reason: &'static str,
    },
    /// Building the resampler of a G.711 path failed.
    #[error(transparent)]
    Resample(#[from] ResampleError),
}

impl From<opus::Error> for CodecError {
    fn from(e: opus::Error) -> Self {
        CodecError::Opus {
            function: e.function(),
            reason: e.description(),
        }
    }
}
