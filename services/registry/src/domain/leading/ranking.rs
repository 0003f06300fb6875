//! The candidate ranking of a leading cohort (docs/design.md §4, "Leading enterprises and one
//! policy per enterprise"; the scales and weights are in docs/rules.md, "Leading-enterprise
//! ranking"; contract: `proto/qilu/registry/v1/leading.proto`, `RankLeadingCandidates`). The
//! ranking is a pure function of the registry's own data: an
//! enterprise's state, certificate flag, green category, technology fields and annual figures.
//! Every score is broken into components that a person can recompute by hand
//! (`score = Σ contribution`, `contribution = points × weight / 10,000`, rounded down), with
//! exact integer arithmetic. A figure that was not reported makes its component score 0 and say
//! so (`missing_data`); it is never guessed. No I/O here.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::domain::enterprise::EnterpriseState;
use crate::domain::figures::{AnnualFigures, FigureKind};

/// Full marks of a component, in thousandths of a point (100 points).
pub const FULL_POINTS: i64 = 100_000;
/// The weights of all components add up to this (basis points).
pub const TOTAL_WEIGHT_BP: i32 = 10_000;

/// `HighTechField` numbers of the two state high-tech fields that are themselves green and
/// low-carbon: 6 new energy and energy saving (新能源与节能), 7 resources and environment (资源与环境).
pub const GREEN_TECHNOLOGY_FIELDS: [i32; 2] = [6, 7];

/// One scoring component's configuration: its id, weight, and the linear rule that maps its raw
/// value to points. The weights sum to 10,000 basis points (checked by a unit test).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComponentSpec {
    /// Component id as reported.
    pub id: &'static str,
    /// Weight in basis points.
    pub weight_bp: i32,
    /// The rule in words.
    pub rule: &'static str,
}

/// R&D intensity, 30%: the opinions single out enterprises that "master core technologies", and
/// R&D spending is the central test of the 2016 high-tech measures (art. 11(4)). 3% is the
/// measures' lowest threshold (revenue above 200 M yuan), so a certified enterprise starts near 0;
/// 10% marks an R&D-intensive leader.
pub const RD_INTENSITY: ComponentSpec = ComponentSpec {
    id: "rd_intensity",
    weight_bp: 3000,
    rule: "R&D expense / revenue of the scored year: linear from 3.00% (0 points) to 10.00% (100 points), capped",
};
/// Invention patents, 20%: owned core IP (the measures' IP criterion, 30 of the 100 innovation
/// points). 50 invention patents earn full marks.
pub const INVENTION_PATENTS: ComponentSpec = ComponentSpec {
    id: "invention_patents",
    weight_bp: 2000,
    rule: "invention patents held in the scored year: linear from 0 (0 points) to 50 (100 points), capped",
};
/// Revenue scale, 15%: "internationally competitive innovation leaders". 50 M yuan is the
/// measures' smallest revenue band edge; 2 billion yuan is a fifth of the 10-billion-yuan cluster
/// scale of the 2021 opinions, i.e. an enterprise able to anchor a cluster.
pub const REVENUE_SCALE: ComponentSpec = ComponentSpec {
    id: "revenue_scale",
    weight_bp: 1500,
    rule: "revenue of the scored year: linear from 50,000,000 yuan (0 points) to 2,000,000,000 yuan (100 points), capped",
};
/// Revenue growth over the prior year, 15%: the growth part of the measures' innovation
/// evaluation (whose top band in the 2016 work guidelines starts at 35% sales growth).
pub const REVENUE_GROWTH: ComponentSpec = ComponentSpec {
    id: "revenue_growth",
    weight_bp: 1500,
    rule: "revenue growth over the prior year: linear from 0% (0 points) to 35% (100 points), capped; a decline scores 0",
};
/// High-tech product share, 10%: 60% of revenue is the measures' threshold (art. 11(5)), so only
/// the share above it earns points.
pub const HIGH_TECH_PRODUCT_SHARE: ComponentSpec = ComponentSpec {
    id: "high_tech_product_share",
    weight_bp: 1000,
    rule: "high-tech product revenue / revenue of the scored year: linear from 60% (0 points) to 100% (100 points)",
};
/// Green technology field, 10%: the cohort is of high-tech enterprises "in green and low-carbon
/// fields" (2021 opinions); a core technology in one of the two green state fields counts.
pub const GREEN_TECHNOLOGY_FIELD: ComponentSpec = ComponentSpec {
    id: "green_technology_field",
    weight_bp: 1000,
    rule: "100 points when a technology field is new energy and energy saving or resources and environment, else 0",
};

