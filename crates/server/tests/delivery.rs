//! Delivery of exports and webhooks through the spool, to a real HTTP(S)
//! receiver on 127.0.0.1 and to a directory: every item arrives once, after
//! failures, outages and a restart, and is signed.
//!
//! Backoffs are milliseconds so the tests run quickly; nothing is asserted
//! on how long anything takes (the deadline of [`wait_until`] only turns a
//! hang into a failure).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use bytes::Bytes;
use cdrhub_server::delivery::{
    self, Backoff, DeliveryOptions, Item, ItemStatus, Spool, Target, http::signature,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

const SECRET: &str = "s3cret";

/// Short, so the tests retry many times quickly.
const FAST: Backoff = Backoff {
    first: Duration::from_millis(5),
    max: Duration::from_millis(50),
};

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    delivery: String,
    timestamp: Option<String>,
    signature: Option<String>,
    content_type: String,
    authorization: Option<String>,
    body: Bytes,
    answered: StatusCode,
}

/// A webhook receiver that answers 503 to the first `fail_next` requests,
/// and to all while `fail_all`; 200 otherwise.
#[derive(Default)]
struct Receiver {
    fail_next: AtomicUsize,
    fail_all: AtomicBool,
    requests: Mutex<Vec<Received>>,
}

impl Receiver {
    fn requests(&self) -> Vec<Received> {
        self.requests.lock().unwrap().clone()
    }

    /// The delivery ids answered 2xx, in the order received.
    fn accepted(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| r.answered.is_success())
            .map(|r| r.delivery)
            .collect()
    }
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let refuse = receiver.fail_all.load(Ordering::SeqCst)
        || receiver
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
    let answered = if refuse {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let header = |name: &str| {
        headers
            .get(name)
            .map(|v| v.to_str().expect("an ASCII header").to_owned())
    };
    receiver.requests.lock().unwrap().push(Received {
        delivery: header("x-cdrhub-delivery").expect("X-Cdrhub-Delivery is sent"),
        timestamp: header("x-cdrhub-timestamp"),
        signature: header("x-cdrhub-signature"),
        content_type: header("content-type").unwrap_or_default(),
        authorization: header("authorization"),
        body,
        answered,
    });
    (answered, if refuse { "busy, try later" } else { "" })
}

fn receiver_app(receiver: Arc<Receiver>) -> Router {
    Router::new()
        .route("/hooks", post(receive))
        .with_state(receiver)
}

/// Serves `receiver` on `listener`.
fn serve(listener: tokio::net::TcpListener, receiver: Arc<Receiver>) {
    tokio::spawn(async move {
        axum::serve(listener, receiver_app(receiver))
            .await
            .expect("the receiver serves");
    });
}

async fn start_receiver() -> (SocketAddr, Arc<Receiver>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let receiver = Arc::new(Receiver::default());
    serve(listener, receiver.clone());
    (addr, receiver)
}

/// A loopback address where nothing listens (yet).
fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn http_target(url: String) -> Target {
    Target::Http {
        url,
        headers: vec![("Authorization".into(), "Bearer t0ken".into())],
        hmac_secret: Some(SECRET.into()),
        timeout: Duration::from_secs(10),
    }
}

