//! The final decision: any one veto (by rule or by expert) → VETOED whatever the scores; else
//! APPROVED when the aggregate score is at or above the programme threshold, else REJECTED.
//! The aggregate is the mean of the review totals, trimmed (one highest and one lowest dropped)
//! when there are five or more. Arithmetic is exact: the aggregate is the fraction
//! `score_sum / score_count`, compared with the threshold as `sum >= threshold × count`.
//! A decision carries everything needed to explain it years later.

use serde::{Deserialize, Serialize};

use super::review::VetoCategory;
use super::screening::Verdict;

/// Reviews at or above which the mean is trimmed (docs/design.md §5: "trimmed mean when ≥ 5
/// reviews").
pub const TRIM_FROM_REVIEWS: usize = 5;

/// Outcome (`DecisionOutcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    /// Approved.
    Approved,
    /// Rejected on score.
    Rejected,
    /// Vetoed (one-vote veto).
    Vetoed,
}

impl Outcome {
    /// The proto number.
    pub fn code(self) -> i32 {
        match self {
            Outcome::Approved => 1,
            Outcome::Rejected => 2,
            Outcome::Vetoed => 3,
        }
    }
}

/// Which path a veto came by (`VetoPath`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VetoPath {
    /// Rule screening.
    Rule,
    /// An expert.
    Expert,
}

/// One veto counted in a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VetoRecord {
    /// The path.
    pub path: VetoPath,
    /// For RULE: `rule-id @ vetoRuleSets/x vN`.
    pub rule: String,
    /// For EXPERT: the review name.
    pub review: String,
    /// For EXPERT: `experts/{id}`.
    pub expert: String,
    /// The category.
    pub category: VetoCategory,
    /// Evidence or the verdict's explanation.
    pub evidence: String,
}

/// One review total as the decision used it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScoreUsed {
    /// The review name.
    pub review: String,
    /// `experts/{id}`.
    pub expert: String,
    /// 0-100.
    pub total_points: i32,
    /// Dropped by trimming.
    pub trimmed: bool,
}

/// A submitted review as the decision sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmittedReview {
    /// The review name.
    pub review: String,
    /// `experts/{id}`.
    pub expert: String,
    /// 0-100.
    pub total_points: i32,
    /// The veto, if cast.
    pub veto: Option<(VetoCategory, String)>,
}

/// The approval threshold and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Threshold {
    /// 0-100 points.
    pub points: i32,
    /// The setting's key, version and source.
    pub source: String,
}

/// A self-explaining decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The outcome.
    pub outcome: Outcome,
    /// The round decided.
    pub review_round: i32,
    /// Every submitted review's total (empty for a rule veto).
    pub scores: Vec<ScoreUsed>,
    /// Whether the trimmed mean was used.
    pub trimmed: bool,
    /// Sum of the totals counted.
    pub score_sum: i64,
    /// Number of totals counted.
    pub score_count: i32,
    /// floor(1000 × sum / count).
    pub aggregate_score_millipoints: i64,
    /// The threshold, points.
    pub threshold_points: i32,
    /// Where it comes from.
    pub threshold_source: String,
    /// Every veto.
    pub vetoes: Vec<VetoRecord>,
    /// A sentence a person can read.
    pub explanation: String,
    /// The caller's `sub`, or `screening`.
    pub decided_by: String,
    /// µs.
    pub decide_time_us: i64,
}

/// The aggregate of review totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregate {
    /// Each review with whether it was dropped.
    pub scores: Vec<ScoreUsed>,
    /// Whether trimming applied.
    pub trimmed: bool,
    /// Sum of counted totals.
    pub sum: i64,
    /// Number counted.
    pub count: i32,
}

impl Aggregate {
    /// floor(1000 × sum / count), 0 when nothing is counted.
    pub fn millipoints(&self) -> i64 {
        if self.count == 0 {
            0
        } else {
            (self.sum * 1000).div_euclid(i64::from(self.count))
        }
    }

    /// Whether the exact mean is at or above `points`.
    pub fn reaches(&self, points: i32) -> bool {
        self.count > 0 && self.sum >= i64::from(points) * i64::from(self.count)
    }
}

