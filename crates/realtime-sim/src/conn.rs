//! One WebSocket connection: session state, input VAD and the scripted response.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use realtime::{
    codes, AudioFormat, AudioInput, AudioOutput, ClientEvent, ContentPart, ContentPartEvent,
    ConversationItemEvent, ConversationItemTruncated, ErrorDetail, ErrorEvent, EventIdOnly,
    FunctionCallArgumentsDelta, FunctionCallArgumentsDone, FunctionCallItem,
    InputAudioBufferCommitted, InputTokenDetails, InputTranscriptionCompleted, Item, ItemIdEvent,
    ItemStatus, MaxOutputTokens, MessageItem, Modality, OutputDelta, OutputItemEvent,
    OutputPartDone, ParseError, Response, ResponseAudio, ResponseAudioOutput, ResponseEvent,
    ResponseStatus, Role, ServerEvent, Session, SessionAudio, SessionEvent, SessionType,
    SessionUpdate, SpeechStarted, SpeechStopped, StatusDetails, TokenDetails, ToolChoice,
    TurnDetection, Usage, Voice, PCM_RATE,
};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::scenario::{Speaker, Speech, Turn, DEFAULT_SPEEDUP};
use crate::vad::{Vad, VadEvent};
use crate::{speech, tone, Shared};

/// Length of the scripted answer.
const RESPONSE_MS: u64 = 1_000;
/// Audio per `response.output_audio.delta`.
const CHUNK_MS: u64 = 100;
/// Function-call arguments are streamed in this many `…arguments.delta` events (at most).
const ARGUMENT_DELTAS: usize = 3;
/// What the scripted agent "says".
const ANSWER: &str = "Hello, this is the simulated agent speaking.";
/// Placeholder transcript of a caller turn.
const USER_TRANSCRIPT: &str = "(simulated caller speech)";
/// GA `session.created.expires_at` is connect time + the session limit.
const SESSION_TTL_S: u64 = 30 * 60;
const INVALID_REQUEST: &str = "invalid_request_error";
const CLIENT_EVENT_TYPES: &str = "'session.update', 'input_audio_buffer.append', \
'input_audio_buffer.commit', 'input_audio_buffer.clear', 'conversation.item.create', \
'conversation.item.truncate', 'conversation.item.delete', 'conversation.item.retrieve', \
'response.create', 'response.cancel', 'output_audio_buffer.clear'";

/// What a connection gets from the simulator.
pub(crate) struct ConnCtx {
    /// Graceful stop (close frames).
    pub stop: watch::Receiver<bool>,
    /// `Simulator::kill_connections`: drop the TCP at once.
    pub kill: broadcast::Receiver<()>,
    /// Scenario and event log.
    pub shared: Arc<Shared>,
}

/// What the connection's writer task is asked to do.
// Events were sent unboxed before `Drop` existed; boxing each one to shrink a rare variant
// would add an allocation per audio delta.
#[allow(clippy::large_enum_variant)]
enum Out {
    /// Send this event.
    Event(ServerEvent),
    /// Drop the socket now, no close frame (`disconnect_after_ms`).
    Drop,
}

