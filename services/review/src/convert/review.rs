//! Reviews: the submit, cancel, reassign and list requests parsed into domain values, due dates,
//! and reviews as the API shows them (expert redacted for enterprise callers).

use chrono::NaiveDate;
use qilu_common::error::{ApiError, FieldViolation};
use qilu_common::filter::{Filter, FilterField, Kind, Value};
use qilu_common::input::Violations;
use qilu_common::time::to_timestamp;
use qilu_proto::review as pb;

use crate::domain::achievement::{MAX_LONG_TEXT_CHARS, MAX_REASON_CHARS};
use crate::domain::ids::{AchievementId, ExpertId, ReviewName};
use crate::domain::review::{
    self, DueDateRefused, ExpertVeto, MAX_REVIEW_DAYS, Review, Scores, VetoCategory,
};
use crate::store::review::ListFilter;

/// A parsed `SubmitReview`: the review, and the expert's scores, comment and veto.
#[derive(Debug, Clone)]
pub struct SubmitReview {
    /// The review being submitted.
    pub name: ReviewName,
    /// The four criterion scores.
    pub scores: Scores,
    /// The comment.
    pub comment: String,
    /// The expert's veto, if any.
    pub veto: Option<ExpertVeto>,
}

impl SubmitReview {
    /// The name on its own, then every violation of the rest at once.
    pub fn parse(req: &pb::SubmitReviewRequest) -> Result<SubmitReview, ApiError> {
        let name = ReviewName::parse(&req.name, "name")?;
        let mut v = Violations::new();
        let scores = match &req.scores {
            None => {
                v.push(FieldViolation::new(
                    "scores",
                    "REQUIRED",
                    "scores are required, even with a veto",
                ));
                None
            }
            Some(s) => match Scores::new([
                s.innovation,
                s.technical_level,
                s.economic_benefit,
                s.green_benefit,
            ]) {
                Ok(scores) => Some(scores),
                Err(bad) => {
                    for (field, max) in bad {
                        v.push(FieldViolation::new(
                            format!("scores.{field}"),
                            "OUT_OF_RANGE",
                            format!("{field} is scored 0-{max}"),
                        ));
                    }
                    None
                }
            },
        };
        let comment = v.take(qilu_common::input::text(
            &req.comment,
            "comment",
            MAX_LONG_TEXT_CHARS,
            false,
        ));
        let veto = match &req.veto {
            None => None,
            Some(veto) => {
                let category = VetoCategory::from_code(veto.category);
                if category.is_none() {
                    v.push(FieldViolation::new(
                        "veto.category",
                        "REQUIRED",
                        "a veto needs its reason category (ENERGY_INTENSIVE, HIGHLY_POLLUTING, OTHER)",
                    ));
                }
                let evidence = v.take(qilu_common::input::text(
                    &veto.evidence,
                    "veto.evidence",
                    MAX_LONG_TEXT_CHARS,
                    true,
                ));
                category
                    .zip(evidence)
                    .map(|(category, evidence)| ExpertVeto { category, evidence })
            }
        };
        v.into_result(scores.zip(comment))
            .map(|(scores, comment)| SubmitReview {
                name,
                scores,
                comment,
                veto,
            })
    }
}

/// A requested due date (`field`, `YYYY-MM-DD`) for reviews assigned on `today`; empty = the
/// default ([`review::DEFAULT_REVIEW_DAYS`] later).
pub fn due_date(raw: &str, field: &str, today: NaiveDate) -> Result<String, FieldViolation> {
    let asked = if raw.is_empty() {
        None
    } else {
        Some(NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| {
            FieldViolation::new(
                field,
                "INVALID_DATE",
                format!(
                    "{} is not a date YYYY-MM-DD",
                    qilu_common::limits::echo(raw)
                ),
            )
        })?)
    };
    review::due_date(asked, today)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .map_err(|why| {
            let after = match why {
                DueDateRefused::Past => "today or later".to_string(),
                DueDateRefused::TooFar => format!("at most {MAX_REVIEW_DAYS} days after today"),
            };
            FieldViolation::new(
                field,
                "OUT_OF_RANGE",
                format!("{raw} is out of range: a due date is {after} ({today})"),
            )
        })
}

