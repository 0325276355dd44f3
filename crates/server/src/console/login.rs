//! Login and logout, with the protection of seed 002 ("Web Service"): after
//! `audit_after` failed logins from one address each further failure goes
//! to the audit log, and after `block_after` the address is blocked for
//! `block_minutes`, whatever it sends, until the block ends or an admin
//! lifts it.

use std::sync::OnceLock;

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use cdrhub_model::{Role, Timestamp};
use cdrhub_store::AuditEntry;
use maud::{Markup, html};
use serde::Deserialize;

use super::admin::LoginPolicy;
use super::{
    Client, SESSION_COOKIE, Signed, cookie, form_expired, page, same_secret, set_cookie, t,
};
use crate::AppState;
use crate::api::blocking;
use crate::auth::{hash_password, new_secret, token_hash, verify_password};

/// The login form's CSRF secret, also sent as a cookie (double submit): a
/// page of another site cannot sign a browser into an account.
const LOGIN_COOKIE: &str = "cdrhub_login";
/// How long a session lasts.
const SESSION_HOURS: i64 = 12;

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    user: String,
    password: String,
    csrf: String,
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    csrf: String,
}

fn login_page(csrf: &str, error: Option<&str>) -> Markup {
    let lang = "en";
    page(
        lang,
        t(lang, "login_title"),
        None,
        html! {
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form method="post" action="/login" {
                input type="hidden" name="csrf" value=(csrf);
                label for="user" { (t(lang, "login_user")) }
                input #user name="user" autocomplete="username" required autofocus;
                label for="password" { (t(lang, "login_password")) }
                input #password name="password" type="password" autocomplete="current-password" required;
                p { button type="submit" { (t(lang, "login_submit")) } }
            }
        },
    )
}

/// The login page with a fresh form secret.
fn login_response(status: StatusCode, client: &Client, error: Option<&str>) -> Response {
    let csrf = new_secret();
    (
        status,
        [(
            header::SET_COOKIE,
            set_cookie(LOGIN_COOKIE, &csrf, 3600, client.https),
        )],
        login_page(&csrf, error),
    )
        .into_response()
}

pub(crate) async fn form(client: Client) -> Response {
    login_response(StatusCode::OK, &client, None)
}

/// A hash to verify against when the user does not exist, so that a wrong
/// name takes as long as a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&new_secret()).unwrap_or_default())
}

fn blocked_message(until: Timestamp) -> String {
    format!("{} {} UTC.", t("en", "login_blocked"), until.to_rfc3339())
}

pub(crate) async fn submit(
    State(app): State<AppState>,
    client: Client,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let sent_cookie = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if sent_cookie.is_empty() || !same_secret(sent_cookie, &form.csrf) {
        return form_expired("en");
    }
    let store = app.store.clone();
    let ip = client.ip.clone();
    let outcome = blocking(move || {
        let accounts = store.accounts();
        let now = Timestamp::now();
        let policy = LoginPolicy::load(accounts)?;
        let audit = |operation: &str| {
            accounts.audit(&AuditEntry {
                actor: form.user.clone(),
                role: None,
                client_ip: Some(ip.clone()),
                operation: operation.into(),
                target: None,
            })
        };
        if let Some(until) = accounts.blocked_until(&ip, now)? {
            audit("login refused (address blocked)")?;
            return Ok(Err(blocked_message(until)));
        }
        let user = accounts.user(&form.user)?;
        let hash = user
            .as_ref()
            .map_or(dummy_hash(), |u| u.password_hash.as_str());
        let valid = verify_password(&form.password, hash);
        match user.filter(|u| valid && !u.disabled) {
            Some(user) => {
                accounts.clear_login_failures(&ip)?;
                let secret = new_secret();
                let expires = Timestamp(now.0 + SESSION_HOURS * 3_600_000);
                accounts.create_session(
                    &token_hash(&secret),
                    &user.name,
                    &new_secret(),
                    Some(&ip),
                    expires,
                )?;
                accounts.audit(&AuditEntry {
                    actor: user.name.clone(),
                    role: Some(user.role),
                    client_ip: Some(ip.clone()),
                    operation: "login".into(),
                    target: None,
                })?;
                Ok(Ok(secret))
            }
            None => {
                let failures = accounts.record_login_failure(
                    &ip,
                    &form.user,
                    now,
                    policy.block_after,
                    policy.block_minutes,
                )?;
                if failures.failures > policy.audit_after {
                    audit("login failed")?;
                }
                match failures.blocked_until {
                    Some(until) if failures.failures == policy.block_after.max(1) => {
                        audit("address blocked")?;
                        Ok(Err(blocked_message(until)))
                    }
                    Some(until) => Ok(Err(blocked_message(until))),
                    None => Ok(Err(t("en", "login_failed").to_owned())),
                }
            }
        }
    })
    .await;
    match outcome {
        Ok(Ok(secret)) => {
            let max_age = SESSION_HOURS * 3600;
            let mut response = Redirect::to("/").into_response();
            let cookies = response.headers_mut();
            for value in [
                set_cookie(SESSION_COOKIE, &secret, max_age, client.https),
                set_cookie(LOGIN_COOKIE, "", 0, client.https),
            ] {
                if let Ok(v) = value.parse() {
                    cookies.append(header::SET_COOKIE, v);
                }
            }
            response
        }
        Ok(Err(message)) => login_response(StatusCode::UNAUTHORIZED, &client, Some(&message)),
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn logout(
    State(app): State<AppState>,
    signed: Signed,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(refused) = signed.may_change(Role::Viewer, &form.csrf) {
        return *refused;
    }
    let store = app.store.clone();
    let entry = signed.audit("logout", None);
    let id_hash = signed.id_hash.clone();
    let done = blocking(move || {
        store.accounts().delete_session(&id_hash)?;
        store.accounts().audit(&entry)
    })
    .await;
    if let Err(e) = done {
        return e.into_response();
    }
    (
        [(
            header::SET_COOKIE,
            set_cookie(SESSION_COOKIE, "", 0, signed.client.https),
        )],
        Redirect::to("/login"),
    )
        .into_response()
}
