//! The audit log (seed 002, "Web Provisioning Report"): every login,
//! logout, failed login and change, searchable, a page at a time, and the
//! whole matching set as CSV. Admin role only.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use cdrhub_model::{Role, Timestamp};
use cdrhub_store::{AuditFilter, AuditRecord};
use maud::html;
use serde::Deserialize;

use super::{Signed, page, t};
use crate::AppState;
use crate::api::blocking;
use crate::spreadsheet;

/// Rows per page (seed 002, "Display Data Rows per Page").
const ROWS_PER_PAGE: u64 = 15;
/// Most rows in one CSV export.
const MAX_EXPORT_ROWS: u64 = 1_000_000;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AuditQuery {
    /// First day, `YYYY-MM-DD` (UTC).
    from: Option<String>,
    /// Last day, included.
    to: Option<String>,
    q: Option<String>,
    page: Option<u64>,
}

/// The start of a `YYYY-MM-DD` day in UTC, `days` later.
fn day_start(date: Option<&str>, days: i64) -> Result<Option<Timestamp>, String> {
    match date.map(str::trim).filter(|d| !d.is_empty()) {
        None => Ok(None),
        Some(d) => Timestamp::parse_date(d)
            .map(|t| Some(Timestamp(t.0 + days * 86_400_000)))
            .map_err(|e| e.to_string()),
    }
}

impl AuditQuery {
    fn filter(&self, limit: u64) -> Result<AuditFilter, String> {
        Ok(AuditFilter {
            from: day_start(self.from.as_deref(), 0)?,
            to: day_start(self.to.as_deref(), 1)?,
            q: self.q.clone().filter(|q| !q.trim().is_empty()),
            offset: self.page.unwrap_or(1).saturating_sub(1) * limit,
            limit,
        })
    }

    /// This query's parameters for a link, on page `page`.
    fn link(&self, base: &str, page: Option<u64>) -> String {
        let mut pairs = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [("from", &self.from), ("to", &self.to), ("q", &self.q)] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                pairs.append_pair(k, v);
            }
        }
        if let Some(p) = page {
            pairs.append_pair("page", &p.to_string());
        }
        let query = pairs.finish();
        if query.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{query}")
        }
    }
}

pub(crate) async fn page_view(
    State(app): State<AppState>,
    signed: Signed,
    Query(query): Query<AuditQuery>,
) -> Response {
    if let Err(refused) = signed.require(Role::Admin) {
        return *refused;
    }
    let l = signed.user.language.clone();
    let l = l.as_str();
    let (found, error) = match query.filter(ROWS_PER_PAGE) {
        Ok(filter) => {
            let store = app.store.clone();
            match blocking(move || store.accounts().audit_log(&filter)).await {
                Ok(found) => (Some(found), None),
                Err(e) => return e.into_response(),
            }
        }
        Err(e) => (None, Some(e)),
    };
    let page_no = query.page.unwrap_or(1).max(1);
    page(
        l,
        t(l, "audit_title"),
        Some(&signed),
        html! {
            form.filters method="get" action="/audit" {
                label.inline { (t(l, "from")) " " input type="date" name="from" value=[query.from.as_deref()]; }
                label.inline { (t(l, "to")) " " input type="date" name="to" value=[query.to.as_deref()]; }
                label.inline { (t(l, "search")) " " input type="search" name="q" value=[query.q.as_deref()]; }
                button type="submit" { (t(l, "search")) }
                " " a href=(query.link("/audit.csv", None)) { (t(l, "export_csv")) }
            }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            @if let Some(found) = found {
                p #counts { (found.matching) " " (t(l, "of")) " " (found.total) " " (t(l, "entries")) }
                table #audit {
                    tr {
                        th { (t(l, "audit_time")) } th { (t(l, "audit_user")) } th { (t(l, "role")) }
                        th { (t(l, "audit_ip")) } th { (t(l, "audit_operation")) } th { (t(l, "audit_target")) }
                    }
                    @for e in &found.entries {
                        tr {
                            td { (e.at.to_rfc3339()) } td { (e.actor) } td { (e.role.as_deref().unwrap_or("")) }
                            td { (e.client_ip.as_deref().unwrap_or("")) } td { (e.operation) }
                            td { (e.target.as_deref().unwrap_or("")) }
                        }
                    }
                }
                p.pager {
                    @if page_no > 1 { a href=(query.link("/audit", Some(page_no - 1))) { (t(l, "previous")) } " " }
                    @if page_no * ROWS_PER_PAGE < found.matching { a href=(query.link("/audit", Some(page_no + 1))) { (t(l, "next")) } }
                }
            }
        },
    )
    .into_response()
}

const CSV_COLUMNS: [&str; 6] = ["time", "user", "role", "client_ip", "operation", "target"];

fn csv_row(e: &AuditRecord) -> [String; 6] {
    let text = |s: Option<&str>| spreadsheet::text_cell(s.unwrap_or(""));
    [
        e.at.to_rfc3339(),
        text(Some(&e.actor)),
        text(e.role.as_deref()),
        text(e.client_ip.as_deref()),
        text(Some(&e.operation)),
        text(e.target.as_deref()),
    ]
}

/// Every matching entry as CSV.
pub(crate) async fn export(
    State(app): State<AppState>,
    signed: Signed,
    Query(query): Query<AuditQuery>,
) -> Response {
    if let Err(refused) = signed.require(Role::Admin) {
        return *refused;
    }
    let filter = match query.filter(MAX_EXPORT_ROWS) {
        Ok(f) => AuditFilter { offset: 0, ..f },
        Err(e) => return (axum::http::StatusCode::BAD_REQUEST, e).into_response(),
    };
    let store = app.store.clone();
    match blocking(move || store.accounts().audit_log(&filter)).await {
        Ok(found) => {
            let body =
                spreadsheet::csv_chunk(Some(&CSV_COLUMNS[..]), found.entries.iter().map(csv_row));
            spreadsheet::as_download(Body::from(body).into_response(), "audit.csv")
        }
        Err(e) => e.into_response(),
    }
}
