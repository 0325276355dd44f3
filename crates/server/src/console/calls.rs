//! CDR search and the call page (seeds 001 and 004): a date range, source
//! and sender, the call types of a gateway's CDR report, answered ("Basic
//! call") or failed ("Failed call"), a party search; total and filtered
//! counts, pages, sortable columns and the CSV of exactly the filtered set.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cdrhub_model::{Call, FORCED_END_FLAG, Leg, Role, Timestamp};
use cdrhub_store::{CallFilter, CallSort, CallType};
use maud::{Markup, html};
use serde_json::Value;

use super::{Signed, page, t};
use crate::AppState;
use crate::api::blocking;
use crate::api::calls::parse_filter;

/// Rows per page (seed 002, "Display Data Rows per Page").
const ROWS_PER_PAGE: u64 = 15;

/// The search as the form sent it. Empty fields are no filter.
struct Search {
    params: Vec<(String, String)>,
    sort: CallSort,
    descending: bool,
    page: u64,
}

impl Search {
    fn from_query(query: HashMap<String, String>) -> Search {
        let mut params: Vec<(String, String)> = query
            .into_iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .collect();
        params.sort();
        let take = |params: &mut Vec<(String, String)>, key: &str| {
            params
                .iter()
                .position(|(k, _)| k == key)
                .map(|i| params.remove(i).1)
        };
        let sort = take(&mut params, "sort")
            .and_then(|s| CallSort::ALL.into_iter().find(|c| c.as_str() == s))
            .unwrap_or_default();
        let descending = take(&mut params, "order").as_deref() != Some("asc");
        let page = take(&mut params, "page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(1u64)
            .max(1);
        Search {
            params,
            sort,
            descending,
            page,
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The store's filter. Days are UTC dates, `to` included; `result` is
    /// answered or failed.
    fn filter(&self) -> Result<CallFilter, String> {
        let mut api = HashMap::new();
        for (key, value) in &self.params {
            match key.as_str() {
                "from" | "to" => {
                    let day = Timestamp::parse_date(value).map_err(|e| format!("{key} {e}"))?;
                    // `to` is the last day searched: calls before the next.
                    let days = if key == "to" { 1 } else { 0 };
                    api.insert(
                        key.clone(),
                        Timestamp(day.0 + days * 86_400_000).to_rfc3339(),
                    );
                }
                "result" => {
                    let answered = match value.as_str() {
                        "answered" => "true",
                        "failed" => "false",
                        other => return Err(format!("result {other:?} is not answered or failed")),
                    };
                    api.insert("answered".to_owned(), answered.to_owned());
                }
                _ => {
                    api.insert(key.clone(), value.clone());
                }
            }
        }
        let mut filter = parse_filter(&api, true).map_err(|e| e.to_string())?;
        filter.limit = ROWS_PER_PAGE as usize;
        Ok(filter)
    }

    /// The API's parameters for the same filter (the CSV export).
    fn api_query(&self) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        if let Ok(f) = self.filter() {
            let pairs = [
                ("from", f.from.map(|t| t.to_rfc3339())),
                ("to", f.to.map(|t| t.to_rfc3339())),
                ("source", f.source),
                ("sender", f.sender),
                ("kind", f.kind),
                ("answered", f.answered.map(|a| a.to_string())),
                ("call_type", f.call_type.map(|c| c.as_str().to_owned())),
                ("q", f.q),
            ];
            for (k, v) in pairs {
                if let Some(v) = v {
                    out.append_pair(k, &v);
                }
            }
        }
        out.finish()
    }

    /// A link to this search with other sort or page.
    fn link(&self, sort: CallSort, descending: bool, page: u64) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.params {
            out.append_pair(k, v);
        }
        out.append_pair("sort", sort.as_str());
        out.append_pair("order", if descending { "desc" } else { "asc" });
        out.append_pair("page", &page.to_string());
        format!("/calls?{}", out.finish())
    }
}

/// `2026-11-01 10:00:03` (UTC), or nothing.
fn time(t: Option<Timestamp>) -> String {
    t.map(|t| {
        t.to_rfc3339()
            .replacen('T', " ", 1)
            .trim_end_matches('Z')
            .to_owned()
    })
    .unwrap_or_default()
}

fn call_type_label(t: CallType) -> &'static str {
    match t {
        CallType::CallIn => "Call In",
        CallType::CallOut => "Call Out",
        CallType::CallOutFailed => "Call Out Failed",
        CallType::CallInReject => "Call In Reject",
        CallType::OnlyPstn => "Only PSTN",
        CallType::Other => "Other",
    }
}

