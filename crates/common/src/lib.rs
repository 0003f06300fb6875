//! What every Qilu service shares, written once: configuration, telemetry, database access and
//! migrations, errors, authentication and the per-RPC role table, the hash-chained audit log,
//! idempotency, pagination, filters, the server bootstrap and service-to-service clients.
//!
//! Nothing here knows a service's domain: dependencies point one way, services → common → proto.
//! The server-only half (databases, audit, writes, the server bootstrap, telemetry) is behind the
//! default `server` feature, so a client (the `qilu` CLI without its `server` feature) builds
//! without sea-orm.

#![forbid(unsafe_code)]

#[cfg(feature = "server")]
pub mod app;
#[cfg(feature = "server")]
pub mod audit;
pub mod auth;
pub mod client;
pub mod clock;
pub mod config;
pub mod context;
#[cfg(feature = "server")]
pub mod db;
pub mod error;
#[cfg(feature = "server")]
pub mod feed;
pub mod filter;
#[cfg(feature = "server")]
pub mod http;
pub mod http_rule;
#[cfg(feature = "server")]
pub mod idempotency;
pub mod import_csv;
pub mod input;
pub mod limits;
#[cfg(feature = "server")]
pub mod migration;
#[cfg(feature = "server")]
pub mod observe;
pub mod openapi;
#[cfg(feature = "server")]
pub mod operations;
pub mod pagination;
#[cfg(feature = "server")]
pub mod point_read;
pub mod reason;
pub mod rpc;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
pub mod sweep;
#[cfg(feature = "server")]
pub mod telemetry;
// Also under `cfg(test)`, so that the oracles in it are unit-tested by `cargo test -p qilu-common`.
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod time;
pub mod version;
#[cfg(feature = "server")]
pub mod write;

pub use clock::Clock;
pub use context::CallContext;
pub use error::{ApiError, FieldViolation};
