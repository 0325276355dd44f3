//! Header names, parameters, lists, and the header values that are not
//! addresses: Via, CSeq, Reason, Content-Type (RFC 3261 §7.3, §20, §25.1;
//! RFC 3326).
//!
//! Values are parsed where they lie in the packet. A folded value keeps its
//! CRLF and the whitespace after it; every parser here reads CR and LF as
//! whitespace, which is what the grammar's LWS says (§25.1), so folding
//! needs no copy.

use super::{Method, SipError, excerpt};
use std::borrow::Cow;

/// One header as written: its name and its value without the whitespace
/// around it. A folded value spans several lines and keeps the line breaks
/// ([`Header::unfolded`] joins them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The name as written: `From`, `f` or `FROM` are one header.
    pub name: &'a str,
    pub value: &'a str,
    /// The 1-based line of the message the header starts on (the start
    /// line is line 1).
    pub line: usize,
    pub(crate) kind: Kind,
}

impl<'a> Header<'a> {
    pub(crate) fn new(name: &'a str, value: &'a str, line: usize) -> Header<'a> {
        Header {
            name,
            value,
            line,
            kind: Kind::of(name),
        }
    }

    /// The full name of a header RFC 3261 or its extensions name (`Call-ID`
    /// for `i`, `Content-Length` for `content-length`); any other name as
    /// written.
    pub fn canonical_name(&self) -> &'a str {
        self.kind.long_name().unwrap_or(self.name)
    }

    /// Whether this header is the one called `name`, in any case and in
    /// either its full or its compact form.
    pub fn is(&self, name: &str) -> bool {
        match Kind::of(name) {
            Kind::Other => self.kind == Kind::Other && self.name.eq_ignore_ascii_case(name),
            kind => self.kind == kind,
        }
    }

    /// The value with each fold (CRLF and the whitespace after it) replaced
    /// by one space (RFC 3261 §7.3.1); borrowed unless the value was folded.
    pub fn unfolded(&self) -> Cow<'a, str> {
        unfold(self.value)
    }

    /// An error about this header: `the From header on line 3 {problem}:
    /// "{value}"`.
    pub(crate) fn error(&self, problem: &str) -> SipError {
        SipError::new(format!(
            "the {} header on line {} {problem}: {}",
            self.canonical_name(),
            self.line,
            excerpt(self.value)
        ))
    }
}

/// The headers cdrhub looks up by name, and those with a compact form
/// (RFC 3261 §7.3.3, §20; RFC 3265, 3515, 3841, 3892, 4028, 8224).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    CallId,
    From,
    To,
    Via,
    CSeq,
    Contact,
    ContentLength,
    ContentType,
    ContentEncoding,
    MaxForwards,
    Expires,
    Supported,
    Subject,
    Event,
    AllowEvents,
    ReferTo,
    ReferredBy,
    SessionExpires,
    AcceptContact,
    RejectContact,
    RequestDisposition,
    Identity,
    PAssertedIdentity,
    RemotePartyId,
    Diversion,
    Reason,
    Route,
    RecordRoute,
    Other,
}

impl Kind {
    pub(crate) fn of(name: &str) -> Kind {
        let mut lower = [0u8; 19];
        let Some(lower) = lower.get_mut(..name.len()) else {
            return Kind::Other;
        };
        lower.copy_from_slice(name.as_bytes());
        lower.make_ascii_lowercase();
        match &*lower {
            b"i" | b"call-id" => Kind::CallId,
            b"f" | b"from" => Kind::From,
            b"t" | b"to" => Kind::To,
            b"v" | b"via" => Kind::Via,
            b"cseq" => Kind::CSeq,
            b"m" | b"contact" => Kind::Contact,
            b"l" | b"content-length" => Kind::ContentLength,
            b"c" | b"content-type" => Kind::ContentType,
            b"e" | b"content-encoding" => Kind::ContentEncoding,
            b"max-forwards" => Kind::MaxForwards,
            b"expires" => Kind::Expires,
            b"k" | b"supported" => Kind::Supported,
            b"s" | b"subject" => Kind::Subject,
            b"o" | b"event" => Kind::Event,
            b"u" | b"allow-events" => Kind::AllowEvents,
            b"r" | b"refer-to" => Kind::ReferTo,
            b"b" | b"referred-by" => Kind::ReferredBy,
            b"x" | b"session-expires" => Kind::SessionExpires,
            b"a" | b"accept-contact" => Kind::AcceptContact,
            b"j" | b"reject-contact" => Kind::RejectContact,
            b"d" | b"request-disposition" => Kind::RequestDisposition,
            b"y" | b"identity" => Kind::Identity,
            b"p-asserted-identity" => Kind::PAssertedIdentity,
            b"remote-party-id" => Kind::RemotePartyId,
            b"diversion" => Kind::Diversion,
            b"reason" => Kind::Reason,
            b"route" => Kind::Route,
            b"record-route" => Kind::RecordRoute,
            _ => Kind::Other,
        }
    }

