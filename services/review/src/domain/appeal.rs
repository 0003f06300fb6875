//! The appeal window: an owner may appeal a veto once, within 30 days of the veto (docs/rules.md,
//! "procedural appeal within 30 days"), counted in calendar days in the programme's time zone
//! (docs/design.md §2), until the end of the deadline day there.

use chrono::{Days, NaiveDate};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Days after the veto's date during which an appeal may be filed.
pub const APPEAL_WINDOW_DAYS: u64 = 30;

/// The calendar date of `time_us` in `tz`.
pub fn local_date(time_us: i64, tz: Tz) -> NaiveDate {
    qilu_common::time::to_datetime(time_us)
        .map(|t| t.with_timezone(&tz).date_naive())
        .unwrap_or(NaiveDate::MIN)
}

/// The last day to appeal a veto made at `veto_time_us`: the veto's date plus 30 days.
pub fn deadline(veto_time_us: i64, tz: Tz) -> NaiveDate {
    let day = local_date(veto_time_us, tz);
    day.checked_add_days(Days::new(APPEAL_WINDOW_DAYS))
        .unwrap_or(day)
}

/// Whether an appeal at `now_us` is in time for `deadline` (through the end of that day in `tz`).
pub fn in_time(deadline: NaiveDate, now_us: i64, tz: Tz) -> bool {
    local_date(now_us, tz) <= deadline
}

/// How an appeal was resolved (`AppealResolution`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Resolution {
    /// The veto stands.
    Upheld,
    /// The veto is set aside; a new review round.
    Overturned,
}

impl Resolution {
    /// The proto number.
    pub fn code(self) -> i32 {
        match self {
            Resolution::Upheld => 1,
            Resolution::Overturned => 2,
        }
    }
}

/// An owner's appeal against a veto.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appeal {
    /// Procedural grounds.
    pub grounds: String,
    /// Filer's `sub`.
    pub filed_by: String,
    /// µs.
    pub file_time_us: i64,
    /// `None` while pending.
    pub resolution: Option<Resolution>,
    /// The recorded reason.
    pub resolution_reason: String,
    /// The admin's `sub`.
    pub resolved_by: String,
    /// µs, once resolved.
    pub resolve_time_us: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(rfc3339: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(rfc3339)
            .map(|t| t.timestamp_micros())
            .unwrap_or(0)
    }

    #[test]
    fn the_window_is_thirty_days_in_the_programme_time_zone() {
        let shanghai = chrono_tz::Asia::Shanghai;
        // 2026-03-01 20:00 UTC is already 2026-03-02 in Shanghai.
        let veto = us("2026-03-01T20:00:00Z");
        let last = deadline(veto, shanghai);
        assert_eq!(last.to_string(), "2026-04-01");
        assert_eq!(deadline(veto, chrono_tz::UTC).to_string(), "2026-03-31");
        for (now, ok) in [
            ("2026-03-02T01:00:00+08:00", true),
            ("2026-04-01T23:59:59+08:00", true), // end of the deadline day, Shanghai
            ("2026-04-02T00:00:00+08:00", false), // still 04-01 in UTC, but too late here
            ("2026-05-01T00:00:00+08:00", false),
        ] {
            assert_eq!(in_time(last, us(now), shanghai), ok, "{now}");
        }
    }
}
