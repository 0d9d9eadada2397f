//! One call's router (DESIGN "Handoffs"): which agent has the caller, the handoff protocol on
//! the call's Realtime session, business tool calls, the failure policies, and the seed's
//! per-call metrics. Sans-IO: the bridge feeds it what happened (with `now`) and carries out
//! the [`Action`]s it returns; nothing here sleeps or reads a clock.
//!
//! Voice mode `same` (one session): a handoff is `session.update` with the new agent's full
//! config (audio formats and voice unchanged), then the `function_call_output`, then
//! `response.create` asking the new agent to open by showing what it already knows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use realtime::{
    ClientEvent, ConversationMode, Item, ResponseCreateParams, SessionConfig, ToolChoice,
    ToolChoiceMode,
};
use serde_json::{json, Value};

use crate::agents::{Agent, AgentsFile, OnUnavailable, ToolDef, VoiceMode};
use crate::envelope::{fit_transcript, merge, Envelope, Role, Turn};
use crate::tools::HANDOFF_PREFIX;

/// Transcript characters carried in an envelope.
pub const TRANSCRIPT_BUDGET: usize = 4_000;
/// How often a queued caller's slot is re-checked.
pub const QUEUE_CHECK: Duration = Duration::from_secs(5);
/// How often a queued caller hears an update.
pub const QUEUE_UPDATE: Duration = Duration::from_secs(30);
/// Estimated wait per queue position, for the ETA the caller is told.
pub const QUEUE_ETA_PER_POSITION: Duration = Duration::from_secs(60);
/// `metadata.purpose` of the out-of-band narration response.
pub const NARRATION_PURPOSE: &str = "narration";

/// Concurrent-call slots per agent, shared by all calls of a process.
pub trait Slots: Send + Sync {
    /// Take a slot at `agent`; false when it is at capacity.
    fn try_take(&self, agent: &str) -> bool;
    /// Give a slot back.
    fn give_back(&self, agent: &str);
    /// Join `agent`'s queue; returns the 1-based position.
    fn enqueue(&self, agent: &str) -> u32;
    /// Leave `agent`'s queue.
    fn dequeue(&self, agent: &str);
    /// Callers waiting for `agent`.
    fn waiting(&self, agent: &str) -> u32;
}

/// [`Slots`] from the agents file's capacities.
#[derive(Debug, Default)]
pub struct SlotTable {
    capacity: HashMap<String, Option<u32>>,
    /// (in use, waiting) per agent.
    state: Mutex<HashMap<String, (u32, u32)>>,
}

impl SlotTable {
    /// Capacities of `file`'s agents (unlimited where none is set).
    pub fn new(file: &AgentsFile) -> Self {
        SlotTable {
            capacity: file
                .agents
                .iter()
                .map(|a| (a.name.clone(), a.capacity))
                .collect(),
            state: Mutex::new(HashMap::new()),
        }
    }

    /// Calls currently at `agent`.
    pub fn in_use(&self, agent: &str) -> u32 {
        self.state
            .lock()
            .map(|s| s.get(agent).map_or(0, |e| e.0))
            .unwrap_or(0)
    }
}

impl Slots for SlotTable {
    fn try_take(&self, agent: &str) -> bool {
        let cap = self.capacity.get(agent).copied().flatten();
        let Ok(mut s) = self.state.lock() else {
            return false;
        };
        let e = s.entry(agent.to_string()).or_default();
        if cap.is_some_and(|c| e.0 >= c) {
            return false;
        }
        e.0 += 1;
        true
    }

    fn give_back(&self, agent: &str) {
        if let Ok(mut s) = self.state.lock() {
            if let Some(e) = s.get_mut(agent) {
                e.0 = e.0.saturating_sub(1);
            }
        }
    }

    fn enqueue(&self, agent: &str) -> u32 {
        let Ok(mut s) = self.state.lock() else {
            return 1;
        };
        let e = s.entry(agent.to_string()).or_default();
        e.1 += 1;
        e.1
    }

    fn dequeue(&self, agent: &str) {
        if let Ok(mut s) = self.state.lock() {
            if let Some(e) = s.get_mut(agent) {
                e.1 = e.1.saturating_sub(1);
            }
        }
    }

