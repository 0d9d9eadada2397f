//! URIs: SIP/SIPS URIs parsed into parts (RFC 3261 19.1), any other scheme kept opaque.

use crate::text::{find_param, parse_params, write_params, Param};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why a URI was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriError {
    Scheme,
    Whitespace,
    Host,
    Port,
    Param,
    UserInfo,
}

impl UriError {
    pub(crate) fn rule(self) -> &'static str {
        match self {
            UriError::Scheme => "bad URI scheme (RFC 3261 25.1 absoluteURI)",
            UriError::Whitespace => "whitespace inside URI (RFC 3261 25.1)",
            UriError::Host => "bad host in URI (RFC 3261 25.1 hostport)",
            UriError::Port => "bad port in URI (RFC 3261 25.1 port)",
            UriError::Param => "bad URI parameter (RFC 3261 19.1.1)",
            UriError::UserInfo => "bad userinfo in URI (RFC 3261 25.1)",
        }
    }
}

/// Host part of a SIP URI or Via sent-by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Domain(String),
    Ip(IpAddr),
}

impl Host {
    pub fn parse(s: &str) -> Result<Host, UriError> {
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or(UriError::Host)?;
            return inner
                .parse::<Ipv6Addr>()
                .map(|a| Host::Ip(IpAddr::V6(a)))
                .map_err(|_| UriError::Host);
        }
        if s.is_empty() {
            return Err(UriError::Host);
        }
        if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            if let Ok(a) = s.parse::<Ipv4Addr>() {
                return Ok(Host::Ip(IpAddr::V4(a)));
            }
        }
        let ok = s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        if !ok || s.starts_with('.') || s.starts_with('-') {
            return Err(UriError::Host);
        }
        Ok(Host::Domain(s.to_string()))
    }

    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Ip(a) => Some(*a),
            Host::Domain(_) => None,
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::Ip(IpAddr::V4(a)) => write!(f, "{a}"),
            Host::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
        }
    }
}

/// Split `host[:port]`, handling `[v6]:port`.
pub(crate) fn parse_hostport(s: &str) -> Result<(Host, Option<u16>), UriError> {
    let (host, port) = if s.starts_with('[') {
        match s.find(']') {
            Some(end) => {
                let rest = &s[end + 1..];
                let port = match rest.strip_prefix(':') {
                    Some(p) => Some(p),
                    None if rest.is_empty() => None,
                    None => return Err(UriError::Host),
                };
                (&s[..=end], port)
            }
            None => return Err(UriError::Host),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        Some(p) => {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(UriError::Port);
            }
            Some(p.parse::<u16>().map_err(|_| UriError::Port)?)
        }
        None => None,
    };
    Ok((Host::parse(host)?, port))
}

/// A `sip:` or `sips:` URI. User, password and parameters are kept as received (escaped), so
/// the URI serializes to what came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    pub secure: bool,
    pub user: Option<String>,
    pub password: Option<String>,
    pub host: Host,
    pub port: Option<u16>,
    pub params: Vec<Param>,
    /// The `?headers` part, escaped, without the `?`.
    pub headers: Option<String>,
}

impl SipUri {
    pub fn new(host: Host, port: Option<u16>) -> Self {
        SipUri {
            secure: false,
            user: None,
            password: None,
            host,
            port,
            params: Vec::new(),
            headers: None,
        }
    }

    pub fn param(&self, name: &str) -> Option<&Param> {
        find_param(&self.params, name)
    }

    /// The `transport` parameter, lower-cased, if any.
    pub fn transport(&self) -> Option<String> {
        self.param("transport")
            .and_then(|p| p.value.as_ref())
            .map(|v| v.to_ascii_lowercase())
    }

    /// Loose routing (`;lr`, RFC 3261 16.12).
    pub fn is_loose_route(&self) -> bool {
        self.param("lr").is_some()
    }

