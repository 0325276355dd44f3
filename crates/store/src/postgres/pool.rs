//! A small blocking pool of PostgreSQL connections.
//!
//! The store's API is blocking and is called from blocking threads, so the
//! pool hands out the synchronous `postgres::Client` (each drives its own
//! connection). At most `max_connections` are open at once; a caller waits
//! for one to come back, up to [`CHECKOUT_WAIT`]. A connection that closed is
//! forgotten when it comes back, and one that sat idle is checked before it
//! is handed out again, so a restarted server costs one failed call at most.
//!
//! TLS (rustls, ring provider): with `sslmode=require` (or libpq's
//! `verify-full`) the server's certificate is always verified, against the
//! PEM file named by `sslrootcert` or else the system's trusted roots.
//! Without it (`disable`, and `prefer`, the default) the connection is plain:
//! libpq's `prefer` and `require` encrypt without checking who answers,
//! which is no protection against whoever can intercept, so we do not offer
//! that.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ::postgres::config::{Host, SslMode};
use ::postgres::{Client, Config, NoTls};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::StoreError;

/// How long a caller waits for a free connection before the store counts as
/// unavailable.
const CHECKOUT_WAIT: Duration = Duration::from_secs(30);
/// A connection idle for longer is checked with an empty query before it is
/// handed out: the server may have closed it (restart, idle timeout) without
/// the client knowing.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(30);
/// How long that check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// Used when the connection string sets no `connect_timeout`: without one a
/// dead address would hold a caller for the system's TCP timeout (minutes).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A pool of connections to one PostgreSQL database. Cloning it shares the
/// connections.
#[derive(Clone)]
pub struct PgPool {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    /// Set when the connection string requires TLS.
    tls: Option<MakeRustlsConnect>,
    /// The server and database, for messages (never the password).
    server: String,
    max_connections: usize,
    state: Mutex<State>,
    /// Signalled when a connection comes back or a slot frees up.
    returned: Condvar,
}

struct State {
    /// Open connections not in use, with when each came back.
    idle: Vec<(Client, Instant)>,
    /// Connections open or being opened, in use or idle.
    open: usize,
}

