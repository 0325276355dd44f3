//! A packet to a [`SipMessage`]: the start line, the header section split
//! into headers, the headers every message carries, and the body cut to
//! Content-Length (RFC 3261 §7, §8.1.1, §18.3, §20.14); then the readers of
//! the headers a message may carry.

use super::header::{
    CSeq, Header, Kind, MediaType, Reason, Via, is_token, is_token_char, split_outside_quotes,
    trim_lws,
};
use super::sdp::{Sdp, sdp_in_multipart};
use super::uri::{Contact, NameAddr, Uri};
use super::{Method, SipError, SipMessage, StartLine, excerpt};

/// Reads one SIP/2.0 message: a whole UDP datagram, or one message of a
/// stream already framed, as HEP carries them. Never panics.
///
/// Without a Content-Length the body is the rest of the packet (RFC 3261
/// §18.3 allows that over UDP only; over a stream the framing has cut the
/// message already). Bytes after Content-Length are ignored.
pub fn parse(packet: &[u8]) -> Result<SipMessage<'_>, SipError> {
    // "Implementations processing SIP messages over stream-oriented
    // transports MUST ignore any CRLF appearing before the start-line"
    // (§7.5); a UDP keep-alive is nothing but CRLFs.
    let Some(skipped) = packet.iter().position(|&b| b != b'\r' && b != b'\n') else {
        return Err(SipError::new(if packet.is_empty() {
            "the packet is empty".to_owned()
        } else {
            "the packet holds only line breaks (a keep-alive), no message".to_owned()
        }));
    };
    let message = &packet[skipped..];
    // One check of the whole message: the head must be UTF-8, the body
    // need not be (a multipart body may carry binary ISUP).
    let (text, invalid_at) = match std::str::from_utf8(message) {
        Ok(text) => (text, None),
        Err(e) => {
            let valid = message.get(..e.valid_up_to()).unwrap_or_default();
            let text = std::str::from_utf8(valid).unwrap_or_default();
            (text, Some(skipped + e.valid_up_to()))
        }
    };
    let Head {
        start,
        headers,
        body_start,
    } = split_head(text, |line| {
        invalid_at.map(|offset| {
            let byte = packet.get(offset).copied().unwrap_or_default();
            SipError::new(format!(
                "line {line} is not UTF-8 (byte 0x{byte:02X} at offset {offset})"
            ))
        })
    })?;
    let found = Singletons::find(&headers)?;

    let call_id = required(found.call_id, "Call-ID")?;
    let id = call_id.value;
    if id.is_empty() || id.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err(call_id.error("is empty or has white space in it"));
    }
    let cseq_header = required(found.cseq, "CSeq")?;
    let cseq = CSeq::parse(cseq_header.value).map_err(|p| cseq_header.error(&p))?;
    if let StartLine::Request { method, .. } = &start {
        // "The method MUST match that of the request" (§8.1.1.5).
        if cseq.method != *method {
            return Err(cseq_header.error(&format!(
                "names method {}, not the request's {method}",
                cseq.method
            )));
        }
    }
    let from = address(found.from, "From")?;
    let to = address(found.to, "To")?;
    let via = match found.via {
        None => None,
        Some(header) => {
            let top = split_outside_quotes(header.value, b',')
                .next()
                .unwrap_or("");
            Some(Via::parse(top).map_err(|p| header.error(&p))?)
        }
    };

    let rest = message.get(body_start..).unwrap_or_default();
    let body = match found.content_length {
        None => rest,
        Some(length) => rest.get(..length).ok_or_else(|| {
            SipError::new(format!(
                "Content-Length says {length} but the body has {} bytes",
                rest.len()
            ))
        })?,
    };
    Ok(SipMessage {
        start,
        call_id: id,
        cseq,
        from,
        to,
        via,
        body,
        headers,
    })
}

