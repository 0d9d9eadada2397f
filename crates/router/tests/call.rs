//! The per-call router, deterministically: every handoff transition, policy and race, with a
//! manual clock (plain `Instant`s moved by hand; nothing sleeps).

use std::sync::Arc;
use std::time::{Duration, Instant};

use realtime::{AudioFormat, ClientEvent, ConversationMode, Item, SessionConfig, Voice};
use router::{
    preservation_score, Action, AgentsFile, CallRouter, Envelope, Role, SlotTable, Slots,
    NARRATION_PURPOSE, QUEUE_CHECK, QUEUE_UPDATE,
};
use serde_json::{json, Value};

fn demo() -> Arc<AgentsFile> {
    Arc::new(AgentsFile::embedded_default().unwrap())
}

/// What every agent shares: G.711 pass-through formats and a voice, to prove handoffs keep them.
fn base() -> SessionConfig {
    SessionConfig::builder()
        .input_format(AudioFormat::Pcmu)
        .output_format(AudioFormat::Pcmu)
        .voice(Voice::named("marin"))
        .build()
        .unwrap()
}

fn router(file: Arc<AgentsFile>, slots: Arc<SlotTable>) -> CallRouter {
    CallRouter::new(file, base(), slots, None)
}

fn json_of(ev: &ClientEvent) -> Value {
    serde_json::from_str(&ev.to_json().unwrap()).unwrap()
}

fn sent(actions: &[Action]) -> Vec<Value> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(ev) => Some(json_of(ev)),
            _ => None,
        })
        .collect()
}

fn responds(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::Respond(_)))
        .count()
}

const BILLING: &str = r#"{"summary":"Charged $49 on January 15, does not know why.","intent":"billing_question","handoff_reason":"billing","entities":{"amount":"$49.00","date":"January 15"}}"#;

