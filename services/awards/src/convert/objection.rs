//! Objections: the file, list and resolve requests parsed into domain values, and objections as
//! the contract shows them (the objector's identity only to those who may see it).

use qilu_common::filter::{Filter, FilterField, Kind as FilterKind, Value};
use qilu_common::input::{Text, Violations};
use qilu_common::time::to_timestamp;
use qilu_common::{ApiError, FieldViolation};
use qilu_proto::awards as pb;

use crate::domain::application::{Objection, ObjectionState};
use crate::domain::ids::{ApplicationName, ObjectionName, ProgramId};
use crate::store::objection::{ListFilter, state_code};

/// Longest grounds, evidence or reason.
const MAX_TEXT_CHARS: usize = 8000;
/// Longest objector name or contact.
const MAX_IDENTITY_CHARS: usize = 500;

/// A parsed `FileObjection`: every text trimmed and bounded.
#[derive(Debug, Clone)]
pub struct FileObjection {
    /// The program whose results are objected to.
    pub program: ProgramId,
    /// The application objected to (of that program).
    pub application: ApplicationName,
    /// Why.
    pub grounds: String,
    /// Supporting evidence (optional).
    pub evidence: String,
    /// Who objects (a real identity, kept confidential).
    pub objector_name: String,
    /// How to reach them.
    pub objector_contact: String,
}

impl FileObjection {
    /// The parent on its own, then every violation of the objection at once.
    pub fn parse(req: &pb::FileObjectionRequest) -> Result<FileObjection, ApiError> {
        let program = ProgramId::parse_name(&req.parent, "parent")?;
        let input = qilu_common::input::required(req.objection.as_ref(), "objection")?;
        let mut v = Violations::new();
        let application = match ApplicationName::parse(&input.application, "objection.application")
        {
            Ok(a) if *a.program() != program => {
                v.push(FieldViolation::new(
                    "objection.application",
                    "OTHER_PROGRAM",
                    format!("the application must belong to {}", req.parent),
                ));
                None
            }
            other => v.take(other),
        };
        let long = Text::required(MAX_TEXT_CHARS).multiline();
        let identity = Text::required(MAX_IDENTITY_CHARS);
        let grounds = v.take(long.parse(&input.grounds, "objection.grounds"));
        let evidence = v.take(
            Text::optional(MAX_TEXT_CHARS)
                .multiline()
                .parse(&input.evidence, "objection.evidence"),
        );
        let objector_name = v.take(identity.parse(&input.objector_name, "objection.objector_name"));
        let objector_contact =
            v.take(identity.parse(&input.objector_contact, "objection.objector_contact"));
        let parsed = application
            .zip(grounds)
            .zip(evidence)
            .zip(objector_name.zip(objector_contact));
        v.into_result(parsed).map(
            |(((application, grounds), evidence), (objector_name, objector_contact))| {
                FileObjection {
                    program,
                    application,
                    grounds,
                    evidence,
                    objector_name,
                    objector_contact,
                }
            },
        )
    }
}

/// A parsed `ResolveObjection`.
#[derive(Debug, Clone)]
pub struct ResolveObjection {
    /// The objection.
    pub name: ObjectionName,
    /// UPHELD or DISMISSED.
    pub resolution: pb::ObjectionResolution,
    /// For UPHELD: what is done (never UNSPECIFIED then; always UNSPECIFIED for DISMISSED).
    pub remedy: pb::ObjectionRemedy,
    /// Why, trimmed.
    pub reason: String,
}

