//! The awards service's domain: pure rules, no I/O.

pub mod allocation;
pub mod application;
pub mod ceiling;
pub mod distribution;
pub mod hamilton;
pub mod program;
pub mod run;
