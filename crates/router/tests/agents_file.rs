//! The agents file: the demo loads as documented, and every rule reports file, line and field.

use std::path::Path;

use realtime::Voice;
use router::{AgentsFile, Backend, LoadError, OnUnavailable, Rule, VoiceMode, EMBEDDED_DEFAULT};

/// Joins `lines` with newlines, so that line N of the file is `lines[N - 1]`.
fn file(lines: &[&str]) -> String {
    lines.join("\n") + "\n"
}

/// The rendered errors of loading `text` as `agents.toml`.
fn errors(text: &str) -> Vec<String> {
    match AgentsFile::parse(text, "agents.toml") {
        Ok(_) => panic!("loaded, expected errors:\n{text}"),
        Err(e) => {
            let list: Vec<String> = e.errors().iter().map(ToString::to_string).collect();
            assert_eq!(e.to_string(), list.join("\n"));
            list
        }
    }
}

fn load(text: &str) -> AgentsFile {
    AgentsFile::parse(text, "agents.toml").unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// Two agents, `a` (entry) -> `b`; `extra` goes at the end of agent `b`.
fn two_agents(extra: &[&str]) -> String {
    let mut lines = vec![
        "entry = \"a\"",        // 1
        "",                     // 2
        "[[agent]]",            // 3
        "name = \"a\"",         // 4
        "instructions = \"A\"", // 5
        "handoffs = [\"b\"]",   // 6
        "",                     // 7
        "[[agent]]",            // 8
        "name = \"b\"",         // 9
        "instructions = \"B\"", // 10
    ];
    lines.extend_from_slice(extra);
    file(&lines)
}

#[test]
fn demo_file_loads_with_the_seeds_three_agents() {
    let f = AgentsFile::embedded_default().expect("embedded demo loads");
    assert_eq!(f.entry, "router");
    assert_eq!(f.voice_mode, VoiceMode::Same);
    let names: Vec<&str> = f.agents.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["router", "support", "sales"]);

    let router = f.agent("router").unwrap();
    assert_eq!(router.handoffs, ["support", "sales"]);
    assert!(router.tools.is_empty());
    assert_eq!(router.on_unavailable, OnUnavailable::Return);
    assert!(router.narration["support"].contains("billing support specialist"));
    assert!(router.narration.contains_key("sales"));

    let support = f.agent("support").unwrap();
    assert_eq!(support.handoffs, ["sales"]);
    assert_eq!(support.capacity, Some(20));
    assert_eq!(support.on_unavailable, OnUnavailable::Queue);
    assert_eq!(support.tools.len(), 1);
    let check = &support.tools[0];
    assert_eq!(check.name, "check_billing");
    assert_eq!(check.backend, Backend::Builtin);
    assert_eq!(
        check.parameters["required"],
        serde_json::json!(["customer_id"])
    );
    assert_eq!(
        check.parameters["properties"]["customer_id"]["type"],
        "string"
    );

    let sales = f.agent("sales").unwrap();
    assert!(sales.handoffs.is_empty());
    assert!(AgentsFile::can_end_call(sales));
    assert_eq!(sales.on_unavailable, OnUnavailable::Callback);
    let tools: Vec<&str> = sales.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(tools, ["get_upgrade_options", "record_upgrade"]);
    let record = &sales.tools[1].parameters;
    assert_eq!(
        record["required"],
        serde_json::json!(["customer_id", "to_plan"])
    );

    // Mode same: everyone speaks in the entry agent's voice.
    for a in &f.agents {
        assert_eq!(f.voice_for(a), Voice::named("marin"));
    }
}

/// The simulator picks its scripted agent by the first of its `match` words (router, support,
/// sales, in fixtures/sim/demo.toml order) found in the session instructions, case-insensitive.
#[test]
fn demo_instructions_select_the_matching_simulator_agent() {
    let f = AgentsFile::embedded_default().unwrap();
    let sim_order = ["router", "support", "sales"];
    for a in &f.agents {
        let hay = a.instructions.to_lowercase();
        let picked = sim_order.iter().find(|m| hay.contains(*m)).copied();
        assert_eq!(picked, Some(a.name.as_str()), "{}", a.instructions);
    }
}

