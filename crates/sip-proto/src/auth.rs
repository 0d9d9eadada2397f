//! Digest authentication as a UAS: challenge, verify (RFC 3261 22.4, RFC 7616 computation,
//! RFC 8760 SHA-256 for SIP), with stateless nonces that expire (stale=true, RFC 7616 3.3).
//! Passwords are only ever hashed here; nothing returned or formatted contains them.

use md5::Md5;
use sha2::{Digest, Sha256};
use sip_msg::{HeaderName, Request};
use std::time::Duration;

/// A user allowed to place calls: one per trunk.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// Source networks these credentials are valid from (the trunk's SBCs); empty: any
    /// source the allow-list lets in. Right credentials from elsewhere get 403.
    pub from: Vec<ipnet::IpNet>,
}

impl Credentials {
    /// Whether a request from `ip` may use these credentials.
    pub fn valid_from(&self, ip: std::net::IpAddr) -> bool {
        // A dual-stack socket shows IPv4 peers as ::ffff:a.b.c.d.
        let ip = match ip {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
            v4 => v4,
        };
        self.from.is_empty() || self.from.iter().any(|n| n.contains(&ip))
    }
}

impl std::fmt::Debug for Credentials {
    /// Never print the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("from", &self.from)
            .finish()
    }
}

/// Digest settings of the endpoint.
#[derive(Debug, Clone)]
pub struct DigestConfig {
    pub realm: String,
    pub users: Vec<Credentials>,
    /// A nonce older than this is stale: the UAC retries with a fresh one, no new password.
    pub nonce_ttl: Duration,
    /// Signs nonces so they need no server state.
    pub secret: [u8; 32],
    /// Offered in this order (RFC 8760 2.4: a UAC takes the first it supports). SHA-256 first
    /// by default; some peers (SIPp 3.6, older PBXes) read only the first challenge and only
    /// know MD5, so the order is configurable.
    pub algorithms: Vec<Algorithm>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    /// Both, SHA-256 preferred (RFC 8760).
    pub fn default_order() -> Vec<Algorithm> {
        vec![Algorithm::Sha256, Algorithm::Md5]
    }

    /// `MD5` or `SHA-256` as in the `algorithm` parameter.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        if name.eq_ignore_ascii_case("MD5") {
            Some(Algorithm::Md5)
        } else if name.eq_ignore_ascii_case("SHA-256") {
            Some(Algorithm::Sha256)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    fn hash(self, data: &str) -> String {
        match self {
            Algorithm::Md5 => hex(&Md5::digest(data.as_bytes())),
            Algorithm::Sha256 => hex(&Sha256::digest(data.as_bytes())),
        }
    }
}

