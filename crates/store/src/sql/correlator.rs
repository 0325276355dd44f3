//! The correlator thread. It owns the write connection of `calls.db` and
//! turns journaled records into calls and legs, beside the writer thread
//! rather than inside its transactions: the writer's commit, which the
//! senders wait for, holds only the journal, and the two use both cores.
//!
//! The writer hands over the records of each commit (already decoded). Calls
//! and legs are written lazily: a finished call at once (it will not change
//! again), a call in progress once its changes are `FLUSH_AGE` old, a few
//! hundred per transaction, and everything when a reader asks
//! (`CorrelatorMsg::Flush`), so reads see every acknowledged record.
//! `correlated_upto` marks the journal id below which calls and legs reflect
//! every record; at start, after a crash or after a failed commit the rest is
//! replayed from the journal (applying a record twice changes nothing).
//! Records that did not come over the channel (it was full while the
//! correlator replayed) are read from the journal too: each message says up
//! to which id the journal held before its records.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use cdrhub_correlate::cti::CtiEvent;
use cdrhub_correlate::sip::DialogTimeouts;
use cdrhub_model::Timestamp;
use cdrhub_protocols::cms::{self, CmsRecord};
use tokio::sync::oneshot;
use tracing::{info, trace, warn};

use super::correlation::{Correlations, FlushMode};
use super::group::Origin;
use super::key_filter::KeyFilter;
use super::prune::{self, CallsStep, StepDone};
use super::records;
use super::writer::{retry_soon, set_busy_wait_limit};
use crate::db::{Conn, Db, Result, args};

/// The records of one submission, as the journal committed them.
pub(crate) struct CommittedBatch {
    pub sender: String,
    pub records: CommittedRecords,
}

/// Journal id and record, in journal order, by source.
pub(crate) enum CommittedRecords {
    Cms {
        call_bridge: Option<String>,
        records: Vec<(i64, CmsRecord)>,
    },
    Cti(Vec<(i64, CtiEvent)>),
    Radius(Vec<(i64, cdrhub_correlate::radius::RadiusEvent)>),
    Feed(Vec<(i64, cdrhub_correlate::feed::FeedEvent)>),
    Sip(Vec<(i64, cdrhub_correlate::sip::SipEvent)>),
    Events(Vec<(i64, cdrhub_correlate::events::EventRecord)>),
}

impl CommittedRecords {
    fn len(&self) -> usize {
        match self {
            CommittedRecords::Cms { records, .. } => records.len(),
            CommittedRecords::Cti(records) => records.len(),
            CommittedRecords::Radius(records) => records.len(),
            CommittedRecords::Feed(records) => records.len(),
            CommittedRecords::Sip(records) => records.len(),
            CommittedRecords::Events(records) => records.len(),
        }
    }
}

pub(crate) enum CorrelatorMsg {
    /// Records of one journal commit. `after` is the highest journal id
    /// committed before them.
    Records {
        after: i64,
        batches: Vec<CommittedBatch>,
    },
    /// Apply the journal up to `upto`, write every call not yet written, then
    /// answer: a reader wants them to reflect everything acknowledged.
    Flush {
        upto: i64,
        done: oneshot::Sender<()>,
    },
    /// End the call that `keys` name at `at` (an operator forced it; the end
    /// is kept in `forced_ends` already), write it, then answer whether a
    /// call was found.
    ForceEnd {
        keys: Vec<i64>,
        at: Timestamp,
        done: oneshot::Sender<bool>,
    },
    /// Remove old rows, one step in a transaction of its own.
    Prune {
        step: CallsStep,
        done: oneshot::Sender<Result<StepDone>>,
    },
}

/// How far the journal and the calls are, shared by the writer, the
/// correlator and readers.
#[derive(Default)]
pub(crate) struct Progress {
    /// Highest journal id committed (set by the writer before it answers).
    pub journaled: AtomicI64,
    /// Every journal id up to this is in the calls and legs tables.
    pub correlated: AtomicI64,
    /// Set once the correlator has replayed the journal at start: from then
    /// the writer waits for room in the channel rather than leaving records
    /// to be read back from the journal.
    pub ready: AtomicBool,
}

