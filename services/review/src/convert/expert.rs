//! Experts: the create, update, conflict and list requests parsed into domain values, and
//! experts as the API shows them.

use qilu_common::error::{ApiError, FieldViolation};
use qilu_common::filter::{Filter, FilterField, Kind, Op, Value};
use qilu_common::input::{OrderBy, UpdateMask, Violations};
use qilu_common::time::to_timestamp;
use qilu_proto::common::IndustryField;
use qilu_proto::review as pb;

use super::{industry_field, parse_enterprise};
use crate::domain::achievement::MAX_REASON_CHARS;
use crate::domain::expert::{Expert, MAX_LOAD_LIMIT};
use crate::domain::ids::ExpertId;
use crate::store::expert::ListFilter;

/// The fields only an admin may change.
pub const ADMIN_ONLY_FIELDS: &[&str] = &["load_limit", "state"];

/// A parsed `CreateExpert`: the expert as it will be stored, times still unset.
pub fn parse_create(req: &pb::CreateExpertRequest) -> Result<Expert, ApiError> {
    let mut v = Violations::new();
    let id = v.take(ExpertId::parse_id(&req.expert_id, "expert_id"));
    let Some(input) = req.expert.as_ref() else {
        v.push(FieldViolation::new(
            "expert",
            "REQUIRED",
            "expert is required",
        ));
        return v.into_result(None);
    };
    let mut expert = Expert {
        id: id
            .as_ref()
            .map(|i| i.as_str().to_string())
            .unwrap_or_default(),
        display_name: String::new(),
        industry_fields: Vec::new(),
        affiliations: Vec::new(),
        organization: String::new(),
        load_limit: 0,
        declared_conflicts: Vec::new(),
        active: true,
        create_time_us: 0,
        update_time_us: 0,
        version: 1,
    };
    for path in EXPERT_FIELDS {
        v.take_all(apply_expert_field(&mut expert, input, path));
    }
    v.into_result(id.map(|_| expert))
}

/// A parsed `UpdateExpert`: which expert, the etag read, and the masked paths. The values are
/// applied to the stored expert by [`apply_update`](UpdateExpert::apply_update).
#[derive(Debug, Clone)]
pub struct UpdateExpert<'a> {
    /// The expert to update.
    pub id: ExpertId,
    /// The etag the caller read (empty: no check).
    pub etag: &'a str,
    /// The fields to write.
    pub mask: UpdateMask,
    input: &'a pb::Expert,
}

