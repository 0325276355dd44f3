//! Statistics of a day (seed 002, "Reports"): one row per hour with Max
//! Call, Total CA, Total Call, Peak CA and Peak Call, the same for video,
//! Previous Day / Next Day, a chart and CSV; and per source and sender the
//! day's ASR, ACD and NER. Served from the rollups kept at write time.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cdrhub_model::Timestamp;
use cdrhub_store::{DayStats, HourStats};
use maud::{Markup, PreEscaped, html};

use super::{Signed, page, t};
use crate::api::blocking;
use crate::{AppState, spreadsheet};

pub(super) const DAY_MS: i64 = 86_400_000;

/// The day asked for (UTC, `YYYY-MM-DD`, default today) and the filters.
pub(super) struct Asked {
    pub day: Timestamp,
    pub source: Option<String>,
    pub sender: Option<String>,
}

pub(super) fn asked(query: &HashMap<String, String>) -> Result<Asked, String> {
    let get = |k: &str| {
        query
            .get(k)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let day = match get("day") {
        Some(d) => Timestamp::parse_date(&d).map_err(|e| format!("day {e}"))?,
        None => Timestamp(Timestamp::now().0.div_euclid(DAY_MS) * DAY_MS),
    };
    Ok(Asked {
        day,
        source: get("source"),
        sender: get("sender"),
    })
}

pub(super) fn date(t: Timestamp) -> String {
    t.to_rfc3339()[..10].to_owned()
}

impl Asked {
    pub(super) fn link(&self, base: &str, day: Timestamp) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("day", &date(day));
        for (k, v) in [("source", &self.source), ("sender", &self.sender)] {
            if let Some(v) = v {
                q.append_pair(k, v);
            }
        }
        format!("{base}?{}", q.finish())
    }
}

/// The configured capacity of the sources shown ("Max Call").
fn capacity(app: &AppState, source: Option<&str>) -> Option<u32> {
    let cms = &app.config.sources.cms;
    match source {
        None | Some("cms") if cms.enabled => cms.capacity,
        _ => None,
    }
}

async fn load(app: &AppState, a: &Asked) -> Result<DayStats, crate::api::ApiError> {
    let store = app.store.clone();
    let (day, source, sender) = (a.day, a.source.clone(), a.sender.clone());
    blocking(move || store.day_stats(day, source.as_deref(), sender.as_deref())).await
}

fn percent(v: Option<f64>) -> String {
    v.map(|v| format!("{:.1}", v * 100.0))
        .unwrap_or_else(|| "—".into())
}

/// Bars of the hour's attempts, and the peak of connected calls as a line.
fn chart(hours: &[HourStats]) -> Markup {
    let max = hours
        .iter()
        .map(|h| h.attempts.max(h.peak_connected))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let (w, h, bar) = (720.0, 160.0, 30.0);
    let y = |v: i64| h - (v as f64 / max) * (h - 10.0);
    let line: Vec<String> = hours
        .iter()
        .enumerate()
        .map(|(i, x)| {
            format!(
                "{:.1},{:.1}",
                i as f64 * bar + bar / 2.0,
                y(x.peak_connected)
            )
        })
        .collect();
    html! {
        svg #chart width=(w) height=(h + 20.0) viewBox={ "0 0 " (w) " " (h + 20.0) } role="img" aria-label="Calls per hour" {
            @for (i, x) in hours.iter().enumerate() {
                rect x=(i as f64 * bar + 4.0) y=(y(x.attempts)) width=(bar - 8.0) height=(h - y(x.attempts)) fill="#8fb3d9" {
                    title { (format!("{:02}:00 · {} attempts", i, x.attempts)) }
                }
                @if i % 3 == 0 { text x=(i as f64 * bar + 4.0) y=(h + 15.0) font-size="11" { (format!("{i:02}")) } }
            }
            polyline points=(line.join(" ")) fill="none" stroke="#a8071a" stroke-width="2";
        }
        p.help { (PreEscaped("&#9632;")) " Total CA · " span style="color:#a8071a" { "—" } " Peak Call" }
    }
}