    fn long_name(self) -> Option<&'static str> {
        Some(match self {
            Kind::CallId => "Call-ID",
            Kind::From => "From",
            Kind::To => "To",
            Kind::Via => "Via",
            Kind::CSeq => "CSeq",
            Kind::Contact => "Contact",
            Kind::ContentLength => "Content-Length",
            Kind::ContentType => "Content-Type",
            Kind::ContentEncoding => "Content-Encoding",
            Kind::MaxForwards => "Max-Forwards",
            Kind::Expires => "Expires",
            Kind::Supported => "Supported",
            Kind::Subject => "Subject",
            Kind::Event => "Event",
            Kind::AllowEvents => "Allow-Events",
            Kind::ReferTo => "Refer-To",
            Kind::ReferredBy => "Referred-By",
            Kind::SessionExpires => "Session-Expires",
            Kind::AcceptContact => "Accept-Contact",
            Kind::RejectContact => "Reject-Contact",
            Kind::RequestDisposition => "Request-Disposition",
            Kind::Identity => "Identity",
            Kind::PAssertedIdentity => "P-Asserted-Identity",
            Kind::RemotePartyId => "Remote-Party-ID",
            Kind::Diversion => "Diversion",
            Kind::Reason => "Reason",
            Kind::Route => "Route",
            Kind::RecordRoute => "Record-Route",
            Kind::Other => return None,
        })
    }
}

// ---------------------------------------------------------------------------
// Text

/// Linear white space, folds included (RFC 3261 §25.1 LWS).
pub(crate) fn is_lws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

pub(crate) fn trim_lws(text: &str) -> &str {
    let bytes = text.as_bytes();
    let start = bytes
        .iter()
        .position(|&b| !is_lws(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| !is_lws(b))
        .map_or(start, |at| at + 1);
    // Both ends sit next to ASCII bytes: char boundaries.
    text.get(start..end).unwrap_or("")
}

/// `token` characters (RFC 3261 §25.1).
pub(crate) fn is_token_char(c: u8) -> bool {
    TOKEN_CHARS[usize::from(c)]
}

const TOKEN_CHARS: [bool; 256] = {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        table[c] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        c += 1;
    }
    table
};

pub(crate) fn is_token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(is_token_char)
}

fn unfold(text: &str) -> Cow<'_, str> {
    if !text.contains(['\r', '\n']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(['\r', '\n']) {
        out.push_str(rest[..at].trim_end_matches([' ', '\t']));
        out.push(' ');
        rest = rest[at..].trim_start_matches([' ', '\t', '\r', '\n']);
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The text of a quoted string without its quotes, quoted-pairs (`\"`,
/// `\\`) undone and folds made one space (RFC 3261 §25.1); text that is not
/// in quotes, with folds made one space. Borrowed when nothing changes.
pub fn unquote(text: &str) -> Cow<'_, str> {
    let text = trim_lws(text);
    let inner = match text.strip_prefix('"') {
        Some(open) => open.strip_suffix('"').unwrap_or(open),
        None => return unfold(text),
    };
    if !inner.contains('\\') {
        return unfold(inner);
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    match unfold(&out) {
        Cow::Borrowed(_) => Cow::Owned(out),
        Cow::Owned(unfolded) => Cow::Owned(unfolded),
    }
}

/// The pieces of `text` between `separator`s that stand outside quoted
/// strings and angle brackets, each without the LWS around it; empty pieces
/// are skipped. For header lists (`,`, RFC 3261 §7.3.1) and parameters
/// (`;`).
pub(crate) fn split_outside_quotes(text: &str, separator: u8) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        loop {
            if rest.is_empty() {
                return None;
            }
            let end = end_of_piece(rest.as_bytes(), separator);
            let piece = trim_lws(&rest[..end]);
            rest = rest.get(end + 1..).unwrap_or("");
            if !piece.is_empty() {
                return Some(piece);
            }
        }
    })
}

/// Where the first `separator` outside quotes and angle brackets is, or the
/// length of `bytes`. The separators are ASCII, so the index is a char
/// boundary.
fn end_of_piece(bytes: &[u8], separator: u8) -> usize {
    let mut in_quotes = false;
    let mut in_angle = false;
    let mut escaped = false;
    for (at, &b) in bytes.iter().enumerate() {
        if in_quotes {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_quotes = false,
                _ => {}
            }
        } else if b == b'"' {
            in_quotes = true;
        } else if b == b'<' {
            in_angle = true;
        } else if b == b'>' {
            in_angle = false;
        } else if b == separator && !in_angle {
            return at;
        }
    }
    bytes.len()
}

