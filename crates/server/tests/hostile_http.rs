//! Hostile senders against the web listener (issue 9): more connections
//! than `[http] max_connections`, idle connections, a sender that trickles
//! its request a byte at a time, bodies that never finish, addresses
//! outside `[http] allow`, XML bombs. Each gets its documented reaction and
//! everyone else is still served. Raw bytes over real sockets; no test
//! asserts on how fast anything happens, only on what happens.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{CMS, CmsDoc, Options, TestServer, Trickled, guid, trickle};
use hyper::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Long enough for anything that should happen; a hang fails the test.
const PATIENCE: Duration = Duration::from_secs(60);

/// Reads until the server closes the connection (or `PATIENCE` passes).
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut got)).await;
    assert!(
        read.is_ok(),
        "the server never closed the connection: {got:?}"
    );
    got
}

/// Reads one HTTP answer's head and as much body as came with it.
async fn read_answer(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("\r\n\r\n") {
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut buf))
            .await
            .expect("an answer in time")
            .expect("the connection reads");
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Asks `/healthz` on a fresh connection until it is answered 200: the
/// server is serving others. Slots freed by closed connections come back a
/// moment after the close, so a 503 is tried again.
async fn still_serving(server: &TestServer) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let mut client = server.http_client();
        if let Ok(r) = client
            .try_request(hyper::Method::GET, "/healthz", "".into())
            .await
            && r.status == StatusCode::OK
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server stopped serving"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn metric(metrics: &str, reason: &str) -> u64 {
    let prefix = format!("cdrhub_http_refused_total{{reason=\"{reason}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in {metrics}"))
}

#[tokio::test]
async fn a_connection_over_max_connections_gets_503_and_others_are_served_when_one_closes() {
    let mut server = TestServer::start_with(Options {
        configure: Some(|c| {
            c.http.max_connections = 3;
            c.http.header_timeout_s = 600;
        }),
        ..Options::default()
    })
    .await;
    // Three senders that start a request and stop half way.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(server.http_addr).await.unwrap();
        s.write_all(b"GET /healthz HTT").await.unwrap();
        held.push(s);
    }
    let mut fourth = TcpStream::connect(server.http_addr).await.unwrap();
    let answer = String::from_utf8_lossy(&read_to_close(&mut fourth).await).into_owned();
    assert!(
        answer.starts_with("HTTP/1.1 503 ") && answer.contains("too many open connections"),
        "{answer}"
    );
    // One of the three finishes its request: answered, and its slot frees.
    let mut first = held.remove(0);
    first
        .write_all(b"P/1.1\r\nHost: cdrhub\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = String::from_utf8_lossy(&read_to_close(&mut first).await).into_owned();
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    still_serving(&server).await;
    drop(held);
    still_serving(&server).await;
    let metrics = server.get("/metrics").await.text();
    assert!(metric(&metrics, "max_connections") >= 1, "{metrics}");
}

