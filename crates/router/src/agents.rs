//! The agents file: model, loader and load-time validation (format: the crate's `README.md`).

use std::collections::{BTreeMap, HashMap};

use std::path::Path;
use toml_pos::{field_at, line_of};

use realtime::Voice;
use serde::Deserialize;
use toml::Spanned;

use crate::tools::{handoff_tool_name, sanitize, HANDOFF_PREFIX};

/// The demo agents file shipped in `fixtures/config/agents.toml`.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../../fixtures/config/agents.toml");

/// The file name errors of [`AgentsFile::embedded_default`] carry.
pub const EMBEDDED_NAME: &str = "agents.toml (embedded default)";

/// Longest agent name, after [`sanitize`], so that `handoff_to_<name>` fits the Realtime tool name
/// limit of 64 characters.
pub const MAX_AGENT_NAME: usize = 64 - HANDOFF_PREFIX.len();

/// Default webhook timeout.
pub const DEFAULT_WEBHOOK_TIMEOUT_MS: u64 = 5_000;

/// Default webhook retries after the first attempt.
pub const DEFAULT_WEBHOOK_RETRIES: u32 = 1;

/// Highest accepted `retries` of a webhook backend.
pub const MAX_WEBHOOK_RETRIES: u32 = 10;

/// Accepted `timeout_ms` of a webhook backend.
pub const WEBHOOK_TIMEOUT_RANGE_MS: std::ops::RangeInclusive<u64> = 1..=120_000;

/// How voices map to agents (DESIGN.md "Handoffs": modes A, B and C).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VoiceMode {
    /// Mode A: one Realtime session, one voice (the entry agent's) for the whole call; a handoff
    /// is a `session.update`.
    #[default]
    Same,
    /// Mode B: each agent speaks in its own voice; a handoff opens a second session while the
    /// caller hears nothing new.
    PerAgent,
    /// Mode C: like `per_agent`, but the outgoing agent speaks the narration in its own voice
    /// while the new session warms up.
    Hybrid,
}

/// What happens when a handoff target cannot take the call (over capacity, its session fails to
/// open, or its backend says unavailable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnUnavailable {
    /// Hold the caller with the context kept, telling position and ETA, until a slot frees.
    Queue,
    /// Store the envelope and the caller's number for a callback.
    Callback,
    /// The origin agent resumes with a function result that says why (the default).
    #[default]
    Return,
}

/// Where a business tool runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// The bridge's built-in demo backend (seeded customers, plans and charges).
    Builtin,
    /// An HTTP webhook: JSON POST of the arguments.
    Webhook {
        /// `http://` or `https://` URL.
        url: String,
        /// Per attempt.
        timeout_ms: u64,
        /// Attempts after the first one.
        retries: u32,
    },
}

/// A business tool an agent may call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDef {
    /// `^[a-zA-Z0-9_-]{1,64}$`, unique within the agent, not starting with `handoff_to_`.
    pub name: String,
    /// Tells the model when to call it.
    pub description: String,
    /// JSON Schema of the arguments: an object schema (`type = "object"`).
    pub parameters: serde_json::Value,
    /// Where it runs.
    pub backend: Backend,
    /// A successful call is a conversion (the seed's metric: an outcome tool such as
    /// `record_upgrade` after a support -> sales handoff).
    pub conversion: bool,
}

/// One agent of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Agent {
    /// Unique; `handoff_to_<sanitized name>` is its handoff tool.
    pub name: String,
    /// Short "what this agent handles", used in the handoff tools that lead to it.
    pub description: Option<String>,
    /// The Realtime session instructions.
    pub instructions: String,
    /// Its own voice; `None`: the file's `voice`.
    pub voice: Option<Voice>,
    /// Concurrent calls it may hold; `None`: unlimited.
    pub capacity: Option<u32>,
    /// Policy when it cannot take a handoff.
    pub on_unavailable: OnUnavailable,
    /// When true it may finish the call itself even though it has handoffs (see
    /// [`AgentsFile::can_end_call`]).
    pub ends_call: bool,
    /// Agents it may hand the call to, in file order.
    pub handoffs: Vec<String>,
    /// Narration per handoff target: what this agent says before handing over.
    pub narration: BTreeMap<String, String>,
    /// Its business tools.
    pub tools: Vec<ToolDef>,
    /// It ends calls with a DTMF satisfaction survey: a digit 1-5 pressed while it has the
    /// caller is the call's CSAT.
    pub survey: bool,
}

