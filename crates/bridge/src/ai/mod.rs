//! One call's Realtime session (issue 5): a WebSocket to the built-in simulator or the API,
//! opened while the SIP call is being answered. It streams the caller's 24 kHz frames as
//! `input_audio_buffer.append`, plays `response.output_audio.delta` through the call's playout
//! buffer, and on barge-in flushes playout and truncates the item at what the caller heard.
//!
//! The socket is not the call: if it dies, the caller hears a short filler and then silence,
//! the session reconnects with backoff, re-sends the full session config, restores the
//! conversation (summary + recent turns as items) and carries on. Caller audio waits in a
//! bounded queue that drops its oldest frames when the socket stalls; every drop is counted.

mod call;
mod connect;
pub mod context;
pub mod log;
pub mod outbox;
pub mod uplink;
pub mod wire;

pub use call::{base_config, Agents, CallHooks, NoHooks, ToolCall, ToolFuture, ToolRunner};
pub use connect::{request, tls_config, url_with_model, ws_config, Auth, ConnectError};
pub use log::EventLog;

use crate::media::{CallerSink, MediaCmd, MediaHandle};
use call::{CallAgents, Internal};
use codec::Frame;
use context::Context;
use futures_util::stream::SplitStream;
use futures_util::{SinkExt, StreamExt};
use outbox::Outbox;
use realtime::{ClientEvent, Item, ServerEvent, SessionConfig, Tracker};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, info, warn};
use uplink::Uplink;

/// "One moment, please." (eSpeak NG, 24 kHz s16le; fixtures/audio/SOURCE.md): what the caller
/// hears when the Realtime socket dies mid-call, before silence.
static FILLER: &[u8] = include_bytes!("../../../../fixtures/audio/filler-one-moment-24k.s16le");

/// The filler as 24 kHz samples.
pub fn filler_samples() -> Vec<i16> {
    FILLER
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// Where and how to reach the Realtime side. `Debug` never shows the credential.
#[derive(Clone, Debug)]
pub struct AiSettings {
    /// `ws://` (simulator) or `wss://` (API).
    pub url: String,
    /// Added as `?model=` unless the URL names a model or Azure deployment.
    pub model: String,
    pub auth: Option<Auth>,
    pub instructions: String,
    /// Roots for `wss://`.
    pub tls: Arc<rustls::ClientConfig>,
    /// Every client event sent, as JSONL with audio elided (conformance tests, debugging).
    pub event_log: Option<Arc<EventLog>>,
    pub counters: Arc<AiCounters>,
    /// First reconnect delay; doubles per failed attempt up to `reconnect_max` (±25% jitter).
    pub reconnect_initial: Duration,
    pub reconnect_max: Duration,
    /// Caller audio frames (20 ms) that may wait for a stalled socket before the oldest drop.
    pub audio_queue_frames: usize,
    /// 20 ms frames per `input_audio_buffer.append` (2: 40 ms, as the Agents SDK sends; fewer
    /// WebSocket writes per call for at most 20 ms more delay).
    pub append_frames: u32,
    /// 20 ms frames per append between turns (5: 100 ms), when the caller has been quiet for
    /// a second and the server's VAD hears no speech: fewer writes while nothing waits on
    /// the VAD. Sound, or the server's `speech_started`, goes back to `append_frames` at once
    /// (see [`uplink`]).
    pub idle_append_frames: u32,
    /// The agent speaks first (`response.create` once the call's media starts), as a contact
    /// center greets; off: it waits for the caller.
    pub greet: bool,
    /// The agents file with its runtime (slots, tools, hooks): handoffs inside the call.
    /// `None`: one agent with `instructions` and no tools.
    pub agents: Option<Agents>,
    /// Operator option (`--realtime-audio g711`): G.711 calls talk `audio/pcmu`/`audio/pcma`
    /// to the model instead of 24 kHz PCM.
    pub g711_passthrough: bool,
    /// This call's format on the socket (set per call from the negotiated codec, see
    /// [`wire::format_for_call`]); input and output are always the same.
    pub audio_format: realtime::AudioFormat,
}

impl AiSettings {
    /// Defaults: model `gpt-realtime`, no credential, Mozilla roots, reconnect 250 ms .. 5 s,
    /// 1 s of queued caller audio.
    pub fn new(
        url: impl Into<String>,
        instructions: impl Into<String>,
    ) -> Result<Self, ConnectError> {
        Ok(AiSettings {
            url: url.into(),
            model: "gpt-realtime".into(),
            auth: None,
            instructions: instructions.into(),
            tls: tls_config(None)?,
            event_log: None,
            counters: Arc::new(AiCounters::default()),
            reconnect_initial: Duration::from_millis(250),
            reconnect_max: Duration::from_secs(5),
            audio_queue_frames: 50,
            append_frames: 2,
            idle_append_frames: 5,
            greet: true,
            agents: None,
            g711_passthrough: false,
            audio_format: realtime::AudioFormat::pcm24k(),
        })
    }
}

/// Process-wide Realtime counters (admin `/stats`, later Prometheus).
#[derive(Debug, Default)]
pub struct AiCounters {
    pub sessions_opened: AtomicU64,
    pub connect_failures: AtomicU64,
    pub socket_losses: AtomicU64,
    pub reconnects: AtomicU64,
    pub audio_frames_sent: AtomicU64,
    pub audio_frames_dropped: AtomicU64,
    pub server_errors: AtomicU64,
    pub unknown_events: AtomicU64,
    pub barge_ins: AtomicU64,
    pub truncates: AtomicU64,
    /// Token usage from `response.done` (input / output, and their audio part).
    pub input_tokens: AtomicU64,
    pub output_tokens: AtomicU64,
    pub input_audio_tokens: AtomicU64,
    pub output_audio_tokens: AtomicU64,
}

/// A copy of [`AiCounters`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct AiStats {
    pub sessions_opened: u64,
    pub connect_failures: u64,
    pub socket_losses: u64,
    pub reconnects: u64,
    pub audio_frames_sent: u64,
    pub audio_frames_dropped: u64,
    pub server_errors: u64,
    pub unknown_events: u64,
    pub barge_ins: u64,
    pub truncates: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub input_audio_tokens: u64,
    pub output_audio_tokens: u64,
}