/// Serves one connection until the peer leaves, the simulator stops, or a test hook drops it.
pub(crate) async fn serve(tcp: TcpStream, peer: SocketAddr, seq: u64, ctx: ConnCtx) {
    let ConnCtx {
        mut stop,
        mut kill,
        shared,
    } = ctx;
    // Small buffers: a load test opens thousands of sessions (the default reads into 128 KiB).
    let config = WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .write_buffer_size(16 * 1024)
        .max_message_size(Some(8 << 20))
        .max_frame_size(Some(8 << 20));
    // Events are small and latency matters (the API answers at once): no Nagle delay.
    let _ = tcp.set_nodelay(true);
    let ws = match tokio_tungstenite::accept_async_with_config(tcp, Some(config)).await {
        Ok(ws) => ws,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "simulator handshake failed");
            return;
        }
    };
    tracing::debug!(%peer, seq, "simulator connection");
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Out>();
    let session_id = format!("sess_sim{seq}");
    let expires_at = unix_now() + SESSION_TTL_S;
    let log = shared.clone();
    let mut writer = tokio::spawn(async move {
        let mut n = 0u64;
        while let Some(out) = rx.recv().await {
            // Returning drops the sink without a close frame; the reader loop sees the end.
            let Out::Event(ev) = out else { return };
            n += 1;
            let Some((value, text)) = encode(&ev, n, &session_id, expires_at) else {
                continue;
            };
            if let Some(log) = &log.event_log {
                log.write(&value, &text);
            }
            if sink.send(Message::text(text)).await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    });
    let mut conn = Conn::new(seq, tx, shared);
    conn.send(ServerEvent::SessionCreated(SessionEvent {
        event_id: None,
        session: conn.session.clone(),
    }));
    let mut writer_ended = false;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            k = kill.recv() => {
                // Closed: the simulator is gone, `stop` ends us gracefully.
                if !matches!(k, Err(broadcast::error::RecvError::Closed)) {
                    tracing::debug!(%peer, seq, "simulator drops the connection (test hook)");
                    writer.abort();
                    let _ = (&mut writer).await;
                    writer_ended = true;
                }
                break;
            }
            _ = &mut writer => {
                writer_ended = true;
                break;
            }
            msg = stream.next() => match msg {
                None | Some(Ok(Message::Close(_))) => break,
                Some(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "simulator read failed");
                    break;
                }
                Some(Ok(Message::Text(text))) => conn.handle(text.as_str()),
                Some(Ok(Message::Binary(_))) => conn.error(
                    Some("invalid_event"),
                    "Binary frames are not supported; send JSON text events.".into(),
                    None,
                    None,
                ),
                Some(Ok(_)) => {}
            },
        }
    }
    drop(conn);
    if !writer_ended {
        let _ = writer.await;
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// One event as the live server writes it: an `event_id`, and the session's undeclared
/// `object`/`id`/`expires_at` plus `truncation` (protocol §3, "Fake-server checklist").
fn encode(ev: &ServerEvent, n: u64, session_id: &str, expires_at: u64) -> Option<(Value, String)> {
    let mut v = serde_json::to_value(ev).ok()?;
    let obj = v.as_object_mut()?;
    obj.insert("event_id".into(), json!(format!("event_sim{n}")));
    if let Some(s) = obj.get_mut("session").and_then(Value::as_object_mut) {
        s.insert("object".into(), json!("realtime.session"));
        s.insert("id".into(), json!(session_id));
        s.insert("expires_at".into(), json!(expires_at));
        s.entry("truncation").or_insert(json!("auto"));
    }
    let text = serde_json::to_string(&v).ok()?;
    Some((v, text))
}

/// The GA defaults a live `session.created` shows (protocol §3, §6).
fn default_session() -> Session {
    Session {
        kind: SessionType::Realtime,
        model: Some("gpt-realtime".into()),
        output_modalities: Some(vec![Modality::Audio]),
        instructions: Some("You are a simulated voice agent.".into()),
        max_output_tokens: Some(MaxOutputTokens::Inf(realtime::Inf::Inf)),
        audio: Some(SessionAudio {
            input: Some(AudioInput {
                format: Some(AudioFormat::pcm24k()),
                noise_reduction: Some(None),
                transcription: Some(None),
                turn_detection: Some(Some(with_vad_defaults(TurnDetection::ServerVad {
                    threshold: None,
                    prefix_padding_ms: None,
                    silence_duration_ms: None,
                    idle_timeout_ms: None,
                    create_response: None,
                    interrupt_response: None,
                }))),
            }),
            output: Some(AudioOutput {
                format: Some(AudioFormat::pcm24k()),
                voice: Some(Voice::named("alloy")),
                speed: Some(1.0),
            }),
        }),
        tools: Some(Vec::new()),
        tool_choice: Some(ToolChoice::AUTO),
    }
}

/// Fills what the server reports for omitted VAD fields (live defaults: 0.5, 300, 200).
fn with_vad_defaults(td: TurnDetection) -> TurnDetection {
    match td {
        TurnDetection::ServerVad {
            threshold,
            prefix_padding_ms,
            silence_duration_ms,
            idle_timeout_ms,
            create_response,
            interrupt_response,
        } => TurnDetection::ServerVad {
            threshold: Some(threshold.unwrap_or(0.5)),
            prefix_padding_ms: Some(prefix_padding_ms.unwrap_or(300)),
            silence_duration_ms: Some(silence_duration_ms.unwrap_or(200)),
            idle_timeout_ms,
            create_response: Some(create_response.unwrap_or(true)),
            interrupt_response: Some(interrupt_response.unwrap_or(true)),
        },
        TurnDetection::SemanticVad {
            eagerness,
            create_response,
            interrupt_response,
        } => TurnDetection::SemanticVad {
            eagerness: Some(eagerness.unwrap_or(realtime::Eagerness::Auto)),
            create_response: Some(create_response.unwrap_or(true)),
            interrupt_response: Some(interrupt_response.unwrap_or(true)),
        },
    }
}

/// Merges the fields present in `new` into `cur` (absent = unchanged, protocol §2).
fn merge(cur: &mut Session, new: Session) {
    cur.kind = new.kind;
    if new.model.is_some() {
        cur.model = new.model;
    }
    if new.output_modalities.is_some() {
        cur.output_modalities = new.output_modalities;
    }
    if new.instructions.is_some() {
        cur.instructions = new.instructions;
    }
    if new.max_output_tokens.is_some() {
        cur.max_output_tokens = new.max_output_tokens;
    }
    if new.tools.is_some() {
        cur.tools = new.tools;
    }
    if new.tool_choice.is_some() {
        cur.tool_choice = new.tool_choice;
    }
    let Some(audio) = new.audio else { return };
    let ca = cur.audio.get_or_insert_with(SessionAudio::default);
    if let Some(i) = audio.input {
        let ci = ca.input.get_or_insert_with(AudioInput::default);
        if i.format.is_some() {
            ci.format = i.format;
        }
        if i.noise_reduction.is_some() {
            ci.noise_reduction = i.noise_reduction;
        }
        if i.transcription.is_some() {
            ci.transcription = i.transcription;
        }
        if let Some(td) = i.turn_detection {
            ci.turn_detection = Some(td.map(with_vad_defaults));
        }
    }
    if let Some(o) = audio.output {
        let co = ca.output.get_or_insert_with(AudioOutput::default);
        if o.format.is_some() {
            co.format = o.format;
        }
        if o.voice.is_some() {
            co.voice = o.voice;
        }
        if o.speed.is_some() {
            co.speed = o.speed;
        }
    }
}

fn input_format(s: &Session) -> AudioFormat {
    s.audio
        .as_ref()
        .and_then(|a| a.input.as_ref())
        .and_then(|i| i.format)
        .unwrap_or_default()
}

fn output_format(s: &Session) -> AudioFormat {
    s.audio
        .as_ref()
        .and_then(|a| a.output.as_ref())
        .and_then(|o| o.format)
        .unwrap_or_default()
}

fn voice(s: &Session) -> Option<&Voice> {
    s.audio
        .as_ref()
        .and_then(|a| a.output.as_ref())
        .and_then(|o| o.voice.as_ref())
}

/// `audio.input.transcription` is set (not absent, not `null`).
fn transcribes(s: &Session) -> bool {
    s.audio
        .as_ref()
        .and_then(|a| a.input.as_ref())
        .and_then(|i| i.transcription.as_ref())
        .is_some_and(Option::is_some)
}

fn turn_detection(s: &Session) -> Option<&TurnDetection> {
    s.audio
        .as_ref()
        .and_then(|a| a.input.as_ref())
        .and_then(|i| i.turn_detection.as_ref())
        .and_then(Option::as_ref)
}

/// Sample rate and VAD parameters for the session's input.
fn vad_params(s: &Session) -> (u32, f64, u64, u64) {
    let rate = match input_format(s) {
        AudioFormat::Pcm { rate } => rate,
        AudioFormat::Pcmu | AudioFormat::Pcma => 8_000,
    };
    match turn_detection(s) {
        Some(TurnDetection::ServerVad {
            threshold,
            prefix_padding_ms,
            silence_duration_ms,
            ..
        }) => (
            rate,
            threshold.unwrap_or(0.5),
            u64::from(prefix_padding_ms.unwrap_or(300)),
            u64::from(silence_duration_ms.unwrap_or(200)),
        ),
        // Semantic VAD approximated by energy with a longer hangover.
        _ => (rate, 0.5, 300, 500),
    }
}

/// The response in flight.
struct Active {
    /// Sends the cancel reason; taken once used.
    cancel: Option<oneshot::Sender<&'static str>>,
    task: JoinHandle<()>,
}

/// The id of the newest conversation item; responses append to it from their own task.
type LastItem = Arc<Mutex<Option<String>>>;

fn replace_last(last: &LastItem, id: String) -> Option<String> {
    match last.lock() {
        Ok(mut l) => l.replace(id),
        Err(poisoned) => poisoned.into_inner().replace(id),
    }
}

struct Conn {
    tx: mpsc::UnboundedSender<Out>,
    shared: Arc<Shared>,
    session: Session,
    vad: Vad,
    conv_id: String,
    next: u64,
    /// Bytes appended since the last commit or clear.
    buffered: u64,
    speech_item: Option<String>,
    last_item: LastItem,
    /// Responses each scenario agent has made (its next turn index).
    turns_taken: Vec<usize>,
    /// Set once assistant audio was sent: the voice is fixed from then on.
    audio_sent: Arc<AtomicBool>,
    /// True from `response.created` until just before `response.done`.
    busy: Arc<AtomicBool>,
    active: Option<Active>,
    /// This connection's number (ids carry it).
    seq: u64,
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(a) = self.active.take() {
            a.task.abort();
        }
    }
}