fn start_line(line: &str) -> Result<StartLine<'_>, SipError> {
    let neither = || {
        SipError::new(format!(
            "start line is neither a request nor a SIP/2.0 response: {}",
            excerpt(line)
        ))
    };
    let is_sip = |word: &str| {
        word.get(..4)
            .is_some_and(|w| w.eq_ignore_ascii_case("SIP/"))
    };
    let is_sip_2 = |word: &str| word.eq_ignore_ascii_case("SIP/2.0");

    if is_sip(line) {
        let (version, rest) = line.split_once(' ').unwrap_or((line, ""));
        if !is_sip_2(version) {
            return Err(SipError::new(format!(
                "the status line has version {}, not SIP/2.0",
                excerpt(version)
            )));
        }
        let rest = rest.trim_start_matches(' ');
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        // Status-Code = 3DIGIT, from 100 to 699 (§7.2, §21).
        let code_value = code
            .parse::<u16>()
            .ok()
            .filter(|c| code.len() == 3 && (100..=699).contains(c));
        return match code_value {
            Some(code) => Ok(StartLine::Response {
                code,
                reason: reason.trim(),
            }),
            None => Err(SipError::new(format!(
                "the status line has status code {}, not a number from 100 to 699",
                excerpt(code)
            ))),
        };
    }
    // RFC 3261 §7.1 puts one SP between the three elements; the RFC 4475
    // torture tests let a liberal parser accept more, and so does this.
    let mut words = line.split_whitespace();
    let (Some(method), Some(uri), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(neither());
    };
    if !is_token(method) || !is_sip(version) {
        return Err(neither());
    }
    if !is_sip_2(version) {
        return Err(SipError::new(format!(
            "the request line has version {}, not SIP/2.0",
            excerpt(version)
        )));
    }
    let uri = Uri::parse(uri).map_err(|p| SipError::new(format!("the request line {p}")))?;
    Ok(StartLine::Request {
        method: Method::from_token(method),
        uri,
    })
}

/// The start line, the headers and where the body starts.
struct Head<'a> {
    start: StartLine<'a>,
    headers: Vec<Header<'a>>,
    body_start: usize,
}

/// Reads the head in one pass over its lines: the start line, then each
/// header with its continuation lines (RFC 3261 §7.3.1), up to the empty
/// line. Without an empty line the message is all head. When the head
/// runs into the end of `text`, `not_utf8` gives the error if that is
/// where the packet's valid UTF-8 ended.
fn split_head<'a>(
    text: &'a str,
    not_utf8: impl Fn(usize) -> Option<SipError>,
) -> Result<Head<'a>, SipError> {
    // Where line `number` starting at `at` ends, and where the next starts.
    let line_at = |at: usize, number: usize| match text[at..].find('\n') {
        Some(length) => Ok((at + length, at + length + 1)),
        None => not_utf8(number).map_or(Ok((text.len(), text.len())), Err),
    };
    let without_cr = |raw: &'a str| raw.strip_suffix('\r').unwrap_or(raw);

    let (line_end, mut at) = line_at(0, 1)?;
    let start = start_line(without_cr(&text[..line_end]))?;
    // Nearly every message has fewer; one allocation a message.
    let mut headers = Vec::with_capacity(24);
    let mut open: Option<Open<'_>> = None;
    let mut number = 1;
    let body_start = loop {
        number += 1;
        if at >= text.len() {
            // The head ends with the text: at the end of the message, or
            // where its valid UTF-8 ends.
            match not_utf8(number) {
                Some(error) => return Err(error),
                None => break text.len(),
            }
        }
        let (line_end, next) = line_at(at, number)?;
        let line = without_cr(&text[at..line_end]);
        if line.is_empty() {
            break next;
        }
        if line.starts_with([' ', '\t']) {
            let Some(open) = &mut open else {
                return Err(SipError::new(format!(
                    "line {number} starts with white space but continues no header: {}",
                    excerpt(line)
                )));
            };
            open.value_end = at + line.len();
        } else {
            let colon = header_colon(line, number)?;
            if let Some(previous) = open.take() {
                headers.push(previous.close(text));
            }
            open = Some(Open {
                name: line[..colon].trim_end_matches([' ', '\t']),
                value_start: at + colon + 1,
                value_end: at + line.len(),
                line: number,
            });
        }
        at = next;
    };
    headers.extend(open.map(|open| open.close(text)));
    Ok(Head {
        start,
        headers,
        body_start,
    })
}

/// Where the colon after the header name of `line` is.
fn header_colon(line: &str, number: usize) -> Result<usize, SipError> {
    let bytes = line.as_bytes();
    let name_end = bytes
        .iter()
        .position(|&b| !is_token_char(b))
        .unwrap_or(bytes.len());
    let colon = name_end
        + bytes[name_end..]
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
    if name_end > 0 && bytes.get(colon) == Some(&b':') {
        return Ok(colon);
    }
    Err(SipError::new(if line.contains(':') {
        format!(
            "line {number} does not start with a header name and a colon: {}",
            excerpt(line)
        )
    } else {
        format!("line {number} has no colon: {}", excerpt(line))
    }))
}

/// A header whose value may go on over the next lines.
struct Open<'a> {
    name: &'a str,
    value_start: usize,
    value_end: usize,
    line: usize,
}