/// Aggregates `reviews` (given in review-name order or any order): with five or more, the one
/// lowest total and the one highest are dropped; among equal totals the review whose name sorts
/// first is dropped.
pub fn aggregate(reviews: &[SubmittedReview]) -> Aggregate {
    let mut scores: Vec<ScoreUsed> = reviews
        .iter()
        .map(|r| ScoreUsed {
            review: r.review.clone(),
            expert: r.expert.clone(),
            total_points: r.total_points,
            trimmed: false,
        })
        .collect();
    scores.sort_by(|a, b| a.review.cmp(&b.review));
    let trimmed = scores.len() >= TRIM_FROM_REVIEWS;
    if trimmed {
        let lowest = (0..scores.len())
            .min_by(|&a, &b| {
                (scores[a].total_points, &scores[a].review)
                    .cmp(&(scores[b].total_points, &scores[b].review))
            })
            .unwrap_or(0);
        let highest = (0..scores.len())
            .filter(|&i| i != lowest)
            .min_by(|&a, &b| {
                (-scores[a].total_points, &scores[a].review)
                    .cmp(&(-scores[b].total_points, &scores[b].review))
            })
            .unwrap_or(0);
        scores[lowest].trimmed = true;
        scores[highest].trimmed = true;
    }
    let counted = scores.iter().filter(|s| !s.trimmed);
    let sum = counted.clone().map(|s| i64::from(s.total_points)).sum();
    let count = counted.count() as i32;
    Aggregate {
        scores,
        trimmed,
        sum,
        count,
    }
}

/// `81333` millipoints → `81.333`.
pub fn points(millipoints: i64) -> String {
    format!("{}.{:03}", millipoints / 1000, millipoints % 1000)
}

/// Decides a round from its submitted reviews.
pub fn decide(
    round: i32,
    reviews: &[SubmittedReview],
    threshold: &Threshold,
    decided_by: &str,
    now_us: i64,
) -> Decision {
    let agg = aggregate(reviews);
    let mut vetoes: Vec<VetoRecord> = reviews
        .iter()
        .filter_map(|r| {
            r.veto.as_ref().map(|(category, evidence)| VetoRecord {
                path: VetoPath::Expert,
                rule: String::new(),
                review: r.review.clone(),
                expert: r.expert.clone(),
                category: *category,
                evidence: evidence.clone(),
            })
        })
        .collect();
    vetoes.sort_by(|a, b| a.review.cmp(&b.review));
    let mean = format!(
        "{} {} of {} reviews ({} counted)",
        if agg.trimmed { "trimmed mean" } else { "mean" },
        points(agg.millipoints()),
        agg.scores.len(),
        agg.count
    );
    let (outcome, explanation) = if !vetoes.is_empty() {
        let who: Vec<String> = vetoes
            .iter()
            .map(|v| format!("{} ({})", v.expert, v.category.as_str()))
            .collect();
        (
            Outcome::Vetoed,
            format!(
                "Vetoed: {} expert veto{} by {} outweigh{} every score ({mean}; threshold {})",
                vetoes.len(),
                if vetoes.len() == 1 { "" } else { "es" },
                who.join(", "),
                if vetoes.len() == 1 { "s" } else { "" },
                threshold.points
            ),
        )
    } else if agg.reaches(threshold.points) {
        (
            Outcome::Approved,
            format!("Approved: {mean} >= {}; no veto", threshold.points),
        )
    } else {
        (
            Outcome::Rejected,
            format!("Rejected: {mean} < {}; no veto", threshold.points),
        )
    };
    Decision {
        outcome,
        review_round: round,
        aggregate_score_millipoints: agg.millipoints(),
        scores: agg.scores,
        trimmed: agg.trimmed,
        score_sum: agg.sum,
        score_count: agg.count,
        threshold_points: threshold.points,
        threshold_source: threshold.source.clone(),
        vetoes,
        explanation,
        decided_by: decided_by.to_string(),
        decide_time_us: now_us,
    }
}

