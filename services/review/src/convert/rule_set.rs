//! Veto rule sets (the screening rules) and screening verdicts: the create, list and screen
//! requests parsed into domain values, and rule sets and verdicts as the API shows them.

use qilu_common::error::{ApiError, FieldViolation};
use qilu_common::filter::{Filter, FilterField, Kind, Value};
use qilu_common::input::Violations;
use qilu_common::time::to_timestamp;
use qilu_proto::review as pb;

use super::achievement::green_data_to_proto;
use super::{industry_code, parse_enterprise};
use crate::domain::ids::{AchievementId, RuleSetId, chosen_id};
use crate::domain::screening::{
    ClosureEntry, RuleCheck, Rules, ScopeEntry, UnitEnergyLimit, Verdict,
};
use crate::store::rule_set::RuleSet;

/// A parsed `CreateVetoRuleSet`.
#[derive(Debug, Clone)]
pub struct CreateRuleSet {
    /// The caller-chosen id.
    pub id: RuleSetId,
    /// Display name.
    pub display_name: String,
    /// Description.
    pub description: String,
    /// The rules.
    pub rules: Rules,
}

impl CreateRuleSet {
    /// Every violation of the request at once.
    pub fn parse(req: &pb::CreateVetoRuleSetRequest) -> Result<CreateRuleSet, ApiError> {
        let mut v = Violations::new();
        let id = v.take(RuleSetId::parse_id(
            &req.veto_rule_set_id,
            "veto_rule_set_id",
        ));
        let parsed = match req.veto_rule_set.as_ref() {
            None => {
                v.push(FieldViolation::new(
                    "veto_rule_set",
                    "REQUIRED",
                    "veto_rule_set is required",
                ));
                None
            }
            Some(p) => v.take_all(parse_rules(p)),
        };
        v.into_result(id.zip(parsed))
            .map(|(id, (display_name, description, rules))| CreateRuleSet {
                id,
                display_name,
                description,
                rules,
            })
    }
}

fn rule_set_state(name: &str) -> Option<i32> {
    pb::VetoRuleSetState::from_str_name(name).map(|s| s as i32)
}

const LIST_FILTER: &[FilterField] = &[FilterField::eq(
    "state",
    Kind::Enum {
        type_name: "VetoRuleSetState",
        from_name: rule_set_state,
    },
)];

/// The `filter` of `ListVetoRuleSets`: `Some(true)` for only the active one, `Some(false)` for
/// only inactive ones.
pub fn list_filter(raw: &str) -> Result<Option<bool>, ApiError> {
    let mut only_active = None;
    for term in Filter::typed(raw, LIST_FILTER)? {
        if let Value::Enum(state) = term.value {
            only_active = Some(state == pb::VetoRuleSetState::Active as i32);
        }
    }
    Ok(only_active)
}

/// A parsed `ScreenAchievement`: the achievement, and the rule set to screen it with (`None`:
/// the active one).
#[derive(Debug, Clone)]
pub struct ScreenRequest {
    /// The achievement to screen.
    pub achievement: AchievementId,
    /// The rule set named, if any.
    pub rule_set: Option<RuleSetId>,
}

impl ScreenRequest {
    /// Both names.
    pub fn parse(req: &pb::ScreenAchievementRequest) -> Result<ScreenRequest, ApiError> {
        let achievement = AchievementId::parse_name(&req.name, "name")?;
        let rule_set = if req.rule_set.is_empty() {
            None
        } else {
            Some(RuleSetId::parse_name(&req.rule_set, "rule_set")?)
        };
        Ok(ScreenRequest {
            achievement,
            rule_set,
        })
    }
}

