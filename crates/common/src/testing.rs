//! Test support (feature `testing`): start a real service on an ephemeral port over a real
//! database — a fresh SQLite file, or a freshly created PostgreSQL database dropped afterwards —
//! and mint tokens for any role. Used by every service's integration tests and by `tests/`.
//!
//! PostgreSQL comes from `QILU_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`, the admin database used to create and drop
//! per-test databases). When it cannot be reached, a test fails under `CI=true` and is skipped
//! with a loud message elsewhere.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod replay;
pub mod round_trip;
pub mod uscc;

use std::collections::HashMap;
use std::net::SocketAddr;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use tonic::transport::{Channel, Endpoint};

use crate::app::{ServiceApp, open_database};
use crate::auth::{Role, TokenRequest, mint_hs256};
use crate::config::{Config, Sources};
use crate::server::{ServiceDef, serve};

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A new SQLite file in a temporary directory.
    Sqlite,
    /// A new PostgreSQL database.
    Postgres,
}

/// A database made for one test, removed when dropped.
#[derive(Debug)]
pub struct TestDb {
    /// The URL a service connects with.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

fn admin_url() -> String {
    std::env::var("QILU_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

impl TestDb {
    /// A database on `backend`, or `None` when PostgreSQL is unreachable outside CI.
    pub async fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let url = format!("sqlite://{}/test.db", dir.path().display());
                Some(TestDb {
                    url,
                    _dir: Some(dir),
                    pg: None,
                })
            }
            Backend::Postgres => {
                let admin = admin_url();
                let conn = match sea_orm::Database::connect(admin.as_str()).await {
                    Ok(c) => c,
                    Err(e) => {
                        if std::env::var("CI").is_ok_and(|v| v == "true") {
                            panic!(
                                "PostgreSQL test database unreachable at {admin} under CI=true: {e}"
                            );
                        }
                        eprintln!(
                            "SKIPPED: PostgreSQL unreachable at {admin}: {e} (set CI=true to make this fatal)"
                        );
                        return None;
                    }
                };
                let name = format!("qilu_t_{}", uuid::Uuid::new_v4().simple());
                conn.execute_raw(Statement::from_string(
                    DbBackend::Postgres,
                    format!("CREATE DATABASE {name}"),
                ))
                .await
                .expect("create test database");
                conn.close().await.ok();
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
                Some(TestDb {
                    url: format!("{base}/{name}"),
                    _dir: None,
                    pg: Some((admin, name)),
                })
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg.take() {
            // Drop runs outside async context; a short-lived runtime on its own thread does it.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    if let Ok(conn) = sea_orm::Database::connect(admin.as_str()).await {
                        let _ = conn
                            .execute_raw(Statement::from_string(
                                DbBackend::Postgres,
                                format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                            ))
                            .await;
                        let _ = conn.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// Configuration for tests: defaults plus `overrides` (as `QILU__…` environment entries).
pub fn test_config(overrides: &[(&str, String)]) -> Config {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut env: HashMap<String, String> = overrides
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    env.entry("QILU__SERVER__ADDR".into())
        .or_insert_with(|| "127.0.0.1:0".into());
    env.entry("QILU__TELEMETRY__FILTER".into())
        .or_insert_with(|| "warn".into());
    env.entry("QILU__SERVER__DRAIN_SECONDS".into())
        .or_insert_with(|| "2".into());
    // Tests sweep when they choose (`TestServer::sweep`), so that a test moving "today" sees
    // exactly the changes it asked for; the schedule itself is tested with this set to true.
    env.entry("QILU__SWEEP__ENABLED".into())
        .or_insert_with(|| "false".into());
    Config::load(&Sources {
        dir: Some(dir.path().to_path_buf()),
        env_name: None,
        environment: Some(env),
    })
    .expect("test configuration")
}

/// A running server on an ephemeral port.
#[derive(Debug)]
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The configuration it runs with.
    pub config: Config,
    /// A channel to it.
    pub channel: Channel,
    /// A separate connection to its database, for tests that inspect or tamper with rows.
    pub db: DatabaseConnection,
    stop: Option<Stop>,
    _db: TestDb,
    sweepers: Vec<crate::sweep::Sweeper>,
}

/// How a [`TestServer`] stops its server: a future that, awaited, asks it to stop and waits for
/// the drain; dropped unawaited, it stops the server without waiting.
struct Stop(std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>);

impl std::fmt::Debug for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stop")
    }
}

impl TestServer {
    /// Starts service `A` on `backend`; `None` when the backend is unavailable outside CI.
    pub async fn start<A: ServiceApp>(backend: Backend) -> Option<TestServer> {
        Self::start_with::<A>(backend, &[]).await
    }

    /// Starts service `A` with configuration overrides.
    pub async fn start_with<A: ServiceApp>(
        backend: Backend,
        overrides: &[(&str, String)],
    ) -> Option<TestServer> {
        let test_db = TestDb::new(backend).await?;
        let mut all: Vec<(&str, String)> = overrides.to_vec();
        all.push(("QILU__DATABASE__URL", test_db.url.clone()));
        let config = test_config(&all);
        let db = open_database::<A>(&config, true)
            .await
            .expect("open database");
        let service = A::build(&config, db.clone()).await.expect("build service");
        let inspect = crate::db::connect(&config.database_url(A::NAME), &config.database)
            .await
            .expect("second connection");
        Some(Self::serve(vec![service], config, inspect, test_db).await)
    }

    /// A test server for a server started elsewhere (the suite's composition root,
    /// `qilu_suite::testing`): `service`'s database is `test_db`, and awaiting `stop` stops the
    /// server and waits for it (dropping it must stop the server too).
    pub async fn attach(
        addr: SocketAddr,
        config: Config,
        service: &str,
        test_db: TestDb,
        sweepers: Vec<crate::sweep::Sweeper>,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> TestServer {
        let db = crate::db::connect(&config.database_url(service), &config.database)
            .await
            .expect("second connection");
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect to test server");
        TestServer {
            addr,
            config,
            channel,
            db,
            stop: Some(Stop(Box::pin(stop))),
            _db: test_db,
            sweepers,
        }
    }

    /// Runs the service's sweep now, for "today" as its clock has it (tests that move the
    /// date), and returns what it did; panics when it fails.
    pub async fn sweep(&self) -> crate::sweep::SweepReport {
        let mut total = crate::sweep::SweepReport::default();
        for sweeper in &self.sweepers {
            let report = sweeper.run().await.expect("sweep");
            total.date = report.date;
            total.examined += report.examined;
            total.changed += report.changed;
        }
        total
    }

    async fn serve(
        services: Vec<ServiceDef>,
        config: Config,
        db: DatabaseConnection,
        test_db: TestDb,
    ) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        Self::serve_on(listener, services, config, db, test_db).await
    }

    async fn serve_on(
        listener: tokio::net::TcpListener,
        services: Vec<ServiceDef>,
        config: Config,
        db: DatabaseConnection,
        test_db: TestDb,
    ) -> TestServer {
        let addr = listener.local_addr().expect("local addr");
        let sweepers = services.iter().filter_map(ServiceDef::sweeper).collect();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server_config = config.clone();
        let task = tokio::spawn(async move {
            serve(listener, services, &server_config, async {
                let _ = rx.await;
            })
            .await
            .expect("server");
        });
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect to test server");
        let stop = async move {
            let _ = tx.send(());
            let _ = task.await;
        };
        TestServer {
            addr,
            config,
            channel,
            db,
            stop: Some(Stop(Box::pin(stop))),
            _db: test_db,
            sweepers,
        }
    }

    /// A bearer header value for a caller with `roles`.
    pub fn bearer(
        &self,
        subject: &str,
        roles: &[Role],
        enterprise: Option<&str>,
        expert: Option<&str>,
    ) -> String {
        let token = mint_hs256(
            &self.config.auth,
            &TokenRequest {
                subject: subject.to_string(),
                roles: roles.to_vec(),
                enterprise: enterprise.map(str::to_string),
                expert: expert.map(str::to_string),
                ttl_seconds: 3600,
            },
        )
        .expect("mint token");
        format!("Bearer {token}")
    }

    /// A bearer header value for any JWT claims, signed with the server's HS256 secret: for
    /// tests of token validation (`exp`, `nbf`, `iat`).
    pub fn bearer_for_claims(&self, claims: &serde_json::Value) -> String {
        let secret = self.config.auth.hs256_secret.clone().expect("HS256 secret");
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            claims,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()).expect("key"),
        )
        .expect("sign claims");
        format!("Bearer {token}")
    }

