//! Handoff overhead benchmark (issue 6): many seed calls router -> support -> sales through a
//! real `Bridge` (SIP and RTP over loopback, a scripted UAC per call) to the Realtime simulator
//! answering at once (`fixtures/sim/bench-handoff.toml`: one-word tone turns, 1000x real time).
//! Per handoff pair and overall it prints count, p50, p90, p99 and max of the call summary's
//!
//! - `first_delta_ms`: trigger (the model's `response.function_call_arguments.done` for
//!   `handoff_to_X`) -> the new agent's first audio delta received by the bridge. With the
//!   simulator answering at once this is the in-bridge handoff overhead (goal: voice mode
//!   `same` p99 <= 10 ms, `hybrid` p99 <= 300 ms); it includes the simulator's answer time
//!   (its first chunk waits one tokio timer tick, ~1 ms) and has 1 ms resolution (truncated).
//! - `handoff_ms`: trigger -> the new agent's first audio frame sent on RTP: also the playout
//!   of the narration still queued ahead of it (the seed's "handoff time" metric).
//!
//! plus calls ok / failed / timed out and the process CPU time (bridge, simulator and callers
//! together: an upper bound of what the handoffs cost). Each call: wait for the greeting,
//! speak 0.4 s of noise (the simulator's energy VAD), wait for the handoff to support and its
//! acknowledgment, speak again, wait for the handoff to sales and its first words, BYE.
//! Bounded: a timeout per call and a deadline for the run; failures are counted, never panic.
//! Run by `sip-test/bench-handoff` (voice modes `same` and `hybrid`).
//!
//! Usage: `bench_handoff [--calls N] [--concurrency C] [--agents FILE] [--scenario FILE]
//! [--speedup F] [--call-timeout SECS] [--deadline SECS]`

use bridge::ai::{Agents, AiSettings, CallHooks, ToolCall, ToolFuture, ToolRunner};
use bridge::{Bridge, BridgeConfig};
use codec::g711;
use router::{AgentsFile, CallSummary, HandoffEvent, SlotTable, VoiceMode};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use testkit::uac::Uac;
use tokio::net::UdpSocket;
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout, timeout_at, MissedTickBehavior};

const DEFAULT_SCENARIO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../fixtures/sim/bench-handoff.toml"
);

/// 0.4 s of caller speech per turn.
const SPEAK_FRAMES: usize = 20;
/// The agent has finished speaking after this much silence (the tone pattern pauses 50 ms
/// between words).
const QUIET_FRAMES: usize = 15;
/// Peak of a decoded frame above which the agent is speaking (the simulator's tone is ~8000).
const LOUD: i32 = 3000;
/// How long to wait for the call summary after the BYE.
const SUMMARY_WAIT: Duration = Duration::from_secs(3);

const USAGE: &str = "usage: bench_handoff [--calls N] [--concurrency C] [--agents FILE] \
[--scenario FILE] [--speedup F] [--call-timeout SECS] [--deadline SECS]
  --calls N           calls to place (default 200)
  --concurrency C     calls at a time (default 10)
  --agents FILE       agents file (default: the embedded demo, fixtures/config/agents.toml)
  --scenario FILE     simulator scenario (default fixtures/sim/bench-handoff.toml)
  --speedup F         override the scenario's audio speedup (0.1..=10000)
  --call-timeout SECS one call's bound (default 15)
  --deadline SECS     the whole run's bound (default 600)";

struct Args {
    calls: usize,
    concurrency: usize,
    agents: Option<PathBuf>,
    scenario: PathBuf,
    speedup: Option<f64>,
    call_timeout: Duration,
    deadline: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        calls: 200,
        concurrency: 10,
        agents: None,
        scenario: PathBuf::from(DEFAULT_SCENARIO),
        speedup: None,
        call_timeout: Duration::from_secs(15),
        deadline: Duration::from_secs(600),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |v: &str| -> Result<f64, String> {
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x > 0.0)
                .ok_or_else(|| format!("{flag}: not a positive number: {v:?}"))
        };
        match flag.as_str() {
            "--calls" => a.calls = num(&value)? as usize,
            "--concurrency" => a.concurrency = (num(&value)? as usize).max(1),
            "--agents" => a.agents = Some(PathBuf::from(value)),
            "--scenario" => a.scenario = PathBuf::from(value),
            "--speedup" => a.speedup = Some(num(&value)?),
            "--call-timeout" => a.call_timeout = Duration::from_secs_f64(num(&value)?),
            "--deadline" => a.deadline = Duration::from_secs_f64(num(&value)?),
            _ => return Err(format!("unknown argument {flag:?}")),
        }
    }
    Ok(a)
}

