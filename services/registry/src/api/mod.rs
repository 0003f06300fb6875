//! The tonic implementation of `qilu.registry.v1.EnterpriseRegistryService`. Thin on purpose:
//! each RPC delegates to the module of its resource, which parses the request (`convert`),
//! calls the domain and the store, and converts the answer. One module per concept:
//!
//! | module | RPCs |
//! |---|---|
//! | `enterprises` | enterprises and USCC validation |
//! | `status` | revoke and deregister an enterprise |
//! | `import` | bulk import (client streaming) |
//! | `figures` | annual figures |
//! | `certification` | high-tech certificates, annual reports, eligibility |
//! | `leading` | leading cohorts, ranking, support policies |
//! | `zones` | high-tech zones, clusters, cluster progress |
//! | `policy` | policy targets (dated, versioned data) |
//! | `statistics` | programme statistics |
//! | `changes` | change feed |
//! | `audit` | audit log |

mod audit;
mod certification;
mod changes;
mod enterprises;
mod figures;
mod import;
mod leading;
mod policy;
mod statistics;
mod status;
mod zones;

use chrono::NaiveDate;
use qilu_common::ApiError;
use qilu_common::point_read::{PointReads, SharedReads};
use qilu_proto::common as cpb;
use qilu_proto::registry as pb;
use qilu_proto::registry::enterprise_registry_service_server::EnterpriseRegistryService;
use sea_orm::DatabaseConnection;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status, Streaming};

use crate::domain::enterprise::Enterprise;
use crate::domain::uscc::{self, KnownExceptions};
use crate::store::enterprise as store;

/// The registry's gRPC handlers and what they share.
#[derive(Debug, Clone)]
pub struct RegistryApi {
    db: DatabaseConnection,
    /// GetEnterprise's read (connections kept between reads, one statement for concurrent
    /// callers: `qilu_common::point_read`).
    reads: std::sync::Arc<SharedReads<store::WithCertification>>,
    known_exceptions: KnownExceptions,
    time_zone: chrono_tz::Tz,
}

impl RegistryApi {
    /// Handlers over `db`, with the USCC allow-list and the programme time zone.
    pub fn new(
        db: DatabaseConnection,
        known_exceptions: KnownExceptions,
        time_zone: chrono_tz::Tz,
    ) -> Self {
        RegistryApi {
            reads: std::sync::Arc::new(store::certified_reads(&PointReads::new(&db))),
            db,
            known_exceptions,
            time_zone,
        }
    }

    /// Today in the programme's time zone (not the server's).
    fn today(&self) -> NaiveDate {
        chrono::Utc::now()
            .with_timezone(&self.time_zone)
            .date_naive()
    }

    async fn load(&self, uscc: &uscc::Uscc) -> Result<Enterprise, ApiError> {
        store::get(&self.db, uscc.as_str())
            .await?
            .ok_or_else(|| enterprises::not_found(uscc.as_str()))?
            .into_domain()
            .map_err(ApiError::internal)
    }
}

#[tonic::async_trait]
impl EnterpriseRegistryService for RegistryApi {
    type WatchChangesStream = BoxStream<pb::WatchChangesResponse>;

    async fn create_enterprise(
        &self,
        request: Request<pb::CreateEnterpriseRequest>,
    ) -> Result<Response<pb::Enterprise>, Status> {
        enterprises::create_enterprise(self, request).await
    }

    async fn get_enterprise(
        &self,
        request: Request<pb::GetEnterpriseRequest>,
    ) -> Result<Response<pb::Enterprise>, Status> {
        enterprises::get_enterprise(self, request).await
    }

    async fn list_enterprises(
        &self,
        request: Request<pb::ListEnterprisesRequest>,
    ) -> Result<Response<pb::ListEnterprisesResponse>, Status> {
        enterprises::list_enterprises(self, request).await
    }

    async fn update_enterprise(
        &self,
        request: Request<pb::UpdateEnterpriseRequest>,
    ) -> Result<Response<pb::Enterprise>, Status> {
        enterprises::update_enterprise(self, request).await
    }

    async fn batch_get_enterprises(
        &self,
        request: Request<pb::BatchGetEnterprisesRequest>,
    ) -> Result<Response<pb::BatchGetEnterprisesResponse>, Status> {
        enterprises::batch_get_enterprises(self, request).await
    }

    async fn validate_uscc(
        &self,
        request: Request<pb::ValidateUsccRequest>,
    ) -> Result<Response<pb::ValidateUsccResponse>, Status> {
        enterprises::validate_uscc(self, request).await
    }

    async fn revoke_enterprise(
        &self,
        request: Request<pb::RevokeEnterpriseRequest>,
    ) -> Result<Response<pb::Enterprise>, Status> {
        status::revoke_enterprise(self, request).await
    }

