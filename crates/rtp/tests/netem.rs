//! The netem test: 5% loss, reordering and 40 ms jitter in; the played stream and the
//! sent stream stay continuous (one slot and one packet per 20 ms tick, no seq/ts gaps), and
//! losses are concealed and counted.

use rtp::packet::rtp::RtpPacket;
use rtp::{Event, Outgoing, RtpSender, SenderConfig, Session, SessionConfig, Slot, Socket};
use std::net::SocketAddr;
use std::time::Duration;
use testkit::netem::{Netem, NetemConfig};
use testkit::ManualClock;

const FRAME: Duration = Duration::from_millis(20);

#[test]
fn netem_5pct_loss_reorder_40ms_jitter_output_continuous() {
    for seed in [0x5eed, 1, 2, 3, 4, 5] {
        run(seed);
    }
}

fn run(seed: u64) {
    let peer: SocketAddr = "192.0.2.10:40000".parse().unwrap();
    let mut clock = ManualClock::default();
    let t0 = clock.now();
    let mut cfg = SessionConfig::new(Some(peer), 0, 8000, 42);
    cfg.media_timeout = Duration::from_secs(5);
    let mut session = Session::new(cfg, t0, 0).unwrap();
    let mut link = Netem::new(NetemConfig {
        loss: 0.05,
        delay: Duration::from_millis(30),
        jitter: Duration::from_millis(40),
        reorder: 0.02,
        reorder_delay: Duration::from_millis(25),
        duplicate: 0.0,
        seed,
    });
    let mut remote = RtpSender::new(SenderConfig {
        ssrc: 0xcafe,
        payload_type: 0,
        clock_rate: 8000,
        event_payload_type: None,
        initial_seq: 65_000,
        initial_timestamp: 4_000_000_000,
    });
    // The peer's 20 ms clock runs 7 ms out of phase with ours.
    let frames = 3000u32;
    let mut remote_next = t0 + Duration::from_millis(7);
    let mut remote_sent = 0u32;
    let end = t0 + FRAME * (frames + 20);

    let mut ticks = Vec::new();
    let mut slots = Vec::new();
    let mut sent = Vec::new();
    while clock.now() < end {
        let now = clock.now();
        while remote_sent < frames && remote_next <= now {
            let mut payload = vec![0x55u8; 160];
            payload[..4].copy_from_slice(&remote_sent.to_be_bytes());
            let mut bytes = Vec::new();
            remote.tick(Outgoing::Audio(&payload), &mut bytes).unwrap();
            link.send(now, bytes);
            remote_sent += 1;
            remote_next += FRAME;
        }
        while let Some((_, bytes)) = link.poll(now) {
            session.handle_input(now, Socket::Rtp, peer, &bytes);
        }
        if session.poll_timeout().is_some_and(|t| t <= now) {
            session.handle_timeout(now);
        }
        while let Some(t) = session.poll_transmit() {
            if t.socket == Socket::Rtp {
                assert_eq!(t.to, peer);
                sent.push((now, t.bytes));
            }
        }
        while let Some(e) = session.poll_event() {
            match e {
                Event::Tick { slot, missed, .. } => {
                    assert_eq!(missed, 0);
                    ticks.push(now);
                    slots.push(slot);
                }
                Event::MediaTimeout => panic!("media flowed all along"),
                _ => {}
            }
        }
        let next = [
            session.poll_timeout(),
            link.next_delivery(),
            (remote_sent < frames).then_some(remote_next),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap();
        clock.advance_to(next);
    }

    // Exactly one tick per 20 ms, on the absolute grid: no bursts, no drift.
    assert_eq!(ticks.len() as u32, frames + 20);
    for (i, t) in ticks.iter().enumerate() {
        assert_eq!(*t, t0 + FRAME * i as u32, "tick {i}");
    }
    // The sent stream: one packet per tick, one SSRC, seq +1 and ts +160 every time.
    assert_eq!(sent.len(), ticks.len());
    let parsed: Vec<_> = sent
        .iter()
        .map(|(_, b)| RtpPacket::parse(b).unwrap())
        .collect();
    for w in parsed.windows(2) {
        assert_eq!(w[1].ssrc, w[0].ssrc);
        assert_eq!(w[1].sequence, w[0].sequence.wrapping_add(1));
        assert_eq!(w[1].timestamp, w[0].timestamp.wrapping_add(160));
    }
    assert!(
        sent.iter().zip(&ticks).all(|((at, _), t)| at == t),
        "each packet leaves on its tick"
    );

    // The played stream: after the first audio, only audio or concealment; frame indices
    // advance with the slots, except where the buffer grew or shrank by one frame.
    let first = slots
        .iter()
        .position(|s| matches!(s, Slot::Audio { .. }))
        .unwrap();
    let played: Vec<(usize, u32)> = slots
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match s {
            Slot::Audio { payload, .. } => Some((
                i,
                u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]),
            )),
            _ => None,
        })
        .collect();
    let last = played.last().unwrap().0;
    assert!(
        slots[first..=last]
            .iter()
            .all(|s| !matches!(s, Slot::Silence)),
        "no silence inside continuous speech"
    );
    assert!(
        played.windows(2).all(|w| w[1].1 > w[0].1),
        "frames in order, never repeated"
    );
    let drift: i64 = played
        .windows(2)
        .map(|w| (i64::from(w[1].1) - i64::from(w[0].1)) - (w[1].0 - w[0].0) as i64)
        .sum();

    let st = session.stats();
    let net = link.stats();
    let injected = net.dropped as i64;
    println!("seed {seed} netem {net:?}\nstats {st:?}\ndrift {drift}");
    assert!(
        (0.035..0.065).contains(&(injected as f64 / f64::from(frames))),
        "link loss {injected}"
    );
    // RFC 3550 A.3 counts exactly what the link dropped (the last packet arrived).
    assert!(
        (injected - 1..=injected).contains(&st.lost),
        "lost {} vs injected {injected}",
        st.lost
    );
    assert_eq!(st.packets_received as i64 + injected, i64::from(frames));
    assert_eq!(
        drift,
        st.buffer_shrunk as i64 - st.buffer_grown as i64,
        "index drift is only resizing"
    );
    // Every slot handed out as missing is counted; inside the speech every lost or late frame
    // was concealed (unless a shrink skipped it) and nothing else but buffer growth was.
    let is_missing = |s: &&Slot| matches!(s, Slot::Missing { .. });
    assert_eq!(
        st.concealed as usize,
        slots.iter().filter(is_missing).count()
    );
    let in_speech = slots[first..=last].iter().filter(is_missing).count() as u64;
    let lost_or_late = st.lost as u64 + st.late;
    assert!(
        in_speech + st.buffer_shrunk >= lost_or_late,
        "concealed {in_speech} < lost+late {lost_or_late}"
    );
    assert!(
        in_speech <= lost_or_late + st.buffer_grown,
        "concealed {in_speech} > lost+late {lost_or_late}"
    );
    assert!(st.late < u64::from(frames) / 100, "late {}", st.late);
    assert!(
        st.buffer_delay >= Duration::from_millis(20)
            && st.buffer_delay <= Duration::from_millis(200)
    );
    assert_eq!(st.packets_sent as usize, sent.len());
}
