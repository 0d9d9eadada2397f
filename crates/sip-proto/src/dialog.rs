//! Dialog state of a UAS (RFC 3261 12.1.1) and requests sent inside it (12.2.1.1).

use crate::transaction::{Flow, Transport};
use sip_msg::{HeaderName, Host, Method, NameAddr, Request, SipHeaders, Uri};
use std::net::{IpAddr, SocketAddr};

/// What identifies a dialog (RFC 3261 12): Call-ID and both tags.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
}

#[derive(Debug, Clone)]
pub struct Dialog {
    pub id: DialogId,
    /// The INVITE's To value (our identity) without tag, and From value (theirs) with tag.
    pub local_party: String,
    pub remote_party: String,
    pub local_seq: u32,
    /// Highest CSeq seen from the peer (12.2.2: lower ones get 500).
    pub remote_seq: u32,
    /// Contact of the peer; refreshed by re-INVITE and UPDATE (12.2.2 target refresh).
    pub remote_target: Uri,
    /// Record-Route of the INVITE, in order (12.1.1).
    pub route_set: Vec<NameAddr>,
    /// The flow the dialog was created on; in-dialog requests without an IP literal next hop
    /// go back on it (NAT: the source of the INVITE is reachable, the Contact may not be).
    pub flow: Flow,
    /// A SIPS dialog (RFC 3261 12.1.1): the INVITE's Request-URI was `sips:`, or its top
    /// Record-Route, or its Contact when there was no Record-Route. Our Contact is then `sips:`.
    pub secure: bool,
}

impl Dialog {
    /// Build the UAS side of a dialog from the INVITE (RFC 3261 12.1.1).
    pub fn from_invite(req: &Request, local_tag: String, flow: Flow) -> Option<Dialog> {
        let from = req.from_header()?;
        let remote_tag = from.tag().unwrap_or("").to_string();
        let remote_target = req
            .contact()
            .map(|c| c.uri)
            .unwrap_or_else(|| req.uri.clone());
        let route_set = req.name_addrs(&HeaderName::RecordRoute);
        let is_sips = |u: &Uri| u.as_sip().is_some_and(|s| s.secure);
        let secure = is_sips(&req.uri)
            || match route_set.first() {
                Some(top) => is_sips(&top.uri),
                None => is_sips(&remote_target),
            };
        Some(Dialog {
            id: DialogId {
                call_id: req.call_id()?.to_string(),
                local_tag,
                remote_tag,
            },
            local_party: req.headers.get(&HeaderName::To)?.to_string(),
            remote_party: req.headers.get(&HeaderName::From)?.to_string(),
            local_seq: 0,
            remote_seq: req.cseq()?.seq,
            remote_target,
            route_set,
            flow,
            secure,
        })
    }

    /// Our To-header value with our tag, for responses.
    pub fn local_with_tag(&self) -> String {
        format!("{};tag={}", self.local_party, self.id.local_tag)
    }

    /// A request inside the dialog (12.2.1.1): Request-URI and Route from the route set and
    /// remote target (loose or strict routing), From/To swapped with tags, next local CSeq.
    /// Returns the request (without Via, which the endpoint adds) and where to send it.
    pub fn request(&mut self, method: Method) -> (Request, Flow) {
        if method != Method::Ack && method != Method::Cancel {
            self.local_seq += 1;
        }
        let strict = self
            .route_set
            .first()
            .is_some_and(|r| r.uri.as_sip().is_some_and(|u| !u.is_loose_route()));
        let (uri, routes): (Uri, Vec<String>) = if self.route_set.is_empty() {
            (self.remote_target.clone(), Vec::new())
        } else if strict {
            let mut rest: Vec<String> = self.route_set[1..].iter().map(|r| r.to_string()).collect();
            rest.push(format!("<{}>", self.remote_target));
            (self.route_set[0].uri.clone(), rest)
        } else {
            (
                self.remote_target.clone(),
                self.route_set.iter().map(|r| r.to_string()).collect(),
            )
        };
        let mut req = Request::new(method.clone(), uri.clone());
        req.headers.push(HeaderName::MaxForwards, "70");
        req.headers.push(HeaderName::From, self.local_with_tag());
        req.headers.push(HeaderName::To, self.remote_party.clone());
        req.headers
            .push(HeaderName::CallId, self.id.call_id.clone());
        req.headers
            .push(HeaderName::CSeq, format!("{} {}", self.local_seq, method));
        for r in routes {
            req.headers.push(HeaderName::Route, r);
        }
        let next_hop = if strict || self.route_set.is_empty() {
            uri
        } else {
            self.route_set[0].uri.clone()
        };
        (req, self.next_hop_flow(&next_hop))
    }

