//! Green innovative industrial clusters (绿色创新型产业集群): members, the target scale they are to
//! reach, where that target comes from, and how progress towards it is judged. Pure: the
//! handler loads the cluster, the policy target and the members' figures and passes them in.
//!
//! Progress rules (the contract's, made exact):
//! - revenue = Σ over members of each member's latest revenue figure no later than the
//!   requested year; a member without one adds 0 and is named as missing;
//! - `as_of_year` = the latest year any counted figure is from (0 when none);
//! - basis points = ⌊revenue × 10,000 ÷ target⌋ in i128 (a 0 target counts as reached, 10,000);
//! - reached ⇔ revenue ≥ target;
//! - on track ⇔ reached, or (`as_of_year` ≤ target year and revenue ÷ target ≥ the straight-line
//!   share of time elapsed, (as_of − start) ÷ (target year − start), clamped to [0, 1]),
//!   compared exactly as `revenue × span ≥ target × elapsed`. A target year not after the start
//!   year expects the whole target at once; with no figure at all nothing is on track unless
//!   already reached. Judged at `as_of_year` (the data's year), never at the server's clock.

use std::collections::HashMap;

use serde::Serialize;

/// Longest description (characters), per the contract.
pub const MAX_DESCRIPTION_CHARS: usize = 4000;
/// Most members a cluster may list, per the contract.
pub const MAX_MEMBERS: usize = 10_000;
/// `target_source` when the cluster sets its own scale and year.
pub const SOURCE_CLUSTER: &str = "cluster";
/// Basis points in a whole.
pub const BASIS_POINTS: i64 = 10_000;

/// The fields a caller sets on a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterFields {
    /// Name shown to people (trimmed, non-empty).
    pub display_name: String,
    /// `qilu.common.v1.GreenCategory` number, never 0.
    pub green_category: i32,
    /// Free text.
    pub description: String,
    /// Member USCCs, sorted and unique; each exists in the registry.
    pub members: Vec<String>,
    /// Own target scale in fen (> 0), or follow the policy target.
    pub target_scale_fen: Option<i64>,
    /// Own target year, or follow the policy target.
    pub target_year: Option<i32>,
    /// Year the cluster was established: the start of its straight-line progress path.
    pub start_year: i32,
}

/// A cluster as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cluster {
    /// The id in `clusters/{id}`.
    pub id: String,
    /// Caller-set fields.
    #[serde(flatten)]
    pub fields: ClusterFields,
    /// Creation time, µs.
    pub create_time_us: i64,
    /// Last change, µs.
    pub update_time_us: i64,
    /// Optimistic-concurrency version.
    pub version: i64,
}

impl Cluster {
    /// Resource name `clusters/{id}`.
    pub fn name(&self) -> String {
        cluster_name(&self.id)
    }

    /// AIP-154 etag.
    pub fn etag(&self) -> String {
        super::enterprise::etag_of(&self.name(), self.version)
    }

    /// Whether `uscc` is a member.
    pub fn has_member(&self, uscc: &str) -> bool {
        self.fields
            .members
            .binary_search_by(|m| m.as_str().cmp(uscc))
            .is_ok()
    }
}

/// Resource name of a cluster.
pub fn cluster_name(id: &str) -> String {
    format!("clusters/{id}")
}

/// The CLUSTER_SCALE policy target a cluster falls back on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDefault {
    /// `policyTargets/{id}`.
    pub name: String,
    /// Scale in fen.
    pub value_fen: i64,
    /// Year by which to reach it (0 when the target names none).
    pub target_year: i32,
}

/// The target a cluster is measured against, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveTarget {
    /// Scale in fen.
    pub scale_fen: i64,
    /// Year by which to reach it.
    pub year: i32,
    /// [`SOURCE_CLUSTER`] when both come from the cluster, else the policy target's name
    /// (it supplied at least one of the two).
    pub source: String,
}

