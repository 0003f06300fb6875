//! proto ⇄ domain for the review service. Every request field is parsed here into a domain value
//! or a field violation naming its path (e.g. `achievement.green_data.products[0].product_code`);
//! handlers never see raw strings or unchecked numbers.

use qilu_common::error::{ApiError, FieldViolation};
use qilu_common::time::to_timestamp;
use qilu_proto::common::IndustryField;
use qilu_proto::review as pb;

use crate::domain::achievement::{Achievement, Fields, MAX_SUMMARY_CHARS, MAX_TITLE_CHARS};
use crate::domain::appeal::Appeal;
use crate::domain::decision::{Decision, VetoPath};
use crate::domain::expert::{Expert, MAX_LOAD_LIMIT};
use crate::domain::green::{GreenData, MAX_INDUSTRY_CODE_DIGITS, PollutantEmission, ProductEnergy};
use crate::domain::review::Review;
use crate::domain::screening::{
    ClosureEntry, RuleCheck, Rules, ScopeEntry, UnitEnergyLimit, Verdict,
};
use crate::store::rule_set::RuleSet;

/// Resource types for `ResourceInfo` in errors.
pub const ACHIEVEMENT_TYPE: &str = "review.qilu.gov.cn/Achievement";
/// See [`ACHIEVEMENT_TYPE`].
pub const RULE_SET_TYPE: &str = "review.qilu.gov.cn/VetoRuleSet";
/// See [`ACHIEVEMENT_TYPE`].
pub const EXPERT_TYPE: &str = "review.qilu.gov.cn/Expert";
/// See [`ACHIEVEMENT_TYPE`].
pub const REVIEW_TYPE: &str = "review.qilu.gov.cn/Review";

const USCC_ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";

// ------------------------------------------------------------------------------------------
// Names and ids
// ------------------------------------------------------------------------------------------

/// A server-assigned id (`achievements/{id}`, `reviews/{id}`): lower-case hex and `-`.
fn server_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A caller-chosen id (`experts/{id}`, `vetoRuleSets/{id}`): lower-case letters, digits and `-`,
/// 1-63 characters.
pub fn parse_user_id(raw: &str, field: &str) -> Result<String, ApiError> {
    let ok = !raw.is_empty()
        && raw.len() <= 63
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(raw.to_string())
    } else {
        Err(ApiError::invalid(
            field,
            if raw.is_empty() {
                "REQUIRED"
            } else {
                "INVALID_ID"
            },
            format!(
                "expected 1-63 lower-case letters, digits or '-', got {}",
                qilu_common::limits::echo(raw)
            ),
        ))
    }
}

fn parse_name<'a>(
    name: &'a str,
    prefix: &str,
    field: &str,
    valid: impl Fn(&str) -> bool,
) -> Result<&'a str, ApiError> {
    match name.strip_prefix(prefix) {
        Some(id) if valid(id) => Ok(id),
        _ => Err(ApiError::invalid(
            field,
            if name.is_empty() {
                "REQUIRED"
            } else {
                "INVALID_RESOURCE_NAME"
            },
            format!(
                "expected {prefix}{{id}}, got {}",
                qilu_common::limits::echo(name)
            ),
        )),
    }
}

/// `achievements/{id}` → id.
pub fn parse_achievement_name(name: &str, field: &str) -> Result<String, ApiError> {
    parse_name(name, "achievements/", field, server_id).map(str::to_string)
}

/// `achievements/{a}/reviews/{r}` → (a, r).
pub fn parse_review_name(name: &str, field: &str) -> Result<(String, String), ApiError> {
    let bad = || {
        ApiError::invalid(
            field,
            if name.is_empty() {
                "REQUIRED"
            } else {
                "INVALID_RESOURCE_NAME"
            },
            format!(
                "expected achievements/{{achievement}}/reviews/{{review}}, got {}",
                qilu_common::limits::echo(name)
            ),
        )
    };
    let rest = name.strip_prefix("achievements/").ok_or_else(bad)?;
    let (a, r) = rest.split_once("/reviews/").ok_or_else(bad)?;
    if server_id(a) && server_id(r) {
        Ok((a.to_string(), r.to_string()))
    } else {
        Err(bad())
    }
}

