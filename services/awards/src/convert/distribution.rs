//! Field distributions: the `GetFieldDistribution` request parsed into a scope, and a year's
//! distribution as the contract shows it.

use qilu_common::ApiError;
use qilu_proto::awards as pb;

use crate::domain::distribution::YearRow;
use crate::domain::ids::ProgramId;
use crate::domain::program::{self, Kind};

/// Widest year range.
const MAX_YEARS: i32 = 50;

/// What a `GetFieldDistribution` asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One program's latest allocation.
    Program(ProgramId),
    /// A range of programme years.
    Years {
        /// First year.
        start: i32,
        /// Last year (at most `MAX_YEARS` after `start`).
        end: i32,
        /// Only programs of this kind.
        kind: Option<Kind>,
        /// Count ALLOCATED and PUBLICIZED programs too, not only FINAL ones.
        include_provisional: bool,
    },
}

impl Scope {
    /// The scope of `req`; years within the programme years, in order, not too far apart.
    pub fn parse(req: &pb::GetFieldDistributionRequest) -> Result<Scope, ApiError> {
        match &req.scope {
            Some(pb::get_field_distribution_request::Scope::Program(name)) => {
                ProgramId::parse_name(name, "program")
                    .map(Scope::Program)
                    .map_err(ApiError::from)
            }
            Some(pb::get_field_distribution_request::Scope::Years(range)) => {
                // Programs only exist for these years, and inside them the range arithmetic
                // (the width, the year before the start) cannot overflow.
                for (field, year) in [
                    ("years.start_year", range.start_year),
                    ("years.end_year", range.end_year),
                ] {
                    if !program::YEARS.contains(&year) {
                        return Err(ApiError::invalid(
                            field,
                            "YEAR_OUT_OF_RANGE",
                            format!(
                                "programme years run from {} to {}",
                                program::YEARS.start(),
                                program::YEARS.end()
                            ),
                        ));
                    }
                }
                if range.end_year < range.start_year {
                    return Err(ApiError::invalid(
                        "years.end_year",
                        "BEFORE_START",
                        "end_year is before start_year",
                    ));
                }
                if range.end_year - range.start_year > MAX_YEARS {
                    return Err(ApiError::invalid(
                        "years.end_year",
                        "RANGE_TOO_WIDE",
                        format!("at most {MAX_YEARS} years after start_year"),
                    ));
                }
                let kind = match req.kind {
                    0 => None,
                    k => Some(Kind::from_code(k).ok_or_else(|| {
                        ApiError::invalid("kind", "UNKNOWN", "not a ProgramKind")
                    })?),
                };
                Ok(Scope::Years {
                    start: range.start_year,
                    end: range.end_year,
                    kind,
                    include_provisional: req.include_provisional,
                })
            }
            None => Err(ApiError::invalid(
                "scope",
                "REQUIRED",
                "set program or years",
            )),
        }
    }
}

/// A year's distribution as the contract shows it.
pub fn year_to_proto(r: YearRow) -> pb::YearDistribution {
    pb::YearDistribution {
        year: r.year,
        programs: r.programs,
        total_count: r.total_count,
        total_amount_fen: r.total_amount_fen,
        fields: r
            .fields
            .into_iter()
            .map(|f| pb::FieldShare {
                field: f.field,
                priority: f.priority,
                applications: f.applications,
                count: f.count,
                amount_fen: f.amount_fen,
                count_share_basis_points: f.count_share_bp,
                amount_share_basis_points: f.amount_share_bp,
                target_share_basis_points: f.target_share_bp,
                has_previous_year: f.has_previous_year,
                count_share_change_basis_points: f.count_share_change_bp,
                amount_share_change_basis_points: f.amount_share_change_bp,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn years(start: i32, end: i32) -> pb::GetFieldDistributionRequest {
        pb::GetFieldDistributionRequest {
            scope: Some(pb::get_field_distribution_request::Scope::Years(
                pb::YearRange {
                    start_year: start,
                    end_year: end,
                },
            )),
            ..Default::default()
        }
    }

    #[test]
    fn year_ranges_are_ordered_bounded_and_within_the_programme_years() {
        assert!(matches!(
            Scope::parse(&years(2024, 2026)),
            Ok(Scope::Years {
                start: 2024,
                end: 2026,
                kind: None,
                ..
            })
        ));
        for (start, end, reason) in [
            (2026, 2024, "BEFORE_START"),
            (2000, 2000 + MAX_YEARS + 1, "RANGE_TOO_WIDE"),
            (
                *program::YEARS.end() + 1,
                *program::YEARS.end() + 1,
                "YEAR_OUT_OF_RANGE",
            ),
        ] {
            let Err(ApiError::InvalidArgument(v)) = Scope::parse(&years(start, end)) else {
                panic!("{start}-{end} must be refused");
            };
            assert_eq!(v[0].reason, reason);
        }
        assert!(Scope::parse(&pb::GetFieldDistributionRequest::default()).is_err());
    }
}
