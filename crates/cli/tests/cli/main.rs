//! The CLI's integration tests, one binary: the real `qilu` binary run as a process — `qilu dev`
//! serving the whole suite on one port, and the operator and client commands against it —
//! exactly as the README tells a newcomer to run it. `support` holds the process harness.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod client_commands;
mod dev_server;
