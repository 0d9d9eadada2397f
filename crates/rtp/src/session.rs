//! One call's media, sans-IO: datagrams and `now` in; datagrams, events and the next deadline
//! out. Ties together latching, reception stats, the jitter buffer, DTMF, the sender, the
//! pacer, RTCP and the media timeout.

use crate::dtmf::{Digit, DtmfReceiver};
use crate::error::SessionError;
use crate::jitter::{JitterBuffer, JitterConfig, PacketKind, Slot};
use crate::latch::{Latch, LatchDecision};
use crate::pacer::Pacer;
use crate::packet::comfort_noise::{ComfortNoise, PT_CN};
use crate::packet::is_rtcp;
use crate::packet::rtcp::{build_compound, parse_compound, ReportBlock, ReportSpec, SenderInfo};
use crate::packet::rtp::RtpPacket;
use crate::packet::telephone_event::TelephoneEvent;
use crate::rng::Rng;
use crate::sender::{Outgoing, RtpSender, SenderConfig, SentKind};
use crate::seq::{ReceptionState, SeqOutcome};
use crate::srtp::{MasterKey, SrtpError, SrtpSession, Suite};
use crate::stats::CallStats;
use crate::timer::{Timer, TimerTable};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Which of the call's two local sockets a datagram uses (RTCP on RTP+1 unless muxed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Socket {
    Rtp,
    Rtcp,
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub socket: Socket,
    pub to: SocketAddr,
    pub bytes: Vec<u8>,
}

/// What the session tells the bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// One 20 ms tick: the slot to decode and play, and what went out on the wire.
    Tick {
        slot: Slot,
        sent: SentKind,
        missed: u64,
        /// How long after its 20 ms deadline the tick was handled (`now` - due): how late
        /// this packet goes out.
        late: Duration,
    },
    /// The caller pressed a key (RFC 4733).
    Digit(Digit),
    /// We now send RTP to this address (symmetric RTP).
    Latched(SocketAddr),
    /// The peer's SSRC changed: a new stream (RFC 3550 8.2).
    SsrcChanged { old: u32, new: u32 },
    /// No RTP for the configured time while not on hold: end the call (BYE with Reason).
    MediaTimeout,
    /// The peer sent RTCP BYE for its stream (RFC 3550 6.6).
    RemoteBye,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// From the SDP answer/offer (c= and m=); None until known.
    pub remote_rtp: Option<SocketAddr>,
    /// `a=rtcp` or RTP port + 1 (RFC 3550 11); ignored with rtcp-mux.
    pub remote_rtcp: Option<SocketAddr>,
    /// RFC 5761, only when negotiated.
    pub rtcp_mux: bool,
    pub payload_type: u8,
    pub clock_rate: u32,
    pub event_payload_type: Option<u8>,
    pub cname: String,
    /// Packets in a row a source the SDP did not name needs before we latch to it.
    pub latch_threshold: u32,
    pub media_timeout: Duration,
    /// RFC 3550 6.2 minimum interval; each report is randomised by 0.5-1.5.
    pub rtcp_interval: Duration,
    /// Outgoing frames the bridge may queue ahead.
    pub queue_limit: usize,
    pub jitter: JitterConfig,
    /// Seeds SSRC, initial sequence number and timestamp (RFC 3550 5.1) and the RTCP jitter.
    pub seed: u64,
    /// SRTP/SRTCP (RFC 3711) with keys from SDES (RFC 4568); `None` is plain RTP.
    pub srtp: Option<SrtpConfig>,
}

/// The negotiated SRTP suite and both master keys. `Debug` shows no key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtpConfig {
    pub suite: Suite,
    /// Ours: protects what we send (the key of our `a=crypto`).
    pub local: MasterKey,
    /// The peer's: unprotects what it sends (the key of its `a=crypto`).
    pub remote: MasterKey,
}

