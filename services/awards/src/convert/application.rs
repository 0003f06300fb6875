//! Applications: the create, list and withdraw requests parsed into domain values, the
//! nomination checked against its program, and applications as the contract shows them.

use qilu_common::filter::{Filter, FilterField, Kind as FilterKind, Value};
use qilu_common::input::{OrderBy, Violations};
use qilu_common::time::to_timestamp;
use qilu_common::{ApiError, FieldViolation};
use qilu_proto::awards as pb;

use crate::domain::application::{AppState, Application};
use crate::domain::ids::{AchievementRef, ApplicationName, EnterpriseRef, ProgramId};
use crate::domain::program::{Kind, Program};
use crate::store::application::{ListFilter, Order};

/// Longest withdrawal reason.
const MAX_REASON_CHARS: usize = 2000;

/// A parsed `CreateApplication`: the program, the applicant, the achievement and the
/// nomination (checked against the program by [`check_nomination`](Self::check_nomination)).
#[derive(Debug, Clone)]
pub struct CreateApplication {
    /// The program applied to.
    pub program: ProgramId,
    /// The applicant.
    pub enterprise: EnterpriseRef,
    /// The achievement applied with.
    pub achievement: AchievementRef,
    /// AWARD: the category nominated.
    pub category: i32,
    /// AWARD: the grade nominated.
    pub grade: i32,
    /// PROJECT: the amount asked for, fen.
    pub requested_amount_fen: i64,
}

impl CreateApplication {
    /// The parent on its own, then both references at once.
    pub fn parse(req: &pb::CreateApplicationRequest) -> Result<CreateApplication, ApiError> {
        let program = ProgramId::parse_name(&req.parent, "parent")?;
        let input = qilu_common::input::required(req.application.as_ref(), "application")?;
        let mut v = Violations::new();
        let enterprise = v.take(EnterpriseRef::parse_name(
            &input.enterprise,
            "application.enterprise",
        ));
        let achievement = v.take(AchievementRef::parse_name(
            &input.achievement,
            "application.achievement",
        ));
        v.into_result(enterprise.zip(achievement))
            .map(|(enterprise, achievement)| CreateApplication {
                program,
                enterprise,
                achievement,
                category: input.category,
                grade: input.grade,
                requested_amount_fen: input.requested_amount_fen,
            })
    }

    /// Whether the nomination fits program `p`: a listed bucket for an AWARD, a positive amount
    /// within the cap and the budget for a PROJECT. Every violation at once.
    pub fn check_nomination(&self, p: &Program) -> Result<(), ApiError> {
        let mut v = Violations::new();
        match p.kind {
            Kind::Award => {
                if self.category == 0 || self.grade == 0 {
                    v.push(FieldViolation::new(
                        "application.category",
                        "REQUIRED",
                        "an AWARD application nominates a category and a grade",
                    ));
                } else if !p.has_bucket(self.category, self.grade) {
                    v.push(FieldViolation::new(
                        "application.grade",
                        "UNKNOWN_BUCKET",
                        format!(
                            "{} has no quota for {} / {}; nominate a listed (category, grade) pair",
                            p.name(),
                            pb::AwardCategory::try_from(self.category)
                                .map(|c| c.as_str_name())
                                .unwrap_or("?"),
                            pb::AwardGrade::try_from(self.grade)
                                .map(|g| g.as_str_name())
                                .unwrap_or("?")
                        ),
                    ));
                }
                if self.requested_amount_fen != 0 {
                    v.push(FieldViolation::new(
                        "application.requested_amount_fen",
                        "PROJECT_ONLY",
                        "requested_amount_fen applies to PROJECT programs only",
                    ));
                }
            }
            Kind::Project => {
                if self.category != 0 || self.grade != 0 {
                    v.push(FieldViolation::new(
                        "application.category",
                        "AWARD_ONLY",
                        "category and grade apply to AWARD programs only",
                    ));
                }
                let cap = p.settings.per_project_cap_fen;
                let amount = self.requested_amount_fen;
                if amount <= 0 {
                    v.push(FieldViolation::new(
                        "application.requested_amount_fen",
                        "NOT_POSITIVE",
                        "requested_amount_fen must be positive",
                    ));
                } else if cap > 0 && amount > cap {
                    v.push(FieldViolation::new(
                        "application.requested_amount_fen",
                        "ABOVE_CAP",
                        format!("at most the per-project cap of {cap} fen"),
                    ));
                } else if amount > p.settings.budget_fen {
                    v.push(FieldViolation::new(
                        "application.requested_amount_fen",
                        "ABOVE_BUDGET",
                        format!("at most the budget of {} fen", p.settings.budget_fen),
                    ));
                }
            }
        }
        v.finish()
    }
}

