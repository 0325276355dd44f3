//! The open call-event API (issue 7): `POST /api/v1/events` (one JSON
//! event, a JSON array, or NDJSON) and `GET /api/v1/events/ws` (a WebSocket,
//! one event or NDJSON batch a message), for any system that knows when its
//! calls ring, connect and end. The vocabulary is
//! `cdrhub_protocols::events`.
//!
//! A batch is decoded whole first (one bad event refuses it, nothing
//! stored), committed, and only then answered: `200` with what was stored
//! and what was a duplicate (an idempotency key seen before), or one
//! WebSocket message saying the same. If the store cannot commit, `503`
//! (or an error message) tells the sender to send again.

use std::collections::HashMap;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequest, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cdrhub_model::{Role, SOURCE_EVENTS, Timestamp};
use cdrhub_protocols::events;
use cdrhub_store::{EventIngest, EventsIngest, IngestBatch, IngestOutcome, IngestPayload};
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use crate::AppState;
use crate::api::ApiError;
use crate::auth::Principal;
use crate::sources::guard::Peer;

/// `[sources.events]`: the call-event API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsSourceConfig {
    /// Accept call events (with an API token of the supervisor or admin
    /// role). Default true.
    #[serde(default = "crate::config::yes")]
    pub enabled: bool,
    /// Largest POST body or WebSocket message, in bytes; a larger one gets
    /// 413 (or an error message). Default 8 MiB.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Most events in one body or message. Default 10000.
    #[serde(default = "default_max_events")]
    pub max_events: usize,
    /// The addresses or subnets senders POST and connect from; others get
    /// 403 before their body is read. Empty: all.
    #[serde(default)]
    pub allow: super::guard::AllowList,
}

impl Default for EventsSourceConfig {
    fn default() -> Self {
        EventsSourceConfig {
            enabled: true,
            max_body_bytes: default_max_body(),
            max_events: default_max_events(),
            allow: Default::default(),
        }
    }
}

fn default_max_body() -> usize {
    8 << 20
}

fn default_max_events() -> usize {
    10_000
}

/// What a committed batch stored.
#[derive(Debug, Serialize)]
struct Accepted {
    /// Events stored now.
    accepted: usize,
    /// Events whose idempotency key was stored before: nothing changed.
    duplicates: usize,
}

/// The sender's name: `?system=`, else the API token's name.
fn sender_of(principal: &Principal, query: &HashMap<String, String>) -> Result<String, ApiError> {
    for key in query.keys() {
        if key != "system" {
            return Err(ApiError::BadRequest(format!(
                "unknown parameter {key:?}; known: system"
            )));
        }
    }
    Ok(query
        .get("system")
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| principal.name.clone()))
}

/// Decodes and commits one body or message; what was stored, and the
/// idempotency keys of its events.
async fn take(
    app: &AppState,
    sender: &str,
    body: &[u8],
) -> Result<(IngestOutcome, Vec<String>), ApiError> {
    let config = &app.config.sources.events;
    let decoded = events::decode(body).map_err(|e| {
        let message = format!("rejected call events: {e}");
        app.store.record_rejected(SOURCE_EVENTS, sender, &message);
        ApiError::BadRequest(message)
    })?;
    if decoded.len() > config.max_events {
        return Err(ApiError::BadRequest(format!(
            "{} events in one batch; at most {} (sources.events.max_events)",
            decoded.len(),
            config.max_events
        )));
    }
    let received_at = Timestamp::now();
    let count = decoded.len();
    let keys = decoded.iter().map(|e| e.key.clone()).collect();
    let submission = IngestBatch {
        sender: sender.to_owned(),
        received_at,
        payload: IngestPayload::Events(EventsIngest {
            imported: false,
            events: decoded
                .into_iter()
                .map(|event| EventIngest { received_at, event })
                .collect(),
        }),
    };
    let outcome = crate::bus::submit(app, submission).await.map_err(|e| {
        warn!(%sender, events = count, error = %e, "could not commit call events; the sender is told to retry");
        ApiError::Unavailable(format!("the events were not stored, send them again: {e}"))
    })?;
    Ok((outcome, keys))
}

fn permitted(app: &AppState, principal: &Principal) -> Result<(), ApiError> {
    if !app.config.sources.events.enabled {
        return Err(ApiError::NotFound(
            "the call-event API is turned off (sources.events.enabled)".into(),
        ));
    }
    principal.require(Role::Supervisor, "sending call events")
}

