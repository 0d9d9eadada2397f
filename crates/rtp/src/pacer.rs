//! Drift-free 20 ms clock: tick n is due at start + n * period (never "last tick + period"),
//! and after a stall the missed ticks are dropped and reported, never sent in a burst.

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

    /// The tick due at or before `now`, if any; at most one per call.
    pub fn poll(&mut self, now: Instant) -> Option<Tick> {
        if now < self.next_deadline() {
            return None;
        }
        let elapsed = now.duration_since(self.start).as_nanos();
        let latest = u64::try_from(elapsed / self.period.as_nanos()).unwrap_or(u64::MAX);
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
