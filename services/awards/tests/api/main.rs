//! The awards service's integration tests, one binary: the real awards server on an ephemeral
//! port with the real registry and review services beside it (each over its own fresh
//! database), over SQLite and over PostgreSQL, called through the generated clients as any
//! caller would. Every scenario runs on both backends (`<module>::sqlite::…` and
//! `<module>::postgres::…`); `support` holds the three-service harness both modules share.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod allocation;
mod changes;
mod drafts;
mod replay_isolation;
mod results;
mod round_trip;
