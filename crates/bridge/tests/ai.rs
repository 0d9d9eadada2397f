//! Calls that talk to the Realtime simulator through the bridge: the caller speaks (noise), the
//! simulator's VAD takes the turn, and the caller hears the answer over RTP. Also: the socket
//! killed mid-response (the call survives, filler, reconnect, context restored), `wss://`
//! through a TLS terminator with the test CA, and every client event the bridge wrote checked
//! by the official `openai` types (`validate_realtime_events.py client --strict`).

mod common;

use common::Caller;

use bridge::ai::AiSettings;
use bridge::{Bridge, BridgeConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use testkit::uac::Uac;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio::time::timeout;

const VALIDATOR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../realtime/tests/validate_realtime_events.py"
);
const TLS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/tls");

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("switchboard-{}-{name}", std::process::id()))
}

/// Run the project's copy of the validator over a JSONL file; panics with its report if any
/// event is invalid (python3 and `openai` are required: the test fails without them).
fn validate_client_log(path: &Path) -> String {
    let input = std::fs::File::open(path).unwrap();
    let out = Command::new("python3")
        .arg(VALIDATOR)
        .arg("client")
        .arg("--strict")
        .stdin(Stdio::from(input))
        .output()
        .expect("python3 with `pip install openai` is required");
    let report =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && report.trim_end().ends_with("0 invalid"),
        "client events rejected by openai-python's models:\n{report}"
    );
    report
}

fn client_types(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["type"].as_str().unwrap().to_string()
        })
        .collect()
}

fn bridge_config(ai: AiSettings, ports: std::ops::RangeInclusive<u16>) -> BridgeConfig {
    BridgeConfig {
        sip_listen: vec!["127.0.0.1:0".parse().unwrap()],
        admin_listen: None,
        sip_t1: Duration::from_millis(10),
        session_expires: 0,
        rtp_ports: ports,
        ai: Some(ai),
        ..BridgeConfig::default()
    }
}

/// A TCP (optionally TLS-terminating) relay in front of the simulator that can cut every
/// connection at once, like a dying network path: no WebSocket close frame.
struct Relay {
    addr: SocketAddr,
    kill: watch::Sender<u64>,
    accepted: Arc<AtomicUsize>,
    /// Connections arriving before this instant are closed at once (the path is still down).
    down_until: Arc<std::sync::Mutex<Option<tokio::time::Instant>>>,
}

impl Relay {
    async fn start(upstream: SocketAddr, tls: Option<tokio_rustls::TlsAcceptor>) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (kill, kill_rx) = watch::channel(0u64);
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let down_until = Arc::new(std::sync::Mutex::new(None));
        let down = down_until.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let refused = down
                    .lock()
                    .unwrap()
                    .is_some_and(|t| tokio::time::Instant::now() < t);
                if refused {
                    drop(client);
                    continue;
                }
                count.fetch_add(1, Ordering::SeqCst);
                let mut kill_rx = kill_rx.clone();
                kill_rx.mark_unchanged();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let Ok(mut up) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    match tls {
                        Some(acceptor) => {
                            let Ok(mut client) = acceptor.accept(client).await else {
                                return;
                            };
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut client, &mut up) => {}
                                _ = kill_rx.changed() => {}
                            }
                        }
                        None => {
                            let mut client = client;
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut client, &mut up) => {}
                                _ = kill_rx.changed() => {}
                            }
                        }
                    }
                });
            }
        });
        Relay {
            addr,
            kill,
            accepted,
            down_until,
        }
    }

    /// Cut every connection and refuse new ones for `down`.
    fn cut_all(&self, down: Duration) {
        *self.down_until.lock().unwrap() = Some(tokio::time::Instant::now() + down);
        self.kill.send_modify(|n| *n += 1);
    }
}

fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer> =
        CertificateDer::pem_file_iter(format!("{TLS_DIR}/localhost.pem"))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_file(format!("{TLS_DIR}/localhost.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_speaks_and_hears_the_simulated_agent_and_every_client_event_validates() {
    let sim = realtime_sim::Simulator::bind("127.0.0.1:0").await.unwrap();
    let log = temp_path("events-basic.jsonl");
    let _ = std::fs::remove_file(&log);
    let mut ai = AiSettings::new(sim.url(), "You are a test agent.").unwrap();
    ai.event_log = Some(Arc::new(bridge::ai::EventLog::open(&log).unwrap()));
    let counters = ai.counters.clone();
    let bridge = Bridge::start(bridge_config(ai, 33000..=33499))
        .await
        .unwrap();
    let mut caller = Caller::dial(bridge.sip_addrs[0], "ai").await;
    // 1 s of "speech", then up to 5 s of silence while we listen for the answer.
    assert!(
        caller.speak_and_hear(50, 300).await,
        "the caller heard the agent"
    );
    caller.hang_up().await;
    let stats = counters.snapshot();
    assert_eq!(stats.sessions_opened, 1);
    assert!(stats.audio_frames_sent >= 50, "{stats:?}");
    assert_eq!(stats.audio_frames_dropped, 0, "{stats:?}");
    assert_eq!(stats.server_errors, 0, "{stats:?}");
    let types = client_types(&log);
    assert_eq!(types[0], "session.update", "full config first: {types:?}");
    // 40 ms per append (two frames): at least 25 for the second of speech.
    let appends = types
        .iter()
        .filter(|t| *t == "input_audio_buffer.append")
        .count();
    assert!(appends >= 25, "{appends} appends");
    assert!(
        stats.audio_frames_sent >= 2 * appends as u64 - 1,
        "frames counted, not appends: {stats:?}"
    );
    validate_client_log(&log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_killed_mid_response_the_call_survives_and_the_session_is_restored() {
    let sim = realtime_sim::Simulator::bind("127.0.0.1:0").await.unwrap();
    let relay = Relay::start(sim.local_addr(), None).await;
    let log = temp_path("events-reconnect.jsonl");
    let _ = std::fs::remove_file(&log);
    let mut ai = AiSettings::new(
        format!("ws://{}/v1/realtime", relay.addr),
        "You are a test agent.",
    )
    .unwrap();
    ai.event_log = Some(Arc::new(bridge::ai::EventLog::open(&log).unwrap()));
    ai.reconnect_initial = Duration::from_millis(300);
    let counters = ai.counters.clone();
    let bridge = Bridge::start(bridge_config(ai, 33500..=33999))
        .await
        .unwrap();
    let mut caller = Caller::dial(bridge.sip_addrs[0], "ai-drop").await;
    // The agent greets first; cut the socket while that answer streams (the simulator sends
    // it over ~500 ms) and keep the path down for 3 s.
    let mut heard = false;
    for _ in 0..250 {
        if caller.step(false).await > 3000 {
            heard = true;
            break;
        }
    }
    assert!(heard, "the greeting started");
    relay.cut_all(Duration::from_secs(3));
    let before = client_types(&log).len();
    // While the socket is down the caller hears what had arrived, then the filler, then
    // silence; the call stays up. After the reconnect the restored agent speaks again.
    let (mut loud_down, mut quiet_run, mut longest_quiet_down, mut loud_up) = (0, 0, 0, 0);
    for _ in 0..450 {
        let loud = caller.step(false).await > 3000;
        if counters.snapshot().reconnects == 0 {
            if loud {
                loud_down += 1;
                quiet_run = 0;
            } else {
                quiet_run += 1;
                longest_quiet_down = longest_quiet_down.max(quiet_run);
            }
        } else if loud {
            loud_up += 1;
            if loud_up > 10 {
                break;
            }
        }
    }
    let stats = counters.snapshot();
    assert_eq!(stats.socket_losses, 1, "{stats:?}");
    assert_eq!(stats.reconnects, 1, "{stats:?}");
    assert!(stats.connect_failures >= 1, "retried while down: {stats:?}");
    assert_eq!(relay.accepted.load(Ordering::SeqCst), 2);
    // 1.75 s of filler speech (plus the rest of the greeting) is loud for well over 0.5 s.
    // Without the filler this is about 5 (the greeting's tail); with it about 50.
    assert!(
        loud_down > 30,
        "filler heard while down ({loud_down} loud ticks)"
    );
    assert!(
        longest_quiet_down > 50,
        "then silence ({longest_quiet_down} quiet ticks)"
    );
    assert!(
        loud_up > 10,
        "the restored agent spoke again ({loud_up} loud ticks)"
    );
    caller.assert_no_bye().await;
    // What the new session was given: the full config again, the conversation, a resume.
    let types = client_types(&log);
    let after: Vec<&str> = types[before..]
        .iter()
        .map(String::as_str)
        .filter(|t| *t != "input_audio_buffer.append")
        .collect();
    assert_eq!(after[0], "session.update", "{after:?}");
    assert_eq!(after[1], "conversation.item.create", "{after:?}");
    assert!(after.contains(&"response.create"), "{after:?}");
    let restored = std::fs::read_to_string(&log).unwrap();
    assert!(
        restored.contains("The connection to you dropped and was restored"),
        "restore note sent"
    );
    assert!(
        restored.contains("Hello,"),
        "the agent's earlier words were given back as text"
    );
    // Speaking again works on the new session.
    assert!(
        caller.speak_and_hear(50, 300).await,
        "a new turn on the restored session"
    );
    caller.hang_up().await;
    validate_client_log(&log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_through_tls_with_the_test_ca_and_refused_without_it() {
    let sim = realtime_sim::Simulator::bind("127.0.0.1:0").await.unwrap();
    let relay = Relay::start(sim.local_addr(), Some(tls_acceptor())).await;
    let url = format!("wss://localhost:{}/v1/realtime", relay.addr.port());

    // Trusting the test CA: the call talks over TLS.
    let mut ai = AiSettings::new(url.clone(), "You are a test agent.").unwrap();
    ai.tls = bridge::ai::tls_config(Some(Path::new(&format!("{TLS_DIR}/ca.pem")))).unwrap();
    ai.auth = Some(bridge::ai::Auth::Bearer("sk-test-not-a-real-key".into()));
    let counters = ai.counters.clone();
    let bridge = Bridge::start(bridge_config(ai, 34000..=34249))
        .await
        .unwrap();
    let mut caller = Caller::dial(bridge.sip_addrs[0], "ai-tls").await;
    assert!(
        caller.speak_and_hear(50, 300).await,
        "heard the agent over wss://"
    );
    caller.hang_up().await;
    assert_eq!(counters.snapshot().connect_failures, 0);

    // Only the public roots: the handshake fails, the call is still answered and stays up.
    let mut ai = AiSettings::new(url, "You are a test agent.").unwrap();
    ai.reconnect_initial = Duration::from_millis(50);
    ai.reconnect_max = Duration::from_millis(100);
    let counters = ai.counters.clone();
    let bridge = Bridge::start(bridge_config(ai, 34250..=34499))
        .await
        .unwrap();
    let mut caller = Caller::dial(bridge.sip_addrs[0], "ai-tls-bad").await;
    for _ in 0..25 {
        caller.step(false).await;
    }
    caller.assert_no_bye().await;
    let stats = counters.snapshot();
    assert!(stats.connect_failures >= 2, "{stats:?}");
    assert_eq!(stats.sessions_opened, 0, "{stats:?}");
    caller.hang_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_opens_while_the_call_is_still_ringing() {
    let sim = realtime_sim::Simulator::bind("127.0.0.1:0").await.unwrap();
    let ai = AiSettings::new(sim.url(), "You are a test agent.").unwrap();
    let counters = ai.counters.clone();
    let mut cfg = bridge_config(ai, 34500..=34599);
    cfg.answer_delay = Duration::from_millis(1500);
    let bridge = Bridge::start(cfg).await.unwrap();
    let server = bridge.sip_addrs[0];
    let sip = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut uac = Uac::new("ring", sip.local_addr().unwrap(), server);
    sip.send_to(&uac.invite(&[]), server).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let mut ringing = false;
    while !ringing {
        let (n, _) = timeout(Duration::from_secs(2), sip.recv_from(&mut buf))
            .await
            .expect("180 Ringing")
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(!text.starts_with("SIP/2.0 200"), "answered too early");
        ringing = text.starts_with("SIP/2.0 180");
    }
    // Still ringing (the 200 comes 1.5 s after the INVITE): the session is already open.
    let opened = timeout(Duration::from_secs(1), async {
        while counters.snapshot().sessions_opened == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(opened.is_ok(), "no Realtime session before the answer");
    assert_eq!(sim.connections_accepted(), 1);
    while let Ok(Ok((n, _))) = timeout(Duration::from_millis(1), sip.recv_from(&mut buf)).await {
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(
            !text.starts_with("SIP/2.0 200"),
            "answered before the check"
        );
    }
    // Then the call is answered and hung up normally.
    let (n, _) = loop {
        let got = timeout(Duration::from_secs(3), sip.recv_from(&mut buf))
            .await
            .expect("200 OK")
            .unwrap();
        if buf[..got.0].starts_with(b"SIP/2.0 200") {
            break got;
        }
    };
    uac.learn(&buf[..n]);
    sip.send_to(&uac.ack_2xx(), server).await.unwrap();
    sip.send_to(&uac.bye(), server).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g711_pass_through_talks_pcmu_to_the_model_and_the_caller_hears_its_tone() {
    let sim = realtime_sim::Simulator::bind("127.0.0.1:0").await.unwrap();
    let log = temp_path("events-g711.jsonl");
    let _ = std::fs::remove_file(&log);
    let mut ai = AiSettings::new(sim.url(), "You are a test agent.").unwrap();
    ai.event_log = Some(Arc::new(bridge::ai::EventLog::open(&log).unwrap()));
    ai.g711_passthrough = true;
    ai.greet = false;
    let counters = ai.counters.clone();
    let bridge = Bridge::start(bridge_config(ai, 33500..=33599))
        .await
        .unwrap();
    // A PCMU call: the session must say audio/pcmu both ways.
    let mut caller = Caller::dial(bridge.sip_addrs[0], "ai").await;
    caller.record = true;
    assert!(
        caller.speak_and_hear(50, 300).await,
        "the caller heard the agent"
    );
    for _ in 0..50 {
        caller.step(false).await;
    }
    let heard = std::mem::take(&mut caller.heard);
    caller.hang_up().await;
    let stats = counters.snapshot();
    assert_eq!(stats.server_errors, 0, "{stats:?}");
    let first: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(first["type"], "session.update");
    assert_eq!(
        first["session"]["audio"]["input"]["format"]["type"],
        "audio/pcmu"
    );
    assert_eq!(
        first["session"]["audio"]["output"]["format"]["type"],
        "audio/pcmu"
    );
    // The simulator answered with its 440 Hz tone in u-law; decoded and brought back to
    // 24 kHz, the caller hears that tone (raw u-law bytes taken as PCM would be noise).
    // Judged in 50 ms blocks (22 whole periods): the pattern is 250 ms on, 50 ms off, and a
    // block that takes in an edge of the gap is not clean. Where the gaps fall against the
    // blocks depends on when the recording started; with 50 ms blocks at least 4 of every 6
    // loud ones are clean wherever that is (100 ms blocks: 1 of 3 at worst, as a loaded CI
    // machine found).
    let shares: Vec<f64> = heard
        .chunks_exact(1200)
        .filter(|b| b.iter().map(|&x| i64::from(x).abs()).max().unwrap_or(0) > 3000)
        .map(|b| common::tone_share(b, 440.0))
        .collect();
    let clean = shares.iter().filter(|&&r| r > 0.8).count();
    assert!(
        clean >= 8 && clean * 2 >= shares.len(),
        "440 Hz blocks heard: {clean} of {} ({shares:?})",
        shares.len()
    );
    validate_client_log(&log);
}
