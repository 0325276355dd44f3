//! The writer thread. It owns the only write connection, takes every waiting
//! submission, applies them in one transaction and answers them after the
//! commit (group commit): one fsync serves many senders.
//!
//! Correlation state of calls in progress is cached here; the writer is the
//! only one changing it, so the cache stays true to the database. Any failed
//! transaction drops the cache, and the next records reload what was committed.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use cdrhub_correlate::cms::{self, CmsCallGroup, CmsLegState, Touched};
use cdrhub_model::{Call, Leg, Timestamp};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, warn};

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

/// Beyond this many cached calls the cache is emptied after a commit.
const MAX_CACHED_GROUPS: usize = 20_000;
const MAX_CACHED_KEYS: usize = 200_000;

pub(crate) fn spawn_writer(
    conn: Connection,
    options: SqliteOptions,
    rates: Arc<Mutex<RecentRates>>,
) -> mpsc::Sender<WriterMsg> {
    let (tx, rx) = mpsc::channel(options.queue_depth);
    std::thread::Builder::new()
        .name("cdrhub-writer".into())
        .spawn(move || Writer::new(options, rates).run(&conn, rx))
        .expect("spawning the writer thread");
    tx
}

/// One call's correlation state as cached by the writer.
struct CachedGroup {
    group: CmsCallGroup,
    sender: String,
    dirty: bool,
    dirty_legs: HashSet<String>,
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
    groups: HashMap<String, CachedGroup>,
    /// Source key (`cms:leg:GUID`) to call id.
    keys: HashMap<String, String>,
    /// Calls merged into another in this process: old id to surviving id.
    aliases: HashMap<String, String>,
    /// Highest recordIndex per (source, receiver, session).
    sequences: HashMap<(String, String), i64>,
    // Per transaction:
    new_keys: Vec<(String, String)>,
    merges: Vec<(String, String)>,
    dirty_sequences: HashSet<(String, String)>,
    new_gaps: Vec<NewGap>,
    filled: Vec<(String, String, i64)>,
    senders: HashMap<(&'static str, String), SenderDelta>,
}

impl Writer {
    fn new(options: SqliteOptions, rates: Arc<Mutex<RecentRates>>) -> Self {
        Writer {
            options,
            rates,
            groups: HashMap::new(),
            keys: HashMap::new(),
            aliases: HashMap::new(),
            sequences: HashMap::new(),
            new_keys: Vec::new(),
            merges: Vec::new(),
            dirty_sequences: HashSet::new(),
            new_gaps: Vec::new(),
            filled: Vec::new(),
            senders: HashMap::new(),
        }
    }

    fn run(mut self, conn: &Connection, mut rx: mpsc::Receiver<WriterMsg>) {
        while let Some(first) = rx.blocking_recv() {
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
            self.commit_group(conn, msgs);
        }
    }

    /// Applies every message in one transaction, then answers each.
    fn commit_group(&mut self, conn: &Connection, msgs: Vec<WriterMsg>) {
        let mut acks = Vec::with_capacity(msgs.len());
        let result = self.apply_all(conn, msgs, &mut acks);
        match result {
            Ok(()) => {
                self.after_commit();
                for (ack, outcome) in acks {
                    let _ = ack.send(Ok(outcome));
                }
            }
            Err(e) => {
                // Nothing of this group was committed: forget what the cache
                // learnt from it and tell every sender to retry.
                self.reset_caches();
                let err = StoreError::Unavailable(e.to_string());
                warn!(error = %e, submissions = acks.len(), "commit failed; senders will retry");
                for (ack, _) in acks {
                    let _ = ack.send(Err(err.clone()));
                }
            }
        }
    }

