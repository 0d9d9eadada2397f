//! Audio codecs for the media path: G.711 u-law/A-law, Opus, and resampling between the call's
//! rate and the 24 kHz [`Frame`] the rest of Switchboard works in. Sans-IO: bytes and samples
//! in, bytes and samples out; no clock, no sockets, no runtime.
//!
//! Entry points: [`Decoder`] and [`Encoder`] (per call and direction, by [`PayloadCodec`]);
//! the building blocks [`g711`], [`Resampler`], [`OpusEncoder`], [`OpusDecoder`].

mod error;
mod frame;
pub mod g711;
pub mod opus;
mod payload;
mod resample;

pub use error::{CodecError, ResampleError};
pub use frame::Frame;
pub use opus::{OpusDecoder, OpusEncoder, OpusEncoderConfig};
pub use payload::{Decoder, Encoder, PayloadCodec};
pub use resample::Resampler;
