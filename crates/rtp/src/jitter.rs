//! Adaptive jitter buffer: reorders by sequence number, plays one 20 ms slot per tick by
//! timestamp, drops packets that arrive after their slot, and keeps its delay between 20 and
//! 200 ms from the measured slack of arriving packets (grows at once, shrinks slowly).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What the codec gets for one 20 ms slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    Audio {
        payload_type: u8,
        payload: Vec<u8>,
    },
    /// Nothing arrived in time (loss or lateness): the codec conceals (PLC/FEC).
    Missing {
        payload_type: u8,
    },
    /// Nothing to play by design: before the first packet, comfort noise (RFC 3389), DTX,
    /// an RFC 4733 event replacing audio.
    Silence,
}

/// Kind of a pushed packet; every kind occupies a sequence number, so all of them take part in
/// telling loss from a deliberate gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind<'a> {
    Audio { payload_type: u8, payload: &'a [u8] },
    ComfortNoise,
    Event,
}

#[derive(Debug, Clone)]
enum Stored {
    Audio { payload_type: u8, payload: Vec<u8> },
    ComfortNoise,
    Event,
}

#[derive(Debug, Clone)]
struct Entry {
    ts: i64,
    stored: Stored,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    pub frame: Duration,
    pub samples_per_frame: u32,
    pub min_delay: Duration,
    pub max_delay: Duration,
    pub initial_delay: Duration,
    /// How long the slack must stay comfortable before the buffer gives back one frame.
    pub shrink_window: Duration,
}

impl JitterConfig {
    pub fn new(samples_per_frame: u32) -> Self {
        JitterConfig {
            frame: Duration::from_millis(20),
            samples_per_frame,
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            initial_delay: Duration::from_millis(60),
            shrink_window: Duration::from_secs(3),
        }
    }
}

/// Counters the buffer alone can know.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Audio packets that arrived after their slot was played (dropped).
    pub late: u64,
    /// Slots inserted to grow the delay.
    pub grown: u64,
    /// Slots skipped to shrink the delay.
    pub shrunk: u64,
    /// Timestamp jumps that re-anchored playout.
    pub resyncs: u64,
}

#[derive(Debug, Clone)]
pub struct JitterBuffer {
    cfg: JitterConfig,
    entries: BTreeMap<u64, Entry>,
    started: bool,
    first_arrival: Option<Instant>,
    /// Unwrapped timestamp of the slot the next pop plays.
    next_ts: i64,
    ts_ref: Option<i64>,
    last_seq: Option<u64>,
    last_pop_at: Option<Instant>,
    silent: bool,
    last_pt: u8,
    pending_grow: u32,
    pending_shrink: bool,
    shrink_wait: u32,
    window_start: Option<Instant>,
    window_min_slack: i64,
    window_max_slack: i64,
    delay_estimate: Duration,
    stats: JitterStats,
}

impl JitterBuffer {
    pub fn new(cfg: JitterConfig) -> Self {
        JitterBuffer {
            cfg,
            entries: BTreeMap::new(),
            started: false,
            first_arrival: None,
            next_ts: 0,
            ts_ref: None,
            last_seq: None,
            last_pop_at: None,
            silent: true,
            last_pt: 0,
            pending_grow: 0,
            pending_shrink: false,
            shrink_wait: 0,
            window_start: None,
            window_min_slack: i64::MAX,
            window_max_slack: i64::MIN,
            delay_estimate: cfg.initial_delay,
            stats: JitterStats::default(),
        }
    }

    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Current playout delay of the fastest recent packets.
    pub fn delay(&self) -> Duration {
        self.delay_estimate
    }

    /// Packets waiting for their slot.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A new stream (SSRC change): forget everything but the counters and the learned delay.
    pub fn reset(&mut self) {
        let (stats, delay) = (self.stats, self.delay_estimate);
        *self = JitterBuffer::new(self.cfg);
        self.stats = stats;
        self.delay_estimate = delay.clamp(self.cfg.min_delay, self.cfg.max_delay);
    }

    fn frame_us(&self) -> i64 {
        self.cfg.frame.as_micros() as i64
    }

    fn unwrap_ts(&self, ts: u32) -> i64 {
        match self.ts_ref {
            // RFC 3550 5.1: timestamps wrap; nearest unwrapped value to the reference.
            Some(r) => r + i64::from(ts.wrapping_sub(r as u32) as i32),
            None => i64::from(ts),
        }
    }

