//! Any other CSV file, read through a [`Mapping`].

use super::cause;
use super::record::{Row, read_rows};
use super::zone::TimeZone;
use super::{CsvCdr, CsvLineError, CsvOptions};
use cdrhub_model::{Direction, Disposition, Timestamp};
use std::str::FromStr;

/// How to read a CSV file that no built-in format covers, from a small
/// TOML file ([`Mapping::from_toml`]). A complete example, every key
/// explained:
///
/// ```toml
/// # The character between fields: one character, "\t" for a tab.
/// # Default ",".
/// delimiter = ";"
///
/// # Whether the first line names the columns. Default true.
/// header = true
///
/// # How times are written, as a strftime format read by the jiff crate
/// # (https://docs.rs/jiff, module fmt::strtime): %Y %m %d %H %M %S,
/// # %.f for a fraction of a second, %z or %:z for an offset, %s for Unix
/// # seconds, %b for a month name ... Without it, times are read as PBXs
/// # mostly write them: 2024-03-15 09:30:00, also with / in the date, a T
/// # before the time, or a fraction of a second.
/// time_format = "%d.%m.%Y %H:%M:%S"
///
/// # The zone of times written without an offset: UTC, a fixed offset such
/// # as +01:00, or an IANA name. Default: the zone given to the import
/// # (UTC unless one is given); this one wins when both are.
/// time_zone = "Europe/Berlin"
///
/// # Which column holds each field of a CDR: a header name (as written in
/// # the header line, else ignoring case) or a column number counted
/// # from 1. Only started_at is required.
/// [columns]
/// id = "Call ID"          # the row's unique id; default: an MD5 of the row
/// call_id = "Linked ID"   # rows sharing it are legs of one call; default: id
/// leg = "Channel"         # the leg's name within the call
/// caller = "From"
/// caller_name = "From name"
/// dialed = "To"
/// destination = "Answered by"
/// direction = "Direction" # in, out, internal (see [directions])
/// started_at = "Start"
/// answered_at = "Answer"
/// ended_at = "End"
/// duration_s = "Duration" # 65, 65.4 (rounded) or 0:01:05; default: end - start
/// talk_s = "Billsec"      # the same forms; default: end - answer
/// disposition = "Status"  # see [dispositions]
/// cause = "Hangup cause"  # the raw cause; default: the disposition column's text
/// q850_cause = "Q850"     # a number, 1 to 127
/// sip_status = 12         # a number such as 486; here the 12th column
///
/// # What the disposition column's values mean, when they are not already
/// # answered, busy, no_answer, rejected, cancelled or failed (any case,
/// # "no answer" too). Keys match exactly, else ignoring case. A value
/// # nothing matches gives no disposition from this column; the disposition
/// # then comes from the answer time, the SIP status or the Q.850 cause.
/// [dispositions]
/// "ANSWER" = "answered"
/// "NOANSWER" = "no_answer"
/// "CANCEL" = "cancelled"
/// "CONGESTION" = "failed"
/// "CHANUNAVAIL" = "failed"
///
/// # The same for the direction column; in, out, internal, inbound,
/// # outbound, incoming, outgoing and local are understood without it.
/// [directions]
/// "ext-in" = "in"
/// "ext-out" = "out"
/// ```
///
/// Columns no key names are kept in [`CsvCdr::extra`] under their header
/// name, or `column3` for the third column of a file without a header.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    delimiter: u8,
    header: bool,
    time_format: Option<String>,
    time_zone: Option<TimeZone>,
    columns: Vec<(Field, Column)>,
    dispositions: Vec<(String, Disposition)>,
    directions: Vec<(String, Direction)>,
}

/// A field of [`CsvCdr`] a column can be mapped to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Id,
    CallId,
    Leg,
    Caller,
    CallerName,
    Dialed,
    Destination,
    Direction,
    StartedAt,
    AnsweredAt,
    EndedAt,
    DurationS,
    TalkS,
    Disposition,
    Cause,
    Q850Cause,
    SipStatus,
}

