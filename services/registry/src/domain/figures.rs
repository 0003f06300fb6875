//! Annual figures: what an enterprise reported (or an officer recorded) for one year, one figure
//! at a time, each with its source and time — so every decision that uses a figure can say where
//! it came from. A figure that was never reported is absent, never zero.

use std::collections::BTreeMap;

use serde::Serialize;

/// Every figure the registry keeps per enterprise and year. The names are the proto field names
/// of `qilu.registry.v1.AnnualFigures` (and the update-mask paths).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FigureKind {
    /// Total revenue, fen.
    RevenueFen,
    /// R&D expense, fen.
    RdExpenseFen,
    /// R&D expense spent in China, fen.
    RdDomesticExpenseFen,
    /// Revenue from high-tech products and services, fen.
    HighTechProductRevenueFen,
    /// Employees (headcount).
    Employees,
    /// Science and technology staff (headcount).
    StStaff,
    /// Invention patents held.
    InventionPatents,
    /// Owns the IP of its core technology (flag).
    CoreIpOwned,
    /// Innovation evaluation: intellectual property points (0-30).
    InnovationIpPoints,
    /// Innovation evaluation: conversion of achievements points (0-30).
    InnovationConversionPoints,
    /// Innovation evaluation: R&D management points (0-20).
    InnovationRdManagementPoints,
    /// Innovation evaluation: growth points (0-20).
    InnovationGrowthPoints,
    /// A major safety or quality accident or serious environmental violation in the year (flag).
    MajorIncident,
}

impl FigureKind {
    /// All kinds, in proto field order.
    pub const ALL: [FigureKind; 13] = [
        FigureKind::RevenueFen,
        FigureKind::RdExpenseFen,
        FigureKind::RdDomesticExpenseFen,
        FigureKind::HighTechProductRevenueFen,
        FigureKind::Employees,
        FigureKind::StStaff,
        FigureKind::InventionPatents,
        FigureKind::CoreIpOwned,
        FigureKind::InnovationIpPoints,
        FigureKind::InnovationConversionPoints,
        FigureKind::InnovationRdManagementPoints,
        FigureKind::InnovationGrowthPoints,
        FigureKind::MajorIncident,
    ];

    /// The proto field name / stored code, e.g. `revenue_fen`.
    pub fn as_str(self) -> &'static str {
        match self {
            FigureKind::RevenueFen => "revenue_fen",
            FigureKind::RdExpenseFen => "rd_expense_fen",
            FigureKind::RdDomesticExpenseFen => "rd_domestic_expense_fen",
            FigureKind::HighTechProductRevenueFen => "high_tech_product_revenue_fen",
            FigureKind::Employees => "employees",
            FigureKind::StStaff => "st_staff",
            FigureKind::InventionPatents => "invention_patents",
            FigureKind::CoreIpOwned => "core_ip_owned",
            FigureKind::InnovationIpPoints => "innovation_ip_points",
            FigureKind::InnovationConversionPoints => "innovation_conversion_points",
            FigureKind::InnovationRdManagementPoints => "innovation_rd_management_points",
            FigureKind::InnovationGrowthPoints => "innovation_growth_points",
            FigureKind::MajorIncident => "major_incident",
        }
    }

    /// From the stored code / mask path.
    pub fn parse(s: &str) -> Option<FigureKind> {
        FigureKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// True for yes/no figures (stored as 0/1).
    pub fn is_flag(self) -> bool {
        matches!(self, FigureKind::CoreIpOwned | FigureKind::MajorIncident)
    }

    /// The largest value that makes sense (inclusive); values are never negative.
    pub fn max_value(self) -> i64 {
        match self {
            FigureKind::CoreIpOwned | FigureKind::MajorIncident => 1,
            FigureKind::InnovationIpPoints | FigureKind::InnovationConversionPoints => 30,
            FigureKind::InnovationRdManagementPoints | FigureKind::InnovationGrowthPoints => 20,
            // Counts: no enterprise has ten million staff or patents.
            FigureKind::Employees | FigureKind::StStaff | FigureKind::InventionPatents => {
                10_000_000
            }
            // Money: 10^18 fen is 10^16 yuan, far above any enterprise.
            _ => 1_000_000_000_000_000_000,
        }
    }

    /// Unit for explanations.
    pub fn unit(self) -> &'static str {
        match self {
            FigureKind::RevenueFen
            | FigureKind::RdExpenseFen
            | FigureKind::RdDomesticExpenseFen
            | FigureKind::HighTechProductRevenueFen => "fen",
            FigureKind::Employees | FigureKind::StStaff => "people",
            FigureKind::InventionPatents => "patents",
            FigureKind::CoreIpOwned | FigureKind::MajorIncident => "flag",
            _ => "points",
        }
    }
}

