//! Admin HTTP: liveness, readiness and live counts. (Metrics and call records come with the
//! operations issue.)

use crate::ai::{AiCounters, AiStats};
use crate::core::Snapshot;
use crate::handoffs::Records;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use std::sync::{Arc, Mutex};

#[derive(Clone)]
struct AdminState {
    snapshot: Arc<Mutex<Snapshot>>,
    ai: Option<Arc<AiCounters>>,
    records: Option<Arc<Records>>,
}

pub fn router(
    snapshot: Arc<Mutex<Snapshot>>,
    ai: Option<Arc<AiCounters>>,
    records: Option<Arc<Records>>,
) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/stats", get(stats))
        .route("/metrics", get(metrics))
        .route("/callbacks", get(callbacks))
        .with_state(AdminState {
            snapshot,
            ai,
            records,
        })
}

/// Prometheus text: the handoff metrics (the operations issue adds the rest).
async fn metrics(State(s): State<AdminState>) -> impl IntoResponse {
    let body = s
        .records
        .as_ref()
        .map(|r| r.metrics.render())
        .unwrap_or_default();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            crate::metrics::CONTENT_TYPE,
        )],
        body,
    )
}

/// Callback requests stored by the `callback` policy.
async fn callbacks(State(s): State<AdminState>) -> impl IntoResponse {
    Json(
        s.records
            .as_ref()
            .map(|r| r.callbacks())
            .unwrap_or_default(),
    )
}

fn read(s: &AdminState) -> Snapshot {
    s.snapshot.lock().map(|g| *g).unwrap_or_default()
}

async fn readyz(State(s): State<AdminState>) -> impl IntoResponse {
    if read(&s).draining {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n")
    } else {
        (StatusCode::OK, "ready\n")
    }
}

#[derive(serde::Serialize)]
struct StatsBody {
    #[serde(flatten)]
    snapshot: Snapshot,
    rss_bytes: u64,
    /// Realtime sessions: opens, losses, reconnects, audio sent and dropped, errors.
    realtime: Option<AiStats>,
}

async fn stats(State(s): State<AdminState>) -> impl IntoResponse {
    Json(StatsBody {
        snapshot: read(&s),
        rss_bytes: rss_bytes(),
        realtime: s.ai.as_ref().map(|c| c.snapshot()),
    })
}

/// Resident set size from /proc (Linux); 0 elsewhere.
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}
