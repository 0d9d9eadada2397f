//! Media for one call: its RTP/RTCP sockets, the sans-IO `rtp::Session`, the codec, and the
//! playout buffer, run by the media engine (`engine`: a few threads that pace every call on
//! one clock, no task or timer per call). It decodes what the caller sends into 24 kHz frames
//! and sends what the playout buffer holds (echo mode: the caller's own audio), paced by the
//! session's 20 ms clock; silence when there is nothing to say. With SRTP negotiated (SDES,
//! RFC 4568) the session protects every RTP/RTCP packet it sends with our key and unprotects
//! every one it receives with the caller's; forged and replayed packets are dropped and
//! counted in the call's stats.

pub mod engine;
pub mod playout;
mod recv;
pub mod send;

use codec::{Decoder, Encoder, Frame, PayloadCodec};
use playout::{ItemId, PlayoutBuffer};
use rtp::{Event as RtpEvent, Session, SessionConfig, Slot};
use sip_proto::sdp::{Codec, CryptoSuite, Direction, Negotiated, SrtpKey};
use sip_proto::CallHandle;
use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

/// What answered calls hear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaMode {
    /// Whatever the AI side plays through the [`MediaHandle`]; silence when it says nothing.
    Port,
    /// The caller's own audio, after the jitter buffer (the classic test line).
    Echo,
}

/// What a flush (barge-in) dropped and what each item had really played.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlushReport {
    pub dropped_frames: usize,
    /// Milliseconds sent per item, recent items only.
    pub played: Vec<(ItemId, u32)>,
}

/// To a call's media (in the media engine).
#[derive(Debug)]
pub enum MediaCmd {
    /// re-INVITE/UPDATE changed the remote media (hold, address, codec).
    Update(Negotiated),
    /// 24 kHz samples of `item` to play; `last` ends the item (its partial frame is padded).
    Play {
        item: ItemId,
        samples: Vec<i16>,
        last: bool,
    },
    /// Barge-in: drop all unsent audio at once.
    Flush(oneshot::Sender<FlushReport>),
    /// Milliseconds of `item` the caller has actually been sent.
    PlayedMs(ItemId, oneshot::Sender<u32>),
    /// Reply with the instant the first frame of `item` is sent (handoff time).
    WatchFirstFrame(ItemId, oneshot::Sender<Instant>),
    /// From now on the caller's audio goes to `sink` on the media thread, not to the
    /// [`MediaHandle::frames`] channel (which then only closes when the media ends).
    Attach(CallerSink),
    Stop,
}

/// Where a call's media thread puts the caller's audio when a consumer attached one (the
/// Realtime uplink: it encodes and queues appends right there, so no task wakes per frame).
/// Called on the media thread: every method must return at once.
pub trait CallerAudio: Send + Sync {
    /// The RTP codec whose payloads it takes as they arrive (G.711 pass-through: no decode,
    /// no resampling), if any.
    fn raw_codec(&self) -> Option<PayloadCodec>;
    /// One 20 ms frame of decoded caller audio; true once a batch is complete.
    fn frame(&self, frame: &Frame) -> bool;
    /// One payload of `raw_codec` as it arrived (or the codec's silence for a lost packet);
    /// true once a batch is complete.
    fn payload(&self, payload: &[u8]) -> bool;
    /// Hand the complete batch on; the engine calls it after the step's packets went out.
    fn hand_over(&self);
}

/// A shared [`CallerAudio`].
#[derive(Clone)]
pub struct CallerSink(pub std::sync::Arc<dyn CallerAudio>);

impl std::fmt::Debug for CallerSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallerSink")
    }
}

/// From a call's media to the endpoint task.
#[derive(Debug)]
pub enum MediaNote {
    /// No RTP for the media timeout while not on hold: hang up.
    Timeout(CallHandle),
    Digit(CallHandle, char),
    Ended(CallHandle, Box<rtp::CallStats>),
}

/// A bound RTP/RTCP socket pair (RTCP on RTP + 1, RFC 3550 11).
pub struct PortPair {
    pub port: u16,
    rtp: StdUdpSocket,
    rtcp: StdUdpSocket,
    /// The pool's claim: returns the port once the sockets have closed.
    pub lease: Option<crate::ports::PortLease>,
}

