//! The embedded store: two SQLite files in WAL mode. `cdrhub.db` holds the
//! journal; one writer thread owns its write connection and commits many
//! submissions in one transaction. `calls.db` holds the calls and legs
//! derived from the journal; the correlator thread owns its write connection.
//! Readers use a small pool of connections that see both files.

mod accounts;
mod agents;
mod backup;
mod cc;
mod correlation;
mod correlator;
mod gateways;
mod group;
mod key_filter;
mod prune;
mod read;
mod records;
mod registrations;
mod rollup;
mod schema;
mod stats;
mod writer;

pub use accounts::SqliteAccounts;
pub use backup::{BackupSummary, backup, pending_restore, restore, stage_restore};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot};

use crate::{
    Ack, CallDetail, CallFilter, CallPage, CallSearch, CallSort, Gap, GapFilter, IngestBatch,
    SenderStats, Store, StoreError, StoreTotals,
};
use correlator::{CorrelatorHandle, Progress, spawn_correlator};
use writer::{WriterMsg, spawn_writer};

/// How hard a commit waits for the disk (SQLite `PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// Every commit reaches the disk before it is acknowledged: survives a
    /// power cut. The default.
    Full,
    /// Survives a crash of cdrhub but not of the machine; faster on slow disks.
    Normal,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

#[derive(Debug, Clone)]
pub struct SqliteOptions {
    pub synchronous: Synchronous,
    /// How long a write waits for a lock held by another process before the
    /// submission fails (and the sender is told to retry).
    pub busy_timeout: Duration,
    /// Most records committed in one transaction.
    pub max_batch_records: usize,
    /// Submissions waiting for the writer before senders are slowed down.
    pub queue_depth: usize,
    /// SIP dialogs without a message for this long are closed (issue 6).
    pub dialog_timeouts: cdrhub_correlate::sip::DialogTimeouts,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(5),
            max_batch_records: 20_000,
            queue_depth: 4096,
            dialog_timeouts: Default::default(),
        }
    }
}

/// Records received per second over the last minute, per sender, for
/// `records_last_minute` (not persisted: it is a rate, not a count).
#[derive(Default)]
pub(crate) struct RecentRates {
    per_sender: HashMap<(String, String), [(i64, u64); 60]>,
}

impl RecentRates {
    pub(crate) fn add(&mut self, source: &str, sender: &str, now_s: i64, n: u64) {
        let slots = self
            .per_sender
            .entry((source.to_owned(), sender.to_owned()))
            .or_insert([(0, 0); 60]);
        let slot = &mut slots[now_s.rem_euclid(60) as usize];
        if slot.0 != now_s {
            *slot = (now_s, 0);
        }
        slot.1 += n;
    }

    fn last_minute(&self, source: &str, sender: &str, now_s: i64) -> u64 {
        self.per_sender
            .get(&(source.to_owned(), sender.to_owned()))
            .map(|slots| {
                slots
                    .iter()
                    .filter(|(s, _)| now_s - s < 60)
                    .map(|(_, n)| n)
                    .sum()
            })
            .unwrap_or(0)
    }
}

pub struct SqliteStore {
    path: PathBuf,
    calls_path: PathBuf,
    writer: Option<std::thread::JoinHandle<()>>,
    correlator: Option<CorrelatorHandle>,
    correlator_thread: Option<std::thread::JoinHandle<()>>,
    checkpointer: Option<std::thread::JoinHandle<()>>,
    /// Held for the store's life: one writing process per data directory.
    _lock: std::fs::File,
    /// Dropping it stops the checkpoint thread.
    stop_checkpointer: Option<std::sync::mpsc::Sender<()>>,
    tx: mpsc::Sender<WriterMsg>,
    readers: Mutex<Vec<Connection>>,
    rates: Arc<Mutex<RecentRates>>,
    accounts: SqliteAccounts,
}