    /// Stores one packet. `ext_seq` is the RFC 3550 A.1 extended sequence number.
    /// Returns false if the packet was dropped as late.
    pub fn push(&mut self, now: Instant, ext_seq: u64, ts: u32, kind: PacketKind<'_>) -> bool {
        let spf = i64::from(self.cfg.samples_per_frame);
        let mut uts = self.unwrap_ts(ts);
        if self.ts_ref.is_none() {
            self.ts_ref = Some(uts);
        }
        self.first_arrival.get_or_insert(now);
        if self.last_seq.is_some_and(|l| ext_seq <= l) {
            if matches!(kind, PacketKind::Audio { .. }) {
                self.stats.late += 1;
                self.note_late(now, uts);
            }
            return false;
        }
        if let (true, PacketKind::Audio { .. }) = (self.started, kind) {
            let jump = uts - self.next_ts;
            let limit = 50 * spf; // one second of frames
            if jump > limit + self.cfg.max_delay.as_millis() as i64 * spf / 20 || jump < -limit {
                // RFC 3550 5.1 lets timestamps jump (a media switch behind the same SSRC):
                // re-anchor instead of waiting for the slot or dropping everything as late.
                self.stats.resyncs += 1;
                self.reset();
                self.first_arrival = Some(now);
                uts = i64::from(ts);
                self.ts_ref = Some(uts);
            } else if uts < self.next_ts {
                self.stats.late += 1;
                self.note_late(now, uts);
                return false;
            } else {
                self.note_slack(now, uts);
            }
        }
        let stored = match kind {
            PacketKind::Audio {
                payload_type,
                payload,
            } => Stored::Audio {
                payload_type,
                payload: payload.to_vec(),
            },
            PacketKind::ComfortNoise => Stored::ComfortNoise,
            PacketKind::Event => Stored::Event,
        };
        self.entries.insert(ext_seq, Entry { ts: uts, stored });
        true
    }

    /// Microseconds from `now` until the slot holding `uts` is played.
    fn slack_us(&self, now: Instant, uts: i64) -> Option<i64> {
        let last = self.last_pop_at?;
        let frames_ahead = (uts - self.next_ts) / i64::from(self.cfg.samples_per_frame) + 1;
        let at = last.saturating_duration_since(now).as_micros() as i64
            - now.saturating_duration_since(last).as_micros() as i64;
        Some(at + frames_ahead * self.frame_us())
    }

    fn note_slack(&mut self, now: Instant, uts: i64) {
        if let Some(s) = self.slack_us(now, uts) {
            self.window_min_slack = self.window_min_slack.min(s);
            self.window_max_slack = self.window_max_slack.max(s);
            let d = Duration::from_micros(u64::try_from(self.window_max_slack).unwrap_or(0));
            self.delay_estimate = self.delay_estimate.max(d);
        }
    }

    fn note_late(&mut self, now: Instant, uts: i64) {
        // Grow by as many frames as the packet missed its slot by, within max_delay.
        let late_us = self.slack_us(now, uts).map_or(0, |s| -s).max(0);
        let frames = (late_us / self.frame_us() + 1) as u32;
        let room = self
            .cfg
            .max_delay
            .saturating_sub(self.delay_estimate)
            .as_micros() as i64
            / self.frame_us();
        let grow = frames.min(u32::try_from(room.max(0)).unwrap_or(0));
        self.pending_grow = self.pending_grow.max(grow);
        self.pending_shrink = false;
        self.window_min_slack = self.window_min_slack.min(-late_us);
    }

    fn end_window(&mut self, now: Instant) {
        let start = *self.window_start.get_or_insert(now);
        if now.saturating_duration_since(start) < self.cfg.shrink_window {
            return;
        }
        let f = self.frame_us();
        let max = self.window_max_slack;
        if max != i64::MIN {
            self.delay_estimate = Duration::from_micros(u64::try_from(max).unwrap_or(0));
            let min = self.window_min_slack;
            let above_max = max > self.cfg.max_delay.as_micros() as i64;
            // Keep a frame of margin after shrinking, and never go under min_delay.
            let roomy = min >= 2 * f && max - f >= self.cfg.min_delay.as_micros() as i64;
            if above_max || roomy {
                self.pending_shrink = true;
            }
        }
        self.window_start = Some(now);
        self.window_min_slack = i64::MAX;
        self.window_max_slack = i64::MIN;
    }