#[tokio::test]
async fn many_idle_connections_are_closed_by_the_header_timeout_and_the_server_goes_on() {
    let server = TestServer::start_with(Options {
        configure: Some(|c| {
            c.http.max_connections = 50;
            c.http.header_timeout_s = 1;
        }),
        ..Options::default()
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(TcpStream::connect(server.http_addr).await.unwrap());
    }
    // Every one is closed: those that got a slot by the header timeout,
    // the others at once with a 503 (about 150 of them, fewer on a slow
    // machine where the first slots time out before the last connect).
    // None is left open.
    let mut refused = 0;
    for s in &mut idle {
        let got = read_to_close(s).await;
        if got.starts_with(b"HTTP/1.1 503 ") {
            refused += 1;
        } else {
            assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
        }
    }
    assert!(refused >= 1, "none refused at the cap");
    still_serving(&server).await;
}

#[tokio::test]
async fn a_keep_alive_connection_left_idle_is_closed() {
    let server = TestServer::start_with(Options {
        configure: Some(|c| c.http.header_timeout_s = 1),
        ..Options::default()
    })
    .await;
    let mut s = TcpStream::connect(server.http_addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: cdrhub\r\n\r\n")
        .await
        .unwrap();
    let answer = read_answer(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    // Nothing more is sent: the server closes the connection.
    let rest = read_to_close(&mut s).await;
    assert!(
        !String::from_utf8_lossy(&rest).contains("HTTP/1.1 200"),
        "no second answer"
    );
}

#[tokio::test]
async fn a_request_head_sent_a_byte_at_a_time_is_cut_off_and_others_are_served() {
    let server = TestServer::start_with(Options {
        configure: Some(|c| c.http.header_timeout_s = 1),
        ..Options::default()
    })
    .await;
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: cdrhub\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(200)
    );
    let mut s = TcpStream::connect(server.http_addr).await.unwrap();
    // A byte every 100 ms: 25 s for the whole head, far past the timeout.
    let Trickled { sent, got } = trickle(
        &mut s,
        request.as_bytes(),
        Duration::from_millis(100),
        |_| false,
    )
    .await;
    assert!(
        sent < request.len(),
        "the server waited for the whole slow head"
    );
    assert!(
        !String::from_utf8_lossy(&got).contains(" 200 "),
        "the slow request was answered: {}",
        String::from_utf8_lossy(&got)
    );
    still_serving(&server).await;
}

#[tokio::test]
async fn a_body_that_never_finishes_fails_its_request_and_stores_nothing() {
    let mut server = TestServer::start_with(Options {
        configure: Some(|c| c.http.body_timeout_s = 1),
        ..Options::default()
    })
    .await;
    let doc = CmsDoc::new(&guid())
        .record(
            "callStart",
            "2026-01-01T08:00:00Z",
            1,
            "<call id=\"8d8b8d47-6a5b-4a3c-9f0e-000000000001\"><name>slow</name></call>",
        )
        .build();
    let mut s = TcpStream::connect(server.http_addr).await.unwrap();
    let head = format!(
        "POST {CMS}?system_id=slow HTTP/1.1\r\nHost: cdrhub\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n",
        doc.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    // Half the body, then a byte now and then: the deadline passes first.
    s.write_all(&doc.as_bytes()[..doc.len() / 2]).await.unwrap();
    let Trickled { got, .. } = trickle(
        &mut s,
        &doc.as_bytes()[doc.len() / 2..],
        Duration::from_millis(200),
        |got| String::from_utf8_lossy(got).contains("\r\n\r\n"),
    )
    .await;
    let answer = String::from_utf8_lossy(&got).into_owned();
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer:?}");
    assert!(
        answer.contains("did not arrive within 1s ([http] body_timeout_s)"),
        "{answer}"
    );
    assert!(server.calls().await.is_empty(), "a call was stored");
    assert_eq!(server.records_total().await, 0);
    let metrics = server.get("/metrics").await.text();
    assert_eq!(metric(&metrics, "body_timeout"), 1, "{metrics}");
    still_serving(&server).await;
}

/// A connection from `source` (an address of the loopback network).
async fn connect_from(source: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(source.parse().unwrap(), 0))
        .unwrap();
    socket.connect(to).await.unwrap()
}

#[tokio::test]
async fn a_sender_outside_the_allow_list_is_closed_unanswered() {
    let server = TestServer::start_with(Options {
        configure: Some(|c| {
            c.http.allow =
                cdrhub_server::sources::guard::AllowList::try_from(vec!["127.0.0.2/32".to_owned()])
                    .unwrap()
        }),
        ..Options::default()
    })
    .await;
    let mut stranger = connect_from("127.0.0.1", server.http_addr).await;
    let _ = stranger
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: cdrhub\r\n\r\n")
        .await;
    assert!(read_to_close(&mut stranger).await.is_empty(), "answered");
    let mut allowed = connect_from("127.0.0.2", server.http_addr).await;
    allowed
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: cdrhub\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = String::from_utf8_lossy(&read_to_close(&mut allowed).await).into_owned();
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert_eq!(metric(&answer, "not_allowed"), 1, "{answer}");
}

#[tokio::test]
async fn xml_bombs_get_400_and_store_nothing() {
    let mut server = TestServer::start().await;
    let session = guid();
    let laughs = format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE records [\n<!ENTITY lol \"lol\">\n{}]>\n<records session=\"{session}\"><record type=\"callStart\" time=\"2026-01-01T08:00:00Z\" recordIndex=\"1\"><call id=\"x\"><name>&lol9;</name></call></record></records>",
        (1..10)
            .map(|n| format!(
                "<!ENTITY lol{n} \"{}\">\n",
                format!(
                    "&lol{};",
                    if n == 1 {
                        String::new()
                    } else {
                        (n - 1).to_string()
                    }
                )
                .repeat(10)
            ))
            .collect::<String>()
    );
    let depth = 100_000;
    let nested = format!(
        "<records session=\"{session}\"><record type=\"callStart\" time=\"2026-01-01T08:00:00Z\" recordIndex=\"1\"><call id=\"x\">{}{}</call></record></records>",
        "<a>".repeat(depth),
        "</a>".repeat(depth)
    );
    let external = format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE records [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n<records session=\"{session}\"><record type=\"callStart\" time=\"2026-01-01T08:00:00Z\" recordIndex=\"1\"><call id=\"x\"><name>&x;</name></call></record></records>"
    );
    for (case, body, names) in [
        (
            "entity expansion",
            laughs,
            "document type declarations are not accepted",
        ),
        ("deep nesting", nested, "nested deeper than 32 levels"),
        (
            "external entity",
            external,
            "document type declarations are not accepted",
        ),
    ] {
        let r = server.post(&format!("{CMS}?system_id=bomb"), body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{case}: {}", r.text());
        let text = r.text();
        assert!(
            text.lines().count() == 1 && text.contains(names),
            "{case}: one sentence naming the problem: {text}"
        );
    }
    assert!(server.calls().await.is_empty(), "a call was stored");
    assert_eq!(server.records_total().await, 0);
    still_serving(&server).await;
}

#[tokio::test]
async fn a_tls_handshake_that_never_finishes_or_is_not_tls_is_closed() {
    let mut server = TestServer::start_with(Options {
        https: true,
        configure: Some(|c| c.http.header_timeout_s = 1),
        ..Options::default()
    })
    .await;
    let https = server.https_addr.expect("an HTTPS listener");
    let mut silent = TcpStream::connect(https).await.unwrap();
    let mut plain = TcpStream::connect(https).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: cdrhub\r\n\r\n")
        .await
        .unwrap();
    read_to_close(&mut silent).await;
    let got = read_to_close(&mut plain).await;
    assert!(
        !String::from_utf8_lossy(&got).contains(" 200 "),
        "answered in plain text"
    );
    let r = server.https_client().get("/healthz").await;
    assert_eq!(r.status, StatusCode::OK);
    let metrics = server.get("/metrics").await.text();
    assert_eq!(metric(&metrics, "tls_handshake"), 2, "{metrics}");
}

mod events {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite;

    const ONE: &str = r#"{"type":"setup","call_id":"h-1","key":"h-1/1","at":"2026-12-01T10:00:00Z","caller":"2000","callee":"2001"}"#;

    async fn events_server() -> TestServer {
        TestServer::start_with(Options {
            configure: Some(|c| c.sources.events.max_body_bytes = 4096),
            ..Options::default()
        })
        .await
    }

    #[tokio::test]
    async fn oversized_invalid_utf8_and_deeply_nested_bodies_are_refused_in_one_sentence() {
        let mut server = events_server().await;
        let cases: [(&str, Vec<u8>, StatusCode, &str); 3] = [
            (
                "oversized",
                ONE.repeat(40).into_bytes(),
                StatusCode::PAYLOAD_TOO_LARGE,
                "4096-byte limit",
            ),
            (
                "invalid UTF-8",
                [ONE.as_bytes(), b"\n\xff\xfe"].concat(),
                StatusCode::BAD_REQUEST,
                "not UTF-8",
            ),
            (
                "deep nesting",
                format!("{}{}", "[".repeat(2000), "]".repeat(2000)).into_bytes(),
                StatusCode::BAD_REQUEST,
                "recursion limit",
            ),
        ];
        for (case, body, status, names) in cases {
            let r = server.post("/api/v1/events", body).await;
            assert_eq!(r.status, status, "{case}: {}", r.text());
            let text = r.text();
            assert!(text.contains(names), "{case}: {text}");
        }
        assert!(server.calls().await.is_empty(), "nothing stored");
        let r = server.post("/api/v1/events", ONE).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }

    #[tokio::test]
    async fn a_websocket_feed_answers_bad_messages_and_closes_on_an_oversized_one() {
        let server = events_server().await;
        let mut ws = common::events_websocket(&server, "hostile").await;
        let mut answers = Vec::new();
        for message in [
            tungstenite::Message::binary(vec![0xffu8; 10]),
            tungstenite::Message::text("{not json"),
            tungstenite::Message::text(format!("{}{}", "[".repeat(2000), "]".repeat(2000))),
            tungstenite::Message::text(ONE),
        ] {
            ws.send(message).await.unwrap();
            loop {
                match ws.next().await.unwrap().unwrap() {
                    tungstenite::Message::Text(t) => {
                        answers.push(serde_json::from_str::<serde_json::Value>(&t).unwrap());
                        break;
                    }
                    _ => continue,
                }
            }
        }
        assert_eq!(
            answers.iter().filter(|a| a["ok"] == false).count(),
            3,
            "{answers:#?}"
        );
        assert_eq!(answers[3]["accepted"], 1, "{answers:#?}");
        // Over max_body_bytes: the server closes the feed (1009, too big).
        let _ = ws.send(tungstenite::Message::text(ONE.repeat(40))).await;
        let closed = tokio::time::timeout(PATIENCE, async {
            loop {
                match ws.next().await {
                    None | Some(Err(_)) => return None,
                    Some(Ok(tungstenite::Message::Close(frame))) => return frame,
                    Some(Ok(_)) => continue,
                }
            }
        })
        .await
        .expect("the feed is closed");
        if let Some(frame) = closed {
            assert_eq!(u16::from(frame.code), 1009, "{frame:?}");
        }
        still_serving(&server).await;
    }
}
