//! Contact-centre reports (issue 4, point 4): per agent per day (calls
//! handled, talk, hold, ready, not ready by reason code, wrap-up) and per
//! CSQ per hour (offered, answered, abandoned, average and longest wait),
//! with the state of each CTI connection. Every role may read them.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cdrhub_model::Timestamp;
use cdrhub_store::ContactCentreDay;
use maud::html;

use super::stats::{Asked, DAY_MS, asked, date};
use super::{Signed, page, t};
use crate::api::blocking;
use crate::{AppState, spreadsheet};

async fn load(app: &AppState, a: &Asked) -> Result<ContactCentreDay, crate::api::ApiError> {
    let store = app.store.clone();
    let (day, sender) = (a.day, a.sender.clone());
    blocking(move || store.contact_centre_day(day, sender.as_deref())).await
}

/// Seconds as `h:mm:ss`.
fn hms(s: f64) -> String {
    let s = s.max(0.0).round() as i64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn wait(s: Option<f64>) -> String {
    s.map(|s| format!("{s:.1}")).unwrap_or_else(|| "—".into())
}

/// Not-ready seconds by reason code, as `code h:mm:ss` items.
fn reasons(r: &[(u16, f64)]) -> String {
    r.iter()
        .map(|(code, s)| format!("{code}: {}", hms(*s)))
        .collect::<Vec<_>>()
        .join(", ")
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
        Err(e) => return super::bad_request_page(&signed, "cc_title", &e),
    };
    let day = match load(&app, &a).await {
        Ok(d) => d,
        Err(e) => return e.into_response(),
    };
    let links = app.metrics.cti.snapshot();
    let servers = &app.config.sources.cti;
    let body = html! {
        h2 { (t(l, "cc_connections")) }
        @if servers.is_empty() {
            p.help { (t(l, "cc_no_servers")) }
        } @else {
            table #cti-links {
                tr {
                    th { (t(l, "calls_sender")) } th { (t(l, "cc_state")) } th { (t(l, "cc_node")) }
                    th { (t(l, "cc_since")) } th { (t(l, "cc_last_message")) } th { (t(l, "cc_messages")) }
                    th { (t(l, "cc_reconnects")) } th { (t(l, "cc_last_error")) }
                }
                @for s in servers {
                    @let link = links.get(&s.name);
                    tr {
                        td { (s.name) }
                        td { (link.map_or("connecting", |l| l.state)) }
                        td { (link.and_then(|l| l.node.clone()).unwrap_or_else(|| s.primary.clone())) }
                        td.time { (link.and_then(|l| l.connected_since).map(|t| t.to_rfc3339()).unwrap_or_default()) }
                        td.time { (link.and_then(|l| l.last_message_at).map(|t| t.to_rfc3339()).unwrap_or_default()) }
                        td.num { (link.map_or(0, |l| l.messages)) }
                        td.num { (link.map_or(0, |l| l.reconnects)) }
                        td { (link.and_then(|l| l.last_error.clone()).unwrap_or_default()) }
                    }
                }
            }
        }
        form.filters.noprint method="get" action="/cc" {
            a #prev-day href=(a.link("/cc", Timestamp(a.day.0 - DAY_MS))) { "← " (t(l, "stats_prev")) } " "
            label.inline { (t(l, "stats_day")) " " input #day type="date" name="day" value=(date(a.day)); }
            label.inline { (t(l, "calls_sender")) " "
                select name="sender" {
                    option value="" { (t(l, "all")) }
                    @for s in servers { option value=(s.name) selected[a.sender.as_deref() == Some(s.name.as_str())] { (s.name) } }
                }
            }
            button type="submit" { (t(l, "search")) } " "
            a #next-day href=(a.link("/cc", Timestamp(a.day.0 + DAY_MS))) { (t(l, "stats_next")) " →" } " · "
            a #agents-csv href=(a.link("/cc/agents.csv", a.day)) { (t(l, "cc_agents_csv")) } " · "
            a #csqs-csv href=(a.link("/cc/csqs.csv", a.day)) { (t(l, "cc_csqs_csv")) }
        }
        h2 #cc-day { (t(l, "cc_agents")) " · " (date(day.day)) " (UTC)" }
        table #agents {
            tr {
                th { (t(l, "cc_agent")) } th { (t(l, "cc_extension")) } th { (t(l, "calls_sender")) }
                th { (t(l, "cc_handled")) } th { (t(l, "cc_talk")) } th { (t(l, "cc_hold")) }
                th { (t(l, "cc_ready")) } th { (t(l, "cc_not_ready")) } th { (t(l, "cc_wrapup")) }
                th { (t(l, "cc_reasons")) }
            }
            @for a in &day.agents {
                tr {
                    td { (a.agent) } td { (a.extension.as_deref().unwrap_or("")) } td { (a.sender) }
                    td.num { (a.calls_handled) } td.num { (hms(a.talk_s)) } td.num { (hms(a.hold_s)) }
                    td.num { (hms(a.ready_s)) } td.num { (hms(a.not_ready_s)) } td.num { (hms(a.wrapup_s)) }
                    td { (reasons(&a.not_ready_reasons)) }
                }
            }
        }
        h2 { (t(l, "cc_csqs")) }
        table #csqs {
            tr {
                th { "CSQ" } th { (t(l, "stats_period")) } th { (t(l, "calls_sender")) }
                th { (t(l, "cc_offered")) } th { (t(l, "cc_answered")) } th { (t(l, "cc_abandoned")) }
                th { (t(l, "cc_avg_wait")) } th { (t(l, "cc_longest_wait")) }
            }
            @for q in &day.csqs {
                tr {
                    td.num { (q.csq) } td.time { (q.hour.to_rfc3339()[11..16]) } td { (q.sender) }
                    td.num { (q.offered) } td.num { (q.answered) } td.num { (q.abandoned) }
                    td.num { (wait(q.average_wait_s)) } td.num { (wait(q.longest_wait_s)) }
                }
            }
        }
        p.help { (t(l, "cc_help")) }
    };
    page(l, t(l, "cc_title"), Some(&signed), body).into_response()
}

