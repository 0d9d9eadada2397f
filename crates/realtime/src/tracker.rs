//! Sans-IO conversation tracker. Fed every server event and every client event we send, it
//! answers which client event is safe now, so the bridge never provokes the errors of
//! protocol §8 (`conversation_already_has_active_response`, `response_cancel_not_active`,
//! `input_audio_buffer_commit_empty`, a truncate past the audio). It reads no clock: played
//! milliseconds come from the bridge's playout.

use crate::audio::{base64_decoded_len, AudioFormat};
use crate::client::{ClientEvent, ConversationItemTruncate};
use crate::config::SessionConfig;
use crate::item::{Item, ItemStatus, Role};
use crate::response::{ConversationMode, Response};
use crate::server::{codes, ServerEvent};
use crate::session::{Session, TurnDetection};

/// The API refuses a commit of less than this (protocol §3, `input_audio_buffer.commit`).
pub const MIN_COMMIT_MS: u64 = 100;

/// What kind of item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    /// A message.
    Message,
    /// A function call from the model.
    FunctionCall,
    /// Our function output.
    FunctionCallOutput,
}

/// One conversation item as the tracker sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemState {
    id: String,
    kind: ItemKind,
    role: Option<Role>,
    status: Option<ItemStatus>,
    format: Option<AudioFormat>,
    audio_bytes: u64,
    audio_content_index: u32,
    audio_done: bool,
    played_ms: u64,
    truncated_ms: Option<u64>,
}

impl ItemState {
    /// Item id.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// Kind.
    pub fn kind(&self) -> ItemKind {
        self.kind
    }
    /// Role, for messages.
    pub fn role(&self) -> Option<Role> {
        self.role
    }
    /// Last known status.
    pub fn status(&self) -> Option<ItemStatus> {
        self.status
    }
    /// Whole ms of assistant audio received, from delta byte lengths (protocol §6).
    pub fn received_ms(&self) -> u64 {
        self.format.map_or(0, |f| f.ms_for_bytes(self.audio_bytes))
    }
    /// Ms the bridge reported as played, never more than received.
    pub fn played_ms(&self) -> u64 {
        self.played_ms
    }
    /// `response.output_audio.done` was seen.
    pub fn audio_done(&self) -> bool {
        self.audio_done
    }
    /// `audio_end_ms` of a truncate sent or confirmed.
    pub fn truncated_ms(&self) -> Option<u64> {
        self.truncated_ms
    }
}

/// A function call from the model, pending until we send its `function_call_output`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionCall {
    /// Pairs call and output.
    pub call_id: String,
    /// The `function_call` item.
    pub item_id: String,
    /// The response that made it.
    pub response_id: String,
    /// Tool name, from the output item first (protocol §3, DESIGN "Protocol facts").
    pub name: Option<String>,
    /// Complete JSON arguments once `function_call_arguments.done` (or the done item) arrived.
    pub arguments: Option<String>,
}

impl FunctionCall {
    /// Name and arguments are both known: the bridge can run it.
    pub fn is_ready(&self) -> bool {
        self.name.is_some() && self.arguments.is_some()
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Idle,
    /// We sent `response.create`; `response.created` not yet seen.
    Requested {
        event_id: Option<String>,
    },
    Active {
        id: String,
        format: Option<AudioFormat>,
        cancel_sent: bool,
        /// VAD heard speech with `interrupt_response`: the server is cancelling it itself.
        server_interrupting: bool,
    },
}

/// The conversation as both sides have shaped it so far.
#[derive(Debug, Clone)]
pub struct Tracker {
    input_format: AudioFormat,
    output_format: AudioFormat,
    turn_detection: Option<TurnDetection>,
    phase: Phase,
    /// A VAD commit with `create_response`: the server is about to start a response.
    auto_response_expected: bool,
    out_of_band_requested: u32,
    out_of_band: Vec<String>,
    items: Vec<ItemState>,
    calls: Vec<FunctionCall>,
    input_bytes: u64,
    unknown_events: u64,
    assistant_audio_seen: bool,
}

impl Tracker {
    /// A tracker for a session opened with `config` (sent as the first `session.update`).
    pub fn new(config: &SessionConfig) -> Self {
        Self {
            input_format: config.input_format(),
            output_format: config.output_format(),
            turn_detection: config.turn_detection().cloned(),
            phase: Phase::Idle,
            auto_response_expected: false,
            out_of_band_requested: 0,
            out_of_band: Vec::new(),
            items: Vec::new(),
            calls: Vec::new(),
            input_bytes: 0,
            unknown_events: 0,
            assistant_audio_seen: false,
        }
    }

