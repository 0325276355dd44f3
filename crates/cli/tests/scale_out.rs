//! Scale-out on real engines (issue 8, point 3): two collectors, two
//! workers and one web process, five `cdrhub serve` processes sharing the
//! machine's PostgreSQL and NATS JetStream, take the same input as one
//! SQLite server: the recorded input of every source (CMS seed posts,
//! RADIUS datagrams, the Kamailio HEP capture, a CTI simulator, call
//! events) and a load of CMS posts. A worker and a collector are SIGKILLed
//! in the middle of the load and started again; the Call Bridges send
//! again what they never got a 200 for. Nothing acknowledged is lost,
//! nothing is stored twice, and the web process shows the calls, legs and
//! statistics the single server shows.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cdrhub_store::postgres::testing::TestDb;
use common::{Acked, Sent, Server, post_until_killed, send_again};
use serde_json::{Value, json};

const SENDERS: usize = 2;

struct Setup {
    dir: PathBuf,
    stream: String,
    url: String,
}

impl Setup {
    /// A config file: the shared store and bus with `roles`, plus `extra`.
    fn config(&self, name: &str, roles: &[&str], extra: &str) -> PathBuf {
        let path = self.dir.join(format!("{name}.toml"));
        let roles: Vec<String> = roles.iter().map(|r| format!("\"{r}\"")).collect();
        std::fs::write(
            &path,
            format!(
                "[store]\nurl = \"{}\"\n\n[bus]\nnats = \"nats://127.0.0.1:4222\"\nstream = \"{}\"\n\
                 subject_prefix = \"cdrhub-scale.{}\"\nroles = [{}]\n\n{extra}",
                self.url,
                self.stream,
                self.stream,
                roles.join(", ")
            ),
        )
        .unwrap();
        path
    }

    fn start(&self, name: &str, config: &Path) -> Server {
        Server::start_with_config(&self.dir.join(name), Some(config))
    }
}

/// The sources of a process that takes RADIUS, HEP and a CTI server.
fn sources(cti: SocketAddr) -> String {
    format!(
        "[sources.radius]\nenabled = true\nlisten = \"127.0.0.1:0\"\n\
         [[sources.radius.clients]]\naddress = \"127.0.0.1\"\nsecret = \"cdrhub-radius-fixtures\"\n\n\
         [sources.hep]\nenabled = true\nudp_listen = \"127.0.0.1:0\"\ntcp_listen = \"127.0.0.1:0\"\n\n\
         [[sources.cti]]\nname = \"uccx\"\nprimary = \"{cti}\"\nbatch_ms = 10\n"
    )
}

/// A CTI server that makes the same calls for whoever connects first:
/// one per cdrhub that takes CTI, each seeded alike.
fn cti_simulator() -> cdrhub_sim::cti::SimHandle {
    cdrhub_sim::cti::Server::start(cdrhub_sim::cti::SimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        agents: 4,
        rate: 20.0,
        calls: Some(6),
        time_scale: 0.0,
        seed: Some(8),
        ..Default::default()
    })
    .expect("the CTI simulator starts")
}

fn radius_fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../tests/data/radius/{name}.hex",
        env!("CARGO_MANIFEST_DIR")
    );
    let text: String = std::fs::read_to_string(path)
        .unwrap()
        .split_whitespace()
        .collect();
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn hep_packets() -> Vec<Vec<u8>> {
    let path = format!(
        "{}/../../tests/data/hep/kamailio-uac-uas.hepstream",
        env!("CARGO_MANIFEST_DIR")
    );
    let data = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut at = 0;
    while at + 4 <= data.len() {
        let n = u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        out.push(data[at + 4..at + 4 + n].to_vec());
        at += 4 + n;
    }
    out
}

