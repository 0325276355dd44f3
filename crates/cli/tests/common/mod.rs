//! Runs the real `cdrhub` binary and talks to it over real sockets.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;

pub mod webdriver;

pub fn cdrhub() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cdrhub"))
}

/// A `cdrhub serve` child process listening on a free loopback port.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    /// An admin API token made with `cdrhub token create` before the start.
    pub token: String,
    /// The generated password of the first user, when this start made it.
    pub admin_password: Option<String>,
    /// Lines of the server's log at level ERROR, and panics.
    pub errors: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// What the server says after "listening for the gateway feed on ".
    feed: std::sync::Mutex<std::sync::mpsc::Receiver<String>>,
    hep: std::sync::Mutex<std::sync::mpsc::Receiver<String>>,
    radius: std::sync::Mutex<std::sync::mpsc::Receiver<String>>,
}

impl Server {
    pub fn start(data_dir: &Path) -> Server {
        Server::start_with_config(data_dir, None)
    }

    /// As [`Server::start`], reading `config` (`--config`) too.
    pub fn start_with_config(data_dir: &Path, config: Option<&Path>) -> Server {
        Server::start_with_env(data_dir, config, &[])
    }

    /// As [`Server::start_with_config`], with these environment variables
    /// for `cdrhub serve` (a preloaded fake clock, say).
    pub fn start_with_env(data_dir: &Path, config: Option<&Path>, env: &[(&str, &str)]) -> Server {
        static STARTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let name = format!(
            "tests-{}",
            STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut create = cdrhub();
        if let Some(config) = config {
            create.arg("--config").arg(config);
        }
        let out = create
            .arg("--data-dir")
            .arg(data_dir)
            .args(["token", "create", &name, "--role", "admin"])
            .output()
            .expect("run cdrhub token create");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        let mut serve = cdrhub();
        if let Some(config) = config {
            serve.arg("--config").arg(config);
        }
        let mut child = serve
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start cdrhub");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let (password_tx, password_rx) = std::sync::mpsc::channel();
        let (feed_tx, feed_rx) = std::sync::mpsc::channel();
        let (hep_tx, hep_rx) = std::sync::mpsc::channel();
        let (radius_tx, radius_rx) = std::sync::mpsc::channel();
        let errors = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let errors_seen = errors.clone();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains(" ERROR ") || line.contains("panicked") {
                    errors_seen.lock().unwrap().push(line.clone());
                }
                if let Some(rest) = line.split("with the password ").nth(1) {
                    let password = rest.split_whitespace().next().unwrap_or_default();
                    let _ = password_tx.send(password.to_owned());
                }
                if let Some(rest) = line.split("listening for the gateway feed on ").nth(1) {
                    let _ = feed_tx.send(rest.trim().to_owned());
                }
                if let Some(rest) = line.split("listening for HEP on ").nth(1) {
                    let _ = hep_tx.send(rest.trim().to_owned());
                }
                if let Some(rest) = line.split("listening for RADIUS accounting on udp ").nth(1) {
                    let _ = radius_tx.send(rest.trim().to_owned());
                }
                if !sent && let Some(rest) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(rest.trim().to_owned());
                    sent = true;
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("cdrhub did not say where it listens")
            .parse()
            .unwrap();
        // Logged before the listener, so it has been read by now.
        let admin_password = password_rx.try_recv().ok();
        Server {
            child,
            addr,
            token,
            admin_password,
            errors,
            feed: std::sync::Mutex::new(feed_rx),
            hep: std::sync::Mutex::new(hep_rx),
            radius: std::sync::Mutex::new(radius_rx),
        }
    }

    /// Where the gateway feed listens (TCP, UDP), once the server says so.
    pub fn feed_addrs(&self) -> (SocketAddr, SocketAddr) {
        let said = self
            .feed
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(60))
            .expect("cdrhub did not say where the gateway feed listens");
        // "tcp 127.0.0.1:41234 and udp 127.0.0.1:52345"
        let words: Vec<&str> = said.split_whitespace().collect();
        (words[1].parse().unwrap(), words[4].parse().unwrap())
    }

