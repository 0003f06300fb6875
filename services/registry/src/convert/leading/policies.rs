//! proto ⇄ domain for support policies (一企一策): the policy name, the caller-settable fields
//! with every bad field reported at once (measures, milestones and their cross-milestone rules),
//! the list filter, the policy as the API shows it (OVERDUE computed on read), and the one
//! mapping of a policy refusal to its `ApiError`.

use chrono::{Datelike, NaiveDate};
use qilu_common::filter::{Filter, FilterField, Kind, Value};
use qilu_common::input::name::{bad_name, segments};
use qilu_common::input::{IdRule, Text, UpdateMask, Violations, required};
use qilu_common::limits::echo;
use qilu_common::time::to_timestamp;
use qilu_common::{ApiError, FieldViolation};
use qilu_proto::registry as pb;

use super::{filter_year, parse_member_name};
use crate::convert::parse_uscc;
use crate::domain::leading::{parse_year, valid_year};
use crate::domain::support_policy::{
    self as sp, MAX_DESCRIPTION_CHARS, MAX_MEASURES, MAX_MILESTONE_TITLE_CHARS, MAX_MILESTONES,
    MAX_PERSON_CHARS, MAX_SUMMARY_CHARS, MAX_TITLE_CHARS, MILESTONE_OVERDUE, Measure, MeasureKind,
    Milestone, MilestoneState, PolicyFields, PolicyRefused, PolicyState, SupportPolicy,
    policy_name,
};
use crate::domain::uscc::{KnownExceptions, Uscc};
use crate::store::leading::PolicyFilter;

/// Resource type of a support policy.
pub const POLICY_TYPE: &str = "registry.qilu.gov.cn/SupportPolicy";

const POLICY_PATTERN: &str = "enterprises/{uscc}/supportPolicies/{year}";

/// Largest amount of one measure: 10^16 yuan in fen, far above any programme budget, so that
/// sums of amounts never overflow.
const MAX_AMOUNT_FEN: i64 = 1_000_000_000_000_000_000;

/// Fields `UpdateSupportPolicy` may change (and that `CreateSupportPolicy` reads), in the order
/// their violations are reported.
pub const POLICY_MUTABLE_FIELDS: &[&str] = &[
    "title",
    "summary",
    "measures",
    "responsible_officer",
    "responsible_officer_name",
    "milestones",
];

/// The USCC and year of `enterprises/{uscc}/supportPolicies/{year}` in `field`.
pub fn parse_policy_name(
    raw: &str,
    field: &str,
    known: &KnownExceptions,
) -> Result<(Uscc, i32), FieldViolation> {
    let parts = segments(raw, POLICY_PATTERN, field, IdRule::Any)?;
    let [code, year] = parts.as_slice() else {
        return Err(bad_name(raw, POLICY_PATTERN, field));
    };
    let year = parse_year(year).ok_or_else(|| bad_name(raw, POLICY_PATTERN, field))?;
    Ok((parse_uscc(code, field, known)?, year))
}

