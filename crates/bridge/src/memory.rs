//! Cross-call memory and per-call records.
//!
//! Each call ends as a [`CallRecord`]: who called (a caller identity from From or
//! P-Asserted-Identity, [`caller_identity`]), the agent path with every handoff and its envelope,
//! the final envelope, the outcome and the seed's per-call metrics ([`CallMetrics`]). A
//! [`MemoryStore`] keeps them by caller so that a returning caller's entry agent starts with
//! [`returning_caller_note`] and a repeat inquiry is recognised ([`is_repeat_inquiry`]).
//!
//! [`InMemoryStore`] is the bounded in-process store (`--database memory`); the SQLite and
//! PostgreSQL store ([`crate::store::DbStore`]) implements the same trait.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use router::Envelope;
use serde::{Deserialize, Serialize};

/// One handoff (or handoff attempt) on a call's agent path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandoffRecord {
    /// The agent that handed the caller over.
    pub from: String,
    /// The agent it handed to.
    pub to: String,
    /// Why (the envelope's `handoff_reason`, or the bridge's own reason).
    pub reason: String,
    /// When the handoff was triggered.
    pub at: SystemTime,
    /// Trigger -> the new agent's first audio frame sent; `None` when it never spoke.
    pub handoff_ms: Option<u64>,
    /// Voice mode used: `same`, `per_agent` or `hybrid`.
    pub mode: String,
    /// The failure policy applied (`queue`, `callback`, `return`); `None` when the target took
    /// the call at once.
    pub policy: Option<String>,
    /// The context the receiving agent got.
    pub envelope: Envelope,
}

/// The seed's metrics for one call (the CDR columns; [`crate::metrics::Metrics`] aggregates them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CallMetrics {
    /// Handoffs that connected the caller to the new agent.
    pub handoffs: u32,
    /// Per handoff: trigger -> the new agent's first audio frame sent, in milliseconds.
    pub handoff_ms: Vec<u64>,
    /// Per handoff: share (0..=1) of the envelope's entities and intent that the receiving
    /// agent's first turn mentions.
    pub context_preservation: Vec<f64>,
    /// Post-handoff survey score 1-5, when the caller answered it.
    pub csat: Option<u8>,
    /// An outcome tool (e.g. `record_upgrade`) succeeded.
    pub converted: bool,
    /// The same caller had the same intent within the repeat window ([`is_repeat_inquiry`]).
    pub repeat_inquiry: bool,
}

/// Everything kept about one call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// The SIP Call-ID.
    pub call_id: String,
    /// The caller identity ([`caller_identity`]).
    pub caller: String,
    /// When the call was answered (or offered, for calls never answered).
    pub started_at: SystemTime,
    /// When it ended; `None` while it runs.
    pub ended_at: Option<SystemTime>,
    /// Every handoff, in order.
    pub agent_path: Vec<HandoffRecord>,
    /// The context when the call ended.
    pub final_envelope: Option<Envelope>,
    /// How the call ended for the business, e.g. `upgraded to Pro`.
    pub outcome: Option<String>,
    /// The seed's metrics.
    pub metrics: CallMetrics,
    /// The SIP and media side: parties, codec, times, end reason, RTP quality.
    #[serde(default)]
    pub sip: Option<SipLeg>,
    /// Realtime token usage and its cost.
    #[serde(default)]
    pub usage: Option<UsageCost>,
    /// Business tool calls with their arguments and results, in the order they finished.
    #[serde(default)]
    pub tool_calls: Vec<ToolCallRecord>,
    /// Callback requests the `callback` policy made during the call (also at `/callbacks`).
    #[serde(default)]
    pub callbacks: Vec<crate::handoffs::CallbackRequest>,
}

/// One business tool call of a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ToolCallRecord {
    pub agent: String,
    pub tool: String,
    /// The model's arguments (JSON; a string when they were not JSON).
    pub arguments: serde_json::Value,
    /// When the call was made.
    pub at: SystemTime,
    pub duration_ms: u64,
    /// The backend's result (`null` on error).
    pub result: serde_json::Value,
    /// What the model got instead of a result.
    pub error: Option<String>,
}

impl Default for ToolCallRecord {
    fn default() -> Self {
        ToolCallRecord {
            agent: String::new(),
            tool: String::new(),
            arguments: serde_json::Value::Null,
            at: SystemTime::UNIX_EPOCH,
            duration_ms: 0,
            result: serde_json::Value::Null,
            error: None,
        }
    }
}

/// The call as the SIP side saw it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SipLeg {
    pub from: String,
    pub to: String,
    /// The caller's (or SBC's) address.
    pub remote: String,
    /// Negotiated codec (`PCMU`, `PCMA`, `opus`).
    pub codec: Option<String>,
    pub invite_at: Option<SystemTime>,
    /// When the caller's ACK of our 200 arrived.
    pub answered_at: Option<SystemTime>,
    pub ended_at: Option<SystemTime>,
    /// `remote_bye`, `local_bye`, `cancelled`, `ack_timeout`, `rejected_503`, ...
    pub end_reason: String,
    /// Why the bridge hung up (`local_bye`): `media timeout`, `max call duration`,
    /// `drain timeout`, `admin` (its BYE's Reason text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_detail: Option<String>,
    /// `caller`, `bridge` or `none` (never answered).
    pub hung_up_by: String,
    /// Incoming RTP at the call's end (RFC 3550 receiver statistics).
    pub rtp: Option<RtpLeg>,
}

