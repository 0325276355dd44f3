//! Schema migrations of the PostgreSQL store, tracked in `schema_version`
//! (one row per migration applied).
//!
//! Several cdrhub processes may start on one database at once: each
//! migration runs in a transaction that first takes an advisory lock, so one
//! process applies it and the others find it applied. Times are BIGINT
//! milliseconds since the Unix epoch, as in the SQLite store.

use ::postgres::Client;
use cdrhub_model::Timestamp;

/// Each entry moves the database one version up; never edit a released one.
const MIGRATIONS: &[&str] = &[
    // Console and API accounts (issue 3), as in `cdrhub.db` (SQLite
    // migrations 3 and 4). Only hashes are kept: argon2id for passwords,
    // SHA-256 for API tokens and session cookies.
    r#"
CREATE TABLE users (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    role           TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    disabled       BOOLEAN NOT NULL DEFAULT false,
    language       TEXT NOT NULL DEFAULT 'en',
    created_at     BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL,
    token_hash  BYTEA NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

-- Every login, logout, failed login and change, with who and from where.
CREATE TABLE audit (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    role       TEXT,
    client_ip  TEXT,
    operation  TEXT NOT NULL,
    target     TEXT
);
CREATE INDEX audit_at ON audit (at);

-- Console sessions, failed logins per client address, and settings
-- changed in the console (seed 002, "Web Service").
CREATE TABLE sessions (
    id_hash     BYTEA PRIMARY KEY,
    user_name   TEXT NOT NULL,
    csrf        TEXT NOT NULL,
    client_ip   TEXT,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
-- A password change ends the user's other sessions.
CREATE INDEX sessions_user ON sessions (user_name);

CREATE TABLE login_failures (
    client_ip      TEXT PRIMARY KEY,
    failures       BIGINT NOT NULL,
    last_login_id  TEXT NOT NULL,
    last_at        BIGINT NOT NULL,
    blocked_at     BIGINT,
    blocked_until  BIGINT
);

CREATE TABLE settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
"#,
];

/// The advisory lock migrations take (the bytes of "cdrhub" and a 1):
/// advisory locks are per database, so other databases are not held up.
const MIGRATION_LOCK: i64 = 0x6364_7268_7562_0001;

/// Brings the database to the latest version, one transaction per
/// migration. A database already there costs one short transaction.
pub fn migrate(client: &mut Client) -> Result<(), ::postgres::Error> {
    loop {
        let mut tx = client.transaction()?;
        // Held until this transaction ends; also covers creating the
        // version table, which two sessions cannot do at once safely.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_version (
                 version     INTEGER PRIMARY KEY,
                 applied_at  BIGINT NOT NULL
             )",
        )?;
        let current: i32 = tx
            .query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])?
            .try_get(0)?;
        let Some(sql) = usize::try_from(current)
            .ok()
            .and_then(|applied| MIGRATIONS.get(applied))
        else {
            if current > MIGRATIONS.len() as i32 {
                // Like the SQLite store: a newer cdrhub migrated it; its
                // additions are left alone.
                tracing::warn!(
                    version = current,
                    known = MIGRATIONS.len(),
                    "the PostgreSQL schema is newer than this cdrhub"
                );
            }
            return tx.commit();
        };
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)",
            &[&(current + 1), &Timestamp::now().0],
        )?;
        tx.commit()?;
    }
}
