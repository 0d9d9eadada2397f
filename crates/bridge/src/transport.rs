//! UDP, TCP and TLS transports: one task per socket or connection (never per message),
//! feeding frames to the endpoint task and writing what it sends.

use crate::metrics::OpsMetrics;
use sip_msg::{frame_stream, StreamFrame, MAX_HEADER_BYTES};
use sip_proto::{Flow, Transport};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

/// What transports tell the endpoint task.
#[derive(Debug)]
pub enum Inbound {
    Packet {
        flow: Flow,
        data: Vec<u8>,
    },
    /// A stream connection is up (TLS: handshake done); what the endpoint sends to `remote`
    /// over `transport` goes to `sender`. Sent before the connection's first packet, on the
    /// same channel, so the endpoint always knows where to answer.
    Connected {
        transport: Transport,
        remote: SocketAddr,
        sender: mpsc::Sender<Vec<u8>>,
    },
    Closed {
        transport: Transport,
        remote: SocketAddr,
    },
}

/// A TLS client that has not finished its handshake by then is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest UDP datagram (RFC 3261 18.1.1 allows up to 65,535 octets).
const UDP_MAX: usize = 65_535;

pub async fn udp_reader(socket: Arc<UdpSocket>, tx: mpsc::Sender<Inbound>) {
    let local = match socket.local_addr() {
        Ok(a) => a,
        Err(e) => {
            warn!(error = %e, "udp socket has no local address");
            return;
        }
    };
    let mut buf = vec![0u8; UDP_MAX];
    // A socket bound to 0.0.0.0/:: does not say which of our addresses the peer used; the
    // route towards the peer does, and Via/Contact/SDP must carry a real address.
    let mut routed: HashMap<IpAddr, IpAddr> = HashMap::new();
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, remote)) => {
                let mut local = local;
                if local.ip().is_unspecified() {
                    let ip = match routed.get(&remote.ip()) {
                        Some(ip) => *ip,
                        None => {
                            let ip = route_source(remote).await.unwrap_or(local.ip());
                            if routed.len() > 4096 {
                                routed.clear();
                            }
                            routed.insert(remote.ip(), ip);
                            ip
                        }
                    };
                    local.set_ip(ip);
                }
                let flow = Flow {
                    transport: Transport::Udp,
                    local,
                    remote,
                };
                if tx
                    .send(Inbound::Packet {
                        flow,
                        data: buf[..n].to_vec(),
                    })
                    .await
                    .is_err()
                {
                    return;
                }
            }
            // ICMP port unreachable surfaces as an error on some systems; keep serving.
            Err(e) => debug!(error = %e, "udp recv"),
        }
    }
}

/// Our source address towards `remote`, from the kernel's routing (a connected UDP socket
/// sends nothing).
async fn route_source(remote: SocketAddr) -> Option<IpAddr> {
    let any: SocketAddr = if remote.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let probe = UdpSocket::bind(any).await.ok()?;
    probe.connect(remote).await.ok()?;
    probe.local_addr().ok().map(|a| a.ip())
}

