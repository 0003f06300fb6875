//! Decisions and appeals: the appeal and resolve requests parsed into domain values, and
//! decisions as the API shows them (expert names redacted for enterprise callers).

use qilu_common::error::{ApiError, FieldViolation};
use qilu_common::input::Violations;
use qilu_common::time::to_timestamp;
use qilu_proto::review as pb;

use crate::domain::achievement::MAX_LONG_TEXT_CHARS;
use crate::domain::appeal::{Appeal, Resolution};
use crate::domain::decision::{Decision, VetoPath};
use crate::domain::ids::AchievementId;

/// A parsed `AppealVeto`: the achievement and the grounds.
pub fn parse_appeal(req: &pb::AppealVetoRequest) -> Result<(AchievementId, String), ApiError> {
    let id = AchievementId::parse_name(&req.name, "name")?;
    let grounds = qilu_common::input::text(&req.grounds, "grounds", MAX_LONG_TEXT_CHARS, true)?;
    Ok((id, grounds))
}

/// A parsed `ResolveAppeal`.
#[derive(Debug, Clone)]
pub struct ResolveAppeal {
    /// The appealed achievement.
    pub id: AchievementId,
    /// UPHELD or OVERTURNED.
    pub resolution: Resolution,
    /// Why.
    pub reason: String,
}

impl ResolveAppeal {
    /// The name on its own, then every violation of the rest at once.
    pub fn parse(req: &pb::ResolveAppealRequest) -> Result<ResolveAppeal, ApiError> {
        let id = AchievementId::parse_name(&req.name, "name")?;
        let mut v = Violations::new();
        let resolution = match pb::AppealResolution::try_from(req.resolution) {
            Ok(pb::AppealResolution::Upheld) => Some(Resolution::Upheld),
            Ok(pb::AppealResolution::Overturned) => Some(Resolution::Overturned),
            _ => {
                v.push(FieldViolation::new(
                    "resolution",
                    "REQUIRED",
                    "UPHELD or OVERTURNED",
                ));
                None
            }
        };
        let reason = v.take(qilu_common::input::text(
            &req.reason,
            "reason",
            MAX_LONG_TEXT_CHARS,
            true,
        ));
        v.into_result(resolution.zip(reason))
            .map(|(resolution, reason)| ResolveAppeal {
                id,
                resolution,
                reason,
            })
    }
}

/// The names of a `BatchGetAchievementStatus`, in order (at most 1000), every bad one reported.
pub fn batch_names(
    req: &pb::BatchGetAchievementStatusRequest,
) -> Result<Vec<AchievementId>, ApiError> {
    if req.names.len() > 1000 {
        return Err(ApiError::invalid(
            "names",
            "TOO_MANY",
            "at most 1000 names per call",
        ));
    }
    let mut v = Violations::new();
    let ids: Vec<Option<AchievementId>> = req
        .names
        .iter()
        .enumerate()
        .map(|(i, name)| v.take(AchievementId::parse_name(name, &format!("names[{i}]"))))
        .collect();
    v.finish()?;
    Ok(ids.into_iter().flatten().collect())
}

/// A decision as the API shows it; `redact` empties expert names (enterprise callers).
pub fn decision_to_proto(d: &Decision, redact: bool) -> pb::Decision {
    let expert = |e: &str| if redact { String::new() } else { e.to_string() };
    pb::Decision {
        outcome: d.outcome.code(),
        review_round: d.review_round,
        scores: d
            .scores
            .iter()
            .map(|s| pb::ScoreUsed {
                review: s.review.clone(),
                expert: expert(&s.expert),
                total_points: s.total_points,
                trimmed: s.trimmed,
            })
            .collect(),
        trimmed: d.trimmed,
        score_sum: d.score_sum,
        score_count: d.score_count,
        aggregate_score_millipoints: d.aggregate_score_millipoints,
        threshold_points: d.threshold_points,
        threshold_source: d.threshold_source.clone(),
        vetoes: d
            .vetoes
            .iter()
            .map(|v| pb::VetoRecord {
                path: match v.path {
                    VetoPath::Rule => pb::VetoPath::Rule,
                    VetoPath::Expert => pb::VetoPath::Expert,
                } as i32,
                rule: v.rule.clone(),
                review: v.review.clone(),
                expert: expert(&v.expert),
                category: v.category.code(),
                evidence: v.evidence.clone(),
            })
            .collect(),
        explanation: if redact {
            redact_experts(&d.explanation)
        } else {
            d.explanation.clone()
        },
        decided_by: d.decided_by.clone(),
        decide_time: Some(to_timestamp(d.decide_time_us)),
    }
}

/// A decision as [`decision_to_proto`] shows it unredacted, redacted as it shows it with
/// `redact`: for the change feed, which holds the unredacted message and serves it to callers
/// that may see only the redacted one.
pub fn redact_decision(mut d: pb::Decision) -> pb::Decision {
    for s in &mut d.scores {
        s.expert.clear();
    }
    for v in &mut d.vetoes {
        v.expert.clear();
    }
    d.explanation = redact_experts(&d.explanation);
    d
}

/// Replaces `experts/{id}` in a sentence with `an expert`.
fn redact_experts(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("experts/") {
        out.push_str(&rest[..i]);
        out.push_str("an expert");
        let tail = &rest[i + "experts/".len()..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
            .unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

pub(super) fn appeal_to_proto(a: &Appeal) -> pb::Appeal {
    pb::Appeal {
        grounds: a.grounds.clone(),
        filed_by: a.filed_by.clone(),
        file_time: Some(to_timestamp(a.file_time_us)),
        resolution: a.resolution.map_or(0, |r| r.code()),
        resolution_reason: a.resolution_reason.clone(),
        resolved_by: a.resolved_by.clone(),
        resolve_time: a.resolve_time_us.map(to_timestamp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expert_names_are_redacted_from_sentences() {
        assert_eq!(
            redact_experts("Vetoed: 1 expert veto by experts/wang-li (OTHER) outweighs"),
            "Vetoed: 1 expert veto by an expert (OTHER) outweighs"
        );
    }

    #[test]
    fn batch_names_report_every_bad_name_by_index() {
        let req = pb::BatchGetAchievementStatusRequest {
            names: vec!["achievements/a".into(), "x".into(), "achievements/".into()],
        };
        let Err(ApiError::InvalidArgument(v)) = batch_names(&req) else {
            panic!("must be refused");
        };
        let fields: Vec<&str> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["names[1]", "names[2]"]);
    }
}
