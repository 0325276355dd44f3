//! CMS CDRs over HTTPS (rustls), as a Call Bridge with an `https://`
//! receiver URI sends them (reference/cms-cdr.md A.2).

mod common;

use std::time::Duration;

use common::{
    CMS, Client, Options, SEED_CALL_BRIDGE, TestServer, assert_seed_call, assert_seed_detail, seed,
    seeds,
};
use hyper::{Method, StatusCode};

#[tokio::test]
async fn seed_call_over_https_is_stored() {
    let mut server = TestServer::start_with(Options {
        https: true,
        ..Options::default()
    })
    .await;
    let mut tls = server.https_client();
    for doc in seeds() {
        let r = tls.post(CMS, doc).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert!(r.body.is_empty(), "{:?}", r.text());
    }
    assert_eq!(tls.connections_opened, 1, "one keep-alive TLS connection");

    let page = tls.get("/api/v1/calls").await;
    assert_eq!(page.status, StatusCode::OK);
    let calls = page.json()["calls"].as_array().unwrap().clone();
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_seed_call(&calls[0], SEED_CALL_BRIDGE);
    let detail = tls
        .get(&format!(
            "/api/v1/calls/{}",
            calls[0]["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(detail.status, StatusCode::OK);
    assert_seed_detail(&detail.json());

    // The plain listener serves the same store.
    assert_eq!(server.calls().await.len(), 1);
    let sender = server.sender(SEED_CALL_BRIDGE).await.unwrap();
    assert_eq!(sender["records_total"], 8, "{sender:#}");
}

#[tokio::test]
async fn plain_http_to_the_https_port_is_not_acknowledged() {
    let mut server = TestServer::start_with(Options {
        https: true,
        ..Options::default()
    })
    .await;
    let mut plain = Client::plain(server.https_addr.unwrap());
    // A guard against a hang only; nothing is asserted about time.
    let outcome = tokio::time::timeout(
        Duration::from_secs(60),
        plain.try_request(Method::POST, CMS, seed(1)),
    )
    .await
    .expect("the HTTPS port answers plain HTTP one way or another");
    if let Ok(reply) = &outcome {
        assert_ne!(reply.status, StatusCode::OK, "plain HTTP got {reply:?}");
    }
    assert!(server.calls().await.is_empty());
    assert!(server.senders().await.is_empty());

    // The HTTPS listener still works after the bad client.
    let mut tls = server.https_client();
    let r = tls.post(CMS, seed(1)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}
