//! Tool webhooks against a local axum server on loopback: the POSTed JSON, retries on 5xx and
//! timeouts with a bounded total time, no retry on 4xx, non-JSON answers, refused connections,
//! and https with the test CA (the bridge's ring TLS configuration).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bridge::tools::{call_webhook, ToolRequest, WebhookClient, MAX_RESPONSE_BYTES};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};

const TLS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/tls");

/// One request the server saw.
#[derive(Debug, Clone)]
struct Seen {
    path: &'static str,
    attempt: String,
    content_type: String,
    body: Value,
}

#[derive(Default)]
struct Server {
    seen: Mutex<Vec<Seen>>,
}

impl Server {
    fn record(&self, path: &'static str, headers: &HeaderMap, body: &Bytes) -> usize {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let mut seen = self.seen.lock().unwrap();
        seen.push(Seen {
            path,
            attempt: header("x-switchboard-attempt"),
            content_type: header("content-type"),
            body: serde_json::from_slice(body).unwrap_or(Value::Null),
        });
        seen.iter().filter(|s| s.path == path).count()
    }

    fn hits(&self, path: &str) -> Vec<Seen> {
        let seen = self.seen.lock().unwrap();
        seen.iter().filter(|s| s.path == path).cloned().collect()
    }
}

type St = State<Arc<Server>>;

async fn ok(State(s): St, h: HeaderMap, body: Bytes) -> Response {
    s.record("/ok", &h, &body);
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    axum::Json(json!({"plan": "Pro", "echo": request})).into_response()
}

async fn flaky(State(s): St, h: HeaderMap, body: Bytes) -> Response {
    if s.record("/flaky", &h, &body) == 1 {
        (StatusCode::INTERNAL_SERVER_ERROR, "database down").into_response()
    } else {
        axum::Json(json!({"status": "recorded"})).into_response()
    }
}

async fn busy(State(s): St, h: HeaderMap, body: Bytes) -> Response {
    if s.record("/busy", &h, &body) == 1 {
        (StatusCode::TOO_MANY_REQUESTS, "slow down").into_response()
    } else {
        axum::Json(json!({"status": "ok"})).into_response()
    }
}

async fn down(State(s): St, h: HeaderMap, body: Bytes) -> Response {
    s.record("/down", &h, &body);
    (StatusCode::SERVICE_UNAVAILABLE, "maintenance").into_response()
}

async fn missing(State(s): St, h: HeaderMap, body: Bytes) -> Response {
    s.record("/missing", &h, &body);
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"error": "no such customer"})),
    )
        .into_response()
}

async fn slow(State(s): St, h: HeaderMap, body: Bytes) -> Response {
    s.record("/slow", &h, &body);
    tokio::time::sleep(Duration::from_secs(5)).await;
    axum::Json(json!({"late": true})).into_response()
}

async fn text(State(s): St, h: HeaderMap, body: Bytes) -> Response {
    s.record("/text", &h, &body);
    "Upgrade recorded, confirmation 77.".into_response()
}

async fn empty(State(s): St, h: HeaderMap, body: Bytes) -> Response {
    s.record("/empty", &h, &body);
    StatusCode::NO_CONTENT.into_response()
}

async fn big(State(s): St, h: HeaderMap, body: Bytes) -> Response {
    s.record("/big", &h, &body);
    let filler = "x".repeat(MAX_RESPONSE_BYTES + 1);
    axum::Json(json!({ "filler": filler })).into_response()
}

async fn redirect(State(s): St, h: HeaderMap, body: Bytes) -> Response {
    s.record("/redirect", &h, &body);
    (StatusCode::FOUND, [("location", "/ok")]).into_response()
}

async fn start() -> (SocketAddr, Arc<Server>) {
    let server = Arc::new(Server::default());
    let app = Router::new()
        .route("/ok", post(ok))
        .route("/flaky", post(flaky))
        .route("/busy", post(busy))
        .route("/down", post(down))
        .route("/missing", post(missing))
        .route("/slow", post(slow))
        .route("/text", post(text))
        .route("/empty", post(empty))
        .route("/big", post(big))
        .route("/redirect", post(redirect))
        .with_state(server.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, server)
}

