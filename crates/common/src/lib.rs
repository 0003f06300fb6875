//! What every Qilu service shares, written once: configuration, telemetry, database access and
//! migrations, errors, authentication and the per-RPC role table, the hash-chained audit log,
//! idempotency, pagination, filters, the server bootstrap and service-to-service clients.
//!
//! Nothing here knows a service's domain: dependencies point one way, services → common → proto.

#![forbid(unsafe_code)]

pub mod app;
pub mod audit;
pub mod auth;
pub mod client;
pub mod clock;
pub mod config;
pub mod context;
pub mod db;
pub mod error;
pub mod filter;
pub mod idempotency;
pub mod input;
pub mod limits;
pub mod migration;
pub mod pagination;
pub mod point_read;
pub mod rpc;
pub mod server;
pub mod telemetry;
// Also under `cfg(test)`, so that the oracles in it are unit-tested by `cargo test -p qilu-common`.
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod time;
pub mod version;
pub mod write;

pub use clock::Clock;
pub use context::CallContext;
pub use error::{ApiError, FieldViolation};