pub(crate) async fn search(
    State(app): State<AppState>,
    signed: Signed,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let search = Search::from_query(query);
    let store = app.store.clone();
    let senders = match blocking(move || store.senders()).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let (found, error) = match search.filter() {
        Ok(filter) => {
            let store = app.store.clone();
            let (sort, descending) = (search.sort, search.descending);
            let offset = (search.page - 1) * ROWS_PER_PAGE;
            match blocking(move || store.search_calls(&filter, sort, descending, offset)).await {
                Ok(found) => (Some(found), None),
                Err(e) => return e.into_response(),
            }
        }
        Err(e) => (None, Some(e)),
    };
    let l = signed.user.language.clone();
    let l = l.as_str();
    let mut sources: Vec<&str> = senders.iter().map(|s| s.source.as_str()).collect();
    sources.sort_unstable();
    sources.dedup();
    let selected = |key: &str, value: &str| search.get(key) == Some(value);
    let header = |sort: CallSort, label: &str| {
        let descending = if search.sort == sort {
            !search.descending
        } else {
            sort == CallSort::StartedAt
        };
        let mark = match (search.sort == sort, search.descending) {
            (true, true) => " ▼",
            (true, false) => " ▲",
            _ => "",
        };
        html! { th { a href=(search.link(sort, descending, 1)) { (t(l, label)) (mark) } } }
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let body = html! {
        form.filters.noprint method="get" action="/calls" {
            label.inline { (t(l, "from")) " " input #from type="date" name="from" value=[search.get("from")]; }
            label.inline { (t(l, "to")) " " input #to type="date" name="to" value=[search.get("to")]; }
            label.inline { (t(l, "calls_source")) " "
                select #source name="source" {
                    option value="" { (t(l, "all")) }
                    @for s in &sources { option value=(s) selected[selected("source", s)] { (s) } }
                }
            }
            label.inline { (t(l, "calls_sender")) " "
                select #sender name="sender" {
                    option value="" { (t(l, "all")) }
                    @for s in &senders { option value=(s.sender) selected[selected("sender", &s.sender)] { (s.sender) } }
                }
            }
            label.inline { (t(l, "calls_type")) " "
                select #call_type name="call_type" {
                    option value="" { (t(l, "all")) }
                    @for c in CallType::ALL { option value=(c.as_str()) selected[selected("call_type", c.as_str())] { (call_type_label(c)) } }
                }
            }
            label.inline { (t(l, "calls_result")) " "
                select #result name="result" {
                    option value="" { (t(l, "all")) }
                    option value="answered" selected[selected("result", "answered")] { (t(l, "calls_basic")) }
                    option value="failed" selected[selected("result", "failed")] { (t(l, "calls_failed")) }
                }
            }
            label.inline { (t(l, "calls_kind")) " " input #kind type="search" name="kind" size="12" placeholder="click_to_call" value=[search.get("kind")]; }
            label.inline { (t(l, "calls_party")) " " input #q type="search" name="q" value=[search.get("q")]; }
            button type="submit" { (t(l, "search")) }
        }
        @if let Some(e) = &error { p.error role="alert" { (e) } }
        @if let Some(found) = &found {
            p #counts {
                (t(l, "calls_total")) ": " b #total { (found.total) } " · "
                (t(l, "calls_filtered")) ": " b #matching { (found.matching) }
                span.noprint {
                    @if signed.user.role.allows(Role::Supervisor) {
                        " · " a #export href={ "/api/v1/calls.csv?" (search.api_query()) } { (t(l, "export_csv")) }
                    }
                    " · " button type="button" data-print { (t(l, "print")) }
                }
            }
            table #calls {
                tr {
                    (header(CallSort::StartedAt, "calls_started"))
                    (header(CallSort::Sender, "calls_sender"))
                    th { (t(l, "calls_kind")) }
                    (header(CallSort::Caller, "calls_caller"))
                    (header(CallSort::Dialed, "calls_dialed"))
                    (header(CallSort::Destination, "calls_destination"))
                    th { (t(l, "calls_answered")) }
                    (header(CallSort::Duration, "calls_duration"))
                    th { (t(l, "calls_talk")) }
                    (header(CallSort::Disposition, "calls_disposition"))
                    th { (t(l, "calls_legs")) }
                }
                @for c in &found.calls { (call_row(c)) }
            }
            (pager(&search, found.matching))
        }
    };
    (status, page(l, t(l, "calls_title"), Some(&signed), body)).into_response()
}