    fn waiting(&self, agent: &str) -> u32 {
        self.state
            .lock()
            .map(|s| s.get(agent).map_or(0, |e| e.1))
            .unwrap_or(0)
    }
}

/// What the bridge must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send now (`session.update`, `conversation.item.create`).
    Send(ClientEvent),
    /// Send `response.create` as soon as no response is active (after `response.done`), so
    /// the API never answers `conversation_already_has_active_response`.
    Respond(Option<ResponseCreateParams>),
    /// Run a business tool, then report with [`CallRouter::on_tool_result`].
    RunTool {
        /// Pairs the call and its output.
        call_id: String,
        /// The tool (its backend says where it runs).
        tool: ToolDef,
        /// JSON arguments as the model sent them.
        arguments: String,
    },
    /// Tell [`CallRouter::on_first_audio`] when the next assistant audio reaches the caller.
    WatchFirstAudio,
    /// Voice modes `per_agent` and `hybrid`: open a second Realtime session with `config`
    /// (the new agent's voice) and seed it with `items`, while the current one keeps the
    /// caller; report [`CallRouter::on_session_ready`] or [`CallRouter::on_session_failed`].
    OpenSession {
        /// The new agent's full config.
        config: Box<SessionConfig>,
        /// The conversation so far, as text items.
        items: Vec<Item>,
    },
    /// Make the opened session the call's session: caller audio goes to it from now on; the
    /// old one is closed once its audio has played (the new agent's first frame tells).
    SwitchSession,
    /// Policy `callback`: store this request (with the caller's number, known to the bridge).
    ScheduleCallback {
        /// The agent that should call back.
        agent: String,
        /// The context to start from.
        envelope: Box<Envelope>,
    },
    /// A handoff happened.
    Handoff(HandoffEvent),
    /// A handoff could not happen; `policy` says what was done instead.
    HandoffFailed {
        /// From.
        from: String,
        /// To.
        to: String,
        /// Why.
        reason: String,
        /// `return`, `queue`, `callback`, or `rejected` (not allowed / malformed).
        policy: String,
    },
}

/// One completed handoff.
#[derive(Debug, Clone, PartialEq)]
pub struct HandoffEvent {
    /// From.
    pub from: String,
    /// To.
    pub to: String,
    /// The merged envelope the new agent got.
    pub envelope: Envelope,
    /// When the model asked for it.
    pub triggered: Instant,
    /// When the switch was made (later than `triggered` after narration or a queue).
    pub switched: Instant,
    /// `same` (one session).
    pub mode: &'static str,
    /// `queue` when it completed from the queue.
    pub policy: Option<&'static str>,
}

/// The call's outcome for records and metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallSummary {
    /// Agents in order (entry first).
    pub agent_path: Vec<String>,
    /// Completed handoffs.
    pub handoffs: Vec<HandoffEvent>,
    /// Trigger -> the new agent's first audio sent, per handoff that got that far.
    pub handoff_ms: Vec<u64>,
    /// The same per handoff, aligned with `handoffs` (`None`: the new agent never spoke).
    pub handoff_ms_each: Vec<Option<u64>>,
    /// Trigger -> the new agent's first audio received from the Realtime side, aligned with
    /// `handoffs`: the in-bridge overhead plus the model's answer time, without the playout
    /// wait behind the narration.
    pub first_delta_ms: Vec<Option<u64>>,
    /// Per handoff whose new agent spoke: share of envelope entities and intent it mentioned.
    pub context_preservation: Vec<f64>,
    /// DTMF 1-5 pressed while a survey agent had the caller.
    pub csat: Option<u8>,
    /// An outcome tool (`conversion = true`) succeeded after a handoff.
    pub converted: bool,
    /// The last envelope (handoff or the bridge's view at the end).
    pub final_envelope: Envelope,
    /// Handoffs refused or rerouted by a policy.
    pub failures: u32,
}

#[derive(Debug, Clone)]
struct Pending {
    call_id: Option<String>,
    from: String,
    to: String,
    envelope: Envelope,
    triggered: Instant,
}

#[derive(Debug)]
enum Phase {
    Idle,
    /// The outgoing agent is speaking the narration (out of band) before the switch.
    Narrating(Box<Pending>),
    /// A second session is opening for the target (voice modes per_agent and hybrid).
    Opening {
        pending: Box<Pending>,
        ready: bool,
        /// The outgoing agent's narration has been said (or is not needed).
        narrated: bool,
        policy: Option<&'static str>,
    },
    /// Waiting for a slot at the target.
    Queued {
        pending: Box<Pending>,
        next_check: Instant,
        next_update: Instant,
    },
}

