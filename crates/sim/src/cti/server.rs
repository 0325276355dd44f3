//! The listener, the registry of client connections and the broadcast of
//! call events to every open session.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use cdrhub_protocols::cti::{CtiMessage, encode};
use tokio::net::TcpListener;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::config::SimConfig;
use super::{generator, session};

/// A simulated CTI server; see the [module documentation](super).
pub struct Server;

/// The TLS side of a simulator speaking the secured connection: a PEM
/// certificate chain and its private key.
pub fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("cannot read the certificate {}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("cannot read the private key {}", key.display()))?;
    let config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the certificate and key do not make a TLS server")?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

impl Server {
    /// Listens on `config.listen` and starts accepting clients and, once a
    /// session is open, making calls. Must be called within a Tokio
    /// runtime; the server runs on it until [`SimHandle::stop`] (or until
    /// the handle is dropped).
    pub fn start(config: SimConfig) -> anyhow::Result<SimHandle> {
        Server::start_with_tls(config, None)
    }

    /// As [`Server::start`], speaking TLS with `tls` (the secured CTI
    /// connection of UCCE 12 and later) when given.
    pub fn start_with_tls(
        config: SimConfig,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> anyhow::Result<SimHandle> {
        config.check()?;
        let runtime = tokio::runtime::Handle::try_current()
            .context("the CTI simulator must be started within a Tokio runtime")?;
        let listener = std::net::TcpListener::bind(config.listen)
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        listener.set_nonblocking(true)?;
        let listener = {
            let _entered = runtime.enter();
            TcpListener::from_std(listener)?
        };
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(&config));
        let accept = runtime.spawn(accept(Arc::clone(&shared), listener, tls));
        let generator = runtime.spawn(generator::run(Arc::clone(&shared), config));
        tracing::info!(%addr, "CTI simulator listening");
        Ok(SimHandle {
            addr,
            shared,
            accept,
            generator,
        })
    }
}

/// A running simulator. Dropping it stops it, as [`SimHandle::stop`] does
/// without waiting.
pub struct SimHandle {
    /// The address it listens on.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
    generator: JoinHandle<()>,
}

impl SimHandle {
    /// Stops listening and making calls, and closes every connection.
    pub async fn stop(mut self) {
        self.accept.abort();
        self.generator.abort();
        // Aborted tasks end with a cancellation, which is what stop asks.
        let _ = (&mut self.accept).await;
        let _ = (&mut self.generator).await;
        self.drop_connections().await;
    }

    /// Makes this node the standby (`true`) or the master of its pair. A
    /// standby answers OPEN_REQ with FAILURE_CONF E_CTI_SERVER_NOT_MASTER
    /// and closes the connection; sessions already open stay open.
    pub fn set_standby(&self, standby: bool) {
        self.shared.standby.store(standby, Ordering::SeqCst);
    }

    /// Closes every client connection at once, as a restart of the server
    /// would, and keeps listening. Returns when they are closed.
    pub async fn drop_connections(&self) {
        let tasks = self.shared.take_connections();
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            // The connection's socket closes as its task is dropped.
            let _ = task.await;
        }
    }

    pub fn stats(&self) -> SimStats {
        self.shared.stats()
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.accept.abort();
        self.generator.abort();
        for task in self.shared.take_connections() {
            task.abort();
        }
    }
}

/// What the simulator has done since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    /// TCP connections accepted.
    pub connections_accepted: u64,
    /// Sessions opened (OPEN_CONF sent).
    pub sessions_opened: u64,
    /// Sessions open now.
    pub sessions_open: u64,
    /// Frames written to clients: confirmations and events.
    pub messages_sent: u64,
    /// Calls started (a transfer or a conference is one call, of two CTI
    /// call ids).
    pub calls_started: u64,
    /// HEARTBEAT_REQs answered.
    pub heartbeats_answered: u64,
    /// Connections closed because the client did not read its events.
    pub slow_clients_dropped: u64,
}

impl fmt::Display for SimStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} calls started, {} messages sent, {} sessions open ({} opened, {} connections \
             accepted), {} heartbeats answered, {} slow clients dropped",
            self.calls_started,
            self.messages_sent,
            self.sessions_open,
            self.sessions_opened,
            self.connections_accepted,
            self.heartbeats_answered,
            self.slow_clients_dropped
        )
    }
}

/// State shared by the listener, the connections and the calls.
pub(super) struct Shared {
    pub(super) standby: AtomicBool,
    /// Frames a connection may have waiting (`SimConfig::queue_frames`).
    pub(super) queue_frames: usize,
    pub(super) counters: Counters,
    connections: Mutex<Connections>,
    /// The number of open sessions: calls wait for one.
    open_sessions: watch::Sender<usize>,
}

#[derive(Default)]
pub(super) struct Counters {
    pub(super) connections_accepted: AtomicU64,
    pub(super) sessions_opened: AtomicU64,
    pub(super) messages_sent: AtomicU64,
    pub(super) calls_started: AtomicU64,
    pub(super) heartbeats_answered: AtomicU64,
    pub(super) slow_clients_dropped: AtomicU64,
}

