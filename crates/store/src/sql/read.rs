//! Read queries. Every value reaches SQL as a bound parameter.

#[allow(unused_imports)]
use crate::db::{self, Db, OptionalExt, Result, args};
use cdrhub_correlate::cms::{self, Detail};
use cdrhub_correlate::cti::CtiCallGroup;
use cdrhub_correlate::radius::RadiusCallGroup;
use cdrhub_model::{Call, CallEvent, Timestamp};
use serde_json::Value;

use super::group::{FromJournal, Group};
use super::records;
use crate::{
    CallCursor, CallDetail, CallFilter, CallPage, CallSearch, CallSort, CallType, Gap, GapFilter,
    SenderStats, StoreError,
};

const CALL_COLUMNS: &str = "id, source, sender, kind, caller, dialed, destination, direction, started_at, \
    answered_at, ended_at, duration_s, talk_s, disposition, cause, media, legs, legs_completed, \
    max_active_legs, flags, details";
/// How many columns `CALL_COLUMNS` names.
const CALL_COLUMN_COUNT: usize = 21;

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

/// A WHERE clause and its parameters, numbered as they are added.
#[derive(Default)]
struct Clauses {
    sql: String,
    args: Vec<db::Value>,
}

impl Clauses {
    /// Adds a value and returns its placeholder (`?N`).
    fn bind(&mut self, v: impl Into<db::Value>) -> String {
        self.args.push(v.into());
        format!("?{}", self.args.len())
    }

    fn and(&mut self, clause: &str) {
        self.sql.push_str(" AND ");
        self.sql.push_str(clause);
    }
}

/// The WHERE conditions of a call filter (cursor aside).
fn filter_clauses(f: &CallFilter) -> Clauses {
    let mut w = Clauses::default();
    if let Some(from) = f.from {
        let p = w.bind(from.0);
        w.and(&format!("started_at >= {p}"));
    }
    if let Some(to) = f.to {
        let p = w.bind(to.0);
        w.and(&format!("started_at < {p}"));
    }
    if let Some(source) = &f.source {
        let p = w.bind(source.clone());
        w.and(&format!("source = {p}"));
    }
    if let Some(sender) = &f.sender {
        let p = w.bind(sender.clone());
        w.and(&format!("sender = {p}"));
    }
    if let Some(kind) = &f.kind {
        let p = w.bind(kind.clone());
        w.and(&format!("kind = {p}"));
    }
    if let Some(direction) = f.direction {
        let p = w.bind(direction.as_str().to_owned());
        w.and(&format!("direction = {p}"));
    }
    if let Some(disposition) = f.disposition {
        let p = w.bind(disposition.as_str().to_owned());
        w.and(&format!("disposition = {p}"));
    }
    match f.answered {
        Some(true) => w.and("answered_at IS NOT NULL"),
        Some(false) => w.and("answered_at IS NULL AND ended_at IS NOT NULL"),
        None => {}
    }
    if let Some(t) = f.call_type {
        w.and(match t {
            CallType::CallIn => "direction = 'in'",
            CallType::CallOut => "direction = 'out'",
            CallType::CallOutFailed => {
                "direction = 'out' AND answered_at IS NULL AND ended_at IS NOT NULL"
            }
            CallType::CallInReject => "direction = 'in' AND disposition IN ('rejected', 'busy')",
            CallType::OnlyPstn => "kind = 'gateway'",
            CallType::Other => "(direction IS NULL OR direction NOT IN ('in', 'out'))",
        });
    }
    if let Some(q) = f.q.as_deref().filter(|q| !q.is_empty()) {
        let p = w.bind(contains_pattern(q));
        w.and(&format!("parties LIKE {p} ESCAPE '\\'"));
    }
    w
}

