//! proto ⇄ domain for leading cohorts, their members and the candidate ranking: resource names,
//! request inputs and filters parsed into domain values (every bad field reported at once), the
//! domain values shown as protos, and the one mapping of each leading refusal to its
//! `ApiError`. Support policies are in [`policies`].

pub mod policies;

use qilu_common::filter::{Filter, FilterField, Kind, Op, Value};
use qilu_common::input::name::{bad_name, segments, single};
use qilu_common::input::{IdRule, Text, Violations, etag_of, required};
use qilu_common::limits::echo;
use qilu_common::time::to_timestamp;
use qilu_common::{ApiError, FieldViolation};
use qilu_proto::common::GreenCategory;
use qilu_proto::registry as pb;

use crate::convert::parse_uscc;
use crate::domain::leading::{
    Candidate, Cohort, CohortTarget, DeselectRefused, MAX_REASON_CHARS, Member, MemberState,
    SelectRefused, cohort_name, member_name, parse_year, valid_year,
};
use crate::domain::uscc::{KnownExceptions, Uscc};
use crate::store::leading::{MemberFilter, YearCmp};

/// Resource type of a cohort, for `ResourceInfo`.
pub const COHORT_TYPE: &str = "registry.qilu.gov.cn/LeadingCohort";
/// Resource type of a membership.
pub const MEMBER_TYPE: &str = "registry.qilu.gov.cn/LeadingCohortMember";

const COHORT_PATTERN: &str = "leadingCohorts/{year}";
const MEMBER_PATTERN: &str = "leadingCohorts/{year}/members/{uscc}";

fn is_year(raw: &str) -> bool {
    parse_year(raw).is_some()
}

/// The year of `leadingCohorts/{year}` (four digits, 1900-9999) in `field`.
pub fn parse_cohort_name(raw: &str, field: &str) -> Result<i32, FieldViolation> {
    let year = single(raw, COHORT_PATTERN, field, IdRule::Custom(is_year))?;
    parse_year(year).ok_or_else(|| bad_name(raw, COHORT_PATTERN, field))
}

/// The year and USCC of `leadingCohorts/{year}/members/{uscc}` in `field`; a code that is not
/// a USCC is reported as the USCC check says (e.g. `INVALID_CHECKSUM`).
pub fn parse_member_name(
    raw: &str,
    field: &str,
    known: &KnownExceptions,
) -> Result<(i32, Uscc), FieldViolation> {
    let parts = segments(raw, MEMBER_PATTERN, field, IdRule::Any)?;
    let [year, code] = parts.as_slice() else {
        return Err(bad_name(raw, MEMBER_PATTERN, field));
    };
    let year = parse_year(year).ok_or_else(|| bad_name(raw, MEMBER_PATTERN, field))?;
    Ok((year, parse_uscc(code, field, known)?))
}

/// `NOT_FOUND` for cohort `year`.
pub fn cohort_not_found(year: i32) -> ApiError {
    ApiError::NotFound {
        resource_type: COHORT_TYPE,
        name: cohort_name(year),
    }
}