impl PortPair {
    /// Bind `port` and `port + 1` on `ip`.
    pub fn bind(ip: IpAddr, port: u16) -> std::io::Result<PortPair> {
        let rtp = StdUdpSocket::bind(SocketAddr::new(ip, port))?;
        let rtcp = StdUdpSocket::bind(SocketAddr::new(ip, port.wrapping_add(1)))?;
        rtp.set_nonblocking(true)?;
        rtcp.set_nonblocking(true)?;
        Ok(PortPair {
            port,
            rtp,
            rtcp,
            lease: None,
        })
    }
}

/// Commands to a call's media, for a consumer that needs `await` (playing audio). Commands
/// someone waits for (flush, played-ms, stop) wake the call's media thread at once; the rest
/// wait for its next step.
#[derive(Clone)]
pub struct MediaCommands {
    tx: mpsc::Sender<MediaCmd>,
    /// Told after each command: the media thread reads the queue only then.
    waker: engine::CallWaker,
}

impl MediaCommands {
    /// Queue `cmd`, waiting while 64 are queued; `Err` when the media has ended.
    pub async fn send(&self, cmd: MediaCmd) -> Result<(), mpsc::error::SendError<MediaCmd>> {
        let urgent = urgent(&cmd);
        self.tx.send(cmd).await?;
        self.waker.queued(urgent);
        Ok(())
    }
}

fn urgent(cmd: &MediaCmd) -> bool {
    matches!(
        cmd,
        MediaCmd::Flush(_) | MediaCmd::PlayedMs(..) | MediaCmd::Stop
    )
}

/// The endpoint task's (and later the AI side's) grip on a call's media.
pub struct MediaHandle {
    tx: mpsc::Sender<MediaCmd>,
    waker: engine::CallWaker,
    /// What the caller says, decoded to 24 kHz, one frame per 20 ms (bounded: if nobody
    /// reads, the oldest audio is lost, never memory). Taken by whoever consumes it.
    pub frames: Option<mpsc::Receiver<Frame>>,
}

impl MediaHandle {
    /// Fire-and-forget command; dropped if the task is gone or 64 commands behind.
    pub fn send(&self, cmd: MediaCmd) {
        let urgent = urgent(&cmd);
        if self.tx.try_send(cmd).is_err() {
            debug!("media gone or busy");
            return;
        }
        self.waker.queued(urgent);
    }

    /// A sender for commands, for a consumer that needs `await` (playing audio).
    pub fn commands(&self) -> MediaCommands {
        MediaCommands {
            tx: self.tx.clone(),
            waker: self.waker.clone(),
        }
    }
}

/// Settings shared by every call's media.
#[derive(Clone)]
pub struct MediaSettings {
    pub mode: MediaMode,
    pub media_timeout: Duration,
    /// Playout buffer bound.
    pub max_buffer_ms: u32,
    /// Where every packet's send lateness goes (`/metrics`).
    pub ops: Option<std::sync::Arc<crate::metrics::OpsMetrics>>,
    /// Caller frames handed to the consumer together (its append size: one wakeup of the
    /// Realtime task per append, not per frame). 1: every frame as it is decoded.
    pub frames_batch: usize,
}

pub fn codec_of(c: Codec) -> PayloadCodec {
    match c {
        Codec::Pcmu => PayloadCodec::Pcmu,
        Codec::Pcma => PayloadCodec::Pcma,
        Codec::Opus => PayloadCodec::Opus,
    }
}

/// The session's SRTP settings from the negotiated crypto (the caller's key) and ours.
fn srtp_config(
    neg: &Negotiated,
    local: Option<&SrtpKey>,
) -> Result<Option<rtp::SrtpConfig>, String> {
    let Some(theirs) = &neg.srtp else {
        return Ok(None);
    };
    let Some(ours) = local else {
        return Err("SRTP negotiated but no local key".into());
    };
    let key = |k: &SrtpKey| rtp::MasterKey::from_concatenated(&k.0);
    let (Some(remote), Some(local)) = (key(&theirs.key), key(ours)) else {
        return Err("SRTP key of the wrong length".into());
    };
    let suite = match theirs.suite {
        CryptoSuite::AesCm128HmacSha1_80 => rtp::Suite::AesCm128HmacSha1_80,
        CryptoSuite::AesCm128HmacSha1_32 => rtp::Suite::AesCm128HmacSha1_32,
    };
    Ok(Some(rtp::SrtpConfig {
        suite,
        local,
        remote,
    }))
}

