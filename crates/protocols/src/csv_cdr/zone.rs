//! The time zone a PBX writes its wall-clock times in, and reading those
//! times.

use cdrhub_model::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::{Offset, TimeZoneDatabase};
use std::fmt;
use std::str::FromStr;

/// The zone of the wall-clock times in a CSV file: Asterisk writes its
/// local time (UTC with `usegmtime=yes`), FreeSWITCH and miniSIPServer
/// theirs. UTC by default; read from `UTC`, a fixed offset (`+02:00`,
/// `-0530`, `UTC+2`) or an IANA name (`Europe/Berlin`).
///
/// IANA names are looked up in the copy of the tz database built into
/// cdrhub (jiff's bundled database), never in `/usr/share/zoneinfo`, so
/// the decoder does no I/O and gives the same answer on every machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeZone {
    zone: jiff::tz::TimeZone,
    name: String,
}

/// A text that names no time zone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown time zone {0:?}, expected UTC, a fixed offset such as +02:00, or an IANA name such as Europe/Berlin"
)]
pub struct UnknownTimeZone(pub String);

impl TimeZone {
    pub fn utc() -> TimeZone {
        TimeZone {
            zone: jiff::tz::TimeZone::UTC,
            name: "UTC".to_owned(),
        }
    }

    /// The instant a wall-clock time in this zone names. A time in the
    /// spring-forward gap is moved forward by the gap; a time repeated at
    /// fall-back is read as the first of the two (jiff's "compatible"
    /// rule, the one RFC 5545 and java.time use): a CSV line carries no
    /// offset to tell them apart.
    pub(crate) fn instant(&self, wall: DateTime) -> Option<Timestamp> {
        let instant = self.zone.to_timestamp(wall).ok()?;
        Some(Timestamp(instant.as_millisecond()))
    }

    pub(crate) fn jiff(&self) -> &jiff::tz::TimeZone {
        &self.zone
    }
}

impl Default for TimeZone {
    fn default() -> Self {
        TimeZone::utc()
    }
}

impl fmt::Display for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl FromStr for TimeZone {
    type Err = UnknownTimeZone;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        let unknown = || UnknownTimeZone(s.to_owned());
        if ["UTC", "GMT", "Z"]
            .iter()
            .any(|u| text.eq_ignore_ascii_case(u))
        {
            return Ok(TimeZone::utc());
        }
        if let Some(seconds) = parse_offset(text) {
            let offset = Offset::from_seconds(seconds).map_err(|_| unknown())?;
            return Ok(TimeZone {
                zone: jiff::tz::TimeZone::fixed(offset),
                name: text.to_owned(),
            });
        }
        let zone = TimeZoneDatabase::bundled()
            .get(text)
            .map_err(|_| unknown())?;
        let name = zone.iana_name().unwrap_or(text).to_owned();
        Ok(TimeZone { zone, name })
    }
}

impl<'de> serde::Deserialize<'de> for TimeZone {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// `+02:00`, `-0530`, `+2`, `UTC+02:00`, `GMT-3` as seconds east of UTC.
fn parse_offset(text: &str) -> Option<i32> {
    let text = ["UTC", "GMT"]
        .iter()
        .find_map(|p| {
            text.get(..3)
                .filter(|head| head.eq_ignore_ascii_case(p))
                .and_then(|_| text.get(3..))
        })
        .unwrap_or(text);
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|&c| c != ':').collect();
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if rest.contains(':')
        && !matches!(rest.split_once(':'), Some((h, m)) if !h.is_empty() && m.len() == 2)
    {
        return None;
    }
    let (hours, minutes) = match digits.len() {
        1 | 2 => (digits.parse::<i32>().ok()?, 0),
        3 | 4 => {
            let split = digits.len() - 2;
            (digits[..split].parse().ok()?, digits[split..].parse().ok()?)
        }
        _ => return None,
    };
    if minutes > 59 {
        return None;
    }
    Some(sign * (hours * 3600 + minutes * 60))
}

