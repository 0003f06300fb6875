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

/// The etag for a version of a resource (the kit's, so every resource's etag is made alike).
pub use qilu_common::input::etag_of;

impl EnterpriseState {
    /// The contract's name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            EnterpriseState::Active => "ACTIVE",
            EnterpriseState::Revoked => "REVOKED",
            EnterpriseState::Deregistered => "DEREGISTERED",
        }
    }

    /// Whether an enterprise in this state may move to `to`: ACTIVE → REVOKED (licence revoked,
    /// 吊销); ACTIVE or REVOKED → DEREGISTERED (注销).
    pub fn may_become(self, to: EnterpriseState) -> bool {
        matches!(
            (self, to),
            (EnterpriseState::Active, EnterpriseState::Revoked)
                | (
                    EnterpriseState::Active | EnterpriseState::Revoked,
                    EnterpriseState::Deregistered
                )
        )
    }
}

/// Why a revoke or deregister is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateChangeRefused {
    /// The enterprise's state cannot move to the one asked for.
    Transition {
        /// The enterprise's resource name.
        name: String,
        /// Its state.
        from: EnterpriseState,
        /// The state asked for.
        to: EnterpriseState,
    },
    /// The change would take effect before the enterprise existed.
    BeforeEstablishment {
        /// The effective date asked for.
        effective: NaiveDate,
        /// The date of establishment.
        established: NaiveDate,
    },
    /// The change would take effect before the previous one did.
    BeforePreviousChange {
        /// The effective date asked for.
        effective: NaiveDate,
        /// When the previous change took effect.
        previous: NaiveDate,
    },
}

impl Enterprise {
    /// This enterprise moved to `to` for `reason`, effective on `effective_date`, committed at
    /// `now_us` (a new version), or why it cannot move.
    pub fn change_state(
        &self,
        to: EnterpriseState,
        reason: String,
        effective_date: NaiveDate,
        now_us: i64,
    ) -> Result<Enterprise, StateChangeRefused> {
        if !self.state.may_become(to) {
            return Err(StateChangeRefused::Transition {
                name: self.name(),
                from: self.state,
                to,
            });
        }
        if effective_date < self.fields.established_date {
            return Err(StateChangeRefused::BeforeEstablishment {
                effective: effective_date,
                established: self.fields.established_date,
            });
        }
        if let Some(previous) = &self.state_change
            && effective_date < previous.effective_date
        {
            return Err(StateChangeRefused::BeforePreviousChange {
                effective: effective_date,
                previous: previous.effective_date,
            });
        }
        let mut updated = self.clone();
        updated.state = to;
        updated.state_change = Some(StateChange {
            reason,
            change_time_us: now_us,
            effective_date,
        });
        updated.version = self.version + 1;
        updated.update_time_us = now_us;
        Ok(updated)
    }
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
    fn only_the_legal_transitions_are_allowed() {
        use EnterpriseState::{Active, Deregistered, Revoked};
        let cases = [
            (Active, Revoked, true),
            (Active, Deregistered, true),
            (Revoked, Deregistered, true),
            (Revoked, Revoked, false),
            (Deregistered, Revoked, false),
            (Deregistered, Deregistered, false),
            (Revoked, Active, false),
            (Deregistered, Active, false),
            (Active, Active, false),
        ];
        for (from, to, allowed) in cases {
            assert_eq!(from.may_become(to), allowed, "{from:?} → {to:?}");
        }
    }

    #[test]
    fn a_state_change_takes_effect_after_establishment_and_the_previous_change() {
        use chrono::NaiveDate;
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default();
        let Ok(uscc) = Uscc::parse("91350100M000100Y43", &Default::default()) else {
            panic!("a valid code");
        };
        let active = Enterprise {
            uscc,
            fields: EnterpriseFields {
                display_name: "山东氢能".into(),
                legal_representative: String::new(),
                established_date: day("2010-05-04"),
                address: String::new(),
                zone: None,
                technology_fields: Vec::new(),
                green_category: 0,
            },
            state: EnterpriseState::Active,
            high_tech_certified: false,
            leading: false,
            create_time_us: 0,
            update_time_us: 0,
            version: 3,
            state_change: None,
        };
        let early = active.change_state(EnterpriseState::Revoked, "r".into(), day("2010-05-03"), 9);
        assert!(matches!(
            early,
            Err(StateChangeRefused::BeforeEstablishment { .. })
        ));
        let Ok(revoked) =
            active.change_state(EnterpriseState::Revoked, "r".into(), day("2020-01-01"), 9)
        else {
            panic!("an active enterprise can be revoked");
        };
        assert_eq!(
            (revoked.state, revoked.version, revoked.update_time_us),
            (EnterpriseState::Revoked, 4, 9)
        );
        let again =
            revoked.change_state(EnterpriseState::Revoked, "r".into(), day("2021-01-01"), 10);
        assert!(matches!(again, Err(StateChangeRefused::Transition { .. })));
        let before = revoked.change_state(
            EnterpriseState::Deregistered,
            "d".into(),
            day("2019-12-31"),
            10,
        );
        assert!(matches!(
            before,
            Err(StateChangeRefused::BeforePreviousChange { .. })
        ));
        let after = revoked.change_state(
            EnterpriseState::Deregistered,
            "d".into(),
            day("2020-01-01"),
            10,
        );
        assert!(after.is_ok_and(|e| e.state == EnterpriseState::Deregistered));
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
