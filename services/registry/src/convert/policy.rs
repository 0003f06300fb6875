//! proto ⇄ domain for policy targets: the target name, a new target's fields (every bad field
//! reported at once), the list filter and order, the stored target as the API shows it, and the
//! one mapping of a refused target to its `ApiError`.

use chrono::NaiveDate;
use qilu_common::filter::{Filter, FilterField, Kind, Value};
use qilu_common::input::{IdRule, OrderBy, Text, Violations, etag_of};
use qilu_common::limits::echo;
use qilu_common::time::to_timestamp;
use qilu_common::{ApiError, FieldViolation};
use qilu_proto::registry as pb;

use crate::convert::leading::filter_year;
use crate::domain::policy::{
    MAX_SOURCE_CHARS, TargetKind, TargetRefused, YearRange, check_numbers,
};
use crate::domain::zone::parse_id;
use crate::store::policy::{ListFilter, Model, Order};

/// Resource type for `ResourceInfo` in errors.
pub const POLICY_TARGET_TYPE: &str = "registry.qilu.gov.cn/PolicyTarget";

const PATTERN: &str = "policyTargets/{policy_target}";

/// Resource name `policyTargets/{id}`.
pub fn policy_target_name(id: &str) -> String {
    format!("policyTargets/{id}")
}

/// `NOT_FOUND` for target `id`.
pub fn not_found(id: &str) -> ApiError {
    ApiError::NotFound {
        resource_type: POLICY_TARGET_TYPE,
        name: policy_target_name(id),
    }
}

fn is_id(raw: &str) -> bool {
    parse_id(raw).is_ok()
}

/// The id of `policyTargets/{id}` in `field`.
pub fn parse_target_name(raw: &str, field: &str) -> Result<String, FieldViolation> {
    qilu_common::input::name::single(raw, PATTERN, field, IdRule::Custom(is_id)).map(str::to_string)
}

/// A new target's validated fields (the stored row, minus id and times).
#[derive(Debug)]
pub struct Draft {
    /// The id the caller chose, or `None` for one the server assigns.
    pub id: Option<String>,
    /// What it measures.
    pub kind: TargetKind,
    /// The number.
    pub value: i64,
    /// First year in force.
    pub effective_from_year: i32,
    /// Last year in force, 0 for open-ended.
    pub effective_to_year: i32,
    /// The year the value is to be reached, 0 when not stated.
    pub target_year: i32,
    /// Where the number comes from.
    pub source: String,
    /// When the source was issued, `YYYY-MM-DD` or "".
    pub source_date: String,
    /// Free text.
    pub note: String,
    /// Id of the target superseded.
    pub supersedes: Option<String>,
}

impl Draft {
    /// The years it is in force.
    pub fn range(&self) -> YearRange {
        YearRange::from_stored(self.effective_from_year, self.effective_to_year)
    }
}

/// Parses `CreatePolicyTarget`, every bad field at once (the id's first, then the target's).
pub fn parse_draft(
    req: &pb::CreatePolicyTargetRequest,
    today: NaiveDate,
) -> Result<Draft, ApiError> {
    let p = qilu_common::input::required(req.policy_target.as_ref(), "policy_target")?;
    let mut v = Violations::new();
    let id = match req.policy_target_id.as_str() {
        "" => Some(None),
        raw => v.take(
            parse_id(raw)
                .map(Some)
                .map_err(|e| FieldViolation::new("policy_target_id", "INVALID_ID", e.to_string())),
        ),
    };
    let kind = TargetKind::from_code(p.kind);
    if kind.is_none() {
        v.push(if p.kind == 0 {
            FieldViolation::new("policy_target.kind", "REQUIRED", "kind is required")
        } else {
            FieldViolation::new(
                "policy_target.kind",
                "UNKNOWN_ENUM_VALUE",
                format!("{} is not a PolicyTargetKind", p.kind),
            )
        });
    }
    for problem in check_numbers(
        p.value,
        p.effective_from_year,
        p.effective_to_year,
        p.target_year,
    ) {
        v.push(FieldViolation::new(
            format!("policy_target.{}", problem.field),
            problem.reason,
            problem.description,
        ));
    }
    let bound = Text::required(MAX_SOURCE_CHARS).multiline();
    let source = v.take(bound.parse(&p.source, "policy_target.source"));
    let bound = Text::optional(MAX_SOURCE_CHARS).multiline();
    let note = v.take(bound.parse(&p.note, "policy_target.note"));
    let source_date = v.take(source_date(&p.source_date, today));
    let supersedes = match p.supersedes.trim() {
        "" => Some(None),
        raw => v
            .take(parse_target_name(raw, "policy_target.supersedes"))
            .map(Some),
    };
    let draft = match (id, kind, source, note, source_date, supersedes) {
        (Some(id), Some(kind), Some(source), Some(note), Some(source_date), Some(supersedes)) => {
            Some(Draft {
                id,
                kind,
                value: p.value,
                effective_from_year: p.effective_from_year,
                effective_to_year: p.effective_to_year,
                target_year: p.target_year,
                source,
                source_date,
                note,
                supersedes,
            })
        }
        _ => None,
    };
    v.into_result(draft)
}

