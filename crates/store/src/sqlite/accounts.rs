//! Console and API accounts, kept in `cdrhub.db` beside the journal: users,
//! API tokens and the audit log. Changes are rare, so they go through a
//! connection of their own rather than the journal writer; SQLite
//! serializes them with the writer's commits.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use cdrhub_model::{Role, Timestamp};
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};

use super::schema;
use crate::{Accounts, ApiToken, AuditEntry, StoreError, User};

pub struct SqliteAccounts {
    conn: Mutex<Connection>,
}

impl SqliteAccounts {
    /// Opens `cdrhub.db` in `data_dir` (creating it if needed) for account
    /// changes only. It takes no lock on the data directory, so `cdrhub user`
    /// and `cdrhub token` work while a server runs on it.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let path = data_dir.join("cdrhub.db");
        let open_err = |e: rusqlite::Error| StoreError::Open(format!("{}: {e}", path.display()));
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Open(format!(
                "cannot create data directory {}: {e}",
                data_dir.display()
            ))
        })?;
        let mut conn = Connection::open(&path).map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(open_err)?;
        conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        schema::migrate_journal(&mut conn).map_err(open_err)?;
        Ok(SqliteAccounts {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> Result<std::sync::MutexGuard<'_, Connection>, StoreError> {
        self.conn
            .lock()
            .map_err(|_| StoreError::Unavailable("the accounts connection is poisoned".into()))
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        Ok(f(&*self.conn()?)?)
    }
}

/// The role column as written by `Role::as_str`; an unknown one (written by a
/// newer cdrhub) counts as the least privileged.
fn role(text: String) -> Role {
    text.parse().unwrap_or(Role::Viewer)
}

/// A UNIQUE constraint failed: the name is taken.
fn conflict(e: rusqlite::Error, what: &str) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => {
            StoreError::Conflict(format!("{what} already exists"))
        }
        _ => e.into(),
    }
}

impl Accounts for SqliteAccounts {
    fn user_count(&self) -> Result<u64, StoreError> {
        self.with(|c| c.query_row("SELECT count(*) FROM users", [], |r| r.get::<_, i64>(0)))
            .map(|n| n.max(0) as u64)
    }

    fn add_user(&self, name: &str, role: Role, password_hash: &str) -> Result<(), StoreError> {
        self.conn()?
            .execute(
                "INSERT INTO users (name, role, password_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![name, role.as_str(), password_hash, Timestamp::now().0],
            )
            .map_err(|e| conflict(e, &format!("a user named {name:?}")))?;
        Ok(())
    }

    fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT name, role, password_hash, disabled, language FROM users WHERE name = ?1",
                [name],
                |r| {
                    Ok(User {
                        name: r.get(0)?,
                        role: role(r.get(1)?),
                        password_hash: r.get(2)?,
                        disabled: r.get(3)?,
                        language: r.get(4)?,
                    })
                },
            )
            .optional()
        })
    }

    fn add_token(&self, name: &str, role: Role, token_hash: &[u8]) -> Result<(), StoreError> {
        self.conn()?.execute(
            "INSERT INTO api_tokens (name, role, token_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![name, role.as_str(), token_hash, Timestamp::now().0],
        )
        .map_err(|e| conflict(e, &format!("a token named {name:?}")))?;
        Ok(())
    }

    fn revoke_token(&self, name: &str) -> Result<bool, StoreError> {
        self.with(|c| c.execute("DELETE FROM api_tokens WHERE name = ?1", [name]))
            .map(|n| n > 0)
    }

    fn token(&self, token_hash: &[u8]) -> Result<Option<ApiToken>, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT name, role FROM api_tokens WHERE token_hash = ?1",
                [token_hash],
                |r| {
                    Ok(ApiToken {
                        name: r.get(0)?,
                        role: role(r.get(1)?),
                    })
                },
            )
            .optional()
        })
    }

    fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO audit (at, actor, role, client_ip, operation, target) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    Timestamp::now().0,
                    entry.actor,
                    entry.role.map(Role::as_str),
                    entry.client_ip,
                    entry.operation,
                    entry.target
                ],
            )
        })
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_tokens_are_kept_by_name_and_hash() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = SqliteAccounts::open(dir.path()).unwrap();
        assert_eq!(accounts.user_count().unwrap(), 0);
        accounts
            .add_user("admin", Role::Admin, "$argon2id$x")
            .unwrap();
        let taken = accounts.add_user("admin", Role::Viewer, "$argon2id$y");
        assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
        let admin = accounts.user("admin").unwrap().unwrap();
        assert_eq!((admin.role, admin.disabled), (Role::Admin, false));
        assert!(accounts.user("nobody").unwrap().is_none());

        accounts
            .add_token("grafana", Role::Viewer, &[7; 32])
            .unwrap();
        let token = accounts.token(&[7; 32]).unwrap().unwrap();
        assert_eq!((token.name.as_str(), token.role), ("grafana", Role::Viewer));
        assert!(accounts.token(&[8; 32]).unwrap().is_none());
        assert!(accounts.revoke_token("grafana").unwrap());
        assert!(!accounts.revoke_token("grafana").unwrap());
        assert!(accounts.token(&[7; 32]).unwrap().is_none());

        accounts
            .audit(&AuditEntry {
                actor: "cli".into(),
                role: None,
                client_ip: None,
                operation: "token revoke".into(),
                target: Some("grafana".into()),
            })
            .unwrap();
    }
}
