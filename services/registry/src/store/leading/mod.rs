//! Leading cohorts, their members, and support policies (with their milestones and append-only
//! reviews) as stored. Also the one query about enterprises this part needs that
//! `store::enterprise` does not offer (who is marked leading). Never edits a review row.
//! The tables are in `entity`, their creation in `migration`.

mod entity;
mod migration;

pub use entity::{cohort, member, milestone, policy, review};
pub use migration::migrations;

use qilu_common::db::KeyLookup;
use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ActiveValue::Set, Condition, PaginatorTrait, QueryOrder, QuerySelect};

use crate::domain::leading::{Candidate, Cohort, Member, MemberState};
use crate::domain::support_policy::{
    Measure, Milestone, MilestoneState, PolicyFields, PolicyState, Review, SupportPolicy,
};

/// A stored row that no longer decodes: a corrupted database, not a caller mistake.
#[derive(Debug, thiserror::Error)]
#[error("stored {what} is corrupt: {problem}")]
pub struct CorruptRow {
    what: String,
    problem: String,
}

fn corrupt(what: impl Into<String>, problem: impl Into<String>) -> CorruptRow {
    CorruptRow {
        what: what.into(),
        problem: problem.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Cohorts
// ---------------------------------------------------------------------------------------------

fn cohort_of(m: cohort::Model) -> Cohort {
    Cohort {
        year: m.year,
        description: m.description,
        create_time_us: m.create_time_us,
        update_time_us: m.update_time_us,
        version: m.version,
    }
}

/// Inserts a cohort; a duplicate year is a unique violation.
pub async fn insert_cohort(conn: &impl ConnectionTrait, c: &Cohort) -> Result<(), DbErr> {
    cohort::Entity::insert(cohort::ActiveModel {
        year: Set(c.year),
        description: Set(c.description.clone()),
        create_time_us: Set(c.create_time_us),
        update_time_us: Set(c.update_time_us),
        version: Set(c.version),
    })
    .exec(conn)
    .await?;
    Ok(())
}

/// One cohort.
pub async fn get_cohort(conn: &impl ConnectionTrait, year: i32) -> Result<Option<Cohort>, DbErr> {
    Ok(cohort::Entity::find_by_id(year)
        .by_key(conn)
        .await?
        .map(cohort_of))
}

/// Marks a cohort's membership changed at `now_us` (version + 1).
pub async fn touch_cohort(
    conn: &impl ConnectionTrait,
    c: &Cohort,
    now_us: i64,
) -> Result<Cohort, DbErr> {
    let updated = Cohort {
        update_time_us: now_us,
        version: c.version + 1,
        ..c.clone()
    };
    cohort::Entity::update_many()
        .set(cohort::ActiveModel {
            update_time_us: Set(updated.update_time_us),
            version: Set(updated.version),
            ..Default::default()
        })
        .filter(cohort::Column::Year.eq(c.year))
        .exec(conn)
        .await?;
    Ok(updated)
}

/// The year of the latest cohort (the "current" one whose members are marked leading).
pub async fn latest_cohort_year(conn: &impl ConnectionTrait) -> Result<Option<i32>, DbErr> {
    Ok(cohort::Entity::find()
        .order_by_desc(cohort::Column::Year)
        .one(conn)
        .await?
        .map(|m| m.year))
}

/// A comparison on `year` for listing cohorts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YearCmp {
    /// =
    Eq(i32),
    /// !=
    Ne(i32),
    /// <
    Lt(i32),
    /// <=
    Le(i32),
    /// >
    Gt(i32),
    /// >=
    Ge(i32),
}

/// A page of cohorts in ascending year after `after`.
pub async fn list_cohorts(
    conn: &impl ConnectionTrait,
    filter: &[YearCmp],
    after: Option<i32>,
    limit: u64,
) -> Result<Vec<Cohort>, DbErr> {
    let mut cond = Condition::all();
    for f in filter {
        let c = cohort::Column::Year;
        cond = cond.add(match *f {
            YearCmp::Eq(y) => c.eq(y),
            YearCmp::Ne(y) => c.ne(y),
            YearCmp::Lt(y) => c.lt(y),
            YearCmp::Le(y) => c.lte(y),
            YearCmp::Gt(y) => c.gt(y),
            YearCmp::Ge(y) => c.gte(y),
        });
    }
    if let Some(a) = after {
        cond = cond.add(cohort::Column::Year.gt(a));
    }
    Ok(cohort::Entity::find()
        .filter(cond)
        .order_by_asc(cohort::Column::Year)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(cohort_of)
        .collect())
}

/// `(selected, selected with a policy)` for a cohort.
pub async fn cohort_counts(conn: &impl ConnectionTrait, year: i32) -> Result<(u64, u64), DbErr> {
    let selected = member::Entity::find()
        .filter(member::Column::Year.eq(year))
        .filter(member::Column::State.eq(MemberState::Selected.code()))
        .count(conn)
        .await?;
    let with_policy = member::Entity::find()
        .filter(member::Column::Year.eq(year))
        .filter(member::Column::State.eq(MemberState::Selected.code()))
        .filter(member::Column::SupportPolicy.ne(""))
        .count(conn)
        .await?;
    Ok((selected, with_policy))
}

// ---------------------------------------------------------------------------------------------
// Members
// ---------------------------------------------------------------------------------------------

fn member_of(m: member::Model) -> Result<Member, CorruptRow> {
    let what = || format!("member {}/{}", m.year, m.uscc);
    let state = MemberState::from_code(m.state)
        .ok_or_else(|| corrupt(what(), format!("state {}", m.state)))?;
    let ranking: Candidate =
        serde_json::from_str(&m.ranking_json).map_err(|e| corrupt(what(), e.to_string()))?;
    Ok(Member {
        year: m.year,
        uscc: m.uscc,
        state,
        ranking_at_selection: ranking,
        select_reason: m.select_reason,
        selected_by: m.selected_by,
        select_time_us: m.select_time_us,
        deselect_reason: m.deselect_reason,
        deselect_time_us: m.deselect_time_us,
        support_policy: m.support_policy,
        create_time_us: m.create_time_us,
        update_time_us: m.update_time_us,
        version: m.version,
    })
}

fn member_active(m: &Member) -> Result<member::ActiveModel, DbErr> {
    let ranking_json = serde_json::to_string(&m.ranking_at_selection)
        .map_err(|e| DbErr::Custom(format!("ranking does not serialize: {e}")))?;
    Ok(member::ActiveModel {
        year: Set(m.year),
        uscc: Set(m.uscc.clone()),
        state: Set(m.state.code()),
        ranking_json: Set(ranking_json),
        select_reason: Set(m.select_reason.clone()),
        selected_by: Set(m.selected_by.clone()),
        select_time_us: Set(m.select_time_us),
        deselect_reason: Set(m.deselect_reason.clone()),
        deselect_time_us: Set(m.deselect_time_us),
        support_policy: Set(m.support_policy.clone()),
        create_time_us: Set(m.create_time_us),
        update_time_us: Set(m.update_time_us),
        version: Set(m.version),
    })
}

/// One membership (`Err` only for a database failure; a corrupt row is `Ok(Err)`).
pub async fn get_member(
    conn: &impl ConnectionTrait,
    year: i32,
    uscc: &str,
) -> Result<Option<Result<Member, CorruptRow>>, DbErr> {
    Ok(member::Entity::find_by_id((year, uscc.to_string()))
        .by_key(conn)
        .await?
        .map(member_of))
}

/// Inserts a new membership.
pub async fn insert_member(conn: &impl ConnectionTrait, m: &Member) -> Result<(), DbErr> {
    member::Entity::insert(member_active(m)?).exec(conn).await?;
    Ok(())
}

/// Writes a changed membership if it is still at `expected_version`; false when it moved.
pub async fn update_member_if_version(
    conn: &impl ConnectionTrait,
    m: &Member,
    expected_version: i64,
) -> Result<bool, DbErr> {
    let result = member::Entity::update_many()
        .set(member_active(m)?)
        .filter(member::Column::Year.eq(m.year))
        .filter(member::Column::Uscc.eq(m.uscc.clone()))
        .filter(member::Column::Version.eq(expected_version))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// USCCs SELECTED in a cohort.
pub async fn selected_usccs(
    conn: &impl ConnectionTrait,
    year: i32,
) -> Result<HashSet<String>, DbErr> {
    Ok(member::Entity::find()
        .filter(member::Column::Year.eq(year))
        .filter(member::Column::State.eq(MemberState::Selected.code()))
        .all(conn)
        .await?
        .into_iter()
        .map(|m| m.uscc)
        .collect())
}

/// Listing conditions for members.
#[derive(Debug, Clone, Copy, Default)]
pub struct MemberFilter {
    /// State equals.
    pub state: Option<MemberState>,
    /// Has (or lacks) a support policy.
    pub has_support_policy: Option<bool>,
}

/// A page of a cohort's members in USCC order after `after`.
pub async fn list_members(
    conn: &impl ConnectionTrait,
    year: i32,
    filter: MemberFilter,
    after: Option<String>,
    limit: u64,
) -> Result<Vec<Result<Member, CorruptRow>>, DbErr> {
    let mut cond = Condition::all().add(member::Column::Year.eq(year));
    if let Some(s) = filter.state {
        cond = cond.add(member::Column::State.eq(s.code()));
    }
    match filter.has_support_policy {
        Some(true) => cond = cond.add(member::Column::SupportPolicy.ne("")),
        Some(false) => cond = cond.add(member::Column::SupportPolicy.eq("")),
        None => {}
    }
    if let Some(a) = after {
        cond = cond.add(member::Column::Uscc.gt(a));
    }
    Ok(member::Entity::find()
        .filter(cond)
        .order_by_asc(member::Column::Uscc)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(member_of)
        .collect())
}

/// Every enterprise row currently marked leading (to re-check when the latest cohort changes).
pub async fn leading_enterprises(conn: &impl ConnectionTrait) -> Result<Vec<String>, DbErr> {
    use crate::store::enterprise::entity;
    Ok(entity::Entity::find()
        .filter(entity::Column::Leading.eq(true))
        .order_by_asc(entity::Column::Uscc)
        .all(conn)
        .await?
        .into_iter()
        .map(|m| m.uscc)
        .collect())
}

/// Every enterprise row, in USCC order (the ranking considers them all).
pub async fn all_enterprises(
    conn: &impl ConnectionTrait,
) -> Result<Vec<crate::store::enterprise::Model>, DbErr> {
    use crate::store::enterprise::entity;
    entity::Entity::find()
        .order_by_asc(entity::Column::Uscc)
        .all(conn)
        .await
}

// ---------------------------------------------------------------------------------------------
// Support policies
// ---------------------------------------------------------------------------------------------

fn parse_date(raw: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok()
}

fn assemble(
    p: policy::Model,
    milestones: Vec<milestone::Model>,
    reviews: Vec<review::Model>,
) -> Result<SupportPolicy, CorruptRow> {
    let what = || format!("support policy {}/{}", p.uscc, p.year);
    let measures: Vec<Measure> =
        serde_json::from_str(&p.measures_json).map_err(|e| corrupt(what(), e.to_string()))?;
    let state = PolicyState::from_code(p.state)
        .ok_or_else(|| corrupt(what(), format!("state {}", p.state)))?;
    let mut ms = milestones;
    ms.sort_by_key(|m| m.position);
    let milestones = ms
        .into_iter()
        .map(|m| {
            Ok(Milestone {
                due_date: parse_date(&m.due_date)
                    .ok_or_else(|| corrupt(what(), format!("due date {:?}", m.due_date)))?,
                state: MilestoneState::from_code(m.state)
                    .ok_or_else(|| corrupt(what(), format!("milestone state {}", m.state)))?,
                completed_date: if m.completed_date.is_empty() {
                    None
                } else {
                    Some(parse_date(&m.completed_date).ok_or_else(|| {
                        corrupt(what(), format!("completed date {:?}", m.completed_date))
                    })?)
                },
                id: m.milestone_id,
                title: m.title,
                note: m.note,
            })
        })
        .collect::<Result<Vec<_>, CorruptRow>>()?;
    let mut rs = reviews;
    rs.sort_by_key(|r| r.sequence);
    Ok(SupportPolicy {
        uscc: p.uscc,
        year: p.year,
        fields: PolicyFields {
            title: p.title,
            summary: p.summary,
            measures,
            responsible_officer: p.responsible_officer,
            responsible_officer_name: p.responsible_officer_name,
            milestones,
        },
        reviews: rs
            .into_iter()
            .map(|r| Review {
                conclusion: r.conclusion,
                comment: r.comment,
                reviewer: r.reviewer,
                review_time_us: r.review_time_us,
            })
            .collect(),
        state,
        create_time_us: p.create_time_us,
        update_time_us: p.update_time_us,
        version: p.version,
    })
}

fn policy_active(p: &SupportPolicy) -> Result<policy::ActiveModel, DbErr> {
    let measures_json = serde_json::to_string(&p.fields.measures)
        .map_err(|e| DbErr::Custom(format!("measures do not serialize: {e}")))?;
    Ok(policy::ActiveModel {
        uscc: Set(p.uscc.clone()),
        year: Set(p.year),
        title: Set(p.fields.title.clone()),
        summary: Set(p.fields.summary.clone()),
        measures_json: Set(measures_json),
        responsible_officer: Set(p.fields.responsible_officer.clone()),
        responsible_officer_name: Set(p.fields.responsible_officer_name.clone()),
        state: Set(p.state.code()),
        create_time_us: Set(p.create_time_us),
        update_time_us: Set(p.update_time_us),
        version: Set(p.version),
    })
}

async fn write_milestones(conn: &impl ConnectionTrait, p: &SupportPolicy) -> Result<(), DbErr> {
    milestone::Entity::delete_many()
        .filter(milestone::Column::Uscc.eq(p.uscc.clone()))
        .filter(milestone::Column::Year.eq(p.year))
        .exec(conn)
        .await?;
    let rows: Vec<milestone::ActiveModel> = p
        .fields
        .milestones
        .iter()
        .enumerate()
        .map(|(i, m)| milestone::ActiveModel {
            uscc: Set(p.uscc.clone()),
            year: Set(p.year),
            milestone_id: Set(m.id.clone()),
            position: Set(i32::try_from(i).unwrap_or(i32::MAX)),
            title: Set(m.title.clone()),
            due_date: Set(m.due_date.format("%Y-%m-%d").to_string()),
            state: Set(m.state.code()),
            completed_date: Set(m
                .completed_date
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_default()),
            note: Set(m.note.clone()),
        })
        .collect();
    if !rows.is_empty() {
        milestone::Entity::insert_many(rows).exec(conn).await?;
    }
    Ok(())
}

/// Inserts a new policy with its milestones; a duplicate (enterprise, year) is a unique
/// violation.
pub async fn insert_policy(conn: &impl ConnectionTrait, p: &SupportPolicy) -> Result<(), DbErr> {
    policy::Entity::insert(policy_active(p)?).exec(conn).await?;
    write_milestones(conn, p).await
}

/// Writes a changed policy (and, when `milestones_changed`, its milestones) if it is still at
/// `expected_version`; false when it moved. Reviews are never written here.
pub async fn update_policy_if_version(
    conn: &impl ConnectionTrait,
    p: &SupportPolicy,
    expected_version: i64,
    milestones_changed: bool,
) -> Result<bool, DbErr> {
    let result = policy::Entity::update_many()
        .set(policy_active(p)?)
        .filter(policy::Column::Uscc.eq(p.uscc.clone()))
        .filter(policy::Column::Year.eq(p.year))
        .filter(policy::Column::Version.eq(expected_version))
        .exec(conn)
        .await?;
    if result.rows_affected != 1 {
        return Ok(false);
    }
    if milestones_changed {
        write_milestones(conn, p).await?;
    }
    Ok(true)
}

/// Appends review number `sequence` (1-based) to a policy's history.
pub async fn append_review(
    conn: &impl ConnectionTrait,
    uscc: &str,
    year: i32,
    sequence: i32,
    r: &Review,
) -> Result<(), DbErr> {
    review::Entity::insert(review::ActiveModel {
        uscc: Set(uscc.to_string()),
        year: Set(year),
        sequence: Set(sequence),
        conclusion: Set(r.conclusion),
        comment: Set(r.comment.clone()),
        reviewer: Set(r.reviewer.clone()),
        review_time_us: Set(r.review_time_us),
    })
    .exec(conn)
    .await?;
    Ok(())
}

/// One policy with its milestones and reviews.
pub async fn get_policy(
    conn: &impl ConnectionTrait,
    uscc: &str,
    year: i32,
) -> Result<Option<Result<SupportPolicy, CorruptRow>>, DbErr> {
    let Some(p) = policy::Entity::find_by_id((uscc.to_string(), year))
        .by_key(conn)
        .await?
    else {
        return Ok(None);
    };
    let ms = milestone::Entity::find()
        .filter(milestone::Column::Uscc.eq(uscc))
        .filter(milestone::Column::Year.eq(year))
        .all(conn)
        .await?;
    let rs = review::Entity::find()
        .filter(review::Column::Uscc.eq(uscc))
        .filter(review::Column::Year.eq(year))
        .all(conn)
        .await?;
    Ok(Some(assemble(p, ms, rs)))
}

/// Ends every ACTIVE support policy of an enterprise at `now_us` (version + 1) and returns
/// them as ended, for the caller to audit in its transaction. For the status methods: a revoked
/// or deregistered enterprise's policies end (leading.proto, `SUPPORT_POLICY_STATE_ENDED`).
pub async fn end_active_policies(
    conn: &impl ConnectionTrait,
    uscc: &str,
    now_us: i64,
) -> Result<Vec<SupportPolicy>, DbErr> {
    let filter = PolicyFilter {
        uscc: Some(uscc.to_string()),
        state: Some(PolicyState::Active),
        ..Default::default()
    };
    let mut ended = Vec::new();
    // One policy per cohort year: an enterprise has a handful, never a million.
    for p in list_policies(conn, &filter, None, 1_000_000).await? {
        let p = p.map_err(|e| DbErr::Custom(e.to_string()))?;
        let next = SupportPolicy {
            state: PolicyState::Ended,
            update_time_us: now_us,
            version: p.version + 1,
            ..p.clone()
        };
        if update_policy_if_version(conn, &next, p.version, false).await? {
            ended.push(next);
        }
    }
    Ok(ended)
}

/// Listing conditions for policies.
#[derive(Debug, Clone, Default)]
pub struct PolicyFilter {
    /// Only this enterprise.
    pub uscc: Option<String>,
    /// Year equals.
    pub year: Option<i32>,
    /// State equals.
    pub state: Option<PolicyState>,
    /// Officer equals.
    pub responsible_officer: Option<String>,
    /// Has (or has no) overdue milestone on this day: `(wanted, today)`.
    pub has_overdue_milestone: Option<(bool, NaiveDate)>,
}

/// The key of the last policy of a page.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PolicyCursor {
    /// USCC.
    pub uscc: String,
    /// Year.
    pub year: i32,
}

/// A page of policies by enterprise then year, after `after`, with milestones and reviews.
pub async fn list_policies(
    conn: &impl ConnectionTrait,
    filter: &PolicyFilter,
    after: Option<PolicyCursor>,
    limit: u64,
) -> Result<Vec<Result<SupportPolicy, CorruptRow>>, DbErr> {
    let mut cond = Condition::all();
    if let Some(u) = &filter.uscc {
        cond = cond.add(policy::Column::Uscc.eq(u.clone()));
    }
    if let Some(y) = filter.year {
        cond = cond.add(policy::Column::Year.eq(y));
    }
    if let Some(s) = filter.state {
        cond = cond.add(policy::Column::State.eq(s.code()));
    }
    if let Some(o) = &filter.responsible_officer {
        cond = cond.add(policy::Column::ResponsibleOfficer.eq(o.clone()));
    }
    if let Some((wanted, today)) = filter.has_overdue_milestone {
        let open = [
            MilestoneState::Planned.code(),
            MilestoneState::InProgress.code(),
        ];
        let overdue = Query::select()
            .expr(Expr::val(1))
            .from(milestone::Entity)
            .and_where(
                Expr::col((milestone::Entity, milestone::Column::Uscc))
                    .equals((policy::Entity, policy::Column::Uscc)),
            )
            .and_where(
                Expr::col((milestone::Entity, milestone::Column::Year))
                    .equals((policy::Entity, policy::Column::Year)),
            )
            .and_where(Expr::col((milestone::Entity, milestone::Column::State)).is_in(open))
            .and_where(
                Expr::col((milestone::Entity, milestone::Column::DueDate))
                    .lt(today.format("%Y-%m-%d").to_string()),
            )
            .to_owned();
        let exists = Expr::exists(overdue);
        cond = cond.add(if wanted { exists } else { exists.not() });
    }
    if let Some(c) = after {
        cond = cond.add(
            Condition::any()
                .add(policy::Column::Uscc.gt(c.uscc.clone()))
                .add(
                    Condition::all()
                        .add(policy::Column::Uscc.eq(c.uscc))
                        .add(policy::Column::Year.gt(c.year)),
                ),
        );
    }
    let rows = policy::Entity::find()
        .filter(cond)
        .order_by_asc(policy::Column::Uscc)
        .order_by_asc(policy::Column::Year)
        .limit(limit)
        .all(conn)
        .await?;
    let usccs: Vec<String> = rows
        .iter()
        .map(|p| p.uscc.clone())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut ms: HashMap<(String, i32), Vec<milestone::Model>> = HashMap::new();
    let mut rs: HashMap<(String, i32), Vec<review::Model>> = HashMap::new();
    // SQLite limits bound parameters per statement: ask in chunks.
    for chunk in usccs.chunks(500) {
        for m in milestone::Entity::find()
            .filter(milestone::Column::Uscc.is_in(chunk.iter().cloned()))
            .all(conn)
            .await?
        {
            ms.entry((m.uscc.clone(), m.year)).or_default().push(m);
        }
        for r in review::Entity::find()
            .filter(review::Column::Uscc.is_in(chunk.iter().cloned()))
            .all(conn)
            .await?
        {
            rs.entry((r.uscc.clone(), r.year)).or_default().push(r);
        }
    }
    Ok(rows
        .into_iter()
        .map(|p| {
            let key = (p.uscc.clone(), p.year);
            let m = ms.remove(&key).unwrap_or_default();
            let r = rs.remove(&key).unwrap_or_default();
            assemble(p, m, r)
        })
        .collect())
}