/// A parsed `WithdrawApplication`: the application and why.
pub fn parse_withdraw(
    req: &pb::WithdrawApplicationRequest,
) -> Result<(ApplicationName, String), ApiError> {
    let name = ApplicationName::parse(&req.name, "name")?;
    let reason = qilu_common::input::text(&req.reason, "reason", MAX_REASON_CHARS, false)?;
    Ok((name, reason))
}

/// The `parent` of `ListApplications`: one program, or `programs/-` for all.
pub fn list_parent(raw: &str) -> Result<Option<ProgramId>, ApiError> {
    if raw == "programs/-" {
        return Ok(None);
    }
    ProgramId::parse_name(raw, "parent")
        .map(Some)
        .map_err(ApiError::from)
}

pub(crate) fn industry_field(name: &str) -> Option<i32> {
    qilu_proto::common::IndustryField::from_str_name(name).map(|x| x as i32)
}

pub(crate) fn award_category(name: &str) -> Option<i32> {
    pb::AwardCategory::from_str_name(name).map(|x| x as i32)
}

pub(crate) fn award_grade(name: &str) -> Option<i32> {
    pb::AwardGrade::from_str_name(name).map(|x| x as i32)
}

fn application_state(name: &str) -> Option<i32> {
    pb::ApplicationState::from_str_name(name).map(|x| x as i32)
}

pub(crate) fn application_outcome(name: &str) -> Option<i32> {
    pb::ApplicationOutcome::from_str_name(name).map(|x| x as i32)
}

const LIST_FILTER: &[FilterField] = &[
    FilterField::eq("enterprise", FilterKind::Text),
    FilterField::eq("achievement", FilterKind::Text),
    FilterField::eq(
        "industry_field",
        FilterKind::Enum {
            type_name: "IndustryField",
            from_name: industry_field,
        },
    ),
    FilterField::eq(
        "category",
        FilterKind::Enum {
            type_name: "AwardCategory",
            from_name: award_category,
        },
    ),
    FilterField::eq(
        "grade",
        FilterKind::Enum {
            type_name: "AwardGrade",
            from_name: award_grade,
        },
    ),
    FilterField::eq(
        "state",
        FilterKind::Enum {
            type_name: "ApplicationState",
            from_name: application_state,
        },
    ),
    FilterField::eq(
        "outcome",
        FilterKind::Enum {
            type_name: "ApplicationOutcome",
            from_name: application_outcome,
        },
    ),
];

