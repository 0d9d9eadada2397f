//! RFC 3261 17 timers as data (the quinn-proto `TimerTable` habit): one optional deadline per
//! kind, no clock reads; the owner asks for the next deadline and fires what expired.

use std::time::{Duration, Instant};

/// Timer values of RFC 3261 17.1.1.1 / Table 4. T1, T2 and T4 are configurable (tests and
/// lossy links shorten or stretch them); all others derive from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// RTT estimate, default 500 ms.
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses, default 4 s.
    pub t2: Duration,
    /// Maximum time a message stays in the network, default 5 s.
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl Timers {
    /// 64*T1: Timers B, F, H, J (UDP), L and M.
    pub fn t1x64(&self) -> Duration {
        self.t1 * 64
    }
}

/// Every timer of RFC 3261 17 and RFC 6026, plus the UAS core's 2xx retransmission
/// (13.3.1.4) and session timers (RFC 4028), which live in the same table per owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimerKind {
    /// ICT request retransmit (UDP).
    A,
    /// ICT transaction timeout.
    B,
    /// ICT wait for response retransmits after a non-2xx (32 s UDP, 0 reliable).
    D,
    /// NICT request retransmit (UDP).
    E,
    /// NICT transaction timeout.
    F,
    /// IST response retransmit (UDP).
    G,
    /// IST wait for ACK.
    H,
    /// IST wait for ACK retransmits (T4 UDP, 0 reliable).
    I,
    /// NIST wait for request retransmits (64*T1 UDP, 0 reliable).
    J,
    /// NICT wait for response retransmits (T4 UDP, 0 reliable).
    K,
    /// IST Accepted state: absorb INVITE retransmits after a 2xx (RFC 6026 17.2.1).
    L,
    /// ICT Accepted state: pass 2xx retransmits to the TU (RFC 6026 17.1.1).
    M,
}

const KINDS: usize = 12;

/// A set of timer kinds that can index a [`TimerTable`].
pub trait TimerKey: Copy + 'static {
    const ALL: &'static [Self];
    fn index(self) -> usize;
}

impl TimerKey for TimerKind {
    const ALL: &'static [Self] = &ALL;
    fn index(self) -> usize {
        self as usize
    }
}

fn index<K: TimerKey>(kind: K) -> usize {
    kind.index()
}

/// One deadline slot per timer kind (up to 12 kinds).
#[derive(Debug, Clone)]
pub struct TimerTable<K = TimerKind> {
    slots: [Option<Instant>; KINDS],
    _kind: std::marker::PhantomData<K>,
}

impl<K> Default for TimerTable<K> {
    fn default() -> Self {
        TimerTable {
            slots: [None; KINDS],
            _kind: std::marker::PhantomData,
        }
    }
}

impl<K: TimerKey> TimerTable<K> {
    pub fn set(&mut self, kind: K, at: Instant) {
        self.slots[index(kind)] = Some(at);
    }

    pub fn stop(&mut self, kind: K) {
        self.slots[index(kind)] = None;
    }

    pub fn get(&self, kind: K) -> Option<Instant> {
        self.slots[index(kind)]
    }

    pub fn stop_all(&mut self) {
        self.slots = [None; KINDS];
    }

    /// Earliest armed deadline.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.slots.iter().flatten().min().copied()
    }

    /// Disarm and return the earliest timer that has expired at `now`, if any.
    pub fn pop_expired(&mut self, now: Instant) -> Option<K> {
        let (i, _) = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.filter(|t| *t <= now).map(|t| (i, t)))
            .min_by_key(|(_, t)| *t)?;
        self.slots[i] = None;
        K::ALL.get(i).copied()
    }
}

const ALL: [TimerKind; KINDS] = [
    TimerKind::A,
    TimerKind::B,
    TimerKind::D,
    TimerKind::E,
    TimerKind::F,
    TimerKind::G,
    TimerKind::H,
    TimerKind::I,
    TimerKind::J,
    TimerKind::K,
    TimerKind::L,
    TimerKind::M,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_deadline_order_and_only_when_due() {
        let t0 = Instant::now();
        let mut t: TimerTable = TimerTable::default();
        t.set(TimerKind::H, t0 + Duration::from_secs(32));
        t.set(TimerKind::G, t0 + Duration::from_millis(500));
        assert_eq!(t.next_timeout(), Some(t0 + Duration::from_millis(500)));
        assert_eq!(t.pop_expired(t0), None);
        assert_eq!(
            t.pop_expired(t0 + Duration::from_secs(40)),
            Some(TimerKind::G)
        );
        assert_eq!(
            t.pop_expired(t0 + Duration::from_secs(40)),
            Some(TimerKind::H)
        );
        assert_eq!(t.next_timeout(), None);
        for (i, k) in ALL.iter().enumerate() {
            assert_eq!(index(*k), i);
        }
    }
}
