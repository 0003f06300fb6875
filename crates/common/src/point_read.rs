//! Point reads: one autocommit `SELECT` on a connection kept out of the pool between reads.
//!
//! sqlx's pool pings every connection as it goes back to the pool (`PoolConnection`'s drop: a
//! `Sync` round trip on PostgreSQL, a hand-off to the connection's worker thread and back on
//! SQLite), whatever the connection did. For a read that is one statement, that ping is a second
//! round trip per call: 30 % of the registry's CPU per GetEnterprise on PostgreSQL in the
//! `qilu-bench` profile (BENCHMARKS.md). [`PointReads`] checks out up to half the pool's
//! connections, runs each read on one of them and keeps it for the next read instead of giving it
//! back.
//!
//! What keeps this as safe as the pool:
//! * A connection is kept only after a read that **completed**. A read that failed, or whose
//!   call was cancelled mid-statement (its future dropped), hands its connection back to the
//!   pool, which pings it and closes it if it is broken — the pool's own clean-up.
//! * A connection not used for [`IDLE_PING_AFTER`] is handed back to the pool and a connection
//!   acquired in its place, so one left dead while idle (a database restart) is checked by the
//!   pool's idle ping before use, as every pooled connection is.
//! * Only statements that change nothing run here (the caller's contract: [`PointReads`] is for
//!   `SELECT`s by key); writes keep going through [`crate::write`].
//! * At most half of the pool's connections are kept (at least one), so writes and other reads
//!   always find the rest; waiting for one of them is bounded by the pool's acquire timeout and
//!   fails as the pool does (UNAVAILABLE).
//!
//! The SQL text is the same on both backends: `$1`, `$2`… placeholders (SQLite reads `$N` as
//! parameter N), parameters bound as text.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sea_orm::sqlx::{self, Postgres, SqlSafeStr, Sqlite, pool::PoolConnection};
use sea_orm::{
    ConnAcquireErr, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, QueryResult, RuntimeErr,
    Statement,
};
use tokio::sync::{Semaphore, SemaphorePermit};

/// A kept connection unused this long goes back to the pool (which pings idle connections
/// before handing them out) instead of serving the next read unchecked.
pub const IDLE_PING_AFTER: Duration = Duration::from_secs(1);

/// Point reads over one database (cheap to clone; clones share the kept connections).
#[derive(Clone)]
pub struct PointReads {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PointReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &*self.inner {
            Inner::Postgres(lanes) => format!("PostgreSQL, {} lanes", lanes.size),
            Inner::Sqlite(lanes) => format!("SQLite, {} lanes", lanes.size),
            Inner::Pool(_) => "through the pool".to_string(),
        };
        f.debug_struct("PointReads").field("kind", &kind).finish()
    }
}

enum Inner {
    Postgres(Lanes<Postgres>),
    Sqlite(Lanes<Sqlite>),
    /// Any other connection (no sqlx pool to keep connections of): plain pooled reads.
    Pool(DatabaseConnection),
}

/// Kept connections of one sqlx pool.
struct Lanes<DB: sqlx::Database> {
    pool: sqlx::Pool<DB>,
    /// How many connections may be checked out for reads at once.
    permits: Semaphore,
    size: usize,
    /// Connections between reads, most recently used last.
    idle: Mutex<Vec<Kept<DB>>>,
    acquire_timeout: Duration,
}

struct Kept<DB: sqlx::Database> {
    conn: PoolConnection<DB>,
    last_used: Instant,
}

impl PointReads {
    /// Point reads over `db`'s pool: up to half its `max_connections` (at least one) kept.
    pub fn new(db: &DatabaseConnection) -> Self {
        let inner = match db.get_database_backend() {
            DbBackend::Postgres => Inner::Postgres(Lanes::new(db.get_postgres_connection_pool())),
            DbBackend::Sqlite => Inner::Sqlite(Lanes::new(db.get_sqlite_connection_pool())),
            _ => Inner::Pool(db.clone()),
        };
        PointReads {
            inner: Arc::new(inner),
        }
    }

    /// Runs `sql` (one `SELECT`, `$N` placeholders) with `params` bound as text; its first row.
    pub async fn one(
        &self,
        sql: &'static str,
        params: &[&str],
    ) -> Result<Option<QueryResult>, DbErr> {
        self.first_row(sql.into_sql_str(), params).await
    }

