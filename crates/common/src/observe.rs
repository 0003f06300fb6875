//! The Prometheus instruments every service exports: their names, help texts and histogram
//! buckets in one place, the exporter's installation, and the sampler that reads a connection
//! pool's state. What the names mean and how they map to OpenTelemetry's semantic conventions
//! is in README.md ("Metrics"); the dashboard and alerts built on them in docs/operations.md.
//!
//! Must never: rename or relabel an exported metric (dashboards, alert rules and operators'
//! recording rules depend on them; CHANGELOG.md says so when one is added), or put a caller's
//! value (a resource name, a request id) in a label.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use sea_orm::{DatabaseConnection, DatabaseConnectionType};

/// Calls answered (OTel `rpc.server.call.duration`'s count; labels `method`, `code`, `protocol`).
pub const REQUESTS_TOTAL: &str = "qilu_grpc_server_requests_total";
/// Time from request to answer (OTel `rpc.server.call.duration`).
pub const REQUEST_DURATION: &str = "qilu_grpc_server_request_duration_seconds";
/// Keys answered by one shared point-read statement.
pub const SHARED_READ_KEYS: &str = "qilu_shared_read_keys";
/// Pool connections by `state` (`used`, `idle`) (OTel `db.client.connection.count`).
pub const POOL_CONNECTIONS: &str = "qilu_db_client_connections";
/// The pool's configured maximum (OTel `db.client.connection.max`).
pub const POOL_CONNECTIONS_MAX: &str = "qilu_db_client_connections_max";
/// How long a sampled acquisition waited for a connection (OTel `db.client.connection.wait_time`).
pub const POOL_WAIT_TIME: &str = "qilu_db_client_connection_wait_time_seconds";
/// Leases (writes, replays) that shared one group-commit transaction.
pub const BATCH_SIZE: &str = "qilu_group_commit_batch_size";
/// Time the `COMMIT` of one group-commit batch took.
pub const COMMIT_DURATION: &str = "qilu_group_commit_duration_seconds";
/// Writes queued for a lease on the group-commit writer.
pub const WRITES_WAITING: &str = "qilu_group_commit_writes_waiting";

/// Request durations in seconds: the boundaries OpenTelemetry's RPC and HTTP semantic
/// conventions advise for call durations, so histograms from every replica aggregate (a summary's
/// quantiles cannot be added across replicas).
pub const DURATION_BUCKETS_SECONDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Database waits and commits in seconds: finer at the bottom than [`DURATION_BUCKETS_SECONDS`]
/// (a SQLite commit or an uncontended acquisition takes well under 5 ms), up to the default
/// acquire timeout (5 s) and beyond.
pub const DB_DURATION_BUCKETS_SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Keys answered by one shared point-read statement (powers of two up to its batch size).
pub const SHARED_READ_KEY_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// Leases per group-commit batch: powers of two up to [`crate::write::MAX_BATCH_LEASES`].
pub const BATCH_SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

/// Every histogram with its buckets (the exporter renders a histogram without buckets as a
/// summary, which cannot be aggregated across replicas).
pub const HISTOGRAM_BUCKETS: &[(&str, &[f64])] = &[
    (REQUEST_DURATION, DURATION_BUCKETS_SECONDS),
    (SHARED_READ_KEYS, SHARED_READ_KEY_BUCKETS),
    (POOL_WAIT_TIME, DB_DURATION_BUCKETS_SECONDS),
    (BATCH_SIZE, BATCH_SIZE_BUCKETS),
    (COMMIT_DURATION, DB_DURATION_BUCKETS_SECONDS),
];

