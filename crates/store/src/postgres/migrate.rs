//! Moving an SQLite installation to PostgreSQL (`cdrhub migrate`): the
//! journal, its streams, gaps and sender counters, the gateways, the ended
//! calls, and the accounts and settings of `cdrhub.db` are copied as they
//! are, ids included, with binary COPY in one transaction. `calls.db` is not
//! copied: calls, legs and statistics are derived from the journal, and the
//! PostgreSQL store's correlator rebuilds them at its first start (its
//! `correlated_upto` is 0, so it replays the whole journal).

use std::path::Path;
use std::time::Duration;

use ::postgres::binary_copy::BinaryCopyInWriter;
use ::postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use ::postgres::{Client, Transaction};
use bytes::BytesMut;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use super::{PgAccounts, PgPool};
use crate::StoreError;

/// The tables of `cdrhub.db` that are copied, in this order. Everything
/// else there is derived or bookkeeping of the file itself.
const TABLES: &[&str] = &[
    "streams",
    "journal",
    "gaps",
    "senders",
    "forced_ends",
    "gateway_log",
    "gateways",
    "users",
    "api_tokens",
    "audit",
    "sessions",
    "login_failures",
    "settings",
];

/// Rows between two progress reports.
const PROGRESS_EVERY: u64 = 10_000;

/// How far a migration is.
#[derive(Debug, Clone)]
pub struct MigrateProgress {
    /// The table being copied.
    pub table: &'static str,
    /// Rows of that table copied so far, and all it has.
    pub table_copied: u64,
    pub table_rows: u64,
    /// Rows of every table copied so far, and all there are.
    pub copied: u64,
    pub total: u64,
}

/// What a migration copied.
#[derive(Debug, Clone)]
pub struct MigrateSummary {
    /// The server and database written to (never the password).
    pub server: String,
    /// Rows copied, by table, in the order they were copied.
    pub tables: Vec<(String, u64)>,
    /// Columns of `cdrhub.db` (as `table.column`) the PostgreSQL tables do
    /// not have, so they were left behind. Empty unless the two schemas
    /// drifted apart.
    pub skipped_columns: Vec<String>,
}

impl MigrateSummary {
    /// Rows copied of `table`.
    pub fn rows(&self, table: &str) -> u64 {
        self.tables
            .iter()
            .find(|(name, _)| name == table)
            .map_or(0, |(_, n)| *n)
    }

    /// Rows copied in all.
    pub fn total(&self) -> u64 {
        self.tables.iter().map(|(_, n)| n).sum()
    }
}

/// Copies the journal, accounts and settings of the SQLite installation in
/// `data_dir` into the PostgreSQL database at `url`, creating its schema.
/// Holds the data directory's lock meanwhile, so no server writes to it, and
/// refuses a database that already holds cdrhub data. `progress` is called
/// at the start and end of each table and every 10,000 rows.
pub fn migrate_sqlite_to_postgres(
    data_dir: &Path,
    url: &str,
    progress: &mut dyn FnMut(&MigrateProgress),
) -> Result<MigrateSummary, StoreError> {
    let path = data_dir.join("cdrhub.db");
    if !path.is_file() {
        return Err(StoreError::Open(format!(
            "{} holds no cdrhub.db, so there is nothing to migrate",
            data_dir.display()
        )));
    }
    let _lock = crate::sqlite::lock_data_dir(data_dir).map_err(|e| match e {
        // Its own message suggests sending records to the running server,
        // which is no help here.
        StoreError::Open(m) if m.starts_with("another cdrhub process") => StoreError::Open(format!(
            "a cdrhub process is using {}; stop it first, so nothing is written while it is copied",
            data_dir.display()
        )),
        e => e,
    })?;
    if crate::pending_restore(data_dir).is_some() {
        return Err(StoreError::Open(format!(
            "a backup waits to be restored in {}; start cdrhub on it once to apply it \
             (or remove it), then migrate",
            data_dir.display()
        )));
    }
    let mut source = open_source(data_dir, &path)?;
    // One connection: everything happens in one transaction.
    let pool = PgPool::connect(url, 1)?;
    drop(PgAccounts::with_pool(pool.clone())?);
    let mut conn = pool.get()?;
    let mut migration = Migration {
        path: &path,
        pool: &pool,
        progress,
    };
    let summary = migration.run(&mut source, &mut conn)?;
    Ok(summary)
}

