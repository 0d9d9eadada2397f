//! Round trip over the recorded fixtures in `fixtures/realtime/` (protocol §3 shapes).

use realtime::{ClientEvent, ServerEvent};
use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/realtime");

fn lines(name: &str) -> Vec<String> {
    let path = format!("{FIXTURES}/{name}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// Every key we emit exists in the original with the same value: serializing never invents or
/// alters a field (we may drop fields we do not model, e.g. `session.tracing`).
fn assert_subset(emitted: &Value, original: &Value, path: &str) {
    match (emitted, original) {
        (Value::Object(e), Value::Object(o)) => {
            for (k, v) in e {
                let ov = o
                    .get(k)
                    .unwrap_or_else(|| panic!("{path}.{k} emitted but not in the fixture"));
                assert_subset(v, ov, &format!("{path}.{k}"));
            }
        }
        (Value::Array(e), Value::Array(o)) => {
            assert_eq!(e.len(), o.len(), "{path}: array length");
            for (i, (a, b)) in e.iter().zip(o).enumerate() {
                assert_subset(a, b, &format!("{path}[{i}]"));
            }
        }
        (Value::Number(a), Value::Number(b)) => {
            assert_eq!(a.as_f64(), b.as_f64(), "{path}");
        }
        _ => assert_eq!(emitted, original, "{path}"),
    }
}

fn round_trip_server(name: &str) -> Vec<ServerEvent> {
    lines(name)
        .iter()
        .map(|line| {
            let ev = ServerEvent::parse(line).unwrap_or_else(|e| panic!("{name}: {e}\n{line}"));
            let json = ev.to_json().unwrap();
            let again = ServerEvent::parse(&json).unwrap();
            assert_eq!(ev, again, "{name}: typed round trip of {}", ev.type_name());
            let original: Value = serde_json::from_str(line).unwrap();
            let emitted: Value = serde_json::from_str(&json).unwrap();
            assert_subset(&emitted, &original, "$");
            assert_eq!(original["type"], emitted["type"]);
            ev
        })
        .collect()
}

#[test]
fn server_voice_turn_round_trips_and_is_fully_modeled() {
    let evs = round_trip_server("server-voice-turn.jsonl");
    assert_eq!(evs.len(), 24);
    assert!(evs
        .iter()
        .all(|e| !matches!(e, ServerEvent::Unknown { .. })));
}

#[test]
fn server_function_calls_round_trip() {
    let evs = round_trip_server("server-function-calls.jsonl");
    let ServerEvent::FunctionCallArgumentsDone(done) = &evs[5] else {
        panic!("line 6 is function_call_arguments.done");
    };
    assert_eq!(done.name.as_deref(), Some("lookup_account"));
    let ServerEvent::ResponseDone(rd) = &evs[10] else {
        panic!("line 11 is response.done");
    };
    let usage = rd.response.usage.as_ref().unwrap();
    assert_eq!(usage.total_tokens, Some(412));
    let cached = usage.input_token_details.as_ref().unwrap().cached_tokens;
    assert_eq!(cached, Some(256));
}

#[test]
fn server_barge_in_round_trips() {
    let evs = round_trip_server("server-barge-in.jsonl");
    assert!(evs
        .iter()
        .all(|e| !matches!(e, ServerEvent::Unknown { .. })));
}

#[test]
fn server_errors_keep_code_param_and_client_event_id() {
    let evs = round_trip_server("server-errors.jsonl");
    let ServerEvent::Error(first) = &evs[0] else {
        panic!("error event");
    };
    assert_eq!(
        first.error.code.as_deref(),
        Some(realtime::codes::ACTIVE_RESPONSE)
    );
    assert_eq!(first.error.event_id.as_deref(), Some("client_7"));
    let ServerEvent::Error(voice) = &evs[3] else {
        panic!("error event");
    };
    assert_eq!(
        voice.error.param.as_deref(),
        Some("session.audio.output.voice")
    );
}

#[test]
fn protocol_3_unmodeled_and_beta_types_are_unknown_values_kept_verbatim() {
    for line in lines("server-unmodeled.jsonl") {
        let ev = ServerEvent::parse(&line).unwrap();
        let ServerEvent::Unknown { type_, raw } = &ev else {
            panic!("{line} should be Unknown");
        };
        let original: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(raw, &original);
        assert_eq!(type_, original["type"].as_str().unwrap());
        assert_eq!(
            ev.to_json().unwrap(),
            serde_json::to_string(&original).unwrap()
        );
    }
}

#[test]
fn client_fixture_round_trips_exactly() {
    for line in lines("client-events.jsonl") {
        let ev = ClientEvent::parse(&line).unwrap_or_else(|e| panic!("{e}\n{line}"));
        assert!(!matches!(ev, ClientEvent::Unknown { .. }), "{line}");
        let original: Value = serde_json::from_str(&line).unwrap();
        let emitted: Value = serde_json::from_str(&ev.to_json().unwrap()).unwrap();
        assert_eq!(emitted, original, "client events round trip exactly");
    }
}

#[test]
fn malformed_json_is_an_error_value() {
    use realtime::ParseError;
    assert!(matches!(
        ServerEvent::parse("{\"type\":"),
        Err(ParseError::Json(_))
    ));
    assert!(matches!(
        ServerEvent::parse("[1,2]"),
        Err(ParseError::NotAnObject)
    ));
    assert!(matches!(
        ServerEvent::parse("{}"),
        Err(ParseError::MissingType)
    ));
    let bad = r#"{"type":"response.output_audio.delta","delta":5}"#;
    assert!(matches!(
        ServerEvent::parse(bad),
        Err(ParseError::Shape {
            type_: "response.output_audio.delta",
            ..
        })
    ));
}

/// The hot-path append text is exactly what the typed event serializes to, for every length
/// (base64 padding 0, 1 and 2) and every byte value, and it parses back to the same audio.
#[test]
fn append_json_is_the_typed_append_serialized() {
    for len in [0usize, 1, 2, 3, 31, 32, 33, 160, 320, 959, 960, 1920, 3840] {
        let audio: Vec<u8> = (0..len).map(|i| (i * 37 % 256) as u8).collect();
        let fast = ClientEvent::append_json(&audio);
        let typed = ClientEvent::append(&audio).to_json().unwrap();
        assert_eq!(fast, typed, "len {len}");
        let back = ClientEvent::parse(&fast).unwrap();
        assert_eq!(back, ClientEvent::append(&audio), "len {len}");
    }
}