    /// Wraps a message in a request authenticated as `role`.
    pub fn request<T>(&self, role: Role, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        let bearer = self.bearer(&format!("test-{role}"), &[role], None, None);
        request
            .metadata_mut()
            .insert("authorization", bearer.parse().expect("header"));
        request
    }

    /// Wraps a message in a request from an enterprise token for `uscc`.
    pub fn enterprise_request<T>(&self, uscc: &str, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        let bearer = self.bearer(
            &format!("enterprise-{uscc}"),
            &[Role::Enterprise],
            Some(uscc),
            None,
        );
        request
            .metadata_mut()
            .insert("authorization", bearer.parse().expect("header"));
        request
    }

    /// Stops the server (draining as a deployment's stop does) and starts service `A` again over
    /// the same database and configuration, on the same address: what a restart sees.
    pub async fn restart<A: ServiceApp>(self) -> TestServer {
        self.pause().await.resume::<A>().await
    }

    /// Stops the server but keeps its database and address, to start it again with
    /// [`PausedServer::resume`] (a peer that is down for a while, a restart).
    pub async fn pause(mut self) -> PausedServer {
        if let Some(Stop(stop)) = self.stop.take() {
            stop.await;
        }
        let _ = self.db.clone().close().await;
        PausedServer {
            addr: self.addr,
            config: self.config.clone(),
            test_db: self._db,
        }
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(Stop(stop)) = self.stop.take() {
            stop.await;
        }
        let _ = self.db.clone().close().await;
    }
}

