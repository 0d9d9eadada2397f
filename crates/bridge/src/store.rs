//! Call records in a database: SQLite (embedded, the default) or PostgreSQL (shared by the
//! nodes of a cluster), selected by `--database URL` (env `SWITCHBOARD_DATABASE`).
//!
//! | URL | store |
//! |---|---|
//! | `sqlite://PATH` (default `sqlite://switchboard.db`, relative to the working directory) | SQLite file, created if missing |
//! | `postgres://USER@HOST:PORT/DB` (or `postgresql://`) | PostgreSQL |
//! | `memory` | [`InMemoryStore`], nothing persisted (tests, demos) |
//!
//! # Schema
//!
//! The same for both databases; [`DbStore::open`] runs the migrations at start (idempotent,
//! versions in `schema_version`, under an advisory lock on PostgreSQL so that two nodes starting
//! together do not race):
//!
//! ```sql
//! CREATE TABLE schema_version (version BIGINT NOT NULL);
//! CREATE TABLE calls (
//!   call_id    TEXT PRIMARY KEY,  -- SIP Call-ID
//!   caller     TEXT NOT NULL,     -- caller identity (memory::caller_identity)
//!   started_at BIGINT NOT NULL,   -- ms since the Unix epoch (UTC)
//!   ended_at   BIGINT,            -- ms since the Unix epoch, NULL while the call runs
//!   outcome    TEXT,
//!   record     TEXT NOT NULL      -- the whole CallRecord as JSON: agent path with every
//!                                 -- handoff and envelope, final envelope (transcript), metrics
//! );
//! CREATE INDEX calls_caller_started ON calls (caller, started_at);
//! ```
//!
//! `record` is TEXT (not JSONB) so that one schema serves both; on PostgreSQL query it with
//! `record::jsonb`.
//!
//! # Writes never block a call
//!
//! [`MemoryStore::save`] puts the record in the local cache (an [`InMemoryStore`], so that this
//! node's reads see it at once) and in the write queue, and returns. One writer task drains the
//! queue in batches (one transaction per batch, upsert by `call_id`). When the database fails,
//! the batch goes back to the head of the queue and the writer retries with exponential backoff
//! ([`DbOptions::backoff_min`] to [`DbOptions::backoff_max`]) until it is written: nothing is
//! lost across an outage. The queue is bounded ([`DbOptions::queue_max`], 100,000 records by
//! default: about an hour of a busy node); only when that bound is hit is the oldest queued
//! record dropped, counted in [`StoreStats::dropped`] and logged. [`DbStore::stats`] gives the
//! queue length, written, dropped and failed-attempt counts (also through the trait object:
//! [`MemoryStore::write_stats`], for `/metrics`); [`DbStore::flush_queue`] (or
//! [`MemoryStore::flush`]) waits until the queue is empty: `switchboard run` calls it for up to
//! 10 s after draining at SIGTERM/SIGINT.
//!
//! # Reads see other nodes
//!
//! `last_for`, `recent_for` and `fetch` query the database (so a caller's memory written by
//! another node is seen), bounded by [`DbOptions::read_timeout`] (250 ms by default). On an error
//! or timeout they answer from the local cache instead (and for [`DOWN_HOLD`] after a failed read
//! or write, reads go to the cache at once: calls starting during an outage do not wait), and the cache is merged into every
//! answer so that records still queued (database down) are not missed. `get` is local only (the
//! cache: this node's recent records) and never waits.
//!
//! # Database down at start
//!
//! [`DbStore::open`] refuses to start: a bad URL, an SQLite file that cannot be created or a
//! PostgreSQL server that does not answer within [`DbOptions::connect_timeout`] (5 s) is an
//! error naming `--database`, and `switchboard run` exits with status 1. A supervisor (systemd
//! `Restart=`, Docker `restart:`, Kubernetes) restarts it until the database is up; the
//! migrations need it anyway. Once started, outages are ridden out by the queue.

use std::collections::{HashMap, VecDeque};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::Row;
use tokio::sync::Notify;

use crate::memory::{CallRecord, InMemoryStore, MemoryStore, StoreFuture};

