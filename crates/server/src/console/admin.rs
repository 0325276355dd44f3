//! Administration pages: blocked addresses and the login-failure settings
//! (seed 002, "Web Service" and "Web Login Blocked IP"). Admin role only;
//! every change is audited.

use axum::Form;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use cdrhub_model::{Role, Timestamp};
use cdrhub_store::{Accounts, StoreError};
use maud::html;
use serde::Deserialize;

use super::{Signed, page, redirect_after, t};
use crate::AppState;
use crate::api::blocking;

/// When failed logins are audited and addresses blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LoginPolicy {
    /// Failures after which each further one is written to the audit log.
    pub audit_after: u32,
    /// Failures after which the address is blocked.
    pub block_after: u32,
    /// How long a block lasts.
    pub block_minutes: u32,
}

impl LoginPolicy {
    /// Seed 002's defaults: 3, 5 and 60 minutes.
    pub const DEFAULT: LoginPolicy = LoginPolicy {
        audit_after: 3,
        block_after: 5,
        block_minutes: 60,
    };
    const KEYS: [&'static str; 3] = [
        "login.audit_after",
        "login.block_after",
        "login.block_minutes",
    ];

    pub(crate) fn load(accounts: &dyn Accounts) -> Result<LoginPolicy, StoreError> {
        let read = |key: &str, default: u32| -> Result<u32, StoreError> {
            Ok(accounts
                .setting(key)?
                .and_then(|v| v.parse().ok())
                .unwrap_or(default))
        };
        let d = LoginPolicy::DEFAULT;
        Ok(LoginPolicy {
            audit_after: read(Self::KEYS[0], d.audit_after)?,
            block_after: read(Self::KEYS[1], d.block_after)?,
            block_minutes: read(Self::KEYS[2], d.block_minutes)?,
        })
    }

    fn save(self, accounts: &dyn Accounts) -> Result<(), StoreError> {
        let values = [self.audit_after, self.block_after, self.block_minutes];
        for (key, value) in Self::KEYS.iter().zip(values) {
            accounts.set_setting(key, &value.to_string())?;
        }
        Ok(())
    }
}

