//! High-tech industrial development zones (高新技术产业开发区): their level, the Shandong city
//! they lie in, and the rules their fields obey. Also the resource-id rule (AIP-122) shared by
//! zones, clusters and policy targets. No I/O: values here were parsed at the edge.

use chrono::NaiveDate;
use serde::Serialize;

use super::uscc::city_for_division;

/// Longest zone or cluster display name (characters).
pub const MAX_DISPLAY_NAME_CHARS: usize = 200;
/// Longest resource id (AIP-122: 1-63 characters).
pub const MAX_ID_CHARS: usize = 63;
/// Earliest approval date accepted. China's first national high-tech zone (Zhongguancun) was
/// approved in 1988; anything before 1980 is a data-entry error.
pub const EARLIEST_APPROVAL: (i32, u32, u32) = (1980, 1, 1);

/// Why a resource id is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Empty.
    #[error("an id is required")]
    Empty,
    /// Longer than 63 characters.
    #[error("at most {MAX_ID_CHARS} characters")]
    TooLong,
    /// Not `[a-z][a-z0-9-]*`.
    #[error("lower-case letters, digits and '-', starting with a letter, got {0:?}")]
    Malformed(String),
}

/// Checks a resource id: lower-case letters, digits and `-`, 1-63 characters, starting with a
/// letter (the rule every `CreateXRequest.x_id` in the registry contract states).
pub fn parse_id(raw: &str) -> Result<String, IdError> {
    if raw.is_empty() {
        return Err(IdError::Empty);
    }
    if raw.len() > MAX_ID_CHARS {
        return Err(IdError::TooLong);
    }
    let mut bytes = raw.bytes();
    let starts_with_letter = bytes.next().is_some_and(|b| b.is_ascii_lowercase());
    let rest_ok = bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if starts_with_letter && rest_ok {
        Ok(raw.to_string())
    } else {
        Err(IdError::Malformed(raw.to_string()))
    }
}

/// National or provincial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ZoneLevel {
    /// Approved by the State Council (国家级).
    National,
    /// Approved by the provincial government (省级).
    Provincial,
}

impl ZoneLevel {
    /// Stored code = `qilu.registry.v1.ZoneLevel` number.
    pub fn code(self) -> i32 {
        match self {
            ZoneLevel::National => 1,
            ZoneLevel::Provincial => 2,
        }
    }

    /// From the stored code; `None` for 0 (unspecified) and unknown numbers.
    pub fn from_code(code: i32) -> Option<ZoneLevel> {
        match code {
            1 => Some(ZoneLevel::National),
            2 => Some(ZoneLevel::Provincial),
            _ => None,
        }
    }
}

/// Why a division code is refused for a zone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DivisionError {
    /// Not six digits.
    #[error("a GB/T 2260 division code is six digits, got {0:?}")]
    Malformed(String),
    /// Six digits, but not a Shandong prefecture-level city.
    #[error("{0} is not in a Shandong prefecture-level city (codes 3701-3717)")]
    NotShandong(String),
}

/// The city of a zone's division code: six digits, in one of Shandong's prefecture-level cities
/// (the list in [`super::uscc`]). Returns the English city name.
pub fn zone_city(division_code: &str) -> Result<&'static str, DivisionError> {
    if division_code.len() != 6 || !division_code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DivisionError::Malformed(division_code.to_string()));
    }
    city_for_division(division_code).ok_or_else(|| DivisionError::NotShandong(division_code.into()))
}

/// The fields a caller sets on a zone (at creation or through an update mask).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ZoneFields {
    /// Official name (trimmed, non-empty).
    pub display_name: String,
    /// National or provincial.
    pub level: ZoneLevel,
    /// GB/T 2260 code of the prefecture-level city, six digits, Shandong.
    pub division_code: String,
    /// Approval at the current level, if known.
    pub approval_date: Option<NaiveDate>,
}

/// A zone as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Zone {
    /// The id in `zones/{id}`.
    pub id: String,
    /// Caller-set fields.
    #[serde(flatten)]
    pub fields: ZoneFields,
    /// Creation time, µs.
    pub create_time_us: i64,
    /// Last change, µs.
    pub update_time_us: i64,
    /// Optimistic-concurrency version, +1 on every change.
    pub version: i64,
}

impl Zone {
    /// Resource name `zones/{id}`.
    pub fn name(&self) -> String {
        zone_name(&self.id)
    }

    /// The city of the division code ("" if the stored code no longer maps, which validation
    /// at write time prevents).
    pub fn city(&self) -> &'static str {
        zone_city(&self.fields.division_code).unwrap_or("")
    }

    /// AIP-154 etag.
    pub fn etag(&self) -> String {
        super::enterprise::etag_of(&self.name(), self.version)
    }
}

/// Resource name of a zone.
pub fn zone_name(id: &str) -> String {
    format!("zones/{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_aip_122() {
        let cases: &[(&str, bool)] = &[
            ("jinan", true),
            ("qingdao-national-2", true),
            ("a", true),
            (&"a".repeat(63), true),
            (&"a".repeat(64), false),
            ("", false),
            ("Jinan", false),
            ("1jinan", false),
            ("-jinan", false),
            ("jinan_zone", false),
            ("济南", false),
            ("jinan zone", false),
        ];
        for (raw, ok) in cases {
            assert_eq!(parse_id(raw).is_ok(), *ok, "{raw:?}");
        }
    }

    #[test]
    fn zone_cities_are_shandong_prefectures_only() {
        assert_eq!(zone_city("370100"), Ok("Jinan"));
        assert_eq!(zone_city("370200"), Ok("Qingdao"));
        assert_eq!(zone_city("371700"), Ok("Heze"));
        // Laiwu (3712) merged into Jinan in 2019.
        assert_eq!(zone_city("371200"), Ok("Jinan"));
        for bad in ["3701", "37010", "3701000", "37A100", ""] {
            assert!(
                matches!(zone_city(bad), Err(DivisionError::Malformed(_))),
                "{bad}"
            );
        }
        for outside in ["370000", "371800", "350100", "110000"] {
            assert!(
                matches!(zone_city(outside), Err(DivisionError::NotShandong(_))),
                "{outside}"
            );
        }
    }

    #[test]
    fn level_codes_round_trip_and_refuse_unspecified() {
        for l in [ZoneLevel::National, ZoneLevel::Provincial] {
            assert_eq!(ZoneLevel::from_code(l.code()), Some(l));
        }
        assert_eq!(ZoneLevel::from_code(0), None);
        assert_eq!(ZoneLevel::from_code(3), None);
    }
}
