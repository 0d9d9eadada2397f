//! Parse errors: each names the rule the input broke, so a 400 reason phrase can say it.

/// Why a SIP message was rejected. The `Display` text is short enough for a reason phrase.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("Empty message")]
    Empty,
    #[error("Header section not terminated by an empty line (RFC 3261 7)")]
    IncompleteHeaders,
    #[error("Message is not UTF-8 (RFC 3261 25.1)")]
    NotUtf8,
    #[error("Bad Request-Line: {0} (RFC 3261 25.1)")]
    RequestLine(&'static str),
    #[error("Bad Status-Line: {0} (RFC 3261 25.1)")]
    StatusLine(&'static str),
    #[error("Version Not Supported: {0}")]
    UnsupportedVersion(String),
    #[error("Bad Request-URI: {0}")]
    RequestUri(&'static str),
    #[error("Header line without colon (RFC 3261 7.3)")]
    HeaderWithoutColon,
    #[error("Bad header name (RFC 3261 7.3.1)")]
    HeaderName,
    #[error("Bad {header} header: {rule}")]
    Header { header: String, rule: &'static str },
    #[error("Missing {0} header (RFC 3261 8.1.1)")]
    MissingHeader(&'static str),
    #[error("Multiple {0} headers (RFC 3261 7.3.1)")]
    DuplicateHeader(&'static str),
    #[error("Content-Length {declared} larger than body of {available} octets (RFC 3261 18.3)")]
    ContentLengthTooLarge { declared: usize, available: usize },
    #[error("CSeq method {cseq} differs from method {method} (RFC 3261 8.1.1.5)")]
    CSeqMethodMismatch { method: String, cseq: String },
}

impl ParseError {
    pub(crate) fn header(header: impl Into<String>, rule: &'static str) -> Self {
        ParseError::Header {
            header: header.into(),
            rule,
        }
    }
}
