//! `/admin/exports` (issue 7, point 3; admin): the scheduled exports and
//! webhooks, from the config file and added here, and the delivery queue:
//! what waits (attempts, last error, next attempt) until it is delivered,
//! and what was delivered lately. Adding and removing are audited.

use std::collections::BTreeMap;

use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use cdrhub_model::Role;
use maud::{Markup, html};
use serde::Deserialize;

use super::{Signed, page, redirect_after, t};
use crate::AppState;
use crate::api::{ApiError, blocking_api};
use crate::exports::{self, ConsoleExports, ExportConfig, ExportFormat, WebhookConfig};

fn time(t: Option<cdrhub_model::Timestamp>) -> String {
    t.map(|t| t.to_rfc3339()).unwrap_or_default()
}

pub(crate) async fn view(State(app): State<AppState>, signed: Signed) -> Response {
    if let Err(refused) = signed.require(Role::Admin) {
        return *refused;
    }
    let l = signed.user.language.clone();
    let l = l.as_str();
    let app2 = app.clone();
    let loaded = blocking_api(move || {
        let console = exports::console_exports(&app2).map_err(ApiError::Internal)?;
        let queue = app2.exports.status().map_err(ApiError::Internal)?;
        Ok((console, queue))
    })
    .await;
    let (console, queue) = match loaded {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let file = &app.config;
    let delete_button = |kind: &str, name: &str| -> Markup {
        html! {
            form.inline method="post" action="/admin/exports/delete" {
                input type="hidden" name="csrf" value=(signed.csrf);
                input type="hidden" name="kind" value=(kind);
                input type="hidden" name="name" value=(name);
                button type="submit" { (t(l, "exp_delete")) }
            }
        }
    };
    let export_row = |e: &ExportConfig, from_file: bool| -> Markup {
        html! {
            tr {
                td { (e.name) } td { (if from_file { t(l, "exp_from_file") } else { t(l, "exp_from_console") }) }
                td { (e.every) } td { (match e.format { ExportFormat::Csv => "CSV", ExportFormat::Ndjson => "NDJSON" }) }
                td { (if e.columns.is_empty() { t(l, "exp_all_columns").to_owned() } else { e.columns.join(", ") }) }
                td { (e.source.as_deref().unwrap_or("")) }
                td { (e.directory.as_ref().map(|d| d.display().to_string()).or(e.url.clone()).unwrap_or_default()) }
                td { (if e.hmac_secret.is_some() { "HMAC-SHA256" } else { "" }) }
                td { @if !from_file { (delete_button("export", &e.name)) } }
            }
        }
    };
    let webhook_row = |w: &WebhookConfig, from_file: bool| -> Markup {
        html! {
            tr {
                td { (w.name) } td { (if from_file { t(l, "exp_from_file") } else { t(l, "exp_from_console") }) }
                td { (w.url) } td { (w.source.as_deref().unwrap_or("")) }
                td { (if w.hmac_secret.is_some() { "HMAC-SHA256" } else { "" }) }
                td { @if !from_file { (delete_button("webhook", &w.name)) } }
            }
        }
    };
    let pending: Vec<_> = queue.iter().filter(|i| i.delivered_at.is_none()).collect();
    let delivered: Vec<_> = queue.iter().filter(|i| i.delivered_at.is_some()).collect();
    let body = html! {
        h2 { (t(l, "exp_exports")) }
        table #exports {
            tr {
                th { (t(l, "exp_name")) } th { (t(l, "exp_origin")) } th { (t(l, "exp_every")) } th { (t(l, "exp_format")) }
                th { (t(l, "exp_columns")) } th { (t(l, "exp_source")) } th { (t(l, "exp_destination")) } th { (t(l, "exp_signed")) } th {}
            }
            @for e in &file.exports { (export_row(e, true)) }
            @for e in &console.exports { (export_row(e, false)) }
        }
        h2 { (t(l, "exp_webhooks")) }
        table #webhooks {
            tr {
                th { (t(l, "exp_name")) } th { (t(l, "exp_origin")) } th { "URL" } th { (t(l, "exp_source")) } th { (t(l, "exp_signed")) } th {}
            }
            @for w in &file.webhooks { (webhook_row(w, true)) }
            @for w in &console.webhooks { (webhook_row(w, false)) }
        }
        h2 #pending-title { (t(l, "exp_pending")) " (" (pending.len()) ")" }
        table #pending {
            tr {
                th { (t(l, "exp_item")) } th { (t(l, "exp_added")) } th { (t(l, "exp_attempts")) }
                th { (t(l, "exp_last_error")) } th { (t(l, "exp_next_attempt")) } th {}
            }
            @for i in &pending {
                tr {
                    td { (i.id) } td.time { (i.added_at.to_rfc3339()) } td.num { (i.attempts) }
                    td { (i.last_error.as_deref().unwrap_or("")) } td.time { (time(i.next_attempt_at)) }
                    td {
                        form.inline method="post" action="/admin/exports/item" {
                            input type="hidden" name="csrf" value=(signed.csrf);
                            input type="hidden" name="id" value=(i.id);
                            button type="submit" name="action" value="retry" { (t(l, "exp_retry")) }
                            " "
                            button type="submit" name="action" value="discard" data-confirm=(t(l, "exp_discard_confirm")) { (t(l, "exp_discard")) }
                        }
                    }
                }
            }
        }
        h2 { (t(l, "exp_delivered")) }
        table #delivered {
            tr { th { (t(l, "exp_item")) } th { (t(l, "exp_delivered_at")) } th { (t(l, "exp_attempts")) } th { (t(l, "exp_bytes")) } }
            @for i in &delivered {
                tr { td { (i.id) } td.time { (time(i.delivered_at)) } td.num { (i.attempts) } td.num { (i.bytes) } }
            }
        }
        h2 { (t(l, "exp_add_export")) }
        form method="post" action="/admin/exports/add" {
            input type="hidden" name="csrf" value=(signed.csrf);
            input type="hidden" name="kind" value="export";
            label { (t(l, "exp_name")) " " input name="name" required pattern="[A-Za-z0-9_-]{1,64}"; }
            label { (t(l, "exp_every")) " " input name="every" value="hourly"; }
            label { (t(l, "exp_format")) " " select name="format" { option value="csv" { "CSV" } option value="ndjson" { "NDJSON" } } }
            label { (t(l, "exp_columns")) " " input name="columns" placeholder="id,started_at,caller,dialed,talk_s,disposition"; }
            label { (t(l, "exp_source")) " " input name="source"; }
            label { (t(l, "exp_directory")) " " input name="directory"; }
            label { "URL " input name="url" type="url"; }
            label { (t(l, "exp_secret")) " " input name="hmac_secret" type="password" autocomplete="new-password"; }
            label { (t(l, "exp_delay")) " " input name="delay_s" type="number" min="0" value="300"; }
            button type="submit" { (t(l, "exp_add")) }
        }
        h2 { (t(l, "exp_add_webhook")) }
        form method="post" action="/admin/exports/add" {
            input type="hidden" name="csrf" value=(signed.csrf);
            input type="hidden" name="kind" value="webhook";
            label { (t(l, "exp_name")) " " input name="name" required pattern="[A-Za-z0-9_-]{1,64}"; }
            label { "URL " input name="url" type="url" required; }
            label { (t(l, "exp_source")) " " input name="source"; }
            label { (t(l, "exp_secret")) " " input name="hmac_secret" type="password" autocomplete="new-password"; }
            button type="submit" { (t(l, "exp_add")) }
        }
        p.help { (t(l, "exp_help")) }
    };
    page(l, t(l, "exp_title"), Some(&signed), body).into_response()
}

