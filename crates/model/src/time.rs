use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A point in time, milliseconds since the Unix epoch, UTC. Shown as RFC 3339.
/// The default is the epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

#[derive(Debug, thiserror::Error)]
#[error("{value:?} is not an RFC 3339 time")]
pub struct TimestampError {
    pub value: String,
}

/// A text that is not a `YYYY-MM-DD` date.
#[derive(Debug, thiserror::Error)]
#[error("{value:?} is not a date (YYYY-MM-DD)")]
pub struct DateError {
    pub value: String,
}

impl Timestamp {
    pub fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn now() -> Self {
        let now = OffsetDateTime::now_utc();
        Timestamp((now.unix_timestamp_nanos() / 1_000_000) as i64)
    }

    /// Parses an RFC 3339 time such as `2015-07-23T07:32:55Z`.
    pub fn parse_rfc3339(s: &str) -> Result<Self, TimestampError> {
        let t = OffsetDateTime::parse(s.trim(), &Rfc3339).map_err(|_| TimestampError {
            value: s.to_owned(),
        })?;
        Ok(Timestamp((t.unix_timestamp_nanos() / 1_000_000) as i64))
    }

    /// The start (00:00 UTC) of a `YYYY-MM-DD` day, as report forms send it.
    pub fn parse_date(s: &str) -> Result<Self, DateError> {
        Timestamp::parse_rfc3339(&format!("{}T00:00:00Z", s.trim())).map_err(|_| DateError {
            value: s.to_owned(),
        })
    }

    pub fn to_offset_datetime(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(self.0 as i128 * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// RFC 3339 in UTC; milliseconds are shown only when there are some.
    pub fn to_rfc3339(self) -> String {
        let t = self.to_offset_datetime();
        if self.0.rem_euclid(1000) == 0 {
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        } else {
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                t.millisecond()
            )
        }
    }

    /// Whole seconds from `earlier` to `self`, never negative.
    pub fn seconds_since(self, earlier: Timestamp) -> i64 {
        ((self.0 - earlier.0) / 1000).max(0)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse_rfc3339(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_is_the_start_of_its_utc_day() {
        let day = Timestamp::parse_date("2026-11-01").unwrap();
        assert_eq!(day.to_rfc3339(), "2026-11-01T00:00:00Z");
        let e = Timestamp::parse_date("yesterday").unwrap_err();
        assert_eq!(e.to_string(), r#""yesterday" is not a date (YYYY-MM-DD)"#);
    }

    #[test]
    fn round_trips_cms_time() {
        let t = Timestamp::parse_rfc3339("2015-07-23T07:32:55Z").unwrap();
        assert_eq!(t.0, 1_437_636_775_000);
        assert_eq!(t.to_rfc3339(), "2015-07-23T07:32:55Z");
        let m = Timestamp(t.0 + 5);
        assert_eq!(m.to_rfc3339(), "2015-07-23T07:32:55.005Z");
    }

    #[test]
    fn rejects_garbage() {
        assert!(Timestamp::parse_rfc3339("yesterday").is_err());
    }
}
