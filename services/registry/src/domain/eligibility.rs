//! High-tech enterprise eligibility under the 2016 national recognition measures
//! (高新技术企业认定管理办法, 国科发火〔2016〕32号, article 11): one judgement per criterion with
//! the figures it used, the threshold, and a sentence a person can check by hand.
//!
//! Rules this module keeps:
//! - Missing data is CANNOT_DECIDE naming every missing datum — never a guess, never zero.
//! - Ratios are compared exactly (`a * d >= b * c` in i128), never in floating point.
//! - Pure: the caller passes the enterprise, its figures and the dates; no I/O, no clock.

use std::collections::BTreeMap;

use chrono::{Months, NaiveDate};

use super::figures::{AnnualFigures, FigureKind, source_name};

/// Where the rules come from, for `EvaluateEligibilityResponse.rules_source`.
pub const RULES_SOURCE: &str = "高新技术企业认定管理办法 (国科发火〔2016〕32号), article 11";

/// Fen in one yuan.
const FEN_PER_YUAN: i64 = 100;
/// Art. 11(5) revenue band edges in fen: 50 M yuan and 200 M yuan. Exactly 50 M is in the 5%
/// band and exactly 200 M in the 4% band (the contract's reading of "5,000万元以下（含）" and
/// "5,000万元至2亿元（含）").
pub const BAND_SMALL_MAX_FEN: i64 = 50_000_000 * FEN_PER_YUAN;
/// See [`BAND_SMALL_MAX_FEN`].
pub const BAND_MEDIUM_MAX_FEN: i64 = 200_000_000 * FEN_PER_YUAN;
/// Art. 11(5) R&D ratios in basis points for the three bands.
pub const RD_RATIO_BP: [i32; 3] = [500, 400, 300];
/// Art. 11(5): R&D spent in China at least 60% of all R&D.
pub const RD_DOMESTIC_BP: i32 = 6000;
/// Art. 11(4): S&T staff at least 10% of employees.
pub const ST_STAFF_BP: i32 = 1000;
/// Art. 11(6): high-tech product and service revenue at least 60% of revenue.
pub const HIGH_TECH_REVENUE_BP: i32 = 6000;
/// Art. 11(7) and the guidelines: innovation evaluation at least 71 of 100 points.
pub const INNOVATION_MIN_POINTS: i64 = 71;
/// Art. 11(5): the R&D ratio covers the last three fiscal years.
pub const RD_YEARS: i32 = 3;
/// The eight state high-tech fields, as `qilu.common.v1.HighTechField` numbers.
pub const STATE_FIELDS: std::ops::RangeInclusive<i32> = 1..=8;

/// The criteria, in the order of the measures (`qilu.registry.v1.EligibilityCriterion`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Criterion {
    /// (1) Registered at least one full year.
    RegisteredOneYear = 1,
    /// (2) Owns the core IP.
    CoreIpOwned = 2,
    /// (3) In one of the eight state fields.
    HighTechField = 3,
    /// (4) S&T staff ≥ 10%.
    StStaffShare = 4,
    /// (5a) R&D ratio by revenue band.
    RdExpenseRatio = 5,
    /// (5b) R&D in China ≥ 60%.
    RdDomesticShare = 6,
    /// (6) High-tech product revenue ≥ 60%.
    HighTechProductRevenueShare = 7,
    /// (7) Innovation score ≥ 71.
    InnovationScore = 8,
    /// (8) No major incident in the fiscal year.
    NoMajorIncident = 9,
}

/// Outcome of a criterion, or of the whole evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The data show it is met.
    Met,
    /// The data show it is not met.
    NotMet,
    /// Data are missing.
    CannotDecide,
}

/// A stored figure or fact a judgement used (`qilu.registry.v1.FigureUsed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FigureUsed {
    /// Resource name and field path, e.g. `enterprises/X/annualFigures/2023#rd_expense_fen`.
    pub figure: String,
    /// Fiscal year (0 for facts not per year).
    pub year: i32,
    /// The value as a decimal string in its unit.
    pub value: String,
    /// `fen`, `persons`, `points`, `count`, `date`, `flag` or `field`.
    pub unit: &'static str,
    /// Recorded source and reference.
    pub source: String,
}

/// The judgement of one criterion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriterionResult {
    /// Which criterion.
    pub criterion: Criterion,
    /// The outcome.
    pub outcome: Outcome,
    /// Figures used (also the ones present when others are missing).
    pub figures_used: Vec<FigureUsed>,
    /// Threshold in words.
    pub threshold: String,
    /// Threshold in basis points for ratio criteria, else 0.
    pub threshold_basis_points: i32,
    /// Observed ratio numerator (0 when not computed).
    pub observed_numerator: i64,
    /// Observed ratio denominator (0 when not computed).
    pub observed_denominator: i64,
    /// Observed ratio in basis points, rounded down (display only).
    pub observed_basis_points: i64,
    /// A sentence for a person.
    pub explanation: String,
    /// Every missing datum (CANNOT_DECIDE only).
    pub missing_data: Vec<String>,
}

