//! The gateway pages (issue 5; seed 001): the registered gateways and the
//! gateway log with its search, each gateway's CDR report with the seed's
//! columns and filters, and its real-time events. Every role may read them.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use cdrhub_model::Timestamp;
use cdrhub_store::{GatewayLogKind, GatewayReportFilter};
use maud::html;

use super::{Signed, page, t};
use crate::AppState;
use crate::api::blocking;
use crate::api::gateways::{
    REPORT_COLUMNS, csv_response, parse_log_filter, parse_report_query, report_cells,
};

/// The query without its empty fields: a form sends every field.
fn filled(query: HashMap<String, String>) -> HashMap<String, String> {
    query
        .into_iter()
        .map(|(k, v)| (k, v.trim().to_owned()))
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

fn link(base: &str, query: &HashMap<String, String>, set: &[(&str, String)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    let mut keys: Vec<&String> = query.keys().collect();
    keys.sort();
    for k in keys {
        if !set.iter().any(|(s, _)| s == k) {
            q.append_pair(k, &query[k]);
        }
    }
    for (k, v) in set {
        q.append_pair(k, v);
    }
    format!("{base}?{}", q.finish())
}

fn path_segment(name: &str) -> String {
    form_urlencoded::byte_serialize(name.as_bytes()).collect()
}

/// A clock offset people can read: `+12 s`, `-9822 d 11:24:30`.
fn clock_offset(s: i64) -> String {
    let sign = if s < 0 { '-' } else { '+' };
    let a = s.unsigned_abs();
    if a < 60 {
        format!("{sign}{a} s")
    } else if a < 86_400 {
        format!("{sign}{}:{:02}:{:02}", a / 3600, a / 60 % 60, a % 60)
    } else {
        format!(
            "{sign}{} d {}:{:02}:{:02}",
            a / 86_400,
            a / 3600 % 24,
            a / 60 % 60,
            a % 60
        )
    }
}

fn time(t: Option<Timestamp>) -> String {
    t.map(|t| t.to_rfc3339()).unwrap_or_default()
}

/// `/gateways`: the gateway list, then the gateway log.
pub(crate) async fn list(
    State(app): State<AppState>,
    signed: Signed,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let l = signed.user.language.clone();
    let l = l.as_str();
    let query = filled(query);
    let filter = match parse_log_filter(&query) {
        Ok(f) => f,
        Err(e) => return super::bad_request_page(&signed, "gw_title", &e.to_string()),
    };
    let store = app.store.clone();
    let loaded = blocking(move || Ok((store.gateways()?, store.gateway_log(&filter)?))).await;
    let (gateways, log) = match loaded {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let offset: u64 = query
        .get("offset")
        .and_then(|o| o.parse().ok())
        .unwrap_or(0);
    let shown = log.entries.len() as u64;
    let body = html! {
        h2 { (t(l, "gw_registered")) }
        @if gateways.is_empty() {
            p.help { (t(l, "gw_none")) }
        } @else {
            table #gateways {
                tr {
                    th { (t(l, "gw_gateway")) } th { (t(l, "gw_source")) } th { "MAC" } th { (t(l, "gw_address")) }
                    th { (t(l, "gw_public_address")) } th { "FXS" } th { "FXO" } th { "ISDN" } th { "CallRef" }
                    th { (t(l, "gw_clock")) } th { (t(l, "gw_clock_offset")) } th { (t(l, "gw_last_login")) }
                    th { (t(l, "gw_last_seen")) } th { (t(l, "cc_state")) }
                }
                @for g in &gateways {
                    tr.gateway {
                        td { a href={ "/gateways/" (path_segment(&g.name)) } { (g.gateway_id.as_deref().unwrap_or(&g.name)) } }
                        td { (g.source) }
                        td { (g.mac.as_deref().unwrap_or("")) }
                        td { (g.address.as_deref().unwrap_or("")) }
                        td { (g.public_address.as_deref().unwrap_or("")) }
                        td.num { (g.fxs.map(|n| n.to_string()).unwrap_or_default()) }
                        td.num { (g.fxo.map(|n| n.to_string()).unwrap_or_default()) }
                        td.num { (g.isdn.map(|n| n.to_string()).unwrap_or_default()) }
                        td.num { (g.call_ref.map(|n| n.to_string()).unwrap_or_default()) }
                        td.time { (g.clock.as_deref().unwrap_or("")) }
                        td.num class=[g.clock_offset_s.filter(|s| s.abs() > 300).map(|_| "alarm")] {
                            (g.clock_offset_s.map(clock_offset).unwrap_or_default())
                        }
                        td.time { (time(g.last_login)) }
                        td.time { (time(g.last_seen)) }
                        td.state { (g.state) }
                    }
                }
            }
        }
        h2 #log { (t(l, "gw_log")) }
        form.filters.noprint method="get" action="/gateways" {
            label.inline { (t(l, "gw_gateway")) " "
                select name="gateway" {
                    option value="" { (t(l, "all")) }
                    @for g in gateways.iter().filter(|g| g.source == cdrhub_model::SOURCE_FEED) {
                        option value=(g.name) selected[query.get("gateway") == Some(&g.name)] { (g.name) }
                    }
                }
            }
            label.inline { (t(l, "gw_log_kind")) " "
                select name="kind" {
                    option value="" { (t(l, "all")) }
                    @for k in GatewayLogKind::ALL {
                        option value=(k.as_str()) selected[query.get("kind").map(String::as_str) == Some(k.as_str())] { (k.as_str()) }
                    }
                }
            }
            label.inline { (t(l, "gw_log_text")) " " input name="q" value=(query.get("q").map(String::as_str).unwrap_or("")); }
            label.inline { (t(l, "from")) " " input type="date" name="from" value=(query.get("from").map(String::as_str).unwrap_or("")); }
            label.inline { (t(l, "to")) " " input type="date" name="to" value=(query.get("to").map(String::as_str).unwrap_or("")); }
            button type="submit" { (t(l, "search")) }
        }
        p #log-count { (log.total) " " (t(l, "gw_log_lines")) }
        table #gateway-log {
            tr { th { (t(l, "gw_time")) } th { (t(l, "gw_log_kind")) } th { (t(l, "gw_log_text")) } }
            @for e in &log.entries {
                tr { td.time { (e.at.to_rfc3339()) } td { (e.kind.as_str()) } td { (e.text) } }
            }
        }
        p.pager.noprint {
            @if offset > 0 {
                a href=(link("/gateways", &query, &[("offset", offset.saturating_sub(100).to_string())])) { "← " (t(l, "previous")) }
            }
            @if offset + shown < log.total {
                a #older href=(link("/gateways", &query, &[("offset", (offset + shown).to_string())])) { (t(l, "next")) " →" }
            }
        }
    };
    page(l, t(l, "gw_title"), Some(&signed), body).into_response()
}

/// `/gateways/{name}`: the seed's CDR report of one gateway.
pub(crate) async fn report(
    State(app): State<AppState>,
    signed: Signed,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let l = signed.user.language.clone();
    let l = l.as_str();
    let query = filled(query);
    let mut asked = query.clone();
    asked.insert("limit".into(), "100".into());
    let q = match parse_report_query(&name, &asked, false) {
        Ok(q) => q,
        Err(e) => return super::bad_request_page(&signed, "gw_report", &e.to_string()),
    };
    let store = app.store.clone();
    let q2 = q.clone();
    let report = match blocking(move || store.gateway_report(&q2)).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let day = |t: Timestamp| t.to_rfc3339()[..10].to_owned();
    let base = format!("/gateways/{}", path_segment(&name));
    let shown = report.rows.len() as u64;
    let body = html! {
        p.noprint {
            a href="/gateways" { "← " (t(l, "gw_title")) } " · "
            a #events-link href={ (base) "/events" } { (t(l, "gw_events")) }
        }
        form.filters.noprint method="get" action=(base) {
            label.inline { (t(l, "from")) " " input #from type="date" name="from" value=(day(q.from)); }
            label.inline { (t(l, "to")) " " input #to type="date" name="to" value=(day(Timestamp(q.to.0 - 1))); }
            @for f in GatewayReportFilter::ALL {
                label.inline {
                    input type="radio" name="filter" value=(f.as_str()) checked[q.filter == f];
                    " " (f.label())
                }
            }
            button type="submit" { (t(l, "search")) } " · "
            a #report-csv href=(link(&format!("{base}/report.csv"), &query, &[])) { (t(l, "export_csv")) }
        }
        p #report-count { (report.filtered) " / " (report.total) " " (t(l, "gw_records")) }
        table #report {
            tr { @for c in REPORT_COLUMNS { th { (c) } } }
            @for r in &report.rows {
                @let cells = report_cells(r);
                tr {
                    @for (n, cell) in cells.iter().enumerate() {
                        @if n == 12 {
                            td { a href={ "/calls/" (path_segment(cell)) } { (t(l, "gw_call")) } }
                        } @else {
                            td { (cell) }
                        }
                    }
                }
            }
        }
        p.pager.noprint {
            @if q.offset > 0 {
                a href=(link(&base, &query, &[("offset", q.offset.saturating_sub(100).to_string())])) { "← " (t(l, "previous")) }
            }
            @if q.offset + shown < report.filtered {
                a #next-page href=(link(&base, &query, &[("offset", (q.offset + shown).to_string())])) { (t(l, "next")) " →" }
            }
        }
        p.help { (t(l, "gw_report_help")) }
    };
    let title = format!("{} · {name}", t(l, "gw_report"));
    page(l, &title, Some(&signed), body).into_response()
}

/// The report as CSV, for the console's session.
pub(crate) async fn report_csv(
    State(app): State<AppState>,
    _signed: Signed,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let q = match parse_report_query(&name, &filled(query), true) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    let store = app.store.clone();
    match blocking(move || store.gateway_report(&q)).await {
        Ok(r) => csv_response(&r.rows),
        Err(e) => e.into_response(),
    }
}

/// `/gateways/{name}/events`: the gateway's call events as they come, in
/// the seed's real-time columns; the page asks for new ones every 2 s.
pub(crate) async fn events(
    State(app): State<AppState>,
    signed: Signed,
    Path(name): Path<String>,
) -> Response {
    let l = signed.user.language.clone();
    let l = l.as_str();
    let store = app.store.clone();
    let gateway = name.clone();
    let events = match blocking(move || store.gateway_events(Some(&gateway), 100)).await {
        Ok(e) => e,
        Err(e) => return e.into_response(),
    };
    let api = format!("/api/v1/gateways/{}/events?limit=100", path_segment(&name));
    let body = html! {
        p.noprint { a href={ "/gateways/" (path_segment(&name)) } { "← " (t(l, "gw_report")) } }
        table #events data-src=(api) {
            thead { tr {
                th { (t(l, "gw_time")) } th { (t(l, "gw_clock")) } th { "Call-Ref" } th { "#" } th { "Event" }
                th { "Dialed" } th { "Caller-ID" } th { "Info" } th { "P-Port" }
            } }
            tbody #event-rows {
                @for e in &events {
                    tr {
                        td.time { (e.received_at.to_rfc3339()) } td.time { (e.gateway_clock) }
                        td { (e.call_ref) } td { (e.port.map(|p| p.to_string()).unwrap_or_default()) }
                        td { (e.event) } td { (e.dialed.as_deref().unwrap_or("")) }
                        td { (e.caller_id.as_deref().unwrap_or("")) } td { (e.info.as_deref().unwrap_or("")) }
                        td { (e.pstn_port.map(|p| p.to_string()).unwrap_or_default()) }
                    }
                }
            }
        }
        p.help { (t(l, "gw_events_help")) }
        // Refills the event rows from `data-src` every 2 seconds.
        script src=(super::assets::GATEWAY_EVENTS_JS) defer {}
    };
    let title = format!("{} · {name}", t(l, "gw_events"));
    page(l, &title, Some(&signed), body).into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn clock_offsets_read_as_days_and_hours() {
        assert_eq!(super::clock_offset(12), "+12 s");
        assert_eq!(super::clock_offset(-3_725), "-1:02:05");
        assert_eq!(super::clock_offset(-848_685_870), "-9822 d 18:04:30");
    }
}
