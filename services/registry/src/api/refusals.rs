//! Domain refusals as the API answers them: each typed refusal of `domain/` maps to its
//! `ApiError` here, once, so a reason code and its message are written in one place and
//! handlers only `?` the domain's answer.

use qilu_common::ApiError;

use crate::domain::enterprise::{EnterpriseState, StateChangeRefused};

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
