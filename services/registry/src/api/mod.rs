//! The tonic implementation of `qilu.registry.v1.EnterpriseRegistryService`. Thin on purpose:
//! each RPC delegates to the handler of its resource, which parses the request (`convert`),
//! loads, lets `domain` decide, stores, records and commits. One module per concept:
//!
//! | module | RPCs |
//! |---|---|
//! | `enterprises` | enterprises and USCC validation |
//! | `status` | revoke and deregister an enterprise |
//! | `import` | bulk import of enterprises (client streaming) |
//! | `bulk` | the history imports' driver (client streaming): certificates, figures |
//! | `imports/` | imports as resources: create, append rows, start (an operation: `runner`), row results |
//! | `figures` | annual figures |
//! | `figures_import` | bulk import of annual figures |
//! | `certification/` | `certificates`, annual `reports`, `eligibility`, `import` (certificates with their report history) |
//! | `leading` | leading cohorts, ranking, support policies |
//! | `zones/` | `zones`, `clusters`, cluster `progress` |
//! | `policy` | policy targets (dated, versioned data) |
//! | `statistics` | programme statistics |
//! | `changes` | change feed |
//! | `audit` | audit log |
//!
//! Each typed refusal of `domain/` maps to its `ApiError` once, in its family's `convert` module.

mod audit;
mod bulk;
mod certification;
mod changes;
mod enterprises;
mod figures;
mod figures_import;
mod import;
mod imports;
mod leading;
mod policy;
mod statistics;
mod status;
pub(crate) mod sweep;

pub(crate) use imports::{ImportRunner, START_IMPORT};
mod zones;

use chrono::NaiveDate;
use qilu_common::operations::Operations;
use qilu_common::point_read::{PointReads, SharedReads};
use qilu_common::{ApiError, Clock};
use qilu_proto::common as cpb;
use qilu_proto::registry as pb;
use qilu_proto::registry::enterprise_registry_service_server::EnterpriseRegistryService;
use sea_orm::DatabaseConnection;
use tonic::Streaming;
use tonic::codegen::BoxStream;

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
    /// "Now" for date-dependent decisions (certificate states, `high_tech_certified`, the
    /// current programme year); rows are stamped with the write transaction's commit time.
    clock: Clock,
    /// The registry's long-running operations (`StartImport`).
    operations: Operations,
}

impl RegistryApi {
    /// Handlers over `db`, with the USCC allow-list, the programme time zone and the clock.
    pub fn new(
        db: DatabaseConnection,
        known_exceptions: KnownExceptions,
        time_zone: chrono_tz::Tz,
        clock: Clock,
        operations: Operations,
    ) -> Self {
        RegistryApi {
            operations,
            reads: std::sync::Arc::new(store::certified_reads(&PointReads::new(&db))),
            db,
            known_exceptions,
            time_zone,
            clock,
        }
    }

    /// Today in the programme's time zone (not the server's), by the service's clock.
    fn today(&self) -> NaiveDate {
        self.clock.today(self.time_zone)
    }

    /// Now by the service's clock, µs since the epoch (computed-at stamps of reads).
    fn now_us(&self) -> i64 {
        self.clock.now_us()
    }

    async fn load(&self, uscc: &uscc::Uscc) -> Result<Enterprise, ApiError> {
        store::get(&self.db, uscc.as_str())
            .await?
            .ok_or_else(|| enterprises::not_found(uscc.as_str()))?
            .into_domain()
            .map_err(ApiError::internal)
    }
}

