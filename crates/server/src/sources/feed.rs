//! The gateway event feed (issue 5; docs/gateway-feed.md): VoIP port
//! gateways log in over TCP or UDP and send every call event as it happens,
//! one `GWFEED/1` line at a time. Each line is answered `OK` once it is
//! committed, `ERR` when it is not taken.
//!
//! The server keeps one session per gateway (id and MAC) and the gateway
//! log of seed 001: Login, Re-Login, Relogin Kickout, Gateway Disconnect,
//! Bad Packet and Logout, written with the lines that caused them. A bad
//! line is counted, answered and logged at most once per source address
//! every 10 seconds; it never ends a connection or a session.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use cdrhub_model::Timestamp;
use cdrhub_protocols::feed::{
    self, FeedBody, FeedError, FeedMessage, FeedReply, GatewayClock, MAX_LINE_LEN,
    SESSION_TIMEOUT_SECS,
};
use cdrhub_store::{
    FeedIngest, FeedIngestLine, GatewayLogEntry, GatewayLogKind, GatewayRegistration, IngestBatch,
    IngestPayload,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tracing::{info, warn};

use crate::AppState;
use crate::sources::guard::Limiter;

/// `[sources.feed]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedSourceConfig {
    /// Listen for gateways. Default false.
    #[serde(default)]
    pub enabled: bool,
    /// TCP address and port. Default `0.0.0.0:6090`.
    #[serde(default = "default_listen")]
    pub tcp_listen: SocketAddr,
    /// UDP address and port. Default `0.0.0.0:6090`.
    #[serde(default = "default_listen")]
    pub udp_listen: SocketAddr,
    /// TLS address and port, beside the plain TCP one, with the
    /// certificate and key of `[https]`. Default none.
    #[serde(default)]
    pub tls_listen: Option<SocketAddr>,
    /// TCP connections open at once at most (plain and TLS together); more
    /// are closed at once.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// The addresses or subnets gateways send from (TCP and UDP); empty:
    /// all. Lines from elsewhere are dropped unanswered.
    #[serde(default)]
    pub allow: super::guard::AllowList,
    /// Seconds without a line after which a session ends with "Gateway
    /// Disconnect" (and its TCP connection is closed). Default 90: three
    /// of the gateways' 30-second keep-alive intervals.
    #[serde(default = "default_session_timeout_s")]
    pub session_timeout_s: u64,
}

impl Default for FeedSourceConfig {
    fn default() -> Self {
        FeedSourceConfig {
            enabled: false,
            tcp_listen: default_listen(),
            udp_listen: default_listen(),
            tls_listen: None,
            max_connections: default_max_connections(),
            allow: Default::default(),
            session_timeout_s: default_session_timeout_s(),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 6090))
}

fn default_max_connections() -> usize {
    1024
}

fn default_session_timeout_s() -> u64 {
    SESSION_TIMEOUT_SECS
}

/// The feed's counters, for `/api/v1/sources` and `/metrics`.
#[derive(Debug, Default, Serialize)]
pub struct FeedStatus {
    /// Lines read, good or bad.
    pub lines: AtomicU64,
    /// Lines answered `OK`.
    pub taken: AtomicU64,
    pub bad_packets: AtomicU64,
    /// Lines not taken because the store could not commit them.
    pub store_errors: AtomicU64,
    /// Gateways with a session now.
    pub online: AtomicU64,
    pub connections: AtomicU64,
    /// TCP connections and datagrams from an address outside `allow`.
    pub not_allowed: AtomicU64,
    /// TCP connections closed at once because `max_connections` were open.
    pub refused_connections: AtomicU64,
}

/// The feed's sockets, bound before the server starts.
pub struct FeedSockets {
    pub tcp: TcpListener,
    pub udp: UdpSocket,
    pub tls: Option<super::tls::TlsListener>,
}

