//! What one Realtime connection still has to write. Control events (session config, items,
//! truncates, responses) are never dropped; caller audio is bounded and, when the socket
//! stalls, loses its oldest frames first (issue 5 "Backpressure"), so memory per call stays
//! bounded whatever the peer does.

use std::collections::VecDeque;
use std::sync::Mutex;
use tokio::sync::Notify;

/// One serialized client event.
#[derive(Debug)]
pub struct Outgoing {
    /// The JSON text to send.
    pub text: String,
    /// Caller audio (droppable; logged with its payload elided).
    pub audio: bool,
    /// 20 ms frames of caller audio in it (0 for control events).
    pub frames: u32,
}

#[derive(Debug, Default)]
struct Queues {
    control: VecDeque<Outgoing>,
    audio: VecDeque<Outgoing>,
    /// 20 ms frames in `audio`.
    audio_frames: usize,
    closed: bool,
}

/// A two-lane queue between the call's session task and its socket writer.
#[derive(Debug)]
pub struct Outbox {
    queues: Mutex<Queues>,
    ready: Notify,
    audio_cap: usize,
}

impl Outbox {
    /// `audio_cap` frames of caller audio at most wait for the socket.
    pub fn new(audio_cap: usize) -> Self {
        Outbox {
            queues: Mutex::new(Queues::default()),
            ready: Notify::new(),
            audio_cap: audio_cap.max(1),
        }
    }

    /// Queue a control event; they go out before any queued audio, in order.
    pub fn push_control(&self, text: String) {
        if let Ok(mut q) = self.queues.lock() {
            q.control.push_back(Outgoing {
                text,
                audio: false,
                frames: 0,
            });
        }
        self.ready.notify_one();
    }

    /// Queue an audio append of `frames` 20 ms frames; returns how many older frames were
    /// dropped to make room (an append larger than the cap waits alone).
    pub fn push_audio(&self, text: String, frames: u32) -> usize {
        let mut dropped = 0;
        if let Ok(mut q) = self.queues.lock() {
            while q.audio_frames + frames as usize > self.audio_cap {
                let Some(old) = q.audio.pop_front() else {
                    break;
                };
                dropped += old.frames as usize;
                q.audio_frames -= old.frames as usize;
            }
            q.audio_frames += frames as usize;
            q.audio.push_back(Outgoing {
                text,
                audio: true,
                frames,
            });
        }
        self.ready.notify_one();
        dropped
    }

    /// Caller audio waiting now, in 20 ms frames.
    pub fn audio_frames(&self) -> usize {
        self.queues.lock().map(|q| q.audio_frames).unwrap_or(0)
    }

    /// Wake the writer and make [`Outbox::pop`] return `None` once the control lane is empty.
    pub fn close(&self) {
        if let Ok(mut q) = self.queues.lock() {
            q.closed = true;
        }
        self.ready.notify_one();
    }

    /// The next event to write: control first, then the oldest audio; `None` once closed.
    pub async fn pop(&self) -> Option<Outgoing> {
        loop {
            match self.next() {
                Next::Event(m) => return Some(m),
                Next::Closed => return None,
                // `notify_one` stores a permit when nobody waits, so no wake-up is lost.
                Next::Empty => self.ready.notified().await,
            }
        }
    }

    /// The next event if one is queued now (control first); `None` when empty or closed.
    pub fn try_pop(&self) -> Option<Outgoing> {
        match self.next() {
            Next::Event(m) => Some(m),
            Next::Closed | Next::Empty => None,
        }
    }

    fn next(&self) -> Next {
        let Ok(mut q) = self.queues.lock() else {
            return Next::Closed;
        };
        if let Some(m) = q.control.pop_front() {
            return Next::Event(m);
        }
        if q.closed {
            return Next::Closed;
        }
        match q.audio.pop_front() {
            Some(m) => {
                q.audio_frames -= m.frames as usize;
                Next::Event(m)
            }
            None => Next::Empty,
        }
    }
}

enum Next {
    Event(Outgoing),
    Closed,
    Empty,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now_or_never<F: std::future::Future>(f: F) -> Option<F::Output> {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        }
    }

    #[test]
    fn audio_is_dropped_oldest_first_and_control_is_never_dropped() {
        let o = Outbox::new(6);
        let mut dropped = 0;
        for i in 0..10 {
            dropped += o.push_audio(format!("a{i}"), 2);
        }
        for i in 0..100 {
            o.push_control(format!("c{i}"));
        }
        assert_eq!(dropped, 14, "7 appends of 2 frames");
        assert_eq!(o.audio_frames(), 6);
        let mut got = Vec::new();
        while let Some(Some(m)) = now_or_never(o.pop()) {
            got.push(m.text);
        }
        assert_eq!(got.len(), 103);
        assert_eq!(
            got[..100],
            (0..100).map(|i| format!("c{i}")).collect::<Vec<_>>()[..]
        );
        assert_eq!(got[100..], ["a7", "a8", "a9"]);
        assert_eq!(o.audio_frames(), 0);
    }

    #[test]
    fn the_cap_counts_frames_whatever_the_append_size() {
        let o = Outbox::new(10);
        assert_eq!(o.push_audio("big".into(), 5), 0);
        assert_eq!(o.push_audio("small".into(), 2), 0);
        assert_eq!(o.push_audio("small2".into(), 2), 0);
        assert_eq!(o.audio_frames(), 9);
        // 9 + 5 > 10: the oldest (5 frames) goes, 4 + 5 fit.
        assert_eq!(o.push_audio("big2".into(), 5), 5);
        assert_eq!(o.audio_frames(), 9);
        // Larger than the cap on its own: everything older goes and it waits alone.
        assert_eq!(o.push_audio("huge".into(), 12), 9);
        assert_eq!(o.audio_frames(), 12);
        assert_eq!(o.try_pop().map(|m| m.text), Some("huge".to_string()));
        assert_eq!(o.audio_frames(), 0);
    }

    #[test]
    fn pop_waits_then_close_ends_it() {
        let o = Outbox::new(2);
        assert!(now_or_never(o.pop()).is_none(), "empty: pending");
        o.push_audio("a".into(), 1);
        o.close();
        // Closed: audio still queued is abandoned (the socket is going away).
        assert!(matches!(now_or_never(o.pop()), Some(None)));
    }
}