    fn parse(secure: bool, rest: &str) -> Result<SipUri, UriError> {
        // userinfo ends at the first '@': '@' may not appear unescaped in user or password.
        let (userinfo, hostpart) = match rest.find('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (user, password) = match userinfo {
            Some(ui) => {
                let (u, p) = match ui.split_once(':') {
                    Some((u, p)) => (u, Some(p.to_string())),
                    None => (ui, None),
                };
                if u.is_empty() {
                    return Err(UriError::UserInfo);
                }
                (Some(u.to_string()), p)
            }
            None => (None, None),
        };
        let (hostpart, headers) = match hostpart.split_once('?') {
            Some((h, hd)) => (h, Some(hd.to_string())),
            None => (hostpart, None),
        };
        let mut pieces = hostpart.split(';');
        let hostport = pieces.next().unwrap_or("");
        let (host, port) = parse_hostport(hostport)?;
        let rest: Vec<&str> = pieces.collect();
        let params = if rest.is_empty() {
            Vec::new()
        } else {
            parse_params(&rest, "URI").map_err(|_| UriError::Param)?
        };
        Ok(SipUri {
            secure,
            user,
            password,
            host,
            port,
            params,
            headers,
        })
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::with_capacity(64);
        s.push_str(if self.secure { "sips:" } else { "sip:" });
        if let Some(u) = &self.user {
            s.push_str(u);
            if let Some(p) = &self.password {
                s.push(':');
                s.push_str(p);
            }
            s.push('@');
        }
        s.push_str(&self.host.to_string());
        if let Some(p) = self.port {
            s.push(':');
            s.push_str(&p.to_string());
        }
        write_params(&mut s, &self.params);
        if let Some(h) = &self.headers {
            s.push('?');
            s.push_str(h);
        }
        f.write_str(&s)
    }
}

/// Any URI: SIP/SIPS parsed, other schemes (tel:, urn:, unknown) opaque (RFC 3261 19.1, 25.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri {
    Sip(SipUri),
    Other { scheme: String, rest: String },
}

impl Uri {
    pub fn parse(s: &str) -> Result<Uri, UriError> {
        if s.is_empty() {
            return Err(UriError::Scheme);
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(UriError::Whitespace);
        }
        let (scheme, rest) = s.split_once(':').ok_or(UriError::Scheme)?;
        let mut sc = scheme.chars();
        let first_ok = sc.next().is_some_and(|c| c.is_ascii_alphabetic());
        if !first_ok || !sc.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) {
            return Err(UriError::Scheme);
        }
        if scheme.eq_ignore_ascii_case("sip") {
            return SipUri::parse(false, rest).map(Uri::Sip);
        }
        if scheme.eq_ignore_ascii_case("sips") {
            return SipUri::parse(true, rest).map(Uri::Sip);
        }
        if rest.is_empty() || rest.contains(['<', '>', '"']) {
            return Err(UriError::Scheme);
        }
        Ok(Uri::Other {
            scheme: scheme.to_string(),
            rest: rest.to_string(),
        })
    }

    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(u) => Some(u),
            Uri::Other { .. } => None,
        }
    }

    pub fn scheme(&self) -> &str {
        match self {
            Uri::Sip(u) if u.secure => "sips",
            Uri::Sip(_) => "sip",
            Uri::Other { scheme, .. } => scheme,
        }
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(u) => u.fmt(f),
            Uri::Other { scheme, rest } => write!(f, "{scheme}:{rest}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3261_19_1_sip_uri_parts() {
        let u = Uri::parse("sip:alice:pw@[2001:db8::1]:5070;transport=TCP;lr?Subject=x").unwrap();
        let s = u.as_sip().unwrap();
        assert_eq!(s.user.as_deref(), Some("alice"));
        assert_eq!(s.password.as_deref(), Some("pw"));
        assert_eq!(s.host, Host::Ip("2001:db8::1".parse().unwrap()));
        assert_eq!(s.port, Some(5070));
        assert_eq!(s.transport().as_deref(), Some("tcp"));
        assert!(s.is_loose_route());
        assert_eq!(s.headers.as_deref(), Some("Subject=x"));
        assert_eq!(
            u.to_string(),
            "sip:alice:pw@[2001:db8::1]:5070;transport=TCP;lr?Subject=x"
        );
    }

    #[test]
    fn other_schemes_are_opaque_and_bad_ones_rejected() {
        assert!(matches!(Uri::parse("tel:+15551234"), Ok(Uri::Other { .. })));
        assert!(matches!(
            Uri::parse("soap.beep://192.0.2.103:3002"),
            Ok(Uri::Other { .. })
        ));
        assert_eq!(Uri::parse("<sip:a@b>"), Err(UriError::Scheme));
        assert_eq!(Uri::parse("sip:a@b c"), Err(UriError::Whitespace));
        assert_eq!(Uri::parse("sip:a@host:99999"), Err(UriError::Port));
        assert_eq!(Uri::parse("sip:a@[::1"), Err(UriError::Host));
    }
}
