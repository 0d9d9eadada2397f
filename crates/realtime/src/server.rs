//! Server events we act on (protocol §3, "Server → client"). Anything else, including beta
//! names such as `response.audio.delta`, parses as `ServerEvent::Unknown`.

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::error::ParseError;
use crate::item::{ContentPart, Item};
use crate::response::Response;
use crate::session::Session;
use crate::tagged::wire_events;

wire_events! {
    /// An event the Realtime API sends.
    pub enum ServerEvent {
        /// A recoverable or fatal error; the socket usually stays open (protocol §3).
        "error" => Error(ErrorEvent),
        /// First event after connect.
        "session.created" => SessionCreated(SessionEvent),
        /// The full effective config after a `session.update`.
        "session.updated" => SessionUpdated(SessionEvent),
        /// VAD heard speech start: barge-in trigger (DESIGN "One call" step 4).
        "input_audio_buffer.speech_started" => SpeechStarted(SpeechStarted),
        /// VAD heard speech end.
        "input_audio_buffer.speech_stopped" => SpeechStopped(SpeechStopped),
        /// The input buffer became a user item.
        "input_audio_buffer.committed" => InputAudioBufferCommitted(InputAudioBufferCommitted),
        /// The input buffer was emptied.
        "input_audio_buffer.cleared" => InputAudioBufferCleared(EventIdOnly),
        /// GA item added (protocol §3).
        "conversation.item.added" => ConversationItemAdded(ConversationItemEvent),
        /// GA item finished.
        "conversation.item.done" => ConversationItemDone(ConversationItemEvent),
        /// Legacy name still in the union; accepted like `added` (protocol §3).
        "conversation.item.created" => ConversationItemCreated(ConversationItemEvent),
        /// Confirms a truncate.
        "conversation.item.truncated" => ConversationItemTruncated(ConversationItemTruncated),
        /// Confirms a delete.
        "conversation.item.deleted" => ConversationItemDeleted(ItemIdEvent),
        /// Caller transcript, streaming.
        "conversation.item.input_audio_transcription.delta" =>
            InputTranscriptionDelta(InputTranscriptionDelta),
        /// Caller transcript, final; may arrive before or after the response (protocol §3).
        "conversation.item.input_audio_transcription.completed" =>
            InputTranscriptionCompleted(InputTranscriptionCompleted),
        /// A response started: from now on `response.create` would be rejected.
        "response.created" => ResponseCreated(ResponseEvent),
        /// A response ended (always sent, also after cancel).
        "response.done" => ResponseDone(ResponseEvent),
        /// An output item (message or function call) started.
        "response.output_item.added" => OutputItemAdded(OutputItemEvent),
        /// An output item finished.
        "response.output_item.done" => OutputItemDone(OutputItemEvent),
        /// A content part started.
        "response.content_part.added" => ContentPartAdded(ContentPartEvent),
        /// A content part finished.
        "response.content_part.done" => ContentPartDone(ContentPartEvent),
        /// Assistant audio chunk (GA name; beta was `response.audio.delta`).
        "response.output_audio.delta" => OutputAudioDelta(OutputDelta),
        /// Assistant audio finished for a part.
        "response.output_audio.done" => OutputAudioDone(OutputPartDone),
        /// Assistant transcript chunk.
        "response.output_audio_transcript.delta" => OutputAudioTranscriptDelta(OutputDelta),
        /// Assistant transcript, final.
        "response.output_audio_transcript.done" => OutputAudioTranscriptDone(OutputPartDone),
        /// Text chunk (text modality).
        "response.output_text.delta" => OutputTextDelta(OutputDelta),
        /// Text, final.
        "response.output_text.done" => OutputTextDone(OutputPartDone),
        /// Function arguments chunk.
        "response.function_call_arguments.delta" => FunctionCallArgumentsDelta(FunctionCallArgumentsDelta),
        /// Function arguments, final.
        "response.function_call_arguments.done" => FunctionCallArgumentsDone(FunctionCallArgumentsDone),
        /// Rate limits at the start of a response.
        "rate_limits.updated" => RateLimitsUpdated(RateLimitsUpdated),
    }
    unknown: Unknown;
}

/// `error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorEvent {
    /// Server event id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Details.
    pub error: ErrorDetail,
}

/// `error.error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// e.g. `invalid_request_error`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// e.g. `conversation_already_has_active_response` (protocol §8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Human-readable text.
    #[serde(default)]
    pub message: String,
    /// The offending parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    /// The `event_id` of the client event that caused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// Error codes the tracker is designed to prevent (protocol §8).
pub mod codes {
    /// `response.create` while a response is active.
    pub const ACTIVE_RESPONSE: &str = "conversation_already_has_active_response";
    /// `response.cancel` with nothing active.
    pub const CANCEL_NOT_ACTIVE: &str = "response_cancel_not_active";
    /// `input_audio_buffer.commit` with < 100 ms buffered.
    pub const COMMIT_EMPTY: &str = "input_audio_buffer_commit_empty";
    /// `session.update` changing the voice after assistant audio.
    pub const CANNOT_UPDATE_VOICE: &str = "cannot_update_voice";
}

