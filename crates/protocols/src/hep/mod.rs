//! HEP, the Homer Encapsulation Protocol: how SIP servers (Kamailio
//! `siptrace`, OpenSIPS `proto_hep`, FreeSWITCH, Asterisk) and capture
//! agents mirror the signalling they see to a collector, each message
//! wrapped with its addresses, ports, capture time and the capturing node.
//!
//! Two layouts exist:
//! - HEPv3 (HEP3 Network Protocol Specification, sipcapture/HEP): `HEP3`,
//!   a 16-bit total length, then chunks of vendor id, type id, length
//!   (counting the chunk's own 6 header bytes) and value, all big-endian.
//!   Self-delimiting, so it also travels over TCP.
//! - HEPv1 and HEPv2, a fixed C header (`struct hep_hdr`, `hep_iphdr` /
//!   `hep_ip6hdr`, and for v2 `hep_timehdr`, in Kamailio's
//!   `sipcapture/hep.h`) followed by the SIP message up to the end of the
//!   datagram: UDP only.
//!
//! [`decode`] reads one packet of any version into a [`HepPacket`] that
//! borrows its payload from the input; [`frame_len`] cuts HEPv3 packets out
//! of a TCP stream; [`encode_v3`] writes a packet (tests, the load
//! generator). Nothing here does I/O, reads the clock, or panics on any
//! bytes.

mod decode;
mod encode;

pub use decode::{decode, frame_len};
pub use encode::encode_v3;

use cdrhub_model::Timestamp;
use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// The first four bytes of every HEPv3 packet.
pub const MAGIC: &[u8; 4] = b"HEP3";
/// `HEP3` and the 16-bit total length.
pub const V3_HEADER_LEN: usize = 6;
/// Vendor id, type id and length of a chunk, each 16 bits.
pub const CHUNK_HEADER_LEN: usize = 6;
/// The largest HEPv3 packet: its length field has 16 bits.
pub const MAX_V3_LEN: usize = u16::MAX as usize;
/// `struct hep_hdr`: version, header length, family, protocol, ports.
pub const V2_HEADER_LEN: usize = 8;
/// `struct hep_timehdr` as C lays it out: seconds, microseconds, a 16-bit
/// capture id and 2 bytes of padding that round the struct to 12.
pub const V2_TIME_HEADER_LEN: usize = 12;

/// The chunk types of vendor 0, the generic chunks (HEP3 specification,
/// "Chunk types"); the ones [`decode`] reads, and a few it keeps in
/// [`HepPacket::other_chunks`].
pub mod chunk {
    /// The vendor id of the generic chunks.
    pub const GENERIC_VENDOR: u16 = 0x0000;
    /// `uint8`, an address family: 2 IPv4, 10 IPv6 (Linux `AF_INET6`).
    pub const IP_FAMILY: u16 = 0x0001;
    /// `uint8`, an IP protocol number: 17 UDP, 6 TCP.
    pub const IP_PROTOCOL: u16 = 0x0002;
    pub const IPV4_SRC: u16 = 0x0003;
    pub const IPV4_DST: u16 = 0x0004;
    pub const IPV6_SRC: u16 = 0x0005;
    pub const IPV6_DST: u16 = 0x0006;
    /// `uint16`, the source port (UDP, TCP, SCTP).
    pub const SRC_PORT: u16 = 0x0007;
    pub const DST_PORT: u16 = 0x0008;
    /// `uint32`, seconds since the epoch.
    pub const TIMESTAMP_SECONDS: u16 = 0x0009;
    /// `uint32`, microseconds added to the seconds.
    pub const TIMESTAMP_MICROS: u16 = 0x000a;
    /// `uint8`, what the payload is: see [`super::ProtocolType`].
    pub const PROTOCOL_TYPE: u16 = 0x000b;
    /// `uint32`, the capture agent (node) id.
    pub const CAPTURE_ID: u16 = 0x000c;
    /// `uint16`, a keep-alive timer; not read, kept in other chunks.
    pub const KEEP_ALIVE_TIMER: u16 = 0x000d;
    /// Octet string, the password the collector may require.
    pub const AUTH_KEY: u16 = 0x000e;
    /// The captured message, as it was on the wire.
    pub const PAYLOAD: u16 = 0x000f;
    /// The captured message, gzip-compressed.
    pub const COMPRESSED_PAYLOAD: u16 = 0x0010;
    /// Octet string tying the packet to others (a Call-ID for RTCP
    /// reports and logs).
    pub const CORRELATION_ID: u16 = 0x0011;
}

