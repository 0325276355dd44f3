//! The API asks for an API token (issue 3, point 1); `/healthz`, `/metrics`
//! and the ingest paths do not.

mod common;

use cdrhub_model::Role;
use cdrhub_server::auth;
use common::{Client, TestServer, seed};
use hyper::StatusCode;

/// Adds a token of `role` to the running server's store.
fn token(server: &TestServer, name: &str, role: Role) -> String {
    let token = auth::new_secret();
    server
        .with_accounts(|a| a.add_token(name, role, &auth::token_hash(&token)))
        .unwrap();
    token
}

#[tokio::test]
async fn the_api_without_a_token_is_refused_and_says_why() {
    let server = TestServer::start().await;
    let mut anonymous = Client::plain(server.http_addr);
    for path in [
        "/api/v1/calls",
        "/api/v1/calls.csv",
        "/api/v1/sources",
        "/api/v1/openapi.json",
    ] {
        let r = anonymous.get(path).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(
            r.json()["error"]
                .as_str()
                .unwrap()
                .contains("Authorization: Bearer")
        );
        assert!(
            r.header("www-authenticate")
                .is_some_and(|h| h.starts_with("Bearer"))
        );
    }
    // Health, metrics and ingest stay open.
    assert_eq!(anonymous.get("/healthz").await.status, StatusCode::OK);
    assert_eq!(anonymous.get("/metrics").await.status, StatusCode::OK);
    assert_eq!(
        anonymous.post("/ingest/cms", seed(1)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_unknown_or_revoked_token_is_refused() {
    let server = TestServer::start().await;
    let mut wrong = Client::plain(server.http_addr).with_bearer(&auth::new_secret());
    let r = wrong.get("/api/v1/calls").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.json()["error"].as_str().unwrap().contains("not valid"));

    let secret = token(&server, "script", Role::Viewer);
    let mut client = Client::plain(server.http_addr).with_bearer(&secret);
    assert_eq!(client.get("/api/v1/calls").await.status, StatusCode::OK);
    assert!(server.with_accounts(|a| a.revoke_token("script")).unwrap());
    assert_eq!(
        client.get("/api/v1/calls").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn exports_need_the_supervisor_role() {
    let server = TestServer::start().await;
    let viewer = token(&server, "viewer", Role::Viewer);
    let mut client = Client::plain(server.http_addr).with_bearer(&viewer);
    assert_eq!(client.get("/api/v1/calls").await.status, StatusCode::OK);
    let r = client.get("/api/v1/calls.csv").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.json()["error"].as_str().unwrap().contains("supervisor"));

    let supervisor = token(&server, "supervisor", Role::Supervisor);
    let mut client = Client::plain(server.http_addr).with_bearer(&supervisor);
    assert_eq!(client.get("/api/v1/calls.csv").await.status, StatusCode::OK);
}