impl SessionConfig {
    /// Defaults for a codec: 3-packet latch, 30 s media timeout, 5 s RTCP.
    pub fn new(
        remote_rtp: Option<SocketAddr>,
        payload_type: u8,
        clock_rate: u32,
        seed: u64,
    ) -> Self {
        SessionConfig {
            remote_rtp,
            remote_rtcp: remote_rtp.map(|a| SocketAddr::new(a.ip(), a.port().wrapping_add(1))),
            rtcp_mux: false,
            payload_type,
            clock_rate,
            event_payload_type: None,
            cname: String::from("switchboard"),
            latch_threshold: 3,
            media_timeout: Duration::from_secs(30),
            rtcp_interval: Duration::from_secs(5),
            queue_limit: 10,
            jitter: JitterConfig::new(clock_rate / 50),
            seed,
            srtp: None,
        }
    }
}

#[derive(Debug)]
pub struct Session {
    cfg: SessionConfig,
    latch: Latch,
    rtcp_to: Option<SocketAddr>,
    rtcp_latched: bool,
    remote: Option<(u32, ReceptionState)>,
    old_ssrc: Option<u32>,
    lost_before: i64,
    jitter: JitterBuffer,
    dtmf: DtmfReceiver,
    sender: RtpSender,
    pacer: Pacer,
    timers: TimerTable,
    rng: Rng,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    outgoing: VecDeque<Vec<u8>>,
    silence: Vec<u8>,
    stats: CallStats,
    on_hold: bool,
    closed: bool,
    epoch: Instant,
    ntp_epoch: u64,
    last_sr: Option<(u32, Instant)>,
    last_tick_due: Instant,
    sent_since_report: bool,
    srtp: Option<SrtpSession>,
    /// Reused buffer for unprotecting a datagram.
    scratch: Vec<u8>,
}

impl Session {
    /// `ntp_now`: the NTP timestamp (RFC 3550 4, 32.32) of `now`, read by the caller once.
    pub fn new(cfg: SessionConfig, now: Instant, ntp_now: u64) -> Result<Self, SessionError> {
        if cfg.clock_rate < 50 || cfg.clock_rate / 50 * 50 != cfg.clock_rate {
            return Err(SessionError::Config(
                "clock rate must be a multiple of 50 Hz (20 ms frames)",
            ));
        }
        if cfg.payload_type > 127 || cfg.event_payload_type.is_some_and(|p| p > 127) {
            return Err(SessionError::Config("payload type above 127"));
        }
        let mut rng = Rng::new(cfg.seed);
        let r = rng.next_u64();
        let sender = RtpSender::new(SenderConfig {
            ssrc: r as u32,
            payload_type: cfg.payload_type,
            clock_rate: cfg.clock_rate,
            event_payload_type: cfg.event_payload_type,
            initial_seq: (r >> 32) as u16,
            initial_timestamp: rng.next_u64() as u32,
        });
        let mut timers = TimerTable::default();
        timers.set(Timer::Tick, now);
        timers.set(Timer::MediaTimeout, now + cfg.media_timeout);
        // RFC 3550 6.2: the first report after half the minimum interval.
        let first = cfg.rtcp_interval.mul_f64(0.5 * (0.5 + rng.unit()));
        timers.set(Timer::Rtcp, now + first);
        let silence = vec![silence_byte(cfg.payload_type); 160];
        Ok(Session {
            latch: Latch::new(cfg.remote_rtp, cfg.latch_threshold),
            rtcp_to: if cfg.rtcp_mux {
                cfg.remote_rtp
            } else {
                cfg.remote_rtcp
            },
            rtcp_latched: false,
            remote: None,
            old_ssrc: None,
            lost_before: 0,
            jitter: JitterBuffer::new(cfg.jitter),
            dtmf: DtmfReceiver::default(),
            sender,
            pacer: Pacer::new(now, Duration::from_millis(20)),
            timers,
            rng,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            outgoing: VecDeque::new(),
            silence,
            stats: CallStats::default(),
            on_hold: false,
            closed: false,
            epoch: now,
            ntp_epoch: ntp_now,
            last_sr: None,
            last_tick_due: now,
            sent_since_report: false,
            srtp: cfg
                .srtp
                .as_ref()
                .map(|k| SrtpSession::new(k.suite, &k.local, &k.remote)),
            scratch: Vec::new(),
            cfg,
        })
    }

