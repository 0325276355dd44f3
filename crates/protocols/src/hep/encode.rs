//! Packets to HEPv3 bytes.
//!
//! The chunks go in the order Kamailio's `siptrace` writes them
//! (`siptrace_hep.c`, `trace_send_hep3_duplicate`): family, protocol,
//! addresses, ports, seconds, microseconds, protocol type, capture id,
//! correlation id, authentication key, payload; then the other chunks, last
//! so that a repeated chunk among them stays a repeat when decoded again.

use super::{CHUNK_HEADER_LEN, HepPacket, MAGIC, MAX_V3_LEN, V3_HEADER_LEN, chunk};
use std::net::IpAddr;

/// The HEPv3 bytes of `packet`, whatever version it was decoded from;
/// [`super::decode`] reads them back as `packet` with version 3. Absent
/// fields are left out.
///
/// # Panics
///
/// When the packet would be longer than [`MAX_V3_LEN`] bytes, which its
/// 16-bit length field cannot say (a 65,000-byte payload, say).
pub fn encode_v3(packet: &HepPacket) -> Vec<u8> {
    // The fixed-width chunks take at most 112 bytes (IPv6 addresses).
    let strings = [
        packet.auth_key.as_deref().map_or(0, str::len),
        packet.correlation_id.as_deref().map_or(0, str::len),
        packet.payload.as_deref().map_or(0, <[u8]>::len),
    ];
    let others: usize = packet
        .other_chunks
        .iter()
        .map(|c| CHUNK_HEADER_LEN + c.value.len())
        .sum();
    let mut out = Vec::with_capacity(
        V3_HEADER_LEN + 112 + 3 * CHUNK_HEADER_LEN + strings.iter().sum::<usize>() + others,
    );
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[0, 0]);

    let generic = |out: &mut Vec<u8>, type_id: u16, value: &[u8]| {
        put(out, chunk::GENERIC_VENDOR, type_id, value)
    };
    if let Some(family) = packet.family {
        generic(&mut out, chunk::IP_FAMILY, &[family]);
    }
    if let Some(protocol) = packet.ip_protocol {
        generic(&mut out, chunk::IP_PROTOCOL, &[protocol]);
    }
    for (ip, v4_type, v6_type) in [
        (packet.src.ip, chunk::IPV4_SRC, chunk::IPV6_SRC),
        (packet.dst.ip, chunk::IPV4_DST, chunk::IPV6_DST),
    ] {
        match ip {
            Some(IpAddr::V4(ip)) => generic(&mut out, v4_type, &ip.octets()),
            Some(IpAddr::V6(ip)) => generic(&mut out, v6_type, &ip.octets()),
            None => {}
        }
    }
    if let Some(port) = packet.src.port {
        generic(&mut out, chunk::SRC_PORT, &port.to_be_bytes());
    }
    if let Some(port) = packet.dst.port {
        generic(&mut out, chunk::DST_PORT, &port.to_be_bytes());
    }
    if let Some(seconds) = packet.timestamp_seconds {
        generic(&mut out, chunk::TIMESTAMP_SECONDS, &seconds.to_be_bytes());
    }
    if let Some(micros) = packet.timestamp_micros {
        generic(&mut out, chunk::TIMESTAMP_MICROS, &micros.to_be_bytes());
    }
    if let Some(protocol_type) = packet.protocol_type {
        generic(&mut out, chunk::PROTOCOL_TYPE, &[protocol_type.0]);
    }
    if let Some(capture_id) = packet.capture_id {
        generic(&mut out, chunk::CAPTURE_ID, &capture_id.to_be_bytes());
    }
    if let Some(correlation_id) = &packet.correlation_id {
        generic(&mut out, chunk::CORRELATION_ID, correlation_id.as_bytes());
    }
    if let Some(auth_key) = &packet.auth_key {
        generic(&mut out, chunk::AUTH_KEY, auth_key.as_bytes());
    }
    if let Some(payload) = &packet.payload {
        generic(&mut out, chunk::PAYLOAD, payload);
    }
    for other in &packet.other_chunks {
        put(&mut out, other.vendor_id, other.type_id, &other.value);
    }

    let total = u16::try_from(out.len()).unwrap_or_else(|_| {
        panic!(
            "the HEPv3 packet would have {} bytes, more than the {MAX_V3_LEN} its length field \
             can say",
            out.len()
        )
    });
    out[MAGIC.len()..V3_HEADER_LEN].copy_from_slice(&total.to_be_bytes());
    out
}

/// Appends one chunk.
fn put(out: &mut Vec<u8>, vendor_id: u16, type_id: u16, value: &[u8]) {
    let len = u16::try_from(CHUNK_HEADER_LEN + value.len()).unwrap_or_else(|_| {
        panic!(
            "chunk {type_id:#06x} would hold {} bytes, more than a HEPv3 packet of at most \
             {MAX_V3_LEN} bytes can carry",
            value.len()
        )
    });
    out.extend_from_slice(&vendor_id.to_be_bytes());
    out.extend_from_slice(&type_id.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value);
}
