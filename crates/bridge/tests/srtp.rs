//! SRTP through the running bridge over loopback (SDES, RFC 4568): an echo call offered as
//! RTP/SAVP is answered with our own key, every packet both ways is protected, forged,
//! replayed and plain packets are dropped and counted; with `srtp = required` a plain RTP/AVP
//! offer gets 488.

mod common;

use bridge::{Bridge, BridgeConfig};
use codec::{Decoder, Encoder, PayloadCodec};
use common::{metric, rtp_packet, tone, tone_ratio};
use rtp::srtp::{MasterKey, SrtpContext, Suite};
use sip_msg::Response;
use sip_proto::sdp::{parse_crypto, SrtpPolicy};
use std::net::SocketAddr;
use std::time::Duration;
use testkit::uac::Uac;
use tokio::net::UdpSocket;
use tokio::time::timeout;

const CALLER_KEY: [u8; 30] = [0x3c; 30];
const CALLER_KEY_B64: &str = "PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8";

fn config(ops: std::sync::Arc<bridge::metrics::OpsMetrics>) -> BridgeConfig {
    BridgeConfig {
        sip_listen: vec!["127.0.0.1:0".parse().unwrap()],
        admin_listen: None,
        sip_t1: Duration::from_millis(10),
        session_expires: 0,
        rtp_ports: 33000..=33999,
        echo: true,
        srtp: SrtpPolicy::Required,
        ops,
        ..BridgeConfig::default()
    }
}

fn offer(port: u16, savp: bool) -> String {
    let mut s = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio {port} {} 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n",
        if savp { "RTP/SAVP" } else { "RTP/AVP" }
    );
    if savp {
        s.push_str(&format!(
            "a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:{CALLER_KEY_B64}\r\n"
        ));
    }
    s
}

