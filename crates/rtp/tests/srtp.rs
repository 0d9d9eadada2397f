//! Two sessions talking SRTP/SRTCP (RFC 3711) through a manual clock: what one queues the
//! other plays; the wire carries ciphertext with the tag; forged, replayed and wrongly keyed
//! packets are counted and dropped, never played or latched to.

use rtp::{Event, MasterKey, Session, SessionConfig, Slot, Socket, SrtpConfig, Suite, Transmit};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use testkit::ManualClock;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn key(fill: u8) -> MasterKey {
    MasterKey {
        key: [fill; 16],
        salt: [fill ^ 0x5a; 14],
    }
}

fn cfg(peer: SocketAddr, suite: Suite, local: u8, remote: u8, seed: u64) -> SessionConfig {
    let mut c = SessionConfig::new(Some(peer), 0, 8000, seed);
    c.srtp = Some(SrtpConfig {
        suite,
        local: key(local),
        remote: key(remote),
    });
    c.rtcp_interval = Duration::from_millis(500);
    c
}

const A: &str = "192.0.2.1:4000";
const B: &str = "192.0.2.2:5000";

struct Pair {
    clock: ManualClock,
    a: Session,
    b: Session,
    /// Datagrams A sent (as on the wire) and what B heard.
    wire_a: Vec<Transmit>,
    heard_b: Vec<Vec<u8>>,
    /// Datagrams B sent.
    sent_b: usize,
}

impl Pair {
    fn new(a: SessionConfig, b: SessionConfig) -> Pair {
        let clock = ManualClock::default();
        let now = clock.now();
        Pair {
            a: Session::new(a, now, 0).unwrap(),
            b: Session::new(b, now, 0).unwrap(),
            clock,
            wire_a: Vec::new(),
            heard_b: Vec::new(),
            sent_b: 0,
        }
    }

    /// Runs both sessions for `d`, A's datagrams to B and B's to A.
    fn run(&mut self, d: Duration, mut tamper: impl FnMut(&mut Transmit)) {
        let until = self.clock.now() + d;
        loop {
            let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            let Some(t) = next.filter(|t| *t <= until) else {
                break;
            };
            self.clock.advance_to(t);
            self.a.handle_timeout(t);
            self.b.handle_timeout(t);
            self.exchange(t, &mut tamper);
        }
        self.clock.advance_to(until);
    }

    fn exchange(&mut self, now: Instant, tamper: &mut impl FnMut(&mut Transmit)) {
        while let Some(mut t) = self.a.poll_transmit() {
            tamper(&mut t);
            self.wire_a.push(t.clone());
            self.b.handle_input(now, t.socket, addr(A), &t.bytes);
        }
        while let Some(t) = self.b.poll_transmit() {
            self.sent_b += 1;
            let from = SocketAddr::new(
                addr(B).ip(),
                addr(B).port() + (t.socket == Socket::Rtcp) as u16,
            );
            self.a.handle_input(now, t.socket, from, &t.bytes);
        }
        while let Some(e) = self.b.poll_event() {
            if let Event::Tick {
                slot: Slot::Audio { payload, .. },
                ..
            } = e
            {
                self.heard_b.push(payload);
            }
        }
        while self.a.poll_event().is_some() {}
    }

    /// A says a recognisable frame on every tick.
    fn talk(&mut self, frames: u8) {
        for i in 0..frames {
            let _ = self.a.queue_audio(vec![i; 160]);
            self.run(Duration::from_millis(20), |_| {});
        }
    }
}

