//! Business tools on an HTTP webhook: the function call is POSTed as JSON ([`ToolRequest`]),
//! the 2xx answer is the function result. Failures come back as a short text for the model
//! (the caller wraps it as `{"error": "..."}`); nothing here panics or ends the call.
//!
//! - 2xx with a JSON body: that JSON. A 2xx whose body is not JSON: the body as a JSON string
//!   (invalid UTF-8 replaced); an empty 2xx body (204): `{"ok": true}`.
//! - Timeout (per attempt, from connect to the last body byte), connection or TLS failure, 5xx,
//!   408 and 429: tried again up to `retries` more times, after 100 ms x attempt.
//! - Any other status (4xx, 3xx: redirects are not followed): no retry.
//! - Bodies larger than [`MAX_RESPONSE_BYTES`] are refused.
//!
//! The TLS configuration is the bridge's own (ring, webpki roots plus an optional extra CA:
//! [`crate::ai::tls_config`]); `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY` from the environment apply.
//! Logs carry the call id, tool, host, status and timing; never the URL's path or query (a
//! token may live there) nor the bodies (above debug, which logs their sizes only).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The largest response body accepted from a webhook.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// Back-off before retry `n` (1-based) is `n` times this.
pub const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// Longest excerpt of an error response's body put into the error text.
const ERROR_BODY_CHARS: usize = 200;

/// What the webhook receives, as the JSON body of the POST.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolRequest {
    /// The SIP Call-ID of the call the tool runs for.
    pub call_id: String,
    /// The agent whose session called the tool.
    pub agent: String,
    /// The tool's name.
    pub tool: String,
    /// The model's arguments (a JSON object normally).
    pub arguments: Value,
}

/// The HTTP client tool calls share (connection pool, TLS). Cheap to clone.
#[derive(Debug, Clone)]
pub struct WebhookClient {
    http: reqwest::Client,
}

impl WebhookClient {
    /// A client that speaks TLS with `tls` (the bridge's ring-based configuration).
    /// Fails only if the HTTP client cannot be built (it reports why).
    pub fn new(tls: Arc<rustls::ClientConfig>) -> Result<WebhookClient, String> {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured((*tls).clone())
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| format!("webhook client: {}", error_chain(&e)))?;
        Ok(WebhookClient { http })
    }
}

/// Why one attempt failed, and whether another may succeed.
struct Failure {
    text: String,
    retry: bool,
}

/// POSTs `request` to `url` as JSON; `timeout` bounds each attempt, `retries` counts the
/// attempts after the first. `Ok` is the function result; `Err` is a short text for the model
/// (`webhook timed out after 3000 ms (2 attempts)`).
pub async fn call_webhook(
    client: &WebhookClient,
    url: &str,
    timeout: Duration,
    retries: u32,
    request: &ToolRequest,
) -> Result<Value, String> {
    let parsed =
        reqwest::Url::parse(url).map_err(|_| "the webhook URL is not valid".to_string())?;
    let host = parsed.host_str().unwrap_or("").to_string();
    let body = serde_json::to_vec(request)
        .map_err(|e| format!("the tool request could not be encoded: {e}"))?;
    let attempts = retries.saturating_add(1);
    let started = Instant::now();
    let mut attempt = 1;
    loop {
        let t0 = Instant::now();
        let outcome = attempt_once(client, &parsed, timeout, attempt, &body).await;
        let ms = t0.elapsed().as_millis() as u64;
        match outcome {
            Ok(value) => {
                tracing::debug!(
                    call_id = %request.call_id, tool = %request.tool, host = %host,
                    attempt, ms, "webhook answered"
                );
                return Ok(value);
            }
            Err(f) if f.retry && attempt < attempts => {
                tracing::debug!(
                    call_id = %request.call_id, tool = %request.tool, host = %host,
                    attempt, ms, error = %f.text, "webhook attempt failed; retrying"
                );
                tokio::time::sleep(RETRY_BACKOFF * attempt).await;
                attempt += 1;
            }
            Err(f) => {
                let text = if attempt > 1 {
                    format!("{} ({attempt} attempts)", f.text)
                } else {
                    f.text
                };
                tracing::warn!(
                    call_id = %request.call_id, tool = %request.tool, host = %host,
                    attempts = attempt, total_ms = started.elapsed().as_millis() as u64,
                    error = %text, "webhook failed"
                );
                return Err(text);
            }
        }
    }
}

