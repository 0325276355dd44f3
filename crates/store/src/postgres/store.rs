//! The store on PostgreSQL (issue 8): the same writer, correlator and
//! queries as the SQLite store (`crate::sql`), on sessions of one pool.
//! Several cdrhub processes can share the database: the journal's unique
//! index keeps a record sent twice to two collectors once.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use crate::db::{self, Conn, Db, PgSession};
use crate::sql::{Backend, Connections, EngineOptions, SqlStore};
use crate::{BackupSummary, StoreError};

use super::{PgAccounts, PgPool};

/// The store on a PostgreSQL database.
pub type PgStore = SqlStore<PgBackend>;

#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Most connections the process opens: three for the writer and the
    /// correlator, the rest for reads and accounts.
    pub max_connections: usize,
    /// Most records committed in one transaction.
    pub max_batch_records: usize,
    /// Submissions waiting for the writer before senders are slowed down.
    pub queue_depth: usize,
    /// SIP dialogs without a message for this long are closed (issue 6).
    pub dialog_timeouts: cdrhub_correlate::sip::DialogTimeouts,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            max_connections: 16,
            max_batch_records: 20_000,
            queue_depth: 4096,
            dialog_timeouts: Default::default(),
        }
    }
}

/// Readers kept open between reads, with their prepared statements.
const IDLE_READERS: usize = 8;

/// The pool, the reading sessions and the accounts of a PostgreSQL store.
pub struct PgBackend {
    pool: PgPool,
    readers: Mutex<Vec<PgSession>>,
    accounts: PgAccounts,
}

impl SqlStore<PgBackend> {
    /// Connects to the database at `url` (see [`PgPool::connect`]), brings
    /// its schema up to date and starts the writer and correlator threads.
    pub fn open(url: &str, options: PgOptions) -> Result<Self, StoreError> {
        let pool = PgPool::connect(url, options.max_connections.max(6))?;
        // Migrates the whole schema, the store's tables with the accounts'.
        let accounts = PgAccounts::with_pool(pool.clone())?;
        let session =
            || -> Result<Conn, StoreError> { Ok(Conn::Pg(Box::new(PgSession::new(&pool)?))) };
        // Calls are rebuilt from the journal after a crash (the position
        // they reflect is committed with them): their commits need not wait
        // for the disk, as SQLite's calls.db. The journal's do.
        let calls = PgSession::with_setup(&pool, Some("SET synchronous_commit TO off"))?;
        let conns = Connections {
            journal: session()?,
            calls: Conn::Pg(Box::new(calls)),
            journal_reader: session()?,
        };
        let backend = PgBackend {
            pool: pool.clone(),
            readers: Mutex::new(Vec::new()),
            accounts,
        };
        SqlStore::start(
            backend,
            conns,
            EngineOptions {
                // PostgreSQL locks rows, not the database: no busy waits.
                busy_timeout: Duration::ZERO,
                max_batch_records: options.max_batch_records,
                queue_depth: options.queue_depth,
                dialog_timeouts: options.dialog_timeouts,
                shared: true,
            },
        )
    }

    /// The server and database, for messages (never the password).
    pub fn server(&self) -> &str {
        self.backend().pool.server()
    }
}