/// `NOT_FOUND` for the membership of `uscc` in cohort `year`.
pub fn member_not_found(year: i32, uscc: &str) -> ApiError {
    ApiError::NotFound {
        resource_type: MEMBER_TYPE,
        name: member_name(year, uscc),
    }
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

/// A valid `CreateLeadingCohort`.
#[derive(Debug)]
pub struct NewCohort {
    /// Programme year.
    pub year: i32,
    /// Note, trimmed.
    pub description: String,
}

/// Parses `CreateLeadingCohort`, every bad field at once.
pub fn parse_new_cohort(req: &pb::CreateLeadingCohortRequest) -> Result<NewCohort, ApiError> {
    let input = required(req.leading_cohort.as_ref(), "leading_cohort")?;
    let mut v = Violations::new();
    if input.year == 0 {
        v.push(FieldViolation::new(
            "leading_cohort.year",
            "REQUIRED",
            "the programme year is required",
        ));
    } else if !valid_year(input.year) {
        v.push(FieldViolation::new(
            "leading_cohort.year",
            "OUT_OF_RANGE",
            "a four-digit year, 1900-9999",
        ));
    }
    let description = v.take(
        Text::optional(MAX_REASON_CHARS)
            .multiline()
            .parse(&input.description, "leading_cohort.description"),
    );
    v.into_result(description.map(|description| NewCohort {
        year: input.year,
        description,
    }))
}

/// A valid `SelectLeadingEnterprise`.
#[derive(Debug)]
pub struct SelectInput {
    /// Cohort year.
    pub year: i32,
    /// The enterprise selected.
    pub uscc: Uscc,
    /// Why, trimmed.
    pub reason: String,
}

/// Parses `SelectLeadingEnterprise`, every bad field at once.
pub fn parse_select(
    req: &pb::SelectLeadingEnterpriseRequest,
    known: &KnownExceptions,
) -> Result<SelectInput, ApiError> {
    let mut v = Violations::new();
    let year = v.take(parse_cohort_name(&req.cohort, "cohort"));
    let uscc = v.absorb(crate::convert::parse_enterprise_name(
        &req.enterprise,
        "enterprise",
        known,
    ))?;
    let reason = v.take(reason(&req.reason));
    let input = match (year, uscc, reason) {
        (Some(year), Some(uscc), Some(reason)) => Some(SelectInput { year, uscc, reason }),
        _ => None,
    };
    v.into_result(input)
}

/// A valid `DeselectLeadingEnterprise`.
#[derive(Debug)]
pub struct DeselectInput {
    /// Cohort year.
    pub year: i32,
    /// The member's enterprise.
    pub uscc: Uscc,
    /// Why, trimmed.
    pub reason: String,
}

/// Parses `DeselectLeadingEnterprise`, every bad field at once.
pub fn parse_deselect(
    req: &pb::DeselectLeadingEnterpriseRequest,
    known: &KnownExceptions,
) -> Result<DeselectInput, ApiError> {
    let mut v = Violations::new();
    let member = v.take(parse_member_name(&req.name, "name", known));
    let reason = v.take(reason(&req.reason));
    let input = match (member, reason) {
        (Some((year, uscc)), Some(reason)) => Some(DeselectInput { year, uscc, reason }),
        _ => None,
    };
    v.into_result(input)
}

fn reason(raw: &str) -> Result<String, FieldViolation> {
    Text::required(MAX_REASON_CHARS)
        .multiline()
        .parse(raw, "reason")
}

/// The fiscal year a ranking scores: `figures_year`, or the cohort year minus one when 0.
pub fn parse_figures_year(figures_year: i32, cohort_year: i32) -> Result<i32, ApiError> {
    match figures_year {
        0 => Ok(cohort_year - 1),
        y if valid_year(y) => Ok(y),
        _ => Err(ApiError::invalid(
            "figures_year",
            "OUT_OF_RANGE",
            "a four-digit fiscal year, 1900-9999 (0 for the cohort year minus one)",
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Filters
// ---------------------------------------------------------------------------------------------

const COHORT_FILTER: &[FilterField] = &[FilterField::with(
    "year",
    &[Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge],
    Kind::Int,
)];

/// The year of a filter term on `field`: an integer that fits a year.
pub(crate) fn filter_year(field: &str, value: i64) -> Result<i32, ApiError> {
    i32::try_from(value).map_err(|_| {
        ApiError::invalid(
            "filter",
            "INVALID_FILTER",
            format!("{field}: expects a year"),
        )
    })
}

/// `ListLeadingCohorts.filter`: comparisons on `year`.
pub fn parse_cohort_filter(raw: &str) -> Result<Vec<YearCmp>, ApiError> {
    Filter::typed(raw, COHORT_FILTER)?
        .into_iter()
        .map(|t| {
            let Value::Int(y) = t.value else {
                return Err(ApiError::internal("year is declared an integer"));
            };
            let y = filter_year(t.field, y)?;
            Ok(match t.op {
                Op::Eq => YearCmp::Eq(y),
                Op::Ne => YearCmp::Ne(y),
                Op::Lt => YearCmp::Lt(y),
                Op::Le => YearCmp::Le(y),
                Op::Gt => YearCmp::Gt(y),
                Op::Ge => YearCmp::Ge(y),
                Op::Has => return Err(ApiError::internal("year does not support :")),
            })
        })
        .collect()
}

/// The conditions of a ranking filter.
#[derive(Debug)]
pub struct CandidateFilter {
    /// City equals.
    pub city: Option<String>,
    /// Zone equals.
    pub zone: Option<String>,
    /// `GreenCategory` number equals.
    pub green_category: Option<i32>,
    /// Already SELECTED or not.
    pub selected: Option<bool>,
    /// Eligible candidates (the default) or the ineligible ones.
    pub eligible: bool,
}

impl CandidateFilter {
    /// Whether `c` passes.
    pub fn admits(&self, c: &Candidate) -> bool {
        c.eligible == self.eligible
            && self.city.as_ref().is_none_or(|x| *x == c.city)
            && self.zone.as_ref().is_none_or(|x| *x == c.zone)
            && self.green_category.is_none_or(|x| x == c.green_category)
            && self.selected.is_none_or(|x| x == c.selected)
    }
}

const CANDIDATE_FILTER: &[FilterField] = &[
    FilterField::eq("city", Kind::Text),
    FilterField::eq("zone", Kind::Text),
    // Text, read below: GREEN_CATEGORY_UNSPECIFIED is a real filter here (the ineligible
    // candidates not yet classified), which `Kind::Enum` would refuse.
    FilterField::eq("green_category", Kind::Text),
    FilterField::eq("selected", Kind::Bool),
    FilterField::eq("eligible", Kind::Bool),
];

/// `RankLeadingCandidates.filter`; without `eligible` only eligible candidates are shown.
pub fn parse_candidate_filter(raw: &str) -> Result<CandidateFilter, ApiError> {
    let mut out = CandidateFilter {
        city: None,
        zone: None,
        green_category: None,
        selected: None,
        eligible: true,
    };
    for t in Filter::typed(raw, CANDIDATE_FILTER)? {
        match (t.field, t.value) {
            ("city", Value::Text(v)) => out.city = Some(v),
            ("zone", Value::Text(v)) => out.zone = Some(v),
            ("green_category", Value::Text(v)) => {
                let category = GreenCategory::from_str_name(&v).ok_or_else(|| {
                    ApiError::invalid(
                        "filter",
                        "INVALID_FILTER",
                        format!("green_category: {} is not a GreenCategory", echo(&v)),
                    )
                })?;
                out.green_category = Some(category as i32);
            }
            ("selected", Value::Bool(v)) => out.selected = Some(v),
            ("eligible", Value::Bool(v)) => out.eligible = v,
            _ => {}
        }
    }
    Ok(out)
}

const MEMBER_FILTER: &[FilterField] = &[
    FilterField::eq(
        "state",
        Kind::Enum {
            type_name: "MemberState",
            from_name: |s| pb::MemberState::from_str_name(s).map(|m| m as i32),
        },
    ),
    FilterField::eq("has_support_policy", Kind::Bool),
];

/// `ListLeadingCohortMembers.filter`.
pub fn parse_member_filter(raw: &str) -> Result<MemberFilter, ApiError> {
    let mut out = MemberFilter::default();
    for t in Filter::typed(raw, MEMBER_FILTER)? {
        match (t.field, t.value) {
            ("state", Value::Enum(v)) => {
                out.state = Some(
                    MemberState::from_code(v)
                        .ok_or_else(|| ApiError::internal("a MemberState has no domain state"))?,
                );
            }
            ("has_support_policy", Value::Bool(v)) => out.has_support_policy = Some(v),
            _ => {}
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/// A cohort as the API shows it, with its size target and counts resolved when read.
pub fn cohort_to_proto(
    c: &Cohort,
    target: Option<&CohortTarget>,
    selected: u64,
    with_policy: u64,
) -> pb::LeadingCohort {
    pb::LeadingCohort {
        name: c.name(),
        year: c.year,
        target_size: target.map(|t| t.size).unwrap_or(0),
        target_policy: target
            .map(|t| format!("policyTargets/{}", t.id))
            .unwrap_or_default(),
        selected_count: i32::try_from(selected).unwrap_or(i32::MAX),
        with_policy_count: i32::try_from(with_policy).unwrap_or(i32::MAX),
        description: c.description.clone(),
        create_time: Some(to_timestamp(c.create_time_us)),
        update_time: Some(to_timestamp(c.update_time_us)),
        etag: etag_of(&c.name(), c.version),
    }
}

fn source_text(source: i32, reference: &str) -> String {
    if source == 0 {
        return String::new();
    }
    let name = pb::FigureSource::try_from(source)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("FIGURE_SOURCE_")
                .to_string()
        })
        .unwrap_or_else(|_| source.to_string());
    if reference.is_empty() {
        name
    } else {
        format!("{name} {reference}")
    }
}

/// A ranked candidate as the API shows it.
pub fn candidate_to_proto(c: &Candidate) -> pb::LeadingCandidate {
    pb::LeadingCandidate {
        enterprise: format!("enterprises/{}", c.uscc),
        display_name: c.display_name.clone(),
        rank: c.rank,
        score_millipoints: c.score_milli,
        components: c
            .components
            .iter()
            .map(|x| pb::ScoreComponent {
                component: x.id.clone(),
                raw_value: x.raw_value.clone(),
                points_millipoints: x.points_milli,
                weight_basis_points: x.weight_bp,
                contribution_millipoints: x.contribution_milli,
                rule: x.rule.clone(),
                figures_used: x
                    .figures_used
                    .iter()
                    .map(|f| pb::FigureUsed {
                        figure: f.figure.clone(),
                        year: f.year,
                        value: f.value.clone(),
                        unit: f.unit.clone(),
                        source: source_text(f.source, &f.reference),
                    })
                    .collect(),
                missing_data: x.missing_data,
            })
            .collect(),
        eligible: c.eligible,
        ineligibility_reasons: c.ineligibility_reasons.clone(),
        selected: c.selected,
        green_category: c.green_category,
        city: c.city.clone(),
    }
}

/// The AIP-154 etag of a membership.
pub fn member_etag(m: &Member) -> String {
    etag_of(&m.name(), m.version)
}

/// A membership as the API shows it.
pub fn member_to_proto(m: &Member) -> pb::LeadingCohortMember {
    pb::LeadingCohortMember {
        name: m.name(),
        enterprise: format!("enterprises/{}", m.uscc),
        state: match m.state {
            MemberState::Selected => pb::MemberState::Selected,
            MemberState::Deselected => pb::MemberState::Deselected,
        } as i32,
        ranking_at_selection: Some(candidate_to_proto(&m.ranking_at_selection)),
        select_reason: m.select_reason.clone(),
        selected_by: m.selected_by.clone(),
        select_time: Some(to_timestamp(m.select_time_us)),
        deselect_reason: m.deselect_reason.clone(),
        deselect_time: (m.deselect_time_us != 0).then(|| to_timestamp(m.deselect_time_us)),
        support_policy: m.support_policy.clone(),
        create_time: Some(to_timestamp(m.create_time_us)),
        update_time: Some(to_timestamp(m.update_time_us)),
        etag: member_etag(m),
    }
}

// ---------------------------------------------------------------------------------------------
// Refusals
// ---------------------------------------------------------------------------------------------

impl From<SelectRefused> for ApiError {
    fn from(r: SelectRefused) -> ApiError {
        match r {
            SelectRefused::AlreadySelected {
                member,
                enterprise,
                cohort,
            } => ApiError::precondition(
                "ALREADY_SELECTED",
                member,
                format!("{enterprise} is already selected in {cohort}"),
            ),
            SelectRefused::NotEligible {
                enterprise,
                reasons,
            } => ApiError::precondition(
                "NOT_ELIGIBLE",
                enterprise.clone(),
                format!(
                    "{enterprise} is not an eligible candidate: {}",
                    reasons.join("; ")
                ),
            ),
            SelectRefused::NoTarget { cohort, year } => ApiError::precondition(
                "NO_COHORT_TARGET",
                cohort,
                format!(
                    "no LEADING_COHORT_SIZE policy target is in force for {year}, so the cohort's size is 0"
                ),
            ),
            SelectRefused::Full {
                cohort,
                selected,
                target,
            } => ApiError::precondition(
                "COHORT_FULL",
                cohort.clone(),
                format!(
                    "{cohort} already has {selected} selected members, its target size (policyTargets/{}: {})",
                    target.id, target.size
                ),
            ),
        }
    }
}

impl From<DeselectRefused> for ApiError {
    fn from(r: DeselectRefused) -> ApiError {
        match r {
            DeselectRefused::NotSelected { member } => ApiError::precondition(
                "MEMBER_NOT_SELECTED",
                member.clone(),
                format!("{member} is not SELECTED"),
            ),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn reason(r: Result<impl std::fmt::Debug, FieldViolation>) -> String {
        r.err().map(|v| v.reason).unwrap_or_default()
    }

    #[test]
    fn cohort_and_member_names_parse_or_say_why_not() {
        assert_eq!(
            parse_cohort_name("leadingCohorts/2023", "cohort").ok(),
            Some(2023)
        );
        for bad in [
            "leadingCohorts/23",
            "leadingCohorts/abcd",
            "cohorts/2023",
            "leadingCohorts/0999",
            "leadingCohorts/2023/members/x",
        ] {
            assert_eq!(
                reason(parse_cohort_name(bad, "cohort")),
                "INVALID_RESOURCE_NAME",
                "{bad}"
            );
        }
        assert_eq!(reason(parse_cohort_name("", "cohort")), "REQUIRED");
        let known = KnownExceptions::default();
        let code = "91350100M000100Y43";
        let (year, uscc) = parse_member_name(
            &format!("leadingCohorts/2023/members/{code}"),
            "name",
            &known,
        )
        .unwrap();
        assert_eq!((year, uscc.as_str()), (2023, code));
        assert_eq!(
            reason(parse_member_name("leadingCohorts/2023/X", "name", &known)),
            "INVALID_RESOURCE_NAME"
        );
        assert_eq!(
            reason(parse_member_name(
                &format!("leadingCohorts/23/members/{code}"),
                "name",
                &known
            )),
            "INVALID_RESOURCE_NAME"
        );
        assert_eq!(
            reason(parse_member_name(
                "leadingCohorts/2023/members/91350100M000100Y4Z",
                "name",
                &known
            )),
            "INVALID_CHECKSUM"
        );
    }

    #[test]
    fn select_reports_every_bad_field_at_once() {
        let req = pb::SelectLeadingEnterpriseRequest {
            cohort: "leadingCohorts/24".into(),
            enterprise: "enterprises/91350100M000100Y4Z".into(),
            reason: "  ".into(),
            ..Default::default()
        };
        let Err(ApiError::InvalidArgument(v)) = parse_select(&req, &KnownExceptions::default())
        else {
            panic!("expected INVALID_ARGUMENT");
        };
        let got: Vec<(&str, &str)> = v
            .iter()
            .map(|v| (v.field.as_str(), v.reason.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("cohort", "INVALID_RESOURCE_NAME"),
                ("enterprise", "INVALID_CHECKSUM"),
                ("reason", "REQUIRED")
            ]
        );
    }

    #[test]
    fn candidate_filters_default_to_eligible_and_refuse_unknown_fields() {
        let f = parse_candidate_filter("").unwrap();
        assert!(f.eligible);
        let f = parse_candidate_filter(
            r#"city = "Qingdao" AND green_category = GREEN_CATEGORY_CLEAN_ENERGY AND selected = false AND eligible = false"#,
        )
        .unwrap();
        assert_eq!(f.city.as_deref(), Some("Qingdao"));
        assert_eq!(f.green_category, Some(3));
        assert_eq!(f.selected, Some(false));
        assert!(!f.eligible);
        assert!(parse_candidate_filter("revenue = 5").is_err());
        assert!(parse_candidate_filter("selected = maybe").is_err());
        assert!(parse_candidate_filter("city : \"Q\"").is_err());
        assert!(parse_candidate_filter("green_category = GREEN").is_err());
        let unclassified = parse_candidate_filter("green_category = GREEN_CATEGORY_UNSPECIFIED");
        assert_eq!(unclassified.unwrap().green_category, Some(0));
    }

    #[test]
    fn member_and_cohort_filters_parse_enum_names_and_year_comparisons() {
        let f = parse_member_filter("state = MEMBER_STATE_SELECTED AND has_support_policy = false")
            .unwrap();
        assert_eq!(f.state, Some(MemberState::Selected));
        assert_eq!(f.has_support_policy, Some(false));
        assert!(parse_member_filter("state = SELECTED").is_err());
        assert!(parse_member_filter("state = MEMBER_STATE_UNSPECIFIED").is_err());
        assert_eq!(
            parse_cohort_filter("year >= 2021 AND year != 2022").unwrap(),
            [YearCmp::Ge(2021), YearCmp::Ne(2022)]
        );
        assert!(parse_cohort_filter("year : 2021").is_err());
        assert!(parse_cohort_filter("year = soon").is_err());
        assert!(parse_cohort_filter("year = 99999999999").is_err());
    }

    #[test]
    fn selection_refusals_keep_their_reasons_and_subjects() {
        let cases = [
            (
                SelectRefused::AlreadySelected {
                    member: "leadingCohorts/2024/members/U".into(),
                    enterprise: "enterprises/U".into(),
                    cohort: "leadingCohorts/2024".into(),
                },
                "ALREADY_SELECTED",
                "leadingCohorts/2024/members/U",
                "enterprises/U is already selected in leadingCohorts/2024",
            ),
            (
                SelectRefused::NotEligible {
                    enterprise: "enterprises/U".into(),
                    reasons: vec!["enterprise is REVOKED, not ACTIVE".into()],
                },
                "NOT_ELIGIBLE",
                "enterprises/U",
                "enterprises/U is not an eligible candidate: enterprise is REVOKED, not ACTIVE",
            ),
            (
                SelectRefused::NoTarget {
                    cohort: "leadingCohorts/2019".into(),
                    year: 2019,
                },
                "NO_COHORT_TARGET",
                "leadingCohorts/2019",
                "no LEADING_COHORT_SIZE policy target is in force for 2019, so the cohort's size is 0",
            ),
            (
                SelectRefused::Full {
                    cohort: "leadingCohorts/2030".into(),
                    selected: 2,
                    target: CohortTarget {
                        id: "leading-cohort-2021".into(),
                        size: 2,
                    },
                },
                "COHORT_FULL",
                "leadingCohorts/2030",
                "leadingCohorts/2030 already has 2 selected members, its target size (policyTargets/leading-cohort-2021: 2)",
            ),
        ];
        for (refusal, kind, subject, message) in cases {
            let ApiError::FailedPrecondition {
                message: got,
                violations,
            } = ApiError::from(refusal)
            else {
                panic!("expected FAILED_PRECONDITION");
            };
            assert_eq!(got, message);
            assert_eq!(
                (violations[0].kind.as_str(), violations[0].subject.as_str()),
                (kind, subject)
            );
        }
    }
}
