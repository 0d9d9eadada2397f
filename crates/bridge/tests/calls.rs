//! Calls over real loopback sockets through the running bridge: UDP and TCP, IPv4 and IPv6,
//! and 10,000 calls after which every dialog and transaction is reclaimed.

use bridge::{Bridge, BridgeConfig};
use sip_msg::{Response, SipHeaders};
use std::net::SocketAddr;
use std::time::Duration;
use testkit::uac::Uac;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

fn config(listen: &str) -> BridgeConfig {
    // Each bridge of this binary gets its own RTP ports: the tests run at once, and a bridge
    // whose 8 tries at binding a pair all hit another bridge's ports answers 503 (CI: the TCP
    // test's INVITE got no 200 while the 10,000-call test held the shared default range).
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 16;
    let lo = 40_000 + k * 1_000;
    BridgeConfig {
        sip_listen: vec![listen.parse().unwrap()],
        admin_listen: None,
        // Short T1 so Timer J/L/K (64*T1) drain in under a second.
        sip_t1: Duration::from_millis(10),
        session_expires: 0,
        rtp_ports: lo..=lo + 999,
        ..BridgeConfig::default()
    }
}

async fn recv_response(sock: &UdpSocket, want_cseq_method: &str) -> Response {
    let mut buf = vec![0u8; 65535];
    loop {
        let (n, _) = timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
            .await
            .expect("response in time")
            .unwrap();
        if let Ok(r) = Response::parse(&buf[..n]) {
            if r.status >= 200
                && r.cseq()
                    .is_some_and(|c| c.method.as_str() == want_cseq_method)
            {
                return r;
            }
        }
    }
}

async fn udp_call(sock: &UdpSocket, server: SocketAddr, id: &str) {
    let local = sock.local_addr().unwrap();
    let mut uac = Uac::new(id, local, server);
    sock.send_to(&uac.invite(&[]), server).await.unwrap();
    let ok = recv_response(sock, "INVITE").await;
    assert_eq!(ok.status, 200);
    uac.learn(&ok.to_bytes());
    sock.send_to(&uac.ack_2xx(), server).await.unwrap();
    sock.send_to(&uac.bye(), server).await.unwrap();
    let ok = recv_response(sock, "BYE").await;
    assert_eq!(ok.status, 200);
}

async fn wait_drained(bridge: &Bridge) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let s = bridge.snapshot();
        if s.calls == 0
            && s.dialogs == 0
            && s.server_transactions == 0
            && s.client_transactions == 0
            && s.rtp_ports_in_use == 0
        {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "not drained: {s:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_udp_calls_then_live_counts_return_to_zero() {
    let bridge = Bridge::start(config("127.0.0.1:0")).await.unwrap();
    let server = bridge.sip_addrs[0];
    // 50 callers in parallel, 200 calls each, each caller on its own socket.
    let mut tasks = Vec::new();
    for c in 0..50 {
        tasks.push(tokio::spawn(async move {
            let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            for i in 0..200 {
                udp_call(&sock, server, &format!("k{c}-{i}")).await;
            }
        }));
    }
    timeout(Duration::from_secs(120), async {
        for t in tasks {
            t.await.unwrap();
        }
    })
    .await
    .expect("10,000 calls finish in bounded time");
    assert_eq!(bridge.snapshot().calls_total, 10_000);
    wait_drained(&bridge).await;
}

/// Two RTP port pairs and 40 calls in a row: every call gets a pair, and after each one both
/// pairs come back to the pool (a port returns only once the media engine has closed its
/// sockets, so it is never handed out while still bound).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_calls_reuse_two_port_pairs() {
    let bridge = Bridge::start(BridgeConfig {
        rtp_ports: 33000..=33003,
        ..config("127.0.0.1:0")
    })
    .await
    .unwrap();
    let server = bridge.sip_addrs[0];
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..40 {
        udp_call(&sock, server, &format!("seq-{i}")).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while bridge.snapshot().rtp_ports_in_use != 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "call {i}: ports not returned: {:?}",
                bridge.snapshot()
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    assert_eq!(bridge.snapshot().calls_total, 40);
    wait_drained(&bridge).await;
}

#[tokio::test]
async fn ipv6_udp_call() {
    let bridge = Bridge::start(config("[::1]:0")).await.unwrap();
    let sock = UdpSocket::bind("[::1]:0").await.unwrap();
    udp_call(&sock, bridge.sip_addrs[0], "v6").await;
    wait_drained(&bridge).await;
}

