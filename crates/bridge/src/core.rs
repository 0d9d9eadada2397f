//! The endpoint task: owns the sans-IO [`Endpoint`], feeds it from the transports and the
//! clock, sends what it transmits and acts on its events (answer, hang up, release ports).

use crate::config::BridgeConfig;
use crate::media::{self, MediaCmd, MediaHandle, MediaMode, MediaNote, MediaSettings, PortPair};
use crate::ports::PortPool;
use crate::transport::{tcp_connect, Inbound};
use sip_proto::sdp::{LocalMedia, Negotiated, SrtpKey, SrtpPolicy, SRTP_KEY_LEN};
use sip_proto::timer::Timers;
use sip_proto::{CallHandle, Endpoint, EndpointConfig, Event, Flow, Stats, Transmit, Transport};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

/// Orders for the endpoint task from the rest of the process.
#[derive(Debug)]
pub enum Control {
    /// New calls use these agents (SIGHUP reload); calls in progress keep theirs.
    ReloadAgents(Box<crate::ai::Agents>),
    /// The calls in progress.
    ListCalls(tokio::sync::oneshot::Sender<Vec<CallInfo>>),
    /// Hang up a call (BYE, or 480 while ringing); false if there is no such call.
    Hangup(String, tokio::sync::oneshot::Sender<bool>),
}

/// A call in progress, for `GET /calls`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CallInfo {
    pub call_id: String,
    pub from: String,
    pub to: String,
    pub remote: String,
    /// Unix seconds.
    pub started_at: u64,
    pub duration_s: f64,
    /// `ringing` or `answered`.
    pub state: &'static str,
    /// The agent that has the caller (filled in by the admin API).
    pub agent: Option<String>,
}

/// Live figures the admin API reads.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Snapshot {
    pub calls: usize,
    pub dialogs: usize,
    pub server_transactions: usize,
    pub client_transactions: usize,
    pub scheduled_timers: usize,
    pub malformed: u64,
    pub stray_responses: u64,
    pub denied: u64,
    pub auth_failures: u64,
    pub rate_limited: u64,
    pub banned_drops: u64,
    pub bans: u64,
    pub rtp_ports_in_use: usize,
    pub calls_total: u64,
    pub draining: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    Answer,
    /// `--max-call-duration` reached.
    Hangup,
    /// Still up when the drain (SIGTERM/SIGINT) reached `--drain-timeout`.
    DrainHangup,
}

struct ActiveCall {
    /// Bound at answer; handed to the media engine once the remote media is known.
    pair: Option<PortPair>,
    media: Option<MediaHandle>,
    /// The call's Realtime session task, started when the INVITE arrives.
    ai: Option<tokio::task::JoinHandle<()>>,
    /// Hands the session the call's media once it starts.
    ai_link: Option<tokio::sync::oneshot::Sender<crate::ai::MediaLink>>,
    /// DTMF digits to the session (survey, later menus).
    ai_dtmf: Option<mpsc::UnboundedSender<char>>,
    /// From the INVITE's offer; `None` for a late offer (known at the ACK).
    negotiated: Option<Negotiated>,
    /// Our SRTP master key and salt for this call (fresh at answer when SRTP is enabled);
    /// what we send is protected with it, whatever the peer's key.
    srtp_key: Option<SrtpKey>,
    flow: Flow,
    call_id: String,
    from: String,
    to: String,
    started: Instant,
    started_wall: std::time::SystemTime,
    answered_wall: Option<std::time::SystemTime>,
}

pub struct Core {
    cfg: BridgeConfig,
    ep: Endpoint,
    udp: Vec<Arc<UdpSocket>>,
    /// Writers of the open stream connections (TCP and TLS), by transport and peer.
    tcp: HashMap<(Transport, SocketAddr), mpsc::Sender<Vec<u8>>>,
    inbound_tx: mpsc::Sender<Inbound>,
    ports: PortPool,
    calls: HashMap<CallHandle, ActiveCall>,
    actions: BinaryHeap<Reverse<(Instant, CallHandle, Action)>>,
    snapshot: Arc<Mutex<Snapshot>>,
    calls_total: u64,
    draining_since: Option<Instant>,
    /// Most live calls + transactions seen since the allocator was last trimmed.
    live_peak: usize,
    notes_tx: mpsc::Sender<MediaNote>,
    notes_rx: Option<mpsc::Receiver<MediaNote>>,
    media: MediaSettings,
    seed: u64,
    /// Calls that ended while their media was still closing: RTP stats go to the record.
    media_ended: HashMap<CallHandle, String>,
}