    async fn first_row(
        &self,
        sql: sqlx::SqlStr,
        params: &[&str],
    ) -> Result<Option<QueryResult>, DbErr> {
        match &*self.inner {
            Inner::Postgres(lanes) => {
                let (permit, mut kept) = lanes.take().await?;
                let mut query = sqlx::query::<Postgres>(sql);
                for p in params {
                    query = query.bind(*p);
                }
                let row = query.fetch_optional(&mut *kept.conn).await;
                lanes.finish(permit, kept, row.map(|r| r.map(QueryResult::from)))
            }
            Inner::Sqlite(lanes) => {
                let (permit, mut kept) = lanes.take().await?;
                let mut query = sqlx::query::<Sqlite>(sql);
                for p in params {
                    query = query.bind(*p);
                }
                let row = query.fetch_optional(&mut *kept.conn).await;
                lanes.finish(permit, kept, row.map(|r| r.map(QueryResult::from)))
            }
            Inner::Pool(db) => {
                let values: Vec<sea_orm::Value> = params.iter().map(|p| (*p).into()).collect();
                db.query_one_raw(Statement::from_sql_and_values(
                    db.get_database_backend(),
                    sql.as_str(),
                    values,
                ))
                .await
            }
        }
    }

    /// Runs `sql` with `keys` as `$1` (a `text[]` on PostgreSQL, a JSON array on SQLite) and
    /// `params` as `$2`… (text); all its rows. Only for PostgreSQL and SQLite (the
    /// [`SharedReads`] that calls it never does otherwise).
    async fn rows_for_keys(
        &self,
        sql: Arc<str>,
        keys: &[&str],
        params: &[&str],
    ) -> Result<Vec<QueryResult>, DbErr> {
        match &*self.inner {
            Inner::Postgres(lanes) => {
                let (permit, mut kept) = lanes.take().await?;
                let mut query = sqlx::query::<Postgres>(sqlx::AssertSqlSafe(sql)).bind(keys);
                for p in params {
                    query = query.bind(*p);
                }
                let rows = query.fetch_all(&mut *kept.conn).await;
                lanes.finish(
                    permit,
                    kept,
                    rows.map(|r| r.into_iter().map(QueryResult::from).collect()),
                )
            }
            Inner::Sqlite(lanes) => {
                let keys = serde_json::to_string(keys).map_err(|e| DbErr::Json(e.to_string()))?;
                let (permit, mut kept) = lanes.take().await?;
                let mut query = sqlx::query::<Sqlite>(sqlx::AssertSqlSafe(sql)).bind(keys);
                for p in params {
                    query = query.bind(*p);
                }
                let rows = query.fetch_all(&mut *kept.conn).await;
                lanes.finish(
                    permit,
                    kept,
                    rows.map(|r| r.into_iter().map(QueryResult::from).collect()),
                )
            }
            Inner::Pool(_) => Err(DbErr::Custom(
                "shared keyed reads need PostgreSQL or SQLite".into(),
            )),
        }
    }
}

impl<DB: sqlx::Database> Lanes<DB> {
    fn new(pool: &sqlx::Pool<DB>) -> Self {
        let options = pool.options();
        let size = (options.get_max_connections() as usize / 2).max(1);
        Lanes {
            pool: pool.clone(),
            permits: Semaphore::new(size),
            size,
            idle: Mutex::new(Vec::with_capacity(size)),
            acquire_timeout: options.get_acquire_timeout(),
        }
    }

