//! Chaos: calls through the whole bridge (SIP, RTP, the demo agents on the Realtime simulator,
//! call records) while something goes wrong, and each call must end cleanly with a correct
//! record: the Realtime server sending errors, malformed JSON, unknown events and binary frames;
//! RTP stopping and resuming; the caller vanishing without a BYE (media timeout); the ACK lost
//! once and lost for good; the caller's BYE answered but the 200 lost; a Realtime server that
//! accepts the connection and never answers. (The socket killed mid-response is in `ai.rs`.)

mod common;

use bridge::ai::{AiCounters, AiSettings};
use bridge::handoffs::{agents_runtime, Records};
use bridge::memory::CallRecord;
use bridge::{Bridge, BridgeConfig};
use common::Caller;
use futures_util::{SinkExt, StreamExt};
use router::AgentsFile;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use testkit::uac::Uac;
use tokio::net::{TcpListener, UdpSocket};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

struct Rig {
    bridge: Bridge,
    records: Arc<Records>,
    counters: Arc<AiCounters>,
    _sim: realtime_sim::Simulator,
}

/// A bridge with the demo agents and records in memory, talking to the simulator directly or
/// (`proxy`) through [`garbage_proxy`].
async fn rig(ports: std::ops::RangeInclusive<u16>, media_timeout: Duration, proxy: bool) -> Rig {
    let sim = realtime_sim::Simulator::bind("127.0.0.1:0").await.unwrap();
    let url = if proxy {
        garbage_proxy(sim.url()).await
    } else {
        sim.url()
    };
    let mut ai = AiSettings::new(url, "unused").unwrap();
    // The agent speaks when spoken to, so what the caller hears answers what it sent.
    ai.greet = false;
    let counters = ai.counters.clone();
    let (agents, records) = agents_runtime(
        AgentsFile::embedded_default().unwrap(),
        ai.tls.clone(),
        Duration::from_secs(86_400),
    )
    .unwrap();
    ai.agents = Some(agents);
    let cfg = BridgeConfig {
        sip_listen: vec!["127.0.0.1:0".parse().unwrap()],
        admin_listen: None,
        sip_t1: Duration::from_millis(10),
        session_expires: 0,
        rtp_ports: ports,
        media_timeout,
        ai: Some(ai),
        records: Some(records.clone()),
        ..BridgeConfig::default()
    };
    Rig {
        bridge: Bridge::start(cfg).await.unwrap(),
        records,
        counters,
        _sim: sim,
    }
}

/// The call's record once it is complete (ended, SIP side and RTP statistics on it).
async fn record_of(records: &Records, call_id: &str) -> CallRecord {
    for _ in 0..500 {
        if let Some(r) = records.memory.get(call_id) {
            if r.ended_at.is_some() && r.sip.as_ref().is_some_and(|s| s.rtp.is_some()) {
                return r;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "no complete record for {call_id}: {:?}",
        records.memory.get(call_id)
    );
}

/// A WebSocket relay in front of the simulator that, right after the first `session.updated`,
/// sends the bridge an `error` event, malformed JSON, an event type nobody knows, a truncated
/// event and a binary frame, then relays faithfully. Returns its URL.
async fn garbage_proxy(upstream: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok(down) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                let Ok((up, _)) = tokio_tungstenite::connect_async(upstream.as_str()).await else {
                    return;
                };
                let (mut down_tx, mut down_rx) = down.split();
                let (mut up_tx, mut up_rx) = up.split();
                let to_server = async move {
                    while let Some(Ok(m)) = down_rx.next().await {
                        if up_tx.send(m).await.is_err() {
                            break;
                        }
                    }
                };
                let to_bridge = async move {
                    let mut injected = false;
                    while let Some(Ok(m)) = up_rx.next().await {
                        let updated =
                            matches!(&m, Message::Text(t) if t.contains("\"session.updated\""));
                        if down_tx.send(m).await.is_err() {
                            break;
                        }
                        if updated && !injected {
                            injected = true;
                            for junk in [
                                r#"{"type":"error","event_id":"evt_chaos1","error":{"type":"server_error","code":"server_error","message":"The server had an error while processing your request.","param":null,"event_id":null}}"#,
                                r#"{"type":"response.output_audio.delta","#,
                                "not json at all",
                                r#"{"type":"response.future_event_type","event_id":"evt_chaos2"}"#,
                                r#"{"no_type_here":true}"#,
                            ] {
                                let _ = down_tx.send(Message::text(junk)).await;
                            }
                            let _ = down_tx.send(Message::binary(vec![0u8, 1, 2, 3])).await;
                        }
                    }
                };
                tokio::select! {
                    _ = to_server => {}
                    _ = to_bridge => {}
                }
            });
        }
    });
    format!("ws://{addr}/v1/realtime")
}

