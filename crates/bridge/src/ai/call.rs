//! The handoff side of a call's session: the sans-IO [`router::CallRouter`] driven by what the
//! Realtime socket and the call report, its actions carried out on the live socket, business
//! tools run off the session task, and `response.create` held back until no response is active.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use realtime::{ClientEvent, ResponseCreateParams, SessionConfig, Transcription};
use router::{
    Action, AgentsFile, CallRouter, CallSummary, Envelope, HandoffEvent, Role, SlotTable,
};
use serde_json::Value;
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::Live;

/// A business tool call for a backend.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ToolCall {
    /// The SIP Call-ID.
    pub call_id: String,
    /// The agent that called it.
    pub agent: String,
    /// Tool name.
    pub tool: String,
    /// Where it runs.
    #[serde(skip)]
    pub def: router::ToolDef,
    /// The model's JSON arguments.
    pub arguments: String,
}

/// A running tool.
pub type ToolFuture = Pin<Box<dyn Future<Output = Result<Value, String>> + Send>>;

/// Runs business tools (built-in demo backend, webhooks).
pub trait ToolRunner: Send + Sync {
    /// Start `call`; the result (or a short error for the model) arrives when it finishes.
    fn run(&self, call: ToolCall) -> ToolFuture;
}

/// What the rest of the process wants to know of a call's handoffs (records, metrics,
/// memory, callbacks). Every method has a no-op default.
pub trait CallHooks: Send + Sync {
    /// What the store remembers of `caller`, for the entry agent (awaited at call start; a
    /// database store bounds it with a short timeout).
    fn caller_note<'a>(
        &'a self,
        _caller: &'a str,
    ) -> crate::memory::StoreFuture<'a, Option<String>> {
        Box::pin(async { None })
    }
    /// The call's Realtime usage, just before [`CallHooks::on_call_end`].
    fn on_call_usage(&self, _call_id: &str, _usage: &crate::memory::UsageCost) {}
    /// A call with agents started; `agent` answers it.
    fn on_call_start(&self, _call_id: &str, _caller: &str, _agent: &str) {}
    /// A handoff completed.
    fn on_handoff(&self, _call_id: &str, _event: &HandoffEvent) {}
    /// A handoff was refused or rerouted.
    fn on_handoff_failed(&self, _call_id: &str, _from: &str, _to: &str, _policy: &str) {}
    /// Policy callback: store the request.
    fn on_callback(&self, _call_id: &str, _caller: &str, _agent: &str, _envelope: &Envelope) {}
    /// A business tool finished (its call and result go into the call's record).
    fn on_tool_call(&self, _call_id: &str, _call: &crate::memory::ToolCallRecord) {}
    /// The call ended.
    fn on_call_end(&self, _call_id: &str, _caller: &str, _summary: &CallSummary) {}
}

/// Hooks that do nothing.
#[derive(Debug, Default)]
pub struct NoHooks;
impl CallHooks for NoHooks {}

/// The agents of every call (the agents file and what it needs at run time).
#[derive(Clone)]
pub struct Agents {
    pub file: Arc<AgentsFile>,
    pub slots: Arc<SlotTable>,
    pub tools: Arc<dyn ToolRunner>,
    pub hooks: Arc<dyn CallHooks>,
}

impl std::fmt::Debug for Agents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agents")
            .field("file", &self.file.source)
            .finish_non_exhaustive()
    }
}

/// Results that come back to the session task.
#[derive(Debug)]
pub enum Internal {
    ToolDone {
        call_id: String,
        result: Result<Value, String>,
    },
    FirstAudio(Instant),
    /// The second session of a per_agent/hybrid handoff, open and seeded (or why not).
    SessionOpened(Result<Box<Live>, String>),
}

