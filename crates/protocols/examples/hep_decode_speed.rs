//! How many HEP packets one thread decodes per second.
//!
//! Each packet is a HEPv3 datagram as Kamailio 5.6 `siptrace` sends it
//! (IPv4, UDP, ports, seconds and microseconds, protocol type SIP, capture
//! id 2001) carrying a SIP INVITE of about 900 bytes relayed by the proxy
//! (two Vias, Record-Route, an SDP offer of three codecs and DTMF); 1000 calls, each
//! with its own Call-ID, tags, branch and port. Decoding borrows the
//! payload, so this measures the checks and the chunk walk. A second
//! figure cuts the same packets from one TCP stream buffer with
//! `frame_len` first.
//!
//! Run with `cargo run --release -p cdrhub-protocols --example hep_decode_speed`.

use cdrhub_protocols::hep::{
    Endpoint, HepPacket, HepVersion, ProtocolType, decode, encode_v3, family, frame_len,
    ip_protocol,
};
use std::borrow::Cow;
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

const CALLS: u32 = 1000;

fn invite(call: u32) -> String {
    let sdp = format!(
        "v=0\r\n\
         o=- {session} {session} IN IP4 198.51.100.23\r\n\
         s=-\r\n\
         c=IN IP4 198.51.100.23\r\n\
         t=0 0\r\n\
         m=audio {rtp} RTP/AVP 0 8 18 101\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:18 G729/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-16\r\n\
         a=ptime:20\r\n\
         a=sendrecv\r\n",
        session = 3_912_406_000u64 + u64::from(call),
        rtp = 16_384 + 2 * (call % 8000),
    );
    format!(
        "INVITE sip:+14085551212@192.0.2.40:5060;user=phone SIP/2.0\r\n\
         Record-Route: <sip:192.0.2.10;lr=on;ftag=as{call:08x}>\r\n\
         Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK{call:08x}.0\r\n\
         Via: SIP/2.0/UDP 198.51.100.23:5060;rport=5060;branch=z9hG4bK-{call}-1-0\r\n\
         Max-Forwards: 69\r\n\
         From: \"Front Desk\" <sip:2005@pbx.example.net>;tag=as{call:08x}\r\n\
         To: <sip:+14085551212@carrier.example.com;user=phone>\r\n\
         Contact: <sip:2005@198.51.100.23:5060>\r\n\
         Call-ID: {call:08x}-7f3a2c1d@198.51.100.23\r\n\
         CSeq: 102 INVITE\r\n\
         User-Agent: Asterisk PBX 18.20.0\r\n\
         Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, INFO\r\n\
         Supported: replaces, timer\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\
         \r\n\
         {sdp}",
        sdp.len()
    )
}

fn packet(call: u32) -> Vec<u8> {
    let payload = invite(call);
    encode_v3(&HepPacket {
        version: HepVersion::V3,
        family: Some(family::IPV4),
        ip_protocol: Some(ip_protocol::UDP),
        src: Endpoint::new(Ipv4Addr::new(192, 0, 2, 10), 5060),
        dst: Endpoint::new(Ipv4Addr::new(192, 0, 2, 40), 5060),
        timestamp_seconds: Some(1_780_000_000 + call),
        timestamp_micros: Some(call * 997 % 1_000_000),
        protocol_type: Some(ProtocolType::SIP),
        capture_id: Some(2001),
        auth_key: None,
        correlation_id: None,
        payload: Some(Cow::Owned(payload.into_bytes())),
        other_chunks: vec![],
    })
}

/// Decodes every packet in `stream`, cutting them with `frame_len`.
fn decode_stream(stream: &[u8]) -> usize {
    let mut rest = stream;
    let mut decoded = 0;
    while let Ok(Some(len)) = frame_len(rest) {
        let Some(packet) = rest.get(..len) else { break };
        black_box(decode(black_box(packet)).ok());
        decoded += 1;
        rest = &rest[len..];
    }
    decoded
}

fn main() {
    let packets: Vec<Vec<u8>> = (0..CALLS).map(packet).collect();
    let bytes: usize = packets.iter().map(Vec::len).sum();
    let payload: usize = packets
        .iter()
        .map(|p| decode(p).map_or(0, |h| h.payload.map_or(0, |p| p.len())))
        .sum();
    println!(
        "{} packets, {:.1} bytes a packet on average ({:.1} of them SIP)",
        packets.len(),
        bytes as f64 / packets.len() as f64,
        payload as f64 / packets.len() as f64
    );
    // Check them once, then warm up.
    for packet in &packets {
        if let Err(e) = decode(packet) {
            eprintln!("a generated packet does not decode: {e}");
            std::process::exit(1);
        }
    }
    for packet in &packets {
        black_box(decode(black_box(packet)).ok());
    }

    for round in 1..=3 {
        let mut decoded = 0u64;
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(2) {
            for packet in &packets {
                black_box(decode(black_box(packet)).ok());
            }
            decoded += packets.len() as u64;
        }
        let seconds = start.elapsed().as_secs_f64();
        println!(
            "round {round}: {:.0} packets/s ({:.0} ns a packet, {:.0} MB/s), one thread",
            decoded as f64 / seconds,
            seconds * 1e9 / decoded as f64,
            (decoded as f64 / packets.len() as f64) * bytes as f64 / seconds / 1e6
        );
    }

    let stream: Vec<u8> = packets.concat();
    assert_eq!(decode_stream(&stream), packets.len());
    let mut decoded = 0u64;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        decoded += decode_stream(black_box(&stream)) as u64;
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "from one TCP stream buffer (frame_len, then decode): {:.0} packets/s ({:.0} ns a \
         packet), one thread",
        decoded as f64 / seconds,
        seconds * 1e9 / decoded as f64
    );
}
