//! SIP over TLS through the running bridge on loopback, with a tokio-rustls client trusting the
//! test CA (fixtures/tls): a call on one TLS connection (100/200, ACK, BYE, all on it), a
//! `sips:` call, the bridge's own BYE back on the caller's connection, plain TCP on the TLS
//! port (nothing answered, nothing broken), and a `sips:` INVITE over UDP (416, no call).

use bridge::metrics::OpsMetrics;
use bridge::tls::SipTls;
use bridge::{Bridge, BridgeConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use sip_msg::{HeaderName, Message, Request, Response, SipHeaders};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::uac::Uac;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;
use tokio_rustls::client::TlsStream;

const TLS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/tls");

fn config(ops: Arc<OpsMetrics>) -> BridgeConfig {
    let tls = SipTls::load(
        Path::new(&format!("{TLS_DIR}/localhost.pem")),
        Path::new(&format!("{TLS_DIR}/localhost.key")),
        vec!["127.0.0.1:0".parse().unwrap()],
    )
    .unwrap();
    BridgeConfig {
        sip_listen: vec!["127.0.0.1:0".parse().unwrap()],
        tls: Some(tls),
        admin_listen: None,
        sip_t1: Duration::from_millis(10),
        session_expires: 0,
        ops,
        ..BridgeConfig::default()
    }
}

fn client_config(versions: &[&'static rustls::SupportedProtocolVersion]) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(format!("{TLS_DIR}/ca.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// A TLS connection to the bridge, verifying its certificate for `localhost`.
struct Client {
    stream: TlsStream<TcpStream>,
    buf: Vec<u8>,
    local: SocketAddr,
}

impl Client {
    async fn connect(server: SocketAddr, cfg: rustls::ClientConfig) -> Client {
        let tcp = TcpStream::connect(server).await.unwrap();
        let local = tcp.local_addr().unwrap();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
        let name = ServerName::try_from("localhost").unwrap();
        let stream = timeout(Duration::from_secs(5), connector.connect(name, tcp))
            .await
            .expect("handshake in time")
            .expect("handshake with the bridge's certificate, trusted through the test CA");
        Client {
            stream,
            buf: Vec::new(),
            local,
        }
    }

    async fn send(&mut self, data: &[u8]) {
        self.stream.write_all(data).await.unwrap();
        self.stream.flush().await.unwrap();
    }

    /// The next whole message off the stream.
    async fn next(&mut self) -> Message {
        loop {
            if let Ok(sip_msg::StreamFrame::Complete(n)) = sip_msg::frame_stream(&self.buf) {
                let frame: Vec<u8> = self.buf.drain(..n).collect();
                return Message::parse(&frame).unwrap();
            }
            let mut chunk = [0u8; 4096];
            let n = timeout(Duration::from_secs(5), self.stream.read(&mut chunk))
                .await
                .expect("data in time")
                .unwrap();
            assert!(n > 0, "connection closed");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn response(&mut self) -> Response {
        match self.next().await {
            Message::Response(r) => r,
            Message::Request(r) => panic!("expected a response, got {}", r.method),
        }
    }
}

/// `request` with a `sips:` Request-URI (the testkit UAC writes `sip:`).
fn sips(request: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(request.to_vec()).unwrap();
    let (line, rest) = text.split_once("\r\n").unwrap();
    format!("{}\r\n{rest}", line.replacen(" sip:", " sips:", 1)).into_bytes()
}

fn handshakes(ops: &OpsMetrics, result: &str) -> u64 {
    let mut out = String::new();
    ops.render_into(&mut out, &[], &[]);
    let key = format!("switchboard_sip_tls_handshakes_total{{result=\"{result}\"}} ");
    out.lines()
        .find_map(|l| l.strip_prefix(&key))
        .map(|v| v.parse().unwrap())
        .unwrap_or(0)
}

async fn wait_drained(bridge: &Bridge) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let s = bridge.snapshot();
        if s.calls == 0 && s.dialogs == 0 && s.server_transactions == 0 {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "not drained: {s:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn invite_over_tls_gets_100_and_200_then_ack_and_bye_on_the_same_connection() {
    let ops = Arc::new(OpsMetrics::new());
    let bridge = Bridge::start(config(ops.clone())).await.unwrap();
    let server = bridge.tls_addrs[0];
    assert_ne!(server.port(), bridge.sip_addrs[0].port());

    let t0 = Instant::now();
    let mut c = Client::connect(server, client_config(rustls::DEFAULT_VERSIONS)).await;
    let handshake = t0.elapsed();
    let (_, session) = c.stream.get_ref();
    assert_eq!(
        session.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );

    let mut uac = Uac::new("tls1", c.local, server).tls();
    let t1 = Instant::now();
    c.send(&uac.invite(&[])).await;
    let trying = c.response().await;
    assert_eq!(trying.status, 100);
    let ok = c.response().await;
    let invite_to_200 = t1.elapsed();
    assert_eq!(ok.status, 200);
    let via = ok.top_via().unwrap();
    assert_eq!(via.transport, "TLS");
    assert_eq!(
        ok.headers.get(&HeaderName::Contact),
        Some(format!("<sip:switchboard@{server};transport=tls>").as_str())
    );
    uac.learn(&ok.to_bytes());
    c.send(&uac.ack_2xx()).await;
    // A second dialog on the same connection: sips: this time, answered with a sips: Contact.
    let mut secure = Uac::new("tls2", c.local, server).tls();
    c.send(&sips(&secure.invite(&[]))).await;
    assert_eq!(c.response().await.status, 100);
    let ok2 = c.response().await;
    assert_eq!(ok2.status, 200);
    assert_eq!(
        ok2.headers.get(&HeaderName::Contact),
        Some(format!("<sips:switchboard@{server}>").as_str())
    );
    secure.learn(&ok2.to_bytes());
    c.send(&sips(&secure.ack_2xx())).await;

    c.send(&uac.bye()).await;
    let bye_ok = c.response().await;
    assert_eq!(bye_ok.status, 200);
    assert_eq!(bye_ok.cseq().unwrap().method, sip_msg::Method::Bye);
    c.send(&sips(&secure.bye())).await;
    assert_eq!(c.response().await.status, 200);
    assert_eq!(bridge.snapshot().calls_total, 2);
    wait_drained(&bridge).await;
    assert_eq!(handshakes(&ops, "ok"), 1, "one connection for both calls");
    eprintln!(
        "TLS 1.3 handshake {:.2} ms, INVITE -> 200 {:.2} ms (loopback, debug build)",
        handshake.as_secs_f64() * 1e3,
        invite_to_200.as_secs_f64() * 1e3
    );
}

#[tokio::test]
async fn tls12_clients_are_served_too() {
    let bridge = Bridge::start(config(Arc::new(OpsMetrics::new())))
        .await
        .unwrap();
    let server = bridge.tls_addrs[0];
    let mut c = Client::connect(server, client_config(&[&rustls::version::TLS12])).await;
    let (_, session) = c.stream.get_ref();
    assert_eq!(
        session.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    let mut uac = Uac::new("tls12", c.local, server).tls();
    c.send(&uac.options()).await;
    assert_eq!(c.response().await.status, 200);
}

#[tokio::test]
async fn the_bridges_bye_comes_back_on_the_callers_tls_connection() {
    let bridge = Bridge::start(BridgeConfig {
        max_call_duration: Some(Duration::from_millis(300)),
        ..config(Arc::new(OpsMetrics::new()))
    })
    .await
    .unwrap();
    let server = bridge.tls_addrs[0];
    let mut c = Client::connect(server, client_config(rustls::DEFAULT_VERSIONS)).await;
    // The Contact names a port nobody listens on: the BYE must not go there.
    let mut uac = Uac::new("byeback", c.local, server).tls();
    let inv = String::from_utf8(uac.invite(&[]))
        .unwrap()
        .replace(
            &format!("Contact: <sip:caller@{}>", c.local),
            "Contact: <sip:caller@127.0.0.1:9;transport=tls>",
        )
        .into_bytes();
    c.send(&inv).await;
    assert_eq!(c.response().await.status, 100);
    let ok = c.response().await;
    assert_eq!(ok.status, 200);
    uac.learn(&ok.to_bytes());
    c.send(&uac.ack_2xx()).await;
    let bye: Request = match c.next().await {
        Message::Request(r) => r,
        Message::Response(r) => panic!("expected the bridge's BYE, got {}", r.status),
    };
    assert_eq!(bye.method, sip_msg::Method::Bye);
    assert_eq!(bye.top_via().unwrap().transport, "TLS");
    assert_eq!(bye.uri.to_string(), "sip:caller@127.0.0.1:9;transport=tls");
    c.send(&Response::for_request(&bye, 200, "OK").to_bytes())
        .await;
    wait_drained(&bridge).await;
}

#[tokio::test]
async fn plain_tcp_on_the_tls_port_gets_no_sip_and_breaks_nothing() {
    let ops = Arc::new(OpsMetrics::new());
    let bridge = Bridge::start(config(ops.clone())).await.unwrap();
    let server = bridge.tls_addrs[0];
    let mut tcp = TcpStream::connect(server).await.unwrap();
    let local = tcp.local_addr().unwrap();
    let mut uac = Uac::new("plain", local, server).tcp();
    tcp.write_all(&uac.invite(&[])).await.unwrap();
    // rustls answers garbage with at most a fatal alert, then the connection closes.
    let mut got = Vec::new();
    let closed = timeout(Duration::from_secs(5), tcp.read_to_end(&mut got)).await;
    assert!(closed.is_ok(), "the bridge closes the connection");
    assert!(
        !String::from_utf8_lossy(&got).contains("SIP/2.0"),
        "no SIP in the clear: {got:?}"
    );
    assert!(got.len() <= 7, "at most one TLS alert record: {got:?}");
    assert_eq!(handshakes(&ops, "failed"), 1);
    assert_eq!(bridge.snapshot().calls_total, 0);
    // The listener still serves TLS.
    let mut c = Client::connect(server, client_config(rustls::DEFAULT_VERSIONS)).await;
    let mut uac = Uac::new("after", c.local, server).tls();
    c.send(&uac.options()).await;
    assert_eq!(c.response().await.status, 200);
    assert_eq!(handshakes(&ops, "ok"), 1);
}

#[tokio::test]
async fn sips_invite_over_plain_udp_gets_416_and_no_call() {
    let bridge = Bridge::start(config(Arc::new(OpsMetrics::new())))
        .await
        .unwrap();
    let server = bridge.sip_addrs[0];
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut uac = Uac::new("sipsudp", sock.local_addr().unwrap(), server);
    sock.send_to(&sips(&uac.invite(&[])), server).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let (n, _) = timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    let r = Response::parse(&buf[..n]).unwrap();
    assert_eq!(r.status, 416, "{r:?}");
    assert!(r
        .headers
        .get(&HeaderName::Warning)
        .is_some_and(|w| w.contains("sips: needs TLS")));
    // The INVITE server transaction retransmits the 416 until the ACK (Timer G); nothing but
    // the 416 comes (no 100, no 200), and no call is counted.
    sock.send_to(&sips(&uac.ack_non_2xx()), server)
        .await
        .unwrap();
    while let Ok(got) = timeout(Duration::from_millis(300), sock.recv_from(&mut buf)).await {
        let (n, _) = got.unwrap();
        assert_eq!(Response::parse(&buf[..n]).unwrap().status, 416);
    }
    assert_eq!(bridge.snapshot().calls_total, 0);
    // The same INVITE as sip: over UDP is a call.
    let mut plain = Uac::new("sipudp", sock.local_addr().unwrap(), server);
    sock.send_to(&plain.invite(&[]), server).await.unwrap();
    let (n, _) = timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(Response::parse(&buf[..n]).unwrap().status, 100);
}

/// A client that connects and never speaks TLS is dropped at the handshake timeout (10 s, on
/// tokio's paused clock), counted, and the listener keeps serving.
#[tokio::test(start_paused = true)]
async fn a_silent_client_is_dropped_at_the_handshake_timeout() {
    let ops = Arc::new(OpsMetrics::new());
    let bridge = Bridge::start(config(ops.clone())).await.unwrap();
    let server = bridge.tls_addrs[0];
    let mut silent = TcpStream::connect(server).await.unwrap();
    let t0 = tokio::time::Instant::now();
    let mut got = Vec::new();
    timeout(Duration::from_secs(30), silent.read_to_end(&mut got))
        .await
        .expect("closed by the bridge")
        .unwrap();
    let waited = t0.elapsed();
    assert!(got.is_empty(), "{got:?}");
    assert!(
        (Duration::from_secs(10)..Duration::from_secs(11)).contains(&waited),
        "{waited:?}"
    );
    assert_eq!(handshakes(&ops, "timeout"), 1);
    let mut c = Client::connect(server, client_config(rustls::DEFAULT_VERSIONS)).await;
    let mut uac = Uac::new("later", c.local, server).tls();
    c.send(&uac.options()).await;
    assert_eq!(c.response().await.status, 200);
}
