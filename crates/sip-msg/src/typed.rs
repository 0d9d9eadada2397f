//! Typed views of the headers a user agent acts on. Each parser names the rule a bad value broke.

use crate::method::Method;
use crate::text::{
    find_param, is_lws, is_token, is_token_char, parse_params, quoted_len, split_outside_quotes,
    write_params, Param,
};
use crate::uri::{parse_hostport, Host, Uri};
use crate::ParseError;
use std::fmt;

/// `name-addr` or `addr-spec` with header parameters: From, To, Contact, Route, Record-Route
/// (RFC 3261 20.10, 25.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name as written (quoted string keeps its quotes).
    pub display: Option<String>,
    pub uri: Uri,
    pub params: Vec<Param>,
    /// Whether the URI was in `<>`; serialization always uses `<>`.
    pub bracketed: bool,
}

impl NameAddr {
    pub fn new(uri: Uri) -> Self {
        NameAddr {
            display: None,
            uri,
            params: Vec::new(),
            bracketed: true,
        }
    }

    pub fn param(&self, name: &str) -> Option<&Param> {
        find_param(&self.params, name)
    }

    pub fn tag(&self) -> Option<&str> {
        self.param("tag").and_then(|p| p.value.as_deref())
    }

    pub fn parse(s: &str, header: &str) -> Result<NameAddr, ParseError> {
        let s = s.trim_matches(is_lws);
        let err = |rule| ParseError::header(header, rule);
        let (display, rest) = if s.starts_with('"') {
            let len = quoted_len(s)
                .ok_or_else(|| err("unterminated quoted display name (RFC 3261 25.1)"))?;
            let rest = s[len..].trim_start_matches(is_lws);
            if !rest.starts_with('<') {
                return Err(err(
                    "quoted display name not followed by <URI> (RFC 3261 25.1)",
                ));
            }
            (Some(s[..len].to_string()), rest)
        } else if let Some(lt) = s.find('<') {
            let dn = s[..lt].trim_matches(is_lws);
            if !dn.is_empty() && !dn.split(is_lws).all(|w| w.is_empty() || is_token(w)) {
                return Err(err(
                    "display name is not tokens or a quoted string (RFC 3261 25.1)",
                ));
            }
            ((!dn.is_empty()).then(|| dn.to_string()), &s[lt..])
        } else {
            // addr-spec form: the URI ends at the first ';' (header parameters follow) or LWS.
            let end = s.find([';', ' ', '\t']).unwrap_or(s.len());
            let spec = &s[..end];
            if spec.contains(['?', ',']) {
                return Err(err(
                    "URI with '?' or ',' must be enclosed in <> (RFC 3261 20)",
                ));
            }
            let uri = Uri::parse(spec).map_err(|e| err(e.rule()))?;
            let params = parse_header_params(&s[end..], header)?;
            return Ok(NameAddr {
                display: None,
                uri,
                params,
                bracketed: false,
            });
        };
        // rest starts with '<'
        let close = rest
            .find('>')
            .ok_or_else(|| err("missing '>' after URI (RFC 3261 25.1)"))?;
        let spec = &rest[1..close];
        if spec.chars().any(|c| c.is_whitespace()) {
            return Err(err("whitespace inside <addr-spec> (RFC 3261 25.1)"));
        }
        let uri = Uri::parse(spec).map_err(|e| err(e.rule()))?;
        let params = parse_header_params(&rest[close + 1..], header)?;
        Ok(NameAddr {
            display,
            uri,
            params,
            bracketed: true,
        })
    }
}

/// Header parameters after a URI: `*( SEMI param )`, LWS allowed around `;`.
fn parse_header_params(s: &str, header: &str) -> Result<Vec<Param>, ParseError> {
    let s = s.trim_matches(is_lws);
    if s.is_empty() {
        return Ok(Vec::new());
    }
    let s = s
        .strip_prefix(';')
        .ok_or_else(|| ParseError::header(header, "unexpected text after URI (RFC 3261 25.1)"))?;
    let parts = split_outside_quotes(s, ';')
        .ok_or_else(|| ParseError::header(header, "unterminated quoted string (RFC 3261 25.1)"))?;
    parse_params(&parts, header)
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::with_capacity(64);
        if let Some(d) = &self.display {
            s.push_str(d);
            s.push(' ');
        }
        s.push('<');
        s.push_str(&self.uri.to_string());
        s.push('>');
        write_params(&mut s, &self.params);
        f.write_str(&s)
    }
}

