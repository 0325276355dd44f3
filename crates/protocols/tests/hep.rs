//! HEP against real packets from Kamailio 5.6.3 `siptrace` (HEPv3 and
//! HEPv2, captured on 127.0.0.1, embedded below as hex with the settings
//! that made them; and the sipp call in `tests/data/hep/`), and against
//! packets built by hand, byte by byte, in the
//! layouts the senders write: HEPv3 in the chunk order of Kamailio's
//! `trace_send_hep3_duplicate` (`siptrace_hep.c`), with IPv6, an
//! authentication key, a correlation id and vendor chunks; HEPv1 and HEPv2
//! as `struct hep_hdr`, `hep_iphdr`/`hep_ip6hdr` and `hep_timehdr` lay
//! them out (Kamailio `sipcapture/hep.h`). Then the error sentences, TCP
//! framing, and property tests (decode never panics, encode/decode round
//! trip).

use cdrhub_model::Timestamp;
use cdrhub_protocols::hep::*;
use proptest::collection::vec;
use proptest::prelude::*;
use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An INVITE with SDP like the one sipp's `uac` scenario sends.
const INVITE: &str = "INVITE sip:service@127.0.0.1:5070 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-2204-1-0\r\n\
From: sipp <sip:sipp@127.0.0.1:5061>;tag=2204SIPpTag001\r\n\
To: service <sip:service@127.0.0.1:5070>\r\n\
Call-ID: 1-2204@127.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
Contact: sip:sipp@127.0.0.1:5061\r\n\
Max-Forwards: 70\r\n\
Subject: Performance Test\r\n\
Content-Type: application/sdp\r\n\
Content-Length:   129\r\n\
\r\n\
v=0\r\n\
o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

/// 2026-05-28T20:26:40Z.
const SECONDS: u32 = 1_780_000_000;