    /// Plays the next 20 ms slot. Call once per pacer tick (and once per missed tick).
    pub fn pop(&mut self, now: Instant) -> Slot {
        if !self.started {
            let due = self
                .first_arrival
                .is_some_and(|a| now + self.cfg.frame >= a + self.cfg.initial_delay);
            let first = self.entries.values().next().map(|e| e.ts);
            match (due, first) {
                (true, Some(ts)) => {
                    self.started = true;
                    self.next_ts = ts;
                    self.window_start = Some(now);
                }
                _ => return Slot::Silence,
            }
        }
        self.end_window(now);
        self.last_pop_at = Some(now);
        let spf = i64::from(self.cfg.samples_per_frame);
        if self.pending_grow > 0 {
            self.pending_grow -= 1;
            self.stats.grown += 1;
            self.delay_estimate += self.cfg.frame;
            return self.filler(false);
        }
        if self.pending_shrink {
            self.shrink_wait += 1;
            // Prefer to drop a silent slot; after a second of speech, drop audio anyway.
            if self.silent || self.shrink_wait > 50 {
                self.pending_shrink = false;
                self.shrink_wait = 0;
                self.stats.shrunk += 1;
                self.delay_estimate = self.delay_estimate.saturating_sub(self.cfg.frame);
                self.next_ts += spf;
                self.consume_before(self.next_ts);
            }
        }
        let slot_end = self.next_ts + spf;
        self.consume_non_audio(slot_end);
        let slot = match self.entries.first_key_value() {
            Some((&seq, e)) if e.ts < slot_end && matches!(e.stored, Stored::Audio { .. }) => {
                let e = self.entries.remove(&seq);
                self.last_seq = Some(seq);
                self.silent = false;
                match e.map(|e| e.stored) {
                    Some(Stored::Audio {
                        payload_type,
                        payload,
                    }) => {
                        self.last_pt = payload_type;
                        Slot::Audio {
                            payload_type,
                            payload,
                        }
                    }
                    _ => Slot::Silence,
                }
            }
            Some((&seq, _)) => {
                // Every sequence number up to the next packet accounted for: a deliberate gap.
                let gap_free = self.last_seq.is_none_or(|l| seq == l + 1);
                self.filler(gap_free)
            }
            None => self.filler(false),
        };
        self.next_ts = slot_end;
        self.ts_ref = Some(self.next_ts);
        slot
    }

    /// The payload due in the next slot, if it has arrived: after a `Missing` slot this is the
    /// packet following the lost one, whose Opus in-band FEC recovers it (RFC 6716 2.1.7).
    pub fn peek_next(&self) -> Option<&[u8]> {
        let slot_end = self.next_ts + i64::from(self.cfg.samples_per_frame);
        self.entries
            .values()
            .find(|e| e.ts >= self.next_ts)
            .and_then(|e| match &e.stored {
                Stored::Audio { payload, .. } if e.ts < slot_end => Some(payload.as_slice()),
                _ => None,
            })
    }

    fn filler(&self, gap_free: bool) -> Slot {
        if self.silent || gap_free {
            Slot::Silence
        } else {
            Slot::Missing {
                payload_type: self.last_pt,
            }
        }
    }

    /// CN and event packets whose time has come: they only mark silence and seq continuity.
    fn consume_non_audio(&mut self, slot_end: i64) {
        while let Some((&seq, e)) = self.entries.first_key_value() {
            match e.stored {
                Stored::ComfortNoise | Stored::Event if e.ts < slot_end => {
                    self.entries.remove(&seq);
                    self.last_seq = Some(seq);
                    self.silent = true;
                }
                _ => break,
            }
        }
    }

