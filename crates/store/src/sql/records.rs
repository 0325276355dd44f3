//! Reading journaled records back: the calls and legs tables hold only what
//! is searched and listed; a call's full picture is rebuilt from its records.

#[allow(unused_imports)]
use crate::db::{self, Db, OptionalExt, Result, args};
use cdrhub_correlate::cms::CmsCallGroup;
use cdrhub_correlate::cti::{CtiCallGroup, CtiEvent};
use cdrhub_correlate::radius::{RadiusCallGroup, RadiusEvent};

use super::group::{FromJournal, Group};
use cdrhub_model::Timestamp;
use cdrhub_protocols::cms::{self, CmsRecord};
use tracing::warn;

/// A journaled record, decoded, with what its stream says of it.
pub(crate) struct JournalRecord {
    pub id: i64,
    pub received_at: Timestamp,
    pub call_bridge: Option<String>,
    pub record: CmsRecord,
}

/// A journal row as stored, with what its stream says of it.
struct StoredRow {
    id: i64,
    received_at: Timestamp,
    sender: String,
    call_bridge: Option<String>,
    payload: Vec<u8>,
}

/// The journal rows with these ids, in journal order, each decoded by
/// `decode`; a row that no longer decodes is left out, with a warning.
fn load_rows<T, E: std::fmt::Display>(
    conn: Db<'_>,
    ids: &[i64],
    mut decode: impl FnMut(StoredRow) -> Result<T, E>,
) -> Result<Vec<(i64, T)>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let placeholders = vec!["?"; chunk.len()].join(",");
        let args: Vec<&dyn db::Arg> = chunk.iter().map(|id| id as &dyn db::Arg).collect();
        let rows = conn.query_map(
            &format!(
                "SELECT j.id, j.received_at, s.sender, s.call_bridge, j.payload FROM journal j \
                 JOIN streams s ON s.id = j.stream WHERE j.id IN ({placeholders})"
            ),
            &args,
            |r| {
                Ok(StoredRow {
                    id: r.get(0)?,
                    received_at: Timestamp(r.get(1)?),
                    sender: r.get(2)?,
                    call_bridge: r.get(3)?,
                    payload: r.get(4)?,
                })
            },
        )?;
        for row in rows {
            let id = row.id;
            match decode(row) {
                Ok(decoded) => out.push((id, decoded)),
                Err(e) => {
                    warn!(journal_id = id, error = %e, "journaled record no longer decodes; skipped")
                }
            }
        }
    }
    out.sort_by_key(|r| r.0);
    Ok(out)
}

/// The CMS records with these journal ids, in journal order.
pub(crate) fn load(conn: Db<'_>, ids: &[i64]) -> Result<Vec<JournalRecord>> {
    Ok(load_rows(conn, ids, |row| {
        cms::decode_record("", &row.payload).map(|record| JournalRecord {
            id: row.id,
            received_at: row.received_at,
            call_bridge: row.call_bridge,
            record,
        })
    })?
    .into_iter()
    .map(|(_, r)| r)
    .collect())
}

/// A call's correlation state, rebuilt by applying its records again, with
/// the end an operator forced on it, if any. `conn` reads `cdrhub.db`.
pub(crate) fn rebuild(conn: Db<'_>, records: &[JournalRecord]) -> Result<CmsCallGroup> {
    let mut group = CmsCallGroup::default();
    for r in records {
        group.apply(&r.record, r.call_bridge.as_deref(), r.id);
    }
    group.forced_end = forced_end(conn, &group)?.map(|f| f.at);
    Ok(group)
}

/// An operator's end of a call whose end records never came.
pub(crate) struct ForcedEnd {
    pub at: Timestamp,
    pub actor: String,
}

/// The earliest end forced on any of the call's source ids.
pub(crate) fn forced_end(conn: Db<'_>, group: &CmsCallGroup) -> Result<Option<ForcedEnd>> {
    forced_end_of_keys(conn, &group.keys().collect::<Vec<_>>())
}

/// The earliest end forced on any of these source keys.
pub(crate) fn forced_end_of_keys(conn: Db<'_>, keys: &[i64]) -> Result<Option<ForcedEnd>> {
    let mut found: Option<ForcedEnd> = None;
    for &key in keys {
        if let Some((at, actor)) = conn.query_opt(
            "SELECT at, actor FROM forced_ends WHERE key = ?1",
            args![key],
            |r| Ok((r.get::<i64>(0)?, r.get::<String>(1)?)),
        )? && found.as_ref().is_none_or(|f| at < f.at.0)
        {
            found = Some(ForcedEnd {
                at: Timestamp(at),
                actor,
            });
        }
    }
    Ok(found)
}