fn client() -> WebhookClient {
    WebhookClient::new(bridge::ai::tls_config(None).unwrap()).unwrap()
}

fn request() -> ToolRequest {
    ToolRequest {
        call_id: "a84b4c76e66710@pc33.example.com".into(),
        agent: "sales".into(),
        tool: "record_upgrade".into(),
        arguments: json!({"customer_id": "C-1042", "from_plan": "Standard", "to_plan": "Pro"}),
    }
}

const T: Duration = Duration::from_millis(300);

#[tokio::test]
async fn ok_json_and_the_posted_shape() {
    let (addr, server) = start().await;
    let out = call_webhook(&client(), &format!("http://{addr}/ok"), T, 2, &request())
        .await
        .unwrap();
    let posted = json!({
        "call_id": "a84b4c76e66710@pc33.example.com",
        "agent": "sales",
        "tool": "record_upgrade",
        "arguments": {"customer_id": "C-1042", "from_plan": "Standard", "to_plan": "Pro"},
    });
    assert_eq!(out, json!({"plan": "Pro", "echo": posted}));
    let hits = server.hits("/ok");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].body, posted);
    assert_eq!(hits[0].content_type, "application/json");
    assert_eq!(hits[0].attempt, "1");
    // The request type round-trips.
    let back: ToolRequest = serde_json::from_value(hits[0].body.clone()).unwrap();
    assert_eq!(back, request());
}

#[tokio::test]
async fn a_500_is_retried_and_then_ok() {
    let (addr, server) = start().await;
    let t0 = Instant::now();
    let out = call_webhook(&client(), &format!("http://{addr}/flaky"), T, 1, &request())
        .await
        .unwrap();
    assert_eq!(out, json!({"status": "recorded"}));
    let hits = server.hits("/flaky");
    assert_eq!(hits.len(), 2);
    assert_eq!(
        hits.iter().map(|h| h.attempt.as_str()).collect::<Vec<_>>(),
        ["1", "2"]
    );
    // The same request both times.
    assert_eq!(hits[0].body, hits[1].body);
    // One back-off of 100 ms.
    assert!(t0.elapsed() >= Duration::from_millis(100));
}

#[tokio::test]
async fn a_429_is_retried() {
    let (addr, server) = start().await;
    let out = call_webhook(&client(), &format!("http://{addr}/busy"), T, 1, &request())
        .await
        .unwrap();
    assert_eq!(out, json!({"status": "ok"}));
    assert_eq!(server.hits("/busy").len(), 2);
}

#[tokio::test]
async fn a_500_without_retries_is_the_error() {
    let (addr, server) = start().await;
    let err = call_webhook(&client(), &format!("http://{addr}/flaky"), T, 0, &request())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        "webhook answered 500 Internal Server Error: database down"
    );
    assert_eq!(server.hits("/flaky").len(), 1);
}

#[tokio::test]
async fn retries_run_out_on_a_503() {
    let (addr, server) = start().await;
    let t0 = Instant::now();
    let err = call_webhook(&client(), &format!("http://{addr}/down"), T, 2, &request())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        "webhook answered 503 Service Unavailable: maintenance (3 attempts)"
    );
    assert_eq!(server.hits("/down").len(), 3);
    // Back-offs 100 + 200 ms.
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[tokio::test]
async fn a_404_is_not_retried() {
    let (addr, server) = start().await;
    let err = call_webhook(
        &client(),
        &format!("http://{addr}/missing"),
        T,
        3,
        &request(),
    )
    .await
    .unwrap_err();
    assert_eq!(err, "webhook answered 404 Not Found: no such customer");
    assert_eq!(server.hits("/missing").len(), 1);
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let (addr, server) = start().await;
    let err = call_webhook(
        &client(),
        &format!("http://{addr}/redirect"),
        T,
        3,
        &request(),
    )
    .await
    .unwrap_err();
    assert_eq!(err, "webhook answered 302 Found");
    assert_eq!(server.hits("/redirect").len(), 1);
    assert!(server.hits("/ok").is_empty());
}