/// A call's RTP statistics.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RtpLeg {
    pub packets_sent: u64,
    pub packets_received: u64,
    pub lost: i64,
    pub jitter_ms: f64,
    pub late: u64,
    pub concealed: u64,
    /// RTCP reports sent and received (RFC 3550 SR/RR).
    pub rtcp_sent: u64,
    pub rtcp_received: u64,
    /// What the caller's last RTCP report said of our stream: fraction lost (0-1),
    /// cumulative loss, interarrival jitter. Zero when the caller sent none.
    pub remote_fraction_lost: f64,
    pub remote_cumulative_lost: i64,
    pub remote_jitter_ms: f64,
}

/// Realtime usage of a call (from `response.done`) and its cost at the configured prices.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct UsageCost {
    pub input_text_tokens: u64,
    pub input_audio_tokens: u64,
    pub output_text_tokens: u64,
    pub output_audio_tokens: u64,
    pub cost_usd: f64,
}

/// USD per million tokens (`--realtime-prices`); defaults: gpt-realtime's list prices.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Prices {
    pub text_in: f64,
    pub audio_in: f64,
    pub text_out: f64,
    pub audio_out: f64,
}

impl Default for Prices {
    fn default() -> Self {
        Prices {
            text_in: 4.0,
            audio_in: 32.0,
            text_out: 16.0,
            audio_out: 64.0,
        }
    }
}

impl Prices {
    /// `text_in=4,audio_in=32,text_out=16,audio_out=64` (any subset; USD per 1M tokens).
    pub fn parse(s: &str) -> Result<Prices, String> {
        let mut p = Prices::default();
        for kv in s.split(',').map(str::trim).filter(|kv| !kv.is_empty()) {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("{kv:?}: expected NAME=USD_PER_MILLION"))?;
            let v: f64 = v
                .trim()
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| format!("{kv:?}: not a price"))?;
            match k.trim() {
                "text_in" => p.text_in = v,
                "audio_in" => p.audio_in = v,
                "text_out" => p.text_out = v,
                "audio_out" => p.audio_out = v,
                other => {
                    return Err(format!(
                        "unknown price {other:?} (text_in, audio_in, text_out, audio_out)"
                    ))
                }
            }
        }
        Ok(p)
    }

    /// The cost of `u` in USD.
    pub fn cost(&self, u: &UsageCost) -> f64 {
        (u.input_text_tokens as f64 * self.text_in
            + u.input_audio_tokens as f64 * self.audio_in
            + u.output_text_tokens as f64 * self.text_out
            + u.output_audio_tokens as f64 * self.audio_out)
            / 1_000_000.0
    }
}

impl CallRecord {
    /// A record for a call that just started, with nothing on it yet.
    pub fn new(
        call_id: impl Into<String>,
        caller: impl Into<String>,
        started_at: SystemTime,
    ) -> Self {
        Self {
            call_id: call_id.into(),
            caller: caller.into(),
            started_at,
            ended_at: None,
            agent_path: Vec::new(),
            final_envelope: None,
            outcome: None,
            metrics: CallMetrics::default(),
            sip: None,
            usage: None,
            tool_calls: Vec::new(),
            callbacks: Vec::new(),
        }
    }

    /// The newest envelope: the final one, else the last handoff's.
    pub fn last_envelope(&self) -> Option<&Envelope> {
        self.final_envelope
            .as_ref()
            .or_else(|| self.agent_path.last().map(|h| &h.envelope))
    }

    /// The call's intents in the order they appeared (handoff envelopes, then the final one),
    /// normalised ([`normalize_intent`]) and without repeats.
    pub fn intents(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let envelopes = self
            .agent_path
            .iter()
            .map(|h| &h.envelope)
            .chain(self.final_envelope.as_ref());
        for env in envelopes {
            if let Some(intent) = env.intent.as_deref().map(normalize_intent) {
                if !intent.is_empty() && !out.contains(&intent) {
                    out.push(intent);
                }
            }
        }
        out
    }
}