#[test]
fn start_sends_the_entry_agents_full_config() {
    let slots = Arc::new(SlotTable::new(&demo()));
    let mut r = router(demo(), slots.clone());
    let a = r.start();
    let s = &sent(&a)[0];
    assert_eq!(s["type"], "session.update");
    assert!(s["session"]["instructions"]
        .as_str()
        .unwrap()
        .contains("router agent"));
    let tools: Vec<&str> = s["session"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(tools, ["handoff_to_support", "handoff_to_sales"]);
    assert_eq!(
        s["session"]["audio"]["input"]["format"]["type"],
        "audio/pcmu"
    );
    assert_eq!(slots.in_use("router"), 1);
}

#[test]
fn same_voice_handoff_is_update_then_output_then_response_with_formats_and_voice_kept() {
    let file = demo();
    let slots = Arc::new(SlotTable::new(&file));
    let mut r = router(file, slots.clone());
    r.start();
    r.on_transcript(
        Role::User,
        "I was charged forty-nine dollars on January 15 and I don't know why.",
    );
    let t0 = Instant::now();
    let a = r.on_function_call(t0, "resp_1", "call_1", "handoff_to_support", BILLING, true);
    let s = sent(&a);
    assert_eq!(s[0]["type"], "session.update");
    let session = &s[0]["session"];
    let instructions = session["instructions"].as_str().unwrap();
    assert!(instructions.contains("support agent"), "{instructions}");
    assert!(instructions.contains("$49.00") && instructions.contains("billing_question"));
    assert_eq!(
        session["audio"]["input"]["format"]["type"], "audio/pcmu",
        "formats kept"
    );
    assert_eq!(session["audio"]["output"]["format"]["type"], "audio/pcmu");
    assert_eq!(
        session["audio"]["output"]["voice"], "marin",
        "voice unchanged in mode same"
    );
    let names: Vec<&str> = session["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["check_billing", "handoff_to_sales"]);
    assert_eq!(s[1]["type"], "conversation.item.create");
    assert_eq!(s[1]["item"]["type"], "function_call_output");
    assert_eq!(s[1]["item"]["call_id"], "call_1");
    let out: Value = serde_json::from_str(s[1]["item"]["output"].as_str().unwrap()).unwrap();
    assert_eq!(out["assistant"], "support");
    // The order of actions is the wire order: update, output, then the response.
    let pos = |f: &dyn Fn(&Action) -> bool| a.iter().position(f).unwrap();
    let resp = pos(&|x| matches!(x, Action::Respond(Some(_))));
    assert!(resp > pos(&|x| matches!(x, Action::Send(_))));
    if let Action::Respond(Some(p)) = &a[resp] {
        let i = p.instructions.as_deref().unwrap();
        assert!(
            i.contains("taken over this call from the router agent"),
            "{i}"
        );
        assert!(i.contains("$49.00"));
    }
    assert!(a.contains(&Action::WatchFirstAudio));
    let Some(Action::Handoff(h)) = a.iter().find(|x| matches!(x, Action::Handoff(_))) else {
        panic!("no handoff event")
    };
    assert_eq!(
        (h.from.as_str(), h.to.as_str(), h.mode),
        ("router", "support", "same")
    );
    assert_eq!(
        h.envelope.transcript.len(),
        1,
        "the bridge's transcript travels"
    );
    assert_eq!(r.current_agent(), "support");
    assert_eq!((slots.in_use("router"), slots.in_use("support")), (0, 1));
    // Metrics: first audio 800 ms later, then the first turn mentions 2 of 3 items.
    r.on_first_delta(t0 + Duration::from_millis(120));
    r.on_first_audio(t0 + Duration::from_millis(800));
    r.on_transcript(
        Role::Assistant,
        "I see the $49 billing charge on your Standard plan.",
    );
    let summary = r.finish();
    assert_eq!(summary.handoff_ms, [800]);
    assert_eq!(summary.handoff_ms_each, [Some(800)]);
    assert_eq!(summary.first_delta_ms, [Some(120)]);
    assert_eq!(summary.context_preservation.len(), 1);
    assert!((summary.context_preservation[0] - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(summary.agent_path, ["router", "support"]);
    assert_eq!(slots.in_use("support"), 0, "finish gives the slot back");
}

#[test]
fn a_thin_or_broken_tool_call_loses_nothing_the_bridge_holds() {
    let file = demo();
    let slots = Arc::new(SlotTable::new(&file));
    let mut r = router(file, slots);
    r.on_transcript(Role::User, "My bill shows $49 on January 15.");
    r.on_transcript(Role::Assistant, "Let me connect you.");
    for args in ["{}", "not json at all", r#"{"summary": 42}"#] {
        let mut r2 = CallRouter::new(demo(), base(), Arc::new(SlotTable::new(&demo())), None);
        r2.on_transcript(Role::User, "My bill shows $49 on January 15.");
        let a = r2.on_function_call(Instant::now(), "r", "c", "handoff_to_support", args, true);
        let Some(Action::Handoff(h)) = a.iter().find(|x| matches!(x, Action::Handoff(_))) else {
            panic!("{args}: no handoff")
        };
        assert_eq!(
            h.envelope.transcript[0].text, "My bill shows $49 on January 15.",
            "{args}"
        );
    }
    // Tool results become customer state that later handoffs carry.
    let a = r.on_function_call(
        Instant::now(),
        "r0",
        "t1",
        "handoff_to_support",
        BILLING,
        true,
    );
    assert!(!a.is_empty());
    let a = r.on_function_call(
        Instant::now(),
        "r1",
        "t2",
        "check_billing",
        r#"{"customer_id":"C-1042"}"#,
        false,
    );
    assert!(matches!(&a[0], Action::RunTool { tool, .. } if tool.name == "check_billing"));
    r.on_tool_result("t2", Ok(json!({"plan": "Standard", "status": "paid"})));
    let a = r.on_function_call(Instant::now(), "r2", "t3", "handoff_to_sales", "{}", true);
    let Some(Action::Handoff(h)) = a.iter().find(|x| matches!(x, Action::Handoff(_))) else {
        panic!("no handoff to sales")
    };
    assert_eq!(h.envelope.customer_state["plan"], "Standard");
    assert_eq!(
        h.envelope.intent.as_deref(),
        Some("billing_question"),
        "kept from the first handoff"
    );
    assert_eq!(h.envelope.entities["amount"], "$49.00");
}

#[test]
fn no_narration_spoken_means_the_bridge_makes_the_agent_say_it_before_the_switch() {
    let file = demo();
    let mut r = router(file.clone(), Arc::new(SlotTable::new(&file)));
    let t0 = Instant::now();
    let a = r.on_function_call(t0, "resp_1", "call_1", "handoff_to_support", BILLING, false);
    assert_eq!(a.len(), 1);
    let Action::Respond(Some(p)) = &a[0] else {
        panic!("{a:?}")
    };
    assert_eq!(p.conversation, Some(ConversationMode::None), "out of band");
    assert!(p
        .instructions
        .as_deref()
        .unwrap()
        .contains("billing support specialist"));
    assert_eq!(
        r.current_agent(),
        "router",
        "no switch before the narration was said"
    );
    // The handoff response itself ends first: still waiting.
    assert!(r.on_response_done(t0, None).is_empty());
    let a = r.on_response_done(t0 + Duration::from_secs(3), Some(NARRATION_PURPOSE));
    assert_eq!(sent(&a)[0]["type"], "session.update");
    assert_eq!(r.current_agent(), "support");
}

#[test]
fn a_second_handoff_in_the_same_response_and_unallowed_targets_are_refused() {
    let file = demo();
    let mut r = router(file.clone(), Arc::new(SlotTable::new(&file)));
    let t = Instant::now();
    r.on_function_call(t, "resp_1", "c1", "handoff_to_support", BILLING, true);
    let a = r.on_function_call(t, "resp_1", "c2", "handoff_to_sales", BILLING, true);
    assert_eq!(sent(&a)[0]["item"]["call_id"], "c2");
    assert!(sent(&a)[0]["item"]["output"]
        .as_str()
        .unwrap()
        .contains("already in progress"));
    assert_eq!(responds(&a), 0, "the first handoff's response stands");
    assert_eq!(r.current_agent(), "support");
    // Support may not hand back to the router, nor to itself.
    for bad in [
        "handoff_to_router",
        "handoff_to_support",
        "handoff_to_nobody",
    ] {
        let a = r.on_function_call(t, "resp_2", "c3", bad, BILLING, true);
        let out = sent(&a)[0]["item"]["output"].as_str().unwrap().to_string();
        assert!(out.contains("not allowed"), "{bad}: {out}");
        assert_eq!(responds(&a), 1, "{bad}: the agent carries on");
        assert!(a
            .iter()
            .any(|x| matches!(x, Action::HandoffFailed { policy, .. } if policy == "rejected")));
        assert_eq!(r.current_agent(), "support");
    }
}

fn file_with_policy(policy: &str) -> Arc<AgentsFile> {
    let text = format!(
        r#"entry = "a"
[[agent]]
name = "a"
instructions = "You are agent a."
handoffs = ["b", "c"]
[[agent]]
name = "b"
instructions = "You are agent b."
capacity = 1
on_unavailable = "{policy}"
[[agent]]
name = "c"
instructions = "You are agent c."
"#
    );
    Arc::new(AgentsFile::parse(&text, "t.toml").unwrap())
}

#[test]
fn target_at_capacity_return_policy_gives_the_origin_agent_the_reason_and_alternatives() {
    let file = file_with_policy("return");
    let slots = Arc::new(SlotTable::new(&file));
    assert!(slots.try_take("b"), "another call holds b's only slot");
    let mut r = router(file, slots);
    let a = r.on_function_call(Instant::now(), "r", "c1", "handoff_to_b", "{}", true);
    let out: Value = serde_json::from_str(sent(&a)[0]["item"]["output"].as_str().unwrap()).unwrap();
    assert_eq!(out["status"], "unavailable");
    assert_eq!(out["alternatives"], json!(["c"]));
    assert_eq!(responds(&a), 1);
    assert_eq!(r.current_agent(), "a");
    assert_eq!(r.finish().failures, 1);
}

#[test]
fn queue_policy_tells_position_updates_periodically_and_connects_when_a_slot_frees() {
    let file = file_with_policy("queue");
    let slots = Arc::new(SlotTable::new(&file));
    assert!(slots.try_take("b"));
    let mut r = router(file, slots.clone());
    let t0 = Instant::now();
    let a = r.on_function_call(
        t0,
        "r",
        "c1",
        "handoff_to_b",
        r#"{"summary":"wants b"}"#,
        true,
    );
    let out: Value = serde_json::from_str(sent(&a)[0]["item"]["output"].as_str().unwrap()).unwrap();
    assert_eq!(
        (out["status"].as_str(), out["position"].as_u64()),
        (Some("queued"), Some(1))
    );
    assert_eq!(slots.waiting("b"), 1);
    assert_eq!(r.next_deadline(), Some(t0 + QUEUE_CHECK));
    assert!(
        r.poll(t0 + Duration::from_secs(1)).is_empty(),
        "nothing before the deadline"
    );
    assert!(
        r.poll(t0 + QUEUE_CHECK).is_empty(),
        "still full: no switch, no update yet"
    );
    let a = r.poll(t0 + QUEUE_UPDATE);
    let Some(Action::Respond(Some(p))) = a.first() else {
        panic!("{a:?}")
    };
    assert!(p.instructions.as_deref().unwrap().contains("position 1"));
    assert_eq!(r.current_agent(), "a");
    slots.give_back("b");
    let t1 = t0 + QUEUE_UPDATE + QUEUE_CHECK;
    let a = r.poll(t1);
    let s = sent(&a);
    assert_eq!(s[0]["type"], "session.update");
    assert_eq!(
        s[1]["item"]["role"], "system",
        "no call id left to answer: a note instead"
    );
    assert!(a.iter().any(|x| matches!(x, Action::Handoff(h) if h.policy == Some("queue") && h.switched == t1 && h.triggered == t0)));
    assert_eq!(r.current_agent(), "b");
    assert_eq!((slots.waiting("b"), slots.in_use("b")), (0, 1));
    assert_eq!(r.next_deadline(), None);
}

#[test]
fn the_caller_hanging_up_while_queued_leaves_no_slot_or_queue_entry_behind() {
    let file = file_with_policy("queue");
    let slots = Arc::new(SlotTable::new(&file));
    assert!(slots.try_take("b"));
    let mut r = router(file, slots.clone());
    r.on_function_call(Instant::now(), "r", "c1", "handoff_to_b", "{}", true);
    assert_eq!((slots.waiting("b"), slots.in_use("a")), (1, 1));
    r.finish();
    assert_eq!(
        (slots.waiting("b"), slots.in_use("a"), slots.in_use("b")),
        (0, 0, 1)
    );
}

#[test]
fn callback_policy_stores_the_request_with_the_envelope() {
    let file = file_with_policy("callback");
    let slots = Arc::new(SlotTable::new(&file));
    assert!(slots.try_take("b"));
    let mut r = router(file, slots);
    r.on_transcript(Role::User, "Please call me back about my order.");
    let a = r.on_function_call(Instant::now(), "r", "c1", "handoff_to_b", "{}", true);
    let Some(Action::ScheduleCallback { agent, envelope }) = a
        .iter()
        .find(|x| matches!(x, Action::ScheduleCallback { .. }))
    else {
        panic!("{a:?}")
    };
    assert_eq!(agent, "b");
    assert_eq!(
        envelope.transcript[0].text,
        "Please call me back about my order."
    );
    assert!(sent(&a)[0]["item"]["output"]
        .as_str()
        .unwrap()
        .contains("callback_scheduled"));
}

#[test]
fn tools_run_through_the_bridge_and_errors_go_back_to_the_model() {
    let file = demo();
    let mut r = router(file.clone(), Arc::new(SlotTable::new(&file)));
    let t = Instant::now();
    let a = r.on_function_call(t, "r", "c1", "check_billing", "{}", false);
    assert!(
        sent(&a)[0]["item"]["output"]
            .as_str()
            .unwrap()
            .contains("unknown tool"),
        "router has no check_billing"
    );
    assert_eq!(responds(&a), 1);
    r.on_function_call(t, "r1", "h1", "handoff_to_support", BILLING, true);
    let a = r.on_function_call(
        t,
        "r2",
        "c2",
        "check_billing",
        r#"{"customer_id":"C-1042"}"#,
        false,
    );
    assert!(matches!(&a[0], Action::RunTool { call_id, .. } if call_id == "c2"));
    let a = r.on_tool_result("c2", Err("backend timed out".into()));
    let out: Value = serde_json::from_str(sent(&a)[0]["item"]["output"].as_str().unwrap()).unwrap();
    assert_eq!(out, json!({"error": "backend timed out"}));
    assert_eq!(responds(&a), 1);
}

#[test]
fn conversion_counts_an_outcome_tool_after_a_handoff_and_csat_comes_from_the_survey_agent() {
    let file = demo();
    let mut r = router(file.clone(), Arc::new(SlotTable::new(&file)));
    let t = Instant::now();
    r.on_dtmf('5');
    r.on_function_call(t, "r1", "h1", "handoff_to_support", BILLING, true);
    r.on_dtmf('4');
    r.on_function_call(t, "r2", "h2", "handoff_to_sales", "{}", true);
    let args = r#"{"customer_id":"C-1042","to_plan":"Pro"}"#;
    r.on_function_call(t, "r3", "u1", "record_upgrade", args, false);
    r.on_tool_result("u1", Ok(json!({"confirmation": "UPG-1"})));
    r.on_dtmf('9');
    r.on_dtmf('3');
    let s = r.finish();
    assert!(s.converted);
    assert_eq!(
        s.csat,
        Some(3),
        "only digits 1-5, only while the survey agent (sales) has the caller"
    );
    assert_eq!(s.agent_path, ["router", "support", "sales"]);
    assert_eq!(s.handoffs.len(), 2);
}

#[test]
fn a_returning_callers_note_reaches_the_entry_agent_only() {
    let file = demo();
    let mut r = CallRouter::new(
        file.clone(),
        base(),
        Arc::new(SlotTable::new(&file)),
        Some("Returning caller: last time billing_question, fixed.".into()),
    );
    let s = &sent(&r.start())[0];
    assert!(s["session"]["instructions"]
        .as_str()
        .unwrap()
        .contains("Returning caller"));
    let a = r.on_function_call(
        Instant::now(),
        "r",
        "h",
        "handoff_to_support",
        BILLING,
        true,
    );
    assert!(!sent(&a)[0]["session"]["instructions"]
        .as_str()
        .unwrap()
        .contains("Returning caller"));
    // And a reconnect gets the current agent's config.
    assert!(r.session_config().instructions().contains("support agent"));
}

#[test]
fn preservation_score_matches_amounts_dates_and_intent_words() {
    let mut env = Envelope::default();
    env.entities.insert("amount".into(), "$49.00".into());
    env.entities.insert("date".into(), "January 15".into());
    env.intent = Some("billing_question".into());
    assert_eq!(
        preservation_score(
            &env,
            "I see the $49 charge from January 15 on your bill, the billing renewal."
        ),
        1.0
    );
    assert_eq!(preservation_score(&env, "How can I help you today?"), 0.0);
    assert!((preservation_score(&env, "That 49 dollar charge...") - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(preservation_score(&Envelope::default(), "anything"), 1.0);
    let _ = Item::user_text("unused");
}

fn demo_in(mode: &str) -> Arc<AgentsFile> {
    let text = router::EMBEDDED_DEFAULT
        .replace("voice_mode = \"same\"", &format!("voice_mode = \"{mode}\""));
    assert!(text.contains(&format!("voice_mode = \"{mode}\"")));
    Arc::new(AgentsFile::parse(&text, "agents.toml").unwrap())
}

fn opened(a: &[Action]) -> (Value, usize) {
    let Some(Action::OpenSession { config, items }) =
        a.iter().find(|x| matches!(x, Action::OpenSession { .. }))
    else {
        panic!("no OpenSession in {a:?}")
    };
    (json_of(&config.update_event()), items.len())
}

#[test]
fn hybrid_opens_a_second_session_in_the_new_voice_and_switches_when_it_is_ready() {
    let file = demo_in("hybrid");
    let slots = Arc::new(SlotTable::new(&file));
    let mut r = router(file, slots.clone());
    r.on_transcript(Role::User, "I was charged $49 on January 15.");
    r.on_transcript(Role::Assistant, "I'll connect you to billing support.");
    let t0 = Instant::now();
    let a = r.on_function_call(t0, "resp_1", "call_1", "handoff_to_support", BILLING, true);
    assert_eq!(a.len(), 1, "only the new session is opened: {a:?}");
    let (update, items) = opened(&a);
    assert_eq!(
        update["session"]["audio"]["output"]["voice"], "sage",
        "support's own voice"
    );
    assert_eq!(
        update["session"]["audio"]["input"]["format"]["type"], "audio/pcmu",
        "formats kept"
    );
    assert!(update["session"]["instructions"]
        .as_str()
        .unwrap()
        .contains("$49.00"));
    assert_eq!(items, 3, "a note plus the two turns");
    assert_eq!(
        r.current_agent(),
        "router",
        "the old session keeps the caller until ready"
    );
    assert_eq!(
        slots.in_use("support"),
        1,
        "the target's slot is held while opening"
    );
    let t1 = t0 + Duration::from_millis(150);
    let a = r.on_session_ready(t1);
    assert_eq!(a[0], Action::SwitchSession);
    assert!(
        matches!(&a[1], Action::Respond(Some(p)) if p.instructions.as_deref().unwrap().contains("taken over this call from the router agent"))
    );
    assert!(a.contains(&Action::WatchFirstAudio));
    assert!(a
        .iter()
        .any(|x| matches!(x, Action::Handoff(h) if h.mode == "hybrid" && h.switched == t1)));
    assert!(sent(&a).is_empty(), "no session.update on the old session");
    assert_eq!(r.current_agent(), "support");
    assert_eq!((slots.in_use("router"), slots.in_use("support")), (0, 1));
    // A reconnect of the new session keeps the new voice.
    assert_eq!(
        json_of(&r.session_config().update_event())["session"]["audio"]["output"]["voice"],
        "sage"
    );
}

#[test]
fn hybrid_silent_handoff_narrates_in_the_old_voice_while_the_new_session_warms_up() {
    for ready_first in [true, false] {
        let file = demo_in("hybrid");
        let mut r = router(file.clone(), Arc::new(SlotTable::new(&file)));
        let t = Instant::now();
        let a = r.on_function_call(t, "resp_1", "call_1", "handoff_to_support", BILLING, false);
        opened(&a);
        assert!(a.iter().any(|x| matches!(x, Action::Respond(Some(p)) if p.conversation == Some(ConversationMode::None))), "narration out of band on the old session");
        if ready_first {
            assert!(
                r.on_session_ready(t).is_empty(),
                "the narration is still playing"
            );
            assert_eq!(r.current_agent(), "router");
            let a = r.on_response_done(t, Some(NARRATION_PURPOSE));
            assert_eq!(a[0], Action::SwitchSession);
        } else {
            assert!(
                r.on_response_done(t, Some(NARRATION_PURPOSE)).is_empty(),
                "the session is not ready"
            );
            let a = r.on_session_ready(t);
            assert_eq!(a[0], Action::SwitchSession);
        }
        assert_eq!(r.current_agent(), "support", "ready_first={ready_first}");
    }
}

#[test]
fn per_agent_lets_the_new_agent_introduce_itself_in_its_own_voice() {
    let file = demo_in("per_agent");
    let mut r = router(file.clone(), Arc::new(SlotTable::new(&file)));
    let t = Instant::now();
    let a = r.on_function_call(t, "resp_1", "call_1", "handoff_to_sales", BILLING, false);
    assert_eq!(a.len(), 1, "no narration by the old voice: {a:?}");
    assert_eq!(opened(&a).0["session"]["audio"]["output"]["voice"], "cedar");
    let a = r.on_session_ready(t);
    let Some(Action::Respond(Some(p))) = a.get(1) else {
        panic!("{a:?}")
    };
    assert!(p
        .instructions
        .as_deref()
        .unwrap()
        .contains("introducing yourself"));
    assert!(a
        .iter()
        .any(|x| matches!(x, Action::Handoff(h) if h.mode == "per_agent")));
}

#[test]
fn the_new_session_failing_mid_switch_applies_the_targets_policy_on_the_old_session() {
    let text = file_with_policy("return").as_ref().clone();
    let mut file = text;
    file.voice_mode = router::VoiceMode::Hybrid;
    let file = Arc::new(file);
    let slots = Arc::new(SlotTable::new(&file));
    let mut r = router(file, slots.clone());
    let t = Instant::now();
    let a = r.on_function_call(t, "resp_1", "call_1", "handoff_to_b", "{}", true);
    opened(&a);
    assert_eq!(slots.in_use("b"), 1);
    let a = r.on_session_failed(t, "connect refused");
    let out: Value = serde_json::from_str(sent(&a)[0]["item"]["output"].as_str().unwrap()).unwrap();
    assert_eq!(out["status"], "unavailable");
    assert_eq!(
        sent(&a)[0]["item"]["call_id"],
        "call_1",
        "answered on the old session"
    );
    assert!(a.iter().any(
        |x| matches!(x, Action::HandoffFailed { reason, .. } if reason.contains("connect refused"))
    ));
    assert_eq!(r.current_agent(), "a");
    assert_eq!(slots.in_use("b"), 0, "the target's slot is given back");
    // A late "ready" for the failed session changes nothing.
    assert!(r.on_session_ready(t).is_empty());
}

#[test]
fn hanging_up_while_the_new_session_opens_gives_both_slots_back() {
    let file = demo_in("hybrid");
    let slots = Arc::new(SlotTable::new(&file));
    let mut r = router(file, slots.clone());
    r.on_function_call(
        Instant::now(),
        "resp_1",
        "c",
        "handoff_to_support",
        BILLING,
        true,
    );
    assert_eq!((slots.in_use("router"), slots.in_use("support")), (1, 1));
    r.finish();
    assert_eq!((slots.in_use("router"), slots.in_use("support")), (0, 0));
}

#[test]
fn barge_in_during_the_narration_still_hands_over_with_the_context() {
    // The caller talks over the narration: the response ends cancelled (turn_detected); the
    // handoff goes ahead, the new agent answers what the caller just said with the context.
    let file = demo();
    let mut r = router(file.clone(), Arc::new(SlotTable::new(&file)));
    let t = Instant::now();
    r.on_function_call(t, "resp_1", "call_1", "handoff_to_support", BILLING, false);
    r.on_transcript(Role::User, "Wait, it was actually two charges.");
    let a = r.on_response_done(t, Some(NARRATION_PURPOSE));
    assert_eq!(r.current_agent(), "support");
    let Some(Action::Handoff(h)) = a.iter().find(|x| matches!(x, Action::Handoff(_))) else {
        panic!("{a:?}")
    };
    assert_eq!(h.envelope.entities["amount"], "$49.00");
}
