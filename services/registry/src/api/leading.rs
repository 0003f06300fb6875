//! Leading cohorts, the candidate ranking, selection, and the one support policy per selected
//! enterprise (docs/design.md §4; contract `proto/qilu/registry/v1/leading.proto`).
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

use chrono::{Datelike, NaiveDate};
use qilu_common::filter::{Filter, Op};
use qilu_common::pagination::PageRequest;
use qilu_common::time::to_timestamp;
use qilu_common::write::{Begun, WriteTx};
use qilu_common::{ApiError, CallContext, FieldViolation, db::is_unique_violation};
use qilu_proto::registry as pb;
use sea_orm::ConnectionTrait;

use crate::convert::{parse_enterprise_name, parse_uscc};
use crate::domain::enterprise::{Enterprise, etag_of};
use crate::domain::leading::{
    self as rank, Candidate, CandidateFacts, Cohort, MAX_REASON_CHARS, Member, MemberState,
    cohort_name, member_name,
};
use crate::domain::support_policy::{
    self as sp, MAX_DESCRIPTION_CHARS, MAX_MEASURES, MAX_MILESTONE_TITLE_CHARS, MAX_MILESTONES,
    MAX_PERSON_CHARS, MAX_SUMMARY_CHARS, MAX_TITLE_CHARS, Measure, MeasureKind, Milestone,
    MilestoneState, PolicyFields, PolicyState, Review, SupportPolicy, policy_name,
};
use crate::domain::uscc::Uscc;
use crate::store::enterprise as enterprise_store;
use crate::store::leading::{self as store, MemberFilter, PolicyCursor, PolicyFilter, YearCmp};
use crate::store::policy::{self as targets, kind::LEADING_COHORT_SIZE};

use super::RegistryApi;
use super::enterprises::{check_own, not_found as enterprise_not_found};

/// Resource type of a cohort, for `ResourceInfo`.
pub const COHORT_TYPE: &str = "registry.qilu.gov.cn/LeadingCohort";
/// Resource type of a membership.
pub const MEMBER_TYPE: &str = "registry.qilu.gov.cn/LeadingCohortMember";
/// Resource type of a support policy.
pub const POLICY_TYPE: &str = "registry.qilu.gov.cn/SupportPolicy";

/// Largest amount of one measure: 10^16 yuan in fen, far above any programme budget, so that
/// sums of amounts never overflow.
const MAX_AMOUNT_FEN: i64 = 1_000_000_000_000_000_000;

/// Fields `UpdateSupportPolicy` may change.
const POLICY_MUTABLE_FIELDS: &[&str] = &[
    "title",
    "summary",
    "measures",
    "responsible_officer",
    "responsible_officer_name",
    "milestones",
];

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

fn cohort_not_found(year: i32) -> ApiError {
    ApiError::NotFound {
        resource_type: COHORT_TYPE,
        name: cohort_name(year),
    }
}

fn member_not_found(year: i32, uscc: &str) -> ApiError {
    ApiError::NotFound {
        resource_type: MEMBER_TYPE,
        name: member_name(year, uscc),
    }
}

fn policy_not_found(uscc: &str, year: i32) -> ApiError {
    ApiError::NotFound {
        resource_type: POLICY_TYPE,
        name: policy_name(uscc, year),
    }
}

fn parse_cohort_name(raw: &str, field: &str) -> Result<i32, ApiError> {
    if raw.is_empty() {
        return Err(ApiError::invalid(
            field,
            "REQUIRED",
            "a cohort name is required",
        ));
    }
    rank::parse_cohort_year(raw).ok_or_else(|| {
        ApiError::invalid(
            field,
            "INVALID_RESOURCE_NAME",
            format!(
                "expected leadingCohorts/{{year}} with a four-digit year, got {}",
                qilu_common::limits::echo(raw)
            ),
        )
    })
}

fn parse_member_name(api: &RegistryApi, raw: &str, field: &str) -> Result<(i32, Uscc), ApiError> {
    if raw.is_empty() {
        return Err(ApiError::invalid(
            field,
            "REQUIRED",
            "a member name is required",
        ));
    }
    let (year, code) = rank::parse_member_name(raw).ok_or_else(|| {
        ApiError::invalid(
            field,
            "INVALID_RESOURCE_NAME",
            format!(
                "expected leadingCohorts/{{year}}/members/{{uscc}}, got {}",
                qilu_common::limits::echo(raw)
            ),
        )
    })?;
    let uscc = parse_uscc(code, field, &api.known_exceptions)
        .map_err(|v| ApiError::InvalidArgument(vec![v]))?;
    Ok((year, uscc))
}

fn parse_policy_name(api: &RegistryApi, raw: &str, field: &str) -> Result<(Uscc, i32), ApiError> {
    if raw.is_empty() {
        return Err(ApiError::invalid(
            field,
            "REQUIRED",
            "a policy name is required",
        ));
    }
    let (code, year) = sp::parse_policy_name(raw).ok_or_else(|| {
        ApiError::invalid(
            field,
            "INVALID_RESOURCE_NAME",
            format!(
                "expected enterprises/{{uscc}}/supportPolicies/{{year}}, got {}",
                qilu_common::limits::echo(raw)
            ),
        )
    })?;
    let uscc = parse_uscc(code, field, &api.known_exceptions)
        .map_err(|v| ApiError::InvalidArgument(vec![v]))?;
    Ok((uscc, year))
}

/// Trimmed text of at most `max` characters; `multiline` admits line breaks and tabs.
fn text(
    raw: &str,
    at: &str,
    max: usize,
    required: bool,
    multiline: bool,
) -> Result<String, FieldViolation> {
    let value = raw.trim();
    if required && value.is_empty() {
        return Err(FieldViolation::new(at, "REQUIRED", "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(FieldViolation::new(
            at,
            "TOO_LONG",
            format!("at most {max} characters"),
        ));
    }
    let allowed = |c: char| multiline && matches!(c, '\n' | '\r' | '\t');
    if value.chars().any(|c| c.is_control() && !allowed(c)) {
        return Err(FieldViolation::new(
            at,
            "CONTROL_CHARACTER",
            "must not contain control characters",
        ));
    }
    Ok(value.to_string())
}

fn date(raw: &str, at: &str) -> Result<NaiveDate, FieldViolation> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(FieldViolation::new(
            at,
            "REQUIRED",
            "a date YYYY-MM-DD is required",
        ));
    }
    let d = NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| {
        FieldViolation::new(
            at,
            "INVALID_DATE",
            format!(
                "{} is not a date YYYY-MM-DD",
                qilu_common::limits::echo(raw)
            ),
        )
    })?;
    if !rank::valid_year(d.year()) {
        return Err(FieldViolation::new(
            at,
            "OUT_OF_RANGE",
            format!("{d} is outside the years 1900-9999"),
        ));
    }
    Ok(d)
}

