//! What the media engine calls: RTP payload <-> 24 kHz [`Frame`], per call and direction.

use crate::error::CodecError;
use crate::frame::Frame;
use crate::g711;
use crate::opus::{self as opus_codec, OpusDecoder, OpusEncoder, OpusEncoderConfig};
use crate::resample::Resampler;

/// The audio codecs we negotiate in SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadCodec {
    /// G.711 u-law, static PT 0 (RFC 3551 section 6).
    Pcmu,
    /// G.711 A-law, static PT 8 (RFC 3551 section 6).
    Pcma,
    /// Opus, dynamic PT from the SDP `a=rtpmap` (RFC 7587 section 7).
    Opus,
}

impl PayloadCodec {
    /// The static RTP payload type, if the codec has one.
    pub fn static_payload_type(self) -> Option<u8> {
        match self {
            PayloadCodec::Pcmu => Some(0),
            PayloadCodec::Pcma => Some(8),
            PayloadCodec::Opus => None,
        }
    }

    /// RTP clock rate: 8 kHz for G.711, 48 kHz for Opus whatever it decodes at (RFC 7587 4.1).
    pub fn rtp_clock_rate(self) -> u32 {
        match self {
            PayloadCodec::Pcmu | PayloadCodec::Pcma => g711::RATE,
            PayloadCodec::Opus => opus_codec::RTP_CLOCK_RATE,
        }
    }

    /// RTP timestamp increment per 20 ms frame.
    pub fn rtp_timestamp_step(self) -> u32 {
        self.rtp_clock_rate() / 50
    }
}

enum DecoderKind {
    G711(Box<G711Decoder>),
    Opus(OpusDecoder),
}

struct G711Decoder {
    law: Law,
    upsampler: Resampler,
    /// The last 20 ms at 8 kHz, kept for concealment.
    last: [i16; g711::SAMPLES_PER_20MS],
    /// Consecutive frames concealed so far.
    concealed: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Law {
    Mu,
    A,
}

/// Decodes one call's inbound payloads into 24 kHz frames. Keeps the codec and resampler
/// state, so use one per stream and feed it in order (after the jitter buffer).
pub struct Decoder {
    codec: PayloadCodec,
    kind: DecoderKind,
}

impl Decoder {
    /// A decoder for `codec`.
    pub fn new(codec: PayloadCodec) -> Result<Self, CodecError> {
        let g711 = |law| -> Result<DecoderKind, CodecError> {
            Ok(DecoderKind::G711(Box::new(G711Decoder {
                law,
                upsampler: Resampler::new(g711::RATE, Frame::RATE)?,
                last: [0; g711::SAMPLES_PER_20MS],
                concealed: 0,
            })))
        };
        let kind = match codec {
            PayloadCodec::Pcmu => g711(Law::Mu)?,
            PayloadCodec::Pcma => g711(Law::A)?,
            PayloadCodec::Opus => DecoderKind::Opus(OpusDecoder::new()?),
        };
        Ok(Decoder { codec, kind })
    }

    /// The codec this decoder was built for.
    pub fn codec(&self) -> PayloadCodec {
        self.codec
    }

    /// Decodes one 20 ms payload. G.711: 160 bytes -> 8 kHz -> 24 kHz; Opus: decoded at
    /// 24 kHz directly.
    pub fn decode(&mut self, payload: &[u8]) -> Result<Frame, CodecError> {
        match &mut self.kind {
            DecoderKind::G711(state) => {
                let G711Decoder {
                    law,
                    upsampler,
                    last,
                    concealed,
                } = state.as_mut();
                if payload.len() != g711::SAMPLES_PER_20MS {
                    return Err(if payload.is_empty() {
                        CodecError::EmptyPayload
                    } else {
                        CodecError::G711PayloadLength(payload.len())
                    });
                }
                match law {
                    Law::Mu => g711::decode_ulaw(payload, last),
                    Law::A => g711::decode_alaw(payload, last),
                }
                *concealed = 0;
                upsample(upsampler, last)
            }
            DecoderKind::Opus(decoder) => decoder.decode(payload),
        }
    }

