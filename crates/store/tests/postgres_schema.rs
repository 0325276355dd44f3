//! The PostgreSQL schema has every table and index of the SQLite store
//! (`cdrhub.db` and `calls.db`), so the same SQL runs on both: the same
//! columns in the same order, matching types, NOT NULL and defaults, the
//! same keys, and the same indexes by name.
//!
//! Both sides are read from the databases themselves after their
//! migrations ran, not from the migration text, so a later SQLite migration
//! without its PostgreSQL twin fails here.
//!
//! The server is the machine's own (127.0.0.1:5432, trust authentication),
//! or the one `CDRHUB_TEST_POSTGRES` names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use cdrhub_store::SqliteStore;
use cdrhub_store::postgres::PgAccounts;
use cdrhub_store::postgres::testing::TestDb;

/// Tables of `cdrhub.db` the accounts code owns: PostgreSQL has them from
/// its first migration, with types of its own (a boolean `disabled`), so
/// they are left out of the comparison.
const ACCOUNTS_TABLES: &[&str] = &[
    "users",
    "api_tokens",
    "audit",
    "sessions",
    "login_failures",
    "settings",
];

#[derive(Debug, PartialEq)]
struct Column {
    name: String,
    /// "integer", "text", "blob" or "real"; anything else is kept as is, so
    /// it matches nothing.
    family: String,
    not_null: bool,
    default: Option<String>,
}

#[derive(Debug, Default, PartialEq)]
struct Table {
    columns: Vec<Column>,
    primary_key: Vec<String>,
    /// Column lists of UNIQUE constraints and unique indexes.
    unique: BTreeSet<Vec<String>>,
}

/// An index made by CREATE INDEX (not one behind a key).
#[derive(Debug, PartialEq)]
struct Index {
    table: String,
    columns: Vec<String>,
    unique: bool,
    /// The WHERE of a partial index, normalized.
    predicate: Option<String>,
}

#[derive(Debug, Default)]
struct Schema {
    tables: BTreeMap<String, Table>,
    indexes: BTreeMap<String, Index>,
}

fn sqlite_family(declared: &str) -> String {
    match declared.to_ascii_uppercase().as_str() {
        "INTEGER" => "integer".into(),
        "TEXT" => "text".into(),
        "BLOB" => "blob".into(),
        "REAL" => "real".into(),
        other => format!("sqlite {other}"),
    }
}

fn pg_family(data_type: &str) -> String {
    match data_type {
        "bigint" => "integer".into(),
        "text" => "text".into(),
        "bytea" => "blob".into(),
        "double precision" => "real".into(),
        other => format!("postgres {other}"),
    }
}

