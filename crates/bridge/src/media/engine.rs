//! The media engine: a few threads ("media-0", "media-1", ...) that own every call's RTP/RTCP
//! sockets and run their sessions on one shared clock, instead of a task, a timer and a socket
//! wakeup per call.
//!
//! Each thread (a shard) wakes every step ([`DEFAULT_STEP`], `--media-step-ms`) on its own
//! timer and, in that one wakeup, reads every socket that became readable (one non-blocking
//! `epoll_wait`), takes each call's commands, runs the ticks that are due and sends what they
//! produced (every call's packets of the pass in one io_uring submission, [`super::send`]);
//! commands someone waits for (stop, flush) wake it at once. Packets that arrive
//! between two steps wait in the socket: nobody is woken for them. A call's 20 ms tick is
//! therefore sent at most one step (plus the step's work) after its deadline, and a received
//! packet is stamped with the step's time: the jitter figures are quantised to the step.
//!
//! With 1,000 calls that is 2 x 500 wakeups a second instead of about 150,000, and the sends of
//! one step leave back to back (on loopback the peer is woken once per burst, not per packet).
//! A shard with no calls sleeps on its queue of new calls.

use super::recv::Reader;
use super::send::Sender;
use super::{CallMedia, MediaCmd, MediaNote};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use rtp::Socket;
use std::io::ErrorKind;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

/// How often a shard wakes by default: the bound on how late a packet leaves (plus the
/// step's work).
pub const DEFAULT_STEP: Duration = Duration::from_millis(2);

/// A call's command queue is read when a sender flagged it (every command sets the call's
/// `queued` flag), and every this many steps anyway (calls take turns): that is how a call
/// whose senders are all gone without a `Stop` is noticed.
const CHANNEL_CHECK_EVERY: usize = 50;

/// The clock is read again after this many skipped calls (a step over 1,000 idle calls is
/// tens of microseconds; one read each would cost as much as the skip saves).
const CLOCK_EVERY: usize = 32;

/// Packets read from one socket in one step at most: a flood on one call cannot hold the shard
/// (the rest waits in the socket for the next step).
const READS_PER_STEP: usize = 32;

/// Shards the engine starts with (0: one per available core). Set before the first call.
static THREADS: AtomicUsize = AtomicUsize::new(0);
static STEP_MICROS: AtomicUsize = AtomicUsize::new(0);
/// The nice value the media threads ask for (-20..=19; 0 leaves them as started).
static NICE: AtomicI32 = AtomicI32::new(DEFAULT_NICE);
/// The nice value the first media thread runs at (`i32::MIN` until it has started).
static NICE_IN_EFFECT: AtomicI32 = AtomicI32::new(i32::MIN);
/// The SCHED_RR priority the media threads ask for (0: none) and the first one got.
static REALTIME: AtomicI32 = AtomicI32::new(0);
static REALTIME_IN_EFFECT: AtomicI32 = AtomicI32::new(0);

/// The media threads' default nice value: a packet due now goes before the signalling and
/// Realtime work of the tokio threads (nice 0) when the cores are busy, as FreeSWITCH and
/// Asterisk raise their media threads. Lowering nice needs CAP_SYS_NICE (or a RLIMIT_NICE
/// that allows it); without it the threads stay at nice 0 and say so once.
pub const DEFAULT_NICE: i32 = -10;
static ENGINE: OnceLock<Engine> = OnceLock::new();

/// A step that ended more than [`SLOW_STEP`] after its timer is remembered ([`slow_steps`]).
pub const SLOW_STEP: Duration = Duration::from_millis(10);
/// How many slow steps are remembered (the oldest go first).
const SLOW_STEPS_KEPT: usize = 256;

/// A media engine step that ended late: whether the thread woke late (the scheduler, or the
/// machine) or its work took long (its calls).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SlowStep {
    /// When it ended: milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The media thread's index.
    pub shard: usize,
    pub woke_late_us: u64,
    pub work_us: u64,
    /// Of that work, until the last due packet had left (the first pass).
    pub sends_us: u64,
    /// CPU time the thread got during that work (less than `work_us`: it was preempted or
    /// waited; about as much: the work itself, kernel sends included).
    pub cpu_us: u64,
    /// Calls stepped with a tick due or a command (the first pass). Not named `calls`:
    /// scripts read `/stats`' live call count by that name.
    pub stepped: usize,
    /// Calls that only had packets to read (the second pass).
    pub deferred: usize,
    /// Context switches during the work: waits (voluntary) and preemptions (involuntary).
    pub waits: u64,
    pub preemptions: u64,
}

