//! Requests and responses: framing, validation and serialization (RFC 3261 7, 18.3, 25).

use crate::header::{HeaderName, Headers};
use crate::method::Method;
use crate::text::{is_lws, is_token, is_word, split_outside_quotes};
use crate::typed::{check_date, CSeq, MediaType, NameAddr, SessionExpires, Via};
use crate::uri::Uri;
use crate::ParseError;

/// A SIP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    pub headers: Headers,
    pub body: Vec<u8>,
}

/// A SIP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

/// Either kind of message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response(Response),
}

/// Where a stream frame ends (RFC 3261 18.3: Content-Length delimits messages on streams).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFrame {
    /// A whole message occupies the first `n` octets.
    Complete(usize),
    /// Need more octets.
    Incomplete,
}

/// Largest header section we accept; anything longer is an attack or a bug.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Find the end of the next message in a stream buffer. Leading CRLFs (keep-alives) are the
/// caller's to strip. A missing Content-Length counts as 0; a malformed one is an error because
/// framing is lost (RFC 4475 3.1.2.3).
pub fn frame_stream(buf: &[u8]) -> Result<StreamFrame, ParseError> {
    let Some(head_end) = find_header_end(buf) else {
        if buf.len() > MAX_HEADER_BYTES {
            return Err(ParseError::IncompleteHeaders);
        }
        return Ok(StreamFrame::Incomplete);
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| ParseError::NotUtf8)?;
    let mut length: Option<usize> = None;
    for (name, value) in raw_header_lines(head) {
        if HeaderName::from_wire(name) == HeaderName::ContentLength {
            let v = parse_content_length(&value)?;
            if length.is_some_and(|l| l != v) {
                return Err(ParseError::DuplicateHeader("Content-Length"));
            }
            length = Some(v);
        }
    }
    let total = head_end + 4 + length.unwrap_or(0);
    if buf.len() >= total {
        Ok(StreamFrame::Complete(total))
    } else {
        Ok(StreamFrame::Incomplete)
    }
}

fn find_header_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

fn parse_content_length(v: &str) -> Result<usize, ParseError> {
    let v = v.trim_matches(is_lws);
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::header(
            "Content-Length",
            "must be a non-negative integer (RFC 3261 20.14)",
        ));
    }
    let digits = v.trim_start_matches('0');
    if digits.len() > 9 {
        return Err(ParseError::header(
            "Content-Length",
            "larger than any message we accept (RFC 3261 20.14)",
        ));
    }
    Ok(digits.parse::<usize>().unwrap_or(0))
}

/// Split a header section (no start line) into (name, unfolded value), skipping nothing.
/// Lines without a colon yield a name of "" so validation can report them.
pub(crate) fn raw_header_lines(head: &str) -> impl Iterator<Item = (&str, String)> {
    let mut lines = head.split("\r\n").peekable();
    // skip the start line
    lines.next();
    std::iter::from_fn(move || {
        let line = lines.next()?;
        let mut value_parts: Vec<&str> = Vec::new();
        let (name, first) = match line.split_once(':') {
            Some((n, v)) => (n.trim_end_matches(is_lws), v),
            None => ("", line),
        };
        value_parts.push(first);
        // RFC 3261 7.3.1: a line starting with SP or HT continues the previous header.
        while let Some(next) = lines.peek() {
            if next.starts_with([' ', '\t']) {
                value_parts.push(next);
                lines.next();
            } else {
                break;
            }
        }
        let mut value = String::with_capacity(first.len());
        for part in value_parts {
            let t = part.trim_matches(is_lws);
            if t.is_empty() {
                continue;
            }
            if !value.is_empty() {
                value.push(' ');
            }
            value.push_str(t);
        }
        Some((name, value))
    })
}

