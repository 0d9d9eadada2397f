//! The process-wide side of handoffs: business tools (the built-in demo backend and webhooks),
//! and what calls leave behind (cross-call memory, per-call records, Prometheus metrics,
//! callback requests). Plugged into each call's session as [`ToolRunner`] and [`CallHooks`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use router::builtin::DemoDb;
use router::{AgentsFile, Backend, CallSummary, Envelope, HandoffEvent, SlotTable};
use serde_json::Value;

use crate::ai::{Agents, CallHooks, ToolCall, ToolFuture, ToolRunner};
use crate::memory::{
    is_anonymous, is_repeat_inquiry, returning_caller_note, CallMetrics, CallRecord, HandoffRecord,
    InMemoryStore, MemoryStore, StoreFuture,
};
use crate::memory::{Prices, RtpLeg, SipLeg, UsageCost};
use crate::metrics::Metrics;
use crate::tools::{call_webhook, ToolRequest, WebhookClient};

/// Runs `builtin` tools on the seeded demo database and `webhook` tools over HTTP(S).
pub struct Tools {
    pub demo: Arc<Mutex<DemoDb>>,
    pub webhooks: WebhookClient,
}

impl ToolRunner for Tools {
    fn run(&self, call: ToolCall) -> ToolFuture {
        match call.def.backend.clone() {
            Backend::Builtin => {
                let result = match self.demo.lock() {
                    Ok(mut db) => db
                        .call(&call.tool, &call.arguments)
                        .map_err(|e| e.to_string()),
                    Err(_) => Err("the demo backend is unavailable".to_string()),
                };
                Box::pin(async move { result })
            }
            Backend::Webhook {
                url,
                timeout_ms,
                retries,
            } => {
                let client = self.webhooks.clone();
                let arguments = serde_json::from_str(&call.arguments)
                    .unwrap_or(Value::String(call.arguments.clone()));
                let request = ToolRequest {
                    call_id: call.call_id,
                    agent: call.agent,
                    tool: call.tool,
                    arguments,
                };
                Box::pin(async move {
                    call_webhook(
                        &client,
                        &url,
                        Duration::from_millis(timeout_ms),
                        retries,
                        &request,
                    )
                    .await
                })
            }
        }
    }
}

/// A callback the `callback` policy stored (listed at `GET /callbacks`, and kept in the
/// call's record in the database).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CallbackRequest {
    pub id: u64,
    pub requested_at: SystemTime,
    pub call_id: String,
    /// Who to call back.
    pub caller: String,
    /// Which agent should.
    pub agent: String,
    pub envelope: Envelope,
}

/// Memory, records, metrics and callbacks: the [`CallHooks`] of every call.
pub struct Records {
    pub memory: Arc<dyn MemoryStore>,
    pub metrics: Arc<Metrics>,
    pub callbacks: Mutex<Vec<CallbackRequest>>,
    /// Same caller and intent within this window: a repeat inquiry.
    pub repeat_window: Duration,
    /// Calls still up, by Call-ID: start time and handoff times (wall clock).
    open: Mutex<std::collections::HashMap<String, OpenCall>>,
    /// Records of calls that ended but are not saved yet (the repeat check reads the store
    /// first): the SIP side or RTP statistics arriving meanwhile are added here, not lost.
    finishing: Arc<Mutex<std::collections::HashMap<String, CallRecord>>>,
    /// Where callback requests are POSTed (the agents file's `callback_webhook`).
    callback_webhook: Option<(WebhookClient, String)>,
    /// Realtime prices for the records' cost (`--realtime-prices`).
    prices: std::sync::RwLock<Prices>,
    /// The customer store consulted at call start (the built-in demo database).
    customers: Option<Arc<Mutex<DemoDb>>>,
}

/// Per-attempt timeout and retries of the callback webhook.
pub const CALLBACK_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);
pub const CALLBACK_WEBHOOK_RETRIES: u32 = 3;

#[derive(Debug, Default)]
struct OpenCall {
    started: Option<SystemTime>,
    handoffs_at: Vec<SystemTime>,
    /// The agent that has the caller now.
    agent: String,
    sip: Option<SipLeg>,
    usage: Option<UsageCost>,
    tool_calls: Vec<crate::memory::ToolCallRecord>,
    callbacks: Vec<CallbackRequest>,
}

impl std::fmt::Debug for Records {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records")
            .field("repeat_window", &self.repeat_window)
            .finish_non_exhaustive()
    }
}

/// Callback requests kept (oldest dropped beyond this).
pub const MAX_CALLBACKS: usize = 10_000;
/// Tool calls kept in one call's record (later ones are still run, not recorded).
pub const MAX_TOOL_CALLS_PER_RECORD: usize = 200;