/// After a switch: waiting for the new agent's first audio and first transcript.
#[derive(Debug)]
struct AckWatch {
    /// Index into `summary.handoffs`.
    index: usize,
    delta_seen: bool,
    triggered: Instant,
    envelope: Envelope,
    audio_seen: bool,
    scored: bool,
}

/// One call's router.
pub struct CallRouter {
    file: Arc<AgentsFile>,
    base: SessionConfig,
    slots: Arc<dyn Slots>,
    current: String,
    /// Returning-caller note for the entry agent (cross-call memory).
    caller_note: Option<String>,
    /// What the bridge knows: transcript and tool results.
    known: Envelope,
    /// The envelope of the last handoff (given to the current agent).
    handed: Option<Envelope>,
    phase: Phase,
    /// Response in which a handoff was accepted (a second one in it is refused).
    handoff_response: Option<String>,
    ack: Option<AckWatch>,
    /// Business tool calls in flight: call id -> tool.
    tools_in_flight: HashMap<String, ToolDef>,
    summary: CallSummary,
    holds_slot: bool,
}

impl std::fmt::Debug for CallRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallRouter")
            .field("current", &self.current)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

fn output_item(call_id: &str, output: Value) -> ClientEvent {
    ClientEvent::create_item(Item::function_output(call_id, output.to_string()))
}

impl CallRouter {
    /// A call answered by the file's entry agent. `base` carries what every agent shares
    /// (model, audio formats, turn detection, transcription, voice); `caller_note` is what the
    /// store remembers of this caller.
    pub fn new(
        file: Arc<AgentsFile>,
        base: SessionConfig,
        slots: Arc<dyn Slots>,
        caller_note: Option<String>,
    ) -> Self {
        let current = file.entry.clone();
        // The entry agent answers every call: it is never refused, but its load is counted.
        let holds_slot = slots.try_take(&current);
        let summary = CallSummary {
            agent_path: vec![current.clone()],
            ..CallSummary::default()
        };
        CallRouter {
            file,
            base,
            slots,
            current,
            caller_note,
            known: Envelope::default(),
            handed: None,
            phase: Phase::Idle,
            handoff_response: None,
            ack: None,
            tools_in_flight: HashMap::new(),
            summary,
            holds_slot,
        }
    }

    /// The agent that has the caller.
    pub fn current_agent(&self) -> &str {
        &self.current
    }

    fn agent(&self, name: &str) -> Option<&Agent> {
        self.file.agent(name)
    }

    /// The full session config for the current agent (also what a reconnect restores).
    pub fn session_config(&self) -> SessionConfig {
        match self.agent(&self.current) {
            Some(agent) => self.config_for(agent, self.handed.as_ref()),
            None => self.base.clone(),
        }
    }

    /// `agent`'s full config given the envelope it was handed; in voice modes per_agent and
    /// hybrid with its own voice.
    fn config_for(&self, agent: &Agent, handed: Option<&Envelope>) -> SessionConfig {
        let mut b = self
            .base
            .to_builder()
            .instructions(self.instructions_with(agent, handed))
            .tools(self.file.session_tools(agent))
            .tool_choice(ToolChoice::Mode(ToolChoiceMode::Auto));
        if self.file.voice_mode != VoiceMode::Same {
            b = b.voice(self.file.voice_for(agent));
        }
        b.build().unwrap_or_else(|_| self.base.clone())
    }

    fn instructions_with(&self, agent: &Agent, handed: Option<&Envelope>) -> String {
        let mut text = agent.instructions.clone();
        if handed.is_none() {
            if let Some(note) = &self.caller_note {
                text.push_str("\n\n");
                text.push_str(note);
            }
        }
        if let Some(env) = handed {
            text.push_str(
                "\n\nContext handed over by the previous agent (JSON). Do not ask the caller \
                 for anything it already contains:\n",
            );
            text.push_str(&context_json(env));
        }
        text
    }

    /// The first events of the call: the entry agent's full config.
    pub fn start(&mut self) -> Vec<Action> {
        vec![Action::Send(self.session_config().update_event())]
    }

