//! Playout buffer between whoever produces the caller's audio (echo, later the Realtime
//! model) and the 20 ms RTP clock. Audio arrives in arbitrary chunks faster than real time;
//! it leaves one `Frame` per tick. On barge-in it is flushed at once, and it knows how many
//! milliseconds of each source item were actually sent, so a truncate never claims more than
//! the caller heard.

use codec::Frame;
use std::collections::VecDeque;

/// Identifies the source item of some audio (a Realtime assistant item id, "echo", ...).
pub type ItemId = std::sync::Arc<str>;

#[derive(Debug)]
pub struct PlayoutBuffer {
    queue: VecDeque<(ItemId, Frame)>,
    /// Samples of an item not yet making a whole frame.
    partial: Option<(ItemId, Vec<i16>)>,
    /// Milliseconds sent per item, in the order items started.
    played: Vec<(ItemId, u32)>,
    max_frames: usize,
    overflow_frames: u64,
}

impl PlayoutBuffer {
    /// `max_ms` bounds memory: audio beyond it is dropped (oldest kept: the caller hears the
    /// beginning of a reply, not a splice) and counted.
    pub fn new(max_ms: u32) -> Self {
        PlayoutBuffer {
            queue: VecDeque::new(),
            partial: None,
            played: Vec::new(),
            max_frames: (max_ms / Frame::DURATION_MS).max(1) as usize,
            overflow_frames: 0,
        }
    }

    /// Append 24 kHz samples of `item`. A change of item pads the previous item's last partial
    /// frame with silence.
    pub fn push_samples(&mut self, item: &ItemId, mut samples: &[i16]) {
        if self.partial.as_ref().is_some_and(|(id, _)| id != item) {
            self.finish_item();
        }
        let (_, buf) = self
            .partial
            .get_or_insert_with(|| (item.clone(), Vec::with_capacity(Frame::SAMPLES)));
        while !samples.is_empty() {
            let take = (Frame::SAMPLES - buf.len()).min(samples.len());
            buf.extend_from_slice(&samples[..take]);
            samples = &samples[take..];
            if buf.len() == Frame::SAMPLES {
                let mut f = Frame::silence();
                f.0.copy_from_slice(buf);
                buf.clear();
                if self.queue.len() < self.max_frames {
                    self.queue.push_back((item.clone(), f));
                } else {
                    self.overflow_frames += 1;
                }
            }
        }
    }

    /// Append one whole frame of `item`.
    pub fn push_frame(&mut self, item: &ItemId, frame: Frame) {
        self.push_samples(item, &frame.0);
    }

    /// The item is complete: send its last partial frame, padded with silence.
    pub fn finish_item(&mut self) {
        if let Some((id, buf)) = self.partial.take() {
            if !buf.is_empty() {
                let mut f = Frame::silence();
                f.0[..buf.len()].copy_from_slice(&buf);
                if self.queue.len() < self.max_frames {
                    self.queue.push_back((id, f));
                } else {
                    self.overflow_frames += 1;
                }
            }
        }
    }

    /// The frame for this 20 ms tick, or `None` when there is nothing to say (send silence).
    /// Counts the frame as played for its item.
    pub fn next_frame(&mut self) -> Option<(ItemId, Frame)> {
        let (id, frame) = self.queue.pop_front()?;
        match self.played.iter_mut().find(|(i, _)| *i == id) {
            Some((_, ms)) => *ms += Frame::DURATION_MS,
            None => {
                // Keep the list short: only recent items matter for truncation.
                if self.played.len() >= 32 {
                    self.played.remove(0);
                }
                self.played.push((id.clone(), Frame::DURATION_MS));
            }
        }
        Some((id, frame))
    }

    /// Barge-in: drop everything not yet sent. Returns the frames dropped.
    pub fn flush(&mut self) -> usize {
        let n = self.queue.len()
            + usize::from(self.partial.as_ref().is_some_and(|(_, b)| !b.is_empty()));
        self.queue.clear();
        self.partial = None;
        n
    }

    /// Milliseconds of `item` actually sent to the caller.
    pub fn played_ms(&self, item: &str) -> u32 {
        self.played
            .iter()
            .find(|(i, _)| &**i == item)
            .map(|(_, ms)| *ms)
            .unwrap_or(0)
    }

    /// Milliseconds sent per recent item.
    pub fn played(&self) -> Vec<(ItemId, u32)> {
        self.played.clone()
    }

    /// Buffered audio not yet sent, in milliseconds.
    pub fn buffered_ms(&self) -> u32 {
        self.queue.len() as u32 * Frame::DURATION_MS
    }

    pub fn overflow_frames(&self) -> u64 {
        self.overflow_frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> ItemId {
        ItemId::from(s)
    }

    #[test]
    fn chunks_of_any_size_become_whole_frames_in_order() {
        let mut p = PlayoutBuffer::new(10_000);
        let a = id("a");
        let samples: Vec<i16> = (0..1200).map(|i| i as i16).collect();
        for chunk in samples.chunks(137) {
            p.push_samples(&a, chunk);
        }
        assert_eq!(p.buffered_ms(), 40, "two whole frames, 240 samples pending");
        p.finish_item();
        let frames: Vec<Frame> = std::iter::from_fn(|| p.next_frame().map(|(_, f)| f)).collect();
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[1].0[0], 480);
        assert_eq!(frames[2].0[239], 1199);
        assert_eq!(frames[2].0[240], 0, "last frame padded with silence");
        assert_eq!(p.played_ms("a"), 60);
    }

    #[test]
    fn flush_drops_unsent_audio_and_played_ms_counts_only_what_went_out() {
        let mut p = PlayoutBuffer::new(10_000);
        let a = id("a");
        for _ in 0..10 {
            p.push_frame(&a, Frame::silence());
        }
        p.next_frame();
        p.next_frame();
        p.next_frame();
        assert_eq!(p.flush(), 7);
        assert!(p.next_frame().is_none());
        assert_eq!(p.played_ms("a"), 60);
        assert_eq!(p.played_ms("b"), 0);
    }

    #[test]
    fn item_change_pads_the_previous_item() {
        let mut p = PlayoutBuffer::new(10_000);
        p.push_samples(&id("a"), &[1; 100]);
        p.push_samples(&id("b"), &[2; 480]);
        let (first, f) = p.next_frame().unwrap();
        assert_eq!(&*first, "a");
        assert_eq!(f.0[99], 1);
        assert_eq!(f.0[100], 0);
        assert_eq!(&*p.next_frame().unwrap().0, "b");
    }

    #[test]
    fn bounded_memory_counts_overflow() {
        let mut p = PlayoutBuffer::new(100);
        for _ in 0..8 {
            p.push_frame(&id("a"), Frame::silence());
        }
        assert_eq!(p.buffered_ms(), 100);
        assert_eq!(p.overflow_frames(), 3);
    }
}