/// `experts/{id}` → id.
pub fn parse_expert_name(name: &str, field: &str) -> Result<String, ApiError> {
    let id = name.strip_prefix("experts/").unwrap_or("");
    parse_user_id(id, field).map_err(|_| {
        ApiError::invalid(
            field,
            if name.is_empty() {
                "REQUIRED"
            } else {
                "INVALID_RESOURCE_NAME"
            },
            format!(
                "expected experts/{{expert}}, got {}",
                qilu_common::limits::echo(name)
            ),
        )
    })
}

/// `vetoRuleSets/{id}` → id.
pub fn parse_rule_set_name(name: &str, field: &str) -> Result<String, ApiError> {
    let id = name.strip_prefix("vetoRuleSets/").unwrap_or("");
    parse_user_id(id, field).map_err(|_| {
        ApiError::invalid(
            field,
            if name.is_empty() {
                "REQUIRED"
            } else {
                "INVALID_RESOURCE_NAME"
            },
            format!(
                "expected vetoRuleSets/{{id}}, got {}",
                qilu_common::limits::echo(name)
            ),
        )
    })
}

/// `enterprises/{uscc}` → the USCC, upper-cased. Only the form is checked here (18 characters of
/// the GB 32100 alphabet); whether it is registered and ACTIVE is the registry's answer.
pub fn parse_enterprise(raw: &str, field: &str) -> Result<String, FieldViolation> {
    let code = raw
        .strip_prefix("enterprises/")
        .map(|c| c.trim().to_uppercase())
        .unwrap_or_default();
    if code.chars().count() == 18 && code.chars().all(|c| USCC_ALPHABET.contains(c)) {
        Ok(code)
    } else {
        Err(FieldViolation::new(
            field,
            if raw.is_empty() {
                "REQUIRED"
            } else {
                "INVALID_RESOURCE_NAME"
            },
            format!(
                "expected enterprises/{{uscc}} with an 18-character USCC, got {}",
                qilu_common::limits::echo(raw)
            ),
        ))
    }
}

// ------------------------------------------------------------------------------------------
// Text
// ------------------------------------------------------------------------------------------

/// Trimmed text of at most `max` characters without control characters (newlines allowed in
/// long text).
pub fn text(raw: &str, at: &str, max: usize, required: bool) -> Result<String, FieldViolation> {
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
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(FieldViolation::new(
            at,
            "CONTROL_CHARACTER",
            "must not contain control characters",
        ));
    }
    Ok(value.to_string())
}

fn industry_field(value: i32, at: &str) -> Result<i32, FieldViolation> {
    match IndustryField::try_from(value) {
        Ok(IndustryField::Unspecified) => Err(FieldViolation::new(
            at,
            "REQUIRED",
            "an industry field is required",
        )),
        Ok(_) => Ok(value),
        Err(_) => Err(FieldViolation::new(
            at,
            "UNKNOWN_ENUM_VALUE",
            format!("{value} is not an IndustryField"),
        )),
    }
}

/// GB/T 4754 code: 2-4 digits.
fn industry_code(raw: &str, at: &str, required: bool) -> Result<Option<String>, FieldViolation> {
    let code = raw.trim();
    if code.is_empty() {
        return if required {
            Err(FieldViolation::new(
                at,
                "REQUIRED",
                "a GB/T 4754 code is required",
            ))
        } else {
            Ok(None)
        };
    }
    if (2..=MAX_INDUSTRY_CODE_DIGITS).contains(&code.len())
        && code.bytes().all(|b| b.is_ascii_digit())
    {
        Ok(Some(code.to_string()))
    } else {
        Err(FieldViolation::new(
            at,
            "INVALID_INDUSTRY_CODE",
            format!("a GB/T 4754 code is 2-4 digits, got {code:?}"),
        ))
    }
}