// ---- what the bridge reports ------------------------------------------------------------

#[derive(Default)]
struct CallRec {
    /// (from, to, mode) per completed handoff.
    handoffs: Vec<(String, String, &'static str)>,
    refused: Vec<String>,
    summary: Option<CallSummary>,
}

/// The bridge's hooks: per SIP Call-ID, the handoffs as they happen and the summary at the end.
#[derive(Default)]
struct Recorder(Mutex<HashMap<String, CallRec>>);

impl Recorder {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, CallRec>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn handoffs(&self, call_id: &str) -> (usize, Option<String>) {
        let map = self.lock();
        map.get(call_id).map_or((0, None), |r| {
            (r.handoffs.len(), r.refused.first().cloned())
        })
    }
    fn take(&self, call_id: &str) -> Option<CallRec> {
        self.lock().remove(call_id)
    }
    fn has_summary(&self, call_id: &str) -> bool {
        self.lock()
            .get(call_id)
            .is_some_and(|r| r.summary.is_some())
    }
}

impl CallHooks for Recorder {
    fn on_handoff(&self, call_id: &str, event: &HandoffEvent) {
        self.lock()
            .entry(call_id.to_string())
            .or_default()
            .handoffs
            .push((event.from.clone(), event.to.clone(), event.mode));
    }
    fn on_handoff_failed(&self, call_id: &str, from: &str, to: &str, policy: &str) {
        self.lock()
            .entry(call_id.to_string())
            .or_default()
            .refused
            .push(format!("{from}->{to} ({policy})"));
    }
    fn on_call_end(&self, call_id: &str, _caller: &str, summary: &CallSummary) {
        self.lock().entry(call_id.to_string()).or_default().summary = Some(summary.clone());
    }
}

/// The bench's turns call no business tool; answer any with a fixed record.
struct NoTools;

impl ToolRunner for NoTools {
    fn run(&self, _call: ToolCall) -> ToolFuture {
        Box::pin(async { Ok(serde_json::json!({"ok": true})) })
    }
}

// ---- one call -----------------------------------------------------------------------------

struct Ctx {
    server: SocketAddr,
    recorder: Arc<Recorder>,
    call_timeout: Duration,
    /// Pre-encoded PCMU payloads: noise frames and one of silence.
    noise: Vec<Vec<u8>>,
    silence: Vec<u8>,
    run_id: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Setup,
    Invite,
    Greeting,
    HandoffToSupport,
    HandoffToSales,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::Setup => "socket setup",
            Stage::Invite => "INVITE -> 200",
            Stage::Greeting => "greeting",
            Stage::HandoffToSupport => "first handoff and the new agent's words",
            Stage::HandoffToSales => "second handoff and the new agent's words",
        }
    }
}

enum Outcome {
    Ok,
    Failed(Stage, String),
    TimedOut(Stage),
}

struct CallResult {
    outcome: Outcome,
    rec: Option<CallRec>,
}

/// A 20 ms RTP clock for one call: sends a frame per tick and reports the loudest sample the
/// bridge sent since the last one.
struct Media {
    sock: UdpSocket,
    peer: SocketAddr,
    tick: tokio::time::Interval,
    seq: u16,
    ts: u32,
    ssrc: u32,
    buf: Vec<u8>,
    packet: Vec<u8>,
}

