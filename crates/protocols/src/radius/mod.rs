//! RADIUS accounting as VoIP gateways send it: the packet format of
//! RFC 2865 §3/§5, the Accounting-Request and Accounting-Response
//! authenticators of RFC 2866 §3, and what cdrhub reads of an
//! Accounting-Request, Cisco's vendor-9 voice attributes included
//! (`h323-setup-time`, `h323-disconnect-cause`, `Cisco-AVPair`, ...).
//!
//! [`decode`] checks a datagram's lengths and splits it into raw
//! [`Attribute`]s; [`verify_accounting_request`] checks the Request
//! Authenticator against the shared secret; [`accounting_response`] builds
//! the answer a NAS waits for; [`parse_accounting`] reads the fields.
//! [`accounting_request`] and [`vsa`] encode (tests, the load generator).
//! Nothing here does I/O, reads the clock, or panics on a datagram.

mod accounting;
mod cisco_time;
mod packet;

pub use accounting::{Accounting, CiscoVoice, parse_accounting};
pub use cisco_time::parse_cisco_time;
pub use packet::{accounting_request, accounting_response, decode, verify_accounting_request, vsa};

/// Access-Request (RFC 2865 §4.1); a gateway sends it for authorisation,
/// the accounting server does not answer it.
pub const ACCESS_REQUEST: u8 = 1;
/// Accounting-Request (RFC 2866 §4.1).
pub const ACCOUNTING_REQUEST: u8 = 4;
/// Accounting-Response (RFC 2866 §4.2).
pub const ACCOUNTING_RESPONSE: u8 = 5;

/// Code, Identifier, Length and Authenticator (RFC 2865 §3).
pub const HEADER_LEN: usize = 20;
/// The largest packet: "The maximum length is 4096" (RFC 2865 §3).
pub const MAX_PACKET: usize = 4096;
/// The largest attribute value: the Length octet counts the two header
/// octets and is at most 255 (RFC 2865 §5).
pub const MAX_VALUE_LEN: usize = 253;

/// Attribute types read by [`parse_accounting`] (RFC 2865 §5, RFC 2866 §5,
/// RFC 2869 §5.3 for Event-Timestamp).
pub mod attr {
    pub const USER_NAME: u8 = 1;
    pub const NAS_IP_ADDRESS: u8 = 4;
    pub const NAS_PORT: u8 = 5;
    pub const SERVICE_TYPE: u8 = 6;
    pub const VENDOR_SPECIFIC: u8 = 26;
    pub const CALLED_STATION_ID: u8 = 30;
    pub const CALLING_STATION_ID: u8 = 31;
    pub const NAS_IDENTIFIER: u8 = 32;
    pub const ACCT_STATUS_TYPE: u8 = 40;
    pub const ACCT_DELAY_TIME: u8 = 41;
    pub const ACCT_INPUT_OCTETS: u8 = 42;
    pub const ACCT_OUTPUT_OCTETS: u8 = 43;
    pub const ACCT_SESSION_ID: u8 = 44;
    pub const ACCT_SESSION_TIME: u8 = 46;
    pub const ACCT_INPUT_PACKETS: u8 = 47;
    pub const ACCT_OUTPUT_PACKETS: u8 = 48;
    pub const ACCT_TERMINATE_CAUSE: u8 = 49;
    pub const EVENT_TIMESTAMP: u8 = 55;
    pub const NAS_PORT_TYPE: u8 = 61;
    pub const NAS_PORT_ID: u8 = 87;
}

/// Acct-Status-Type values (RFC 2866 §5.1).
pub mod status_type {
    pub const START: u32 = 1;
    pub const STOP: u32 = 2;
    pub const INTERIM_UPDATE: u32 = 3;
    pub const ACCOUNTING_ON: u32 = 7;
    pub const ACCOUNTING_OFF: u32 = 8;
}

/// Cisco's vendor id and the vendor-9 voice attributes (FreeRADIUS
/// `dictionary.cisco`; Cisco "RADIUS VSA Voice Implementation Guide").
pub mod cisco {
    pub const VENDOR_ID: u32 = 9;
    pub const AVPAIR: u8 = 1;
    pub const H323_REMOTE_ADDRESS: u8 = 23;
    pub const H323_CONF_ID: u8 = 24;
    pub const H323_SETUP_TIME: u8 = 25;
    pub const H323_CALL_ORIGIN: u8 = 26;
    pub const H323_CALL_TYPE: u8 = 27;
    pub const H323_CONNECT_TIME: u8 = 28;
    pub const H323_DISCONNECT_TIME: u8 = 29;
    pub const H323_DISCONNECT_CAUSE: u8 = 30;
    pub const H323_VOICE_QUALITY: u8 = 31;
    pub const H323_GW_ID: u8 = 33;
    pub const H323_INCOMING_CONF_ID: u8 = 35;
}

/// One RADIUS packet as received: the header and its attributes, raw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub code: u8,
    pub identifier: u8,
    pub authenticator: [u8; 16],
    /// In wire order; RFC 2865 §5 requires attributes of one type to keep
    /// their order.
    pub attributes: Vec<Attribute>,
}

/// One attribute: its Type octet and its value (without Type and Length).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub kind: u8,
    pub value: Vec<u8>,
}

impl Attribute {
    pub fn new(kind: u8, value: impl Into<Vec<u8>>) -> Attribute {
        Attribute {
            kind,
            value: value.into(),
        }
    }

    /// An `integer` attribute: 32 bits, big-endian (RFC 2865 §5).
    pub fn integer(kind: u8, value: u32) -> Attribute {
        Attribute::new(kind, value.to_be_bytes())
    }
}

/// Why a datagram is not a RADIUS packet: one sentence naming the problem
/// and the byte offset in the datagram where it shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed radius packet at byte {offset}: {reason}")]
pub struct RadiusError {
    pub offset: usize,
    pub reason: String,
}
