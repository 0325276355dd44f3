//! The web console at `/` (issue 3): pages rendered on the server, a
//! session cookie after login, a CSRF token in every form.

mod admin;
mod assets;
mod audit;
mod calls;
mod cc;
mod data;
mod exports;
mod gateways;
mod headers;
mod i18n;
mod live;
mod login;
mod sip;
mod stats;
mod users;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use cdrhub_model::{Role, Timestamp};
use cdrhub_store::{AuditEntry, User};
use maud::{DOCTYPE, Markup, html};

use crate::AppState;
use crate::api::blocking;
use crate::auth::token_hash;
pub(crate) use headers::security_headers;
pub(crate) use i18n::t;

/// The session cookie: a random secret whose hash names the session.
pub(crate) const SESSION_COOKIE: &str = "cdrhub_session";

pub(crate) fn routes() -> Router<AppState> {
    assets::routes()
        .route("/", get(home))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/admin/exports", get(exports::view))
        .route("/admin/exports/add", post(exports::add))
        .route("/admin/exports/delete", post(exports::delete))
        .route("/admin/exports/item", post(exports::item))
        .route("/admin/blocked", get(admin::blocked))
        .route("/admin/blocked/unblock", post(admin::unblock))
        .route(
            "/admin/settings",
            get(admin::settings).post(admin::save_settings),
        )
        .route("/admin/backup", get(admin::download_backup))
        .route("/admin/data", get(data::view))
        .route("/admin/data/keeping", post(data::save_keeping))
        .route("/admin/data/run", post(data::run_now))
        .route("/admin/data/clear", post(data::clear))
        .route(
            "/admin/data/restore",
            // A backup is as large as the journal: streamed to disk, no limit.
            post(data::restore).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/admin/users", get(users::list))
        .route("/admin/users/add", post(users::add))
        .route("/admin/users/disable", post(users::disable))
        .route("/admin/tokens/create", post(users::create_token))
        .route("/admin/tokens/revoke", post(users::revoke_token))
        .route("/account", get(users::account))
        .route("/account/password", post(users::change_password))
        .route("/account/language", post(users::change_language))
        .route("/live", get(live::view))
        .route("/live.json", get(live::json))
        .route("/live/events", get(live::events))
        .route("/stats", get(stats::view))
        .route("/stats.csv", get(stats::export))
        .route("/cc", get(cc::view))
        .route("/cc/agents.csv", get(cc::export_agents))
        .route("/cc/csqs.csv", get(cc::export_csqs))
        .route("/gateways", get(gateways::list))
        .route("/gateways/{name}", get(gateways::report))
        .route("/gateways/{name}/report.csv", get(gateways::report_csv))
        .route("/gateways/{name}/events", get(gateways::events))
        .route("/sip", get(sip::view))
        .route("/sip/registrations", get(sip::registrations))
        .route("/calls", get(calls::search))
        .route("/calls/{id}", get(calls::call_page))
        .route("/calls/{id}/end", post(live::force_end))
        .route("/audit", get(audit::page_view))
        .route("/audit.csv", get(audit::export))
}

/// Set on requests that came over the HTTPS listener: their cookies are
/// marked `Secure`, their responses carry `Strict-Transport-Security`.
#[derive(Debug, Clone, Copy)]
pub struct OverHttps;

/// The value of cookie `name` in the request.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, Path=/, and Secure over
/// HTTPS. `max_age` 0 deletes the cookie.
pub(crate) fn set_cookie(name: &str, value: &str, max_age_s: i64, https: bool) -> String {
    let secure = if https { "; Secure" } else { "" };
    format!("{name}={value}; Max-Age={max_age_s}; Path=/; HttpOnly; SameSite=Strict{secure}")
}

/// Where a request comes from.
pub(crate) struct Client {
    /// The client's address as the listener saw it.
    pub ip: String,
    /// It came over the HTTPS listener.
    pub https: bool,
}

impl Client {
    fn of(parts: &Parts) -> Client {
        Client {
            ip: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string()),
            https: parts.extensions.get::<OverHttps>().is_some(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Client::of(parts))
    }
}

/// Equal secrets, compared in time that does not depend on where they differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The page a request gets instead of what it asked for (boxed: a
/// `Response` is large for an `Err`).
pub(crate) type Refused = Box<Response>;

/// A signed-in user, from the session cookie. Pages that need one redirect
/// to the login page without it.
pub(crate) struct Signed {
    pub user: User,
    pub csrf: String,
    pub id_hash: Vec<u8>,
    pub client: Client,
    /// What every page shows on top: a failed data removal, a disk nearly full.
    pub alarms: Vec<String>,
}

impl Signed {
    /// Ok when the user's role may do what `needed` may; else the page that
    /// says it may not.
    pub(crate) fn require(&self, needed: Role) -> Result<(), Refused> {
        if self.user.role.allows(needed) {
            Ok(())
        } else {
            let lang = &self.user.language;
            let text = t(lang, "forbidden");
            let body = page(lang, text, Some(self), html! { p.error { (text) } });
            Err(Box::new((StatusCode::FORBIDDEN, body).into_response()))
        }
    }

    /// Ok when the user's role may do what `needed` may and the form
    /// carried this session's CSRF token: what every change asks.
    pub(crate) fn may_change(&self, needed: Role, csrf: &str) -> Result<(), Refused> {
        self.require(needed)?;
        self.check_csrf(csrf)
    }

    /// Ok when the form carried this session's CSRF token.
    fn check_csrf(&self, sent: &str) -> Result<(), Refused> {
        if same_secret(sent, &self.csrf) {
            Ok(())
        } else {
            Err(Box::new(form_expired(&self.user.language)))
        }
    }

    pub(crate) fn audit(&self, operation: &str, target: Option<&str>) -> AuditEntry {
        AuditEntry {
            actor: self.user.name.clone(),
            role: Some(self.user.role),
            client_ip: Some(self.client.ip.clone()),
            operation: operation.into(),
            target: target.map(str::to_owned),
        }
    }
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Response> {
        let to_login = || Redirect::to("/login").into_response();
        let Some(secret) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(to_login());
        };
        let id_hash = token_hash(secret);
        let store = app.store.clone();
        let lookup = id_hash.clone();
        let session = blocking(move || store.accounts().session(&lookup, Timestamp::now()))
            .await
            .map_err(IntoResponse::into_response)?;
        let Some(session) = session else {
            return Err(to_login());
        };
        Ok(Signed {
            user: session.user,
            csrf: session.csrf,
            id_hash,
            client: Client::of(parts),
            alarms: app
                .metrics
                .writes
                .alarm()
                .into_iter()
                .chain(app.retention.alarms())
                .collect(),
        })
    }
}

