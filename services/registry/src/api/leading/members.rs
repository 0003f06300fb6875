//! LeadingCohortMember and the ranking it is chosen from: rank the candidates, select an
//! enterprise (load → decide → store → record → commit), deselect a member, get, list.

use std::collections::HashSet;

use qilu_common::input::check_etag;
use qilu_common::input::etag::concurrent;
use qilu_common::pagination::PageRequest;
use qilu_common::write::{Begun, WriteTx};
use qilu_common::{ApiError, CallContext};
use qilu_proto::registry as pb;
use sea_orm::ConnectionTrait;

use super::{
    cohort_target, facts_of, find_member, load_cohort, load_member, load_policy, rank_candidates,
    sync_leading, touch_cohort, write_member, write_policy,
};
use crate::api::RegistryApi;
use crate::api::enterprises::{check_own, not_found as enterprise_not_found};
use crate::convert::leading::{
    SelectInput, candidate_to_proto, member_to_proto, parse_candidate_filter, parse_cohort_name,
    parse_deselect, parse_figures_year, parse_member_filter, parse_member_name, parse_select,
};
use crate::domain::leading::{self as rank, Candidate, Member, Selection};
use crate::store::enterprise as enterprise_store;
use crate::store::leading as store;

/// The key of the last candidate of a page.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct CandidateCursor {
    score: i64,
    uscc: String,
}

pub(in crate::api) async fn rank(
    api: &RegistryApi,
    _ctx: &CallContext,
    req: pb::RankLeadingCandidatesRequest,
) -> Result<pb::RankLeadingCandidatesResponse, ApiError> {
    let year = parse_cohort_name(&req.cohort, "cohort")?;
    let figures_year = parse_figures_year(req.figures_year, year)?;
    let filter = parse_candidate_filter(&req.filter)?;
    // The token is bound to the cohort and the fiscal year as well as the filter.
    let page = PageRequest::parse(
        req.page_size,
        &req.page_token,
        &req.filter,
        &format!("{} figures_year={figures_year}", req.cohort),
    )?;
    let after: Option<CandidateCursor> = page.after()?;
    load_cohort(&api.db, year).await?;
    let selected = store::selected_usccs(&api.db, year).await?;
    let ranked = rank_candidates(&api.db, figures_year, !filter.eligible, &selected).await?;
    let matching: Vec<Candidate> = ranked.into_iter().filter(|c| filter.admits(c)).collect();
    let total_size = i32::try_from(matching.len()).unwrap_or(i32::MAX);
    let mut rest: Vec<Candidate> = matching
        .into_iter()
        .filter(|c| {
            after.as_ref().is_none_or(|a| {
                c.score_milli < a.score || (c.score_milli == a.score && c.uscc > a.uscc)
            })
        })
        .collect();
    let more = rest.len() as u64 > page.size;
    rest.truncate(page.size as usize);
    let next_page_token = match (more, rest.last()) {
        (true, Some(last)) => page.next_token(&CandidateCursor {
            score: last.score_milli,
            uscc: last.uscc.clone(),
        })?,
        _ => String::new(),
    };
    Ok(pb::RankLeadingCandidatesResponse {
        candidates: rest.iter().map(candidate_to_proto).collect(),
        next_page_token,
        total_size,
        figures_year,
        scoring_method: rank::scoring_method(),
    })
}

/// Everything selecting `input` is decided on: the cohort, the enterprise, its membership so
/// far, the cohort's size target and fill.
async fn load_selection(
    conn: &impl ConnectionTrait,
    input: &SelectInput,
) -> Result<Selection, ApiError> {
    let uscc = input.uscc.as_str();
    let cohort = load_cohort(conn, input.year).await?;
    let row = enterprise_store::get(conn, uscc)
        .await?
        .ok_or_else(|| enterprise_not_found(uscc))?;
    let existing = find_member(conn, input.year, uscc).await?;
    let target = cohort_target(conn, input.year).await?;
    let (selected, _) = store::cohort_counts(conn, input.year).await?;
    Ok(Selection {
        cohort,
        enterprise: facts_of(row, &HashSet::new())?,
        existing,
        target,
        selected,
    })
}

