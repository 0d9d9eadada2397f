//! The built-in demo backend on the seeded data: every tool, the seed's call, and the errors the
//! model gets back instead of a crash.

use router::builtin::{DemoDb, ToolError, BUILTIN_TOOLS};
use router::{AgentsFile, Backend};
use serde_json::{json, Value};

fn call(db: &mut DemoDb, tool: &str, args: Value) -> Result<Value, ToolError> {
    db.call(tool, &args.to_string())
}

#[test]
fn check_billing_shows_the_january_15_renewal() {
    let mut db = DemoDb::seeded();
    let bill = call(&mut db, "check_billing", json!({"customer_id": "C-1042"})).unwrap();
    assert_eq!(bill["customer_id"], "C-1042");
    assert_eq!(bill["name"], "Jane Doe");
    assert_eq!(bill["plan"], "Standard");
    assert_eq!(bill["monthly_price"], "$49.00");
    assert_eq!(bill["billing_cycle"], "monthly");
    assert_eq!(bill["status"], "active");
    assert_eq!(bill["billing_status"], "paid up");
    let charges = bill["recent_charges"].as_array().unwrap();
    assert_eq!(charges.len(), 3);
    // Newest first: the $49 charge of January 15 is the Standard plan's monthly renewal.
    assert_eq!(
        charges[0],
        json!({"date": "2026-01-15", "amount": "$49.00", "description": "Standard plan monthly renewal"})
    );
    assert_eq!(charges[1]["date"], "2025-12-15");
    assert_eq!(
        bill["next_renewal"],
        json!({"date": "2026-02-15", "amount": "$49.00"})
    );
}

#[test]
fn check_billing_of_a_past_due_customer() {
    let mut db = DemoDb::seeded();
    let bill = call(&mut db, "check_billing", json!({"customer_id": "C-3150"})).unwrap();
    assert_eq!(bill["plan"], "Pro");
    assert_eq!(bill["status"], "past_due");
    assert_eq!(bill["billing_status"], "payment overdue");
    assert!(bill["recent_charges"][0]["description"]
        .as_str()
        .unwrap()
        .contains("declined"));
}

#[test]
fn customer_ids_are_matched_leniently() {
    let mut db = DemoDb::seeded();
    for id in [
        json!("c-1042"),
        json!(" C1042 "),
        json!("1042"),
        json!(1042),
    ] {
        let bill = call(&mut db, "check_billing", json!({ "customer_id": id })).unwrap();
        assert_eq!(bill["customer_id"], "C-1042", "{id}");
    }
}

#[test]
fn upgrade_options_from_standard_are_pro_at_30_more() {
    let mut db = DemoDb::seeded();
    let opts = call(
        &mut db,
        "get_upgrade_options",
        json!({"customer_id": "C-1042"}),
    )
    .unwrap();
    assert_eq!(opts["current_plan"]["plan"], "Standard");
    assert_eq!(opts["current_plan"]["monthly_price"], "$49.00");
    let options = opts["options"].as_array().unwrap();
    assert_eq!(options.len(), 1);
    assert_eq!(options[0]["plan"], "Pro");
    assert_eq!(options[0]["monthly_price"], "$79.00");
    assert_eq!(options[0]["price_difference"], "$30.00");
    assert!(!options[0]["features"].as_array().unwrap().is_empty());
    assert!(opts.get("note").is_none());
}

