//! Cutting a CSV file into rows with the line each starts on, and reading
//! their fields: text, times, seconds, numbers.

use super::CsvLineError;
use super::zone::{TimeZone, parse_wall_clock};
use cdrhub_model::Timestamp;
use md5::{Digest, Md5};

/// One record of a CSV file, its fields as text.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    /// 1-based line of the record's first byte.
    pub line: usize,
    pub fields: Vec<String>,
}

/// Reads every record of `data`. Blank lines are skipped; a record quoted
/// across several lines counts from its first line.
pub(crate) fn read_rows(data: &[u8], delimiter: u8) -> Vec<Result<Row, CsvLineError>> {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(data);
    let mut lines = LineCounter::default();
    let mut rows = Vec::new();
    for record in reader.byte_records() {
        match record {
            Ok(record) => {
                let offset = record.position().map_or(0, |p| p.byte());
                let line = lines.line_at(data, offset);
                let fields: Vec<String> = record.iter().map(field_text).collect();
                if fields.iter().all(|f| f.trim().is_empty()) {
                    continue;
                }
                rows.push(Ok(Row { line, fields }));
            }
            Err(e) => {
                let offset = e.position().map_or(0, |p| p.byte());
                let line = lines.line_at(data, offset);
                rows.push(Err(CsvLineError {
                    line,
                    message: format!("the line is not CSV: {e}"),
                }));
            }
        }
    }
    rows
}

/// Turns the csv crate's record offsets into line numbers. The crate places
/// a record before the terminator of the one ahead of it (and before blank
/// lines), so its own line count is off for CRLF files.
#[derive(Default)]
struct LineCounter {
    offset: usize,
    line: usize,
}

impl LineCounter {
    fn line_at(&mut self, data: &[u8], offset: u64) -> usize {
        let mut start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        while matches!(data.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        if start < self.offset {
            self.offset = 0;
            self.line = 0;
        }
        let skipped = data.get(self.offset..start).unwrap_or_default();
        self.line += skipped.iter().filter(|&&b| b == b'\n').count();
        self.offset = start;
        self.line + 1
    }
}

/// A field's text: UTF-8 when it is, else Latin-1 (Windows PBXs write
/// their code page). A field with blanks before its opening quote, as in
/// FreeSWITCH's built-in template `"${bleg_uuid}", "${accountcode}"`, is
/// unquoted too.
fn field_text(bytes: &[u8]) -> String {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    };
    let trimmed = text.trim();
    if text.starts_with(char::is_whitespace)
        && trimmed.len() >= 2
        && trimmed.starts_with('"')
        && trimmed.ends_with('"')
    {
        return trimmed[1..trimmed.len() - 1].replace("\"\"", "\"");
    }
    text
}

impl Row {
    /// The field at `index` (0-based) as written, "" when the row is shorter.
    pub fn text(&self, index: usize) -> &str {
        self.fields.get(index).map_or("", String::as_str)
    }

    /// The field at `index` without surrounding blanks, `None` when empty.
    pub fn value(&self, index: usize) -> Option<String> {
        let text = self.text(index).trim();
        (!text.is_empty()).then(|| text.to_owned())
    }