/// Binds both sockets (so a busy port fails the start).
pub async fn bind(
    config: &FeedSourceConfig,
    tls: Option<&tokio_rustls::TlsAcceptor>,
) -> anyhow::Result<FeedSockets> {
    use anyhow::Context;
    let tcp = TcpListener::bind(config.tcp_listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen for the gateway feed on tcp {}",
                config.tcp_listen
            )
        })?;
    let udp = super::udp_socket(config.udp_listen, super::UDP_RECV_BUFFER).with_context(|| {
        format!(
            "cannot listen for the gateway feed on udp {}",
            config.udp_listen
        )
    })?;
    let tls = match config.tls_listen {
        Some(addr) => Some(super::tls::bind(addr, tls, "the gateway feed").await?),
        None => None,
    };
    Ok(FeedSockets { tcp, udp, tls })
}

/// How often sessions are checked for silence at most.
const REAP_EVERY: Duration = Duration::from_secs(5);
/// At most one Bad Packet log line per source address this often.
const BAD_LOG_EVERY: Duration = Duration::from_secs(10);
/// At most one `ERR` answer to a bad UDP line per source address this often.
const UDP_ERR_EVERY: Duration = Duration::from_secs(1);
/// UDP workers: sources answered at once at most.
const UDP_WORKERS: usize = 64;
/// Datagrams waiting for one worker at most; then reading waits.
const UDP_WORKER_QUEUE: usize = 256;
/// Lines of one source handled together at most.
const UDP_MAX_LINES: usize = 2_000;
/// The largest UDP answer datagram.
const MAX_REPLY_DATAGRAM: usize = 1400;

/// Serves the feed until `stop`.
pub async fn run(app: AppState, sockets: FeedSockets, stop: watch::Receiver<bool>) {
    let feed = Arc::new(Feed {
        app: app.clone(),
        sessions: Mutex::default(),
        bad_log: Mutex::new(Limiter::new(BAD_LOG_EVERY)),
        udp_err: Mutex::new(Limiter::new(UDP_ERR_EVERY)),
        refusals: Mutex::new(Limiter::new(BAD_LOG_EVERY)),
        allow: app.config.sources.feed.allow.clone(),
        next_id: AtomicU64::new(1),
        status: app.metrics.feed.clone(),
        timeout: Duration::from_secs(app.config.sources.feed.session_timeout_s.max(1)),
    });
    app.metrics
        .udp_socket(cdrhub_model::SOURCE_FEED, &sockets.udp);
    if let (Ok(t), Ok(u)) = (sockets.tcp.local_addr(), sockets.udp.local_addr()) {
        info!("listening for the gateway feed on tcp {t} and udp {u}");
    }
    let slots = Arc::new(Semaphore::new(app.config.sources.feed.max_connections));
    if let Some(tls) = sockets.tls {
        if let Ok(a) = tls.listener.local_addr() {
            info!("listening for the gateway feed on tls {a}");
        }
        tokio::spawn(feed.clone().accept(
            tls.listener,
            Some(tls.acceptor),
            slots.clone(),
            stop.clone(),
        ));
    }
    tokio::spawn(feed.clone().accept(sockets.tcp, None, slots, stop.clone()));
    tokio::spawn(feed.clone().serve_udp(Arc::new(sockets.udp), stop.clone()));
    feed.reap(stop).await;
}

/// A gateway's session, from its LOGIN to its LOGOUT, disconnect or
/// silence.
struct Session {
    /// The server's id of the login: the journal numbers lines within it.
    login: String,
    gateway_id: String,
    addr: SocketAddr,
    /// The TCP connection it logged in on, and what closes it.
    conn: Option<u64>,
    kick: Option<oneshot::Sender<()>>,
    last_heard: Instant,
    /// The LOGIN line, to know it again when a gateway sends it twice.
    login_line: String,
}

struct Feed {
    app: AppState,
    sessions: Mutex<HashMap<String, Session>>,
    bad_log: Mutex<Limiter>,
    udp_err: Mutex<Limiter>,
    /// Refused TCP connections, logged within this rate.
    refusals: Mutex<Limiter>,
    allow: super::guard::AllowList,
    next_id: AtomicU64,
    status: Arc<FeedStatus>,
    /// Silence that ends a session.
    timeout: Duration,
}

/// What a run of lines from one place knows of where it comes from.
struct Origin {
    from: SocketAddr,
    /// The TCP connection, none over UDP.
    conn: Option<u64>,
    /// The gateway this TCP connection logged in as.
    gateway: Option<String>,
    /// What closes this TCP connection when its gateway logs in elsewhere.
    kick: Option<oneshot::Sender<()>>,
    /// The gateway logged out: close the connection after the answers.
    logged_out: bool,
}

