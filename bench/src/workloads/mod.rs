//! The workloads, their anchors and targets (issue 9), and the table.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use futures::StreamExt;
use qilu_common::auth::Role;
use qilu_proto::awards as apb;
use qilu_proto::awards::award_allocation_service_client::AwardAllocationServiceClient;
use qilu_proto::common as cpb;
use qilu_proto::registry as rpb;
use qilu_proto::registry::enterprise_registry_service_client::EnterpriseRegistryServiceClient;
use qilu_proto::review as vpb;
use qilu_proto::review::achievement_review_service_client::AchievementReviewServiceClient;
use qilu_registry::Registry;
use qilu_suite::PerService;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

use crate::Args;
use crate::load::{self, Stats};
use crate::setup::{self, Databases, Running};

mod allocation;
mod cross;
mod registry;
mod results;
mod sweep;

use allocation::*;
use cross::*;
pub use registry::uscc;
use registry::*;

/// PASS, FAIL, or nothing to judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Target met.
    Pass,
    /// Target missed.
    Fail,
    /// An anchor, or a workload without a target.
    Info,
    /// `--smoke`: measured, not judged.
    Smoke,
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    /// Workload.
    pub name: String,
    /// The measured figure.
    pub value: f64,
    /// Its unit (`rps`, `tps`, `rows/s`, `ms`, `MB`).
    pub unit: &'static str,
    /// Median latency, ms (when per-call).
    pub p50: Option<f64>,
    /// p99 latency, ms (when per-call).
    pub p99: Option<f64>,
    /// The anchor compared against, and its figure.
    pub anchor: Option<(String, f64)>,
    /// The target, as text.
    pub target: String,
    /// Judged.
    pub verdict: Verdict,
    /// Calls (or rows) measured.
    pub calls: u64,
    /// Server CPU per call, µs (in-process servers only).
    pub cpu_us: Option<f64>,
    /// Failed calls and the first error.
    pub note: String,
}

impl Row {
    fn ratio(&self) -> Option<f64> {
        self.anchor
            .as_ref()
            .map(|(_, a)| if *a > 0.0 { self.value / a } else { f64::NAN })
    }
}