    fn apply_all(
        &mut self,
        conn: &Connection,
        msgs: Vec<WriterMsg>,
        acks: &mut Vec<(
            oneshot::Sender<Result<IngestOutcome, StoreError>>,
            IngestOutcome,
        )>,
    ) -> rusqlite::Result<()> {
        let result = (|| {
            let tx = conn.unchecked_transaction()?;
            for msg in msgs {
                match msg {
                    WriterMsg::Ingest { batch, ack } => {
                        let outcome = self.ingest(&tx, batch)?;
                        acks.push((ack, outcome));
                    }
                    WriterMsg::Rejected {
                        source,
                        sender,
                        reason,
                    } => {
                        let source = source_name(&source);
                        let d = self.senders.entry((source, sender)).or_default();
                        d.rejected += 1;
                        d.last_rejection = Some(reason);
                    }
                }
            }
            self.flush(&tx)?;
            tx.commit()
        })();
        if result.is_err() {
            self.clear_pending();
        }
        result
    }

    fn ingest(&mut self, tx: &Transaction, batch: IngestBatch) -> rusqlite::Result<IngestOutcome> {
        match batch.payload {
            IngestPayload::Cms(cms) => self.ingest_cms(tx, &batch.sender, batch.received_at, cms),
        }
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
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO journal (source, sender, receiver, session, seq, alt_seq, \
             received_at, event_time, event_type, subject, call_id, payload) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?;
        for record in &cms.batch.records {
            let keys: Vec<String> = cms::record_keys(record)
                .into_iter()
                .map(|k| format!("cms:{k}"))
                .collect();
            let resolved = self.resolve(tx, &keys)?;
            let payload = cms.body.get(record.raw.clone()).unwrap_or_default();
            let inserted = insert.execute(params![
                source,
                sender,
                cms.receiver,
                session,
                record.record_index as i64,
                record.correlator_index.map(|c| c as i64),
                received_at.0,
                record.time.0,
                record.record_type,
                record.subject_id(),
                resolved.as_ref().map(|r| r.target.as_str()),
                payload,
            ])?;
            let delta = self.senders.entry((source, sender.to_owned())).or_default();
            if inserted == 0 {
                outcome.duplicates += 1;
                delta.duplicates += 1;
                continue;
            }
            outcome.stored += 1;
            delta.records += 1;
            delta.last_record_at = Some(delta.last_record_at.unwrap_or(0).max(received_at.0));

            outcome.gaps += self.track_sequence(
                tx,
                source,
                sender,
                &cms.receiver,
                session,
                record.record_index as i64,
                record.preceding_records_missing as i64,
            )?;

            let Some(resolved) = resolved else { continue };
            self.load_group(tx, &resolved.target, sender)?;
            for other in &resolved.merge {
                self.merge_into(tx, other, &resolved.target)?;
            }
            let entry = self
                .groups
                .get_mut(&resolved.target)
                .expect("group loaded above");
            match entry.group.apply(record, call_bridge) {
                Touched::Leg(id) => {
                    entry.dirty_legs.insert(id);
                }
                Touched::Call | Touched::Nothing => {}
            }
            entry.dirty = true;
            for key in keys {
                if self.keys.get(&key) != Some(&resolved.target) {
                    self.keys.insert(key.clone(), resolved.target.clone());
                    self.new_keys.push((key, resolved.target.clone()));
                }
            }
        }
        Ok(outcome)
    }

    /// Which call the keys belong to: an existing one, several to be merged
    /// (the record shows they are one call), or a new one.
    fn resolve(&mut self, tx: &Transaction, keys: &[String]) -> rusqlite::Result<Option<Resolved>> {
        if keys.is_empty() {
            return Ok(None);
        }
        let mut found: Vec<String> = Vec::new();
        for key in keys {
            let id = match self.keys.get(key) {
                Some(id) => Some(id.clone()),
                None => {
                    let id: Option<String> = tx
                        .prepare_cached("SELECT call_id FROM call_keys WHERE key = ?1")?
                        .query_row([key], |r| r.get(0))
                        .optional()?;
                    if let Some(id) = &id {
                        self.keys.insert(key.clone(), id.clone());
                    }
                    id
                }
            };
            if let Some(id) = id {
                let id = self.canonical(&id);
                if !found.contains(&id) {
                    found.push(id);
                }
            }
        }
        Ok(Some(match found.len() {
            0 => Resolved {
                target: uuid::Uuid::now_v7().to_string(),
                merge: Vec::new(),
            },
            _ => {
                let target = found.remove(0);
                Resolved {
                    target,
                    merge: found,
                }
            }
        }))
    }