impl Media {
    async fn step(&mut self, payload: &[u8]) -> std::io::Result<i32> {
        self.tick.tick().await;
        self.packet.clear();
        self.packet.extend_from_slice(&[0x80, 0x00]);
        self.packet.extend_from_slice(&self.seq.to_be_bytes());
        self.packet.extend_from_slice(&self.ts.to_be_bytes());
        self.packet.extend_from_slice(&self.ssrc.to_be_bytes());
        self.packet.extend_from_slice(payload);
        self.sock.send_to(&self.packet, self.peer).await?;
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(160);
        let mut peak = 0;
        loop {
            match self.sock.try_recv_from(&mut self.buf) {
                Ok((n, from)) => {
                    if from != self.peer || n <= 12 || self.buf[0] >> 6 != 2 {
                        continue;
                    }
                    let pt = self.buf[1] & 0x7f;
                    for &b in &self.buf[12..n] {
                        let s = match pt {
                            0 => g711::ulaw_to_linear(b),
                            8 => g711::alaw_to_linear(b),
                            _ => 0,
                        };
                        peak = peak.max(i32::from(s).abs());
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(peak)
    }
}

async fn run_call(i: usize, ctx: Arc<Ctx>) -> CallResult {
    let mut stage = Stage::Setup;
    let sockets = async {
        let sip = UdpSocket::bind("127.0.0.1:0").await?;
        let media = UdpSocket::bind("127.0.0.1:0").await?;
        Ok::<_, std::io::Error>((sip, media))
    }
    .await;
    let (sip, media) = match sockets {
        Ok(s) => s,
        Err(e) => {
            return CallResult {
                outcome: Outcome::Failed(stage, e.to_string()),
                rec: None,
            }
        }
    };
    let local = match sip.local_addr() {
        Ok(a) => a,
        Err(e) => {
            return CallResult {
                outcome: Outcome::Failed(stage, e.to_string()),
                rec: None,
            }
        }
    };
    let mut uac = Uac::new(&format!("bench-{}-{i}", ctx.run_id), local, ctx.server);
    let call_id = uac.call_id.clone();
    let script = script(&ctx, &call_id, &sip, media, &mut uac, &mut stage);
    let outcome = match timeout(ctx.call_timeout, script).await {
        Ok(Ok(())) => Outcome::Ok,
        Ok(Err(e)) => Outcome::Failed(stage, e),
        Err(_) => Outcome::TimedOut(stage),
    };
    // Hang up whatever happened once the dialog exists, then collect the summary.
    if uac.to_tag.is_some() {
        let bye = uac.bye();
        let mut buf = vec![0u8; 4096];
        for _ in 0..3 {
            if sip.send_to(&bye, ctx.server).await.is_err() {
                break;
            }
            let answered = timeout(Duration::from_millis(500), async {
                loop {
                    match sip.recv_from(&mut buf).await {
                        Ok((n, _)) => {
                            let text = String::from_utf8_lossy(&buf[..n]);
                            if text.starts_with("SIP/2.0 ") && text.contains(" BYE\r\n") {
                                return;
                            }
                        }
                        Err(_) => return,
                    }
                }
            })
            .await
            .is_ok();
            if answered {
                break;
            }
        }
        let until = Instant::now() + SUMMARY_WAIT;
        while !ctx.recorder.has_summary(&call_id) && Instant::now() < until {
            sleep(Duration::from_millis(10)).await;
        }
    }
    CallResult {
        outcome,
        rec: ctx.recorder.take(&call_id),
    }
}

async fn script(
    ctx: &Ctx,
    call_id: &str,
    sip: &UdpSocket,
    media: UdpSocket,
    uac: &mut Uac,
    stage: &mut Stage,
) -> Result<(), String> {
    *stage = Stage::Invite;
    let media_port = media.local_addr().map_err(|e| e.to_string())?.port();
    let invite = String::from_utf8_lossy(&uac.invite(&[]))
        .replace("m=audio 40000", &format!("m=audio {media_port}"))
        .into_bytes();
    let peer = invite_and_ack(ctx, sip, uac, &invite).await?;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut m = Media {
        sock: media,
        peer,
        tick,
        seq: 0,
        ts: 0,
        ssrc: 0x5151_0000 | (call_id.len() as u32),
        buf: vec![0u8; 2048],
        packet: Vec::with_capacity(256),
    };
    let io = |e: std::io::Error| e.to_string();

    // The router greets first: hear it out.
    *stage = Stage::Greeting;
    wait_heard_out(&mut m, ctx, || true).await?;

    for (want, next) in [(1, Stage::HandoffToSupport), (2, Stage::HandoffToSales)] {
        for f in 0..SPEAK_FRAMES {
            m.step(&ctx.noise[f % ctx.noise.len()]).await.map_err(io)?;
        }
        *stage = next;
        // Until the handoff happened, then the narration's rest and the new agent's first
        // words have played.
        let recorder = ctx.recorder.clone();
        let id = call_id.to_string();
        let mut refused = None;
        wait_heard_out(&mut m, ctx, || {
            let (n, r) = recorder.handoffs(&id);
            refused = r;
            n >= want || refused.is_some()
        })
        .await?;
        if let Some(r) = refused {
            return Err(format!("handoff refused: {r}"));
        }
    }
    Ok(())
}

/// Step the media clock until `ready()` holds, then until the agent was heard (after that) and
/// has been quiet for `QUIET_FRAMES`.
async fn wait_heard_out(
    m: &mut Media,
    ctx: &Ctx,
    mut ready: impl FnMut() -> bool,
) -> Result<(), String> {
    let mut is_ready = false;
    let mut heard = false;
    let mut quiet = 0;
    loop {
        let peak = m.step(&ctx.silence).await.map_err(|e| e.to_string())?;
        if !is_ready {
            is_ready = ready();
        }
        if peak > LOUD {
            quiet = 0;
            heard |= is_ready;
        } else {
            quiet += 1;
        }
        if is_ready && heard && quiet >= QUIET_FRAMES {
            return Ok(());
        }
    }
}

/// INVITE (retransmitted every 500 ms until a response), ACK the 200; the bridge's RTP address.
async fn invite_and_ack(
    ctx: &Ctx,
    sip: &UdpSocket,
    uac: &mut Uac,
    invite: &[u8],
) -> Result<SocketAddr, String> {
    let mut buf = vec![0u8; 65535];
    let mut provisional = false;
    loop {
        if !provisional {
            sip.send_to(invite, ctx.server)
                .await
                .map_err(|e| e.to_string())?;
        }
        let Ok(got) = timeout(Duration::from_millis(500), sip.recv_from(&mut buf)).await else {
            continue;
        };
        let (n, _) = got.map_err(|e| e.to_string())?;
        let Ok(r) = sip_msg::Response::parse(&buf[..n]) else {
            continue;
        };
        match r.status {
            100..=199 => provisional = true,
            200..=299 => {
                uac.learn(&buf[..n]);
                sip.send_to(&uac.ack_2xx(), ctx.server)
                    .await
                    .map_err(|e| e.to_string())?;
                let body = String::from_utf8_lossy(&r.body);
                let port: u16 = body
                    .lines()
                    .find_map(|l| l.strip_prefix("m=audio "))
                    .and_then(|l| l.split(' ').next())
                    .and_then(|p| p.parse().ok())
                    .ok_or("no m=audio port in the 200's SDP")?;
                return Ok(SocketAddr::new(ctx.server.ip(), port));
            }
            s => {
                let ack = uac.ack_non_2xx();
                let _ = sip.send_to(&ack, ctx.server).await;
                return Err(format!("INVITE answered {s} {}", r.reason));
            }
        }
    }
}

// ---- figures ------------------------------------------------------------------------------

#[derive(Default)]
struct Series {
    first_delta: Vec<u64>,
    handoff: Vec<u64>,
    count: usize,
    no_delta: usize,
    no_frame: usize,
}

impl Series {
    fn add(&mut self, first_delta: Option<u64>, handoff: Option<u64>) {
        self.count += 1;
        match first_delta {
            Some(v) => self.first_delta.push(v),
            None => self.no_delta += 1,
        }
        match handoff {
            Some(v) => self.handoff.push(v),
            None => self.no_frame += 1,
        }
    }
}

/// Nearest-rank percentile of sorted `v`.
fn pct(v: &[u64], p: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

struct Quantiles {
    n: usize,
    p50: u64,
    p90: u64,
    p99: u64,
    max: u64,
}

fn quantiles(v: &mut [u64]) -> Option<Quantiles> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    Some(Quantiles {
        n: v.len(),
        p50: pct(v, 50.0),
        p90: pct(v, 90.0),
        p99: pct(v, 99.0),
        max: v[v.len() - 1],
    })
}

fn row(label: &str, metric: &str, v: &mut [u64], missing: usize) -> Option<Quantiles> {
    let q = quantiles(v);
    match &q {
        Some(q) => println!(
            "  {label:<16} {metric:<15} {:>5} {:>6} {:>6} {:>6} {:>6}{}",
            q.n,
            q.p50,
            q.p90,
            q.p99,
            q.max,
            if missing > 0 {
                format!("   ({missing} without)")
            } else {
                String::new()
            }
        ),
        None => println!(
            "  {label:<16} {metric:<15}     0      -      -      -      -   ({missing} without)"
        ),
    }
    q
}

/// User + system CPU time of this process.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn cpu_time() -> Option<Duration> {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a `rusage` into the pointer we pass; it is read only on success.
    let ok = unsafe { libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr()) } == 0;
    if !ok {
        return None;
    }
    // SAFETY: initialised by the successful call above.
    let ru = unsafe { ru.assume_init() };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    Some(tv(ru.ru_utime) + tv(ru.ru_stime))
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn cpu_time() -> Option<Duration> {
    None
}

fn mode_name(m: VoiceMode) -> &'static str {
    match m {
        VoiceMode::Same => "same",
        VoiceMode::PerAgent => "per_agent",
        VoiceMode::Hybrid => "hybrid",
    }
}

/// Pre-encoded PCMU noise frames (160 samples, xorshift, about a third of full scale).
fn noise_payloads() -> Vec<Vec<u8>> {
    (0..50u32)
        .map(|i| {
            let mut x = i.wrapping_mul(2_654_435_761) | 1;
            (0..g711::SAMPLES_PER_20MS)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    g711::linear_to_ulaw(((x >> 16) as i16) / 3)
                })
                .collect()
        })
        .collect()
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    let file = match &args.agents {
        Some(p) => AgentsFile::load(p),
        None => AgentsFile::embedded_default(),
    };
    let file = match file {
        Ok(f) => Arc::new(f),
        Err(e) => {
            eprintln!("error: agents file: {e}");
            std::process::exit(2);
        }
    };
    let scenario = match realtime_sim::Scenario::load(&args.scenario) {
        Ok(s) => match args.speedup {
            Some(f) => s.with_speedup(f),
            None => s,
        },
        Err(e) => {
            eprintln!("error: scenario: {e}");
            std::process::exit(2);
        }
    };
    let mode = mode_name(file.voice_mode);
    let speedup = scenario.speedup();
    let min_capacity = file
        .agents
        .iter()
        .filter(|a| a.name != file.entry)
        .filter_map(|a| a.capacity.map(|c| (a.name.clone(), c)))
        .min_by_key(|(_, c)| *c);

