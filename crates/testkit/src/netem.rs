//! An in-memory lossy link, like Linux netem: loss, delay + jitter and extra reordering,
//! driven by a seeded PRNG and the test's clock, so every run is the same.

use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetemConfig {
    /// Probability (0-1) that a packet is dropped.
    pub loss: f64,
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Extra delay, uniform in [0, jitter]: packets overtake each other when it exceeds
    /// their spacing.
    pub jitter: Duration,
    /// Probability (0-1) that a packet is held back by `reorder_delay` more.
    pub reorder: f64,
    pub reorder_delay: Duration,
    /// Probability (0-1) that a packet is delivered twice.
    pub duplicate: f64,
    pub seed: u64,
}

impl Default for NetemConfig {
    fn default() -> Self {
        NetemConfig {
            loss: 0.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            reorder: 0.0,
            reorder_delay: Duration::ZERO,
            duplicate: 0.0,
            seed: 1,
        }
    }
}

/// What happened on the link so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetemStats {
    pub sent: u64,
    pub dropped: u64,
    pub reordered: u64,
    pub duplicated: u64,
    pub delivered: u64,
}

#[derive(Debug)]
struct InFlight<T> {
    at: Instant,
    order: u64,
    packet: T,
}

impl<T> PartialEq for InFlight<T> {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.order) == (o.at, o.order)
    }
}
impl<T> Eq for InFlight<T> {}
impl<T> PartialOrd for InFlight<T> {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl<T> Ord for InFlight<T> {
    // Min-heap on (deliver_at, send order).
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (o.at, o.order).cmp(&(self.at, self.order))
    }
}

/// One direction of a link carrying packets of type `T`.
#[derive(Debug)]
pub struct Netem<T> {
    cfg: NetemConfig,
    rng: u64,
    order: u64,
    queue: BinaryHeap<InFlight<T>>,
    stats: NetemStats,
}

impl<T: Clone> Netem<T> {
    pub fn new(cfg: NetemConfig) -> Self {
        Netem {
            rng: cfg.seed,
            cfg,
            order: 0,
            queue: BinaryHeap::new(),
            stats: NetemStats::default(),
        }
    }

    fn next_u64(&mut self) -> u64 {
        // splitmix64: well spread even from small seeds.
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Puts a packet on the link at `now`; returns its delivery time, or None if dropped.
    pub fn send(&mut self, now: Instant, packet: T) -> Option<Instant> {
        self.stats.sent += 1;
        if self.unit() < self.cfg.loss {
            self.stats.dropped += 1;
            return None;
        }
        let mut at = now + self.cfg.delay + self.cfg.jitter.mul_f64(self.unit());
        if self.unit() < self.cfg.reorder {
            self.stats.reordered += 1;
            at += self.cfg.reorder_delay;
        }
        if self.unit() < self.cfg.duplicate {
            self.stats.duplicated += 1;
            self.push(at + Duration::from_millis(1), packet.clone());
        }
        self.push(at, packet);
        Some(at)
    }

    fn push(&mut self, at: Instant, packet: T) {
        self.order += 1;
        self.queue.push(InFlight {
            at,
            order: self.order,
            packet,
        });
    }

    /// The next packet due at or before `now`, with its delivery time.
    pub fn poll(&mut self, now: Instant) -> Option<(Instant, T)> {
        if self.queue.peek().is_some_and(|p| p.at <= now) {
            self.stats.delivered += 1;
            return self.queue.pop().map(|p| (p.at, p.packet));
        }
        None
    }

    /// When the next packet is due.
    pub fn next_delivery(&self) -> Option<Instant> {
        self.queue.peek().map(|p| p.at)
    }

    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    pub fn stats(&self) -> NetemStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netem_is_deterministic_and_ordered_by_delivery_time() {
        let t0 = Instant::now();
        let cfg = NetemConfig {
            loss: 0.1,
            jitter: Duration::from_millis(40),
            reorder: 0.1,
            reorder_delay: Duration::from_millis(30),
            seed: 7,
            ..Default::default()
        };
        let run = || {
            let mut n = Netem::new(cfg);
            for i in 0..1000u32 {
                n.send(t0 + Duration::from_millis(20) * i, i);
            }
            let mut out = Vec::new();
            while let Some((at, p)) = n.poll(t0 + Duration::from_secs(100)) {
                out.push((at, p));
            }
            (out, n.stats())
        };
        let (a, sa) = run();
        let (b, _) = run();
        assert_eq!(a, b, "same seed, same run");
        assert!(a.windows(2).all(|w| w[0].0 <= w[1].0));
        assert!(a.windows(2).any(|w| w[0].1 > w[1].1), "some reordering");
        assert!(
            (70..130).contains(&sa.dropped),
            "about 10% lost: {}",
            sa.dropped
        );
        assert_eq!(sa.delivered, 1000 - sa.dropped);
    }

    #[test]
    fn netem_holds_packets_until_due() {
        let t0 = Instant::now();
        let mut n = Netem::new(NetemConfig {
            delay: Duration::from_millis(50),
            ..Default::default()
        });
        n.send(t0, "a");
        assert_eq!(n.poll(t0 + Duration::from_millis(49)), None);
        assert_eq!(n.next_delivery(), Some(t0 + Duration::from_millis(50)));
        assert_eq!(
            n.poll(t0 + Duration::from_millis(50)),
            Some((t0 + Duration::from_millis(50), "a"))
        );
    }
}