/// How often a pool's state is sampled (and one acquisition timed).
pub const POOL_SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// Serves the metrics at `metrics.addr` (once per process; nothing when unset) with every
/// histogram's buckets and every help text. Called by [`crate::server::serve`], and by
/// [`observe_pool`] before a pool's first sample, which comes before the server starts.
pub fn install(config: &crate::config::Config) {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    static INSTALLED: OnceLock<()> = OnceLock::new();
    let Some(addr) = config.metrics.addr else {
        return;
    };
    INSTALLED.get_or_init(|| {
        // Each histogram by its full name: two matchers that both match a name would leave its
        // buckets to the exporter's map order.
        let builder = HISTOGRAM_BUCKETS.iter().try_fold(
            PrometheusBuilder::new().with_http_listener(addr),
            |builder, (name, buckets)| {
                builder.set_buckets_for_metric(Matcher::Full((*name).into()), buckets)
            },
        );
        match builder.and_then(PrometheusBuilder::install) {
            Ok(()) => {
                describe();
                tracing::info!(%addr, "Prometheus metrics at http://{addr}/metrics");
            }
            Err(e) => tracing::warn!(%addr, error = %e, "metrics endpoint not started"),
        }
    });
}

/// Registers the help texts (`# HELP`) with the installed recorder.
pub fn describe() {
    metrics::describe_counter!(
        REQUESTS_TOTAL,
        "gRPC, grpc-web and HTTP/JSON calls answered, by full method path, gRPC status code (number) and protocol."
    );
    metrics::describe_histogram!(
        REQUEST_DURATION,
        "Time from a call's request to its answer in seconds, by full method path and protocol."
    );
    metrics::describe_histogram!(
        SHARED_READ_KEYS,
        "Keys answered by one statement of concurrent point reads, by key column."
    );
    metrics::describe_gauge!(
        POOL_CONNECTIONS,
        "Connections of the service's database pool, by state (used: lent to a call; idle: in the pool)."
    );
    metrics::describe_gauge!(
        POOL_CONNECTIONS_MAX,
        "Most connections the service's database pool may open (database.max_connections)."
    );
    metrics::describe_histogram!(
        POOL_WAIT_TIME,
        "Seconds a probe acquisition waited for a pool connection, one sample per second per pool."
    );
    metrics::describe_histogram!(
        BATCH_SIZE,
        "Writes (leases) that shared one group-commit transaction and its one COMMIT."
    );
    metrics::describe_histogram!(
        COMMIT_DURATION,
        "Seconds the COMMIT of one group-commit batch took (the durable flush every write of the batch waits for)."
    );
    metrics::describe_gauge!(
        WRITES_WAITING,
        "Writes queued for a lease on the service's group-commit writer."
    );
}

/// Pool names by pool identity ([`pool_key`]), for the writer's metrics.
static POOL_NAMES: LazyLock<Mutex<HashMap<usize, &'static str>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The identity of `db`'s pool: the address of the connect options every clone of one
/// `DatabaseConnection` shares (see `write::pool_id`).
pub(crate) fn pool_key(db: &DatabaseConnection) -> Option<usize> {
    let options: std::sync::Arc<dyn std::any::Any + Send + Sync> = match &db.inner {
        DatabaseConnectionType::SqlxPostgresPoolConnection(_) => {
            db.get_postgres_connection_pool().connect_options()
        }
        DatabaseConnectionType::SqlxSqlitePoolConnection(_) => {
            db.get_sqlite_connection_pool().connect_options()
        }
        _ => return None,
    };
    Some(std::sync::Arc::as_ptr(&options) as *const () as usize)
}

/// The `pool_name` label of the pool with identity `key`: the service's short name once
/// [`observe_pool`] named it, `unnamed` otherwise (a test's own pool).
pub(crate) fn pool_name(key: usize) -> &'static str {
    POOL_NAMES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&key)
        .copied()
        .unwrap_or("unnamed")
}

