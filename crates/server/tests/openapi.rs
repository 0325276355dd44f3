//! The OpenAPI document and the router agree: every documented path and
//! method is served, and every route is documented.

mod common;

use std::collections::BTreeSet;

use common::{CMS, TestServer, seeds};
use hyper::{Method, StatusCode};

#[tokio::test]
async fn every_documented_path_is_served_and_every_route_is_documented() {
    let mut server = TestServer::start().await;
    for doc in seeds() {
        server.ingest(CMS, doc).await;
    }
    let call_id = server.calls().await[0]["id"]
        .as_str()
        .expect("a call id")
        .to_owned();

    let spec = server.get_json("/api/v1/openapi.json").await;
    assert_eq!(spec["openapi"], "3.1.0", "{spec:#}");
    let paths = spec["paths"].as_object().expect("a paths object");

    let documented: BTreeSet<&str> = paths.keys().map(String::as_str).collect();
    let routes = BTreeSet::from([
        "/api/v1/calls",
        "/api/v1/calls.csv",
        "/api/v1/calls/{id}",
        "/api/v1/calls/{id}/end",
        "/api/v1/sources",
        "/api/v1/gaps",
        "/api/v1/stats",
        "/api/v1/cc",
        "/api/v1/gateways",
        "/api/v1/gateways/log",
        "/api/v1/gateways/{name}/events",
        "/api/v1/gateways/{name}/report",
        "/api/v1/gateways/{name}/report.csv",
        "/api/v1/sip/registrations",
        "/api/v1/sip/register-stats",
        "/api/v1/events",
        "/api/v1/events/ws",
        "/api/v1/openapi.json",
        "/healthz",
        "/metrics",
        "/ingest/cms",
    ]);
    assert_eq!(documented, routes);

    // The API needs a token; health, metrics and the receiver do not.
    assert_eq!(spec["security"], serde_json::json!([{"bearer": []}]));
    assert_eq!(
        spec["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    for open in [
        ("/healthz", "get"),
        ("/metrics", "get"),
        ("/ingest/cms", "post"),
    ] {
        assert_eq!(
            paths[open.0][open.1]["security"],
            serde_json::json!([]),
            "{open:?}"
        );
        assert!(paths[open.0][open.1]["responses"].get("401").is_none());
    }
    assert!(
        paths["/api/v1/calls"]["get"]["responses"]
            .get("401")
            .is_some()
    );
    assert!(
        paths["/api/v1/calls.csv"]["get"]["responses"]
            .get("403")
            .is_some()
    );

    let mut client = server.http_client();
    let mut requested = 0;
    for (path, item) in paths {
        let url = path
            .replace("{id}", &call_id)
            .replace("{name}", "8200_000C2A020082");
        let methods = item.as_object().expect("a path item");
        assert!(!methods.is_empty(), "{path} documents no method");
        for method in methods.keys() {
            let (method, body) = match method.as_str() {
                "get" => (Method::GET, bytes::Bytes::new()),
                "post" if path == "/api/v1/events" => (
                    Method::POST,
                    bytes::Bytes::from_static(
                        br#"{"type":"setup","call_id":"o-1","key":"o-1/1","at":"2026-12-01T10:00:00Z"}"#,
                    ),
                ),
                "post" => (Method::POST, common::seed(1)),
                other => panic!("{path}: unexpected method {other}"),
            };
            let r = client.request(method.clone(), &url, body).await;
            assert!(
                r.status != StatusCode::NOT_FOUND && r.status != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {url} is documented but answered {}: {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            );
            // The seed's call has ended: ending it by hand is refused.
            let expected = if path.ends_with("/end") {
                r.status == StatusCode::CONFLICT
            } else if path.ends_with("/ws") {
                // A WebSocket needs its upgrade headers.
                r.status == StatusCode::BAD_REQUEST || r.status == StatusCode::UPGRADE_REQUIRED
            } else {
                r.status.is_success()
            };
            assert!(expected, "{method} {url} answered {}", r.status);
            requested += 1;
        }
    }
    assert!(requested >= routes.len());
}