/// A validated agents file.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentsFile {
    /// The file name errors and logs use.
    pub source: String,
    /// The agent that answers every call.
    pub entry: String,
    /// How voices map to agents.
    pub voice_mode: VoiceMode,
    /// The voice of agents that name none.
    pub voice: Voice,
    /// In file order.
    pub agents: Vec<Agent>,
    /// Where callback requests (policy `callback`) are POSTed as JSON, if anywhere.
    pub callback_webhook: Option<String>,
}

/// Default of the file's `voice`.
pub const DEFAULT_VOICE: &str = "marin";

/// One violated rule, located: `file:line: field: rule`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {field}: {rule}")]
pub struct ConfigError {
    /// The file name given to the loader.
    pub file: String,
    /// 1-based line of the offending value.
    pub line: usize,
    /// Dotted path of the field, e.g. `agent[1].handoffs[0]`.
    pub field: String,
    /// What is wrong.
    pub rule: Rule,
}

/// The rules of the agents file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rule {
    /// Not TOML, an unknown key, a missing key or a value of the wrong type (toml's message).
    #[error("{0}")]
    Syntax(String),
    /// No `[[agent]]` at all.
    #[error("the file defines no [[agent]]")]
    NoAgents,
    /// A required text is empty.
    #[error("must not be empty")]
    Empty,
    /// Two agents with one name.
    #[error("duplicate agent name {name:?} (first defined at line {first_line})")]
    DuplicateAgent {
        /// The name.
        name: String,
        /// Where the first one is.
        first_line: usize,
    },
    /// Two agent names give one handoff tool name.
    #[error("agent {name:?} and agent {other:?} both give the handoff tool {tool:?}")]
    HandoffNameClash {
        /// This agent.
        name: String,
        /// The earlier agent.
        other: String,
        /// The shared tool name.
        tool: String,
    },
    /// The sanitized name is too long for a tool name.
    #[error("agent name {name:?} is longer than {MAX_AGENT_NAME} characters; handoff_to_<name> would exceed 64")]
    NameTooLong {
        /// The name.
        name: String,
    },
    /// `entry` or a handoff names no agent of the file.
    #[error("unknown agent {0:?}")]
    UnknownAgent(String),
    /// An agent lists itself as a handoff target.
    #[error("agent {0:?} cannot hand off to itself")]
    HandoffToSelf(String),
    /// A handoff target listed twice.
    #[error("handoff target {0:?} listed twice")]
    DuplicateHandoff(String),
    /// A narration for a target that is not in `handoffs`.
    #[error("narration for {0:?}, which is not in this agent's handoffs")]
    NarrationWithoutHandoff(String),
    /// Some agent reachable from the entry can never reach an agent that ends the call.
    #[error("cycle without an exit: {path}; no agent reachable from {agent:?} can end the call (an agent ends the call when it has no handoffs or sets ends_call = true)")]
    CycleWithoutExit {
        /// The first agent in file order that is stuck.
        agent: String,
        /// The loop found from it, e.g. `support -> sales -> support`.
        path: String,
    },
    /// `capacity = 0`.
    #[error("capacity must be at least 1 (leave it out for no limit)")]
    ZeroCapacity,
    /// A voice name or id that is empty.
    #[error("voice must be a non-empty name or {{ id = \"...\" }}")]
    BadVoice,
    /// A tool name outside `^[a-zA-Z0-9_-]{1,64}$`.
    #[error("tool name {0:?} must match ^[a-zA-Z0-9_-]{{1,64}}$")]
    BadToolName(String),
    /// A tool name that a generated handoff tool uses or could use.
    #[error(
        "tool name {0:?} uses the prefix handoff_to_, reserved for the generated handoff tools"
    )]
    ReservedToolName(String),
    /// Two tools of one agent with one name.
    #[error("duplicate tool name {0:?} in this agent")]
    DuplicateTool(String),
    /// `parameters` is not an object schema.
    #[error("parameters must be a JSON-schema object with type = \"object\"")]
    BadParameters,
    /// `backend` is neither `"builtin"` nor a webhook table.
    #[error("backend must be \"builtin\" or {{ webhook = \"http(s)://...\", timeout_ms = .., retries = .. }}: {0}")]
    BadBackend(String),
}

