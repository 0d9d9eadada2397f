//! The function tools of an agent's session: its business tools plus one generated
//! `handoff_to_<target>` tool per allowed handoff target, whose parameters are the model-supplied
//! fields of the [`Envelope`](crate::Envelope).

use realtime::FunctionTool;
use serde_json::{json, Value};

use crate::agents::{Agent, AgentsFile, ToolDef};
use crate::envelope::{
    Sentiment, Urgency, MAX_ENTITIES, MAX_INTENT_CHARS, MAX_ISSUE_CHARS, MAX_REASON_CHARS,
    MAX_RESOLVED_ISSUES, MAX_SUMMARY_CHARS,
};

/// The prefix of every generated handoff tool; business tools may not use it.
pub const HANDOFF_PREFIX: &str = "handoff_to_";

/// `name` lower-cased, with every character outside `[a-z0-9_]` replaced by `_`
/// (`"Billing Support"` -> `"billing_support"`).
pub fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `handoff_to_<sanitized target>`.
pub fn handoff_tool_name(target: &str) -> String {
    format!("{HANDOFF_PREFIX}{}", sanitize(target))
}

/// The JSON schema of a handoff tool's arguments: the envelope fields the model supplies.
/// `summary` and `handoff_reason` are required; the bridge adds the transcript itself.
pub fn handoff_parameters() -> Value {
    json!({
        "type": "object",
        "properties": {
            "summary": {
                "type": "string",
                "maxLength": MAX_SUMMARY_CHARS,
                "description": "What happened so far and what the caller wants, in a few sentences, so the next agent can continue without asking again."
            },
            "intent": {
                "type": "string",
                "maxLength": MAX_INTENT_CHARS,
                "description": "The caller's goal as a short label, e.g. billing_question or upgrade_inquiry."
            },
            "resolved_issues": {
                "type": "array",
                "maxItems": MAX_RESOLVED_ISSUES,
                "items": {"type": "string", "maxLength": MAX_ISSUE_CHARS},
                "description": "Issues already settled in this call, so they are not reopened."
            },
            "customer_state": {
                "type": "object",
                "description": "What is known about the customer's account: id, plan, billing status."
            },
            "sentiment": {
                "type": "string",
                "enum": Sentiment::NAMES,
                "description": "How the caller feels."
            },
            "entities": {
                "type": "object",
                "maxProperties": MAX_ENTITIES,
                "additionalProperties": {"type": "string"},
                "description": "Key facts by name: products, plans, dates, amounts, ids (e.g. {\"amount\": \"$49.00\", \"date\": \"January 15\"})."
            },
            "handoff_reason": {
                "type": "string",
                "maxLength": MAX_REASON_CHARS,
                "description": "Why the caller is handed over."
            },
            "urgency": {
                "type": "string",
                "enum": Urgency::NAMES,
                "description": "How soon the next agent must act; normal unless the caller is in a hurry or something is broken."
            }
        },
        "required": ["summary", "handoff_reason"]
    })
}

/// The `handoff_to_<target>` tool. Its description says when to use it (from the target's name
/// and `description`) and what to tell the caller first (`narration`, when configured).
pub fn handoff_tool(target: &Agent, narration: Option<&str>) -> FunctionTool {
    let what = match &target.description {
        Some(d) => format!("the {} agent, who handles {d}", target.name),
        None => format!("the {} agent", target.name),
    };
    let say = match narration {
        Some(text) => format!("First tell the caller: \"{text}\""),
        None => format!(
            "First tell the caller in one sentence that you are connecting them to {} and why, \
             and that they will not need to repeat themselves.",
            target.name
        ),
    };
    let description = format!(
        "Hand the call over to {what}. Use it when the caller needs {} and you cannot finish \
         the request yourself. {say} Then call this tool with everything you learned: the next \
         agent starts from these arguments.",
        target.name
    );
    FunctionTool::new(
        handoff_tool_name(&target.name),
        description,
        handoff_parameters(),
    )
}

/// A business tool as a Realtime function tool.
pub fn business_tool(tool: &ToolDef) -> FunctionTool {
    FunctionTool::new(
        tool.name.clone(),
        tool.description.clone(),
        tool.parameters.clone(),
    )
}

impl AgentsFile {
    /// The tools of `agent`'s session: its business tools in file order, then one handoff tool
    /// per allowed target in `handoffs` order.
    pub fn session_tools(&self, agent: &Agent) -> Vec<FunctionTool> {
        let business = agent.tools.iter().map(business_tool);
        let handoffs = agent.handoffs.iter().filter_map(|t| {
            let target = self.agent(t)?;
            Some(handoff_tool(
                target,
                agent.narration.get(t).map(String::as_str),
            ))
        });
        business.chain(handoffs).collect()
    }
}
