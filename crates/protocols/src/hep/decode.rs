//! Bytes to packets, and HEPv3 framing on a stream.
//!
//! HEPv3 (HEP3 specification): every length is checked before anything is
//! read. The total length must be at least the 6-byte header and within the
//! bytes given (bytes after it are ignored); each chunk's length must cover
//! its own 6-byte header and end inside the packet; a generic chunk of fixed
//! width must have exactly that width. A chunk that repeats one already
//! read is kept in `other_chunks`, the first one wins.
//!
//! HEPv1/v2 (Kamailio `sipcapture/hep.h`, `hepv2_received`; OpenSIPS
//! `proto_hep/hep.c`, `unpack_hepv12`): the header length byte counts
//! `hep_hdr` and the two addresses, not the v2 time header, as both
//! projects' senders write it and OpenSIPS requires. The v2 seconds,
//! microseconds and capture id are in the sender's byte order, which
//! Kamailio makes little-endian (`to_le`); ports are big-endian.

use super::{
    CHUNK_HEADER_LEN, Chunk, Endpoint, HepError, HepErrorKind, HepPacket, HepVersion, MAGIC,
    ProtocolType, V2_HEADER_LEN, V2_TIME_HEADER_LEN, V3_HEADER_LEN, chunk, chunk_name, family,
};
use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Decodes one packet of any version: a whole UDP datagram, or one frame
/// [`frame_len`] cut from a TCP stream. Never panics.
pub fn decode(packet: &[u8]) -> Result<HepPacket<'_>, HepError> {
    match packet.first() {
        None => Err(malformed(0, "the packet is empty".to_owned())),
        Some(1) => decode_v1_v2(packet, HepVersion::V1),
        Some(2) => decode_v1_v2(packet, HepVersion::V2),
        Some(_) if starts_like_magic(packet) => decode_v3(packet),
        Some(_) => Err(not_hep(packet)),
    }
}

/// How many bytes the HEPv3 packet at the start of `buf` takes, once `buf`
/// holds its 6-byte header (it may hold less of the packet than that):
/// `Ok(None)` while the header is incomplete, an error when the bytes
/// cannot start a HEPv3 packet and the stream is out of step for good.
/// HEPv1/v2 packets have no total length and cannot be framed; only HEPv3
/// goes over TCP (OpenSIPS `proto_hep` docs: "on TCP only HEPv3").
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, HepError> {
    match buf.first() {
        None => return Ok(None),
        Some(&version @ (1 | 2)) => {
            return Err(HepError {
                kind: HepErrorKind::Unsupported,
                offset: 0,
                reason: format!(
                    "a HEPv{version} packet carries no total length, so a stream of them \
                     cannot be cut into packets; only HEPv3 can be sent over TCP"
                ),
            });
        }
        Some(_) if !starts_like_magic(buf) => return Err(not_hep(buf)),
        Some(_) => {}
    }
    match buf.first_chunk::<V3_HEADER_LEN>() {
        None => Ok(None),
        Some(header) => total_length(header).map(Some),
    }
}

/// Whether `bytes` start with `HEP3`, or with as much of it as they hold.
fn starts_like_magic(bytes: &[u8]) -> bool {
    let seen = bytes.len().min(MAGIC.len());
    bytes[..seen] == MAGIC[..seen]
}

fn not_hep(bytes: &[u8]) -> HepError {
    let shown: Vec<String> = bytes
        .iter()
        .take(MAGIC.len())
        .map(|b| format!("{b:#04x}"))
        .collect();
    malformed(
        0,
        format!(
            "not a HEP packet: it starts with {}, neither \"HEP3\" nor a HEPv1/v2 version byte",
            shown.join(" ")
        ),
    )
}

/// The total length of a HEPv3 header, checked to cover the header.
fn total_length(header: &[u8; V3_HEADER_LEN]) -> Result<usize, HepError> {
    let total = usize::from(u16::from_be_bytes([header[4], header[5]]));
    if total < V3_HEADER_LEN {
        return Err(malformed(
            4,
            format!("the length field says {total}, less than the {V3_HEADER_LEN}-byte header"),
        ));
    }
    Ok(total)
}