/// `NOT_FOUND` for the policy of `uscc` for cohort `year`.
pub fn policy_not_found(uscc: &str, year: i32) -> ApiError {
    ApiError::NotFound {
        resource_type: POLICY_TYPE,
        name: policy_name(uscc, year),
    }
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

/// A valid `CreateSupportPolicy` (after its parent was checked).
#[derive(Debug)]
pub struct NewPolicy {
    /// Cohort year of the member it serves.
    pub year: i32,
    /// Its fields.
    pub fields: PolicyFields,
}

/// Parses the policy of a `CreateSupportPolicy` whose parent is `enterprises/{uscc}`: its member
/// must be of that enterprise. Every bad field at once.
pub fn parse_new_policy(
    req: &pb::CreateSupportPolicyRequest,
    uscc: &Uscc,
    known: &KnownExceptions,
    today: NaiveDate,
) -> Result<NewPolicy, ApiError> {
    let input = required(req.support_policy.as_ref(), "support_policy")?;
    let mut v = Violations::new();
    let year = match parse_member_name(&input.member, "support_policy.member", known) {
        Ok((year, member_uscc)) if member_uscc == *uscc => Some(year),
        Ok(_) => {
            v.push(FieldViolation::new(
                "support_policy.member",
                "PARENT_MISMATCH",
                format!("the member must be of {}", req.parent),
            ));
            None
        }
        Err(violation) => {
            v.push(violation);
            None
        }
    };
    // A new policy has no stored milestones, so OVERDUE ("unchanged") has nothing to keep.
    let fields = parse_fields(input, POLICY_MUTABLE_FIELDS, &[], today, &mut v);
    v.into_result(year.map(|year| NewPolicy { year, fields }))
}

/// The fields an `UpdateSupportPolicy` writes: the mask and the masked fields' new values.
#[derive(Debug)]
pub struct PolicyUpdate {
    /// The fields named by the mask.
    pub mask: UpdateMask,
    /// The masked fields' new values (the others are left empty and never written).
    pub fields: PolicyFields,
}

impl PolicyUpdate {
    /// Whether the milestones are rewritten (the store replaces their rows only then).
    pub fn milestones_changed(&self) -> bool {
        self.mask.contains("milestones")
    }

    /// `current` with the masked fields replaced.
    pub fn apply(&self, current: &PolicyFields) -> PolicyFields {
        let mut out = current.clone();
        let new = &self.fields;
        for path in self.mask.paths() {
            match path.as_str() {
                "title" => out.title = new.title.clone(),
                "summary" => out.summary = new.summary.clone(),
                "measures" => out.measures = new.measures.clone(),
                "responsible_officer" => out.responsible_officer = new.responsible_officer.clone(),
                "responsible_officer_name" => {
                    out.responsible_officer_name = new.responsible_officer_name.clone();
                }
                "milestones" => out.milestones = new.milestones.clone(),
                _ => {}
            }
        }
        out
    }
}

/// The policy an `UpdateSupportPolicy` names.
pub fn parse_update_name(
    req: &pb::UpdateSupportPolicyRequest,
    known: &KnownExceptions,
) -> Result<(Uscc, i32), ApiError> {
    let input = required(req.support_policy.as_ref(), "support_policy")?;
    parse_policy_name(&input.name, "support_policy.name", known).map_err(ApiError::from)
}

/// The paths of an `UpdateSupportPolicy`'s mask. An empty mask is `REQUIRED` at once; a path
/// that cannot be updated is reported by [`parse_update`] together with the fields' violations
/// (`FIELD_NOT_UPDATABLE`), once the policy is found, as the contract has always answered.
pub fn parse_update_mask(req: &pb::UpdateSupportPolicyRequest) -> Result<Vec<String>, ApiError> {
    let paths = req
        .update_mask
        .as_ref()
        .map(|m| m.paths.clone())
        .unwrap_or_default();
    if paths.is_empty() {
        return UpdateMask::parse(None, POLICY_MUTABLE_FIELDS).map(|_| paths);
    }
    Ok(paths)
}

/// The masked fields of an `UpdateSupportPolicy`, every bad field and every path that cannot
/// be updated at once, in the mask's order. The handler checks them once the policy is found
/// and its etag current, so a missing or stale policy is reported before the fields; `stored`
/// are its milestones, which a milestone sent back as read (OVERDUE) keeps.
pub fn parse_update(
    req: &pb::UpdateSupportPolicyRequest,
    paths: &[String],
    stored: &[Milestone],
    today: NaiveDate,
) -> Result<PolicyUpdate, ApiError> {
    let input = required(req.support_policy.as_ref(), "support_policy")?;
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    let mut v = Violations::new();
    let fields = parse_fields(input, &paths, stored, today, &mut v);
    v.finish()?;
    // Every path is updatable now.
    let mask = UpdateMask::parse(req.update_mask.as_ref(), POLICY_MUTABLE_FIELDS)?;
    Ok(PolicyUpdate { mask, fields })
}

/// A valid `RecordSupportPolicyReview`.
#[derive(Debug)]
pub struct ReviewInput {
    /// Enterprise.
    pub uscc: Uscc,
    /// Cohort year.
    pub year: i32,
    /// `PolicyReviewConclusion` number.
    pub conclusion: i32,
    /// Findings, trimmed.
    pub comment: String,
}

/// Parses `RecordSupportPolicyReview`, every bad field at once.
pub fn parse_review(
    req: &pb::RecordSupportPolicyReviewRequest,
    known: &KnownExceptions,
) -> Result<ReviewInput, ApiError> {
    let mut v = Violations::new();
    let name = v.take(parse_policy_name(&req.name, "name", known));
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
    let comment = v.take(
        Text::required(MAX_SUMMARY_CHARS)
            .multiline()
            .parse(&req.comment, "comment"),
    );
    let input = match (name, comment) {
        (Some((uscc, year)), Some(comment)) => Some(ReviewInput {
            uscc,
            year,
            conclusion: req.conclusion,
            comment,
        }),
        _ => None,
    };
    v.into_result(input)
}

/// The fields of `p` named by `paths`, in that order, each violation recorded in `v` under
/// `support_policy.{path}`; fields not named are left empty. `stored` are the policy's stored
/// milestones (none for a new policy).
fn parse_fields(
    p: &pb::SupportPolicy,
    paths: &[&str],
    stored: &[Milestone],
    today: NaiveDate,
    v: &mut Violations,
) -> PolicyFields {
    let mut fields = PolicyFields {
        title: String::new(),
        summary: String::new(),
        measures: Vec::new(),
        responsible_officer: String::new(),
        responsible_officer_name: String::new(),
        milestones: Vec::new(),
    };
    for path in paths {
        let at = format!("support_policy.{path}");
        let text = |bound: Text, raw: &str| bound.parse(raw, &at);
        match *path {
            "title" => {
                if let Some(t) = v.take(text(Text::required(MAX_TITLE_CHARS), &p.title)) {
                    fields.title = t;
                }
            }
            "summary" => {
                let bound = Text::optional(MAX_SUMMARY_CHARS).multiline();
                if let Some(t) = v.take(text(bound, &p.summary)) {
                    fields.summary = t;
                }
            }
            "measures" => fields.measures = parse_measures(&p.measures, &at, v),
            "responsible_officer" => {
                let bound = Text::required(MAX_PERSON_CHARS);
                if let Some(t) = v.take(text(bound, &p.responsible_officer)) {
                    fields.responsible_officer = t;
                }
            }
            "responsible_officer_name" => {
                let bound = Text::optional(MAX_PERSON_CHARS);
                if let Some(t) = v.take(text(bound, &p.responsible_officer_name)) {
                    fields.responsible_officer_name = t;
                }
            }
            "milestones" => {
                fields.milestones = parse_milestones(&p.milestones, &at, stored, today, v);
            }
            other => v.push(qilu_common::input::mask::not_updatable(
                other,
                POLICY_MUTABLE_FIELDS,
            )),
        }
    }
    fields
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
            format!("{} is not a date YYYY-MM-DD", echo(raw)),
        )
    })?;
    if !valid_year(d.year()) {
        return Err(FieldViolation::new(
            at,
            "OUT_OF_RANGE",
            format!("{d} is outside the years 1900-9999"),
        ));
    }
    Ok(d)
}