/// Clock for the endpoint: tokio's, so `tokio::time::pause` drives it in tests.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl Core {
    pub fn new(
        cfg: BridgeConfig,
        udp: Vec<Arc<UdpSocket>>,
        inbound_tx: mpsc::Sender<Inbound>,
        snapshot: Arc<Mutex<Snapshot>>,
    ) -> Self {
        let mut seed = [0u8; 8];
        // A fixed seed still gives unique tags within a process; only predictability suffers.
        let _ = getrandom::fill(&mut seed);
        let t1 = cfg.sip_t1;
        let ep_cfg = EndpointConfig {
            timers: Timers {
                t1,
                t2: t1 * 8,
                t4: t1 * 10,
            },
            public_ip: cfg.public_ip,
            max_calls: cfg.max_calls,
            codecs: cfg.codecs.clone(),
            srtp: cfg.srtp,
            session_expires: cfg.session_expires,
            seed: u64::from_le_bytes(seed),
            access: cfg.access.clone(),
            rate_limit: cfg.rate_limit,
            auth: cfg.auth.clone().map(|mut a| {
                let _ = getrandom::fill(&mut a.secret);
                a
            }),
            ..EndpointConfig::default()
        };
        let (notes_tx, notes_rx) = mpsc::channel(1024);
        let (echo, media_timeout) = (cfg.echo, cfg.media_timeout);
        let ops = cfg.ops.clone();
        let frames_batch = cfg.ai.as_ref().map_or(1, |a| a.append_frames.max(1));
        Core {
            ports: PortPool::new(cfg.rtp_ports.clone()),
            cfg,
            ep: Endpoint::new(ep_cfg),
            udp,
            tcp: HashMap::new(),
            inbound_tx,
            calls: HashMap::new(),
            actions: BinaryHeap::new(),
            snapshot,
            calls_total: 0,
            draining_since: None,
            live_peak: 0,
            notes_tx,
            notes_rx: Some(notes_rx),
            media: MediaSettings {
                mode: if echo {
                    MediaMode::Echo
                } else {
                    MediaMode::Port
                },
                media_timeout,
                max_buffer_ms: 60_000,
                ops: Some(ops),
                frames_batch: frames_batch as usize,
            },
            seed: u64::from_le_bytes(seed),
            media_ended: HashMap::new(),
        }
    }

    /// Run until `shutdown` turns true and the drain completes.
    pub async fn run(
        mut self,
        mut inbound: mpsc::Receiver<Inbound>,
        mut tcp_reg: mpsc::Receiver<(SocketAddr, mpsc::Sender<Vec<u8>>)>,
        mut shutdown: watch::Receiver<bool>,
        mut control: mpsc::UnboundedReceiver<Control>,
    ) {
        let mut notes = match self.notes_rx.take() {
            Some(n) => n,
            None => return,
        };
        let mut housekeeping = tokio::time::interval(Duration::from_secs(5));
        housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let deadline = [
                self.ep.poll_timeout(),
                self.actions.peek().map(|Reverse((at, _, _))| *at),
            ]
            .into_iter()
            .flatten()
            .min()
            .map(tokio::time::Instant::from_std);
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                Some(note) = notes.recv() => self.on_media_note(note),
                Some((remote, sender)) = tcp_reg.recv() => {
                    self.tcp.insert((Transport::Tcp, remote), sender);
                }
                msg = inbound.recv() => {
                    let Some(msg) = msg else { break };
                    self.on_inbound(msg);
                    // Take what is already queued before sending: fewer wakeups under load.
                    for _ in 0..64 {
                        match inbound.try_recv() {
                            Ok(m) => self.on_inbound(m),
                            Err(_) => break,
                        }
                    }
                }
                _ = sleep => {
                    let t = now();
                    self.ep.handle_timeout(t);
                    self.run_actions(t);
                }
                _ = housekeeping.tick() => self.release_memory(),
                Some(c) = control.recv() => self.on_control(c),
                changed = shutdown.changed(), if self.draining_since.is_none() => {
                    if changed.is_err() || *shutdown.borrow() {
                        info!(active = self.calls.len(), "draining: new calls get 503");
                        self.ep.set_draining(true);
                        let t = now();
                        self.draining_since = Some(t);
                        let until = t + self.cfg.drain_timeout;
                        let handles: Vec<CallHandle> = self.calls.keys().copied().collect();
                        for h in handles {
                            self.actions.push(Reverse((until, h, Action::DrainHangup)));
                        }
                    }
                }
            }
            self.pump().await;
            if let Some(since) = self.draining_since {
                if self.calls.is_empty() && now() >= since {
                    // Give final responses and BYE retransmissions a moment, then stop.
                    self.linger(Duration::from_millis(500)).await;
                    break;
                }
            }
        }
    }

    fn on_control(&mut self, c: Control) {
        match c {
            Control::ReloadAgents(agents) => match self.cfg.ai.as_mut() {
                Some(ai) => {
                    info!(file = %agents.file.source, agents = agents.file.agents.len(),
                          active = self.calls.len(), "agents reloaded: new calls use them");
                    ai.agents = Some(*agents);
                }
                None => warn!("agents reload ignored: no Realtime side configured"),
            },
            Control::ListCalls(reply) => {
                let t = now();
                let list = self
                    .calls
                    .values()
                    .map(|c| CallInfo {
                        call_id: c.call_id.clone(),
                        from: c.from.clone(),
                        to: c.to.clone(),
                        remote: c.flow.remote.to_string(),
                        started_at: c
                            .started_wall
                            .duration_since(std::time::UNIX_EPOCH)
                            .map(|d| d.as_secs())
                            .unwrap_or(0),
                        duration_s: t.saturating_duration_since(c.started).as_secs_f64(),
                        state: if c.media.is_some() {
                            "answered"
                        } else {
                            "ringing"
                        },
                        agent: None,
                    })
                    .collect();
                let _ = reply.send(list);
            }
            Control::Hangup(call_id, reply) => {
                let h = self
                    .calls
                    .iter()
                    .find(|(_, c)| c.call_id == call_id)
                    .map(|(h, _)| *h);
                if let Some(h) = h {
                    info!(%call_id, "hung up by the admin API");
                    self.ep.hangup(now(), h, "admin");
                }
                let _ = reply.send(h.is_some());
            }
        }
    }

    /// After a load peak, give memory back: shrink oversized maps, then ask the allocator to
    /// return free pages (glibc keeps them otherwise, and RSS would stay at the peak).
    fn release_memory(&mut self) {
        let mut shrank = self.ep.shrink(now());
        // Same rule as the endpoint's: shrink what holds four times its content.
        macro_rules! shrink {
            ($($field:ident),*) => {$(
                if self.$field.capacity() > 256 && self.$field.len() * 4 < self.$field.capacity() {
                    self.$field.shrink_to_fit();
                    shrank = true;
                }
            )*};
        }
        shrink!(tcp, calls, actions);
        // Trim again whenever live state fell well below its level at the last trim: freed
        // pages accumulate over several ticks as timers of a past peak expire.
        let s = self.ep.stats();
        let live = s.calls + s.server_transactions + s.client_transactions;
        self.live_peak = self.live_peak.max(live);
        if shrank || live * 4 < self.live_peak {
            trim_allocator();
            self.live_peak = live;
        }
    }

    async fn linger(&mut self, d: Duration) {
        let end = now() + d;
        while now() < end {
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.ep.handle_timeout(now());
            self.pump().await;
        }
    }

    fn on_inbound(&mut self, msg: Inbound) {
        match msg {
            Inbound::Packet { flow, data } => self.ep.handle_input(now(), flow, &data),
            Inbound::Connected {
                transport,
                remote,
                sender,
            } => {
                self.tcp.insert((transport, remote), sender);
            }
            Inbound::Closed { transport, remote } => {
                self.tcp.remove(&(transport, remote));
            }
        }
    }

    fn run_actions(&mut self, t: Instant) {
        while let Some(Reverse((at, h, action))) = self.actions.peek().copied() {
            if at > t {
                break;
            }
            self.actions.pop();
            if !self.calls.contains_key(&h) {
                continue;
            }
            match action {
                Action::Answer => self.answer(t, h),
                Action::Hangup => self.ep.hangup(t, h, "max call duration"),
                Action::DrainHangup => self.ep.hangup(t, h, "drain timeout"),
            }
        }
    }

    fn answer(&mut self, t: Instant, h: CallHandle) {
        let Some(call) = self.calls.get_mut(&h) else {
            return;
        };
        let ip = call.flow.local.ip();
        // A port another process holds is skipped (it goes to the back of the pool).
        let mut bound = None;
        for _ in 0..8 {
            let Some(port) = self.ports.allocate() else {
                break;
            };
            match PortPair::bind(ip, port) {
                Ok(mut pair) => {
                    pair.lease = Some(self.ports.lease(port));
                    bound = Some(pair);
                    break;
                }
                Err(e) => {
                    debug!(port, error = %e, "rtp port busy");
                    self.ports.release(port);
                }
            }
        }
        let Some(pair) = bound else {
            warn!(call_id = %call.call_id, "no free RTP port pair");
            self.ep.reject(t, h, 503, "Service Unavailable");
            return;
        };
        // RFC 4568 6.1: a fresh random key per call, from the OS (never logged).
        let srtp_key = if self.cfg.srtp == SrtpPolicy::Off {
            None
        } else {
            let mut k = [0u8; SRTP_KEY_LEN];
            if let Err(e) = getrandom::fill(&mut k) {
                warn!(call_id = %call.call_id, error = %e, "no randomness for an SRTP key");
                // (the pair's lease returns the port as it drops)
                self.ep.reject(t, h, 500, "Server Internal Error");
                return;
            }
            Some(SrtpKey(k))
        };
        let port = pair.port;
        call.pair = Some(pair);
        call.srtp_key = srtp_key.clone();
        let addr = self.cfg.public_ip.unwrap_or(ip);
        let negotiated = call.negotiated.clone();
        let media = LocalMedia {
            addr,
            port,
            codecs: self.cfg.codecs.clone(),
            telephone_event: true,
            ptime: 20,
            srtp_key,
        };
        if self.ep.answer(t, h, media) {
            if let Some(neg) = negotiated {
                self.start_media(h, neg);
            }
        }
    }

    /// Start the call's media once both ends are known (the answer, or the ACK of a late offer).
    fn start_media(&mut self, h: CallHandle, neg: Negotiated) {
        let Some(call) = self.calls.get_mut(&h) else {
            return;
        };
        if call.media.is_some() {
            return;
        }
        let Some(pair) = call.pair.take() else { return };
        self.seed = self
            .seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let span = tracing::info_span!("call", call_id = %call.call_id);
        let key = call.srtp_key.clone();
        call.media = span.in_scope(|| {
            media::start(
                h,
                pair,
                neg,
                key,
                self.media.clone(),
                self.notes_tx.clone(),
                self.seed,
            )
        });
        if let (Some(link), Some(m)) = (call.ai_link.take(), call.media.as_mut()) {
            if let Some(media) = crate::ai::MediaLink::from_handle(m) {
                let _ = link.send(media);
            }
        }
    }

    fn on_media_note(&mut self, note: MediaNote) {
        match note {
            MediaNote::Timeout(h) => {
                if let Some(c) = self.calls.get(&h) {
                    warn!(call_id = %c.call_id, "no RTP: hanging up");
                }
                self.ep.hangup(now(), h, "media timeout");
            }
            MediaNote::Digit(h, digit) => {
                if let Some(c) = self.calls.get(&h) {
                    info!(call_id = %c.call_id, %digit, "dtmf (RFC 4733)");
                    if let Some(d) = &c.ai_dtmf {
                        let _ = d.send(digit);
                    }
                }
            }
            MediaNote::Ended(h, stats) => {
                self.cfg.ops.record_rtp(crate::metrics::RtpTotals {
                    received: stats.packets_received,
                    lost: u64::try_from(stats.lost).unwrap_or(0),
                    late: stats.late,
                    concealed: stats.concealed,
                    jitter: stats.jitter,
                    srtp_auth_failed: stats.srtp_auth_failed + stats.srtcp_auth_failed,
                    srtp_replayed: stats.srtp_replayed,
                });
                if let (Some(call_id), Some(records)) =
                    (self.media_ended.remove(&h), &self.cfg.records)
                {
                    records.attach_rtp(
                        &call_id,
                        crate::memory::RtpLeg {
                            packets_sent: stats.packets_sent,
                            packets_received: stats.packets_received,
                            lost: stats.lost,
                            jitter_ms: stats.jitter.as_secs_f64() * 1000.0,
                            late: stats.late,
                            concealed: stats.concealed,
                            rtcp_sent: stats.rtcp_sent,
                            rtcp_received: stats.rtcp_received,
                            remote_fraction_lost: f64::from(stats.remote_fraction_lost) / 256.0,
                            remote_cumulative_lost: i64::from(stats.remote_cumulative_lost),
                            remote_jitter_ms: stats.remote_jitter.as_secs_f64() * 1000.0,
                        },
                    );
                }
            }
        }
    }

    async fn pump(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(tx) = self.ep.poll_transmit() {
                progressed = true;
                self.send(tx).await;
            }
            while let Some(ev) = self.ep.poll_event() {
                progressed = true;
                self.on_event(ev);
            }
            if !progressed {
                break;
            }
        }
        let s: Stats = self.ep.stats();
        if let Ok(mut snap) = self.snapshot.lock() {
            *snap = Snapshot {
                calls: s.calls,
                dialogs: s.dialogs,
                server_transactions: s.server_transactions,
                client_transactions: s.client_transactions,
                scheduled_timers: s.scheduled_timers,
                malformed: s.malformed,
                stray_responses: s.stray_responses,
                denied: s.denied,
                auth_failures: s.auth_failures,
                rate_limited: s.rate_limited,
                banned_drops: s.banned_drops,
                bans: s.bans,
                rtp_ports_in_use: self.ports.in_use(),
                calls_total: self.calls_total,
                draining: self.draining_since.is_some(),
            };
        }
    }

    fn on_event(&mut self, ev: Event) {
        let t = now();
        match ev {
            Event::IncomingCall(c) => {
                self.calls_total += 1;
                info!(call_id = %c.call_id, from = %c.from, remote = %c.flow.remote, "incoming call");
                // The Realtime session opens while the call is being answered, not after.
                let (ai, ai_link, ai_dtmf) = match (&self.cfg.ai, self.media.mode) {
                    (Some(settings), MediaMode::Port) => {
                        let caller = crate::memory::caller_identity(
                            &c.from,
                            c.p_asserted_identity.as_deref(),
                        );
                        let mut settings = settings.clone();
                        settings.audio_format = crate::ai::wire::format_for_call(
                            settings.g711_passthrough,
                            c.negotiated.as_ref().map(|n| media::codec_of(n.codec)),
                        );
                        let s = crate::ai::spawn(settings, c.call_id.clone(), caller);
                        (Some(s.task), Some(s.link), Some(s.dtmf))
                    }
                    _ => (None, None, None),
                };
                self.calls.insert(
                    c.call,
                    ActiveCall {
                        pair: None,
                        media: None,
                        ai,
                        ai_link,
                        ai_dtmf,
                        negotiated: c.negotiated,
                        srtp_key: None,
                        flow: c.flow,
                        call_id: c.call_id,
                        from: c.from,
                        to: c.to,
                        started: t,
                        started_wall: std::time::SystemTime::now(),
                        answered_wall: None,
                    },
                );
                if self.cfg.answer_delay.is_zero() {
                    self.answer(t, c.call);
                } else {
                    self.ep.ring(t, c.call);
                    self.actions
                        .push(Reverse((t + self.cfg.answer_delay, c.call, Action::Answer)));
                }
            }
            Event::CallConfirmed { call, negotiated } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.answered_wall = Some(std::time::SystemTime::now());
                    if let Some(n) = &negotiated {
                        c.negotiated = Some(n.clone());
                    }
                    self.cfg
                        .ops
                        .observe_setup(t.saturating_duration_since(c.started));
                    info!(call_id = %c.call_id, codec = ?negotiated.as_ref().map(|n| n.codec), "call established");
                }
                if let Some(neg) = negotiated {
                    self.start_media(call, neg);
                }
                if let Some(d) = self.cfg.max_call_duration {
                    self.actions.push(Reverse((t + d, call, Action::Hangup)));
                }
            }
            Event::MediaUpdate { call, negotiated } => {
                if let Some(c) = self.calls.get(&call) {
                    info!(call_id = %c.call_id, direction = negotiated.remote_direction.as_str(), "media update");
                    match &c.media {
                        Some(m) => m.send(MediaCmd::Update(negotiated)),
                        None => self.start_media(call, negotiated),
                    }
                }
            }
            Event::Dtmf {
                call,
                digit,
                duration_ms,
            } => {
                if let Some(c) = self.calls.get(&call) {
                    info!(call_id = %c.call_id, %digit, duration_ms, "dtmf (SIP INFO)");
                    if let Some(d) = &c.ai_dtmf {
                        let _ = d.send(digit);
                    }
                }
            }
            Event::CallEnded { call, reason } => {
                let label = end_reason_label(&reason);
                self.cfg.ops.record_call_end(&label);
                if let Some(c) = self.calls.remove(&call) {
                    if let Some(records) = &self.cfg.records {
                        use sip_proto::EndReason as E;
                        let hung_up_by = match reason {
                            E::RemoteBye | E::Cancelled => "caller",
                            E::Rejected(_) => "none",
                            _ => "bridge",
                        };
                        records.attach_sip(
                            &c.call_id,
                            crate::memory::SipLeg {
                                from: c.from.clone(),
                                to: c.to.clone(),
                                remote: c.flow.remote.to_string(),
                                codec: c.negotiated.as_ref().map(|n| format!("{:?}", n.codec)),
                                invite_at: Some(c.started_wall),
                                answered_at: c.answered_wall,
                                ended_at: Some(std::time::SystemTime::now()),
                                end_reason: label.clone(),
                                end_detail: match &reason {
                                    E::LocalBye(why) => Some(why.clone()),
                                    _ => None,
                                },
                                hung_up_by: hung_up_by.into(),
                                rtp: None,
                            },
                        );
                        if c.media.is_some() {
                            self.media_ended.insert(call, c.call_id.clone());
                        }
                    }
                    info!(call_id = %c.call_id, ?reason, "call ended");
                    if let Some(m) = &c.media {
                        m.send(MediaCmd::Stop);
                    }
                    // The session ends by itself once the media is gone (it writes the call's
                    // summary); a session stuck connecting is stopped after a grace period.
                    if let Some(ai) = c.ai {
                        let abort = ai.abort_handle();
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_secs(5)).await;
                            abort.abort();
                        });
                    }
                    // The port returns to the pool when its sockets close (PortLease).
                }
            }
        }
    }

    async fn send(&mut self, tx: Transmit) {
        match tx.flow.transport {
            Transport::Udp => {
                // The socket bound to this address (or to the wildcard on this port).
                let local = tx.flow.local;
                let socket = self.udp.iter().find(|s| {
                    s.local_addr().is_ok_and(|a| {
                        a.port() == local.port()
                            && a.is_ipv4() == local.is_ipv4()
                            && (a.ip() == local.ip() || a.ip().is_unspecified())
                    })
                });
                if let Some(s) = socket {
                    if let Err(e) = s.send_to(&tx.data, tx.flow.remote).await {
                        debug!(remote = %tx.flow.remote, error = %e, "udp send");
                    }
                }
            }
            Transport::Tcp => {
                let remote = tx.flow.remote;
                let sender = match self.tcp.get(&(Transport::Tcp, remote)) {
                    Some(s) if !s.is_closed() => s.clone(),
                    _ => {
                        let (out_tx, out_rx) = mpsc::channel(256);
                        tokio::spawn(tcp_connect(remote, self.inbound_tx.clone(), out_rx));
                        self.tcp.insert((Transport::Tcp, remote), out_tx.clone());
                        out_tx
                    }
                };
                if sender.try_send(tx.data).is_err() {
                    debug!(%remote, "tcp send queue full or closed");
                }
            }
            // We open no TLS connections (that needs the peer's name and trust anchors): what
            // goes to a TLS peer takes the connection it opened, or is dropped (the
            // transaction then times out).
            Transport::Tls => match self.tcp.get(&(Transport::Tls, tx.flow.remote)) {
                Some(s) if s.try_send(tx.data).is_ok() => {}
                _ => {
                    warn!(remote = %tx.flow.remote, "no TLS connection from this peer (or its queue is full): message dropped")
                }
            },
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
/// A Prometheus label for how a call ended.
fn end_reason_label(r: &sip_proto::EndReason) -> String {
    use sip_proto::EndReason as E;
    match r {
        E::RemoteBye => "remote_bye".into(),
        E::LocalBye(_) => "local_bye".into(),
        E::Cancelled => "cancelled".into(),
        E::AckTimeout => "ack_timeout".into(),
        E::SessionExpired => "session_expired".into(),
        E::RefreshFailed => "refresh_failed".into(),
        E::Rejected(code) => format!("rejected_{code}"),
    }
}

fn trim_allocator() {
    // SAFETY: malloc_trim only releases free memory at the top of glibc's heaps and arenas; it
    // touches no live allocation and is safe to call from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_allocator() {}
