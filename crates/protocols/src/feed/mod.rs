//! The gateway event feed, `GWFEED/1` (docs/gateway-feed.md; seed 001): an
//! open line protocol over TCP and UDP for VoIP port gateways (FXS, FXO,
//! ISDN) that report their logins and every call event as it happens.
//!
//! A line is `GWFEED/1 TYPE key=value ...`; a value is bare or quoted
//! (docs/gateway-feed.md, "Line syntax"). [`parse_line`] reads one line
//! from a gateway into a [`FeedMessage`] and never panics;
//! [`FeedMessage::to_line`] writes it back (the simulator).
//! [`parse_reply`] and [`FeedReply::to_line`] do the same for the server's
//! answers, and [`split_datagram`] cuts a UDP datagram into its lines.

mod parse;
mod text;

pub use parse::{parse_line, parse_reply, split_datagram};

use cdrhub_model::Timestamp;
use std::fmt;
use std::net::SocketAddr;
use text::LineWriter;

/// The version word every line starts with.
pub const VERSION: &str = "GWFEED/1";
/// The longest line read, in bytes, its terminator not counted.
pub const MAX_LINE_LEN: usize = 1024;
/// A gateway that has sent nothing for this long sends KEEPALIVE.
pub const KEEPALIVE_INTERVAL_SECS: u64 = 30;
/// A session that has heard nothing for this long (three intervals) ends
/// with "Gateway Disconnect".
pub const SESSION_TIMEOUT_SECS: u64 = 3 * KEEPALIVE_INTERVAL_SECS;
/// The longest `digits` value.
pub const MAX_DIGITS_LEN: usize = 64;
/// The longest gateway id.
pub const MAX_GATEWAY_ID_LEN: usize = 32;

/// One line from a gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedMessage {
    /// The gateway's message counter since its LOGIN; the answer names it.
    pub seq: u32,
    pub gateway: GatewayRef,
    pub body: FeedBody,
}

/// The gateway a line comes from: the id the operator gave it (seed
/// `Gateway[8200]`) and its MAC. Two gateways may share an id; the pair
/// names one gateway.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GatewayRef {
    /// 1 to 32 of `A-Z a-z 0-9 . _ -`.
    pub id: String,
    pub mac: Mac,
}

impl fmt::Display for GatewayRef {
    /// `8200_000C2A020082`, as the seed's report names a gateway.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.id, self.mac)
    }
}

/// A MAC address, written as 12 upper-case hexadecimal digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mac(pub [u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02X}"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedBody {
    Login(Login),
    Logout { reason: Option<String> },
    KeepAlive { clock: Option<GatewayClock> },
    Call(CallEvent),
}

/// What a gateway says when it logs in (seed: `FXS(2) FXO(2) ISDN(0)
/// CallRef(74) Time[2000/01/02 08:17:38] Login!`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// The gateway's public address as the gateway knows it; the server
    /// records the source address it sees in any case.
    pub public_addr: Option<SocketAddr>,
    pub fxs_ports: u16,
    pub fxo_ports: u16,
    pub isdn_channels: u16,
    /// The reference of the gateway's most recent call, 0 if none.
    pub call_ref: u32,
    pub clock: GatewayClock,
}

/// The gateway's own clock, often wrong (the seed's gateways are set to the
/// year 2000). Without a zone it is the gateway's wall clock read as UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayClock {
    Read(Timestamp),
    /// A value that is not a `YYYY-MM-DDTHH:MM:SS` time, kept as sent.
    Unread(String),
}

impl fmt::Display for GatewayClock {
    /// `2000-01-02T08:17:38`: no zone, milliseconds only when there are some.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GatewayClock::Read(t) => f.write_str(t.to_rfc3339().trim_end_matches('Z')),
            GatewayClock::Unread(text) => f.write_str(text),
        }
    }
}

/// One event of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallEvent {
    /// The call reference (seed `Call-Ref`).
    pub call_ref: u32,
    /// The port of the call (seed `#`); only `CALL_IN_REJECT` may have none.
    pub port: Option<u16>,
    /// The PSTN port the call uses when it is another one (seed `P-Port`).
    pub pstn_port: Option<u16>,
    /// The gateway's clock when the event happened.
    pub at: GatewayClock,
    pub kind: CallEventKind,
}

/// The call events of docs/gateway-feed.md, "Call events"; the seed's
/// real-time event names are the wire names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEventKind {
    HookOff,
    /// Digits dialled on the port, at once or one per event (DTMF).
    Dial {
        digits: String,
    },
    RingBack,
    Talk {
        codec: Option<CodecInfo>,
    },
    /// The port is idle again: the last event of a call.
    HookOn,
    /// A call from the VoIP network arrived for the port.
    CallIn {
        caller_id: Option<String>,
    },
    /// The PSTN line on the port rings.
    PstnCallIn {
        caller_id: Option<String>,
    },
    PstnHookOff,
    /// Digits the gateway dialled on the PSTN line (report `PSTN Dial`).
    PstnDial {
        digits: String,
    },
    PstnConnected,
    /// The far (VoIP) side hung up.
    RemoteHookOn,
    PstnHookOn,
    /// The gateway refused a call from the VoIP network.
    CallInReject {
        caller_id: Option<String>,
        reason: Option<String>,
    },
    /// The call the port placed failed.
    CallOutFail {
        reason: Option<String>,
    },
}

