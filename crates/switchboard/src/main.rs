//! `switchboard`: parse the command line, build the config, run the bridge.

mod settings;

use bridge::{Bridge, BridgeConfig};
use clap::{Parser, Subcommand, ValueEnum};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// SIP contact-center bridge: answers trunk calls and hands callers between AI agents.
#[derive(Parser)]
#[command(name = "switchboard", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the bridge (SIP on UDP+TCP, and TLS when given a certificate; admin HTTP).
    Run(Box<RunArgs>),
    /// Run the local Realtime API simulator alone (WebSocket, GA protocol), for tests and demos.
    Sim(SimArgs),
}

#[derive(clap::Args)]
struct SimArgs {
    /// Address to serve ws://ADDR/v1/realtime on.
    #[arg(long, env = "SWITCHBOARD_SIM_LISTEN", default_value = "127.0.0.1:8765")]
    listen: SocketAddr,
    /// Scenario file (TOML, fixtures/sim/README.md): what each agent says and which tools it
    /// calls. Default: a 1 s tone answer to every turn.
    #[arg(long, env = "SWITCHBOARD_SIM_SCENARIO")]
    scenario: Option<PathBuf>,
    /// Append every server event sent (JSONL, audio elided) to this file.
    #[arg(long, env = "SWITCHBOARD_SIM_EVENT_LOG")]
    event_log: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

/// `--media-priority`: a nice value, or real-time SCHED_RR at a priority.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MediaPriority {
    Nice(i32),
    Realtime(u8),
}

fn parse_media_priority(s: &str) -> Result<MediaPriority, String> {
    let bad = || format!("{s:?}: a nice value -20..19, `rt` or `rt:N` with N 1..99");
    match s.strip_prefix("rt") {
        Some("") => Ok(MediaPriority::Realtime(10)),
        Some(rest) => match rest.strip_prefix(':').map(str::parse::<u8>) {
            Some(Ok(n)) if (1..=99).contains(&n) => Ok(MediaPriority::Realtime(n)),
            _ => Err(bad()),
        },
        None => match s.parse::<i32>() {
            Ok(n) if (-20..=19).contains(&n) => Ok(MediaPriority::Nice(n)),
            _ => Err(bad()),
        },
    }
}

/// `--media-sends`: how the media threads hand RTP to the kernel.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum MediaSends {
    /// Each step's packets in one io_uring submission where the kernel allows it (else as
    /// `sendto`).
    Batched,
    /// One `sendto` system call per packet.
    Sendto,
}

fn parse_idle_append_ms(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(ms) if (40..=1000).contains(&ms) && ms % 20 == 0 => Ok(ms),
        _ => Err(format!("{s:?}: milliseconds 40..1000, a multiple of 20")),
    }
}

/// `--realtime-audio`: what the Realtime socket carries.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RealtimeAudio {
    /// 24 kHz 16-bit PCM (`audio/pcm`) for every call.
    Pcm,
    /// G.711 pass-through for PCMU/PCMA calls (`audio/pcmu`/`audio/pcma`).
    G711,
}