/// INVITE with `body`; the final response (ACKed if 2xx).
async fn invite(sip: &UdpSocket, server: SocketAddr, uac: &mut Uac, body: &str) -> Response {
    uac.cseq += 1;
    uac.invite_branch = format!("z9hG4bK-srtp-{}", uac.cseq);
    let (b, c) = (uac.invite_branch.clone(), uac.cseq);
    let inv = uac.request("INVITE", Some(&b), c, Some(body), &[]);
    sip.send_to(&inv, server).await.unwrap();
    let mut buf = vec![0u8; 65535];
    loop {
        let (n, _) = timeout(Duration::from_secs(5), sip.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let Ok(r) = Response::parse(&buf[..n]) else {
            continue;
        };
        if r.status < 200 {
            continue;
        }
        uac.learn(&buf[..n]);
        if r.status < 300 {
            sip.send_to(&uac.ack_2xx(), server).await.unwrap();
        }
        return r;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc4568_srtp_echo_call_protects_both_ways_and_drops_forgeries() {
    let ops = std::sync::Arc::new(bridge::metrics::OpsMetrics::new());
    let bridge = Bridge::start(config(ops.clone())).await.unwrap();
    let server = bridge.sip_addrs[0];
    let sip = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let media = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut uac = Uac::new("srtp", sip.local_addr().unwrap(), server);
    let ok = invite(
        &sip,
        server,
        &mut uac,
        &offer(media.local_addr().unwrap().port(), true),
    )
    .await;
    assert_eq!(ok.status, 200);
    let body = String::from_utf8_lossy(&ok.body).to_string();
    let port: u16 = body
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap();
    assert!(
        body.contains(&format!("m=audio {port} RTP/SAVP 0")),
        "{body}"
    );
    let lines: Vec<&str> = body
        .lines()
        .filter(|l| l.starts_with("a=crypto:"))
        .collect();
    assert_eq!(lines.len(), 1, "{body}");
    let ours = parse_crypto(&lines[0]["a=crypto:".len()..]).unwrap();
    assert_eq!(ours.tag, 3);
    assert_ne!(ours.key.0, CALLER_KEY, "the bridge sends with its own key");
    let bridge_rtp = SocketAddr::new(server.ip(), port);

    let suite = Suite::AesCm128HmacSha1_80;
    let mut tx = SrtpContext::new(suite, &MasterKey::from_concatenated(&CALLER_KEY).unwrap());
    let mut rx = SrtpContext::new(suite, &MasterKey::from_concatenated(&ours.key.0).unwrap());
    let mut enc = Encoder::new(PayloadCodec::Pcmu).unwrap();
    let mut dec = Decoder::new(PayloadCodec::Pcmu).unwrap();
    let mut payload = Vec::new();
    let mut heard = Vec::new();
    let (mut packets, mut bad_len, mut not_authentic) = (0, 0, 0);
    let mut sent: Vec<Vec<u8>> = Vec::new();
    let mut buf = vec![0u8; 2048];
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for i in 0..150usize {
        tick.tick().await;
        enc.encode(&tone(i), &mut payload).unwrap();
        let mut p = rtp_packet(i as u16, (i * 160) as u32, 0x5eed, &payload);
        tx.protect_rtp(&mut p).unwrap();
        if (50..55).contains(&i) {
            // A forged copy first (one payload bit flipped: a new index with a wrong tag),
            // then the real one, then a replay of an old packet.
            let mut forged = p.clone();
            forged[40] ^= 1;
            media.send_to(&forged, bridge_rtp).await.unwrap();
            media.send_to(&p, bridge_rtp).await.unwrap();
            media.send_to(&sent[i - 20], bridge_rtp).await.unwrap();
        } else {
            media.send_to(&p, bridge_rtp).await.unwrap();
        }
        sent.push(p.clone());
        if i == 60 {
            // Plain RTP from the caller's address: not authentic either.
            let plain = rtp_packet(61, 61 * 160, 0x5eed, &payload);
            media.send_to(&plain, bridge_rtp).await.unwrap();
        }
        while let Ok(Ok((n, from))) =
            timeout(Duration::from_millis(1), media.recv_from(&mut buf)).await
        {
            if from != bridge_rtp {
                continue;
            }
            packets += 1;
            if n != 12 + 160 + 10 {
                bad_len += 1;
            }
            let mut p = buf[..n].to_vec();
            match rx.unprotect_rtp(&mut p) {
                Ok(()) if i >= 75 => heard.extend_from_slice(&dec.decode(&p[12..]).unwrap().0),
                Ok(()) => {}
                Err(_) => not_authentic += 1,
            }
        }
    }
    assert!(packets > 100, "the bridge sent {packets} packets in 3 s");
    assert_eq!(
        bad_len, 0,
        "every packet is 12 + 160 + 10 (80-bit tag) bytes"
    );
    assert_eq!(
        not_authentic, 0,
        "every packet authenticates with the bridge's key"
    );
    let ratio = tone_ratio(&heard);
    assert!(
        ratio > 0.9,
        "1 kHz tone energy ratio in the echo: {ratio:.3}"
    );

    sip.send_to(&uac.bye(), server).await.unwrap();
    // The media task reports its stats when it stops.
    let mut text = String::new();
    for _ in 0..100 {
        text.clear();
        ops.render_into(&mut text, &[], &[]);
        if metric(&text, "switchboard_rtp_packets_received_total") > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let received = metric(&text, "switchboard_rtp_packets_received_total");
    assert_eq!(received, 150, "every genuine packet, nothing else: {text}");
    assert_eq!(metric(&text, "switchboard_srtp_auth_failures_total"), 6);
    assert_eq!(metric(&text, "switchboard_srtp_replays_total"), 5);
}

#[tokio::test]
async fn rfc4568_srtp_required_refuses_plain_rtp_with_488() {
    let ops = std::sync::Arc::new(bridge::metrics::OpsMetrics::new());
    let bridge = Bridge::start(config(ops)).await.unwrap();
    let server = bridge.sip_addrs[0];
    let sip = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut uac = Uac::new("plain", sip.local_addr().unwrap(), server);
    let r = invite(&sip, server, &mut uac, &offer(40000, false)).await;
    assert_eq!(r.status, 488);
    let warning = r.headers.get(&sip_msg::HeaderName::Warning).unwrap_or("");
    assert!(warning.starts_with("302 "), "{warning}");
}