    /// A final transcript: the caller's (input transcription) or an agent's.
    pub fn on_transcript(&mut self, role: Role, text: &str) {
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        self.known.transcript.push(Turn::new(role, text));
        if self.known.transcript.len() > 200 {
            self.known.transcript.drain(..100);
        }
        if role == Role::Assistant {
            if let Some(ack) = self.ack.as_mut() {
                if !ack.scored {
                    ack.scored = true;
                    let score = preservation_score(&ack.envelope, text);
                    self.summary.context_preservation.push(score);
                }
            }
        }
    }

    /// The model finished a function call (`response.function_call_arguments.done`) in
    /// `response_id`; `response_had_audio` says whether that response spoke (the narration).
    pub fn on_function_call(
        &mut self,
        now: Instant,
        response_id: &str,
        call_id: &str,
        name: &str,
        arguments: &str,
        response_had_audio: bool,
    ) -> Vec<Action> {
        if name.starts_with(HANDOFF_PREFIX) {
            return self.on_handoff_call(
                now,
                response_id,
                call_id,
                name,
                arguments,
                response_had_audio,
            );
        }
        let tool = self
            .agent(&self.current)
            .and_then(|a| a.tools.iter().find(|t| t.name == name))
            .cloned();
        match tool {
            Some(tool) => {
                self.tools_in_flight
                    .insert(call_id.to_string(), tool.clone());
                vec![Action::RunTool {
                    call_id: call_id.to_string(),
                    tool,
                    arguments: arguments.to_string(),
                }]
            }
            None => vec![
                Action::Send(output_item(
                    call_id,
                    json!({"error": format!("unknown tool {name:?} for the {} agent", self.current)}),
                )),
                Action::Respond(None),
            ],
        }
    }

    /// A business tool finished (or failed: the error goes to the model, never a crash).
    pub fn on_tool_result(&mut self, call_id: &str, result: Result<Value, String>) -> Vec<Action> {
        let tool = self.tools_in_flight.remove(call_id);
        let output = match result {
            Ok(v) => {
                if let Value::Object(map) = &v {
                    for (k, val) in map {
                        self.known.customer_state.insert(k.clone(), val.clone());
                    }
                }
                if tool.as_ref().is_some_and(|t| t.conversion) && !self.summary.handoffs.is_empty()
                {
                    self.summary.converted = true;
                }
                v
            }
            Err(e) => json!({"error": e}),
        };
        vec![
            Action::Send(output_item(call_id, output)),
            Action::Respond(None),
        ]
    }

    fn on_handoff_call(
        &mut self,
        now: Instant,
        response_id: &str,
        call_id: &str,
        name: &str,
        arguments: &str,
        response_had_audio: bool,
    ) -> Vec<Action> {
        let from = self.current.clone();
        let wanted = name.trim_start_matches(HANDOFF_PREFIX).to_string();
        // One handoff per response, and none while one is under way.
        if self.handoff_response.as_deref() == Some(response_id)
            || !matches!(self.phase, Phase::Idle)
        {
            return vec![
                Action::Send(output_item(
                    call_id,
                    json!({"error": "a handoff is already in progress; ignore this call"}),
                )),
                Action::HandoffFailed {
                    from,
                    to: wanted,
                    reason: "second handoff in one turn".into(),
                    policy: "rejected".into(),
                },
            ];
        }
        let target = self
            .agent(&self.current)
            .and_then(|a| self.file.handoff_target(a, name))
            .map(|t| t.name.clone());
        let Some(to) = target.filter(|t| *t != self.current) else {
            let allowed = self
                .agent(&self.current)
                .map(|a| a.handoffs.clone())
                .unwrap_or_default();
            return vec![
                Action::Send(output_item(
                    call_id,
                    json!({"error": format!("handoff to {wanted:?} is not allowed from {from}"), "allowed": allowed}),
                )),
                Action::Respond(None),
                Action::HandoffFailed {
                    from,
                    to: wanted,
                    reason: "not an allowed target".into(),
                    policy: "rejected".into(),
                },
            ];
        };
        // A thin or malformed call loses nothing the bridge holds.
        let model = Envelope::from_tool_arguments(arguments).unwrap_or_default();
        let envelope = merge(model, self.bridge_view());
        self.handoff_response = Some(response_id.to_string());
        let pending = Pending {
            call_id: Some(call_id.to_string()),
            from: from.clone(),
            to: to.clone(),
            envelope,
            triggered: now,
        };
        if !self.slots.try_take(&to) {
            return self.unavailable(now, pending);
        }
        let mode = self.file.voice_mode;
        if response_had_audio || mode == VoiceMode::PerAgent {
            // per_agent: the new agent introduces itself in its own voice.
            return self.switch(now, pending, None);
        }
        // Never a silent transfer: the outgoing agent says it before the switch (hybrid: while
        // the new session warms up).
        let text = self.narration(&from, &to);
        let mut actions = Vec::new();
        if mode == VoiceMode::Hybrid {
            actions = self.open_session(pending, false, None);
        } else {
            self.phase = Phase::Narrating(Box::new(pending));
        }
        actions.push(self.narration_response(&text));
        actions
    }