    let sim = match realtime_sim::Simulator::bind_with(
        "127.0.0.1:0",
        realtime_sim::SimOptions {
            scenario: Some(scenario),
            event_log: None,
        },
    )
    .await
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: simulator: {e}");
            std::process::exit(2);
        }
    };
    let recorder = Arc::new(Recorder::default());
    let mut ai = match AiSettings::new(sim.url(), "unused with agents") {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: realtime settings: {e}");
            std::process::exit(2);
        }
    };
    ai.agents = Some(Agents {
        slots: Arc::new(SlotTable::new(&file)),
        file: file.clone(),
        tools: Arc::new(NoTools),
        hooks: recorder.clone(),
    });
    let cfg = BridgeConfig {
        sip_listen: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
        admin_listen: None,
        session_expires: 0,
        ai: Some(ai),
        ..BridgeConfig::default()
    };
    let bridge = match Bridge::start(cfg).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: bridge: {e}");
            std::process::exit(2);
        }
    };
    let Some(&server) = bridge.sip_addrs.first() else {
        eprintln!("error: the bridge bound no SIP address");
        std::process::exit(2);
    };

    println!(
        "bench_handoff: voice mode {mode} ({}), scenario {} (speedup {speedup}), {} calls, {} at a time",
        file.source,
        args.scenario.display(),
        args.calls,
        args.concurrency
    );
    if let Some((name, cap)) = &min_capacity {
        if args.concurrency > *cap as usize {
            println!(
                "  note: concurrency {} exceeds {name}'s capacity {cap}: some handoffs will meet its on_unavailable policy",
                args.concurrency
            );
        }
    }

    let ctx = Arc::new(Ctx {
        server,
        recorder: recorder.clone(),
        call_timeout: args.call_timeout,
        noise: noise_payloads(),
        silence: vec![g711::linear_to_ulaw(0); g711::SAMPLES_PER_20MS],
        run_id: std::process::id(),
    });

    let cpu0 = cpu_time();
    let t0 = Instant::now();
    let deadline = tokio::time::Instant::now() + args.deadline;
    let mut set = JoinSet::new();
    let mut launched = 0usize;
    let mut results: Vec<CallResult> = Vec::new();
    let mut panicked = 0usize;
    let mut cut_by_deadline = 0usize;
    let mut stopped_early = None;
    loop {
        while launched < args.calls
            && set.len() < args.concurrency
            && stopped_early.is_none()
            && tokio::time::Instant::now() < deadline
        {
            set.spawn(run_call(launched, ctx.clone()));
            launched += 1;
            if launched < args.concurrency {
                // Spread the first wave so the calls do not all speak in the same 20 ms.
                sleep(Duration::from_millis(37)).await;
            }
        }
        if set.is_empty() {
            break;
        }
        match timeout_at(deadline, set.join_next()).await {
            Ok(Some(Ok(r))) => results.push(r),
            Ok(Some(Err(_))) => panicked += 1,
            Ok(None) => break,
            Err(_) => {
                cut_by_deadline = set.len();
                set.abort_all();
                while set.join_next().await.is_some() {}
                break;
            }
        }
        // A run where nothing hands off is not worth finishing.
        let first_wave = args.concurrency.min(args.calls);
        if stopped_early.is_none()
            && results.len() >= first_wave
            && results
                .iter()
                .all(|r| r.rec.as_ref().is_none_or(|c| c.handoffs.is_empty()))
        {
            stopped_early = Some(results.len());
        }
    }
    let wall = t0.elapsed();
    let cpu = match (cpu0, cpu_time()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };

    // ---- report ----
    let mut ok = 0usize;
    let mut failed: BTreeMap<String, usize> = BTreeMap::new();
    let mut timed_out: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut no_summary = 0usize;
    let mut modes: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut pairs: BTreeMap<String, Series> = BTreeMap::new();
    let mut all = Series::default();
    let mut refused = 0u32;
    for r in &results {
        match &r.outcome {
            Outcome::Ok => ok += 1,
            Outcome::Failed(stage, e) => {
                *failed.entry(format!("{}: {e}", stage.name())).or_default() += 1
            }
            Outcome::TimedOut(stage) => *timed_out.entry(stage.name()).or_default() += 1,
        }
        let Some(rec) = &r.rec else {
            no_summary += 1;
            continue;
        };
        for (_, _, m) in &rec.handoffs {
            *modes.entry(m).or_default() += 1;
        }
        let Some(s) = &rec.summary else {
            no_summary += 1;
            continue;
        };
        refused += s.failures;
        for (i, h) in s.handoffs.iter().enumerate() {
            let fd = s.first_delta_ms.get(i).copied().flatten();
            let hm = s.handoff_ms_each.get(i).copied().flatten();
            pairs
                .entry(format!("{}->{}", h.from, h.to))
                .or_default()
                .add(fd, hm);
            all.add(fd, hm);
        }
    }
    let n_failed: usize = failed.values().sum();
    let n_timed_out: usize = timed_out.values().sum::<usize>() + cut_by_deadline;
    println!(
        "calls: {} placed, {ok} ok, {n_failed} failed, {n_timed_out} timed out, {} not placed; wall {:.1} s",
        launched,
        args.calls - launched,
        wall.as_secs_f64()
    );
    for (what, n) in &failed {
        println!("  failed ({n}): {what}");
    }
    for (stage, n) in &timed_out {
        println!(
            "  timed out ({n}) after {:.0} s waiting for: {stage}",
            args.call_timeout.as_secs_f64()
        );
    }
    if cut_by_deadline > 0 {
        println!("  cut by the run deadline: {cut_by_deadline}");
    }
    if panicked > 0 {
        println!("  call tasks that panicked: {panicked}");
    }
    if no_summary > 0 {
        println!("  calls without a summary: {no_summary}");
    }
    if refused > 0 {
        println!("  handoffs refused or rerouted by a policy: {refused}");
    }
    if let Some(n) = stopped_early {
        println!("  stopped after {n} calls: none of them completed a handoff");
    }
    let seen: Vec<String> = modes.iter().map(|(m, n)| format!("{m} x{n}")).collect();
    println!(
        "handoffs: {} completed, modes seen: {}",
        all.count,
        if seen.is_empty() {
            "none".to_string()
        } else {
            seen.join(", ")
        }
    );
    println!(
        "  {:<16} {:<15} {:>5} {:>6} {:>6} {:>6} {:>6}",
        "pair", "metric (ms)", "n", "p50", "p90", "p99", "max"
    );
    for (pair, s) in pairs.iter_mut() {
        row(pair, "first_delta", &mut s.first_delta, s.no_delta);
        row("", "handoff_ms", &mut s.handoff, s.no_frame);
    }
    let qd = row("all", "first_delta", &mut all.first_delta, all.no_delta);
    let qh = row("", "handoff_ms", &mut all.handoff, all.no_frame);
    println!("  first_delta: trigger -> new agent's first audio delta in the bridge (in-bridge overhead + simulator answer)");
    println!(
        "  handoff_ms:  trigger -> new agent's first RTP frame (adds the narration still playing)"
    );
    if let Some(cpu) = cpu {
        let per = |n: usize| {
            if n == 0 {
                "-".to_string()
            } else {
                format!("{:.1}", cpu.as_secs_f64() * 1e3 / n as f64)
            }
        };
        println!(
            "CPU (whole process: bridge + simulator + callers): {:.2} s = {:.2} cores over the run; {} ms per call, {} ms per handoff (upper bound: includes all media)",
            cpu.as_secs_f64(),
            cpu.as_secs_f64() / wall.as_secs_f64().max(1e-9),
            per(results.len()),
            per(all.count)
        );
    }

    // Did the file's voice mode actually run?
    let implemented =
        file.voice_mode == VoiceMode::Same || (modes.contains_key(mode) && modes.len() == 1);
    if !implemented {
        let why = if modes.is_empty() {
            "no handoff completed".to_string()
        } else {
            format!("handoffs ran as {}", seen.join(", "))
        };
        println!("{mode}: not implemented ({why})");
    }
    let q = |q: &Option<Quantiles>, f: fn(&Quantiles) -> u64| {
        q.as_ref().map_or("-".to_string(), |q| f(q).to_string())
    };
    println!(
        "RESULT mode={mode} implemented={} calls={} ok={ok} failed={n_failed} timed_out={n_timed_out} handoffs={} first_delta_p50={} first_delta_p99={} first_delta_max={} handoff_p50={} handoff_p99={} cpu_ms_per_handoff={}",
        if implemented { "yes" } else { "no" },
        results.len(),
        all.count,
        q(&qd, |q| q.p50),
        q(&qd, |q| q.p99),
        q(&qd, |q| q.max),
        q(&qh, |q| q.p50),
        q(&qh, |q| q.p99),
        cpu.filter(|_| all.count > 0)
            .map_or("-".to_string(), |c| format!("{:.1}", c.as_secs_f64() * 1e3 / all.count as f64)),
    );
    drop(bridge);
    drop(sim);
}
