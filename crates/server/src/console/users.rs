//! Users and API tokens (admin), and each user's own account: password and
//! console language. Every change is audited.

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use cdrhub_model::Role;
use cdrhub_store::StoreError;
use maud::{Markup, html};
use serde::Deserialize;

use super::i18n::LANGUAGE_CODES;
use super::{Signed, page, redirect_after, t};
use crate::AppState;
use crate::api::blocking;
use crate::auth::{hash_password, new_secret, token_hash, verify_password};

/// Shortest password a user may choose.
const MIN_PASSWORD_CHARS: usize = 8;

fn role_select(l: &str) -> Markup {
    html! {
        select name="role" {
            @for r in Role::ALL { option value=(r.as_str()) selected[r == Role::Viewer] { (r) } }
        }
        " " span.help { (t(l, "roles_help")) }
    }
}

/// The users and tokens page, with a notice (a created token is shown here
/// once) or an error.
async fn users_page(
    app: &AppState,
    signed: &Signed,
    status: StatusCode,
    notice: Option<Markup>,
) -> Response {
    let store = app.store.clone();
    let listed =
        blocking(move || Ok((store.accounts().users()?, store.accounts().tokens()?))).await;
    let (users, tokens) = match listed {
        Ok(lists) => lists,
        Err(e) => return e.into_response(),
    };
    let l = signed.user.language.as_str();
    let body = html! {
        @if let Some(n) = notice { (n) }
        h2 { (t(l, "users_title")) }
        table #users {
            tr { th { (t(l, "login_user")) } th { (t(l, "role")) } th { (t(l, "users_state")) } th { (t(l, "users_language")) } th {} }
            @for u in &users {
                tr {
                    td { (u.name) } td { (u.role) }
                    td { @if u.disabled { (t(l, "users_disabled")) } @else { (t(l, "users_enabled")) } }
                    td { (u.language) }
                    td {
                        @if u.name != signed.user.name {
                            form.inline method="post" action="/admin/users/disable" {
                                input type="hidden" name="csrf" value=(signed.csrf);
                                input type="hidden" name="name" value=(u.name);
                                input type="hidden" name="disabled" value=(if u.disabled { "false" } else { "true" });
                                button type="submit" { @if u.disabled { (t(l, "users_enable")) } @else { (t(l, "users_disable")) } }
                            }
                        }
                    }
                }
            }
        }
        h3 { (t(l, "users_add")) }
        form #add-user method="post" action="/admin/users/add" {
            input type="hidden" name="csrf" value=(signed.csrf);
            label for="new-name" { (t(l, "login_user")) }
            input #new-name name="name" required pattern="[A-Za-z0-9._@-]{1,64}";
            label for="new-password" { (t(l, "login_password")) }
            input #new-password name="password" type="password" autocomplete="new-password" required minlength=(MIN_PASSWORD_CHARS);
            label { (t(l, "role")) } (role_select(l))
            p { button type="submit" { (t(l, "users_add")) } }
        }
        h2 { (t(l, "tokens_title")) }
        table #tokens {
            tr { th { (t(l, "tokens_name")) } th { (t(l, "role")) } th {} }
            @for tok in &tokens {
                tr {
                    td { (tok.name) } td { (tok.role) }
                    td {
                        form.inline method="post" action="/admin/tokens/revoke" {
                            input type="hidden" name="csrf" value=(signed.csrf);
                            input type="hidden" name="name" value=(tok.name);
                            button type="submit" { (t(l, "tokens_revoke")) }
                        }
                    }
                }
            }
        }
        h3 { (t(l, "tokens_create")) }
        form #create-token method="post" action="/admin/tokens/create" {
            input type="hidden" name="csrf" value=(signed.csrf);
            label for="token-name" { (t(l, "tokens_name")) }
            input #token-name name="name" required pattern="[A-Za-z0-9._@-]{1,64}";
            label { (t(l, "role")) } (role_select(l))
            p { button type="submit" { (t(l, "tokens_create")) } }
        }
    };
    (status, page(l, t(l, "nav_users"), Some(signed), body)).into_response()
}

fn error_notice(text: &str) -> Markup {
    html! { p.error role="alert" { (text) } }
}

/// The users page with `text` as its error, 400.
async fn refuse(app: &AppState, signed: &Signed, text: &str) -> Response {
    users_page(
        app,
        signed,
        StatusCode::BAD_REQUEST,
        Some(error_notice(text)),
    )
    .await
}

