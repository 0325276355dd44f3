//! A thin layer over `quick_xml::Reader` that gives the decoder what the raw
//! event stream does not: absolute byte offsets, a depth limit, an error when
//! the document ends inside an open element, entity references resolved into
//! text, and comments / processing instructions skipped.

use super::{DecodeError, MAX_DEPTH};
use quick_xml::Reader;
use quick_xml::events::{BytesRef, BytesStart, Event};
use std::borrow::Cow;

/// One step of the document, as the decoder sees it.
pub(super) enum Node<'a> {
    /// `<name ...>` (`empty == false`) or `<name .../>` (`empty == true`);
    /// `offset` is the byte of its `<`.
    Element {
        start: BytesStart<'a>,
        empty: bool,
        offset: usize,
    },
    /// A piece of character data: text, CDATA or one resolved reference.
    Text(Cow<'a, str>),
    /// `</name>`; `after` is the byte just past its `>`.
    End { after: usize },
    /// End of input, outside every element.
    Eof,
}

pub(super) struct Cursor<'a> {
    reader: Reader<&'a [u8]>,
    /// The input the reader sees.
    input: &'a [u8],
    /// Bytes removed in front of what the reader sees (a UTF-8 BOM).
    base: usize,
    /// Offsets (in `input`) of the `<` of each open element, innermost last;
    /// its length is the depth.
    open: Vec<usize>,
    /// Whether the first element has been read: after it, an XML declaration
    /// is out of place.
    seen_element: bool,
    /// 1-based number of the `<record>` being decoded, for error messages.
    pub record: Option<usize>,
}

impl<'a> Cursor<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        // The reader drops a BOM without counting it in its offsets (when the
        // `encoding` feature is off), so drop it here and count it ourselves.
        let (base, rest) = match input.strip_prefix(b"\xEF\xBB\xBF") {
            Some(rest) => (3, rest),
            None => (0, input),
        };
        let mut reader = Reader::from_reader(rest);
        let config = reader.config_mut();
        config.check_end_names = true;
        config.allow_unmatched_ends = false;
        config.allow_dangling_amp = false;
        config.expand_empty_elements = false;
        config.trim_text(false);
        Cursor {
            reader,
            input: rest,
            base,
            open: Vec::with_capacity(8),
            seen_element: false,
            record: None,
        }
    }

    /// Absolute offset of the next byte the reader will look at.
    pub fn position(&self) -> usize {
        self.base + to_usize(self.reader.buffer_position())
    }

    pub fn error(&self, offset: usize, message: impl Into<String>) -> DecodeError {
        DecodeError::Xml {
            offset,
            record: self.record,
            message: message.into(),
        }
    }

    pub fn next(&mut self) -> Result<Node<'a>, DecodeError> {
        loop {
            let before = self.position();
            let event = match self.reader.read_event() {
                Ok(event) => event,
                Err(e) => {
                    // `error_position` is only updated by some errors; it is
                    // never before the event that failed.
                    let at = (self.base + to_usize(self.reader.error_position())).max(before);
                    return Err(self.error(at, xml_message(&e)));
                }
            };
            return Ok(match event {
                Event::Start(start) => {
                    if self.open.len() >= MAX_DEPTH {
                        return Err(DecodeError::TooDeep {
                            offset: before,
                            limit: MAX_DEPTH,
                        });
                    }
                    self.seen_element = true;
                    self.open.push(before - self.base);
                    Node::Element {
                        start,
                        empty: false,
                        offset: before,
                    }
                }
                Event::Empty(start) => {
                    if self.open.len() >= MAX_DEPTH {
                        return Err(DecodeError::TooDeep {
                            offset: before,
                            limit: MAX_DEPTH,
                        });
                    }
                    self.seen_element = true;
                    Node::Element {
                        start,
                        empty: true,
                        offset: before,
                    }
                }
                Event::End(_) => {
                    // The reader has already checked that the name matches.
                    self.open.pop();
                    Node::End {
                        after: self.position(),
                    }
                }
                Event::Text(text) => Node::Text(text.xml10_content()),
                Event::CData(data) => Node::Text(data.xml10_content()),
                Event::GeneralRef(reference) => Node::Text(self.resolve(&reference, before)?),
                Event::Comment(_) | Event::PI(_) => continue,
                Event::Decl(_) if !self.seen_element => continue,
                Event::Decl(_) => {
                    return Err(self.error(before, "xml declaration after the first element"));
                }
                // A DTD could declare entities; nothing CMS sends has one, so
                // refuse it rather than half-process it.
                Event::DocType(_) => {
                    return Err(self.error(before, "document type declarations are not accepted"));
                }
                Event::Eof => match self.open.last() {
                    Some(&at) => {
                        let message =
                            format!("document ends before <{}> is closed", self.name_at(at));
                        return Err(self.error(before, message));
                    }
                    None => Node::Eof,
                },
            });
        }
    }

    /// The element name of the tag whose `<` is at `at` in `input`.
    fn name_at(&self, at: usize) -> Cow<'a, str> {
        let tag = self.input.get(at + 1..).unwrap_or_default();
        let end = tag
            .iter()
            .position(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'/' | b'>'))
            .unwrap_or(tag.len());
        String::from_utf8_lossy(tag.get(..end).unwrap_or_default())
    }

    /// `&lt;`, `&#65;`, ... The five XML entities and character references
    /// are resolved; any other entity is an error, since there is no DTD that
    /// could define it (and expanding one would be a hazard).
    fn resolve(
        &self,
        reference: &BytesRef<'a>,
        offset: usize,
    ) -> Result<Cow<'a, str>, DecodeError> {
        match reference.resolve_char_ref() {
            Ok(Some(c)) => Ok(Cow::Owned(c.to_string())),
            Ok(None) => match quick_xml::escape::resolve_xml_entity(reference) {
                Some(s) => Ok(Cow::Borrowed(s)),
                None => Err(self.error(offset, format!("unknown entity &{};", &**reference))),
            },
            Err(_) => Err(self.error(
                offset,
                format!("invalid character reference &{};", &**reference),
            )),
        }
    }
}

fn xml_message(e: &quick_xml::Error) -> String {
    match e {
        quick_xml::Error::Encoding(_) => "invalid utf-8".to_owned(),
        other => other.to_string(),
    }
}

pub(super) fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Text gathered from several [`Node::Text`] pieces; borrows while there is
/// only one.
#[derive(Default)]
pub(super) struct TextBuf<'a>(Option<Cow<'a, str>>);

impl<'a> TextBuf<'a> {
    pub fn push(&mut self, piece: Cow<'a, str>) {
        self.0 = Some(match self.0.take() {
            None => piece,
            Some(prev) => {
                let mut s = prev.into_owned();
                s.push_str(&piece);
                Cow::Owned(s)
            }
        });
    }

    /// The text without leading and trailing XML whitespace.
    pub fn finish(self) -> Cow<'a, str> {
        match self.0 {
            None => Cow::Borrowed(""),
            Some(Cow::Borrowed(s)) => Cow::Borrowed(trim(s)),
            Some(Cow::Owned(s)) => {
                let t = trim(&s);
                if t.len() == s.len() {
                    Cow::Owned(s)
                } else {
                    Cow::Owned(t.to_owned())
                }
            }
        }
    }
}

pub(super) fn trim(s: &str) -> &str {
    s.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
}

pub(super) fn is_blank(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}