qilu_common::service_impl! {
    impl EnterpriseRegistryService for RegistryApi {
        type WatchChangesStream = BoxStream<pb::WatchChangesResponse>;
        type ExportSnapshotStream = BoxStream<pb::ExportSnapshotResponse>;
        rpc create_enterprise(pb::CreateEnterpriseRequest) -> pb::Enterprise = enterprises::create_enterprise;
        rpc get_enterprise(pb::GetEnterpriseRequest) -> pb::Enterprise = enterprises::get_enterprise;
        rpc list_enterprises(pb::ListEnterprisesRequest) -> pb::ListEnterprisesResponse = enterprises::list_enterprises;
        rpc update_enterprise(pb::UpdateEnterpriseRequest) -> pb::Enterprise = enterprises::update_enterprise;
        rpc batch_get_enterprises(pb::BatchGetEnterprisesRequest) -> pb::BatchGetEnterprisesResponse = enterprises::batch_get_enterprises;
        rpc validate_uscc(pb::ValidateUsccRequest) -> pb::ValidateUsccResponse = enterprises::validate_uscc;
        rpc revoke_enterprise(pb::RevokeEnterpriseRequest) -> pb::Enterprise = status::revoke_enterprise;
        rpc deregister_enterprise(pb::DeregisterEnterpriseRequest) -> pb::Enterprise = status::deregister_enterprise;
        rpc import_enterprises(Streaming<pb::ImportEnterprisesRequest>) -> pb::ImportEnterprisesResponse = import::import_enterprises;
        rpc import_high_tech_certificates(Streaming<pb::ImportHighTechCertificatesRequest>) -> pb::ImportHighTechCertificatesResponse = certification::import::import_high_tech_certificates;
        rpc import_annual_figures(Streaming<pb::ImportAnnualFiguresRequest>) -> pb::ImportAnnualFiguresResponse = figures_import::import_annual_figures;
        rpc create_import(pb::CreateImportRequest) -> pb::Import = imports::create_import;
        rpc get_import(pb::GetImportRequest) -> pb::Import = imports::get_import;
        rpc list_imports(pb::ListImportsRequest) -> pb::ListImportsResponse = imports::list_imports;
        rpc append_import_rows(pb::AppendImportRowsRequest) -> pb::Import = imports::append_import_rows;
        rpc start_import(pb::StartImportRequest) -> qilu_proto::longrunning::Operation = imports::start_import;
        rpc list_import_row_results(pb::ListImportRowResultsRequest) -> pb::ListImportRowResultsResponse = imports::list_import_row_results;
        rpc get_annual_figures(pb::GetAnnualFiguresRequest) -> pb::AnnualFigures = figures::get_annual_figures;
        rpc list_annual_figures(pb::ListAnnualFiguresRequest) -> pb::ListAnnualFiguresResponse = figures::list_annual_figures;
        rpc update_annual_figures(pb::UpdateAnnualFiguresRequest) -> pb::AnnualFigures = figures::update_annual_figures;
        rpc create_high_tech_certificate(pb::CreateHighTechCertificateRequest) -> pb::HighTechCertificate = certification::certificates::create_high_tech_certificate;
        rpc get_high_tech_certificate(pb::GetHighTechCertificateRequest) -> pb::HighTechCertificate = certification::certificates::get_high_tech_certificate;
        rpc list_high_tech_certificates(pb::ListHighTechCertificatesRequest) -> pb::ListHighTechCertificatesResponse = certification::certificates::list_high_tech_certificates;
        rpc file_annual_report(pb::FileAnnualReportRequest) -> pb::HighTechCertificate = certification::reports::file_annual_report;
        rpc revoke_high_tech_certificate(pb::RevokeHighTechCertificateRequest) -> pb::HighTechCertificate = certification::certificates::revoke_high_tech_certificate;
        rpc evaluate_eligibility(pb::EvaluateEligibilityRequest) -> pb::EvaluateEligibilityResponse = certification::eligibility::evaluate_eligibility;
        rpc create_leading_cohort(pb::CreateLeadingCohortRequest) -> pb::LeadingCohort = leading::cohorts::create;
        rpc get_leading_cohort(pb::GetLeadingCohortRequest) -> pb::LeadingCohort = leading::cohorts::get;
        rpc list_leading_cohorts(pb::ListLeadingCohortsRequest) -> pb::ListLeadingCohortsResponse = leading::cohorts::list;
        rpc rank_leading_candidates(pb::RankLeadingCandidatesRequest) -> pb::RankLeadingCandidatesResponse = leading::members::rank;
        rpc select_leading_enterprise(pb::SelectLeadingEnterpriseRequest) -> pb::LeadingCohortMember = leading::members::select;
        rpc deselect_leading_enterprise(pb::DeselectLeadingEnterpriseRequest) -> pb::LeadingCohortMember = leading::members::deselect;
        rpc get_leading_cohort_member(pb::GetLeadingCohortMemberRequest) -> pb::LeadingCohortMember = leading::members::get;
        rpc list_leading_cohort_members(pb::ListLeadingCohortMembersRequest) -> pb::ListLeadingCohortMembersResponse = leading::members::list;
        rpc create_support_policy(pb::CreateSupportPolicyRequest) -> pb::SupportPolicy = leading::policies::create;
        rpc get_support_policy(pb::GetSupportPolicyRequest) -> pb::SupportPolicy = leading::policies::get;
        rpc list_support_policies(pb::ListSupportPoliciesRequest) -> pb::ListSupportPoliciesResponse = leading::policies::list;
        rpc update_support_policy(pb::UpdateSupportPolicyRequest) -> pb::SupportPolicy = leading::policies::update;
        rpc record_support_policy_review(pb::RecordSupportPolicyReviewRequest) -> pb::SupportPolicy = leading::policies::record_review;
        rpc create_zone(pb::CreateZoneRequest) -> pb::Zone = zones::zones::create_zone;
        rpc get_zone(pb::GetZoneRequest) -> pb::Zone = zones::zones::get_zone;
        rpc list_zones(pb::ListZonesRequest) -> pb::ListZonesResponse = zones::zones::list_zones;
        rpc update_zone(pb::UpdateZoneRequest) -> pb::Zone = zones::zones::update_zone;
        rpc create_cluster(pb::CreateClusterRequest) -> pb::Cluster = zones::clusters::create_cluster;
        rpc get_cluster(pb::GetClusterRequest) -> pb::Cluster = zones::clusters::get_cluster;
        rpc list_clusters(pb::ListClustersRequest) -> pb::ListClustersResponse = zones::clusters::list_clusters;
        rpc update_cluster(pb::UpdateClusterRequest) -> pb::Cluster = zones::clusters::update_cluster;
        rpc get_cluster_progress(pb::GetClusterProgressRequest) -> pb::ClusterProgress = zones::progress::get_cluster_progress;
        rpc create_policy_target(pb::CreatePolicyTargetRequest) -> pb::PolicyTarget = policy::create_policy_target;
        rpc get_policy_target(pb::GetPolicyTargetRequest) -> pb::PolicyTarget = policy::get_policy_target;
        rpc list_policy_targets(pb::ListPolicyTargetsRequest) -> pb::ListPolicyTargetsResponse = policy::list_policy_targets;
        rpc get_programme_statistics(pb::GetProgrammeStatisticsRequest) -> pb::ProgrammeStatistics = statistics::get_programme_statistics;
        rpc list_changes(pb::ListChangesRequest) -> pb::ListChangesResponse = changes::list_changes;
        rpc watch_changes(pb::WatchChangesRequest) -> BoxStream<pb::WatchChangesResponse> = changes::watch_changes;
        rpc get_change_feed_head(pb::GetChangeFeedHeadRequest) -> pb::ChangeFeedHead = changes::get_change_feed_head;
        rpc export_snapshot(pb::ExportSnapshotRequest) -> BoxStream<pb::ExportSnapshotResponse> = changes::export_snapshot;
        rpc list_audit_events(cpb::ListAuditEventsRequest) -> cpb::ListAuditEventsResponse = audit::list_audit_events;
        rpc verify_audit_chain(cpb::VerifyAuditChainRequest) -> cpb::VerifyAuditChainResponse = audit::verify_audit_chain;
    }
}