impl<'a> Open<'a> {
    fn close(self, head: &'a str) -> Header<'a> {
        let value = head.get(self.value_start..self.value_end).unwrap_or("");
        Header::new(self.name, trim_lws(value), self.line)
    }
}

/// The first header of each kind every message carries, and the body
/// length.
struct Singletons<'h, 'a> {
    call_id: Option<&'h Header<'a>>,
    cseq: Option<&'h Header<'a>>,
    from: Option<&'h Header<'a>>,
    to: Option<&'h Header<'a>>,
    via: Option<&'h Header<'a>>,
    content_length: Option<usize>,
}

impl<'h, 'a> Singletons<'h, 'a> {
    fn find(headers: &'h [Header<'a>]) -> Result<Singletons<'h, 'a>, SipError> {
        let mut found = Singletons {
            call_id: None,
            cseq: None,
            from: None,
            to: None,
            via: None,
            content_length: None,
        };
        let mut length_header: Option<&Header<'a>> = None;
        for header in headers {
            let slot = match header.kind {
                Kind::CallId => &mut found.call_id,
                Kind::CSeq => &mut found.cseq,
                Kind::From => &mut found.from,
                Kind::To => &mut found.to,
                Kind::Via => &mut found.via,
                Kind::ContentLength => {
                    let length = content_length(header)?;
                    match (found.content_length, length_header) {
                        (Some(first), Some(first_header)) if first != length => {
                            return Err(SipError::new(format!(
                                "Content-Length is {first} on line {} but {length} on line {}",
                                first_header.line, header.line
                            )));
                        }
                        (Some(_), _) => {}
                        (None, _) => {
                            found.content_length = Some(length);
                            length_header = Some(header);
                        }
                    }
                    continue;
                }
                _ => continue,
            };
            slot.get_or_insert(header);
        }
        Ok(found)
    }
}

fn content_length(header: &Header<'_>) -> Result<usize, SipError> {
    let value = header.value;
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(header.error("is not a number of bytes"));
    }
    value
        .parse()
        .map_err(|_| header.error("is larger than any packet"))
}

fn address<'a>(header: Option<&Header<'a>>, name: &str) -> Result<NameAddr<'a>, SipError> {
    let header = required(header, name)?;
    NameAddr::parse(header.value).map_err(|p| header.error(&p))
}

fn required<'h, 'a>(
    header: Option<&'h Header<'a>>,
    name: &str,
) -> Result<&'h Header<'a>, SipError> {
    header.ok_or_else(|| SipError::new(format!("the message has no {name} header")))
}

