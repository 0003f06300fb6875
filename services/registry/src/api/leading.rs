//! Leading cohorts, ranking, support policies.
//!
//! Not implemented yet: every RPC here answers UNIMPLEMENTED until its part of the registry
//! issue lands.

use qilu_proto::registry as pb;

use tonic::{Request, Response, Status};

use super::RegistryApi;

pub(super) async fn create_leading_cohort(
    _api: &RegistryApi,
    _request: Request<pb::CreateLeadingCohortRequest>,
) -> Result<Response<pb::LeadingCohort>, Status> {
    Err(Status::unimplemented(
        "create_leading_cohort is not implemented yet",
    ))
}

pub(super) async fn get_leading_cohort(
    _api: &RegistryApi,
    _request: Request<pb::GetLeadingCohortRequest>,
) -> Result<Response<pb::LeadingCohort>, Status> {
    Err(Status::unimplemented(
        "get_leading_cohort is not implemented yet",
    ))
}

pub(super) async fn list_leading_cohorts(
    _api: &RegistryApi,
    _request: Request<pb::ListLeadingCohortsRequest>,
) -> Result<Response<pb::ListLeadingCohortsResponse>, Status> {
    Err(Status::unimplemented(
        "list_leading_cohorts is not implemented yet",
    ))
}

pub(super) async fn rank_leading_candidates(
    _api: &RegistryApi,
    _request: Request<pb::RankLeadingCandidatesRequest>,
) -> Result<Response<pb::RankLeadingCandidatesResponse>, Status> {
    Err(Status::unimplemented(
        "rank_leading_candidates is not implemented yet",
    ))
}

pub(super) async fn select_leading_enterprise(
    _api: &RegistryApi,
    _request: Request<pb::SelectLeadingEnterpriseRequest>,
) -> Result<Response<pb::LeadingCohortMember>, Status> {
    Err(Status::unimplemented(
        "select_leading_enterprise is not implemented yet",
    ))
}

pub(super) async fn deselect_leading_enterprise(
    _api: &RegistryApi,
    _request: Request<pb::DeselectLeadingEnterpriseRequest>,
) -> Result<Response<pb::LeadingCohortMember>, Status> {
    Err(Status::unimplemented(
        "deselect_leading_enterprise is not implemented yet",
    ))
}

pub(super) async fn get_leading_cohort_member(
    _api: &RegistryApi,
    _request: Request<pb::GetLeadingCohortMemberRequest>,
) -> Result<Response<pb::LeadingCohortMember>, Status> {
    Err(Status::unimplemented(
        "get_leading_cohort_member is not implemented yet",
    ))
}

pub(super) async fn list_leading_cohort_members(
    _api: &RegistryApi,
    _request: Request<pb::ListLeadingCohortMembersRequest>,
) -> Result<Response<pb::ListLeadingCohortMembersResponse>, Status> {
    Err(Status::unimplemented(
        "list_leading_cohort_members is not implemented yet",
    ))
}

pub(super) async fn create_support_policy(
    _api: &RegistryApi,
    _request: Request<pb::CreateSupportPolicyRequest>,
) -> Result<Response<pb::SupportPolicy>, Status> {
    Err(Status::unimplemented(
        "create_support_policy is not implemented yet",
    ))
}

pub(super) async fn get_support_policy(
    _api: &RegistryApi,
    _request: Request<pb::GetSupportPolicyRequest>,
) -> Result<Response<pb::SupportPolicy>, Status> {
    Err(Status::unimplemented(
        "get_support_policy is not implemented yet",
    ))
}

pub(super) async fn list_support_policies(
    _api: &RegistryApi,
    _request: Request<pb::ListSupportPoliciesRequest>,
) -> Result<Response<pb::ListSupportPoliciesResponse>, Status> {
    Err(Status::unimplemented(
        "list_support_policies is not implemented yet",
    ))
}

pub(super) async fn update_support_policy(
    _api: &RegistryApi,
    _request: Request<pb::UpdateSupportPolicyRequest>,
) -> Result<Response<pb::SupportPolicy>, Status> {
    Err(Status::unimplemented(
        "update_support_policy is not implemented yet",
    ))
}

pub(super) async fn record_support_policy_review(
    _api: &RegistryApi,
    _request: Request<pb::RecordSupportPolicyReviewRequest>,
) -> Result<Response<pb::SupportPolicy>, Status> {
    Err(Status::unimplemented(
        "record_support_policy_review is not implemented yet",
    ))
}
