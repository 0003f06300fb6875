//! The registry's domain: types that are valid by construction and the rules about them. No I/O.

pub mod cluster;
pub mod enterprise;
pub mod figures;
pub mod policy;
pub mod uscc;
pub mod zone;
