//! Errors, each naming the rule that was broken.

/// A server (or client) event could not be read. Unknown `type`s are not errors.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not JSON, or not an object (protocol §3: every event is a JSON object).
    #[error("malformed event JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// An event is a JSON object, not an array or a scalar (protocol §3).
    #[error("event is not a JSON object")]
    NotAnObject,
    /// Every event carries a `type` (protocol §3; the server answers `invalid_event` too).
    #[error("event has no \"type\" field")]
    MissingType,
    /// A known `type` whose fields do not match the GA model.
    #[error("{type_} does not match its GA shape: {source}")]
    Shape {
        /// The event type.
        type_: &'static str,
        /// What serde found wrong.
        #[source]
        source: serde_json::Error,
    },
    /// `delta`/`audio` must be standard base64 (protocol §6).
    #[error("audio payload is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
}

/// Serializing an event failed (only possible with non-string map keys in user JSON).
#[derive(Debug, thiserror::Error)]
#[error("event could not be serialized: {0}")]
pub struct EncodeError(#[source] pub serde_json::Error);

/// A session config the API would reject (protocol §2).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// `audio/pcm` takes only `rate: 24000` (protocol §2, §6).
    #[error("audio/pcm rate must be 24000, got {0}")]
    PcmRateNot24000(u32),
    /// `output_modalities` is `["audio"]` or `["text"]`, both at once is not allowed (protocol §2).
    #[error("output_modalities must hold exactly one of audio or text")]
    Modalities,
    /// `max_output_tokens` is 1..=4096 or "inf" (protocol §2).
    #[error("max_output_tokens must be 1..=4096, got {0}")]
    MaxOutputTokens(u32),
    /// VAD threshold is a probability.
    #[error("server_vad threshold must be within 0.0..=1.0, got {0}")]
    VadThreshold(f64),
    /// `audio.output.speed` range of the GA session (0.25..=1.5).
    #[error("audio.output.speed must be within 0.25..=1.5, got {0}")]
    Speed(f64),
    /// Function names: `^[a-zA-Z0-9_-]{1,64}$`.
    #[error("tool name {0:?} must match ^[a-zA-Z0-9_-]{{1,64}}$")]
    ToolName(String),
    /// Two tools with one name: the model could not tell them apart.
    #[error("tool {0:?} is declared twice")]
    DuplicateTool(String),
    /// `tool_choice` forcing a function that is not in `tools`.
    #[error("tool_choice names {0:?}, which is not among the tools")]
    UnknownToolChoice(String),
}
