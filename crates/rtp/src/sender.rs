//! Send side: one SSRC, sequence numbers and timestamps that never reset, whatever produces
//! the audio; one packet per 20 ms tick; marker on talkspurt start (RFC 3551 4.1); RFC 4733
//! digits replace audio while they play.

use crate::error::{EventError, RtpError};
use crate::packet::rtp::RtpHeader;
use crate::packet::telephone_event::{event_of, TelephoneEvent};
use std::collections::VecDeque;
use std::time::Duration;

/// What the caller has for this tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outgoing<'a> {
    /// Speech: the first one after silence carries the marker bit.
    Audio(&'a [u8]),
    /// Nothing to say: this payload (the encoded silence the caller supplies) keeps the
    /// stream and the peer's jitter buffer fed.
    Silence(&'a [u8]),
}

/// What went out on a tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SentKind {
    Audio,
    Silence,
    /// A telephone-event packet replaced the audio of this tick.
    Event,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderConfig {
    pub ssrc: u32,
    pub payload_type: u8,
    /// RTP clock: 8000 for PCMU/PCMA (RFC 3551 4.5.14), 48000 for Opus (RFC 7587 4.1).
    pub clock_rate: u32,
    /// Negotiated telephone-event payload type, same clock as the audio (RFC 4733 2.1).
    pub event_payload_type: Option<u8>,
    /// Random starting points (RFC 3550 5.1).
    pub initial_seq: u16,
    pub initial_timestamp: u32,
}

#[derive(Debug, Clone, Copy)]
struct DigitTx {
    event: u8,
    /// Timestamp of the tick the event started on (all its packets carry it).
    ts: u32,
    total: u16,
    elapsed: u32,
    ends_sent: u8,
}

#[derive(Debug, Clone)]
pub struct RtpSender {
    cfg: SenderConfig,
    spf: u32,
    seq: u16,
    /// Timestamp of the next tick.
    ts: u32,
    marker_next: bool,
    digit: Option<DigitTx>,
    queued: VecDeque<(u8, u16)>,
    packets: u64,
    octets: u64,
    last_ts_sent: Option<u32>,
}

/// Volume of our digits in -dBm0 (RFC 4733 2.3.5; typical DTMF level).
const DTMF_VOLUME: u8 = 10;
/// RFC 4733 2.5.1.4: the end packet is sent three times.
const END_REPEATS: u8 = 3;

impl RtpSender {
    pub fn new(cfg: SenderConfig) -> Self {
        RtpSender {
            spf: cfg.clock_rate / 50,
            seq: cfg.initial_seq,
            ts: cfg.initial_timestamp,
            marker_next: true,
            digit: None,
            queued: VecDeque::new(),
            packets: 0,
            octets: 0,
            last_ts_sent: None,
            cfg,
        }
    }

    pub fn ssrc(&self) -> u32 {
        self.cfg.ssrc
    }

    /// Samples per 20 ms: 160 at 8 kHz, 960 at 48 kHz.
    pub fn samples_per_frame(&self) -> u32 {
        self.spf
    }

    /// (packets, payload octets) sent, for the SR sender info (RFC 3550 6.4.1).
    pub fn counts(&self) -> (u64, u64) {
        (self.packets, self.octets)
    }

    /// Timestamp of the last packet sent, if any.
    pub fn last_timestamp(&self) -> Option<u32> {
        self.last_ts_sent
    }

    /// Timestamp the next tick will carry.
    pub fn next_timestamp(&self) -> u32 {
        self.ts
    }

    /// Ticks the pacer dropped: time passed (timestamps advance, RFC 3550 5.1 sampling
    /// instant) but no packet went out (sequence numbers stay contiguous).
    pub fn skip(&mut self, ticks: u64) {
        if ticks == 0 {
            return;
        }
        let n = u32::try_from(ticks).unwrap_or(u32::MAX);
        self.ts = self.ts.wrapping_add(self.spf.wrapping_mul(n));
        self.marker_next = true;
        if let Some(d) = self.digit.as_mut() {
            d.elapsed = d.elapsed.saturating_add(self.spf.saturating_mul(n));
        }
    }

    /// Queues an outbound digit (RFC 4733): it plays after any digit in progress.
    pub fn send_digit(&mut self, digit: char, duration: Duration) -> Result<(), EventError> {
        let event = event_of(digit).ok_or(EventError::NotDtmf(digit as u8))?;
        let samples = duration.as_millis() as u64 * u64::from(self.cfg.clock_rate) / 1000;
        let total = u16::try_from(samples)
            .map_err(|_| EventError::TooLong(u32::try_from(samples).unwrap_or(u32::MAX)))?;
        if self.cfg.event_payload_type.is_none() {
            return Err(EventError::NotDtmf(event));
        }
        self.queued.push_back((event, total.max(1)));
        Ok(())
    }

    /// True while a digit is being sent or queued.
    pub fn sending_digit(&self) -> bool {
        self.digit.is_some() || !self.queued.is_empty()
    }

    /// Builds this tick's one packet into `out`.
    pub fn tick(&mut self, payload: Outgoing<'_>, out: &mut Vec<u8>) -> Result<SentKind, RtpError> {
        if self.digit.is_none() {
            if let Some((event, total)) = self.queued.pop_front() {
                self.digit = Some(DigitTx {
                    event,
                    ts: self.ts,
                    total,
                    elapsed: 0,
                    ends_sent: 0,
                });
            }
        }
        let kind = match (self.digit, self.cfg.event_payload_type) {
            (Some(d), Some(ept)) => {
                self.event_packet(d, ept, out)?;
                SentKind::Event
            }
            _ => {
                let (bytes, kind) = match payload {
                    Outgoing::Audio(b) => (b, SentKind::Audio),
                    Outgoing::Silence(b) => (b, SentKind::Silence),
                };
                let marker = kind == SentKind::Audio && self.marker_next;
                self.marker_next = kind == SentKind::Silence;
                self.header(marker, self.cfg.payload_type, self.ts)
                    .write(bytes, out)?;
                self.octets += bytes.len() as u64;
                self.last_ts_sent = Some(self.ts);
                kind
            }
        };
        self.packets += 1;
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(self.spf);
        Ok(kind)
    }

    fn header(&self, marker: bool, payload_type: u8, timestamp: u32) -> RtpHeader {
        RtpHeader {
            marker,
            payload_type,
            sequence: self.seq,
            timestamp,
            ssrc: self.cfg.ssrc,
        }
    }

    fn event_packet(&mut self, mut d: DigitTx, ept: u8, out: &mut Vec<u8>) -> Result<(), RtpError> {
        let start = d.elapsed == 0 && d.ends_sent == 0;
        d.elapsed = d.elapsed.saturating_add(self.spf);
        let end = d.elapsed >= u32::from(d.total);
        let duration = if end {
            d.total
        } else {
            u16::try_from(d.elapsed).unwrap_or(d.total)
        };
        let ev = TelephoneEvent {
            event: d.event,
            end,
            volume: DTMF_VOLUME,
            duration,
        };
        // RFC 4733 2.5.1.2: the first packet of an event carries the marker.
        let payload = ev.write().map_err(|_| RtpError::PayloadTypeRange(ept))?;
        self.header(start, ept, d.ts).write(&payload, out)?;
        self.octets += payload.len() as u64;
        self.last_ts_sent = Some(d.ts);
        if end {
            d.ends_sent += 1;
        }
        self.digit = if d.ends_sent >= END_REPEATS {
            None
        } else {
            Some(d)
        };
        // Audio after an event starts a new talkspurt.
        self.marker_next = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::rtp::RtpPacket;

    fn sender(clock_rate: u32) -> RtpSender {
        RtpSender::new(SenderConfig {
            ssrc: 0xabcd,
            payload_type: 0,
            clock_rate,
            event_payload_type: Some(101),
            initial_seq: 65534,
            initial_timestamp: u32::MAX - 100,
        })
    }

    fn run(s: &mut RtpSender, p: Outgoing<'_>) -> (SentKind, Vec<u8>) {
        let mut out = Vec::new();
        let k = s.tick(p, &mut out).unwrap();
        (k, out)
    }

    #[test]
    fn rfc3550_5_1_seq_and_ts_continuous_across_sources_and_wrap() {
        let mut s = sender(8000);
        let mut prev: Option<(u16, u32)> = None;
        for i in 0..200u32 {
            // Whatever produces audio (agents, sessions, silence) the stream stays continuous.
            let p = if i % 7 < 3 {
                Outgoing::Silence(&[0xff; 160])
            } else {
                Outgoing::Audio(&[1; 160])
            };
            let (_, b) = run(&mut s, p);
            let pkt = RtpPacket::parse(&b).unwrap();
            assert_eq!(pkt.ssrc, 0xabcd);
            if let Some((seq, ts)) = prev {
                assert_eq!(pkt.sequence, seq.wrapping_add(1));
                assert_eq!(pkt.timestamp, ts.wrapping_add(160));
            }
            prev = Some((pkt.sequence, pkt.timestamp));
        }
        assert_eq!(s.counts(), (200, 200 * 160));
    }

    #[test]
    fn rfc7587_4_1_opus_clock_48k_is_960_per_frame() {
        let mut s = sender(48_000);
        assert_eq!(s.samples_per_frame(), 960);
        let (_, a) = run(&mut s, Outgoing::Audio(&[1; 60]));
        let (_, b) = run(&mut s, Outgoing::Audio(&[1; 60]));
        let (a, b) = (RtpPacket::parse(&a).unwrap(), RtpPacket::parse(&b).unwrap());
        assert_eq!(b.timestamp.wrapping_sub(a.timestamp), 960);
    }

    #[test]
    fn rfc3551_4_1_marker_on_talkspurt_start_only() {
        let mut s = sender(8000);
        let marks: Vec<bool> = [false, true, true, false, false, true, true]
            .iter()
            .map(|&audio| {
                let p = if audio {
                    Outgoing::Audio(&[1; 160])
                } else {
                    Outgoing::Silence(&[0xff; 160])
                };
                RtpPacket::parse(&run(&mut s, p).1).unwrap().marker
            })
            .collect();
        assert_eq!(marks, [false, true, false, false, false, true, false]);
    }

    #[test]
    fn rfc3550_5_1_skipped_ticks_advance_ts_not_seq() {
        let mut s = sender(8000);
        let a = run(&mut s, Outgoing::Audio(&[1; 160])).1;
        s.skip(3);
        let b = run(&mut s, Outgoing::Audio(&[1; 160])).1;
        let (a, b) = (RtpPacket::parse(&a).unwrap(), RtpPacket::parse(&b).unwrap());
        assert_eq!(b.sequence, a.sequence.wrapping_add(1));
        assert_eq!(b.timestamp, a.timestamp.wrapping_add(4 * 160));
        assert!(b.marker, "a gap in time starts a talkspurt");
    }

    #[test]
    fn rfc4733_2_5_1_digit_start_updates_three_ends_same_timestamp() {
        let mut s = sender(8000);
        run(&mut s, Outgoing::Audio(&[1; 160]));
        s.send_digit('7', Duration::from_millis(100)).unwrap();
        let mut events = Vec::new();
        for _ in 0..10 {
            let (kind, b) = run(&mut s, Outgoing::Audio(&[1; 160]));
            let p = RtpPacket::parse(&b).unwrap();
            if kind == SentKind::Event {
                assert_eq!(p.payload_type, 101);
                events.push((
                    p.marker,
                    p.timestamp,
                    p.sequence,
                    TelephoneEvent::parse(p.payload).unwrap(),
                ));
            } else {
                assert_eq!(events.len(), 7, "audio resumes right after the three ends");
                assert!(p.marker);
                assert_eq!(p.timestamp, events[0].1.wrapping_add(7 * 160));
                break;
            }
        }
        // 100 ms = 800 samples: 5 packets (the 5th is the first end) + 2 repeated ends.
        assert_eq!(events.len(), 7);
        assert!(
            events[0].0 && events[1..].iter().all(|e| !e.0),
            "marker on the first only"
        );
        assert!(
            events.iter().all(|e| e.1 == events[0].1),
            "one timestamp per event"
        );
        let durations: Vec<u16> = events.iter().map(|e| e.3.duration).collect();
        assert_eq!(durations, [160, 320, 480, 640, 800, 800, 800]);
        let ends = events.iter().filter(|e| e.3.end).count();
        assert_eq!(ends, 3);
        assert!(events.windows(2).all(|w| w[1].2 == w[0].2.wrapping_add(1)));
    }

    #[test]
    fn rfc4733_2_5_2_3_overlong_digit_rejected() {
        let mut s = sender(48_000);
        assert_eq!(
            s.send_digit('1', Duration::from_secs(2)),
            Err(EventError::TooLong(96_000))
        );
        assert_eq!(
            s.send_digit('x', Duration::from_millis(100)),
            Err(EventError::NotDtmf(b'x'))
        );
    }
}