    fn narration_response(&self, text: &str) -> Action {
        Action::Respond(Some(ResponseCreateParams {
            instructions: Some(format!(
                "Say exactly this to the caller, nothing else: \"{text}\""
            )),
            conversation: Some(ConversationMode::None),
            input: Some(Vec::new()),
            tools: Some(Vec::new()),
            metadata: Some(json!({"purpose": NARRATION_PURPOSE})),
            ..ResponseCreateParams::default()
        }))
    }

    /// Voice modes per_agent and hybrid: open the target's own session, seeded with the
    /// envelope; the switch waits for it (and for the narration).
    fn open_session(
        &mut self,
        pending: Pending,
        narrated: bool,
        policy: Option<&'static str>,
    ) -> Vec<Action> {
        let Some(agent) = self.agent(&pending.to) else {
            return Vec::new();
        };
        let config = self.config_for(agent, Some(&pending.envelope));
        let mut items = vec![Item::system_text(format!(
            "The caller was with the {} agent and has just been handed to you. The \
             conversation so far follows.",
            pending.from
        ))];
        for t in &pending.envelope.transcript {
            items.push(match t.role {
                Role::User => Item::user_text(t.text.clone()),
                Role::Assistant => Item::assistant_text(t.text.clone()),
                Role::System => Item::system_text(t.text.clone()),
            });
        }
        self.phase = Phase::Opening {
            pending: Box::new(pending),
            ready: false,
            narrated,
            policy,
        };
        vec![Action::OpenSession {
            config: Box::new(config),
            items,
        }]
    }

    /// The second session is open and seeded.
    pub fn on_session_ready(&mut self, now: Instant) -> Vec<Action> {
        if let Phase::Opening {
            ready, narrated, ..
        } = &mut self.phase
        {
            *ready = true;
            if *narrated {
                return self.commit_new_session(now);
            }
        }
        Vec::new()
    }

    /// The second session could not be opened: the target's policy, on the old session.
    pub fn on_session_failed(&mut self, now: Instant, reason: &str) -> Vec<Action> {
        let Phase::Opening { pending, .. } = std::mem::replace(&mut self.phase, Phase::Idle) else {
            return Vec::new();
        };
        self.slots.give_back(&pending.to);
        let mut actions = self.unavailable(now, *pending);
        for a in &mut actions {
            if let Action::HandoffFailed { reason: r, .. } = a {
                *r = format!("new session failed: {reason}");
            }
        }
        actions
    }

    fn commit_new_session(&mut self, now: Instant) -> Vec<Action> {
        let Phase::Opening {
            pending, policy, ..
        } = std::mem::replace(&mut self.phase, Phase::Idle)
        else {
            return Vec::new();
        };
        let mode = match self.file.voice_mode {
            VoiceMode::PerAgent => "per_agent",
            _ => "hybrid",
        };
        let (from, to, envelope) = (
            pending.from.clone(),
            pending.to.clone(),
            pending.envelope.clone(),
        );
        let event = self.enter(now, *pending, mode, policy);
        let intro = if mode == "per_agent" {
            format!(
                " Start by introducing yourself in a few words as the {to} specialist who \
                 takes over from the {from} agent."
            )
        } else {
            String::new()
        };
        vec![
            Action::SwitchSession,
            self.ack_response(&from, &to, &envelope, &intro),
            Action::WatchFirstAudio,
            Action::Handoff(event),
        ]
    }

