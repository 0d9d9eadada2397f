//! Scenario files: scripted agents whose turns speak WAV files or tones, carry transcripts,
//! end with function calls and may drop the connection (format: `fixtures/sim/README.md`).
//! Errors name the file, the line and the field (DESIGN "Conventions").

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toml_pos::{field_at, line_of};

use serde::Deserialize;
use toml::Spanned;

use crate::wav::{self, WavError};

/// Milliseconds of tone per word of a `text:` turn.
const MS_PER_WORD: u64 = 300;
/// Longest `text:` turn.
const MAX_TEXT_MS: u64 = 8_000;
/// Default wall-clock speed of the audio stream: twice real time (what the simulator always did).
pub(crate) const DEFAULT_SPEEDUP: f64 = 2.0;
/// Accepted `speedup` values: from ten times slower than real time to effectively instant.
const SPEEDUP_RANGE: std::ops::RangeInclusive<f64> = 0.1..=10_000.0;

/// Why a scenario file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario {}: {source}", path.display())]
    Read {
        /// The scenario file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A field is missing, unknown, of the wrong type or has a value the simulator refuses.
    #[error("{}:{line}: {field}: {message}", path.display())]
    Invalid {
        /// The scenario file.
        path: PathBuf,
        /// 1-based line of the offending value.
        line: usize,
        /// Dotted path of the field, e.g. `agent[0].turn[1].say`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A `say = "wav:..."` file is missing or not playable.
    #[error("{}:{line}: {field}: {}: {source}", path.display(), wav.display())]
    Wav {
        /// The scenario file.
        path: PathBuf,
        /// 1-based line of the `say` value.
        line: usize,
        /// Dotted path of the field.
        field: String,
        /// The WAV file, resolved against the scenario's directory.
        wav: PathBuf,
        /// What is wrong with it.
        source: WavError,
    },
}

impl ScenarioError {
    /// The 1-based line the error points at, if it points into the file.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Read { .. } => None,
            Self::Invalid { line, .. } | Self::Wav { line, .. } => Some(*line),
        }
    }

    /// The dotted field path the error names, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Read { .. } => None,
            Self::Invalid { field, .. } | Self::Wav { field, .. } => Some(field),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    speedup: Option<Spanned<f64>>,
    default: Option<RawTurn>,
    #[serde(default)]
    agent: Vec<RawAgent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    name: Spanned<String>,
    #[serde(rename = "match")]
    matches: Spanned<String>,
    #[serde(default)]
    turn: Vec<RawTurn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTurn {
    heard: Option<String>,
    say: Spanned<String>,
    transcript: Option<Spanned<String>>,
    call: Option<Spanned<RawCall>>,
    disconnect_after_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCall {
    name: String,
    #[serde(default)]
    arguments: Option<toml::Table>,
}

/// What a turn plays.
#[derive(Clone)]
pub(crate) enum Speech {
    /// WAV audio resampled to 24 kHz.
    Wav(Arc<[i16]>),
    /// The tone pattern for this long.
    Tone {
        /// Duration.
        ms: u64,
    },
}

impl fmt::Debug for Speech {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Wav(s) => write!(f, "Wav({} samples at 24 kHz)", s.len()),
            Self::Tone { ms } => write!(f, "Tone({ms} ms)"),
        }
    }
}

/// A function call a turn ends with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Call {
    /// Tool name.
    pub name: String,
    /// Arguments as a JSON object string.
    pub arguments: String,
}

/// One scripted response.
#[derive(Debug, Clone)]
pub(crate) struct Turn {
    /// Transcript of the caller item committed before this turn.
    pub heard: Option<String>,
    /// The audio.
    pub speech: Speech,
    /// What the audio says.
    pub transcript: String,
    /// Optional function call after the audio.
    pub call: Option<Call>,
    /// Test hook: drop the TCP connection after this much audio.
    pub disconnect_after_ms: Option<u64>,
}

#[derive(Debug, Clone)]
struct Agent {
    name: String,
    /// Lower-cased `match`.
    needle: String,
    /// At least one.
    turns: Vec<Turn>,
}

/// Who answers: an agent by index, or the `[default]` turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Speaker {
    /// `agent[i]`.
    Agent(usize),
    /// `[default]`.
    Default,
}

/// A loaded scenario: agents picked by the session's `instructions`, each with its turns, WAV
/// audio already decoded. Cheap to clone (audio is shared).
#[derive(Debug, Clone)]
pub struct Scenario {
    path: PathBuf,
    speedup: f64,
    default: Option<Turn>,
    agents: Vec<Agent>,
}

impl Scenario {
    /// Reads and checks a scenario file; `wav:` paths are relative to its directory.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ScenarioError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// Parses scenario `text` as if read from `path` (errors name it; `wav:` paths are relative
    /// to its directory). The file itself is not read.
    pub fn from_toml(text: &str, path: impl AsRef<Path>) -> Result<Self, ScenarioError> {
        Loader {
            path: path.as_ref(),
            text,
        }
        .load()
    }

