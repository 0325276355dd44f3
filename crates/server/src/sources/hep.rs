//! The HEP listener (issue 6): SIP servers and proxies (Kamailio's
//! siptrace, OpenSIPS's proto_hep, FreeSWITCH, Asterisk's res_hep) mirror
//! every SIP message they receive and send to a collector, over UDP or
//! TCP, as HEP packets (v3, and v2 from older agents).
//!
//! A packet whose header does not decode, whose capture agent is not
//! allowed, or whose authentication key is wrong is counted and dropped;
//! nothing is logged per packet and nothing is answered (HEP has no
//! answers). Good packets are journaled in batches, numbered within this
//! run of the listener. Making half-call CDRs of them is the SIP
//! correlator's work (in progress).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use cdrhub_correlate::sip::NotSip;
use cdrhub_model::Timestamp;
use cdrhub_protocols::hep;
use cdrhub_store::{HepIngest, HepIngestPacket, IngestBatch, IngestPayload};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{Semaphore, mpsc, watch};
use tracing::{debug, info, warn};

use crate::AppState;
use crate::sources::guard::Limiter;

/// At most one log line per address this often for refused TCP connections.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// `[sources.hep]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HepSourceConfig {
    /// Listen for HEP. Default false.
    #[serde(default)]
    pub enabled: bool,
    /// UDP address and port. Default `0.0.0.0:9060`.
    #[serde(default = "default_listen")]
    pub udp_listen: SocketAddr,
    /// TCP address and port. Default `0.0.0.0:9060`.
    #[serde(default = "default_listen")]
    pub tcp_listen: SocketAddr,
    /// The HEP authentication key agents must send (chunk 0x000e); none
    /// asked when unset.
    #[serde(default)]
    pub auth_key: Option<String>,
    /// The capture agent ids taken (chunk 0x000c); every id when empty.
    #[serde(default)]
    pub capture_ids: Vec<u32>,
    /// The addresses or subnets agents send from (UDP and TCP); empty: all.
    #[serde(default)]
    pub allow: super::guard::AllowList,
    /// TLS address and port, beside the plain TCP one, with the
    /// certificate and key of `[https]` (heplify's `-nt tls`). Default none.
    #[serde(default)]
    pub tls_listen: Option<SocketAddr>,
    /// TCP connections open at once at most (plain and TLS together); more
    /// are closed at once. Default 64.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Seconds a TCP connection may go without a whole frame (silent, or
    /// trickling bytes) before it is closed; the agent connects again.
    /// Default 300.
    #[serde(default = "default_idle_timeout_s")]
    pub idle_timeout_s: u64,
    /// The header whose value joins a B2BUA's two dialogs into one call
    /// (the same value in both, or the first dialog's Call-ID in the
    /// second). Default `X-CID`; empty turns it off. Without it, dialogs
    /// are joined by numbers and timing.
    #[serde(default = "default_correlation_header")]
    pub correlation_header: String,
    /// A call not answered that sees no message for this long is closed
    /// and marked `timed_out`. Default 300 s.
    #[serde(default = "default_setup_timeout_s")]
    pub setup_timeout_s: u64,
    /// An answered call that sees no message (no BYE, no re-INVITE) for
    /// this long is closed and marked `timed_out`. Default 14400 s (4 h).
    #[serde(default = "default_dialog_timeout_s")]
    pub dialog_timeout_s: u64,
}

impl HepSourceConfig {
    /// Makes `correlation_header` the one SIP messages are read with, for
    /// the process's life: call it before the store opens (it reads the
    /// journal again with it).
    pub fn install_correlation_header(&self) {
        if !cdrhub_correlate::sip::set_correlation_header(&self.correlation_header) {
            tracing::debug!("the SIP correlation header was already set for this process");
        }
    }

    /// The timeouts the correlator closes dialogs by.
    pub fn dialog_timeouts(&self) -> cdrhub_correlate::sip::DialogTimeouts {
        let ms = |s: u64| i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX);
        cdrhub_correlate::sip::DialogTimeouts {
            setup_ms: ms(self.setup_timeout_s),
            answered_ms: ms(self.dialog_timeout_s),
        }
    }
}

