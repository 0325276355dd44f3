//! The writer thread. It owns the only write connection, takes every waiting
//! submission, journals them in one transaction and answers them after the
//! commit (group commit): one disk sync serves many senders.
//!
//! The journal commit is what makes a record safe, so it alone decides the
//! acknowledgement. After it, and before the senders hear of it, the
//! commit's records go to the correlator thread (`correlator.rs`), which
//! derives calls and legs from them in `calls.db`.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cdrhub_model::Timestamp;
use tokio::sync::{mpsc, oneshot};
use tracing::{trace, warn};

use super::correlator::{CommittedBatch, CommittedRecords, CorrelatorHandle, Progress};
use super::{EngineOptions, RecentRates};
use crate::db::{Conn, Db, OptionalExt, PgOnly, Result, args};
use crate::{
    CmsIngest, CtiIngest, EventsIngest, FeedIngest, GatewayLogKind, HepIngest, IngestBatch,
    IngestOutcome, IngestPayload, RadiusIngest, StoreError,
};

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

thread_local! {
    /// How long a thread waits for a lock before a commit fails (per thread:
    /// SQLite's busy handler is a plain function).
    static BUSY_WAIT_LIMIT: std::cell::Cell<Duration> = const { std::cell::Cell::new(Duration::from_secs(5)) };
}

pub(crate) fn set_busy_wait_limit(limit: Duration) {
    BUSY_WAIT_LIMIT.with(|l| l.set(limit));
}

/// SQLite's own busy handler sleeps 1, 2, 5, 10 ms ... between tries, so a
/// lock the checkpointer holds for a fraction of a millisecond cost the writer
/// 18 ms, and every sender waiting on that commit with it. Try again every
/// 100 µs instead, up to the configured `busy_timeout`.
pub(crate) fn retry_soon(tries: i32) -> bool {
    const STEP: Duration = Duration::from_micros(100);
    let limit = BUSY_WAIT_LIMIT.with(|l| l.get());
    if STEP * tries.max(0) as u32 >= limit {
        return false;
    }
    std::thread::sleep(STEP);
    true
}

pub(crate) fn spawn_writer(
    mut conn: Conn,
    options: EngineOptions,
    rates: Arc<Mutex<RecentRates>>,
    correlator: CorrelatorHandle,
    progress: Arc<Progress>,
) -> (mpsc::Sender<WriterMsg>, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(options.queue_depth);
    let handle = std::thread::Builder::new()
        .name("cdrhub-writer".into())
        .spawn(move || {
            if let Conn::Sqlite(c) = &mut conn {
                set_busy_wait_limit(options.busy_timeout);
                if let Err(e) = c.busy_handler(Some(retry_soon)) {
                    warn!(error = %e, "cannot set the busy handler; SQLite's own applies");
                }
            }
            Writer::new(options, rates, correlator, progress).run(conn.db(), rx)
        })
        .expect("spawning the writer thread");
    (tx, handle)
}

/// The advisory lock journal commits take on a shared database ("cdrhub"
/// and a 3).
const JOURNAL_LOCK: i64 = 0x6364_7268_7562_0003;

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

/// A journal row of a source numbered within one stream.
struct EventRow<'a> {
    stream: i64,
    /// Number within the stream; a second row with it is a duplicate.
    seq: i64,
    received_at: Timestamp,
    event_type: &'a str,
    subject: Option<&'a str>,
    payload: &'a [u8],
}

/// A gap row, as kept in memory while its missing records may still arrive.
struct GapRow {
    /// None until the row is written.
    id: Option<i64>,
    source: &'static str,
    sender: String,
    receiver: String,
    session: String,
    kind: &'static str,
    first_missing: Option<i64>,
    last_missing: Option<i64>,
    missing: i64,
    filled: i64,
    at_index: i64,
    dirty: bool,
}

impl GapRow {
    fn open(&self) -> bool {
        self.filled < self.missing
    }
}