    pub fn ssrc(&self) -> u32 {
        self.sender.ssrc()
    }

    pub fn stats(&self) -> CallStats {
        let mut s = self.stats;
        let j = self.jitter.stats();
        s.late = j.late;
        s.buffer_grown = j.grown;
        s.buffer_shrunk = j.shrunk;
        s.buffer_delay = self.jitter.delay();
        s.lost = self.lost_before + self.remote.as_ref().map_or(0, |(_, r)| r.cumulative_lost());
        s.jitter = self
            .remote
            .as_ref()
            .map_or(Duration::ZERO, |(_, r)| r.jitter_duration());
        let (p, o) = self.sender.counts();
        (s.packets_sent, s.octets_sent) = (p, o);
        s
    }

    /// The encoded silence to send when there is nothing to say (the bridge encodes it once;
    /// the default is 20 ms of G.711 silence).
    pub fn set_silence_payload(&mut self, payload: Vec<u8>) {
        self.silence = payload;
    }

    /// Queues one 20 ms encoded frame to send on a coming tick.
    pub fn queue_audio(&mut self, payload: Vec<u8>) -> Result<(), SessionError> {
        if self.closed {
            return Err(SessionError::Closed);
        }
        if self.outgoing.len() >= self.cfg.queue_limit {
            return Err(SessionError::QueueFull(self.cfg.queue_limit));
        }
        self.outgoing.push_back(payload);
        Ok(())
    }

    /// Barge-in: drops queued frames at once; returns how many were never sent.
    pub fn clear_audio(&mut self) -> usize {
        let n = self.outgoing.len();
        self.outgoing.clear();
        n
    }

    /// Sends a digit (RFC 4733) instead of audio for its duration.
    pub fn send_digit(&mut self, digit: char, duration: Duration) -> Result<(), SessionError> {
        if self.closed {
            return Err(SessionError::Closed);
        }
        self.sender.send_digit(digit, duration)?;
        self.stats.digits_sent += 1;
        Ok(())
    }

    /// On hold (set by the bridge from SDP direction) there is no media timeout.
    pub fn set_on_hold(&mut self, now: Instant, on_hold: bool) {
        self.on_hold = on_hold;
        if on_hold {
            self.timers.stop(Timer::MediaTimeout);
        } else if !self.closed {
            self.timers
                .set(Timer::MediaTimeout, now + self.cfg.media_timeout);
        }
    }