pub(in crate::api) async fn select(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::SelectLeadingEnterpriseRequest,
) -> Result<pb::LeadingCohortMember, ApiError> {
    let input = parse_select(&req, &api.known_exceptions)?;
    let mut tx =
        match WriteTx::begin::<pb::LeadingCohortMember>(&api.db, ctx, &req.request_id, &req).await?
        {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let now = tx.now_us();
    let uscc = input.uscc.as_str().to_string();

    let selection = load_selection(tx.conn(), &input).await?;
    selection.decide()?;

    // The ranking kept with the membership is the candidate's place among every eligible
    // enterprise on the figures of the year before the cohort, so all of them are scored (who
    // else is selected does not change a rank, hence no selected set).
    let ranked = rank_candidates(tx.conn(), input.year - 1, false, &HashSet::new()).await?;
    let candidate = ranked
        .into_iter()
        .find(|c| c.uscc == uscc)
        .ok_or_else(|| ApiError::internal("an eligible enterprise is missing from the ranking"))?;
    let Selection {
        cohort, existing, ..
    } = selection;
    let member = Member::selected(
        existing.clone(),
        input.year,
        candidate,
        input.reason,
        ctx.caller.subject.clone(),
        now,
    );

    match &existing {
        None => store::insert_member(tx.conn(), &member).await?,
        Some(old) => {
            if !store::update_member_if_version(tx.conn(), &member, old.version).await? {
                return Err(concurrent(&member.name()));
            }
            // Its one policy, ended at deselection, is in force again.
            if !member.support_policy.is_empty() {
                let policy = load_policy(tx.conn(), &uscc, input.year).await?;
                if let Some(reopened) = policy.reopened(now) {
                    write_policy(&mut tx, &reopened, &policy, false, api.today()).await?;
                }
            }
        }
    }
    tx.record(&member.name(), &member, &member_to_proto(&member))?;
    touch_cohort(&mut tx, &cohort, now).await?;
    sync_leading(&mut tx, std::slice::from_ref(&uscc), api.today()).await?;
    let response = member_to_proto(&member);
    tx.commit(&response).await?;
    tracing::info!(member = %member.name(), "leading enterprise selected");
    Ok(response)
}

pub(in crate::api) async fn deselect(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::DeselectLeadingEnterpriseRequest,
) -> Result<pb::LeadingCohortMember, ApiError> {
    let input = parse_deselect(&req, &api.known_exceptions)?;
    let uscc = input.uscc.as_str().to_string();
    let mut tx =
        match WriteTx::begin::<pb::LeadingCohortMember>(&api.db, ctx, &req.request_id, &req).await?
        {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let now = tx.now_us();
    let current = load_member(tx.conn(), input.year, &uscc).await?;
    check_etag(&req.etag, &current.name(), current.version)?;
    let member = current.deselected(input.reason, now)?;
    write_member(&mut tx, &member, &current).await?;
    if !member.support_policy.is_empty() {
        let policy = load_policy(tx.conn(), &uscc, input.year).await?;
        if let Some(ended) = policy.ended(now) {
            write_policy(&mut tx, &ended, &policy, false, api.today()).await?;
        }
    }
    let cohort = load_cohort(tx.conn(), input.year).await?;
    touch_cohort(&mut tx, &cohort, now).await?;
    sync_leading(&mut tx, std::slice::from_ref(&uscc), api.today()).await?;
    let response = member_to_proto(&member);
    tx.commit(&response).await?;
    tracing::info!(member = %member.name(), "leading enterprise deselected");
    Ok(response)
}

pub(in crate::api) async fn get(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::GetLeadingCohortMemberRequest,
) -> Result<pb::LeadingCohortMember, ApiError> {
    let (year, uscc) = parse_member_name(&req.name, "name", &api.known_exceptions)?;
    check_own(ctx, uscc.as_str())?;
    let member = load_member(&api.db, year, uscc.as_str()).await?;
    Ok(member_to_proto(&member))
}

pub(in crate::api) async fn list(
    api: &RegistryApi,
    _ctx: &CallContext,
    req: pb::ListLeadingCohortMembersRequest,
) -> Result<pb::ListLeadingCohortMembersResponse, ApiError> {
    let year = parse_cohort_name(&req.parent, "parent")?;
    let filter = parse_member_filter(&req.filter)?;
    let page = PageRequest::parse(req.page_size, &req.page_token, &req.filter, &req.parent)?;
    let after: Option<String> = page.after()?;
    load_cohort(&api.db, year).await?;
    let mut rows = store::list_members(&api.db, year, filter, after, page.size + 1).await?;
    let more = rows.len() as u64 > page.size;
    rows.truncate(page.size as usize);
    let members = rows
        .into_iter()
        .map(|m| m.map(|m| member_to_proto(&m)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::internal)?;
    let next_page_token = match (more, members.last()) {
        (true, Some(last)) => page.next_token(
            &last
                .enterprise
                .trim_start_matches("enterprises/")
                .to_string(),
        )?,
        _ => String::new(),
    };
    Ok(pb::ListLeadingCohortMembersResponse {
        members,
        next_page_token,
    })
}