/// A parsed `CancelReview`.
#[derive(Debug, Clone)]
pub struct CancelReview {
    /// The review.
    pub name: ReviewName,
    /// The admin's reason, recorded as the review's `cancel_reason`.
    pub reason: String,
}

impl CancelReview {
    /// Every violation at once.
    pub fn parse(req: &pb::CancelReviewRequest) -> Result<CancelReview, ApiError> {
        let mut v = Violations::new();
        let name = v.take(ReviewName::parse(&req.name, "name"));
        let reason = v.take(qilu_common::input::text(
            &req.reason,
            "reason",
            MAX_REASON_CHARS,
            true,
        ));
        v.into_result(name.zip(reason))
            .map(|(name, reason)| CancelReview { name, reason })
    }
}

/// A parsed `ReassignReview`.
#[derive(Debug, Clone)]
pub struct ReassignReview {
    /// The review taken away.
    pub name: ReviewName,
    /// The new reviewer.
    pub expert: ExpertId,
    /// The admin's reason.
    pub reason: String,
    /// The new review's due date, `YYYY-MM-DD`.
    pub due_date: String,
}

impl ReassignReview {
    /// Every violation at once; the due date is judged against `today`.
    pub fn parse(
        req: &pb::ReassignReviewRequest,
        today: NaiveDate,
    ) -> Result<ReassignReview, ApiError> {
        let mut v = Violations::new();
        let name = v.take(ReviewName::parse(&req.name, "name"));
        let expert = v.take(ExpertId::parse_name(&req.expert, "expert"));
        let reason = v.take(qilu_common::input::text(
            &req.reason,
            "reason",
            MAX_REASON_CHARS,
            true,
        ));
        let due = v.take(due_date(&req.due_date, "due_date", today));
        v.into_result(name.zip(expert).zip(reason).zip(due)).map(
            |(((name, expert), reason), due_date)| ReassignReview {
                name,
                expert,
                reason,
                due_date,
            },
        )
    }
}

/// The `parent` of `ListReviews`: one achievement, or `achievements/-` for all.
pub fn list_parent(raw: &str) -> Result<Option<AchievementId>, ApiError> {
    if raw == "achievements/-" {
        return Ok(None);
    }
    AchievementId::parse_name(raw, "parent")
        .map(Some)
        .map_err(ApiError::from)
}

fn review_state(name: &str) -> Option<i32> {
    pb::ReviewState::from_str_name(name).map(|s| s as i32)
}

const LIST_FILTER: &[FilterField] = &[
    FilterField::eq(
        "state",
        Kind::Enum {
            type_name: "ReviewState",
            from_name: review_state,
        },
    ),
    FilterField::eq("expert", Kind::Text),
    FilterField::eq("round", Kind::Int),
    FilterField::eq("vetoed", Kind::Bool),
    FilterField::eq("overdue", Kind::Bool),
];

/// The `filter` of `ListReviews`; `overdue` is judged on `today` (programme time zone).
pub fn list_filter(raw: &str, today: NaiveDate) -> Result<ListFilter, ApiError> {
    let mut out = ListFilter::default();
    for term in Filter::typed(raw, LIST_FILTER)? {
        let bad = |why: String| {
            ApiError::invalid("filter", "INVALID_FILTER", format!("{}: {why}", term.field))
        };
        match (term.field, &term.value) {
            ("state", Value::Enum(s)) => out.state = Some(*s),
            ("expert", Value::Text(e)) => {
                let id = ExpertId::parse_name(e, "filter").map_err(|_| {
                    bad(format!(
                        "{} is not experts/{{expert}}",
                        qilu_common::limits::echo(e)
                    ))
                })?;
                out.expert_id = Some(id.as_str().to_string());
            }
            ("round", Value::Int(r)) => {
                out.round =
                    Some(i32::try_from(*r).map_err(|_| bad(format!("{r} is not a round number")))?);
            }
            ("overdue", Value::Bool(b)) => {
                out.overdue = Some((*b, today.format("%Y-%m-%d").to_string()));
            }
            ("vetoed", Value::Bool(b)) => out.vetoed = Some(*b),
            _ => {}
        }
    }
    Ok(out)
}