fn webhook(call: &str, target: &str) -> Item {
    Item {
        id: format!("webhook:{call}"),
        name: format!("{call}.json"),
        content_type: "application/json".into(),
        body: format!(r#"{{"call_id":"{call}","disposition":"answered"}}"#).into_bytes(),
        target_name: target.into(),
    }
}

fn ids(items: &[Item]) -> Vec<String> {
    items.iter().map(|i| i.id.clone()).collect()
}

/// `delivery::run` in a task, stopped by [`Delivery::stop`].
struct Delivery {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Delivery {
    fn start(spool: &Arc<Spool>, targets: Vec<(&str, Target)>, options: DeliveryOptions) -> Self {
        let targets: HashMap<String, Target> = targets
            .into_iter()
            .map(|(name, t)| (name.to_owned(), t))
            .collect();
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(delivery::run(spool.clone(), targets, options, stopped));
        Delivery { stop, task }
    }

    fn fast(spool: &Arc<Spool>, targets: Vec<(&str, Target)>) -> Self {
        Delivery::start(
            spool,
            targets,
            DeliveryOptions {
                backoff: FAST,
                ..DeliveryOptions::default()
            },
        )
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("delivery stops when told")
            .expect("delivery ends without a panic");
    }
}

/// Polls `done` until it holds; panics after a deadline far beyond any
/// normal run (a hang, not a slow machine).
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn status_of(spool: &Spool, id: &str) -> ItemStatus {
    spool
        .status()
        .unwrap()
        .into_iter()
        .find(|s| s.id == id)
        .unwrap_or_else(|| panic!("{id} is in the spool"))
}

fn all_delivered(spool: &Spool, items: &[Item]) -> bool {
    let status = spool.status().unwrap();
    items.iter().all(|i| {
        status
            .iter()
            .any(|s| s.id == i.id && s.delivered_at.is_some())
    })
}

/// The head item has failed at least twice, the last time with `error`.
fn failing_with(spool: &Spool, id: &str, error: &str) -> bool {
    let s = status_of(spool, id);
    s.attempts >= 2 && s.last_error.as_deref() == Some(error)
}

fn hex_decode(hex: &str) -> Vec<u8> {
    assert_eq!(hex.len() % 2, 0, "{hex}");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digits"))
        .collect()
}

/// Checks the signature as a receiver would: HMAC-SHA256 of
/// `<timestamp>.<body>`, with a timestamp close to now.
fn assert_signed(r: &Received) {
    let timestamp = r.timestamp.as_deref().expect("X-Cdrhub-Timestamp is sent");
    let seconds: u64 = timestamp.parse().expect("a unix time in seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now.abs_diff(seconds) < 600, "{timestamp} is not recent");
    let header = r.signature.as_deref().expect("X-Cdrhub-Signature is sent");
    let hex = header.strip_prefix("sha256=").expect("sha256=<hex>");
    let mut message = format!("{timestamp}.").into_bytes();
    message.extend_from_slice(&r.body);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
    ring::hmac::verify(&key, &message, &hex_decode(hex))
        .unwrap_or_else(|_| panic!("bad signature {header} of {}", r.delivery));
    assert_eq!(header, signature(SECRET, seconds, &r.body));
}

fn open_spool(dir: &Path) -> Arc<Spool> {
    Arc::new(Spool::open(dir).expect("the spool opens"))
}

#[tokio::test]
async fn every_webhook_arrives_once_signed_after_503s() {
    let (addr, receiver) = start_receiver().await;
    receiver.fail_next.store(3, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let spool = open_spool(dir.path());
    let items: Vec<Item> = (0..10)
        .map(|i| webhook(&format!("call-{i}"), "hooks"))
        .collect();
    for item in &items {
        assert!(spool.add(item.clone()).unwrap());
    }
    let delivery = Delivery::fast(
        &spool,
        vec![("hooks", http_target(format!("http://{addr}/hooks")))],
    );
    wait_until("every item is delivered", || all_delivered(&spool, &items)).await;
    delivery.stop().await;

    let requests = receiver.requests();
    assert_eq!(requests.len(), 3 + items.len(), "{requests:#?}");
    // The oldest item is retried until delivered before the next is tried.
    for r in &requests[..3] {
        assert_eq!(r.delivery, "webhook:call-0");
        assert_eq!(r.answered, StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!(receiver.accepted(), ids(&items), "each once, in order");
    for r in &requests {
        assert_signed(r);
        assert_eq!(r.content_type, "application/json");
        assert_eq!(r.authorization.as_deref(), Some("Bearer t0ken"));
        let item = items.iter().find(|i| i.id == r.delivery).unwrap();
        assert_eq!(r.body, item.body);
    }

    let first = status_of(&spool, "webhook:call-0");
    assert_eq!(first.attempts, 4);
    assert_eq!(first.last_error, None);
    assert_eq!(first.next_attempt_at, None);
    for item in &items[1..] {
        assert_eq!(status_of(&spool, &item.id).attempts, 1);
    }
    assert!(
        !spool.add(items[0].clone()).unwrap(),
        "a delivered id is not spooled again"
    );
}

#[tokio::test]
async fn a_receiver_down_at_first_gets_everything_once_it_is_up() {
    let addr = free_addr();
    let dir = tempfile::tempdir().unwrap();
    let spool = open_spool(dir.path());
    let items: Vec<Item> = (0..3)
        .map(|i| webhook(&format!("call-{i}"), "hooks"))
        .collect();
    for item in &items {
        assert!(spool.add(item.clone()).unwrap());
    }
    let delivery = Delivery::fast(
        &spool,
        vec![("hooks", http_target(format!("http://{addr}/hooks")))],
    );
    let refused = format!("cannot connect to {addr}: connection refused");
    wait_until("the receiver is found down", || {
        failing_with(&spool, "webhook:call-0", &refused)
    })
    .await;
    let pending = status_of(&spool, "webhook:call-0");
    assert!(pending.next_attempt_at.is_some());
    assert!(pending.delivered_at.is_none());

    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let receiver = Arc::new(Receiver::default());
    serve(listener, receiver.clone());
    wait_until("every item is delivered", || all_delivered(&spool, &items)).await;
    delivery.stop().await;

    assert_eq!(receiver.accepted(), ids(&items));
    assert_eq!(receiver.requests().len(), items.len());
    receiver.requests().iter().for_each(assert_signed);
}

#[tokio::test]
async fn a_restarted_spool_delivers_what_was_pending_and_nothing_twice() {
    let (addr, receiver) = start_receiver().await;
    let url = format!("http://{addr}/hooks?token=secret-in-the-query");
    let dir = tempfile::tempdir().unwrap();
    let before: Vec<Item> = (0..3)
        .map(|i| webhook(&format!("a-{i}"), "hooks"))
        .collect();
    let after: Vec<Item> = (0..3)
        .map(|i| webhook(&format!("b-{i}"), "hooks"))
        .collect();

    let spool = open_spool(dir.path());
    let delivery = Delivery::fast(&spool, vec![("hooks", http_target(url.clone()))]);
    for item in &before {
        assert!(spool.add(item.clone()).unwrap());
    }
    wait_until("the first items are delivered", || {
        all_delivered(&spool, &before)
    })
    .await;
    receiver.fail_all.store(true, Ordering::SeqCst);
    for item in &after {
        assert!(spool.add(item.clone()).unwrap());
    }
    // The query is left out of the error: it may hold a secret.
    let busy =
        format!("POST http://{addr}/hooks answered 503 Service Unavailable: busy, try later");
    wait_until("the receiver is found failing", || {
        failing_with(&spool, "webhook:b-0", &busy)
    })
    .await;
    delivery.stop().await;
    drop(spool);

    // The restart.
    let spool = open_spool(dir.path());
    let status = spool.status().unwrap();
    let pending: Vec<&str> = status
        .iter()
        .filter(|s| s.delivered_at.is_none())
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(pending, ["webhook:b-0", "webhook:b-1", "webhook:b-2"]);
    assert_eq!(
        status_of(&spool, "webhook:b-0").last_error.as_deref(),
        Some(busy.as_str())
    );
    assert!(status_of(&spool, "webhook:a-2").delivered_at.is_some());
    assert!(!spool.add(before[0].clone()).unwrap(), "delivered already");
    assert!(!spool.add(after[1].clone()).unwrap(), "spooled already");

    receiver.fail_all.store(false, Ordering::SeqCst);
    let delivery = Delivery::fast(&spool, vec![("hooks", http_target(url))]);
    wait_until("the pending items are delivered", || {
        all_delivered(&spool, &after)
    })
    .await;
    delivery.stop().await;

    let mut expected = ids(&before);
    expected.extend(ids(&after));
    assert_eq!(receiver.accepted(), expected, "each once, in order");
    receiver.requests().iter().for_each(assert_signed);
}

#[tokio::test]
async fn a_failing_target_does_not_hold_up_another() {
    let down = free_addr();
    let (addr, receiver) = start_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let spool = open_spool(dir.path());
    let mut up_items = Vec::new();
    for i in 0..4 {
        assert!(spool.add(webhook(&format!("down-{i}"), "down")).unwrap());
        let up = webhook(&format!("up-{i}"), "up");
        assert!(spool.add(up.clone()).unwrap());
        up_items.push(up);
    }
    let delivery = Delivery::fast(
        &spool,
        vec![
            ("down", http_target(format!("http://{down}/hooks"))),
            ("up", http_target(format!("http://{addr}/hooks"))),
        ],
    );
    wait_until("the working target has everything", || {
        all_delivered(&spool, &up_items)
    })
    .await;
    let refused = format!("cannot connect to {down}: connection refused");
    wait_until("the failing target has failed twice", || {
        failing_with(&spool, "webhook:down-0", &refused)
    })
    .await;
    delivery.stop().await;

    assert_eq!(receiver.accepted(), ids(&up_items));
    for i in 0..4 {
        let s = status_of(&spool, &format!("webhook:down-{i}"));
        assert!(s.delivered_at.is_none(), "{s:?}");
    }
}

/// An operator's "discard" moves a target past an item its receiver
/// refuses for good; "try now" ends a long wait at once.
#[tokio::test]
async fn an_item_refused_for_good_can_be_discarded_and_a_wait_cut_short() {
    let (addr, receiver) = start_receiver().await;
    receiver.fail_all.store(true, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let spool = open_spool(dir.path());
    let items: Vec<Item> = (0..3).map(|i| webhook(&format!("c-{i}"), "crm")).collect();
    for i in &items {
        assert!(spool.add(i.clone()).unwrap());
    }
    // Long pauses: only "try now" brings the next attempt soon.
    let delivery = Delivery::start(
        &spool,
        vec![("crm", http_target(format!("http://{addr}/hooks")))],
        DeliveryOptions {
            backoff: Backoff {
                first: Duration::from_secs(3600),
                max: Duration::from_secs(3600),
            },
            ..DeliveryOptions::default()
        },
    );
    wait_until("the first attempt failed", || {
        status_of(&spool, "webhook:c-0").attempts == 1
    })
    .await;
    assert!(spool.discard("webhook:c-0", "discarded by ada").unwrap());
    assert!(
        !spool.discard("webhook:c-0", "again").unwrap(),
        "no longer pending"
    );
    wait_until("the next item was tried", || {
        status_of(&spool, "webhook:c-1").attempts == 1
    })
    .await;
    receiver.fail_all.store(false, Ordering::SeqCst);
    assert!(spool.retry_now("webhook:c-1").unwrap());
    wait_until("the rest is delivered", || {
        all_delivered(&spool, &items[1..])
    })
    .await;
    delivery.stop().await;
    assert_eq!(receiver.accepted(), ids(&items[1..]));
    let gone = status_of(&spool, "webhook:c-0");
    assert_eq!(gone.last_error.as_deref(), Some("discarded by ada"));
    assert!(
        !spool.add(items[0].clone()).unwrap(),
        "a discarded id is not spooled again"
    );
}

fn export(hour: u32, len: usize) -> Item {
    let name = format!("cdrs-2026-12-01T{hour:02}.csv");
    let mut body = b"call_id,start,end\n".to_vec();
    while body.len() < len {
        body.extend_from_slice(
            format!("c{hour}-{},2026-12-01T{hour:02}:00:00Z\n", body.len()).as_bytes(),
        );
    }
    Item {
        id: format!("export:cdrs:2026-12-01T{hour:02}"),
        name,
        content_type: "text/csv".into(),
        body,
        target_name: "drop".into(),
    }
}

#[tokio::test]
async fn a_directory_target_writes_each_file_once_and_whole() {
    let base = tempfile::tempdir().unwrap();
    let out = base.path().join("exports");
    let spool = open_spool(&base.path().join("spool"));
    // Large enough that a file written in place would be seen partial.
    let items: Vec<Item> = (10..13).map(|h| export(h, 4 << 20)).collect();
    for item in &items {
        assert!(spool.add(item.clone()).unwrap());
    }
    let delivery = Delivery::fast(&spool, vec![("drop", Target::Directory(out.clone()))]);
    let missing = format!("the directory {} does not exist", out.display());
    wait_until("the missing directory is reported", || {
        failing_with(&spool, &items[0].id, &missing)
    })
    .await;

    // A reader picking files up as they come: any file under its final name
    // must be whole.
    let expected: HashMap<String, usize> = items
        .iter()
        .map(|i| (i.name.clone(), i.body.len()))
        .collect();
    let watching = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (out, watching) = (out.clone(), watching.clone());
        std::thread::spawn(move || {
            let mut partial = Vec::new();
            while watching.load(Ordering::SeqCst) {
                let Ok(entries) = std::fs::read_dir(&out) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let name = entry.file_name().into_string().unwrap();
                    if name.starts_with('.') {
                        continue;
                    }
                    let len = entry.metadata().map_or(0, |m| m.len() as usize);
                    if expected.get(&name) != Some(&len) {
                        partial.push((name, len));
                    }
                }
            }
            partial
        })
    };
    std::fs::create_dir(&out).unwrap();
    wait_until("every file is written", || all_delivered(&spool, &items)).await;
    watching.store(false, Ordering::SeqCst);
    assert_eq!(watcher.join().unwrap(), [], "files seen partial");

    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut expected_names: Vec<String> = items.iter().map(|i| i.name.clone()).collect();
    expected_names.sort();
    assert_eq!(names, expected_names, "no temporary file is left");
    for item in &items {
        assert_eq!(std::fs::read(out.join(&item.name)).unwrap(), item.body);
    }

    // A consumer took the first file and left a marker in its place; the
    // same export spooled again is refused and the file not written again.
    let first = out.join(&items[0].name);
    std::fs::write(&first, b"consumed").unwrap();
    assert!(!spool.add(items[0].clone()).unwrap());
    let next = export(13, 100);
    assert!(spool.add(next.clone()).unwrap());
    wait_until("the next file is written", || {
        all_delivered(&spool, std::slice::from_ref(&next))
    })
    .await;
    delivery.stop().await;
    assert_eq!(std::fs::read(&first).unwrap(), b"consumed");
    assert_eq!(std::fs::read(out.join(&next.name)).unwrap(), next.body);
}

#[tokio::test]
async fn https_delivery_trusts_the_configured_roots_only() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let tls = axum_server::tls_rustls::RustlsConfig::from_pem(
        generated.cert.pem().into_bytes(),
        generated.signing_key.serialize_pem().into_bytes(),
    )
    .await
    .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let receiver = Arc::new(Receiver::default());
    let app = receiver_app(receiver.clone());
    tokio::spawn(async move {
        axum_server::from_tcp_rustls(listener, tls)
            .unwrap()
            .serve(app.into_make_service())
            .await
            .unwrap();
    });

    let dir = tempfile::tempdir().unwrap();
    let spool = open_spool(dir.path());
    let item = webhook("tls-1", "hooks");
    assert!(spool.add(item.clone()).unwrap());
    let target = || vec![("hooks", http_target(format!("https://{addr}/hooks")))];

    // The system's roots do not include the self-signed certificate.
    let delivery = Delivery::fast(&spool, target());
    wait_until("the unknown certificate is refused", || {
        let s = status_of(&spool, &item.id);
        s.attempts >= 2
            && s.last_error
                .as_deref()
                .is_some_and(|e| e.contains("certificate"))
    })
    .await;
    delivery.stop().await;
    assert!(receiver.requests().is_empty());

    let mut roots = rustls::RootCertStore::empty();
    roots.add(generated.cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let delivery = Delivery::start(
        &spool,
        target(),
        DeliveryOptions {
            backoff: FAST,
            tls: Some(Arc::new(config)),
        },
    );
    wait_until("the item is delivered over HTTPS", || {
        all_delivered(&spool, std::slice::from_ref(&item))
    })
    .await;
    delivery.stop().await;
    assert_eq!(receiver.accepted(), [item.id.as_str()]);
    receiver.requests().iter().for_each(assert_signed);
}