/// Every component, in the order reported.
pub const COMPONENTS: [ComponentSpec; 6] = [
    RD_INTENSITY,
    INVENTION_PATENTS,
    REVENUE_SCALE,
    REVENUE_GROWTH,
    HIGH_TECH_PRODUCT_SHARE,
    GREEN_TECHNOLOGY_FIELD,
];

/// 50 M yuan in fen.
const FEN_50M_YUAN: i128 = 50_000_000 * 100;
/// 2 billion yuan in fen.
const FEN_2B_YUAN: i128 = 2_000_000_000 * 100;

/// The scoring method in words, reported with every ranking.
pub fn scoring_method() -> String {
    let mut out = String::from(
        "score = sum of components; each component earns 0-100 points (reported in thousandths), \
         contribution = points x weight / 10000 rounded down; weights sum to 10000 basis points. \
         Figures are those of the scored fiscal year (growth also uses the year before); a figure \
         not reported scores 0 for its component, marked missing_data. Eligible: ACTIVE, a valid \
         high-tech certificate, a green category. Order: score descending, then USCC ascending; \
         rank 1.. among eligible candidates, 0 for the ineligible. Components: ",
    );
    let parts: Vec<String> = COMPONENTS
        .iter()
        .map(|c| format!("{} (weight {}): {}", c.id, c.weight_bp, c.rule))
        .collect();
    out.push_str(&parts.join("; "));
    out
}

/// What the ranking needs to know about one enterprise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandidateFacts {
    /// USCC.
    pub uscc: String,
    /// Registered name.
    pub display_name: String,
    /// City.
    pub city: String,
    /// `zones/{zone}` or "".
    pub zone: String,
    /// `GreenCategory` number (0 = none).
    pub green_category: i32,
    /// Registration state.
    pub state: EnterpriseState,
    /// Holds a valid high-tech certificate.
    pub high_tech_certified: bool,
    /// `HighTechField` numbers.
    pub technology_fields: Vec<i32>,
    /// Already SELECTED in the cohort.
    pub selected: bool,
    /// Figures of the scored year, if any were recorded.
    pub figures: Option<AnnualFigures>,
    /// Figures of the year before, if any were recorded.
    pub prior: Option<AnnualFigures>,
}

/// A figure a component used, with its year and provenance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FigureRef {
    /// `enterprises/{uscc}/annualFigures/{year}#{figure}` or `enterprises/{uscc}#{field}`.
    pub figure: String,
    /// Fiscal year, 0 for facts not per year.
    pub year: i32,
    /// Value as a decimal string in its unit.
    pub value: String,
    /// Unit.
    pub unit: String,
    /// `FigureSource` number (0 for enterprise fields).
    pub source: i32,
    /// The source's reference text.
    pub reference: String,
}

/// One scored component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Component {
    /// Component id.
    pub id: String,
    /// The raw input in words.
    pub raw_value: String,
    /// 0-100,000.
    pub points_milli: i64,
    /// Weight, basis points.
    pub weight_bp: i32,
    /// `points_milli * weight_bp / 10000`, rounded down.
    pub contribution_milli: i64,
    /// The rule.
    pub rule: String,
    /// Figures used.
    pub figures_used: Vec<FigureRef>,
    /// A needed figure is missing.
    pub missing_data: bool,
}