#[derive(clap::Args)]
struct RunArgs {
    /// TOML config file; flags and SWITCHBOARD_* variables override it.
    #[arg(long, env = "SWITCHBOARD_CONFIG")]
    config: Option<PathBuf>,
    /// SIP listen address (UDP and TCP); repeat for several (IPv4 and IPv6). Default 127.0.0.1:5060.
    #[arg(
        long = "sip-listen",
        env = "SWITCHBOARD_SIP_LISTEN",
        value_delimiter = ','
    )]
    sip_listen: Vec<SocketAddr>,
    /// SIP over TLS: the certificate chain (PEM, leaf first). With --tls-key, the bridge also
    /// listens for TLS, on port 5061 next to each --sip-listen address unless --tls-listen.
    #[arg(long, env = "SWITCHBOARD_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// SIP over TLS: the certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1; never logged).
    #[arg(long, env = "SWITCHBOARD_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// SIP over TLS listen address; repeat for several. Default: port 5061 on each SIP listen
    /// address's IP.
    #[arg(
        long = "tls-listen",
        env = "SWITCHBOARD_TLS_LISTEN",
        value_delimiter = ','
    )]
    tls_listen: Vec<SocketAddr>,
    /// Address to advertise in Via, Contact and SDP (behind NAT).
    #[arg(long, env = "SWITCHBOARD_PUBLIC_IP")]
    public_ip: Option<IpAddr>,
    /// Admin HTTP address (/healthz, /readyz, /stats). Default 127.0.0.1:8080.
    #[arg(long, env = "SWITCHBOARD_ADMIN_LISTEN")]
    admin_listen: Option<SocketAddr>,
    /// Concurrent calls before new INVITEs get 503 (0 = no limit).
    #[arg(long, env = "SWITCHBOARD_MAX_CALLS")]
    max_calls: Option<usize>,
    /// Hang up (BYE) calls after this many seconds (0 = never).
    #[arg(long, env = "SWITCHBOARD_MAX_CALL_DURATION")]
    max_call_duration: Option<u64>,
    /// Ring (180) this many milliseconds before answering.
    #[arg(long, env = "SWITCHBOARD_ANSWER_DELAY_MS")]
    answer_delay_ms: Option<u64>,
    /// SIP timer T1 in milliseconds (RFC 3261; default 500). T2 = 8*T1, T4 = 10*T1.
    #[arg(long, env = "SWITCHBOARD_SIP_T1_MS", value_parser = clap::value_parser!(u64).range(10..=10_000))]
    sip_t1_ms: Option<u64>,
    /// RTP port range LO-HI (even ports for RTP, +1 for RTCP).
    #[arg(long, env = "SWITCHBOARD_RTP_PORTS")]
    rtp_ports: Option<String>,
    /// Media threads pacing every call's RTP (0: one per core).
    #[arg(long, env = "SWITCHBOARD_MEDIA_THREADS", value_parser = clap::value_parser!(u16).range(0..=256))]
    media_threads: Option<u16>,
    /// How often the media threads wake, in milliseconds (default 2): a packet leaves at most
    /// this late; longer steps cost less CPU.
    #[arg(long, env = "SWITCHBOARD_MEDIA_STEP_MS", value_parser = clap::value_parser!(u64).range(1..=10))]
    media_step_ms: Option<u64>,
    /// Media thread priority: a nice value -20..19 (default -10: RTP before signalling and
    /// Realtime work when the cores are busy; 0 leaves them alone), or `rt` / `rt:N` for
    /// real-time SCHED_RR at priority N (default 10, 1..99), as FreeSWITCH's -rp. Both need
    /// CAP_SYS_NICE; refused, the log says so and they fall back (rt: to nice -10).
    #[arg(long, env = "SWITCHBOARD_MEDIA_PRIORITY", allow_hyphen_values = true, value_parser = parse_media_priority)]
    media_priority: Option<MediaPriority>,
    /// How the media threads send RTP: `batched` (default: a step's packets, every call's, in
    /// one io_uring submission; where io_uring is refused, as in Docker's default seccomp
    /// profile, the log says so and they use `sendto`) or `sendto` (one system call each).
    #[arg(
        long,
        env = "SWITCHBOARD_MEDIA_SENDS",
        value_enum,
        default_value = "batched"
    )]
    media_sends: MediaSends,
    /// Session-Expires to ask of callers that support RFC 4028 timers (0 = off).
    #[arg(long, env = "SWITCHBOARD_SESSION_EXPIRES")]
    session_expires: Option<u32>,
    /// Seconds active calls may continue after SIGTERM before they get a BYE.
    #[arg(long, env = "SWITCHBOARD_DRAIN_TIMEOUT")]
    drain_timeout: Option<u64>,
    /// Source network (CIDR) allowed to send SIP; repeat for several. Default: loopback only.
    #[arg(long = "allow", env = "SWITCHBOARD_ALLOW", value_delimiter = ',')]
    allow: Vec<String>,
    /// What other sources get: `forbidden` (403) or `drop` (no answer).
    #[arg(long, env = "SWITCHBOARD_DENY_ACTION")]
    deny_action: Option<String>,
    /// Echo mode: every answered call hears its own audio back (a test line).
    #[arg(long, env = "SWITCHBOARD_ECHO")]
    echo: bool,
    /// Seconds without RTP (while not on hold) before the bridge hangs up; 0 = never.
    #[arg(long, env = "SWITCHBOARD_MEDIA_TIMEOUT")]
    media_timeout: Option<u64>,
    /// SRTP with SDES keys (RFC 4568): `off` (plain RTP only; default), `optional` (RTP/SAVP
    /// offers get SRTP, RTP/AVP offers plain RTP) or `required` (plain offers get 488).
    #[arg(long, env = "SWITCHBOARD_SRTP")]
    srtp: Option<String>,
    /// Realtime WebSocket URL (ws:// or wss://). Default: wss://api.openai.com/v1/realtime when
    /// OPENAI_API_KEY is set, else the built-in simulator started in-process. Azure OpenAI
    /// (AZURE_OPENAI_API_KEY): wss://RESOURCE.openai.azure.com/openai/v1/realtime.
    #[arg(long, env = "SWITCHBOARD_REALTIME_URL")]
    realtime_url: Option<String>,
    /// Model (OpenAI) or deployment name (Azure), sent as ?model= unless the URL names one.
    #[arg(
        long,
        env = "SWITCHBOARD_REALTIME_MODEL",
        default_value = "gpt-realtime"
    )]
    realtime_model: String,
    /// Extra CA certificates (PEM) trusted for wss:// besides the built-in Mozilla roots.
    #[arg(long, env = "SWITCHBOARD_REALTIME_CA_FILE")]
    realtime_ca_file: Option<PathBuf>,
    /// Realtime prices for the call records' cost, USD per million tokens (defaults:
    /// gpt-realtime's list prices).
    #[arg(
        long,
        env = "SWITCHBOARD_REALTIME_PRICES",
        default_value = "text_in=4,audio_in=32,text_out=16,audio_out=64"
    )]
    realtime_prices: String,
    /// Audio on the Realtime socket: `pcm` (24 kHz PCM for every call) or `g711` (PCMU/PCMA
    /// calls send and receive `audio/pcmu`/`audio/pcma`, a sixth of the bytes; Opus calls
    /// stay on PCM).
    #[arg(
        long,
        env = "SWITCHBOARD_REALTIME_AUDIO",
        value_enum,
        default_value = "pcm"
    )]
    realtime_audio: RealtimeAudio,
    /// Caller audio between turns (quiet for 1 s and no speech on the server's side) goes in
    /// `input_audio_buffer.append`s of this many milliseconds (40..1000, a multiple of 20);
    /// the first sound, and the server's `speech_started`, go back to 40 ms at once. 40 keeps
    /// every append at 40 ms.
    #[arg(long, env = "SWITCHBOARD_IDLE_APPEND_MS", default_value = "100", value_parser = parse_idle_append_ms)]
    idle_append_ms: u32,
    /// Append every Realtime client event sent (JSONL, audio elided) to this file.
    #[arg(long, env = "SWITCHBOARD_REALTIME_EVENT_LOG")]
    realtime_event_log: Option<PathBuf>,
    /// Built-in simulator (no API key): scenario file, e.g. fixtures/sim/demo.toml.
    #[arg(long, env = "SWITCHBOARD_SIM_SCENARIO")]
    sim_scenario: Option<PathBuf>,
    /// Built-in simulator: append every server event it sends (JSONL, audio elided) here.
    #[arg(long, env = "SWITCHBOARD_SIM_EVENT_LOG")]
    sim_event_log: Option<PathBuf>,
    /// The agent waits for the caller to speak first instead of greeting.
    #[arg(long, env = "SWITCHBOARD_NO_GREETING")]
    no_greeting: bool,
    /// Agents file (TOML; crates/router/README.md). Default: the embedded demo
    /// (fixtures/config/agents.toml: router -> support -> sales).
    #[arg(long, env = "SWITCHBOARD_AGENTS")]
    agents: Option<PathBuf>,
    /// One plain agent with these instructions and no tools or handoffs, instead of an agents
    /// file.
    #[arg(long, env = "SWITCHBOARD_INSTRUCTIONS", conflicts_with = "agents")]
    instructions: Option<String>,
    /// A caller asking about the same intent again within this many days is a repeat inquiry.
    #[arg(long, env = "SWITCHBOARD_REPEAT_WINDOW_DAYS", default_value_t = 7)]
    repeat_window_days: u64,
    /// Where call records and cross-call memory live: `sqlite://PATH` (created if missing;
    /// relative to the working directory), `postgres://USER:PASS@HOST:PORT/DB` (shared by the
    /// nodes of a cluster; must be reachable at start) or `memory` (nothing kept across
    /// restarts). Migrations run at start.
    #[arg(long, env = "SWITCHBOARD_DATABASE", default_value = bridge::store::DEFAULT_DATABASE)]
    database: String,
    /// Log format.
    #[arg(
        long,
        env = "SWITCHBOARD_LOG_FORMAT",
        value_enum,
        default_value = "human"
    )]
    log_format: LogFormat,
}