/// Reading or validating an agents file failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read agents file {file}: {source}")]
    Read {
        /// The path.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file breaks one or more rules; all are listed, in line order.
    #[error("{}", display_all(.0))]
    Invalid(Vec<ConfigError>),
}

impl LoadError {
    /// The rule violations (empty for [`LoadError::Read`]).
    pub fn errors(&self) -> &[ConfigError] {
        match self {
            LoadError::Read { .. } => &[],
            LoadError::Invalid(v) => v,
        }
    }
}

fn display_all(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

// ---- raw TOML shape ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    entry: Spanned<String>,
    #[serde(default)]
    voice_mode: VoiceMode,
    voice: Option<Spanned<toml::Value>>,
    callback_webhook: Option<Spanned<String>>,
    #[serde(default)]
    agent: Vec<RawAgent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    name: Spanned<String>,
    description: Option<Spanned<String>>,
    instructions: Spanned<String>,
    voice: Option<Spanned<toml::Value>>,
    capacity: Option<Spanned<u32>>,
    #[serde(default)]
    on_unavailable: OnUnavailable,
    #[serde(default)]
    ends_call: bool,
    #[serde(default)]
    handoffs: Vec<Spanned<String>>,
    #[serde(default)]
    narration: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    tools: Vec<RawTool>,
    #[serde(default)]
    survey: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTool {
    name: Spanned<String>,
    description: Spanned<String>,
    parameters: Option<Spanned<serde_json::Value>>,
    backend: Option<Spanned<toml::Value>>,
    #[serde(default)]
    conversion: bool,
}

// ---- loading ----

impl AgentsFile {
    /// Reads and validates the agents file at `path`; errors name the path.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            file: file.clone(),
            source,
        })?;
        Self::parse(&text, &file)
    }

    /// Parses and validates `text`; `file` is the name errors carry.
    pub fn parse(text: &str, file: &str) -> Result<Self, LoadError> {
        Loader {
            file,
            text,
            errors: Vec::new(),
        }
        .load()
    }

    /// The demo file (`fixtures/config/agents.toml`), embedded in the crate.
    pub fn embedded_default() -> Result<Self, LoadError> {
        Self::parse(EMBEDDED_DEFAULT, EMBEDDED_NAME)
    }

    /// The agent called `name`.
    pub fn agent(&self, name: &str) -> Option<&Agent> {
        self.agents.iter().find(|a| a.name == name)
    }

    /// The entry agent (a loaded file always has it).
    pub fn entry_agent(&self) -> Option<&Agent> {
        self.agent(&self.entry)
    }

    /// The voice `agent` speaks in: with [`VoiceMode::Same`] the entry agent's for everyone,
    /// otherwise its own; an agent with no `voice` has the file's `voice`.
    pub fn voice_for(&self, agent: &Agent) -> Voice {
        let speaker = match self.voice_mode {
            VoiceMode::Same => self.entry_agent(),
            VoiceMode::PerAgent | VoiceMode::Hybrid => Some(agent),
        };
        speaker
            .and_then(|a| a.voice.clone())
            .unwrap_or_else(|| self.voice.clone())
    }

    /// Whether `agent` may finish the call itself: it has no handoffs or sets `ends_call`.
    pub fn can_end_call(agent: &Agent) -> bool {
        agent.handoffs.is_empty() || agent.ends_call
    }

    /// The target agent of `tool_name` if it is one of `from`'s handoff tools
    /// (`handoff_to_<target>` with the target in `from.handoffs`); `None` for business tools,
    /// unknown names and targets `from` may not hand off to.
    pub fn handoff_target(&self, from: &Agent, tool_name: &str) -> Option<&Agent> {
        from.handoffs
            .iter()
            .find(|t| handoff_tool_name(t) == tool_name)
            .and_then(|t| self.agent(t))
    }
}