/// Address families as HEP carries them (Linux `AF_INET`, `AF_INET6`;
/// Kamailio and OpenSIPS copy `sa_family` into the packet).
pub mod family {
    pub const IPV4: u8 = 2;
    pub const IPV6: u8 = 10;
}

/// IP protocol numbers (IANA) seen in HEP packets.
pub mod ip_protocol {
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    /// `IPPROTO_IDP`, which Kamailio sends for SIP over TLS, WS and WSS
    /// (`siptrace_hep.c`, `pipport2su`: "fake proto type").
    pub const KAMAILIO_TLS: u8 = 22;
    pub const SCTP: u8 = 132;
}

/// Which HEP layout a packet came in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum HepVersion {
    V1,
    V2,
    #[default]
    V3,
}

impl HepVersion {
    pub fn number(self) -> u8 {
        match self {
            HepVersion::V1 => 1,
            HepVersion::V2 => 2,
            HepVersion::V3 => 3,
        }
    }
}

/// What the payload of a packet is (chunk 0x000b). Only SIP is common;
/// any other value is kept as the number sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProtocolType(pub u8);

impl ProtocolType {
    pub const SIP: ProtocolType = ProtocolType(1);
    /// RTCP reports as JSON (Kamailio `sipcapture` stores type 5 as
    /// `rtcp_capture`).
    pub const RTCP: ProtocolType = ProtocolType(5);
    /// Log lines (Kamailio `sipcapture`: type 100 is `logs_capture`).
    pub const LOG: ProtocolType = ProtocolType(100);
}

/// One side of the captured message: an address and a port, each absent
/// when the packet does not carry it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub ip: Option<IpAddr>,
    pub port: Option<u16>,
}

impl Endpoint {
    pub fn new(ip: impl Into<IpAddr>, port: u16) -> Endpoint {
        Endpoint {
            ip: Some(ip.into()),
            port: Some(port),
        }
    }

    /// The address and port, when the packet carries both.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        Some(SocketAddr::new(self.ip?, self.port?))
    }
}

impl fmt::Display for Endpoint {
    /// `192.0.2.10:5060`, `[2001:db8::1]:5060`, `?` for what is absent.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            Some(IpAddr::V4(ip)) => write!(f, "{ip}")?,
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
            None => f.write_str("?")?,
        }
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => f.write_str(":?"),
        }
    }
}

/// A chunk [`decode`] does not read: vendor-specific, a generic type it
/// has no field for, or a repeat of a chunk already read (the first one
/// wins). Kept in wire order so [`encode_v3`] writes it back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Chunk<'a> {
    pub vendor_id: u16,
    pub type_id: u16,
    /// The value, without the 6 header bytes.
    pub value: Cow<'a, [u8]>,
}

impl Chunk<'_> {
    pub fn into_owned(self) -> Chunk<'static> {
        Chunk {
            vendor_id: self.vendor_id,
            type_id: self.type_id,
            value: Cow::Owned(self.value.into_owned()),
        }
    }
}

