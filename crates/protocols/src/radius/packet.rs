//! Datagrams to packets and back, and the two authenticators.
//!
//! Lengths are checked before anything is read (RFC 2865 §3, §5): the
//! Length field must lie in 20..=4096 and within the datagram, octets after
//! it are padding and ignored, and every attribute's Length must be at least
//! 2 and end inside the packet. Anything else is a [`RadiusError`].

use super::{
    ACCOUNTING_REQUEST, ACCOUNTING_RESPONSE, Attribute, HEADER_LEN, MAX_PACKET, MAX_VALUE_LEN,
    Packet, RadiusError, attr,
};
use md5::{Digest, Md5};

/// Decodes one UDP datagram. Never panics.
pub fn decode(datagram: &[u8]) -> Result<Packet, RadiusError> {
    let packet = checked_packet(datagram)?;
    let mut attributes = Vec::new();
    for attribute in raw_attributes(packet) {
        let (kind, value) = attribute?;
        attributes.push(Attribute::new(kind, value));
    }
    let (code, identifier, authenticator) = header_fields(packet);
    Ok(Packet {
        code,
        identifier,
        authenticator,
        attributes,
    })
}

/// Whether `datagram` is a well-formed Accounting-Request whose Request
/// Authenticator is right for `secret` (RFC 2866 §3):
/// `MD5(Code + Identifier + Length + 16 zero octets + request attributes +
/// secret)`. False for any other code, a malformed datagram, or an empty
/// secret ("a null shared secret MUST NOT be used", RFC 2865 §3). The
/// authenticators are compared in constant time.
pub fn verify_accounting_request(datagram: &[u8], secret: &[u8]) -> bool {
    if secret.is_empty() {
        return false;
    }
    let Ok(packet) = checked_packet(datagram) else {
        return false;
    };
    if raw_attributes(packet).any(|a| a.is_err()) {
        return false;
    }
    let (code, _, received) = header_fields(packet);
    if code != ACCOUNTING_REQUEST {
        return false;
    }
    let (head, attributes) = packet.split_at(HEADER_LEN);
    let expected = md5(&[&head[..4], &[0; 16], attributes, secret]);
    constant_time_eq(&expected, &received)
}

/// The Accounting-Response to a request: no attributes, and the Response
/// Authenticator `MD5(Code + Identifier + Length + Request Authenticator +
/// Attributes + secret)` (RFC 2866 §3).
pub fn accounting_response(
    identifier: u8,
    request_authenticator: &[u8; 16],
    secret: &[u8],
) -> Vec<u8> {
    let [length_hi, length_lo] = (HEADER_LEN as u16).to_be_bytes();
    let head = [ACCOUNTING_RESPONSE, identifier, length_hi, length_lo];
    let authenticator = md5(&[&head, request_authenticator, secret]);
    let mut out = Vec::with_capacity(HEADER_LEN);
    out.extend_from_slice(&head);
    out.extend_from_slice(&authenticator);
    out
}

/// Encodes an Accounting-Request with its Request Authenticator (RFC 2866
/// §3), attributes in the order given.
///
/// # Panics
///
/// When a value is longer than [`MAX_VALUE_LEN`] or the packet would be
/// longer than [`MAX_PACKET`]: neither can be put on the wire.
pub fn accounting_request(identifier: u8, attributes: &[Attribute], secret: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        HEADER_LEN + attributes.iter().map(|a| 2 + a.value.len()).sum::<usize>(),
    );
    out.extend_from_slice(&[ACCOUNTING_REQUEST, identifier, 0, 0]);
    out.extend_from_slice(&[0; 16]);
    for attribute in attributes {
        let len = attribute.value.len();
        assert!(
            len <= MAX_VALUE_LEN,
            "attribute {} has a {len}-byte value, more than the {MAX_VALUE_LEN} bytes RADIUS allows",
            attribute.kind
        );
        out.push(attribute.kind);
        out.push((len + 2) as u8);
        out.extend_from_slice(&attribute.value);
    }
    assert!(
        out.len() <= MAX_PACKET,
        "the packet would have {} bytes, more than the {MAX_PACKET} RADIUS allows",
        out.len()
    );
    let length = (out.len() as u16).to_be_bytes();
    out[2..4].copy_from_slice(&length);
    let authenticator = md5(&[&out, secret]);
    out[4..HEADER_LEN].copy_from_slice(&authenticator);
    out
}

