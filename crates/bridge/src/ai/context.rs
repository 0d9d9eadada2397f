//! The call's conversation as the bridge knows it (transcripts of both sides), so that a new
//! WebSocket after a drop can be given it back: a summary of older turns plus the recent turns
//! verbatim, as conversation items (issue 5 "Socket dies mid-call"). Assistant audio cannot be
//! re-created (protocol §8, `missing_required_parameter 'item.content[0].text'`), so turns
//! come back as text.

use realtime::{ContentPart, Item, Role};

/// Recent turns restored verbatim.
pub const RECENT_TURNS: usize = 12;
/// Older turns are folded into a summary of at most this many characters.
pub const SUMMARY_CHARS: usize = 1_500;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    pub item_id: String,
    pub role: Role,
    pub text: String,
}

#[derive(Debug, Default, Clone)]
pub struct Context {
    turns: Vec<Turn>,
    /// Older turns, already condensed.
    summary: String,
}

impl Context {
    /// A caller item (input audio) or an assistant item of a response, in conversation order.
    pub fn on_item(&mut self, item: &Item) {
        let Item::Message(m) = item else { return };
        let Some(id) = m.id.as_deref() else { return };
        let spoken = m.content.iter().any(|p| {
            matches!(
                p,
                ContentPart::InputAudio { .. } | ContentPart::OutputAudio { .. }
            )
        });
        // Items we created ourselves (restored text) are already known.
        if !spoken || self.turns.iter().any(|t| t.item_id == id) {
            if let Some(text) = transcript_of(&m.content) {
                self.set_text(id, &text);
            }
            return;
        }
        let role = m.role;
        if !matches!(role, Role::User | Role::Assistant) {
            return;
        }
        self.turns.push(Turn {
            item_id: id.to_string(),
            role,
            text: transcript_of(&m.content).unwrap_or_default(),
        });
        self.fold();
    }

    /// An assistant item started streaming (its content arrives later).
    pub fn on_assistant_started(&mut self, item_id: &str) {
        if !self.turns.iter().any(|t| t.item_id == item_id) {
            self.turns.push(Turn {
                item_id: item_id.to_string(),
                role: Role::Assistant,
                text: String::new(),
            });
            self.fold();
        }
    }

    /// A streamed transcript piece of an assistant item.
    pub fn on_assistant_delta(&mut self, item_id: &str, delta: &str) {
        self.on_assistant_started(item_id);
        if let Some(t) = self.turns.iter_mut().find(|t| t.item_id == item_id) {
            t.text.push_str(delta);
        }
    }

    /// A final transcript (assistant `…transcript.done`, caller transcription completed).
    pub fn set_text(&mut self, item_id: &str, text: &str) {
        if let Some(t) = self.turns.iter_mut().find(|t| t.item_id == item_id) {
            if !text.is_empty() {
                t.text = text.to_string();
            }
        }
    }

    pub fn turns(&self) -> &[Turn] {
        &self.turns
    }

    pub fn summary(&self) -> &str {
        &self.summary
    }

    /// Keep the last [`RECENT_TURNS`] verbatim; older ones go into the bounded summary.
    fn fold(&mut self) {
        while self.turns.len() > RECENT_TURNS {
            let t = self.turns.remove(0);
            if t.text.is_empty() {
                continue;
            }
            let who = if t.role == Role::User {
                "Caller"
            } else {
                "Agent"
            };
            if !self.summary.is_empty() {
                self.summary.push(' ');
            }
            self.summary.push_str(&format!("{who}: {}", t.text.trim()));
            if self.summary.len() > SUMMARY_CHARS {
                // Keep the most recent part; cut at a char boundary.
                let mut cut = self.summary.len() - SUMMARY_CHARS;
                while !self.summary.is_char_boundary(cut) {
                    cut += 1;
                }
                self.summary = format!("…{}", &self.summary[cut..]);
            }
        }
    }

    /// Items that give a fresh session the conversation so far; empty when nothing was said.
    /// `interrupted` is the assistant text the caller was hearing when the socket died.
    pub fn restore_items(&self, interrupted: Option<&str>) -> Vec<Item> {
        let spoken: Vec<&Turn> = self.turns.iter().filter(|t| !t.text.is_empty()).collect();
        if spoken.is_empty() && self.summary.is_empty() {
            return Vec::new();
        }
        let mut note = String::from(
            "The connection to you dropped and was restored; the phone call itself never \
             dropped. The conversation so far follows; do not greet the caller again.",
        );
        if !self.summary.is_empty() {
            note.push_str(" Summary of the earlier part: ");
            note.push_str(&self.summary);
        }
        let mut items = vec![Item::system_text(note)];
        for t in spoken {
            items.push(match t.role {
                Role::User => Item::user_text(t.text.clone()),
                _ => Item::assistant_text(t.text.clone()),
            });
        }
        if let Some(cut) = interrupted.filter(|s| !s.is_empty()) {
            items.push(Item::system_text(format!(
                "You were cut off while saying: \"{cut}\". Apologise briefly for the \
                 interruption and continue from there."
            )));
        }
        items
    }