fn call_row(c: &Call) -> Markup {
    html! {
        tr {
            td.time { a href={ "/calls/" (c.id) } { (time(Some(c.started_at))) } }
            td { (c.sender) }
            td { (c.kind) @if let Some(d) = c.direction { " " (d.as_str()) } }
            td { (c.caller.as_deref().unwrap_or("")) }
            td { (c.dialed.as_deref().unwrap_or("")) }
            td { (c.destination.as_deref().unwrap_or("")) }
            td.time { (time(c.answered_at)) }
            td.num { (c.duration_s.map(|d| d.to_string()).unwrap_or_default()) }
            td.num { (c.talk_s.map(|d| d.to_string()).unwrap_or_default()) }
            td { (c.disposition.map(|d| d.as_str()).unwrap_or("")) }
            td.num { (c.legs) }
        }
    }
}

/// Page links: the first, the last and those around the current one.
fn pager(search: &Search, matching: u64) -> Markup {
    let pages = matching.div_ceil(ROWS_PER_PAGE).max(1);
    let shown: Vec<u64> = (1..=pages)
        .filter(|p| *p == 1 || *p == pages || p.abs_diff(search.page) <= 3)
        .collect();
    html! {
        p.pager.noprint {
            @for (i, p) in shown.iter().enumerate() {
                @if i > 0 && shown[i - 1] + 1 != *p { "… " }
                @if *p == search.page { b { (p) } " " }
                @else { a href=(search.link(search.sort, search.descending, *p)) { (p) } " " }
            }
        }
    }
}

