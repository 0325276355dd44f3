//! Who is calling (issue 3, point 1). The API takes an API token in an
//! `Authorization: Bearer` header; `/healthz`, the ingest paths and, unless
//! configured otherwise, `/metrics` take none. Only hashes of secrets are
//! stored: argon2id for passwords, SHA-256 for tokens, which are 256 random
//! bits and need no slow hash.

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cdrhub_model::{Role, Timestamp};
use cdrhub_store::{Accounts, AuditEntry, StoreError};
use ring::rand::{SecureRandom, SystemRandom};

use crate::AppState;
use crate::api::{ApiError, blocking};

/// Who an authenticated request comes from.
#[derive(Debug, Clone)]
pub struct Principal {
    pub name: String,
    pub role: Role,
}

impl Principal {
    /// Ok when this principal's role may do what `needed` may.
    pub(crate) fn require(&self, needed: Role, what: &str) -> Result<(), ApiError> {
        if self.role.allows(needed) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "{what} needs the {needed} role or higher; {} has the {} role",
                self.name, self.role
            )))
        }
    }
}

/// 256 random bits from the operating system, base64url (43 characters):
/// API tokens and generated passwords.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the operating system's random source works");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the store keeps of an API token.
pub fn token_hash(token: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec()
}

/// An argon2id PHC string with a fresh salt. Slow on purpose: call it off
/// the async runtime.
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::PasswordHasher;
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// Whether `password` matches the stored PHC string. Slow on purpose.
pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// On a store without users, creates `admin` with a generated password and
/// returns the password, to be shown once. There are no default passwords.
pub fn ensure_first_admin(accounts: &dyn Accounts) -> Result<Option<String>, StoreError> {
    if accounts.user_count()? > 0 {
        return Ok(None);
    }
    let password = new_secret();
    let hash = hash_password(&password).map_err(StoreError::Unavailable)?;
    match accounts.add_user("admin", Role::Admin, &hash) {
        Ok(()) => {}
        // Another process made the first user meanwhile.
        Err(StoreError::Conflict(_)) => return Ok(None),
        Err(e) => return Err(e),
    }
    accounts.audit(&AuditEntry {
        actor: "cdrhub".into(),
        role: None,
        client_ip: None,
        operation: "user add".into(),
        target: Some("admin".into()),
    })?;
    Ok(Some(password))
}

/// Middleware: lets a request through only with a valid API token, or, for
/// reading (GET, HEAD), with a console session cookie, and hands the
/// handlers its [`Principal`]. Cookies never authorize a change, so no page
/// of another site can make one through the API.
pub(crate) async fn require_auth(
    State(app): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    let reading = matches!(*req.method(), Method::GET | Method::HEAD);
    let session = crate::console::cookie(req.headers(), crate::console::SESSION_COOKIE)
        .filter(|_| reading && token.is_none())
        .map(token_hash);
    let store = app.store.clone();
    let found = match (token, session) {
        (Some(token), _) => {
            let hash = token_hash(&token);
            blocking(move || store.accounts().token(&hash))
                .await
                .map(|t| {
                    t.map(|t| Principal {
                        name: t.name,
                        role: t.role,
                    })
                })
        }
        (None, Some(id_hash)) => {
            blocking(move || store.accounts().session(&id_hash, Timestamp::now()))
                .await
                .map(|s| {
                    s.map(|s| Principal {
                        name: s.user.name,
                        role: s.user.role,
                    })
                })
        }
        (None, None) => {
            return ApiError::Unauthorized(
                "this API needs an API token in an Authorization: Bearer header \
                 (create one with `cdrhub token create NAME --role ROLE`)"
                    .into(),
            )
            .into_response();
        }
    };
    match found {
        Ok(Some(principal)) => {
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
        Ok(None) => ApiError::Unauthorized(
            "the API token or session is not valid: unknown, revoked or expired".into(),
        )
        .into_response(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_hash_only() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("correct horse ", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn secrets_are_long_and_different() {
        let (a, b) = (new_secret(), new_secret());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert_eq!(token_hash(&a).len(), 32);
        assert_ne!(token_hash(&a), token_hash(&b));
    }
}
