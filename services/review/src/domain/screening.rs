//! Two-high ("energy-intensive, highly polluting") rule screening: a pure function of a rule set
//! (versioned data, never constants in code), the owner and the green data. It never guesses:
//! an input a rule needs but does not have makes that rule NEEDS_REVIEW, naming the field.
//!
//! Rules, in the order a verdict lists them (the contract, `screening.proto`):
//! 1. `closure-list/{entry}`: every non-empty matcher of an entry matches → VETO.
//! 2. `unit-energy/{product}`: unit energy **above** the product's limit → VETO (at the limit
//!    passes); no unit energy, or a different unit → NEEDS_REVIEW.
//! 3. `annual-energy`: industry in scope (prefix match) and annual energy **at or above** the
//!    threshold → VETO; in scope without annual energy → NEEDS_REVIEW; out of scope → PASS.
//! 4. `industry-code`: no industry code → NEEDS_REVIEW (scope cannot be decided).
//!
//! Overall: VETO if any rule vetoes; else NEEDS_REVIEW if any rule needs review; else PASS.

use serde::{Deserialize, Serialize};

use super::green::{GreenData, tce, unit_energy};

/// Outcome of one rule or of a whole screening.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    /// Two-high by rule.
    Veto,
    /// No rule vetoes and every needed input was present.
    Pass,
    /// A needed input is missing; a person must judge.
    NeedsReview,
}

impl Outcome {
    /// `qilu.review.v1.ScreeningOutcome` number.
    pub fn code(self) -> i32 {
        match self {
            Outcome::Veto => 1,
            Outcome::Pass => 2,
            Outcome::NeedsReview => 3,
        }
    }
}

/// One two-high industry: a GB/T 4754 code prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeEntry {
    /// 2-4 digits.
    pub code: String,
    /// What the code covers.
    pub description: String,
}

/// A national unit-energy limit for one product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitEnergyLimit {
    /// Matched exactly against the achievement's product code.
    pub product_code: String,
    /// Must equal the achievement's unit.
    pub product_unit: String,
    /// gce per unit; above it vetoes.
    pub limit_gce: i64,
    /// The standard that sets it.
    pub source: String,
}

/// An entry of the closure list; matches when every set matcher matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosureEntry {
    /// Unique in the rule set; cited as `closure-list/{entry_id}`.
    pub entry_id: String,
    /// Owner USCC.
    pub enterprise: Option<String>,
    /// GB/T 4754 prefix.
    pub industry_code: Option<String>,
    /// Product code.
    pub product_code: Option<String>,
    /// What is to be closed and why.
    pub description: String,
    /// The listing document.
    pub source: String,
}

/// The rules of a rule set (immutable once created).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rules {
    /// Two-high industries.
    pub industry_scope: Vec<ScopeEntry>,
    /// Annual energy at or above which an in-scope achievement is vetoed, kgce.
    pub annual_energy_threshold_kgce: i64,
    /// Per-product limits.
    pub unit_energy_limits: Vec<UnitEnergyLimit>,
    /// Closure list.
    pub closure_list: Vec<ClosureEntry>,
}

/// Which rule set screened, as a verdict cites it.
#[derive(Debug, Clone, Copy)]
pub struct RuleSetRef<'a> {
    /// `vetoRuleSets/{id}`.
    pub name: &'a str,
    /// Its version.
    pub version: i64,
    /// Its description (the sources of scope and threshold).
    pub description: &'a str,
    /// Its rules.
    pub rules: &'a Rules,
}

/// One rule's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleCheck {
    /// E.g. `annual-energy`, `unit-energy/crude-steel`.
    pub rule_id: String,
    /// Its outcome.
    pub outcome: Outcome,
    /// Inputs compared, in words with units.
    pub inputs: String,
    /// Threshold compared with, in words with units.
    pub threshold: String,
    /// Source of the threshold or list entry.
    pub source: String,
    /// A sentence a person can read.
    pub explanation: String,
    /// Field paths this rule needed but did not have.
    pub missing_inputs: Vec<String>,
}