/// The cluster's own scale and year where set, the policy target's otherwise; `None` when
/// something is left that neither gives (no policy target in force, or one without a year).
pub fn effective_target(
    scale_fen: Option<i64>,
    year: Option<i32>,
    policy: Option<&PolicyDefault>,
) -> Option<EffectiveTarget> {
    if let (Some(scale_fen), Some(year)) = (scale_fen, year) {
        return Some(EffectiveTarget {
            scale_fen,
            year,
            source: SOURCE_CLUSTER.to_string(),
        });
    }
    let policy = policy?;
    let year = match year {
        Some(y) => y,
        None if policy.target_year != 0 => policy.target_year,
        None => return None,
    };
    Some(EffectiveTarget {
        scale_fen: scale_fen.unwrap_or(policy.value_fen),
        year,
        source: policy.name.clone(),
    })
}

/// Why a cluster cannot be written as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterRefused {
    /// Its own target year is before its start year.
    TargetBeforeStart {
        /// The target year.
        target_year: i32,
        /// The start year.
        start_year: i32,
    },
    /// No target resolves: the cluster sets no complete target and no CLUSTER_SCALE policy
    /// target with a year is in force for `year`.
    NoTarget {
        /// The cluster's name.
        name: String,
        /// The year whose policy target was looked up.
        year: i32,
    },
}

impl ClusterFields {
    /// Rules between fields: an own target year is not before the start year.
    pub fn check(&self) -> Result<(), ClusterRefused> {
        match self.target_year {
            Some(target_year) if target_year < self.start_year => {
                Err(ClusterRefused::TargetBeforeStart {
                    target_year,
                    start_year: self.start_year,
                })
            }
            _ => Ok(()),
        }
    }

    /// `target`, the effective target resolved for these fields, or why there is none (the
    /// policy year looked up is the own target year, else `current_year`).
    pub fn require_target(
        &self,
        name: String,
        target: Option<EffectiveTarget>,
        current_year: i32,
    ) -> Result<EffectiveTarget, ClusterRefused> {
        target.ok_or_else(|| self.no_target(name, current_year))
    }

    /// The refusal for these fields when no target resolves.
    pub fn no_target(&self, name: String, current_year: i32) -> ClusterRefused {
        ClusterRefused::NoTarget {
            name,
            year: self.target_year.unwrap_or(current_year),
        }
    }
}

/// One member's counted revenue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRevenue {
    /// USCC.
    pub uscc: String,
    /// Fiscal year of the figure.
    pub year: i32,
    /// Revenue in fen.
    pub revenue_fen: i64,
}

/// A cluster's progress, computed exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Latest year of any counted figure; 0 when none.
    pub as_of_year: i32,
    /// Members.
    pub member_count: usize,
    /// Members with a counted figure, in member order.
    pub reporting: Vec<MemberRevenue>,
    /// Members without any revenue figure, in member order.
    pub missing: Vec<String>,
    /// Σ revenue, exact.
    pub revenue_fen: i128,
    /// Target scale in fen.
    pub target_scale_fen: i64,
    /// Target year.
    pub target_year: i32,
    /// Start of the straight-line path.
    pub start_year: i32,
    /// ⌊revenue × 10,000 ÷ target⌋.
    pub progress_basis_points: i128,
    /// revenue ≥ target.
    pub target_reached: bool,
    /// See the module doc.
    pub on_track: bool,
}

/// Computes progress from the members (sorted), each member's latest revenue `(year, fen)` as
/// the store found it, and the effective target.
pub fn progress(
    members: &[String],
    latest: &HashMap<String, (i32, i64)>,
    target: &EffectiveTarget,
    start_year: i32,
) -> Progress {
    let mut reporting = Vec::new();
    let mut missing = Vec::new();
    let mut revenue: i128 = 0;
    let mut as_of_year = 0;
    for uscc in members {
        match latest.get(uscc) {
            Some(&(year, fen)) => {
                revenue += i128::from(fen);
                as_of_year = as_of_year.max(year);
                reporting.push(MemberRevenue {
                    uscc: uscc.clone(),
                    year,
                    revenue_fen: fen,
                });
            }
            None => missing.push(uscc.clone()),
        }
    }
    let target_fen = i128::from(target.scale_fen);
    let target_reached = revenue >= target_fen;
    let progress_basis_points = if target_fen <= 0 {
        i128::from(BASIS_POINTS)
    } else {
        revenue * i128::from(BASIS_POINTS) / target_fen
    };
    let on_track = target_reached
        || (!reporting.is_empty()
            && on_straight_line(revenue, target_fen, start_year, target.year, as_of_year));
    Progress {
        as_of_year,
        member_count: members.len(),
        reporting,
        missing,
        revenue_fen: revenue,
        target_scale_fen: target.scale_fen,
        target_year: target.year,
        start_year,
        progress_basis_points,
        target_reached,
        on_track,
    }
}

