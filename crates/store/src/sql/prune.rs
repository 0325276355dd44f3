//! Removing old data (issue 3, point 7): calls, legs, their source keys and
//! statistics from
//! `calls.db` in the correlator's thread, records, audit entries and gaps
//! from `cdrhub.db` beside the writer. Every step removes a bounded number
//! of rows in one short transaction, so ingest goes on between them.

use rusqlite::{Connection, Transaction, params};

use super::correlation::Correlations;
use super::records;

/// Rows removed per step.
pub(crate) const STEP_ROWS: usize = 2_000;

/// One step of removing from `calls.db`; each resumes where the last ended.
#[derive(Debug, Clone)]
pub(crate) enum CallsStep {
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
    pub next: Option<CallsStep>,
}

/// One step; `journal` reads the records of the calls removed, whose
/// source keys go with them.
pub(crate) fn calls_step(
    correlation: &mut Correlations,
    tx: &Transaction,
    journal: &Connection,
    step: CallsStep,
) -> rusqlite::Result<StepDone> {
    match step {
        CallsStep::Calls { before_ms, after } => {
            let (after_at, after_id) = after.unwrap_or((i64::MIN, String::new()));
            let found: Vec<(i64, String, String, String)> = tx
                .prepare_cached(
                    "SELECT started_at, id, records, source FROM calls WHERE started_at < ?1 \
                     AND (started_at, id) > (?2, ?3) ORDER BY started_at, id LIMIT ?4",
                )?
                .query_map(
                    params![before_ms, after_at, after_id, STEP_ROWS as i64],
                    |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                        ))
                    },
                )?
                .collect::<Result<_, _>>()?;
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
                let mut forget_key =
                    tx.prepare_cached("DELETE FROM call_keys WHERE key = ?1 AND call_id = ?2")?;
                for key in records::keys_of_call(journal, source, &ids)? {
                    forget_key.execute(params![key, id])?;
                }
                done.records.extend(ids);
                done.removed += tx
                    .prepare_cached("DELETE FROM calls WHERE id = ?1")?
                    .execute([id])? as u64;
                done.legs += tx
                    .prepare_cached("DELETE FROM legs WHERE call_id = ?1")?
                    .execute([id])? as u64;
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
            let mut removed = tx
                .prepare_cached(
                    "DELETE FROM stats_events WHERE (source, sender, at) IN \
                     (SELECT source, sender, at FROM stats_events WHERE at < ?1 LIMIT ?2)",
                )?
                .execute(params![before_s, STEP_ROWS as i64])? as u64;
            let more = removed == STEP_ROWS as u64;
            if !more {
                removed += tx
                    .prepare_cached("DELETE FROM stats_hourly WHERE hour < ?1")?
                    .execute([before_s])? as u64;
                removed += tx
                    .prepare_cached("DELETE FROM stats_level WHERE day < ?1")?
                    .execute([before_s])? as u64;
                // Agent states that ended before the cutoff go with the calls.
                removed += tx
                    .prepare_cached("DELETE FROM agent_states WHERE ended_at < ?1")?
                    .execute([before_s * 1000])? as u64;
                // So do SIP registrations that expired before it.
                removed += tx
                    .prepare_cached("DELETE FROM sip_registrations WHERE expires_at < ?1")?
                    .execute([before_s * 1000])? as u64;
            }
            Ok(StepDone {
                removed,
                next: more.then_some(CallsStep::Statistics { before_s }),
                ..StepDone::default()
            })
        }
    }
}

/// Removes up to `STEP_ROWS` journaled records received before `before_ms`,
/// oldest first, none above `correlated` (the correlator has yet to read
/// those). Whether there may be more.
pub(crate) fn journal_step(
    conn: &Connection,
    before_ms: i64,
    correlated: i64,
) -> rusqlite::Result<(u64, bool)> {
    // The journal grows in time order: the oldest rows come first, and the
    // first row not old enough ends the work (no index on received_at).
    let first: Vec<(i64, i64)> = conn
        .prepare_cached("SELECT id, received_at FROM journal ORDER BY id LIMIT ?1")?
        .query_map([STEP_ROWS as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let old: Vec<i64> = first
        .iter()
        .filter(|(id, at)| *at < before_ms && *id <= correlated)
        .map(|(id, _)| *id)
        .collect();
    let tx = conn.unchecked_transaction()?;
    let mut removed = 0;
    {
        let mut stmt = tx.prepare_cached("DELETE FROM journal WHERE id = ?1")?;
        for id in &old {
            removed += stmt.execute([id])? as u64;
        }
    }
    tx.commit()?;
    Ok((removed, old.len() == STEP_ROWS))
}

/// Removes the journaled records with these ids (those of removed calls).
pub(crate) fn remove_records(conn: &Connection, ids: &[i64]) -> rusqlite::Result<u64> {
    let tx = conn.unchecked_transaction()?;
    let mut removed = 0;
    {
        let mut stmt = tx.prepare_cached("DELETE FROM journal WHERE id = ?1")?;
        for id in ids {
            removed += stmt.execute([id])? as u64;
        }
    }
    tx.commit()?;
    Ok(removed)
}

/// Removes up to `STEP_ROWS` audit entries made before `before_ms`.
/// Whether there may be more.
pub(crate) fn audit_step(conn: &Connection, before_ms: i64) -> rusqlite::Result<(u64, bool)> {
    let removed = conn
        .prepare_cached(
            "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < ?1 LIMIT ?2)",
        )?
        .execute(params![before_ms, STEP_ROWS as i64])? as u64;
    Ok((removed, removed == STEP_ROWS as u64))
}

/// Removes the gaps detected before `before_ms` (a small table).
pub(crate) fn remove_gaps(conn: &Connection, before_ms: i64) -> rusqlite::Result<u64> {
    Ok(conn
        .prepare_cached("DELETE FROM gaps WHERE detected_at < ?1")?
        .execute([before_ms])? as u64)
}

/// Removes the forced ends of calls older than `before_ms` and sessions
/// that have expired.
pub(crate) fn remove_housekeeping(
    conn: &Connection,
    calls_before_ms: Option<i64>,
    now_ms: i64,
) -> rusqlite::Result<()> {
    if let Some(before) = calls_before_ms {
        conn.prepare_cached("DELETE FROM forced_ends WHERE at < ?1")?
            .execute([before])?;
    }
    conn.prepare_cached("DELETE FROM sessions WHERE expires_at < ?1")?
        .execute([now_ms])?;
    Ok(())
}