/// A line as read: its text, or why it cannot be read.
type ReadLine = Result<String, FeedError>;

/// Lines waiting for one commit, with the answers they will get.
#[derive(Default)]
struct Pending {
    gateway: String,
    ingest: FeedIngest,
    /// (answer slot, seq) of each line.
    slots: Vec<(usize, u32)>,
}

impl Feed {
    /// Keeps the gauge of gateways online true after `sessions` changed.
    fn count_online(&self, sessions: &HashMap<String, Session>) {
        self.status
            .online
            .store(sessions.len() as u64, Ordering::Relaxed);
    }

    fn now_and_counter(&self) -> (Timestamp, u64) {
        (
            Timestamp::now(),
            self.next_id.fetch_add(1, Ordering::Relaxed),
        )
    }

    /// Answers a run of lines from one place, one answer (or none, for a
    /// bad UDP line past its rate) per line, in order. Lines are committed
    /// together where they can be.
    async fn handle(&self, lines: Vec<ReadLine>, origin: &mut Origin) -> Vec<Option<FeedReply>> {
        let mut replies: Vec<Option<FeedReply>> = vec![None; lines.len()];
        let mut pending = Pending::default();
        for (slot, line) in lines.into_iter().enumerate() {
            self.status.lines.fetch_add(1, Ordering::Relaxed);
            let parsed = line.and_then(|text| feed::parse_line(&text).map(|m| (text, m)));
            let (text, message) = match parsed {
                Ok(ok) => ok,
                Err(e) => {
                    replies[slot] = self.bad_packet(&e, origin, &mut pending);
                    continue;
                }
            };
            let name = message.gateway.to_string();
            let seq = message.seq;
            match &message.body {
                FeedBody::Login(_) => {
                    self.flush(&mut pending, &mut replies).await;
                    replies[slot] = Some(self.login(text, message, origin).await);
                }
                _ if !self.is_logged_in(&name, origin) => {
                    replies[slot] = Some(FeedReply::Err {
                        seq: Some(seq),
                        reason: "not logged in".into(),
                    });
                }
                FeedBody::KeepAlive { .. } => {
                    replies[slot] = Some(FeedReply::Ok { seq });
                    self.status.taken.fetch_add(1, Ordering::Relaxed);
                }
                FeedBody::Logout { .. } => {
                    self.flush(&mut pending, &mut replies).await;
                    replies[slot] = Some(self.logout(text, message, origin).await);
                }
                FeedBody::Call(_) => {
                    let login = self.login_of(&name);
                    if pending.gateway != name || pending.ingest.login != login {
                        self.flush(&mut pending, &mut replies).await;
                        pending.gateway = name;
                        pending.ingest.login = login;
                    }
                    pending.ingest.lines.push(FeedIngestLine {
                        received_at: Timestamp::now(),
                        line: text,
                        message,
                    });
                    pending.slots.push((slot, seq));
                }
            }
        }
        self.flush(&mut pending, &mut replies).await;
        replies
    }

    /// Whether `name` has a session this line may use: over TCP, the one
    /// this connection opened. Any line counts as a sign of life.
    fn is_logged_in(&self, name: &str, origin: &Origin) -> bool {
        if origin.conn.is_some() && origin.gateway.as_deref() != Some(name) {
            return false;
        }
        let Ok(mut sessions) = self.sessions.lock() else {
            return false;
        };
        match sessions.get_mut(name) {
            Some(s) if origin.conn.is_none() || s.conn == origin.conn => {
                s.last_heard = Instant::now();
                if origin.conn.is_none() {
                    // A gateway behind NAT may change its UDP port.
                    s.addr = origin.from;
                }
                true
            }
            _ => false,
        }
    }

    fn login_of(&self, name: &str) -> String {
        self.sessions
            .lock()
            .ok()
            .and_then(|s| s.get(name).map(|s| s.login.clone()))
            .unwrap_or_default()
    }

