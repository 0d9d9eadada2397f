//! RTP port pool: even ports from the configured range (RTCP on +1, RFC 3550 11), handed out
//! per call and returned when it ends.

use std::collections::VecDeque;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};

#[derive(Debug)]
pub struct PortPool {
    free: VecDeque<u16>,
    total: usize,
    /// Ports whose sockets have closed, returned by their [`PortLease`] from any thread.
    returned: Arc<Mutex<Vec<u16>>>,
}

/// A bound port pair's claim on the pool: the port goes back when this is dropped, i.e. once
/// the sockets held next to it have closed (the media engine closes them a step after the
/// call ends). A port is never handed out while still bound.
#[derive(Debug)]
pub struct PortLease {
    port: u16,
    back: Arc<Mutex<Vec<u16>>>,
}

impl Drop for PortLease {
    fn drop(&mut self) {
        let mut back = self.back.lock().unwrap_or_else(|e| e.into_inner());
        back.push(self.port);
    }
}

impl PortPool {
    pub fn new(range: RangeInclusive<u16>) -> Self {
        let start = range.start() + range.start() % 2;
        let free: VecDeque<u16> = (start..*range.end()).step_by(2).collect();
        let total = free.len();
        PortPool {
            free,
            total,
            returned: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Least recently used port first, so a late packet of an old call rarely hits a new one.
    pub fn allocate(&mut self) -> Option<u16> {
        self.collect_returned();
        self.free.pop_front()
    }

    /// A port that was allocated but never bound goes straight back.
    pub fn release(&mut self, port: u16) {
        self.free.push_back(port);
    }

    /// The claim that returns `port` (allocated and now bound) when it is dropped.
    pub fn lease(&self, port: u16) -> PortLease {
        PortLease {
            port,
            back: self.returned.clone(),
        }
    }

    pub fn in_use(&mut self) -> usize {
        self.collect_returned();
        self.total - self.free.len()
    }

    fn collect_returned(&mut self) {
        let mut back = self.returned.lock().unwrap_or_else(|e| e.into_inner());
        self.free.extend(back.drain(..));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_ports_only_and_all_come_back() {
        let mut p = PortPool::new(20001..=20010);
        let got: Vec<u16> = std::iter::from_fn(|| p.allocate()).collect();
        assert_eq!(got, [20002, 20004, 20006, 20008]);
        assert_eq!(p.in_use(), 4);
        for port in got {
            p.release(port);
        }
        assert_eq!(p.in_use(), 0);
    }

    #[test]
    fn a_leased_port_comes_back_only_when_the_lease_drops() {
        let mut p = PortPool::new(20000..=20003);
        let a = p.allocate().unwrap();
        let b = p.allocate().unwrap();
        assert_eq!(p.allocate(), None);
        let lease_a = p.lease(a);
        let lease_b = p.lease(b);
        assert_eq!(p.in_use(), 2);
        drop(lease_b);
        assert_eq!(p.in_use(), 1);
        assert_eq!(
            p.allocate(),
            Some(b),
            "the returned port, not the still-leased one"
        );
        assert_eq!(p.allocate(), None);
        // Dropped on another thread (the media engine's).
        std::thread::spawn(move || drop(lease_a)).join().unwrap();
        assert_eq!(p.allocate(), Some(a));
    }
}
