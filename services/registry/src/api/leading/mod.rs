//! Leading cohorts, the candidate ranking, selection, and the one support policy per selected
//! enterprise (docs/design.md §4; contract `proto/qilu/registry/v1/leading.proto`). Handlers by resource:
//! [`cohorts`] (LeadingCohort), [`members`] (LeadingCohortMember, the ranking, selection),
//! [`policies`] (SupportPolicy); the loaders and the `leading` mark they share are here.
//! Parsing and conversion live in `convert::leading`, the decisions in `domain::leading` and
//! `domain::support_policy`.
//!
//! Invariants kept here:
//! - a cohort's target size is the LEADING_COHORT_SIZE policy target in force for its year,
//!   resolved whenever it is read or used (never a constant); selection stops at it;
//! - `enterprise.leading` is true exactly while the enterprise is SELECTED in the latest cohort
//!   (the highest year): every change of membership or of the latest cohort re-derives it, bumps
//!   the enterprise's version and audits its new state in the same transaction;
//! - at most one support policy per enterprise and cohort (its id is the cohort year); a
//!   deselected member's policy is ENDED; re-selecting the member makes it ACTIVE again, so the
//!   enterprise keeps its one policy and its review history;
//! - reviews are appended, never edited.

pub(super) mod cohorts;
pub(super) mod members;
pub(super) mod policies;

use crate::convert::leading::member_to_proto;
use crate::convert::leading::policies::policy_to_proto;
use chrono::NaiveDate;
use std::collections::HashSet;

use qilu_common::ApiError;
use qilu_common::input::etag::concurrent;
use qilu_common::write::WriteTx;
use qilu_proto::registry as pb;
use sea_orm::ConnectionTrait;

use crate::convert::leading::policies::policy_not_found;
use crate::convert::leading::{cohort_not_found, cohort_to_proto, member_not_found};
use crate::domain::enterprise::Enterprise;
use crate::domain::leading::{
    self as rank, Candidate, CandidateFacts, Cohort, CohortTarget, Member, MemberState,
};
use crate::domain::support_policy::SupportPolicy;
use crate::store::enterprise as enterprise_store;
use crate::store::leading as store;
use crate::store::policy::{self as targets, kind::LEADING_COHORT_SIZE};

/// The size target in force for cohort `year`, if any.
async fn cohort_target(
    conn: &impl ConnectionTrait,
    year: i32,
) -> Result<Option<CohortTarget>, ApiError> {
    Ok(targets::in_force(conn, LEADING_COHORT_SIZE, year)
        .await?
        .map(|t| CohortTarget {
            id: t.id,
            size: t.value,
        }))
}

/// A cohort as the API shows it: its target and counts resolved now.
pub(in crate::api) async fn cohort_view(
    conn: &impl ConnectionTrait,
    c: &Cohort,
) -> Result<pb::LeadingCohort, ApiError> {
    let target = cohort_target(conn, c.year).await?;
    let (selected, with_policy) = store::cohort_counts(conn, c.year).await?;
    Ok(cohort_to_proto(c, target.as_ref(), selected, with_policy))
}

/// Ranks every enterprise for cohort `year` on the figures of `figures_year`: the eligible ones
/// always (ranks are among all of them), the ineligible ones (rank 0) only when asked. Each
/// candidate is marked selected when its USCC is in `selected`.
async fn rank_candidates(
    conn: &impl ConnectionTrait,
    figures_year: i32,
    include_ineligible: bool,
    selected: &HashSet<String>,
) -> Result<Vec<Candidate>, ApiError> {
    let rows = store::all_enterprises(conn).await?;
    let mut out = Vec::new();
    for row in rows {
        let mut facts = facts_of(row, selected)?;
        if !include_ineligible && !rank::ineligibility_reasons(&facts).is_empty() {
            continue;
        }
        let years = crate::store::figures::list_years(conn, &facts.uscc).await?;
        facts.figures = years.iter().find(|f| f.year == figures_year).cloned();
        facts.prior = years.into_iter().find(|f| f.year == figures_year - 1);
        out.push(rank::score(&facts, figures_year));
    }
    rank::rank(&mut out);
    Ok(out)
}