    /// Commits what waits and fills in its answers.
    async fn flush(&self, pending: &mut Pending, replies: &mut [Option<FeedReply>]) {
        let p = std::mem::take(pending);
        if p.ingest.lines.is_empty() && p.ingest.log.is_empty() {
            return;
        }
        let sender = if p.gateway.is_empty() {
            "feed".to_owned()
        } else {
            p.gateway
        };
        let committed = self.submit(sender, p.ingest).await;
        for (slot, seq) in p.slots {
            replies[slot] = Some(if committed {
                self.status.taken.fetch_add(1, Ordering::Relaxed);
                FeedReply::Ok { seq }
            } else {
                self.status.store_errors.fetch_add(1, Ordering::Relaxed);
                store_unavailable(seq)
            });
        }
    }

    async fn submit(&self, sender: String, ingest: FeedIngest) -> bool {
        let batch = IngestBatch {
            sender,
            received_at: Timestamp::now(),
            payload: IngestPayload::Feed(ingest),
        };
        match crate::bus::submit(&self.app, batch).await {
            Ok(_) => true,
            Err(e) => {
                warn!(error = %e, "cannot commit gateway feed lines; answering ERR");
                false
            }
        }
    }

    /// Writes log lines on their own (disconnects, silence).
    async fn log_only(&self, log: Vec<GatewayLogEntry>) {
        let ingest = FeedIngest {
            log,
            ..FeedIngest::default()
        };
        self.submit("feed".into(), ingest).await;
    }

    /// A bad line: counted, answered (over UDP within its rate), and logged
    /// within its rate with the lines not logged since.
    fn bad_packet(
        &self,
        error: &FeedError,
        origin: &Origin,
        pending: &mut Pending,
    ) -> Option<FeedReply> {
        self.status.bad_packets.fetch_add(1, Ordering::Relaxed);
        let ip = origin.from.ip();
        if let Some(unlogged) = self.bad_log.lock().ok().and_then(|mut l| l.allow(ip)) {
            let name = origin.gateway.clone();
            let shown = name.as_deref().map_or("???", gateway_id_of);
            let mut text = format!(
                "Gateway[{shown}] from [{}] Bad Packet: {error}",
                origin.from
            );
            if unlogged > 0 {
                text.push_str(&format!(
                    " ({unlogged} more bad lines from {ip} not logged)"
                ));
            }
            pending.ingest.log.push(GatewayLogEntry {
                at: Timestamp::now(),
                gateway: name,
                kind: GatewayLogKind::BadPacket,
                address: origin.from.to_string(),
                text,
            });
        }
        let answer = origin.conn.is_some()
            || self
                .udp_err
                .lock()
                .ok()
                .and_then(|mut l| l.allow(ip))
                .is_some();
        answer.then(|| FeedReply::Err {
            seq: None,
            reason: error.to_string(),
        })
    }