/// The enterprise facts eligibility needs.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// USCC (for figure names).
    pub uscc: &'a str,
    /// Date of establishment.
    pub established_date: NaiveDate,
    /// `qilu.common.v1.HighTechField` numbers.
    pub technology_fields: &'a [i32],
}

/// The whole evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// MET when all are met, NOT_MET when any is not met, else CANNOT_DECIDE.
    pub overall: Outcome,
    /// One per criterion, in order.
    pub criteria: Vec<CriterionResult>,
}

/// The years the R&D criteria cover: the fiscal year and the two before it, fewer when the
/// enterprise is younger (its actual years of operation, counting its establishment year).
pub fn rd_years(established: NaiveDate, fiscal_year: i32) -> std::ops::RangeInclusive<i32> {
    use chrono::Datelike;
    let first = (fiscal_year - RD_YEARS + 1).max(established.year().min(fiscal_year));
    first..=fiscal_year
}

/// The R&D ratio threshold (basis points) and its band description for the fiscal year's
/// revenue in fen.
pub fn rd_band(revenue_fen: i64) -> (i32, String) {
    let revenue = yuan(revenue_fen);
    if revenue_fen <= BAND_SMALL_MAX_FEN {
        (
            RD_RATIO_BP[0],
            format!(">= 5% (revenue {revenue} yuan <= 50,000,000 yuan band)"),
        )
    } else if revenue_fen <= BAND_MEDIUM_MAX_FEN {
        (
            RD_RATIO_BP[1],
            format!(">= 4% (revenue {revenue} yuan > 50,000,000 and <= 200,000,000 yuan band)"),
        )
    } else {
        (
            RD_RATIO_BP[2],
            format!(">= 3% (revenue {revenue} yuan > 200,000,000 yuan band)"),
        )
    }
}

/// Evaluates every criterion for `subject` at `application_date`, judging `fiscal_year` (the
/// last complete fiscal year) from `figures` (any years; the ones needed are picked).
pub fn evaluate(
    subject: Subject<'_>,
    figures: &[AnnualFigures],
    fiscal_year: i32,
    application_date: NaiveDate,
) -> Evaluation {
    let data = Data {
        uscc: subject.uscc,
        by_year: figures.iter().map(|f| (f.year, f)).collect(),
    };
    let criteria = vec![
        registered_one_year(subject, application_date),
        core_ip_owned(&data, fiscal_year),
        high_tech_field(subject),
        st_staff_share(&data, fiscal_year),
        rd_expense_ratio(&data, subject.established_date, fiscal_year),
        rd_domestic_share(&data, subject.established_date, fiscal_year),
        high_tech_product_revenue_share(&data, fiscal_year),
        innovation_score(&data, fiscal_year),
        no_major_incident(&data, fiscal_year),
    ];
    let overall = if criteria.iter().any(|c| c.outcome == Outcome::NotMet) {
        Outcome::NotMet
    } else if criteria.iter().any(|c| c.outcome == Outcome::CannotDecide) {
        Outcome::CannotDecide
    } else {
        Outcome::Met
    };
    Evaluation { overall, criteria }
}

/// Figures by year with names for what is used or missing.
struct Data<'a> {
    uscc: &'a str,
    by_year: BTreeMap<i32, &'a AnnualFigures>,
}

impl Data<'_> {
    fn figure_name(&self, year: i32, kind: FigureKind) -> String {
        format!(
            "enterprises/{}/annualFigures/{year}#{}",
            self.uscc,
            kind.as_str()
        )
    }

    /// Looks up each `(year, kind)`: values in order, with `used` and `missing` filled in.
    fn fetch(
        &self,
        wanted: &[(i32, FigureKind)],
        used: &mut Vec<FigureUsed>,
        missing: &mut Vec<String>,
    ) -> Option<Vec<i64>> {
        let mut values = Vec::with_capacity(wanted.len());
        for &(year, kind) in wanted {
            match self.by_year.get(&year).and_then(|f| f.figures.get(&kind)) {
                Some(r) => {
                    let source = source_name(r.source).unwrap_or("UNKNOWN_SOURCE");
                    used.push(FigureUsed {
                        figure: self.figure_name(year, kind),
                        year,
                        value: if kind.is_flag() {
                            (r.value != 0).to_string()
                        } else {
                            r.value.to_string()
                        },
                        unit: kind.contract_unit(),
                        source: if r.reference.is_empty() {
                            source.to_string()
                        } else {
                            format!("{source} {}", r.reference)
                        },
                    });
                    values.push(r.value);
                }
                None => missing.push(self.figure_name(year, kind)),
            }
        }
        missing.is_empty().then_some(values)
    }
}

fn result(criterion: Criterion, threshold: impl Into<String>) -> CriterionResult {
    CriterionResult {
        criterion,
        outcome: Outcome::CannotDecide,
        figures_used: Vec::new(),
        threshold: threshold.into(),
        threshold_basis_points: 0,
        observed_numerator: 0,
        observed_denominator: 0,
        observed_basis_points: 0,
        explanation: String::new(),
        missing_data: Vec::new(),
    }
}

