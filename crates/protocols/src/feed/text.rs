//! The line syntax of docs/gateway-feed.md, "Line syntax": the version word,
//! the type word, `key=value` fields, bare and quoted values and their
//! escapes. Both directions, so that the writer quotes exactly what the
//! reader needs quoted.

use super::{FeedError, MAX_LINE_LEN, VERSION};
use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// One `key=value` of a line; `*_at` are byte offsets into the line.
pub(super) struct Field<'a> {
    pub key: &'a str,
    pub key_at: usize,
    pub value: Cow<'a, str>,
    pub value_at: usize,
}

/// A line cut into its type word and fields, the version word checked.
pub(super) struct Tokens<'a> {
    pub type_word: &'a str,
    pub type_at: usize,
    pub fields: Vec<Field<'a>>,
}

/// The error for the byte offset `at` of `line`, its column counted in
/// characters.
pub(super) fn error_at(line: &str, at: usize, reason: impl Into<String>) -> FeedError {
    let before = line.get(..at).map_or(at, |s| s.chars().count());
    FeedError {
        column: before + 1,
        reason: reason.into(),
    }
}

/// A character a bare value may hold. Anything else makes the writer quote.
fn is_bare(c: char) -> bool {
    !c.is_whitespace() && !c.is_ascii_control() && c != '"' && c != '\\'
}

pub(super) fn tokenize(line: &str) -> Result<Tokens<'_>, FeedError> {
    if line.len() > MAX_LINE_LEN {
        return Err(error_at(
            line,
            0,
            format!("line is {} bytes, more than {MAX_LINE_LEN}", line.len()),
        ));
    }
    if let Some((at, c)) = line.char_indices().find(|(_, c)| c.is_ascii_control()) {
        return Err(error_at(
            line,
            at,
            format!(
                "raw control character U+{:04X}; inside a quoted value write it escaped",
                u32::from(c)
            ),
        ));
    }
    let version_end = line.find(' ').unwrap_or(line.len());
    let version = &line[..version_end];
    if version != VERSION {
        let reason = if line.trim().is_empty() {
            "empty line".to_owned()
        } else if version.starts_with("GWFEED/") {
            format!("unsupported protocol version {version:?}, this server reads {VERSION}")
        } else {
            format!("line does not start with the version word {VERSION}")
        };
        return Err(error_at(line, 0, reason));
    }
    let type_at = skip_spaces(line, version_end);
    let type_end = line[type_at..]
        .find(' ')
        .map_or(line.len(), |n| type_at + n);
    if type_at == type_end {
        return Err(error_at(
            line,
            type_at,
            format!("no message type after {VERSION}"),
        ));
    }
    let mut fields: Vec<Field<'_>> = Vec::new();
    let mut at = skip_spaces(line, type_end);
    while at < line.len() {
        let (field, end) = read_field(line, at)?;
        if fields.iter().any(|f| f.key == field.key) {
            return Err(error_at(
                line,
                field.key_at,
                format!("field {} appears twice", field.key),
            ));
        }
        fields.push(field);
        at = skip_spaces(line, end);
    }
    Ok(Tokens {
        type_word: &line[type_at..type_end],
        type_at,
        fields,
    })
}

fn skip_spaces(line: &str, at: usize) -> usize {
    at + line[at..].len() - line[at..].trim_start_matches(' ').len()
}

/// The byte offset of the quote that closes the quoted value at `open`.
fn closing_quote(line: &str, open: usize) -> Option<usize> {
    let mut escaped = false;
    for (n, c) in line[open + 1..].char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(open + 1 + n),
            _ => {}
        }
    }
    None
}