    async fn login(&self, text: String, message: FeedMessage, origin: &mut Origin) -> FeedReply {
        let seq = message.seq;
        let FeedBody::Login(login) = &message.body else {
            return store_unavailable(seq);
        };
        let name = message.gateway.to_string();
        let id = message.gateway.id.clone();
        let from = origin.from;
        let (now, counter) = self.now_and_counter();
        let mut log = Vec::new();
        let previous = self.sessions.lock().ok().and_then(|mut sessions| {
            let s = sessions.get_mut(&name)?;
            // The same LOGIN again from the same place: its answer was lost.
            if s.login_line == text && s.addr == from && s.conn == origin.conn {
                s.last_heard = Instant::now();
                return Some(None);
            }
            Some(Some(s.addr))
        });
        match previous {
            Some(None) => return FeedReply::Ok { seq },
            Some(Some(old)) => {
                log.push(entry(
                    now,
                    &name,
                    GatewayLogKind::ReLogin,
                    from,
                    format!(
                        "Gateway[{id}] MAC[{}] From [{from}] Re-Login!",
                        message.gateway.mac
                    ),
                ));
                log.push(entry(
                    now,
                    &name,
                    GatewayLogKind::ReloginKickout,
                    old,
                    format!("Gateway[{id}] from [{old}] Relogin Kickout"),
                ));
            }
            None => {}
        }
        log.push(entry(
            now,
            &name,
            GatewayLogKind::Login,
            from,
            format!(
                "Gateway[{id}] MAC[{}] From [{from}] FXS({}) FXO({}) ISDN({}) CallRef({}) Time[{}] Login!",
                message.gateway.mac,
                login.fxs_ports,
                login.fxo_ports,
                login.isdn_channels,
                login.call_ref,
                seed_clock(&login.clock)
            ),
        ));
        let registration = GatewayRegistration {
            name: name.clone(),
            gateway_id: id.clone(),
            mac: message.gateway.mac.to_string(),
            address: from.to_string(),
            public_address: login.public_addr.map(|a| a.to_string()),
            fxs: login.fxs_ports,
            fxo: login.fxo_ports,
            isdn: login.isdn_channels,
            call_ref: login.call_ref,
            clock: login.clock.to_string(),
            clock_offset_s: match &login.clock {
                GatewayClock::Read(t) => Some((t.0 - now.0).div_euclid(1000)),
                GatewayClock::Unread(_) => None,
            },
            last_login: now,
        };
        let login_id = format!("{}-{counter}", now.0);
        let ingest = FeedIngest {
            login: login_id.clone(),
            lines: vec![FeedIngestLine {
                received_at: now,
                line: text.clone(),
                message,
            }],
            log,
            registration: Some(Box::new(registration)),
        };
        if !self.submit(name.clone(), ingest).await {
            self.status.store_errors.fetch_add(1, Ordering::Relaxed);
            return store_unavailable(seq);
        }
        let session = Session {
            login: login_id,
            gateway_id: id,
            addr: from,
            conn: origin.conn,
            kick: origin.kick.take(),
            last_heard: Instant::now(),
            login_line: text,
        };
        if let Ok(mut sessions) = self.sessions.lock() {
            if let Some(old) = sessions.insert(name.clone(), session) {
                if old.conn.is_some() && old.conn != origin.conn {
                    if let Some(kick) = old.kick {
                        let _ = kick.send(());
                    }
                } else if old.conn == origin.conn
                    && let Some(s) = sessions.get_mut(&name)
                    && s.kick.is_none()
                {
                    // The same connection logged in again: keep its kick.
                    s.kick = old.kick;
                }
            }
            self.count_online(&sessions);
        }
        origin.gateway = Some(name);
        self.status.taken.fetch_add(1, Ordering::Relaxed);
        FeedReply::Ok { seq }
    }