/// What a [`MemoryStore`] read returns: a future, since a database store asks the database.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where call records live, by caller identity and by Call-ID.
///
/// Implementations are shared by every call task, so they take `&self`. `save` never blocks the
/// call path: a database store ([`crate::store::DbStore`]) hands the record to its writer task.
/// Reads are async so that a database store can see other nodes' records; they are bounded by a
/// short timeout and fall back to the node's cache.
pub trait MemoryStore: Send + Sync {
    /// The caller's most recent call (by `started_at`).
    fn last_for<'a>(&'a self, caller: &'a str) -> StoreFuture<'a, Option<CallRecord>>;
    /// The caller's calls that started at or after `since`, newest first.
    fn recent_for<'a>(
        &'a self,
        caller: &'a str,
        since: SystemTime,
    ) -> StoreFuture<'a, Vec<CallRecord>>;
    /// Stores a record; a record with the same `call_id` is replaced. Returns at once.
    fn save(&self, record: CallRecord);
    /// A record by Call-ID from what this node holds (never waits; a database store answers
    /// from its cache of recent records).
    fn get(&self, call_id: &str) -> Option<CallRecord>;
    /// A record by Call-ID, also from other nodes (a database store asks the database).
    fn fetch<'a>(&'a self, call_id: &'a str) -> StoreFuture<'a, Option<CallRecord>> {
        let r = self.get(call_id);
        Box::pin(async move { r })
    }
    /// Waits up to `timeout` until every saved record is stored for good (a database store's
    /// queue is empty); whether it is. Call it at shutdown.
    fn flush(&self, _timeout: Duration) -> StoreFuture<'_, bool> {
        Box::pin(async { true })
    }
    /// A database store's writer counters (queued, written, dropped, failures) for `/metrics`;
    /// `None` for a store without a writer.
    fn write_stats(&self) -> Option<crate::store::StoreStats> {
        None
    }
}

/// Default for [`InMemoryStore::new`]'s records per caller.
pub const DEFAULT_MAX_PER_CALLER: usize = 8;
/// Default for [`InMemoryStore::new`]'s callers. A record with a full transcript is some tens of
/// KiB, so the defaults bound the store to a few hundred MiB at worst.
pub const DEFAULT_MAX_CALLERS: usize = 1_000;

/// A bounded store in memory: at most `max_per_caller` records per caller (the oldest by
/// `started_at` go first) and `max_callers` callers (the one saved to least recently goes first,
/// with all its records).
pub struct InMemoryStore {
    max_per_caller: usize,
    max_callers: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    callers: HashMap<String, CallerEntry>,
    /// Save sequence number of each caller's latest save -> caller: eviction order.
    by_seq: BTreeMap<u64, String>,
    /// Call-ID -> caller.
    calls: HashMap<String, String>,
    seq: u64,
}

struct CallerEntry {
    seq: u64,
    /// Ascending by `started_at`.
    records: VecDeque<CallRecord>,
}

impl Inner {
    fn remove_call(&mut self, call_id: &str) {
        let Some(caller) = self.calls.remove(call_id) else {
            return;
        };
        let Some(entry) = self.callers.get_mut(&caller) else {
            return;
        };
        entry.records.retain(|r| r.call_id != call_id);
        if entry.records.is_empty() {
            let seq = entry.seq;
            self.callers.remove(&caller);
            self.by_seq.remove(&seq);
        }
    }

    fn remove_caller(&mut self, caller: &str) {
        if let Some(entry) = self.callers.remove(caller) {
            self.by_seq.remove(&entry.seq);
            for r in entry.records {
                self.calls.remove(&r.call_id);
            }
        }
    }
}

impl InMemoryStore {
    /// A store bounded to `max_per_caller` records for each of `max_callers` callers (0 reads
    /// as 1).
    pub fn new(max_per_caller: usize, max_callers: usize) -> Self {
        Self {
            max_per_caller: max_per_caller.max(1),
            max_callers: max_callers.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// How many callers and records it holds.
    pub fn len(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.callers.len(), inner.calls.len())
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.lock().calls.is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves consistent maps (no partial updates
        // that matter for lookups), so poisoning is not a reason to lose the memory.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for InMemoryStore {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_PER_CALLER, DEFAULT_MAX_CALLERS)
    }
}

impl InMemoryStore {
    fn last_for_now(&self, caller: &str) -> Option<CallRecord> {
        let inner = self.lock();
        inner.callers.get(caller)?.records.back().cloned()
    }

    fn recent_for_now(&self, caller: &str, since: SystemTime) -> Vec<CallRecord> {
        let inner = self.lock();
        let Some(entry) = inner.callers.get(caller) else {
            return Vec::new();
        };
        entry
            .records
            .iter()
            .rev()
            .take_while(|r| r.started_at >= since)
            .cloned()
            .collect()
    }
}

impl MemoryStore for InMemoryStore {
    fn last_for<'a>(&'a self, caller: &'a str) -> StoreFuture<'a, Option<CallRecord>> {
        let r = self.last_for_now(caller);
        Box::pin(async move { r })
    }

    fn recent_for<'a>(
        &'a self,
        caller: &'a str,
        since: SystemTime,
    ) -> StoreFuture<'a, Vec<CallRecord>> {
        let r = self.recent_for_now(caller, since);
        Box::pin(async move { r })
    }