/// Opens `cdrhub.db` read-only, first bringing it to this build's layout
/// if an older cdrhub wrote it (as any start of cdrhub would).
fn open_source(data_dir: &Path, path: &Path) -> Result<Connection, StoreError> {
    let open_err = |e: rusqlite::Error| StoreError::Open(format!("{}: {e}", path.display()));
    let open = || -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?;
        // `cdrhub user` and `cdrhub token` write without the lock.
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(open_err)?;
        Ok(conn)
    };
    let version = |conn: &Connection| {
        conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
            .map_err(open_err)
    };
    let current = crate::sqlite::schema::journal_version();
    let conn = open()?;
    let found = version(&conn)?;
    if found > current {
        return Err(StoreError::Open(format!(
            "{} was written by a newer cdrhub (layout {found}, this one knows up to {current}); \
             migrate with that version",
            path.display()
        )));
    }
    if found == current {
        return Ok(conn);
    }
    drop(conn);
    drop(crate::SqliteAccounts::open(data_dir)?);
    open()
}

/// What is copied of one table.
struct Plan {
    table: &'static str,
    /// Columns both sides have, with the PostgreSQL type of each.
    columns: Vec<(String, Kind)>,
    /// An identity `id` on PostgreSQL, whose sequence must move past the
    /// copied ids.
    identity_id: bool,
    /// SQLite's table has an `id` (its primary key): read in its order.
    ordered_by_id: bool,
    rows: u64,
}

struct Migration<'a> {
    path: &'a Path,
    pool: &'a PgPool,
    progress: &'a mut dyn FnMut(&MigrateProgress),
}

impl Migration<'_> {
    fn run(
        &mut self,
        source: &mut Connection,
        conn: &mut Client,
    ) -> Result<MigrateSummary, StoreError> {
        let path = self.path;
        let sqlite_err = |e: rusqlite::Error| StoreError::Open(format!("{}: {e}", path.display()));
        let pg = self.pool;
        // One snapshot of every table, though `cdrhub user` and `cdrhub
        // token` may write without the lock.
        let read = source.transaction().map_err(sqlite_err)?;
        let mut tx = conn.transaction().map_err(|e| pg.error(e))?;
        let mut plans = Vec::new();
        let mut skipped_columns = Vec::new();
        for &table in TABLES {
            let plan = self.plan(&read, &mut tx, table, &mut skipped_columns)?;
            plans.push(plan);
        }
        // Held to the commit: servers already on the database wait, and a
        // second migration cannot slip in between the check and the copy.
        tx.batch_execute(&format!(
            "LOCK TABLE {} IN EXCLUSIVE MODE",
            TABLES.join(", ")
        ))
        .map_err(|e| pg.error(e))?;
        refuse_if_used(&mut tx, pg)?;

        let total = plans.iter().map(|p| p.rows).sum();
        let mut copied = 0;
        let mut tables = Vec::new();
        for plan in &plans {
            let n = self.copy_table(&read, &mut tx, plan, &mut copied, total)?;
            tables.push((plan.table.to_owned(), n));
        }
        for plan in plans.iter().filter(|p| p.identity_id) {
            // New rows then get ids after the copied ones.
            tx.execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence($1, 'id'), coalesce(max(id), 0) + 1, false) \
                     FROM {}",
                    plan.table
                ),
                &[&plan.table],
            )
            .map_err(|e| pg.error(e))?;
        }
        // The calls are derived: the correlator replays the whole journal.
        tx.execute(
            "UPDATE correlation_state SET value = 0 WHERE key = 'correlated_upto'",
            &[],
        )
        .map_err(|e| pg.error(e))?;
        tx.commit().map_err(|e| pg.error(e))?;
        Ok(MigrateSummary {
            server: pg.server().to_owned(),
            tables,
            skipped_columns,
        })
    }

    /// The columns of `table` both databases have, by name, and its rows.
    fn plan(
        &self,
        source: &Connection,
        tx: &mut Transaction<'_>,
        table: &'static str,
        skipped: &mut Vec<String>,
    ) -> Result<Plan, StoreError> {
        let path = self.path;
        let sqlite_err = |e: rusqlite::Error| StoreError::Open(format!("{}: {e}", path.display()));
        let target = tx
            .query(
                "SELECT column_name::text, data_type::text, is_identity::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
                &[&table],
            )
            .map_err(|e| self.pool.error(e))?;
        if target.is_empty() {
            return Err(StoreError::Open(format!(
                "the PostgreSQL database at {} has no table {table}",
                self.pool.server()
            )));
        }
        let ours: Vec<String> = source
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(sqlite_err)?;
        let mut columns = Vec::new();
        let mut identity_id = false;
        for row in &target {
            let name: String = row.get(0);
            let data_type: String = row.get(1);
            if !ours.contains(&name) {
                // Filled with its default on PostgreSQL.
                continue;
            }
            let kind = Kind::of(&data_type).ok_or_else(|| {
                StoreError::Open(format!(
                    "column {table}.{name} of the PostgreSQL database has the type {data_type}, \
                     which cdrhub does not copy into"
                ))
            })?;
            if name == "id" && row.get::<_, String>(2) == "YES" {
                identity_id = true;
            }
            columns.push((name, kind));
        }
        for name in &ours {
            if !columns.iter().any(|(c, _)| c == name) {
                skipped.push(format!("{table}.{name}"));
            }
        }
        let ordered_by_id = ours.iter().any(|c| c == "id");
        let rows = if ours.is_empty() {
            // No such table in this cdrhub.db.
            0
        } else {
            source
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
                    r.get::<_, i64>(0)
                })
                .map_err(sqlite_err)?
                .max(0) as u64
        };
        Ok(Plan {
            table,
            columns,
            identity_id,
            ordered_by_id,
            rows,
        })
    }

    /// Streams the rows of one table into a binary COPY.
    fn copy_table(
        &mut self,
        source: &Connection,
        tx: &mut Transaction<'_>,
        plan: &Plan,
        copied: &mut u64,
        total: u64,
    ) -> Result<u64, StoreError> {
        let table = plan.table;
        let mut report = |table_copied: u64, copied: u64| {
            (self.progress)(&MigrateProgress {
                table,
                table_copied,
                table_rows: plan.rows,
                copied,
                total,
            })
        };
        report(0, *copied);
        if plan.rows == 0 || plan.columns.is_empty() {
            return Ok(0);
        }
        let names: Vec<String> = plan.columns.iter().map(|(c, _)| quote(c)).collect();
        let names = names.join(", ");
        let order = if plan.ordered_by_id {
            " ORDER BY id"
        } else {
            ""
        };
        let path = self.path;
        let pool = self.pool;
        let sqlite_err = |e: rusqlite::Error| StoreError::Open(format!("{}: {e}", path.display()));
        let mut select = source
            .prepare(&format!("SELECT {names} FROM {table}{order}"))
            .map_err(sqlite_err)?;
        let types: Vec<Type> = plan.columns.iter().map(|(_, k)| k.pg_type()).collect();
        let sink = tx
            .copy_in(&format!("COPY {table} ({names}) FROM STDIN BINARY"))
            .map_err(|e| pool.error(e))?;
        let mut writer = BinaryCopyInWriter::new(sink, &types);
        let mut rows = select.query([]).map_err(sqlite_err)?;
        let mut cells = Vec::with_capacity(plan.columns.len());
        let mut n = 0u64;
        while let Some(row) = rows.next().map_err(sqlite_err)? {
            cells.clear();
            for (i, (name, kind)) in plan.columns.iter().enumerate() {
                let value = row.get_ref(i).map_err(sqlite_err)?;
                let cell = Cell::new(*kind, value).map_err(|why| {
                    StoreError::Open(format!(
                        "{}: row {} of {table}, column {name}: {why}",
                        path.display(),
                        n + 1
                    ))
                })?;
                cells.push(cell);
            }
            writer.write_raw(cells.iter()).map_err(|e| pool.error(e))?;
            n += 1;
            *copied += 1;
            if n.is_multiple_of(PROGRESS_EVERY) {
                report(n, *copied);
            }
        }
        writer.finish().map_err(|e| pool.error(e))?;
        report(n, *copied);
        Ok(n)
    }
}