impl Counters {
    pub(super) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

#[derive(Default)]
struct Connections {
    next_id: u64,
    by_id: HashMap<u64, Connection>,
}

struct Connection {
    peer: SocketAddr,
    task: JoinHandle<()>,
    session: Option<Session>,
}

/// An open session: its protocol version and the queue of frames its
/// connection writes.
struct Session {
    version: u32,
    frames: mpsc::Sender<Bytes>,
}

impl Shared {
    fn new(config: &SimConfig) -> Shared {
        Shared {
            standby: AtomicBool::new(config.standby),
            queue_frames: config.queue_frames,
            counters: Counters::default(),
            connections: Mutex::new(Connections::default()),
            open_sessions: watch::Sender::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Connections> {
        // The registry stays consistent even if a holder panicked: every
        // change to it is a single insert or remove.
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn publish_open(&self, connections: &Connections) {
        let open = connections
            .by_id
            .values()
            .filter(|c| c.session.is_some())
            .count();
        self.open_sessions.send_if_modified(|n| {
            let changed = *n != open;
            *n = open;
            changed
        });
    }

    /// A receiver of the number of open sessions.
    pub(super) fn open_sessions(&self) -> watch::Receiver<usize> {
        self.open_sessions.subscribe()
    }

    /// Starts sending events to connection `id` in `version`. False if the
    /// connection was closed meanwhile (by [`SimHandle::drop_connections`]).
    pub(super) fn open_session(&self, id: u64, version: u32, frames: mpsc::Sender<Bytes>) -> bool {
        let mut connections = self.lock();
        let Some(connection) = connections.by_id.get_mut(&id) else {
            return false;
        };
        connection.session = Some(Session { version, frames });
        self.publish_open(&connections);
        true
    }

    /// Stops sending events to connection `id`.
    pub(super) fn close_session(&self, id: u64) {
        let mut connections = self.lock();
        if let Some(connection) = connections.by_id.get_mut(&id)
            && connection.session.take().is_some()
        {
            self.publish_open(&connections);
        }
    }

    /// Forgets connection `id`: its task is ending.
    pub(super) fn forget(&self, id: u64) {
        let mut connections = self.lock();
        if let Some(connection) = connections.by_id.remove(&id)
            && connection.session.is_some()
        {
            self.publish_open(&connections);
        }
    }

    /// Every connection's task, leaving the registry empty.
    fn take_connections(&self) -> Vec<JoinHandle<()>> {
        let mut connections = self.lock();
        let taken = std::mem::take(&mut connections.by_id);
        self.publish_open(&connections);
        taken.into_values().map(|c| c.task).collect()
    }

    /// Queues `message` to every open session, encoded once per protocol
    /// version. A session whose queue is full is disconnected: a client
    /// that does not keep up must not hold up the others.
    pub(super) fn broadcast(&self, message: &CtiMessage) {
        let mut encoded: Vec<(u32, Bytes)> = Vec::with_capacity(1);
        let mut slow: Vec<(SocketAddr, JoinHandle<()>)> = Vec::new();
        {
            let mut connections = self.lock();
            let mut full: Vec<u64> = Vec::new();
            for (id, connection) in &connections.by_id {
                let Some(session) = &connection.session else {
                    continue;
                };
                let frame = match encoded.iter().find(|(v, _)| *v == session.version) {
                    Some((_, frame)) => frame.clone(),
                    None => {
                        let frame = Bytes::from(encode(message, session.version));
                        encoded.push((session.version, frame.clone()));
                        frame
                    }
                };
                match session.frames.try_send(frame) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => full.push(*id),
                    // The connection is ending; it forgets itself.
                    Err(TrySendError::Closed(_)) => {}
                }
            }
            for id in full {
                if let Some(connection) = connections.by_id.remove(&id) {
                    slow.push((connection.peer, connection.task));
                }
            }
            if !slow.is_empty() {
                self.publish_open(&connections);
            }
        }
        for (peer, task) in slow {
            tracing::warn!(
                %peer,
                waiting = self.queue_frames,
                "CTI client disconnected: it does not read its events"
            );
            Counters::add(&self.counters.slow_clients_dropped, 1);
            task.abort();
        }
    }

    fn stats(&self) -> SimStats {
        let c = &self.counters;
        let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
        SimStats {
            connections_accepted: get(&c.connections_accepted),
            sessions_opened: get(&c.sessions_opened),
            sessions_open: *self.open_sessions.borrow() as u64,
            messages_sent: get(&c.messages_sent),
            calls_started: get(&c.calls_started),
            heartbeats_answered: get(&c.heartbeats_answered),
            slow_clients_dropped: get(&c.slow_clients_dropped),
        }
    }
}

/// Accepts clients until the simulator stops; a failed accept (out of file
/// descriptors, say) is logged and the listener lives on.
async fn accept(
    shared: Arc<Shared>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                Counters::add(&shared.counters.connections_accepted, 1);
                // Events are small and must not wait for more to fill a packet.
                let _ = stream.set_nodelay(true);
                // The task is registered before it can forget itself: it
                // takes this lock to do so.
                let mut connections = shared.lock();
                let id = connections.next_id;
                connections.next_id += 1;
                let (shared2, tls) = (Arc::clone(&shared), tls.clone());
                let task = tokio::spawn(async move {
                    let stream: session::Stream = match tls {
                        None => Box::new(stream),
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(s) => Box::new(s),
                            Err(e) => {
                                tracing::warn!(%peer, error = %e, "CTI client's TLS handshake failed");
                                shared2.forget(id);
                                return;
                            }
                        },
                    };
                    session::run(shared2, id, stream, peer).await
                });
                connections.by_id.insert(
                    id,
                    Connection {
                        peer,
                        task,
                        session: None,
                    },
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot accept a CTI client");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
