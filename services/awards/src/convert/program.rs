//! Programs: the create, update, list and publish requests parsed into domain values (the
//! domain's settings rules included, so a handler only sees valid settings), and programs as the
//! contract shows them.

use qilu_common::filter::{Filter, FilterField, Kind as FilterKind, Op, Value};
use qilu_common::input::{OrderBy, UpdateMask, Violations};
use qilu_common::time::to_timestamp;
use qilu_common::{ApiError, FieldViolation};
use qilu_proto::awards as pb;

use super::{date_str, parse_date};
use crate::domain::ids::ProgramId;
use crate::domain::program::{
    self, AwardQuota, DEFAULT_OBJECTION_WINDOW_DAYS, Deadlines, Kind, MAX_OBJECTION_WINDOW_DAYS,
    PriorityField, Program, QuotaCap, Settings,
};
use crate::store::program::{ListFilter, Order};

/// The fields `UpdateProgram` may mask.
pub const UPDATABLE: [&str; 12] = [
    "display_name",
    "year",
    "description",
    "award_quotas",
    "quota_caps",
    "budget_fen",
    "per_project_cap_fen",
    "priority_fields",
    "score_threshold_millipoints",
    "requires_high_tech_certification",
    "deadlines",
    "objection_window_days",
];

fn nested(v: Vec<FieldViolation>, parent: &str) -> Vec<FieldViolation> {
    v.into_iter().map(|v| v.nested(parent)).collect()
}

/// A parsed `CreateProgram`: a valid id, kind and settings.
#[derive(Debug, Clone)]
pub struct CreateProgram {
    /// The admin-chosen id.
    pub id: ProgramId,
    /// Award or project.
    pub kind: Kind,
    /// Valid settings for `kind`.
    pub settings: Settings,
}

impl CreateProgram {
    /// Every violation of the request at once.
    pub fn parse(req: &pb::CreateProgramRequest) -> Result<CreateProgram, ApiError> {
        let mut v = Violations::new();
        let id = match ProgramId::parse_id(&req.program_id, "program_id") {
            Ok(id) => Some(id),
            Err(_) => {
                v.push(FieldViolation::new(
                    "program_id",
                    "INVALID_ID",
                    "lower-case letters, digits and '-', 1-63 characters, starting with a letter",
                ));
                None
            }
        };
        let Some(input) = req.program.as_ref() else {
            v.push(FieldViolation::new(
                "program",
                "REQUIRED",
                "program is required",
            ));
            return v.into_result(None);
        };
        let kind = Kind::from_code(input.kind);
        if kind.is_none() {
            v.push(FieldViolation::new(
                "program.kind",
                "REQUIRED",
                "kind must be PROGRAM_KIND_AWARD or PROGRAM_KIND_PROJECT",
            ));
        }
        let settings = v.take_all(settings_from_proto(input, "program"));
        if let (Some(kind), Some(s)) = (kind, settings.as_ref()) {
            for violation in nested(program::validate(kind, s), "program") {
                v.push(violation);
            }
        }
        v.into_result(id.zip(kind).zip(settings))
            .map(|((id, kind), settings)| CreateProgram { id, kind, settings })
    }
}

/// A parsed `UpdateProgram`: which program, the etag read, the masked paths and their values.
#[derive(Debug, Clone)]
pub struct UpdateProgram<'a> {
    /// The program to update.
    pub id: ProgramId,
    /// The etag the caller read (empty: no check).
    pub etag: &'a str,
    mask: UpdateMask,
    incoming: Settings,
}

