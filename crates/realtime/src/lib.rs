//! OpenAI Realtime GA protocol, sans-IO: typed events, a session config builder and a
//! conversation tracker. Wire facts: `../shared/realtime-protocol.md` ("protocol §N").
#![deny(missing_docs)]

mod audio;
mod client;
mod config;
mod error;
mod item;
mod response;
mod server;
mod session;
mod tagged;
mod tracker;

pub use audio::{AudioFormat, PCM_RATE};
pub use client::{
    ClientEvent, ConversationItemCreate, ConversationItemDelete, ConversationItemTruncate,
    EventOnly, InputAudioBufferAppend, ResponseCancel, ResponseCreate, SessionUpdate,
};
pub use config::{SessionBuilder, SessionConfig};
pub use error::{ConfigError, EncodeError, ParseError};
pub use item::{
    ContentPart, FunctionCallItem, FunctionCallOutputItem, Item, ItemStatus, MessageItem, Role,
};
pub use response::{
    ConversationMode, InputTokenDetails, Response, ResponseAudio, ResponseAudioOutput,
    ResponseCreateParams, ResponseStatus, StatusDetails, TokenDetails, Usage,
};
pub use server::{
    codes, ContentPartEvent, ConversationItemEvent, ConversationItemTruncated, ErrorDetail,
    ErrorEvent, EventIdOnly, FunctionCallArgumentsDelta, FunctionCallArgumentsDone,
    InputAudioBufferCommitted, InputTranscriptionCompleted, InputTranscriptionDelta, ItemIdEvent,
    OutputDelta, OutputItemEvent, OutputPartDone, RateLimit, RateLimitsUpdated, ResponseEvent,
    ServerEvent, SessionEvent, SpeechStarted, SpeechStopped,
};
pub use session::{
    AudioInput, AudioOutput, Eagerness, FunctionKind, FunctionTool, Inf, MaxOutputTokens, Modality,
    NoiseReduction, Session, SessionAudio, SessionType, Tool, ToolChoice, ToolChoiceFunction,
    ToolChoiceMode, Transcription, TurnDetection, Voice,
};
pub use tracker::{FunctionCall, ItemKind, ItemState, Tracker, MIN_COMMIT_MS};
