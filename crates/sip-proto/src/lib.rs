//! Sans-IO SIP user agent server: transactions (RFC 3261 17, RFC 6026), dialogs (12), the UAS
//! call flow (13, 15), session timers (RFC 4028) and SDP offer/answer (RFC 3264).
//!
//! Entry point: [`Endpoint`]. Feed it datagrams/stream frames with `handle_input(now, ..)` and
//! expired deadlines with `handle_timeout(now)`; take `poll_transmit`, `poll_event` and
//! `poll_timeout` out. It never reads a clock, sleeps or touches a socket.

pub mod auth;
pub mod config;
pub mod dialog;
mod endpoint;
pub mod ratelimit;
mod rng;
pub mod sdp;
pub mod timer;
pub mod transaction;

pub use config::{AccessPolicy, DenyAction, EndpointConfig};
pub use endpoint::{CallHandle, EndReason, Endpoint, Event, IncomingCall, Stats};
pub use transaction::{Flow, Transmit, Transport};
