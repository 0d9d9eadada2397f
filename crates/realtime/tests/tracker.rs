//! Tracker rules and races (protocol §3, §4, §8), driven by the recorded fixtures.

use realtime::{
    AudioFormat, ClientEvent, ConversationMode, Item, ResponseCreateParams, Role, ServerEvent,
    SessionConfig, Tracker, TurnDetection,
};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/realtime");

fn fixture(name: &str) -> Vec<ServerEvent> {
    std::fs::read_to_string(format!("{FIXTURES}/{name}"))
        .unwrap()
        .lines()
        .map(|l| ServerEvent::parse(l).unwrap())
        .collect()
}

fn ev(json: &str) -> ServerEvent {
    ServerEvent::parse(json).unwrap()
}

fn pcm_tracker() -> Tracker {
    Tracker::new(&SessionConfig::builder().build().unwrap())
}

fn manual_tracker() -> Tracker {
    Tracker::new(
        &SessionConfig::builder()
            .turn_detection(None)
            .build()
            .unwrap(),
    )
}

fn created(id: &str) -> ServerEvent {
    ev(&format!(
        r#"{{"type":"response.created","response":{{"id":"{id}","status":"in_progress","output":[],"conversation_id":"conv_1"}}}}"#
    ))
}

fn done(id: &str, status: &str) -> ServerEvent {
    ev(&format!(
        r#"{{"type":"response.done","response":{{"id":"{id}","status":"{status}","output":[],"conversation_id":"conv_1"}}}}"#
    ))
}

fn delta(resp: &str, item: &str, bytes: usize) -> ServerEvent {
    let b64 = {
        let e = ClientEvent::append(&vec![0u8; bytes]);
        let ClientEvent::InputAudioBufferAppend(a) = e else {
            unreachable!()
        };
        a.audio
    };
    ev(&format!(
        r#"{{"type":"response.output_audio.delta","response_id":"{resp}","item_id":"{item}","output_index":0,"content_index":0,"delta":"{b64}"}}"#
    ))
}

fn assistant_item(resp: &str, item: &str) -> ServerEvent {
    ev(&format!(
        r#"{{"type":"response.output_item.added","response_id":"{resp}","output_index":0,"item":{{"id":"{item}","type":"message","role":"assistant","status":"in_progress","content":[]}}}}"#
    ))
}

fn truncate_ms(e: Option<ClientEvent>) -> Option<u64> {
    match e {
        Some(ClientEvent::ConversationItemTruncate(t)) => Some(t.audio_end_ms),
        Some(other) => panic!("not a truncate: {other:?}"),
        None => None,
    }
}

#[test]
fn voice_turn_fixture_g711_audio_counts_8_bytes_per_ms() {
    let mut t = pcm_tracker();
    for e in fixture("server-voice-turn.jsonl") {
        t.on_server_event(&e);
    }
    let a = t.item("item_A1").unwrap();
    assert_eq!(a.role(), Some(Role::Assistant));
    // Two deltas of 160 bytes of u-law, as session.updated switched to audio/pcmu (protocol §6).
    assert_eq!(a.received_ms(), 40);
    assert!(a.audio_done());
    assert_eq!(t.item("item_U1").unwrap().role(), Some(Role::User));
    assert!(t.may_create_response());
    assert!(!t.may_cancel_response());
    assert!(t.assistant_audio_seen());
    assert_eq!(t.unknown_events(), 0);
}

#[test]
fn protocol_8_no_response_create_while_one_is_active_or_requested() {
    let mut t = manual_tracker();
    assert!(t.may_create_response());
    t.on_client_event(&ClientEvent::create_response(None));
    assert!(!t.may_create_response(), "requested, not yet created");
    t.on_server_event(&created("resp_1"));
    assert!(!t.may_create_response());
    assert_eq!(t.active_response_id(), Some("resp_1"));
    t.on_server_event(&done("resp_1", "completed"));
    assert!(t.may_create_response());
}

