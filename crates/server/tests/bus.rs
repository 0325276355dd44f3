//! The ingest bus on the machine's NATS JetStream (issue 8, point 2): a
//! collector acknowledges the Call Bridge only after JetStream stored the
//! batch, even with no worker running; a worker started later stores
//! everything, once, with the same call a single server makes; batches
//! sent twice (a retry) and delivered twice are stored once; a worker-only
//! process opens no listener.

mod common;

use std::net::SocketAddr;
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
    // The calls are whole before the last batch (the event sent twice,
    // which changes no call) may be counted: wait for the count.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let counters = loop {
        let counters = worker.get_json("/api/v1/sources").await["bus"]["counters"].clone();
        if counters["stored"].as_u64() >= Some(12) || tokio::time::Instant::now() > deadline {
            break counters;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
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

/// A call as compared between deployments: without cdrhub's own id, and
/// for RADIUS without the times, which are when each server received the
/// datagrams (this gateway's clock is marked unsynchronised).
fn comparable(call: &Value) -> Value {
    let mut c = call.clone();
    let o = c.as_object_mut().unwrap();
    o.remove("id");
    if o["source"] == "radius" {
        for k in ["started_at", "answered_at", "ended_at"] {
            o.remove(k);
        }
        for leg in o["details"]["legs"].as_array_mut().unwrap() {
            // "records" are journal ids: the partitions' batches are
            // journaled side by side, so their ids interleave differently.
            for k in ["started_at", "stopped_at", "updated_at", "records"] {
                leg.as_object_mut().unwrap().remove(k);
            }
        }
    }
    c
}

fn radius_fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../tests/data/radius/{name}.hex",
        env!("CARGO_MANIFEST_DIR")
    );
    let text: String = std::fs::read_to_string(&path)
        .unwrap()
        .split_whitespace()
        .collect();
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn sources(
    radius: bool,
    hep: bool,
) -> (
    Option<cdrhub_server::sources::radius::RadiusSourceConfig>,
    Option<HepSourceConfig>,
) {
    use cdrhub_server::sources::radius::{RadiusClient, RadiusSourceConfig};
    (
        radius.then(|| RadiusSourceConfig {
            enabled: true,
            listen: "127.0.0.1:0".parse().unwrap(),
            clients: vec![RadiusClient {
                address: "127.0.0.1".into(),
                secret: "cdrhub-radius-fixtures".into(),
            }],
        }),
        hep.then(|| HepSourceConfig {
            enabled: true,
            ..HepSourceConfig::default()
        }),
    )
}

/// The recorded input of every source this test can replay: the CMS seed
/// posts, RADIUS Start and Stop datagrams, the Kamailio HEP capture and a
/// call's events. CMS and events go to `http`; RADIUS and HEP to the
/// addresses given (another server's, for a collector of datagrams).
async fn replay(http: &mut TestServer, radius: SocketAddr, hep: SocketAddr) {
    for doc in seeds() {
        assert_eq!(http.post(CMS, doc).await.status, 200);
    }
    let events = [
        json!({"type":"setup","call_id":"cmp-1","key":"cmp-1/1","at":"2026-12-01T10:00:00Z","caller":"201","callee":"5001"}),
        json!({"type":"answered","call_id":"cmp-1","key":"cmp-1/2","at":"2026-12-01T10:00:05Z"}),
        json!({"type":"ended","call_id":"cmp-1","key":"cmp-1/3","at":"2026-12-01T10:01:05Z","by":"caller"}),
    ];
    let body: Vec<String> = events.iter().map(Value::to_string).collect();
    assert_eq!(
        http.post("/api/v1/events", body.join("\n")).await.status,
        200
    );
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for name in ["start", "stop"] {
        socket.send_to(&radius_fixture(name), radius).await.unwrap();
        let mut answer = [0u8; 64];
        tokio::time::timeout(Duration::from_secs(10), socket.recv_from(&mut answer))
            .await
            .expect("an Accounting-Response, after the commit")
            .unwrap();
    }
    for p in common::kamailio_packets() {
        socket.send_to(&p, hep).await.unwrap();
    }
}

