//! What the workloads run against: fresh `qilu_bench_*` PostgreSQL databases (dropped at the
//! end), fresh SQLite files, the real services started with the same functions their binaries
//! use, the bare tonic anchor, the real binaries for idle memory, and pgbench.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use qilu_common::app::{ServiceApp, open_database};
use qilu_common::auth::{Role, TokenRequest, mint_hs256};
use qilu_common::config::{Config, Sources};
use qilu_common::server::serve;
use qilu_suite::{Clocks, Options, PerService};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use tonic::transport::{Channel, Endpoint, Server};

/// PostgreSQL databases this run created; all dropped by [`Databases::drop_all`].
#[derive(Debug)]
pub struct Databases {
    /// Admin URL (`…/postgres`), used to create and drop.
    pub admin: String,
    created: Mutex<Vec<String>>,
    /// Temporary files (SQLite databases, config dirs), removed at exit.
    pub dir: tempfile::TempDir,
}

impl Databases {
    /// Connects to nothing yet; `admin` is a PostgreSQL URL ending in a database name.
    pub fn new(admin: String) -> Result<Databases> {
        Ok(Databases {
            admin,
            created: Mutex::new(Vec::new()),
            dir: tempfile::tempdir().context("temporary directory")?,
        })
    }

    fn base(&self) -> &str {
        self.admin
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or(&self.admin)
    }

    /// Creates `qilu_bench_<tag>_<random>`; returns (name, URL).
    pub async fn create_pg(&self, tag: &str) -> Result<(String, String)> {
        let name = format!(
            "qilu_bench_{tag}_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let conn = sea_orm::Database::connect(self.admin.as_str())
            .await
            .with_context(|| format!("PostgreSQL unreachable at {}", self.admin))?;
        conn.execute_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("CREATE DATABASE {name}"),
        ))
        .await
        .with_context(|| format!("CREATE DATABASE {name}"))?;
        conn.close().await.ok();
        self.created
            .lock()
            .map_err(|_| anyhow!("database list poisoned"))?
            .push(name.clone());
        let url = format!("{}/{name}", self.base());
        Ok((name, url))
    }

    /// Waits for PostgreSQL to finish the background work the previous workload left, so that
    /// work is not measured as part of the next one: until no autovacuum worker runs (at most
    /// `limit`), after a `CHECKPOINT` when `checkpoint` (once, after the pgbench anchors, whose
    /// dirty buffers would otherwise be written out during the next workload). Not before every
    /// workload: right after a checkpoint every page a write workload touches first costs a
    /// full-page image in the WAL, which a steady-state run spreads over its checkpoint interval.
    /// Without settling, GetEnterprise measured straight after the TPC-B anchor ran about 20 %
    /// slower (and its server CPU per call 20 % higher) than after the echo anchor alone. Best
    /// effort: a failure is printed.
    pub async fn settle(&self, limit: Duration, checkpoint: bool) {
        let Ok(conn) = sea_orm::Database::connect(self.admin.as_str()).await else {
            eprintln!("cannot reach PostgreSQL to settle it");
            return;
        };
        if checkpoint && let Err(e) = conn.execute_unprepared("CHECKPOINT").await {
            eprintln!("CHECKPOINT: {e}");
        }
        let started = Instant::now();
        while started.elapsed() < limit {
            let busy = conn
                .query_one_raw(Statement::from_string(
                    DbBackend::Postgres,
                    "SELECT count(*) AS n FROM pg_stat_activity \
                     WHERE backend_type = 'autovacuum worker'",
                ))
                .await
                .ok()
                .flatten()
                .and_then(|row| row.try_get::<i64>("", "n").ok())
                .unwrap_or(0);
            if busy == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        conn.close().await.ok();
    }

    /// A fresh SQLite URL in the run's temporary directory.
    pub fn sqlite(&self, tag: &str) -> String {
        format!(
            "sqlite://{}/{tag}-{}.db",
            self.dir.path().display(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        )
    }

    /// Drops every database this run created.
    pub async fn drop_all(&self) {
        let names: Vec<String> = match self.created.lock() {
            Ok(mut v) => std::mem::take(&mut *v),
            Err(_) => return,
        };
        if names.is_empty() {
            return;
        }
        let Ok(conn) = sea_orm::Database::connect(self.admin.as_str()).await else {
            eprintln!("cannot reach PostgreSQL to drop {names:?}");
            return;
        };
        for name in names {
            if let Err(e) = conn
                .execute_raw(Statement::from_string(
                    DbBackend::Postgres,
                    format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                ))
                .await
            {
                eprintln!("could not drop {name}: {e}");
            }
        }
        conn.close().await.ok();
    }
}

/// Configuration as a deployment would give it (defaults + `QILU__…` entries), with metrics on
/// an ephemeral port so the per-call metrics cost is measured as in production.
pub fn config(dir: &Path, entries: &[(&str, String)]) -> Result<Config> {
    let mut env: HashMap<String, String> = entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    env.entry("QILU__SERVER__ADDR".into())
        .or_insert_with(|| "127.0.0.1:0".into());
    env.entry("QILU__SERVER__DRAIN_SECONDS".into())
        .or_insert_with(|| "2".into());
    env.entry("QILU__METRICS__ADDR".into())
        .or_insert_with(|| "127.0.0.1:0".into());
    Config::load(&Sources {
        dir: Some(dir.to_path_buf()),
        env_name: None,
        environment: Some(env),
    })
    .map_err(|e| anyhow!("{e}"))
}

/// A service running in this process on an ephemeral port.
#[derive(Debug)]
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its configuration (for tokens).
    pub config: Config,
    server: Serving,
}