/// A scored candidate (kept with a membership as the ranking at selection time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// USCC.
    pub uscc: String,
    /// Registered name.
    pub display_name: String,
    /// 1-based rank among eligible candidates; 0 when ineligible or not ranked yet.
    pub rank: i32,
    /// Total, 0-100,000.
    pub score_milli: i64,
    /// Components, in `COMPONENTS` order.
    pub components: Vec<Component>,
    /// Can be selected.
    pub eligible: bool,
    /// Why not.
    pub ineligibility_reasons: Vec<String>,
    /// Already SELECTED.
    pub selected: bool,
    /// `GreenCategory` number.
    pub green_category: i32,
    /// City.
    pub city: String,
    /// Zone (for filtering; not in the proto candidate).
    pub zone: String,
    /// Fiscal year scored.
    pub figures_year: i32,
}

/// Points for `value = num / den` on a linear ramp from `lo` (0 points) to `hi` (full points),
/// capped at both ends; `lo`, `hi` are in the same scale as `num / den`. Exact: rounded down.
pub fn ramp(num: i128, den: i128, lo: i128, hi: i128) -> i64 {
    if den <= 0 || hi <= lo {
        return 0;
    }
    if num <= lo * den {
        return 0;
    }
    if num >= hi * den {
        return FULL_POINTS;
    }
    let points = i128::from(FULL_POINTS) * (num - lo * den) / (den * (hi - lo));
    i64::try_from(points).unwrap_or(0)
}

/// `points × weight / 10,000`, rounded down.
pub fn contribution(points_milli: i64, weight_bp: i32) -> i64 {
    points_milli * i64::from(weight_bp) / i64::from(TOTAL_WEIGHT_BP)
}

/// `a / b` as a percentage with two decimals, rounded down (`b > 0`).
fn percent(a: i64, b: i64) -> String {
    let hundredths = i128::from(a) * 10_000 / i128::from(b);
    let sign = if hundredths < 0 { "-" } else { "" };
    let h = hundredths.abs();
    format!("{sign}{}.{:02}%", h / 100, h % 100)
}

/// Fen as yuan with two decimals.
pub fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let f = i128::from(fen).abs();
    format!("{sign}{}.{:02} yuan", f / 100, f % 100)
}

fn figure_ref(f: &AnnualFigures, kind: FigureKind) -> Option<FigureRef> {
    f.figures.get(&kind).map(|r| FigureRef {
        figure: format!("{}#{}", f.name(), kind.as_str()),
        year: f.year,
        value: r.value.to_string(),
        unit: match kind.unit() {
            "people" => "persons".to_string(),
            "patents" => "count".to_string(),
            other => other.to_string(),
        },
        source: r.source,
        reference: r.reference.clone(),
    })
}

fn build(
    spec: ComponentSpec,
    raw_value: String,
    points: Option<i64>,
    used: Vec<FigureRef>,
) -> Component {
    let points_milli = points.unwrap_or(0).clamp(0, FULL_POINTS);
    Component {
        id: spec.id.to_string(),
        raw_value,
        points_milli,
        weight_bp: spec.weight_bp,
        contribution_milli: contribution(points_milli, spec.weight_bp),
        rule: spec.rule.to_string(),
        figures_used: used,
        missing_data: points.is_none(),
    }
}

/// The values of `kinds` in `figures`, with their references; `None` when any is missing.
fn values(
    figures: Option<&AnnualFigures>,
    kinds: &[FigureKind],
) -> (Option<Vec<i64>>, Vec<FigureRef>) {
    let Some(f) = figures else {
        return (None, Vec::new());
    };
    let mut vals = Vec::new();
    let mut used = Vec::new();
    for k in kinds {
        if let Some(r) = figure_ref(f, *k) {
            used.push(r);
        }
        vals.push(f.value(*k));
    }
    (vals.into_iter().collect(), used)
}

fn missing_text(what: &str, year: i32) -> String {
    format!("missing: {what} not reported for {year}")
}