/// The decision a VETO verdict makes at submission (no scores; decided by `screening`).
pub fn rule_veto(round: i32, verdict: &Verdict) -> Decision {
    let category = if verdict.rule_id.starts_with("closure-list") {
        // Closure lists name backward, polluting capacity to be shut.
        VetoCategory::HighlyPolluting
    } else {
        VetoCategory::EnergyIntensive
    };
    Decision {
        outcome: Outcome::Vetoed,
        review_round: round,
        scores: Vec::new(),
        trimmed: false,
        score_sum: 0,
        score_count: 0,
        aggregate_score_millipoints: 0,
        threshold_points: 0,
        threshold_source: String::new(),
        vetoes: vec![VetoRecord {
            path: VetoPath::Rule,
            rule: format!(
                "{} @ {} v{}",
                verdict.rule_id, verdict.rule_set, verdict.rule_set_version
            ),
            review: String::new(),
            expert: String::new(),
            category,
            evidence: verdict.explanation.clone(),
        }],
        explanation: verdict.explanation.clone(),
        decided_by: "screening".into(),
        decide_time_us: verdict.screen_time_us,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reviews(totals: &[i32]) -> Vec<SubmittedReview> {
        totals
            .iter()
            .enumerate()
            .map(|(i, t)| SubmittedReview {
                review: format!("achievements/a/reviews/r{i}"),
                expert: format!("experts/e{i}"),
                total_points: *t,
                veto: None,
            })
            .collect()
    }

    fn threshold() -> Threshold {
        Threshold {
            points: 70,
            source: "test".into(),
        }
    }

    #[test]
    fn outcomes_against_the_threshold_exactly() {
        use Outcome::*;
        let cases: &[(&[i32], Outcome, i64, i32, bool)] = &[
            (&[70], Approved, 70, 1, false),
            (&[69], Rejected, 69, 1, false),
            (&[70, 69, 70], Rejected, 209, 3, false), // 69.667 < 70
            (&[70, 70, 71], Approved, 211, 3, false),
            (&[100, 90, 80, 70], Approved, 340, 4, false),
            // Five: drop 0 and 100 → 70 + 70 + 70 = 210 / 3 = 70 → approved.
            (&[0, 70, 70, 70, 100], Approved, 210, 3, true),
            (&[100, 69, 69, 69, 0], Rejected, 207, 3, true),
        ];
        for (totals, outcome, sum, count, trimmed) in cases {
            let d = decide(1, &reviews(totals), &threshold(), "officer", 5);
            assert_eq!(d.outcome, *outcome, "{totals:?}: {}", d.explanation);
            assert_eq!(
                (d.score_sum, d.score_count, d.trimmed),
                (*sum, *count, *trimmed)
            );
        }
    }

    #[test]
    fn trimming_drops_one_lowest_and_one_highest_ties_by_review_name() {
        let agg = aggregate(&reviews(&[80, 90, 90, 60, 60, 75]));
        let dropped: Vec<&str> = agg
            .scores
            .iter()
            .filter(|s| s.trimmed)
            .map(|s| s.review.as_str())
            .collect();
        assert_eq!(
            dropped,
            ["achievements/a/reviews/r1", "achievements/a/reviews/r3"]
        );
        assert_eq!((agg.sum, agg.count), (80 + 90 + 60 + 75, 4));
        // Four reviews: no trimming.
        assert!(!aggregate(&reviews(&[1, 2, 3, 4])).trimmed);
        // All equal: exactly two dropped.
        let agg = aggregate(&reviews(&[50; 5]));
        assert_eq!(agg.scores.iter().filter(|s| s.trimmed).count(), 2);
        assert_eq!(agg.millipoints(), 50_000);
    }

    #[test]
    fn millipoints_round_down_and_read_as_points() {
        let agg = aggregate(&reviews(&[81, 81, 82]));
        assert_eq!(agg.millipoints(), 81_333);
        assert_eq!(points(agg.millipoints()), "81.333");
        let d = decide(2, &reviews(&[100, 81, 81, 82, 0]), &threshold(), "admin", 7);
        assert_eq!(
            d.explanation,
            "Approved: trimmed mean 81.333 of 5 reviews (3 counted) >= 70; no veto"
        );
        assert_eq!(d.review_round, 2);
    }

    #[test]
    fn one_veto_outweighs_five_perfect_scores() {
        let mut rs = reviews(&[100, 100, 100, 100, 100]);
        rs[3].veto = Some((VetoCategory::HighlyPolluting, "waste water".into()));
        let d = decide(1, &rs, &threshold(), "officer", 9);
        assert_eq!(d.outcome, Outcome::Vetoed);
        assert_eq!(d.aggregate_score_millipoints, 100_000, "scores still shown");
        assert_eq!(d.vetoes.len(), 1);
        assert_eq!(d.vetoes[0].expert, "experts/e3");
        assert!(
            d.explanation
                .starts_with("Vetoed: 1 expert veto by experts/e3 (HIGHLY_POLLUTING)")
        );
    }
}