    /// `response.create` now would not be rejected with
    /// `conversation_already_has_active_response` (protocol §8).
    pub fn may_create_response(&self) -> bool {
        self.phase == Phase::Idle && !self.auto_response_expected
    }

    /// `response.cancel` now would find an active response (`response_cancel_not_active`
    /// otherwise), and the server is not already cancelling it on barge-in (protocol §4).
    pub fn may_cancel_response(&self) -> bool {
        matches!(
            self.phase,
            Phase::Active {
                cancel_sent: false,
                server_interrupting: false,
                ..
            }
        )
    }

    /// `input_audio_buffer.commit` now holds at least 100 ms (`input_audio_buffer_commit_empty`
    /// otherwise, protocol §3).
    pub fn may_commit(&self) -> bool {
        self.input_ms_since_commit() >= MIN_COMMIT_MS
    }

    /// Ms of caller audio appended since the buffer was last committed or cleared.
    pub fn input_ms_since_commit(&self) -> u64 {
        self.input_format.ms_for_bytes(self.input_bytes)
    }

    /// The active default-conversation response, if any.
    pub fn active_response_id(&self) -> Option<&str> {
        match &self.phase {
            Phase::Active { id, .. } => Some(id),
            _ => None,
        }
    }

    /// Whether any assistant audio was received: after that the voice is fixed
    /// (protocol §2, `cannot_update_voice`).
    pub fn assistant_audio_seen(&self) -> bool {
        self.assistant_audio_seen
    }

    /// Server events of a `type` we do not model (counted, never fatal; protocol §3).
    pub fn unknown_events(&self) -> u64 {
        self.unknown_events
    }

    /// Items in conversation order as we learned them.
    pub fn items(&self) -> &[ItemState] {
        &self.items
    }

    /// One item.
    pub fn item(&self, id: &str) -> Option<&ItemState> {
        self.items.iter().find(|i| i.id == id)
    }

    /// Function calls not yet answered.
    pub fn pending_function_calls(&self) -> &[FunctionCall] {
        &self.calls
    }

    /// The assistant item whose audio the caller may be hearing: the latest one with audio
    /// that was neither truncated nor played to its end.
    pub fn playing_item(&self) -> Option<&str> {
        self.items
            .iter()
            .rev()
            .find(|i| {
                i.role == Some(Role::Assistant)
                    && i.audio_bytes > 0
                    && i.truncated_ms.is_none()
                    && !(i.audio_done && i.played_ms >= i.received_ms())
            })
            .map(|i| i.id.as_str())
    }

    /// The bridge's playout reports `played_ms` (cumulative) for an item.
    pub fn on_audio_played(&mut self, item_id: &str, played_ms: u64) {
        if let Some(i) = self.item_mut(item_id) {
            i.played_ms = played_ms.min(i.received_ms());
        }
    }

    /// The truncate to send on barge-in, or `None` when none is due: no such assistant item,
    /// no audio received (`unsupported_content_type`, livekit #6157), already truncated, or all
    /// of its audio was received and heard (protocol §8, PR #2374). `audio_end_ms` is clamped to
    /// the audio received (protocol §6), never the wall clock.
    pub fn truncate_for_barge_in(&self, item_id: &str, played_ms: u64) -> Option<ClientEvent> {
        let item = self.item(item_id)?;
        if item.role != Some(Role::Assistant) || item.truncated_ms.is_some() {
            return None;
        }
        let received = item.received_ms();
        if received == 0 || (item.audio_done && played_ms >= received) {
            return None;
        }
        Some(ClientEvent::ConversationItemTruncate(
            ConversationItemTruncate {
                event_id: None,
                item_id: item.id.clone(),
                content_index: item.audio_content_index,
                audio_end_ms: played_ms.min(received),
            },
        ))
    }

    /// An `input_audio_buffer.append` of `bytes` bytes of audio was sent (what
    /// [`Tracker::on_client_event`] does for one, for appends sent as
    /// [`ClientEvent::append_json`] text).
    pub fn on_audio_appended(&mut self, bytes: u64) {
        self.input_bytes += bytes;
    }

