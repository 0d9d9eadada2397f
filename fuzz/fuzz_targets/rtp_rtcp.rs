//! The RTP/RTCP receive path on arbitrary bytes: no panic.
//!
//! 1. The datagram through each parser (RTP, RTCP compound, RFC 4733 event, RFC 3389 CN) and
//!    the RTP payload through the codec decoder its payload type names (PCMU 0, PCMA 8, else
//!    Opus), concealment included.
//! 2. A `Session` (PCMU, telephone-event 101), without and with rtcp-mux: the datagram as RTP
//!    three times with the sequence number and timestamp stepped (so one seed reaches the
//!    jitter buffer and DTMF), as RTCP, and from a stranger; then the clock runs.
//! 3. The input as a stream of datagrams `[ctrl][len u16 BE][bytes]`: ctrl bit 0 RTCP socket,
//!    bit 1 from a stranger (latching), bit 2 toggles hold, bits 3-7 advance the clock by
//!    n x 5 ms; the session's timers run and its queues drain after each.
#![no_main]
use codec::{Decoder, PayloadCodec};
use libfuzzer_sys::fuzz_target;
use rtp::packet::comfort_noise::ComfortNoise;
use rtp::packet::rtcp::parse_compound;
use rtp::packet::rtp::RtpPacket;
use rtp::packet::telephone_event::TelephoneEvent;
use rtp::{Session, SessionConfig, Socket};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn session(mux: bool, now: Instant) -> Session {
    let peer: SocketAddr = "192.0.2.10:40000".parse().unwrap();
    let mut cfg = SessionConfig::new(Some(peer), 0, 8000, 7);
    cfg.rtcp_mux = mux;
    cfg.event_payload_type = Some(101);
    // Short timers, so RTCP reports and the media timeout come within a few jitter-buffer pops
    // (a long clock jump replays every missed 20 ms tick).
    cfg.rtcp_interval = Duration::from_millis(100);
    cfg.media_timeout = Duration::from_millis(500);
    Session::new(cfg, now, 0xe5f0_0000_0000_0000).unwrap()
}

fn drain(s: &mut Session, now: Instant) {
    s.handle_timeout(now);
    while s.poll_transmit().is_some() {}
    while s.poll_event().is_some() {}
    let _ = s.poll_timeout();
    let _ = s.peek_next_payload();
    let _ = s.stats();
}

fuzz_target!(|data: &[u8]| {
    // 1. Parsers and decoders.
    if let Ok(p) = RtpPacket::parse(data) {
        if let Ok(ev) = TelephoneEvent::parse(p.payload) {
            let _ = ev.digit();
            let _ = ev.write();
        }
        let _ = ComfortNoise::parse(p.payload);
        let codec = match p.payload_type {
            0 => PayloadCodec::Pcmu,
            8 => PayloadCodec::Pcma,
            _ => PayloadCodec::Opus,
        };
        let mut d = Decoder::new(codec).unwrap();
        let _ = d.decode(p.payload);
        let _ = d.decode_missing(Some(p.payload));
        let _ = d.decode_missing(None);
    }
    let _ = parse_compound(data);
    let _ = rtp::packet::is_rtcp(data);

    let peer: SocketAddr = "192.0.2.10:40000".parse().unwrap();
    let peer_rtcp: SocketAddr = "192.0.2.10:40001".parse().unwrap();
    let stranger: SocketAddr = "198.51.100.7:5004".parse().unwrap();
    let start = Instant::now();

    // 2. The datagram as is, into whole sessions.
    for mux in [false, true] {
        let mut s = session(mux, start);
        let mut now = start;
        let mut pkt = data.to_vec();
        for step in 0..3u16 {
            if pkt.len() >= 8 {
                let seq = u16::from_be_bytes([data[2], data[3]]).wrapping_add(step);
                let ts = u32::from_be_bytes([data[4], data[5], data[6], data[7]])
                    .wrapping_add(160 * u32::from(step));
                pkt[2..4].copy_from_slice(&seq.to_be_bytes());
                pkt[4..8].copy_from_slice(&ts.to_be_bytes());
            }
            s.handle_input(now, Socket::Rtp, peer, &pkt);
            now += Duration::from_millis(20);
            drain(&mut s, now);
        }
        s.handle_input(now, Socket::Rtcp, peer_rtcp, data);
        s.handle_input(
            now,
            if mux { Socket::Rtp } else { Socket::Rtcp },
            stranger,
            data,
        );
        s.handle_input(now, Socket::Rtp, stranger, data);
        drain(&mut s, now + Duration::from_millis(200));
        s.close(now);
        drain(&mut s, now + Duration::from_millis(300));
    }

    // 3. The input as a stream of datagrams.
    let mut s = session(data.first().is_some_and(|b| b & 0x80 != 0), start);
    let mut now = start;
    let mut hold = false;
    let mut rest = data.get(1..).unwrap_or_default();
    while let [ctrl, hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (dgram, next) = tail.split_at(len);
        rest = next;
        let socket = if ctrl & 1 != 0 {
            Socket::Rtcp
        } else {
            Socket::Rtp
        };
        let from = match (ctrl & 2 != 0, socket) {
            (true, _) => stranger,
            (false, Socket::Rtp) => peer,
            (false, Socket::Rtcp) => peer_rtcp,
        };
        if ctrl & 4 != 0 {
            hold = !hold;
            s.set_on_hold(now, hold);
        }
        now += Duration::from_millis(5 * u64::from(ctrl >> 3));
        s.handle_input(now, socket, from, dgram);
        drain(&mut s, now);
        let _ = s.queue_audio(vec![0xd5; 160]);
    }
    let _ = s.clear_audio();
    drain(&mut s, now + Duration::from_millis(600));
});