/// Start the media of `call` in the media engine. `srtp_key`: ours, for when `neg` carries
/// the caller's `a=crypto` (SRTP); ignored for plain RTP.
pub fn start(
    call: CallHandle,
    pair: PortPair,
    neg: Negotiated,
    srtp_key: Option<SrtpKey>,
    settings: MediaSettings,
    notes: mpsc::Sender<MediaNote>,
    seed: u64,
) -> Option<MediaHandle> {
    let (tx, rx) = mpsc::channel(64);
    let queued = Arc::new(AtomicBool::new(false));
    let (frames_tx, frames_rx) = mpsc::channel(FRAMES_QUEUED);
    let media = match CallMedia::new(call, neg, srtp_key, settings, seed, frames_tx) {
        Ok(m) => m,
        Err(e) => {
            warn!(?call, error = %e, "cannot start media");
            return None;
        }
    };
    // Logged inside the caller's span (the endpoint task's "call" span when it has one).
    let submitted = engine::submit(engine::NewCall {
        media,
        rtp: pair.rtp,
        rtcp: pair.rtcp,
        lease: pair.lease,
        rx,
        queued: queued.clone(),
        notes,
        span: tracing::Span::current(),
    });
    let Ok(shard) = submitted else {
        warn!(?call, "cannot start media: no media thread");
        return None;
    };
    Some(MediaHandle {
        tx,
        waker: engine::CallWaker::new(shard, queued),
        frames: Some(frames_rx),
    })
}

/// One second of caller audio waits for its consumer.
const FRAMES_QUEUED: usize = 50;

fn now() -> Instant {
    Instant::now()
}