const FIELDS: [(Field, &str); 17] = [
    (Field::Id, "id"),
    (Field::CallId, "call_id"),
    (Field::Leg, "leg"),
    (Field::Caller, "caller"),
    (Field::CallerName, "caller_name"),
    (Field::Dialed, "dialed"),
    (Field::Destination, "destination"),
    (Field::Direction, "direction"),
    (Field::StartedAt, "started_at"),
    (Field::AnsweredAt, "answered_at"),
    (Field::EndedAt, "ended_at"),
    (Field::DurationS, "duration_s"),
    (Field::TalkS, "talk_s"),
    (Field::Disposition, "disposition"),
    (Field::Cause, "cause"),
    (Field::Q850Cause, "q850_cause"),
    (Field::SipStatus, "sip_status"),
];

/// A column as the mapping names it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Column {
    Name(String),
    /// 1-based.
    Number(usize),
}

const KEYS: &str = "delimiter, header, time_format, time_zone, columns, dispositions, directions";

impl Mapping {
    /// Reads a mapping file (see [`Mapping`]). The error is one sentence
    /// naming the key that is wrong.
    pub fn from_toml(text: &str) -> Result<Mapping, String> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let line = e
                .span()
                .and_then(|span| text.get(..span.start))
                .map_or(1, |before| before.matches('\n').count() + 1);
            format!(
                "the mapping is not valid TOML at line {line}: {}",
                e.message().trim_end_matches('\n')
            )
        })?;
        let mut mapping = Mapping {
            delimiter: b',',
            header: true,
            time_format: None,
            time_zone: None,
            columns: Vec::new(),
            dispositions: Vec::new(),
            directions: Vec::new(),
        };
        let mut columns = None;
        for (key, value) in &table {
            match key.as_str() {
                "delimiter" => mapping.delimiter = delimiter(value)?,
                "header" => {
                    mapping.header = value.as_bool().ok_or("header must be true or false")?;
                }
                "time_format" => mapping.time_format = Some(time_format(value)?),
                "time_zone" => {
                    let name = value.as_str().ok_or("time_zone must be a string")?;
                    let zone = name.parse().map_err(|e| format!("time_zone: {e}"))?;
                    mapping.time_zone = Some(zone);
                }
                "columns" => columns = Some(value),
                "dispositions" => {
                    mapping.dispositions = word_map(key, value, |w| {
                        Disposition::from_str(w).map_err(|e| e.to_string())
                    })?;
                }
                "directions" => {
                    mapping.directions = word_map(key, value, |w| {
                        Direction::from_str(w).map_err(|e| e.to_string())
                    })?;
                }
                other => {
                    return Err(format!(
                        "unknown key {other:?} in the mapping, expected one of: {KEYS}"
                    ));
                }
            }
        }
        let columns = columns.ok_or("the mapping has no [columns] table")?;
        mapping.columns = column_table(columns, mapping.header)?;
        if !mapping.columns.iter().any(|(f, _)| *f == Field::StartedAt) {
            return Err("columns.started_at is missing: every CDR needs its start time".to_owned());
        }
        Ok(mapping)
    }

    pub(super) fn decode(
        &self,
        options: &CsvOptions,
        data: &[u8],
    ) -> Vec<Result<CsvCdr, CsvLineError>> {
        let mut rows = read_rows(data, self.delimiter).into_iter();
        let mut cdrs = Vec::new();
        let layout = if self.header {
            loop {
                match rows.next() {
                    None => return cdrs,
                    Some(Err(e)) => cdrs.push(Err(e)),
                    Some(Ok(header)) => match self.layout(Some(&header)) {
                        Ok(layout) => break layout,
                        Err(e) => {
                            cdrs.push(Err(e));
                            return cdrs;
                        }
                    },
                }
            }
        } else {
            match self.layout(None) {
                Ok(layout) => layout,
                Err(e) => return vec![Err(e)],
            }
        };
        let zone = self.time_zone.as_ref().unwrap_or(&options.time_zone);
        cdrs.extend(rows.map(|row| row.and_then(|row| self.decode_row(&layout, zone, &row))));
        cdrs
    }

    /// Where each mapped field is in this file.
    fn layout(&self, header: Option<&Row>) -> Result<Layout, CsvLineError> {
        let names: Vec<String> = header.map_or_else(Vec::new, |h| {
            h.fields.iter().map(|f| f.trim().to_owned()).collect()
        });
        let mut fields = Vec::new();
        for (field, column) in &self.columns {
            let index = match column {
                Column::Number(n) => n.saturating_sub(1),
                Column::Name(name) => names
                    .iter()
                    .position(|h| h == name)
                    .or_else(|| names.iter().position(|h| h.eq_ignore_ascii_case(name)))
                    .ok_or_else(|| CsvLineError {
                        line: header.map_or(1, |h| h.line),
                        message: format!(
                            "the header line has no column {name:?} (columns.{})",
                            field_key(*field)
                        ),
                    })?,
            };
            fields.push((*field, index));
        }
        Ok(Layout {
            fields,
            names,
            width: header.map(|h| h.fields.len()),
        })
    }

    fn decode_row(
        &self,
        layout: &Layout,
        zone: &TimeZone,
        row: &Row,
    ) -> Result<CsvCdr, CsvLineError> {
        if let Some(width) = layout.width
            && row.fields.len() != width
        {
            return Err(row.error(format!(
                "has {} columns, the header line has {width}",
                row.fields.len()
            )));
        }
        let at = |field| layout.index(field).unwrap_or(usize::MAX);
        let value = |field| layout.index(field).and_then(|i| row.value(i));
        let label = |field| layout.label(at(field));
        let time = |field| self.time(row, at(field), &label(field), zone);

        let started_at = time(Field::StartedAt)?.ok_or_else(|| {
            row.error(format!(
                "column {} is empty, it must hold the start of the call",
                label(Field::StartedAt)
            ))
        })?;
        let mut cdr = CsvCdr::new(row.line, started_at);
        cdr.answered_at = time(Field::AnsweredAt)?;
        cdr.ended_at = time(Field::EndedAt)?;
        cdr.duration_s = row.seconds(at(Field::DurationS), &label(Field::DurationS))?;
        cdr.talk_s = row.seconds(at(Field::TalkS), &label(Field::TalkS))?;
        cdr.q850_cause = row.code(at(Field::Q850Cause), &label(Field::Q850Cause))?;
        cdr.sip_status = row.code(at(Field::SipStatus), &label(Field::SipStatus))?;
        cdr.leg = value(Field::Leg);
        cdr.caller = value(Field::Caller);
        cdr.caller_name = value(Field::CallerName);
        cdr.dialed = value(Field::Dialed);
        cdr.destination = value(Field::Destination);
        cdr.id = value(Field::Id).unwrap_or_else(|| row.digest());
        cdr.call_id = value(Field::CallId).unwrap_or_else(|| cdr.id.clone());

        let direction_text = value(Field::Direction);
        cdr.direction = direction_text.as_deref().and_then(|d| self.direction(d));
        let disposition_text = value(Field::Disposition);
        let stated = disposition_text
            .as_deref()
            .and_then(|d| self.disposition(d));
        cdr.disposition = stated.or_else(|| {
            if cdr.answered_at.is_some() {
                Some(Disposition::Answered)
            } else if let Some(status) = cdr.sip_status {
                cause::sip_status(status)
            } else {
                cdr.q850_cause.map(cause::unanswered_q850)
            }
        });
        cdr.cause = value(Field::Cause).or_else(|| disposition_text.clone());

        for (i, text) in row.fields.iter().enumerate() {
            let mapped: Vec<Field> = layout
                .fields
                .iter()
                .filter(|(_, index)| *index == i)
                .map(|(f, _)| *f)
                .collect();
            // A direction or disposition no one understood is kept as written.
            let unread = (mapped.contains(&Field::Direction) && cdr.direction.is_none())
                || (mapped == [Field::Disposition] && stated.is_none());
            if (mapped.is_empty() || unread) && !text.trim().is_empty() {
                cdr.extra.insert(layout.name(i), text.clone());
            }
        }
        Ok(cdr)
    }

    /// A time in the mapping's `time_format`, or in the forms PBXs mostly
    /// write when it has none.
    fn time(
        &self,
        row: &Row,
        index: usize,
        column: &str,
        zone: &TimeZone,
    ) -> Result<Option<Timestamp>, CsvLineError> {
        let Some(format) = &self.time_format else {
            return row.time(index, column, zone);
        };
        let Some(text) = row.value(index) else {
            return Ok(None);
        };
        let instant = jiff::fmt::strtime::parse(format, &text)
            .ok()
            .and_then(|tm| {
                if tm.timestamp().is_some() || tm.offset().is_some() {
                    tm.to_timestamp().ok()
                } else {
                    zone.jiff().to_timestamp(tm.to_datetime().ok()?).ok()
                }
            });
        match instant {
            Some(instant) => Ok(Some(Timestamp(instant.as_millisecond()))),
            None => Err(row.error(format!(
                "column {column} is {text:?}, not a time in the mapping's time_format {format:?}"
            ))),
        }
    }

    fn disposition(&self, text: &str) -> Option<Disposition> {
        lookup(&self.dispositions, text).or_else(|| word(text).parse().ok())
    }

    fn direction(&self, text: &str) -> Option<Direction> {
        lookup(&self.directions, text).or_else(|| match word(text).as_str() {
            "in" | "inbound" | "incoming" => Some(Direction::In),
            "out" | "outbound" | "outgoing" => Some(Direction::Out),
            "internal" | "local" => Some(Direction::Internal),
            _ => None,
        })
    }
}

