//! The seed's handoff metrics in the Prometheus text exposition format (version 0.0.4).
//!
//! Written by hand: nine families of counters and histograms do not need a registry crate, and
//! [`Metrics`] stays a plain value (no process-wide recorder), so every bridge in a test process
//! has its own. Counters are atomics; labelled counters a small map behind a mutex, touched once
//! per handoff.
//!
//! When to record what:
//! - at a handoff's trigger: [`Metrics::record_handoff`], or
//!   [`Metrics::record_handoff_failure`] when the target could not take the call;
//! - when the new agent's first audio frame is sent: [`Metrics::observe_handoff_time`];
//! - when its first turn's transcript is done: [`Metrics::observe_context_preservation`];
//! - when the call ends: [`Metrics::record_call_ended`] with the call's [`CallMetrics`] (it does
//!   not touch the per-handoff families above, so nothing is counted twice).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::memory::CallMetrics;

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds of `switchboard_handoff_seconds`: the in-bridge goals (10 ms for voice mode
/// same, 300 ms for hybrid) and the seed's 3 s end-to-end bar fall on or between buckets.
pub const HANDOFF_SECONDS_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Upper bounds of `switchboard_context_preservation_score` (a share, 0..=1).
pub const CONTEXT_PRESERVATION_BUCKETS: [f64; 10] =
    [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];

/// Most label sets per labelled family. Label values are agent and policy names from the agents
/// file, so this is never reached in practice; past it, new label sets are counted under
/// [`OVERFLOW_LABEL`] so that a bug cannot grow the map without bound.
pub const MAX_SERIES: usize = 1_000;

/// The label value that stands for every label set past [`MAX_SERIES`].
pub const OVERFLOW_LABEL: &str = "_other";

/// The seed's metrics for the whole process: cheap to update from any call task.
pub struct Metrics {
    handoffs: LabelledCounter<2>,
    handoff_failures: LabelledCounter<3>,
    handoff_seconds: Histogram,
    context_preservation: Histogram,
    /// Calls per CSAT score 1..=5.
    csat: [AtomicU64; 5],
    conversions: AtomicU64,
    repeat_inquiries: AtomicU64,
    calls_with_handoff: AtomicU64,
    calls_ended: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// All counters at zero.
    pub fn new() -> Self {
        Self {
            handoffs: LabelledCounter::new(["from", "to"]),
            handoff_failures: LabelledCounter::new(["from", "to", "policy"]),
            handoff_seconds: Histogram::new(&HANDOFF_SECONDS_BUCKETS),
            context_preservation: Histogram::new(&CONTEXT_PRESERVATION_BUCKETS),
            csat: Default::default(),
            conversions: AtomicU64::new(0),
            repeat_inquiries: AtomicU64::new(0),
            calls_with_handoff: AtomicU64::new(0),
            calls_ended: AtomicU64::new(0),
        }
    }

    /// A handoff from agent `from` to agent `to` was triggered and the target took it.
    pub fn record_handoff(&self, from: &str, to: &str) {
        self.handoffs.inc([from, to]);
    }

    /// A handoff could not go through at once (target at capacity, session failed, backend
    /// unavailable); `policy` is the one applied: `queue`, `callback` or `return`.
    pub fn record_handoff_failure(&self, from: &str, to: &str, policy: &str) {
        self.handoff_failures.inc([from, to, policy]);
    }

    /// Trigger -> the new agent's first audio frame sent.
    pub fn observe_handoff_time(&self, elapsed: Duration) {
        self.handoff_seconds.observe(elapsed.as_secs_f64());
    }

    /// The receiving agent's context preservation score; clamped to 0..=1, NaN ignored.
    pub fn observe_context_preservation(&self, score: f64) {
        if !score.is_nan() {
            self.context_preservation.observe(score.clamp(0.0, 1.0));
        }
    }

    /// A call ended: counts it (and whether it had a handoff), its CSAT score (1-5; others are
    /// ignored), conversion and repeat inquiry.
    pub fn record_call_ended(&self, call: &CallMetrics) {
        self.calls_ended.fetch_add(1, Ordering::Relaxed);
        if call.handoffs > 0 {
            self.calls_with_handoff.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(score @ 1..=5) = call.csat {
            self.csat[usize::from(score) - 1].fetch_add(1, Ordering::Relaxed);
        }
        if call.converted {
            self.conversions.fetch_add(1, Ordering::Relaxed);
        }
        if call.repeat_inquiry {
            self.repeat_inquiries.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The exposition text of every family.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        self.render_into(&mut out);
        out
    }

    /// Appends the exposition text to `out` (so the admin route can add other families).
    pub fn render_into(&self, out: &mut String) {
        header(
            out,
            "switchboard_handoffs_total",
            "Agent handoffs that went through, by agent pair.",
            "counter",
        );
        self.handoffs.render(out, "switchboard_handoffs_total");
        header(
            out,
            "switchboard_handoff_failures_total",
            "Handoffs the target could not take at once, by agent pair and the failure policy applied.",
            "counter",
        );
        self.handoff_failures
            .render(out, "switchboard_handoff_failures_total");
        header(
            out,
            "switchboard_handoff_seconds",
            "Handoff time: trigger to the new agent's first audio frame sent.",
            "histogram",
        );
        self.handoff_seconds
            .render(out, "switchboard_handoff_seconds");
        header(
            out,
            "switchboard_context_preservation_score",
            "Share of the envelope's entities and intent that the receiving agent's first turn mentions.",
            "histogram",
        );
        self.context_preservation
            .render(out, "switchboard_context_preservation_score");
        header(
            out,
            "switchboard_csat_total",
            "Post-handoff satisfaction survey answers, by score (1-5).",
            "counter",
        );
        for (i, n) in self.csat.iter().enumerate() {
            let _ = writeln!(
                out,
                "switchboard_csat_total{{score=\"{}\"}} {}",
                i + 1,
                n.load(Ordering::Relaxed)
            );
        }
        for (name, help, value) in [
            (
                "switchboard_conversions_total",
                "Calls where an outcome tool (e.g. record_upgrade) succeeded.",
                &self.conversions,
            ),
            (
                "switchboard_repeat_inquiries_total",
                "Calls from a caller who had the same intent within the repeat window.",
                &self.repeat_inquiries,
            ),
            (
                "switchboard_calls_with_handoff_total",
                "Ended calls with at least one handoff (handoff rate: divide by switchboard_calls_ended_total).",
                &self.calls_with_handoff,
            ),
            (
                "switchboard_calls_ended_total",
                "Calls ended.",
                &self.calls_ended,
            ),
        ] {
            header(out, name, help, "counter");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// HELP text escaping: backslash and line feed.
fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Label value escaping: backslash, double quote and line feed.
fn escape_label(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A float as the format writes it: `+Inf`, `-Inf`, `NaN`, or the shortest decimal that reads
/// back to the same value (`0.005`, `1`, `30`).
fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// A counter family with `N` labels.
struct LabelledCounter<const N: usize> {
    names: [&'static str; N],
    /// Ordered, so the output is stable.
    series: Mutex<BTreeMap<[String; N], u64>>,
}

impl<const N: usize> LabelledCounter<N> {
    fn new(names: [&'static str; N]) -> Self {
        Self {
            names,
            series: Mutex::new(BTreeMap::new()),
        }
    }

    fn inc(&self, values: [&str; N]) {
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let key = values.map(str::to_string);
        let key = if series.len() >= MAX_SERIES && !series.contains_key(&key) {
            [(); N].map(|_| OVERFLOW_LABEL.to_string())
        } else {
            key
        };
        *series.entry(key).or_insert(0) += 1;
    }

    fn render(&self, out: &mut String, name: &str) {
        let series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        for (values, n) in series.iter() {
            out.push_str(name);
            out.push('{');
            for (i, (label, value)) in self.names.iter().zip(values).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{label}=\"{}\"", escape_label(value));
            }
            let _ = writeln!(out, "}} {n}");
        }
    }
}

/// A histogram with fixed buckets. Each observation lands in exactly one slot (the first bound
/// it does not exceed, or the overflow slot), and the count is the sum of the slots, so a
/// render always has `+Inf` equal to `_count` even while other threads observe.
pub(crate) struct Histogram {
    bounds: &'static [f64],
    /// One slot per bound, then the overflow slot.
    slots: Box<[AtomicU64]>,
    /// The sum of observations, as `f64` bits.
    sum: AtomicU64,
}

impl Histogram {
    pub(crate) fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            slots: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }

    pub(crate) fn observe(&self, v: f64) {
        if v.is_nan() {
            return;
        }
        let slot = self.bounds.partition_point(|b| *b < v);
        self.slots[slot].fetch_add(1, Ordering::Relaxed);
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + v).to_bits())
            });
    }

    fn render(&self, out: &mut String, name: &str) {
        let mut cumulative = 0u64;
        for (bound, slot) in self.bounds.iter().zip(self.slots.iter()) {
            cumulative += slot.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{}\"}} {cumulative}",
                float(*bound)
            );
        }
        if let Some(overflow) = self.slots.last() {
            cumulative += overflow.load(Ordering::Relaxed);
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum = f64::from_bits(self.sum.load(Ordering::Relaxed));
        let _ = writeln!(out, "{name}_sum {}", float(sum));
        let _ = writeln!(out, "{name}_count {cumulative}");
    }
}

/// Upper bounds of the media engine's step histograms (work in one step; how late a shard woke
/// for it).
pub const MEDIA_STEP_BUCKETS: [f64; 9] = [
    0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.04,
];

/// The media engine's two step histograms, in Prometheus text: an operator's early warning
/// (work approaching the 2 ms step means the shards are full) and the scheduler's share of any
/// lateness (a shard woken late by the machine, not slowed by its calls).
pub fn render_media_engine(out: &mut String) {
    let (work, woke) = crate::media::engine::step_histograms();
    header(
        out,
        "switchboard_media_step_seconds",
        "Work of one media engine step (every call due on one thread), seconds.",
        "histogram",
    );
    work.render(out, "switchboard_media_step_seconds");
    header(
        out,
        "switchboard_media_wakeup_lateness_seconds",
        "How long after its timer a media thread ran its step, seconds.",
        "histogram",
    );
    woke.render(out, "switchboard_media_wakeup_lateness_seconds");
}

/// Upper bounds of `switchboard_call_setup_seconds` (INVITE -> ACK of our 200).
pub const SETUP_SECONDS_BUCKETS: [f64; 10] =
    [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Upper bounds of `switchboard_rtp_jitter_seconds` (RFC 3550 interarrival jitter at call end).
pub const JITTER_SECONDS_BUCKETS: [f64; 8] = [0.001, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.5];

/// Upper bounds of `switchboard_rtp_send_lateness_seconds` (a packet's send time after its
/// 20 ms deadline; > 0.02 s means the stream slipped a whole packet time).
pub const SEND_LATENESS_BUCKETS: [f64; 9] =
    [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16];

/// How many wall-clock milliseconds with a packet sent more than 20 ms late
/// [`OpsMetrics::late_sends`] remembers (the oldest go first).
pub const LATE_LOG_MS: usize = 1024;

/// Packets that left more than 20 ms after their deadline in one wall-clock millisecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LateSends {
    /// When they left: milliseconds since the Unix epoch.
    pub at_ms: u64,
    pub packets: u64,
    /// The latest of them, after its deadline, in microseconds.
    pub max_late_us: u64,
}

/// The recent [`LateSends`], and how many older milliseconds were forgotten.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct LateLog {
    pub recent: std::collections::VecDeque<LateSends>,
    pub forgotten_ms: u64,
}

/// Operations metrics of calls and media (issue 7), next to the seed's [`Metrics`].
pub struct OpsMetrics {
    calls_ended: LabelledCounter<1>,
    rtp_send_lateness: Histogram,
    /// When the packets over 20 ms late left: a histogram says how many, this says when, so a
    /// stall of the machine itself (a VM's vCPU not running) can be told from the bridge's
    /// own (`sip-test/bench-calls` holds it against a reference per CPU).
    late_log: Mutex<LateLog>,
    setup_seconds: Histogram,
    rtp_packets_received: AtomicU64,
    rtp_packets_lost: AtomicU64,
    rtp_late: AtomicU64,
    rtp_concealed: AtomicU64,
    rtp_jitter_seconds: Histogram,
    srtp_auth_failed: AtomicU64,
    srtp_replayed: AtomicU64,
    sip_tls_handshakes: LabelledCounter<1>,
}

impl std::fmt::Debug for OpsMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpsMetrics").finish_non_exhaustive()
    }
}