/// The field at `key_at`, and the byte offset just after it.
fn read_field(line: &str, key_at: usize) -> Result<(Field<'_>, usize), FeedError> {
    let rest = &line[key_at..];
    let key_len = rest.len()
        - rest
            .trim_start_matches(|c: char| c.is_ascii_lowercase())
            .len();
    if key_len == 0 || !rest[key_len..].starts_with('=') {
        let token = rest.split(' ').next().unwrap_or(rest);
        return Err(error_at(
            line,
            key_at,
            format!("expected a field key=value with a lower-case key, found {token:?}"),
        ));
    }
    let key = &rest[..key_len];
    let value_at = key_at + key_len + 1;
    let (value, end) = if line[value_at..].starts_with('"') {
        let close = closing_quote(line, value_at).ok_or_else(|| {
            error_at(
                line,
                value_at,
                format!("the quoted value of {key} has no closing quote"),
            )
        })?;
        if line[close + 1..].chars().next().is_some_and(|c| c != ' ') {
            return Err(error_at(
                line,
                close + 1,
                format!("the quoted value of {key} must be followed by a space"),
            ));
        }
        (unescape(line, value_at + 1, close)?, close + 1)
    } else {
        let end = line[value_at..]
            .find(' ')
            .map_or(line.len(), |n| value_at + n);
        let bare = &line[value_at..end];
        if let Some(n) = bare.find(['"', '\\']) {
            return Err(error_at(
                line,
                value_at + n,
                format!("the value of {key} holds a quote or backslash; quote the value"),
            ));
        }
        (Cow::Borrowed(bare), end)
    };
    if value.is_empty() {
        return Err(error_at(
            line,
            key_at,
            format!("field {key} is empty; leave it out"),
        ));
    }
    let field = Field {
        key,
        key_at,
        value,
        value_at,
    };
    Ok((field, end))
}

/// The text of a quoted value, `line[start..end]` between its quotes.
fn unescape(line: &str, start: usize, end: usize) -> Result<Cow<'_, str>, FeedError> {
    let inner = &line[start..end];
    if !inner.contains('\\') {
        return Ok(Cow::Borrowed(inner));
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.char_indices();
    while let Some((n, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        // `closing_quote` saw a character after every backslash.
        let escape = chars.next().map_or(' ', |(_, e)| e);
        match escape {
            '\\' | '"' => out.push(escape),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'x' => {
                let hex: String = chars.by_ref().take(2).map(|(_, h)| h).collect();
                let byte = (hex.len() == 2 && hex.chars().all(|h| h.is_ascii_hexdigit()))
                    .then(|| u8::from_str_radix(&hex, 16).ok())
                    .flatten();
                match byte {
                    Some(b) if b < 0x20 || b == 0x7F => out.push(char::from(b)),
                    _ => {
                        return Err(error_at(
                            line,
                            start + n,
                            format!(
                                "\\x{hex} is not a control character; \\x takes 00 to 1F or 7F"
                            ),
                        ));
                    }
                }
            }
            other => {
                return Err(error_at(
                    line,
                    start + n,
                    format!("unknown escape \\{other}"),
                ));
            }
        }
    }
    Ok(Cow::Owned(out))
}

/// Writes `GWFEED/1 TYPE key=value ...`, quoting the values that need it.
pub(super) struct LineWriter {
    line: String,
}

impl LineWriter {
    pub fn new(type_word: &str) -> Self {
        LineWriter {
            line: format!("{VERSION} {type_word}"),
        }
    }

    pub fn field(&mut self, key: &str, value: impl fmt::Display) {
        let value = value.to_string();
        self.line.push(' ');
        self.line.push_str(key);
        self.line.push('=');
        if !value.is_empty() && value.chars().all(is_bare) {
            self.line.push_str(&value);
            return;
        }
        self.line.push('"');
        for c in value.chars() {
            match c {
                '\\' => self.line.push_str("\\\\"),
                '"' => self.line.push_str("\\\""),
                '\n' => self.line.push_str("\\n"),
                '\r' => self.line.push_str("\\r"),
                '\t' => self.line.push_str("\\t"),
                c if c.is_ascii_control() => {
                    let _ = write!(self.line, "\\x{:02X}", u32::from(c));
                }
                c => self.line.push(c),
            }
        }
        self.line.push('"');
    }

    pub fn optional(&mut self, key: &str, value: Option<impl fmt::Display>) {
        if let Some(value) = value {
            self.field(key, value);
        }
    }

    pub fn finish(self) -> String {
        self.line
    }
}