/// How a [`Running`] server is stopped: a task of this harness, or a service of the suite
/// (`qilu-suite`, wired as deployed).
#[derive(Debug)]
enum Serving {
    Task {
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        task: Option<tokio::task::JoinHandle<()>>,
    },
    // Boxed: a suite `Running` carries its whole configuration.
    Suite(Box<qilu_suite::Running>),
}

impl Running {
    /// `channels` separate HTTP/2 connections to it.
    pub async fn channels(&self, channels: usize) -> Result<Vec<Channel>> {
        connect(self.addr, channels).await
    }

    /// A bearer header value for `roles` (and an enterprise USCC).
    pub fn bearer(
        &self,
        roles: &[Role],
        enterprise: Option<&str>,
        expert: Option<&str>,
    ) -> Result<String> {
        bearer(&self.config, roles, enterprise, expert)
    }

    /// Stops the server and waits for its drain.
    pub async fn stop(self) {
        match self.server {
            Serving::Task { mut stop, mut task } => {
                if let Some(tx) = stop.take() {
                    let _ = tx.send(());
                }
                if let Some(task) = task.take() {
                    let _ = task.await;
                }
            }
            Serving::Suite(running) => {
                if let Err(e) = running.stop().await {
                    eprintln!("server at {}: {e}", self.addr);
                }
            }
        }
    }
}

/// A bearer header value minted with the configuration's development secret.
pub fn bearer(
    config: &Config,
    roles: &[Role],
    enterprise: Option<&str>,
    expert: Option<&str>,
) -> Result<String> {
    let token = mint_hs256(
        &config.auth,
        &TokenRequest {
            subject: format!(
                "bench-{}",
                roles.first().map(|r| r.to_string()).unwrap_or_default()
            ),
            roles: roles.to_vec(),
            enterprise: enterprise.map(str::to_string),
            expert: expert.map(str::to_string),
            ttl_seconds: 3600,
        },
    )
    .map_err(|e| anyhow!(e))?;
    Ok(format!("Bearer {token}"))
}

/// `n` channels (HTTP/2 connections) to `addr`.
pub async fn connect(addr: SocketAddr, n: usize) -> Result<Vec<Channel>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        out.push(
            Endpoint::from_shared(format!("http://{addr}"))?
                .connect()
                .await
                .with_context(|| format!("connect to {addr}"))?,
        );
    }
    Ok(out)
}

/// Starts service `A` over `database_url` on `runtime` (the servers' runtime, apart from the
/// load generator's), exactly as its binary would: open + migrate, build, serve.
pub async fn start<A: ServiceApp>(
    runtime: &tokio::runtime::Handle,
    dir: &Path,
    database_url: &str,
    extra: &[(&str, String)],
) -> Result<Running> {
    let mut entries: Vec<(&str, String)> = extra.to_vec();
    entries.push(("QILU__DATABASE__URL", database_url.to_string()));
    let config = config(dir, &entries)?;
    let server_config = config.clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Result<SocketAddr, String>>();
    let task = runtime.spawn(async move {
        let started = async {
            let db = open_database::<A>(&server_config, true).await?;
            let service = A::build(&server_config, db).await?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|e| e.to_string())?;
            let addr = listener.local_addr().map_err(|e| e.to_string())?;
            Ok::<_, String>((service, listener, addr))
        };
        match started.await {
            Ok((service, listener, addr)) => {
                let _ = ready_tx.send(Ok(addr));
                if let Err(e) = serve(listener, vec![service], &server_config, async {
                    let _ = rx.await;
                })
                .await
                {
                    eprintln!("{}: server failed: {e}", A::NAME);
                }
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
            }
        }
    });
    let addr = ready_rx
        .await
        .map_err(|_| anyhow!("{} did not start", A::NAME))?
        .map_err(|e| anyhow!("{}: {e}", A::NAME))?;
    Ok(Running {
        addr,
        config,
        server: Serving::Task {
            stop: Some(tx),
            task: Some(task),
        },
    })
}