    /// Ends the session: one last report with RTCP BYE (RFC 3550 6.6), then silence.
    pub fn close(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        self.send_report(now, true);
        self.closed = true;
        for t in TimerTable::all() {
            self.timers.stop(t);
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The next slot's payload if already buffered (for Opus FEC after a `Missing` slot).
    pub fn peek_next_payload(&self) -> Option<&[u8]> {
        self.jitter.peek_next()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_timeout()
    }

    /// One datagram received on `socket` from `from`. Bad input is counted, never returned.
    pub fn handle_input(&mut self, now: Instant, socket: Socket, from: SocketAddr, bytes: &[u8]) {
        if self.closed {
            return;
        }
        let rtcp = socket == Socket::Rtcp || (self.cfg.rtcp_mux && is_rtcp(bytes));
        let Some(srtp) = self.srtp.as_mut() else {
            if rtcp {
                self.handle_rtcp(now, from, bytes);
            } else {
                self.handle_rtp(now, from, bytes);
            }
            return;
        };
        // RFC 3711 3.3: nothing of a packet is used (not even for latching) before its tag
        // and its index have been checked.
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        buf.extend_from_slice(bytes);
        let r = if rtcp {
            srtp.inbound.unprotect_rtcp(&mut buf)
        } else {
            srtp.inbound.unprotect_rtp(&mut buf)
        };
        match r {
            Ok(()) if rtcp => self.handle_rtcp(now, from, &buf),
            Ok(()) => self.handle_rtp(now, from, &buf),
            Err(SrtpError::AuthFailed) if rtcp => self.stats.srtcp_auth_failed += 1,
            Err(SrtpError::AuthFailed) => self.stats.srtp_auth_failed += 1,
            Err(SrtpError::Replayed(_) | SrtpError::TooOld(_)) => self.stats.srtp_replayed += 1,
            Err(_) => self.stats.malformed += 1,
        }
        self.scratch = buf;
    }

    /// SRTP/SRTCP-protect an outgoing datagram in place; false if it must not be sent.
    fn protect(&mut self, rtcp: bool, bytes: &mut Vec<u8>) -> bool {
        let Some(srtp) = self.srtp.as_mut() else {
            return true;
        };
        let r = if rtcp {
            srtp.outbound.protect_rtcp(bytes)
        } else {
            srtp.outbound.protect_rtp(bytes)
        };
        if r.is_err() {
            self.stats.srtp_protect_failed += 1;
        }
        r.is_ok()
    }

    fn handle_rtp(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        let Ok(pkt) = RtpPacket::parse(bytes) else {
            self.stats.malformed += 1;
            return;
        };
        let pt = pkt.payload_type;
        let is_event = self.cfg.event_payload_type == Some(pt);
        if pt != self.cfg.payload_type && pt != PT_CN && !is_event {
            // RFC 3550 A.1 validity: a payload type we did not negotiate.
            self.stats.malformed += 1;
            return;
        }
        match self.latch.observe(from) {
            LatchDecision::Reject => {
                self.stats.rejected_source += 1;
                return;
            }
            LatchDecision::Latched(addr) => {
                if !self.rtcp_latched {
                    self.rtcp_to = Some(if self.cfg.rtcp_mux {
                        addr
                    } else {
                        SocketAddr::new(addr.ip(), addr.port().wrapping_add(1))
                    });
                }
                self.events.push_back(Event::Latched(addr));
            }
            LatchDecision::Accept => {}
        }
        let ext = match self.reception(pkt.ssrc, pkt.sequence) {
            Some(ext) => ext,
            None => return,
        };
        self.stats.packets_received += 1;
        self.stats.octets_received += pkt.payload.len() as u64;
        if !self.on_hold {
            self.timers
                .set(Timer::MediaTimeout, now + self.cfg.media_timeout);
        }
        let kind = if is_event {
            match TelephoneEvent::parse(pkt.payload) {
                Ok(ev) => {
                    let (a, b) = self.dtmf.on_packet(pkt.timestamp, ev);
                    self.push_digit(a);
                    self.push_digit(b);
                }
                Err(_) => self.stats.malformed += 1,
            }
            PacketKind::Event
        } else if pt == PT_CN {
            // RFC 3389: CN is played as silence; a bad level still holds its sequence number.
            if ComfortNoise::parse(pkt.payload).is_err() {
                self.stats.malformed += 1;
            }
            PacketKind::ComfortNoise
        } else {
            if let Some((_, r)) = self.remote.as_mut() {
                r.update_jitter(now, pkt.timestamp);
            }
            let d = self.dtmf.on_audio(pkt.timestamp);
            self.push_digit(d);
            PacketKind::Audio {
                payload_type: pt,
                payload: pkt.payload,
            }
        };
        self.jitter.push(now, ext, pkt.timestamp, kind);
    }

    /// RFC 3550 A.1 for the current SSRC; a new SSRC starts a new stream (8.2).
    fn reception(&mut self, ssrc: u32, seq: u16) -> Option<u64> {
        match self.remote.as_ref().map(|(s, _)| *s) {
            Some(cur) if cur == ssrc => {}
            Some(_) if self.old_ssrc == Some(ssrc) => {
                // A straggler of the stream we left: too late for anything.
                self.stats.malformed += 1;
                return None;
            }
            _ => {
                if let Some((old, r)) = self.remote.take() {
                    self.lost_before += r.cumulative_lost();
                    self.old_ssrc = Some(old);
                    self.stats.ssrc_changes += 1;
                    self.events.push_back(Event::SsrcChanged { old, new: ssrc });
                    self.jitter.reset();
                    let d = self.dtmf.flush();
                    self.push_digit(d);
                }
                self.remote = Some((
                    ssrc,
                    ReceptionState::new(seq, self.cfg.clock_rate, self.epoch),
                ));
            }
        }
        let (_, r) = self.remote.as_mut()?;
        match r.update_seq(seq) {
            SeqOutcome::Valid(ext) => Some(ext),
            SeqOutcome::Duplicate => {
                self.stats.duplicates += 1;
                None
            }
            SeqOutcome::Jump => None,
        }
    }

    fn push_digit(&mut self, d: Option<Digit>) {
        if let Some(d) = d {
            self.stats.digits_received += 1;
            self.events.push_back(Event::Digit(d));
        }
    }

    fn handle_rtcp(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        let known_ip = self
            .latch
            .destination()
            .map(|a| a.ip())
            .or(self.cfg.remote_rtcp.map(|a| a.ip()));
        if known_ip.is_some_and(|ip| ip != from.ip()) {
            self.stats.rejected_source += 1;
            return;
        }
        let Ok(summary) = parse_compound(bytes) else {
            self.stats.malformed += 1;
            return;
        };
        self.stats.rtcp_received += 1;
        if !self.rtcp_latched {
            // Symmetric RTCP: answer where the reports come from.
            self.rtcp_latched = true;
            self.rtcp_to = Some(from);
        }
        if let Some(si) = summary.sender_info {
            // RFC 3550 6.4.1 LSR: the middle 32 bits of the SR's NTP timestamp.
            self.last_sr = Some(((si.ntp >> 16) as u32, now));
        }
        let ours = self.sender.ssrc();
        if let Some(b) = summary.report_blocks.iter().find(|b| b.ssrc == ours) {
            self.stats.remote_fraction_lost = b.fraction_lost;
            self.stats.remote_cumulative_lost = b.cumulative_lost;
            self.stats.remote_jitter = Duration::from_micros(
                u64::from(b.jitter) * 1_000_000 / u64::from(self.cfg.clock_rate),
            );
        }
        let theirs = self
            .remote
            .as_ref()
            .map(|(s, _)| *s)
            .or(summary.sender_ssrc);
        if theirs.is_some_and(|s| summary.bye.contains(&s)) {
            self.events.push_back(Event::RemoteBye);
        }
    }

    /// Moves the packet clock so the first tick is due at `first` instead of at creation, and
    /// every 20 ms after it. A media engine pacing many calls on one thread uses it to spread
    /// their ticks over the period: calls that arrive in step (a load generator's fixed rate,
    /// an SBC's batch) would otherwise all be due in the same instant, and the last of them
    /// would leave as late as the work for all the others. Only before the first tick (the
    /// RTP timestamps follow the tick count, so nothing the peer sees changes): false, and
    /// nothing moved, once one has gone or the session is closed.
    pub fn align_ticks(&mut self, first: Instant) -> bool {
        if self.pacer.started() || self.closed {
            return false;
        }
        self.pacer = Pacer::new(first, self.pacer.period());
        self.last_tick_due = first;
        self.timers.set(Timer::Tick, first);
        true
    }

    /// Drives timers; call when `poll_timeout` is reached (early calls are harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        if let Some(tick) = self.pacer.poll(now) {
            self.on_tick(now, tick.missed, tick.due);
        }
        self.timers.set(Timer::Tick, self.pacer.next_deadline());
        if self.timers.expire(Timer::Rtcp, now) {
            self.send_report(now, false);
            let next = self.cfg.rtcp_interval.mul_f64(0.5 + self.rng.unit());
            self.timers.set(Timer::Rtcp, now + next);
        }
        if self.timers.expire(Timer::MediaTimeout, now) && !self.on_hold {
            self.events.push_back(Event::MediaTimeout);
        }
    }