impl AiCounters {
    pub fn snapshot(&self) -> AiStats {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        AiStats {
            sessions_opened: g(&self.sessions_opened),
            connect_failures: g(&self.connect_failures),
            socket_losses: g(&self.socket_losses),
            reconnects: g(&self.reconnects),
            audio_frames_sent: g(&self.audio_frames_sent),
            audio_frames_dropped: g(&self.audio_frames_dropped),
            server_errors: g(&self.server_errors),
            unknown_events: g(&self.unknown_events),
            barge_ins: g(&self.barge_ins),
            truncates: g(&self.truncates),
            input_tokens: g(&self.input_tokens),
            output_tokens: g(&self.output_tokens),
            input_audio_tokens: g(&self.input_audio_tokens),
            output_audio_tokens: g(&self.output_audio_tokens),
        }
    }
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// The call's media, handed over once the call is answered.
pub struct MediaLink {
    pub frames: mpsc::Receiver<Frame>,
    pub cmds: crate::media::MediaCommands,
}

impl MediaLink {
    /// Take the media's frames and a command sender (`None` if someone took the frames).
    pub fn from_handle(media: &mut MediaHandle) -> Option<MediaLink> {
        Some(MediaLink {
            frames: media.frames.take()?,
            cmds: media.commands(),
        })
    }
}

/// A started session: its task, where to hand it the media, where to send DTMF digits.
pub struct Spawned {
    pub task: JoinHandle<()>,
    pub link: oneshot::Sender<MediaLink>,
    pub dtmf: mpsc::UnboundedSender<char>,
}

/// Start a call's session now (while the call is being answered); hand it the media through
/// `link` once media starts. Dropping `link` before that ends the task. `caller` is the
/// caller's identity (cross-call memory).
pub fn spawn(settings: AiSettings, call_id: String, caller: String) -> Spawned {
    let (tx, rx) = oneshot::channel();
    let (dtmf, dtmf_rx) = mpsc::unbounded_channel();
    Spawned {
        task: {
            // One span per call: every line the session logs carries its Call-ID.
            let span = tracing::info_span!("call", call_id = %call_id);
            tokio::spawn(tracing::Instrument::instrument(
                run(settings, rx, dtmf_rx, call_id, caller),
                span,
            ))
        },
        link: tx,
        dtmf,
    }
}

/// Exponential backoff with jitter, deterministic per call.
struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
    rng: u64,
}

