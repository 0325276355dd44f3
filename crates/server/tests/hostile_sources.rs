//! Hostile senders against the HEP listener and the gateway feed (issue
//! 9): connections over the cap, silent connections, a sender that trickles
//! a line a byte at a time, oversized lines and invalid UTF-8, addresses
//! outside the allow-lists, a flood of garbage from one address. Each gets
//! its documented reaction (closed, dropped with a counter) and the others
//! are still served. Raw bytes over real sockets; nothing is timed.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use cdrhub_server::sources::guard::AllowList;
use cdrhub_server::sources::hep::HepSourceConfig;
use common::{Options, TestServer, trickle};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

const PATIENCE: Duration = Duration::from_secs(60);

fn allow(entries: &[&str]) -> AllowList {
    AllowList::try_from(entries.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap()
}

async fn source(server: &mut TestServer, name: &str) -> Value {
    let sources = server.get_json("/api/v1/sources").await;
    sources["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == name)
        .unwrap_or_else(|| panic!("no source {name}: {sources:#}"))
        .clone()
}

/// Waits until `done` holds of the source's status, and returns it.
async fn until(server: &mut TestServer, name: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let s = source(server, name).await;
        if done(&s) {
            return s;
        }
        assert!(tokio::time::Instant::now() < deadline, "never: {s:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn counter(s: &Value, name: &str) -> u64 {
    s["counters"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name}: {s:#}"))
}

fn stored(s: &Value) -> u64 {
    s["senders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["records_total"].as_u64().unwrap())
        .sum()
}

/// Reads until the server closes the connection.
async fn closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the server never closed the connection");
    got
}

async fn tcp_from(source: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(source.parse().unwrap(), 0))
        .unwrap();
    socket.connect(to).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hep_tcp_connections_over_the_cap_are_closed_at_once_and_silent_ones_after_the_idle_timeout()
 {
    // Idle for 3 s: long enough that the third connection comes while the
    // first two still hold their slots, even on a slow machine.
    let mut server = TestServer::with_hep(HepSourceConfig {
        max_connections: 2,
        idle_timeout_s: 3,
        ..HepSourceConfig::default()
    })
    .await;
    let (_, tcp) = server.hep_addrs.unwrap();
    let mut silent = vec![
        TcpStream::connect(tcp).await.unwrap(),
        TcpStream::connect(tcp).await.unwrap(),
    ];
    let mut third = TcpStream::connect(tcp).await.unwrap();
    closed(&mut third).await;
    for s in &mut silent {
        closed(s).await;
    }
    let s = until(&mut server, "sip", |s| {
        counter(s, "refused_connections") >= 1 && counter(s, "idle_closed") >= 2
    })
    .await;
    assert_eq!(counter(&s, "refused_connections"), 1, "{s:#}");
    // The slots are free again: an agent that sends is served.
    let packets = common::kamailio_packets();
    let mut agent = TcpStream::connect(tcp).await.unwrap();
    agent.write_all(&packets.concat()).await.unwrap();
    let s = until(&mut server, "sip", |s| stored(s) == packets.len() as u64).await;
    assert_eq!(counter(&s, "bad_header"), 0, "{s:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hep_from_outside_the_allow_list_is_dropped_and_counted() {
    let mut server = TestServer::with_hep(HepSourceConfig {
        allow: allow(&["127.0.0.2"]),
        ..HepSourceConfig::default()
    })
    .await;
    let (udp, tcp) = server.hep_addrs.unwrap();
    let packets = common::kamailio_packets();
    let stranger = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for p in &packets {
        stranger.send_to(p, udp).await.unwrap();
    }
    let mut stranger_tcp = tcp_from("127.0.0.1", tcp).await;
    let _ = stranger_tcp.write_all(&packets[0]).await;
    closed(&mut stranger_tcp).await;
    let s = until(&mut server, "sip", |s| {
        counter(s, "not_allowed") == packets.len() as u64 + 1
    })
    .await;
    assert_eq!(stored(&s), 0, "{s:#}");
    let agent = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    for p in &packets {
        agent.send_to(p, udp).await.unwrap();
    }
    until(&mut server, "sip", |s| stored(s) == packets.len() as u64).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_garbage_from_one_address_is_counted_and_another_agent_is_served() {
    let mut server = TestServer::with_hep(HepSourceConfig::default()).await;
    let (udp, tcp) = server.hep_addrs.unwrap();
    let flood = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let garbage: Vec<u8> = (0..1200u32).map(|i| (i * 7919 % 251) as u8).collect();
    let sent = 20_000u64;
    for n in 0..sent {
        let mut packet = garbage.clone();
        packet[..8].copy_from_slice(&n.to_be_bytes());
        flood.send_to(&packet, udp).await.unwrap();
    }
    // Every packet is either counted as bad or dropped by the kernel's full
    // buffer (which /api/v1/sources reports): none is stored, none lost
    // from sight.
    let s = until(&mut server, "sip", |s| {
        counter(s, "bad_header") + s["kernel_drops"].as_u64().unwrap_or(0) >= sent
    })
    .await;
    assert_eq!(stored(&s), 0, "{s:#}");
    // Meanwhile, another agent's call arrives whole over TCP.
    let packets = common::kamailio_packets();
    let mut agent = TcpStream::connect(tcp).await.unwrap();
    agent.write_all(&packets.concat()).await.unwrap();
    until(&mut server, "sip", |s| stored(s) == packets.len() as u64).await;
    let calls = server.calls_where("source=sip&limit=10").await;
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_eq!(calls[0]["disposition"], "answered");
}

async fn feed_server(configure: fn(&mut cdrhub_server::Config)) -> TestServer {
    TestServer::start_with(Options {
        feed: true,
        configure: Some(configure),
        ..Options::default()
    })
    .await
}

const LOGIN: &str =
    "GWFEED/1 LOGIN seq=1 gw=8200 mac=000C2A020082 fxs=2 fxo=2 isdn=0 callref=74 clock=unset";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_line_sent_a_byte_at_a_time_is_cut_off_after_the_session_timeout() {
    let server = feed_server(|c| c.sources.feed.session_timeout_s = 1).await;
    let (tcp, _) = server.feed_addrs.unwrap();
    let mut slow = TcpStream::connect(tcp).await.unwrap();
    let line = format!("{LOGIN}\n");
    let sent = trickle(
        &mut slow,
        line.as_bytes(),
        Duration::from_millis(100),
        |_| false,
    )
    .await
    .sent;
    assert!(
        sent < line.len(),
        "the server waited for the whole slow line"
    );
    // Another gateway logs in at its own pace.
    let mut other = BufReader::new(TcpStream::connect(tcp).await.unwrap());
    other.get_mut().write_all(line.as_bytes()).await.unwrap();
    let mut answer = String::new();
    other.read_line(&mut answer).await.unwrap();
    assert!(answer.starts_with("GWFEED/1 OK seq=1"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_lines_and_invalid_utf8_are_bad_packets_and_the_connection_goes_on() {
    let mut server = feed_server(|_| {}).await;
    let (tcp, _) = server.feed_addrs.unwrap();
    let mut conn = BufReader::new(TcpStream::connect(tcp).await.unwrap());
    let mut junk = b"GWFEED/1 KEEPALIVE seq=2 gw=8200 mac=000C2A020082 note=".to_vec();
    junk.extend([0xff, 0xfe, b'\n']);
    let long = format!("GWFEED/1 KEEPALIVE seq=3 {}\n", "x".repeat(1 << 20));
    conn.get_mut().write_all(junk.as_slice()).await.unwrap();
    conn.get_mut().write_all(long.as_bytes()).await.unwrap();
    conn.get_mut()
        .write_all(format!("{LOGIN}\n").as_bytes())
        .await
        .unwrap();
    // Each bad line may be answered ERR; the LOGIN after them is answered OK.
    let mut answers = Vec::new();
    loop {
        let mut line = String::new();
        let n = tokio::time::timeout(PATIENCE, conn.read_line(&mut line))
            .await
            .expect("an answer")
            .unwrap();
        assert!(n > 0, "the connection was closed: {answers:?}");
        answers.push(line.clone());
        if line.starts_with("GWFEED/1 OK seq=1") {
            break;
        }
    }
    let s = until(&mut server, "feed", |s| counter(s, "bad_packets") >= 2).await;
    assert_eq!(counter(&s, "bad_packets"), 2, "{s:#} {answers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_from_outside_the_allow_list_is_dropped_unanswered() {
    let mut server = feed_server(|c| c.sources.feed.allow = allow(&["127.0.0.2"])).await;
    let (tcp, udp) = server.feed_addrs.unwrap();
    let mut stranger = tcp_from("127.0.0.1", tcp).await;
    let _ = stranger.write_all(format!("{LOGIN}\n").as_bytes()).await;
    assert!(closed(&mut stranger).await.is_empty(), "answered");
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(LOGIN.as_bytes(), udp).await.unwrap();
    let s = until(&mut server, "feed", |s| counter(s, "not_allowed") == 2).await;
    assert_eq!(counter(&s, "lines"), 0, "{s:#}");
    // From the allowed address, the gateway is served.
    let mut gateway = BufReader::new(tcp_from("127.0.0.2", tcp).await);
    gateway
        .get_mut()
        .write_all(format!("{LOGIN}\n").as_bytes())
        .await
        .unwrap();
    let mut answer = String::new();
    gateway.read_line(&mut answer).await.unwrap();
    assert!(answer.starts_with("GWFEED/1 OK seq=1"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_and_hep_speak_tls_with_the_https_certificate_and_refuse_plain_text_there() {
    let mut server = TestServer::start_with(Options {
        https: true,
        feed: true,
        hep: Some(HepSourceConfig {
            enabled: true,
            ..HepSourceConfig::default()
        }),
        configure: Some(|c| {
            let localhost = SocketAddr::from(([127, 0, 0, 1], 0));
            c.sources.feed.tls_listen = Some(localhost);
            c.sources.hep.tls_listen = Some(localhost);
        }),
        ..Options::default()
    })
    .await;
    let feed_tls = server.feed_tls_addr.expect("the feed's TLS listener");
    let hep_tls = server.hep_tls_addr.expect("HEP's TLS listener");

    let mut gateway = BufReader::new(server.tls_stream(feed_tls).await);
    gateway
        .get_mut()
        .write_all(format!("{LOGIN}\n").as_bytes())
        .await
        .unwrap();
    let mut answer = String::new();
    gateway.read_line(&mut answer).await.unwrap();
    assert!(answer.starts_with("GWFEED/1 OK seq=1"), "{answer}");

    let packets = common::kamailio_packets();
    let mut agent = server.tls_stream(hep_tls).await;
    agent.write_all(&packets.concat()).await.unwrap();
    agent.flush().await.unwrap();
    until(&mut server, "sip", |s| stored(s) == packets.len() as u64).await;

    // Plain text on a TLS port is not a gateway's line.
    let mut plain = TcpStream::connect(feed_tls).await.unwrap();
    let _ = plain.write_all(format!("{LOGIN}\n").as_bytes()).await;
    let got = closed(&mut plain).await;
    assert!(
        !String::from_utf8_lossy(&got).contains("OK"),
        "answered in plain text"
    );
    let s = source(&mut server, "feed").await;
    assert_eq!(counter(&s, "lines"), 1, "{s:#}");
}

#[tokio::test]
async fn tls_listen_without_an_https_section_is_a_configuration_error() {
    let text = "[sources.feed]\nenabled = true\ntls_listen = \"0.0.0.0:6091\"\n";
    let e = cdrhub_server::Config::parse(text, std::path::Path::new("cdrhub.toml")).unwrap_err();
    assert!(
        e.to_string()
            .contains("sources.feed.tls_listen needs the [https] section"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hep_frame_trickled_a_byte_at_a_time_is_cut_off_after_the_idle_timeout() {
    let mut server = TestServer::with_hep(HepSourceConfig {
        idle_timeout_s: 1,
        ..HepSourceConfig::default()
    })
    .await;
    let (_, tcp) = server.hep_addrs.unwrap();
    let packet = common::kamailio_packets().remove(0);
    let mut slow = TcpStream::connect(tcp).await.unwrap();
    let sent = trickle(&mut slow, &packet, Duration::from_millis(100), |_| false)
        .await
        .sent;
    assert!(
        sent < packet.len(),
        "the server waited for the whole slow frame"
    );
    let s = until(&mut server, "sip", |s| counter(s, "idle_closed") == 1).await;
    assert_eq!(stored(&s), 0, "{s:#}");
}

mod radius {
    use super::*;
    use cdrhub_protocols::radius::{self as proto, Attribute, attr};

    const SECRET: &str = "testing123";

    fn request(identifier: u8, secret: &str) -> Vec<u8> {
        proto::accounting_request(
            identifier,
            &[
                Attribute::integer(attr::ACCT_STATUS_TYPE, 1),
                Attribute::new(attr::ACCT_SESSION_ID, format!("S-{identifier}")),
                Attribute::new(attr::NAS_IP_ADDRESS, vec![10, 9, 9, 1]),
            ],
            secret.as_bytes(),
        )
    }

    /// Sends `packet` and waits a while for an answer.
    async fn answered(socket: &UdpSocket, to: SocketAddr, packet: &[u8]) -> bool {
        socket.send_to(packet, to).await.unwrap();
        let mut buf = [0u8; 4096];
        matches!(
            tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf)).await,
            Ok(Ok((n, _))) if n >= 20 && buf[0] == 5
        )
    }

    fn client(server: &Value) -> Value {
        server["clients"]["127.0.0.0/8"].clone()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn truncated_lying_and_oversized_packets_and_a_wrong_secret_flood_are_counted_and_the_gateway_is_answered()
     {
        let config: cdrhub_server::sources::radius::RadiusSourceConfig = toml::from_str(&format!(
            "enabled = true\n[[clients]]\naddress = \"127.0.0.0/8\"\nsecret = \"{SECRET}\"\n"
        ))
        .unwrap();
        let mut server = TestServer::start_with(Options {
            radius: Some(config),
            ..Options::default()
        })
        .await;
        let to = server.radius_addr.unwrap();
        let attacker = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let good = request(1, SECRET);
        let mut longer = good.clone();
        let claimed = (good.len() as u16 + 40).to_be_bytes();
        longer[2..4].copy_from_slice(&claimed);
        let mut shorter = good.clone();
        shorter[2..4].copy_from_slice(&12u16.to_be_bytes());
        let mut oversized = good.clone();
        oversized.resize(5000, 0x1a);
        oversized[2..4].copy_from_slice(&5000u16.to_be_bytes());
        let malformed = [good[..10].to_vec(), longer, shorter, oversized];
        for packet in &malformed {
            attacker.send_to(packet, to).await.unwrap();
        }
        let flood = 2_000u64;
        for n in 0..flood {
            attacker
                .send_to(&request(n as u8, "not-the-secret"), to)
                .await
                .unwrap();
        }
        let s = until(&mut server, "radius", |s| {
            let c = client(s);
            c["malformed"].as_u64().unwrap_or(0)
                + c["bad_authenticator"].as_u64().unwrap_or(0)
                + s["kernel_drops"].as_u64().unwrap_or(0)
                >= malformed.len() as u64 + flood
        })
        .await;
        let c = client(&s);
        assert_eq!(
            c["answered"], 0,
            "nothing of the attacker's was answered: {s:#}"
        );
        assert_eq!(stored(&s), 0, "{s:#}");
        // The gateway with the right secret is answered meanwhile.
        let gateway = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        assert!(answered(&gateway, to, &request(7, SECRET)).await, "{s:#}");
        until(&mut server, "radius", |s| stored(s) == 1).await;
    }
}
