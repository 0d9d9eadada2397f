//! Per-source reception state: RFC 3550 A.1 sequence validation, A.3 loss, A.8 jitter.

use std::time::{Duration, Instant};

const RTP_SEQ_MOD: u64 = 1 << 16;
/// RFC 3550 A.1 constants.
const MAX_DROPOUT: u16 = 3000;
const MAX_MISORDER: u16 = 100;

/// What A.1 made of a packet's sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqOutcome {
    /// Valid, with its extended (cycle-counting) sequence number.
    Valid(u64),
    /// Seen before (within the last 128 numbers): not counted as received.
    Duplicate,
    /// A jump beyond MAX_DROPOUT; dropped until the next packet confirms a restart (A.1).
    Jump,
}

/// RFC 3550 A.1/A.3/A.8 state for the current SSRC.
#[derive(Debug, Clone)]
pub struct ReceptionState {
    max_seq: u16,
    cycles: u64,
    base_seq: u64,
    bad_seq: Option<u16>,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    /// Bit i set: extended sequence `max - i` was received (duplicate detection).
    window: u128,
    /// RFC 3550 A.8 keeps jitter scaled by 16 in timestamp units.
    jitter_q4: u64,
    last_transit: Option<i64>,
    clock_rate: u32,
    epoch: Instant,
}

/// A.3 figures for one report interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LossReport {
    pub extended_max: u64,
    pub cumulative_lost: i64,
    pub fraction_lost: u8,
}

impl ReceptionState {
    /// A.1 `init_seq`: the first packet of a source.
    pub fn new(first_seq: u16, clock_rate: u32, epoch: Instant) -> Self {
        ReceptionState {
            max_seq: first_seq,
            cycles: 0,
            base_seq: u64::from(first_seq),
            bad_seq: None,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            window: 0,
            jitter_q4: 0,
            last_transit: None,
            clock_rate,
            epoch,
        }
    }

    fn extended_max(&self) -> u64 {
        self.cycles + u64::from(self.max_seq)
    }

    /// A.1 `update_seq`, plus duplicate detection so duplicates do not hide loss.
    pub fn update_seq(&mut self, seq: u16) -> SeqOutcome {
        if self.received == 0 {
            self.window = 1;
            self.received = 1;
            return SeqOutcome::Valid(self.extended_max());
        }
        let udelta = seq.wrapping_sub(self.max_seq);
        if udelta == 0 {
            return SeqOutcome::Duplicate;
        }
        if udelta < MAX_DROPOUT {
            // In order, with a permissible gap.
            if seq < self.max_seq {
                self.cycles += RTP_SEQ_MOD;
            }
            self.max_seq = seq;
            self.window = if udelta >= 128 {
                0
            } else {
                self.window << udelta
            };
            self.window |= 1;
            self.received += 1;
            return SeqOutcome::Valid(self.extended_max());
        }
        if udelta <= u16::MAX - MAX_MISORDER {
            // A very large jump: the source restarted if the next packet follows this one.
            if self.bad_seq == Some(seq) {
                *self = ReceptionState {
                    jitter_q4: self.jitter_q4,
                    ..ReceptionState::new(seq, self.clock_rate, self.epoch)
                };
                self.received = 1;
                self.window = 1;
                return SeqOutcome::Valid(self.extended_max());
            }
            self.bad_seq = Some(seq.wrapping_add(1));
            return SeqOutcome::Jump;
        }
        // Reordered (late) packet within MAX_MISORDER.
        let back = u64::from(self.max_seq.wrapping_sub(seq));
        let ext = self.extended_max().wrapping_sub(back);
        if back < 128 {
            let bit = 1u128 << back;
            if self.window & bit != 0 {
                return SeqOutcome::Duplicate;
            }
            self.window |= bit;
        }
        if ext < self.base_seq {
            // Older than the first packet we saw: A.3 would count it as negative loss.
            self.base_seq = ext;
        }
        self.received += 1;
        SeqOutcome::Valid(ext)
    }

    /// A.8: interarrival jitter from arrival time and RTP timestamp (audio packets only:
    /// RFC 4733 events repeat one timestamp and would read as jitter).
    pub fn update_jitter(&mut self, now: Instant, timestamp: u32) {
        let arrival = now.saturating_duration_since(self.epoch).as_micros() as i64
            * i64::from(self.clock_rate)
            / 1_000_000;
        let transit = arrival.wrapping_sub(i64::from(timestamp));
        if let Some(last) = self.last_transit {
            // Timestamps wrap at 2^32; the difference of two transits is small either way.
            let d = i64::from((transit.wrapping_sub(last)) as i32).unsigned_abs();
            self.jitter_q4 = self.jitter_q4 + d - ((self.jitter_q4 + 8) >> 4);
        }
        self.last_transit = Some(transit);
    }

