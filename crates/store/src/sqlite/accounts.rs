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
use crate::{
    Accounts, ApiToken, AuditEntry, AuditFilter, AuditPage, AuditRecord, BlockedIp, LoginFailures,
    Session, StoreError, User,
};

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

    pub(super) fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        Ok(f(&*self.conn()?)?)
    }

    /// The same connection through the common SQL handle.
    pub(super) fn with_db<T>(
        &self,
        f: impl FnOnce(crate::db::Db<'_>) -> crate::db::Result<T>,
    ) -> Result<T, StoreError> {
        Ok(f(crate::db::Db::Sqlite(&*self.conn()?))?)
    }
}

/// The role column as written by `Role::as_str`; an unknown one (written by a
/// newer cdrhub) counts as the least privileged.
fn role(text: String) -> Role {
    text.parse().unwrap_or(Role::Viewer)
}

/// The columns `user_from_row` reads, first in a query.
const USER_COLUMNS: &str = "name, role, password_hash, disabled, language";

fn user_from_row(r: &rusqlite::Row) -> rusqlite::Result<User> {
    Ok(User {
        name: r.get(0)?,
        role: role(r.get(1)?),
        password_hash: r.get(2)?,
        disabled: r.get(3)?,
        language: r.get(4)?,
    })
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
                &format!("SELECT {USER_COLUMNS} FROM users WHERE name = ?1"),
                [name],
                user_from_row,
            )
            .optional()
        })
    }

    fn users(&self) -> Result<Vec<User>, StoreError> {
        self.with(|c| {
            c.prepare(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY name"))?
                .query_map([], user_from_row)?
                .collect()
        })
    }

    fn set_user_disabled(&self, name: &str, disabled: bool) -> Result<bool, StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE users SET disabled = ?2 WHERE name = ?1",
                params![name, disabled],
            )
        })
        .map(|n| n > 0)
    }

    fn set_password(
        &self,
        name: &str,
        password_hash: &str,
        keep_session: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let changed = tx.execute(
            "UPDATE users SET password_hash = ?2 WHERE name = ?1",
            params![name, password_hash],
        )?;
        tx.execute(
            "DELETE FROM sessions WHERE user_name = ?1 AND id_hash IS NOT ?2",
            params![name, keep_session],
        )?;
        tx.commit()?;
        Ok(changed > 0)
    }

    fn set_language(&self, name: &str, language: &str) -> Result<bool, StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE users SET language = ?2 WHERE name = ?1",
                params![name, language],
            )
        })
        .map(|n| n > 0)
    }

    fn tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        self.with(|c| {
            c.prepare("SELECT name, role FROM api_tokens ORDER BY name")?
                .query_map([], |r| {
                    Ok(ApiToken {
                        name: r.get(0)?,
                        role: role(r.get(1)?),
                    })
                })?
                .collect()
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

    fn audit_log(&self, filter: &AuditFilter) -> Result<AuditPage, StoreError> {
        // One WHERE clause for both queries; every value is a parameter.
        let pattern = filter.q.as_deref().filter(|q| !q.is_empty()).map(|q| {
            let escaped = q
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        });
        let clause = "(?1 IS NULL OR at >= ?1) AND (?2 IS NULL OR at < ?2) AND (?3 IS NULL OR \
             actor LIKE ?3 ESCAPE '\\' OR operation LIKE ?3 ESCAPE '\\' OR \
             coalesce(target, '') LIKE ?3 ESCAPE '\\' OR coalesce(client_ip, '') LIKE ?3 ESCAPE '\\')";
        let bounds = params![filter.from.map(|t| t.0), filter.to.map(|t| t.0), pattern];
        self.with(|c| {
            let total: i64 = c.query_row("SELECT count(*) FROM audit", [], |r| r.get(0))?;
            let matching: i64 = c.query_row(
                &format!("SELECT count(*) FROM audit WHERE {clause}"),
                bounds,
                |r| r.get(0),
            )?;
            let entries = c
                .prepare(&format!(
                    "SELECT at, actor, role, client_ip, operation, target FROM audit WHERE {clause} \
                     ORDER BY id DESC LIMIT ?4 OFFSET ?5"
                ))?
                .query_map(
                    params![
                        filter.from.map(|t| t.0),
                        filter.to.map(|t| t.0),
                        pattern,
                        filter.limit.min(i64::MAX as u64) as i64,
                        filter.offset.min(i64::MAX as u64) as i64
                    ],
                    |r| {
                        Ok(AuditRecord {
                            at: Timestamp(r.get(0)?),
                            actor: r.get(1)?,
                            role: r.get(2)?,
                            client_ip: r.get(3)?,
                            operation: r.get(4)?,
                            target: r.get(5)?,
                        })
                    },
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(AuditPage {
                entries,
                matching: matching.max(0) as u64,
                total: total.max(0) as u64,
            })
        })
    }

    fn create_session(
        &self,
        id_hash: &[u8],
        user: &str,
        csrf: &str,
        client_ip: Option<&str>,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO sessions (id_hash, user_name, csrf, client_ip, created_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id_hash, user, csrf, client_ip, Timestamp::now().0, expires_at.0],
            )
        })
        .map(|_| ())
    }

    fn session(&self, id_hash: &[u8], now: Timestamp) -> Result<Option<Session>, StoreError> {
        self.with(|c| {
            c.query_row(
                &format!(
                    "SELECT {USER_COLUMNS}, s.csrf, s.expires_at \
                     FROM sessions s JOIN users u ON u.name = s.user_name \
                     WHERE s.id_hash = ?1 AND s.expires_at > ?2 AND u.disabled = 0"
                ),
                params![id_hash, now.0],
                |r| {
                    Ok(Session {
                        user: user_from_row(r)?,
                        csrf: r.get(5)?,
                        expires_at: Timestamp(r.get(6)?),
                    })
                },
            )
            .optional()
        })
    }

    fn delete_session(&self, id_hash: &[u8]) -> Result<(), StoreError> {
        self.with(|c| c.execute("DELETE FROM sessions WHERE id_hash = ?1", [id_hash]))
            .map(|_| ())
    }

    fn record_login_failure(
        &self,
        client_ip: &str,
        login_id: &str,
        now: Timestamp,
        block_after: u32,
        block_minutes: u32,
    ) -> Result<LoginFailures, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let row: Option<(i64, Option<i64>)> = tx
            .query_row(
                "SELECT failures, blocked_until FROM login_failures WHERE client_ip = ?1",
                [client_ip],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (mut failures, mut blocked_until) = match row {
            // A block that has ended starts the count again.
            Some((_, Some(until))) if until <= now.0 => (0, None),
            Some((n, until)) => (n, until),
            None => (0, None),
        };
        failures += 1;
        let mut blocked_at = None;
        if blocked_until.is_none() && failures >= i64::from(block_after.max(1)) {
            blocked_at = Some(now.0);
            blocked_until = Some(now.0 + i64::from(block_minutes) * 60_000);
        }
        tx.execute(
            "INSERT INTO login_failures (client_ip, failures, last_login_id, last_at, blocked_at, blocked_until) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT(client_ip) DO UPDATE SET failures = excluded.failures, \
               last_login_id = excluded.last_login_id, last_at = excluded.last_at, \
               blocked_at = coalesce(excluded.blocked_at, CASE WHEN excluded.blocked_until IS NULL THEN NULL ELSE blocked_at END), \
               blocked_until = excluded.blocked_until",
            params![client_ip, failures, login_id, now.0, blocked_at, blocked_until],
        )?;
        tx.commit()?;
        Ok(LoginFailures {
            failures: failures.clamp(0, i64::from(u32::MAX)) as u32,
            blocked_until: blocked_until.map(Timestamp),
        })
    }

    fn blocked_until(
        &self,
        client_ip: &str,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT blocked_until FROM login_failures WHERE client_ip = ?1 AND blocked_until > ?2",
                params![client_ip, now.0],
                |r| r.get::<_, i64>(0),
            )
            .optional()
        })
        .map(|t| t.map(Timestamp))
    }

    fn clear_login_failures(&self, client_ip: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "DELETE FROM login_failures WHERE client_ip = ?1",
                [client_ip],
            )
        })
        .map(|_| ())
    }

    fn blocked_ips(&self, now: Timestamp) -> Result<Vec<BlockedIp>, StoreError> {
        self.with(|c| {
            c.prepare(
                "SELECT client_ip, last_login_id, blocked_at, blocked_until FROM login_failures \
                 WHERE blocked_until > ?1 ORDER BY blocked_at DESC",
            )?
            .query_map([now.0], |r| {
                Ok(BlockedIp {
                    client_ip: r.get(0)?,
                    login_id: r.get(1)?,
                    blocked_at: Timestamp(r.get::<_, Option<i64>>(2)?.unwrap_or(0)),
                    blocked_until: Timestamp(r.get(3)?),
                })
            })?
            .collect()
        })
    }

    fn unblock(&self, client_ip: &str) -> Result<bool, StoreError> {
        self.with(|c| {
            c.execute(
                "DELETE FROM login_failures WHERE client_ip = ?1 AND blocked_until IS NOT NULL",
                [client_ip],
            )
        })
        .map(|n| n > 0)
    }

    fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.with(|c| {
            c.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()
        })
    }

    fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) \
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
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
        let all = accounts
            .audit_log(&AuditFilter {
                limit: 10,
                ..AuditFilter::default()
            })
            .unwrap();
        assert_eq!(
            (all.total, all.matching, all.entries[0].operation.as_str()),
            (1, 1, "token revoke")
        );
        let none = accounts
            .audit_log(&AuditFilter {
                q: Some("50%_off".into()),
                limit: 10,
                ..AuditFilter::default()
            })
            .unwrap();
        assert_eq!((none.total, none.matching, none.entries.len()), (1, 0, 0));
        let found = accounts
            .audit_log(&AuditFilter {
                q: Some("GRAF".into()),
                limit: 10,
                ..AuditFilter::default()
            })
            .unwrap();
        assert_eq!(found.matching, 1, "LIKE ignores ASCII case");
    }

    #[test]
    fn an_address_is_blocked_after_its_failures_until_the_block_ends() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = SqliteAccounts::open(dir.path()).unwrap();
        let t0 = Timestamp(1_800_000_000_000);
        let fail = |t: Timestamp| {
            accounts
                .record_login_failure("192.0.2.7", "root", t, 5, 60)
                .unwrap()
        };
        for n in 1..=4 {
            assert_eq!(
                fail(t0),
                LoginFailures {
                    failures: n,
                    blocked_until: None
                }
            );
        }
        let blocked = fail(t0);
        assert_eq!(blocked.failures, 5);
        let until = blocked.blocked_until.expect("blocked at the fifth");
        assert_eq!(until.0 - t0.0, 60 * 60_000);
        assert_eq!(
            accounts.blocked_until("192.0.2.7", t0).unwrap(),
            Some(until)
        );
        assert_eq!(accounts.blocked_until("192.0.2.8", t0).unwrap(), None);
        let list = accounts.blocked_ips(t0).unwrap();
        assert_eq!((list.len(), list[0].login_id.as_str()), (1, "root"));
        // Failing while blocked does not extend the block.
        assert_eq!(fail(t0).blocked_until, Some(until));
        // Once it has ended, counting starts again.
        assert_eq!(accounts.blocked_until("192.0.2.7", until).unwrap(), None);
        assert_eq!(
            fail(until),
            LoginFailures {
                failures: 1,
                blocked_until: None
            }
        );
        assert!(
            !accounts.unblock("192.0.2.7").unwrap(),
            "not blocked any more"
        );
        for _ in 0..4 {
            fail(until);
        }
        assert!(accounts.unblock("192.0.2.7").unwrap());
        assert_eq!(accounts.blocked_until("192.0.2.7", until).unwrap(), None);
    }

    #[test]
    fn a_session_ends_with_its_expiry_its_deletion_or_its_user() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = SqliteAccounts::open(dir.path()).unwrap();
        accounts
            .add_user("ann", Role::Supervisor, "$argon2id$x")
            .unwrap();
        let now = Timestamp(1_800_000_000_000);
        let later = Timestamp(now.0 + 1000);
        accounts
            .create_session(&[1; 32], "ann", "csrf-1", Some("127.0.0.1"), later)
            .unwrap();
        let session = accounts.session(&[1; 32], now).unwrap().unwrap();
        assert_eq!(
            (session.user.name.as_str(), session.csrf.as_str()),
            ("ann", "csrf-1")
        );
        assert!(
            accounts.session(&[1; 32], later).unwrap().is_none(),
            "expired"
        );
        assert!(accounts.session(&[2; 32], now).unwrap().is_none());
        accounts.delete_session(&[1; 32]).unwrap();
        assert!(accounts.session(&[1; 32], now).unwrap().is_none());
        for id in [[3; 32], [4; 32]] {
            accounts
                .create_session(&id, "ann", "c", None, later)
                .unwrap();
        }
        assert!(
            accounts
                .set_password("ann", "$argon2id$new", Some(&[3; 32]))
                .unwrap()
        );
        assert!(
            accounts.session(&[3; 32], now).unwrap().is_some(),
            "the changer's own session stays"
        );
        assert!(
            accounts.session(&[4; 32], now).unwrap().is_none(),
            "the others end"
        );
        assert!(accounts.set_user_disabled("ann", true).unwrap());
        assert!(
            accounts.session(&[3; 32], now).unwrap().is_none(),
            "disabled: no session"
        );
        assert!(!accounts.set_user_disabled("nobody", true).unwrap());
        assert_eq!(accounts.users().unwrap().len(), 1);
        accounts.set_setting("login.block_after", "7").unwrap();
        assert_eq!(
            accounts.setting("login.block_after").unwrap().as_deref(),
            Some("7")
        );
        assert_eq!(accounts.setting("nothing").unwrap(), None);
    }
}
