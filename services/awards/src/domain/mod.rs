//! The awards service's domain: pure rules, no I/O.

pub mod allocation;
pub mod hamilton;