/// The `filter` of `ListApplications`.
pub fn list_filter(raw: &str) -> Result<ListFilter, ApiError> {
    let mut out = ListFilter::default();
    for term in Filter::typed(raw, LIST_FILTER)? {
        match (term.field, term.value) {
            ("enterprise", Value::Text(v)) => {
                let e = EnterpriseRef::parse_name(&v, "filter")?;
                out.uscc = Some(e.as_str().to_string());
            }
            ("achievement", Value::Text(v)) => {
                let a = AchievementRef::parse_name(&v, "filter")?;
                out.achievement_id = Some(a.as_str().to_string());
            }
            ("industry_field", Value::Enum(n)) => out.industry_field = Some(n),
            ("category", Value::Enum(n)) => out.category = Some(n),
            ("grade", Value::Enum(n)) => out.grade = Some(n),
            ("state", Value::Enum(n)) => out.state = Some(n),
            ("outcome", Value::Enum(n)) => out.outcome = Some(n),
            _ => {}
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OrderKey {
    CreateTime,
    Rank,
    Score,
}

/// The `order_by` of `ListApplications`: `create_time` (default), `rank` or
/// `score_millipoints desc`.
pub fn list_order(raw: &str) -> Result<Order, ApiError> {
    qilu_common::limits::order_by(raw)?;
    let refused = || {
        ApiError::invalid(
            "order_by",
            "INVALID_ORDER_BY",
            format!(
                "cannot order by {}; use create_time (default), rank or \"score_millipoints desc\"",
                qilu_common::limits::echo(raw)
            ),
        )
    };
    let order = OrderBy::parse(
        raw,
        &[
            ("create_time", OrderKey::CreateTime),
            ("rank", OrderKey::Rank),
            ("score_millipoints", OrderKey::Score),
        ],
        OrderKey::CreateTime,
    )
    .map_err(|_| refused())?;
    match (order.key, order.desc) {
        (OrderKey::CreateTime, false) => Ok(Order::CreateTime),
        (OrderKey::Rank, false) => Ok(Order::Rank),
        (OrderKey::Score, true) => Ok(Order::ScoreDesc),
        _ => Err(refused()),
    }
}

/// An application; outcome fields only when `show_outcome` (hidden from enterprise tokens until
/// the results are published).
pub fn application_to_proto(a: &Application, show_outcome: bool) -> pb::Application {
    let mut out = pb::Application {
        name: a.name(),
        enterprise: format!("enterprises/{}", a.uscc),
        achievement: format!("achievements/{}", a.achievement_id),
        category: a.category,
        grade: a.grade,
        industry_field: a.industry_field,
        title: a.title.clone(),
        requested_amount_fen: a.requested_amount_fen,
        state: a.state.code(),
        score_millipoints: a.score_millipoints,
        outcome: a.outcome,
        outcome_reason: a.outcome_reason.clone(),
        rank: a.rank,
        amount_fen: a.amount_fen,
        withdraw_reason: a.withdraw_reason.clone(),
        create_time: Some(to_timestamp(a.create_time_us)),
        update_time: Some(to_timestamp(a.update_time_us)),
        etag: a.etag(),
    };
    if !show_outcome {
        out.outcome = 0;
        out.outcome_reason.clear();
        out.rank = 0;
        out.amount_fen = 0;
    }
    if a.state == AppState::Withdrawn {
        out.state = AppState::Withdrawn.code();
    }
    out
}

/// `full` (as [`application_to_proto`] shows it with the outcome) as it is shown without the
/// outcome: what the change feed sends an applicant for a change made before publication. Kept
/// apart from `application_to_proto` on purpose, and tested against it, so a field added to one
/// redaction and not the other fails a test instead of leaking an outcome.
pub fn hide_outcome(full: &mut pb::Application) {
    full.outcome = 0;
    full.outcome_reason.clear();
    full.rank = 0;
    full.amount_fen = 0;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hiding_the_outcome_of_a_full_application_is_showing_it_without() {
        let a = Application {
            program_id: "green".into(),
            id: "a1".into(),
            uscc: "91350100M000100Y43".into(),
            achievement_id: "x1".into(),
            category: 0,
            grade: 0,
            industry_field: 3,
            title: "绿色".into(),
            requested_amount_fen: 300_000,
            state: AppState::Active,
            score_millipoints: 85_000,
            outcome: 1,
            outcome_reason: "rank 1 of 2".into(),
            rank: 1,
            amount_fen: 300_000,
            withdraw_reason: String::new(),
            create_time_us: 1,
            update_time_us: 2,
            version: 3,
        };
        let mut full = application_to_proto(&a, true);
        assert_ne!(full, application_to_proto(&a, false));
        hide_outcome(&mut full);
        assert_eq!(full, application_to_proto(&a, false));
    }

    #[test]
    fn application_lists_filter_by_reference_and_enum_and_order_three_ways() {
        let f = list_filter(
            r#"enterprise = "enterprises/91350100M000100Y43" AND achievement = "achievements/a1" AND grade = AWARD_GRADE_FIRST"#,
        )
        .unwrap();
        assert_eq!(f.uscc.as_deref(), Some("91350100M000100Y43"));
        assert_eq!(f.achievement_id.as_deref(), Some("a1"));
        assert_eq!(f.grade, Some(pb::AwardGrade::First as i32));
        for bad in [
            r#"enterprise = "x""#,
            "state = ACTIVE",
            "category != AWARD_CATEGORY_UNSPECIFIED",
            "title = x",
        ] {
            assert!(list_filter(bad).is_err(), "{bad}");
        }
        assert_eq!(list_order("").ok(), Some(Order::CreateTime));
        assert_eq!(list_order("rank").ok(), Some(Order::Rank));
        assert_eq!(
            list_order("score_millipoints desc").ok(),
            Some(Order::ScoreDesc)
        );
        assert!(list_order("score_millipoints").is_err());
        assert!(list_order("rank desc").is_err());
    }

    #[test]
    fn a_create_names_both_bad_references() {
        let req = pb::CreateApplicationRequest {
            parent: "programs/green".into(),
            application: Some(pb::Application {
                enterprise: "enterprises/short".into(),
                achievement: "achievement/a1".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let Err(ApiError::InvalidArgument(v)) = CreateApplication::parse(&req) else {
            panic!("must be refused");
        };
        let fields: Vec<&str> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            ["application.enterprise", "application.achievement"]
        );
        assert!(list_parent("programs/-").is_ok_and(|p| p.is_none()));
    }
}
