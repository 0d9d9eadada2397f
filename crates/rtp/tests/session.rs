//! Session behaviour driven by a manual clock: RTCP, media timeout, latching, SSRC change,
//! DTMF, comfort noise, stalls.

use rtp::packet::rtcp::parse_compound;
use rtp::packet::rtp::{RtpHeader, RtpPacket};
use rtp::packet::telephone_event::TelephoneEvent;
use rtp::{Event, SentKind, Session, SessionConfig, Slot, Socket, Transmit};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use testkit::ManualClock;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

struct Rig {
    clock: ManualClock,
    s: Session,
    events: Vec<(Instant, Event)>,
    sent: Vec<(Instant, Transmit)>,
}

impl Rig {
    fn new(cfg: SessionConfig) -> Rig {
        let clock = ManualClock::default();
        let s = Session::new(cfg, clock.now(), 0xe000_0000_0000_0000).unwrap();
        Rig {
            clock,
            s,
            events: Vec::new(),
            sent: Vec::new(),
        }
    }

    /// Runs timers up to `until`, delivering nothing.
    fn run_until(&mut self, until: Instant) {
        while let Some(t) = self.s.poll_timeout().filter(|t| *t <= until) {
            self.clock.advance_to(t);
            self.s.handle_timeout(t);
            self.drain();
        }
        self.clock.advance_to(until);
    }

    fn drain(&mut self) {
        let now = self.clock.now();
        while let Some(t) = self.s.poll_transmit() {
            self.sent.push((now, t));
        }
        while let Some(e) = self.s.poll_event() {
            self.events.push((now, e));
        }
    }

    fn input(&mut self, from: SocketAddr, bytes: &[u8]) {
        let now = self.clock.now();
        self.s.handle_input(now, Socket::Rtp, from, bytes);
        self.drain();
    }
}

fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    RtpHeader {
        marker,
        payload_type: pt,
        sequence: seq,
        timestamp: ts,
        ssrc,
    }
    .write(payload, &mut out)
    .unwrap();
    out
}

#[test]
fn rfc3550_6_2_reports_every_5s_randomised_and_bye_on_close() {
    let peer = addr("192.0.2.1:4000");
    let mut r = Rig::new(SessionConfig::new(Some(peer), 0, 8000, 9));
    let t0 = r.clock.now();
    r.run_until(t0 + Duration::from_secs(60));
    let reports: Vec<_> = r
        .sent
        .iter()
        .filter(|(_, t)| t.socket == Socket::Rtcp)
        .collect();
    assert!(
        reports.iter().all(|(_, t)| t.to == addr("192.0.2.1:4001")),
        "RTCP on RTP port + 1"
    );
    // Intervals uniformly in [2.5, 7.5] s: 8-24 reports in a minute.
    assert!(
        (8..=24).contains(&reports.len()),
        "{} reports",
        reports.len()
    );
    for w in reports.windows(2) {
        let gap = w[1].0 - w[0].0;
        assert!(
            gap >= Duration::from_millis(2500) && gap <= Duration::from_millis(7500),
            "{gap:?}"
        );
    }
    let first = parse_compound(&reports[0].1.bytes).unwrap();
    assert!(first.sender_info.is_some(), "we sent RTP: SR");
    assert_eq!(first.cname.as_deref(), Some(&b"switchboard"[..]));
    r.s.close(r.clock.now());
    r.drain();
    let (_, last) = r.sent.last().unwrap();
    assert_eq!(parse_compound(&last.bytes).unwrap().bye, vec![r.s.ssrc()]);
    assert_eq!(r.s.poll_timeout(), None, "closed: no timers");
    assert!(r.s.queue_audio(vec![0; 160]).is_err());
}

