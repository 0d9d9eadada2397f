//! The seed's call, router -> support -> sales, over SIP and RTP through the bridge to the
//! simulator running the demo scenario (its WAV turns replaced by short tones so the test takes
//! seconds): the envelope at each handoff, narration and acknowledgment, the tool call, the
//! DTMF survey, one SIP dialog with no re-INVITE from the bridge, one RTP SSRC with continuous
//! sequence numbers, the per-call summary with the seed metrics, and every client event
//! through the official `openai` types.

mod common;

use common::noise;

use bridge::ai::{Agents, AiSettings, CallHooks, ToolCall, ToolFuture, ToolRunner};
use bridge::{Bridge, BridgeConfig};
use codec::{Encoder, Frame, PayloadCodec};
use router::{AgentsFile, CallSummary, Envelope, HandoffEvent, SlotTable};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use testkit::uac::Uac;
use tokio::net::UdpSocket;
use tokio::time::timeout;

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/sim/demo.toml");
const VALIDATOR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../realtime/tests/validate_realtime_events.py"
);

#[derive(Default)]
struct Seen {
    handoffs: Vec<HandoffEvent>,
    tools: Vec<String>,
    summary: Option<CallSummary>,
    caller: Option<String>,
}

#[derive(Default)]
struct Recorder(Mutex<Seen>);

impl CallHooks for Recorder {
    fn on_handoff(&self, _call_id: &str, event: &HandoffEvent) {
        self.0.lock().unwrap().handoffs.push(event.clone());
    }
    fn on_call_end(&self, _call_id: &str, caller: &str, summary: &CallSummary) {
        let mut s = self.0.lock().unwrap();
        s.summary = Some(summary.clone());
        s.caller = Some(caller.to_string());
    }
}

/// Answers every tool with a fixed record and remembers what ran.
struct FakeTools(Arc<Recorder>);

impl ToolRunner for FakeTools {
    fn run(&self, call: ToolCall) -> ToolFuture {
        self.0
             .0
            .lock()
            .unwrap()
            .tools
            .push(format!("{}:{}", call.agent, call.tool));
        Box::pin(async move { Ok(serde_json::json!({"confirmation": "UPG-1", "plan": "Pro"})) })
    }
}