/// Collects a field's violation, or keeps its value.
fn keep<T>(r: Result<T, FieldViolation>, violations: &mut Vec<FieldViolation>) -> Option<T> {
    r.map_err(|v| violations.push(v)).ok()
}

fn parse_measures(p: &[pb::SupportMeasure], at: &str, v: &mut Vec<FieldViolation>) -> Vec<Measure> {
    if p.is_empty() {
        v.push(FieldViolation::new(
            at,
            "REQUIRED",
            "a support policy needs at least one measure",
        ));
    }
    if p.len() > MAX_MEASURES {
        v.push(FieldViolation::new(
            at,
            "TOO_MANY",
            format!("at most {MAX_MEASURES} measures"),
        ));
        return Vec::new();
    }
    let mut out = Vec::new();
    for (i, m) in p.iter().enumerate() {
        let here = format!("{at}[{i}]");
        let kind = MeasureKind::from_code(m.kind);
        if kind.is_none() {
            v.push(FieldViolation::new(
                format!("{here}.kind"),
                if m.kind == 0 {
                    "REQUIRED"
                } else {
                    "UNKNOWN_ENUM_VALUE"
                },
                format!(
                    "{} is not a measure kind (funding, talent, land, finance, other)",
                    m.kind
                ),
            ));
        }
        let description = keep(
            text(
                &m.description,
                &format!("{here}.description"),
                MAX_DESCRIPTION_CHARS,
                true,
                true,
            ),
            v,
        );
        if !(0..=MAX_AMOUNT_FEN).contains(&m.amount_fen) {
            v.push(FieldViolation::new(
                format!("{here}.amount_fen"),
                "OUT_OF_RANGE",
                format!("an amount in fen from 0 to {MAX_AMOUNT_FEN}"),
            ));
        }
        let provider = keep(
            text(
                &m.provider,
                &format!("{here}.provider"),
                MAX_PERSON_CHARS,
                false,
                false,
            ),
            v,
        );
        if let (Some(kind), Some(description), Some(provider)) = (kind, description, provider) {
            out.push(Measure {
                kind,
                description,
                amount_fen: m.amount_fen,
                provider,
            });
        }
    }
    out
}

fn parse_milestones(
    p: &[pb::Milestone],
    at: &str,
    today: NaiveDate,
    v: &mut Vec<FieldViolation>,
) -> Vec<Milestone> {
    if p.len() > MAX_MILESTONES {
        v.push(FieldViolation::new(
            at,
            "TOO_MANY",
            format!("at most {MAX_MILESTONES} milestones"),
        ));
        return Vec::new();
    }
    let before = v.len();
    let mut out = Vec::new();
    for (i, m) in p.iter().enumerate() {
        let here = format!("{at}[{i}]");
        let id_ok = sp::valid_milestone_id(&m.milestone_id);
        if !id_ok {
            v.push(FieldViolation::new(
                format!("{here}.milestone_id"),
                if m.milestone_id.is_empty() {
                    "REQUIRED"
                } else {
                    "INVALID_ID"
                },
                "lower-case letters, digits and '-', 1-63 characters, not starting with '-'",
            ));
        }
        let title = keep(
            text(
                &m.title,
                &format!("{here}.title"),
                MAX_MILESTONE_TITLE_CHARS,
                true,
                false,
            ),
            v,
        );
        let due = keep(date(&m.due_date, &format!("{here}.due_date")), v);
        let state = MilestoneState::from_code(m.state);
        if state.is_none() {
            let (reason, why) = match m.state {
                0 => ("REQUIRED", "a milestone state is required".to_string()),
                4 => (
                    "OUTPUT_ONLY_VALUE",
                    "OVERDUE is computed from the due date and is never written".to_string(),
                ),
                n => (
                    "UNKNOWN_ENUM_VALUE",
                    format!("{n} is not a milestone state"),
                ),
            };
            v.push(FieldViolation::new(format!("{here}.state"), reason, why));
        }
        let completed = if m.completed_date.trim().is_empty() {
            Some(None)
        } else {
            keep(
                date(&m.completed_date, &format!("{here}.completed_date")),
                v,
            )
            .map(Some)
        };
        let note = keep(
            text(
                &m.note,
                &format!("{here}.note"),
                MAX_DESCRIPTION_CHARS,
                false,
                true,
            ),
            v,
        );
        if let (true, Some(title), Some(due_date), Some(state), Some(completed_date), Some(note)) =
            (id_ok, title, due, state, completed, note)
        {
            out.push(Milestone {
                id: m.milestone_id.clone(),
                title,
                due_date,
                state,
                completed_date,
                note,
            });
        }
    }
    if v.len() == before {
        v.extend(sp::check_milestones(&out, at, today));
    }
    out
}

/// Applies field `path` of `p` (validated) to `fields`.
fn apply_policy_field(
    fields: &mut PolicyFields,
    p: &pb::SupportPolicy,
    path: &str,
    prefix: &str,
    today: NaiveDate,
    v: &mut Vec<FieldViolation>,
) {
    let at = format!("{prefix}.{path}");
    match path {
        "title" => {
            if let Some(t) = keep(text(&p.title, &at, MAX_TITLE_CHARS, true, false), v) {
                fields.title = t;
            }
        }
        "summary" => {
            if let Some(t) = keep(text(&p.summary, &at, MAX_SUMMARY_CHARS, false, true), v) {
                fields.summary = t;
            }
        }
        "measures" => fields.measures = parse_measures(&p.measures, &at, v),
        "responsible_officer" => {
            if let Some(t) = keep(
                text(&p.responsible_officer, &at, MAX_PERSON_CHARS, true, false),
                v,
            ) {
                fields.responsible_officer = t;
            }
        }
        "responsible_officer_name" => {
            if let Some(t) = keep(
                text(
                    &p.responsible_officer_name,
                    &at,
                    MAX_PERSON_CHARS,
                    false,
                    false,
                ),
                v,
            ) {
                fields.responsible_officer_name = t;
            }
        }
        "milestones" => fields.milestones = parse_milestones(&p.milestones, &at, today, v),
        other => v.push(FieldViolation::new(
            "update_mask",
            "FIELD_NOT_UPDATABLE",
            format!(
                "{other:?} cannot be updated; updatable fields: {}",
                POLICY_MUTABLE_FIELDS.join(", ")
            ),
        )),
    }
}