async fn attempt_once(
    client: &WebhookClient,
    url: &reqwest::Url,
    timeout: Duration,
    attempt: u32,
    body: &[u8],
) -> Result<Value, Failure> {
    let timed_out = || Failure {
        text: format!("webhook timed out after {} ms", timeout.as_millis()),
        retry: true,
    };
    let deadline = tokio::time::Instant::now() + timeout;
    let send = client
        .http
        .post(url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::ACCEPT, "application/json")
        .header("x-switchboard-attempt", attempt.to_string())
        .body(body.to_vec())
        .send();
    let mut response = match tokio::time::timeout_at(deadline, send).await {
        Err(_) => return Err(timed_out()),
        Ok(Err(e)) if e.is_timeout() => return Err(timed_out()),
        Ok(Err(e)) => return Err(send_failure(&e)),
        Ok(Ok(r)) => r,
    };
    let status = response.status();

    // The body, within the deadline and the size limit.
    let mut bytes: Vec<u8> = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, response.chunk()).await {
            Err(_) => return Err(timed_out()),
            Ok(Err(e)) if e.is_timeout() => return Err(timed_out()),
            Ok(Err(e)) => {
                return Err(Failure {
                    text: format!(
                        "webhook answered {} but the body broke off: {}",
                        status.as_u16(),
                        error_chain(&e)
                    ),
                    retry: true,
                })
            }
            Ok(Ok(None)) => break,
            Ok(Ok(Some(chunk))) => {
                if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(Failure {
                        text: format!(
                            "webhook answer larger than {} KiB",
                            MAX_RESPONSE_BYTES / 1024
                        ),
                        retry: false,
                    });
                }
                bytes.extend_from_slice(&chunk);
            }
        }
    }
    tracing::debug!(
        status = status.as_u16(),
        bytes = bytes.len(),
        "webhook body"
    );

    if status.is_success() {
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(serde_json::json!({"ok": true}));
        }
        return Ok(serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned())));
    }
    let code = status.as_u16();
    let retry = status.is_server_error() || code == 408 || code == 429;
    let mut text = format!("webhook answered {status}");
    let excerpt = excerpt(&bytes);
    if !excerpt.is_empty() {
        text.push_str(": ");
        text.push_str(&excerpt);
    }
    Err(Failure { text, retry })
}

/// A failed send: connection refused, DNS, TLS, reset. The text has no URL.
fn send_failure(e: &reqwest::Error) -> Failure {
    let what = if e.is_connect() {
        "could not connect to the webhook"
    } else {
        "the webhook request failed"
    };
    Failure {
        text: format!("{what}: {}", error_chain(e)),
        retry: true,
    }
}

/// The innermost cause's text (reqwest's own text names the URL; its sources do not), e.g.
/// `Connection refused (os error 111)` or `invalid peer certificate: UnknownIssuer`.
fn error_chain(e: &reqwest::Error) -> String {
    let mut last: Option<&dyn std::error::Error> = None;
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        last = Some(s);
        source = s.source();
    }
    match last {
        Some(s) => s.to_string(),
        None => {
            let text = e.to_string();
            match text.find(" for url (") {
                Some(i) => text[..i].to_string(),
                None => text,
            }
        }
    }
}

/// At most [`ERROR_BODY_CHARS`] characters of an error body on one line: an `"error"` or
/// `"message"` string of a JSON body, or the text itself.
fn excerpt(bytes: &[u8]) -> String {
    let text = match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => match v
            .get("error")
            .or_else(|| v.get("message"))
            .and_then(Value::as_str)
        {
            Some(s) => s.to_string(),
            None => v.to_string(),
        },
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    };
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(ERROR_BODY_CHARS) {
        Some((i, _)) => format!("{}...", &one_line[..i]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts() {
        assert_eq!(
            excerpt(br#"{"error": "no such customer"}"#),
            "no such customer"
        );
        assert_eq!(excerpt(br#"{"message": "gone"}"#), "gone");
        assert_eq!(excerpt(br#"{"code": 7}"#), r#"{"code":7}"#);
        assert_eq!(excerpt(b"  Not\n  Found  "), "Not Found");
        assert_eq!(excerpt(b""), "");
        let long = "x".repeat(500);
        assert_eq!(excerpt(long.as_bytes()).len(), ERROR_BODY_CHARS + 3);
    }
}
