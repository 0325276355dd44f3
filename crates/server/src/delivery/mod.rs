//! Delivery of export files and webhooks, neither lost nor doubled.
//!
//! A producer (the scheduled export, the webhook of an ended call) puts an
//! [`Item`] in the [`Spool`], which keeps it on disk until it is delivered;
//! [`run`] takes each target's items oldest first, delivers them to their
//! [`Target`] (a directory, or an HTTP(S) POST), and retries a failure with
//! exponential backoff ([`Backoff`]). A restart resumes from the spool.
//!
//! The guarantee is at least once, made effectively once by ids: an item's
//! id is stable, the spool refuses an id it has spooled or delivered, a
//! directory delivery replaces the same file, and an HTTP delivery carries
//! the id in `X-Cdrhub-Delivery` for the receiver to drop a repeat (one
//! happens only when a 2xx answer is lost, or the process stops between the
//! answer and recording it). See [`http`] for the signature.
//!
//! Each target has its own loop, so a failing one holds up only its own
//! items; within a target, order is kept: the oldest item is retried until
//! delivered before the next is tried.

mod directory;
pub mod http;
mod spool;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cdrhub_model::Timestamp;
use serde::Serialize;
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

pub use spool::{KEEP_DELIVERED, SPOOL_FILE, STATUS_DELIVERED_LIMIT, STATUS_PENDING_LIMIT, Spool};

use http::HttpClient;
use spool::Pending;

/// A failing target is logged at its first failure, then at most this often.
const LOG_FAILURES_EVERY: Duration = Duration::from_secs(60);
/// How often ids delivered more than [`KEEP_DELIVERED`] ago are forgotten.
const FORGET_EVERY: Duration = Duration::from_secs(3600);

/// Where a target's items go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Write each item as the file [`Item::name`] into this directory,
    /// atomically (a temporary name in the same directory, fsync, rename).
    /// The directory must exist.
    Directory(PathBuf),
    /// POST each item's body to `url`; a 2xx answer is a delivery, anything
    /// else, or no answer within `timeout`, a failure to retry.
    Http {
        url: String,
        /// Sent with every request (an `Authorization`, say).
        headers: Vec<(String, String)>,
        /// Signs each request (see [`http`]).
        hmac_secret: Option<String>,
        timeout: Duration,
    },
}

/// One thing to deliver: an export file or one webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Unique and stable, so a repeat is recognised: `export:cdrs:2026-12-01T10`,
    /// `webhook:<call id>`. Sent as `X-Cdrhub-Delivery`.
    pub id: String,
    /// The file name in a [`Target::Directory`], and the `filename` of the
    /// `Content-Disposition` of a POST: a plain name, no path.
    pub name: String,
    /// `text/csv`, `application/x-ndjson`, `application/json`.
    pub content_type: String,
    pub body: Vec<u8>,
    /// The key of its [`Target`] in the map given to [`run`].
    pub target_name: String,
}

impl Item {
    fn check(&self) -> anyhow::Result<()> {
        if self.id.is_empty() {
            bail!("an item to deliver has no id");
        }
        if self.target_name.is_empty() {
            bail!("the item {} has no target", self.id);
        }
        let n = &self.name;
        if n.is_empty()
            || n == "."
            || n == ".."
            || n.starts_with('.')
            || n.chars()
                .any(|c| c.is_control() || matches!(c, '/' | '\\' | '"'))
        {
            bail!(
                "the item {} is named {n:?}, not a plain file name (no path, quote or leading dot)",
                self.id
            );
        }
        Ok(())
    }
}

/// What the console shows of one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemStatus {
    pub id: String,
    pub target_name: String,
    pub name: String,
    pub content_type: String,
    /// The size of the body.
    pub bytes: u64,
    pub added_at: Timestamp,
    /// Attempts made, the successful one included.
    pub attempts: u32,
    /// Why the last attempt failed; `None` once delivered.
    pub last_error: Option<String>,
    pub last_attempt_at: Option<Timestamp>,
    /// Not before then is the item tried (again); `None` once delivered. An
    /// item behind a failing one in its target waits for it, whatever this
    /// says.
    pub next_attempt_at: Option<Timestamp>,
    pub delivered_at: Option<Timestamp>,
}

/// How long to wait after a failure: `first`, doubling with every failure
/// of the same item, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            first: Duration::from_secs(1),
            max: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    /// The wait after the `failures`-th failure in a row (1 for the first).
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.first
            .checked_mul(1 << doublings)
            .unwrap_or(self.max)
            .min(self.max)
    }
}