    fn next_hop_flow(&self, hop: &Uri) -> Flow {
        // We open no TLS connections (we would have to verify the caller's certificate): a
        // dialog that came over TLS sends its requests back on the caller's connection, as
        // RFC 5923 reuse does, whatever port its Contact names.
        if self.flow.transport == Transport::Tls {
            return self.flow;
        }
        let Some(sip) = hop.as_sip() else {
            return self.flow;
        };
        let transport = match sip.transport().as_deref() {
            _ if sip.secure => Transport::Tls,
            Some("tls") => Transport::Tls,
            Some("tcp") => Transport::Tcp,
            Some("udp") => Transport::Udp,
            _ => self.flow.transport,
        };
        let ip: Option<IpAddr> = match &sip.host {
            Host::Ip(ip) => Some(*ip),
            Host::Domain(_) => None,
        };
        match ip {
            // A different address family than our socket cannot be reached from it.
            Some(ip) if ip.is_ipv4() == self.flow.local.is_ipv4() => Flow {
                transport,
                local: self.flow.local,
                remote: SocketAddr::new(ip, sip.port.unwrap_or(transport.default_port())),
            },
            _ => self.flow,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite(rr: &[&str], contact: &str) -> Request {
        let mut r = Request::new(Method::Invite, Uri::parse("sip:sb@127.0.0.1").unwrap());
        r.headers.push(
            HeaderName::Via,
            "SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bKa",
        );
        r.headers
            .push(HeaderName::From, "\"Alice\" <sip:alice@127.0.0.2>;tag=ft");
        r.headers.push(HeaderName::To, "<sip:sb@127.0.0.1>");
        r.headers.push(HeaderName::CallId, "cid");
        r.headers.push(HeaderName::CSeq, "10 INVITE");
        r.headers.push(HeaderName::Contact, contact);
        for x in rr {
            r.headers.push(HeaderName::RecordRoute, *x);
        }
        r
    }

    fn flow() -> Flow {
        Flow {
            transport: Transport::Udp,
            local: "127.0.0.1:5060".parse().unwrap(),
            remote: "127.0.0.2:5070".parse().unwrap(),
        }
    }

    #[test]
    fn rfc3261_12_1_1_uas_dialog_state_from_invite() {
        let d = Dialog::from_invite(
            &invite(
                &["<sip:p1@127.0.0.9;lr>", "<sip:p2@127.0.0.8;lr>"],
                "<sip:alice@127.0.0.3:5090>",
            ),
            "lt".into(),
            flow(),
        )
        .unwrap();
        assert_eq!(d.id.remote_tag, "ft");
        assert_eq!(d.remote_seq, 10);
        assert_eq!(d.route_set.len(), 2);
        assert_eq!(d.remote_target.to_string(), "sip:alice@127.0.0.3:5090");
    }

    #[test]
    fn rfc3261_12_2_1_1_loose_route_request() {
        let mut d = Dialog::from_invite(
            &invite(
                &["<sip:p1@127.0.0.9;lr>", "<sip:p2@127.0.0.8;lr>"],
                "<sip:alice@127.0.0.3:5090>",
            ),
            "lt".into(),
            flow(),
        )
        .unwrap();
        let (bye, to) = d.request(Method::Bye);
        assert_eq!(bye.uri.to_string(), "sip:alice@127.0.0.3:5090");
        let routes: Vec<&str> = bye.headers.get_all(&HeaderName::Route).collect();
        assert_eq!(routes, ["<sip:p1@127.0.0.9;lr>", "<sip:p2@127.0.0.8;lr>"]);
        assert_eq!(
            to.remote,
            "127.0.0.9:5060".parse().unwrap(),
            "first route is the next hop"
        );
        assert_eq!(bye.from_header().unwrap().tag(), Some("lt"));
        assert_eq!(bye.to_header().unwrap().tag(), Some("ft"));
        assert_eq!(bye.cseq().unwrap().seq, 1);
        let (again, _) = d.request(Method::Bye);
        assert_eq!(again.cseq().unwrap().seq, 2, "local CSeq increments");
    }

    #[test]
    fn rfc3261_12_2_1_1_strict_route_request() {
        let mut d = Dialog::from_invite(
            &invite(&["<sip:p1@127.0.0.9>"], "<sip:alice@127.0.0.3>"),
            "lt".into(),
            flow(),
        )
        .unwrap();
        let (bye, to) = d.request(Method::Bye);
        assert_eq!(bye.uri.to_string(), "sip:p1@127.0.0.9");
        let routes: Vec<&str> = bye.headers.get_all(&HeaderName::Route).collect();
        assert_eq!(routes, ["<sip:alice@127.0.0.3>"]);
        assert_eq!(to.remote, "127.0.0.9:5060".parse().unwrap());
    }

    #[test]
    fn no_route_set_goes_to_contact_and_hostnames_fall_back_to_the_flow() {
        let mut d = Dialog::from_invite(
            &invite(&[], "<sip:alice@pc.example.com>"),
            "lt".into(),
            flow(),
        )
        .unwrap();
        let (_, to) = d.request(Method::Bye);
        assert_eq!(to, flow());
    }

    fn tls_flow() -> Flow {
        Flow {
            transport: Transport::Tls,
            remote: "127.0.0.2:40123".parse().unwrap(),
            local: "127.0.0.1:5061".parse().unwrap(),
        }
    }

    #[test]
    fn rfc3261_12_1_1_sips_dialog_from_request_uri_route_or_contact() {
        let mut sips_ruri = invite(&[], "<sip:alice@127.0.0.3>");
        sips_ruri.uri = Uri::parse("sips:sb@127.0.0.1").unwrap();
        let by_ruri = Dialog::from_invite(&sips_ruri, "lt".into(), tls_flow()).unwrap();
        assert!(by_ruri.secure, "sips: Request-URI");
        let by_contact = Dialog::from_invite(
            &invite(&[], "<sips:alice@127.0.0.3>"),
            "lt".into(),
            tls_flow(),
        )
        .unwrap();
        assert!(by_contact.secure, "sips: Contact and no Record-Route");
        let by_route = Dialog::from_invite(
            &invite(&["<sips:p1@127.0.0.9;lr>"], "<sip:alice@127.0.0.3>"),
            "lt".into(),
            tls_flow(),
        )
        .unwrap();
        assert!(by_route.secure, "sips: top Record-Route");
        let contact_behind_plain_route = Dialog::from_invite(
            &invite(&["<sip:p1@127.0.0.9;lr>"], "<sips:alice@127.0.0.3>"),
            "lt".into(),
            tls_flow(),
        )
        .unwrap();
        assert!(
            !contact_behind_plain_route.secure,
            "with a Record-Route, the Contact does not decide"
        );
        let plain = Dialog::from_invite(
            &invite(&[], "<sip:alice@127.0.0.3;transport=tls>"),
            "lt".into(),
            tls_flow(),
        )
        .unwrap();
        assert!(!plain.secure, "transport=tls is not sips:");
    }

    #[test]
    fn tls_dialog_requests_go_back_on_the_callers_connection() {
        // The Contact names the caller's listening port; the connection is from another one.
        let mut d = Dialog::from_invite(
            &invite(&[], "<sip:alice@127.0.0.2:5071;transport=tls>"),
            "lt".into(),
            tls_flow(),
        )
        .unwrap();
        let (bye, to) = d.request(Method::Bye);
        assert_eq!(
            bye.uri.to_string(),
            "sip:alice@127.0.0.2:5071;transport=tls"
        );
        assert_eq!(to, tls_flow());
    }

    #[test]
    fn rfc3261_19_1_2_tls_next_hop_defaults_to_port_5061() {
        let tcp = Flow {
            transport: Transport::Tcp,
            ..flow()
        };
        for contact in [
            "<sips:alice@127.0.0.3>",
            "<sip:alice@127.0.0.3;transport=tls>",
        ] {
            let mut d = Dialog::from_invite(&invite(&[], contact), "lt".into(), tcp).unwrap();
            let (_, to) = d.request(Method::Bye);
            assert_eq!(to.transport, Transport::Tls, "{contact}");
            assert_eq!(to.remote, "127.0.0.3:5061".parse().unwrap(), "{contact}");
        }
    }
}