fn cannot_decide(mut r: CriterionResult, what: &str, missing: Vec<String>) -> CriterionResult {
    r.outcome = Outcome::CannotDecide;
    r.explanation = format!("cannot decide {what}: missing {}", missing.join(", "));
    r.missing_data = missing;
    r
}

/// `numerator / denominator >= bp / 10000`, exactly.
pub fn ratio_at_least(numerator: i128, denominator: i128, bp: i32) -> bool {
    numerator * 10_000 >= denominator * i128::from(bp)
}

/// Basis points rounded down (display only); 0 for a zero denominator.
pub fn basis_points(numerator: i128, denominator: i128) -> i64 {
    if denominator <= 0 {
        return 0;
    }
    i64::try_from(numerator * 10_000 / denominator).unwrap_or(i64::MAX)
}

/// `1234` basis points as `12.34%`.
pub fn percent(bp: i64) -> String {
    format!("{}.{:02}%", bp / 100, bp % 100)
}

/// Fen as yuan with thousands separators, e.g. `40,000,000` or `1,234.56`.
pub fn yuan(fen: i64) -> String {
    let whole = (fen / FEN_PER_YUAN).to_string();
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match fen % FEN_PER_YUAN {
        0 => grouped,
        cents => format!("{grouped}.{cents:02}"),
    }
}

fn years_text(years: &std::ops::RangeInclusive<i32>) -> String {
    if years.start() == years.end() {
        years.start().to_string()
    } else {
        format!("{}-{}", years.start(), years.end())
    }
}

/// A ratio criterion once its figures are known.
#[allow(clippy::too_many_arguments)]
fn judge_ratio(
    mut r: CriterionResult,
    numerator: i128,
    denominator: i128,
    bp: i32,
    what: &str,
    of_what: &str,
    period: &str,
    requirement: &str,
) -> CriterionResult {
    r.threshold_basis_points = bp;
    r.observed_numerator = i64::try_from(numerator).unwrap_or(i64::MAX);
    r.observed_denominator = i64::try_from(denominator).unwrap_or(i64::MAX);
    if denominator <= 0 {
        // A share of nothing is undefined: the data are there, and they do not show the
        // criterion met.
        r.outcome = Outcome::NotMet;
        r.explanation = format!("{of_what} {period} is zero, so {what} cannot reach {requirement}");
        return r;
    }
    let observed = basis_points(numerator, denominator);
    r.observed_basis_points = observed;
    let met = ratio_at_least(numerator, denominator, bp);
    r.outcome = if met { Outcome::Met } else { Outcome::NotMet };
    r.explanation = format!(
        "{what} {} of {of_what} {period} {} the {requirement}",
        percent(observed),
        if met { "meets" } else { "is below" },
    );
    r
}

fn registered_one_year(subject: Subject<'_>, application_date: NaiveDate) -> CriterionResult {
    let mut r = result(
        Criterion::RegisteredOneYear,
        "established on or before the same day one year before the application date",
    );
    let cutoff = application_date
        .checked_sub_months(Months::new(12))
        .unwrap_or(NaiveDate::MIN);
    r.figures_used.push(FigureUsed {
        figure: format!("enterprises/{}#established_date", subject.uscc),
        year: 0,
        value: subject.established_date.to_string(),
        unit: "date",
        source: "REGISTRY enterprise record".into(),
    });
    r.threshold = format!("established on or before {cutoff}");
    let met = subject.established_date <= cutoff;
    r.outcome = if met { Outcome::Met } else { Outcome::NotMet };
    r.explanation = if met {
        format!(
            "established {}, at least one full year before {application_date}",
            subject.established_date
        )
    } else {
        format!(
            "established {}, less than one full year before {application_date} (needs {cutoff} or earlier)",
            subject.established_date
        )
    };
    r
}

#[allow(clippy::too_many_arguments)]
fn flag_criterion(
    data: &Data<'_>,
    criterion: Criterion,
    kind: FigureKind,
    fiscal_year: i32,
    wanted: bool,
    threshold: &str,
    yes: &str,
    no: &str,
) -> CriterionResult {
    let mut r = result(criterion, threshold);
    let (mut used, mut missing) = (Vec::new(), Vec::new());
    let Some(values) = data.fetch(&[(fiscal_year, kind)], &mut used, &mut missing) else {
        r.figures_used = used;
        return cannot_decide(r, threshold, missing);
    };
    r.figures_used = used;
    let value = values.first().is_some_and(|v| *v != 0);
    r.outcome = if value == wanted {
        Outcome::Met
    } else {
        Outcome::NotMet
    };
    r.explanation = format!("{fiscal_year}: {}", if value { yes } else { no });
    r
}

fn core_ip_owned(data: &Data<'_>, fiscal_year: i32) -> CriterionResult {
    flag_criterion(
        data,
        Criterion::CoreIpOwned,
        FigureKind::CoreIpOwned,
        fiscal_year,
        true,
        "owns the IP supporting its core products",
        "the enterprise owns the IP supporting its core products",
        "the enterprise does not own the IP supporting its core products",
    )
}