impl Backoff {
    fn new(initial: Duration, max: Duration, call_id: &str) -> Self {
        // FNV-1a of the Call-ID: calls that lost the same server do not reconnect in lockstep.
        let rng = call_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        }) | 1;
        Backoff {
            initial,
            max,
            attempt: 0,
            rng,
        }
    }

    fn next_delay(&mut self) -> Duration {
        let base = self
            .initial
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(self.max);
        self.attempt += 1;
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        // 75% .. 125% of the base.
        let permille = 750 + (self.rng % 501);
        base.mul_f64(permille as f64 / 1000.0)
    }

    fn reset(&mut self) {
        self.attempt = 0;
    }
}

enum End {
    /// The call's media ended: the session is over.
    CallEnded,
    /// The socket died; `speaking` is the assistant item the caller was hearing, if any.
    Lost { speaking: Option<String> },
}

/// One open connection. Caller audio reaches its outbox through the call's [`Uplink`].
struct Live {
    outbox: Arc<Outbox>,
    writer: JoinHandle<()>,
    stream: SplitStream<connect::Ws>,
    tracker: Tracker,
    /// Model audio from the socket's format to 24 kHz.
    wire: wire::WireAudio,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").finish_non_exhaustive()
    }
}

impl Live {
    fn send(&mut self, ev: &ClientEvent) {
        self.tracker.on_client_event(ev);
        match ev.to_json() {
            Ok(json) => self.outbox.push_control(json),
            Err(e) => warn!(error = %e, "client event not encodable"),
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.outbox.close();
        self.writer.abort();
    }
}

fn session_config(settings: &AiSettings) -> Result<SessionConfig, realtime::ConfigError> {
    SessionConfig::builder()
        .model(settings.model.clone())
        .instructions(settings.instructions.clone())
        .input_format(settings.audio_format)
        .output_format(settings.audio_format)
        .build()
}

/// Connect and configure. With `restore`, give the new session the conversation so far and,
/// if the caller was hearing an answer when the old socket died, ask for it to continue.
async fn open(
    settings: &AiSettings,
    call_id: &str,
    config: &SessionConfig,
    restore: Option<(&Context, Option<&str>)>,
) -> Result<Live, ConnectError> {
    let ws = connect::connect(
        &settings.url,
        &settings.model,
        settings.auth.as_ref(),
        &settings.tls,
    )
    .await?;
    let (mut sink, stream) = ws.split();
    let outbox = Arc::new(Outbox::new(settings.audio_queue_frames));
    let writer = {
        let outbox = outbox.clone();
        let log = settings.event_log.clone();
        let counters = settings.counters.clone();
        tokio::spawn(async move {
            while let Some(mut m) = outbox.pop().await {
                // The text moves into the frame (no copy) unless the event log still needs it.
                let text = if log.is_some() {
                    Message::text(m.text.as_str())
                } else {
                    Message::text(std::mem::take(&mut m.text))
                };
                if sink.send(text).await.is_err() {
                    return;
                }
                bump(&counters.audio_frames_sent, u64::from(m.frames));
                if let Some(log) = &log {
                    log.record(&m);
                }
            }
            let _ = sink.close().await;
        })
    };
    let mut live = Live {
        outbox,
        writer,
        stream,
        tracker: Tracker::new(config),
        wire: wire::WireAudio::for_format(config.input_format()),
    };
    // The full intended config every time: nothing silently resets (protocol §2).
    live.send(&config.update_event());
    if let Some((ctx, speaking)) = restore {
        let interrupted = speaking.and_then(|id| ctx.text_of(id));
        let items = ctx.restore_items(interrupted);
        let n = items.len();
        for item in items {
            live.send(&ClientEvent::create_item(item));
        }
        if interrupted.is_some_and(|t| !t.is_empty()) && live.tracker.may_create_response() {
            live.send(&ClientEvent::create_response(None));
        }
        info!(%call_id, items = n, resumed = interrupted.is_some(), "Realtime session restored");
    }
    bump(&settings.counters.sessions_opened, 1);
    Ok(live)
}

/// The call's session until its media ends.
pub async fn run(
    settings: AiSettings,
    link: oneshot::Receiver<MediaLink>,
    mut dtmf: mpsc::UnboundedReceiver<char>,
    call_id: String,
    caller: String,
) {
    let counters = settings.counters.clone();
    let mut ctx = Context::default();
    let mut backoff = Backoff::new(settings.reconnect_initial, settings.reconnect_max, &call_id);
    let (internal_tx, mut internal_rx) = mpsc::unbounded_channel();
    let mut agents = match &settings.agents {
        Some(a) => {
            match CallAgents::new(a.clone(), &settings, call_id.clone(), caller, internal_tx).await
            {
                Ok(c) => Some(c),
                Err(e) => {
                    warn!(%call_id, error = %e, "agents session config; one plain agent instead");
                    None
                }
            }
        }
        None => None,
    };
    let config_now = |agents: &Option<CallAgents>| -> Option<SessionConfig> {
        match agents {
            Some(a) => Some(a.router.session_config()),
            None => session_config(&settings).ok(),
        }
    };
    // Open while the call is answered: the socket and session.update race the 200/ACK.
    let first = match config_now(&agents) {
        Some(config) => open(&settings, &call_id, &config, None).await,
        None => Err(ConnectError::Url("no valid session config".into())),
    };
    let Ok(MediaLink { mut frames, cmds }) = link.await else {
        if let Some(a) = agents.as_mut() {
            a.finish();
        }
        return;
    };
    // The caller's audio is encoded and queued on the media thread from now on.
    let uplink = Arc::new(Uplink::new(
        settings.audio_format,
        settings.append_frames,
        settings.idle_append_frames,
        counters.clone(),
    ));
    let _ = cmds
        .send(MediaCmd::Attach(CallerSink(uplink.clone())))
        .await;
    let mut live = match first {
        Ok(mut l) => {
            info!(%call_id, url = %settings.url, "Realtime session open");
            if settings.greet {
                match agents.as_mut() {
                    Some(a) => a.respond(&mut l, None),
                    None if l.tracker.may_create_response() => {
                        l.send(&ClientEvent::create_response(None))
                    }
                    None => {}
                }
            }
            Some(l)
        }
        Err(e) => {
            bump(&counters.connect_failures, 1);
            warn!(%call_id, error = %e, "Realtime connect failed; retrying, the call stays up");
            None
        }
    };
    let mut speaking: Option<String> = None;
    loop {
        if let Some(l) = live.take() {
            let io = CallIo {
                frames: &mut frames,
                uplink: &uplink,
                cmds: &cmds,
                dtmf: &mut dtmf,
                internal: &mut internal_rx,
            };
            let end = drive(l, io, &mut ctx, agents.as_mut(), &counters, &call_id).await;
            uplink.detach();
            match end {
                End::CallEnded => break,
                End::Lost { speaking: s } => {
                    bump(&counters.socket_losses, 1);
                    warn!(%call_id, "Realtime socket lost mid-call; the call stays up, reconnecting");
                    // What already arrived keeps playing; then a short filler, then silence.
                    let _ = cmds
                        .send(MediaCmd::Play {
                            item: "filler".into(),
                            samples: filler_samples(),
                            last: true,
                        })
                        .await;
                    speaking = s;
                }
            }
        }
        let delay = backoff.next_delay();
        if !idle(&mut frames, delay, &counters).await {
            break;
        }
        let Some(config) = config_now(&agents) else {
            break;
        };
        match open(
            &settings,
            &call_id,
            &config,
            Some((&ctx, speaking.as_deref())),
        )
        .await
        {
            Ok(mut l) => {
                bump(&counters.reconnects, 1);
                info!(%call_id, "Realtime session reconnected");
                backoff.reset();
                speaking = None;
                if let Some(a) = agents.as_mut() {
                    a.flush(&mut l);
                }
                live = Some(l);
            }
            Err(e) => {
                bump(&counters.connect_failures, 1);
                warn!(%call_id, error = %e, next_in = ?delay, "Realtime reconnect failed");
            }
        }
    }
    if let Some(a) = agents.as_mut() {
        a.finish();
    }
    info!(%call_id, "Realtime session closed");
}

/// The call's inputs besides the socket.
struct CallIo<'a> {
    /// Closes when the call's media ends; carries caller frames only until the uplink is
    /// attached on the media thread.
    frames: &'a mut mpsc::Receiver<Frame>,
    uplink: &'a Uplink,
    cmds: &'a crate::media::MediaCommands,
    dtmf: &'a mut mpsc::UnboundedReceiver<char>,
    internal: &'a mut mpsc::UnboundedReceiver<Internal>,
}