/// A share `part / revenue` component on a ramp from `lo_bp` to `hi_bp` basis points.
fn share_component(
    spec: ComponentSpec,
    facts: &CandidateFacts,
    year: i32,
    part: FigureKind,
    label: &str,
    lo_bp: i128,
    hi_bp: i128,
) -> Component {
    let (vals, used) = values(facts.figures.as_ref(), &[part, FigureKind::RevenueFen]);
    match vals.as_deref() {
        Some([p, revenue]) if *revenue > 0 => build(
            spec,
            format!("{label} {} of revenue ({year})", percent(*p, *revenue)),
            Some(ramp(
                i128::from(*p) * 10_000,
                i128::from(*revenue),
                lo_bp,
                hi_bp,
            )),
            used,
        ),
        Some(_) => build(
            spec,
            format!("missing: revenue reported as 0 for {year}, so the share is undefined"),
            None,
            used,
        ),
        None => build(
            spec,
            missing_text(&format!("{} or revenue_fen", part.as_str()), year),
            None,
            used,
        ),
    }
}

/// Scores one candidate for the fiscal year `year` (rank left 0; see [`rank`]).
pub fn score(facts: &CandidateFacts, year: i32) -> Candidate {
    let mut components = Vec::with_capacity(COMPONENTS.len());

    components.push(share_component(
        RD_INTENSITY,
        facts,
        year,
        FigureKind::RdExpenseFen,
        "R&D",
        300,
        1000,
    ));

    let (vals, used) = values(facts.figures.as_ref(), &[FigureKind::InventionPatents]);
    components.push(match vals.as_deref() {
        Some([n]) => build(
            INVENTION_PATENTS,
            format!("{n} invention patents ({year})"),
            Some(ramp(i128::from(*n), 1, 0, 50)),
            used,
        ),
        _ => build(
            INVENTION_PATENTS,
            missing_text("invention_patents", year),
            None,
            used,
        ),
    });

    let (vals, used) = values(facts.figures.as_ref(), &[FigureKind::RevenueFen]);
    components.push(match vals.as_deref() {
        Some([revenue]) => build(
            REVENUE_SCALE,
            format!("revenue {} ({year})", yuan(*revenue)),
            Some(ramp(i128::from(*revenue), 1, FEN_50M_YUAN, FEN_2B_YUAN)),
            used,
        ),
        _ => build(REVENUE_SCALE, missing_text("revenue_fen", year), None, used),
    });

    let (now, mut used) = values(facts.figures.as_ref(), &[FigureKind::RevenueFen]);
    let (before, used_before) = values(facts.prior.as_ref(), &[FigureKind::RevenueFen]);
    used.extend(used_before);
    let prior_year = year - 1;
    components.push(match (now.as_deref(), before.as_deref()) {
        (Some([now]), Some([before])) if *before > 0 => build(
            REVENUE_GROWTH,
            format!(
                "revenue {} ({year}) against {} ({prior_year}): growth {}",
                yuan(*now),
                yuan(*before),
                percent(now - before, *before)
            ),
            Some(ramp(
                (i128::from(*now) - i128::from(*before)) * 10_000,
                i128::from(*before),
                0,
                3500,
            )),
            used,
        ),
        (Some(_), Some(_)) => build(
            REVENUE_GROWTH,
            format!("missing: revenue reported as 0 for {prior_year}, so growth is undefined"),
            None,
            used,
        ),
        _ => build(
            REVENUE_GROWTH,
            format!("missing: revenue_fen not reported for both {prior_year} and {year}"),
            None,
            used,
        ),
    });

    components.push(share_component(
        HIGH_TECH_PRODUCT_SHARE,
        facts,
        year,
        FigureKind::HighTechProductRevenueFen,
        "high-tech products",
        6000,
        10_000,
    ));

    let field_ref = FigureRef {
        figure: format!("enterprises/{}#technology_fields", facts.uscc),
        year: 0,
        value: facts
            .technology_fields
            .iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(","),
        unit: "field".into(),
        source: 0,
        reference: String::new(),
    };
    components.push(if facts.technology_fields.is_empty() {
        build(
            GREEN_TECHNOLOGY_FIELD,
            "missing: no technology field recorded".into(),
            None,
            vec![field_ref],
        )
    } else {
        let green = facts
            .technology_fields
            .iter()
            .any(|f| GREEN_TECHNOLOGY_FIELDS.contains(f));
        build(
            GREEN_TECHNOLOGY_FIELD,
            format!(
                "technology fields {}: {}",
                field_ref.value,
                if green {
                    "includes a green field"
                } else {
                    "no green field"
                }
            ),
            Some(if green { FULL_POINTS } else { 0 }),
            vec![field_ref],
        )
    });

    let reasons = ineligibility_reasons(facts);
    Candidate {
        uscc: facts.uscc.clone(),
        display_name: facts.display_name.clone(),
        rank: 0,
        score_milli: components.iter().map(|c| c.contribution_milli).sum(),
        components,
        eligible: reasons.is_empty(),
        ineligibility_reasons: reasons,
        selected: facts.selected,
        green_category: facts.green_category,
        city: facts.city.clone(),
        zone: facts.zone.clone(),
        figures_year: year,
    }
}