/// A [`TestServer`] stopped by [`TestServer::pause`]: its database and address, kept.
#[derive(Debug)]
pub struct PausedServer {
    addr: SocketAddr,
    config: Config,
    test_db: TestDb,
}

impl PausedServer {
    /// Starts service `A` again over the kept database, on the same address (peers that knew
    /// it reconnect).
    pub async fn resume<A: ServiceApp>(self) -> TestServer {
        let config = self.config;
        let db = open_database::<A>(&config, true)
            .await
            .expect("reopen database");
        let service = A::build(&config, db.clone()).await.expect("build service");
        let inspect = crate::db::connect(&config.database_url(A::NAME), &config.database)
            .await
            .expect("second connection");
        // The old listener's socket may linger a moment after the drain.
        let mut listener = None;
        for _ in 0..50 {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(l) => {
                    listener = Some(l);
                    break;
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            }
        }
        let listener = listener.expect("bind the same address again");
        TestServer::serve_on(listener, vec![service], config, inspect, self.test_db).await
    }
}

/// Waits (at most 10 s) for a [`TestServer::stop`] spawned at `started`, and asserts the server
/// was down within 5 s although `open` was still in flight: what a drain must not wait for
/// (the shutdown tests give it a 30 s deadline).
pub async fn assert_stopped_promptly(
    stop: tokio::task::JoinHandle<()>,
    started: std::time::Instant,
    open: &str,
) {
    tokio::time::timeout(std::time::Duration::from_secs(10), stop)
        .await
        .expect("the server stops")
        .unwrap();
    let elapsed = started.elapsed();
    assert!(
        elapsed < std::time::Duration::from_secs(5),
        "shutdown took {elapsed:?} with {open} (drain deadline 30 s)"
    );
}

/// The backends to test on: both, always (PostgreSQL skips only outside CI when unreachable).
pub const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

/// Declares each scenario `async fn name(backend: Backend)` as two tests, `sqlite::name` and
/// `postgres::name`, so every integration test runs on both backends:
///
/// ```text
/// on_both_backends!(a_duplicate_is_already_exists, paging_returns_each_once);
/// ```
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::testing::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::testing::Backend::Postgres).await;
                }
            )*
        }
    };
}