impl ResolveObjection {
    /// The name and the resolution on their own, then remedy and reason at once.
    pub fn parse(req: &pb::ResolveObjectionRequest) -> Result<ResolveObjection, ApiError> {
        let name = ObjectionName::parse(&req.name, "name")?;
        let resolution = pb::ObjectionResolution::try_from(req.resolution)
            .ok()
            .filter(|r| *r != pb::ObjectionResolution::Unspecified)
            .ok_or_else(|| {
                ApiError::invalid(
                    "resolution",
                    "REQUIRED",
                    "resolution must be UPHELD or DISMISSED",
                )
            })?;
        let remedy = pb::ObjectionRemedy::try_from(req.remedy).unwrap_or_default();
        let mut v = Violations::new();
        match (resolution, remedy) {
            (pb::ObjectionResolution::Upheld, pb::ObjectionRemedy::Unspecified) => {
                v.push(FieldViolation::new(
                    "remedy",
                    "REQUIRED",
                    "an UPHELD objection needs a remedy: EXCLUDE_APPLICATION or REINSTATE_APPLICATION",
                ))
            }
            (pb::ObjectionResolution::Dismissed, r) if r != pb::ObjectionRemedy::Unspecified => {
                v.push(FieldViolation::new(
                    "remedy",
                    "NOT_APPLICABLE",
                    "a DISMISSED objection has no remedy",
                ))
            }
            _ => {}
        }
        let reason = v.take(
            Text::required(MAX_TEXT_CHARS)
                .multiline()
                .parse(&req.reason, "reason"),
        );
        v.into_result(reason).map(|reason| ResolveObjection {
            name,
            resolution,
            remedy,
            reason,
        })
    }
}

fn objection_state(name: &str) -> Option<i32> {
    pb::ObjectionState::from_str_name(name).map(|s| s as i32)
}

fn objection_resolution(name: &str) -> Option<i32> {
    pb::ObjectionResolution::from_str_name(name).map(|r| r as i32)
}

const LIST_FILTER: &[FilterField] = &[
    FilterField::eq(
        "state",
        FilterKind::Enum {
            type_name: "ObjectionState",
            from_name: objection_state,
        },
    ),
    FilterField::eq("application", FilterKind::Text),
    FilterField::eq(
        "resolution",
        FilterKind::Enum {
            type_name: "ObjectionResolution",
            from_name: objection_resolution,
        },
    ),
];

/// The `filter` of `ListObjections` under `program`.
pub fn list_filter(raw: &str, program: &ProgramId) -> Result<ListFilter, ApiError> {
    let mut filter = ListFilter {
        program_id: program.as_str().to_string(),
        ..Default::default()
    };
    for term in Filter::typed(raw, LIST_FILTER)? {
        match (term.field, term.value) {
            ("state", Value::Enum(s)) => {
                filter.state = Some(state_code(if s == pb::ObjectionState::Open as i32 {
                    ObjectionState::Open
                } else {
                    ObjectionState::Resolved
                }));
            }
            ("resolution", Value::Enum(r)) => filter.resolution = Some(r),
            ("application", Value::Text(a)) => {
                let name = ApplicationName::parse(&a, "filter")?;
                if name.program() != program {
                    return Err(ApiError::invalid(
                        "filter",
                        "INVALID_FILTER",
                        "application: names an application of another program",
                    ));
                }
                filter.application_id = Some(name.id().to_string());
            }
            _ => {}
        }
    }
    Ok(filter)
}

/// An objection; identity fields only when `show_identity`.
pub fn objection_to_proto(o: &Objection, show_identity: bool) -> pb::Objection {
    pb::Objection {
        name: o.name(),
        application: format!(
            "programs/{}/applications/{}",
            o.program_id, o.application_id
        ),
        grounds: o.grounds.clone(),
        evidence: o.evidence.clone(),
        objector: if show_identity {
            o.objector.clone()
        } else {
            String::new()
        },
        objector_name: if show_identity {
            o.objector_name.clone()
        } else {
            String::new()
        },
        objector_contact: if show_identity {
            o.objector_contact.clone()
        } else {
            String::new()
        },
        state: match o.state {
            ObjectionState::Open => pb::ObjectionState::Open as i32,
            ObjectionState::Resolved => pb::ObjectionState::Resolved as i32,
        },
        resolution: o.resolution,
        remedy: o.remedy,
        resolution_reason: o.resolution_reason.clone(),
        resolved_by: o.resolved_by.clone(),
        resolve_time: o.resolve_time_us.map(to_timestamp),
        allocation_revision: o.allocation_revision,
        create_time: Some(to_timestamp(o.create_time_us)),
        update_time: Some(to_timestamp(o.update_time_us)),
        etag: o.etag(),
    }
}