/// A small reader over a value, for the grammars below.
#[derive(Clone, Copy)]
pub(crate) struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(text: &'a str) -> Cursor<'a> {
        Cursor { text, at: 0 }
    }

    pub(crate) fn skip_lws(&mut self) -> bool {
        let start = self.at;
        while self
            .text
            .as_bytes()
            .get(self.at)
            .is_some_and(|&b| is_lws(b))
        {
            self.at += 1;
        }
        self.at > start
    }

    /// The longest run of bytes matching `keep` from here. Callers stop
    /// at ASCII bytes only, so the run ends on a char boundary; `get` keeps
    /// a wrong `keep` from panicking.
    pub(crate) fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> &'a str {
        let start = self.at;
        while self.text.as_bytes().get(self.at).is_some_and(|&b| keep(b)) {
            self.at += 1;
        }
        self.text.get(start..self.at).unwrap_or("")
    }

    pub(crate) fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        if found {
            self.at += 1;
        }
        found
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    pub(crate) fn rest(&self) -> &'a str {
        self.text.get(self.at..).unwrap_or("")
    }
}

// ---------------------------------------------------------------------------
// Parameters

/// `;name=value` parameters as written, of a header (`;tag=`), a URI
/// (`;user=phone`) or a media type (`;boundary=`). Names are
/// case-insensitive; values are as written, quotes included ([`unquote`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params<'a>(pub(crate) &'a str);

impl<'a> Params<'a> {
    pub fn as_str(&self) -> &'a str {
        self.0
    }

    /// Each parameter's name and value; a parameter without `=` has none.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + use<'a> {
        split_outside_quotes(self.0, b';').map(|param| match param.split_once('=') {
            Some((name, value)) => (trim_lws(name), Some(trim_lws(value))),
            None => (param, None),
        })
    }

    /// The value of the first parameter called `name`; `Some("")` for one
    /// without a value (`;lr`).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.unwrap_or(""))
    }
}

// ---------------------------------------------------------------------------
// Via

/// One Via value (RFC 3261 §20.42): `SIP/2.0/UDP host:port;branch=...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via<'a> {
    /// `UDP`, `TCP`, `TLS`, `SCTP`, `WS`, `WSS`, as written.
    pub transport: &'a str,
    /// The sent-by host; an IPv6 address keeps its brackets.
    pub host: &'a str,
    pub port: Option<u16>,
    pub params: Params<'a>,
}

impl<'a> Via<'a> {
    /// The transaction id; `z9hG4bK...` from an RFC 3261 sender (§8.1.1.7).
    pub fn branch(&self) -> Option<&'a str> {
        self.params.get("branch")
    }

    pub(crate) fn parse(value: &'a str) -> Result<Via<'a>, String> {
        let mut c = Cursor::new(value);
        c.skip_lws();
        let name = c.take_while(is_token_char);
        let version = slash_then_token(&mut c);
        let transport = version.and_then(|_| slash_then_token(&mut c));
        let (Some(version), Some(transport)) = (version, transport) else {
            return Err("does not start with a protocol such as \"SIP/2.0/UDP\"".to_owned());
        };
        if !name.eq_ignore_ascii_case("SIP") || version != "2.0" {
            return Err(format!("names protocol {name}/{version}, not SIP/2.0"));
        }
        if !c.skip_lws() {
            return Err("has no space between the protocol and the sent-by address".to_owned());
        }
        let (host, port) = host_port(&mut c)?;
        if host.is_empty() {
            return Err("has no sent-by host".to_owned());
        }
        c.skip_lws();
        let params = c.rest();
        if !params.is_empty() && !params.starts_with(';') {
            return Err("has text after the sent-by address that is not a parameter".to_owned());
        }
        Ok(Via {
            transport,
            host,
            port,
            params: Params(params),
        })
    }
}

/// `SLASH token` with LWS allowed around the slash (§25.1 SLASH).
fn slash_then_token<'a>(c: &mut Cursor<'a>) -> Option<&'a str> {
    c.skip_lws();
    if !c.eat(b'/') {
        return None;
    }
    c.skip_lws();
    Some(c.take_while(is_token_char)).filter(|t| !t.is_empty())
}

/// `host [":" port]`, an IPv6 reference in brackets; what follows is left
/// to the caller. The host is empty when there is none.
pub(crate) fn host_port<'a>(c: &mut Cursor<'a>) -> Result<(&'a str, Option<u16>), String> {
    let host = if c.peek() == Some(b'[') {
        let host = c.take_while(|b| b != b']');
        if !c.eat(b']') {
            return Err("has an IPv6 address with no closing \"]\"".to_owned());
        }
        // Both brackets are ASCII: the slice ends on a char boundary.
        c.text.get(c.at - host.len() - 1..c.at).unwrap_or(host)
    } else {
        c.take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    };
    let mut after = *c;
    after.skip_lws();
    if !after.eat(b':') {
        return Ok((host, None));
    }
    after.skip_lws();
    *c = after;
    let digits = c.take_while(|b| b.is_ascii_digit());
    match digits.parse::<u16>() {
        Ok(port) => Ok((host, Some(port))),
        Err(_) => Err(format!(
            "has port {}, not a number from 0 to 65535",
            excerpt(digits_or_rest(digits, c.rest()))
        )),
    }
}

