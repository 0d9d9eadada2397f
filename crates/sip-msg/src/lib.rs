//! SIP message model, parser and serializer (RFC 3261 sections 7, 20 and 25). No I/O.
//!
//! [`Message::parse`] takes one datagram (or one frame cut by [`frame_stream`]) and returns a
//! validated request or response; every rejection names the rule broken, so a UAS can put it in
//! a 400 reason phrase. Unknown headers are kept verbatim; typed views come from [`SipHeaders`].

mod error;
mod header;
mod message;
mod method;
pub mod salvage;
mod text;
mod typed;
mod uri;

pub use error::ParseError;
pub use header::{Header, HeaderName, Headers};
pub use message::{
    frame_stream, Message, Request, Response, SipHeaders, StreamFrame, MAX_HEADER_BYTES,
};
pub use method::Method;
pub use text::{unescape, Param};
pub use typed::{CSeq, MediaType, NameAddr, Refresher, SessionExpires, Via, BRANCH_COOKIE};
pub use uri::{Host, SipUri, Uri, UriError};
