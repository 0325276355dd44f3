//! How many SIP messages one thread parses per second.
//!
//! The message is an INVITE as a Kamailio relay mirrors it over HEP after
//! an Asterisk PBX sent it: two Vias and a Record-Route, a caller with a
//! display name and P-Asserted-Identity, a correlation header `X-CID`, and
//! an SDP offer of three codecs (954 bytes). 1,000 of them differ in
//! Call-ID, tags and branch. Two figures: `parse` alone, and `parse` plus
//! everything a correlator reads of an INVITE (numbers, tags, branch,
//! X-CID, and the SDP for hold).
//!
//! Run with `cargo run --release -p cdrhub-protocols --example sip_parse_speed`.

use cdrhub_protocols::sip::{SipMessage, parse};
use std::hint::black_box;
use std::time::{Duration, Instant};

const SDP: &str = "\
v=0\r
o=- 1733080000 1733080000 IN IP4 198.51.100.20\r
s=Asterisk\r
c=IN IP4 198.51.100.20\r
t=0 0\r
m=audio 17356 RTP/AVP 8 0 101\r
a=rtpmap:8 PCMA/8000\r
a=rtpmap:0 PCMU/8000\r
a=rtpmap:101 telephone-event/8000\r
a=ptime:20\r
a=sendrecv\r
";

fn invite(n: u32) -> Vec<u8> {
    format!(
        "\
INVITE sip:+4930123456@gw1.carrier.example.net:5060;user=phone SIP/2.0\r
Record-Route: <sip:192.0.2.10;lr;ftag=as{n:08x}>\r
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK7f3a.{n:08x}.0\r
Via: SIP/2.0/UDP 198.51.100.20:5060;rport;branch=z9hG4bKPj{n:08x}\r
Max-Forwards: 69\r
From: \"Anna Schmidt\" <sip:+4989765432@pbx.example.com;user=phone>;tag=as{n:08x}\r
To: <sip:+4930123456@gw1.carrier.example.net;user=phone>\r
Call-ID: {n:08x}3c2a1b0f@198.51.100.20\r
CSeq: 102 INVITE\r
Contact: <sip:+4989765432@198.51.100.20:5060;transport=udp>\r
P-Asserted-Identity: \"Anna Schmidt\" <sip:+4989765432@pbx.example.com;user=phone>\r
User-Agent: Asterisk PBX 18\r
X-CID: 7f3a0c1d-{n:08x}\r
Content-Type: application/sdp\r
Content-Length: {}\r
\r
{SDP}",
        SDP.len()
    )
    .into_bytes()
}

/// What a correlator takes from an INVITE; a count so nothing is optimised
/// away.
fn correlate(message: &SipMessage<'_>) -> usize {
    let mut seen = message.call_id.len();
    seen += message.from.uri.number().map_or(0, |n| n.len());
    seen += message.to.uri.number().map_or(0, |n| n.len());
    seen += message.from.tag().map_or(0, str::len);
    seen += message.via.and_then(|v| v.branch()).map_or(0, str::len);
    seen += message.cseq.number as usize;
    if let Ok(Some(identity)) = message.p_asserted_identity() {
        seen += identity.uri.user.map_or(0, str::len);
    }
    seen += message.header("X-CID").map_or(0, str::len);
    if let Ok(Some(sdp)) = message.sdp() {
        seen += usize::from(sdp.is_on_hold()) + sdp.media.len();
    }
    seen
}

fn measure(label: &str, messages: &[Vec<u8>], bytes: usize, work: impl Fn(&[u8]) -> usize) {
    for message in messages {
        black_box(work(black_box(message)));
    }
    for round in 1..=3 {
        let mut parsed = 0u64;
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(2) {
            for message in messages {
                black_box(work(black_box(message)));
            }
            parsed += messages.len() as u64;
        }
        let seconds = start.elapsed().as_secs_f64();
        println!(
            "{label}, round {round}: {:.0} messages/s ({:.0} ns a message, {:.0} MB/s), one thread",
            parsed as f64 / seconds,
            seconds * 1e9 / parsed as f64,
            (parsed as f64 / messages.len() as f64) * bytes as f64 / seconds / 1e6
        );
    }
}

fn main() {
    let messages: Vec<Vec<u8>> = (0..1000).map(invite).collect();
    let bytes: usize = messages.iter().map(Vec::len).sum();
    println!(
        "{} INVITEs with SDP, {:.0} bytes each on average",
        messages.len(),
        bytes as f64 / messages.len() as f64
    );
    for message in &messages {
        match parse(message) {
            Ok(parsed) if parsed.sdp().is_ok_and(|s| s.is_some()) => {}
            Ok(_) => {
                eprintln!("a generated INVITE has no SDP");
                std::process::exit(1);
            }
            Err(e) => {
                eprintln!("a generated INVITE does not parse: {e}");
                std::process::exit(1);
            }
        }
    }
    measure("parse", &messages, bytes, |m| {
        parse(m).map_or(0, |m| m.headers().len())
    });
    measure("parse and read", &messages, bytes, |m| {
        parse(m).map_or(0, |m| correlate(&m))
    });
}
