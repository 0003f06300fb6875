//! `AllocateProgram`, `StartAllocation` (the same run as a long-running operation),
//! `GetAllocation`, `ListAllocationEntries` and `ListAllocationRevisions`. Every ACTIVE
//! application is re-checked in batch
//! against the registry and the review service at run time, before the write transaction opens
//! (a peer that is down → UNAVAILABLE, nothing written). The run itself is one `WriteTx`: the
//! program moves CLOSED → ALLOCATED, the allocation revision and every application's outcome
//! are written together or not at all. The audit lock serializes writers, so of concurrent runs
//! exactly one finds the program CLOSED; the others get FAILED_PRECONDITION.
//!
//! Reads: programme staff (admin, officer, auditor) read any stored allocation; once the program
//! is PUBLICIZED or FINAL every other role (enterprise, expert, service, public) reads what the
//! rules publish, with scores, requested amounts and the runner's account left out.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use qilu_common::auth::Role;
use qilu_common::idempotency;
use qilu_common::input::etag::{check_etag, concurrent};
use qilu_common::operations::{self, Job, Progress, RunError, Runner, Start};
use qilu_common::pagination::PageRequest;
use qilu_common::write::{Begun, WriteTx};
use qilu_common::{ApiError, CallContext, FieldViolation};
use qilu_proto::awards as pb;
use qilu_proto::longrunning as lro;

use super::programs::save;
use super::{AwardsApi, PEER_BATCH, ceilings};
use crate::convert::ALLOCATION_TYPE;
use crate::convert::allocation::{
    allocation_to_proto, effective_view, entry_filter, entry_to_proto, redact_entry,
    redact_published,
};
use crate::convert::application::application_to_proto;
use crate::domain::allocation::{BucketKey, Candidate, Score};
use crate::domain::application::{Application, outcome_code};
use crate::domain::ids::{ProgramId, parse_allocation_name};
use crate::domain::program::{Kind, Program, State, Transition};
use crate::domain::refusal::{self, Ineligible, achievement_ineligible, enterprise_ineligible};
use crate::domain::run::{self, Label, Run};
use crate::store::{application as application_store, run as run_store};

/// The method whose operations [`AllocationRunner`] runs.
pub(crate) const START_ALLOCATION: &str = "qilu.awards.v1.AwardAllocationService/StartAllocation";

/// How long a `StartAllocation` operation's write transaction may hold the awards writer.
const OPERATION_WRITE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(600);

/// Where a run reports how far the peer checks got (the operation's metadata).
struct Checking<'a> {
    progress: &'a Progress,
    metadata: &'a mut pb::AllocationProgress,
}

