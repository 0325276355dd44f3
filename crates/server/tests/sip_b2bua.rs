//! SIP over HEP beyond one dialog (issue 6, point 3): a B2BUA's two
//! Call-IDs joined into one call by the correlation header or by numbers
//! and timing, calls that must stay apart, dialogs closed by the timeout,
//! and malformed SIP counted per agent. The packets are written here as a
//! capture agent on the B2BUA sends them, with their capture times, and go
//! over UDP to the listener.

mod common;

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::Duration;

use cdrhub_protocols::hep::{self, Endpoint, HepPacket};
use cdrhub_server::sources::hep::HepSourceConfig;
use common::{Options, TestServer};
use serde_json::Value;

const CALLER: &str = "127.0.0.3:5060";
const B2BUA: &str = "127.0.0.2:5060";
const CALLEE: &str = "127.0.0.4:5060";

fn endpoint(addr: &str) -> Endpoint {
    let a: SocketAddr = addr.parse().unwrap();
    Endpoint {
        ip: Some(a.ip()),
        port: Some(a.port()),
    }
}

/// A HEPv3 packet of capture agent 1 holding `sip` (lines joined by
/// CRLF), captured `at_ms` after the epoch.
fn packet(at_ms: i64, src: &str, dst: &str, sip: &str) -> Vec<u8> {
    let mut text = sip.trim_start().replace('\n', "\r\n");
    text.push_str("\r\n");
    hep::encode_v3(&HepPacket {
        src: endpoint(src),
        dst: endpoint(dst),
        timestamp_seconds: Some((at_ms / 1000) as u32),
        timestamp_micros: Some((at_ms % 1000 * 1000) as u32),
        capture_id: Some(1),
        payload: Some(Cow::Owned(text.into_bytes())),
        ..HepPacket::default()
    })
}

/// One dialog's messages from `from` to `to`: INVITE, 180, 200, ACK, and
/// a BYE from the caller `talk_ms` after the answer. `extra` goes into
/// the INVITE's headers.
#[allow(clippy::too_many_arguments)]
fn dialog(
    t0: i64,
    call_id: &str,
    from: &str,
    to: &str,
    caller: &str,
    dialed: &str,
    extra: &str,
    talk_ms: Option<i64>,
) -> Vec<Vec<u8>> {
    let head = |first: &str, cseq: &str, to_tag: bool| {
        let n = cseq.split(' ').next().unwrap();
        format!(
            "{first}\nVia: SIP/2.0/UDP {from};branch=z9hG4bK-{call_id}-{n}\n\
From: <sip:{caller}@{from}>;tag=f-{call_id}\n\
To: <sip:{dialed}@{to}>{}\nCall-ID: {call_id}\nCSeq: {cseq}\n",
            if to_tag { ";tag=t" } else { "" }
        )
    };
    let invite = format!(
        "{}Contact: <sip:{caller}@{from}>\n{extra}Content-Length: 0\n",
        head(
            &format!("INVITE sip:{dialed}@{to} SIP/2.0"),
            "1 INVITE",
            false
        )
    );
    let mut out = vec![
        packet(t0, from, to, &invite),
        packet(
            t0 + 20,
            to,
            from,
            &format!(
                "{}Content-Length: 0\n",
                head("SIP/2.0 180 Ringing", "1 INVITE", true)
            ),
        ),
    ];
    if let Some(talk) = talk_ms {
        out.push(packet(
            t0 + 1_000,
            to,
            from,
            &format!(
                "{}Content-Length: 0\n",
                head("SIP/2.0 200 OK", "1 INVITE", true)
            ),
        ));
        out.push(packet(
            t0 + 1_010,
            from,
            to,
            &format!(
                "{}Content-Length: 0\n",
                head(&format!("ACK sip:{dialed}@{to} SIP/2.0"), "1 ACK", true)
            ),
        ));
        out.push(packet(
            t0 + 1_000 + talk,
            from,
            to,
            &format!(
                "{}Content-Length: 0\n",
                head(&format!("BYE sip:{dialed}@{to} SIP/2.0"), "2 BYE", true)
            ),
        ));
    }
    out
}

