//! Annual figures as the API shows them and as requests describe them: the name
//! `enterprises/{uscc}/annualFigures/{year}`, each written figure, the year filter and order.

use qilu_common::error::{ApiError, FieldViolation};
use qilu_common::filter::{Filter, FilterField, Kind, Op, Value};
use qilu_common::input::name::{self, IdRule};
use qilu_common::input::{OrderBy, Text, etag_of};
use qilu_common::time::to_timestamp;
use qilu_proto::registry as pb;

use crate::domain::figures::FiguresRefused;
use crate::domain::figures::{AnnualFigures, FigureKind, MAX_REFERENCE_CHARS, source_name};
use crate::domain::uscc::{KnownExceptions, Uscc};

use super::parse_uscc;

/// Resource type for `ResourceInfo` in errors.
pub const ANNUAL_FIGURES_TYPE: &str = "registry.qilu.gov.cn/AnnualFigures";
/// The name of one enterprise-year of figures.
const FIGURES_PATTERN: &str = "enterprises/{uscc}/annualFigures/{year}";
/// Years a resource name may carry (the contract: four digits, 1949-2100).
const NAME_YEARS: std::ops::RangeInclusive<i32> = 1949..=2100;

/// Parses `enterprises/{uscc}/annualFigures/{year}`: the USCC (with its GB 32100 reasons) and
/// the year (`YEAR_OUT_OF_RANGE` outside the contract's years).
pub fn parse_name(
    raw: &str,
    field: &str,
    known: &KnownExceptions,
) -> Result<(Uscc, i32), ApiError> {
    // Each segment is checked below with its own reasons.
    let any = IdRule::Custom(|_| true);
    let parts = name::segments(raw, FIGURES_PATTERN, field, any)?;
    let [code, year] = parts.as_slice() else {
        return Err(ApiError::from(name::bad_name(raw, FIGURES_PATTERN, field)));
    };
    let uscc = parse_uscc(code, field, known)?;
    let year: i32 = match year.parse() {
        Ok(y) if year.len() == 4 && year.bytes().all(|b| b.is_ascii_digit()) => y,
        _ => return Err(ApiError::from(name::bad_name(raw, FIGURES_PATTERN, field))),
    };
    if !NAME_YEARS.contains(&year) {
        return Err(ApiError::invalid(
            field,
            "YEAR_OUT_OF_RANGE",
            format!("year {year} is outside 1949-2100"),
        ));
    }
    Ok((uscc, year))
}

/// The name of `uscc`'s figures of `year`.
pub fn figures_name(uscc: &str, year: i32) -> String {
    format!("enterprises/{uscc}/annualFigures/{year}")
}

/// The record as the API shows it.
pub fn to_proto(f: &AnnualFigures) -> pb::AnnualFigures {
    let mut p = pb::AnnualFigures {
        name: f.name(),
        year: f.year,
        create_time: Some(to_timestamp(f.create_time_us)),
        update_time: Some(to_timestamp(f.update_time_us)),
        etag: etag_of(&f.name(), f.version),
        ..Default::default()
    };
    for (kind, r) in &f.figures {
        let amount = || {
            Some(pb::ReportedAmount {
                value: r.value,
                source: r.source,
                reference: r.reference.clone(),
                update_time: Some(to_timestamp(r.update_time_us)),
            })
        };
        let flag = || {
            Some(pb::ReportedFlag {
                value: r.value != 0,
                source: r.source,
                reference: r.reference.clone(),
                update_time: Some(to_timestamp(r.update_time_us)),
            })
        };
        match kind {
            FigureKind::RevenueFen => p.revenue_fen = amount(),
            FigureKind::RdExpenseFen => p.rd_expense_fen = amount(),
            FigureKind::RdDomesticExpenseFen => p.rd_domestic_expense_fen = amount(),
            FigureKind::HighTechProductRevenueFen => p.high_tech_product_revenue_fen = amount(),
            FigureKind::Employees => p.employees = amount(),
            FigureKind::StStaff => p.st_staff = amount(),
            FigureKind::InventionPatents => p.invention_patents = amount(),
            FigureKind::CoreIpOwned => p.core_ip_owned = flag(),
            FigureKind::InnovationIpPoints => p.innovation_ip_points = amount(),
            FigureKind::InnovationConversionPoints => p.innovation_conversion_points = amount(),
            FigureKind::InnovationRdManagementPoints => {
                p.innovation_rd_management_points = amount()
            }
            FigureKind::InnovationGrowthPoints => p.innovation_growth_points = amount(),
            FigureKind::MajorIncident => p.major_incident = flag(),
        }
    }
    p
}

