//! Programme statistics: the pure counting and fill arithmetic behind `GetProgrammeStatistics`.
//! The store hands over counts already grouped by (zone, green category); this module decides
//! which of them count, lays them out by zone, by category and by cell, and measures counts
//! against their policy targets. Exact integer arithmetic only; never I/O.
//!
//! What counts (the contract, `statistics.proto`): an enterprise with a zone and a green
//! category whose first high-tech certificate was issued in the year. "A zone" here means a
//! registered zone, so the total always equals the sum over zones, over categories and over
//! cells: a count nobody can attribute to a zone is not shown as if it were in one.

use std::collections::BTreeMap;

/// 10,000 basis points = 100%.
pub const BASIS_POINTS: i64 = 10_000;

/// `count` as a share of `target` in basis points, rounded down; 0 when there is no target
/// (`target <= 0`) or nothing counted. Exact: computed in i128 and saturated to i64, so a
/// count far beyond its target cannot overflow.
pub fn fill_basis_points(count: i64, target: i64) -> i64 {
    if target <= 0 || count <= 0 {
        return 0;
    }
    let bp = i128::from(count) * i128::from(BASIS_POINTS) / i128::from(target);
    i64::try_from(bp).unwrap_or(i64::MAX)
}

/// New high-tech enterprises sharing one zone and one green category, as the store counted
/// them (`zone` is the enterprise's `zones/{id}` field as stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    /// `zones/{id}`.
    pub zone: String,
    /// `GreenCategory` number.
    pub green_category: i32,
    /// Enterprises.
    pub count: i64,
}

/// A registered zone as statistics show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneRef {
    /// `zones/{id}`.
    pub name: String,
    /// Official name.
    pub display_name: String,
}

/// One zone's count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneCount {
    /// `zones/{id}`.
    pub zone: String,
    /// Official name.
    pub display_name: String,
    /// Enterprises.
    pub count: i64,
}

/// New high-tech enterprises of a year laid out for the contract.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewHighTechCounts {
    /// Every counted enterprise.
    pub total: i64,
    /// Every registered zone, by name, 0 when none.
    pub by_zone: Vec<ZoneCount>,
    /// Every category in `always_listed` (0 when none) and any other with a count, by number.
    pub by_green_category: Vec<(i32, i64)>,
    /// Non-zero (zone, category) cells, by zone name then category.
    pub cells: Vec<Cell>,
}

/// Lays out `cells` over the registered `zones`. Cells in a zone that is not registered, with
/// no green category (0 or below), or with no count are left out; repeated cells add up.
/// `always_listed` are the known green categories, listed even when nothing counts in them.
pub fn count_new_high_tech(
    zones: &[ZoneRef],
    cells: &[Cell],
    always_listed: &[i32],
) -> NewHighTechCounts {
    let registered: BTreeMap<&str, &ZoneRef> = zones.iter().map(|z| (z.name.as_str(), z)).collect();
    let mut by_cell: BTreeMap<(&str, i32), i64> = BTreeMap::new();
    for c in cells {
        if c.count <= 0 || c.green_category <= 0 || !registered.contains_key(c.zone.as_str()) {
            continue;
        }
        let slot = by_cell
            .entry((c.zone.as_str(), c.green_category))
            .or_insert(0);
        *slot = slot.saturating_add(c.count);
    }
    let mut by_zone: BTreeMap<&str, i64> = registered.keys().map(|z| (*z, 0)).collect();
    let mut by_category: BTreeMap<i32, i64> = always_listed
        .iter()
        .filter(|g| **g > 0)
        .map(|g| (*g, 0))
        .collect();
    let mut total: i64 = 0;
    for (&(zone, category), &count) in &by_cell {
        let z = by_zone.entry(zone).or_insert(0);
        *z = z.saturating_add(count);
        let g = by_category.entry(category).or_insert(0);
        *g = g.saturating_add(count);
        total = total.saturating_add(count);
    }
    NewHighTechCounts {
        total,
        by_zone: by_zone
            .into_iter()
            .filter_map(|(zone, count)| {
                registered.get(zone).map(|z| ZoneCount {
                    zone: z.name.clone(),
                    display_name: z.display_name.clone(),
                    count,
                })
            })
            .collect(),
        by_green_category: by_category.into_iter().collect(),
        cells: by_cell
            .into_iter()
            .map(|((zone, green_category), count)| Cell {
                zone: zone.to_string(),
                green_category,
                count,
            })
            .collect(),
    }
}