impl<'a> UpdateExpert<'a> {
    /// The name and the mask.
    pub fn parse(req: &'a pb::UpdateExpertRequest) -> Result<UpdateExpert<'a>, ApiError> {
        let input = qilu_common::input::required(req.expert.as_ref(), "expert")?;
        let id = ExpertId::parse_name(&input.name, "expert.name")?;
        let mask = UpdateMask::parse(req.update_mask.as_ref(), EXPERT_FIELDS)?;
        Ok(UpdateExpert {
            id,
            etag: &input.etag,
            mask,
            input,
        })
    }

    /// Whether the mask names a field only an admin may change.
    pub fn touches_admin_fields(&self) -> bool {
        ADMIN_ONLY_FIELDS.iter().any(|f| self.mask.contains(f))
    }

    /// `current` with the masked values written over it, every bad value reported at once.
    pub fn apply_update(&self, current: &Expert) -> Result<Expert, ApiError> {
        let mut updated = current.clone();
        let mut v = Violations::new();
        for path in self.mask.paths() {
            v.take_all(apply_expert_field(&mut updated, self.input, path));
        }
        v.finish()?;
        Ok(updated)
    }
}

/// A parsed `DeclareConflict`.
#[derive(Debug, Clone)]
pub struct DeclareConflict {
    /// The expert declaring.
    pub expert: ExpertId,
    /// The USCC of the enterprise it conflicts with.
    pub enterprise: String,
    /// Why.
    pub reason: String,
}

impl DeclareConflict {
    /// Every violation of the request at once (the name first, on its own).
    pub fn parse(req: &pb::DeclareConflictRequest) -> Result<DeclareConflict, ApiError> {
        let expert = ExpertId::parse_name(&req.name, "name")?;
        let mut v = Violations::new();
        let enterprise = v.take(parse_enterprise(&req.enterprise, "enterprise"));
        let reason = v.take(qilu_common::input::text(
            &req.reason,
            "reason",
            MAX_REASON_CHARS,
            true,
        ));
        v.into_result(enterprise.zip(reason))
            .map(|(enterprise, reason)| DeclareConflict {
                expert,
                enterprise,
                reason,
            })
    }
}

fn industry_field_named(name: &str) -> Option<i32> {
    IndustryField::from_str_name(name).map(|f| f as i32)
}

fn expert_state(name: &str) -> Option<i32> {
    pb::ExpertState::from_str_name(name).map(|s| s as i32)
}

const LIST_FILTER: &[FilterField] = &[
    FilterField::with(
        "industry_fields",
        &[Op::Eq, Op::Has],
        Kind::Enum {
            type_name: "IndustryField",
            from_name: industry_field_named,
        },
    ),
    FilterField::with("affiliations", &[Op::Eq, Op::Has], Kind::Text),
    FilterField::eq(
        "state",
        Kind::Enum {
            type_name: "ExpertState",
            from_name: expert_state,
        },
    ),
    FilterField::with("display_name", &[Op::Has], Kind::Text),
];

/// The `filter` of `ListExperts`.
pub fn list_filter(raw: &str) -> Result<ListFilter, ApiError> {
    let mut out = ListFilter::default();
    for term in Filter::typed(raw, LIST_FILTER)? {
        match (term.field, term.value) {
            ("industry_fields", Value::Enum(f)) => out.industry_field = Some(f),
            ("affiliations", Value::Text(a)) => {
                out.affiliation = Some(parse_enterprise(&a, "filter").map_err(|v| {
                    ApiError::invalid(
                        "filter",
                        "INVALID_FILTER",
                        format!("affiliations: {}", v.description),
                    )
                })?);
            }
            ("state", Value::Enum(s)) => out.active = Some(s == pb::ExpertState::Active as i32),
            (_, Value::Text(t)) => out.name_contains = Some(t),
            _ => {}
        }
    }
    Ok(out)
}

/// How `ListExperts` orders: by id (`name`, the default) or by open reviews (`open_reviews`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpertOrder {
    /// By open reviews rather than by id.
    pub by_load: bool,
    /// Descending.
    pub desc: bool,
}

/// The `order_by` of `ListExperts`.
pub fn list_order(raw: &str) -> Result<ExpertOrder, ApiError> {
    let order = OrderBy::parse(raw, &[("name", false), ("open_reviews", true)], false)?;
    Ok(ExpertOrder {
        by_load: order.key,
        desc: order.desc,
    })
}

/// Fields an expert update mask may name; the last two are admin-only.
pub const EXPERT_FIELDS: &[&str] = &[
    "display_name",
    "industry_fields",
    "affiliations",
    "organization",
    "load_limit",
    "state",
];

