//! The call-event API over real sockets (issue 7, points 1 and 4): a call's
//! events posted as NDJSON, the same events in another order and again
//! (stored once), a bad batch refused whole, tokens and roles, the
//! WebSocket feed with its acknowledgements after commit, and
//! registrations.

mod common;

use cdrhub_model::Role;
use common::{Client, TestServer};
use futures_util::{SinkExt, StreamExt};
use hyper::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

/// The events of one click-to-call (seed 002): setup to end, with a hold
/// and a transfer, keys `ID/1` ... `ID/7`.
fn call(id: &str) -> Vec<String> {
    let t = |s: u32| format!("2026-11-30T10:00:{s:02}Z");
    [
        json!({"type":"setup","call_id":id,"key":format!("{id}/1"),"at":t(0),"caller":"guest-7","callee":"2000","direction":"in","media":"video","source_address":"198.51.100.23","call_type":"click_to_call","data":{"page":"/contact","guest_name":"Ann"}}),
        json!({"type":"ringing","call_id":id,"key":format!("{id}/2"),"at":t(1)}),
        json!({"type":"answered","call_id":id,"key":format!("{id}/3"),"at":t(4)}),
        json!({"type":"held","call_id":id,"key":format!("{id}/4"),"at":t(10)}),
        json!({"type":"resumed","call_id":id,"key":format!("{id}/5"),"at":t(15)}),
        json!({"type":"transferred","call_id":id,"key":format!("{id}/6"),"at":t(20),"to":"2001"}),
        json!({"type":"ended","call_id":id,"key":format!("{id}/7"),"at":t(44),"by":"callee","sip_status":200,"q850_cause":16}),
    ]
    .iter()
    .map(Value::to_string)
    .collect()
}

async fn post_events(server: &mut TestServer, body: String) -> (StatusCode, Value) {
    let r = server.post("/api/v1/events", body).await;
    (r.status, r.json())
}

async fn events_calls(server: &mut TestServer) -> Vec<Value> {
    server.calls_where("source=events").await
}

