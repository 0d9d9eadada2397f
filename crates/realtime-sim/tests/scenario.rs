//! Scenario-driven simulator over a real loopback WebSocket: loading errors, the demo call's
//! agents switching on `session.update`, function calls in the API's order, WAV audio in the
//! session format, the disconnect hooks, and a whole demo run's event log through the strict
//! openai-python validator (issue 5).

mod common;

use std::path::{Path, PathBuf};

use base64::Engine;
use common::{assert_in_order, types, validate_jsonl, Client, STEP};
use futures_util::StreamExt;
use realtime::{AudioFormat, ClientEvent, Item, SessionConfig, Transcription, TurnDetection};
use realtime_sim::{Scenario, ScenarioError, SimOptions, Simulator, WavError};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/sim/demo.toml");
const AUDIO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/audio");
/// Tests stream audio this many times faster than real time.
const FAST: f64 = 50.0;

const ROUTER: &str = "You are the Acme router agent: greet callers and route them.";
const SUPPORT: &str = "You are Acme's billing support agent.";
const SALES: &str = "You are Acme's sales agent.";

/// The samples of a mono 16-bit WAV fixture (its `data` chunk), as little-endian bytes.
fn wav_data(name: &str) -> Vec<u8> {
    let bytes = std::fs::read(Path::new(AUDIO).join(name)).unwrap();
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let size = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        if &bytes[at..at + 4] == b"data" {
            return bytes[at + 8..at + 8 + size].to_vec();
        }
        at += 8 + size + (size & 1);
    }
    panic!("{name}: no data chunk");
}

fn temp_path(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("realtime-sim-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

async fn demo_sim(event_log: Option<PathBuf>) -> Simulator {
    let scenario = Scenario::load(DEMO).unwrap().with_speedup(FAST);
    Simulator::bind_with(
        "127.0.0.1:0",
        SimOptions {
            scenario: Some(scenario),
            event_log,
        },
    )
    .await
    .unwrap()
}

fn config(instructions: &str, output: AudioFormat, vad: bool) -> SessionConfig {
    SessionConfig::builder()
        .instructions(instructions)
        .output_format(output)
        .turn_detection(vad.then(TurnDetection::server_vad))
        .transcription(Some(Transcription {
            model: Some("gpt-4o-mini-transcribe".into()),
            language: Some("en".into()),
            prompt: None,
        }))
        .build()
        .unwrap()
}

async fn update(c: &mut Client, cfg: &SessionConfig) {
    c.send(cfg.update_event()).await;
    let ev = c.until("session.updated").await;
    assert!(!types(&ev).contains(&"error"), "{ev:?}");
}

fn audio_bytes(events: &[Value]) -> usize {
    events
        .iter()
        .filter(|e| e["type"] == "response.output_audio.delta")
        .map(|e| {
            base64::engine::general_purpose::STANDARD
                .decode(e["delta"].as_str().unwrap())
                .unwrap()
                .len()
        })
        .sum()
}

fn transcript(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| e["type"] == "response.output_audio_transcript.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect()
}

fn find<'a>(events: &'a [Value], ty: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["type"] == ty)
        .unwrap_or_else(|| panic!("no {ty} in {:?}", types(events)))
}

/// A caller line into the input buffer in 100 ms appends, then `silence_ms` of silence.
async fn say(c: &mut Client, wav: &str, silence_ms: usize) {
    let mut pcm = wav_data(wav);
    pcm.resize(pcm.len() + silence_ms * 48, 0);
    for chunk in pcm.chunks(4_800) {
        c.send(ClientEvent::append(chunk)).await;
    }
}

