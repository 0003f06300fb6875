//! `AllocateProgram` and `GetAllocation`. Every ACTIVE application is re-checked in batch
//! against the registry and the review service at run time, before the write transaction opens
//! (a peer that is down → UNAVAILABLE, nothing written). The run itself is one `WriteTx`: the
//! program moves CLOSED → ALLOCATED, the allocation revision and every application's outcome
//! are written together or not at all. The audit lock serializes writers, so of concurrent runs
//! exactly one finds the program CLOSED; the others get FAILED_PRECONDITION.

use std::collections::BTreeSet;

use qilu_common::auth::Role;
use qilu_common::idempotency;
use qilu_common::input::etag::{check_etag, concurrent};
use qilu_common::write::{Begun, WriteTx};
use qilu_common::{ApiError, CallContext};
use qilu_proto::awards as pb;

use super::programs::save;
use super::{AwardsApi, ceilings};
use crate::convert::ALLOCATION_TYPE;
use crate::convert::allocation::allocation_to_proto;
use crate::convert::application::application_to_proto;
use crate::domain::allocation::{BucketKey, Candidate, Score};
use crate::domain::application::{Application, outcome_code};
use crate::domain::ids::{ProgramId, parse_allocation_name};
use crate::domain::program::{Kind, Program, Transition};
use crate::domain::refusal::{self, Ineligible, achievement_ineligible, enterprise_ineligible};
use crate::domain::run::{self, Run};
use crate::store::{application as application_store, run as run_store};

/// The allocator's candidates for `apps`, with the registry and review facts fetched now.
async fn candidates(
    api: &AwardsApi,
    ctx: &CallContext,
    program: &Program,
    apps: &[Application],
) -> Result<Vec<Candidate>, ApiError> {
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
    let statuses = api.achievement_statuses(ctx, &achievements).await?;
    Ok(apps
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
        .collect())
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
/// it, in `tx`. `apps` are the program's current applications.
pub(super) async fn store_run(
    tx: &mut WriteTx,
    run: &Run,
    apps: &[Application],
) -> Result<(), ApiError> {
    run_store::insert(tx.conn(), run).await.map_err(|e| {
        if qilu_common::db::is_unique_violation(&e) {
            concurrent(&format!("programs/{}/allocation", run.program_id))
        } else {
            e.into()
        }
    })?;
    tx.record(
        &format!("programs/{}/allocation", run.program_id),
        &audit_state(run),
        &allocation_to_proto(run, false),
    )?;
    let entries: std::collections::HashMap<&str, &crate::domain::allocation::Entry> = run
        .result
        .entries
        .iter()
        .map(|e| (e.application.as_str(), e))
        .collect();
    let now = tx.now_us();
    for a in apps {
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
    let candidates = candidates(api, ctx, &program, &apps).await?;

    if req.validate_only {
        let ceiling_caps = ceilings::allocation_caps(&api.db, &program).await?;
        let preview = run::run(
            &program,
            candidates,
            ceiling_caps,
            program.allocation_revision.max(0) + 1,
            None,
            &ctx.caller.subject,
            api.clock.now_us(),
        );
        return Ok(allocation_to_proto(&preview, true));
    }

    let mut tx = match WriteTx::begin::<pb::Allocation>(&api.db, ctx, &req.request_id, &req).await?
    {
        Begun::Replay(previous) => return Ok(previous),
        Begun::Fresh(tx) => tx,
    };
    let current = api.load_program(tx.conn(), &id).await?;
    check_etag(&req.etag, &current.name(), current.version)?;
    let next = refusal::transition(&current, Transition::Allocate)?;
    let now_apps = application_store::of_program(tx.conn(), id.as_str(), true).await?;
    if names(&now_apps) != names(&apps) {
        return Err(ApiError::Aborted(format!(
            "the applications of {} changed while the allocation was computed; retry",
            current.name()
        )));
    }
    // Read under the audit lock: awards other programs of the year made count against the
    // statutory ceilings, and no other allocation can commit in between.
    let ceiling_caps = ceilings::allocation_caps(tx.conn(), &current).await?;
    let stored = run::run(
        &current,
        candidates,
        ceiling_caps,
        1,
        None,
        &ctx.caller.subject,
        tx.now_us(),
    );
    store_run(&mut tx, &stored, &now_apps).await?;
    let mut updated = current.clone();
    updated.state = next;
    updated.allocation_revision = stored.revision;
    save(&mut tx, &current, updated).await?;
    let response = allocation_to_proto(&stored, false);
    tx.commit(&response).await?;
    tracing::info!(
        program = %current.name(),
        selected = stored.result.totals.selected,
        digest = %stored.input_digest,
        "allocation stored"
    );
    Ok(response)
}

pub(super) async fn get_allocation(
    api: &AwardsApi,
    _ctx: &CallContext,
    req: pb::GetAllocationRequest,
) -> Result<pb::Allocation, ApiError> {
    let name = &req.name;
    let id = parse_allocation_name(name, "name")?;
    api.load_program(&api.db, &id).await?;
    let run = run_store::latest(&api.db, id.as_str())
        .await?
        .ok_or_else(|| ApiError::NotFound {
            resource_type: ALLOCATION_TYPE,
            name: name.clone(),
        })?;
    Ok(allocation_to_proto(&run, false))
}