fn cms_seeds() -> Vec<Vec<u8>> {
    (1..=6)
        .map(|n| {
            std::fs::read(format!(
                "{}/../../tests/data/cms/seed-000-post{n}.xml",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap()
        })
        .collect()
}

/// The recorded input: CMS and events over HTTP to `http`, RADIUS and HEP
/// datagrams to `udp` (a server's RADIUS and HEP addresses).
async fn replay(http: &Server, radius: SocketAddr, hep: SocketAddr) {
    let mut conn = common::Conn::open(http.addr).await.unwrap();
    for doc in cms_seeds() {
        let (status, body) = conn.request("POST", "/ingest/cms", doc).await.unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
    let events = [
        json!({"type":"setup","call_id":"scale-1","key":"scale-1/1","at":"2026-12-01T10:00:00Z","caller":"201","callee":"5001"}),
        json!({"type":"answered","call_id":"scale-1","key":"scale-1/2","at":"2026-12-01T10:00:05Z"}),
        json!({"type":"ended","call_id":"scale-1","key":"scale-1/3","at":"2026-12-01T10:01:05Z","by":"caller"}),
    ];
    let body: Vec<String> = events.iter().map(Value::to_string).collect();
    conn.bearer = Some(http.token.clone());
    let (status, body) = conn
        .request(
            "POST",
            "/api/v1/events?system=pbx",
            body.join("\n").into_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for name in ["start", "stop"] {
        socket.send_to(&radius_fixture(name), radius).await.unwrap();
        let mut answer = [0u8; 64];
        tokio::time::timeout(Duration::from_secs(10), socket.recv_from(&mut answer))
            .await
            .expect("an Accounting-Response, after the commit")
            .unwrap();
    }
    for p in hep_packets() {
        socket.send_to(&p, hep).await.unwrap();
        // A datagram lost on loopback would be a difference not of ours.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Records of the load's sessions in the shared journal, by session and
/// recordIndex; a record stored twice fails the test.
fn pg_journal(url: &str) -> std::collections::BTreeSet<(String, u64)> {
    let url = url.to_owned();
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let rows = client
            .query(
                "SELECT s.session, j.seq FROM journal j JOIN streams s ON s.id = j.stream \
                 WHERE s.session LIKE 'scale-load-%' AND s.receiver <> ''",
                &[],
            )
            .unwrap();
        let list: Vec<(String, u64)> = rows
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) as u64))
            .collect();
        let set: std::collections::BTreeSet<_> = list.iter().cloned().collect();
        assert_eq!(set.len(), list.len(), "a record is stored twice");
        set
    })
    .join()
    .unwrap()
}

/// A call as compared between the deployments: without cdrhub's own id and
/// the times that are when each server received something (RADIUS, whose
/// gateway clock is unsynchronised, and CTI, timed by arrival).
fn comparable(call: &Value) -> Value {
    let mut c = call.clone();
    let o = c.as_object_mut().unwrap();
    o.remove("id");
    let source = o["source"].as_str().unwrap_or_default().to_owned();
    if source == "radius" || source == "cti" {
        for k in [
            "started_at",
            "answered_at",
            "ended_at",
            "duration_s",
            "talk_s",
        ] {
            o.remove(k);
        }
        o.remove("details");
    }
    c
}

fn sort_key(c: &Value) -> String {
    format!(
        "{}|{}|{}|{}",
        c["source"], c["caller"], c["dialed"], c["started_at"]
    )
}

async fn calls_of(server: &Server) -> Vec<Value> {
    let mut calls: Vec<Value> = Vec::new();
    let mut path = "/api/v1/calls?limit=1000".to_owned();
    loop {
        let page = common::get_json(server, &path).await;
        calls.extend(page["calls"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/calls?limit=1000&cursor={cursor}"),
            None => break,
        }
    }
    calls.sort_by_key(sort_key);
    calls
}

/// The calls of `server` once they are `expected` (the web process reads
/// what the correlating worker has written, a moment after the journal).
async fn calls_like(server: &Server, expected: &[Value]) -> Vec<Value> {
    let want: Vec<Value> = expected.iter().map(comparable).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let calls = calls_of(server).await;
        let got: Vec<Value> = calls.iter().map(comparable).collect();
        if got == want || Instant::now() > deadline {
            return calls;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The calls match; on a difference, says where, briefly.
fn assert_same_calls(shared: &[Value], direct: &[Value]) {
    let count = |calls: &[Value]| {
        let mut by: std::collections::BTreeMap<String, usize> = Default::default();
        for c in calls {
            *by.entry(c["source"].to_string()).or_default() += 1;
        }
        by
    };
    assert_eq!(
        count(shared),
        count(direct),
        "calls by source (web, single)"
    );
    for (a, b) in shared.iter().zip(direct) {
        assert_eq!(comparable(a), comparable(b), "a call (web, single)");
    }
}

async fn legs_of(server: &Server, call: &Value) -> Vec<Value> {
    let detail = common::get_json(
        server,
        &format!("/api/v1/calls/{}", call["id"].as_str().unwrap()),
    )
    .await;
    let mut legs: Vec<Value> = detail["legs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let mut l = l.clone();
            let o = l.as_object_mut().unwrap();
            o.remove("call_id");
            if matches!(call["source"].as_str(), Some("radius" | "cti")) {
                for k in ["started_at", "connected_at", "ended_at", "duration_s"] {
                    o.remove(k);
                }
                // Seconds on hold, from when each server received the
                // events (the simulator sends them back to back).
                if let Some(d) = o.get_mut("details").and_then(Value::as_object_mut) {
                    d.remove("hold_s");
                }
            }
            l
        })
        .collect();
    legs.sort_by_key(|l| l["id"].to_string());
    legs
}

/// Deletes the test's JetStream stream when dropped, whether the test
/// passed or not (declared before the servers: dropped after them).
struct StreamGuard(String);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let name = self.0.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async {
                if let Ok(client) = async_nats::connect("nats://127.0.0.1:4222").await {
                    let _ = async_nats::jetstream::new(client)
                        .delete_stream(&name)
                        .await;
                }
            })
        })
        .join();
    }
}

