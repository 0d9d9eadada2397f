//! Endpoint settings: who we are on the wire and the limits we enforce.

use crate::sdp::Codec;
use crate::timer::Timers;
use std::net::IpAddr;

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
    /// Session-Expires we ask for when the caller supports timers but sent none (RFC 4028 9);
    /// 0 disables session timers unless the caller asks.
    pub session_expires: u32,
    /// Smallest Session-Expires we accept (RFC 4028 5: at least 90).
    pub min_se: u32,
    /// Seed of the tag/branch generator.
    pub seed: u64,
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
            session_expires: 1800,
            min_se: 90,
            seed: 0x5eed,
        }
    }
}

/// Methods we implement (Allow header, RFC 3261 20.5).
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE";
/// Extensions we support (RFC 4028 session timers).
pub const SUPPORTED: &str = "timer";
