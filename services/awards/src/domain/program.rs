//! Programs: an award round or a project funding call, its settings (data, never constants),
//! its stage machine and its dates. Pure: no I/O. Validation here is the contract's
//! (`proto/qilu/awards/v1/program.proto`); field paths are relative to the `Program` message so
//! callers nest them (`program.award_quotas[0].quota`).

use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;
use qilu_common::FieldViolation;
use qilu_proto::awards::{AwardCategory, AwardGrade};
use qilu_proto::common::IndustryField;
use serde::{Deserialize, Serialize};

use super::allocation::{self, BucketKey, WHOLE_BASIS_POINTS};

/// Days in the public-notice objection window when the program says nothing (docs/rules.md: the
/// 2021 award measures give 10 days for objections).
pub const DEFAULT_OBJECTION_WINDOW_DAYS: i32 = 10;
/// Longest objection window `PublishResults` accepts.
pub const MAX_OBJECTION_WINDOW_DAYS: i32 = 60;
/// Highest score threshold: 100 points in thousandths.
pub const MAX_THRESHOLD_MILLIPOINTS: i64 = 100_000;
/// Longest display name.
pub const MAX_DISPLAY_NAME_CHARS: usize = 200;
/// Longest description.
pub const MAX_DESCRIPTION_CHARS: usize = 8000;
/// Earliest and latest programme year accepted (sanity bounds, not policy).
pub const YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

/// Award round or project call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// Seats per category × grade.
    Award,
    /// A budget in fen.
    Project,
}

impl Kind {
    /// The `ProgramKind` number.
    pub fn code(self) -> i32 {
        match self {
            Kind::Award => 1,
            Kind::Project => 2,
        }
    }

    /// From a `ProgramKind` number (UNSPECIFIED is none).
    pub fn from_code(code: i32) -> Option<Kind> {
        match code {
            1 => Some(Kind::Award),
            2 => Some(Kind::Project),
            _ => None,
        }
    }
}

/// Stage of a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    /// Being set up.
    Draft,
    /// Accepting applications.
    Open,
    /// Awaiting allocation.
    Closed,
    /// Allocation stored.
    Allocated,
    /// Published; objection window.
    Publicized,
    /// Final, read-only.
    Final,
}

impl State {
    /// The `ProgramState` number.
    pub fn code(self) -> i32 {
        match self {
            State::Draft => 1,
            State::Open => 2,
            State::Closed => 3,
            State::Allocated => 4,
            State::Publicized => 5,
            State::Final => 6,
        }
    }

    /// From a `ProgramState` number.
    pub fn from_code(code: i32) -> Option<State> {
        Some(match code {
            1 => State::Draft,
            2 => State::Open,
            3 => State::Closed,
            4 => State::Allocated,
            5 => State::Publicized,
            6 => State::Final,
            _ => return None,
        })
    }

    /// The enum value name, e.g. `PROGRAM_STATE_OPEN`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Draft => "PROGRAM_STATE_DRAFT",
            State::Open => "PROGRAM_STATE_OPEN",
            State::Closed => "PROGRAM_STATE_CLOSED",
            State::Allocated => "PROGRAM_STATE_ALLOCATED",
            State::Publicized => "PROGRAM_STATE_PUBLICIZED",
            State::Final => "PROGRAM_STATE_FINAL",
        }
    }

    /// The one stage each custom method moves from, and where it goes.
    pub fn transition(self, method: Transition) -> Result<State, String> {
        let (from, to) = match method {
            Transition::Open => (State::Draft, State::Open),
            Transition::Close => (State::Open, State::Closed),
            Transition::Allocate => (State::Closed, State::Allocated),
            Transition::Publish => (State::Allocated, State::Publicized),
            Transition::Finalize => (State::Publicized, State::Final),
        };
        if self == from {
            Ok(to)
        } else {
            Err(format!(
                "{method:?} needs a {} program; this one is {}",
                from.as_str(),
                self.as_str()
            ))
        }
    }
}

/// The stage-changing custom methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// DRAFT → OPEN.
    Open,
    /// OPEN → CLOSED.
    Close,
    /// CLOSED → ALLOCATED.
    Allocate,
    /// ALLOCATED → PUBLICIZED.
    Publish,
    /// PUBLICIZED → FINAL.
    Finalize,
}

/// Seats and prize money of one award bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwardQuota {
    /// `AwardCategory` number.
    pub category: i32,
    /// `AwardGrade` number.
    pub grade: i32,
    /// Seats.
    pub quota: i32,
    /// Prize money per award, fen.
    pub amount_fen: i64,
}

/// A cap across buckets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaCap {
    /// What it is.
    pub description: String,
    /// Covered categories; empty = all.
    pub categories: Vec<i32>,
    /// Covered grades; empty = all.
    pub grades: Vec<i32>,
    /// Most awards.
    pub limit: i32,
}