    /// Drops audio older than `ts` (shrinking): these packets were received, just not played.
    fn consume_before(&mut self, ts: i64) {
        while let Some((&seq, e)) = self.entries.first_key_value() {
            if e.ts >= ts {
                break;
            }
            self.entries.remove(&seq);
            self.last_seq = Some(seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use testkit::ManualClock;

    const F: Duration = Duration::from_millis(20);

    fn audio(i: u8) -> PacketKind<'static> {
        const P: [[u8; 1]; 8] = [[0], [1], [2], [3], [4], [5], [6], [7]];
        PacketKind::Audio {
            payload_type: 0,
            payload: &P[i as usize % 8],
        }
    }

    fn index(s: &Slot) -> Option<u8> {
        match s {
            Slot::Audio { payload, .. } => payload.first().copied(),
            _ => None,
        }
    }

    #[test]
    fn jitter_buffer_reorders_within_its_delay() {
        let mut clock = ManualClock::default();
        let mut jb = JitterBuffer::new(JitterConfig::new(160));
        for &i in &[0u8, 2, 1, 3, 5, 4] {
            jb.push(clock.now(), u64::from(i), u32::from(i) * 160, audio(i));
        }
        let mut out = Vec::new();
        for _ in 0..8 {
            out.push(index(&jb.pop(clock.now())));
            clock.advance(F);
        }
        let played: Vec<u8> = out.into_iter().flatten().collect();
        assert_eq!(played, [0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn rfc6716_2_1_7_after_a_lost_slot_the_next_packet_is_there_for_fec() {
        let mut clock = ManualClock::default();
        let mut jb = JitterBuffer::new(JitterConfig::new(160));
        // Packet 2 is lost; 0, 1, 3, 4 arrive at once.
        for &i in &[0u8, 1, 3, 4] {
            jb.push(clock.now(), u64::from(i), u32::from(i) * 160, audio(i));
        }
        let mut seen = Vec::new();
        for _ in 0..6 {
            let slot = jb.pop(clock.now());
            if matches!(slot, Slot::Missing { .. }) {
                seen.push(jb.peek_next().and_then(|p| p.first().copied()));
            }
            clock.advance(F);
        }
        assert_eq!(
            seen,
            [Some(3)],
            "the packet after the lost one, not a later one"
        );
    }

    #[test]
    fn jitter_buffer_late_packet_dropped_counted_and_buffer_grows() {
        let mut clock = ManualClock::default();
        let mut jb = JitterBuffer::new(JitterConfig::new(160));
        let t0 = clock.now();
        let mut slots = Vec::new();
        for i in 0..40u32 {
            clock.advance_to(t0 + F * i);
            // Packet 10 is held back 100 ms: its slot passes first.
            if i != 10 {
                jb.push(clock.now(), u64::from(i), i * 160, audio(i as u8));
            }
            if i == 15 {
                jb.push(clock.now(), 10, 10 * 160, audio(10));
            }
            slots.push(jb.pop(clock.now()));
        }
        assert_eq!(jb.stats().late, 1);
        assert!(jb.stats().grown >= 1, "grew after the late packet");
        assert_eq!(
            slots
                .iter()
                .filter(|s| matches!(s, Slot::Missing { .. }))
                .count() as u64,
            1 + jb.stats().grown
        );
        assert!(jb.delay() > Duration::from_millis(60));
    }

    #[test]
    fn jitter_buffer_shrinks_slowly_when_the_network_calms() {
        let mut clock = ManualClock::default();
        let mut cfg = JitterConfig::new(160);
        cfg.initial_delay = Duration::from_millis(200);
        let mut jb = JitterBuffer::new(cfg);
        let t0 = clock.now();
        for i in 0..1000u32 {
            clock.advance_to(t0 + F * i);
            jb.push(clock.now(), u64::from(i), i * 160, audio(i as u8));
            jb.pop(clock.now());
            if i == 100 {
                assert_eq!(jb.stats().shrunk, 0, "not within the first window");
            }
        }
        // One frame per 3 s window at most: 20 s gives back several frames, never below 20 ms.
        let s = jb.stats().shrunk;
        assert!((3..=7).contains(&s), "shrunk {s}");
        assert!(jb.delay() >= Duration::from_millis(20));
        assert_eq!(jb.stats().late, 0);
    }

    #[test]
    fn jitter_buffer_delay_capped_at_200ms() {
        let mut clock = ManualClock::default();
        let mut jb = JitterBuffer::new(JitterConfig::new(160));
        let t0 = clock.now();
        // Every 10th packet 400 ms late: the buffer grows to its cap and no further.
        for i in 0..1500u32 {
            clock.advance_to(t0 + F * i);
            if i % 10 != 5 {
                jb.push(clock.now(), u64::from(i), i * 160, audio(0));
            }
            if i >= 20 && i % 10 == 5 {
                jb.push(clock.now(), u64::from(i - 20), (i - 20) * 160, audio(0));
            }
            jb.pop(clock.now());
            assert!(
                jb.delay() <= Duration::from_millis(220),
                "delay {:?} at {i}",
                jb.delay()
            );
        }
    }

    #[test]
    fn rfc3550_5_1_timestamp_jump_resyncs_playout() {
        let mut clock = ManualClock::default();
        let mut jb = JitterBuffer::new(JitterConfig::new(160));
        let t0 = clock.now();
        let mut played = 0;
        for i in 0..200u32 {
            clock.advance_to(t0 + F * i);
            let ts = if i < 100 {
                i * 160
            } else {
                50_000_000 + i * 160
            };
            jb.push(clock.now(), u64::from(i), ts, audio(1));
            if index(&jb.pop(clock.now())).is_some() {
                played += 1;
            }
        }
        assert_eq!(jb.stats().resyncs, 1);
        assert!(played >= 190, "played {played}");
    }
}
