//! Faults (issue 9, point 3): the PostgreSQL store becomes unreachable
//! while a Call Bridge posts, then comes back. The real `cdrhub serve`
//! reaches PostgreSQL through a TCP relay of the test's, which the test
//! cuts (every connection reset, new ones refused) and restores. Posts made
//! meanwhile are answered 503 with Retry-After and a sentence naming the
//! store; nothing answered 200 is lost; once the relay is back the retries
//! are stored, each once, without restarting the server.

mod common;

use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cdrhub_store::postgres::testing::TestDb;
use common::{Server, document, post_cms};

/// A TCP relay to PostgreSQL that can be cut and restored.
struct Relay {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    live: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let live = Arc::new(Mutex::new(Vec::new()));
        let (up2, live2) = (up.clone(), live.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !up2.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                {
                    let mut live = live2.lock().unwrap();
                    live.push(client.try_clone().unwrap());
                    live.push(server.try_clone().unwrap());
                }
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                        let _ = from.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Relay { addr, up, live }
    }

    /// PostgreSQL is gone: open connections reset, new ones closed.
    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for s in self.live.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_going_away_gets_503s_and_the_retries_are_stored_once_it_is_back() {
    let db = TestDb::new();
    let relay = Relay::start("127.0.0.1:5432".parse().unwrap());
    let url = db.url().replace("127.0.0.1:5432", &relay.addr.to_string());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cdrhub.toml");
    std::fs::write(&config, format!("[store]\nurl = \"{url}\"\n")).unwrap();
    let server = Server::start_with_config(&dir.path().join("data"), Some(&config));

    let session = uuid::Uuid::new_v4().to_string();
    let mut acknowledged = 0u64;
    let mut next = 1u64;
    for _ in 0..10 {
        let (status, text) = post_cms(&server, document(&session, next, 5)).await;
        assert_eq!(status, 200, "{text}");
        acknowledged += 5;
        next += 5;
    }

    relay.cut();
    let refused = document(&session, next, 5);
    let (status, text) = post_cms(&server, refused.clone()).await;
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("store unavailable"), "{text}");
    assert_eq!(text.lines().count(), 1, "one sentence: {text}");

    relay.restore();
    let mut tries = 0;
    loop {
        let (status, text) = post_cms(&server, refused.clone()).await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "{text}");
        tries += 1;
        assert!(tries < 300, "the store never came back: {text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    acknowledged += 5;
    next += 5;
    // The same document again (a sender that did not see the 200): dropped.
    let (status, _) = post_cms(&server, refused).await;
    assert_eq!(status, 200);
    for _ in 0..5 {
        let (status, text) = post_cms(&server, document(&session, next, 5)).await;
        assert_eq!(status, 200, "{text}");
        acknowledged += 5;
        next += 5;
    }
    assert_eq!(common::cms_counts(&server).await.0, acknowledged);
    let metrics = common::get_text(&server, "/metrics").await;
    assert!(
        !metrics.contains("cdrhub_store_write_failures_total 0\n"),
        "{metrics}"
    );
    server.kill();
}
