//! `/api/v1/gateways...`: the gateway report of seed 001 (issue 5): the
//! gateway list, the gateway log, each gateway's real-time events and its
//! CDR report, as JSON or CSV.

use std::collections::HashMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use cdrhub_model::Timestamp;
use cdrhub_store::{
    GatewayEvent, GatewayInfo, GatewayLogFilter, GatewayLogKind, GatewayLogPage, GatewayReport,
    GatewayReportFilter, GatewayReportQuery, GatewayReportRow,
};

use super::{ApiError, blocking};
use crate::{AppState, spreadsheet};

const MAX_LIMIT: usize = 1000;
const DAY_MS: i64 = 86_400_000;

/// `from` as a time: RFC 3339, or a date (its start, UTC).
fn time_from(value: &str) -> Option<Timestamp> {
    Timestamp::parse_rfc3339(value)
        .ok()
        .or_else(|| Timestamp::parse_date(value).ok())
}

/// `to` as a time: RFC 3339, or a date (the end of that day: the date is in
/// the period).
fn time_to(value: &str) -> Option<Timestamp> {
    Timestamp::parse_rfc3339(value).ok().or_else(|| {
        Timestamp::parse_date(value)
            .ok()
            .map(|d| Timestamp(d.0 + DAY_MS))
    })
}

fn limit_of(key: &str, value: &str) -> Result<usize, ApiError> {
    value
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "parameter {key}={value:?} must be a whole number from 1 to {MAX_LIMIT}"
            ))
        })
}

fn bad(key: &str, value: &str, what: &str) -> ApiError {
    ApiError::BadRequest(format!("parameter {key}={value:?} {what}"))
}

/// The report's parameters: `from` and `to` (dates or RFC 3339 times;
/// default today, UTC), `filter`, `limit`, `offset`.
pub(crate) fn parse_report_query(
    gateway: &str,
    params: &HashMap<String, String>,
    csv: bool,
) -> Result<GatewayReportQuery, ApiError> {
    let today = Timestamp(Timestamp::now().0.div_euclid(DAY_MS) * DAY_MS);
    let mut q = GatewayReportQuery {
        gateway: gateway.to_owned(),
        from: today,
        to: Timestamp(today.0 + DAY_MS),
        filter: GatewayReportFilter::All,
        limit: if csv { usize::MAX } else { 100 },
        offset: 0,
    };
    for (key, value) in params {
        match key.as_str() {
            "from" => {
                q.from = time_from(value).ok_or_else(|| bad(key, value, "is not a date or time"))?
            }
            "to" => q.to = time_to(value).ok_or_else(|| bad(key, value, "is not a date or time"))?,
            "filter" => {
                q.filter = GatewayReportFilter::parse(value).ok_or_else(|| {
                    bad(
                        key,
                        value,
                        "is not one of all, call_in, call_out, only_pstn, call_out_failed, call_in_reject, other",
                    )
                })?
            }
            "limit" if !csv => q.limit = limit_of(key, value)?,
            "offset" if !csv => {
                q.offset = value
                    .parse()
                    .map_err(|_| bad(key, value, "is not a whole number"))?
            }
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "unknown parameter {key:?}; known: from, to, filter{}",
                    if csv { "" } else { ", limit, offset" }
                )));
            }
        }
    }
    if q.to.0 <= q.from.0 {
        return Err(ApiError::BadRequest(
            "the period is empty: to must come after from".into(),
        ));
    }
    Ok(q)
}

