//! An allocation at programme scale through the RPCs (issue 18): N applications created with
//! `CreateApplication`, allocated with `StartAllocation` (followed with `GetOperation` until
//! done), then every entry read back with `ListAllocationEntries`, 1,000 per page. Each phase is
//! a row; the setup (enterprises, experts, N approved achievements through the review RPCs) is
//! timed but not a result.

use std::time::Instant;

use qilu_proto::longrunning as lro;
use qilu_proto::longrunning::operations_client::OperationsClient;

use super::*;

/// The rows of the scale run.
pub(super) async fn allocation_at_scale(
    args: &Args,
    rt: &tokio::runtime::Handle,
    dbs: &Databases,
) -> Result<Vec<Row>> {
    let total = args.result_applications.max(1);
    let dir = dbs.dir.path();
    let (_, registry_url) = dbs.create_pg("scale_registry").await?;
    let (_, review_url) = dbs.create_pg("scale_review").await?;
    let (_, awards_url) = dbs.create_pg("scale_awards").await?;
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
        let enterprises = (total / 100).clamp(1, 1000);
        let reg_channel = registry.channels(1).await?.remove(0);
        let admin_reg = header(&registry.bearer(&[Role::Admin], None, None)?)?;
        import(reg_channel, &admin_reg, "PA", 0, enterprises).await?;

        let achievements = approved_achievements(&review, "PA", enterprises, total).await?;

        let channels = awards.channels(args.channels).await?;
        let admin_aw = header(&awards.bearer(&[Role::Admin], None, None)?)?;
        let program = "scale".to_string();
        let mut c = AwardAllocationServiceClient::new(channels[0].clone());
        c.create_program(request(
            &admin_aw,
            apb::CreateProgramRequest {
                program_id: program.clone(),
                program: Some(apb::Program {
                    display_name: "绿色低碳项目（规模）".into(),
                    kind: apb::ProgramKind::Project as i32,
                    year: 2031,
                    // Funds about a third of them.
                    budget_fen: i64::try_from(total)? * 100_000 / 3,
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
            let owner = uscc("PA", e);
            tokens.push(header(&awards.bearer(
                &[Role::Enterprise],
                Some(&owner),
                None,
            )?)?);
        }
        let tokens = Arc::new(tokens);
        let achievements = Arc::new(achievements);
        let create_channels = channels.clone();
        let parent = format!("programs/{program}");
        eprintln!("  CreateApplication x{total}");
        let created = load::run_count(args.callers, total, move |caller, i| {
            let owner = uscc("PA", i % enterprises);
            let mut client = AwardAllocationServiceClient::new(
                create_channels[caller % create_channels.len()].clone(),
            );
            let r = request(
                &tokens[usize::try_from(i % enterprises).unwrap_or(0)],
                apb::CreateApplicationRequest {
                    parent: parent.clone(),
                    application: Some(apb::Application {
                        enterprise: format!("enterprises/{owner}"),
                        achievement: format!(
                            "achievements/{}",
                            achievements[usize::try_from(i).unwrap_or(0)]
                        ),
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
        .await;
        if created.errors > 0 {
            bail!(
                "{} applications failed: {:?}",
                created.errors,
                created.first_error
            );
        }
        c.close_program(request(
            &admin_aw,
            apb::CloseProgramRequest {
                name: format!("programs/{program}"),
                ..Default::default()
            },
        ))
        .await
        .map_err(|s| anyhow!("close program: {}", status_text(s)))?;

        eprintln!("  StartAllocation, then GetOperation until done");
        let started = Instant::now();
        let op = c
            .start_allocation(request(
                &admin_aw,
                apb::StartAllocationRequest {
                    name: format!("programs/{program}"),
                    request_id: uuid(),
                    ..Default::default()
                },
            ))
            .await
            .map_err(|s| anyhow!("start allocation: {}", status_text(s)))?
            .into_inner();
        let mut ops = OperationsClient::new(channels[0].clone());
        let mut polls = 0u64;
        let done = loop {
            let now = ops
                .get_operation(request(
                    &admin_aw,
                    lro::GetOperationRequest {
                        name: op.name.clone(),
                    },
                ))
                .await
                .map_err(|s| anyhow!("get operation: {}", status_text(s)))?
                .into_inner();
            polls += 1;
            if now.done {
                break now;
            }
            if started.elapsed() > Duration::from_secs(3600) {
                bail!("allocation of {total} not done after an hour");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let allocate_ms = started.elapsed().as_secs_f64() * 1000.0;
        let allocation: apb::Allocation = match done.result {
            Some(lro::operation::Result::Response(any)) => {
                prost::Message::decode(any.value.as_slice())?
            }
            other => bail!("allocation operation failed: {other:?}"),
        };
        if u64::try_from(allocation.entry_count)? != total {
            bail!(
                "the allocation has {} entries, expected {total}",
                allocation.entry_count
            );
        }

        eprintln!("  ListAllocationEntries, 1,000 per page");
        let started = Instant::now();
        let mut token = String::new();
        let mut read = 0u64;
        let mut pages = 0u64;
        let mut largest = 0usize;
        loop {
            let page = c
                .list_allocation_entries(request(
                    &admin_aw,
                    apb::ListAllocationEntriesRequest {
                        parent: format!("programs/{program}/allocation"),
                        page_size: 1000,
                        page_token: token.clone(),
                        filter: String::new(),
                    },
                ))
                .await
                .map_err(|s| anyhow!("list entries: {}", status_text(s)))?
                .into_inner();
            largest = largest.max(prost::Message::encoded_len(&page));
            read += page.entries.len() as u64;
            pages += 1;
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        let page_ms = started.elapsed().as_secs_f64() * 1000.0;
        if read != total {
            bail!("paged {read} entries, expected {total}");
        }
        let row = |name: String, value: f64, unit: &'static str, calls: u64, note: String| Row {
            name,
            value,
            unit,
            p50: None,
            p99: None,
            anchor: None,
            target: "(none)".into(),
            verdict: Verdict::Info,
            calls,
            cpu_us: None,
            note,
        };
        let mut create = per_call(
            &format!("{total} applications: CreateApplication (awards→registry+review, PG)"),
            "rps",
            &created,
        );
        create.target = "(none)".into();
        Ok(vec![
            create,
            row(
                format!("{total} applications: StartAllocation → done (PG)"),
                allocate_ms,
                "ms",
                polls,
                format!(
                    "{} selected, {} fen; {polls} GetOperation polls",
                    allocation.totals.as_ref().map_or(0, |t| t.selected),
                    allocation.totals.as_ref().map_or(0, |t| t.amount_fen)
                ),
            ),
            row(
                format!("{total} applications: ListAllocationEntries, every page (PG)"),
                page_ms,
                "ms",
                pages,
                format!(
                    "{pages} pages of 1,000; largest response {} KiB; {:.0} entries/s",
                    largest / 1024,
                    read as f64 / (page_ms / 1000.0)
                ),
            ),
        ])
    }
    .await;
    awards.stop().await;
    review.stop().await;
    registry.stop().await;
    result
}