impl Conn {
    fn new(seq: u64, tx: mpsc::UnboundedSender<Out>, shared: Arc<Shared>) -> Self {
        let session = default_session();
        let (rate, th, pre, sil) = vad_params(&session);
        let agents = shared.scenario.as_ref().map_or(0, |s| s.agent_count());
        Self {
            tx,
            shared,
            vad: Vad::new(rate, th, pre, sil),
            session,
            conv_id: format!("conv_sim{seq}"),
            seq,
            next: 0,
            buffered: 0,
            speech_item: None,
            last_item: Arc::new(Mutex::new(None)),
            turns_taken: vec![0; agents],
            audio_sent: Arc::new(AtomicBool::new(false)),
            busy: Arc::new(AtomicBool::new(false)),
            active: None,
        }
    }

    fn send(&self, ev: ServerEvent) {
        let _ = self.tx.send(Out::Event(ev));
    }

    /// The scenario agent (or default) the current instructions select.
    fn speaker(&self) -> Option<Speaker> {
        let instructions = self.session.instructions.as_deref().unwrap_or("");
        self.shared.scenario.as_ref()?.speaker(instructions)
    }

    /// The turn the selected agent speaks next, without taking it.
    fn next_turn(&self) -> Option<&Turn> {
        let who = self.speaker()?;
        let nth = match who {
            Speaker::Agent(i) => self.turns_taken.get(i).copied().unwrap_or(0),
            Speaker::Default => 0,
        };
        self.shared.scenario.as_ref()?.turn(who, nth)
    }