/// The first and last day of `year` as stored dates (`YYYY-MM-DD`, which compare as text on
/// both backends): a certificate issued on either counts for the year.
pub fn year_bounds(year: i32) -> (String, String) {
    (format!("{year:04}-01-01"), format!("{year:04}-12-31"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_is_basis_points_rounded_down_and_zero_without_a_target() {
        // (count, target, basis points)
        let cases = [
            (0, 1000, 0),
            (1, 1000, 10),
            (4, 1000, 40),
            (999, 1000, 9_990),
            (1000, 1000, 10_000),
            (1001, 1000, 10_010),
            (3, 200, 150),
            // 1/3 = 3333.33… → 3333; 2/3 = 6666.66… → 6666 (down, never up).
            (1, 3, 3_333),
            (2, 3, 6_666),
            // Just under, at and just over one basis point of a large target.
            (99, 1_000_000, 0),
            (100, 1_000_000, 1),
            (101, 1_000_000, 1),
            // No target: 0 whatever was counted.
            (5, 0, 0),
            (5, -1, 0),
            (0, 0, 0),
            // No overflow.
            (i64::MAX, 1, i64::MAX),
            (i64::MAX, i64::MAX, 10_000),
        ];
        for (count, target, bp) in cases {
            assert_eq!(fill_basis_points(count, target), bp, "{count} of {target}");
        }
    }

    fn zone(id: &str, display: &str) -> ZoneRef {
        ZoneRef {
            name: format!("zones/{id}"),
            display_name: display.into(),
        }
    }

    fn cell(zone: &str, green_category: i32, count: i64) -> Cell {
        Cell {
            zone: format!("zones/{zone}"),
            green_category,
            count,
        }
    }

    #[test]
    fn every_registered_zone_and_known_category_is_listed_and_cells_only_when_non_zero() {
        let zones = [
            zone("qingdao", "青岛"),
            zone("jinan", "济南"),
            zone("yantai", "烟台"),
        ];
        let cells = [
            cell("jinan", 3, 2),
            cell("qingdao", 3, 1),
            cell("jinan", 1, 1),
        ];
        let out = count_new_high_tech(&zones, &cells, &[1, 2, 3, 4, 5, 6]);
        assert_eq!(out.total, 4);
        let by_zone: Vec<(&str, &str, i64)> = out
            .by_zone
            .iter()
            .map(|z| (z.zone.as_str(), z.display_name.as_str(), z.count))
            .collect();
        assert_eq!(
            by_zone,
            [
                ("zones/jinan", "济南", 3),
                ("zones/qingdao", "青岛", 1),
                ("zones/yantai", "烟台", 0),
            ]
        );
        assert_eq!(
            out.by_green_category,
            [(1, 1), (2, 0), (3, 3), (4, 0), (5, 0), (6, 0)]
        );
        assert_eq!(
            out.cells,
            [
                cell("jinan", 1, 1),
                cell("jinan", 3, 2),
                cell("qingdao", 3, 1)
            ]
        );
    }

    #[test]
    fn unregistered_zones_no_category_and_empty_cells_do_not_count_and_repeats_add_up() {
        let zones = [zone("jinan", "济南")];
        let cells = [
            cell("jinan", 3, 2),
            cell("jinan", 3, 1),
            cell("weifang", 3, 7),
            cell("jinan", 0, 5),
            cell("jinan", -2, 5),
            cell("jinan", 4, 0),
            Cell {
                zone: String::new(),
                green_category: 3,
                count: 9,
            },
        ];
        let out = count_new_high_tech(&zones, &cells, &[3]);
        assert_eq!(out.total, 3);
        assert_eq!(out.by_zone.len(), 1);
        assert_eq!(out.by_zone[0].count, 3);
        assert_eq!(out.by_green_category, [(3, 3)]);
        assert_eq!(out.cells, [cell("jinan", 3, 3)]);
    }

    #[test]
    fn an_unknown_stored_category_still_adds_up_and_sums_agree() {
        let zones = [zone("jinan", "济南"), zone("qingdao", "青岛")];
        let cells = [cell("jinan", 9, 2), cell("qingdao", 1, 5)];
        let out = count_new_high_tech(&zones, &cells, &[1, 2]);
        assert_eq!(out.by_green_category, [(1, 5), (2, 0), (9, 2)]);
        let zone_sum: i64 = out.by_zone.iter().map(|z| z.count).sum();
        let category_sum: i64 = out.by_green_category.iter().map(|g| g.1).sum();
        let cell_sum: i64 = out.cells.iter().map(|c| c.count).sum();
        assert_eq!((zone_sum, category_sum, cell_sum), (7, 7, 7));
        assert_eq!(out.total, 7);
    }

    #[test]
    fn nothing_registered_lists_only_the_known_categories_at_zero() {
        let out = count_new_high_tech(&[], &[cell("jinan", 3, 2)], &[1, 2]);
        assert_eq!(out.total, 0);
        assert!(out.by_zone.is_empty() && out.cells.is_empty());
        assert_eq!(out.by_green_category, [(1, 0), (2, 0)]);
    }

    #[test]
    fn a_year_runs_from_the_first_of_january_to_the_last_of_december() {
        assert_eq!(
            year_bounds(2024),
            ("2024-01-01".to_string(), "2024-12-31".to_string())
        );
        // Bounds compare as text the way the stored dates do.
        let (from, to) = year_bounds(2024);
        for (date, inside) in [
            ("2023-12-31", false),
            ("2024-01-01", true),
            ("2024-06-30", true),
            ("2024-12-31", true),
            ("2025-01-01", false),
        ] {
            assert_eq!(
                date >= from.as_str() && date <= to.as_str(),
                inside,
                "{date}"
            );
        }
    }
}
