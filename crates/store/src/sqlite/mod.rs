//! The embedded store: two SQLite files in WAL mode. `cdrhub.db` holds the
//! journal; one writer thread owns its write connection and commits many
//! submissions in one transaction. `calls.db` holds the calls and legs
//! derived from the journal; the correlator thread owns its write connection.
//! Readers use a small pool of connections that see both files.

mod accounts;
mod backup;
pub(crate) mod schema;

pub use accounts::SqliteAccounts;
pub use backup::{BackupSummary, backup, pending_restore, restore, stage_restore};

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::StoreError;
use crate::db::{self, Conn, Db};
use crate::sql::{Backend, Connections, EngineOptions, SqlStore};

/// How hard a commit waits for the disk (SQLite `PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// Every commit reaches the disk before it is acknowledged: survives a
    /// power cut. The default.
    Full,
    /// Survives a crash of cdrhub but not of the machine; faster on slow disks.
    Normal,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

#[derive(Debug, Clone)]
pub struct SqliteOptions {
    pub synchronous: Synchronous,
    /// How long a write waits for a lock held by another process before the
    /// submission fails (and the sender is told to retry).
    pub busy_timeout: Duration,
    /// Most records committed in one transaction.
    pub max_batch_records: usize,
    /// Submissions waiting for the writer before senders are slowed down.
    pub queue_depth: usize,
    /// SIP dialogs without a message for this long are closed (issue 6).
    pub dialog_timeouts: cdrhub_correlate::sip::DialogTimeouts,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(5),
            max_batch_records: 20_000,
            queue_depth: 4096,
            dialog_timeouts: Default::default(),
        }
    }
}

/// The embedded store over the SQLite files of one data directory.
pub type SqliteStore = SqlStore<SqliteBackend>;

/// The files of a data directory, their readers and their checkpoints.
pub struct SqliteBackend {
    path: PathBuf,
    calls_path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    accounts: SqliteAccounts,
    checkpointer: Option<std::thread::JoinHandle<()>>,
    /// Dropping it stops the checkpoint thread.
    stop_checkpointer: Option<std::sync::mpsc::Sender<()>>,
    /// Held for the store's life: one writing process per data directory.
    /// Declared last: released after the checkpointer has stopped.
    _lock: std::fs::File,
}

impl SqlStore<SqliteBackend> {
    /// Opens (creating if needed) `cdrhub.db` and `calls.db` in `data_dir`,
    /// migrates them and starts the writer and correlator threads.
    pub fn open(data_dir: &Path, options: SqliteOptions) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Open(format!(
                "cannot create data directory {}: {e}",
                data_dir.display()
            ))
        })?;
        if let Some(restored) = backup::apply_staged_restore(data_dir)? {
            tracing::warn!(
                records = restored.records,
                "restored the backup uploaded in the console; calls are rebuilt from it now"
            );
        }
        let lock = lock_data_dir(data_dir)?;
        let path = data_dir.join("cdrhub.db");
        let calls_path = data_dir.join("calls.db");
        let mut conn = open_wal(
            &path,
            options.busy_timeout,
            options.synchronous,
            JOURNAL_CACHE_KIB,
        )?;
        schema::migrate_journal(&mut conn)
            .map_err(|e| StoreError::Open(format!("{}: {e}", path.display())))?;
        // Calls are rebuilt from the journal after a crash: their commits
        // need not wait for the disk.
        let mut calls = open_wal(
            &calls_path,
            options.busy_timeout,
            Synchronous::Normal,
            CALLS_CACHE_KIB,
        )?;
        schema::migrate_calls(&mut calls)
            .map_err(|e| StoreError::Open(format!("{}: {e}", calls_path.display())))?;
        let journal_reader = open_reader(&path, None)?;
        let (stop_checkpointer, checkpointer) =
            spawn_checkpointer(&[path.as_path(), calls_path.as_path()])?;
        let backend = SqliteBackend {
            path,
            calls_path,
            readers: Mutex::new(Vec::new()),
            accounts: SqliteAccounts::open(data_dir)?,
            checkpointer: Some(checkpointer),
            stop_checkpointer: Some(stop_checkpointer),
            _lock: lock,
        };
        SqlStore::start(
            backend,
            Connections {
                journal: Conn::Sqlite(conn),
                calls: Conn::Sqlite(calls),
                journal_reader: Conn::Sqlite(journal_reader),
            },
            options.engine(),
        )
    }

    pub fn path(&self) -> &Path {
        &self.backend().path
    }
}

