//! Generated session tools: business tools plus `handoff_to_<target>` tools whose parameters are
//! the envelope fields.

use realtime::{FunctionTool, Tool};
use router::{
    handoff_parameters, handoff_tool_name, sanitize, AgentsFile, Envelope, Sentiment, Urgency,
};
use serde_json::{json, Value};

fn names(tools: &[FunctionTool]) -> Vec<&str> {
    tools.iter().map(|t| t.name.as_str()).collect()
}

#[test]
fn demo_session_tools_are_business_tools_then_handoffs() {
    let f = AgentsFile::embedded_default().unwrap();
    let tools = |n: &str| f.session_tools(f.agent(n).unwrap());
    assert_eq!(
        names(&tools("router")),
        ["handoff_to_support", "handoff_to_sales"]
    );
    assert_eq!(
        names(&tools("support")),
        ["check_billing", "handoff_to_sales"]
    );
    assert_eq!(
        names(&tools("sales")),
        ["get_upgrade_options", "record_upgrade"]
    );
}

#[test]
fn sanitised_names() {
    assert_eq!(sanitize("sales"), "sales");
    assert_eq!(sanitize("Billing Support"), "billing_support");
    assert_eq!(sanitize("tier-2.EU"), "tier_2_eu");
    assert_eq!(sanitize("Kundendienst Köln"), "kundendienst_k_ln");
    assert_eq!(
        handoff_tool_name("Billing Support"),
        "handoff_to_billing_support"
    );
}

#[test]
fn handoff_parameters_schema() {
    let p = handoff_parameters();
    assert_eq!(p["type"], "object");
    assert_eq!(p["required"], json!(["summary", "handoff_reason"]));
    let props = p["properties"].as_object().unwrap();
    let mut keys: Vec<&str> = props.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "customer_state",
            "entities",
            "handoff_reason",
            "intent",
            "resolved_issues",
            "sentiment",
            "summary",
            "urgency"
        ]
    );
    assert_eq!(props["summary"]["type"], "string");
    assert_eq!(props["resolved_issues"]["type"], "array");
    assert_eq!(props["resolved_issues"]["items"]["type"], "string");
    assert_eq!(props["customer_state"]["type"], "object");
    assert_eq!(props["entities"]["type"], "object");
    assert_eq!(props["entities"]["additionalProperties"]["type"], "string");
    assert_eq!(props["urgency"]["enum"], json!(["low", "normal", "high"]));
    assert_eq!(props["sentiment"]["enum"], json!(Sentiment::NAMES));
    for (name, prop) in props {
        assert!(
            prop["description"].as_str().is_some_and(|d| !d.is_empty()),
            "{name} needs a description"
        );
    }
    // The enums in the schema are the ones the envelope parses.
    for s in Sentiment::NAMES {
        let env = Envelope::from_tool_arguments(&json!({ "sentiment": s }).to_string()).unwrap();
        assert_eq!(env.sentiment.map(Sentiment::as_str), Some(s));
    }
    for u in Urgency::NAMES {
        let env = Envelope::from_tool_arguments(&json!({ "urgency": u }).to_string()).unwrap();
        assert_eq!(env.urgency(), env.urgency.unwrap());
        assert_eq!(env.urgency.map(Urgency::as_str), Some(u));
    }
}

#[test]
fn handoff_tool_json_says_whom_when_and_what_to_say() {
    let f = AgentsFile::embedded_default().unwrap();
    let router = f.agent("router").unwrap();
    let tools = f.session_tools(router);
    let support = &tools[0];
    let wire = serde_json::to_value(Tool::Function(support.clone())).unwrap();
    assert_eq!(wire["type"], "function");
    assert_eq!(wire["name"], "handoff_to_support");
    assert_eq!(wire["parameters"], handoff_parameters());
    let d = wire["description"].as_str().unwrap();
    // Whom (name and description), when, and the configured narration.
    assert!(
        d.starts_with("Hand the call over to the support agent, who handles billing questions, charges, refunds and account problems."),
        "{d}"
    );
    assert!(d.contains("Use it when the caller needs support"), "{d}");
    assert!(
        d.contains("First tell the caller: \"I'll connect you to our billing support specialist;"),
        "{d}"
    );
    assert!(d.contains("everything you learned"), "{d}");
}