/// Validates field `path` of `p` and writes it into `e`.
fn apply_expert_field(
    e: &mut Expert,
    p: &pb::Expert,
    path: &str,
) -> Result<(), Vec<FieldViolation>> {
    let at = format!("expert.{path}");
    let one = |v: FieldViolation| vec![v];
    match path {
        "display_name" => {
            e.display_name =
                qilu_common::input::text(&p.display_name, &at, 100, true).map_err(one)?
        }
        "organization" => {
            e.organization =
                qilu_common::input::text(&p.organization, &at, 200, false).map_err(one)?
        }
        "industry_fields" => {
            if p.industry_fields.is_empty() {
                return Err(one(FieldViolation::new(
                    at,
                    "REQUIRED",
                    "at least one field",
                )));
            }
            let mut out = Vec::new();
            let mut bad = Vec::new();
            for (i, f) in p.industry_fields.iter().enumerate() {
                match industry_field(*f, &format!("{at}[{i}]")) {
                    Ok(f) => out.push(f),
                    Err(v) => bad.push(v),
                }
            }
            if !bad.is_empty() {
                return Err(bad);
            }
            out.sort_unstable();
            out.dedup();
            e.industry_fields = out;
        }
        "affiliations" => {
            let mut out = Vec::new();
            let mut bad = Vec::new();
            for (i, a) in p.affiliations.iter().enumerate() {
                match parse_enterprise(a, &format!("{at}[{i}]")) {
                    Ok(u) => out.push(u),
                    Err(v) => bad.push(v),
                }
            }
            if !bad.is_empty() {
                return Err(bad);
            }
            out.sort();
            out.dedup();
            e.affiliations = out;
        }
        "load_limit" => {
            if !(1..=MAX_LOAD_LIMIT).contains(&p.load_limit) {
                return Err(one(FieldViolation::new(
                    at,
                    "OUT_OF_RANGE",
                    format!("load limit is 1-{MAX_LOAD_LIMIT}, got {}", p.load_limit),
                )));
            }
            e.load_limit = p.load_limit;
        }
        "state" => match pb::ExpertState::try_from(p.state) {
            Ok(pb::ExpertState::Unspecified | pb::ExpertState::Active) => e.active = true,
            Ok(pb::ExpertState::Inactive) => e.active = false,
            Err(_) => {
                return Err(one(FieldViolation::new(
                    at,
                    "UNKNOWN_ENUM_VALUE",
                    format!("{} is not an ExpertState", p.state),
                )));
            }
        },
        other => {
            return Err(one(FieldViolation::new(
                "update_mask",
                "FIELD_NOT_UPDATABLE",
                format!(
                    "{other:?} cannot be updated; updatable fields: {}",
                    EXPERT_FIELDS.join(", ")
                ),
            )));
        }
    }
    Ok(())
}

/// An expert as the API shows it, with its current open reviews.
pub fn expert_to_proto(e: &Expert, open_reviews: i64) -> pb::Expert {
    pb::Expert {
        name: e.name(),
        display_name: e.display_name.clone(),
        industry_fields: e.industry_fields.clone(),
        affiliations: e
            .affiliations
            .iter()
            .map(|u| format!("enterprises/{u}"))
            .collect(),
        organization: e.organization.clone(),
        load_limit: e.load_limit,
        open_reviews: i32::try_from(open_reviews).unwrap_or(i32::MAX),
        declared_conflicts: e
            .declared_conflicts
            .iter()
            .map(|d| pb::DeclaredConflict {
                enterprise: format!("enterprises/{}", d.enterprise),
                reason: d.reason.clone(),
                declared_by: d.declared_by.clone(),
                declare_time: Some(to_timestamp(d.declare_time_us)),
            })
            .collect(),
        state: if e.active {
            pb::ExpertState::Active
        } else {
            pb::ExpertState::Inactive
        } as i32,
        create_time: Some(to_timestamp(e.create_time_us)),
        update_time: Some(to_timestamp(e.update_time_us)),
        etag: e.etag(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expert_lists_filter_and_order_by_declared_fields() {
        let f = list_filter(
            r#"industry_fields:INDUSTRY_FIELD_BIOMEDICINE AND state = EXPERT_STATE_INACTIVE AND display_name:"王""#,
        )
        .ok();
        assert!(f.as_ref().is_some_and(|f| f.industry_field.is_some()));
        assert_eq!(f.as_ref().and_then(|f| f.active), Some(false));
        assert!(list_filter("display_name = x").is_err());
        assert!(list_filter("affiliations = enterprises/x").is_err());
        assert_eq!(
            list_order("open_reviews desc").ok(),
            Some(ExpertOrder {
                by_load: true,
                desc: true
            })
        );
        assert_eq!(
            list_order("").ok(),
            Some(ExpertOrder {
                by_load: false,
                desc: false
            })
        );
        assert!(list_order("load").is_err());
    }

    #[test]
    fn a_create_without_expert_reports_the_id_too() {
        let Err(ApiError::InvalidArgument(v)) = parse_create(&pb::CreateExpertRequest {
            expert_id: "Wang".into(),
            ..Default::default()
        }) else {
            panic!("must be refused");
        };
        let reasons: Vec<&str> = v.iter().map(|v| v.reason.as_str()).collect();
        assert_eq!(reasons, ["INVALID_ID", "REQUIRED"]);
    }
}
