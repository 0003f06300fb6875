//! A private PostgreSQL cluster for one test: `initdb` into a temporary directory, started with
//! `pg_ctl` on a free loopback port, stopped and started at will, removed when dropped. The
//! shared server on 5432 is never touched. As root, initdb and postgres refuse to run, so they
//! run as the `postgres` OS user, in a directory that user owns.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A running (or stopped) private cluster.
pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The directory holding initdb and pg_ctl: `pg_config --bindir`, else the newest
/// `/usr/lib/postgresql/*/bin`.
fn bindir() -> Option<PathBuf> {
    let usable = |p: &Path| p.join("initdb").is_file() && p.join("pg_ctl").is_file();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if usable(&p) {
            return Some(p);
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| usable(p))
        .collect();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl PrivatePostgres {
    /// A fresh cluster, started; `None` (with a message) when initdb/pg_ctl are missing outside
    /// CI. Under `CI=true` their absence fails the test.
    pub fn start() -> Option<PrivatePostgres> {
        let Some(bin) = bindir() else {
            let why = "initdb/pg_ctl not found (pg_config --bindir, /usr/lib/postgresql/*/bin)";
            if under_ci() {
                panic!("{why} under CI=true: the reliability suite needs a private PostgreSQL");
            }
            eprintln!("SKIPPED: {why}; install PostgreSQL server binaries to run this test");
            return None;
        };
        let as_postgres = is_root();
        let dir = tempfile::Builder::new()
            .prefix("qilu-pg-")
            .tempdir()
            .unwrap();
        if as_postgres {
            run(Command::new("chown").arg("postgres:").arg(dir.path()));
        }
        let pg = PrivatePostgres {
            dir,
            bin,
            port: free_port(),
            as_postgres,
        };
        let data = pg.data();
        pg.run_tool(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-instructions",
            ],
        );
        pg.start_server(true);
        Some(pg)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn run_tool(&self, tool: &str, args: &[&str]) -> Output {
        let program = self.bin.join(tool);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        command.args(args).current_dir(self.dir.path());
        let out = run(&mut command);
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}\n{}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
        );
        out
    }

    /// Starts the server; with `wait`, returns once it accepts connections.
    pub fn start_server(&self, wait: bool) {
        let data = self.data();
        let log = self.dir.path().join("log").display().to_string();
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=100",
            self.port,
            self.dir.path().display()
        );
        let mode = if wait { "-w" } else { "-W" };
        self.run_tool(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-o", &options, mode, "start"],
        );
    }

    /// Stops the server in `mode` (`fast` or `immediate`) and waits until it is gone.
    pub fn stop_server(&self, mode: &str) {
        let data = self.data();
        self.run_tool("pg_ctl", &["-D", &data, "-m", mode, "-w", "stop"]);
    }

    /// Polls until a fresh connection succeeds; returns when it did (the moment PostgreSQL
    /// accepts connections again, to ~5 ms).
    pub async fn wait_accepting(&self, deadline: Duration) -> Instant {
        use sea_orm::sqlx::Connection;
        let url = self.url();
        let give_up = Instant::now() + deadline;
        loop {
            if let Ok(conn) = sea_orm::sqlx::PgConnection::connect(&url).await {
                let at = Instant::now();
                let _ = conn.close().await;
                return at;
            }
            assert!(
                Instant::now() < give_up,
                "private PostgreSQL did not accept connections within {deadline:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data();
        let program = self.bin.join("pg_ctl");
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let _ = command
            .args(["-D", &data, "-m", "immediate", "stop"])
            .output();
    }
}

fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}
