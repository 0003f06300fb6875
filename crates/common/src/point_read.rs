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

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sea_orm::sqlx::{self, Postgres, Sqlite, pool::PoolConnection};
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
                    sql,
                    values,
                ))
                .await
            }
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
