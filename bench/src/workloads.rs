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

/// A bearer header as gRPC metadata (parsed once, cloned per call).
fn header(bearer: &str) -> Result<MetadataValue<Ascii>> {
    bearer
        .parse()
        .map_err(|e| anyhow!("bad bearer header: {e}"))
}

fn request<T>(auth: &MetadataValue<Ascii>, message: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.metadata_mut().insert("authorization", auth.clone());
    r
}

fn status_text(s: tonic::Status) -> String {
    format!("{:?}: {}", s.code(), s.message())
}

/// A valid GB 32100 code registered in Jinan: `tag` (two letters of the code alphabet) keeps
/// the workloads' enterprises apart, `n` < 10,000,000 numbers them.
pub fn uscc(tag: &str, n: u64) -> String {
    let body = format!("91370100{tag}{n:07}");
    // `tag` and the digits are always in the code alphabet, so a check character exists.
    let check = qilu_uscc::check_character(&body).unwrap_or('0');
    format!("{body}{check}")
}

fn enterprise(tag: &str, n: u64) -> rpb::Enterprise {
    rpb::Enterprise {
        uscc: uscc(tag, n),
        display_name: format!("山东绿色低碳科技有限公司{tag}{n}"),
        legal_representative: "张三".into(),
        established_date: "2012-03-15".into(),
        address: "山东省济南市历下区经十路".into(),
        ..Default::default()
    }
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Imports `count` enterprises `tag`/`from..from+count` in 500-row messages; returns the
/// response and the elapsed time.
async fn import(
    channel: Channel,
    auth: &MetadataValue<Ascii>,
    tag: &str,
    from: u64,
    count: u64,
) -> Result<(rpb::ImportEnterprisesResponse, Duration)> {
    let tag = tag.to_string();
    let request_id = uuid();
    let messages: Vec<rpb::ImportEnterprisesRequest> = (0..count)
        .collect::<Vec<_>>()
        .chunks(500)
        .enumerate()
        .map(|(i, chunk)| rpb::ImportEnterprisesRequest {
            rows: chunk
                .iter()
                .map(|&k| rpb::ImportEnterpriseRow {
                    row_number: k as i64 + 1,
                    enterprise: Some(enterprise(&tag, from + k)),
                })
                .collect(),
            request_id: if i == 0 {
                request_id.clone()
            } else {
                String::new()
            },
            validate_only: false,
            rejected_rows_only: true,
        })
        .collect();
    let started = Instant::now();
    let response = EnterpriseRegistryServiceClient::new(channel)
        .max_encoding_message_size(64 << 20)
        .import_enterprises(request(auth, futures::stream::iter(messages)))
        .await
        .map_err(|s| anyhow!("import: {}", status_text(s)))?
        .into_inner();
    let elapsed = started.elapsed();
    if response.rejected_count > 0 {
        bail!(
            "import rejected {} rows: {:?}",
            response.rejected_count,
            response.row_results.first()
        );
    }
    Ok((response, elapsed))
}

/// A registry seeded with `seed` enterprises (every tenth holding a valid high-tech
/// certificate, so `high_tech_certified` is derived from real rows).
async fn seeded_registry(
    args: &Args,
    rt: &tokio::runtime::Handle,
    dbs: &Databases,
    url: &str,
) -> Result<Running> {
    let registry = setup::start::<Registry>(rt, dbs.dir.path(), url, &[]).await?;
    let channel = registry.channels(1).await?.remove(0);
    let admin = header(&registry.bearer(&[Role::Admin], None, None)?)?;
    import(channel.clone(), &admin, "MC", 0, args.seed).await?;
    let certificates = futures::stream::iter((0..args.seed).step_by(10))
        .map(|n| {
            let mut client = EnterpriseRegistryServiceClient::new(channel.clone());
            let admin = admin.clone();
            async move {
                client
                    .create_high_tech_certificate(request(
                        &admin,
                        rpb::CreateHighTechCertificateRequest {
                            parent: format!("enterprises/{}", uscc("MC", n)),
                            high_tech_certificate: Some(rpb::HighTechCertificate {
                                certificate_number: format!("GR2025370{n:05}"),
                                issue_date: "2025-01-10".into(),
                                issuing_authority: "山东省高新技术企业认定管理机构".into(),
                                technology_field: cpb::HighTechField::NewEnergyAndEnergySaving
                                    as i32,
                                ..Default::default()
                            }),
                            request_id: uuid(),
                        },
                    ))
                    .await
                    .map(|_| ())
                    .map_err(status_text)
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    if let Some(Err(e)) = certificates.into_iter().find(Result::is_err) {
        bail!("seeding certificates: {e}");
    }
    Ok(registry)
}

async fn repeat<F, Fut>(args: &Args, mut one: F) -> Stats
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Stats>,
{
    let mut runs = Vec::new();
    for _ in 0..args.repeats.max(1) {
        runs.push(one().await);
    }
    load::median(runs).unwrap_or(Stats {
        rate: 0.0,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        calls: 0,
        errors: 0,
        first_error: Some("no runs".into()),
        server_cpu_us: f64::NAN,
    })
}

async fn get_enterprise(args: &Args, registry: &Running) -> Result<Stats> {
    let channels = registry.channels(args.channels).await?;
    let auth = header(&registry.bearer(&[Role::Officer], None, None)?)?;
    let seed = args.seed.max(1);
    Ok(repeat(args, || {
        let channels = channels.clone();
        let auth = auth.clone();
        load::run(
            args.callers,
            args.warmup(),
            args.measure(),
            move |caller, n| {
                let mut client =
                    EnterpriseRegistryServiceClient::new(channels[caller % channels.len()].clone());
                let r = request(
                    &auth,
                    rpb::GetEnterpriseRequest {
                        name: format!("enterprises/{}", uscc("MC", n.wrapping_mul(7919) % seed)),
                    },
                );
                async move {
                    client
                        .get_enterprise(r)
                        .await
                        .map(|_| ())
                        .map_err(status_text)
                }
            },
        )
    })
    .await)
}

async fn list_enterprises(args: &Args, registry: &Running) -> Result<Stats> {
    let channels = registry.channels(args.channels).await?;
    let auth = header(&registry.bearer(&[Role::Officer], None, None)?)?;
    Ok(repeat(args, || {
        let channels = channels.clone();
        let auth = auth.clone();
        load::run(
            args.callers,
            args.warmup(),
            args.measure(),
            move |caller, _| {
                let mut client =
                    EnterpriseRegistryServiceClient::new(channels[caller % channels.len()].clone());
                let r = request(
                    &auth,
                    rpb::ListEnterprisesRequest {
                        page_size: 50,
                        ..Default::default()
                    },
                );
                async move {
                    let page = client.list_enterprises(r).await.map_err(status_text)?;
                    if page.get_ref().enterprises.is_empty() {
                        return Err("empty page".into());
                    }
                    Ok(())
                }
            },
        )
    })
    .await)
}

async fn create_enterprise(args: &Args, registry: &Running) -> Result<Stats> {
    let channels = registry.channels(args.channels).await?;
    let auth = header(&registry.bearer(&[Role::Officer], None, None)?)?;
    // Every call (warm-up and repeats included) creates a new enterprise: one number sequence
    // across the runs.
    let offset = Arc::new(std::sync::atomic::AtomicU64::new(0));
    Ok(repeat(args, || {
        let channels = channels.clone();
        let auth = auth.clone();
        let base = offset.fetch_add(
            5_000_000 / args.repeats.max(1) as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        load::run(
            args.callers,
            args.warmup(),
            args.measure(),
            move |caller, n| {
                let mut client =
                    EnterpriseRegistryServiceClient::new(channels[caller % channels.len()].clone());
                let r = request(
                    &auth,
                    rpb::CreateEnterpriseRequest {
                        enterprise: Some(enterprise("MA", base + n)),
                        request_id: uuid(),
                    },
                );
                async move {
                    client
                        .create_enterprise(r)
                        .await
                        .map(|_| ())
                        .map_err(status_text)
                }
            },
        )
    })
    .await)
}

/// Streaming import on PostgreSQL: first import of new rows, then the same rows again.
async fn imports(args: &Args, registry: &Running) -> Result<(Stats, Stats)> {
    let channel = registry.channels(1).await?.remove(0);
    let auth = header(&registry.bearer(&[Role::Officer], None, None)?)?;
    let mut first = Vec::new();
    let mut again = Vec::new();
    for r in 0..args.repeats.max(1) as u64 {
        let from = r * args.import_rows;
        let (resp, took) = import(channel.clone(), &auth, "MB", from, args.import_rows).await?;
        if resp.created_count as u64 != args.import_rows {
            bail!(
                "first import created {} of {} rows",
                resp.created_count,
                args.import_rows
            );
        }
        first.push(rows_stats(args.import_rows, took));
        let (resp, took) = import(channel.clone(), &auth, "MB", from, args.import_rows).await?;
        if resp.unchanged_count as u64 != args.import_rows {
            bail!(
                "re-import left {} of {} rows unchanged",
                resp.unchanged_count,
                args.import_rows
            );
        }
        again.push(rows_stats(args.import_rows, took));
    }
    let none = || Stats {
        rate: 0.0,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        calls: 0,
        errors: 0,
        first_error: None,
        server_cpu_us: f64::NAN,
    };
    Ok((
        load::median(first).unwrap_or_else(none),
        load::median(again).unwrap_or_else(none),
    ))
}

fn rows_stats(rows: u64, took: Duration) -> Stats {
    Stats {
        rate: rows as f64 / took.as_secs_f64(),
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        calls: rows,
        errors: 0,
        first_error: None,
        server_cpu_us: f64::NAN,
    }
}

/// Cross-service CreateApplication: awards asks the registry (enterprise active) and the review
/// service (achievement approved, owned) before writing. Each application needs its own approved
/// achievement, made beforehand through the review service's own RPCs.
async fn create_application(
    args: &Args,
    rt: &tokio::runtime::Handle,
    dbs: &Databases,
) -> Result<Stats> {
    let dir = dbs.dir.path();
    let (_, registry_url) = dbs.create_pg("app_registry").await?;
    let (_, review_url) = dbs.create_pg("app_review").await?;
    let (_, awards_url) = dbs.create_pg("app_awards").await?;
    let PerService {
        registry,
        review,
        awards,
    } = setup::start_suite(
        rt,
        dir,
        PerService {
            registry: registry_url,
            review: review_url,
            awards: awards_url,
        },
    )
    .await?;
    let result = async {
        let total = args.applications.max(1);
        let enterprises = 16u64;
        let reg_channel = registry.channels(1).await?.remove(0);
        let admin_reg = header(&registry.bearer(&[Role::Admin], None, None)?)?;
        import(reg_channel, &admin_reg, "MD", 0, enterprises).await?;

        // Experts (load limit 100 each), then approved achievements.
        let review_channel = review.channels(1).await?.remove(0);
        let admin_rev = header(&review.bearer(&[Role::Admin], None, None)?)?;
        let experts = total / 90 + 1;
        for e in 0..experts {
            AchievementReviewServiceClient::new(review_channel.clone())
                .create_expert(request(
                    &admin_rev,
                    vpb::CreateExpertRequest {
                        expert_id: format!("bench{e}"),
                        expert: Some(vpb::Expert {
                            display_name: format!("专家 {e}"),
                            industry_fields: (1..=10).collect(),
                            load_limit: 100,
                            organization: "山东大学".into(),
                            ..Default::default()
                        }),
                        request_id: uuid(),
                    },
                ))
                .await
                .map_err(|s| anyhow!("create expert: {}", status_text(s)))?;
        }
        let started = Instant::now();
        let made: Vec<Result<(u64, String), String>> = futures::stream::iter(0..total)
            .map(|i| {
                let channel = review_channel.clone();
                let admin = admin_rev.clone();
                let review = &review;
                async move {
                    let owner = uscc("MD", i % enterprises);
                    let expert = format!("bench{}", i / 90);
                    approved_achievement(channel, &admin, review, &owner, &expert)
                        .await
                        .map(|id| (i, id))
                }
            })
            .buffer_unordered(32)
            .collect()
            .await;
        let mut achievements = vec![String::new(); total as usize];
        for m in made {
            let (i, id) = m.map_err(|e| anyhow!("preparing achievements: {e}"))?;
            achievements[i as usize] = id;
        }
        eprintln!(
            "  prepared {total} approved achievements in {:.1} s",
            started.elapsed().as_secs_f64()
        );

        let channels = awards.channels(args.channels).await?;
        let admin_aw = header(&awards.bearer(&[Role::Admin], None, None)?)?;
        let mut runs = Vec::new();
        for r in 0..args.repeats.max(1) {
            let program = format!("bench-{r}");
            let mut c = AwardAllocationServiceClient::new(channels[0].clone());
            c.create_program(request(
                &admin_aw,
                apb::CreateProgramRequest {
                    program_id: program.clone(),
                    program: Some(apb::Program {
                        display_name: format!("绿色低碳项目 {r}"),
                        kind: apb::ProgramKind::Project as i32,
                        year: 2030 + r as i32,
                        budget_fen: 1_000_000_000,
                        per_project_cap_fen: 600_000,
                        score_threshold_millipoints: 70_000,
                        ..Default::default()
                    }),
                    request_id: uuid(),
                },
            ))
            .await
            .map_err(|s| anyhow!("create program: {}", status_text(s)))?;
            c.open_program(request(
                &admin_aw,
                apb::OpenProgramRequest {
                    name: format!("programs/{program}"),
                    ..Default::default()
                },
            ))
            .await
            .map_err(|s| anyhow!("open program: {}", status_text(s)))?;
            let mut tokens = Vec::new();
            for e in 0..enterprises {
                let owner = uscc("MD", e);
                tokens.push(header(&awards.bearer(
                    &[Role::Enterprise],
                    Some(&owner),
                    None,
                )?)?);
            }
            let tokens = Arc::new(tokens);
            let achievements = Arc::new(achievements.clone());
            let channels = channels.clone();
            runs.push(
                load::run_count(args.callers, total, move |caller, i| {
                    let owner = uscc("MD", i % enterprises);
                    let mut client = AwardAllocationServiceClient::new(
                        channels[caller % channels.len()].clone(),
                    );
                    let r = request(
                        &tokens[(i % enterprises) as usize],
                        apb::CreateApplicationRequest {
                            parent: format!("programs/{program}"),
                            application: Some(apb::Application {
                                enterprise: format!("enterprises/{owner}"),
                                achievement: format!("achievements/{}", achievements[i as usize]),
                                requested_amount_fen: 100_000,
                                ..Default::default()
                            }),
                            request_id: uuid(),
                        },
                    );
                    async move {
                        client
                            .create_application(r)
                            .await
                            .map(|_| ())
                            .map_err(status_text)
                    }
                })
                .await,
            );
        }
        load::median(runs).ok_or_else(|| anyhow!("no CreateApplication runs"))
    }
    .await;
    awards.stop().await;
    review.stop().await;
    registry.stop().await;
    result
}

/// One achievement of `owner`, created, submitted, reviewed by `expert` (90 points) and decided
/// (approved); returns its id.
async fn approved_achievement(
    channel: Channel,
    admin: &MetadataValue<Ascii>,
    review: &Running,
    owner: &str,
    expert: &str,
) -> Result<String, String> {
    let mut c = AchievementReviewServiceClient::new(channel);
    let a = c
        .create_achievement(request(
            admin,
            vpb::CreateAchievementRequest {
                achievement: Some(vpb::Achievement {
                    owner: format!("enterprises/{owner}"),
                    title: "工业余热梯级利用成套技术".into(),
                    industry_field: cpb::IndustryField::NewEnergy as i32,
                    technology_readiness_level: 7,
                    summary: "清洁生产".into(),
                    green_data: Some(vpb::GreenData {
                        industry_code: "27".into(),
                        annual_energy_kgce: Some(200_000),
                        annual_electricity_kwh: Some(300_000),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                request_id: uuid(),
            },
        ))
        .await
        .map_err(status_text)?
        .into_inner();
    c.submit_achievement(request(
        admin,
        vpb::SubmitAchievementRequest {
            name: a.name.clone(),
            ..Default::default()
        },
    ))
    .await
    .map_err(status_text)?;
    let assigned = c
        .assign_reviewers(request(
            admin,
            vpb::AssignReviewersRequest {
                name: a.name.clone(),
                experts: vec![format!("experts/{expert}")],
                ..Default::default()
            },
        ))
        .await
        .map_err(status_text)?
        .into_inner();
    let review_name = assigned
        .reviews
        .first()
        .map(|r| r.name.clone())
        .ok_or("no review assigned")?;
    let expert_auth = header(
        &review
            .bearer(&[Role::Expert], None, Some(expert))
            .map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    c.submit_review(request(
        &expert_auth,
        vpb::SubmitReviewRequest {
            name: review_name,
            scores: Some(vpb::CriterionScores {
                innovation: 28,
                technical_level: 27,
                economic_benefit: 17,
                green_benefit: 18,
            }),
            comment: "评审意见".into(),
            ..Default::default()
        },
    ))
    .await
    .map_err(status_text)?;
    c.finalize_decision(request(
        admin,
        vpb::FinalizeDecisionRequest {
            name: a.name.clone(),
            ..Default::default()
        },
    ))
    .await
    .map_err(status_text)?;
    Ok(a.name.trim_start_matches("achievements/").to_string())
}

async fn echo(args: &Args, echo: &Running) -> Result<Stats> {
    let channels = echo.channels(args.channels).await?;
    // The same header bytes as the Qilu calls carry, so the transports do the same work.
    let auth = header(&echo.bearer(&[Role::Officer], None, None)?)?;
    Ok(repeat(args, || {
        let channels = channels.clone();
        let auth = auth.clone();
        load::run(
            args.callers,
            args.warmup(),
            args.measure(),
            move |caller, _| {
                let mut client = tonic_health::pb::health_client::HealthClient::new(
                    channels[caller % channels.len()].clone(),
                );
                let r = request(&auth, tonic_health::pb::HealthCheckRequest::default());
                async move { client.check(r).await.map(|_| ()).map_err(status_text) }
            },
        )
    })
    .await)
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

    let wants_pg_registry = ["get-pg", "list", "create-enterprise", "import"]
        .iter()
        .any(|w| args.wants(w));
    if wants_pg_registry {
        let (_, url) = dbs.create_pg("registry").await?;
        eprintln!("registry on PostgreSQL: seeding {} enterprises", args.seed);
        let registry = seeded_registry(args, rt, dbs, &url).await?;
        let outcome = async {
            if args.wants("get-pg") {
                dbs.settle(args.settle(), false).await;
                eprintln!("GetEnterprise (PostgreSQL)");
                let s = get_enterprise(args, &registry).await?;
                let mut row = per_call("GetEnterprise (PostgreSQL)", "rps", &s);
                row.anchor = select_only.map(|a| ("pgbench -S".to_string(), a));
                row.target = "≥ 0.50x, p99 ≤ 10 ms".into();
                let ratio_ok = row.ratio().is_none_or(|r| r >= 0.5);
                row.verdict = judge(args, ratio_ok && s.p99_ms <= 10.0 && s.errors == 0);
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

// ---------------------------------------------------------------------------------------------
// Allocation: the pure allocator on the input of `services/awards/benches/allocate.rs`
// ---------------------------------------------------------------------------------------------

use qilu_awards::domain::allocation::{
    BucketKey, Candidate, Cap, Kind, PriorityShare, Program, Quota, Score, allocate,
};

/// The same deterministic generator (xorshift) as the awards bench, so the figures compare.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> i64 {
        (self.next() % n) as i64
    }
}

fn candidates(n: usize, rng: &mut Rng) -> Vec<Candidate> {
    (0..n)
        .map(|i| {
            let bucket = BucketKey {
                category: 2 + rng.below(3) as i32,
                grade: 2 + rng.below(3) as i32,
            };
            let count = 3 + rng.below(5);
            Candidate {
                application: format!("programs/bench/applications/a{i:07}"),
                enterprise: format!("enterprises/E{i:07}"),
                achievement: format!("achievements/a{i:07}"),
                field: 1 + rng.below(10) as i32,
                bucket,
                requested_fen: 10_000_000 + rng.below(490_000_000),
                score: Score {
                    sum: (50 + rng.below(50)) * count,
                    count,
                },
                decided_at_us: rng.below(1_000_000_000),
                exclusion: (rng.below(50) == 0).then(|| "achievement vetoed".to_string()),
            }
        })
        .collect()
}

fn award_program() -> Program {
    let mut quotas = Vec::new();
    for category in 2..=4 {
        for grade in 2..=4 {
            quotas.push(Quota {
                bucket: BucketKey { category, grade },
                seats: 35,
                amount_fen: 20_000_000,
            });
        }
    }
    Program {
        kind: Kind::Award {
            quotas,
            caps: vec![
                Cap {
                    description: "natural science + invention + progress ≤ 300".into(),
                    categories: vec![2, 3, 4],
                    grades: vec![],
                    limit: 300,
                },
                Cap {
                    description: "first prizes ≤ 35".into(),
                    categories: vec![],
                    grades: vec![2],
                    limit: 35,
                },
            ],
        },
        priority: vec![
            PriorityShare {
                field: 1,
                basis_points: 1500,
            },
            PriorityShare {
                field: 2,
                basis_points: 1000,
            },
            PriorityShare {
                field: 3,
                basis_points: 1500,
            },
        ],
        threshold_millipoints: 60_000,
    }
}

/// Median wall time of `runs` allocations of 100,000 award applications, ms.
fn allocation_ms(runs: usize) -> f64 {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let input = candidates(100_000, &mut rng);
    let program = award_program();
    let mut times: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let start = Instant::now();
            black_box(allocate(black_box(&program), black_box(&input)));
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
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