/// Wait `delay` while the socket is down; the caller's audio meanwhile is dropped (counted).
/// False if the call ended.
async fn idle(frames: &mut mpsc::Receiver<Frame>, delay: Duration, counters: &AiCounters) -> bool {
    let sleep = tokio::time::sleep(delay);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            _ = &mut sleep => return true,
            f = frames.recv() => match f {
                Some(_) => bump(&counters.audio_frames_dropped, 1),
                None => return false,
            },
        }
    }
}

async fn drive(
    mut live: Live,
    io: CallIo<'_>,
    ctx: &mut Context,
    mut agents: Option<&mut CallAgents>,
    counters: &AiCounters,
    call_id: &str,
) -> End {
    let CallIo {
        frames,
        uplink,
        cmds,
        dtmf,
        internal,
    } = io;
    let mut attached: Option<Arc<Outbox>> = None;
    loop {
        // Appends go to whichever connection is live now (a handoff may have switched it).
        if !attached
            .as_ref()
            .is_some_and(|o| Arc::ptr_eq(o, &live.outbox))
        {
            uplink.attach(&live.outbox);
            attached = Some(live.outbox.clone());
        }
        live.tracker.on_audio_appended(uplink.take_appended());
        let deadline = agents
            .as_ref()
            .and_then(|a| a.router.next_deadline())
            .map(tokio::time::Instant::from_std);
        tokio::select! {
            _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => {
                if let Some(a) = agents.as_deref_mut() {
                    let actions = a.router.poll(std::time::Instant::now());
                    a.apply(&mut live, actions);
                }
            }
            Some(digit) = dtmf.recv() => {
                if let Some(a) = agents.as_deref_mut() {
                    a.router.on_dtmf(digit);
                }
            }
            Some(msg) = internal.recv() => {
                if let Some(a) = agents.as_deref_mut() {
                    match msg {
                        Internal::ToolDone { call_id: tool_call, result } => {
                            let actions = a.router.on_tool_result(&tool_call, result);
                            a.apply(&mut live, actions);
                        }
                        Internal::FirstAudio(t) => {
                            a.router.on_first_audio(t);
                            // The new agent is heard: the old session's audio has all played.
                            if a.retiring.take().is_some() {
                                info!(%call_id, "previous agent's session closed");
                            }
                        }
                        Internal::SessionOpened(Ok(next)) => {
                            a.pending_live = Some(*next);
                            let actions = a.router.on_session_ready(std::time::Instant::now());
                            a.apply(&mut live, actions);
                        }
                        Internal::SessionOpened(Err(e)) => {
                            warn!(%call_id, error = %e, "the next agent's session failed to open");
                            let actions = a.router.on_session_failed(std::time::Instant::now(), &e);
                            a.apply(&mut live, actions);
                        }
                    }
                }
            }
            frame = frames.recv() => {
                let Some(frame) = frame else {
                    // Let queued control events go, then close the socket politely.
                    live.outbox.close();
                    let _ = tokio::time::timeout(Duration::from_secs(1), &mut live.writer).await;
                    return End::CallEnded;
                };
                // Decoded before the media thread took the uplink.
                if crate::media::CallerAudio::frame(uplink, &frame) {
                    crate::media::CallerAudio::hand_over(uplink);
                }
            }
            _ = &mut live.writer => {
                return End::Lost { speaking: speaking_at_loss(&live, cmds).await };
            }
            msg = live.stream.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                        return End::Lost { speaking: speaking_at_loss(&live, cmds).await };
                    }
                    Some(Ok(_)) => continue,
                };
                match ServerEvent::parse(text.as_str()) {
                    Ok(ev) => {
                        match &ev {
                            ServerEvent::SpeechStarted(_) => uplink.set_caller_speaking(true),
                            ServerEvent::SpeechStopped(_) => uplink.set_caller_speaking(false),
                            _ => {}
                        }
                        on_server_event(&mut live, ev, cmds, ctx, agents.as_deref_mut(), counters, call_id)
                            .await
                    }
                    Err(e) => {
                        bump(&counters.unknown_events, 1);
                        debug!(%call_id, error = %e, "unparsable server event");
                    }
                }
            }
        }
    }
}