    /// Takes the selected agent's next turn (past the end the last one repeats).
    fn take_turn(&mut self) -> Option<Turn> {
        let turn = self.next_turn().cloned();
        if let Some(Speaker::Agent(i)) = self.speaker() {
            if let Some(n) = self.turns_taken.get_mut(i) {
                *n += 1;
            }
        }
        turn
    }

    /// Ids are unique across connections, as the API's are (a client that reconnects must
    /// not mistake a new item for an old one).
    fn id(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}_sim{}x{:04}", self.seq, self.next)
    }

    /// The GA `error` event; the socket stays open.
    fn error(
        &self,
        code: Option<&str>,
        message: String,
        param: Option<&str>,
        event_id: Option<String>,
    ) {
        self.send(ServerEvent::Error(ErrorEvent {
            event_id: None,
            error: ErrorDetail {
                kind: Some(INVALID_REQUEST.into()),
                code: code.map(Into::into),
                message,
                param: param.map(Into::into),
                event_id,
            },
        }));
    }

    fn handle(&mut self, text: &str) {
        let raw_id = || {
            serde_json::from_str::<Value>(text)
                .ok()
                .and_then(|v| v.get("event_id")?.as_str().map(String::from))
        };
        let ev = match ClientEvent::parse(text) {
            Ok(ev) => ev,
            Err(ParseError::Json(e)) => {
                return self.error(
                    Some("invalid_json"),
                    format!("The event could not be parsed as JSON: {e}"),
                    None,
                    None,
                )
            }
            Err(ParseError::NotAnObject) => {
                return self.error(
                    Some("invalid_json"),
                    "Expected an object, but got a different JSON value.".into(),
                    None,
                    None,
                )
            }
            Err(ParseError::MissingType) => {
                return self.error(
                    Some("invalid_event"),
                    "The 'type' field is missing.".into(),
                    None,
                    raw_id(),
                )
            }
            Err(e) => {
                return self.error(Some("invalid_event"), e.to_string(), None, raw_id());
            }
        };
        let event_id = ev.event_id().map(String::from);
        match ev {
            ClientEvent::SessionUpdate(u) => self.session_update(u),
            ClientEvent::InputAudioBufferAppend(a) => self.append(&a.audio, event_id),
            ClientEvent::InputAudioBufferCommit(_) => self.manual_commit(event_id),
            ClientEvent::InputAudioBufferClear(_) => {
                self.buffered = 0;
                self.send(ServerEvent::InputAudioBufferCleared(EventIdOnly::default()));
            }
            ClientEvent::ConversationItemCreate(c) => {
                let id = self.id("item");
                let item = finished_item(c.item, id.clone());
                let last = replace_last(&self.last_item, id);
                let previous_item_id = c.previous_item_id.or(last);
                self.send(ServerEvent::ConversationItemAdded(ConversationItemEvent {
                    event_id: None,
                    previous_item_id: previous_item_id.clone(),
                    item: item.clone(),
                }));
                self.send(ServerEvent::ConversationItemDone(ConversationItemEvent {
                    event_id: None,
                    previous_item_id,
                    item,
                }));
            }
            ClientEvent::ConversationItemTruncate(t) => {
                self.send(ServerEvent::ConversationItemTruncated(
                    ConversationItemTruncated {
                        event_id: None,
                        item_id: t.item_id,
                        content_index: t.content_index,
                        audio_end_ms: t.audio_end_ms,
                    },
                ));
            }
            ClientEvent::ConversationItemDelete(d) => {
                self.send(ServerEvent::ConversationItemDeleted(ItemIdEvent {
                    event_id: None,
                    item_id: d.item_id,
                }));
            }
            ClientEvent::ResponseCreate(_) => {
                if self.busy.load(Ordering::SeqCst) {
                    self.error(
                        Some(codes::ACTIVE_RESPONSE),
                        "Conversation already has an active response in progress.".into(),
                        None,
                        event_id,
                    );
                } else {
                    self.start_response();
                }
            }
            ClientEvent::ResponseCancel(_) => {
                if !self.cancel("client_cancelled") {
                    self.error(
                        Some(codes::CANCEL_NOT_ACTIVE),
                        "Cancellation failed: no active response found.".into(),
                        None,
                        event_id,
                    );
                }
            }
            ClientEvent::Unknown { type_, .. } => self.error(
                Some("invalid_value"),
                format!("Invalid value: '{type_}'. Supported values are: {CLIENT_EVENT_TYPES}."),
                Some("type"),
                event_id,
            ),
        }
    }

    fn session_update(&mut self, u: SessionUpdate) {
        let new = u.session;
        let event_id = u.event_id;
        if new.kind != SessionType::Realtime {
            return self.error(
                Some("invalid_value"),
                "This simulator serves realtime sessions only.".into(),
                Some("session.type"),
                event_id,
            );
        }
        if let Some(audio) = &new.audio {
            let formats = [
                (
                    "session.audio.input.format.rate",
                    audio.input.as_ref().and_then(|i| i.format),
                ),
                (
                    "session.audio.output.format.rate",
                    audio.output.as_ref().and_then(|o| o.format),
                ),
            ];
            for (param, format) in formats {
                if let Some(AudioFormat::Pcm { rate }) = format {
                    if rate != PCM_RATE {
                        return self.error(
                            Some("invalid_value"),
                            format!("Invalid value: {rate}. Supported values are: {PCM_RATE}."),
                            Some(param),
                            event_id,
                        );
                    }
                }
            }
            let new_voice = audio.output.as_ref().and_then(|o| o.voice.as_ref());
            if let Some(v) = new_voice {
                if Some(v) != voice(&self.session) && self.audio_sent.load(Ordering::SeqCst) {
                    return self.error(
                        Some(codes::CANNOT_UPDATE_VOICE),
                        "Cannot update a conversation's voice if assistant audio is present."
                            .into(),
                        Some("session.audio.output.voice"),
                        event_id,
                    );
                }
            }
        }
        merge(&mut self.session, new);
        let (rate, th, pre, sil) = vad_params(&self.session);
        self.vad.reconfigure(rate, th, pre, sil);
        self.send(ServerEvent::SessionUpdated(SessionEvent {
            event_id: None,
            session: self.session.clone(),
        }));
    }

    fn append(&mut self, b64: &str, event_id: Option<String>) {
        let bytes = match base64::engine::general_purpose::STANDARD.decode(b64) {
            Ok(b) => b,
            Err(_) => {
                return self.error(
                    Some("invalid_value"),
                    "Invalid 'audio'. Expected base64-encoded audio.".into(),
                    Some("audio"),
                    event_id,
                )
            }
        };
        self.buffered += bytes.len() as u64;
        let Some(td) = turn_detection(&self.session).cloned() else {
            return;
        };
        let samples: Vec<i16> = match input_format(&self.session) {
            AudioFormat::Pcm { .. } => bytes
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect(),
            AudioFormat::Pcmu => bytes
                .iter()
                .map(|&b| codec::g711::ulaw_to_linear(b))
                .collect(),
            AudioFormat::Pcma => bytes
                .iter()
                .map(|&b| codec::g711::alaw_to_linear(b))
                .collect(),
        };
        for ev in self.vad.push(&samples) {
            match ev {
                VadEvent::Started { audio_start_ms } => {
                    let item_id = self.id("item");
                    self.speech_item = Some(item_id.clone());
                    self.send(ServerEvent::SpeechStarted(SpeechStarted {
                        event_id: None,
                        audio_start_ms,
                        item_id,
                    }));
                    if td.interrupts_response() {
                        self.cancel("turn_detected");
                    }
                }
                VadEvent::Stopped { audio_end_ms } => {
                    let item_id = match self.speech_item.take() {
                        Some(id) => id,
                        None => self.id("item"),
                    };
                    self.send(ServerEvent::SpeechStopped(SpeechStopped {
                        event_id: None,
                        audio_end_ms,
                        item_id: item_id.clone(),
                    }));
                    self.commit_item(item_id);
                    if td.creates_response() && !self.busy.load(Ordering::SeqCst) {
                        self.start_response();
                    }
                }
            }
        }
    }

    fn manual_commit(&mut self, event_id: Option<String>) {
        let ms = input_format(&self.session).ms_for_bytes(self.buffered);
        if ms < 100 {
            return self.error(
                Some(codes::COMMIT_EMPTY),
                format!(
                    "Error committing input audio buffer: buffer too small. Expected at least \
                     100ms of audio, but buffer only has {ms}.00ms of audio."
                ),
                None,
                event_id,
            );
        }
        let item_id = match self.speech_item.take() {
            Some(id) => id,
            None => self.id("item"),
        };
        self.commit_item(item_id);
    }

    /// `committed` then the user item (`added`, `done`) with the next turn's `heard` text (or a
    /// placeholder) as its transcript, and the transcription event when the session asks.
    fn commit_item(&mut self, item_id: String) {
        let seconds = input_format(&self.session).ms_for_bytes(self.buffered) as f64 / 1000.0;
        self.buffered = 0;
        let heard = self
            .next_turn()
            .and_then(|t| t.heard.clone())
            .unwrap_or_else(|| USER_TRANSCRIPT.into());
        let previous_item_id = replace_last(&self.last_item, item_id.clone());
        self.send(ServerEvent::InputAudioBufferCommitted(
            InputAudioBufferCommitted {
                event_id: None,
                previous_item_id: previous_item_id.clone(),
                item_id: item_id.clone(),
            },
        ));
        let item = Item::Message(MessageItem {
            id: Some(item_id.clone()),
            object: Some("realtime.item".into()),
            status: Some(ItemStatus::Completed),
            role: Role::User,
            content: vec![ContentPart::InputAudio {
                audio: None,
                transcript: Some(heard.clone()),
            }],
        });
        self.send(ServerEvent::ConversationItemAdded(ConversationItemEvent {
            event_id: None,
            previous_item_id: previous_item_id.clone(),
            item: item.clone(),
        }));
        self.send(ServerEvent::ConversationItemDone(ConversationItemEvent {
            event_id: None,
            previous_item_id,
            item,
        }));
        if transcribes(&self.session) {
            self.send(ServerEvent::InputTranscriptionCompleted(
                InputTranscriptionCompleted {
                    event_id: None,
                    item_id,
                    content_index: 0,
                    transcript: heard,
                    usage: Some(json!({"type": "duration", "seconds": seconds})),
                },
            ));
        }
    }

    /// Asks the active response to stop; false if there is none to cancel.
    fn cancel(&mut self, reason: &'static str) -> bool {
        if !self.busy.load(Ordering::SeqCst) {
            return false;
        }
        match self.active.as_mut().and_then(|a| a.cancel.take()) {
            Some(c) => c.send(reason).is_ok(),
            None => false,
        }
    }

    /// The next turn's audio in the session's output format, its transcript and call.
    fn line(&mut self, format: AudioFormat) -> Line {
        let Some(turn) = self.take_turn() else {
            return Line {
                audio: tone::render(format, RESPONSE_MS),
                transcript: ANSWER.into(),
                call: None,
                disconnect_after_ms: None,
            };
        };
        let audio = match &turn.speech {
            Speech::Tone { ms } => tone::render(format, *ms),
            Speech::Wav(samples) => speech::encode(format, samples).unwrap_or_else(|e| {
                // Unreachable for the formats GA has; keep the call alive with a tone.
                tracing::warn!(error = %e, "cannot encode scenario audio; playing a tone");
                tone::render(format, RESPONSE_MS)
            }),
        };
        let call = turn.call.map(|c| PendingCall {
            item_id: self.id("item"),
            call_id: self.id("call"),
            name: c.name,
            arguments: c.arguments,
        });
        Line {
            audio,
            transcript: turn.transcript,
            call,
            disconnect_after_ms: turn.disconnect_after_ms,
        }
    }

    fn start_response(&mut self) {
        let (cancel_tx, cancel_rx) = oneshot::channel();
        let format = output_format(&self.session);
        let line = self.line(format);
        let item_id = self.id("item");
        let speedup = self
            .shared
            .scenario
            .as_ref()
            .map_or(DEFAULT_SPEEDUP, |s| s.speedup());
        let script = Script {
            tx: self.tx.clone(),
            response_id: self.id("resp"),
            previous_item_id: replace_last(&self.last_item, item_id.clone()),
            item_id,
            conv_id: self.conv_id.clone(),
            format,
            voice: voice(&self.session).cloned(),
            busy: self.busy.clone(),
            audio_sent: self.audio_sent.clone(),
            last_item: self.last_item.clone(),
            pace: Duration::try_from_secs_f64(CHUNK_MS as f64 / 1000.0 / speedup)
                .unwrap_or(Duration::from_millis(CHUNK_MS / 2)),
            line,
        };
        self.busy.store(true, Ordering::SeqCst);
        let task = tokio::spawn(script.run(cancel_rx));
        if let Some(old) = self.active.replace(Active {
            cancel: Some(cancel_tx),
            task,
        }) {
            old.task.abort();
        }
    }
}

