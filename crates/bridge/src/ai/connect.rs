//! Opening the WebSocket: URL and model, auth headers (OpenAI `Authorization: Bearer` or Azure
//! `api-key`, never logged; no `OpenAI-Beta`, protocol §1), and TLS for `wss://` with rustls
//! and the ring provider picked explicitly (no process-level provider needed).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a connect (TCP + TLS + upgrade) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A credential. Debug never shows it.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// OpenAI: `Authorization: Bearer <key>` (`OPENAI_API_KEY`).
    Bearer(String),
    /// Azure OpenAI: `api-key: <key>` (`AZURE_OPENAI_API_KEY`).
    AzureApiKey(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Auth::AzureApiKey(_) => f.write_str("AzureApiKey(<redacted>)"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("bad Realtime URL: {0}")]
    Url(String),
    #[error("the credential is not a valid header value")]
    Header,
    #[error("TLS setup: {0}")]
    Tls(String),
    #[error("connect timed out after {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
}

/// `url` with `model=<model>` added unless it already names a model, an Azure deployment or a
/// call (protocol §1).
pub fn url_with_model(url: &str, model: &str) -> String {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    let named = query.split('&').any(|kv| {
        let key = kv.split('=').next().unwrap_or("");
        matches!(key, "model" | "deployment" | "call_id")
    });
    if named || model.is_empty() {
        return url.to_string();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}model={model}")
}

/// The upgrade request: URL (with model), auth header, nothing beta.
pub fn request(url: &str, model: &str, auth: Option<&Auth>) -> Result<Request, ConnectError> {
    let full = url_with_model(url, model);
    let mut req = full
        .as_str()
        .into_client_request()
        .map_err(|e| ConnectError::Url(e.to_string()))?;
    match auth {
        Some(Auth::Bearer(key)) => {
            let v = HeaderValue::from_str(&format!("Bearer {key}"))
                .map_err(|_| ConnectError::Header)?;
            req.headers_mut().insert("Authorization", v);
        }
        Some(Auth::AzureApiKey(key)) => {
            let v = HeaderValue::from_str(key).map_err(|_| ConnectError::Header)?;
            req.headers_mut().insert("api-key", v);
        }
        None => {}
    }
    Ok(req)
}

/// rustls client config: the Mozilla roots (webpki-roots, so a fresh machine without a CA
/// bundle works) plus, optionally, the PEM certificates in `extra_ca` (a corporate proxy, or
/// the test CA).
pub fn tls_config(extra_ca: Option<&Path>) -> Result<Arc<ClientConfig>, ConnectError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra_ca {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| ConnectError::Tls(format!("{}: {e}", path.display())))?;
        let mut n = 0;
        for cert in certs {
            let cert = cert.map_err(|e| ConnectError::Tls(format!("{}: {e}", path.display())))?;
            roots
                .add(cert)
                .map_err(|e| ConnectError::Tls(format!("{}: {e}", path.display())))?;
            n += 1;
        }
        if n == 0 {
            return Err(ConnectError::Tls(format!(
                "{}: no PEM certificate in the file",
                path.display()
            )));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Small buffers: thousands of calls each hold a socket (tungstenite's default reads into
/// 128 KiB per connection); bounded messages so a peer cannot make us buffer without limit.
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .write_buffer_size(16 * 1024)
        .max_message_size(Some(8 << 20))
        .max_frame_size(Some(8 << 20))
}

/// Open the socket (TLS for `wss://` with `tls`, plain TCP for `ws://`).
pub async fn connect(
    url: &str,
    model: &str,
    auth: Option<&Auth>,
    tls: &Arc<ClientConfig>,
) -> Result<Ws, ConnectError> {
    let req = request(url, model, auth)?;
    let connector = if url.starts_with("wss://") {
        Connector::Rustls(tls.clone())
    } else {
        Connector::Plain
    };
    let fut = tokio_tungstenite::connect_async_tls_with_config(
        req,
        Some(ws_config()),
        true,
        Some(connector),
    );
    match tokio::time::timeout(CONNECT_TIMEOUT, fut).await {
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(e)) => Err(ConnectError::WebSocket(e)),
        Err(_) => Err(ConnectError::Timeout(CONNECT_TIMEOUT)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_is_added_unless_the_url_names_one() {
        assert_eq!(
            url_with_model("wss://api.openai.com/v1/realtime", "gpt-realtime"),
            "wss://api.openai.com/v1/realtime?model=gpt-realtime"
        );
        assert_eq!(
            url_with_model("ws://127.0.0.1:1/v1/realtime?model=x", "gpt-realtime"),
            "ws://127.0.0.1:1/v1/realtime?model=x"
        );
        assert_eq!(
            url_with_model(
                "wss://r.openai.azure.com/openai/realtime?api-version=2025-04-01-preview&deployment=d",
                "gpt-realtime"
            ),
            "wss://r.openai.azure.com/openai/realtime?api-version=2025-04-01-preview&deployment=d"
        );
        assert_eq!(
            url_with_model("wss://r.openai.azure.com/openai/v1/realtime?x=1", "dep"),
            "wss://r.openai.azure.com/openai/v1/realtime?x=1&model=dep"
        );
    }

    #[test]
    fn openai_request_has_bearer_and_no_beta_header() {
        let r = request(
            "wss://api.openai.com/v1/realtime",
            "gpt-realtime",
            Some(&Auth::Bearer("sk-test-123".into())),
        )
        .unwrap();
        assert_eq!(
            r.uri().to_string(),
            "wss://api.openai.com/v1/realtime?model=gpt-realtime"
        );
        assert_eq!(r.headers()["authorization"], "Bearer sk-test-123");
        assert!(r.headers().get("openai-beta").is_none());
        assert!(r.headers().get("api-key").is_none());
    }

    #[test]
    fn azure_request_has_api_key_and_no_bearer() {
        let r = request(
            "wss://res.openai.azure.com/openai/v1/realtime",
            "my-deployment",
            Some(&Auth::AzureApiKey("azkey".into())),
        )
        .unwrap();
        assert_eq!(
            r.uri().to_string(),
            "wss://res.openai.azure.com/openai/v1/realtime?model=my-deployment"
        );
        assert_eq!(r.headers()["api-key"], "azkey");
        assert!(r.headers().get("authorization").is_none());
        assert!(r.headers().get("openai-beta").is_none());
    }

    #[test]
    fn secrets_do_not_show_in_debug_and_bad_input_is_an_error() {
        let a = Auth::Bearer("sk-secret".into());
        assert!(!format!("{a:?}").contains("sk-secret"));
        assert!(matches!(
            request("wss://x/", "m", Some(&Auth::Bearer("a\nb".into()))),
            Err(ConnectError::Header)
        ));
        assert!(matches!(
            request("not a url", "m", None),
            Err(ConnectError::Url(_))
        ));
        let dir = std::env::temp_dir().join(format!("sb-ca-{}", std::process::id()));
        std::fs::write(&dir, "not pem").unwrap();
        assert!(matches!(tls_config(Some(&dir)), Err(ConnectError::Tls(_))));
        let _ = std::fs::remove_file(dir);
        let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/tls/ca.pem");
        assert!(tls_config(Some(Path::new(ca))).is_ok());
    }
}
