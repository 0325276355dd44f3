//! The gateway report of seed 001 (issue 5): the gateway list, the gateway
//! log, each gateway's real-time events and its CDR report. Feed gateways
//! and RADIUS gateways are listed and reported together.

#[allow(unused_imports)]
use crate::db::{self, Db, OptionalExt, Result, args};
use cdrhub_correlate::feed::Notation;
use cdrhub_model::Timestamp;
use cdrhub_protocols::feed::{CallEventKind, FeedBody};
use serde_json::Value;

use super::records;
use crate::{
    GatewayEvent, GatewayInfo, GatewayLogEntry, GatewayLogFilter, GatewayLogKind, GatewayLogPage,
    GatewayReport, GatewayReportFilter, GatewayReportQuery, GatewayReportRow, StoreError,
};

/// Feed gateways by name, then the RADIUS gateways that have sent.
pub(crate) fn gateways(conn: Db<'_>) -> Result<Vec<GatewayInfo>, StoreError> {
    let mut list: Vec<GatewayInfo> = conn.query_map(
        "SELECT name, gateway_id, mac, address, public_address, fxs, fxo, isdn, call_ref, \
             clock, clock_offset_s, last_login, last_seen, online FROM gateways ORDER BY name",
        args![],
        |r| {
            Ok(GatewayInfo {
                name: r.get(0)?,
                source: cdrhub_model::SOURCE_FEED.to_owned(),
                gateway_id: r.get(1)?,
                mac: r.get(2)?,
                address: r.get(3)?,
                public_address: r.get(4)?,
                fxs: r.get(5)?,
                fxo: r.get(6)?,
                isdn: r.get(7)?,
                call_ref: r.get(8)?,
                clock: r.get(9)?,
                clock_offset_s: r.get(10)?,
                last_login: Some(Timestamp(r.get(11)?)),
                last_seen: Some(Timestamp(r.get(12)?)),
                state: if r.get::<bool>(13)? {
                    "online"
                } else {
                    "offline"
                }
                .to_owned(),
            })
        },
    )?;
    let radius = conn.query_map(
        "SELECT sender, last_record_at FROM senders WHERE source = ?1 ORDER BY sender",
        args![cdrhub_model::SOURCE_RADIUS],
        |r| {
            Ok(GatewayInfo {
                name: r.get(0)?,
                source: cdrhub_model::SOURCE_RADIUS.to_owned(),
                gateway_id: None,
                mac: None,
                address: r.get(0)?,
                public_address: None,
                fxs: None,
                fxo: None,
                isdn: None,
                call_ref: None,
                clock: None,
                clock_offset_s: None,
                last_login: None,
                last_seen: r.get::<Option<i64>>(1)?.map(Timestamp),
                state: "sending".to_owned(),
            })
        },
    )?;
    list.extend(radius);
    Ok(list)
}

pub(crate) fn log(conn: Db<'_>, f: &GatewayLogFilter) -> Result<GatewayLogPage, StoreError> {
    let limit = if f.limit == 0 { 100 } else { f.limit.min(1000) };
    let text = f.text.as_deref().map(|t| format!("%{t}%"));
    let filter = "(CAST(?1 AS TEXT) IS NULL OR gateway = ?1) AND (CAST(?2 AS TEXT) IS NULL OR kind = ?2) \
                  AND (CAST(?3 AS TEXT) IS NULL OR text LIKE ?3 OR address LIKE ?3) \
                  AND (CAST(?4 AS BIGINT) IS NULL OR at >= ?4) AND (CAST(?5 AS BIGINT) IS NULL OR at < ?5)";
    let args = args![
        f.gateway,
        f.kind.map(GatewayLogKind::as_str),
        text,
        f.from.map(|t| t.0),
        f.to.map(|t| t.0)
    ];
    let total: i64 = conn.query_row(
        &format!("SELECT count(*) FROM gateway_log WHERE {filter}"),
        args,
        |r| r.get(0),
    )?;
    let entries = conn
        .query_map(
            &format!(
                "SELECT at, gateway, kind, address, text FROM gateway_log WHERE {filter} \
             ORDER BY at DESC, id DESC LIMIT {limit} OFFSET {}",
                f.offset
            ),
            args,
            |r| {
                Ok((
                    r.get::<i64>(0)?,
                    r.get::<Option<String>>(1)?,
                    r.get::<String>(2)?,
                    r.get::<String>(3)?,
                    r.get::<String>(4)?,
                ))
            },
        )?
        .into_iter()
        .filter_map(|(at, gateway, kind, address, text)| {
            GatewayLogKind::parse(&kind).map(|kind| GatewayLogEntry {
                at: Timestamp(at),
                gateway,
                kind,
                address,
                text,
            })
        })
        .collect();
    Ok(GatewayLogPage {
        total: total as u64,
        entries,
    })
}