fn build_config(args: &RunArgs) -> Result<BridgeConfig, settings::ConfigError> {
    let mut cfg = BridgeConfig::default();
    if let Some(path) = &args.config {
        settings::load_file(&mut cfg, path)?;
    }
    if !args.sip_listen.is_empty() {
        cfg.sip_listen = args.sip_listen.clone();
    }
    if args.public_ip.is_some() {
        cfg.public_ip = args.public_ip;
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        // The flags replace the file's certificate; its tls_listen stays unless given too.
        let listen = cfg.tls.take().map(|t| t.listen).unwrap_or_default();
        let tls = bridge::tls::SipTls::load(cert, key, listen).map_err(|source| {
            settings::ConfigError::TlsFlag {
                field: if source.is_key() {
                    "--tls-key"
                } else {
                    "--tls-cert"
                },
                source,
            }
        })?;
        cfg.tls = Some(tls);
    }
    if !args.tls_listen.is_empty() {
        match &mut cfg.tls {
            Some(tls) => tls.listen = args.tls_listen.clone(),
            None => {
                return Err(settings::ConfigError::Flag {
                    field: "--tls-listen",
                    message: "needs --tls-cert and --tls-key (or sip.tls_cert and sip.tls_key in the config file)".into(),
                })
            }
        }
    }
    if args.admin_listen.is_some() {
        cfg.admin_listen = args.admin_listen;
    }
    if let Some(n) = args.max_calls {
        cfg.max_calls = n;
    }
    if let Some(s) = args.max_call_duration {
        cfg.max_call_duration = (s > 0).then(|| Duration::from_secs(s));
    }
    if let Some(ms) = args.answer_delay_ms {
        cfg.answer_delay = Duration::from_millis(ms);
    }
    if let Some(ms) = args.sip_t1_ms {
        cfg.sip_t1 = Duration::from_millis(ms);
    }
    if let Some(p) = &args.srtp {
        cfg.srtp = settings::parse_srtp(p).map_err(|message| settings::ConfigError::Flag {
            field: "--srtp",
            message,
        })?;
    }
    if let Some(r) = &args.rtp_ports {
        cfg.rtp_ports =
            settings::parse_port_range(r).map_err(|message| settings::ConfigError::Flag {
                field: "--rtp-ports",
                message,
            })?;
    }
    if let Some(n) = args.media_threads {
        bridge::media::engine::set_threads(usize::from(n));
    }
    if let Some(ms) = args.media_step_ms {
        bridge::media::engine::set_step(Duration::from_millis(ms));
    }
    bridge::media::send::set_mode(match args.media_sends {
        MediaSends::Batched => bridge::media::send::Mode::Batched,
        MediaSends::Sendto => bridge::media::send::Mode::Sendto,
    });
    match args.media_priority {
        Some(MediaPriority::Nice(nice)) => bridge::media::engine::set_nice(nice),
        Some(MediaPriority::Realtime(p)) => bridge::media::engine::set_realtime(p),
        None => {}
    }
    if let Some(se) = args.session_expires {
        if se != 0 && se < 90 {
            return Err(settings::ConfigError::Flag {
                field: "--session-expires",
                message: "0 (off) or at least 90 seconds (RFC 4028)".into(),
            });
        }
        cfg.session_expires = se;
    }
    if args.echo {
        cfg.echo = true;
    }
    if let Some(s) = args.media_timeout {
        cfg.media_timeout = settings::media_timeout(s);
    }
    if !args.allow.is_empty() {
        cfg.access.allow =
            settings::parse_allow(&args.allow).map_err(|message| settings::ConfigError::Flag {
                field: "--allow",
                message,
            })?;
    }
    if let Some(d) = &args.deny_action {
        cfg.access.on_deny =
            settings::parse_deny_action(d).map_err(|message| settings::ConfigError::Flag {
                field: "--deny-action",
                message,
            })?;
    }
    if let Some(s) = args.drain_timeout {
        cfg.drain_timeout = Duration::from_secs(s);
    }
    Ok(cfg)
}