    /// The target becomes the current agent: slots, path, summary, acknowledgment watch.
    fn enter(
        &mut self,
        now: Instant,
        pending: Pending,
        mode: &'static str,
        policy: Option<&'static str>,
    ) -> HandoffEvent {
        let Pending {
            from,
            to,
            envelope,
            triggered,
            ..
        } = pending;
        if self.holds_slot {
            self.slots.give_back(&from);
        }
        self.holds_slot = true;
        self.current = to.clone();
        self.handed = Some(envelope.clone());
        self.phase = Phase::Idle;
        self.summary.agent_path.push(to.clone());
        let event = HandoffEvent {
            from,
            to,
            envelope: envelope.clone(),
            triggered,
            switched: now,
            mode,
            policy,
        };
        self.summary.handoffs.push(event.clone());
        self.summary.handoff_ms_each.push(None);
        self.summary.first_delta_ms.push(None);
        self.ack = Some(AckWatch {
            index: self.summary.handoffs.len() - 1,
            delta_seen: false,
            triggered,
            envelope,
            audio_seen: false,
            scored: false,
        });
        event
    }

    /// The new agent's first response: its instructions plus "show you know the context".
    fn ack_response(&self, from: &str, to: &str, envelope: &Envelope, extra: &str) -> Action {
        let agent_instructions = self
            .agent(to)
            .map(|a| self.instructions_with(a, Some(envelope)))
            .unwrap_or_default();
        Action::Respond(Some(ResponseCreateParams {
            instructions: Some(format!(
                "{agent_instructions}\n\nYou have just taken over this call from the {from} agent.{extra} \
                 In your first sentence show the caller you already know their situation \
                 ({}), then continue; never ask them to repeat it.",
                ack_hint(envelope)
            )),
            ..ResponseCreateParams::default()
        }))
    }

    fn narration(&self, from: &str, to: &str) -> String {
        if let Some(text) = self.agent(from).and_then(|a| a.narration.get(to)) {
            return text.clone();
        }
        let what = self
            .agent(to)
            .and_then(|a| a.description.clone())
            .map(|d| format!(" for {d}"))
            .unwrap_or_default();
        format!(
            "I'm connecting you to our {to} team{what}; I'm passing along everything you told me, \
             so you won't need to repeat yourself."
        )
    }

    /// The target cannot take the call: its `on_unavailable` policy.
    fn unavailable(&mut self, now: Instant, pending: Pending) -> Vec<Action> {
        let policy = self
            .agent(&pending.to)
            .map_or(OnUnavailable::Return, |a| a.on_unavailable);
        let from = pending.from.clone();
        let to = pending.to.clone();
        let call_id = pending.call_id.clone().unwrap_or_default();
        self.summary.failures += 1;
        self.handoff_response = None;
        match policy {
            OnUnavailable::Return => {
                let alternatives: Vec<String> = self
                    .agent(&from)
                    .map(|a| a.handoffs.iter().filter(|t| **t != to).cloned().collect())
                    .unwrap_or_default();
                vec![
                    Action::Send(output_item(
                        &call_id,
                        json!({
                            "status": "unavailable",
                            "agent": to,
                            "reason": format!("the {to} team is at capacity right now"),
                            "instructions": "Tell the caller, keep helping them yourself, and offer the alternatives.",
                            "alternatives": alternatives,
                        }),
                    )),
                    Action::Respond(None),
                    Action::HandoffFailed {
                        from,
                        to,
                        reason: "at capacity".into(),
                        policy: "return".into(),
                    },
                ]
            }
            OnUnavailable::Queue => {
                let position = self.slots.enqueue(&to);
                let eta = QUEUE_ETA_PER_POSITION.as_secs() * u64::from(position);
                self.phase = Phase::Queued {
                    pending: Box::new(Pending {
                        call_id: None,
                        ..pending
                    }),
                    next_check: now + QUEUE_CHECK,
                    next_update: now + QUEUE_UPDATE,
                };
                vec![
                    Action::Send(output_item(
                        &call_id,
                        json!({
                            "status": "queued",
                            "agent": to,
                            "position": position,
                            "eta_seconds": eta,
                            "instructions": "Tell the caller their position and the estimated wait, and that everything they said is kept.",
                        }),
                    )),
                    Action::Respond(None),
                    Action::HandoffFailed {
                        from,
                        to,
                        reason: "at capacity".into(),
                        policy: "queue".into(),
                    },
                ]
            }
            OnUnavailable::Callback => vec![
                Action::Send(output_item(
                    &call_id,
                    json!({
                        "status": "callback_scheduled",
                        "agent": to,
                        "instructions": "Tell the caller the team will call them back with everything they said, then ask if there is anything else.",
                    }),
                )),
                Action::Respond(None),
                Action::ScheduleCallback {
                    agent: to.clone(),
                    envelope: Box::new(pending.envelope),
                },
                Action::HandoffFailed {
                    from,
                    to,
                    reason: "at capacity".into(),
                    policy: "callback".into(),
                },
            ],
        }
    }