    async fn logout(&self, text: String, message: FeedMessage, origin: &mut Origin) -> FeedReply {
        let seq = message.seq;
        let name = message.gateway.to_string();
        let now = Timestamp::now();
        let ingest = FeedIngest {
            login: self.login_of(&name),
            log: vec![entry(
                now,
                &name,
                GatewayLogKind::Logout,
                origin.from,
                format!(
                    "[Logout: {}] [IP:{}] [Size:{}]",
                    message.gateway.id,
                    origin.from.ip(),
                    text.len()
                ),
            )],
            lines: vec![FeedIngestLine {
                received_at: now,
                line: text,
                message,
            }],
            registration: None,
        };
        if !self.submit(name.clone(), ingest).await {
            self.status.store_errors.fetch_add(1, Ordering::Relaxed);
            return store_unavailable(seq);
        }
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.remove(&name);
            self.count_online(&sessions);
        }
        origin.logged_out = origin.conn.is_some();
        self.status.taken.fetch_add(1, Ordering::Relaxed);
        FeedReply::Ok { seq }
    }

    /// Ends the sessions silent for longer than the session timeout.
    async fn reap(&self, mut stop: watch::Receiver<bool>) {
        let timeout = self.timeout;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(REAP_EVERY.min(timeout / 3)) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            let silent: Vec<(String, Session)> = match self.sessions.lock() {
                Ok(mut sessions) => {
                    let names: Vec<String> = sessions
                        .iter()
                        .filter(|(_, s)| s.last_heard.elapsed() > timeout)
                        .map(|(n, _)| n.clone())
                        .collect();
                    let gone = names
                        .into_iter()
                        .filter_map(|n| sessions.remove(&n).map(|s| (n, s)))
                        .collect();
                    self.count_online(&sessions);
                    gone
                }
                Err(_) => Vec::new(),
            };
            if silent.is_empty() {
                continue;
            }
            let now = Timestamp::now();
            let log = silent
                .into_iter()
                .map(|(name, s)| {
                    if let Some(kick) = s.kick {
                        let _ = kick.send(());
                    }
                    disconnect(now, Some(&name), &s.gateway_id, s.addr)
                })
                .collect();
            self.log_only(log).await;
        }
    }

    /// A TCP connection closed at once, logged within its rate.
    fn refusal_logged(&self, from: SocketAddr, why: &str) {
        if let Some(held) = self
            .refusals
            .lock()
            .ok()
            .and_then(|mut l| l.allow(from.ip()))
        {
            warn!(%from, more_not_logged = held, "gateway feed: TCP connection closed at once: {why}");
        }
    }

    async fn accept(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Option<tokio_rustls::TlsAcceptor>,
        slots: Arc<Semaphore>,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            let accepted = tokio::select! {
                r = listener.accept() => r,
                _ = stop.wait_for(|s| *s) => return,
            };
            let (stream, from) = match accepted {
                Ok(r) => r,
                Err(e) => {
                    warn!(error = %e, "gateway feed: cannot accept a connection; going on");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            if !self.allow.allows(from.ip()) {
                self.status.not_allowed.fetch_add(1, Ordering::Relaxed);
                self.refusal_logged(from, "its address is outside [sources.feed] allow");
                continue;
            }
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                // Full: the gateway tries again later.
                self.status
                    .refused_connections
                    .fetch_add(1, Ordering::Relaxed);
                self.refusal_logged(from, "[sources.feed] max_connections are open");
                drop(stream);
                continue;
            };
            // One answer per line: held back for a delayed ACK, they would
            // hold the gateway back.
            let _ = stream.set_nodelay(true);
            let feed = self.clone();
            let stop = stop.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                feed.status.connections.fetch_add(1, Ordering::Relaxed);
                match tls {
                    None => feed.connection(stream, from, stop).await,
                    Some(acceptor) => {
                        if let Some(stream) = super::tls::handshake(
                            &acceptor,
                            stream,
                            from,
                            super::tls::HANDSHAKE_TIMEOUT,
                        )
                        .await
                        {
                            feed.connection(stream, from, stop).await;
                        }
                    }
                }
                feed.status.connections.fetch_sub(1, Ordering::Relaxed);
                drop(slot);
            });
        }
    }

    /// One gateway's TCP connection: lines in, one answer per line out.
    async fn connection<S>(&self, mut stream: S, from: SocketAddr, mut stop: watch::Receiver<bool>)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let (kick_tx, mut kicked) = oneshot::channel();
        let mut origin = Origin {
            from,
            conn: Some(self.next_id.fetch_add(1, Ordering::Relaxed)),
            gateway: None,
            kick: Some(kick_tx),
            logged_out: false,
        };
        let mut reader = LineReader::default();
        let idle = self.timeout;
        let mut buf = [0u8; 8192];
        let mut was_kicked = false;
        // A whole line is due within a session timeout: a sender that
        // trickles bytes without ever finishing a line is closed too.
        let mut line_due = tokio::time::Instant::now() + idle;
        loop {
            let n = tokio::select! {
                r = tokio::time::timeout_at(line_due, stream.read(&mut buf)) => match r {
                    Ok(Ok(0)) | Ok(Err(_)) => break,
                    Ok(Ok(n)) => n,
                    // No line for a whole session timeout.
                    Err(_) => break,
                },
                _ = &mut kicked => { was_kicked = true; break }
                _ = stop.wait_for(|s| *s) => return,
            };
            let lines = reader.push(&buf[..n]);
            if lines.is_empty() {
                continue;
            }
            line_due = tokio::time::Instant::now() + idle;
            let replies = self.handle(lines, &mut origin).await;
            let mut out = String::new();
            for r in replies.into_iter().flatten() {
                out.push_str(&r.to_line());
                out.push('\n');
            }
            if stream.write_all(out.as_bytes()).await.is_err() {
                break;
            }
            if origin.logged_out {
                break;
            }
        }
        let _ = stream.shutdown().await;
        if was_kicked {
            return; // Its Relogin Kickout is in the log.
        }
        let name = origin.gateway.clone();
        // The session ends with the connection, unless it moved on.
        let ended = match &name {
            Some(n) => {
                let mut sessions = match self.sessions.lock() {
                    Ok(s) => s,
                    Err(_) => return,
                };
                let mine = sessions.get(n).is_some_and(|s| s.conn == origin.conn);
                if mine {
                    sessions.remove(n);
                }
                self.count_online(&sessions);
                mine || origin.logged_out
            }
            None => true,
        };
        if ended {
            let id = name.as_deref().map_or("???", gateway_id_of).to_owned();
            self.log_only(vec![disconnect(
                Timestamp::now(),
                name.as_deref(),
                &id,
                from,
            )])
            .await;
        }
    }

    /// Reads datagrams and hands each to the worker of its source address:
    /// one source's datagrams are answered in the order they came (a LOGIN
    /// before the events sent right after it), many sources at once.
    async fn serve_udp(self: Arc<Self>, socket: Arc<UdpSocket>, mut stop: watch::Receiver<bool>) {
        let workers: Vec<mpsc::Sender<Datagram>> = (0..UDP_WORKERS)
            .map(|_| {
                let (tx, rx) = mpsc::channel(UDP_WORKER_QUEUE);
                tokio::spawn(self.clone().udp_worker(socket.clone(), rx));
                tx
            })
            .collect();
        let mut buf = vec![0u8; 65_536];
        loop {
            let (len, from) = tokio::select! {
                r = socket.recv_from(&mut buf) => match r {
                    Ok(r) => r,
                    Err(e) => {
                        warn!(error = %e, "gateway feed: UDP socket error; going on");
                        continue;
                    }
                },
                _ = stop.wait_for(|s| *s) => return,
            };
            if !self.allow.allows(from.ip()) {
                self.status.not_allowed.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let lines: Vec<ReadLine> = feed::split_datagram(&buf[..len])
                .map(|l| l.map(str::to_owned))
                .collect();
            if lines.is_empty() {
                continue;
            }
            let worker = &workers[worker_of(from)];
            if worker.send((from, lines)).await.is_err() {
                return;
            }
        }
    }

    /// Answers the datagrams of its sources in order; what has queued up
    /// from one source is handled (and committed) together.
    async fn udp_worker(self: Arc<Self>, socket: Arc<UdpSocket>, mut rx: mpsc::Receiver<Datagram>) {
        while let Some((from, mut lines)) = rx.recv().await {
            let mut next = None;
            while let Ok((other, more)) = rx.try_recv() {
                if other == from && lines.len() < UDP_MAX_LINES {
                    lines.extend(more);
                } else {
                    next = Some((other, more));
                    break;
                }
            }
            self.answer_udp(&socket, from, lines).await;
            if let Some((other, more)) = next {
                self.answer_udp(&socket, other, more).await;
            }
        }
    }

    async fn answer_udp(&self, socket: &UdpSocket, from: SocketAddr, lines: Vec<ReadLine>) {
        let mut origin = Origin {
            from,
            conn: None,
            gateway: None,
            kick: None,
            logged_out: false,
        };
        let replies = self.handle(lines, &mut origin).await;
        let mut datagram = String::new();
        for r in replies.into_iter().flatten() {
            let line = r.to_line();
            if !datagram.is_empty() && datagram.len() + line.len() + 1 > MAX_REPLY_DATAGRAM {
                let _ = socket.send_to(datagram.as_bytes(), from).await;
                datagram.clear();
            }
            datagram.push_str(&line);
            datagram.push('\n');
        }
        if !datagram.is_empty() {
            let _ = socket.send_to(datagram.as_bytes(), from).await;
        }
    }
}

