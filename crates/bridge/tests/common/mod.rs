//! Helpers shared by the bridge's loopback tests: placing a call and building RTP packets.

use sip_msg::Response;
use std::net::SocketAddr;
use std::time::Duration;
use testkit::uac::Uac;
use tokio::net::UdpSocket;
use tokio::time::timeout;

/// Send `invite` (from `uac`), ACK the 200, and return the bridge's RTP address from its SDP.
pub async fn call(sip: &UdpSocket, server: SocketAddr, uac: &mut Uac, invite: &[u8]) -> SocketAddr {
    sip.send_to(invite, server).await.unwrap();
    let mut buf = vec![0u8; 65535];
    loop {
        let (n, _) = timeout(Duration::from_secs(5), sip.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let Ok(r) = Response::parse(&buf[..n]) else {
            continue;
        };
        if r.status == 200 {
            uac.learn(&buf[..n]);
            sip.send_to(&uac.ack_2xx(), server).await.unwrap();
            let body = String::from_utf8_lossy(&r.body).to_string();
            let port: u16 = body
                .lines()
                .find_map(|l| l.strip_prefix("m=audio "))
                .and_then(|l| l.split(' ').next())
                .and_then(|p| p.parse().ok())
                .unwrap();
            return SocketAddr::new(server.ip(), port);
        }
    }
}

/// A PCMU (PT 0) RTP packet.
pub fn rtp_packet(seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}
