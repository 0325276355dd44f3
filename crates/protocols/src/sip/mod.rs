//! SIP messages (RFC 3261) and their SDP bodies (RFC 4566), as a collector
//! receives them mirrored over HEP by Kamailio, OpenSIPS, FreeSWITCH or
//! Asterisk: one whole message per packet.
//!
//! [`parse`] reads a packet into a [`SipMessage`] that borrows from it. It
//! splits the header section into [`Header`]s (compact names understood,
//! folding kept in place, RFC 3261 §7.3) and reads at once only what a call
//! record needs of every message (§8.1.1): the start line, Call-ID, CSeq,
//! From, To, the top Via if there is one, and Content-Length to cut the
//! body. Everything else is read
//! when asked for: the other Vias, Contact, P-Asserted-Identity,
//! Remote-Party-ID, Diversion, Refer-To, Reason (RFC 3326), Expires,
//! Max-Forwards, any header by name (a correlation header such as `X-CID`),
//! and the SDP offer or answer ([`SipMessage::sdp`], [`Sdp::parse`]), also
//! out of a `multipart/mixed` body as SIP-T gateways send it.
//!
//! A message is one `Vec` of header positions; names, values, URIs and
//! parameters are slices of the packet. Nothing here does I/O or panics on
//! any bytes: a packet that is not a SIP/2.0 message is a [`SipError`], one
//! sentence naming the problem and the line it is on.
//!
//! The header section must be UTF-8 (RFC 3261 §7.3.1 allows nothing else);
//! a sender that writes a Latin-1 display name gets a "not UTF-8" error, and
//! a collector that wants the call anyway can parse
//! `String::from_utf8_lossy(packet)` instead.

mod header;
mod message;
mod sdp;
mod uri;

pub use header::{CSeq, Header, MediaType, Params, Reason, Via, unquote};
pub use message::parse;
pub use sdp::{Attribute, Connection, Direction, Media, Origin, RtpMap, Sdp, static_payload_name};
pub use uri::{Contact, NameAddr, Scheme, Uri};

use std::fmt;

/// One SIP message: its start line, the headers every message carries,
/// read, the others as written, and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipMessage<'a> {
    pub start: StartLine<'a>,
    /// The Call-ID, as written (compared byte for byte, RFC 3261 §20.8).
    pub call_id: &'a str,
    pub cseq: CSeq<'a>,
    pub from: NameAddr<'a>,
    pub to: NameAddr<'a>,
    /// The first value of the first Via: the hop that sent the message, or
    /// for a response the one it goes back to. Its branch names the
    /// transaction (RFC 3261 §17.2.3). RFC 3261 requires a Via, but
    /// Kamailio relays a response whose UAS dropped the caller's Via
    /// without any (`tests/data/sip/kamailio-487-without-via.sip`), and the
    /// call still ends with it.
    pub via: Option<Via<'a>>,
    /// The body, cut to Content-Length.
    pub body: &'a [u8],
    /// Every header in wire order, the ones above included.
    headers: Vec<Header<'a>>,
}

/// A request line or a status line (RFC 3261 §7.1, §7.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine<'a> {
    Request { method: Method<'a>, uri: Uri<'a> },
    Response { code: u16, reason: &'a str },
}

/// A request method. Methods are case-sensitive (RFC 3261 §7.1): `invite`
/// is an unknown method, not INVITE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method<'a> {
    Invite,
    Ack,
    Bye,
    Cancel,
    Register,
    Options,
    Info,
    Update,
    Prack,
    Subscribe,
    Notify,
    Refer,
    Message,
    Publish,
    Other(&'a str),
}

impl<'a> Method<'a> {
    /// The method for a token; any other token is [`Method::Other`].
    pub fn from_token(token: &'a str) -> Method<'a> {
        match token {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other => Method::Other(other),
        }
    }

    pub fn as_str(&self) -> &'a str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Other(token) => token,
        }
    }
}

impl fmt::Display for Method<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a packet is not a SIP message, or why a header or body asked for
/// cannot be read: one sentence naming the problem and where it is (a line
/// of the message or of the SDP, or a byte offset).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct SipError {
    pub reason: String,
}

impl SipError {
    fn new(reason: String) -> SipError {
        SipError { reason }
    }
}

/// `text` in double quotes with its control characters escaped, cut to 80
/// characters, to show in an error sentence.
fn excerpt(text: &str) -> String {
    const LONGEST: usize = 80;
    match text.char_indices().nth(LONGEST) {
        Some((cut, _)) => format!("{:?}...", &text[..cut]),
        None => format!("{text:?}"),
    }
}