/// The rules of a create request, every violation collected under `veto_rule_set`.
fn parse_rules(p: &pb::VetoRuleSet) -> Result<(String, String, Rules), Vec<FieldViolation>> {
    let at = "veto_rule_set";
    let mut v = Vec::new();
    let display_name =
        qilu_common::input::text(&p.display_name, &format!("{at}.display_name"), 200, true)
            .map_err(|e| v.push(e))
            .unwrap_or_default();
    let description =
        qilu_common::input::text(&p.description, &format!("{at}.description"), 8000, true)
            .map_err(|e| v.push(e))
            .unwrap_or_default();
    if p.industry_scope.is_empty() {
        v.push(FieldViolation::new(
            format!("{at}.industry_scope"),
            "REQUIRED",
            "at least one two-high industry code",
        ));
    }
    let mut industry_scope = Vec::new();
    for (i, s) in p.industry_scope.iter().enumerate() {
        let sat = format!("{at}.industry_scope[{i}]");
        let code = industry_code(&s.code, &format!("{sat}.code"), true);
        let description =
            qilu_common::input::text(&s.description, &format!("{sat}.description"), 500, true);
        match (code, description) {
            (Ok(Some(code)), Ok(description)) => {
                industry_scope.push(ScopeEntry { code, description })
            }
            (a, b) => {
                v.extend(a.err());
                v.extend(b.err());
            }
        }
    }
    if p.annual_energy_threshold_kgce <= 0 {
        v.push(FieldViolation::new(
            format!("{at}.annual_energy_threshold_kgce"),
            "OUT_OF_RANGE",
            "the annual-energy threshold must be positive (kgce; 5,000 tce = 5,000,000)",
        ));
    }
    let mut unit_energy_limits = Vec::new();
    for (i, l) in p.unit_energy_limits.iter().enumerate() {
        let lat = format!("{at}.unit_energy_limits[{i}]");
        let code =
            qilu_common::input::text(&l.product_code, &format!("{lat}.product_code"), 100, true);
        let unit =
            qilu_common::input::text(&l.product_unit, &format!("{lat}.product_unit"), 20, true);
        let source = qilu_common::input::text(&l.source, &format!("{lat}.source"), 2000, true);
        if l.limit_gce < 0 {
            v.push(FieldViolation::new(
                format!("{lat}.limit_gce"),
                "NEGATIVE",
                "must not be negative",
            ));
        }
        match (code, unit, source) {
            (Ok(product_code), Ok(product_unit), Ok(source)) => {
                if unit_energy_limits
                    .iter()
                    .any(|x: &UnitEnergyLimit| x.product_code == product_code)
                {
                    v.push(FieldViolation::new(
                        format!("{lat}.product_code"),
                        "DUPLICATE",
                        format!("{product_code} has a limit already"),
                    ));
                }
                unit_energy_limits.push(UnitEnergyLimit {
                    product_code,
                    product_unit,
                    limit_gce: l.limit_gce,
                    source,
                });
            }
            (a, b, c) => {
                v.extend(a.err());
                v.extend(b.err());
                v.extend(c.err());
            }
        }
    }
    let mut closure_list: Vec<ClosureEntry> = Vec::new();
    for (i, c) in p.closure_list.iter().enumerate() {
        let cat = format!("{at}.closure_list[{i}]");
        let id_ok = chosen_id(&c.entry_id, &format!("{cat}.entry_id"));
        let enterprise = if c.enterprise.is_empty() {
            Ok(None)
        } else {
            parse_enterprise(&c.enterprise, &format!("{cat}.enterprise")).map(Some)
        };
        let code = industry_code(&c.industry_code, &format!("{cat}.industry_code"), false);
        let product =
            qilu_common::input::text(&c.product_code, &format!("{cat}.product_code"), 100, false);
        let description =
            qilu_common::input::text(&c.description, &format!("{cat}.description"), 2000, true);
        let source = qilu_common::input::text(&c.source, &format!("{cat}.source"), 2000, true);
        match (id_ok, enterprise, code, product, description, source) {
            (
                Ok(entry_id),
                Ok(enterprise),
                Ok(industry_code),
                Ok(product),
                Ok(description),
                Ok(source),
            ) => {
                let product_code = (!product.is_empty()).then_some(product);
                if enterprise.is_none() && industry_code.is_none() && product_code.is_none() {
                    v.push(FieldViolation::new(
                        cat.clone(),
                        "NO_MATCHER",
                        "set at least one of enterprise, industry_code, product_code",
                    ));
                }
                if closure_list.iter().any(|x| x.entry_id == entry_id) {
                    v.push(FieldViolation::new(
                        format!("{cat}.entry_id"),
                        "DUPLICATE",
                        format!("entry {entry_id} appears twice"),
                    ));
                }
                closure_list.push(ClosureEntry {
                    entry_id,
                    enterprise,
                    industry_code,
                    product_code,
                    description,
                    source,
                });
            }
            (a, b, c2, d, e, f) => {
                v.extend(a.err());
                v.extend(b.err());
                v.extend(c2.err());
                v.extend(d.err());
                v.extend(e.err());
                v.extend(f.err());
            }
        }
    }
    if v.is_empty() {
        Ok((
            display_name,
            description,
            Rules {
                industry_scope,
                annual_energy_threshold_kgce: p.annual_energy_threshold_kgce,
                unit_energy_limits,
                closure_list,
            },
        ))
    } else {
        Err(v)
    }
}

