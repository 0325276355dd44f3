//! Scheduled exports and webhooks (issue 7, points 3 and 4): an HTTP
//! endpoint that fails and then recovers gets every export file and every
//! ended call exactly once, signed; a directory gets its files; the
//! console shows what waits. The periods are 2 s long so the test need not
//! wait for an hour.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use cdrhub_server::exports::{ExportConfig, ExportFormat, WebhookConfig};
use common::{Options, TestServer};
use serde_json::{Value, json};

const SECRET: &str = "shared webhook secret";

/// What the endpoint took: (delivery id, body) of each accepted request.
#[derive(Default)]
struct Received {
    refused: usize,
    accepted: Vec<(String, Vec<u8>)>,
}

/// An HTTP endpoint on loopback that answers 503 to its first `fail`
/// requests, then 200, checking each request's signature.
async fn endpoint(fail: usize) -> (SocketAddr, Arc<Mutex<Received>>) {
    let got = Arc::new(Mutex::new(Received::default()));
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/{*path}",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let seen = seen.clone();
            async move {
                let mut r = seen.lock().unwrap();
                if r.refused < fail {
                    r.refused += 1;
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                let header = |n: &str| {
                    headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned()
                };
                let ts: u64 = header("x-cdrhub-timestamp").parse().unwrap_or(0);
                let want = cdrhub_server::delivery::http::signature(SECRET, ts, &body);
                assert_eq!(header("x-cdrhub-signature"), want, "a signed request");
                r.accepted
                    .push((header("x-cdrhub-delivery"), body.to_vec()));
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, got)
}

/// A call's four events, ending now.
fn call_events(id: &str) -> String {
    let now = cdrhub_model::Timestamp::now().0;
    [
        json!({"type":"setup","call_id":id,"key":format!("{id}/1"),"at":now - 3_000,"caller":"201","callee":"5001"}),
        json!({"type":"answered","call_id":id,"key":format!("{id}/2"),"at":now - 2_000}),
        json!({"type":"ended","call_id":id,"key":format!("{id}/3"),"at":now,"by":"caller"}),
    ]
    .iter()
    .map(Value::to_string)
    .collect::<Vec<_>>()
    .join("\n")
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_gets_every_export_and_webhook_once_it_recovers() {
    let (export_at, exported) = endpoint(3).await;
    let (hook_at, hooked) = endpoint(4).await;
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_with(Options {
        exports: vec![
            ExportConfig {
                name: "billing".into(),
                every: "2s".into(),
                format: ExportFormat::Ndjson,
                columns: Vec::new(),
                source: None,
                directory: None,
                url: Some(format!("http://{export_at}/cdr")),
                headers: BTreeMap::new(),
                hmac_secret: Some(SECRET.into()),
                delay_s: 1,
                timeout_s: 5,
            },
            ExportConfig {
                name: "files".into(),
                every: "2s".into(),
                format: ExportFormat::Csv,
                columns: vec!["id".into(), "caller".into(), "talk_s".into()],
                source: Some("events".into()),
                directory: Some(dir.path().to_owned()),
                url: None,
                headers: BTreeMap::new(),
                hmac_secret: None,
                delay_s: 1,
                timeout_s: 5,
            },
        ],
        webhooks: vec![WebhookConfig {
            name: "crm".into(),
            url: format!("http://{hook_at}/hook"),
            source: None,
            headers: BTreeMap::new(),
            hmac_secret: Some(SECRET.into()),
            timeout_s: 5,
        }],
        ..Options::default()
    })
    .await;
    // Let the exports start (they begin with the period in progress).
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let mut ids = BTreeSet::new();
    for n in 0..6 {
        let id = format!("x-{n}");
        let r = server.post("/api/v1/events", call_events(&id)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        ids.insert(id);
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let calls: BTreeMap<String, String> = server
        .calls_where("source=events")
        .await
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                c["details"]["call_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(calls.len(), 6);

    // The console shows the exports and what waits while the endpoints fail.
    common::add_user(
        &server,
        "ada",
        cdrhub_model::Role::Admin,
        "ada's long password",
    );
    let mut browser = common::signed_in(&server, "ada", "ada's long password").await;
    let page = browser.get("/admin/exports").await.text();
    assert!(page.contains("billing") && page.contains("crm"), "{page}");

    // Every call in exactly one export file.
    let exported_ids = |r: &Received| -> Vec<String> {
        r.accepted
            .iter()
            .flat_map(|(_, body)| {
                String::from_utf8_lossy(body)
                    .lines()
                    .map(|l| {
                        serde_json::from_str::<Value>(l).unwrap()["id"]
                            .as_str()
                            .unwrap()
                            .to_owned()
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    wait_until("every call exported", || {
        exported_ids(&exported.lock().unwrap()).len() >= 6
    })
    .await;
    // A little longer: nothing more may come.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut want: Vec<String> = calls.keys().cloned().collect();
    want.sort();
    {
        let r = exported.lock().unwrap();
        assert_eq!(r.refused, 3);
        let mut got = exported_ids(&r);
        got.sort();
        assert_eq!(got, want, "each call once");
        let deliveries: BTreeSet<&String> = r.accepted.iter().map(|(d, _)| d).collect();
        assert_eq!(deliveries.len(), r.accepted.len(), "no file twice");
    }

    // One webhook per call, once.
    wait_until("every call's webhook", || {
        hooked.lock().unwrap().accepted.len() >= 6
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    {
        let r = hooked.lock().unwrap();
        assert_eq!(r.refused, 4);
        let mut hooked_ids: Vec<String> = r
            .accepted
            .iter()
            .map(|(_, body)| {
                let v: Value = serde_json::from_slice(body).unwrap();
                assert_eq!(v["event"], "call_ended");
                v["call"]["id"].as_str().unwrap().to_owned()
            })
            .collect();
        hooked_ids.sort();
        assert_eq!(hooked_ids, want, "each call once");
    }

    // The directory: CSV files with the chosen columns, each call once.
    let mut in_files = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("files-") && name.ends_with(".csv"),
            "{name}"
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap().trim_start_matches('\u{feff}'),
            "id,caller,talk_s"
        );
        for line in lines {
            let cols: Vec<&str> = line.split(',').collect();
            assert_eq!((cols[1], cols[2]), ("201", "2"), "{line}");
            in_files.push(cols[0].to_owned());
        }
    }
    in_files.sort();
    let listing: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        in_files,
        want,
        "{listing:?} {:#?}",
        server.get_json("/api/v1/sources").await
    );
    let _ = ids;
}

/// The first waiting item's id on the exports page, if any.
fn first_pending(page: &str) -> Option<String> {
    let table = &page[page.find("id=\"pending\"")?..];
    let at = table.find("name=\"id\" value=\"")? + 17;
    Some(table[at..].split('"').next()?.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_adds_exports_and_webhooks_in_the_console_and_handles_what_waits() {
    // An endpoint that refuses everything: each webhook waits in the spool.
    let (hook_at, hooked) = endpoint(usize::MAX).await;
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start().await;
    common::add_user(
        &server,
        "ada",
        cdrhub_model::Role::Admin,
        "ada's long password",
    );
    common::add_user(
        &server,
        "vic",
        cdrhub_model::Role::Viewer,
        "vic's long password",
    );
    let mut admin = common::signed_in(&server, "ada", "ada's long password").await;
    let csrf = common::csrf_of(&admin.get("/admin/exports").await.text());

    let hook_url = format!("http://{hook_at}/hook");
    let r = admin
        .post_form(
            "/admin/exports/add",
            &[
                ("csrf", &csrf),
                ("kind", "webhook"),
                ("name", "crm"),
                ("url", &hook_url),
                ("hmac_secret", SECRET),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let directory = dir.path().to_str().unwrap().to_owned();
    let r = admin
        .post_form(
            "/admin/exports/add",
            &[
                ("csrf", &csrf),
                ("kind", "export"),
                ("name", "daily"),
                ("every", "daily"),
                ("format", "csv"),
                ("columns", "id,caller,talk_s"),
                ("directory", &directory),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let page = admin.get("/admin/exports").await.text();
    assert!(page.contains("crm") && page.contains(&hook_url), "{page}");
    assert!(
        page.contains("daily") && page.contains(&directory),
        "{page}"
    );

    // A viewer sees nothing to change and cannot add.
    let mut viewer = common::signed_in(&server, "vic", "vic's long password").await;
    let r = viewer
        .post_form(
            "/admin/exports/add",
            &[
                ("csrf", &csrf),
                ("kind", "webhook"),
                ("name", "x"),
                ("url", &hook_url),
            ],
        )
        .await;
    assert_ne!(r.status, StatusCode::SEE_OTHER, "a viewer added a webhook");

    // A call ends: its webhook is refused and waits, shown with its error.
    let r = server.post("/api/v1/events", call_events("w-1")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    let (page, id) = loop {
        let page = admin.get("/admin/exports").await.text();
        if let Some(id) = first_pending(&page)
            && page.contains("503")
        {
            break (page, id);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing waits: {page}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(page.contains("id=\"pending-title\""), "{page}");
    assert!(hooked.lock().unwrap().refused >= 1);

    // "Try now" keeps it waiting (the endpoint still refuses); "Discard"
    // takes it off the list.
    for action in ["retry", "discard"] {
        let r = admin
            .post_form(
                "/admin/exports/item",
                &[("csrf", &csrf), ("id", &id), ("action", action)],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{action}: {}", r.text());
    }
    let page = admin.get("/admin/exports").await.text();
    assert_eq!(first_pending(&page), None, "{page}");

    // Both go away again.
    for (kind, name) in [("webhook", "crm"), ("export", "daily")] {
        let r = admin
            .post_form(
                "/admin/exports/delete",
                &[("csrf", &csrf), ("kind", kind), ("name", name)],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    }
    let page = admin.get("/admin/exports").await.text();
    assert!(
        !page.contains(&hook_url) && !page.contains(&directory),
        "{page}"
    );

    // Every change is in the audit log, with who made it.
    let audit = admin.get("/audit").await.text();
    for operation in [
        "webhook add",
        "export add",
        "delivery retry",
        "delivery discard",
        "webhook delete",
        "export delete",
    ] {
        assert!(
            audit.contains(operation),
            "{operation} not audited: {audit}"
        );
    }
}