/// The default `--database`.
pub const DEFAULT_DATABASE: &str = "sqlite://switchboard.db";

/// Why a store could not be opened. The message names the `--database` flag.
#[derive(Debug, thiserror::Error)]
#[error("--database {url}: {reason}")]
pub struct StoreError {
    /// The URL, with any password masked.
    pub url: String,
    pub reason: String,
}

/// Tuning of a [`DbStore`].
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// Records queued while the database is slow or down; beyond it the oldest is dropped.
    pub queue_max: usize,
    /// Records written per transaction.
    pub batch_max: usize,
    /// Longest wait of a read before it answers from the cache.
    pub read_timeout: Duration,
    /// Longest wait for the database at start.
    pub connect_timeout: Duration,
    /// Longest wait of one batch write (a connection included) before it counts as failed.
    pub write_timeout: Duration,
    /// First retry delay after a failed write; doubles up to `backoff_max`.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Records per caller and callers kept in the local cache.
    pub cache_per_caller: usize,
    pub cache_callers: usize,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            queue_max: 100_000,
            batch_max: 64,
            read_timeout: Duration::from_millis(250),
            connect_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(5),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            cache_per_caller: crate::memory::DEFAULT_MAX_PER_CALLER,
            cache_callers: crate::memory::DEFAULT_MAX_CALLERS,
        }
    }
}

/// Counters of a [`DbStore`]'s writer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StoreStats {
    /// Records waiting to be written now (including a batch being written).
    pub queued: u64,
    /// Records written since start.
    pub written: u64,
    /// Records dropped because the queue was full (never while it has room).
    pub dropped: u64,
    /// Failed write attempts (a batch that failed counts once per attempt).
    pub write_failures: u64,
    /// Reads that answered from the cache because the database failed or was slow.
    pub read_fallbacks: u64,
}

/// Opens the store `--database url` names: [`InMemoryStore`] for `memory`, else a [`DbStore`]
/// (migrations run, writer task started).
pub async fn open(url: &str) -> Result<Arc<dyn MemoryStore>, StoreError> {
    if url.trim() == "memory" {
        return Ok(Arc::new(InMemoryStore::default()));
    }
    Ok(DbStore::open(url, DbOptions::default()).await?)
}

#[derive(Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Pg(PgPool),
}

/// A [`MemoryStore`] on SQLite or PostgreSQL (see the module docs).
pub struct DbStore {
    pool: Pool,
    opts: DbOptions,
    cache: InMemoryStore,
    shared: Arc<Shared>,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Notify,
    /// Signalled whenever the queue empties.
    drained: Notify,
    written: AtomicU64,
    dropped: AtomicU64,
    write_failures: AtomicU64,
    read_fallbacks: AtomicU64,
    /// Until when (ms since `epoch`) reads skip the database: it just failed.
    down_until_ms: AtomicU64,
    epoch: std::time::Instant,
}

/// After a failed read or write, reads answer from the cache for this long before asking the
/// database again (so that calls starting during an outage do not each wait the read timeout).
pub const DOWN_HOLD: Duration = Duration::from_secs(1);

impl Shared {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
    fn mark_down(&self) {
        let until = self.now_ms() + DOWN_HOLD.as_millis() as u64;
        self.down_until_ms.store(until, Ordering::Relaxed);
    }
    fn mark_up(&self) {
        self.down_until_ms.store(0, Ordering::Relaxed);
    }
    fn looks_down(&self) -> bool {
        self.now_ms() < self.down_until_ms.load(Ordering::Relaxed)
    }
}

#[derive(Default)]
struct Queue {
    records: VecDeque<CallRecord>,
    /// Records taken by the writer and not yet written.
    in_flight: usize,
    closed: bool,
}

