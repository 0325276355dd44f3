//! The writer thread. It owns the only write connection, takes every waiting
//! submission, journals them in one transaction and answers them after the
//! commit (group commit): one disk sync serves many senders.
//!
//! The journal commit is what makes a record safe, so it alone decides the
//! acknowledgement. Calls and legs are derived from the journal: they are
//! written in the same transaction when the writer is not busy (so a quiet
//! system reads its own writes at once), and under load at most every
//! `FLUSH_INTERVAL`, so that a leg is written once rather than at each of its
//! records. `correlated_upto` marks how far calls and legs reflect the journal;
//! after a crash or a failed commit the rest is replayed from the journal.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cdrhub_model::Timestamp;
use cdrhub_protocols::cms;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use super::correlation::Correlation;
use super::{RecentRates, SqliteOptions};
use crate::{CmsIngest, IngestBatch, IngestOutcome, IngestPayload, StoreError};

pub(crate) enum WriterMsg {
    Ingest {
        batch: IngestBatch,
        ack: oneshot::Sender<Result<IngestOutcome, StoreError>>,
    },
    Rejected {
        source: String,
        sender: String,
        reason: String,
    },
}

/// Under load, calls and legs lag the journal by at most this much.
const FLUSH_INTERVAL: Duration = Duration::from_millis(500);
/// Flush anyway when this many calls wait to be written.
const MAX_DIRTY_GROUPS: usize = 5_000;
/// Journal rows replayed per transaction.
const REPLAY_CHUNK: i64 = 5_000;

pub(crate) fn spawn_writer(
    conn: Connection,
    options: SqliteOptions,
    rates: Arc<Mutex<RecentRates>>,
) -> (mpsc::Sender<WriterMsg>, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(options.queue_depth);
    let handle = std::thread::Builder::new()
        .name("cdrhub-writer".into())
        .spawn(move || Writer::new(options, rates).run(&conn, rx))
        .expect("spawning the writer thread");
    (tx, handle)
}

/// A write transaction that takes the write lock at once: waiting for it
/// (busy timeout) is possible then, where upgrading a read would fail.
fn begin(conn: &Connection) -> rusqlite::Result<Transaction<'_>> {
    Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
}

/// A receiver URL and session, interned as an integer for the dedup index.
#[derive(Clone, Copy)]
struct Stream {
    id: i64,
    max_seq: Option<i64>,
    dirty: bool,
}

#[derive(Default)]
struct SenderDelta {
    records: u64,
    duplicates: u64,
    rejected: u64,
    last_rejection: Option<String>,
    gaps: u64,
    missing: u64,
    last_record_at: Option<i64>,
}

struct NewGap {
    source: &'static str,
    sender: String,
    receiver: String,
    session: String,
    kind: &'static str,
    first_missing: Option<i64>,
    last_missing: Option<i64>,
    missing: i64,
    at_index: i64,
}