    /// The file the scenario came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Agent names in file order.
    pub fn agent_names(&self) -> impl Iterator<Item = &str> {
        self.agents.iter().map(|a| a.name.as_str())
    }

    /// The agent whose `match` is in `instructions` (case-insensitive; first in file order), or
    /// `None` when the `[default]` turn (or the built-in tone) answers.
    pub fn agent_for(&self, instructions: &str) -> Option<&str> {
        match self.speaker(instructions)? {
            Speaker::Agent(i) => self.agents.get(i).map(|a| a.name.as_str()),
            Speaker::Default => None,
        }
    }

    /// How much faster than real time audio deltas are sent (file field `speedup`, default 2).
    pub fn speedup(&self) -> f64 {
        self.speedup
    }

    /// The same scenario streaming at `speedup` times real time (tests use 20 or more to stay
    /// short). Values outside 0.1..=10000 (or NaN) keep the current speed.
    pub fn with_speedup(mut self, speedup: f64) -> Self {
        if SPEEDUP_RANGE.contains(&speedup) {
            self.speedup = speedup;
        }
        self
    }

    pub(crate) fn agent_count(&self) -> usize {
        self.agents.len()
    }

    pub(crate) fn speaker(&self, instructions: &str) -> Option<Speaker> {
        let hay = instructions.to_lowercase();
        self.agents
            .iter()
            .position(|a| hay.contains(&a.needle))
            .map(Speaker::Agent)
            .or(self.default.as_ref().map(|_| Speaker::Default))
    }

    /// The `nth` turn of `speaker` (0-based); past the end the last one repeats.
    pub(crate) fn turn(&self, speaker: Speaker, nth: usize) -> Option<&Turn> {
        match speaker {
            Speaker::Default => self.default.as_ref(),
            Speaker::Agent(i) => {
                let turns = &self.agents.get(i)?.turns;
                turns.get(nth.min(turns.len().saturating_sub(1)))
            }
        }
    }
}

