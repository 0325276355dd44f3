//! The RADIUS accounting server (issue 5): VoIP gateways (Cisco IOS
//! `gw-accounting aaa`, and most others) send their call details as
//! Accounting-Requests (RFC 2866) over UDP.
//!
//! A request from an address no client covers, or whose Request
//! Authenticator does not match the client's secret, is dropped without an
//! answer and counted per client (not logged one by one). Good requests are
//! committed in batches of a couple of milliseconds; each gets its
//! Accounting-Response only after the commit, and none if the commit fails
//! (the gateway sends it again). A request sent again is answered again
//! and stored once (the journal knows it by gateway, session and status).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cdrhub_model::Timestamp;
use cdrhub_protocols::radius;
use cdrhub_store::{IngestBatch, IngestPayload, RadiusIngest, RadiusIngestRequest};
use serde::{Deserialize, Serialize};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::AppState;
use crate::sources::guard::Subnet;

/// `[sources.radius]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RadiusSourceConfig {
    /// Listen for accounting. Default false: gateways must be declared.
    #[serde(default)]
    pub enabled: bool,
    /// UDP address and port. Default `0.0.0.0:1813`.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The gateways allowed to send, by address or subnet, with their
    /// shared secrets.
    #[serde(default)]
    pub clients: Vec<RadiusClient>,
}

impl Default for RadiusSourceConfig {
    fn default() -> Self {
        RadiusSourceConfig {
            enabled: false,
            listen: default_listen(),
            clients: Vec::new(),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 1813))
}

/// A gateway or a subnet of gateways and its shared secret.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RadiusClient {
    /// `10.0.0.1` or `10.0.0.0/24` (IPv6 too).
    pub address: String,
    pub secret: String,
}

impl RadiusSourceConfig {
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.enabled && self.clients.is_empty() {
            return Err("[sources.radius] is enabled but declares no [[sources.radius.clients]]: every request would be dropped".into());
        }
        for c in &self.clients {
            Subnet::parse(&c.address).map_err(|e| format!("[[sources.radius.clients]] {e}"))?;
            if c.secret.is_empty() {
                return Err(format!(
                    "[[sources.radius.clients]] {}: the secret is empty",
                    c.address
                ));
            }
        }
        Ok(())
    }
}

/// Counters per client, for `/api/v1/sources`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClientStatus {
    pub requests: u64,
    pub answered: u64,
    pub bad_authenticator: u64,
    pub malformed: u64,
    pub last_request_at: Option<Timestamp>,
}

/// The accounting server's counters.
#[derive(Debug, Default)]
pub struct RadiusStatus {
    clients: Mutex<BTreeMap<String, ClientStatus>>,
    unknown_clients: Mutex<BTreeMap<String, u64>>,
}

impl RadiusStatus {
    pub fn clients(&self) -> BTreeMap<String, ClientStatus> {
        self.clients.lock().map(|c| c.clone()).unwrap_or_default()
    }

    pub fn unknown_clients(&self) -> BTreeMap<String, u64> {
        self.unknown_clients
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default()
    }

    fn update(&self, client: &str, f: impl FnOnce(&mut ClientStatus)) {
        if let Ok(mut c) = self.clients.lock() {
            f(c.entry(client.to_owned()).or_default());
        }
    }
}

/// A verified request waiting for its commit, with what its answer needs.
struct Pending {
    from: SocketAddr,
    client: String,
    identifier: u8,
    secret: Arc<[u8]>,
    request: RadiusIngestRequest,
}

/// Requests committed together at most.
const MAX_BATCH: usize = 2_000;

/// Binds the accounting socket (so a busy port fails the start).
pub async fn bind(config: &RadiusSourceConfig) -> anyhow::Result<UdpSocket> {
    use anyhow::Context;
    super::udp_socket(config.listen, super::UDP_RECV_BUFFER).with_context(|| {
        format!(
            "cannot listen for RADIUS accounting on udp {}",
            config.listen
        )
    })
}