/// The gateway's logins read back at most, newest first, for its events.
const EVENT_LOGINS: i64 = 200;

/// The newest call events, from the journal (each login's lines by the
/// gateway's own numbering, through the journal's dedup index).
pub(crate) fn events(
    conn: Db<'_>,
    gateway: Option<&str>,
    limit: usize,
) -> Result<Vec<GatewayEvent>, StoreError> {
    let limit = limit.clamp(1, 1000);
    let streams: Vec<(i64, String)> = conn.query_map(
        "SELECT id, sender FROM streams WHERE source = ?1 AND (CAST(?2 AS TEXT) IS NULL OR sender = ?2) \
             ORDER BY id DESC LIMIT ?3",
        args![cdrhub_model::SOURCE_FEED, gateway, EVENT_LOGINS],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut out = Vec::new();
    let rows = "SELECT id, received_at, payload FROM journal WHERE dedup_stream = ?1 \
         ORDER BY dedup_seq DESC LIMIT ?2";
    for (stream, sender) in streams {
        let found = conn.query_map(rows, args![stream, limit as i64 + 8], |r| {
            Ok((r.get::<i64>(0)?, r.get::<i64>(1)?, r.get::<Vec<u8>>(2)?))
        })?;
        for (id, received_at, payload) in found {
            let Ok((_, message)) = records::decode_feed_line(&payload) else {
                continue;
            };
            let FeedBody::Call(e) = message.body else {
                continue;
            };
            let (dialed, caller_id, info) = match &e.kind {
                CallEventKind::Dial { digits } | CallEventKind::PstnDial { digits } => {
                    (Some(digits.clone()), None, None)
                }
                CallEventKind::CallIn { caller_id } | CallEventKind::PstnCallIn { caller_id } => {
                    (None, caller_id.clone(), None)
                }
                CallEventKind::Talk { codec } => {
                    (None, None, codec.as_ref().map(|c| c.to_string()))
                }
                CallEventKind::CallInReject { caller_id, reason } => {
                    (None, caller_id.clone(), reason.clone())
                }
                CallEventKind::CallOutFail { reason } => (None, None, reason.clone()),
                _ => (None, None, None),
            };
            out.push(GatewayEvent {
                journal_id: id,
                received_at: Timestamp(received_at),
                gateway_clock: e.at.to_string(),
                gateway: sender.clone(),
                call_ref: e.call_ref,
                port: e.port,
                event: e.kind.name().to_owned(),
                dialed,
                caller_id,
                info,
                pstn_port: e.pstn_port,
            });
        }
        if gateway.is_some() && out.len() >= limit {
            break;
        }
    }
    out.sort_by_key(|e| std::cmp::Reverse(e.journal_id));
    out.truncate(limit);
    Ok(out)
}

/// A call of the report, with what its filters test.
struct Reported {
    row: GatewayReportRow,
    pstn: bool,
}

/// The seed's report: every call of the gateway that began in the period,
/// the filter's share of them, a page of those.
pub(crate) fn report(conn: Db<'_>, q: &GatewayReportQuery) -> Result<GatewayReport, StoreError> {
    let calls: Vec<Reported> = conn.query_map(
        "SELECT id, source, direction, disposition, caller, dialed, destination, talk_s, \
             started_at, ended_at, details FROM calls \
             WHERE started_at >= ?2 AND started_at < ?3 AND sender = ?1 AND source IN (?4, ?5) \
             ORDER BY started_at, id",
        args![
            q.gateway,
            q.from.0,
            q.to.0,
            cdrhub_model::SOURCE_FEED,
            cdrhub_model::SOURCE_RADIUS
        ],
        |r| {
            let details: String = r.get(10)?;
            let call = CallColumns {
                id: r.get(0)?,
                source: r.get(1)?,
                direction: r.get(2)?,
                disposition: r.get(3)?,
                caller: r.get(4)?,
                dialed: r.get(5)?,
                destination: r.get(6)?,
                talk_s: r.get(7)?,
                started_at: Timestamp(r.get(8)?),
                ended_at: r.get::<Option<i64>>(9)?.map(Timestamp),
                details: serde_json::from_str(&details).unwrap_or(Value::Null),
            };
            Ok(if call.source == cdrhub_model::SOURCE_FEED {
                feed_row(call)
            } else {
                radius_row(call)
            })
        },
    )?;
    let total = calls.len() as u64;
    let kept: Vec<GatewayReportRow> = calls
        .into_iter()
        .filter(|c| keeps(q.filter, c))
        .map(|c| c.row)
        .collect();
    let filtered = kept.len() as u64;
    let limit = if q.limit == 0 { 100 } else { q.limit };
    let rows = kept
        .into_iter()
        .skip(q.offset as usize)
        .take(limit)
        .collect();
    Ok(GatewayReport {
        total,
        filtered,
        rows,
    })
}

fn keeps(filter: GatewayReportFilter, c: &Reported) -> bool {
    let n = c.row.notation.as_str();
    match filter {
        GatewayReportFilter::All => true,
        GatewayReportFilter::CallIn => n == Notation::CallIn.as_str(),
        GatewayReportFilter::CallOut => n == Notation::CallOut.as_str(),
        GatewayReportFilter::OnlyPstn => c.pstn,
        GatewayReportFilter::CallOutFailed => n == Notation::CallOutFailed.as_str(),
        GatewayReportFilter::CallInReject => n == Notation::CallInReject.as_str(),
        GatewayReportFilter::Other => n == Notation::HookOnOff.as_str(),
    }
}

struct CallColumns {
    id: String,
    source: String,
    direction: Option<String>,
    disposition: Option<String>,
    caller: Option<String>,
    dialed: Option<String>,
    destination: Option<String>,
    talk_s: Option<i64>,
    started_at: Timestamp,
    ended_at: Option<Timestamp>,
    details: Value,
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn int(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

/// A feed call's row, as the correlator derived it (`FeedCallGroup::details`).
fn feed_row(c: CallColumns) -> Reported {
    let d = &c.details;
    Reported {
        pstn: d.get("pstn").and_then(Value::as_bool).unwrap_or(false),
        row: GatewayReportRow {
            call_id: c.id,
            call_ref: int(d, "call_ref").map(|r| r.to_string()),
            port: int(d, "port").map(|p| p as u32),
            notation: text(d, "notation").unwrap_or_default(),
            dialed: text(d, "dialed"),
            time_s: int(d, "talk_s"),
            begin: c.started_at,
            pstn_dial: text(d, "pstn_dial"),
            pstn_time_s: int(d, "pstn_talk_s"),
            caller_id: text(d, "caller_id"),
            pstn_caller_id: text(d, "pstn_caller_id"),
            end: c.ended_at,
        },
    }
}

/// A RADIUS call's row: its answer leg says where it came from (the
/// telephony side is a call out, as seed 001 names it), its originate leg
/// where it went.
fn radius_row(c: CallColumns) -> Reported {
    let legs = c
        .details
        .get("legs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let leg = |origin: &str| {
        legs.iter()
            .find(|l| l.get("origin").and_then(Value::as_str) == Some(origin))
    };
    let telephony = |l: &Value| {
        l.get("call_type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.eq_ignore_ascii_case("telephony"))
    };
    let answered = c.disposition.as_deref() == Some("answered");
    let ended = c.ended_at.is_some();
    let out = c.direction.as_deref() != Some("in");
    let notation = match (out, answered || !ended, c.disposition.as_deref()) {
        (true, true, _) => Notation::CallOut,
        (true, false, _) => Notation::CallOutFailed,
        // A call from VoIP the gateway's side refused (busy, rejected).
        (false, false, Some("rejected" | "busy")) => Notation::CallInReject,
        (false, _, _) => Notation::CallIn,
    };
    let conf = c.details.get("conf_id").and_then(Value::as_str);
    Reported {
        pstn: legs.iter().any(telephony),
        row: GatewayReportRow {
            call_id: c.id,
            call_ref: conf.map(str::to_owned),
            port: leg("answer")
                .or(legs.first())
                .and_then(|l| l.get("nas_port"))
                .and_then(Value::as_u64)
                .map(|p| p as u32),
            notation: notation.as_str().to_owned(),
            dialed: c.dialed,
            time_s: c.talk_s,
            begin: c.started_at,
            pstn_dial: (!out).then_some(c.destination).flatten(),
            pstn_time_s: None,
            caller_id: (!out).then(|| c.caller.clone()).flatten(),
            pstn_caller_id: out.then_some(c.caller).flatten(),
            end: c.ended_at,
        },
    }
}