    /// Make `pending.to` the current agent: on the same session (voice mode same), or through
    /// a second session (per_agent, hybrid).
    fn switch(
        &mut self,
        now: Instant,
        pending: Pending,
        policy: Option<&'static str>,
    ) -> Vec<Action> {
        if self.file.voice_mode != VoiceMode::Same {
            return self.open_session(pending, true, policy);
        }
        let call_id = pending.call_id.clone();
        let (from, to) = (pending.from.clone(), pending.to.clone());
        let event = self.enter(now, pending, "same", policy);
        let envelope = event.envelope.clone();
        let mut actions = vec![Action::Send(self.session_config().update_event())];
        match call_id {
            Some(id) => actions.push(Action::Send(output_item(
                &id,
                json!({"assistant": to, "status": "transferred", "summary": envelope.summary}),
            ))),
            None => actions.push(Action::Send(ClientEvent::create_item(Item::system_text(
                format!("The caller waited in the queue and is now with the {to} agent."),
            )))),
        }
        actions.push(self.ack_response(&from, &to, &envelope, ""));
        actions.push(Action::WatchFirstAudio);
        actions.push(Action::Handoff(event));
        actions
    }

    /// `response.done`; `purpose` is the response's `metadata.purpose`, if any.
    pub fn on_response_done(&mut self, now: Instant, purpose: Option<&str>) -> Vec<Action> {
        if purpose == Some(NARRATION_PURPOSE) {
            match std::mem::replace(&mut self.phase, Phase::Idle) {
                Phase::Narrating(p) => return self.switch(now, *p, None),
                Phase::Opening {
                    pending,
                    ready,
                    policy,
                    ..
                } => {
                    self.phase = Phase::Opening {
                        pending,
                        ready,
                        narrated: true,
                        policy,
                    };
                    if ready {
                        return self.commit_new_session(now);
                    }
                }
                other => self.phase = other,
            }
        }
        Vec::new()
    }

    /// The new agent's first audio reached the caller: the handoff time ends here.
    pub fn on_first_audio(&mut self, now: Instant) {
        if let Some(ack) = self.ack.as_mut() {
            if !ack.audio_seen {
                ack.audio_seen = true;
                let ms = millis(now.saturating_duration_since(ack.triggered));
                self.summary.handoff_ms.push(ms);
                if let Some(slot) = self.summary.handoff_ms_each.get_mut(ack.index) {
                    *slot = Some(ms);
                }
            }
        }
    }

    /// The new agent's first audio arrived from the Realtime side (before playout).
    pub fn on_first_delta(&mut self, now: Instant) {
        if let Some(ack) = self.ack.as_mut() {
            if !ack.delta_seen {
                ack.delta_seen = true;
                let ms = millis(now.saturating_duration_since(ack.triggered));
                if let Some(slot) = self.summary.first_delta_ms.get_mut(ack.index) {
                    *slot = Some(ms);
                }
            }
        }
    }

    /// A DTMF digit: the survey answer when a survey agent has the caller.
    pub fn on_dtmf(&mut self, digit: char) {
        let survey = self.agent(&self.current).is_some_and(|a| a.survey);
        if let Some(d) = digit.to_digit(10) {
            if survey && (1..=5).contains(&d) {
                self.summary.csat = Some(d as u8);
            }
        }
    }