impl<'a> SipMessage<'a> {
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The request's method; for a response, the method of the request it
    /// answers (from CSeq).
    pub fn method(&self) -> Method<'a> {
        match &self.start {
            StartLine::Request { method, .. } => *method,
            StartLine::Response { .. } => self.cseq.method,
        }
    }

    /// A response's status code.
    pub fn status_code(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    /// A request's Request-URI.
    pub fn request_uri(&self) -> Option<&Uri<'a>> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// Every header in wire order.
    pub fn headers(&self) -> &[Header<'a>] {
        &self.headers
    }

    /// The headers called `name` (any case, full or compact form), in wire
    /// order.
    pub fn headers_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s Header<'a>> {
        let kind = Kind::of(name);
        self.headers.iter().filter(move |h| match kind {
            Kind::Other => h.kind == Kind::Other && h.name.eq_ignore_ascii_case(name),
            kind => h.kind == kind,
        })
    }

    /// The value of the first header called `name` (any case, full or
    /// compact form), as written: a correlation header such as `X-CID`.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers_named(name).next().map(|h| h.value)
    }

    /// Every Via value in order, the top one first, across Via headers and
    /// the comma-separated values of one header (RFC 3261 §7.3.1).
    pub fn vias(&self) -> impl Iterator<Item = Result<Via<'a>, SipError>> + '_ {
        self.values_of(Kind::Via)
            .map(|(header, value)| Via::parse(value).map_err(|p| header.error(&p)))
    }

    /// Every Contact value in order.
    pub fn contacts(&self) -> impl Iterator<Item = Result<Contact<'a>, SipError>> + '_ {
        self.values_of(Kind::Contact).map(|(header, value)| {
            if value == "*" {
                return Ok(Contact::Wildcard);
            }
            NameAddr::parse(value)
                .map(Contact::Address)
                .map_err(|p| header.error(&p))
        })
    }

    /// Every address in the headers called `name`, comma-separated values
    /// included: `P-Asserted-Identity` (a sip and a tel URI, RFC 3325),
    /// `Diversion` (newest first, RFC 5806), `Remote-Party-ID`, `Route`,
    /// `Record-Route`, `Refer-To`.
    pub fn addresses<'s>(
        &'s self,
        name: &'s str,
    ) -> impl Iterator<Item = Result<NameAddr<'a>, SipError>> + 's {
        self.headers_named(name).flat_map(|header| {
            split_outside_quotes(header.value, b',')
                .map(move |value| NameAddr::parse(value).map_err(|p| header.error(&p)))
        })
    }

    /// The first P-Asserted-Identity address (RFC 3325): the caller as the
    /// network asserts it.
    pub fn p_asserted_identity(&self) -> Result<Option<NameAddr<'a>>, SipError> {
        self.addresses("P-Asserted-Identity").next().transpose()
    }

    /// The first Remote-Party-ID address (draft-ietf-sip-privacy-04), which
    /// older Cisco and Asterisk gateways send instead of P-Asserted-Identity.
    pub fn remote_party_id(&self) -> Result<Option<NameAddr<'a>>, SipError> {
        self.addresses("Remote-Party-ID").next().transpose()
    }

    /// Every Diversion address (RFC 5806), the most recent redirection
    /// first; the last one names the number first dialled.
    pub fn diversions(&self) -> impl Iterator<Item = Result<NameAddr<'a>, SipError>> + '_ {
        self.addresses("Diversion")
    }

    /// The Refer-To address of a REFER (RFC 3515).
    pub fn refer_to(&self) -> Result<Option<NameAddr<'a>>, SipError> {
        self.addresses("Refer-To").next().transpose()
    }

    /// Every Reason value (RFC 3326), in order; a BYE may carry a Q.850 and
    /// a SIP reason.
    pub fn reasons(&self) -> impl Iterator<Item = Result<Reason<'a>, SipError>> + '_ {
        self.values_of(Kind::Reason)
            .map(|(header, value)| Reason::parse(value).map_err(|p| header.error(&p)))
    }

    /// Max-Forwards (RFC 3261 §20.22).
    pub fn max_forwards(&self) -> Result<Option<u32>, SipError> {
        self.number(Kind::MaxForwards)
    }

    /// Expires, in seconds (RFC 3261 §20.19); a value too large for 32 bits
    /// is taken as 2^32 - 1, as §10.2.1 says of large values.
    pub fn expires(&self) -> Result<Option<u32>, SipError> {
        self.number(Kind::Expires)
    }

    /// The Content-Type of the body.
    pub fn content_type(&self) -> Result<Option<MediaType<'a>>, SipError> {
        self.first(Kind::ContentType)
            .map(|header| MediaType::parse(header.value).map_err(|p| header.error(&p)))
            .transpose()
    }

    /// The SDP of the body: the body itself if it is `application/sdp`, or
    /// the first `application/sdp` part of a multipart body (RFC 2046
    /// §5.1; SIP-T gateways send SDP and ISUP together). None when there is
    /// no body or no SDP in it.
    pub fn sdp(&self) -> Result<Option<Sdp<'a>>, SipError> {
        if self.body.is_empty() {
            return Ok(None);
        }
        let Some(content_type) = self.content_type()? else {
            return Ok(None);
        };
        if content_type.is("application", "sdp") {
            return Sdp::parse(self.body).map(Some);
        }
        if content_type.kind.eq_ignore_ascii_case("multipart") {
            let Some(boundary) = content_type.params.get("boundary") else {
                return Err(SipError::new(
                    "the multipart Content-Type has no boundary parameter".to_owned(),
                ));
            };
            return sdp_in_multipart(self.body, &super::unquote(boundary));
        }
        Ok(None)
    }

    fn first(&self, kind: Kind) -> Option<&Header<'a>> {
        self.headers.iter().find(|h| h.kind == kind)
    }

    /// Each comma-separated value of each header of `kind`, with its header.
    fn values_of(&self, kind: Kind) -> impl Iterator<Item = (&Header<'a>, &'a str)> + '_ {
        self.headers
            .iter()
            .filter(move |h| h.kind == kind)
            .flat_map(|header| split_outside_quotes(header.value, b',').map(move |v| (header, v)))
    }

    fn number(&self, kind: Kind) -> Result<Option<u32>, SipError> {
        let Some(header) = self.first(kind) else {
            return Ok(None);
        };
        let value = header.value;
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(header.error("is not a number"));
        }
        Ok(Some(value.parse().unwrap_or(u32::MAX)))
    }
}
