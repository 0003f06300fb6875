//! `EvaluateEligibility`: the 2016 measures applied to an enterprise's recorded figures.

use qilu_common::{ApiError, CallContext};
use qilu_proto::registry as pb;

use crate::api::RegistryApi;
use crate::api::enterprises::check_own;
use crate::convert::certification::{eligibility_to_proto, parse_eligibility_question};
use crate::convert::parse_enterprise_name;
use crate::domain::eligibility::{self, Subject};

pub(in crate::api) async fn evaluate_eligibility(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::EvaluateEligibilityRequest,
) -> Result<pb::EvaluateEligibilityResponse, ApiError> {
    let uscc = parse_enterprise_name(&req.name, "name", &api.known_exceptions)?;
    check_own(ctx, uscc.as_str())?;
    let question = parse_eligibility_question(&req, api.today())?;
    let enterprise = api.load(&uscc).await?;
    let fiscal_year = question.fiscal_year;
    let years = crate::store::figures::list_years(&api.db, uscc.as_str()).await?;
    let relevant: Vec<_> = years
        .into_iter()
        .filter(|f| f.year <= fiscal_year && f.year > fiscal_year - eligibility::RD_YEARS)
        .collect();
    let evaluation = eligibility::evaluate(
        Subject {
            uscc: uscc.as_str(),
            established_date: enterprise.fields.established_date,
            technology_fields: &enterprise.fields.technology_fields,
        },
        &relevant,
        fiscal_year,
        question.application_date,
    );
    Ok(eligibility_to_proto(
        enterprise.name(),
        question,
        evaluation,
        api.now_us(),
    ))
}