struct Loader<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Loader<'_> {
    fn invalid(&self, offset: usize, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            path: self.path.to_path_buf(),
            line: line_of(self.text, offset),
            field: field_at(self.text, offset),
            message: message.into(),
        }
    }

    fn load(&self) -> Result<Scenario, ScenarioError> {
        let raw: RawScenario = toml::from_str(self.text).map_err(|e| {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            self.invalid(offset, e.message().trim_end())
        })?;
        let speedup = match raw.speedup {
            None => DEFAULT_SPEEDUP,
            Some(s) if SPEEDUP_RANGE.contains(s.get_ref()) => *s.get_ref(),
            Some(s) => {
                return Err(self.invalid(
                    s.span().start,
                    format!("{} is outside 0.1..=10000", s.get_ref()),
                ))
            }
        };
        let default = raw.default.map(|t| self.turn(t)).transpose()?;
        let mut agents = Vec::with_capacity(raw.agent.len());
        for a in raw.agent {
            let needle = a.matches.get_ref().trim().to_lowercase();
            if needle.is_empty() {
                return Err(self.invalid(a.matches.span().start, "must not be empty"));
            }
            if a.turn.is_empty() {
                return Err(self.invalid(
                    a.name.span().start,
                    format!(
                        "agent {:?} needs at least one [[agent.turn]]",
                        a.name.get_ref()
                    ),
                ));
            }
            let turns = a
                .turn
                .into_iter()
                .map(|t| self.turn(t))
                .collect::<Result<_, _>>()?;
            agents.push(Agent {
                name: a.name.into_inner(),
                needle,
                turns,
            });
        }
        Ok(Scenario {
            path: self.path.to_path_buf(),
            speedup,
            default,
            agents,
        })
    }

    fn turn(&self, t: RawTurn) -> Result<Turn, ScenarioError> {
        let at = t.say.span().start;
        let say = t.say.into_inner();
        let (speech, spoken) = if let Some(file) = say.strip_prefix("wav:") {
            (self.wav(file.trim(), at)?, None)
        } else if let Some(text) = say.strip_prefix("text:") {
            let words = text.split_whitespace().count() as u64;
            if words == 0 {
                return Err(self.invalid(at, "\"text:\" needs words to say"));
            }
            let ms = (words * MS_PER_WORD).min(MAX_TEXT_MS);
            (Speech::Tone { ms }, Some(text.trim().to_string()))
        } else {
            return Err(self.invalid(
                at,
                format!("{say:?}: must start with \"wav:\" (a WAV file) or \"text:\""),
            ));
        };
        let transcript = match (t.transcript, spoken) {
            (Some(tr), _) if tr.get_ref().trim().is_empty() => {
                return Err(self.invalid(tr.span().start, "must not be empty"))
            }
            (Some(tr), _) => tr.into_inner(),
            (None, Some(text)) => text,
            (None, None) => {
                return Err(self.invalid(at, "a \"wav:\" turn needs a `transcript`"));
            }
        };
        let call = t.call.map(|c| self.call(c)).transpose()?;
        Ok(Turn {
            heard: t.heard,
            speech,
            transcript,
            call,
            disconnect_after_ms: t.disconnect_after_ms,
        })
    }

    fn call(&self, c: Spanned<RawCall>) -> Result<Call, ScenarioError> {
        let at = c.span().start;
        let c = c.into_inner();
        if c.name.trim().is_empty() {
            return Err(self.invalid(at, "call.name must not be empty"));
        }
        let args = c.arguments.unwrap_or_default();
        let arguments = serde_json::to_string(&args)
            .map_err(|e| self.invalid(at, format!("call.arguments: {e}")))?;
        Ok(Call {
            name: c.name,
            arguments,
        })
    }

    fn wav(&self, file: &str, at: usize) -> Result<Speech, ScenarioError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let wav_path = dir.join(file);
        let err = |source: WavError| ScenarioError::Wav {
            path: self.path.to_path_buf(),
            line: line_of(self.text, at),
            field: field_at(self.text, at),
            wav: wav_path.clone(),
            source,
        };
        let bytes = std::fs::read(&wav_path).map_err(|e| err(WavError::Io(e)))?;
        let w = wav::parse(&bytes).map_err(err)?;
        if w.samples.is_empty() {
            return Err(err(WavError::Malformed("no samples")));
        }
        let samples = crate::speech::resample(w.rate, realtime::PCM_RATE, &w.samples)
            .map_err(|e| err(WavError::Rate(e)))?;
        Ok(Speech::Wav(samples.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"
[default]
say = "text:one two three"

[[agent]]
name = "router"
match = "Router"
[[agent.turn]]
say = "text:hello there"
[[agent.turn]]
heard = "I need help"
say = "text:let me connect you"
call = { name = "handoff_to_support", arguments = { summary = "help", n = 2 } }

[[agent]]
name = "support"
match = "support"
[[agent.turn]]
say = "text:support here"
transcript = "Support here."
disconnect_after_ms = 300
"#;

    #[test]
    fn agents_are_picked_by_instructions_and_turns_repeat_at_the_end() {
        let s = Scenario::from_toml(TEXT, "/x/demo.toml").unwrap();
        assert_eq!(s.agent_names().collect::<Vec<_>>(), ["router", "support"]);
        assert_eq!(s.agent_for("You are the ROUTER agent."), Some("router"));
        assert_eq!(s.agent_for("Billing support."), Some("support"));
        assert_eq!(s.speaker("Sales."), Some(Speaker::Default));
        let r = Speaker::Agent(0);
        assert_eq!(s.turn(r, 0).unwrap().transcript, "hello there");
        let t2 = s.turn(r, 1).unwrap();
        assert_eq!(t2.heard.as_deref(), Some("I need help"));
        let call = t2.call.as_ref().unwrap();
        assert_eq!(call.name, "handoff_to_support");
        let args: serde_json::Value = serde_json::from_str(&call.arguments).unwrap();
        assert_eq!(args, serde_json::json!({"summary": "help", "n": 2}));
        assert_eq!(s.turn(r, 7).unwrap().transcript, "let me connect you");
        let sup = s.turn(Speaker::Agent(1), 0).unwrap();
        assert_eq!(sup.transcript, "Support here.");
        assert_eq!(sup.disconnect_after_ms, Some(300));
        assert!(matches!(sup.speech, Speech::Tone { ms: 600 }));
        assert!(matches!(
            s.turn(Speaker::Default, 3).unwrap().speech,
            Speech::Tone { ms: 900 }
        ));
        assert_eq!(s.speedup(), DEFAULT_SPEEDUP);
    }

    #[test]
    fn errors_name_line_and_field() {
        let bad = TEXT.replace("transcript = \"Support here.\"", "transcrpt = 1");
        let e = Scenario::from_toml(&bad, "demo.toml").unwrap_err();
        assert_eq!(e.line(), Some(20), "{e}");
        assert_eq!(e.field(), Some("agent[1].turn[0].transcrpt"), "{e}");
        assert!(e.to_string().starts_with("demo.toml:20: "), "{e}");

        let bad = TEXT.replace("text:let me connect you", "mp3:x");
        let e = Scenario::from_toml(&bad, "demo.toml").unwrap_err();
        assert_eq!(e.line(), Some(12), "{e}");
        assert_eq!(e.field(), Some("agent[0].turn[1].say"), "{e}");

        let bad = TEXT.replace("name = \"handoff_to_support\", ", "");
        let e = Scenario::from_toml(&bad, "demo.toml").unwrap_err();
        assert_eq!(e.line(), Some(13), "{e}");
        assert_eq!(e.field(), Some("agent[0].turn[1].call"), "{e}");

        for bad in ["-1", "0", "1e-300", "nan", "1e300"] {
            let e = Scenario::from_toml(&format!("speedup = {bad}\n"), "s.toml").unwrap_err();
            assert_eq!((e.line(), e.field()), (Some(1), Some("speedup")), "{e}");
        }
        let s = Scenario::from_toml("speedup = 4.0\n", "s.toml").unwrap();
        assert_eq!(s.with_speedup(f64::NAN).with_speedup(0.0).speedup(), 4.0);
    }
}