#[test]
fn media_timeout_fires_once_and_not_on_hold() {
    let peer = addr("192.0.2.1:4000");
    let mut cfg = SessionConfig::new(Some(peer), 0, 8000, 1);
    cfg.media_timeout = Duration::from_secs(10);
    let mut r = Rig::new(cfg);
    let t0 = r.clock.now();
    // RTP for 5 s, then nothing: the timeout is 10 s after the last packet.
    for i in 0..250u16 {
        r.run_until(t0 + Duration::from_millis(20) * u32::from(i));
        r.input(
            peer,
            &rtp(0, i, u32::from(i) * 160, 7, i == 0, &[0xff; 160]),
        );
    }
    let last_rtp = r.clock.now();
    r.run_until(t0 + Duration::from_secs(30));
    let timeouts: Vec<_> = r
        .events
        .iter()
        .filter(|(_, e)| *e == Event::MediaTimeout)
        .collect();
    assert_eq!(timeouts.len(), 1);
    assert_eq!(timeouts[0].0, last_rtp + Duration::from_secs(10));

    // On hold: silence on the wire is expected, no timeout however long.
    let mut r = Rig::new(SessionConfig::new(Some(peer), 0, 8000, 1));
    let t0 = r.clock.now();
    r.s.set_on_hold(t0, true);
    r.run_until(t0 + Duration::from_secs(120));
    assert!(!r.events.iter().any(|(_, e)| *e == Event::MediaTimeout));
    // Off hold, the clock starts again from that moment.
    let resumed = r.clock.now();
    r.s.set_on_hold(resumed, false);
    r.run_until(resumed + Duration::from_secs(31));
    let at: Vec<_> = r
        .events
        .iter()
        .filter(|(_, e)| *e == Event::MediaTimeout)
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(at, vec![resumed + Duration::from_secs(30)]);
}

#[test]
fn symmetric_rtp_latches_nat_source_after_three_packets() {
    let sdp = addr("10.1.1.1:4000");
    let nat = addr("203.0.113.5:51000");
    let mut r = Rig::new(SessionConfig::new(Some(sdp), 0, 8000, 2));
    let t0 = r.clock.now();
    r.run_until(t0);
    assert_eq!(
        r.sent[0].1.to, sdp,
        "before latching we send to the SDP address"
    );
    for i in 0..3u16 {
        r.input(nat, &rtp(0, i, u32::from(i) * 160, 7, false, &[0xff; 160]));
    }
    assert!(r.events.iter().any(|(_, e)| *e == Event::Latched(nat)));
    assert_eq!(r.s.stats().rejected_source, 2);
    r.sent.clear();
    r.run_until(t0 + Duration::from_secs(3));
    assert!(r
        .sent
        .iter()
        .filter(|(_, t)| t.socket == Socket::Rtp)
        .all(|(_, t)| t.to == nat));
    assert!(r
        .sent
        .iter()
        .filter(|(_, t)| t.socket == Socket::Rtcp)
        .all(|(_, t)| t.to == addr("203.0.113.5:51001")));
}

#[test]
fn rfc3550_8_2_ssrc_change_is_a_new_stream() {
    let peer = addr("192.0.2.1:4000");
    let mut r = Rig::new(SessionConfig::new(Some(peer), 0, 8000, 3));
    let t0 = r.clock.now();
    for i in 0..100u16 {
        r.run_until(t0 + Duration::from_millis(20) * u32::from(i));
        r.input(
            peer,
            &rtp(
                0,
                1000 + i,
                5000 + u32::from(i) * 160,
                0xaaaa,
                false,
                &[1; 160],
            ),
        );
    }
    // A transfer behind the trunk: new SSRC, unrelated seq and ts.
    for i in 100..200u16 {
        r.run_until(t0 + Duration::from_millis(20) * u32::from(i));
        r.input(
            peer,
            &rtp(
                0,
                40_000 + i,
                9_000_000 + u32::from(i) * 160,
                0xbbbb,
                i == 100,
                &[2; 160],
            ),
        );
    }
    r.run_until(t0 + Duration::from_secs(5));
    let changes: Vec<_> = r
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::SsrcChanged { .. }))
        .collect();
    assert_eq!(changes.len(), 1);
    let st = r.s.stats();
    assert_eq!(
        (st.ssrc_changes, st.lost, st.late, st.packets_received),
        (1, 0, 0, 200)
    );
    let played: Vec<u8> = r
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Tick {
                slot: Slot::Audio { payload, .. },
                ..
            } => Some(payload[0]),
            _ => None,
        })
        .collect();
    assert_eq!(
        played.iter().filter(|&&b| b == 2).count(),
        100,
        "the new stream plays whole"
    );
}