struct Loader<'a> {
    file: &'a str,
    text: &'a str,
    errors: Vec<ConfigError>,
}

impl Loader<'_> {
    fn err(&mut self, offset: usize, field: impl Into<String>, rule: Rule) {
        self.errors.push(ConfigError {
            file: self.file.to_string(),
            line: line_of(self.text, offset),
            field: field.into(),
            rule,
        });
    }

    fn finish<T>(mut self, value: T) -> Result<T, LoadError> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            self.errors.sort_by_key(|e| e.line);
            Err(LoadError::Invalid(self.errors))
        }
    }

    fn load(mut self) -> Result<AgentsFile, LoadError> {
        let raw: RawFile = match toml::from_str(self.text) {
            Ok(raw) => raw,
            Err(e) => {
                let offset = e.span().map(|s| s.start).unwrap_or(0);
                // A missing top-level key is reported on the whole document.
                let field = if offset == 0 {
                    "(top level)".to_string()
                } else {
                    field_at(self.text, offset)
                };
                let message = e
                    .message()
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join("; ");
                self.err(offset, field, Rule::Syntax(message));
                return self.finish(AgentsFile {
                    source: String::new(),
                    entry: String::new(),
                    voice_mode: VoiceMode::Same,
                    voice: Voice::named(DEFAULT_VOICE),
                    agents: Vec::new(),
                    callback_webhook: None,
                });
            }
        };

        if raw.agent.is_empty() {
            self.err(0, "agent", Rule::NoAgents);
        }
        let voice = match &raw.voice {
            Some(v) => self.voice(v, "voice".into()),
            None => None,
        };

        // Names: unique, non-empty, and unique after sanitising (one handoff tool per agent).
        let mut first: HashMap<&str, (usize, usize)> = HashMap::new();
        let mut tool_names: HashMap<String, &str> = HashMap::new();
        for (i, a) in raw.agent.iter().enumerate() {
            let name = a.name.get_ref();
            let at = a.name.span().start;
            let field = format!("agent[{i}].name");
            if name.trim().is_empty() {
                self.err(at, field, Rule::Empty);
                continue;
            }
            if let Some(&(_, first_at)) = first.get(name.as_str()) {
                let first_line = line_of(self.text, first_at);
                self.err(
                    at,
                    field,
                    Rule::DuplicateAgent {
                        name: name.clone(),
                        first_line,
                    },
                );
                continue;
            }
            first.insert(name, (i, at));
            if sanitize(name).len() > MAX_AGENT_NAME {
                self.err(at, field, Rule::NameTooLong { name: name.clone() });
                continue;
            }
            let tool = handoff_tool_name(name);
            if let Some(other) = tool_names.get(&tool) {
                let rule = Rule::HandoffNameClash {
                    name: name.clone(),
                    other: other.to_string(),
                    tool: tool.clone(),
                };
                self.err(at, field, rule);
                continue;
            }
            tool_names.insert(tool, name);
        }

        if !raw.agent.is_empty() && !first.contains_key(raw.entry.get_ref().as_str()) {
            let rule = Rule::UnknownAgent(raw.entry.get_ref().clone());
            self.err(raw.entry.span().start, "entry", rule);
        }

        let mut agents = Vec::with_capacity(raw.agent.len());
        for (i, a) in raw.agent.iter().enumerate() {
            agents.push(self.agent(i, a, &first));
        }

        let callback_webhook = raw.callback_webhook.as_ref().and_then(|u| {
            let url = u.get_ref().trim().to_string();
            if http_url(&url) {
                Some(url)
            } else {
                let why = format!("{url:?} is not an http:// or https:// URL");
                self.err(u.span().start, "callback_webhook", Rule::BadBackend(why));
                None
            }
        });
        let file = AgentsFile {
            source: self.file.to_string(),
            entry: raw.entry.into_inner(),
            voice_mode: raw.voice_mode,
            voice: voice.unwrap_or_else(|| Voice::named(DEFAULT_VOICE)),
            agents,
            callback_webhook,
        };
        // Only meaningful on a graph whose edges all resolve.
        if self.errors.is_empty() {
            if let Some((i, rule)) = stuck_agent(&file) {
                let a = &raw.agent[i];
                let (at, field) = match a.handoffs.first() {
                    Some(h) => (h.span().start, format!("agent[{i}].handoffs")),
                    None => (a.name.span().start, format!("agent[{i}].name")),
                };
                self.err(at, field, rule);
            }
        }
        self.finish(file)
    }

    /// `voice = "marin"` or `voice = { id = "voice_..." }`.
    fn voice(&mut self, v: &Spanned<toml::Value>, field: String) -> Option<Voice> {
        let voice = match v.get_ref() {
            toml::Value::String(n) if !n.trim().is_empty() => Some(Voice::named(n.trim())),
            toml::Value::Table(t) if t.len() == 1 => match t.get("id") {
                Some(toml::Value::String(id)) if !id.trim().is_empty() => Some(Voice::Custom {
                    id: id.trim().to_string(),
                }),
                _ => None,
            },
            _ => None,
        };
        if voice.is_none() {
            self.err(v.span().start, field, Rule::BadVoice);
        }
        voice
    }

    fn agent(&mut self, i: usize, a: &RawAgent, names: &HashMap<&str, (usize, usize)>) -> Agent {
        let me = a.name.get_ref();
        if a.instructions.get_ref().trim().is_empty() {
            let at = a.instructions.span().start;
            self.err(at, format!("agent[{i}].instructions"), Rule::Empty);
        }
        if let Some(d) = &a.description {
            if d.get_ref().trim().is_empty() {
                self.err(
                    d.span().start,
                    format!("agent[{i}].description"),
                    Rule::Empty,
                );
            }
        }
        let voice = match &a.voice {
            Some(v) => self.voice(v, format!("agent[{i}].voice")),
            None => None,
        };
        if let Some(c) = &a.capacity {
            if *c.get_ref() == 0 {
                self.err(
                    c.span().start,
                    format!("agent[{i}].capacity"),
                    Rule::ZeroCapacity,
                );
            }
        }
        let mut handoffs: Vec<String> = Vec::with_capacity(a.handoffs.len());
        for (j, h) in a.handoffs.iter().enumerate() {
            let target = h.get_ref();
            let field = format!("agent[{i}].handoffs[{j}]");
            let at = h.span().start;
            if target == me {
                self.err(at, field, Rule::HandoffToSelf(target.clone()));
            } else if !names.contains_key(target.as_str()) {
                self.err(at, field, Rule::UnknownAgent(target.clone()));
            } else if handoffs.contains(target) {
                self.err(at, field, Rule::DuplicateHandoff(target.clone()));
            } else {
                handoffs.push(target.clone());
            }
        }
        let mut narration = BTreeMap::new();
        for (target, text) in &a.narration {
            let field = format!("agent[{i}].narration.{target}");
            let at = text.span().start;
            if !a.handoffs.iter().any(|h| h.get_ref() == target) {
                self.err(at, field, Rule::NarrationWithoutHandoff(target.clone()));
            } else if text.get_ref().trim().is_empty() {
                self.err(at, field, Rule::Empty);
            } else {
                narration.insert(target.clone(), text.get_ref().trim().to_string());
            }
        }
        let mut tools: Vec<ToolDef> = Vec::with_capacity(a.tools.len());
        for (j, t) in a.tools.iter().enumerate() {
            if let Some(tool) = self.tool(i, j, t) {
                if tools.iter().any(|x| x.name == tool.name) {
                    let rule = Rule::DuplicateTool(tool.name.clone());
                    self.err(
                        t.name.span().start,
                        format!("agent[{i}].tools[{j}].name"),
                        rule,
                    );
                } else {
                    tools.push(tool);
                }
            }
        }
        Agent {
            name: me.clone(),
            description: a
                .description
                .as_ref()
                .map(|d| d.get_ref().trim().to_string()),
            instructions: a.instructions.get_ref().trim().to_string(),
            voice,
            capacity: a.capacity.as_ref().map(|c| *c.get_ref()),
            on_unavailable: a.on_unavailable,
            ends_call: a.ends_call,
            handoffs,
            narration,
            tools,
            survey: a.survey,
        }
    }

    fn tool(&mut self, i: usize, j: usize, t: &RawTool) -> Option<ToolDef> {
        let prefix = format!("agent[{i}].tools[{j}]");
        let mut ok = true;
        let name = t.name.get_ref();
        let name_ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !name_ok {
            let rule = Rule::BadToolName(name.clone());
            self.err(t.name.span().start, format!("{prefix}.name"), rule);
            ok = false;
        } else if name.to_ascii_lowercase().starts_with(HANDOFF_PREFIX) {
            let rule = Rule::ReservedToolName(name.clone());
            self.err(t.name.span().start, format!("{prefix}.name"), rule);
            ok = false;
        }
        if t.description.get_ref().trim().is_empty() {
            let at = t.description.span().start;
            self.err(at, format!("{prefix}.description"), Rule::Empty);
            ok = false;
        }
        let parameters = match &t.parameters {
            None => serde_json::json!({"type": "object", "properties": {}}),
            Some(p) => {
                let v = p.get_ref();
                if v.get("type").and_then(|t| t.as_str()) != Some("object") {
                    let at = p.span().start;
                    self.err(at, format!("{prefix}.parameters"), Rule::BadParameters);
                    ok = false;
                }
                v.clone()
            }
        };
        let backend = match &t.backend {
            None => Some(Backend::Builtin),
            Some(b) => match backend(b.get_ref()) {
                Ok(b) => Some(b),
                Err(why) => {
                    let at = b.span().start;
                    self.err(at, format!("{prefix}.backend"), Rule::BadBackend(why));
                    None
                }
            },
        };
        match (ok, backend) {
            (true, Some(backend)) => Some(ToolDef {
                name: name.clone(),
                description: t.description.get_ref().trim().to_string(),
                parameters,
                backend,
                conversion: t.conversion,
            }),
            _ => None,
        }
    }
}

