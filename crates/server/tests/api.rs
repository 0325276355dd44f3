//! The REST API over calls ingested through the CMS receiver: paging,
//! filters, errors, the CSV export, `/healthz` and `/metrics`.

mod common;

use std::collections::BTreeSet;

use common::{
    CMS, CmsDoc, TestServer, call_end, call_start, guid, leg_connected, leg_end, leg_start,
};
use hyper::StatusCode;
use serde_json::Value;

const SENDER: &str = "api-test";
const NAMES: [&str; 7] = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Ken"];
const PHONES: [&str; 3] = ["Mobile", "Desk", "Home"];

/// One generated call: `legs` participants, all joined at `hour`:00 on
/// 2026-01-01, second by second; busy calls never connect.
struct GeneratedCall {
    destination: String,
    hour: u32,
    busy: bool,
    /// (remote party, display name, direction) of each leg, in start order.
    legs: Vec<(String, String, &'static str)>,
}

impl GeneratedCall {
    fn answered(&self) -> bool {
        !self.busy
    }

    fn incoming(&self) -> bool {
        self.legs[0].2 == "incoming"
    }
}

/// Seven calls with 1–3 legs: calls 1 and 4 busy, calls 2 and 5 dialled out.
fn generate() -> Vec<GeneratedCall> {
    (0..7)
        .map(|i| GeneratedCall {
            destination: format!("conf-{i}"),
            hour: i + 1,
            busy: i % 3 == 1,
            legs: (0..1 + i % 3)
                .map(|j| {
                    (
                        format!("+1-555-{i:02}{j:02}"),
                        format!("{} {}", NAMES[i as usize], PHONES[j as usize]),
                        if j == 0 && i % 3 == 2 {
                            "outgoing"
                        } else {
                            "incoming"
                        },
                    )
                })
                .collect(),
        })
        .collect()
}

/// Posts every generated call, one document per call, in one CMS session
/// numbered from 1. Returns the number of records sent.
async fn ingest(server: &mut TestServer, calls: &[GeneratedCall]) -> usize {
    let session = guid();
    let path = format!("{CMS}?system_id={SENDER}");
    let mut index = 0;
    let mut next = || {
        index += 1;
        index
    };
    let mut records = 0;
    for c in calls {
        let call = guid();
        let at = |s: u32| format!("2026-01-01T{:02}:{:02}:{:02}Z", c.hour, s / 60, s % 60);
        let mut doc = CmsDoc::new(&session).record(
            "callStart",
            &at(0),
            next(),
            &call_start(&call, &c.destination),
        );
        let legs: Vec<String> = c.legs.iter().map(|_| guid()).collect();
        for (j, (leg, (remote, display, direction))) in legs.iter().zip(&c.legs).enumerate() {
            let local = format!("{}@cms.example.com", c.destination);
            let t = at(j as u32);
            doc = doc.record(
                "callLegStart",
                &t,
                next(),
                &leg_start(leg, &call, remote, &local, display, direction),
            );
            if c.answered() {
                doc = doc.record("callLegUpdate", &t, next(), &leg_connected(leg, &call));
            }
        }
        for leg in &legs {
            let (reason, secs) = if c.busy {
                ("remoteBusy", 0)
            } else {
                ("remoteTeardown", 60)
            };
            doc = doc.record("callLegEnd", &at(60), next(), &leg_end(leg, reason, secs));
        }
        doc = doc.record(
            "callEnd",
            &at(60),
            next(),
            &call_end(&call, legs.len() as u32, 60),
        );
        records += doc.len();
        server.ingest(&path, doc.build()).await;
    }
    records
}

fn destinations(calls: &[Value]) -> BTreeSet<String> {
    calls
        .iter()
        .map(|c| c["destination"].as_str().expect("destination").to_owned())
        .collect()
}

fn expected(calls: &[GeneratedCall], keep: impl Fn(&GeneratedCall) -> bool) -> BTreeSet<String> {
    calls
        .iter()
        .filter(|c| keep(c))
        .map(|c| c.destination.clone())
        .collect()
}

async fn server_with_calls() -> (TestServer, Vec<GeneratedCall>, usize) {
    let mut server = TestServer::start().await;
    let calls = generate();
    let records = ingest(&mut server, &calls).await;
    (server, calls, records)
}

#[tokio::test]
async fn generated_calls_are_stored_as_generated() {
    let (mut server, generated, _) = server_with_calls().await;
    let calls = server.calls().await;
    assert_eq!(calls.len(), generated.len());
    for g in &generated {
        let c = calls
            .iter()
            .find(|c| c["destination"] == g.destination.as_str())
            .unwrap_or_else(|| panic!("no call {}", g.destination));
        assert_eq!(c["legs"], g.legs.len(), "{c:#}");
        assert_eq!(
            c["disposition"],
            if g.busy { "busy" } else { "answered" },
            "{c:#}"
        );
        assert_eq!(
            c["direction"],
            if g.incoming() { "in" } else { "out" },
            "{c:#}"
        );
        assert_eq!(
            c["started_at"],
            format!("2026-01-01T{:02}:00:00Z", g.hour),
            "{c:#}"
        );
        assert_eq!(c["sender"], SENDER, "{c:#}");
        assert_eq!(c["media"], "audio", "{c:#}");
    }
}

#[tokio::test]
async fn limit_and_next_cursor_walk_every_call_once_newest_first() {
    let (mut server, generated, _) = server_with_calls().await;
    let mut seen: Vec<Value> = Vec::new();
    let mut query = "/api/v1/calls?limit=3".to_owned();
    let mut pages = 0;
    loop {
        let page = server.get_json(&query).await;
        pages += 1;
        let calls = page["calls"].as_array().unwrap();
        assert!(calls.len() <= 3, "{page:#}");
        seen.extend(calls.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                assert_eq!(calls.len(), 3, "a page with a cursor is full");
                query = format!("/api/v1/calls?limit=3&cursor={cursor}");
            }
            None => break,
        }
        assert!(pages <= generated.len(), "the cursor walk does not end");
    }
    assert_eq!(pages, 3);
    let ids: BTreeSet<&str> = seen.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), seen.len(), "a call was listed twice");
    assert_eq!(destinations(&seen), expected(&generated, |_| true));
    let starts: Vec<&str> = seen
        .iter()
        .map(|c| c["started_at"].as_str().unwrap())
        .collect();
    let mut newest_first = starts.clone();
    newest_first.sort_unstable_by(|a, b| b.cmp(a));
    newest_first.dedup();
    assert_eq!(starts, newest_first, "newest first, each start once");
}

