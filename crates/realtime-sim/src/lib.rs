//! A loopback WebSocket server speaking the OpenAI Realtime GA protocol, so the bridge and its
//! tests run offline (DESIGN "Offline default", issue 5). Wire facts: `../shared/realtime-protocol.md`
//! ("Fake-server checklist"). Events are the typed ones of the `realtime` crate.
//!
//! Without options each response is a 1 s tone pattern with a fixed transcript. With a
//! [`Scenario`] (a TOML file, `fixtures/sim/README.md`) the session's `instructions` pick a
//! scripted agent whose turns speak WAV files or tones, stream their transcripts, end with
//! function calls as the real API sends them, and can drop the connection mid-response.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use realtime_sim::{Scenario, SimOptions, Simulator};
//! let scenario = Scenario::load("fixtures/sim/demo.toml")?;
//! let sim = Simulator::bind_with(
//!     "127.0.0.1:0",
//!     SimOptions { scenario: Some(scenario), ..SimOptions::default() },
//! )
//! .await?;
//! println!("dial {}", sim.url());
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod conn;
mod event_log;
mod scenario;
mod speech;
mod tone;
mod vad;
mod wav;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

pub use scenario::{Scenario, ScenarioError};
pub use vad::Vad;
pub use wav::WavError;

use event_log::EventLog;

/// What can go wrong starting the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The listen address could not be bound.
    #[error("cannot bind the simulator's listen address: {0}")]
    Bind(#[source] std::io::Error),
    /// The bound socket has no local address.
    #[error("cannot read the simulator's bound address: {0}")]
    LocalAddr(#[source] std::io::Error),
    /// The event log could not be opened for appending.
    #[error("cannot open the simulator's event log {}: {source}", path.display())]
    EventLog {
        /// The log file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// How the simulator answers. `SimOptions::default()` is the built-in tone agent, no log.
#[derive(Debug, Clone, Default)]
pub struct SimOptions {
    /// Scripted agents; `None` answers every response with the tone and a fixed transcript.
    pub scenario: Option<Scenario>,
    /// Appends every server event sent (all connections), one JSON line each, with the
    /// `delta` of `response.output_audio.delta` set to `""`.
    pub event_log: Option<PathBuf>,
}

/// What every connection shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub scenario: Option<Arc<Scenario>>,
    pub event_log: Option<EventLog>,
}

/// A running simulator. Serves `ws://{addr}/` (any path and query) until dropped or
/// [`Simulator::shutdown`]; dropping also ends open connections.
#[derive(Debug)]
pub struct Simulator {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    kill: broadcast::Sender<()>,
    accepted: Arc<AtomicU64>,
    task: Option<JoinHandle<()>>,
}

impl Simulator {
    /// Binds `addr` (use port 0 for an ephemeral port) and starts serving with the defaults.
    pub async fn bind(addr: impl ToSocketAddrs) -> Result<Self, SimError> {
        Self::bind_with(addr, SimOptions::default()).await
    }

    /// Binds `addr` and serves with `options` (a scenario, an event log).
    pub async fn bind_with(
        addr: impl ToSocketAddrs,
        options: SimOptions,
    ) -> Result<Self, SimError> {
        let event_log = match options.event_log {
            None => None,
            Some(path) => {
                Some(EventLog::open(&path).map_err(|source| SimError::EventLog { path, source })?)
            }
        };
        let shared = Arc::new(Shared {
            scenario: options.scenario.map(Arc::new),
            event_log,
        });
        let listener = TcpListener::bind(addr).await.map_err(SimError::Bind)?;
        let addr = listener.local_addr().map_err(SimError::LocalAddr)?;
        let (stop, stop_rx) = watch::channel(false);
        let (kill, _) = broadcast::channel(4);
        let accepted = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(accept_loop(
            listener,
            stop_rx,
            kill.clone(),
            accepted.clone(),
            shared,
        ));
        tracing::info!(%addr, "realtime simulator listening");
        Ok(Self {
            addr,
            stop,
            kill,
            accepted,
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

    /// TCP connections accepted so far (a reconnect shows up as one more).
    pub fn connections_accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Test hook: drops every open connection's TCP at once, without a WebSocket close frame
    /// and without flushing queued events, as a network failure would. Returns how many
    /// connections were told. The simulator keeps accepting new ones.
    pub fn kill_connections(&self) -> usize {
        self.kill.send(()).unwrap_or(0)
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

async fn accept_loop(
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
    kill: broadcast::Sender<()>,
    accepted: Arc<AtomicU64>,
    shared: Arc<Shared>,
) {
    let mut conn_seq: u64 = 0;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            res = listener.accept() => match res {
                Ok((tcp, peer)) => {
                    conn_seq += 1;
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let ctx = conn::ConnCtx {
                        stop: stop.clone(),
                        kill: kill.subscribe(),
                        shared: shared.clone(),
                    };
                    tokio::spawn(conn::serve(tcp, peer, conn_seq, ctx));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "simulator accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            },
        }
    }
}
