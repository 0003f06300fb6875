//! High-tech certificates, annual reports, eligibility.
//!
//! Not implemented yet: every RPC here answers UNIMPLEMENTED until its part of the registry
//! issue lands.

use qilu_proto::registry as pb;

use tonic::{Request, Response, Status};

use super::RegistryApi;

pub(super) async fn create_high_tech_certificate(
    _api: &RegistryApi,
    _request: Request<pb::CreateHighTechCertificateRequest>,
) -> Result<Response<pb::HighTechCertificate>, Status> {
    Err(Status::unimplemented(
        "create_high_tech_certificate is not implemented yet",
    ))
}

pub(super) async fn get_high_tech_certificate(
    _api: &RegistryApi,
    _request: Request<pb::GetHighTechCertificateRequest>,
) -> Result<Response<pb::HighTechCertificate>, Status> {
    Err(Status::unimplemented(
        "get_high_tech_certificate is not implemented yet",
    ))
}

pub(super) async fn list_high_tech_certificates(
    _api: &RegistryApi,
    _request: Request<pb::ListHighTechCertificatesRequest>,
) -> Result<Response<pb::ListHighTechCertificatesResponse>, Status> {
    Err(Status::unimplemented(
        "list_high_tech_certificates is not implemented yet",
    ))
}

pub(super) async fn file_annual_report(
    _api: &RegistryApi,
    _request: Request<pb::FileAnnualReportRequest>,
) -> Result<Response<pb::HighTechCertificate>, Status> {
    Err(Status::unimplemented(
        "file_annual_report is not implemented yet",
    ))
}

pub(super) async fn revoke_high_tech_certificate(
    _api: &RegistryApi,
    _request: Request<pb::RevokeHighTechCertificateRequest>,
) -> Result<Response<pb::HighTechCertificate>, Status> {
    Err(Status::unimplemented(
        "revoke_high_tech_certificate is not implemented yet",
    ))
}

pub(super) async fn evaluate_eligibility(
    _api: &RegistryApi,
    _request: Request<pb::EvaluateEligibilityRequest>,
) -> Result<Response<pb::EvaluateEligibilityResponse>, Status> {
    Err(Status::unimplemented(
        "evaluate_eligibility is not implemented yet",
    ))
}