/// Targets that log credentials at TRACE and are capped at DEBUG whatever `RUST_LOG` says:
/// tungstenite's handshake prints the whole upgrade request, `Authorization: Bearer` (or
/// Azure's `api-key`) included (sip-test/run-secrets found it).
const CAPPED_TARGETS: &[&str] = &["tungstenite::handshake=debug"];

fn init_logging(format: LogFormat) {
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    for cap in CAPPED_TARGETS {
        if let Ok(d) = cap.parse() {
            filter = filter.add_directive(d);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run(args: RunArgs) -> ExitCode {
    let cfg = match build_config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("switchboard: config error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut cfg = cfg;
    // The records store (`--database`), flushed at exit.
    let mut memory: Option<std::sync::Arc<dyn bridge::memory::MemoryStore>> = None;
    // Offline default: no API key and no URL -> the built-in simulator on loopback.
    let mut _sim = None;
    if !cfg.echo {
        let (url, auth) = match realtime_target(&args) {
            Ok(Some(t)) => t,
            Ok(None) => {
                match start_simulator_thread(args.sim_scenario.clone(), args.sim_event_log.clone())
                {
                    Ok((url, thread)) => {
                        tracing::info!(%url, "no OPENAI_API_KEY: calls talk to the built-in Realtime simulator");
                        _sim = Some(thread);
                        (url, None)
                    }
                    Err(e) => {
                        eprintln!("switchboard: built-in simulator: {e}");
                        return ExitCode::from(2);
                    }
                }
            }
            Err(msg) => {
                eprintln!("switchboard: config error: {msg}");
                return ExitCode::from(2);
            }
        };
        let tls = match bridge::ai::tls_config(args.realtime_ca_file.as_deref()) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("switchboard: config error: --realtime-ca-file: {e}");
                return ExitCode::from(2);
            }
        };
        let event_log = match &args.realtime_event_log {
            Some(path) => match bridge::ai::EventLog::open(path) {
                Ok(l) => Some(std::sync::Arc::new(l)),
                Err(e) => {
                    eprintln!(
                        "switchboard: config error: --realtime-event-log {}: {e}",
                        path.display()
                    );
                    return ExitCode::from(2);
                }
            },
            None => None,
        };
        let plain = args.instructions.clone().unwrap_or_default();
        let mut ai = match bridge::ai::AiSettings::new(url, plain) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("switchboard: {e}");
                return ExitCode::from(1);
            }
        };
        ai.model = args.realtime_model.clone();
        ai.auth = auth;
        ai.tls = tls;
        ai.event_log = event_log;
        ai.greet = !args.no_greeting;
        ai.g711_passthrough = args.realtime_audio == RealtimeAudio::G711;
        ai.idle_append_frames = args.idle_append_ms / 20;
        if args.instructions.is_none() {
            let file = match &args.agents {
                Some(path) => router::AgentsFile::load(path),
                None => router::AgentsFile::embedded_default(),
            };
            let file = match file {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("switchboard: config error: {e}");
                    return ExitCode::from(2);
                }
            };
            tracing::info!(file = %file.source, entry = %file.entry, voice_mode = ?file.voice_mode, agents = ?file.agents.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), "agents");
            let window = Duration::from_secs(args.repeat_window_days.saturating_mul(86_400));
            let store = match bridge::store::open(&args.database).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("switchboard: {e}");
                    return ExitCode::from(1);
                }
            };
            tracing::info!(database = %bridge::store::mask_password(&args.database), "records");
            memory = Some(store.clone());
            match bridge::handoffs::agents_runtime_with(file, ai.tls.clone(), window, store) {
                Ok((agents, records)) => {
                    match bridge::memory::Prices::parse(&args.realtime_prices) {
                        Ok(p) => records.set_prices(p),
                        Err(e) => {
                            eprintln!("switchboard: config error: --realtime-prices: {e}");
                            return ExitCode::from(2);
                        }
                    }
                    ai.agents = Some(agents);
                    cfg.records = Some(records);
                }
                Err(e) => {
                    eprintln!("switchboard: agents: {e}");
                    return ExitCode::from(1);
                }
            }
        }
        tracing::info!(url = %ai.url, model = %ai.model, auth = ?ai.auth.as_ref().map(|_| "set"), "Realtime");
        cfg.ai = Some(ai);
    }
    // What a SIGHUP reload keeps: the tools and the records (memory, metrics, callbacks).
    let reload_base = cfg.ai.as_ref().and_then(|a| a.agents.clone());
    // At exit: every call's record must reach the store before it is flushed.
    let records = cfg.records.clone();
    let bridge = match Bridge::start(cfg).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("switchboard: {e}");
            return ExitCode::from(1);
        }
    };
    tracing::info!(sip = ?bridge.sip_addrs, tls = ?bridge.tls_addrs, admin = ?bridge.admin_addr, "switchboard running; SIGINT/SIGTERM drains");
    run_until_stopped(&bridge, &args, reload_base).await;
    tracing::info!("signal received: draining");
    bridge.drain();
    bridge.join().await;
    if let Some(r) = records {
        r.settle(Duration::from_secs(10)).await;
    }
    if let Some(m) = memory {
        if !m.flush(Duration::from_secs(10)).await {
            tracing::error!("call records still queued at exit (database down?)");
        }
    }
    ExitCode::SUCCESS
}