    async fn deregister_enterprise(
        &self,
        request: Request<pb::DeregisterEnterpriseRequest>,
    ) -> Result<Response<pb::Enterprise>, Status> {
        status::deregister_enterprise(self, request).await
    }

    async fn import_enterprises(
        &self,
        request: Request<Streaming<pb::ImportEnterprisesRequest>>,
    ) -> Result<Response<pb::ImportEnterprisesResponse>, Status> {
        import::import_enterprises(self, request).await
    }

    async fn get_annual_figures(
        &self,
        request: Request<pb::GetAnnualFiguresRequest>,
    ) -> Result<Response<pb::AnnualFigures>, Status> {
        figures::get_annual_figures(self, request).await
    }

    async fn list_annual_figures(
        &self,
        request: Request<pb::ListAnnualFiguresRequest>,
    ) -> Result<Response<pb::ListAnnualFiguresResponse>, Status> {
        figures::list_annual_figures(self, request).await
    }

    async fn update_annual_figures(
        &self,
        request: Request<pb::UpdateAnnualFiguresRequest>,
    ) -> Result<Response<pb::AnnualFigures>, Status> {
        figures::update_annual_figures(self, request).await
    }

    async fn create_high_tech_certificate(
        &self,
        request: Request<pb::CreateHighTechCertificateRequest>,
    ) -> Result<Response<pb::HighTechCertificate>, Status> {
        certification::create_high_tech_certificate(self, request).await
    }

    async fn get_high_tech_certificate(
        &self,
        request: Request<pb::GetHighTechCertificateRequest>,
    ) -> Result<Response<pb::HighTechCertificate>, Status> {
        certification::get_high_tech_certificate(self, request).await
    }

    async fn list_high_tech_certificates(
        &self,
        request: Request<pb::ListHighTechCertificatesRequest>,
    ) -> Result<Response<pb::ListHighTechCertificatesResponse>, Status> {
        certification::list_high_tech_certificates(self, request).await
    }

    async fn file_annual_report(
        &self,
        request: Request<pb::FileAnnualReportRequest>,
    ) -> Result<Response<pb::HighTechCertificate>, Status> {
        certification::file_annual_report(self, request).await
    }

    async fn revoke_high_tech_certificate(
        &self,
        request: Request<pb::RevokeHighTechCertificateRequest>,
    ) -> Result<Response<pb::HighTechCertificate>, Status> {
        certification::revoke_high_tech_certificate(self, request).await
    }

    async fn evaluate_eligibility(
        &self,
        request: Request<pb::EvaluateEligibilityRequest>,
    ) -> Result<Response<pb::EvaluateEligibilityResponse>, Status> {
        certification::evaluate_eligibility(self, request).await
    }

    async fn create_leading_cohort(
        &self,
        request: Request<pb::CreateLeadingCohortRequest>,
    ) -> Result<Response<pb::LeadingCohort>, Status> {
        leading::create_leading_cohort(self, request).await
    }

    async fn get_leading_cohort(
        &self,
        request: Request<pb::GetLeadingCohortRequest>,
    ) -> Result<Response<pb::LeadingCohort>, Status> {
        leading::get_leading_cohort(self, request).await
    }

    async fn list_leading_cohorts(
        &self,
        request: Request<pb::ListLeadingCohortsRequest>,
    ) -> Result<Response<pb::ListLeadingCohortsResponse>, Status> {
        leading::list_leading_cohorts(self, request).await
    }

    async fn rank_leading_candidates(
        &self,
        request: Request<pb::RankLeadingCandidatesRequest>,
    ) -> Result<Response<pb::RankLeadingCandidatesResponse>, Status> {
        leading::rank_leading_candidates(self, request).await
    }

    async fn select_leading_enterprise(
        &self,
        request: Request<pb::SelectLeadingEnterpriseRequest>,
    ) -> Result<Response<pb::LeadingCohortMember>, Status> {
        leading::select_leading_enterprise(self, request).await
    }

    async fn deselect_leading_enterprise(
        &self,
        request: Request<pb::DeselectLeadingEnterpriseRequest>,
    ) -> Result<Response<pb::LeadingCohortMember>, Status> {
        leading::deselect_leading_enterprise(self, request).await
    }

    async fn get_leading_cohort_member(
        &self,
        request: Request<pb::GetLeadingCohortMemberRequest>,
    ) -> Result<Response<pb::LeadingCohortMember>, Status> {
        leading::get_leading_cohort_member(self, request).await
    }

    async fn list_leading_cohort_members(
        &self,
        request: Request<pb::ListLeadingCohortMembersRequest>,
    ) -> Result<Response<pb::ListLeadingCohortMembersResponse>, Status> {
        leading::list_leading_cohort_members(self, request).await
    }

