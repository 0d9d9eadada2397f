#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod agents;
pub mod builtin;
mod call;
mod envelope;
mod tools;

pub use agents::{
    Agent, AgentsFile, Backend, ConfigError, LoadError, OnUnavailable, Rule, ToolDef, VoiceMode,
    DEFAULT_VOICE, DEFAULT_WEBHOOK_RETRIES, DEFAULT_WEBHOOK_TIMEOUT_MS, EMBEDDED_DEFAULT,
    EMBEDDED_NAME, MAX_AGENT_NAME, MAX_WEBHOOK_RETRIES, WEBHOOK_TIMEOUT_RANGE_MS,
};
pub use call::{
    preservation_score, Action, CallRouter, CallSummary, HandoffEvent, SlotTable, Slots,
    NARRATION_PURPOSE, QUEUE_CHECK, QUEUE_ETA_PER_POSITION, QUEUE_UPDATE, TRANSCRIPT_BUDGET,
};
pub use envelope::{
    fit_transcript, merge, Envelope, EnvelopeError, Role, Sentiment, Turn, Urgency,
    ENVELOPE_VERSION, MAX_CUSTOMER_STATE_CHARS, MAX_ENTITIES, MAX_ENTITY_KEY_CHARS,
    MAX_ENTITY_VALUE_CHARS, MAX_INTENT_CHARS, MAX_ISSUE_CHARS, MAX_REASON_CHARS,
    MAX_RESOLVED_ISSUES, MAX_SUMMARY_CHARS, MAX_SUMMARY_LINE_CHARS,
};
pub use tools::{
    business_tool, handoff_parameters, handoff_tool, handoff_tool_name, sanitize, HANDOFF_PREFIX,
};