impl Message {
    /// Parse one datagram (RFC 3261 18.3): the body is Content-Length octets, octets after it
    /// are ignored; without Content-Length the body is the rest of the datagram. The message is
    /// fully validated: see [`Message::validate`].
    pub fn parse(data: &[u8]) -> Result<Message, ParseError> {
        let msg = Self::parse_unvalidated(data)?;
        msg.validate()?;
        Ok(msg)
    }

    /// Framing and header splitting only. Used by [`Message::parse`] and by the endpoint when
    /// it needs the headers of an invalid message to answer it.
    fn parse_unvalidated(data: &[u8]) -> Result<Message, ParseError> {
        // Leading CRLFs are keep-alives or trailing octets of a previous message (RFC 3261 7.5).
        let start = data
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .ok_or(ParseError::Empty)?;
        let data = &data[start..];
        let (head, rest) = match find_header_end(data) {
            Some(end) => (&data[..end], &data[end + 4..]),
            None => {
                // A datagram ends the message; accept a header section cut right after a CRLF.
                let trimmed = data
                    .strip_suffix(b"\r\n")
                    .ok_or(ParseError::IncompleteHeaders)?;
                (trimmed, &data[data.len()..])
            }
        };
        let head = std::str::from_utf8(head).map_err(|_| ParseError::NotUtf8)?;
        let start_line = head.split("\r\n").next().unwrap_or("");
        let mut headers = Headers::new();
        for (name, value) in raw_header_lines(head) {
            if name.is_empty() {
                return Err(ParseError::HeaderWithoutColon);
            }
            if !is_token(name) {
                return Err(ParseError::HeaderName);
            }
            headers.push(HeaderName::from_wire(name), value);
        }
        let body = match headers.get(&HeaderName::ContentLength) {
            Some(v) => {
                let len = parse_content_length(v)?;
                if len > rest.len() {
                    return Err(ParseError::ContentLengthTooLarge {
                        declared: len,
                        available: rest.len(),
                    });
                }
                rest[..len].to_vec()
            }
            None => rest.to_vec(),
        };
        if let Some(status_line) = start_line.strip_prefix("SIP/") {
            let (version, rest) = status_line.split_once(' ').ok_or(ParseError::StatusLine(
                "expected SIP-Version SP Status-Code SP Reason",
            ))?;
            if version != "2.0" {
                return Err(ParseError::UnsupportedVersion(format!("SIP/{version}")));
            }
            let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
            if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ParseError::StatusLine("status code must be 3 digits"));
            }
            let status: u16 = code.parse().unwrap_or(0);
            if !(100..=699).contains(&status) {
                return Err(ParseError::StatusLine("status code must be 100-699"));
            }
            if reason.chars().any(|c| c.is_control() && c != '\t') {
                return Err(ParseError::StatusLine("control character in reason phrase"));
            }
            return Ok(Message::Response(Response {
                status,
                reason: reason.to_string(),
                headers,
                body,
            }));
        }
        let mut parts = start_line.split(' ');
        let (Some(method), Some(uri), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ParseError::RequestLine(
                "must be Method SP Request-URI SP SIP-Version, single spaces",
            ));
        };
        if !is_token(method) {
            return Err(ParseError::RequestLine("method is not a token"));
        }
        match version.strip_prefix("SIP/") {
            Some("2.0") => {}
            Some(v) if !v.is_empty() => {
                return Err(ParseError::UnsupportedVersion(format!("SIP/{v}")))
            }
            _ => return Err(ParseError::RequestLine("bad SIP-Version")),
        }
        let uri = Uri::parse(uri).map_err(|e| ParseError::RequestUri(e.rule()))?;
        Ok(Message::Request(Request {
            method: Method::from_token(method),
            uri,
            headers,
            body,
        }))
    }

    /// Check what a UA relies on: mandatory headers present once, typed headers well-formed,
    /// CSeq method matching the request (RFC 3261 8.1.1, 20, 25).
    pub fn validate(&self) -> Result<(), ParseError> {
        let headers = self.headers();
        for name in [
            HeaderName::CallId,
            HeaderName::CSeq,
            HeaderName::From,
            HeaderName::To,
            HeaderName::MaxForwards,
            HeaderName::ContentLength,
            HeaderName::ContentType,
            HeaderName::SessionExpires,
            HeaderName::MinSe,
        ] {
            if headers.count(&name) > 1 {
                return Err(ParseError::DuplicateHeader(static_name(&name)));
            }
        }
        for name in [
            HeaderName::Via,
            HeaderName::From,
            HeaderName::To,
            HeaderName::CallId,
            HeaderName::CSeq,
        ] {
            if headers.get(&name).is_none() {
                return Err(ParseError::MissingHeader(static_name(&name)));
            }
        }
        let vias = headers.list(&HeaderName::Via);
        for v in headers.get_all(&HeaderName::Via) {
            // An empty element in the list (",,") is not a Via.
            if split_outside_quotes(v, ',')
                .ok_or_else(|| ParseError::header("Via", "unterminated quoted string"))?
                .iter()
                .any(|p| p.trim_matches(is_lws).is_empty())
            {
                return Err(ParseError::header(
                    "Via",
                    "empty element in Via list (RFC 3261 7.3.1)",
                ));
            }
        }
        for v in &vias {
            Via::parse(v)?;
        }
        let call_id = headers.get(&HeaderName::CallId).unwrap_or("");
        if !is_word_at_word(call_id) {
            return Err(ParseError::header(
                "Call-ID",
                "must be word[@word] (RFC 3261 25.1)",
            ));
        }
        let cseq = CSeq::parse(headers.get(&HeaderName::CSeq).unwrap_or(""))?;
        for name in [HeaderName::From, HeaderName::To] {
            NameAddr::parse(headers.get(&name).unwrap_or(""), name.as_str())?;
        }
        for name in [
            HeaderName::Contact,
            HeaderName::Route,
            HeaderName::RecordRoute,
        ] {
            for v in headers.get_all(&name) {
                let parts = split_outside_quotes(v, ',').ok_or_else(|| {
                    ParseError::header(name.as_str(), "unterminated quoted string (RFC 3261 25.1)")
                })?;
                for p in parts {
                    if name == HeaderName::Contact && p.trim_matches(is_lws) == "*" {
                        continue;
                    }
                    NameAddr::parse(p, name.as_str())?;
                }
            }
        }
        if let Some(mf) = headers.get(&HeaderName::MaxForwards) {
            if crate::typed::parse_u32(mf).is_none() {
                return Err(ParseError::header(
                    "Max-Forwards",
                    "must be 1*DIGIT (RFC 3261 20.22)",
                ));
            }
        }
        if let Some(ct) = headers.get(&HeaderName::ContentType) {
            MediaType::parse(ct, "Content-Type")?;
        }
        if let Some(se) = headers.get(&HeaderName::SessionExpires) {
            SessionExpires::parse(se)?;
        }
        if let Some(d) = headers.get(&HeaderName::Date) {
            check_date(d)?;
        }
        for name in [
            HeaderName::Require,
            HeaderName::Supported,
            HeaderName::ProxyRequire,
        ] {
            if headers.list(&name).iter().any(|t| !is_token(t)) {
                return Err(ParseError::header(
                    name.as_str(),
                    "option tags must be tokens (RFC 3261 20.32)",
                ));
            }
        }
        if let Message::Request(req) = self {
            if let Some(sip) = req.uri.as_sip() {
                if sip.headers.is_some() {
                    return Err(ParseError::RequestUri(
                        "headers are not allowed in a Request-URI (RFC 3261 19.1.1)",
                    ));
                }
            }
            if cseq.method != req.method {
                return Err(ParseError::CSeqMethodMismatch {
                    method: req.method.to_string(),
                    cseq: cseq.method.to_string(),
                });
            }
        }
        Ok(())
    }

    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }
}