/// `http://HOST...` or `https://HOST...`.
fn http_url(url: &str) -> bool {
    url.strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
}

fn backend(v: &toml::Value) -> Result<Backend, String> {
    match v {
        toml::Value::String(s) if s == "builtin" => Ok(Backend::Builtin),
        toml::Value::String(s) => Err(format!("unknown backend {s:?}")),
        toml::Value::Table(t) => {
            if let Some(k) = t
                .keys()
                .find(|k| !["webhook", "timeout_ms", "retries"].contains(&k.as_str()))
            {
                return Err(format!("unknown key {k:?}"));
            }
            let url = match t.get("webhook") {
                Some(toml::Value::String(u)) => u.trim().to_string(),
                Some(_) => return Err("webhook must be a string".into()),
                None => return Err("missing webhook".into()),
            };
            if !http_url(&url) {
                return Err(format!("{url:?} is not an http:// or https:// URL"));
            }
            let timeout_ms = match t.get("timeout_ms") {
                None => DEFAULT_WEBHOOK_TIMEOUT_MS,
                Some(toml::Value::Integer(n))
                    if u64::try_from(*n).is_ok_and(|n| WEBHOOK_TIMEOUT_RANGE_MS.contains(&n)) =>
                {
                    *n as u64
                }
                Some(other) => return Err(format!("timeout_ms {other} is outside 1..=120000")),
            };
            let retries = match t.get("retries") {
                None => DEFAULT_WEBHOOK_RETRIES,
                Some(toml::Value::Integer(n))
                    if (0..=i64::from(MAX_WEBHOOK_RETRIES)).contains(n) =>
                {
                    *n as u32
                }
                Some(other) => {
                    return Err(format!(
                        "retries {other} is outside 0..={MAX_WEBHOOK_RETRIES}"
                    ))
                }
            };
            Ok(Backend::Webhook {
                url,
                timeout_ms,
                retries,
            })
        }
        other => Err(format!("a {} is neither", other.type_str())),
    }
}

