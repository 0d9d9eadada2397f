//! The context envelope a handoff carries: typed, versioned, serde.
//!
//! Two sources fill it. The model supplies the arguments of a `handoff_to_<agent>` call
//! ([`Envelope::from_tool_arguments`]: validated, never trusted blindly); the bridge holds what it
//! saw (transcripts, tool results, the previous envelope). [`merge`] combines them so that a thin
//! or sloppy tool call loses nothing, and [`fit_transcript`] keeps the transcript within a size
//! budget.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The envelope format version this crate writes.
pub const ENVELOPE_VERSION: u32 = 1;

/// Longest `summary`, in characters.
pub const MAX_SUMMARY_CHARS: usize = 2_000;
/// Longest `intent`, in characters.
pub const MAX_INTENT_CHARS: usize = 200;
/// Longest `handoff_reason`, in characters.
pub const MAX_REASON_CHARS: usize = 500;
/// Most `resolved_issues`.
pub const MAX_RESOLVED_ISSUES: usize = 32;
/// Longest resolved issue, in characters.
pub const MAX_ISSUE_CHARS: usize = 500;
/// Most `entities`.
pub const MAX_ENTITIES: usize = 64;
/// Longest entity name, in characters.
pub const MAX_ENTITY_KEY_CHARS: usize = 64;
/// Longest entity value, in characters.
pub const MAX_ENTITY_VALUE_CHARS: usize = 500;
/// Largest `customer_state`, in characters of its compact JSON.
pub const MAX_CUSTOMER_STATE_CHARS: usize = 8_000;
/// Longest summary line [`fit_transcript`] writes for older turns, in characters.
pub const MAX_SUMMARY_LINE_CHARS: usize = 400;

/// How the caller feels, as the model judged it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sentiment {
    /// Pleased, cooperative.
    Positive,
    /// Neither.
    Neutral,
    /// Does not understand something (the seed's "charged $49 and don't know why").
    Confused,
    /// Impatient, annoyed.
    Frustrated,
    /// Upset, raising their voice.
    Angry,
    /// Unhappy in another way.
    Negative,
}

impl Sentiment {
    /// The wire names, in schema order.
    pub const NAMES: [&'static str; 6] = [
        "positive",
        "neutral",
        "confused",
        "frustrated",
        "angry",
        "negative",
    ];
    const ALL: [Sentiment; 6] = [
        Sentiment::Positive,
        Sentiment::Neutral,
        Sentiment::Confused,
        Sentiment::Frustrated,
        Sentiment::Angry,
        Sentiment::Negative,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    fn parse(s: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .position(|n| *n == s)
            .map(|i| Self::ALL[i])
    }
}

/// How soon the receiving agent must act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    /// Can wait.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Act first (service down, caller about to leave).
    High,
}

impl Urgency {
    /// The wire names, in schema order.
    pub const NAMES: [&'static str; 3] = ["low", "normal", "high"];
    const ALL: [Urgency; 3] = [Urgency::Low, Urgency::Normal, Urgency::High];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    fn parse(s: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .position(|n| *n == s)
            .map(|i| Self::ALL[i])
    }
}

/// Who spoke a transcript turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The caller.
    User,
    /// An agent.
    Assistant,
    /// A note the bridge wrote, e.g. the summary of older turns from [`fit_transcript`].
    System,
}

impl Role {
    fn speaker(self) -> &'static str {
        match self {
            Role::User => "caller",
            Role::Assistant => "agent",
            Role::System => "note",
        }
    }
}

/// One transcript turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    /// Who spoke.
    pub role: Role,
    /// What was said (the transcript).
    pub text: String,
}

impl Turn {
    /// A turn.
    pub fn new(role: Role, text: impl Into<String>) -> Self {
        Self {
            role,
            text: text.into(),
        }
    }
}

/// The context a handoff carries to the receiving agent.
///
/// Optional fields are `None` or empty when nobody knew them; [`merge`] treats those as absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Envelope {
    /// Format version ([`ENVELOPE_VERSION`]).
    pub version: u32,
    /// What happened so far and what the caller wants, in a few sentences.
    pub summary: String,
    /// Recent turns verbatim, older ones summarised ([`fit_transcript`]); the bridge's.
    pub transcript: Vec<Turn>,
    /// Issues already settled, so the next agent does not reopen them.
    pub resolved_issues: Vec<String>,
    /// The caller's goal, e.g. `upgrade_inquiry`.
    pub intent: Option<String>,
    /// Account, plan, billing status: from tool results and the customer store.
    pub customer_state: Map<String, Value>,
    /// How the caller feels.
    pub sentiment: Option<Sentiment>,
    /// Key facts by name: products, dates, amounts (`amount = "$49.00"`).
    pub entities: BTreeMap<String, String>,
    /// Why the call is handed over.
    pub handoff_reason: String,
    /// How soon to act; `None` reads as [`Urgency::Normal`].
    pub urgency: Option<Urgency>,
}