/// A Vendor-Specific attribute (26) holding one sub-attribute in the
/// format RFC 2865 §5.26 recommends: Vendor-Id (4 octets), Vendor type,
/// Vendor length (counting itself and the type), value.
///
/// # Panics
///
/// When `value` is longer than 247 bytes, which does not fit in one
/// attribute.
pub fn vsa(vendor: u32, vendor_type: u8, value: &[u8]) -> Attribute {
    assert!(
        value.len() <= MAX_VALUE_LEN - 6,
        "a {}-byte vendor value does not fit in one attribute",
        value.len()
    );
    let mut out = Vec::with_capacity(6 + value.len());
    out.extend_from_slice(&vendor.to_be_bytes());
    out.push(vendor_type);
    out.push((value.len() + 2) as u8);
    out.extend_from_slice(value);
    Attribute::new(attr::VENDOR_SPECIFIC, out)
}

/// The packet within the datagram (up to its Length field), once the header
/// and Length are checked; attributes are not looked at.
fn checked_packet(datagram: &[u8]) -> Result<&[u8], RadiusError> {
    let Some(header) = datagram.first_chunk::<HEADER_LEN>() else {
        return Err(error(
            datagram.len(),
            format!(
                "the datagram has {} bytes, fewer than the {HEADER_LEN}-byte header",
                datagram.len()
            ),
        ));
    };
    let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
    if length < HEADER_LEN {
        return Err(error(
            2,
            format!("the Length field says {length}, less than the {HEADER_LEN}-byte header"),
        ));
    }
    if length > MAX_PACKET {
        return Err(error(
            2,
            format!("the Length field says {length}, more than the {MAX_PACKET} bytes allowed"),
        ));
    }
    // RFC 2865 §3: a shorter datagram "MUST be silently discarded"; octets
    // beyond Length are padding.
    datagram.get(..length).ok_or_else(|| {
        error(
            2,
            format!(
                "the Length field says {length} but the datagram has only {} bytes",
                datagram.len()
            ),
        )
    })
}

/// Code, Identifier and Authenticator of a checked packet.
fn header_fields(packet: &[u8]) -> (u8, u8, [u8; 16]) {
    let mut authenticator = [0; 16];
    if let Some(bytes) = packet.get(4..HEADER_LEN) {
        authenticator.copy_from_slice(bytes);
    }
    let code = packet.first().copied().unwrap_or_default();
    let identifier = packet.get(1).copied().unwrap_or_default();
    (code, identifier, authenticator)
}

/// The attributes of a checked packet, each as (Type, value); an error
/// ends the iteration.
fn raw_attributes(packet: &[u8]) -> impl Iterator<Item = Result<(u8, &[u8]), RadiusError>> {
    let mut at = HEADER_LEN;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || at >= packet.len() {
            return None;
        }
        let kind = packet[at];
        let step = match packet.get(at + 1).map(|&l| usize::from(l)) {
            None => Err(format!(
                "attribute {kind} has no Length octet before the packet ends"
            )),
            Some(len) if len < 2 => Err(format!(
                "attribute {kind} has Length {len}, less than its 2 header octets"
            )),
            Some(len) => match packet.get(at + 2..at + len) {
                Some(value) => Ok((len, value)),
                None => Err(format!(
                    "attribute {kind} of Length {len} runs past the end of the {}-byte packet",
                    packet.len()
                )),
            },
        };
        Some(match step {
            Ok((len, value)) => {
                at += len;
                Ok((kind, value))
            }
            Err(reason) => {
                failed = true;
                Err(error(at, reason))
            }
        })
    })
}

fn error(offset: usize, reason: String) -> RadiusError {
    RadiusError { offset, reason }
}

fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut hasher = Md5::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// Compares without an early exit, so the time taken does not tell an
/// attacker how many leading octets of a forged authenticator were right.
fn constant_time_eq(a: &[u8; 16], b: &[u8; 16]) -> bool {
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}
