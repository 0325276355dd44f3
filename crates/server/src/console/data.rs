//! Data management (seed 002, "Administration"): keeping days, the daily
//! removal's last run with the database sizes and free disk, Clear History
//! Data by category and age, backup and restore. Admin role only; every
//! change is audited.

use axum::Form;
use axum::extract::{Multipart, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use cdrhub_model::{Role, Timestamp};
use cdrhub_store::PruneRequest;
use maud::{Markup, html};
use serde::Deserialize;

use super::{Signed, page, redirect_after, t};
use crate::AppState;
use crate::api::{ApiError, blocking};
use crate::retention::{self, KeepingDays, RetentionRun};

/// The ages Clear History Data offers, in days (seed 002: "60 days ago").
const AGES: [u32; 8] = [0, 1, 7, 30, 60, 90, 180, 365];
const DEFAULT_AGE: u32 = 60;
const DAY_MS: i64 = 86_400_000;

#[derive(Deserialize)]
pub(crate) struct DataQuery {
    /// What the last form did, for the line at the top.
    done: Option<String>,
}

pub(crate) async fn view(
    State(app): State<AppState>,
    signed: Signed,
    Query(query): Query<DataQuery>,
) -> Response {
    if let Err(refused) = signed.require(Role::Admin) {
        return *refused;
    }
    let store = app.store.clone();
    let loaded = blocking(move || {
        Ok((
            KeepingDays::load(store.accounts())?,
            store.restore_pending(),
        ))
    })
    .await;
    let (days, pending) = match loaded {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let job = app.retention.view();
    let l = signed.user.language.clone();
    let l = l.as_str();
    let done = query.done.as_deref().map(|d| match d {
        "saved" => t(l, "data_saved"),
        "started" => t(l, "data_started"),
        "staged" => t(l, "data_restore_staged"),
        _ => t(l, "data_nothing"),
    });
    let body = html! {
        @if job.running.is_some() { meta http-equiv="refresh" content="3"; }
        @if let Some(done) = done { p.ok role="status" { (done) } }
        @if pending { p.alarm role="alert" { (t(l, "data_restore_pending")) } }

        h2 { (t(l, "data_keeping")) }
        form method="post" action="/admin/data/keeping" {
            input type="hidden" name="csrf" value=(signed.csrf);
            label for="cdr_days" { (t(l, "data_cdr_days")) }
            input #cdr_days name="cdr_days" type="number" min="1" max="36500" value=(days.cdr) required;
            div.help { (t(l, "data_cdr_days_help")) }
            label for="log_days" { (t(l, "data_log_days")) }
            input #log_days name="log_days" type="number" min="1" max="36500" value=(days.log) required;
            div.help { (t(l, "data_log_days_help")) }
            p { button type="submit" { (t(l, "settings_save")) } }
        }

        h2 { (t(l, "data_retention")) }
        table #retention {
            @if let Some(run) = &job.running {
                tr { th { (t(l, "data_running")) } td #running { (run_line(run)) } }
            }
            tr { th { (t(l, "data_last_run")) } td #last-run {
                @match &job.last {
                    Some(run) => (run_line(run)),
                    None => (t(l, "data_never")),
                }
            } }
            @if let Some(s) = job.storage {
                tr { th { (t(l, "data_journal_size")) } td #journal-size { (retention::bytes(s.journal_bytes)) } }
                tr { th { (t(l, "data_calls_size")) } td #calls-size { (retention::bytes(s.calls_bytes)) } }
                tr { th { (t(l, "data_disk_free")) } td #disk-free {
                    (retention::bytes(s.disk_free_bytes)) " / " (retention::bytes(s.disk_total_bytes))
                } }
            }
        }
        p.help { (t(l, "data_retention_help")) }
        form method="post" action="/admin/data/run" {
            input type="hidden" name="csrf" value=(signed.csrf);
            button type="submit" disabled[job.running.is_some()] { (t(l, "data_run_now")) }
        }

        h2 { (t(l, "data_clear")) }
        form #clear method="post" action="/admin/data/clear" {
            input type="hidden" name="csrf" value=(signed.csrf);
            (clear_row(l, "calls", "data_clear_calls"))
            (clear_row(l, "audit", "data_clear_audit"))
            (clear_row(l, "gaps", "data_clear_gaps"))
            p.help { (t(l, "data_clear_help")) }
            p { button type="submit" disabled[job.running.is_some()] { (t(l, "data_clear_apply")) } }
        }

        h2 { (t(l, "data_backup")) }
        p { a href="/admin/backup" { (t(l, "nav_backup")) } }
        p.help { (t(l, "data_backup_help")) }
        form #restore method="post" action="/admin/data/restore" enctype="multipart/form-data" {
            input type="hidden" name="csrf" value=(signed.csrf);
            label for="backup" { (t(l, "data_restore_file")) }
            input #backup name="backup" type="file" required;
            p { button type="submit" { (t(l, "data_restore")) } }
        }
        p.help { (t(l, "data_restore_help")) }
    };
    page(l, t(l, "data_title"), Some(&signed), body).into_response()
}