impl SqliteStore {
    /// Opens (creating if needed) `cdrhub.db` in `data_dir`, migrates it and
    /// starts the writer thread.
    pub fn open(data_dir: &Path, options: SqliteOptions) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Open(format!(
                "cannot create data directory {}: {e}",
                data_dir.display()
            ))
        })?;
        if let Some(restored) = backup::apply_staged_restore(data_dir)? {
            tracing::warn!(
                records = restored.records,
                "restored the backup uploaded in the console; calls are rebuilt from it now"
            );
        }
        let lock = lock_data_dir(data_dir)?;
        let path = data_dir.join("cdrhub.db");
        let calls_path = data_dir.join("calls.db");
        let mut conn = open_wal(
            &path,
            options.busy_timeout,
            options.synchronous,
            JOURNAL_CACHE_KIB,
        )?;
        schema::migrate_journal(&mut conn)
            .map_err(|e| StoreError::Open(format!("{}: {e}", path.display())))?;
        // Calls are rebuilt from the journal after a crash: their commits
        // need not wait for the disk.
        let mut calls = open_wal(
            &calls_path,
            options.busy_timeout,
            Synchronous::Normal,
            CALLS_CACHE_KIB,
        )?;
        schema::migrate_calls(&mut calls)
            .map_err(|e| StoreError::Open(format!("{}: {e}", calls_path.display())))?;
        let journal_reader = open_reader(&path, None)?;

        let progress = Arc::new(Progress::default());
        let journaled: i64 = conn
            .query_row("SELECT coalesce(max(id), 0) FROM journal", [], |r| r.get(0))
            .map_err(|e| StoreError::Open(format!("{}: {e}", path.display())))?;
        progress
            .journaled
            .store(journaled, std::sync::atomic::Ordering::Release);
        let (stop_checkpointer, checkpointer) =
            spawn_checkpointer(&[path.as_path(), calls_path.as_path()])?;
        let rates = Arc::new(Mutex::new(RecentRates::default()));
        let (correlator, correlator_thread) = spawn_correlator(
            calls,
            journal_reader,
            options.busy_timeout,
            options.dialog_timeouts,
            progress.clone(),
        );
        let (tx, writer) = spawn_writer(
            conn,
            options.clone(),
            rates.clone(),
            correlator.clone(),
            progress,
        );
        let store = SqliteStore {
            path,
            calls_path,
            _lock: lock,
            writer: Some(writer),
            correlator: Some(correlator),
            correlator_thread: Some(correlator_thread),
            checkpointer: Some(checkpointer),
            stop_checkpointer: Some(stop_checkpointer),
            tx,
            readers: Mutex::new(Vec::new()),
            rates,
            accounts: SqliteAccounts::open(data_dir)?,
        };
        // Fail now, not at the first query, if reads cannot work.
        store.with_reader(|_| Ok(()))?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes calls and legs reflect every record acknowledged so far. The
    /// correlator writes them lazily; a reader of calls asks for them now,
    /// and only when something is unwritten.
    fn catch_up(&self) {
        if let Some(c) = &self.correlator {
            c.catch_up();
        }
    }

    fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self.readers.lock().map(|mut r| r.pop()).unwrap_or(None);
        let conn = match pooled {
            Some(c) => c,
            None => open_reader(&self.path, Some(&self.calls_path))?,
        };
        let result = f(&conn);
        if let Ok(mut pool) = self.readers.lock()
            && pool.len() < 8
        {
            pool.push(conn);
        }
        result
    }
}

