//! Cross-service workloads: CreateApplication (awards → registry + review) against the suite,
//! and the bare tonic echo anchor.

use super::*;

/// Cross-service CreateApplication: awards asks the registry (enterprise active) and the review
/// service (achievement approved, owned) before writing. Each application needs its own approved
/// achievement, made beforehand through the review service's own RPCs.
pub(super) async fn create_application(
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

        let achievements = approved_achievements(&review, "MD", enterprises, total).await?;

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

/// `total` approved achievements, the i-th owned by enterprise `i % enterprises` of `tag`
/// (registered beforehand), each reviewed by one of `total / 90 + 1` experts made here (load
/// limit 100 each); returns their ids in order.
pub(super) async fn approved_achievements(
    review: &Running,
    tag: &str,
    enterprises: u64,
    total: u64,
) -> Result<Vec<String>> {
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
            async move {
                let owner = uscc(tag, i % enterprises);
                let expert = format!("bench{}", i / 90);
                approved_achievement(channel, &admin, review, &owner, &expert)
                    .await
                    .map(|id| (i, id))
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let mut achievements = vec![String::new(); usize::try_from(total)?];
    for m in made {
        let (i, id) = m.map_err(|e| anyhow!("preparing achievements: {e}"))?;
        achievements[usize::try_from(i)?] = id;
    }
    eprintln!(
        "  prepared {total} approved achievements in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(achievements)
}

/// One achievement of `owner`, created, submitted, reviewed by `expert` (90 points) and decided
/// (approved); returns its id.
pub(super) async fn approved_achievement(
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

pub(super) async fn echo(args: &Args, echo: &Running) -> Result<Stats> {
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