impl Records {
    pub fn new(
        memory: Arc<dyn MemoryStore>,
        metrics: Arc<Metrics>,
        repeat_window: Duration,
    ) -> Self {
        Records {
            memory,
            metrics,
            callbacks: Mutex::new(Vec::new()),
            repeat_window,
            open: Mutex::new(std::collections::HashMap::new()),
            finishing: Arc::new(Mutex::new(std::collections::HashMap::new())),
            callback_webhook: None,
            prices: std::sync::RwLock::new(Prices::default()),
            customers: None,
        }
    }

    /// Look callers up in `db` at call start (their account goes to the entry agent).
    pub fn with_customers(mut self, db: Arc<Mutex<DemoDb>>) -> Self {
        self.customers = Some(db);
        self
    }

    /// POST every callback request to `url` as well (JSON of [`CallbackRequest`]).
    pub fn with_callback_webhook(mut self, client: WebhookClient, url: String) -> Self {
        self.callback_webhook = Some((client, url));
        self
    }

    /// Prices used for the records' Realtime cost from now on.
    pub fn set_prices(&self, prices: Prices) {
        if let Ok(mut p) = self.prices.write() {
            *p = prices;
        }
    }

    /// The SIP side of a call that ended (from the endpoint task): kept for its record, or
    /// added to the record if it was already saved.
    pub fn attach_sip(&self, call_id: &str, sip: SipLeg) {
        // Keep RTP statistics that came first.
        let merge = |old: &mut Option<SipLeg>, sip: SipLeg| {
            let rtp = old.take().and_then(|s| s.rtp);
            *old = Some(SipLeg {
                rtp: sip.rtp.clone().or(rtp),
                ..sip
            });
        };
        if let Ok(mut open) = self.open.lock() {
            if let Some(c) = open.get_mut(call_id) {
                merge(&mut c.sip, sip);
                return;
            }
        }
        self.amend(call_id, |r| merge(&mut r.sip, sip));
    }

    /// A call's RTP statistics (the media ends after the SIP side).
    pub fn attach_rtp(&self, call_id: &str, rtp: RtpLeg) {
        if let Ok(mut open) = self.open.lock() {
            if let Some(c) = open.get_mut(call_id) {
                c.sip.get_or_insert_with(SipLeg::default).rtp = Some(rtp);
                return;
            }
        }
        self.amend(call_id, |r| {
            r.sip.get_or_insert_with(SipLeg::default).rtp = Some(rtp)
        });
    }

    /// Change a record that is being saved, or a saved one (the store replaces it by
    /// Call-ID).
    fn amend(&self, call_id: &str, f: impl FnOnce(&mut CallRecord)) {
        if let Ok(mut finishing) = self.finishing.lock() {
            if let Some(r) = finishing.get_mut(call_id) {
                f(r);
                return;
            }
        }
        if let Some(mut r) = self.memory.get(call_id) {
            f(&mut r);
            self.memory.save(r);
        }
    }

    /// Calls whose record is not saved yet: still up, or ended and being saved.
    pub fn unsaved(&self) -> usize {
        let open = self.open.lock().map(|o| o.len()).unwrap_or(0);
        let finishing = self.finishing.lock().map(|f| f.len()).unwrap_or(0);
        open + finishing
    }