/// Takes the data directory for this process: one writer of its files at a
/// time. Held as long as the returned file is open.
pub(crate) fn lock_data_dir(data_dir: &Path) -> Result<std::fs::File, StoreError> {
    let lock_path = data_dir.join("cdrhub.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| StoreError::Open(format!("cannot open {}: {e}", lock_path.display())))?;
    if lock.try_lock().is_err() {
        return Err(StoreError::Open(format!(
            "another cdrhub process is using {}; stop it first (or send it the records over its ingest paths)",
            data_dir.display()
        )));
    }
    Ok(lock)
}

/// Page cache of the journal's writer: the journal grows at its end, so
/// little of it is read back.
const JOURNAL_CACHE_KIB: i64 = 8 * 1024;
/// Page cache of the correlator: call keys are random, and every page of
/// their index that is not cached costs a read.
const CALLS_CACHE_KIB: i64 = 8 * 1024;

/// Opens a database file for writing in WAL mode.
fn open_wal(
    path: &Path,
    busy_timeout: Duration,
    synchronous: Synchronous,
    cache_kib: i64,
) -> Result<Connection, StoreError> {
    let open_err = |e: rusqlite::Error| StoreError::Open(format!("{}: {e}", path.display()));
    let conn = Connection::open(path).map_err(open_err)?;
    conn.busy_timeout(busy_timeout).map_err(open_err)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(open_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Open(format!(
            "{}: the database refused WAL mode (got {mode})",
            path.display()
        )));
    }
    conn.pragma_update(None, "synchronous", synchronous.pragma())
        .map_err(open_err)?;
    conn.pragma_update(None, "cache_size", -cache_kib)
        .map_err(open_err)?;
    // Writers never checkpoint; a thread of its own does (below), so copying
    // the WAL into the database does not hold up commits.
    conn.pragma_update(None, "wal_autocheckpoint", 0)
        .map_err(open_err)?;
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)
        .map_err(open_err)?;
    conn.pragma_update(None, "foreign_keys", "OFF")
        .map_err(open_err)?;
    Ok(conn)
}

/// A read-only connection to `cdrhub.db`, with `calls.db` attached when given
/// (table names differ, so queries name tables of either file plainly).
fn open_reader(path: &Path, calls: Option<&Path>) -> Result<Connection, StoreError> {
    let open_err = |e: rusqlite::Error| StoreError::Open(format!("{}: {e}", path.display()));
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_err)?;
    c.busy_timeout(Duration::from_secs(5)).map_err(open_err)?;
    if let Some(calls) = calls {
        c.execute(
            "ATTACH DATABASE ?1 AS derived",
            [calls.to_string_lossy().as_ref()],
        )
        .map_err(|e| StoreError::Open(format!("{}: {e}", calls.display())))?;
    }
    Ok(c)
}

/// Frames (4 KiB pages) the WAL may hold before it is made to start over.
const MAX_WAL_FRAMES: i64 = 16_384;

/// Copies each file's WAL into the database every half second from
/// connections of its own (a passive checkpoint never blocks the writers or
/// readers).
fn spawn_checkpointer(
    paths: &[&Path],
) -> Result<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>), StoreError> {
    let conns = paths
        .iter()
        .map(|path| {
            let conn = Connection::open(path)
                .map_err(|e| StoreError::Open(format!("{}: {e}", path.display())))?;
            conn.busy_timeout(Duration::from_secs(5))
                .map_err(|e| StoreError::Open(format!("{}: {e}", path.display())))?;
            Ok(conn)
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let handle = std::thread::Builder::new()
        .name("cdrhub-checkpoint".into())
        .spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(Duration::from_millis(500))
            {
                for conn in &conns {
                    checkpoint(conn);
                }
            }
            // Leave small WALs behind on a clean shutdown.
            for conn in &conns {
                let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
            }
        })
        .map_err(|e| StoreError::Open(format!("cannot start the checkpoint thread: {e}")))?;
    Ok((stop, handle))
}

/// Copies what it can of the WAL into the database without blocking anyone,
/// and makes the log start over once it is past `MAX_WAL_FRAMES`.
fn checkpoint(conn: &Connection) {
    let started = std::time::Instant::now();
    // (busy, frames in the log, frames copied into the database)
    let passive = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
    });
    if let Ok((_, frames)) = passive {
        tracing::trace!(
            db = conn.path().unwrap_or_default(),
            frames,
            micros = started.elapsed().as_micros() as u64,
            "passive checkpoint"
        );
    }
    match passive {
        // Under continuous writes a passive checkpoint never lets the log
        // start over. Past a size, make it: a RESTART holds the writer only
        // while it copies the last frames.
        Ok((_, frames)) if frames > MAX_WAL_FRAMES => {
            let started = std::time::Instant::now();
            let restart = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()));
            match restart {
                Ok(()) => tracing::trace!(
                    db = conn.path().unwrap_or_default(),
                    micros = started.elapsed().as_micros() as u64,
                    "restart checkpoint"
                ),
                Err(e) => tracing::warn!(error = %e, "WAL restart checkpoint failed; will retry"),
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; will retry"),
    }
}