fn bool_value(c: &qilu_common::filter::Condition) -> Result<bool, ApiError> {
    match c.value.as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(filter_error(c, "expects true or false")),
    }
}

fn filter_error(c: &qilu_common::filter::Condition, why: &str) -> ApiError {
    ApiError::invalid("filter", "INVALID_FILTER", format!("{}: {why}", c.field))
}

fn expect_eq(c: &qilu_common::filter::Condition) -> Result<(), ApiError> {
    if c.op == Op::Eq {
        Ok(())
    } else {
        Err(filter_error(c, "supports only ="))
    }
}

// ---------------------------------------------------------------------------------------------
// Conversion to proto
// ---------------------------------------------------------------------------------------------

async fn cohort_to_proto(
    conn: &impl ConnectionTrait,
    c: &Cohort,
) -> Result<pb::LeadingCohort, ApiError> {
    let target = targets::in_force(conn, LEADING_COHORT_SIZE, c.year).await?;
    let (selected, with_policy) = store::cohort_counts(conn, c.year).await?;
    Ok(pb::LeadingCohort {
        name: c.name(),
        year: c.year,
        target_size: target.as_ref().map(|t| t.value).unwrap_or(0),
        target_policy: target
            .map(|t| format!("policyTargets/{}", t.id))
            .unwrap_or_default(),
        selected_count: i32::try_from(selected).unwrap_or(i32::MAX),
        with_policy_count: i32::try_from(with_policy).unwrap_or(i32::MAX),
        description: c.description.clone(),
        create_time: Some(to_timestamp(c.create_time_us)),
        update_time: Some(to_timestamp(c.update_time_us)),
        etag: etag_of(&c.name(), c.version),
    })
}

fn source_text(source: i32, reference: &str) -> String {
    if source == 0 {
        return String::new();
    }
    let name = pb::FigureSource::try_from(source)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("FIGURE_SOURCE_")
                .to_string()
        })
        .unwrap_or_else(|_| source.to_string());
    if reference.is_empty() {
        name
    } else {
        format!("{name} {reference}")
    }
}

fn candidate_to_proto(c: &Candidate) -> pb::LeadingCandidate {
    pb::LeadingCandidate {
        enterprise: format!("enterprises/{}", c.uscc),
        display_name: c.display_name.clone(),
        rank: c.rank,
        score_millipoints: c.score_milli,
        components: c
            .components
            .iter()
            .map(|x| pb::ScoreComponent {
                component: x.id.clone(),
                raw_value: x.raw_value.clone(),
                points_millipoints: x.points_milli,
                weight_basis_points: x.weight_bp,
                contribution_millipoints: x.contribution_milli,
                rule: x.rule.clone(),
                figures_used: x
                    .figures_used
                    .iter()
                    .map(|f| pb::FigureUsed {
                        figure: f.figure.clone(),
                        year: f.year,
                        value: f.value.clone(),
                        unit: f.unit.clone(),
                        source: source_text(f.source, &f.reference),
                    })
                    .collect(),
                missing_data: x.missing_data,
            })
            .collect(),
        eligible: c.eligible,
        ineligibility_reasons: c.ineligibility_reasons.clone(),
        selected: c.selected,
        green_category: c.green_category,
        city: c.city.clone(),
    }
}

fn member_to_proto(m: &Member) -> pb::LeadingCohortMember {
    pb::LeadingCohortMember {
        name: m.name(),
        enterprise: format!("enterprises/{}", m.uscc),
        state: match m.state {
            MemberState::Selected => pb::MemberState::Selected,
            MemberState::Deselected => pb::MemberState::Deselected,
        } as i32,
        ranking_at_selection: Some(candidate_to_proto(&m.ranking_at_selection)),
        select_reason: m.select_reason.clone(),
        selected_by: m.selected_by.clone(),
        select_time: Some(to_timestamp(m.select_time_us)),
        deselect_reason: m.deselect_reason.clone(),
        deselect_time: (m.deselect_time_us != 0).then(|| to_timestamp(m.deselect_time_us)),
        support_policy: m.support_policy.clone(),
        create_time: Some(to_timestamp(m.create_time_us)),
        update_time: Some(to_timestamp(m.update_time_us)),
        etag: member_etag(m),
    }
}

fn member_etag(m: &Member) -> String {
    etag_of(&m.name(), m.version)
}

fn policy_to_proto(p: &SupportPolicy, today: NaiveDate) -> pb::SupportPolicy {
    pb::SupportPolicy {
        name: p.name(),
        member: p.member(),
        title: p.fields.title.clone(),
        summary: p.fields.summary.clone(),
        measures: p
            .fields
            .measures
            .iter()
            .map(|m| pb::SupportMeasure {
                kind: m.kind.code(),
                description: m.description.clone(),
                amount_fen: m.amount_fen,
                provider: m.provider.clone(),
            })
            .collect(),
        responsible_officer: p.fields.responsible_officer.clone(),
        responsible_officer_name: p.fields.responsible_officer_name.clone(),
        milestones: p
            .fields
            .milestones
            .iter()
            .map(|m| pb::Milestone {
                milestone_id: m.id.clone(),
                title: m.title.clone(),
                due_date: m.due_date.format("%Y-%m-%d").to_string(),
                state: m.state_as_read(today),
                completed_date: m
                    .completed_date
                    .map(|d| d.format("%Y-%m-%d").to_string())
                    .unwrap_or_default(),
                note: m.note.clone(),
            })
            .collect(),
        reviews: p
            .reviews
            .iter()
            .map(|r| pb::PolicyReview {
                conclusion: r.conclusion,
                comment: r.comment.clone(),
                reviewer: r.reviewer.clone(),
                review_time: Some(to_timestamp(r.review_time_us)),
            })
            .collect(),
        state: match p.state {
            PolicyState::Active => pb::SupportPolicyState::Active,
            PolicyState::Ended => pb::SupportPolicyState::Ended,
        } as i32,
        create_time: Some(to_timestamp(p.create_time_us)),
        update_time: Some(to_timestamp(p.update_time_us)),
        etag: p.etag(),
    }
}

// ---------------------------------------------------------------------------------------------
// Shared steps
// ---------------------------------------------------------------------------------------------

