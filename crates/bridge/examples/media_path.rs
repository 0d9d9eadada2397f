//! Per-frame cost of the media path of one call, both directions, without sockets:
//! RTP -> PCM24: `Session::handle_input` (parse, latch, jitter buffer) + `Decoder::decode`;
//! PCM24 -> RTP: `Encoder::encode` + `queue_audio` + the 20 ms tick that pops the jitter
//! buffer and builds the outgoing packet. Run by `sip-test/bench-media` (wall time and, under
//! callgrind, instruction counts). Usage: `media_path pcmu|pcma|opus [frames]`.

use codec::{Decoder, Encoder, Frame, PayloadCodec};
use rtp::{Event, Session, SessionConfig, Slot, Socket};
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn speech_like(i: usize) -> Frame {
    let mut f = Frame::silence();
    for (n, s) in f.0.iter_mut().enumerate() {
        let t = (i * Frame::SAMPLES + n) as f64 / 24_000.0;
        *s = (6000.0 * (2.0 * std::f64::consts::PI * 220.0 * t).sin()
            + 2500.0 * (2.0 * std::f64::consts::PI * 1900.0 * t).sin()) as i16;
    }
    f
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let codec = match std::env::args().nth(1).as_deref() {
        Some("pcma") => PayloadCodec::Pcma,
        Some("opus") => PayloadCodec::Opus,
        _ => PayloadCodec::Pcmu,
    };
    let frames: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let pt = codec.static_payload_type().unwrap_or(111);
    let step = codec.rtp_timestamp_step();
    let peer: SocketAddr = "127.0.0.1:40000".parse()?;
    let t0 = Instant::now();
    let mut session = Session::new(
        SessionConfig::new(Some(peer), pt, codec.rtp_clock_rate(), 1),
        t0,
        0,
    )?;
    let mut decoder = Decoder::new(codec)?;
    let mut encoder = Encoder::new(codec)?;
    let mut peer_encoder = Encoder::new(codec)?;
    // What the caller sends: pre-encoded so only our side is measured.
    let inbound: Vec<Vec<u8>> = (0..50)
        .map(|i| {
            let mut payload = Vec::new();
            peer_encoder
                .encode(&speech_like(i), &mut payload)
                .map(|_| payload)
        })
        .collect::<Result<_, _>>()?;
    let outbound: Vec<Frame> = (0..50).map(speech_like).collect();
    let mut packet = Vec::with_capacity(1500);
    let mut payload = Vec::with_capacity(512);
    let (mut rx_time, mut tx_time) = (Duration::ZERO, Duration::ZERO);
    let mut decoded = 0usize;
    let mut now = t0;
    for i in 0..frames {
        now += Duration::from_millis(20);
        packet.clear();
        packet.extend_from_slice(&[0x80, pt]);
        packet.extend_from_slice(&(i as u16).to_be_bytes());
        packet.extend_from_slice(&((i as u32).wrapping_mul(step)).to_be_bytes());
        packet.extend_from_slice(&0x5eed_u32.to_be_bytes());
        packet.extend_from_slice(&inbound[i % inbound.len()]);

        let a = Instant::now();
        session.handle_input(now, Socket::Rtp, peer, black_box(&packet));
        rx_time += a.elapsed();

        let b = Instant::now();
        encoder.encode(&outbound[i % outbound.len()], &mut payload)?;
        let _ = session.queue_audio(std::mem::take(&mut payload));
        session.handle_timeout(now);
        while let Some(t) = session.poll_transmit() {
            black_box(t);
        }
        tx_time += b.elapsed();

        while let Some(ev) = session.poll_event() {
            if let Event::Tick { slot, .. } = ev {
                let c = Instant::now();
                let frame = match slot {
                    Slot::Audio { payload, .. } => Some(decoder.decode(&payload)?),
                    Slot::Missing { .. } => Some(decoder.decode_missing(None)),
                    Slot::Silence => None,
                };
                if let Some(f) = frame {
                    black_box(f);
                    decoded += 1;
                }
                rx_time += c.elapsed();
            }
        }
    }
    let per = |d: Duration| d.as_nanos() as f64 / frames as f64;
    let (rx, tx) = (per(rx_time), per(tx_time));
    println!(
        "{codec:?}: {frames} frames, {decoded} decoded; RTP->PCM24 {rx:.0} ns/frame, PCM24->RTP {tx:.0} ns/frame; \
         {:.0} calls per core (50 frames/s each way)",
        1e9 / ((rx + tx) * 50.0)
    );
    Ok(())
}
