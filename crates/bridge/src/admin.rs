//! Admin HTTP: liveness, readiness and live counts. (Metrics and call records come with the
//! operations issue.)

use crate::ai::{AiCounters, AiStats};
use crate::core::{CallInfo, Control, Snapshot};
use crate::handoffs::Records;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// What the admin API reads and asks.
#[derive(Clone)]
pub struct AdminState {
    pub snapshot: Arc<Mutex<Snapshot>>,
    pub ai: Option<Arc<AiCounters>>,
    pub records: Option<Arc<Records>>,
    /// To the endpoint task: list and hang up calls.
    pub control: mpsc::UnboundedSender<Control>,
    /// Calls, setup and RTP.
    pub ops: Arc<crate::metrics::OpsMetrics>,
}

pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/stats", get(stats))
        .route("/metrics", get(metrics))
        .route("/callbacks", get(callbacks))
        .route("/calls", get(calls))
        .route("/calls/{id}", get(call).delete(hang_up))
        .with_state(state)
}

async fn list_calls(s: &AdminState) -> Option<Vec<CallInfo>> {
    let (tx, rx) = oneshot::channel();
    s.control.send(Control::ListCalls(tx)).ok()?;
    let mut list = rx.await.ok()?;
    if let Some(r) = &s.records {
        for c in &mut list {
            c.agent = r.current_agent(&c.call_id);
        }
    }
    Some(list)
}

/// Calls in progress: Call-ID, parties, duration, state, the agent that has the caller.
async fn calls(State(s): State<AdminState>) -> axum::response::Response {
    match list_calls(&s).await {
        Some(list) => Json(list).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "stopping\n").into_response(),
    }
}

/// One call: in progress (as in `/calls`), or its record once ended (agent path, envelopes
/// with the transcript, the seed metrics).
async fn call(State(s): State<AdminState>, Path(id): Path<String>) -> axum::response::Response {
    if let Some(c) = list_calls(&s)
        .await
        .and_then(|l| l.into_iter().find(|c| c.call_id == id))
    {
        return Json(serde_json::json!({"active": true, "call": c})).into_response();
    }
    let record = match s.records.as_ref() {
        // The database when there is one: a call another node took is found too.
        Some(r) => r.memory.fetch(&id).await,
        None => None,
    };
    match record {
        Some(record) => {
            Json(serde_json::json!({"active": false, "record": record})).into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such call\n").into_response(),
    }
}

/// Hang up a call in progress.
async fn hang_up(State(s): State<AdminState>, Path(id): Path<String>) -> axum::response::Response {
    let (tx, rx) = oneshot::channel();
    if s.control.send(Control::Hangup(id, tx)).is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "stopping\n").into_response();
    }
    match rx.await {
        Ok(true) => (StatusCode::OK, "hung up\n").into_response(),
        _ => (StatusCode::NOT_FOUND, "no such call\n").into_response(),
    }
}

