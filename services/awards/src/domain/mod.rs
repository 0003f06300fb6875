//! The awards service's domain: pure rules, no I/O. `ids` holds the typed resource ids;
//! `refusal` every precondition a decision refuses, mapped to `FAILED_PRECONDITION` once.

pub mod allocation;
pub mod application;
pub mod ceiling;
pub mod distribution;
pub mod hamilton;
pub mod ids;
pub mod program;
pub mod refusal;
pub mod run;