#[tokio::test]
async fn tcp_call_frames_by_content_length_and_answers_on_the_connection() {
    let bridge = Bridge::start(config("127.0.0.1:0")).await.unwrap();
    let server = bridge.sip_addrs[0];
    let mut stream = TcpStream::connect(server).await.unwrap();
    let local = stream.local_addr().unwrap();
    let mut uac = Uac::new("tcp1", local, server).tcp();
    // INVITE written in two pieces: the bridge must wait for the whole Content-Length.
    let inv = uac.invite(&[]);
    stream.write_all(&inv[..100]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    stream.write_all(&inv[100..]).await.unwrap();
    let mut buf = Vec::new();
    let ok = read_until_status(&mut stream, &mut buf, 200).await;
    uac.learn(&ok.to_bytes());
    // ACK and BYE in one write: two frames in one segment.
    let mut both = uac.ack_2xx();
    both.extend_from_slice(&uac.bye());
    stream.write_all(&both).await.unwrap();
    let ok = read_until_status(&mut stream, &mut buf, 200).await;
    assert_eq!(ok.cseq().unwrap().method, sip_msg::Method::Bye);
    wait_drained(&bridge).await;
}

async fn read_until_status(stream: &mut TcpStream, buf: &mut Vec<u8>, status: u16) -> Response {
    loop {
        while let Ok(sip_msg::StreamFrame::Complete(n)) = sip_msg::frame_stream(buf) {
            let frame: Vec<u8> = buf.drain(..n).collect();
            if let Ok(r) = Response::parse(&frame) {
                if r.status == status {
                    return r;
                }
            }
        }
        let mut chunk = [0u8; 4096];
        let n = timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .expect("data in time")
            .unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn drain_refuses_new_calls_keeps_active_ones_and_stops_when_idle() {
    let bridge = Bridge::start(config("127.0.0.1:0")).await.unwrap();
    let server = bridge.sip_addrs[0];
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut active = Uac::new("active", sock.local_addr().unwrap(), server);
    sock.send_to(&active.invite(&[]), server).await.unwrap();
    let ok = recv_response(&sock, "INVITE").await;
    active.learn(&ok.to_bytes());
    sock.send_to(&active.ack_2xx(), server).await.unwrap();
    bridge.drain();
    // The endpoint task takes the drain on its next turn: wait until it says so (a fixed
    // sleep raced it on a loaded CI machine and the late call got its 200).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !bridge.snapshot().draining {
        assert!(tokio::time::Instant::now() < deadline, "draining in time");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut late = Uac::new("late", sock.local_addr().unwrap(), server);
    sock.send_to(&late.invite(&[]), server).await.unwrap();
    // The late call's own answer (not a retransmission of the active call's 200).
    let r = loop {
        let r = recv_response(&sock, "INVITE").await;
        if r.headers.get(&sip_msg::HeaderName::CallId) == Some(late.call_id.as_str()) {
            break r;
        }
    };
    assert_eq!(r.status, 503);
    assert!(r.headers.get(&sip_msg::HeaderName::RetryAfter).is_some());
    // The active call is still served; when it ends, the bridge stops.
    sock.send_to(&active.bye(), server).await.unwrap();
    assert_eq!(recv_response(&sock, "BYE").await.status, 200);
    timeout(Duration::from_secs(5), bridge.join())
        .await
        .expect("bridge stops when drained");
}

/// Calls still up when the drain reaches `drain_timeout` get a BYE whose Reason says so (not
/// the max-call-duration text), then the bridge stops.
#[tokio::test]
async fn drain_timeout_hangs_up_the_rest_with_a_reason() {
    let bridge = Bridge::start(BridgeConfig {
        drain_timeout: Duration::from_millis(300),
        ..config("127.0.0.1:0")
    })
    .await
    .unwrap();
    let server = bridge.sip_addrs[0];
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut uac = Uac::new("stays", sock.local_addr().unwrap(), server);
    sock.send_to(&uac.invite(&[]), server).await.unwrap();
    let ok = recv_response(&sock, "INVITE").await;
    uac.learn(&ok.to_bytes());
    sock.send_to(&uac.ack_2xx(), server).await.unwrap();
    let drained_at = tokio::time::Instant::now();
    bridge.drain();
    let mut buf = vec![0u8; 65535];
    let bye = loop {
        let (n, _) = timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
            .await
            .expect("BYE in time")
            .unwrap();
        if let Ok(r) = sip_msg::Request::parse(&buf[..n]) {
            break r;
        }
    };
    assert_eq!(bye.method, sip_msg::Method::Bye);
    assert!(
        drained_at.elapsed() >= Duration::from_millis(300),
        "BYE before the drain timeout: {:?}",
        drained_at.elapsed()
    );
    let reason = bye.headers.get(&sip_msg::HeaderName::Reason).unwrap();
    assert_eq!(reason, "SIP;cause=200;text=\"drain timeout\"");
    let ok = Response::for_request(&bye, 200, "OK");
    sock.send_to(&ok.to_bytes(), server).await.unwrap();
    timeout(Duration::from_secs(5), bridge.join())
        .await
        .expect("bridge stops after the drain timeout");
}