impl DbStore {
    /// Connects, runs the migrations and starts the writer task (needs a Tokio runtime).
    pub async fn open(url: &str, opts: DbOptions) -> Result<Arc<Self>, StoreError> {
        let err = |reason: String| StoreError {
            url: mask_password(url),
            reason,
        };
        let pool = if let Some(rest) = url.strip_prefix("sqlite:") {
            if rest.trim_start_matches('/').is_empty() {
                return Err(err("no file path after sqlite://".into()));
            }
            let o = SqliteConnectOptions::from_str(url)
                .map_err(|e| err(format!("bad SQLite URL: {e}")))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(2));
            let pool = tokio::time::timeout(
                opts.connect_timeout,
                SqlitePoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(opts.write_timeout.max(opts.read_timeout))
                    .connect_with(o),
            )
            .await
            .map_err(|_| err("timed out opening the SQLite file".into()))?
            .map_err(|e| err(format!("cannot open the SQLite file: {e}")))?;
            Pool::Sqlite(pool)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let o = PgConnectOptions::from_str(url)
                .map_err(|e| err(format!("bad PostgreSQL URL: {e}")))?;
            // One plain connection first: the pool retries until its timeout and hides why.
            let probe = tokio::time::timeout(
                opts.connect_timeout,
                <sqlx::PgConnection as sqlx::Connection>::connect_with(&o),
            )
            .await
            .map_err(|_| err("PostgreSQL did not answer in time (refusing to start)".into()))?
            .map_err(|e| {
                err(format!(
                    "cannot connect to PostgreSQL (refusing to start): {e}"
                ))
            })?;
            let _ = sqlx::Connection::close(probe).await;
            let pool = tokio::time::timeout(
                opts.connect_timeout,
                PgPoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(opts.write_timeout.max(opts.read_timeout))
                    .connect_with(o),
            )
            .await
            .map_err(|_| err("PostgreSQL did not answer in time (refusing to start)".into()))?
            .map_err(|e| {
                err(format!(
                    "cannot connect to PostgreSQL (refusing to start): {e}"
                ))
            })?;
            Pool::Pg(pool)
        } else {
            return Err(err(
                "expected sqlite://PATH, postgres://... or memory".into()
            ));
        };
        tokio::time::timeout(opts.connect_timeout * 2, migrate(&pool))
            .await
            .map_err(|_| err("migrations timed out".into()))?
            .map_err(|e| err(format!("migrations failed: {e}")))?;
        let store = Arc::new(DbStore {
            pool: pool.clone(),
            cache: InMemoryStore::new(opts.cache_per_caller, opts.cache_callers),
            opts: opts.clone(),
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue::default()),
                wake: Notify::new(),
                drained: Notify::new(),
                written: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                write_failures: AtomicU64::new(0),
                read_fallbacks: AtomicU64::new(0),
                down_until_ms: AtomicU64::new(0),
                epoch: std::time::Instant::now(),
            }),
        });
        tokio::spawn(writer(pool, opts, store.shared.clone()));
        Ok(store)
    }

    /// The writer's counters.
    pub fn stats(&self) -> StoreStats {
        let s = &self.shared;
        let queued = s
            .queue
            .lock()
            .map(|q| q.records.len() + q.in_flight)
            .unwrap_or_default();
        StoreStats {
            queued: queued as u64,
            written: s.written.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            write_failures: s.write_failures.load(Ordering::Relaxed),
            read_fallbacks: s.read_fallbacks.load(Ordering::Relaxed),
        }
    }

    /// Waits until every record saved so far is written, up to `timeout`; whether it was.
    pub async fn flush_queue(&self, timeout: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.shared.drained.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.stats().queued == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }

    /// Records in the `calls` table (all callers); `None` when the database does not answer.
    pub async fn count(&self) -> Option<u64> {
        let q = "SELECT COUNT(*) FROM calls";
        let n: i64 = match &self.pool {
            Pool::Sqlite(p) => sqlx::query_scalar(q).fetch_one(p).await.ok()?,
            Pool::Pg(p) => sqlx::query_scalar(q).fetch_one(p).await.ok()?,
        };
        u64::try_from(n).ok()
    }

    /// Stops the writer after the queue is empty (or at once if the database is down) and
    /// closes the pool.
    pub async fn close(&self, timeout: Duration) {
        self.flush_queue(timeout).await;
        if let Ok(mut q) = self.shared.queue.lock() {
            q.closed = true;
        }
        self.shared.wake.notify_one();
        match &self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Pg(p) => p.close().await,
        }
    }

    async fn query_records(
        &self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> Result<Vec<CallRecord>, ()> {
        if self.shared.looks_down() {
            self.shared.read_fallbacks.fetch_add(1, Ordering::Relaxed);
            return Err(());
        }
        let run = async {
            let rows: Vec<String> = match &self.pool {
                Pool::Sqlite(p) => {
                    let mut q = sqlx::query(sql);
                    for a in args {
                        q = match a {
                            Arg::Text(s) => q.bind(*s),
                            Arg::Int(i) => q.bind(*i),
                        };
                    }
                    q.fetch_all(p)
                        .await?
                        .iter()
                        .map(|r| r.try_get::<String, _>(0))
                        .collect::<Result<_, _>>()?
                }
                Pool::Pg(p) => {
                    let mut q = sqlx::query(sql);
                    for a in args {
                        q = match a {
                            Arg::Text(s) => q.bind(*s),
                            Arg::Int(i) => q.bind(*i),
                        };
                    }
                    q.fetch_all(p)
                        .await?
                        .iter()
                        .map(|r| r.try_get::<String, _>(0))
                        .collect::<Result<_, _>>()?
                }
            };
            Ok::<_, sqlx::Error>(rows)
        };
        match tokio::time::timeout(self.opts.read_timeout, run).await {
            Ok(Ok(rows)) => Ok(rows
                .iter()
                .filter_map(|json| match serde_json::from_str(json) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        tracing::warn!(error = %e, "unreadable call record in the database");
                        None
                    }
                })
                .collect()),
            Ok(Err(e)) => {
                self.shared.mark_down();
                self.shared.read_fallbacks.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "database read failed; answering from the local cache");
                Err(())
            }
            Err(_) => {
                self.shared.mark_down();
                self.shared.read_fallbacks.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(timeout = ?self.opts.read_timeout, "database read timed out; answering from the local cache");
                Err(())
            }
        }
    }

    async fn recent(&self, caller: &str, since: SystemTime) -> Vec<CallRecord> {
        let cached = futures_now(self.cache.recent_for(caller, since));
        let db = self
            .query_records(
                "SELECT record FROM calls WHERE caller = $1 AND started_at >= $2 \
                 ORDER BY started_at DESC LIMIT 100",
                &[Arg::Text(caller), Arg::Int(epoch_ms(since))],
            )
            .await
            .unwrap_or_default();
        merge(db, cached)
    }
}