/// `full` (as [`objection_to_proto`] shows it with the identity) as it is shown without the
/// objector's identity: what the change feed sends a caller who may read the objection but not
/// know who filed it. Kept apart from `objection_to_proto` on purpose, and tested against it.
pub fn hide_identity(full: &mut pb::Objection) {
    full.objector.clear();
    full.objector_name.clear();
    full.objector_contact.clear();
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hiding_the_identity_of_a_full_objection_is_showing_it_without() {
        let o = Objection {
            program_id: "green".into(),
            id: "o1".into(),
            application_id: "a1".into(),
            grounds: "score miscounted".into(),
            evidence: "minutes".into(),
            objector: "enterprise-1".into(),
            objector_name: "李四".into(),
            objector_contact: "0531-1234567".into(),
            state: ObjectionState::Resolved,
            resolution: pb::ObjectionResolution::Upheld as i32,
            remedy: pb::ObjectionRemedy::ExcludeApplication as i32,
            resolution_reason: "checked".into(),
            resolved_by: "admin".into(),
            resolve_time_us: Some(5),
            allocation_revision: 2,
            create_time_us: 1,
            update_time_us: 5,
            version: 2,
        };
        let mut full = objection_to_proto(&o, true);
        assert_ne!(full, objection_to_proto(&o, false));
        hide_identity(&mut full);
        assert_eq!(full, objection_to_proto(&o, false));
    }

    #[test]
    fn an_objection_reports_every_missing_text_and_a_foreign_application() {
        let req = pb::FileObjectionRequest {
            parent: "programs/green".into(),
            objection: Some(pb::Objection {
                application: "programs/blue/applications/a1".into(),
                grounds: "  ".into(),
                objector_name: "Li".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let Err(ApiError::InvalidArgument(v)) = FileObjection::parse(&req) else {
            panic!("must be refused");
        };
        let got: Vec<(&str, &str)> = v
            .iter()
            .map(|v| (v.field.as_str(), v.reason.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("objection.application", "OTHER_PROGRAM"),
                ("objection.grounds", "REQUIRED"),
                ("objection.objector_contact", "REQUIRED"),
            ]
        );
    }

    #[test]
    fn resolutions_need_a_remedy_exactly_when_upheld() {
        let req = |resolution: pb::ObjectionResolution, remedy: pb::ObjectionRemedy| {
            pb::ResolveObjectionRequest {
                name: "programs/green/objections/o1".into(),
                resolution: resolution as i32,
                remedy: remedy as i32,
                reason: " checked ".into(),
                ..Default::default()
            }
        };
        let ok = ResolveObjection::parse(&req(
            pb::ObjectionResolution::Upheld,
            pb::ObjectionRemedy::ExcludeApplication,
        ))
        .unwrap();
        assert_eq!(ok.reason, "checked");
        assert_eq!(ok.name.id(), "o1");
        for (res, rem) in [
            (
                pb::ObjectionResolution::Upheld,
                pb::ObjectionRemedy::Unspecified,
            ),
            (
                pb::ObjectionResolution::Dismissed,
                pb::ObjectionRemedy::ExcludeApplication,
            ),
        ] {
            assert!(ResolveObjection::parse(&req(res, rem)).is_err());
        }
    }

    #[test]
    fn objection_filters_stay_inside_their_program() {
        let green = ProgramId::from_stored("green");
        let f = list_filter(
            r#"state = OBJECTION_STATE_RESOLVED AND application = "programs/green/applications/a1""#,
            &green,
        )
        .unwrap();
        assert_eq!(f.state, Some(state_code(ObjectionState::Resolved)));
        assert_eq!(f.application_id.as_deref(), Some("a1"));
        assert!(list_filter(r#"application = "programs/blue/applications/a1""#, &green).is_err());
        assert!(list_filter("state = OBJECTION_STATE_UNSPECIFIED", &green).is_err());
    }
}