/// The call ids of the webhooks received (`{"event": "call_ended", "call": ...}`).
type Hooks = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// A webhook receiver: answers 200 to every POST and keeps each body's
/// call id.
async fn hook_receiver() -> (SocketAddr, Hooks) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hooks: Hooks = Default::default();
    let seen = hooks.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    // One request: headers, then Content-Length bytes.
                    let end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        let mut chunk = [0u8; 8192];
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while buf.len() < end + length {
                        let mut chunk = [0u8; 8192];
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body: Value =
                        serde_json::from_slice(&buf[end..end + length]).unwrap_or(Value::Null);
                    if let Some(id) = body["call"]["id"].as_str() {
                        seen.lock().unwrap().push(id.to_owned());
                    }
                    buf.drain(..end + length);
                    let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                    if conn.write_all(ok).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, hooks)
}

#[test]
fn two_collectors_two_workers_and_a_web_process_match_one_sqlite_server_through_sigkills() {
    common::ensure_nats();
    let db = TestDb::new();
    let tmp = tempfile::tempdir().unwrap();
    let setup = Setup {
        dir: tmp.path().to_owned(),
        stream: format!("CDRHUB_SCALE_{}", uuid::Uuid::new_v4().simple()),
        url: db.url(),
    };
    let _stream = StreamGuard(setup.stream.clone());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (sim_single, sim_bus) = rt.block_on(async { (cti_simulator(), cti_simulator()) });
    let (hook_at, hooks) = rt.block_on(hook_receiver());

    // The single SQLite server, with every source.
    let single_config = tmp.path().join("single.toml");
    std::fs::write(&single_config, sources(sim_single.addr)).unwrap();
    let single = Server::start_with_config(&tmp.path().join("single"), Some(&single_config));

    // Workers first: the bus holds the batches until one takes them.
    // Both workers could send the webhooks; one of them does.
    let worker_config = setup.config(
        "worker",
        &["worker"],
        &format!("[[webhooks]]\nname = \"crm\"\nurl = \"http://{hook_at}/hook\"\n"),
    );
    let worker_1 = setup.start("worker-1", &worker_config);
    let worker_2 = setup.start("worker-2", &worker_config);
    let web = setup.start("web", &setup.config("web", &["web"], ""));
    // Collector 1 takes HTTP; collector 2 RADIUS, HEP and the CTI server.
    let http_config = setup.config("collector-1", &["collector"], "");
    let collector_1 = setup.start("collector-1", &http_config);
    let udp_config = setup.config("collector-2", &["collector"], &sources(sim_bus.addr));
    let collector_2 = setup.start("collector-2", &udp_config);

    rt.block_on(async {
        replay(&single, single.radius_addr(), single.hep_addrs().0).await;
        replay(
            &collector_1,
            collector_2.radius_addr(),
            collector_2.hep_addrs().0,
        )
        .await;
    });

    // The load: Call Bridges post to collector 1 without pause. Worker 1
    // dies once the journal has some of it, collector 1 a little later.
    let acked: Acked = Default::default();
    let sent: Sent = Default::default();
    let running = post_until_killed(&rt, collector_1.addr, SENDERS, "scale-load", &acked, &sent);
    common::wait_until("the workers store under load", || {
        pg_journal(&setup.url).len() >= 300
    });
    worker_1.kill();
    let at_worker_kill = acked.lock().unwrap().len();
    common::wait_until("collector 1 acknowledges with one worker", || {
        acked.lock().unwrap().len() >= at_worker_kill + 300
    });
    collector_1.kill();
    rt.block_on(running).unwrap();
    let acked = acked.lock().unwrap().clone();

    // Both start again; the Call Bridges send everything again, to the
    // bus and to the single server.
    let worker_1 = setup.start("worker-1", &worker_config);
    let collector_1 = setup.start("collector-1", &http_config);
    let sent = sent.lock().unwrap().clone();
    let total = send_again(&rt, collector_1.addr, &sent);
    assert_eq!(send_again(&rt, single.addr, &sent), total);
    common::wait_until("the shared journal has every record", || {
        pg_journal(&setup.url).len() as u64 >= total
    });
    let stored = pg_journal(&setup.url);
    let lost: Vec<_> = acked.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged records lost, e.g. {:?}",
        lost.len(),
        lost.first()
    );
    assert_eq!(
        stored.len() as u64,
        total,
        "each record sent is stored once"
    );

    rt.block_on(async {
        // Every call of the single server is in the web process's view.
        let mut direct = calls_of(&single).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        while direct.iter().filter(|c| c["source"] == "cti").count() < 6
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(250)).await;
            direct = calls_of(&single).await;
        }
        let shared = calls_like(&web, &direct).await;
        let sources: std::collections::BTreeSet<&str> =
            direct.iter().filter_map(|c| c["source"].as_str()).collect();
        assert_eq!(
            sources.into_iter().collect::<Vec<_>>(),
            ["cms", "cti", "events", "radius", "sip"],
            "every source made calls"
        );
        assert_same_calls(&shared, &direct);
        for (a, b) in direct.iter().zip(&shared) {
            // The load's calls are one leg each, alike but for their ids:
            // the journal check above covers them.
            if a["kind"] != "leg" {
                assert_eq!(
                    legs_of(&web, b).await,
                    legs_of(&single, a).await,
                    "the legs of a {} call",
                    a["source"]
                );
            }
        }
        // Every call that ended went to the webhook once, from one worker.
        let ended: std::collections::BTreeSet<String> = shared
            .iter()
            .filter(|c| !c["ended_at"].is_null())
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        while hooks.lock().unwrap().len() < ended.len() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut delivered = hooks.lock().unwrap().clone();
        delivered.sort();
        assert_eq!(
            delivered,
            ended.iter().cloned().collect::<Vec<_>>(),
            "each ended call's webhook once"
        );
        let mut days: Vec<String> = direct
            .iter()
            .map(|c| c["started_at"].as_str().unwrap()[..10].to_owned())
            .collect();
        days.sort();
        days.dedup();
        for day in days {
            let path = format!("/api/v1/stats?day={day}");
            assert_eq!(
                common::get_json(&web, &path).await,
                common::get_json(&single, &path).await,
                "statistics of {day}"
            );
        }
        println!(
            "acknowledged before the kills: {}, sent in all: {total}, calls: {}",
            acked.len(),
            direct.len()
        );
    });

    drop((worker_1, worker_2, collector_1, collector_2, web, single));
    rt.block_on(async { drop((sim_single, sim_bus)) });
}
