//! Conformance: every client event we send, and every server fixture, through the official
//! openai-python models (protocol §5). Needs `python3` and `pip install openai`; without them
//! the test FAILS (it never skips), because a silent skip would let the wire format drift.
//! Regenerate `fixtures/realtime/client-events.jsonl` with `REALTIME_BLESS=1`.

use std::io::Write;
use std::process::{Command, Stdio};

use realtime::{
    AudioFormat, ClientEvent, ConversationItemTruncate, ConversationMode, Eagerness, FunctionTool,
    Item, Modality, NoiseReduction, ResponseCreateParams, SessionConfig, Tool, ToolChoice,
    Transcription, TurnDetection, Voice,
};
use serde_json::json;

const VALIDATOR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/validate_realtime_events.py"
);
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/realtime");

fn client_events() -> Vec<ClientEvent> {
    let tool = FunctionTool::new(
        "handoff_to_sales",
        "Hand the caller to sales with the context envelope.",
        json!({"type":"object","properties":{"summary":{"type":"string"},"urgency":{"type":"string","enum":["low","high"]}},"required":["summary"]}),
    );
    let router = SessionConfig::builder()
        .model("gpt-realtime")
        .instructions("You route callers.")
        .tool(tool.clone())
        .transcription(Some(Transcription {
            model: Some("gpt-4o-mini-transcribe".into()),
            language: Some("en".into()),
            prompt: None,
        }))
        .noise_reduction(Some(NoiseReduction::NearField))
        .build()
        .unwrap();
    let g711 = router
        .to_builder()
        .input_format(AudioFormat::Pcmu)
        .output_format(AudioFormat::Pcma)
        .turn_detection(Some(TurnDetection::semantic_vad(Eagerness::Auto)))
        .tool_choice(ToolChoice::function("handoff_to_sales"))
        .voice(Voice::named("cedar"))
        .speed(1.1)
        .build()
        .unwrap();
    let manual = router
        .to_builder()
        .turn_detection(None)
        .transcription(None)
        .noise_reduction(None)
        .output_modality(Modality::Text)
        .build()
        .unwrap();
    vec![
        router.update_event().with_event_id("client_1"),
        g711.update_event(),
        manual.update_event(),
        ClientEvent::append(&[0u8; 96]).with_event_id("client_2"),
        ClientEvent::commit(),
        ClientEvent::clear(),
        ClientEvent::create_item(Item::user_text("I need help with my bill.")),
        ClientEvent::create_item(Item::system_text("The caller is on the Gold plan.")),
        ClientEvent::create_item(Item::assistant_text(
            "Earlier I said your bill is due Friday.",
        )),
        ClientEvent::create_item(Item::Message(realtime::MessageItem {
            id: None,
            object: None,
            status: None,
            role: realtime::Role::User,
            content: vec![realtime::ContentPart::InputAudio {
                audio: Some("AAAAAAAA".into()),
                transcript: None,
            }],
        })),
        ClientEvent::create_item(Item::function_output("call_F1", r#"{"assistant":"sales"}"#)),
        ClientEvent::ConversationItemTruncate(ConversationItemTruncate {
            event_id: None,
            item_id: "item_A1".into(),
            content_index: 0,
            audio_end_ms: 1240,
        }),
        ClientEvent::delete_item("item_U0"),
        ClientEvent::create_response(None).with_event_id("client_7"),
        ClientEvent::create_response(Some(ResponseCreateParams {
            instructions: Some("Greet the caller and confirm the handoff context.".into()),
            tools: Some(vec![Tool::Function(tool)]),
            tool_choice: Some(ToolChoice::AUTO),
            ..ResponseCreateParams::default()
        })),
        ClientEvent::create_response(Some(ResponseCreateParams {
            conversation: Some(ConversationMode::None),
            instructions: Some("Summarize the call so far.".into()),
            output_modalities: Some(vec![Modality::Text]),
            metadata: Some(json!({"purpose":"summary"})),
            input: Some(vec![Item::user_text("Summarize.")]),
            ..ResponseCreateParams::default()
        })),
        ClientEvent::cancel_response(),
    ]
}

/// Runs the validator; panics with a clear message if python3 or `openai` is missing.
fn run_validator(side: &str, jsonl: &str) -> (bool, String) {
    let child = Command::new("python3")
        .arg(VALIDATOR)
        .arg(side)
        .arg("--strict")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => panic!("python3 is required for the Realtime conformance test: {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(jsonl.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("No module named") {
        panic!(
            "the Realtime conformance test needs the openai package: pip install openai\n{stderr}"
        );
    }
    (out.status.success(), format!("{stdout}{stderr}"))
}

/// Validates and requires zero invalid events.
fn validate(side: &str, jsonl: &str) -> String {
    let (ok, report) = run_validator(side, jsonl);
    assert!(
        ok,
        "{side} events rejected by openai-python's models:\n{report}"
    );
    assert!(report.trim_end().ends_with("0 invalid"), "{report}");
    report
}

#[test]
fn protocol_5_every_client_event_we_send_passes_the_strict_validator() {
    let events = client_events();
    let mut jsonl = String::new();
    for e in &events {
        jsonl.push_str(&e.to_json().unwrap());
        jsonl.push('\n');
    }
    let dir = env!("CARGO_TARGET_TMPDIR");
    std::fs::write(format!("{dir}/realtime-client-events.jsonl"), &jsonl).unwrap();
    let fixture = format!("{FIXTURES}/client-events.jsonl");
    if std::env::var_os("REALTIME_BLESS").is_some() {
        std::fs::write(&fixture, &jsonl).unwrap();
    }
    let recorded = std::fs::read_to_string(&fixture).unwrap_or_default();
    assert_eq!(
        recorded, jsonl,
        "client events changed; rerun with REALTIME_BLESS=1 and review"
    );
    let report = validate("client", &jsonl);
    eprintln!("client: {} events, {}", events.len(), report.trim());
}

#[test]
fn protocol_5_server_fixtures_pass_the_strict_validator() {
    for name in [
        "server-voice-turn.jsonl",
        "server-function-calls.jsonl",
        "server-barge-in.jsonl",
        "server-errors.jsonl",
    ] {
        let text = std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap();
        let report = validate("server", &text);
        eprintln!("{name}: {} events, {}", text.lines().count(), report.trim());
    }
}

#[test]
fn validator_still_rejects_beta_names() {
    // Guards the guard: if the validator stopped failing, the two tests above would prove nothing.
    let text = std::fs::read_to_string(format!("{FIXTURES}/server-unmodeled.jsonl")).unwrap();
    let (ok, stdout) = run_validator("server", &text);
    assert!(!ok, "{stdout}");
    assert!(stdout.contains("response.audio.delta"), "{stdout}");
}