/// A stored, self-explaining verdict; never rewritten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Overall outcome.
    pub outcome: Outcome,
    /// `vetoRuleSets/{id}`.
    pub rule_set: String,
    /// The rule set's version.
    pub rule_set_version: i64,
    /// The deciding rule (empty for PASS).
    pub rule_id: String,
    /// The green data as screened.
    pub inputs: GreenData,
    /// Owner, `enterprises/{uscc}`.
    pub owner: String,
    /// Every rule's result, in rule order.
    pub checks: Vec<RuleCheck>,
    /// All missing inputs (empty unless NEEDS_REVIEW).
    pub missing_inputs: Vec<String>,
    /// The deciding rule's threshold (empty for PASS).
    pub threshold: String,
    /// The deciding rule's source (for PASS: the rule set's description).
    pub source: String,
    /// A sentence a person can read.
    pub explanation: String,
    /// When, µs.
    pub screen_time_us: i64,
}

const INDUSTRY_CODE: &str = "green_data.industry_code";
const ANNUAL_ENERGY: &str = "green_data.annual_energy_kgce";

/// Screens `data` of an achievement owned by `owner_uscc` with `set` at `now_us`.
pub fn screen(set: RuleSetRef<'_>, owner_uscc: &str, data: &GreenData, now_us: i64) -> Verdict {
    let rules = set.rules;
    let cite = format!("rule set {} v{}", set.name, set.version);
    let mut checks = Vec::new();
    checks.extend(closure_checks(rules, owner_uscc, data));
    checks.extend(unit_energy_checks(rules, data));
    checks.push(annual_energy_check(set, data));
    checks.push(industry_code_check(data));

    let first = |o: Outcome| checks.iter().find(|c| c.outcome == o);
    let deciding = first(Outcome::Veto).or_else(|| first(Outcome::NeedsReview));
    let outcome = deciding.map_or(Outcome::Pass, |c| c.outcome);
    let mut missing_inputs: Vec<String> = Vec::new();
    if outcome == Outcome::NeedsReview {
        for m in checks.iter().flat_map(|c| &c.missing_inputs) {
            if !missing_inputs.contains(m) {
                missing_inputs.push(m.clone());
            }
        }
    }
    let (rule_id, threshold, source, explanation) = match deciding {
        Some(c) if c.outcome == Outcome::Veto => (
            c.rule_id.clone(),
            c.threshold.clone(),
            c.source.clone(),
            format!("Vetoed: {} ({cite})", c.explanation),
        ),
        Some(c) => (
            c.rule_id.clone(),
            c.threshold.clone(),
            c.source.clone(),
            format!(
                "Needs review: missing {} — {} ({cite})",
                missing_inputs.join(", "),
                c.explanation
            ),
        ),
        None => (
            String::new(),
            String::new(),
            set.description.to_string(),
            format!("Passed: no two-high rule applies and every input needed was present ({cite})"),
        ),
    };
    Verdict {
        outcome,
        rule_set: set.name.to_string(),
        rule_set_version: set.version,
        rule_id,
        inputs: data.clone(),
        owner: format!("enterprises/{owner_uscc}"),
        checks,
        missing_inputs,
        threshold,
        source,
        explanation,
        screen_time_us: now_us,
    }
}

/// The scope entry whose code is a prefix of `code`, if any.
fn scope_of<'a>(rules: &'a Rules, code: &str) -> Option<&'a super::screening::ScopeEntry> {
    rules
        .industry_scope
        .iter()
        .find(|s| code.starts_with(s.code.as_str()))
}