/// One chunk: vendor id, type id, length (header included), value.
fn chunk(vendor_id: u16, type_id: u16, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&vendor_id.to_be_bytes());
    out.extend_from_slice(&type_id.to_be_bytes());
    out.extend_from_slice(&(6 + value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
    out
}

/// `HEP3`, the total length, the chunks.
fn hep3(chunks: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = chunks.concat();
    let mut out = b"HEP3".to_vec();
    out.extend_from_slice(&(6 + body.len() as u16).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// [`INVITE`] from 127.0.0.1:5061 to 127.0.0.1:5070 as Kamailio mirrors
/// it with `hep_capture_id` 2001, written out byte by byte in
/// `trace_send_hep3_duplicate`'s order.
fn hand_built_invite() -> Vec<u8> {
    let mut packet = vec![
        b'H', b'E', b'P', b'3', 0x00, 0x00, // total length, set below
        0x00, 0x00, 0x00, 0x01, 0x00, 0x07, 0x02, // IP family: AF_INET
        0x00, 0x00, 0x00, 0x02, 0x00, 0x07, 0x11, // IP protocol: UDP
        0x00, 0x00, 0x00, 0x03, 0x00, 0x0a, 127, 0, 0, 1, // source 127.0.0.1
        0x00, 0x00, 0x00, 0x04, 0x00, 0x0a, 127, 0, 0, 1, // destination 127.0.0.1
        0x00, 0x00, 0x00, 0x07, 0x00, 0x08, 0x13, 0xc5, // source port 5061
        0x00, 0x00, 0x00, 0x08, 0x00, 0x08, 0x13, 0xce, // destination port 5070
        0x00, 0x00, 0x00, 0x09, 0x00, 0x0a, 0x6a, 0x18, 0xa5, 0x00, // seconds
        0x00, 0x00, 0x00, 0x0a, 0x00, 0x0a, 0x00, 0x01, 0xe2, 0x40, // 123456 µs
        0x00, 0x00, 0x00, 0x0b, 0x00, 0x07, 0x01, // protocol type: SIP
        0x00, 0x00, 0x00, 0x0c, 0x00, 0x0a, 0x00, 0x00, 0x07, 0xd1, // capture id 2001
        0x00, 0x00, 0x00, 0x0f, // payload
    ];
    packet.extend_from_slice(&(6 + INVITE.len() as u16).to_be_bytes());
    packet.extend_from_slice(INVITE.as_bytes());
    let total = (packet.len() as u16).to_be_bytes();
    packet[4..6].copy_from_slice(&total);
    packet
}

fn localhost(port: u16) -> Endpoint {
    Endpoint::new(Ipv4Addr::LOCALHOST, port)
}

fn hand_built_expected() -> HepPacket<'static> {
    HepPacket {
        version: HepVersion::V3,
        family: Some(family::IPV4),
        ip_protocol: Some(ip_protocol::UDP),
        src: localhost(5061),
        dst: localhost(5070),
        timestamp_seconds: Some(SECONDS),
        timestamp_micros: Some(123_456),
        protocol_type: Some(ProtocolType::SIP),
        capture_id: Some(2001),
        auth_key: None,
        correlation_id: None,
        payload: Some(Cow::Borrowed(INVITE.as_bytes())),
        other_chunks: vec![],
    }
}

fn error_of(packet: &[u8]) -> (usize, String) {
    let e = decode(packet).unwrap_err();
    (e.offset, e.to_string())
}

// ---------------------------------------------------------------------------
// Captures from Kamailio 5.6.3
//
// What Kamailio 5.6.3 (Debian 12 package) sent to a UDP socket on
// 127.0.0.1:9160 when a UDP client on 127.0.0.1:5161 sent it the INVITE
// below and it answered 486 with `sl_send_reply`; one datagram each, as
// hex. Its configuration, started with `kamailio -DD -E -f CFG -Y RUNDIR`
// and `-A` for the optional defines:
//
//   listen=udp:127.0.0.1:5170
//   loadmodule "sl.so"
//   loadmodule "siptrace.so"
//   modparam("siptrace", "duplicate_uri", "sip:127.0.0.1:9160")
//   modparam("siptrace", "hep_mode_on", 1)
//   modparam("siptrace", "hep_version", 3)        # 2 for the v2 capture
//   modparam("siptrace", "trace_to_database", 0)
//   modparam("siptrace", "trace_on", 1)
//   modparam("siptrace", "trace_mode", 1)
//   modparam("siptrace", "hep_capture_id", 2001)  # left out: defaults
//   modparam("siptrace", "auth_key", "myHep")     # left out: defaults, v2
//   request_route { sl_send_reply("486", "Busy Here"); }

/// The INVITE as Kamailio received it (`hep_capture_id` 2001, `auth_key`
/// "myHep"), 422 bytes.
const KAMAILIO_INVITE: &str = "\
4845503301a6000000010007020000000200071100000003000a7f00000100000004000a7f0000010000000700081429\
000000080008143200000009000a6b0f29a10000000a000a0003f3140000000b0007010000000c000a000007d1000000\
0e000b6d794865700000000f013e494e56495445207369703a35303830403132372e302e302e313a3531373020534950\
2f322e300d0a5669613a205349502f322e302f554450203132372e302e302e313a353136313b6272616e63683d7a3968\
4734624b2d6865702d666978747572652d310d0a46726f6d3a2073697070203c7369703a73697070403132372e302e30\
2e313a353136313e3b7461673d68657066697874757265310d0a546f3a203c7369703a35303830403132372e302e302e\
313a353137303e0d0a43616c6c2d49443a206865702d666978747572652d31403132372e302e302e310d0a435365713a\
203120494e564954450d0a436f6e746163743a203c7369703a73697070403132372e302e302e313a353136313e0d0a4d\
61782d466f7277617264733a2037300d0a436f6e74656e742d4c656e6774683a20300d0a0d0a\
";
/// The 486 Kamailio sent back, same settings, 438 bytes.
const KAMAILIO_486: &str = "\
4845503301b6000000010007020000000200071100000003000a7f00000100000004000a7f0000010000000700081432\
000000080008142900000009000a6b0f29a10000000a000a0003f4ae0000000b0007010000000c000a000007d1000000\
0e000b6d794865700000000f014e5349502f322e3020343836204275737920486572650d0a5669613a205349502f322e\
302f554450203132372e302e302e313a353136313b6272616e63683d7a39684734624b2d6865702d666978747572652d\
310d0a46726f6d3a2073697070203c7369703a73697070403132372e302e302e313a353136313e3b7461673d68657066\
697874757265310d0a546f3a203c7369703a35303830403132372e302e302e313a353137303e3b7461673d3165336230\
6363363339343137653064663230636133393438383837366332382e38353461393666650d0a43616c6c2d49443a2068\
65702d666978747572652d31403132372e302e302e310d0a435365713a203120494e564954450d0a5365727665723a20\
6b616d61696c696f2028352e362e3320287838365f36342f6c696e757829290d0a436f6e74656e742d4c656e6774683a\
20300d0a0d0a\
";
/// The INVITE with neither setting: capture id 1, no key; 411 bytes.
const KAMAILIO_INVITE_DEFAULTS: &str = "\
48455033019b000000010007020000000200071100000003000a7f00000100000004000a7f0000010000000700081429\
000000080008143200000009000a6b0f299d0000000a000a000859720000000b0007010000000c000a00000001000000\
0f013e494e56495445207369703a35303830403132372e302e302e313a35313730205349502f322e300d0a5669613a20\
5349502f322e302f554450203132372e302e302e313a353136313b6272616e63683d7a39684734624b2d6865702d6669\
78747572652d310d0a46726f6d3a2073697070203c7369703a73697070403132372e302e302e313a353136313e3b7461\
673d68657066697874757265310d0a546f3a203c7369703a35303830403132372e302e302e313a353137303e0d0a4361\
6c6c2d49443a206865702d666978747572652d31403132372e302e302e310d0a435365713a203120494e564954450d0a\
436f6e746163743a203c7369703a73697070403132372e302e302e313a353136313e0d0a4d61782d466f727761726473\
3a2037300d0a436f6e74656e742d4c656e6774683a20300d0a0d0a\
";
/// The INVITE with `hep_version` 2 and `hep_capture_id` 2001, 340 bytes.
const KAMAILIO_INVITE_V2: &str = "\
02100211142914327f0000017f000001a4290f6ba66f0e00d1070000494e56495445207369703a35303830403132372e\
302e302e313a35313730205349502f322e300d0a5669613a205349502f322e302f554450203132372e302e302e313a35\
3136313b6272616e63683d7a39684734624b2d6865702d666978747572652d310d0a46726f6d3a2073697070203c7369\
703a73697070403132372e302e302e313a353136313e3b7461673d68657066697874757265310d0a546f3a203c736970\
3a35303830403132372e302e302e313a353137303e0d0a43616c6c2d49443a206865702d666978747572652d31403132\
372e302e302e310d0a435365713a203120494e564954450d0a436f6e746163743a203c7369703a73697070403132372e\
302e302e313a353136313e0d0a4d61782d466f7277617264733a2037300d0a436f6e74656e742d4c656e6774683a2030\
0d0a0d0a\
";

/// The INVITE the client sent, the payload of the captures.
const CAPTURED_INVITE: &str = "INVITE sip:5080@127.0.0.1:5170 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5161;branch=z9hG4bK-hep-fixture-1\r\n\
From: sipp <sip:sipp@127.0.0.1:5161>;tag=hepfixture1\r\n\
To: <sip:5080@127.0.0.1:5170>\r\n\
Call-ID: hep-fixture-1@127.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:sipp@127.0.0.1:5161>\r\n\
Max-Forwards: 70\r\n\
Content-Length: 0\r\n\
\r\n";

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn captures() -> [(&'static str, Vec<u8>); 4] {
    [
        ("invite", hex(KAMAILIO_INVITE)),
        ("486", hex(KAMAILIO_486)),
        ("invite, defaults", hex(KAMAILIO_INVITE_DEFAULTS)),
        ("invite, v2", hex(KAMAILIO_INVITE_V2)),
    ]
}

#[test]
fn kamailio_captured_invite_decodes() {
    let packet = hex(KAMAILIO_INVITE);
    assert_eq!(packet.len(), 422);
    let expected = HepPacket {
        version: HepVersion::V3,
        family: Some(family::IPV4),
        ip_protocol: Some(ip_protocol::UDP),
        src: localhost(5161),
        dst: localhost(5170),
        timestamp_seconds: Some(1_796_155_809),
        timestamp_micros: Some(258_836),
        protocol_type: Some(ProtocolType::SIP),
        capture_id: Some(2001),
        auth_key: Some(Cow::Borrowed("myHep")),
        correlation_id: None,
        payload: Some(Cow::Borrowed(CAPTURED_INVITE.as_bytes())),
        other_chunks: vec![],
    };
    let hep = decode(&packet).unwrap();
    assert_eq!(hep, expected);
    assert_eq!(
        hep.timestamp(),
        Some(Timestamp::parse_rfc3339("2026-12-01T20:10:09.258Z").unwrap())
    );
}

#[test]
fn kamailio_captured_reply_runs_the_other_way() {
    let packet = hex(KAMAILIO_486);
    let hep = decode(&packet).unwrap();
    assert_eq!(hep.src, localhost(5170));
    assert_eq!(hep.dst, localhost(5161));
    assert_eq!(hep.timestamp_seconds, Some(1_796_155_809));
    assert_eq!(hep.timestamp_micros, Some(259_246));
    assert_eq!(hep.capture_id, Some(2001));
    assert_eq!(hep.auth_key.as_deref(), Some("myHep"));
    let payload = hep.payload.as_deref().unwrap();
    assert!(payload.starts_with(b"SIP/2.0 486 Busy Here\r\n"));
    assert!(
        payload.ends_with(b"Server: kamailio (5.6.3 (x86_64/linux))\r\nContent-Length: 0\r\n\r\n")
    );
}

/// Kamailio's own default is capture id 1; 2001 is a configured value.
#[test]
fn kamailio_default_capture_id_is_1_and_no_key() {
    let packet = hex(KAMAILIO_INVITE_DEFAULTS);
    let hep = decode(&packet).unwrap();
    assert_eq!(hep.capture_id, Some(1));
    assert_eq!(hep.auth_key, None);
    assert_eq!(hep.correlation_id, None);
    assert_eq!(hep.payload.as_deref(), Some(CAPTURED_INVITE.as_bytes()));
}

#[test]
fn encode_v3_writes_kamailio_captures_byte_for_byte() {
    for (name, packet) in captures() {
        let hep = decode(&packet).unwrap();
        if hep.version == HepVersion::V3 {
            assert_eq!(encode_v3(&hep), packet, "{name}");
        }
    }
}

/// The v2 capture confirms the layout read from the C structs: header
/// length byte 16 (the time header not counted), ports big-endian, the
/// seconds, microseconds and 16-bit capture id little-endian, 2 bytes of
/// padding.
#[test]
fn kamailio_captured_hepv2_invite_decodes() {
    let packet = hex(KAMAILIO_INVITE_V2);
    assert_eq!(packet.len(), 28 + CAPTURED_INVITE.len());
    let expected = HepPacket {
        version: HepVersion::V2,
        family: Some(family::IPV4),
        ip_protocol: Some(ip_protocol::UDP),
        src: localhost(5161),
        dst: localhost(5170),
        timestamp_seconds: Some(1_796_155_812),
        timestamp_micros: Some(946_086),
        capture_id: Some(2001),
        payload: Some(Cow::Borrowed(CAPTURED_INVITE.as_bytes())),
        ..HepPacket::default()
    };
    assert_eq!(decode(&packet).unwrap(), expected);
}

/// The project's capture of a sipp call through Kamailio
/// (`tests/data/hep/`, see the README there: each packet a 4-byte
/// big-endian length, then the datagram): every packet decodes as SIP from
/// capture id 1 (Kamailio's default), re-encodes byte for byte, and the
/// packets back to back frame as a TCP stream.
#[test]
fn the_committed_kamailio_call_decodes() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/hep/kamailio-uac-uas.hepstream"
    );
    let file = std::fs::read(path).unwrap();
    let mut datagrams = Vec::new();
    let mut rest = &file[..];
    while let Some((len, after)) = rest.split_first_chunk::<4>() {
        let len = u32::from_be_bytes(*len) as usize;
        datagrams.push(after[..len].to_vec());
        rest = &after[len..];
    }
    assert_eq!(datagrams.len(), 18);
    let mut first_lines = Vec::new();
    for datagram in &datagrams {
        let hep = decode(datagram).unwrap();
        assert_eq!(hep.protocol_type, Some(ProtocolType::SIP));
        assert_eq!(hep.capture_id, Some(1));
        assert_eq!(hep.src.ip, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert!(hep.other_chunks.is_empty());
        assert_eq!(&encode_v3(&hep), datagram);
        let payload = hep.payload.as_deref().unwrap();
        let line_end = payload.windows(2).position(|w| w == b"\r\n").unwrap();
        first_lines.push(String::from_utf8(payload[..line_end].to_vec()).unwrap());
    }
    assert!(first_lines[0].starts_with("INVITE sip:service@127.0.0.1:5070"));
    assert!(first_lines.iter().any(|l| l == "SIP/2.0 200 OK"));

    let mut reader = StreamReader::default();
    reader.receive(&datagrams.concat()).unwrap();
    assert_eq!(reader.packets.len(), datagrams.len());
}

// ---------------------------------------------------------------------------
// HEPv3

#[test]
fn a_hand_built_invite_decodes() {
    let packet = hand_built_invite();
    assert_eq!(packet.len(), 99 + INVITE.len());
    let hep = decode(&packet).unwrap();
    assert_eq!(hep, hand_built_expected());
    assert_eq!(
        hep.src.socket_addr(),
        Some("127.0.0.1:5061".parse().unwrap())
    );
    assert_eq!(hep.dst.to_string(), "127.0.0.1:5070");
}

#[test]
fn the_payload_is_borrowed_from_the_packet() {
    let packet = hex(KAMAILIO_INVITE);
    let hep = decode(&packet).unwrap();
    let Some(Cow::Borrowed(payload)) = hep.payload else {
        panic!("the payload was copied");
    };
    assert_eq!(payload.as_ptr(), packet[110..].as_ptr());
}

#[test]
fn the_capture_time_converts_to_milliseconds() {
    let packet = hand_built_invite();
    let hep = decode(&packet).unwrap();
    let expected = Timestamp::parse_rfc3339("2026-05-28T20:26:40.123Z").unwrap();
    assert_eq!(hep.timestamp(), Some(expected));

    let mut other = hep.clone();
    other.timestamp_micros = None;
    assert_eq!(
        other.timestamp(),
        Some(Timestamp::from_millis(1_780_000_000_000))
    );
    // The microseconds are an offset added to the seconds (HEP3
    // specification, chunk 0x000a), so they may exceed a second.
    other.timestamp_micros = Some(2_500_999);
    assert_eq!(
        other.timestamp(),
        Some(Timestamp::from_millis(1_780_000_002_500))
    );
    other.timestamp_seconds = None;
    assert_eq!(other.timestamp(), None);
}

#[test]
fn ipv6_over_tcp_decodes() {
    let src: Ipv6Addr = "2001:db8::10".parse().unwrap();
    let dst: Ipv6Addr = "2001:db8::20".parse().unwrap();
    let packet = hep3(&[
        chunk(0, 0x0001, &[10]),
        chunk(0, 0x0002, &[6]),
        chunk(0, 0x0005, &src.octets()),
        chunk(0, 0x0006, &dst.octets()),
        chunk(0, 0x0007, &5060u16.to_be_bytes()),
        chunk(0, 0x0008, &47_001u16.to_be_bytes()),
        chunk(0, 0x0009, &SECONDS.to_be_bytes()),
        chunk(0, 0x000a, &7u32.to_be_bytes()),
        chunk(0, 0x000b, &[1]),
        chunk(0, 0x000c, &2001u32.to_be_bytes()),
        chunk(0, 0x000f, b"SIP/2.0 180 Ringing\r\n\r\n"),
    ]);
    let hep = decode(&packet).unwrap();
    assert_eq!(hep.family, Some(family::IPV6));
    assert_eq!(hep.ip_protocol, Some(ip_protocol::TCP));
    assert_eq!(hep.src, Endpoint::new(src, 5060));
    assert_eq!(hep.dst, Endpoint::new(dst, 47_001));
    assert_eq!(hep.dst.to_string(), "[2001:db8::20]:47001");
    assert_eq!(hep.timestamp_micros, Some(7));
    assert_eq!(
        hep.payload.as_deref(),
        Some(&b"SIP/2.0 180 Ringing\r\n\r\n"[..])
    );
    assert_eq!(decode(&encode_v3(&hep)).unwrap(), hep);
}

#[test]
fn authentication_key_and_correlation_id_are_read() {
    // Kamailio writes the correlation id, then the key, then the payload.
    let packet = hep3(&[
        chunk(0, 0x0001, &[2]),
        chunk(0, 0x0002, &[17]),
        chunk(0, 0x0003, &[192, 0, 2, 10]),
        chunk(0, 0x0004, &[192, 0, 2, 20]),
        chunk(0, 0x0007, &5060u16.to_be_bytes()),
        chunk(0, 0x0008, &5060u16.to_be_bytes()),
        chunk(0, 0x0009, &SECONDS.to_be_bytes()),
        chunk(0, 0x000a, &0u32.to_be_bytes()),
        chunk(0, 0x000b, &[5]),
        chunk(0, 0x000c, &2001u32.to_be_bytes()),
        chunk(0, 0x0011, b"1-2204@127.0.0.1"),
        chunk(0, 0x000e, b"myHep"),
        chunk(0, 0x000f, br#"{"type":200,"ssrc":1}"#),
    ]);
    let hep = decode(&packet).unwrap();
    assert_eq!(hep.auth_key.as_deref(), Some("myHep"));
    assert_eq!(hep.correlation_id.as_deref(), Some("1-2204@127.0.0.1"));
    assert_eq!(hep.protocol_type, Some(ProtocolType::RTCP));
    assert_eq!(hep.src, Endpoint::new(Ipv4Addr::new(192, 0, 2, 10), 5060));
    assert!(hep.other_chunks.is_empty());
    assert_eq!(encode_v3(&hep), packet);
}

#[test]
fn vendor_and_unknown_chunks_are_kept_in_wire_order() {
    let packet = hep3(&[
        chunk(0x0003, 0x0007, &[0x13, 0xc4]), // a vendor's own type 7: not a port
        chunk(0, 0x0001, &[2]),
        chunk(0, 0x000d, &30u16.to_be_bytes()), // keep-alive timer
        chunk(0, 0x0012, &100u16.to_be_bytes()), // VLAN id
        chunk(0, 0x000f, b"OPTIONS"),
        chunk(0xffff, 0xffff, b""),
    ]);
    let hep = decode(&packet).unwrap();
    assert_eq!(hep.family, Some(2));
    assert_eq!(hep.src.port, None);
    let others: Vec<(u16, u16, &[u8])> = hep
        .other_chunks
        .iter()
        .map(|c| (c.vendor_id, c.type_id, &c.value[..]))
        .collect();
    assert_eq!(
        others,
        [
            (0x0003, 0x0007, &[0x13, 0xc4][..]),
            (0, 0x000d, &[0, 30][..]),
            (0, 0x0012, &[0, 100][..]),
            (0xffff, 0xffff, &[][..]),
        ]
    );
    assert_eq!(decode(&encode_v3(&hep)).unwrap(), hep);
}

#[test]
fn a_repeated_chunk_keeps_the_first_and_the_rest_in_other_chunks() {
    let v6: Ipv6Addr = "::1".parse().unwrap();
    let packet = hep3(&[
        chunk(0, 0x000f, b"first"),
        chunk(0, 0x0003, &[10, 0, 0, 1]),
        chunk(0, 0x0005, &v6.octets()), // a second source address
        chunk(0, 0x000f, b"second"),
    ]);
    let hep = decode(&packet).unwrap();
    assert_eq!(hep.payload.as_deref(), Some(&b"first"[..]));
    assert_eq!(hep.src.ip, Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))));
    assert_eq!(
        hep.other_chunks,
        [
            Chunk {
                vendor_id: 0,
                type_id: 0x0005,
                value: Cow::Borrowed(&v6.octets()[..]),
            },
            Chunk {
                vendor_id: 0,
                type_id: 0x000f,
                value: Cow::Borrowed(&b"second"[..]),
            },
        ]
    );
    assert_eq!(decode(&encode_v3(&hep)).unwrap(), hep);
}

