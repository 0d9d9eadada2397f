//! Caller audio to the Realtime socket, done on the call's media thread. The media thread
//! decodes (or, with G.711 pass-through, takes the payload as it arrived), this encodes it in
//! the socket's format, builds each `input_audio_buffer.append` and queues it in the live
//! connection's [`Outbox`], whose writer task is the only one woken: the session task sleeps
//! until the server says something. While no connection is attached (reconnecting) the audio
//! is dropped and counted, as the bounded outbox drops its oldest appends when a socket stalls.

use super::outbox::Outbox;
use super::wire::WireAudio;
use super::{bump, AiCounters};
use crate::media::CallerAudio;
use codec::{Frame, PayloadCodec};
use realtime::{AudioFormat, ClientEvent};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// One call's caller-audio path into whichever Realtime connection is live.
pub struct Uplink {
    inner: Mutex<Inner>,
    /// Bytes appended since the session task last took them (its tracker's input count).
    appended: AtomicU64,
    counters: Arc<AiCounters>,
    /// The RTP codec passed through undecoded (the socket speaks the caller's G.711).
    raw: Option<PayloadCodec>,
}

struct Inner {
    outbox: Option<Arc<Outbox>>,
    wire: WireAudio,
    /// Audio not yet appended, in the socket's format, and how many 20 ms frames it holds.
    pending: Vec<u8>,
    pending_frames: u32,
    append_frames: u32,
    /// 20 ms of audio in the socket's format, in bytes (a raw payload's frame count).
    frame_bytes: usize,
}

impl Uplink {
    /// For a session whose input format is `format`, `append_frames` 20 ms frames per append.
    pub fn new(format: AudioFormat, append_frames: u32, counters: Arc<AiCounters>) -> Self {
        let append_frames = append_frames.max(1);
        let frame_bytes = (format.bytes_per_ms() as usize * 20).max(1);
        let raw = match format {
            AudioFormat::Pcmu => Some(PayloadCodec::Pcmu),
            AudioFormat::Pcma => Some(PayloadCodec::Pcma),
            AudioFormat::Pcm { .. } => None,
        };
        Uplink {
            inner: Mutex::new(Inner {
                outbox: None,
                wire: WireAudio::for_format(format),
                pending: Vec::with_capacity(append_frames as usize * frame_bytes),
                pending_frames: 0,
                append_frames,
                frame_bytes,
            }),
            appended: AtomicU64::new(0),
            counters,
            raw,
        }
    }

    /// Appends go to `outbox` from now on (a fresh connection, or the next agent's session).
    /// A partial append is kept: it is the caller's next 20 ms either way. The media thread
    /// takes this lock for every frame: callers attach only when the connection changed, so
    /// a tokio thread holding it cannot be preempted and keep the media thread waiting.
    pub fn attach(&self, outbox: &Arc<Outbox>) {
        if let Ok(mut i) = self.inner.lock() {
            i.outbox = Some(outbox.clone());
        }
    }

    /// The connection is gone: audio is dropped (and counted) until the next [`attach`].
    ///
    /// [`attach`]: Uplink::attach
    pub fn detach(&self) {
        if let Ok(mut i) = self.inner.lock() {
            i.outbox = None;
            let frames = std::mem::take(&mut i.pending_frames);
            i.pending.clear();
            bump(&self.counters.audio_frames_dropped, u64::from(frames));
        }
    }

    /// Bytes appended since the last call (for the session's tracker).
    pub fn take_appended(&self) -> u64 {
        self.appended.swap(0, Ordering::Relaxed)
    }

    /// `fill` adds `frames` 20 ms frames to the pending append; true once it is complete.
    /// Detached: nothing is added and the frames are counted as dropped.
    fn add(&self, frames: impl FnOnce(&Inner) -> u32, fill: impl FnOnce(&mut Inner)) -> bool {
        let Ok(mut i) = self.inner.lock() else {
            return false;
        };
        let n = frames(&i);
        if i.outbox.is_none() {
            bump(&self.counters.audio_frames_dropped, u64::from(n));
            return false;
        }
        fill(&mut i);
        i.pending_frames += n;
        i.pending_frames >= i.append_frames
    }
}

impl CallerAudio for Uplink {
    fn raw_codec(&self) -> Option<PayloadCodec> {
        self.raw
    }

