//! Achievements and their green data: the create, update and list requests parsed into domain
//! values, and achievements as the API shows them.

use qilu_common::error::{ApiError, FieldViolation};
use qilu_common::filter::{Filter, FilterField, Kind, Op, Value};
use qilu_common::input::{OrderBy, UpdateMask, Violations};
use qilu_common::time::to_timestamp;
use qilu_proto::common::IndustryField;
use qilu_proto::review as pb;

use super::decision::{appeal_to_proto, decision_to_proto, redact_decision};
use super::rule_set::verdict_to_proto;
use super::{industry_code, industry_field, non_negative, parse_enterprise};
use crate::domain::achievement::{
    Achievement, Fields, MAX_REASON_CHARS, MAX_SUMMARY_CHARS, MAX_TITLE_CHARS,
};
use crate::domain::green::{GreenData, PollutantEmission, ProductEnergy};
use crate::domain::ids::AchievementId;
use crate::store::achievement::{ListFilter, Order};

/// A parsed `CreateAchievement`: the owner's USCC and the draft's fields.
#[derive(Debug, Clone)]
pub struct CreateAchievement {
    /// The owner enterprise's USCC (form checked; the registry is asked later).
    pub owner: String,
    /// The draft's fields.
    pub fields: Fields,
}

impl CreateAchievement {
    /// Every violation of the request at once.
    pub fn parse(req: &pb::CreateAchievementRequest) -> Result<CreateAchievement, ApiError> {
        let input = qilu_common::input::required(req.achievement.as_ref(), "achievement")?;
        let mut v = Violations::new();
        let owner = v.take(parse_enterprise(&input.owner, "achievement.owner"));
        let fields = v.take_all(parse_achievement_fields(input, "achievement"));
        v.into_result(owner.zip(fields))
            .map(|(owner, fields)| CreateAchievement { owner, fields })
    }
}

/// A parsed `UpdateAchievement`: which achievement, the etag read, and the masked paths. The
/// values are applied to the stored draft by [`apply_update`], which checks each one.
#[derive(Debug, Clone)]
pub struct UpdateAchievement<'a> {
    /// The achievement to update.
    pub id: AchievementId,
    /// The etag the caller read (empty: no check).
    pub etag: &'a str,
    /// The fields to write.
    pub mask: UpdateMask,
    input: &'a pb::Achievement,
}