#[test]
fn fixture_on_disk_is_the_embedded_default() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/config/agents.toml");
    let on_disk = std::fs::read_to_string(&path).unwrap();
    assert_eq!(on_disk, EMBEDDED_DEFAULT);
    let loaded = AgentsFile::load(&path).unwrap();
    let embedded = AgentsFile::embedded_default().unwrap();
    assert_eq!(loaded.agents, embedded.agents);
    assert!(loaded.source.ends_with("agents.toml"));
}

#[test]
fn missing_file_is_a_read_error_naming_the_path() {
    let err = AgentsFile::load(Path::new("/nonexistent/agents.toml")).unwrap_err();
    assert!(matches!(err, LoadError::Read { .. }));
    assert!(err.errors().is_empty());
    assert!(
        err.to_string()
            .starts_with("cannot read agents file /nonexistent/agents.toml: "),
        "{err}"
    );
}

#[test]
fn unknown_handoff_target_names_file_line_and_field() {
    let text = file(&[
        "entry = \"router\"",                                      // 1
        "",                                                        // 2
        "[[agent]]",                                               // 3
        "name = \"router\"",                                       // 4
        "instructions = \"Route.\"",                               // 5
        "handoffs = [\"support\"]",                                // 6
        "",                                                        // 7
        "[[agent]]",                                               // 8
        "name = \"support\"",                                      // 9
        "instructions = \"Support.\"",                             // 10
        "# support hands off to a department that does not exist", // 11
        "handoffs = [\"billing\"]",                                // 12
    ]);
    assert_eq!(
        errors(&text),
        ["agents.toml:12: agent[1].handoffs[0]: unknown agent \"billing\""]
    );
    let err = AgentsFile::parse(&text, "agents.toml").unwrap_err();
    let e = &err.errors()[0];
    assert_eq!((e.line, e.field.as_str()), (12, "agent[1].handoffs[0]"));
    assert_eq!(e.rule, Rule::UnknownAgent("billing".into()));
}

#[test]
fn unknown_entry() {
    let text = two_agents(&[]).replace("entry = \"a\"", "entry = \"nobody\"");
    assert_eq!(
        errors(&text),
        ["agents.toml:1: entry: unknown agent \"nobody\""]
    );
}

#[test]
fn duplicate_agent_names() {
    let text = two_agents(&[]).replace("name = \"b\"", "name = \"a\"");
    let errs = errors(&text);
    assert_eq!(
        errs[0],
        "agents.toml:6: agent[0].handoffs[0]: unknown agent \"b\""
    );
    assert_eq!(
        errs[1],
        "agents.toml:9: agent[1].name: duplicate agent name \"a\" (first defined at line 4)"
    );
}

#[test]
fn names_that_sanitise_to_one_handoff_tool_clash() {
    let text = file(&[
        "entry = \"Billing Support\"", // 1
        "[[agent]]",                   // 2
        "name = \"Billing Support\"",  // 3
        "instructions = \"x\"",        // 4
        "[[agent]]",                   // 5
        "name = \"billing-support\"",  // 6
        "instructions = \"y\"",        // 7
    ]);
    assert_eq!(
        errors(&text),
        ["agents.toml:6: agent[1].name: agent \"billing-support\" and agent \"Billing Support\" both give the handoff tool \"handoff_to_billing_support\""]
    );
}

#[test]
fn agent_name_too_long_for_a_tool_name() {
    let long = "a".repeat(54);
    let text = file(&[
        &format!("entry = \"{long}\""),
        "[[agent]]",
        &format!("name = \"{long}\""),
        "instructions = \"x\"",
    ]);
    let errs = errors(&text);
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("agents.toml:3: agent[0].name: agent name \"aaaa"),
        "{errs:?}"
    );
    // 53 fits: handoff_to_ + 53 = 64.
    load(&text.replace(&long, &"a".repeat(53)));
}

#[test]
fn handoff_to_self_and_duplicate_targets() {
    let text = two_agents(&["handoffs = [\"a\", \"b\", \"a\"]"]);
    assert_eq!(
        errors(&text),
        [
            "agents.toml:11: agent[1].handoffs[1]: agent \"b\" cannot hand off to itself",
            "agents.toml:11: agent[1].handoffs[2]: handoff target \"a\" listed twice",
        ]
    );
}