    /// Record a client event just sent.
    pub fn on_client_event(&mut self, event: &ClientEvent) {
        match event {
            ClientEvent::SessionUpdate(u) => self.apply_session(&u.session),
            ClientEvent::InputAudioBufferAppend(a) => {
                self.on_audio_appended(base64_decoded_len(&a.audio));
            }
            ClientEvent::InputAudioBufferCommit(_) | ClientEvent::InputAudioBufferClear(_) => {
                self.input_bytes = 0;
            }
            ClientEvent::ConversationItemCreate(c) => {
                if let Item::FunctionCallOutput(out) = &c.item {
                    self.calls.retain(|f| f.call_id != out.call_id);
                }
            }
            ClientEvent::ConversationItemTruncate(t) => {
                if let Some(i) = self.item_mut(&t.item_id) {
                    i.truncated_ms = Some(t.audio_end_ms);
                }
            }
            ClientEvent::ConversationItemDelete(d) => self.remove_item(&d.item_id),
            ClientEvent::ResponseCreate(r) => {
                let oob = r
                    .response
                    .as_ref()
                    .is_some_and(|p| p.conversation == Some(ConversationMode::None));
                if oob {
                    // Out-of-band responses may run beside the default one (protocol §3).
                    self.out_of_band_requested += 1;
                } else if self.phase == Phase::Idle {
                    self.phase = Phase::Requested {
                        event_id: r.event_id.clone(),
                    };
                }
            }
            ClientEvent::ResponseCancel(_) => {
                if let Phase::Active { cancel_sent, .. } = &mut self.phase {
                    *cancel_sent = true;
                }
            }
            ClientEvent::Unknown { .. } => {}
        }
    }

    /// Record a server event just received.
    pub fn on_server_event(&mut self, event: &ServerEvent) {
        match event {
            ServerEvent::SessionCreated(s) | ServerEvent::SessionUpdated(s) => {
                self.apply_session(&s.session)
            }
            ServerEvent::SpeechStarted(_) => {
                let interrupts = self
                    .turn_detection
                    .as_ref()
                    .is_some_and(TurnDetection::interrupts_response);
                if let Phase::Active {
                    server_interrupting,
                    ..
                } = &mut self.phase
                {
                    *server_interrupting |= interrupts;
                }
            }
            ServerEvent::InputAudioBufferCommitted(_) => {
                self.input_bytes = 0;
                let creates = self
                    .turn_detection
                    .as_ref()
                    .is_some_and(TurnDetection::creates_response);
                // VAD commits are followed by a server-made response; ours would collide.
                self.auto_response_expected |= creates && self.phase == Phase::Idle;
            }
            ServerEvent::InputAudioBufferCleared(_) => self.input_bytes = 0,
            ServerEvent::ConversationItemAdded(e)
            | ServerEvent::ConversationItemDone(e)
            | ServerEvent::ConversationItemCreated(e) => self.upsert_item(&e.item, None),
            ServerEvent::ConversationItemTruncated(t) => {
                if let Some(i) = self.item_mut(&t.item_id) {
                    i.truncated_ms = Some(t.audio_end_ms);
                }
            }
            ServerEvent::ConversationItemDeleted(d) => self.remove_item(&d.item_id),
            ServerEvent::ResponseCreated(r) => self.on_response_created(&r.response),
            ServerEvent::ResponseDone(r) => self.on_response_done(&r.response),
            ServerEvent::OutputItemAdded(o) | ServerEvent::OutputItemDone(o) => {
                self.upsert_item(&o.item, Some(&o.response_id))
            }
            ServerEvent::OutputAudioDelta(d) => {
                self.assistant_audio_seen = true;
                let format = self.response_format(&d.response_id);
                let item = self.ensure_item(&d.item_id, ItemKind::Message, Some(Role::Assistant));
                item.format.get_or_insert(format);
                item.audio_bytes += base64_decoded_len(&d.delta);
                item.audio_content_index = d.content_index;
            }
            ServerEvent::OutputAudioDone(d) => {
                if let Some(i) = self.item_mut(&d.item_id) {
                    i.audio_done = true;
                }
            }
            ServerEvent::FunctionCallArgumentsDone(d) => {
                let call = self.ensure_call(&d.call_id, &d.item_id, &d.response_id);
                call.arguments = Some(d.arguments.clone());
                if call.name.is_none() {
                    call.name.clone_from(&d.name);
                }
            }
            ServerEvent::Error(e) => {
                self.on_error(e.error.code.as_deref(), e.error.event_id.as_deref())
            }
            ServerEvent::Unknown { .. } => self.unknown_events += 1,
            _ => {}
        }
    }