fn non_negative(v: Option<i64>, at: &str) -> Result<Option<i64>, FieldViolation> {
    match v {
        Some(n) if n < 0 => Err(FieldViolation::new(at, "NEGATIVE", "must not be negative")),
        other => Ok(other),
    }
}

// ------------------------------------------------------------------------------------------
// Achievements
// ------------------------------------------------------------------------------------------

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
        "title" => fields.title = text(&p.title, &at, MAX_TITLE_CHARS, true).map_err(one)?,
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
            fields.summary = text(&p.summary, &at, MAX_SUMMARY_CHARS, false).map_err(one)?
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
                let code = text(
                    &prod.product_code,
                    &format!("{pat}.product_code"),
                    100,
                    true,
                );
                let unit = text(&prod.product_unit, &format!("{pat}.product_unit"), 20, true);
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
                let other_name = text(&pol.other_name, &format!("{pat}.other_name"), 100, false);
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

/// A decision as the API shows it; `redact` empties expert names (enterprise callers).
pub fn decision_to_proto(d: &Decision, redact: bool) -> pb::Decision {
    let expert = |e: &str| if redact { String::new() } else { e.to_string() };
    pb::Decision {
        outcome: d.outcome.code(),
        review_round: d.review_round,
        scores: d
            .scores
            .iter()
            .map(|s| pb::ScoreUsed {
                review: s.review.clone(),
                expert: expert(&s.expert),
                total_points: s.total_points,
                trimmed: s.trimmed,
            })
            .collect(),
        trimmed: d.trimmed,
        score_sum: d.score_sum,
        score_count: d.score_count,
        aggregate_score_millipoints: d.aggregate_score_millipoints,
        threshold_points: d.threshold_points,
        threshold_source: d.threshold_source.clone(),
        vetoes: d
            .vetoes
            .iter()
            .map(|v| pb::VetoRecord {
                path: match v.path {
                    VetoPath::Rule => pb::VetoPath::Rule,
                    VetoPath::Expert => pb::VetoPath::Expert,
                } as i32,
                rule: v.rule.clone(),
                review: v.review.clone(),
                expert: expert(&v.expert),
                category: v.category.code(),
                evidence: v.evidence.clone(),
            })
            .collect(),
        explanation: if redact {
            redact_experts(&d.explanation)
        } else {
            d.explanation.clone()
        },
        decided_by: d.decided_by.clone(),
        decide_time: Some(to_timestamp(d.decide_time_us)),
    }
}