#[derive(Deserialize)]
pub(crate) struct AddForm {
    csrf: String,
    kind: String,
    name: String,
    #[serde(default)]
    every: Option<String>,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    columns: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    directory: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    hmac_secret: Option<String>,
    #[serde(default)]
    delay_s: Option<String>,
}

fn given(v: &Option<String>) -> Option<String> {
    v.as_ref()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

pub(crate) async fn add(
    State(app): State<AppState>,
    signed: Signed,
    Form(form): Form<AddForm>,
) -> Response {
    if let Err(refused) = signed.may_change(Role::Admin, &form.csrf) {
        return *refused;
    }
    let entry = signed.audit(&format!("{} add", form.kind), Some(form.name.trim()));
    let app2 = app.clone();
    let done = blocking_api(move || {
        let mut console = exports::console_exports(&app2).map_err(ApiError::Internal)?;
        let name = form.name.trim().to_owned();
        let taken = app2.config.exports.iter().any(|e| e.name == name)
            || app2.config.webhooks.iter().any(|w| w.name == name)
            || console.exports.iter().any(|e| e.name == name)
            || console.webhooks.iter().any(|w| w.name == name);
        if taken {
            return Err(ApiError::Conflict(format!(
                "an export or webhook is already named {name:?}"
            )));
        }
        match form.kind.as_str() {
            "export" => {
                let e = ExportConfig {
                    name,
                    every: given(&form.every).unwrap_or_else(|| "hourly".into()),
                    format: match given(&form.format).as_deref() {
                        Some("ndjson") => ExportFormat::Ndjson,
                        _ => ExportFormat::Csv,
                    },
                    columns: given(&form.columns)
                        .map(|c| {
                            c.split(',')
                                .map(|s| s.trim().to_owned())
                                .filter(|s| !s.is_empty())
                                .collect()
                        })
                        .unwrap_or_default(),
                    source: given(&form.source),
                    directory: given(&form.directory).map(Into::into),
                    url: given(&form.url),
                    headers: BTreeMap::new(),
                    hmac_secret: given(&form.hmac_secret),
                    delay_s: given(&form.delay_s)
                        .map(|d| {
                            d.parse().map_err(|_| {
                                ApiError::BadRequest(format!(
                                    "delay {d:?} is not a number of seconds"
                                ))
                            })
                        })
                        .transpose()?
                        .unwrap_or(300),
                    timeout_s: 30,
                };
                e.check().map_err(ApiError::BadRequest)?;
                console.exports.push(e);
            }
            "webhook" => {
                let w = WebhookConfig {
                    name,
                    url: given(&form.url).unwrap_or_default(),
                    source: given(&form.source),
                    headers: BTreeMap::new(),
                    hmac_secret: given(&form.hmac_secret),
                    timeout_s: 30,
                };
                w.check().map_err(ApiError::BadRequest)?;
                console.webhooks.push(w);
            }
            other => return Err(ApiError::BadRequest(format!("unknown kind {other:?}"))),
        }
        exports::save_console_exports(&app2, &console).map_err(ApiError::Internal)?;
        app2.store.accounts().audit(&entry)?;
        Ok(())
    })
    .await;
    if done.is_ok() {
        app.exports.reload();
    }
    redirect_after(done, "/admin/exports")
}

#[derive(Deserialize)]
pub(crate) struct ItemForm {
    csrf: String,
    id: String,
    action: String,
}

/// "Try now" or "Discard" on an item that waits (admin; audited).
pub(crate) async fn item(
    State(app): State<AppState>,
    signed: Signed,
    Form(form): Form<ItemForm>,
) -> Response {
    if let Err(refused) = signed.may_change(Role::Admin, &form.csrf) {
        return *refused;
    }
    let discard = match form.action.as_str() {
        "retry" => None,
        "discard" => Some(format!(
            "discarded by {} at {}",
            signed.user.name,
            cdrhub_model::Timestamp::now().to_rfc3339()
        )),
        other => {
            return ApiError::BadRequest(format!("unknown action {other:?}")).into_response();
        }
    };
    let entry = signed.audit(
        if discard.is_some() {
            "delivery discard"
        } else {
            "delivery retry"
        },
        Some(&form.id),
    );
    let app2 = app.clone();
    let done = blocking_api(move || {
        if !app2
            .exports
            .act_on(&form.id, discard.as_deref())
            .map_err(ApiError::Internal)?
        {
            return Err(ApiError::NotFound(format!(
                "{:?} is not waiting to be delivered",
                form.id
            )));
        }
        app2.store.accounts().audit(&entry)?;
        Ok(())
    })
    .await;
    redirect_after(done, "/admin/exports")
}

#[derive(Deserialize)]
pub(crate) struct DeleteForm {
    csrf: String,
    kind: String,
    name: String,
}

pub(crate) async fn delete(
    State(app): State<AppState>,
    signed: Signed,
    Form(form): Form<DeleteForm>,
) -> Response {
    if let Err(refused) = signed.may_change(Role::Admin, &form.csrf) {
        return *refused;
    }
    let entry = signed.audit(&format!("{} delete", form.kind), Some(&form.name));
    let app2 = app.clone();
    let done = blocking_api(move || {
        let mut console: ConsoleExports =
            exports::console_exports(&app2).map_err(ApiError::Internal)?;
        let before = console.exports.len() + console.webhooks.len();
        match form.kind.as_str() {
            "export" => console.exports.retain(|e| e.name != form.name),
            _ => console.webhooks.retain(|w| w.name != form.name),
        }
        if console.exports.len() + console.webhooks.len() == before {
            return Err(ApiError::NotFound(format!(
                "no {} added in the console is named {:?} (those of the config file are changed there)",
                form.kind, form.name
            )));
        }
        exports::save_console_exports(&app2, &console).map_err(ApiError::Internal)?;
        app2.store.accounts().audit(&entry)?;
        Ok(())
    })
    .await;
    if done.is_ok() {
        app.exports.reload();
    }
    redirect_after(done, "/admin/exports")
}