/// `(ended_at IS NULL)` and `ended_at IS NULL` alike: PostgreSQL adds
/// parentheses and may change spacing.
fn normalize_predicate(sql: &str) -> String {
    sql.replace(['(', ')'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_uppercase()
}

/// PostgreSQL shows a default with its cast (`''::text`); SQLite without.
fn normalize_default(sql: &str) -> String {
    match sql.rsplit_once("::") {
        Some((value, cast)) if cast.chars().all(|c| c.is_ascii_alphabetic() || c == ' ') => {
            value.to_string()
        }
        _ => sql.to_string(),
    }
}

/// Reads the tables and indexes of one SQLite file into `schema`, leaving
/// out the accounts tables.
fn read_sqlite(path: &Path, schema: &mut Schema) {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    // PostgreSQL gets no triggers, so SQLite must have none to mirror.
    let triggers: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(triggers, 0, "{} has triggers", path.display());

    let names: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master \
             WHERE type = 'table' AND substr(name, 1, 7) <> 'sqlite_' ORDER BY name",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for name in names {
        if ACCOUNTS_TABLES.contains(&name.as_str()) {
            continue;
        }
        let mut table = Table::default();
        let mut key: Vec<(i64, String)> = Vec::new();
        let mut columns = conn
            .prepare(
                "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?1) \
                 ORDER BY cid",
            )
            .unwrap();
        let mut rows = columns.query([&name]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            let column: String = row.get(0).unwrap();
            let declared: String = row.get(1).unwrap();
            let not_null: bool = row.get(2).unwrap();
            let pk: i64 = row.get(4).unwrap();
            if pk > 0 {
                key.push((pk, column.clone()));
            }
            table.columns.push(Column {
                name: column,
                family: sqlite_family(&declared),
                // A key column is NOT NULL on PostgreSQL even where SQLite
                // lets a rowid table's key be NULL.
                not_null: not_null || pk > 0,
                default: row.get(3).unwrap(),
            });
        }
        key.sort();
        table.primary_key = key.into_iter().map(|(_, c)| c).collect();

        let mut list = conn
            .prepare("SELECT name, \"unique\", origin, partial FROM pragma_index_list(?1)")
            .unwrap();
        let indexes: Vec<(String, bool, String, bool)> = list
            .query_map([&name], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for (index, unique, origin, partial) in indexes {
            let columns: Vec<String> = conn
                .prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")
                .unwrap()
                .query_map([&index], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            if unique && origin != "pk" {
                table.unique.insert(columns.clone());
            }
            if origin != "c" {
                continue;
            }
            let predicate = partial.then(|| {
                let sql: String = conn
                    .query_row(
                        "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?1",
                        [&index],
                        |r| r.get(0),
                    )
                    .unwrap();
                let (_, condition) = sql.rsplit_once(" WHERE ").expect("a partial index");
                normalize_predicate(condition)
            });
            let previous = schema.indexes.insert(
                index.clone(),
                Index {
                    table: name.clone(),
                    columns,
                    unique,
                    predicate,
                },
            );
            assert!(previous.is_none(), "index {index} is in both files");
        }
        let previous = schema.tables.insert(name.clone(), table);
        assert!(previous.is_none(), "table {name} is in both files");
    }
}

/// Reads every table and index of the `public` schema. Text columns must
/// collate "C" (byte order, as SQLite sorts); the accounts tables predate
/// that rule and are not checked.
fn read_postgres(url: &str) -> Schema {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let mut schema = Schema::default();
    let tables = client
        .query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
            &[],
        )
        .unwrap();
    for row in tables {
        schema.tables.insert(row.get(0), Table::default());
    }
    let columns = client
        .query(
            "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text, \
                    column_default::text, collation_name::text \
             FROM information_schema.columns WHERE table_schema = 'public' \
             ORDER BY table_name, ordinal_position",
            &[],
        )
        .unwrap();
    for row in columns {
        let table: String = row.get(0);
        let name: String = row.get(1);
        let data_type: String = row.get(2);
        let collation: Option<String> = row.get(5);
        if data_type == "text" && !ACCOUNTS_TABLES.contains(&table.as_str()) {
            assert_eq!(
                collation.as_deref(),
                Some("C"),
                "{table}.{name} must collate \"C\""
            );
        }
        let default: Option<String> = row.get(4);
        schema
            .tables
            .get_mut(&table)
            .expect("a column of a listed table")
            .columns
            .push(Column {
                name,
                family: pg_family(&data_type),
                not_null: row.get::<_, String>(3) == "NO",
                default: default.as_deref().map(normalize_default),
            });
    }
    // pg_indexes names them; pg_index tells their columns and kind.
    let indexes = client
        .query(
            "SELECT x.tablename::text, x.indexname::text, i.indisunique, i.indisprimary, \
                    EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid), \
                    pg_get_expr(i.indpred, i.indrelid), \
                    ARRAY(SELECT a.attname::text \
                          FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
                          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
                          ORDER BY k.ord) \
             FROM pg_indexes x \
             JOIN pg_index i ON i.indexrelid = format('%I.%I', x.schemaname, x.indexname)::regclass \
             WHERE x.schemaname = 'public'",
            &[],
        )
        .unwrap();
    for row in indexes {
        let table_name: String = row.get(0);
        let name: String = row.get(1);
        let unique: bool = row.get(2);
        let primary: bool = row.get(3);
        let constraint: bool = row.get(4);
        let predicate: Option<String> = row.get(5);
        let columns: Vec<String> = row.get(6);
        let table = schema.tables.get_mut(&table_name).expect("a listed table");
        if primary {
            table.primary_key = columns.clone();
        } else if unique {
            table.unique.insert(columns.clone());
        }
        // Indexes behind PRIMARY KEY and UNIQUE get names of PostgreSQL's;
        // SQLite's are sqlite_autoindex_*. Both are compared as keys above.
        if !constraint {
            schema.indexes.insert(
                name,
                Index {
                    table: table_name,
                    columns,
                    unique,
                    predicate: predicate.as_deref().map(normalize_predicate),
                },
            );
        }
    }
    schema
}

#[test]
fn postgres_has_every_table_and_index_of_the_sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    // Opening runs both files' migrations; dropping closes them.
    drop(SqliteStore::open(dir.path(), Default::default()).unwrap());
    let mut sqlite = Schema::default();
    read_sqlite(&dir.path().join("cdrhub.db"), &mut sqlite);
    read_sqlite(&dir.path().join("calls.db"), &mut sqlite);
    // Guards the test itself: both files were read.
    assert!(sqlite.tables.contains_key("journal") && sqlite.tables.contains_key("calls"));

    let db = TestDb::new();
    // Opening the accounts runs every PostgreSQL migration.
    drop(PgAccounts::open(&db.url()).unwrap());
    let pg = read_postgres(&db.url());

    for (name, table) in &sqlite.tables {
        let Some(mirror) = pg.tables.get(name) else {
            panic!("PostgreSQL has no table {name}");
        };
        assert_eq!(mirror.columns, table.columns, "columns of {name}");
        assert_eq!(
            mirror.primary_key, table.primary_key,
            "primary key of {name}"
        );
        assert_eq!(mirror.unique, table.unique, "unique keys of {name}");
    }
    let extra: Vec<&String> = pg
        .tables
        .keys()
        .filter(|name| {
            !sqlite.tables.contains_key(*name)
                && !ACCOUNTS_TABLES.contains(&name.as_str())
                && name.as_str() != "schema_version"
        })
        .collect();
    assert!(extra.is_empty(), "tables only on PostgreSQL: {extra:?}");

    for (name, index) in &sqlite.indexes {
        assert_eq!(pg.indexes.get(name), Some(index), "index {name}");
    }
    // And no index of PostgreSQL's own on the mirrored tables.
    let extra: Vec<&String> = pg
        .indexes
        .iter()
        .filter(|(name, index)| {
            sqlite.tables.contains_key(&index.table) && !sqlite.indexes.contains_key(*name)
        })
        .map(|(name, _)| name)
        .collect();
    assert!(extra.is_empty(), "indexes only on PostgreSQL: {extra:?}");

    // The one-row progress marker is there, at its start.
    let mut client = postgres::Client::connect(&db.url(), postgres::NoTls).unwrap();
    let upto: i64 = client
        .query_one(
            "SELECT value FROM correlation_state WHERE key = 'correlated_upto'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(upto, 0);
}