impl SqliteOptions {
    fn engine(&self) -> EngineOptions {
        EngineOptions {
            busy_timeout: self.busy_timeout,
            max_batch_records: self.max_batch_records,
            queue_depth: self.queue_depth,
            dialog_timeouts: self.dialog_timeouts,
            shared: false,
        }
    }
}

impl SqliteBackend {
    fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }
}

impl Drop for SqliteBackend {
    /// After the store's threads: the checkpointer leaves small WALs, and
    /// only then is the data directory's lock released.
    fn drop(&mut self) {
        drop(self.stop_checkpointer.take());
        if let Some(c) = self.checkpointer.take() {
            let _ = c.join();
        }
    }
}

impl Backend for SqliteBackend {
    fn read<T>(&self, f: impl FnOnce(Db<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let pooled = self.readers.lock().map(|mut r| r.pop()).unwrap_or(None);
        let conn = match pooled {
            Some(c) => c,
            None => open_reader(&self.path, Some(&self.calls_path))?,
        };
        let result = f(Db::Sqlite(&conn));
        if let Ok(mut pool) = self.readers.lock()
            && pool.len() < 8
        {
            pool.push(conn);
        }
        result
    }

    fn write<T>(&self, f: impl FnOnce(Db<'_>) -> db::Result<T>) -> Result<T, StoreError> {
        self.accounts.with_db(f)
    }

    fn storage(&self) -> Result<crate::StorageStatus, StoreError> {
        let size = |path: &Path| -> u64 {
            let mut wal = path.as_os_str().to_owned();
            wal.push("-wal");
            [path, Path::new(&wal)]
                .iter()
                .filter_map(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .sum()
        };
        let dir = self.dir();
        let fs = rustix::fs::statvfs(dir).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot read the free space of {}: {e}",
                dir.display()
            ))
        })?;
        Ok(crate::StorageStatus {
            journal_bytes: size(&self.path),
            calls_bytes: size(&self.calls_path),
            disk_free_bytes: fs.f_bavail.saturating_mul(fs.f_frsize),
            disk_total_bytes: fs.f_blocks.saturating_mul(fs.f_frsize),
        })
    }

    fn accounts(&self) -> &dyn crate::Accounts {
        &self.accounts
    }

    fn restore_upload_path(&self) -> PathBuf {
        self.dir()
            .join(format!(".restore-upload-{}.db", uuid::Uuid::new_v4()))
    }

    fn stage_restore(&self, upload: &Path, actor: &str) -> Result<BackupSummary, StoreError> {
        backup::stage_restore(self.dir(), upload, actor)
    }

    fn restore_pending(&self) -> bool {
        backup::pending_restore(self.dir()).is_some()
    }

    fn backup_file(&self) -> Result<(std::fs::File, BackupSummary), StoreError> {
        // In the data directory: the disk sized for the database.
        let dir = self.dir();
        let dest = dir.join(format!(".backup-{}.db", uuid::Uuid::new_v4()));
        let summary = backup::backup(dir, &dest, None)?;
        let file = std::fs::File::open(&dest)
            .map_err(|e| StoreError::Unavailable(format!("cannot read {}: {e}", dest.display())));
        let _ = std::fs::remove_file(&dest);
        Ok((file?, summary))
    }
}