#[test]
fn absent_chunks_are_none() {
    let hep = decode(b"HEP3\x00\x06").unwrap();
    assert_eq!(
        hep,
        HepPacket {
            version: HepVersion::V3,
            ..HepPacket::default()
        }
    );
    assert_eq!(hep.src.socket_addr(), None);
    assert_eq!(hep.src.to_string(), "?:?");
    assert_eq!(encode_v3(&hep), b"HEP3\x00\x06");

    let packet = hep3(&[chunk(0, 0x0008, &[0x13, 0xc4])]);
    let port_only = decode(&packet).unwrap();
    assert_eq!(
        port_only.dst,
        Endpoint {
            ip: None,
            port: Some(5060)
        }
    );
    assert_eq!(port_only.dst.socket_addr(), None);
}

#[test]
fn empty_strings_and_payloads_are_present_not_absent() {
    let packet = hep3(&[
        chunk(0, 0x000e, b""),
        chunk(0, 0x0011, b""),
        chunk(0, 0x000f, b""),
    ]);
    let hep = decode(&packet).unwrap();
    assert_eq!(hep.auth_key.as_deref(), Some(""));
    assert_eq!(hep.correlation_id.as_deref(), Some(""));
    assert_eq!(hep.payload.as_deref(), Some(&[][..]));
}