/// The log's parameters: `gateway`, `kind`, `q`, `from`, `to`, `limit`,
/// `offset`.
pub(crate) fn parse_log_filter(
    params: &HashMap<String, String>,
) -> Result<GatewayLogFilter, ApiError> {
    let mut f = GatewayLogFilter {
        limit: 100,
        ..GatewayLogFilter::default()
    };
    for (key, value) in params {
        if value.is_empty() {
            continue;
        }
        match key.as_str() {
            "gateway" => f.gateway = Some(value.clone()),
            "kind" => {
                f.kind = Some(GatewayLogKind::parse(value).ok_or_else(|| {
                    bad(
                        key,
                        value,
                        "is not one of Login, Re-Login, Relogin Kickout, Gateway Disconnect, Bad Packet, Logout",
                    )
                })?)
            }
            "q" => f.text = Some(value.clone()),
            "from" => {
                f.from = Some(time_from(value).ok_or_else(|| bad(key, value, "is not a date or time"))?)
            }
            "to" => f.to = Some(time_to(value).ok_or_else(|| bad(key, value, "is not a date or time"))?),
            "limit" => f.limit = limit_of(key, value)?,
            "offset" => {
                f.offset = value
                    .parse()
                    .map_err(|_| bad(key, value, "is not a whole number"))?
            }
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "unknown parameter {key:?}; known: gateway, kind, q, from, to, limit, offset"
                )));
            }
        }
    }
    Ok(f)
}

pub(crate) async fn list(State(app): State<AppState>) -> Result<Json<Vec<GatewayInfo>>, ApiError> {
    let store = app.store.clone();
    Ok(Json(blocking(move || store.gateways()).await?))
}

pub(crate) async fn log(
    State(app): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<GatewayLogPage>, ApiError> {
    let filter = parse_log_filter(&params)?;
    let store = app.store.clone();
    Ok(Json(blocking(move || store.gateway_log(&filter)).await?))
}

pub(crate) async fn events(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Vec<GatewayEvent>>, ApiError> {
    let mut limit = 100;
    for (key, value) in &params {
        match key.as_str() {
            "limit" => limit = limit_of(key, value)?,
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "unknown parameter {key:?}; known: limit"
                )));
            }
        }
    }
    let store = app.store.clone();
    Ok(Json(
        blocking(move || store.gateway_events(Some(&name), limit)).await?,
    ))
}

pub(crate) async fn report(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<GatewayReport>, ApiError> {
    let query = parse_report_query(&name, &params, false)?;
    let store = app.store.clone();
    Ok(Json(blocking(move || store.gateway_report(&query)).await?))
}

/// The report as CSV: every row the filter keeps in the period.
pub(crate) async fn report_csv(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = parse_report_query(&name, &params, true)?;
    let store = app.store.clone();
    let report = blocking(move || store.gateway_report(&query)).await?;
    Ok(csv_response(&report.rows))
}

/// The seed's report columns.
pub(crate) const REPORT_COLUMNS: [&str; 13] = [
    "Call-Ref",
    "Port",
    "Date",
    "Notation",
    "Dialed",
    "Time",
    "Begin",
    "PSTN Dial",
    "PSTN Time",
    "Caller ID",
    "PSTN Caller ID",
    "End",
    "Call",
];

/// Seconds as the seed prints a duration: `0:02:16`.
pub(crate) fn hms(seconds: Option<i64>) -> String {
    seconds.map_or_else(String::new, |s| {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    })
}

/// The report's cells, as text: the date and times in UTC.
pub(crate) fn report_cells(r: &GatewayReportRow) -> [String; 13] {
    let text = |s: &Option<String>| spreadsheet::text_cell(s.as_deref().unwrap_or(""));
    let time = |t: Timestamp| {
        let iso = t.to_rfc3339();
        iso.get(11..19).unwrap_or("").to_owned()
    };
    [
        text(&r.call_ref),
        r.port.map(|p| p.to_string()).unwrap_or_default(),
        r.begin.to_rfc3339().get(..10).unwrap_or("").to_owned(),
        r.notation.clone(),
        text(&r.dialed),
        hms(r.time_s),
        time(r.begin),
        text(&r.pstn_dial),
        hms(r.pstn_time_s),
        text(&r.caller_id),
        text(&r.pstn_caller_id),
        r.end.map(time).unwrap_or_default(),
        r.call_id.clone(),
    ]
}

pub(crate) fn csv_response(rows: &[GatewayReportRow]) -> Response {
    let body = spreadsheet::csv_chunk(Some(&REPORT_COLUMNS[..]), rows.iter().map(report_cells));
    spreadsheet::as_download(Body::from(body).into_response(), "gateway-report.csv")
}