/// A datagram's source and lines.
type Datagram = (SocketAddr, Vec<ReadLine>);

/// The worker of a source address: the same one for all its datagrams.
fn worker_of(from: SocketAddr) -> usize {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(from);
    (hash % UDP_WORKERS as u64) as usize
}

fn store_unavailable(seq: u32) -> FeedReply {
    FeedReply::Err {
        seq: Some(seq),
        reason: "store unavailable".into(),
    }
}

fn entry(
    at: Timestamp,
    gateway: &str,
    kind: GatewayLogKind,
    address: SocketAddr,
    text: String,
) -> GatewayLogEntry {
    GatewayLogEntry {
        at,
        gateway: Some(gateway.to_owned()),
        kind,
        address: address.to_string(),
        text,
    }
}

fn disconnect(at: Timestamp, name: Option<&str>, id: &str, from: SocketAddr) -> GatewayLogEntry {
    GatewayLogEntry {
        at,
        gateway: name.map(str::to_owned),
        kind: GatewayLogKind::Disconnect,
        address: from.to_string(),
        text: format!("Gateway[{id}] from [{from}] Gateway Disconnect"),
    }
}

/// `8200` of `8200_000C2A020082`.
fn gateway_id_of(name: &str) -> &str {
    name.rsplit_once('_').map_or(name, |(id, _)| id)
}

