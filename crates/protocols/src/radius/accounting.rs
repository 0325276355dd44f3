//! What cdrhub reads of an Accounting-Request (RFC 2866 §5, RFC 2865 §5)
//! and of Cisco's vendor-9 voice attributes ("RADIUS VSA Voice
//! Implementation Guide"; numbers from FreeRADIUS `dictionary.cisco`).
//!
//! Reading is lenient: a value of the wrong size, text that is not UTF-8,
//! a second copy of a single-valued attribute, or a Vendor-Specific
//! attribute whose sub-attributes do not add up is kept in
//! [`Accounting::other`], never an error and never dropped.

use super::{Attribute, Packet, attr, cisco};
use std::net::Ipv4Addr;

/// What cdrhub reads of an Accounting-Request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accounting {
    /// Acct-Status-Type (40): 1 Start, 2 Stop, 3 Interim-Update,
    /// 7 Accounting-On, 8 Accounting-Off ([`super::status_type`]).
    pub status_type: Option<u32>,
    /// Acct-Session-Id (44).
    pub session_id: Option<String>,
    /// User-Name (1).
    pub user_name: Option<String>,
    /// NAS-IP-Address (4).
    pub nas_ip: Option<Ipv4Addr>,
    /// NAS-Identifier (32).
    pub nas_identifier: Option<String>,
    /// NAS-Port (5).
    pub nas_port: Option<u32>,
    /// NAS-Port-Type (61): 0 Async, 5 Virtual, ...
    pub nas_port_type: Option<u32>,
    /// NAS-Port-Id (87, RFC 2869 §5.17).
    pub nas_port_id: Option<String>,
    /// Calling-Station-Id (31): the calling number.
    pub calling_station_id: Option<String>,
    /// Called-Station-Id (30): the called number.
    pub called_station_id: Option<String>,
    /// Acct-Session-Time (46), seconds.
    pub session_time: Option<u32>,
    /// Acct-Delay-Time (41): seconds the NAS has been trying to send this
    /// record (RFC 2866 §5.2).
    pub delay_time: Option<u32>,
    /// Acct-Terminate-Cause (49): 1 User-Request, 2 Lost-Carrier, ...
    pub terminate_cause: Option<u32>,
    /// Acct-Input-Octets (42).
    pub input_octets: Option<u32>,
    /// Acct-Output-Octets (43).
    pub output_octets: Option<u32>,
    /// Acct-Input-Packets (47).
    pub input_packets: Option<u32>,
    /// Acct-Output-Packets (48).
    pub output_packets: Option<u32>,
    /// Service-Type (6).
    pub service_type: Option<u32>,
    /// Event-Timestamp (55, RFC 2869 §5.3): seconds since the Unix epoch on
    /// the NAS's clock when the event happened.
    pub event_timestamp: Option<u32>,
    pub cisco: CiscoVoice,
    /// Attributes (and vendor sub-attributes) not read above, kept in wire
    /// order: (vendor id, or 0 for a standard attribute, type, value). A
    /// Vendor-Specific attribute that cannot be split is kept whole as
    /// `(0, 26, value)`.
    pub other: Vec<(u32, u8, Vec<u8>)>,
}

/// Cisco voice VSAs, vendor 9. The gateway prefixes each `h323-*` value with
/// its name (`h323-call-origin=answer`); the prefix is removed here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CiscoVoice {
    /// h323-setup-time (25), raw text: [`super::parse_cisco_time`] reads it.
    pub setup_time: Option<String>,
    /// h323-connect-time (28), raw text.
    pub connect_time: Option<String>,
    /// h323-disconnect-time (29), raw text.
    pub disconnect_time: Option<String>,
    /// h323-disconnect-cause (30): the Q.850 cause in hex, as sent (`10`).
    pub disconnect_cause: Option<String>,
    /// The Q.850 cause read from `disconnect_cause` (hex `10` is 16, normal
    /// call clearing); None when that is not one hex byte.
    pub q850_cause: Option<u8>,
    /// h323-call-origin (26): `answer`, `originate` or `callback`: whether
    /// the gateway answered this call leg or placed it.
    pub call_origin: Option<String>,
    /// h323-call-type (27): `Telephony` (the PSTN leg), `VoIP`, ...
    pub call_type: Option<String>,
    /// h323-conf-id (24): the conference id shared by the legs of a call
    /// on one gateway (`931C146B 0F4411D6 AB5591F0 CBF3D765`).
    pub conf_id: Option<String>,
    /// h323-remote-address (23): the far end of a VoIP leg.
    pub remote_address: Option<String>,
    /// h323-voice-quality (31).
    pub voice_quality: Option<String>,
    /// h323-gw-id (33): the gateway's name.
    pub gw_id: Option<String>,
    /// Cisco-AVPair `call-id=...`: the SIP Call-ID of a SIP leg.
    pub call_id: Option<String>,
    /// Cisco-AVPair `h323-incoming-conf-id=...` (or the h323-incoming-conf-id
    /// attribute, 35): the conference id of the incoming leg, which ties the
    /// outgoing legs to it.
    pub incoming_conf_id: Option<String>,
    /// Every other Cisco-AVPair as (name, value), in wire order. The name is
    /// what comes before the first `=` (or `*`, Cisco's mark of an optional
    /// pair).
    pub avpairs: Vec<(String, String)>,
}