/// Server-side fields of an item the client created.
fn finished_item(item: Item, id: String) -> Item {
    let object = Some("realtime.item".to_string());
    match item {
        Item::Message(mut m) => {
            m.id = Some(id);
            m.object = object;
            m.status = Some(ItemStatus::Completed);
            Item::Message(m)
        }
        Item::FunctionCall(mut f) => {
            f.id = Some(id);
            f.object = object;
            f.status = Some(ItemStatus::Completed);
            Item::FunctionCall(f)
        }
        Item::FunctionCallOutput(mut f) => {
            f.id = Some(id);
            f.object = object;
            f.status = Some(ItemStatus::Completed);
            Item::FunctionCallOutput(f)
        }
    }
}

/// What one response says: audio in the session's output format, its transcript, and an
/// optional function call after it.
struct Line {
    audio: Vec<u8>,
    transcript: String,
    call: Option<PendingCall>,
    disconnect_after_ms: Option<u64>,
}

/// A `function_call` output item to stream after the audio (protocol §3 "Function-call turn").
struct PendingCall {
    item_id: String,
    call_id: String,
    name: String,
    arguments: String,
}

/// `s` in at most `n` pieces, split at char boundaries.
fn pieces(s: &str, n: usize) -> Vec<&str> {
    let size = s.len().div_ceil(n.max(1)).max(1);
    let mut out = Vec::new();
    let mut start = 0;
    while start < s.len() {
        let mut end = (start + size).min(s.len());
        while !s.is_char_boundary(end) {
            end += 1;
        }
        out.push(&s[start..end]);
        start = end;
    }
    out
}

