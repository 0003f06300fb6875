//! Database connections and migrations for both backends: SQLite (embedded default, WAL, busy
//! timeout, foreign keys) and PostgreSQL (production). The same code and migrations serve both.

use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement,
    TransactionTrait,
};
use sea_orm_migration::MigratorTrait;

use crate::config::DatabaseConfig;

/// A primary-key (or otherwise unique) lookup: the row if there is one.
///
/// Use it instead of sea-orm's `.one()` for key lookups. `.one()` appends `LIMIT ?` with the
/// limit as a bound parameter, and SQLite as libsqlite3-sys builds it (`SQLITE_ENABLE_STAT4`)
/// marks a statement whose LIMIT is a parameter for re-preparation every time that parameter is
/// bound, that is on every execution: the cached statement was parsed and planned again on every
/// call (half of the SQLite worker's CPU in a GetEnterprise benchmark, BENCHMARKS.md). A key
/// matches at most one row, so the lookup needs no LIMIT, and its statement stays prepared.
pub trait KeyLookup: Sized {
    /// What a row decodes to.
    type Item;
    /// Runs the lookup.
    fn by_key<C: ConnectionTrait>(
        self,
        conn: &C,
    ) -> impl std::future::Future<Output = Result<Option<Self::Item>, DbErr>> + Send;
}

impl<E> KeyLookup for sea_orm::Select<E>
where
    E: sea_orm::EntityTrait,
    E::Model: Send,
{
    type Item = E::Model;
    async fn by_key<C: ConnectionTrait>(self, conn: &C) -> Result<Option<E::Model>, DbErr> {
        Ok(self.all(conn).await?.into_iter().next())
    }
}

impl<S> KeyLookup for sea_orm::Selector<S>
where
    S: sea_orm::SelectorTrait + Send,
    S::Item: Send,
{
    type Item = S::Item;
    async fn by_key<C: ConnectionTrait>(self, conn: &C) -> Result<Option<S::Item>, DbErr> {
        Ok(self.all(conn).await?.into_iter().next())
    }
}

/// Connects to `url` (`sqlite://…` or `postgres://…`), creating a SQLite file and its directory
/// when missing. A database that does not accept connections yet (PostgreSQL still starting) is
/// retried until `database.connect_timeout_ms`; after that every call waits at most
/// `database.acquire_timeout_ms` for a connection, so a lost database fails calls fast.
pub async fn connect(url: &str, config: &DatabaseConfig) -> Result<DatabaseConnection, DbErr> {
    if let Some(path) = sqlite_path(url)
        && let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|e| {
            DbErr::Custom(format!("cannot create directory {}: {e}", parent.display()))
        })?;
    }
    let give_up = tokio::time::Instant::now() + Duration::from_millis(config.connect_timeout_ms);
    let mut pause = Duration::from_millis(50);
    loop {
        match sea_orm::Database::connect(options(url, config, config.max_connections)).await {
            Ok(db) => return Ok(db),
            Err(e)
                if classify(&e) == Some(DbTrouble::Unreachable)
                    && tokio::time::Instant::now() + pause < give_up =>
            {
                tracing::info!(error = %e, "database not reachable yet; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            Err(e) => return Err(e),
        }
    }
}

/// A pooled connection idle at least this long is pinged before it is handed out.
const IDLE_PING_AFTER: Duration = Duration::from_secs(1);

/// Pool options shared by the service pool and the health probe's own connection.
fn options(url: &str, config: &DatabaseConfig, max_connections: u32) -> ConnectOptions {
    let busy_timeout = Duration::from_millis(config.busy_timeout_ms);
    // sea-orm's `connect_timeout` is the same sqlx setting as `acquire_timeout` (the later one
    // wins); sqlx bounds opening a new connection by the acquire deadline, retrying a refused
    // connection until then. So this one bound is what a call waits, at most, for the database.
    let acquire = Duration::from_millis(config.acquire_timeout_ms);
    let mut options = ConnectOptions::new(url.to_string());
    options
        .max_connections(max_connections)
        .min_connections(1.min(max_connections))
        .acquire_timeout(acquire)
        // A connection idle in the pool for a while is pinged before use, so connections left
        // dead by a database restart while idle are replaced instead of failing the next call.
        // A connection in steady use is not pinged when handed out: sqlx already pings every
        // connection as it goes back to the pool and drops it if that fails, so a ping when
        // handed out as well would be a second extra round trip per statement (measured in
        // BENCHMARKS.md). A connection that dies between the two fails its statement, which
        // reads UNAVAILABLE and is retried like any other outage.
        .test_before_acquire_if_idle_for(IDLE_PING_AFTER)
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(move |o| {
            o.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(busy_timeout)
                .foreign_keys(true)
        });
    options
}

/// What a failed database call means for the caller, when it is not our own fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbTrouble {
    /// The database cannot be reached or dropped the connection: refused, reset, closed, shut
    /// down (PostgreSQL 57P01/57P02/57P03), a connection exception (class 08), a write refused by
    /// a read-only server (25006: a standby, as during a failover), no connection free within
    /// the acquire timeout, or the pool already closed. Retry later; health turns NOT_SERVING
    /// while it lasts.
    Unreachable,
    /// The database answers but a lock was not granted in time: SQLite `SQLITE_BUSY`/`LOCKED`
    /// beyond the busy timeout, PostgreSQL serialization failure, deadlock or lock timeout.
    /// Nothing was written; the call may be retried as is. The database is not down, so health
    /// stays SERVING.
    Busy,
}

