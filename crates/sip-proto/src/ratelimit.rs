//! Per-source limits (scanners and floods): a token bucket of messages per second per source
//! address, and a temporary ban after repeated failed authentications. A flooding source
//! loses only its own messages; nothing here grows without bound.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Limits per source address; `messages_per_sec == 0` turns the bucket off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub messages_per_sec: u32,
    /// Messages a source may send at once before the rate applies.
    pub burst: u32,
    /// Failed authentications in a row that ban the source (0 = never).
    pub ban_after_failed_auth: u32,
    pub ban_for: Duration,
}

impl Default for RateLimit {
    /// Off: a trunk's SBC legitimately sends thousands of messages per second.
    fn default() -> Self {
        RateLimit {
            messages_per_sec: 0,
            burst: 0,
            ban_after_failed_auth: 10,
            ban_for: Duration::from_secs(600),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Source {
    tokens: f64,
    last: Instant,
    failed_auth: u32,
    banned_until: Option<Instant>,
}

/// What to do with a message from a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Yes,
    /// Over its rate: dropped without an answer.
    RateLimited,
    /// Banned: dropped without an answer.
    Banned,
}

/// Most sources tracked at once; beyond it the quietest are forgotten first.
const MAX_SOURCES: usize = 65_536;

#[derive(Debug, Default)]
pub(crate) struct Limiter {
    cfg: RateLimit,
    sources: HashMap<IpAddr, Source>,
    pub(crate) rate_limited: u64,
    pub(crate) banned_drops: u64,
    pub(crate) bans: u64,
}

impl Limiter {
    pub(crate) fn new(cfg: RateLimit) -> Self {
        Limiter {
            cfg,
            ..Limiter::default()
        }
    }

    fn source(&mut self, ip: IpAddr, now: Instant) -> &mut Source {
        if self.sources.len() >= MAX_SOURCES && !self.sources.contains_key(&ip) {
            self.forget_idle(now);
        }
        let burst = f64::from(self.cfg.burst.max(1));
        self.sources.entry(ip).or_insert(Source {
            tokens: burst,
            last: now,
            failed_auth: 0,
            banned_until: None,
        })
    }

    pub(crate) fn admit(&mut self, ip: IpAddr, now: Instant) -> Admit {
        if self.cfg.messages_per_sec == 0 && self.cfg.ban_after_failed_auth == 0 {
            return Admit::Yes;
        }
        let cfg = self.cfg;
        let s = self.source(ip, now);
        if let Some(until) = s.banned_until {
            if now < until {
                self.banned_drops += 1;
                return Admit::Banned;
            }
            s.banned_until = None;
            s.failed_auth = 0;
        }
        if cfg.messages_per_sec == 0 {
            return Admit::Yes;
        }
        let elapsed = now.saturating_duration_since(s.last).as_secs_f64();
        s.last = now;
        s.tokens =
            (s.tokens + elapsed * f64::from(cfg.messages_per_sec)).min(f64::from(cfg.burst.max(1)));
        if s.tokens >= 1.0 {
            s.tokens -= 1.0;
            Admit::Yes
        } else {
            self.rate_limited += 1;
            Admit::RateLimited
        }
    }

    /// A failed authentication from `ip`; bans it after too many in a row.
    pub(crate) fn auth_failed(&mut self, ip: IpAddr, now: Instant) {
        let cfg = self.cfg;
        if cfg.ban_after_failed_auth == 0 {
            return;
        }
        let s = self.source(ip, now);
        s.failed_auth += 1;
        if s.failed_auth >= cfg.ban_after_failed_auth {
            s.banned_until = Some(now + cfg.ban_for);
            self.bans += 1;
        }
    }

    pub(crate) fn auth_succeeded(&mut self, ip: IpAddr) {
        if let Some(s) = self.sources.get_mut(&ip) {
            s.failed_auth = 0;
        }
    }

    /// Drop sources with a full bucket, no failures and no ban: they hold no information.
    pub(crate) fn forget_idle(&mut self, now: Instant) {
        let full = f64::from(self.cfg.burst.max(1));
        let rate = f64::from(self.cfg.messages_per_sec);
        self.sources.retain(|_, s| {
            let refilled = s.tokens + now.saturating_duration_since(s.last).as_secs_f64() * rate;
            s.failed_auth > 0 || s.banned_until.is_some_and(|u| u > now) || refilled < full
        });
        if self.sources.capacity() > 1024 && self.sources.len() * 4 < self.sources.capacity() {
            self.sources.shrink_to_fit();
        }
    }

    pub(crate) fn tracked(&self) -> usize {
        self.sources.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn bucket_allows_burst_then_rate_and_only_for_the_flooding_source() {
        let t0 = Instant::now();
        let mut l = Limiter::new(RateLimit {
            messages_per_sec: 10,
            burst: 5,
            ..RateLimit::default()
        });
        let a = ip("127.0.0.2");
        let admitted = (0..20).filter(|_| l.admit(a, t0) == Admit::Yes).count();
        assert_eq!(admitted, 5, "the burst");
        assert_eq!(
            l.admit(ip("127.0.0.3"), t0),
            Admit::Yes,
            "another source is untouched"
        );
        assert_eq!(
            l.admit(a, t0 + Duration::from_millis(100)),
            Admit::Yes,
            "one token per 100 ms"
        );
        assert_eq!(
            l.admit(a, t0 + Duration::from_millis(100)),
            Admit::RateLimited
        );
        assert_eq!(l.rate_limited, 16);
    }

    #[test]
    fn failed_auths_ban_for_a_while_then_forgiven() {
        let t0 = Instant::now();
        let mut l = Limiter::new(RateLimit {
            ban_after_failed_auth: 3,
            ban_for: Duration::from_secs(60),
            ..RateLimit::default()
        });
        let a = ip("192.0.2.9");
        for _ in 0..3 {
            assert_eq!(l.admit(a, t0), Admit::Yes);
            l.auth_failed(a, t0);
        }
        assert_eq!(l.admit(a, t0 + Duration::from_secs(1)), Admit::Banned);
        assert_eq!(l.bans, 1);
        assert_eq!(
            l.admit(a, t0 + Duration::from_secs(61)),
            Admit::Yes,
            "ban expired"
        );
        l.auth_succeeded(a);
        l.forget_idle(t0 + Duration::from_secs(62));
        assert_eq!(l.tracked(), 0, "idle, clean sources are forgotten");
    }
}