/// Which Realtime endpoint and credential: `Ok(None)` means the built-in simulator.
fn realtime_target(args: &RunArgs) -> Result<Option<(String, Option<bridge::ai::Auth>)>, String> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let openai = env("OPENAI_API_KEY");
    let azure = env("AZURE_OPENAI_API_KEY");
    let auth = match (openai, azure) {
        (_, Some(k)) => Some(bridge::ai::Auth::AzureApiKey(k)),
        (Some(k), None) => Some(bridge::ai::Auth::Bearer(k)),
        (None, None) => None,
    };
    let url = match (&args.realtime_url, &auth) {
        (Some(u), _) => u.clone(),
        (None, Some(bridge::ai::Auth::AzureApiKey(_))) => {
            return Err("AZURE_OPENAI_API_KEY is set: give --realtime-url wss://RESOURCE.openai.azure.com/openai/v1/realtime and --realtime-model DEPLOYMENT".into())
        }
        (None, Some(_)) => "wss://api.openai.com/v1/realtime".into(),
        (None, None) => return Ok(None),
    };
    if !(url.starts_with("ws://") || url.starts_with("wss://")) {
        return Err(format!(
            "--realtime-url: {url:?} is not a ws:// or wss:// URL"
        ));
    }
    Ok(Some((url, auth)))
}

