//! Decoder for the `<records>` documents a Call Bridge POSTs (reference A.3,
//! A.4; seed 000 chapter 6).
//!
//! A hand-written pull parser over `quick_xml::Reader` on the borrowed input:
//! no serde, no I/O, no panics. What is strict and what is tolerant:
//!
//! * Strict (an error): anything that is not well-formed XML (unclosed or
//!   mismatched tags, garbage, a truncated document, invalid UTF-8, content
//!   after `</records>`), a DOCTYPE, an entity other than the five XML ones,
//!   nesting deeper than 32 levels, and a broken envelope: a root that is
//!   not `<records>`, no `session`, a `<record>` without `type` or without a
//!   valid `time` or `recordIndex`, a record of a known type without a body,
//!   a body without `id`, an element other than `<record>` in `<records>` or
//!   a second body element in a `<record>`.
//! * Tolerant (kept, never an error): unknown record types, unknown elements
//!   and attributes inside a body (kept in the nearest `extra`), unknown
//!   values, and values that do not parse as the number or boolean the field
//!   expects (kept raw in `extra` under the element's name, the typed field
//!   left `None`). A repeated leaf element keeps its first value; the others go
//!   to `extra`.
//!
//! Leaf text has XML whitespace trimmed at both ends and line ends
//! normalised; CDATA and references (`&amp;`, `&#65;`) are part of the text.

mod body;
mod cursor;

use super::*;
use cursor::{Cursor, Node, is_blank};
use quick_xml::events::BytesStart;
use std::borrow::Cow;

/// Deepest element nesting accepted. CMS documents nest 7 deep
/// (`records/record/callLeg/rxVideo/packetStatistics/packetGap/duration`).
const MAX_DEPTH: usize = 32;

/// Why a body could not be decoded. Every message names the problem and where:
/// the record's number within the document (1-based) and/or a byte offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The body is empty or only whitespace.
    #[error("empty body: no xml document")]
    Empty,
    /// Not well-formed XML, or XML this decoder refuses (DOCTYPE, unknown
    /// entities, text where only elements belong).
    #[error("malformed xml{} at byte {offset}: {message}", in_record(*.record))]
    Xml {
        offset: usize,
        record: Option<usize>,
        message: String,
    },
    /// The document element is not the one expected (`records`, or `record`
    /// for [`decode_record`]).
    #[error("root element is <{found}> at byte {offset}, expected <{expected}>")]
    WrongRoot {
        expected: &'static str,
        found: String,
        offset: usize,
    },
    /// `<records>` without a (non-empty) `session` attribute.
    #[error("<records> at byte {offset} has no session attribute")]
    MissingSession { offset: usize },
    /// A `<record>` without a `type`, `time` or `recordIndex` attribute.
    #[error("record {record} at byte {offset} has no {attribute} attribute")]
    MissingAttribute {
        record: usize,
        attribute: &'static str,
        offset: usize,
    },
    /// A `<record>` attribute that does not parse (`time`, `recordIndex`,
    /// `correlatorIndex`, `numPreceedingRecordsMissing`) or is repeated.
    #[error("record {record} at byte {offset} has an invalid {attribute} attribute {value:?}")]
    InvalidAttribute {
        record: usize,
        attribute: &'static str,
        value: String,
        offset: usize,
    },
    /// A record of a known type with no body element.
    #[error("record {record} ({record_type}) at byte {offset} has no body element")]
    MissingBody {
        record: usize,
        record_type: String,
        offset: usize,
    },
    /// A body element of a known record type without an `id` attribute.
    #[error(
        "record {record} ({record_type}) has a <{element}> without an id attribute at byte {offset}"
    )]
    MissingId {
        record: usize,
        record_type: String,
        element: String,
        offset: usize,
    },
    /// An element where the envelope allows none: not `<record>` inside
    /// `<records>`, or a second body element inside a `<record>`.
    #[error("unexpected <{element}> in <{parent}>{} at byte {offset}", in_record(*.record))]
    UnexpectedElement {
        element: String,
        parent: &'static str,
        record: Option<usize>,
        offset: usize,
    },
    /// Elements nested deeper than `limit` (32) levels, counting `<records>`.
    #[error("elements nested deeper than {limit} levels at byte {offset}")]
    TooDeep { offset: usize, limit: usize },
}