    /// Audio for a lost packet, never failing.
    ///
    /// Opus: in-band FEC from `next_payload` when given (the packet after the lost one, if the
    /// jitter buffer already holds it), else libopus PLC.
    ///
    /// G.711 (which has no FEC; `next_payload` is ignored): the first lost frame replays the
    /// last received 20 ms time-reversed, fading linearly to zero. Reversal makes the first
    /// concealed sample equal the last received one, so the loss starts without a step (the
    /// click a plain repeat would make); the fade avoids the 50 Hz buzz of repeating. Further
    /// consecutive losses are silence. Simpler than G.711 Appendix I's pitch-synchronous
    /// repeat, and enough for the isolated losses the jitter buffer leaves.
    pub fn decode_missing(&mut self, next_payload: Option<&[u8]>) -> Frame {
        match &mut self.kind {
            DecoderKind::G711(state) => {
                let G711Decoder {
                    upsampler,
                    last,
                    concealed,
                    ..
                } = state.as_mut();
                let mut pcm = [0i16; g711::SAMPLES_PER_20MS];
                if *concealed == 0 {
                    let n = pcm.len() as i32;
                    for (i, (out, &s)) in pcm.iter_mut().zip(last.iter().rev()).enumerate() {
                        let gain = n - 1 - i as i32; // n-1 .. 0
                        *out = (i32::from(s) * gain / (n - 1)) as i16;
                    }
                }
                *concealed = concealed.saturating_add(1);
                *last = pcm;
                upsample(upsampler, &pcm).unwrap_or_else(|_| Frame::silence())
            }
            DecoderKind::Opus(decoder) => decoder.decode_missing(next_payload),
        }
    }
}

fn upsample(upsampler: &mut Resampler, pcm8k: &[i16]) -> Result<Frame, CodecError> {
    let mut frame = Frame::silence();
    upsampler.process(pcm8k, frame.as_mut_slice())?;
    Ok(frame)
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("codec", &self.codec)
            .finish_non_exhaustive()
    }
}

enum EncoderKind {
    G711 {
        law: Law,
        downsampler: Box<Resampler>,
    },
    Opus(Box<OpusEncoder>),
}

/// Encodes one call's outbound 24 kHz frames into RTP payloads.
pub struct Encoder {
    codec: PayloadCodec,
    kind: EncoderKind,
}

impl Encoder {
    /// An encoder for `codec` (Opus with [`OpusEncoderConfig::default`]).
    pub fn new(codec: PayloadCodec) -> Result<Self, CodecError> {
        Self::with_opus_config(codec, OpusEncoderConfig::default())
    }

    /// An encoder for `codec`; `opus` applies when `codec` is Opus.
    pub fn with_opus_config(
        codec: PayloadCodec,
        opus: OpusEncoderConfig,
    ) -> Result<Self, CodecError> {
        let g711 = |law| -> Result<EncoderKind, CodecError> {
            Ok(EncoderKind::G711 {
                law,
                downsampler: Box::new(Resampler::new(Frame::RATE, g711::RATE)?),
            })
        };
        let kind = match codec {
            PayloadCodec::Pcmu => g711(Law::Mu)?,
            PayloadCodec::Pcma => g711(Law::A)?,
            PayloadCodec::Opus => EncoderKind::Opus(Box::new(OpusEncoder::new(opus)?)),
        };
        Ok(Encoder { codec, kind })
    }

    /// The codec this encoder was built for.
    pub fn codec(&self) -> PayloadCodec {
        self.codec
    }

    /// Tells Opus's FEC how much loss to plan for (no effect on G.711).
    pub fn set_expected_loss_percent(&mut self, percent: u8) -> Result<(), CodecError> {
        match &mut self.kind {
            EncoderKind::Opus(encoder) => encoder.set_expected_loss_percent(percent),
            EncoderKind::G711 { .. } => Ok(()),
        }
    }

    /// Encodes one frame; `out` is cleared and receives the payload (160 bytes for G.711).
    pub fn encode(&mut self, frame: &Frame, out: &mut Vec<u8>) -> Result<(), CodecError> {
        match &mut self.kind {
            EncoderKind::G711 { law, downsampler } => {
                let mut pcm = [0i16; g711::SAMPLES_PER_20MS];
                downsampler.process(frame.as_slice(), &mut pcm)?;
                out.clear();
                out.resize(g711::SAMPLES_PER_20MS, 0);
                match law {
                    Law::Mu => g711::encode_ulaw(&pcm, out),
                    Law::A => g711::encode_alaw(&pcm, out),
                }
                Ok(())
            }
            EncoderKind::Opus(encoder) => encoder.encode(frame, out),
        }
    }
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("codec", &self.codec)
            .finish_non_exhaustive()
    }
}
