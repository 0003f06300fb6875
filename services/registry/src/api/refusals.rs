//! Domain refusals as the API answers them: each typed refusal of `domain/` maps to its
//! `ApiError` here, once, so a reason code and its message are written in one place and
//! handlers only `?` the domain's answer.

use qilu_common::ApiError;
use qilu_common::error::FieldViolation;

use crate::domain::certification::CertificateRefused;
use crate::domain::cluster::ClusterRefused;
use crate::domain::enterprise::{EnterpriseState, StateChangeRefused};
use crate::domain::figures::FiguresRefused;

impl From<StateChangeRefused> for ApiError {
    fn from(refused: StateChangeRefused) -> Self {
        match refused {
            StateChangeRefused::Transition { name, from, to } => {
                let allowed_from = match to {
                    EnterpriseState::Revoked => "only an ACTIVE enterprise can be revoked",
                    _ => "only an ACTIVE or REVOKED enterprise can be deregistered",
                };
                let description = format!("{name} is {}; {allowed_from}", from.as_str());
                ApiError::precondition("ENTERPRISE_STATE", name, description)
            }
            StateChangeRefused::BeforeEstablishment {
                effective,
                established,
            } => ApiError::invalid(
                "effective_date",
                "BEFORE_ESTABLISHMENT",
                format!("{effective} is before the enterprise was established ({established})"),
            ),
            StateChangeRefused::BeforePreviousChange {
                effective,
                previous,
            } => ApiError::invalid(
                "effective_date",
                "BEFORE_PREVIOUS_CHANGE",
                format!("{effective} is before the previous state change took effect ({previous})"),
            ),
        }
    }
}

impl From<CertificateRefused> for ApiError {
    fn from(refused: CertificateRefused) -> Self {
        match refused {
            CertificateRefused::HolderNotActive { holder, state } => {
                let description = format!(
                    "{holder} is {state:?}; certificates are recorded only for active enterprises"
                );
                ApiError::precondition("ENTERPRISE_NOT_ACTIVE", holder, description)
            }
            CertificateRefused::OutsideValidity { name, years, year } => ApiError::invalid(
                "report_year",
                "OUTSIDE_VALIDITY",
                format!(
                    "{name} reports on {}-{}, not {year}",
                    years.start(),
                    years.end()
                ),
            ),
            CertificateRefused::Revoked { name } => {
                let description = format!("{name} is revoked; no annual report can be filed");
                ApiError::precondition("CERTIFICATE_REVOKED", name, description)
            }
            CertificateRefused::RevokedForMissedReports { name } => {
                let description = format!(
                    "{name} is revoked for two missed annual reports; no annual report can be filed"
                );
                ApiError::precondition("CERTIFICATE_REVOKED", name, description)
            }
            CertificateRefused::AlreadyFiled {
                name,
                year,
                filed_date,
            } => ApiError::precondition(
                "REPORT_ALREADY_FILED",
                name,
                format!("the {year} report was already filed on {filed_date}"),
            ),
            CertificateRefused::YearNotEnded {
                year,
                earliest,
                filed_date,
                date_given,
            } => ApiError::invalid(
                // The field the caller can change: the date it gave, or the year.
                if date_given {
                    "filed_date"
                } else {
                    "report_year"
                },
                "YEAR_NOT_ENDED",
                format!("the report on {year} can be filed from {earliest}, not {filed_date}"),
            ),
            CertificateRefused::NotValid { name, state } => {
                let description =
                    format!("{name} is {state:?}; only a valid certificate can be revoked");
                ApiError::precondition("CERTIFICATE_NOT_VALID", name, description)
            }
        }
    }
}

impl From<ClusterRefused> for ApiError {
    fn from(refused: ClusterRefused) -> Self {
        match refused {
            ClusterRefused::TargetBeforeStart {
                target_year,
                start_year,
            } => ApiError::invalid(
                "cluster.target_year",
                "BEFORE_START_YEAR",
                format!(
                    "the target year {target_year} is before the cluster's start year {start_year}"
                ),
            ),
            ClusterRefused::NoTarget { name, year } => ApiError::precondition(
                "NO_CLUSTER_SCALE_TARGET",
                name,
                format!(
                    "no CLUSTER_SCALE policy target with a target year is in force for {year}; \
                     set target_scale_fen and target_year on the cluster or record a policy target"
                ),
            ),
        }
    }
}

impl From<FiguresRefused> for ApiError {
    fn from(FiguresRefused(above): FiguresRefused) -> Self {
        ApiError::InvalidArgument(
            above
                .into_iter()
                .map(|a| {
                    FieldViolation::new(
                        format!("annual_figures.{}.value", a.blamed.as_str()),
                        "EXCEEDS_TOTAL",
                        format!(
                            "{} ({}) must not be above {} ({})",
                            a.part.as_str(),
                            a.part_value,
                            a.whole.as_str(),
                            a.whole_value
                        ),
                    )
                })
                .collect(),
        )
    }
}