#[test]
fn rejected_response_create_frees_the_slot() {
    let mut t = manual_tracker();
    t.on_client_event(&ClientEvent::create_response(None).with_event_id("client_7"));
    let err = &fixture("server-errors.jsonl")[0];
    t.on_server_event(err);
    assert!(t.may_create_response());
}

#[test]
fn vad_commit_means_the_server_will_answer_itself() {
    let mut t = pcm_tracker();
    t.on_server_event(&ev(
        r#"{"type":"input_audio_buffer.committed","item_id":"item_U1"}"#,
    ));
    assert!(
        !t.may_create_response(),
        "create_response=true: server is about to respond"
    );
    t.on_server_event(&created("resp_1"));
    t.on_server_event(&done("resp_1", "completed"));
    assert!(t.may_create_response());
}

#[test]
fn protocol_8_cancel_only_with_an_active_response() {
    let mut t = manual_tracker();
    assert!(
        !t.may_cancel_response(),
        "nothing active: response_cancel_not_active"
    );
    t.on_client_event(&ClientEvent::create_response(None));
    assert!(!t.may_cancel_response(), "requested but not created yet");
    t.on_server_event(&created("resp_1"));
    assert!(t.may_cancel_response());
    t.on_client_event(&ClientEvent::cancel_response());
    assert!(!t.may_cancel_response(), "one cancel per response");
    assert!(!t.may_create_response(), "still active until response.done");
    t.on_server_event(&done("resp_1", "cancelled"));
    assert!(!t.may_cancel_response());
    assert!(t.may_create_response());
}

#[test]
fn response_done_after_cancel_is_not_confused_with_a_newer_response() {
    let mut t = manual_tracker();
    t.on_client_event(&ClientEvent::create_response(None));
    t.on_server_event(&created("resp_1"));
    t.on_client_event(&ClientEvent::cancel_response());
    t.on_server_event(&done("resp_1", "cancelled"));
    t.on_client_event(&ClientEvent::create_response(None));
    t.on_server_event(&created("resp_2"));
    // A late duplicate done for the old response must not free resp_2's slot.
    t.on_server_event(&done("resp_1", "cancelled"));
    assert_eq!(t.active_response_id(), Some("resp_2"));
    assert!(!t.may_create_response());
}

#[test]
fn protocol_4_speech_started_during_streaming_server_cancels_so_we_do_not() {
    let mut t = pcm_tracker();
    let evs = fixture("server-barge-in.jsonl");
    // response.created, output_item.added, 5 deltas of 20 ms pcm16.
    for e in &evs[..7] {
        t.on_server_event(e);
    }
    assert!(t.may_cancel_response());
    assert_eq!(t.playing_item(), Some("item_B1"));
    t.on_audio_played("item_B1", 45);
    t.on_server_event(&evs[7]); // speech_started
    assert!(
        !t.may_cancel_response(),
        "interrupt_response=true: the server cancels; ours would race to response_cancel_not_active"
    );
    let trunc = t.truncate_for_barge_in("item_B1", 45);
    assert_eq!(truncate_ms(trunc.clone()), Some(45));
    t.on_client_event(&trunc.unwrap());
    // A trailing delta after speech_started still counts as received but is not truncated again.
    t.on_server_event(&evs[8]);
    assert_eq!(t.item("item_B1").unwrap().received_ms(), 120);
    assert_eq!(t.truncate_for_barge_in("item_B1", 100), None);
    t.on_server_event(&evs[9]); // response.done cancelled
    assert!(t.may_create_response());
    assert_eq!(t.playing_item(), None);
}

#[test]
fn speech_started_without_interrupt_response_leaves_cancel_to_us() {
    let cfg = SessionConfig::builder()
        .turn_detection(Some(TurnDetection::ServerVad {
            threshold: None,
            prefix_padding_ms: None,
            silence_duration_ms: None,
            idle_timeout_ms: None,
            create_response: Some(true),
            interrupt_response: Some(false),
        }))
        .build()
        .unwrap();
    let mut t = Tracker::new(&cfg);
    t.on_server_event(&created("resp_1"));
    t.on_server_event(&ev(
        r#"{"type":"input_audio_buffer.speech_started","audio_start_ms":10,"item_id":"item_U"}"#,
    ));
    assert!(t.may_cancel_response());
}