/// One scripted response: the line's audio and transcript, then its function call.
struct Script {
    tx: mpsc::UnboundedSender<Out>,
    response_id: String,
    item_id: String,
    previous_item_id: Option<String>,
    conv_id: String,
    format: AudioFormat,
    voice: Option<Voice>,
    busy: Arc<AtomicBool>,
    audio_sent: Arc<AtomicBool>,
    last_item: LastItem,
    /// Wall-clock gap between audio deltas of `CHUNK_MS` each.
    pace: Duration,
    line: Line,
}

impl Script {
    fn send(&self, ev: ServerEvent) {
        let _ = self.tx.send(Out::Event(ev));
    }

    fn response(
        &self,
        status: ResponseStatus,
        status_details: Option<StatusDetails>,
        output: Vec<Item>,
        usage: Option<Usage>,
    ) -> Response {
        Response {
            id: self.response_id.clone(),
            object: Some("realtime.response".into()),
            status: Some(status),
            status_details,
            output,
            conversation_id: Some(self.conv_id.clone()),
            output_modalities: Some(vec![Modality::Audio]),
            max_output_tokens: Some(MaxOutputTokens::Inf(realtime::Inf::Inf)),
            audio: Some(ResponseAudio {
                output: ResponseAudioOutput {
                    format: Some(self.format),
                    voice: self.voice.clone(),
                },
            }),
            usage,
            metadata: None,
        }
    }

