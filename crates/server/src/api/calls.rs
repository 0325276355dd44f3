//! `/api/v1/calls`, `/api/v1/calls/{id}` and `/api/v1/calls.csv`.

use std::collections::HashMap;

use axum::Extension;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use cdrhub_model::{Call, Role, Timestamp};
use cdrhub_store::{AuditEntry, CallCursor, CallDetail, CallFilter, CallPage, ForceEnd};

use super::{ApiError, blocking, blocking_api};
use crate::auth::Principal;
use crate::console::Client;
use crate::{AppState, spreadsheet};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// The filters shared by the JSON list, the CSV export and the console.
pub(crate) fn parse_filter(
    params: &HashMap<String, String>,
    csv: bool,
) -> Result<CallFilter, ApiError> {
    let mut f = CallFilter {
        limit: DEFAULT_LIMIT,
        ..Default::default()
    };
    for (key, value) in params {
        let bad = |what: &str| ApiError::BadRequest(format!("parameter {key}={value:?} {what}"));
        match key.as_str() {
            "from" => {
                f.from = Some(
                    Timestamp::parse_rfc3339(value).map_err(|_| bad("is not an RFC 3339 time"))?,
                )
            }
            "to" => {
                f.to = Some(
                    Timestamp::parse_rfc3339(value).map_err(|_| bad("is not an RFC 3339 time"))?,
                )
            }
            "source" => f.source = Some(value.clone()),
            "sender" => f.sender = Some(value.clone()),
            "kind" => f.kind = Some(value.clone()),
            "answered" => {
                f.answered = Some(value.parse().map_err(|_| bad("is not true or false"))?)
            }
            "call_type" => {
                f.call_type = Some(value.parse().map_err(|e| bad(&format!("is wrong: {e}")))?)
            }
            "direction" => {
                f.direction = Some(value.parse().map_err(|e| bad(&format!("is wrong: {e}")))?)
            }
            "disposition" => {
                f.disposition = Some(value.parse().map_err(|e| bad(&format!("is wrong: {e}")))?)
            }
            "q" => f.q = Some(value.clone()),
            "limit" if !csv => {
                let n: usize = value.parse().map_err(|_| bad("is not a whole number"))?;
                if n == 0 || n > MAX_LIMIT {
                    return Err(bad(&format!("must be between 1 and {MAX_LIMIT}")));
                }
                f.limit = n;
            }
            "cursor" if !csv => f.cursor = Some(CallCursor::decode(value)?),
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "unknown parameter {key:?}; known: from, to, source, sender, kind, direction, disposition, answered, call_type, q{}",
                    if csv { "" } else { ", limit, cursor" }
                )));
            }
        }
    }
    Ok(f)
}

pub(crate) async fn list(
    State(app): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<CallPage>, ApiError> {
    let filter = parse_filter(&params, false)?;
    let store = app.store.clone();
    Ok(Json(blocking(move || store.list_calls(&filter)).await?))
}

pub(crate) async fn get_one(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CallDetail>, ApiError> {
    let store = app.store.clone();
    let lookup = id.clone();
    blocking(move || store.get_call(&lookup))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no call with id {id:?}")))
}

/// Ends a call whose end records never came, and audits it as `entry`
/// says. Blocking.
pub(crate) fn force_end_call(
    store: &dyn cdrhub_store::Store,
    id: &str,
    entry: &AuditEntry,
) -> Result<(), ApiError> {
    match store.force_end(id, Timestamp::now(), &entry.actor)? {
        ForceEnd::Ended => Ok(store.accounts().audit(entry)?),
        ForceEnd::NotFound => Err(ApiError::NotFound(format!("no call with id {id:?}"))),
        ForceEnd::AlreadyEnded => Err(ApiError::Conflict(format!(
            "call {id} has ended already; only a call in progress can be ended by hand"
        ))),
    }
}

/// `POST /api/v1/calls/{id}/end`: ends a call whose end records never came
/// (supervisor or admin; audited) and answers the call as it is now.
pub(crate) async fn force_end(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    client: Client,
    Path(id): Path<String>,
) -> Result<Json<CallDetail>, ApiError> {
    principal.require(Role::Supervisor, "ending a call by hand")?;
    let entry = AuditEntry {
        actor: principal.name,
        role: Some(principal.role),
        client_ip: Some(client.ip),
        operation: FORCE_END_OPERATION.into(),
        target: Some(id.clone()),
    };
    let store = app.store.clone();
    blocking_api(move || {
        force_end_call(&*store, &id, &entry)?;
        store
            .get_call(&id)?
            .ok_or_else(|| ApiError::NotFound(format!("no call with id {id:?}")))
    })
    .await
    .map(Json)
}

/// The audit log's name for ending a call by hand.
pub(crate) const FORCE_END_OPERATION: &str = "force call end";

pub(crate) const CSV_COLUMNS: [&str; 18] = [
    "id",
    "source",
    "sender",
    "kind",
    "caller",
    "dialed",
    "destination",
    "direction",
    "started_at",
    "answered_at",
    "ended_at",
    "duration_s",
    "talk_s",
    "disposition",
    "cause",
    "media",
    "legs",
    "max_active_legs",
];

pub(crate) fn csv_row(c: &Call) -> [String; 18] {
    let opt = |s: &Option<String>| s.clone().unwrap_or_default();
    let t = |t: Option<Timestamp>| t.map(|t| t.to_rfc3339()).unwrap_or_default();
    let n = |n: Option<i64>| n.map(|n| n.to_string()).unwrap_or_default();
    [
        c.id.clone(),
        c.source.clone(),
        c.sender.clone(),
        c.kind.clone(),
        opt(&c.caller),
        opt(&c.dialed),
        opt(&c.destination),
        c.direction.map(|d| d.to_string()).unwrap_or_default(),
        c.started_at.to_rfc3339(),
        t(c.answered_at),
        t(c.ended_at),
        n(c.duration_s),
        n(c.talk_s),
        c.disposition.map(|d| d.to_string()).unwrap_or_default(),
        opt(&c.cause),
        opt(&c.media),
        c.legs.to_string(),
        c.max_active_legs.map(|n| n.to_string()).unwrap_or_default(),
    ]
}

fn csv_chunk(rows: &[Call], header: bool) -> Vec<u8> {
    spreadsheet::csv_chunk(header.then_some(&CSV_COLUMNS[..]), rows.iter().map(csv_row))
}

/// Streams every call matching the filters, newest first, page by page, so
/// an export of millions of calls holds one page in memory at a time.
pub(crate) async fn csv(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    principal.require(Role::Supervisor, "exporting calls")?;
    let mut filter = parse_filter(&params, true)?;
    filter.limit = 1000;
    // Read the first page now so a broken store answers 503, not a cut file.
    let store = app.store.clone();
    let first_filter = filter.clone();
    let first = blocking(move || store.list_calls(&first_filter)).await?;

    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let store = app.store.clone();
    tokio::spawn(async move {
        let mut page = first;
        let mut header = true;
        loop {
            if tx.send(Ok(csv_chunk(&page.calls, header))).await.is_err() {
                return;
            }
            header = false;
            let Some(cursor) = page.next_cursor.take() else {
                return;
            };
            let mut next = filter.clone();
            next.cursor = CallCursor::decode(&cursor).ok();
            let s = store.clone();
            match tokio::task::spawn_blocking(move || s.list_calls(&next)).await {
                Ok(Ok(p)) => page = p,
                Ok(Err(e)) => {
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok(spreadsheet::as_download(
        Body::from_stream(stream).into_response(),
        "calls.csv",
    ))
}
