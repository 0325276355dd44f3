//! The contact-centre source (issue 4): cdrhub connects to a Cisco CTI
//! server (Unified CCX, or UCCE's CTI Server) as a bridge-mode client,
//! reads every call event and agent state, and commits them to the journal.
//!
//! One task per configured server pair. It opens a session with OPEN_REQ
//! (all events, every call event and agent state), sends a heartbeat every
//! `heartbeat_s` and gives up on the connection after three unanswered,
//! and reconnects with backoff, alternating between the primary and the
//! secondary node, when the connection closes, a frame does not decode,
//! the node is the standby (FAILURE_CONF 92), or the server says it is
//! offline. Messages are committed in batches of at most `batch_ms`; a
//! batch that fails to commit is retried as it was (the store drops what
//! it already has). CTI servers keep nothing for a client that was away:
//! what happens while cdrhub is disconnected is not seen.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use cdrhub_model::Timestamp;
use cdrhub_protocols::cti::{
    self, AGENT_STATE_MASK_ALL, CALL_MSG_MASK_ALL, CtiBody, CtiMessage, OpenReq,
    SERVICE_ALL_EVENTS, STATUS_NOT_MASTER, message_type, system_event,
};
use cdrhub_store::{CtiIngest, CtiIngestMessage, IngestBatch, IngestPayload};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::AppState;

/// A Cisco CTI server pair (UCCX or UCCE) cdrhub connects to as a
/// bridge-mode client.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CtiSourceConfig {
    /// The sender name its calls are filed under.
    pub name: String,
    /// `host:port` of the primary node (UCCX listens on 42027).
    pub primary: String,
    /// `host:port` of the secondary node, tried when the primary does not
    /// answer or is the standby.
    #[serde(default)]
    pub secondary: Option<String>,
    /// ClientID of OPEN_REQ.
    #[serde(default = "default_cti_client_id")]
    pub client_id: String,
    /// ClientPassword of OPEN_REQ (sent even when empty).
    #[serde(default)]
    pub password: String,
    /// Protocol version: below 20 the floating fields have 1-byte tags and
    /// lengths (Unified CCX), from 20 on 2-byte ones (UCCE).
    #[serde(default = "default_cti_version")]
    pub version: u32,
    /// Seconds between heartbeats (UCCX accepts at most 30); IdleTimeout is
    /// four times this.
    #[serde(default = "default_heartbeat_s")]
    pub heartbeat_s: u32,
    /// Longest wait before received messages are committed together.
    #[serde(default = "default_cti_batch_ms")]
    pub batch_ms: u64,
    /// Speak TLS to the CTI server (the secured connection of UCCE 12 and
    /// later). Default false: Unified CCX has no TLS.
    #[serde(default)]
    pub tls: bool,
    /// PEM file of the certificate authority (or the certificate itself)
    /// the server's certificate must chain to. Required with `tls`.
    #[serde(default)]
    pub tls_ca: Option<std::path::PathBuf>,
    /// The name the server's certificate must carry; default the host of
    /// the node's `host:port`.
    #[serde(default)]
    pub tls_server_name: Option<String>,
    /// PEM certificate and private key cdrhub presents when the server
    /// asks for one (mutual TLS). Both or neither.
    #[serde(default)]
    pub tls_cert: Option<std::path::PathBuf>,
    #[serde(default)]
    pub tls_key: Option<std::path::PathBuf>,
}

fn default_cti_client_id() -> String {
    "cdrhub".into()
}
fn default_cti_version() -> u32 {
    13
}
fn default_heartbeat_s() -> u32 {
    30
}
fn default_cti_batch_ms() -> u64 {
    50
}

impl CtiSourceConfig {
    pub(crate) fn check(&self) -> Result<(), String> {
        let name = &self.name;
        if name.trim().is_empty() {
            return Err("every [[sources.cti]] needs a name".into());
        }
        for node in std::iter::once(&self.primary).chain(&self.secondary) {
            let (host, port) = node
                .rsplit_once(':')
                .ok_or_else(|| format!("[[sources.cti]] {name}: {node:?} is not host:port"))?;
            if host.is_empty() || port.parse::<u16>().is_err() {
                return Err(format!("[[sources.cti]] {name}: {node:?} is not host:port"));
            }
        }
        if !(1..=30).contains(&self.heartbeat_s) {
            return Err(format!(
                "[[sources.cti]] {name}: heartbeat_s must be 1 to 30 (UCCX accepts at most 30)"
            ));
        }
        if !(1..=10_000).contains(&self.batch_ms) {
            return Err(format!(
                "[[sources.cti]] {name}: batch_ms must be 1 to 10000"
            ));
        }
        if self.tls && self.tls_ca.is_none() {
            return Err(format!(
                "[[sources.cti]] {name}: tls needs tls_ca, the CA the CTI server's certificate chains to"
            ));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(format!(
                "[[sources.cti]] {name}: tls_cert and tls_key go together"
            ));
        }
        Ok(())
    }