#[test]
fn protocol_6_truncate_never_past_audio_received() {
    let mut t = pcm_tracker();
    t.on_server_event(&created("resp_1"));
    t.on_server_event(&assistant_item("resp_1", "item_1"));
    t.on_server_event(&delta("resp_1", "item_1", 960 * 3)); // 60 ms
                                                            // The wall clock says 85 ms played (pipecat #2106): clamp to the 60 ms received.
    assert_eq!(truncate_ms(t.truncate_for_barge_in("item_1", 85)), Some(60));
    assert_eq!(truncate_ms(t.truncate_for_barge_in("item_1", 20)), Some(20));
    t.on_audio_played("item_1", 500);
    assert_eq!(t.item("item_1").unwrap().played_ms(), 60);
}

#[test]
fn protocol_8_no_truncate_before_first_audio_or_for_non_assistant_items() {
    let mut t = pcm_tracker();
    t.on_server_event(&created("resp_1"));
    t.on_server_event(&assistant_item("resp_1", "item_1"));
    assert_eq!(
        t.truncate_for_barge_in("item_1", 0),
        None,
        "unsupported_content_type"
    );
    assert_eq!(t.truncate_for_barge_in("item_unknown", 10), None);
    for e in fixture("server-voice-turn.jsonl") {
        t.on_server_event(&e);
    }
    assert_eq!(
        t.truncate_for_barge_in("item_U1", 10),
        None,
        "user items have no output audio"
    );
}

#[test]
fn fully_heard_item_needs_no_truncate() {
    let mut t = pcm_tracker();
    t.on_server_event(&created("resp_1"));
    t.on_server_event(&delta("resp_1", "item_1", 960));
    t.on_server_event(&ev(
        r#"{"type":"response.output_audio.done","response_id":"resp_1","item_id":"item_1","output_index":0,"content_index":0}"#,
    ));
    assert_eq!(t.truncate_for_barge_in("item_1", 20), None);
    assert_eq!(truncate_ms(t.truncate_for_barge_in("item_1", 10)), Some(10));
}

#[test]
fn response_format_overrides_session_format_for_ms() {
    let mut t = pcm_tracker();
    t.on_server_event(&ev(
        r#"{"type":"response.created","response":{"id":"r","output":[],"conversation_id":"c","audio":{"output":{"format":{"type":"audio/pcma"}}}}}"#,
    ));
    t.on_server_event(&delta("r", "i", 160));
    assert_eq!(t.item("i").unwrap().received_ms(), 20);
}

#[test]
fn protocol_3_commit_needs_100_ms_appended_since_last_commit() {
    let mut t = manual_tracker();
    assert!(!t.may_commit(), "input_audio_buffer_commit_empty");
    for _ in 0..4 {
        t.on_client_event(&ClientEvent::append(&[0u8; 960])); // 20 ms pcm16
    }
    assert_eq!(t.input_ms_since_commit(), 80);
    assert!(!t.may_commit());
    t.on_client_event(&ClientEvent::append(&[0u8; 960]));
    assert!(t.may_commit());
    t.on_client_event(&ClientEvent::commit());
    assert!(!t.may_commit());
    for _ in 0..5 {
        t.on_client_event(&ClientEvent::append(&[0u8; 960]));
    }
    t.on_client_event(&ClientEvent::clear());
    assert!(!t.may_commit());
}

#[test]
fn g711_input_commit_threshold_is_800_bytes() {
    let cfg = SessionConfig::builder()
        .input_format(AudioFormat::Pcmu)
        .turn_detection(None)
        .build()
        .unwrap();
    let mut t = Tracker::new(&cfg);
    t.on_client_event(&ClientEvent::append(&[0xffu8; 799]));
    assert!(!t.may_commit());
    t.on_client_event(&ClientEvent::append(&[0xffu8; 1]));
    assert!(t.may_commit());
}

