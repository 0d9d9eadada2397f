//! Conversation items and their content parts (protocol §3, "Item shapes").

use serde::{Deserialize, Serialize};

/// A conversation item, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Item {
    /// A user, system or assistant message.
    Message(MessageItem),
    /// The model asks the bridge to run a tool.
    FunctionCall(FunctionCallItem),
    /// The bridge's answer to a `function_call`.
    FunctionCallOutput(FunctionCallOutputItem),
}

impl Item {
    /// The server-assigned id, if any.
    pub fn id(&self) -> Option<&str> {
        match self {
            Self::Message(m) => m.id.as_deref(),
            Self::FunctionCall(f) => f.id.as_deref(),
            Self::FunctionCallOutput(f) => f.id.as_deref(),
        }
    }

    /// A user message with one `input_text` part.
    pub fn user_text(text: impl Into<String>) -> Self {
        Self::message(Role::User, ContentPart::InputText { text: text.into() })
    }

    /// A system message with one `input_text` part (system content is `input_text`).
    pub fn system_text(text: impl Into<String>) -> Self {
        Self::message(Role::System, ContentPart::InputText { text: text.into() })
    }

    /// An assistant message with one `output_text` part; assistant audio cannot be injected
    /// (protocol §3, agents-js #963).
    pub fn assistant_text(text: impl Into<String>) -> Self {
        Self::message(
            Role::Assistant,
            ContentPart::OutputText { text: text.into() },
        )
    }

    /// A `function_call_output` answering `call_id`.
    pub fn function_output(call_id: impl Into<String>, output: impl Into<String>) -> Self {
        Self::FunctionCallOutput(FunctionCallOutputItem {
            id: None,
            object: None,
            status: None,
            call_id: call_id.into(),
            output: output.into(),
        })
    }

    fn message(role: Role, part: ContentPart) -> Self {
        Self::Message(MessageItem {
            id: None,
            object: None,
            status: None,
            role,
            content: vec![part],
        })
    }
}

/// `{"type":"message", role, content}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageItem {
    /// `item_...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `realtime.item` in server events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// Lifecycle status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ItemStatus>,
    /// Who speaks.
    pub role: Role,
    /// Content parts.
    #[serde(default)]
    pub content: Vec<ContentPart>,
}

/// `{"type":"function_call", name, call_id, arguments}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCallItem {
    /// `item_...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `realtime.item` in server events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// Lifecycle status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ItemStatus>,
    /// Tool name: the authoritative source of it (protocol §3, DESIGN "Protocol facts").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Pairs the call with its output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// JSON string; empty while streaming.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
}

/// `{"type":"function_call_output", call_id, output}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCallOutputItem {
    /// `item_...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `realtime.item` in server events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// Lifecycle status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ItemStatus>,
    /// The call this answers.
    pub call_id: String,
    /// Tool result, a string (usually JSON).
    pub output: String,
}

/// Message role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The caller.
    User,
    /// The model.
    Assistant,
    /// Injected context.
    System,
}

/// Item status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    /// Still streaming.
    InProgress,
    /// Finished.
    Completed,
    /// Cut short (cancel, truncation, token limit).
    Incomplete,
}

/// A content part of a message, or the `part` of `response.content_part.*` (protocol §3: parts
/// there use `audio`/`text`, items use `output_audio`/`output_text`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    /// User or system text.
    InputText {
        /// The text.
        text: String,
    },
    /// User audio; the server sends `transcript: null` until transcribed (protocol §3).
    InputAudio {
        /// Base64 audio (we send it; the server omits it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        audio: Option<String>,
        /// Transcript, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        transcript: Option<String>,
    },
    /// Assistant text.
    OutputText {
        /// The text.
        text: String,
    },
    /// Assistant audio (server only; cannot be created by clients).
    OutputAudio {
        /// Base64 audio; omitted by `response.done`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        audio: Option<String>,
        /// Transcript of what was said.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        transcript: Option<String>,
    },
    /// `response.content_part.*` text part.
    Text {
        /// Text so far.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
    /// `response.content_part.*` audio part.
    Audio {
        /// Transcript so far.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        transcript: Option<String>,
    },
}