/// The three services over the given databases on `runtime`, each on its own ephemeral port
/// with its peers pointing at the others, as the composition root (`qilu-suite`) wires a
/// deployment.
pub async fn start_suite(
    runtime: &tokio::runtime::Handle,
    dir: &Path,
    database_urls: PerService<String>,
) -> Result<PerService<Running>> {
    let config = config(dir, &[])?;
    let options = Options {
        database_urls: database_urls.map(|_, url| Some(url)),
        clocks: Clocks::default(),
    };
    // Bound and started on the servers' runtime, so the servers' tasks run there.
    let running = runtime
        .spawn(async move {
            let bind = || async {
                tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .map_err(|e| format!("bind: {e}"))
            };
            let listeners = PerService {
                registry: bind().await?,
                review: bind().await?,
                awards: bind().await?,
            };
            qilu_suite::start_apart(&config, listeners, &options).await
        })
        .await
        .map_err(|e| anyhow!("suite task: {e}"))?
        .map_err(|e| anyhow!("suite: {e}"))?;
    Ok(running.map(|_, running| Running {
        addr: running.addr(),
        config: running.config().clone(),
        server: Serving::Suite(Box::new(running)),
    }))
}

/// The anchor: a bare tonic server (same tonic, same default h2 settings as `serve`) with only
/// the gRPC health service — no middleware, no database.
pub async fn start_echo(runtime: &tokio::runtime::Handle, dir: &Path) -> Result<Running> {
    let config = config(dir, &[])?;
    let listener = runtime
        .spawn(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .await??;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = runtime.spawn(async move {
        let (_reporter, health) = tonic_health::server::health_reporter();
        let result = Server::builder()
            .add_service(health)
            .serve_with_incoming_shutdown(qilu_common::server::incoming(listener), async {
                let _ = rx.await;
            })
            .await;
        if let Err(e) = result {
            eprintln!("echo server failed: {e}");
        }
    });
    Ok(Running {
        addr,
        config,
        server: Serving::Task {
            stop: Some(tx),
            task: Some(task),
        },
    })
}

/// A free local port (bound and released; the binary binds it a moment later).
fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Whether the server at `addr` answers gRPC health SERVING for `service`.
async fn serving(addr: &str, service: &str) -> bool {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let Ok(endpoint) = Endpoint::from_shared(addr.to_string()) else {
        return false;
    };
    let Ok(channel) = endpoint
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(2))
        .connect()
        .await
    else {
        return false;
    };
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_string(),
        })
        .await
        .is_ok_and(|r| r.get_ref().status == ServingStatus::Serving as i32)
}

/// Resident memory of a process, KiB (`VmRSS` in /proc/<pid>/status).
pub fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("no VmRSS for pid {pid}"))
}

/// The service binaries built beside this one (same target directory and profile).
pub fn binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .ok_or_else(|| anyhow!("no directory for {exe:?}"))?;
    let path = dir.join(name);
    if !path.is_file() {
        bail!(
            "{} not found; build it with the harness: cargo build --profile bench-fast -p qilu-bench -p qilu-registry -p qilu-review -p qilu-awards",
            path.display()
        );
    }
    Ok(path)
}

