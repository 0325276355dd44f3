//! The store over SQL, written once for SQLite and PostgreSQL (issue 8):
//! the journal writer thread that commits many submissions in one
//! transaction, the correlator thread that derives calls and legs from the
//! committed records, and the queries. What differs between the databases
//! (files, pools, backups, sizes) is a [`Backend`].

mod agents;
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
mod stats;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::db::{self, Conn, Db};
use crate::{
    Ack, BackupSummary, CallDetail, CallFilter, CallPage, CallSearch, CallSort, Gap, GapFilter,
    IngestBatch, SenderStats, Store, StoreError, StoreTotals,
};
use correlator::{CorrelatorHandle, Progress, spawn_correlator};
use writer::{WriterMsg, spawn_writer};

/// What one database brings to the store besides the statements.
pub trait Backend: Send + Sync + 'static {
    /// Runs `f` on a connection that sees the journal and the calls.
    fn read<T>(&self, f: impl FnOnce(Db<'_>) -> Result<T, StoreError>) -> Result<T, StoreError>;
    /// Runs `f` on a connection that writes the journal's side tables
    /// outside the writer thread (forced ends, removing old rows).
    fn write<T>(&self, f: impl FnOnce(Db<'_>) -> db::Result<T>) -> Result<T, StoreError>;
    fn storage(&self) -> Result<crate::StorageStatus, StoreError>;
    fn accounts(&self) -> &dyn crate::Accounts;
    fn backup_file(&self) -> Result<(std::fs::File, BackupSummary), StoreError>;
    fn restore_upload_path(&self) -> PathBuf;
    fn stage_restore(&self, upload: &Path, actor: &str) -> Result<BackupSummary, StoreError>;
    fn restore_pending(&self) -> bool;
    fn claims(&self) -> Result<Option<Box<dyn crate::Claims>>, StoreError> {
        Ok(None)
    }
}

/// How the writer and the correlator work, whatever the database.
#[derive(Debug, Clone)]
pub(crate) struct EngineOptions {
    /// How long a SQLite write waits for a lock held by another process.
    pub busy_timeout: Duration,
    /// Most records committed in one transaction.
    pub max_batch_records: usize,
    /// Submissions waiting for the writer before senders are slowed down.
    pub queue_depth: usize,
    pub dialog_timeouts: cdrhub_correlate::sip::DialogTimeouts,
    /// Other processes write the same database (PostgreSQL): their journal
    /// commits are serialized with this one's, and one process correlates.
    pub shared: bool,
}

/// The connections the store's threads own.
pub(crate) struct Connections {
    /// Writes the journal.
    pub journal: Conn,
    /// Writes calls and legs.
    pub calls: Conn,
    /// Reads the journal for the correlator.
    pub journal_reader: Conn,
}

/// A store: its threads, over the database of `B`.
pub struct SqlStore<B: Backend> {
    writer: Option<std::thread::JoinHandle<()>>,
    correlator: Option<CorrelatorHandle>,
    correlator_thread: Option<std::thread::JoinHandle<()>>,
    tx: mpsc::Sender<WriterMsg>,
    rates: Arc<Mutex<RecentRates>>,
    /// Dropped after the threads have stopped (fields drop after `drop`).
    backend: B,
}

/// Tries of a removal step that finds the database locked.
const LOCKED_TRIES: u32 = 120;
/// The pause between them: two minutes in all.
const LOCKED_PAUSE: std::time::Duration = std::time::Duration::from_secs(1);

impl<B: Backend> SqlStore<B> {
    /// Runs one small removal step, again after a pause while the database
    /// is locked: under a steady load the writer commits without a break,
    /// and a run that gave up at the first lock would leave old data on a
    /// busy server for ever (the soak test's daily run did).
    fn removal_step<T>(
        &self,
        mut step: impl FnMut(Db<'_>) -> db::Result<T>,
    ) -> Result<T, StoreError> {
        let mut tries = 1;
        loop {
            match self.backend.write(&mut step) {
                Err(StoreError::Unavailable(m))
                    if tries < LOCKED_TRIES && (m.contains("locked") || m.contains("busy")) =>
                {
                    tries += 1;
                    std::thread::sleep(LOCKED_PAUSE);
                }
                r => return r,
            }
        }
    }

    /// Starts the writer and the correlator on `conns`.
    pub(crate) fn start(
        backend: B,
        conns: Connections,
        options: EngineOptions,
    ) -> Result<Self, StoreError> {
        let progress = Arc::new(Progress::default());
        let journaled: i64 = conns
            .journal
            .db()
            .query_value("SELECT coalesce(max(id), 0) FROM journal", db::args![])
            .map_err(|e| StoreError::Open(format!("cannot read the journal: {e}")))?;
        progress
            .journaled
            .store(journaled, std::sync::atomic::Ordering::Release);
        let rates = Arc::new(Mutex::new(RecentRates::default()));
        let (correlator, correlator_thread) = spawn_correlator(
            conns.calls,
            conns.journal_reader,
            options.busy_timeout,
            options.dialog_timeouts,
            options.shared,
            progress.clone(),
        );
        let (tx, writer) = spawn_writer(
            conns.journal,
            options,
            rates.clone(),
            correlator.clone(),
            progress,
        );
        let store = SqlStore {
            writer: Some(writer),
            correlator: Some(correlator),
            correlator_thread: Some(correlator_thread),
            tx,
            rates,
            backend,
        };
        // Fail now, not at the first query, if reads cannot work.
        store.backend.read(|_| Ok(()))?;
        Ok(store)
    }

    pub(crate) fn backend(&self) -> &B {
        &self.backend
    }

    /// Makes calls and legs reflect every record acknowledged so far. The
    /// correlator writes them lazily; a reader of calls asks for them now,
    /// and only when something is unwritten.
    fn catch_up(&self) {
        if let Some(c) = &self.correlator {
            c.catch_up();
        }
    }
}

impl<B: Backend> Drop for SqlStore<B> {
    /// Closes the store: the writer finishes what is queued and the
    /// correlator writes the calls it holds; then the backend closes.
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

impl<B: Backend> Store for SqlStore<B> {
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
        self.backend.read(|c| read::list_calls(c, filter))
    }

    fn search_calls(
        &self,
        filter: &CallFilter,
        sort: CallSort,
        descending: bool,
        offset: u64,
    ) -> Result<CallSearch, StoreError> {
        self.catch_up();
        self.backend
            .read(|c| read::search_calls(c, filter, sort, descending, offset))
    }

    fn day_stats(
        &self,
        day: cdrhub_model::Timestamp,
        source: Option<&str>,
        sender: Option<&str>,
    ) -> Result<crate::DayStats, StoreError> {
        self.catch_up();
        self.backend
            .read(|c| stats::day_stats(c, day, source, sender))
    }

    fn live_status(
        &self,
        now: cdrhub_model::Timestamp,
        active_limit: usize,
    ) -> Result<crate::LiveStatus, StoreError> {
        self.catch_up();
        self.backend
            .read(|c| stats::live_status(c, now, active_limit))
    }

    fn recent_records(
        &self,
        sender: Option<&str>,
        limit: usize,
    ) -> Result<Vec<crate::RecentRecord>, StoreError> {
        // Straight from the journal: nothing to bring up to date first.
        self.backend
            .read(|c| read::recent_records(c, sender, limit))
    }

    fn get_call(&self, id: &str) -> Result<Option<CallDetail>, StoreError> {
        self.catch_up();
        self.backend.read(|c| read::get_call(c, id))
    }

    fn force_end(
        &self,
        call_id: &str,
        at: cdrhub_model::Timestamp,
        actor: &str,
    ) -> Result<crate::ForceEnd, StoreError> {
        self.catch_up();
        let keys = match self.backend.read(|c| read::keys_of_open_call(c, call_id))? {
            None => return Ok(crate::ForceEnd::NotFound),
            Some(None) => return Ok(crate::ForceEnd::AlreadyEnded),
            Some(Some(keys)) => keys,
        };
        // Kept first: from then on every rebuild of the call ends it.
        self.backend
            .write(|c| records::record_forced_end(c, &keys, at, actor))?;
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
        let failed = |what: &str, e: crate::db::Error| {
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
            // use, and the next run takes it if it is old. First the
            // records of calls that a run killed midway removed.
            let mut step = Some(CallsStep::Pending);
            while let Some(this) = step.take() {
                let done = correlator
                    .prune(this.clone())
                    .map_err(|e| failed("calls", e))?;
                step = done.next.or(match this {
                    CallsStep::Pending => Some(CallsStep::Calls {
                        before_ms,
                        after: None,
                    }),
                    CallsStep::Calls { .. } => Some(CallsStep::Statistics {
                        before_s: before_ms / 1000,
                    }),
                    CallsStep::Statistics { .. } => None,
                });
                match this {
                    CallsStep::Pending | CallsStep::Calls { .. } => {
                        report.calls += done.removed;
                        report.legs += done.legs;
                        report.records += self
                            .removal_step(|c| {
                                prune::remove_records(c, &done.records, done.received_by)
                            })
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
                    .removal_step(|c| prune::journal_step(c, before_ms, correlated))
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
                let (removed, more) = self.removal_step(|c| prune::audit_step(c, before.0))?;
                report.audit_entries += removed;
                progress(&report);
                if !more {
                    break;
                }
            }
        }
        if let Some(before) = request.gaps_before {
            report.gaps += self.backend.write(|c| prune::remove_gaps(c, before.0))?;
            progress(&report);
        }
        let now = cdrhub_model::Timestamp::now().0;
        self.backend
            .write(|c| prune::remove_housekeeping(c, request.calls_before.map(|t| t.0), now))?;
        Ok(report)
    }

    fn storage(&self) -> Result<crate::StorageStatus, StoreError> {
        self.backend.storage()
    }

    fn contact_centre_day(
        &self,
        day: cdrhub_model::Timestamp,
        sender: Option<&str>,
    ) -> Result<crate::ContactCentreDay, StoreError> {
        self.catch_up();
        self.backend
            .read(|c| cc::day(c, day, sender, cdrhub_model::Timestamp::now()))
    }

    fn ended_calls(
        &self,
        query: &crate::EndedCallsQuery,
    ) -> Result<Vec<(cdrhub_model::Timestamp, cdrhub_model::Call)>, StoreError> {
        self.catch_up();
        self.backend.read(|c| read::ended_calls(c, query))
    }

    fn sip_registrations(
        &self,
        now: cdrhub_model::Timestamp,
        sender: Option<&str>,
    ) -> Result<Vec<crate::SipRegistration>, StoreError> {
        self.catch_up();
        self.backend
            .read(|c| Ok(registrations::current(c, now, sender)?))
    }

    fn register_hours(
        &self,
        day: cdrhub_model::Timestamp,
        sender: Option<&str>,
    ) -> Result<Vec<crate::RegisterHour>, StoreError> {
        self.catch_up();
        self.backend
            .read(|c| Ok(registrations::hours(c, day, sender)?))
    }

    fn senders(&self) -> Result<Vec<SenderStats>, StoreError> {
        let mut list = self.backend.read(read::senders)?;
        let now_s = cdrhub_model::Timestamp::now().0.div_euclid(1000);
        if let Ok(rates) = self.rates.lock() {
            for s in &mut list {
                s.records_last_minute = rates.last_minute(&s.source, &s.sender, now_s);
            }
        }
        Ok(list)
    }

    fn gateways(&self) -> Result<Vec<crate::GatewayInfo>, StoreError> {
        self.backend.read(gateways::gateways)
    }

    fn gateway_log(
        &self,
        filter: &crate::GatewayLogFilter,
    ) -> Result<crate::GatewayLogPage, StoreError> {
        self.backend.read(|c| gateways::log(c, filter))
    }

    fn gateway_events(
        &self,
        gateway: Option<&str>,
        limit: usize,
    ) -> Result<Vec<crate::GatewayEvent>, StoreError> {
        // Straight from the journal: nothing to bring up to date first.
        self.backend.read(|c| gateways::events(c, gateway, limit))
    }

    fn gateway_report(
        &self,
        query: &crate::GatewayReportQuery,
    ) -> Result<crate::GatewayReport, StoreError> {
        self.catch_up();
        self.backend.read(|c| gateways::report(c, query))
    }

    fn gaps(&self, filter: &GapFilter) -> Result<Vec<Gap>, StoreError> {
        self.backend.read(|c| read::gaps(c, filter))
    }

    fn totals(&self) -> Result<StoreTotals, StoreError> {
        self.catch_up();
        let per_sender = self.senders()?;
        let (calls, open_gaps) = self.backend.read(read::counts)?;
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
        self.backend.read(|c| {
            c.query_row("SELECT 1", crate::db::args![], |_| Ok(()))?;
            Ok(())
        })
    }

    fn accounts(&self) -> &dyn crate::Accounts {
        self.backend.accounts()
    }

    fn restore_upload_path(&self) -> PathBuf {
        self.backend.restore_upload_path()
    }

    fn stage_restore(&self, upload: &Path, actor: &str) -> Result<BackupSummary, StoreError> {
        self.backend.stage_restore(upload, actor)
    }

    fn restore_pending(&self) -> bool {
        self.backend.restore_pending()
    }

    fn claims(&self) -> Result<Option<Box<dyn crate::Claims>>, StoreError> {
        self.backend.claims()
    }

    fn backup_file(&self) -> Result<(std::fs::File, BackupSummary), StoreError> {
        self.backend.backup_file()
    }
}