/// Fails when the database already holds cdrhub data: two installations
/// must not be mixed (and the copied ids would collide with its own).
fn refuse_if_used(tx: &mut Transaction<'_>, pool: &PgPool) -> Result<(), StoreError> {
    let mut held = Vec::new();
    for &table in TABLES {
        let rows: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .and_then(|r| r.try_get(0))
            .map_err(|e| pool.error(e))?;
        if rows > 0 {
            let plural = if rows == 1 { "" } else { "s" };
            held.push(match table {
                "journal" => format!("{rows} journal record{plural}"),
                "users" => format!("{rows} user{plural}"),
                "api_tokens" => format!("{rows} API token{plural}"),
                _ => format!("{rows} row{plural} in {table}"),
            });
        }
    }
    if held.is_empty() {
        return Ok(());
    }
    Err(StoreError::Conflict(format!(
        "the PostgreSQL database at {} already holds cdrhub data ({}); migrate into a new, \
         empty database so two installations are not mixed",
        pool.server(),
        held.join(", ")
    )))
}

/// An identifier for SQL, quoted.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The PostgreSQL column types values are copied into.
#[derive(Debug, Clone, Copy)]
enum Kind {
    BigInt,
    Integer,
    Double,
    Boolean,
    Text,
    Bytea,
}