/// Serve until SIGTERM/SIGINT; on SIGHUP reload the agents file (new calls use it).
async fn run_until_stopped(bridge: &Bridge, args: &RunArgs, base: Option<bridge::ai::Agents>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            wait_for_signal().await;
            return;
        };
        let stop = wait_for_signal();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = hup.recv() => reload_agents(bridge, args, base.as_ref()),
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (bridge, args, base);
        wait_for_signal().await;
    }
}

fn reload_agents(bridge: &Bridge, args: &RunArgs, base: Option<&bridge::ai::Agents>) {
    let (Some(path), Some(base)) = (&args.agents, base) else {
        tracing::warn!("SIGHUP: no --agents file to reload (the embedded demo cannot change)");
        return;
    };
    match router::AgentsFile::load(path) {
        Ok(file) => {
            let agents = bridge::ai::Agents {
                slots: std::sync::Arc::new(router::SlotTable::new(&file)),
                file: std::sync::Arc::new(file),
                tools: base.tools.clone(),
                hooks: base.hooks.clone(),
            };
            if bridge.reload_agents(agents) {
                tracing::info!(path = %path.display(), "SIGHUP: agents file reloaded");
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "SIGHUP: agents file rejected; calls keep the previous one")
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The simulator with an optional scenario (errors name file, line and field) and event log.
/// The built-in simulator on its own thread and runtime: rendering an agent's speech is CPU
/// work that must never hold up a worker of the bridge's runtime, where the calls' 20 ms media
/// ticks run (a stall there drops an RTP packet). Returns its URL and the thread, which serves
/// until the process exits.
fn start_simulator_thread(
    scenario: Option<PathBuf>,
    event_log: Option<PathBuf>,
) -> Result<(String, std::thread::JoinHandle<()>), String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("realtime-sim".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(format!("runtime: {e}")));
                    return;
                }
            };
            rt.block_on(async move {
                let listen = SocketAddr::from(([127, 0, 0, 1], 0));
                match start_simulator(listen, scenario.as_deref(), event_log).await {
                    Ok(sim) => {
                        let _ = tx.send(Ok(sim.url()));
                        // Serve until the process exits.
                        std::future::pending::<()>().await;
                        drop(sim);
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            });
        })
        .map_err(|e| format!("thread: {e}"))?;
    let url = rx
        .recv()
        .map_err(|_| "the simulator thread ended".to_string())??;
    Ok((url, thread))
}

