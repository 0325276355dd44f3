//! The spool: every item waiting for delivery, and the ids of those
//! delivered, in one SQLite file (`<dir>/spool.sqlite3`).
//!
//! Why SQLite and not one file per item plus a state file: adding an item
//! must check its id against those spooled and delivered and make it durable
//! in one step, and a delivery must move an item from pending to delivered in
//! one step. One transaction does each; with files, a crash between writing
//! the item and updating the state file leaves the two to reconcile. The
//! write-ahead log with `synchronous = FULL` fsyncs every commit, so an item
//! is on disk when [`Spool::add`] returns. The store already uses SQLite
//! (bundled), so this adds no new dependency to the build.
//!
//! A delivered item keeps its row, without its body, for [`KEEP_DELIVERED`],
//! so the same id added again in that time is refused.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, bail};
use cdrhub_model::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::watch;

use super::{Item, ItemStatus};

/// The file of the spool inside its directory.
pub const SPOOL_FILE: &str = "spool.sqlite3";

/// How long the id of a delivered item is remembered: the same id added
/// again within this time is refused as a duplicate.
pub const KEEP_DELIVERED: Duration = Duration::from_secs(30 * 86_400);

/// At most this many pending items, oldest first, are listed by
/// [`Spool::status`].
pub const STATUS_PENDING_LIMIT: usize = 500;
/// At most this many delivered items, newest first, are listed by
/// [`Spool::status`].
pub const STATUS_DELIVERED_LIMIT: usize = 100;

/// The schema this code reads and writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS item (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    target TEXT NOT NULL,
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    -- NULL once delivered
    body BLOB,
    bytes INTEGER NOT NULL,
    added_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    last_attempt_at INTEGER,
    -- milliseconds since the epoch; NULL once delivered
    next_attempt_at INTEGER,
    delivered_at INTEGER
);
CREATE INDEX IF NOT EXISTS item_pending ON item (target, seq) WHERE delivered_at IS NULL;
CREATE INDEX IF NOT EXISTS item_delivered ON item (delivered_at) WHERE delivered_at IS NOT NULL;
";

const STATUS_COLUMNS: &str = "id, target, name, content_type, bytes, added_at, attempts, \
     last_error, last_attempt_at, next_attempt_at, delivered_at";

/// Items waiting for delivery, kept on disk until delivered (see the module
/// documentation for the format).
///
/// Its methods block on the disk (an [`Spool::add`] waits for an fsync):
/// from async code, call them on a blocking thread
/// (`tokio::task::spawn_blocking`).
pub struct Spool {
    path: PathBuf,
    db: Mutex<Connection>,
    /// Bumped by every item added, so the delivery loops wake up.
    added: watch::Sender<u64>,
}

/// The head of a target's queue, as the delivery loop needs it.
#[derive(Debug)]
pub(super) struct Pending {
    pub seq: i64,
    pub id: String,
    pub name: String,
    pub content_type: String,
    pub body: Vec<u8>,
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
}

