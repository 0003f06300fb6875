//! Time as Qilu stores it: integer microseconds since the Unix epoch (exact on both SQLite and
//! PostgreSQL, and hashed byte-for-byte into the audit chain), converted to
//! `google.protobuf.Timestamp` at the edge.

use chrono::{DateTime, Utc};

/// Now, in microseconds since the epoch.
pub fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

/// Microseconds since the epoch → protobuf `Timestamp`.
pub fn to_timestamp(micros: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1_000) as i32,
    }
}

/// Microseconds since the epoch → UTC date-time (for display and date arithmetic).
pub fn to_datetime(micros: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_including_before_the_epoch() {
        let t = to_timestamp(-1);
        assert_eq!((t.seconds, t.nanos), (-1, 999_999_000));
        let t = to_timestamp(1_700_000_000_123_456);
        assert_eq!((t.seconds, t.nanos), (1_700_000_000, 123_456_000));
    }
}