#[test]
fn bytes_after_the_length_field_are_ignored() {
    let mut packet = hand_built_invite();
    packet.extend_from_slice(b"HEP3\x00\x00 trailing");
    assert_eq!(decode(&packet).unwrap(), hand_built_expected());
}

#[test]
fn into_owned_outlives_the_bytes() {
    let owned = {
        let packet = hep3(&[
            chunk(9, 1, b"vendor"),
            chunk(0, 0x000e, b"key"),
            chunk(0, 0x000f, b"BYE"),
        ]);
        decode(&packet).unwrap().into_owned()
    };
    assert!(matches!(owned.auth_key, Some(Cow::Owned(_))));
    assert!(matches!(owned.payload, Some(Cow::Owned(_))));
    assert!(matches!(owned.other_chunks[0].value, Cow::Owned(_)));
    let expected = HepPacket {
        auth_key: Some(Cow::Borrowed("key")),
        payload: Some(Cow::Borrowed(b"BYE")),
        other_chunks: vec![Chunk {
            vendor_id: 9,
            type_id: 1,
            value: Cow::Borrowed(b"vendor"),
        }],
        ..HepPacket::default()
    };
    assert_eq!(owned, expected);
}

// ---------------------------------------------------------------------------
// HEPv1 and HEPv2