/// One Via value (RFC 3261 20.42).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport, upper-cased: UDP, TCP, TLS, SCTP, WS, or an extension.
    pub transport: String,
    pub host: Host,
    pub port: Option<u16>,
    pub params: Vec<Param>,
}

/// The RFC 3261 branch magic cookie (8.1.1.7).
pub const BRANCH_COOKIE: &str = "z9hG4bK";

impl Via {
    pub fn param(&self, name: &str) -> Option<&Param> {
        find_param(&self.params, name)
    }

    pub fn branch(&self) -> Option<&str> {
        self.param("branch").and_then(|p| p.value.as_deref())
    }

    /// `rport` present (RFC 3581), with or without a value.
    pub fn has_rport(&self) -> bool {
        self.param("rport").is_some()
    }

    pub fn received(&self) -> Option<&str> {
        self.param("received").and_then(|p| p.value.as_deref())
    }

    pub fn parse(s: &str) -> Result<Via, ParseError> {
        let err = |rule| ParseError::header("Via", rule);
        // sent-protocol = name SLASH version SLASH transport, LWS allowed around each SLASH.
        let mut rest = s.trim_matches(is_lws);
        let mut fields = [""; 3];
        for (i, field) in fields.iter_mut().enumerate() {
            let end = rest.find(|c: char| !is_token_char(c)).unwrap_or(rest.len());
            *field = &rest[..end];
            rest = rest[end..].trim_start_matches(is_lws);
            if i < 2 {
                rest = rest
                    .strip_prefix('/')
                    .ok_or_else(|| err("sent-protocol must be SIP/2.0/transport (RFC 3261 25.1)"))?
                    .trim_start_matches(is_lws);
            }
        }
        if !fields[0].eq_ignore_ascii_case("SIP") || fields[2].is_empty() {
            return Err(err(
                "sent-protocol must be SIP/2.0/transport (RFC 3261 25.1)",
            ));
        }
        if fields[1] != "2.0" {
            return Err(ParseError::UnsupportedVersion(format!(
                "SIP/{} in Via",
                fields[1]
            )));
        }
        let (sent_by, params) = match rest.find(';') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        // LWS is allowed around the COLON of sent-by.
        let sent_by: String = sent_by.chars().filter(|c| !is_lws(*c)).collect();
        let (host, port) = parse_hostport(&sent_by)
            .map_err(|_| err("bad sent-by host or port (RFC 3261 25.1)"))?;
        let params = match params {
            Some(p) => {
                let parts = split_outside_quotes(p, ';')
                    .ok_or_else(|| err("unterminated quoted string (RFC 3261 25.1)"))?;
                parse_params(&parts, "Via")?
            }
            None => Vec::new(),
        };
        let via = Via {
            transport: fields[2].to_ascii_uppercase(),
            host,
            port,
            params,
        };
        if let Some(b) = via.param("branch") {
            match b.value.as_deref() {
                None => return Err(err("branch without a value (RFC 3261 20.42)")),
                Some(BRANCH_COOKIE) => {
                    return Err(err(
                        "branch is only the magic cookie: no transaction id (RFC 3261 8.1.1.7)",
                    ))
                }
                Some(_) => {}
            }
        }
        if let Some(r) = via.param("rport").and_then(|p| p.value.as_deref()) {
            if r.parse::<u16>().is_err() {
                return Err(err("rport is not a port number (RFC 3581)"));
            }
        }
        if let Some(r) = via.received() {
            if r.parse::<std::net::IpAddr>().is_err() {
                return Err(err("received is not an IP address (RFC 3261 20.42)"));
            }
        }
        Ok(via)
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = format!("SIP/2.0/{} {}", self.transport, self.host);
        if let Some(p) = self.port {
            s.push(':');
            s.push_str(&p.to_string());
        }
        write_params(&mut s, &self.params);
        f.write_str(&s)
    }
}

