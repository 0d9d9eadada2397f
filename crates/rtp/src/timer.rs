//! Timers as data (quinn-proto style): one deadline slot per kind, the earliest is the next.

use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// The 20 ms pacer tick.
    Tick = 0,
    /// Next RTCP report (RFC 3550 6.2).
    Rtcp = 1,
    /// No RTP received for the configured time.
    MediaTimeout = 2,
}

const COUNT: usize = 3;
const ALL: [Timer; COUNT] = [Timer::Tick, Timer::Rtcp, Timer::MediaTimeout];

#[derive(Debug, Clone, Default)]
pub struct TimerTable {
    at: [Option<Instant>; COUNT],
}

impl TimerTable {
    pub fn set(&mut self, t: Timer, at: Instant) {
        self.at[t as usize] = Some(at);
    }

    pub fn stop(&mut self, t: Timer) {
        self.at[t as usize] = None;
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        self.at.iter().flatten().min().copied()
    }

    /// Takes the timer if it expired at `now`.
    pub fn expire(&mut self, t: Timer, now: Instant) -> bool {
        if self.at[t as usize].is_some_and(|at| at <= now) {
            self.at[t as usize] = None;
            return true;
        }
        false
    }

    pub fn all() -> [Timer; COUNT] {
        ALL
    }
}