/// Where each mapped field is in one file.
struct Layout {
    /// Field and 0-based column.
    fields: Vec<(Field, usize)>,
    /// The header's column names; empty without a header.
    names: Vec<String>,
    /// The header's number of columns: every row must have as many.
    width: Option<usize>,
}

impl Layout {
    fn index(&self, field: Field) -> Option<usize> {
        self.fields
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, i)| *i)
    }

    /// The column's name for `extra`.
    fn name(&self, index: usize) -> String {
        match self.names.get(index) {
            Some(name) if !name.is_empty() => name.clone(),
            _ => format!("column{}", index.saturating_add(1)),
        }
    }

    /// The column as messages name it: `"Start"`, or `3` without a header.
    fn label(&self, index: usize) -> String {
        match self.names.get(index) {
            Some(name) => format!("{name:?}"),
            None => index.saturating_add(1).to_string(),
        }
    }
}

fn field_key(field: Field) -> &'static str {
    FIELDS
        .iter()
        .find(|(f, _)| *f == field)
        .map_or("", |(_, key)| key)
}

/// `No Answer`, `no-answer` and `NO_ANSWER` all as `no_answer`.
fn word(text: &str) -> String {
    text.trim().to_ascii_lowercase().replace([' ', '-'], "_")
}

/// The value mapped to `text`: exactly, else ignoring case.
fn lookup<T: Copy>(map: &[(String, T)], text: &str) -> Option<T> {
    let text = text.trim();
    map.iter()
        .find(|(k, _)| k == text)
        .or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(text)))
        .map(|(_, v)| *v)
}