enum Arg<'a> {
    Text(&'a str),
    Int(i64),
}

/// Newest first by `started_at`, one per `call_id` (the cache's copy wins: it is this node's
/// latest, possibly not written yet).
fn merge(db: Vec<CallRecord>, cached: Vec<CallRecord>) -> Vec<CallRecord> {
    let mut by_id: HashMap<String, CallRecord> = HashMap::new();
    for r in db.into_iter().chain(cached) {
        by_id.insert(r.call_id.clone(), r);
    }
    let mut out: Vec<CallRecord> = by_id.into_values().collect();
    out.sort_by(|a, b| {
        b.started_at
            .cmp(&a.started_at)
            .then_with(|| b.call_id.cmp(&a.call_id))
    });
    out
}

/// Polls a future that is ready at once (the [`InMemoryStore`]'s).
fn futures_now<T>(f: StoreFuture<'_, T>) -> T {
    let mut f = f;
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => unreachable!("InMemoryStore futures are ready at once"),
    }
}

impl MemoryStore for DbStore {
    fn last_for<'a>(&'a self, caller: &'a str) -> StoreFuture<'a, Option<CallRecord>> {
        Box::pin(async move {
            let cached = futures_now(self.cache.last_for(caller));
            let db = self
                .query_records(
                    "SELECT record FROM calls WHERE caller = $1 ORDER BY started_at DESC LIMIT 1",
                    &[Arg::Text(caller)],
                )
                .await
                .unwrap_or_default();
            merge(db, cached.into_iter().collect()).into_iter().next()
        })
    }