#[test]
fn rfc3711_3_srtp_sessions_hear_each_other_and_the_wire_is_ciphertext() {
    for suite in [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32] {
        let mut p = Pair::new(cfg(addr(B), suite, 1, 2, 7), cfg(addr(A), suite, 2, 1, 8));
        p.talk(8);
        p.run(Duration::from_secs(2), |_| {});
        for i in 1..8u8 {
            assert!(
                p.heard_b.contains(&vec![i; 160]),
                "{suite:?}: frame {i} heard"
            );
        }
        let rtp: Vec<_> = p
            .wire_a
            .iter()
            .filter(|t| t.socket == Socket::Rtp)
            .collect();
        assert!(rtp.len() > 50);
        for t in &rtp {
            assert_eq!(t.bytes.len(), 12 + 160 + suite.rtp_tag_len(), "{suite:?}");
            // Neither our frames nor G.711 silence (0xff) in the clear.
            let payload = &t.bytes[12..172];
            assert!(payload.iter().filter(|b| **b == payload[0]).count() < 40);
        }
        let rtcp: Vec<_> = p
            .wire_a
            .iter()
            .filter(|t| t.socket == Socket::Rtcp)
            .collect();
        assert!(!rtcp.is_empty());
        for t in &rtcp {
            let word = &t.bytes[t.bytes.len() - 14..t.bytes.len() - 10];
            assert_eq!(word[0] & 0x80, 0x80, "SRTCP E flag");
        }
        let sb = p.b.stats();
        assert!(sb.rtcp_received >= 2, "SRTCP reports read: {sb:?}");
        assert_eq!(
            (
                sb.srtp_auth_failed,
                sb.srtcp_auth_failed,
                sb.srtp_replayed,
                sb.malformed
            ),
            (0, 0, 0, 0)
        );
        assert!(p.a.stats().rtcp_received >= 2);
    }
}

#[test]
fn rfc3711_3_3_forged_and_replayed_packets_are_counted_and_dropped() {
    let suite = Suite::AesCm128HmacSha1_80;
    let mut p = Pair::new(cfg(addr(B), suite, 1, 2, 7), cfg(addr(A), suite, 2, 1, 8));
    p.talk(5);
    let heard = p.heard_b.len();
    let received = p.b.stats().packets_received;
    // Every packet of the next 200 ms has one payload bit flipped.
    let mut flipped = 0;
    p.run(Duration::from_millis(200), |t| {
        if t.socket == Socket::Rtp {
            t.bytes[20] ^= 0x10;
            flipped += 1;
        }
    });
    let s = p.b.stats();
    assert_eq!(s.srtp_auth_failed, flipped);
    assert_eq!(
        s.packets_received, received,
        "no forged packet reached the jitter buffer"
    );
    // Replays of the first (genuine) packets: all dropped by the window.
    let old: Vec<Transmit> = p.wire_a[..5].to_vec();
    assert!(old.iter().all(|t| t.socket == Socket::Rtp));
    let now = p.clock.now();
    for t in &old {
        p.b.handle_input(now, t.socket, addr(A), &t.bytes);
    }
    let s = p.b.stats();
    assert_eq!(s.srtp_replayed, 5, "{s:?}");
    assert_eq!(s.packets_received, received);
    assert_eq!(s.duplicates, 0, "replays never reach the RTP layer");
    // The stream recovers with the next genuine packets.
    p.talk(5);
    assert!(p.b.stats().packets_received > received);
    assert!(p.heard_b.len() > heard);
}

#[test]
fn rfc3711_3_3_wrong_key_hears_nothing_and_never_latches() {
    let suite = Suite::AesCm128HmacSha1_32;
    // B expects key 3 from A, A sends with key 1.
    let mut c = cfg(addr(A), suite, 2, 3, 8);
    // B would latch to the first packet it accepts.
    c.remote_rtp = None;
    c.remote_rtcp = None;
    let mut p = Pair::new(cfg(addr(B), suite, 1, 2, 7), c);
    p.talk(20);
    let s = p.b.stats();
    assert_eq!(s.packets_received, 0);
    assert!(s.srtp_auth_failed >= 20, "{s:?}");
    assert!(s.srtcp_auth_failed >= 1, "A's reports fail too: {s:?}");
    assert_eq!(s.rtcp_received, 0);
    assert!(p.heard_b.is_empty());
    assert_eq!(
        p.sent_b, 0,
        "B never latched to A, so it has nobody to send to"
    );
}

#[test]
fn plain_rtp_to_an_srtp_session_is_dropped() {
    let mut plain = SessionConfig::new(Some(addr(B)), 0, 8000, 7);
    plain.rtcp_interval = Duration::from_millis(500);
    let mut p = Pair::new(plain, cfg(addr(A), Suite::AesCm128HmacSha1_80, 2, 1, 8));
    p.talk(10);
    let s = p.b.stats();
    assert_eq!(s.packets_received, 0);
    assert!(s.srtp_auth_failed >= 10);
}