/// `POST /api/v1/events[?system=NAME]`.
pub(crate) async fn post(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Query(query): Query<HashMap<String, String>>,
    peer: Peer,
    request: axum::extract::Request,
) -> Response {
    let result = async {
        allowed(&app, peer)?;
        permitted(&app, &principal)?;
        let sender = sender_of(&principal, &query)?;
        let body = Bytes::from_request(request, &()).await.map_err(|rejection: BytesRejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge(format!(
                    "the body is larger than the {}-byte limit (sources.events.max_body_bytes)",
                    app.config.sources.events.max_body_bytes
                ))
            } else {
                ApiError::BadRequest(format!("the body could not be read: {}", rejection.body_text()))
            }
        })?;
        let (outcome, _) = take(&app, &sender, &body).await?;
        debug!(%sender, stored = outcome.stored, duplicates = outcome.duplicates, "call events committed");
        Ok::<_, ApiError>(Accepted {
            accepted: outcome.stored,
            duplicates: outcome.duplicates,
        })
    }
    .await;
    let status = match &result {
        Ok(_) => StatusCode::OK,
        Err(e) => e.status(),
    };
    app.metrics.ingest_response(SOURCE_EVENTS, status);
    match result {
        Ok(accepted) => axum::Json(accepted).into_response(),
        Err(e) => {
            let unavailable = matches!(e, ApiError::Unavailable(_));
            let mut r = e.into_response();
            if unavailable {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            r
        }
    }
}

/// What the WebSocket answers each message with, in order.
#[derive(Debug, Serialize)]
struct WsAnswer {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    accepted: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duplicates: Option<usize>,
    /// The idempotency keys of the message's events, stored or duplicate.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    keys: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// 403 for a sender outside `sources.events.allow`, before its body is read.
fn allowed(app: &AppState, peer: Peer) -> Result<(), ApiError> {
    app.config.sources.events.allow.check(peer).map_err(|ip| {
        ApiError::Forbidden(format!(
            "the address {ip} may not send call events (sources.events.allow)"
        ))
    })
}

/// `GET /api/v1/events/ws[?system=NAME]`: a long-lived feed.
pub(crate) async fn websocket(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Query(query): Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
    peer: Peer,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    allowed(&app, peer)?;
    // A feed is a system's, never a console session's: a page elsewhere
    // must not be able to open one with a signed-in operator's cookie.
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer "));
    if !bearer {
        return Err(ApiError::Unauthorized(
            "the call-event WebSocket takes an API token in an Authorization: Bearer header, not a console session".into(),
        ));
    }
    permitted(&app, &principal)?;
    let sender = sender_of(&principal, &query)?;
    let limit = app.config.sources.events.max_body_bytes;
    Ok(upgrade
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| feed(app, sender, socket)))
}

async fn feed(app: AppState, sender: String, mut socket: WebSocket) {
    debug!(%sender, "call-event WebSocket open");
    while let Some(message) = socket.recv().await {
        let body: Bytes = match message {
            Ok(Message::Text(text)) => Bytes::from(text.as_str().to_owned()),
            Ok(Message::Binary(_)) => {
                let answer = WsAnswer {
                    ok: false,
                    accepted: None,
                    duplicates: None,
                    keys: Vec::new(),
                    error: Some("send events as text messages (JSON or NDJSON)".into()),
                };
                if send(&mut socket, &answer).await.is_err() {
                    break;
                }
                continue;
            }
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(Message::Close(_)) => break,
            Err(e) => {
                debug!(%sender, error = %e, "call-event WebSocket ended");
                break;
            }
        };
        let answer = match take(&app, &sender, &body).await {
            Ok((outcome, keys)) => {
                app.metrics.ingest_response(SOURCE_EVENTS, StatusCode::OK);
                WsAnswer {
                    ok: true,
                    accepted: Some(outcome.stored),
                    duplicates: Some(outcome.duplicates),
                    keys,
                    error: None,
                }
            }
            Err(e) => {
                app.metrics.ingest_response(SOURCE_EVENTS, e.status());
                WsAnswer {
                    ok: false,
                    accepted: None,
                    duplicates: None,
                    keys: Vec::new(),
                    error: Some(e.message()),
                }
            }
        };
        if send(&mut socket, &answer).await.is_err() {
            break;
        }
    }
}

async fn send(socket: &mut WebSocket, answer: &WsAnswer) -> Result<(), axum::Error> {
    let text = serde_json::to_string(answer).expect("an answer serializes");
    socket.send(Message::Text(text.into())).await
}