fn closure_checks(rules: &Rules, owner_uscc: &str, data: &GreenData) -> Vec<RuleCheck> {
    let mut out = Vec::new();
    for entry in &rules.closure_list {
        // Each set matcher: Some(true) matches, Some(false) does not, None cannot be decided.
        let mut matchers: Vec<Option<bool>> = Vec::new();
        let mut inputs = Vec::new();
        if let Some(e) = &entry.enterprise {
            matchers.push(Some(e == owner_uscc));
            inputs.push(format!("owner=enterprises/{owner_uscc}"));
        }
        let mut missing = Vec::new();
        if let Some(prefix) = &entry.industry_code {
            match &data.industry_code {
                Some(code) => {
                    matchers.push(Some(code.starts_with(prefix.as_str())));
                    inputs.push(format!("industry_code={code}"));
                }
                None => {
                    matchers.push(None);
                    missing.push(INDUSTRY_CODE.to_string());
                    inputs.push("industry_code=missing".into());
                }
            }
        }
        if let Some(product) = &entry.product_code {
            let reported = data.products.iter().any(|p| &p.product_code == product);
            matchers.push(Some(reported));
            inputs.push(format!(
                "products={}",
                data.products
                    .iter()
                    .map(|p| p.product_code.as_str())
                    .collect::<Vec<_>>()
                    .join("|")
            ));
        }
        if matchers.contains(&Some(false)) {
            continue; // one matcher fails: the entry does not match, whatever is missing
        }
        let listed = describe_entry(entry);
        let rule_id = format!("closure-list/{}", entry.entry_id);
        if matchers.contains(&None) {
            out.push(RuleCheck {
                rule_id,
                outcome: Outcome::NeedsReview,
                inputs: inputs.join("; "),
                threshold: format!("on the closure list: {listed}"),
                source: entry.source.clone(),
                explanation: format!(
                    "closure-list entry {} ({}) may apply but the industry code is missing",
                    entry.entry_id, entry.description
                ),
                missing_inputs: missing,
            });
        } else {
            out.push(RuleCheck {
                rule_id,
                outcome: Outcome::Veto,
                inputs: inputs.join("; "),
                threshold: format!("on the closure list: {listed}"),
                source: entry.source.clone(),
                explanation: format!(
                    "on the closure list as entry {} ({})",
                    entry.entry_id, entry.description
                ),
                missing_inputs: Vec::new(),
            });
        }
    }
    if out.is_empty() {
        out.push(RuleCheck {
            rule_id: "closure-list".into(),
            outcome: Outcome::Pass,
            inputs: format!(
                "owner=enterprises/{owner_uscc}; industry_code={}; products={}",
                data.industry_code.as_deref().unwrap_or("missing"),
                data.products.len()
            ),
            threshold: format!("{} closure-list entries", rules.closure_list.len()),
            source: "the rule set's closure list".into(),
            explanation: "no closure-list entry matches".into(),
            missing_inputs: Vec::new(),
        });
    }
    out
}

fn describe_entry(entry: &ClosureEntry) -> String {
    let mut parts = Vec::new();
    if let Some(e) = &entry.enterprise {
        parts.push(format!("enterprise enterprises/{e}"));
    }
    if let Some(c) = &entry.industry_code {
        parts.push(format!("industry {c}"));
    }
    if let Some(p) = &entry.product_code {
        parts.push(format!("product {p}"));
    }
    parts.join(" and ")
}

fn unit_energy_checks(rules: &Rules, data: &GreenData) -> Vec<RuleCheck> {
    let mut out = Vec::new();
    for (i, product) in data.products.iter().enumerate() {
        let Some(limit) = rules
            .unit_energy_limits
            .iter()
            .find(|l| l.product_code == product.product_code)
        else {
            continue;
        };
        let rule_id = format!("unit-energy/{}", product.product_code);
        let threshold = format!(
            "> {} for {}",
            unit_energy(limit.limit_gce, &limit.product_unit),
            limit.product_code
        );
        let check =
            |outcome, inputs: String, explanation: String, missing: Vec<String>| RuleCheck {
                rule_id: rule_id.clone(),
                outcome,
                inputs,
                threshold: threshold.clone(),
                source: limit.source.clone(),
                explanation,
                missing_inputs: missing,
            };
        if product.product_unit != limit.product_unit {
            out.push(check(
                Outcome::NeedsReview,
                format!(
                    "product {} per {:?}",
                    product.product_code, product.product_unit
                ),
                format!(
                    "{} is reported per {:?} but its limit is per {:?}; the figures cannot be compared",
                    product.product_code, product.product_unit, limit.product_unit
                ),
                vec![format!("green_data.products[{i}].product_unit")],
            ));
            continue;
        }
        match product.unit_energy_gce {
            None => out.push(check(
                Outcome::NeedsReview,
                format!("product {}: unit energy missing", product.product_code),
                format!(
                    "{} has a national limit but no unit energy was given",
                    product.product_code
                ),
                vec![format!("green_data.products[{i}].unit_energy_gce")],
            )),
            Some(gce) => {
                let inputs = format!(
                    "product {}: {}",
                    product.product_code,
                    unit_energy(gce, &product.product_unit)
                );
                if gce > limit.limit_gce {
                    out.push(check(
                        Outcome::Veto,
                        inputs,
                        format!(
                            "{} uses {}, above its limit {} ({})",
                            product.product_code,
                            unit_energy(gce, &product.product_unit),
                            unit_energy(limit.limit_gce, &limit.product_unit),
                            limit.source
                        ),
                        Vec::new(),
                    ));
                } else {
                    out.push(check(
                        Outcome::Pass,
                        inputs,
                        format!(
                            "{} uses {}, within its limit {}",
                            product.product_code,
                            unit_energy(gce, &product.product_unit),
                            unit_energy(limit.limit_gce, &limit.product_unit)
                        ),
                        Vec::new(),
                    ));
                }
            }
        }
    }
    if out.is_empty() {
        out.push(RuleCheck {
            rule_id: "unit-energy".into(),
            outcome: Outcome::Pass,
            inputs: format!("{} products reported", data.products.len()),
            threshold: format!("limits for {} products", rules.unit_energy_limits.len()),
            source: "the rule set's unit-energy limits".into(),
            explanation: "no reported product has a unit-energy limit in this rule set".into(),
            missing_inputs: Vec::new(),
        });
    }
    out
}