struct Writer {
    options: EngineOptions,
    rates: Arc<Mutex<RecentRates>>,
    correlator: CorrelatorHandle,
    progress: Arc<Progress>,
    /// (source, receiver, session) to stream; receiver "" is the session itself.
    streams: HashMap<(&'static str, String, String), Stream>,
    /// Highest journal id committed.
    journaled: i64,
    // Per transaction:
    /// Records journaled, for the correlator once they are committed.
    committed: Vec<CommittedBatch>,
    /// Open sequence gaps per receiver stream (loaded from the database at
    /// the stream's first late record), so a late record fills its gap by id.
    open_gaps: HashMap<i64, Vec<GapRow>>,
    /// Gaps CMS reported (`numPreceedingRecordsMissing`): written, never filled.
    reported_gaps: Vec<GapRow>,
    senders: HashMap<(&'static str, String), SenderDelta>,
}

impl Writer {
    fn new(
        options: EngineOptions,
        rates: Arc<Mutex<RecentRates>>,
        correlator: CorrelatorHandle,
        progress: Arc<Progress>,
    ) -> Self {
        let journaled = progress.journaled.load(Ordering::Acquire);
        Writer {
            options,
            rates,
            correlator,
            progress,
            streams: HashMap::new(),
            journaled,
            committed: Vec::new(),
            open_gaps: HashMap::new(),
            reported_gaps: Vec::new(),
            senders: HashMap::new(),
        }
    }

    fn run(mut self, conn: Db<'_>, mut rx: mpsc::Receiver<WriterMsg>) {
        // A feed gateway's session lives in the server process that took its
        // login: none is online before this process has heard from it.
        if let Err(e) = conn.execute("UPDATE gateways SET online = 0 WHERE online = 1", args![]) {
            warn!(error = %e, "cannot mark the feed gateways offline at start");
        }
        while let Some(first) = rx.blocking_recv() {
            let mut records = first.record_count();
            let mut msgs = vec![first];
            while records < self.options.max_batch_records {
                match rx.try_recv() {
                    Ok(m) => {
                        records += m.record_count();
                        msgs.push(m);
                    }
                    Err(_) => break,
                }
            }
            self.commit_group(conn, msgs);
        }
    }

    /// Journals every message in one transaction; after the commit hands the
    /// records to the correlator, then answers each sender.
    fn commit_group(&mut self, conn: Db<'_>, msgs: Vec<WriterMsg>) {
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
        let mut last_id = self.journaled;
        let started = std::time::Instant::now();
        let result = (|| {
            let tx = conn.begin()?;
            if self.options.shared {
                // Processes sharing the database commit the journal one at
                // a time, so its ids grow in the order of the commits and
                // the correlator reading after an id misses none.
                tx.db().query_value::<i64>(
                    "SELECT 1 FROM (SELECT pg_advisory_xact_lock(?1)) AS l",
                    args![JOURNAL_LOCK],
                )?;
                // What another process committed since may have moved the
                // streams' positions and gaps: read them again.
                self.streams.clear();
                self.open_gaps.clear();
            }
            for (i, batch) in batches.into_iter().enumerate() {
                acks[i].1 = self.ingest(tx.db(), batch, &mut last_id)?;
            }
            self.write_counters(tx.db())?;
            tx.commit()
        })();
        match result {
            Ok(()) => {
                trace!(
                    submissions = acks.len(),
                    records = last_id - self.journaled,
                    micros = started.elapsed().as_micros() as u64,
                    "journal committed"
                );
                self.after_commit();
                // A read after an acknowledgement asks the correlator for
                // everything journaled up to here (`catch_up`); it reads from
                // the journal what it has not been handed yet.
                let after = self.journaled;
                self.journaled = last_id;
                self.progress.journaled.store(last_id, Ordering::Release);
                for (ack, outcome) in acks {
                    let _ = ack.send(Ok(outcome));
                }
                // Waits while the correlator is behind: the next commit, and
                // so the senders, slow down to its pace.
                let committed = std::mem::take(&mut self.committed);
                if !committed.is_empty() {
                    self.correlator.committed(after, committed);
                }
            }
            Err(e) => {
                // Nothing of this transaction was committed: forget what the
                // caches learnt from it.
                self.committed.clear();
                self.open_gaps.clear();
                self.reported_gaps.clear();
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
                let err = StoreError::Unavailable(e.to_string());
                warn!(error = %e, submissions = acks.len(), "commit failed; senders will retry");
                for (ack, _) in acks {
                    let _ = ack.send(Err(err.clone()));
                }
            }
        }
    }

    fn after_commit(&mut self) {
        let now_s = Timestamp::now().0.div_euclid(1000);
        if let Ok(mut rates) = self.rates.lock() {
            for ((source, sender), d) in &self.senders {
                if d.records > 0 {
                    rates.add(source, sender, now_s, d.records);
                }
            }
        }
        self.reported_gaps.clear();
        for gaps in self.open_gaps.values_mut() {
            gaps.retain(GapRow::open);
        }
        self.senders.clear();
        for s in self.streams.values_mut() {
            s.dirty = false;
        }
    }

    fn ingest(
        &mut self,
        tx: Db<'_>,
        batch: IngestBatch,
        last_id: &mut i64,
    ) -> Result<IngestOutcome> {
        match batch.payload {
            IngestPayload::Cms(cms) => {
                self.ingest_cms(tx, &batch.sender, batch.received_at, cms, last_id)
            }
            IngestPayload::Cti(cti) => self.ingest_cti(tx, &batch.sender, cti, last_id),
            IngestPayload::Radius(radius) => self.ingest_radius(tx, radius, last_id),
            IngestPayload::Feed(feed) => self.ingest_feed(tx, &batch.sender, feed, last_id),
            IngestPayload::Hep(hep) => self.ingest_hep(tx, &batch.sender, hep, last_id),
            IngestPayload::Events(events) => self.ingest_events(tx, &batch.sender, events, last_id),
        }
    }

    /// The stream of a receiver URL and session, created at its first record.
    fn stream(
        &mut self,
        tx: Db<'_>,
        key: (&'static str, &str, &str),
        sender: &str,
        call_bridge: Option<&str>,
    ) -> Result<Stream> {
        let (source, receiver, session) = key;
        let key = (source, receiver.to_owned(), session.to_owned());
        if let Some(s) = self.streams.get(&key) {
            return Ok(*s);
        }
        let found: Option<(i64, Option<i64>)> = tx
            .query_row("SELECT id, max_seq FROM streams WHERE source = ?1 AND receiver = ?2 AND session = ?3", args![source, receiver, session], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let stream = match found {
            Some((id, max_seq)) => Stream {
                id,
                max_seq,
                dirty: false,
            },
            None => {
                let id = tx.query_value(
                    "INSERT INTO streams (source, receiver, session, sender, call_bridge) \
                     VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
                    args![source, receiver, session, sender, call_bridge],
                )?;
                Stream {
                    id,
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
        tx: Db<'_>,
        sender: &str,
        received_at: Timestamp,
        cms: CmsIngest,
        last_id: &mut i64,
    ) -> Result<IngestOutcome> {
        let source = cdrhub_model::SOURCE_CMS;
        let mut outcome = IngestOutcome::default();
        let session = cms.batch.session.as_str();
        let call_bridge = cms.batch.call_bridge.as_deref();
        let receiver_stream = self
            .stream(tx, (source, &cms.receiver, session), sender, call_bridge)?
            .id;
        let session_stream = self
            .stream(tx, (source, "", session), sender, call_bridge)?
            .id;
        let rows: Vec<JournalRow<'_>> = cms
            .batch
            .records
            .iter()
            .map(|record| {
                // A re-sent record has the same correlatorIndex in its
                // session, whichever receiver URL it was sent to
                // (reference/cms-cdr.md A.1).
                let (dedup_stream, dedup_seq) = match record.correlator_index {
                    Some(c) => (session_stream, c as i64),
                    None => (receiver_stream, record.record_index as i64),
                };
                JournalRow {
                    stream: receiver_stream,
                    seq: record.record_index as i64,
                    session_stream,
                    alt_seq: record.correlator_index.map(|c| c as i64),
                    received_at: received_at.0,
                    event_time: record.time.0,
                    event_type: record.record_type.as_str(),
                    subject: record.subject_id(),
                    payload: cms.body.get(record.raw.clone()).unwrap_or_default(),
                    dedup_stream,
                    dedup_seq,
                }
            })
            .collect();
        let ids = insert_journal(tx, &rows)?;
        drop(rows);
        let mut committed = Vec::with_capacity(cms.batch.records.len());
        for (record, inserted) in cms.batch.records.into_iter().zip(ids) {
            let delta = self.senders.entry((source, sender.to_owned())).or_default();
            let Some(id) = inserted else {
                outcome.duplicates += 1;
                delta.duplicates += 1;
                continue;
            };
            *last_id = id;
            outcome.stored += 1;
            delta.records += 1;
            delta.last_record_at = Some(delta.last_record_at.unwrap_or(0).max(received_at.0));
            outcome.gaps += self.track_sequence(
                tx,
                source,
                sender,
                (&cms.receiver, session),
                record.record_index as i64,
                record.preceding_records_missing as i64,
            )?;
            committed.push((id, record));
        }
        if !committed.is_empty() {
            self.committed.push(CommittedBatch {
                sender: sender.to_owned(),
                records: CommittedRecords::Cms {
                    call_bridge: call_bridge.map(str::to_owned),
                    records: committed,
                },
            });
        }
        Ok(outcome)
    }

    /// CTI messages of one connection session, numbered by the client: a
    /// batch submitted again is stored once. The journal keeps each frame
    /// as read, after the protocol version that decides its layout.
    fn ingest_cti(
        &mut self,
        tx: Db<'_>,
        sender: &str,
        cti: CtiIngest,
        last_id: &mut i64,
    ) -> Result<IngestOutcome> {
        let source = cdrhub_model::SOURCE_CTI;
        let mut outcome = IngestOutcome::default();
        let stream = self
            .stream(tx, (source, &cti.node, &cti.session), sender, None)?
            .id;
        let mut committed = Vec::with_capacity(cti.messages.len());
        let version = cti.version;
        for m in cti.messages {
            let subject = cdrhub_correlate::cti::subject(&m.message);
            let row = EventRow {
                stream,
                seq: m.seq as i64,
                received_at: m.received_at,
                event_type: &cdrhub_protocols::cti::message_type_name(m.message.message_type),
                subject: subject.as_deref(),
                payload: &super::records::cti_payload(version, &m.frame),
            };
            let Some(id) = self.journal_event(tx, source, sender, row, &mut outcome, last_id)?
            else {
                continue;
            };
            committed.push((
                id,
                cdrhub_correlate::cti::CtiEvent {
                    received_at: m.received_at,
                    message: m.message,
                },
            ));
        }
        if !committed.is_empty() {
            self.committed.push(CommittedBatch {
                sender: sender.to_owned(),
                records: CommittedRecords::Cti(committed),
            });
        }
        Ok(outcome)
    }

    /// Journals one event of a source numbered within one stream (CTI,
    /// RADIUS) and counts it: its journal id, or None when the journal
    /// already had it.
    fn journal_event(
        &mut self,
        tx: Db<'_>,
        source: &'static str,
        sender: &str,
        row: EventRow<'_>,
        outcome: &mut IngestOutcome,
        last_id: &mut i64,
    ) -> Result<Option<i64>> {
        let row = JournalRow {
            stream: row.stream,
            seq: row.seq,
            session_stream: row.stream,
            alt_seq: None,
            received_at: row.received_at.0,
            event_time: row.received_at.0,
            event_type: row.event_type,
            subject: row.subject,
            payload: row.payload,
            dedup_stream: row.stream,
            dedup_seq: row.seq,
        };
        let received_at = row.received_at;
        let inserted = insert_journal(tx, std::slice::from_ref(&row))?
            .pop()
            .flatten();
        let delta = self.senders.entry((source, sender.to_owned())).or_default();
        let Some(id) = inserted else {
            outcome.duplicates += 1;
            delta.duplicates += 1;
            return Ok(None);
        };
        *last_id = id;
        outcome.stored += 1;
        delta.records += 1;
        delta.last_record_at = Some(delta.last_record_at.unwrap_or(0).max(received_at));
        Ok(Some(id))
    }

    /// Accounting-Requests: the same session's record of the same kind
    /// (Start, Stop, each Interim-Update by its session time) from the same
    /// gateway is stored once, however often it is sent again.
    fn ingest_radius(
        &mut self,
        tx: Db<'_>,
        radius: RadiusIngest,
        last_id: &mut i64,
    ) -> Result<IngestOutcome> {
        let source = cdrhub_model::SOURCE_RADIUS;
        let mut outcome = IngestOutcome::default();
        let mut committed: Vec<CommittedBatch> = Vec::new();
        for r in radius.requests {
            let stream = self.stream(tx, (source, &r.nas, ""), &r.nas, None)?.id;
            let seq = super::records::radius_dedup_key(&r.accounting, &r.authenticator);
            let row = EventRow {
                stream,
                seq,
                received_at: r.received_at,
                event_type: super::records::radius_event_type(
                    r.accounting.status_type.unwrap_or(0),
                ),
                subject: r.accounting.session_id.as_deref(),
                payload: &r.datagram,
            };
            let Some(id) = self.journal_event(tx, source, &r.nas, row, &mut outcome, last_id)?
            else {
                continue;
            };
            let event = (
                id,
                cdrhub_correlate::radius::RadiusEvent {
                    received_at: r.received_at,
                    accounting: r.accounting,
                },
            );
            match committed.iter_mut().find(|b| b.sender == r.nas) {
                Some(CommittedBatch {
                    records: CommittedRecords::Radius(events),
                    ..
                }) => events.push(event),
                _ => committed.push(CommittedBatch {
                    sender: r.nas,
                    records: CommittedRecords::Radius(vec![event]),
                }),
            }
        }
        self.committed.extend(committed);
        Ok(outcome)
    }

    /// Lines of one login of a feed gateway (numbered by the gateway: a line
    /// sent again is stored once), the gateway log lines they caused, and
    /// the gateway's registration, in one transaction.
    fn ingest_feed(
        &mut self,
        tx: Db<'_>,
        sender: &str,
        feed: FeedIngest,
        last_id: &mut i64,
    ) -> Result<IngestOutcome> {
        let source = cdrhub_model::SOURCE_FEED;
        let mut outcome = IngestOutcome::default();
        if let Some(r) = &feed.registration {
            tx.execute(
                "INSERT INTO gateways (name, gateway_id, mac, address, public_address, fxs, fxo, \
                 isdn, call_ref, clock, clock_offset_s, last_login, last_seen, online) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, 1) \
                 ON CONFLICT (name) DO UPDATE SET address = excluded.address, \
                 public_address = excluded.public_address, fxs = excluded.fxs, \
                 fxo = excluded.fxo, isdn = excluded.isdn, call_ref = excluded.call_ref, \
                 clock = excluded.clock, clock_offset_s = excluded.clock_offset_s, \
                 last_login = excluded.last_login, last_seen = excluded.last_seen, online = 1",
                args![
                    r.name,
                    r.gateway_id,
                    r.mac,
                    r.address,
                    r.public_address,
                    r.fxs,
                    r.fxo,
                    r.isdn,
                    r.call_ref,
                    r.clock,
                    r.clock_offset_s,
                    r.last_login.0,
                ],
            )?;
        }
        for entry in &feed.log {
            tx.execute(
                "INSERT INTO gateway_log (at, gateway, kind, address, text) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                args![
                    entry.at.0,
                    entry.gateway,
                    entry.kind.as_str(),
                    entry.address,
                    entry.text
                ],
            )?;
            // The log says when a gateway comes and goes.
            let online = match entry.kind {
                GatewayLogKind::Login => Some(true),
                GatewayLogKind::ReloginKickout
                | GatewayLogKind::Disconnect
                | GatewayLogKind::Logout => Some(false),
                GatewayLogKind::ReLogin | GatewayLogKind::BadPacket => None,
            };
            if let (Some(online), Some(gateway)) = (online, &entry.gateway) {
                tx.execute(
                    "UPDATE gateways SET online = ?2 WHERE name = ?1",
                    args![gateway, online],
                )?;
            }
        }
        let Some(seen) = feed.lines.iter().map(|l| l.received_at).max() else {
            return Ok(outcome);
        };
        tx.execute("UPDATE gateways SET last_seen = CASE WHEN last_seen < ?2 THEN ?2 ELSE last_seen END WHERE name = ?1", args![sender, seen.0])?;
        let stream = self
            .stream(tx, (source, sender, &feed.login), sender, None)?
            .id;
        let mut committed = Vec::with_capacity(feed.lines.len());
        for l in feed.lines {
            let message = l.message;
            let subject = match &message.body {
                cdrhub_protocols::feed::FeedBody::Call(e) => Some(e.call_ref.to_string()),
                _ => None,
            };
            let row = EventRow {
                stream,
                seq: i64::from(message.seq),
                received_at: l.received_at,
                event_type: super::records::feed_event_type(&message.body),
                subject: subject.as_deref(),
                payload: &super::records::feed_payload(&feed.login, &l.line),
            };
            let Some(id) = self.journal_event(tx, source, sender, row, &mut outcome, last_id)?
            else {
                continue;
            };
            if let cdrhub_protocols::feed::FeedBody::Call(event) = message.body {
                committed.push((
                    id,
                    cdrhub_correlate::feed::FeedEvent {
                        received_at: l.received_at,
                        login: feed.login.clone(),
                        seq: message.seq,
                        event,
                    },
                ));
            }
        }
        if !committed.is_empty() {
            self.committed.push(CommittedBatch {
                sender: sender.to_owned(),
                records: CommittedRecords::Feed(committed),
            });
        }
        Ok(outcome)
    }

    /// HEP packets of one capture agent, numbered by the listener's run.
    /// Every packet is kept; those that carry SIP go to the correlator.
    fn ingest_hep(
        &mut self,
        tx: Db<'_>,
        sender: &str,
        hep: HepIngest,
        last_id: &mut i64,
    ) -> Result<IngestOutcome> {
        let source = cdrhub_model::SOURCE_SIP;
        let mut outcome = IngestOutcome::default();
        let stream = self
            .stream(tx, (source, sender, &hep.session), sender, None)?
            .id;
        let mut committed = Vec::with_capacity(hep.packets.len());
        for p in hep.packets {
            let event = p.event;
            let row = EventRow {
                stream,
                seq: p.seq as i64,
                received_at: p.received_at,
                event_type: "HEP",
                subject: event.as_ref().map(|e| e.signal.call_id.as_str()),
                payload: &p.bytes,
            };
            let Some(id) = self.journal_event(tx, source, sender, row, &mut outcome, last_id)?
            else {
                continue;
            };
            if let Some(event) = event {
                committed.push((id, event));
            }
        }
        if !committed.is_empty() {
            self.committed.push(CommittedBatch {
                sender: sender.to_owned(),
                records: CommittedRecords::Sip(committed),
            });
        }
        Ok(outcome)
    }

    /// Call events of one sender, each stored once per idempotency key
    /// (its hash numbers it in the sender's stream).
    fn ingest_events(
        &mut self,
        tx: Db<'_>,
        sender: &str,
        events: EventsIngest,
        last_id: &mut i64,
    ) -> Result<IngestOutcome> {
        let source = if events.imported {
            cdrhub_model::SOURCE_CSV
        } else {
            cdrhub_model::SOURCE_EVENTS
        };
        let mut outcome = IngestOutcome::default();
        let stream = self.stream(tx, (source, sender, ""), sender, None)?.id;
        let mut committed = Vec::with_capacity(events.events.len());
        for e in events.events {
            let payload = cdrhub_protocols::events::encode_one(&e.event);
            let row = EventRow {
                stream,
                seq: super::records::event_dedup_key(&e.event.key),
                received_at: e.received_at,
                event_type: e.event.kind.as_str(),
                subject: e.event.call_id.as_deref().or(e.event.extension.as_deref()),
                payload: &payload,
            };
            let Some(id) = self.journal_event(tx, source, sender, row, &mut outcome, last_id)?
            else {
                continue;
            };
            committed.push((
                id,
                cdrhub_correlate::events::EventRecord {
                    received_at: e.received_at,
                    event: e.event,
                },
            ));
        }
        if !committed.is_empty() {
            self.committed.push(CommittedBatch {
                sender: sender.to_owned(),
                records: CommittedRecords::Events(committed),
            });
        }
        Ok(outcome)
    }

    /// Gaps in a receiver's recordIndex sequence, and those CMS reports itself.
    fn track_sequence(
        &mut self,
        tx: Db<'_>,
        source: &'static str,
        sender: &str,
        (receiver, session): (&str, &str),
        index: i64,
        reported_missing: i64,
    ) -> Result<usize> {
        let Some(stream) = self
            .streams
            .get_mut(&(source, receiver.to_owned(), session.to_owned()))
        else {
            return Ok(0);
        };
        let stream_id = stream.id;
        let mut gaps = Vec::new();
        let mut late = false;
        match stream.max_seq {
            // CMS numbers each receiver's records from 1.
            None if index > 1 => gaps.push(("session_start", Some(1), Some(index - 1), index - 1)),
            Some(max) if index > max + 1 => {
                gaps.push(("sequence", Some(max + 1), Some(index - 1), index - 1 - max))
            }
            Some(max) if index < max => late = true,
            _ => {}
        }
        if stream.max_seq.is_none_or(|m| index > m) {
            stream.max_seq = Some(index);
            stream.dirty = true;
        }
        if late {
            // A record that was missing arrived: fill the gap it was in.
            let open = self.open_gaps_of(tx, stream_id, source, (receiver, session))?;
            if let Some(g) = open.iter_mut().find(|g| {
                g.open()
                    && g.first_missing.is_some_and(|f| f <= index)
                    && g.last_missing.is_some_and(|l| index <= l)
            }) {
                g.filled += 1;
                g.dirty = true;
            }
        }
        if reported_missing > 0 {
            gaps.push(("reported", None, None, reported_missing));
        }
        let n = gaps.len();
        for (kind, first, last, missing) in gaps {
            let delta = self.senders.entry((source, sender.to_owned())).or_default();
            delta.gaps += 1;
            delta.missing += missing as u64;
            let row = GapRow {
                id: None,
                source,
                sender: sender.to_owned(),
                receiver: receiver.to_owned(),
                session: session.to_owned(),
                kind,
                first_missing: first,
                last_missing: last,
                missing,
                filled: 0,
                at_index: index,
                dirty: true,
            };
            if kind == "reported" {
                self.reported_gaps.push(row);
            } else {
                self.open_gaps_of(tx, stream_id, source, (receiver, session))?
                    .push(row);
            }
        }
        Ok(n)
    }

    /// The open gaps of a receiver stream, loaded once from the database.
    fn open_gaps_of(
        &mut self,
        tx: Db<'_>,
        stream_id: i64,
        source: &'static str,
        (receiver, session): (&str, &str),
    ) -> Result<&mut Vec<GapRow>> {
        if let std::collections::hash_map::Entry::Vacant(slot) = self.open_gaps.entry(stream_id) {
            let rows = tx
                .query_map("SELECT id, sender, kind, first_missing, last_missing, missing, filled, at_index FROM gaps \
                     WHERE source = ?1 AND receiver = ?2 AND session = ?3 \
                     AND kind IN ('sequence', 'session_start') AND filled < missing", args![source, receiver, session], |r| {
                    let kind: String = r.get(2)?;
                    Ok(GapRow {
                        id: Some(r.get(0)?),
                        source,
                        sender: r.get(1)?,
                        receiver: receiver.to_owned(),
                        session: session.to_owned(),
                        kind: if kind == "session_start" { "session_start" } else { "sequence" },
                        first_missing: r.get(3)?,
                        last_missing: r.get(4)?,
                        missing: r.get(5)?,
                        filled: r.get(6)?,
                        at_index: r.get(7)?,
                        dirty: false,
                    })
                })?;
            slot.insert(rows);
        }
        Ok(self.open_gaps.get_mut(&stream_id).expect("inserted above"))
    }

    /// Stream positions, gaps and per-sender counters of this transaction.
    fn write_counters(&mut self, tx: Db<'_>) -> Result<()> {
        for s in self.streams.values().filter(|s| s.dirty) {
            tx.execute(
                "UPDATE streams SET max_seq = ?2 WHERE id = ?1",
                args![s.id, s.max_seq],
            )?;
        }
        let now = Timestamp::now().0;
        let rows = self
            .open_gaps
            .values_mut()
            .flatten()
            .chain(self.reported_gaps.iter_mut())
            .filter(|g| g.dirty);
        for g in rows {
            match g.id {
                Some(id) => {
                    tx.execute(
                        "UPDATE gaps SET filled = ?2 WHERE id = ?1",
                        args![id, g.filled],
                    )?;
                }
                None => {
                    let id = tx.query_value("INSERT INTO gaps (source, sender, receiver, session, kind, first_missing, last_missing, \
                         missing, filled, detected_at, at_index) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) RETURNING id", args![
                        g.source,
                        g.sender,
                        g.receiver,
                        g.session,
                        g.kind,
                        g.first_missing,
                        g.last_missing,
                        g.missing,
                        g.filled,
                        now,
                        g.at_index
                    ])?;
                    g.id = Some(id);
                }
            }
            g.dirty = false;
        }
        for ((source, sender), d) in &self.senders {
            tx.execute("INSERT INTO senders (source, sender, first_seen, last_record_at, records, duplicates, \
                 rejected_documents, last_rejection, gaps, missing_records) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
                 ON CONFLICT(source, sender) DO UPDATE SET \
                   last_record_at = CASE WHEN excluded.last_record_at > coalesce(senders.last_record_at, 0) \
                     THEN excluded.last_record_at ELSE coalesce(senders.last_record_at, 0) END, \
                   records = senders.records + excluded.records, \
                   duplicates = senders.duplicates + excluded.duplicates, \
                   rejected_documents = senders.rejected_documents + excluded.rejected_documents, \
                   last_rejection = coalesce(excluded.last_rejection, senders.last_rejection), \
                   gaps = senders.gaps + excluded.gaps, \
                   missing_records = senders.missing_records + excluded.missing_records", args![
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

/// A journal row to insert.
struct JournalRow<'a> {
    stream: i64,
    seq: i64,
    session_stream: i64,
    alt_seq: Option<i64>,
    received_at: i64,
    event_time: i64,
    event_type: &'a str,
    subject: Option<&'a str>,
    payload: &'a [u8],
    dedup_stream: i64,
    dedup_seq: i64,
}

/// Inserts the rows in order; each one's journal id, or `None` for a
/// duplicate (of a row already there or earlier in `rows`). SQLite takes
/// them one prepared insert at a time (no round trips); PostgreSQL in one
/// statement of arrays, as a round trip per row would cost more than the
/// insert.
fn insert_journal(tx: Db<'_>, rows: &[JournalRow<'_>]) -> Result<Vec<Option<i64>>> {
    if let Db::Sqlite(_) = tx {
        // Ids given here, above every id the journal ever held: SQLite
        // would give the ids of removed newest records again (see
        // `prune::JOURNAL_HIGH_WATER`). One look per batch; nothing else
        // writes in between.
        let mut next: i64 = tx.query_value(
            "SELECT max(coalesce((SELECT max(id) FROM journal), 0), \
             coalesce((SELECT CAST(value AS INTEGER) FROM settings WHERE key = ?1), 0)) + 1",
            args![super::prune::JOURNAL_HIGH_WATER],
        )?;
        return rows
            .iter()
            .map(|r| {
                let inserted = tx.execute(
                    "INSERT INTO journal (id, stream, seq, session_stream, alt_seq, \
                     received_at, event_time, event_type, subject, payload, dedup_stream, dedup_seq) \
                     VALUES (?12, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
                     ON CONFLICT DO NOTHING",
                    args![
                        r.stream,
                        r.seq,
                        r.session_stream,
                        r.alt_seq,
                        r.received_at,
                        r.event_time,
                        r.event_type,
                        r.subject,
                        r.payload,
                        r.dedup_stream,
                        r.dedup_seq,
                        next,
                    ],
                )?;
                let id = (inserted > 0).then_some(next);
                next += i64::from(inserted > 0);
                Ok(id)
            })
            .collect();
    }
    let column = |f: &dyn Fn(&JournalRow<'_>) -> i64| rows.iter().map(f).collect::<Vec<i64>>();
    let (stream, seq, session_stream) = (
        column(&|r| r.stream),
        column(&|r| r.seq),
        column(&|r| r.session_stream),
    );
    let alt_seq: Vec<Option<i64>> = rows.iter().map(|r| r.alt_seq).collect();
    let (received_at, event_time) = (column(&|r| r.received_at), column(&|r| r.event_time));
    let event_type: Vec<&str> = rows.iter().map(|r| r.event_type).collect();
    let subject: Vec<Option<&str>> = rows.iter().map(|r| r.subject).collect();
    let payload: Vec<&[u8]> = rows.iter().map(|r| r.payload).collect();
    let (dedup_stream, dedup_seq) = (column(&|r| r.dedup_stream), column(&|r| r.dedup_seq));
    let mut inserted: HashMap<(i64, i64), i64> = HashMap::with_capacity(rows.len());
    tx.query_each(
        "INSERT INTO journal (stream, seq, session_stream, alt_seq, \
         received_at, event_time, event_type, subject, payload, dedup_stream, dedup_seq) \
         SELECT * FROM unnest(?1::bigint[], ?2::bigint[], ?3::bigint[], ?4::bigint[], \
         ?5::bigint[], ?6::bigint[], ?7::text[], ?8::text[], ?9::bytea[], ?10::bigint[], \
         ?11::bigint[]) ON CONFLICT DO NOTHING RETURNING id, dedup_stream, dedup_seq",
        args![
            PgOnly(&stream),
            PgOnly(&seq),
            PgOnly(&session_stream),
            PgOnly(&alt_seq),
            PgOnly(&received_at),
            PgOnly(&event_time),
            PgOnly(&event_type),
            PgOnly(&subject),
            PgOnly(&payload),
            PgOnly(&dedup_stream),
            PgOnly(&dedup_seq),
        ],
        |row| {
            inserted.insert((row.get(1)?, row.get(2)?), row.get(0)?);
            Ok(())
        },
    )?;
    // A key twice in `rows`: the first is the one inserted.
    Ok(rows
        .iter()
        .map(|r| inserted.remove(&(r.dedup_stream, r.dedup_seq)))
        .collect())
}

impl WriterMsg {
    fn record_count(&self) -> usize {
        match self {
            WriterMsg::Ingest { batch, .. } => batch.payload.record_count(),
            WriterMsg::Rejected { .. } => 0,
        }
    }
}

fn source_name(source: &str) -> &'static str {
    match source {
        "cms" => cdrhub_model::SOURCE_CMS,
        _ => "other",
    }
}