impl Drop for SqliteStore {
    /// Closes the store: the writer finishes what is queued, the correlator
    /// writes the calls it holds, the checkpointer stops, and only then is
    /// the data directory's lock released.
    fn drop(&mut self) {
        let (closed_tx, _) = mpsc::channel(1);
        drop(std::mem::replace(&mut self.tx, closed_tx));
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
        drop(self.correlator.take());
        if let Some(c) = self.correlator_thread.take() {
            let _ = c.join();
        }
        drop(self.stop_checkpointer.take());
        if let Some(c) = self.checkpointer.take() {
            let _ = c.join();
        }
    }
}

impl Store for SqliteStore {
    fn submit(&self, batch: IngestBatch) -> Ack {
        let tx = self.tx.clone();
        Box::pin(async move {
            let (ack_tx, ack_rx) = oneshot::channel();
            tx.send(WriterMsg::Ingest { batch, ack: ack_tx })
                .await
                .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?;
            ack_rx.await.map_err(|_| {
                StoreError::Unavailable("the writer stopped before committing".into())
            })?
        })
    }

    fn record_rejected(&self, source: &str, sender: &str, reason: &str) {
        // Best effort: a full queue must not hold up the rejection answer.
        let _ = self.tx.try_send(WriterMsg::Rejected {
            source: source.to_owned(),
            sender: sender.to_owned(),
            reason: reason.to_owned(),
        });
    }

    fn list_calls(&self, filter: &CallFilter) -> Result<CallPage, StoreError> {
        self.catch_up();
        self.with_reader(|c| read::list_calls(c, filter))
    }

    fn search_calls(
        &self,
        filter: &CallFilter,
        sort: CallSort,
        descending: bool,
        offset: u64,
    ) -> Result<CallSearch, StoreError> {
        self.catch_up();
        self.with_reader(|c| read::search_calls(c, filter, sort, descending, offset))
    }

    fn day_stats(
        &self,
        day: cdrhub_model::Timestamp,
        source: Option<&str>,
        sender: Option<&str>,
    ) -> Result<crate::DayStats, StoreError> {
        self.catch_up();
        self.with_reader(|c| stats::day_stats(c, day, source, sender))
    }

    fn live_status(
        &self,
        now: cdrhub_model::Timestamp,
        active_limit: usize,
    ) -> Result<crate::LiveStatus, StoreError> {
        self.catch_up();
        self.with_reader(|c| stats::live_status(c, now, active_limit))
    }

    fn recent_records(
        &self,
        sender: Option<&str>,
        limit: usize,
    ) -> Result<Vec<crate::RecentRecord>, StoreError> {
        // Straight from the journal: nothing to bring up to date first.
        self.with_reader(|c| read::recent_records(c, sender, limit))
    }

    fn get_call(&self, id: &str) -> Result<Option<CallDetail>, StoreError> {
        self.catch_up();
        self.with_reader(|c| read::get_call(c, id))
    }

    fn force_end(
        &self,
        call_id: &str,
        at: cdrhub_model::Timestamp,
        actor: &str,
    ) -> Result<crate::ForceEnd, StoreError> {
        self.catch_up();
        let keys = match self.with_reader(|c| read::keys_of_open_call(c, call_id))? {
            None => return Ok(crate::ForceEnd::NotFound),
            Some(None) => return Ok(crate::ForceEnd::AlreadyEnded),
            Some(Some(keys)) => keys,
        };
        // Kept first: from then on every rebuild of the call ends it.
        self.accounts
            .with(|c| records::record_forced_end(c, &keys, at, actor))?;
        let written = self
            .correlator
            .as_ref()
            .is_some_and(|c| c.force_end(keys, at));
        Ok(if written {
            crate::ForceEnd::Ended
        } else {
            crate::ForceEnd::NotFound
        })
    }

