//! Bulk import rules, decided without I/O: the limits of one run, which rows of a run conflict
//! with earlier rows (row numbers, USCCs), and what a valid row does to the stored enterprise.
//!
//! Duplicates are decided by stream order alone, never by batch boundaries, so the same file
//! gives the same outcomes however the client splits it into messages:
//! - a row number is taken by the first row that carries it; a later row with the same number
//!   is rejected on `row_number`;
//! - a USCC is taken by the first *valid* row that carries it; a later valid row with the same
//!   USCC is rejected on `enterprise.uscc` naming the earlier row (a rejected row takes nothing,
//!   so a corrected copy later in the file still counts).

use std::collections::HashMap;
use std::collections::HashSet;

use super::enterprise::{Enterprise, EnterpriseFields};

/// Most rows in one message of the stream (the contract's limit).
pub const MAX_ROWS_PER_MESSAGE: usize = 1000;
/// Most rows in one run. Keeps the run's bookkeeping and its response (one result per row,
/// about 32 bytes each) well under the 8 MiB message limit; split larger files.
pub const MAX_ROWS_PER_IMPORT: u64 = 100_000;
/// Valid rows committed per write transaction: large enough for multi-row inserts to pay off,
/// small enough to hold SQLite's single writer lock only briefly.
pub const BATCH_ROWS: usize = 500;

/// What a valid row does to the stored enterprise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// No enterprise with this USCC yet: create it.
    Create,
    /// The stored descriptive fields differ: replace them.
    Update,
    /// Identical to the stored enterprise: write nothing.
    Unchanged,
}

/// Decides the effect of importing `fields` over `existing`. Import rows carry every
/// descriptive field, so the row replaces them all (an empty address clears the address).
pub fn effect(existing: Option<&Enterprise>, fields: &EnterpriseFields) -> Effect {
    match existing {
        None => Effect::Create,
        Some(e) if e.fields == *fields => Effect::Unchanged,
        Some(_) => Effect::Update,
    }
}

/// A problem with one field of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Field path within the row, e.g. `enterprise.uscc` or `row_number`.
    pub field: String,
    /// What is wrong, for a person.
    pub description: String,
}

impl Problem {
    /// A problem of `field`.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Problem {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// What one run has seen so far: row numbers used and USCCs taken by valid rows.
#[derive(Debug, Default)]
pub struct Ledger {
    row_numbers: HashSet<i64>,
    usccs: HashMap<String, i64>,
}

impl Ledger {
    /// Checks a row number (positive, first use in the run) and marks it used.
    pub fn take_row_number(&mut self, row_number: i64) -> Result<(), Problem> {
        if row_number <= 0 {
            return Err(Problem::new(
                "row_number",
                format!("row numbers start at 1; got {row_number}"),
            ));
        }
        if !self.row_numbers.insert(row_number) {
            return Err(Problem::new(
                "row_number",
                format!("row number {row_number} was already used earlier in this import"),
            ));
        }
        Ok(())
    }

    /// Takes `uscc` for the valid row `row_number`, or names the earlier row that holds it.
    pub fn take_uscc(&mut self, uscc: &str, row_number: i64) -> Result<(), Problem> {
        match self.usccs.get(uscc) {
            Some(earlier) => Err(Problem::new(
                "enterprise.uscc",
                format!("{uscc} is already imported by row {earlier} of this import"),
            )),
            None => {
                self.usccs.insert(uscc.to_string(), row_number);
                Ok(())
            }
        }
    }
}

qilu_common::resource_id! {
    /// An import (`api::imports`), `imports/{import}`: assigned by the server, a UUIDv7.
    pub struct ImportId = "imports/{import}", qilu_common::input::name::IdRule::ServerAssigned;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::domain::enterprise::EnterpriseState;
    use crate::domain::uscc::{KnownExceptions, Uscc};

    fn fields(name: &str) -> EnterpriseFields {
        EnterpriseFields {
            display_name: name.into(),
            legal_representative: String::new(),
            established_date: NaiveDate::from_ymd_opt(2010, 1, 1).unwrap(),
            address: String::new(),
            zone: None,
            technology_fields: vec![1, 4],
            green_category: 0,
        }
    }

    fn stored(name: &str) -> Enterprise {
        Enterprise {
            uscc: Uscc::parse("91350100M000100Y43", &KnownExceptions::default()).unwrap(),
            fields: fields(name),
            state: EnterpriseState::Active,
            high_tech_certified: false,
            leading: false,
            create_time_us: 1,
            update_time_us: 1,
            version: 3,
            state_change: None,
        }
    }

    #[test]
    fn effects_follow_the_stored_enterprise() {
        let cases = [
            (None, "甲", Effect::Create),
            (Some(stored("甲")), "甲", Effect::Unchanged),
            (Some(stored("甲")), "乙", Effect::Update),
        ];
        for (existing, name, expected) in cases {
            assert_eq!(effect(existing.as_ref(), &fields(name)), expected, "{name}");
        }
        let mut other = fields("甲");
        other.technology_fields = vec![1];
        assert_eq!(effect(Some(&stored("甲")), &other), Effect::Update);
    }

    #[test]
    fn row_numbers_are_positive_and_taken_once() {
        let mut ledger = Ledger::default();
        for (n, ok) in [
            (1, true),
            (2, true),
            (1, false),
            (0, false),
            (-5, false),
            (3, true),
        ] {
            let r = ledger.take_row_number(n);
            assert_eq!(r.is_ok(), ok, "{n}");
            if let Err(p) = r {
                assert_eq!(p.field, "row_number");
            }
        }
    }

    #[test]
    fn the_first_valid_row_takes_a_uscc_and_later_ones_name_it() {
        let mut ledger = Ledger::default();
        assert!(ledger.take_uscc("A", 7).is_ok());
        assert!(ledger.take_uscc("B", 8).is_ok());
        let p = ledger.take_uscc("A", 9).unwrap_err();
        assert_eq!(p.field, "enterprise.uscc");
        assert!(p.description.contains("row 7"), "{}", p.description);
    }
}