/// Per-call handoff state that survives reconnects.
pub struct CallAgents {
    pub agents: Agents,
    pub router: CallRouter,
    pub call_id: String,
    pub caller: String,
    deferred: VecDeque<Option<ResponseCreateParams>>,
    audio_responses: HashSet<String>,
    /// The next assistant audio is the new agent's first: time it.
    pub watch_first_audio: bool,
    pub internal_tx: mpsc::UnboundedSender<Internal>,
    /// How to open more sessions (voice modes per_agent and hybrid).
    settings: super::AiSettings,
    /// The new agent's session, open and seeded, waiting for the switch.
    pub pending_live: Option<Live>,
    /// Token usage of the call's responses.
    pub usage: crate::memory::UsageCost,
    /// The old agent's session after a switch, until its audio has played.
    pub retiring: Option<Live>,
    /// [`CallAgents::finish`] ran (slots back, summary given to the hooks).
    finished: bool,
}

/// What every agent of a call shares: model, formats, VAD, input transcription (the envelope's
/// transcript needs the caller's words), and in voice mode `same` the entry agent's voice.
pub fn base_config(
    model: &str,
    format: realtime::AudioFormat,
    file: &AgentsFile,
) -> Result<SessionConfig, realtime::ConfigError> {
    let builder = SessionConfig::builder()
        .model(model.to_string())
        .input_format(format)
        .output_format(format)
        .transcription(Some(Transcription {
            model: Some("gpt-4o-mini-transcribe".into()),
            language: None,
            prompt: None,
        }));
    let builder = match file.entry_agent() {
        Some(entry) => builder.voice(file.voice_for(entry)),
        None => builder,
    };
    builder.build()
}

impl CallAgents {
    pub async fn new(
        agents: Agents,
        settings: &super::AiSettings,
        call_id: String,
        caller: String,
        internal_tx: mpsc::UnboundedSender<Internal>,
    ) -> Result<Self, realtime::ConfigError> {
        // A config error starts nothing (no record is opened that nobody would close).
        let base = base_config(&settings.model, settings.audio_format, &agents.file)?;
        agents
            .hooks
            .on_call_start(&call_id, &caller, &agents.file.entry);
        // Bounded by the store's read timeout.
        let note = agents.hooks.caller_note(&caller).await;
        let router = CallRouter::new(agents.file.clone(), base, agents.slots.clone(), note);
        Ok(CallAgents {
            agents,
            router,
            call_id,
            caller,
            deferred: VecDeque::new(),
            audio_responses: HashSet::new(),
            watch_first_audio: false,
            internal_tx,
            settings: settings.clone(),
            pending_live: None,
            usage: crate::memory::UsageCost::default(),
            retiring: None,
            finished: false,
        })
    }

    /// Queue a `response.create` (the greeting, a tool result's answer, ...).
    pub fn respond(&mut self, live: &mut Live, params: Option<ResponseCreateParams>) {
        self.deferred.push_back(params);
        self.flush(live);
    }

    /// Send the next held `response.create` if no response is active.
    pub fn flush(&mut self, live: &mut Live) {
        if live.tracker.may_create_response() {
            if let Some(p) = self.deferred.pop_front() {
                live.send(&ClientEvent::create_response(p));
            }
        }
    }

    pub fn note_audio(&mut self, response_id: &str) {
        if self.audio_responses.len() > 256 {
            self.audio_responses.clear();
        }
        self.audio_responses.insert(response_id.to_string());
    }

    pub fn had_audio(&self, response_id: &str) -> bool {
        self.audio_responses.contains(response_id)
    }

    pub fn transcript(&mut self, role: Role, text: &str) {
        self.router.on_transcript(role, text);
    }

