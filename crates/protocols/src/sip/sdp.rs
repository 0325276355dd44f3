//! SDP offers and answers (RFC 4566) as far as a call record needs them:
//! the origin, the connection address, each media stream with its port,
//! codecs and direction (RFC 3264 §5.1, §8.4 for hold), and the SDP part
//! of a multipart body (RFC 2046 §5.1).

use super::header::{MediaType, trim_lws};
use super::{SipError, excerpt};

/// A session description. Lines cdrhub does not read (`s=`, `t=`, `b=`,
/// ...) are skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdp<'a> {
    /// The `o=` line; RFC 4566 requires one, some senders leave it out.
    pub origin: Option<Origin<'a>>,
    /// The session-level `c=` line.
    pub connection: Option<Connection<'a>>,
    /// The session-level direction attribute, if any.
    pub direction: Option<Direction>,
    /// The session-level attributes, direction ones included.
    pub attributes: Vec<Attribute<'a>>,
    /// Every `m=` line in order; an answer has as many as its offer, a
    /// rejected or removed stream with port 0 (RFC 3264 §6, §8.2).
    pub media: Vec<Media<'a>>,
}

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>`
/// (RFC 4566 §5.2). The version goes up each time the offerer changes the
/// session (RFC 3264 §8); a re-INVITE with the same version changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin<'a> {
    pub username: &'a str,
    pub session_id: &'a str,
    pub session_version: &'a str,
    pub net_type: &'a str,
    pub address_type: &'a str,
    pub address: &'a str,
}

/// `c=IN IP4 192.0.2.4` (RFC 4566 §5.7). A multicast TTL or address count
/// after a `/` is left out of `address`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection<'a> {
    pub net_type: &'a str,
    pub address_type: &'a str,
    pub address: &'a str,
}

impl Connection<'_> {
    /// `0.0.0.0` (or `::`): the RFC 2543 way of putting a call on hold,
    /// still sent by older phones (RFC 3264 §8.4).
    pub fn is_unspecified(&self) -> bool {
        matches!(self.address, "0.0.0.0" | "::")
    }
}

/// Which way media flows, from the point of view of the side that wrote
/// the SDP (RFC 4566 §6, RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn from_attribute(name: &str) -> Option<Direction> {
        match name {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
}

/// One `a=` line: `a=sendonly` has no value, `a=rtpmap:0 PCMU/8000` has
/// name `rtpmap` and value `0 PCMU/8000`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute<'a> {
    pub name: &'a str,
    pub value: Option<&'a str>,
}

/// One media stream: an `m=` line and the lines after it up to the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media<'a> {
    /// `audio`, `video`, `image` (T.38), `application`, `text`, as written.
    pub kind: &'a str,
    /// 0 for a stream that is rejected or disabled (RFC 3264 §6, §8.2).
    pub port: u16,
    /// The `/<number of ports>` after the port, if any.
    pub port_count: Option<u16>,
    /// `RTP/AVP`, `RTP/SAVP`, `RTP/SAVPF`, `udptl`, ...
    pub proto: &'a str,
    /// The format list as written: RTP payload types for RTP.
    formats: &'a str,
    /// The stream's `c=` line, or the session's if it has none.
    pub connection: Option<Connection<'a>>,
    /// The stream's direction attribute, or the session's, or sendrecv
    /// when neither has one (RFC 3264 §5.1).
    pub direction: Direction,
    /// The stream's own attributes.
    pub attributes: Vec<Attribute<'a>>,
}

impl<'a> Media<'a> {
    /// The formats of the `m=` line in order of preference: `0`, `8`,
    /// `101` for RTP.
    pub fn formats(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        self.formats.split_ascii_whitespace()
    }

    /// The stream's `a=rtpmap` lines.
    pub fn rtpmaps(&self) -> impl Iterator<Item = RtpMap<'a>> + '_ {
        self.attributes
            .iter()
            .filter(|a| a.name == "rtpmap")
            .filter_map(|a| a.value.and_then(|v| RtpMap::parse(v).ok()))
    }

    /// The encoding name of an RTP payload type: from its rtpmap, or for a
    /// static type without one from RFC 3551 Table 4 and 5.
    pub fn codec_name(&self, payload_type: u8) -> Option<&'a str> {
        self.rtpmaps()
            .find(|map| map.payload_type == payload_type)
            .map(|map| map.encoding)
            .or_else(|| static_payload_name(payload_type))
    }

    /// Port 0: the stream is rejected, or removed from the session.
    pub fn is_disabled(&self) -> bool {
        self.port == 0
    }

    /// Whether the writer of this SDP puts the stream on hold: it only
    /// sends or sends nothing (RFC 3264 §8.4), or its connection address is
    /// 0.0.0.0 (RFC 2543). The answer to a hold is recvonly or inactive: an
    /// answer of recvonly is not itself a hold.
    pub fn is_on_hold(&self) -> bool {
        matches!(self.direction, Direction::SendOnly | Direction::Inactive)
            || self.connection.is_some_and(|c| c.is_unspecified())
    }
}

/// `a=rtpmap:<payload type> <encoding name>/<clock rate>[/<encoding
/// parameters>]` (RFC 4566 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpMap<'a> {
    pub payload_type: u8,
    /// `PCMU`, `opus`, `telephone-event`, as written.
    pub encoding: &'a str,
    pub clock_rate: u32,
    /// The number of audio channels, or other encoding parameters.
    pub parameters: Option<&'a str>,
}