/// A figure as sent: value (flags as 0/1), source, reference. `None` when the field is unset.
pub fn input_of(p: &pb::AnnualFigures, kind: FigureKind) -> Option<(i64, i32, String)> {
    let amount = |a: &Option<pb::ReportedAmount>| {
        a.as_ref().map(|a| (a.value, a.source, a.reference.clone()))
    };
    let flag = |f: &Option<pb::ReportedFlag>| {
        f.as_ref()
            .map(|f| (i64::from(f.value), f.source, f.reference.clone()))
    };
    match kind {
        FigureKind::RevenueFen => amount(&p.revenue_fen),
        FigureKind::RdExpenseFen => amount(&p.rd_expense_fen),
        FigureKind::RdDomesticExpenseFen => amount(&p.rd_domestic_expense_fen),
        FigureKind::HighTechProductRevenueFen => amount(&p.high_tech_product_revenue_fen),
        FigureKind::Employees => amount(&p.employees),
        FigureKind::StStaff => amount(&p.st_staff),
        FigureKind::InventionPatents => amount(&p.invention_patents),
        FigureKind::CoreIpOwned => flag(&p.core_ip_owned),
        FigureKind::InnovationIpPoints => amount(&p.innovation_ip_points),
        FigureKind::InnovationConversionPoints => amount(&p.innovation_conversion_points),
        FigureKind::InnovationRdManagementPoints => amount(&p.innovation_rd_management_points),
        FigureKind::InnovationGrowthPoints => amount(&p.innovation_growth_points),
        FigureKind::MajorIncident => flag(&p.major_incident),
    }
}

/// Validates one masked figure: `Ok(None)` clears it.
pub fn parse_input(
    p: &pb::AnnualFigures,
    kind: FigureKind,
    violations: &mut Vec<FieldViolation>,
) -> Option<(i64, i32, String)> {
    let (value, source, reference) = input_of(p, kind)?;
    let at = format!("annual_figures.{}", kind.as_str());
    let before = violations.len();
    if value < 0 {
        violations.push(FieldViolation::new(
            format!("{at}.value"),
            "NEGATIVE",
            "figures are never negative",
        ));
    } else if value > kind.max_value() {
        violations.push(FieldViolation::new(
            format!("{at}.value"),
            "OUT_OF_RANGE",
            format!(
                "{} is above the largest plausible {} ({} {})",
                value,
                kind.as_str(),
                kind.max_value(),
                kind.contract_unit()
            ),
        ));
    }
    if source == 0 {
        violations.push(FieldViolation::new(
            format!("{at}.source"),
            "REQUIRED",
            "every written figure needs its source",
        ));
    } else if source_name(source).is_none() {
        violations.push(FieldViolation::new(
            format!("{at}.source"),
            "UNKNOWN_ENUM_VALUE",
            format!("{source} is not a FigureSource"),
        ));
    }
    let reference =
        Text::optional(MAX_REFERENCE_CHARS).parse(&reference, &format!("{at}.reference"));
    let reference = match reference {
        Ok(r) => r,
        Err(v) => {
            violations.push(v);
            String::new()
        }
    };
    (violations.len() == before).then_some((value, source, reference))
}

/// What `ListAnnualFigures` filters on: the year, compared.
const YEAR_FILTER: &[FilterField] = &[FilterField::with(
    "year",
    &[Op::Eq, Op::Lt, Op::Le, Op::Gt, Op::Ge],
    Kind::Int,
)];

