//! Typed ids of the awards service's resources and of the peers' resources it refers to, read
//! from resource names by the one parser in `qilu_common::input::name`. Fields are private:
//! a handler holding a `ProgramId` knows it is well formed.
//!
//! The id forms are the ones the released contract fixed: a program id is chosen by the admin
//! (lower-case letters, digits and `-`, starting with a letter, 1-63 characters); children
//! (applications, objections) and achievements are server-assigned ids of letters, digits, `-`
//! and `_` up to 64 characters; an enterprise is named by its 18-character USCC (only the shape
//! is checked here: the registry judges the code).

use qilu_common::FieldViolation;
use qilu_common::input::name::{IdRule, bad_name, segments};

use super::program::valid_program_id;

/// A server-assigned id (children, achievements).
fn child_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The shape of a USCC: 18 ASCII letters and digits.
fn uscc_shape(id: &str) -> bool {
    id.len() == 18 && id.chars().all(|c| c.is_ascii_alphanumeric())
}

qilu_common::resource_id! {
    /// A program, `programs/{program}`.
    pub struct ProgramId = "programs/{program}", IdRule::Custom(valid_program_id);
}

qilu_common::resource_id! {
    /// An achievement of the review service, `achievements/{achievement}`.
    pub struct AchievementRef = "achievements/{achievement}", IdRule::Custom(child_id);
}

qilu_common::resource_id! {
    /// An enterprise of the registry, `enterprises/{uscc}`.
    pub struct EnterpriseRef = "enterprises/{uscc}", IdRule::Custom(uscc_shape);
}

/// A resource that exists only under its program: `programs/{program}/{collection}/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChildName {
    program: ProgramId,
    id: String,
}

impl ChildName {
    /// The child of collection `collection` named by `raw`, or the violation of `field`.
    fn parse(raw: &str, pattern: &str, field: &str) -> Result<ChildName, FieldViolation> {
        match segments(raw, pattern, field, IdRule::Custom(child_id))?.as_slice() {
            [p, id] if valid_program_id(p) => Ok(ChildName {
                program: ProgramId::from_stored(*p),
                id: (*id).to_string(),
            }),
            _ => Err(bad_name(raw, pattern, field)),
        }
    }

    /// The program the child belongs to.
    pub fn program(&self) -> &ProgramId {
        &self.program
    }

    /// The child's own id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// An application, `programs/{program}/applications/{application}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ApplicationName(ChildName);

impl ApplicationName {
    /// The name template.
    pub const PATTERN: &'static str = "programs/{program}/applications/{application}";

    /// The application named by `raw`, or the violation of `field`.
    pub fn parse(raw: &str, field: &str) -> Result<ApplicationName, FieldViolation> {
        ChildName::parse(raw, Self::PATTERN, field).map(ApplicationName)
    }

    /// The program the application is filed under.
    pub fn program(&self) -> &ProgramId {
        self.0.program()
    }

    /// The application's own id.
    pub fn id(&self) -> &str {
        self.0.id()
    }

    /// The resource name.
    pub fn name(&self) -> String {
        format!("{}/applications/{}", self.program().name(), self.id())
    }
}

/// An objection, `programs/{program}/objections/{objection}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectionName(ChildName);

impl ObjectionName {
    /// The name template.
    pub const PATTERN: &'static str = "programs/{program}/objections/{objection}";

    /// The objection named by `raw`, or the violation of `field`.
    pub fn parse(raw: &str, field: &str) -> Result<ObjectionName, FieldViolation> {
        ChildName::parse(raw, Self::PATTERN, field).map(ObjectionName)
    }

    /// The program the objection is filed under.
    pub fn program(&self) -> &ProgramId {
        self.0.program()
    }

    /// The objection's own id.
    pub fn id(&self) -> &str {
        self.0.id()
    }

    /// The resource name.
    pub fn name(&self) -> String {
        format!("{}/objections/{}", self.program().name(), self.id())
    }
}

/// A program's allocation, `programs/{program}/allocation` (a singleton).
pub fn parse_allocation_name(raw: &str, field: &str) -> Result<ProgramId, FieldViolation> {
    qilu_common::input::name::single(
        raw,
        "programs/{program}/allocation",
        field,
        IdRule::Custom(valid_program_id),
    )
    .map(ProgramId::from_stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_names_keep_the_program_id_rule() {
        let p = ProgramId::parse_name("programs/green-2026", "name");
        assert_eq!(p.as_ref().map(ProgramId::as_str).ok(), Some("green-2026"));
        for bad in [
            "programs/2026",
            "programs/Green",
            "program/green",
            "programs/a/b",
        ] {
            assert!(ProgramId::parse_name(bad, "name").is_err(), "{bad}");
        }
        assert!(ProgramId::parse_id("2026-green", "program_id").is_err());
        assert_eq!(
            parse_allocation_name("programs/green/allocation", "name")
                .map(|p| p.name())
                .ok()
                .as_deref(),
            Some("programs/green")
        );
        assert!(parse_allocation_name("programs/green", "name").is_err());
    }

    #[test]
    fn child_names_carry_their_program_and_refuse_other_collections() {
        let a = ApplicationName::parse("programs/green/applications/0192_A-b", "name");
        assert_eq!(
            a.as_ref().map(|a| (a.program().as_str(), a.id())).ok(),
            Some(("green", "0192_A-b"))
        );
        assert!(ApplicationName::parse("programs/green/objections/x", "name").is_err());
        assert!(ObjectionName::parse("programs/Green/objections/x", "name").is_err());
        assert_eq!(
            ObjectionName::parse("programs/green/objections/x", "name")
                .map(|o| o.name())
                .ok()
                .as_deref(),
            Some("programs/green/objections/x")
        );
        let empty = ObjectionName::parse("", "name").err().map(|v| v.reason);
        assert_eq!(empty.as_deref(), Some("REQUIRED"));
    }

    #[test]
    fn peer_names_are_checked_for_shape_only() {
        assert!(EnterpriseRef::parse_name("enterprises/91350100M000100Y43", "x").is_ok());
        assert!(EnterpriseRef::parse_name("enterprises/91350100M000100Y4", "x").is_err());
        assert!(AchievementRef::parse_name("achievements/a_1", "x").is_ok());
        assert!(AchievementRef::parse_name("achievements/a.1", "x").is_err());
    }
}