impl Kind {
    /// From `information_schema.columns.data_type`.
    fn of(data_type: &str) -> Option<Kind> {
        Some(match data_type {
            "bigint" => Kind::BigInt,
            "integer" => Kind::Integer,
            "double precision" => Kind::Double,
            "boolean" => Kind::Boolean,
            "text" => Kind::Text,
            "bytea" => Kind::Bytea,
            _ => return None,
        })
    }

    fn pg_type(self) -> Type {
        match self {
            Kind::BigInt => Type::INT8,
            Kind::Integer => Type::INT4,
            Kind::Double => Type::FLOAT8,
            Kind::Boolean => Type::BOOL,
            Kind::Text => Type::TEXT,
            Kind::Bytea => Type::BYTEA,
        }
    }
}

/// A value of `cdrhub.db`, converted for the type of its PostgreSQL column.
#[derive(Debug)]
enum Cell {
    Null,
    BigInt(i64),
    Integer(i32),
    Double(f64),
    Boolean(bool),
    Text(String),
    Bytea(Vec<u8>),
}

impl Cell {
    /// SQLite keeps any type in any column; what fits the target column
    /// without losing anything is converted, the rest is an error.
    fn new(kind: Kind, value: ValueRef<'_>) -> Result<Cell, String> {
        let utf8 = |bytes: &[u8]| {
            String::from_utf8(bytes.to_vec()).map_err(|_| "the text is not valid UTF-8".to_owned())
        };
        let cell = match (kind, value) {
            (_, ValueRef::Null) => Cell::Null,
            (Kind::BigInt, ValueRef::Integer(i)) => Cell::BigInt(i),
            (Kind::BigInt, ValueRef::Real(f)) if f.fract() == 0.0 && f.abs() < 9.0e18 => {
                Cell::BigInt(f as i64)
            }
            (Kind::BigInt, ValueRef::Text(t)) => {
                Cell::BigInt(utf8(t)?.trim().parse().map_err(|_| not_a_number(t))?)
            }
            (Kind::Integer, ValueRef::Integer(i)) => Cell::Integer(
                i32::try_from(i).map_err(|_| format!("{i} is too large for an integer column"))?,
            ),
            (Kind::Double, ValueRef::Real(f)) => Cell::Double(f),
            (Kind::Double, ValueRef::Integer(i)) => Cell::Double(i as f64),
            (Kind::Double, ValueRef::Text(t)) => {
                Cell::Double(utf8(t)?.trim().parse().map_err(|_| not_a_number(t))?)
            }
            (Kind::Boolean, ValueRef::Integer(i)) => Cell::Boolean(i != 0),
            (Kind::Text, ValueRef::Text(t) | ValueRef::Blob(t)) => Cell::Text(utf8(t)?),
            (Kind::Text, ValueRef::Integer(i)) => Cell::Text(i.to_string()),
            (Kind::Text, ValueRef::Real(f)) => Cell::Text(f.to_string()),
            (Kind::Bytea, ValueRef::Blob(b) | ValueRef::Text(b)) => Cell::Bytea(b.to_vec()),
            (kind, value) => {
                return Err(format!(
                    "{} value {value:?} does not fit a {kind:?} column",
                    value.data_type()
                ));
            }
        };
        Ok(cell)
    }
}

fn not_a_number(text: &[u8]) -> String {
    format!(
        "the text {:?} is not a number",
        String::from_utf8_lossy(text)
    )
}

impl ToSql for Cell {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Cell::Null => Ok(IsNull::Yes),
            Cell::BigInt(v) => v.to_sql(ty, out),
            Cell::Integer(v) => v.to_sql(ty, out),
            Cell::Double(v) => v.to_sql(ty, out),
            Cell::Boolean(v) => v.to_sql(ty, out),
            Cell::Text(v) => v.to_sql(ty, out),
            Cell::Bytea(v) => v.to_sql(ty, out),
        }
    }

    /// Each cell was made for its column's type (`Cell::new`).
    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_converted_for_their_column_or_refused() {
        assert!(matches!(
            Cell::new(Kind::Boolean, ValueRef::Integer(1)),
            Ok(Cell::Boolean(true))
        ));
        assert!(matches!(
            Cell::new(Kind::BigInt, ValueRef::Real(3.0)),
            Ok(Cell::BigInt(3))
        ));
        assert!(Cell::new(Kind::BigInt, ValueRef::Real(3.5)).is_err());
        assert!(Cell::new(Kind::Text, ValueRef::Blob(&[0xff, 0xfe])).is_err());
        assert!(matches!(
            Cell::new(Kind::Bytea, ValueRef::Text(b"ab")),
            Ok(Cell::Bytea(b)) if b == b"ab"
        ));
        assert!(matches!(
            Cell::new(Kind::Text, ValueRef::Null),
            Ok(Cell::Null)
        ));
    }
}