    fn canonical(&self, id: &str) -> String {
        let mut id = id;
        while let Some(next) = self.aliases.get(id) {
            id = next;
        }
        id.to_owned()
    }

    /// Makes sure the group is in the cache, loading it or starting it empty.
    fn load_group(&mut self, tx: &Transaction, id: &str, sender: &str) -> rusqlite::Result<()> {
        if self.groups.contains_key(id) {
            return Ok(());
        }
        let row: Option<(String, String)> = tx
            .prepare_cached("SELECT state, sender FROM calls WHERE id = ?1")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let (mut group, sender) = match row {
            Some((state, sender)) => (
                serde_json::from_str::<CmsCallGroup>(&state).unwrap_or_else(|e| {
                    error!(call = id, error = %e, "stored call state is unreadable; rebuilding from new records");
                    CmsCallGroup::default()
                }),
                sender,
            ),
            None => (CmsCallGroup::default(), sender.to_owned()),
        };
        let mut stmt = tx.prepare_cached("SELECT state FROM legs WHERE call_id = ?1")?;
        let legs = stmt.query_map([id], |r| r.get::<_, String>(0))?;
        for state in legs {
            match serde_json::from_str::<CmsLegState>(&state?) {
                Ok(leg) => group.legs.push(leg),
                Err(e) => error!(call = id, error = %e, "stored leg state is unreadable"),
            }
        }
        self.groups.insert(
            id.to_owned(),
            CachedGroup {
                group,
                sender,
                dirty: false,
                dirty_legs: HashSet::new(),
            },
        );
        Ok(())
    }

