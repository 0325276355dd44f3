//! Backup and restore (issue 3, point 7). A backup is a consistent copy of
//! `cdrhub.db`: the journal of every record, accounts, audit log and
//! settings. `calls.db` is not copied: it is derived from the journal, and a
//! restore removes it so the next start rebuilds it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::{Backup, Progress};
use rusqlite::{Connection, OpenFlags};

use super::{lock_data_dir, schema};
use crate::{Accounts, AuditEntry, SqliteAccounts, StoreError};

/// What a backup holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupSummary {
    /// Records in the journal.
    pub records: u64,
    /// Size of the file written, in bytes.
    pub bytes: u64,
}

/// Pages copied per step: short steps let the server's writer go on.
const PAGES_PER_STEP: i32 = 4096;

fn copy(
    src: &Connection,
    dest_path: &Path,
    progress: Option<&mut dyn FnMut(Progress)>,
) -> Result<(), StoreError> {
    let err = |e: rusqlite::Error| StoreError::Unavailable(format!("{}: {e}", dest_path.display()));
    let mut dest = Connection::open(dest_path).map_err(err)?;
    {
        let backup = Backup::new(src, &mut dest).map_err(err)?;
        let mut progress = progress;
        loop {
            let step = backup.step(PAGES_PER_STEP).map_err(err)?;
            if let Some(p) = progress.as_deref_mut() {
                p(backup.progress());
            }
            match step {
                rusqlite::backup::StepResult::Done => break,
                rusqlite::backup::StepResult::More => {}
                rusqlite::backup::StepResult::Busy | rusqlite::backup::StepResult::Locked => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }
    // One self-contained file, not a WAL database.
    dest.query_row("PRAGMA journal_mode=DELETE", [], |_| Ok(()))
        .map_err(err)?;
    Ok(())
}

fn records(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT count(*) FROM journal", [], |r| r.get::<_, i64>(0))
        .map(|n| n.max(0) as u64)
}

/// Copies the journal database of `data_dir` to `dest` while a server may
/// be writing to it: the copy is one consistent moment. `dest` appears
/// whole or not at all.
pub fn backup(
    data_dir: &Path,
    dest: &Path,
    progress: Option<&mut dyn FnMut(Progress)>,
) -> Result<BackupSummary, StoreError> {
    let path = data_dir.join("cdrhub.db");
    if !path.exists() {
        return Err(StoreError::Open(format!(
            "{} does not exist",
            path.display()
        )));
    }
    let open_err = |e: rusqlite::Error| StoreError::Open(format!("{}: {e}", path.display()));
    let src =
        Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(open_err)?;
    src.busy_timeout(Duration::from_secs(5)).map_err(open_err)?;
    let partial = with_suffix(dest, ".partial");
    let _ = std::fs::remove_file(&partial);
    copy(&src, &partial, progress)?;
    let copied = Connection::open_with_flags(&partial, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|c| records(&c))
        .map_err(|e| StoreError::Unavailable(format!("{}: {e}", partial.display())))?;
    std::fs::rename(&partial, dest)
        .map_err(|e| StoreError::Unavailable(format!("cannot write {}: {e}", dest.display())))?;
    let bytes = std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
    Ok(BackupSummary {
        records: copied,
        bytes,
    })
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Checks that `src` is a cdrhub backup this version can read.
fn check_backup(src: &Path) -> Result<Connection, StoreError> {
    let bad =
        |why: String| StoreError::Open(format!("{} is not a cdrhub backup: {why}", src.display()));
    let conn = Connection::open_with_flags(src, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| bad(e.to_string()))?;
    let check: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| bad(e.to_string()))?;
    if check != "ok" {
        return Err(bad(format!("the database is damaged ({check})")));
    }
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| bad(e.to_string()))?;
    if version < 1 {
        return Err(bad("it has no cdrhub tables".into()));
    }
    if version > schema::journal_version() {
        return Err(bad(format!(
            "it was made by a newer cdrhub (layout {version}, this one knows up to {})",
            schema::journal_version()
        )));
    }
    records(&conn).map_err(|e| bad(e.to_string()))?;
    Ok(conn)
}

/// Replaces the journal database of `data_dir` with the backup `src`. No
/// server may run on the directory. The database it replaces is kept as
/// `cdrhub-before-restore.db`; `calls.db` is removed, and the next start
/// rebuilds calls and legs from the restored journal.
pub fn restore(data_dir: &Path, src: &Path) -> Result<BackupSummary, StoreError> {
    restore_by(data_dir, src, "cli")
}

/// As [`restore`], audited as done by `actor`.
fn restore_by(data_dir: &Path, src: &Path, actor: &str) -> Result<BackupSummary, StoreError> {
    let backup_conn = check_backup(src)?;
    std::fs::create_dir_all(data_dir)
        .map_err(|e| StoreError::Open(format!("cannot create {}: {e}", data_dir.display())))?;
    let _lock = lock_data_dir(data_dir)?;
    let path = data_dir.join("cdrhub.db");
    let io = |what: &str, e: std::io::Error| StoreError::Unavailable(format!("cannot {what}: {e}"));
    let incoming = data_dir.join("cdrhub.db.restoring");
    let _ = std::fs::remove_file(&incoming);
    copy(&backup_conn, &incoming, None)?;
    drop(backup_conn);
    if path.exists() {
        // Make the old database one file (its WAL copied in), then keep it.
        let old = Connection::open(&path)
            .map_err(|e| StoreError::Open(format!("{}: {e}", path.display())))?;
        old.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", path.display())))?;
        drop(old);
        std::fs::rename(&path, data_dir.join("cdrhub-before-restore.db"))
            .map_err(|e| io("keep the replaced database", e))?;
    }
    // A stale WAL beside the new file would be replayed into it.
    for stale in [
        "cdrhub.db-wal",
        "cdrhub.db-shm",
        "calls.db",
        "calls.db-wal",
        "calls.db-shm",
    ] {
        match std::fs::remove_file(data_dir.join(stale)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&format!("remove {stale}"), e)),
        }
    }
    std::fs::rename(&incoming, &path).map_err(|e| io("put the backup in place", e))?;
    let accounts = SqliteAccounts::open(data_dir)?;
    accounts.audit(&AuditEntry {
        actor: actor.into(),
        role: None,
        client_ip: None,
        operation: "restore".into(),
        target: Some(src.display().to_string()),
    })?;
    let restored = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|c| records(&c))
        .map_err(|e| StoreError::Unavailable(format!("{}: {e}", path.display())))?;
    Ok(BackupSummary {
        records: restored,
        bytes: std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
    })
}