pub(crate) async fn blocked(State(app): State<AppState>, signed: Signed) -> Response {
    if let Err(refused) = signed.require(Role::Admin) {
        return *refused;
    }
    let store = app.store.clone();
    let now = Timestamp::now();
    let list = match blocking(move || store.accounts().blocked_ips(now)).await {
        Ok(list) => list,
        Err(e) => return e.into_response(),
    };
    let lang = signed.user.language.clone();
    let l = lang.as_str();
    page(
        l,
        t(l, "blocked_title"),
        Some(&signed),
        html! {
            @if list.is_empty() {
                p { (t(l, "blocked_none")) }
            } @else {
                table #blocked {
                    tr {
                        th { (t(l, "blocked_ip")) } th { (t(l, "blocked_login_id")) }
                        th { (t(l, "blocked_time")) } th { (t(l, "blocked_until")) } th {}
                    }
                    @for b in &list {
                        tr {
                            td { (b.client_ip) }
                            td { (b.login_id) }
                            td { (b.blocked_at.to_rfc3339()) }
                            td { (b.blocked_until.to_rfc3339()) " (" ((b.blocked_until.0 - now.0).div_euclid(60_000) + 1) " " (t(l, "minutes")) ")" }
                            td {
                                form.inline method="post" action="/admin/blocked/unblock" {
                                    input type="hidden" name="csrf" value=(signed.csrf);
                                    input type="hidden" name="ip" value=(b.client_ip);
                                    button type="submit" { (t(l, "blocked_unblock")) }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}

#[derive(Deserialize)]
pub(crate) struct UnblockForm {
    csrf: String,
    ip: String,
}

pub(crate) async fn unblock(
    State(app): State<AppState>,
    signed: Signed,
    Form(form): Form<UnblockForm>,
) -> Response {
    if let Err(refused) = signed.may_change(Role::Admin, &form.csrf) {
        return *refused;
    }
    let store = app.store.clone();
    let entry = signed.audit("unblock address", Some(&form.ip));
    let done = blocking(move || {
        if store.accounts().unblock(&form.ip)? {
            store.accounts().audit(&entry)?;
        }
        Ok(())
    })
    .await;
    redirect_after(done, "/admin/blocked")
}

#[derive(Deserialize)]
pub(crate) struct SettingsQuery {
    saved: Option<String>,
}

pub(crate) async fn settings(
    State(app): State<AppState>,
    signed: Signed,
    Query(query): Query<SettingsQuery>,
) -> Response {
    if let Err(refused) = signed.require(Role::Admin) {
        return *refused;
    }
    let store = app.store.clone();
    match blocking(move || LoginPolicy::load(store.accounts())).await {
        Ok(policy) => settings_page(&signed, policy, query.saved.is_some().then_some(true)),
        Err(e) => e.into_response(),
    }
}

fn settings_page(signed: &Signed, policy: LoginPolicy, saved: Option<bool>) -> Response {
    let l = signed.user.language.as_str();
    let field = |name: &str, label: &str, help: &str, value: u32| {
        html! {
            label for=(name) { (t(l, label)) }
            input #(name) name=(name) type="number" min="1" max="100000" value=(value) required;
            div.help { (t(l, help)) }
        }
    };
    page(
        l,
        t(l, "settings_title"),
        Some(signed),
        html! {
            @match saved {
                Some(true) => p.ok role="status" { (t(l, "settings_saved")) },
                Some(false) => p.error role="alert" { (t(l, "settings_invalid")) },
                None => {},
            }
            form method="post" action="/admin/settings" {
                input type="hidden" name="csrf" value=(signed.csrf);
                (field("audit_after", "settings_audit_after", "settings_audit_after_help", policy.audit_after))
                (field("block_after", "settings_block_after", "settings_block_after_help", policy.block_after))
                (field("block_minutes", "settings_block_minutes", "settings_block_minutes_help", policy.block_minutes))
                p { button type="submit" { (t(l, "settings_save")) } }
            }
        },
    )
    .into_response()
}

#[derive(Deserialize)]
pub(crate) struct SettingsForm {
    csrf: String,
    audit_after: String,
    block_after: String,
    block_minutes: String,
}

pub(crate) async fn save_settings(
    State(app): State<AppState>,
    signed: Signed,
    Form(form): Form<SettingsForm>,
) -> Response {
    if let Err(refused) = signed.may_change(Role::Admin, &form.csrf) {
        return *refused;
    }
    let number = |s: &str| {
        s.trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=100_000).contains(n))
    };
    let (Some(audit_after), Some(block_after), Some(block_minutes)) = (
        number(&form.audit_after),
        number(&form.block_after),
        number(&form.block_minutes),
    ) else {
        let store = app.store.clone();
        return match blocking(move || LoginPolicy::load(store.accounts())).await {
            Ok(policy) => {
                let mut response = settings_page(&signed, policy, Some(false));
                *response.status_mut() = axum::http::StatusCode::BAD_REQUEST;
                response
            }
            Err(e) => e.into_response(),
        };
    };
    let policy = LoginPolicy {
        audit_after,
        block_after,
        block_minutes,
    };
    let store = app.store.clone();
    let entry = signed.audit(
        "change settings",
        Some(&format!(
            "login failures: audit after {audit_after}, block after {block_after} for {block_minutes} min"
        )),
    );
    let done = blocking(move || {
        policy.save(store.accounts())?;
        store.accounts().audit(&entry)
    })
    .await;
    redirect_after(done, "/admin/settings?saved=1")
}

/// A backup of the journal, accounts and settings as a download (the same
/// file as `cdrhub backup FILE`), streamed from a file the store has
/// already unlinked, so nothing is left behind.
pub(crate) async fn download_backup(State(app): State<AppState>, signed: Signed) -> Response {
    if let Err(refused) = signed.require(Role::Admin) {
        return *refused;
    }
    let name = format!(
        "cdrhub-backup-{}.db",
        Timestamp::now().to_rfc3339()[..19].replace([':', 'T'], "-")
    );
    let store = app.store.clone();
    let entry = signed.audit("backup download", Some(&name));
    let taken = blocking(move || {
        let (file, _) = store.backup_file()?;
        store.accounts().audit(&entry)?;
        Ok(file)
    })
    .await;
    let file = match taken {
        Ok(f) => tokio::fs::File::from_std(f),
        Err(e) => return e.into_response(),
    };
    let stream = futures_util::stream::unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt;
        let mut chunk = vec![0u8; 256 * 1024];
        match file.read(&mut chunk).await {
            Ok(0) => None,
            Ok(n) => {
                chunk.truncate(n);
                Some((Ok::<_, std::io::Error>(chunk), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    });
    let mut response = axum::body::Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/vnd.sqlite3"),
    );
    if let Ok(v) = axum::http::HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(axum::http::header::CONTENT_DISPOSITION, v);
    }
    response
}