fn in_record(record: Option<usize>) -> String {
    match record {
        Some(n) => format!(" in record {n}"),
        None => String::new(),
    }
}

/// Decodes one POST body: a `<records>` document with zero or more records.
pub fn decode(input: &[u8]) -> Result<CmsBatch, DecodeError> {
    if is_blank_bytes(input) {
        return Err(DecodeError::Empty);
    }
    let mut c = Cursor::new(input);
    let (root, root_empty, root_offset) = first_element(&mut c, "records")?;

    let mut session = None;
    let mut call_bridge = None;
    for attr in attributes(&root, root_offset, None) {
        let (key, value) = attr?;
        match key {
            "session" => set_once(&c, &mut session, value, root_offset, key)?,
            "callBridge" => set_once(&c, &mut call_bridge, value, root_offset, key)?,
            _ => {} // xmlns and the like: nothing to keep
        }
    }
    let session = session
        .filter(|s| !s.is_empty())
        .ok_or(DecodeError::MissingSession {
            offset: root_offset,
        })?;
    let call_bridge = call_bridge.filter(|s| !s.is_empty());

    let mut records = Vec::new();
    if !root_empty {
        loop {
            match c.next()? {
                Node::Element {
                    start,
                    empty,
                    offset,
                } => {
                    let number = records.len() + 1;
                    if start.name().as_ref() != "record" {
                        return Err(DecodeError::UnexpectedElement {
                            element: start.name().as_ref().to_owned(),
                            parent: "records",
                            record: None,
                            offset,
                        });
                    }
                    c.record = Some(number);
                    records.push(record(&mut c, &start, empty, offset, number)?);
                    c.record = None;
                }
                Node::Text(t) => no_text(&c, &t, "<records>")?,
                Node::End { .. } => break,
                Node::Eof => return Err(c.error(c.position(), "document ends inside <records>")),
            }
        }
    }
    end_of_document(&mut c, "</records>")?;
    Ok(CmsBatch {
        session,
        call_bridge,
        records,
    })
}

/// Decodes one `<record ...>...</record>` element on its own: the bytes of a
/// record's [`CmsRecord::raw`] range, as journaled, so that a stored record
/// can be shown again. The returned `raw` is the range within `raw`.
///
/// `session` is the `<records session>` the record arrived in. A record does
/// not repeat it and decoding does not need it; it is taken so that callers
/// always hold the pair that identifies a record.
pub fn decode_record(_session: &str, raw: &[u8]) -> Result<CmsRecord, DecodeError> {
    if is_blank_bytes(raw) {
        return Err(DecodeError::Empty);
    }
    let mut c = Cursor::new(raw);
    let (start, empty, offset) = first_element(&mut c, "record")?;
    c.record = Some(1);
    let rec = record(&mut c, &start, empty, offset, 1)?;
    c.record = None;
    end_of_document(&mut c, "</record>")?;
    Ok(rec)
}

fn is_blank_bytes(input: &[u8]) -> bool {
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    input
        .iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

/// Reads the prolog up to the document element and checks its name.
fn first_element<'a>(
    c: &mut Cursor<'a>,
    expected: &'static str,
) -> Result<(BytesStart<'a>, bool, usize), DecodeError> {
    loop {
        match c.next()? {
            Node::Element {
                start,
                empty,
                offset,
            } => {
                if start.name().as_ref() != expected {
                    return Err(DecodeError::WrongRoot {
                        expected,
                        found: start.name().as_ref().to_owned(),
                        offset,
                    });
                }
                return Ok((start, empty, offset));
            }
            Node::Text(t) => no_text(c, &t, "before the root element")?,
            // The reader refuses an end tag with no start tag.
            Node::End { after } => return Err(c.error(after, "unexpected end tag")),
            Node::Eof => {
                return Err(c.error(
                    c.position(),
                    format!("document has no <{expected}> element"),
                ));
            }
        }
    }
}