    fn save(&self, record: CallRecord) {
        let mut inner = self.lock();
        inner.remove_call(&record.call_id);
        inner.seq += 1;
        let seq = inner.seq;
        let caller = record.caller.clone();
        let call_id = record.call_id.clone();
        let old_seq = inner.callers.get(&caller).map(|e| e.seq);
        if let Some(old) = old_seq {
            inner.by_seq.remove(&old);
        }
        inner.by_seq.insert(seq, caller.clone());
        inner.calls.insert(call_id, caller.clone());
        let entry = inner
            .callers
            .entry(caller.clone())
            .or_insert_with(|| CallerEntry {
                seq,
                records: VecDeque::new(),
            });
        entry.seq = seq;
        let at = entry
            .records
            .partition_point(|r| r.started_at <= record.started_at);
        entry.records.insert(at, record);
        let mut evicted = Vec::new();
        while entry.records.len() > self.max_per_caller {
            if let Some(old) = entry.records.pop_front() {
                evicted.push(old.call_id);
            }
        }
        for id in evicted {
            inner.calls.remove(&id);
        }
        while inner.callers.len() > self.max_callers {
            let Some((_, oldest)) = inner.by_seq.pop_first() else {
                break;
            };
            inner.remove_caller(&oldest);
        }
    }

    fn get(&self, call_id: &str) -> Option<CallRecord> {
        let inner = self.lock();
        let caller = inner.calls.get(call_id)?;
        inner
            .callers
            .get(caller)?
            .records
            .iter()
            .find(|r| r.call_id == call_id)
            .cloned()
    }
}

/// An intent in the form compared by [`is_repeat_inquiry`]: trimmed, lower case, runs of
/// spaces, `-` and `_` as one `_` (`"Billing question"` and `billing_question` are the same).
pub fn normalize_intent(intent: &str) -> String {
    let mut out = String::with_capacity(intent.len());
    for word in intent
        .split(|c: char| c.is_whitespace() || c == '-' || c == '_')
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push('_');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    out
}

/// Whether `caller` already called about `intent` within `window` before `now`: a stored call
/// that started in `[now - window, now]` and had that intent at any point ([`CallRecord::intents`]).
///
/// Call it before saving the current call's record, or the call finds itself. Anonymous
/// callers ([`is_anonymous`]) are never repeats: they are not one person.
pub async fn is_repeat_inquiry(
    store: &dyn MemoryStore,
    caller: &str,
    intent: &str,
    now: SystemTime,
    window: Duration,
) -> bool {
    let intent = normalize_intent(intent);
    if intent.is_empty() || is_anonymous(caller) {
        return false;
    }
    let since = now.checked_sub(window).unwrap_or(UNIX_EPOCH);
    store
        .recent_for(caller, since)
        .await
        .iter()
        .filter(|r| r.started_at <= now)
        .any(|r| r.intents().contains(&intent))
}

/// Longest [`returning_caller_note`], in characters.
pub const MAX_NOTE_CHARS: usize = 600;

/// A short note for a returning caller's entry agent, from their last call:
/// `Returning caller. Last call (2026-11-25): intent billing_question, then upgrade_inquiry;
/// resolved: ...; facts: amount $49.00, product Pro; outcome: ...; summary: ...`.
///
/// One line of at most [`MAX_NOTE_CHARS`] characters. Each part has its own share, cut with `…`,
/// so that a long summary (last, and cut first) cannot push out the rest. `None` when the record
/// holds nothing to tell.
pub fn returning_caller_note(record: &CallRecord) -> Option<String> {
    let env = record.last_envelope();
    let mut parts = Vec::new();
    let mut part = |label: &str, items: Vec<String>, sep: &str, max: usize| {
        if !items.is_empty() {
            parts.push(cut_marked(&format!("{label}{}", items.join(sep)), max));
        }
    };
    part("intent ", record.intents(), ", then ", 100);
    if let Some(env) = env {
        let resolved = env
            .resolved_issues
            .iter()
            .map(|s| one_line(s))
            .filter(|s| !s.is_empty())
            .map(|s| cut_marked(&s, 100))
            .take(3)
            .collect();
        part("resolved: ", resolved, " / ", 180);
        let facts = env
            .entities
            .iter()
            .map(|(k, v)| (one_line(k), one_line(v)))
            .filter(|(k, v)| !k.is_empty() && !v.is_empty())
            .map(|(k, v)| format!("{} {}", cut_marked(&k, 30), cut_marked(&v, 50)))
            .take(6)
            .collect();
        part("facts: ", facts, ", ", 140);
    }
    let outcome = record.outcome.as_deref().map(one_line);
    part(
        "outcome: ",
        outcome.into_iter().filter(|s| !s.is_empty()).collect(),
        "",
        100,
    );
    let summary = env.map(|e| one_line(&e.summary));
    part(
        "summary: ",
        summary.into_iter().filter(|s| !s.is_empty()).collect(),
        "",
        MAX_NOTE_CHARS,
    );
    if parts.is_empty() {
        return None;
    }
    let mut note = format!(
        "Returning caller. Last call ({}): {}",
        civil_date(record.started_at),
        parts.join("; ")
    );
    if !note.ends_with(['.', '!', '?', '…']) {
        note.push('.');
    }
    Some(cut_marked(&note, MAX_NOTE_CHARS))
}