    /// Where HEP is received (UDP, TCP), once the server says so.
    pub fn hep_addrs(&self) -> (SocketAddr, SocketAddr) {
        let said = self
            .hep
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(60))
            .expect("cdrhub did not say where it listens for HEP");
        // "udp 127.0.0.1:41234 and tcp 127.0.0.1:52345"
        let words: Vec<&str> = said.split_whitespace().collect();
        (words[1].parse().unwrap(), words[4].parse().unwrap())
    }

    /// Where RADIUS accounting is received, once the server says so.
    pub fn radius_addr(&self) -> SocketAddr {
        self.radius
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(60))
            .expect("cdrhub did not say where it listens for RADIUS")
            .parse()
            .unwrap()
    }

    /// SIGKILL: no chance to flush or say goodbye.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One keep-alive HTTP/1.1 connection.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    addr: SocketAddr,
    /// API token sent as `Authorization: Bearer`, if any.
    pub bearer: Option<String>,
    /// A `Cookie` header to send, if any.
    pub cookie: Option<String>,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> std::io::Result<Conn> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        let io = hyper_util::rt::TokioIo::new(stream);
        let (sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(conn);
        Ok(Conn {
            sender,
            addr,
            bearer: None,
            cookie: None,
        })
    }

    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(u16, Bytes), hyper::Error> {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string())
            .header("content-type", "application/xml");
        if let Some(token) = &self.bearer {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        if let Some(cookie) = &self.cookie {
            req = req.header("cookie", cookie);
        }
        let req = req.body(Full::new(Bytes::from(body))).unwrap();
        // A keep-alive connection takes the next request only once the last is done.
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// GETs `path` with `token`; returns the status and body.
pub async fn get(addr: SocketAddr, token: &str, path: &str) -> (u16, Bytes) {
    let mut c = Conn::open(addr).await.unwrap();
    c.bearer = Some(token.to_owned());
    c.request("GET", path, Vec::new()).await.unwrap()
}

pub async fn get_json(server: &Server, path: &str) -> serde_json::Value {
    let (status, body) = get(server.addr, &server.token, path).await;
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

pub async fn get_text(server: &Server, path: &str) -> String {
    let (status, body) = get(server.addr, &server.token, path).await;
    assert_eq!(status, 200, "{path}");
    String::from_utf8(body.to_vec()).unwrap()
}

pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/cms")
        .join(name)
}

/// A document of `n` callLegStart records, `first` being the first recordIndex.
pub fn document(session: &str, first: u64, n: u64) -> Vec<u8> {
    let mut body = format!("<?xml version=\"1.0\"?>\n<records session=\"{session}\">");
    for i in first..first + n {
        body.push_str(&format!(
            "<record type=\"callLegStart\" time=\"2026-05-01T08:00:00Z\" recordIndex=\"{i}\" correlatorIndex=\"{}\">\
             <callLeg id=\"{session}-leg-{i}\"><remoteParty>{i}@example.com</remoteParty><direction>incoming</direction></callLeg></record>",
            i - 1
        ));
    }
    body.push_str("</records>");
    body.into_bytes()
}

pub fn journal(data_dir: &std::path::Path) -> std::collections::BTreeSet<(String, u64)> {
    let conn = rusqlite::Connection::open_with_flags(
        data_dir.join("cdrhub.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut stmt = conn
        .prepare("SELECT s.session, j.seq FROM journal j JOIN streams s ON s.id = j.stream")
        .unwrap();
    let rows: Vec<(String, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let set: std::collections::BTreeSet<(String, u64)> =
        rows.iter().map(|(s, i)| (s.clone(), *i as u64)).collect();
    assert_eq!(set.len(), rows.len(), "a record is stored twice");
    set
}

/// Records that got a 200, by session and recordIndex.
pub type Acked = std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<(String, u64)>>>;
/// Documents sent: session, first recordIndex, records.
pub type Sent = std::sync::Arc<std::sync::Mutex<Vec<(String, u64, u64)>>>;

/// Posts CMS documents to `addr` from `senders` Call Bridges (sessions
/// `PREFIX-0` ...), single-record and 10-record POSTs mixed, until the
/// server dies, recording what was sent and what got a 200.
pub fn post_until_killed(
    rt: &tokio::runtime::Runtime,
    addr: SocketAddr,
    senders: usize,
    prefix: &str,
    acked: &Acked,
    sent: &Sent,
) -> tokio::task::JoinHandle<()> {
    let (acked, sent, prefix) = (acked.clone(), sent.clone(), prefix.to_owned());
    rt.spawn(async move {
        let mut tasks = Vec::new();
        for s in 0..senders {
            let (acked, sent) = (acked.clone(), sent.clone());
            let session = format!("{prefix}-{s}");
            tasks.push(tokio::spawn(async move {
                let Ok(mut conn) = Conn::open(addr).await else {
                    return;
                };
                let mut next = 1u64;
                loop {
                    let n = if next.is_multiple_of(3) { 10 } else { 1 };
                    sent.lock().unwrap().push((session.clone(), next, n));
                    match conn
                        .request("POST", "/ingest/cms", document(&session, next, n))
                        .await
                    {
                        Ok((200, _)) => {
                            let mut a = acked.lock().unwrap();
                            for i in next..next + n {
                                a.insert((session.clone(), i));
                            }
                        }
                        Ok((status, body)) => {
                            panic!("unexpected {status}: {}", String::from_utf8_lossy(&body))
                        }
                        Err(_) => return, // the server died under us
                    }
                    next += n;
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    })
}

/// Sends every document of `sent` again, as Call Bridges retry what they
/// never got a 200 for, each answered 200; the records they hold.
pub fn send_again(
    rt: &tokio::runtime::Runtime,
    addr: SocketAddr,
    sent: &[(String, u64, u64)],
) -> u64 {
    rt.block_on(async {
        let mut conn = Conn::open(addr).await.unwrap();
        for (session, first, n) in sent {
            let (status, _) = conn
                .request("POST", "/ingest/cms", document(session, *first, *n))
                .await
                .unwrap();
            assert_eq!(status, 200);
        }
    });
    sent.iter().map(|(_, _, n)| n).sum()
}

/// Starts the machine's NATS JetStream on 127.0.0.1:4222 when nothing
/// answers there (real-peers.md), for the bus tests.
pub fn ensure_nats() {
    let up = || std::net::TcpStream::connect("127.0.0.1:4222").is_ok();
    if !up() {
        let _ = std::process::Command::new("start-stop-daemon")
            .args([
                "--start",
                "--oknodo",
                "--background",
                "--exec",
                "/usr/sbin/nats-server",
                "--",
                "-a",
                "127.0.0.1",
                "-p",
                "4222",
                "-js",
                "-sd",
                "/var/lib/nats-server",
                "-l",
                "/var/log/nats-server.log",
            ])
            .status();
        wait_until("NATS answers", up);
    }
}

/// POSTs a CMS document as Call Bridge `cb1`: the status and the answer.
pub async fn post_cms(server: &Server, body: Vec<u8>) -> (u16, String) {
    let mut c = Conn::open(server.addr).await.unwrap();
    let (status, body) = c
        .request("POST", "/ingest/cms?system_id=cb1", body)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The CMS source's records stored and duplicates dropped, over all its
/// senders (`/api/v1/sources`).
pub async fn cms_counts(server: &Server) -> (u64, u64) {
    let sources = get_json(server, "/api/v1/sources").await;
    let senders: Vec<&serde_json::Value> = sources["sources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["source"] == "cms")
        .flat_map(|s| s["senders"].as_array().unwrap())
        .collect();
    let sum = |key: &str| senders.iter().map(|s| s[key].as_u64().unwrap()).sum();
    (sum("records_total"), sum("duplicates"))
}
