//! Answering messages that failed to parse. RFC 3261 and RFC 4475 ask a UAS to answer a
//! malformed request with 400 when it can still route a response: that needs the Via and,
//! ideally, From, To, Call-ID and CSeq. [`Salvaged::scan`] reads them from raw octets without
//! trusting the rest of the message.

use crate::header::HeaderName;
use crate::message::raw_header_lines;
use crate::text::is_lws;

/// Header values recovered from an invalid request, verbatim.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Salvaged {
    pub method: String,
    pub vias: Vec<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub call_id: Option<String>,
    pub cseq: Option<String>,
}

impl Salvaged {
    /// Recover what is needed to answer. `None` for responses (never answered) and for requests
    /// without a Via (nowhere to send an answer).
    pub fn scan(data: &[u8]) -> Option<Salvaged> {
        let end = data
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(data.len().min(crate::MAX_HEADER_BYTES));
        let head = String::from_utf8_lossy(&data[..end]);
        let head = head.trim_start_matches(['\r', '\n']);
        let start_line = head.split("\r\n").next()?;
        if start_line.starts_with("SIP/") {
            return None;
        }
        let method = start_line.split(' ').next()?.to_string();
        if method.is_empty() {
            return None;
        }
        let mut s = Salvaged {
            method,
            ..Salvaged::default()
        };
        for (name, value) in raw_header_lines(head) {
            if value.contains(['\r', '\n']) || value.is_empty() {
                continue;
            }
            match HeaderName::from_wire(name.trim_matches(is_lws)) {
                HeaderName::Via => s.vias.push(value),
                HeaderName::From => s.from = s.from.or(Some(value)),
                HeaderName::To => s.to = s.to.or(Some(value)),
                HeaderName::CallId => s.call_id = s.call_id.or(Some(value)),
                HeaderName::CSeq => s.cseq = s.cseq.or(Some(value)),
                _ => {}
            }
        }
        if s.vias.is_empty() {
            return None;
        }
        Some(s)
    }

    /// Serialize a final response (never to an ACK: RFC 3261 17.2.1 has no response to ACK).
    /// `to_tag` is added to To when it has none. `reason` must be a single line; control
    /// characters are replaced.
    pub fn response(
        &self,
        status: u16,
        reason: &str,
        to_tag: &str,
        extra: &[(&str, &str)],
    ) -> Option<Vec<u8>> {
        if self.method == "ACK" {
            return None;
        }
        let reason: String = reason
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(120)
            .collect();
        let mut out = format!("SIP/2.0 {status} {reason}\r\n");
        for v in &self.vias {
            out.push_str(&format!("Via: {v}\r\n"));
        }
        if let Some(f) = &self.from {
            out.push_str(&format!("From: {f}\r\n"));
        }
        if let Some(t) = &self.to {
            if t.contains(";tag=") || t.contains(";tag =") {
                out.push_str(&format!("To: {t}\r\n"));
            } else {
                out.push_str(&format!("To: {t};tag={to_tag}\r\n"));
            }
        }
        if let Some(c) = &self.call_id {
            out.push_str(&format!("Call-ID: {c}\r\n"));
        }
        if let Some(c) = &self.cseq {
            out.push_str(&format!("CSeq: {c}\r\n"));
        }
        for (n, v) in extra {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        out.push_str("Content-Length: 0\r\n\r\n");
        Some(out.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4475_3_3_1_answer_missing_headers_with_what_is_there() {
        let raw = b"INVITE sip:u@example.com SIP/2.0\r\nCSeq: 1 INVITE\r\nVia: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKx\r\n\r\n";
        let s = Salvaged::scan(raw).unwrap();
        let resp = s
            .response(400, "Missing Call-ID\r\nX: y", "t1", &[])
            .unwrap();
        let text = String::from_utf8(resp).unwrap();
        assert!(text.starts_with("SIP/2.0 400 Missing Call-ID  X: y\r\n"));
        assert!(text.contains("Via: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKx\r\n"));
    }

    #[test]
    fn responses_and_viales_requests_are_not_answered() {
        assert!(Salvaged::scan(b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n").is_none());
        assert!(Salvaged::scan(b"OPTIONS sip:x SIP/2.0\r\nTo: y\r\n\r\n").is_none());
        let ack = Salvaged::scan(b"ACK sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n").unwrap();
        assert!(ack.response(400, "x", "t", &[]).is_none());
    }
}