/// Outcome of checking a request's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Authorized {
        username: String,
    },
    /// No Authorization for our realm: challenge.
    Missing,
    /// Right password, expired nonce: challenge with stale=true.
    Stale,
    /// Wrong user, password, realm, nonce or URI: challenge again and count the failure.
    Invalid(&'static str),
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Response of RFC 7616 3.4.1 with qop=auth (or RFC 2069 style without qop).
#[allow(clippy::too_many_arguments)]
pub fn compute_response(
    alg: Algorithm,
    username: &str,
    realm: &str,
    password: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    qop: Option<(&str, &str)>,
) -> String {
    let ha1 = alg.hash(&format!("{username}:{realm}:{password}"));
    let ha2 = alg.hash(&format!("{method}:{uri}"));
    match qop {
        Some((nc, cnonce)) => alg.hash(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")),
        None => alg.hash(&format!("{ha1}:{nonce}:{ha2}")),
    }
}

/// Parameters of a `Digest` credentials header (RFC 3261 25.1 digest-response).
fn parse_digest(value: &str) -> Option<Vec<(String, String)>> {
    let rest = value.trim_start();
    let rest = rest
        .strip_prefix("Digest")
        .or_else(|| rest.strip_prefix("digest"))?;
    let mut out = Vec::new();
    let mut chars = rest.char_indices().peekable();
    let bytes = rest;
    let mut start = 0;
    let mut in_quote = false;
    let mut parts = Vec::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if in_quote => {
                chars.next();
            }
            '"' => in_quote = !in_quote,
            ',' if !in_quote => {
                parts.push(&bytes[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if in_quote {
        return None;
    }
    parts.push(&bytes[start..]);
    for p in parts {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        let (k, v) = p.split_once('=')?;
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        out.push((k.trim().to_ascii_lowercase(), v.replace("\\\"", "\"")));
    }
    Some(out)
}

/// Compare without an early exit, so timing does not reveal how much of a response matched.
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl DigestConfig {
    fn sign(&self, issued: u64) -> String {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update(issued.to_be_bytes());
        h.update(self.realm.as_bytes());
        hex(&h.finalize())[..32].to_string()
    }

    /// A nonce carrying its issue time (seconds on the endpoint's clock) and a signature.
    pub fn nonce(&self, now_secs: u64) -> String {
        format!("{now_secs:x}-{}", self.sign(now_secs))
    }

    /// WWW-Authenticate values, SHA-256 first (RFC 8760 2.4: the preferred one first).
    pub fn challenges(&self, now_secs: u64, stale: bool) -> Vec<String> {
        let nonce = self.nonce(now_secs);
        let stale = if stale { ", stale=true" } else { "" };
        self.algorithms
            .iter()
            .map(|a| {
                format!(
                    "Digest realm=\"{}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"{stale}",
                    self.realm,
                    a.name()
                )
            })
            .collect()
    }

    /// Check the request's Authorization for our realm.
    pub fn verify(&self, req: &Request, now_secs: u64) -> Verdict {
        let creds = req
            .headers
            .get_all(&HeaderName::Authorization)
            .filter_map(parse_digest)
            .find(|p| p.iter().any(|(k, v)| k == "realm" && *v == self.realm));
        let Some(params) = creds else {
            return Verdict::Missing;
        };
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let (Some(username), Some(nonce), Some(uri), Some(response)) =
            (get("username"), get("nonce"), get("uri"), get("response"))
        else {
            return Verdict::Invalid("incomplete credentials");
        };
        let alg = match get("algorithm") {
            None => Algorithm::Md5,
            Some(a) if a.eq_ignore_ascii_case("MD5") => Algorithm::Md5,
            Some(a) if a.eq_ignore_ascii_case("SHA-256") => Algorithm::Sha256,
            Some(_) => return Verdict::Invalid("unsupported algorithm"),
        };
        if !self.algorithms.contains(&alg) {
            return Verdict::Invalid("algorithm not offered");
        }
        // The credentials must be for this request's URI (RFC 3261 22.4 step 5).
        if uri != req.uri.to_string() {
            return Verdict::Invalid("uri does not match the Request-URI");
        }
        let Some((issued_hex, sig)) = nonce.split_once('-') else {
            return Verdict::Invalid("not our nonce");
        };
        let Ok(issued) = u64::from_str_radix(issued_hex, 16) else {
            return Verdict::Invalid("not our nonce");
        };
        if !constant_time_eq(sig, &self.sign(issued)) {
            return Verdict::Invalid("not our nonce");
        }
        let qop = match get("qop") {
            None => None,
            Some(q) if q.eq_ignore_ascii_case("auth") => match (get("nc"), get("cnonce")) {
                (Some(nc), Some(cnonce)) => Some((nc, cnonce)),
                _ => return Verdict::Invalid("qop=auth without nc and cnonce"),
            },
            Some(_) => return Verdict::Invalid("unsupported qop"),
        };
        let Some(user) = self.users.iter().find(|u| u.username == username) else {
            return Verdict::Invalid("unknown user or wrong password");
        };
        let expected = compute_response(
            alg,
            username,
            &self.realm,
            &user.password,
            req.method.as_str(),
            uri,
            nonce,
            qop,
        );
        if !constant_time_eq(&expected, &response.to_ascii_lowercase()) {
            return Verdict::Invalid("unknown user or wrong password");
        }
        if now_secs.saturating_sub(issued) > self.nonce_ttl.as_secs() {
            return Verdict::Stale;
        }
        Verdict::Authorized {
            username: username.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sip_msg::{Method, Uri};

    #[test]
    fn rfc2617_3_5_md5_vector() {
        let r = compute_response(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            Some(("00000001", "0a4f113b")),
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn rfc7616_3_9_1_sha256_vector() {
        let r = compute_response(
            Algorithm::Sha256,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
            "GET",
            "/dir/index.html",
            "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            Some(("00000001", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")),
        );
        assert_eq!(
            r,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    fn cfg() -> DigestConfig {
        DigestConfig {
            realm: "switchboard".into(),
            users: vec![Credentials {
                username: "trunk1".into(),
                password: "s3cret-pw".into(),
                from: Vec::new(),
            }],
            nonce_ttl: Duration::from_secs(300),
            secret: [7; 32],
            algorithms: Algorithm::default_order(),
        }
    }

    fn signed(alg: Algorithm, password: &str, nonce: &str) -> Request {
        let mut req = Request::new(Method::Invite, Uri::parse("sip:sb@127.0.0.1").unwrap());
        let resp = compute_response(
            alg,
            "trunk1",
            "switchboard",
            password,
            "INVITE",
            "sip:sb@127.0.0.1",
            nonce,
            Some(("00000001", "abc")),
        );
        req.headers.push(
            HeaderName::Authorization,
            format!("Digest username=\"trunk1\", realm=\"switchboard\", nonce=\"{nonce}\", uri=\"sip:sb@127.0.0.1\", response=\"{resp}\", algorithm={}, qop=auth, nc=00000001, cnonce=\"abc\"", alg.name()),
        );
        req
    }

    #[test]
    fn rfc3261_22_4_verify_md5_and_sha256_and_reject_wrong_password() {
        let c = cfg();
        let nonce = c.nonce(1000);
        for alg in [Algorithm::Md5, Algorithm::Sha256] {
            assert_eq!(
                c.verify(&signed(alg, "s3cret-pw", &nonce), 1010),
                Verdict::Authorized {
                    username: "trunk1".into()
                }
            );
            assert!(matches!(
                c.verify(&signed(alg, "wrong", &nonce), 1010),
                Verdict::Invalid(_)
            ));
        }
        let bare = Request::new(Method::Invite, Uri::parse("sip:sb@127.0.0.1").unwrap());
        assert_eq!(c.verify(&bare, 1010), Verdict::Missing);
    }

    #[test]
    fn rfc7616_3_3_expired_nonce_is_stale_and_forged_nonce_invalid() {
        let c = cfg();
        let nonce = c.nonce(1000);
        assert_eq!(
            c.verify(&signed(Algorithm::Sha256, "s3cret-pw", &nonce), 1301),
            Verdict::Stale
        );
        let forged = format!("{:x}-{}", 5000, "0".repeat(32));
        assert!(matches!(
            c.verify(&signed(Algorithm::Sha256, "s3cret-pw", &forged), 5001),
            Verdict::Invalid(_)
        ));
        assert!(c.challenges(1, true)[0].contains("stale=true"));
        assert!(c.challenges(1, false)[0].contains("algorithm=SHA-256"));
    }

    #[test]
    fn secrets_stay_out_of_debug_and_challenges() {
        let c = cfg();
        assert!(!format!("{c:?}").contains("s3cret-pw"));
        assert!(c
            .challenges(1, false)
            .iter()
            .all(|h| !h.contains("s3cret-pw")));
    }
}