#[test]
fn handoff_tool_without_description_or_narration() {
    let text = "entry = \"a\"\n[[agent]]\nname = \"a\"\ninstructions = \"A\"\nhandoffs = [\"Tier 2\"]\n[[agent]]\nname = \"Tier 2\"\ninstructions = \"B\"\n";
    let f = AgentsFile::parse(text, "agents.toml").unwrap();
    let tools = f.session_tools(&f.agents[0]);
    assert_eq!(names(&tools), ["handoff_to_tier_2"]);
    let d = tools[0].description.as_deref().unwrap();
    assert!(
        d.starts_with("Hand the call over to the Tier 2 agent. "),
        "{d}"
    );
    assert!(
        d.contains("tell the caller in one sentence that you are connecting them to Tier 2 and why, and that they will not need to repeat themselves"),
        "{d}"
    );
    assert_eq!(
        f.handoff_target(&f.agents[0], "handoff_to_tier_2")
            .map(|a| a.name.as_str()),
        Some("Tier 2")
    );
}

#[test]
fn business_tool_json_is_the_configured_schema() {
    let f = AgentsFile::embedded_default().unwrap();
    let tools = f.session_tools(f.agent("support").unwrap());
    let wire = serde_json::to_value(Tool::Function(tools[0].clone())).unwrap();
    assert_eq!(
        wire,
        json!({
            "type": "function",
            "name": "check_billing",
            "description": "Look up the customer's recent charges, plan and billing status.",
            "parameters": {
                "type": "object",
                "required": ["customer_id"],
                "properties": {
                    "customer_id": {
                        "type": "string",
                        "description": "The customer's account id, e.g. C-1042."
                    }
                }
            }
        })
    );
}

/// The simulator's demo scenario (fixtures/sim/demo.toml) calls the tools this crate generates:
/// every call names a tool of the agent whose turn it is, and every handoff call's arguments
/// parse as an envelope whose fields are all in the handoff schema.
#[test]
fn simulator_demo_calls_match_the_generated_tools() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/sim/demo.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let sim: toml::Value = toml::from_str(&text).unwrap();
    let f = AgentsFile::embedded_default().unwrap();
    let schema = handoff_parameters();
    let mut calls = 0;
    for agent in sim["agent"].as_array().unwrap() {
        let name = agent["name"].as_str().unwrap();
        let tools = f.session_tools(f.agent(name).unwrap());
        for turn in agent["turn"].as_array().unwrap() {
            let Some(call) = turn.get("call") else {
                continue;
            };
            calls += 1;
            let tool = call["name"].as_str().unwrap();
            let def = tools
                .iter()
                .find(|t| t.name == tool)
                .unwrap_or_else(|| panic!("{name} has no tool {tool}"));
            let args: Value = serde_json::to_value(&call["arguments"]).unwrap();
            let params = def.parameters.as_ref().unwrap();
            for key in args.as_object().unwrap().keys() {
                assert!(
                    params["properties"].get(key).is_some(),
                    "{tool}: {key} is not in the schema"
                );
            }
            for required in params["required"].as_array().unwrap() {
                assert!(args.get(required.as_str().unwrap()).is_some());
            }
            if tool.starts_with("handoff_to_") {
                assert_eq!(def.parameters.as_ref(), Some(&schema));
                let env = Envelope::from_tool_arguments(&args.to_string()).unwrap();
                assert!(!env.summary.is_empty() && !env.handoff_reason.is_empty());
                assert!(!env.entities.is_empty());
            }
        }
    }
    assert_eq!(calls, 3);
}