/// Keeps an operator's end of the call named by `keys` (the first end forced
/// on a key stays). `conn` writes `cdrhub.db`.
pub(crate) fn record_forced_end(
    conn: Db<'_>,
    keys: &[i64],
    at: Timestamp,
    actor: &str,
) -> Result<()> {
    conn.transaction(|tx| {
        for key in keys {
            tx.execute(
                "INSERT INTO forced_ends (key, at, actor) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                args![key, at.0, actor],
            )?;
        }
        Ok(())
    })
}

/// Every forced end, by key: the correlator applies them to calls it
/// rebuilds from the journal.
pub(crate) fn forced_ends(conn: Db<'_>) -> Result<Vec<(i64, Timestamp)>> {
    conn.query_map("SELECT key, at FROM forced_ends", args![], |r| {
        Ok((r.get(0)?, Timestamp(r.get(1)?)))
    })
}

/// The journal ids a call row lists.
pub(crate) fn parse_ids(json: &str) -> Vec<i64> {
    serde_json::from_str(json).unwrap_or_default()
}

/// Every journal id of a call's records.
pub(crate) fn group_ids(group: &CmsCallGroup) -> Vec<i64> {
    let mut ids: Vec<i64> = group
        .calls
        .iter()
        .flat_map(|c| &c.records)
        .chain(group.media_sessions.iter().flat_map(|m| &m.records))
        .chain(group.legs.iter().flat_map(|l| &l.records))
        .copied()
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// What the journal keeps of a CTI frame: the protocol version its session
/// was opened with (it decides the frame's layout), then the frame.
pub(crate) fn cti_payload(version: u32, frame: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(4 + frame.len());
    payload.extend_from_slice(&version.to_be_bytes());
    payload.extend_from_slice(frame);
    payload
}

/// A journaled CTI frame decoded again.
pub(crate) fn decode_cti(
    payload: &[u8],
    received_at: Timestamp,
) -> Result<CtiEvent, cdrhub_protocols::cti::CtiError> {
    let (version, frame) = match payload.split_first_chunk::<4>() {
        Some((v, frame)) => (u32::from_be_bytes(*v), frame),
        None => (0, payload),
    };
    Ok(CtiEvent {
        received_at,
        message: cdrhub_protocols::cti::decode(frame, version)?,
    })
}

/// The records of a source's calls with these journal ids, in journal
/// order, decoded, with the sender they came from.
pub(crate) fn load_events<G: FromJournal>(
    conn: Db<'_>,
    ids: &[i64],
) -> Result<Vec<(i64, String, G::Record)>> {
    Ok(load_rows(conn, ids, |row| {
        G::decode(&row.payload, row.received_at).map(|event| (row.sender, event))
    })?
    .into_iter()
    .map(|(id, (sender, event))| (id, sender, event))
    .collect())
}

/// A call rebuilt from its journaled records, with the end an operator
/// forced on it.
pub(crate) fn rebuild_events<G: FromJournal>(
    conn: Db<'_>,
    events: &[(i64, String, G::Record)],
) -> Result<G> {
    let mut group = G::default();
    for (id, sender, event) in events {
        group.apply_journaled(sender, event, *id);
    }
    if let Some(forced) = forced_end_of_keys(conn, &group.keys())? {
        group.set_forced_end(forced.at);
    }
    Ok(group)
}

/// The source keys of a call of `source` rebuilt from these records.
pub(crate) fn keys_of_call(conn: Db<'_>, source: &str, ids: &[i64]) -> Result<Vec<i64>> {
    let mut keys = match source {
        cdrhub_model::SOURCE_CTI => CtiCallGroup::load(conn, ids)?.keys(),
        cdrhub_model::SOURCE_RADIUS => RadiusCallGroup::load(conn, ids)?.keys(),
        cdrhub_model::SOURCE_FEED => cdrhub_correlate::feed::FeedCallGroup::load(conn, ids)?.keys(),
        cdrhub_model::SOURCE_SIP => cdrhub_correlate::sip::SipCallGroup::load(conn, ids)?.keys(),
        cdrhub_model::SOURCE_EVENTS | cdrhub_model::SOURCE_CSV => {
            cdrhub_correlate::events::EventCallGroup::load(conn, ids)?.keys()
        }
        _ => Group::keys(&CmsCallGroup::load(conn, ids)?),
    };
    keys.sort_unstable();
    keys.dedup();
    Ok(keys)
}

/// What makes two Accounting-Requests the same record: the session, the
/// kind (Start, Stop, Interim-Update by its session time), or for
/// Accounting-On/Off the request itself. A stable 64-bit FNV-1a hash.
pub(crate) fn radius_dedup_key(
    a: &cdrhub_protocols::radius::Accounting,
    authenticator: &[u8; 16],
) -> i64 {
    use cdrhub_protocols::radius::status_type;
    let status = a.status_type.unwrap_or(0);
    let mut text = format!("{status}/{}", a.session_id.as_deref().unwrap_or(""));
    if status == status_type::INTERIM_UPDATE {
        text.push_str(&format!("/{}", a.session_time.unwrap_or(0)));
    }
    if a.session_id.is_none()
        || matches!(
            status,
            status_type::ACCOUNTING_ON | status_type::ACCOUNTING_OFF
        )
    {
        for b in authenticator {
            text.push_str(&format!("{b:02x}"));
        }
    }
    cdrhub_correlate::cms::CallKey {
        kind: cdrhub_correlate::cms::KeyKind::RadiusSession,
        id: &text,
    }
    .hash()
}

/// What makes two call events the same: the sender's idempotency key (in
/// the sender's stream). A stable 64-bit FNV-1a hash.
pub(crate) fn event_dedup_key(key: &str) -> i64 {
    cdrhub_correlate::cms::CallKey {
        kind: cdrhub_correlate::cms::KeyKind::EventCall,
        id: &format!("key/{key}"),
    }
    .hash()
}

/// A journaled Accounting-Request read again.
pub(crate) fn decode_radius(
    payload: &[u8],
    received_at: Timestamp,
) -> Result<RadiusEvent, cdrhub_protocols::radius::RadiusError> {
    let packet = cdrhub_protocols::radius::decode(payload)?;
    Ok(RadiusEvent {
        received_at,
        accounting: cdrhub_protocols::radius::parse_accounting(&packet),
    })
}

/// The journal's event type of an Accounting-Request (Acct-Status-Type).
pub(crate) fn radius_event_type(status: u32) -> &'static str {
    use cdrhub_protocols::radius::status_type as s;
    match status {
        s::START => "Start",
        s::STOP => "Stop",
        s::INTERIM_UPDATE => "Interim-Update",
        s::ACCOUNTING_ON => "Accounting-On",
        s::ACCOUNTING_OFF => "Accounting-Off",
        _ => "Accounting",
    }
}