impl Spool {
    /// Opens the spool in `dir`, creating the directory and the file when
    /// missing.
    pub fn open(dir: &Path) -> anyhow::Result<Spool> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the spool directory {}", dir.display()))?;
        let path = dir.join(SPOOL_FILE);
        let db =
            open_db(&path).with_context(|| format!("cannot open the spool {}", path.display()))?;
        Ok(Spool {
            path,
            db: Mutex::new(db),
            added: watch::Sender::new(0),
        })
    }

    /// The SQLite file of the spool.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Durably spools `item` (the commit is fsynced) before returning.
    /// `Ok(false)` if an item with its id is spooled already, or was
    /// delivered within [`KEEP_DELIVERED`]; the spooled one is kept as it is.
    pub fn add(&self, item: Item) -> anyhow::Result<bool> {
        item.check()?;
        let now = Timestamp::now().millis();
        let added = self
            .lock()
            .execute(
                "INSERT INTO item (id, target, name, content_type, body, bytes, added_at, next_attempt_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
                 ON CONFLICT (id) DO NOTHING",
                params![
                    item.id,
                    item.target_name,
                    item.name,
                    item.content_type,
                    item.body,
                    item.body.len() as i64,
                    now
                ],
            )
            .with_context(|| format!("cannot spool {} in {}", item.id, self.path.display()))?
            == 1;
        if added {
            self.added.send_modify(|n| *n = n.wrapping_add(1));
        }
        Ok(added)
    }

    /// The pending items (at most [`STATUS_PENDING_LIMIT`], oldest first)
    /// and then the most recently delivered (at most
    /// [`STATUS_DELIVERED_LIMIT`], newest first).
    pub fn status(&self) -> anyhow::Result<Vec<ItemStatus>> {
        let db = self.lock();
        let mut items = Vec::new();
        for (sql, limit) in [
            (
                format!(
                    "SELECT {STATUS_COLUMNS} FROM item WHERE delivered_at IS NULL ORDER BY seq LIMIT ?1"
                ),
                STATUS_PENDING_LIMIT,
            ),
            (
                format!(
                    "SELECT {STATUS_COLUMNS} FROM item WHERE delivered_at IS NOT NULL
                     ORDER BY delivered_at DESC, seq DESC LIMIT ?1"
                ),
                STATUS_DELIVERED_LIMIT,
            ),
        ] {
            let mut stmt = db.prepare_cached(&sql)?;
            let rows = stmt.query_map([limit as i64], |r| {
                Ok(ItemStatus {
                    id: r.get(0)?,
                    target_name: r.get(1)?,
                    name: r.get(2)?,
                    content_type: r.get(3)?,
                    bytes: r.get::<_, i64>(4)? as u64,
                    added_at: Timestamp(r.get(5)?),
                    attempts: r.get(6)?,
                    last_error: r.get(7)?,
                    last_attempt_at: r.get::<_, Option<i64>>(8)?.map(Timestamp),
                    next_attempt_at: r.get::<_, Option<i64>>(9)?.map(Timestamp),
                    delivered_at: r.get::<_, Option<i64>>(10)?.map(Timestamp),
                })
            })?;
            for row in rows {
                items.push(row?);
            }
        }
        Ok(items)
    }

    /// Wakes up when an item is added, retried now or discarded.
    pub(super) fn subscribe(&self) -> watch::Receiver<u64> {
        self.added.subscribe()
    }

    /// The oldest pending item of `target`.
    pub(super) fn head(&self, target: &str) -> anyhow::Result<Option<Pending>> {
        let db = self.lock();
        let mut stmt = db.prepare_cached(
            "SELECT seq, id, name, content_type, body, attempts, next_attempt_at FROM item
             WHERE target = ?1 AND delivered_at IS NULL ORDER BY seq LIMIT 1",
        )?;
        let head = stmt
            .query_row([target], |r| {
                Ok(Pending {
                    seq: r.get(0)?,
                    id: r.get(1)?,
                    name: r.get(2)?,
                    content_type: r.get(3)?,
                    body: r.get(4)?,
                    attempts: r.get(5)?,
                    next_attempt_at: Timestamp(r.get(6)?),
                })
            })
            .optional()?;
        Ok(head)
    }

    /// The targets that items are pending for.
    pub(super) fn pending_targets(&self) -> anyhow::Result<Vec<String>> {
        let db = self.lock();
        let mut stmt =
            db.prepare_cached("SELECT DISTINCT target FROM item WHERE delivered_at IS NULL")?;
        let targets = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(targets)
    }

    /// Records a delivery: the body is dropped, the id kept.
    pub(super) fn delivered(&self, seq: i64, at: Timestamp) -> anyhow::Result<()> {
        self.lock().execute(
            "UPDATE item SET body = NULL, attempts = attempts + 1, last_error = NULL,
                 last_attempt_at = ?2, next_attempt_at = NULL, delivered_at = ?2
             WHERE seq = ?1",
            params![seq, at.millis()],
        )?;
        Ok(())
    }

    /// An operator's "try now" for a pending item: its next attempt is now.
    /// Whether it was pending.
    pub fn retry_now(&self, id: &str) -> anyhow::Result<bool> {
        let changed = self.lock().execute(
            "UPDATE item SET next_attempt_at = ?2 WHERE id = ?1 AND delivered_at IS NULL",
            params![id, Timestamp::now().millis()],
        )? == 1;
        if changed {
            self.added.send_modify(|n| *n = n.wrapping_add(1));
        }
        Ok(changed)
    }

    /// An operator gives up on a pending item (its receiver refuses it for
    /// good, and it holds up the items behind it): it is kept as delivered,
    /// its body dropped and the reason in its last error, so its id is not
    /// spooled again. Whether it was pending.
    pub fn discard(&self, id: &str, reason: &str) -> anyhow::Result<bool> {
        let changed = self.lock().execute(
            "UPDATE item SET body = NULL, last_error = ?2, next_attempt_at = NULL, delivered_at = ?3
             WHERE id = ?1 AND delivered_at IS NULL",
            params![id, reason, Timestamp::now().millis()],
        )? == 1;
        if changed {
            self.added.send_modify(|n| *n = n.wrapping_add(1));
        }
        Ok(changed)
    }

    /// Records a failed attempt and when to try again.
    pub(super) fn failed(
        &self,
        seq: i64,
        error: &str,
        at: Timestamp,
        next_attempt_at: Timestamp,
    ) -> anyhow::Result<()> {
        self.lock().execute(
            "UPDATE item SET attempts = attempts + 1, last_error = ?2, last_attempt_at = ?3,
                 next_attempt_at = ?4
             WHERE seq = ?1",
            params![seq, error, at.millis(), next_attempt_at.millis()],
        )?;
        Ok(())
    }

    /// Forgets the items delivered before `before`; returns how many.
    pub(super) fn forget_delivered(&self, before: Timestamp) -> anyhow::Result<usize> {
        let db = self.lock();
        let n = db.execute(
            "DELETE FROM item WHERE delivered_at IS NOT NULL AND delivered_at < ?1",
            [before.millis()],
        )?;
        if n > 0 {
            // Gives the pages of the removed rows back to the file system
            // (the file is created with `auto_vacuum = INCREMENTAL`).
            db.execute_batch("PRAGMA incremental_vacuum")?;
        }
        Ok(n)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn open_db(path: &Path) -> anyhow::Result<Connection> {
    let db = Connection::open(path)?;
    db.busy_timeout(Duration::from_secs(5))?;
    // Must come before the first table is created to take effect.
    db.execute_batch("PRAGMA auto_vacuum = INCREMENTAL")?;
    let mode: String = db.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        bail!("the file system does not support SQLite's write-ahead log (journal mode {mode})");
    }
    // FULL: in WAL mode, every commit is fsynced; NORMAL would only be
    // consistent, and could lose the last items added on a power cut.
    db.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA journal_size_limit = 67108864;",
    )?;
    let version: i64 = db.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        bail!(
            "it was written by a newer cdrhub (spool schema {version}, this one reads {SCHEMA_VERSION})"
        );
    }
    db.execute_batch(SCHEMA)?;
    db.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
    Ok(db)
}