/// What a handoff sends (DESIGN "Handoffs", mode A): the new agent's config, the tool output,
/// `response.create`. Returns the new agent's response events.
async fn hand_off(c: &mut Client, cfg: &SessionConfig, call_id: &str, to: &str) -> Vec<Value> {
    update(c, cfg).await;
    let output = format!(r#"{{"assistant":"{to}"}}"#);
    c.send(ClientEvent::create_item(Item::function_output(
        call_id, output,
    )))
    .await;
    let ev = c.until("conversation.item.done").await;
    assert_eq!(ev[ev.len() - 1]["item"]["type"], "function_call_output");
    c.send(ClientEvent::create_response(None)).await;
    c.until("response.done").await
}

/// One manual turn (no VAD): the caller's line (if any) appended and committed, then
/// `response.create`; returns the response's events.
async fn respond(c: &mut Client, caller: Option<&str>) -> Vec<Value> {
    if let Some(wav) = caller {
        say(c, wav, 0).await;
        c.send(ClientEvent::commit()).await;
        c.until("conversation.item.input_audio_transcription.completed")
            .await;
    }
    c.send(ClientEvent::create_response(None)).await;
    c.until("response.done").await
}

/// Checks the function-call half of a response and returns (call_id, name, arguments).
fn function_call(events: &[Value]) -> (String, String, Value) {
    assert_in_order(
        events,
        &[
            "response.output_audio.done",
            "response.output_item.done",
            "response.output_item.added",
            "conversation.item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "conversation.item.done",
            "response.done",
        ],
    );
    let added = events
        .iter()
        .find(|e| e["type"] == "response.output_item.added" && e["output_index"] == 1)
        .expect("function_call output item at index 1");
    let item = &added["item"];
    assert_eq!(item["type"], "function_call");
    assert_eq!(item["arguments"], "");
    assert_eq!(item["status"], "in_progress");
    let call_id = item["call_id"].as_str().unwrap().to_string();
    assert!(call_id.starts_with("call_"), "{call_id}");
    let name = item["name"].as_str().unwrap().to_string();
    let streamed: String = events
        .iter()
        .filter(|e| e["type"] == "response.function_call_arguments.delta")
        .inspect(|e| {
            assert_eq!(e["call_id"], call_id.as_str());
            assert_eq!(e["item_id"], item["id"]);
            assert_eq!(e["output_index"], 1);
        })
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    let done = find(events, "response.function_call_arguments.done");
    assert_eq!(done["call_id"], call_id.as_str());
    assert_eq!(done["name"], name.as_str());
    assert_eq!(done["arguments"], streamed.as_str());
    let response = &events[events.len() - 1]["response"];
    assert_eq!(response["status"], "completed");
    let output = response["output"].as_array().unwrap();
    assert_eq!(output.len(), 2, "{response}");
    assert_eq!(output[0]["type"], "message");
    assert_eq!(output[1]["type"], "function_call");
    assert_eq!(output[1]["arguments"], streamed.as_str());
    assert_eq!(output[1]["status"], "completed");
    let args = serde_json::from_str(&streamed).unwrap();
    (call_id, name, args)
}

#[test]
fn demo_scenario_loads_three_agents_picked_by_instructions() {
    let s = Scenario::load(DEMO).unwrap();
    assert_eq!(
        s.agent_names().collect::<Vec<_>>(),
        ["router", "support", "sales"]
    );
    assert_eq!(s.agent_for(ROUTER), Some("router"));
    assert_eq!(s.agent_for(SUPPORT), Some("support"));
    assert_eq!(s.agent_for(SALES), Some("sales"));
    assert_eq!(s.agent_for("Something else."), None);
    assert_eq!(s.speedup(), 2.0);
    assert_eq!(s.with_speedup(FAST).speedup(), FAST);
}

#[test]
fn a_bad_field_names_the_file_line_and_field() {
    let path = temp_path("bad-field.toml");
    std::fs::write(
        &path,
        "[[agent]]\nname = \"a\"\nmatch = \"a\"\n\n[[agent.turn]]\nsay = \"text:hi\"\n\
         [[agent.turn]]\nsay = \"text:hi\"\ndisconect_after_ms = 3\n",
    )
    .unwrap();
    let e = Scenario::load(&path).unwrap_err();
    let _ = std::fs::remove_file(&path);
    match &e {
        ScenarioError::Invalid {
            path: p,
            line,
            field,
            message,
        } => {
            assert_eq!(p, &path);
            assert_eq!(*line, 9);
            assert_eq!(field, "agent[0].turn[1].disconect_after_ms");
            assert!(message.contains("unknown field"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("{}:9: agent[0].turn[1].", path.display())),
        "{shown}"
    );

    let e = Scenario::from_toml("[default]\nsay = \"text:hi\"\nheard = 3\n", "x.toml").unwrap_err();
    assert_eq!(
        (e.line(), e.field()),
        (Some(3), Some("default.heard")),
        "{e}"
    );
}

#[test]
fn a_missing_wav_names_the_line_and_the_file() {
    let text = "[[agent]]\nname = \"router\"\nmatch = \"router\"\n[[agent.turn]]\n\
                say = \"wav:../audio/router-greeting.wav\"\ntranscript = \"Hi.\"\n\
                [[agent.turn]]\nsay = \"wav:../audio/no-such.wav\"\ntranscript = \"Bye.\"\n";
    let e = Scenario::from_toml(text, DEMO).unwrap_err();
    match &e {
        ScenarioError::Wav {
            line,
            field,
            wav,
            source: WavError::Io(io),
            ..
        } => {
            assert_eq!(*line, 8);
            assert_eq!(field, "agent[0].turn[1].say");
            assert!(wav.ends_with("../audio/no-such.wav"), "{}", wav.display());
            assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("demo.toml:8: "), "{e}");
    // A wav: turn needs its transcript.
    let e = Scenario::from_toml(&text.replace("transcript = \"Hi.\"\n", ""), DEMO).unwrap_err();
    assert_eq!(
        (e.line(), e.field()),
        (Some(5), Some("agent[0].turn[0].say")),
        "{e}"
    );
}

#[tokio::test]
async fn router_hands_off_to_support_with_a_function_call_and_wav_speech() {
    let sim = demo_sim(None).await;
    let mut c = Client::connect(&sim).await;
    let router = config(ROUTER, AudioFormat::pcm24k(), true);
    update(&mut c, &router).await;

    // Turn 1: the greeting, the WAV's samples as audio/pcm 24 kHz.
    c.send(ClientEvent::create_response(None)).await;
    let ev = c.until("response.done").await;
    assert_eq!(audio_bytes(&ev), wav_data("router-greeting.wav").len());
    assert_eq!(
        transcript(&ev),
        "Thanks for calling Acme. How can I help you today?"
    );
    assert!(!types(&ev).contains(&"response.function_call_arguments.done"));

    // The caller's billing question: VAD commits it with the next turn's `heard` text.
    say(&mut c, "caller-billing.wav", 1_000).await;
    let ev = c.until("response.done").await;
    assert_in_order(
        &ev,
        &[
            "input_audio_buffer.speech_started",
            "input_audio_buffer.speech_stopped",
            "input_audio_buffer.committed",
            "conversation.item.done",
            "conversation.item.input_audio_transcription.completed",
            "response.created",
        ],
    );
    let heard =
        "Hi, I was charged forty-nine dollars on January fifteenth and I don't understand why.";
    let user = find(&ev, "conversation.item.added");
    assert_eq!(user["item"]["content"][0]["transcript"], heard);
    let tr = find(&ev, "conversation.item.input_audio_transcription.completed");
    assert_eq!(tr["transcript"], heard);
    assert_eq!(tr["item_id"], user["item"]["id"]);
    assert_eq!(tr["usage"]["type"], "duration");
    assert!(tr["usage"]["seconds"].as_f64().unwrap() > 5.0, "{tr}");

    // Turn 2: narration, then handoff_to_support in the same response.
    assert_eq!(audio_bytes(&ev), wav_data("router-handoff.wav").len());
    assert!(transcript(&ev).starts_with("I'll connect you to our billing support specialist"));
    let (call_id, name, args) = function_call(&ev);
    assert_eq!(name, "handoff_to_support");
    assert_eq!(args["intent"], "billing_question");
    assert_eq!(args["entities"]["amount"], "$49.00");
    assert!(args["summary"].as_str().unwrap().contains("$49"));

    // The handoff's session.update switches the agent: support acknowledges the context.
    let support = router.to_builder().instructions(SUPPORT).build().unwrap();
    let ev = hand_off(&mut c, &support, &call_id, "support").await;
    assert_eq!(audio_bytes(&ev), wav_data("support-ack.wav").len());
    assert!(
        transcript(&ev).starts_with("I see you were charged $49 on January 15th"),
        "{}",
        transcript(&ev)
    );
    c.validate();
}

#[tokio::test]
async fn g711_sessions_get_the_wav_at_8_khz() {
    let sim = demo_sim(None).await;
    let mut c = Client::connect(&sim).await;
    update(&mut c, &config(SALES, AudioFormat::Pcmu, false)).await;
    c.send(ClientEvent::create_response(None)).await;
    let ev = c.until("response.done").await;
    let samples_24k = wav_data("sales-offer.wav").len() / 2;
    assert_eq!(
        audio_bytes(&ev),
        samples_24k.div_ceil(3),
        "1 byte per 8 kHz sample"
    );
    assert_eq!(
        ev[ev.len() - 1]["response"]["audio"]["output"]["format"]["type"],
        "audio/pcmu"
    );
    c.validate();
}

/// Reads until the socket ends; returns the events and whether a close frame came.
async fn until_gone(c: &mut Client) -> (Vec<Value>, bool) {
    let mut events = Vec::new();
    loop {
        match tokio::time::timeout(STEP, c.ws.next())
            .await
            .expect("socket still open after 10 s")
        {
            Some(Ok(Message::Text(t))) => events.push(serde_json::from_str(t.as_str()).unwrap()),
            Some(Ok(Message::Close(_))) => return (events, true),
            Some(Ok(_)) => {}
            None | Some(Err(_)) => return (events, false),
        }
    }
}

#[tokio::test]
async fn disconnect_after_ms_drops_the_socket_mid_response() {
    let scenario = Scenario::from_toml(
        "[default]\nsay = \"text:one two three four five six\"\ndisconnect_after_ms = 300\n",
        "inline.toml",
    )
    .unwrap()
    .with_speedup(FAST);
    let sim = Simulator::bind_with(
        "127.0.0.1:0",
        SimOptions {
            scenario: Some(scenario),
            event_log: None,
        },
    )
    .await
    .unwrap();
    let mut c = Client::connect(&sim).await;
    c.send(ClientEvent::create_response(None)).await;
    let (ev, closed) = until_gone(&mut c).await;
    assert!(!closed, "dropped without a close frame");
    assert!(types(&ev).contains(&"response.created"));
    assert!(!types(&ev).contains(&"response.done"), "{:?}", types(&ev));
    // 300 ms of the 1.8 s tone went out: three 100 ms deltas of pcm 24 kHz.
    assert_eq!(audio_bytes(&ev), 3 * 4_800);
    assert_eq!(sim.connections_accepted(), 1);
    // The simulator still serves: a reconnect gets a fresh session.
    let _again = Client::connect(&sim).await;
    assert_eq!(sim.connections_accepted(), 2);
}

#[tokio::test]
async fn kill_connections_drops_every_open_socket() {
    let sim = Simulator::bind("127.0.0.1:0").await.unwrap();
    let mut a = Client::connect(&sim).await;
    let mut b = Client::connect(&sim).await;
    a.send(ClientEvent::create_response(None)).await;
    a.until("response.output_audio.delta").await;
    assert_eq!(sim.kill_connections(), 2);
    for c in [&mut a, &mut b] {
        let (_, closed) = until_gone(c).await;
        assert!(!closed, "dropped without a close frame");
    }
    let mut c = Client::connect(&sim).await;
    c.send(ClientEvent::create_response(None)).await;
    c.until("response.done").await;
    assert_eq!(sim.connections_accepted(), 3);
}

#[tokio::test]
async fn a_whole_demo_call_logs_events_that_validate_strictly() {
    let log = temp_path("demo-events.jsonl");
    let sim = demo_sim(Some(log.clone())).await;
    let mut c = Client::connect(&sim).await;
    // Manual turns (no VAD): append the caller's line, commit, response.create.
    let router = config(ROUTER, AudioFormat::pcm24k(), false);
    update(&mut c, &router).await;
    let mut calls = Vec::new();
    respond(&mut c, None).await;
    let ev = respond(&mut c, Some("caller-billing.wav")).await;
    let (id, name, _) = function_call(&ev);
    calls.push(name);
    let support = router.to_builder().instructions(SUPPORT).build().unwrap();
    hand_off(&mut c, &support, &id, "support").await;
    let ev = respond(&mut c, Some("caller-upgrade.wav")).await;
    let (id, name, args) = function_call(&ev);
    assert_eq!(args["entities"]["interested_in"], "Pro");
    calls.push(name);
    let sales = router.to_builder().instructions(SALES).build().unwrap();
    let ev = hand_off(&mut c, &sales, &id, "sales").await;
    assert!(transcript(&ev).starts_with("You're on Standard and interested in Pro"));
    let ev = respond(&mut c, Some("caller-yes.wav")).await;
    let (id, name, args) = function_call(&ev);
    assert_eq!(args["to_plan"], "Pro");
    calls.push(name);
    // The tool output's response is the goodbye; past the last turn it repeats.
    c.send(ClientEvent::create_item(Item::function_output(
        id,
        r#"{"ok":true}"#,
    )))
    .await;
    for _ in 0..2 {
        let ev = respond(&mut c, None).await;
        assert_eq!(transcript(&ev), "Done, you're on Pro from today. Goodbye!");
    }
    assert_eq!(
        calls,
        ["handoff_to_support", "handoff_to_sales", "record_upgrade"]
    );
    drop(c);
    sim.shutdown().await;

    let jsonl = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    let events: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events[0]["type"], "session.created");
    let deltas: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "response.output_audio.delta")
        .collect();
    assert!(deltas.len() > 100, "{} audio deltas", deltas.len());
    assert!(deltas.iter().all(|e| e["delta"] == ""), "audio is elided");
    assert_eq!(
        events
            .iter()
            .filter(|e| e["type"] == "response.done")
            .count(),
        8
    );
    validate_jsonl(&jsonl);
}
