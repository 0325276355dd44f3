//! The ingest bus (issue 8; DESIGN.md "Scale-out"): with `[bus]`, a
//! *collector* publishes each batch its sources accept to a NATS JetStream
//! stream and acknowledges the sender only once JetStream has stored it;
//! a *worker* takes the batches from a durable consumer, submits each to
//! its store, and acknowledges JetStream only after that commit. A batch
//! JetStream delivers again (a worker died before its ack) is recognised
//! by the journal's deduplication keys and stored once; a batch published
//! twice (a collector that retried) is dropped by JetStream's own
//! duplicate window (`Nats-Msg-Id` is a hash of the batch).
//!
//! Subjects are `PREFIX.N`, N the batch's partition (a hash of its sender
//! modulo `partitions`), so the records of one sender, and so of its calls,
//! keep their order on one subject.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use cdrhub_correlate::cms::fnv1a;
use cdrhub_store::{Ack, IngestBatch, IngestOutcome, StoreError};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::AppState;

/// `[bus]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusConfig {
    /// The NATS server, `nats://host:4222`.
    pub nats: String,
    /// The JetStream stream the batches go through (created when missing).
    /// Default `CDRHUB_INGEST`.
    #[serde(default = "default_stream")]
    pub stream: String,
    /// The subjects' prefix. Default `cdrhub.ingest`.
    #[serde(default = "default_prefix")]
    pub subject_prefix: String,
    /// Partitions of the subjects. Default 16.
    #[serde(default = "default_partitions")]
    pub partitions: u32,
    /// The durable consumers' names: `CONSUMER-N` for partition N.
    /// Default `cdrhub-workers`.
    #[serde(default = "default_consumer")]
    pub consumer: String,
    /// What this process does: `collector` (its sources publish to the
    /// bus), `worker` (it stores what the bus holds), `web` (only the
    /// console and the API, on a shared PostgreSQL store). Default
    /// collector and worker. Every process serves the console and the API.
    #[serde(default = "default_roles")]
    pub roles: Vec<BusRole>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BusRole {
    Collector,
    Worker,
    Web,
}

fn default_stream() -> String {
    "CDRHUB_INGEST".into()
}

fn default_prefix() -> String {
    "cdrhub.ingest".into()
}

fn default_partitions() -> u32 {
    16
}

fn default_consumer() -> String {
    "cdrhub-workers".into()
}

fn default_roles() -> Vec<BusRole> {
    vec![BusRole::Collector, BusRole::Worker]
}

impl BusConfig {
    pub(crate) fn check(&self) -> Result<(), String> {
        if !self.nats.starts_with("nats://") && !self.nats.starts_with("tls://") {
            return Err(format!("bus.nats {:?} must be a nats:// URL", self.nats));
        }
        if self.partitions == 0 || self.partitions > 1024 {
            return Err("bus.partitions must be from 1 to 1024".into());
        }
        if self.roles.is_empty() {
            return Err(
                "bus.roles names no role: give one or more of collector, worker and web".into(),
            );
        }
        Ok(())
    }

    pub fn has(&self, role: BusRole) -> bool {
        self.roles.contains(&role)
    }
}

/// What the bus did in this process, for `/api/v1/sources`.
#[derive(Debug, Default, Serialize)]
pub struct BusStatus {
    /// Batches JetStream stored for this collector.
    pub published: AtomicU64,
    /// Batches JetStream did not take (the sender was told to retry).
    pub publish_failures: AtomicU64,
    /// Batches this worker committed to its store.
    pub stored: AtomicU64,
    /// Of those, batches JetStream delivered more than once.
    pub redelivered: AtomicU64,
    /// Batches this build could not read: left on the bus, with an error
    /// in the log each time one comes back.
    pub unreadable: AtomicU64,
    /// Batches the store could not commit (delivered again later).
    pub commit_failures: AtomicU64,
}

fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A collector's publisher.
pub struct Collector {
    js: jetstream::Context,
    prefix: String,
    partitions: u32,
    status: Arc<BusStatus>,
}

