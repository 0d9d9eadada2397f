//! Energy VAD: 10 ms frames, RMS against a threshold, a hangover of `silence_duration_ms`
//! before a turn ends (the semantics of GA `server_vad`, protocol §6).

/// One frame is 10 ms.
const FRAME_MS: u64 = 10;
/// RMS (fraction of full scale) that `threshold: 1.0` maps to; 0.5 is then about -38 dBFS.
const FULL_THRESHOLD_RMS: f64 = 0.025;

/// A VAD transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VadEvent {
    /// Speech began at this input position (prefix padding already subtracted).
    Started {
        /// ms from the start of all session input audio.
        audio_start_ms: u64,
    },
    /// Speech ended: the hangover of silence elapsed.
    Stopped {
        /// ms from the start of all session input audio.
        audio_end_ms: u64,
    },
}

/// Energy VAD over linear samples at a fixed rate.
#[derive(Debug, Clone)]
pub struct Vad {
    rate: u32,
    threshold_rms: f64,
    prefix_padding_ms: u64,
    silence_ms: u64,
    pending: Vec<i16>,
    pos_ms: u64,
    in_speech: bool,
    silence_run_ms: u64,
}

impl Vad {
    /// `threshold` is GA's 0.0..=1.0; `silence_ms` is the hangover.
    pub fn new(rate: u32, threshold: f64, prefix_padding_ms: u64, silence_ms: u64) -> Self {
        Self {
            rate: rate.max(1000),
            threshold_rms: threshold.clamp(0.0, 1.0) * FULL_THRESHOLD_RMS * 32_768.0,
            prefix_padding_ms,
            silence_ms,
            pending: Vec::new(),
            pos_ms: 0,
            in_speech: false,
            silence_run_ms: 0,
        }
    }

    /// Changes the parameters and keeps the session position; a new rate drops partial frames.
    pub fn reconfigure(
        &mut self,
        rate: u32,
        threshold: f64,
        prefix_padding_ms: u64,
        silence_ms: u64,
    ) {
        let rate = rate.max(1000);
        if rate != self.rate {
            self.pending.clear();
        }
        self.rate = rate;
        self.threshold_rms = threshold.clamp(0.0, 1.0) * FULL_THRESHOLD_RMS * 32_768.0;
        self.prefix_padding_ms = prefix_padding_ms;
        self.silence_ms = silence_ms;
    }

    /// Whether a turn is open.
    pub fn in_speech(&self) -> bool {
        self.in_speech
    }

    /// Feeds samples; returns the transitions they caused, in order.
    pub fn push(&mut self, samples: &[i16]) -> Vec<VadEvent> {
        let frame = (self.rate as u64 * FRAME_MS / 1000) as usize;
        self.pending.extend_from_slice(samples);
        let mut out = Vec::new();
        let mut start = 0;
        while self.pending.len() - start >= frame {
            let chunk = &self.pending[start..start + frame];
            start += frame;
            let energy: f64 = chunk.iter().map(|&s| (s as f64) * (s as f64)).sum();
            let rms = (energy / frame as f64).sqrt();
            let loud = rms > self.threshold_rms;
            if !self.in_speech && loud {
                self.in_speech = true;
                self.silence_run_ms = 0;
                out.push(VadEvent::Started {
                    audio_start_ms: self.pos_ms.saturating_sub(self.prefix_padding_ms),
                });
            } else if self.in_speech {
                if loud {
                    self.silence_run_ms = 0;
                } else {
                    self.silence_run_ms += FRAME_MS;
                    if self.silence_run_ms >= self.silence_ms {
                        self.in_speech = false;
                        out.push(VadEvent::Stopped {
                            audio_end_ms: self.pos_ms + FRAME_MS,
                        });
                    }
                }
            }
            self.pos_ms += FRAME_MS;
        }
        self.pending.drain(..start);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loud_then_silence_starts_and_stops_after_hangover() {
        let mut vad = Vad::new(24_000, 0.5, 300, 200);
        let loud: Vec<i16> = (0..24_000)
            .map(|i| if i % 2 == 0 { 10_000 } else { -10_000 })
            .collect();
        let ev = vad.push(&loud[..12_000]);
        assert_eq!(ev, vec![VadEvent::Started { audio_start_ms: 0 }]);
        assert!(vad.push(&loud[12_000..]).is_empty());
        // 190 ms of silence: still in speech (hangover).
        assert!(vad.push(&vec![0; 4_560]).is_empty());
        assert!(vad.in_speech());
        let ev = vad.push(&[0; 240]);
        assert_eq!(
            ev,
            vec![VadEvent::Stopped {
                audio_end_ms: 1_200
            }]
        );
    }

    #[test]
    fn short_dips_do_not_end_a_turn() {
        let mut vad = Vad::new(24_000, 0.5, 300, 200);
        let loud = vec![9_000i16; 2_400];
        vad.push(&loud);
        vad.push(&[0; 2_400]); // 100 ms dip
        assert!(vad.push(&loud).is_empty());
        assert!(vad.in_speech());
    }
}
