//! Removing old data (issue 3, point 7): calls, legs, their source keys and
//! statistics from
//! `calls.db` in the correlator's thread, records, audit entries and gaps
//! from `cdrhub.db` beside the writer. Every step removes a bounded number
//! of rows in one short transaction, so ingest goes on between them.
//!
//! The calls of a step and their records are in two files, so they cannot
//! go in one transaction: the records' journal ids are kept in `calls.db`
//! (`correlation_state`, keys `prune_pending:ID`) in the transaction that
//! removes the calls, until the records are gone. A run killed in between
//! leaves them there, and the next run removes those records first.

use super::correlation::Correlations;
use super::records;
#[allow(unused_imports)]
use crate::db::{self, Db, OptionalExt, Result, args};

/// Rows removed per step.
pub(crate) const STEP_ROWS: usize = 2_000;

/// The `correlation_state` keys of records whose calls are removed and
/// which may still be in the journal (the value: when the calls went).
const PENDING: &str = "prune_pending:";
/// The first key after every `PENDING` one (`;` follows `:`).
const PENDING_END: &str = "prune_pending;";

/// One step of removing from `calls.db`; each resumes where the last ended.
#[derive(Debug, Clone)]
pub(crate) enum CallsStep {
    /// The records of calls that a run killed midway removed: first.
    Pending,
    /// Calls that started before `before_ms`, after the (started_at, id)
    /// cursor, and their legs.
    Calls {
        before_ms: i64,
        after: Option<(i64, String)>,
    },
    /// Statistics rows of the hours and days before `before_s`.
    Statistics { before_s: i64 },
}

/// What one step removed and where the next one starts (`None`: done).
#[derive(Debug, Default)]
pub(crate) struct StepDone {
    pub removed: u64,
    pub legs: u64,
    /// Journal ids of the records the removed calls came from: they go too,
    /// or a rebuild would bring the calls back.
    pub records: Vec<i64>,
    /// Of `records`, only those received by then (`Pending`: an id freed
    /// since may have been given to a new record).
    pub received_by: Option<i64>,
    pub next: Option<CallsStep>,
}

/// One step; `journal` reads the records of the calls removed, whose
/// source keys go with them.
pub(crate) fn calls_step(
    correlation: &mut Correlations,
    tx: Db<'_>,
    journal: Db<'_>,
    step: CallsStep,
) -> Result<StepDone> {
    match step {
        CallsStep::Pending => {
            let pending: Vec<(String, i64)> = tx.query_map(
                "SELECT key, value FROM correlation_state WHERE key >= ?1 AND key < ?2",
                args![PENDING, PENDING_END],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok(StepDone {
                records: pending
                    .iter()
                    .filter_map(|(key, _)| key.strip_prefix(PENDING)?.parse().ok())
                    .collect(),
                received_by: pending.iter().map(|(_, at)| *at).max(),
                ..StepDone::default()
            })
        }
        CallsStep::Calls { before_ms, after } => {
            // The records of the step before are gone by now.
            clear_pending(tx)?;
            let (after_at, after_id) = after.unwrap_or((i64::MIN, String::new()));
            let found: Vec<(i64, String, String, String)> = tx.query_map(
                "SELECT started_at, id, records, source FROM calls WHERE started_at < ?1 \
                     AND (started_at, id) > (?2, ?3) ORDER BY started_at, id LIMIT ?4",
                args![before_ms, after_at, after_id, STEP_ROWS as i64],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get::<String>(2)?,
                        r.get::<String>(3)?,
                    ))
                },
            )?;
            let mut done = StepDone::default();
            for (_, id, records, source) in &found {
                // Its records belong to the call it merged into.
                if correlation.is_merged_away(id) {
                    continue;
                }
                // Even a call in progress goes: it started before the cutoff.
                let ids = correlation
                    .forget(id)
                    .unwrap_or_else(|| super::records::parse_ids(records));
                for key in records::keys_of_call(journal, source, &ids)? {
                    tx.execute(
                        "DELETE FROM call_keys WHERE key = ?1 AND call_id = ?2",
                        args![key, id],
                    )?;
                }
                done.records.extend(ids);
                done.removed += tx.execute("DELETE FROM calls WHERE id = ?1", args![id])? as u64;
                done.legs += tx.execute("DELETE FROM legs WHERE call_id = ?1", args![id])? as u64;
            }
            let now = cdrhub_model::Timestamp::now().0;
            for record in &done.records {
                tx.execute(
                    "INSERT INTO correlation_state (key, value) VALUES (?1, ?2) \
                     ON CONFLICT (key) DO NOTHING",
                    args![format!("{PENDING}{record}"), now],
                )?;
            }
            done.next = if found.len() < STEP_ROWS {
                None
            } else {
                Some(CallsStep::Calls {
                    before_ms,
                    after: found.last().map(|(at, id, _, _)| (*at, id.clone())),
                })
            };
            Ok(done)
        }
        CallsStep::Statistics { before_s } => {
            // The records of the last step of calls are gone by now.
            clear_pending(tx)?;
            let mut removed = tx.execute(
                "DELETE FROM stats_events WHERE (source, sender, at) IN \
                     (SELECT source, sender, at FROM stats_events WHERE at < ?1 LIMIT ?2)",
                args![before_s, STEP_ROWS as i64],
            )? as u64;
            let more = removed == STEP_ROWS as u64;
            if !more {
                removed +=
                    tx.execute("DELETE FROM stats_hourly WHERE hour < ?1", args![before_s])? as u64;
                removed +=
                    tx.execute("DELETE FROM stats_level WHERE day < ?1", args![before_s])? as u64;
                // Agent states that ended before the cutoff go with the calls.
                removed += tx.execute(
                    "DELETE FROM agent_states WHERE ended_at < ?1",
                    args![before_s * 1000],
                )? as u64;
                // So do SIP registrations that expired before it.
                removed += tx.execute(
                    "DELETE FROM sip_registrations WHERE expires_at < ?1",
                    args![before_s * 1000],
                )? as u64;
            }
            Ok(StepDone {
                removed,
                next: more.then_some(CallsStep::Statistics { before_s }),
                ..StepDone::default()
            })
        }
    }
}

