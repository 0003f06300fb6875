//! Programme statistics as the API asks for and shows them.

use qilu_common::ApiError;
use qilu_common::error::FieldViolation;
use qilu_proto::common::GreenCategory;
use qilu_proto::registry as pb;

use crate::domain::policy::{MAX_YEAR, MIN_YEAR};
use crate::domain::statistics::{self as stats, NewHighTechCounts};

/// The year asked for: required, within the years policy targets may cover.
pub fn parse_year(year: i32) -> Result<i32, ApiError> {
    if year == 0 {
        return Err(ApiError::invalid(
            "year",
            "REQUIRED",
            "the programme year is required",
        ));
    }
    if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
        return Err(ApiError::InvalidArgument(vec![FieldViolation::new(
            "year",
            "OUT_OF_RANGE",
            format!("{year} is outside {MIN_YEAR}-{MAX_YEAR}"),
        )]));
    }
    Ok(year)
}

/// Every green category of the contract, by number.
pub fn green_categories() -> Vec<i32> {
    // The enum's values are contiguous from 1: a category added to the contract shows up here.
    (1..)
        .map_while(|n| GreenCategory::try_from(n).ok().map(|_| n))
        .collect()
}

/// The year's new high-tech enterprises against `target`.
pub fn new_high_tech_to_proto(
    counts: NewHighTechCounts,
    target: pb::TargetValue,
) -> pb::NewHighTechEnterprises {
    pb::NewHighTechEnterprises {
        count: counts.total,
        target_fill_basis_points: stats::fill_basis_points(counts.total, target.value),
        target: Some(target),
        by_zone: counts
            .by_zone
            .into_iter()
            .map(|z| pb::ZoneCount {
                zone: z.zone,
                display_name: z.display_name,
                count: z.count,
            })
            .collect(),
        by_green_category: counts
            .by_green_category
            .into_iter()
            .map(|(green_category, count)| pb::GreenCategoryCount {
                green_category,
                count,
            })
            .collect(),
        by_zone_and_green_category: counts
            .cells
            .into_iter()
            .map(|c| pb::ZoneGreenCategoryCount {
                zone: c.zone,
                green_category: c.green_category,
                count: c.count,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_year_is_required_and_within_the_policy_years() {
        assert!(parse_year(0).is_err());
        assert!(parse_year(MIN_YEAR - 1).is_err());
        assert_eq!(parse_year(MIN_YEAR).ok(), Some(MIN_YEAR));
        assert_eq!(parse_year(2024).ok(), Some(2024));
        assert_eq!(parse_year(MAX_YEAR).ok(), Some(MAX_YEAR));
        assert!(parse_year(MAX_YEAR + 1).is_err());
    }

    #[test]
    fn every_green_category_but_unspecified_is_known() {
        assert_eq!(green_categories(), [1, 2, 3, 4, 5, 6]);
    }
}