    fn on_tick(&mut self, now: Instant, missed: u64, due: Instant) {
        self.last_tick_due = due;
        if missed > 0 {
            // Catch up by dropping: the missed slots are skipped, never played or sent late.
            for _ in 0..missed {
                self.jitter.pop(now);
                self.outgoing.pop_front();
            }
            self.sender.skip(missed);
            self.stats.ticks_dropped += missed;
        }
        let slot = self.jitter.pop(now);
        if matches!(slot, Slot::Missing { .. }) {
            self.stats.concealed += 1;
        }
        let frame = self.outgoing.pop_front();
        let out = match frame.as_deref() {
            Some(b) => Outgoing::Audio(b),
            None => Outgoing::Silence(&self.silence),
        };
        let mut bytes = Vec::with_capacity(12 + self.silence.len() + 10);
        let sent = match self.sender.tick(out, &mut bytes) {
            Ok(kind) => kind,
            Err(_) => {
                self.stats.malformed += 1;
                SentKind::Silence
            }
        };
        if let Some(to) = self.latch.destination() {
            if self.protect(false, &mut bytes) {
                self.transmits.push_back(Transmit {
                    socket: Socket::Rtp,
                    to,
                    bytes,
                });
                self.sent_since_report = true;
            }
        }
        let late = now.saturating_duration_since(due);
        self.events.push_back(Event::Tick {
            slot,
            sent,
            missed,
            late,
        });
    }

