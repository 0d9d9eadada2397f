//! Sans-IO RTP/RTCP for one call (RFC 3550, 3551, 3389, 4733, 5761), SRTP/SRTCP (RFC 3711). See README.md.
//!
//! Entry point: [`Session`]. The caller owns sockets and the clock: it feeds datagrams with
//! [`Session::handle_input`], drives time with [`Session::handle_timeout`] at
//! [`Session::poll_timeout`], and drains [`Session::poll_transmit`] and [`Session::poll_event`].

pub mod dtmf;
pub mod error;
pub mod jitter;
pub mod latch;
pub mod pacer;
pub mod packet;
mod rng;
pub mod sender;
pub mod seq;
pub mod session;
pub mod srtp;
pub mod stats;
mod timer;

pub use dtmf::Digit;
pub use error::{CnError, EventError, RtcpError, RtpError, SessionError};
pub use jitter::{JitterBuffer, JitterConfig, Slot};
pub use pacer::{Pacer, Tick};
pub use sender::{Outgoing, RtpSender, SenderConfig, SentKind};
pub use session::{Event, Session, SessionConfig, Socket, SrtpConfig, Transmit};
pub use srtp::{MasterKey, SrtpError, Suite};
pub use stats::CallStats;