/// Reads an Accounting-Request's fields. Never fails: what cannot be read
/// is kept in [`Accounting::other`].
pub fn parse_accounting(packet: &Packet) -> Accounting {
    let mut acct = Accounting::default();
    for attribute in &packet.attributes {
        if attribute.kind == attr::VENDOR_SPECIFIC {
            read_vendor_specific(&mut acct, attribute);
        } else if !read_standard(&mut acct, attribute.kind, &attribute.value) {
            acct.other
                .push((0, attribute.kind, attribute.value.clone()));
        }
    }
    acct
}

/// Stores a standard attribute in its field; false when it is not one cdrhub
/// reads, its field is already set, or its value has the wrong form.
fn read_standard(acct: &mut Accounting, kind: u8, value: &[u8]) -> bool {
    match kind {
        attr::USER_NAME => set(&mut acct.user_name, text(value)),
        attr::NAS_IP_ADDRESS => set(
            &mut acct.nas_ip,
            <[u8; 4]>::try_from(value).ok().map(Ipv4Addr::from),
        ),
        attr::NAS_PORT => set(&mut acct.nas_port, integer(value)),
        attr::SERVICE_TYPE => set(&mut acct.service_type, integer(value)),
        attr::CALLED_STATION_ID => set(&mut acct.called_station_id, text(value)),
        attr::CALLING_STATION_ID => set(&mut acct.calling_station_id, text(value)),
        attr::NAS_IDENTIFIER => set(&mut acct.nas_identifier, text(value)),
        attr::ACCT_STATUS_TYPE => set(&mut acct.status_type, integer(value)),
        attr::ACCT_DELAY_TIME => set(&mut acct.delay_time, integer(value)),
        attr::ACCT_INPUT_OCTETS => set(&mut acct.input_octets, integer(value)),
        attr::ACCT_OUTPUT_OCTETS => set(&mut acct.output_octets, integer(value)),
        attr::ACCT_SESSION_ID => set(&mut acct.session_id, text(value)),
        attr::ACCT_SESSION_TIME => set(&mut acct.session_time, integer(value)),
        attr::ACCT_INPUT_PACKETS => set(&mut acct.input_packets, integer(value)),
        attr::ACCT_OUTPUT_PACKETS => set(&mut acct.output_packets, integer(value)),
        attr::ACCT_TERMINATE_CAUSE => set(&mut acct.terminate_cause, integer(value)),
        attr::EVENT_TIMESTAMP => set(&mut acct.event_timestamp, integer(value)),
        attr::NAS_PORT_TYPE => set(&mut acct.nas_port_type, integer(value)),
        attr::NAS_PORT_ID => set(&mut acct.nas_port_id, text(value)),
        _ => false,
    }
}

/// Splits a Vendor-Specific attribute into its sub-attributes (RFC 2865
/// §5.26: Vendor-Id, then Vendor type / Vendor length / value, any number
/// of times) and reads Cisco's. One that does not split cleanly is kept
/// whole: some vendors use other sub-attribute layouts.
fn read_vendor_specific(acct: &mut Accounting, attribute: &Attribute) {
    let Some((vendor, subs)) = sub_attributes(&attribute.value) else {
        acct.other
            .push((0, attr::VENDOR_SPECIFIC, attribute.value.clone()));
        return;
    };
    for (kind, value) in subs {
        if vendor != cisco::VENDOR_ID || !read_cisco(&mut acct.cisco, kind, value) {
            acct.other.push((vendor, kind, value.to_vec()));
        }
    }
}

/// A vendor sub-attribute: Vendor type and value.
type SubAttribute<'a> = (u8, &'a [u8]);