    /// A.8 jitter in timestamp units, as carried in the report block.
    pub fn jitter(&self) -> u32 {
        u32::try_from(self.jitter_q4 >> 4).unwrap_or(u32::MAX)
    }

    pub fn jitter_duration(&self) -> Duration {
        Duration::from_micros((self.jitter_q4 >> 4) * 1_000_000 / u64::from(self.clock_rate.max(1)))
    }

    pub fn received(&self) -> u64 {
        self.received
    }

    /// A.3 cumulative loss (may be negative with duplicates the window missed).
    pub fn cumulative_lost(&self) -> i64 {
        let expected = self.extended_max() + 1 - self.base_seq;
        expected as i64 - self.received as i64
    }

    /// A.3: figures for a report; resets the interval counters.
    pub fn report(&mut self) -> LossReport {
        let expected = self.extended_max() + 1 - self.base_seq;
        let expected_interval = expected.saturating_sub(self.expected_prior);
        self.expected_prior = expected;
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            u8::try_from(((lost_interval as u64) << 8) / expected_interval).unwrap_or(255)
        };
        LossReport {
            extended_max: self.extended_max(),
            cumulative_lost: self.cumulative_lost().clamp(-0x80_0000, 0x7f_ffff),
            fraction_lost,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(seq: u16) -> ReceptionState {
        let mut s = ReceptionState::new(seq, 8000, Instant::now());
        assert_eq!(s.update_seq(seq), SeqOutcome::Valid(u64::from(seq)));
        s
    }

    #[test]
    fn rfc3550_a_1_wrap_counts_a_cycle() {
        let mut s = state(65534);
        assert_eq!(s.update_seq(65535), SeqOutcome::Valid(65535));
        assert_eq!(s.update_seq(0), SeqOutcome::Valid(65536));
        assert_eq!(s.update_seq(1), SeqOutcome::Valid(65537));
        assert_eq!(s.cumulative_lost(), 0);
    }

    #[test]
    fn rfc3550_a_1_reordered_and_duplicate() {
        let mut s = state(10);
        assert_eq!(s.update_seq(12), SeqOutcome::Valid(12));
        assert_eq!(s.cumulative_lost(), 1);
        assert_eq!(s.update_seq(11), SeqOutcome::Valid(11));
        assert_eq!(s.cumulative_lost(), 0);
        assert_eq!(s.update_seq(11), SeqOutcome::Duplicate);
        assert_eq!(s.update_seq(12), SeqOutcome::Duplicate);
        assert_eq!(s.cumulative_lost(), 0, "duplicates do not hide loss");
    }

    #[test]
    fn rfc3550_a_1_large_jump_needs_two_packets() {
        let mut s = state(100);
        assert_eq!(s.update_seq(30_000), SeqOutcome::Jump);
        assert_eq!(s.update_seq(30_001), SeqOutcome::Valid(30_001));
        assert_eq!(s.update_seq(30_002), SeqOutcome::Valid(30_002));
        assert_eq!(s.cumulative_lost(), 0);
    }

    #[test]
    fn rfc3550_a_3_cumulative_and_fraction_lost() {
        let mut s = state(0);
        // 100 expected in the interval, 10 lost.
        for seq in 1..100u16 {
            if seq % 10 != 0 {
                s.update_seq(seq);
            }
        }
        let r = s.report();
        assert_eq!(r.cumulative_lost, 9);
        assert_eq!(r.extended_max, 99);
        assert_eq!(r.fraction_lost, (9u32 * 256 / 100) as u8);
        for seq in 100..200u16 {
            s.update_seq(seq);
        }
        let r = s.report();
        assert_eq!(
            (r.cumulative_lost, r.fraction_lost),
            (9, 0),
            "no loss in the second interval"
        );
    }

    #[test]
    fn rfc3550_a_8_interarrival_jitter() {
        let t0 = Instant::now();
        let mut s = ReceptionState::new(0, 8000, t0);
        // Perfect 20 ms spacing: no jitter.
        for i in 0..50u32 {
            s.update_jitter(t0 + Duration::from_millis(20 * u64::from(i)), i * 160);
        }
        assert_eq!(s.jitter(), 0);
        // Alternating +-10 ms: |D| = 80 samples every packet, J converges to 80.
        for i in 50..2000u32 {
            let skew = if i % 2 == 0 { 10 } else { 0 };
            s.update_jitter(
                t0 + Duration::from_millis(20 * u64::from(i) + skew),
                i * 160,
            );
        }
        assert!((75..=80).contains(&s.jitter()), "jitter {}", s.jitter());
        assert_eq!(s.jitter_duration().as_millis(), u128::from(s.jitter()) / 8);
    }
}