/// A page of calls in the order the console asked for, with counts.
pub(crate) fn search_calls(
    conn: Db<'_>,
    f: &CallFilter,
    sort: CallSort,
    descending: bool,
    offset: u64,
) -> Result<CallSearch, StoreError> {
    let w = filter_clauses(f);
    // Every call counts as one attempt in the hourly rollups: a few thousand
    // rows to add instead of millions of calls to count.
    let total: i64 = conn.query_row(
        "SELECT coalesce(sum(attempts), 0) FROM stats_hourly",
        args![],
        |r| r.get(0),
    )?;
    // The column comes from a fixed list, never from the request.
    let order = if descending { "DESC" } else { "ASC" };
    let limit = f.limit.clamp(1, 10_000);
    let offset = offset.min(i64::MAX as u64);
    let sql = format!(
        "SELECT {CALL_COLUMNS} FROM calls WHERE 1=1{} ORDER BY {} {order} NULLS LAST, id {order} LIMIT {limit} OFFSET {offset}",
        w.sql,
        sort.as_str(),
    );
    let calls = conn.query_map(&sql, &db::refs(&w.args), call_from_row)?;
    // A short page that starts within the matches is their end: no second
    // pass over them to count (a party search that finds a few calls).
    let matching = if w.sql.is_empty() {
        total.max(0) as u64
    } else if calls.len() < limit && (offset == 0 || !calls.is_empty()) {
        offset + calls.len() as u64
    } else {
        let n: i64 = conn.query_row(
            &format!("SELECT count(*) FROM calls WHERE 1=1{}", w.sql),
            &db::refs(&w.args),
            |r| r.get(0),
        )?;
        n.max(0) as u64
    };
    Ok(CallSearch {
        calls,
        matching,
        total: total.max(0) as u64,
    })
}

/// How far back the real-time view looks for a sender's records.
const RECENT_WINDOW: i64 = 10_000;

/// The newest records, of one sender or all, among the last
/// `RECENT_WINDOW` journaled.
pub(crate) fn recent_records(
    conn: Db<'_>,
    sender: Option<&str>,
    limit: usize,
) -> Result<Vec<crate::RecentRecord>, StoreError> {
    let stmt = "SELECT j.id, j.received_at, s.source, s.sender, j.payload FROM journal j \
         JOIN streams s ON s.id = j.stream \
         WHERE j.id > (SELECT coalesce(max(id), 0) FROM journal) - ?1 \
         AND (CAST(?2 AS TEXT) IS NULL OR s.sender = ?2) ORDER BY j.id DESC LIMIT ?3";
    let rows = conn.query_map(
        stmt,
        args![RECENT_WINDOW, sender, limit.min(1000) as i64],
        |r| {
            Ok((
                r.get::<i64>(0)?,
                r.get::<i64>(1)?,
                r.get::<String>(2)?,
                r.get::<String>(3)?,
                r.get::<Vec<u8>>(4)?,
            ))
        },
    )?;
    let mut out = Vec::new();
    for row in rows {
        let (journal_id, received_at, source, sender, payload) = row;
        // A record that no longer decodes is left out here (the journal keeps it).
        let record = match source.as_str() {
            cdrhub_model::SOURCE_CTI => records::decode_cti(&payload, Timestamp(received_at))
                .ok()
                .map(|e| crate::RecentBody::Cti(e.message)),
            cdrhub_model::SOURCE_FEED => records::decode_feed_line(&payload)
                .ok()
                .map(|(_, m)| crate::RecentBody::Feed(m)),
            _ => cdrhub_protocols::cms::decode_record("", &payload)
                .ok()
                .map(|r| crate::RecentBody::Cms(Box::new(r))),
        };
        if let Some(record) = record {
            out.push(crate::RecentRecord {
                journal_id,
                received_at: Timestamp(received_at),
                source,
                sender,
                record,
            });
        }
    }
    Ok(out)
}

/// Calls that have not ended, newest first.
pub(crate) fn active_calls(conn: Db<'_>, limit: usize) -> Result<Vec<Call>, StoreError> {
    let sql = format!(
        "SELECT {CALL_COLUMNS} FROM calls WHERE ended_at IS NULL ORDER BY started_at DESC LIMIT ?1"
    );
    Ok(conn.query_map(&sql, args![limit.min(10_000) as i64], call_from_row)?)
}

