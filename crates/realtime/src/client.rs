//! Client events we send (protocol §3, "Client → server"). `conversation.item.retrieve` and
//! `output_audio_buffer.clear` are left out: we never read items back, and the latter is for
//! WebRTC/SIP transports only, not our WebSocket.

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::item::Item;
use crate::response::ResponseCreateParams;
use crate::session::Session;
use crate::tagged::wire_events;

wire_events! {
    /// An event the bridge sends to the Realtime API.
    pub enum ClientEvent {
        /// Full session config (see `SessionConfig::update_event`).
        "session.update" => SessionUpdate(SessionUpdate),
        /// Caller audio in the session input format.
        "input_audio_buffer.append" => InputAudioBufferAppend(InputAudioBufferAppend),
        /// Ends a user turn without VAD; needs >= 100 ms buffered (protocol §3).
        "input_audio_buffer.commit" => InputAudioBufferCommit(EventOnly),
        /// Drops buffered caller audio.
        "input_audio_buffer.clear" => InputAudioBufferClear(EventOnly),
        /// Adds a message or a function output.
        "conversation.item.create" => ConversationItemCreate(ConversationItemCreate),
        /// Cuts assistant audio to what the caller heard (DESIGN "One call" step 4).
        "conversation.item.truncate" => ConversationItemTruncate(ConversationItemTruncate),
        /// Removes an item.
        "conversation.item.delete" => ConversationItemDelete(ConversationItemDelete),
        /// Asks the model to speak.
        "response.create" => ResponseCreate(ResponseCreate),
        /// Stops the active response.
        "response.cancel" => ResponseCancel(ResponseCancel),
    }
    unknown: Unknown;
}

/// A client event with no fields besides its optional id.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EventOnly {
    /// Echoed as `error.event_id` if the server rejects the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// `session.update`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionUpdate {
    /// Echoed in errors only; `session.updated` does not carry it (protocol §2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The session object.
    pub session: Session,
}

/// `input_audio_buffer.append`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputAudioBufferAppend {
    /// Echoed in errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Base64 audio, at most 15 MiB per event (protocol §3).
    pub audio: String,
}

/// `conversation.item.create`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationItemCreate {
    /// Echoed in errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Insert after this item; `"root"` prepends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_item_id: Option<String>,
    /// The item.
    pub item: Item,
}

/// `conversation.item.truncate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationItemTruncate {
    /// Echoed in errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The assistant message.
    pub item_id: String,
    /// The audio part, 0 in practice.
    pub content_index: u32,
    /// Audio kept; the server rejects more than it sent (protocol §3).
    pub audio_end_ms: u64,
}

/// `conversation.item.delete`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationItemDelete {
    /// Echoed in errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The item.
    pub item_id: String,
}

/// `response.create`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ResponseCreate {
    /// Echoed as `error.event_id` of `conversation_already_has_active_response` (protocol §8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Per-response overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<ResponseCreateParams>,
}

/// `response.cancel`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ResponseCancel {
    /// Echoed in errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// A specific response; absent cancels the default conversation's active one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_id: Option<String>,
}

impl ClientEvent {
    /// `input_audio_buffer.append` of raw bytes in the session input format.
    pub fn append(audio: &[u8]) -> Self {
        Self::InputAudioBufferAppend(InputAudioBufferAppend {
            event_id: None,
            audio: base64::engine::general_purpose::STANDARD.encode(audio),
        })
    }

    /// The JSON text of [`ClientEvent::append`]`(audio)` (no event id), written directly:
    /// base64 needs no JSON escaping, so this skips the event's copy of the base64 and the
    /// serializer's escape scan over it (the hot path: 25 appends a second per call).
    pub fn append_json(audio: &[u8]) -> String {
        const HEAD: &str = r#"{"type":"input_audio_buffer.append","audio":""#;
        const TAIL: &str = r#""}"#;
        let mut json = String::with_capacity(HEAD.len() + audio.len().div_ceil(3) * 4 + TAIL.len());
        json.push_str(HEAD);
        // SIMD base64 (AVX2/SSSE3 picked at run time): the caller's audio of every call goes
        // through here 25 times a second; tested equal to the typed event's encoding.
        base64_simd::STANDARD.encode_append(audio, &mut json);
        json.push_str(TAIL);
        json
    }

    /// `input_audio_buffer.commit`.
    pub fn commit() -> Self {
        Self::InputAudioBufferCommit(EventOnly::default())
    }

    /// `input_audio_buffer.clear`.
    pub fn clear() -> Self {
        Self::InputAudioBufferClear(EventOnly::default())
    }

    /// `conversation.item.create` appending `item`.
    pub fn create_item(item: Item) -> Self {
        Self::ConversationItemCreate(ConversationItemCreate {
            event_id: None,
            previous_item_id: None,
            item,
        })
    }

    /// `conversation.item.delete`.
    pub fn delete_item(item_id: impl Into<String>) -> Self {
        Self::ConversationItemDelete(ConversationItemDelete {
            event_id: None,
            item_id: item_id.into(),
        })
    }

    /// `response.create`, optionally with overrides.
    pub fn create_response(params: Option<ResponseCreateParams>) -> Self {
        Self::ResponseCreate(ResponseCreate {
            event_id: None,
            response: params,
        })
    }

    /// `response.cancel` of the default conversation's active response.
    pub fn cancel_response() -> Self {
        Self::ResponseCancel(ResponseCancel::default())
    }

    /// Sets `event_id`, so a rejection can be tied back to this event (protocol §3, `error`).
    pub fn with_event_id(mut self, id: impl Into<String>) -> Self {
        let id = Some(id.into());
        match &mut self {
            Self::SessionUpdate(e) => e.event_id = id,
            Self::InputAudioBufferAppend(e) => e.event_id = id,
            Self::InputAudioBufferCommit(e) | Self::InputAudioBufferClear(e) => e.event_id = id,
            Self::ConversationItemCreate(e) => e.event_id = id,
            Self::ConversationItemTruncate(e) => e.event_id = id,
            Self::ConversationItemDelete(e) => e.event_id = id,
            Self::ResponseCreate(e) => e.event_id = id,
            Self::ResponseCancel(e) => e.event_id = id,
            Self::Unknown { .. } => {}
        }
        self
    }

    /// The `event_id`, if set.
    pub fn event_id(&self) -> Option<&str> {
        match self {
            Self::SessionUpdate(e) => e.event_id.as_deref(),
            Self::InputAudioBufferAppend(e) => e.event_id.as_deref(),
            Self::InputAudioBufferCommit(e) | Self::InputAudioBufferClear(e) => {
                e.event_id.as_deref()
            }
            Self::ConversationItemCreate(e) => e.event_id.as_deref(),
            Self::ConversationItemTruncate(e) => e.event_id.as_deref(),
            Self::ConversationItemDelete(e) => e.event_id.as_deref(),
            Self::ResponseCreate(e) => e.event_id.as_deref(),
            Self::ResponseCancel(e) => e.event_id.as_deref(),
            Self::Unknown { raw, .. } => raw.get("event_id").and_then(|v| v.as_str()),
        }
    }
}
