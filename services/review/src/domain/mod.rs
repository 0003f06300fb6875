//! The review service's domain: types and rules with no I/O. Everything here is a pure function
//! of its inputs (time is passed in), so each rule is unit-tested with table-driven cases.
//!
//! | module | what it decides |
//! |---|---|
//! | `green` | green data and how its quantities read (tce, kWh) |
//! | `screening` | two-high rule screening: VETO / PASS / NEEDS_REVIEW |
//! | `achievement` | the achievement lifecycle and its appeal |
//! | `expert` | experts, conflicts of interest, automatic assignment |
//! | `review` | an expert's review: scores and veto |
//! | `decision` | the final decision: vetoes, trimmed mean, threshold |
//! | `appeal` | the 30-day appeal window in the programme time zone |

pub mod achievement;
pub mod appeal;
pub mod decision;
pub mod expert;
pub mod green;
pub mod review;
pub mod screening;

/// AIP-154 etag for a version of a resource: opaque, changes with every version.
pub fn etag_of(key: &str, version: i64) -> String {
    use std::fmt::Write;
    // Not a security token (FNV-1a): it only needs to differ between versions and look opaque.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes().chain(version.to_le_bytes()) {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let mut out = String::with_capacity(16);
    let _ = write!(out, "{hash:016x}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_differ_between_versions_and_resources() {
        assert_ne!(etag_of("a", 1), etag_of("a", 2));
        assert_ne!(etag_of("a", 1), etag_of("b", 1));
        assert_eq!(etag_of("a", 1), etag_of("a", 1));
    }
}