async fn start_simulator(
    listen: SocketAddr,
    scenario: Option<&std::path::Path>,
    event_log: Option<PathBuf>,
) -> Result<realtime_sim::Simulator, String> {
    let scenario = match scenario {
        Some(p) => {
            let s = realtime_sim::Scenario::load(p).map_err(|e| e.to_string())?;
            tracing::info!(path = %p.display(), agents = ?s.agent_names().collect::<Vec<_>>(), "simulator scenario");
            Some(s)
        }
        None => None,
    };
    let options = realtime_sim::SimOptions {
        scenario,
        event_log,
    };
    realtime_sim::Simulator::bind_with(listen, options)
        .await
        .map_err(|e| e.to_string())
}

async fn sim(args: SimArgs) -> ExitCode {
    let sim = match start_simulator(args.listen, args.scenario.as_deref(), args.event_log).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("switchboard: simulator: {e}");
            return ExitCode::from(2);
        }
    };
    tracing::info!(url = %sim.url(), "Realtime simulator listening");
    wait_for_signal().await;
    sim.shutdown().await;
    ExitCode::SUCCESS
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("switchboard: cannot start runtime: {e}");
            None
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => {
            init_logging(args.log_format);
            runtime().map_or(ExitCode::from(1), |rt| rt.block_on(run(*args)))
        }
        Command::Sim(args) => {
            init_logging(LogFormat::Human);
            runtime().map_or(ExitCode::from(1), |rt| rt.block_on(sim(args)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_media_priority, MediaPriority};

    #[test]
    fn idle_append_values() {
        use super::parse_idle_append_ms;
        assert_eq!(parse_idle_append_ms("100"), Ok(100));
        assert_eq!(parse_idle_append_ms("40"), Ok(40));
        assert_eq!(parse_idle_append_ms("1000"), Ok(1000));
        for bad in ["20", "50", "1020", "", "x", "-40"] {
            assert!(parse_idle_append_ms(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn media_priority_values() {
        assert_eq!(parse_media_priority("-10"), Ok(MediaPriority::Nice(-10)));
        assert_eq!(parse_media_priority("0"), Ok(MediaPriority::Nice(0)));
        assert_eq!(parse_media_priority("19"), Ok(MediaPriority::Nice(19)));
        assert_eq!(parse_media_priority("rt"), Ok(MediaPriority::Realtime(10)));
        assert_eq!(parse_media_priority("rt:1"), Ok(MediaPriority::Realtime(1)));
        assert_eq!(
            parse_media_priority("rt:99"),
            Ok(MediaPriority::Realtime(99))
        );
        for bad in ["rt:0", "rt:100", "rt:", "rt5", "-21", "20", "", "x"] {
            assert!(parse_media_priority(bad).is_err(), "{bad}");
        }
    }
}