    fn recent_for<'a>(
        &'a self,
        caller: &'a str,
        since: SystemTime,
    ) -> StoreFuture<'a, Vec<CallRecord>> {
        Box::pin(self.recent(caller, since))
    }

    fn save(&self, record: CallRecord) {
        self.cache.save(record.clone());
        let mut dropped = None;
        if let Ok(mut q) = self.shared.queue.lock() {
            q.records.push_back(record);
            if q.records.len() + q.in_flight > self.opts.queue_max {
                dropped = q.records.pop_front();
            }
        }
        if let Some(old) = dropped {
            let n = self.shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::error!(call_id = %old.call_id, dropped_total = n, queue_max = self.opts.queue_max, "record write queue full (database down too long): oldest record dropped");
        }
        self.shared.wake.notify_one();
    }

    fn get(&self, call_id: &str) -> Option<CallRecord> {
        self.cache.get(call_id)
    }

    fn flush(&self, timeout: Duration) -> StoreFuture<'_, bool> {
        Box::pin(self.flush_queue(timeout))
    }

    fn write_stats(&self) -> Option<StoreStats> {
        Some(self.stats())
    }

    fn fetch<'a>(&'a self, call_id: &'a str) -> StoreFuture<'a, Option<CallRecord>> {
        Box::pin(async move {
            if let Some(r) = self.cache.get(call_id) {
                return Some(r);
            }
            self.query_records(
                "SELECT record FROM calls WHERE call_id = $1",
                &[Arg::Text(call_id)],
            )
            .await
            .ok()?
            .into_iter()
            .next()
        })
    }
}