/// The Vendor-Id and the sub-attributes, when they exactly fill the value
/// and there is at least one.
fn sub_attributes(value: &[u8]) -> Option<(u32, Vec<SubAttribute<'_>>)> {
    let (vendor, mut rest) = value.split_first_chunk::<4>()?;
    let mut subs = Vec::new();
    while let [kind, len, tail @ ..] = rest {
        let len = usize::from(*len).checked_sub(2)?;
        if len > tail.len() {
            return None;
        }
        let (value, after) = tail.split_at(len);
        subs.push((*kind, value));
        rest = after;
    }
    if !rest.is_empty() || subs.is_empty() {
        return None;
    }
    Some((u32::from_be_bytes(*vendor), subs))
}

/// Stores a Cisco sub-attribute; false when it is not one cdrhub reads,
/// its field is already set, or it is not UTF-8 text.
fn read_cisco(voice: &mut CiscoVoice, kind: u8, value: &[u8]) -> bool {
    let Some(value) = text(value) else {
        return false;
    };
    let h323 = |name: &str| Some(strip_name(&value, name).to_owned());
    match kind {
        cisco::AVPAIR => read_avpair(voice, &value),
        cisco::H323_REMOTE_ADDRESS => set(&mut voice.remote_address, h323("h323-remote-address")),
        cisco::H323_CONF_ID => set(&mut voice.conf_id, h323("h323-conf-id")),
        cisco::H323_SETUP_TIME => set(&mut voice.setup_time, h323("h323-setup-time")),
        cisco::H323_CALL_ORIGIN => set(&mut voice.call_origin, h323("h323-call-origin")),
        cisco::H323_CALL_TYPE => set(&mut voice.call_type, h323("h323-call-type")),
        cisco::H323_CONNECT_TIME => set(&mut voice.connect_time, h323("h323-connect-time")),
        cisco::H323_DISCONNECT_TIME => {
            set(&mut voice.disconnect_time, h323("h323-disconnect-time"))
        }
        cisco::H323_DISCONNECT_CAUSE => {
            let cause = strip_name(&value, "h323-disconnect-cause");
            let hex = cause.trim();
            let q850 = hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit())
                .then(|| u8::from_str_radix(hex, 16).ok())
                .flatten();
            if set(&mut voice.disconnect_cause, Some(cause.to_owned())) {
                voice.q850_cause = q850;
                true
            } else {
                false
            }
        }
        cisco::H323_VOICE_QUALITY => set(&mut voice.voice_quality, h323("h323-voice-quality")),
        cisco::H323_GW_ID => set(&mut voice.gw_id, h323("h323-gw-id")),
        cisco::H323_INCOMING_CONF_ID => {
            set(&mut voice.incoming_conf_id, h323("h323-incoming-conf-id"))
        }
        _ => false,
    }
}

/// A Cisco-AVPair `name=value` (or `name*value`); false when it has neither
/// separator.
fn read_avpair(voice: &mut CiscoVoice, pair: &str) -> bool {
    let Some(at) = pair.find(['=', '*']) else {
        return false;
    };
    let (name, value) = (&pair[..at], &pair[at + 1..]);
    let field = match name {
        "call-id" => &mut voice.call_id,
        "h323-incoming-conf-id" => &mut voice.incoming_conf_id,
        _ => {
            voice.avpairs.push((name.to_owned(), value.to_owned()));
            return true;
        }
    };
    if !set(field, Some(value.to_owned())) {
        voice.avpairs.push((name.to_owned(), value.to_owned()));
    }
    true
}

/// `h323-call-origin=answer` without its `h323-call-origin=`; the text as
/// it is when the prefix is absent.
fn strip_name<'a>(value: &'a str, name: &str) -> &'a str {
    value
        .get(..name.len())
        .filter(|prefix| prefix.eq_ignore_ascii_case(name))
        .and_then(|_| value[name.len()..].strip_prefix('='))
        .unwrap_or(value)
}

/// Sets `field` when it is empty and `value` was read; whether it did.
fn set<T>(field: &mut Option<T>, value: Option<T>) -> bool {
    match (field.is_none(), value) {
        (true, Some(value)) => {
            *field = Some(value);
            true
        }
        _ => false,
    }
}

/// `text` and `string` values that are UTF-8 (RFC 2865 §5: text is UTF-8).
fn text(value: &[u8]) -> Option<String> {
    std::str::from_utf8(value).ok().map(str::to_owned)
}

/// An `integer` value: exactly four octets, big-endian (RFC 2865 §5).
fn integer(value: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(value).ok().map(u32::from_be_bytes)
}
