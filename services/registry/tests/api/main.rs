//! The registry's integration tests, one binary: the real server on an ephemeral port over a
//! fresh SQLite file and a fresh PostgreSQL database (`qilu_common::testing`), called through
//! the generated client as any caller would. Every scenario runs on both backends
//! (`<module>::sqlite::…` and `<module>::postgres::…`). One module per resource family;
//! `support` holds what they share.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod certification;
mod enterprises;
mod feeds;
mod group_commit;
mod history_import;
mod import_changes;
mod imports;
mod leading;
mod limits;
mod replay_isolation;
mod round_trip;
mod statistics;
mod zones_policy;