/// After the document element only whitespace, comments and processing
/// instructions may follow.
fn end_of_document(c: &mut Cursor<'_>, what: &str) -> Result<(), DecodeError> {
    loop {
        let before = c.position();
        match c.next()? {
            Node::Eof => return Ok(()),
            Node::Text(t) if is_blank(&t) => {}
            _ => return Err(c.error(before, format!("content after {what}"))),
        }
    }
}

fn no_text(c: &Cursor<'_>, text: &str, place: &str) -> Result<(), DecodeError> {
    if is_blank(text) {
        Ok(())
    } else {
        Err(c.error(
            c.position().saturating_sub(text.len()),
            format!("unexpected text {place}"),
        ))
    }
}

pub(super) type Attr<'a> = Result<(&'a str, Cow<'a, str>), DecodeError>;

/// The attributes of a tag (at `offset`), names borrowed and values
/// unescaped; `record` is named in errors. The reader's duplicate check is
/// off: repeats of the attributes the decoder reads are refused where they
/// are read, other repeats are kept.
pub(super) fn attributes<'s>(
    start: &'s BytesStart<'_>,
    offset: usize,
    record: Option<usize>,
) -> impl Iterator<Item = Attr<'s>> + 's {
    let mut attrs = start.attributes();
    attrs.with_checks(false);
    attrs.map(move |a| {
        let error = |message: String| DecodeError::Xml {
            offset,
            record,
            message,
        };
        let a = a.map_err(|e| error(format!("bad attribute: {e}")))?;
        let value = a
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| error(format!("bad attribute value: {e}")))?;
        Ok((a.key.into_inner(), value))
    })
}

fn set_once<'a>(
    c: &Cursor<'_>,
    slot: &mut Option<String>,
    value: Cow<'a, str>,
    offset: usize,
    key: &str,
) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(c.error(offset, format!("repeated attribute {key}")));
    }
    *slot = Some(value.into_owned());
    Ok(())
}

/// The record attributes named in A.3.
#[derive(Default)]
struct RecordAttrs<'s> {
    record_type: Option<Cow<'s, str>>,
    time: Option<Cow<'s, str>>,
    record_index: Option<Cow<'s, str>>,
    correlator_index: Option<Cow<'s, str>>,
    missing: Option<Cow<'s, str>>,
}

/// Decodes a `<record>` whose start tag (`start`, at `offset`) was just read.
fn record<'a>(
    c: &mut Cursor<'a>,
    start: &BytesStart<'a>,
    empty: bool,
    offset: usize,
    number: usize,
) -> Result<CmsRecord, DecodeError> {
    let mut a = RecordAttrs::default();
    for attr in attributes(start, offset, Some(number)) {
        let (key, value) = attr?;
        let (slot, name) = match key {
            "type" => (&mut a.record_type, "type"),
            "time" => (&mut a.time, "time"),
            "recordIndex" => (&mut a.record_index, "recordIndex"),
            "correlatorIndex" => (&mut a.correlator_index, "correlatorIndex"),
            // Spelled so by CMS (A.1); the correct spelling is accepted too.
            "numPreceedingRecordsMissing" | "numPrecedingRecordsMissing" => {
                (&mut a.missing, "numPreceedingRecordsMissing")
            }
            _ => continue,
        };
        if slot.is_some() {
            return Err(DecodeError::InvalidAttribute {
                record: number,
                attribute: name,
                value: "(repeated)".to_owned(),
                offset,
            });
        }
        *slot = Some(value);
    }

    let missing = |attribute| DecodeError::MissingAttribute {
        record: number,
        attribute,
        offset,
    };
    let invalid = |attribute, value: &str| DecodeError::InvalidAttribute {
        record: number,
        attribute,
        value: value.to_owned(),
        offset,
    };
    let record_type = a
        .record_type
        .filter(|t| !t.is_empty())
        .ok_or_else(|| missing("type"))?
        .into_owned();
    let time = a.time.ok_or_else(|| missing("time"))?;
    let time = Timestamp::parse_rfc3339(&time).map_err(|_| invalid("time", &time))?;
    let record_index = a.record_index.ok_or_else(|| missing("recordIndex"))?;
    let record_index =
        parse_u64(&record_index).ok_or_else(|| invalid("recordIndex", &record_index))?;
    let correlator_index = match a.correlator_index {
        None => None,
        Some(v) => Some(parse_u64(&v).ok_or_else(|| invalid("correlatorIndex", &v))?),
    };
    let preceding_records_missing = match a.missing {
        None => 0,
        Some(v) => parse_u64(&v).ok_or_else(|| invalid("numPreceedingRecordsMissing", &v))?,
    };

    let mut body = None;
    let end = if empty {
        c.position()
    } else {
        loop {
            match c.next()? {
                Node::Element {
                    start: el,
                    empty: el_empty,
                    offset: el_offset,
                } => {
                    if body.is_some() {
                        return Err(DecodeError::UnexpectedElement {
                            element: el.name().as_ref().to_owned(),
                            parent: "record",
                            record: Some(number),
                            offset: el_offset,
                        });
                    }
                    body = Some(body::body(
                        c,
                        &record_type,
                        el,
                        el_empty,
                        el_offset,
                        number,
                    )?);
                }
                Node::Text(t) => no_text(c, &t, "in <record>")?,
                Node::End { after } => break after,
                Node::Eof => return Err(c.error(c.position(), "document ends inside <record>")),
            }
        }
    };
    let body = match body {
        Some(body) => body,
        None if CmsRecordKind::from_type(&record_type).is_some() => {
            return Err(DecodeError::MissingBody {
                record: number,
                record_type,
                offset,
            });
        }
        None => CmsRecordBody::Unknown(UnknownRecord::default()),
    };
    Ok(CmsRecord {
        record_type,
        time,
        record_index,
        correlator_index,
        preceding_records_missing,
        body,
        raw: offset..end,
    })
}