/// `hep_hdr` (version, length, family, protocol, ports big-endian) and
/// `hep_iphdr` for 127.0.0.1:5061 -> 127.0.0.1:5070 over UDP.
fn v1_v2_ipv4_header(version: u8) -> Vec<u8> {
    vec![
        version, 16, 2, 17, 0x13, 0xc5, 0x13, 0xce, 127, 0, 0, 1, 127, 0, 0, 1,
    ]
}

/// `hep_timehdr` as Kamailio writes it on x86: seconds and microseconds
/// little-endian (`to_le`), the 16-bit capture id in host order, 2 bytes
/// of padding.
fn v2_time_header() -> Vec<u8> {
    let mut out = SECONDS.to_le_bytes().to_vec();
    out.extend_from_slice(&123_456u32.to_le_bytes());
    out.extend_from_slice(&2001u16.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

#[test]
fn a_hepv2_ipv4_packet_decodes() {
    let mut packet = v1_v2_ipv4_header(2);
    packet.extend_from_slice(&v2_time_header());
    assert_eq!(packet.len(), 28);
    packet.extend_from_slice(INVITE.as_bytes());
    let hep = decode(&packet).unwrap();
    let expected = HepPacket {
        version: HepVersion::V2,
        protocol_type: None,
        ..hand_built_expected()
    };
    assert_eq!(hep, expected);
    assert_eq!(
        hep.timestamp(),
        Some(Timestamp::parse_rfc3339("2026-05-28T20:26:40.123Z").unwrap())
    );
}

#[test]
fn a_hepv2_ipv6_packet_decodes() {
    let src: Ipv6Addr = "2001:db8::10".parse().unwrap();
    let dst: Ipv6Addr = "2001:db8::20".parse().unwrap();
    let mut packet = vec![2, 40, 10, 6, 0x13, 0xc4, 0xb7, 0x99];
    packet.extend_from_slice(&src.octets());
    packet.extend_from_slice(&dst.octets());
    packet.extend_from_slice(&v2_time_header());
    packet.extend_from_slice(b"BYE");
    let hep = decode(&packet).unwrap();
    assert_eq!(hep.version, HepVersion::V2);
    assert_eq!(hep.family, Some(family::IPV6));
    assert_eq!(hep.ip_protocol, Some(ip_protocol::TCP));
    assert_eq!(hep.src, Endpoint::new(src, 5060));
    assert_eq!(hep.dst, Endpoint::new(dst, 47_001));
    assert_eq!(hep.capture_id, Some(2001));
    assert_eq!(hep.payload.as_deref(), Some(&b"BYE"[..]));
}

#[test]
fn a_hepv1_packet_has_no_time_and_no_capture_id() {
    let mut packet = v1_v2_ipv4_header(1);
    packet.extend_from_slice(INVITE.as_bytes());
    let hep = decode(&packet).unwrap();
    let expected = HepPacket {
        version: HepVersion::V1,
        timestamp_seconds: None,
        timestamp_micros: None,
        protocol_type: None,
        capture_id: None,
        ..hand_built_expected()
    };
    assert_eq!(hep, expected);
}

#[test]
fn a_hepv2_packet_reencoded_as_v3_keeps_every_field() {
    let mut packet = v1_v2_ipv4_header(2);
    packet.extend_from_slice(&v2_time_header());
    packet.extend_from_slice(INVITE.as_bytes());
    let v2 = decode(&packet).unwrap();
    let v3 = encode_v3(&v2);
    let again = decode(&v3).unwrap();
    assert_eq!(
        again,
        HepPacket {
            version: HepVersion::V3,
            ..v2
        }
    );
}

#[test]
fn a_hepv2_header_without_payload_is_an_empty_payload() {
    let mut packet = v1_v2_ipv4_header(2);
    packet.extend_from_slice(&v2_time_header());
    assert_eq!(decode(&packet).unwrap().payload.as_deref(), Some(&[][..]));
}

// ---------------------------------------------------------------------------
// Errors: one sentence naming the problem and the byte

#[test]
fn bytes_that_are_not_hep_are_an_error() {
    assert_eq!(
        error_of(b"GET / HTTP/1.1\r\n"),
        (
            0,
            "malformed HEP packet at byte 0: not a HEP packet: it starts with 0x47 0x45 0x54 \
             0x20, neither \"HEP3\" nor a HEPv1/v2 version byte"
                .to_owned()
        )
    );
    assert_eq!(
        error_of(b"HEP2\x00\x06").1,
        "malformed HEP packet at byte 0: not a HEP packet: it starts with 0x48 0x45 0x50 0x32, \
         neither \"HEP3\" nor a HEPv1/v2 version byte"
    );
    assert_eq!(
        error_of(b""),
        (
            0,
            "malformed HEP packet at byte 0: the packet is empty".to_owned()
        )
    );
}

#[test]
fn a_packet_shorter_than_the_v3_header_is_an_error() {
    assert_eq!(
        error_of(b"HEP3\x00"),
        (
            5,
            "malformed HEP packet at byte 5: the packet has 5 bytes, fewer than the 6-byte \
             HEPv3 header"
                .to_owned()
        )
    );
    assert_eq!(error_of(b"HE").0, 2);
}

#[test]
fn a_length_field_that_lies_is_an_error() {
    assert_eq!(
        error_of(b"HEP3\x00\x05"),
        (
            4,
            "malformed HEP packet at byte 4: the length field says 5, less than the 6-byte \
             header"
                .to_owned()
        )
    );
    let mut packet = hand_built_invite();
    packet[4..6].copy_from_slice(&900u16.to_be_bytes());
    packet.resize(512, 0);
    assert_eq!(
        error_of(&packet),
        (
            4,
            "malformed HEP packet at byte 4: the packet says it is 900 bytes but 512 arrived"
                .to_owned()
        )
    );
}

#[test]
fn chunk_lengths_are_checked() {
    // Three bytes after the last chunk: not enough for a chunk header.
    let mut cut_header = hep3(&[chunk(0, 0x0001, &[2])]);
    cut_header.extend_from_slice(&[0, 0, 0]);
    cut_header[5] += 3;
    assert_eq!(
        error_of(&cut_header),
        (
            13,
            "malformed HEP packet at byte 13: a chunk header needs 6 bytes but only 3 remain \
             of the 16-byte packet"
                .to_owned()
        )
    );

    for bad in [0u16, 5] {
        let mut packet = hep3(&[chunk(0, 0x0001, &[2]), chunk(0, 0x0007, &[0x13, 0xc4])]);
        packet[17..19].copy_from_slice(&bad.to_be_bytes());
        assert_eq!(
            error_of(&packet),
            (
                13,
                format!(
                    "malformed HEP packet at byte 13: chunk 0x0007 (source port) says it is \
                     {bad} bytes long, less than its 6-byte header"
                )
            )
        );
    }

    let mut past_end = hep3(&[chunk(0x0004, 0x0020, b"abc")]);
    past_end[10..12].copy_from_slice(&10u16.to_be_bytes());
    assert_eq!(
        error_of(&past_end),
        (
            6,
            "malformed HEP packet at byte 6: chunk 0x0020 of vendor 0x0004 is 10 bytes long \
             and runs past the end of the 15-byte packet"
                .to_owned()
        )
    );
    // The bytes are there, but beyond the total length.
    past_end.extend_from_slice(b"def");
    assert_eq!(error_of(&past_end).0, 6);
}

#[test]
fn a_fixed_width_chunk_of_the_wrong_width_is_an_error() {
    let widths: [(u16, &str, usize); 12] = [
        (0x0001, "IP family", 1),
        (0x0002, "IP protocol", 1),
        (0x0003, "IPv4 source address", 4),
        (0x0004, "IPv4 destination address", 4),
        (0x0005, "IPv6 source address", 16),
        (0x0006, "IPv6 destination address", 16),
        (0x0007, "source port", 2),
        (0x0008, "destination port", 2),
        (0x0009, "timestamp seconds", 4),
        (0x000a, "timestamp microseconds", 4),
        (0x000b, "protocol type", 1),
        (0x000c, "capture id", 4),
    ];
    for (type_id, name, width) in widths {
        for wrong in [0, width - 1, width + 1, 2 * width + 1] {
            if wrong == width {
                continue;
            }
            let packet = hep3(&[
                chunk(0, 0x0001, &[2]),
                chunk(0, 0x000c, &2001u32.to_be_bytes()),
                chunk(0, type_id, &vec![7; wrong]),
            ]);
            // A repeat of the first two is checked too.
            assert_eq!(
                error_of(&packet),
                (
                    23,
                    format!(
                        "malformed HEP packet at byte 23: chunk {type_id:#06x} ({name}) holds \
                         {wrong} bytes, expected {width}"
                    )
                ),
                "type {type_id:#06x}, {wrong} bytes"
            );
        }
    }
    // A source port sent as 4 bytes after Kamailio's first four chunks.
    let packet = hep3(&[
        chunk(0, 0x0001, &[2]),
        chunk(0, 0x0002, &[17]),
        chunk(0, 0x0003, &[127, 0, 0, 1]),
        chunk(0, 0x0004, &[127, 0, 0, 1]),
        chunk(0, 0x0007, &[0, 0, 0x13, 0xc4]),
    ]);
    assert_eq!(
        error_of(&packet).1,
        "malformed HEP packet at byte 40: chunk 0x0007 (source port) holds 4 bytes, expected 2"
    );
}

#[test]
fn text_chunks_must_be_utf8() {
    let packet = hep3(&[chunk(0, 0x0001, &[2]), chunk(0, 0x000e, b"ke\xffy")]);
    assert_eq!(
        error_of(&packet),
        (
            21,
            "malformed HEP packet at byte 21: chunk 0x000e (authentication key) is not UTF-8 \
             text: byte 2 of its value is invalid"
                .to_owned()
        )
    );
    let packet = hep3(&[chunk(0, 0x0011, b"\xc3")]);
    assert_eq!(
        error_of(&packet).1,
        "malformed HEP packet at byte 12: chunk 0x0011 (correlation id) is not UTF-8 text: byte \
         0 of its value is invalid"
    );
    // A vendor's chunk of the same type is not read, so not checked.
    assert!(decode(&hep3(&[chunk(1, 0x0011, b"\xc3")])).is_ok());
}

#[test]
fn a_compressed_payload_is_unsupported() {
    let packet = hep3(&[
        chunk(0, 0x0001, &[2]),
        chunk(0, 0x0010, &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0]),
    ]);
    let e = decode(&packet).unwrap_err();
    assert_eq!(e.kind, HepErrorKind::Unsupported);
    assert_eq!(e.offset, 13);
    assert_eq!(
        e.to_string(),
        "unsupported HEP packet at byte 13: chunk 0x0010 (compressed payload) holds a \
         gzip-compressed payload of 8 bytes, which this decoder cannot decompress; turn \
         payload compression off at the sender"
    );
}

#[test]
fn hepv1_v2_header_errors() {
    let mut bad_family = v1_v2_ipv4_header(2);
    bad_family[2] = 7;
    assert_eq!(
        error_of(&bad_family),
        (
            2,
            "malformed HEP packet at byte 2: the address family is 7, neither 2 (IPv4) nor 10 \
             (IPv6)"
                .to_owned()
        )
    );

    // The time header counted in the length byte: OpenSIPS refuses it too.
    let mut bad_length = v1_v2_ipv4_header(2);
    bad_length[1] = 28;
    bad_length.extend_from_slice(&v2_time_header());
    assert_eq!(
        error_of(&bad_length),
        (
            1,
            "malformed HEP packet at byte 1: the header length byte says 28, expected 16 for \
             IPv4 addresses"
                .to_owned()
        )
    );

    assert_eq!(
        error_of(&[2, 16, 2, 17]),
        (
            4,
            "malformed HEP packet at byte 4: the packet has 4 bytes, fewer than the 8-byte \
             HEPv2 header"
                .to_owned()
        )
    );
    assert_eq!(
        error_of(&v1_v2_ipv4_header(2)),
        (
            16,
            "malformed HEP packet at byte 16: the packet has 16 bytes, fewer than the 28-byte \
             HEPv2 header with IPv4 addresses"
                .to_owned()
        )
    );
    let mut v1_ipv6 = vec![1, 40, 10, 17, 0, 1, 0, 2];
    v1_ipv6.extend_from_slice(&[0; 31]);
    assert_eq!(
        error_of(&v1_ipv6).1,
        "malformed HEP packet at byte 39: the packet has 39 bytes, fewer than the 40-byte HEPv1 \
         header with IPv6 addresses"
    );
    // HEPv1 with IPv4 needs 16 bytes, no time header.
    assert!(decode(&v1_v2_ipv4_header(1)).is_ok());
}

// ---------------------------------------------------------------------------
// TCP framing

/// What a TCP connection handler does: buffer what arrives, cut packets
/// with `frame_len`, decode each.
#[derive(Default)]
struct StreamReader {
    buf: Vec<u8>,
    packets: Vec<HepPacket<'static>>,
}

impl StreamReader {
    fn receive(&mut self, bytes: &[u8]) -> Result<(), HepError> {
        self.buf.extend_from_slice(bytes);
        while let Some(len) = frame_len(&self.buf)? {
            if self.buf.len() < len {
                break;
            }
            let packet = decode(&self.buf[..len])?.into_owned();
            self.packets.push(packet);
            self.buf.drain(..len);
        }
        Ok(())
    }
}

/// Four packets back to back: Kamailio's INVITE, the same with an
/// authentication key and a vendor chunk, an empty one, a 100 Trying.
fn stream_packets() -> Vec<HepPacket<'static>> {
    let invite = hand_built_expected();
    let mut keyed = invite.clone();
    keyed.auth_key = Some(Cow::Borrowed("myHep"));
    keyed.other_chunks = vec![Chunk {
        vendor_id: 0x0003,
        type_id: 0x0001,
        value: Cow::Borrowed(b"\x00\x01"),
    }];
    let empty = HepPacket::default();
    let trying = HepPacket {
        src: localhost(5070),
        dst: localhost(5061),
        payload: Some(Cow::Borrowed(
            b"SIP/2.0 100 Trying\r\nCall-ID: 1-2204@127.0.0.1\r\n\r\n",
        )),
        ..invite.clone()
    };
    vec![invite, keyed, empty, trying]
}

