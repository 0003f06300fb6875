//! "Now" and "today" for every service, injectable so tests can set the date instead of
//! sleeping or faking the process clock.
//!
//! Rows are stamped with the write transaction's commit time (`WriteTx::now_us`); the clock is
//! for decisions that depend on the date: a certificate's state, an appeal window, a milestone's
//! due date, an objection window.

use std::sync::Arc;

use chrono::NaiveDate;
use chrono_tz::Tz;

/// A source of "now" in microseconds since the Unix epoch.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> i64 + Send + Sync>);

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock(Arc::new(crate::time::now_micros))
    }

    /// A clock reading `now_us` (µs since the epoch) each time it is asked.
    pub fn new(now_us: impl Fn() -> i64 + Send + Sync + 'static) -> Clock {
        Clock(Arc::new(now_us))
    }

    /// A clock stopped at noon UTC of `date` (tests that set "today").
    pub fn fixed_on(date: NaiveDate) -> Clock {
        let us = date
            .and_hms_opt(12, 0, 0)
            .map(|t| t.and_utc().timestamp_micros())
            .unwrap_or_default();
        Clock::new(move || us)
    }

    /// Now, µs since the epoch.
    pub fn now_us(&self) -> i64 {
        (self.0)()
    }

    /// Today in `zone` (the programme's time zone, not the server's).
    pub fn today(&self, zone: Tz) -> NaiveDate {
        crate::time::to_datetime(self.now_us())
            .map(|t| t.with_timezone(&zone).date_naive())
            .unwrap_or_default()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn today_is_the_programme_zones_date_not_utcs() {
        // 2026-03-01 20:00 UTC is already 2026-03-02 in Shanghai.
        let at = chrono::DateTime::parse_from_rfc3339("2026-03-01T20:00:00Z")
            .map(|t| t.timestamp_micros())
            .unwrap_or_default();
        let clock = Clock::new(move || at);
        assert_eq!(
            clock.today(chrono_tz::Asia::Shanghai),
            NaiveDate::from_ymd_opt(2026, 3, 2).unwrap_or_default()
        );
        assert_eq!(
            clock.today(chrono_tz::UTC),
            NaiveDate::from_ymd_opt(2026, 3, 1).unwrap_or_default()
        );
    }

    #[test]
    fn a_fixed_clock_reads_the_date_it_was_set_to() {
        let day = NaiveDate::from_ymd_opt(2031, 6, 1).unwrap_or_default();
        assert_eq!(Clock::fixed_on(day).today(chrono_tz::Asia::Shanghai), day);
    }
}