/// `source_date`: empty, or a strict ISO date not in the future.
fn source_date(raw: &str, today: NaiveDate) -> Result<String, FieldViolation> {
    const AT: &str = "policy_target.source_date";
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(String::new());
    }
    // Strict ISO: chrono alone would also take "2021-9-1".
    let Some(d) = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .filter(|d| d.format("%Y-%m-%d").to_string() == raw)
    else {
        return Err(FieldViolation::new(
            AT,
            "INVALID_DATE",
            format!("{} is not a date YYYY-MM-DD", echo(raw)),
        ));
    };
    if d > today {
        return Err(FieldViolation::new(
            AT,
            "IN_FUTURE",
            format!("{d} is in the future"),
        ));
    }
    Ok(d.format("%Y-%m-%d").to_string())
}

const LIST_FILTER: &[FilterField] = &[
    FilterField::eq(
        "kind",
        Kind::Enum {
            type_name: "PolicyTargetKind",
            from_name: |s| pb::PolicyTargetKind::from_str_name(s).map(|k| k as i32),
        },
    ),
    FilterField::eq(
        "state",
        Kind::Enum {
            type_name: "PolicyTargetState",
            from_name: |s| pb::PolicyTargetState::from_str_name(s).map(|k| k as i32),
        },
    ),
    FilterField::eq("year", Kind::Int),
];

