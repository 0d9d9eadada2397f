//! The simulator over a real loopback WebSocket: the VAD turn, GA errors, cancel, and every
//! server event it sent through openai-python's strict validator (issue 5, Conformance).

mod common;

use base64::Engine;
use common::{assert_in_order, loud_noise, types, Client, STEP};
use realtime::{ClientEvent, SessionConfig, TurnDetection, Voice};
use realtime_sim::Simulator;

#[tokio::test]
async fn vad_turn_streams_an_automatic_response_in_ga_order() {
    let sim = Simulator::bind("127.0.0.1:0").await.unwrap();
    let mut c = Client::connect(&sim).await;
    let config = SessionConfig::builder()
        .turn_detection(Some(TurnDetection::server_vad()))
        .build()
        .unwrap();
    c.send(config.update_event()).await;
    let updated = c.until("session.updated").await;
    let session = &updated[updated.len() - 1]["session"];
    assert_eq!(session["audio"]["input"]["format"]["rate"], 24000);
    assert_eq!(
        session["audio"]["input"]["turn_detection"]["silence_duration_ms"],
        500
    );

    // 1 s of loud noise then 1 s of silence, in 50 ms appends (1200 samples).
    let noise = loud_noise(24_000);
    for chunk in noise.chunks(2_400) {
        c.send(ClientEvent::append(chunk)).await;
    }
    for _ in 0..20 {
        c.send(ClientEvent::append(&[0u8; 2_400])).await;
    }
    let events = c.until("response.done").await;
    assert_in_order(
        &events,
        &[
            "input_audio_buffer.speech_started",
            "input_audio_buffer.speech_stopped",
            "input_audio_buffer.committed",
            "conversation.item.added",
            "conversation.item.done",
            "response.created",
            "response.output_item.added",
            "response.output_audio.delta",
            "response.output_audio_transcript.delta",
            "response.output_audio_transcript.done",
            "response.output_item.done",
            "response.done",
        ],
    );
    let started = events
        .iter()
        .find(|e| e["type"] == "input_audio_buffer.speech_started")
        .unwrap();
    assert_eq!(started["audio_start_ms"], 0);
    let stopped = events
        .iter()
        .find(|e| e["type"] == "input_audio_buffer.speech_stopped")
        .unwrap();
    let end = stopped["audio_end_ms"].as_u64().unwrap();
    assert!((1_400..=1_600).contains(&end), "audio_end_ms {end}");
    let user = events
        .iter()
        .find(|e| e["type"] == "conversation.item.added")
        .unwrap();
    assert_eq!(user["item"]["role"], "user");
    assert_eq!(user["item"]["id"], started["item_id"]);
    assert!(user["item"]["content"][0]["transcript"].is_string());

    let audio: Vec<u8> = events
        .iter()
        .filter(|e| e["type"] == "response.output_audio.delta")
        .flat_map(|e| {
            base64::engine::general_purpose::STANDARD
                .decode(e["delta"].as_str().unwrap())
                .unwrap()
        })
        .collect();
    assert_eq!(audio.len(), 48_000, "1 s of pcm16 at 24 kHz");
    let peak = audio
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]).unsigned_abs())
        .max()
        .unwrap();
    assert!(peak > 7_000, "tone peak {peak}");
    let transcript: String = events
        .iter()
        .filter(|e| e["type"] == "response.output_audio_transcript.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    let done_t = events
        .iter()
        .find(|e| e["type"] == "response.output_audio_transcript.done")
        .unwrap();
    assert_eq!(done_t["transcript"], transcript.as_str());
    let done = &events[events.len() - 1]["response"];
    assert_eq!(done["status"], "completed");
    assert!(done["usage"]["total_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        done["output"][0]["content"][0]["transcript"],
        transcript.as_str()
    );
    c.validate();
}

#[tokio::test]
async fn voice_is_fixed_after_assistant_audio_and_pcm_rate_must_be_24000() {
    let sim = Simulator::bind("127.0.0.1:0").await.unwrap();
    let mut c = Client::connect(&sim).await;
    // Before any audio the voice may change.
    let cedar = SessionConfig::builder()
        .voice(Voice::named("cedar"))
        .build()
        .unwrap();
    c.send(cedar.update_event()).await;
    let ev = c.until("session.updated").await;
    assert_eq!(
        ev[ev.len() - 1]["session"]["audio"]["output"]["voice"],
        "cedar"
    );

    c.send_raw(
        r#"{"type":"session.update","event_id":"evt_rate","session":{"type":"realtime","audio":{"input":{"format":{"type":"audio/pcm","rate":16000}}}}}"#,
    )
    .await;
    let err = c.next().await;
    assert_eq!(err["type"], "error", "{err}");
    assert_eq!(err["error"]["code"], "invalid_value");
    assert_eq!(err["error"]["type"], "invalid_request_error");
    assert_eq!(err["error"]["param"], "session.audio.input.format.rate");
    assert_eq!(err["error"]["event_id"], "evt_rate");

    c.send(ClientEvent::create_response(None)).await;
    c.until("response.done").await;

    let marin = SessionConfig::builder()
        .voice(Voice::named("marin"))
        .build()
        .unwrap();
    c.send(marin.update_event().with_event_id("evt_voice"))
        .await;
    let err = c.next().await;
    assert_eq!(err["type"], "error", "{err}");
    assert_eq!(err["error"]["code"], "cannot_update_voice");
    assert_eq!(err["error"]["event_id"], "evt_voice");

    // The same voice is still accepted, and the rejected update changed nothing.
    c.send(cedar.update_event()).await;
    let ev = c.next().await;
    assert_eq!(ev["type"], "session.updated", "{ev}");
    assert_eq!(ev["session"]["audio"]["output"]["voice"], "cedar");
    assert_eq!(ev["session"]["audio"]["input"]["format"]["rate"], 24000);
    c.validate();
}

#[tokio::test]
async fn malformed_and_unknown_events_get_errors_and_the_socket_survives() {
    let sim = Simulator::bind("127.0.0.1:0").await.unwrap();
    let mut c = Client::connect(&sim).await;
    c.send_raw("{not json").await;
    let err = c.next().await;
    assert_eq!(err["type"], "error", "{err}");
    assert_eq!(err["error"]["type"], "invalid_request_error");

    c.send_raw(r#"{"event_id":"evt_1"}"#).await;
    let err = c.next().await;
    assert_eq!(err["error"]["code"], "invalid_event", "{err}");
    assert_eq!(err["error"]["event_id"], "evt_1");

    c.send_raw(r#"{"type":"response.audio.delta","event_id":"evt_2"}"#)
        .await;
    let err = c.next().await;
    assert_eq!(err["error"]["code"], "invalid_value", "{err}");
    assert_eq!(err["error"]["param"], "type");

    // Still serving: a response can be created and cancelled.
    c.send(ClientEvent::create_response(None)).await;
    c.until("response.created").await;
    c.send(ClientEvent::create_response(None).with_event_id("evt_twice"))
        .await;
    let ev = c.until("error").await;
    let err = &ev[ev.len() - 1];
    assert_eq!(
        err["error"]["code"], "conversation_already_has_active_response",
        "{err}"
    );
    assert_eq!(err["error"]["event_id"], "evt_twice");
    c.send(ClientEvent::cancel_response()).await;
    let ev = c.until("response.done").await;
    let done = &ev[ev.len() - 1]["response"];
    assert_eq!(done["status"], "cancelled", "{done}");
    assert_eq!(done["status_details"]["reason"], "client_cancelled");
    c.send(ClientEvent::cancel_response()).await;
    let err = c.next().await;
    assert_eq!(err["error"]["code"], "response_cancel_not_active", "{err}");
    c.validate();
}

#[tokio::test]
async fn shutdown_stops_accepting() {
    let sim = Simulator::bind("127.0.0.1:0").await.unwrap();
    let url = sim.url();
    let c = Client::connect(&sim).await;
    drop(c);
    sim.shutdown().await;
    let res = tokio::time::timeout(STEP, tokio_tungstenite::connect_async(url))
        .await
        .unwrap();
    assert!(res.is_err());
}

#[tokio::test]
async fn speech_during_a_response_cancels_it_as_turn_detected() {
    let sim = Simulator::bind("127.0.0.1:0").await.unwrap();
    let mut c = Client::connect(&sim).await;
    c.send(ClientEvent::create_response(None)).await;
    c.until("response.created").await;
    let noise = loud_noise(4_800);
    for chunk in noise.chunks(2_400) {
        c.send(ClientEvent::append(chunk)).await;
    }
    let ev = c.until("response.done").await;
    assert_in_order(&ev, &["input_audio_buffer.speech_started", "response.done"]);
    let done = &ev[ev.len() - 1]["response"];
    assert_eq!(done["status"], "cancelled", "{done}");
    assert_eq!(done["status_details"]["reason"], "turn_detected");
    c.validate();
}

#[tokio::test]
async fn manual_commit_with_g711_needs_100_ms_and_answers_in_the_output_format() {
    let sim = Simulator::bind("127.0.0.1:0").await.unwrap();
    let mut c = Client::connect(&sim).await;
    let config = SessionConfig::builder()
        .turn_detection(None)
        .input_format(realtime::AudioFormat::Pcmu)
        .output_format(realtime::AudioFormat::Pcma)
        .build()
        .unwrap();
    c.send(config.update_event()).await;
    let ev = c.next().await;
    assert_eq!(ev["type"], "session.updated", "{ev}");
    assert!(ev["session"]["audio"]["input"]["turn_detection"].is_null());
    assert_eq!(
        ev["session"]["audio"]["input"]["format"]["type"],
        "audio/pcmu"
    );

    c.send(ClientEvent::append(&[0x10u8; 400])).await; // 50 ms
    c.send(ClientEvent::commit().with_event_id("evt_c")).await;
    let err = c.next().await;
    assert_eq!(
        err["error"]["code"], "input_audio_buffer_commit_empty",
        "{err}"
    );
    assert_eq!(err["error"]["event_id"], "evt_c");

    c.send(ClientEvent::append(&[0x10u8; 800])).await;
    c.send(ClientEvent::commit()).await;
    let ev = c.until("conversation.item.done").await;
    assert_eq!(
        types(&ev),
        [
            "input_audio_buffer.committed",
            "conversation.item.added",
            "conversation.item.done"
        ]
    );
    c.send(ClientEvent::create_response(None)).await;
    let ev = c.until("response.done").await;
    let bytes: usize = ev
        .iter()
        .filter(|e| e["type"] == "response.output_audio.delta")
        .map(|e| {
            base64::engine::general_purpose::STANDARD
                .decode(e["delta"].as_str().unwrap())
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(bytes, 8_000, "1 s of G.711 at 8 kHz");
    assert!(!types(&ev).contains(&"input_audio_buffer.speech_started"));
    c.validate();
}