#[test]
fn two_agent_cycle_without_an_exit() {
    let text = two_agents(&["handoffs = [\"a\"]"]);
    assert_eq!(
        errors(&text),
        ["agents.toml:6: agent[0].handoffs: cycle without an exit: a -> b -> a; no agent reachable from \"a\" can end the call (an agent ends the call when it has no handoffs or sets ends_call = true)"]
    );
}

#[test]
fn cycle_behind_the_entry_is_reported_at_the_first_stuck_agent() {
    // router -> support <-> sales; router itself is stuck too, reported first in file order.
    let text = file(&[
        "entry = \"router\"",       // 1
        "[[agent]]",                // 2
        "name = \"router\"",        // 3
        "instructions = \"r\"",     // 4
        "handoffs = [\"support\"]", // 5
        "[[agent]]",                // 6
        "name = \"support\"",       // 7
        "instructions = \"s\"",     // 8
        "handoffs = [\"sales\"]",   // 9
        "[[agent]]",                // 10
        "name = \"sales\"",         // 11
        "instructions = \"x\"",     // 12
        "handoffs = [\"support\"]", // 13
    ]);
    let errs = errors(&text);
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with(
            "agents.toml:5: agent[0].handoffs: cycle without an exit: router -> support -> sales -> support;"
        ),
        "{errs:?}"
    );
    // An exit anywhere on the loop fixes it.
    let fixed = text.replace(
        "handoffs = [\"support\"]\n",
        "handoffs = [\"support\"]\nends_call = true\n",
    );
    let f = load(&fixed);
    assert!(f.agent("sales").unwrap().ends_call);
    // So does an exit reachable from the loop: support may also go to a terminal agent.
    let with_exit = file(&[
        &text.replace("handoffs = [\"sales\"]", "handoffs = [\"sales\", \"done\"]"),
        "[[agent]]",
        "name = \"done\"",
        "instructions = \"goodbye\"",
    ]);
    load(&with_exit);
}

#[test]
fn cycles_the_entry_cannot_reach_are_not_checked() {
    let text = two_agents(&[
        "[[agent]]",
        "name = \"c\"",
        "instructions = \"C\"",
        "handoffs = [\"d\"]",
        "[[agent]]",
        "name = \"d\"",
        "instructions = \"D\"",
        "handoffs = [\"c\"]",
    ]);
    load(&text);
}

#[test]
fn tool_names_may_not_take_the_handoff_prefix() {
    let text = two_agents(&[
        "[[agent.tools]]",             // 11
        "name = \"handoff_to_sales\"", // 12
        "description = \"fake\"",      // 13
        "[[agent.tools]]",             // 14
        "name = \"Handoff_To_a\"",     // 15
        "description = \"fake\"",      // 16
    ]);
    assert_eq!(
        errors(&text),
        [
            "agents.toml:12: agent[1].tools[0].name: tool name \"handoff_to_sales\" uses the prefix handoff_to_, reserved for the generated handoff tools",
            "agents.toml:15: agent[1].tools[1].name: tool name \"Handoff_To_a\" uses the prefix handoff_to_, reserved for the generated handoff tools",
        ]
    );
}

#[test]
fn tool_name_charset_and_duplicates() {
    let text = two_agents(&[
        "[[agent.tools]]",          // 11
        "name = \"check billing\"", // 12
        "description = \"d\"",      // 13
        "[[agent.tools]]",          // 14
        "name = \"lookup\"",        // 15
        "description = \"d\"",      // 16
        "[[agent.tools]]",          // 17
        "name = \"lookup\"",        // 18
        "description = \"d\"",      // 19
    ]);
    assert_eq!(
        errors(&text),
        [
            "agents.toml:12: agent[1].tools[0].name: tool name \"check billing\" must match ^[a-zA-Z0-9_-]{1,64}$",
            "agents.toml:18: agent[1].tools[2].name: duplicate tool name \"lookup\" in this agent",
        ]
    );
}

#[test]
fn tool_parameters_must_be_an_object_schema() {
    let text = two_agents(&[
        "[[agent.tools]]",                    // 11
        "name = \"t\"",                       // 12
        "description = \"d\"",                // 13
        "parameters = { type = \"string\" }", // 14
    ]);
    assert_eq!(
        errors(&text),
        ["agents.toml:14: agent[1].tools[0].parameters: parameters must be a JSON-schema object with type = \"object\""]
    );
    // Absent parameters: an empty object schema.
    let f = load(&two_agents(&[
        "[[agent.tools]]",
        "name = \"t\"",
        "description = \"d\"",
    ]));
    assert_eq!(
        f.agents[1].tools[0].parameters,
        serde_json::json!({"type": "object", "properties": {}})
    );
}