async fn connect(config: &BusConfig) -> anyhow::Result<jetstream::Context> {
    use anyhow::Context as _;
    let client = async_nats::connect(&config.nats)
        .await
        .with_context(|| format!("cannot connect to NATS at {}", config.nats))?;
    let js = jetstream::new(client);
    js.get_or_create_stream(stream::Config {
        name: config.stream.clone(),
        subjects: vec![format!("{}.>", config.subject_prefix)],
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .with_context(|| {
        format!(
            "cannot create or open the JetStream stream {}",
            config.stream
        )
    })?;
    Ok(js)
}

impl Collector {
    pub async fn connect(config: &BusConfig, status: Arc<BusStatus>) -> anyhow::Result<Collector> {
        let js = connect(config).await?;
        info!(nats = %config.nats, stream = %config.stream, "collector: batches go to the bus");
        Ok(Collector {
            js,
            prefix: config.subject_prefix.clone(),
            partitions: config.partitions,
            status,
        })
    }

    /// Publishes the batch; resolves once JetStream has stored it.
    pub fn publish(&self, batch: IngestBatch) -> Ack {
        let records = batch.payload.record_count();
        let bytes = cdrhub_store::wire::encode(&batch);
        let partition = fnv1a(batch.sender.bytes()) % u64::from(self.partitions);
        let subject = format!("{}.{partition}", self.prefix);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            "Nats-Msg-Id",
            format!("{:016x}-{}", fnv1a(bytes.iter().copied()), bytes.len()).as_str(),
        );
        let (js, status) = (self.js.clone(), self.status.clone());
        Box::pin(async move {
            let unavailable = |e: &dyn std::fmt::Display| {
                count(&status.publish_failures);
                StoreError::Unavailable(format!("the ingest bus did not take the batch: {e}"))
            };
            let ack = js
                .publish_with_headers(subject, headers, bytes.into())
                .await
                .map_err(|e| unavailable(&e))?;
            ack.await.map_err(|e| unavailable(&e))?;
            count(&status.published);
            Ok(IngestOutcome {
                stored: records,
                duplicates: 0,
                gaps: 0,
            })
        })
    }
}

/// How long a worker waits before JetStream delivers again a batch its
/// store could not commit.
const RETRY_AFTER: Duration = Duration::from_secs(2);
/// How long before a batch this build cannot read comes back.
const UNREADABLE_RETRY: Duration = Duration::from_secs(60);

/// A worker: takes the bus's batches into this process's store until
/// `stop`. Each partition has a durable consumer of its own (`CONSUMER-N`,
/// filtered on `PREFIX.N`) and is taken by one worker at a time, so the
/// batches of one sender are stored in the order they were published.
/// Workers sharing a database (PostgreSQL) divide the partitions among
/// them with the store's claims: each takes its share of the workers that
/// hold a presence claim, a worker that stops gives its partitions up, and
/// one that dies loses them with its connection; the others take them.
pub async fn run_worker(app: AppState, config: BusConfig, mut stop: watch::Receiver<bool>) {
    loop {
        match work(&app, &config, &mut stop).await {
            Ok(()) => return,
            Err(e) => {
                warn!(error = %e, "worker: the bus failed; connecting again in 2 s");
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
            }
        }
    }
}

/// Claims of workers on a shared database: a presence claim per live
/// worker (one of `MAX_WORKERS` slots) and one per partition taken.
const WORKER_CLAIMS: i64 = 0x6364_7268_7562_1000;
const MAX_WORKERS: i64 = 256;
const PARTITION_CLAIMS: i64 = 0x6364_7268_7562_2000;
/// How often a worker looks at its share of the partitions.
const REBALANCE_EVERY: Duration = Duration::from_secs(1);

/// The store's claims, shared by the tasks that take and release them.
pub(crate) type SharedClaims = Arc<std::sync::Mutex<Box<dyn cdrhub_store::Claims>>>;

/// The claims of this process's store (`None`: the store is the process's
/// alone), asked for off the async threads (it opens a connection).
pub(crate) async fn claims_of(app: &AppState) -> anyhow::Result<Option<SharedClaims>> {
    let store = app.store.clone();
    Ok(tokio::task::spawn_blocking(move || store.claims())
        .await??
        .map(|c| Arc::new(std::sync::Mutex::new(c))))
}

/// Gives the claims up (their locks go with them) off the async threads:
/// dropping them is a query.
pub(crate) async fn release_claims(claims: SharedClaims) {
    let _ = tokio::task::spawn_blocking(move || drop(claims)).await;
}

/// Runs a blocking claims call off the async threads.
pub(crate) async fn with_claims<T: Send + 'static>(
    claims: &SharedClaims,
    f: impl FnOnce(&mut dyn cdrhub_store::Claims) -> Result<T, StoreError> + Send + 'static,
) -> anyhow::Result<T> {
    let claims = claims.clone();
    let out = tokio::task::spawn_blocking(move || {
        let mut c = claims.lock().unwrap_or_else(|e| e.into_inner());
        f(c.as_mut())
    })
    .await?;
    Ok(out?)
}

