//! Caller audio to the Realtime socket, done on the call's media thread. The media thread
//! decodes (or, with G.711 pass-through, takes the payload as it arrived), this encodes it in
//! the socket's format, builds each `input_audio_buffer.append` and queues it in the live
//! connection's [`Outbox`], whose writer task is the only one woken: the session task sleeps
//! until the server says something. While no connection is attached (reconnecting) the audio
//! is dropped and counted, as the bounded outbox drops its oldest appends when a socket stalls.
//!
//! Append size: small appends make the server's VAD respond sooner, and each costs a
//! WebSocket write. So appends are short (`append_frames`, 40 ms) whenever the VAD's timing
//! matters: from the first frame with sound in it, while the server says the caller speaks
//! (`speech_started` until `speech_stopped`), and for [`HANGOVER_FRAMES`] after the last
//! sound. Between turns, when the caller has been quiet that long and the server hears no
//! speech, they grow to `idle_frames` (100 ms); the first frame with sound sends what waits
//! at once, so no onset waits for a long append to fill.

use super::outbox::Outbox;
use super::wire::WireAudio;
use super::{bump, AiCounters};
use crate::media::CallerAudio;
use codec::{g711, Frame, PayloadCodec};
use realtime::{AudioFormat, ClientEvent};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Quiet 20 ms frames in a row (1 s) after which, unless the server hears speech, appends
/// grow to their between-turns size.
pub const HANGOVER_FRAMES: u32 = 50;

/// A 20 ms frame whose mean absolute sample (16-bit scale) is at most this is quiet: about
/// -57 dBFS, some 10 dB over a G.711 line's idle noise (-65 dBm0) and far under speech.
const QUIET_MEAN_ABS: u32 = 48;

/// Whether `samples` (16-bit linear) are quiet.
fn quiet(samples: impl ExactSizeIterator<Item = i16>) -> bool {
    let n = samples.len().max(1) as u64;
    let sum: u64 = samples.map(|s| u64::from(s.unsigned_abs())).sum();
    sum <= u64::from(QUIET_MEAN_ABS) * n
}

/// One call's caller-audio path into whichever Realtime connection is live.
pub struct Uplink {
    inner: Mutex<Inner>,
    /// The server's VAD hears the caller (`speech_started` until `speech_stopped`).
    speaking: AtomicBool,
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
    /// Frames per append between turns (at least `append_frames`).
    idle_frames: u32,
    /// Quiet frames in a row (saturating).
    quiet_run: u32,
    /// 20 ms of audio in the socket's format, in bytes (a raw payload's frame count).
    frame_bytes: usize,
}

impl Uplink {
    /// For a session whose input format is `format`, `append_frames` 20 ms frames per append,
    /// `idle_frames` between turns.
    pub fn new(
        format: AudioFormat,
        append_frames: u32,
        idle_frames: u32,
        counters: Arc<AiCounters>,
    ) -> Self {
        let append_frames = append_frames.max(1);
        let idle_frames = idle_frames.max(append_frames);
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
                pending: Vec::with_capacity(idle_frames as usize * frame_bytes),
                pending_frames: 0,
                append_frames,
                idle_frames,
                quiet_run: 0,
                frame_bytes,
            }),
            speaking: AtomicBool::new(false),
            appended: AtomicU64::new(0),
            counters,
            raw,
        }
    }

    /// Appends go to `outbox` from now on (a fresh connection, or the next agent's session).
    /// A partial append is kept: it is the caller's next 20 ms either way. The media thread
    /// takes this lock for every frame: callers attach only when the connection changed, so
    /// a tokio thread holding it cannot be preempted and keep the media thread waiting.
    /// The new session's VAD has heard nothing yet.
    pub fn attach(&self, outbox: &Arc<Outbox>) {
        self.speaking.store(false, Ordering::Relaxed);
        if let Ok(mut i) = self.inner.lock() {
            i.outbox = Some(outbox.clone());
        }
    }

    /// The server's VAD says the caller started (`true`) or stopped speaking.
    pub fn set_caller_speaking(&self, speaking: bool) {
        self.speaking.store(speaking, Ordering::Relaxed);
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

    /// `fill` adds `frames` 20 ms frames (`quiet` or not) to the pending append; true once it
    /// is complete. Detached: nothing is added and the frames are counted as dropped.
    fn add(
        &self,
        frames: impl FnOnce(&Inner) -> u32,
        quiet: bool,
        fill: impl FnOnce(&mut Inner),
    ) -> bool {
        let Ok(mut i) = self.inner.lock() else {
            return false;
        };
        let n = frames(&i);
        i.quiet_run = if quiet {
            i.quiet_run.saturating_add(n)
        } else {
            0
        };
        if i.outbox.is_none() {
            bump(&self.counters.audio_frames_dropped, u64::from(n));
            return false;
        }
        fill(&mut i);
        i.pending_frames += n;
        let between_turns =
            i.quiet_run >= HANGOVER_FRAMES && !self.speaking.load(Ordering::Relaxed);
        i.pending_frames
            >= if between_turns {
                i.idle_frames
            } else {
                i.append_frames
            }
    }
}

impl CallerAudio for Uplink {
    fn raw_codec(&self) -> Option<PayloadCodec> {
        self.raw
    }