fn stream_of(packets: &[HepPacket]) -> Vec<u8> {
    packets.iter().flat_map(encode_v3).collect()
}

#[test]
fn a_stream_split_at_every_byte_frames_the_same_packets() {
    let packets = stream_packets();
    let stream = stream_of(&packets);
    for split in 0..=stream.len() {
        let mut reader = StreamReader::default();
        reader.receive(&stream[..split]).unwrap();
        reader.receive(&stream[split..]).unwrap();
        assert_eq!(reader.packets, packets, "split at {split}");
        assert!(reader.buf.is_empty());
    }
}

#[test]
fn a_stream_arriving_one_byte_at_a_time_frames_the_same_packets() {
    let packets = stream_packets();
    let mut reader = StreamReader::default();
    for byte in stream_of(&packets) {
        reader.receive(&[byte]).unwrap();
    }
    assert_eq!(reader.packets, packets);
}

#[test]
fn frame_len_waits_for_the_header_then_names_the_length() {
    let packet = hand_built_invite();
    for cut in 0..6 {
        assert_eq!(frame_len(&packet[..cut]), Ok(None), "{cut} bytes");
    }
    for cut in 6..=packet.len() {
        assert_eq!(
            frame_len(&packet[..cut]),
            Ok(Some(packet.len())),
            "{cut} bytes"
        );
    }
}