/// CSeq: sequence number and method (RFC 3261 20.16); the number is below 2^31 for requests we
/// create and below 2^32 for any we accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

impl CSeq {
    pub fn parse(s: &str) -> Result<CSeq, ParseError> {
        let err = |rule| ParseError::header("CSeq", rule);
        let s = s.trim_matches(is_lws);
        let (num, method) = s
            .split_once(is_lws)
            .ok_or_else(|| err("must be number and method (RFC 3261 20.16)"))?;
        let method = method.trim_matches(is_lws);
        if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("sequence number is not digits (RFC 3261 20.16)"));
        }
        let seq =
            parse_u32(num).ok_or_else(|| err("sequence number above 2^32-1 (RFC 3261 8.1.1.5)"))?;
        if !is_token(method) {
            return Err(err("method is not a token (RFC 3261 25.1)"));
        }
        Ok(CSeq {
            seq,
            method: Method::from_token(method),
        })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// Digits to u32, leading zeros allowed, overflow rejected.
pub(crate) fn parse_u32(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = s.trim_start_matches('0');
    if digits.len() > 10 {
        return None;
    }
    if digits.is_empty() {
        return Some(0);
    }
    digits
        .parse::<u64>()
        .ok()
        .and_then(|v| u32::try_from(v).ok())
}

/// `type/subtype;params` (RFC 3261 20.15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    pub kind: String,
    pub subtype: String,
    pub params: Vec<Param>,
}

impl MediaType {
    pub fn parse(s: &str, header: &str) -> Result<MediaType, ParseError> {
        let err = |rule| ParseError::header(header, rule);
        let mut parts = split_outside_quotes(s, ';')
            .ok_or_else(|| err("unterminated quoted string (RFC 3261 25.1)"))?
            .into_iter();
        let main = parts.next().unwrap_or("").trim_matches(is_lws);
        let (kind, subtype) = main
            .split_once('/')
            .ok_or_else(|| err("media type must be type/subtype (RFC 3261 20.15)"))?;
        let (kind, subtype) = (kind.trim_matches(is_lws), subtype.trim_matches(is_lws));
        if !is_token(kind) || !is_token(subtype) {
            return Err(err(
                "media type must be type/subtype tokens (RFC 3261 20.15)",
            ));
        }
        let rest: Vec<&str> = parts.collect();
        Ok(MediaType {
            kind: kind.to_ascii_lowercase(),
            subtype: subtype.to_ascii_lowercase(),
            params: parse_params(&rest, header)?,
        })
    }

    pub fn is(&self, kind: &str, subtype: &str) -> bool {
        self.kind.eq_ignore_ascii_case(kind) && self.subtype.eq_ignore_ascii_case(subtype)
    }
}

/// Which side refreshes a session (RFC 4028 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    Uac,
    Uas,
}

/// Session-Expires: delta-seconds and an optional refresher (RFC 4028 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionExpires {
    pub seconds: u32,
    pub refresher: Option<Refresher>,
}

impl SessionExpires {
    pub fn parse(s: &str) -> Result<SessionExpires, ParseError> {
        let err = |rule| ParseError::header("Session-Expires", rule);
        let parts = split_outside_quotes(s, ';')
            .ok_or_else(|| err("unterminated quoted string (RFC 3261 25.1)"))?;
        let seconds = parse_u32(parts[0].trim_matches(is_lws))
            .ok_or_else(|| err("delta-seconds expected (RFC 4028 4)"))?;
        let params = parse_params(&parts[1..], "Session-Expires")?;
        let refresher = match find_param(&params, "refresher").and_then(|p| p.value.as_deref()) {
            None => None,
            Some(v) if v.eq_ignore_ascii_case("uac") => Some(Refresher::Uac),
            Some(v) if v.eq_ignore_ascii_case("uas") => Some(Refresher::Uas),
            Some(_) => return Err(err("refresher must be uac or uas (RFC 4028 4)")),
        };
        Ok(SessionExpires { seconds, refresher })
    }
}