/// Runs of whitespace and control characters as one space, trimmed.
fn one_line(s: &str) -> String {
    s.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The first `max` characters of `s`.
fn cut(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// `s` cut to at most `max` characters, ending in `…` when cut.
fn cut_marked(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out = cut(s, max.saturating_sub(1)).trim_end().to_string();
    out.push('…');
    out
}

/// `YYYY-MM-DD` (UTC) of a time; times before 1970 read as 1970-01-01.
fn civil_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    // Days to civil date, from Howard Hinnant's `civil_from_days`.
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Longest caller identity, in characters (a key in the store and the records database).
pub const MAX_IDENTITY_CHARS: usize = 256;

/// The caller identity memory is kept under.
///
/// Prefers P-Asserted-Identity (RFC 3325: the network vouches for it) over From; of several
/// PAI values, the first that is a SIP or tel URI. Display names, header parameters (`tag`),
/// URI parameters and headers, passwords and ports are dropped; the host is lower case. Result:
/// `user@host` for SIP URIs, with a telephone-number user normalised (visual separators and
/// `%20` removed: `sip:+1 555 0100@Carrier.example` -> `+15550100@carrier.example`); for tel URIs
/// the global number (`+15550100`), or `number@phone-context` for a local one. Anything else
/// falls back to the trimmed text. At most [`MAX_IDENTITY_CHARS`] characters.
pub fn caller_identity(from: &str, p_asserted_identity: Option<&str>) -> String {
    let pai = p_asserted_identity
        .into_iter()
        .flat_map(split_header_values)
        .find_map(identity_of);
    let id = pai
        .or_else(|| identity_of(from))
        .unwrap_or_else(|| one_line(from));
    cut(&id, MAX_IDENTITY_CHARS).to_string()
}

/// Whether an identity names nobody in particular (RFC 3323's `anonymous@anonymous.invalid`,
/// withheld numbers): such callers share no memory.
pub fn is_anonymous(identity: &str) -> bool {
    let id = identity.trim().to_ascii_lowercase();
    let (user, host) = id.rsplit_once('@').unwrap_or((id.as_str(), ""));
    host == "anonymous.invalid"
        || matches!(
            user,
            "" | "anonymous" | "unknown" | "restricted" | "unavailable" | "private" | "withheld"
        )
}

/// Splits a header value at the commas that separate values (not those in quoted strings or
/// inside `<...>`).
fn split_header_values(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut quoted, mut escaped, mut angle) = (false, false, false);
    let mut start = 0;
    for (i, c) in value.char_indices() {
        if quoted {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            '<' => angle = true,
            '>' => angle = false,
            ',' if !angle => {
                out.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&value[start..]);
    out
}

/// The identity in one name-addr or addr-spec, `None` when it holds no SIP or tel URI.
fn identity_of(value: &str) -> Option<String> {
    let value = value.trim();
    // Find `<` outside the display name's quotes.
    let (mut quoted, mut escaped) = (false, false);
    let mut open = None;
    for (i, c) in value.char_indices() {
        if quoted {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            '<' => {
                open = Some(i);
                break;
            }
            _ => {}
        }
    }
    let uri = match open {
        Some(i) => {
            let rest = &value[i + 1..];
            &rest[..rest.find('>')?]
        }
        // addr-spec: what follows `;` are header parameters (RFC 3261 20.10).
        None => value.split(';').next().unwrap_or(value),
    };
    let (scheme, rest) = uri.trim().split_once(':')?;
    match scheme.trim().to_ascii_lowercase().as_str() {
        "sip" | "sips" => sip_identity(rest),
        "tel" => tel_identity(rest),
        _ => None,
    }
}

fn sip_identity(rest: &str) -> Option<String> {
    let rest = rest.split('?').next().unwrap_or(rest);
    let (userinfo, hostport) = match rest.rfind('@') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => ("", rest),
    };
    let hostport = hostport.split(';').next().unwrap_or(hostport).trim();
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        format!("[{}]", v6.split(']').next().unwrap_or(v6))
    } else {
        hostport.split(':').next().unwrap_or(hostport).to_string()
    };
    let host = host.to_ascii_lowercase();
    if host.is_empty() || host == "[]" {
        return None;
    }
    // Drop the password and the user parameters of a telephone-subscriber user (`;isub=`).
    let user = userinfo.split(':').next().unwrap_or(userinfo);
    let user = user.split(';').next().unwrap_or(user);
    let user = percent_decode(user);
    let user = phone_number(&user).unwrap_or_else(|| user.trim().to_string());
    Some(if user.is_empty() {
        host
    } else {
        format!("{user}@{host}")
    })
}

fn tel_identity(rest: &str) -> Option<String> {
    let mut params = rest.split(';');
    let number = percent_decode(params.next().unwrap_or(""));
    let number = phone_number(&number)?;
    if number.starts_with('+') {
        return Some(number);
    }
    let context = params
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("phone-context"))
        .map(|(_, v)| v.trim().to_ascii_lowercase());
    Some(match context {
        Some(ctx) if !ctx.is_empty() => {
            let ctx = phone_number(&ctx).unwrap_or(ctx);
            format!("{number}@{ctx}")
        }
        _ => number,
    })
}