/// Replaces `experts/{id}` in a sentence with `an expert`.
fn redact_experts(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("experts/") {
        out.push_str(&rest[..i]);
        out.push_str("an expert");
        let tail = &rest[i + "experts/".len()..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
            .unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

fn appeal_to_proto(a: &Appeal) -> pb::Appeal {
    pb::Appeal {
        grounds: a.grounds.clone(),
        filed_by: a.filed_by.clone(),
        file_time: Some(to_timestamp(a.file_time_us)),
        resolution: a.resolution.map_or(0, |r| r.code()),
        resolution_reason: a.resolution_reason.clone(),
        resolved_by: a.resolved_by.clone(),
        resolve_time: a.resolve_time_us.map(to_timestamp),
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

// ------------------------------------------------------------------------------------------
// Rule sets
// ------------------------------------------------------------------------------------------

/// The rules of a create request, every violation collected under `veto_rule_set`.
pub fn parse_rules(p: &pb::VetoRuleSet) -> Result<(String, String, Rules), Vec<FieldViolation>> {
    let at = "veto_rule_set";
    let mut v = Vec::new();
    let display_name = text(&p.display_name, &format!("{at}.display_name"), 200, true)
        .map_err(|e| v.push(e))
        .unwrap_or_default();
    let description = text(&p.description, &format!("{at}.description"), 8000, true)
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
        let description = text(&s.description, &format!("{sat}.description"), 500, true);
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
        let code = text(&l.product_code, &format!("{lat}.product_code"), 100, true);
        let unit = text(&l.product_unit, &format!("{lat}.product_unit"), 20, true);
        let source = text(&l.source, &format!("{lat}.source"), 2000, true);
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
        let id_ok = parse_user_id(&c.entry_id, &format!("{cat}.entry_id"));
        let enterprise = if c.enterprise.is_empty() {
            Ok(None)
        } else {
            parse_enterprise(&c.enterprise, &format!("{cat}.enterprise")).map(Some)
        };
        let code = industry_code(&c.industry_code, &format!("{cat}.industry_code"), false);
        let product = text(&c.product_code, &format!("{cat}.product_code"), 100, false);
        let description = text(&c.description, &format!("{cat}.description"), 2000, true);
        let source = text(&c.source, &format!("{cat}.source"), 2000, true);
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
                if let Err(ApiError::InvalidArgument(vs)) = a {
                    v.extend(vs);
                }
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

// ------------------------------------------------------------------------------------------
// Experts
// ------------------------------------------------------------------------------------------

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
pub fn apply_expert_field(
    e: &mut Expert,
    p: &pb::Expert,
    path: &str,
) -> Result<(), Vec<FieldViolation>> {
    let at = format!("expert.{path}");
    let one = |v: FieldViolation| vec![v];
    match path {
        "display_name" => e.display_name = text(&p.display_name, &at, 100, true).map_err(one)?,
        "organization" => e.organization = text(&p.organization, &at, 200, false).map_err(one)?,
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

// ------------------------------------------------------------------------------------------
// Reviews
// ------------------------------------------------------------------------------------------

/// A review as the API shows it; `redact` empties the expert (enterprise callers).
pub fn review_to_proto(r: &Review, redact: bool) -> pb::Review {
    pb::Review {
        name: r.name(),
        expert: if redact {
            String::new()
        } else {
            format!("experts/{}", r.expert_id)
        },
        round: r.round,
        state: r.state.code(),
        assignment_method: r.method.code(),
        assigned_by: if redact {
            String::new()
        } else {
            r.assigned_by.clone()
        },
        scores: r.scores.map(|s| pb::CriterionScores {
            innovation: s.innovation,
            technical_level: s.technical_level,
            economic_benefit: s.economic_benefit,
            green_benefit: s.green_benefit,
        }),
        total_points: r.scores.map_or(0, |s| s.total()),
        comment: r.comment.clone(),
        veto: r.veto.as_ref().map(|v| pb::ExpertVeto {
            category: v.category.code(),
            evidence: v.evidence.clone(),
        }),
        cancel_reason: r.cancel_reason.clone(),
        assign_time: Some(to_timestamp(r.assign_time_us)),
        submit_time: r.submit_time_us.map(to_timestamp),
        create_time: Some(to_timestamp(r.assign_time_us)),
        update_time: Some(to_timestamp(r.update_time_us)),
        etag: r.etag(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_or_name_the_field() {
        assert_eq!(
            parse_achievement_name("achievements/abc-1", "name")
                .ok()
                .as_deref(),
            Some("abc-1")
        );
        assert!(parse_achievement_name("achievement/abc", "name").is_err());
        assert!(parse_achievement_name("achievements/", "name").is_err());
        assert_eq!(
            parse_review_name("achievements/a1/reviews/r2", "name").ok(),
            Some(("a1".into(), "r2".into()))
        );
        assert!(parse_review_name("achievements/a1/r2", "name").is_err());
        assert!(parse_expert_name("experts/Wang", "name").is_err());
        assert_eq!(
            parse_enterprise("enterprises/91350100m000100y43", "x")
                .ok()
                .as_deref(),
            Some("91350100M000100Y43")
        );
        assert!(parse_enterprise("enterprises/91350100M000100Y4", "x").is_err());
        assert!(parse_enterprise("enterprises/91350100M000100YIO", "x").is_err());
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
    fn expert_names_are_redacted_from_sentences() {
        assert_eq!(
            redact_experts("Vetoed: 1 expert veto by experts/wang-li (OTHER) outweighs"),
            "Vetoed: 1 expert veto by an expert (OTHER) outweighs"
        );
    }
}
