//! Runtime settings of the bridge, filled by the `switchboard` binary.

use sip_proto::sdp::{Codec, SrtpPolicy};
use sip_proto::AccessPolicy;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// Each address listens on UDP and TCP.
    pub sip_listen: Vec<SocketAddr>,
    /// SIP over TLS (certificate, key, listen addresses); `None`: no TLS listener.
    pub tls: Option<crate::tls::SipTls>,
    pub public_ip: Option<IpAddr>,
    pub admin_listen: Option<SocketAddr>,
    /// Concurrent calls before 503 (0 = unlimited).
    pub max_calls: usize,
    /// Hang up (BYE) calls older than this.
    pub max_call_duration: Option<Duration>,
    /// Ring (180) this long before answering; zero answers at once.
    pub answer_delay: Duration,
    /// SIP timer T1 (RFC 3261 17); T2 and T4 keep their RFC ratios to the default.
    pub sip_t1: Duration,
    pub rtp_ports: RangeInclusive<u16>,
    pub codecs: Vec<Codec>,
    /// SRTP with SDES keys (RFC 3711, 4568): `off` (plain RTP only, the default), `optional`
    /// (RTP/SAVP offers get SRTP, RTP/AVP offers plain RTP), `required` (plain offers: 488).
    pub srtp: SrtpPolicy,
    /// Session-Expires we ask for (RFC 4028), 0 = only when the caller asks.
    pub session_expires: u32,
    /// On shutdown, how long active calls may continue before they get a BYE.
    pub drain_timeout: Duration,
    /// Trunk allow-list: loopback only unless configured.
    pub access: AccessPolicy,
    /// Per-source message rate (0 = off) and failed-auth bans.
    pub rate_limit: sip_proto::ratelimit::RateLimit,
    /// Digest authentication of INVITEs; the nonce secret is drawn at start.
    pub auth: Option<sip_proto::auth::DigestConfig>,
    /// The Realtime side of each call (simulator or API); `None` leaves calls silent.
    pub ai: Option<crate::ai::AiSettings>,
    /// Memory, records, metrics and callbacks of the agents (admin `/metrics`, `/callbacks`).
    pub records: Option<std::sync::Arc<crate::handoffs::Records>>,
    /// Call, setup and RTP metrics (admin `/metrics`).
    pub ops: std::sync::Arc<crate::metrics::OpsMetrics>,
    /// Echo mode: callers hear their own audio (the classic test line).
    pub echo: bool,
    /// No RTP for this long while not on hold: BYE.
    pub media_timeout: Duration,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        BridgeConfig {
            sip_listen: vec![SocketAddr::from(([127, 0, 0, 1], 5060))],
            tls: None,
            public_ip: None,
            admin_listen: Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
            max_calls: 0,
            max_call_duration: None,
            answer_delay: Duration::ZERO,
            sip_t1: Duration::from_millis(500),
            rtp_ports: 20000..=29999,
            codecs: vec![Codec::Pcmu, Codec::Pcma, Codec::Opus],
            srtp: SrtpPolicy::Off,
            session_expires: 1800,
            drain_timeout: Duration::from_secs(30),
            access: AccessPolicy::default(),
            auth: None,
            rate_limit: sip_proto::ratelimit::RateLimit::default(),
            ai: None,
            records: None,
            ops: std::sync::Arc::new(crate::metrics::OpsMetrics::new()),
            echo: false,
            media_timeout: Duration::from_secs(30),
        }
    }
}