/// Wall clock in NTP format for RTCP sender reports (RFC 3550 4).
fn ntp_now() -> u64 {
    const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() + NTP_UNIX_OFFSET;
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// We may send unless the peer's offer says it will not receive (RFC 3264 6.1).
fn may_send(remote: Direction) -> bool {
    matches!(remote, Direction::SendRecv | Direction::RecvOnly)
}

/// Their side stops sending: no media timeout (hold).
fn on_hold(remote: Direction) -> bool {
    matches!(remote, Direction::RecvOnly | Direction::Inactive)
}

/// An attached [`CallerAudio`], its raw codec (read once) and whether it holds a complete
/// batch.
struct Attached {
    sink: CallerSink,
    raw: Option<PayloadCodec>,
    ready: bool,
}

struct CallMedia {
    call: CallHandle,
    settings: MediaSettings,
    neg: Negotiated,
    srtp_key: Option<SrtpKey>,
    session: Session,
    decoder: Decoder,
    encoder: Encoder,
    playout: PlayoutBuffer,
    echo_item: ItemId,
    payload: Vec<u8>,
    sending: bool,
    frames_tx: mpsc::Sender<Frame>,
    frames_dropped: u64,
    /// Decoded caller frames not yet handed over (up to `settings.frames_batch`).
    frames_pending: Vec<Frame>,
    /// The attached consumer of caller audio (instead of `frames_tx`).
    attached: Option<Attached>,
    /// One 20 ms payload of silence in the call's codec (a lost packet, passed through raw).
    silence: Vec<u8>,
    /// Packets the socket refused (buffer full): dropped, never waited for.
    send_errors: u64,
    /// Who waits for the first frame of an item to go out.
    first_frame: Vec<(ItemId, oneshot::Sender<Instant>)>,
}

impl CallMedia {
    fn new(
        call: CallHandle,
        neg: Negotiated,
        srtp_key: Option<SrtpKey>,
        settings: MediaSettings,
        seed: u64,
        frames_tx: mpsc::Sender<Frame>,
    ) -> Result<Self, String> {
        let codec = codec_of(neg.codec);
        let mut cfg = SessionConfig::new(neg.remote_rtp, neg.pt, codec.rtp_clock_rate(), seed);
        cfg.event_payload_type = neg.dtmf_pt;
        cfg.media_timeout = settings.media_timeout;
        cfg.srtp = srtp_config(&neg, srtp_key.as_ref())?;
        if let Some(s) = &cfg.srtp {
            info!(suite = s.suite.name(), "srtp");
        }
        let t = now();
        let mut session = Session::new(cfg, t, ntp_now()).map_err(|e| e.to_string())?;
        let decoder = Decoder::new(codec).map_err(|e| e.to_string())?;
        let mut encoder = Encoder::new(codec).map_err(|e| e.to_string())?;
        let mut silence = Vec::new();
        encoder
            .encode(&Frame::silence(), &mut silence)
            .map_err(|e| e.to_string())?;
        session.set_silence_payload(silence.clone());
        session.set_on_hold(t, on_hold(neg.remote_direction));
        let max_buffer_ms = settings.max_buffer_ms;
        Ok(CallMedia {
            call,
            settings,
            sending: may_send(neg.remote_direction),
            neg,
            srtp_key,
            session,
            decoder,
            encoder,
            playout: PlayoutBuffer::new(max_buffer_ms),
            echo_item: ItemId::from("echo"),
            payload: Vec::with_capacity(512),
            frames_tx,
            frames_dropped: 0,
            frames_pending: Vec::new(),
            attached: None,
            silence,
            send_errors: 0,
            first_frame: Vec::new(),
        })
    }

    /// A command from the endpoint or AI side (all but `Stop`, which the engine handles).
    fn command(&mut self, cmd: MediaCmd) {
        match cmd {
            MediaCmd::Update(neg) => self.update(neg),
            MediaCmd::Play {
                item,
                samples,
                last,
            } => {
                self.playout.push_samples(&item, &samples);
                if last {
                    self.playout.finish_item();
                }
            }
            MediaCmd::Flush(reply) => {
                let dropped_frames = self.playout.flush();
                // Frames already queued in the session go too: the caller must hear
                // silence at once.
                self.session.clear_audio();
                let _ = reply.send(FlushReport {
                    dropped_frames,
                    played: self.playout.played(),
                });
            }
            MediaCmd::PlayedMs(item, reply) => {
                let _ = reply.send(self.playout.played_ms(&item));
            }
            MediaCmd::WatchFirstFrame(item, reply) => {
                if self.playout.played_ms(&item) > 0 {
                    let _ = reply.send(Instant::now());
                } else {
                    self.first_frame.retain(|(_, r)| !r.is_closed());
                    self.first_frame.push((item, reply));
                }
            }
            MediaCmd::Attach(sink) => {
                // Frames decoded before this go first, in order.
                self.hand_over_frames();
                self.attached = Some(Attached {
                    raw: sink.0.raw_codec(),
                    sink,
                    ready: false,
                });
            }
            MediaCmd::Stop => {}
        }
    }

    /// The call's media is over (the session closed and flushed): log and report its stats.
    fn finish(&mut self, notes: &mpsc::Sender<MediaNote>) {
        self.hand_over_frames();
        let stats = self.session.stats();
        info!(call = ?self.call, sent = stats.packets_sent, received = stats.packets_received,
              lost = stats.lost, jitter_ms = stats.jitter.as_millis() as u64, late = stats.late,
              concealed = stats.concealed, srtp = self.neg.srtp.is_some(),
              srtp_auth_failed = stats.srtp_auth_failed, srtcp_auth_failed = stats.srtcp_auth_failed,
              srtp_replayed = stats.srtp_replayed, send_errors = self.send_errors,
              "media ended");
        // Never wait on the endpoint task here: the sockets must close now.
        let _ = notes.try_send(MediaNote::Ended(self.call, Box::new(stats)));
    }

    /// A consumer's batch of caller frames is waiting.
    fn frames_ready(&self) -> bool {
        self.attached.as_ref().is_some_and(|a| a.ready)
            || self.frames_pending.len() >= self.settings.frames_batch.max(1)
    }

    /// Pending caller frames to the consumer; a full queue drops (and counts) them.
    fn hand_over_frames(&mut self) {
        if let Some(a) = self.attached.as_mut().filter(|a| a.ready) {
            a.ready = false;
            a.sink.0.hand_over();
        }
        for frame in self.frames_pending.drain(..) {
            if self.frames_tx.try_send(frame).is_err() {
                self.frames_dropped += 1;
            }
        }
    }

    fn update(&mut self, neg: Negotiated) {
        let t = now();
        self.session.set_on_hold(t, on_hold(neg.remote_direction));
        self.sending = may_send(neg.remote_direction);
        if neg.codec != self.neg.codec
            || neg.pt != self.neg.pt
            || neg.remote_rtp != self.neg.remote_rtp
            || neg.srtp != self.neg.srtp
        {
            // A new codec, address or SRTP key: a fresh session keeps the rules simple; the
            // SSRC changes, which RFC 3550 8.2 receivers handle (and with a new SSRC our
            // SRTP stream starts afresh too, RFC 3711 3.2.3). Hold/unhold never gets here.
            // A new SSRC, derived from the old one.
            let seed = u64::from(self.session.ssrc()).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 1;
            match CallMedia::new(
                self.call,
                neg.clone(),
                self.srtp_key.clone(),
                self.settings.clone(),
                seed,
                self.frames_tx.clone(),
            ) {
                Ok(mut fresh) => {
                    // Unsent audio, the played counts and the caller-audio consumer survive
                    // a codec change.
                    std::mem::swap(&mut fresh.playout, &mut self.playout);
                    std::mem::swap(&mut fresh.first_frame, &mut self.first_frame);
                    fresh.attached = self.attached.take();
                    *self = fresh;
                }
                Err(e) => warn!(call = ?self.call, error = %e, "media update failed"),
            }
        }
        self.neg = neg;
    }

    /// The slot's payload to a raw (G.711 pass-through) consumer, undecoded; false if the
    /// slot needs decoding (no such consumer, or not its codec).
    fn caller_raw(&mut self, slot: &Slot) -> bool {
        let codec = codec_of(self.neg.codec);
        let Some(a) = self.attached.as_mut().filter(|a| a.raw == Some(codec)) else {
            return false;
        };
        a.ready |= match slot {
            Slot::Audio {
                payload_type,
                payload,
            } if *payload_type == self.neg.pt => a.sink.0.payload(payload),
            Slot::Audio { .. } | Slot::Silence => false,
            Slot::Missing { .. } => a.sink.0.payload(&self.silence),
        };
        true
    }

    /// The slot decoded to a 24 kHz frame (a lost packet concealed) for the consumer or the
    /// echo.
    fn caller_decoded(&mut self, slot: Slot) {
        let heard = match slot {
            Slot::Audio {
                payload_type,
                payload,
            } if payload_type == self.neg.pt => match self.decoder.decode(&payload) {
                Ok(f) => Some(f),
                Err(_) => Some(self.decoder.decode_missing(None)),
            },
            Slot::Audio { .. } => None,
            // Opus recovers the lost frame from the next packet's FEC when it is here.
            Slot::Missing { .. } => Some(
                self.decoder
                    .decode_missing(self.session.peek_next_payload()),
            ),
            Slot::Silence => None,
        };
        let Some(frame) = heard else {
            return;
        };
        match (self.settings.mode, self.attached.as_mut()) {
            (MediaMode::Echo, _) => self.playout.push_frame(&self.echo_item, frame),
            (MediaMode::Port, Some(a)) => a.ready |= a.sink.0.frame(&frame),
            // Handed over by the engine once the step's packets are sent (`frames_ready`):
            // waking the consumer's thread may preempt ours.
            (MediaMode::Port, None) => self.frames_pending.push(frame),
        }
    }

    fn on_event(&mut self, ev: RtpEvent, notes: &mpsc::Sender<MediaNote>, span: &tracing::Span) {
        // Ticks (50 a second) run outside the call's span; the rare events log inside it.
        let _g = (!matches!(ev, RtpEvent::Tick { .. })).then(|| span.enter());
        match ev {
            RtpEvent::Tick {
                slot, late, missed, ..
            } => {
                if let Some(ops) = &self.settings.ops {
                    ops.observe_send_lateness(late);
                    // Ticks handled so late that the next one was due already were dropped
                    // (never sent late); each is a packet the caller did not get on time.
                    for j in 1..=missed.min(50) {
                        ops.observe_send_lateness(late + Duration::from_millis(20 * j));
                    }
                }
                if !(self.settings.mode == MediaMode::Port && self.caller_raw(&slot)) {
                    self.caller_decoded(slot);
                }
                if let Some((item, frame)) = self.playout.next_frame() {
                    if self.encoder.encode(&frame, &mut self.payload).is_ok() {
                        let _ = self.session.queue_audio(std::mem::take(&mut self.payload));
                    }
                    if let Some(i) = self.first_frame.iter().position(|(w, _)| *w == item) {
                        let (_, reply) = self.first_frame.swap_remove(i);
                        let _ = reply.send(Instant::now());
                    }
                }
            }
            RtpEvent::Digit(d) => {
                let _ = notes.try_send(MediaNote::Digit(self.call, d.digit));
            }
            RtpEvent::MediaTimeout => {
                if notes.try_send(MediaNote::Timeout(self.call)).is_err() {
                    // Told again at the next timeout check if the endpoint task is busy.
                    warn!(call = ?self.call, "media timeout note dropped");
                }
            }
            RtpEvent::Latched(addr) => debug!(call = ?self.call, %addr, "rtp latched"),
            RtpEvent::SsrcChanged { old, new } => {
                debug!(call = ?self.call, old, new, "remote ssrc changed")
            }
            RtpEvent::RemoteBye => debug!(call = ?self.call, "remote RTCP BYE"),
        }
    }
}
