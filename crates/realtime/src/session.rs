//! The GA session object as it travels in `session.update`, `session.created` and
//! `session.updated` (protocol §2). Every field is optional so a server echo parses whatever it
//! omits; what we send is always complete because only `SessionConfig` builds it.

use serde::{Deserialize, Deserializer, Serialize};

use crate::audio::AudioFormat;

/// Present-and-null must survive a round trip: `turn_detection: null` means manual commit,
/// absent means "unchanged" (protocol §2, `SessionUpdateEvent` semantics).
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// `session.type`: required in GA; `transcription` sessions are not ours (protocol §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionType {
    /// A speech-to-speech session.
    #[default]
    Realtime,
    /// A transcription-only session.
    Transcription,
}

/// GA session object.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Session {
    /// Discriminator; without it GA rejects the update (protocol §2).
    #[serde(rename = "type")]
    pub kind: SessionType,
    /// Model name; cannot change mid-session (protocol §2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `["audio"]` or `["text"]`, never both (protocol §2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_modalities: Option<Vec<Modality>>,
    /// System instructions of the current agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// Integer 1..=4096 or `"inf"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<MaxOutputTokens>,
    /// Input and output audio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<SessionAudio>,
    /// Function tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// How the model picks tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
}

/// `output_modalities` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Modality {
    /// Audio with its transcript.
    Audio,
    /// Text only.
    Text,
}

/// `max_output_tokens`: a number or the literal `"inf"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MaxOutputTokens {
    /// 1..=4096.
    Limit(u32),
    /// No limit.
    Inf(Inf),
}

/// The `"inf"` literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Inf {
    /// `"inf"`.
    #[serde(rename = "inf")]
    Inf,
}

/// `session.audio`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SessionAudio {
    /// Caller -> model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<AudioInput>,
    /// Model -> caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<AudioOutput>,
}

/// `session.audio.input`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AudioInput {
    /// Format of `input_audio_buffer.append` payloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<AudioFormat>,
    /// `Some(None)` is an explicit `null`: noise reduction off.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub noise_reduction: Option<Option<NoiseReduction>>,
    /// `Some(None)` is an explicit `null`: input transcription off.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub transcription: Option<Option<Transcription>>,
    /// `Some(None)` is an explicit `null`: no VAD, manual commit + `response.create`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub turn_detection: Option<Option<TurnDetection>>,
}

/// `session.audio.output`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AudioOutput {
    /// Format of `response.output_audio.delta` payloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<AudioFormat>,
    /// Voice; fixed once the session has produced audio (protocol §2, `cannot_update_voice`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<Voice>,
    /// Playback speed; only between turns (protocol §2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<f64>,
}

/// `noise_reduction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NoiseReduction {
    /// Headsets, handsets.
    NearField,
    /// Speakerphones, conference rooms.
    FarField,
}

/// `audio.input.transcription`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Transcription {
    /// e.g. `gpt-4o-mini-transcribe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// ISO-639-1 hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Vocabulary hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
}

/// `audio.input.turn_detection` (protocol §2, §6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TurnDetection {
    /// Energy VAD.
    ServerVad {
        /// 0.0..=1.0; default 0.5.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        threshold: Option<f64>,
        /// Audio kept before speech; default 300.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix_padding_ms: Option<u32>,
        /// Silence that ends a turn; live default 200 (protocol §6).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        silence_duration_ms: Option<u32>,
        /// Emits `input_audio_buffer.timeout_triggered` after this much silence.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        idle_timeout_ms: Option<u32>,
        /// Server creates a response when a turn ends.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        create_response: Option<bool>,
        /// Server cancels the active response when speech starts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        interrupt_response: Option<bool>,
    },
    /// Model-based end-of-turn detection.
    SemanticVad {
        /// How soon to answer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        eagerness: Option<Eagerness>,
        /// Server creates a response when a turn ends.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        create_response: Option<bool>,
        /// Server cancels the active response when speech starts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        interrupt_response: Option<bool>,
    },
}

impl TurnDetection {
    /// Whether the server will create a response itself when a turn ends (default true).
    pub fn creates_response(&self) -> bool {
        match self {
            Self::ServerVad {
                create_response, ..
            }
            | Self::SemanticVad {
                create_response, ..
            } => create_response.unwrap_or(true),
        }
    }

    /// Whether the server cancels the active response on `speech_started` (default true).
    pub fn interrupts_response(&self) -> bool {
        match self {
            Self::ServerVad {
                interrupt_response, ..
            }
            | Self::SemanticVad {
                interrupt_response, ..
            } => interrupt_response.unwrap_or(true),
        }
    }
}

/// `semantic_vad.eagerness` (protocol §6: auto = medium).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Eagerness {
    /// Waits up to 8 s.
    Low,
    /// Waits up to 4 s.
    Medium,
    /// Waits up to 2 s.
    High,
    /// Medium.
    Auto,
}

/// A voice: a built-in name or a custom `{"id": ...}` (protocol §2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Voice {
    /// `alloy, ash, ballad, coral, echo, sage, shimmer, verse, marin, cedar`.
    Named(String),
    /// A custom voice.
    Custom {
        /// `voice_...`.
        id: String,
    },
}

impl Voice {
    /// The built-in voice names (protocol §2).
    pub const BUILT_IN: [&'static str; 10] = [
        "alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar",
    ];

    /// A built-in or other named voice.
    pub fn named(name: impl Into<String>) -> Self {
        Self::Named(name.into())
    }
}

/// A tool in `session.tools` or `response.tools`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Tool {
    /// A function the bridge (router, webhook, built-in backend) executes.
    Function(FunctionTool),
}

/// `{"type":"function", name, description, parameters}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionTool {
    /// `^[a-zA-Z0-9_-]{1,64}$`.
    pub name: String,
    /// Tells the model when to call it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<serde_json::Value>,
}

impl FunctionTool {
    /// A function tool with a JSON-schema `parameters` object.
    pub fn new(
        name: impl Into<String>,
        description: impl Into<String>,
        parameters: serde_json::Value,
    ) -> Self {
        Self {
            name: name.into(),
            description: Some(description.into()),
            parameters: Some(parameters),
        }
    }
}

/// `tool_choice`: a mode string or one named function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ToolChoice {
    /// `"none" | "auto" | "required"`.
    Mode(ToolChoiceMode),
    /// `{"type":"function","name":...}`.
    Function(ToolChoiceFunction),
}

impl ToolChoice {
    /// `"auto"`.
    pub const AUTO: Self = Self::Mode(ToolChoiceMode::Auto);

    /// Force one function.
    pub fn function(name: impl Into<String>) -> Self {
        Self::Function(ToolChoiceFunction {
            kind: FunctionKind::Function,
            name: name.into(),
        })
    }
}

/// Mode strings of `tool_choice`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolChoiceMode {
    /// Never call a tool.
    None,
    /// Model decides.
    Auto,
    /// Must call some tool.
    Required,
}

/// `{"type":"function","name":...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolChoiceFunction {
    /// Always `function`.
    #[serde(rename = "type")]
    pub kind: FunctionKind,
    /// The forced function.
    pub name: String,
}

/// The `function` literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FunctionKind {
    /// `"function"`.
    Function,
}
