//! Realtime server events on arbitrary text: no panic in `ServerEvent::parse` or in the
//! tracker, whatever arrives in whatever order. The whole input is one event, then each line
//! is one (a JSONL seed is a conversation). What parses serializes, and parses again as the
//! same type. Lines that parse as client events are recorded too (`on_client_event`), and
//! after each line every query of the tracker runs.
#![no_main]
use libfuzzer_sys::fuzz_target;
use realtime::{ClientEvent, ServerEvent, SessionConfig, Tracker};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = SessionConfig::builder().build().unwrap();
    let mut tracker = Tracker::new(&config);
    let multi = text.contains('\n');
    let lines = text.lines().filter(move |_| multi);
    for line in std::iter::once(text).chain(lines) {
        match ServerEvent::parse(line) {
            Ok(ev) => {
                if let ServerEvent::OutputAudioDelta(d) = &ev {
                    let _ = d.decode_audio();
                }
                let json = match ev.to_json() {
                    Ok(j) => j,
                    Err(e) => panic!("a parsed {} does not serialize: {e}", ev.type_name()),
                };
                match ServerEvent::parse(&json) {
                    Ok(again) => assert_eq!(again.type_name(), ev.type_name(), "{json}"),
                    Err(e) => panic!(
                        "a serialized {} does not parse: {e}\n{json}",
                        ev.type_name()
                    ),
                }
                tracker.on_server_event(&ev);
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
        if let Ok(ev) = ClientEvent::parse(line) {
            let _ = ev.event_id();
            let _ = ev.to_json();
            tracker.on_client_event(&ev);
        }
        queries(&mut tracker);
    }
});

fn queries(t: &mut Tracker) {
    let _ = (
        t.may_create_response(),
        t.may_cancel_response(),
        t.may_commit(),
    );
    let _ = (
        t.input_ms_since_commit(),
        t.active_response_id(),
        t.assistant_audio_seen(),
    );
    let _ = t.unknown_events();
    for f in t.pending_function_calls() {
        let _ = f.is_ready();
    }
    let ids: Vec<String> = t.items().iter().map(|i| i.id().to_owned()).collect();
    for i in t.items() {
        let _ = (
            i.kind(),
            i.role(),
            i.status(),
            i.received_ms(),
            i.played_ms(),
        );
        let _ = (i.audio_done(), i.truncated_ms());
    }
    for id in &ids {
        let _ = t.item(id);
    }
    if let Some(playing) = t.playing_item().map(str::to_owned) {
        let received = t.item(&playing).map_or(0, |i| i.received_ms());
        for played in [0, received / 2, received, u64::MAX] {
            if let Some(ev) = t.truncate_for_barge_in(&playing, played) {
                let _ = ev.to_json();
            }
        }
        t.on_audio_played(&playing, received / 2);
        if let Some(ev) = t.truncate_for_barge_in(&playing, received / 2) {
            t.on_client_event(&ev);
        }
    }
}