/// Why `facts` cannot be selected (empty when eligible): the contract's three conditions,
/// ACTIVE, a valid high-tech certificate, a green category.
pub fn ineligibility_reasons(facts: &CandidateFacts) -> Vec<String> {
    let mut reasons = Vec::new();
    if facts.state != EnterpriseState::Active {
        let state = match facts.state {
            EnterpriseState::Active => "ACTIVE",
            EnterpriseState::Revoked => "REVOKED",
            EnterpriseState::Deregistered => "DEREGISTERED",
        };
        reasons.push(format!("enterprise is {state}, not ACTIVE"));
    }
    if !facts.high_tech_certified {
        reasons.push("no valid high-tech enterprise certificate".to_string());
    }
    if facts.green_category == 0 {
        reasons.push("no green category".to_string());
    }
    reasons
}

/// The ranking order: score descending, then USCC ascending (a total order: USCCs are unique).
pub fn rank_order(a: &Candidate, b: &Candidate) -> Ordering {
    b.score_milli
        .cmp(&a.score_milli)
        .then_with(|| a.uscc.cmp(&b.uscc))
}

/// Sorts `candidates` in ranking order and numbers the eligible ones 1, 2, …; the ineligible
/// keep rank 0.
pub fn rank(candidates: &mut [Candidate]) {
    candidates.sort_by(rank_order);
    let mut next = 0;
    for c in candidates.iter_mut() {
        if c.eligible {
            next += 1;
            c.rank = next;
        } else {
            c.rank = 0;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::figures::Reported;

    const Y: i32 = 2023;

    fn figures(year: i32, values: &[(FigureKind, i64)]) -> AnnualFigures {
        AnnualFigures {
            uscc: "U".into(),
            year,
            figures: values
                .iter()
                .map(|(k, v)| {
                    (
                        *k,
                        Reported {
                            value: *v,
                            source: 2,
                            reference: "ref".into(),
                            update_time_us: 0,
                        },
                    )
                })
                .collect::<BTreeMap<_, _>>(),
            create_time_us: 0,
            update_time_us: 0,
            version: 1,
        }
    }

    fn facts(uscc: &str, now: &[(FigureKind, i64)], prior: &[(FigureKind, i64)]) -> CandidateFacts {
        CandidateFacts {
            uscc: uscc.into(),
            display_name: "企业".into(),
            city: "Jinan".into(),
            zone: String::new(),
            green_category: 3,
            state: EnterpriseState::Active,
            high_tech_certified: true,
            technology_fields: vec![6],
            selected: false,
            figures: (!now.is_empty()).then(|| figures(Y, now)),
            prior: (!prior.is_empty()).then(|| figures(Y - 1, prior)),
        }
    }

    fn component<'a>(c: &'a Candidate, id: &str) -> &'a Component {
        c.components.iter().find(|x| x.id == id).unwrap()
    }

    #[test]
    fn weights_sum_to_ten_thousand_and_ids_are_unique() {
        let total: i32 = COMPONENTS.iter().map(|c| c.weight_bp).sum();
        assert_eq!(total, TOTAL_WEIGHT_BP);
        let mut ids: Vec<_> = COMPONENTS.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), COMPONENTS.len());
        for c in COMPONENTS {
            assert!(scoring_method().contains(c.id));
        }
    }

    #[test]
    fn ramps_are_zero_at_the_low_edge_full_at_the_high_edge_and_linear_between() {
        // (num, den, lo, hi, points)
        let cases: [(i128, i128, i128, i128, i64); 9] = [
            (300, 1, 300, 1000, 0),
            (299, 1, 300, 1000, 0),
            (301, 1, 300, 1000, 142),
            (650, 1, 300, 1000, 50_000),
            (999, 1, 300, 1000, 99_857),
            (1000, 1, 300, 1000, FULL_POINTS),
            (1001, 1, 300, 1000, FULL_POINTS),
            (-5, 1, 0, 10, 0),
            (5, 0, 0, 10, 0),
        ];
        for (num, den, lo, hi, want) in cases {
            assert_eq!(ramp(num, den, lo, hi), want, "{num}/{den} on {lo}..{hi}");
        }
    }

    #[test]
    fn rd_intensity_at_just_under_and_just_over_its_edges() {
        let rev = 1_000_000_000; // fen
        // (R&D fen, points)
        let cases = [
            (30_000_000, 0),        // 3.00% exactly
            (29_999_999, 0),        // just under 3%
            (30_000_001, 0),        // just over 3%: 0.0000001% above → rounds down to 0
            (30_070_000, 100),      // 3.007% → 0.1 point
            (65_000_000, 50_000),   // 6.5%
            (99_999_999, 99_999),   // just under 10%
            (100_000_000, 100_000), // 10%
            (150_000_000, 100_000), // capped
        ];
        for (rd, want) in cases {
            let c = score(
                &facts(
                    "U",
                    &[
                        (FigureKind::RevenueFen, rev),
                        (FigureKind::RdExpenseFen, rd),
                    ],
                    &[],
                ),
                Y,
            );
            let comp = component(&c, "rd_intensity");
            assert_eq!(comp.points_milli, want, "R&D {rd}");
            assert!(!comp.missing_data);
            assert_eq!(comp.contribution_milli, want * 3000 / 10_000);
        }
    }

    #[test]
    fn every_component_and_the_total_are_recomputable() {
        let c = score(
            &facts(
                "U",
                &[
                    (FigureKind::RevenueFen, 102_500_000_000), // 1.025 bn yuan
                    (FigureKind::RdExpenseFen, 6_355_000_000), // 6.2%
                    (FigureKind::InventionPatents, 20),
                    (FigureKind::HighTechProductRevenueFen, 82_000_000_000), // 80%
                ],
                &[(FigureKind::RevenueFen, 82_000_000_000)], // growth 25%
            ),
            Y,
        );
        let points: Vec<(String, i64)> = c
            .components
            .iter()
            .map(|x| (x.id.clone(), x.points_milli))
            .collect();
        assert_eq!(
            points,
            vec![
                ("rd_intensity".to_string(), 45_714),
                ("invention_patents".to_string(), 40_000),
                ("revenue_scale".to_string(), 50_000),
                ("revenue_growth".to_string(), 71_428),
                ("high_tech_product_share".to_string(), 50_000),
                ("green_technology_field".to_string(), 100_000),
            ]
        );
        let sum: i64 = c
            .components
            .iter()
            .map(|x| x.points_milli * i64::from(x.weight_bp) / 10_000)
            .sum();
        assert_eq!(c.score_milli, sum);
        assert_eq!(
            c.score_milli,
            13_714 + 8_000 + 7_500 + 10_714 + 5_000 + 10_000
        );
        assert_eq!(
            component(&c, "rd_intensity").raw_value,
            "R&D 6.20% of revenue (2023)"
        );
        let growth = component(&c, "revenue_growth");
        assert_eq!(growth.figures_used.len(), 2);
        assert_eq!(growth.figures_used[1].year, 2022);
        assert_eq!(
            growth.figures_used[0].figure,
            "enterprises/U/annualFigures/2023#revenue_fen"
        );
        assert!(c.eligible);
    }

    #[test]
    fn missing_figures_score_zero_and_say_so_never_guessed() {
        let c = score(
            &facts("U", &[(FigureKind::RevenueFen, 10_000_000_000)], &[]),
            Y,
        );
        let missing: Vec<&str> = c
            .components
            .iter()
            .filter(|x| x.missing_data)
            .map(|x| x.id.as_str())
            .collect();
        assert_eq!(
            missing,
            [
                "rd_intensity",
                "invention_patents",
                "revenue_growth",
                "high_tech_product_share"
            ]
        );
        for id in missing {
            let comp = component(&c, id);
            assert_eq!(comp.points_milli, 0);
            assert!(comp.raw_value.starts_with("missing"), "{}", comp.raw_value);
        }
        // No figures at all: only the technology field scores.
        let none = score(&facts("U", &[], &[]), Y);
        assert_eq!(none.score_milli, 10_000);
        // Zero revenue makes ratios undefined, not zero.
        let zero = score(
            &facts(
                "U",
                &[(FigureKind::RevenueFen, 0), (FigureKind::RdExpenseFen, 5)],
                &[(FigureKind::RevenueFen, 0)],
            ),
            Y,
        );
        assert!(component(&zero, "rd_intensity").missing_data);
        assert!(component(&zero, "revenue_growth").missing_data);
        assert!(!component(&zero, "revenue_scale").missing_data);
        // No technology field is missing; a non-green one scores 0 but is not missing.
        let mut f = facts("U", &[], &[]);
        f.technology_fields = vec![];
        assert!(component(&score(&f, Y), "green_technology_field").missing_data);
        f.technology_fields = vec![1];
        let g = score(&f, Y);
        assert!(!component(&g, "green_technology_field").missing_data);
        assert_eq!(component(&g, "green_technology_field").points_milli, 0);
    }

    #[test]
    fn a_revenue_decline_scores_no_growth() {
        let c = score(
            &facts(
                "U",
                &[(FigureKind::RevenueFen, 90)],
                &[(FigureKind::RevenueFen, 100)],
            ),
            Y,
        );
        let g = component(&c, "revenue_growth");
        assert_eq!(g.points_milli, 0);
        assert!(g.raw_value.contains("-10.00%"), "{}", g.raw_value);
    }

    #[test]
    fn eligibility_needs_active_certified_and_green() {
        let mut f = facts("U", &[], &[]);
        assert!(score(&f, Y).eligible);
        f.state = EnterpriseState::Revoked;
        f.high_tech_certified = false;
        f.green_category = 0;
        let c = score(&f, Y);
        assert!(!c.eligible);
        assert_eq!(c.ineligibility_reasons.len(), 3);
    }

    #[test]
    fn ties_break_by_uscc_and_ineligible_candidates_get_rank_zero() {
        let same = [(FigureKind::RevenueFen, 10_000_000_000)];
        let mut cs = vec![
            score(&facts("C", &same, &[]), Y),
            score(&facts("A", &same, &[]), Y),
            score(
                &facts("Z", &[(FigureKind::RevenueFen, 200_000_000_000)], &[]),
                Y,
            ),
            score(&facts("B", &same, &[]), Y),
        ];
        let mut bad = facts("AA", &[(FigureKind::RevenueFen, 200_000_000_000)], &[]);
        bad.high_tech_certified = false;
        cs.push(score(&bad, Y));
        rank(&mut cs);
        let order: Vec<(&str, i32)> = cs.iter().map(|c| (c.uscc.as_str(), c.rank)).collect();
        assert_eq!(order, [("AA", 0), ("Z", 1), ("A", 2), ("B", 3), ("C", 4)]);
        // Deterministic whatever the input order.
        let mut reversed: Vec<Candidate> = cs.iter().rev().cloned().collect();
        rank(&mut reversed);
        assert_eq!(reversed, cs);
    }

    #[test]
    fn percentages_and_yuan_are_written_with_two_decimals_rounded_down() {
        assert_eq!(percent(1, 3), "33.33%");
        assert_eq!(percent(-1, 3), "-33.33%");
        assert_eq!(yuan(12_345), "123.45 yuan");
    }
}
