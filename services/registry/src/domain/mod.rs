//! The registry's domain: types that are valid by construction and the rules about them. No I/O.

pub mod enterprise;
pub mod figures;
pub mod import;
pub mod uscc;