/// Starts the real binary `name` over `database_url`, waits until it is SERVING, lets it idle
/// for `idle`, answers one health check, and returns its resident memory in KiB.
pub async fn idle_rss(
    name: &str,
    grpc_name: &str,
    database_url: &str,
    peers: &[(&str, String)],
    idle: Duration,
    dir: &Path,
) -> Result<u64> {
    let path = binary(name)?;
    let port = free_port()?;
    let metrics = free_port()?;
    let workdir = dir.join(format!("{name}-work"));
    std::fs::create_dir_all(&workdir)?;
    let mut cmd = std::process::Command::new(&path);
    cmd.current_dir(&workdir)
        .env("QILU__SERVER__ADDR", format!("127.0.0.1:{port}"))
        .env("QILU__METRICS__ADDR", format!("127.0.0.1:{metrics}"))
        .env("QILU__DATABASE__URL", database_url)
        .env("QILU__TELEMETRY__FILTER", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (k, v) in peers {
        cmd.env(k, v);
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("start {}", path.display()))?;
    let mut child = KillOnDrop(child);
    let pid = child.0.id();
    let addr = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if serving(&addr, grpc_name).await {
            break;
        }
        if let Some(status) = child.0.try_wait()? {
            bail!("{name} exited with {status} before serving");
        }
        if Instant::now() > deadline {
            bail!("{name} did not become SERVING within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(idle).await;
    if !serving(&addr, grpc_name).await {
        bail!("{name} stopped serving while idle");
    }
    let rss = rss_kib(pid)?;
    // SIGTERM (graceful shutdown), then make sure it is gone.
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let until = Instant::now() + Duration::from_secs(10);
    while child.0.try_wait()?.is_none() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(rss)
}

/// A child process killed (by its own pid) if still running when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Runs a command to completion off the async threads.
async fn output(mut cmd: std::process::Command) -> Result<std::process::Output> {
    Ok(tokio::task::spawn_blocking(move || cmd.output()).await??)
}

/// What pgbench printed.
#[derive(Debug, Clone, Copy)]
pub struct Pgbench {
    /// Transactions per second (without initial connection time).
    pub tps: f64,
    /// Average latency, ms.
    pub latency_ms: f64,
}

/// `pgbench -i -q -s <scale>` into the scratch database `db`.
pub async fn pgbench_init(admin: &str, db: &str, scale: u32) -> Result<()> {
    let (host, port, user) = pg_parts(admin);
    let mut cmd = std::process::Command::new("pgbench");
    cmd.args([
        "-i",
        "-q",
        "-s",
        &scale.to_string(),
        "-h",
        &host,
        "-p",
        &port,
        "-U",
        &user,
        db,
    ]);
    let out = output(cmd)
        .await
        .context("run pgbench -i (is pgbench installed?)")?;
    if !out.status.success() {
        bail!(
            "pgbench -i failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// `pgbench -c<clients> -j<threads> -T<secs> [extra]` on `db`, parsed.
pub async fn pgbench_run(
    admin: &str,
    db: &str,
    clients: u32,
    threads: u32,
    seconds: u64,
    extra: &[&str],
) -> Result<Pgbench> {
    let (host, port, user) = pg_parts(admin);
    let mut args: Vec<String> = vec![
        format!("-c{clients}"),
        format!("-j{threads}"),
        format!("-T{seconds}"),
        "-n".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend([
        "-h".into(),
        host,
        "-p".into(),
        port,
        "-U".into(),
        user,
        db.to_string(),
    ]);
    let mut cmd = std::process::Command::new("pgbench");
    cmd.args(&args);
    let out = output(cmd).await.context("run pgbench")?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        bail!(
            "pgbench {args:?} failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse_pgbench(&text).ok_or_else(|| anyhow!("cannot parse pgbench output:\n{text}"))
}

/// Reads `tps = …` and `latency average = … ms` from pgbench's report.
pub fn parse_pgbench(text: &str) -> Option<Pgbench> {
    let number_after = |prefix: &str| -> Option<f64> {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    Some(Pgbench {
        tps: number_after("tps = ")?,
        latency_ms: number_after("latency average = ")?,
    })
}

/// host, port, user of a `postgres://user@host:port/db` URL (defaults for what is missing).
fn pg_parts(url: &str) -> (String, String, String) {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or(rest);
    let (user, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (u.split(':').next().unwrap_or("postgres").to_string(), h),
        None => ("postgres".to_string(), authority),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.to_string()),
        None => (hostport.to_string(), "5432".to_string()),
    };
    (host, port, user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgbench_reports_are_parsed() {
        let text = "pgbench (15.20)\ntransaction type: <builtin: select only>\nnumber of clients: 16\n\
latency average = 0.619 ms\ninitial connection time = 12.345 ms\n\
tps = 25831.123456 (without initial connection time)\n";
        let p = parse_pgbench(text).unwrap_or(Pgbench {
            tps: 0.0,
            latency_ms: 0.0,
        });
        assert_eq!(p.tps, 25831.123456);
        assert_eq!(p.latency_ms, 0.619);
        assert!(parse_pgbench("nothing").is_none());
    }

    #[test]
    fn postgres_urls_give_host_port_and_user() {
        assert_eq!(
            pg_parts("postgres://postgres@127.0.0.1:5432/postgres"),
            ("127.0.0.1".into(), "5432".into(), "postgres".into())
        );
        assert_eq!(
            pg_parts("postgres://bob:secret@db/x"),
            ("db".into(), "5432".into(), "bob".into())
        );
    }
}