#[test]
fn frame_len_refuses_what_cannot_be_framed() {
    let e = frame_len(b"GET / HTTP/1.1").unwrap_err();
    assert_eq!(e.offset, 0);
    assert!(e.to_string().contains("not a HEP packet"), "{e}");
    // Out of step after the second byte: no need to wait for more.
    assert!(frame_len(b"HX").is_err());
    assert_eq!(
        frame_len(b"HEP3\x00\x02").unwrap_err().to_string(),
        "malformed HEP packet at byte 4: the length field says 2, less than the 6-byte header"
    );
    let e = frame_len(&v1_v2_ipv4_header(2)).unwrap_err();
    assert_eq!(e.kind, HepErrorKind::Unsupported);
    assert_eq!(
        e.to_string(),
        "unsupported HEP packet at byte 0: a HEPv2 packet carries no total length, so a stream \
         of them cannot be cut into packets; only HEPv3 can be sent over TCP"
    );

    let mut reader = StreamReader::default();
    let mut stream = stream_of(&stream_packets()[..1]);
    stream.extend_from_slice(b"garbage");
    assert!(reader.receive(&stream).is_err());
    assert_eq!(reader.packets.len(), 1);
}

// ---------------------------------------------------------------------------
// Properties

fn any_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|o| IpAddr::V4(Ipv4Addr::from(o))),
        any::<[u8; 16]>().prop_map(|o| IpAddr::V6(Ipv6Addr::from(o))),
    ]
}

fn any_endpoint() -> impl Strategy<Value = Endpoint> {
    (proptest::option::of(any_ip()), any::<Option<u16>>())
        .prop_map(|(ip, port)| Endpoint { ip, port })
}

/// A chunk `decode` keeps in `other_chunks`: a vendor's, or a generic type
/// it has no field for.
fn any_other_chunk() -> impl Strategy<Value = Chunk<'static>> {
    let ids = prop_oneof![
        (1..=u16::MAX, any::<u16>()),
        (
            Just(0u16),
            prop_oneof![Just(0u16), Just(0x000d), 0x0012..=u16::MAX]
        ),
    ];
    (ids, vec(any::<u8>(), 0..40)).prop_map(|((vendor_id, type_id), value)| Chunk {
        vendor_id,
        type_id,
        value: Cow::Owned(value),
    })
}