/// A priority field with its target share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriorityField {
    /// `IndustryField` number.
    pub field: i32,
    /// Basis points.
    pub basis_points: i32,
}

/// Stage deadlines (only the application window is enforced).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadlines {
    /// First day applications are accepted.
    pub application_start_date: Option<NaiveDate>,
    /// Last day applications are accepted.
    pub application_deadline: Option<NaiveDate>,
    /// Planned allocation date.
    pub allocation_due_date: Option<NaiveDate>,
    /// Planned publication date.
    pub publication_due_date: Option<NaiveDate>,
    /// Planned final date.
    pub final_due_date: Option<NaiveDate>,
}

/// Everything an admin sets on a program (all of it updatable while DRAFT, except `kind`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Title.
    pub display_name: String,
    /// The programme year.
    pub year: i32,
    /// Description.
    pub description: String,
    /// AWARD: buckets.
    pub award_quotas: Vec<AwardQuota>,
    /// AWARD: caps across buckets.
    pub quota_caps: Vec<QuotaCap>,
    /// PROJECT: budget, fen.
    pub budget_fen: i64,
    /// PROJECT: most per project, fen (0 = no cap).
    pub per_project_cap_fen: i64,
    /// Priority fields and shares.
    pub priority_fields: Vec<PriorityField>,
    /// Threshold in thousandths of a point.
    pub score_threshold_millipoints: i64,
    /// Only certified high-tech enterprises.
    pub requires_high_tech_certification: bool,
    /// Dates.
    pub deadlines: Deadlines,
    /// Objection window in days.
    pub objection_window_days: i32,
}

/// A program as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Program {
    /// The id in `programs/{id}`.
    pub id: String,
    /// Award or project; fixed at creation.
    pub kind: Kind,
    /// What the admin set.
    pub settings: Settings,
    /// Stage.
    pub state: State,
    /// Latest allocation revision (0 before allocation).
    pub allocation_revision: i32,
    /// When results were published, µs.
    pub publish_time_us: Option<i64>,
    /// Last instant of the objection window, µs.
    pub objection_window_end_us: Option<i64>,
    /// When it became final, µs.
    pub finalize_time_us: Option<i64>,
    /// Created, µs.
    pub create_time_us: i64,
    /// Last changed, µs.
    pub update_time_us: i64,
    /// Optimistic-concurrency version.
    pub version: i64,
}

impl Program {
    /// `programs/{id}`.
    pub fn name(&self) -> String {
        program_name(&self.id)
    }

    /// The opaque version tag.
    pub fn etag(&self) -> String {
        qilu_common::input::etag_of(&self.name(), self.version)
    }

    /// Whether `(category, grade)` is a listed bucket.
    pub fn has_bucket(&self, category: i32, grade: i32) -> bool {
        self.settings
            .award_quotas
            .iter()
            .any(|q| q.category == category && q.grade == grade)
    }

    /// The allocator's view of the settings.
    pub fn allocator_program(&self) -> allocation::Program {
        let s = &self.settings;
        let kind = match self.kind {
            Kind::Award => allocation::Kind::Award {
                quotas: s
                    .award_quotas
                    .iter()
                    .map(|q| allocation::Quota {
                        bucket: BucketKey {
                            category: q.category,
                            grade: q.grade,
                        },
                        seats: i64::from(q.quota),
                        amount_fen: q.amount_fen,
                    })
                    .collect(),
                caps: s
                    .quota_caps
                    .iter()
                    .map(|c| allocation::Cap {
                        description: c.description.clone(),
                        categories: c.categories.clone(),
                        grades: c.grades.clone(),
                        limit: i64::from(c.limit),
                    })
                    .collect(),
            },
            Kind::Project => allocation::Kind::Project {
                budget_fen: s.budget_fen,
                per_project_cap_fen: s.per_project_cap_fen,
            },
        };
        allocation::Program {
            kind,
            priority: s
                .priority_fields
                .iter()
                .map(|p| allocation::PriorityShare {
                    field: p.field,
                    basis_points: i64::from(p.basis_points),
                })
                .collect(),
            threshold_millipoints: s.score_threshold_millipoints,
        }
    }

    /// The units the shares apply to: seats (AWARD) or the budget in fen (PROJECT).
    pub fn size_for_targets(&self) -> i64 {
        match self.kind {
            Kind::Award => self
                .settings
                .award_quotas
                .iter()
                .map(|q| i64::from(q.quota))
                .sum(),
            Kind::Project => self.settings.budget_fen,
        }
    }