    /// The TLS client of a `tls` connection, from its PEM files.
    pub(crate) fn tls_connector(&self) -> Result<Option<tokio_rustls::TlsConnector>, String> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        if !self.tls {
            return Ok(None);
        }
        let name = &self.name;
        let unreadable = |path: &std::path::Path, e: &dyn std::fmt::Display| {
            format!(
                "[[sources.cti]] {name}: cannot read {}: {e}",
                path.display()
            )
        };
        let mut roots = rustls::RootCertStore::empty();
        if let Some(ca) = &self.tls_ca {
            for cert in CertificateDer::pem_file_iter(ca).map_err(|e| unreadable(ca, &e))? {
                let cert = cert.map_err(|e| unreadable(ca, &e))?;
                roots.add(cert).map_err(|e| unreadable(ca, &e))?;
            }
        }
        let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
        let config = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .map_err(|e| unreadable(cert, &e))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| unreadable(cert, &e))?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| unreadable(key, &e))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("[[sources.cti]] {name}: tls_cert and tls_key: {e}"))?
            }
            _ => builder.with_no_client_auth(),
        };
        Ok(Some(tokio_rustls::TlsConnector::from(std::sync::Arc::new(
            config,
        ))))
    }
}

/// The connection to a CTI server: TCP, or TLS over it.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Io for T {}
type Stream = Box<dyn Io>;

/// What the console and `/api/v1/sources` show of a connection.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LinkStatus {
    /// `connecting`, `open`, or `waiting` (to reconnect).
    pub state: &'static str,
    /// The node connected to, or last tried.
    pub node: Option<String>,
    pub protocol_version: u32,
    pub connected_since: Option<Timestamp>,
    pub last_message_at: Option<Timestamp>,
    /// Messages read since cdrhub started.
    pub messages: u64,
    /// Call events, agent states and system events committed.
    pub stored: u64,
    pub heartbeats_answered: u64,
    pub reconnects: u64,
    pub last_error: Option<String>,
}

/// The state of every CTI connection, by configured name.
#[derive(Debug, Default)]
pub struct Links {
    links: Mutex<BTreeMap<String, LinkStatus>>,
}