/// An event with only an id.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EventIdOnly {
    /// Server event id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// `session.created` / `session.updated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionEvent {
    /// Server event id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The effective session.
    pub session: Session,
}

/// `input_audio_buffer.speech_started`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpeechStarted {
    /// Server event id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// From the start of all session input audio, including prefix padding (protocol §3).
    pub audio_start_ms: u64,
    /// The user item that will be created.
    pub item_id: String,
}

/// `input_audio_buffer.speech_stopped`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpeechStopped {
    /// Server event id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// From the start of all session input audio.
    pub audio_end_ms: u64,
    /// The user item.
    pub item_id: String,
}

/// `input_audio_buffer.committed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputAudioBufferCommitted {
    /// Server event id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Preceding item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_item_id: Option<String>,
    /// The new user item.
    pub item_id: String,
}

/// `conversation.item.added` / `.done` / `.created`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationItemEvent {
    /// Server event id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Preceding item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_item_id: Option<String>,
    /// The item.
    pub item: Item,
}

/// `conversation.item.truncated`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationItemTruncated {
    /// Server event id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The item.
    pub item_id: String,
    /// The part.
    pub content_index: u32,
    /// Audio kept.
    pub audio_end_ms: u64,
}

/// An event naming one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemIdEvent {
    /// Server event id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The item.
    pub item_id: String,
}

/// `conversation.item.input_audio_transcription.delta`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputTranscriptionDelta {
    /// Server event id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The user item.
    pub item_id: String,
    /// The part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_index: Option<u32>,
    /// Transcript chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<String>,
}

/// `conversation.item.input_audio_transcription.completed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputTranscriptionCompleted {
    /// Server event id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The user item.
    pub item_id: String,
    /// The part.
    pub content_index: u32,
    /// What the caller said.
    pub transcript: String,
    /// `{type:"tokens",...}` or `{type:"duration",seconds}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<serde_json::Value>,
}

/// `response.created` / `response.done`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseEvent {
    /// Server event id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The response.
    pub response: Response,
}

/// `response.output_item.added` / `.done`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputItemEvent {
    /// Server event id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The response.
    pub response_id: String,
    /// Position in `response.output`.
    pub output_index: u32,
    /// The item (a `function_call` item names the tool).
    pub item: Item,
}

/// `response.content_part.added` / `.done`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentPartEvent {
    /// Server event id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The response.
    pub response_id: String,
    /// The item.
    pub item_id: String,
    /// Position in `response.output`.
    pub output_index: u32,
    /// Position in `item.content`.
    pub content_index: u32,
    /// The part.
    pub part: ContentPart,
}

/// A streaming chunk: audio (base64), transcript or text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputDelta {
    /// Server event id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The response.
    pub response_id: String,
    /// The assistant item.
    pub item_id: String,
    /// Position in `response.output`.
    pub output_index: u32,
    /// Position in `item.content`.
    pub content_index: u32,
    /// The chunk.
    pub delta: String,
}

impl OutputDelta {
    /// Decodes an audio delta's base64 (protocol §6).
    pub fn decode_audio(&self) -> Result<Vec<u8>, ParseError> {
        Ok(base64::engine::general_purpose::STANDARD.decode(&self.delta)?)
    }
}

/// `response.output_audio.done` / `…transcript.done` / `output_text.done`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputPartDone {
    /// Server event id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The response.
    pub response_id: String,
    /// The assistant item.
    pub item_id: String,
    /// Position in `response.output`.
    pub output_index: u32,
    /// Position in `item.content`.
    pub content_index: u32,
    /// Final transcript (`output_audio_transcript.done`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript: Option<String>,
    /// Final text (`output_text.done`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// `response.function_call_arguments.delta`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionCallArgumentsDelta {
    /// Server event id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The response.
    pub response_id: String,
    /// The function_call item.
    pub item_id: String,
    /// Position in `response.output`.
    pub output_index: u32,
    /// Pairs call and output.
    pub call_id: String,
    /// JSON chunk.
    pub delta: String,
}

/// `response.function_call_arguments.done`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionCallArgumentsDone {
    /// Server event id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The response.
    pub response_id: String,
    /// The function_call item.
    pub item_id: String,
    /// Position in `response.output`.
    pub output_index: u32,
    /// Pairs call and output.
    pub call_id: String,
    /// Older schemas lack it; the output item is the authoritative source (protocol §3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Complete JSON arguments.
    pub arguments: String,
}

/// `rate_limits.updated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateLimitsUpdated {
    /// Server event id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Current limits.
    pub rate_limits: Vec<RateLimit>,
}

/// One limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateLimit {
    /// `requests` or `tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u64>,
    /// Seconds to reset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_seconds: Option<f64>,
}
