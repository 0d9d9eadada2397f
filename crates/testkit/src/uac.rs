//! A scripted UAC: builds the requests a trunk or softphone sends for one call, with the
//! dialog state (tags, CSeq) a real UAC would keep.

use std::fmt::Write as _;
use std::net::SocketAddr;

/// A typical offer: PCMU, PCMA, telephone-event.
pub fn sdp_offer(ip: impl Into<std::net::IpAddr>, port: u16, direction: &str) -> String {
    let ip: std::net::IpAddr = ip.into();
    let fam = if ip.is_ipv4() { "IP4" } else { "IP6" };
    format!(
        "v=0\r\no=- 1 1 IN {fam} {ip}\r\ns=-\r\nc=IN {fam} {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na={direction}\r\n"
    )
}

/// One call's UAC side.
#[derive(Debug, Clone)]
pub struct Uac {
    pub transport: &'static str,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub call_id: String,
    pub from_tag: String,
    /// Their tag, learnt from a response.
    pub to_tag: Option<String>,
    pub cseq: u32,
    pub branch_seq: u32,
    pub invite_branch: String,
    pub extra_headers: Vec<String>,
}

impl Uac {
    pub fn new(id: &str, local: SocketAddr, remote: SocketAddr) -> Self {
        Uac {
            transport: "UDP",
            local,
            remote,
            call_id: format!("{id}@testkit"),
            from_tag: format!("ft-{id}"),
            to_tag: None,
            cseq: 0,
            branch_seq: 0,
            invite_branch: String::new(),
            extra_headers: Vec::new(),
        }
    }

    pub fn tcp(mut self) -> Self {
        self.transport = "TCP";
        self
    }

    pub fn tls(mut self) -> Self {
        self.transport = "TLS";
        self
    }

    fn branch(&mut self) -> String {
        self.branch_seq += 1;
        format!("z9hG4bK-{}-{}", self.from_tag, self.branch_seq)
    }

    /// Build a request. `branch` None takes a fresh one.
    pub fn request(
        &mut self,
        method: &str,
        branch: Option<&str>,
        cseq: u32,
        body: Option<&str>,
        extra: &[&str],
    ) -> Vec<u8> {
        let branch = match branch {
            Some(b) => b.to_string(),
            None => self.branch(),
        };
        let to_tag = self
            .to_tag
            .as_ref()
            .map(|t| format!(";tag={t}"))
            .unwrap_or_default();
        let mut m = String::new();
        let _ = write!(m, "{method} sip:switchboard@{} SIP/2.0\r\n", self.remote);
        let _ = write!(
            m,
            "Via: SIP/2.0/{} {};branch={branch};rport\r\n",
            self.transport, self.local
        );
        let _ = write!(m, "Max-Forwards: 70\r\n");
        let host = match self.local {
            SocketAddr::V4(a) => a.ip().to_string(),
            SocketAddr::V6(a) => format!("[{}]", a.ip()),
        };
        let _ = write!(
            m,
            "From: \"Caller\" <sip:caller@{host}>;tag={}\r\n",
            self.from_tag
        );
        let _ = write!(m, "To: <sip:switchboard@{}>{to_tag}\r\n", self.remote);
        let _ = write!(m, "Call-ID: {}\r\n", self.call_id);
        let _ = write!(m, "CSeq: {cseq} {method}\r\n");
        let _ = write!(m, "Contact: <sip:caller@{}>\r\n", self.local);
        for h in self
            .extra_headers
            .iter()
            .map(String::as_str)
            .chain(extra.iter().copied())
        {
            let _ = write!(m, "{h}\r\n");
        }
        match body {
            Some(b) => {
                let _ = write!(
                    m,
                    "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{b}",
                    b.len()
                );
            }
            None => m.push_str("Content-Length: 0\r\n\r\n"),
        }
        m.into_bytes()
    }

    pub fn invite(&mut self, extra: &[&str]) -> Vec<u8> {
        self.cseq += 1;
        self.invite_branch = self.branch();
        let b = self.invite_branch.clone();
        let offer = sdp_offer(self.local.ip(), 40000, "sendrecv");
        self.request("INVITE", Some(&b), self.cseq, Some(&offer), extra)
    }

    /// ACK for a 2xx: new branch, INVITE's CSeq number (RFC 3261 13.2.2.4).
    pub fn ack_2xx(&mut self) -> Vec<u8> {
        self.request("ACK", None, self.cseq, None, &[])
    }

    /// ACK for a non-2xx: the INVITE's branch (RFC 3261 17.1.1.3).
    pub fn ack_non_2xx(&mut self) -> Vec<u8> {
        let b = self.invite_branch.clone();
        self.request("ACK", Some(&b), self.cseq, None, &[])
    }

    pub fn cancel(&mut self) -> Vec<u8> {
        let b = self.invite_branch.clone();
        let saved = self.to_tag.take();
        let m = self.request("CANCEL", Some(&b), self.cseq, None, &[]);
        self.to_tag = saved;
        m
    }

    pub fn bye(&mut self) -> Vec<u8> {
        self.cseq += 1;
        self.request("BYE", None, self.cseq, None, &[])
    }

    pub fn reinvite(&mut self, direction: &str) -> Vec<u8> {
        self.cseq += 1;
        self.invite_branch = self.branch();
        let b = self.invite_branch.clone();
        let offer = sdp_offer(self.local.ip(), 40000, direction);
        self.request("INVITE", Some(&b), self.cseq, Some(&offer), &[])
    }

    pub fn in_dialog(&mut self, method: &str, body: Option<(&str, &str)>) -> Vec<u8> {
        self.cseq += 1;
        let b = self.branch();
        let mut m = self.request(method, Some(&b), self.cseq, None, &[]);
        if let Some((ct, body)) = body {
            let text = String::from_utf8_lossy(&m).replace(
                "Content-Length: 0\r\n\r\n",
                &format!(
                    "Content-Type: {ct}\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                ),
            );
            m = text.into_bytes();
        }
        m
    }

    pub fn options(&mut self) -> Vec<u8> {
        self.cseq += 1;
        self.request("OPTIONS", None, self.cseq, None, &[])
    }

    /// Learn the To tag from a response.
    pub fn learn(&mut self, response: &[u8]) {
        if let Ok(r) = sip_msg::Response::parse(response) {
            use sip_msg::SipHeaders;
            if let Some(tag) = r.to_header().and_then(|t| t.tag().map(str::to_string)) {
                self.to_tag = Some(tag);
            }
        }
    }
}