    /// A permit and a connection: a kept one used within [`IDLE_PING_AFTER`], else a fresh
    /// one from the pool (a stale kept one goes back to the pool first).
    async fn take(&self) -> Result<(SemaphorePermit<'_>, Kept<DB>), DbErr> {
        let started = Instant::now();
        let permit = tokio::time::timeout(self.acquire_timeout, self.permits.acquire())
            .await
            .map_err(|_| DbErr::ConnectionAcquire(ConnAcquireErr::Timeout))?
            .map_err(|_| DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed))?;
        let reusable = {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            idle.pop()
        };
        if let Some(kept) = reusable {
            if kept.last_used.elapsed() < IDLE_PING_AFTER {
                return Ok((permit, kept));
            }
            // Stale: back to the pool (dropping it does that), which checks it before reuse.
            drop(kept);
        }
        let left = self.acquire_timeout.saturating_sub(started.elapsed());
        let conn = match tokio::time::timeout(left, self.pool.acquire()).await {
            Err(_) | Ok(Err(sqlx::Error::PoolTimedOut)) => {
                return Err(DbErr::ConnectionAcquire(ConnAcquireErr::Timeout));
            }
            Ok(Err(e)) => return Err(DbErr::Conn(RuntimeErr::SqlxError(Arc::new(e)))),
            Ok(Ok(conn)) => conn,
        };
        Ok((
            permit,
            Kept {
                conn,
                last_used: Instant::now(),
            },
        ))
    }

    /// Keeps the connection after a completed read; hands it back to the pool after a failed
    /// one (the pool pings it and closes it if broken). The permit is released last, so the
    /// next reader finds the kept connection.
    fn finish<T>(
        &self,
        permit: SemaphorePermit<'_>,
        mut kept: Kept<DB>,
        result: Result<T, sqlx::Error>,
    ) -> Result<T, DbErr> {
        let out = match result {
            Ok(value) => {
                kept.last_used = Instant::now();
                self.idle
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(kept);
                Ok(value)
            }
            Err(e) => {
                drop(kept);
                Err(DbErr::Query(RuntimeErr::SqlxError(Arc::new(e))))
            }
        };
        drop(permit);
        out
    }
}

/// Most keys one shared read asks for (a larger queue is answered by several reads).
pub const MAX_SHARED_KEYS: usize = 64;

/// The SQL of a keyed read: `select` is `SELECT … FROM …` without a `WHERE`, whose parameters
/// other than the key are `$2`, `$3`… (the same for every caller of one read); `key` is the
/// (qualified) key column. [`SharedReads`] appends the key condition: `key = $1` for one key,
/// `key = ANY($1)` (a `text[]`) on PostgreSQL and `key IN (SELECT value FROM json_each($1))`
/// (a JSON array) on SQLite for several.
#[derive(Debug, Clone)]
pub struct KeyedSql {
    /// `SELECT … FROM …`, no `WHERE`.
    pub select: String,
    /// The key column, qualified as `select` needs it.
    pub key: &'static str,
}

/// Turns one row of a keyed read into the key it is for and its value.
pub type Decode<V> = fn(&QueryResult) -> Result<(String, V), DbErr>;

/// Keyed reads that concurrent callers share: callers asking while a read is in flight are
/// answered together, by one statement for all their keys, when it is done.
///
/// Each kept connection ([`PointReads`]) has a reader task. A caller queues its key and waits
/// for its answer. A reader takes the oldest waiting key together with every other waiting key
/// of the same read (same parameters, up to [`MAX_SHARED_KEYS`] distinct keys), runs one
/// `SELECT` for them and answers each caller with its own row (or none). Alone, a caller is
/// answered by a one-key read at once, so sharing adds no wait. While a statement is in flight,
/// another reader starts one only when a full batch waits: fewer, fuller statements, since one
/// statement for ten keys costs PostgreSQL about 1.4 times one for a single key, and each
/// statement costs the service a round trip, a connection hand-off and a result to decode. In
/// `qilu-bench` (64 callers) GetEnterprise on PostgreSQL served 15,468 calls/s with one
/// statement in flight at a time against 9,854 with up to four (BENCHMARKS.md).
///
/// What each caller gets is what its own read would have returned at some instant after it
/// asked: a reader takes only keys already queued, and its statement (autocommit, so one
/// snapshot) starts after it took them, so it sees every write committed before any of its
/// callers asked. A caller that goes away is simply not answered; a reader runs in its own
/// task, so one caller giving up never cancels another's read. A failed statement fails every
/// caller it served with the same error (and hands its connection back to the pool, as
/// [`PointReads::one`] does).
pub struct SharedReads<V> {
    shared: Arc<Shared<V>>,
}

impl<V> std::fmt::Debug for SharedReads<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedReads")
            .field("reads", &self.shared.reads)
            .field("key", &self.shared.key)
            .finish()
    }
}