fn annual_energy_check(set: RuleSetRef<'_>, data: &GreenData) -> RuleCheck {
    let rules = set.rules;
    let limit = rules.annual_energy_threshold_kgce;
    let scope_codes: Vec<&str> = rules
        .industry_scope
        .iter()
        .map(|s| s.code.as_str())
        .collect();
    let energy = data
        .annual_energy_kgce
        .map_or_else(|| "missing".to_string(), tce);
    let code = data.industry_code.as_deref().unwrap_or("missing");
    let inputs = format!("industry_code={code}; annual_energy={energy}");
    let mut check = RuleCheck {
        rule_id: "annual-energy".into(),
        outcome: Outcome::Pass,
        inputs,
        threshold: format!(">= {} in scope {}", tce(limit), scope_codes.join(", ")),
        source: set.description.to_string(),
        explanation: String::new(),
        missing_inputs: Vec::new(),
    };
    match (&data.industry_code, data.annual_energy_kgce) {
        (Some(code), annual) => match scope_of(rules, code) {
            None => {
                check.explanation = format!("industry {code} is outside the two-high scope");
            }
            Some(scope) => match annual {
                None => {
                    check.outcome = Outcome::NeedsReview;
                    check.missing_inputs.push(ANNUAL_ENERGY.into());
                    check.explanation = format!(
                        "industry {code} ({}) is two-high but no annual energy was given",
                        scope.description
                    );
                }
                Some(kgce) if kgce >= limit => {
                    check.outcome = Outcome::Veto;
                    check.threshold = format!(">= {} in scope {}", tce(limit), scope.code);
                    check.explanation = format!(
                        "industry {code} ({}) is two-high and {} a year is at or above {}",
                        scope.description,
                        tce(kgce),
                        tce(limit)
                    );
                }
                Some(kgce) => {
                    check.explanation = format!(
                        "industry {code} ({}) is two-high but {} a year is below {}",
                        scope.description,
                        tce(kgce),
                        tce(limit)
                    );
                }
            },
        },
        // Below the threshold the scope does not matter: that is a deduction, not a guess.
        (None, Some(kgce)) if kgce < limit => {
            check.explanation = format!(
                "{} a year is below {} whatever the industry",
                tce(kgce),
                tce(limit)
            );
        }
        (None, annual) => {
            check.outcome = Outcome::NeedsReview;
            check.missing_inputs.push(INDUSTRY_CODE.into());
            if annual.is_none() {
                check.missing_inputs.push(ANNUAL_ENERGY.into());
            }
            check.explanation =
                "without an industry code the two-high scope cannot be decided".into();
        }
    }
    check
}

fn industry_code_check(data: &GreenData) -> RuleCheck {
    match &data.industry_code {
        Some(code) => RuleCheck {
            rule_id: "industry-code".into(),
            outcome: Outcome::Pass,
            inputs: format!("industry_code={code}"),
            threshold: "a GB/T 4754 code is given".into(),
            source: "GB/T 4754-2017".into(),
            explanation: format!("industry code {code} given"),
            missing_inputs: Vec::new(),
        },
        None => RuleCheck {
            rule_id: "industry-code".into(),
            outcome: Outcome::NeedsReview,
            inputs: "industry_code=missing".into(),
            threshold: "a GB/T 4754 code is given".into(),
            source: "GB/T 4754-2017".into(),
            explanation: "no industry code: the two-high scope cannot be decided".into(),
            missing_inputs: vec![INDUSTRY_CODE.into()],
        },
    }
}

#[cfg(test)]
mod tests;