/// The demo scenario with every spoken turn a short tone (transcripts, heard lines and tool
/// calls unchanged).
fn quick_demo() -> realtime_sim::Scenario {
    let text = std::fs::read_to_string(DEMO).unwrap();
    let quick: String = text
        .lines()
        .map(|l| {
            if l.starts_with("say = \"wav:") {
                "say = \"text:Okay then now.\"".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    realtime_sim::Scenario::from_toml(&quick, DEMO)
        .unwrap()
        .with_speedup(10.0)
}

struct Rtp {
    ssrcs: Vec<u32>,
    last_seq: Option<u16>,
    gaps: u32,
    packets: u32,
    loud: u32,
}

struct Outcome {
    /// Realtime `error` events the bridge received (a response.create sent while a response
    /// was active would be one: `conversation_already_has_active_response`).
    server_errors: u64,
    seen: Seen,
    summary: CallSummary,
    rtp: Rtp,
    sessions: u64,
    log: std::path::PathBuf,
}

/// Place the seed call with the demo agents in `voice_mode`.
async fn seed_call(voice_mode: &str, ports: std::ops::RangeInclusive<u16>) -> Outcome {
    let sim = realtime_sim::Simulator::bind_with(
        "127.0.0.1:0",
        realtime_sim::SimOptions {
            scenario: Some(quick_demo()),
            event_log: None,
        },
    )
    .await
    .unwrap();
    let text = router::EMBEDDED_DEFAULT.replace(
        "voice_mode = \"same\"",
        &format!("voice_mode = \"{voice_mode}\""),
    );
    let file = Arc::new(AgentsFile::parse(&text, "agents.toml").unwrap());
    assert_eq!(
        format!("{:?}", file.voice_mode).to_lowercase(),
        voice_mode.replace('_', "")
    );
    let recorder = Arc::new(Recorder::default());
    let log = std::env::temp_dir().join(format!(
        "switchboard-{}-handoff-{voice_mode}.jsonl",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&log);
    let mut ai = AiSettings::new(sim.url(), "unused with agents").unwrap();
    let counters = ai.counters.clone();
    ai.event_log = Some(Arc::new(bridge::ai::EventLog::open(&log).unwrap()));
    ai.agents = Some(Agents {
        slots: Arc::new(SlotTable::new(&file)),
        file,
        tools: Arc::new(FakeTools(recorder.clone())),
        hooks: recorder.clone(),
    });
    let cfg = BridgeConfig {
        sip_listen: vec!["127.0.0.1:0".parse().unwrap()],
        admin_listen: None,
        sip_t1: Duration::from_millis(10),
        session_expires: 0,
        rtp_ports: ports,
        ai: Some(ai),
        ..BridgeConfig::default()
    };
    let bridge = Bridge::start(cfg).await.unwrap();
    let server = bridge.sip_addrs[0];
    let sip = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let media = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut uac = Uac::new("caller", sip.local_addr().unwrap(), server);
    let inv = String::from_utf8(uac.invite(&[])).unwrap().replace(
        "m=audio 40000",
        &format!("m=audio {}", media.local_addr().unwrap().port()),
    );
    let bridge_rtp = common::call(&sip, server, &mut uac, inv.as_bytes()).await;

    let mut enc = Encoder::new(PayloadCodec::Pcmu).unwrap();
    let mut dec = codec::Decoder::new(PayloadCodec::Pcmu).unwrap();
    let mut rtp = Rtp {
        ssrcs: Vec::new(),
        last_seq: None,
        gaps: 0,
        packets: 0,
        loud: 0,
    };
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut buf = vec![0u8; 2048];
    let mut seq = 0usize;
    // One 20 ms step: send (noise when speaking), collect what the bridge sends.
    macro_rules! step {
        ($speak:expr) => {{
            tick.tick().await;
            let frame = if $speak { noise(seq) } else { Frame::silence() };
            let mut payload = Vec::new();
            enc.encode(&frame, &mut payload).unwrap();
            media
                .send_to(
                    &common::rtp_packet(seq as u16, (seq * 160) as u32, 0x5151, &payload),
                    bridge_rtp,
                )
                .await
                .unwrap();
            seq += 1;
            let mut peak = 0;
            while let Ok(Ok((n, from))) =
                timeout(Duration::from_millis(1), media.recv_from(&mut buf)).await
            {
                if from != bridge_rtp || n <= 12 || buf[0] >> 6 != 2 {
                    continue;
                }
                let s = u16::from_be_bytes([buf[2], buf[3]]);
                let ssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
                if !rtp.ssrcs.contains(&ssrc) {
                    rtp.ssrcs.push(ssrc);
                }
                if let Some(prev) = rtp.last_seq {
                    if s != prev.wrapping_add(1) {
                        rtp.gaps += 1;
                    }
                }
                rtp.last_seq = Some(s);
                rtp.packets += 1;
                if buf[1] & 0x7f == 0 {
                    let f = dec.decode(&buf[12..n]).unwrap();
                    peak = peak.max(f.0.iter().map(|v| i32::from(*v).abs()).max().unwrap_or(0));
                }
            }
            if peak > 3000 {
                rtp.loud += 1;
            }
            peak
        }};
    }
    let handoffs = |r: &Recorder| r.0.lock().unwrap().handoffs.len();

    // The router greets first.
    let mut greeted = false;
    for _ in 0..150 {
        if step!(false) > 3000 {
            greeted = true;
            break;
        }
    }
    assert!(greeted, "the router's greeting was heard");
    // Let the greeting finish, then each caller turn: speak 0.6 s, then listen until the
    // expected handoff (or tool call) happened and the new agent was heard.
    for _ in 0..60 {
        step!(false);
    }
    for (turn, want_handoffs) in [(0, 1), (1, 2)] {
        for i in 0..30 {
            step!(i < 30);
        }
        let mut heard_after = 0;
        for _ in 0..300 {
            let loud = step!(false) > 3000;
            if handoffs(&recorder) >= want_handoffs && loud {
                heard_after += 1;
                if heard_after > 5 {
                    break;
                }
            }
        }
        assert_eq!(handoffs(&recorder), want_handoffs, "turn {turn}");
        assert!(
            heard_after > 5,
            "turn {turn}: the new agent spoke after the handoff"
        );
        for _ in 0..40 {
            step!(false);
        }
    }
    // "Yes, let's do it": sales records the upgrade (a tool) and says goodbye.
    for i in 0..30 {
        step!(i < 30);
    }
    for _ in 0..200 {
        step!(false);
        if !recorder.0.lock().unwrap().tools.is_empty() {
            break;
        }
    }
    for _ in 0..50 {
        step!(false);
    }
    // The survey: 4 on the keypad (SIP INFO dtmf-relay).
    let info = uac.in_dialog(
        "INFO",
        Some(("application/dtmf-relay", "Signal=4\r\nDuration=160\r\n")),
    );
    sip.send_to(&info, server).await.unwrap();
    for _ in 0..10 {
        step!(false);
    }
    // Nothing from the bridge but responses: no BYE, no re-INVITE, no REFER.
    while let Ok(Ok((n, _))) = timeout(Duration::from_millis(5), sip.recv_from(&mut buf)).await {
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        assert!(
            text.starts_with("SIP/2.0 "),
            "the bridge sent a request:\n{text}"
        );
    }
    sip.send_to(&uac.bye(), server).await.unwrap();
    let mut summary = None;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        summary = recorder.0.lock().unwrap().summary.clone();
        if summary.is_some() {
            break;
        }
    }
    let summary = summary.expect("call summary at the end of the call");

    let sessions = sim.connections_accepted();
    let seen = std::mem::take(&mut *recorder.0.lock().unwrap());
    Outcome {
        server_errors: counters.snapshot().server_errors,
        seen,
        summary,
        rtp,
        sessions,
        log,
    }
}

fn validate_client_events(log: &std::path::Path) {
    let out = std::process::Command::new("python3")
        .arg(VALIDATOR)
        .arg("client")
        .arg("--strict")
        .stdin(std::fs::File::open(log).unwrap())
        .output()
        .expect("python3 with `pip install openai` is required");
    let report =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && report.contains("0 invalid"),
        "{}: {report}",
        log.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_call_router_support_sales_in_one_dialog_and_one_rtp_stream() {
    let Outcome {
        server_errors,
        seen,
        summary,
        rtp,
        sessions,
        log,
    } = seed_call("same", 35000..=35099).await;
    // Handoffs arrive while their response still streams: the acknowledgment's
    // response.create waited for response.done.
    assert_eq!(server_errors, 0);
    // One stream, continuous.
    assert_eq!(
        rtp.ssrcs.len(),
        1,
        "one SSRC for the whole call: {:?}",
        rtp.ssrcs
    );
    assert_eq!(
        rtp.gaps, 0,
        "continuous sequence numbers over {} packets",
        rtp.packets
    );
    assert!(rtp.packets > 300);

    // The handoffs and what travelled with them: one Realtime session for the whole call.
    assert_eq!(sessions, 1);
    let h = &seen.handoffs;
    assert!(h.iter().all(|e| e.mode == "same"));
    assert_eq!(
        (h[0].from.as_str(), h[0].to.as_str()),
        ("router", "support")
    );
    assert_eq!((h[1].from.as_str(), h[1].to.as_str()), ("support", "sales"));
    let e1: &Envelope = &h[0].envelope;
    assert_eq!(e1.intent.as_deref(), Some("billing_question"));
    assert_eq!(e1.entities["amount"], "$49.00");
    assert_eq!(e1.entities["date"], "January 15");
    assert!(
        e1.transcript
            .iter()
            .any(|t| t.text.contains("charged forty-nine dollars")),
        "the caller's words (input transcription) travel: {:?}",
        e1.transcript
    );
    let e2 = &h[1].envelope;
    assert_eq!(e2.intent.as_deref(), Some("upgrade_inquiry"));
    assert_eq!(e2.entities["interested_in"], "Pro");
    assert_eq!(
        e2.entities["amount"], "$49.00",
        "kept from the first handoff"
    );
    assert!(e2.resolved_issues.iter().any(|i| i.contains("$49")));
    assert!(
        e2.transcript
            .iter()
            .any(|t| t.text.contains("Standard plan renewal")),
        "support's own words travel to sales: {:?}",
        e2.transcript
    );
    assert_eq!(seen.tools, ["sales:record_upgrade"]);

    // The seed metrics of this call.
    assert_eq!(summary.agent_path, ["router", "support", "sales"]);
    assert_eq!(summary.handoffs.len(), 2);
    assert_eq!(
        summary.handoff_ms.len(),
        2,
        "the new agent's first audio was sent after each"
    );
    assert_eq!(
        summary.context_preservation.len(),
        2,
        "each new agent's first turn was scored"
    );
    assert!(
        summary.context_preservation[0] >= 0.5,
        "{:?}",
        summary.context_preservation
    );
    assert!(summary.converted, "record_upgrade after the handoffs");
    assert_eq!(summary.csat, Some(4));
    assert!(
        seen.caller.as_deref().unwrap_or("").contains("caller"),
        "{:?}",
        seen.caller
    );

    // Every client event, handoff session.updates included, through the openai types.
    validate_client_events(&log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hybrid_voices_a_session_per_agent_with_no_gap_in_rtp() {
    let o = seed_call("hybrid", 35100..=35199).await;
    // One SIP dialog and one RTP stream, three Realtime sessions (one per voice).
    assert_eq!(o.rtp.ssrcs.len(), 1, "{:?}", o.rtp.ssrcs);
    assert_eq!(o.rtp.gaps, 0, "over {} packets", o.rtp.packets);
    assert_eq!(
        o.sessions, 3,
        "router, support and sales each got their own session"
    );
    let h = &o.seen.handoffs;
    assert_eq!(h.len(), 2);
    assert!(
        h.iter().all(|e| e.mode == "hybrid"),
        "{:?}",
        h.iter().map(|e| e.mode).collect::<Vec<_>>()
    );
    assert_eq!(
        h[1].envelope.entities["amount"], "$49.00",
        "context carried across sessions"
    );
    assert_eq!(o.summary.agent_path, ["router", "support", "sales"]);
    assert_eq!(o.summary.handoff_ms.len(), 2, "each new voice was heard");
    assert!(o.summary.converted);
    // The sessions' configs carry each agent's voice.
    let voices: Vec<String> = std::fs::read_to_string(&o.log)
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"session.update\""))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["session"]["audio"]["output"]["voice"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(voices, ["marin", "sage", "cedar"]);
    validate_client_events(&o.log);
}