/// A rule set as the API shows it.
pub fn rule_set_to_proto(r: &RuleSet) -> pb::VetoRuleSet {
    pb::VetoRuleSet {
        name: r.name(),
        version: r.version,
        display_name: r.display_name.clone(),
        description: r.description.clone(),
        industry_scope: r
            .rules
            .industry_scope
            .iter()
            .map(|s| pb::IndustryScopeEntry {
                code: s.code.clone(),
                description: s.description.clone(),
            })
            .collect(),
        annual_energy_threshold_kgce: r.rules.annual_energy_threshold_kgce,
        unit_energy_limits: r
            .rules
            .unit_energy_limits
            .iter()
            .map(|l| pb::UnitEnergyLimit {
                product_code: l.product_code.clone(),
                product_unit: l.product_unit.clone(),
                limit_gce: l.limit_gce,
                source: l.source.clone(),
            })
            .collect(),
        closure_list: r
            .rules
            .closure_list
            .iter()
            .map(|c| pb::ClosureEntry {
                entry_id: c.entry_id.clone(),
                enterprise: c
                    .enterprise
                    .as_ref()
                    .map(|u| format!("enterprises/{u}"))
                    .unwrap_or_default(),
                industry_code: c.industry_code.clone().unwrap_or_default(),
                product_code: c.product_code.clone().unwrap_or_default(),
                description: c.description.clone(),
                source: c.source.clone(),
            })
            .collect(),
        state: if r.active {
            pb::VetoRuleSetState::Active
        } else {
            pb::VetoRuleSetState::Inactive
        } as i32,
        activate_time: r.activate_time_us.map(to_timestamp),
        create_time: Some(to_timestamp(r.create_time_us)),
        update_time: Some(to_timestamp(r.update_time_us)),
        etag: r.etag(),
    }
}

/// A verdict as the API shows it.
pub fn verdict_to_proto(v: &Verdict) -> pb::ScreeningVerdict {
    pb::ScreeningVerdict {
        outcome: v.outcome.code(),
        rule_set: v.rule_set.clone(),
        rule_set_version: v.rule_set_version,
        rule_id: v.rule_id.clone(),
        inputs: Some(green_data_to_proto(&v.inputs)),
        owner: v.owner.clone(),
        checks: v.checks.iter().map(check_to_proto).collect(),
        missing_inputs: v.missing_inputs.clone(),
        threshold: v.threshold.clone(),
        source: v.source.clone(),
        explanation: v.explanation.clone(),
        screen_time: Some(to_timestamp(v.screen_time_us)),
    }
}

fn check_to_proto(c: &RuleCheck) -> pb::RuleCheck {
    pb::RuleCheck {
        rule_id: c.rule_id.clone(),
        outcome: c.outcome.code(),
        inputs: c.inputs.clone(),
        threshold: c.threshold.clone(),
        source: c.source.clone(),
        explanation: c.explanation.clone(),
        missing_inputs: c.missing_inputs.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_set_filters_name_a_state() {
        assert_eq!(list_filter("").ok(), Some(None));
        assert_eq!(
            list_filter("state = VETO_RULE_SET_STATE_ACTIVE").ok(),
            Some(Some(true))
        );
        assert_eq!(
            list_filter("state = VETO_RULE_SET_STATE_INACTIVE").ok(),
            Some(Some(false))
        );
        assert!(list_filter("state != VETO_RULE_SET_STATE_ACTIVE").is_err());
        assert!(list_filter("state = ON").is_err());
    }

    #[test]
    fn a_rule_set_without_id_or_rules_reports_both() {
        let Err(ApiError::InvalidArgument(v)) =
            CreateRuleSet::parse(&pb::CreateVetoRuleSetRequest::default())
        else {
            panic!("an empty request must be refused");
        };
        let fields: Vec<&str> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["veto_rule_set_id", "veto_rule_set"]);
    }
}
