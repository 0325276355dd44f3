//! The gateway event feed over real sockets (issue 5; docs/gateway-feed.md):
//! the seed's gateway logs in over TCP, sends the seed's calls, a bad line,
//! logs in again from another address (kicking out the first connection)
//! and logs out; another gateway speaks UDP and sends a line twice. The
//! gateway list, the log, the real-time events and the CDR report show it.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Options, TestServer};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

const GW: &str = "8200_000C2A020082";
const WAIT: Duration = Duration::from_secs(20);

async fn feed_server() -> TestServer {
    TestServer::start_with(Options {
        feed: true,
        ..Options::default()
    })
    .await
}

/// A TCP connection from `local` (an address of 127.0.0.0/8).
async fn connect(server: &TestServer, local: [u8; 4]) -> BufReader<TcpStream> {
    let (tcp, _) = server.feed_addrs.expect("the feed listens");
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((local, 0))).unwrap();
    BufReader::new(socket.connect(tcp).await.unwrap())
}

/// Sends the lines in one write and reads one answer per line.
async fn exchange(conn: &mut BufReader<TcpStream>, lines: &[&str]) -> Vec<String> {
    let mut out = lines.join("\n");
    out.push('\n');
    conn.get_mut().write_all(out.as_bytes()).await.unwrap();
    let mut answers = Vec::new();
    for _ in lines {
        let mut answer = String::new();
        tokio::time::timeout(WAIT, conn.read_line(&mut answer))
            .await
            .expect("an answer in time")
            .unwrap();
        answers.push(answer.trim_end().to_owned());
    }
    answers
}

