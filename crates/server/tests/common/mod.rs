//! A cdrhub server started in-process on `127.0.0.1:0`, and an HTTP/1.1
//! keep-alive client (plain or rustls) that speaks to it over real sockets.
//! Also the seed fixtures and a small builder of CMS `<records>` documents.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cdrhub_model::Role;
use cdrhub_server::config::HttpsConfig;
use cdrhub_server::{AppState, BoundServer, Config, Metrics};
use cdrhub_store::postgres::testing::TestDb;
use cdrhub_store::postgres::{PgOptions, PgStore};
use cdrhub_store::{SqliteOptions, SqliteStore, Store};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{self, HeaderMap};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_rustls::TlsConnector;

/// The Call Bridge GUID of the seed documents (their `callBridge` attribute).
pub const SEED_CALL_BRIDGE: &str = "158ba4f7-70eb-4a35-982c-71d4f1674277";
/// The CMS ingest path of the default configuration.
pub const CMS: &str = "/ingest/cms";

/// How the test server differs from the default configuration.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Also listen for HTTPS, with a certificate generated for 127.0.0.1.
    pub https: bool,
    /// `sources.cms.max_body_bytes`.
    pub max_body_bytes: Option<usize>,
    /// `SqliteOptions::busy_timeout` of the store's writer.
    pub busy_timeout: Option<Duration>,
    /// `[[sources.cti]]`: CTI servers to connect to.
    pub cti: Vec<cdrhub_server::sources::cti::CtiSourceConfig>,
    /// `[sources.radius]`: its `listen` is replaced by a free loopback port.
    pub radius: Option<cdrhub_server::sources::radius::RadiusSourceConfig>,
    /// Listen for the gateway feed, on free loopback ports.
    pub feed: bool,
    /// `[sources.feed] session_timeout_s`.
    pub feed_session_timeout_s: Option<u64>,
    /// `[sources.hep]`: its addresses are replaced by free loopback ports.
    pub hep: Option<cdrhub_server::sources::hep::HepSourceConfig>,
    /// `[bus]`.
    pub bus: Option<cdrhub_server::bus::BusConfig>,
    /// `[[exports]]` and `[[webhooks]]`.
    pub exports: Vec<cdrhub_server::exports::ExportConfig>,
    pub webhooks: Vec<cdrhub_server::exports::WebhookConfig>,
    /// The test is about SQLite's files (locks, backups): SQLite even in a
    /// run on PostgreSQL.
    pub sqlite: bool,
    /// Any other change to the configuration, made last.
    pub configure: Option<fn(&mut Config)>,
    /// Make the server's directory (its SQLite files) inside this one, a
    /// small file system of the test's, say.
    pub dir_in: Option<PathBuf>,
}

/// One HTTP answer: status, headers and the whole body.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).expect("the body is UTF-8")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("the body is not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("")
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An HTTP/1.1 client that keeps one connection open and reuses it for every
/// request; it opens a new one only when the server has closed the last.
pub struct Client {
    addr: SocketAddr,
    tls: Option<TlsConnector>,
    conn: Option<SendRequest<Full<Bytes>>>,
    /// How many TCP (or TLS) connections this client has opened.
    pub connections_opened: usize,
    /// API token sent as `Authorization: Bearer`, if any.
    pub bearer: Option<String>,
    /// Cookies the server set, sent back with every request (a browser's jar).
    pub cookies: Vec<(String, String)>,
}

impl Client {
    pub fn plain(addr: SocketAddr) -> Self {
        Client {
            addr,
            tls: None,
            conn: None,
            connections_opened: 0,
            bearer: None,
            cookies: Vec::new(),
        }
    }

    /// The same client sending `token` as its API token.
    pub fn with_bearer(mut self, token: &str) -> Self {
        self.bearer = Some(token.to_owned());
        self
    }

    /// A client that speaks TLS and trusts exactly `cert`.
    pub fn tls(addr: SocketAddr, cert: CertificateDer<'static>) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(cert)
            .expect("the generated certificate is usable");
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Client {
            addr,
            tls: Some(TlsConnector::from(Arc::new(config))),
            conn: None,
            connections_opened: 0,
            bearer: None,
            cookies: Vec::new(),
        }
    }