fn default_correlation_header() -> String {
    cdrhub_correlate::sip::DEFAULT_CORRELATION_HEADER.to_owned()
}

fn default_max_connections() -> usize {
    64
}
fn default_idle_timeout_s() -> u64 {
    300
}
fn default_setup_timeout_s() -> u64 {
    300
}

fn default_dialog_timeout_s() -> u64 {
    4 * 3600
}

impl Default for HepSourceConfig {
    fn default() -> Self {
        HepSourceConfig {
            enabled: false,
            udp_listen: default_listen(),
            tcp_listen: default_listen(),
            auth_key: None,
            capture_ids: Vec::new(),
            correlation_header: default_correlation_header(),
            allow: Default::default(),
            tls_listen: None,
            max_connections: default_max_connections(),
            idle_timeout_s: default_idle_timeout_s(),
            setup_timeout_s: default_setup_timeout_s(),
            dialog_timeout_s: default_dialog_timeout_s(),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 9060))
}

/// Counters of one capture agent (`capture id@address`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct AgentStatus {
    pub packets: u64,
    pub last_packet_at: Option<Timestamp>,
    /// Packets whose SIP does not parse: kept in the journal, no call.
    pub bad_sip: u64,
}

/// The listener's counters, for `/api/v1/sources`.
#[derive(Debug, Default, Serialize)]
pub struct HepStatus {
    pub packets: AtomicU64,
    /// Packets whose HEP header does not decode.
    pub bad_header: AtomicU64,
    /// Packets with a missing or wrong authentication key.
    pub bad_auth_key: AtomicU64,
    /// Packets from a capture agent id not in `capture_ids`.
    pub unknown_agent: AtomicU64,
    /// Packets and TCP connections from an address outside `allow`.
    pub not_allowed: AtomicU64,
    /// TCP connections closed at once because `max_connections` were open.
    pub refused_connections: AtomicU64,
    /// TCP connections closed after `idle_timeout_s` of silence.
    pub idle_closed: AtomicU64,
    /// Packets that could not be committed (the store was unavailable).
    pub store_errors: AtomicU64,
    #[serde(skip)]
    agents: Mutex<BTreeMap<String, AgentStatus>>,
}

impl HepStatus {
    fn count_bad_sip(&self, agent: &str, n: u64) {
        if let Ok(mut agents) = self.agents.lock() {
            agents.entry(agent.to_owned()).or_default().bad_sip += n;
        }
    }

    pub fn agents(&self) -> BTreeMap<String, AgentStatus> {
        self.agents.lock().map(|a| a.clone()).unwrap_or_default()
    }
}

/// The listener's sockets, bound before the server starts.
pub struct HepSockets {
    pub udp: UdpSocket,
    pub tcp: TcpListener,
    pub tls: Option<super::tls::TlsListener>,
}

pub async fn bind(
    config: &HepSourceConfig,
    tls: Option<&tokio_rustls::TlsAcceptor>,
) -> anyhow::Result<HepSockets> {
    use anyhow::Context;
    let udp = super::udp_socket(config.udp_listen, super::UDP_RECV_BUFFER)
        .with_context(|| format!("cannot listen for HEP on udp {}", config.udp_listen))?;
    let tcp = TcpListener::bind(config.tcp_listen)
        .await
        .with_context(|| format!("cannot listen for HEP on tcp {}", config.tcp_listen))?;
    let tls = match config.tls_listen {
        Some(addr) => Some(super::tls::bind(addr, tls, "HEP").await?),
        None => None,
    };
    Ok(HepSockets { udp, tcp, tls })
}

/// A packet on its way to the journal.
struct Received {
    agent: String,
    received_at: Timestamp,
    bytes: Bytes,
}

/// Packets committed together at most.
const MAX_BATCH: usize = 4_000;
/// Batches committing at once at most.
const BATCHES_IN_FLIGHT: usize = 8;

