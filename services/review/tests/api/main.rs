//! The review service's integration tests, one binary: the real review server on an ephemeral
//! port over a fresh SQLite file and a fresh PostgreSQL database, with the registry running for
//! real beside it (its own server and database), called through the generated clients as any
//! caller would. Every scenario runs on both backends (`<module>::sqlite::…` and
//! `<module>::postgres::…`); `support` holds the harness both modules share.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod achievements;
mod changes;
mod replay_isolation;
mod round_trip;
mod workflow;
