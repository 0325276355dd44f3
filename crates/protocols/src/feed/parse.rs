//! Reading lines into messages (docs/gateway-feed.md, "Messages from the
//! gateway" and "What the server answers"), and cutting UDP datagrams into
//! lines.

use super::text::{self, Field, Tokens, error_at};
use super::{
    CallEvent, CallEventKind, CodecInfo, FeedBody, FeedError, FeedMessage, FeedReply, GatewayClock,
    GatewayRef, Login, MAX_DIGITS_LEN, MAX_GATEWAY_ID_LEN, MAX_LINE_LEN, Mac,
};
use cdrhub_model::Timestamp;
use std::net::SocketAddr;

/// Reads one line from a gateway, its terminator removed. Never panics.
pub fn parse_line(line: &str) -> Result<FeedMessage, FeedError> {
    let mut f = Fields::new(line, text::tokenize(line)?);
    let body = match f.type_word {
        "LOGIN" => FeedBody::Login(Login {
            public_addr: f.optional("addr", address)?,
            fxs_ports: f.required("fxs", number16)?,
            fxo_ports: f.required("fxo", number16)?,
            isdn_channels: f.required("isdn", number16)?,
            call_ref: f.required("callref", number32)?,
            clock: f.required("clock", clock)?,
        }),
        "LOGOUT" => FeedBody::Logout {
            reason: f.optional("reason", text)?,
        },
        "KEEPALIVE" => FeedBody::KeepAlive {
            clock: f.optional("clock", clock)?,
        },
        _ => FeedBody::Call(call_event(&mut f)?),
    };
    let message = FeedMessage {
        seq: f.required("seq", number32)?,
        gateway: GatewayRef {
            id: f.required("gw", gateway_id)?,
            mac: f.required("mac", mac)?,
        },
        body,
    };
    f.finish()?;
    Ok(message)
}

/// Reads one answer of the server, its terminator removed. Never panics.
pub fn parse_reply(line: &str) -> Result<FeedReply, FeedError> {
    let mut f = Fields::new(line, text::tokenize(line)?);
    let reply = match f.type_word {
        "OK" => FeedReply::Ok {
            seq: f.required("seq", number32)?,
        },
        "ERR" => FeedReply::Err {
            seq: f.optional("seq", number32)?,
            reason: f.required("reason", text)?,
        },
        other => {
            return Err(error_at(
                line,
                f.type_at,
                format!("unknown answer {other:?}, expected OK or ERR"),
            ));
        }
    };
    f.finish()?;
    Ok(reply)
}

/// The lines of a UDP datagram: split at LF, a CR before it dropped, empty
/// lines skipped. A line longer than [`MAX_LINE_LEN`] or not UTF-8 is an
/// error of its own; the lines after it are still read.
pub fn split_datagram(bytes: &[u8]) -> impl Iterator<Item = Result<&str, FeedError>> {
    bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .filter_map(|(n, raw)| {
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            (!raw.is_empty()).then(|| datagram_line(raw, n + 1))
        })
}

fn datagram_line(raw: &[u8], number: usize) -> Result<&str, FeedError> {
    if raw.len() > MAX_LINE_LEN {
        return Err(FeedError {
            column: 1,
            reason: format!(
                "line {number} of the datagram is {} bytes, more than {MAX_LINE_LEN}",
                raw.len()
            ),
        });
    }
    std::str::from_utf8(raw).map_err(|e| {
        let valid = &raw[..e.valid_up_to()];
        // `valid` is UTF-8 by the error's own account.
        let column = std::str::from_utf8(valid).map_or(0, |s| s.chars().count()) + 1;
        FeedError {
            column,
            reason: format!("line {number} of the datagram is not UTF-8"),
        }
    })
}

/// The fields of call events (docs/gateway-feed.md, "Call events").
fn call_event(f: &mut Fields<'_>) -> Result<CallEvent, FeedError> {
    let kind = match f.type_word {
        "HOOK_OFF" => CallEventKind::HookOff,
        "DIAL" => CallEventKind::Dial {
            digits: f.required("digits", digits)?,
        },
        "RING_BACK" => CallEventKind::RingBack,
        "TALK" => CallEventKind::Talk {
            codec: f.optional("codec", codec)?,
        },
        "HOOK_ON" => CallEventKind::HookOn,
        "CALL_IN" => CallEventKind::CallIn {
            caller_id: f.optional("cid", text)?,
        },
        "PSTN_CALL_IN" => CallEventKind::PstnCallIn {
            caller_id: f.optional("cid", text)?,
        },
        "PSTN_HOOK_OFF" => CallEventKind::PstnHookOff,
        "PSTN_DIAL" => CallEventKind::PstnDial {
            digits: f.required("digits", digits)?,
        },
        "PSTN_CONNECTED" => CallEventKind::PstnConnected,
        "REMOTE_HOOK_ON" => CallEventKind::RemoteHookOn,
        "PSTN_HOOK_ON" => CallEventKind::PstnHookOn,
        "CALL_IN_REJECT" => CallEventKind::CallInReject {
            caller_id: f.optional("cid", text)?,
            reason: f.optional("reason", text)?,
        },
        "CALL_OUT_FAIL" => CallEventKind::CallOutFail {
            reason: f.optional("reason", text)?,
        },
        other => {
            return Err(error_at(
                f.line,
                f.type_at,
                format!("unknown message type {other:?}"),
            ));
        }
    };
    // A refused call never had a port (the seed's "Call in reject" row).
    let event_port = if matches!(kind, CallEventKind::CallInReject { .. }) {
        f.optional("port", port)?
    } else {
        Some(f.required("port", port)?)
    };
    Ok(CallEvent {
        call_ref: f.required("ref", number32)?,
        port: event_port,
        pstn_port: f.optional("pport", port)?,
        at: f.required("at", clock)?,
        kind,
    })
}

