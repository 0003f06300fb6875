//! Qilu's protobuf contracts as Rust: message types, tonic clients and servers, and the encoded
//! file descriptor set that server reflection serves. Generated from `proto/` at build time;
//! nothing here is written by hand except this module tree.

/// The `qilu.*` packages, one module per protobuf package.
#[allow(clippy::all, clippy::pedantic, missing_docs, rustdoc::all)]
pub mod qilu {
    /// `qilu.common.v1`: audit log messages and shared classifications.
    pub mod common {
        pub mod v1 {
            tonic::include_proto!("qilu.common.v1");
        }
    }
    /// `qilu.registry.v1`: the enterprise registry.
    pub mod registry {
        pub mod v1 {
            tonic::include_proto!("qilu.registry.v1");
        }
    }
    /// `qilu.review.v1`: achievement review.
    pub mod review {
        pub mod v1 {
            tonic::include_proto!("qilu.review.v1");
        }
    }
    /// `qilu.awards.v1`: award and project allocation.
    pub mod awards {
        pub mod v1 {
            tonic::include_proto!("qilu.awards.v1");
        }
    }
}

/// Google's common packages that Qilu's contracts use: `google.longrunning` (the `Operations`
/// service and `Operation`, AIP-151), `google.rpc` (`Status`, an operation's error) and
/// `google.api` (annotations' message types).
#[allow(clippy::all, clippy::pedantic, missing_docs, rustdoc::all)]
pub mod google {
    /// `google.longrunning`.
    pub mod longrunning {
        tonic::include_proto!("google.longrunning");
    }
    /// `google.rpc`.
    pub mod rpc {
        tonic::include_proto!("google.rpc");
    }
    /// `google.api`.
    pub mod api {
        tonic::include_proto!("google.api");
    }
}

pub use google::longrunning;
pub use qilu::awards::v1 as awards;
pub use qilu::common::v1 as common;
pub use qilu::registry::v1 as registry;
pub use qilu::review::v1 as review;

/// Encoded `FileDescriptorSet` of every Qilu proto and its imports, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/qilu_descriptor.bin"));

/// Fully qualified gRPC service names, as health checks and reflection report them.
pub mod service_names {
    /// The enterprise registry.
    pub const REGISTRY: &str = "qilu.registry.v1.EnterpriseRegistryService";
    /// Achievement review.
    pub const REVIEW: &str = "qilu.review.v1.AchievementReviewService";
    /// Award and project allocation.
    pub const AWARDS: &str = "qilu.awards.v1.AwardAllocationService";
}