    /// What is missing before the program can open (contract: AWARD needs a quota, PROJECT a
    /// positive budget).
    pub fn incomplete(&self) -> Option<String> {
        match self.kind {
            Kind::Award if self.settings.award_quotas.is_empty() => {
                Some("an AWARD program needs at least one award quota before it opens".into())
            }
            Kind::Project if self.settings.budget_fen <= 0 => {
                Some("a PROJECT program needs a positive budget_fen before it opens".into())
            }
            _ => None,
        }
    }
}

/// `programs/{id}`.
pub fn program_name(id: &str) -> String {
    format!("programs/{id}")
}

/// Program ids: lower-case letters, digits and `-`, 1-63 characters, starting with a letter.
pub fn valid_program_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && id.len() <= 63
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Categories judged without grades (top award, international cooperation, young scientist).
pub fn ungraded_category(category: i32) -> bool {
    matches!(
        AwardCategory::try_from(category),
        Ok(AwardCategory::TopAward
            | AwardCategory::InternationalCooperation
            | AwardCategory::YoungScientist)
    )
}

fn known_category(c: i32) -> bool {
    c != 0 && AwardCategory::try_from(c).is_ok()
}

fn known_grade(g: i32) -> bool {
    g != 0 && AwardGrade::try_from(g).is_ok()
}

fn known_field(f: i32) -> bool {
    f != 0 && IndustryField::try_from(f).is_ok()
}