pub(crate) async fn call_page(
    State(app): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Response {
    let store = app.store.clone();
    let lookup = id.clone();
    let detail = match blocking(move || store.get_call(&lookup)).await {
        Ok(Some(d)) => d,
        Ok(None) => {
            let l = signed.user.language.clone();
            let text = format!("{} {id:?}", t(&l, "call_not_found"));
            return (
                StatusCode::NOT_FOUND,
                page(&l, &text, Some(&signed), html! {}),
            )
                .into_response();
        }
        Err(e) => return e.into_response(),
    };
    let l = signed.user.language.clone();
    let l = l.as_str();
    let c = &detail.call;
    let title = format!("{} {}", t(l, "call_title"), c.started_at.to_rfc3339());
    let body = html! {
        p.noprint { a href="/calls" { "← " (t(l, "calls_title")) } " · " button type="button" data-print { (t(l, "print")) } }
        table #call {
            tr { th { (t(l, "calls_sender")) } td { (c.source) " / " (c.sender) } }
            tr { th { (t(l, "calls_kind")) } td { (c.kind) @if let Some(d) = c.direction { " " (d.as_str()) } } }
            tr { th { (t(l, "calls_caller")) } td { (c.caller.as_deref().unwrap_or("")) } }
            tr { th { (t(l, "calls_dialed")) } td { (c.dialed.as_deref().unwrap_or("")) } }
            tr { th { (t(l, "calls_destination")) } td { (c.destination.as_deref().unwrap_or("")) } }
            tr { th { (t(l, "calls_started")) } td { (c.started_at.to_rfc3339()) } }
            tr { th { (t(l, "calls_answered")) } td { (time(c.answered_at)) } }
            tr { th { (t(l, "calls_ended")) } td {
                (time(c.ended_at))
                @if c.flags.iter().any(|f| f == FORCED_END_FLAG) { " (" (t(l, "force_end_done")) ")" }
                @if c.ended_at.is_none() && signed.user.role.allows(Role::Supervisor) {
                    " " (super::live::force_end_form(l, &signed.csrf, &c.id))
                }
            } }
            tr { th { (t(l, "calls_duration")) } td { (c.duration_s.map(|d| d.to_string()).unwrap_or_default()) } }
            tr { th { (t(l, "calls_disposition")) } td { (c.disposition.map(|d| d.as_str()).unwrap_or("")) " " (c.cause.as_deref().unwrap_or("")) } }
        }
        h2 { (t(l, "calls_legs")) }
        table #legs {
            tr {
                th { (t(l, "leg_remote")) } th { (t(l, "leg_local")) } th { (t(l, "leg_direction")) }
                th { (t(l, "leg_setup")) } th { (t(l, "leg_connect")) } th { (t(l, "calls_ended")) }
                th { (t(l, "calls_duration")) } th { (t(l, "leg_reason")) } th { (t(l, "calls_disposition")) }
                th { (t(l, "leg_media")) }
            }
            @for leg in &detail.leg_list { (leg_row(leg)) }
        }
        @if c.source == cdrhub_model::SOURCE_CTI { (contact_centre(l, &c.details)) }
        h2 { (t(l, "timeline")) }
        table #timeline {
            tr { th { (t(l, "audit_time")) } th { (t(l, "timeline_event")) } th { (t(l, "timeline_leg")) } th { (t(l, "timeline_received")) } }
            @for e in &detail.events {
                tr {
                    td { (e.time.to_rfc3339()) } td { (e.event_type) }
                    td { (e.source_leg_id.as_deref().unwrap_or("")) } td { (e.received_at.to_rfc3339()) }
                }
            }
        }
    };
    page(l, &title, Some(&signed), body).into_response()
}

