//! Endpoint settings: who we are on the wire and the limits we enforce.

use crate::sdp::{Codec, SrtpPolicy};
use crate::timer::Timers;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

// Evaluated at compile time: a bad prefix would not build.
const LOOPBACK_V4: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(127, 0, 0, 0), 8);
const LOOPBACK_V6: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::LOCALHOST, 128);

/// What a source outside the allow-list gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyAction {
    /// 403 Forbidden to requests (responses are dropped).
    Forbidden,
    /// Nothing at all: a scanner learns nothing.
    Drop,
}

/// Which source addresses may talk SIP to us (trunk allow-list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessPolicy {
    pub allow: Vec<IpNet>,
    pub on_deny: DenyAction,
}

impl Default for AccessPolicy {
    /// Loopback only: nothing else is let in until configured.
    fn default() -> Self {
        AccessPolicy {
            allow: vec![IpNet::V4(LOOPBACK_V4), IpNet::V6(LOOPBACK_V6)],
            on_deny: DenyAction::Forbidden,
        }
    }
}

impl AccessPolicy {
    pub fn allows(&self, ip: IpAddr) -> bool {
        // A dual-stack socket shows IPv4 peers as ::ffff:a.b.c.d.
        let ip = ip.to_canonical();
        self.allow.iter().any(|net| net.contains(&ip))
    }
}

/// Settings of the UAS core. The bridge fills it from the CLI and config file.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    pub timers: Timers,
    /// Address to advertise in Contact, Via and SDP instead of the socket address (NAT).
    pub public_ip: Option<IpAddr>,
    /// User part of our Contact.
    pub contact_user: String,
    /// Server / User-Agent header value.
    pub server: String,
    /// Calls in progress beyond which a new INVITE gets 503 (0 = no limit).
    pub max_calls: usize,
    /// Retry-After seconds sent with 503.
    pub retry_after: u32,
    /// Codecs in our preference order, for the answer when the offer allows a choice.
    pub codecs: Vec<Codec>,
    pub telephone_event: bool,
    /// SRTP with SDES keys (RFC 3711, 4568): off, optional or required.
    pub srtp: SrtpPolicy,
    /// Session-Expires we ask for when the caller supports timers but sent none (RFC 4028 9);
    /// 0 disables session timers unless the caller asks.
    pub session_expires: u32,
    /// Smallest Session-Expires we accept (RFC 4028 5: at least 90).
    pub min_se: u32,
    /// Seed of the tag/branch generator.
    pub seed: u64,
    /// Source allow-list.
    pub access: AccessPolicy,
    /// Digest authentication of INVITEs (RFC 3261 22); `None` lets the allow-list decide alone.
    pub auth: Option<crate::auth::DigestConfig>,
    /// Per-source message rate and failed-authentication bans.
    pub rate_limit: crate::ratelimit::RateLimit,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            timers: Timers::default(),
            public_ip: None,
            contact_user: "switchboard".into(),
            server: concat!("Switchboard/", env!("CARGO_PKG_VERSION")).into(),
            max_calls: 0,
            retry_after: 5,
            codecs: vec![Codec::Opus, Codec::Pcmu, Codec::Pcma],
            telephone_event: true,
            srtp: SrtpPolicy::Off,
            session_expires: 1800,
            min_se: 90,
            seed: 0x5eed,
            access: AccessPolicy::default(),
            auth: None,
            rate_limit: crate::ratelimit::RateLimit::default(),
        }
    }
}

/// Methods we implement (Allow header, RFC 3261 20.5).
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE";
/// Extensions we support (RFC 4028 session timers).
pub const SUPPORTED: &str = "timer";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_is_loopback_only() {
        let p = AccessPolicy::default();
        assert!(p.allows("127.0.0.1".parse().unwrap()));
        assert!(p.allows("127.9.8.7".parse().unwrap()));
        assert!(p.allows("::1".parse().unwrap()));
        assert!(
            p.allows("::ffff:127.0.0.1".parse().unwrap()),
            "IPv4-mapped loopback"
        );
        assert!(!p.allows("192.0.2.1".parse().unwrap()));
        assert!(!p.allows("2001:db8::1".parse().unwrap()));
    }
}