impl Links {
    pub fn snapshot(&self) -> BTreeMap<String, LinkStatus> {
        self.links.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn update(&self, name: &str, f: impl FnOnce(&mut LinkStatus)) {
        if let Ok(mut links) = self.links.lock() {
            f(links.entry(name.to_owned()).or_default());
        }
    }
}

/// How a session ended.
enum End {
    /// cdrhub is shutting down.
    Stopped,
    /// The node is the standby: try the other one at once.
    Standby,
}

/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the server has to answer OPEN_REQ.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Heartbeats that may go unanswered before the connection is reset.
const MAX_UNANSWERED: u32 = 3;
/// Messages committed together at most.
const MAX_BATCH: usize = 5_000;

/// Keeps a session open with the server pair until `stop`.
pub async fn run(app: AppState, config: CtiSourceConfig, mut stop: watch::Receiver<bool>) {
    let nodes: Vec<String> = std::iter::once(config.primary.clone())
        .chain(config.secondary.clone())
        .collect();
    let links = app.metrics.cti.clone();
    let mut backoff = Duration::from_secs(1);
    let mut standbys = 0;
    for (attempt, node) in nodes.iter().cycle().enumerate() {
        if *stop.borrow_and_update() {
            return;
        }
        links.update(&config.name, |l| {
            l.state = "connecting";
            l.node = Some(node.clone());
            l.protocol_version = config.version;
            if attempt > 0 {
                l.reconnects += 1;
            }
        });
        let result = session(&app, &config, node, &mut stop).await;
        links.update(&config.name, |l| {
            l.state = "waiting";
            l.connected_since = None;
        });
        match result {
            Ok(End::Stopped) => return,
            Ok(End::Standby) => {
                info!(source = %config.name, %node, "the node is the standby; trying the other one");
                links.update(&config.name, |l| {
                    l.last_error = Some(format!(
                        "{node} is the standby node (FAILURE_CONF status 92)"
                    ))
                });
                standbys += 1;
                // Both nodes standby (a failover in progress): wait a little.
                if standbys < nodes.len() {
                    continue;
                }
            }
            Err(e) => {
                warn!(source = %config.name, %node, error = %e, "CTI session ended; reconnecting");
                links.update(&config.name, |l| {
                    l.last_error = Some(format!("{node}: {e}"))
                });
            }
        }
        standbys = 0;
        let stopped = async {
            let _ = stop.wait_for(|s| *s).await;
        };
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stopped => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Why a session ended other than by shutdown.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("the connection failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the server closed the connection")]
    Closed,
    #[error("no answer to OPEN_REQ within {0:?}")]
    OpenTimeout(Duration),
    #[error("the server refused the session: FAILURE_CONF status {status}{text}")]
    Refused { status: u32, text: String },
    #[error("{0}; the stream cannot be trusted after it")]
    Frame(#[from] cti::CtiError),
    #[error("{0} heartbeats went unanswered")]
    Heartbeats(u32),
    #[error("the server reports it is offline ({0})")]
    Offline(String),
}

/// One connection: open, read until it ends, commit what was read.
async fn session(
    app: &AppState,
    config: &CtiSourceConfig,
    node: &str,
    stop: &mut watch::Receiver<bool>,
) -> Result<End, SessionError> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(node))
        .await
        .map_err(|_| SessionError::Connect(format!("no answer within {CONNECT_TIMEOUT:?}")))?
        .map_err(|e| SessionError::Connect(e.to_string()))?;
    let _ = stream.set_nodelay(true);
    let stream: Stream = match config.tls_connector().map_err(SessionError::Connect)? {
        None => Box::new(stream),
        Some(connector) => {
            let host = config
                .tls_server_name
                .clone()
                .unwrap_or_else(|| node.rsplit_once(':').map_or(node, |(h, _)| h).to_owned());
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|e| SessionError::Connect(format!("TLS server name {host:?}: {e}")))?;
            let tls = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, stream))
                .await
                .map_err(|_| {
                    SessionError::Connect(format!("no TLS handshake within {CONNECT_TIMEOUT:?}"))
                })?
                .map_err(|e| SessionError::Connect(format!("TLS handshake: {e}")))?;
            Box::new(tls)
        }
    };
    let (mut rd, mut wr) = tokio::io::split(stream);
    let version = config.version;
    let mut invoke_id = 1u32;
    let open = CtiMessage {
        message_type: message_type::OPEN_REQ,
        body: CtiBody::OpenReq(OpenReq {
            invoke_id,
            version,
            idle_timeout: config.heartbeat_s.saturating_mul(4),
            // UCCX: reserved 0; ICM: NULL_PERIPHERAL_ID in bridge mode.
            peripheral_id: if version >= 20 { 0xFFFF_FFFF } else { 0 },
            services_requested: SERVICE_ALL_EVENTS,
            call_msg_mask: CALL_MSG_MASK_ALL,
            agent_state_mask: AGENT_STATE_MASK_ALL,
            config_msg_mask: 0,
            client_id: config.client_id.clone(),
            client_password: config.password.clone(),
            floating: Default::default(),
        }),
    };
    wr.write_all(&cti::encode(&open, version)).await?;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let opened = tokio::time::timeout(OPEN_TIMEOUT, async {
        loop {
            let (frame, message) = next_frame(&mut rd, &mut buf, version).await?;
            match message.body {
                CtiBody::OpenConf(_) => return Ok(None),
                CtiBody::FailureConf { status, text, .. } if status == STATUS_NOT_MASTER => {
                    let _ = text;
                    return Ok(Some(End::Standby));
                }
                CtiBody::FailureConf { status, text, .. } => {
                    return Err(SessionError::Refused {
                        status,
                        text: text.map(|t| format!(" ({t})")).unwrap_or_default(),
                    });
                }
                _ => drop(frame),
            }
        }
    })
    .await
    .map_err(|_| SessionError::OpenTimeout(OPEN_TIMEOUT))??;
    if let Some(end) = opened {
        return Ok(end);
    }
    let session_id = uuid::Uuid::new_v4().to_string();
    info!(source = %config.name, %node, version, session = %session_id, "CTI session open");
    let links = app.metrics.cti.clone();
    links.update(&config.name, |l| {
        l.state = "open";
        l.connected_since = Some(Timestamp::now());
    });

    let (to_commit, committing) = mpsc::channel::<CtiIngestMessage>(MAX_BATCH * 4);
    let committer = tokio::spawn(commit_batches(
        app.clone(),
        config.clone(),
        node.to_owned(),
        session_id,
        committing,
    ));
    let mut heartbeat = tokio::time::interval(Duration::from_secs(u64::from(config.heartbeat_s)));
    heartbeat.tick().await;
    let mut unanswered = 0u32;
    let mut seq = 0u64;
    let mut stopped = std::pin::pin!(async {
        let _ = stop.wait_for(|s| *s).await;
    });
    let result = loop {
        tokio::select! {
            read = next_frame(&mut rd, &mut buf, version) => {
                let (frame, message) = match read {
                    Ok(m) => m,
                    Err(e) => break Err(e),
                };
                let now = Timestamp::now();
                links.update(&config.name, |l| {
                    l.messages += 1;
                    l.last_message_at = Some(now);
                });
                let offline = match &message.body {
                    CtiBody::HeartbeatConf { .. } => {
                        unanswered = 0;
                        links.update(&config.name, |l| l.heartbeats_answered += 1);
                        continue;
                    }
                    // A FAILURE_CONF now answers a heartbeat: the server is offline.
                    CtiBody::FailureConf { status, text, .. } => {
                        break Err(SessionError::Offline(format!(
                            "FAILURE_CONF status {status}{}",
                            text.as_deref().map(|t| format!(": {t}")).unwrap_or_default()
                        )));
                    }
                    CtiBody::FailureEvent { status, text } => Some(format!(
                        "FAILURE_EVENT status {status}{}",
                        text.as_deref().map(|t| format!(": {t}")).unwrap_or_default()
                    )),
                    CtiBody::SystemEvent(e) if matches!(
                        e.system_event_id,
                        system_event::CTI_SERVER_OFFLINE
                            | system_event::CENTRAL_CONTROLLER_OFFLINE
                            | system_event::PERIPHERAL_GATEWAY_OFFLINE
                    ) => Some(format!("SYSTEM_EVENT {}", e.system_event_id)),
                    CtiBody::Call(_) | CtiBody::AgentState(_) | CtiBody::SystemEvent(_) => None,
                    _ => continue,
                };
                seq += 1;
                let message = CtiIngestMessage { seq, received_at: now, frame, message };
                if to_commit.send(message).await.is_err() {
                    break Err(SessionError::Closed);
                }
                if let Some(why) = offline {
                    break Err(SessionError::Offline(why));
                }
            }
            _ = heartbeat.tick() => {
                if unanswered >= MAX_UNANSWERED {
                    break Err(SessionError::Heartbeats(unanswered));
                }
                invoke_id = invoke_id.wrapping_add(1);
                let req = CtiMessage {
                    message_type: message_type::HEARTBEAT_REQ,
                    body: CtiBody::HeartbeatReq { invoke_id },
                };
                if let Err(e) = wr.write_all(&cti::encode(&req, version)).await {
                    break Err(e.into());
                }
                unanswered += 1;
            }
            _ = &mut stopped => {
                invoke_id = invoke_id.wrapping_add(1);
                let close = CtiMessage {
                    message_type: message_type::CLOSE_REQ,
                    body: CtiBody::CloseReq { invoke_id, status: 0 },
                };
                let _ = wr.write_all(&cti::encode(&close, version)).await;
                break Ok(End::Stopped);
            }
        }
    };
    // What was read is committed before the next session starts.
    drop(to_commit);
    let _ = committer.await;
    result
}