/// `qilu.registry.v1.FigureSource.FIGURE_SOURCE_ENTERPRISE_DECLARATION`: the only source an
/// enterprise token may write.
pub const SOURCE_ENTERPRISE_DECLARATION: i32 = 1;

/// The name of a `qilu.registry.v1.FigureSource` number without its prefix (e.g.
/// `AUDITED_STATEMENT`), or `None` for UNSPECIFIED and unknown numbers (both refused on write).
pub fn source_name(code: i32) -> Option<&'static str> {
    Some(match code {
        1 => "ENTERPRISE_DECLARATION",
        2 => "AUDITED_STATEMENT",
        3 => "TAX_RECORD",
        4 => "STATISTICS_BUREAU",
        5 => "HIGH_TECH_ANNUAL_REPORT",
        6 => "RECOGNITION_REVIEW",
        7 => "BULK_IMPORT",
        8 => "OFFICER_ENTRY",
        _ => return None,
    })
}

/// Longest `reference` of a figure (characters), per the contract.
pub const MAX_REFERENCE_CHARS: usize = 500;

/// Pairs `(part, whole)` where the part is never above the whole (the contract's "never above"
/// rules on `AnnualFigures`).
pub const PART_OF: [(FigureKind, FigureKind); 3] = [
    (FigureKind::RdDomesticExpenseFen, FigureKind::RdExpenseFen),
    (
        FigureKind::HighTechProductRevenueFen,
        FigureKind::RevenueFen,
    ),
    (FigureKind::StStaff, FigureKind::Employees),
];

impl FigureKind {
    /// The unit as the contract's `FigureUsed.unit` names it: `fen`, `persons`, `points`,
    /// `count` or `flag`.
    pub fn contract_unit(self) -> &'static str {
        match self.unit() {
            "people" => "persons",
            "patents" => "count",
            other => other,
        }
    }
}

/// One reported figure with its provenance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reported {
    /// The value (fen, headcount, points; flags 0 or 1).
    pub value: i64,
    /// `qilu.registry.v1.FigureSource` number.
    pub source: i32,
    /// Free-text reference (document number, report id).
    pub reference: String,
    /// When this figure was last set, µs.
    pub update_time_us: i64,
}

/// All figures of one enterprise for one year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnnualFigures {
    /// Enterprise USCC.
    pub uscc: String,
    /// Calendar year the figures describe.
    pub year: i32,
    /// Reported figures; an absent kind was never reported.
    pub figures: BTreeMap<FigureKind, Reported>,
    /// First recorded, µs.
    pub create_time_us: i64,
    /// Last changed, µs.
    pub update_time_us: i64,
    /// Optimistic-concurrency version.
    pub version: i64,
}

impl AnnualFigures {
    /// Resource name `enterprises/{uscc}/annualFigures/{year}`.
    pub fn name(&self) -> String {
        format!("enterprises/{}/annualFigures/{}", self.uscc, self.year)
    }