fn any_packet() -> impl Strategy<Value = HepPacket<'static>> {
    (
        (
            any::<Option<u8>>(),
            any::<Option<u8>>(),
            any_endpoint(),
            any_endpoint(),
        ),
        (
            any::<Option<u32>>(),
            any::<Option<u32>>(),
            any::<Option<u8>>(),
            any::<Option<u32>>(),
        ),
        (
            proptest::option::of(".{0,20}"),
            proptest::option::of(".{0,40}"),
            proptest::option::of(vec(any::<u8>(), 0..1500)),
            vec(any_other_chunk(), 0..5),
        ),
    )
        .prop_map(
            |(
                (family, ip_protocol, src, dst),
                (timestamp_seconds, timestamp_micros, protocol_type, capture_id),
                (auth_key, correlation_id, payload, other_chunks),
            )| HepPacket {
                version: HepVersion::V3,
                family,
                ip_protocol,
                src,
                dst,
                timestamp_seconds,
                timestamp_micros,
                protocol_type: protocol_type.map(ProtocolType),
                capture_id,
                auth_key: auth_key.map(Cow::Owned),
                correlation_id: correlation_id.map(Cow::Owned),
                payload: payload.map(Cow::Owned),
                other_chunks,
            },
        )
}

/// `HEP3`, a matching length, then chunks of random types, mostly generic,
/// their values often of the width the type needs: gets past the checks
/// far more often than random bytes do.
fn plausible_v3() -> impl Strategy<Value = Vec<u8>> {
    let width = |type_id: u16| match type_id {
        0x0001 | 0x0002 | 0x000b => 1,
        0x0007 | 0x0008 => 2,
        0x0003 | 0x0004 | 0x0009 | 0x000a | 0x000c => 4,
        0x0005 | 0x0006 => 16,
        _ => 8,
    };
    let one = (
        prop_oneof![3 => Just(0u16), 1 => 1u16..3],
        0u16..0x14,
        any::<bool>(),
        vec(0x20u8..0x80, 0..20),
    )
        .prop_map(move |(vendor, type_id, exact, mut value)| {
            if exact {
                value.resize(width(type_id), 0x41);
            }
            chunk(vendor, type_id, &value)
        });
    vec(one, 0..12).prop_map(|chunks| hep3(&chunks))
}

/// A version byte 1 or 2 and random bytes after it.
fn plausible_v1_v2() -> impl Strategy<Value = Vec<u8>> {
    (
        1u8..=2,
        prop_oneof![Just(16u8), Just(40), any::<u8>()],
        prop_oneof![Just(2u8), Just(10), any::<u8>()],
        vec(any::<u8>(), 0..80),
    )
        .prop_map(|(version, len, family, rest)| {
            let mut out = vec![version, len, family];
            out.extend_from_slice(&rest);
            out
        })
}

/// Whatever `decode` returns, `encode_v3` writes bytes that decode to the
/// same packet (as version 3).
fn reencodes(hep: &HepPacket) -> Result<(), TestCaseError> {
    let bytes = encode_v3(hep);
    let again = decode(&bytes).unwrap();
    prop_assert_eq!(
        again,
        HepPacket {
            version: HepVersion::V3,
            ..hep.clone()
        }
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// decode reads back what encode_v3 writes.
    #[test]
    fn encode_v3_round_trips(packet in any_packet()) {
        let bytes = encode_v3(&packet);
        prop_assert_eq!(frame_len(&bytes), Ok(Some(bytes.len())));
        prop_assert_eq!(decode(&bytes).unwrap(), packet);
    }

    /// Nothing a datagram holds makes decode or frame_len panic; what
    /// decodes re-encodes to itself.
    #[test]
    fn decode_never_panics(
        bytes in prop_oneof![vec(any::<u8>(), 0..200), plausible_v3(), plausible_v1_v2()],
    ) {
        if let Ok(hep) = decode(&bytes) {
            reencodes(&hep)?;
        }
        let _ = frame_len(&bytes);
    }

    /// Every truncation of a HEPv3 packet is an error (its length field
    /// promises more), never a panic; a changed byte decodes or errors.
    #[test]
    fn truncated_or_changed_packets_never_panic(
        packet in any_packet(),
        cut in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        flip in 0u8..8,
    ) {
        let bytes = encode_v3(&packet);
        let cut = cut.index(bytes.len());
        prop_assert!(decode(&bytes[..cut]).is_err());
        if let Ok(Some(len)) = frame_len(&bytes[..cut]) {
            prop_assert_eq!(len, bytes.len());
        }
        let mut changed = bytes.clone();
        changed[at.index(bytes.len())] ^= 1 << flip;
        if let Ok(hep) = decode(&changed) {
            reencodes(&hep)?;
        }
    }

    /// The same for the Kamailio captures: a cut v3 packet is an error, a
    /// cut v2 packet is one with less payload.
    #[test]
    fn changed_captures_never_panic(
        which in 0usize..4,
        cut in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let (name, mut bytes) = captures().into_iter().nth(which).unwrap();
        let cut = cut.index(bytes.len());
        if let Ok(hep) = decode(&bytes[..cut]) {
            prop_assert!(name == "invite, v2" && cut >= 28, "{} cut at {} decoded", name, cut);
            reencodes(&hep)?;
        }
        let at = at.index(bytes.len());
        bytes[at] = byte;
        if let Ok(hep) = decode(&bytes) {
            reencodes(&hep)?;
        }
    }

    /// A stream of packets cut anywhere into three reads frames them all.
    #[test]
    fn a_stream_cut_anywhere_frames_every_packet(
        packets in vec(any_packet(), 1..5),
        first in any::<prop::sample::Index>(),
        second in any::<prop::sample::Index>(),
    ) {
        let stream = stream_of(&packets);
        let (a, b) = {
            let a = first.index(stream.len() + 1);
            let b = second.index(stream.len() + 1);
            (a.min(b), a.max(b))
        };
        let mut reader = StreamReader::default();
        reader.receive(&stream[..a]).unwrap();
        reader.receive(&stream[a..b]).unwrap();
        reader.receive(&stream[b..]).unwrap();
        prop_assert_eq!(reader.packets, packets);
    }
}