impl PgPool {
    /// Parses `url` (`postgres://user:password@host:port/database?options`,
    /// or libpq's `key=value` form) and opens a first connection, so a wrong
    /// address or password shows at once. `sslrootcert=FILE` in a URL names
    /// the PEM file of the certificates to trust for `sslmode=require`.
    pub fn connect(url: &str, max_connections: usize) -> Result<PgPool, StoreError> {
        let (url, root_file) = split_root_cert(url)?;
        let mut config: Config = url.parse().map_err(|e: ::postgres::Error| {
            // The cause names the option or position, never a password.
            let why =
                std::error::Error::source(&e).map_or_else(|| e.to_string(), |c| c.to_string());
            StoreError::Open(format!("invalid PostgreSQL connection string: {why}"))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("cdrhub");
        }
        let server = describe(&config);
        let tls = match config.get_ssl_mode() {
            SslMode::Require => Some(tls_connector(root_file)?),
            _ if root_file.is_some() => {
                return Err(StoreError::Open(format!(
                    "sslrootcert is set for the PostgreSQL server at {server} but sslmode \
                     is not require: the connection would not use TLS"
                )));
            }
            _ => {
                config.ssl_mode(SslMode::Disable);
                None
            }
        };
        let pool = PgPool {
            inner: Arc::new(Inner {
                config,
                tls,
                server,
                max_connections: max_connections.max(1),
                state: Mutex::new(State {
                    idle: Vec::new(),
                    open: 0,
                }),
                returned: Condvar::new(),
            }),
        };
        drop(pool.get()?);
        Ok(pool)
    }

    /// A connection for the caller's use; it goes back to the pool when
    /// dropped. Waits while all are in use.
    pub fn get(&self) -> Result<PgConnection, StoreError> {
        let deadline = Instant::now() + CHECKOUT_WAIT;
        loop {
            let idle = {
                let mut state = self.inner.lock();
                loop {
                    if let Some(idle) = state.idle.pop() {
                        break Some(idle);
                    }
                    if state.open < self.inner.max_connections {
                        state.open += 1;
                        break None;
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(StoreError::Unavailable(format!(
                            "all {} connections to the PostgreSQL server at {} stayed busy for {}s",
                            self.inner.max_connections,
                            self.inner.server,
                            CHECKOUT_WAIT.as_secs()
                        )));
                    }
                    state = self
                        .inner
                        .returned
                        .wait_timeout(state, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            };
            // The slot is ours now; the network is used without the lock.
            match idle {
                Some((mut client, since)) => {
                    let stale = client.is_closed()
                        || (since.elapsed() > CHECK_AFTER_IDLE
                            && client.is_valid(CHECK_TIMEOUT).is_err());
                    if stale {
                        self.inner.forget();
                        continue;
                    }
                    return Ok(self.connection(client));
                }
                None => match self.inner.open_client() {
                    Ok(client) => return Ok(self.connection(client)),
                    Err(e) => {
                        self.inner.forget();
                        return Err(e);
                    }
                },
            }
        }
    }

    /// The store's error for a failed call on one of this pool's
    /// connections: the server is unavailable, named in the message.
    pub fn error(&self, e: ::postgres::Error) -> StoreError {
        let server = &self.inner.server;
        StoreError::Unavailable(if e.as_db_error().is_some() {
            format!(
                "the PostgreSQL server at {server} refused a query: {}",
                reason(&e)
            )
        } else {
            format!(
                "lost the connection to the PostgreSQL server at {server}: {}",
                reason(&e)
            )
        })
    }

    /// The server and database this pool connects to, for messages.
    pub fn server(&self) -> &str {
        &self.inner.server
    }

    fn connection(&self, client: Client) -> PgConnection {
        PgConnection {
            pool: Arc::clone(&self.inner),
            client: Some(client),
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a list and a count changed in single steps: still
        // consistent after a panic elsewhere.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn open_client(&self) -> Result<Client, StoreError> {
        let opened = match &self.tls {
            Some(tls) => self.config.connect(tls.clone()),
            None => self.config.connect(NoTls),
        };
        opened.map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot connect to the PostgreSQL server at {}: {}",
                self.server,
                reason(&e)
            ))
        })
    }

    /// A connection was closed or never opened: its slot is free.
    fn forget(&self) {
        self.lock().open -= 1;
        self.returned.notify_one();
    }
}

/// A connection of a [`PgPool`], in use until dropped.
pub struct PgConnection {
    pool: Arc<Inner>,
    /// Always set until drop.
    client: Option<Client>,
}

impl std::ops::Deref for PgConnection {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client.as_ref().expect("set until drop")
    }
}

impl std::ops::DerefMut for PgConnection {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("set until drop")
    }
}

impl Drop for PgConnection {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        if client.is_closed() {
            self.pool.forget();
            drop_clients(vec![client]);
        } else {
            self.pool.lock().idle.push((client, Instant::now()));
            self.pool.returned.notify_one();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        drop_clients(state.idle.drain(..).map(|(c, _)| c).collect());
    }
}

/// Closes clients. Closing one blocks on its own small runtime, which
/// cannot run on a thread that drives an async runtime (the last user of a
/// store may be one): there, they close on a thread of their own.
fn drop_clients(clients: Vec<Client>) {
    if clients.is_empty() {
        return;
    }
    if tokio::runtime::Handle::try_current().is_ok() {
        let _ = std::thread::Builder::new()
            .name("cdrhub-pg-close".into())
            .spawn(move || drop(clients));
    } else {
        drop(clients);
    }
}

/// What went wrong, in one line: the server's own message, or the driver's
/// with its causes (its `Display` shows only the kind, "db error").
fn reason(e: &::postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// `host:port` of each server the configuration names, and the database.
fn describe(config: &Config) -> String {
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            // One port for every host, or one each; 5432 when none is given.
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match host {
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(dir) => format!("{}/.s.PGSQL.{port}", dir.display()),
            }
        })
        .collect();
    let hosts = if hosts.is_empty() {
        "localhost".to_owned()
    } else {
        hosts.join(",")
    };
    match config.get_dbname() {
        Some(db) => format!("{hosts} (database {db:?})"),
        None => hosts,
    }
}

