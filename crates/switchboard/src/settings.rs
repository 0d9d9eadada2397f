//! Settings from the config file (TOML), overridden by flags and `SWITCHBOARD_*` variables.
//! A bad file is reported with its path, line and field.

use bridge::tls::{SipTls, TlsError};
use bridge::BridgeConfig;
use serde::Deserialize;
use sip_proto::sdp::Codec;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;
use toml_pos::line_of;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: String,
        line: usize,
        message: String,
    },
    #[error("{field}: {message}")]
    Flag {
        field: &'static str,
        message: String,
    },
    /// `--tls-cert`/`--tls-key`: the flag, then the file and what is wrong with it.
    #[error("{field} {source}")]
    TlsFlag {
        field: &'static str,
        source: TlsError,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub sip: SipSection,
    #[serde(default)]
    pub media: MediaSection,
    #[serde(default)]
    pub admin: AdminSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipSection {
    pub listen: Option<Vec<SocketAddr>>,
    pub public_ip: Option<IpAddr>,
    pub max_calls: Option<usize>,
    pub max_call_duration_secs: Option<u64>,
    pub answer_delay_ms: Option<u64>,
    pub t1_ms: Option<Spanned<u64>>,
    pub session_expires: Option<Spanned<u32>>,
    /// Source networks allowed to send SIP (CIDR); default loopback only.
    pub allow: Option<Spanned<Vec<String>>>,
    /// "forbidden" (403) or "drop" for everyone else.
    pub deny_action: Option<Spanned<String>>,
    /// Digest authentication of INVITEs (RFC 3261 22, MD5 and SHA-256).
    pub auth: Option<AuthSection>,
    /// Messages per second per source address (0 = off) and the burst allowed.
    pub rate_limit: Option<u32>,
    pub rate_burst: Option<u32>,
    /// Failed authentications in a row that ban a source, and for how long.
    pub ban_after_failed_auth: Option<u32>,
    pub ban_secs: Option<u64>,
    /// SIP over TLS: the certificate chain and its private key (PEM files; a relative path is
    /// relative to this file's directory), and where to listen (default: port 5061 on each
    /// `listen` address's IP).
    pub tls_cert: Option<Spanned<String>>,
    pub tls_key: Option<Spanned<String>>,
    pub tls_listen: Option<Spanned<Vec<SocketAddr>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    pub realm: Option<String>,
    pub nonce_ttl_secs: Option<u64>,
    /// Challenge order, e.g. ["SHA-256", "MD5"] (default) or ["MD5"].
    pub algorithms: Option<Spanned<Vec<String>>>,
    pub users: Spanned<Vec<UserEntry>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    pub username: String,
    pub password: String,
    /// Source networks (CIDR) these credentials are valid from; default: any allowed source.
    #[serde(default)]
    pub from: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaSection {
    pub echo: Option<bool>,
    pub media_timeout_secs: Option<u64>,
    pub rtp_ports: Option<Spanned<String>>,
    pub codecs: Option<Spanned<Vec<String>>>,
    /// "off" (default), "optional" or "required" (SRTP with SDES keys, RFC 4568).
    pub srtp: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    pub listen: Option<SocketAddr>,
    pub drain_timeout_secs: Option<u64>,
}

/// Parse `text` (from `path`) into settings applied over `cfg`.
pub fn apply_file(cfg: &mut BridgeConfig, path: &Path, text: &str) -> Result<(), ConfigError> {
    let p = path.display().to_string();
    let invalid = |offset: usize, message: String| ConfigError::Invalid {
        path: p.clone(),
        line: line_of(text, offset),
        message,
    };
    let file: FileConfig = toml::from_str(text).map_err(|e| {
        let offset = e.span().map(|s| s.start).unwrap_or(0);
        invalid(offset, e.message().to_string())
    })?;
    if let Some(l) = file.sip.listen {
        cfg.sip_listen = l;
    }
    if file.sip.public_ip.is_some() {
        cfg.public_ip = file.sip.public_ip;
    }
    if let Some(n) = file.sip.max_calls {
        cfg.max_calls = n;
    }
    if let Some(s) = file.sip.max_call_duration_secs {
        cfg.max_call_duration = (s > 0).then(|| Duration::from_secs(s));
    }
    if let Some(ms) = file.sip.answer_delay_ms {
        cfg.answer_delay = Duration::from_millis(ms);
    }
    if let Some(t1) = file.sip.t1_ms {
        let v = *t1.get_ref();
        if !(10..=10_000).contains(&v) {
            return Err(invalid(
                t1.span().start,
                "sip.t1_ms: must be 10..=10000 milliseconds".into(),
            ));
        }
        cfg.sip_t1 = Duration::from_millis(v);
    }
    if let Some(se) = file.sip.session_expires {
        let v = *se.get_ref();
        if v != 0 && v < 90 {
            return Err(invalid(
                se.span().start,
                "sip.session_expires: 0 (off) or at least 90 seconds (RFC 4028)".into(),
            ));
        }
        cfg.session_expires = v;
    }
    if let Some(a) = file.sip.allow {
        cfg.access.allow = parse_allow(a.get_ref())
            .map_err(|m| invalid(a.span().start, format!("sip.allow: {m}")))?;
    }
    if let Some(d) = file.sip.deny_action {
        cfg.access.on_deny = parse_deny_action(d.get_ref())
            .map_err(|m| invalid(d.span().start, format!("sip.deny_action: {m}")))?;
    }
    match (&file.sip.tls_cert, &file.sip.tls_key) {
        (Some(cert), Some(key)) => {
            let base = path.parent().unwrap_or(Path::new(""));
            let resolve = |p: &str| -> PathBuf { base.join(p) };
            let listen = file
                .sip
                .tls_listen
                .map(Spanned::into_inner)
                .unwrap_or_default();
            let tls = SipTls::load(&resolve(cert.get_ref()), &resolve(key.get_ref()), listen)
                .map_err(|e| {
                    if e.is_key() {
                        invalid(key.span().start, format!("sip.tls_key {e}"))
                    } else {
                        invalid(cert.span().start, format!("sip.tls_cert {e}"))
                    }
                })?;
            cfg.tls = Some(tls);
        }
        (Some(cert), None) => {
            return Err(invalid(
                cert.span().start,
                "sip.tls_cert: needs sip.tls_key too".into(),
            ))
        }
        (None, Some(key)) => {
            return Err(invalid(
                key.span().start,
                "sip.tls_key: needs sip.tls_cert too".into(),
            ))
        }
        (None, None) => {
            if let Some(l) = &file.sip.tls_listen {
                return Err(invalid(
                    l.span().start,
                    "sip.tls_listen: needs sip.tls_cert and sip.tls_key".into(),
                ));
            }
        }
    }
    if let Some(e) = file.media.echo {
        cfg.echo = e;
    }
    if let Some(t) = file.media.media_timeout_secs {
        cfg.media_timeout = media_timeout(t);
    }
    if let Some(r) = file.sip.rate_limit {
        cfg.rate_limit.messages_per_sec = r;
        cfg.rate_limit.burst = file.sip.rate_burst.unwrap_or(r.saturating_mul(2));
    }
    if let Some(n) = file.sip.ban_after_failed_auth {
        cfg.rate_limit.ban_after_failed_auth = n;
    }
    if let Some(b) = file.sip.ban_secs {
        cfg.rate_limit.ban_for = Duration::from_secs(b);
    }
    if let Some(a) = file.sip.auth {
        if a.users.get_ref().is_empty() {
            return Err(invalid(
                a.users.span().start,
                "sip.auth.users: at least one user".into(),
            ));
        }
        let algorithms = match &a.algorithms {
            None => sip_proto::auth::Algorithm::default_order(),
            Some(list) => {
                let parsed: Option<Vec<_>> = list
                    .get_ref()
                    .iter()
                    .map(|n| sip_proto::auth::Algorithm::from_name(n))
                    .collect();
                match parsed {
                    Some(v) if !v.is_empty() => v,
                    _ => {
                        return Err(invalid(
                            list.span().start,
                            "sip.auth.algorithms: \"SHA-256\" and/or \"MD5\"".into(),
                        ))
                    }
                }
            }
        };
        cfg.auth = Some(sip_proto::auth::DigestConfig {
            algorithms,
            realm: a.realm.unwrap_or_else(|| "switchboard".into()),
            users: {
                let mut users = Vec::new();
                for (i, u) in a.users.into_inner().into_iter().enumerate() {
                    let from = match &u.from {
                        Some(f) => parse_allow(f.get_ref()).map_err(|m| {
                            invalid(f.span().start, format!("sip.auth.users[{i}].from: {m}"))
                        })?,
                        None => Vec::new(),
                    };
                    users.push(sip_proto::auth::Credentials {
                        username: u.username,
                        password: u.password,
                        from,
                    });
                }
                users
            },
            nonce_ttl: Duration::from_secs(a.nonce_ttl_secs.unwrap_or(300)),
            secret: [0; 32],
        });
    }
    if let Some(r) = file.media.rtp_ports {
        cfg.rtp_ports = parse_port_range(r.get_ref())
            .map_err(|m| invalid(r.span().start, format!("media.rtp_ports: {m}")))?;
    }
    if let Some(p) = file.media.srtp {
        cfg.srtp = parse_srtp(p.get_ref())
            .map_err(|m| invalid(p.span().start, format!("media.srtp: {m}")))?;
    }
    if let Some(c) = file.media.codecs {
        cfg.codecs = parse_codecs(c.get_ref())
            .map_err(|m| invalid(c.span().start, format!("media.codecs: {m}")))?;
    }
    if file.admin.listen.is_some() {
        cfg.admin_listen = file.admin.listen;
    }
    if let Some(s) = file.admin.drain_timeout_secs {
        cfg.drain_timeout = Duration::from_secs(s);
    }
    Ok(())
}

pub fn load_file(cfg: &mut BridgeConfig, path: &Path) -> Result<(), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    apply_file(cfg, path, &text)
}

/// `LO-HI`, even-aligned pairs need at least one RTP/RTCP pair.
pub fn parse_port_range(s: &str) -> Result<RangeInclusive<u16>, String> {
    let (lo, hi) = s
        .split_once('-')
        .ok_or("expected LO-HI, e.g. 20000-29999")?;
    let lo: u16 = lo
        .trim()
        .parse()
        .map_err(|_| format!("bad low port {lo:?}"))?;
    let hi: u16 = hi
        .trim()
        .parse()
        .map_err(|_| format!("bad high port {hi:?}"))?;
    if lo < 1024 || hi <= lo + 1 {
        return Err("need 1024 <= LO and room for one even/odd pair below HI".into());
    }
    Ok(lo..=hi)
}

/// 0 turns the media timeout off (a century is "never" for a call).
pub fn media_timeout(secs: u64) -> Duration {
    if secs == 0 {
        Duration::from_secs(100 * 365 * 24 * 3600)
    } else {
        Duration::from_secs(secs)
    }
}

/// CIDRs (a bare address is a /32 or /128).
pub fn parse_allow(items: &[String]) -> Result<Vec<ipnet::IpNet>, String> {
    items
        .iter()
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| format!("{s:?} is not a CIDR such as 192.0.2.0/24"))
        })
        .collect()
}