fn delimiter(value: &toml::Value) -> Result<u8, String> {
    let text = value.as_str().unwrap_or_default();
    let byte = match text {
        "tab" | "\\t" => Some(b'\t'),
        _ => match text.as_bytes() {
            [b] if b.is_ascii() && !matches!(b, b'"' | b'\n' | b'\r') => Some(*b),
            _ => None,
        },
    };
    byte.ok_or_else(|| {
        format!("delimiter must be one character such as \",\", \";\" or \"\\t\", not {value}")
    })
}

fn time_format(value: &toml::Value) -> Result<String, String> {
    let format = value
        .as_str()
        .filter(|f| !f.trim().is_empty())
        .ok_or("time_format must be a strftime format such as \"%Y-%m-%d %H:%M:%S\"")?;
    // An unknown directive fails to format as it would fail to parse.
    let sample = jiff::Timestamp::UNIX_EPOCH.to_zoned_datetime(jiff::tz::TimeZone::UTC);
    jiff::fmt::strtime::format(format, &sample)
        .map_err(|e| format!("time_format {format:?} is not a strftime format jiff reads: {e}"))?;
    Ok(format.to_owned())
}

fn column_table(value: &toml::Value, header: bool) -> Result<Vec<(Field, Column)>, String> {
    let table = value
        .as_table()
        .ok_or("columns must be a table, [columns]")?;
    let expected = FIELDS.map(|(_, k)| k).join(", ");
    let mut columns = Vec::new();
    for (key, value) in table {
        let field = FIELDS
            .iter()
            .find(|(_, k)| k == key)
            .map(|(f, _)| *f)
            .ok_or_else(|| format!("columns.{key} is no CDR field, expected one of: {expected}"))?;
        let column = match value {
            toml::Value::String(name) if !name.trim().is_empty() => {
                if !header {
                    return Err(format!(
                        "columns.{key} names the column {name:?}, but with header = false columns are numbers counted from 1"
                    ));
                }
                Column::Name(name.trim().to_owned())
            }
            toml::Value::Integer(n) if *n >= 1 && *n <= 10_000 => {
                Column::Number(usize::try_from(*n).map_err(|e| e.to_string())?)
            }
            _ => {
                return Err(format!(
                    "columns.{key} must be a header name or a column number counted from 1, not {value}"
                ));
            }
        };
        columns.push((field, column));
    }
    Ok(columns)
}