#[tokio::test]
async fn a_slow_webhook_times_out_each_attempt() {
    let (addr, server) = start().await;
    let t0 = Instant::now();
    let timeout = Duration::from_millis(200);
    let err = call_webhook(
        &client(),
        &format!("http://{addr}/slow"),
        timeout,
        1,
        &request(),
    )
    .await
    .unwrap_err();
    let took = t0.elapsed();
    assert_eq!(err, "webhook timed out after 200 ms (2 attempts)");
    assert_eq!(server.hits("/slow").len(), 2);
    // 200 + 100 (back-off) + 200 ms, far below the server's 5 s sleep.
    assert!(took >= Duration::from_millis(500), "{took:?}");
    assert!(took < Duration::from_millis(1_500), "{took:?}");
}

#[tokio::test]
async fn a_non_json_answer_is_a_string_and_an_empty_one_is_ok() {
    let (addr, _server) = start().await;
    let c = client();
    let out = call_webhook(&c, &format!("http://{addr}/text"), T, 0, &request())
        .await
        .unwrap();
    assert_eq!(out, json!("Upgrade recorded, confirmation 77."));
    let out = call_webhook(&c, &format!("http://{addr}/empty"), T, 0, &request())
        .await
        .unwrap();
    assert_eq!(out, json!({"ok": true}));
}

#[tokio::test]
async fn an_oversized_answer_is_refused_without_retry() {
    let (addr, server) = start().await;
    let err = call_webhook(&client(), &format!("http://{addr}/big"), T, 2, &request())
        .await
        .unwrap_err();
    assert_eq!(err, "webhook answer larger than 256 KiB");
    assert_eq!(server.hits("/big").len(), 1);
}

#[tokio::test]
async fn a_refused_connection_is_retried_and_the_error_names_no_url() {
    // A port nobody listens on any more.
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let url = format!("http://{addr}/secret-token-123/tools?key=hunter2");
    let t0 = Instant::now();
    let err = call_webhook(&client(), &url, T, 1, &request())
        .await
        .unwrap_err();
    assert!(
        err.starts_with("could not connect to the webhook: "),
        "{err}"
    );
    assert!(err.ends_with("(2 attempts)"), "{err}");
    assert!(
        !err.contains("secret") && !err.contains("hunter2") && !err.contains("127.0.0.1"),
        "{err}"
    );
    assert!(t0.elapsed() >= Duration::from_millis(100));
}

#[tokio::test]
async fn a_bad_url_is_an_error() {
    let err = call_webhook(&client(), "not a url", T, 3, &request())
        .await
        .unwrap_err();
    assert_eq!(err, "the webhook URL is not valid");
}

/// A TLS terminator with the test certificate (localhost, 127.0.0.1) in front of `upstream`.
async fn tls_front(upstream: SocketAddr) -> SocketAddr {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer> =
        CertificateDer::pem_file_iter(format!("{TLS_DIR}/localhost.pem"))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_file(format!("{TLS_DIR}/localhost.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut up) = TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn https_with_the_test_ca_and_refused_without_it() {
    let (addr, server) = start().await;
    let front = tls_front(addr).await;
    let url = format!("https://localhost:{}/ok", front.port());

    let ca = Path::new(TLS_DIR).join("ca.pem");
    let trusting = WebhookClient::new(bridge::ai::tls_config(Some(&ca)).unwrap()).unwrap();
    let out = call_webhook(&trusting, &url, Duration::from_secs(2), 0, &request())
        .await
        .unwrap();
    assert_eq!(out["plan"], "Pro");
    assert_eq!(server.hits("/ok").len(), 1);

    // The public roots only: the certificate is refused, a short error, no request arrives.
    let err = call_webhook(&client(), &url, Duration::from_secs(2), 0, &request())
        .await
        .unwrap_err();
    assert!(err.contains("certificate"), "{err}");
    assert!(!err.contains("localhost"), "{err}");
    assert_eq!(server.hits("/ok").len(), 1);
}
