//! Symmetric RTP (RFC 4961) latching for NAT: we send where the caller's packets come from,
//! but accept a source only if the SDP advertised it or it sent N packets in a row.

use std::net::SocketAddr;

/// What the latch made of a packet's source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatchDecision {
    /// From the current (or advertised) source: take it.
    Accept,
    /// Accepted, and from now on we send to this address.
    Latched(SocketAddr),
    /// From an unproven source: dropped.
    Reject,
}

#[derive(Debug, Clone)]
pub struct Latch {
    advertised: Option<SocketAddr>,
    latched: Option<SocketAddr>,
    candidate: Option<(SocketAddr, u32)>,
    threshold: u32,
}

impl Latch {
    /// `advertised`: the SDP c=/m= address; `threshold`: packets in a row a new source needs.
    pub fn new(advertised: Option<SocketAddr>, threshold: u32) -> Self {
        Latch {
            advertised,
            latched: None,
            candidate: None,
            threshold: threshold.max(1),
        }
    }

    /// Where to send: the latched source, else the advertised address.
    pub fn destination(&self) -> Option<SocketAddr> {
        self.latched.or(self.advertised)
    }

    pub fn latched(&self) -> Option<SocketAddr> {
        self.latched
    }

    /// Decides on one valid packet from `from`.
    pub fn observe(&mut self, from: SocketAddr) -> LatchDecision {
        if self.latched == Some(from) {
            // The current source speaks again: any challenger's run is broken.
            self.candidate = None;
            return LatchDecision::Accept;
        }
        if self.latched.is_none() && self.advertised == Some(from) {
            self.latched = Some(from);
            self.candidate = None;
            return LatchDecision::Latched(from);
        }
        let run = match self.candidate {
            Some((addr, n)) if addr == from => n + 1,
            _ => 1,
        };
        if run >= self.threshold {
            self.latched = Some(from);
            self.candidate = None;
            return LatchDecision::Latched(from);
        }
        self.candidate = Some((from, run));
        LatchDecision::Reject
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn rfc4961_latch_to_advertised_source_at_once() {
        let mut l = Latch::new(Some(a("10.0.0.1:4000")), 3);
        assert_eq!(l.destination(), Some(a("10.0.0.1:4000")));
        assert_eq!(
            l.observe(a("10.0.0.1:4000")),
            LatchDecision::Latched(a("10.0.0.1:4000"))
        );
        assert_eq!(l.observe(a("10.0.0.1:4000")), LatchDecision::Accept);
    }

    #[test]
    fn rfc4961_nat_source_latched_after_n_in_a_row() {
        let mut l = Latch::new(Some(a("192.168.1.5:4000")), 3);
        let nat = a("203.0.113.7:61000");
        assert_eq!(l.observe(nat), LatchDecision::Reject);
        assert_eq!(l.observe(nat), LatchDecision::Reject);
        assert_eq!(l.observe(nat), LatchDecision::Latched(nat));
        assert_eq!(l.destination(), Some(nat));
    }

    #[test]
    fn rfc4961_injected_packets_do_not_steal_the_stream() {
        let mut l = Latch::new(Some(a("10.0.0.1:4000")), 3);
        l.observe(a("10.0.0.1:4000"));
        let evil = a("198.51.100.9:5000");
        // Interleaved with the real source, the attacker never gets N in a row.
        for _ in 0..10 {
            assert_eq!(l.observe(evil), LatchDecision::Reject);
            assert_eq!(l.observe(evil), LatchDecision::Reject);
            assert_eq!(l.observe(a("10.0.0.1:4000")), LatchDecision::Accept);
        }
        assert_eq!(l.destination(), Some(a("10.0.0.1:4000")));
        // A NAT rebinding (old source silent) re-latches after N.
        let moved = a("10.0.0.1:4002");
        l.observe(moved);
        l.observe(moved);
        assert_eq!(l.observe(moved), LatchDecision::Latched(moved));
    }
}