fn is_word_at_word(s: &str) -> bool {
    match s.split_once('@') {
        Some((a, b)) => is_word(a) && is_word(b),
        None => is_word(s),
    }
}

fn static_name(name: &HeaderName) -> &'static str {
    match name {
        HeaderName::CallId => "Call-ID",
        HeaderName::CSeq => "CSeq",
        HeaderName::From => "From",
        HeaderName::To => "To",
        HeaderName::Via => "Via",
        HeaderName::MaxForwards => "Max-Forwards",
        HeaderName::ContentLength => "Content-Length",
        HeaderName::ContentType => "Content-Type",
        HeaderName::SessionExpires => "Session-Expires",
        HeaderName::MinSe => "Min-SE",
        _ => "header",
    }
}

/// Typed access shared by requests and responses. Values were validated by
/// [`Message::parse`], so accessors return `None` only for absent headers.
pub trait SipHeaders {
    fn headers(&self) -> &Headers;

    fn call_id(&self) -> Option<&str> {
        self.headers().get(&HeaderName::CallId)
    }
    fn cseq(&self) -> Option<CSeq> {
        CSeq::parse(self.headers().get(&HeaderName::CSeq)?).ok()
    }
    // "From" is the SIP header's name, not a conversion.
    #[allow(clippy::wrong_self_convention)]
    fn from_header(&self) -> Option<NameAddr> {
        NameAddr::parse(self.headers().get(&HeaderName::From)?, "From").ok()
    }
    fn to_header(&self) -> Option<NameAddr> {
        NameAddr::parse(self.headers().get(&HeaderName::To)?, "To").ok()
    }
    fn vias(&self) -> Vec<Via> {
        self.headers()
            .list(&HeaderName::Via)
            .iter()
            .filter_map(|v| Via::parse(v).ok())
            .collect()
    }
    fn top_via(&self) -> Option<Via> {
        self.headers()
            .list(&HeaderName::Via)
            .first()
            .and_then(|v| Via::parse(v).ok())
    }
    fn name_addrs(&self, name: &HeaderName) -> Vec<NameAddr> {
        self.headers()
            .list(name)
            .iter()
            .filter_map(|v| NameAddr::parse(v, name.as_str()).ok())
            .collect()
    }
    fn contact(&self) -> Option<NameAddr> {
        self.name_addrs(&HeaderName::Contact).into_iter().next()
    }
    fn max_forwards(&self) -> Option<u32> {
        crate::typed::parse_u32(self.headers().get(&HeaderName::MaxForwards)?.trim())
    }
    fn content_type(&self) -> Option<MediaType> {
        MediaType::parse(
            self.headers().get(&HeaderName::ContentType)?,
            "Content-Type",
        )
        .ok()
    }
    fn session_expires(&self) -> Option<SessionExpires> {
        SessionExpires::parse(self.headers().get(&HeaderName::SessionExpires)?).ok()
    }
    fn min_se(&self) -> Option<u32> {
        let v = self.headers().get(&HeaderName::MinSe)?;
        crate::typed::parse_u32(v.split(';').next().unwrap_or("").trim())
    }
    /// Option tags of a list header (Require, Supported, ...).
    fn tags(&self, name: &HeaderName) -> Vec<String> {
        self.headers().list(name)
    }
    fn has_tag(&self, name: &HeaderName, tag: &str) -> bool {
        self.headers()
            .list(name)
            .iter()
            .any(|t| t.eq_ignore_ascii_case(tag))
    }
}