/// Checks settings against the contract for `kind`; every violation, with its path relative to
/// the `Program` message.
pub fn validate(kind: Kind, s: &Settings) -> Vec<FieldViolation> {
    let mut v = Vec::new();
    let mut bad = |field: String, reason: &str, description: String| {
        v.push(FieldViolation::new(field, reason, description));
    };
    if s.display_name.trim().is_empty() {
        bad(
            "display_name".into(),
            "REQUIRED",
            "display_name is required".into(),
        );
    } else if s.display_name.chars().count() > MAX_DISPLAY_NAME_CHARS {
        bad(
            "display_name".into(),
            "TOO_LONG",
            format!("at most {MAX_DISPLAY_NAME_CHARS} characters"),
        );
    }
    if s.description.chars().count() > MAX_DESCRIPTION_CHARS {
        bad(
            "description".into(),
            "TOO_LONG",
            format!("at most {MAX_DESCRIPTION_CHARS} characters"),
        );
    }
    if !YEARS.contains(&s.year) {
        bad(
            "year".into(),
            "OUT_OF_RANGE",
            format!("year must be between {} and {}", YEARS.start(), YEARS.end()),
        );
    }
    if kind == Kind::Project && !s.award_quotas.is_empty() {
        bad(
            "award_quotas".into(),
            "AWARD_ONLY",
            "award_quotas apply to AWARD programs only".into(),
        );
    }
    if kind == Kind::Project && !s.quota_caps.is_empty() {
        bad(
            "quota_caps".into(),
            "AWARD_ONLY",
            "quota_caps apply to AWARD programs only".into(),
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, q) in s.award_quotas.iter().enumerate() {
        let p = format!("award_quotas[{i}]");
        if !known_category(q.category) {
            bad(
                format!("{p}.category"),
                "REQUIRED",
                "a known award category is required".into(),
            );
        }
        if !known_grade(q.grade) {
            bad(
                format!("{p}.grade"),
                "REQUIRED",
                "a known award grade is required (UNGRADED for ungraded categories)".into(),
            );
        } else if known_category(q.category)
            && ungraded_category(q.category) != (q.grade == AwardGrade::Ungraded as i32)
        {
            bad(
                format!("{p}.grade"),
                "GRADE_MISMATCH",
                if ungraded_category(q.category) {
                    "this category is ungraded: use AWARD_GRADE_UNGRADED".into()
                } else {
                    "this category is graded: use SPECIAL, FIRST, SECOND or THIRD".into()
                },
            );
        }
        if q.quota <= 0 {
            bad(
                format!("{p}.quota"),
                "NOT_POSITIVE",
                "quota must be positive".into(),
            );
        }
        if q.amount_fen < 0 {
            bad(
                format!("{p}.amount_fen"),
                "NEGATIVE",
                "amount_fen must not be negative".into(),
            );
        }
        if !seen.insert((q.category, q.grade)) {
            bad(
                p,
                "DUPLICATE_BUCKET",
                "each (category, grade) pair may appear only once".into(),
            );
        }
    }
    for (i, c) in s.quota_caps.iter().enumerate() {
        let p = format!("quota_caps[{i}]");
        if c.description.trim().is_empty() {
            bad(
                format!("{p}.description"),
                "REQUIRED",
                "say what the cap is".into(),
            );
        }
        if c.limit <= 0 {
            bad(
                format!("{p}.limit"),
                "NOT_POSITIVE",
                "limit must be positive".into(),
            );
        }
        for (j, cat) in c.categories.iter().enumerate() {
            if !known_category(*cat) {
                bad(
                    format!("{p}.categories[{j}]"),
                    "UNKNOWN",
                    "not a known award category".into(),
                );
            }
        }
        for (j, g) in c.grades.iter().enumerate() {
            if !known_grade(*g) {
                bad(
                    format!("{p}.grades[{j}]"),
                    "UNKNOWN",
                    "not a known award grade".into(),
                );
            }
        }
    }
    match kind {
        Kind::Award => {
            if s.budget_fen != 0 {
                bad(
                    "budget_fen".into(),
                    "PROJECT_ONLY",
                    "budget_fen applies to PROJECT programs only".into(),
                );
            }
            if s.per_project_cap_fen != 0 {
                bad(
                    "per_project_cap_fen".into(),
                    "PROJECT_ONLY",
                    "per_project_cap_fen applies to PROJECT programs only".into(),
                );
            }
        }
        Kind::Project => {
            if s.budget_fen < 0 {
                bad(
                    "budget_fen".into(),
                    "NEGATIVE",
                    "budget_fen must be positive".into(),
                );
            }
            if s.per_project_cap_fen < 0 {
                bad(
                    "per_project_cap_fen".into(),
                    "NEGATIVE",
                    "per_project_cap_fen must not be negative".into(),
                );
            } else if s.budget_fen > 0 && s.per_project_cap_fen > s.budget_fen {
                bad(
                    "per_project_cap_fen".into(),
                    "ABOVE_BUDGET",
                    "per_project_cap_fen must not exceed budget_fen".into(),
                );
            }
        }
    }
    let mut fields = std::collections::BTreeSet::new();
    let mut total: i64 = 0;
    for (i, p) in s.priority_fields.iter().enumerate() {
        let path = format!("priority_fields[{i}]");
        if !known_field(p.field) {
            bad(
                format!("{path}.field"),
                "REQUIRED",
                "a known industry field is required".into(),
            );
        } else if !fields.insert(p.field) {
            bad(
                format!("{path}.field"),
                "DUPLICATE_FIELD",
                "each priority field may appear only once".into(),
            );
        }
        if !(1..=10_000).contains(&p.basis_points) {
            bad(
                format!("{path}.target_share_basis_points"),
                "OUT_OF_RANGE",
                "target_share_basis_points must be 1-10,000".into(),
            );
        }
        total += i64::from(p.basis_points.max(0));
    }
    if total > WHOLE_BASIS_POINTS {
        bad(
            "priority_fields".into(),
            "SHARES_ABOVE_WHOLE",
            format!("target shares sum to {total} basis points; at most 10,000"),
        );
    }
    if !(0..=MAX_THRESHOLD_MILLIPOINTS).contains(&s.score_threshold_millipoints) {
        bad(
            "score_threshold_millipoints".into(),
            "OUT_OF_RANGE",
            "score_threshold_millipoints must be 0-100,000".into(),
        );
    }
    if let (Some(start), Some(end)) = (
        s.deadlines.application_start_date,
        s.deadlines.application_deadline,
    ) && start > end
    {
        bad(
            "deadlines.application_deadline".into(),
            "BEFORE_START",
            "application_deadline is before application_start_date".into(),
        );
    }
    if !(1..=MAX_OBJECTION_WINDOW_DAYS).contains(&s.objection_window_days) {
        bad(
            "objection_window_days".into(),
            "OUT_OF_RANGE",
            format!("objection_window_days must be 1-{MAX_OBJECTION_WINDOW_DAYS} (0 = default 10)"),
        );
    }
    v
}

/// Why applications are not accepted on `today` (the programme time zone's date), if they are
/// not.
pub fn outside_application_window(d: &Deadlines, today: NaiveDate) -> Option<String> {
    if let Some(start) = d.application_start_date
        && today < start
    {
        return Some(format!("applications open on {start}; today is {today}"));
    }
    if let Some(end) = d.application_deadline
        && today > end
    {
        return Some(format!(
            "applications closed at the end of {end}; today is {today}"
        ));
    }
    None
}

/// Today in `tz` at `now_us`.
pub fn today(now_us: i64, tz: Tz) -> NaiveDate {
    qilu_common::time::to_datetime(now_us)
        .unwrap_or_default()
        .with_timezone(&tz)
        .date_naive()
}

/// The last instant (µs) of the objection window: the end of the day `days` after the
/// publication day, in `tz`.
pub fn objection_window_end(publish_us: i64, days: i32, tz: Tz) -> i64 {
    let day = today(publish_us, tz) + chrono::Days::new(u64::from(days.max(0).unsigned_abs()) + 1);
    let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    // A midnight skipped by a DST change does not exist in China, but be total anyway.
    let start = tz
        .from_local_datetime(&midnight)
        .earliest()
        .map(|t| t.timestamp_micros())
        .unwrap_or_else(|| midnight.and_utc().timestamp_micros());
    start - 1
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
