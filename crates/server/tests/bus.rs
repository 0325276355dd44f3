//! The ingest bus on the machine's NATS JetStream (issue 8, point 2): a
//! collector acknowledges the Call Bridge only after JetStream stored the
//! batch, even with no worker running; a worker started later stores
//! everything, once, with the same call a single server makes; batches
//! sent twice (a retry) and delivered twice are stored once; a worker-only
//! process opens no listener.

mod common;

use std::time::Duration;

use cdrhub_server::bus::{BusConfig, BusRole};
use cdrhub_server::sources::hep::HepSourceConfig;
use common::{CMS, Options, TestServer, assert_seed_call, seeds};
use serde_json::{Value, json};

fn bus(name: &str, roles: Vec<BusRole>) -> BusConfig {
    BusConfig {
        nats: "nats://127.0.0.1:4222".into(),
        stream: format!("CDRHUB_TEST_{name}"),
        subject_prefix: format!("cdrhub-test.{name}"),
        partitions: 4,
        consumer: "workers".into(),
        roles,
    }
}

async fn calls_once(server: &mut TestServer, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let calls = server.calls().await;
        if calls.len() >= n && calls.iter().all(|c| !c["ended_at"].is_null())
            || tokio::time::Instant::now() > deadline
        {
            return calls;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_acks_after_jetstream_and_a_later_worker_stores_everything_once() {
    common::ensure_nats();
    let name = uuid::Uuid::new_v4().simple().to_string();
    let mut collector = TestServer::start_with(Options {
        bus: Some(bus(&name, vec![BusRole::Collector])),
        ..Options::default()
    })
    .await;
    // No worker yet: the Call Bridge is answered 200 once JetStream has
    // the batch, and the collector's own store holds nothing.
    for doc in seeds() {
        let r = collector.post(CMS, doc).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // The Call Bridge retries the first two (it missed the answers).
    for doc in seeds().into_iter().take(2) {
        assert_eq!(collector.post(CMS, doc).await.status, 200);
    }
    // Events too, by the API, one of them sent twice.
    let event = |k: &str, t: &str, at: &str| {
        json!({"type": t, "call_id": "ev-1", "key": k, "at": at, "caller": "201", "callee": "5001"})
            .to_string()
    };
    for body in [
        event("k1", "setup", "2026-12-01T10:00:00Z"),
        event("k2", "answered", "2026-12-01T10:00:05Z"),
        event("k3", "ended", "2026-12-01T10:01:05Z"),
        event("k3", "ended", "2026-12-01T10:01:05Z"),
    ] {
        let r = collector.post("/api/v1/events", body).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert!(
        collector.calls().await.is_empty(),
        "a collector stores nothing itself"
    );
    let sources = collector.get_json("/api/v1/sources").await;
    assert_eq!(sources["bus"]["roles"], json!(["collector"]));
    assert_eq!(sources["bus"]["counters"]["published"], 12, "{sources:#}");
    assert_eq!(sources["bus"]["counters"]["publish_failures"], 0);

    // The worker comes and takes it all.
    let mut worker = TestServer::start_with(Options {
        bus: Some(bus(&name, vec![BusRole::Worker])),
        hep: Some(HepSourceConfig {
            enabled: true,
            ..HepSourceConfig::default()
        }),
        ..Options::default()
    })
    .await;
    assert!(
        worker.hep_addrs.is_none(),
        "a worker-only process listens for nothing"
    );
    let calls = calls_once(&mut worker, 2).await;
    assert_eq!(calls.len(), 2, "{calls:#?}");
    let cms = calls.iter().find(|c| c["source"] == "cms").unwrap();
    // The same call a server fed directly makes.
    assert_seed_call(cms, cms["sender"].as_str().unwrap());
    let counters = worker.get_json("/api/v1/sources").await["bus"]["counters"].clone();
    assert_eq!(
        (counters["stored"].as_u64(), counters["unreadable"].as_u64()),
        (Some(12), Some(0)),
        "{counters:#}"
    );
    let mut direct = TestServer::start().await;
    for doc in seeds() {
        direct.ingest(CMS, doc).await;
    }
    assert_eq!(
        worker.records_total().await,
        direct.records_total().await,
        "each CMS record once (the retried posts are duplicates)"
    );
    let ev = calls.iter().find(|c| c["source"] == "events").unwrap();
    assert_eq!(
        (ev["talk_s"].as_i64(), ev["sender"].as_str()),
        (Some(60), Some("tests"))
    );

    // A second worker on the same consumer finds nothing left to do.
    let mut other = TestServer::start_with(Options {
        bus: Some(bus(&name, vec![BusRole::Worker])),
        ..Options::default()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(other.calls().await.is_empty(), "every batch was taken once");

    // The test's stream goes.
    let client = async_nats::connect("nats://127.0.0.1:4222").await.unwrap();
    let js = async_nats::jetstream::new(client);
    js.delete_stream(format!("CDRHUB_TEST_{name}"))
        .await
        .unwrap();
}

/// A collector whose NATS does not answer does not start: it would have
/// nowhere to put what it acknowledges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_without_its_nats_refuses_to_start_and_says_why() {
    let mut config = cdrhub_server::Config::default();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.bus = Some(BusConfig {
        nats: "nats://127.0.0.1:1".into(),
        ..bus("unreachable", vec![BusRole::Collector])
    });
    let dir = tempfile::tempdir().unwrap();
    let store = cdrhub_store::SqliteStore::open(dir.path(), Default::default()).unwrap();
    let state = cdrhub_server::AppState {
        store: std::sync::Arc::new(store),
        config: std::sync::Arc::new(config),
        metrics: Default::default(),
        retention: Default::default(),
        bus: None,
        exports: Default::default(),
    };
    let Err(e) = cdrhub_server::BoundServer::bind(state).await else {
        panic!("a collector started without its NATS");
    };
    let message = format!("{e:#}");
    assert!(
        message.starts_with("cannot connect to NATS at nats://127.0.0.1:1"),
        "{message}"
    );
}

/// A batch a worker cannot read (a newer collector's, say) is not dropped:
/// it stays on the bus for a worker that reads it, and is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_the_worker_cannot_read_stays_on_the_bus() {
    common::ensure_nats();
    let name = uuid::Uuid::new_v4().simple().to_string();
    let mut worker = TestServer::start_with(Options {
        bus: Some(bus(&name, vec![BusRole::Worker])),
        ..Options::default()
    })
    .await;
    let client = async_nats::connect("nats://127.0.0.1:4222").await.unwrap();
    let js = async_nats::jetstream::new(client);
    let stream = format!("CDRHUB_TEST_{name}");
    // The worker made the stream when it started.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while js.get_stream(&stream).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the worker made no stream"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    js.publish(
        format!("cdrhub-test.{name}.0"),
        "from a future build".into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    loop {
        let counters = worker.get_json("/api/v1/sources").await["bus"]["counters"].clone();
        if counters["unreadable"].as_u64() >= Some(1) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{counters:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut info = js.get_stream(&stream).await.unwrap();
    assert_eq!(
        info.info().await.unwrap().state.messages,
        1,
        "still on the bus"
    );
    js.delete_stream(&stream).await.unwrap();
}