/// Takes `sslrootcert` out of a URL's query, which the driver does not
/// know, and reads libpq's `sslmode=verify-full` as `require` (which
/// verifies here). The `key=value` form is passed through as it is.
fn split_root_cert(url: &str) -> Result<(String, Option<PathBuf>), StoreError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), None));
    };
    if !(base.starts_with("postgres://") || base.starts_with("postgresql://")) {
        return Ok((url.to_owned(), None));
    }
    let mut root_file = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslrootcert", value)) => {
                root_file = Some(PathBuf::from(percent_decode(value).ok_or_else(|| {
                    StoreError::Open("sslrootcert in the PostgreSQL URL is not valid UTF-8".into())
                })?));
            }
            Some(("sslmode", "verify-full")) => kept.push("sslmode=require"),
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, root_file))
}

/// Decodes `%XX` escapes (RFC 3986, section 2.1).
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// A TLS connector that trusts the certificates in `root_file`, or the
/// system's roots, with the ring provider given here rather than rustls'
/// process default, which need not be installed.
fn tls_connector(root_file: Option<PathBuf>) -> Result<MakeRustlsConnect, StoreError> {
    let mut roots = rustls::RootCertStore::empty();
    match &root_file {
        Some(path) => {
            let unreadable = |e: &dyn std::fmt::Display| {
                StoreError::Open(format!(
                    "cannot read the PostgreSQL root certificates {}: {e}",
                    path.display()
                ))
            };
            let certs = CertificateDer::pem_file_iter(path).map_err(|e| unreadable(&e))?;
            for cert in certs {
                let cert = cert.map_err(|e| unreadable(&e))?;
                roots.add(cert).map_err(|e| unreadable(&e))?;
            }
        }
        None => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
    }
    if roots.is_empty() {
        return Err(StoreError::Open(match &root_file {
            Some(path) => format!("no certificate in {}", path.display()),
            None => "sslmode=require but the system has no trusted root certificates: \
                     name a PEM file with sslrootcert"
                .to_owned(),
        }));
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| StoreError::Open(format!("cannot set up TLS: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_certificate_is_taken_out_of_the_url() {
        let (url, root) = split_root_cert(
            "postgres://u:p@db:5432/cdr?sslmode=verify-full&sslrootcert=%2Fetc%2Fca%20x.pem&connect_timeout=3",
        )
        .unwrap();
        assert_eq!(
            url,
            "postgres://u:p@db:5432/cdr?sslmode=require&connect_timeout=3"
        );
        assert_eq!(root, Some(PathBuf::from("/etc/ca x.pem")));
        let (url, root) = split_root_cert("postgres://db/cdr?sslrootcert=ca.pem").unwrap();
        assert_eq!(
            (url.as_str(), root),
            ("postgres://db/cdr", Some("ca.pem".into()))
        );
        let kv = "host=db sslmode=require";
        assert_eq!(split_root_cert(kv).unwrap(), (kv.to_owned(), None));
    }

    #[test]
    fn messages_name_the_server_and_database_but_not_the_password() {
        let config: Config = "postgres://u:secret@db1:5433,db2/cdr".parse().unwrap();
        let text = describe(&config);
        assert_eq!(text, "db1:5433,db2:5432 (database \"cdr\")");
    }

    #[test]
    fn a_bad_connection_string_is_named_without_its_password() {
        for (url, says) in [
            ("postgres://u:secret@h/db?colour=red", "colour"),
            ("postgres://u:secret@h/db?sslmode=verify-ca", "sslmode"),
        ] {
            match PgPool::connect(url, 1) {
                Err(StoreError::Open(message)) => {
                    assert!(message.contains(says), "{message}");
                    assert!(!message.contains("secret"), "{message}");
                }
                other => panic!("{:?}", other.err()),
            }
        }
    }

    #[test]
    fn a_root_certificate_without_tls_is_refused() {
        let refused = PgPool::connect("postgres://127.0.0.1:1/x?sslrootcert=ca.pem", 1);
        assert!(matches!(refused, Err(StoreError::Open(_))));
    }
}