fn assert_the_call(c: &Value) {
    assert_eq!(c["source"], "events", "{c:#}");
    assert_eq!(c["sender"], "tests", "the token's name");
    assert_eq!(c["kind"], "click_to_call");
    assert_eq!(c["caller"], "guest-7");
    assert_eq!(c["dialed"], "2000");
    assert_eq!(c["destination"], "2001", "transferred");
    assert_eq!(c["direction"], "in");
    assert_eq!(c["media"], "video");
    assert_eq!(c["disposition"], "answered");
    assert_eq!(c["talk_s"], 40);
    assert_eq!(c["duration_s"], 44);
    assert_eq!(c["cause"], "SIP 200; Q.850 16");
    assert_eq!(c["details"]["source_address"], "198.51.100.23");
    assert_eq!(c["details"]["data"]["guest_name"], "Ann");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_in_any_order_and_sent_twice_make_one_call() {
    let mut server = TestServer::start().await;
    // In order, one NDJSON batch.
    let (status, body) = post_events(&mut server, call("c-1").join("\n")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"accepted": 7, "duplicates": 0}));
    // Another call's events one by one, backwards.
    for e in call("c-2").into_iter().rev() {
        let (status, body) = post_events(&mut server, e).await;
        assert_eq!((status, &body["accepted"]), (StatusCode::OK, &json!(1)));
    }
    // The first batch again, as a JSON array: every event a duplicate.
    let (_, body) = post_events(&mut server, format!("[{}]", call("c-1").join(","))).await;
    assert_eq!(body, json!({"accepted": 0, "duplicates": 7}));

    let calls = events_calls(&mut server).await;
    assert_eq!(calls.len(), 2, "{calls:#?}");
    let sources = server.get_json("/api/v1/sources").await;
    let events = sources["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == "events")
        .unwrap();
    assert_eq!(events["senders"][0]["sender"], "tests", "{events:#}");
    assert_eq!(
        (
            events["senders"][0]["records_total"].as_u64(),
            events["senders"][0]["duplicates"].as_u64()
        ),
        (Some(14), Some(7))
    );
    for c in &calls {
        assert_the_call(c);
    }
    let detail = server.call(calls[0]["id"].as_str().unwrap()).await;
    let timeline: Vec<&str> = detail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        timeline,
        [
            "setup",
            "ringing",
            "answered",
            "held",
            "resumed",
            "transferred",
            "ended"
        ]
    );

    // Seed 002's click-to-call history: the search filtered to the source
    // and call type.
    let history = server
        .calls_where("source=events&kind=click_to_call&disposition=answered")
        .await;
    assert_eq!(history.len(), 2);
    // ... and in the console: the CDR search by source and kind, with the
    // talk time, and its CSV export of the same set.
    common::add_user(&server, "ann", Role::Supervisor, "ann's long password");
    let mut console = common::signed_in(&server, "ann", "ann's long password").await;
    let page = console
        .get("/calls?source=events&kind=click_to_call")
        .await
        .text();
    assert!(
        page.contains("<b id=\"matching\">2</b>") && page.contains("<td class=\"num\">40</td>"),
        "{page}"
    );
    assert!(
        page.contains("kind=click_to_call"),
        "the export keeps the filter"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_batch_is_refused_whole_and_tokens_are_checked() {
    let mut server = TestServer::start().await;
    let mut events = call("c-9");
    events[3] = r#"{"type":"held","call_id":"c-9","key":"c-9/4","at":"soon"}"#.into();
    let (status, body) = post_events(&mut server, events.join("\n")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let error = body["error"].as_str().unwrap();
    assert!(
        error.starts_with("rejected call events: event 4: \"at\" \"soon\" is not an RFC 3339 time"),
        "{error}"
    );
    assert!(events_calls(&mut server).await.is_empty(), "nothing stored");
    let (status, _) = post_events(&mut server, "{}".into()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // No token; a viewer's token.
    let mut anonymous = Client::plain(server.http_addr);
    let r = anonymous
        .post("/api/v1/events", call("c-9").join("\n"))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let viewer = cdrhub_server::auth::new_secret();
    server
        .with_accounts(|a| {
            a.add_token(
                "reports",
                Role::Viewer,
                &cdrhub_server::auth::token_hash(&viewer),
            )
        })
        .unwrap();
    let mut viewer = Client::plain(server.http_addr).with_bearer(&viewer);
    let r = viewer.post("/api/v1/events", call("c-9").join("\n")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert!(events_calls(&mut server).await.is_empty());

    // A system named in the query; a registration and an unregistration.
    let r = server
        .post(
            "/api/v1/events?system=webrtc-gw",
            [
                json!({"type":"registration","key":"r1","at":cdrhub_model::Timestamp::now().to_rfc3339(),"extension":"2000","contact":"wss:2000@198.51.100.23:443","expires_s":600,"source_address":"198.51.100.23:50412"}),
                json!({"type":"registration","key":"r2","at":cdrhub_model::Timestamp::now().to_rfc3339(),"extension":"2001","expires_s":600}),
                json!({"type":"unregistration","key":"r3","at":cdrhub_model::Timestamp::now().to_rfc3339(),"extension":"2001"}),
            ]
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let regs = server.get_json("/api/v1/sip/registrations").await;
    let regs = regs.as_array().unwrap();
    assert_eq!(regs.len(), 1, "{regs:#?}");
    assert_eq!(regs[0]["extension"], "2000");
    assert_eq!(regs[0]["sender"], "webrtc-gw");
    assert_eq!(regs[0]["source"], "198.51.100.23:50412");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_websocket_acknowledges_each_message_after_commit() {
    let mut server = TestServer::start().await;
    let mut ws = common::events_websocket(&server, "pbx-ws").await;
    let mut ask = async |text: String| -> Value {
        ws.send(tungstenite::Message::text(text)).await.unwrap();
        loop {
            match ws.next().await.unwrap().unwrap() {
                tungstenite::Message::Text(t) => return serde_json::from_str(&t).unwrap(),
                _ => continue,
            }
        }
    };
    let events = call("w-1");
    // The end first, then the rest in one batch, then the end again.
    let a = ask(events[6].clone()).await;
    assert_eq!(
        a,
        json!({"ok": true, "accepted": 1, "duplicates": 0, "keys": ["w-1/7"]})
    );
    let b = ask(events[..6].join("\n")).await;
    assert_eq!(b["accepted"], 6, "{b}");
    let c = ask(events[6].clone()).await;
    assert_eq!(
        (c["accepted"].clone(), c["duplicates"].clone()),
        (json!(0), json!(1))
    );
    let bad = ask("{\"type\":\"ended\"}".into()).await;
    assert_eq!(bad["ok"], false);
    assert!(
        bad["error"].as_str().unwrap().contains("missing field"),
        "{bad}"
    );
    ws.close(None).await.unwrap();

    // A signed-in operator's console cookie does not open a feed.
    common::add_user(&server, "sam", Role::Supervisor, "sam's long password");
    let console = common::signed_in(&server, "sam", "sam's long password").await;
    let mut request = format!("ws://{}/api/v1/events/ws", server.http_addr)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Cookie",
        format!(
            "cdrhub_session={}",
            console.cookie("cdrhub_session").unwrap()
        )
        .parse()
        .unwrap(),
    );
    match tokio_tungstenite::connect_async(request).await {
        Err(tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
        other => panic!("a console session opened a feed: {other:?}"),
    }

    // Acknowledged means stored: the call is there now.
    let calls = events_calls(&mut server).await;
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["sender"], "pbx-ws");
    assert_eq!(calls[0]["talk_s"], 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_calls_appear_in_the_statistics_and_the_live_view() {
    let mut server = TestServer::start().await;
    // A video call answered on 2026-11-30 at 10:00, ended.
    let (status, body) = post_events(&mut server, call("s-1").join("\n")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stats = server
        .get_json("/api/v1/stats?day=2026-11-30&source=events")
        .await;
    let hour = stats["hours"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["hour"] == "2026-11-30T10:00:00Z")
        .unwrap_or_else(|| panic!("no 10:00 hour: {stats:#}"))
        .clone();
    assert_eq!(hour["attempts"], 1, "{hour}");
    assert_eq!(hour["answered"], 1, "{hour}");
    assert_eq!(hour["video_attempts"], 1, "{hour}");
    assert_eq!(hour["video_answered"], 1, "{hour}");

    // A call in progress now is in the live view until it ends.
    let now = cdrhub_model::Timestamp::now();
    let live_call = [
        json!({"type":"setup","call_id":"live-1","key":"live-1/1","at":now.to_rfc3339(),"caller":"3001","callee":"3002"}),
        json!({"type":"answered","call_id":"live-1","key":"live-1/2","at":now.to_rfc3339()}),
    ]
    .iter()
    .map(Value::to_string)
    .collect::<Vec<_>>()
    .join("\n");
    let (status, body) = post_events(&mut server, live_call).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    common::add_user(&server, "sue", Role::Supervisor, "sue's long password");
    let mut console = common::signed_in(&server, "sue", "sue's long password").await;
    let live = console.get("/live.json").await.json();
    let active = live["active_calls"].as_array().unwrap();
    assert!(
        active
            .iter()
            .any(|c| c["caller"] == "3001" && c["sender"] == "tests"),
        "{live:#}"
    );
    let end = json!({"type":"ended","call_id":"live-1","key":"live-1/3","at":cdrhub_model::Timestamp::now().to_rfc3339(),"by":"caller"}).to_string();
    let (status, body) = post_events(&mut server, end).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let live = console.get("/live.json").await.json();
    assert!(
        !live["active_calls"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["caller"] == "3001"),
        "{live:#}"
    );
}