/// `ListPolicyTargets.filter`: kind, state (in force or superseded), a year in force.
pub fn parse_list_filter(raw: &str) -> Result<ListFilter, ApiError> {
    let mut out = ListFilter::default();
    for t in Filter::typed(raw, LIST_FILTER)? {
        match (t.field, t.value) {
            ("kind", Value::Enum(v)) => out.kind = Some(v),
            ("state", Value::Enum(v)) => {
                out.in_force = Some(v == pb::PolicyTargetState::InForce as i32);
            }
            ("year", Value::Int(v)) => out.year = Some(filter_year(t.field, v)?),
            _ => {}
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OrderKey {
    EffectiveFromYear,
    CreateTime,
}

/// `ListPolicyTargets.order_by`: `effective_from_year` (the default) or `create_time`.
pub fn parse_order(raw: &str) -> Result<Order, ApiError> {
    let order = OrderBy::parse(
        raw,
        &[
            ("effective_from_year", OrderKey::EffectiveFromYear),
            ("create_time", OrderKey::CreateTime),
        ],
        OrderKey::EffectiveFromYear,
    )?;
    let desc = order.desc;
    Ok(match order.key {
        OrderKey::EffectiveFromYear => Order::EffectiveFromYear { desc },
        OrderKey::CreateTime => Order::CreateTime { desc },
    })
}

/// A stored target as the API shows it, with its state.
pub fn to_proto(m: &Model) -> pb::PolicyTarget {
    let state = if m.superseded_by.is_empty() {
        pb::PolicyTargetState::InForce
    } else {
        pb::PolicyTargetState::Superseded
    };
    pb::PolicyTarget {
        name: policy_target_name(&m.id),
        kind: m.kind,
        value: m.value,
        effective_from_year: m.effective_from_year,
        effective_to_year: m.effective_to_year,
        target_year: m.target_year,
        source: m.source.clone(),
        source_date: m.source_date.clone(),
        note: m.note.clone(),
        supersedes: m.supersedes.clone(),
        superseded_by: m.superseded_by.clone(),
        state: state as i32,
        create_time: Some(to_timestamp(m.create_time_us)),
        update_time: Some(to_timestamp(m.update_time_us)),
        etag: etag_of(&policy_target_name(&m.id), m.version),
    }
}

/// The proto name of a kind code, for messages.
fn kind_name(kind: i32) -> &'static str {
    pb::PolicyTargetKind::try_from(kind)
        .map(|k| k.as_str_name())
        .unwrap_or("UNKNOWN")
}

impl From<TargetRefused> for ApiError {
    fn from(r: TargetRefused) -> ApiError {
        match r {
            TargetRefused::UnknownSuperseded { id } => ApiError::invalid(
                "policy_target.supersedes",
                "UNKNOWN_POLICY_TARGET",
                format!("{} does not exist", policy_target_name(&id)),
            ),
            TargetRefused::KindMismatch { id, theirs, ours } => ApiError::invalid(
                "policy_target.supersedes",
                "KIND_MISMATCH",
                format!(
                    "{} is a {} target; a {} target cannot supersede it",
                    policy_target_name(&id),
                    kind_name(theirs),
                    kind_name(ours.code())
                ),
            ),
            TargetRefused::AlreadySuperseded { id, by } => {
                let name = policy_target_name(&id);
                ApiError::precondition(
                    "ALREADY_SUPERSEDED",
                    name.clone(),
                    format!("{name} was already superseded by {by}"),
                )
            }
            TargetRefused::Overlapping {
                id,
                kind,
                theirs,
                ours,
            } => {
                let name = policy_target_name(&id);
                ApiError::precondition(
                    "OVERLAPPING_TARGET",
                    name.clone(),
                    format!(
                        "{name} ({}, {theirs}) is in force for years that {ours} overlaps; \
                         supersede it or choose other years",
                        kind_name(kind.code())
                    ),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_filters_take_enum_names_and_years() {
        let f = parse_list_filter(
            "kind = POLICY_TARGET_KIND_CLUSTER_SCALE AND year = 2023 AND state = POLICY_TARGET_STATE_IN_FORCE",
        )
        .ok();
        assert_eq!(f.as_ref().and_then(|f| f.kind), Some(3));
        assert_eq!(f.as_ref().and_then(|f| f.year), Some(2023));
        assert_eq!(f.as_ref().and_then(|f| f.in_force), Some(true));
        let superseded = parse_list_filter("state = POLICY_TARGET_STATE_SUPERSEDED").ok();
        assert_eq!(superseded.and_then(|f| f.in_force), Some(false));
        assert!(parse_list_filter("kind = CLUSTER_SCALE").is_err());
        assert!(parse_list_filter("kind = POLICY_TARGET_KIND_UNSPECIFIED").is_err());
        assert!(parse_list_filter("state = POLICY_TARGET_STATE_UNSPECIFIED").is_err());
        assert!(parse_list_filter("year = soon").is_err());
        assert!(parse_list_filter("year > 2020").is_err());
        assert!(parse_list_filter("value = 5").is_err());
    }

    #[test]
    fn orders_parse_or_name_the_problem() {
        assert_eq!(
            parse_order("").ok(),
            Some(Order::EffectiveFromYear { desc: false })
        );
        assert_eq!(
            parse_order("create_time desc").ok(),
            Some(Order::CreateTime { desc: true })
        );
        assert!(parse_order("value").is_err());
        assert!(parse_order("create_time up").is_err());
    }

    #[test]
    fn names_are_policy_targets_slash_an_id() {
        assert_eq!(
            parse_target_name("policyTargets/cluster-scale-2021", "name").ok(),
            Some("cluster-scale-2021".to_string())
        );
        assert!(parse_target_name("cluster-scale-2021", "name").is_err());
        assert!(parse_target_name("policyTargets/Bad_Id", "name").is_err());
        // The released contract admits a trailing '-' in ids.
        assert!(parse_target_name("policyTargets/x-", "name").is_ok());
    }

    #[test]
    fn source_dates_are_strict_iso_and_not_in_the_future() {
        let today = NaiveDate::from_ymd_opt(2024, 6, 1).unwrap_or_default();
        assert_eq!(source_date(" ", today).ok().as_deref(), Some(""));
        assert_eq!(
            source_date("2021-09-01", today).ok().as_deref(),
            Some("2021-09-01")
        );
        let reason = |raw| source_date(raw, today).err().map(|v| v.reason);
        assert_eq!(reason("2021-9-1").as_deref(), Some("INVALID_DATE"));
        assert_eq!(reason("2024-06-02").as_deref(), Some("IN_FUTURE"));
    }
}