/// After a change: back to the page `to`, or the page of what went wrong.
pub(crate) fn redirect_after(done: Result<(), crate::api::ApiError>, to: &str) -> Response {
    match done {
        Ok(()) => Redirect::to(to).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The page of a request whose parameters cannot be read: 400 with the
/// reason, under the page's own title.
pub(crate) fn bad_request_page(signed: &Signed, title_key: &str, reason: &str) -> Response {
    let l = signed.user.language.as_str();
    let body = html! { p.error role="alert" { (reason) } };
    (
        StatusCode::BAD_REQUEST,
        page(l, t(l, title_key), Some(signed), body),
    )
        .into_response()
}

pub(crate) fn form_expired(lang: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        page(
            lang,
            t(lang, "form_expired"),
            None,
            html! { p.error { (t(lang, "form_expired")) } },
        ),
    )
        .into_response()
}

/// A whole page: head, navigation for the signed-in user, and `body`.
pub(crate) fn page(lang: &str, title: &str, signed: Option<&Signed>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (t(lang, "app")) }
                style { (maud::PreEscaped(STYLE)) }
                script src=(assets::CONSOLE_JS) defer {}
            }
            body {
                @if let Some(s) = signed {
                    nav {
                        a.brand href="/" { (t(lang, "app")) }
                        a href="/" { (t(lang, "nav_home")) }
                        a href="/calls" { (t(lang, "nav_calls")) }
                        a href="/stats" { (t(lang, "nav_stats")) }
                        a href="/cc" { (t(lang, "nav_cc")) }
                        a href="/gateways" { (t(lang, "nav_gateways")) }
                        a href="/sip" { (t(lang, "nav_sip")) }
                        @if s.user.role.allows(Role::Supervisor) {
                            a href="/live" { (t(lang, "nav_live")) }
                            a href="/live/events" { (t(lang, "nav_events")) }
                        }
                        @if s.user.role.allows(Role::Admin) {
                            a href="/admin/users" { (t(lang, "nav_users")) }
                            a href="/admin/blocked" { (t(lang, "nav_blocked")) }
                            a href="/admin/settings" { (t(lang, "nav_settings")) }
                            a href="/audit" { (t(lang, "nav_audit")) }
                            a href="/admin/data" { (t(lang, "nav_data")) }
                            a href="/admin/exports" { (t(lang, "nav_exports")) }
                        }
                        span.who { (t(lang, "signed_in_as")) " " a href="/account" { b { (s.user.name) } } " (" (s.user.role) ")" }
                        form.inline method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(s.csrf);
                            button type="submit" { (t(lang, "nav_logout")) }
                        }
                    }
                }
                @if let Some(s) = signed {
                    @for alarm in &s.alarms { p.banner role="alert" { (alarm) } }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

const STYLE: &str = "
body { font-family: system-ui, sans-serif; margin: 0; color: #1d232a; background: #f6f7f9; }
nav { display: flex; gap: 1.2em; align-items: center; padding: .6em 1.2em; background: #1f3b57; }
nav a, nav .who { color: #fff; text-decoration: none; }
nav .brand { font-weight: bold; }
nav .who { margin-left: auto; }
main { padding: 1em 1.5em; }
table { border-collapse: collapse; background: #fff; font-size: .93em; }
td.time { white-space: nowrap; }
th, td { border: 1px solid #d5dae0; padding: .35em .7em; text-align: left; }
th { background: #e9edf2; }
form.inline { display: inline; }
label { display: block; margin: .6em 0 .2em; }
label.inline { display: inline; margin-right: .8em; }
form.filters { margin-bottom: 1em; }
.pager a { margin-right: 1em; }
td.num { text-align: right; }
td.media div { white-space: nowrap; font-size: .9em; }
.alarm { color: #8a5300; }
.banner { margin: 0; padding: .6em 1.5em; background: #fff1d6; color: #6b3d00; border-bottom: 1px solid #e0b45c; }
@media print { nav, .noprint { display: none; } body { background: #fff; } }
.error { color: #a8071a; }
.ok { color: #1c6b2a; }
.help { color: #5b6470; font-size: .9em; }
";

async fn home(signed: Signed) -> Markup {
    let lang = signed.user.language.clone();
    page(
        &lang,
        t(&lang, "nav_home"),
        Some(&signed),
        html! {
            p { (t(&lang, "home_intro")) }
            p.help { (t(&lang, "home_api")) }
        },
    )
}