impl<'a> UpdateAchievement<'a> {
    /// The name and the mask; a path outside the updatable fields is refused here.
    pub fn parse(req: &'a pb::UpdateAchievementRequest) -> Result<UpdateAchievement<'a>, ApiError> {
        let input = qilu_common::input::required(req.achievement.as_ref(), "achievement")?;
        let id = AchievementId::parse_name(&input.name, "achievement.name")?;
        let mut updatable: Vec<String> = ACHIEVEMENT_FIELDS.iter().map(|f| f.to_string()).collect();
        updatable.extend(GREEN_DATA_FIELDS.iter().map(|f| format!("green_data.{f}")));
        let updatable: Vec<&str> = updatable.iter().map(String::as_str).collect();
        let mask = UpdateMask::parse(req.update_mask.as_ref(), &updatable)?;
        Ok(UpdateAchievement {
            id,
            etag: &input.etag,
            mask,
            input,
        })
    }

    /// `fields` with the masked values written over it, every bad value reported at once.
    pub fn apply_update(&self, fields: &Fields) -> Result<Fields, ApiError> {
        let mut updated = fields.clone();
        let mut v = Violations::new();
        for path in self.mask.paths() {
            v.take_all(apply_achievement_field(
                &mut updated,
                self.input,
                path,
                "achievement",
            ));
        }
        v.finish()?;
        Ok(updated)
    }
}

/// The reason of a `WithdrawAchievement`.
pub fn withdraw_reason(req: &pb::WithdrawAchievementRequest) -> Result<String, ApiError> {
    qilu_common::input::text(&req.reason, "reason", MAX_REASON_CHARS, false).map_err(ApiError::from)
}

fn achievement_state(name: &str) -> Option<i32> {
    pb::AchievementState::from_str_name(name).map(|s| s as i32)
}

fn industry_field_named(name: &str) -> Option<i32> {
    IndustryField::from_str_name(name).map(|f| f as i32)
}

fn screening_outcome(name: &str) -> Option<i32> {
    pb::ScreeningOutcome::from_str_name(name).map(|o| o as i32)
}

/// What `ListAchievements` filters on.
const LIST_FILTER: &[FilterField] = &[
    FilterField::eq("owner", Kind::Text),
    FilterField::eq(
        "state",
        Kind::Enum {
            type_name: "AchievementState",
            from_name: achievement_state,
        },
    ),
    FilterField::eq(
        "industry_field",
        Kind::Enum {
            type_name: "IndustryField",
            from_name: industry_field_named,
        },
    ),
    FilterField::eq(
        "screening.outcome",
        Kind::Enum {
            type_name: "ScreeningOutcome",
            from_name: screening_outcome,
        },
    ),
    FilterField::with("title", &[Op::Has], Kind::Text),
];

/// The `filter` of `ListAchievements`.
pub fn list_filter(raw: &str) -> Result<ListFilter, ApiError> {
    let mut out = ListFilter::default();
    for term in Filter::typed(raw, LIST_FILTER)? {
        match (term.field, term.value) {
            ("owner", Value::Text(owner)) => {
                let uscc = parse_enterprise(&owner, "filter").map_err(|v| {
                    ApiError::invalid(
                        "filter",
                        "INVALID_FILTER",
                        format!("owner: {}", v.description),
                    )
                })?;
                out.owner = Some(uscc);
            }
            ("state", Value::Enum(s)) => out.state = Some(s),
            ("industry_field", Value::Enum(f)) => out.industry_field = Some(f),
            ("screening.outcome", Value::Enum(o)) => out.screening_outcome = Some(o),
            (_, Value::Text(t)) => out.title_contains = Some(t),
            _ => {}
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy)]
enum OrderKey {
    CreateTime,
    SubmitTime,
}

/// The `order_by` of `ListAchievements`: `create_time` (default) or `submit_time`.
pub fn list_order(raw: &str) -> Result<Order, ApiError> {
    let order = OrderBy::parse(
        raw,
        &[
            ("create_time", OrderKey::CreateTime),
            ("submit_time", OrderKey::SubmitTime),
        ],
        OrderKey::CreateTime,
    )?;
    Ok(match order.key {
        OrderKey::CreateTime => Order::CreateTime { desc: order.desc },
        OrderKey::SubmitTime => Order::SubmitTime { desc: order.desc },
    })
}

/// Fields an achievement update mask may name (plus `green_data.*` sub-fields).
pub const ACHIEVEMENT_FIELDS: &[&str] = &[
    "title",
    "industry_field",
    "technology_readiness_level",
    "summary",
    "green_data",
];

/// Sub-fields of `green_data` an update mask may name.
pub const GREEN_DATA_FIELDS: &[&str] = &[
    "industry_code",
    "annual_energy_kgce",
    "annual_electricity_kwh",
    "products",
    "annual_co2_kg",
    "pollutants",
];

/// The fields of a create request, every violation collected.
pub fn parse_achievement_fields(
    p: &pb::Achievement,
    prefix: &str,
) -> Result<Fields, Vec<FieldViolation>> {
    let mut fields = Fields {
        title: String::new(),
        industry_field: 0,
        technology_readiness_level: 0,
        summary: String::new(),
        green_data: GreenData::default(),
    };
    let violations: Vec<FieldViolation> = ACHIEVEMENT_FIELDS
        .iter()
        .filter_map(|path| apply_achievement_field(&mut fields, p, path, prefix).err())
        .flatten()
        .collect();
    if violations.is_empty() {
        Ok(fields)
    } else {
        Err(violations)
    }
}

/// Validates field `path` of `p` and writes it into `fields`.
pub fn apply_achievement_field(
    fields: &mut Fields,
    p: &pb::Achievement,
    path: &str,
    prefix: &str,
) -> Result<(), Vec<FieldViolation>> {
    let at = format!("{prefix}.{path}");
    let one = |v: FieldViolation| vec![v];
    match path {
        "title" => {
            fields.title =
                qilu_common::input::text(&p.title, &at, MAX_TITLE_CHARS, true).map_err(one)?
        }
        "industry_field" => {
            fields.industry_field = industry_field(p.industry_field, &at).map_err(one)?;
        }
        "technology_readiness_level" => {
            if !(1..=9).contains(&p.technology_readiness_level) {
                return Err(one(FieldViolation::new(
                    at,
                    "OUT_OF_RANGE",
                    format!(
                        "technology readiness level is 1-9, got {}",
                        p.technology_readiness_level
                    ),
                )));
            }
            fields.technology_readiness_level = p.technology_readiness_level;
        }
        "summary" => {
            fields.summary =
                qilu_common::input::text(&p.summary, &at, MAX_SUMMARY_CHARS, false).map_err(one)?
        }
        "green_data" => {
            fields.green_data = parse_green_data(&p.green_data.clone().unwrap_or_default(), &at)?;
        }
        other => match other.strip_prefix("green_data.") {
            Some(sub) if GREEN_DATA_FIELDS.contains(&sub) => apply_green_field(
                &mut fields.green_data,
                &p.green_data.clone().unwrap_or_default(),
                sub,
                &format!("{prefix}.green_data"),
            )?,
            _ => {
                return Err(one(FieldViolation::new(
                    "update_mask",
                    "FIELD_NOT_UPDATABLE",
                    format!(
                        "{other:?} cannot be updated; updatable fields: {}, green_data.{{{}}}",
                        ACHIEVEMENT_FIELDS.join(", "),
                        GREEN_DATA_FIELDS.join(", ")
                    ),
                )));
            }
        },
    }
    Ok(())
}

/// Green data with every violation collected under `at`.
pub fn parse_green_data(p: &pb::GreenData, at: &str) -> Result<GreenData, Vec<FieldViolation>> {
    let mut g = GreenData::default();
    let violations: Vec<FieldViolation> = GREEN_DATA_FIELDS
        .iter()
        .filter_map(|sub| apply_green_field(&mut g, p, sub, at).err())
        .flatten()
        .collect();
    if violations.is_empty() {
        Ok(g)
    } else {
        Err(violations)
    }
}

/// Validates sub-field `sub` of green data `p` (at path `at`) and writes it into `g`.
fn apply_green_field(
    g: &mut GreenData,
    p: &pb::GreenData,
    sub: &str,
    at: &str,
) -> Result<(), Vec<FieldViolation>> {
    let path = format!("{at}.{sub}");
    let one = |v: FieldViolation| vec![v];
    match sub {
        "industry_code" => {
            g.industry_code = industry_code(&p.industry_code, &path, false).map_err(one)?
        }
        "annual_energy_kgce" => {
            g.annual_energy_kgce = non_negative(p.annual_energy_kgce, &path).map_err(one)?;
        }
        "annual_electricity_kwh" => {
            g.annual_electricity_kwh =
                non_negative(p.annual_electricity_kwh, &path).map_err(one)?;
        }
        "annual_co2_kg" => g.annual_co2_kg = non_negative(p.annual_co2_kg, &path).map_err(one)?,
        "products" => {
            let mut violations = Vec::new();
            let mut products = Vec::new();
            for (i, prod) in p.products.iter().enumerate() {
                let pat = format!("{path}[{i}]");
                let code = qilu_common::input::text(
                    &prod.product_code,
                    &format!("{pat}.product_code"),
                    100,
                    true,
                );
                let unit = qilu_common::input::text(
                    &prod.product_unit,
                    &format!("{pat}.product_unit"),
                    20,
                    true,
                );
                let energy = non_negative(prod.unit_energy_gce, &format!("{pat}.unit_energy_gce"));
                match (code, unit, energy) {
                    (Ok(product_code), Ok(product_unit), Ok(unit_energy_gce)) => {
                        products.push(ProductEnergy {
                            product_code,
                            product_unit,
                            unit_energy_gce,
                        });
                    }
                    (a, b, c) => {
                        violations.extend(a.err());
                        violations.extend(b.err());
                        violations.extend(c.err());
                    }
                }
            }
            if !violations.is_empty() {
                return Err(violations);
            }
            g.products = products;
        }
        _ => {
            let mut violations = Vec::new();
            let mut pollutants = Vec::new();
            for (i, pol) in p.pollutants.iter().enumerate() {
                let pat = format!("{path}[{i}]");
                let kind = pb::Pollutant::try_from(pol.pollutant).ok();
                let kg = non_negative(pol.annual_kg, &format!("{pat}.annual_kg"));
                let other_name = qilu_common::input::text(
                    &pol.other_name,
                    &format!("{pat}.other_name"),
                    100,
                    false,
                );
                match (kind, kg, other_name) {
                    (None | Some(pb::Pollutant::Unspecified), _, _) => {
                        violations.push(FieldViolation::new(
                            format!("{pat}.pollutant"),
                            "REQUIRED",
                            "name the pollutant",
                        ));
                    }
                    (Some(pb::Pollutant::Other), _, Ok(name)) if name.is_empty() => {
                        violations.push(FieldViolation::new(
                            format!("{pat}.other_name"),
                            "REQUIRED",
                            "name an OTHER pollutant",
                        ));
                    }
                    (Some(_), Ok(annual_kg), Ok(other_name)) => {
                        pollutants.push(PollutantEmission {
                            pollutant: pol.pollutant,
                            other_name,
                            annual_kg,
                        })
                    }
                    (_, a, b) => {
                        violations.extend(a.err());
                        violations.extend(b.err());
                    }
                }
            }
            if !violations.is_empty() {
                return Err(violations);
            }
            g.pollutants = pollutants;
        }
    }
    Ok(())
}

/// Green data as the API shows it.
pub fn green_data_to_proto(g: &GreenData) -> pb::GreenData {
    pb::GreenData {
        industry_code: g.industry_code.clone().unwrap_or_default(),
        annual_energy_kgce: g.annual_energy_kgce,
        annual_electricity_kwh: g.annual_electricity_kwh,
        products: g
            .products
            .iter()
            .map(|p| pb::ProductEnergy {
                product_code: p.product_code.clone(),
                product_unit: p.product_unit.clone(),
                unit_energy_gce: p.unit_energy_gce,
            })
            .collect(),
        annual_co2_kg: g.annual_co2_kg,
        pollutants: g
            .pollutants
            .iter()
            .map(|p| pb::PollutantEmission {
                pollutant: p.pollutant,
                other_name: p.other_name.clone(),
                annual_kg: p.annual_kg,
            })
            .collect(),
    }
}

/// An achievement as the API shows it; `redact` hides expert names (enterprise callers).
pub fn achievement_to_proto(a: &Achievement, redact: bool) -> pb::Achievement {
    pb::Achievement {
        name: a.name(),
        owner: format!("enterprises/{}", a.owner),
        title: a.fields.title.clone(),
        industry_field: a.fields.industry_field,
        technology_readiness_level: a.fields.technology_readiness_level,
        summary: a.fields.summary.clone(),
        green_data: Some(green_data_to_proto(&a.fields.green_data)),
        state: a.state.code(),
        screening: a.screening.as_ref().map(verdict_to_proto),
        review_round: a.review_round,
        decision: a.decision.as_ref().map(|d| decision_to_proto(d, redact)),
        previous_decisions: a
            .previous_decisions
            .iter()
            .map(|d| decision_to_proto(d, redact))
            .collect(),
        appeal: a.appeal.as_ref().map(appeal_to_proto),
        appeal_deadline: a.appeal_deadline.clone().unwrap_or_default(),
        withdraw_reason: a.withdraw_reason.clone(),
        submit_time: a.submit_time_us.map(to_timestamp),
        create_time: Some(to_timestamp(a.create_time_us)),
        update_time: Some(to_timestamp(a.update_time_us)),
        etag: a.etag(),
    }
}

/// An achievement as [`achievement_to_proto`] shows it unredacted, redacted as it shows it with
/// `redact` (expert names in its decisions): the change feed records the unredacted message and
/// serves enterprise callers this.
pub fn redact_achievement(mut a: pb::Achievement) -> pb::Achievement {
    a.decision = a.decision.map(redact_decision);
    a.previous_decisions = a
        .previous_decisions
        .into_iter()
        .map(redact_decision)
        .collect();
    a
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    use crate::domain::achievement::State;
    use crate::domain::decision::{self, SubmittedReview, Threshold};
    use crate::domain::review::VetoCategory;

    #[test]
    fn redacting_the_unredacted_message_is_what_the_redacted_read_shows() {
        let reviews: Vec<SubmittedReview> = (0..3)
            .map(|i| SubmittedReview {
                review: format!("achievements/a1/reviews/r{i}"),
                expert: format!("experts/wang-{i}"),
                total_points: 80 + i,
                veto: (i == 1).then(|| (VetoCategory::Other, "experts/wang-1 saw it".into())),
            })
            .collect();
        let threshold = Threshold {
            points: 70,
            source: "test".into(),
        };
        let vetoed = decision::decide(1, &reviews, &threshold, "officer-1", 1_000);
        let approved = decision::decide(2, &reviews[..1], &threshold, "officer-1", 2_000);
        assert!(
            vetoed.explanation.contains("experts/"),
            "{}",
            vetoed.explanation
        );
        let a = Achievement {
            id: "a1".into(),
            owner: "91350100M000100Y43".into(),
            fields: Fields {
                title: "Hydrogen".into(),
                industry_field: 1,
                technology_readiness_level: 7,
                summary: String::new(),
                green_data: GreenData::default(),
            },
            state: State::Approved,
            screening: None,
            review_round: 2,
            decision: Some(approved),
            previous_decisions: vec![vetoed],
            appeal: None,
            appeal_deadline: None,
            withdraw_reason: String::new(),
            submit_time_us: Some(500),
            create_time_us: 100,
            update_time_us: 2_000,
            version: 7,
        };
        let redacted = achievement_to_proto(&a, true);
        assert_ne!(redacted, achievement_to_proto(&a, false));
        assert_eq!(
            redact_achievement(achievement_to_proto(&a, false)),
            redacted
        );
    }

    #[test]
    fn every_bad_achievement_field_is_reported_with_its_path() {
        let p = pb::Achievement {
            title: " ".into(),
            industry_field: 99,
            technology_readiness_level: 10,
            green_data: Some(pb::GreenData {
                industry_code: "31a".into(),
                annual_energy_kgce: Some(-1),
                products: vec![pb::ProductEnergy {
                    product_code: "".into(),
                    product_unit: "t".into(),
                    unit_energy_gce: Some(1),
                }],
                pollutants: vec![pb::PollutantEmission {
                    pollutant: 7,
                    other_name: "".into(),
                    annual_kg: Some(1),
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let v = parse_achievement_fields(&p, "achievement").unwrap_err();
        let paths: Vec<&str> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            paths,
            [
                "achievement.title",
                "achievement.industry_field",
                "achievement.technology_readiness_level",
                "achievement.green_data.industry_code",
                "achievement.green_data.annual_energy_kgce",
                "achievement.green_data.products[0].product_code",
                "achievement.green_data.pollutants[0].other_name",
            ]
        );
    }

    #[test]
    fn list_filters_and_orders_parse_or_name_the_problem() {
        let f = list_filter(
            r#"owner = "enterprises/91350100M000100Y43" AND state = ACHIEVEMENT_STATE_UNDER_REVIEW AND title:"氢""#,
        );
        let f = f.ok();
        assert_eq!(f.as_ref().and_then(|f| f.state), Some(3));
        assert_eq!(
            f.as_ref().and_then(|f| f.owner.clone()).as_deref(),
            Some("91350100M000100Y43")
        );
        assert_eq!(
            f.as_ref().and_then(|f| f.title_contains.clone()).as_deref(),
            Some("氢")
        );
        assert!(list_filter("state = OPEN").is_err());
        assert!(list_filter("state = ACHIEVEMENT_STATE_UNSPECIFIED").is_err());
        assert!(list_filter("title = x").is_err());
        assert!(list_filter("owner = enterprises/x").is_err());
        assert!(list_filter("colour = red").is_err());
        assert!(matches!(
            list_order("submit_time desc"),
            Ok(Order::SubmitTime { desc: true })
        ));
        assert!(matches!(
            list_order(""),
            Ok(Order::CreateTime { desc: false })
        ));
        assert!(list_order("title").is_err());
    }

    #[test]
    fn update_masks_name_achievement_or_green_data_fields() {
        let req = |paths: &[&str]| pb::UpdateAchievementRequest {
            achievement: Some(pb::Achievement {
                name: "achievements/a1".into(),
                title: "  Hydrogen  ".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: paths.iter().map(|p| p.to_string()).collect(),
            }),
            ..Default::default()
        };
        let ok = req(&["title", "green_data.annual_co2_kg"]);
        let update = UpdateAchievement::parse(&ok).unwrap();
        assert_eq!(update.id.as_str(), "a1");
        let fields = Fields {
            title: "old".into(),
            industry_field: 1,
            technology_readiness_level: 3,
            summary: String::new(),
            green_data: GreenData::default(),
        };
        assert_eq!(update.apply_update(&fields).unwrap().title, "Hydrogen");
        let Err(ApiError::InvalidArgument(v)) = UpdateAchievement::parse(&req(&["owner"])) else {
            panic!("owner is not updatable");
        };
        assert_eq!(v[0].reason, "FIELD_NOT_UPDATABLE");
    }
}