impl<'a> RtpMap<'a> {
    fn parse(value: &'a str) -> Result<RtpMap<'a>, ()> {
        let (payload_type, rest) = value.trim().split_once([' ', '\t']).ok_or(())?;
        let mut parts = rest.trim().splitn(3, '/');
        let encoding = parts.next().filter(|e| !e.is_empty()).ok_or(())?;
        let clock_rate = parts.next().ok_or(())?.trim().parse().map_err(|_| ())?;
        Ok(RtpMap {
            payload_type: payload_type.parse().map_err(|_| ())?,
            encoding,
            clock_rate,
            parameters: parts.next(),
        })
    }
}

/// The encoding name of a static RTP payload type (RFC 3551 §6, Tables 4
/// and 5).
pub fn static_payload_name(payload_type: u8) -> Option<&'static str> {
    Some(match payload_type {
        0 => "PCMU",
        3 => "GSM",
        4 => "G723",
        5 | 6 | 16 | 17 => "DVI4",
        7 => "LPC",
        8 => "PCMA",
        9 => "G722",
        10 | 11 => "L16",
        12 => "QCELP",
        13 => "CN",
        14 => "MPA",
        15 => "G728",
        18 => "G729",
        25 => "CelB",
        26 => "JPEG",
        28 => "nv",
        31 => "H261",
        32 => "MPV",
        33 => "MP2T",
        34 => "H263",
        _ => return None,
    })
}

impl<'a> Sdp<'a> {
    /// Reads an SDP body. Never panics.
    pub fn parse(body: &'a [u8]) -> Result<Sdp<'a>, SipError> {
        let text = std::str::from_utf8(body).map_err(|e| {
            let byte = body.get(e.valid_up_to()).copied().unwrap_or_default();
            SipError::new(format!(
                "the SDP body is not UTF-8 (byte 0x{byte:02X} at offset {})",
                e.valid_up_to()
            ))
        })?;
        let mut sdp = Sdp {
            origin: None,
            connection: None,
            direction: None,
            attributes: Vec::new(),
            media: Vec::new(),
        };
        for (index, line) in text.split('\n').enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() {
                continue;
            }
            let number = index + 1;
            let bad = |problem: &str| {
                SipError::new(format!("SDP line {number} {problem}: {}", excerpt(line)))
            };
            let (kind, value) = match line.as_bytes() {
                [kind, b'=', ..] if kind.is_ascii_alphabetic() => (*kind, &line[2..]),
                _ => return Err(bad("is not of the form x=value")),
            };
            match kind {
                b'o' if sdp.origin.is_none() => {
                    sdp.origin = Some(
                        origin(value)
                            .ok_or_else(|| bad("does not have the six fields of an origin"))?,
                    )
                }
                b'c' => {
                    let connection = connection(value)
                        .ok_or_else(|| bad("does not have the three fields of a connection"))?;
                    match sdp.media.last_mut() {
                        Some(media) => media.connection = Some(connection),
                        None => sdp.connection = Some(connection),
                    }
                }
                b'm' => sdp
                    .media
                    .push(media(value).map_err(|problem| bad(&problem))?),
                b'a' => {
                    let attribute = match value.split_once(':') {
                        Some((name, value)) => Attribute {
                            name,
                            value: Some(value),
                        },
                        None => Attribute {
                            name: value.trim_end(),
                            value: None,
                        },
                    };
                    if attribute.name == "rtpmap"
                        && RtpMap::parse(attribute.value.unwrap_or("")).is_err()
                    {
                        return Err(bad("is not an rtpmap of the form \
                             a=rtpmap:<payload type> <encoding>/<clock rate>"));
                    }
                    match sdp.media.last_mut() {
                        Some(media) => media.attributes.push(attribute),
                        None => {
                            let direction = Direction::from_attribute(attribute.name);
                            sdp.direction = direction.or(sdp.direction);
                            sdp.attributes.push(attribute);
                        }
                    }
                }
                _ => {}
            }
        }
        // A stream's own direction and c= line win over the session's
        // (RFC 4566 §5.7, §6); the last direction attribute counts.
        for media in &mut sdp.media {
            let own_direction = media
                .attributes
                .iter()
                .rev()
                .find_map(|a| Direction::from_attribute(a.name));
            media.direction = own_direction
                .or(sdp.direction)
                .unwrap_or(Direction::SendRecv);
            media.connection = media.connection.or(sdp.connection);
        }
        Ok(sdp)
    }

