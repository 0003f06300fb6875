//! The registry's domain: types that are valid by construction and the rules about them. No I/O.

pub mod certification;
pub mod cluster;
pub mod eligibility;
pub mod enterprise;
pub mod figures;
pub mod import;
pub mod leading;
pub mod policy;
pub mod statistics;
pub mod support_policy;
pub mod zone;

/// GB 32100 lives in its own leaf crate so clients can check codes without the registry; the
/// path `domain::uscc` stays for the registry's own code.
pub use qilu_uscc as uscc;