/// Where a backup uploaded in the console waits for the next start.
const PENDING: &str = "restore-pending.db";
/// Who uploaded it, for the audit log of the restored database.
const PENDING_BY: &str = "restore-pending.by";

/// Checks an uploaded backup and keeps it in `data_dir` to be restored at
/// the next start (a running server cannot swap its database). `upload`
/// is moved, so it must be in `data_dir` already.
pub fn stage_restore(
    data_dir: &Path,
    upload: &Path,
    actor: &str,
) -> Result<BackupSummary, StoreError> {
    let checked = check_backup(upload);
    let conn = match checked {
        Ok(conn) => conn,
        Err(e) => {
            let _ = std::fs::remove_file(upload);
            return Err(e);
        }
    };
    let records = records(&conn).unwrap_or(0);
    drop(conn);
    let io = |e: std::io::Error| StoreError::Unavailable(format!("cannot keep the upload: {e}"));
    std::fs::write(data_dir.join(PENDING_BY), actor).map_err(io)?;
    std::fs::rename(upload, data_dir.join(PENDING)).map_err(io)?;
    Ok(BackupSummary {
        records,
        bytes: std::fs::metadata(data_dir.join(PENDING))
            .map(|m| m.len())
            .unwrap_or(0),
    })
}

/// The backup waiting to be restored at the next start, if any.
pub fn pending_restore(data_dir: &Path) -> Option<PathBuf> {
    let path = data_dir.join(PENDING);
    path.exists().then_some(path)
}

/// Restores the backup staged in the console, if there is one: done at
/// start, before the store opens.
pub(crate) fn apply_staged_restore(data_dir: &Path) -> Result<Option<BackupSummary>, StoreError> {
    let Some(pending) = pending_restore(data_dir) else {
        return Ok(None);
    };
    let actor = std::fs::read_to_string(data_dir.join(PENDING_BY))
        .map(|by| format!("console: {}", by.trim()))
        .unwrap_or_else(|_| "console".into());
    let summary = restore_by(data_dir, &pending, &actor)?;
    let _ = std::fs::remove_file(&pending);
    let _ = std::fs::remove_file(data_dir.join(PENDING_BY));
    Ok(Some(summary))
}
