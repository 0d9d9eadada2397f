//! Malformed input is an error or counted, never a panic: random bytes and mutations of valid
//! packets through every parser and through a live session.

use proptest::prelude::*;
use rtp::packet::comfort_noise::ComfortNoise;
use rtp::packet::rtcp::parse_compound;
use rtp::packet::rtp::RtpPacket;
use rtp::packet::telephone_event::TelephoneEvent;
use rtp::{Session, SessionConfig, Socket};
use std::time::{Duration, Instant};

const RTP: &[u8] = include_bytes!("../../../fixtures/rtp/pcmu-csrc-ext-pad.bin");
const RTCP: &[u8] = include_bytes!("../../../fixtures/rtp/rtcp-sr-rr-sdes-bye.bin");

fn mutated(base: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        any::<usize>(),
    )
        .prop_map(move |(edits, cut)| {
            let mut v = base.to_vec();
            for (at, b) in edits {
                let i = at % v.len();
                v[i] = b;
            }
            v.truncate(cut % (v.len() + 1));
            v
        })
}

fn all_parsers(b: &[u8]) {
    if let Ok(p) = RtpPacket::parse(b) {
        assert!(p.payload.len() <= b.len());
    }
    let _ = parse_compound(b);
    let _ = TelephoneEvent::parse(b);
    let _ = ComfortNoise::parse(b);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn rfc3550_a_1_random_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..300)) {
        all_parsers(&b);
    }

    #[test]
    fn rfc3550_a_1_mutated_rtp_never_panics(b in mutated(RTP)) {
        all_parsers(&b);
    }

    #[test]
    fn rfc3550_a_2_mutated_rtcp_never_panics(b in mutated(RTCP)) {
        all_parsers(&b);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn session_survives_hostile_datagrams(packets in proptest::collection::vec(prop_oneof![mutated(RTP), mutated(RTCP), proptest::collection::vec(any::<u8>(), 0..64)], 1..60)) {
        let t0 = Instant::now();
        let peer = "192.0.2.1:4000".parse().unwrap();
        let mut cfg = SessionConfig::new(Some(peer), 0, 8000, 1);
        cfg.event_payload_type = Some(101);
        let mut s = Session::new(cfg, t0, 0).unwrap();
        for (i, p) in packets.iter().enumerate() {
            let now = t0 + Duration::from_millis(7 * i as u64);
            let socket = if i % 3 == 0 { Socket::Rtcp } else { Socket::Rtp };
            s.handle_input(now, socket, peer, p);
            s.handle_timeout(now);
            while s.poll_transmit().is_some() {}
            while s.poll_event().is_some() {}
        }
    }
}