struct Shared<V> {
    reads: PointReads,
    key: &'static str,
    /// `… WHERE key = $1`.
    one_sql: Arc<str>,
    /// `… WHERE key = ANY($1)` / `IN (SELECT value FROM json_each($1))`.
    many_sql: Arc<str>,
    decode: Decode<V>,
    queue: Mutex<Queue<V>>,
    ready: tokio::sync::Notify,
    closed: AtomicBool,
    /// Reader tasks alive (they stop when the [`SharedReads`] is dropped, or with the runtime
    /// they were spawned on; the next read then starts them again).
    readers: AtomicUsize,
    statements: AtomicU64,
    answered: AtomicU64,
}

/// What a [`SharedReads`] has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sharing {
    /// Statements run.
    pub statements: u64,
    /// Callers answered by them (more than `statements` when reads were shared).
    pub answered: u64,
}

struct Queue<V> {
    waiting: std::collections::VecDeque<Waiting<V>>,
    /// Readers with a statement in flight.
    reading: usize,
}

struct Waiting<V> {
    key: String,
    params: Vec<String>,
    reply: tokio::sync::oneshot::Sender<Result<Option<V>, DbErr>>,
}

impl<V> Drop for SharedReads<V> {
    fn drop(&mut self) {
        // The readers hold the shared state; tell them to stop.
        self.shared.closed.store(true, Ordering::Release);
        self.shared.ready.notify_waiters();
    }
}

impl<V: Clone + Send + Sync + 'static> SharedReads<V> {
    /// Shared reads of `sql` over `reads`' kept connections, rows turned into values by
    /// `decode`. The reader tasks start with the first read (on the runtime it runs on).
    pub fn new(reads: &PointReads, sql: KeyedSql, decode: Decode<V>) -> Self {
        let many = match &*reads.inner {
            Inner::Sqlite(_) => "IN (SELECT value FROM json_each($1))",
            _ => "= ANY($1)",
        };
        SharedReads {
            shared: Arc::new(Shared {
                reads: reads.clone(),
                key: sql.key,
                one_sql: format!("{} WHERE {} = $1", sql.select, sql.key).into(),
                many_sql: format!("{} WHERE {} {many}", sql.select, sql.key).into(),
                decode,
                queue: Mutex::new(Queue {
                    waiting: std::collections::VecDeque::new(),
                    reading: 0,
                }),
                ready: tokio::sync::Notify::new(),
                closed: AtomicBool::new(false),
                readers: AtomicUsize::new(0),
                statements: AtomicU64::new(0),
                answered: AtomicU64::new(0),
            }),
        }
    }

    /// Statements run and callers answered so far.
    pub fn sharing(&self) -> Sharing {
        Sharing {
            statements: self.shared.statements.load(Ordering::Relaxed),
            answered: self.shared.answered.load(Ordering::Relaxed),
        }
    }

    /// The value for `key` (`None`: no row), `params` bound as `$2`, `$3`….
    pub async fn get(&self, key: &str, params: &[&str]) -> Result<Option<V>, DbErr> {
        let shared = &self.shared;
        let readers = match &*shared.reads.inner {
            Inner::Postgres(lanes) => lanes.size,
            Inner::Sqlite(lanes) => lanes.size,
            Inner::Pool(_) => {
                // No kept connections to share: one read per call.
                let mut all = Vec::with_capacity(params.len() + 1);
                all.push(key);
                all.extend_from_slice(params);
                let sql = sqlx::AssertSqlSafe(shared.one_sql.clone()).into_sql_str();
                return match shared.reads.first_row(sql, &all).await? {
                    Some(row) => Ok(Some((shared.decode)(&row)?.1)),
                    None => Ok(None),
                };
            }
        };
        if shared
            .readers
            .compare_exchange(0, readers, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            for _ in 0..readers {
                tokio::spawn(read_for_waiting(Reader {
                    shared: shared.clone(),
                    reading: false,
                }));
            }
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        let wake = {
            let mut queue = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.waiting.push_back(Waiting {
                key: key.to_owned(),
                params: params.iter().map(|p| (*p).to_owned()).collect(),
                reply,
            });
            // A reader in flight takes this key when it is done, unless a full batch waits.
            queue.reading == 0 || queue.waiting.len() >= MAX_SHARED_KEYS
        };
        if wake {
            shared.ready.notify_one();
        }
        // A reader always answers what it took; no answer means the readers are gone (the
        // runtime is shutting down).
        answer.await.unwrap_or(Err(DbErr::ConnectionAcquire(
            ConnAcquireErr::ConnectionClosed,
        )))
    }
}