/// What the ranking knows of a stored enterprise (its figures are added by the caller).
fn facts_of(
    row: enterprise_store::Model,
    selected: &HashSet<String>,
) -> Result<CandidateFacts, ApiError> {
    let city = row.city.clone();
    let e = row.into_domain().map_err(ApiError::internal)?;
    let uscc = e.uscc.as_str().to_string();
    Ok(CandidateFacts {
        selected: selected.contains(&uscc),
        uscc,
        display_name: e.fields.display_name,
        city,
        zone: e.fields.zone.unwrap_or_default(),
        green_category: e.fields.green_category,
        state: e.state,
        high_tech_certified: e.high_tech_certified,
        technology_fields: e.fields.technology_fields,
        figures: None,
        prior: None,
    })
}

/// Re-derives `enterprise.leading` (SELECTED in the latest cohort) for `usccs`, writing and
/// auditing each enterprise whose mark changes.
async fn sync_leading(
    tx: &mut WriteTx,
    usccs: &[String],
    today: NaiveDate,
) -> Result<(), ApiError> {
    let latest = store::latest_cohort_year(tx.conn()).await?;
    for uscc in usccs {
        let should = match latest {
            Some(year) => matches!(
                store::get_member(tx.conn(), year, uscc).await?,
                Some(Ok(Member {
                    state: MemberState::Selected,
                    ..
                }))
            ),
            None => false,
        };
        let Some(row) = enterprise_store::get(tx.conn(), uscc).await? else {
            continue;
        };
        if row.leading == should {
            continue;
        }
        let current: Enterprise = row.into_domain().map_err(ApiError::internal)?;
        let mut updated = current.clone();
        updated.leading = should;
        updated.version = current.version + 1;
        updated.update_time_us = tx.now_us();
        if !enterprise_store::update_if_version(tx.conn(), &updated, current.version).await? {
            return Err(concurrent(&current.name()));
        }
        let published = super::enterprises::as_read(tx.conn(), &updated, today).await?;
        tx.record(&updated.name(), &updated, &published)?;
    }
    Ok(())
}

/// The membership of `uscc` in cohort `year`, if it ever was a member.
async fn find_member(
    conn: &impl ConnectionTrait,
    year: i32,
    uscc: &str,
) -> Result<Option<Member>, ApiError> {
    store::get_member(conn, year, uscc)
        .await?
        .transpose()
        .map_err(ApiError::internal)
}

async fn load_member(
    conn: &impl ConnectionTrait,
    year: i32,
    uscc: &str,
) -> Result<Member, ApiError> {
    find_member(conn, year, uscc)
        .await?
        .ok_or_else(|| member_not_found(year, uscc))
}

async fn load_policy(
    conn: &impl ConnectionTrait,
    uscc: &str,
    year: i32,
) -> Result<SupportPolicy, ApiError> {
    store::get_policy(conn, uscc, year)
        .await?
        .ok_or_else(|| policy_not_found(uscc, year))?
        .map_err(ApiError::internal)
}

async fn load_cohort(conn: &impl ConnectionTrait, year: i32) -> Result<Cohort, ApiError> {
    store::get_cohort(conn, year)
        .await?
        .ok_or_else(|| cohort_not_found(year))
}

/// Writes `policy`, moved from the version `previous` was read at, and audits it.
async fn write_policy(
    tx: &mut WriteTx,
    policy: &SupportPolicy,
    previous: &SupportPolicy,
    milestones_changed: bool,
    today: NaiveDate,
) -> Result<(), ApiError> {
    if !store::update_policy_if_version(tx.conn(), policy, previous.version, milestones_changed)
        .await?
    {
        return Err(concurrent(&previous.name()));
    }
    tx.record(&policy.name(), policy, &policy_to_proto(policy, today))?;
    Ok(())
}

/// Writes `member`, moved from the version `previous` was read at, and audits it.
async fn write_member(
    tx: &mut WriteTx,
    member: &Member,
    previous: &Member,
) -> Result<(), ApiError> {
    if !store::update_member_if_version(tx.conn(), member, previous.version).await? {
        return Err(concurrent(&member.name()));
    }
    tx.record(&member.name(), member, &member_to_proto(member))?;
    Ok(())
}

/// Marks cohort `year`'s membership changed at `now_us` and audits it.
async fn touch_cohort(tx: &mut WriteTx, cohort: &Cohort, now_us: i64) -> Result<(), ApiError> {
    let cohort = store::touch_cohort(tx.conn(), cohort, now_us).await?;
    let published = cohort_view(tx.conn(), &cohort).await?;
    tx.record(&cohort.name(), &cohort, &published)?;
    Ok(())
}