#[tokio::test]
async fn paging_through_calls_that_started_in_the_same_second_lists_each_once() {
    let mut server = TestServer::start().await;
    let session = guid();
    let doc = (1..=5).fold(CmsDoc::new(&session), |doc, i| {
        doc.record(
            "callLegStart",
            "2026-02-01T00:00:00Z",
            i,
            &leg_start(
                &guid(),
                &guid(),
                &format!("same-second-{i}@example.com"),
                "paging@cms.example.com",
                "",
                "incoming",
            ),
        )
    });
    server
        .ingest(&format!("{CMS}?system_id={SENDER}"), doc.build())
        .await;
    let all = server.calls().await;
    assert_eq!(all.len(), 5);

    let mut seen: Vec<String> = Vec::new();
    let mut query = "/api/v1/calls?limit=2".to_owned();
    for _ in 0..5 {
        let page = server.get_json(&query).await;
        seen.extend(
            page["calls"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("/api/v1/calls?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    let unpaged: Vec<String> = all
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen, unpaged, "pages list the same calls in the same order");
}

#[tokio::test]
async fn filters_select_the_matching_calls() {
    let (mut server, generated, _) = server_with_calls().await;
    let cases: Vec<(&str, BTreeSet<String>)> = vec![
        (
            "from=2026-01-01T03:00:00Z&to=2026-01-01T05:00:00Z",
            expected(&generated, |c| (3..5).contains(&c.hour)),
        ),
        (
            "from=2026-01-01T07:00:00Z",
            expected(&generated, |c| c.hour >= 7),
        ),
        (
            "to=2026-01-01T02:00:00Z",
            expected(&generated, |c| c.hour < 2),
        ),
        ("disposition=busy", expected(&generated, |c| c.busy)),
        ("disposition=answered", expected(&generated, |c| !c.busy)),
        ("disposition=no_answer", BTreeSet::new()),
        ("direction=in", expected(&generated, |c| c.incoming())),
        ("direction=out", expected(&generated, |c| !c.incoming())),
        (
            "direction=in&disposition=answered",
            expected(&generated, |c| c.incoming() && !c.busy),
        ),
        ("source=cms", expected(&generated, |_| true)),
        ("source=radius", BTreeSet::new()),
    ];
    for (query, want) in cases {
        let got = server.calls_where(query).await;
        assert_eq!(destinations(&got), want, "?{query}");
    }
}

#[tokio::test]
async fn q_finds_calls_by_a_legs_remote_party_or_display_name() {
    let (mut server, generated, _) = server_with_calls().await;
    let cases: Vec<(&str, BTreeSet<String>)> = vec![
        // The third leg's remote party: only a leg has it, not the caller.
        (
            "q=555-0502",
            expected(&generated, |c| c.destination == "conf-5"),
        ),
        // A display name.
        (
            "q=Edsger",
            expected(&generated, |c| c.destination == "conf-3"),
        ),
        ("q=Desk", expected(&generated, |c| c.legs.len() >= 2)),
        // The caller (first incoming leg's remote party) and the conference name.
        (
            "q=555-0000",
            expected(&generated, |c| c.destination == "conf-0"),
        ),
        (
            "q=conf-6",
            expected(&generated, |c| c.destination == "conf-6"),
        ),
        // Combined with another filter, and a LIKE wildcard taken literally.
        (
            "disposition=busy&q=Desk",
            expected(&generated, |c| c.busy && c.legs.len() >= 2),
        ),
        ("q=%25", BTreeSet::new()),
    ];
    for (query, want) in cases {
        let got = server.calls_where(query).await;
        assert_eq!(destinations(&got), want, "?{query}");
    }
}

#[tokio::test]
async fn bad_parameters_get_400_naming_them() {
    let (mut server, _, _) = server_with_calls().await;
    let cases = [
        ("/api/v1/calls?colour=red", "colour"),
        ("/api/v1/calls?from=yesterday", "from="),
        ("/api/v1/calls?to=2026-13-01T00:00:00Z", "to="),
        ("/api/v1/calls?limit=0", "limit"),
        ("/api/v1/calls?limit=many", "limit"),
        ("/api/v1/calls?cursor=nope", "cursor"),
        ("/api/v1/calls?disposition=maybe", "maybe"),
        ("/api/v1/calls?direction=sideways", "sideways"),
        ("/api/v1/calls.csv?colour=red", "colour"),
        ("/api/v1/gaps?open=perhaps", "open"),
    ];
    for (query, names) in cases {
        let r = server.get(query).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {}", r.text());
        assert!(
            r.content_type().starts_with("application/json"),
            "{query}: {:?}",
            r.content_type()
        );
        let error = r.json()["error"].as_str().unwrap_or_default().to_owned();
        assert!(error.contains(names), "{query}: {error:?}");
    }
}

#[tokio::test]
async fn an_unknown_call_id_gets_404() {
    let (mut server, _, _) = server_with_calls().await;
    let r = server
        .get("/api/v1/calls/00000000-0000-0000-0000-000000000000")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    let error = r.json()["error"].as_str().unwrap_or_default().to_owned();
    assert!(
        error.contains("00000000-0000-0000-0000-000000000000"),
        "{error:?}"
    );
}

#[tokio::test]
async fn csv_export_has_a_bom_a_header_and_one_crlf_row_per_matching_call() {
    let (mut server, generated, _) = server_with_calls().await;
    let r = server.get("/api/v1/calls.csv?disposition=answered").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(
        r.content_type().starts_with("text/csv"),
        "{:?}",
        r.content_type()
    );
    let body = r.body.as_ref();
    let rest = body
        .strip_prefix(b"\xEF\xBB\xBF")
        .expect("the export starts with the UTF-8 byte-order mark");
    let want = expected(&generated, |c| !c.busy);

    // Every line ends with CRLF: as many CRLFs as newlines, one per row.
    let lines = rest.iter().filter(|&&b| b == b'\n').count();
    let crlfs = rest.windows(2).filter(|w| w == b"\r\n").count();
    assert!(rest.ends_with(b"\r\n"));
    assert_eq!(lines, crlfs, "a line without CR");
    assert_eq!(lines, 1 + want.len(), "a header and one row per call");

    let mut reader = csv::Reader::from_reader(rest);
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header,
        [
            "id",
            "source",
            "sender",
            "kind",
            "caller",
            "dialed",
            "destination",
            "direction",
            "started_at",
            "answered_at",
            "ended_at",
            "duration_s",
            "talk_s",
            "disposition",
            "cause",
            "media",
            "legs",
            "max_active_legs"
        ]
    );
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let got: BTreeSet<String> = rows
        .iter()
        .map(|r| r[column("destination")].to_owned())
        .collect();
    assert_eq!(got, want);
    let json = server.calls_where("disposition=answered").await;
    for row in &rows {
        assert_eq!(&row[column("disposition")], "answered");
        assert_eq!(&row[column("source")], "cms");
        assert_eq!(&row[column("sender")], SENDER);
        let call = json
            .iter()
            .find(|c| c["id"] == row[column("id")])
            .expect("the CSV row's id is a call id");
        assert_eq!(call["started_at"], row[column("started_at")]);
        assert_eq!(call["legs"].to_string(), row[column("legs")]);
    }
    // Same order as the JSON list: newest first.
    let csv_ids: Vec<&str> = rows.iter().map(|r| &r[column("id")]).collect();
    let json_ids: Vec<&str> = json.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(csv_ids, json_ids);
}

#[tokio::test]
async fn healthz_and_metrics() {
    let (mut server, generated, records) = server_with_calls().await;
    let health = server.get_json("/healthz").await;
    assert_eq!(health, serde_json::json!({"status": "ok"}));

    let r = server.get("/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.content_type().starts_with("text/plain"));
    let text = r.text();
    let lines: Vec<&str> = text.lines().collect();
    for want in [
        format!("cdrhub_records_total{{source=\"cms\",sender=\"{SENDER}\"}} {records}"),
        format!("cdrhub_calls {}", generated.len()),
        "cdrhub_up 1".to_owned(),
        format!(
            "cdrhub_ingest_responses_total{{source=\"cms\",status=\"200\"}} {}",
            generated.len()
        ),
    ] {
        assert!(
            lines.contains(&want.as_str()),
            "no line {want:?} in\n{text}"
        );
    }
}
