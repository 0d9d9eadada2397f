//! The context envelope: parsing and validating tool arguments, merging with what the bridge
//! holds, and the transcript size budget.

use std::collections::BTreeMap;

use router::{
    fit_transcript, merge, Envelope, EnvelopeError, Role, Sentiment, Turn, Urgency,
    ENVELOPE_VERSION, MAX_ENTITIES, MAX_RESOLVED_ISSUES, MAX_SUMMARY_CHARS, MAX_SUMMARY_LINE_CHARS,
};
use serde_json::json;

fn parse(v: serde_json::Value) -> Result<Envelope, EnvelopeError> {
    Envelope::from_tool_arguments(&v.to_string())
}

fn entities(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn full_arguments_parse() {
    let env = parse(json!({
        "summary": "  Caller was charged $49 on January 15 and does not know why. ",
        "intent": "billing_question",
        "resolved_issues": ["Confirmed identity", "confirmed IDENTITY", ""],
        "customer_state": {"customer_id": "C-1042", "plan": "Standard"},
        "sentiment": "confused",
        "entities": {"amount": "$49.00", "date": "January 15", "seats": 3, "autopay": true, "gone": null},
        "handoff_reason": "billing question needs the billing specialist",
        "urgency": "low",
        "some_future_field": 1
    }))
    .unwrap();
    assert_eq!(env.version, ENVELOPE_VERSION);
    assert_eq!(
        env.summary,
        "Caller was charged $49 on January 15 and does not know why."
    );
    assert_eq!(env.intent.as_deref(), Some("billing_question"));
    // Duplicates (case-insensitive) and empty issues dropped.
    assert_eq!(env.resolved_issues, ["Confirmed identity"]);
    assert_eq!(env.customer_state["plan"], "Standard");
    assert_eq!(env.sentiment, Some(Sentiment::Confused));
    assert_eq!(
        env.entities,
        entities(&[
            ("amount", "$49.00"),
            ("autopay", "true"),
            ("date", "January 15"),
            ("seats", "3")
        ])
    );
    assert_eq!(
        env.handoff_reason,
        "billing question needs the billing specialist"
    );
    assert_eq!(env.urgency, Some(Urgency::Low));
    assert!(env.transcript.is_empty());
}

#[test]
fn thin_arguments_parse_with_absent_fields() {
    let env =
        parse(json!({"handoff_reason": "sales", "summary": "", "intent": null, "urgency": "High"}))
            .unwrap();
    assert_eq!(env.summary, "");
    assert_eq!(env.intent, None);
    assert_eq!(env.sentiment, None);
    // Enum values are accepted in any case.
    assert_eq!(env.urgency(), Urgency::High);
    let empty = parse(json!({})).unwrap();
    assert_eq!(empty, Envelope::default());
    assert_eq!(empty.urgency(), Urgency::Normal);
}

#[test]
fn bridge_fields_in_arguments_are_ignored() {
    let env = parse(json!({
        "version": 99,
        "transcript": [{"role": "user", "text": "made up"}],
        "summary": "s"
    }))
    .unwrap();
    assert_eq!(env.version, ENVELOPE_VERSION);
    assert!(env.transcript.is_empty());
}

#[test]
fn invalid_json_and_non_objects() {
    assert!(matches!(
        Envelope::from_tool_arguments("{\"summary\": "),
        Err(EnvelopeError::NotJson(_))
    ));
    assert_eq!(
        Envelope::from_tool_arguments("[1, 2]"),
        Err(EnvelopeError::NotAnObject)
    );
    assert_eq!(
        Envelope::from_tool_arguments("\"hand off\""),
        Err(EnvelopeError::NotAnObject)
    );
}

#[test]
fn wrong_types_name_the_field() {
    let cases = [
        (json!({"summary": 5}), "summary: expected a string"),
        (json!({"intent": ["x"]}), "intent: expected a string"),
        (
            json!({"handoff_reason": {}}),
            "handoff_reason: expected a string",
        ),
        (
            json!({"resolved_issues": "fixed it"}),
            "resolved_issues: expected an array of strings",
        ),
        (
            json!({"resolved_issues": ["ok", 2]}),
            "resolved_issues[1]: expected a string",
        ),
        (
            json!({"customer_state": "gold"}),
            "customer_state: expected an object",
        ),
        (
            json!({"entities": ["$49"]}),
            "entities: expected an object of strings",
        ),
        (
            json!({"entities": {"amount": {"value": 49}}}),
            "entities.amount: expected a string, number or boolean",
        ),
        (json!({"sentiment": 1}), "sentiment: expected a string"),
        (json!({"urgency": true}), "urgency: expected a string"),
    ];
    for (args, message) in cases {
        let err = parse(args.clone()).unwrap_err();
        assert!(matches!(err, EnvelopeError::WrongType { .. }), "{args}");
        assert_eq!(err.to_string(), message, "{args}");
    }
}

#[test]
fn enum_values_are_checked() {
    assert_eq!(
        parse(json!({"urgency": "asap"})).unwrap_err().to_string(),
        "urgency: \"asap\" is not one of [\"low\", \"normal\", \"high\"]"
    );
    let err = parse(json!({"sentiment": "ecstatic"})).unwrap_err();
    assert_eq!(
        err,
        EnvelopeError::BadEnum {
            field: "sentiment",
            value: "ecstatic".into(),
            allowed: &Sentiment::NAMES,
        }
    );
}

#[test]
fn lengths_are_checked() {
    let long = "x".repeat(MAX_SUMMARY_CHARS + 1);
    assert_eq!(
        parse(json!({ "summary": long })).unwrap_err(),
        EnvelopeError::TooLong {
            field: "summary".into(),
            len: MAX_SUMMARY_CHARS + 1,
            max: MAX_SUMMARY_CHARS
        }
    );
    // Characters, not bytes: 2000 euro signs are fine.
    parse(json!({ "summary": "€".repeat(MAX_SUMMARY_CHARS) })).unwrap();
    assert_eq!(
        parse(json!({ "intent": "i".repeat(201) }))
            .unwrap_err()
            .to_string(),
        "intent: 201 characters, at most 200"
    );
    assert_eq!(
        parse(json!({ "handoff_reason": "r".repeat(501) }))
            .unwrap_err()
            .to_string(),
        "handoff_reason: 501 characters, at most 500"
    );
    assert_eq!(
        parse(json!({ "resolved_issues": ["ok", "i".repeat(501)] }))
            .unwrap_err()
            .to_string(),
        "resolved_issues[1]: 501 characters, at most 500"
    );
    let issues: Vec<String> = (0..=MAX_RESOLVED_ISSUES)
        .map(|i| format!("issue {i}"))
        .collect();
    assert_eq!(
        parse(json!({ "resolved_issues": issues })).unwrap_err(),
        EnvelopeError::TooMany {
            field: "resolved_issues",
            len: MAX_RESOLVED_ISSUES + 1,
            max: MAX_RESOLVED_ISSUES
        }
    );
    let many: serde_json::Map<String, serde_json::Value> = (0..=MAX_ENTITIES)
        .map(|i| (format!("e{i}"), json!("v")))
        .collect();
    assert_eq!(
        parse(json!({ "entities": many })).unwrap_err().to_string(),
        "entities: 65 entries, at most 64"
    );
    assert_eq!(
        parse(json!({ "entities": { "k".repeat(65): "v" } }))
            .unwrap_err()
            .to_string(),
        format!("entities.{}: 65 characters, at most 64", "k".repeat(65))
    );
    assert_eq!(
        parse(json!({ "entities": { "note": "v".repeat(501) } }))
            .unwrap_err()
            .to_string(),
        "entities.note: 501 characters, at most 500"
    );
    let big = json!({ "customer_state": { "blob": "b".repeat(8_000) } });
    assert!(matches!(
        parse(big).unwrap_err(),
        EnvelopeError::TooLong { ref field, max: 8_000, .. } if field == "customer_state"
    ));
}

fn bridge_envelope() -> Envelope {
    let mut customer_state = serde_json::Map::new();
    customer_state.insert("customer_id".into(), json!("C-1042"));
    customer_state.insert("plan".into(), json!("Standard"));
    customer_state.insert(
        "last_charge".into(),
        json!({"amount": 49.0, "date": "2026-01-15"}),
    );
    Envelope {
        summary: "Caller asked about a $49 charge on January 15.".into(),
        transcript: vec![
            Turn::new(Role::Assistant, "Thanks for calling Acme. How can I help?"),
            Turn::new(
                Role::User,
                "I was charged forty-nine dollars on January fifteenth.",
            ),
        ],
        resolved_issues: vec!["Explained the $49 renewal".into()],
        intent: Some("billing_question".into()),
        customer_state,
        sentiment: Some(Sentiment::Confused),
        entities: entities(&[("amount", "$49.00"), ("date", "January 15")]),
        handoff_reason: "billing".into(),
        urgency: Some(Urgency::Normal),
        ..Envelope::default()
    }
}

#[test]
fn thin_tool_call_loses_nothing_the_bridge_holds() {
    let model = parse(json!({"handoff_reason": "upgrade question for sales"})).unwrap();
    let bridge = bridge_envelope();
    let merged = merge(model, bridge.clone());
    assert_eq!(merged.handoff_reason, "upgrade question for sales");
    assert_eq!(merged.summary, bridge.summary);
    assert_eq!(merged.transcript, bridge.transcript);
    assert_eq!(merged.resolved_issues, bridge.resolved_issues);
    assert_eq!(merged.intent, bridge.intent);
    assert_eq!(merged.customer_state, bridge.customer_state);
    assert_eq!(merged.sentiment, bridge.sentiment);
    assert_eq!(merged.entities, bridge.entities);
    assert_eq!(merged.urgency, bridge.urgency);
    assert_eq!(merged.version, ENVELOPE_VERSION);
}

#[test]
fn model_fields_win_when_present_and_maps_are_unioned() {
    let model = parse(json!({
        "summary": "The $49 charge was the Standard renewal; caller wants Pro pricing.",
        "intent": "upgrade_inquiry",
        "resolved_issues": ["explained the $49 RENEWAL", "Updated email"],
        "customer_state": {"plan": "standard (monthly)", "interested_in": "Pro"},
        "sentiment": "positive",
        "entities": {"amount": "$49", "interested_in": "Pro"},
        "handoff_reason": "upgrade question for sales",
        "urgency": "high",
        "transcript": [{"role": "user", "text": "ignored"}]
    }))
    .unwrap();
    let bridge = bridge_envelope();
    let merged = merge(model, bridge.clone());
    assert_eq!(
        merged.summary,
        "The $49 charge was the Standard renewal; caller wants Pro pricing."
    );
    assert_eq!(merged.intent.as_deref(), Some("upgrade_inquiry"));
    assert_eq!(merged.sentiment, Some(Sentiment::Positive));
    assert_eq!(merged.urgency(), Urgency::High);
    assert_eq!(merged.handoff_reason, "upgrade question for sales");
    // The bridge heard the call.
    assert_eq!(merged.transcript, bridge.transcript);
    // Union; the same issue in another case counts once.
    assert_eq!(
        merged.resolved_issues,
        ["Explained the $49 renewal", "Updated email"]
    );
    // Entities: union, the model's value wins on a shared name.
    assert_eq!(
        merged.entities,
        entities(&[
            ("amount", "$49"),
            ("date", "January 15"),
            ("interested_in", "Pro")
        ])
    );
    // Customer state: union, the bridge's (tool results) wins on a shared key.
    assert_eq!(merged.customer_state["plan"], "Standard");
    assert_eq!(merged.customer_state["interested_in"], "Pro");
    assert_eq!(merged.customer_state["customer_id"], "C-1042");
    assert!(merged.customer_state.contains_key("last_charge"));
}

#[test]
fn merge_uses_the_model_transcript_only_when_the_bridge_has_none() {
    let model = Envelope {
        transcript: vec![Turn::new(Role::User, "hello")],
        ..Envelope::default()
    };
    let merged = merge(model.clone(), Envelope::default());
    assert_eq!(merged.transcript, model.transcript);
}

#[test]
fn envelope_serde_round_trip_and_wire_names() {
    let env = bridge_envelope();
    let wire = serde_json::to_value(&env).unwrap();
    assert_eq!(wire["version"], 1);
    assert_eq!(wire["transcript"][0]["role"], "assistant");
    assert_eq!(wire["sentiment"], "confused");
    assert_eq!(wire["urgency"], "normal");
    assert_eq!(wire["entities"]["amount"], "$49.00");
    let back: Envelope = serde_json::from_value(wire).unwrap();
    assert_eq!(back, env);
    // Missing fields take their defaults, so older or partial envelopes still load.
    let partial: Envelope = serde_json::from_str("{\"summary\": \"s\"}").unwrap();
    assert_eq!(partial.version, ENVELOPE_VERSION);
    assert_eq!(partial.summary, "s");
}

fn chars(turns: &[Turn]) -> usize {
    turns.iter().map(|t| t.text.chars().count()).sum()
}

fn conversation(n: usize) -> Vec<Turn> {
    (0..n)
        .map(|i| {
            let role = if i % 2 == 0 {
                Role::User
            } else {
                Role::Assistant
            };
            Turn::new(
                role,
                format!("turn {i}: {}", "words and more words ".repeat(i % 5 + 1)),
            )
        })
        .collect()
}

#[test]
fn transcript_that_fits_is_unchanged() {
    let turns = conversation(4);
    assert_eq!(fit_transcript(&turns, chars(&turns)), turns);
    assert_eq!(fit_transcript(&[], 0), Vec::<Turn>::new());
}

#[test]
fn older_turns_become_one_summary_line() {
    let turns = conversation(12);
    let budget = 400;
    let fitted = fit_transcript(&turns, budget);
    assert!(chars(&fitted) <= budget);
    let summary = &fitted[0];
    assert_eq!(summary.role, Role::System);
    assert!(summary.text.chars().count() <= budget / 4);
    assert!(!summary.text.contains('\n'));
    // The rest are the newest turns, verbatim and in order.
    let recent = &fitted[1..];
    assert!(!recent.is_empty());
    assert_eq!(recent, &turns[turns.len() - recent.len()..]);
    let older = turns.len() - recent.len();
    assert!(
        summary
            .text
            .starts_with(&format!("Earlier ({older} turns): caller: turn 0:")),
        "{}",
        summary.text
    );
}

#[test]
fn summary_line_is_bounded() {
    let turns = conversation(200);
    let fitted = fit_transcript(&turns, 100_000 / 20);
    assert_eq!(fitted[0].role, Role::System);
    assert!(fitted[0].text.chars().count() <= MAX_SUMMARY_LINE_CHARS);
    assert!(fitted[0].text.ends_with('…'));
}

#[test]
fn a_huge_last_turn_is_cut() {
    let turns = vec![
        Turn::new(Role::Assistant, "How can I help?"),
        Turn::new(Role::User, "é".repeat(1_000)),
    ];
    let fitted = fit_transcript(&turns, 200);
    assert!(chars(&fitted) <= 200);
    assert_eq!(fitted.len(), 2);
    assert_eq!(fitted[0].role, Role::System);
    assert!(fitted[0].text.contains("agent: How can I help?"));
    assert_eq!(fitted[1].role, Role::User);
    assert!(fitted[1].text.ends_with('…'));
    assert_eq!(fitted[1].text.chars().count(), 150);
}

#[test]
fn tiny_budgets_keep_only_what_fits() {
    let turns = conversation(6);
    let fitted = fit_transcript(&turns, 40);
    assert!(chars(&fitted) <= 40);
    assert!(fitted.iter().all(|t| t.role != Role::System));
    assert!(fit_transcript(&turns, 0).iter().all(|t| t.text.is_empty()));
}

#[test]
fn budget_is_never_exceeded() {
    for n in [1, 2, 3, 7, 20, 60] {
        let turns = conversation(n);
        for budget in (0..1_200).step_by(7) {
            let fitted = fit_transcript(&turns, budget);
            assert!(chars(&fitted) <= budget, "n={n} budget={budget}");
            // Whatever is kept verbatim is a suffix of the conversation.
            let verbatim: Vec<&Turn> = fitted
                .iter()
                .filter(|t| t.role != Role::System && !t.text.ends_with('…'))
                .collect();
            let tail = &turns[turns.len() - verbatim.len()..];
            assert!(
                verbatim.iter().zip(tail).all(|(a, b)| *a == b),
                "n={n} budget={budget}"
            );
        }
    }
}