struct Writer {
    options: SqliteOptions,
    rates: Arc<Mutex<RecentRates>>,
    correlation: Correlation,
    /// (source, receiver, session) to stream; receiver "" is the session itself.
    streams: HashMap<(&'static str, String, String), Stream>,
    /// Highest journal id written, and how far calls and legs reflect it.
    last_journal_id: i64,
    correlated_upto: i64,
    last_flush: Instant,
    /// Set at start and after a failed commit: the cache must be rebuilt.
    needs_replay: bool,
    // Per transaction:
    new_gaps: Vec<NewGap>,
    filled: Vec<(i64, i64)>,
    senders: HashMap<(&'static str, String), SenderDelta>,
}

impl Writer {
    fn new(options: SqliteOptions, rates: Arc<Mutex<RecentRates>>) -> Self {
        Writer {
            options,
            rates,
            correlation: Correlation::default(),
            streams: HashMap::new(),
            last_journal_id: 0,
            correlated_upto: 0,
            last_flush: Instant::now(),
            needs_replay: true,
            new_gaps: Vec::new(),
            filled: Vec::new(),
            senders: HashMap::new(),
        }
    }

    fn run(mut self, conn: &Connection, mut rx: mpsc::Receiver<WriterMsg>) {
        let timer = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a timer for the writer");
        self.replay_or_warn(conn);
        loop {
            let wait = FLUSH_INTERVAL.saturating_sub(self.last_flush.elapsed());
            let first = if self.correlation.dirty_groups() > 0 {
                match timer.block_on(async { tokio::time::timeout(wait, rx.recv()).await }) {
                    Ok(msg) => msg,
                    Err(_) => {
                        // Quiet for a while with unflushed calls: write them now.
                        self.commit_group(conn, Vec::new(), &|| true);
                        continue;
                    }
                }
            } else {
                rx.blocking_recv()
            };
            let Some(first) = first else { break };
            let mut msgs = vec![first];
            let mut records = 0;
            while records < self.options.max_batch_records {
                match rx.try_recv() {
                    Ok(m) => {
                        if let WriterMsg::Ingest { batch, .. } = &m {
                            records += batch.payload.record_count();
                        }
                        msgs.push(m);
                    }
                    Err(_) => break,
                }
            }
            self.commit_group(conn, msgs, &|| rx.is_empty());
        }
        // Shutting down: leave calls and legs up to date.
        if self.correlation.dirty_groups() > 0 {
            self.commit_group(conn, Vec::new(), &|| true);
        }
    }

    fn replay_or_warn(&mut self, conn: &Connection) {
        match self.replay(conn) {
            Ok(0) => {}
            Ok(n) => info!(records = n, "brought calls up to date from the journal"),
            Err(e) => {
                warn!(error = %e, "cannot bring calls up to date from the journal yet; will retry")
            }
        }
    }

    /// Applies every message in one transaction, then answers each. `idle`
    /// tells whether anything waits behind them: if nothing does, calls and
    /// legs are written in the same transaction, so a quiet system reads its
    /// own writes at once.
    fn commit_group(&mut self, conn: &Connection, msgs: Vec<WriterMsg>, idle: &dyn Fn() -> bool) {
        if self.needs_replay {
            self.replay_or_warn(conn);
        }
        // Take every ack out first: whatever fails below, each sender hears why.
        let mut acks = Vec::with_capacity(msgs.len());
        let mut batches = Vec::with_capacity(msgs.len());
        for msg in msgs {
            match msg {
                WriterMsg::Ingest { batch, ack } => {
                    acks.push((ack, IngestOutcome::default()));
                    batches.push(batch);
                }
                WriterMsg::Rejected {
                    source,
                    sender,
                    reason,
                } => {
                    let d = self
                        .senders
                        .entry((source_name(&source), sender))
                        .or_default();
                    d.rejected += 1;
                    d.last_rejection = Some(reason);
                }
            }
        }
        let mut flushed = false;
        let result = (|| {
            let tx = begin(conn)?;
            for (i, batch) in batches.into_iter().enumerate() {
                acks[i].1 = self.ingest(&tx, batch)?;
            }
            self.write_counters(&tx)?;
            if !self.needs_replay
                && (idle()
                    || self.last_flush.elapsed() >= FLUSH_INTERVAL
                    || self.correlation.dirty_groups() >= MAX_DIRTY_GROUPS)
            {
                self.correlation.flush(&tx)?;
                set_correlated_upto(&tx, self.last_journal_id)?;
                flushed = true;
            }
            tx.commit()
        })();
        match result {
            Ok(()) => {
                self.after_commit(flushed);
                for (ack, outcome) in acks {
                    let _ = ack.send(Ok(outcome));
                }
            }
            Err(e) => {
                // Nothing of this transaction was committed. The cache may hold
                // records of it: drop the cache and rebuild it from the journal.
                self.new_gaps.clear();
                self.filled.clear();
                // Rejections were not journaled; keep counting them.
                self.senders.retain(|_, d| d.rejected > 0);
                for d in self.senders.values_mut() {
                    *d = SenderDelta {
                        rejected: d.rejected,
                        last_rejection: d.last_rejection.take(),
                        ..SenderDelta::default()
                    };
                }
                self.streams.clear();
                self.correlation = Correlation::default();
                self.needs_replay = true;
                let err = StoreError::Unavailable(e.to_string());
                warn!(error = %e, submissions = acks.len(), "commit failed; senders will retry");
                for (ack, _) in acks {
                    let _ = ack.send(Err(err.clone()));
                }
            }
        }
    }

    fn after_commit(&mut self, flushed: bool) {
        let now_s = Timestamp::now().0.div_euclid(1000);
        if let Ok(mut rates) = self.rates.lock() {
            for ((source, sender), d) in &self.senders {
                if d.records > 0 {
                    rates.add(source, sender, now_s, d.records);
                }
            }
        }
        self.new_gaps.clear();
        self.filled.clear();
        self.senders.clear();
        for s in self.streams.values_mut() {
            s.dirty = false;
        }
        if flushed {
            self.correlation.flushed();
            self.correlated_upto = self.last_journal_id;
            self.last_flush = Instant::now();
        }
    }

    /// Rebuilds calls and legs from the journal rows they do not reflect yet.
    fn replay(&mut self, conn: &Connection) -> rusqlite::Result<usize> {
        self.correlation = Correlation::default();
        self.streams.clear();
        let mut upto: i64 = conn.query_row(
            "SELECT value FROM meta WHERE key = 'correlated_upto'",
            [],
            |r| r.get(0),
        )?;
        let mut replayed = 0;
        loop {
            let tx = begin(conn)?;
            let rows: Vec<(i64, String, Option<String>, Vec<u8>)> = tx
                .prepare_cached(
                    "SELECT id, sender, call_bridge, payload FROM journal \
                     WHERE id > ?1 AND source = 'cms' ORDER BY id LIMIT ?2",
                )?
                .query_map(params![upto, REPLAY_CHUNK], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect::<Result<_, _>>()?;
            let Some(last) = rows.last().map(|r| r.0) else {
                break;
            };
            for (id, sender, call_bridge, payload) in &rows {
                match cms::decode_record("", payload) {
                    Ok(record) => {
                        self.correlation
                            .apply_cms(&tx, &record, call_bridge.as_deref(), sender)?
                    }
                    Err(e) => {
                        warn!(journal_id = id, error = %e, "journaled record no longer decodes; skipped")
                    }
                }
            }
            self.correlation.flush(&tx)?;
            set_correlated_upto(&tx, last)?;
            tx.commit()?;
            self.correlation.flushed();
            replayed += rows.len();
            upto = last;
        }
        let max_id: i64 =
            conn.query_row("SELECT coalesce(max(id), 0) FROM journal", [], |r| r.get(0))?;
        self.last_journal_id = max_id.max(upto);
        self.correlated_upto = upto;
        self.needs_replay = false;
        self.last_flush = Instant::now();
        Ok(replayed)
    }

    fn ingest(&mut self, tx: &Transaction, batch: IngestBatch) -> rusqlite::Result<IngestOutcome> {
        match batch.payload {
            IngestPayload::Cms(cms) => self.ingest_cms(tx, &batch.sender, batch.received_at, cms),
        }
    }

    fn stream(
        &mut self,
        tx: &Transaction,
        source: &'static str,
        receiver: &str,
        session: &str,
    ) -> rusqlite::Result<Stream> {
        let key = (source, receiver.to_owned(), session.to_owned());
        if let Some(s) = self.streams.get(&key) {
            return Ok(*s);
        }
        let found: Option<(i64, Option<i64>)> = tx
            .prepare_cached("SELECT id, max_seq FROM streams WHERE source = ?1 AND receiver = ?2 AND session = ?3")?
            .query_row(params![source, receiver, session], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let stream = match found {
            Some((id, max_seq)) => Stream {
                id,
                max_seq,
                dirty: false,
            },
            None => {
                tx.prepare_cached(
                    "INSERT INTO streams (source, receiver, session) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![source, receiver, session])?;
                Stream {
                    id: tx.last_insert_rowid(),
                    max_seq: None,
                    dirty: false,
                }
            }
        };
        self.streams.insert(key, stream);
        Ok(stream)
    }

    fn ingest_cms(
        &mut self,
        tx: &Transaction,
        sender: &str,
        received_at: Timestamp,
        cms: CmsIngest,
    ) -> rusqlite::Result<IngestOutcome> {
        let source = cdrhub_model::SOURCE_CMS;
        let mut outcome = IngestOutcome::default();
        let session = cms.batch.session.as_str();
        let call_bridge = cms.batch.call_bridge.as_deref();
        let receiver_stream = self.stream(tx, source, &cms.receiver, session)?.id;
        let session_stream = self.stream(tx, source, "", session)?.id;
        for record in &cms.batch.records {
            let payload = cms.body.get(record.raw.clone()).unwrap_or_default();
            let inserted = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO journal (source, sender, stream, seq, session_stream, alt_seq, \
                     received_at, event_time, event_type, subject, call_bridge, payload) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )?
                .execute(params![
                    source,
                    sender,
                    receiver_stream,
                    record.record_index as i64,
                    session_stream,
                    record.correlator_index.map(|c| c as i64),
                    received_at.0,
                    record.time.0,
                    record.record_type,
                    record.subject_id(),
                    call_bridge,
                    payload,
                ])?;
            let delta = self.senders.entry((source, sender.to_owned())).or_default();
            if inserted == 0 {
                outcome.duplicates += 1;
                delta.duplicates += 1;
                continue;
            }
            self.last_journal_id = tx.last_insert_rowid();
            outcome.stored += 1;
            delta.records += 1;
            delta.last_record_at = Some(delta.last_record_at.unwrap_or(0).max(received_at.0));
            outcome.gaps += self.track_sequence(
                source,
                sender,
                (&cms.receiver, session),
                record.record_index as i64,
                record.preceding_records_missing as i64,
            );
            if !self.needs_replay {
                self.correlation
                    .apply_cms(tx, record, call_bridge, sender)?;
            }
        }
        Ok(outcome)
    }

    /// Gaps in a receiver's recordIndex sequence, and those CMS reports itself.
    fn track_sequence(
        &mut self,
        source: &'static str,
        sender: &str,
        (receiver, session): (&str, &str),
        index: i64,
        reported_missing: i64,
    ) -> usize {
        let Some(stream) = self
            .streams
            .get_mut(&(source, receiver.to_owned(), session.to_owned()))
        else {
            return 0;
        };
        let mut gaps = Vec::new();
        match stream.max_seq {
            // CMS numbers each receiver's records from 1.
            None if index > 1 => gaps.push(("session_start", Some(1), Some(index - 1), index - 1)),
            Some(max) if index > max + 1 => {
                gaps.push(("sequence", Some(max + 1), Some(index - 1), index - 1 - max))
            }
            Some(max) if index < max => self.filled.push((stream.id, index)),
            _ => {}
        }
        if reported_missing > 0 {
            gaps.push(("reported", None, None, reported_missing));
        }
        if stream.max_seq.is_none_or(|m| index > m) {
            stream.max_seq = Some(index);
            stream.dirty = true;
        }
        let n = gaps.len();
        let delta = self.senders.entry((source, sender.to_owned())).or_default();
        for (kind, first, last, missing) in gaps {
            delta.gaps += 1;
            delta.missing += missing as u64;
            self.new_gaps.push(NewGap {
                source,
                sender: sender.to_owned(),
                receiver: receiver.to_owned(),
                session: session.to_owned(),
                kind,
                first_missing: first,
                last_missing: last,
                missing,
                at_index: index,
            });
        }
        n
    }

    /// Stream positions, gaps and per-sender counters of this transaction.
    fn write_counters(&mut self, tx: &Transaction) -> rusqlite::Result<()> {
        for s in self.streams.values().filter(|s| s.dirty) {
            tx.prepare_cached("UPDATE streams SET max_seq = ?2 WHERE id = ?1")?
                .execute(params![s.id, s.max_seq])?;
        }
        let now = Timestamp::now().0;
        for g in &self.new_gaps {
            tx.prepare_cached(
                "INSERT INTO gaps (source, sender, receiver, session, kind, first_missing, last_missing, \
                 missing, detected_at, at_index) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
                g.source,
                g.sender,
                g.receiver,
                g.session,
                g.kind,
                g.first_missing,
                g.last_missing,
                g.missing,
                now,
                g.at_index
            ])?;
        }
        for (stream, index) in &self.filled {
            tx.prepare_cached(
                "UPDATE gaps SET filled = filled + 1 WHERE kind IN ('sequence', 'session_start') \
                 AND ?2 BETWEEN first_missing AND last_missing \
                 AND (source, receiver, session) = (SELECT source, receiver, session FROM streams WHERE id = ?1)",
            )?
            .execute(params![stream, index])?;
        }
        for ((source, sender), d) in &self.senders {
            tx.prepare_cached(
                "INSERT INTO senders (source, sender, first_seen, last_record_at, records, duplicates, \
                 rejected_documents, last_rejection, gaps, missing_records) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
                 ON CONFLICT(source, sender) DO UPDATE SET \
                   last_record_at = max(coalesce(last_record_at, 0), coalesce(excluded.last_record_at, 0)), \
                   records = records + excluded.records, duplicates = duplicates + excluded.duplicates, \
                   rejected_documents = rejected_documents + excluded.rejected_documents, \
                   last_rejection = coalesce(excluded.last_rejection, last_rejection), \
                   gaps = gaps + excluded.gaps, missing_records = missing_records + excluded.missing_records",
            )?
            .execute(params![
                source,
                sender,
                now,
                d.last_record_at,
                d.records as i64,
                d.duplicates as i64,
                d.rejected as i64,
                d.last_rejection,
                d.gaps as i64,
                d.missing as i64
            ])?;
        }
        Ok(())
    }
}

fn set_correlated_upto(tx: &Transaction, id: i64) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE meta SET value = ?1 WHERE key = 'correlated_upto' AND value < ?1")?
        .execute([id])?;
    Ok(())
}

fn source_name(source: &str) -> &'static str {
    match source {
        "cms" => cdrhub_model::SOURCE_CMS,
        _ => "other",
    }
}