    /// Whether the writer puts the call on hold: every stream that is not
    /// disabled is on hold ([`Media::is_on_hold`]), and there is one.
    pub fn is_on_hold(&self) -> bool {
        let mut active = self.media.iter().filter(|m| !m.is_disabled()).peekable();
        active.peek().is_some() && active.all(Media::is_on_hold)
    }
}

fn origin(value: &str) -> Option<Origin<'_>> {
    let mut fields = value.split_ascii_whitespace();
    let origin = Origin {
        username: fields.next()?,
        session_id: fields.next()?,
        session_version: fields.next()?,
        net_type: fields.next()?,
        address_type: fields.next()?,
        address: fields.next()?,
    };
    fields.next().is_none().then_some(origin)
}

fn connection(value: &str) -> Option<Connection<'_>> {
    let mut fields = value.split_ascii_whitespace();
    let connection = Connection {
        net_type: fields.next()?,
        address_type: fields.next()?,
        address: fields.next()?.split('/').next()?,
    };
    fields.next().is_none().then_some(connection)
}

fn media(value: &str) -> Result<Media<'_>, String> {
    let value = value.trim();
    let mut fields = value.splitn(4, [' ', '\t']);
    let (Some(kind), Some(port), Some(proto)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err("does not have the media, port and proto fields of a media line".to_owned());
    };
    let (port, port_count) = match port.split_once('/') {
        Some((port, count)) => (port, Some(count)),
        None => (port, None),
    };
    let port = port
        .parse()
        .map_err(|_| format!("has port {}, not a number from 0 to 65535", excerpt(port)))?;
    let port_count = match port_count {
        None => None,
        Some(count) => Some(
            count
                .parse()
                .map_err(|_| format!("has port count {}, not a number", excerpt(count)))?,
        ),
    };
    Ok(Media {
        kind,
        port,
        port_count,
        proto,
        formats: fields.next().unwrap_or(""),
        connection: None,
        direction: Direction::SendRecv,
        attributes: Vec::new(),
    })
}

/// The first `application/sdp` part of a multipart body (RFC 2046 §5.1.1):
/// parts start after a line `--boundary` and end at the line break before
/// the next; `--boundary--` closes the body.
pub(crate) fn sdp_in_multipart<'a>(
    body: &'a [u8],
    boundary: &str,
) -> Result<Option<Sdp<'a>>, SipError> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut starts = delimiter_lines(body, delimiter);
    let Some(mut part_start) = starts.next() else {
        return Err(SipError::new(format!(
            "the multipart body has no {} delimiter line",
            excerpt(&format!("--{boundary}"))
        )));
    };
    loop {
        let after = part_start + delimiter.len();
        if body[after..].starts_with(b"--") {
            return Ok(None);
        }
        let next = starts.next();
        let end = next.unwrap_or(body.len());
        // The line break before a delimiter belongs to the delimiter.
        let part = &body[after..end];
        let part = part.strip_suffix(b"\n").unwrap_or(part);
        let part = part.strip_suffix(b"\r").unwrap_or(part);
        if let Some(content) = sdp_part_content(part) {
            return Sdp::parse(content).map(Some);
        }
        match next {
            Some(next) => part_start = next,
            None => return Ok(None),
        }
    }
}

/// Where each line starting with `delimiter` starts.
fn delimiter_lines<'b>(body: &'b [u8], delimiter: &'b [u8]) -> impl Iterator<Item = usize> + 'b {
    (0..body.len())
        .filter(move |&at| (at == 0 || body[at - 1] == b'\n') && body[at..].starts_with(delimiter))
}

/// The content of one part (what follows its delimiter) if its
/// Content-Type is application/sdp.
fn sdp_part_content(part: &[u8]) -> Option<&[u8]> {
    // The rest of the delimiter line is transport padding.
    let headers_start = part.iter().position(|&b| b == b'\n')? + 1;
    let mut at = headers_start;
    let mut is_sdp = false;
    loop {
        let length = part[at..].iter().position(|&b| b == b'\n')?;
        let line = &part[at..at + length];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        at += length + 1;
        if line.is_empty() {
            break;
        }
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("Content-Type")
        {
            is_sdp = MediaType::parse(trim_lws(value)).is_ok_and(|t| t.is("application", "sdp"));
        }
    }
    is_sdp.then(|| &part[at..])
}