async fn send(server: &TestServer, packets: &[Vec<u8>]) {
    let (udp, _) = server.hep_addrs.expect("the HEP listener");
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for p in packets {
        socket.send_to(p, udp).await.unwrap();
        // Loopback keeps the order; a pause keeps the socket buffer small.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The SIP calls once `n` of them have ended (or what there is after 20 s).
async fn ended_calls(server: &mut TestServer, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let calls = server.calls_where("source=sip&limit=50").await;
        let ended = calls.iter().filter(|c| !c["ended_at"].is_null()).count();
        if ended >= n || tokio::time::Instant::now() > deadline {
            return calls;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn hep_server(config: HepSourceConfig) -> Options {
    Options {
        hep: Some(HepSourceConfig {
            enabled: true,
            ..config
        }),
        ..Options::default()
    }
}

/// Now, to the second, in milliseconds: capture times near the server's
/// clock, as a live agent sends them.
fn now_ms() -> i64 {
    cdrhub_model::Timestamp::now().0 / 1000 * 1000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_b2bua_two_dialogs_are_one_call_by_header_or_by_numbers_and_timing() {
    let mut server = TestServer::start_with(hep_server(HepSourceConfig::default())).await;
    let t = now_ms() - 600_000;
    let mut packets = Vec::new();
    // 1. No header: same numbers, the B2BUA's INVITE 30 ms after.
    packets.extend(dialog(
        t,
        "a1@caller",
        CALLER,
        B2BUA,
        "201",
        "5001",
        "",
        Some(3_000),
    ));
    packets.extend(dialog(
        t + 30,
        "b1@b2bua",
        B2BUA,
        CALLEE,
        "201",
        "5001",
        "",
        Some(3_000),
    ));
    // 2. The B2BUA rewrote the dialed number (a prefix) but copies the
    //    caller's Call-ID into X-CID.
    let t2 = t + 60_000;
    packets.extend(dialog(
        t2,
        "a2@caller",
        CALLER,
        B2BUA,
        "202",
        "5002",
        "",
        Some(5_000),
    ));
    packets.extend(dialog(
        t2 + 40,
        "b2@b2bua",
        B2BUA,
        CALLEE,
        "202",
        "95002",
        "X-CID: a2@caller\n",
        Some(5_000),
    ));
    // 3. The same numbers as call 1 a minute later: a call of its own,
    //    whose B2BUA leg is refused (486).
    let t3 = t + 120_000;
    packets.extend(dialog(
        t3,
        "a3@caller",
        CALLER,
        B2BUA,
        "201",
        "5001",
        "",
        None,
    ));
    packets.extend(dialog(
        t3 + 30,
        "b3@b2bua",
        B2BUA,
        CALLEE,
        "201",
        "5001",
        "",
        None,
    ));
    let busy = |from: &str, to: &str, call_id: &str, dialed: &str, at: i64| {
        packet(
            at,
            to,
            from,
            &format!(
                "SIP/2.0 486 Busy Here\nVia: SIP/2.0/UDP {from};branch=z9hG4bK-{call_id}-1\n\
From: <sip:201@{from}>;tag=f-{call_id}\nTo: <sip:{dialed}@{to}>;tag=t\nCall-ID: {call_id}\n\
CSeq: 1 INVITE\nReason: Q.850;cause=17\nContent-Length: 0\n"
            ),
        )
    };
    packets.push(busy(B2BUA, CALLEE, "b3@b2bua", "5001", t3 + 2_000));
    packets.push(busy(CALLER, B2BUA, "a3@caller", "5001", t3 + 2_010));
    // 4. The B2BUA's INVITE 5 s after the caller's (past the window):
    //    two calls.
    let t4 = t + 180_000;
    packets.extend(dialog(
        t4,
        "a4@caller",
        CALLER,
        B2BUA,
        "204",
        "5004",
        "",
        Some(1_000),
    ));
    packets.extend(dialog(
        t4 + 5_000,
        "b4@b2bua",
        B2BUA,
        CALLEE,
        "204",
        "5004",
        "",
        Some(1_000),
    ));
    send(&server, &packets).await;

    let calls = ended_calls(&mut server, 5).await;
    let mut calls: Vec<&Value> = calls.iter().collect();
    calls.sort_by_key(|c| c["started_at"].as_str().unwrap().to_owned());
    let summary: Vec<(String, String, String, String)> = calls
        .iter()
        .map(|c| {
            (
                c["caller"].as_str().unwrap_or("").to_owned(),
                c["dialed"].as_str().unwrap_or("").to_owned(),
                c["destination"].as_str().unwrap_or("").to_owned(),
                c["disposition"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let s = |a: &str, b: &str, c: &str, d: &str| {
        (a.to_owned(), b.to_owned(), c.to_owned(), d.to_owned())
    };
    assert_eq!(
        summary,
        [
            s("201", "5001", "5001", "answered"),
            s("202", "5002", "95002", "answered"),
            s("201", "5001", "5001", "busy"),
            s("204", "5004", "5004", "answered"),
            s("204", "5004", "5004", "answered"),
        ],
        "{calls:#?}"
    );
    // The joined calls: O-CDR from the caller's dialog, T-CDR from the
    // B2BUA's.
    for (call, (a, b)) in calls.iter().zip([
        ("a1@caller", "b1@b2bua"),
        ("a2@caller", "b2@b2bua"),
        ("a3@caller", "b3@b2bua"),
    ]) {
        let detail = server.call(call["id"].as_str().unwrap()).await;
        let legs = detail["legs"].as_array().unwrap();
        let ids: Vec<(&str, &str)> = legs
            .iter()
            .map(|l| {
                (
                    l["id"].as_str().unwrap(),
                    l["sip_call_id"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(ids, [("O", a), ("T", b)], "{detail:#}");
        assert_eq!(call["details"]["callee_address"], CALLEE);
    }
    assert_eq!(calls[0]["talk_s"], 3, "{:#}", calls[0]);
    assert_eq!(calls[1]["talk_s"], 5);
    assert_eq!(calls[2]["cause"], "SIP 486; Q.850 17");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dialogs_without_an_end_are_closed_by_the_timeout_and_flagged() {
    let mut server = TestServer::start_with(hep_server(HepSourceConfig {
        setup_timeout_s: 2,
        dialog_timeout_s: 4,
        ..HepSourceConfig::default()
    }))
    .await;
    let t = now_ms();
    let mut packets = Vec::new();
    // Rings, and nothing more.
    packets.extend(dialog(
        t,
        "ring@caller",
        CALLER,
        CALLEE,
        "301",
        "6001",
        "",
        None,
    ));
    // Answered; the BYE is lost.
    let mut answered = dialog(
        t,
        "talk@caller",
        CALLER,
        CALLEE,
        "302",
        "6002",
        "",
        Some(1_000),
    );
    answered.pop();
    packets.extend(answered);
    // Ends properly: no flag.
    packets.extend(dialog(
        t,
        "done@caller",
        CALLER,
        CALLEE,
        "303",
        "6003",
        "",
        Some(500),
    ));
    send(&server, &packets).await;

    let calls = ended_calls(&mut server, 3).await;
    let by_caller = |n: &str| {
        calls
            .iter()
            .find(|c| c["caller"] == n)
            .unwrap_or_else(|| panic!("call from {n}: {calls:#?}"))
    };
    let ring = by_caller("301");
    assert_eq!(ring["flags"], serde_json::json!(["timed_out"]), "{ring:#}");
    assert_eq!(ring["disposition"], "failed");
    let talk = by_caller("302");
    assert_eq!(talk["flags"], serde_json::json!(["timed_out"]), "{talk:#}");
    assert_eq!(talk["disposition"], "answered");
    // Closed at its last message, the ACK.
    assert_eq!(
        talk["ended_at"],
        cdrhub_model::Timestamp(t + 1_010).to_rfc3339()
    );
    let done = by_caller("303");
    assert_eq!(done["flags"], serde_json::json!([]));
    // The console says so.
    common::add_user(
        &server,
        "vic",
        cdrhub_model::Role::Viewer,
        "vic's long password",
    );
    let mut browser = common::signed_in(&server, "vic", "vic's long password").await;
    let page = browser.get("/sip").await.text();
    assert!(page.contains("timeout (no BYE)"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_sip_is_counted_per_agent_and_kept() {
    let mut server = TestServer::start_with(hep_server(HepSourceConfig::default())).await;
    let t = now_ms();
    let mut packets = dialog(t, "ok@caller", CALLER, CALLEE, "401", "7001", "", Some(100));
    // No Call-ID; a start line that is not SIP.
    packets.push(packet(
        t,
        CALLER,
        CALLEE,
        "INVITE sip:1@h SIP/2.0\nVia: SIP/2.0/UDP h\nCSeq: 1 INVITE\n",
    ));
    packets.push(packet(t, CALLER, CALLEE, "HELLO WORLD\n"));
    send(&server, &packets).await;
    let calls = ended_calls(&mut server, 1).await;
    assert_eq!(calls.len(), 1, "{calls:#?}");
    let sources = server.get_json("/api/v1/sources").await;
    let sip = sources["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == "sip")
        .unwrap();
    assert_eq!(sip["agents"]["1@127.0.0.1"]["bad_sip"], 2, "{sip:#}");
    assert_eq!(
        sip["senders"][0]["records_total"],
        packets.len(),
        "every packet is kept"
    );
}