fn parse_measures(p: &[pb::SupportMeasure], at: &str, v: &mut Violations) -> Vec<Measure> {
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
        let description = v.take(
            Text::required(MAX_DESCRIPTION_CHARS)
                .multiline()
                .parse(&m.description, &format!("{here}.description")),
        );
        if !(0..=MAX_AMOUNT_FEN).contains(&m.amount_fen) {
            v.push(FieldViolation::new(
                format!("{here}.amount_fen"),
                "OUT_OF_RANGE",
                format!("an amount in fen from 0 to {MAX_AMOUNT_FEN}"),
            ));
        }
        let provider = v
            .take(Text::optional(MAX_PERSON_CHARS).parse(&m.provider, &format!("{here}.provider")));
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

/// The milestones as written. `state` OVERDUE (what a read shows for a late milestone) keeps the
/// state stored for the milestone with the same id, when that one reads OVERDUE today: a policy
/// sent back as read changes nothing (`Milestone.state` in the contract says so); `overdue` is
/// output only and never read.
fn parse_milestones(
    p: &[pb::Milestone],
    at: &str,
    stored: &[Milestone],
    today: NaiveDate,
    v: &mut Violations,
) -> Vec<Milestone> {
    if p.len() > MAX_MILESTONES {
        v.push(FieldViolation::new(
            at,
            "TOO_MANY",
            format!("at most {MAX_MILESTONES} milestones"),
        ));
        return Vec::new();
    }
    // The rules across milestones are checked only when each milestone is valid on its own.
    let mut mine = Vec::new();
    fn keep<T>(r: Result<T, FieldViolation>, mine: &mut Vec<FieldViolation>) -> Option<T> {
        r.map_err(|violation| mine.push(violation)).ok()
    }
    let mut out = Vec::new();
    for (i, m) in p.iter().enumerate() {
        let here = format!("{at}[{i}]");
        let id_ok = sp::valid_milestone_id(&m.milestone_id);
        if !id_ok {
            mine.push(FieldViolation::new(
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
            Text::required(MAX_MILESTONE_TITLE_CHARS).parse(&m.title, &format!("{here}.title")),
            &mut mine,
        );
        let due = keep(date(&m.due_date, &format!("{here}.due_date")), &mut mine);
        let state = MilestoneState::from_code(m.state).or_else(|| {
            (m.state == MILESTONE_OVERDUE)
                .then(|| stored.iter().find(|s| s.id == m.milestone_id))
                .flatten()
                .filter(|s| s.is_overdue(today))
                .map(|s| s.state)
        });
        if state.is_none() {
            let (reason, why) = match m.state {
                0 => ("REQUIRED", "a milestone state is required".to_string()),
                MILESTONE_OVERDUE => (
                    "OUTPUT_ONLY_VALUE",
                    "OVERDUE is computed from the due date; it is accepted only as read back for \
                     a milestone of this policy that reads OVERDUE (meaning: unchanged)"
                        .to_string(),
                ),
                n => (
                    "UNKNOWN_ENUM_VALUE",
                    format!("{n} is not a milestone state"),
                ),
            };
            mine.push(FieldViolation::new(format!("{here}.state"), reason, why));
        }
        let completed = if m.completed_date.trim().is_empty() {
            Some(None)
        } else {
            keep(
                date(&m.completed_date, &format!("{here}.completed_date")),
                &mut mine,
            )
            .map(Some)
        };
        let note = keep(
            Text::optional(MAX_DESCRIPTION_CHARS)
                .multiline()
                .parse(&m.note, &format!("{here}.note")),
            &mut mine,
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
    if mine.is_empty() {
        mine = sp::check_milestones(&out, at, today);
    }
    for violation in mine {
        v.push(violation);
    }
    out
}

const POLICY_FILTER: &[FilterField] = &[
    FilterField::eq("year", Kind::Int),
    FilterField::eq(
        "state",
        Kind::Enum {
            type_name: "SupportPolicyState",
            from_name: |s| pb::SupportPolicyState::from_str_name(s).map(|x| x as i32),
        },
    ),
    FilterField::eq("responsible_officer", Kind::Text),
    FilterField::eq("has_overdue_milestone", Kind::Bool),
];

/// `ListSupportPolicies.filter`; "overdue" is judged on `today`.
pub fn parse_policy_filter(raw: &str, today: NaiveDate) -> Result<PolicyFilter, ApiError> {
    let mut out = PolicyFilter::default();
    for t in Filter::typed(raw, POLICY_FILTER)? {
        match (t.field, t.value) {
            ("year", Value::Int(v)) => out.year = Some(filter_year(t.field, v)?),
            ("state", Value::Enum(v)) => {
                out.state = Some(PolicyState::from_code(v).ok_or_else(|| {
                    ApiError::internal("a SupportPolicyState has no domain state")
                })?);
            }
            ("responsible_officer", Value::Text(v)) => out.responsible_officer = Some(v),
            ("has_overdue_milestone", Value::Bool(v)) => {
                out.has_overdue_milestone = Some((v, today));
            }
            _ => {}
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/// A policy as the API shows it; a milestone still open after its due date reads OVERDUE.
pub fn policy_to_proto(p: &SupportPolicy, today: NaiveDate) -> pb::SupportPolicy {
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
                overdue: m.is_overdue(today),
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

impl From<PolicyRefused> for ApiError {
    fn from(r: PolicyRefused) -> ApiError {
        match r {
            PolicyRefused::NeverSelected { member, uscc, year } => ApiError::precondition(
                "MEMBER_NOT_SELECTED",
                member,
                format!(
                    "enterprises/{uscc} was never selected into cohort {year}; only a selected enterprise gets a support policy"
                ),
            ),
            PolicyRefused::AlreadyHasPolicy { policy, uscc, year } => ApiError::precondition(
                "ONE_POLICY_PER_ENTERPRISE",
                policy.clone(),
                format!(
                    "enterprises/{uscc} already has its support policy for cohort {year}: {policy}"
                ),
            ),
            PolicyRefused::MemberNotSelected { member } => ApiError::precondition(
                "MEMBER_NOT_SELECTED",
                member.clone(),
                format!(
                    "{member} is not SELECTED; only a selected enterprise gets a support policy"
                ),
            ),
            PolicyRefused::Ended { policy } => ApiError::precondition(
                "POLICY_ENDED",
                policy.clone(),
                format!("{policy} has ENDED and is read-only"),
            ),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const CODE: &str = "91350100M000100Y43";

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 6, 1).unwrap()
    }

    fn violations(e: ApiError) -> Vec<(String, String)> {
        match e {
            ApiError::InvalidArgument(v) => v.into_iter().map(|v| (v.field, v.reason)).collect(),
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
    }

    #[test]
    fn policy_names_carry_a_uscc_and_a_cohort_year() {
        let known = KnownExceptions::default();
        let (uscc, year) = parse_policy_name(
            &format!("enterprises/{CODE}/supportPolicies/2023"),
            "name",
            &known,
        )
        .unwrap();
        assert_eq!((uscc.as_str(), year), (CODE, 2023));
        for bad in [
            format!("enterprises/{CODE}/supportPolicies/23"),
            format!("enterprises/{CODE}/policies/2023"),
            format!("enterprises/{CODE}"),
        ] {
            let v = parse_policy_name(&bad, "name", &known).unwrap_err();
            assert_eq!(v.reason, "INVALID_RESOURCE_NAME", "{bad}");
        }
    }

    #[test]
    fn a_new_policy_reports_every_bad_field_in_field_order() {
        let known = KnownExceptions::default();
        let uscc = Uscc::parse(CODE, &known).unwrap();
        let req = pb::CreateSupportPolicyRequest {
            parent: format!("enterprises/{CODE}"),
            support_policy: Some(pb::SupportPolicy {
                member: "leadingCohorts/2024/members/91110000600037341L".into(),
                title: String::new(),
                measures: vec![pb::SupportMeasure {
                    kind: 0,
                    description: "d".into(),
                    amount_fen: -1,
                    ..Default::default()
                }],
                responsible_officer: " ".into(),
                milestones: vec![pb::Milestone {
                    milestone_id: "Bad_ID".into(),
                    title: "t".into(),
                    due_date: "2024-02-30".into(),
                    state: 4,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            request_id: String::new(),
        };
        let got = violations(parse_new_policy(&req, &uscc, &known, today()).unwrap_err());
        let want = [
            ("support_policy.member", "PARENT_MISMATCH"),
            ("support_policy.title", "REQUIRED"),
            ("support_policy.measures[0].kind", "REQUIRED"),
            ("support_policy.measures[0].amount_fen", "OUT_OF_RANGE"),
            ("support_policy.responsible_officer", "REQUIRED"),
            ("support_policy.milestones[0].milestone_id", "INVALID_ID"),
            ("support_policy.milestones[0].due_date", "INVALID_DATE"),
            ("support_policy.milestones[0].state", "OUTPUT_ONLY_VALUE"),
        ];
        let got: Vec<(&str, &str)> = got.iter().map(|(f, r)| (f.as_str(), r.as_str())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn an_update_writes_only_the_masked_fields() {
        let req = |paths: &[&str]| pb::UpdateSupportPolicyRequest {
            support_policy: Some(pb::SupportPolicy {
                title: " 新标题 ".into(),
                responsible_officer: String::new(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: paths.iter().map(|p| p.to_string()).collect(),
            }),
            ..Default::default()
        };
        let parse = |paths: &[&str]| {
            let r = req(paths);
            parse_update(&r, &parse_update_mask(&r)?, &[], today())
        };
        let update = parse(&["title"]).unwrap();
        let current = PolicyFields {
            title: "旧".into(),
            summary: "s".into(),
            measures: vec![],
            responsible_officer: "officer-1".into(),
            responsible_officer_name: String::new(),
            milestones: vec![],
        };
        let merged = update.apply(&current);
        assert_eq!(merged.title, "新标题");
        assert_eq!(merged.responsible_officer, "officer-1");
        assert!(!update.milestones_changed());
        let bad = parse(&["title", "responsible_officer"]);
        assert_eq!(
            violations(bad.unwrap_err()),
            [(
                "support_policy.responsible_officer".to_string(),
                "REQUIRED".to_string()
            )]
        );
        // A path that cannot be updated is reported with the fields, in the mask's order.
        let state = parse(&["state", "responsible_officer"]);
        assert_eq!(
            violations(state.unwrap_err()),
            [
                ("update_mask".to_string(), "FIELD_NOT_UPDATABLE".to_string()),
                (
                    "support_policy.responsible_officer".to_string(),
                    "REQUIRED".to_string()
                )
            ]
        );
        assert_eq!(
            violations(parse(&[]).unwrap_err()),
            [("update_mask".to_string(), "REQUIRED".to_string())]
        );
    }

    #[test]
    fn policy_filters_parse_enum_names() {
        let p = parse_policy_filter(
            r#"year = 2023 AND state = SUPPORT_POLICY_STATE_ACTIVE AND responsible_officer = "officer-1" AND has_overdue_milestone = true"#,
            today(),
        )
        .unwrap();
        assert_eq!(p.year, Some(2023));
        assert_eq!(p.state, Some(PolicyState::Active));
        assert_eq!(p.responsible_officer.as_deref(), Some("officer-1"));
        assert_eq!(p.has_overdue_milestone, Some((true, today())));
        assert!(parse_policy_filter("year = soon", today()).is_err());
        assert!(parse_policy_filter("year > 2020", today()).is_err());
        assert!(parse_policy_filter("state = ACTIVE", today()).is_err());
    }
}
