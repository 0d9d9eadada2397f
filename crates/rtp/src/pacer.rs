//! Drift-free 20 ms clock: tick n is due at start + n * period (never "last tick + period").
//! After a short stall (the latest due tick at most [`CATCH_UP`] periods behind the oldest)
//! every tick still comes out, oldest first, one per poll: the stream stays continuous and the
//! peer's jitter buffer absorbs the delay. After a longer one the missed ticks are dropped and
//! reported, never sent in a burst.

use std::time::{Duration, Instant};

/// One tick to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// Index of this tick since start.
    pub index: u64,
    /// Deadline this tick was due at.
    pub due: Instant,
    /// Ticks skipped since the previous one (a stall), not to be sent.
    pub missed: u64,
}

/// Ticks a stall may leave pending and still have sent late (2: up to 60 ms behind). A single
/// scheduling hiccup of a loaded machine (25 ms seen in CI) then loses no audio.
pub const CATCH_UP: u64 = 2;

#[derive(Debug, Clone)]
pub struct Pacer {
    start: Instant,
    period: Duration,
    next: u64,
}

impl Pacer {
    pub fn new(start: Instant, period: Duration) -> Self {
        Pacer {
            start,
            period: period.max(Duration::from_micros(1)),
            next: 0,
        }
    }

    fn due(&self, n: u64) -> Instant {
        // u32 holds 2.7 years of 20 ms ticks; saturate rather than overflow.
        self.start + self.period * u32::try_from(n).unwrap_or(u32::MAX)
    }

    pub fn next_deadline(&self) -> Instant {
        self.due(self.next)
    }

    /// Whether a tick has been handed out yet.
    pub fn started(&self) -> bool {
        self.next > 0
    }

    /// The period between ticks.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// The tick due at or before `now`, if any; at most one per call.
    pub fn poll(&mut self, now: Instant) -> Option<Tick> {
        if now < self.next_deadline() {
            return None;
        }
        let elapsed = now.duration_since(self.start).as_nanos();
        let latest = u64::try_from(elapsed / self.period.as_nanos()).unwrap_or(u64::MAX);
        if latest - self.next <= CATCH_UP {
            // A short stall: the oldest pending tick, late; the rest on the next polls.
            let index = self.next;
            self.next += 1;
            return Some(Tick {
                index,
                due: self.due(index),
                missed: 0,
            });
        }
        let missed = latest - self.next;
        self.next = latest + 1;
        Some(Tick {
            index: latest,
            due: self.due(latest),
            missed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use testkit::ManualClock;

    #[test]
    fn pacer_absolute_deadlines_do_not_drift() {
        let mut clock = ManualClock::default();
        let mut p = Pacer::new(clock.now(), Duration::from_millis(20));
        let start = clock.now();
        let mut n = 0;
        // Every tick handled 3 ms late: deadlines stay on the 20 ms grid.
        for i in 0..1000u32 {
            assert_eq!(p.next_deadline(), start + Duration::from_millis(20) * i);
            clock.advance_to(p.next_deadline() + Duration::from_millis(3));
            let t = p.poll(clock.now()).unwrap();
            assert_eq!((t.index, t.missed), (u64::from(i), 0));
            assert!(p.poll(clock.now()).is_none(), "one tick per deadline");
            n += 1;
        }
        assert_eq!(n, 1000);
        assert_eq!(p.next_deadline(), start + Duration::from_secs(20));
    }

    #[test]
    fn pacer_short_stall_sends_every_tick_late_oldest_first() {
        let mut clock = ManualClock::default();
        let mut p = Pacer::new(clock.now(), Duration::from_millis(20));
        let start = clock.now();
        assert_eq!(p.poll(clock.now()).map(|t| t.index), Some(0));
        // 45.8 ms: ticks 1 (20 ms) and 2 (40 ms) are due; both come out, one per poll.
        clock.advance(Duration::from_micros(45_800));
        let t1 = p.poll(clock.now()).unwrap();
        assert_eq!((t1.index, t1.missed), (1, 0));
        assert_eq!(t1.due, start + Duration::from_millis(20));
        let t2 = p.poll(clock.now()).unwrap();
        assert_eq!((t2.index, t2.missed), (2, 0));
        assert!(p.poll(clock.now()).is_none());
        // The limit: 3 pending ticks (1..=3 at 65 ms) are still all sent; 4 are not.
        let after_stall = |ms: u64| -> Vec<(u64, u64)> {
            let mut p = Pacer::new(start, Duration::from_millis(20));
            p.poll(start);
            let at = start + Duration::from_millis(ms);
            std::iter::from_fn(|| p.poll(at))
                .map(|t| (t.index, t.missed))
                .collect()
        };
        assert_eq!(after_stall(65), [(1, 0), (2, 0), (3, 0)]);
        assert_eq!(after_stall(85), [(4, 3)]);
    }

    #[test]
    fn pacer_stall_drops_missed_ticks_no_burst() {
        let mut clock = ManualClock::default();
        let mut p = Pacer::new(clock.now(), Duration::from_millis(20));
        assert_eq!(p.poll(clock.now()).map(|t| t.missed), Some(0));
        // A 130 ms stall: ticks 1..=6 were due; one tick comes out, five are dropped.
        clock.advance(Duration::from_millis(130));
        let t = p.poll(clock.now()).unwrap();
        assert_eq!((t.index, t.missed), (6, 5));
        assert!(p.poll(clock.now()).is_none());
        assert_eq!(p.next_deadline(), t.due + Duration::from_millis(20));
    }
}
