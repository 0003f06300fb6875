//! `update_mask` (AIP-134): which fields an Update writes.
//!
//! Qilu asks for the mask explicitly: an empty mask is `REQUIRED` (never "every field"), so a
//! client generated from an older contract cannot blank a field it does not know.

use crate::error::{ApiError, FieldViolation};
use crate::input::Violations;

/// The paths of an update mask, each one of the resource's updatable fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateMask(Vec<String>);

impl UpdateMask {
    /// Parses `mask` over `updatable`: empty is `REQUIRED`, a path not in `updatable` is
    /// `FIELD_NOT_UPDATABLE` (every such path reported at once).
    pub fn parse(
        mask: Option<&prost_types::FieldMask>,
        updatable: &[&str],
    ) -> Result<UpdateMask, ApiError> {
        let paths: Vec<String> = mask.map(|m| m.paths.clone()).unwrap_or_default();
        if paths.is_empty() {
            return Err(ApiError::invalid(
                "update_mask",
                "REQUIRED",
                format!("name the fields to update: {}", updatable.join(", ")),
            ));
        }
        let bad: Vec<FieldViolation> = paths
            .iter()
            .filter(|p| !updatable.contains(&p.as_str()))
            .map(|p| not_updatable(p, updatable))
            .collect();
        if !bad.is_empty() {
            return Err(ApiError::InvalidArgument(bad));
        }
        Ok(UpdateMask(paths))
    }

    /// Like [`parse`](Self::parse) for an Update that reports bad paths together with the
    /// violations of the fields it goes on to check: an empty mask is still `REQUIRED` at once,
    /// but each path not in `updatable` is recorded in `violations` (`FIELD_NOT_UPDATABLE`) and
    /// left out of the mask that is returned.
    pub fn parse_reporting(
        mask: Option<&prost_types::FieldMask>,
        updatable: &[&str],
        violations: &mut Violations,
    ) -> Result<UpdateMask, ApiError> {
        let paths: Vec<String> = mask.map(|m| m.paths.clone()).unwrap_or_default();
        if paths.is_empty() {
            return Self::parse(mask, updatable);
        }
        let (good, bad): (Vec<String>, Vec<String>) = paths
            .into_iter()
            .partition(|p| updatable.contains(&p.as_str()));
        for path in &bad {
            violations.push(not_updatable(path, updatable));
        }
        Ok(UpdateMask(good))
    }

    /// Whether `path` is in the mask.
    pub fn contains(&self, path: &str) -> bool {
        self.0.iter().any(|p| p == path)
    }

    /// The paths, in the caller's order.
    pub fn paths(&self) -> &[String] {
        &self.0
    }
}

/// The violation for a path that cannot be updated.
pub fn not_updatable(path: &str, updatable: &[&str]) -> FieldViolation {
    FieldViolation::new(
        "update_mask",
        "FIELD_NOT_UPDATABLE",
        format!(
            "{} cannot be updated; updatable fields: {}",
            crate::limits::echo(path),
            updatable.join(", ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(paths: &[&str]) -> prost_types::FieldMask {
        prost_types::FieldMask {
            paths: paths.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn masks_name_updatable_fields_or_are_refused_with_every_bad_path() {
        let ok = UpdateMask::parse(Some(&mask(&["title", "summary"])), &["title", "summary"]);
        assert!(
            ok.as_ref()
                .is_ok_and(|m| m.contains("summary") && !m.contains("uscc"))
        );
        let Err(ApiError::InvalidArgument(v)) = UpdateMask::parse(None, &["title"]) else {
            panic!("empty mask must be refused");
        };
        assert_eq!(v[0].reason, "REQUIRED");
        let Err(ApiError::InvalidArgument(v)) =
            UpdateMask::parse(Some(&mask(&["uscc", "title", "state"])), &["title"])
        else {
            panic!("bad paths must be refused");
        };
        assert_eq!(v.len(), 2);
        assert!(v.iter().all(|v| v.reason == "FIELD_NOT_UPDATABLE"));
    }

    #[test]
    fn a_reporting_parse_records_bad_paths_and_keeps_the_good_ones() {
        let mut v = Violations::new();
        let m = UpdateMask::parse_reporting(
            Some(&mask(&["uscc", "title", "state"])),
            &["title"],
            &mut v,
        );
        assert_eq!(
            m.ok().map(|m| m.paths().to_vec()),
            Some(vec!["title".to_string()])
        );
        let Err(ApiError::InvalidArgument(list)) = v.finish() else {
            panic!("the bad paths must be recorded");
        };
        assert_eq!(list.len(), 2);
        let mut v = Violations::new();
        let empty = UpdateMask::parse_reporting(None, &["title"], &mut v);
        assert!(matches!(empty, Err(ApiError::InvalidArgument(_))));
        assert!(v.is_empty());
    }
}