/// The assistant item the caller was in the middle of when the socket died: a response still
/// streaming, or audio received but not yet all played.
async fn speaking_at_loss(live: &Live, cmds: &crate::media::MediaCommands) -> Option<String> {
    let item = live.tracker.playing_item()?;
    if live.tracker.active_response_id().is_some() {
        return Some(item.to_string());
    }
    let state = live.tracker.item(item)?;
    let (tx, rx) = oneshot::channel();
    cmds.send(MediaCmd::PlayedMs(item.into(), tx)).await.ok()?;
    let played = u64::from(rx.await.ok()?);
    (!state.audio_done() || played + 20 < state.received_ms()).then(|| item.to_string())
}

async fn on_server_event(
    live: &mut Live,
    ev: ServerEvent,
    cmds: &crate::media::MediaCommands,
    ctx: &mut Context,
    agents: Option<&mut CallAgents>,
    counters: &AiCounters,
    call_id: &str,
) {
    live.tracker.on_server_event(&ev);
    if let Some(a) = agents {
        on_agent_event(live, &ev, cmds, a).await;
    }
    match ev {
        ServerEvent::OutputAudioDelta(d) => match d.decode_audio() {
            Ok(bytes) => {
                let samples = live.wire.to_samples(&bytes);
                let _ = cmds
                    .send(MediaCmd::Play {
                        item: d.item_id.as_str().into(),
                        samples,
                        last: false,
                    })
                    .await;
            }
            Err(e) => debug!(%call_id, error = %e, "undecodable audio delta"),
        },
        ServerEvent::OutputAudioDone(d) => {
            let _ = cmds
                .send(MediaCmd::Play {
                    item: d.item_id.as_str().into(),
                    samples: Vec::new(),
                    last: true,
                })
                .await;
        }
        ServerEvent::OutputAudioTranscriptDelta(d) => ctx.on_assistant_delta(&d.item_id, &d.delta),
        ServerEvent::OutputAudioTranscriptDone(d) => {
            if let Some(t) = &d.transcript {
                ctx.set_text(&d.item_id, t);
            }
        }
        ServerEvent::OutputItemAdded(o) => {
            if let Item::Message(m) = &o.item {
                if let Some(id) = &m.id {
                    ctx.on_assistant_started(id);
                }
            }
        }
        ServerEvent::ConversationItemAdded(e)
        | ServerEvent::ConversationItemDone(e)
        | ServerEvent::ConversationItemCreated(e) => ctx.on_item(&e.item),
        ServerEvent::InputTranscriptionCompleted(t) => ctx.set_text(&t.item_id, &t.transcript),
        ServerEvent::SpeechStarted(_) => {
            bump(&counters.barge_ins, 1);
            // Barge-in: silence the caller's ear at once, then make the model's memory match
            // what was heard.
            let (rtx, rrx) = oneshot::channel();
            let _ = cmds.send(MediaCmd::Flush(rtx)).await;
            if let Ok(report) = rrx.await {
                for (item, ms) in &report.played {
                    live.tracker.on_audio_played(item, u64::from(*ms));
                }
                if let Some(item) = live.tracker.playing_item().map(str::to_string) {
                    let played = report
                        .played
                        .iter()
                        .find(|(i, _)| **i == *item)
                        .map_or(0, |(_, ms)| u64::from(*ms));
                    if let Some(truncate) = live.tracker.truncate_for_barge_in(&item, played) {
                        bump(&counters.truncates, 1);
                        live.send(&truncate);
                    }
                }
            }
        }
        ServerEvent::ResponseDone(r) => {
            if let Some(u) = &r.response.usage {
                bump(&counters.input_tokens, u.input_tokens.unwrap_or(0));
                bump(&counters.output_tokens, u.output_tokens.unwrap_or(0));
                let audio = |d: Option<u64>| d.unwrap_or(0);
                bump(
                    &counters.input_audio_tokens,
                    audio(u.input_token_details.as_ref().and_then(|d| d.audio_tokens)),
                );
                bump(
                    &counters.output_audio_tokens,
                    audio(u.output_token_details.as_ref().and_then(|d| d.audio_tokens)),
                );
            }
        }
        ServerEvent::Error(e) => {
            bump(&counters.server_errors, 1);
            warn!(%call_id, error = ?e.error, "Realtime error event");
        }
        ServerEvent::Unknown { type_, .. } => {
            bump(&counters.unknown_events, 1);
            debug!(%call_id, event_type = %type_, "server event we do not model (counted)");
        }
        _ => {}
    }
}