/// Classifies a database error: `Some` for trouble the caller may retry, `None` for our own
/// faults (bad SQL, a violated constraint nobody handled, a value that does not decode), which
/// stay INTERNAL.
pub fn classify(err: &DbErr) -> Option<DbTrouble> {
    use sea_orm::RuntimeErr;
    match err {
        DbErr::ConnectionAcquire(_) => Some(DbTrouble::Unreachable),
        // Errors while establishing a connection: whatever the detail, there is no database.
        DbErr::Conn(RuntimeErr::SqlxError(e)) => {
            Some(classify_sqlx(e).unwrap_or(DbTrouble::Unreachable))
        }
        DbErr::Conn(_) => Some(DbTrouble::Unreachable),
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            classify_sqlx(e)
        }
        _ => None,
    }
}

fn classify_sqlx(err: &sea_orm::sqlx::Error) -> Option<DbTrouble> {
    use sea_orm::sqlx::Error;
    match err {
        // Refused, reset, broken pipe, unexpected EOF: the connection or the server is gone.
        Error::Io(_) | Error::Tls(_) | Error::PoolTimedOut | Error::PoolClosed => {
            Some(DbTrouble::Unreachable)
        }
        Error::Database(db) => {
            let code = db.code()?;
            if db
                .try_downcast_ref::<sea_orm::sqlx::postgres::PgDatabaseError>()
                .is_some()
            {
                postgres_trouble(&code)
            } else if db
                .try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>()
                .is_some()
            {
                sqlite_trouble(&code)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// PostgreSQL SQLSTATEs (Appendix A of the PostgreSQL manual) that are the database's trouble,
/// not ours.
fn postgres_trouble(sqlstate: &str) -> Option<DbTrouble> {
    match sqlstate {
        // Class 08: connection exception (08000, 08003, 08006, 08001, 08004, 08007, 08P01).
        s if s.starts_with("08") => Some(DbTrouble::Unreachable),
        // admin_shutdown, crash_shutdown, cannot_connect_now, idle_session_timeout;
        // too_many_connections.
        "57P01" | "57P02" | "57P03" | "57P05" | "53300" => Some(DbTrouble::Unreachable),
        // read_only_sql_transaction: a write reached a server that is (now) a standby, as during
        // a failover; the primary is elsewhere or not yet promoted. Not the caller's fault, and
        // a retry once the connection points at the new primary succeeds.
        "25006" => Some(DbTrouble::Unreachable),
        // serialization_failure, deadlock_detected, lock_not_available.
        "40001" | "40P01" | "55P03" => Some(DbTrouble::Busy),
        _ => None,
    }
}

/// SQLite result codes (sqlx reports the extended code; the primary code is its low byte).
fn sqlite_trouble(code: &str) -> Option<DbTrouble> {
    let primary = code.parse::<i32>().ok()? & 0xff;
    match primary {
        // SQLITE_BUSY, SQLITE_LOCKED: another connection kept the lock past busy_timeout. The
        // file is there and readable; only this write has to wait. Not a lost database.
        5 | 6 => Some(DbTrouble::Busy),
        // SQLITE_IOERR, SQLITE_CANTOPEN: the storage under the database failed or vanished.
        10 | 14 => Some(DbTrouble::Unreachable),
        _ => None,
    }
}

/// A background check of one service's database for gRPC health: its own single connection
/// (not the service's pool, so a pool saturated by load does not read as a lost database),
/// `SELECT 1` within `database.health_timeout_ms`.
#[derive(Debug, Clone)]
pub struct HealthProbe {
    url: String,
    config: DatabaseConfig,
}

impl HealthProbe {
    /// A probe of the database at `url` (the same URL the service connects to).
    pub fn new(url: impl Into<String>, config: &DatabaseConfig) -> Self {
        let mut config = config.clone();
        config.acquire_timeout_ms = config.health_timeout_ms;
        HealthProbe {
            url: url.into(),
            config,
        }
    }

    /// How often to probe.
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.config.health_interval_ms)
    }

    /// The probe's own pool of one connection, opened lazily (on the first check), so making
    /// it succeeds while the database is down.
    pub async fn connection(&self) -> Result<DatabaseConnection, DbErr> {
        let mut options = options(&self.url, &self.config, 1);
        options.min_connections(0).connect_lazy(true);
        sea_orm::Database::connect(options).await
    }

    /// One check: Ok when the database answered in time.
    pub async fn check(&self, conn: &DatabaseConnection) -> Result<(), String> {
        let timeout = Duration::from_millis(self.config.health_timeout_ms);
        let ping = conn.execute_unprepared("SELECT 1");
        match tokio::time::timeout(timeout, ping).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
        }
    }
}

/// The file path of a SQLite URL, if it is one (and not in-memory).
fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && !path.contains(":memory:")).then_some(path)
}