/// A partition this worker consumes: its task and what stops it.
struct Taken {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Taken {
    /// Stops after the batch in hand is stored and acknowledged, so the
    /// next owner starts where this one ended.
    async fn give_up(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn work(
    app: &AppState,
    config: &BusConfig,
    stop: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let js = connect(config).await?;
    let stream = js.get_stream(&config.stream).await?;
    let claims = claims_of(app).await?;
    let partitions = config.partitions;
    info!(nats = %config.nats, stream = %config.stream, partitions, shared = claims.is_some(), "worker: taking batches from the bus");
    let mut taken: std::collections::BTreeMap<u32, Taken> = Default::default();
    let result = async {
        let Some(claims) = &claims else {
            // The store is this process's alone: every partition is ours.
            for n in 0..partitions {
                taken.insert(n, take(app, config, &stream, n).await?);
            }
            let _ = stop.wait_for(|s| *s).await;
            return Ok(());
        };
        let slot = with_claims(claims, |c| {
            for slot in 0..MAX_WORKERS {
                if c.try_take(WORKER_CLAIMS + slot)? {
                    return Ok(Some(slot));
                }
            }
            Ok(None)
        })
        .await?
        .ok_or_else(|| anyhow::anyhow!("{MAX_WORKERS} workers already share this database"))?;
        info!(
            slot,
            "worker: present among the workers of the shared store"
        );
        loop {
            let (alive, workers) = with_claims(claims, |c| {
                let alive = c.alive();
                let workers = if alive {
                    c.held(WORKER_CLAIMS, WORKER_CLAIMS + MAX_WORKERS - 1)?
                } else {
                    0
                };
                Ok((alive, workers))
            })
            .await?;
            if !alive {
                anyhow::bail!("lost the database connection that held this worker's partitions");
            }
            let share = partitions.div_ceil(workers.max(1)) as usize;
            while taken.len() > share {
                let (n, t) = taken.pop_last().expect("more than the share");
                t.give_up().await;
                with_claims(claims, move |c| c.release(PARTITION_CLAIMS + i64::from(n))).await?;
                info!(
                    partition = n,
                    "worker: gave up a partition to another worker"
                );
            }
            for n in 0..partitions {
                if taken.len() >= share {
                    break;
                }
                if taken.contains_key(&n) {
                    continue;
                }
                if with_claims(claims, move |c| c.try_take(PARTITION_CLAIMS + i64::from(n))).await?
                {
                    match take(app, config, &stream, n).await {
                        Ok(t) => {
                            taken.insert(n, t);
                        }
                        Err(e) => {
                            let _ = with_claims(claims, move |c| {
                                c.release(PARTITION_CLAIMS + i64::from(n))
                            })
                            .await;
                            return Err(e);
                        }
                    }
                }
            }
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return Ok(()),
                _ = tokio::time::sleep(REBALANCE_EVERY) => {}
            }
        }
    }
    .await;
    for (_, t) in std::mem::take(&mut taken) {
        t.give_up().await;
    }
    if let Some(claims) = claims {
        release_claims(claims).await;
    }
    result
}

/// Starts consuming partition `n` on its durable consumer.
async fn take(
    app: &AppState,
    config: &BusConfig,
    stream: &stream::Stream,
    n: u32,
) -> anyhow::Result<Taken> {
    let name = format!("{}-{n}", config.consumer);
    let consumer: consumer::PullConsumer = stream
        .get_or_create_consumer(
            &name,
            consumer::pull::Config {
                durable_name: Some(name.clone()),
                filter_subject: format!("{}.{n}", config.subject_prefix),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(30),
                max_ack_pending: 10_000,
                ..Default::default()
            },
        )
        .await?;
    let (stop, stopped) = watch::channel(false);
    let app = app.clone();
    let task = tokio::spawn(async move {
        while !*stopped.borrow() {
            if let Err(e) = consume(&app, &consumer).await {
                warn!(error = %e, partition = n, "worker: reading a partition failed; again in 2 s");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    });
    Ok(Taken { stop, task })
}

/// Takes one fetch of batches from `consumer` into the store: every batch
/// is submitted at once, in order (the store's writer commits them in that
/// order, many in one transaction), then each is acknowledged after its
/// own commit.
async fn consume(app: &AppState, consumer: &consumer::PullConsumer) -> anyhow::Result<()> {
    let status = &app.metrics.bus;
    let mut batch = consumer
        .fetch()
        .max_messages(1_000)
        .expires(Duration::from_millis(500))
        .messages()
        .await?;
    let mut submitted = Vec::new();
    while let Some(message) = batch.next().await {
        let message = message.map_err(|e| anyhow::anyhow!("{e}"))?;
        match cdrhub_store::wire::decode(&message.payload) {
            Ok(submission) => {
                if message.info().is_ok_and(|i| i.delivered > 1) {
                    count(&status.redelivered);
                }
                let commit = app.store.submit(submission);
                submitted.push((message, commit));
            }
            Err(e) => {
                // A collector acknowledged it, so it must not be lost: it
                // stays on the bus for a worker that reads it (one of a
                // newer build, after an upgrade), and this one says so
                // each time it comes back.
                count(&status.unreadable);
                error!(error = %e, subject = %message.subject, "worker: a batch on the bus does not read with this build; it stays there (upgrade this worker to the collectors' version)");
                let _ = message
                    .ack_with(jetstream::AckKind::Nak(Some(UNREADABLE_RETRY)))
                    .await;
            }
        }
    }
    // Polled together, in order: the writer receives them in order.
    let (messages, commits): (Vec<_>, Vec<_>) = submitted.into_iter().unzip();
    let results = futures_util::future::join_all(commits).await;
    for (message, result) in messages.into_iter().zip(results) {
        match result {
            Ok(_) => {
                count(&status.stored);
                // Not waiting for JetStream to confirm the ack (a round
                // trip per batch): an ack lost on the way only brings the
                // batch again, and the journal stores it once.
                if let Err(e) = message.ack().await {
                    warn!(error = %e, "worker: an ack did not reach the bus; the batch will come again (stored once)");
                }
            }
            Err(e) => {
                count(&status.commit_failures);
                warn!(error = %e, "worker: the store could not commit a batch; the bus delivers it again");
                let _ = message
                    .ack_with(jetstream::AckKind::Nak(Some(RETRY_AFTER)))
                    .await;
            }
        }
    }
    Ok(())
}

/// Sends `batch` where this process's ingest goes: the bus for a collector,
/// else its own store.
pub(crate) fn submit(app: &AppState, batch: IngestBatch) -> Ack {
    match &app.bus {
        Some(collector) => collector.publish(batch),
        None => {
            let ack = app.store.submit(batch);
            let metrics = app.metrics.clone();
            Box::pin(async move {
                let result = ack.await;
                metrics.writes.note(&result);
                result
            })
        }
    }
}

/// Whether this process runs its sources' listeners.
pub(crate) fn collects(app: &AppState) -> bool {
    app.config
        .bus
        .as_ref()
        .is_none_or(|b| b.has(BusRole::Collector))
}

/// Whether this process keeps the calls (no bus, or the worker role): a
/// collector-only process exports and sends webhooks of nothing.
pub(crate) fn stores(app: &AppState) -> bool {
    app.config
        .bus
        .as_ref()
        .is_none_or(|b| b.has(BusRole::Worker))
}

/// A process with `[bus]` and the collector role publishes; the others
/// store directly.
pub async fn collector_for(
    config: &crate::Config,
    status: Arc<BusStatus>,
) -> anyhow::Result<Option<Arc<Collector>>> {
    match &config.bus {
        Some(bus) if bus.has(BusRole::Collector) => {
            Ok(Some(Arc::new(Collector::connect(bus, status).await?)))
        }
        _ => Ok(None),
    }
}
