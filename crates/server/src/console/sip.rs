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

use super::stats::{DAY_MS, asked, date};
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
        form.filters.noprint method="get" action="/sip" {
            a #prev-day href=(a.link("/sip", Timestamp(a.day.0 - DAY_MS))) { "← " (t(l, "stats_prev")) } " "
            label.inline { (t(l, "stats_day")) " " input #day type="date" name="day" value=(date(a.day)); }
            label.inline { (t(l, "calls_sender")) " " input name="sender" value=(a.sender.as_deref().unwrap_or("")); }
            button type="submit" { (t(l, "search")) } " "
            a #next-day href=(a.link("/sip", Timestamp(a.day.0 + DAY_MS))) { (t(l, "stats_next")) " →" }
        }
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
                    td.time { (time(c.ended_at)) } td { (detail(c, "released_by")) }
                    td { (call_link(c)) }
                }
            }
        }
        h2 #failed-title { (t(l, "sip_failed")) " (" (failed.matching) ")" }
        table #failed {
            tr {
                th { (t(l, "sip_caller")) } th { (t(l, "sip_dialed")) } th { (t(l, "sip_destination")) }
                th { (t(l, "sip_setup")) } th { (t(l, "sip_release")) } th { (t(l, "sip_status")) }
                th { (t(l, "sip_cause")) } th { (t(l, "calls_disposition")) } th { (t(l, "sip_call")) }
            }
            @for c in &failed.calls {
                tr {
                    td { (text(&c.caller)) } td { (text(&c.dialed)) } td { (text(&c.destination)) }
                    td.time { (c.started_at.to_rfc3339()) } td.time { (time(c.ended_at)) }
                    td { (detail(c, "status")) } td { (detail(c, "q850_cause")) }
                    td { (c.disposition.map(|d| d.as_str()).unwrap_or("")) }
                    td { (call_link(c)) }
                }
            }
        }
        p.help { (t(l, "sip_help")) }
    };
    page(l, t(l, "sip_title"), Some(&signed), body).into_response()
}