impl fmt::Display for SessionExpires {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.seconds)?;
        match self.refresher {
            Some(Refresher::Uac) => f.write_str(";refresher=uac"),
            Some(Refresher::Uas) => f.write_str(";refresher=uas"),
            None => Ok(()),
        }
    }
}

/// Date must be an RFC 1123 date in GMT (RFC 3261 20.17): `Sat, 13 Nov 2010 23:29:00 GMT`.
pub(crate) fn check_date(s: &str) -> Result<(), ParseError> {
    let err = || ParseError::header("Date", "must be an RFC 1123 date in GMT (RFC 3261 20.17)");
    let (wkday, rest) = s.split_once(", ").ok_or_else(err)?;
    let fields: Vec<&str> = rest.split(' ').collect();
    let days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let digits = |f: &str, n: usize| f.len() == n && f.bytes().all(|b| b.is_ascii_digit());
    let ok = days.contains(&wkday)
        && fields.len() == 5
        && digits(fields[0], 2)
        && months.contains(&fields[1])
        && digits(fields[2], 4)
        && fields[3].len() == 8
        && fields[3].split(':').all(|t| digits(t, 2))
        && fields[3].split(':').count() == 3
        && fields[4] == "GMT";
    if ok {
        Ok(())
    } else {
        Err(err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3261_25_1_name_addr_forms() {
        let n = NameAddr::parse(
            r#""J Rosenberg \\\"" <sip:jdrosen@example.com> ; tag = 98asjd8"#,
            "From",
        )
        .unwrap();
        assert_eq!(n.tag(), Some("98asjd8"));
        assert_eq!(n.display.as_deref(), Some(r#""J Rosenberg \\\"""#));
        let n = NameAddr::parse("sip:user@example.com;tag=1", "To").unwrap();
        assert_eq!(n.tag(), Some("1"));
        assert!(!n.bracketed);
        let n = NameAddr::parse("caller<sip:caller@example.com>;tag=323", "From").unwrap();
        assert_eq!(n.display.as_deref(), Some("caller"));
    }

    #[test]
    fn rfc3261_20_addr_spec_with_query_must_be_bracketed() {
        assert!(NameAddr::parse("sip:user@example.com?Route=%3Csip:x%3E", "Contact").is_err());
        assert!(NameAddr::parse("<sip:user@example.com?Route=%3Csip:x%3E>", "Contact").is_ok());
    }

    #[test]
    fn rfc3261_20_42_via_with_lws_and_params() {
        let v = Via::parse("SIP  /   2.0 /UDP 192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.branch(), Some("390skdjuw"));
        let v = Via::parse("SIP/2.0/TCP [2001:db8::9]:5061;rport;branch=z9hG4bKx").unwrap();
        assert!(v.has_rport());
        assert_eq!(v.port, Some(5061));
        assert!(Via::parse("SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK").is_err());
        assert!(Via::parse("SIP/2.0/UDP 192.0.2.15;;,;,,").is_err());
    }

    #[test]
    fn rfc3261_20_16_cseq_range() {
        assert_eq!(CSeq::parse("0009 INVITE").unwrap().seq, 9);
        assert_eq!(CSeq::parse("4294967295 BYE").unwrap().seq, u32::MAX);
        assert!(CSeq::parse("4294967296 BYE").is_err());
        assert!(CSeq::parse("36893488147419103232 REGISTER").is_err());
    }

    #[test]
    fn rfc4028_4_session_expires() {
        let se = SessionExpires::parse("1800;refresher=uas").unwrap();
        assert_eq!(se.seconds, 1800);
        assert_eq!(se.refresher, Some(Refresher::Uas));
        assert!(SessionExpires::parse("abc").is_err());
    }

    #[test]
    fn rfc3261_20_17_date_in_gmt_only() {
        assert!(check_date("Sat, 13 Nov 2010 23:29:00 GMT").is_ok());
        assert!(check_date("Fri, 01 Jan 2010 16:00:00 EST").is_err());
    }
}
