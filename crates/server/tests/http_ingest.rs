//! CMS CDRs over plain HTTP: the six seed documents of one 2-leg conference
//! call, posted as a Call Bridge posts them (reference/cms-cdr.md A.1).

mod common;

use common::{
    CMS, SEED_CALL_BRIDGE, TestServer, assert_seed_call, assert_seed_call_fields,
    assert_seed_detail, event_types, object_keys, seed, seeds,
};

#[tokio::test]
async fn seed_call_over_one_keep_alive_connection_is_stored_whole() {
    let mut server = TestServer::start().await;
    for doc in seeds() {
        server.ingest(CMS, doc).await;
    }
    assert_eq!(
        server.client.connections_opened, 1,
        "every POST and every answer travelled on one keep-alive connection"
    );

    let calls = server.calls().await;
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_seed_call(&calls[0], SEED_CALL_BRIDGE);
    let id = calls[0]["id"].as_str().expect("call id").to_owned();
    let detail = server.call(&id).await;
    assert_eq!(detail["id"], id.as_str());
    assert_seed_call_fields(&detail, SEED_CALL_BRIDGE);
    assert_seed_detail(&detail);
    assert_eq!(
        event_types(&detail),
        [
            "callLegStart",
            "callStart",
            "callLegUpdate",
            "callLegStart",
            "callLegUpdate",
            "callLegEnd",
            "callLegEnd",
            "callEnd"
        ],
        "events of equal time keep the order they were sent in"
    );

    let sender = server.sender(SEED_CALL_BRIDGE).await.expect("the sender");
    assert_eq!(sender["records_total"], 8, "{sender:#}");
    assert_eq!(sender["duplicates"], 0, "{sender:#}");
    assert_eq!(sender["gaps"], 0, "{sender:#}");
    assert_eq!(sender["rejected_documents"], 0, "{sender:#}");
}

#[tokio::test]
async fn a_resent_document_is_acknowledged_and_stored_once() {
    let mut server = TestServer::start().await;
    for doc in seeds() {
        server.ingest(CMS, doc).await;
    }
    // The Call Bridge re-sends a batch whose 200 it did not see.
    server.ingest(CMS, seed(1)).await;

    let sender = server.sender(SEED_CALL_BRIDGE).await.expect("the sender");
    assert_eq!(sender["duplicates"], 1, "{sender:#}");
    assert_eq!(sender["records_total"], 8, "{sender:#}");
    let calls = server.calls().await;
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_seed_call(&calls[0], SEED_CALL_BRIDGE);
    let detail = server.call(calls[0]["id"].as_str().unwrap()).await;
    assert_seed_detail(&detail);
}

#[tokio::test]
async fn system_id_in_the_receiver_uri_names_the_sender() {
    let mut server = TestServer::start().await;
    let path = format!("{CMS}?system_id=cb-east");
    for doc in seeds() {
        server.ingest(&path, doc).await;
    }
    let calls = server.calls().await;
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_seed_call(&calls[0], "cb-east");

    let senders = server.senders().await;
    assert_eq!(senders.len(), 1, "{senders:#?}");
    assert_eq!(senders[0]["sender"], "cb-east");
    assert_eq!(senders[0]["records_total"], 8);
}

#[tokio::test]
async fn without_system_id_the_sender_is_the_call_bridge_guid() {
    let mut server = TestServer::start().await;
    for doc in seeds() {
        server.ingest(CMS, doc).await;
    }
    let senders = server.senders().await;
    let names: Vec<&str> = senders
        .iter()
        .map(|s| s["sender"].as_str().unwrap())
        .collect();
    assert_eq!(names, [SEED_CALL_BRIDGE]);
    assert_eq!(server.calls().await[0]["sender"], SEED_CALL_BRIDGE);
}

#[tokio::test]
async fn call_detail_names_each_key_once() {
    let mut server = TestServer::start().await;
    for doc in seeds() {
        server.ingest(CMS, doc).await;
    }
    let id = server.calls().await[0]["id"].as_str().unwrap().to_owned();
    let r = server.get(&format!("/api/v1/calls/{id}")).await;
    let keys = object_keys(&r.body);
    let mut unique = keys.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        keys.len(),
        unique.len(),
        "repeated keys in the call detail: {keys:?}"
    );
}
