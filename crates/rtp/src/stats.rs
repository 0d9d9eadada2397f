//! Per-call media figures for the CDR.

use std::time::Duration;

/// Everything the CDR records about one call's media.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CallStats {
    pub packets_sent: u64,
    /// Payload octets, as in the SR (RFC 3550 6.4.1).
    pub octets_sent: u64,
    pub packets_received: u64,
    pub octets_received: u64,
    /// RFC 3550 A.3 cumulative loss over all SSRCs of the call.
    pub lost: i64,
    /// Last RFC 3550 A.3 fraction lost we reported, in 1/256.
    pub fraction_lost: u8,
    /// RFC 3550 A.8 interarrival jitter of the current source.
    pub jitter: Duration,
    /// Audio packets that arrived after their playout slot (dropped by the jitter buffer).
    pub late: u64,
    /// Slots handed out as missing, for the codec to conceal.
    pub concealed: u64,
    pub duplicates: u64,
    pub ssrc_changes: u64,
    /// Slots inserted / dropped to resize the jitter buffer.
    pub buffer_grown: u64,
    pub buffer_shrunk: u64,
    /// Current jitter buffer delay.
    pub buffer_delay: Duration,
    /// 20 ms ticks the pacer dropped after a stall.
    pub ticks_dropped: u64,
    /// Datagrams rejected: malformed, from an unproven source, or an unexpected payload type.
    pub malformed: u64,
    pub rejected_source: u64,
    pub digits_received: u64,
    pub digits_sent: u64,
    /// What the peer's last report said about our stream.
    pub remote_fraction_lost: u8,
    pub remote_cumulative_lost: i32,
    pub remote_jitter: Duration,
    pub rtcp_sent: u64,
    pub rtcp_received: u64,
    /// SRTP packets dropped for a wrong authentication tag (RFC 3711 3.3): forged, wrong key,
    /// or plain RTP on an SRTP call.
    pub srtp_auth_failed: u64,
    /// The same for RTCP (SRTCP, 3.4). Some peers send plain RTCP around the SRTP session
    /// (baresip 1.0: an APP packet before it, a BYE after it), which lands here.
    pub srtcp_auth_failed: u64,
    /// SRTP/SRTCP packets dropped as replayed or older than the replay window (3.3.2).
    pub srtp_replayed: u64,
    /// Outgoing packets that could not be protected (key exhausted) and were not sent.
    pub srtp_protect_failed: u64,
}