    async fn create_support_policy(
        &self,
        request: Request<pb::CreateSupportPolicyRequest>,
    ) -> Result<Response<pb::SupportPolicy>, Status> {
        leading::create_support_policy(self, request).await
    }

    async fn get_support_policy(
        &self,
        request: Request<pb::GetSupportPolicyRequest>,
    ) -> Result<Response<pb::SupportPolicy>, Status> {
        leading::get_support_policy(self, request).await
    }

    async fn list_support_policies(
        &self,
        request: Request<pb::ListSupportPoliciesRequest>,
    ) -> Result<Response<pb::ListSupportPoliciesResponse>, Status> {
        leading::list_support_policies(self, request).await
    }

    async fn update_support_policy(
        &self,
        request: Request<pb::UpdateSupportPolicyRequest>,
    ) -> Result<Response<pb::SupportPolicy>, Status> {
        leading::update_support_policy(self, request).await
    }

    async fn record_support_policy_review(
        &self,
        request: Request<pb::RecordSupportPolicyReviewRequest>,
    ) -> Result<Response<pb::SupportPolicy>, Status> {
        leading::record_support_policy_review(self, request).await
    }

    async fn create_zone(
        &self,
        request: Request<pb::CreateZoneRequest>,
    ) -> Result<Response<pb::Zone>, Status> {
        zones::create_zone(self, request).await
    }

    async fn get_zone(
        &self,
        request: Request<pb::GetZoneRequest>,
    ) -> Result<Response<pb::Zone>, Status> {
        zones::get_zone(self, request).await
    }

    async fn list_zones(
        &self,
        request: Request<pb::ListZonesRequest>,
    ) -> Result<Response<pb::ListZonesResponse>, Status> {
        zones::list_zones(self, request).await
    }

    async fn update_zone(
        &self,
        request: Request<pb::UpdateZoneRequest>,
    ) -> Result<Response<pb::Zone>, Status> {
        zones::update_zone(self, request).await
    }

    async fn create_cluster(
        &self,
        request: Request<pb::CreateClusterRequest>,
    ) -> Result<Response<pb::Cluster>, Status> {
        zones::create_cluster(self, request).await
    }

    async fn get_cluster(
        &self,
        request: Request<pb::GetClusterRequest>,
    ) -> Result<Response<pb::Cluster>, Status> {
        zones::get_cluster(self, request).await
    }

    async fn list_clusters(
        &self,
        request: Request<pb::ListClustersRequest>,
    ) -> Result<Response<pb::ListClustersResponse>, Status> {
        zones::list_clusters(self, request).await
    }

    async fn update_cluster(
        &self,
        request: Request<pb::UpdateClusterRequest>,
    ) -> Result<Response<pb::Cluster>, Status> {
        zones::update_cluster(self, request).await
    }

    async fn get_cluster_progress(
        &self,
        request: Request<pb::GetClusterProgressRequest>,
    ) -> Result<Response<pb::ClusterProgress>, Status> {
        zones::get_cluster_progress(self, request).await
    }

    async fn create_policy_target(
        &self,
        request: Request<pb::CreatePolicyTargetRequest>,
    ) -> Result<Response<pb::PolicyTarget>, Status> {
        policy::create_policy_target(self, request).await
    }

    async fn get_policy_target(
        &self,
        request: Request<pb::GetPolicyTargetRequest>,
    ) -> Result<Response<pb::PolicyTarget>, Status> {
        policy::get_policy_target(self, request).await
    }

    async fn list_policy_targets(
        &self,
        request: Request<pb::ListPolicyTargetsRequest>,
    ) -> Result<Response<pb::ListPolicyTargetsResponse>, Status> {
        policy::list_policy_targets(self, request).await
    }

    async fn get_programme_statistics(
        &self,
        request: Request<pb::GetProgrammeStatisticsRequest>,
    ) -> Result<Response<pb::ProgrammeStatistics>, Status> {
        statistics::get_programme_statistics(self, request).await
    }

    async fn list_changes(
        &self,
        request: Request<pb::ListChangesRequest>,
    ) -> Result<Response<pb::ListChangesResponse>, Status> {
        changes::list_changes(self, request).await
    }

    async fn watch_changes(
        &self,
        request: Request<pb::WatchChangesRequest>,
    ) -> Result<Response<BoxStream<pb::WatchChangesResponse>>, Status> {
        changes::watch_changes(self, request).await
    }

    async fn list_audit_events(
        &self,
        request: Request<cpb::ListAuditEventsRequest>,
    ) -> Result<Response<cpb::ListAuditEventsResponse>, Status> {
        audit::list_audit_events(self, request).await
    }

    async fn verify_audit_chain(
        &self,
        request: Request<cpb::VerifyAuditChainRequest>,
    ) -> Result<Response<cpb::VerifyAuditChainResponse>, Status> {
        audit::verify_audit_chain(self, request).await
    }
}
