//! Cross-call memory through the whole bridge: a caller's first call reaches support; when the
//! same caller calls again, the entry agent's first session config carries the returning-caller
//! note. The process's records also feed `GET /metrics`.

mod common;

use bridge::ai::AiSettings;
use bridge::handoffs::agents_runtime;
use bridge::{Bridge, BridgeConfig};
use common::Caller;
use router::AgentsFile;
use std::sync::Arc;
use std::time::Duration;

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/sim/demo.toml");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_caller_is_met_with_what_the_last_call_left() {
    let text = std::fs::read_to_string(DEMO)
        .unwrap()
        .replace("say = \"wav:", "say = \"text:One two.\" # ");
    let scenario = realtime_sim::Scenario::from_toml(&text, DEMO)
        .unwrap()
        .with_speedup(10.0);
    let sim = realtime_sim::Simulator::bind_with(
        "127.0.0.1:0",
        realtime_sim::SimOptions {
            scenario: Some(scenario),
            event_log: None,
        },
    )
    .await
    .unwrap();
    let log = std::env::temp_dir().join(format!("switchboard-{}-memory.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let mut ai = AiSettings::new(sim.url(), "unused").unwrap();
    ai.event_log = Some(Arc::new(bridge::ai::EventLog::open(&log).unwrap()));
    let (agents, records) = agents_runtime(
        AgentsFile::embedded_default().unwrap(),
        ai.tls.clone(),
        Duration::from_secs(7 * 86_400),
    )
    .unwrap();
    ai.agents = Some(agents);
    let cfg = BridgeConfig {
        sip_listen: vec!["127.0.0.1:0".parse().unwrap()],
        admin_listen: Some("127.0.0.1:0".parse().unwrap()),
        sip_t1: Duration::from_millis(10),
        session_expires: 0,
        rtp_ports: 35200..=35299,
        ai: Some(ai),
        records: Some(records.clone()),
        ..BridgeConfig::default()
    };
    let bridge = Bridge::start(cfg).await.unwrap();
    let server = bridge.sip_addrs[0];

    // First call: greeting, the billing question, the handoff to support, hang up.
    let mut first = Caller::dial(server, "memory").await;
    let first_id = first.uac.call_id.clone();
    assert!(first.speak_and_hear(0, 150).await, "greeting");
    for _ in 0..60 {
        first.step(false).await;
    }
    let handed = |r: &bridge::handoffs::Records| {
        r.metrics
            .render()
            .contains("switchboard_handoffs_total{from=\"router\",to=\"support\"} 1")
    };
    for i in 0..300 {
        first.step(i < 30).await;
        if i > 30 && handed(&records) {
            break;
        }
    }
    assert!(handed(&records), "the first call reached support");
    first.hang_up().await;
    let mut stored = None;
    for _ in 0..200 {
        stored = records.memory.last_for("caller@127.0.0.1").await;
        if stored.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stored = stored.expect("the call's record is in the memory store");
    assert_eq!(stored.agent_path.len(), 1);
    assert_eq!(
        stored
            .final_envelope
            .as_ref()
            .and_then(|e| e.intent.as_deref()),
        Some("billing_question")
    );

    // Second call from the same caller (From sip:caller@127.0.0.1): the router starts with
    // the note.
    let before = std::fs::read_to_string(&log).unwrap().lines().count();
    let mut second = Caller::dial(server, "memory-2").await;
    assert!(second.speak_and_hear(0, 150).await, "greeting again");
    let text = std::fs::read_to_string(&log).unwrap();
    let update = text
        .lines()
        .skip(before)
        .find(|l| l.contains("\"session.update\""))
        .expect("the second call's session.update");
    let v: serde_json::Value = serde_json::from_str(update).unwrap();
    let instructions = v["session"]["instructions"].as_str().unwrap();
    assert!(instructions.contains("router agent"), "{instructions}");
    assert!(instructions.contains("Returning caller"), "{instructions}");
    assert!(instructions.contains("billing_question"), "{instructions}");

    // The admin API: the call in progress with its agent; hang it up from there.
    let admin = bridge.admin_addr.unwrap();
    let list = http_get(admin, "/calls").await;
    assert!(
        list.contains(&format!("\"call_id\":\"{}\"", second.uac.call_id)),
        "{list}"
    );
    assert!(
        list.contains("\"agent\":\"router\"") && list.contains("\"state\":\"answered\""),
        "{list}"
    );
    // `/stats` says when packets left over 20 ms late (a list, empty or not: this machine may
    // stall), next to the media threads' load.
    let stats = http_get(admin, "/stats").await;
    let body = stats.split("\r\n\r\n").nth(1).unwrap_or(&stats);
    let v: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {stats}"));
    assert!(v["late_sends"]["recent"].is_array(), "{stats}");
    assert!(v["late_sends"]["forgotten_ms"].is_u64(), "{stats}");
    assert!(v["media_calls"].as_u64() >= Some(1), "{stats}");
    let gone = http("DELETE", admin, &format!("/calls/{}", second.uac.call_id)).await;
    assert!(
        gone.starts_with("HTTP/1.1 200") || gone.starts_with("HTTP/1.0 200"),
        "{gone}"
    );
    let mut buf = vec![0u8; 65535];
    let mut bye = false;
    for _ in 0..50 {
        if let Ok(Ok((n, _))) =
            tokio::time::timeout(Duration::from_millis(100), second.sip.recv_from(&mut buf)).await
        {
            bye |= buf[..n].starts_with(b"BYE ");
            if bye {
                break;
            }
        }
    }
    assert!(bye, "DELETE /calls/ID sent a BYE");
    let missing = http("DELETE", admin, "/calls/no-such-call").await;
    assert!(missing.contains(" 404 "), "{missing}");
    // An ended call: its record, transcript included.
    let record = http_get(admin, &format!("/calls/{first_id}")).await;
    assert!(
        record.contains("\"active\":false") && record.contains("billing_question"),
        "{record}"
    );
    assert!(record.contains("\"transcript\""), "{record}");
    // The SIP and media side, and the Realtime usage with its cost.
    for part in [
        "\"end_reason\":\"remote_bye\"",
        "\"hung_up_by\":\"caller\"",
        "\"codec\":\"Pcmu\"",
        "\"packets_received\":",
        "\"output_audio_tokens\":",
        "\"cost_usd\":",
    ] {
        assert!(record.contains(part), "{part} in {record}");
    }
    let cost: f64 = record
        .split("\"cost_usd\":")
        .nth(1)
        .and_then(|r| r.split([',', '}']).next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(cost > 0.0, "usage priced: {record}");

    // The admin API serves the seed metrics.
    let body = http_get(admin, "/metrics").await;
    assert!(
        body.contains("switchboard_handoffs_total{from=\"router\",to=\"support\"} 1"),
        "{body}"
    );
    assert!(
        body.contains("# TYPE switchboard_handoff_seconds histogram"),
        "{body}"
    );
    // Operations: how the two calls ended, their setup, the Realtime side.
    for line in [
        "switchboard_calls_total{end_reason=\"remote_bye\"} 1",
        "switchboard_calls_total{end_reason=\"local_bye\"} 1",
        "switchboard_call_setup_seconds_count 2",
        "switchboard_realtime_sessions_total 2",
    ] {
        assert!(body.contains(line), "{line} in\n{body}");
    }
    assert!(
        !body.contains("switchboard_realtime_output_tokens_total 0\n"),
        "usage counted: {body}"
    );
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    http("GET", addr, path).await
}

/// A plain HTTP/1.0 request over loopback (the response, headers included).
async fn http(method: &str, addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("{method} {path} HTTP/1.0\r\nHost: test\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}