impl CallEventKind {
    /// The wire name, as the seed's real-time event list spells it.
    pub fn name(&self) -> &'static str {
        match self {
            CallEventKind::HookOff => "HOOK_OFF",
            CallEventKind::Dial { .. } => "DIAL",
            CallEventKind::RingBack => "RING_BACK",
            CallEventKind::Talk { .. } => "TALK",
            CallEventKind::HookOn => "HOOK_ON",
            CallEventKind::CallIn { .. } => "CALL_IN",
            CallEventKind::PstnCallIn { .. } => "PSTN_CALL_IN",
            CallEventKind::PstnHookOff => "PSTN_HOOK_OFF",
            CallEventKind::PstnDial { .. } => "PSTN_DIAL",
            CallEventKind::PstnConnected => "PSTN_CONNECTED",
            CallEventKind::RemoteHookOn => "REMOTE_HOOK_ON",
            CallEventKind::PstnHookOn => "PSTN_HOOK_ON",
            CallEventKind::CallInReject { .. } => "CALL_IN_REJECT",
            CallEventKind::CallOutFail { .. } => "CALL_OUT_FAIL",
        }
    }
}

/// The codec information of a TALK event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodecInfo {
    /// The seed's `C(18) M(17)`: C is the RTP payload type of the codec
    /// (18 is G.729, RFC 3551); the seed does not say what M is.
    Codes { c: u16, m: u16 },
    /// Any other form, kept as sent.
    Other(String),
}

impl fmt::Display for CodecInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecInfo::Codes { c, m } => write!(f, "C({c}) M({m})"),
            CodecInfo::Other(text) => f.write_str(text),
        }
    }
}

/// The server's answer to one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedReply {
    /// Message `seq` is taken.
    Ok { seq: u32 },
    /// Message `seq` was not taken (`not logged in`), or a line that could
    /// not be read (no `seq`).
    Err { seq: Option<u32>, reason: String },
}

/// Why a line cannot be read: one sentence naming the problem, and the
/// 1-based column (in characters) where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} at column {column}")]
pub struct FeedError {
    pub column: usize,
    pub reason: String,
}

impl FeedMessage {
    /// The line for this message, without its terminator. [`parse_line`]
    /// reads it back as this message, for every message it can return.
    pub fn to_line(&self) -> String {
        let type_word = match &self.body {
            FeedBody::Login(_) => "LOGIN",
            FeedBody::Logout { .. } => "LOGOUT",
            FeedBody::KeepAlive { .. } => "KEEPALIVE",
            FeedBody::Call(event) => event.kind.name(),
        };
        let mut w = LineWriter::new(type_word);
        w.field("seq", self.seq);
        w.field("gw", &self.gateway.id);
        w.field("mac", self.gateway.mac);
        match &self.body {
            FeedBody::Login(login) => {
                w.optional("addr", login.public_addr);
                w.field("fxs", login.fxs_ports);
                w.field("fxo", login.fxo_ports);
                w.field("isdn", login.isdn_channels);
                w.field("callref", login.call_ref);
                w.field("clock", &login.clock);
            }
            FeedBody::Logout { reason } => w.optional("reason", reason.as_ref()),
            FeedBody::KeepAlive { clock } => w.optional("clock", clock.as_ref()),
            FeedBody::Call(event) => {
                w.field("ref", event.call_ref);
                w.optional("port", event.port);
                w.optional("pport", event.pstn_port);
                w.field("at", &event.at);
                match &event.kind {
                    CallEventKind::Dial { digits } | CallEventKind::PstnDial { digits } => {
                        w.field("digits", digits)
                    }
                    CallEventKind::Talk { codec } => w.optional("codec", codec.as_ref()),
                    CallEventKind::CallIn { caller_id }
                    | CallEventKind::PstnCallIn { caller_id } => {
                        w.optional("cid", caller_id.as_ref())
                    }
                    CallEventKind::CallInReject { caller_id, reason } => {
                        w.optional("cid", caller_id.as_ref());
                        w.optional("reason", reason.as_ref());
                    }
                    CallEventKind::CallOutFail { reason } => w.optional("reason", reason.as_ref()),
                    CallEventKind::HookOff
                    | CallEventKind::RingBack
                    | CallEventKind::HookOn
                    | CallEventKind::PstnHookOff
                    | CallEventKind::PstnConnected
                    | CallEventKind::RemoteHookOn
                    | CallEventKind::PstnHookOn => {}
                }
            }
        }
        w.finish()
    }
}

impl FeedReply {
    /// The line for this answer, without its terminator; [`parse_reply`]
    /// reads it back.
    pub fn to_line(&self) -> String {
        match self {
            FeedReply::Ok { seq } => {
                let mut w = LineWriter::new("OK");
                w.field("seq", seq);
                w.finish()
            }
            FeedReply::Err { seq, reason } => {
                let mut w = LineWriter::new("ERR");
                w.optional("seq", seq.as_ref());
                w.field("reason", reason);
                w.finish()
            }
        }
    }
}
