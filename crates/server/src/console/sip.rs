//! The SIP CDR tables of seed 004 (issue 6): for a day, the "Basic call"
//! table (calls the callee answered) and the "Failed call" table (the
//! rest: unreachable, busy, not answered, cancelled), with the half-call
//! items: caller, dialed and destination numbers, duration, setup, connect
//! and release times, who released and the cause. A call's page shows its
//! O-CDR and T-CDR. Every role may read them.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use cdrhub_model::{Call, Timestamp};
use cdrhub_store::{CallFilter, CallSort};
use maud::{Markup, html};

use super::stats::{Asked, DAY_MS, asked, date};
use super::{Signed, page, t};
use crate::AppState;
use crate::api::blocking;

/// Rows of each table at most.
const ROWS: usize = 500;

fn time(t: Option<Timestamp>) -> String {
    t.map(|t| t.to_rfc3339()).unwrap_or_default()
}

fn text(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("")
}

fn detail(c: &Call, key: &str) -> String {
    match &c.details[key] {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Who released the call, or that the dialog timeout closed it.
fn released_by(l: &str, c: &Call) -> String {
    if c.flags
        .iter()
        .any(|f| f == cdrhub_correlate::sip::TIMED_OUT_FLAG)
    {
        t(l, "sip_timed_out").to_owned()
    } else {
        detail(c, "released_by")
    }
}

/// The day (with the days before and after) and capture agent a SIP page
/// shows.
fn day_form(l: &str, a: &Asked, base: &str) -> Markup {
    html! {
        form.filters.noprint method="get" action=(base) {
            a #prev-day href=(a.link(base, Timestamp(a.day.0 - DAY_MS))) { "← " (t(l, "stats_prev")) } " "
            label.inline { (t(l, "stats_day")) " " input #day type="date" name="day" value=(date(a.day)); }
            label.inline { (t(l, "calls_sender")) " " input name="sender" value=(a.sender.as_deref().unwrap_or("")); }
            button type="submit" { (t(l, "search")) } " "
            a #next-day href=(a.link(base, Timestamp(a.day.0 + DAY_MS))) { (t(l, "stats_next")) " →" }
        }
    }
}

fn call_link(c: &Call) -> Markup {
    html! { a href={ "/calls/" (c.id) } { (date(c.started_at)) } }
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
        Err(e) => return super::bad_request_page(&signed, "sip_title", &e),
    };
    let store = app.store.clone();
    let (day, sender) = (a.day, a.sender.clone());
    let table = move |answered: bool| CallFilter {
        from: Some(day),
        to: Some(Timestamp(day.0 + DAY_MS)),
        source: Some(cdrhub_model::SOURCE_SIP.to_owned()),
        sender: sender.clone(),
        answered: Some(answered),
        limit: ROWS,
        ..CallFilter::default()
    };
    let loaded = blocking(move || {
        let basic = store.search_calls(&table(true), CallSort::StartedAt, false, 0)?;
        let failed = store.search_calls(&table(false), CallSort::StartedAt, false, 0)?;
        Ok((basic, failed))
    })
    .await;
    let (basic, failed) = match loaded {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let body = html! {
        (day_form(l, &a, "/sip"))
        h2 #basic-title { (t(l, "sip_basic")) " (" (basic.matching) ")" }
        table #basic {
            tr {
                th { (t(l, "sip_caller")) } th { (t(l, "sip_dialed")) } th { (t(l, "sip_destination")) }
                th { (t(l, "sip_duration")) } th { (t(l, "sip_setup")) } th { (t(l, "sip_connect")) }
                th { (t(l, "sip_release")) } th { (t(l, "sip_released_by")) } th { (t(l, "sip_call")) }
            }
            @for c in &basic.calls {
                tr {
                    td { (text(&c.caller)) } td { (text(&c.dialed)) } td { (text(&c.destination)) }
                    td.num { (c.talk_s.map(|s| s.to_string()).unwrap_or_default()) }
                    td.time { (c.started_at.to_rfc3339()) } td.time { (time(c.answered_at)) }
                    td.time { (time(c.ended_at)) } td { (released_by(l, c)) }
                    td { (call_link(c)) }
                }
            }
        }
        h2 #failed-title { (t(l, "sip_failed")) " (" (failed.matching) ")" }
        table #failed {
            tr {
                th { (t(l, "sip_caller")) } th { (t(l, "sip_dialed")) } th { (t(l, "sip_destination")) }
                th { (t(l, "sip_setup")) } th { (t(l, "sip_release")) } th { (t(l, "sip_released_by")) } th { (t(l, "sip_status")) }
                th { (t(l, "sip_cause")) } th { (t(l, "calls_disposition")) } th { (t(l, "sip_call")) }
            }
            @for c in &failed.calls {
                tr {
                    td { (text(&c.caller)) } td { (text(&c.dialed)) } td { (text(&c.destination)) }
                    td.time { (c.started_at.to_rfc3339()) } td.time { (time(c.ended_at)) }
                    td { (released_by(l, c)) } td { (detail(c, "status")) } td { (detail(c, "q850_cause")) }
                    td { (c.disposition.map(|d| d.as_str()).unwrap_or("")) }
                    td { (call_link(c)) }
                }
            }
        }
        p.help { (t(l, "sip_help")) " " a href="/sip/registrations" { (t(l, "reg_title")) } }
    };
    page(l, t(l, "sip_title"), Some(&signed), body).into_response()
}

/// Seed 002's Register Status (the extensions registered now, refreshed
/// every 3 s) and Register Statistic Report (the peak registered per hour
/// of a day).
pub(crate) async fn registrations(
    State(app): State<AppState>,
    signed: Signed,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let l = signed.user.language.clone();
    let l = l.as_str();
    let a = match asked(&query) {
        Ok(a) => a,
        Err(e) => return super::bad_request_page(&signed, "reg_title", &e),
    };
    let store = app.store.clone();
    let (day, sender) = (a.day, a.sender.clone());
    let now = Timestamp::now();
    let loaded = blocking(move || {
        let current = store.sip_registrations(now, sender.as_deref())?;
        let hours = store.register_hours(day, sender.as_deref())?;
        Ok((current, hours))
    })
    .await;
    let (current, hours) = match loaded {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let base = "/sip/registrations";
    let body = html! {
        h2 #status-title { (t(l, "reg_status")) " (" (current.len()) ")" }
        table #registered {
            tr {
                th { (t(l, "reg_extension")) } th { (t(l, "reg_login")) } th { (t(l, "reg_state")) }
                th { (t(l, "reg_from")) } th { (t(l, "reg_contact")) } th { (t(l, "reg_expires")) }
                th { (t(l, "reg_user_agent")) } th { (t(l, "calls_sender")) }
            }
            @for r in &current {
                tr {
                    td { (r.extension) } td.time { (r.login_at.to_rfc3339()) }
                    td { (t(l, "reg_registered")) } td { (r.source.as_deref().unwrap_or("")) }
                    td { (r.contact) } td.time { (r.expires_at.to_rfc3339()) }
                    td { (r.user_agent.as_deref().unwrap_or("")) } td { (r.sender) }
                }
            }
        }
        p.help { (t(l, "reg_status_help")) }
        (day_form(l, &a, base))
        h2 #stats-title { (t(l, "reg_statistic")) " " (date(a.day)) }
        table #register-hours {
            tr { th { (t(l, "reg_period")) } th { (t(l, "reg_peak")) } th { (t(l, "reg_logins")) } }
            @for h in &hours {
                @let hour = (h.hour.0 - a.day.0) / 3_600_000;
                tr {
                    td { (format!("{hour:02}-{:02}", hour + 1)) }
                    td.num { (h.peak) } td.num { (h.logins) }
                }
            }
        }
        p.help { (t(l, "reg_help")) }
        // Reloads the page every 3 seconds, as the seed's Register Status
        // does, while it shows today.
        script src=(super::assets::SIP_JS) defer {}
    };
    page(l, t(l, "reg_title"), Some(&signed), body).into_response()
}
