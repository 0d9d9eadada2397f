//! RTP port pool: even ports from the configured range (RTCP on +1, RFC 3550 11), handed out
//! per call and returned when it ends.

use std::collections::VecDeque;
use std::ops::RangeInclusive;

#[derive(Debug)]
pub struct PortPool {
    free: VecDeque<u16>,
    total: usize,
}

impl PortPool {
    pub fn new(range: RangeInclusive<u16>) -> Self {
        let start = range.start() + range.start() % 2;
        let free: VecDeque<u16> = (start..*range.end()).step_by(2).collect();
        let total = free.len();
        PortPool { free, total }
    }

    /// Least recently used port first, so a late packet of an old call rarely hits a new one.
    pub fn allocate(&mut self) -> Option<u16> {
        self.free.pop_front()
    }

    pub fn release(&mut self, port: u16) {
        self.free.push_back(port);
    }

    pub fn in_use(&self) -> usize {
        self.total - self.free.len()
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
}
