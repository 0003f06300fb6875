//! An enterprise as the registry holds it, and the rules its fields obey. Values here have been
//! parsed at the edge (`convert.rs`), so everything downstream can trust them.

use chrono::NaiveDate;
use serde::Serialize;

use super::uscc::Uscc;

/// Longest registered name accepted (characters). Chinese enterprise names are far shorter;
/// the limit only stops abuse.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest legal representative name (characters).
pub const MAX_PERSON_CHARS: usize = 100;
/// Longest address (characters).
pub const MAX_ADDRESS_CHARS: usize = 500;
/// Earliest establishment date accepted: older records are data-entry errors.
pub const EARLIEST_ESTABLISHED: (i32, u32, u32) = (1900, 1, 1);

/// Registration state (AIP-216); changed only by the revoke/deregister methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EnterpriseState {
    /// Operating.
    Active,
    /// Business licence revoked.
    Revoked,
    /// Deregistered.
    Deregistered,
}

impl EnterpriseState {
    /// Stored code.
    pub fn code(self) -> i32 {
        match self {
            EnterpriseState::Active => 1,
            EnterpriseState::Revoked => 2,
            EnterpriseState::Deregistered => 3,
        }
    }

    /// From the stored code.
    pub fn from_code(code: i32) -> Option<EnterpriseState> {
        match code {
            1 => Some(EnterpriseState::Active),
            2 => Some(EnterpriseState::Revoked),
            3 => Some(EnterpriseState::Deregistered),
            _ => None,
        }
    }
}

/// The descriptive fields a caller may set (at creation, or through an update mask).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnterpriseFields {
    /// Registered name (trimmed, non-empty).
    pub display_name: String,
    /// Legal representative (may be empty).
    pub legal_representative: String,
    /// Date of establishment (not in the future).
    pub established_date: NaiveDate,
    /// Registered address.
    pub address: String,
    /// High-tech zone resource name (`zones/{zone}`), if any.
    pub zone: Option<String>,
    /// State high-tech fields, as `qilu.common.v1.HighTechField` numbers, sorted and unique.
    pub technology_fields: Vec<i32>,
    /// `qilu.common.v1.GreenCategory` number (0 = not classified).
    pub green_category: i32,
}

/// An enterprise as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Enterprise {
    /// The key.
    #[serde(serialize_with = "serialize_uscc")]
    pub uscc: Uscc,
    /// The caller-settable fields.
    #[serde(flatten)]
    pub fields: EnterpriseFields,
    /// Registration state.
    pub state: EnterpriseState,
    /// Holds a valid high-tech certificate (maintained by certification).
    pub high_tech_certified: bool,
    /// Selected in the current leading cohort (maintained by cohort selection).
    pub leading: bool,
    /// Creation time, µs.
    pub create_time_us: i64,
    /// Last change, µs.
    pub update_time_us: i64,
    /// Optimistic-concurrency version, +1 on every change.
    pub version: i64,
    /// Why and when the enterprise last left ACTIVE; `None` while it has always been active.
    /// Left out of the audit state while `None`, so active enterprises audit as before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_change: Option<StateChange>,
}

/// The record of the last state change (revoke or deregister), as the contract's
/// `state_reason`, `state_change_time` and `state_effective_date` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateChange {
    /// Why, as given to `RevokeEnterprise` / `DeregisterEnterprise`.
    pub reason: String,
    /// When the change was committed, µs.
    pub change_time_us: i64,
    /// Date the change took legal effect (programme time zone).
    pub effective_date: NaiveDate,
}

fn serialize_uscc<S: serde::Serializer>(u: &Uscc, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(u.as_str())
}

impl Enterprise {
    /// Resource name `enterprises/{uscc}`.
    pub fn name(&self) -> String {
        enterprise_name(&self.uscc)
    }

    /// AIP-154 etag: opaque, changes with every version.
    pub fn etag(&self) -> String {
        etag_of(self.uscc.as_str(), self.version)
    }
}

/// Resource name of an enterprise.
pub fn enterprise_name(uscc: &Uscc) -> String {
    format!("enterprises/{}", uscc.as_str())
}

/// The etag for a version of a resource.
pub fn etag_of(key: &str, version: i64) -> String {
    use std::fmt::Write;
    // Not a security token: only needs to differ between versions and look opaque.
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
        assert_ne!(etag_of("A", 1), etag_of("A", 2));
        assert_ne!(etag_of("A", 1), etag_of("B", 1));
        assert_eq!(etag_of("A", 1), etag_of("A", 1));
    }

    #[test]
    fn state_codes_round_trip() {
        for s in [
            EnterpriseState::Active,
            EnterpriseState::Revoked,
            EnterpriseState::Deregistered,
        ] {
            assert_eq!(EnterpriseState::from_code(s.code()), Some(s));
        }
        assert_eq!(EnterpriseState::from_code(0), None);
    }
}