#[test]
fn rfc4733_2_5_digits_in_and_out() {
    let peer = addr("192.0.2.1:4000");
    let mut cfg = SessionConfig::new(Some(peer), 0, 8000, 4);
    cfg.event_payload_type = Some(101);
    let mut r = Rig::new(cfg);
    let t0 = r.clock.now();
    let ev = |end, duration| {
        TelephoneEvent {
            event: 9,
            end,
            volume: 10,
            duration,
        }
        .write()
        .unwrap()
    };
    let mut seq = 0u16;
    let mut send = |r: &mut Rig, pt, ts, marker, payload: &[u8]| {
        r.input(peer, &rtp(pt, seq, ts, 7, marker, payload));
        seq += 1;
    };
    send(&mut r, 0, 0, true, &[0xff; 160]);
    send(&mut r, 101, 160, true, &ev(false, 160));
    send(&mut r, 101, 160, false, &ev(false, 320));
    for _ in 0..3 {
        send(&mut r, 101, 160, false, &ev(true, 480));
    }
    send(&mut r, 0, 800, true, &[0xff; 160]);
    let digits: Vec<_> = r
        .events
        .iter()
        .filter_map(|(_, e)| {
            if let Event::Digit(d) = e {
                Some(*d)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(digits.len(), 1, "three end packets, one digit");
    assert_eq!((digits[0].digit, digits[0].duration), ('9', 480));
    assert_eq!(
        r.s.stats().lost,
        0,
        "event packets hold their sequence numbers"
    );

    r.s.send_digit('#', Duration::from_millis(60)).unwrap();
    r.run_until(t0 + Duration::from_millis(200));
    let kinds: Vec<SentKind> = r
        .events
        .iter()
        .filter_map(|(_, e)| {
            if let Event::Tick { sent, .. } = e {
                Some(*sent)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == SentKind::Event).count(),
        3 + 2,
        "60 ms: 3 packets, 2 repeated ends"
    );
}

#[test]
fn rfc3389_comfort_noise_plays_as_silence_not_concealment() {
    let peer = addr("192.0.2.1:4000");
    let mut r = Rig::new(SessionConfig::new(Some(peer), 0, 8000, 5));
    let t0 = r.clock.now();
    for i in 0..50u16 {
        r.run_until(t0 + Duration::from_millis(20) * u32::from(i));
        r.input(peer, &rtp(0, i, u32::from(i) * 160, 7, i == 0, &[1; 160]));
    }
    // Talkspurt ends: one CN packet, then nothing for a second, then speech resumes.
    r.input(peer, &rtp(13, 50, 50 * 160, 7, false, &[60]));
    r.run_until(t0 + Duration::from_millis(2000));
    for i in 100..150u16 {
        r.run_until(t0 + Duration::from_millis(20) * u32::from(i));
        r.input(
            peer,
            &rtp(0, i - 49, u32::from(i) * 160, 7, i == 100, &[1; 160]),
        );
    }
    r.run_until(t0 + Duration::from_millis(3200));
    let slots: Vec<&Slot> = r
        .events
        .iter()
        .filter_map(|(_, e)| {
            if let Event::Tick { slot, .. } = e {
                Some(slot)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(
        slots
            .iter()
            .filter(|s| matches!(s, Slot::Audio { .. }))
            .count(),
        100
    );
    assert_eq!(
        r.s.stats().concealed,
        slots
            .iter()
            .filter(|s| matches!(s, Slot::Missing { .. }))
            .count() as u64
    );
    let first = slots
        .iter()
        .position(|s| matches!(s, Slot::Audio { .. }))
        .unwrap();
    let last = slots
        .iter()
        .rposition(|s| matches!(s, Slot::Audio { .. }))
        .unwrap();
    assert!(
        slots[first..=last]
            .iter()
            .all(|s| !matches!(s, Slot::Missing { .. })),
        "CN gap is silence"
    );
    assert_eq!(r.s.stats().lost, 0);
}

#[test]
fn pacer_stall_drops_ticks_session_sends_no_burst() {
    let peer = addr("192.0.2.1:4000");
    let mut r = Rig::new(SessionConfig::new(Some(peer), 0, 8000, 6));
    let t0 = r.clock.now();
    r.run_until(t0 + Duration::from_millis(40));
    // The runtime stalls for 130 ms: one late tick, 5 dropped, a single packet.
    r.clock.advance(Duration::from_millis(130));
    let now = r.clock.now();
    r.s.handle_timeout(now);
    r.drain();
    let rtp_sent: Vec<RtpPacket> = r
        .sent
        .iter()
        .filter(|(_, t)| t.socket == Socket::Rtp)
        .map(|(_, t)| RtpPacket::parse(&t.bytes).unwrap())
        .collect();
    assert_eq!(rtp_sent.len(), 4);
    let (a, b) = (rtp_sent[2], rtp_sent[3]);
    assert_eq!(b.sequence, a.sequence.wrapping_add(1));
    assert_eq!(
        b.timestamp,
        a.timestamp.wrapping_add(6 * 160),
        "tick 2 to tick 8"
    );
    assert_eq!(r.s.stats().ticks_dropped, 5);
    assert!(matches!(
        r.events.last(),
        Some((_, Event::Tick { missed: 5, .. }))
    ));
    assert_eq!(
        r.s.poll_timeout(),
        Some(t0 + Duration::from_millis(180)),
        "back on the 20 ms grid"
    );
}

#[test]
fn rfc3550_6_4_1_peer_report_recorded_and_bye_seen() {
    use rtp::packet::rtcp::{build_compound, ReportBlock, ReportSpec};
    let peer = addr("192.0.2.1:4000");
    let mut r = Rig::new(SessionConfig::new(Some(peer), 0, 8000, 8));
    r.input(peer, &rtp(0, 1, 160, 0x77, true, &[1; 160]));
    let block = ReportBlock {
        ssrc: r.s.ssrc(),
        fraction_lost: 64,
        cumulative_lost: 12,
        jitter: 80,
        ..Default::default()
    };
    let bytes = build_compound(&ReportSpec {
        ssrc: 0x77,
        sender_info: None,
        blocks: &[block],
        cname: "peer",
        bye: true,
    })
    .unwrap();
    let now = r.clock.now();
    r.s.handle_input(now, Socket::Rtcp, addr("192.0.2.1:4001"), &bytes);
    r.drain();
    let st = r.s.stats();
    assert_eq!(
        (
            st.remote_fraction_lost,
            st.remote_cumulative_lost,
            st.remote_jitter
        ),
        (64, 12, Duration::from_millis(10))
    );
    assert!(r.events.iter().any(|(_, e)| *e == Event::RemoteBye));
    // From an unrelated address: ignored.
    r.s.handle_input(now, Socket::Rtcp, addr("198.51.100.1:9"), &bytes);
    assert_eq!(r.s.stats().rejected_source, 1);
}

#[test]
fn rfc5761_rtcp_mux_demultiplexed_on_the_rtp_socket() {
    use rtp::packet::rtcp::{build_compound, ReportSpec};
    let peer = addr("192.0.2.1:4000");
    let mut cfg = SessionConfig::new(Some(peer), 8, 8000, 10);
    cfg.rtcp_mux = true;
    let mut r = Rig::new(cfg);
    let rr = build_compound(&ReportSpec {
        ssrc: 0x77,
        sender_info: None,
        blocks: &[],
        cname: "peer",
        bye: false,
    })
    .unwrap();
    r.input(peer, &rr);
    r.input(peer, &rtp(8, 1, 160, 0x77, true, &[0xd5; 160]));
    let st = r.s.stats();
    assert_eq!(
        (st.rtcp_received, st.packets_received, st.malformed),
        (1, 1, 0)
    );
    let t0 = r.clock.now();
    r.run_until(t0 + Duration::from_secs(8));
    assert!(
        r.sent
            .iter()
            .all(|(_, t)| t.socket == Socket::Rtp && t.to == peer),
        "RTCP rides the RTP port"
    );
    assert!(r.sent.iter().any(|(_, t)| rtp::packet::is_rtcp(&t.bytes)));
}

#[test]
fn align_ticks_moves_the_packet_clock_before_the_first_tick_only() {
    let peer = addr("192.0.2.1:4000");
    let mut r = Rig::new(SessionConfig::new(Some(peer), 0, 8000, 7));
    let t0 = r.clock.now();
    let ms = Duration::from_millis;
    // A media engine puts this call's ticks 7 ms into the period.
    assert!(r.s.align_ticks(t0 + ms(7)));
    assert_eq!(r.s.poll_timeout(), Some(t0 + ms(7)));
    r.s.handle_timeout(t0 + ms(5));
    r.drain();
    assert!(
        r.sent.iter().all(|(_, t)| t.socket != Socket::Rtp),
        "nothing before the first aligned tick"
    );
    r.run_until(t0 + ms(70));
    let rtp_at: Vec<Instant> = r
        .sent
        .iter()
        .filter(|(_, t)| t.socket == Socket::Rtp)
        .map(|(at, _)| *at)
        .collect();
    assert_eq!(
        rtp_at,
        vec![t0 + ms(7), t0 + ms(27), t0 + ms(47), t0 + ms(67)],
        "every 20 ms from the aligned start"
    );
    let packets: Vec<RtpPacket> = r
        .sent
        .iter()
        .filter(|(_, t)| t.socket == Socket::Rtp)
        .map(|(_, t)| RtpPacket::parse(&t.bytes).unwrap())
        .collect();
    for w in packets.windows(2) {
        assert_eq!(w[1].sequence, w[0].sequence.wrapping_add(1));
        assert_eq!(w[1].timestamp, w[0].timestamp.wrapping_add(160));
    }
    // Once a tick has gone the clock stays.
    assert!(!r.s.align_ticks(t0 + ms(80)));
    assert_eq!(r.s.poll_timeout(), Some(t0 + ms(87)));
}
