//! Read queries. Every value reaches SQL as a bound parameter.

use cdrhub_model::{Call, CallEvent, Leg, Timestamp};
use cdrhub_protocols::cms;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::Value;

use crate::{
    CallCursor, CallDetail, CallFilter, CallPage, Gap, GapFilter, SenderStats, StoreError,
};

const CALL_COLUMNS: &str = "id, source, sender, kind, caller, dialed, destination, direction, started_at, \
    answered_at, ended_at, duration_s, talk_s, disposition, cause, media, legs, legs_completed, \
    max_active_legs, flags, details";

/// `LIKE` pattern for a substring, with the wildcards of the input escaped.
fn contains_pattern(q: &str) -> String {
    let mut p = String::with_capacity(q.len() + 2);
    p.push('%');
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

pub(crate) fn list_calls(conn: &Connection, f: &CallFilter) -> Result<CallPage, StoreError> {
    let mut sql = format!("SELECT {CALL_COLUMNS} FROM calls WHERE 1=1");
    let mut args: Vec<SqlValue> = Vec::new();
    let mut arg = |sql: &mut String, clause: &str, v: SqlValue| {
        args.push(v);
        sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
    };
    if let Some(from) = f.from {
        arg(&mut sql, " AND started_at >= ?", from.0.into());
    }
    if let Some(to) = f.to {
        arg(&mut sql, " AND started_at < ?", to.0.into());
    }
    if let Some(source) = &f.source {
        arg(&mut sql, " AND source = ?", source.clone().into());
    }
    if let Some(direction) = f.direction {
        arg(
            &mut sql,
            " AND direction = ?",
            direction.as_str().to_owned().into(),
        );
    }
    if let Some(disposition) = f.disposition {
        arg(
            &mut sql,
            " AND disposition = ?",
            disposition.as_str().to_owned().into(),
        );
    }
    if let Some(q) = f.q.as_deref().filter(|q| !q.is_empty()) {
        arg(
            &mut sql,
            " AND (caller LIKE ? ESCAPE '\\' OR dialed LIKE ?1 ESCAPE '\\' OR destination LIKE ?1 ESCAPE '\\' \
             OR EXISTS (SELECT 1 FROM legs WHERE legs.call_id = calls.id AND (remote_party LIKE ?1 ESCAPE '\\' \
             OR local_address LIKE ?1 ESCAPE '\\' OR display_name LIKE ?1 ESCAPE '\\')))",
            contains_pattern(q).into(),
        );
        // The clause above names its parameter ?1 after the first use; renumber.
        let n = args.len();
        let fixed = sql.replace("?1 ESCAPE", &format!("?{n} ESCAPE"));
        sql = fixed;
    }
    if let Some(c) = &f.cursor {
        args.push(c.started_at.into());
        let t = args.len();
        args.push(c.id.clone().into());
        let i = args.len();
        sql.push_str(&format!(
            " AND (started_at < ?{t} OR (started_at = ?{t} AND id < ?{i}))"
        ));
    }
    let limit = f.limit.clamp(1, 10_000);
    sql.push_str(&format!(
        " ORDER BY started_at DESC, id DESC LIMIT {}",
        limit + 1
    ));

    let mut stmt = conn.prepare_cached(&sql)?;
    let mut calls = stmt
        .query_map(rusqlite::params_from_iter(args), call_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    let next_cursor = if calls.len() > limit {
        calls.truncate(limit);
        calls.last().map(|c| {
            CallCursor {
                started_at: c.started_at.0,
                id: c.id.clone(),
            }
            .encode()
        })
    } else {
        None
    };
    Ok(CallPage { calls, next_cursor })
}

fn json_col(row: &Row, i: usize) -> rusqlite::Result<Value> {
    let s: String = row.get(i)?;
    Ok(serde_json::from_str(&s).unwrap_or(Value::Null))
}

fn ts(v: Option<i64>) -> Option<Timestamp> {
    v.map(Timestamp)
}

fn call_from_row(r: &Row) -> rusqlite::Result<Call> {
    let flags: String = r.get(19)?;
    Ok(Call {
        id: r.get(0)?,
        source: r.get(1)?,
        sender: r.get(2)?,
        kind: r.get(3)?,
        caller: r.get(4)?,
        dialed: r.get(5)?,
        destination: r.get(6)?,
        direction: r.get::<_, Option<String>>(7)?.and_then(|s| s.parse().ok()),
        started_at: Timestamp(r.get(8)?),
        answered_at: ts(r.get(9)?),
        ended_at: ts(r.get(10)?),
        duration_s: r.get(11)?,
        talk_s: r.get(12)?,
        disposition: r.get::<_, Option<String>>(13)?.and_then(|s| s.parse().ok()),
        cause: r.get(14)?,
        media: r.get(15)?,
        legs: r.get(16)?,
        legs_completed: r.get(17)?,
        max_active_legs: r.get(18)?,
        flags: serde_json::from_str(&flags).unwrap_or_default(),
        details: json_col(r, 20)?,
    })
}

fn leg_from_row(r: &Row) -> rusqlite::Result<Leg> {
    let alarms: String = r.get(17)?;
    Ok(Leg {
        id: r.get(0)?,
        call_id: r.get(1)?,
        source_leg_id: r.get(2)?,
        remote_party: r.get(3)?,
        local_address: r.get(4)?,
        display_name: r.get(5)?,
        direction: r.get(6)?,
        leg_type: r.get(7)?,
        sip_call_id: r.get(8)?,
        started_at: ts(r.get(9)?),
        connected_at: ts(r.get(10)?),
        ended_at: ts(r.get(11)?),
        duration_s: r.get(12)?,
        reason: r.get(13)?,
        remote_teardown: r.get(14)?,
        disposition: r.get::<_, Option<String>>(15)?.and_then(|s| s.parse().ok()),
        media: json_col(r, 16)?,
        alarms: serde_json::from_str(&alarms).unwrap_or_default(),
        details: json_col(r, 18)?,
    })
}

pub(crate) fn get_call(conn: &Connection, id: &str) -> Result<Option<CallDetail>, StoreError> {
    let call = conn
        .prepare_cached(&format!("SELECT {CALL_COLUMNS} FROM calls WHERE id = ?1"))?
        .query_row([id], call_from_row)
        .optional()?;
    let Some(call) = call else { return Ok(None) };
    let legs = conn
        .prepare_cached(
            "SELECT id, call_id, source_leg_id, remote_party, local_address, display_name, direction, leg_type, \
             sip_call_id, started_at, connected_at, ended_at, duration_s, reason, remote_teardown, disposition, \
             media, alarms, details FROM legs WHERE call_id = ?1 ORDER BY started_at, id",
        )?
        .query_map([id], leg_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    let mut stmt = conn.prepare_cached(
        "SELECT event_time, received_at, event_type, subject, session, payload, source FROM journal \
         WHERE call_id = ?1 ORDER BY event_time, id",
    )?;
    let events = stmt
        .query_map([id], |r| {
            let session: String = r.get(4)?;
            let payload: Vec<u8> = r.get(5)?;
            let source: String = r.get(6)?;
            let record = if source == cdrhub_model::SOURCE_CMS {
                match cms::decode_record(&session, &payload) {
                    Ok(rec) => serde_json::to_value(&rec.body).unwrap_or(Value::Null),
                    Err(e) => serde_json::json!({ "undecodable": e.to_string() }),
                }
            } else {
                Value::Null
            };
            let subject: Option<String> = r.get(3)?;
            let event_type: String = r.get(2)?;
            Ok(CallEvent {
                time: Timestamp(r.get(0)?),
                received_at: Timestamp(r.get(1)?),
                source_leg_id: subject.filter(|_| event_type.starts_with("callLeg")),
                event_type,
                record,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(CallDetail {
        call,
        leg_list: legs,
        events,
    }))
}

pub(crate) fn senders(conn: &Connection) -> Result<Vec<SenderStats>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT source, sender, first_seen, last_record_at, records, duplicates, rejected_documents, \
         last_rejection, gaps, missing_records FROM senders ORDER BY source, sender",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok(SenderStats {
                source: r.get(0)?,
                sender: r.get(1)?,
                first_seen: ts(r.get(2)?),
                last_record_at: ts(r.get::<_, Option<i64>>(3)?.filter(|t| *t > 0)),
                records_last_minute: 0,
                records_total: r.get::<_, i64>(4)? as u64,
                duplicates: r.get::<_, i64>(5)? as u64,
                rejected_documents: r.get::<_, i64>(6)? as u64,
                last_rejection: r.get(7)?,
                gaps: r.get::<_, i64>(8)? as u64,
                missing_records: r.get::<_, i64>(9)? as u64,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(crate) fn gaps(conn: &Connection, f: &GapFilter) -> Result<Vec<Gap>, StoreError> {
    let limit = if f.limit == 0 {
        1000
    } else {
        f.limit.min(10_000)
    };
    let mut stmt = conn.prepare_cached(
        "SELECT id, source, sender, receiver, session, kind, first_missing, last_missing, missing, filled, \
         detected_at, at_index FROM gaps \
         WHERE (?1 IS NULL OR source = ?1) AND (?2 IS NULL OR sender = ?2) \
         AND (?3 = 0 OR kind = 'reported' OR filled < missing) \
         ORDER BY id DESC LIMIT ?4",
    )?;
    let rows = stmt
        .query_map(
            params![f.source, f.sender, f.open_only as i64, limit as i64],
            |r| {
                let kind: String = r.get(5)?;
                let missing: i64 = r.get(8)?;
                let filled: i64 = r.get(9)?;
                Ok(Gap {
                    id: r.get(0)?,
                    source: r.get(1)?,
                    sender: r.get(2)?,
                    receiver: r.get(3)?,
                    session: r.get(4)?,
                    // Records CMS discarded never arrive: such a gap stays open.
                    open: kind == "reported" || filled < missing,
                    kind,
                    first_missing: r.get(6)?,
                    last_missing: r.get(7)?,
                    missing,
                    filled,
                    detected_at: Timestamp(r.get(10)?),
                    at_index: r.get(11)?,
                })
            },
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Number of calls and of open gaps.
pub(crate) fn counts(conn: &Connection) -> Result<(u64, u64), StoreError> {
    let calls: i64 = conn.query_row("SELECT count(*) FROM calls", [], |r| r.get(0))?;
    let open: i64 = conn.query_row(
        "SELECT count(*) FROM gaps WHERE kind = 'reported' OR filled < missing",
        [],
        |r| r.get(0),
    )?;
    Ok((calls as u64, open as u64))
}
