//! A call talks to the Realtime simulator through the bridge: the caller speaks (noise), the
//! simulator's VAD takes the turn, and the caller hears the simulator's answer over RTP.

mod common;

use bridge::ai::AiSettings;
use bridge::{Bridge, BridgeConfig};
use codec::{Decoder, Encoder, Frame, PayloadCodec};
use std::time::Duration;
use testkit::uac::Uac;
use tokio::net::UdpSocket;
use tokio::time::timeout;

/// Pseudo-random loud noise: "speech" for an energy VAD.
fn noise(i: usize) -> Frame {
    let mut f = Frame::silence();
    let mut x = (i as u32).wrapping_mul(2_654_435_761) | 1;
    for s in f.0.iter_mut() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *s = ((x >> 16) as i16) / 3;
    }
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_speaks_and_hears_the_simulated_agent() {
    let sim = realtime_sim::Simulator::bind("127.0.0.1:0").await.unwrap();
    let cfg = BridgeConfig {
        sip_listen: vec!["127.0.0.1:0".parse().unwrap()],
        admin_listen: None,
        sip_t1: Duration::from_millis(10),
        session_expires: 0,
        rtp_ports: 33000..=33999,
        ai: Some(AiSettings {
            url: sim.url(),
            api_key: None,
            instructions: "You are a test agent.".into(),
        }),
        ..BridgeConfig::default()
    };
    let bridge = Bridge::start(cfg).await.unwrap();
    let server = bridge.sip_addrs[0];
    let sip = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let media = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut uac = Uac::new("ai", sip.local_addr().unwrap(), server);
    // Offer our real RTP port.
    let inv = String::from_utf8(uac.invite(&[])).unwrap().replace(
        "m=audio 40000",
        &format!("m=audio {}", media.local_addr().unwrap().port()),
    );
    let bridge_rtp = common::call(&sip, server, &mut uac, inv.as_bytes()).await;
    let mut buf = vec![0u8; 65535];
    let mut enc = Encoder::new(PayloadCodec::Pcmu).unwrap();
    let mut dec = Decoder::new(PayloadCodec::Pcmu).unwrap();
    let mut payload = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut loudest = 0i32;
    // 1 s of "speech", then up to 5 s of silence while we listen for the answer.
    for i in 0..300usize {
        tick.tick().await;
        let frame = if i < 50 { noise(i) } else { Frame::silence() };
        enc.encode(&frame, &mut payload).unwrap();
        media
            .send_to(
                &common::rtp_packet(i as u16, (i * 160) as u32, 0x4242, &payload),
                bridge_rtp,
            )
            .await
            .unwrap();
        while let Ok(Ok((n, from))) =
            timeout(Duration::from_millis(1), media.recv_from(&mut buf)).await
        {
            if from == bridge_rtp && n > 12 && buf[0] >> 6 == 2 && buf[1] & 0x7f == 0 {
                let f = dec.decode(&buf[12..n]).unwrap();
                loudest = loudest.max(f.0.iter().map(|s| i32::from(*s).abs()).max().unwrap_or(0));
            }
        }
        if i > 60 && loudest > 3000 {
            break;
        }
    }
    assert!(
        loudest > 3000,
        "the caller heard the agent (peak {loudest})"
    );
    sip.send_to(&uac.bye(), server).await.unwrap();
}
