//! Errors, each naming the rule the input broke.

/// Why an RTP packet was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("RFC 3550 5.1: version must be 2, got {0}")]
    Version(u8),
    #[error("RFC 3550 5.1: packet of {actual} bytes, header/CSRC/extension need {expected}")]
    Truncated { expected: usize, actual: usize },
    #[error("RFC 3550 5.1: padding count {0} is zero or longer than the payload")]
    Padding(u8),
    #[error("RFC 5761 4: payload type {0} collides with RTCP packet types 64-95")]
    PayloadTypeIsRtcp(u8),
    #[error("RFC 3550 5.1: payload type {0} does not fit in 7 bits")]
    PayloadTypeRange(u8),
    #[error("RFC 3550 5.1: packet does not fit in {0} bytes")]
    TooLarge(usize),
}

/// Why an RTCP compound packet was rejected or could not be built.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    #[error("RFC 3550 6.4: malformed RTCP packet: {0}")]
    Malformed(#[from] rtcp_types::RtcpParseError),
    #[error("RFC 3550 6.4: cannot write RTCP packet: {0}")]
    Write(#[from] rtcp_types::RtcpWriteError),
    #[error("RFC 3550 6.1: a compound packet must start with SR or RR, got type {0}")]
    FirstNotReport(u8),
    #[error("RFC 3550 6.4: too many report blocks ({0}, at most 31)")]
    TooManyReportBlocks(usize),
    #[error("RFC 3550 6.5: SDES CNAME longer than 255 bytes")]
    CnameTooLong,
}

/// Why an RFC 4733 telephone-event payload was rejected or could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("RFC 4733 2.3: telephone-event payload is {0} bytes, must be at least 4")]
    Truncated(usize),
    #[error("RFC 4733 3.2: event code {0} is not a DTMF digit (0-15)")]
    NotDtmf(u8),
    #[error("RFC 4733 2.3.5: volume {0} is above 63")]
    Volume(u8),
    #[error("RFC 4733 2.5.1.3: a digit already in progress")]
    Busy,
    #[error("RFC 4733 2.5.2.3: duration of {0} samples does not fit in one event (max 65535)")]
    TooLong(u32),
}

/// Why an RFC 3389 comfort-noise payload was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CnError {
    #[error("RFC 3389 3: comfort-noise payload is empty (needs the noise level byte)")]
    Empty,
    #[error("RFC 3389 3: noise level {0} is above 127 -dBov")]
    Level(u8),
}

/// Errors from the session API (not from the network: those are counted, never returned).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("outgoing audio queue is full ({0} frames): the caller must pace its audio")]
    QueueFull(usize),
    #[error(transparent)]
    Event(#[from] EventError),
    #[error("session closed: RTCP BYE sent (RFC 3550 6.6)")]
    Closed,
    #[error("config: {0}")]
    Config(&'static str),
}