fn digits_or_rest<'a>(digits: &'a str, rest: &'a str) -> &'a str {
    if digits.is_empty() { rest } else { digits }
}

// ---------------------------------------------------------------------------
// CSeq, Reason, Content-Type

/// The CSeq header (RFC 3261 §20.16): a sequence number and the method of
/// the request, which a response repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CSeq<'a> {
    pub number: u32,
    pub method: Method<'a>,
}

impl<'a> CSeq<'a> {
    pub(crate) fn parse(value: &'a str) -> Result<CSeq<'a>, String> {
        let mut c = Cursor::new(value);
        c.skip_lws();
        let digits = c.take_while(|b| b.is_ascii_digit());
        if digits.is_empty() {
            return Err("does not start with a sequence number".to_owned());
        }
        // "The sequence number MUST be expressible as a 32-bit unsigned
        // integer and MUST be less than 2**31" (§8.1.1.5).
        let number = match digits.parse::<u32>() {
            Ok(n) if n < 1 << 31 => n,
            _ => return Err(format!("has sequence number {digits}, 2^31 or more")),
        };
        if !c.skip_lws() {
            return Err("has no space between the sequence number and the method".to_owned());
        }
        let method = c.take_while(is_token_char);
        c.skip_lws();
        if method.is_empty() || !c.rest().is_empty() {
            return Err("does not end with a method".to_owned());
        }
        Ok(CSeq {
            number,
            method: Method::from_token(method),
        })
    }
}

/// One value of a Reason header (RFC 3326): why a request was made, mostly
/// why a BYE or CANCEL ends a call. `Q.850;cause=16;text="Normal call
/// clearing"`, `SIP;cause=487;text="Request Terminated"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reason<'a> {
    /// `Q.850`, `SIP`, or another protocol token, as written.
    pub protocol: &'a str,
    /// The `cause` parameter: a Q.850 cause value or a SIP status code.
    pub cause: Option<u16>,
    pub params: Params<'a>,
}

impl<'a> Reason<'a> {
    /// The `text` parameter without its quotes.
    pub fn text(&self) -> Option<Cow<'a, str>> {
        self.params.get("text").map(unquote)
    }

    pub(crate) fn parse(value: &'a str) -> Result<Reason<'a>, String> {
        let mut c = Cursor::new(value);
        c.skip_lws();
        let protocol = c.take_while(is_token_char);
        if protocol.is_empty() {
            return Err("does not start with a protocol such as Q.850 or SIP".to_owned());
        }
        c.skip_lws();
        let params = Params(c.rest());
        if !params.0.is_empty() && !params.0.starts_with(';') {
            return Err("has text after the protocol that is not a parameter".to_owned());
        }
        let cause = match params.get("cause") {
            None => None,
            Some(text) => match text.parse::<u16>() {
                Ok(cause) => Some(cause),
                Err(_) => return Err(format!("has cause {}, not a number", excerpt(text))),
            },
        };
        Ok(Reason {
            protocol,
            cause,
            params,
        })
    }
}

/// A Content-Type (RFC 3261 §20.15): `application/sdp`,
/// `multipart/mixed;boundary=unique-boundary-1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaType<'a> {
    pub kind: &'a str,
    pub subtype: &'a str,
    pub params: Params<'a>,
}

impl<'a> MediaType<'a> {
    /// Whether this is `kind/subtype`, in any case.
    pub fn is(&self, kind: &str, subtype: &str) -> bool {
        self.kind.eq_ignore_ascii_case(kind) && self.subtype.eq_ignore_ascii_case(subtype)
    }

    pub(crate) fn parse(value: &'a str) -> Result<MediaType<'a>, String> {
        let mut c = Cursor::new(value);
        c.skip_lws();
        let kind = c.take_while(is_token_char);
        let subtype = slash_then_token(&mut c);
        let Some(subtype) = subtype.filter(|_| !kind.is_empty()) else {
            return Err("is not a media type such as application/sdp".to_owned());
        };
        c.skip_lws();
        let params = c.rest();
        if !params.is_empty() && !params.starts_with(';') {
            return Err("has text after the media type that is not a parameter".to_owned());
        }
        Ok(MediaType {
            kind,
            subtype,
            params: Params(params),
        })
    }
}