fn no_major_incident(data: &Data<'_>, fiscal_year: i32) -> CriterionResult {
    flag_criterion(
        data,
        Criterion::NoMajorIncident,
        FigureKind::MajorIncident,
        fiscal_year,
        false,
        "no major safety or quality accident or serious environmental violation in the fiscal year",
        "a major safety or quality accident or serious environmental violation was recorded",
        "no major safety or quality accident or serious environmental violation was recorded",
    )
}

fn high_tech_field(subject: Subject<'_>) -> CriterionResult {
    let mut r = result(
        Criterion::HighTechField,
        "core technology in one of the eight state high-tech fields",
    );
    let name = format!("enterprises/{}#technology_fields", subject.uscc);
    if subject.technology_fields.is_empty() {
        return cannot_decide(r, "the technology field", vec![name]);
    }
    let joined: Vec<String> = subject
        .technology_fields
        .iter()
        .map(i32::to_string)
        .collect();
    r.figures_used.push(FigureUsed {
        figure: name,
        year: 0,
        value: joined.join(","),
        unit: "field",
        source: "REGISTRY enterprise record".into(),
    });
    let met = subject
        .technology_fields
        .iter()
        .any(|f| STATE_FIELDS.contains(f));
    r.outcome = if met { Outcome::Met } else { Outcome::NotMet };
    r.explanation = if met {
        "the recorded technology field is one of the eight state high-tech fields".into()
    } else {
        "no recorded technology field is one of the eight state high-tech fields".into()
    };
    r
}

fn st_staff_share(data: &Data<'_>, fy: i32) -> CriterionResult {
    let threshold = ">= 10% of employees";
    let r = result(Criterion::StStaffShare, threshold);
    let (mut used, mut missing) = (Vec::new(), Vec::new());
    let wanted = [(fy, FigureKind::StStaff), (fy, FigureKind::Employees)];
    let Some(v) = data.fetch(&wanted, &mut used, &mut missing) else {
        let mut r = cannot_decide(r, "the S&T staff share", missing);
        r.figures_used = used;
        r.threshold_basis_points = ST_STAFF_BP;
        return r;
    };
    let mut r = judge_ratio(
        r,
        i128::from(v[0]),
        i128::from(v[1]),
        ST_STAFF_BP,
        "S&T staff",
        "employees",
        &format!("in {fy}"),
        "10% required",
    );
    r.figures_used = used;
    r
}

fn rd_expense_ratio(data: &Data<'_>, established: NaiveDate, fy: i32) -> CriterionResult {
    let years = rd_years(established, fy);
    let r = result(Criterion::RdExpenseRatio, "by revenue band");
    let (mut used, mut missing) = (Vec::new(), Vec::new());
    // The fiscal year's revenue first: it chooses the band.
    let mut wanted = vec![(fy, FigureKind::RevenueFen)];
    for y in years.clone() {
        wanted.push((y, FigureKind::RdExpenseFen));
        if y != fy {
            wanted.push((y, FigureKind::RevenueFen));
        }
    }
    wanted.sort();
    let Some(values) = data.fetch(&wanted, &mut used, &mut missing) else {
        let mut r = cannot_decide(r, "the R&D expense ratio", missing);
        r.figures_used = used;
        return r;
    };
    let mut rd = 0i128;
    let mut revenue = 0i128;
    let mut fy_revenue = 0i64;
    for (&(y, kind), v) in wanted.iter().zip(&values) {
        match kind {
            FigureKind::RdExpenseFen => rd += i128::from(*v),
            _ => {
                revenue += i128::from(*v);
                if y == fy {
                    fy_revenue = *v;
                }
            }
        }
    }
    let (bp, threshold) = rd_band(fy_revenue);
    let mut r = r;
    r.threshold = threshold;
    let requirement = match bp {
        500 => "5% required for revenue up to 50 M yuan",
        400 => "4% required for revenue above 50 M and up to 200 M yuan",
        _ => "3% required for revenue above 200 M yuan",
    };
    let mut r = judge_ratio(
        r,
        rd,
        revenue,
        bp,
        "R&D",
        "revenue",
        &format!("over {}", years_text(&years)),
        requirement,
    );
    r.figures_used = used;
    r
}

fn rd_domestic_share(data: &Data<'_>, established: NaiveDate, fy: i32) -> CriterionResult {
    let years = rd_years(established, fy);
    let r = result(
        Criterion::RdDomesticShare,
        ">= 60% of R&D expense spent in China",
    );
    let (mut used, mut missing) = (Vec::new(), Vec::new());
    let mut wanted = Vec::new();
    for y in years.clone() {
        wanted.push((y, FigureKind::RdExpenseFen));
        wanted.push((y, FigureKind::RdDomesticExpenseFen));
    }
    let Some(values) = data.fetch(&wanted, &mut used, &mut missing) else {
        let mut r = cannot_decide(r, "the share of R&D spent in China", missing);
        r.figures_used = used;
        r.threshold_basis_points = RD_DOMESTIC_BP;
        return r;
    };
    let (mut all, mut domestic) = (0i128, 0i128);
    for (&(_, kind), v) in wanted.iter().zip(&values) {
        if kind == FigureKind::RdExpenseFen {
            all += i128::from(*v);
        } else {
            domestic += i128::from(*v);
        }
    }
    let mut r = judge_ratio(
        r,
        domestic,
        all,
        RD_DOMESTIC_BP,
        "R&D spent in China",
        "R&D expense",
        &format!("over {}", years_text(&years)),
        "60% required",
    );
    r.figures_used = used;
    r
}