async fn all_calls(server: &mut TestServer, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut calls = server.calls_where("limit=100").await;
        if calls.len() >= n && calls.iter().all(|c| !c["ended_at"].is_null())
            || tokio::time::Instant::now() > deadline
        {
            calls.sort_by_key(|c| (c["source"].to_string(), c["started_at"].to_string()));
            return calls;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A call's legs as compared between deployments: without the call's id.
async fn legs_of(server: &mut TestServer, call: &Value) -> Vec<Value> {
    let detail = server.call(call["id"].as_str().unwrap()).await;
    let mut legs: Vec<Value> = detail["legs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let mut l = l.clone();
            let o = l.as_object_mut().unwrap();
            o.remove("call_id");
            if call["source"] == "radius" {
                for k in ["started_at", "connected_at", "ended_at"] {
                    o.remove(k);
                }
            }
            l
        })
        .collect();
    legs.sort_by_key(|l| l["id"].to_string());
    legs
}

/// Two collectors (one taking HTTP, one RADIUS and HEP) and a worker on
/// the bus make the same calls, legs and statistics from the same input as
/// one server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_collectors_and_a_worker_make_what_one_server_makes() {
    common::ensure_nats();
    let name = uuid::Uuid::new_v4().simple().to_string();
    let (radius, hep) = sources(true, true);
    let mut single = TestServer::start_with(Options {
        radius: radius.clone(),
        hep: hep.clone(),
        ..Options::default()
    })
    .await;
    let mut http_collector = TestServer::start_with(Options {
        bus: Some(bus(&name, vec![BusRole::Collector])),
        ..Options::default()
    })
    .await;
    let udp_collector = TestServer::start_with(Options {
        bus: Some(bus(&name, vec![BusRole::Collector])),
        radius,
        hep,
        ..Options::default()
    })
    .await;
    let mut worker = TestServer::start_with(Options {
        bus: Some(bus(&name, vec![BusRole::Worker])),
        ..Options::default()
    })
    .await;

    let (radius_at, (hep_at, _)) = (single.radius_addr.unwrap(), single.hep_addrs.unwrap());
    replay(&mut single, radius_at, hep_at).await;
    let (radius_at, (hep_at, _)) = (
        udp_collector.radius_addr.unwrap(),
        udp_collector.hep_addrs.unwrap(),
    );
    replay(&mut http_collector, radius_at, hep_at).await;

    let direct = all_calls(&mut single, 4).await;
    let through_bus = all_calls(&mut worker, 4).await;
    let sources_of = |calls: &[Value]| {
        calls
            .iter()
            .map(|c| c["source"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        sources_of(&direct),
        ["cms", "events", "radius", "sip"],
        "{direct:#?}"
    );
    assert_eq!(through_bus.len(), direct.len(), "{through_bus:#?}");
    for (a, b) in through_bus.iter().zip(&direct) {
        assert_eq!(comparable(a), comparable(b), "a call (bus, single)");
    }
    for (a, b) in direct.iter().zip(&through_bus) {
        assert_eq!(
            legs_of(&mut worker, b).await,
            legs_of(&mut single, a).await,
            "{}",
            a["source"]
        );
    }
    let mut days: Vec<String> = direct
        .iter()
        .map(|c| c["started_at"].as_str().unwrap()[..10].to_owned())
        .collect();
    days.dedup();
    // The RADIUS call falls in the hour each server received it: the two
    // replays run a second apart, so in the same hour but for a run that
    // straddles one (about one in a few thousand).
    for day in days {
        let path = format!("/api/v1/stats?day={day}");
        assert_eq!(
            worker.get_json(&path).await,
            single.get_json(&path).await,
            "statistics of {day}"
        );
    }

    let client = async_nats::connect("nats://127.0.0.1:4222").await.unwrap();
    let _ = async_nats::jetstream::new(client)
        .delete_stream(format!("CDRHUB_TEST_{name}"))
        .await;
}
