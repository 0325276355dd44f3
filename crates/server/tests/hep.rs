//! The HEP listener over real sockets (issue 6, point 1): the packets
//! Kamailio mirrored of one call (tests/data/hep), over UDP and TCP, are
//! journaled; bad headers, a wrong authentication key and an agent not
//! allowed are counted and dropped, and the listener keeps serving.

mod common;

use std::time::Duration;

use cdrhub_server::sources::hep::HepSourceConfig;
use common::{Options, TestServer};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

async fn hep_source(server: &mut TestServer) -> Value {
    let sources = server.get_json("/api/v1/sources").await;
    sources["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == "sip")
        .unwrap()
        .clone()
}

/// Waits until the listener has counted `n` packets.
async fn counted(server: &mut TestServer, n: u64) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let s = hep_source(server).await;
        let stored: u64 = s["senders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["records_total"].as_u64().unwrap())
            .sum();
        let dropped = ["bad_header", "bad_auth_key", "unknown_agent"]
            .iter()
            .map(|k| s["counters"][k].as_u64().unwrap())
            .sum::<u64>();
        if stored + dropped >= n || tokio::time::Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailios_packets_over_udp_and_tcp_are_journaled_and_bad_ones_counted() {
    let mut server = TestServer::start_with(Options {
        hep: Some(HepSourceConfig {
            enabled: true,
            capture_ids: vec![1],
            ..HepSourceConfig::default()
        }),
        ..Options::default()
    })
    .await;
    let (udp, tcp) = server.hep_addrs.expect("the HEP listener");
    let packets = common::kamailio_packets();
    assert!(packets.len() >= 10, "the capture holds the call");

    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for p in &packets {
        socket.send_to(p, udp).await.unwrap();
    }
    // Not HEP, a truncated packet, another capture agent.
    socket
        .send_to(b"INVITE sip:x SIP/2.0\r\n\r\n", udp)
        .await
        .unwrap();
    socket.send_to(&packets[0][..20], udp).await.unwrap();
    let mut other = packets[0].clone();
    // The capture id chunk (0x000c) of Kamailio's packet: its 4-byte value.
    let at = other
        .windows(6)
        .position(|w| w == [0, 0, 0, 0x0c, 0, 10])
        .expect("a capture id chunk")
        + 6;
    other[at..at + 4].copy_from_slice(&7u32.to_be_bytes());
    socket.send_to(&other, udp).await.unwrap();
    // The same call again over TCP, in pieces.
    let mut stream = tokio::net::TcpStream::connect(tcp).await.unwrap();
    let all: Vec<u8> = packets.concat();
    for piece in all.chunks(333) {
        stream.write_all(piece).await.unwrap();
    }
    stream.flush().await.unwrap();

    let total = 2 * packets.len() as u64 + 3;
    let s = counted(&mut server, total).await;
    assert_eq!(s["counters"]["packets"], total, "{s:#}");
    assert_eq!(s["counters"]["bad_header"], 2);
    assert_eq!(s["counters"]["unknown_agent"], 1);
    assert_eq!(s["kernel_drops"], 0, "the kernel dropped nothing");
    let senders = s["senders"].as_array().unwrap();
    assert_eq!(senders.len(), 1, "{s:#}");
    assert_eq!(senders[0]["sender"], "1@127.0.0.1");
    assert_eq!(senders[0]["records_total"], 2 * packets.len() as u64);
    assert_eq!(
        s["agents"]["1@127.0.0.1"]["packets"],
        2 * packets.len() as u64
    );

    // The call they carry, once: the second copy of each message changes
    // nothing.
    let calls = server.calls_where("source=sip&limit=10").await;
    assert_eq!(calls.len(), 1, "{calls:#?}");
    let call = &calls[0];
    println!("{call:#}");
    assert_eq!(call["sender"], "1@127.0.0.1");
    assert_eq!(call["caller"], "sipp");
    assert_eq!(call["dialed"], "service");
    assert_eq!(call["disposition"], "answered");
    let detail = server.call(call["id"].as_str().unwrap()).await;
    assert_eq!(
        detail["legs"].as_array().unwrap().len(),
        2,
        "the O-CDR and the T-CDR"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_authentication_key_is_dropped() {
    let mut server = TestServer::start_with(Options {
        hep: Some(HepSourceConfig {
            enabled: true,
            auth_key: Some("myHep".into()),
            ..HepSourceConfig::default()
        }),
        ..Options::default()
    })
    .await;
    let (udp, _) = server.hep_addrs.unwrap();
    let packets = common::kamailio_packets();
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(&packets[0], udp).await.unwrap();
    let s = counted(&mut server, 1).await;
    assert_eq!(
        s["counters"]["bad_auth_key"], 1,
        "Kamailio's packets carry no key: {s:#}"
    );
    assert!(s["senders"].as_array().unwrap().is_empty());
}

/// Kamailio's HEPv3 packet as the same agent set to `hep_version 2` sends
/// it: the v2 header (IPv4), the time and the capture id, the SIP message.
fn as_hepv2(v3: &[u8]) -> Vec<u8> {
    use cdrhub_protocols::hep;
    let p = hep::decode(v3).expect("Kamailio's packet decodes");
    let (std::net::SocketAddr::V4(src), std::net::SocketAddr::V4(dst)) = (
        p.src.socket_addr().expect("a source"),
        p.dst.socket_addr().expect("a destination"),
    ) else {
        panic!("the capture is IPv4");
    };
    let mut out = vec![2, 16, 2, p.ip_protocol.unwrap_or(17)];
    out.extend(src.port().to_be_bytes());
    out.extend(dst.port().to_be_bytes());
    out.extend(src.ip().octets());
    out.extend(dst.ip().octets());
    out.extend(p.timestamp_seconds.unwrap_or(0).to_le_bytes());
    out.extend(p.timestamp_micros.unwrap_or(0).to_le_bytes());
    out.extend((p.capture_id.unwrap_or(0) as u16).to_le_bytes());
    out.extend([0, 0]);
    out.extend_from_slice(p.payload.as_deref().expect("a SIP payload"));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_call_sent_as_hepv2_over_udp_makes_the_same_call() {
    let mut server = TestServer::with_hep(HepSourceConfig::default()).await;
    let (udp, _) = server.hep_addrs.unwrap();
    let packets: Vec<Vec<u8>> = common::kamailio_packets()
        .iter()
        .map(|p| as_hepv2(p))
        .collect();
    assert_eq!(
        cdrhub_protocols::hep::decode(&packets[0]).unwrap().version,
        cdrhub_protocols::hep::HepVersion::V2
    );
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for p in &packets {
        socket.send_to(p, udp).await.unwrap();
    }
    let s = counted(&mut server, packets.len() as u64).await;
    assert_eq!(s["counters"]["bad_header"], 0, "{s:#}");
    let calls = server.calls_where("source=sip&limit=10").await;
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_eq!(calls[0]["caller"], "sipp");
    assert_eq!(calls[0]["dialed"], "service");
    assert_eq!(calls[0]["disposition"], "answered");
}