impl Default for OpsMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// What a call's media reported at its end.
#[derive(Debug, Clone, Copy, Default)]
pub struct RtpTotals {
    pub received: u64,
    pub lost: u64,
    pub late: u64,
    pub concealed: u64,
    pub jitter: Duration,
    /// SRTP/SRTCP packets dropped for a bad tag, and as replays (RFC 3711 3.3, 3.3.2).
    pub srtp_auth_failed: u64,
    pub srtp_replayed: u64,
}

impl OpsMetrics {
    pub fn new() -> Self {
        OpsMetrics {
            calls_ended: LabelledCounter::new(["end_reason"]),
            setup_seconds: Histogram::new(&SETUP_SECONDS_BUCKETS),
            rtp_packets_received: AtomicU64::new(0),
            rtp_packets_lost: AtomicU64::new(0),
            rtp_late: AtomicU64::new(0),
            rtp_concealed: AtomicU64::new(0),
            rtp_jitter_seconds: Histogram::new(&JITTER_SECONDS_BUCKETS),
            rtp_send_lateness: Histogram::new(&SEND_LATENESS_BUCKETS),
            late_log: Mutex::new(LateLog::default()),
            srtp_auth_failed: AtomicU64::new(0),
            srtp_replayed: AtomicU64::new(0),
            sip_tls_handshakes: LabelledCounter::new(["result"]),
        }
    }