/// Runs pending migrations. On PostgreSQL a transaction-scoped advisory lock, keyed by
/// `lock_name`, makes concurrent replicas wait for one another instead of racing.
pub async fn migrate<M: MigratorTrait>(
    db: &DatabaseConnection,
    lock_name: &str,
) -> Result<(), DbErr> {
    if db.get_database_backend() == DbBackend::Postgres {
        let lock = db.begin().await?;
        lock.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            [format!("qilu-migrate-{lock_name}").into()],
        ))
        .await?;
        let result = M::up(db, None).await;
        lock.commit().await?;
        result
    } else {
        M::up(db, None).await
    }
}

/// Whether a database error is a unique-constraint violation (both backends).
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths_are_found_in_urls() {
        assert_eq!(
            sqlite_path("sqlite://data/registry.db"),
            Some("data/registry.db")
        );
        assert_eq!(sqlite_path("sqlite:/tmp/x.db?mode=rwc"), Some("/tmp/x.db"));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://localhost/db"), None);
    }

    #[test]
    fn lost_connections_and_shutdowns_are_unreachable() {
        for code in [
            "57P01", "57P02", "57P03", "08006", "08003", "08001", "08P01", "53300", "25006",
        ] {
            assert_eq!(
                postgres_trouble(code),
                Some(DbTrouble::Unreachable),
                "{code}"
            );
        }
    }

    #[test]
    fn lock_trouble_is_busy_and_our_faults_are_neither() {
        for code in ["40001", "40P01", "55P03"] {
            assert_eq!(postgres_trouble(code), Some(DbTrouble::Busy), "{code}");
        }
        // unique_violation, syntax error, undefined column, numeric out of range: our bugs.
        for code in ["23505", "42601", "42703", "22003", "57014"] {
            assert_eq!(postgres_trouble(code), None, "{code}");
        }
        // SQLITE_BUSY, SQLITE_BUSY_SNAPSHOT (517), SQLITE_LOCKED.
        for code in ["5", "517", "6"] {
            assert_eq!(sqlite_trouble(code), Some(DbTrouble::Busy), "{code}");
        }
        // SQLITE_IOERR_WRITE (778), SQLITE_CANTOPEN.
        for code in ["778", "14"] {
            assert_eq!(sqlite_trouble(code), Some(DbTrouble::Unreachable), "{code}");
        }
        // SQLITE_CONSTRAINT_UNIQUE (2067), SQLITE_ERROR, SQLITE_TOOBIG.
        for code in ["2067", "1", "18"] {
            assert_eq!(sqlite_trouble(code), None, "{code}");
        }
    }

    #[test]
    fn pool_and_io_errors_are_unreachable() {
        use sea_orm::sqlx::Error;
        use sea_orm::{ConnAcquireErr, RuntimeErr};
        use std::sync::Arc;
        let io = |kind| {
            DbErr::Query(RuntimeErr::SqlxError(Arc::new(Error::Io(
                std::io::Error::from(kind),
            ))))
        };
        for kind in [
            std::io::ErrorKind::ConnectionRefused,
            std::io::ErrorKind::ConnectionReset,
            std::io::ErrorKind::BrokenPipe,
            std::io::ErrorKind::UnexpectedEof,
        ] {
            assert_eq!(
                classify(&io(kind)),
                Some(DbTrouble::Unreachable),
                "{kind:?}"
            );
        }
        for err in [
            DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
            DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
            DbErr::Exec(RuntimeErr::SqlxError(Arc::new(Error::PoolClosed))),
        ] {
            assert_eq!(classify(&err), Some(DbTrouble::Unreachable), "{err}");
        }
        for err in [
            DbErr::Query(RuntimeErr::SqlxError(Arc::new(Error::RowNotFound))),
            DbErr::Type("bad".into()),
            DbErr::RecordNotFound("x".into()),
            DbErr::Custom("x".into()),
        ] {
            assert_eq!(classify(&err), None, "{err}");
        }
    }
}