/// A category of Clear History Data: a checkbox and its age.
fn clear_row(l: &str, name: &str, label: &str) -> Markup {
    html! {
        div {
            label.inline { input type="checkbox" name=(name) value="on"; " " (t(l, label)) }
            select name={ (name) "_days" } aria-label={ (t(l, label)) " " (t(l, "data_older_than")) } {
                @for days in AGES {
                    option value=(days) selected[days == DEFAULT_AGE] {
                        @if days == 0 { (t(l, "data_all")) } @else { (days) " " (t(l, "data_days_ago")) }
                    }
                }
            }
        }
    }
}

fn run_line(run: &RetentionRun) -> String {
    let when = match run.finished_at {
        Some(end) => format!(
            "{} ({}, {:.1} s)",
            run.started_at.to_rfc3339(),
            run.trigger,
            (end.0 - run.started_at.0) as f64 / 1000.0
        ),
        None => format!("{} ({})", run.started_at.to_rfc3339(), run.trigger),
    };
    format!("{when}: {}", retention::describe(run))
}

#[derive(Deserialize)]
pub(crate) struct KeepingForm {
    csrf: String,
    cdr_days: String,
    log_days: String,
}

pub(crate) async fn save_keeping(
    State(app): State<AppState>,
    signed: Signed,
    Form(form): Form<KeepingForm>,
) -> Response {
    if let Err(refused) = signed.may_change(Role::Admin, &form.csrf) {
        return *refused;
    }
    let days = |s: &str| {
        s.trim()
            .parse::<u32>()
            .ok()
            .filter(|d| (1..=36_500).contains(d))
    };
    let (Some(cdr), Some(log)) = (days(&form.cdr_days), days(&form.log_days)) else {
        return ApiError::BadRequest("keeping days must be whole numbers from 1 to 36500".into())
            .into_response();
    };
    let store = app.store.clone();
    let entry = signed.audit(
        "change settings",
        Some(&format!("keeping days: CDR {cdr}, log {log}")),
    );
    let done = blocking(move || {
        KeepingDays { cdr, log }.save(store.accounts())?;
        store.accounts().audit(&entry)
    })
    .await;
    redirect_after(done, "/admin/data?done=saved")
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    csrf: String,
}

/// Runs the daily removal now, with the keeping days as set.
pub(crate) async fn run_now(
    State(app): State<AppState>,
    signed: Signed,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(refused) = signed.may_change(Role::Admin, &form.csrf) {
        return *refused;
    }
    let store = app.store.clone();
    let days = match blocking(move || KeepingDays::load(store.accounts())).await {
        Ok(days) => days,
        Err(e) => return e.into_response(),
    };
    let target = format!("keeping days: CDR {}, log {}", days.cdr, days.log);
    let entry = signed.audit("run data removal", Some(&target));
    start(&app, days.request(Timestamp::now()), "run by hand", entry)
}

#[derive(Deserialize)]
pub(crate) struct ClearForm {
    csrf: String,
    calls: Option<String>,
    calls_days: Option<u32>,
    audit: Option<String>,
    audit_days: Option<u32>,
    gaps: Option<String>,
    gaps_days: Option<u32>,
}