/// A telephone number without visual separators (RFC 3966 `visual-separator`, and spaces that
/// carriers send unescaped), or `None` when `s` is not one.
fn phone_number(s: &str) -> Option<String> {
    let s = s.trim();
    let digits = s.strip_prefix('+').unwrap_or(s);
    let mut out = String::with_capacity(s.len());
    if digits.len() != s.len() {
        out.push('+');
    }
    let mut any = false;
    for c in digits.chars() {
        match c {
            '0'..='9' | '*' | '#' => {
                any = true;
                out.push(c);
            }
            '-' | '.' | '(' | ')' | ' ' => {}
            _ => return None,
        }
    }
    any.then_some(out)
}

/// `%XX` escapes decoded (RFC 3261 25.1); invalid escapes and invalid UTF-8 are kept as they are.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex_digit(bytes[i + 1]), hex_digit(bytes[i + 2])) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

fn hex_digit(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    /// The result of a future that is ready at once (the in-memory store's).
    fn ready<F: Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("not ready"),
        }
    }

    use super::*;
    use std::sync::Arc;

    const DAY: u64 = 86_400;
    /// 2026-11-18 (UTC), a Wednesday.
    const T0: u64 = 1_795_000_000;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn envelope(intent: &str) -> Envelope {
        Envelope {
            intent: Some(intent.to_string()),
            ..Envelope::default()
        }
    }

    fn record(call_id: &str, caller: &str, started: u64, intent: Option<&str>) -> CallRecord {
        let mut r = CallRecord::new(call_id, caller, at(started));
        r.final_envelope = intent.map(envelope);
        r
    }

    /// The seed's call: billing question resolved by support, upgrade by sales.
    fn seed_call() -> CallRecord {
        let mut support = envelope("billing_question");
        support.handoff_reason = "charge on the account".into();
        let mut fin = envelope("upgrade_inquiry");
        fin.summary = "Caller asked about a $49 charge (annual Standard renewal on January 15), \
                       then upgraded to Pro."
            .into();
        fin.resolved_issues = vec!["Explained the $49 annual renewal of January 15".into()];
        fin.entities.insert("amount".into(), "$49.00".into());
        fin.entities.insert("product".into(), "Pro".into());
        let mut r = CallRecord::new("call-1", "+15550100@carrier.example", at(T0));
        r.ended_at = Some(at(T0 + 300));
        r.agent_path = vec![
            HandoffRecord {
                from: "router".into(),
                to: "support".into(),
                reason: "charge on the account".into(),
                at: at(T0 + 20),
                handoff_ms: Some(8),
                mode: "same".into(),
                policy: None,
                envelope: support,
            },
            HandoffRecord {
                from: "support".into(),
                to: "sales".into(),
                reason: "wants Pro".into(),
                at: at(T0 + 140),
                handoff_ms: Some(240),
                mode: "hybrid".into(),
                policy: None,
                envelope: envelope("upgrade_inquiry"),
            },
        ];
        r.final_envelope = Some(fin);
        r.outcome = Some("upgraded to Pro".into());
        r.metrics = CallMetrics {
            handoffs: 2,
            handoff_ms: vec![8, 240],
            context_preservation: vec![1.0, 0.5],
            csat: Some(5),
            converted: true,
            repeat_inquiry: false,
        };
        r
    }

    #[test]
    fn caller_identity_strips_display_name_tag_and_spaces_in_the_number() {
        assert_eq!(
            caller_identity(r#""Alice" <sip:+1 555 0100@carrier.example>;tag=x"#, None),
            "+15550100@carrier.example"
        );
    }

    #[test]
    fn caller_identity_prefers_p_asserted_identity() {
        assert_eq!(
            caller_identity(
                "<sip:alice@pbx.example>;tag=1",
                Some("\"Alice\" <sip:+1-555-0100@Carrier.Example;user=phone>")
            ),
            "+15550100@carrier.example"
        );
        // Several values: the first SIP or tel URI wins; commas in display names do not split.
        assert_eq!(
            caller_identity(
                "<sip:x@y>",
                Some(r#""Smith, \"Al\" <a>" <urn:service:sos>, <tel:+1.555.0100>"#)
            ),
            "+15550100"
        );
        // A PAI without a usable URI falls back to From.
        assert_eq!(
            caller_identity("sip:bob@Example.COM;tag=9", Some("garbage")),
            "bob@example.com"
        );
    }

    #[test]
    fn caller_identity_drops_password_port_params_and_headers() {
        let cases = [
            (
                "<sip:alice:secret@pbx.example:5062;transport=tcp?subject=x>",
                "alice@pbx.example",
            ),
            (
                "<sips:alice@[2001:db8::1]:5061>;tag=a",
                "alice@[2001:db8::1]",
            ),
            (
                "sip:%2B15550100@carrier.example;tag=x",
                "+15550100@carrier.example",
            ),
            (
                "<sip:+15550100;isub=12@carrier.example>",
                "+15550100@carrier.example",
            ),
            ("<sip:carrier.example>", "carrier.example"),
            ("<SIP:Alice@PBX.example>", "Alice@pbx.example"),
            ("<tel:5550100;phone-context=+1-555>", "5550100@+1555"),
            (
                "<tel:5550100;phone-context=Example.COM>",
                "5550100@example.com",
            ),
            ("  not a uri  ", "not a uri"),
        ];
        for (from, want) in cases {
            assert_eq!(caller_identity(from, None), want, "{from}");
        }
        let long = format!("<sip:{}@example.com>", "a".repeat(1000));
        assert_eq!(
            caller_identity(&long, None).chars().count(),
            MAX_IDENTITY_CHARS
        );
    }

    #[test]
    fn anonymous_identities_are_recognised() {
        let anon = caller_identity(
            "\"Anonymous\" <sip:anonymous@anonymous.invalid>;tag=1",
            None,
        );
        assert!(is_anonymous(&anon));
        assert!(is_anonymous("restricted@carrier.example"));
        assert!(is_anonymous(""));
        assert!(!is_anonymous("+15550100@carrier.example"));
    }

    #[test]
    fn store_keeps_the_newest_records_per_caller() {
        let store = InMemoryStore::new(2, 10);
        // Saved out of order: eviction and `last_for` go by start time.
        store.save(record("c2", "alice", T0 + 2, None));
        store.save(record("c1", "alice", T0 + 1, None));
        store.save(record("c3", "alice", T0 + 3, None));
        assert_eq!(store.len(), (1, 2));
        assert!(store.get("c1").is_none());
        assert_eq!(ready(store.last_for("alice")).unwrap().call_id, "c3");
        let recent: Vec<_> = ready(store.recent_for("alice", at(T0)))
            .into_iter()
            .map(|r| r.call_id)
            .collect();
        assert_eq!(recent, ["c3", "c2"]);
        assert_eq!(ready(store.recent_for("alice", at(T0 + 3))).len(), 1);
        assert!(ready(store.recent_for("bob", at(0))).is_empty());
    }

    #[test]
    fn store_evicts_the_least_recently_saved_caller() {
        let store = InMemoryStore::new(4, 2);
        store.save(record("a1", "alice", T0, None));
        store.save(record("b1", "bob", T0, None));
        store.save(record("a2", "alice", T0 + 1, None));
        store.save(record("c1", "carol", T0 + 2, None));
        assert!(ready(store.last_for("bob")).is_none());
        assert!(store.get("b1").is_none());
        assert_eq!(store.get("a1").unwrap().caller, "alice");
        assert_eq!(ready(store.last_for("carol")).unwrap().call_id, "c1");
        assert_eq!(store.len(), (2, 3));
    }

    #[test]
    fn store_replaces_a_record_with_the_same_call_id() {
        let store = InMemoryStore::default();
        assert!(store.is_empty());
        let mut r = record("c1", "alice", T0, Some("billing"));
        store.save(r.clone());
        r.outcome = Some("resolved".into());
        store.save(r.clone());
        assert_eq!(store.len(), (1, 1));
        assert_eq!(store.get("c1"), Some(r.clone()));
        // Even under another caller (identity learnt late): the old entry goes away.
        r.caller = "bob".into();
        store.save(r);
        assert_eq!(store.len(), (1, 1));
        assert!(ready(store.last_for("alice")).is_none());
        assert_eq!(ready(store.last_for("bob")).unwrap().call_id, "c1");
    }

    #[test]
    fn store_is_shared_between_threads_as_a_trait_object() {
        let store: Arc<dyn MemoryStore> = Arc::new(InMemoryStore::new(1000, 1000));
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for i in 0..100 {
                        store.save(record(&format!("{t}-{i}"), &format!("c{t}"), T0 + i, None));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        for t in 0..4 {
            assert_eq!(
                ready(store.recent_for(&format!("c{t}"), at(0))).len(),
                100,
                "caller c{t}"
            );
        }
    }

    #[test]
    fn repeat_inquiry_is_the_same_caller_and_intent_within_the_window() {
        let store = InMemoryStore::default();
        store.save(seed_call());
        let caller = "+15550100@carrier.example";
        let week = Duration::from_secs(7 * DAY);
        let now = at(T0 + 3 * DAY);
        // Any intent the earlier call had counts, in any spelling.
        assert!(ready(is_repeat_inquiry(
            &store,
            caller,
            "billing_question",
            now,
            week
        )));
        assert!(ready(is_repeat_inquiry(
            &store,
            caller,
            " Billing-Question ",
            now,
            week
        )));
        assert!(ready(is_repeat_inquiry(
            &store,
            caller,
            "upgrade inquiry",
            now,
            week
        )));
        assert!(!ready(is_repeat_inquiry(
            &store, caller, "cancel", now, week
        )));
        assert!(!ready(is_repeat_inquiry(&store, caller, "", now, week)));
        assert!(!ready(is_repeat_inquiry(
            &store,
            "bob@example.com",
            "billing_question",
            now,
            week
        )));
        // Outside the window, and before the earlier call started.
        assert!(!ready(is_repeat_inquiry(
            &store,
            caller,
            "billing_question",
            at(T0 + 8 * DAY),
            week
        )));
        assert!(!ready(is_repeat_inquiry(
            &store,
            caller,
            "billing_question",
            at(T0 - 1),
            week
        )));
        // The window reaching before 1970 does not panic.
        assert!(ready(is_repeat_inquiry(
            &store,
            caller,
            "billing_question",
            now,
            Duration::from_secs(u64::MAX / 2)
        )));
    }

    #[test]
    fn anonymous_callers_are_never_repeats() {
        let store = InMemoryStore::default();
        let anon = "anonymous@anonymous.invalid";
        store.save(record("c1", anon, T0, Some("billing_question")));
        let week = Duration::from_secs(7 * DAY);
        assert!(!ready(is_repeat_inquiry(
            &store,
            anon,
            "billing_question",
            at(T0 + 1),
            week
        )));
    }

    #[test]
    fn returning_caller_note_tells_the_last_call() {
        let note = returning_caller_note(&seed_call()).unwrap();
        assert_eq!(
            note,
            "Returning caller. Last call (2026-11-18): intent billing_question, then \
             upgrade_inquiry; resolved: Explained the $49 annual renewal of January 15; facts: \
             amount $49.00, product Pro; outcome: upgraded to Pro; summary: Caller asked about a \
             $49 charge (annual Standard renewal on January 15), then upgraded to Pro."
        );
    }

    #[test]
    fn returning_caller_note_is_one_bounded_line() {
        let mut r = seed_call();
        let env = r.final_envelope.as_mut().unwrap();
        env.summary = "word\n\t".repeat(1000);
        env.resolved_issues = vec!["x".repeat(5000); 10];
        for i in 0..50 {
            env.entities.insert(format!("k{i}"), "v\r\n".repeat(100));
        }
        r.outcome = Some("o".repeat(5000));
        let note = returning_caller_note(&r).unwrap();
        assert!(note.chars().count() <= MAX_NOTE_CHARS, "{}", note.len());
        assert!(note.ends_with('…'));
        assert!(!note.chars().any(|c| c.is_control()));
        // Each part is cut to its share, so the later parts are still there.
        assert!(note.contains("; facts: amount $49.00, k0 v v v"), "{note}");
        assert!(note.contains("; outcome: ooo"), "{note}");
    }

    #[test]
    fn returning_caller_note_is_none_for_an_empty_record() {
        let r = record("c1", "alice", T0, None);
        assert_eq!(returning_caller_note(&r), None);
        let mut r = r;
        r.outcome = Some("hung up".into());
        assert_eq!(
            returning_caller_note(&r).as_deref(),
            Some("Returning caller. Last call (2026-11-18): outcome: hung up.")
        );
    }

    #[test]
    fn civil_dates() {
        for (secs, date) in [
            (0, "1970-01-01"),
            (951_782_400, "2000-02-29"),
            (1_000_000_000, "2001-09-09"),
            (T0, "2026-11-18"),
            (4_107_542_399, "2100-02-28"),
            (253_402_300_799, "9999-12-31"),
        ] {
            assert_eq!(civil_date(at(secs)), date, "{secs}");
        }
        assert_eq!(
            civil_date(UNIX_EPOCH - Duration::from_secs(1)),
            "1970-01-01"
        );
    }

    #[test]
    fn call_record_round_trips_through_json() {
        let r = seed_call();
        let json = serde_json::to_string(&r).unwrap();
        let back: CallRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        // Metrics written by an older version (fields missing) still load.
        let m: CallMetrics = serde_json::from_str(r#"{"handoffs":1}"#).unwrap();
        assert_eq!(m.handoffs, 1);
        assert!(m.handoff_ms.is_empty());
    }

    #[test]
    fn intents_are_normalised_and_listed_once() {
        assert_eq!(
            normalize_intent("  Billing -- question_ "),
            "billing_question"
        );
        let mut r = seed_call();
        r.agent_path[0].envelope.intent = Some("Billing Question".into());
        assert_eq!(r.intents(), ["billing_question", "upgrade_inquiry"]);
        assert_eq!(
            r.last_envelope().unwrap().intent.as_deref(),
            Some("upgrade_inquiry")
        );
        r.final_envelope = None;
        assert_eq!(
            r.last_envelope().unwrap().intent.as_deref(),
            Some("upgrade_inquiry")
        );
    }

    #[test]
    fn prices_parse_and_price_usage() {
        let p = Prices::parse("audio_out=60, text_in=5").unwrap();
        assert_eq!((p.audio_out, p.text_in, p.audio_in), (60.0, 5.0, 32.0));
        let u = UsageCost {
            input_text_tokens: 1_000,
            input_audio_tokens: 10_000,
            output_text_tokens: 500,
            output_audio_tokens: 20_000,
            cost_usd: 0.0,
        };
        let want = (1_000.0 * 5.0 + 10_000.0 * 32.0 + 500.0 * 16.0 + 20_000.0 * 60.0) / 1e6;
        assert!((p.cost(&u) - want).abs() < 1e-12);
        assert!(Prices::parse("audio_out").is_err());
        assert!(Prices::parse("audio_out=-1").is_err());
        assert!(Prices::parse("video=3").is_err());
        assert_eq!(Prices::parse("").unwrap(), Prices::default());
    }
}
