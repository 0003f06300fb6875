//! Typed ids of the review service's resources, read from resource names by the one parser in
//! `qilu_common::input::name`. A handler holding an `AchievementId` knows it is well formed; the
//! fields are private so nothing else can build one from an unchecked string.
//!
//! The id forms are the ones the released contract fixed: server-assigned ids (achievements,
//! reviews) are lower-case hex, digits and `-` up to 64 characters; caller-chosen ids (experts,
//! rule sets) the same alphabet up to 63.

use qilu_common::FieldViolation;
use qilu_common::input::name::{IdRule, segments};

/// A server-assigned id: lower-case letters, digits and `-`, 1-64 characters.
fn server_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A caller-chosen id: lower-case letters, digits and `-`, 1-63 characters.
fn user_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 63
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

qilu_common::resource_id! {
    /// An achievement, `achievements/{id}`.
    pub struct AchievementId = "achievements/{id}", IdRule::Custom(server_id);
}

qilu_common::resource_id! {
    /// An expert, `experts/{expert}`; chosen by the admin who registers the expert.
    pub struct ExpertId = "experts/{expert}", IdRule::Custom(user_id);
}

qilu_common::resource_id! {
    /// A veto rule set, `vetoRuleSets/{id}`; chosen by the admin who writes it.
    pub struct RuleSetId = "vetoRuleSets/{id}", IdRule::Custom(user_id);
}

/// A caller-chosen id that names no resource of its own (a closure-list entry): the same form
/// as an expert's id, refused the same way.
pub fn chosen_id(raw: &str, field: &str) -> Result<String, FieldViolation> {
    ExpertId::parse_id(raw, field).map(|id| id.as_str().to_string())
}

/// A review, `achievements/{achievement}/reviews/{review}`: reviews exist only under their
/// achievement, so the name carries both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewName {
    achievement: AchievementId,
    review: String,
}

impl ReviewName {
    /// The name template.
    pub const PATTERN: &'static str = "achievements/{achievement}/reviews/{review}";

    /// The review named by `raw`, or the violation of `field`.
    pub fn parse(raw: &str, field: &str) -> Result<ReviewName, FieldViolation> {
        match segments(raw, Self::PATTERN, field, IdRule::Custom(server_id))?.as_slice() {
            [a, r] => Ok(ReviewName {
                achievement: AchievementId::from_stored(*a),
                review: (*r).to_string(),
            }),
            _ => Err(qilu_common::input::name::bad_name(
                raw,
                Self::PATTERN,
                field,
            )),
        }
    }

    /// The achievement the review is of.
    pub fn achievement(&self) -> &AchievementId {
        &self.achievement
    }

    /// The review's own id.
    pub fn review(&self) -> &str {
        &self.review
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_into_ids_or_name_the_field() {
        let a = AchievementId::parse_name("achievements/abc-1", "name");
        assert_eq!(a.as_ref().map(AchievementId::as_str).ok(), Some("abc-1"));
        assert_eq!(
            a.map(|a| a.name()).ok().as_deref(),
            Some("achievements/abc-1")
        );
        assert!(AchievementId::parse_name("achievement/abc", "name").is_err());
        assert!(AchievementId::parse_name("achievements/", "name").is_err());
        assert!(AchievementId::parse_name("achievements/a/b", "name").is_err());
        let r = ReviewName::parse("achievements/a1/reviews/r2", "name");
        assert_eq!(
            r.as_ref()
                .map(|r| (r.achievement().as_str(), r.review()))
                .ok(),
            Some(("a1", "r2"))
        );
        assert!(ReviewName::parse("achievements/a1/r2", "name").is_err());
        assert!(ExpertId::parse_name("experts/Wang", "name").is_err());
        assert_eq!(
            RuleSetId::parse_name("vetoRuleSets/2026", "name")
                .map(|r| r.name())
                .ok()
                .as_deref(),
            Some("vetoRuleSets/2026")
        );
    }

    #[test]
    fn empty_names_are_required_and_bad_ones_invalid() {
        let reason = |r: Result<ExpertId, FieldViolation>| r.err().map(|v| v.reason);
        assert_eq!(
            reason(ExpertId::parse_name("", "name")).as_deref(),
            Some("REQUIRED")
        );
        assert_eq!(
            reason(ExpertId::parse_name("experts/-", "name")).as_deref(),
            None
        );
        assert_eq!(
            reason(ExpertId::parse_name("experts/a_b", "name")).as_deref(),
            Some("INVALID_RESOURCE_NAME")
        );
        assert_eq!(
            reason(ExpertId::parse_id("", "expert_id")).as_deref(),
            Some("REQUIRED")
        );
        assert_eq!(
            reason(ExpertId::parse_id("Wang", "expert_id")).as_deref(),
            Some("INVALID_ID")
        );
    }
}
