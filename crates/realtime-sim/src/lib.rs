//! A loopback WebSocket server speaking the OpenAI Realtime GA protocol, so the bridge and its
//! tests run offline (DESIGN "Offline default", issue 5). Wire facts: `../shared/realtime-protocol.md`
//! ("Fake-server checklist"). Events are the typed ones of the `realtime` crate.
#![deny(missing_docs)]

mod conn;
mod tone;
mod vad;

use std::net::SocketAddr;

use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use vad::Vad;

/// What can go wrong starting the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The listen address could not be bound.
    #[error("cannot bind the simulator's listen address: {0}")]
    Bind(#[source] std::io::Error),
    /// The bound socket has no local address.
    #[error("cannot read the simulator's bound address: {0}")]
    LocalAddr(#[source] std::io::Error),
}

/// A running simulator. Serves `ws://{addr}/` (any path and query) until dropped or
/// [`Simulator::shutdown`]; dropping also ends open connections.
#[derive(Debug)]
pub struct Simulator {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Simulator {
    /// Binds `addr` (use port 0 for an ephemeral port) and starts serving.
    pub async fn bind(addr: impl ToSocketAddrs) -> Result<Self, SimError> {
        let listener = TcpListener::bind(addr).await.map_err(SimError::Bind)?;
        let addr = listener.local_addr().map_err(SimError::LocalAddr)?;
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, stop_rx));
        tracing::info!(%addr, "realtime simulator listening");
        Ok(Self {
            addr,
            stop,
            task: Some(task),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://{addr}/v1/realtime?model=gpt-realtime`, what the bridge dials.
    pub fn url(&self) -> String {
        format!("ws://{}/v1/realtime?model=gpt-realtime", self.addr)
    }

    /// Stops accepting, closes connections and waits for the accept loop to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn accept_loop(listener: TcpListener, mut stop: watch::Receiver<bool>) {
    let mut conn_seq: u64 = 0;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    conn_seq += 1;
                    let stop = stop.clone();
                    tokio::spawn(conn::serve(tcp, peer, conn_seq, stop));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "simulator accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            },
        }
    }
}
