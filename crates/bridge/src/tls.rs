//! SIP over TLS (RFC 3261 26.2): the server certificate chain and private key from PEM files,
//! and the rustls server config (ring provider picked explicitly, TLS 1.2 and 1.3 only, no
//! client certificates). The key never reaches a log: errors about it say what is wrong, not
//! what the file holds, and [`SipTls`]'s `Debug` shows the paths only.

use rustls::ServerConfig;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The SIP port for TLS when none is given (RFC 3261 19.1.2).
pub const DEFAULT_TLS_PORT: u16 = 5061;

/// TLS listeners and the certificate they present.
#[derive(Clone)]
pub struct SipTls {
    /// Addresses to accept TLS on; empty: each SIP listen address's IP on port 5061 (port 0,
    /// an ephemeral port, when the SIP address has port 0).
    pub listen: Vec<SocketAddr>,
    pub server: Arc<ServerConfig>,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
}

impl std::fmt::Debug for SipTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipTls")
            .field("listen", &self.listen)
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

/// Why the certificate or key cannot be used; each names its file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    Cert { path: String, reason: String },
    #[error("{path}: {reason}")]
    Key { path: String, reason: String },
}

impl TlsError {
    /// The error is about the private key (else the certificate file).
    pub fn is_key(&self) -> bool {
        matches!(self, TlsError::Key { .. })
    }
}

impl SipTls {
    /// Read `cert` (PEM certificates, leaf first) and `key` (one PEM private key: PKCS#8,
    /// PKCS#1 or SEC1) and build the server config. The key must match the leaf.
    pub fn load(cert: &Path, key: &Path, listen: Vec<SocketAddr>) -> Result<SipTls, TlsError> {
        let cert_err = |reason: String| TlsError::Cert {
            path: cert.display().to_string(),
            reason,
        };
        let key_err = |reason: String| TlsError::Key {
            path: key.display().to_string(),
            reason,
        };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .map_err(|e| cert_err(pem_reason(e, "certificate")))?
            .collect::<Result<_, _>>()
            .map_err(|e| cert_err(pem_reason(e, "certificate")))?;
        if chain.is_empty() {
            return Err(cert_err("no PEM certificate in the file".into()));
        }
        let der = PrivateKeyDer::from_pem_file(key).map_err(|e| key_err(pem_reason(e, "key")))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| cert_err(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, der)
            .map_err(|e| match e {
                rustls::Error::InconsistentKeys(_) => key_err(format!(
                    "does not match the certificate in {}",
                    cert.display()
                )),
                // rustls says which rule failed (unsupported algorithm, bad encoding); the
                // message carries no key material.
                other => key_err(format!("unusable private key: {other}")),
            })?;
        Ok(SipTls {
            listen,
            server: Arc::new(config),
            cert_path: cert.to_path_buf(),
            key_path: key.to_path_buf(),
        })
    }

    /// Where to listen: the configured addresses, else one per SIP listen address.
    pub fn listen_addrs(&self, sip: &[SocketAddr]) -> Vec<SocketAddr> {
        if !self.listen.is_empty() {
            return self.listen.clone();
        }
        sip.iter()
            .map(|a| {
                let port = if a.port() == 0 { 0 } else { DEFAULT_TLS_PORT };
                SocketAddr::new(a.ip(), port)
            })
            .collect()
    }
}

/// A PEM reading error in our words: the file's contents (a key!) are never quoted.
fn pem_reason(e: pem::Error, what: &str) -> String {
    match e {
        pem::Error::Io(e) => format!("cannot read: {e}"),
        pem::Error::NoItemsFound => match what {
            "key" => "no PEM private key (PKCS#8, PKCS#1 or SEC1) in the file".into(),
            _ => format!("no PEM {what} in the file"),
        },
        pem::Error::SectionTooLarge => format!("PEM {what} section too large"),
        _ => format!("not a valid PEM {what} file (bad base64 or section markers)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/tls")).join(name)
    }

    #[test]
    fn loads_the_test_certificate_and_key() {
        let t = SipTls::load(
            &fixture("localhost.pem"),
            &fixture("localhost.key"),
            Vec::new(),
        )
        .unwrap();
        let sip: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        let eph: SocketAddr = "127.0.0.1:0".parse().unwrap();
        assert_eq!(
            t.listen_addrs(&[sip, eph]),
            [
                "127.0.0.1:5061".parse::<SocketAddr>().unwrap(),
                "127.0.0.1:0".parse().unwrap()
            ]
        );
    }

    #[test]
    fn errors_name_the_file_and_never_quote_the_key() {
        let dir = std::env::temp_dir().join(format!("sb-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key_text = std::fs::read_to_string(fixture("localhost.key")).unwrap();
        let secret_line = key_text.lines().nth(1).unwrap();
        // Corrupt base64 in the middle of a real key.
        let broken = dir.join("broken.key");
        std::fs::write(
            &broken,
            key_text.replacen(secret_line, &format!("{secret_line}!!"), 1),
        )
        .unwrap();
        let cert = fixture("localhost.pem");
        let cases = [
            (cert.clone(), dir.join("missing.key"), true, "cannot read"),
            (cert.clone(), broken.clone(), true, "not a valid PEM key"),
            (cert.clone(), cert.clone(), true, "no PEM private key"),
            (
                fixture("localhost.key"),
                fixture("localhost.key"),
                false,
                "no PEM certificate",
            ),
            (
                cert.clone(),
                fixture("ca.key"),
                true,
                "does not match the certificate",
            ),
        ];
        for (c, k, is_key, want) in cases {
            let e = SipTls::load(&c, &k, Vec::new()).unwrap_err();
            let text = e.to_string();
            assert_eq!(e.is_key(), is_key, "{text}");
            let named = if is_key { &k } else { &c };
            assert!(text.starts_with(&named.display().to_string()), "{text}");
            assert!(text.contains(want), "{text}");
            assert!(
                !text.contains(&secret_line[..16]),
                "key material in: {text}"
            );
        }
        let t = SipTls::load(&cert, &fixture("localhost.key"), Vec::new()).unwrap();
        let dbg = format!("{t:?}");
        assert!(dbg.contains("localhost.key") && !dbg.contains(&secret_line[..16]));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