/// A `[dispositions]` or `[directions]` table: raw text to a word.
fn word_map<T>(
    key: &str,
    value: &toml::Value,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<(String, T)>, String> {
    let table = value
        .as_table()
        .ok_or_else(|| format!("{key} must be a table, [{key}]"))?;
    table
        .iter()
        .map(|(raw, word)| {
            let word = word
                .as_str()
                .ok_or_else(|| format!("{key}.{raw:?} must be a string"))?;
            let parsed = parse(word).map_err(|e| format!("{key}.{raw:?}: {e}"))?;
            Ok((raw.clone(), parsed))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(toml: &str) -> String {
        Mapping::from_toml(toml).unwrap_err()
    }

    #[test]
    fn the_documented_example_reads() {
        let doc = include_str!("generic.rs");
        let start = doc.find("/// ```toml\n").unwrap() + "/// ```toml\n".len();
        let end = start + doc[start..].find("/// ```\n").unwrap();
        let example: String = doc[start..end]
            .lines()
            .map(|l| {
                l.trim_start()
                    .trim_start_matches("///")
                    .strip_prefix(' ')
                    .unwrap_or("")
            })
            .collect::<Vec<_>>()
            .join("\n");
        let mapping = Mapping::from_toml(&example).unwrap();
        assert_eq!(mapping.delimiter, b';');
        assert_eq!(mapping.columns.len(), 17);
        assert_eq!(mapping.time_zone.unwrap().to_string(), "Europe/Berlin");
        assert_eq!(
            mapping.columns.iter().find(|(f, _)| *f == Field::SipStatus),
            Some(&(Field::SipStatus, Column::Number(12)))
        );
    }

    #[test]
    fn errors_name_the_wrong_key() {
        let cols = "[columns]\nstarted_at = \"Start\"\n";
        assert_eq!(
            error(&format!("delimeter = \";\"\n{cols}")),
            "unknown key \"delimeter\" in the mapping, expected one of: delimiter, header, time_format, time_zone, columns, dispositions, directions"
        );
        assert_eq!(
            error("[columns]\nstart = \"Start\"\n"),
            "columns.start is no CDR field, expected one of: id, call_id, leg, caller, caller_name, dialed, destination, direction, started_at, answered_at, ended_at, duration_s, talk_s, disposition, cause, q850_cause, sip_status"
        );
        assert_eq!(
            error("[columns]\ncaller = 2\n"),
            "columns.started_at is missing: every CDR needs its start time"
        );
        assert_eq!(
            error(&format!("delimiter = \";;\"\n{cols}")),
            "delimiter must be one character such as \",\", \";\" or \"\\t\", not \";;\""
        );
        assert_eq!(
            error(&format!("time_zone = \"Mars/Olympus\"\n{cols}")),
            "time_zone: unknown time zone \"Mars/Olympus\", expected UTC, a fixed offset such as +02:00, or an IANA name such as Europe/Berlin"
        );
        assert!(
            error(&format!("time_format = \"%Y-%!\"\n{cols}"))
                .starts_with("time_format \"%Y-%!\" is not a strftime format jiff reads")
        );
        assert_eq!(
            error(&format!("{cols}[dispositions]\nANSWER = \"ok\"\n")),
            "dispositions.\"ANSWER\": unknown disposition \"ok\", expected one of: answered, busy, no_answer, rejected, cancelled, failed"
        );
        assert_eq!(
            error("header = false\n[columns]\nstarted_at = \"Start\"\n"),
            "columns.started_at names the column \"Start\", but with header = false columns are numbers counted from 1"
        );
        assert_eq!(
            error("[columns]\nstarted_at = 0\n"),
            "columns.started_at must be a header name or a column number counted from 1, not 0"
        );
        assert!(error("[columns\n").starts_with("the mapping is not valid TOML at line 1: "));
        assert_eq!(
            error("header = true\n"),
            "the mapping has no [columns] table"
        );
    }
}