/// How [`run`] delivers.
#[derive(Debug, Clone, Default)]
pub struct DeliveryOptions {
    pub backoff: Backoff,
    /// The TLS settings of `https://` targets (the certificates trusted);
    /// `None`: the system's trusted roots (`SSL_CERT_FILE` and
    /// `SSL_CERT_DIR` are honoured).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// Delivers the spooled items to their targets until `stop` changes to
/// true (or its sender is dropped): each target in its own loop, oldest item
/// first, a failure retried with `options.backoff`. An attempt under way
/// when `stop` comes is finished (an HTTP one within its timeout) and
/// recorded, so it is not made again after a restart.
///
/// Items whose target is not in `targets` stay in the spool, untouched.
pub async fn run(
    spool: Arc<Spool>,
    targets: HashMap<String, Target>,
    options: DeliveryOptions,
    mut stop: watch::Receiver<bool>,
) {
    let tls = options.tls.clone();
    let http = match tokio::task::spawn_blocking(move || HttpClient::new(tls)).await {
        Ok(client) => Arc::new(client),
        Err(e) => {
            error!("delivery cannot start: {e}");
            return;
        }
    };
    if let Some(e) = http.tls_error() {
        let https = |t: &Target| matches!(t, Target::Http { url, .. } if url.starts_with("https:"));
        if targets.values().any(https) {
            warn!("HTTPS deliveries will fail until the server is restarted: {e}");
        }
    }
    {
        let spool = spool.clone();
        if let Ok(Ok(pending)) = tokio::task::spawn_blocking(move || spool.pending_targets()).await
        {
            for name in pending.iter().filter(|n| !targets.contains_key(*n)) {
                warn!(
                    target_name = %name,
                    "items are spooled for delivery to {name}, which is not configured: they wait until it is"
                );
            }
        }
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (name, target) in targets {
        tasks.spawn(
            TargetLoop {
                name,
                target,
                spool: spool.clone(),
                http: http.clone(),
                backoff: options.backoff,
                stop: stop.clone(),
                log: FailureLog::default(),
            }
            .run(),
        );
    }
    tasks.spawn(async move {
        loop {
            let spool = spool.clone();
            let before = Timestamp(Timestamp::now().millis() - KEEP_DELIVERED.as_millis() as i64);
            match tokio::task::spawn_blocking(move || spool.forget_delivered(before)).await {
                Ok(Ok(n)) if n > 0 => debug!("forgot {n} ids delivered before {before}"),
                Ok(Err(e)) => warn!("cannot forget old delivered ids: {e:#}"),
                _ => {}
            }
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                () = tokio::time::sleep(FORGET_EVERY) => {}
            }
        }
    });
    while let Some(r) = tasks.join_next().await {
        if let Err(e) = r {
            error!("a delivery loop ended abnormally: {e}");
        }
    }
}

/// The delivery of one target's items.
struct TargetLoop {
    name: String,
    target: Target,
    spool: Arc<Spool>,
    http: Arc<HttpClient>,
    backoff: Backoff,
    stop: watch::Receiver<bool>,
    log: FailureLog,
}

impl TargetLoop {
    async fn run(mut self) {
        let mut added = self.spool.subscribe();
        // Failures of the spool itself (the disk), in a row.
        let mut spool_failures = 0;
        loop {
            if *self.stop.borrow() {
                return;
            }
            // Marks the additions seen before looking, so one made after the
            // look wakes the wait below.
            added.borrow_and_update();
            let head = {
                let spool = self.spool.clone();
                let name = self.name.clone();
                tokio::task::spawn_blocking(move || spool.head(&name)).await
            };
            let head = match head.context("the spool reader stopped").and_then(|r| r) {
                Ok(head) => head,
                Err(e) => {
                    spool_failures += 1;
                    self.log
                        .failed(&self.name, "", &format!("cannot read the spool: {e:#}"));
                    if !self.sleep(self.backoff.delay(spool_failures)).await {
                        return;
                    }
                    continue;
                }
            };
            let Some(item) = head else {
                tokio::select! {
                    _ = self.stop.wait_for(|s| *s) => return,
                    _ = added.changed() => {}
                }
                continue;
            };
            // After a restart the wait goes on; a clock set back does not
            // make it longer than the longest backoff.
            let wait = (item.next_attempt_at.millis() - Timestamp::now().millis()).max(0);
            let wait = Duration::from_millis(wait as u64).min(self.backoff.max);
            if !wait.is_zero() {
                // An operator's "try now" or "discard" ends the wait: the
                // head is read again.
                tokio::select! {
                    _ = self.stop.wait_for(|s| *s) => return,
                    _ = added.changed() => continue,
                    () = tokio::time::sleep(wait) => {}
                }
            }
            match self.record(item).await {
                Ok(()) => spool_failures = 0,
                Err(e) => {
                    spool_failures += 1;
                    self.log.failed(
                        &self.name,
                        "",
                        &format!("cannot record a delivery in the spool: {e:#}"),
                    );
                    if !self.sleep(self.backoff.delay(spool_failures)).await {
                        return;
                    }
                }
            }
        }
    }