/// Records handed to the correlator that it has not taken yet. The writer
/// waits while they are past `MAX_QUEUED_RECORDS`: a bound in records, not
/// in commits, so that many small commits (single-record POSTs) do not wait
/// behind a correlator round, while large ones cannot pile up in memory.
#[derive(Default)]
struct Queued {
    records: Mutex<usize>,
    taken: Condvar,
    /// Set when the correlator thread ends: nobody takes records any more.
    closed: AtomicBool,
}

impl Queued {
    fn lock(&self) -> std::sync::MutexGuard<'_, usize> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The correlator took `n` records off the channel.
    fn take(&self, n: usize) {
        let mut queued = self.lock();
        *queued = queued.saturating_sub(n);
        self.taken.notify_all();
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.taken.notify_all();
    }
}

/// The writer's end of the channel.
#[derive(Clone)]
pub(crate) struct CorrelatorHandle {
    tx: Sender<CorrelatorMsg>,
    queued: Arc<Queued>,
    progress: Arc<Progress>,
}

impl CorrelatorHandle {
    /// Hands over a commit's records. Once the correlator is ready this
    /// waits for room, which slows senders down when correlation falls
    /// behind; before, a full channel drops the message (the records are
    /// read from the journal instead).
    pub(crate) fn committed(&self, after: i64, batches: Vec<CommittedBatch>) {
        let msg = CorrelatorMsg::Records { after, batches };
        let n = msg.records();
        let full = |queued: usize| queued > 0 && queued + n > MAX_QUEUED_RECORDS;
        let mut queued = self.queued.lock();
        if self.progress.ready.load(Ordering::Acquire) {
            while full(*queued) && !self.queued.closed.load(Ordering::Acquire) {
                queued = self
                    .queued
                    .taken
                    .wait_timeout(queued, Duration::from_millis(100))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        } else if full(*queued) {
            // The next message or flush reads these back from the journal.
            return;
        }
        *queued += n;
        drop(queued);
        let _ = self.tx.send(msg);
    }

    /// Ends the call that `keys` name, and blocks until it is written.
    /// Whether a call was found.
    pub(crate) fn force_end(&self, keys: Vec<i64>, at: Timestamp) -> bool {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(CorrelatorMsg::ForceEnd { keys, at, done })
            .is_ok()
            && wait.blocking_recv().unwrap_or(false)
    }

    /// Every journal id up to this is reflected in calls and legs.
    pub(crate) fn correlated(&self) -> i64 {
        self.progress.correlated.load(Ordering::Acquire)
    }

    /// Runs one step of removing old rows and blocks until it is committed.
    pub(crate) fn prune(&self, step: CallsStep) -> Result<StepDone> {
        let (done, wait) = oneshot::channel();
        let gone = || crate::db::Error::Other("the correlator has stopped".into());
        self.tx
            .send(CorrelatorMsg::Prune { step, done })
            .map_err(|_| gone())?;
        wait.blocking_recv().map_err(|_| gone())?
    }

    /// Blocks until calls and legs reflect every journaled record.
    pub(crate) fn catch_up(&self) {
        let upto = self.progress.journaled.load(Ordering::Acquire);
        if self.progress.correlated.load(Ordering::Acquire) >= upto {
            return;
        }
        let (done, wait) = oneshot::channel();
        if self.tx.send(CorrelatorMsg::Flush { upto, done }).is_ok() {
            let _ = wait.blocking_recv();
        }
    }
}

/// A call in progress is written once its changes are this old (readers do
/// not wait for it: they ask for a flush). It bounds the journal a replay
/// goes over after a crash.
const FLUSH_AGE: Duration = Duration::from_secs(10);
/// Due calls are written at most this often: one transaction then shares the
/// index pages that many calls touch (leg and call ids are random keys).
const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// At most this many calls in progress are written per transaction.
const FLUSH_BUDGET: usize = 256;
/// Past this many calls waiting to be written, write them whatever their age
/// (still `FLUSH_BUDGET` per transaction).
const MAX_DIRTY_GROUPS: usize = 5_000;
/// How often SIP dialogs are looked at for their timeout.
const TIMEOUT_SWEEP_EVERY: Duration = Duration::from_secs(5);
/// Journal rows read back per query.
const REPLAY_CHUNK: i64 = 5_000;
/// Records waiting for the correlator before the writer waits for it (about
/// two commits of the 50-record load, a second of single-record POSTs).
const MAX_QUEUED_RECORDS: usize = 4_000;
/// The advisory lock of the process that correlates a shared database
/// ("cdrhub" and a 2; migrations take the 1).
const CORRELATOR_LOCK: i64 = 0x6364_7268_7562_0002;
/// How often a process that does not correlate asks to.
const LEADER_TRY_EVERY: Duration = Duration::from_secs(1);
/// How often the correlating process reads what others journaled.
const POLL_EVERY: Duration = Duration::from_millis(250);
/// Most records applied in one transaction.
const MAX_ROUND_RECORDS: usize = 20_000;

pub(crate) fn spawn_correlator(
    mut calls: Conn,
    journal: Conn,
    busy_timeout: Duration,
    dialog_timeouts: DialogTimeouts,
    shared: bool,
    progress: Arc<Progress>,
) -> (CorrelatorHandle, std::thread::JoinHandle<()>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let queued = Arc::new(Queued::default());
    let handle = CorrelatorHandle {
        tx,
        queued: queued.clone(),
        progress: progress.clone(),
    };
    let thread = std::thread::Builder::new()
        .name("cdrhub-correlate".into())
        .spawn(move || {
            if let Conn::Sqlite(c) = &mut calls {
                set_busy_wait_limit(busy_timeout);
                if let Err(e) = c.busy_handler(Some(retry_soon)) {
                    warn!(error = %e, "cannot set the busy handler; SQLite's own applies");
                }
            }
            let filter = || {
                KeyFilter::load(calls.db()).unwrap_or_else(|e| {
                    warn!(error = %e, "cannot load the call key filter; every new id is looked up");
                    KeyFilter::default()
                })
            };
            let mut correlation = Correlations::new(filter(), filter());
            if let Err(e) = correlation.load_forced(journal.db()) {
                warn!(error = %e, "cannot read the calls ended by hand; they are ended again at the next start");
            }
            Correlator {
                correlation,
                applied: 0,
                needs_replay: true,
                shared,
                leader: None,
                last_leader_try: None,
                last_flush: Instant::now(),
                dialog_timeouts,
                last_timeout_sweep: None,
                progress,
                queued,
            }
            .run(calls.db(), journal.db(), rx)
        })
        .expect("spawning the correlator thread");
    (handle, thread)
}

struct Correlator {
    correlation: Correlations,
    /// Highest journal id applied to the cache (or skipped as not CMS).
    applied: i64,
    /// Set at start and after a failed commit: the cache must be rebuilt.
    needs_replay: bool,
    last_flush: Instant,
    /// SIP dialogs that see no message for this long are closed.
    dialog_timeouts: DialogTimeouts,
    last_timeout_sweep: Option<Instant>,
    /// Several processes share the database (PostgreSQL): one of them
    /// correlates, the one holding `CORRELATOR_LOCK`.
    shared: bool,
    /// Holding the lock, on the session of this generation.
    leader: Option<u64>,
    last_leader_try: Option<Instant>,
    progress: Arc<Progress>,
    queued: Arc<Queued>,
}

impl Drop for Correlator {
    /// However the thread ends, the writer must not wait for it.
    fn drop(&mut self) {
        self.queued.close();
    }
}

impl Correlator {
    fn run(mut self, calls: Db<'_>, journal: Db<'_>, rx: Receiver<CorrelatorMsg>) {
        if !self.shared {
            self.start_correlating(calls, journal);
        }
        self.progress.ready.store(true, Ordering::Release);
        loop {
            if !self.is_leader(calls, journal) {
                match rx.recv_timeout(LEADER_TRY_EVERY) {
                    Ok(msg) => {
                        self.queued.take(msg.records());
                        msg.decline();
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
                continue;
            }
            if self.shared {
                // Other processes journal too: read what they committed.
                match rx.recv_timeout(POLL_EVERY) {
                    Ok(msg) => {
                        let n = msg.records();
                        self.queued.take(n);
                        self.round(calls, journal, vec![msg]);
                    }
                    Err(RecvTimeoutError::Timeout) => self.poll(calls, journal),
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                continue;
            }
            let first = if self.correlation.dirty_groups() > 0 {
                match rx.recv_timeout(FLUSH_EVERY) {
                    Ok(msg) => msg,
                    Err(RecvTimeoutError::Timeout) => {
                        // Quiet: write the calls whose changes are due, if any.
                        if self.correlation.any_due(self.due_age()) {
                            self.round(calls, journal, Vec::new());
                        }
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match rx.recv_timeout(TIMEOUT_SWEEP_EVERY) {
                    Ok(msg) => msg,
                    Err(RecvTimeoutError::Timeout) => {
                        // Quiet: SIP dialogs may have timed out meanwhile.
                        self.round(calls, journal, Vec::new());
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            };
            let mut records = first.records();
            let mut msgs = vec![first];
            while records < MAX_ROUND_RECORDS {
                match rx.try_recv() {
                    Ok(m) => {
                        records += m.records();
                        msgs.push(m);
                    }
                    Err(_) => break,
                }
            }
            self.queued.take(records);
            self.round(calls, journal, msgs);
        }
        // Shutting down: leave calls and legs up to date.
        if self.shared && self.leader.is_none() {
            return;
        }
        let upto = match self.shared {
            false => self.progress.journaled.load(Ordering::Acquire),
            true => journal_end(journal).unwrap_or(0),
        };
        let (done, _) = oneshot::channel();
        self.round(calls, journal, vec![CorrelatorMsg::Flush { upto, done }]);
    }

    /// Brings calls up to date with the journal and ends again the calls
    /// ended by hand: at start, or on taking over from another process.
    fn start_correlating(&mut self, calls: Db<'_>, journal: Db<'_>) {
        self.correlation.reset();
        self.needs_replay = true;
        self.replay_or_warn(calls, journal);
        if let Err(e) = self.reapply_forced(calls, journal) {
            warn!(error = %e, "cannot end again the calls ended by hand; they stay as written");
        }
    }

    /// Whether this process correlates: always on its own database; on a
    /// shared one while it holds the lock, tried for every second.
    fn is_leader(&mut self, calls: Db<'_>, journal: Db<'_>) -> bool {
        if !self.shared {
            return true;
        }
        if let Some(generation) = self.leader {
            if calls.generation() == generation {
                return true;
            }
            // The session that held the lock is gone, and the lock with it.
            warn!("lost the database connection that held correlation; trying to take it again");
            self.leader = None;
            self.correlation.reset();
        }
        if self
            .last_leader_try
            .is_some_and(|t| t.elapsed() < LEADER_TRY_EVERY)
        {
            return false;
        }
        self.last_leader_try = Some(Instant::now());
        let generation = calls.generation();
        match calls.query_value::<bool>("SELECT pg_try_advisory_lock(?1)", args![CORRELATOR_LOCK]) {
            Ok(true) => {
                info!("this process correlates the shared journal now");
                self.leader = Some(generation);
                self.start_correlating(calls, journal);
                true
            }
            Ok(false) => false,
            Err(e) => {
                warn!(error = %e, "cannot ask which process correlates; will retry");
                false
            }
        }
    }

    /// Applies what other processes journaled since the last round.
    fn poll(&mut self, calls: Db<'_>, journal: Db<'_>) {
        match journal_end(journal) {
            Ok(end) if end > self.applied => self.round(
                calls,
                journal,
                vec![CorrelatorMsg::Records {
                    after: end,
                    batches: Vec::new(),
                }],
            ),
            Ok(_) => {
                if self.correlation.dirty_groups() > 0
                    || self
                        .last_timeout_sweep
                        .is_none_or(|t| t.elapsed() >= TIMEOUT_SWEEP_EVERY)
                {
                    self.round(calls, journal, Vec::new());
                }
            }
            Err(e) => warn!(error = %e, "cannot read the journal's end; will retry"),
        }
    }

    /// One step of removing old rows, in a transaction of its own.
    fn prune(&mut self, calls: Db<'_>, journal: Db<'_>, step: CallsStep) -> Result<StepDone> {
        let result = (|| {
            let tx = calls.begin()?;
            let done = prune::calls_step(&mut self.correlation, tx.db(), journal, step)?;
            tx.commit()?;
            Ok(done)
        })();
        if result.is_err() {
            // Calls dropped from the cache may still have rows: rebuild it.
            self.correlation.reset();
            self.needs_replay = true;
        }
        result
    }

    /// Writes the forced ends of calls still open (see
    /// `Correlation::reapply_forced`).
    fn reapply_forced(&mut self, calls: Db<'_>, journal: Db<'_>) -> Result<()> {
        let tx = calls.begin()?;
        let ended = self.correlation.reapply_forced(tx.db(), journal)?;
        if ended > 0 {
            self.correlation.flush(tx.db(), FlushMode::All)?;
            info!(
                calls = ended,
                "ended again the calls an operator ended by hand"
            );
        }
        tx.commit()?;
        self.correlation.committed();
        Ok(())
    }

    /// How old a call's changes must be before it is written: `FLUSH_AGE`,
    /// or any age once too many calls wait.
    fn due_age(&self) -> Duration {
        if self.correlation.dirty_groups() >= MAX_DIRTY_GROUPS {
            Duration::ZERO
        } else {
            FLUSH_AGE
        }
    }

    fn replay_or_warn(&mut self, calls: Db<'_>, journal: Db<'_>) {
        match self.replay(calls, journal) {
            Ok(0) => {}
            Ok(n) => info!(records = n, "brought calls up to date from the journal"),
            Err(e) => {
                warn!(error = %e, "cannot bring calls up to date from the journal yet; will retry")
            }
        }
    }

    /// Applies the messages in one transaction of `calls.db`, writing the
    /// calls that are due; all of them when a reader asked.
    fn round(&mut self, calls: Db<'_>, journal: Db<'_>, msgs: Vec<CorrelatorMsg>) {
        if self.needs_replay {
            // Whatever the messages hold is in the journal: the replay reads it.
            self.replay_or_warn(calls, journal);
        }
        let mut waiters = Vec::new();
        let mut forced_waiters = Vec::new();
        let mut prunes = Vec::new();
        let started = Instant::now();
        let applied_before = self.applied;
        let result = (|| {
            let tx = calls.begin()?;
            let mut flush = false;
            for msg in msgs {
                match msg {
                    CorrelatorMsg::Records { after, batches } => {
                        if self.needs_replay {
                            continue;
                        }
                        self.apply_journal(tx.db(), journal, after)?;
                        for batch in batches {
                            self.apply_batch(tx.db(), journal, batch)?;
                        }
                    }
                    CorrelatorMsg::Flush { upto, done } => {
                        waiters.push(done);
                        if !self.needs_replay {
                            self.apply_journal(tx.db(), journal, upto)?;
                            flush = true;
                        }
                    }
                    // After this round's commit, each in a transaction of its own.
                    CorrelatorMsg::Prune { step, done } => prunes.push((step, done)),
                    CorrelatorMsg::ForceEnd { keys, at, done } => {
                        let found = !self.needs_replay
                            && self.correlation.force_end(tx.db(), journal, &keys, at)?;
                        forced_waiters.push((done, found));
                        flush = true;
                    }
                }
            }
            if !self.needs_replay
                && self
                    .last_timeout_sweep
                    .is_none_or(|t| t.elapsed() >= TIMEOUT_SWEEP_EVERY)
            {
                self.last_timeout_sweep = Some(Instant::now());
                self.time_out_dialogs(tx.db(), journal)?;
            }
            if !self.needs_replay && (flush || self.last_flush.elapsed() >= FLUSH_EVERY) {
                self.last_flush = Instant::now();
                let mode = if flush {
                    FlushMode::All
                } else {
                    FlushMode::Due {
                        age: self.due_age(),
                        budget: FLUSH_BUDGET,
                    }
                };
                self.correlation.flush(tx.db(), mode)?;
                let upto = self
                    .correlation
                    .oldest_unwritten()
                    .map_or(self.applied, |oldest| (oldest - 1).min(self.applied));
                set_correlated_upto(tx.db(), upto)?;
            }
            tx.commit()
        })();
        match result {
            Ok(()) => {
                trace!(
                    journal_ids = self.applied - applied_before,
                    calls_waiting = self.correlation.dirty_groups(),
                    micros = started.elapsed().as_micros() as u64,
                    "calls committed"
                );
                self.correlation.committed();
                if let Err(e) = self.correlation.grow_filter(calls) {
                    warn!(error = %e, "cannot grow the call key filter; it stays as it is");
                }
                if !self.needs_replay && self.correlation.dirty_groups() == 0 {
                    self.progress
                        .correlated
                        .store(self.applied, Ordering::Release);
                }
            }
            Err(e) => {
                // The cache may hold records whose calls were not written:
                // drop it and rebuild it from the journal.
                warn!(error = %e, "writing calls failed; rebuilding them from the journal");
                self.correlation.reset();
                self.needs_replay = true;
            }
        }
        // A reader waiting for a flush that failed reads what there is.
        for done in waiters {
            let _ = done.send(());
        }
        // A forced end not written is still kept: the next start writes it.
        for (done, found) in forced_waiters {
            let _ = done.send(found);
        }
        for (step, done) in prunes {
            let _ = done.send(self.prune(calls, journal, step));
        }
    }

    /// Closes the SIP dialogs that have had no message for their timeout,
    /// at their last message, marked timed out. The decision depends only
    /// on the messages and the clock, so a restart makes it again.
    fn time_out_dialogs(&mut self, tx: Db<'_>, journal: Db<'_>) -> Result<()> {
        let now = Timestamp::now();
        let t = self.dialog_timeouts;
        let closed = self.correlation.sip.change_open(
            tx,
            journal,
            "SELECT id FROM calls WHERE ended_at IS NULL AND source = ?1 \
             AND started_at < ?2 AND (answered_at IS NULL OR answered_at < ?3)",
            args![
                cdrhub_model::SOURCE_SIP,
                now.0 - t.setup_ms.min(t.answered_ms),
                now.0 - t.answered_ms
            ],
            |g| g.time_out(now, t),
        )?;
        if closed > 0 {
            info!(calls = closed, "SIP calls closed by the dialog timeout");
        }
        Ok(())
    }

    /// Applies a commit's records that are not applied yet.
    fn apply_batch(&mut self, tx: Db<'_>, journal: Db<'_>, batch: CommittedBatch) -> Result<()> {
        let sender = batch.sender.as_str();
        let origin = Origin {
            sender,
            call_bridge: None,
        };
        let applied = &mut self.applied;
        let c = &mut self.correlation;
        match batch.records {
            CommittedRecords::Cms {
                call_bridge,
                records,
            } => {
                let origin = Origin {
                    sender,
                    call_bridge: call_bridge.as_deref(),
                };
                apply_new(applied, records, |r, id| {
                    c.cms.apply(tx, journal, r, origin, id)
                })?
            }
            CommittedRecords::Cti(records) => apply_new(applied, records, |e, id| {
                c.apply_cti(tx, journal, e, origin, id)
            })?,
            CommittedRecords::Radius(records) => apply_new(applied, records, |e, id| {
                c.apply_radius(tx, journal, e, origin, id)
            })?,
            CommittedRecords::Feed(records) => apply_new(applied, records, |e, id| {
                c.feed.apply(tx, journal, e, origin, id)
            })?,
            CommittedRecords::Sip(records) => apply_new(applied, records, |e, id| {
                c.apply_sip(tx, journal, e, origin, id)
            })?,
            CommittedRecords::Events(records) => apply_new(applied, records, |e, id| {
                c.apply_events(tx, journal, e, origin, id)
            })?,
        }
        Ok(())
    }

    /// Applies the journal rows after the last applied one up to `upto`:
    /// records that reached the journal but not the channel.
    fn apply_journal(&mut self, tx: Db<'_>, journal: Db<'_>, upto: i64) -> Result<usize> {
        let mut applied = 0;
        while self.applied < upto {
            let rows = read_journal(journal, self.applied, upto)?;
            let Some(last) = rows.last().map(|r| r.id) else {
                break;
            };
            applied += rows.len();
            for row in rows {
                let origin = Origin {
                    sender: &row.sender,
                    call_bridge: row.call_bridge.as_deref(),
                };
                let id = row.id;
                let skipped = |e: &dyn std::fmt::Display| warn!(journal_id = id, error = %e, "journaled record no longer decodes; skipped");
                match row.source.as_str() {
                    cdrhub_model::SOURCE_CMS => match cms::decode_record("", &row.payload) {
                        Ok(record) => self
                            .correlation
                            .cms
                            .apply(tx, journal, record, origin, id)?,
                        Err(e) => skipped(&e),
                    },
                    cdrhub_model::SOURCE_CTI => {
                        match records::decode_cti(&row.payload, row.received_at) {
                            Ok(event) => {
                                self.correlation.apply_cti(tx, journal, event, origin, id)?
                            }
                            Err(e) => skipped(&e),
                        }
                    }
                    cdrhub_model::SOURCE_RADIUS => {
                        match records::decode_radius(&row.payload, row.received_at) {
                            Ok(event) => self
                                .correlation
                                .apply_radius(tx, journal, event, origin, id)?,
                            Err(e) => skipped(&e),
                        }
                    }
                    // A HEP packet that carries no SIP makes no call.
                    cdrhub_model::SOURCE_SIP => {
                        if let Ok(event) =
                            cdrhub_correlate::sip::event_of_hep(&row.payload, row.received_at)
                        {
                            self.correlation.apply_sip(tx, journal, event, origin, id)?
                        }
                    }
                    cdrhub_model::SOURCE_EVENTS | cdrhub_model::SOURCE_CSV => {
                        match cdrhub_protocols::events::decode_one(&row.payload) {
                            Ok(event) => self.correlation.apply_events(
                                tx,
                                journal,
                                cdrhub_correlate::events::EventRecord {
                                    received_at: row.received_at,
                                    event,
                                },
                                origin,
                                id,
                            )?,
                            Err(e) => skipped(&e),
                        }
                    }
                    // Logins, logouts and keep-alives make no call.
                    cdrhub_model::SOURCE_FEED => {
                        if let Ok(event) = records::decode_feed(&row.payload, row.received_at) {
                            self.correlation
                                .feed
                                .apply(tx, journal, event, origin, id)?
                        }
                    }
                    _ => {}
                }
            }
            self.applied = last;
        }
        self.applied = self.applied.max(upto);
        Ok(applied)
    }

    /// Rebuilds calls and legs from the journal rows they do not reflect
    /// yet, one transaction per chunk, until the journal's end.
    fn replay(&mut self, calls: Db<'_>, journal: Db<'_>) -> Result<usize> {
        self.correlation.reset();
        self.applied = calls.query_row(
            "SELECT value FROM correlation_state WHERE key = 'correlated_upto'",
            args![],
            |r| r.get(0),
        )?;
        let mut replayed = 0;
        loop {
            let end = journal_end(journal)?;
            if self.applied >= end {
                break;
            }
            let tx = calls.begin()?;
            let upto = end.min(self.applied + REPLAY_CHUNK);
            replayed += self.apply_journal(tx.db(), journal, upto)?;
            self.correlation.flush(tx.db(), FlushMode::All)?;
            set_correlated_upto(tx.db(), self.applied)?;
            tx.commit()?;
            self.correlation.committed();
        }
        self.needs_replay = false;
        self.progress
            .correlated
            .store(self.applied, Ordering::Release);
        Ok(replayed)
    }
}

impl CorrelatorMsg {
    /// Answers without doing anything: another process correlates.
    fn decline(self) {
        match self {
            CorrelatorMsg::Records { .. } => {}
            CorrelatorMsg::Flush { done, .. } => {
                let _ = done.send(());
            }
            CorrelatorMsg::ForceEnd { done, .. } => {
                let _ = done.send(false);
            }
            CorrelatorMsg::Prune { done, .. } => {
                let _ = done.send(Ok(StepDone::default()));
            }
        }
    }

    fn records(&self) -> usize {
        match self {
            CorrelatorMsg::Records { batches, .. } => batches.iter().map(|b| b.records.len()).sum(),
            CorrelatorMsg::Flush { .. }
            | CorrelatorMsg::ForceEnd { .. }
            | CorrelatorMsg::Prune { .. } => 0,
        }
    }
}

/// A journal row in (`after`, `upto`], with what its stream says of it.
struct JournalRow {
    id: i64,
    source: String,
    sender: String,
    call_bridge: Option<String>,
    received_at: cdrhub_model::Timestamp,
    payload: Vec<u8>,
}

/// The journal rows in (`after`, `upto`], at most `REPLAY_CHUNK`.
fn read_journal(journal: Db<'_>, after: i64, upto: i64) -> Result<Vec<JournalRow>> {
    journal.query_map(
        "SELECT j.id, s.source, s.sender, s.call_bridge, j.received_at, j.payload FROM journal j \
             JOIN streams s ON s.id = j.stream \
             WHERE j.id > ?1 AND j.id <= ?2 ORDER BY j.id LIMIT ?3",
        args![after, upto, REPLAY_CHUNK],
        |r| {
            Ok(JournalRow {
                id: r.get(0)?,
                source: r.get(1)?,
                sender: r.get(2)?,
                call_bridge: r.get(3)?,
                received_at: cdrhub_model::Timestamp(r.get(4)?),
                payload: r.get(5)?,
            })
        },
    )
}

/// The highest journal id committed.
fn journal_end(journal: Db<'_>) -> Result<i64> {
    journal.query_value("SELECT coalesce(max(id), 0) FROM journal", args![])
}

fn set_correlated_upto(tx: Db<'_>, id: i64) -> Result<()> {
    tx.execute(
        "UPDATE correlation_state SET value = ?1 WHERE key = 'correlated_upto' AND value < ?1",
        args![id],
    )?;
    Ok(())
}

/// Applies, in journal order, the records after `applied` (those a replay
/// already applied are skipped), and moves `applied` on.
fn apply_new<R>(
    applied: &mut i64,
    records: Vec<(i64, R)>,
    mut apply: impl FnMut(R, i64) -> Result<()>,
) -> Result<()> {
    for (id, record) in records {
        if id > *applied {
            apply(record, id)?;
            *applied = id;
        }
    }
    Ok(())
}