/// A packet that starts with `HEP3`, or with as much of it as it holds.
fn decode_v3(bytes: &[u8]) -> Result<HepPacket<'_>, HepError> {
    let Some(header) = bytes.first_chunk::<V3_HEADER_LEN>() else {
        return Err(malformed(
            bytes.len(),
            format!(
                "the packet has {} bytes, fewer than the {V3_HEADER_LEN}-byte HEPv3 header",
                bytes.len()
            ),
        ));
    };
    let total = total_length(header)?;
    let Some(packet) = bytes.get(..total) else {
        return Err(malformed(
            4,
            format!(
                "the packet says it is {total} bytes but {} arrived",
                bytes.len()
            ),
        ));
    };
    let mut hep = HepPacket {
        version: HepVersion::V3,
        ..HepPacket::default()
    };
    let mut at = V3_HEADER_LEN;
    while at < total {
        let Some(head) = packet
            .get(at..at + CHUNK_HEADER_LEN)
            .and_then(|h| <&[u8; CHUNK_HEADER_LEN]>::try_from(h).ok())
        else {
            return Err(malformed(
                at,
                format!(
                    "a chunk header needs {CHUNK_HEADER_LEN} bytes but only {} remain of the \
                     {total}-byte packet",
                    total - at
                ),
            ));
        };
        let vendor_id = u16::from_be_bytes([head[0], head[1]]);
        let type_id = u16::from_be_bytes([head[2], head[3]]);
        let len = usize::from(u16::from_be_bytes([head[4], head[5]]));
        let name = || describe(vendor_id, type_id);
        if len < CHUNK_HEADER_LEN {
            return Err(malformed(
                at,
                format!(
                    "{} says it is {len} bytes long, less than its {CHUNK_HEADER_LEN}-byte header",
                    name()
                ),
            ));
        }
        let Some(value) = packet.get(at + CHUNK_HEADER_LEN..at + len) else {
            return Err(malformed(
                at,
                format!(
                    "{} is {len} bytes long and runs past the end of the {total}-byte packet",
                    name()
                ),
            ));
        };
        let read = if vendor_id == chunk::GENERIC_VENDOR {
            read_generic(&mut hep, type_id, value, at)?
        } else {
            false
        };
        if !read {
            hep.other_chunks.push(Chunk {
                vendor_id,
                type_id,
                value: Cow::Borrowed(value),
            });
        }
        at += len;
    }
    Ok(hep)
}

/// Reads a generic chunk into its field; false when the type has no field
/// or the field is already set.
fn read_generic<'a>(
    hep: &mut HepPacket<'a>,
    type_id: u16,
    value: &'a [u8],
    at: usize,
) -> Result<bool, HepError> {
    let read = match type_id {
        chunk::IP_FAMILY => fill(
            &mut hep.family,
            u8::from_be_bytes(fixed(type_id, value, at)?),
        ),
        chunk::IP_PROTOCOL => fill(
            &mut hep.ip_protocol,
            u8::from_be_bytes(fixed(type_id, value, at)?),
        ),
        chunk::IPV4_SRC => fill(&mut hep.src.ip, v4(fixed(type_id, value, at)?)),
        chunk::IPV4_DST => fill(&mut hep.dst.ip, v4(fixed(type_id, value, at)?)),
        chunk::IPV6_SRC => fill(&mut hep.src.ip, v6(fixed(type_id, value, at)?)),
        chunk::IPV6_DST => fill(&mut hep.dst.ip, v6(fixed(type_id, value, at)?)),
        chunk::SRC_PORT => fill(
            &mut hep.src.port,
            u16::from_be_bytes(fixed(type_id, value, at)?),
        ),
        chunk::DST_PORT => fill(
            &mut hep.dst.port,
            u16::from_be_bytes(fixed(type_id, value, at)?),
        ),
        chunk::TIMESTAMP_SECONDS => fill(
            &mut hep.timestamp_seconds,
            u32::from_be_bytes(fixed(type_id, value, at)?),
        ),
        chunk::TIMESTAMP_MICROS => fill(
            &mut hep.timestamp_micros,
            u32::from_be_bytes(fixed(type_id, value, at)?),
        ),
        chunk::PROTOCOL_TYPE => fill(
            &mut hep.protocol_type,
            ProtocolType(u8::from_be_bytes(fixed(type_id, value, at)?)),
        ),
        chunk::CAPTURE_ID => fill(
            &mut hep.capture_id,
            u32::from_be_bytes(fixed(type_id, value, at)?),
        ),
        chunk::AUTH_KEY => fill(&mut hep.auth_key, text(type_id, value, at)?),
        chunk::CORRELATION_ID => fill(&mut hep.correlation_id, text(type_id, value, at)?),
        chunk::PAYLOAD => fill(&mut hep.payload, Cow::Borrowed(value)),
        // The specification says gzip; no decompressor is among this
        // crate's dependencies.
        chunk::COMPRESSED_PAYLOAD => {
            return Err(HepError {
                kind: HepErrorKind::Unsupported,
                offset: at,
                reason: format!(
                    "{} holds a gzip-compressed payload of {} bytes, which this decoder cannot \
                     decompress; turn payload compression off at the sender",
                    describe(chunk::GENERIC_VENDOR, type_id),
                    value.len()
                ),
            });
        }
        _ => false,
    };
    Ok(read)
}

/// Sets an empty field; false when it is already set.
fn fill<T>(field: &mut Option<T>, value: T) -> bool {
    if field.is_some() {
        return false;
    }
    *field = Some(value);
    true
}