    fn merge_into(&mut self, tx: &Transaction, from: &str, into: &str) -> rusqlite::Result<()> {
        self.load_group(tx, from, "")?;
        let absorbed = self.groups.remove(from).expect("group loaded above");
        let target = self
            .groups
            .get_mut(into)
            .expect("target loaded before merging");
        target.group.absorb(absorbed.group);
        // Every leg now belongs to the surviving call.
        target.dirty_legs = target.group.legs.iter().map(|l| l.id.clone()).collect();
        target.dirty = true;
        self.aliases.insert(from.to_owned(), into.to_owned());
        self.merges.push((from.to_owned(), into.to_owned()));
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn track_sequence(
        &mut self,
        tx: &Transaction,
        source: &'static str,
        sender: &str,
        receiver: &str,
        session: &str,
        index: i64,
        reported_missing: i64,
    ) -> rusqlite::Result<usize> {
        let key = (receiver.to_owned(), session.to_owned());
        let known = match self.sequences.get(&key) {
            Some(v) => Some(*v),
            None => tx
                .prepare_cached(
                    "SELECT max_seq FROM sequences WHERE source = ?1 AND receiver = ?2 AND session = ?3",
                )?
                .query_row(params![source, receiver, session], |r| r.get(0))
                .optional()?,
        };
        let mut gaps = Vec::new();
        match known {
            // CMS numbers each receiver's records from 1.
            None if index > 1 => gaps.push(("session_start", Some(1), Some(index - 1), index - 1)),
            Some(max) if index > max + 1 => {
                gaps.push(("sequence", Some(max + 1), Some(index - 1), index - 1 - max))
            }
            Some(max) if index < max => {
                self.filled
                    .push((receiver.to_owned(), session.to_owned(), index))
            }
            _ => {}
        }
        if reported_missing > 0 {
            gaps.push(("reported", None, None, reported_missing));
        }
        let new_max = known.map_or(index, |m| m.max(index));
        if known != Some(new_max) {
            self.dirty_sequences.insert(key.clone());
        }
        self.sequences.insert(key, new_max);
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
        Ok(n)
    }

    /// Writes what the transaction changed: calls, legs, keys, merges, gaps, counters.
    fn flush(&mut self, tx: &Transaction) -> rusqlite::Result<()> {
        for (from, into) in &self.merges {
            tx.prepare_cached("DELETE FROM calls WHERE id = ?1")?
                .execute([from])?;
            tx.prepare_cached("UPDATE call_keys SET call_id = ?2 WHERE call_id = ?1")?
                .execute([from, into])?;
            tx.prepare_cached("UPDATE journal SET call_id = ?2 WHERE call_id = ?1")?
                .execute([from, into])?;
        }
        for (id, entry) in self.groups.iter_mut().filter(|(_, e)| e.dirty) {
            let (call, legs) = entry.group.summarize(id, &entry.sender);
            write_call(tx, &call, &entry.group)?;
            for leg in legs.iter().filter(|l| entry.dirty_legs.contains(&l.id)) {
                let state = entry.group.legs.iter().find(|s| s.id == leg.id);
                write_leg(tx, leg, state)?;
            }
        }
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO call_keys (key, call_id) VALUES (?1, ?2) \
                 ON CONFLICT(key) DO UPDATE SET call_id = excluded.call_id",
            )?;
            for (key, id) in &self.new_keys {
                stmt.execute([key, &self.canonical(id)])?;
            }
        }
        for key in &self.dirty_sequences {
            tx.prepare_cached(
                "INSERT INTO sequences (source, receiver, session, max_seq) VALUES ('cms', ?1, ?2, ?3) \
                 ON CONFLICT(source, receiver, session) DO UPDATE SET max_seq = excluded.max_seq",
            )?
            .execute(params![key.0, key.1, self.sequences.get(key).copied().unwrap_or(0)])?;
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
        for (receiver, session, index) in &self.filled {
            tx.prepare_cached(
                "UPDATE gaps SET filled = filled + 1 WHERE source = 'cms' AND receiver = ?1 AND session = ?2 \
                 AND kind IN ('sequence', 'session_start') AND ?3 BETWEEN first_missing AND last_missing",
            )?
            .execute(params![receiver, session, index])?;
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

    /// After a commit: record rates, clear per-transaction state, and drop
    /// finished calls from the cache (late records reload them).
    fn after_commit(&mut self) {
        let now_s = Timestamp::now().0.div_euclid(1000);
        if let Ok(mut rates) = self.rates.lock() {
            for ((source, sender), d) in &self.senders {
                if d.records > 0 {
                    rates.add(source, sender, now_s, d.records);
                }
            }
        }
        let mut finished = Vec::new();
        for (id, entry) in self.groups.iter_mut() {
            entry.dirty = false;
            entry.dirty_legs.clear();
            if is_finished(&entry.group) {
                finished.push(id.clone());
            }
        }
        for id in finished {
            self.groups.remove(&id);
        }
        self.clear_pending();
        if self.groups.len() > MAX_CACHED_GROUPS || self.keys.len() > MAX_CACHED_KEYS {
            self.reset_caches();
        }
    }

    fn clear_pending(&mut self) {
        self.new_keys.clear();
        self.merges.clear();
        self.dirty_sequences.clear();
        self.new_gaps.clear();
        self.filled.clear();
        self.senders.clear();
    }

    fn reset_caches(&mut self) {
        self.groups.clear();
        self.keys.clear();
        self.aliases.clear();
        self.sequences.clear();
        self.clear_pending();
    }
}

struct Resolved {
    target: String,
    merge: Vec<String>,
}

fn source_name(source: &str) -> &'static str {
    match source {
        "cms" => cdrhub_model::SOURCE_CMS,
        _ => "other",
    }
}

/// A call whose every part and leg has ended is unlikely to change again.
fn is_finished(group: &CmsCallGroup) -> bool {
    !group.calls.is_empty()
        && group.calls.iter().all(|c| c.end.is_some())
        && group.legs.iter().all(|l| l.end.is_some())
}

fn write_call(tx: &Transaction, call: &Call, group: &CmsCallGroup) -> rusqlite::Result<()> {
    // Legs keep their own state rows; the call row keeps the rest.
    let state = serde_json::json!({
        "calls": group.calls,
        "legs": [],
        "media_sessions": group.media_sessions,
    });
    tx.prepare_cached(
        "INSERT INTO calls (id, source, sender, kind, caller, dialed, destination, direction, started_at, \
         answered_at, ended_at, duration_s, talk_s, disposition, cause, media, legs, legs_completed, \
         max_active_legs, flags, details, state) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22) \
         ON CONFLICT(id) DO UPDATE SET source = excluded.source, sender = excluded.sender, kind = excluded.kind, \
         caller = excluded.caller, dialed = excluded.dialed, destination = excluded.destination, \
         direction = excluded.direction, started_at = excluded.started_at, answered_at = excluded.answered_at, \
         ended_at = excluded.ended_at, duration_s = excluded.duration_s, talk_s = excluded.talk_s, \
         disposition = excluded.disposition, cause = excluded.cause, media = excluded.media, legs = excluded.legs, \
         legs_completed = excluded.legs_completed, max_active_legs = excluded.max_active_legs, \
         flags = excluded.flags, details = excluded.details, state = excluded.state",
    )?
    .execute(params![
        call.id,
        call.source,
        call.sender,
        call.kind,
        call.caller,
        call.dialed,
        call.destination,
        call.direction.map(|d| d.as_str()),
        call.started_at.0,
        call.answered_at.map(|t| t.0),
        call.ended_at.map(|t| t.0),
        call.duration_s,
        call.talk_s,
        call.disposition.map(|d| d.as_str()),
        call.cause,
        call.media,
        call.legs,
        call.legs_completed,
        call.max_active_legs,
        serde_json::to_string(&call.flags).unwrap_or_else(|_| "[]".into()),
        call.details.to_string(),
        state.to_string(),
    ])?;
    Ok(())
}

fn write_leg(tx: &Transaction, leg: &Leg, state: Option<&CmsLegState>) -> rusqlite::Result<()> {
    let state = state
        .and_then(|s| serde_json::to_string(s).ok())
        .unwrap_or_else(|| "{}".into());
    tx.prepare_cached(
        "INSERT INTO legs (id, call_id, source_leg_id, remote_party, local_address, display_name, direction, \
         leg_type, sip_call_id, started_at, connected_at, ended_at, duration_s, reason, remote_teardown, \
         disposition, media, alarms, details, state) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20) \
         ON CONFLICT(id) DO UPDATE SET call_id = excluded.call_id, source_leg_id = excluded.source_leg_id, \
         remote_party = excluded.remote_party, local_address = excluded.local_address, \
         display_name = excluded.display_name, direction = excluded.direction, leg_type = excluded.leg_type, \
         sip_call_id = excluded.sip_call_id, started_at = excluded.started_at, \
         connected_at = excluded.connected_at, ended_at = excluded.ended_at, duration_s = excluded.duration_s, \
         reason = excluded.reason, remote_teardown = excluded.remote_teardown, \
         disposition = excluded.disposition, media = excluded.media, alarms = excluded.alarms, \
         details = excluded.details, state = excluded.state",
    )?
    .execute(params![
        leg.id,
        leg.call_id,
        leg.source_leg_id,
        leg.remote_party,
        leg.local_address,
        leg.display_name,
        leg.direction,
        leg.leg_type,
        leg.sip_call_id,
        leg.started_at.map(|t| t.0),
        leg.connected_at.map(|t| t.0),
        leg.ended_at.map(|t| t.0),
        leg.duration_s,
        leg.reason,
        leg.remote_teardown,
        leg.disposition.map(|d| d.as_str()),
        leg.media.to_string(),
        serde_json::to_string(&leg.alarms).unwrap_or_else(|_| "[]".into()),
        leg.details.to_string(),
        state,
    ])?;
    Ok(())
}