/// Whether `revenue ÷ target` is at least the share of time elapsed from `start` to
/// `target_year` at `as_of`, with the target year not yet passed.
fn on_straight_line(revenue: i128, target: i128, start: i32, target_year: i32, as_of: i32) -> bool {
    if as_of > target_year {
        return false;
    }
    let span = i128::from(target_year) - i128::from(start);
    if span <= 0 {
        // Due at once: only reaching it is on track.
        return revenue >= target;
    }
    let elapsed = (i128::from(as_of) - i128::from(start)).clamp(0, span);
    revenue * span >= target * elapsed
}

/// `fen` as billions of yuan with up to two decimals, rounded down: 6,240,000,000,000 fen → "62.4".
pub fn bn_yuan(fen: i128) -> String {
    // 1 bn yuan = 10^9 yuan = 10^11 fen; hundredths of a bn = 10^9 fen.
    let hundredths = fen / 1_000_000_000;
    let whole = hundredths / 100;
    let frac = (hundredths % 100).abs();
    let text = format!("{whole}.{frac:02}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Basis points as a percentage with two decimals: 6240 → "62.40%".
pub fn percent(basis_points: i128) -> String {
    format!("{}.{:02}%", basis_points / 100, (basis_points % 100).abs())
}

impl Progress {
    /// A sentence a person can read, e.g. "62.4 bn of 100 bn yuan (62.40%) as of 2023; target
    /// 2023; on track".
    pub fn explanation(&self) -> String {
        let target = bn_yuan(i128::from(self.target_scale_fen));
        let mut out = if self.reporting.is_empty() {
            format!(
                "no member has a revenue figure; target {target} bn yuan by {}",
                self.target_year
            )
        } else {
            format!(
                "{} bn of {target} bn yuan ({}) as of {}; target {}",
                bn_yuan(self.revenue_fen),
                percent(self.progress_basis_points),
                self.as_of_year,
                self.target_year
            )
        };
        let verdict = if self.target_reached {
            "reached".to_string()
        } else if self.reporting.is_empty() {
            "not on track (no figures)".to_string()
        } else if self.as_of_year > self.target_year {
            "target year passed unreached".to_string()
        } else if self.on_track {
            format!(
                "on track (straight line from {} to {})",
                self.start_year, self.target_year
            )
        } else {
            format!(
                "behind the straight line from {} to {}",
                self.start_year, self.target_year
            )
        };
        out.push_str("; ");
        out.push_str(&verdict);
        if !self.missing.is_empty() {
            out.push_str(&format!(
                "; {} of {} members without a revenue figure",
                self.missing.len(),
                self.member_count
            ));
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// 10 bn yuan, the 2021 opinions' cluster scale, in fen.
    const TEN_BN: i64 = 1_000_000_000_000;

    fn target(scale_fen: i64, year: i32) -> EffectiveTarget {
        EffectiveTarget {
            scale_fen,
            year,
            source: SOURCE_CLUSTER.into(),
        }
    }

    fn members(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("M{i:02}")).collect()
    }

    fn latest(rows: &[(&str, i32, i64)]) -> HashMap<String, (i32, i64)> {
        rows.iter()
            .map(|(u, y, v)| (u.to_string(), (*y, *v)))
            .collect()
    }

    #[test]
    fn an_own_target_year_before_the_start_or_no_target_at_all_is_refused() {
        let fields = |target_year: Option<i32>| ClusterFields {
            display_name: "氢能".into(),
            green_category: 1,
            description: String::new(),
            members: Vec::new(),
            target_scale_fen: None,
            target_year,
            start_year: 2024,
        };
        assert_eq!(fields(Some(2024)).check(), Ok(()));
        assert_eq!(fields(None).check(), Ok(()));
        assert_eq!(
            fields(Some(2023)).check(),
            Err(ClusterRefused::TargetBeforeStart {
                target_year: 2023,
                start_year: 2024
            })
        );
        let found = fields(None).require_target("clusters/h".into(), Some(target(5, 2030)), 2026);
        assert_eq!(found, Ok(target(5, 2030)));
        // The year looked up is the cluster's own, else the current programme year.
        for (own, year) in [(Some(2030), 2030), (None, 2026)] {
            assert_eq!(
                fields(own).require_target("clusters/h".into(), None, 2026),
                Err(ClusterRefused::NoTarget {
                    name: "clusters/h".into(),
                    year
                })
            );
        }
    }

    #[test]
    fn the_cluster_target_wins_then_the_policy_fills_the_gaps() {
        let policy = PolicyDefault {
            name: "policyTargets/cluster-scale-2021".into(),
            value_fen: TEN_BN,
            target_year: 2023,
        };
        assert_eq!(
            effective_target(Some(5), Some(2030), Some(&policy)),
            Some(target(5, 2030))
        );
        assert_eq!(
            effective_target(Some(5), Some(2030), None),
            Some(target(5, 2030))
        );
        let from_policy = effective_target(None, None, Some(&policy)).unwrap();
        assert_eq!((from_policy.scale_fen, from_policy.year), (TEN_BN, 2023));
        assert_eq!(from_policy.source, "policyTargets/cluster-scale-2021");
        let mixed = effective_target(Some(7), None, Some(&policy)).unwrap();
        assert_eq!((mixed.scale_fen, mixed.year), (7, 2023));
        assert_eq!(mixed.source, "policyTargets/cluster-scale-2021");
        let mixed = effective_target(None, Some(2025), Some(&policy)).unwrap();
        assert_eq!((mixed.scale_fen, mixed.year), (TEN_BN, 2025));
        assert_eq!(effective_target(None, None, None), None);
        assert_eq!(effective_target(Some(7), None, None), None);
        let yearless = PolicyDefault {
            target_year: 0,
            ..policy
        };
        assert_eq!(effective_target(Some(7), None, Some(&yearless)), None);
        assert!(effective_target(None, Some(2024), Some(&yearless)).is_some());
    }

    #[test]
    fn revenue_sums_latest_figures_and_names_the_missing() {
        let m = members(3);
        let p = progress(
            &m,
            &latest(&[
                ("M00", 2023, 400_000_000_000),
                ("M02", 2022, 224_000_000_000),
            ]),
            &target(TEN_BN, 2023),
            2021,
        );
        assert_eq!(p.as_of_year, 2023);
        assert_eq!(p.member_count, 3);
        assert_eq!(p.reporting.len(), 2);
        assert_eq!(p.missing, vec!["M01".to_string()]);
        assert_eq!(p.revenue_fen, 624_000_000_000);
        assert_eq!(p.progress_basis_points, 6240);
        assert!(!p.target_reached);
        // As of 2023 = the target year: the straight line expects 100%.
        assert!(!p.on_track);
        assert_eq!(
            p.explanation(),
            "6.24 bn of 10 bn yuan (62.40%) as of 2023; target 2023; behind the straight line \
             from 2021 to 2023; 1 of 3 members without a revenue figure"
        );
    }

    #[test]
    fn basis_points_round_down_and_reaching_is_at_the_target_exactly() {
        let m = members(1);
        let cases: &[(i64, i64, i128, bool)] = &[
            // (revenue, target, basis points, reached)
            (TEN_BN, TEN_BN, 10_000, true),
            (TEN_BN - 1, TEN_BN, 9_999, false),
            (TEN_BN + 1, TEN_BN, 10_000, true),
            (2 * TEN_BN, TEN_BN, 20_000, true),
            (0, TEN_BN, 0, false),
            (1, 3, 3_333, false),
            (2, 3, 6_666, false),
            (0, 0, 10_000, true),
        ];
        for &(revenue, scale, bp, reached) in cases {
            let p = progress(
                &m,
                &latest(&[("M00", 2022, revenue)]),
                &target(scale, 2023),
                2021,
            );
            assert_eq!(p.progress_basis_points, bp, "{revenue}/{scale}");
            assert_eq!(p.target_reached, reached, "{revenue}/{scale}");
        }
    }

    #[test]
    fn sums_beyond_i64_stay_exact() {
        let m = members(20);
        let rows: Vec<(String, (i32, i64))> = m
            .iter()
            .map(|u| (u.clone(), (2023, 1_000_000_000_000_000_000)))
            .collect();
        let p = progress(&m, &rows.into_iter().collect(), &target(TEN_BN, 2025), 2021);
        assert_eq!(p.revenue_fen, 20_000_000_000_000_000_000);
        assert!(p.revenue_fen > i128::from(i64::MAX));
        assert_eq!(p.progress_basis_points, 200_000_000_000);
        assert!(p.target_reached && p.on_track);
    }

    #[test]
    fn on_track_follows_the_straight_line_at_just_under_at_and_over() {
        // Start 2021, target 2025, as of 2023: half the time elapsed, so half the target.
        let m = members(1);
        let half = TEN_BN / 2;
        let cases: &[(i64, i32, bool)] = &[
            (half - 1, 2023, false),
            (half, 2023, true),
            (half + 1, 2023, true),
            // A quarter of the way at 2022.
            (TEN_BN / 4 - 1, 2022, false),
            (TEN_BN / 4, 2022, true),
            // Nothing is expected in the start year, or before it.
            (0, 2021, true),
            (0, 2019, true),
            // In the target year the whole target is expected.
            (TEN_BN - 1, 2025, false),
            (TEN_BN, 2025, true),
            // Passed unreached is never on track; reached stays so.
            (TEN_BN - 1, 2026, false),
            (TEN_BN, 2026, true),
        ];
        for &(revenue, as_of, on_track) in cases {
            let p = progress(
                &m,
                &latest(&[("M00", as_of, revenue)]),
                &target(TEN_BN, 2025),
                2021,
            );
            assert_eq!(p.as_of_year, as_of);
            assert_eq!(p.on_track, on_track, "{revenue} as of {as_of}");
        }
    }

    #[test]
    fn a_target_year_not_after_the_start_expects_everything_at_once() {
        let m = members(1);
        for start in [2023, 2026] {
            let behind = progress(
                &m,
                &latest(&[("M00", 2023, TEN_BN - 1)]),
                &target(TEN_BN, 2023),
                start,
            );
            assert!(!behind.on_track, "start {start}");
            let done = progress(
                &m,
                &latest(&[("M00", 2023, TEN_BN)]),
                &target(TEN_BN, 2023),
                start,
            );
            assert!(done.on_track, "start {start}");
        }
    }

    #[test]
    fn no_figures_is_as_of_zero_and_not_on_track() {
        let m = members(2);
        let p = progress(&m, &HashMap::new(), &target(TEN_BN, 2023), 2021);
        assert_eq!(p.as_of_year, 0);
        assert_eq!(p.revenue_fen, 0);
        assert_eq!(p.missing.len(), 2);
        assert!(!p.on_track && !p.target_reached);
        assert_eq!(
            p.explanation(),
            "no member has a revenue figure; target 10 bn yuan by 2023; not on track (no figures); \
             2 of 2 members without a revenue figure"
        );
        let empty = progress(&[], &HashMap::new(), &target(TEN_BN, 2023), 2021);
        assert_eq!(empty.member_count, 0);
        assert!(!empty.on_track);
    }

    #[test]
    fn amounts_read_in_billions_of_yuan() {
        assert_eq!(bn_yuan(1_000_000_000_000), "10");
        assert_eq!(bn_yuan(624_000_000_000), "6.24");
        assert_eq!(bn_yuan(6_240_000_000_000), "62.4");
        assert_eq!(bn_yuan(10_000_000_000_000), "100");
        assert_eq!(bn_yuan(5_000_000_000), "0.05");
        assert_eq!(bn_yuan(999_999_999), "0");
        assert_eq!(percent(6240), "62.40%");
        assert_eq!(percent(10_000), "100.00%");
        assert_eq!(percent(5), "0.05%");
    }

    #[test]
    fn membership_is_looked_up_in_sorted_members() {
        let c = Cluster {
            id: "h".into(),
            fields: ClusterFields {
                display_name: "x".into(),
                green_category: 3,
                description: String::new(),
                members: vec!["A".into(), "C".into()],
                target_scale_fen: None,
                target_year: None,
                start_year: 2021,
            },
            create_time_us: 0,
            update_time_us: 0,
            version: 1,
        };
        assert!(c.has_member("A") && c.has_member("C"));
        assert!(!c.has_member("B"));
    }
}