    /// The assistant text of `item_id` so far (what the caller was hearing).
    pub fn text_of(&self, item_id: &str) -> Option<&str> {
        self.turns
            .iter()
            .find(|t| t.item_id == item_id)
            .map(|t| t.text.as_str())
    }
}

fn transcript_of(parts: &[ContentPart]) -> Option<String> {
    parts.iter().find_map(|p| match p {
        ContentPart::InputAudio {
            transcript: Some(t),
            ..
        }
        | ContentPart::OutputAudio {
            transcript: Some(t),
            ..
        } if !t.is_empty() => Some(t.clone()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use realtime::MessageItem;

    fn spoken(id: &str, role: Role, transcript: Option<&str>) -> Item {
        let part = match role {
            Role::User => ContentPart::InputAudio {
                audio: None,
                transcript: transcript.map(String::from),
            },
            _ => ContentPart::OutputAudio {
                audio: None,
                transcript: transcript.map(String::from),
            },
        };
        Item::Message(MessageItem {
            id: Some(id.into()),
            object: None,
            status: None,
            role,
            content: vec![part],
        })
    }

    fn texts(items: &[Item]) -> Vec<String> {
        items
            .iter()
            .map(|i| match i {
                Item::Message(m) => match &m.content[0] {
                    ContentPart::InputText { text } | ContentPart::OutputText { text } => {
                        format!("{:?}:{text}", m.role)
                    }
                    other => format!("{other:?}"),
                },
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn restores_turns_in_order_with_late_transcripts_and_the_cut_off_answer() {
        let mut c = Context::default();
        assert!(
            c.restore_items(None).is_empty(),
            "nothing said: nothing to restore"
        );
        c.on_item(&spoken("u1", Role::User, None));
        c.on_assistant_delta("a1", "Hello, how ");
        c.on_assistant_delta("a1", "can I help?");
        // The caller's transcript arrives after the answer (protocol §3).
        c.set_text("u1", "I was charged $49");
        c.on_item(&spoken(
            "a1",
            Role::Assistant,
            Some("Hello, how can I help?"),
        ));
        c.on_assistant_delta("a2", "Let me look at your");
        let items = c.restore_items(c.text_of("a2"));
        let t = texts(&items);
        assert_eq!(t.len(), 5, "{t:?}");
        assert!(t[0].starts_with("System:The connection to you dropped"));
        assert_eq!(t[1], "User:I was charged $49");
        assert_eq!(t[2], "Assistant:Hello, how can I help?");
        assert_eq!(t[3], "Assistant:Let me look at your");
        assert!(t[4].contains("cut off while saying: \"Let me look at your\""));
    }

    #[test]
    fn older_turns_fold_into_a_bounded_summary() {
        let mut c = Context::default();
        for i in 0..200 {
            let role = if i % 2 == 0 {
                Role::User
            } else {
                Role::Assistant
            };
            c.on_item(&spoken(
                &format!("i{i}"),
                role,
                Some(&format!("turn number {i}")),
            ));
        }
        assert_eq!(c.turns().len(), RECENT_TURNS);
        assert!(c.summary().chars().count() <= SUMMARY_CHARS + 1);
        assert!(
            c.summary().ends_with("Agent: turn number 187"),
            "{}",
            c.summary()
        );
        let items = c.restore_items(None);
        assert_eq!(items.len(), 1 + RECENT_TURNS);
        assert!(texts(&items)[0].contains("Summary of the earlier part"));
    }

    #[test]
    fn our_own_restored_text_items_are_not_recorded_twice() {
        let mut c = Context::default();
        c.on_item(&spoken("u1", Role::User, Some("hi")));
        // After a reconnect the server echoes the text items we created.
        let mut echoed = Item::user_text("hi");
        if let Item::Message(m) = &mut echoed {
            m.id = Some("srv_1".into());
        }
        c.on_item(&echoed);
        assert_eq!(c.turns().len(), 1);
    }
}