/// Waits until `check` holds of the gateway log of `gateway`.
async fn log_until(
    server: &mut TestServer,
    query: &str,
    check: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let page = server
            .get_json(&format!("/api/v1/gateways/log?{query}"))
            .await;
        let entries = page["entries"].as_array().cloned().unwrap_or_default();
        if check(&entries) || tokio::time::Instant::now() > deadline {
            return entries;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const LOGIN: &str = "GWFEED/1 LOGIN seq=1 gw=8200 mac=000C2A020082 addr=61.222.171.22:2348 fxs=2 fxo=2 isdn=0 callref=74 clock=2000-01-02T08:17:38";

/// The seed's calls (docs/gateway-feed.md): a call out with DTMF, a PSTN
/// call out to VoIP, a call in, hook on/off, a refused call, a failed call
/// out, and a call out through the PSTN still in progress.
const CALLS: &[&str] = &[
    "GWFEED/1 HOOK_OFF seq=2 gw=8200 mac=000C2A020082 ref=1 port=1 at=2000-01-01T08:13:11",
    "GWFEED/1 DIAL seq=3 gw=8200 mac=000C2A020082 ref=1 port=1 at=2000-01-01T08:13:13 digits=2252",
    "GWFEED/1 RING_BACK seq=4 gw=8200 mac=000C2A020082 ref=1 port=1 at=2000-01-01T08:13:13",
    "GWFEED/1 TALK seq=5 gw=8200 mac=000C2A020082 ref=1 port=1 at=2000-01-01T08:13:14 codec=\"C(18) M(17)\"",
    "GWFEED/1 DIAL seq=6 gw=8200 mac=000C2A020082 ref=1 port=1 at=2000-01-01T08:13:16 digits=3",
    "GWFEED/1 HOOK_ON seq=7 gw=8200 mac=000C2A020082 ref=1 port=1 at=2000-01-01T08:15:30",
    "GWFEED/1 PSTN_CALL_IN seq=8 gw=8200 mac=000C2A020082 ref=2 port=4 at=2000-01-01T08:47:05 cid=103",
    "GWFEED/1 PSTN_HOOK_OFF seq=9 gw=8200 mac=000C2A020082 ref=2 port=4 at=2000-01-01T08:47:05",
    "GWFEED/1 PSTN_CONNECTED seq=10 gw=8200 mac=000C2A020082 ref=2 port=4 at=2000-01-01T08:47:05",
    "GWFEED/1 DIAL seq=11 gw=8200 mac=000C2A020082 ref=2 port=4 at=2000-01-01T08:47:05 digits=2252",
    "GWFEED/1 RING_BACK seq=12 gw=8200 mac=000C2A020082 ref=2 port=4 at=2000-01-01T08:47:09",
    "GWFEED/1 TALK seq=13 gw=8200 mac=000C2A020082 ref=2 port=4 at=2000-01-01T08:47:09 codec=\"C(18) M(17)\"",
    "GWFEED/1 REMOTE_HOOK_ON seq=14 gw=8200 mac=000C2A020082 ref=2 port=4 at=2000-01-01T08:48:44",
    "GWFEED/1 PSTN_HOOK_ON seq=15 gw=8200 mac=000C2A020082 ref=2 port=4 at=2000-01-01T08:48:44",
    "GWFEED/1 HOOK_ON seq=16 gw=8200 mac=000C2A020082 ref=2 port=4 at=2000-01-01T08:48:44",
    "GWFEED/1 CALL_IN seq=17 gw=8200 mac=000C2A020082 ref=98 port=1 at=2000-01-01T11:34:01 cid=8378701",
    "GWFEED/1 HOOK_OFF seq=18 gw=8200 mac=000C2A020082 ref=98 port=1 at=2000-01-01T11:34:03",
    "GWFEED/1 TALK seq=19 gw=8200 mac=000C2A020082 ref=98 port=1 at=2000-01-01T11:34:03 codec=\"C(18) M(17)\"",
    "GWFEED/1 HOOK_ON seq=20 gw=8200 mac=000C2A020082 ref=98 port=1 at=2000-01-01T11:35:08",
    "GWFEED/1 HOOK_OFF seq=21 gw=8200 mac=000C2A020082 ref=89 port=2 at=2000-01-01T09:13:55",
    "GWFEED/1 HOOK_ON seq=22 gw=8200 mac=000C2A020082 ref=89 port=2 at=2000-01-01T09:13:55",
    "GWFEED/1 CALL_IN_REJECT seq=23 gw=8200 mac=000C2A020082 ref=109 at=2000-01-01T12:52:18 cid=1126701 reason=\"no free port\"",
    "GWFEED/1 HOOK_OFF seq=24 gw=8200 mac=000C2A020082 ref=113 port=2 at=2000-01-01T13:20:00",
    "GWFEED/1 DIAL seq=25 gw=8200 mac=000C2A020082 ref=113 port=2 at=2000-01-01T13:20:02 digits=8378#",
    "GWFEED/1 CALL_OUT_FAIL seq=26 gw=8200 mac=000C2A020082 ref=113 port=2 at=2000-01-01T13:20:03 reason=busy",
    "GWFEED/1 HOOK_ON seq=27 gw=8200 mac=000C2A020082 ref=113 port=2 at=2000-01-01T13:20:09",
    "GWFEED/1 HOOK_OFF seq=28 gw=8200 mac=000C2A020082 ref=88 port=3 pport=3 at=2000-01-01T09:07:49",
    "GWFEED/1 DIAL seq=29 gw=8200 mac=000C2A020082 ref=88 port=3 at=2000-01-01T09:07:50 digits=2",
    "GWFEED/1 PSTN_DIAL seq=30 gw=8200 mac=000C2A020082 ref=88 port=3 pport=3 at=2000-01-01T09:07:51 digits=26735152",
    "GWFEED/1 PSTN_CONNECTED seq=31 gw=8200 mac=000C2A020082 ref=88 port=3 pport=3 at=2000-01-01T09:07:53",
    "GWFEED/1 TALK seq=32 gw=8200 mac=000C2A020082 ref=88 port=3 at=2000-01-01T09:07:56 codec=G.729",
];

/// A feed gateway's statistics in `/api/v1/sources`.
async fn feed_sender(server: &mut TestServer, name: &str) -> Option<Value> {
    let sources = server.get_json("/api/v1/sources").await;
    let feed = sources["sources"]
        .as_array()?
        .iter()
        .find(|s| s["source"] == "feed")?
        .clone();
    feed["senders"]
        .as_array()?
        .iter()
        .find(|s| s["sender"] == name)
        .cloned()
}

async fn report(server: &mut TestServer, filter: &str) -> Value {
    server
        .get_json(&format!(
            "/api/v1/gateways/{GW}/report?filter={filter}&limit=1000"
        ))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_gateway_logs_in_calls_is_kicked_out_and_logs_out_over_tcp() {
    let mut server = feed_server().await;

    // Not logged in yet: nothing but LOGIN is taken.
    let mut first = connect(&server, [127, 0, 0, 1]).await;
    assert_eq!(
        exchange(&mut first, &[CALLS[0]]).await,
        ["GWFEED/1 ERR seq=2 reason=\"not logged in\""]
    );
    assert_eq!(exchange(&mut first, &[LOGIN]).await, ["GWFEED/1 OK seq=1"]);
    let answers = exchange(&mut first, CALLS).await;
    for (n, answer) in answers.iter().enumerate() {
        assert_eq!(answer, &format!("GWFEED/1 OK seq={}", n + 2));
    }
    // A bad line is answered and logged, and the connection goes on.
    let answers = exchange(
        &mut first,
        &[
            "GWFEED/1 HOOKOFF seq=40 gw=8200 mac=000C2A020082 ref=5 port=1 at=2000-01-01T08:13:11",
            "GWFEED/1 KEEPALIVE seq=41 gw=8200 mac=000C2A020082",
        ],
    )
    .await;
    assert_eq!(
        answers,
        [
            "GWFEED/1 ERR reason=\"unknown message type \\\"HOOKOFF\\\" at column 10\"",
            "GWFEED/1 OK seq=41"
        ]
    );
    // A line sent again is answered again and stored once.
    assert_eq!(
        exchange(&mut first, &[CALLS[5]]).await,
        ["GWFEED/1 OK seq=7"]
    );

    // The gateway logs in again from another address: the first
    // connection is closed.
    let mut second = connect(&server, [127, 0, 0, 2]).await;
    assert_eq!(exchange(&mut second, &[LOGIN]).await, ["GWFEED/1 OK seq=1"]);
    let mut rest = String::new();
    let closed = tokio::time::timeout(WAIT, first.read_line(&mut rest)).await;
    assert!(
        matches!(closed, Ok(Ok(0))),
        "kicked out: {closed:?} {rest:?}"
    );
    assert_eq!(
        exchange(
            &mut second,
            &["GWFEED/1 LOGOUT seq=2 gw=8200 mac=000C2A020082"]
        )
        .await,
        ["GWFEED/1 OK seq=2"]
    );
    let closed = tokio::time::timeout(WAIT, second.read_line(&mut rest)).await;
    assert!(matches!(closed, Ok(Ok(0))), "closed after LOGOUT");

    // A connection that never logs in.
    drop(connect(&server, [127, 0, 0, 3]).await);

    let kinds = |entries: &[Value]| -> Vec<String> {
        entries
            .iter()
            .rev()
            .map(|e| e["kind"].as_str().unwrap().to_owned())
            .collect()
    };
    let entries = log_until(&mut server, "limit=100", |e| e.len() >= 8).await;
    assert_eq!(
        kinds(&entries),
        [
            "Login",
            "Bad Packet",
            "Re-Login",
            "Relogin Kickout",
            "Login",
            "Logout",
            "Gateway Disconnect",
            "Gateway Disconnect",
        ],
        "{entries:#?}"
    );
    let texts: Vec<&str> = entries
        .iter()
        .rev()
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert!(
        texts[0].starts_with("Gateway[8200] MAC[000C2A020082] From [127.0.0.1:")
            && texts[0]
                .ends_with("] FXS(2) FXO(2) ISDN(0) CallRef(74) Time[2000/01/02 08:17:38] Login!"),
        "{}",
        texts[0]
    );
    assert!(
        texts[1].starts_with("Gateway[8200] from [127.0.0.1:")
            && texts[1].contains("Bad Packet: unknown message type")
    );
    assert!(texts[2].ends_with("Re-Login!") && texts[2].contains("From [127.0.0.2:"));
    assert!(
        texts[3].starts_with("Gateway[8200] from [127.0.0.1:")
            && texts[3].ends_with("Relogin Kickout")
    );
    assert_eq!(texts[5], "[Logout: 8200] [IP:127.0.0.2] [Size:46]");
    // The two disconnects (the logged-out gateway's, the connection that
    // never logged in) are logged as each connection's task ends, in
    // either order.
    let mut disconnects = [texts[6], texts[7]];
    disconnects.sort();
    assert!(
        disconnects[0].starts_with("Gateway[8200] from [127.0.0.2:"),
        "{disconnects:?}"
    );
    assert!(
        disconnects[1].starts_with("Gateway[???] from [127.0.0.3:")
            && disconnects[1].ends_with("Gateway Disconnect"),
        "{disconnects:?}"
    );
    let searched = server
        .get_json("/api/v1/gateways/log?kind=Bad%20Packet")
        .await;
    assert_eq!(searched["total"], 1);
    let searched = server.get_json("/api/v1/gateways/log?q=127.0.0.2").await;
    assert_eq!(searched["total"], 4, "{searched:#?}");

    // The gateway list.
    let gateways = server.get_json("/api/v1/gateways").await;
    let g = gateways
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == GW)
        .expect("the gateway is listed");
    assert_eq!(g["state"], "offline", "logged out");
    assert_eq!(
        (g["fxs"].as_u64(), g["fxo"].as_u64(), g["isdn"].as_u64()),
        (Some(2), Some(2), Some(0))
    );
    assert_eq!(g["call_ref"], 74);
    assert_eq!(g["public_address"], "61.222.171.22:2348");
    assert!(g["address"].as_str().unwrap().starts_with("127.0.0.2:"));
    assert_eq!(g["clock"], "2000-01-02T08:17:38");
    assert!(
        g["clock_offset_s"].as_i64().unwrap() < -700_000_000,
        "decades behind"
    );

    // The report: every call once, the seed's notations and filters.
    let all = report(&mut server, "all").await;
    assert_eq!(all["total"], 7, "{all:#?}");
    assert_eq!(all["filtered"], 7);
    for (filter, count) in [
        ("call_out", 3),
        ("call_in", 1),
        ("other", 1),
        ("call_in_reject", 1),
        ("call_out_failed", 1),
        ("only_pstn", 2),
    ] {
        let r = report(&mut server, filter).await;
        assert_eq!(
            (r["total"].as_u64(), r["filtered"].as_u64()),
            (Some(7), Some(count)),
            "{filter}: {r:#?}"
        );
    }
    let rows = all["rows"].as_array().unwrap();
    let by_ref = |r: &str| {
        rows.iter()
            .find(|row| row["call_ref"] == r)
            .unwrap()
            .clone()
    };
    let one = by_ref("1");
    assert_eq!(one["notation"], "Call out");
    assert_eq!(one["dialed"], "2252, 3");
    assert_eq!(one["time_s"], 136);
    assert_eq!(one["port"], 1);
    let two = by_ref("2");
    assert_eq!(
        (two["pstn_caller_id"].as_str(), two["pstn_time_s"].as_i64()),
        (Some("103"), Some(99))
    );
    assert_eq!(by_ref("109")["caller_id"], "1126701");
    assert_eq!(by_ref("88")["end"], Value::Null, "still in progress");

    let csv = server
        .get(&format!("/api/v1/gateways/{GW}/report.csv?filter=call_in"))
        .await;
    assert_eq!(csv.status, 200);
    assert!(csv.content_type().starts_with("text/csv"));
    let text = csv.text();
    let lines: Vec<&str> = text.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(
        lines[0],
        "Call-Ref,Port,Date,Notation,Dialed,Time,Begin,PSTN Dial,PSTN Time,Caller ID,PSTN Caller ID,End,Call"
    );
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[1].starts_with("98,1,") && lines[1].contains(",Call in,,0:01:05,"),
        "{}",
        lines[1]
    );

    // The real-time events, newest first, in the seed's columns.
    let events = server
        .get_json(&format!("/api/v1/gateways/{GW}/events?limit=5"))
        .await;
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 5);
    assert_eq!(events[0]["event"], "TALK");
    assert_eq!(events[0]["info"], "G.729");
    assert_eq!(events[0]["gateway_clock"], "2000-01-01T09:07:56");
    assert_eq!(events[2]["event"], "PSTN_DIAL");
    assert_eq!(events[2]["dialed"], "26735152");

    // The console's pages, for a viewer.
    common::add_user(
        &server,
        "vic",
        cdrhub_model::Role::Viewer,
        "vic's long password",
    );
    let mut browser = common::signed_in(&server, "vic", "vic's long password").await;
    let list = browser.get("/gateways?kind=Re-Login").await.text();
    assert!(
        list.contains("id=\"gateways\"") && list.contains(&format!("href=\"/gateways/{GW}\"")),
        "{list}"
    );
    assert!(
        list.contains("1 log lines") && list.contains("Re-Login!"),
        "{list}"
    );
    let page = browser
        .get(&format!("/gateways/{GW}?filter=only_pstn"))
        .await
        .text();
    assert!(page.contains("2 / 7 records"), "{page}");
    assert!(page.contains("<td>26735152</td>"), "PSTN Dial of ref 88");
    assert!(page.contains("<th>PSTN Caller ID</th>"));
    let events = browser.get(&format!("/gateways/{GW}/events")).await.text();
    assert!(events.contains("<td>PSTN_DIAL</td>") && events.contains("2000-01-01T09:07:56"));
    let csv = browser
        .get(&format!("/gateways/{GW}/report.csv?filter=other"))
        .await;
    assert_eq!(csv.text().lines().count(), 2, "header and the hook on/off");
    let bad = browser.get(&format!("/gateways/{GW}?from=yesterday")).await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.text().contains("yesterday&quot; is not a date or time"),
        "{}",
        bad.text()
    );

    // Every call is in the search, as a feed call; the stored lines once.
    let calls = server.calls_where("source=feed&limit=100").await;
    assert_eq!(calls.len(), 7);
    let feed = feed_sender(&mut server, GW)
        .await
        .expect("the gateway is a sender");
    assert_eq!(feed["duplicates"], 1, "HOOK_ON seq=7 sent twice");
    assert_eq!(
        feed["records_total"],
        1 + 31 + 1 + 1,
        "two logins, the calls, the logout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_speaks_udp_and_a_line_sent_again_is_stored_once() {
    let mut server = feed_server().await;
    let (_, udp) = server.feed_addrs.unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut buf = vec![0u8; 2048];
    let mut ask = async |datagram: &str| -> Vec<String> {
        socket.send_to(datagram.as_bytes(), udp).await.unwrap();
        let (n, _) = tokio::time::timeout(WAIT, socket.recv_from(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        String::from_utf8_lossy(&buf[..n])
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let gw = "gw=8378 mac=000C2A0201B2";
    assert_eq!(
        ask(&format!(
            "GWFEED/1 HOOK_OFF seq=2 {gw} ref=3 port=1 at=2000-01-01T08:00:20"
        ))
        .await,
        ["GWFEED/1 ERR seq=2 reason=\"not logged in\""]
    );
    let login = format!("GWFEED/1 LOGIN seq=1 {gw} fxs=2 fxo=2 isdn=0 callref=2 clock=unset");
    assert_eq!(ask(&login).await, ["GWFEED/1 OK seq=1"]);
    // Two lines in one datagram, CR LF between them.
    let call = format!(
        "GWFEED/1 HOOK_OFF seq=2 {gw} ref=3 port=1 at=2000-01-01T08:00:20\r\n\
         GWFEED/1 HOOK_ON seq=3 {gw} ref=3 port=1 at=2000-01-01T08:00:22\r\n"
    );
    assert_eq!(ask(&call).await, ["GWFEED/1 OK seq=2", "GWFEED/1 OK seq=3"]);
    // The answer was lost: the gateway sends both again, and its LOGIN.
    assert_eq!(ask(&login).await, ["GWFEED/1 OK seq=1"]);
    assert_eq!(ask(&call).await, ["GWFEED/1 OK seq=2", "GWFEED/1 OK seq=3"]);
    // A bad datagram gets an ERR (one per second at most).
    let answer = ask("GWFEED/1 TALK seq=4 gw=8378 mac=000C2A0201B2 ref=3").await;
    assert_eq!(answer.len(), 1);
    assert!(answer[0].starts_with("GWFEED/1 ERR reason="), "{answer:?}");

    let name = "8378_000C2A0201B2";
    let sender = feed_sender(&mut server, name).await.expect("a sender");
    assert_eq!(sender["records_total"], 3, "LOGIN and two events");
    assert_eq!(sender["duplicates"], 2);
    let r = server
        .get_json(&format!("/api/v1/gateways/{name}/report?filter=other"))
        .await;
    assert_eq!(
        (r["total"].as_u64(), r["filtered"].as_u64()),
        (Some(1), Some(1)),
        "{r:#?}"
    );
    let log = log_until(&mut server, &format!("gateway={name}"), |e| !e.is_empty()).await;
    assert_eq!(
        log.len(),
        1,
        "one Login: the LOGIN sent again is the same login; {log:#?}"
    );
    let gateways = server.get_json("/api/v1/gateways").await;
    let g = gateways
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == name)
        .unwrap()
        .clone();
    assert_eq!(g["state"], "online");
    assert_eq!(g["clock"], "unset");
    assert_eq!(g["clock_offset_s"], Value::Null);
}

/// The simulator's gateways against the server: every call it made is in
/// each gateway's report with the notation it was made as, and every seed
/// log line type is written.
async fn simulated_gateways_are_reported_as_sent(transport: &str) {
    use cdrhub_sim::gateway::{self, SimConfig};
    let mut server = feed_server().await;
    let (tcp, udp) = server.feed_addrs.unwrap();
    let addr = if transport == "tcp" { tcp } else { udp };
    let config = SimConfig {
        server: format!("{transport}://{addr}").parse().unwrap(),
        gateways: 3,
        calls: 12,
        rate: 200.0,
        time_scale: 0.0,
        seed: Some(7),
        bad_packets: 5,
        relogin: true,
        ..SimConfig::default()
    };
    let report = tokio::time::timeout(Duration::from_secs(120), gateway::run(config))
        .await
        .expect("the simulator finishes")
        .expect("every line is answered");
    assert_eq!(report.bad_packets_sent, 5);
    assert_eq!(report.gateways.len(), 3);
    for (name, sent) in &report.gateways {
        let c = &sent.calls;
        for (filter, count) in [
            ("all", c.total()),
            ("call_out", c.call_out),
            ("call_in", c.call_in),
            ("other", c.hook_on_off),
            ("call_in_reject", c.call_in_reject),
            ("call_out_failed", c.call_out_failed),
            ("only_pstn", c.only_pstn),
        ] {
            let r = server
                .get_json(&format!(
                    "/api/v1/gateways/{name}/report?filter={filter}&limit=1000"
                ))
                .await;
            assert_eq!(
                r["total"].as_u64(),
                Some(c.total()),
                "{transport} {name}: {r:#?}"
            );
            assert_eq!(
                r["filtered"].as_u64(),
                Some(count),
                "{transport} {name} {filter}"
            );
            if filter == "all" {
                let open: Vec<_> = r["rows"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|r| r["end"].is_null())
                    .collect();
                assert!(open.is_empty(), "every call ended: {open:#?}");
            }
        }
    }
    // Each seed log line type (the last Gateway Disconnect over TCP after
    // the simulator's logouts).
    let entries = log_until(&mut server, "limit=1000", |e| {
        let has = |k: &str| e.iter().any(|x| x["kind"] == k);
        has("Login")
            && has("Re-Login")
            && has("Relogin Kickout")
            && has("Bad Packet")
            && has("Logout")
            && (transport == "udp" || has("Gateway Disconnect"))
    })
    .await;
    let count = |k: &str| entries.iter().filter(|x| x["kind"] == k).count();
    assert_eq!(count("Re-Login"), 1, "{entries:#?}");
    assert_eq!(count("Relogin Kickout"), 1);
    assert_eq!(count("Logout"), 3);
    assert_eq!(count("Login"), 4, "three gateways and the re-login");
    assert!(count("Bad Packet") >= 1, "logged within its rate");
    let sources = server.get_json("/api/v1/sources").await;
    let feed = sources["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == "feed")
        .unwrap()
        .clone();
    assert_eq!(
        feed["counters"]["bad_packets"], 5,
        "every bad line counted: {feed:#?}"
    );
    let gateways = server.get_json("/api/v1/gateways").await;
    assert_eq!(gateways.as_array().unwrap().len(), 3);
    assert!(
        gateways
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["state"] == "offline"),
        "all logged out: {gateways:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_gateways_over_tcp_are_reported_as_sent() {
    simulated_gateways_are_reported_as_sent("tcp").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_gateways_over_udp_are_reported_as_sent() {
    simulated_gateways_are_reported_as_sent("udp").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_gateway_is_disconnected_after_the_session_timeout() {
    let mut server = TestServer::start_with(Options {
        feed: true,
        feed_session_timeout_s: Some(1),
        ..Options::default()
    })
    .await;
    // Over TCP: the connection is closed too.
    let mut conn = connect(&server, [127, 0, 0, 1]).await;
    assert_eq!(exchange(&mut conn, &[LOGIN]).await, ["GWFEED/1 OK seq=1"]);
    let mut rest = String::new();
    let closed = tokio::time::timeout(WAIT, conn.read_line(&mut rest)).await;
    assert!(
        matches!(closed, Ok(Ok(0))),
        "closed when silent: {closed:?}"
    );
    // Over UDP: the session ends; the next line must log in again.
    let (_, udp) = server.feed_addrs.unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let login =
        "GWFEED/1 LOGIN seq=1 gw=8378 mac=000C2A0201B2 fxs=2 fxo=2 isdn=0 callref=2 clock=unset";
    socket.send_to(login.as_bytes(), udp).await.unwrap();
    let mut buf = [0u8; 512];
    tokio::time::timeout(WAIT, socket.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let log = log_until(&mut server, "kind=Gateway%20Disconnect", |e| e.len() >= 2).await;
    assert_eq!(log.len(), 2, "{log:#?}");
    let texts: Vec<&str> = log.iter().map(|e| e["text"].as_str().unwrap()).collect();
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("Gateway[8200] from [127.0.0.1:")),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("Gateway[8378] from [127.0.0.1:")),
        "{texts:?}"
    );
    socket
        .send_to(b"GWFEED/1 KEEPALIVE seq=2 gw=8378 mac=000C2A0201B2", udp)
        .await
        .unwrap();
    let (n, _) = tokio::time::timeout(WAIT, socket.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"GWFEED/1 ERR seq=2 reason=\"not logged in\"\n");
    let gateways = server.get_json("/api/v1/gateways").await;
    assert!(
        gateways
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["state"] == "offline")
    );
}