    /// A SIP over TLS handshake ended: `ok`, `failed` (not TLS, no common version or suite)
    /// or `timeout`.
    pub fn record_tls_handshake(&self, result: &str) {
        self.sip_tls_handshakes.inc([result]);
    }

    /// A call ended for `reason` (`remote_bye`, `local_bye`, `cancelled`, `rejected_503`, ...).
    pub fn record_call_end(&self, reason: &str) {
        self.calls_ended.inc([reason]);
    }

    /// INVITE received -> ACK of our 200.
    pub fn observe_setup(&self, elapsed: Duration) {
        self.setup_seconds.observe(elapsed.as_secs_f64());
    }

    /// One RTP packet went out `late` after its deadline (every call, every 20 ms).
    pub fn observe_send_lateness(&self, late: std::time::Duration) {
        self.rtp_send_lateness.observe(late.as_secs_f64());
        if late > Duration::from_millis(20) {
            let at_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            self.note_late(at_ms, late);
        }
    }

    fn note_late(&self, at_ms: u64, late: Duration) {
        let late_us = late.as_micros() as u64;
        let Ok(mut log) = self.late_log.lock() else {
            return;
        };
        match log.recent.back_mut() {
            Some(last) if last.at_ms == at_ms => {
                last.packets += 1;
                last.max_late_us = last.max_late_us.max(late_us);
            }
            _ => {
                if log.recent.len() == LATE_LOG_MS {
                    log.recent.pop_front();
                    log.forgotten_ms += 1;
                }
                log.recent.push_back(LateSends {
                    at_ms,
                    packets: 1,
                    max_late_us: late_us,
                });
            }
        }
    }

