//! `/api/v1/sources` and `/api/v1/gaps`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use cdrhub_store::GapFilter;
use serde_json::{Value, json};

use super::{ApiError, blocking};
use crate::AppState;

/// Per source and sender: last record time, records in the last minute and in
/// total, rejected documents, duplicates, gaps.
pub(crate) async fn sources(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let store = app.store.clone();
    let senders = blocking(move || store.senders()).await?;
    let cms = &app.config.sources.cms;
    let links = app.metrics.cti.snapshot();
    let cti: Vec<Value> = app
        .config
        .sources
        .cti
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "primary": c.primary,
                "secondary": c.secondary,
                "protocol_version": c.version,
                "connection": links.get(&c.name),
                "stats": senders.iter().find(|s| s.source == "cti" && s.sender == c.name),
            })
        })
        .collect();
    Ok(Json(json!({
        "sources": [
            {
                "source": "cms",
                "enabled": cms.enabled,
                "endpoint": cms.path,
                "senders": senders.iter().filter(|s| s.source == "cms").collect::<Vec<_>>(),
            },
            {
                "source": "cti",
                "enabled": !cti.is_empty(),
                "servers": cti,
            },
            {
                "source": "radius",
                "enabled": app.config.sources.radius.enabled,
                "endpoint": format!("udp {}", app.config.sources.radius.listen),
                "clients": app.metrics.radius.clients(),
                "unknown_clients": app.metrics.radius.unknown_clients(),
                "kernel_drops": app.metrics.udp_drops("radius"),
                "senders": senders.iter().filter(|s| s.source == "radius").collect::<Vec<_>>(),
            },
            {
                "source": "feed",
                "enabled": app.config.sources.feed.enabled,
                "endpoint": format!(
                    "tcp {} udp {}",
                    app.config.sources.feed.tcp_listen, app.config.sources.feed.udp_listen
                ),
                "counters": &*app.metrics.feed,
                "kernel_drops": app.metrics.udp_drops("feed"),
                "senders": senders.iter().filter(|s| s.source == "feed").collect::<Vec<_>>(),
            },
            {
                "source": "sip",
                "enabled": app.config.sources.hep.enabled,
                "endpoint": format!(
                    "hep udp {} tcp {}",
                    app.config.sources.hep.udp_listen, app.config.sources.hep.tcp_listen
                ),
                "counters": &*app.metrics.hep,
                "agents": app.metrics.hep.agents(),
                "kernel_drops": app.metrics.udp_drops("sip"),
                "senders": senders.iter().filter(|s| s.source == "sip").collect::<Vec<_>>(),
            },
            {
                "source": "events",
                "enabled": app.config.sources.events.enabled,
                "endpoint": "POST /api/v1/events, GET /api/v1/events/ws",
                "senders": senders.iter().filter(|s| s.source == "events").collect::<Vec<_>>(),
            },
            {
                "source": "csv",
                "enabled": true,
                "endpoint": "cdrhub import csv",
                "senders": senders.iter().filter(|s| s.source == "csv").collect::<Vec<_>>(),
            },
        ],
        "bus": app.config.bus.as_ref().map(|b| json!({
            "nats": b.nats,
            "stream": b.stream,
            "roles": b.roles,
            "counters": &*app.metrics.bus,
        })),
    })))
}

pub(crate) async fn gaps(
    State(app): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let mut filter = GapFilter {
        limit: 1000,
        ..Default::default()
    };
    for (key, value) in &params {
        match key.as_str() {
            "source" => filter.source = Some(value.clone()),
            "sender" => filter.sender = Some(value.clone()),
            "open" => {
                filter.open_only = match value.as_str() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => {
                        return Err(ApiError::BadRequest(format!(
                            "parameter open={value:?} must be true or false"
                        )));
                    }
                }
            }
            "limit" => {
                filter.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=10_000).contains(n))
                    .ok_or_else(|| {
                        ApiError::BadRequest(format!(
                            "parameter limit={value:?} must be between 1 and 10000"
                        ))
                    })?
            }
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "unknown parameter {key:?}; known: source, sender, open, limit"
                )));
            }
        }
    }
    let store = app.store.clone();
    let gaps = blocking(move || store.gaps(&filter)).await?;
    Ok(Json(json!({ "gaps": gaps })))
}

/// A day's hourly statistics and per-sender ratios, as the console's
/// Statistics page shows them (`day` YYYY-MM-DD, UTC; default today).
pub(crate) async fn stats(
    State(app): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<cdrhub_store::DayStats>, ApiError> {
    let (mut day, mut source, mut sender) = (None, None, None);
    for (key, value) in &params {
        match key.as_str() {
            "day" => {
                let start = cdrhub_model::Timestamp::parse_date(value)
                    .map_err(|e| ApiError::BadRequest(format!("parameter day={e}")))?;
                day = Some(start);
            }
            "source" => source = Some(value.clone()),
            "sender" => sender = Some(value.clone()),
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "unknown parameter {key:?}; known: day, source, sender"
                )));
            }
        }
    }
    let day = day.unwrap_or_else(cdrhub_model::Timestamp::now);
    let store = app.store.clone();
    Ok(Json(
        blocking(move || store.day_stats(day, source.as_deref(), sender.as_deref())).await?,
    ))
}

/// `GET /api/v1/cc`: a day's contact-centre reports.
pub(crate) async fn contact_centre(
    State(app): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<cdrhub_store::ContactCentreDay>, ApiError> {
    let (mut day, mut sender) = (None, None);
    for (key, value) in &params {
        match key.as_str() {
            "day" => {
                day = Some(
                    cdrhub_model::Timestamp::parse_date(value)
                        .map_err(|e| ApiError::BadRequest(format!("parameter day={e}")))?,
                )
            }
            "sender" => sender = Some(value.clone()),
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "unknown parameter {key:?}; known: day, sender"
                )));
            }
        }
    }
    let day = day.unwrap_or_else(cdrhub_model::Timestamp::now);
    let store = app.store.clone();
    Ok(Json(
        blocking(move || store.contact_centre_day(day, sender.as_deref())).await?,
    ))
}