    fn ntp_at(&self, now: Instant) -> u64 {
        let d = now.saturating_duration_since(self.epoch);
        let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
        self.ntp_epoch.wrapping_add((d.as_secs() << 32) | frac)
    }

    fn send_report(&mut self, now: Instant, bye: bool) {
        let Some(to) = self.rtcp_to else { return };
        let mut blocks = Vec::new();
        if let Some((ssrc, r)) = self.remote.as_mut() {
            let loss = r.report();
            self.stats.fraction_lost = loss.fraction_lost;
            let (last_sr, delay_since_last_sr) = match self.last_sr {
                Some((lsr, at)) => {
                    let d = now.saturating_duration_since(at);
                    (
                        lsr,
                        u32::try_from(d.as_micros() as u64 * 65_536 / 1_000_000)
                            .unwrap_or(u32::MAX),
                    )
                }
                None => (0, 0),
            };
            blocks.push(ReportBlock {
                ssrc: *ssrc,
                fraction_lost: loss.fraction_lost,
                cumulative_lost: i32::try_from(loss.cumulative_lost).unwrap_or(0),
                extended_highest_seq: loss.extended_max as u32,
                jitter: r.jitter(),
                last_sr,
                delay_since_last_sr,
            });
        }
        let sender_info = if self.sent_since_report {
            let (packets, octets) = self.sender.counts();
            // RTP time of `now` on our media clock (RFC 3550 6.4.1), from the last tick.
            let since = now.saturating_duration_since(self.last_tick_due);
            let ahead = since.as_micros() as u64 * u64::from(self.cfg.clock_rate) / 1_000_000;
            let rtp_timestamp = self
                .sender
                .next_timestamp()
                .wrapping_sub(self.sender.samples_per_frame())
                .wrapping_add(ahead as u32);
            Some(SenderInfo {
                ntp: self.ntp_at(now),
                rtp_timestamp,
                packet_count: packets as u32,
                octet_count: octets as u32,
            })
        } else {
            None
        };
        self.sent_since_report = false;
        let spec = ReportSpec {
            ssrc: self.sender.ssrc(),
            sender_info,
            blocks: &blocks,
            cname: &self.cfg.cname,
            bye,
        };
        match build_compound(&spec) {
            Ok(mut bytes) => {
                if !self.protect(true, &mut bytes) {
                    return;
                }
                self.stats.rtcp_sent += 1;
                let socket = if self.cfg.rtcp_mux {
                    Socket::Rtp
                } else {
                    Socket::Rtcp
                };
                self.transmits.push_back(Transmit { socket, to, bytes });
            }
            Err(_) => self.stats.malformed += 1,
        }
    }
}

/// 20 ms of digital silence for the static G.711 types (RFC 3551 4.5.14), else zeros.
fn silence_byte(payload_type: u8) -> u8 {
    match payload_type {
        0 => 0xff,
        8 => 0xd5,
        _ => 0,
    }
}