/// `year` comparisons as an inclusive range.
pub fn parse_year_filter(raw: &str) -> Result<(Option<i32>, Option<i32>), ApiError> {
    let (mut min, mut max): (Option<i32>, Option<i32>) = (None, None);
    for term in Filter::typed(raw, YEAR_FILTER)? {
        let Value::Int(year) = term.value else {
            continue;
        };
        let year = i32::try_from(year).map_err(|_| {
            ApiError::invalid(
                "filter",
                "INVALID_FILTER",
                format!("year: {year} is not a year"),
            )
        })?;
        let (lo, hi) = match term.op {
            Op::Eq => (Some(year), Some(year)),
            Op::Lt => (None, Some(year.saturating_sub(1))),
            Op::Le => (None, Some(year)),
            Op::Gt => (Some(year.saturating_add(1)), None),
            // The field table admits no other operator.
            Op::Ge | Op::Ne | Op::Has => (Some(year), None),
        };
        if let Some(lo) = lo {
            min = Some(min.map_or(lo, |m| m.max(lo)));
        }
        if let Some(hi) = hi {
            max = Some(max.map_or(hi, |m| m.min(hi)));
        }
    }
    Ok((min, max))
}

/// `order_by`: `year` ascending (default) or `year desc`; `true` when descending.
pub fn parse_year_order(raw: &str) -> Result<bool, ApiError> {
    Ok(OrderBy::parse(raw, &[("year", ())], ())?.desc)
}

/// The figures an update mask names, each once, in the caller's order; a path that is not a
/// figure is recorded in `violations`. An empty mask is `REQUIRED`.
pub fn parse_mask(
    mask: Option<&prost_types::FieldMask>,
    violations: &mut Vec<FieldViolation>,
) -> Result<Vec<FigureKind>, ApiError> {
    let paths: Vec<String> = mask.map(|m| m.paths.clone()).unwrap_or_default();
    let names: Vec<&str> = FigureKind::ALL.iter().map(|k| k.as_str()).collect();
    if paths.is_empty() {
        return Err(ApiError::invalid(
            "update_mask",
            "REQUIRED",
            format!("name the figures to write: {}", names.join(", ")),
        ));
    }
    let mut kinds = Vec::new();
    for path in &paths {
        match FigureKind::parse(path) {
            Some(k) if !kinds.contains(&k) => kinds.push(k),
            Some(_) => {}
            None => violations.push(FieldViolation::new(
                "update_mask",
                "FIELD_NOT_UPDATABLE",
                format!(
                    "{} is not a figure; figures: {}",
                    qilu_common::limits::echo(path),
                    names.join(", ")
                ),
            )),
        }
    }
    Ok(kinds)
}

/// The one mapping of a FiguresRefused to the API's answer.
impl From<FiguresRefused> for ApiError {
    fn from(FiguresRefused(above): FiguresRefused) -> Self {
        ApiError::InvalidArgument(
            above
                .into_iter()
                .map(|a| {
                    FieldViolation::new(
                        format!("annual_figures.{}.value", a.blamed.as_str()),
                        "EXCEEDS_TOTAL",
                        format!(
                            "{} ({}) must not be above {} ({})",
                            a.part.as_str(),
                            a.part_value,
                            a.whole.as_str(),
                            a.whole_value
                        ),
                    )
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn year_filters_become_an_inclusive_range() {
        assert_eq!(
            parse_year_filter("year >= 2021 AND year <= 2023").ok(),
            Some((Some(2021), Some(2023)))
        );
        assert_eq!(
            parse_year_filter("year > 2020 AND year < 2024").ok(),
            Some((Some(2021), Some(2023)))
        );
        assert_eq!(
            parse_year_filter("year = 2022").ok(),
            Some((Some(2022), Some(2022)))
        );
        assert_eq!(parse_year_filter("").ok(), Some((None, None)));
        assert!(parse_year_filter("year != 2022").is_err());
        assert!(parse_year_filter("year = soon").is_err());
        assert!(parse_year_filter("revenue_fen > 1").is_err());
    }

    #[test]
    fn orders_are_year_ascending_or_descending() {
        assert_eq!(parse_year_order("").ok(), Some(false));
        assert_eq!(parse_year_order("year desc").ok(), Some(true));
        assert!(parse_year_order("revenue").is_err());
    }
}