/// What one step did, for [`record_step`].
struct Work {
    total: Duration,
    sends: Duration,
    cpu: Duration,
    stepped: usize,
    deferred: usize,
    /// Voluntary and involuntary context switches during the work.
    switches: (u64, u64),
}

/// This thread's CPU time and context switches so far, in one getrusage call per step. A slow
/// step with voluntary switches waited (a lock, a page fault); with involuntary ones it was
/// preempted.
#[derive(Clone, Copy, Default)]
struct Usage {
    cpu: Duration,
    voluntary: u64,
    involuntary: u64,
}

impl Usage {
    /// What happened since `before`: (CPU time, (voluntary, involuntary) switches).
    fn since(self, before: Usage) -> (Duration, (u64, u64)) {
        (
            self.cpu.saturating_sub(before.cpu),
            (
                self.voluntary.saturating_sub(before.voluntary),
                self.involuntary.saturating_sub(before.involuntary),
            ),
        )
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn thread_usage() -> Usage {
    // SAFETY: getrusage writes the struct it is given and nothing else.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) } != 0 {
        return Usage::default();
    }
    let micros = |t: libc::timeval| t.tv_sec.max(0) as u64 * 1_000_000 + t.tv_usec.max(0) as u64;
    Usage {
        cpu: Duration::from_micros(micros(u.ru_utime) + micros(u.ru_stime)),
        voluntary: u.ru_nvcsw.max(0) as u64,
        involuntary: u.ru_nivcsw.max(0) as u64,
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn thread_usage() -> Usage {
    Usage::default()
}

struct StepStats {
    work: crate::metrics::Histogram,
    woke_late: crate::metrics::Histogram,
    slow: Mutex<std::collections::VecDeque<SlowStep>>,
}

static STEP_STATS: OnceLock<StepStats> = OnceLock::new();

fn step_stats() -> &'static StepStats {
    STEP_STATS.get_or_init(|| StepStats {
        work: crate::metrics::Histogram::new(&crate::metrics::MEDIA_STEP_BUCKETS),
        woke_late: crate::metrics::Histogram::new(&crate::metrics::MEDIA_STEP_BUCKETS),
        slow: Mutex::new(std::collections::VecDeque::with_capacity(SLOW_STEPS_KEPT)),
    })
}

/// The step histograms (work, wakeup lateness) for `/metrics`.
pub(crate) fn step_histograms() -> (
    &'static crate::metrics::Histogram,
    &'static crate::metrics::Histogram,
) {
    let s = step_stats();
    (&s.work, &s.woke_late)
}

/// The recent slow steps, oldest first (`/stats`).
pub fn slow_steps() -> Vec<SlowStep> {
    step_stats()
        .slow
        .lock()
        .map(|q| q.iter().copied().collect())
        .unwrap_or_default()
}

/// One step's timing: into the histograms, and into the slow log when it ended late.
fn record_step(shard: usize, woke_late: Duration, work: Work) {
    let s = step_stats();
    s.work.observe(work.total.as_secs_f64());
    s.woke_late.observe(woke_late.as_secs_f64());
    if woke_late + work.total > SLOW_STEP {
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        if let Ok(mut q) = s.slow.lock() {
            if q.len() == SLOW_STEPS_KEPT {
                q.pop_front();
            }
            q.push_back(SlowStep {
                at_ms,
                shard,
                woke_late_us: woke_late.as_micros() as u64,
                work_us: work.total.as_micros() as u64,
                sends_us: work.sends.as_micros() as u64,
                cpu_us: work.cpu.as_micros() as u64,
                stepped: work.stepped,
                deferred: work.deferred,
                waits: work.switches.0,
                preemptions: work.switches.1,
            });
        }
    }
}

/// How many media threads to run (0: one per core). Takes effect only before the first call.
pub fn set_threads(n: usize) {
    THREADS.store(n, Ordering::Relaxed);
}

/// How often the media threads wake (the default: [`DEFAULT_STEP`]); 1..=10 ms. Takes effect
/// only before the first call.
pub fn set_step(step: Duration) {
    let us = step.as_micros().clamp(1_000, 10_000) as usize;
    STEP_MICROS.store(us, Ordering::Relaxed);
}

/// The media threads' nice value (0: leave them as started). Takes effect only before the
/// first call.
pub fn set_nice(nice: i32) {
    NICE.store(nice.clamp(-20, 19), Ordering::Relaxed);
}

/// Real-time scheduling for the media threads instead of a nice value: SCHED_RR at `priority`
/// (1..=99; 0 turns it off), as FreeSWITCH's `-rp` and Asterisk's `-p` run their media. A
/// real-time thread runs before every ordinary one the moment it wakes, so load on the other
/// threads cannot delay a packet; it sleeps every step, and the kernel keeps a share of each
/// CPU for ordinary threads. Needs CAP_SYS_NICE or an RLIMIT_RTPRIO that allows it; refused,
/// the threads fall back to the nice value. Takes effect only before the first call.
pub fn set_realtime(priority: u8) {
    REALTIME.store(i32::from(priority.min(99)), Ordering::Relaxed);
}

/// The SCHED_RR priority the media threads run at, once started (None: ordinary threads).
pub fn realtime_in_effect() -> Option<u8> {
    match REALTIME_IN_EFFECT.load(Ordering::Relaxed) {
        p if p > 0 => u8::try_from(p).ok(),
        _ => None,
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_thread_realtime(priority: i32) -> std::io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: `param` outlives the call; pid 0 is the calling thread.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_RR, &param) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_thread_realtime(_priority: i32) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// Ask the scheduler to favour the calling (media) thread: real-time when asked and allowed,
/// else its nice value. On Linux both belong to a thread, so only this one changes. The first
/// thread logs a refusal and records what is in effect.
fn apply_nice(index: usize) {
    let rt = REALTIME.load(Ordering::Relaxed);
    if rt > 0 {
        match set_thread_realtime(rt) {
            Ok(()) => {
                debug!(thread = index, priority = rt, "media thread SCHED_RR");
                if index == 0 {
                    REALTIME_IN_EFFECT.store(rt, Ordering::Relaxed);
                }
            }
            Err(e) if index == 0 => info!(
                priority = rt, error = %e,
                "media threads not real-time (needs CAP_SYS_NICE or RLIMIT_RTPRIO): the nice value instead"
            ),
            Err(_) => {}
        }
    }
    let nice = NICE.load(Ordering::Relaxed);
    if nice != 0 {
        match rustix::process::setpriority_process(None, nice) {
            Ok(()) => debug!(thread = index, nice, "media thread priority"),
            Err(e) if index == 0 => info!(
                nice, error = %e,
                "media threads stay at normal priority (raising it needs CAP_SYS_NICE or RLIMIT_NICE)"
            ),
            Err(_) => {}
        }
    }
    if index == 0 {
        if let Ok(now) = rustix::process::getpriority_process(None) {
            NICE_IN_EFFECT.store(now, Ordering::Relaxed);
        }
    }
}

/// The nice value the media threads run at, once they have started (`/stats`).
pub fn nice_in_effect() -> Option<i32> {
    Some(NICE_IN_EFFECT.load(Ordering::Relaxed)).filter(|&n| n != i32::MIN)
}

fn step_length() -> Duration {
    match STEP_MICROS.load(Ordering::Relaxed) {
        0 => DEFAULT_STEP,
        us => Duration::from_micros(us as u64),
    }
}

/// The engine's threads and the calls each one holds.
pub fn shard_loads() -> Vec<usize> {
    ENGINE
        .get()
        .map(|e| {
            e.shards
                .iter()
                .map(|s| s.calls.load(Ordering::Relaxed))
                .collect()
        })
        .unwrap_or_default()
}

/// A call handed to a shard.
pub(super) struct NewCall {
    pub media: CallMedia,
    pub rtp: std::net::UdpSocket,
    pub rtcp: std::net::UdpSocket,
    pub lease: Option<crate::ports::PortLease>,
    pub rx: mpsc::Receiver<MediaCmd>,
    /// Set by the senders after each command.
    pub queued: Arc<AtomicBool>,
    pub notes: mpsc::Sender<MediaNote>,
    pub span: tracing::Span,
}

struct Shard {
    tx: Mutex<std_mpsc::Sender<NewCall>>,
    calls: Arc<AtomicUsize>,
    waker: ShardWaker,
}

/// Wakes a shard before its next step, for a command that should not wait for it (stop,
/// flush, played-ms); the step reads every call's queue that was flagged.
#[derive(Clone, Debug)]
pub struct ShardWaker {
    thread: std::thread::Thread,
    /// Some call of the shard has a command queued (its own flag says which): a step reads
    /// the calls' flags only when this is set.
    queued: Arc<AtomicBool>,
}

/// What a call's command senders tell its shard after each command: the call's flag, the
/// shard's flag, and for a command someone waits for, a wakeup.
#[derive(Clone, Debug)]
pub struct CallWaker {
    shard: ShardWaker,
    queued: Arc<AtomicBool>,
}

impl CallWaker {
    pub(super) fn new(shard: ShardWaker, queued: Arc<AtomicBool>) -> Self {
        CallWaker { shard, queued }
    }

    /// A command was queued; `urgent`: wake the shard now instead of at its next step.
    pub fn queued(&self, urgent: bool) {
        self.queued.store(true, Ordering::Release);
        self.shard.queued.store(true, Ordering::Release);
        if urgent {
            self.shard.thread.unpark();
        }
    }
}

struct Engine {
    shards: Vec<Shard>,
}

fn engine() -> &'static Engine {
    ENGINE.get_or_init(|| {
        let n = match THREADS.load(Ordering::Relaxed) {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let mut shards = Vec::with_capacity(n);
        for i in 0..n {
            let (tx, rx) = std_mpsc::channel();
            let calls = Arc::new(AtomicUsize::new(0));
            let load = calls.clone();
            let queued = Arc::new(AtomicBool::new(false));
            let any_queued = queued.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("media-{i}"))
                .spawn(move || {
                    apply_nice(i);
                    run(i, rx, load, any_queued)
                });
            match spawned {
                Ok(handle) => shards.push(Shard {
                    tx: Mutex::new(tx),
                    calls,
                    waker: ShardWaker {
                        thread: handle.thread().clone(),
                        queued,
                    },
                }),
                Err(e) => warn!(error = %e, "cannot start a media thread"),
            }
        }
        Engine { shards }
    })
}

/// Hand a call to the least loaded shard; its waker for urgent commands. `Err` gives the
/// call back if no shard runs.
pub(super) fn submit(call: NewCall) -> Result<ShardWaker, Box<NewCall>> {
    let e = engine();
    let Some(shard) = e
        .shards
        .iter()
        .min_by_key(|s| s.calls.load(Ordering::Relaxed))
    else {
        return Err(Box::new(call));
    };
    shard.calls.fetch_add(1, Ordering::Relaxed);
    let sent = match shard.tx.lock() {
        Ok(tx) => tx.send(call).map_err(|e| Box::new(e.0)),
        Err(_) => Err(Box::new(call)),
    };
    match sent {
        Ok(()) => Ok(shard.waker.clone()),
        Err(call) => {
            shard.calls.fetch_sub(1, Ordering::Relaxed);
            Err(call)
        }
    }
}

struct Slot {
    media: CallMedia,
    rtp: UdpSocket,
    rtcp: UdpSocket,
    /// Declared after the sockets: dropped after them, so the port returns to the pool
    /// only once it is closed.
    _lease: Option<crate::ports::PortLease>,
    rx: mpsc::Receiver<MediaCmd>,
    queued: Arc<AtomicBool>,
    notes: mpsc::Sender<MediaNote>,
    span: tracing::Span,
    /// Its bucket in the shard's [`Phases`].
    phase: usize,
}

/// The 20 ms packet period of a shard, cut in one bucket per step: each new call's ticks go
/// in the emptiest bucket ([`rtp::Session::align_ticks`]), so every step sends for about the
/// same number of calls. Calls arriving in step (SIPp at a fixed rate puts every call of a
/// second in one or two places of the period) would otherwise be due together, and the last
/// of them would leave as late as the work for all the others (a 1,000-call bench on this
/// VM had steps sending for all 500 calls of a shard at once, 5-20 ms each).
struct Phases {
    epoch: Instant,
    bucket: Duration,
    load: Vec<usize>,
}

/// The packet period the phases spread (20 ms ptime).
const PACKET_PERIOD: Duration = Duration::from_millis(20);

impl Phases {
    fn new(epoch: Instant, step: Duration) -> Self {
        let n = (PACKET_PERIOD.as_micros() / step.as_micros().max(1)).clamp(1, 64) as usize;
        Phases {
            epoch,
            bucket: PACKET_PERIOD / n as u32,
            load: vec![0; n],
        }
    }

    /// The emptiest bucket (the first of equals) and the first instant at or after `now`
    /// that starts it.
    fn assign(&mut self, now: Instant) -> (usize, Instant) {
        let (b, _) = self
            .load
            .iter()
            .enumerate()
            .min_by_key(|(_, l)| **l)
            .unwrap_or((0, &0));
        if let Some(l) = self.load.get_mut(b) {
            *l += 1;
        }
        let period = PACKET_PERIOD.as_nanos();
        let since = now.saturating_duration_since(self.epoch).as_nanos();
        let offset = self.bucket.as_nanos() * b as u128;
        let mut start = since - since % period + offset;
        if start < since {
            start += period;
        }
        let first = self.epoch + Duration::from_nanos(u64::try_from(start).unwrap_or(u64::MAX));
        (b, first)
    }

    fn release(&mut self, b: usize) {
        if let Some(l) = self.load.get_mut(b) {
            *l = l.saturating_sub(1);
        }
    }
}

/// What a step looks at for every call, kept apart from the calls in one small array: a step
/// over a thousand idle calls reads a few cache lines, not a thousand calls.
#[derive(Clone, Copy, Default)]
struct Hot {
    /// A call holds the slot.
    live: bool,
    /// Edge-triggered readiness not yet drained (RTP, RTCP).
    readable: [bool; 2],
    /// The session's next timer as of the last step: until then, a step with nothing read
    /// and no command skips the call.
    next_due: Option<Instant>,
}

fn token(index: usize, socket: Socket) -> Token {
    Token(index * 2 + usize::from(socket == Socket::Rtcp))
}

/// One shard's loop; ends when the engine is gone (never, in a running process).
fn run(
    shard: usize,
    new_calls: std_mpsc::Receiver<NewCall>,
    load: Arc<AtomicUsize>,
    any_queued: Arc<AtomicBool>,
) {
    let mut poll = match Poll::new() {
        Ok(p) => p,
        Err(e) => {
            warn!(error = %e, "media thread: no epoll");
            return;
        }
    };
    let mut events = Events::with_capacity(1024);
    let mut slots: Vec<Option<Slot>> = Vec::new();
    // Parallel to `slots`.
    let mut hot: Vec<Hot> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut live = 0usize;
    let mut reader = Reader::default();
    let mut sender = Sender::new(shard == 0);
    let mut deferred: Vec<usize> = Vec::new();
    let step_len = step_length();
    let mut phases = Phases::new(Instant::now(), step_len);
    let mut steps = 0usize;
    let mut next = Instant::now() + step_len;
    // The timer the thread last slept for (None: it did not sleep, or a call just came).
    let mut slept_until: Option<Instant> = None;
    loop {
        let mut first = None;
        if live == 0 {
            // Nothing to pace: sleep until a call comes.
            slept_until = None;
            match new_calls.recv() {
                Ok(c) => first = Some(c),
                Err(_) => return,
            }
            next = Instant::now() + step_len;
        }
        let woke = Instant::now();
        let usage0 = thread_usage();
        let mut stepped = 0usize;
        let woke_late = slept_until
            .take()
            .map_or(Duration::ZERO, |t| woke.saturating_duration_since(t));
        let arrived = first
            .into_iter()
            .chain(std::iter::from_fn(|| new_calls.try_recv().ok()));
        for c in arrived {
            if add(
                &poll,
                &mut slots,
                &mut hot,
                &mut free,
                &mut phases,
                c,
                &load,
            ) {
                live += 1;
            }
        }
        // Which sockets became readable since the last step (edge-triggered: each is read
        // until it would block, over as many steps as it takes).
        loop {
            if let Err(e) = poll.poll(&mut events, Some(Duration::ZERO)) {
                if e.kind() != ErrorKind::Interrupted {
                    debug!(error = %e, "media poll");
                }
                break;
            }
            let mut n = 0;
            for ev in events.iter() {
                n += 1;
                let Token(t) = ev.token();
                if let Some(h) = hot.get_mut(t / 2).filter(|h| h.live) {
                    h.readable[t % 2] = true;
                }
            }
            if n < events.capacity() {
                break;
            }
        }
        let flags = any_queued.swap(false, Ordering::AcqRel);
        let mut now = Instant::now();
        // First every call with a tick due or a command: what leaves on time is decided here.
        // A call that only has packets to read waits for the second pass: after a burst (a
        // peer that was stalled sends 20 ms of every call at once) reading all of them first
        // would hold back the sends of the calls after them by as long.
        deferred.clear();
        for (i, (entry, h)) in slots.iter_mut().zip(hot.iter_mut()).enumerate() {
            if i.is_multiple_of(CLOCK_EVERY) {
                now = Instant::now();
            }
            if !h.live {
                continue;
            }
            let check = (steps + i).is_multiple_of(CHANNEL_CHECK_EVERY);
            let due = h.next_due.is_none_or(|due| due <= now);
            // The call's own flag is read only when the shard's is set: most steps decide from
            // the hot array alone, without touching the call.
            let commanded = check
                || (flags
                    && entry
                        .as_ref()
                        .is_some_and(|s| s.queued.load(Ordering::Acquire)));
            if !commanded && !due {
                // Most calls, most steps: nothing to send, no command; maybe packets to read.
                if h.readable != [false, false] {
                    deferred.push(i);
                }
                continue;
            }
            let Some(slot) = entry.as_mut() else {
                continue;
            };
            stepped += 1;
            if !step(slot, i, h, &mut reader, &mut sender, flags, check, now) {
                // Its last packets (an RTCP BYE) leave before its sockets close.
                sender.flush();
                end_slot(&poll, entry, h, &mut free, &mut phases, i, &load);
                live -= 1;
            }
        }
        sender.flush();
        count_send_errors(&mut sender, &mut slots);
        let sends_done = Instant::now();
        for &i in &deferred {
            let (Some(entry), Some(h)) = (slots.get_mut(i), hot.get_mut(i)) else {
                continue;
            };
            let Some(slot) = entry.as_mut() else {
                continue;
            };
            if !step(
                slot,
                i,
                h,
                &mut reader,
                &mut sender,
                false,
                false,
                Instant::now(),
            ) {
                sender.flush();
                end_slot(&poll, entry, h, &mut free, &mut phases, i, &load);
                live -= 1;
            }
        }
        sender.flush();
        count_send_errors(&mut sender, &mut slots);
        // Then the consumers: each wakeup of a Realtime task may preempt this thread, so
        // they come after every packet of the step has left.
        for slot in slots.iter_mut().flatten() {
            if slot.media.frames_ready() {
                slot.media.hand_over_frames();
            }
        }
        steps = steps.wrapping_add(1);
        let now = Instant::now();
        let (cpu, switches) = thread_usage().since(usage0);
        record_step(
            shard,
            woke_late,
            Work {
                total: now.saturating_duration_since(woke),
                sends: sends_done.saturating_duration_since(woke),
                cpu,
                stepped,
                deferred: deferred.len(),
                switches,
            },
        );
        if now >= next {
            next += step_len;
            if next <= now {
                // Behind (the step took longer than a step): the next one at once, and no
                // catching up in a burst after it.
                next = now;
            }
        }
        // Until the next step, or earlier when a waker asks (an early step sends nothing
        // early: ticks keep their deadlines).
        if next > now {
            std::thread::park_timeout(next - now);
            // An early wakeup (a command) is not late; one past the timer is.
            slept_until = Some(next);
        }
    }
}

/// Packets the kernel refused since the last count, against their calls (a call that ended
/// meanwhile is not counted).
fn count_send_errors(sender: &mut Sender, slots: &mut [Option<Slot>]) {
    for (owner, e) in sender.take_errors() {
        if let Some(Some(slot)) = slots.get_mut(owner) {
            slot.media.send_errors += 1;
            debug!(error = %e, "rtp send");
        }
    }
}

/// A call's media ended: its sockets leave the poll and its slot is free again.
fn end_slot(
    poll: &Poll,
    entry: &mut Option<Slot>,
    h: &mut Hot,
    free: &mut Vec<usize>,
    phases: &mut Phases,
    i: usize,
    load: &AtomicUsize,
) {
    *h = Hot::default();
    if let Some(mut s) = entry.take() {
        let _ = poll.registry().deregister(&mut s.rtp);
        let _ = poll.registry().deregister(&mut s.rtcp);
        phases.release(s.phase);
    }
    free.push(i);
    load.fetch_sub(1, Ordering::Relaxed);
}

/// Register a new call's sockets; `false` (and the call ended) if epoll refuses them.
fn add(
    poll: &Poll,
    slots: &mut Vec<Option<Slot>>,
    hot: &mut Vec<Hot>,
    free: &mut Vec<usize>,
    phases: &mut Phases,
    c: NewCall,
    load: &AtomicUsize,
) -> bool {
    let index = free.pop().unwrap_or_else(|| {
        slots.push(None);
        hot.push(Hot::default());
        slots.len() - 1
    });
    let mut slot = Slot {
        media: c.media,
        rtp: UdpSocket::from_std(c.rtp),
        rtcp: UdpSocket::from_std(c.rtcp),
        _lease: c.lease,
        rx: c.rx,
        queued: c.queued,
        notes: c.notes,
        span: c.span,
        phase: 0,
    };
    let r = poll
        .registry()
        .register(&mut slot.rtp, token(index, Socket::Rtp), Interest::READABLE)
        .and_then(|()| {
            poll.registry().register(
                &mut slot.rtcp,
                token(index, Socket::Rtcp),
                Interest::READABLE,
            )
        });
    if let Err(e) = r {
        slot.span
            .in_scope(|| warn!(error = %e, "cannot poll the call's RTP sockets"));
        slot.media.finish(&slot.notes);
        free.push(index);
        load.fetch_sub(1, Ordering::Relaxed);
        return false;
    }
    // Its ticks in the emptiest part of the period (before its first tick: the call was
    // created moments ago and nothing has polled it since).
    let (phase, first) = phases.assign(Instant::now());
    if slot.media.session.align_ticks(first) {
        slot.phase = phase;
    } else {
        phases.release(phase);
        slot.phase = usize::MAX;
    }
    slots[index] = Some(slot);
    hot[index] = Hot {
        live: true,
        // Packets may have arrived before the registration: read once to find out.
        readable: [true, true],
        next_due: None,
    };
    true
}

/// One step of one call (slot `index`): commands (when flagged, or `check`), received
/// packets, due timers, what to send (queued in `sender`: the caller flushes); a call with
/// none of these is skipped (`now`: the step's clock, a few microseconds old at most).
/// `false` when the call's media has ended.
#[allow(clippy::too_many_arguments)]
fn step(
    slot: &mut Slot,
    index: usize,
    hot: &mut Hot,
    reader: &mut Reader,
    sender: &mut Sender,
    flags: bool,
    check: bool,
    now: Instant,
) -> bool {
    let commanded = (flags && slot.queued.swap(false, Ordering::AcqRel)) || check;
    let mut pending = commanded;
    while pending {
        match slot.rx.try_recv() {
            Ok(MediaCmd::Stop) | Err(mpsc::error::TryRecvError::Disconnected) => {
                let span = slot.span.clone();
                let _g = span.enter();
                slot.media.session.close(super::now());
                send(slot, index, sender);
                slot.media.finish(&slot.notes);
                return false;
            }
            Ok(cmd) => {
                let _g = slot.span.enter();
                slot.media.command(cmd);
            }
            Err(mpsc::error::TryRecvError::Empty) => pending = false,
        }
    }
    let idle = !commanded && hot.readable == [false, false];
    if idle && hot.next_due.is_some_and(|due| due > now) {
        return true;
    }
    let now = super::now();
    for socket in [Socket::Rtp, Socket::Rtcp] {
        let k = usize::from(socket == Socket::Rtcp);
        if !hot.readable[k] {
            continue;
        }
        let sock = if k == 0 { &slot.rtp } else { &slot.rtcp };
        let mut reads = 0;
        loop {
            if reads >= READS_PER_STEP {
                break; // still readable: the rest next step
            }
            match reader.read(sock) {
                Ok(got) => {
                    reads += got.count;
                    for i in 0..got.count {
                        if let Some((from, bytes)) = reader.datagram(i) {
                            slot.media.session.handle_input(now, socket, from, bytes);
                        }
                    }
                    if !got.more {
                        // Fewer than it had room for: the socket is empty.
                        hot.readable[k] = false;
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    hot.readable[k] = false;
                    break;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    // ICMP errors reported on the socket (port unreachable): nothing to read.
                    debug!(error = %e, "rtp recv");
                    reads += 1;
                }
            }
        }
    }
    if slot.media.session.poll_timeout().is_some_and(|d| d <= now) {
        slot.media.session.handle_timeout(now);
    }
    while let Some(ev) = slot.media.session.poll_event() {
        slot.media.on_event(ev, &slot.notes, &slot.span);
    }
    send(slot, index, sender);
    hot.next_due = slot.media.session.poll_timeout();
    true
}

/// Everything the session has to send, to `sender` (which sends without blocking: a full
/// socket buffer drops the packet; the next tick carries on, RTP tolerates loss, a stalled
/// shard would not).
fn send(slot: &mut Slot, index: usize, sender: &mut Sender) {
    while let Some(t) = slot.media.session.poll_transmit() {
        let sock = match t.socket {
            Socket::Rtp if !slot.media.sending => continue,
            Socket::Rtp => &slot.rtp,
            Socket::Rtcp => &slot.rtcp,
        };
        sender.send(sock, index, t.bytes, t.to);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_spread_calls_arriving_together_over_the_period() {
        let epoch = Instant::now();
        let ms = Duration::from_millis;
        let mut p = Phases::new(epoch, ms(2));
        assert_eq!(p.load.len(), 10);
        // Twenty calls in the same instant, 33 ms after the shard started.
        let now = epoch + ms(33);
        let got: Vec<(usize, Instant)> = (0..20).map(|_| p.assign(now)).collect();
        assert_eq!(p.load, vec![2; 10], "two per bucket");
        for (b, first) in &got {
            assert!(
                *first >= now && *first < now + ms(20),
                "{b}: within one period"
            );
            let offset = first.duration_since(epoch).as_micros() % 20_000;
            assert_eq!(
                offset,
                *b as u128 * 2_000,
                "bucket {b} starts {offset} us in"
            );
        }
        // A call ends: the next one takes its place.
        p.release(7);
        assert_eq!(p.assign(now).0, 7);
        // A 5 ms step: four buckets of 5 ms; a step longer than the period: one.
        assert_eq!(Phases::new(epoch, ms(5)).load.len(), 4);
        assert_eq!(Phases::new(epoch, ms(30)).load.len(), 1);
        assert_eq!(
            Phases::new(epoch, ms(30)).assign(epoch + ms(3)).1,
            epoch + ms(20)
        );
    }

    #[test]
    fn a_step_that_ends_late_is_remembered_with_its_cause() {
        // A shard index no machine has: other tests' real steps share the log.
        let marker = usize::MAX - 1;
        let ours = || -> Vec<SlowStep> {
            slow_steps()
                .into_iter()
                .filter(|s| s.shard == marker)
                .collect()
        };
        let count = || -> u64 {
            let mut text = String::new();
            crate::metrics::render_media_engine(&mut text);
            text.lines()
                .find_map(|l| l.strip_prefix("switchboard_media_step_seconds_count "))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let before = count();
        let ms = Duration::from_millis;
        let work = |total, cpu, stepped| Work {
            total,
            sends: total / 2,
            cpu,
            stepped,
            deferred: 3,
            switches: (1, 2),
        };
        record_step(marker, ms(1), work(ms(2), ms(2), 5));
        assert!(ours().is_empty(), "3 ms is on time");
        record_step(marker, ms(12), work(Duration::from_micros(300), ms(0), 1));
        record_step(marker, Duration::ZERO, work(ms(11), ms(4), 700));
        let slow = ours();
        assert_eq!(slow.len(), 2, "{slow:?}");
        assert_eq!((slow[0].woke_late_us, slow[0].work_us), (12_000, 300));
        assert_eq!((slow[1].woke_late_us, slow[1].work_us), (0, 11_000));
        assert_eq!((slow[1].cpu_us, slow[1].stepped), (4_000, 700));
        assert_eq!((slow[1].sends_us, slow[1].deferred), (5_500, 3));
        assert_eq!((slow[1].waits, slow[1].preemptions), (1, 2));
        assert_eq!((slow[1].cpu_us, slow[1].stepped), (4_000, 700));
        assert!(count() >= before + 3);
    }
}