/// The fields of one line, each to be taken once by the message it belongs
/// to; a field no message took is an error.
struct Fields<'a> {
    line: &'a str,
    type_word: &'a str,
    type_at: usize,
    fields: Vec<Field<'a>>,
    taken: Vec<bool>,
}

/// Reads a value; the error completes "`key` ...".
type Reader<T> = fn(&str) -> Result<T, String>;

impl<'a> Fields<'a> {
    fn new(line: &'a str, tokens: Tokens<'a>) -> Self {
        Fields {
            line,
            type_word: tokens.type_word,
            type_at: tokens.type_at,
            taken: vec![false; tokens.fields.len()],
            fields: tokens.fields,
        }
    }

    fn optional<T>(&mut self, key: &str, read: Reader<T>) -> Result<Option<T>, FeedError> {
        let Some(n) = self.fields.iter().position(|f| f.key == key) else {
            return Ok(None);
        };
        self.taken[n] = true;
        let field = &self.fields[n];
        read(&field.value)
            .map(Some)
            .map_err(|reason| error_at(self.line, field.value_at, format!("{key} {reason}")))
    }

    fn required<T>(&mut self, key: &str, read: Reader<T>) -> Result<T, FeedError> {
        self.optional(key, read)?.ok_or_else(|| {
            error_at(
                self.line,
                self.type_at,
                format!("{} has no {key} field", self.type_word),
            )
        })
    }

    fn finish(self) -> Result<(), FeedError> {
        match self
            .fields
            .iter()
            .zip(&self.taken)
            .find(|(_, taken)| !**taken)
        {
            Some((field, _)) => Err(error_at(
                self.line,
                field.key_at,
                format!("{} takes no field {}", self.type_word, field.key),
            )),
            None => Ok(()),
        }
    }
}

/// Decimal digits only: `str::parse` alone would take a `+`.
fn decimal<T: std::str::FromStr>(value: &str) -> Option<T> {
    value
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| value.parse().ok())
        .flatten()
}

fn number32(value: &str) -> Result<u32, String> {
    decimal(value)
        .ok_or_else(|| format!("must be a decimal number of at most 32 bits, not {value:?}"))
}

fn number16(value: &str) -> Result<u16, String> {
    decimal(value)
        .ok_or_else(|| format!("must be a decimal number of at most 16 bits, not {value:?}"))
}

fn port(value: &str) -> Result<u16, String> {
    decimal(value)
        .filter(|&p| p > 0)
        .ok_or_else(|| format!("must be a port number from 1 to 65535, not {value:?}"))
}

fn gateway_id(value: &str) -> Result<String, String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if value.len() <= MAX_GATEWAY_ID_LEN && value.chars().all(allowed) {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "must be 1 to {MAX_GATEWAY_ID_LEN} of A-Z a-z 0-9 . _ -, not {value:?}"
        ))
    }
}

fn mac(value: &str) -> Result<Mac, String> {
    if value.len() != 12 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("must be 12 hexadecimal digits, not {value:?}"));
    }
    let mut mac = [0u8; 6];
    for (n, byte) in mac.iter_mut().enumerate() {
        // Twelve ASCII hex digits: every pair is a byte.
        *byte = u8::from_str_radix(&value[2 * n..2 * n + 2], 16).unwrap_or(0);
    }
    Ok(Mac(mac))
}

fn address(value: &str) -> Result<SocketAddr, String> {
    value.parse().map_err(|_| {
        format!(
            "must be an address such as 61.222.171.22:2348 or [2001:db8::1]:2348, not {value:?}"
        )
    })
}

fn digits(value: &str) -> Result<String, String> {
    let dialable = |c: char| c.is_ascii_digit() || "*#+ABCD,".contains(c);
    if value.chars().count() <= MAX_DIGITS_LEN && value.chars().all(dialable) {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "must be 1 to {MAX_DIGITS_LEN} of 0-9 * # + A B C D and ',', not {value:?}"
        ))
    }
}

/// A clock without a zone is the gateway's wall clock, read as UTC; one
/// that is not a time at all is kept as text, never an error.
fn clock(value: &str) -> Result<GatewayClock, String> {
    let read =
        Timestamp::parse_rfc3339(value).or_else(|_| Timestamp::parse_rfc3339(&format!("{value}Z")));
    Ok(match read {
        Ok(time) => GatewayClock::Read(time),
        Err(_) => GatewayClock::Unread(value.to_owned()),
    })
}

/// `C(18) M(17)` as the seed prints it, else the text as sent.
fn codec(value: &str) -> Result<CodecInfo, String> {
    fn code(part: &str, letter: char) -> Option<u16> {
        decimal(
            part.strip_prefix(letter)?
                .strip_prefix('(')?
                .strip_suffix(')')?,
        )
    }
    let codes = value.split_once(' ').and_then(|(c, m)| {
        Some(CodecInfo::Codes {
            c: code(c, 'C')?,
            m: code(m, 'M')?,
        })
    });
    Ok(codes.unwrap_or_else(|| CodecInfo::Other(value.to_owned())))
}

fn text(value: &str) -> Result<String, String> {
    Ok(value.to_owned())
}
