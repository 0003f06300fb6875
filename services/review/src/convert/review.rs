//! Reviews: the submit and list requests parsed into domain values, and reviews as the API
//! shows them (expert redacted for enterprise callers).

use qilu_common::error::{ApiError, FieldViolation};
use qilu_common::filter::{Filter, FilterField, Kind, Value};
use qilu_common::input::Violations;
use qilu_common::time::to_timestamp;
use qilu_proto::review as pb;

use crate::domain::achievement::MAX_LONG_TEXT_CHARS;
use crate::domain::ids::{AchievementId, ExpertId, ReviewName};
use crate::domain::review::{ExpertVeto, Review, Scores, VetoCategory};
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
];

/// The `filter` of `ListReviews`.
pub fn list_filter(raw: &str) -> Result<ListFilter, ApiError> {
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
            (_, Value::Bool(b)) => out.vetoed = Some(*b),
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn review_filters_read_state_expert_round_and_veto() {
        let f = list_filter(r#"state = REVIEW_STATE_SUBMITTED AND expert = "experts/wang" AND round = 2 AND vetoed = true"#)
            .ok();
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
        ] {
            assert!(list_filter(bad).is_err(), "{bad}");
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
}