    fn prune(
        &self,
        request: &crate::PruneRequest,
        progress: &mut dyn FnMut(&crate::PruneReport),
    ) -> Result<crate::PruneReport, StoreError> {
        use prune::CallsStep;
        let mut report = crate::PruneReport::default();
        let failed = |what: &str, e: rusqlite::Error| {
            StoreError::Unavailable(format!("removing old {what} failed: {e}"))
        };
        if let Some(before) = request.calls_before {
            let correlator = self
                .correlator
                .as_ref()
                .ok_or_else(|| StoreError::Unavailable("the correlator has stopped".into()))?;
            // Whole days, so each hour's statistics go with its calls.
            const DAY_MS: i64 = 86_400_000;
            let before_ms = before.0.div_euclid(DAY_MS) * DAY_MS;
            // No catch-up first: it would write every call in progress at
            // once, a stall for the senders; a call not written yet is in
            // use, and the next run takes it if it is old.
            let mut step = Some(CallsStep::Calls {
                before_ms,
                after: None,
            });
            while let Some(this) = step.take() {
                let done = correlator
                    .prune(this.clone())
                    .map_err(|e| failed("calls", e))?;
                step = done.next.or(match this {
                    CallsStep::Calls { .. } => Some(CallsStep::Statistics {
                        before_s: before_ms / 1000,
                    }),
                    CallsStep::Statistics { .. } => None,
                });
                match this {
                    CallsStep::Calls { .. } => {
                        report.calls += done.removed;
                        report.legs += done.legs;
                        report.records += self
                            .accounts
                            .with(|c| prune::remove_records(c, &done.records))
                            .map_err(|e| {
                                StoreError::Unavailable(format!(
                                    "removing the records of old calls failed: {e}"
                                ))
                            })?;
                    }
                    CallsStep::Statistics { .. } => report.statistics_rows += done.removed,
                }
                progress(&report);
            }
            // Records of no call (or received long after their call) by age.
            let correlated = correlator.correlated();
            loop {
                let (removed, more) = self
                    .accounts
                    .with(|c| prune::journal_step(c, before_ms, correlated))
                    .map_err(|e| {
                        StoreError::Unavailable(format!("removing old records failed: {e}"))
                    })?;
                report.records += removed;
                progress(&report);
                if !more {
                    break;
                }
            }
        }
        if let Some(before) = request.audit_before {
            loop {
                let (removed, more) = self.accounts.with(|c| prune::audit_step(c, before.0))?;
                report.audit_entries += removed;
                progress(&report);
                if !more {
                    break;
                }
            }
        }
        if let Some(before) = request.gaps_before {
            report.gaps += self.accounts.with(|c| prune::remove_gaps(c, before.0))?;
            progress(&report);
        }
        let now = cdrhub_model::Timestamp::now().0;
        self.accounts
            .with(|c| prune::remove_housekeeping(c, request.calls_before.map(|t| t.0), now))?;
        Ok(report)
    }