/// Forgets the pending records: they are gone from the journal.
fn clear_pending(tx: Db<'_>) -> Result<()> {
    tx.execute(
        "DELETE FROM correlation_state WHERE key >= ?1 AND key < ?2",
        args![PENDING, PENDING_END],
    )?;
    Ok(())
}

/// Removes up to `STEP_ROWS` journaled records received before `before_ms`,
/// oldest first, none above `correlated` (the correlator has yet to read
/// those). Whether there may be more.
pub(crate) fn journal_step(conn: Db<'_>, before_ms: i64, correlated: i64) -> Result<(u64, bool)> {
    // The journal grows in time order: the oldest rows come first, and the
    // first row not old enough ends the work (no index on received_at).
    let first: Vec<(i64, i64)> = conn.query_map(
        "SELECT id, received_at FROM journal ORDER BY id LIMIT ?1",
        args![STEP_ROWS as i64],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let old: Vec<i64> = first
        .iter()
        .filter(|(id, at)| *at < before_ms && *id <= correlated)
        .map(|(id, _)| *id)
        .collect();
    let removed = remove_records(conn, &old, None)?;
    Ok((removed, old.len() == STEP_ROWS))
}

/// Removes the journaled records with these ids (those of removed calls),
/// if given only those received by `received_by`.
pub(crate) fn remove_records(conn: Db<'_>, ids: &[i64], received_by: Option<i64>) -> Result<u64> {
    let received_by = received_by.unwrap_or(i64::MAX);
    conn.transaction(|tx| {
        keep_high_water(tx)?;
        let mut removed = 0;
        for id in ids {
            removed += tx.execute(
                "DELETE FROM journal WHERE id = ?1 AND received_at <= ?2",
                args![id, received_by],
            )? as u64;
        }
        Ok(removed)
    })
}

/// The `settings` key of the highest journal id ever given.
pub(crate) const JOURNAL_HIGH_WATER: &str = "journal.high_water";

/// Remembers the highest journal id before records are removed: SQLite
/// gives a new row the highest id in the table plus one, so removing the
/// newest records (clearing every call) would give their ids again, and
/// the correlator, which reads the journal past the last id it read, would
/// never see the new records. The writer gives ids above this mark.
fn keep_high_water(tx: Db<'_>) -> Result<()> {
    let top: Option<i64> = tx.query_value("SELECT max(id) FROM journal", args![])?;
    let kept: Option<String> = tx.query_opt(
        "SELECT value FROM settings WHERE key = ?1",
        args![JOURNAL_HIGH_WATER],
        |r| r.get(0),
    )?;
    let kept = kept.and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    let mark = top.unwrap_or(0).max(kept);
    if mark > kept {
        tx.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            args![JOURNAL_HIGH_WATER, mark.to_string()],
        )?;
    }
    Ok(())
}

/// Removes up to `STEP_ROWS` audit entries made before `before_ms`.
/// Whether there may be more.
pub(crate) fn audit_step(conn: Db<'_>, before_ms: i64) -> Result<(u64, bool)> {
    let removed = conn.execute(
        "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < ?1 LIMIT ?2)",
        args![before_ms, STEP_ROWS as i64],
    )? as u64;
    Ok((removed, removed == STEP_ROWS as u64))
}

/// Removes the gaps detected before `before_ms` (a small table).
pub(crate) fn remove_gaps(conn: Db<'_>, before_ms: i64) -> Result<u64> {
    Ok(conn.execute("DELETE FROM gaps WHERE detected_at < ?1", args![before_ms])? as u64)
}

/// Removes the forced ends of calls older than `before_ms` and sessions
/// that have expired.
pub(crate) fn remove_housekeeping(
    conn: Db<'_>,
    calls_before_ms: Option<i64>,
    now_ms: i64,
) -> Result<()> {
    if let Some(before) = calls_before_ms {
        conn.execute("DELETE FROM forced_ends WHERE at < ?1", args![before])?;
    }
    conn.execute("DELETE FROM sessions WHERE expires_at < ?1", args![now_ms])?;
    Ok(())
}
