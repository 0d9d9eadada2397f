//! Test helpers shared by the protocol crates and the bridge: a manual clock (time only moves
//! when a test says so) and a scripted UAC that writes the SIP messages a trunk would send.
//! Dev-dependency only.

use std::time::{Duration, Instant};

pub mod netem;
pub mod uac;

/// A clock tests advance by hand, so timer behaviour is exact and instant.
#[derive(Debug, Clone, Copy)]
pub struct ManualClock {
    start: Instant,
    now: Instant,
}

impl Default for ManualClock {
    fn default() -> Self {
        let start = Instant::now();
        ManualClock { start, now: start }
    }
}

impl ManualClock {
    pub fn now(&self) -> Instant {
        self.now
    }

    pub fn advance(&mut self, by: Duration) -> Instant {
        self.now += by;
        self.now
    }

    pub fn advance_to(&mut self, at: Instant) -> Instant {
        if at > self.now {
            self.now = at;
        }
        self.now
    }

    /// Time since the clock was made.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }
}
