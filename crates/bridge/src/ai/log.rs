//! `--realtime-event-log PATH`: every client event the bridge actually wrote to a Realtime
//! socket, one JSON object per line, audio payloads elided, so the end-to-end tests can run
//! them through the official `openai` types (issue 5 "Conformance"). Off by default.

use super::outbox::Outgoing;
use std::fs::{File, OpenOptions};
use std::io::{LineWriter, Write};
use std::path::Path;
use std::sync::Mutex;

/// What a logged `input_audio_buffer.append` looks like (the audio is elided, the line
/// stays a valid event).
pub const ELIDED_APPEND: &str = r#"{"type":"input_audio_buffer.append","audio":""}"#;

pub struct EventLog {
    file: Mutex<LineWriter<File>>,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventLog")
    }
}

impl EventLog {
    /// Append to `path` (created if missing).
    pub fn open(path: &Path) -> std::io::Result<EventLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(EventLog {
            file: Mutex::new(LineWriter::new(file)),
        })
    }

    pub(super) fn record(&self, m: &Outgoing) {
        let line = if m.audio {
            ELIDED_APPEND
        } else {
            m.text.as_str()
        };
        if let Ok(mut f) = self.file.lock() {
            // A full disk must not take the call down: the log is best effort.
            let _ = f.write_all(line.as_bytes());
            let _ = f.write_all(b"\n");
        }
    }
}