    fn on_error(&mut self, code: Option<&str>, client_event_id: Option<&str>) {
        let rejected_create = match &self.phase {
            Phase::Requested { event_id } => {
                code == Some(codes::ACTIVE_RESPONSE)
                    || (client_event_id.is_some() && event_id.as_deref() == client_event_id)
            }
            _ => false,
        };
        if rejected_create {
            self.phase = Phase::Idle;
        }
        if code == Some(codes::COMMIT_EMPTY) {
            self.input_bytes = 0;
        }
    }

    fn on_response_created(&mut self, r: &Response) {
        if self.out_of_band_requested > 0 && r.conversation_id.is_none() {
            self.out_of_band_requested -= 1;
            self.out_of_band.push(r.id.clone());
            return;
        }
        let format = r
            .audio
            .as_ref()
            .and_then(|a| a.output.format)
            .or(Some(self.output_format));
        self.auto_response_expected = false;
        self.phase = Phase::Active {
            id: r.id.clone(),
            format,
            cancel_sent: false,
            server_interrupting: false,
        };
    }

    fn on_response_done(&mut self, r: &Response) {
        if let Some(pos) = self.out_of_band.iter().position(|id| *id == r.id) {
            self.out_of_band.remove(pos);
        } else if matches!(&self.phase, Phase::Active { id, .. } if *id == r.id) {
            self.phase = Phase::Idle;
        }
        for item in &r.output {
            self.upsert_item(item, Some(&r.id));
        }
    }

    fn response_format(&self, response_id: &str) -> AudioFormat {
        match &self.phase {
            Phase::Active {
                id,
                format: Some(f),
                ..
            } if id == response_id => *f,
            _ => self.output_format,
        }
    }

    fn apply_session(&mut self, s: &Session) {
        let Some(audio) = &s.audio else { return };
        if let Some(input) = &audio.input {
            if let Some(f) = input.format {
                self.input_format = f;
            }
            if let Some(td) = &input.turn_detection {
                self.turn_detection.clone_from(td);
            }
        }
        if let Some(f) = audio.output.as_ref().and_then(|o| o.format) {
            self.output_format = f;
        }
    }

    fn upsert_item(&mut self, item: &Item, response_id: Option<&str>) {
        let Some(id) = item.id() else { return };
        match item {
            Item::Message(m) => {
                let state = self.ensure_item(id, ItemKind::Message, Some(m.role));
                state.role = Some(m.role);
                state.status = m.status.or(state.status);
            }
            Item::FunctionCall(f) => {
                let state = self.ensure_item(id, ItemKind::FunctionCall, None);
                state.status = f.status.or(state.status);
                let (Some(call_id), Some(resp)) = (&f.call_id, response_id) else {
                    return;
                };
                let call = self.ensure_call(call_id, id, resp);
                if f.name.as_deref().is_some_and(|n| !n.is_empty()) {
                    call.name.clone_from(&f.name);
                }
                // The done item carries the full arguments; the added one has "" (protocol §3).
                if f.status == Some(ItemStatus::Completed) && f.arguments.is_some() {
                    call.arguments.clone_from(&f.arguments);
                }
            }
            Item::FunctionCallOutput(f) => {
                let state = self.ensure_item(id, ItemKind::FunctionCallOutput, None);
                state.status = f.status.or(state.status);
            }
        }
    }

    fn ensure_item(&mut self, id: &str, kind: ItemKind, role: Option<Role>) -> &mut ItemState {
        let pos = match self.items.iter().position(|i| i.id == id) {
            Some(p) => p,
            None => {
                self.items.push(ItemState {
                    id: id.to_owned(),
                    kind,
                    role,
                    status: None,
                    format: None,
                    audio_bytes: 0,
                    audio_content_index: 0,
                    audio_done: false,
                    played_ms: 0,
                    truncated_ms: None,
                });
                self.items.len() - 1
            }
        };
        &mut self.items[pos]
    }

    fn ensure_call(
        &mut self,
        call_id: &str,
        item_id: &str,
        response_id: &str,
    ) -> &mut FunctionCall {
        let pos = match self.calls.iter().position(|c| c.call_id == call_id) {
            Some(p) => p,
            None => {
                self.calls.push(FunctionCall {
                    call_id: call_id.to_owned(),
                    item_id: item_id.to_owned(),
                    response_id: response_id.to_owned(),
                    name: None,
                    arguments: None,
                });
                self.calls.len() - 1
            }
        };
        &mut self.calls[pos]
    }

    fn item_mut(&mut self, id: &str) -> Option<&mut ItemState> {
        self.items.iter_mut().find(|i| i.id == id)
    }

    fn remove_item(&mut self, id: &str) {
        self.items.retain(|i| i.id != id);
        self.calls.retain(|c| c.item_id != id);
    }
}