#[test]
fn server_vad_commit_empties_the_buffer() {
    let mut t = pcm_tracker();
    for _ in 0..10 {
        t.on_client_event(&ClientEvent::append(&[0u8; 960]));
    }
    assert!(t.may_commit());
    t.on_server_event(&ev(
        r#"{"type":"input_audio_buffer.committed","item_id":"item_U1"}"#,
    ));
    assert!(!t.may_commit());
}

#[test]
fn two_function_calls_in_one_response_named_from_output_items() {
    let mut t = manual_tracker();
    t.on_client_event(&ClientEvent::create_response(None));
    let evs = fixture("server-function-calls.jsonl");
    for e in &evs[..2] {
        t.on_server_event(e);
    }
    // Name known from output_item.added before any arguments (DESIGN "Protocol facts").
    let first = &t.pending_function_calls()[0];
    assert_eq!(first.name.as_deref(), Some("lookup_account"));
    assert!(!first.is_ready());
    for e in &evs[2..] {
        t.on_server_event(e);
    }
    let calls = t.pending_function_calls();
    assert_eq!(calls.len(), 2);
    assert!(calls
        .iter()
        .all(|c| c.is_ready() && c.response_id == "resp_F1"));
    assert_eq!(calls[1].name.as_deref(), Some("handoff_to_sales"));
    assert_eq!(
        calls[0].arguments.as_deref(),
        Some(r#"{"account":"A-1001"}"#)
    );
    assert!(t.may_create_response(), "response.done arrived");
    t.on_client_event(&ClientEvent::create_item(Item::function_output(
        "call_F1", "{}",
    )));
    assert_eq!(t.pending_function_calls().len(), 1);
    t.on_client_event(&ClientEvent::create_item(Item::function_output(
        "call_F2", "{}",
    )));
    assert!(t.pending_function_calls().is_empty());
}

#[test]
fn arguments_done_without_name_uses_the_output_item_name() {
    let mut t = manual_tracker();
    t.on_server_event(&created("r"));
    t.on_server_event(&ev(
        r#"{"type":"response.function_call_arguments.done","response_id":"r","item_id":"i","output_index":0,"call_id":"c","arguments":"{}"}"#,
    ));
    assert!(
        !t.pending_function_calls()[0].is_ready(),
        "older schemas lack name"
    );
    t.on_server_event(&ev(
        r#"{"type":"response.output_item.done","response_id":"r","output_index":0,"item":{"id":"i","type":"function_call","status":"completed","name":"transfer","call_id":"c","arguments":"{}"}}"#,
    ));
    assert!(t.pending_function_calls()[0].is_ready());
}

#[test]
fn out_of_band_response_does_not_block_the_default_conversation() {
    let mut t = manual_tracker();
    t.on_client_event(&ClientEvent::create_response(Some(ResponseCreateParams {
        conversation: Some(ConversationMode::None),
        ..ResponseCreateParams::default()
    })));
    assert!(t.may_create_response());
    t.on_server_event(&ev(
        r#"{"type":"response.created","response":{"id":"resp_oob","output":[]}}"#,
    ));
    assert!(t.may_create_response());
    assert_eq!(t.active_response_id(), None);
}

#[test]
fn unknown_server_events_are_counted() {
    let mut t = pcm_tracker();
    for e in fixture("server-unmodeled.jsonl") {
        t.on_server_event(&e);
    }
    assert_eq!(t.unknown_events(), 5);
}

#[test]
fn commit_empty_error_resets_the_buffer_count() {
    let mut t = manual_tracker();
    for _ in 0..6 {
        t.on_client_event(&ClientEvent::append(&[0u8; 960]));
    }
    t.on_server_event(&fixture("server-errors.jsonl")[2]);
    assert!(!t.may_commit());
}