/// Prometheus text: calls (active, ended by reason, setup time), SIP protection counters, RTP
/// quality, Realtime sessions (errors, reconnects, dropped audio, tokens) and the seed's
/// handoff metrics.
async fn metrics(State(s): State<AdminState>) -> impl IntoResponse {
    let snap = read(&s);
    let ai = s.ai.as_ref().map(|c| c.snapshot()).unwrap_or_default();
    let gauges = [
        (
            "switchboard_calls_active",
            "Calls in progress.",
            snap.calls as f64,
        ),
        (
            "switchboard_rtp_ports_in_use",
            "RTP port pairs bound.",
            snap.rtp_ports_in_use as f64,
        ),
        (
            "switchboard_draining",
            "1 while draining after SIGTERM.",
            f64::from(u8::from(snap.draining)),
        ),
        (
            "switchboard_resident_memory_bytes",
            "Resident set size.",
            rss_bytes() as f64,
        ),
    ];
    let counters = [
        (
            "switchboard_calls_received_total",
            "INVITEs that created a call.",
            snap.calls_total,
        ),
        (
            "switchboard_sip_malformed_total",
            "Malformed SIP messages (400 or dropped).",
            snap.malformed,
        ),
        (
            "switchboard_sip_denied_total",
            "Messages from sources outside the allow-list.",
            snap.denied,
        ),
        (
            "switchboard_sip_auth_failures_total",
            "Failed digest authentications.",
            snap.auth_failures,
        ),
        (
            "switchboard_sip_rate_limited_total",
            "Messages dropped by the per-source rate limit.",
            snap.rate_limited,
        ),
        (
            "switchboard_sip_bans_total",
            "Sources banned for failed authentications in a row.",
            snap.bans,
        ),
        (
            "switchboard_sip_banned_drops_total",
            "Messages dropped because their source was banned.",
            snap.banned_drops,
        ),
        (
            "switchboard_realtime_sessions_total",
            "Realtime sessions opened (reconnects included).",
            ai.sessions_opened,
        ),
        (
            "switchboard_realtime_connect_failures_total",
            "Realtime connects that failed.",
            ai.connect_failures,
        ),
        (
            "switchboard_realtime_socket_losses_total",
            "Realtime sockets lost mid-call.",
            ai.socket_losses,
        ),
        (
            "switchboard_realtime_reconnects_total",
            "Realtime sessions restored after a loss.",
            ai.reconnects,
        ),
        (
            "switchboard_realtime_errors_total",
            "Realtime error events received.",
            ai.server_errors,
        ),
        (
            "switchboard_realtime_audio_frames_dropped_total",
            "Caller frames dropped while the socket stalled or was down.",
            ai.audio_frames_dropped,
        ),
        (
            "switchboard_realtime_input_tokens_total",
            "Input tokens (response.done usage).",
            ai.input_tokens,
        ),
        (
            "switchboard_realtime_output_tokens_total",
            "Output tokens (response.done usage).",
            ai.output_tokens,
        ),
        (
            "switchboard_realtime_input_audio_tokens_total",
            "Input audio tokens.",
            ai.input_audio_tokens,
        ),
        (
            "switchboard_realtime_output_audio_tokens_total",
            "Output audio tokens.",
            ai.output_audio_tokens,
        ),
    ];
    let mut body = String::with_capacity(8192);
    s.ops.render_into(&mut body, &gauges, &counters);
    crate::metrics::render_media_engine(&mut body);
    if let Some(st) = s.records.as_ref().and_then(|r| r.memory.write_stats()) {
        let store = [(
            "switchboard_records_queued",
            "Call records waiting for the database.",
            st.queued as f64,
        )];
        let store_counters = [
            (
                "switchboard_records_written_total",
                "Call records written to the database.",
                st.written,
            ),
            (
                "switchboard_records_dropped_total",
                "Call records dropped because the write queue was full.",
                st.dropped,
            ),
            (
                "switchboard_records_write_failures_total",
                "Failed database writes (retried).",
                st.write_failures,
            ),
            (
                "switchboard_records_read_fallbacks_total",
                "Reads answered from the local cache (database slow or down).",
                st.read_fallbacks,
            ),
        ];
        crate::metrics::OpsMetrics::render_plain(&mut body, &store, &store_counters);
    }
    if let Some(r) = &s.records {
        r.metrics.render_into(&mut body);
    }
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
    /// Tokio tasks alive (every call holds a few: media, Realtime session, its writer).
    tasks: usize,
    /// File descriptors open (sockets: SIP, RTP/RTCP pairs, WebSockets, database).
    open_fds: usize,
    /// Calls each media thread paces (the media engine; empty before the first call).
    media_threads: Vec<usize>,
    /// Their sum: calls whose media is still running.
    media_calls: usize,
    /// The media threads' nice value (`--media-priority`; null before the first call).
    media_nice: Option<i32>,
    /// Their SCHED_RR priority with `--media-priority rt` (null: ordinary threads).
    media_realtime: Option<u8>,
    /// How they send RTP: `io_uring` (a step's packets in one submission) or `sendto` (null
    /// before the first call).
    media_sends: Option<&'static str>,
    /// Realtime sessions: opens, losses, reconnects, audio sent and dropped, errors.
    realtime: Option<AiStats>,
    /// RTP packets sent more than 20 ms after their deadline, by the wall-clock millisecond
    /// they left (the last 1,024 such milliseconds): when, not only how many.
    late_sends: crate::metrics::LateLog,
    /// Media engine steps that ended more than 10 ms after their timer (the last 256): when,
    /// which thread, how late it woke, how long its work took.
    media_slow_steps: Vec<crate::media::engine::SlowStep>,
}

async fn stats(State(s): State<AdminState>) -> impl IntoResponse {
    let media_threads = crate::media::engine::shard_loads();
    Json(StatsBody {
        snapshot: read(&s),
        rss_bytes: rss_bytes(),
        tasks: tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks(),
        open_fds: open_fds(),
        media_calls: media_threads.iter().sum(),
        media_threads,
        media_nice: crate::media::engine::nice_in_effect(),
        media_realtime: crate::media::engine::realtime_in_effect(),
        media_sends: crate::media::send::in_effect(),
        realtime: s.ai.as_ref().map(|c| c.snapshot()),
        late_sends: s.ops.late_sends(),
        media_slow_steps: crate::media::engine::slow_steps(),
    })
}

/// Open file descriptors from /proc (Linux); 0 elsewhere.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
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
