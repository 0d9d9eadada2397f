//! The optional log of every server event sent, one JSON line each, audio elided, so tests can
//! validate a whole run with openai-python's models.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use serde_json::Value;

/// Appends lines to one file shared by all connections; a line is written whole.
#[derive(Debug)]
pub(crate) struct EventLog {
    file: Mutex<File>,
    /// Set after the first failed write, so a full disk warns once.
    failed: AtomicBool,
}

impl EventLog {
    /// Opens `path` for appending, creating it.
    pub(crate) fn open(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self {
            file: Mutex::new(file),
            failed: AtomicBool::new(false),
        })
    }

    /// Logs one encoded event; `wire` is its JSON as sent. Audio deltas are logged with
    /// `delta: ""` (the bytes are not worth keeping and make the log huge).
    pub(crate) fn write(&self, event: &Value, wire: &str) {
        let mut line =
            if event.get("type").and_then(Value::as_str) == Some("response.output_audio.delta") {
                let mut elided = event.clone();
                if let Some(obj) = elided.as_object_mut() {
                    obj.insert("delta".into(), Value::String(String::new()));
                }
                elided.to_string()
            } else {
                wire.to_owned()
            };
        line.push('\n');
        let res = match self.file.lock() {
            Ok(mut f) => f.write_all(line.as_bytes()),
            Err(poisoned) => poisoned.into_inner().write_all(line.as_bytes()),
        };
        if let Err(e) = res {
            if !self.failed.swap(true, Ordering::Relaxed) {
                tracing::warn!(error = %e, "simulator event log write failed");
            }
        }
    }
}