impl<'a> UpdateProgram<'a> {
    /// The name, the mask and the values' syntax; the settings rules are checked on the merge.
    pub fn parse(req: &'a pb::UpdateProgramRequest) -> Result<UpdateProgram<'a>, ApiError> {
        let input = qilu_common::input::required(req.program.as_ref(), "program")?;
        let id = ProgramId::parse_name(&input.name, "program.name")?;
        let mask = UpdateMask::parse(req.update_mask.as_ref(), &UPDATABLE)?;
        let incoming = settings_from_proto(input, "program").map_err(ApiError::InvalidArgument)?;
        Ok(UpdateProgram {
            id,
            etag: &input.etag,
            mask,
            incoming,
        })
    }

    /// `current`'s settings with the masked values written over them, if they are valid for
    /// its kind.
    pub fn apply(&self, current: &Program) -> Result<Settings, ApiError> {
        let incoming = &self.incoming;
        let mut s = current.settings.clone();
        for p in self.mask.paths() {
            match p.as_str() {
                "display_name" => s.display_name = incoming.display_name.clone(),
                "year" => s.year = incoming.year,
                "description" => s.description = incoming.description.clone(),
                "award_quotas" => s.award_quotas = incoming.award_quotas.clone(),
                "quota_caps" => s.quota_caps = incoming.quota_caps.clone(),
                "budget_fen" => s.budget_fen = incoming.budget_fen,
                "per_project_cap_fen" => s.per_project_cap_fen = incoming.per_project_cap_fen,
                "priority_fields" => s.priority_fields = incoming.priority_fields.clone(),
                "score_threshold_millipoints" => {
                    s.score_threshold_millipoints = incoming.score_threshold_millipoints
                }
                "requires_high_tech_certification" => {
                    s.requires_high_tech_certification = incoming.requires_high_tech_certification
                }
                "deadlines" => s.deadlines = incoming.deadlines.clone(),
                "objection_window_days" => s.objection_window_days = incoming.objection_window_days,
                _ => {}
            }
        }
        let violations = nested(program::validate(current.kind, &s), "program");
        if violations.is_empty() {
            Ok(s)
        } else {
            Err(ApiError::InvalidArgument(violations))
        }
    }
}

/// The `objection_window_days` of a `PublishResults`: 0 (the program's own) or 1 to the most.
pub fn publish_window_days(req: &pb::PublishResultsRequest) -> Result<i32, ApiError> {
    let days = req.objection_window_days;
    if days != 0 && !(1..=MAX_OBJECTION_WINDOW_DAYS).contains(&days) {
        return Err(ApiError::invalid(
            "objection_window_days",
            "OUT_OF_RANGE",
            format!(
                "objection_window_days must be 1-{MAX_OBJECTION_WINDOW_DAYS} (0 = the program's)"
            ),
        ));
    }
    Ok(days)
}

fn program_kind(name: &str) -> Option<i32> {
    pb::ProgramKind::from_str_name(name).map(|k| k as i32)
}

fn program_state(name: &str) -> Option<i32> {
    pb::ProgramState::from_str_name(name).map(|s| s as i32)
}

const LIST_FILTER: &[FilterField] = &[
    FilterField::eq(
        "kind",
        FilterKind::Enum {
            type_name: "ProgramKind",
            from_name: program_kind,
        },
    ),
    FilterField::with(
        "year",
        &[Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge],
        FilterKind::Int,
    ),
    FilterField::eq(
        "state",
        FilterKind::Enum {
            type_name: "ProgramState",
            from_name: program_state,
        },
    ),
    FilterField::with("display_name", &[Op::Has], FilterKind::Text),
];

/// The `filter` of `ListPrograms`.
pub fn list_filter(raw: &str) -> Result<ListFilter, ApiError> {
    let mut out = ListFilter::default();
    for term in Filter::typed(raw, LIST_FILTER)? {
        match (term.field, term.value) {
            ("kind", Value::Enum(k)) => out.kind = Some(k),
            ("state", Value::Enum(s)) => out.state = Some(s),
            ("year", Value::Int(y)) => {
                let y = i32::try_from(y).map_err(|_| {
                    ApiError::invalid(
                        "filter",
                        "INVALID_FILTER",
                        format!("year: {y} is not a year"),
                    )
                })?;
                out.years.push((term.op, y));
            }
            (_, Value::Text(t)) => out.name_contains = Some(t),
            _ => {}
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OrderKey {
    Year,
    Name,
}

/// The `order_by` of `ListPrograms`: `year desc` (the default) or `name`.
pub fn list_order(raw: &str) -> Result<Order, ApiError> {
    let refused = || {
        ApiError::invalid(
            "order_by",
            "INVALID_ORDER_BY",
            format!(
                "cannot order by {}; use \"year desc\" (default) or \"name\"",
                qilu_common::limits::echo(raw)
            ),
        )
    };
    qilu_common::limits::order_by(raw)?;
    if raw.trim().is_empty() {
        return Ok(Order::YearDesc);
    }
    let order = OrderBy::parse(
        raw,
        &[("year", OrderKey::Year), ("name", OrderKey::Name)],
        OrderKey::Year,
    )
    .map_err(|_| refused())?;
    match (order.key, order.desc) {
        (OrderKey::Year, true) => Ok(Order::YearDesc),
        (OrderKey::Name, false) => Ok(Order::Name),
        _ => Err(refused()),
    }
}

/// The settings in a proto program. Date syntax errors are reported with `prefix`; the domain
/// rules are checked by `domain::program::validate`.
fn settings_from_proto(p: &pb::Program, prefix: &str) -> Result<Settings, Vec<FieldViolation>> {
    let mut v = Vec::new();
    let d = p.deadlines.clone().unwrap_or_default();
    let deadlines = Deadlines {
        application_start_date: parse_date(
            &d.application_start_date,
            &format!("{prefix}.deadlines.application_start_date"),
            &mut v,
        ),
        application_deadline: parse_date(
            &d.application_deadline,
            &format!("{prefix}.deadlines.application_deadline"),
            &mut v,
        ),
        allocation_due_date: parse_date(
            &d.allocation_due_date,
            &format!("{prefix}.deadlines.allocation_due_date"),
            &mut v,
        ),
        publication_due_date: parse_date(
            &d.publication_due_date,
            &format!("{prefix}.deadlines.publication_due_date"),
            &mut v,
        ),
        final_due_date: parse_date(
            &d.final_due_date,
            &format!("{prefix}.deadlines.final_due_date"),
            &mut v,
        ),
    };
    if !v.is_empty() {
        return Err(v);
    }
    Ok(Settings {
        display_name: p.display_name.trim().to_string(),
        year: p.year,
        description: p.description.clone(),
        award_quotas: p
            .award_quotas
            .iter()
            .map(|q| AwardQuota {
                category: q.category,
                grade: q.grade,
                quota: q.quota,
                amount_fen: q.amount_fen,
            })
            .collect(),
        quota_caps: p
            .quota_caps
            .iter()
            .map(|c| QuotaCap {
                description: c.description.clone(),
                categories: c.categories.clone(),
                grades: c.grades.clone(),
                limit: c.limit,
            })
            .collect(),
        budget_fen: p.budget_fen,
        per_project_cap_fen: p.per_project_cap_fen,
        priority_fields: p
            .priority_fields
            .iter()
            .map(|f| PriorityField {
                field: f.field,
                basis_points: f.target_share_basis_points,
            })
            .collect(),
        score_threshold_millipoints: p.score_threshold_millipoints,
        requires_high_tech_certification: p.requires_high_tech_certification,
        deadlines,
        objection_window_days: if p.objection_window_days == 0 {
            DEFAULT_OBJECTION_WINDOW_DAYS
        } else {
            p.objection_window_days
        },
    })
}

/// A program as the contract shows it.
pub fn program_to_proto(p: &Program) -> pb::Program {
    let s = &p.settings;
    pb::Program {
        name: p.name(),
        display_name: s.display_name.clone(),
        kind: p.kind.code(),
        year: s.year,
        description: s.description.clone(),
        award_quotas: s
            .award_quotas
            .iter()
            .map(|q| pb::AwardQuota {
                category: q.category,
                grade: q.grade,
                quota: q.quota,
                amount_fen: q.amount_fen,
            })
            .collect(),
        quota_caps: s
            .quota_caps
            .iter()
            .map(|c| pb::QuotaCap {
                description: c.description.clone(),
                categories: c.categories.clone(),
                grades: c.grades.clone(),
                limit: c.limit,
            })
            .collect(),
        budget_fen: s.budget_fen,
        per_project_cap_fen: s.per_project_cap_fen,
        priority_fields: s
            .priority_fields
            .iter()
            .map(|f| pb::PriorityFieldShare {
                field: f.field,
                target_share_basis_points: f.basis_points,
            })
            .collect(),
        score_threshold_millipoints: s.score_threshold_millipoints,
        requires_high_tech_certification: s.requires_high_tech_certification,
        deadlines: Some(pb::StageDeadlines {
            application_start_date: date_str(s.deadlines.application_start_date),
            application_deadline: date_str(s.deadlines.application_deadline),
            allocation_due_date: date_str(s.deadlines.allocation_due_date),
            publication_due_date: date_str(s.deadlines.publication_due_date),
            final_due_date: date_str(s.deadlines.final_due_date),
        }),
        objection_window_days: s.objection_window_days,
        state: p.state.code(),
        allocation: if p.allocation_revision > 0 {
            format!("{}/allocation", p.name())
        } else {
            String::new()
        },
        publish_time: p.publish_time_us.map(to_timestamp),
        objection_window_end_time: p.objection_window_end_us.map(to_timestamp),
        finalize_time: p.finalize_time_us.map(to_timestamp),
        create_time: Some(to_timestamp(p.create_time_us)),
        update_time: Some(to_timestamp(p.update_time_us)),
        etag: p.etag(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn program_lists_filter_on_declared_fields_and_order_two_ways() {
        let f =
            list_filter(r#"kind = PROGRAM_KIND_AWARD AND year >= 2024 AND display_name:"绿色""#)
                .unwrap();
        assert_eq!(f.kind, Some(pb::ProgramKind::Award as i32));
        assert_eq!(f.years, vec![(Op::Ge, 2024)]);
        assert_eq!(f.name_contains.as_deref(), Some("绿色"));
        for bad in [
            "year : 2024",
            "year = soon",
            "kind = AWARD",
            "display_name = x",
            "budget = 1",
        ] {
            assert!(list_filter(bad).is_err(), "{bad}");
        }
        assert_eq!(list_order("").ok(), Some(Order::YearDesc));
        assert_eq!(list_order("year desc").ok(), Some(Order::YearDesc));
        assert_eq!(list_order("name").ok(), Some(Order::Name));
        for bad in ["year", "name desc", "budget"] {
            let Err(ApiError::InvalidArgument(v)) = list_order(bad) else {
                panic!("{bad} must be refused");
            };
            assert_eq!(v[0].reason, "INVALID_ORDER_BY");
        }
    }

    #[test]
    fn a_create_reports_id_kind_and_settings_together() {
        let req = pb::CreateProgramRequest {
            program_id: "2026".into(),
            program: Some(pb::Program {
                deadlines: Some(pb::StageDeadlines {
                    application_deadline: "2026-2-30".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let Err(ApiError::InvalidArgument(v)) = CreateProgram::parse(&req) else {
            panic!("must be refused");
        };
        let fields: Vec<&str> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "program_id",
                "program.kind",
                "program.deadlines.application_deadline"
            ]
        );
    }

    #[test]
    fn update_masks_refuse_paths_that_are_not_settings() {
        let req = pb::UpdateProgramRequest {
            program: Some(pb::Program {
                name: "programs/green".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["kind".into(), "state".into()],
            }),
            ..Default::default()
        };
        let Err(ApiError::InvalidArgument(v)) = UpdateProgram::parse(&req) else {
            panic!("must be refused");
        };
        assert_eq!(v.len(), 2);
        assert!(v.iter().all(|v| v.reason == "FIELD_NOT_UPDATABLE"));
        assert!(
            publish_window_days(&pb::PublishResultsRequest {
                objection_window_days: MAX_OBJECTION_WINDOW_DAYS + 1,
                ..Default::default()
            })
            .is_err()
        );
    }
}