/// One HEP packet. Decoding borrows the payload and the strings from the
/// input (no copy); [`HepPacket::into_owned`] makes a packet that outlives
/// it.
///
/// HEPv1 and HEPv2 always carry a family, a protocol, both addresses and
/// both ports (v2 also the time and a 16-bit capture id) and a SIP
/// payload, but no protocol type, authentication key or correlation id.
/// In HEPv3 every field is a chunk the sender may leave out: absent is
/// `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct HepPacket<'a> {
    pub version: HepVersion,
    /// Address family: [`family::IPV4`] or [`family::IPV6`] from the
    /// usual senders, any byte in HEPv3.
    pub family: Option<u8>,
    /// IP protocol number of the captured message ([`ip_protocol`]).
    pub ip_protocol: Option<u8>,
    pub src: Endpoint,
    pub dst: Endpoint,
    /// When the message was captured, seconds since the epoch.
    pub timestamp_seconds: Option<u32>,
    /// Microseconds to add to [`HepPacket::timestamp_seconds`].
    pub timestamp_micros: Option<u32>,
    pub protocol_type: Option<ProtocolType>,
    /// The capturing node (Kamailio `hep_capture_id`, 2001 by default).
    pub capture_id: Option<u32>,
    pub auth_key: Option<Cow<'a, str>>,
    pub correlation_id: Option<Cow<'a, str>>,
    /// The captured message (a SIP request or response for
    /// [`ProtocolType::SIP`]).
    pub payload: Option<Cow<'a, [u8]>>,
    /// Chunks not read into a field, in wire order.
    pub other_chunks: Vec<Chunk<'a>>,
}

impl HepPacket<'_> {
    /// The capture time in milliseconds, the microseconds (0 when absent)
    /// added to the seconds; `None` without the seconds.
    pub fn timestamp(&self) -> Option<Timestamp> {
        let seconds = i64::from(self.timestamp_seconds?);
        let micros = i64::from(self.timestamp_micros.unwrap_or(0));
        Some(Timestamp::from_millis(seconds * 1000 + micros / 1000))
    }

    /// A copy that borrows nothing from the decoded bytes.
    pub fn into_owned(self) -> HepPacket<'static> {
        HepPacket {
            version: self.version,
            family: self.family,
            ip_protocol: self.ip_protocol,
            src: self.src,
            dst: self.dst,
            timestamp_seconds: self.timestamp_seconds,
            timestamp_micros: self.timestamp_micros,
            protocol_type: self.protocol_type,
            capture_id: self.capture_id,
            auth_key: self.auth_key.map(|k| Cow::Owned(k.into_owned())),
            correlation_id: self.correlation_id.map(|c| Cow::Owned(c.into_owned())),
            payload: self.payload.map(|p| Cow::Owned(p.into_owned())),
            other_chunks: self
                .other_chunks
                .into_iter()
                .map(Chunk::into_owned)
                .collect(),
        }
    }
}

/// Why bytes are not a HEP packet this decoder reads: one sentence naming
/// the problem, and the byte offset in the packet (or stream buffer) where
/// it shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} HEP packet at byte {offset}: {reason}")]
pub struct HepError {
    pub kind: HepErrorKind,
    pub offset: usize,
    pub reason: String,
}

/// Whether the sender broke the format, or used a part of it this decoder
/// does not implement (the operator can change the sender's settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HepErrorKind {
    Malformed,
    Unsupported,
}

impl fmt::Display for HepErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HepErrorKind::Malformed => "malformed",
            HepErrorKind::Unsupported => "unsupported",
        })
    }
}

/// The name of a generic chunk type this module knows, for error messages.
fn chunk_name(type_id: u16) -> Option<&'static str> {
    Some(match type_id {
        chunk::IP_FAMILY => "IP family",
        chunk::IP_PROTOCOL => "IP protocol",
        chunk::IPV4_SRC => "IPv4 source address",
        chunk::IPV4_DST => "IPv4 destination address",
        chunk::IPV6_SRC => "IPv6 source address",
        chunk::IPV6_DST => "IPv6 destination address",
        chunk::SRC_PORT => "source port",
        chunk::DST_PORT => "destination port",
        chunk::TIMESTAMP_SECONDS => "timestamp seconds",
        chunk::TIMESTAMP_MICROS => "timestamp microseconds",
        chunk::PROTOCOL_TYPE => "protocol type",
        chunk::CAPTURE_ID => "capture id",
        chunk::AUTH_KEY => "authentication key",
        chunk::PAYLOAD => "payload",
        chunk::COMPRESSED_PAYLOAD => "compressed payload",
        chunk::CORRELATION_ID => "correlation id",
        _ => return None,
    })
}