impl PgBackend {
    fn session<T>(&self, f: impl FnOnce(Db<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let pooled = self.readers.lock().map(|mut r| r.pop()).unwrap_or(None);
        let session = match pooled {
            Some(s) => s,
            None => PgSession::new(&self.pool)?,
        };
        let result = f(Db::Pg(&session));
        if let Ok(mut idle) = self.readers.lock()
            && idle.len() < IDLE_READERS
            && !session.is_closed()
        {
            idle.push(session);
        }
        result
    }

    fn size_of(&self, tables: &[&str]) -> Result<u64, StoreError> {
        self.session(|db| {
            let mut total = 0u64;
            for table in tables {
                let bytes: Option<i64> = db.query_value(
                    "SELECT pg_total_relation_size(to_regclass(?1))",
                    db::args![table],
                )?;
                total += bytes.unwrap_or(0).max(0) as u64;
            }
            Ok(total)
        })
    }
}

fn backups_by_pg_dump() -> StoreError {
    StoreError::InvalidQuery(
        "the PostgreSQL store is backed up and restored with PostgreSQL's own tools \
         (pg_dump and pg_restore; see docs/deployment.md), not from the console"
            .into(),
    )
}

impl Backend for PgBackend {
    fn read<T>(&self, f: impl FnOnce(Db<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.session(f)
    }

    fn write<T>(&self, f: impl FnOnce(Db<'_>) -> db::Result<T>) -> Result<T, StoreError> {
        self.session(|db| Ok(f(db)?))
    }

    /// The tables' sizes on the server; its disk is not this machine's, so
    /// free space is not known here (0).
    fn storage(&self) -> Result<crate::StorageStatus, StoreError> {
        Ok(crate::StorageStatus {
            journal_bytes: self.size_of(&[
                "journal",
                "streams",
                "gaps",
                "senders",
                "forced_ends",
                "gateway_log",
                "gateways",
            ])?,
            calls_bytes: self.size_of(&[
                "calls",
                "legs",
                "call_keys",
                "stats_hourly",
                "stats_events",
                "stats_level",
                "agent_states",
                "sip_registrations",
            ])?,
            disk_free_bytes: 0,
            disk_total_bytes: 0,
        })
    }

    fn accounts(&self) -> &dyn crate::Accounts {
        &self.accounts
    }

    fn backup_file(&self) -> Result<(std::fs::File, BackupSummary), StoreError> {
        Err(backups_by_pg_dump())
    }

    fn restore_upload_path(&self) -> PathBuf {
        std::env::temp_dir().join(format!(".restore-upload-{}.db", uuid::Uuid::new_v4()))
    }

    fn stage_restore(&self, _upload: &Path, _actor: &str) -> Result<BackupSummary, StoreError> {
        Err(backups_by_pg_dump())
    }

    fn restore_pending(&self) -> bool {
        false
    }

    fn claims(&self) -> Result<Option<Box<dyn crate::Claims>>, StoreError> {
        let session = PgSession::new(&self.pool)?;
        let generation = Db::Pg(&session).generation();
        Ok(Some(Box::new(PgClaims {
            session,
            generation,
        })))
    }
}

/// Advisory locks of one session (`pg_try_advisory_lock`): the server
/// releases them when the session ends, so a process that dies gives up
/// its claims at once.
struct PgClaims {
    session: PgSession,
    /// The connection the locks were taken on.
    generation: u64,
}

impl PgClaims {
    fn db(&self) -> Db<'_> {
        Db::Pg(&self.session)
    }
}

impl Drop for PgClaims {
    /// The connection goes back to the pool: without its locks.
    fn drop(&mut self) {
        if let Err(e) = self
            .db()
            .query_value::<i64>("SELECT count(pg_advisory_unlock_all())", db::args![])
        {
            tracing::warn!(error = %e, "cannot release the claims; their connection keeps them until it closes");
        }
    }
}

impl crate::Claims for PgClaims {
    fn try_take(&mut self, key: i64) -> Result<bool, StoreError> {
        if !self.alive() {
            return Ok(false);
        }
        Ok(self
            .db()
            .query_value("SELECT pg_try_advisory_lock(?1)", db::args![key])?)
    }

    fn release(&mut self, key: i64) -> Result<(), StoreError> {
        if self.alive() {
            self.db()
                .query_value::<bool>("SELECT pg_advisory_unlock(?1)", db::args![key])?;
        }
        Ok(())
    }

    fn held(&mut self, first: i64, last: i64) -> Result<u32, StoreError> {
        // A bigint key shows as its high and low halves (objsubid 1).
        let n: i64 = self.db().query_value(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND objsubid = 1 AND database = (SELECT oid FROM pg_database \
             WHERE datname = current_database()) \
             AND ((classid::bigint << 32) | objid::bigint) BETWEEN ?1 AND ?2",
            db::args![first, last],
        )?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    fn alive(&mut self) -> bool {
        // A query notices a closed connection; the session then opens a
        // new one, on which none of the locks are.
        let _ = self.db().query_value::<i64>("SELECT 1", db::args![]);
        !self.session.is_closed() && self.db().generation() == self.generation
    }
}