#[test]
fn webhook_backend_with_defaults_and_limits() {
    let tool = |backend: &str| {
        two_agents(&[
            "[[agent.tools]]",     // 11
            "name = \"t\"",        // 12
            "description = \"d\"", // 13
            backend,               // 14
        ])
    };
    let f = load(&tool(
        "backend = { webhook = \"https://crm.example/tools\" }",
    ));
    assert_eq!(
        f.agents[1].tools[0].backend,
        Backend::Webhook {
            url: "https://crm.example/tools".into(),
            timeout_ms: 5000,
            retries: 1
        }
    );
    let f = load(&tool(
        "backend = { webhook = \"http://127.0.0.1:8080/t\", timeout_ms = 250, retries = 0 }",
    ));
    assert_eq!(
        f.agents[1].tools[0].backend,
        Backend::Webhook {
            url: "http://127.0.0.1:8080/t".into(),
            timeout_ms: 250,
            retries: 0
        }
    );
    let prefix = "agents.toml:14: agent[1].tools[0].backend: backend must be \"builtin\" or { webhook = \"http(s)://...\", timeout_ms = .., retries = .. }: ";
    for (backend, why) in [
        ("backend = \"lambda\"", "unknown backend \"lambda\""),
        (
            "backend = { webhook = \"ftp://x\" }",
            "\"ftp://x\" is not an http:// or https:// URL",
        ),
        (
            "backend = { webhook = \"https://\" }",
            "\"https://\" is not an http:// or https:// URL",
        ),
        ("backend = { webhook = 3 }", "webhook must be a string"),
        ("backend = { timeout_ms = 3 }", "missing webhook"),
        (
            "backend = { webhook = \"http://h\", timeout_ms = 0 }",
            "timeout_ms 0 is outside 1..=120000",
        ),
        (
            "backend = { webhook = \"http://h\", retries = 11 }",
            "retries 11 is outside 0..=10",
        ),
        (
            "backend = { webhook = \"http://h\", method = \"GET\" }",
            "unknown key \"method\"",
        ),
        ("backend = 7", "a integer is neither"),
    ] {
        assert_eq!(
            errors(&tool(backend)),
            [format!("{prefix}{why}")],
            "{backend}"
        );
    }
}

#[test]
fn narration_only_for_handoff_targets() {
    let text = two_agents(&[
        "[agent.narration]",  // 11
        "a = \"Back to a.\"", // 12
    ]);
    // b has no handoffs, so a narration for a is a mistake.
    assert_eq!(
        errors(&text),
        ["agents.toml:12: agent[1].narration.a: narration for \"a\", which is not in this agent's handoffs"]
    );
}

#[test]
fn empty_texts_and_zero_capacity() {
    let text = two_agents(&[
        "capacity = 0",         // 11
        "description = \"  \"", // 12
    ])
    .replace("instructions = \"A\"", "instructions = \"\"");
    assert_eq!(
        errors(&text),
        [
            "agents.toml:5: agent[0].instructions: must not be empty",
            "agents.toml:11: agent[1].capacity: capacity must be at least 1 (leave it out for no limit)",
            "agents.toml:12: agent[1].description: must not be empty",
        ]
    );
}

#[test]
fn voices_and_voice_modes() {
    let text = two_agents(&["voice = { id = \"voice_123\" }"]).replace(
        "entry = \"a\"",
        "entry = \"a\"\nvoice = \"coral\"\nvoice_mode = \"per_agent\"",
    );
    let f = load(&text);
    assert_eq!(f.voice_mode, VoiceMode::PerAgent);
    let (a, b) = (&f.agents[0], &f.agents[1]);
    assert_eq!(f.voice_for(a), Voice::named("coral"));
    assert_eq!(
        f.voice_for(b),
        Voice::Custom {
            id: "voice_123".into()
        }
    );
    let hybrid = load(&text.replace("per_agent", "hybrid"));
    assert_eq!(
        hybrid.voice_for(&hybrid.agents[1]),
        Voice::Custom {
            id: "voice_123".into()
        }
    );
    // Mode same: the entry's voice (here the file default) for everyone.
    let same = load(&text.replace("per_agent", "same"));
    assert_eq!(same.voice_for(&same.agents[1]), Voice::named("coral"));
    // No voice anywhere: marin.
    let plain = load(&two_agents(&[]));
    assert_eq!(plain.voice_for(&plain.agents[0]), Voice::named("marin"));

    for bad in ["voice = \"\"", "voice = 3", "voice = { name = \"x\" }"] {
        assert_eq!(
            errors(&two_agents(&[bad])),
            ["agents.toml:11: agent[1].voice: voice must be a non-empty name or { id = \"...\" }"],
            "{bad}"
        );
    }
}