/// Serves HEP until `stop`.
pub async fn run(app: AppState, sockets: HepSockets, mut stop: watch::Receiver<bool>) {
    let config = app.config.sources.hep.clone();
    app.metrics
        .udp_socket(cdrhub_model::SOURCE_SIP, &sockets.udp);
    if let (Ok(u), Ok(t)) = (sockets.udp.local_addr(), sockets.tcp.local_addr()) {
        info!("listening for HEP on udp {u} and tcp {t}");
    }
    let (tx, rx) = mpsc::channel::<Received>(MAX_BATCH * BATCHES_IN_FLIGHT);
    let committer = tokio::spawn(commit(app.clone(), rx));
    let check = Arc::new(Check {
        config,
        status: app.metrics.hep.clone(),
    });
    let slots = Arc::new(Semaphore::new(check.config.max_connections));
    if let Some(tls) = sockets.tls {
        if let Ok(a) = tls.listener.local_addr() {
            info!("listening for HEP on tls {a}");
        }
        tokio::spawn(accept(
            check.clone(),
            tls.listener,
            Some(tls.acceptor),
            slots.clone(),
            tx.clone(),
            stop.clone(),
        ));
    }
    tokio::spawn(accept(
        check.clone(),
        sockets.tcp,
        None,
        slots,
        tx.clone(),
        stop.clone(),
    ));
    let mut buf = vec![0u8; 65_536];
    loop {
        let (len, from) = tokio::select! {
            r = sockets.udp.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    warn!(error = %e, "HEP socket error; going on");
                    continue;
                }
            },
            _ = stop.wait_for(|s| *s) => break,
        };
        if let Some(received) = check.take(&buf[..len], from)
            && tx.send(received).await.is_err()
        {
            break;
        }
    }
    drop(tx);
    let _ = committer.await;
}

/// What is taken of a packet: its header decodes, its agent and key are
/// allowed.
struct Check {
    config: HepSourceConfig,
    status: Arc<HepStatus>,
}