/// A review as the API shows it; `redact` empties the expert (enterprise callers).
pub fn review_to_proto(r: &Review, redact: bool) -> pb::Review {
    pb::Review {
        name: r.name(),
        expert: if redact {
            String::new()
        } else {
            format!("experts/{}", r.expert_id)
        },
        round: r.round,
        state: r.state.code(),
        assignment_method: r.method.code(),
        assigned_by: if redact {
            String::new()
        } else {
            r.assigned_by.clone()
        },
        scores: r.scores.map(|s| pb::CriterionScores {
            innovation: s.innovation,
            technical_level: s.technical_level,
            economic_benefit: s.economic_benefit,
            green_benefit: s.green_benefit,
        }),
        total_points: r.scores.map_or(0, |s| s.total()),
        comment: r.comment.clone(),
        veto: r.veto.as_ref().map(|v| pb::ExpertVeto {
            category: v.category.code(),
            evidence: v.evidence.clone(),
        }),
        cancel_reason: r.cancel_reason.clone(),
        assign_time: Some(to_timestamp(r.assign_time_us)),
        submit_time: r.submit_time_us.map(to_timestamp),
        create_time: Some(to_timestamp(r.assign_time_us)),
        update_time: Some(to_timestamp(r.update_time_us)),
        etag: r.etag(),
        due_date: r.due_date.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn review_filters_read_state_expert_round_and_veto() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap_or_default();
        let f = list_filter(r#"state = REVIEW_STATE_SUBMITTED AND expert = "experts/wang" AND round = 2 AND vetoed = true AND overdue = false"#, today)
            .ok();
        assert_eq!(
            f.as_ref().and_then(|f| f.overdue.clone()),
            Some((false, "2026-12-07".to_string()))
        );
        assert_eq!(
            f.as_ref().and_then(|f| f.expert_id.clone()).as_deref(),
            Some("wang")
        );
        assert_eq!(f.as_ref().and_then(|f| f.round), Some(2));
        assert_eq!(f.as_ref().and_then(|f| f.vetoed), Some(true));
        for bad in [
            "round = two",
            "round = 99999999999",
            "expert = wang",
            "vetoed = yes",
            "round > 1",
            "overdue = 1",
        ] {
            assert!(list_filter(bad, today).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_submission_reports_every_bad_score_and_a_veto_without_evidence() {
        let req = pb::SubmitReviewRequest {
            name: "achievements/a/reviews/r".into(),
            scores: Some(pb::CriterionScores {
                innovation: 99,
                technical_level: -1,
                economic_benefit: 1,
                green_benefit: 1,
            }),
            veto: Some(pb::ExpertVeto {
                category: 0,
                evidence: String::new(),
            }),
            ..Default::default()
        };
        let Err(ApiError::InvalidArgument(v)) = SubmitReview::parse(&req) else {
            panic!("must be refused");
        };
        let fields: Vec<&str> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "scores.innovation",
                "scores.technical_level",
                "veto.category",
                "veto.evidence"
            ]
        );
        assert!(list_parent("achievements/-").is_ok_and(|p| p.is_none()));
    }

    #[test]
    fn a_reassignment_reports_every_bad_field_and_due_dates_are_checked() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap_or_default();
        let req = pb::ReassignReviewRequest {
            name: "reviews/r".into(),
            expert: "wang".into(),
            reason: String::new(),
            due_date: "2026-13-01".into(),
            ..Default::default()
        };
        let Err(ApiError::InvalidArgument(v)) = ReassignReview::parse(&req, today) else {
            panic!("must be refused");
        };
        let fields: Vec<&str> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["name", "expert", "reason", "due_date"]);
        assert_eq!(
            due_date("", "due_date", today).ok().as_deref(),
            Some("2027-01-06")
        );
        assert_eq!(
            due_date("2026-12-06", "due_date", today).map_err(|v| v.reason),
            Err("OUT_OF_RANGE".to_string())
        );
    }
}