/// Names `db`'s pool `name` (the service's short name) for every metric about it, and, when
/// `metrics.addr` is set, starts the exporter ([`install`]) and samples the pool's connections
/// every [`POOL_SAMPLE_INTERVAL`] until the pool is closed or the runtime stops.
///
/// sea-orm acquires a connection inside every statement and reports nothing about it, so the
/// wait is measured by a probe: one acquisition per interval, timed and handed straight back.
/// It waits where a call would wait at that moment (the queue is fair), and includes the
/// liveness ping a connection idle for over a second gets, as a call's acquisition does. The
/// sampler holds a handle on the pool, so it starts only when metrics are exported (a process
/// that serves, whose pool lives as long as it does).
pub fn observe_pool(db: &DatabaseConnection, name: &'static str, config: &crate::config::Config) {
    let Some(key) = pool_key(db) else {
        return;
    };
    POOL_NAMES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(key, name);
    if config.metrics.addr.is_none() {
        return;
    }
    install(config);
    let db = db.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(POOL_SAMPLE_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let open = match &db.inner {
                DatabaseConnectionType::SqlxPostgresPoolConnection(_) => {
                    sample_pool(db.get_postgres_connection_pool(), name).await
                }
                DatabaseConnectionType::SqlxSqlitePoolConnection(_) => {
                    sample_pool(db.get_sqlite_connection_pool(), name).await
                }
                _ => false,
            };
            if !open {
                return;
            }
        }
    });
}

/// One sample of `pool`: its connections by state, its maximum, one timed acquisition. `false`
/// once the pool is closed.
async fn sample_pool<DB: sea_orm::sqlx::Database>(
    pool: &sea_orm::sqlx::Pool<DB>,
    name: &'static str,
) -> bool {
    if pool.is_closed() {
        return false;
    }
    // The state first: the probe's own connection goes back to the pool on a task of its own,
    // and would read as used for a moment after it.
    let size = pool.size();
    let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX).min(size);
    metrics::gauge!(POOL_CONNECTIONS, "pool_name" => name, "state" => "used")
        .set(f64::from(size - idle));
    metrics::gauge!(POOL_CONNECTIONS, "pool_name" => name, "state" => "idle").set(f64::from(idle));
    metrics::gauge!(POOL_CONNECTIONS_MAX, "pool_name" => name)
        .set(f64::from(pool.options().get_max_connections()));
    let started = Instant::now();
    // A timeout or a refused connection is a wait too: the one a call would have had.
    let acquired = pool.acquire().await;
    metrics::histogram!(POOL_WAIT_TIME, "pool_name" => name)
        .record(started.elapsed().as_secs_f64());
    drop(acquired);
    true
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn every_histogram_has_increasing_buckets_and_a_unique_name() {
        let mut names = std::collections::HashSet::new();
        for (name, buckets) in HISTOGRAM_BUCKETS {
            assert!(names.insert(*name), "{name} listed twice");
            assert!(!buckets.is_empty(), "{name}");
            assert!(
                buckets.windows(2).all(|w| w[0] < w[1]),
                "{name}: {buckets:?}"
            );
        }
    }

    #[test]
    fn batch_buckets_reach_the_largest_batch() {
        assert_eq!(
            BATCH_SIZE_BUCKETS.last().copied(),
            Some(crate::write::MAX_BATCH_LEASES as f64)
        );
    }

    #[test]
    fn request_buckets_are_the_otel_rpc_advice() {
        // OpenTelemetry semantic conventions, rpc.server.call.duration: explicit bucket
        // boundaries advised for RPC durations in seconds.
        assert_eq!(
            DURATION_BUCKETS_SECONDS,
            &[
                0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0
            ]
        );
    }

    #[tokio::test]
    async fn a_sampled_pool_reports_its_connections_and_a_named_pool_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/p.db", dir.path().display());
        let config = crate::config::Config::load(&crate::config::Sources {
            dir: Some(dir.path().to_path_buf()),
            env_name: None,
            environment: Some(std::collections::HashMap::new()),
        })
        .unwrap();
        let db = crate::db::connect(&url, &config.database).await.unwrap();
        let key = pool_key(&db).unwrap();
        assert_eq!(pool_name(key), "unnamed");
        observe_pool(&db, "registry", &config);
        assert_eq!(pool_name(key), "registry");
        let pool = db.get_sqlite_connection_pool();
        assert!(sample_pool(pool, "registry").await);
        pool.close().await;
        assert!(!sample_pool(pool, "registry").await);
    }
}