impl Check {
    fn take(&self, bytes: &[u8], from: SocketAddr) -> Option<Received> {
        let s = &self.status;
        s.packets.fetch_add(1, Ordering::Relaxed);
        if !self.config.allow.allows(from.ip()) {
            s.not_allowed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let Ok(packet) = hep::decode(bytes) else {
            s.bad_header.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        if let Some(key) = &self.config.auth_key
            && packet.auth_key.as_deref() != Some(key.as_str())
        {
            s.bad_auth_key.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let id = packet.capture_id.unwrap_or(0);
        if !self.config.capture_ids.is_empty() && !self.config.capture_ids.contains(&id) {
            s.unknown_agent.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let agent = format!("{id}@{}", from.ip());
        let now = Timestamp::now();
        if let Ok(mut agents) = s.agents.lock() {
            let a = agents.entry(agent.clone()).or_default();
            a.packets += 1;
            a.last_packet_at = Some(now);
        }
        Some(Received {
            agent,
            received_at: now,
            bytes: Bytes::copy_from_slice(bytes),
        })
    }
}

async fn accept(
    check: Arc<Check>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    slots: Arc<Semaphore>,
    tx: mpsc::Sender<Received>,
    mut stop: watch::Receiver<bool>,
) {
    let log = Mutex::new(Limiter::new(REFUSAL_LOG_EVERY));
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.wait_for(|s| *s) => return,
        };
        let (stream, from) = match accepted {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e, "HEP: cannot accept a connection; going on");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let refused = if !check.config.allow.allows(from.ip()) {
            check.status.not_allowed.fetch_add(1, Ordering::Relaxed);
            Some("its address is outside [sources.hep] allow")
        } else {
            None
        };
        let slot = match refused {
            Some(_) => None,
            None => slots.clone().try_acquire_owned().ok(),
        };
        let Some(slot) = slot else {
            let why = refused.unwrap_or_else(|| {
                check
                    .status
                    .refused_connections
                    .fetch_add(1, Ordering::Relaxed);
                "[sources.hep] max_connections are open"
            });
            if let Some(held) = log.lock().ok().and_then(|mut l| l.allow(from.ip())) {
                warn!(%from, more_not_logged = held, "HEP: TCP connection closed at once: {why}");
            }
            drop(stream);
            continue;
        };
        let (check, tx, tls) = (check.clone(), tx.clone(), tls.clone());
        tokio::spawn(async move {
            match tls {
                None => read_tcp(check, stream, from, tx).await,
                Some(acceptor) => {
                    if let Some(stream) = super::tls::handshake(
                        &acceptor,
                        stream,
                        from,
                        super::tls::HANDSHAKE_TIMEOUT,
                    )
                    .await
                    {
                        read_tcp(check, stream, from, tx).await;
                    }
                }
            }
            drop(slot);
        });
    }
}

/// One agent's TCP connection: HEPv3 packets back to back. A stream that
/// cannot be framed is counted once and closed.
async fn read_tcp<S>(check: Arc<Check>, mut stream: S, from: SocketAddr, tx: mpsc::Sender<Received>)
where
    S: tokio::io::AsyncRead + Unpin,
{
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let idle = Duration::from_secs(check.config.idle_timeout_s);
    // A whole frame is due within the idle timeout: a sender that trickles
    // bytes without finishing one is closed as a silent one is.
    let mut frame_due = tokio::time::Instant::now() + idle;
    loop {
        loop {
            match hep::frame_len(&buf) {
                Ok(Some(n)) if buf.len() >= n => {
                    let packet = buf.split_to(n);
                    frame_due = tokio::time::Instant::now() + idle;
                    if let Some(r) = check.take(&packet, from)
                        && tx.send(r).await.is_err()
                    {
                        return;
                    }
                }
                Ok(_) => break,
                Err(_) => {
                    check.status.bad_header.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
        match tokio::time::timeout_at(frame_due, stream.read_buf(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return,
            Ok(Ok(_)) => {}
            Err(_) => {
                check.status.idle_closed.fetch_add(1, Ordering::Relaxed);
                debug!(%from, "HEP: no whole frame on a TCP connection for {idle:?}; closed");
                return;
            }
        }
    }
}

/// Journals what arrives in batches, several in flight.
async fn commit(app: AppState, mut rx: mpsc::Receiver<Received>) {
    let session = format!("{}", Timestamp::now().0);
    let next_seq = Arc::new(AtomicU64::new(1));
    let in_flight = Arc::new(Semaphore::new(BATCHES_IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        // One submission per agent: the journal keeps a stream per agent.
        let mut by_agent: BTreeMap<String, Vec<HepIngestPacket>> = BTreeMap::new();
        for r in batch {
            by_agent.entry(r.agent).or_default().push(HepIngestPacket {
                seq: next_seq.fetch_add(1, Ordering::Relaxed),
                received_at: r.received_at,
                event: None,
                bytes: r.bytes,
            });
        }
        let (app, session) = (app.clone(), session.clone());
        tokio::spawn(async move {
            // The SIP is read here, several batches at once, not on the
            // writer's thread.
            for (agent, packets) in &mut by_agent {
                let mut bad = 0;
                for p in packets {
                    p.event = match cdrhub_correlate::sip::event_of_hep(&p.bytes, p.received_at) {
                        Ok(event) => Some(event),
                        Err(NotSip::Sip(e)) => {
                            bad += 1;
                            debug!(agent = %agent, error = %e, "HEP packet with malformed SIP; kept, no call");
                            None
                        }
                        Err(_) => None,
                    };
                }
                if bad > 0 {
                    app.metrics.hep.count_bad_sip(agent, bad);
                }
            }
            for (agent, packets) in by_agent {
                let n = packets.len() as u64;
                let submission = IngestBatch {
                    sender: agent,
                    received_at: Timestamp::now(),
                    payload: IngestPayload::Hep(HepIngest {
                        session: session.clone(),
                        packets,
                    }),
                };
                if let Err(e) = crate::bus::submit(&app, submission).await {
                    app.metrics.hep.store_errors.fetch_add(n, Ordering::Relaxed);
                    warn!(error = %e, packets = n, "cannot commit HEP packets; dropped");
                }
            }
            drop(permit);
        });
    }
    let _ = in_flight.acquire_many(BATCHES_IN_FLIGHT as u32).await;
}