fn note_of(s: &Stats) -> String {
    match (&s.first_error, s.errors) {
        (Some(e), n) if n > 0 => format!("{n} failed calls, first: {}", truncate(e, 160)),
        _ => String::new(),
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

/// Runs the selected workloads and prints the table.
pub async fn run_all(args: &Args, rt: tokio::runtime::Handle) -> Result<Vec<Row>> {
    let dbs = Databases::new(args.postgres.clone())?;
    let result = run_selected(args, &rt, &dbs).await;
    dbs.drop_all().await;
    let rows = result?;
    print_table(args, &rows);
    Ok(rows)
}

fn judge(args: &Args, ok: bool) -> Verdict {
    if args.smoke {
        Verdict::Smoke
    } else if ok {
        Verdict::Pass
    } else {
        Verdict::Fail
    }
}

fn per_call(name: &str, unit: &'static str, s: &Stats) -> Row {
    Row {
        name: name.into(),
        value: s.rate,
        unit,
        p50: Some(s.p50_ms).filter(|v| v.is_finite()),
        p99: Some(s.p99_ms).filter(|v| v.is_finite()),
        anchor: None,
        target: String::new(),
        verdict: Verdict::Info,
        calls: s.calls,
        cpu_us: Some(s.server_cpu_us).filter(|v| v.is_finite()),
        note: note_of(s),
    }
}

async fn run_selected(
    args: &Args,
    rt: &tokio::runtime::Handle,
    dbs: &Databases,
) -> Result<Vec<Row>> {
    let mut rows: Vec<Row> = Vec::new();
    let pg_secs = args.seconds.ceil().max(1.0) as u64;
    let mut select_only: Option<f64> = None;
    let mut tpcb: Option<f64> = None;
    let mut echo_rps: Option<f64> = None;

    if args.wants("pgbench") {
        eprintln!(
            "pgbench: initialising a scratch database (scale {})",
            args.pgbench_scale
        );
        let (name, _) = dbs.create_pg("pgbench").await?;
        setup::pgbench_init(&dbs.admin, &name, args.pgbench_scale).await?;
        for (label, extra, slot) in [
            ("anchor: pgbench -S -c16 -j2", &["-S"][..], &mut select_only),
            ("anchor: pgbench TPC-B -c16 -j2", &[][..], &mut tpcb),
        ] {
            dbs.settle(args.settle(), false).await;
            eprintln!("{label}");
            let mut runs = Vec::new();
            for _ in 0..args.repeats.max(1) {
                runs.push(setup::pgbench_run(&dbs.admin, &name, 16, 2, pg_secs, extra).await?);
            }
            runs.sort_by(|a, b| a.tps.total_cmp(&b.tps));
            let mid = runs[runs.len() / 2];
            *slot = Some(mid.tps);
            rows.push(Row {
                name: label.into(),
                value: mid.tps,
                unit: "tps",
                p50: None,
                p99: None,
                anchor: None,
                target: format!("avg {:.2} ms", mid.latency_ms),
                verdict: Verdict::Info,
                calls: 0,
                cpu_us: None,
                note: String::new(),
            });
        }
        // pgbench's dirty buffers are written out here, not during the next workload.
        dbs.settle(args.settle(), true).await;
    }

    if args.wants("echo") {
        dbs.settle(args.settle(), false).await;
        eprintln!("anchor: bare tonic health Check");
        let server = setup::start_echo(rt, dbs.dir.path()).await?;
        let s = echo(args, &server).await?;
        server.stop().await;
        echo_rps = Some(s.rate);
        rows.push(per_call(
            "anchor: bare tonic echo (health Check)",
            "rps",
            &s,
        ));
    }

    let wants_pg_registry = ["get-pg", "get-http", "list", "create-enterprise", "import"]
        .iter()
        .any(|w| args.wants(w));
    if wants_pg_registry {
        let (_, url) = dbs.create_pg("registry").await?;
        eprintln!("registry on PostgreSQL: seeding {} enterprises", args.seed);
        let registry = seeded_registry(args, rt, dbs, &url).await?;
        let mut grpc_get: Option<f64> = None;
        let outcome = async {
            if args.wants("get-pg") {
                dbs.settle(args.settle(), false).await;
                eprintln!("GetEnterprise (PostgreSQL)");
                let s = get_enterprise(args, &registry).await?;
                grpc_get = Some(s.rate);
                let mut row = per_call("GetEnterprise (PostgreSQL)", "rps", &s);
                row.anchor = select_only.map(|a| ("pgbench -S".to_string(), a));
                row.target = "≥ 0.50x, p99 ≤ 10 ms".into();
                let ratio_ok = row.ratio().is_none_or(|r| r >= 0.5);
                row.verdict = judge(args, ratio_ok && s.p99_ms <= 10.0 && s.errors == 0);
                rows.push(row);
            }
            if args.wants("get-http") {
                // The anchor is gRPC GetEnterprise on the same registry in the same run.
                let grpc = match grpc_get {
                    Some(rate) => rate,
                    None => {
                        dbs.settle(args.settle(), false).await;
                        eprintln!("GetEnterprise (PostgreSQL), the anchor of GET /v1/enterprises");
                        get_enterprise(args, &registry).await?.rate
                    }
                };
                dbs.settle(args.settle(), false).await;
                eprintln!("GET /v1/enterprises/{{uscc}} (HTTP/JSON, PostgreSQL)");
                let s = get_enterprise_http(args, &registry).await?;
                let mut row = per_call("GET /v1/enterprises/{uscc} HTTP/JSON (PG)", "rps", &s);
                row.anchor = Some(("gRPC GetEnterprise".to_string(), grpc));
                row.target = "(none)".into();
                rows.push(row);
            }
            if args.wants("list") {
                dbs.settle(args.settle(), false).await;
                eprintln!("ListEnterprises page 50 (PostgreSQL)");
                let s = list_enterprises(args, &registry).await?;
                let mut row = per_call("ListEnterprises page 50 (PostgreSQL)", "rps", &s);
                row.anchor = echo_rps.map(|a| ("echo".to_string(), a));
                row.target = "(none)".into();
                rows.push(row);
            }
            if args.wants("create-enterprise") {
                dbs.settle(args.settle(), false).await;
                eprintln!("CreateEnterprise (PostgreSQL)");
                let s = create_enterprise(args, &registry).await?;
                let mut row = per_call("CreateEnterprise (PostgreSQL)", "rps", &s);
                row.anchor = tpcb.map(|a| ("pgbench TPC-B".to_string(), a));
                row.target = "≥ 0.50x".into();
                row.verdict = judge(args, row.ratio().is_none_or(|r| r >= 0.5) && s.errors == 0);
                rows.push(row);
            }
            if args.wants("import") {
                dbs.settle(args.settle(), false).await;
                eprintln!("ImportEnterprises {} rows (PostgreSQL)", args.import_rows);
                let (first, again) = imports(args, &registry).await?;
                let mut row = per_call(
                    &format!(
                        "ImportEnterprises {} new rows (PostgreSQL)",
                        args.import_rows
                    ),
                    "rows/s",
                    &first,
                );
                row.target = "≥ 20,000 rows/s".into();
                row.verdict = judge(args, first.rate >= 20_000.0);
                rows.push(row);
                let mut row = per_call(
                    "ImportEnterprises same rows again (PostgreSQL)",
                    "rows/s",
                    &again,
                );
                row.target = "(none)".into();
                rows.push(row);
            }
            Ok::<_, anyhow::Error>(())
        }
        .await;
        registry.stop().await;
        outcome?;
    }

    if args.wants("get-sqlite") {
        let url = dbs.sqlite("registry");
        eprintln!("registry on SQLite: seeding {} enterprises", args.seed);
        let registry = seeded_registry(args, rt, dbs, &url).await?;
        dbs.settle(args.settle(), false).await;
        eprintln!("GetEnterprise (SQLite)");
        let s = get_enterprise(args, &registry).await;
        registry.stop().await;
        let s = s?;
        let mut row = per_call("GetEnterprise (SQLite)", "rps", &s);
        row.anchor = echo_rps.map(|a| ("echo".to_string(), a));
        row.target = "≥ 0.30x".into();
        row.verdict = judge(args, row.ratio().is_none_or(|r| r >= 0.3) && s.errors == 0);
        rows.push(row);
    }

    if args.wants("create-application") {
        dbs.settle(args.settle(), false).await;
        eprintln!("CreateApplication (awards → registry + review, PostgreSQL)");
        let s = create_application(args, rt, dbs).await?;
        let mut row = per_call(
            &format!(
                "CreateApplication x{} (awards→registry+review, PG)",
                args.applications
            ),
            "rps",
            &s,
        );
        row.target = "(none)".into();
        rows.push(row);
    }

    if args.wants("scale-allocation") {
        dbs.settle(args.settle(), false).await;
        eprintln!(
            "allocation at scale: {} applications through the RPCs",
            args.result_applications
        );
        rows.extend(results::allocation_at_scale(args, rt, dbs).await?);
    }

    if args.wants("sweep") {
        let (_, url) = dbs.create_pg("sweep").await?;
        dbs.settle(args.settle(), false).await;
        rows.extend(sweep::sweep_rows(args, &url).await?);
    }

    if args.wants("allocate") {
        eprintln!("allocation of 100,000 applications");
        let ms = allocation_ms(if args.smoke { 1 } else { 7 });
        rows.push(Row {
            name: "Allocation of 100,000 applications (award)".into(),
            value: ms,
            unit: "ms",
            p50: None,
            p99: None,
            anchor: None,
            target: "< 1,000 ms".into(),
            verdict: judge(args, ms < 1000.0),
            calls: 0,
            cpu_us: None,
            note: String::new(),
        });
    }

    if args.wants("rss") {
        let idle = Duration::from_secs_f64(if args.smoke { 0.5 } else { 5.0 });
        for (name, grpc) in [
            ("qilu-registry", qilu_proto::service_names::REGISTRY),
            ("qilu-review", qilu_proto::service_names::REVIEW),
            ("qilu-awards", qilu_proto::service_names::AWARDS),
        ] {
            eprintln!("idle RSS: {name}");
            let (_, url) = dbs.create_pg(&name.replace('-', "_")).await?;
            let peers = [
                ("QILU__PEERS__REGISTRY", "http://127.0.0.1:1".to_string()),
                ("QILU__PEERS__REVIEW", "http://127.0.0.1:1".to_string()),
            ];
            let kib = setup::idle_rss(name, grpc, &url, &peers, idle, dbs.dir.path())
                .await
                .with_context(|| format!("idle RSS of {name}"))?;
            let mb = kib as f64 / 1024.0;
            rows.push(Row {
                name: format!("idle RSS {name} (PostgreSQL)"),
                value: mb,
                unit: "MB",
                p50: None,
                p99: None,
                anchor: None,
                target: "< 50 MB".into(),
                verdict: judge(args, mb < 50.0),
                calls: 0,
                cpu_us: None,
                note: String::new(),
            });
        }
    }
    Ok(rows)
}

fn print_table(args: &Args, rows: &[Row]) {
    println!();
    println!(
        "qilu-bench{}: {} callers over {} HTTP/2 connections, {:.1} s measured after {:.1} s warm-up, median of {} run(s)",
        if args.smoke { " --smoke" } else { "" },
        args.callers,
        args.channels,
        args.seconds,
        args.warmup,
        args.repeats
    );
    println!(
        "| {:<52} | {:>10} | {:>6} | {:>8} | {:>8} | {:>8} | {:>9} | {:<14} | {:>6} | {:<22} | {:<7} |",
        "workload",
        "rate",
        "unit",
        "p50 ms",
        "p99 ms",
        "calls",
        "srv µs/op",
        "anchor",
        "ratio",
        "target",
        "verdict"
    );
    println!(
        "|{:-<54}|{:->12}|{:->8}|{:->10}|{:->10}|{:->10}|{:->11}|{:-<16}|{:->8}|{:-<24}|{:-<9}|",
        "", "", "", "", "", "", "", "", "", "", ""
    );
    let fmt_ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    for r in rows {
        let value = if r.unit == "ms" || r.unit == "MB" {
            format!("{:.1}", r.value)
        } else {
            format!("{:.0}", r.value)
        };
        println!(
            "| {:<52} | {:>10} | {:>6} | {:>8} | {:>8} | {:>8} | {:>9} | {:<14} | {:>6} | {:<22} | {:<7} |",
            r.name,
            value,
            r.unit,
            fmt_ms(r.p50),
            fmt_ms(r.p99),
            if r.calls > 0 {
                r.calls.to_string()
            } else {
                "-".to_string()
            },
            r.cpu_us.map_or("-".to_string(), |v| format!("{v:.0}")),
            r.anchor
                .as_ref()
                .map_or("-".to_string(), |(a, _)| a.clone()),
            r.ratio().map_or("-".to_string(), |x| format!("{x:.2}x")),
            r.target,
            match r.verdict {
                Verdict::Pass => "PASS",
                Verdict::Fail => "FAIL",
                Verdict::Info => "",
                Verdict::Smoke => "smoke",
            }
        );
    }
    for r in rows.iter().filter(|r| !r.note.is_empty()) {
        println!("note: {}: {}", r.name, r.note);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_usccs_pass_the_gb32100_check() {
        let known = qilu_uscc::KnownExceptions::default();
        for (tag, n) in [("MA", 0), ("MB", 19_999), ("MC", 9_999_999)] {
            let code = uscc(tag, n);
            assert!(qilu_uscc::Uscc::parse(&code, &known).is_ok(), "{code}");
        }
    }
}