#[test]
fn toml_errors_carry_line_and_field() {
    assert_eq!(
        errors(&two_agents(&["capacity = \"ten\""])),
        ["agents.toml:11: agent[1].capacity: invalid type: string \"ten\", expected u32"]
    );
    let unknown = errors(&two_agents(&["handoff = [\"a\"]"]));
    assert!(
        unknown[0].starts_with("agents.toml:11: agent[1].handoff: unknown field `handoff`"),
        "{unknown:?}"
    );
    assert_eq!(
        errors(&two_agents(&["on_unavailable = \"wait\""])),
        ["agents.toml:11: agent[1].on_unavailable: unknown variant `wait`, expected one of `queue`, `callback`, `return`"]
    );
    assert_eq!(
        errors(&two_agents(&[]).replace("entry = \"a\"\n", "\n")),
        ["agents.toml:1: (top level): missing field `entry`"]
    );
    // An unclosed array is noticed where the file ends.
    assert_eq!(
        errors(&two_agents(&["handoffs = [\"a\""])),
        ["agents.toml:12: agent[1]: invalid array; expected `]`"]
    );
    assert_eq!(
        errors("entry = \"a\"\n[[agent]\nname = \"a\"\n"),
        ["agents.toml:2: (top level): invalid table header; expected `.`, `]]`"]
    );
}

#[test]
fn no_agents() {
    assert_eq!(
        errors("entry = \"a\"\n"),
        ["agents.toml:1: agent: the file defines no [[agent]]"]
    );
}

#[test]
fn all_violations_are_listed_in_line_order() {
    let text = two_agents(&[
        "handoffs = [\"zed\"]", // 11
        "capacity = 0",         // 12
    ])
    .replace("entry = \"a\"", "entry = \"nobody\"");
    let errs = errors(&text);
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(errs[0].starts_with("agents.toml:1: entry:"));
    assert!(errs[1].starts_with("agents.toml:11: agent[1].handoffs[0]: unknown agent"));
    assert!(errs[2].starts_with("agents.toml:12: agent[1].capacity:"));
}

#[test]
fn handoff_target_maps_tool_names_back_to_allowed_agents() {
    let f = AgentsFile::embedded_default().unwrap();
    let router = f.agent("router").unwrap();
    let support = f.agent("support").unwrap();
    assert_eq!(
        f.handoff_target(router, "handoff_to_support")
            .map(|a| a.name.as_str()),
        Some("support")
    );
    assert_eq!(
        f.handoff_target(support, "handoff_to_sales")
            .map(|a| a.name.as_str()),
        Some("sales")
    );
    // Not allowed from support, a business tool, unknown.
    assert!(f.handoff_target(support, "handoff_to_router").is_none());
    assert!(f.handoff_target(support, "check_billing").is_none());
    assert!(f.handoff_target(support, "handoff_to_nobody").is_none());
}

#[test]
fn callback_webhook_is_an_http_url_or_an_error_on_its_line() {
    let ok = file(&[
        "entry = \"a\"",
        "callback_webhook = \"https://crm.example/callbacks\"",
        "[[agent]]",
        "name = \"a\"",
        "instructions = \"x\"",
    ]);
    assert_eq!(
        load(&ok).callback_webhook.as_deref(),
        Some("https://crm.example/callbacks")
    );
    let bad = ok.replace("https://crm.example/callbacks", "ftp://x");
    let e = errors(&bad);
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("agents.toml:2: callback_webhook: "),
        "{e:?}"
    );
    assert!(AgentsFile::embedded_default()
        .unwrap()
        .callback_webhook
        .is_none());
}