    /// A stable id for a row that carries none: the MD5 of its fields,
    /// so the same row imported twice gets the same id.
    pub fn digest(&self) -> String {
        let mut md5 = Md5::new();
        for (i, field) in self.fields.iter().enumerate() {
            if i > 0 {
                md5.update([0x1f]);
            }
            md5.update(field.as_bytes());
        }
        md5.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn error(&self, message: String) -> CsvLineError {
        CsvLineError {
            line: self.line,
            message,
        }
    }

    /// A wall-clock time such as `2024-03-15 09:30:00` in `zone`; `None`
    /// when the field is empty.
    pub fn time(
        &self,
        index: usize,
        column: &str,
        zone: &TimeZone,
    ) -> Result<Option<Timestamp>, CsvLineError> {
        let Some(text) = self.value(index) else {
            return Ok(None);
        };
        parse_wall_clock(&text)
            .and_then(|wall| zone.instant(wall))
            .map(Some)
            .ok_or_else(|| {
                self.error(format!(
                    "column {column} is {text:?}, not a date and time such as 2024-03-15 09:30:00"
                ))
            })
    }

    /// A required time: an empty field is an error too.
    pub fn required_time(
        &self,
        index: usize,
        column: &str,
        zone: &TimeZone,
    ) -> Result<Timestamp, CsvLineError> {
        self.time(index, column, zone)?.ok_or_else(|| {
            self.error(format!(
                "column {column} is empty, it must hold the start of the call"
            ))
        })
    }

    /// A count of seconds: `65`, `65.4` (rounded) or `0:01:05`.
    pub fn seconds(&self, index: usize, column: &str) -> Result<Option<i64>, CsvLineError> {
        let Some(text) = self.value(index) else {
            return Ok(None);
        };
        parse_seconds(&text).map(Some).ok_or_else(|| {
            self.error(format!(
                "column {column} is {text:?}, not a number of seconds"
            ))
        })
    }

    /// A cause or status code such as a Q.850 cause or a SIP status.
    pub fn code(&self, index: usize, column: &str) -> Result<Option<u16>, CsvLineError> {
        let Some(text) = self.value(index) else {
            return Ok(None);
        };
        text.parse()
            .map(Some)
            .map_err(|_| self.error(format!("column {column} is {text:?}, not a cause number")))
    }
}

/// Seconds as CDR files write them: whole (`65`), decimal (`65.4`,
/// rounded) or clock-like (`1:05`, `0:01:05`). Never negative.
pub(crate) fn parse_seconds(text: &str) -> Option<i64> {
    const MAX: i64 = 100 * 365 * 24 * 3600;
    let text = text.trim();
    if text.contains(':') {
        let mut total: i64 = 0;
        let parts: Vec<&str> = text.split(':').collect();
        if parts.len() > 3 {
            return None;
        }
        for (i, part) in parts.iter().enumerate() {
            if part.is_empty() || part.len() > 9 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let n: i64 = part.parse().ok()?;
            if i > 0 && n > 59 {
                return None;
            }
            total = total.checked_mul(60)?.checked_add(n)?;
        }
        return (total <= MAX).then_some(total);
    }
    if let Ok(n) = text.parse::<i64>() {
        return (0..=MAX).contains(&n).then_some(n);
    }
    if !text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let n: f64 = text.parse().ok()?;
    let n = n.round();
    (n.is_finite() && (0.0..=MAX as f64).contains(&n)).then_some(n as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(data: &[u8]) -> Vec<(usize, Vec<String>)> {
        read_rows(data, b',')
            .into_iter()
            .map(|r| {
                let r = r.unwrap();
                (r.line, r.fields)
            })
            .collect()
    }

    #[test]
    fn line_numbers_count_physical_lines_with_crlf_blank_lines_and_quoted_newlines() {
        let got = rows(b"\xEF\xBB\xBFa,b\r\n\r\n  \r\n\"x\ny\",z\r\nlast\r\n");
        assert_eq!(
            got,
            vec![
                (1, vec!["a".to_owned(), "b".to_owned()]),
                (4, vec!["x\ny".to_owned(), "z".to_owned()]),
                (6, vec!["last".to_owned()]),
            ]
        );
    }

    #[test]
    fn a_quote_after_blanks_still_opens_a_field() {
        let got = rows(b"\"a\", \"b \"\"c\"\"\", d");
        assert_eq!(got[0].1, vec!["a", "b \"c\"", " d"]);
    }

    #[test]
    fn latin1_fields_are_read_as_latin1() {
        let got = rows(b"Jos\xE9,1");
        assert_eq!(got[0].1, vec!["Jos\u{e9}", "1"]);
    }

    #[test]
    fn seconds_in_every_written_form() {
        assert_eq!(parse_seconds("65"), Some(65));
        assert_eq!(parse_seconds("65.5"), Some(66));
        assert_eq!(parse_seconds("1:05"), Some(65));
        assert_eq!(parse_seconds("1:01:05"), Some(3665));
        assert_eq!(parse_seconds("-3"), None);
        assert_eq!(parse_seconds("1:75"), None);
        assert_eq!(parse_seconds("abc"), None);
        assert_eq!(parse_seconds("1e9"), None);
        assert_eq!(parse_seconds("99999999999999999999"), None);
    }
}
