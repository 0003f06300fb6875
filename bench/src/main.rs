//! `qilu-bench`: Qilu's workloads and their anchors measured side by side in ONE run on one
//! machine, printed as one table (workload, rate, p50, p99, anchor, ratio, target, verdict).
//!
//! Anchors (what the same machine does without Qilu): `pgbench -S` (a primary-key read on
//! PostgreSQL), pgbench TPC-B (a small read-write transaction), and a bare tonic server answering
//! gRPC health `Check` (the gRPC floor: same tonic, same h2 settings, no middleware, no
//! database). Qilu: the real services, started with the functions their binaries use, over fresh
//! `qilu_bench_*` PostgreSQL databases (dropped at the end) and fresh SQLite files; idle memory
//! from the real binaries. See BENCHMARKS.md for the figures and how to rerun.
//!
//! `--smoke` runs every workload for a moment (CI): it checks that the harness works, not the
//! targets.

#![forbid(unsafe_code)]

mod load;
mod setup;
mod workloads;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

/// Command line.
#[derive(Debug, Clone, Parser)]
#[command(about = "Qilu's workloads beside their anchors, in one run")]
pub struct Args {
    /// Tiny durations and sizes: checks the harness works (CI), not the targets.
    #[arg(long)]
    pub smoke: bool,
    /// Concurrent callers per load run.
    #[arg(long, default_value_t = 64)]
    pub callers: usize,
    /// HTTP/2 connections the callers share.
    #[arg(long, default_value_t = 4)]
    pub channels: usize,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Warm-up seconds before each measured run.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Runs per workload; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// PostgreSQL admin URL (creates and drops `qilu_bench_*` databases).
    #[arg(
        long,
        env = "QILU_TEST_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub postgres: String,
    /// pgbench scale factor of the scratch database.
    #[arg(long, default_value_t = 1)]
    pub pgbench_scale: u32,
    /// Enterprises seeded for the read workloads.
    #[arg(long, default_value_t = 2000)]
    pub seed: u64,
    /// Rows per import run.
    #[arg(long, default_value_t = 20_000)]
    pub import_rows: u64,
    /// High-tech certificates (each of its own enterprise) the sweep workload examines.
    #[arg(long, default_value_t = 100_000)]
    pub sweep_certificates: u64,
    /// Applications per CreateApplication run (each needs its own approved achievement).
    #[arg(long, default_value_t = 600)]
    pub applications: u64,
    /// Applications of the allocation-at-scale workload (created, allocated as an operation
    /// and paged back through the RPCs; each needs its own approved achievement).
    #[arg(long, default_value_t = 100_000)]
    pub result_applications: u64,
    /// Only workloads whose name contains one of these (comma-separated), e.g. `get,echo`.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Exit non-zero when a target fails (never in `--smoke`).
    #[arg(long)]
    pub check: bool,
    /// Server worker threads (the services and the echo anchor share one runtime).
    #[arg(long, default_value_t = 2)]
    pub server_threads: usize,
}

impl Args {
    fn apply_smoke(&mut self) {
        if self.smoke {
            self.seconds = self.seconds.min(0.5);
            self.warmup = self.warmup.min(0.2);
            self.repeats = 1;
            self.seed = self.seed.min(120);
            self.import_rows = self.import_rows.min(600);
            self.sweep_certificates = self.sweep_certificates.min(500);
            self.applications = self.applications.min(12);
            self.result_applications = self.result_applications.min(30);
            self.callers = self.callers.min(16);
            self.check = false;
        }
    }

    /// The warm-up.
    pub fn warmup(&self) -> Duration {
        Duration::from_secs_f64(self.warmup)
    }

    /// The measured window.
    pub fn measure(&self) -> Duration {
        Duration::from_secs_f64(self.seconds)
    }

    /// The longest a workload waits for PostgreSQL to settle after the previous one
    /// (`setup::Databases::settle`): 30 s, 2 s in a smoke run.
    pub fn settle(&self) -> Duration {
        Duration::from_secs(if self.smoke { 2 } else { 30 })
    }

    /// Whether workload `name` was selected.
    pub fn wants(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| name.contains(o.as_str()))
    }
}

fn main() -> ExitCode {
    let mut args = Args::parse();
    args.apply_smoke();
    // The load generator and the servers run on separate runtimes (separate worker threads),
    // as a client and a server would; both share the machine's cores, as pgbench does.
    let client = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("bench-client")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the client runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.server_threads.max(1))
        .enable_all()
        .thread_name("bench-server")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the server runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = client.block_on(workloads::run_all(&args, server.handle().clone()));
    server.shutdown_timeout(Duration::from_secs(5));
    match result {
        Ok(rows) => {
            let failed = rows.iter().any(|r| r.verdict == workloads::Verdict::Fail);
            if args.check && failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("qilu-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