impl SipHeaders for Request {
    fn headers(&self) -> &Headers {
        &self.headers
    }
}

impl SipHeaders for Response {
    fn headers(&self) -> &Headers {
        &self.headers
    }
}

impl Request {
    pub fn new(method: Method, uri: Uri) -> Self {
        Request {
            method,
            uri,
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// Parse a datagram that must hold a request.
    pub fn parse(data: &[u8]) -> Result<Request, ParseError> {
        match Message::parse(data)? {
            Message::Request(r) => Ok(r),
            Message::Response(_) => Err(ParseError::RequestLine("expected a request")),
        }
    }

    /// Set the body with its Content-Type and Content-Length.
    pub fn set_body(&mut self, content_type: &str, body: Vec<u8>) {
        set_body(&mut self.headers, content_type, &body);
        self.body = body;
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512 + self.body.len());
        out.extend_from_slice(self.method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.uri.to_string().as_bytes());
        out.extend_from_slice(b" SIP/2.0\r\n");
        self.headers.write_to(&mut out);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

impl Response {
    pub fn new(status: u16, reason: impl Into<String>) -> Self {
        Response {
            status,
            reason: reason.into(),
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// A response to `req` with the headers RFC 3261 8.2.6.2 copies: Via, From, To, Call-ID,
    /// CSeq (and Record-Route for dialog-creating responses, which the dialog layer adds).
    pub fn for_request(req: &Request, status: u16, reason: impl Into<String>) -> Self {
        let mut resp = Response::new(status, reason);
        for h in req.headers.iter() {
            if matches!(
                h.name,
                HeaderName::Via
                    | HeaderName::From
                    | HeaderName::To
                    | HeaderName::CallId
                    | HeaderName::CSeq
            ) {
                resp.headers.push(h.name.clone(), h.value.clone());
            }
        }
        resp.headers.push(HeaderName::ContentLength, "0");
        resp
    }

    pub fn parse(data: &[u8]) -> Result<Response, ParseError> {
        match Message::parse(data)? {
            Message::Response(r) => Ok(r),
            Message::Request(_) => Err(ParseError::StatusLine("expected a response")),
        }
    }

    pub fn set_body(&mut self, content_type: &str, body: Vec<u8>) {
        set_body(&mut self.headers, content_type, &body);
        self.body = body;
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512 + self.body.len());
        out.extend_from_slice(b"SIP/2.0 ");
        out.extend_from_slice(self.status.to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.reason.as_bytes());
        out.extend_from_slice(b"\r\n");
        self.headers.write_to(&mut out);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

fn set_body(headers: &mut Headers, content_type: &str, body: &[u8]) {
    if body.is_empty() {
        headers.remove(&HeaderName::ContentType);
    } else {
        headers.set(HeaderName::ContentType, content_type);
    }
    headers.set(HeaderName::ContentLength, body.len().to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &[u8] = b"INVITE sip:bob@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1;rport\r\n\
From: <sip:alice@127.0.0.1>;tag=a1\r\n\
To: <sip:bob@127.0.0.1>\r\n\
Call-ID: c1@127.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
Max-Forwards: 70\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\r\nv=0\r";

    #[test]
    fn rfc3261_18_3_body_is_content_length_octets() {
        let Message::Request(r) = Message::parse(INVITE).unwrap() else {
            panic!()
        };
        assert_eq!(r.body, b"v=0\r");
        assert_eq!(r.cseq().unwrap().seq, 1);
        assert_eq!(r.top_via().unwrap().branch(), Some("z9hG4bK-1"));
    }

    #[test]
    fn rfc3261_18_3_stream_framing() {
        assert_eq!(
            frame_stream(&INVITE[..50]).unwrap(),
            StreamFrame::Incomplete
        );
        assert_eq!(
            frame_stream(INVITE).unwrap(),
            StreamFrame::Complete(INVITE.len())
        );
        let mut two = INVITE.to_vec();
        two.extend_from_slice(INVITE);
        assert_eq!(
            frame_stream(&two).unwrap(),
            StreamFrame::Complete(INVITE.len())
        );
    }

    #[test]
    fn response_for_request_copies_dialog_headers() {
        let r = Request::parse(INVITE).unwrap();
        let resp = Response::for_request(&r, 180, "Ringing");
        let back = Response::parse(&resp.to_bytes()).unwrap();
        assert_eq!(back.call_id(), Some("c1@127.0.0.1"));
        assert_eq!(back.status, 180);
    }
}