    fn frame(&self, frame: &Frame) -> bool {
        self.add(
            |_| 1,
            quiet(frame.as_slice().iter().copied()),
            |i| {
                let Inner { wire, pending, .. } = i;
                wire.push_frame(frame, pending);
            },
        )
    }

    fn payload(&self, payload: &[u8]) -> bool {
        let quiet = match self.raw {
            Some(PayloadCodec::Pcma) => quiet(payload.iter().map(|&c| g711::alaw_to_linear(c))),
            _ => quiet(payload.iter().map(|&c| g711::ulaw_to_linear(c))),
        };
        self.add(
            |i| payload.len().div_ceil(i.frame_bytes).max(1) as u32,
            quiet,
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
        let up = Uplink::new(
            AudioFormat::pcm24k(),
            append_frames,
            append_frames,
            counters.clone(),
        );
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
        let up = Uplink::new(AudioFormat::Pcmu, 2, 5, counters);
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
            Uplink::new(AudioFormat::pcm24k(), 2, 5, Arc::default()).raw_codec(),
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

    /// Feeds `n` frames (loud or quiet), handing over whenever a batch is complete; the
    /// sizes (in frames) of the appends that went out.
    fn feed(up: &Uplink, outbox: &Outbox, n: usize, loud: bool) -> Vec<u32> {
        let mut f = Frame::silence();
        if loud {
            for (k, s) in f.0.iter_mut().enumerate() {
                *s = if k % 2 == 0 { 3000 } else { -3000 };
            }
        }
        let mut sizes = Vec::new();
        for _ in 0..n {
            if up.frame(&f) {
                up.hand_over();
                sizes.extend(drain(outbox).iter().map(|m| m.frames));
            }
        }
        sizes
    }

    fn two_and_five() -> (Uplink, Arc<Outbox>) {
        let up = Uplink::new(AudioFormat::pcm24k(), 2, 5, Arc::default());
        let outbox = Arc::new(Outbox::new(100));
        up.attach(&outbox);
        (up, outbox)
    }

    #[test]
    fn quiet_between_turns_grows_the_appends_after_the_hangover() {
        let (up, outbox) = two_and_five();
        let h = HANGOVER_FRAMES as usize;
        // The first second of quiet still goes in 40 ms appends (the 50th frame is the one
        // that makes it a second: it and the one before it wait for a longer append).
        assert_eq!(feed(&up, &outbox, h, false), vec![2; h / 2 - 1]);
        // Then 100 ms ones.
        assert_eq!(feed(&up, &outbox, 20, false), vec![5; 4]);
    }

    #[test]
    fn sound_sends_what_waits_at_once_and_shortens_the_appends() {
        let (up, outbox) = two_and_five();
        // 48 frames in 40 ms appends, then two 100 ms ones: nothing waits.
        feed(&up, &outbox, HANGOVER_FRAMES as usize + 8, false);
        // Three quiet frames wait for a 100 ms append; the caller speaks: all four go now.
        assert!(feed(&up, &outbox, 3, false).is_empty());
        assert_eq!(feed(&up, &outbox, 1, true), vec![4]);
        assert_eq!(feed(&up, &outbox, 6, true), vec![2; 3]);
        // Quiet again: 40 ms appends for the hangover, then 100 ms.
        let h = HANGOVER_FRAMES as usize;
        assert_eq!(feed(&up, &outbox, h, false), vec![2; h / 2 - 1]);
        assert_eq!(feed(&up, &outbox, 10, false), vec![5; 2]);
    }

    #[test]
    fn the_servers_speech_keeps_short_appends_through_quiet() {
        let (up, outbox) = two_and_five();
        up.set_caller_speaking(true);
        // A pause inside the caller's turn: the VAD counts its silence, so no long appends.
        let sizes = feed(&up, &outbox, 3 * HANGOVER_FRAMES as usize, false);
        assert!(sizes.iter().all(|&n| n == 2), "{sizes:?}");
        up.set_caller_speaking(false);
        assert_eq!(feed(&up, &outbox, 10, false), vec![5; 2]);
        // A fresh session (a handoff, a reconnect) has heard nothing yet.
        up.set_caller_speaking(true);
        up.attach(&outbox);
        assert_eq!(feed(&up, &outbox, 5, false), vec![5]);
    }

    #[test]
    fn g711_idle_codes_are_quiet_and_speech_is_not() {
        for (format, idle, loud) in [
            (AudioFormat::Pcmu, 0xFFu8, 0x10u8),
            (AudioFormat::Pcma, 0xD5, 0xA0),
        ] {
            let up = Uplink::new(format, 2, 5, Arc::default());
            let outbox = Arc::new(Outbox::new(100));
            up.attach(&outbox);
            let mut sizes = Vec::new();
            for _ in 0..HANGOVER_FRAMES + 10 {
                if up.payload(&[idle; 160]) {
                    up.hand_over();
                    sizes.extend(drain(&outbox).iter().map(|m| m.frames));
                }
            }
            assert_eq!(sizes.last(), Some(&5), "{format:?}: idle codes are quiet");
            let loud_now = up.payload(&[loud; 160]);
            assert!(loud_now, "{format:?}: speech sends what waits");
        }
    }
}