fn high_tech_product_revenue_share(data: &Data<'_>, fy: i32) -> CriterionResult {
    let r = result(
        Criterion::HighTechProductRevenueShare,
        ">= 60% of the fiscal year's revenue",
    );
    let (mut used, mut missing) = (Vec::new(), Vec::new());
    let wanted = [
        (fy, FigureKind::HighTechProductRevenueFen),
        (fy, FigureKind::RevenueFen),
    ];
    let Some(v) = data.fetch(&wanted, &mut used, &mut missing) else {
        let mut r = cannot_decide(r, "the high-tech product revenue share", missing);
        r.figures_used = used;
        r.threshold_basis_points = HIGH_TECH_REVENUE_BP;
        return r;
    };
    let mut r = judge_ratio(
        r,
        i128::from(v[0]),
        i128::from(v[1]),
        HIGH_TECH_REVENUE_BP,
        "high-tech product and service revenue",
        "revenue",
        &format!("in {fy}"),
        "60% required",
    );
    r.figures_used = used;
    r
}

fn innovation_score(data: &Data<'_>, fy: i32) -> CriterionResult {
    let threshold = format!(">= {INNOVATION_MIN_POINTS} of 100 points");
    let mut r = result(Criterion::InnovationScore, threshold);
    let (mut used, mut missing) = (Vec::new(), Vec::new());
    let wanted = [
        (fy, FigureKind::InnovationIpPoints),
        (fy, FigureKind::InnovationConversionPoints),
        (fy, FigureKind::InnovationRdManagementPoints),
        (fy, FigureKind::InnovationGrowthPoints),
    ];
    let Some(v) = data.fetch(&wanted, &mut used, &mut missing) else {
        r.figures_used = used;
        return cannot_decide(r, "the innovation score", missing);
    };
    r.figures_used = used;
    let total: i64 = v.iter().sum();
    let met = total >= INNOVATION_MIN_POINTS;
    r.outcome = if met { Outcome::Met } else { Outcome::NotMet };
    r.explanation = format!(
        "innovation score {total} ({} IP + {} conversion + {} R&D management + {} growth) in {fy} {} the {INNOVATION_MIN_POINTS} points required",
        v[0],
        v[1],
        v[2],
        v[3],
        if met { "meets" } else { "is below" }
    );
    r
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::figures::Reported;

    const USCC: &str = "91350100M000100Y43";
    const M: i64 = 1_000_000 * FEN_PER_YUAN; // one million yuan in fen

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn year(y: i32, values: &[(FigureKind, i64)]) -> AnnualFigures {
        AnnualFigures {
            uscc: USCC.into(),
            year: y,
            figures: values
                .iter()
                .map(|&(k, v)| {
                    (
                        k,
                        Reported {
                            value: v,
                            source: 2,
                            reference: "鲁华审字〔2024〕第0123号".into(),
                            update_time_us: 0,
                        },
                    )
                })
                .collect(),
            create_time_us: 0,
            update_time_us: 0,
            version: 1,
        }
    }

    /// An enterprise meeting every criterion in 2023 with the given three-year revenue and R&D.
    fn passing(revenue: [i64; 3], rd: [i64; 3]) -> Vec<AnnualFigures> {
        use FigureKind::*;
        (0..3)
            .map(|i| {
                let y = 2021 + i as i32;
                let mut v = vec![
                    (RevenueFen, revenue[i]),
                    (RdExpenseFen, rd[i]),
                    (RdDomesticExpenseFen, rd[i]),
                ];
                if y == 2023 {
                    v.extend([
                        (HighTechProductRevenueFen, revenue[i]),
                        (Employees, 100),
                        (StStaff, 10),
                        (CoreIpOwned, 1),
                        (InnovationIpPoints, 30),
                        (InnovationConversionPoints, 30),
                        (InnovationRdManagementPoints, 20),
                        (InnovationGrowthPoints, 20),
                        (MajorIncident, 0),
                    ]);
                }
                year(y, &v)
            })
            .collect()
    }

    fn eval(figures: &[AnnualFigures]) -> Evaluation {
        evaluate(
            Subject {
                uscc: USCC,
                established_date: d("2015-01-01"),
                technology_fields: &[4],
            },
            figures,
            2023,
            d("2024-06-01"),
        )
    }

    fn outcome(e: &Evaluation, c: Criterion) -> Outcome {
        e.criteria
            .iter()
            .find(|r| r.criterion == c)
            .unwrap()
            .outcome
    }

    fn set(figures: &mut [AnnualFigures], y: i32, kind: FigureKind, value: i64) {
        let f = figures.iter_mut().find(|f| f.year == y).unwrap();
        f.figures.get_mut(&kind).unwrap().value = value;
    }

    #[test]
    fn a_fully_qualifying_enterprise_meets_every_criterion_in_order() {
        let e = eval(&passing([40 * M; 3], [2 * M; 3]));
        assert_eq!(e.overall, Outcome::Met);
        let order: Vec<i32> = e.criteria.iter().map(|c| c.criterion as i32).collect();
        assert_eq!(order, (1..=9).collect::<Vec<_>>());
        assert!(e.criteria.iter().all(|c| c.outcome == Outcome::Met));
    }

    #[test]
    fn design_pair_4_9_percent_at_40m_fails_and_3_0_percent_at_300m_passes() {
        // 4.9% of 40 M yuan = 1.96 M yuan each year.
        let low = eval(&passing([40 * M; 3], [196 * M / 100; 3]));
        let r = &low.criteria[4];
        assert_eq!(r.criterion, Criterion::RdExpenseRatio);
        assert_eq!(r.outcome, Outcome::NotMet);
        assert_eq!(r.threshold_basis_points, 500);
        assert_eq!(r.observed_basis_points, 490);
        assert_eq!(
            (r.observed_numerator, r.observed_denominator),
            (3 * 196 * M / 100, 120 * M)
        );
        assert_eq!(
            r.threshold,
            ">= 5% (revenue 40,000,000 yuan <= 50,000,000 yuan band)"
        );
        assert!(
            r.explanation
                .contains("R&D 4.90% of revenue over 2021-2023 is below the 5% required"),
            "{}",
            r.explanation
        );
        assert_eq!(low.overall, Outcome::NotMet);

        let high = eval(&passing([300 * M; 3], [9 * M; 3]));
        let r = &high.criteria[4];
        assert_eq!(r.outcome, Outcome::Met, "{r:?}");
        assert_eq!(r.threshold_basis_points, 300);
        assert_eq!(r.observed_basis_points, 300);
        assert_eq!(high.overall, Outcome::Met);
    }

    #[test]
    fn rd_ratio_at_just_under_and_just_over_each_band_threshold() {
        // (fiscal-year revenue in fen, R&D in fen per year, expected)
        // Revenue constant over three years, so the ratio is rd / revenue.
        let edge50 = BAND_SMALL_MAX_FEN;
        let edge200 = BAND_MEDIUM_MAX_FEN;
        let table: Vec<(i64, i64, Outcome, i32)> = vec![
            // 5% band, exactly at 50 M (inclusive edge).
            (edge50, edge50 / 20, Outcome::Met, 500),
            (edge50, edge50 / 20 - 1, Outcome::NotMet, 500),
            (edge50, edge50 / 20 + 1, Outcome::Met, 500),
            // one fen above 50 M: 4% band.
            (edge50 + 1, (edge50 + 1) * 4 / 100 + 1, Outcome::Met, 400),
            (edge50 + 1, (edge50 + 1) * 4 / 100, Outcome::NotMet, 400),
            // 4% band at exactly 200 M (inclusive edge).
            (edge200, edge200 / 25, Outcome::Met, 400),
            (edge200, edge200 / 25 - 1, Outcome::NotMet, 400),
            (edge200, edge200 / 25 + 1, Outcome::Met, 400),
            // one fen above 200 M: 3% band.
            (edge200 + 1, (edge200 + 1) * 3 / 100 + 1, Outcome::Met, 300),
            (edge200 + 1, (edge200 + 1) * 3 / 100, Outcome::NotMet, 300),
            // 3% band, far above.
            (1000 * M, 30 * M, Outcome::Met, 300),
            (1000 * M, 30 * M - 1, Outcome::NotMet, 300),
            (1000 * M, 30 * M + 1, Outcome::Met, 300),
            // small enterprise.
            (M, M / 20, Outcome::Met, 500),
            (M, M / 20 - 1, Outcome::NotMet, 500),
        ];
        for (revenue, rd, expected, bp) in table {
            let e = eval(&passing([revenue; 3], [rd; 3]));
            let r = &e.criteria[4];
            assert_eq!(
                (r.outcome, r.threshold_basis_points),
                (expected, bp),
                "revenue {revenue} rd {rd}: {r:?}"
            );
        }
    }

    #[test]
    fn the_band_follows_the_fiscal_years_revenue_and_the_ratio_the_three_year_sums() {
        // Fiscal-year revenue 60 M (4% band); earlier years small. Sums: R&D 4.2 M over
        // revenue 100 M = 4.2% → met in the 4% band (it would fail 5%).
        let e = eval(&passing([20 * M, 20 * M, 60 * M], [M, M, 22 * M / 10]));
        let r = &e.criteria[4];
        assert_eq!(r.threshold_basis_points, 400);
        assert_eq!(r.observed_basis_points, 420);
        assert_eq!(r.outcome, Outcome::Met);
        assert_eq!(r.figures_used.len(), 6);
    }

    #[test]
    fn a_young_enterprise_uses_its_actual_years_of_operation() {
        assert_eq!(rd_years(d("2022-07-01"), 2023), 2022..=2023);
        assert_eq!(rd_years(d("2015-01-01"), 2023), 2021..=2023);
        assert_eq!(rd_years(d("2023-01-01"), 2023), 2023..=2023);
        let figures = passing([40 * M; 3], [2 * M; 3]);
        let e = evaluate(
            Subject {
                uscc: USCC,
                established_date: d("2022-03-01"),
                technology_fields: &[4],
            },
            &figures[1..],
            2023,
            d("2024-06-01"),
        );
        assert_eq!(e.criteria[4].outcome, Outcome::Met);
        assert_eq!(e.criteria[4].observed_denominator, 80 * M);
        assert_eq!(e.overall, Outcome::Met);
    }

    #[test]
    fn ratio_criteria_at_just_under_and_just_over_their_thresholds() {
        use FigureKind::*;
        // (criterion, figure to set in 2023, value, expected). Base: 100 employees, revenue
        // 40 M yuan, R&D 2 M yuan a year.
        let table: Vec<(Criterion, FigureKind, i64, Outcome)> = vec![
            (Criterion::StStaffShare, StStaff, 10, Outcome::Met),
            (Criterion::StStaffShare, StStaff, 9, Outcome::NotMet),
            (Criterion::StStaffShare, StStaff, 11, Outcome::Met),
            (
                Criterion::HighTechProductRevenueShare,
                HighTechProductRevenueFen,
                24 * M,
                Outcome::Met,
            ),
            (
                Criterion::HighTechProductRevenueShare,
                HighTechProductRevenueFen,
                24 * M - 1,
                Outcome::NotMet,
            ),
            (
                Criterion::HighTechProductRevenueShare,
                HighTechProductRevenueFen,
                24 * M + 1,
                Outcome::Met,
            ),
            (
                Criterion::InnovationScore,
                InnovationGrowthPoints,
                11,
                Outcome::Met,
            ), // 71
            (
                Criterion::InnovationScore,
                InnovationGrowthPoints,
                10,
                Outcome::NotMet,
            ), // 70
            (
                Criterion::InnovationScore,
                InnovationGrowthPoints,
                12,
                Outcome::Met,
            ), // 72
            (Criterion::CoreIpOwned, CoreIpOwned, 1, Outcome::Met),
            (Criterion::CoreIpOwned, CoreIpOwned, 0, Outcome::NotMet),
            (Criterion::NoMajorIncident, MajorIncident, 0, Outcome::Met),
            (
                Criterion::NoMajorIncident,
                MajorIncident,
                1,
                Outcome::NotMet,
            ),
        ];
        for (criterion, kind, value, expected) in table {
            let mut figures = passing([40 * M; 3], [2 * M; 3]);
            if criterion == Criterion::InnovationScore {
                // 30 + 30 + 0 + growth.
                set(&mut figures, 2023, InnovationRdManagementPoints, 0);
            }
            set(&mut figures, 2023, kind, value);
            let e = eval(&figures);
            assert_eq!(
                outcome(&e, criterion),
                expected,
                "{criterion:?} {kind:?}={value}"
            );
        }
    }

    #[test]
    fn domestic_rd_share_at_just_under_and_just_over_60_percent_over_the_years() {
        // Total R&D 6 M over three years; domestic summed over the years.
        let table = [
            (12 * M / 10, Outcome::Met),        // 1.2 M × 3 = 3.6 M = 60%
            (12 * M / 10 - 1, Outcome::NotMet), // just under
            (12 * M / 10 + 1, Outcome::Met),    // just over
        ];
        for (domestic, expected) in table {
            let mut figures = passing([40 * M; 3], [2 * M; 3]);
            for y in 2021..=2023 {
                set(&mut figures, y, FigureKind::RdDomesticExpenseFen, domestic);
            }
            let e = eval(&figures);
            assert_eq!(
                outcome(&e, Criterion::RdDomesticShare),
                expected,
                "{domestic}"
            );
        }
        // Unevenly spread: 0% one year is fine when the three-year share holds.
        let mut figures = passing([40 * M; 3], [2 * M; 3]);
        set(&mut figures, 2021, FigureKind::RdDomesticExpenseFen, 0);
        set(
            &mut figures,
            2022,
            FigureKind::RdDomesticExpenseFen,
            16 * M / 10,
        );
        assert_eq!(
            outcome(&eval(&figures), Criterion::RdDomesticShare),
            Outcome::Met
        );
    }

    #[test]
    fn registered_one_year_is_inclusive_of_the_same_day_a_year_earlier() {
        let figures = passing([40 * M; 3], [2 * M; 3]);
        let table = [
            ("2023-06-01", Outcome::Met),
            ("2023-06-02", Outcome::NotMet),
            ("2023-05-31", Outcome::Met),
        ];
        for (established, expected) in table {
            let e = evaluate(
                Subject {
                    uscc: USCC,
                    established_date: d(established),
                    technology_fields: &[4],
                },
                &figures,
                2023,
                d("2024-06-01"),
            );
            assert_eq!(
                outcome(&e, Criterion::RegisteredOneYear),
                expected,
                "{established}"
            );
        }
        // Application on 29 February: one year earlier is 28 February.
        let e = evaluate(
            Subject {
                uscc: USCC,
                established_date: d("2023-02-28"),
                technology_fields: &[4],
            },
            &figures,
            2023,
            d("2024-02-29"),
        );
        assert_eq!(outcome(&e, Criterion::RegisteredOneYear), Outcome::Met);
    }

    #[test]
    fn the_field_criterion_needs_a_recorded_state_field() {
        let figures = passing([40 * M; 3], [2 * M; 3]);
        let fields: [(&[i32], Outcome); 3] = [
            (&[8], Outcome::Met),
            (&[], Outcome::CannotDecide),
            (&[0, 9], Outcome::NotMet),
        ];
        for (f, expected) in fields {
            let e = evaluate(
                Subject {
                    uscc: USCC,
                    established_date: d("2015-01-01"),
                    technology_fields: f,
                },
                &figures,
                2023,
                d("2024-06-01"),
            );
            assert_eq!(outcome(&e, Criterion::HighTechField), expected, "{f:?}");
        }
    }

    #[test]
    fn missing_figures_cannot_decide_and_name_every_missing_datum() {
        let mut figures = passing([40 * M; 3], [2 * M; 3]);
        figures[0].figures.remove(&FigureKind::RevenueFen);
        figures[2].figures.remove(&FigureKind::Employees);
        figures[2]
            .figures
            .remove(&FigureKind::InnovationGrowthPoints);
        let e = eval(&figures);
        assert_eq!(e.overall, Outcome::CannotDecide);
        let rd = &e.criteria[4];
        assert_eq!(rd.outcome, Outcome::CannotDecide);
        assert_eq!(
            rd.missing_data,
            [format!("enterprises/{USCC}/annualFigures/2021#revenue_fen")]
        );
        assert_eq!(rd.observed_denominator, 0);
        let staff = &e.criteria[3];
        assert_eq!(
            staff.missing_data,
            [format!("enterprises/{USCC}/annualFigures/2023#employees")]
        );
        assert_eq!(
            staff.figures_used.len(),
            1,
            "the figure present is still shown"
        );
        assert_eq!(
            e.criteria[7].missing_data,
            [format!(
                "enterprises/{USCC}/annualFigures/2023#innovation_growth_points"
            )]
        );
        // A whole year absent names each figure of it.
        let e = eval(&figures[1..]);
        let rd = &e.criteria[4];
        assert_eq!(
            rd.missing_data,
            [
                format!("enterprises/{USCC}/annualFigures/2021#revenue_fen"),
                format!("enterprises/{USCC}/annualFigures/2021#rd_expense_fen"),
            ]
        );
        // NOT_MET outweighs CANNOT_DECIDE overall.
        set(&mut figures, 2023, FigureKind::MajorIncident, 1);
        assert_eq!(eval(&figures).overall, Outcome::NotMet);
    }

    #[test]
    fn zero_denominators_are_not_met_rather_than_a_division_by_zero() {
        let mut figures = passing([0; 3], [0; 3]);
        set(&mut figures, 2023, FigureKind::Employees, 0);
        set(&mut figures, 2023, FigureKind::StStaff, 0);
        let e = eval(&figures);
        for c in [
            Criterion::StStaffShare,
            Criterion::RdExpenseRatio,
            Criterion::RdDomesticShare,
            Criterion::HighTechProductRevenueShare,
        ] {
            assert_eq!(outcome(&e, c), Outcome::NotMet, "{c:?}");
        }
    }

    #[test]
    fn figures_used_carry_year_unit_and_source_with_reference() {
        let e = eval(&passing([40 * M; 3], [2 * M; 3]));
        let used = &e.criteria[4].figures_used[1];
        assert_eq!(
            used.figure,
            format!("enterprises/{USCC}/annualFigures/2021#rd_expense_fen")
        );
        assert_eq!(used.year, 2021);
        assert_eq!(used.unit, "fen");
        assert_eq!(used.value, (2 * M).to_string());
        assert_eq!(used.source, "AUDITED_STATEMENT 鲁华审字〔2024〕第0123号");
        let flag = &e.criteria[1].figures_used[0];
        assert_eq!((flag.value.as_str(), flag.unit), ("true", "flag"));
        assert_eq!(e.criteria[3].figures_used[0].unit, "persons");
    }

    #[test]
    fn large_figures_do_not_overflow() {
        let max = FigureKind::RevenueFen.max_value();
        let e = eval(&passing([max; 3], [max; 3]));
        assert_eq!(e.criteria[4].outcome, Outcome::Met);
        assert_eq!(e.criteria[4].observed_basis_points, 10_000);
    }

    #[test]
    fn money_and_percent_format_for_people() {
        assert_eq!(yuan(40 * M), "40,000,000");
        assert_eq!(yuan(123_456), "1,234.56");
        assert_eq!(yuan(5), "0.05");
        assert_eq!(percent(490), "4.90%");
        assert_eq!(percent(10_000), "100.00%");
    }
}
