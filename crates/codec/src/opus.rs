//! Opus (RFC 6716) through libopus 1.6 (the `opus` crate, statically bundled), at 24 kHz mono:
//! the Realtime API's rate, so Opus calls need no resampler.

use crate::error::CodecError;
use crate::frame::Frame;

/// RTP clock rate of Opus, whatever the audio bandwidth or decode rate (RFC 7587 section 4.1):
/// the timestamp advances 960 per 20 ms packet, and SDP says `opus/48000/2`.
pub const RTP_CLOCK_RATE: u32 = 48_000;
/// RTP timestamp increment per 20 ms packet.
pub const RTP_TIMESTAMP_STEP: u32 = RTP_CLOCK_RATE / 50;

/// Largest packet libopus produces for one frame (RFC 6716 section 3.2.1: 1275 bytes) plus a
/// TOC byte of slack.
const MAX_PACKET: usize = 1276;
/// Longest packet duration at 24 kHz (120 ms, RFC 6716 section 3.2.5): the decode buffer must
/// hold it, even though we accept only 20 ms.
const MAX_DECODED: usize = Frame::SAMPLES * 6;

/// Encoder settings the media engine may tune per call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusEncoderConfig {
    /// Target bitrate in bit/s (RFC 7587 section 3.1.1: 16-20 kbit/s is wideband speech).
    pub bitrate_bps: i32,
    /// Loss the encoder plans for: above 0 it spends bits on in-band FEC (LBRR) for the
    /// previous frame (RFC 6716 section 2.1.7). From RTCP loss figures when known.
    pub expected_loss_percent: u8,
    /// 0-10. libopus defaults to 9; on speech at 24 kHz we measured (release build, this
    /// machine) about 40-60 us per frame at 0-1 and 140-230 us at 2-10: the 300 Opus
    /// calls per core leave 66 us for encode plus decode, so the default is 1. Raise it per
    /// call when capacity allows.
    pub complexity: u8,
}

impl Default for OpusEncoderConfig {
    fn default() -> Self {
        OpusEncoderConfig {
            bitrate_bps: 24_000,
            expected_loss_percent: 10,
            complexity: 1,
        }
    }
}

/// Opus encoder: one 24 kHz [`Frame`] in, one 20 ms packet out.
pub struct OpusEncoder {
    inner: opus::Encoder,
    config: OpusEncoderConfig,
}

impl OpusEncoder {
    /// Mono, VoIP application (speech-tuned SILK/hybrid modes), in-band FEC on.
    pub fn new(config: OpusEncoderConfig) -> Result<Self, CodecError> {
        let mut inner =
            opus::Encoder::new(Frame::RATE, opus::Channels::Mono, opus::Application::Voip)?;
        inner.set_bitrate(opus::Bitrate::Bits(config.bitrate_bps))?;
        inner.set_complexity(i32::from(config.complexity.min(10)))?;
        inner.set_inband_fec(true)?;
        inner.set_packet_loss_perc(i32::from(config.expected_loss_percent.min(100)))?;
        Ok(OpusEncoder { inner, config })
    }

    /// The settings in force.
    pub fn config(&self) -> OpusEncoderConfig {
        self.config
    }

    /// Updates the loss the FEC plans for (e.g. from RTCP receiver reports).
    pub fn set_expected_loss_percent(&mut self, percent: u8) -> Result<(), CodecError> {
        let percent = percent.min(100);
        self.inner.set_packet_loss_perc(i32::from(percent))?;
        self.config.expected_loss_percent = percent;
        Ok(())
    }

    /// Encoder lookahead in 24 kHz samples (part of the end-to-end delay).
    pub fn lookahead(&mut self) -> Result<usize, CodecError> {
        Ok(usize::try_from(self.inner.get_lookahead()?).unwrap_or(0))
    }

    /// Encodes `frame`; `out` is cleared and receives the packet.
    pub fn encode(&mut self, frame: &Frame, out: &mut Vec<u8>) -> Result<(), CodecError> {
        out.clear();
        out.resize(MAX_PACKET, 0);
        let len = self.inner.encode(frame.as_slice(), out)?;
        out.truncate(len);
        Ok(())
    }
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusEncoder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Opus decoder at 24 kHz mono, with loss concealment and in-band FEC recovery.
pub struct OpusDecoder {
    inner: opus::Decoder,
    scratch: Vec<i16>,
}

impl OpusDecoder {
    /// A decoder for one call's stream (its state carries across packets).
    pub fn new() -> Result<Self, CodecError> {
        Ok(OpusDecoder {
            inner: opus::Decoder::new(Frame::RATE, opus::Channels::Mono)?,
            scratch: vec![0; MAX_DECODED],
        })
    }

    /// Decodes one 20 ms packet. A stereo packet is downmixed by libopus (mono decoder).
    pub fn decode(&mut self, packet: &[u8]) -> Result<Frame, CodecError> {
        if packet.is_empty() {
            // libopus reads an empty input as "lost": keep that explicit.
            return Err(CodecError::EmptyPayload);
        }
        let samples = self.inner.decode(packet, &mut self.scratch, false)?;
        self.frame_from_scratch(samples)
    }

    /// Audio for a lost packet. With the next packet at hand, its in-band FEC (LBRR) data
    /// rebuilds the lost one (RFC 6716 section 2.1.7, `decode_fec = 1`); without it, or when
    /// it carries no FEC, libopus conceals (PLC) from the decoder state. Always 20 ms; never
    /// fails: a broken next packet falls back to PLC and a failed PLC to silence.
    pub fn decode_missing(&mut self, next_packet: Option<&[u8]>) -> Frame {
        if let Some(next) = next_packet.filter(|p| !p.is_empty()) {
            // The output length tells libopus how much audio to recover: one 20 ms frame.
            match self
                .inner
                .decode(next, &mut self.scratch[..Frame::SAMPLES], true)
            {
                Ok(n) if n == Frame::SAMPLES => {
                    if let Ok(frame) = self.frame_from_scratch(n) {
                        return frame;
                    }
                }
                _ => {}
            }
        }
        match self
            .inner
            .decode(&[], &mut self.scratch[..Frame::SAMPLES], false)
        {
            Ok(n) => self
                .frame_from_scratch(n)
                .unwrap_or_else(|_| Frame::silence()),
            Err(_) => Frame::silence(),
        }
    }

    /// Forgets the stream (e.g. after an SSRC change).
    pub fn reset(&mut self) -> Result<(), CodecError> {
        self.inner.reset_state()?;
        Ok(())
    }

    fn frame_from_scratch(&self, samples: usize) -> Result<Frame, CodecError> {
        self.scratch
            .get(..samples)
            .and_then(Frame::from_slice)
            .ok_or(CodecError::OpusPacketDuration { samples })
    }
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusDecoder").finish_non_exhaustive()
    }
}
