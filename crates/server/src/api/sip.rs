//! `/api/v1/sip/...`: SIP registrations (issue 6, point 4): the
//! extensions registered now, and a day's peak registered per hour.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use cdrhub_model::Timestamp;
use cdrhub_store::{RegisterHour, SipRegistration};
use serde::Serialize;

use super::{ApiError, blocking};
use crate::AppState;

const DAY_MS: i64 = 86_400_000;

/// The parameters named in `known`, each once; anything else is an error.
fn params<'a>(
    query: &'a HashMap<String, String>,
    known: &[&str],
) -> Result<HashMap<&'a str, &'a str>, ApiError> {
    let mut out = HashMap::new();
    for (key, value) in query {
        if !known.contains(&key.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "unknown parameter {key:?}; known: {}",
                known.join(", ")
            )));
        }
        let value = value.trim();
        if !value.is_empty() {
            out.insert(key.as_str(), value);
        }
    }
    Ok(out)
}

/// `GET /api/v1/sip/registrations?sender=`: the bindings in force now.
pub(crate) async fn registrations(
    State(app): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Vec<SipRegistration>>, ApiError> {
    let p = params(&query, &["sender"])?;
    let sender = p.get("sender").map(|s| s.to_string());
    let store = app.store.clone();
    Ok(Json(
        blocking(move || store.sip_registrations(Timestamp::now(), sender.as_deref())).await?,
    ))
}

#[derive(Serialize)]
pub(crate) struct RegisterDay {
    day: String,
    /// The day's highest hourly peak.
    peak: u64,
    hours: Vec<RegisterHour>,
}

/// `GET /api/v1/sip/register-stats?day=YYYY-MM-DD&sender=`: each hour's
/// peak registered and logins (default today, UTC).
pub(crate) async fn register_stats(
    State(app): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<RegisterDay>, ApiError> {
    let p = params(&query, &["day", "sender"])?;
    let day = match p.get("day") {
        Some(d) => Timestamp::parse_date(d).map_err(|e| {
            ApiError::BadRequest(format!(
                "parameter day={d:?} is not a date (YYYY-MM-DD): {e}"
            ))
        })?,
        None => Timestamp(Timestamp::now().0.div_euclid(DAY_MS) * DAY_MS),
    };
    let sender = p.get("sender").map(|s| s.to_string());
    let store = app.store.clone();
    let hours = blocking(move || store.register_hours(day, sender.as_deref())).await?;
    Ok(Json(RegisterDay {
        day: day.to_rfc3339()[..10].to_owned(),
        peak: hours.iter().map(|h| h.peak).max().unwrap_or(0),
        hours,
    }))
}