    fn item(&self, status: ItemStatus, transcript: Option<String>) -> Item {
        Item::Message(MessageItem {
            id: Some(self.item_id.clone()),
            object: Some("realtime.item".into()),
            status: Some(status),
            role: Role::Assistant,
            content: match transcript {
                None => Vec::new(),
                Some(t) => vec![ContentPart::OutputAudio {
                    audio: None,
                    transcript: Some(t),
                }],
            },
        })
    }

    fn delta(&self, delta: String) -> OutputDelta {
        OutputDelta {
            event_id: None,
            response_id: self.response_id.clone(),
            item_id: self.item_id.clone(),
            output_index: 0,
            content_index: 0,
            delta,
        }
    }

    fn part_done(&self, transcript: Option<String>) -> OutputPartDone {
        OutputPartDone {
            event_id: None,
            response_id: self.response_id.clone(),
            item_id: self.item_id.clone(),
            output_index: 0,
            content_index: 0,
            transcript,
            text: None,
        }
    }

    fn part_event(&self, transcript: String) -> ContentPartEvent {
        ContentPartEvent {
            event_id: None,
            response_id: self.response_id.clone(),
            item_id: self.item_id.clone(),
            output_index: 0,
            content_index: 0,
            part: ContentPart::Audio {
                transcript: Some(transcript),
            },
        }
    }

    fn output_item(&self, output_index: u32, item: Item) -> OutputItemEvent {
        OutputItemEvent {
            event_id: None,
            response_id: self.response_id.clone(),
            output_index,
            item,
        }
    }

    fn usage(&self, audio_ms: u64, words: u64, argument_bytes: u64) -> Usage {
        let (in_text, in_audio) = (40, 20);
        let (out_text, out_audio) = (words * 2 + argument_bytes / 4, audio_ms / 50);
        Usage {
            total_tokens: Some(in_text + in_audio + out_text + out_audio),
            input_tokens: Some(in_text + in_audio),
            output_tokens: Some(out_text + out_audio),
            input_token_details: Some(InputTokenDetails {
                text_tokens: Some(in_text),
                audio_tokens: Some(in_audio),
                image_tokens: Some(0),
                cached_tokens: Some(0),
                cached_tokens_details: None,
            }),
            output_token_details: Some(TokenDetails {
                text_tokens: Some(out_text),
                audio_tokens: Some(out_audio),
                image_tokens: None,
            }),
        }
    }

    async fn run(self, mut cancel: oneshot::Receiver<&'static str>) {
        self.send(ServerEvent::ResponseCreated(ResponseEvent {
            event_id: None,
            response: self.response(ResponseStatus::InProgress, None, Vec::new(), None),
        }));
        let added = self.item(ItemStatus::InProgress, None);
        self.send(ServerEvent::OutputItemAdded(
            self.output_item(0, added.clone()),
        ));
        self.send(ServerEvent::ConversationItemAdded(ConversationItemEvent {
            event_id: None,
            previous_item_id: self.previous_item_id.clone(),
            item: added,
        }));
        self.send(ServerEvent::ContentPartAdded(
            self.part_event(String::new()),
        ));

        let audio = &self.line.audio;
        let per_chunk = (self.format.bytes_per_ms() * CHUNK_MS) as usize;
        let chunks = audio.len().div_ceil(per_chunk).max(1);
        // Words are spread over the chunks, each sent with (before) the audio that says it.
        let words: Vec<&str> = self.line.transcript.split_whitespace().collect();
        let mut said = String::new();
        let mut sent_ms = 0;
        let mut words_sent = 0usize;
        for (i, chunk) in audio.chunks(per_chunk).enumerate() {
            tokio::select! {
                reason = &mut cancel => {
                    if let Ok(reason) = reason {
                        self.finish_cancelled(reason, said, sent_ms, words_sent as u64);
                    }
                    return;
                }
                _ = tokio::time::sleep(self.pace) => {}
            }
            let upto = ((i + 1) * words.len()).div_ceil(chunks).min(words.len());
            if upto > words_sent {
                let mut delta = words[words_sent..upto].join(" ");
                if !said.is_empty() {
                    delta.insert(0, ' ');
                }
                said.push_str(&delta);
                words_sent = upto;
                self.send(ServerEvent::OutputAudioTranscriptDelta(self.delta(delta)));
            }
            let b64 = base64::engine::general_purpose::STANDARD.encode(chunk);
            self.send(ServerEvent::OutputAudioDelta(self.delta(b64)));
            self.audio_sent.store(true, Ordering::SeqCst);
            sent_ms += self.format.ms_for_bytes(chunk.len() as u64);
            if self
                .line
                .disconnect_after_ms
                .is_some_and(|at| sent_ms >= at)
            {
                // Test hook: the socket dies mid-response, as on a network failure.
                let _ = self.tx.send(Out::Drop);
                return;
            }
        }
        if words_sent < words.len() {
            let mut delta = words[words_sent..].join(" ");
            if !said.is_empty() {
                delta.insert(0, ' ');
            }
            said.push_str(&delta);
            words_sent = words.len();
            self.send(ServerEvent::OutputAudioTranscriptDelta(self.delta(delta)));
        }
        self.send(ServerEvent::OutputAudioDone(self.part_done(None)));
        self.send(ServerEvent::OutputAudioTranscriptDone(
            self.part_done(Some(said.clone())),
        ));
        self.send(ServerEvent::ContentPartDone(self.part_event(said.clone())));
        let done = self.item(ItemStatus::Completed, Some(said));
        self.send(ServerEvent::OutputItemDone(
            self.output_item(0, done.clone()),
        ));
        self.send(ServerEvent::ConversationItemDone(ConversationItemEvent {
            event_id: None,
            previous_item_id: self.previous_item_id.clone(),
            item: done.clone(),
        }));
        let mut output = vec![done];
        let mut argument_bytes = 0;
        if let Some(call) = &self.line.call {
            argument_bytes = call.arguments.len() as u64;
            output.push(self.function_call(call));
        }
        let usage = self.usage(sent_ms, words_sent as u64, argument_bytes);
        self.busy.store(false, Ordering::SeqCst);
        self.send(ServerEvent::ResponseDone(ResponseEvent {
            event_id: None,
            response: self.response(ResponseStatus::Completed, None, output, Some(usage)),
        }));
    }