    /// Carry out the router's actions on the live socket.
    pub fn apply(&mut self, live: &mut Live, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Send(ev) => live.send(&ev),
                Action::Respond(p) => self.deferred.push_back(p),
                Action::RunTool {
                    call_id,
                    tool,
                    arguments,
                } => {
                    let call = ToolCall {
                        call_id: self.call_id.clone(),
                        agent: self.router.current_agent().to_string(),
                        tool: tool.name.clone(),
                        def: tool,
                        arguments,
                    };
                    info!(call_id = %self.call_id, agent = %call.agent, tool = %call.tool, "tool call");
                    let mut record = crate::memory::ToolCallRecord {
                        agent: call.agent.clone(),
                        tool: call.tool.clone(),
                        arguments: serde_json::from_str(&call.arguments)
                            .unwrap_or_else(|_| Value::String(call.arguments.clone())),
                        at: std::time::SystemTime::now(),
                        ..Default::default()
                    };
                    let fut = self.agents.tools.run(call);
                    let tx = self.internal_tx.clone();
                    let hooks = self.agents.hooks.clone();
                    let sip_call_id = self.call_id.clone();
                    tokio::spawn(async move {
                        let started = std::time::Instant::now();
                        let result = fut.await;
                        record.duration_ms =
                            u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                        match &result {
                            Ok(v) => record.result = v.clone(),
                            Err(e) => record.error = Some(e.clone()),
                        }
                        hooks.on_tool_call(&sip_call_id, &record);
                        let _ = tx.send(Internal::ToolDone { call_id, result });
                    });
                }
                Action::WatchFirstAudio => self.watch_first_audio = true,
                Action::OpenSession { config, items } => {
                    info!(call_id = %self.call_id, "opening the next agent's session");
                    let settings = self.settings.clone();
                    let call_id = self.call_id.clone();
                    let tx = self.internal_tx.clone();
                    tokio::spawn(async move {
                        let opened = match super::open(&settings, &call_id, &config, None).await {
                            Ok(mut next) => {
                                for item in items {
                                    next.send(&ClientEvent::create_item(item));
                                }
                                Ok(Box::new(next))
                            }
                            Err(e) => Err(e.to_string()),
                        };
                        let _ = tx.send(Internal::SessionOpened(opened));
                    });
                }
                Action::SwitchSession => match self.pending_live.take() {
                    Some(mut next) => {
                        std::mem::swap(live, &mut next);
                        // `next` is now the old session: it goes once its audio has played.
                        self.retiring = Some(next);
                        info!(call_id = %self.call_id, "switched to the next agent's session");
                    }
                    None => warn!(call_id = %self.call_id, "switch without an opened session"),
                },
                Action::ScheduleCallback { agent, envelope } => {
                    info!(call_id = %self.call_id, %agent, "callback scheduled");
                    self.agents
                        .hooks
                        .on_callback(&self.call_id, &self.caller, &agent, &envelope);
                }
                Action::Handoff(ev) => {
                    info!(call_id = %self.call_id, from = %ev.from, to = %ev.to, mode = ev.mode,
                          intent = ?ev.envelope.intent, "handoff");
                    self.agents.hooks.on_handoff(&self.call_id, &ev);
                }
                Action::HandoffFailed {
                    from,
                    to,
                    reason,
                    policy,
                } => {
                    warn!(call_id = %self.call_id, %from, %to, %reason, %policy, "handoff not made");
                    self.agents
                        .hooks
                        .on_handoff_failed(&self.call_id, &from, &to, &policy);
                }
            }
        }
        self.flush(live);
    }

    /// The call is over: slots back, summary to the hooks. Once; dropping a `CallAgents`
    /// that was not finished (its session task aborted, e.g. stuck connecting when the call
    /// ended) finishes it, so no call loses its record or keeps an agent's slot.
    pub fn finish(&mut self) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let summary = self.router.finish();
        self.agents.hooks.on_call_usage(&self.call_id, &self.usage);
        info!(call_id = %self.call_id, path = ?summary.agent_path, handoffs = summary.handoffs.len(),
              handoff_ms = ?summary.handoff_ms, preservation = ?summary.context_preservation,
              csat = ?summary.csat, converted = summary.converted, "call summary");
        self.agents
            .hooks
            .on_call_end(&self.call_id, &self.caller, &summary);
    }
}

impl Drop for CallAgents {
    fn drop(&mut self) {
        if !self.finished {
            warn!(call_id = %self.call_id, "call's Realtime session stopped before the call finished; closing its record");
            self.finish();
        }
    }
}