/// Reads a wall-clock time as PBXs write it: `2024-03-15 09:30:00`
/// (Asterisk and FreeSWITCH use strftime `%Y-%m-%d %T`), also with `/`
/// between the date's parts, `T` before the time, no seconds, or a
/// fraction of a second. A leap second `:60` is read as `:59`.
pub(crate) fn parse_wall_clock(text: &str) -> Option<DateTime> {
    let text = text.trim();
    let (date, time) = text.split_once([' ', 'T'])?;
    let date: Vec<&str> = date.split(['-', '/']).collect();
    let [year, month, day] = date.as_slice() else {
        return None;
    };
    let time = time.trim_start();
    let (clock, fraction) = match time.split_once(['.', ',']) {
        Some((clock, fraction)) => (clock, Some(fraction)),
        None => (time, None),
    };
    let clock: Vec<&str> = clock.split(':').collect();
    let (hour, minute, second) = match clock.as_slice() {
        [h, m] => (*h, *m, "0"),
        [h, m, s] => (*h, *m, *s),
        _ => return None,
    };
    let nanos = match fraction {
        None => 0,
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            let n: i32 = f.parse().ok()?;
            n * 10_i32.pow(9 - f.len() as u32)
        }
        Some(_) => return None,
    };
    let year = number(year, 4, 4)?;
    let second = number(second, 1, 2)?.min(59);
    DateTime::new(
        i16::try_from(year).ok()?,
        i8::try_from(number(month, 1, 2)?).ok()?,
        i8::try_from(number(day, 1, 2)?).ok()?,
        i8::try_from(number(hour, 1, 2)?).ok()?,
        i8::try_from(number(minute, 1, 2)?).ok()?,
        i8::try_from(second).ok()?,
        nanos,
    )
    .ok()
}

/// An unsigned decimal of `min..=max` digits.
fn number(text: &str, min: usize, max: usize) -> Option<u32> {
    if !(min..=max).contains(&text.len()) || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(zone: &str, wall: &str) -> String {
        let zone: TimeZone = zone.parse().unwrap();
        zone.instant(parse_wall_clock(wall).unwrap())
            .unwrap()
            .to_rfc3339()
    }

    #[test]
    fn reads_utc_offsets_and_iana_names() {
        assert_eq!(at("UTC", "2024-03-15 09:30:00"), "2024-03-15T09:30:00Z");
        assert_eq!(at("+02:00", "2024-03-15 09:30:00"), "2024-03-15T07:30:00Z");
        assert_eq!(at("-0530", "2024-03-15 09:30:00"), "2024-03-15T15:00:00Z");
        assert_eq!(at("UTC+2", "2024-03-15 09:30:00"), "2024-03-15T07:30:00Z");
        assert_eq!(
            at("Europe/Berlin", "2024-03-15 09:30:00"),
            "2024-03-15T08:30:00Z"
        );
        assert_eq!(
            at("Europe/Berlin", "2024-07-15 09:30:00"),
            "2024-07-15T07:30:00Z"
        );
        assert_eq!(
            at("america/new_york", "2024-07-15 09:30:00"),
            "2024-07-15T13:30:00Z"
        );
        assert_eq!(
            "america/new_york".parse::<TimeZone>().unwrap().to_string(),
            "America/New_York"
        );
    }

    #[test]
    fn dst_gap_moves_forward_and_fold_takes_the_first() {
        // Europe/Berlin springs from 02:00 to 03:00 on 2024-03-31 and falls
        // back from 03:00 to 02:00 on 2024-10-27.
        assert_eq!(
            at("Europe/Berlin", "2024-03-31 02:30:00"),
            "2024-03-31T01:30:00Z"
        );
        assert_eq!(
            at("Europe/Berlin", "2024-10-27 02:30:00"),
            "2024-10-27T00:30:00Z"
        );
    }

    #[test]
    fn rejects_what_is_no_zone() {
        for bad in ["Mars/Olympus", "+26:00", "+2:3", "", "+", "UTC+", "12"] {
            let e = bad.parse::<TimeZone>().unwrap_err();
            assert_eq!(e, UnknownTimeZone(bad.to_owned()), "{bad}");
        }
        assert_eq!(
            "Mars/Olympus".parse::<TimeZone>().unwrap_err().to_string(),
            "unknown time zone \"Mars/Olympus\", expected UTC, a fixed offset such as +02:00, or an IANA name such as Europe/Berlin"
        );
    }

    #[test]
    fn wall_clock_forms() {
        let t = |s| parse_wall_clock(s).map(|d| d.to_string());
        assert_eq!(
            t("2024-03-15 09:30:00").as_deref(),
            Some("2024-03-15T09:30:00")
        );
        assert_eq!(
            t("2024/3/5 9:30:00").as_deref(),
            Some("2024-03-05T09:30:00")
        );
        assert_eq!(
            t("2024-03-15T09:30").as_deref(),
            Some("2024-03-15T09:30:00")
        );
        assert_eq!(
            t("2024-03-15 09:30:00.25").as_deref(),
            Some("2024-03-15T09:30:00.25")
        );
        assert_eq!(
            t("2016-12-31 23:59:60").as_deref(),
            Some("2016-12-31T23:59:59")
        );
        for bad in [
            "2024-02-30 10:00:00",
            "2024-03-15",
            "15.03.2024 09:30",
            "2024-03-15 25:00:00",
            "x",
        ] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }
}