    /// Packets sent more than 20 ms late, by the millisecond they left (`/stats`).
    pub fn late_sends(&self) -> LateLog {
        self.late_log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// A call's media ended with these totals.
    pub fn record_rtp(&self, t: RtpTotals) {
        self.rtp_packets_received
            .fetch_add(t.received, Ordering::Relaxed);
        self.rtp_packets_lost.fetch_add(t.lost, Ordering::Relaxed);
        self.rtp_late.fetch_add(t.late, Ordering::Relaxed);
        self.rtp_concealed.fetch_add(t.concealed, Ordering::Relaxed);
        self.srtp_auth_failed
            .fetch_add(t.srtp_auth_failed, Ordering::Relaxed);
        self.srtp_replayed
            .fetch_add(t.srtp_replayed, Ordering::Relaxed);
        self.rtp_jitter_seconds.observe(t.jitter.as_secs_f64());
    }

    /// Unlabelled gauges and counters read elsewhere: (name, help, value).
    pub fn render_plain(
        out: &mut String,
        gauges: &[(&str, &str, f64)],
        counters: &[(&str, &str, u64)],
    ) {
        for (name, help, v) in gauges {
            header(out, name, help, "gauge");
            let _ = writeln!(out, "{name} {}", float(*v));
        }
        for (name, help, v) in counters {
            header(out, name, help, "counter");
            let _ = writeln!(out, "{name} {v}");
        }
    }

    /// Appends these families, plus `gauges` and `counters` read elsewhere (live calls,
    /// Realtime counters).
    pub fn render_into(
        &self,
        out: &mut String,
        gauges: &[(&str, &str, f64)],
        counters: &[(&str, &str, u64)],
    ) {
        Self::render_plain(out, gauges, counters);
        header(
            out,
            "switchboard_calls_total",
            "Calls ended, by end reason.",
            "counter",
        );
        self.calls_ended.render(out, "switchboard_calls_total");
        header(
            out,
            "switchboard_call_setup_seconds",
            "INVITE received to the ACK of our 200 OK.",
            "histogram",
        );
        self.setup_seconds
            .render(out, "switchboard_call_setup_seconds");
        for (name, help, v) in [
            (
                "switchboard_rtp_packets_received_total",
                "RTP packets received from callers.",
                &self.rtp_packets_received,
            ),
            (
                "switchboard_rtp_packets_lost_total",
                "RTP packets lost (RFC 3550 cumulative loss at call end).",
                &self.rtp_packets_lost,
            ),
            (
                "switchboard_rtp_packets_late_total",
                "RTP packets that arrived too late for the jitter buffer.",
                &self.rtp_late,
            ),
            (
                "switchboard_rtp_frames_concealed_total",
                "20 ms frames concealed (lost or late).",
                &self.rtp_concealed,
            ),
            (
                "switchboard_srtp_auth_failures_total",
                "SRTP/SRTCP packets dropped: authentication tag wrong (RFC 3711 3.3).",
                &self.srtp_auth_failed,
            ),
            (
                "switchboard_srtp_replays_total",
                "SRTP/SRTCP packets dropped as replayed or older than the window (RFC 3711 3.3.2).",
                &self.srtp_replayed,
            ),
        ] {
            header(out, name, help, "counter");
            let _ = writeln!(out, "{name} {}", v.load(Ordering::Relaxed));
        }
        header(
            out,
            "switchboard_rtp_jitter_seconds",
            "Interarrival jitter of each call's incoming RTP at its end (RFC 3550).",
            "histogram",
        );
        self.rtp_jitter_seconds
            .render(out, "switchboard_rtp_jitter_seconds");
        header(
            out,
            "switchboard_rtp_send_lateness_seconds",
            "How late each outgoing RTP packet left after its 20 ms deadline (the bridge's pacing); a tick dropped because the next was due counts as 20 ms later than that one.",
            "histogram",
        );
        self.rtp_send_lateness
            .render(out, "switchboard_rtp_send_lateness_seconds");
        header(
            out,
            "switchboard_sip_tls_handshakes_total",
            "SIP over TLS handshakes, by result (ok, failed, timeout).",
            "counter",
        );
        self.sip_tls_handshakes
            .render(out, "switchboard_sip_tls_handshakes_total");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashMap};
    use std::sync::Arc;

    /// One sample line: metric name, labels (unescaped), value.
    #[derive(Debug)]
    struct Sample {
        name: String,
        labels: Vec<(String, String)>,
        value: f64,
    }

    impl Sample {
        fn label(&self, name: &str) -> Option<&str> {
            self.labels
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        }
    }

    fn is_metric_name(s: &str) -> bool {
        let mut chars = s.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }

    fn is_label_name(s: &str) -> bool {
        let mut chars = s.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    }

    fn parse_value(s: &str) -> f64 {
        match s {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            _ => s.parse().unwrap_or_else(|e| panic!("bad value {s:?}: {e}")),
        }
    }

    /// `{a="x",b="y\"z"} 3` -> labels and the rest of the line.
    fn parse_labels(mut s: &str) -> (Vec<(String, String)>, &str) {
        let mut labels = Vec::new();
        s = s.strip_prefix('{').unwrap();
        loop {
            if let Some(rest) = s.strip_prefix('}') {
                return (labels, rest);
            }
            let eq = s.find('=').unwrap();
            let name = &s[..eq];
            assert!(is_label_name(name), "label name {name:?}");
            let mut chars = s[eq + 1..].char_indices();
            assert_eq!(chars.next(), Some((0, '"')), "label value must be quoted");
            let mut value = String::new();
            let end = loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, 'n')) => value.push('\n'),
                        other => panic!("bad escape {other:?}"),
                    },
                    Some((i, '"')) => break i,
                    Some((_, '\n')) => panic!("raw line feed in a label value"),
                    Some((_, c)) => value.push(c),
                    None => panic!("unterminated label value"),
                }
            };
            labels.push((name.to_string(), value));
            s = &s[eq + 1 + end + 1..];
            s = s.strip_prefix(',').unwrap_or(s);
        }
    }

    /// Parses exposition text line by line, checking the grammar and the rules of the format:
    /// HELP then TYPE before a family's samples, each family declared once and its samples
    /// together, sample names that belong to the declared type, no repeated series.
    fn parse(text: &str) -> (HashMap<String, String>, Vec<Sample>) {
        assert!(text.ends_with('\n'));
        let mut types = HashMap::new();
        let mut helped = BTreeSet::new();
        let mut samples: Vec<Sample> = Vec::new();
        let mut current: Option<String> = None;
        let mut seen = BTreeSet::new();
        for line in text.lines() {
            assert!(!line.is_empty(), "empty line");
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap();
                assert!(is_metric_name(name));
                assert!(!help.is_empty());
                assert!(helped.insert(name.to_string()), "HELP twice for {name}");
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(is_metric_name(name));
                assert!(helped.contains(name), "TYPE before HELP for {name}");
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                    "{kind}"
                );
                assert!(
                    types.insert(name.to_string(), kind.to_string()).is_none(),
                    "TYPE twice for {name}"
                );
                current = Some(name.to_string());
                continue;
            }
            assert!(!line.starts_with('#'), "unexpected comment {line:?}");
            let name_end = line.find(['{', ' ']).unwrap();
            let name = &line[..name_end];
            assert!(is_metric_name(name), "{name:?}");
            let (labels, rest) = if line[name_end..].starts_with('{') {
                parse_labels(&line[name_end..])
            } else {
                (Vec::new(), &line[name_end..])
            };
            let value = rest.strip_prefix(' ').unwrap();
            assert!(!value.contains(' '), "timestamps are not written: {line:?}");
            let family = current.as_deref().expect("sample before any TYPE");
            let ok = match types[family].as_str() {
                "histogram" => [
                    format!("{family}_bucket"),
                    format!("{family}_sum"),
                    format!("{family}_count"),
                ]
                .contains(&name.to_string()),
                _ => name == family,
            };
            assert!(ok, "{name} does not belong to family {family}");
            assert!(
                seen.insert(format!("{name}{labels:?}")),
                "repeated series {line:?}"
            );
            samples.push(Sample {
                name: name.to_string(),
                labels,
                value: parse_value(value),
            });
        }
        (types, samples)
    }

    fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
        samples
            .iter()
            .find(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
            .unwrap_or_else(|| panic!("no {name} {labels:?}"))
            .value
    }

    /// Checks a histogram: `le` ascending ending in `+Inf`, counts never decreasing,
    /// `+Inf` = `_count`. Returns the (le, cumulative count) pairs.
    fn check_histogram(samples: &[Sample], family: &str) -> Vec<(f64, f64)> {
        let buckets: Vec<(f64, f64)> = samples
            .iter()
            .filter(|s| s.name == format!("{family}_bucket"))
            .map(|s| (parse_value(s.label("le").unwrap()), s.value))
            .collect();
        assert!(buckets.len() >= 2);
        assert!(buckets.windows(2).all(|w| w[0].0 < w[1].0), "le ascending");
        assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "cumulative");
        assert_eq!(buckets.last().unwrap().0, f64::INFINITY);
        assert_eq!(
            buckets.last().unwrap().1,
            value(samples, &format!("{family}_count"), &[])
        );
        buckets
    }

    #[test]
    fn render_declares_every_seed_family() {
        let (types, samples) = parse(&Metrics::new().render());
        let want = [
            ("switchboard_handoffs_total", "counter"),
            ("switchboard_handoff_failures_total", "counter"),
            ("switchboard_handoff_seconds", "histogram"),
            ("switchboard_context_preservation_score", "histogram"),
            ("switchboard_csat_total", "counter"),
            ("switchboard_conversions_total", "counter"),
            ("switchboard_repeat_inquiries_total", "counter"),
            ("switchboard_calls_with_handoff_total", "counter"),
            ("switchboard_calls_ended_total", "counter"),
        ];
        assert_eq!(types.len(), want.len());
        for (name, kind) in want {
            assert_eq!(types.get(name).map(String::as_str), Some(kind), "{name}");
        }
        // Nothing observed yet: zeros, and every CSAT score is there from the start.
        assert!(samples.iter().all(|s| s.value == 0.0));
        for score in ["1", "2", "3", "4", "5"] {
            assert_eq!(
                value(&samples, "switchboard_csat_total", &[("score", score)]),
                0.0
            );
        }
        check_histogram(&samples, "switchboard_handoff_seconds");
        check_histogram(&samples, "switchboard_context_preservation_score");
    }

    #[test]
    fn handoffs_are_counted_by_pair_and_policy() {
        let m = Metrics::new();
        m.record_handoff("router", "support");
        m.record_handoff("support", "sales");
        m.record_handoff("router", "support");
        m.record_handoff_failure("support", "sales", "queue");
        let (_, samples) = parse(&m.render());
        let pair = |from, to| {
            value(
                &samples,
                "switchboard_handoffs_total",
                &[("from", from), ("to", to)],
            )
        };
        assert_eq!(pair("router", "support"), 2.0);
        assert_eq!(pair("support", "sales"), 1.0);
        assert_eq!(
            value(
                &samples,
                "switchboard_handoff_failures_total",
                &[("from", "support"), ("to", "sales"), ("policy", "queue")]
            ),
            1.0
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::new();
        let nasty = "a\"b\\c\nd} e=\"f\",";
        m.record_handoff(nasty, "to");
        let text = m.render();
        assert!(
            text.contains(r#"switchboard_handoffs_total{from="a\"b\\c\nd} e=\"f\",",to="to"} 1"#),
            "{text}"
        );
        let (_, samples) = parse(&text);
        assert_eq!(
            value(
                &samples,
                "switchboard_handoffs_total",
                &[("from", nasty), ("to", "to")]
            ),
            1.0
        );
        assert_eq!(escape_help("a\\b\nc"), "a\\\\b\\nc");
    }

    #[test]
    fn handoff_seconds_buckets_are_cumulative_with_le_bounds() {
        let m = Metrics::new();
        for ms in [3, 5, 8, 240, 300, 2_900, 31_000] {
            m.observe_handoff_time(Duration::from_millis(ms));
        }
        let (_, samples) = parse(&m.render());
        let buckets = check_histogram(&samples, "switchboard_handoff_seconds");
        let bounds: Vec<f64> = buckets.iter().map(|b| b.0).collect();
        let mut want_bounds = HANDOFF_SECONDS_BUCKETS.to_vec();
        want_bounds.push(f64::INFINITY);
        assert_eq!(bounds, want_bounds);
        let at = |le: f64| buckets.iter().find(|b| b.0 == le).unwrap().1;
        // 5 ms lands in le="0.005" (the bound is inclusive).
        assert_eq!(at(0.005), 2.0);
        assert_eq!(at(0.01), 3.0);
        assert_eq!(at(0.25), 4.0);
        assert_eq!(at(0.5), 5.0);
        assert_eq!(at(5.0), 6.0);
        assert_eq!(at(30.0), 6.0);
        assert_eq!(at(f64::INFINITY), 7.0);
        let sum = value(&samples, "switchboard_handoff_seconds_sum", &[]);
        assert!((sum - 34.456).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn context_preservation_is_clamped_to_a_share() {
        let m = Metrics::new();
        for score in [0.0, 0.1, 0.55, 1.0, 1.7, -0.2, f64::NAN] {
            m.observe_context_preservation(score);
        }
        let text = m.render();
        // Bounds print as written, not as their binary expansion.
        assert!(text.contains("switchboard_context_preservation_score_bucket{le=\"0.3\"} 3"));
        assert!(text.contains("switchboard_context_preservation_score_bucket{le=\"1\"} 6"));
        let (_, samples) = parse(&text);
        let buckets = check_histogram(&samples, "switchboard_context_preservation_score");
        assert_eq!(buckets.len(), CONTEXT_PRESERVATION_BUCKETS.len() + 1);
        assert_eq!(buckets[0], (0.1, 3.0)); // 0.0, 0.1 and the clamped -0.2
        assert_eq!(
            value(
                &samples,
                "switchboard_context_preservation_score_count",
                &[]
            ),
            6.0
        );
        let sum = value(&samples, "switchboard_context_preservation_score_sum", &[]);
        assert!((sum - 2.65).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn call_end_counts_rate_csat_conversion_and_repeats() {
        let m = Metrics::new();
        let seed = CallMetrics {
            handoffs: 2,
            handoff_ms: vec![8, 240],
            context_preservation: vec![1.0, 0.5],
            csat: Some(5),
            converted: true,
            repeat_inquiry: false,
        };
        m.record_call_ended(&seed);
        m.record_call_ended(&CallMetrics {
            csat: Some(2),
            repeat_inquiry: true,
            ..CallMetrics::default()
        });
        m.record_call_ended(&CallMetrics {
            csat: Some(9),
            ..CallMetrics::default()
        });
        m.record_call_ended(&CallMetrics {
            csat: Some(0),
            ..CallMetrics::default()
        });
        let (_, samples) = parse(&m.render());
        let v = |name| value(&samples, name, &[]);
        assert_eq!(v("switchboard_calls_ended_total"), 4.0);
        assert_eq!(v("switchboard_calls_with_handoff_total"), 1.0);
        assert_eq!(v("switchboard_conversions_total"), 1.0);
        assert_eq!(v("switchboard_repeat_inquiries_total"), 1.0);
        let csat = |score| value(&samples, "switchboard_csat_total", &[("score", score)]);
        assert_eq!(
            [csat("1"), csat("2"), csat("3"), csat("4"), csat("5")],
            [0.0, 1.0, 0.0, 0.0, 1.0]
        );
        // The per-handoff families are not touched at call end.
        assert!(!samples
            .iter()
            .any(|s| s.name == "switchboard_handoffs_total"));
        assert_eq!(v("switchboard_handoff_seconds_count"), 0.0);
    }

    #[test]
    fn label_sets_past_the_limit_fold_into_one_series() {
        let m = Metrics::new();
        for i in 0..MAX_SERIES + 10 {
            m.record_handoff(&format!("a{i}"), "b");
        }
        m.record_handoff("a0", "b");
        let (_, samples) = parse(&m.render());
        let series: Vec<_> = samples
            .iter()
            .filter(|s| s.name == "switchboard_handoffs_total")
            .collect();
        assert_eq!(series.len(), MAX_SERIES + 1);
        assert_eq!(
            value(
                &samples,
                "switchboard_handoffs_total",
                &[("from", OVERFLOW_LABEL), ("to", OVERFLOW_LABEL)]
            ),
            10.0
        );
        // Known label sets keep counting.
        assert_eq!(
            value(
                &samples,
                "switchboard_handoffs_total",
                &[("from", "a0"), ("to", "b")]
            ),
            2.0
        );
    }

    #[test]
    fn concurrent_updates_are_all_counted() {
        let m = Arc::new(Metrics::new());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for i in 0..1000u64 {
                        m.record_handoff("router", "support");
                        m.observe_handoff_time(Duration::from_millis(i % 40));
                        m.record_call_ended(&CallMetrics::default());
                    }
                })
            })
            .collect();
        // Renders while others write are still well-formed.
        for _ in 0..20 {
            let (_, samples) = parse(&m.render());
            check_histogram(&samples, "switchboard_handoff_seconds");
        }
        for t in threads {
            t.join().unwrap();
        }
        let (_, samples) = parse(&m.render());
        assert_eq!(
            value(
                &samples,
                "switchboard_handoffs_total",
                &[("from", "router"), ("to", "support")]
            ),
            4000.0
        );
        assert_eq!(
            value(&samples, "switchboard_handoff_seconds_count", &[]),
            4000.0
        );
        assert_eq!(
            value(&samples, "switchboard_calls_ended_total", &[]),
            4000.0
        );
    }

    #[test]
    fn late_sends_are_logged_by_the_millisecond_and_the_oldest_forgotten() {
        let ops = OpsMetrics::new();
        ops.observe_send_lateness(Duration::from_millis(20)); // on the bound: not late
        assert!(ops.late_sends().recent.is_empty());
        ops.note_late(1_000, Duration::from_micros(21_500));
        ops.note_late(1_000, Duration::from_micros(41_000));
        ops.note_late(1_000, Duration::from_micros(25_000));
        ops.note_late(1_003, Duration::from_micros(22_000));
        let log = ops.late_sends();
        assert_eq!(
            Vec::from(log.recent),
            vec![
                LateSends {
                    at_ms: 1_000,
                    packets: 3,
                    max_late_us: 41_000
                },
                LateSends {
                    at_ms: 1_003,
                    packets: 1,
                    max_late_us: 22_000
                },
            ]
        );
        for ms in 0..LATE_LOG_MS as u64 {
            ops.note_late(2_000 + ms, Duration::from_millis(30));
        }
        let log = ops.late_sends();
        assert_eq!(log.recent.len(), LATE_LOG_MS);
        assert_eq!(log.forgotten_ms, 2);
        assert_eq!(log.recent.front().map(|l| l.at_ms), Some(2_000));
        // Through the public path: a real late packet lands with the clock's millisecond.
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        ops.observe_send_lateness(Duration::from_millis(33));
        let last = ops.late_sends().recent.back().copied().unwrap();
        assert!(
            last.at_ms >= before && last.max_late_us == 33_000,
            "{last:?}"
        );
    }

    #[test]
    fn floats_print_in_the_exposition_spelling() {
        assert_eq!(float(0.005), "0.005");
        assert_eq!(float(1.0), "1");
        assert_eq!(float(30.0), "30");
        assert_eq!(float(f64::INFINITY), "+Inf");
        assert_eq!(float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(float(f64::NAN), "NaN");
    }

    #[test]
    fn metrics_are_send_and_sync() {
        fn shared<T: Send + Sync>() {}
        shared::<Metrics>();
    }

    #[test]
    fn ops_families_parse_with_cumulative_buckets() {
        let ops = OpsMetrics::new();
        ops.record_call_end("remote_bye");
        ops.record_call_end("remote_bye");
        ops.record_call_end("rejected_503");
        ops.observe_setup(Duration::from_millis(30));
        ops.observe_send_lateness(Duration::from_micros(300));
        ops.observe_send_lateness(Duration::from_millis(50));
        ops.record_rtp(RtpTotals {
            received: 500,
            lost: 3,
            late: 1,
            concealed: 4,
            jitter: Duration::from_millis(7),
            srtp_auth_failed: 5,
            srtp_replayed: 6,
        });
        let mut text = String::new();
        ops.render_into(
            &mut text,
            &[("switchboard_calls_active", "Calls in progress.", 2.0)],
            &[("switchboard_realtime_reconnects_total", "Reconnects.", 1)],
        );
        let (types, samples) = parse(&text);
        assert_eq!(types["switchboard_calls_total"], "counter");
        assert_eq!(types["switchboard_calls_active"], "gauge");
        assert_eq!(
            value(
                &samples,
                "switchboard_calls_total",
                &[("end_reason", "remote_bye")]
            ),
            2.0
        );
        assert_eq!(
            value(
                &samples,
                "switchboard_calls_total",
                &[("end_reason", "rejected_503")]
            ),
            1.0
        );
        assert_eq!(
            value(&samples, "switchboard_rtp_packets_lost_total", &[]),
            3.0
        );
        assert_eq!(
            value(&samples, "switchboard_realtime_reconnects_total", &[]),
            1.0
        );
        assert_eq!(
            value(&samples, "switchboard_srtp_auth_failures_total", &[]),
            5.0
        );
        assert_eq!(value(&samples, "switchboard_srtp_replays_total", &[]), 6.0);
        let setup = check_histogram(&samples, "switchboard_call_setup_seconds");
        assert_eq!(setup.last().map(|b| b.1), Some(1.0));
        let jitter = check_histogram(&samples, "switchboard_rtp_jitter_seconds");
        assert_eq!(jitter.last().map(|b| b.1), Some(1.0));
        let late = check_histogram(&samples, "switchboard_rtp_send_lateness_seconds");
        // 0.3 ms in the first bucket, 50 ms only from the 80 ms bucket on.
        assert_eq!(late.first().map(|b| b.1), Some(1.0));
        assert_eq!(late.iter().find(|b| b.0 == 0.04).map(|b| b.1), Some(1.0));
        assert_eq!(late.iter().find(|b| b.0 == 0.08).map(|b| b.1), Some(2.0));
    }
}