    /// Timers: queue re-checks and updates.
    pub fn poll(&mut self, now: Instant) -> Vec<Action> {
        let Phase::Queued {
            pending,
            next_check,
            next_update,
        } = &mut self.phase
        else {
            return Vec::new();
        };
        if now >= *next_check {
            *next_check = now + QUEUE_CHECK;
            if self.slots.try_take(&pending.to) {
                self.slots.dequeue(&pending.to);
                let p = (**pending).clone();
                return self.switch(now, p, Some("queue"));
            }
        }
        if now >= *next_update {
            *next_update = now + QUEUE_UPDATE;
            let to = pending.to.clone();
            let position = self.slots.waiting(&to).max(1);
            let eta = QUEUE_ETA_PER_POSITION.as_secs() * u64::from(position);
            return vec![Action::Respond(Some(ResponseCreateParams {
                instructions: Some(format!(
                    "Tell the caller in one short sentence that they are still waiting for the \
                     {to} team, position {position}, about {} minute(s), and that everything they \
                     said is kept.",
                    eta.div_ceil(60)
                )),
                ..ResponseCreateParams::default()
            }))];
        }
        Vec::new()
    }

    /// When [`CallRouter::poll`] wants to run next.
    pub fn next_deadline(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Queued {
                next_check,
                next_update,
                ..
            } => Some((*next_check).min(*next_update)),
            _ => None,
        }
    }

    /// What the bridge holds now: the whole call's transcript (budgeted) and tool results, over
    /// what earlier handoffs established (their intent, entities, resolved issues).
    fn bridge_view(&self) -> Envelope {
        let mut known = self.known.clone();
        known.transcript = fit_transcript(&known.transcript, TRANSCRIPT_BUDGET);
        match &self.handed {
            Some(prev) => {
                let transcript = std::mem::take(&mut known.transcript);
                let mut view = merge(known, prev.clone());
                view.transcript = transcript;
                view
            }
            None => known,
        }
    }

    /// The call ended: slots back, the summary for records and metrics.
    pub fn finish(&mut self) -> CallSummary {
        if self.holds_slot {
            self.slots.give_back(&self.current);
            self.holds_slot = false;
        }
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Queued { pending, .. } => self.slots.dequeue(&pending.to),
            // The target's slot was taken for a switch that never happened.
            Phase::Opening { pending, .. } => self.slots.give_back(&pending.to),
            _ => {}
        }
        self.summary.final_envelope = self.bridge_view();
        self.summary.clone()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The envelope as the new agent's instructions carry it (transcript left out: it is in the
/// conversation already).
fn context_json(env: &Envelope) -> String {
    let mut v = serde_json::to_value(env).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.remove("transcript");
    }
    v.to_string()
}

fn ack_hint(env: &Envelope) -> String {
    let mut parts = Vec::new();
    if !env.summary.is_empty() {
        parts.push(env.summary.clone());
    }
    if let Some(i) = &env.intent {
        parts.push(format!("intent: {i}"));
    }
    for (k, v) in &env.entities {
        parts.push(format!("{k}: {v}"));
    }
    parts.join("; ")
}

/// Lower-case, `$`/`,` dropped, trailing `.00` dropped: "$49.00" and "$49" meet.
fn normalize(s: &str) -> String {
    s.to_lowercase()
        .replace(['$', ','], "")
        .replace(".00", "")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Share of the envelope's entities and intent that `first_turn` mentions (1.0 when the
/// envelope names none). An entity counts when its normalised value appears; the intent when
/// one of its words of 4+ letters (other than generic ones) does.
pub fn preservation_score(env: &Envelope, first_turn: &str) -> f64 {
    const GENERIC: [&str; 6] = ["question", "inquiry", "request", "issue", "problem", "help"];
    let said = normalize(first_turn);
    let mut total = 0u32;
    let mut hit = 0u32;
    for v in env.entities.values() {
        let v = normalize(v);
        if v.is_empty() {
            continue;
        }
        total += 1;
        if said.contains(&v) {
            hit += 1;
        }
    }
    if let Some(intent) = &env.intent {
        let words: Vec<String> = intent
            .to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.len() >= 4 && !GENERIC.contains(w))
            .map(String::from)
            .collect();
        if !words.is_empty() {
            total += 1;
            if words.iter().any(|w| said.contains(w.as_str())) {
                hit += 1;
            }
        }
    }
    if total == 0 {
        1.0
    } else {
        f64::from(hit) / f64::from(total)
    }
}