/// The writer task: drains the queue in batches, retrying a failed batch with backoff.
async fn writer(pool: Pool, opts: DbOptions, shared: Arc<Shared>) {
    let mut backoff = opts.backoff_min;
    loop {
        let batch: Vec<CallRecord> = {
            let notified = shared.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let taken: Vec<CallRecord> = match shared.queue.lock() {
                Ok(mut q) => {
                    if q.closed && q.records.is_empty() {
                        return;
                    }
                    let n = q.records.len().min(opts.batch_max.max(1));
                    q.in_flight = n;
                    q.records.drain(..n).collect()
                }
                Err(_) => return,
            };
            if taken.is_empty() {
                shared.drained.notify_waiters();
                notified.await;
                continue;
            }
            taken
        };
        let result =
            match tokio::time::timeout(opts.write_timeout, write_batch(&pool, &batch)).await {
                Ok(r) => r,
                Err(_) => Err(sqlx::Error::PoolTimedOut),
            };
        match result {
            Ok(()) => {
                shared.mark_up();
                backoff = opts.backoff_min;
                shared
                    .written
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                if let Ok(mut q) = shared.queue.lock() {
                    q.in_flight = 0;
                }
            }
            Err(e) => {
                shared.mark_down();
                let fails = shared.write_failures.fetch_add(1, Ordering::Relaxed) + 1;
                let mut dropped = 0u64;
                let queued = if let Ok(mut q) = shared.queue.lock() {
                    q.in_flight = 0;
                    for r in batch.into_iter().rev() {
                        q.records.push_front(r);
                    }
                    while q.records.len() > opts.queue_max {
                        q.records.pop_front();
                        dropped += 1;
                    }
                    q.records.len()
                } else {
                    0
                };
                if dropped > 0 {
                    let n = shared.dropped.fetch_add(dropped, Ordering::Relaxed) + dropped;
                    tracing::error!(
                        dropped,
                        dropped_total = n,
                        "record write queue full: oldest records dropped"
                    );
                }
                tracing::warn!(error = %e, queued, failures = fails, retry_in = ?backoff, "writing call records failed; queued for retry");
                let closed = shared.queue.lock().map(|q| q.closed).unwrap_or(true);
                if closed {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(opts.backoff_max);
            }
        }
    }
}

const UPSERT: &str = "INSERT INTO calls (call_id, caller, started_at, ended_at, outcome, record) \
     VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (call_id) DO UPDATE SET caller = excluded.caller, \
     started_at = excluded.started_at, ended_at = excluded.ended_at, \
     outcome = excluded.outcome, record = excluded.record";

async fn write_batch(pool: &Pool, batch: &[CallRecord]) -> Result<(), sqlx::Error> {
    let rows: Vec<(&CallRecord, String)> = batch
        .iter()
        .filter_map(|r| match serde_json::to_string(r) {
            Ok(json) => Some((r, json)),
            Err(e) => {
                tracing::error!(call_id = %r.call_id, error = %e, "call record not serialisable; skipped");
                None
            }
        })
        .collect();
    macro_rules! write_all {
        ($p:expr) => {{
            let mut tx = $p.begin().await?;
            for (r, json) in &rows {
                sqlx::query(UPSERT)
                    .bind(r.call_id.as_str())
                    .bind(r.caller.as_str())
                    .bind(epoch_ms(r.started_at))
                    .bind(r.ended_at.map(epoch_ms))
                    .bind(r.outcome.as_deref())
                    .bind(json.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        }};
    }
    match pool {
        Pool::Sqlite(p) => write_all!(p),
        Pool::Pg(p) => write_all!(p),
    }
}

/// The migrations, in order; each runs once (its number goes to `schema_version`).
const MIGRATIONS: &[&[&str]] = &[&[
    "CREATE TABLE IF NOT EXISTS calls (\
       call_id TEXT PRIMARY KEY, \
       caller TEXT NOT NULL, \
       started_at BIGINT NOT NULL, \
       ended_at BIGINT, \
       outcome TEXT, \
       record TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS calls_caller_started ON calls (caller, started_at)",
]];

/// Latest schema version [`DbStore::open`] migrates to.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

async fn migrate(pool: &Pool) -> Result<(), sqlx::Error> {
    macro_rules! run {
        ($p:expr, $lock:expr, $unlock:expr) => {{
            let mut conn = $p.acquire().await?;
            if let Some(lock) = $lock {
                sqlx::query(lock).execute(&mut *conn).await?;
            }
            let result = async {
                sqlx::query("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
                    .execute(&mut *conn)
                    .await?;
                let current: i64 =
                    sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM schema_version")
                        .fetch_one(&mut *conn)
                        .await?;
                for (i, steps) in MIGRATIONS.iter().enumerate() {
                    let version = i as i64 + 1;
                    if version <= current {
                        continue;
                    }
                    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                    for step in *steps {
                        sqlx::query(*step).execute(&mut *tx).await?;
                    }
                    sqlx::query("INSERT INTO schema_version (version) VALUES ($1)")
                        .bind(version)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    tracing::info!(version, "database migrated");
                }
                Ok::<(), sqlx::Error>(())
            }
            .await;
            if let Some(unlock) = $unlock {
                let _ = sqlx::query(unlock).execute(&mut *conn).await;
            }
            result
        }};
    }
    match pool {
        Pool::Sqlite(p) => run!(p, None::<&str>, None::<&str>),
        Pool::Pg(p) => run!(
            p,
            Some("SELECT pg_advisory_lock(7243507)"),
            Some("SELECT pg_advisory_unlock(7243507)")
        ),
    }
}

/// Milliseconds since the Unix epoch (0 before it, saturating).
fn epoch_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `url` with the password (between `user:` and `@`) replaced by `***`.
pub fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked_in_errors() {
        assert_eq!(
            mask_password("postgres://sb:secret@db:5432/sb"),
            "postgres://sb:***@db:5432/sb"
        );
        assert_eq!(mask_password("postgres://sb@db/sb"), "postgres://sb@db/sb");
        assert_eq!(mask_password("sqlite://x.db"), "sqlite://x.db");
    }

    #[tokio::test]
    async fn a_bad_url_names_the_flag() {
        let e = open("mysql://x").await.err().unwrap().to_string();
        assert!(e.starts_with("--database mysql://x:"), "{e}");
        let e = open("sqlite://").await.err().unwrap().to_string();
        assert!(e.contains("--database"), "{e}");
    }
}