#[test]
fn upgrade_options_from_basic_and_from_the_top() {
    let mut db = DemoDb::seeded();
    let basic = call(
        &mut db,
        "get_upgrade_options",
        json!({"customer_id": "C-2077"}),
    )
    .unwrap();
    let plans: Vec<(&str, &str)> = basic["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["plan"].as_str().unwrap(),
                o["price_difference"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(plans, [("Standard", "$30.00"), ("Pro", "$60.00")]);

    let pro = call(
        &mut db,
        "get_upgrade_options",
        json!({"customer_id": "C-3150"}),
    )
    .unwrap();
    assert_eq!(pro["options"], json!([]));
    assert!(pro["note"].as_str().unwrap().contains("highest plan"));
}

#[test]
fn record_upgrade_standard_to_pro() {
    let mut db = DemoDb::seeded();
    let args = json!({"customer_id": "C-1042", "from_plan": "Standard", "to_plan": "Pro", "price": "$79/month"});
    let done = call(&mut db, "record_upgrade", args).unwrap();
    assert_eq!(done["status"], "upgraded");
    assert_eq!(done["confirmation_id"], "UPG-1042-0001");
    assert_eq!(done["from_plan"], "Standard");
    assert_eq!(done["to_plan"], "Pro");
    assert_eq!(done["monthly_price"], "$79.00");
    assert_eq!(done["price_difference"], "$30.00");
    assert_eq!(done["agreed_price"], "$79/month");
    assert!(done.get("note").is_none(), "{done}");
    assert_eq!(
        done["next_renewal"],
        json!({"date": "2026-02-15", "amount": "$79.00"})
    );

    // The plan changed: billing says Pro, and there is nothing left to upgrade to.
    let c = db.customer("C-1042").unwrap();
    assert_eq!(c.plan, "Pro");
    assert_eq!(c.upgrades.len(), 1);
    assert_eq!(c.upgrades[0].confirmation_id, "UPG-1042-0001");
    let bill = call(&mut db, "check_billing", json!({"customer_id": "C-1042"})).unwrap();
    assert_eq!(bill["plan"], "Pro");
    assert_eq!(bill["next_renewal"]["amount"], "$79.00");
    let opts = call(
        &mut db,
        "get_upgrade_options",
        json!({"customer_id": "C-1042"}),
    )
    .unwrap();
    assert_eq!(opts["options"], json!([]));
}

#[test]
fn record_upgrade_is_idempotent() {
    let mut db = DemoDb::seeded();
    let args = json!({"customer_id": "C-1042", "from_plan": "Standard", "to_plan": "Pro"});
    let first = call(&mut db, "record_upgrade", args.clone()).unwrap();
    let again = call(&mut db, "record_upgrade", args).unwrap();
    assert_eq!(first, again);
    // Without from_plan, and spelled differently: still the same upgrade.
    let loose = call(
        &mut db,
        "record_upgrade",
        json!({"customer_id": "c-1042", "to_plan": "pro plan"}),
    )
    .unwrap();
    assert_eq!(first, loose);
    assert_eq!(db.customer("C-1042").unwrap().upgrades.len(), 1);

    // The next confirmation id is new.
    let other = call(
        &mut db,
        "record_upgrade",
        json!({"customer_id": "C-2077", "to_plan": "Standard"}),
    )
    .unwrap();
    assert_eq!(other["confirmation_id"], "UPG-2077-0002");
    assert_eq!(other["price_difference"], "$30.00");
}

#[test]
fn the_seed_calls_record_upgrade_arguments_work() {
    // The arguments the simulated sales agent sends in fixtures/sim/demo.toml.
    let text = include_str!("../../../fixtures/sim/demo.toml");
    let doc: toml::Value = toml::from_str(text).unwrap();
    let args = doc["agent"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["turn"].as_array().unwrap())
        .filter_map(|t| t.get("call"))
        .find(|c| c["name"].as_str() == Some("record_upgrade"))
        .map(|c| serde_json::to_string(&c["arguments"]).unwrap())
        .expect("demo.toml calls record_upgrade");
    let mut db = DemoDb::seeded();
    let done = db.call("record_upgrade", &args).unwrap();
    assert_eq!(done["to_plan"], "Pro");
    assert_eq!(done["from_plan"], "Standard");
    // The simulated agent quotes $79/month, the catalogue agrees: recorded, and said so.
    if done["agreed_price"] != "$79/month" && done["agreed_price"] != "$79.00/month" {
        assert!(done["note"].as_str().unwrap().contains("list price $79.00"));
    }
}

#[test]
fn the_demo_agents_builtin_tools_are_all_implemented() {
    let agents = AgentsFile::embedded_default().unwrap();
    let mut seen = Vec::new();
    for agent in &agents.agents {
        for tool in &agent.tools {
            if tool.backend == Backend::Builtin {
                assert!(DemoDb::handles(&tool.name), "{}", tool.name);
                seen.push(tool.name.as_str());
            }
        }
    }
    seen.sort();
    let mut all = BUILTIN_TOOLS.to_vec();
    all.sort();
    assert_eq!(seen, all);
}

#[test]
fn record_upgrade_refusals() {
    let mut db = DemoDb::seeded();
    let err = |db: &mut DemoDb, args: Value| call(db, "record_upgrade", args).unwrap_err();

    let e = err(
        &mut db,
        json!({"customer_id": "C-1042", "to_plan": "Platinum"}),
    );
    assert!(matches!(e, ToolError::UnknownPlan { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "no plan named \"Platinum\"; the plans are Basic ($19.00/month), Standard ($49.00/month), Pro ($79.00/month)"
    );

    let e = err(
        &mut db,
        json!({"customer_id": "C-1042", "to_plan": "Basic"}),
    );
    assert!(matches!(e, ToolError::NotAnUpgrade { .. }), "{e:?}");
    assert!(e.to_string().contains("not an upgrade"), "{e}");

    let e = err(
        &mut db,
        json!({"customer_id": "C-1042", "to_plan": "Standard"}),
    );
    assert_eq!(e.code(), "not_an_upgrade");

    let e = err(
        &mut db,
        json!({"customer_id": "C-1042", "from_plan": "Basic", "to_plan": "Pro"}),
    );
    assert_eq!(
        e,
        ToolError::PlanMismatch {
            customer: "C-1042".into(),
            current: "Standard".into(),
            claimed: "Basic".into()
        }
    );

    let e = err(&mut db, json!({"customer_id": "C-1042"}));
    assert_eq!(e, ToolError::BadArguments("missing \"to_plan\"".into()));
    let e = err(&mut db, json!({"customer_id": "C-1042", "to_plan": 3}));
    assert_eq!(e.code(), "bad_arguments");

    // Nothing changed.
    let c = db.customer("C-1042").unwrap();
    assert_eq!(c.plan, "Standard");
    assert!(c.upgrades.is_empty());
}

#[test]
fn errors_are_results_not_panics() {
    let mut db = DemoDb::seeded();
    let e = db.call("refund_everything", "{}").unwrap_err();
    assert_eq!(e, ToolError::UnknownTool("refund_everything".into()));
    assert_eq!(e.to_json()["code"], "unknown_tool");
    assert!(e.to_json()["error"]
        .as_str()
        .unwrap()
        .contains("check_billing"));

    for bad in ["{", "[1,2]", "\"C-1042\"", "null"] {
        let e = db.call("check_billing", bad).unwrap_err();
        assert_eq!(e.code(), "bad_arguments", "{bad}: {e}");
    }
    // Empty arguments are an empty object: customer_id is missing.
    let e = db.call("check_billing", "").unwrap_err();
    assert!(e.to_string().contains("missing \"customer_id\""), "{e}");
    let e = call(&mut db, "check_billing", json!({"customer_id": ""})).unwrap_err();
    assert_eq!(e.code(), "bad_arguments");
    let e = call(&mut db, "check_billing", json!({"customer_id": ["C-1042"]})).unwrap_err();
    assert!(e.to_string().contains("not an array"), "{e}");

    let e = call(
        &mut db,
        "get_upgrade_options",
        json!({"customer_id": "C-9999"}),
    )
    .unwrap_err();
    assert_eq!(e, ToolError::UnknownCustomer("C-9999".into()));
    assert!(e.to_string().contains("C-9999"));
    let e = call(
        &mut db,
        "record_upgrade",
        json!({"customer_id": "X", "to_plan": "Pro"}),
    )
    .unwrap_err();
    assert_eq!(e.code(), "unknown_customer");
}

#[test]
fn customer_for_caller_by_number_or_sip_user() {
    let db = DemoDb::seeded();
    let id = |identity: &str| db.customer_for_caller(identity).map(|c| c.id.as_str());
    assert_eq!(
        id("\"Jane Doe\" <sip:alice@192.0.2.10>;tag=a1"),
        Some("C-1042")
    );
    assert_eq!(
        id("<sip:ALICE@pbx.example.com:5060;transport=tcp>"),
        Some("C-1042")
    );
    assert_eq!(
        id("sip:+15550100@carrier.example;user=phone"),
        Some("C-1042")
    );
    assert_eq!(id("<tel:+1-555-0100>"), Some("C-1042"));
    assert_eq!(id("+15550100"), Some("C-1042"));
    assert_eq!(id("alice"), Some("C-1042"));
    assert_eq!(id("sip:bob@example.com"), Some("C-2077"));
    assert_eq!(id("<sip:+15550122@example.com>"), Some("C-3150"));
    assert_eq!(id("sip:mallory@example.com"), None);
    assert_eq!(id("sip:+15559999@example.com"), None);
    assert_eq!(id("<sip:anonymous@anonymous.invalid>"), None);
    assert_eq!(id(""), None);

    let c = db.customer_for_caller("alice").unwrap();
    assert_eq!(
        c.state(),
        json!({"customer_id": "C-1042", "name": "Jane Doe", "plan": "Standard", "status": "active", "next_renewal": "2026-02-15"})
    );
}

#[test]
fn snapshots_are_independent() {
    let mut db = DemoDb::seeded();
    let before = db.clone();
    call(
        &mut db,
        "record_upgrade",
        json!({"customer_id": "C-1042", "to_plan": "Pro"}),
    )
    .unwrap();
    assert_ne!(db, before);
    assert_eq!(before.customer("C-1042").unwrap().plan, "Standard");
    assert_eq!(before, DemoDb::seeded());
    assert_eq!(
        db.plans()
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["Basic", "Standard", "Pro"]
    );
    assert_eq!(db.customers().len(), 3);
}
