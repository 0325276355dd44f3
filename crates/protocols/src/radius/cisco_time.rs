//! Cisco's h323 times: `*10:23:45.123 UTC Mon Nov 20 2000` in
//! h323-setup-time, h323-connect-time and h323-disconnect-time.
//!
//! The layout is the IOS clock's: `hh:mm:ss.mmm zone weekday month day
//! year`. The zone is the name given in `clock timezone` / `clock
//! summer-time`; a leading `*` says the clock is not authoritative and a
//! leading `.` that it is authoritative but not synchronised by NTP (IOS
//! `show clock`). Either way the time may be far off: a gateway without a
//! calendar or NTP counts from a default date after it boots (`*Mar 1 1993`
//! on many IOS platforms).

use cdrhub_model::Timestamp;
use time::{Date, Month, PrimitiveDateTime, Time};

/// Reads a Cisco h323 time: the instant, and whether the gateway said its
/// clock was synchronised (no leading `*` or `.`). The zone may be UTC,
/// GMT, a common North American or European abbreviation (EST, EDT, CST,
/// CDT, MST, MDT, PST, PDT, AKST, AKDT, HST, WET, WEST, CET, CEST, EET,
/// EEST, MSK, JST) or a numeric offset (`+0100`, `-05:00`, `UTC+2`,
/// `GMT-03:30`). The weekday may be missing and is not checked against the
/// date. None when the text is not such a time or the zone is not known.
pub fn parse_cisco_time(text: &str) -> Option<(Timestamp, bool)> {
    let text = text.trim();
    let (synchronised, text) = match text.strip_prefix(['*', '.']) {
        Some(rest) => (false, rest),
        None => (true, text),
    };
    let mut words = text.split_whitespace();
    let clock = clock(words.next()?)?;
    let offset_minutes = zone_offset_minutes(words.next()?)?;
    let mut rest: Vec<&str> = words.collect();
    if rest.len() == 4 && is_weekday(rest[0]) {
        rest.remove(0);
    }
    let [month, day, year] = rest[..] else {
        return None;
    };
    let month = month_named(month)?;
    let day = u8::try_from(digits(day, 2)?).ok()?;
    if year.len() != 4 {
        return None;
    }
    let year = i32::try_from(digits(year, 4)?).ok()?;
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let local = PrimitiveDateTime::new(date, clock).assume_utc();
    let millis = local.unix_timestamp() * 1000 + i64::from(local.millisecond())
        - i64::from(offset_minutes) * 60_000;
    Some((Timestamp::from_millis(millis), synchronised))
}

/// `hh:mm:ss` with an optional fraction of a second, kept to milliseconds.
fn clock(text: &str) -> Option<Time> {
    let mut parts = text.splitn(3, ':');
    let hour = digits(parts.next()?, 2)?;
    let minute = digits(parts.next()?, 2)?;
    let seconds = parts.next()?;
    let (second, fraction) = match seconds.split_once('.') {
        Some((second, fraction)) => (second, Some(fraction)),
        None => (seconds, None),
    };
    let second = digits(second, 2)?;
    let millis = match fraction {
        None => 0,
        Some(f) => {
            digits(f, 9)?;
            // The first three digits, padded: ".1" is 100 ms, ".1234" 123 ms.
            f.bytes()
                .chain(std::iter::repeat(b'0'))
                .take(3)
                .fold(0u16, |ms, d| ms * 10 + u16::from(d - b'0'))
        }
    };
    Time::from_hms_milli(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
        millis,
    )
    .ok()
}

/// A zone's offset east of UTC, in minutes.
fn zone_offset_minutes(zone: &str) -> Option<i32> {
    let zone = zone.to_ascii_uppercase();
    let hours = match zone.as_str() {
        "UTC" | "GMT" | "UT" | "Z" | "WET" => 0,
        "WEST" | "CET" => 1,
        "CEST" | "EET" => 2,
        "EEST" | "MSK" => 3,
        "JST" => 9,
        "EST" => -5,
        "EDT" => -4,
        "CST" => -6,
        "CDT" => -5,
        "MST" => -7,
        "MDT" => -6,
        "PST" => -8,
        "PDT" => -7,
        "AKST" => -9,
        "AKDT" => -8,
        "HST" => -10,
        _ => return numeric_offset_minutes(&zone),
    };
    Some(hours * 60)
}

/// `+hh`, `+hhmm`, `+hh:mm` (or `-`), alone or after `UTC` / `GMT`.
fn numeric_offset_minutes(zone: &str) -> Option<i32> {
    let signed = zone
        .strip_prefix("UTC")
        .or_else(|| zone.strip_prefix("GMT"))
        .unwrap_or(zone);
    let (sign, offset) = if let Some(offset) = signed.strip_prefix('+') {
        (1, offset)
    } else {
        (-1, signed.strip_prefix('-')?)
    };
    let (hours, minutes) = match offset.split_once(':') {
        Some((hours, minutes)) => (hours, minutes),
        None if offset.len() == 4 => offset.split_at(2),
        None => (offset, "0"),
    };
    let hours = digits(hours, 2)?;
    let minutes = digits(minutes, 2)?;
    if hours > 14 || minutes > 59 {
        return None;
    }
    Some(sign * (hours as i32 * 60 + minutes as i32))
}

/// 1 to `max` ASCII digits (no sign, no space).
fn digits(text: &str, max: usize) -> Option<u32> {
    if text.is_empty() || text.len() > max || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn is_weekday(word: &str) -> bool {
    ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        .iter()
        .any(|day| day.eq_ignore_ascii_case(word))
}

fn month_named(word: &str) -> Option<Month> {
    const MONTHS: [(&str, Month); 12] = [
        ("Jan", Month::January),
        ("Feb", Month::February),
        ("Mar", Month::March),
        ("Apr", Month::April),
        ("May", Month::May),
        ("Jun", Month::June),
        ("Jul", Month::July),
        ("Aug", Month::August),
        ("Sep", Month::September),
        ("Oct", Month::October),
        ("Nov", Month::November),
        ("Dec", Month::December),
    ];
    MONTHS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(word))
        .map(|&(_, month)| month)
}
