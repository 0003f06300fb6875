//! Policy targets (dated, versioned data): create (optionally superseding an earlier target in
//! the same transaction), get, list. Targets are never edited otherwise: the only change a
//! stored target ever sees is being marked superseded by its successor.

use chrono::NaiveDate;
use qilu_common::error::FieldViolation;
use qilu_common::filter::{Filter, Op};
use qilu_common::pagination::PageRequest;
use qilu_common::time::to_timestamp;
use qilu_common::write::{Begun, WriteTx};
use qilu_common::{ApiError, CallContext, db::is_unique_violation};
use qilu_proto::registry as pb;

use crate::domain::enterprise::etag_of;
use crate::domain::policy::{MAX_SOURCE_CHARS, TargetKind, YearRange, check_numbers};
use crate::domain::zone::parse_id;
use crate::store::policy::{self as store, Cursor, ListFilter, Model, Order};

use super::RegistryApi;

/// Resource type for `ResourceInfo` in errors.
pub(super) const POLICY_TARGET_TYPE: &str = "registry.qilu.gov.cn/PolicyTarget";

/// Resource name `policyTargets/{id}`.
pub(super) fn policy_target_name(id: &str) -> String {
    format!("policyTargets/{id}")
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound {
        resource_type: POLICY_TARGET_TYPE,
        name: policy_target_name(id),
    }
}

/// Parses `policyTargets/{id}` in `field`.
fn parse_name(name: &str, field: &str) -> Result<String, FieldViolation> {
    let Some(id) = name.strip_prefix("policyTargets/") else {
        return Err(FieldViolation::new(
            field,
            "INVALID_RESOURCE_NAME",
            format!(
                "expected policyTargets/{{policy_target}}, got {}",
                qilu_common::limits::echo(name)
            ),
        ));
    };
    parse_id(id).map_err(|e| FieldViolation::new(field, "INVALID_RESOURCE_NAME", e.to_string()))
}

/// A stored target as the API shows it, with its state.
pub(super) fn to_proto(m: &Model) -> pb::PolicyTarget {
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

/// Trimmed text of at most `max` characters; line breaks allowed, other control characters not.
fn text(raw: &str, at: &str, max: usize, required: bool) -> Result<String, FieldViolation> {
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
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(FieldViolation::new(
            at,
            "CONTROL_CHARACTER",
            "must not contain control characters",
        ));
    }
    Ok(value.to_string())
}

/// A new target's validated fields (the stored row, minus id and times).
struct Draft {
    kind: TargetKind,
    value: i64,
    effective_from_year: i32,
    effective_to_year: i32,
    target_year: i32,
    source: String,
    source_date: String,
    note: String,
    /// Id of the target superseded.
    supersedes: Option<String>,
}

impl Draft {
    fn range(&self) -> YearRange {
        YearRange::from_stored(self.effective_from_year, self.effective_to_year)
    }
}