impl Default for Envelope {
    fn default() -> Self {
        Self {
            version: ENVELOPE_VERSION,
            summary: String::new(),
            transcript: Vec::new(),
            resolved_issues: Vec::new(),
            intent: None,
            customer_state: Map::new(),
            sentiment: None,
            entities: BTreeMap::new(),
            handoff_reason: String::new(),
            urgency: None,
        }
    }
}

/// The arguments of a handoff tool call are not a valid envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Not parseable JSON.
    #[error("arguments are not JSON: {0}")]
    NotJson(String),
    /// JSON, but not an object.
    #[error("arguments must be a JSON object")]
    NotAnObject,
    /// A field of the wrong JSON type.
    #[error("{field}: expected {expected}")]
    WrongType {
        /// The field, e.g. `entities.amount`.
        field: String,
        /// What the schema asks for.
        expected: &'static str,
    },
    /// An enum field with a value outside the schema.
    #[error("{field}: {value:?} is not one of {allowed:?}")]
    BadEnum {
        /// The field.
        field: &'static str,
        /// What the model sent.
        value: String,
        /// The accepted values.
        allowed: &'static [&'static str],
    },
    /// A text longer than allowed.
    #[error("{field}: {len} characters, at most {max}")]
    TooLong {
        /// The field.
        field: String,
        /// Its length in characters.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A list or map with too many entries.
    #[error("{field}: {len} entries, at most {max}")]
    TooMany {
        /// The field.
        field: &'static str,
        /// How many were sent.
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl Envelope {
    /// Parses and validates the arguments of a `handoff_to_<agent>` call.
    ///
    /// Rules: the arguments are a JSON object; each known field has its schema type (strings,
    /// a list of strings, objects); `sentiment` and `urgency` are one of their enum values; texts
    /// and lists stay within the `MAX_*` limits of this module. Texts are trimmed; `null` and
    /// empty strings count as absent (so `summary` and `handoff_reason`, required in the schema
    /// to steer the model, may still be absent here: [`merge`] fills them from the bridge).
    /// Entity values may be strings, numbers or booleans (numbers and booleans become their JSON
    /// text). Unknown fields, and `version`/`transcript` (the bridge's), are ignored.
    pub fn from_tool_arguments(json: &str) -> Result<Envelope, EnvelopeError> {
        let value: Value =
            serde_json::from_str(json).map_err(|e| EnvelopeError::NotJson(e.to_string()))?;
        let Value::Object(obj) = value else {
            return Err(EnvelopeError::NotAnObject);
        };
        let mut env = Envelope {
            summary: text(&obj, "summary", MAX_SUMMARY_CHARS)?.unwrap_or_default(),
            intent: text(&obj, "intent", MAX_INTENT_CHARS)?,
            handoff_reason: text(&obj, "handoff_reason", MAX_REASON_CHARS)?.unwrap_or_default(),
            ..Envelope::default()
        };
        if let Some(v) = present(&obj, "resolved_issues") {
            let Value::Array(items) = v else {
                return Err(wrong("resolved_issues", "an array of strings"));
            };
            for (i, item) in items.iter().enumerate() {
                let field = || format!("resolved_issues[{i}]");
                let Value::String(s) = item else {
                    return Err(wrong(field(), "a string"));
                };
                let s = s.trim();
                check_len(field, s, MAX_ISSUE_CHARS)?;
                if !s.is_empty() && !env.resolved_issues.iter().any(|x| same_text(x, s)) {
                    env.resolved_issues.push(s.to_string());
                }
            }
            if env.resolved_issues.len() > MAX_RESOLVED_ISSUES {
                return Err(EnvelopeError::TooMany {
                    field: "resolved_issues",
                    len: env.resolved_issues.len(),
                    max: MAX_RESOLVED_ISSUES,
                });
            }
        }
        if let Some(v) = present(&obj, "customer_state") {
            let Value::Object(m) = v else {
                return Err(wrong("customer_state", "an object"));
            };
            let len = Value::Object(m.clone()).to_string().chars().count();
            if len > MAX_CUSTOMER_STATE_CHARS {
                return Err(EnvelopeError::TooLong {
                    field: "customer_state".into(),
                    len,
                    max: MAX_CUSTOMER_STATE_CHARS,
                });
            }
            env.customer_state = m.clone();
        }
        if let Some(v) = present(&obj, "entities") {
            let Value::Object(m) = v else {
                return Err(wrong("entities", "an object of strings"));
            };
            if m.len() > MAX_ENTITIES {
                return Err(EnvelopeError::TooMany {
                    field: "entities",
                    len: m.len(),
                    max: MAX_ENTITIES,
                });
            }
            for (k, v) in m {
                let field = || format!("entities.{k}");
                let value = match v {
                    Value::Null => continue,
                    Value::String(s) => s.trim().to_string(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    Value::Array(_) | Value::Object(_) => {
                        return Err(wrong(field(), "a string, number or boolean"))
                    }
                };
                let key = k.trim();
                check_len(field, key, MAX_ENTITY_KEY_CHARS)?;
                check_len(field, &value, MAX_ENTITY_VALUE_CHARS)?;
                if !key.is_empty() && !value.is_empty() {
                    env.entities.insert(key.to_string(), value);
                }
            }
        }
        if let Some(s) = enum_text(&obj, "sentiment", &Sentiment::NAMES)? {
            env.sentiment = Sentiment::parse(&s);
        }
        if let Some(s) = enum_text(&obj, "urgency", &Urgency::NAMES)? {
            env.urgency = Urgency::parse(&s);
        }
        Ok(env)
    }

    /// `urgency`, with absent read as [`Urgency::Normal`].
    pub fn urgency(&self) -> Urgency {
        self.urgency.unwrap_or_default()
    }
}

fn present<'a>(obj: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    obj.get(field).filter(|v| !v.is_null())
}

fn wrong(field: impl Into<String>, expected: &'static str) -> EnvelopeError {
    EnvelopeError::WrongType {
        field: field.into(),
        expected,
    }
}

fn check_len(field: impl Fn() -> String, s: &str, max: usize) -> Result<(), EnvelopeError> {
    let len = s.chars().count();
    if len > max {
        return Err(EnvelopeError::TooLong {
            field: field(),
            len,
            max,
        });
    }
    Ok(())
}

/// A trimmed string field; `None` when absent, null or empty.
fn text(
    obj: &Map<String, Value>,
    field: &str,
    max: usize,
) -> Result<Option<String>, EnvelopeError> {
    let Some(v) = present(obj, field) else {
        return Ok(None);
    };
    let Value::String(s) = v else {
        return Err(wrong(field, "a string"));
    };
    let s = s.trim();
    check_len(|| field.to_string(), s, max)?;
    Ok((!s.is_empty()).then(|| s.to_string()))
}

fn enum_text(
    obj: &Map<String, Value>,
    field: &'static str,
    allowed: &'static [&'static str],
) -> Result<Option<String>, EnvelopeError> {
    let Some(s) = text(obj, field, 64)? else {
        return Ok(None);
    };
    let lower = s.to_ascii_lowercase();
    if !allowed.contains(&lower.as_str()) {
        return Err(EnvelopeError::BadEnum {
            field,
            value: s,
            allowed,
        });
    }
    Ok(Some(lower))
}

fn same_text(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// Combines what the model supplied in a handoff call with what the bridge already holds.
///
/// - `version`: [`ENVELOPE_VERSION`].
/// - `summary`, `intent`, `sentiment`, `handoff_reason`, `urgency`: the model's when present and
///   non-empty (it is the newer judgement), else the bridge's.
/// - `transcript`: the bridge's (it heard the call); the model's only when the bridge has none.
/// - `resolved_issues`: the bridge's, then the model's that are new (case-insensitive).
/// - `entities`: the union; on the same name the model's value wins.
/// - `customer_state`: the union; on the same key the bridge's value wins, because it comes from
///   tool results and the customer store while the model only paraphrases them.
pub fn merge(model: Envelope, bridge: Envelope) -> Envelope {
    let pick = |m: String, b: String| if m.trim().is_empty() { b } else { m };
    let mut resolved_issues = bridge.resolved_issues;
    for issue in model.resolved_issues {
        if !resolved_issues.iter().any(|x| same_text(x, &issue)) {
            resolved_issues.push(issue);
        }
    }
    let mut entities = bridge.entities;
    entities.extend(
        model
            .entities
            .into_iter()
            .filter(|(k, v)| !k.trim().is_empty() && !v.trim().is_empty()),
    );
    let mut customer_state = model.customer_state;
    customer_state.extend(bridge.customer_state);
    Envelope {
        version: ENVELOPE_VERSION,
        summary: pick(model.summary, bridge.summary),
        transcript: if bridge.transcript.is_empty() {
            model.transcript
        } else {
            bridge.transcript
        },
        resolved_issues,
        intent: model
            .intent
            .filter(|s| !s.trim().is_empty())
            .or(bridge.intent),
        customer_state,
        sentiment: model.sentiment.or(bridge.sentiment),
        entities,
        handoff_reason: pick(model.handoff_reason, bridge.handoff_reason),
        urgency: model.urgency.or(bridge.urgency),
    }
}

/// Fits a transcript into `max_chars` characters of turn text.
///
/// If all turns fit, they are returned unchanged. Otherwise the most recent turns are kept
/// verbatim, newest first, while they fit in `max_chars` minus the summary allowance
/// (`max_chars / 4`, at most [`MAX_SUMMARY_LINE_CHARS`]); the older turns become one
/// [`Role::System`] turn in front, `Earlier (N turns): caller: ...; agent: ...`, each excerpt cut
/// short and the line cut to the allowance. If even the newest turn does not fit, its beginning is
/// kept, cut with `…`. The allowance is dropped (older turns are left out) when it would be under
/// 16 characters. The total text of the result never exceeds `max_chars`.
pub fn fit_transcript(turns: &[Turn], max_chars: usize) -> Vec<Turn> {
    let len = |t: &Turn| t.text.chars().count();
    if turns.iter().map(len).sum::<usize>() <= max_chars {
        return turns.to_vec();
    }
    let mut allowance = (max_chars / 4).min(MAX_SUMMARY_LINE_CHARS);
    if allowance < 16 {
        allowance = 0;
    }
    let recent_budget = max_chars - allowance;
    let mut used = 0;
    let mut first_kept = turns.len();
    while first_kept > 0 {
        let l = len(&turns[first_kept - 1]);
        if used + l > recent_budget {
            break;
        }
        used += l;
        first_kept -= 1;
    }
    let mut recent: Vec<Turn> = turns[first_kept..].to_vec();
    if recent.is_empty() {
        if let Some(last) = turns.last() {
            if recent_budget > 0 {
                recent.push(Turn::new(last.role, cut(&last.text, recent_budget)));
            }
            first_kept = turns.len() - 1;
        }
    }
    let older = &turns[..first_kept];
    let mut out = Vec::with_capacity(recent.len() + 1);
    if !older.is_empty() && allowance > 0 {
        out.push(Turn::new(Role::System, summary_line(older, allowance)));
    }
    out.extend(recent);
    out
}

/// `Earlier (N turns): caller: ...; agent: ...`, at most `max` characters.
fn summary_line(older: &[Turn], max: usize) -> String {
    let n = older.len();
    let header = format!("Earlier ({n} turn{}): ", if n == 1 { "" } else { "s" });
    let room = max.saturating_sub(header.chars().count());
    let per_turn = (room / older.len().max(1)).max(24);
    let body = older
        .iter()
        .map(|t| {
            let words = t.text.split_whitespace().collect::<Vec<_>>().join(" ");
            format!("{}: {}", t.role.speaker(), cut(&words, per_turn))
        })
        .collect::<Vec<_>>()
        .join("; ");
    cut(&(header + &body), max)
}

/// `s` cut to at most `max` characters, ending in `…` when cut.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.truncate(out.trim_end().len());
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_counts_characters_and_marks_the_cut() {
        assert_eq!(cut("hello", 5), "hello");
        assert_eq!(cut("hello world", 7), "hello…");
        assert_eq!(cut("ééééé", 3), "éé…");
        assert_eq!(cut("abc", 0), "");
        assert_eq!(cut("abc", 1), "…");
    }

    #[test]
    fn summary_line_collapses_whitespace_and_names_speakers() {
        let turns = [
            Turn::new(Role::User, "I was\ncharged   twice"),
            Turn::new(Role::Assistant, "Let me check."),
        ];
        assert_eq!(
            summary_line(&turns, 400),
            "Earlier (2 turns): caller: I was charged twice; agent: Let me check."
        );
        assert_eq!(
            summary_line(&turns[..1], 400),
            "Earlier (1 turn): caller: I was charged twice"
        );
        assert!(summary_line(&turns, 20).chars().count() <= 20);
    }

    #[test]
    fn enum_names_match_serde() {
        for s in Sentiment::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
            assert_eq!(Sentiment::parse(s.as_str()), Some(s));
        }
        for u in Urgency::ALL {
            assert_eq!(serde_json::to_value(u).unwrap(), u.as_str());
            assert_eq!(Urgency::parse(u.as_str()), Some(u));
        }
    }
}