/// What the journal keeps of a feed line: the login it came in (it names
/// the call together with the call reference), then the line as received.
pub(crate) fn feed_payload(login: &str, line: &str) -> Vec<u8> {
    let mut payload = Vec::with_capacity(login.len() + 1 + line.len());
    payload.extend_from_slice(login.as_bytes());
    payload.push(b'\n');
    payload.extend_from_slice(line.as_bytes());
    payload
}

/// A journaled feed line read again: its login and message.
pub(crate) fn decode_feed_line(
    payload: &[u8],
) -> Result<(String, cdrhub_protocols::feed::FeedMessage), String> {
    let text = std::str::from_utf8(payload).map_err(|_| "feed line is not UTF-8".to_owned())?;
    let (login, line) = text
        .split_once('\n')
        .ok_or_else(|| "feed line has no login".to_owned())?;
    let message = cdrhub_protocols::feed::parse_line(line).map_err(|e| e.to_string())?;
    Ok((login.to_owned(), message))
}

/// A journaled feed call event read again; a login, logout or keep-alive
/// is not one.
pub(crate) fn decode_feed(
    payload: &[u8],
    received_at: Timestamp,
) -> Result<cdrhub_correlate::feed::FeedEvent, String> {
    let (login, message) = decode_feed_line(payload)?;
    match message.body {
        cdrhub_protocols::feed::FeedBody::Call(event) => Ok(cdrhub_correlate::feed::FeedEvent {
            received_at,
            login,
            seq: message.seq,
            event,
        }),
        _ => Err("not a call event".to_owned()),
    }
}

/// The journal's event type of a feed line: its message type.
pub(crate) fn feed_event_type(body: &cdrhub_protocols::feed::FeedBody) -> &'static str {
    use cdrhub_protocols::feed::FeedBody;
    match body {
        FeedBody::Login(_) => "LOGIN",
        FeedBody::Logout { .. } => "LOGOUT",
        FeedBody::KeepAlive { .. } => "KEEPALIVE",
        FeedBody::Call(e) => e.kind.name(),
    }
}