/// A decimal integer, surrounding whitespace allowed, nothing else.
fn parse_u64(s: &str) -> Option<u64> {
    cursor::trim(s).parse().ok()
}

impl DecodeError {
    /// Byte offset in the input the error refers to, when there is one.
    pub fn offset(&self) -> Option<usize> {
        match self {
            DecodeError::Empty => None,
            DecodeError::Xml { offset, .. }
            | DecodeError::WrongRoot { offset, .. }
            | DecodeError::MissingSession { offset }
            | DecodeError::MissingAttribute { offset, .. }
            | DecodeError::InvalidAttribute { offset, .. }
            | DecodeError::MissingBody { offset, .. }
            | DecodeError::MissingId { offset, .. }
            | DecodeError::UnexpectedElement { offset, .. }
            | DecodeError::TooDeep { offset, .. } => Some(*offset),
        }
    }
}

/// The record types of guide chapter 3 and the body element each carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmsRecordKind {
    CallStart,
    CallEnd,
    CallLegStart,
    CallLegUpdate,
    CallLegEnd,
    RecordingStart,
    RecordingEnd,
    StreamingStart,
    StreamingEnd,
}

impl CmsRecordKind {
    fn from_type(record_type: &str) -> Option<Self> {
        Some(match record_type {
            "callStart" => Self::CallStart,
            "callEnd" => Self::CallEnd,
            "callLegStart" => Self::CallLegStart,
            "callLegUpdate" => Self::CallLegUpdate,
            "callLegEnd" => Self::CallLegEnd,
            "recordingStart" => Self::RecordingStart,
            "recordingEnd" => Self::RecordingEnd,
            "streamingStart" => Self::StreamingStart,
            "streamingEnd" => Self::StreamingEnd,
            _ => return None,
        })
    }

    /// A.3: `<call>` for call records, `<callLeg>` for leg records,
    /// `<recording>` / `<streaming>` for the others (seed 000 4.7–4.10).
    fn element(self) -> &'static str {
        match self {
            Self::CallStart | Self::CallEnd => "call",
            Self::CallLegStart | Self::CallLegUpdate | Self::CallLegEnd => "callLeg",
            Self::RecordingStart | Self::RecordingEnd => "recording",
            Self::StreamingStart | Self::StreamingEnd => "streaming",
        }
    }
}