    /// Makes one attempt at `item` and records its outcome.
    async fn record(&mut self, item: Pending) -> anyhow::Result<()> {
        let (seq, id, attempts) = (item.seq, item.id.clone(), item.attempts);
        let outcome = self.deliver(item).await;
        let now = Timestamp::now();
        let spool = self.spool.clone();
        match outcome {
            Ok(()) => {
                tokio::task::spawn_blocking(move || spool.delivered(seq, now)).await??;
                self.log.delivered(&self.name, &id);
            }
            Err(error) => {
                let failures = attempts.saturating_add(1);
                let next = now.millis() + self.backoff.delay(failures).as_millis() as i64;
                self.log.failed(&self.name, &id, &error);
                tokio::task::spawn_blocking(move || {
                    spool.failed(seq, &error, now, Timestamp(next))
                })
                .await??;
            }
        }
        Ok(())
    }

    async fn deliver(&self, item: Pending) -> Result<(), String> {
        match &self.target {
            Target::Directory(dir) => {
                let dir = dir.clone();
                tokio::task::spawn_blocking(move || {
                    directory::write_atomically(&dir, &item.name, &item.body)
                })
                .await
                .unwrap_or_else(|e| Err(format!("the file writer stopped: {e}")))
            }
            Target::Http {
                url,
                headers,
                hmac_secret,
                timeout,
            } => {
                self.http
                    .post(url, headers, hmac_secret.as_deref(), *timeout, item)
                    .await
            }
        }
    }

    /// Sleeps `d`; false if `stop` came first.
    async fn sleep(&mut self, d: Duration) -> bool {
        tokio::select! {
            _ = self.stop.wait_for(|s| *s) => false,
            () = tokio::time::sleep(d) => true,
        }
    }
}

/// Logs a target's failures without a line per retry: the first failure,
/// then at most one line every [`LOG_FAILURES_EVERY`] with the count since,
/// and one line when deliveries resume.
#[derive(Default)]
struct FailureLog {
    /// Failures since the target last delivered.
    failures: u64,
    /// Failures not logged yet.
    unlogged: u64,
    last_logged: Option<Instant>,
}

impl FailureLog {
    fn failed(&mut self, target: &str, item: &str, error: &str) {
        self.failures += 1;
        self.unlogged += 1;
        if self
            .last_logged
            .is_some_and(|at| at.elapsed() < LOG_FAILURES_EVERY)
        {
            return;
        }
        if self.failures == 1 {
            warn!(target_name = %target, item, "delivery failed, will retry: {error}");
        } else {
            warn!(
                target_name = %target,
                item,
                failures = self.failures,
                "delivery still failing ({} failures since the last line), will retry: {error}",
                self.unlogged
            );
        }
        self.unlogged = 0;
        self.last_logged = Some(Instant::now());
    }

    fn delivered(&mut self, target: &str, item: &str) {
        if self.failures > 0 {
            info!(
                target_name = %target,
                item,
                "delivering again after {} failures",
                self.failures
            );
        } else {
            debug!(target_name = %target, item, "delivered");
        }
        *self = FailureLog::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_max() {
        let b = Backoff::default();
        let secs: Vec<u64> = (1..=12).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(b.delay(u32::MAX), b.max);
    }

    fn item(name: &str) -> Item {
        Item {
            id: "export:cdrs:2026-12-01T10".into(),
            name: name.into(),
            content_type: "text/csv".into(),
            body: b"a,b\n".to_vec(),
            target_name: "sftp-drop".into(),
        }
    }

    #[test]
    fn an_item_name_is_a_plain_file_name() {
        assert!(item("cdrs-2026-12-01T10.csv").check().is_ok());
        for bad in [
            "", ".", "..", "../x.csv", "a/b.csv", "a\\b", ".hidden", "a\"b", "a\nb",
        ] {
            assert!(item(bad).check().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_id_is_spooled_once() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        assert!(spool.add(item("a.csv")).unwrap());
        assert!(!spool.add(item("b.csv")).unwrap());
        let status = spool.status().unwrap();
        assert_eq!(status.len(), 1);
        assert_eq!(status[0].name, "a.csv");
        assert_eq!(status[0].attempts, 0);
        assert_eq!(status[0].bytes, 4);
    }

    #[test]
    fn a_forgotten_id_can_be_spooled_again() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        assert!(spool.add(item("a.csv")).unwrap());
        let head = spool.head("sftp-drop").unwrap().unwrap();
        spool.delivered(head.seq, Timestamp(1_000)).unwrap();
        assert!(spool.head("sftp-drop").unwrap().is_none());
        assert!(!spool.add(item("a.csv")).unwrap());
        assert_eq!(spool.forget_delivered(Timestamp(1_001)).unwrap(), 1);
        assert!(spool.add(item("a.csv")).unwrap());
    }
}