fn parse_draft(p: &pb::PolicyTarget, today: NaiveDate) -> Result<Draft, ApiError> {
    let mut violations = Vec::new();
    let kind = match TargetKind::from_code(p.kind) {
        Some(k) => Some(k),
        None => {
            violations.push(if p.kind == 0 {
                FieldViolation::new("policy_target.kind", "REQUIRED", "kind is required")
            } else {
                FieldViolation::new(
                    "policy_target.kind",
                    "UNKNOWN_ENUM_VALUE",
                    format!("{} is not a PolicyTargetKind", p.kind),
                )
            });
            None
        }
    };
    for problem in check_numbers(
        p.value,
        p.effective_from_year,
        p.effective_to_year,
        p.target_year,
    ) {
        violations.push(FieldViolation::new(
            format!("policy_target.{}", problem.field),
            problem.reason,
            problem.description,
        ));
    }
    let source = text(&p.source, "policy_target.source", MAX_SOURCE_CHARS, true)
        .map_err(|v| violations.push(v))
        .ok();
    let note = text(&p.note, "policy_target.note", MAX_SOURCE_CHARS, false)
        .map_err(|v| violations.push(v))
        .ok();
    let source_date = match p.source_date.trim() {
        "" => Some(String::new()),
        // Strict ISO: chrono alone would also take "2021-9-1".
        raw => match NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .ok()
            .filter(|d| d.format("%Y-%m-%d").to_string() == raw)
            .ok_or(())
        {
            Ok(d) if d > today => {
                violations.push(FieldViolation::new(
                    "policy_target.source_date",
                    "IN_FUTURE",
                    format!("{d} is in the future"),
                ));
                None
            }
            Ok(d) => Some(d.format("%Y-%m-%d").to_string()),
            Err(_) => {
                violations.push(FieldViolation::new(
                    "policy_target.source_date",
                    "INVALID_DATE",
                    format!(
                        "{} is not a date YYYY-MM-DD",
                        qilu_common::limits::echo(raw)
                    ),
                ));
                None
            }
        },
    };
    let supersedes = match p.supersedes.trim() {
        "" => Some(None),
        raw => parse_name(raw, "policy_target.supersedes")
            .map(Some)
            .map_err(|v| violations.push(v))
            .ok(),
    };
    match (kind, source, note, source_date, supersedes) {
        (Some(kind), Some(source), Some(note), Some(source_date), Some(supersedes))
            if violations.is_empty() =>
        {
            Ok(Draft {
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
        _ => Err(ApiError::InvalidArgument(violations)),
    }
}

pub(super) async fn create_policy_target(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::CreatePolicyTargetRequest,
) -> Result<pb::PolicyTarget, ApiError> {
    let Some(input) = req.policy_target.as_ref() else {
        return Err(ApiError::invalid(
            "policy_target",
            "REQUIRED",
            "policy_target is required",
        ));
    };
    let given_id = match req.policy_target_id.as_str() {
        "" => Ok(None),
        raw => parse_id(raw)
            .map(Some)
            .map_err(|e| FieldViolation::new("policy_target_id", "INVALID_ID", e.to_string())),
    };
    let (given_id, draft) = match (given_id, parse_draft(input, api.today())) {
        (Ok(id), Ok(draft)) => (id, draft),
        (id, draft) => {
            // Report every problem at once: the id's first, then the target's.
            let mut violations: Vec<FieldViolation> = id.err().into_iter().collect();
            if let Err(ApiError::InvalidArgument(v)) = draft {
                violations.extend(v);
            }
            return Err(ApiError::InvalidArgument(violations));
        }
    };

    let mut tx =
        match WriteTx::begin::<pb::PolicyTarget>(&api.db, ctx, &req.request_id, &req).await? {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let now = tx.now_us();
    let kind = draft.kind.code();

    // The target replaced: same kind, still in force.
    let superseded = match &draft.supersedes {
        None => None,
        Some(old_id) => {
            let old = store::get(tx.conn(), old_id).await?.ok_or_else(|| {
                ApiError::invalid(
                    "policy_target.supersedes",
                    "UNKNOWN_POLICY_TARGET",
                    format!("{} does not exist", policy_target_name(old_id)),
                )
            })?;
            if old.kind != kind {
                return Err(ApiError::invalid(
                    "policy_target.supersedes",
                    "KIND_MISMATCH",
                    format!(
                        "{} is a {} target; a {} target cannot supersede it",
                        policy_target_name(old_id),
                        kind_name(old.kind),
                        kind_name(kind)
                    ),
                ));
            }
            if !old.superseded_by.is_empty() {
                return Err(ApiError::precondition(
                    "ALREADY_SUPERSEDED",
                    policy_target_name(old_id),
                    format!(
                        "{} was already superseded by {}",
                        policy_target_name(old_id),
                        old.superseded_by
                    ),
                ));
            }
            Some(old)
        }
    };

    // At most one target of a kind in force for any year.
    let range = draft.range();
    for other in store::not_superseded(tx.conn(), kind).await? {
        if superseded.as_ref().is_some_and(|s| s.id == other.id) {
            continue;
        }
        let theirs = YearRange::from_stored(other.effective_from_year, other.effective_to_year);
        if theirs.overlaps(range) {
            return Err(ApiError::precondition(
                "OVERLAPPING_TARGET",
                policy_target_name(&other.id),
                format!(
                    "{} ({}, {theirs}) is in force for years that {range} overlaps; \
                     supersede it or choose other years",
                    policy_target_name(&other.id),
                    kind_name(kind)
                ),
            ));
        }
    }

    let id = given_id.unwrap_or_else(|| {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        format!(
            "{}-{}-{}",
            draft.kind.slug(),
            draft.effective_from_year,
            &suffix[..8]
        )
    });
    let row = Model {
        id: id.clone(),
        kind,
        value: draft.value,
        effective_from_year: draft.effective_from_year,
        effective_to_year: draft.effective_to_year,
        target_year: draft.target_year,
        source: draft.source,
        source_date: draft.source_date,
        note: draft.note,
        supersedes: superseded
            .as_ref()
            .map(|s| policy_target_name(&s.id))
            .unwrap_or_default(),
        superseded_by: String::new(),
        create_time_us: now,
        update_time_us: now,
        version: 1,
    };
    if let Err(e) = store::insert(tx.conn(), row.clone()).await {
        return Err(if is_unique_violation(&e) {
            ApiError::AlreadyExists {
                resource_type: POLICY_TARGET_TYPE,
                name: policy_target_name(&id),
            }
        } else {
            e.into()
        });
    }
    tx.record(&policy_target_name(&id), &row)?;
    if let Some(old) = superseded {
        let by = policy_target_name(&id);
        if !store::supersede(tx.conn(), &old.id, &by, old.version, now).await? {
            return Err(ApiError::Aborted(format!(
                "{} changed concurrently; retry",
                policy_target_name(&old.id)
            )));
        }
        let updated = Model {
            superseded_by: by,
            update_time_us: now,
            version: old.version + 1,
            ..old
        };
        tx.record(&policy_target_name(&updated.id), &updated)?;
    }
    let response = to_proto(&row);
    tx.commit(&response).await?;
    tracing::info!(policy_target = %response.name, "policy target recorded");
    Ok(response)
}

/// The proto name of a kind number, for messages.
fn kind_name(kind: i32) -> &'static str {
    pb::PolicyTargetKind::try_from(kind)
        .map(|k| k.as_str_name())
        .unwrap_or("UNKNOWN")
}

pub(super) async fn get_policy_target(
    api: &RegistryApi,
    _ctx: &CallContext,
    req: pb::GetPolicyTargetRequest,
) -> Result<pb::PolicyTarget, ApiError> {
    let id = parse_name(&req.name, "name").map_err(|v| ApiError::InvalidArgument(vec![v]))?;
    let row = store::get(&api.db, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(to_proto(&row))
}

fn parse_list_filter(raw: &str) -> Result<ListFilter, ApiError> {
    let filter = Filter::parse(raw)?;
    filter.only(&["kind", "state", "year"])?;
    let mut out = ListFilter::default();
    for c in filter.conditions() {
        let bad = |why: String| {
            ApiError::invalid("filter", "INVALID_FILTER", format!("{}: {why}", c.field))
        };
        if c.op != Op::Eq {
            return Err(bad("supports only =".into()));
        }
        match c.field.as_str() {
            "kind" => {
                let k = pb::PolicyTargetKind::from_str_name(&c.value)
                    .filter(|k| *k != pb::PolicyTargetKind::Unspecified)
                    .ok_or_else(|| bad(format!("{:?} is not a PolicyTargetKind", c.value)))?;
                out.kind = Some(k as i32);
            }
            "state" => {
                out.in_force = Some(match pb::PolicyTargetState::from_str_name(&c.value) {
                    Some(pb::PolicyTargetState::InForce) => true,
                    Some(pb::PolicyTargetState::Superseded) => false,
                    _ => return Err(bad(format!("{:?} is not a PolicyTargetState", c.value))),
                });
            }
            "year" => {
                let y: i32 = c
                    .value
                    .parse()
                    .map_err(|_| bad(format!("{:?} is not a year", c.value)))?;
                out.year = Some(y);
            }
            _ => {}
        }
    }
    Ok(out)
}

fn parse_order(raw: &str) -> Result<Order, ApiError> {
    qilu_common::limits::order_by(raw)?;
    let words: Vec<&str> = raw.split_whitespace().collect();
    let invalid = || {
        ApiError::invalid(
            "order_by",
            "INVALID_ORDER_BY",
            format!(
                "cannot order by {}; use effective_from_year or create_time, optionally with desc",
                qilu_common::limits::echo(raw)
            ),
        )
    };
    let desc = match words.get(1).copied() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(invalid()),
    };
    if words.len() > 2 {
        return Err(invalid());
    }
    match words.first().copied() {
        None | Some("effective_from_year") => Ok(Order::EffectiveFromYear { desc }),
        Some("create_time") => Ok(Order::CreateTime { desc }),
        Some(_) => Err(invalid()),
    }
}

pub(super) async fn list_policy_targets(
    api: &RegistryApi,
    _ctx: &CallContext,
    req: pb::ListPolicyTargetsRequest,
) -> Result<pb::ListPolicyTargetsResponse, ApiError> {
    let filter = parse_list_filter(&req.filter)?;
    let order = parse_order(&req.order_by)?;
    let page = PageRequest::parse(req.page_size, &req.page_token, &req.filter, &req.order_by)?;
    let after: Option<Cursor> = page.after()?;
    let mut rows = store::list(&api.db, &filter, order, after, page.size + 1).await?;
    let more = rows.len() as u64 > page.size;
    rows.truncate(page.size as usize);
    let next_page_token = match (more, rows.last()) {
        (true, Some(last)) => page.next_token(&Cursor {
            key: match order {
                Order::EffectiveFromYear { .. } => i64::from(last.effective_from_year),
                Order::CreateTime { .. } => last.create_time_us,
            },
            id: last.id.clone(),
        })?,
        _ => String::new(),
    };
    Ok(pb::ListPolicyTargetsResponse {
        policy_targets: rows.iter().map(to_proto).collect(),
        next_page_token,
    })
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
        assert!(parse_list_filter("kind = CLUSTER_SCALE").is_err());
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
            parse_name("policyTargets/cluster-scale-2021", "name").ok(),
            Some("cluster-scale-2021".to_string())
        );
        assert!(parse_name("cluster-scale-2021", "name").is_err());
        assert!(parse_name("policyTargets/Bad_Id", "name").is_err());
    }
}