/// A gateway clock as the seed's log prints it: `2000/01/02 08:17:38`.
fn seed_clock(clock: &GatewayClock) -> String {
    match clock {
        GatewayClock::Read(t) => {
            let text = t.to_rfc3339();
            let text = text.trim_end_matches('Z');
            let text = text.split('.').next().unwrap_or(text);
            text.replacen('-', "/", 2).replacen('T', " ", 1)
        }
        GatewayClock::Unread(text) => text.clone(),
    }
}

/// Cuts a TCP byte stream into lines of at most [`MAX_LINE_LEN`] bytes.
/// A longer line is one error, and is skipped up to its end.
#[derive(Default)]
struct LineReader {
    buf: BytesMut,
    /// Inside a line already found too long.
    skipping: bool,
}

impl LineReader {
    fn push(&mut self, bytes: &[u8]) -> Vec<ReadLine> {
        self.buf.extend_from_slice(bytes);
        let mut lines = Vec::new();
        while let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
            let raw = self.buf.split_to(end + 1);
            if std::mem::take(&mut self.skipping) {
                continue;
            }
            let raw = &raw[..end];
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            if raw.is_empty() {
                continue;
            }
            lines.push(read_line(raw));
        }
        if !self.skipping && self.buf.len() > MAX_LINE_LEN + 1 {
            lines.push(Err(FeedError {
                column: 1,
                reason: format!("line is longer than {MAX_LINE_LEN} bytes"),
            }));
            self.skipping = true;
        }
        if self.skipping {
            self.buf.clear();
        }
        lines
    }
}

fn read_line(raw: &[u8]) -> ReadLine {
    if raw.len() > MAX_LINE_LEN {
        return Err(FeedError {
            column: 1,
            reason: format!("line is {} bytes, more than {MAX_LINE_LEN}", raw.len()),
        });
    }
    String::from_utf8(raw.to_vec()).map_err(|e| FeedError {
        column: e.utf8_error().valid_up_to() + 1,
        reason: "line is not UTF-8".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_at_newlines_and_overlong_ones_skipped_to_their_end() {
        let mut r = LineReader::default();
        assert!(r.push(b"GWFEED/1 KEEP").is_empty());
        let lines = r.push(b"ALIVE seq=1 gw=1 mac=000000000001\r\n\nnext");
        assert_eq!(lines.len(), 1);
        assert_eq!(
            lines[0].as_deref().unwrap(),
            "GWFEED/1 KEEPALIVE seq=1 gw=1 mac=000000000001"
        );
        let long = vec![b'x'; 3000];
        let lines = r.push(&long);
        assert_eq!(lines.len(), 1, "one error for the long line");
        assert!(lines[0].is_err());
        assert!(r.push(&long).is_empty(), "still inside it");
        let lines = r.push(b"tail\nGWFEED/1 OK\n\xff\xfe\n");
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0].as_deref().unwrap(), "GWFEED/1 OK");
        assert!(lines[1].is_err(), "not UTF-8");
    }

    #[test]
    fn gateway_clocks_print_as_the_seeds_log() {
        let t = Timestamp::parse_rfc3339("2000-01-02T08:17:38Z").unwrap();
        assert_eq!(seed_clock(&GatewayClock::Read(t)), "2000/01/02 08:17:38");
        assert_eq!(seed_clock(&GatewayClock::Unread("unset".into())), "unset");
        assert_eq!(gateway_id_of("8200_000C2A020082"), "8200");
        assert_eq!(gateway_id_of("lobby_1_000C2A020082"), "lobby_1");
    }
}