/// Reads the next whole frame.
async fn next_frame(
    rd: &mut tokio::io::ReadHalf<Stream>,
    buf: &mut BytesMut,
    version: u32,
) -> Result<(Bytes, CtiMessage), SessionError> {
    loop {
        if let Some(len) = cti::frame_len(buf)?
            && buf.len() >= len
        {
            let frame = buf.split_to(len).freeze();
            let message = cti::decode(&frame, version)?;
            return Ok((frame, message));
        }
        if rd.read_buf(buf).await? == 0 {
            return Err(SessionError::Closed);
        }
    }
}

/// Commits what the session reads, in batches of at most `batch_ms` or
/// `MAX_BATCH` messages; a batch that fails is retried until it commits.
async fn commit_batches(
    app: AppState,
    config: CtiSourceConfig,
    node: String,
    session: String,
    mut rx: mpsc::Receiver<CtiIngestMessage>,
) {
    let window = Duration::from_millis(config.batch_ms);
    while let Some(first) = rx.recv().await {
        let mut messages = vec![first];
        let deadline = tokio::time::Instant::now() + window;
        while messages.len() < MAX_BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(m)) => messages.push(m),
                _ => break,
            }
        }
        let n = messages.len() as u64;
        let batch = IngestBatch {
            sender: config.name.clone(),
            received_at: messages[0].received_at,
            payload: IngestPayload::Cti(CtiIngest {
                node: node.clone(),
                session: session.clone(),
                version: config.version,
                messages,
            }),
        };
        let mut retry = Duration::from_millis(200);
        loop {
            match crate::bus::submit(&app, batch.clone()).await {
                Ok(_) => break,
                Err(e) => {
                    warn!(source = %config.name, error = %e, "cannot commit CTI messages yet; retrying");
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(Duration::from_secs(5));
                }
            }
        }
        app.metrics.cti.update(&config.name, |l| l.stored += n);
    }
}