pub fn parse_deny_action(s: &str) -> Result<sip_proto::DenyAction, String> {
    match s {
        "forbidden" | "403" => Ok(sip_proto::DenyAction::Forbidden),
        "drop" => Ok(sip_proto::DenyAction::Drop),
        other => Err(format!("{other:?}: expected \"forbidden\" or \"drop\"")),
    }
}

pub fn parse_srtp(s: &str) -> Result<sip_proto::sdp::SrtpPolicy, String> {
    sip_proto::sdp::SrtpPolicy::from_name(s)
        .ok_or_else(|| format!("{s:?}: expected \"off\", \"optional\" or \"required\""))
}

pub fn parse_codecs(names: &[String]) -> Result<Vec<Codec>, String> {
    let mut out = Vec::new();
    for n in names {
        out.push(match n.to_ascii_lowercase().as_str() {
            "pcmu" => Codec::Pcmu,
            "pcma" => Codec::Pcma,
            "opus" => Codec::Opus,
            other => return Err(format!("unknown codec {other:?} (pcmu, pcma, opus)")),
        });
    }
    if out.is_empty() {
        return Err("at least one codec".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_file_line_and_field() {
        let mut cfg = BridgeConfig::default();
        let text = "[sip]\nmax_calls = 10\n\n[media]\nrtp_ports = \"30000\"\n";
        let e = apply_file(&mut cfg, Path::new("sb.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("sb.toml:5: media.rtp_ports"), "{e}");
        let e = apply_file(
            &mut cfg,
            Path::new("sb.toml"),
            "[sip]\nmax_calls = 1\nlisten_typo = 3\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("sb.toml:3:") && e.contains("listen_typo"),
            "{e}"
        );
        let e = apply_file(
            &mut cfg,
            Path::new("sb.toml"),
            "[sip]\nsession_expires = 30\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("sb.toml:2: sip.session_expires"), "{e}");
    }

    #[test]
    fn allow_list_and_deny_action() {
        let mut cfg = BridgeConfig::default();
        let text = "[sip]\nallow = [\"10.0.0.0/8\", \"192.0.2.5\"]\ndeny_action = \"drop\"\n";
        apply_file(&mut cfg, Path::new("x.toml"), text).unwrap();
        assert!(cfg.access.allows("10.1.2.3".parse().unwrap()));
        assert!(cfg.access.allows("192.0.2.5".parse().unwrap()));
        assert!(
            !cfg.access.allows("127.0.0.1".parse().unwrap()),
            "the list replaces the default"
        );
        assert_eq!(cfg.access.on_deny, sip_proto::DenyAction::Drop);
        let e = apply_file(
            &mut cfg,
            Path::new("x.toml"),
            "[sip]\n\nallow = [\"10.0.0.0/33\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("x.toml:3: sip.allow"), "{e}");
    }

    #[test]
    fn auth_users_may_be_bound_to_their_trunks_networks() {
        let mut cfg = BridgeConfig::default();
        let text = "[sip.auth]\nusers = [\n  { username = \"t1\", password = \"pw\", from = [\"192.0.2.0/24\"] },\n  { username = \"t2\", password = \"pw2\" },\n]\n";
        apply_file(&mut cfg, Path::new("x.toml"), text).unwrap();
        let a = cfg.auth.unwrap();
        assert!(a.users[0].valid_from("192.0.2.7".parse().unwrap()));
        assert!(a.users[0].valid_from("::ffff:192.0.2.7".parse().unwrap()));
        assert!(!a.users[0].valid_from("198.51.100.1".parse().unwrap()));
        assert!(
            a.users[1].valid_from("198.51.100.1".parse().unwrap()),
            "no from: any"
        );
        let e = apply_file(
            &mut BridgeConfig::default(),
            Path::new("x.toml"),
            "[sip.auth]\nusers = [\n  { username = \"t1\", password = \"pw\", from = [\"192.0.2.0/40\"] },\n]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("x.toml:3: sip.auth.users[0].from"), "{e}");
        assert!(!e.contains("pw"), "no password in the error: {e}");
    }

    #[test]
    fn auth_section() {
        let mut cfg = BridgeConfig::default();
        let text =
            "[sip.auth]\nrealm = \"acme\"\nusers = [{ username = \"t1\", password = \"pw\" }]\n";
        apply_file(&mut cfg, Path::new("x.toml"), text).unwrap();
        let a = cfg.auth.unwrap();
        assert_eq!((a.realm.as_str(), a.users.len()), ("acme", 1));
        let e = apply_file(
            &mut BridgeConfig::default(),
            Path::new("x.toml"),
            "[sip.auth]\nusers = []\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("x.toml:2: sip.auth.users"), "{e}");
        let e = apply_file(
            &mut BridgeConfig::default(),
            Path::new("x.toml"),
            "[sip.auth]\nusers = [{ username = \"a\" }]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("x.toml:2:") && e.contains("password"), "{e}");
    }

    #[test]
    fn file_values_apply() {
        let mut cfg = BridgeConfig::default();
        let text = "[sip]\nlisten = [\"127.0.0.1:5070\", \"[::1]:5070\"]\nmax_calls = 7\n[media]\nrtp_ports = \"40000-40100\"\ncodecs = [\"PCMA\"]\n";
        apply_file(&mut cfg, Path::new("x.toml"), text).unwrap();
        assert_eq!(cfg.sip_listen.len(), 2);
        assert_eq!(cfg.max_calls, 7);
        assert_eq!(cfg.rtp_ports, 40000..=40100);
        assert_eq!(cfg.codecs, vec![Codec::Pcma]);
    }

    #[test]
    fn sip_tls_certificate_key_and_listen() {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/tls"));
        // Paths relative to the settings file.
        let file = dir.join("sb.toml");
        let mut cfg = BridgeConfig::default();
        let text = "[sip]\ntls_cert = \"localhost.pem\"\ntls_key = \"localhost.key\"\ntls_listen = [\"127.0.0.1:5071\"]\n";
        apply_file(&mut cfg, &file, text).unwrap();
        let tls = cfg.tls.unwrap();
        assert_eq!(
            tls.listen,
            ["127.0.0.1:5071".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(tls.key_path, dir.join("localhost.key"));
        let mut cfg = BridgeConfig::default();
        let text = "[sip]\ntls_cert = \"localhost.pem\"\n\ntls_key = \"nope.key\"\n";
        let e = apply_file(&mut cfg, &file, text).unwrap_err().to_string();
        let want = format!(
            "{}:4: sip.tls_key {}: cannot read",
            file.display(),
            dir.join("nope.key").display()
        );
        assert!(e.starts_with(&want), "{e}");
        let text = "[sip]\ntls_cert = \"localhost.key\"\ntls_key = \"localhost.key\"\n";
        let e = apply_file(&mut cfg, &file, text).unwrap_err().to_string();
        assert!(
            e.contains(":2: sip.tls_cert ") && e.contains("no PEM certificate"),
            "{e}"
        );
        let e = apply_file(&mut cfg, &file, "[sip]\ntls_cert = \"localhost.pem\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains(":2: sip.tls_cert: needs sip.tls_key"), "{e}");
        let e = apply_file(
            &mut cfg,
            &file,
            "[sip]\n\ntls_listen = [\"127.0.0.1:5061\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains(":3: sip.tls_listen: needs"), "{e}");
        assert!(cfg.tls.is_none());
    }

    #[test]
    fn media_srtp_policy() {
        use sip_proto::sdp::SrtpPolicy;
        assert_eq!(BridgeConfig::default().srtp, SrtpPolicy::Off);
        let mut cfg = BridgeConfig::default();
        apply_file(
            &mut cfg,
            Path::new("x.toml"),
            "[media]\nsrtp = \"required\"\n",
        )
        .unwrap();
        assert_eq!(cfg.srtp, SrtpPolicy::Required);
        let e = apply_file(&mut cfg, Path::new("x.toml"), "[media]\n\nsrtp = \"on\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("x.toml:3: media.srtp: \"on\": expected"),
            "{e}"
        );
    }
}