/// The role of a form, and a name for a user or token: 1 to 64 letters,
/// digits, dots, hyphens, underscores or @. Else the sentence saying why.
fn role_and_name(role: &str, name: &str, lang: &str) -> Result<Role, String> {
    let role: Role = role.parse()?;
    let valid = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b));
    if valid {
        Ok(role)
    } else {
        Err(t(lang, "users_bad_name").to_owned())
    }
}

pub(crate) async fn list(State(app): State<AppState>, signed: Signed) -> Response {
    if let Err(refused) = signed.require(Role::Admin) {
        return *refused;
    }
    users_page(&app, &signed, StatusCode::OK, None).await
}

#[derive(Deserialize)]
pub(crate) struct AddUserForm {
    csrf: String,
    name: String,
    password: String,
    role: String,
}

pub(crate) async fn add(
    State(app): State<AppState>,
    signed: Signed,
    Form(form): Form<AddUserForm>,
) -> Response {
    if let Err(refused) = signed.may_change(Role::Admin, &form.csrf) {
        return *refused;
    }
    let lang = signed.user.language.clone();
    let role = match role_and_name(&form.role, &form.name, &lang) {
        Ok(role) if form.password.chars().count() >= MIN_PASSWORD_CHARS => role,
        Ok(_) => return refuse(&app, &signed, t(&lang, "password_short")).await,
        Err(text) => return refuse(&app, &signed, &text).await,
    };
    let store = app.store.clone();
    let entry = signed.audit("user add", Some(&format!("{} ({role})", form.name)));
    let name = form.name.clone();
    let added = blocking(move || {
        let hash = hash_password(&form.password).map_err(StoreError::Unavailable)?;
        store.accounts().add_user(&name, role, &hash)?;
        store.accounts().audit(&entry)
    })
    .await;
    match added {
        Ok(()) => Redirect::to("/admin/users").into_response(),
        Err(crate::api::ApiError::Conflict(text)) => {
            users_page(
                &app,
                &signed,
                StatusCode::CONFLICT,
                Some(error_notice(&text)),
            )
            .await
        }
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
pub(crate) struct DisableForm {
    csrf: String,
    name: String,
    disabled: bool,
}

pub(crate) async fn disable(
    State(app): State<AppState>,
    signed: Signed,
    Form(form): Form<DisableForm>,
) -> Response {
    if let Err(refused) = signed.may_change(Role::Admin, &form.csrf) {
        return *refused;
    }
    if form.name == signed.user.name {
        return refuse(&app, &signed, t(&signed.user.language, "users_not_self")).await;
    }
    let store = app.store.clone();
    let operation = if form.disabled {
        "user disable"
    } else {
        "user enable"
    };
    let entry = signed.audit(operation, Some(&form.name));
    let done = blocking(move || {
        if store
            .accounts()
            .set_user_disabled(&form.name, form.disabled)?
        {
            store.accounts().audit(&entry)?;
        }
        Ok(())
    })
    .await;
    redirect_after(done, "/admin/users")
}

#[derive(Deserialize)]
pub(crate) struct TokenForm {
    csrf: String,
    name: String,
    role: Option<String>,
}

pub(crate) async fn create_token(
    State(app): State<AppState>,
    signed: Signed,
    Form(form): Form<TokenForm>,
) -> Response {
    if let Err(refused) = signed.may_change(Role::Admin, &form.csrf) {
        return *refused;
    }
    let l = signed.user.language.clone();
    let role = match role_and_name(form.role.as_deref().unwrap_or("viewer"), &form.name, &l) {
        Ok(role) => role,
        Err(text) => return refuse(&app, &signed, &text).await,
    };
    let secret = new_secret();
    let store = app.store.clone();
    let entry = signed.audit("token create", Some(&format!("{} ({role})", form.name)));
    let (name, hash) = (form.name.clone(), token_hash(&secret));
    let created = blocking(move || {
        store.accounts().add_token(&name, role, &hash)?;
        store.accounts().audit(&entry)
    })
    .await;
    match created {
        Ok(()) => {
            let notice = html! {
                p.ok role="status" {
                    (t(&l, "tokens_created")) " " b { (form.name) } ": "
                    code #new-token { (secret) }
                }
            };
            users_page(&app, &signed, StatusCode::OK, Some(notice)).await
        }
        Err(crate::api::ApiError::Conflict(text)) => {
            users_page(
                &app,
                &signed,
                StatusCode::CONFLICT,
                Some(error_notice(&text)),
            )
            .await
        }
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn revoke_token(
    State(app): State<AppState>,
    signed: Signed,
    Form(form): Form<TokenForm>,
) -> Response {
    if let Err(refused) = signed.may_change(Role::Admin, &form.csrf) {
        return *refused;
    }
    let store = app.store.clone();
    let entry = signed.audit("token revoke", Some(&form.name));
    let done = blocking(move || {
        if store.accounts().revoke_token(&form.name)? {
            store.accounts().audit(&entry)?;
        }
        Ok(())
    })
    .await;
    redirect_after(done, "/admin/users")
}

fn account_page(signed: &Signed, status: StatusCode, notice: Option<Markup>) -> Response {
    let l = signed.user.language.as_str();
    let body = html! {
        @if let Some(n) = notice { (n) }
        h2 { (t(l, "account_password")) }
        form #password-form method="post" action="/account/password" {
            input type="hidden" name="csrf" value=(signed.csrf);
            label for="current" { (t(l, "account_current")) }
            input #current name="current" type="password" autocomplete="current-password" required;
            label for="new" { (t(l, "account_new")) }
            input #new name="new" type="password" autocomplete="new-password" required minlength=(MIN_PASSWORD_CHARS);
            label for="repeat" { (t(l, "account_repeat")) }
            input #repeat name="repeat" type="password" autocomplete="new-password" required minlength=(MIN_PASSWORD_CHARS);
            p { button type="submit" { (t(l, "account_change")) } }
        }
        h2 { (t(l, "users_language")) }
        form #language-form method="post" action="/account/language" {
            input type="hidden" name="csrf" value=(signed.csrf);
            select name="language" {
                @for code in LANGUAGE_CODES { option value=(code) selected[*code == l] { (t(code, "language_name")) } }
            }
            " " button type="submit" { (t(l, "settings_save")) }
        }
    };
    (status, page(l, t(l, "nav_account"), Some(signed), body)).into_response()
}

pub(crate) async fn account(signed: Signed) -> Response {
    account_page(&signed, StatusCode::OK, None)
}

#[derive(Deserialize)]
pub(crate) struct PasswordForm {
    csrf: String,
    current: String,
    new: String,
    repeat: String,
}

pub(crate) async fn change_password(
    State(app): State<AppState>,
    signed: Signed,
    Form(form): Form<PasswordForm>,
) -> Response {
    if let Err(refused) = signed.may_change(Role::Viewer, &form.csrf) {
        return *refused;
    }
    let l = signed.user.language.clone();
    let refuse = |key: &str| {
        account_page(
            &signed,
            StatusCode::BAD_REQUEST,
            Some(error_notice(t(&l, key))),
        )
    };
    if form.new != form.repeat {
        return refuse("password_mismatch");
    }
    if form.new.chars().count() < MIN_PASSWORD_CHARS {
        return refuse("password_short");
    }
    let store = app.store.clone();
    let (name, current_hash, keep) = (
        signed.user.name.clone(),
        signed.user.password_hash.clone(),
        signed.id_hash.clone(),
    );
    let entry = signed.audit("password change", Some(&signed.user.name));
    let changed = blocking(move || {
        if !verify_password(&form.current, &current_hash) {
            return Ok(false);
        }
        let hash = hash_password(&form.new).map_err(StoreError::Unavailable)?;
        store.accounts().set_password(&name, &hash, Some(&keep))?;
        store.accounts().audit(&entry)?;
        Ok(true)
    })
    .await;
    match changed {
        Ok(true) => account_page(
            &signed,
            StatusCode::OK,
            Some(html! { p.ok role="status" { (t(&l, "password_changed")) } }),
        ),
        Ok(false) => refuse("password_wrong"),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
pub(crate) struct LanguageForm {
    csrf: String,
    language: String,
}

pub(crate) async fn change_language(
    State(app): State<AppState>,
    signed: Signed,
    Form(form): Form<LanguageForm>,
) -> Response {
    if let Err(refused) = signed.may_change(Role::Viewer, &form.csrf) {
        return *refused;
    }
    if !LANGUAGE_CODES.contains(&form.language.as_str()) {
        return account_page(
            &signed,
            StatusCode::BAD_REQUEST,
            Some(error_notice("unknown language")),
        );
    }
    let store = app.store.clone();
    let name = signed.user.name.clone();
    match blocking(move || store.accounts().set_language(&name, &form.language)).await {
        Ok(_) => Redirect::to("/account").into_response(),
        Err(e) => e.into_response(),
    }
}