    /// A figure's value, if reported.
    pub fn value(&self, kind: FigureKind) -> Option<i64> {
        self.figures.get(&kind).map(|r| r.value)
    }

    /// The contract's "never above" rules ([`PART_OF`]) on this record, after writing the
    /// figures `written`: every part above its whole, blamed on the written figure (the part,
    /// or the whole when only the whole changed).
    pub fn check_parts(&self, written: &[FigureKind]) -> Result<(), FiguresRefused> {
        let above: Vec<PartAboveWhole> = PART_OF
            .iter()
            .filter_map(|&(part, whole)| {
                let (p, w) = (self.value(part)?, self.value(whole)?);
                (p > w).then_some(PartAboveWhole {
                    blamed: if written.contains(&part) { part } else { whole },
                    part,
                    part_value: p,
                    whole,
                    whole_value: w,
                })
            })
            .collect();
        if above.is_empty() {
            Ok(())
        } else {
            Err(FiguresRefused(above))
        }
    }
}

/// A part reported above its whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartAboveWhole {
    /// The figure the caller is told to correct.
    pub blamed: FigureKind,
    /// The part.
    pub part: FigureKind,
    /// Its value.
    pub part_value: i64,
    /// The whole.
    pub whole: FigureKind,
    /// Its value.
    pub whole_value: i64,
}

/// Why a figures record cannot be written: parts above their wholes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiguresRefused(pub Vec<PartAboveWhole>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_above_its_whole_is_blamed_on_the_written_figure() {
        let with = |values: &[(FigureKind, i64)]| AnnualFigures {
            uscc: "X".into(),
            year: 2025,
            figures: values
                .iter()
                .map(|&(k, value)| {
                    let r = Reported {
                        value,
                        source: 1,
                        reference: String::new(),
                        update_time_us: 0,
                    };
                    (k, r)
                })
                .collect(),
            create_time_us: 0,
            update_time_us: 0,
            version: 1,
        };
        let rd = FigureKind::RdExpenseFen;
        let domestic = FigureKind::RdDomesticExpenseFen;
        assert_eq!(
            with(&[(rd, 10), (domestic, 10)]).check_parts(&[domestic]),
            Ok(())
        );
        assert_eq!(with(&[(domestic, 11)]).check_parts(&[domestic]), Ok(()));
        let Err(FiguresRefused(above)) = with(&[(rd, 10), (domestic, 11)]).check_parts(&[rd])
        else {
            panic!("11 of 10 must be refused");
        };
        assert_eq!(above.len(), 1);
        assert_eq!(
            (above[0].blamed, above[0].part_value, above[0].whole_value),
            (rd, 11, 10)
        );
        let Err(FiguresRefused(above)) =
            with(&[(rd, 10), (domestic, 11)]).check_parts(&[domestic, rd])
        else {
            panic!("11 of 10 must be refused");
        };
        assert_eq!(above[0].blamed, domestic);
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for k in FigureKind::ALL {
            assert_eq!(FigureKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(FigureKind::parse("profit"), None);
    }

    #[test]
    fn sources_are_named_and_unknown_ones_refused() {
        assert_eq!(
            source_name(SOURCE_ENTERPRISE_DECLARATION),
            Some("ENTERPRISE_DECLARATION")
        );
        assert_eq!(source_name(8), Some("OFFICER_ENTRY"));
        assert_eq!(source_name(0), None);
        assert_eq!(source_name(9), None);
    }

    #[test]
    fn contract_units_use_the_contract_words() {
        assert_eq!(FigureKind::StStaff.contract_unit(), "persons");
        assert_eq!(FigureKind::InventionPatents.contract_unit(), "count");
        assert_eq!(FigureKind::RevenueFen.contract_unit(), "fen");
        assert_eq!(FigureKind::MajorIncident.contract_unit(), "flag");
        assert_eq!(FigureKind::InnovationIpPoints.contract_unit(), "points");
    }
}