    fn storage(&self) -> Result<crate::StorageStatus, StoreError> {
        let size = |path: &Path| -> u64 {
            let mut wal = path.as_os_str().to_owned();
            wal.push("-wal");
            [path, Path::new(&wal)]
                .iter()
                .filter_map(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .sum()
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let fs = rustix::fs::statvfs(dir).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot read the free space of {}: {e}",
                dir.display()
            ))
        })?;
        Ok(crate::StorageStatus {
            journal_bytes: size(&self.path),
            calls_bytes: size(&self.calls_path),
            disk_free_bytes: fs.f_bavail.saturating_mul(fs.f_frsize),
            disk_total_bytes: fs.f_blocks.saturating_mul(fs.f_frsize),
        })
    }

    fn contact_centre_day(
        &self,
        day: cdrhub_model::Timestamp,
        sender: Option<&str>,
    ) -> Result<crate::ContactCentreDay, StoreError> {
        self.catch_up();
        self.with_reader(|c| cc::day(c, day, sender, cdrhub_model::Timestamp::now()))
    }

    fn ended_calls(
        &self,
        query: &crate::EndedCallsQuery,
    ) -> Result<Vec<(cdrhub_model::Timestamp, cdrhub_model::Call)>, StoreError> {
        self.catch_up();
        self.with_reader(|c| read::ended_calls(c, query))
    }

    fn sip_registrations(
        &self,
        now: cdrhub_model::Timestamp,
        sender: Option<&str>,
    ) -> Result<Vec<crate::SipRegistration>, StoreError> {
        self.catch_up();
        self.with_reader(|c| Ok(registrations::current(c, now, sender)?))
    }

    fn register_hours(
        &self,
        day: cdrhub_model::Timestamp,
        sender: Option<&str>,
    ) -> Result<Vec<crate::RegisterHour>, StoreError> {
        self.catch_up();
        self.with_reader(|c| Ok(registrations::hours(c, day, sender)?))
    }

    fn senders(&self) -> Result<Vec<SenderStats>, StoreError> {
        let mut list = self.with_reader(read::senders)?;
        let now_s = cdrhub_model::Timestamp::now().0.div_euclid(1000);
        if let Ok(rates) = self.rates.lock() {
            for s in &mut list {
                s.records_last_minute = rates.last_minute(&s.source, &s.sender, now_s);
            }
        }
        Ok(list)
    }

    fn gateways(&self) -> Result<Vec<crate::GatewayInfo>, StoreError> {
        self.with_reader(gateways::gateways)
    }

    fn gateway_log(
        &self,
        filter: &crate::GatewayLogFilter,
    ) -> Result<crate::GatewayLogPage, StoreError> {
        self.with_reader(|c| gateways::log(c, filter))
    }

    fn gateway_events(
        &self,
        gateway: Option<&str>,
        limit: usize,
    ) -> Result<Vec<crate::GatewayEvent>, StoreError> {
        // Straight from the journal: nothing to bring up to date first.
        self.with_reader(|c| gateways::events(c, gateway, limit))
    }

    fn gateway_report(
        &self,
        query: &crate::GatewayReportQuery,
    ) -> Result<crate::GatewayReport, StoreError> {
        self.catch_up();
        self.with_reader(|c| gateways::report(c, query))
    }

    fn gaps(&self, filter: &GapFilter) -> Result<Vec<Gap>, StoreError> {
        self.with_reader(|c| read::gaps(c, filter))
    }

    fn totals(&self) -> Result<StoreTotals, StoreError> {
        self.catch_up();
        let per_sender = self.senders()?;
        let (calls, open_gaps) = self.with_reader(read::counts)?;
        Ok(StoreTotals {
            per_sender,
            calls,
            open_gaps,
        })
    }

    fn check_health(&self) -> Result<(), StoreError> {
        if self.tx.is_closed() {
            return Err(StoreError::Unavailable("the writer has stopped".into()));
        }
        self.with_reader(|c| {
            c.query_row("SELECT 1", [], |_| Ok(()))?;
            Ok(())
        })
    }

    fn accounts(&self) -> &dyn crate::Accounts {
        &self.accounts
    }

    fn restore_upload_path(&self) -> PathBuf {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        dir.join(format!(".restore-upload-{}.db", uuid::Uuid::new_v4()))
    }

    fn stage_restore(&self, upload: &Path, actor: &str) -> Result<BackupSummary, StoreError> {
        backup::stage_restore(self.path.parent().unwrap_or(Path::new(".")), upload, actor)
    }

    fn restore_pending(&self) -> bool {
        backup::pending_restore(self.path.parent().unwrap_or(Path::new("."))).is_some()
    }

    fn backup_file(&self) -> Result<(std::fs::File, BackupSummary), StoreError> {
        // In the data directory: the disk sized for the database.
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let dest = dir.join(format!(".backup-{}.db", uuid::Uuid::new_v4()));
        let summary = backup::backup(dir, &dest, None)?;
        let file = std::fs::File::open(&dest)
            .map_err(|e| StoreError::Unavailable(format!("cannot read {}: {e}", dest.display())));
        let _ = std::fs::remove_file(&dest);
        Ok((file?, summary))
    }
}