/// Answers accounting until `stop`.
pub async fn run(app: AppState, socket: UdpSocket, mut stop: watch::Receiver<bool>) {
    let config = app.config.sources.radius.clone();
    let clients: Vec<(Subnet, String, Arc<[u8]>)> = config
        .clients
        .iter()
        .filter_map(|c| {
            Subnet::parse(&c.address)
                .ok()
                .map(|s| (s, c.address.clone(), Arc::from(c.secret.as_bytes())))
        })
        .collect();
    app.metrics.udp_socket(cdrhub_model::SOURCE_RADIUS, &socket);
    let socket = Arc::new(socket);
    if let Ok(addr) = socket.local_addr() {
        info!("listening for RADIUS accounting on udp {addr}");
    }
    let (to_commit, committing) = mpsc::channel::<Pending>(MAX_BATCH * 8);
    let committer = tokio::spawn(commit(app.clone(), socket.clone(), committing));
    let status = app.metrics.radius.clone();
    let mut buf = vec![0u8; radius::MAX_PACKET + 1];
    loop {
        let (len, from) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    warn!(error = %e, "RADIUS socket error; going on");
                    continue;
                }
            },
            _ = stop.wait_for(|s| *s) => break,
        };
        let datagram = &buf[..len];
        // The most specific subnet that covers the sender.
        let Some((_, client, secret)) = clients
            .iter()
            .filter(|(s, _, _)| s.contains(from.ip()))
            .max_by_key(|(s, _, _)| s.prefix)
        else {
            if let Ok(mut u) = status.unknown_clients.lock() {
                *u.entry(from.ip().to_string()).or_default() += 1;
            }
            continue;
        };
        status.update(client, |c| {
            c.requests += 1;
            c.last_request_at = Some(Timestamp::now());
        });
        let packet = match radius::decode(datagram) {
            Ok(p) if p.code == radius::ACCOUNTING_REQUEST => p,
            _ => {
                status.update(client, |c| c.malformed += 1);
                continue;
            }
        };
        if !radius::verify_accounting_request(datagram, secret) {
            status.update(client, |c| c.bad_authenticator += 1);
            continue;
        }
        let accounting = radius::parse_accounting(&packet);
        let nas = accounting
            .nas_ip
            .map(|ip| ip.to_string())
            .or_else(|| accounting.nas_identifier.clone())
            .unwrap_or_else(|| from.ip().to_string());
        let pending = Pending {
            from,
            client: client.clone(),
            identifier: packet.identifier,
            secret: secret.clone(),
            request: RadiusIngestRequest {
                nas,
                received_at: Timestamp::now(),
                datagram: Bytes::copy_from_slice(datagram),
                authenticator: packet.authenticator,
                accounting,
            },
        };
        if to_commit.send(pending).await.is_err() {
            break;
        }
    }
    drop(to_commit);
    let _ = committer.await;
}

/// Batches on their way to the journal at once: while one commits, the
/// next are handed over, and the writer commits what waits together.
const BATCHES_IN_FLIGHT: usize = 8;

/// Commits what the socket reads in batches (whatever has arrived, no
/// waiting) and answers each request once its batch is committed.
async fn commit(app: AppState, socket: Arc<UdpSocket>, mut rx: mpsc::Receiver<Pending>) {
    let in_flight = Arc::new(tokio::sync::Semaphore::new(BATCHES_IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        // While a permit was awaited more arrived: they go together.
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let (app, socket) = (app.clone(), socket.clone());
        tokio::spawn(async move {
            answer_after_commit(&app, &socket, batch).await;
            drop(permit);
        });
    }
    // The batches still committing are answered before the task ends.
    let _ = in_flight.acquire_many(BATCHES_IN_FLIGHT as u32).await;
}

async fn answer_after_commit(app: &AppState, socket: &UdpSocket, batch: Vec<Pending>) {
    let received_at = batch[0].request.received_at;
    // The requests go to the store; what their answers need stays here.
    let (answers, requests): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .map(|p| {
            let answer = (
                p.from,
                p.client,
                p.identifier,
                p.request.authenticator,
                p.secret,
            );
            (answer, p.request)
        })
        .unzip();
    let submission = IngestBatch {
        sender: "radius".into(),
        received_at,
        payload: IngestPayload::Radius(RadiusIngest { requests }),
    };
    match crate::bus::submit(app, submission).await {
        Ok(_) => {
            for (from, client, identifier, authenticator, secret) in &answers {
                let response = radius::accounting_response(*identifier, authenticator, secret);
                if socket.send_to(&response, from).await.is_ok() {
                    app.metrics.radius.update(client, |c| c.answered += 1);
                }
            }
        }
        // No answer: the gateways send the requests again.
        Err(e) => {
            warn!(error = %e, requests = answers.len(), "cannot commit accounting; not answering")
        }
    }
}