/// The allocator's candidates for `apps`, with the registry and review facts fetched now, and
/// the names the published results show.
async fn candidates(
    api: &AwardsApi,
    ctx: &CallContext,
    program: &Program,
    apps: &[Application],
    mut checking: Option<Checking<'_>>,
) -> Result<(Vec<Candidate>, BTreeMap<String, Label>), ApiError> {
    let usccs: Vec<String> = apps
        .iter()
        .map(|a| a.uscc.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let achievements: Vec<String> = apps
        .iter()
        .map(|a| a.achievement_id.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let enterprises = api.enterprises(ctx, &usccs).await?;
    let mut statuses = HashMap::with_capacity(achievements.len());
    for chunk in achievements.chunks(PEER_BATCH) {
        statuses.extend(api.achievement_statuses(ctx, chunk).await?);
        if let Some(c) = checking.as_mut() {
            c.metadata.checked = i32::try_from(statuses.len()).unwrap_or(i32::MAX);
            c.progress.report(&*c.metadata, true).await;
        }
    }
    let labels = apps
        .iter()
        .map(|a| {
            (
                a.name(),
                Label {
                    enterprise_display_name: enterprises
                        .get(&a.uscc)
                        .map(|e| e.display_name.clone())
                        .unwrap_or_default(),
                    achievement_title: statuses
                        .get(&a.achievement_id)
                        .map(|s| s.title.clone())
                        .unwrap_or_default(),
                },
            )
        })
        .collect();
    let candidates = apps
        .iter()
        .map(|a| {
            let achievement = format!("achievements/{}", a.achievement_id);
            let status = statuses.get(&a.achievement_id);
            let exclusion = match enterprises.get(&a.uscc) {
                None => Some(Ineligible::EnterpriseNotRegistered {
                    enterprise: format!("enterprises/{}", a.uscc),
                }),
                Some(e) => enterprise_ineligible(e, program),
            }
            .or_else(|| achievement_ineligible(status, &achievement, &a.uscc))
            .map(|refused| refused.exclusion());
            let (score, decided_at_us) = status.map_or((Score { sum: 0, count: 0 }, 0), |s| {
                (
                    Score {
                        sum: s.score_sum,
                        count: i64::from(s.score_count),
                    },
                    s.decide_time
                        .as_ref()
                        .map_or(0, |t| t.seconds * 1_000_000 + i64::from(t.nanos / 1000)),
                )
            });
            Candidate {
                application: a.name(),
                enterprise: format!("enterprises/{}", a.uscc),
                achievement,
                field: a.industry_field,
                bucket: match program.kind {
                    Kind::Award => BucketKey {
                        category: a.category,
                        grade: a.grade,
                    },
                    Kind::Project => BucketKey::BUDGET,
                },
                requested_fen: a.requested_amount_fen,
                score,
                decided_at_us,
                exclusion,
            }
        })
        .collect();
    Ok((candidates, labels))
}

/// What the audit log keeps of a revision: enough to see every outcome and why.
fn audit_state(r: &Run) -> serde_json::Value {
    serde_json::json!({
        "revision": r.revision,
        "revised_by_objection": r.revised_by_objection,
        "input_digest": r.input_digest,
        "totals": r.result.totals,
        "entries": r.result.entries.iter().map(|e| serde_json::json!({
            "application": e.application,
            "outcome": e.outcome,
            "rank": e.rank,
            "amount_fen": e.amount_fen,
            "reason": e.reason,
        })).collect::<Vec<_>>(),
    })
}

/// Stores `run` as the program's latest revision and writes every application's outcome from
/// it, in `tx`. `apps` are the program's current applications; `on_written` hears how many
/// outcomes are written so far.
pub(super) async fn store_run(
    tx: &mut WriteTx,
    run: &Run,
    apps: &[Application],
    on_written: &mut (dyn FnMut(usize) + Send),
) -> Result<(), ApiError> {
    run_store::insert(tx.conn(), run, &mut |_| {})
        .await
        .map_err(|e| {
            if qilu_common::db::is_unique_violation(&e) {
                concurrent(&format!("programs/{}/allocation", run.program_id))
            } else {
                e.into()
            }
        })?;
    tx.record(
        &format!("programs/{}/allocation", run.program_id),
        &audit_state(run),
        // The feed carries the allocation without its entries: each application's own change
        // carries its outcome.
        &allocation_to_proto(run, false, pb::AllocationView::Basic),
    )?;
    let entries: std::collections::HashMap<&str, &crate::domain::allocation::Entry> = run
        .result
        .entries
        .iter()
        .map(|e| (e.application.as_str(), e))
        .collect();
    let now = tx.now_us();
    for (i, a) in apps.iter().enumerate() {
        if i % 1000 == 0 {
            on_written(i);
        }
        let Some(e) = entries.get(a.name().as_str()) else {
            continue;
        };
        let mut updated = a.clone();
        updated.score_millipoints = e.score_millipoints;
        updated.outcome = outcome_code(e.outcome);
        updated.outcome_reason = e.reason.clone();
        updated.rank = e.rank;
        updated.amount_fen = e.amount_fen;
        if updated == *a {
            continue;
        }
        updated.version = a.version + 1;
        updated.update_time_us = now;
        if !application_store::update_if_version(tx.conn(), &updated, a.version).await? {
            return Err(concurrent(&a.name()));
        }
        tx.record(
            &updated.name(),
            &updated,
            &application_to_proto(&updated, true),
        )?;
    }
    on_written(apps.len());
    Ok(())
}

fn names(apps: &[Application]) -> Vec<String> {
    apps.iter().map(Application::name).collect()
}

pub(super) async fn allocate_program(
    api: &AwardsApi,
    ctx: &CallContext,
    req: pb::AllocateProgramRequest,
) -> Result<pb::Allocation, ApiError> {
    let id = ProgramId::parse_name(&req.name, "name")?;
    if !req.validate_only && !ctx.has_role(Role::Admin) {
        return Err(ApiError::PermissionDenied(
            "only an admin may run an allocation; officers and auditors may preview it with validate_only".into(),
        ));
    }
    let program = api.load_program(&api.db, &id).await?;
    let refused = refusal::may_allocate(&program, req.validate_only);
    if refused.is_err() || !req.etag.is_empty() && req.etag != program.etag() {
        if !req.validate_only {
            // A retry of a run that already succeeded replays its result.
            if let Some(previous) =
                idempotency::previous::<pb::Allocation>(&api.db, ctx, &req.request_id, &req).await?
            {
                return Ok(previous);
            }
        }
        check_etag(&req.etag, &program.name(), program.version)?;
        refused?;
    }
    let apps = application_store::of_program(&api.db, id.as_str(), true).await?;
    let (candidates, labels) = candidates(api, ctx, &program, &apps, None).await?;

    if req.validate_only {
        let ceiling_caps = ceilings::allocation_caps(&api.db, &program).await?;
        let mut preview = run::run(
            &program,
            candidates,
            ceiling_caps,
            program.allocation_revision.max(0) + 1,
            None,
            &ctx.caller.subject,
            api.clock.now_us(),
        );
        preview.labels = labels;
        let view = effective_view(0, preview.result.totals.applications)?;
        return Ok(allocation_to_proto(&preview, true, view));
    }
    commit_run(
        api,
        ctx,
        &req.request_id,
        &req,
        Commit {
            id: &id,
            etag: &req.etag,
            apps: &apps,
            candidates,
            labels,
            view: None,
            write_deadline: None,
        },
        &mut |_| {},
    )
    .await
}

/// What [`commit_run`] stores.
struct Commit<'a> {
    id: &'a ProgramId,
    etag: &'a str,
    /// The applications the candidates were made from.
    apps: &'a [Application],
    candidates: Vec<Candidate>,
    labels: BTreeMap<String, Label>,
    /// The response's view; `None`: FULL up to the inline limit.
    view: Option<pb::AllocationView>,
    /// How long the write may hold the writer; `None`: as long as any call's write.
    write_deadline: Option<std::time::Duration>,
}

/// The run itself, in one `WriteTx` keyed by `request_id` (a replay returns the first result):
/// re-checks state and etag under the audit lock, allocates, stores the revision, every outcome
/// and the program's move to ALLOCATED.
async fn commit_run(
    api: &AwardsApi,
    ctx: &CallContext,
    request_id: &str,
    request: &impl prost::Message,
    c: Commit<'_>,
    on_written: &mut (dyn FnMut(usize) + Send),
) -> Result<pb::Allocation, ApiError> {
    // A large program's outcomes are written in this one transaction: an operation may hold the
    // writer for longer than a call may (every other awards write waits meanwhile).
    let begun = if let Some(deadline) = c.write_deadline {
        WriteTx::begin_long::<pb::Allocation>(&api.db, ctx, request_id, request, deadline).await?
    } else {
        WriteTx::begin::<pb::Allocation>(&api.db, ctx, request_id, request).await?
    };
    let mut tx = match begun {
        Begun::Replay(previous) => return Ok(previous),
        Begun::Fresh(tx) => tx,
    };
    let current = api.load_program(tx.conn(), c.id).await?;
    check_etag(c.etag, &current.name(), current.version)?;
    let next = refusal::transition(&current, Transition::Allocate)?;
    let now_apps = application_store::of_program(tx.conn(), c.id.as_str(), true).await?;
    if names(&now_apps) != names(c.apps) {
        return Err(ApiError::Aborted(format!(
            "the applications of {} changed while the allocation was computed; retry",
            current.name()
        )));
    }
    // Read under the audit lock: awards other programs of the year made count against the
    // statutory ceilings, and no other allocation can commit in between.
    let ceiling_caps = ceilings::allocation_caps(tx.conn(), &current).await?;
    let mut stored = run::run(
        &current,
        c.candidates,
        ceiling_caps,
        1,
        None,
        &ctx.caller.subject,
        tx.now_us(),
    );
    stored.labels = c.labels;
    store_run(&mut tx, &stored, &now_apps, on_written).await?;
    let mut updated = current.clone();
    updated.state = next;
    updated.allocation_revision = stored.revision;
    save(&mut tx, &current, updated).await?;
    let view = match c.view {
        Some(v) => v,
        None => effective_view(0, stored.result.totals.applications)?,
    };
    let response = allocation_to_proto(&stored, false, view);
    tx.commit(&response).await?;
    tracing::info!(
        program = %current.name(),
        selected = stored.result.totals.selected,
        digest = %stored.input_digest,
        "allocation stored"
    );
    Ok(response)
}

pub(super) async fn start_allocation(
    api: &AwardsApi,
    ctx: &CallContext,
    req: pb::StartAllocationRequest,
) -> Result<lro::Operation, ApiError> {
    let id = ProgramId::parse_name(&req.name, "name")?;
    if let Some(started) = api
        .operations
        .replay(ctx, START_ALLOCATION, &req.request_id, &req)
        .await?
    {
        return Ok(started);
    }
    let program = api.load_program(&api.db, &id).await?;
    check_etag(&req.etag, &program.name(), program.version)?;
    refusal::may_allocate(&program, false)?;
    if let Some(running) = api
        .operations
        .unfinished(START_ALLOCATION, &program.name())
        .await?
    {
        return Err(ApiError::FailedPrecondition {
            message: format!("{running} is already allocating {}", program.name()),
            violations: vec![qilu_common::error::Precondition {
                kind: "ALLOCATION_RUNNING".into(),
                subject: running,
                description: "one allocation of a program runs at a time; follow that operation"
                    .into(),
            }],
        });
    }
    api.operations
        .start(
            ctx,
            Start {
                kind: START_ALLOCATION,
                target: program.name(),
                request_id: &req.request_id,
                request: &req,
                metadata: &pb::AllocationProgress {
                    program: program.name(),
                    stage: pb::AllocationStage::Queued as i32,
                    attempt: 1,
                    ..Default::default()
                },
                response_type: "qilu.awards.v1.Allocation",
            },
        )
        .await
}

/// Runs `StartAllocation` operations: the checks of `AllocateProgram`, reporting progress,
/// waiting (not failing) while a peer is down, and writing through the operation's own
/// idempotency key so that a second run after a commit returns the first's result.
pub(crate) struct AllocationRunner {
    api: AwardsApi,
}

impl AllocationRunner {
    pub(crate) fn new(api: AwardsApi) -> Self {
        AllocationRunner { api }
    }
}

#[operations::async_trait]
impl Runner for AllocationRunner {
    async fn run(&self, job: Job, progress: Progress) -> Result<prost_types::Any, RunError> {
        let api = &self.api;
        let ctx = &job.ctx;
        let req: pb::StartAllocationRequest = job.request()?;
        let id = ProgramId::parse_name(&req.name, "name").map_err(ApiError::from)?;
        let mut metadata = pb::AllocationProgress {
            program: id.name(),
            stage: pb::AllocationStage::Checking as i32,
            attempt: job.attempt,
            ..Default::default()
        };
        progress.report(&metadata, true).await;
        let program = api.load_program(&api.db, &id).await?;
        let refused = refusal::may_allocate(&program, false);
        if refused.is_err() || !req.etag.is_empty() && req.etag != program.etag() {
            // A run after this operation's own commit (a takeover) replays its result.
            if let Some(previous) =
                idempotency::previous::<pb::Allocation>(&api.db, ctx, &job.request_id, &req).await?
            {
                return Ok(operations::pack(&previous));
            }
            check_etag(&req.etag, &program.name(), program.version)?;
            refused.map_err(ApiError::from)?;
        }
        let apps = application_store::of_program(&api.db, id.as_str(), true).await?;
        metadata.applications = i32::try_from(apps.len()).unwrap_or(i32::MAX);
        progress.report(&metadata, true).await;
        let checked = candidates(
            api,
            ctx,
            &program,
            &apps,
            Some(Checking {
                progress: &progress,
                metadata: &mut metadata,
            }),
        )
        .await;
        let (candidates, labels) = match checked {
            Ok(c) => c,
            Err(e @ ApiError::Unavailable { .. }) => {
                metadata.stage = pb::AllocationStage::Waiting as i32;
                metadata.waiting_for = e.to_string();
                progress.report(&metadata, true).await;
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        progress.check()?;
        metadata.stage = pb::AllocationStage::Writing as i32;
        metadata.waiting_for = String::new();
        progress.report(&metadata, true).await;
        // While the write transaction is open, progress is reported to this replica only.
        let local = progress.clone();
        let mut written_meta = metadata.clone();
        let allocation = commit_run(
            api,
            ctx,
            &job.request_id,
            &req,
            Commit {
                id: &id,
                etag: &req.etag,
                apps: &apps,
                candidates,
                labels,
                view: Some(pb::AllocationView::Basic),
                write_deadline: Some(OPERATION_WRITE_DEADLINE),
            },
            &mut move |n| {
                written_meta.written = i32::try_from(n).unwrap_or(i32::MAX);
                local.report_local(&written_meta);
            },
        )
        .await?;
        metadata.stage = pb::AllocationStage::Done as i32;
        metadata.written = metadata.applications;
        progress.report(&metadata, false).await;
        Ok(operations::pack(&allocation))
    }
}

/// Who reads an allocation: staff see everything, others only published results, redacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reader {
    Staff,
    Published,
}

fn reader(ctx: &CallContext, program: &Program) -> Result<Reader, ApiError> {
    if ctx.has_role(Role::Admin) || ctx.has_role(Role::Officer) || ctx.has_role(Role::Auditor) {
        return Ok(Reader::Staff);
    }
    if matches!(program.state, State::Publicized | State::Final) {
        return Ok(Reader::Published);
    }
    Err(ApiError::PermissionDenied(format!(
        "the results of {} are not published yet (it is {}); they are readable by everyone once PUBLICIZED",
        program.name(),
        program.state.as_str()
    )))
}

/// `programs/{p}/allocation` (current) or `programs/{p}/allocation@{revision}` (AIP-162).
fn parse_revisioned(raw: &str, field: &str) -> Result<(ProgramId, Option<i32>), ApiError> {
    let (base, revision) = match raw.split_once('@') {
        Some((base, rev)) => {
            let r = rev
                .parse::<i32>()
                .ok()
                .filter(|r| *r >= 1)
                .ok_or_else(|| {
                    FieldViolation::new(
                        field,
                        "INVALID_RESOURCE_NAME",
                        format!(
                            "a revision is a positive number, as in programs/{{program}}/allocation@2; got {}",
                            qilu_common::limits::echo(rev)
                        ),
                    )
                })?;
            (base, Some(r))
        }
        None => (raw, None),
    };
    Ok((parse_allocation_name(base, field)?, revision))
}

fn allocation_not_found(name: &str) -> ApiError {
    ApiError::NotFound {
        resource_type: ALLOCATION_TYPE,
        name: name.to_string(),
    }
}

pub(super) async fn get_allocation(
    api: &AwardsApi,
    ctx: &CallContext,
    req: pb::GetAllocationRequest,
) -> Result<pb::Allocation, ApiError> {
    let (id, revision) = parse_revisioned(&req.name, "name")?;
    let program = api.load_program(&api.db, &id).await?;
    let reader = reader(ctx, &program)?;
    let run = run_store::head(&api.db, id.as_str(), revision)
        .await?
        .ok_or_else(|| allocation_not_found(&req.name))?;
    let view = effective_view(req.view, run.result.totals.applications)?;
    let run = if view == pb::AllocationView::Full {
        run_store::with_entries(&api.db, run).await?
    } else {
        run
    };
    let mut allocation = allocation_to_proto(&run, false, view);
    if reader == Reader::Published {
        redact_published(&mut allocation);
    }
    Ok(allocation)
}

/// Page key of `ListAllocationEntries`: the revision the paging started on and the last
/// position returned.
#[derive(serde::Serialize, serde::Deserialize)]
struct EntryKey {
    r: i32,
    p: i32,
}

pub(super) async fn list_allocation_entries(
    api: &AwardsApi,
    ctx: &CallContext,
    req: pb::ListAllocationEntriesRequest,
) -> Result<pb::ListAllocationEntriesResponse, ApiError> {
    let (id, revision) = parse_revisioned(&req.parent, "parent")?;
    let filter = entry_filter(&req.filter)?;
    let page = PageRequest::parse(req.page_size, &req.page_token, &req.filter, &req.parent)?;
    let after: Option<EntryKey> = page.after()?;
    let program = api.load_program(&api.db, &id).await?;
    let reader = reader(ctx, &program)?;
    // A token pins the revision its first page read, so a revision made meanwhile (an upheld
    // objection) does not mix two results in one listing.
    let revision = after.as_ref().map(|k| k.r).or(revision);
    let run = run_store::head(&api.db, id.as_str(), revision)
        .await?
        .ok_or_else(|| allocation_not_found(&req.parent))?;
    let (rows, total) =
        run_store::entries_page(&api.db, &run, &filter, after.map(|k| k.p), page.size + 1).await?;
    let more = rows.len() as u64 > page.size;
    let mut entries = Vec::with_capacity(rows.len());
    let mut last = None;
    for (position, e, label) in rows
        .into_iter()
        .take(usize::try_from(page.size).unwrap_or(usize::MAX))
    {
        let mut entry = entry_to_proto(&e, &label);
        if reader == Reader::Published {
            redact_entry(&mut entry);
        }
        entries.push(entry);
        last = Some(position);
    }
    let next_page_token = match (more, last) {
        (true, Some(p)) => page.next_token(&EntryKey { r: run.revision, p })?,
        _ => String::new(),
    };
    Ok(pb::ListAllocationEntriesResponse {
        entries,
        next_page_token,
        total_size: i32::try_from(total).unwrap_or(i32::MAX),
        revision: run.revision,
    })
}

pub(super) async fn list_allocation_revisions(
    api: &AwardsApi,
    ctx: &CallContext,
    req: pb::ListAllocationRevisionsRequest,
) -> Result<pb::ListAllocationRevisionsResponse, ApiError> {
    let id = parse_allocation_name(&req.name, "name")?;
    let page = PageRequest::parse(req.page_size, &req.page_token, "", "")?;
    let before: Option<i32> = page.after()?;
    let program = api.load_program(&api.db, &id).await?;
    let reader = reader(ctx, &program)?;
    let runs = run_store::revisions(&api.db, id.as_str(), before, page.size + 1).await?;
    let more = runs.len() as u64 > page.size;
    let mut allocations = Vec::with_capacity(runs.len());
    for run in runs
        .iter()
        .take(usize::try_from(page.size).unwrap_or(usize::MAX))
    {
        let mut a = allocation_to_proto(run, false, pb::AllocationView::Basic);
        if reader == Reader::Published {
            redact_published(&mut a);
        }
        allocations.push(a);
    }
    let next_page_token = match (more, allocations.last()) {
        (true, Some(a)) => page.next_token(&a.revision)?,
        _ => String::new(),
    };
    Ok(pb::ListAllocationRevisionsResponse {
        allocations,
        next_page_token,
    })
}