/// Clear History Data: what is ticked, older than its age.
pub(crate) async fn clear(
    State(app): State<AppState>,
    signed: Signed,
    Form(form): Form<ClearForm>,
) -> Response {
    if let Err(refused) = signed.may_change(Role::Admin, &form.csrf) {
        return *refused;
    }
    let now = Timestamp::now();
    let mut named = Vec::new();
    let mut before = |ticked: &Option<String>, days: Option<u32>, what: &str| {
        let days = days.unwrap_or(DEFAULT_AGE);
        ticked.as_ref().map(|_| {
            named.push(if days == 0 {
                format!("all {what}")
            } else {
                format!("{what} older than {days} days")
            });
            // Age 0 is everything, up to now.
            Timestamp(now.0 - i64::from(days) * DAY_MS + i64::from(days == 0) * DAY_MS)
        })
    };
    let request = PruneRequest {
        calls_before: before(&form.calls, form.calls_days, "calls"),
        audit_before: before(&form.audit, form.audit_days, "audit entries"),
        gaps_before: before(&form.gaps, form.gaps_days, "gaps"),
    };
    if named.is_empty() {
        return Redirect::to("/admin/data?done=nothing").into_response();
    }
    let target = named.join(", ");
    let entry = signed.audit("clear history data", Some(&target));
    start(&app, request, "cleared by hand", entry)
}

fn start(
    app: &AppState,
    request: PruneRequest,
    trigger: &str,
    entry: cdrhub_store::AuditEntry,
) -> Response {
    let trigger = format!("{trigger} ({})", entry.actor);
    match app.retention.start(app, request, trigger, Some(entry)) {
        Ok(()) => Redirect::to("/admin/data?done=started").into_response(),
        Err(retention::AlreadyRunning) => {
            ApiError::Conflict("a data removal is running already; wait for it to finish".into())
                .into_response()
        }
    }
}

/// Takes an uploaded backup (the CSRF field first, then the file), checks
/// it and keeps it to be restored at the next start. Audited.
pub(crate) async fn restore(
    State(app): State<AppState>,
    signed: Signed,
    mut form: Multipart,
) -> Response {
    if let Err(refused) = signed.require(Role::Admin) {
        return *refused;
    }
    let bad = |m: &str| ApiError::BadRequest(m.to_owned()).into_response();
    let csrf = match form.next_field().await {
        Ok(Some(field)) if field.name() == Some("csrf") => field.text().await.unwrap_or_default(),
        _ => return bad("the restore form must send its csrf field first"),
    };
    if !super::same_secret(&csrf, &signed.csrf) {
        return super::form_expired(&signed.user.language);
    }
    let mut field = match form.next_field().await {
        Ok(Some(field)) if field.name() == Some("backup") => field,
        _ => return bad("the restore form sent no backup file"),
    };
    let path = app.store.restore_upload_path();
    let written = async {
        use tokio::io::AsyncWriteExt;
        let mut file = tokio::fs::File::create(&path).await?;
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?
        {
            file.write_all(&chunk).await?;
        }
        file.sync_all().await
    }
    .await;
    if let Err(e) = written {
        let _ = tokio::fs::remove_file(&path).await;
        return ApiError::BadRequest(format!("the upload did not arrive whole: {e}"))
            .into_response();
    }
    let store = app.store.clone();
    let actor = signed.user.name.clone();
    let entry = signed.audit("restore staged", None);
    let staged = blocking(move || {
        let summary = store.stage_restore(&path, &actor)?;
        let mut entry = entry;
        entry.target = Some(format!(
            "{} records, {}; restored at the next start",
            summary.records,
            retention::bytes(summary.bytes)
        ));
        store.accounts().audit(&entry)?;
        Ok(summary)
    })
    .await;
    match staged {
        Ok(_) => Redirect::to("/admin/data?done=staged").into_response(),
        Err(ApiError::Unavailable(m)) if m.contains("is not a cdrhub backup") => {
            let l = signed.user.language.as_str();
            let body = html! { p.error role="alert" { (m) } p { a href="/admin/data" { (t(l, "data_title")) } } };
            (
                StatusCode::BAD_REQUEST,
                page(l, t(l, "data_restore"), Some(&signed), body),
            )
                .into_response()
        }
        Err(e) => e.into_response(),
    }
}