pub(crate) fn list_calls(conn: Db<'_>, f: &CallFilter) -> Result<CallPage, StoreError> {
    let mut w = filter_clauses(f);
    if let Some(c) = &f.cursor {
        let t = w.bind(c.started_at);
        let i = w.bind(c.id.clone());
        w.and(&format!(
            "(started_at < {t} OR (started_at = {t} AND id < {i}))"
        ));
    }
    let limit = f.limit.clamp(1, 10_000);
    let sql = format!(
        "SELECT {CALL_COLUMNS} FROM calls WHERE 1=1{} ORDER BY started_at DESC, id DESC LIMIT {}",
        w.sql,
        limit + 1
    );
    let stmt = &sql;
    let mut calls = conn.query_map(stmt, &db::refs(&w.args), call_from_row)?;
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

/// Calls that ended in [`from`, `to`), of `source` if given, in the order
/// of their end, after (`ended_at`, `id`) `after`, at most `limit`: what a
/// scheduled export or a webhook sends.
pub(crate) fn ended_calls(
    conn: Db<'_>,
    q: &crate::EndedCallsQuery,
) -> Result<Vec<(Timestamp, Call)>, StoreError> {
    let (after_at, after_id) = match &q.after {
        Some((t, id)) => (t.0, id.as_str()),
        None => (i64::MIN, ""),
    };
    let by = match q.by {
        crate::EndedBy::EndedAt => "ended_at",
        crate::EndedBy::WrittenAt => "written_at",
    };
    let sql = format!(
        "SELECT {CALL_COLUMNS}, {by} FROM calls \
         WHERE ended_at IS NOT NULL AND {by} >= ?1 AND {by} < ?2 AND (CAST(?3 AS TEXT) IS NULL OR source = ?3) \
         AND ({by}, id) > (?4, ?5) ORDER BY {by}, id LIMIT ?6"
    );
    Ok(conn.query_map(
        &sql,
        args![
            q.from.0,
            q.to.0,
            q.source,
            after_at,
            after_id,
            q.limit as i64
        ],
        |r| Ok((Timestamp(r.get(CALL_COLUMN_COUNT)?), call_from_row(r)?)),
    )?)
}

fn ts(v: Option<i64>) -> Option<Timestamp> {
    v.map(Timestamp)
}

fn call_from_row(r: &db::Row<'_>) -> Result<Call> {
    let flags: String = r.get(19)?;
    let details: String = r.get(20)?;
    Ok(Call {
        id: r.get(0)?,
        source: r.get(1)?,
        sender: r.get(2)?,
        kind: r.get(3)?,
        caller: r.get(4)?,
        dialed: r.get(5)?,
        destination: r.get(6)?,
        direction: r.get::<Option<String>>(7)?.and_then(|s| s.parse().ok()),
        started_at: Timestamp(r.get(8)?),
        answered_at: ts(r.get(9)?),
        ended_at: ts(r.get(10)?),
        duration_s: r.get(11)?,
        talk_s: r.get(12)?,
        disposition: r.get::<Option<String>>(13)?.and_then(|s| s.parse().ok()),
        cause: r.get(14)?,
        media: r.get(15)?,
        legs: r.get(16)?,
        legs_completed: r.get(17)?,
        max_active_legs: r.get(18)?,
        flags: serde_json::from_str(&flags).unwrap_or_default(),
        details: serde_json::from_str(&details).unwrap_or(Value::Null),
    })
}

pub(crate) fn get_call(conn: Db<'_>, id: &str) -> Result<Option<CallDetail>, StoreError> {
    type Row = (String, String, String, String, Option<i64>);
    let row: Option<Row> = conn
        .query_row(
            "SELECT source, sender, records, flags, ended_at FROM calls WHERE id = ?1",
            args![id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?;
    let Some((source, sender, ids, flags, ended_at)) = row else {
        return Ok(None);
    };
    let ids = records::parse_ids(&ids);
    match source.as_str() {
        cdrhub_model::SOURCE_CTI => return cti_call(conn, id, &sender, &ids, &flags).map(Some),
        cdrhub_model::SOURCE_RADIUS => {
            return radius_call(conn, id, &sender, &ids, &flags, ended_at).map(Some);
        }
        cdrhub_model::SOURCE_FEED => return feed_call(conn, id, &sender, &ids, &flags).map(Some),
        cdrhub_model::SOURCE_SIP => return sip_call(conn, id, &sender, &ids, &flags).map(Some),
        cdrhub_model::SOURCE_EVENTS | cdrhub_model::SOURCE_CSV => {
            return event_call(conn, id, &sender, &ids, &flags).map(Some);
        }
        _ => {}
    }
    // The full call is rebuilt from its records, as the writer built its columns.
    let journaled = records::load(conn, &ids)?;
    let group = records::rebuild(conn, &journaled)?;
    let (mut call, legs) = group.summarize(id, &sender, Detail::Full);
    call.flags = serde_json::from_str(&flags).unwrap_or_default();

    // The timeline in event time, then in the order the Call Bridge made the
    // records (correlatorIndex), then in arrival order.
    let mut events: Vec<_> = journaled
        .iter()
        .map(|j| {
            let r = &j.record;
            let order = (r.time, r.correlator_index, j.id);
            let event = CallEvent {
                time: r.time,
                received_at: j.received_at,
                event_type: r.record_type.clone(),
                source_leg_id: r
                    .subject_id()
                    .filter(|_| r.record_type.starts_with("callLeg"))
                    .map(str::to_owned),
                record: serde_json::to_value(&r.body).unwrap_or(Value::Null),
            };
            (order, event)
        })
        .collect();
    if let Some(forced) = records::forced_end(conn, &group)? {
        events.push((
            (forced.at, None, i64::MAX),
            CallEvent {
                time: forced.at,
                received_at: forced.at,
                event_type: cms::FORCED_END_REASON.to_owned(),
                source_leg_id: None,
                record: serde_json::json!({ "by": forced.actor }),
            },
        ));
    }
    events.sort_by_key(|(order, _)| *order);
    Ok(Some(CallDetail {
        call,
        leg_list: legs,
        events: events.into_iter().map(|(_, e)| e).collect(),
    }))
}

/// The source keys of a call in progress: `None` without such a call,
/// `Some(None)` when it has ended.
pub(crate) fn keys_of_open_call(
    conn: Db<'_>,
    id: &str,
) -> Result<Option<Option<Vec<i64>>>, StoreError> {
    let row: Option<(String, String, Option<i64>)> = conn
        .query_row(
            "SELECT source, records, ended_at FROM calls WHERE id = ?1",
            args![id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    Ok(match row {
        None => None,
        Some((_, _, Some(_))) => Some(None),
        Some((source, ids, None)) => Some(Some(records::keys_of_call(
            conn,
            &source,
            &records::parse_ids(&ids),
        )?)),
    })
}

/// A contact-centre call, rebuilt from its CTI events.
fn cti_call(
    conn: Db<'_>,
    id: &str,
    sender: &str,
    ids: &[i64],
    flags: &str,
) -> Result<CallDetail, StoreError> {
    journaled_call::<CtiCallGroup>(conn, id, sender, ids, flags, |e| CallEvent {
        time: e.received_at,
        received_at: e.received_at,
        event_type: cdrhub_protocols::cti::message_type_name(e.message.message_type).into_owned(),
        source_leg_id: None,
        record: serde_json::to_value(&e.message.body).unwrap_or(Value::Null),
    })
}

/// A gateway call, rebuilt from its RADIUS accounting records.
fn radius_call(
    conn: Db<'_>,
    id: &str,
    sender: &str,
    ids: &[i64],
    flags: &str,
    ended_at: Option<i64>,
) -> Result<CallDetail, StoreError> {
    let events = records::load_events::<RadiusCallGroup>(conn, ids)?;
    let mut group: RadiusCallGroup = records::rebuild_events(conn, &events)?;
    // The gateway's Accounting-On/Off closed it: when, the row says.
    if flags.contains(cdrhub_correlate::radius::NAS_RESTART_FLAG) {
        group.nas_restart = ended_at.map(Timestamp);
    }
    let timeline = events
        .iter()
        .map(|(_, _, e)| CallEvent {
            time: e.at(),
            received_at: e.received_at,
            event_type: records::radius_event_type(e.accounting.status_type.unwrap_or(0))
                .to_owned(),
            source_leg_id: e.accounting.session_id.clone(),
            record: radius_record_json(&e.accounting),
        })
        .collect();
    group_detail(conn, id, sender, flags, &group, timeline)
}

/// A port-gateway call, rebuilt from its feed events. Its timeline is the
/// seed's real-time events: the server's time, the gateway's beside it.
fn feed_call(
    conn: Db<'_>,
    id: &str,
    sender: &str,
    ids: &[i64],
    flags: &str,
) -> Result<CallDetail, StoreError> {
    use cdrhub_correlate::feed::FeedCallGroup;
    let events = records::load_events::<FeedCallGroup>(conn, ids)?;
    let group: FeedCallGroup = records::rebuild_events(conn, &events)?;
    let timeline = group
        .steps
        .iter()
        .map(|s| {
            let e = &s.event;
            CallEvent {
                time: s.received_at,
                received_at: s.received_at,
                event_type: e.kind.name().to_owned(),
                source_leg_id: e.port.map(|p| format!("port {p}")),
                record: serde_json::json!({
                    "seq": s.seq,
                    "ref": e.call_ref,
                    "port": e.port,
                    "pport": e.pstn_port,
                    "gateway_clock": e.at.to_string(),
                    "event": feed_event_fields(&e.kind),
                }),
            }
        })
        .collect();
    group_detail(conn, id, sender, flags, &group, timeline)
}

/// A SIP call, rebuilt from the HEP packets of its dialog; its timeline is
/// its messages in capture order.
fn sip_call(
    conn: Db<'_>,
    id: &str,
    sender: &str,
    ids: &[i64],
    flags: &str,
) -> Result<CallDetail, StoreError> {
    use cdrhub_correlate::sip::{SignalKind, SipCallGroup};
    journaled_call::<SipCallGroup>(conn, id, sender, ids, flags, |e| {
        let s = &e.signal;
        CallEvent {
            time: s.at,
            received_at: e.received_at,
            event_type: match &s.kind {
                SignalKind::Request(m) => m.clone(),
                SignalKind::Response(code) => format!("{code} ({})", s.cseq_method),
            },
            source_leg_id: None,
            record: serde_json::json!({
                "src": s.src.to_string(),
                "dst": s.dst.to_string(),
                "cseq": format!("{} {}", s.cseq, s.cseq_method),
                "from": s.from_user,
                "to": s.to_user,
                "request_user": s.request_user,
                "q850_cause": s.q850_cause,
            }),
        }
    })
}

/// A call of the event API or of an import, rebuilt from its events, with
/// them in time order.
fn event_call(
    conn: Db<'_>,
    id: &str,
    sender: &str,
    ids: &[i64],
    flags: &str,
) -> Result<CallDetail, StoreError> {
    use cdrhub_correlate::events::EventCallGroup;
    journaled_call::<EventCallGroup>(conn, id, sender, ids, flags, |r| CallEvent {
        time: r.event.at,
        received_at: r.received_at,
        event_type: r.event.kind.as_str().to_owned(),
        source_leg_id: r.event.leg.clone(),
        record: serde_json::to_value(&r.event).unwrap_or(Value::Null),
    })
}

/// A call of a source whose journaled records are its timeline, one event
/// each (`event` says what each shows).
fn journaled_call<G: FromJournal>(
    conn: Db<'_>,
    id: &str,
    sender: &str,
    ids: &[i64],
    flags: &str,
    event: impl Fn(&G::Record) -> CallEvent,
) -> Result<CallDetail, StoreError> {
    let records = records::load_events::<G>(conn, ids)?;
    let group: G = records::rebuild_events(conn, &records)?;
    let timeline = records.iter().map(|(_, _, r)| event(r)).collect();
    group_detail(conn, id, sender, flags, &group, timeline)
}

/// The detail of a call rebuilt into `group`, with `timeline`.
fn group_detail<G: Group>(
    conn: Db<'_>,
    id: &str,
    sender: &str,
    flags: &str,
    group: &G,
    timeline: Vec<CallEvent>,
) -> Result<CallDetail, StoreError> {
    let (call, legs) = group.summarize(id, sender);
    rebuilt_detail(
        conn,
        call,
        legs,
        group.details(),
        &group.keys(),
        flags,
        timeline,
    )
}

/// The fields of a feed event of its own (digits, caller id, codec, reason).
fn feed_event_fields(kind: &cdrhub_protocols::feed::CallEventKind) -> Value {
    use cdrhub_protocols::feed::CallEventKind as K;
    match kind {
        K::Dial { digits } | K::PstnDial { digits } => serde_json::json!({ "digits": digits }),
        K::CallIn { caller_id } | K::PstnCallIn { caller_id } => {
            serde_json::json!({ "cid": caller_id })
        }
        K::Talk { codec } => serde_json::json!({ "codec": codec.as_ref().map(|c| c.to_string()) }),
        K::CallInReject { caller_id, reason } => {
            serde_json::json!({ "cid": caller_id, "reason": reason })
        }
        K::CallOutFail { reason } => serde_json::json!({ "reason": reason }),
        _ => serde_json::json!({}),
    }
}

/// What the timeline shows of an Accounting-Request.
fn radius_record_json(a: &cdrhub_protocols::radius::Accounting) -> Value {
    let c = &a.cisco;
    serde_json::json!({
        "session_id": a.session_id, "calling_station_id": a.calling_station_id,
        "called_station_id": a.called_station_id, "session_time": a.session_time,
        "delay_time": a.delay_time, "terminate_cause": a.terminate_cause,
        "nas_ip": a.nas_ip.map(|i| i.to_string()), "nas_port": a.nas_port,
        "h323_conf_id": c.conf_id, "h323_call_origin": c.call_origin, "h323_call_type": c.call_type,
        "h323_setup_time": c.setup_time, "h323_connect_time": c.connect_time,
        "h323_disconnect_time": c.disconnect_time, "h323_disconnect_cause": c.disconnect_cause,
        "h323_remote_address": c.remote_address, "h323_voice_quality": c.voice_quality,
        "call_id": c.call_id, "h323_incoming_conf_id": c.incoming_conf_id,
    })
}

/// A call rebuilt from its records, with its flags as written, its source
/// details, and its timeline with any end forced on it.
fn rebuilt_detail(
    conn: Db<'_>,
    mut call: cdrhub_model::Call,
    legs: Vec<cdrhub_model::Leg>,
    details: Value,
    keys: &[i64],
    flags: &str,
    mut timeline: Vec<CallEvent>,
) -> Result<CallDetail, StoreError> {
    call.details = details;
    call.flags = serde_json::from_str(flags).unwrap_or_default();
    if let Some(forced) = records::forced_end_of_keys(conn, keys)? {
        timeline.push(CallEvent {
            time: forced.at,
            received_at: forced.at,
            event_type: cms::FORCED_END_REASON.to_owned(),
            source_leg_id: None,
            record: serde_json::json!({ "by": forced.actor }),
        });
    }
    timeline.sort_by_key(|e| e.time);
    Ok(CallDetail {
        call,
        leg_list: legs,
        events: timeline,
    })
}

pub(crate) fn senders(conn: Db<'_>) -> Result<Vec<SenderStats>, StoreError> {
    let stmt = "SELECT source, sender, first_seen, last_record_at, records, duplicates, rejected_documents, \
         last_rejection, gaps, missing_records FROM senders ORDER BY source, sender";
    let rows = conn.query_map(stmt, args![], |r| {
        Ok(SenderStats {
            source: r.get(0)?,
            sender: r.get(1)?,
            first_seen: ts(r.get(2)?),
            last_record_at: ts(r.get::<Option<i64>>(3)?.filter(|t| *t > 0)),
            records_last_minute: 0,
            records_total: r.get::<i64>(4)? as u64,
            duplicates: r.get::<i64>(5)? as u64,
            rejected_documents: r.get::<i64>(6)? as u64,
            last_rejection: r.get(7)?,
            gaps: r.get::<i64>(8)? as u64,
            missing_records: r.get::<i64>(9)? as u64,
        })
    })?;
    Ok(rows)
}

pub(crate) fn gaps(conn: Db<'_>, f: &GapFilter) -> Result<Vec<Gap>, StoreError> {
    let limit = if f.limit == 0 {
        1000
    } else {
        f.limit.min(10_000)
    };
    let stmt = "SELECT id, source, sender, receiver, session, kind, first_missing, last_missing, missing, filled, \
         detected_at, at_index FROM gaps \
         WHERE (CAST(?1 AS TEXT) IS NULL OR source = ?1) AND (CAST(?2 AS TEXT) IS NULL OR sender = ?2) \
         AND (?3 = 0 OR kind = 'reported' OR filled < missing) \
         ORDER BY id DESC LIMIT ?4";
    let rows = conn.query_map(
        stmt,
        args![f.source, f.sender, f.open_only as i64, limit as i64],
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
    )?;
    Ok(rows)
}

/// Number of calls and of open gaps.
pub(crate) fn counts(conn: Db<'_>) -> Result<(u64, u64), StoreError> {
    let calls: i64 = conn.query_row("SELECT count(*) FROM calls", args![], |r| r.get(0))?;
    let open: i64 = conn.query_row(
        "SELECT count(*) FROM gaps WHERE kind = 'reported' OR filled < missing",
        args![],
        |r| r.get(0),
    )?;
    Ok((calls as u64, open as u64))
}