/// The value of a fixed-width chunk.
fn fixed<const N: usize>(type_id: u16, value: &[u8], at: usize) -> Result<[u8; N], HepError> {
    <[u8; N]>::try_from(value).map_err(|_| {
        malformed(
            at,
            format!(
                "{} holds {} bytes, expected {N}",
                describe(chunk::GENERIC_VENDOR, type_id),
                value.len()
            ),
        )
    })
}

/// The value of a string chunk, which cdrhub reads as UTF-8 text (the
/// specification says octet string; every known sender puts text there).
fn text(type_id: u16, value: &[u8], at: usize) -> Result<Cow<'_, str>, HepError> {
    std::str::from_utf8(value).map(Cow::Borrowed).map_err(|e| {
        malformed(
            at + CHUNK_HEADER_LEN + e.valid_up_to(),
            format!(
                "{} is not UTF-8 text: byte {} of its value is invalid",
                describe(chunk::GENERIC_VENDOR, type_id),
                e.valid_up_to()
            ),
        )
    })
}

fn v4(octets: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(octets))
}

fn v6(octets: [u8; 16]) -> IpAddr {
    IpAddr::V6(Ipv6Addr::from(octets))
}

/// `chunk 0x0007 (source port)`, `chunk 0x0020`, `chunk 0x0002 of vendor
/// 0x0003`.
fn describe(vendor_id: u16, type_id: u16) -> String {
    match (vendor_id, chunk_name(type_id)) {
        (chunk::GENERIC_VENDOR, Some(name)) => format!("chunk {type_id:#06x} ({name})"),
        (chunk::GENERIC_VENDOR, None) => format!("chunk {type_id:#06x}"),
        (vendor, _) => format!("chunk {type_id:#06x} of vendor {vendor:#06x}"),
    }
}

/// A HEPv1 or HEPv2 packet: `hep_hdr`, the two addresses, for v2
/// `hep_timehdr`, then the SIP message to the end of the datagram.
fn decode_v1_v2(packet: &[u8], version: HepVersion) -> Result<HepPacket<'_>, HepError> {
    let v = version.number();
    let Some(header) = packet.first_chunk::<V2_HEADER_LEN>() else {
        return Err(malformed(
            packet.len(),
            format!(
                "the packet has {} bytes, fewer than the {V2_HEADER_LEN}-byte HEPv{v} header",
                packet.len()
            ),
        ));
    };
    let [_, header_len, address_family, protocol, sp0, sp1, dp0, dp1] = *header;
    let (address_len, family_name) = match address_family {
        family::IPV4 => (4, "IPv4"),
        family::IPV6 => (16, "IPv6"),
        other => {
            return Err(malformed(
                2,
                format!(
                    "the address family is {other}, neither {} (IPv4) nor {} (IPv6)",
                    family::IPV4,
                    family::IPV6
                ),
            ));
        }
    };
    let addresses_end = V2_HEADER_LEN + 2 * address_len;
    if usize::from(header_len) != addresses_end {
        return Err(malformed(
            1,
            format!(
                "the header length byte says {header_len}, expected {addresses_end} for \
                 {family_name} addresses"
            ),
        ));
    }
    let payload_at = match version {
        HepVersion::V2 => addresses_end + V2_TIME_HEADER_LEN,
        _ => addresses_end,
    };
    let Some(payload) = packet.get(payload_at..) else {
        return Err(malformed(
            packet.len(),
            format!(
                "the packet has {} bytes, fewer than the {payload_at}-byte HEPv{v} header with \
                 {family_name} addresses",
                packet.len()
            ),
        ));
    };
    let address = |at: usize| match address_len {
        4 => v4(array(packet, at)),
        _ => v6(array(packet, at)),
    };
    let mut hep = HepPacket {
        version,
        family: Some(address_family),
        ip_protocol: Some(protocol),
        src: Endpoint::new(address(V2_HEADER_LEN), u16::from_be_bytes([sp0, sp1])),
        dst: Endpoint::new(
            address(V2_HEADER_LEN + address_len),
            u16::from_be_bytes([dp0, dp1]),
        ),
        payload: Some(Cow::Borrowed(payload)),
        ..HepPacket::default()
    };
    if version == HepVersion::V2 {
        hep.timestamp_seconds = Some(u32::from_le_bytes(array(packet, addresses_end)));
        hep.timestamp_micros = Some(u32::from_le_bytes(array(packet, addresses_end + 4)));
        let capture_id = u16::from_le_bytes(array(packet, addresses_end + 8));
        hep.capture_id = Some(u32::from(capture_id));
    }
    Ok(hep)
}

/// `N` bytes at `at`, which the caller has checked are there (zeros
/// otherwise, never a panic).
fn array<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    bytes
        .get(at..at + N)
        .and_then(|b| <[u8; N]>::try_from(b).ok())
        .unwrap_or([0; N])
}

fn malformed(offset: usize, reason: String) -> HepError {
    HepError {
        kind: HepErrorKind::Malformed,
        offset,
        reason,
    }
}