    /// The `function_call` item at output index 1, streamed as the API does (protocol §3
    /// "Function-call turn"); returns the finished item for `response.done`.
    fn function_call(&self, call: &PendingCall) -> Item {
        let item = |status, arguments: &str| {
            Item::FunctionCall(FunctionCallItem {
                id: Some(call.item_id.clone()),
                object: Some("realtime.item".into()),
                status: Some(status),
                name: Some(call.name.clone()),
                call_id: Some(call.call_id.clone()),
                arguments: Some(arguments.to_string()),
            })
        };
        let added = item(ItemStatus::InProgress, "");
        let previous_item_id = Some(self.item_id.clone());
        replace_last(&self.last_item, call.item_id.clone());
        self.send(ServerEvent::OutputItemAdded(
            self.output_item(1, added.clone()),
        ));
        self.send(ServerEvent::ConversationItemAdded(ConversationItemEvent {
            event_id: None,
            previous_item_id: previous_item_id.clone(),
            item: added,
        }));
        for delta in pieces(&call.arguments, ARGUMENT_DELTAS) {
            self.send(ServerEvent::FunctionCallArgumentsDelta(
                FunctionCallArgumentsDelta {
                    event_id: None,
                    response_id: self.response_id.clone(),
                    item_id: call.item_id.clone(),
                    output_index: 1,
                    call_id: call.call_id.clone(),
                    delta: delta.to_string(),
                },
            ));
        }
        self.send(ServerEvent::FunctionCallArgumentsDone(
            FunctionCallArgumentsDone {
                event_id: None,
                response_id: self.response_id.clone(),
                item_id: call.item_id.clone(),
                output_index: 1,
                call_id: call.call_id.clone(),
                name: Some(call.name.clone()),
                arguments: call.arguments.clone(),
            },
        ));
        let done = item(ItemStatus::Completed, &call.arguments);
        self.send(ServerEvent::OutputItemDone(
            self.output_item(1, done.clone()),
        ));
        self.send(ServerEvent::ConversationItemDone(ConversationItemEvent {
            event_id: None,
            previous_item_id,
            item: done.clone(),
        }));
        done
    }

    /// `response.done{status:"cancelled"}` after closing the item as incomplete.
    fn finish_cancelled(&self, reason: &'static str, said: String, sent_ms: u64, words: u64) {
        let item = self.item(ItemStatus::Incomplete, Some(said));
        self.send(ServerEvent::OutputItemDone(
            self.output_item(0, item.clone()),
        ));
        self.send(ServerEvent::ConversationItemDone(ConversationItemEvent {
            event_id: None,
            previous_item_id: self.previous_item_id.clone(),
            item: item.clone(),
        }));
        self.busy.store(false, Ordering::SeqCst);
        self.send(ServerEvent::ResponseDone(ResponseEvent {
            event_id: None,
            response: self.response(
                ResponseStatus::Cancelled,
                Some(StatusDetails {
                    kind: Some("cancelled".into()),
                    reason: Some(reason.into()),
                    error: None,
                }),
                vec![item],
                Some(self.usage(sent_ms, words, 0)),
            ),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::pieces;

    #[test]
    fn arguments_split_at_char_boundaries_and_rejoin() {
        let s = r#"{"summary":"café ☕ bill","n":1}"#;
        let p = pieces(s, 3);
        assert!(p.len() <= 3 && p.len() >= 2, "{p:?}");
        assert_eq!(p.concat(), s);
        assert_eq!(pieces("", 3), Vec::<&str>::new());
        assert_eq!(pieces("ab", 3), ["a", "b"]);
    }
}