    fn frame(&self, frame: &Frame) -> bool {
        self.add(
            |_| 1,
            |i| {
                let Inner { wire, pending, .. } = i;
                wire.push_frame(frame, pending);
            },
        )
    }

    fn payload(&self, payload: &[u8]) -> bool {
        self.add(
            |i| payload.len().div_ceil(i.frame_bytes).max(1) as u32,
            |i| i.pending.extend_from_slice(payload),
        )
    }

    fn hand_over(&self) {
        let Ok(mut guard) = self.inner.lock() else {
            return;
        };
        let i = &mut *guard;
        if i.pending_frames < i.append_frames {
            return;
        }
        let Some(outbox) = &i.outbox else {
            return;
        };
        let json = ClientEvent::append_json(&i.pending);
        let frames = std::mem::take(&mut i.pending_frames);
        self.appended
            .fetch_add(i.pending.len() as u64, Ordering::Relaxed);
        i.pending.clear();
        let dropped = outbox.push_audio(json, frames);
        if dropped > 0 {
            bump(&self.counters.audio_frames_dropped, dropped as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcm_uplink(append_frames: u32) -> (Uplink, Arc<Outbox>, Arc<AiCounters>) {
        let counters = Arc::new(AiCounters::default());
        let up = Uplink::new(AudioFormat::pcm24k(), append_frames, counters.clone());
        (up, Arc::new(Outbox::new(4)), counters)
    }

    fn drain(o: &Outbox) -> Vec<super::super::outbox::Outgoing> {
        std::iter::from_fn(|| o.try_pop()).collect()
    }

    #[test]
    fn frames_become_appends_of_the_set_size_only_when_attached() {
        let (up, outbox, counters) = pcm_uplink(2);
        let frame = Frame::silence();
        assert!(!up.frame(&frame), "detached: dropped");
        assert_eq!(counters.audio_frames_dropped.load(Ordering::Relaxed), 1);
        up.attach(&outbox);
        assert!(!up.frame(&frame));
        up.hand_over();
        assert!(drain(&outbox).is_empty(), "half an append waits");
        assert!(up.frame(&frame), "second frame completes the append");
        up.hand_over();
        let sent = drain(&outbox);
        assert_eq!(sent.len(), 1);
        assert!(sent[0].audio);
        assert_eq!(sent[0].frames, 2);
        assert_eq!(
            sent[0].text,
            ClientEvent::append_json(&vec![0u8; 2 * Frame::SAMPLES * 2])
        );
        assert_eq!(up.take_appended(), (2 * Frame::SAMPLES * 2) as u64);
        assert_eq!(up.take_appended(), 0);
    }

    #[test]
    fn raw_g711_payloads_pass_through_unchanged() {
        let counters = Arc::new(AiCounters::default());
        let up = Uplink::new(AudioFormat::Pcmu, 2, counters);
        assert_eq!(up.raw_codec(), Some(PayloadCodec::Pcmu));
        let outbox = Arc::new(Outbox::new(4));
        up.attach(&outbox);
        let a: Vec<u8> = (0..160).map(|i| i as u8).collect();
        let b: Vec<u8> = (0..160).map(|i| 255 - i as u8).collect();
        assert!(!up.payload(&a));
        assert!(up.payload(&b));
        up.hand_over();
        let sent = drain(&outbox);
        let expected: Vec<u8> = a.iter().chain(&b).copied().collect();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].text, ClientEvent::append_json(&expected));
        assert_eq!(
            Uplink::new(AudioFormat::pcm24k(), 2, Arc::default()).raw_codec(),
            None
        );
    }

    #[test]
    fn detach_drops_the_partial_append_and_counts_it() {
        let (up, outbox, counters) = pcm_uplink(3);
        up.attach(&outbox);
        up.frame(&Frame::silence());
        up.frame(&Frame::silence());
        up.detach();
        assert_eq!(counters.audio_frames_dropped.load(Ordering::Relaxed), 2);
        up.attach(&outbox);
        for _ in 0..3 {
            up.frame(&Frame::silence());
        }
        up.hand_over();
        assert_eq!(
            drain(&outbox)[0].frames,
            3,
            "a whole append after reattaching"
        );
    }
}
