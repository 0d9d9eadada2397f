//! Shared by the simulator's integration tests: a WebSocket client that records every server
//! event, and openai-python's strict validator over JSON lines.
#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use realtime::{ClientEvent, ServerEvent};
use realtime_sim::Simulator;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const VALIDATOR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../realtime/tests/validate_realtime_events.py"
);
pub const STEP: Duration = Duration::from_secs(10);

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Every server event received, one JSON line each, for the validator.
    pub log: Vec<String>,
}

impl Client {
    pub async fn connect(sim: &Simulator) -> Self {
        let (ws, _) = tokio::time::timeout(STEP, tokio_tungstenite::connect_async(sim.url()))
            .await
            .expect("connect timed out")
            .expect("connect");
        let mut c = Self {
            ws,
            log: Vec::new(),
        };
        let first = c.next().await;
        assert_eq!(first["type"], "session.created", "{first}");
        c
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.ws.send(Message::text(text.to_owned())).await.unwrap();
    }

    pub async fn send(&mut self, ev: ClientEvent) {
        self.send_raw(&ev.to_json().unwrap()).await;
    }

    pub async fn next(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(STEP, self.ws.next())
                .await
                .expect("no server event within 10 s")
                .expect("socket closed")
                .expect("read error");
            if let Message::Text(t) = msg {
                let text = t.as_str().to_owned();
                // Our typed model must read it too.
                ServerEvent::parse(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
                self.log.push(text.clone());
                return serde_json::from_str(&text).unwrap();
            }
        }
    }

    /// Events up to and including the first of type `until`.
    pub async fn until(&mut self, until: &str) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let ev = self.next().await;
            let done = ev["type"] == until;
            out.push(ev);
            if done {
                return out;
            }
        }
    }

    /// Every server event received so far through the strict validator.
    pub fn validate(&self) {
        let mut jsonl = self.log.join("\n");
        jsonl.push('\n');
        validate_jsonl(&jsonl);
    }
}

pub fn types(events: &[Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["type"].as_str()).collect()
}

/// Asserts `want` appears in `events` in this order (other events may interleave).
pub fn assert_in_order(events: &[Value], want: &[&str]) {
    let got = types(events);
    let mut it = got.iter();
    for w in want {
        assert!(it.any(|g| g == w), "missing {w} in order; got {got:?}");
    }
}

pub fn pcm(samples: impl Iterator<Item = i16>) -> Vec<u8> {
    samples.flat_map(|s| s.to_le_bytes()).collect()
}

pub fn loud_noise(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    pcm((0..n).map(move |_| {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        ((x >> 16) as i16) / 3
    }))
}

/// Runs openai-python's models over server events (one JSON line each) in `--strict` mode and
/// fails the test on any rejection. Missing python3 or the `openai` package fail it too: a
/// silent skip would let the wire format drift (as in `crates/realtime/tests/conformance.rs`).
pub fn validate_jsonl(jsonl: &str) {
    let mut child = Command::new("python3")
        .arg(VALIDATOR)
        .args(["server", "--strict"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is required for the conformance check");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(jsonl.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !report.contains("No module named"),
        "needs pip install openai\n{report}"
    );
    assert!(
        out.status.success() && report.trim_end().ends_with("0 invalid"),
        "simulator events rejected by openai-python's models:\n{report}"
    );
    eprintln!("{} server events, {}", jsonl.lines().count(), report.trim());
}
