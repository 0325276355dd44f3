//! Records that arrive out of order, and one POST holding every record type
//! of a call (reference/cms-cdr.md A.1: real captures mix types in one batch;
//! A.5: a receiver that processes a mixed batch by type loses records).

mod common;

use common::{
    CMS, CmsDoc, SEED_CALL_BRIDGE, TestServer, assert_seed_call, assert_seed_detail, call_end,
    call_start, event_types, guid, leg_connected, leg_end, leg_start, seeds,
};
use serde_json::Value;

/// A call or leg without the ids the store gave it, for comparing two stores.
fn without_ids(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("id");
        o.remove("call_id");
        o.remove("received_at");
        for (_, child) in o.iter_mut() {
            *child = without_ids(child.take());
        }
    } else if let Some(a) = v.as_array_mut() {
        for child in a.iter_mut() {
            *child = without_ids(child.take());
        }
    }
    v
}

/// Two servers: one given the seed documents in order, one in reverse.
async fn seeds_in_order_and_reversed() -> (TestServer, TestServer) {
    let mut in_order = TestServer::start().await;
    for doc in seeds() {
        in_order.ingest(CMS, doc).await;
    }
    let mut reversed = TestServer::start().await;
    for doc in seeds().into_iter().rev() {
        reversed.ingest(CMS, doc).await;
    }
    (in_order, reversed)
}

#[tokio::test]
async fn seeds_in_reverse_order_make_the_same_call_as_in_order() {
    let (mut in_order, mut reversed) = seeds_in_order_and_reversed().await;

    let calls = reversed.calls().await;
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_seed_call(&calls[0], SEED_CALL_BRIDGE);
    let detail = reversed.call(calls[0]["id"].as_str().unwrap()).await;
    assert_seed_detail(&detail);

    let expected = in_order.calls().await;
    assert_eq!(
        without_ids(calls[0].clone()),
        without_ids(expected[0].clone()),
        "the call summary does not depend on arrival order"
    );
    let mut expected_legs =
        in_order.call(expected[0]["id"].as_str().unwrap()).await["legs"].clone();
    let mut legs = detail["legs"].clone();
    for l in [&mut expected_legs, &mut legs] {
        l.as_array_mut()
            .unwrap()
            .sort_by_key(|leg| leg["source_leg_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(without_ids(legs), without_ids(expected_legs));

    let sender = reversed.sender(SEED_CALL_BRIDGE).await.unwrap();
    assert_eq!(sender["records_total"], 8, "{sender:#}");
    assert_eq!(sender["duplicates"], 0, "{sender:#}");
}

#[tokio::test]
async fn a_post_mixing_every_record_type_is_stored_whole() {
    let mut server = TestServer::start().await;
    let (session, call, leg) = (guid(), guid(), guid());
    let t0 = "2026-01-01T10:00:00Z";
    let t1 = "2026-01-01T10:00:42Z";
    let doc = CmsDoc::new(&session)
        .record("callStart", t0, 1, &call_start(&call, "mixed-batch"))
        .record(
            "callLegStart",
            t0,
            2,
            &leg_start(
                &leg,
                &call,
                "alice@example.com",
                "mixed@cms.example.com",
                "Alice",
                "incoming",
            ),
        )
        .record("callLegUpdate", t0, 3, &leg_connected(&leg, &call))
        .record("callLegEnd", t1, 4, &leg_end(&leg, "remoteTeardown", 42))
        .record("callEnd", t1, 5, &call_end(&call, 1, 42));
    server
        .ingest(&format!("{CMS}?system_id=mixed"), doc.build())
        .await;

    let sender = server.sender("mixed").await.expect("the sender");
    assert_eq!(sender["records_total"], 5, "{sender:#}");
    let calls = server.calls().await;
    assert_eq!(calls.len(), 1, "{calls:#?}");
    let c = &calls[0];
    assert_eq!(c["kind"], "conference", "{c:#}");
    assert_eq!(c["destination"], "mixed-batch", "{c:#}");
    assert_eq!(c["caller"], "alice@example.com", "{c:#}");
    assert_eq!(c["legs"], 1, "{c:#}");
    assert_eq!(c["disposition"], "answered", "{c:#}");
    assert_eq!(c["started_at"], t0, "{c:#}");
    assert_eq!(c["ended_at"], t1, "{c:#}");
    assert_eq!(c["duration_s"], 42, "{c:#}");

    let detail = server.call(c["id"].as_str().unwrap()).await;
    let legs = detail["legs"].as_array().unwrap();
    assert_eq!(legs.len(), 1, "{detail:#}");
    assert_eq!(legs[0]["source_leg_id"], leg.as_str());
    assert_eq!(legs[0]["disposition"], "answered");
    assert_eq!(legs[0]["connected_at"], t0);
    assert_eq!(
        event_types(&detail),
        [
            "callStart",
            "callLegStart",
            "callLegUpdate",
            "callLegEnd",
            "callEnd"
        ]
    );
}

#[tokio::test]
async fn the_timeline_does_not_depend_on_arrival_order() {
    let (mut in_order, mut reversed) = seeds_in_order_and_reversed().await;
    let id = in_order.calls().await[0]["id"].as_str().unwrap().to_owned();
    let expected = event_types(&in_order.call(&id).await);
    let id = reversed.calls().await[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(event_types(&reversed.call(&id).await), expected);
}