/// What the router needs from the server's events.
async fn on_agent_event(
    live: &mut Live,
    ev: &ServerEvent,
    cmds: &crate::media::MediaCommands,
    a: &mut CallAgents,
) {
    let now = std::time::Instant::now();
    match ev {
        ServerEvent::OutputAudioDelta(d) => {
            a.note_audio(&d.response_id);
            if a.watch_first_audio {
                a.watch_first_audio = false;
                a.router.on_first_delta(now);
                let (tx, rx) = oneshot::channel();
                if cmds
                    .send(MediaCmd::WatchFirstFrame(d.item_id.as_str().into(), tx))
                    .await
                    .is_ok()
                {
                    let internal = a.internal_tx.clone();
                    tokio::spawn(async move {
                        if let Ok(t) = rx.await {
                            let _ = internal.send(Internal::FirstAudio(t));
                        }
                    });
                }
            }
        }
        ServerEvent::FunctionCallArgumentsDone(f) => {
            let name = f.name.clone().or_else(|| {
                live.tracker
                    .pending_function_calls()
                    .iter()
                    .find(|c| c.call_id == f.call_id)
                    .and_then(|c| c.name.clone())
            });
            let Some(name) = name else {
                warn!(call_id = %a.call_id, fn_call = %f.call_id, "function call without a name");
                return;
            };
            let had_audio = a.had_audio(&f.response_id);
            let actions = a.router.on_function_call(
                now,
                &f.response_id,
                &f.call_id,
                &name,
                &f.arguments,
                had_audio,
            );
            a.apply(live, actions);
        }
        ServerEvent::ResponseDone(r) => {
            if let Some(u) = &r.response.usage {
                let d = |x: Option<u64>| x.unwrap_or(0);
                let (ia, it) = u
                    .input_token_details
                    .as_ref()
                    .map_or((0, 0), |t| (d(t.audio_tokens), d(t.text_tokens)));
                let (oa, ot) = u
                    .output_token_details
                    .as_ref()
                    .map_or((0, 0), |t| (d(t.audio_tokens), d(t.text_tokens)));
                a.usage.input_audio_tokens += ia;
                a.usage.input_text_tokens += it;
                a.usage.output_audio_tokens += oa;
                a.usage.output_text_tokens += ot;
            }
            let purpose = r
                .response
                .metadata
                .as_ref()
                .and_then(|m| m.get("purpose"))
                .and_then(|p| p.as_str())
                .map(String::from);
            let actions = a.router.on_response_done(now, purpose.as_deref());
            a.apply(live, actions);
        }
        ServerEvent::OutputAudioTranscriptDone(d) => {
            if let Some(t) = &d.transcript {
                a.transcript(router::Role::Assistant, t);
            }
        }
        ServerEvent::InputTranscriptionCompleted(t) => {
            a.transcript(router::Role::User, &t.transcript)
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2), "call-1");
        let d: Vec<u128> = (0..8).map(|_| b.next_delay().as_millis()).collect();
        for (i, ms) in d.iter().enumerate() {
            let base = (100u128 << i).min(2000);
            assert!(
                *ms >= base * 3 / 4 && *ms <= base * 5 / 4,
                "{i}: {ms} vs {base}"
            );
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(125));
        let mut other = Backoff::new(Duration::from_millis(100), Duration::from_secs(2), "call-2");
        let mut same = Backoff::new(Duration::from_millis(100), Duration::from_secs(2), "call-1");
        let a: Vec<_> = (0..4).map(|_| other.next_delay()).collect();
        let c: Vec<_> = (0..4).map(|_| same.next_delay()).collect();
        assert_ne!(a, c, "different calls do not reconnect in lockstep");
    }

    #[test]
    fn filler_is_short_speech() {
        let f = filler_samples();
        let secs = f.len() as f64 / 24_000.0;
        assert!((1.0..3.0).contains(&secs), "{secs} s");
        let peak = f.iter().map(|s| i32::from(*s).abs()).max().unwrap_or(0);
        assert!(peak > 3_000, "audible: peak {peak}");
    }
}