fn assert_caller_hung_up(r: &CallRecord) {
    let sip = r.sip.as_ref().unwrap();
    assert_eq!(sip.end_reason, "remote_bye", "{r:?}");
    assert_eq!(sip.hung_up_by, "caller", "{r:?}");
    assert!(sip.answered_at.is_some(), "{r:?}");
    assert_eq!(r.agent_path.len(), 0, "no handoff in these calls: {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realtime_errors_malformed_json_and_unknown_events_do_not_end_the_call() {
    let rig = rig(36000..=36099, Duration::from_secs(30), true).await;
    let mut caller = Caller::dial(rig.bridge.sip_addrs[0], "chaos-json").await;
    let id = caller.uac.call_id.clone();
    assert!(
        caller.speak_and_hear(50, 300).await,
        "the agent answered after the garbage"
    );
    caller.assert_no_bye().await;
    caller.hang_up().await;
    let r = record_of(&rig.records, &id).await;
    assert_caller_hung_up(&r);
    let stats = rig.counters.snapshot();
    assert!(
        stats.server_errors >= 1,
        "the error event counted: {stats:?}"
    );
    assert!(
        stats.unknown_events >= 1,
        "unknown events counted: {stats:?}"
    );
    assert_eq!(
        stats.socket_losses, 0,
        "garbage is not a lost socket: {stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtp_stopping_and_resuming_keeps_the_call() {
    let rig = rig(36100..=36199, Duration::from_secs(3), false).await;
    let mut caller = Caller::dial(rig.bridge.sip_addrs[0], "chaos-rtp").await;
    let id = caller.uac.call_id.clone();
    assert!(caller.speak_and_hear(50, 300).await, "first answer");
    // Let the answer finish, then 2 s without a single packet (under the 3 s media timeout).
    for _ in 0..75 {
        caller.step(false).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    caller.assert_no_bye().await;
    // The caller is back: its new turn is heard and answered.
    assert!(caller.speak_and_hear(50, 300).await, "answer after the gap");
    caller.assert_no_bye().await;
    caller.hang_up().await;
    let r = record_of(&rig.records, &id).await;
    assert_caller_hung_up(&r);
    let rtp = r.sip.as_ref().and_then(|s| s.rtp.clone()).unwrap();
    assert!(rtp.packets_received >= 150, "{rtp:?}");
    assert!(rtp.packets_sent >= 100, "{rtp:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_vanishing_without_bye_is_hung_up_at_the_media_timeout() {
    let rig = rig(36200..=36299, Duration::from_secs(1), false).await;
    let mut caller = Caller::dial(rig.bridge.sip_addrs[0], "chaos-vanish").await;
    let id = caller.uac.call_id.clone();
    for _ in 0..10 {
        caller.step(true).await;
    }
    // Gone: no RTP, no BYE. The bridge must hang up by itself with a Reason.
    let mut buf = vec![0u8; 65535];
    let bye = loop {
        let (n, _) = timeout(Duration::from_secs(5), caller.sip.recv_from(&mut buf))
            .await
            .expect("the bridge's BYE within 5 s")
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        if text.starts_with("BYE ") {
            break text;
        }
    };
    assert!(bye.contains("Reason:"), "{bye}");
    // Nobody answers the BYE either: the bridge's transaction times out; the record is there.
    let r = record_of(&rig.records, &id).await;
    let sip = r.sip.as_ref().unwrap();
    assert_eq!(sip.end_reason, "local_bye", "{r:?}");
    assert_eq!(sip.end_detail.as_deref(), Some("media timeout"), "{r:?}");
    assert_eq!(sip.hung_up_by, "bridge", "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_ack_is_recovered_by_the_retransmitted_200() {
    let rig = rig(36300..=36399, Duration::from_secs(30), false).await;
    // The first two ACKs are lost; the third 200 is ACKed.
    let mut caller = Caller::dial_losing_acks(rig.bridge.sip_addrs[0], "chaos-ack", 2).await;
    let id = caller.uac.call_id.clone();
    assert!(caller.speak_and_hear(50, 300).await, "the call works");
    caller.assert_no_bye().await;
    caller.hang_up().await;
    let r = record_of(&rig.records, &id).await;
    assert_caller_hung_up(&r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_lost_for_good_ends_the_call_with_a_bye_and_a_record() {
    let rig = rig(36400..=36499, Duration::from_secs(30), false).await;
    let server = rig.bridge.sip_addrs[0];
    let sip = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let media = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut uac = Uac::new("chaos-noack", sip.local_addr().unwrap(), server);
    let inv = String::from_utf8(uac.invite(&[])).unwrap().replace(
        "m=audio 40000",
        &format!("m=audio {}", media.local_addr().unwrap().port()),
    );
    sip.send_to(inv.as_bytes(), server).await.unwrap();
    // 200s keep coming (never ACKed) until 64*T1 (640 ms here), then the bridge's BYE.
    let mut buf = vec![0u8; 65535];
    let mut oks = 0;
    let bye = loop {
        let (n, _) = timeout(Duration::from_secs(5), sip.recv_from(&mut buf))
            .await
            .expect("a BYE after the 200 retransmissions")
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        if text.starts_with("SIP/2.0 200") {
            oks += 1;
        }
        if text.starts_with("BYE ") {
            break text;
        }
    };
    assert!(oks >= 3, "the 200 was retransmitted ({oks} seen)");
    // The caller (late) answers the BYE; the record says why the call ended.
    let resp = bye_ok(&bye);
    sip.send_to(resp.as_bytes(), server).await.unwrap();
    let r = record_of(&rig.records, &uac.call_id).await;
    let leg = r.sip.as_ref().unwrap();
    assert_eq!(leg.end_reason, "ack_timeout", "{r:?}");
    assert_eq!(leg.hung_up_by, "bridge", "{r:?}");
    assert!(leg.answered_at.is_none(), "never confirmed: {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bye_whose_200_is_lost_is_answered_again_and_recorded_once() {
    let rig = rig(36500..=36599, Duration::from_secs(30), false).await;
    let mut caller = Caller::dial(rig.bridge.sip_addrs[0], "chaos-bye").await;
    let id = caller.uac.call_id.clone();
    assert!(caller.speak_and_hear(50, 300).await);
    let bye = caller.uac.bye();
    let server: SocketAddr = caller.server;
    let mut buf = vec![0u8; 65535];
    let mut answered = 0;
    // The first 200 is "lost" (read and ignored); the retransmitted BYE (same branch) must be
    // answered 200 again by the server transaction, not 481.
    for _ in 0..2 {
        caller.sip.send_to(&bye, server).await.unwrap();
        loop {
            let (n, _) = timeout(Duration::from_secs(5), caller.sip.recv_from(&mut buf))
                .await
                .expect("an answer to the BYE")
                .unwrap();
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            let answers_bye = text.starts_with("SIP/2.0")
                && text.lines().any(|l| {
                    l.to_ascii_lowercase().starts_with("cseq:") && l.trim_end().ends_with("BYE")
                });
            if answers_bye {
                assert!(text.starts_with("SIP/2.0 200"), "{text}");
                answered += 1;
                break;
            }
        }
    }
    assert_eq!(answered, 2);
    let r = record_of(&rig.records, &id).await;
    assert_caller_hung_up(&r);
    // One call, one record: the retransmission made no second one.
    assert_eq!(
        rig.records
            .memory
            .recent_for(&r.caller, std::time::UNIX_EPOCH)
            .await
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_realtime_server_that_never_answers_still_leaves_a_record_and_frees_the_agent() {
    // Accepts TCP and never says a word: the bridge's connect hangs (up to its 10 s timeout),
    // the call ends meanwhile and the endpoint task stops the stuck session 5 s later.
    let hole = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/v1/realtime", hole.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = hole.accept().await {
            held.push(tcp);
        }
    });
    let mut ai = AiSettings::new(url, "unused").unwrap();
    ai.greet = false;
    let (agents, records) = agents_runtime(
        AgentsFile::embedded_default().unwrap(),
        ai.tls.clone(),
        Duration::from_secs(86_400),
    )
    .unwrap();
    let slots = agents.slots.clone();
    ai.agents = Some(agents);
    let bridge = Bridge::start(BridgeConfig {
        sip_listen: vec!["127.0.0.1:0".parse().unwrap()],
        sip_t1: Duration::from_millis(10),
        session_expires: 0,
        rtp_ports: 36600..=36699,
        ai: Some(ai),
        records: Some(records.clone()),
        ..BridgeConfig::default()
    })
    .await
    .unwrap();
    let mut caller = Caller::dial(bridge.sip_addrs[0], "chaos-hole").await;
    let id = caller.uac.call_id.clone();
    for _ in 0..25 {
        caller.step(true).await;
    }
    assert_eq!(slots.in_use("router"), 1, "the router has the call");
    caller.hang_up().await;
    let mut record = None;
    for _ in 0..100 {
        record = records.memory.get(&id).filter(|r| r.sip.is_some());
        if record.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = record.expect("the call's record, though its session never opened");
    assert_eq!(r.sip.as_ref().unwrap().end_reason, "remote_bye", "{r:?}");
    assert_eq!(records.unsaved(), 0);
    assert_eq!(slots.in_use("router"), 0, "the router's slot is back");
}

/// A 200 OK answering `bye` (the request's Via, From, To, Call-ID, CSeq copied).
fn bye_ok(bye: &str) -> String {
    let mut out = String::from("SIP/2.0 200 OK\r\n");
    for line in bye.lines() {
        let l = line.to_ascii_lowercase();
        if ["via:", "from:", "to:", "call-id:", "cseq:"]
            .iter()
            .any(|h| l.starts_with(h))
        {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}