/// A reader task's hold on the shared state; counts itself out (and its statement, if one was
/// in flight) when the task ends or is dropped with its runtime.
struct Reader<V> {
    shared: Arc<Shared<V>>,
    /// Counted in `Queue::reading`.
    reading: bool,
}

impl<V> Drop for Reader<V> {
    fn drop(&mut self) {
        if self.reading {
            let mut queue = self
                .shared
                .queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            queue.reading = queue.reading.saturating_sub(1);
        }
        self.shared.readers.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One reader: takes waiting keys, reads them, answers; until the [`SharedReads`] is dropped.
async fn read_for_waiting<V: Clone + Send + Sync + 'static>(mut reader: Reader<V>) {
    let shared = reader.shared.clone();
    loop {
        let notified = shared.ready.notified();
        tokio::pin!(notified);
        // Registered before looking at the queue, so a key queued after the look wakes us.
        notified.as_mut().enable();
        if shared.closed.load(Ordering::Acquire) {
            return;
        }
        let batch = shared.take(&mut reader.reading);
        if batch.is_empty() {
            notified.await;
            continue;
        }
        shared.answer(batch).await;
    }
}

impl<V: Clone + Send + Sync + 'static> Shared<V> {
    /// The oldest waiting key and every other waiting key with the same parameters, up to
    /// [`MAX_SHARED_KEYS`] distinct keys; callers that went away are dropped from the queue.
    /// Nothing while another reader has a statement in flight and less than a full batch
    /// waits: that reader takes them when it is done. `reading`: whether the calling reader is
    /// counted as in flight (its last statement is counted out in the same look, so no key is
    /// left without a reader); set when it takes a batch.
    fn take(&self, reading: &mut bool) -> Vec<Waiting<V>> {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if std::mem::take(reading) {
            queue.reading = queue.reading.saturating_sub(1);
        }
        if queue.reading > 0 && queue.waiting.len() < MAX_SHARED_KEYS {
            return Vec::new();
        }
        let waiting = &mut queue.waiting;
        let first = loop {
            match waiting.pop_front() {
                None => return Vec::new(),
                Some(w) if w.reply.is_closed() => continue,
                Some(w) => break w,
            }
        };
        let mut keys = std::collections::HashSet::from([first.key.clone()]);
        let mut batch = vec![first];
        let mut i = 0;
        while i < waiting.len() {
            let next = &waiting[i];
            if next.reply.is_closed() {
                waiting.remove(i);
                continue;
            }
            if next.params != batch[0].params
                || (keys.len() >= MAX_SHARED_KEYS && !keys.contains(&next.key))
            {
                i += 1;
                continue;
            }
            if let Some(next) = waiting.remove(i) {
                keys.insert(next.key.clone());
                batch.push(next);
            }
        }
        queue.reading += 1;
        *reading = true;
        batch
    }

    /// Reads the batch's keys in one statement and answers each caller.
    async fn answer(&self, batch: Vec<Waiting<V>>) {
        let mut keys: Vec<&str> = batch.iter().map(|w| w.key.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        let params: Vec<&str> = batch[0].params.iter().map(String::as_str).collect();
        let rows = if keys.len() == 1 {
            let mut all = Vec::with_capacity(params.len() + 1);
            all.push(keys[0]);
            all.extend_from_slice(&params);
            let sql = sqlx::AssertSqlSafe(self.one_sql.clone()).into_sql_str();
            self.reads
                .first_row(sql, &all)
                .await
                .map(|row| row.into_iter().collect::<Vec<_>>())
        } else {
            self.reads
                .rows_for_keys(self.many_sql.clone(), &keys, &params)
                .await
        };
        let values = rows.and_then(|rows| {
            rows.iter()
                .map(self.decode)
                .collect::<Result<std::collections::HashMap<String, V>, DbErr>>()
        });
        metrics::histogram!(crate::observe::SHARED_READ_KEYS, "key" => self.key)
            .record(keys.len() as f64);
        self.statements.fetch_add(1, Ordering::Relaxed);
        self.answered
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        for waiting in batch {
            let answer = match &values {
                Ok(values) => Ok(values.get(&waiting.key).cloned()),
                Err(e) => Err(e.clone()),
            };
            // A caller that went away is not answered.
            let _ = waiting.reply.send(answer);
        }
    }
}
