//! The four transaction state machines of RFC 3261 17 with RFC 6026's Accepted states.
//! Each is plain data: the endpoint feeds it messages and expired timers with `now`, and it
//! appends what to transmit to an output vector. No clock, no I/O.

mod ict;
mod ist;
mod nict;
mod nist;

pub use ict::InviteClient;
pub use ist::InviteServer;
pub use nict::NonInviteClient;
pub use nist::NonInviteServer;

use std::net::SocketAddr;

/// SIP transport of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    /// TLS over TCP (RFC 3261 26.2); framed like TCP (18.3).
    Tls,
}

impl Transport {
    /// Reliable transports get no retransmissions and zero-length wait timers (RFC 3261 17).
    pub fn is_reliable(self) -> bool {
        matches!(self, Transport::Tcp | Transport::Tls)
    }

    /// Only TLS meets a `sips:` URI's demand (RFC 3261 26.2.2).
    pub fn is_secure(self) -> bool {
        self == Transport::Tls
    }

    pub fn as_via(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    /// The port a URI or Via without one means (RFC 3261 19.1.2, 18.2.2): 5061 for TLS.
    pub fn default_port(self) -> u16 {
        match self {
            Transport::Tls => 5061,
            Transport::Udp | Transport::Tcp => 5060,
        }
    }
}

/// Where a message goes or came from: transport, our socket address, the peer's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    pub transport: Transport,
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

/// Octets to send on a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub flow: Flow,
    pub data: Vec<u8>,
}

/// What a client transaction reports to its transaction user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// A response to pass up (retransmitted 2xx included, for the TU to ACK again).
    Response(sip_msg::Response),
    /// Timer B or F: no final response (RFC 3261 17.1.1.2, 17.1.2.2).
    Timeout,
}

/// The flow most transaction tests use: our 5060 to a peer on 5070, over `transport`.
#[cfg(test)]
pub(crate) fn test_flow(transport: Transport) -> Flow {
    Flow {
        transport,
        local: SocketAddr::from(([127, 0, 0, 1], 5060)),
        remote: SocketAddr::from(([127, 0, 0, 1], 5070)),
    }
}