/// Ranks every enterprise for cohort `year` on the figures of `figures_year`: the eligible ones
/// always (ranks are among all of them), the ineligible ones (rank 0) only when asked.
async fn rank_candidates(
    conn: &impl ConnectionTrait,
    year: i32,
    figures_year: i32,
    include_ineligible: bool,
) -> Result<Vec<Candidate>, ApiError> {
    let rows = store::all_enterprises(conn).await?;
    let selected = store::selected_usccs(conn, year).await?;
    let mut out = Vec::new();
    for row in rows {
        let mut facts = facts_of(row, &selected)?;
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

fn facts_of(
    row: enterprise_store::Model,
    selected: &std::collections::HashSet<String>,
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
async fn sync_leading(tx: &mut WriteTx, usccs: &[String]) -> Result<(), ApiError> {
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
            return Err(ApiError::Aborted(format!(
                "{} changed concurrently; retry",
                current.name()
            )));
        }
        tx.record(&updated.name(), &updated)?;
    }
    Ok(())
}

async fn load_member(
    conn: &impl ConnectionTrait,
    year: i32,
    uscc: &str,
) -> Result<Member, ApiError> {
    store::get_member(conn, year, uscc)
        .await?
        .ok_or_else(|| member_not_found(year, uscc))?
        .map_err(ApiError::internal)
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

fn stale(name: &str, etag: &str) -> ApiError {
    ApiError::Aborted(format!(
        "{name} changed since etag {etag} was read; read it again and retry"
    ))
}

fn lost_race(name: &str) -> ApiError {
    ApiError::Aborted(format!("{name} changed concurrently; retry"))
}

// ---------------------------------------------------------------------------------------------
// Cohorts
// ---------------------------------------------------------------------------------------------

pub(super) async fn create_leading_cohort(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::CreateLeadingCohortRequest,
) -> Result<pb::LeadingCohort, ApiError> {
    let Some(input) = req.leading_cohort.as_ref() else {
        return Err(ApiError::invalid(
            "leading_cohort",
            "REQUIRED",
            "leading_cohort is required",
        ));
    };
    let mut v = Vec::new();
    if input.year == 0 {
        v.push(FieldViolation::new(
            "leading_cohort.year",
            "REQUIRED",
            "the programme year is required",
        ));
    } else if !rank::valid_year(input.year) {
        v.push(FieldViolation::new(
            "leading_cohort.year",
            "OUT_OF_RANGE",
            "a four-digit year, 1900-9999",
        ));
    }
    let description = keep(
        text(
            &input.description,
            "leading_cohort.description",
            MAX_REASON_CHARS,
            false,
            true,
        ),
        &mut v,
    );
    let (true, Some(description)) = (v.is_empty(), description) else {
        return Err(ApiError::InvalidArgument(v));
    };

    let mut tx =
        match WriteTx::begin::<pb::LeadingCohort>(&api.db, ctx, &req.request_id, &req).await? {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let now = tx.now_us();
    let cohort = Cohort {
        year: input.year,
        description,
        create_time_us: now,
        update_time_us: now,
        version: 1,
    };
    if let Err(e) = store::insert_cohort(tx.conn(), &cohort).await {
        return Err(if is_unique_violation(&e) {
            ApiError::AlreadyExists {
                resource_type: COHORT_TYPE,
                name: cohort.name(),
            }
        } else {
            e.into()
        });
    }
    tx.record(&cohort.name(), &cohort)?;
    // A newer cohort becomes the current one: last cohort's members stop being "leading".
    let marked = store::leading_enterprises(tx.conn()).await?;
    sync_leading(&mut tx, &marked).await?;
    let response = cohort_to_proto(tx.conn(), &cohort).await?;
    tx.commit(&response).await?;
    tracing::info!(cohort = %cohort.name(), "leading cohort created");
    Ok(response)
}

pub(super) async fn get_leading_cohort(
    api: &RegistryApi,
    _ctx: &CallContext,
    req: pb::GetLeadingCohortRequest,
) -> Result<pb::LeadingCohort, ApiError> {
    let year = parse_cohort_name(&req.name, "name")?;
    let cohort = load_cohort(&api.db, year).await?;
    cohort_to_proto(&api.db, &cohort).await
}

fn parse_cohort_filter(raw: &str) -> Result<Vec<YearCmp>, ApiError> {
    let filter = Filter::parse(raw)?;
    filter.only(&["year"])?;
    let mut out = Vec::new();
    for c in filter.conditions() {
        let y: i32 = c
            .value
            .parse()
            .map_err(|_| filter_error(c, "expects a year"))?;
        out.push(match c.op {
            Op::Eq => YearCmp::Eq(y),
            Op::Ne => YearCmp::Ne(y),
            Op::Lt => YearCmp::Lt(y),
            Op::Le => YearCmp::Le(y),
            Op::Gt => YearCmp::Gt(y),
            Op::Ge => YearCmp::Ge(y),
            Op::Has => return Err(filter_error(c, "supports =, !=, <, <=, >, >=")),
        });
    }
    Ok(out)
}

pub(super) async fn list_leading_cohorts(
    api: &RegistryApi,
    _ctx: &CallContext,
    req: pb::ListLeadingCohortsRequest,
) -> Result<pb::ListLeadingCohortsResponse, ApiError> {
    let filter = parse_cohort_filter(&req.filter)?;
    let page = PageRequest::parse(req.page_size, &req.page_token, &req.filter, "")?;
    let after: Option<i32> = page.after()?;
    let mut rows = store::list_cohorts(&api.db, &filter, after, page.size + 1).await?;
    let more = rows.len() as u64 > page.size;
    rows.truncate(page.size as usize);
    let next_page_token = match (more, rows.last()) {
        (true, Some(last)) => page.next_token(&last.year)?,
        _ => String::new(),
    };
    let mut leading_cohorts = Vec::with_capacity(rows.len());
    for c in &rows {
        leading_cohorts.push(cohort_to_proto(&api.db, c).await?);
    }
    Ok(pb::ListLeadingCohortsResponse {
        leading_cohorts,
        next_page_token,
    })
}

// ---------------------------------------------------------------------------------------------
// Ranking
// ---------------------------------------------------------------------------------------------

/// The conditions of a ranking filter.
#[derive(Debug, Default)]
struct CandidateFilter {
    city: Option<String>,
    zone: Option<String>,
    green_category: Option<i32>,
    selected: Option<bool>,
    eligible: bool,
}

fn parse_candidate_filter(raw: &str) -> Result<CandidateFilter, ApiError> {
    let filter = Filter::parse(raw)?;
    filter.only(&["city", "zone", "green_category", "selected", "eligible"])?;
    let mut out = CandidateFilter {
        eligible: true,
        ..Default::default()
    };
    for c in filter.conditions() {
        expect_eq(c)?;
        match c.field.as_str() {
            "city" => out.city = Some(c.value.clone()),
            "zone" => out.zone = Some(c.value.clone()),
            "green_category" => {
                let g = qilu_proto::common::GreenCategory::from_str_name(&c.value)
                    .ok_or_else(|| filter_error(c, "expects a GreenCategory name"))?;
                out.green_category = Some(g as i32);
            }
            "selected" => out.selected = Some(bool_value(c)?),
            "eligible" => out.eligible = bool_value(c)?,
            _ => {}
        }
    }
    Ok(out)
}

/// The key of the last candidate of a page.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct CandidateCursor {
    score: i64,
    uscc: String,
}

pub(super) async fn rank_leading_candidates(
    api: &RegistryApi,
    _ctx: &CallContext,
    req: pb::RankLeadingCandidatesRequest,
) -> Result<pb::RankLeadingCandidatesResponse, ApiError> {
    let year = parse_cohort_name(&req.cohort, "cohort")?;
    let figures_year = match req.figures_year {
        0 => year - 1,
        y if rank::valid_year(y) => y,
        _ => {
            return Err(ApiError::invalid(
                "figures_year",
                "OUT_OF_RANGE",
                "a four-digit fiscal year, 1900-9999 (0 for the cohort year minus one)",
            ));
        }
    };
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
    let ranked = rank_candidates(&api.db, year, figures_year, !filter.eligible).await?;
    let matching: Vec<Candidate> = ranked
        .into_iter()
        .filter(|c| {
            c.eligible == filter.eligible
                && filter.city.as_ref().is_none_or(|x| *x == c.city)
                && filter.zone.as_ref().is_none_or(|x| *x == c.zone)
                && filter.green_category.is_none_or(|x| x == c.green_category)
                && filter.selected.is_none_or(|x| x == c.selected)
        })
        .collect();
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

// ---------------------------------------------------------------------------------------------
// Selection
// ---------------------------------------------------------------------------------------------

pub(super) async fn select_leading_enterprise(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::SelectLeadingEnterpriseRequest,
) -> Result<pb::LeadingCohortMember, ApiError> {
    let mut v = Vec::new();
    let year = match parse_cohort_name(&req.cohort, "cohort") {
        Ok(y) => Some(y),
        Err(ApiError::InvalidArgument(x)) => {
            v.extend(x);
            None
        }
        Err(e) => return Err(e),
    };
    let uscc = match parse_enterprise_name(&req.enterprise, "enterprise", &api.known_exceptions) {
        Ok(u) => Some(u),
        Err(ApiError::InvalidArgument(x)) => {
            v.extend(x);
            None
        }
        Err(e) => return Err(e),
    };
    let reason = keep(
        text(&req.reason, "reason", MAX_REASON_CHARS, true, true),
        &mut v,
    );
    let (Some(year), Some(uscc), Some(reason)) = (year, uscc, reason) else {
        return Err(ApiError::InvalidArgument(v));
    };
    let uscc = uscc.as_str().to_string();

    let mut tx =
        match WriteTx::begin::<pb::LeadingCohortMember>(&api.db, ctx, &req.request_id, &req).await?
        {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let now = tx.now_us();
    let cohort = load_cohort(tx.conn(), year).await?;
    let row = enterprise_store::get(tx.conn(), &uscc)
        .await?
        .ok_or_else(|| enterprise_not_found(&uscc))?;
    let existing = match store::get_member(tx.conn(), year, &uscc).await? {
        Some(m) => Some(m.map_err(ApiError::internal)?),
        None => None,
    };
    if let Some(m) = &existing
        && m.state == MemberState::Selected
    {
        return Err(ApiError::precondition(
            "ALREADY_SELECTED",
            m.name(),
            format!(
                "enterprises/{uscc} is already selected in {}",
                cohort.name()
            ),
        ));
    }
    let reasons = rank::ineligibility_reasons(&facts_of(row, &Default::default())?);
    if !reasons.is_empty() {
        return Err(ApiError::precondition(
            "NOT_ELIGIBLE",
            format!("enterprises/{uscc}"),
            format!(
                "enterprises/{uscc} is not an eligible candidate: {}",
                reasons.join("; ")
            ),
        ));
    }
    let target = targets::in_force(tx.conn(), LEADING_COHORT_SIZE, year).await?;
    let (selected, _) = store::cohort_counts(tx.conn(), year).await?;
    match &target {
        None => {
            return Err(ApiError::precondition(
                "NO_COHORT_TARGET",
                cohort.name(),
                format!(
                    "no LEADING_COHORT_SIZE policy target is in force for {year}, so the cohort's size is 0"
                ),
            ));
        }
        Some(t) if i64::try_from(selected).unwrap_or(i64::MAX) >= t.value => {
            return Err(ApiError::precondition(
                "COHORT_FULL",
                cohort.name(),
                format!(
                    "{} already has {selected} selected members, its target size (policyTargets/{}: {})",
                    cohort.name(),
                    t.id,
                    t.value
                ),
            ));
        }
        Some(_) => {}
    }
    let ranked = rank_candidates(tx.conn(), year, year - 1, false).await?;
    let mut candidate = ranked
        .into_iter()
        .find(|c| c.uscc == uscc)
        .ok_or_else(|| ApiError::internal("an eligible enterprise is missing from the ranking"))?;
    candidate.selected = true;

    let member = match existing {
        None => {
            let m = Member {
                year,
                uscc: uscc.clone(),
                state: MemberState::Selected,
                ranking_at_selection: candidate,
                select_reason: reason,
                selected_by: ctx.caller.subject.clone(),
                select_time_us: now,
                deselect_reason: String::new(),
                deselect_time_us: 0,
                support_policy: String::new(),
                create_time_us: now,
                update_time_us: now,
                version: 1,
            };
            store::insert_member(tx.conn(), &m).await?;
            m
        }
        Some(old) => {
            let m = Member {
                state: MemberState::Selected,
                ranking_at_selection: candidate,
                select_reason: reason,
                selected_by: ctx.caller.subject.clone(),
                select_time_us: now,
                deselect_reason: String::new(),
                deselect_time_us: 0,
                update_time_us: now,
                version: old.version + 1,
                ..old.clone()
            };
            if !store::update_member_if_version(tx.conn(), &m, old.version).await? {
                return Err(lost_race(&m.name()));
            }
            // Its one policy, ended at deselection, is in force again.
            if !m.support_policy.is_empty() {
                let p = load_policy(tx.conn(), &uscc, year).await?;
                if p.state == PolicyState::Ended {
                    let reopened = SupportPolicy {
                        state: PolicyState::Active,
                        update_time_us: now,
                        version: p.version + 1,
                        ..p.clone()
                    };
                    if !store::update_policy_if_version(tx.conn(), &reopened, p.version, false)
                        .await?
                    {
                        return Err(lost_race(&p.name()));
                    }
                    tx.record(&reopened.name(), &reopened)?;
                }
            }
            m
        }
    };
    tx.record(&member.name(), &member)?;
    let cohort = store::touch_cohort(tx.conn(), &cohort, now).await?;
    tx.record(&cohort.name(), &cohort)?;
    sync_leading(&mut tx, std::slice::from_ref(&uscc)).await?;
    let response = member_to_proto(&member);
    tx.commit(&response).await?;
    tracing::info!(member = %member.name(), "leading enterprise selected");
    Ok(response)
}

pub(super) async fn deselect_leading_enterprise(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::DeselectLeadingEnterpriseRequest,
) -> Result<pb::LeadingCohortMember, ApiError> {
    let mut v = Vec::new();
    let parsed = match parse_member_name(api, &req.name, "name") {
        Ok(p) => Some(p),
        Err(ApiError::InvalidArgument(x)) => {
            v.extend(x);
            None
        }
        Err(e) => return Err(e),
    };
    let reason = keep(
        text(&req.reason, "reason", MAX_REASON_CHARS, true, true),
        &mut v,
    );
    let (Some((year, uscc)), Some(reason)) = (parsed, reason) else {
        return Err(ApiError::InvalidArgument(v));
    };
    let uscc = uscc.as_str().to_string();

    let mut tx =
        match WriteTx::begin::<pb::LeadingCohortMember>(&api.db, ctx, &req.request_id, &req).await?
        {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let now = tx.now_us();
    let current = load_member(tx.conn(), year, &uscc).await?;
    if !req.etag.is_empty() && req.etag != member_etag(&current) {
        return Err(stale(&current.name(), &req.etag));
    }
    if current.state != MemberState::Selected {
        return Err(ApiError::precondition(
            "MEMBER_NOT_SELECTED",
            current.name(),
            format!("{} is not SELECTED", current.name()),
        ));
    }
    let member = Member {
        state: MemberState::Deselected,
        deselect_reason: reason,
        deselect_time_us: now,
        update_time_us: now,
        version: current.version + 1,
        ..current.clone()
    };
    if !store::update_member_if_version(tx.conn(), &member, current.version).await? {
        return Err(lost_race(&member.name()));
    }
    tx.record(&member.name(), &member)?;
    if !member.support_policy.is_empty() {
        let p = load_policy(tx.conn(), &uscc, year).await?;
        if p.state == PolicyState::Active {
            let ended = SupportPolicy {
                state: PolicyState::Ended,
                update_time_us: now,
                version: p.version + 1,
                ..p.clone()
            };
            if !store::update_policy_if_version(tx.conn(), &ended, p.version, false).await? {
                return Err(lost_race(&p.name()));
            }
            tx.record(&ended.name(), &ended)?;
        }
    }
    let cohort = load_cohort(tx.conn(), year).await?;
    let cohort = store::touch_cohort(tx.conn(), &cohort, now).await?;
    tx.record(&cohort.name(), &cohort)?;
    sync_leading(&mut tx, std::slice::from_ref(&uscc)).await?;
    let response = member_to_proto(&member);
    tx.commit(&response).await?;
    tracing::info!(member = %member.name(), "leading enterprise deselected");
    Ok(response)
}

pub(super) async fn get_leading_cohort_member(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::GetLeadingCohortMemberRequest,
) -> Result<pb::LeadingCohortMember, ApiError> {
    let (year, uscc) = parse_member_name(api, &req.name, "name")?;
    check_own(ctx, uscc.as_str())?;
    let member = load_member(&api.db, year, uscc.as_str()).await?;
    Ok(member_to_proto(&member))
}

fn parse_member_filter(raw: &str) -> Result<MemberFilter, ApiError> {
    let filter = Filter::parse(raw)?;
    filter.only(&["state", "has_support_policy"])?;
    let mut out = MemberFilter::default();
    for c in filter.conditions() {
        expect_eq(c)?;
        match c.field.as_str() {
            "state" => {
                let s = pb::MemberState::from_str_name(&c.value)
                    .and_then(|s| MemberState::from_code(s as i32))
                    .ok_or_else(|| {
                        filter_error(
                            c,
                            "expects MEMBER_STATE_SELECTED or MEMBER_STATE_DESELECTED",
                        )
                    })?;
                out.state = Some(s);
            }
            "has_support_policy" => out.has_support_policy = Some(bool_value(c)?),
            _ => {}
        }
    }
    Ok(out)
}

pub(super) async fn list_leading_cohort_members(
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

// ---------------------------------------------------------------------------------------------
// Support policies
// ---------------------------------------------------------------------------------------------

pub(super) async fn create_support_policy(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::CreateSupportPolicyRequest,
) -> Result<pb::SupportPolicy, ApiError> {
    let uscc = parse_enterprise_name(&req.parent, "parent", &api.known_exceptions)?;
    check_own(ctx, uscc.as_str())?;
    let Some(input) = req.support_policy.as_ref() else {
        return Err(ApiError::invalid(
            "support_policy",
            "REQUIRED",
            "support_policy is required",
        ));
    };
    let today = api.today();
    let mut v = Vec::new();
    let year = match parse_member_name(api, &input.member, "support_policy.member") {
        Ok((year, member_uscc)) if member_uscc == uscc => Some(year),
        Ok(_) => {
            v.push(FieldViolation::new(
                "support_policy.member",
                "PARENT_MISMATCH",
                format!("the member must be of {}", req.parent),
            ));
            None
        }
        Err(ApiError::InvalidArgument(x)) => {
            v.extend(x);
            None
        }
        Err(e) => return Err(e),
    };
    let mut fields = PolicyFields {
        title: String::new(),
        summary: String::new(),
        measures: Vec::new(),
        responsible_officer: String::new(),
        responsible_officer_name: String::new(),
        milestones: Vec::new(),
    };
    for path in POLICY_MUTABLE_FIELDS {
        apply_policy_field(&mut fields, input, path, "support_policy", today, &mut v);
    }
    let (true, Some(year)) = (v.is_empty(), year) else {
        return Err(ApiError::InvalidArgument(v));
    };
    let uscc = uscc.as_str().to_string();

    let mut tx =
        match WriteTx::begin::<pb::SupportPolicy>(&api.db, ctx, &req.request_id, &req).await? {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let now = tx.now_us();
    load_cohort(tx.conn(), year).await?;
    if enterprise_store::get(tx.conn(), &uscc).await?.is_none() {
        return Err(enterprise_not_found(&uscc));
    }
    // Never selected is "not SELECTED" too: the caller's mistake is the state, not the name.
    let Some(member) = store::get_member(tx.conn(), year, &uscc)
        .await?
        .transpose()
        .map_err(ApiError::internal)?
    else {
        return Err(ApiError::precondition(
            "MEMBER_NOT_SELECTED",
            member_name(year, &uscc),
            format!(
                "enterprises/{uscc} was never selected into cohort {year}; only a selected enterprise gets a support policy"
            ),
        ));
    };
    let name = policy_name(&uscc, year);
    let one_policy = |existing: &str| {
        ApiError::precondition(
            "ONE_POLICY_PER_ENTERPRISE",
            existing.to_string(),
            format!(
                "enterprises/{uscc} already has its support policy for cohort {year}: {existing}"
            ),
        )
    };
    if store::get_policy(tx.conn(), &uscc, year).await?.is_some()
        || !member.support_policy.is_empty()
    {
        return Err(one_policy(&name));
    }
    if member.state != MemberState::Selected {
        return Err(ApiError::precondition(
            "MEMBER_NOT_SELECTED",
            member.name(),
            format!(
                "{} is not SELECTED; only a selected enterprise gets a support policy",
                member.name()
            ),
        ));
    }
    let policy = SupportPolicy {
        uscc: uscc.clone(),
        year,
        fields,
        reviews: Vec::new(),
        state: PolicyState::Active,
        create_time_us: now,
        update_time_us: now,
        version: 1,
    };
    if let Err(e) = store::insert_policy(tx.conn(), &policy).await {
        return Err(if is_unique_violation(&e) {
            one_policy(&name)
        } else {
            e.into()
        });
    }
    tx.record(&policy.name(), &policy)?;
    let updated_member = Member {
        support_policy: name,
        update_time_us: now,
        version: member.version + 1,
        ..member.clone()
    };
    if !store::update_member_if_version(tx.conn(), &updated_member, member.version).await? {
        return Err(lost_race(&member.name()));
    }
    tx.record(&updated_member.name(), &updated_member)?;
    let response = policy_to_proto(&policy, today);
    tx.commit(&response).await?;
    tracing::info!(policy = %policy.name(), "support policy created");
    Ok(response)
}

pub(super) async fn get_support_policy(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::GetSupportPolicyRequest,
) -> Result<pb::SupportPolicy, ApiError> {
    let (uscc, year) = parse_policy_name(api, &req.name, "name")?;
    check_own(ctx, uscc.as_str())?;
    let policy = load_policy(&api.db, uscc.as_str(), year).await?;
    Ok(policy_to_proto(&policy, api.today()))
}

fn parse_policy_filter(raw: &str, today: NaiveDate) -> Result<PolicyFilter, ApiError> {
    let filter = Filter::parse(raw)?;
    filter.only(&[
        "year",
        "state",
        "responsible_officer",
        "has_overdue_milestone",
    ])?;
    let mut out = PolicyFilter::default();
    for c in filter.conditions() {
        expect_eq(c)?;
        match c.field.as_str() {
            "year" => {
                out.year = Some(
                    c.value
                        .parse()
                        .map_err(|_| filter_error(c, "expects a year"))?,
                );
            }
            "state" => {
                let s = pb::SupportPolicyState::from_str_name(&c.value)
                    .and_then(|s| PolicyState::from_code(s as i32))
                    .ok_or_else(|| {
                        filter_error(
                            c,
                            "expects SUPPORT_POLICY_STATE_ACTIVE or SUPPORT_POLICY_STATE_ENDED",
                        )
                    })?;
                out.state = Some(s);
            }
            "responsible_officer" => out.responsible_officer = Some(c.value.clone()),
            "has_overdue_milestone" => out.has_overdue_milestone = Some((bool_value(c)?, today)),
            _ => {}
        }
    }
    Ok(out)
}

pub(super) async fn list_support_policies(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::ListSupportPoliciesRequest,
) -> Result<pb::ListSupportPoliciesResponse, ApiError> {
    let uscc = if req.parent == "enterprises/-" {
        if ctx.enterprise_scope().is_some() {
            return Err(ApiError::PermissionDenied(
                "an enterprise token may list only its own support policies".into(),
            ));
        }
        None
    } else {
        let u = parse_enterprise_name(&req.parent, "parent", &api.known_exceptions)?;
        check_own(ctx, u.as_str())?;
        Some(u.as_str().to_string())
    };
    let today = api.today();
    let mut filter = parse_policy_filter(&req.filter, today)?;
    filter.uscc = uscc;
    let page = PageRequest::parse(req.page_size, &req.page_token, &req.filter, &req.parent)?;
    let after: Option<PolicyCursor> = page.after()?;
    let mut rows = store::list_policies(&api.db, &filter, after, page.size + 1).await?;
    let more = rows.len() as u64 > page.size;
    rows.truncate(page.size as usize);
    let policies = rows
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::internal)?;
    let next_page_token = match (more, policies.last()) {
        (true, Some(last)) => page.next_token(&PolicyCursor {
            uscc: last.uscc.clone(),
            year: last.year,
        })?,
        _ => String::new(),
    };
    Ok(pb::ListSupportPoliciesResponse {
        support_policies: policies.iter().map(|p| policy_to_proto(p, today)).collect(),
        next_page_token,
    })
}

pub(super) async fn update_support_policy(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::UpdateSupportPolicyRequest,
) -> Result<pb::SupportPolicy, ApiError> {
    let Some(input) = req.support_policy.as_ref() else {
        return Err(ApiError::invalid(
            "support_policy",
            "REQUIRED",
            "support_policy is required",
        ));
    };
    let (uscc, year) = parse_policy_name(api, &input.name, "support_policy.name")?;
    check_own(ctx, uscc.as_str())?;
    let paths: Vec<String> = req
        .update_mask
        .as_ref()
        .map(|m| m.paths.clone())
        .unwrap_or_default();
    if paths.is_empty() {
        return Err(ApiError::invalid(
            "update_mask",
            "REQUIRED",
            format!(
                "name the fields to update: {}",
                POLICY_MUTABLE_FIELDS.join(", ")
            ),
        ));
    }
    let today = api.today();
    let uscc = uscc.as_str().to_string();

    let mut tx =
        match WriteTx::begin::<pb::SupportPolicy>(&api.db, ctx, &req.request_id, &req).await? {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let current = load_policy(tx.conn(), &uscc, year).await?;
    if !input.etag.is_empty() && input.etag != current.etag() {
        return Err(stale(&current.name(), &input.etag));
    }
    let mut fields = current.fields.clone();
    let mut v = Vec::new();
    for path in &paths {
        apply_policy_field(&mut fields, input, path, "support_policy", today, &mut v);
    }
    if !v.is_empty() {
        return Err(ApiError::InvalidArgument(v));
    }
    if current.state == PolicyState::Ended {
        return Err(ApiError::precondition(
            "POLICY_ENDED",
            current.name(),
            format!("{} has ENDED and is read-only", current.name()),
        ));
    }
    let updated = SupportPolicy {
        fields,
        update_time_us: tx.now_us(),
        version: current.version + 1,
        ..current.clone()
    };
    let milestones_changed = paths.iter().any(|p| p == "milestones");
    if !store::update_policy_if_version(tx.conn(), &updated, current.version, milestones_changed)
        .await?
    {
        return Err(lost_race(&current.name()));
    }
    tx.record(&updated.name(), &updated)?;
    let response = policy_to_proto(&updated, today);
    tx.commit(&response).await?;
    Ok(response)
}

pub(super) async fn record_support_policy_review(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::RecordSupportPolicyReviewRequest,
) -> Result<pb::SupportPolicy, ApiError> {
    let mut v = Vec::new();
    let parsed = match parse_policy_name(api, &req.name, "name") {
        Ok(p) => Some(p),
        Err(ApiError::InvalidArgument(x)) => {
            v.extend(x);
            None
        }
        Err(e) => return Err(e),
    };
    match pb::PolicyReviewConclusion::try_from(req.conclusion) {
        Ok(pb::PolicyReviewConclusion::Unspecified) => v.push(FieldViolation::new(
            "conclusion",
            "REQUIRED",
            "a conclusion (on track, at risk, off track) is required",
        )),
        Err(_) => v.push(FieldViolation::new(
            "conclusion",
            "UNKNOWN_ENUM_VALUE",
            format!("{} is not a review conclusion", req.conclusion),
        )),
        Ok(_) => {}
    }
    let comment = keep(
        text(&req.comment, "comment", MAX_SUMMARY_CHARS, true, true),
        &mut v,
    );
    let (true, Some((uscc, year)), Some(comment)) = (v.is_empty(), parsed, comment) else {
        return Err(ApiError::InvalidArgument(v));
    };
    check_own(ctx, uscc.as_str())?;
    let uscc = uscc.as_str().to_string();

    let mut tx =
        match WriteTx::begin::<pb::SupportPolicy>(&api.db, ctx, &req.request_id, &req).await? {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let now = tx.now_us();
    let current = load_policy(tx.conn(), &uscc, year).await?;
    if !req.etag.is_empty() && req.etag != current.etag() {
        return Err(stale(&current.name(), &req.etag));
    }
    if current.state == PolicyState::Ended {
        return Err(ApiError::precondition(
            "POLICY_ENDED",
            current.name(),
            format!("{} has ENDED and is read-only", current.name()),
        ));
    }
    let review = Review {
        conclusion: req.conclusion,
        comment,
        reviewer: ctx.caller.subject.clone(),
        review_time_us: now,
    };
    let mut updated = SupportPolicy {
        update_time_us: now,
        version: current.version + 1,
        ..current.clone()
    };
    updated.reviews.push(review.clone());
    if !store::update_policy_if_version(tx.conn(), &updated, current.version, false).await? {
        return Err(lost_race(&current.name()));
    }
    let sequence = i32::try_from(updated.reviews.len()).unwrap_or(i32::MAX);
    store::append_review(tx.conn(), &uscc, year, sequence, &review).await?;
    tx.record(&updated.name(), &updated)?;
    let response = policy_to_proto(&updated, api.today());
    tx.commit(&response).await?;
    Ok(response)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn candidate_filters_default_to_eligible_and_refuse_unknown_fields() {
        let f = parse_candidate_filter("").unwrap();
        assert!(f.eligible);
        let f = parse_candidate_filter(
            r#"city = "Qingdao" AND green_category = GREEN_CATEGORY_CLEAN_ENERGY AND selected = false AND eligible = false"#,
        )
        .unwrap();
        assert_eq!(f.city.as_deref(), Some("Qingdao"));
        assert_eq!(f.green_category, Some(3));
        assert_eq!(f.selected, Some(false));
        assert!(!f.eligible);
        assert!(parse_candidate_filter("revenue = 5").is_err());
        assert!(parse_candidate_filter("selected = maybe").is_err());
        assert!(parse_candidate_filter("city : \"Q\"").is_err());
    }

    #[test]
    fn member_and_policy_filters_parse_enum_names() {
        let f = parse_member_filter("state = MEMBER_STATE_SELECTED AND has_support_policy = false")
            .unwrap();
        assert_eq!(f.state, Some(MemberState::Selected));
        assert_eq!(f.has_support_policy, Some(false));
        assert!(parse_member_filter("state = SELECTED").is_err());
        let today = NaiveDate::from_ymd_opt(2024, 6, 1).unwrap();
        let p = parse_policy_filter(
            r#"year = 2023 AND state = SUPPORT_POLICY_STATE_ACTIVE AND responsible_officer = "officer-1" AND has_overdue_milestone = true"#,
            today,
        )
        .unwrap();
        assert_eq!(p.year, Some(2023));
        assert_eq!(p.state, Some(PolicyState::Active));
        assert_eq!(p.has_overdue_milestone, Some((true, today)));
        assert!(parse_policy_filter("year = soon", today).is_err());
        assert_eq!(
            parse_cohort_filter("year >= 2021 AND year != 2022")
                .unwrap()
                .len(),
            2
        );
        assert!(parse_cohort_filter("year : 2021").is_err());
    }

    #[test]
    fn texts_refuse_control_characters_except_line_breaks_where_allowed() {
        assert!(text("a\nb", "f", 10, true, true).is_ok());
        assert!(text("a\nb", "f", 10, true, false).is_err());
        assert!(text("a\u{7}b", "f", 10, true, true).is_err());
        assert_eq!(
            text("  ", "f", 10, true, true).unwrap_err().reason,
            "REQUIRED"
        );
        assert_eq!(
            text("abc", "f", 2, false, true).unwrap_err().reason,
            "TOO_LONG"
        );
    }
}