pub(crate) async fn view(
    State(app): State<AppState>,
    signed: Signed,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let l = signed.user.language.clone();
    let l = l.as_str();
    let a = match asked(&query) {
        Ok(a) => a,
        Err(e) => return super::bad_request_page(&signed, "stats_title", &e),
    };
    let stats = match load(&app, &a).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let store = app.store.clone();
    let senders = blocking(move || store.senders()).await.unwrap_or_default();
    let max_call = capacity(&app, a.source.as_deref())
        .map(|c| c.to_string())
        .unwrap_or_else(|| "—".into());
    let body = html! {
        form.filters.noprint method="get" action="/stats" {
            a #prev-day href=(a.link("/stats", Timestamp(a.day.0 - DAY_MS))) { "← " (t(l, "stats_prev")) } " "
            label.inline { (t(l, "stats_day")) " " input #day type="date" name="day" value=(date(a.day)); }
            label.inline { (t(l, "calls_sender")) " "
                select name="sender" {
                    option value="" { (t(l, "all")) }
                    @for s in &senders { option value=(s.sender) selected[a.sender.as_deref() == Some(s.sender.as_str())] { (s.sender) } }
                }
            }
            button type="submit" { (t(l, "search")) } " "
            a #next-day href=(a.link("/stats", Timestamp(a.day.0 + DAY_MS))) { (t(l, "stats_next")) " →" } " · "
            a #stats-csv href=(a.link("/stats.csv", a.day)) { (t(l, "export_csv")) }
        }
        h2 #stats-day { (date(stats.day)) " (UTC)" }
        (chart(&stats.hours))
        table #hours {
            tr {
                th rowspan="2" { (t(l, "stats_period")) } th rowspan="2" { "Max Call" }
                th colspan="4" { (t(l, "stats_all_calls")) } th colspan="4" { (t(l, "stats_video")) }
            }
            tr {
                th { "Total CA" } th { "Total Call" } th { "Peak CA" } th { "Peak Call" }
                th { "Total CA" } th { "Total Call" } th { "Peak CA" } th { "Peak Call" }
            }
            @for (i, h) in stats.hours.iter().enumerate() {
                tr {
                    td.time { (format!("{i:02}:00–{:02}:00", i + 1)) }
                    td.num { (max_call) }
                    td.num { (h.attempts) } td.num { (h.answered) } td.num { (h.peak_attempts) } td.num { (h.peak_connected) }
                    td.num { (h.video_attempts) } td.num { (h.video_answered) } td.num { (h.video_peak_attempts) } td.num { (h.video_peak_connected) }
                }
            }
        }
        h2 { (t(l, "stats_senders")) }
        table #senders {
            tr {
                th { (t(l, "calls_source")) } th { (t(l, "calls_sender")) } th { "Attempts" } th { "Answered" }
                th { "Busy" } th { "No answer" } th { "Rejected" } th { "Failed" } th { "Cancelled" }
                th { "ASR %" } th { "ACD s" } th { "NER %" } th { "PDD s" }
            }
            @for s in &stats.senders {
                tr {
                    td { (s.source) } td { (s.sender) } td.num { (s.attempts) } td.num { (s.answered) }
                    td.num { (s.busy) } td.num { (s.no_answer) } td.num { (s.rejected) } td.num { (s.failed) } td.num { (s.cancelled) }
                    td.num { (percent(s.asr)) } td.num { (s.acd_s.map(|v| format!("{v:.0}")).unwrap_or_else(|| "—".into())) }
                    td.num { (percent(s.ner)) } td.num { (s.pdd_s.map(|v| format!("{v:.1}")).unwrap_or_else(|| "—".into())) }
                }
            }
        }
        p.help { (t(l, "stats_help")) }
    };
    page(l, t(l, "stats_title"), Some(&signed), body).into_response()
}

const CSV_COLUMNS: [&str; 10] = [
    "hour",
    "max_call",
    "total_ca",
    "total_call",
    "peak_ca",
    "peak_call",
    "video_total_ca",
    "video_total_call",
    "video_peak_ca",
    "video_peak_call",
];

/// The day's hours as CSV.
pub(crate) async fn export(
    State(app): State<AppState>,
    _signed: Signed,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let a = match asked(&query) {
        Ok(a) => a,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    let stats = match load(&app, &a).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let max_call = capacity(&app, a.source.as_deref())
        .map(|c| c.to_string())
        .unwrap_or_default();
    let rows = stats.hours.iter().map(|h| {
        [
            h.hour.to_rfc3339(),
            max_call.clone(),
            h.attempts.to_string(),
            h.answered.to_string(),
            h.peak_attempts.to_string(),
            h.peak_connected.to_string(),
            h.video_attempts.to_string(),
            h.video_answered.to_string(),
            h.video_peak_attempts.to_string(),
            h.video_peak_connected.to_string(),
        ]
    });
    let body = spreadsheet::csv_chunk(Some(&CSV_COLUMNS[..]), rows);
    spreadsheet::as_download(Body::from(body).into_response(), "statistics.csv")
}