/// `/cc/agents.csv` and `/cc/csqs.csv`: the day's tables as CSV.
pub(crate) async fn export_agents(
    State(app): State<AppState>,
    _signed: Signed,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    export(app, query, true).await
}

pub(crate) async fn export_csqs(
    State(app): State<AppState>,
    _signed: Signed,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    export(app, query, false).await
}

async fn export(app: AppState, query: HashMap<String, String>, agents: bool) -> Response {
    let a = match asked(&query) {
        Ok(a) => a,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    let day = match load(&app, &a).await {
        Ok(d) => d,
        Err(e) => return e.into_response(),
    };
    let (body, name) = if agents {
        const COLUMNS: [&str; 12] = [
            "day",
            "sender",
            "agent",
            "extension",
            "calls_handled",
            "talk_s",
            "hold_s",
            "ready_s",
            "not_ready_s",
            "wrapup_s",
            "reserved_s",
            "not_ready_reasons",
        ];
        let rows = day.agents.iter().map(|r| {
            [
                date(day.day),
                r.sender.clone(),
                r.agent.clone(),
                r.extension.clone().unwrap_or_default(),
                r.calls_handled.to_string(),
                format!("{:.0}", r.talk_s),
                format!("{:.0}", r.hold_s),
                format!("{:.0}", r.ready_s),
                format!("{:.0}", r.not_ready_s),
                format!("{:.0}", r.wrapup_s),
                format!("{:.0}", r.reserved_s),
                reasons(&r.not_ready_reasons),
            ]
        });
        (
            spreadsheet::csv_chunk(Some(&COLUMNS[..]), rows),
            "agents.csv",
        )
    } else {
        const COLUMNS: [&str; 8] = [
            "hour",
            "sender",
            "csq",
            "offered",
            "answered",
            "abandoned",
            "average_wait_s",
            "longest_wait_s",
        ];
        let rows = day.csqs.iter().map(|q| {
            [
                q.hour.to_rfc3339(),
                q.sender.clone(),
                q.csq.to_string(),
                q.offered.to_string(),
                q.answered.to_string(),
                q.abandoned.to_string(),
                q.average_wait_s
                    .map(|w| format!("{w:.1}"))
                    .unwrap_or_default(),
                q.longest_wait_s
                    .map(|w| format!("{w:.1}"))
                    .unwrap_or_default(),
            ]
        });
        (spreadsheet::csv_chunk(Some(&COLUMNS[..]), rows), "csqs.csv")
    };
    spreadsheet::as_download(Body::from(body).into_response(), name)
}