/// The exit rule: an agent *ends the call* when it has no handoffs or sets `ends_call = true`.
/// Every agent reachable from the entry must be able to reach (through zero or more handoffs) an
/// agent that ends the call; otherwise a call could circle through handoffs with nobody allowed to
/// finish it. Returns the first stuck agent in file order and the loop it is caught in.
fn stuck_agent(file: &AgentsFile) -> Option<(usize, Rule)> {
    let index: HashMap<&str, usize> = file
        .agents
        .iter()
        .enumerate()
        .map(|(i, a)| (a.name.as_str(), i))
        .collect();
    let n = file.agents.len();
    // can_exit: fixed point of "ends the call, or some target can exit".
    let mut can_exit: Vec<bool> = file.agents.iter().map(AgentsFile::can_end_call).collect();
    let mut changed = true;
    while changed {
        changed = false;
        for i in 0..n {
            if !can_exit[i]
                && file.agents[i]
                    .handoffs
                    .iter()
                    .any(|t| index.get(t.as_str()).is_some_and(|&j| can_exit[j]))
            {
                can_exit[i] = true;
                changed = true;
            }
        }
    }
    // Reachable from the entry.
    let mut reachable = vec![false; n];
    let mut stack: Vec<usize> = index
        .get(file.entry.as_str())
        .copied()
        .into_iter()
        .collect();
    while let Some(i) = stack.pop() {
        if std::mem::replace(&mut reachable[i], true) {
            continue;
        }
        for t in &file.agents[i].handoffs {
            if let Some(&j) = index.get(t.as_str()) {
                stack.push(j);
            }
        }
    }
    let stuck = (0..n).find(|&i| reachable[i] && !can_exit[i])?;
    // A stuck agent has handoffs, and every target is stuck too: following the first one must
    // come back to an agent already on the path.
    let mut path = vec![stuck];
    loop {
        let last = path[path.len() - 1];
        let next = file.agents[last]
            .handoffs
            .first()
            .and_then(|t| index.get(t.as_str()).copied())?;
        let seen = path.contains(&next);
        path.push(next);
        if seen {
            break;
        }
    }
    let path = path
        .iter()
        .map(|&i| file.agents[i].name.as_str())
        .collect::<Vec<_>>()
        .join(" -> ");
    Some((
        stuck,
        Rule::CycleWithoutExit {
            agent: file.agents[stuck].name.clone(),
            path,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuck_agent_follows_the_loop() {
        let agent = |name: &str, handoffs: &[&str]| Agent {
            name: name.into(),
            description: None,
            instructions: "x".into(),
            voice: None,
            capacity: None,
            on_unavailable: OnUnavailable::Return,
            ends_call: false,
            handoffs: handoffs.iter().map(|s| s.to_string()).collect(),
            narration: BTreeMap::new(),
            tools: Vec::new(),
            survey: false,
        };
        let mut file = AgentsFile {
            source: "t".into(),
            entry: "a".into(),
            voice_mode: VoiceMode::Same,
            voice: Voice::named(DEFAULT_VOICE),
            agents: vec![agent("a", &["b"]), agent("b", &["c"]), agent("c", &["b"])],
            callback_webhook: None,
        };
        let (i, rule) = stuck_agent(&file).unwrap();
        assert_eq!(i, 0);
        assert_eq!(
            rule,
            Rule::CycleWithoutExit {
                agent: "a".into(),
                path: "a -> b -> c -> b".into()
            }
        );
        file.agents[2].ends_call = true;
        assert!(stuck_agent(&file).is_none());
        // A terminal agent (no handoffs) anywhere downstream is an exit too.
        file.agents[2].ends_call = false;
        file.agents[2].handoffs.push("d".into());
        file.agents.push(agent("d", &[]));
        assert!(stuck_agent(&file).is_none());
    }
}