    async fn connect(&mut self) -> Result<SendRequest<Full<Bytes>>, BoxError> {
        let tcp = TcpStream::connect(self.addr).await?;
        tcp.set_nodelay(true)?;
        let sender = match &self.tls {
            None => {
                let (sender, conn) = http1::handshake(TokioIo::new(tcp)).await?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                sender
            }
            Some(connector) => {
                let name = ServerName::IpAddress(self.addr.ip().into());
                let tls = connector.connect(name, tcp).await?;
                let (sender, conn) = http1::handshake(TokioIo::new(tls)).await?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                sender
            }
        };
        self.connections_opened += 1;
        Ok(sender)
    }

    /// Sends one request on the open connection (opening one if needed).
    pub async fn try_request(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<Reply, BoxError> {
        self.try_request_as(method, path, "application/xml", body)
            .await
    }

    /// POSTs an HTML form (`application/x-www-form-urlencoded`).
    pub async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
            .collect();
        self.try_request_as(
            Method::POST,
            path,
            "application/x-www-form-urlencoded",
            Bytes::from(body.join("&")),
        )
        .await
        .unwrap_or_else(|e| panic!("POST {path} failed: {e}"))
    }

    /// POSTs a `multipart/form-data` form of text fields and then one file.
    pub async fn post_multipart(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        file: (&str, &str, &[u8]),
    ) -> Reply {
        let boundary = "cdrhub-test-boundary-7d3f";
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                    .as_bytes(),
            );
        }
        let (name, filename, bytes) = file;
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        self.try_request_as(
            Method::POST,
            path,
            &format!("multipart/form-data; boundary={boundary}"),
            Bytes::from(body),
        )
        .await
        .unwrap_or_else(|e| panic!("POST {path} failed: {e}"))
    }

    /// The value of a cookie the server set.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn keep_cookies(&mut self, headers: &HeaderMap) {
        for set in headers.get_all(header::SET_COOKIE) {
            let set = set.to_str().expect("an ASCII Set-Cookie");
            let (pair, attributes) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').expect("name=value");
            self.cookies.retain(|(k, _)| k != name);
            if !attributes.contains("Max-Age=0") {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    async fn try_request_as(
        &mut self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Bytes,
    ) -> Result<Reply, BoxError> {
        let reusable = match self.conn.take() {
            Some(mut s) if !s.is_closed() => s.ready().await.is_ok().then_some(s),
            _ => None,
        };
        let mut sender = match reusable {
            Some(s) => s,
            None => self.connect().await?,
        };
        let mut req = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(header::HOST, self.addr.to_string());
        if let Some(token) = &self.bearer {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req = req.header(header::COOKIE, jar.join("; "));
        }
        if method == Method::POST {
            req = req
                .header(header::CONTENT_TYPE, content_type)
                .header(header::CONTENT_LENGTH, body.len());
        }
        let res = sender.send_request(req.body(Full::new(body))?).await?;
        let (parts, body) = res.into_parts();
        let body = body.collect().await?.to_bytes();
        self.conn = Some(sender);
        self.keep_cookies(&parts.headers);
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    pub async fn request(&mut self, method: Method, path: &str, body: Bytes) -> Reply {
        self.try_request(method.clone(), path, body)
            .await
            .unwrap_or_else(|e| panic!("{method} {path} failed: {e}"))
    }

    pub async fn post(&mut self, path: &str, body: impl Into<Bytes>) -> Reply {
        self.request(Method::POST, path, body.into()).await
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        self.request(Method::GET, path, Bytes::new()).await
    }
}

/// `application/x-www-form-urlencoded` encoding of one name or value.
fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                (b as char).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A running server with its own data directory, and a client for it.
pub struct TestServer {
    pub dir: TempDir,
    pub http_addr: SocketAddr,
    pub https_addr: Option<SocketAddr>,
    /// Where the RADIUS accounting server listens, if enabled.
    pub radius_addr: Option<SocketAddr>,
    /// Where the gateway feed listens (TCP, UDP), if enabled.
    pub feed_addrs: Option<(SocketAddr, SocketAddr)>,
    /// Where the HEP listener listens (UDP, TCP), if enabled.
    pub hep_addrs: Option<(SocketAddr, SocketAddr)>,
    /// The TLS listeners of the feed and HEP, when configured.
    pub feed_tls_addr: Option<SocketAddr>,
    pub hep_tls_addr: Option<SocketAddr>,
    cert: Option<CertificateDer<'static>>,
    pub client: Client,
    /// An admin API token the clients send.
    pub token: String,
    pub store: Arc<dyn Store>,
    stop: Option<oneshot::Sender<()>>,
    /// The database of a run on PostgreSQL, dropped with the server.
    postgres: Option<TestDb>,
}

/// The store of a test server: SQLite in `dir`, or with
/// `CDRHUB_TEST_STORE=postgres` a new database on the machine's PostgreSQL
/// (the same tests, the same expectations: the stores must agree).
pub fn open_store(
    dir: &std::path::Path,
    options: SqliteOptions,
) -> (Arc<dyn Store>, Option<TestDb>) {
    if std::env::var("CDRHUB_TEST_STORE").as_deref() == Ok("postgres") {
        let db = TestDb::new();
        let store = PgStore::open(
            &db.url(),
            PgOptions {
                dialog_timeouts: options.dialog_timeouts,
                ..PgOptions::default()
            },
        )
        .expect("the PostgreSQL store opens");
        return (Arc::new(store), Some(db));
    }
    let store = SqliteStore::open(dir, options).expect("the store opens");
    (Arc::new(store), None)
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> TestServer {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = match &options.dir_in {
            Some(parent) => tempfile::tempdir_in(parent),
            None => tempfile::tempdir(),
        }
        .expect("a temporary directory");
        let localhost = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));

        let mut config = Config::default();
        config.http.listen = localhost;
        if let Some(n) = options.max_body_bytes {
            config.sources.cms.max_body_bytes = n;
        }
        config.sources.cti = options.cti;
        if let Some(mut radius) = options.radius {
            radius.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
            config.sources.radius = radius;
        }
        config.bus = options.bus.clone();
        config.exports = options.exports.clone();
        config.webhooks = options.webhooks.clone();
        if let Some(mut hep) = options.hep {
            hep.udp_listen = localhost;
            hep.tcp_listen = localhost;
            config.sources.hep = hep;
        }
        if options.feed {
            config.sources.feed.enabled = true;
            config.sources.feed.tcp_listen = localhost;
            config.sources.feed.udp_listen = localhost;
            if let Some(s) = options.feed_session_timeout_s {
                config.sources.feed.session_timeout_s = s;
            }
        }
        if let Some(configure) = options.configure {
            configure(&mut config);
        }
        let mut cert = None;
        if options.https {
            let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
                .expect("a self-signed certificate");
            let cert_path = dir.path().join("cert.pem");
            let key_path = dir.path().join("key.pem");
            std::fs::write(&cert_path, generated.cert.pem()).unwrap();
            std::fs::write(&key_path, generated.signing_key.serialize_pem()).unwrap();
            cert = Some(generated.cert.der().clone());
            config.https = Some(HttpsConfig {
                listen: localhost,
                cert: cert_path,
                key: key_path,
            });
        }

        let mut store_options = SqliteOptions {
            dialog_timeouts: config.sources.hep.dialog_timeouts(),
            ..SqliteOptions::default()
        };
        if let Some(t) = options.busy_timeout {
            store_options.busy_timeout = t;
        }
        let token = cdrhub_server::auth::new_secret();
        let token_hash = cdrhub_server::auth::token_hash(&token);
        let store_dir = dir.path().to_owned();
        let sqlite_only = options.sqlite;
        // The PostgreSQL client blocks: off the async threads, as the
        // server's own calls to the store are.
        let (store, postgres) = tokio::task::spawn_blocking(move || {
            let (store, postgres) = if sqlite_only {
                let store = SqliteStore::open(&store_dir, store_options).expect("the store opens");
                (Arc::new(store) as Arc<dyn Store>, None)
            } else {
                open_store(&store_dir, store_options)
            };
            store
                .accounts()
                .add_token("tests", Role::Admin, &token_hash)
                .expect("a test token");
            (store, postgres)
        })
        .await
        .expect("the store opens");
        let state = AppState {
            store: store.clone(),
            config: Arc::new(config),
            metrics: Arc::new(Metrics::default()),
            retention: Default::default(),
            bus: None,
            exports: Arc::new(cdrhub_server::exports::Exports::with_backoff(
                dir.path().join("spool"),
                cdrhub_server::delivery::Backoff {
                    first: Duration::from_millis(100),
                    max: Duration::from_millis(500),
                },
            )),
        };
        let server = BoundServer::bind(state).await.expect("the server binds");
        let http_addr = server.http_addr().expect("an HTTP listener");
        let https_addr = server.https_addr();
        let radius_addr = server.radius_addr();
        let feed_addrs = server.feed_addrs();
        let hep_addrs = server.hep_addrs();
        let feed_tls_addr = server.feed_tls_addr();
        let hep_tls_addr = server.hep_tls_addr();
        assert_eq!(http_addr.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        TestServer {
            dir,
            http_addr,
            https_addr,
            radius_addr,
            feed_addrs,
            hep_addrs,
            feed_tls_addr,
            hep_tls_addr,
            cert,
            client: Client::plain(http_addr).with_bearer(&token),
            token,
            store,
            stop: Some(stop),
            postgres,
        }
    }

    /// Runs `f` on the store's accounts from a thread of its own: the
    /// PostgreSQL client blocks, and must not on an async test's thread.
    pub fn with_accounts<T: Send>(
        &self,
        f: impl FnOnce(&dyn cdrhub_store::Accounts) -> T + Send,
    ) -> T {
        let store = &self.store;
        std::thread::scope(|s| s.spawn(|| f(store.accounts())).join())
            .expect("the accounts call panicked")
    }

    /// Whether this run's store is PostgreSQL (`CDRHUB_TEST_STORE`).
    pub fn on_postgres(&self) -> bool {
        self.postgres.is_some()
    }

    /// `cdrhub.db` in the data directory.
    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("cdrhub.db")
    }

    /// A new plain HTTP client (its own connection) with the test token.
    pub fn http_client(&self) -> Client {
        Client::plain(self.http_addr).with_bearer(&self.token)
    }

    /// A new HTTPS client trusting the server's generated certificate.
    /// A TLS connection to `addr` (a source's TLS listener), trusting the
    /// test certificate (`Options::https`).
    pub async fn tls_stream(&self, addr: SocketAddr) -> tokio_rustls::client::TlsStream<TcpStream> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(self.cert.clone().expect("a server started with https"))
            .expect("the generated certificate is usable");
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = TcpStream::connect(addr)
            .await
            .expect("the TLS port connects");
        TlsConnector::from(Arc::new(config))
            .connect(ServerName::IpAddress(addr.ip().into()), tcp)
            .await
            .expect("the TLS handshake")
    }

    pub fn https_client(&self) -> Client {
        Client::tls(
            self.https_addr.expect("started with https"),
            self.cert.clone().expect("started with https"),
        )
        .with_bearer(&self.token)
    }

    pub async fn post(&mut self, path: &str, body: impl Into<Bytes>) -> Reply {
        self.client.post(path, body).await
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        self.client.get(path).await
    }

    /// GETs `path`, asserts 200 and JSON, and returns the JSON.
    pub async fn get_json(&mut self, path: &str) -> Value {
        let r = self.get(path).await;
        assert_eq!(r.status, StatusCode::OK, "GET {path}: {}", r.text());
        assert!(
            r.content_type().starts_with("application/json"),
            "GET {path}: content-type {:?}",
            r.content_type()
        );
        r.json()
    }

    /// Every call in the store (one page of up to 1000), newest first.
    pub async fn calls(&mut self) -> Vec<Value> {
        let page = self.get_json("/api/v1/calls?limit=1000").await;
        assert!(page["next_cursor"].is_null(), "more than 1000 calls");
        page["calls"].as_array().expect("calls is an array").clone()
    }

    /// The calls matching a query string (one page of up to 1000).
    pub async fn calls_where(&mut self, query: &str) -> Vec<Value> {
        let page = self
            .get_json(&format!("/api/v1/calls?limit=1000&{query}"))
            .await;
        page["calls"].as_array().expect("calls is an array").clone()
    }

    /// `/api/v1/calls/{id}`.
    pub async fn call(&mut self, id: &str) -> Value {
        self.get_json(&format!("/api/v1/calls/{id}")).await
    }

    /// The CMS senders of `/api/v1/sources`.
    pub async fn senders(&mut self) -> Vec<Value> {
        let sources = self.get_json("/api/v1/sources").await;
        let cms = sources["sources"]
            .as_array()
            .expect("sources is an array")
            .iter()
            .find(|s| s["source"] == "cms")
            .expect("a cms source")
            .clone();
        cms["senders"].as_array().expect("senders").clone()
    }

    /// One CMS sender's statistics, if it has any.
    pub async fn sender(&mut self, name: &str) -> Option<Value> {
        self.senders()
            .await
            .into_iter()
            .find(|s| s["sender"] == name)
    }

    /// Records stored from every CMS sender together.
    pub async fn records_total(&mut self) -> u64 {
        self.senders()
            .await
            .iter()
            .map(|s| s["records_total"].as_u64().expect("records_total"))
            .sum()
    }

    /// `/api/v1/gaps` with a query string.
    pub async fn gaps(&mut self, query: &str) -> Vec<Value> {
        let g = self.get_json(&format!("/api/v1/gaps?{query}")).await;
        g["gaps"].as_array().expect("gaps is an array").clone()
    }

    /// POSTs a body to `path` and asserts the CMS acknowledgement: 200, empty body.
    pub async fn ingest(&mut self, path: &str, body: impl Into<Bytes>) {
        let r = self.post(path, body).await;
        assert_eq!(r.status, StatusCode::OK, "POST {path}: {}", r.text());
        assert!(r.body.is_empty(), "POST {path} answered {:?}", r.text());
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The keys of a JSON object in the order they appear, repeats included
/// (a `serde_json::Value` keeps only the last of a repeated key).
/// Event types of a call detail, in the order listed.
pub fn event_types(detail: &Value) -> Vec<String> {
    detail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

pub fn object_keys(json: &[u8]) -> Vec<String> {
    struct Keys(Vec<String>);
    impl<'de> serde::Deserialize<'de> for Keys {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Visitor;
            impl<'de> serde::de::Visitor<'de> for Visitor {
                type Value = Keys;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<Keys, A::Error> {
                    let mut keys = Vec::new();
                    while let Some((k, serde::de::IgnoredAny)) = map.next_entry::<String, _>()? {
                        keys.push(k);
                    }
                    Ok(Keys(keys))
                }
            }
            d.deserialize_map(Visitor)
        }
    }
    serde_json::from_slice::<Keys>(json)
        .expect("a JSON object")
        .0
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/cms")
}

/// `seed-000-post{n}.xml`, n in 1..=6: one 2-leg conference call, 8 records.
pub fn seed(n: usize) -> Bytes {
    let path = fixtures().join(format!("seed-000-post{n}.xml"));
    Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// The six seed documents in the order the Call Bridge sent them.
pub fn seeds() -> Vec<Bytes> {
    (1..=6).map(seed).collect()
}

/// Asserts the call the seed documents describe, as `/api/v1/calls` lists it.
pub fn assert_seed_call(call: &Value, sender: &str) {
    assert_eq!(call["legs"], 2, "call field legs in {call:#}");
    assert_seed_call_fields(call, sender);
}

/// [`assert_seed_call`] without the `legs` count, which `/api/v1/calls/{id}`
/// replaces with the list of legs.
pub fn assert_seed_call_fields(call: &Value, sender: &str) {
    let expect = [
        ("source", Value::from("cms")),
        ("sender", sender.into()),
        ("kind", "conference".into()),
        ("caller", "sipclient1@example.com".into()),
        ("dialed", "access1@127.0.0.1".into()),
        ("destination", "test564_1".into()),
        ("direction", "in".into()),
        ("disposition", "answered".into()),
        ("legs_completed", 2.into()),
        ("max_active_legs", 2.into()),
        ("duration_s", 10.into()),
        ("started_at", "2015-07-23T07:32:55Z".into()),
        ("answered_at", "2015-07-23T07:32:55Z".into()),
        ("ended_at", "2015-07-23T07:33:05Z".into()),
        ("media", "video".into()),
    ];
    for (field, value) in expect {
        assert_eq!(call[field], value, "call field {field} in {call:#}");
    }
}

/// Asserts the detail of the seed call: its two legs and its eight events.
pub fn assert_seed_detail(detail: &Value) {
    let legs = detail["legs"].as_array().expect("legs is an array");
    assert_eq!(legs.len(), 2, "{detail:#}");
    let leg = |id: &str| {
        legs.iter()
            .find(|l| l["source_leg_id"] == id)
            .unwrap_or_else(|| panic!("no leg {id} in {detail:#}"))
    };
    let first = leg("fc9c85ca-8c41-4a1a-9252-b16977d1ede1");
    let second = leg("9cfdb064-3ae9-4b08-a003-6478187f375f");
    for (l, remote, local, sip, reason, rx_audio, rx_width) in [
        (
            first,
            "sipclient1@example.com",
            "access1@127.0.0.1",
            "b8a81dab-c24c-43db-bab8-742f587faec8",
            "callDeactivated",
            "g711u",
            1280,
        ),
        (
            second,
            "sipclient2@example.com",
            "access2@127.0.0.1",
            "a939937c-8bbe-4376-92de-97635983d7ef",
            "remoteTeardown",
            "g722",
            768,
        ),
    ] {
        assert_eq!(l["call_id"], detail["id"], "{l:#}");
        assert_eq!(l["remote_party"], remote, "{l:#}");
        assert_eq!(l["local_address"], local, "{l:#}");
        assert_eq!(l["sip_call_id"], sip, "{l:#}");
        assert_eq!(l["direction"], "incoming", "{l:#}");
        assert_eq!(l["leg_type"], "sip", "{l:#}");
        assert_eq!(l["reason"], reason, "{l:#}");
        assert_eq!(l["remote_teardown"], reason == "remoteTeardown", "{l:#}");
        assert_eq!(l["disposition"], "answered", "{l:#}");
        assert_eq!(l["duration_s"], 10, "{l:#}");
        assert_eq!(l["started_at"], "2015-07-23T07:32:55Z", "{l:#}");
        assert_eq!(l["connected_at"], "2015-07-23T07:32:55Z", "{l:#}");
        assert_eq!(l["ended_at"], "2015-07-23T07:33:05Z", "{l:#}");
        let media = &l["media"];
        assert_eq!(media["rx_video"]["codec"], "h264", "{media:#}");
        assert_eq!(media["rx_video"]["maxSizeWidth"], rx_width, "{media:#}");
        assert_eq!(media["tx_video"]["codec"], "h264", "{media:#}");
        assert_eq!(media["rx_audio"]["codec"], rx_audio, "{media:#}");
        assert_eq!(media["tx_audio"]["codec"], "g722_1c", "{media:#}");
        assert_eq!(media["unencrypted_media"], true, "{media:#}");
        assert!(
            media["rx_audio"]["packetStatistics"]["packetGap"]["duration"].is_number(),
            "{media:#}"
        );
    }

    let events = detail["events"].as_array().expect("events is an array");
    assert_eq!(events.len(), 8, "{detail:#}");
    let times: Vec<&str> = events
        .iter()
        .map(|e| e["time"].as_str().expect("event time"))
        .collect();
    // RFC 3339 UTC times of equal precision sort as strings.
    assert!(times.is_sorted(), "events out of time order: {times:?}");
    let mut types: Vec<&str> = events
        .iter()
        .map(|e| e["type"].as_str().expect("event type"))
        .collect();
    types.sort_unstable();
    assert_eq!(
        types,
        [
            "callEnd",
            "callLegEnd",
            "callLegEnd",
            "callLegStart",
            "callLegStart",
            "callLegUpdate",
            "callLegUpdate",
            "callStart"
        ]
    );
}

/// A fresh GUID, as CMS uses for sessions, calls and legs.
pub fn guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A CMS `<records>` document built record by record.
#[derive(Debug, Clone)]
pub struct CmsDoc {
    session: String,
    call_bridge: Option<String>,
    records: Vec<String>,
}

impl CmsDoc {
    pub fn new(session: &str) -> Self {
        CmsDoc {
            session: session.to_owned(),
            call_bridge: None,
            records: Vec::new(),
        }
    }

    pub fn call_bridge(mut self, id: &str) -> Self {
        self.call_bridge = Some(id.to_owned());
        self
    }

    /// Appends `<record type time recordIndex correlatorIndex>` around `body`.
    pub fn record(self, record_type: &str, time: &str, index: u64, body: &str) -> Self {
        self.record_with(record_type, time, index, "", body)
    }

    /// Like [`CmsDoc::record`], with more attributes (` name="value"` ...).
    pub fn record_with(
        mut self,
        record_type: &str,
        time: &str,
        index: u64,
        attributes: &str,
        body: &str,
    ) -> Self {
        self.records.push(format!(
            "<record type=\"{record_type}\" time=\"{time}\" recordIndex=\"{index}\" correlatorIndex=\"{}\"{attributes}>\n{body}\n</record>\n",
            index - 1
        ));
        self
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn build(&self) -> String {
        let bridge = self
            .call_bridge
            .as_ref()
            .map(|b| format!(" callBridge=\"{b}\""))
            .unwrap_or_default();
        format!(
            "<?xml version=\"1.0\"?>\n<records session=\"{}\"{bridge}>\n{}</records>\n",
            self.session,
            self.records.concat()
        )
    }
}

/// The body of a callStart record.
pub fn call_start(call: &str, name: &str) -> String {
    format!("<call id=\"{call}\">\n<name>{name}</name>\n<callType>coSpace</callType>\n</call>")
}

/// The body of a callEnd record.
pub fn call_end(call: &str, legs: u32, duration_s: u32) -> String {
    format!(
        "<call id=\"{call}\">\n<callLegsCompleted>{legs}</callLegsCompleted>\n<callLegsMaxActive>{legs}</callLegsMaxActive>\n<durationSeconds>{duration_s}</durationSeconds>\n</call>"
    )
}

/// The body of a callLegStart record of a SIP leg already in `call`.
pub fn leg_start(
    leg: &str,
    call: &str,
    remote: &str,
    local: &str,
    display: &str,
    direction: &str,
) -> String {
    format!(
        "<callLeg id=\"{leg}\">\n<displayName>{display}</displayName>\n<remoteParty>{remote}</remoteParty>\n<localAddress>{local}</localAddress>\n<type>sip</type>\n<direction>{direction}</direction>\n<call>{call}</call>\n</callLeg>"
    )
}

/// The body of a callLegUpdate record saying the leg connected to `call`.
pub fn leg_connected(leg: &str, call: &str) -> String {
    format!("<callLeg id=\"{leg}\">\n<state>connected</state>\n<call>{call}</call>\n</callLeg>")
}

/// The body of a callLegEnd record with an audio stream each way.
pub fn leg_end(leg: &str, reason: &str, duration_s: u32) -> String {
    format!(
        "<callLeg id=\"{leg}\">\n<reason>{reason}</reason>\n<remoteTeardown>{}</remoteTeardown>\n<durationSeconds>{duration_s}</durationSeconds>\n<rxAudio>\n<codec>opus</codec>\n</rxAudio>\n<txAudio>\n<codec>opus</codec>\n</txAudio>\n</callLeg>",
        reason == "remoteTeardown"
    )
}

/// A console user with this password.
pub fn add_user(server: &TestServer, name: &str, role: cdrhub_model::Role, password: &str) {
    let hash = cdrhub_server::auth::hash_password(password).unwrap();
    server
        .with_accounts(|a| a.add_user(name, role, &hash))
        .unwrap();
}

/// The hidden CSRF field of the first form on a page.
pub fn csrf_of(html: &str) -> String {
    let start = html.find(r#"name="csrf" value=""#).expect("a CSRF field") + 19;
    html[start..].split('"').next().unwrap().to_owned()
}

/// Opens the login page and posts the form as a browser would.
pub async fn log_in(client: &mut Client, user: &str, password: &str) -> Reply {
    let page = client.get("/login").await;
    assert_eq!(page.status, hyper::StatusCode::OK);
    let csrf = csrf_of(&page.text());
    client
        .post_form(
            "/login",
            &[("user", user), ("password", password), ("csrf", &csrf)],
        )
        .await
}

/// A client signed in as `user`, as a browser after the login form.
pub async fn signed_in(server: &TestServer, user: &str, password: &str) -> Client {
    let mut client = Client::plain(server.http_addr);
    let r = log_in(&mut client, user, password).await;
    assert_eq!(r.status, hyper::StatusCode::SEE_OTHER, "{user} logs in");
    client
}

/// Starts the machine's NATS server (JetStream, 127.0.0.1:4222) if it does
/// not answer, as the machine's own start command does.
pub fn ensure_nats() {
    let up = || std::net::TcpStream::connect("127.0.0.1:4222").is_ok();
    if up() {
        return;
    }
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
    for _ in 0..100 {
        if up() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("NATS does not answer on 127.0.0.1:4222 and could not be started");
}

/// The packets of `tests/data/hep/kamailio-uac-uas.hepstream`.
pub fn kamailio_packets() -> Vec<Vec<u8>> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/hep/kamailio-uac-uas.hepstream"
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

/// What a sender that trickles its bytes saw: how many it sent before the
/// server closed the connection, and what the server sent back meanwhile.
pub struct Trickled {
    pub sent: usize,
    pub got: Vec<u8>,
}

/// Sends `bytes` on `stream` one at a time, one every `every`, reading
/// what comes back, until all are sent, the server closes the connection,
/// or what came back satisfies `enough`.
pub async fn trickle(
    stream: &mut TcpStream,
    bytes: &[u8],
    every: Duration,
    enough: impl Fn(&[u8]) -> bool,
) -> Trickled {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut reader, mut writer) = stream.split();
    let mut out = Trickled {
        sent: 0,
        got: Vec::new(),
    };
    let mut buf = [0u8; 1024];
    for byte in bytes {
        tokio::select! {
            n = reader.read(&mut buf) => {
                match n {
                    Ok(0) | Err(_) => break,
                    Ok(n) => out.got.extend_from_slice(&buf[..n]),
                }
                if enough(&out.got) {
                    break;
                }
            }
            _ = tokio::time::sleep(every) => {
                if writer.write_all(&[*byte]).await.is_err() {
                    break;
                }
                out.sent += 1;
            }
        }
    }
    out
}

/// A call-event WebSocket feed of sender `system`, opened with the test's
/// API token.
pub async fn events_websocket(
    server: &TestServer,
    system: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{}/api/v1/events/ws?system={system}", server.http_addr)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Authorization",
        format!("Bearer {}", server.token).parse().unwrap(),
    );
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

impl TestServer {
    /// A server with the HEP listener on `config` (enabled, on free
    /// loopback ports).
    pub async fn with_hep(config: cdrhub_server::sources::hep::HepSourceConfig) -> TestServer {
        TestServer::start_with(Options {
            hep: Some(cdrhub_server::sources::hep::HepSourceConfig {
                enabled: true,
                ..config
            }),
            ..Options::default()
        })
        .await
    }
}