pub async fn tcp_acceptor(
    listener: TcpListener,
    tx: mpsc::Sender<Inbound>,
    registry: mpsc::Sender<(SocketAddr, mpsc::Sender<Vec<u8>>)>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, remote)) => {
                let (out_tx, out_rx) = mpsc::channel(256);
                if registry.send((remote, out_tx)).await.is_err() {
                    return;
                }
                tokio::spawn(connection(stream, remote, tx.clone(), out_rx));
            }
            Err(e) => {
                warn!(error = %e, "tcp accept");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Connect to `remote` for a request we send (no connection open), then serve it.
pub async fn tcp_connect(
    remote: SocketAddr,
    tx: mpsc::Sender<Inbound>,
    out_rx: mpsc::Receiver<Vec<u8>>,
) {
    match TcpStream::connect(remote).await {
        Ok(stream) => connection(stream, remote, tx, out_rx).await,
        Err(e) => {
            warn!(%remote, error = %e, "tcp connect failed");
            let _ = tx
                .send(Inbound::Closed {
                    transport: Transport::Tcp,
                    remote,
                })
                .await;
        }
    }
}

/// Accept TLS connections: each handshakes in its own task (a slow or non-TLS client holds
/// nothing but that task, for at most [`TLS_HANDSHAKE_TIMEOUT`]), then frames like TCP.
pub async fn tls_acceptor(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<Inbound>,
    ops: Arc<OpsMetrics>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, remote)) => {
                tokio::spawn(tls_connection(
                    stream,
                    remote,
                    acceptor.clone(),
                    tx.clone(),
                    ops.clone(),
                ));
            }
            Err(e) => {
                warn!(error = %e, "tls accept");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn tls_connection(
    stream: TcpStream,
    remote: SocketAddr,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<Inbound>,
    ops: Arc<OpsMetrics>,
) {
    let _ = stream.set_nodelay(true);
    let Ok(local) = stream.local_addr() else {
        return;
    };
    let tls = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            ops.record_tls_handshake("failed");
            debug!(%remote, error = %e, "tls handshake failed");
            return;
        }
        Err(_) => {
            ops.record_tls_handshake("timeout");
            debug!(%remote, "tls handshake timed out");
            return;
        }
    };
    ops.record_tls_handshake("ok");
    {
        let (_, session) = tls.get_ref();
        debug!(
            %remote,
            version = ?session.protocol_version(),
            suite = ?session.negotiated_cipher_suite().map(|s| s.suite()),
            "tls connection"
        );
    }
    let (out_tx, out_rx) = mpsc::channel(256);
    let opened = Inbound::Connected {
        transport: Transport::Tls,
        remote,
        sender: out_tx,
    };
    if tx.send(opened).await.is_err() {
        return;
    }
    let flow = Flow {
        transport: Transport::Tls,
        local,
        remote,
    };
    let (rd, wr) = tokio::io::split(tls);
    serve_stream(rd, wr, flow, tx, out_rx).await;
}

/// One TCP connection.
async fn connection(
    stream: TcpStream,
    remote: SocketAddr,
    tx: mpsc::Sender<Inbound>,
    out_rx: mpsc::Receiver<Vec<u8>>,
) {
    let _ = stream.set_nodelay(true);
    let local = match stream.local_addr() {
        Ok(a) => a,
        Err(_) => return,
    };
    let (rd, wr) = stream.into_split();
    let flow = Flow {
        transport: Transport::Tcp,
        local,
        remote,
    };
    serve_stream(rd, wr, flow, tx, out_rx).await;
}

/// A stream connection (TCP, or TLS once decrypted): frames by Content-Length (RFC 3261
/// 18.3), answers keep-alives through the endpoint, closes when framing is lost.
async fn serve_stream<R, W>(
    mut rd: R,
    mut wr: W,
    flow: Flow,
    tx: mpsc::Sender<Inbound>,
    mut out_rx: mpsc::Receiver<Vec<u8>>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let remote = flow.remote;
    let writer = tokio::spawn(async move {
        while let Some(data) = out_rx.recv().await {
            if wr.write_all(&data).await.is_err() {
                break;
            }
        }
    });
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 16 * 1024];
    'read: loop {
        let n = match rd.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        loop {
            let crlf = buf
                .iter()
                .take_while(|b| matches!(b, b'\r' | b'\n'))
                .count();
            if crlf > 0 {
                // RFC 5626 keep-alive: a double CRLF is a ping the endpoint answers.
                if crlf >= 4
                    && tx
                        .send(Inbound::Packet {
                            flow,
                            data: b"\r\n\r\n".to_vec(),
                        })
                        .await
                        .is_err()
                {
                    break 'read;
                }
                buf.drain(..crlf);
            }
            if buf.is_empty() {
                break;
            }
            match frame_stream(&buf) {
                Ok(StreamFrame::Complete(len)) => {
                    let data: Vec<u8> = buf.drain(..len).collect();
                    if tx.send(Inbound::Packet { flow, data }).await.is_err() {
                        break 'read;
                    }
                }
                Ok(StreamFrame::Incomplete) if buf.len() <= MAX_HEADER_BYTES * 2 => break,
                _ => {
                    // Framing is lost (bad or conflicting Content-Length): answer what we can, close.
                    let data = std::mem::take(&mut buf);
                    let _ = tx.send(Inbound::Packet { flow, data }).await;
                    break 'read;
                }
            }
        }
    }
    let _ = tx
        .send(Inbound::Closed {
            transport: flow.transport,
            remote,
        })
        .await;
    // Let queued responses go out before the write half closes.
    tokio::time::sleep(Duration::from_millis(100)).await;
    writer.abort();
}
