//! Console and API accounts on PostgreSQL: users, API tokens, the audit
//! log, console sessions, failed logins and settings, with the semantics of
//! the SQLite store (`sqlite/accounts.rs`). Every process sharing the
//! database sees the others' changes at once; read-modify-write steps lock
//! the row they change, so processes do not lose each other's updates.

use ::postgres::error::SqlState;
use ::postgres::{Client, IsolationLevel, Row};
use cdrhub_model::{Role, Timestamp};

use super::pool::PgPool;
use super::schema;
use crate::{
    Accounts, ApiToken, AuditEntry, AuditFilter, AuditPage, AuditRecord, BlockedIp, LoginFailures,
    Session, StoreError, User,
};

/// Connections for account changes and lookups: they are rare and short.
const ACCOUNT_CONNECTIONS: usize = 4;

pub struct PgAccounts {
    pool: PgPool,
}

impl PgAccounts {
    /// Connects to the database at `url` (see [`PgPool::connect`]) and
    /// brings its schema up to date.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        Self::with_pool(PgPool::connect(url, ACCOUNT_CONNECTIONS)?)
    }

    /// Accounts on connections of `pool`, shared with the rest of the store;
    /// brings the schema up to date.
    pub fn with_pool(pool: PgPool) -> Result<Self, StoreError> {
        let accounts = PgAccounts { pool };
        accounts.with(schema::migrate)?;
        Ok(accounts)
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, ::postgres::Error>,
    ) -> Result<T, StoreError> {
        let mut conn = self.pool.get()?;
        f(&mut conn).map_err(|e| self.pool.error(e))
    }

    /// Like `with`, but a unique violation is a [`StoreError::Conflict`]:
    /// `what` is taken.
    fn insert_unique(
        &self,
        what: &str,
        f: impl FnOnce(&mut Client) -> Result<u64, ::postgres::Error>,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.get()?;
        match f(&mut conn) {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                Err(StoreError::Conflict(format!("{what} already exists")))
            }
            Err(e) => Err(self.pool.error(e)),
        }
    }
}

/// The role column as written by `Role::as_str`; an unknown one (written by a
/// newer cdrhub) counts as the least privileged.
fn role(text: String) -> Role {
    text.parse().unwrap_or(Role::Viewer)
}

/// The columns `user_from_row` reads, first in a query.
const USER_COLUMNS: &str = "u.name, u.role, u.password_hash, u.disabled, u.language";

fn user_from_row(r: &Row) -> Result<User, ::postgres::Error> {
    Ok(User {
        name: r.try_get(0)?,
        role: role(r.try_get(1)?),
        password_hash: r.try_get(2)?,
        disabled: r.try_get(3)?,
        language: r.try_get(4)?,
    })
}

fn token_from_row(r: &Row) -> Result<ApiToken, ::postgres::Error> {
    Ok(ApiToken {
        name: r.try_get(0)?,
        role: role(r.try_get(1)?),
    })
}

fn count(n: i64) -> u64 {
    n.max(0) as u64
}

impl Accounts for PgAccounts {
    fn user_count(&self) -> Result<u64, StoreError> {
        self.with(|c| c.query_one("SELECT count(*) FROM users", &[])?.try_get(0))
            .map(count)
    }

    fn add_user(&self, name: &str, role: Role, password_hash: &str) -> Result<(), StoreError> {
        self.insert_unique(&format!("a user named {name:?}"), |c| {
            c.execute(
                "INSERT INTO users (name, role, password_hash, created_at) VALUES ($1, $2, $3, $4)",
                &[&name, &role.as_str(), &password_hash, &Timestamp::now().0],
            )
        })
    }

    fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        self.with(|c| {
            c.query_opt(
                &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.name = $1"),
                &[&name],
            )?
            .as_ref()
            .map(user_from_row)
            .transpose()
        })
    }

    fn users(&self) -> Result<Vec<User>, StoreError> {
        self.with(|c| {
            c.query(
                &format!("SELECT {USER_COLUMNS} FROM users u ORDER BY u.name"),
                &[],
            )?
            .iter()
            .map(user_from_row)
            .collect()
        })
    }

    fn set_user_disabled(&self, name: &str, disabled: bool) -> Result<bool, StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE users SET disabled = $2 WHERE name = $1",
                &[&name, &disabled],
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
        self.with(|c| {
            let mut tx = c.transaction()?;
            let changed = tx.execute(
                "UPDATE users SET password_hash = $2 WHERE name = $1",
                &[&name, &password_hash],
            )?;
            tx.execute(
                "DELETE FROM sessions WHERE user_name = $1 AND id_hash IS DISTINCT FROM $2",
                &[&name, &keep_session],
            )?;
            tx.commit()?;
            Ok(changed > 0)
        })
    }

    fn set_language(&self, name: &str, language: &str) -> Result<bool, StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE users SET language = $2 WHERE name = $1",
                &[&name, &language],
            )
        })
        .map(|n| n > 0)
    }

    fn tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        self.with(|c| {
            c.query("SELECT name, role FROM api_tokens ORDER BY name", &[])?
                .iter()
                .map(token_from_row)
                .collect()
        })
    }

    fn add_token(&self, name: &str, role: Role, token_hash: &[u8]) -> Result<(), StoreError> {
        self.insert_unique(&format!("a token named {name:?}"), |c| {
            c.execute(
                "INSERT INTO api_tokens (name, role, token_hash, created_at) \
                 VALUES ($1, $2, $3, $4)",
                &[&name, &role.as_str(), &token_hash, &Timestamp::now().0],
            )
        })
    }

    fn revoke_token(&self, name: &str) -> Result<bool, StoreError> {
        self.with(|c| c.execute("DELETE FROM api_tokens WHERE name = $1", &[&name]))
            .map(|n| n > 0)
    }

    fn token(&self, token_hash: &[u8]) -> Result<Option<ApiToken>, StoreError> {
        self.with(|c| {
            c.query_opt(
                "SELECT name, role FROM api_tokens WHERE token_hash = $1",
                &[&token_hash],
            )?
            .as_ref()
            .map(token_from_row)
            .transpose()
        })
    }

    fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO audit (at, actor, role, client_ip, operation, target) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &Timestamp::now().0,
                    &entry.actor,
                    &entry.role.map(Role::as_str),
                    &entry.client_ip,
                    &entry.operation,
                    &entry.target,
                ],
            )
        })
        .map(|_| ())
    }

    fn audit_log(&self, filter: &AuditFilter) -> Result<AuditPage, StoreError> {
        // One WHERE clause for both queries; every value is a parameter.
        // ILIKE's default escape character is the backslash.
        let pattern = filter.q.as_deref().filter(|q| !q.is_empty()).map(|q| {
            let escaped = q
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        });
        let clause = "($1::BIGINT IS NULL OR at >= $1) AND ($2::BIGINT IS NULL OR at < $2) AND \
             ($3::TEXT IS NULL OR actor ILIKE $3 OR operation ILIKE $3 OR \
             coalesce(target, '') ILIKE $3 OR coalesce(client_ip, '') ILIKE $3)";
        let from = filter.from.map(|t| t.0);
        let to = filter.to.map(|t| t.0);
        let limit = filter.limit.min(i64::MAX as u64) as i64;
        let offset = filter.offset.min(i64::MAX as u64) as i64;
        self.with(|c| {
            // One snapshot, so the counts agree with the page even while
            // other processes write.
            let mut tx = c
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()?;
            let total: i64 = tx
                .query_one("SELECT count(*) FROM audit", &[])?
                .try_get(0)?;
            let matching: i64 = tx
                .query_one(
                    &format!("SELECT count(*) FROM audit WHERE {clause}"),
                    &[&from, &to, &pattern],
                )?
                .try_get(0)?;
            let entries = tx
                .query(
                    &format!(
                        "SELECT at, actor, role, client_ip, operation, target FROM audit \
                         WHERE {clause} ORDER BY id DESC LIMIT $4 OFFSET $5"
                    ),
                    &[&from, &to, &pattern, &limit, &offset],
                )?
                .iter()
                .map(|r| {
                    Ok(AuditRecord {
                        at: Timestamp(r.try_get(0)?),
                        actor: r.try_get(1)?,
                        role: r.try_get(2)?,
                        client_ip: r.try_get(3)?,
                        operation: r.try_get(4)?,
                        target: r.try_get(5)?,
                    })
                })
                .collect::<Result<Vec<_>, ::postgres::Error>>()?;
            tx.commit()?;
            Ok(AuditPage {
                entries,
                matching: count(matching),
                total: count(total),
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
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &id_hash,
                    &user,
                    &csrf,
                    &client_ip,
                    &Timestamp::now().0,
                    &expires_at.0,
                ],
            )
        })
        .map(|_| ())
    }

    fn session(&self, id_hash: &[u8], now: Timestamp) -> Result<Option<Session>, StoreError> {
        self.with(|c| {
            c.query_opt(
                &format!(
                    "SELECT {USER_COLUMNS}, s.csrf, s.expires_at \
                     FROM sessions s JOIN users u ON u.name = s.user_name \
                     WHERE s.id_hash = $1 AND s.expires_at > $2 AND NOT u.disabled"
                ),
                &[&id_hash, &now.0],
            )?
            .map(|r| {
                Ok(Session {
                    user: user_from_row(&r)?,
                    csrf: r.try_get(5)?,
                    expires_at: Timestamp(r.try_get(6)?),
                })
            })
            .transpose()
        })
    }

    fn delete_session(&self, id_hash: &[u8]) -> Result<(), StoreError> {
        self.with(|c| c.execute("DELETE FROM sessions WHERE id_hash = $1", &[&id_hash]))
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
        self.with(|c| {
            let mut tx = c.transaction()?;
            // Make sure the row exists, then lock it: failures counted by
            // other processes at the same time wait and add to this one.
            // A row with no failures counts as no row.
            tx.execute(
                "INSERT INTO login_failures (client_ip, failures, last_login_id, last_at) \
                 VALUES ($1, 0, $2, $3) ON CONFLICT (client_ip) DO NOTHING",
                &[&client_ip, &login_id, &now.0],
            )?;
            let row = tx.query_one(
                "SELECT failures, blocked_until FROM login_failures WHERE client_ip = $1 \
                 FOR UPDATE",
                &[&client_ip],
            )?;
            let (failures, blocked_until): (i64, Option<i64>) = (row.try_get(0)?, row.try_get(1)?);
            let (mut failures, mut blocked_until) = match blocked_until {
                // A block that has ended starts the count again.
                Some(until) if until <= now.0 => (0, None),
                until => (failures, until),
            };
            failures += 1;
            let mut blocked_at = None;
            if blocked_until.is_none() && failures >= i64::from(block_after.max(1)) {
                blocked_at = Some(now.0);
                blocked_until = Some(now.0 + i64::from(block_minutes) * 60_000);
            }
            tx.execute(
                "UPDATE login_failures SET failures = $2, last_login_id = $3, last_at = $4, \
                   blocked_at = coalesce($5::BIGINT, CASE WHEN $6::BIGINT IS NULL THEN NULL ELSE blocked_at END), \
                   blocked_until = $6 \
                 WHERE client_ip = $1",
                &[
                    &client_ip,
                    &failures,
                    &login_id,
                    &now.0,
                    &blocked_at,
                    &blocked_until,
                ],
            )?;
            tx.commit()?;
            Ok(LoginFailures {
                failures: failures.clamp(0, i64::from(u32::MAX)) as u32,
                blocked_until: blocked_until.map(Timestamp),
            })
        })
    }

    fn blocked_until(
        &self,
        client_ip: &str,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, StoreError> {
        self.with(|c| {
            c.query_opt(
                "SELECT blocked_until FROM login_failures \
                 WHERE client_ip = $1 AND blocked_until > $2",
                &[&client_ip, &now.0],
            )?
            .map(|r| r.try_get::<_, i64>(0))
            .transpose()
        })
        .map(|t| t.map(Timestamp))
    }

    fn clear_login_failures(&self, client_ip: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "DELETE FROM login_failures WHERE client_ip = $1",
                &[&client_ip],
            )
        })
        .map(|_| ())
    }

    fn blocked_ips(&self, now: Timestamp) -> Result<Vec<BlockedIp>, StoreError> {
        self.with(|c| {
            // NULLS LAST: where SQLite puts them in a descending order.
            c.query(
                "SELECT client_ip, last_login_id, blocked_at, blocked_until FROM login_failures \
                 WHERE blocked_until > $1 ORDER BY blocked_at DESC NULLS LAST",
                &[&now.0],
            )?
            .iter()
            .map(|r| {
                Ok(BlockedIp {
                    client_ip: r.try_get(0)?,
                    login_id: r.try_get(1)?,
                    blocked_at: Timestamp(r.try_get::<_, Option<i64>>(2)?.unwrap_or(0)),
                    blocked_until: Timestamp(r.try_get(3)?),
                })
            })
            .collect()
        })
    }

    fn unblock(&self, client_ip: &str) -> Result<bool, StoreError> {
        self.with(|c| {
            c.execute(
                "DELETE FROM login_failures WHERE client_ip = $1 AND blocked_until IS NOT NULL",
                &[&client_ip],
            )
        })
        .map(|n| n > 0)
    }

    fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.with(|c| {
            c.query_opt("SELECT value FROM settings WHERE key = $1", &[&key])?
                .map(|r| r.try_get(0))
                .transpose()
        })
    }

    fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO settings (key, value) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&key, &value],
            )
        })
        .map(|_| ())
    }
}
