//! The harness both modules of the CLI's tests share: the real `qilu` binary, a free port, and
//! a `qilu dev` child process run the way a newcomer runs it (killed when dropped), with the
//! helpers that run client commands against it and read their output.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The `qilu` binary Cargo built for these tests.
pub const QILU: &str = env!("CARGO_BIN_EXE_qilu");

/// A `qilu dev` child process, killed when dropped.
pub struct Dev {
    child: Child,
    addr: String,
    dir: PathBuf,
    /// Stdout lines as they arrive.
    lines: mpsc::Receiver<String>,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on at the moment of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Dev {
    /// Starts `qilu dev [extra]` with data under `dir` and waits for its banner.
    pub fn start(dir: &Path, extra: &[&str]) -> Dev {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut child = Command::new(QILU)
            .args(["dev", "--addr", &addr, "--data-dir"])
            .arg(dir.join("data"))
            .arg("--config-dir")
            .arg(dir.join("no-config"))
            .args(extra)
            .env("QILU__TELEMETRY__FILTER", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut dev = Dev {
            child,
            addr,
            dir: dir.to_path_buf(),
            lines,
        };
        dev.wait_for("Stop with Ctrl-C.", Duration::from_secs(60));
        dev
    }

    /// Stdout up to and including the first line containing `needle`.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Vec<String> {
        let start = Instant::now();
        let mut seen = Vec::new();
        loop {
            let left = timeout.saturating_sub(start.elapsed());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(needle);
                    seen.push(line);
                    if found {
                        return seen;
                    }
                }
                Err(_) => panic!(
                    "qilu dev never printed {needle:?}; exit {:?}; stdout so far:\n{}",
                    self.child.try_wait(),
                    seen.join("\n")
                ),
            }
        }
    }

    /// A token minted with the same (default) configuration.
    pub fn token(&self, role: &str) -> String {
        let out = Command::new(QILU)
            .args(["token", "--role", role, "--config-dir"])
            .arg(self.dir.join("no-config"))
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Runs `qilu --addr ADDR args…` with `token` in `QILU_TOKEN`, in `cwd`.
    pub fn run(&self, token: &str, args: &[&str]) -> Output {
        Command::new(QILU)
            .args(["--addr", &self.addr])
            .args(args)
            .env("QILU_TOKEN", token)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Stops with SIGTERM and waits for a clean exit.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "exit status {status}");
                return;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "no exit");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        stdout(out),
        stderr(out)
    );
    stdout(out)
}