    /// At shutdown, after the last call: wait (up to `timeout`) until every call's record has
    /// gone to the store (the AI session tasks end a moment after their calls, then the save
    /// reads the store once); then flush the store. Whether nothing was left.
    pub async fn settle(&self, timeout: Duration) -> bool {
        let until = tokio::time::Instant::now() + timeout;
        while self.unsaved() > 0 {
            if tokio::time::Instant::now() >= until {
                tracing::warn!(
                    unsaved = self.unsaved(),
                    "call records not finished at exit"
                );
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// The agent that has the caller of `call_id` now (calls in progress only).
    pub fn current_agent(&self, call_id: &str) -> Option<String> {
        self.open
            .lock()
            .ok()
            .and_then(|o| o.get(call_id).map(|c| c.agent.clone()))
            .filter(|a| !a.is_empty())
    }

    pub fn callbacks(&self) -> Vec<CallbackRequest> {
        self.callbacks.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

impl CallHooks for Records {
    fn caller_note<'a>(&'a self, caller: &'a str) -> StoreFuture<'a, Option<String>> {
        Box::pin(async move {
            if is_anonymous(caller) {
                return None;
            }
            // Bounded by the store's read timeout (a database store falls back to its cache).
            let memory = self
                .memory
                .last_for(caller)
                .await
                .and_then(|r| returning_caller_note(&r));
            // The customer store: who this number or SIP user is, so nobody asks for the account.
            let customer = self.customers.as_ref().and_then(|db| {
                let db = db.lock().ok()?;
                let c = db.customer_for_caller(caller)?;
                Some(format!("Customer on file for this caller: {}", c.state()))
            });
            match (memory, customer) {
                (None, None) => None,
                (a, b) => Some([a, b].into_iter().flatten().collect::<Vec<_>>().join("\n")),
            }
        })
    }

    fn on_call_usage(&self, call_id: &str, usage: &UsageCost) {
        if let Ok(mut open) = self.open.lock() {
            open.entry(call_id.to_string()).or_default().usage = Some(usage.clone());
        }
    }

    fn on_call_start(&self, call_id: &str, _caller: &str, agent: &str) {
        if let Ok(mut open) = self.open.lock() {
            let c = open.entry(call_id.to_string()).or_default();
            c.started = Some(SystemTime::now());
            c.agent = agent.to_string();
        }
    }

    fn on_handoff(&self, call_id: &str, event: &HandoffEvent) {
        self.metrics.record_handoff(&event.from, &event.to);
        if let Ok(mut open) = self.open.lock() {
            let c = open.entry(call_id.to_string()).or_default();
            c.handoffs_at.push(SystemTime::now());
            c.agent = event.to.clone();
        }
    }

    fn on_handoff_failed(&self, _call_id: &str, from: &str, to: &str, policy: &str) {
        self.metrics.record_handoff_failure(from, to, policy);
    }

    fn on_callback(&self, call_id: &str, caller: &str, agent: &str, envelope: &Envelope) {
        if let Ok(mut c) = self.callbacks.lock() {
            let id = c.last().map_or(1, |l| l.id + 1);
            if c.len() >= MAX_CALLBACKS {
                c.remove(0);
            }
            let request = CallbackRequest {
                id,
                requested_at: SystemTime::now(),
                call_id: call_id.to_string(),
                caller: caller.to_string(),
                agent: agent.to_string(),
                envelope: envelope.clone(),
            };
            if let Some((client, url)) = &self.callback_webhook {
                let (client, url) = (client.clone(), url.clone());
                let body = ToolRequest {
                    call_id: call_id.to_string(),
                    agent: agent.to_string(),
                    tool: "callback".to_string(),
                    arguments: serde_json::to_value(&request).unwrap_or(Value::Null),
                };
                tokio::spawn(async move {
                    match call_webhook(
                        &client,
                        &url,
                        CALLBACK_WEBHOOK_TIMEOUT,
                        CALLBACK_WEBHOOK_RETRIES,
                        &body,
                    )
                    .await
                    {
                        Ok(_) => {
                            tracing::info!(call_id = %body.call_id, "callback request delivered")
                        }
                        Err(e) => {
                            tracing::warn!(call_id = %body.call_id, error = %e, "callback webhook failed; the request stays listed at /callbacks")
                        }
                    }
                });
            }
            if let Ok(mut open) = self.open.lock() {
                if let Some(o) = open.get_mut(call_id) {
                    o.callbacks.push(request.clone());
                }
            }
            c.push(request);
        }
    }

    fn on_tool_call(&self, call_id: &str, call: &crate::memory::ToolCallRecord) {
        if let Ok(mut open) = self.open.lock() {
            if let Some(o) = open.get_mut(call_id) {
                // Bounded like the transcript: a runaway model cannot grow a record forever.
                if o.tool_calls.len() < MAX_TOOL_CALLS_PER_RECORD {
                    o.tool_calls.push(call.clone());
                }
            }
        }
    }

    fn on_call_end(&self, call_id: &str, caller: &str, summary: &CallSummary) {
        let now = SystemTime::now();
        let open = self
            .open
            .lock()
            .ok()
            .and_then(|mut o| o.remove(call_id))
            .unwrap_or_default();
        for ms in &summary.handoff_ms {
            self.metrics
                .observe_handoff_time(Duration::from_millis(*ms));
        }
        for score in &summary.context_preservation {
            self.metrics.observe_context_preservation(*score);
        }
        let intent = summary.final_envelope.intent.clone();
        let mut record = CallRecord::new(call_id, caller, open.started.unwrap_or(now));
        record.sip = open.sip.clone();
        record.tool_calls = open.tool_calls.clone();
        record.callbacks = open.callbacks.clone();
        record.usage = open.usage.clone().map(|mut u| {
            u.cost_usd = self.prices.read().map(|p| p.cost(&u)).unwrap_or(0.0);
            u
        });
        record.ended_at = Some(now);
        record.agent_path = summary
            .handoffs
            .iter()
            .enumerate()
            .map(|(i, h)| HandoffRecord {
                from: h.from.clone(),
                to: h.to.clone(),
                reason: h.envelope.handoff_reason.clone(),
                at: open.handoffs_at.get(i).copied().unwrap_or(now),
                handoff_ms: summary.handoff_ms_each.get(i).copied().flatten(),
                mode: h.mode.to_string(),
                policy: h.policy.map(String::from),
                envelope: h.envelope.clone(),
            })
            .collect();
        record.final_envelope = Some(summary.final_envelope.clone());
        record.outcome = summary.converted.then(|| "converted".to_string());
        record.metrics = CallMetrics {
            handoffs: u32::try_from(summary.handoffs.len()).unwrap_or(u32::MAX),
            handoff_ms: summary.handoff_ms.clone(),
            context_preservation: summary.context_preservation.clone(),
            csat: summary.csat,
            converted: summary.converted,
            repeat_inquiry: false,
        };
        // The repeat check reads the store (the database, for other nodes' calls): off the call
        // path, then the metrics and the save.
        let memory = self.memory.clone();
        let metrics = self.metrics.clone();
        let window = self.repeat_window;
        let finishing = self.finishing.clone();
        let caller = record.caller.clone();
        let key = call_id.to_string();
        if let Ok(mut f) = finishing.lock() {
            f.insert(key.clone(), record);
        }
        let finish = async move {
            // Anonymous callers are never recognised, so never repeat callers; their calls
            // still get a record.
            let repeat = match intent.as_deref() {
                Some(i) if !is_anonymous(&caller) => {
                    is_repeat_inquiry(memory.as_ref(), &caller, i, now, window).await
                }
                _ => false,
            };
            let record = finishing.lock().ok().and_then(|mut f| f.remove(&key));
            if let Some(mut record) = record {
                record.metrics.repeat_inquiry = repeat;
                metrics.record_call_ended(&record.metrics);
                memory.save(record);
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(finish);
            }
            Err(_) => {
                if let Ok(mut f) = self.finishing.lock() {
                    f.remove(call_id);
                }
                tracing::warn!(%call_id, "no async runtime at call end; record not kept")
            }
        }
    }
}

/// Everything the agents of a process need, from a validated agents file (records in memory).
pub fn agents_runtime(
    file: AgentsFile,
    tls: Arc<rustls::ClientConfig>,
    repeat_window: Duration,
) -> Result<(Agents, Arc<Records>), String> {
    agents_runtime_with(file, tls, repeat_window, Arc::new(InMemoryStore::default()))
}

/// [`agents_runtime`] with the records in `memory` (`--database`, [`crate::store::open`]).
pub fn agents_runtime_with(
    file: AgentsFile,
    tls: Arc<rustls::ClientConfig>,
    repeat_window: Duration,
    memory: Arc<dyn MemoryStore>,
) -> Result<(Agents, Arc<Records>), String> {
    let file = Arc::new(file);
    let webhooks = WebhookClient::new(tls)?;
    let mut records = Records::new(memory, Arc::new(Metrics::new()), repeat_window);
    if let Some(url) = &file.callback_webhook {
        records = records.with_callback_webhook(webhooks.clone(), url.clone());
    }
    let demo = Arc::new(Mutex::new(DemoDb::seeded()));
    let records = Arc::new(records.with_customers(demo.clone()));
    let tools = Tools { demo, webhooks };
    let agents = Agents {
        slots: Arc::new(SlotTable::new(&file)),
        file,
        tools: Arc::new(tools),
        hooks: records.clone(),
    };
    Ok((agents, records))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::post;

    #[tokio::test]
    async fn callback_requests_are_listed_and_posted_to_the_webhook() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
        let app = axum::Router::new().route(
            "/cb",
            post(move |axum::Json(v): axum::Json<Value>| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(v);
                    axum::Json(serde_json::json!({"ok": true}))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let tls = crate::ai::tls_config(None).unwrap();
        let records = Records::new(
            Arc::new(InMemoryStore::default()),
            Arc::new(Metrics::new()),
            Duration::from_secs(60),
        )
        .with_callback_webhook(
            WebhookClient::new(tls).unwrap(),
            format!("http://{addr}/cb"),
        );
        let env = Envelope {
            summary: "wants Pro".into(),
            ..Envelope::default()
        };
        records.on_callback("call-1", "+15550100", "sales", &env);
        let listed = records.callbacks();
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].id, listed[0].agent.as_str()), (1, "sales"));
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got["tool"], "callback");
        assert_eq!(got["arguments"]["caller"], "+15550100");
        assert_eq!(got["arguments"]["envelope"]["summary"], "wants Pro");
    }

    #[tokio::test]
    async fn the_sip_side_arriving_while_the_record_is_saved_is_kept_and_anonymous_calls_get_records(
    ) {
        let memory = Arc::new(InMemoryStore::default());
        let records = Records::new(
            memory.clone(),
            Arc::new(Metrics::new()),
            Duration::from_secs(60),
        );
        for (id, caller) in [
            ("c-1", "+15550100@carrier.example"),
            ("c-2", "anonymous@anonymous.invalid"),
        ] {
            records.on_call_start(id, caller, "router");
            records.on_call_end(id, caller, &CallSummary::default());
            assert_eq!(records.unsaved(), 1, "being saved");
            // The endpoint task's notes come after the AI session's end, before the save task
            // has run (this test's runtime runs it only when we yield).
            records.attach_rtp(
                id,
                RtpLeg {
                    packets_received: 250,
                    ..RtpLeg::default()
                },
            );
            records.attach_sip(
                id,
                SipLeg {
                    end_reason: "remote_bye".into(),
                    ..SipLeg::default()
                },
            );
            assert!(records.settle(Duration::from_secs(5)).await);
            assert_eq!(records.unsaved(), 0);
            let r = memory.get(id).expect("saved");
            let sip = r.sip.expect("the SIP side is on the record");
            assert_eq!(sip.end_reason, "remote_bye", "{id}");
            assert_eq!(sip.rtp.map(|r| r.packets_received), Some(250), "{id}");
        }
        // A call still up keeps settle waiting, bounded.
        records.on_call_start("c-3", "x@example.com", "router");
        assert!(!records.settle(Duration::from_millis(50)).await);
    }

    #[tokio::test]
    async fn the_record_keeps_tool_calls_with_results_and_callback_requests() {
        let memory = Arc::new(InMemoryStore::default());
        let records = Records::new(
            memory.clone(),
            Arc::new(Metrics::new()),
            Duration::from_secs(60),
        );
        records.on_call_start("call-7", "+15550100@carrier.example", "router");
        let ok = crate::memory::ToolCallRecord {
            agent: "support".into(),
            tool: "check_billing".into(),
            arguments: serde_json::json!({"customer_id": "C-1042"}),
            duration_ms: 3,
            result: serde_json::json!({"last_charge": {"amount": "$49.00"}}),
            ..Default::default()
        };
        let failed = crate::memory::ToolCallRecord {
            tool: "lookup_order".into(),
            error: Some("webhook timed out after 3000 ms (2 attempts)".into()),
            ..Default::default()
        };
        records.on_tool_call("call-7", &ok);
        records.on_tool_call("call-7", &failed);
        // Another call's tool never lands in this record.
        records.on_tool_call("call-8", &ok);
        let env = Envelope {
            summary: "wants Pro".into(),
            ..Envelope::default()
        };
        records.on_callback("call-7", "+15550100@carrier.example", "sales", &env);
        records.on_call_end(
            "call-7",
            "+15550100@carrier.example",
            &CallSummary::default(),
        );
        let mut stored = None;
        for _ in 0..100 {
            stored = memory.get("call-7");
            if stored.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let stored = stored.expect("the record was saved");
        assert_eq!(stored.tool_calls, vec![ok, failed]);
        assert_eq!(stored.callbacks.len(), 1);
        assert_eq!(stored.callbacks[0].agent, "sales");
        assert_eq!(stored.callbacks[0].envelope.summary, "wants Pro");
        // What the database keeps is the record's JSON: both survive the round trip.
        let json = serde_json::to_string(&stored).unwrap();
        let back: CallRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, stored);
    }

    #[tokio::test]
    async fn a_known_caller_is_introduced_to_the_entry_agent_from_the_customer_store() {
        let records = Records::new(
            Arc::new(InMemoryStore::default()),
            Arc::new(Metrics::new()),
            Duration::from_secs(60),
        )
        .with_customers(Arc::new(Mutex::new(DemoDb::seeded())));
        let note = records
            .caller_note("+15550100@carrier.example")
            .await
            .unwrap();
        assert!(
            note.contains("C-1042") && note.contains("Standard"),
            "{note}"
        );
        assert!(records.caller_note("stranger@example.com").await.is_none());
        assert!(records
            .caller_note("anonymous@anonymous.invalid")
            .await
            .is_none());
    }
}
