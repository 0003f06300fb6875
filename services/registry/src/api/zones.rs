//! High-tech zones, clusters, cluster progress.
//!
//! Not implemented yet: every RPC here answers UNIMPLEMENTED until its part of the registry
//! issue lands.

use qilu_proto::registry as pb;

use tonic::{Request, Response, Status};

use super::RegistryApi;

pub(super) async fn create_zone(
    _api: &RegistryApi,
    _request: Request<pb::CreateZoneRequest>,
) -> Result<Response<pb::Zone>, Status> {
    Err(Status::unimplemented("create_zone is not implemented yet"))
}

pub(super) async fn get_zone(
    _api: &RegistryApi,
    _request: Request<pb::GetZoneRequest>,
) -> Result<Response<pb::Zone>, Status> {
    Err(Status::unimplemented("get_zone is not implemented yet"))
}

pub(super) async fn list_zones(
    _api: &RegistryApi,
    _request: Request<pb::ListZonesRequest>,
) -> Result<Response<pb::ListZonesResponse>, Status> {
    Err(Status::unimplemented("list_zones is not implemented yet"))
}

pub(super) async fn update_zone(
    _api: &RegistryApi,
    _request: Request<pb::UpdateZoneRequest>,
) -> Result<Response<pb::Zone>, Status> {
    Err(Status::unimplemented("update_zone is not implemented yet"))
}

pub(super) async fn create_cluster(
    _api: &RegistryApi,
    _request: Request<pb::CreateClusterRequest>,
) -> Result<Response<pb::Cluster>, Status> {
    Err(Status::unimplemented(
        "create_cluster is not implemented yet",
    ))
}

pub(super) async fn get_cluster(
    _api: &RegistryApi,
    _request: Request<pb::GetClusterRequest>,
) -> Result<Response<pb::Cluster>, Status> {
    Err(Status::unimplemented("get_cluster is not implemented yet"))
}

pub(super) async fn list_clusters(
    _api: &RegistryApi,
    _request: Request<pb::ListClustersRequest>,
) -> Result<Response<pb::ListClustersResponse>, Status> {
    Err(Status::unimplemented(
        "list_clusters is not implemented yet",
    ))
}

pub(super) async fn update_cluster(
    _api: &RegistryApi,
    _request: Request<pb::UpdateClusterRequest>,
) -> Result<Response<pb::Cluster>, Status> {
    Err(Status::unimplemented(
        "update_cluster is not implemented yet",
    ))
}

pub(super) async fn get_cluster_progress(
    _api: &RegistryApi,
    _request: Request<pb::GetClusterProgressRequest>,
) -> Result<Response<pb::ClusterProgress>, Status> {
    Err(Status::unimplemented(
        "get_cluster_progress is not implemented yet",
    ))
}