/// A contact-centre call's CTI calls, agents, transfers and conferences,
/// and outbound contact (the details the CTI correlator keeps).
fn contact_centre(l: &str, d: &Value) -> Markup {
    let text = |v: &Value| match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let secs = |v: &Value| v.as_f64().map(|s| format!("{s:.1}")).unwrap_or_default();
    html! {
        h2 { (t(l, "cc_call_title")) }
        table #cti-calls {
            tr {
                th { "CTI call" } th { (t(l, "calls_kind")) } th { "ANI" } th { "DNIS" }
                th { (t(l, "calls_dialed")) } th { (t(l, "cc_application")) } th { "CSQ" }
                th { (t(l, "cc_queue_wait")) } th { (t(l, "cc_variables")) }
            }
            @for p in d["cti_calls"].as_array().into_iter().flatten() {
                tr {
                    td { (text(&p["call_id"])) }
                    td { (text(&p["call_type"])) @if p["last_call_type"] != p["call_type"] { " → " (text(&p["last_call_type"])) } }
                    td { (text(&p["ani"])) } td { (text(&p["dnis"])) } td { (text(&p["dialed_number"])) }
                    td { (text(&p["application_id"])) }
                    td { (p["csqs"].as_array().map(|q| q.iter().map(text).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
                    td.num { (secs(&p["queue_wait_s"])) }
                    td {
                        @for (k, v) in p["call_variables"].as_object().into_iter().flatten().chain(p["named_variables"].as_object().into_iter().flatten()) {
                            div { (k) ": " (text(v)) }
                        }
                    }
                }
            }
        }
        table #cti-agents {
            tr {
                th { (t(l, "cc_agent")) } th { "CTI call" } th { "CSQ" } th { (t(l, "cc_ring")) }
                th { (t(l, "cc_talk")) } th { (t(l, "cc_hold")) }
            }
            @for a in d["agents"].as_array().into_iter().flatten() {
                tr {
                    td { (text(&a["device"])) } td { (text(&a["call_id"])) } td { (text(&a["csq"])) }
                    td.num { (secs(&a["ring_s"])) } td.num { (secs(&a["talk_s"])) } td.num { (secs(&a["hold_s"])) }
                }
            }
        }
        @for j in d["joins"].as_array().into_iter().flatten() {
            p.joins { (text(&j["kind"])) " " (text(&j["at"])) ": " (text(&j["by"])) " → " (text(&j["to"]))
                " (" (text(&j["primary_call"])) " + " (text(&j["secondary_call"])) ")" }
        }
        @if let Some(o) = d["outbound"].as_object() {
            p #outbound { (t(l, "cc_outbound")) ": " (text(&o["campaign"])) " · " (text(&o["customer_number"])) " · " (text(&o["response"])) }
        }
    }
}

fn leg_row(leg: &Leg) -> Markup {
    html! {
        tr {
            td { (leg.remote_party.as_deref().unwrap_or("")) @if let Some(n) = &leg.display_name { br; small { (n) } } }
            td { (leg.local_address.as_deref().unwrap_or("")) }
            td { (leg.direction.as_deref().unwrap_or("")) " " (leg.leg_type.as_deref().unwrap_or("")) }
            td.time { (time(leg.started_at)) }
            td.time { (time(leg.connected_at)) }
            td.time { (time(leg.ended_at)) }
            td.num { (leg.duration_s.map(|d| d.to_string()).unwrap_or_default()) }
            td { (leg.reason.as_deref().unwrap_or("")) }
            td { (leg.disposition.map(|d| d.as_str()).unwrap_or("")) }
            td.media { (media_quality(&leg.media, &leg.alarms)) }
        }
    }
}

/// Codecs, resolution and packet statistics of each stream, and the alarms
/// with the share of the call they lasted (CMS callLegEnd).
fn media_quality(media: &Value, alarms: &[cdrhub_model::Alarm]) -> Markup {
    let streams = [
        ("rx_audio", "rx audio"),
        ("tx_audio", "tx audio"),
        ("rx_video", "rx video"),
        ("tx_video", "tx video"),
    ];
    let number = |v: &Value| v.as_f64().map(|n| format!("{n}")).unwrap_or_default();
    html! {
        @for (key, label) in streams {
            @if let Some(s) = media.get(key).filter(|s| s.is_object()) {
                div {
                    b { (label) } " " (s.get("codec").and_then(Value::as_str).unwrap_or(""))
                    @if let (Some(w), Some(h)) = (s.get("maxSizeWidth"), s.get("maxSizeHeight")) { " " (number(w)) "×" (number(h)) }
                    @if let Some(stats) = s.get("packetStatistics") {
                        @if let Some(loss) = stats.get("packetLossBursts") {
                            " · loss bursts " (number(&loss["duration"])) " s at " (number(&loss["density"])) "%"
                        }
                        @if let Some(gap) = stats.get("packetGap") {
                            " · gaps " (number(&gap["duration"])) " s at " (number(&gap["density"])) "%"
                        }
                    }
                }
            }
        }
        @for a in alarms {
            div.alarm { "⚠ " (a.alarm_type) @if let Some(p) = a.duration_percentage { " " (p) "%" } }
        }
    }
}