/// Takes the data directory for this process: one writer of its files at a
/// time. Held as long as the returned file is open.
pub(crate) fn lock_data_dir(data_dir: &Path) -> Result<std::fs::File, StoreError> {
    let lock_path = data_dir.join("cdrhub.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| StoreError::Open(format!("cannot open {}: {e}", lock_path.display())))?;
    if lock.try_lock().is_err() {
        return Err(StoreError::Open(format!(
            "another cdrhub process is using {}; stop it first (or send it the records over its ingest paths)",
            data_dir.display()
        )));
    }
    Ok(lock)
}

/// Page cache of the journal's writer: the journal grows at its end, so
/// little of it is read back.
const JOURNAL_CACHE_KIB: i64 = 8 * 1024;
/// Page cache of the correlator: call keys are random, and every page of
/// their index that is not cached costs a read.
const CALLS_CACHE_KIB: i64 = 8 * 1024;

/// Prepared statements each connection keeps. Statements are prepared
/// once and found again by their text (`db.rs`); a writer or correlator
/// round uses a few dozen, and a cache smaller than that would prepare
/// them again every time (rusqlite's default holds 16).
const STATEMENT_CACHE: usize = 256;

/// Opens a database file for writing in WAL mode.
fn open_wal(
    path: &Path,
    busy_timeout: Duration,
    synchronous: Synchronous,
    cache_kib: i64,
) -> Result<Connection, StoreError> {
    let open_err = |e: rusqlite::Error| StoreError::Open(format!("{}: {e}", path.display()));
    let conn = Connection::open(path).map_err(open_err)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.busy_timeout(busy_timeout).map_err(open_err)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(open_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Open(format!(
            "{}: the database refused WAL mode (got {mode})",
            path.display()
        )));
    }
    conn.pragma_update(None, "synchronous", synchronous.pragma())
        .map_err(open_err)?;
    conn.pragma_update(None, "cache_size", -cache_kib)
        .map_err(open_err)?;
    // Writers never checkpoint; a thread of its own does (below), so copying
    // the WAL into the database does not hold up commits.
    conn.pragma_update(None, "wal_autocheckpoint", 0)
        .map_err(open_err)?;
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)
        .map_err(open_err)?;
    conn.pragma_update(None, "foreign_keys", "OFF")
        .map_err(open_err)?;
    Ok(conn)
}

/// A read-only connection to `cdrhub.db`, with `calls.db` attached when given
/// (table names differ, so queries name tables of either file plainly).
fn open_reader(path: &Path, calls: Option<&Path>) -> Result<Connection, StoreError> {
    let open_err = |e: rusqlite::Error| StoreError::Open(format!("{}: {e}", path.display()));
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_err)?;
    c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    c.busy_timeout(Duration::from_secs(5)).map_err(open_err)?;
    if let Some(calls) = calls {
        c.execute(
            "ATTACH DATABASE ?1 AS derived",
            [calls.to_string_lossy().as_ref()],
        )
        .map_err(|e| StoreError::Open(format!("{}: {e}", calls.display())))?;
    }
    Ok(c)
}

/// Frames (4 KiB pages) the WAL may hold before it is made to start over.
const MAX_WAL_FRAMES: i64 = 16_384;

/// Copies each file's WAL into the database every half second from
/// connections of its own (a passive checkpoint never blocks the writers or
/// readers).
fn spawn_checkpointer(
    paths: &[&Path],
) -> Result<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>), StoreError> {
    let conns = paths
        .iter()
        .map(|path| {
            let conn = Connection::open(path)
                .map_err(|e| StoreError::Open(format!("{}: {e}", path.display())))?;
            conn.busy_timeout(Duration::from_secs(5))
                .map_err(|e| StoreError::Open(format!("{}: {e}", path.display())))?;
            Ok(conn)
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let handle = std::thread::Builder::new()
        .name("cdrhub-checkpoint".into())
        .spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(Duration::from_millis(500))
            {
                for conn in &conns {
                    checkpoint(conn);
                }
            }
            // Leave small WALs behind on a clean shutdown.
            for conn in &conns {
                let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
            }
        })
        .map_err(|e| StoreError::Open(format!("cannot start the checkpoint thread: {e}")))?;
    Ok((stop, handle))
}

/// Copies what it can of the WAL into the database without blocking anyone,
/// and makes the log start over once it is past `MAX_WAL_FRAMES`.
fn checkpoint(conn: &Connection) {
    let started = std::time::Instant::now();
    // (busy, frames in the log, frames copied into the database)
    let passive = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
    });
    if let Ok((_, frames)) = passive {
        tracing::trace!(
            db = conn.path().unwrap_or_default(),
            frames,
            micros = started.elapsed().as_micros() as u64,
            "passive checkpoint"
        );
    }
    match passive {
        // Under continuous writes a passive checkpoint never lets the log
        // start over. Past a size, make it: a RESTART holds the writer only
        // while it copies the last frames.
        Ok((_, frames)) if frames > MAX_WAL_FRAMES => {
            let started = std::time::Instant::now();
            let restart = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()));
            match restart {
                Ok(()) => tracing::trace!(
                    db = conn.path().unwrap_or_default(),
                    micros = started.elapsed().as_micros() as u64,
                    "restart checkpoint"
                ),
                Err(e) => tracing::warn!(error = %e, "WAL restart checkpoint failed; will retry"),
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; will retry"),
    }
}
