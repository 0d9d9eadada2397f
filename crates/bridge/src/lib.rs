//! Switchboard's runtime: binds the SIP transports, runs the sans-IO endpoint in one task,
//! answers calls, and serves the admin API. Entry point: [`Bridge::start`].

pub mod admin;
pub mod ai;
pub mod config;
mod core;
pub mod handoffs;
pub mod media;
pub mod memory;
pub mod metrics;
pub mod ports;
pub mod store;
pub mod tls;
pub mod tools;
mod transport;

pub use crate::core::{CallInfo, Control, Snapshot};
pub use config::BridgeConfig;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::info;

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("cannot bind SIP {transport} on {addr}: {source}")]
    Bind {
        transport: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot bind admin HTTP on {addr}: {source}")]
    Admin {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Bind UDP and TCP on the same address. With port 0 the UDP port is ephemeral and its
/// TCP twin may be taken by someone else's connection: try another port a few times.
async fn bind_pair(addr: SocketAddr) -> Result<(UdpSocket, TcpListener, SocketAddr), BridgeError> {
    let attempts = if addr.port() == 0 { 16 } else { 1 };
    let mut last = None;
    for _ in 0..attempts {
        let socket = UdpSocket::bind(addr)
            .await
            .map_err(|source| BridgeError::Bind {
                transport: "UDP",
                addr,
                source,
            })?;
        let bound = socket.local_addr().map_err(|source| BridgeError::Bind {
            transport: "UDP",
            addr,
            source,
        })?;
        match TcpListener::bind(bound).await {
            Ok(listener) => return Ok((socket, listener, bound)),
            Err(source) => {
                last = Some(BridgeError::Bind {
                    transport: "TCP",
                    addr: bound,
                    source,
                })
            }
        }
    }
    Err(last.unwrap_or(BridgeError::Bind {
        transport: "TCP",
        addr,
        source: std::io::Error::from(std::io::ErrorKind::AddrInUse),
    }))
}

/// A running bridge.
pub struct Bridge {
    /// Bound SIP addresses (UDP and TCP share each).
    pub sip_addrs: Vec<SocketAddr>,
    /// Bound SIP over TLS addresses (empty without TLS).
    pub tls_addrs: Vec<SocketAddr>,
    pub admin_addr: Option<SocketAddr>,
    snapshot: Arc<Mutex<Snapshot>>,
    shutdown: watch::Sender<bool>,
    control: mpsc::UnboundedSender<Control>,
    core: JoinHandle<()>,
}

impl Bridge {
    /// Bind every socket, then start the tasks. Port 0 binds an ephemeral port (tests); UDP and
    /// TCP then share the UDP port number.
    pub async fn start(cfg: BridgeConfig) -> Result<Bridge, BridgeError> {
        let (in_tx, in_rx) = mpsc::channel(8192);
        let (reg_tx, reg_rx) = mpsc::channel(1024);
        let mut udp = Vec::new();
        let mut sip_addrs = Vec::new();
        for addr in &cfg.sip_listen {
            let (socket, listener, bound) = bind_pair(*addr).await?;
            info!(%bound, "SIP listening on UDP and TCP");
            let socket = Arc::new(socket);
            tokio::spawn(transport::udp_reader(socket.clone(), in_tx.clone()));
            tokio::spawn(transport::tcp_acceptor(
                listener,
                in_tx.clone(),
                reg_tx.clone(),
            ));
            udp.push(socket);
            sip_addrs.push(bound);
        }
        let mut tls_addrs = Vec::new();
        if let Some(tls) = &cfg.tls {
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.server.clone());
            for addr in tls.listen_addrs(&sip_addrs) {
                let bind_err = |source| BridgeError::Bind {
                    transport: "TLS",
                    addr,
                    source,
                };
                let listener = TcpListener::bind(addr).await.map_err(bind_err)?;
                let bound = listener.local_addr().map_err(bind_err)?;
                info!(%bound, cert = %tls.cert_path.display(), "SIP listening on TLS");
                tokio::spawn(transport::tls_acceptor(
                    listener,
                    acceptor.clone(),
                    in_tx.clone(),
                    cfg.ops.clone(),
                ));
                tls_addrs.push(bound);
            }
        }
        let snapshot = Arc::new(Mutex::new(Snapshot::default()));
        let (control, control_rx) = mpsc::unbounded_channel();
        let admin_addr = match cfg.admin_listen {
            Some(addr) => {
                let listener = TcpListener::bind(addr)
                    .await
                    .map_err(|source| BridgeError::Admin { addr, source })?;
                let bound = listener
                    .local_addr()
                    .map_err(|source| BridgeError::Admin { addr, source })?;
                let app = admin::router(admin::AdminState {
                    snapshot: snapshot.clone(),
                    ai: cfg.ai.as_ref().map(|a| a.counters.clone()),
                    records: cfg.records.clone(),
                    control: control.clone(),
                    ops: cfg.ops.clone(),
                });
                tokio::spawn(async move {
                    let _ = axum::serve(listener, app).await;
                });
                info!(%bound, "admin HTTP listening");
                Some(bound)
            }
            None => None,
        };
        let (shutdown, shutdown_rx) = watch::channel(false);
        let core = core::Core::new(cfg, udp, in_tx, snapshot.clone());
        let core = tokio::spawn(core.run(in_rx, reg_rx, shutdown_rx, control_rx));
        Ok(Bridge {
            sip_addrs,
            tls_addrs,
            admin_addr,
            snapshot,
            shutdown,
            control,
            core,
        })
    }

    pub fn snapshot(&self) -> Snapshot {
        self.snapshot.lock().map(|g| *g).unwrap_or_default()
    }

    /// New calls use `agents` from now on; calls in progress keep theirs (SIGHUP reload).
    pub fn reload_agents(&self, agents: ai::Agents) -> bool {
        self.control
            .send(Control::ReloadAgents(Box::new(agents)))
            .is_ok()
    }

    /// Begin draining: new calls get 503; active ones end by themselves or at the drain timeout.
    pub fn drain(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Wait until the endpoint task has stopped (after [`Bridge::drain`]).
    pub async fn join(self) {
        let _ = self.core.await;
    }
}
