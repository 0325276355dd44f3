//! One way to speak SQL to SQLite and to PostgreSQL (issue 8), so the
//! journal, the correlator and every query are written once and give the
//! same results on both.
//!
//! Statements are written in the SQL both databases understand: `?N`
//! placeholders (rewritten to `$N` for PostgreSQL), `ON CONFLICT` upserts,
//! `RETURNING`, `coalesce`, `CASE`. What only one of them has (SQLite's
//! pragmas, PostgreSQL's `COPY`) stays with that backend.
//!
//! [`Db`] is a borrowed handle, `Copy` like `&Connection`: functions take it
//! by value. Values cross as [`ArgRef`] (bound parameters, never text
//! spliced into SQL) and come back through [`FromValue`], so an integer is
//! an `i64` whichever database held it.

use std::cell::RefCell;
use std::collections::HashMap;

use ::postgres::types::{FromSql, IsNull, ToSql, Type};
use bytes::BytesMut;

use crate::StoreError;

/// What a statement failed with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("{}", pg_reason(.0))]
    Pg(#[from] ::postgres::Error),
    /// A column held a value of another type than the code reads.
    #[error("column {column}: {message}")]
    Decode { column: usize, message: String },
    #[error("the query returned no row")]
    NoRows,
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for StoreError {
    fn from(e: Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

/// The server's own message and code, or the driver's with its cause (the
/// driver's `Display` shows only "db error").
pub(crate) fn pg_reason(e: &::postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// `Ok(None)` for a query that found nothing, as rusqlite's `optional()`.
pub(crate) trait OptionalExt<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExt<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(Error::NoRows) | Err(Error::Sqlite(rusqlite::Error::QueryReturnedNoRows)) => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

/// A value bound to a statement, borrowed from the caller.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ArgRef<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
    /// A value only PostgreSQL takes as it is (an array for `unnest`).
    Pg(&'a (dyn ToSql + Sync)),
}

/// A PostgreSQL-only parameter: statements that bind one run only there.
pub(crate) struct PgOnly<'a>(pub &'a (dyn ToSql + Sync));

impl Arg for PgOnly<'_> {
    fn arg(&self) -> ArgRef<'_> {
        ArgRef::Pg(self.0)
    }
}

/// An owned value: a bound parameter built at run time, or a column read
/// whatever its type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// What can be bound to a placeholder.
pub(crate) trait Arg {
    fn arg(&self) -> ArgRef<'_>;
}

macro_rules! int_arg {
    ($($t:ty),*) => {$(
        impl Arg for $t {
            fn arg(&self) -> ArgRef<'_> {
                ArgRef::Int(i64::from(*self))
            }
        }
    )*};
}
int_arg!(i64, i32, i16, u32, u16, u8, bool);

impl Arg for u64 {
    /// Counts never come near `i64::MAX`; one that did is kept at the top.
    fn arg(&self) -> ArgRef<'_> {
        ArgRef::Int(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}

impl Arg for usize {
    fn arg(&self) -> ArgRef<'_> {
        ArgRef::Int(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}

impl Arg for f64 {
    fn arg(&self) -> ArgRef<'_> {
        ArgRef::Real(*self)
    }
}

impl Arg for str {
    fn arg(&self) -> ArgRef<'_> {
        ArgRef::Text(self)
    }
}

impl Arg for String {
    fn arg(&self) -> ArgRef<'_> {
        ArgRef::Text(self)
    }
}

impl Arg for [u8] {
    fn arg(&self) -> ArgRef<'_> {
        ArgRef::Blob(self)
    }
}

impl Arg for Vec<u8> {
    fn arg(&self) -> ArgRef<'_> {
        ArgRef::Blob(self)
    }
}

impl Arg for cdrhub_model::Timestamp {
    fn arg(&self) -> ArgRef<'_> {
        ArgRef::Int(self.0)
    }
}

impl Arg for Value {
    fn arg(&self) -> ArgRef<'_> {
        match self {
            Value::Null => ArgRef::Null,
            Value::Int(i) => ArgRef::Int(*i),
            Value::Real(f) => ArgRef::Real(*f),
            Value::Text(s) => ArgRef::Text(s),
            Value::Blob(b) => ArgRef::Blob(b),
        }
    }
}

impl<T: Arg + ?Sized> Arg for &T {
    fn arg(&self) -> ArgRef<'_> {
        (**self).arg()
    }
}

impl<T: Arg> Arg for Option<T> {
    fn arg(&self) -> ArgRef<'_> {
        match self {
            Some(v) => v.arg(),
            None => ArgRef::Null,
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}

/// Parameters built at run time (a filter's values), to bind.
pub(crate) fn refs(values: &[Value]) -> Vec<&dyn Arg> {
    values.iter().map(|v| v as &dyn Arg).collect()
}

/// The parameters of a statement: `args![a, b, c]`.
macro_rules! args {
    () => {
        &[] as &[&dyn $crate::db::Arg]
    };
    ($($a:expr),+ $(,)?) => {
        &[$(&$a as &dyn $crate::db::Arg),+] as &[&dyn $crate::db::Arg]
    };
}
pub(crate) use args;

impl rusqlite::ToSql for ArgRef<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::ValueRef as V;
        Ok(rusqlite::types::ToSqlOutput::Borrowed(match *self {
            ArgRef::Null => V::Null,
            ArgRef::Int(i) => V::Integer(i),
            ArgRef::Real(f) => V::Real(f),
            ArgRef::Text(s) => V::Text(s.as_bytes()),
            ArgRef::Blob(b) => V::Blob(b),
            ArgRef::Pg(_) => {
                return Err(rusqlite::Error::ToSqlConversionFailure(
                    "a PostgreSQL-only value was bound on SQLite".into(),
                ));
            }
        }))
    }
}

type BoxError = Box<dyn std::error::Error + Sync + Send>;

/// PostgreSQL types each parameter from where it stands in the statement;
/// the value is written as that type, so one `i64` serves an `integer` or a
/// `bigint` column alike.
impl ToSql for ArgRef<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> std::result::Result<IsNull, BoxError> {
        match *self {
            ArgRef::Null => Ok(IsNull::Yes),
            ArgRef::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(i)?.to_sql(ty, out),
                Type::FLOAT8 => (i as f64).to_sql(ty, out),
                Type::BOOL => (i != 0).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => i.to_string().as_str().to_sql(ty, out),
                _ => Err(format!("an integer cannot be bound to a {ty} parameter").into()),
            },
            ArgRef::Real(f) => match *ty {
                Type::FLOAT8 => f.to_sql(ty, out),
                Type::FLOAT4 => (f as f32).to_sql(ty, out),
                _ => Err(format!("a number cannot be bound to a {ty} parameter").into()),
            },
            ArgRef::Text(s) => match *ty {
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    s.to_sql(ty, out)
                }
                _ => Err(format!("text cannot be bound to a {ty} parameter").into()),
            },
            ArgRef::Blob(b) => match *ty {
                Type::BYTEA => b.to_sql(ty, out),
                _ => Err(format!("bytes cannot be bound to a {ty} parameter").into()),
            },
            ArgRef::Pg(v) => v.to_sql_checked(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    ::postgres::types::to_sql_checked!();
}

/// A column's value, borrowed from the row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ValueRef<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

impl<'a> FromSql<'a> for ValueRef<'a> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> std::result::Result<Self, BoxError> {
        Ok(match *ty {
            Type::INT8 => ValueRef::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => ValueRef::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT2 => ValueRef::Int(i16::from_sql(ty, raw)?.into()),
            Type::OID => ValueRef::Int(u32::from_sql(ty, raw)?.into()),
            Type::BOOL => ValueRef::Int(bool::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => ValueRef::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => ValueRef::Real(f32::from_sql(ty, raw)?.into()),
            Type::NUMERIC => numeric(raw)?,
            Type::BYTEA => ValueRef::Blob(raw),
            _ => ValueRef::Text(std::str::from_utf8(raw)?),
        })
    }

    fn from_sql_null(_: &Type) -> std::result::Result<Self, BoxError> {
        Ok(ValueRef::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// PostgreSQL's binary `numeric` (what `sum` of a `bigint` gives): base
/// 10,000 digits. Whole values come back as integers, as in SQLite.
fn numeric(raw: &[u8]) -> std::result::Result<ValueRef<'static>, BoxError> {
    let word = |i: usize| -> std::result::Result<u16, BoxError> {
        raw.get(i * 2..i * 2 + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "truncated numeric".into())
    };
    let ndigits = usize::from(word(0)?);
    let weight = i32::from(word(1)? as i16);
    let sign = word(2)?;
    let dscale = word(3)?;
    if sign == 0xC000 {
        return Ok(ValueRef::Real(f64::NAN));
    }
    let negative = sign == 0x4000;
    let mut whole: i128 = 0;
    let mut fraction = 0f64;
    for i in 0..ndigits {
        let digit = word(4 + i)?;
        let power = weight - i as i32;
        if power >= 0 {
            whole = whole
                .checked_mul(10_000)
                .and_then(|w| w.checked_add(digit.into()))
                .ok_or("numeric too large")?;
        } else {
            fraction += f64::from(digit) * 10_000f64.powi(power);
        }
    }
    // Digits that stop above the units place leave zeros to add.
    let last_power = weight - ndigits as i32 + 1;
    if ndigits > 0 && last_power > 0 {
        for _ in 0..last_power {
            whole = whole.checked_mul(10_000).ok_or("numeric too large")?;
        }
    }
    if negative {
        whole = -whole;
        fraction = -fraction;
    }
    if dscale == 0 && fraction == 0.0 {
        Ok(ValueRef::Int(
            i64::try_from(whole).map_err(|_| "numeric beyond 64 bits")?,
        ))
    } else {
        Ok(ValueRef::Real(whole as f64 + fraction))
    }
}

impl<'a> From<rusqlite::types::ValueRef<'a>> for ValueRef<'a> {
    fn from(v: rusqlite::types::ValueRef<'a>) -> Self {
        use rusqlite::types::ValueRef as V;
        match v {
            V::Null => ValueRef::Null,
            V::Integer(i) => ValueRef::Int(i),
            V::Real(f) => ValueRef::Real(f),
            // SQLite keeps what it was given; text that is not UTF-8 reads
            // as bytes.
            V::Text(t) => match std::str::from_utf8(t) {
                Ok(s) => ValueRef::Text(s),
                Err(_) => ValueRef::Blob(t),
            },
            V::Blob(b) => ValueRef::Blob(b),
        }
    }
}

/// A Rust value read from a column.
pub(crate) trait FromValue: Sized {
    fn from_value(v: ValueRef<'_>) -> std::result::Result<Self, String>;
}

fn mismatch(want: &str, v: ValueRef<'_>) -> String {
    let got = match v {
        ValueRef::Null => "NULL",
        ValueRef::Int(_) => "an integer",
        ValueRef::Real(_) => "a real number",
        ValueRef::Text(_) => "text",
        ValueRef::Blob(_) => "bytes",
    };
    format!("expected {want}, found {got}")
}

impl FromValue for i64 {
    fn from_value(v: ValueRef<'_>) -> std::result::Result<Self, String> {
        match v {
            ValueRef::Int(i) => Ok(i),
            _ => Err(mismatch("an integer", v)),
        }
    }
}

macro_rules! narrow_from_value {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(v: ValueRef<'_>) -> std::result::Result<Self, String> {
                let i = i64::from_value(v)?;
                <$t>::try_from(i).map_err(|_| format!("{i} is out of range"))
            }
        }
    )*};
}
narrow_from_value!(i32, u32, u16, u8, u64, usize);

impl FromValue for bool {
    fn from_value(v: ValueRef<'_>) -> std::result::Result<Self, String> {
        i64::from_value(v).map(|i| i != 0)
    }
}

impl FromValue for f64 {
    fn from_value(v: ValueRef<'_>) -> std::result::Result<Self, String> {
        match v {
            ValueRef::Real(f) => Ok(f),
            ValueRef::Int(i) => Ok(i as f64),
            _ => Err(mismatch("a number", v)),
        }
    }
}

impl FromValue for String {
    fn from_value(v: ValueRef<'_>) -> std::result::Result<Self, String> {
        match v {
            ValueRef::Text(s) => Ok(s.to_owned()),
            _ => Err(mismatch("text", v)),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(v: ValueRef<'_>) -> std::result::Result<Self, String> {
        match v {
            ValueRef::Blob(b) => Ok(b.to_vec()),
            ValueRef::Text(s) => Ok(s.as_bytes().to_vec()),
            _ => Err(mismatch("bytes", v)),
        }
    }
}

impl FromValue for Value {
    fn from_value(v: ValueRef<'_>) -> std::result::Result<Self, String> {
        Ok(match v {
            ValueRef::Null => Value::Null,
            ValueRef::Int(i) => Value::Int(i),
            ValueRef::Real(f) => Value::Real(f),
            ValueRef::Text(s) => Value::Text(s.to_owned()),
            ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        })
    }
}

impl FromValue for cdrhub_model::Timestamp {
    fn from_value(v: ValueRef<'_>) -> std::result::Result<Self, String> {
        i64::from_value(v).map(cdrhub_model::Timestamp)
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: ValueRef<'_>) -> std::result::Result<Self, String> {
        match v {
            ValueRef::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// One row of a result.
pub(crate) enum Row<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Pg(&'a ::postgres::Row),
}

impl Row<'_> {
    /// The value of column `idx` (from 0).
    pub(crate) fn get<T: FromValue>(&self, idx: usize) -> Result<T> {
        let decode = |message: String| Error::Decode {
            column: idx,
            message,
        };
        match self {
            Row::Sqlite(r) => {
                let v = r.get_ref(idx)?;
                T::from_value(v.into()).map_err(decode)
            }
            Row::Pg(r) => {
                let v: ValueRef<'_> = r.try_get(idx)?;
                T::from_value(v).map_err(decode)
            }
        }
    }
}

/// A PostgreSQL connection with its prepared statements, for one thread.
/// A connection the server closed is replaced from the pool at the next
/// statement, unless a transaction was open on it: that transaction is
/// lost, and its statements fail until it is rolled back.
pub struct PgSession {
    inner: RefCell<PgInner>,
}

struct PgInner {
    pool: crate::postgres::PgPool,
    client: crate::postgres::PgConnection,
    statements: HashMap<String, ::postgres::Statement>,
    in_transaction: bool,
    /// Run on every connection the session opens (session settings).
    setup: Option<&'static str>,
    /// Counts the connections this session has had: session state (such
    /// as an advisory lock) lives only as long as one.
    generation: u64,
}

/// Statements built at run time (filters) are cached too; past this many
/// the cache starts again.
const MAX_CACHED_STATEMENTS: usize = 512;

impl PgSession {
    pub(crate) fn new(pool: &crate::postgres::PgPool) -> Result<Self, StoreError> {
        Self::with_setup(pool, None)
    }

    /// A session that runs `setup` on each of its connections.
    pub(crate) fn with_setup(
        pool: &crate::postgres::PgPool,
        setup: Option<&'static str>,
    ) -> Result<Self, StoreError> {
        let mut client = pool.get()?;
        if let Some(sql) = setup {
            client.batch_execute(sql).map_err(|e| pool.error(e))?;
        }
        Ok(PgSession {
            inner: RefCell::new(PgInner {
                pool: pool.clone(),
                client,
                statements: HashMap::new(),
                in_transaction: false,
                setup,
                generation: 0,
            }),
        })
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.inner.borrow().client.is_closed()
    }
}

impl PgInner {
    /// The connection, a new one when the server closed it outside a
    /// transaction.
    fn client(&mut self) -> Result<&mut ::postgres::Client> {
        if self.client.is_closed() {
            if self.in_transaction {
                return Err(Error::Other(
                    "the connection to PostgreSQL closed during a transaction".into(),
                ));
            }
            self.client = self.pool.get().map_err(|e| Error::Other(e.to_string()))?;
            self.statements.clear();
            if let Some(sql) = self.setup {
                self.client.batch_execute(sql)?;
            }
            self.generation += 1;
        }
        Ok(&mut self.client)
    }

    fn statement(&mut self, sql: &str) -> Result<::postgres::Statement> {
        if let Some(s) = self.statements.get(sql)
            && !self.client.is_closed()
        {
            return Ok(s.clone());
        }
        if self.statements.len() >= MAX_CACHED_STATEMENTS {
            self.statements.clear();
        }
        let prepared = self.client()?.prepare(&pg_sql(sql))?;
        self.statements.insert(sql.to_owned(), prepared.clone());
        Ok(prepared)
    }

    /// The rows of a query. When the connection turns out to be closed
    /// (PostgreSQL restarted, or the network cut it, since its last use)
    /// and no transaction is open, the query runs once more on a new
    /// connection: a read has no effect to double, and the caller need not
    /// fail once per pooled connection after an outage.
    fn rows(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<::postgres::Row>> {
        let mut retried = false;
        loop {
            let result = self
                .statement(sql)
                .and_then(|statement| Ok(self.client.query(&statement, params)?));
            match result {
                Err(_) if !retried && self.client.is_closed() && !self.in_transaction => {
                    retried = true;
                }
                r => return r,
            }
        }
    }

    fn batch(&mut self, sql: &str) -> Result<()> {
        match sql {
            "BEGIN" => {
                self.client()?.batch_execute(sql)?;
                self.in_transaction = true;
            }
            "COMMIT" | "ROLLBACK" => {
                self.in_transaction = false;
                if !(sql == "ROLLBACK" && self.client.is_closed()) {
                    self.client.batch_execute(sql)?;
                }
            }
            _ => self.client()?.batch_execute(sql)?,
        }
        Ok(())
    }
}

/// A handle to run statements on: a SQLite connection (or transaction) or
/// a PostgreSQL session.
#[derive(Clone, Copy)]
pub enum Db<'a> {
    Sqlite(&'a rusqlite::Connection),
    Pg(&'a PgSession),
}

impl<'a> From<&'a rusqlite::Connection> for Db<'a> {
    fn from(c: &'a rusqlite::Connection) -> Self {
        Db::Sqlite(c)
    }
}

fn pg_args<'b>(args: &'b [&'b dyn Arg]) -> Vec<ArgRef<'b>> {
    args.iter().map(|a| a.arg()).collect()
}

fn pg_params<'b>(args: &'b [ArgRef<'b>]) -> Vec<&'b (dyn ToSql + Sync)> {
    args.iter().map(|a| a as &(dyn ToSql + Sync)).collect()
}

impl<'a> Db<'a> {
    /// Which connection of its session the handle is on: it changes when a
    /// PostgreSQL session replaced a closed connection (always 0 on SQLite).
    pub(crate) fn generation(self) -> u64 {
        match self {
            Db::Sqlite(_) => 0,
            Db::Pg(s) => s.inner.borrow().generation,
        }
    }

    /// Runs a statement; the number of rows it changed.
    pub(crate) fn execute(self, sql: &str, args: &[&dyn Arg]) -> Result<usize> {
        match self {
            Db::Sqlite(c) => Ok(c
                .prepare_cached(sql)?
                .execute(rusqlite::params_from_iter(args.iter().map(|a| a.arg())))?),
            Db::Pg(s) => {
                let mut inner = s.inner.borrow_mut();
                let statement = inner.statement(sql)?;
                let values = pg_args(args);
                let n = inner.client.execute(&statement, &pg_params(&values))?;
                Ok(usize::try_from(n).unwrap_or(usize::MAX))
            }
        }
    }

    /// Opens a write transaction; it is rolled back unless committed.
    /// SQLite takes the write lock at once (`IMMEDIATE`): waiting for it
    /// (busy timeout) is possible then, where upgrading a read would fail.
    pub(crate) fn begin(self) -> Result<Tx<'a>> {
        self.execute_batch(match self {
            Db::Sqlite(_) => "BEGIN IMMEDIATE",
            Db::Pg(_) => "BEGIN",
        })?;
        Ok(Tx {
            db: self,
            open: true,
        })
    }

    /// Runs `f` in a transaction of its own: committed when `f` succeeds,
    /// rolled back when it fails. Not for a handle already in one.
    pub(crate) fn transaction<T>(self, f: impl FnOnce(Db<'_>) -> Result<T>) -> Result<T> {
        match self {
            Db::Sqlite(c) => {
                let tx = c.unchecked_transaction()?;
                let out = f(Db::Sqlite(&tx))?;
                tx.commit()?;
                Ok(out)
            }
            Db::Pg(_) => {
                self.execute_batch("BEGIN")?;
                match f(self) {
                    Ok(out) => {
                        self.execute_batch("COMMIT")?;
                        Ok(out)
                    }
                    Err(e) => {
                        // The error that matters is the first one.
                        let _ = self.execute_batch("ROLLBACK");
                        Err(e)
                    }
                }
            }
        }
    }

    /// Runs statements without parameters, separated by `;` (schema).
    pub(crate) fn execute_batch(self, sql: &str) -> Result<()> {
        match self {
            Db::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Db::Pg(s) => s.inner.borrow_mut().batch(sql),
        }
    }

    /// Calls `f` with each row, in order.
    pub(crate) fn query_each(
        self,
        sql: &str,
        args: &[&dyn Arg],
        mut f: impl FnMut(&Row<'_>) -> Result<()>,
    ) -> Result<()> {
        match self {
            Db::Sqlite(c) => {
                let mut statement = c.prepare_cached(sql)?;
                let mut rows =
                    statement.query(rusqlite::params_from_iter(args.iter().map(|a| a.arg())))?;
                while let Some(r) = rows.next()? {
                    f(&Row::Sqlite(r))?;
                }
                Ok(())
            }
            Db::Pg(s) => {
                let rows = {
                    let values = pg_args(args);
                    s.inner.borrow_mut().rows(sql, &pg_params(&values))?
                };
                for r in &rows {
                    f(&Row::Pg(r))?;
                }
                Ok(())
            }
        }
    }

    /// Every row, each made into a `T` by `f`.
    pub(crate) fn query_map<T>(
        self,
        sql: &str,
        args: &[&dyn Arg],
        mut f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        self.query_each(sql, args, |r| {
            out.push(f(r)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// The first row made into a `T`, or `None` when there is none.
    pub(crate) fn query_opt<T>(
        self,
        sql: &str,
        args: &[&dyn Arg],
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        match self {
            Db::Sqlite(c) => {
                let mut statement = c.prepare_cached(sql)?;
                let mut rows =
                    statement.query(rusqlite::params_from_iter(args.iter().map(|a| a.arg())))?;
                match rows.next()? {
                    Some(r) => f(&Row::Sqlite(r)).map(Some),
                    None => Ok(None),
                }
            }
            Db::Pg(s) => {
                let row = {
                    let values = pg_args(args);
                    s.inner
                        .borrow_mut()
                        .rows(sql, &pg_params(&values))?
                        .into_iter()
                        .next()
                };
                match row {
                    Some(r) => f(&Row::Pg(&r)).map(Some),
                    None => Ok(None),
                }
            }
        }
    }

    /// The first row made into a `T`; [`Error::NoRows`] when there is none.
    pub(crate) fn query_row<T>(
        self,
        sql: &str,
        args: &[&dyn Arg],
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        self.query_opt(sql, args, f)?.ok_or(Error::NoRows)
    }

    /// The first column of the first row.
    pub(crate) fn query_value<T: FromValue>(self, sql: &str, args: &[&dyn Arg]) -> Result<T> {
        self.query_row(sql, args, |r| r.get(0))
    }
}

/// A transaction of [`Db::begin`]: rolled back when dropped uncommitted.
pub(crate) struct Tx<'a> {
    db: Db<'a>,
    open: bool,
}

impl<'a> Tx<'a> {
    /// The handle to run the transaction's statements on.
    pub(crate) fn db(&self) -> Db<'a> {
        self.db
    }

    pub(crate) fn commit(mut self) -> Result<()> {
        self.open = false;
        self.db.execute_batch("COMMIT")
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open {
            // Nothing of it is kept either way; a failure here leaves the
            // connection to its next BEGIN, which reports it.
            let _ = self.db.execute_batch("ROLLBACK");
        }
    }
}

/// A connection a thread owns: SQLite's, or a PostgreSQL session.
pub(crate) enum Conn {
    Sqlite(rusqlite::Connection),
    Pg(Box<PgSession>),
}

impl Conn {
    pub(crate) fn db(&self) -> Db<'_> {
        match self {
            Conn::Sqlite(c) => Db::Sqlite(c),
            Conn::Pg(s) => Db::Pg(s),
        }
    }
}

/// The statement for PostgreSQL: `?N` becomes `$N`, and a bare `?` the
/// next number after the highest so far (SQLite's rule); `LIKE` becomes
/// `ILIKE`, as SQLite's ignores the case of ASCII letters. Quoted text,
/// quoted names and comments are left as they are.
pub(crate) fn pg_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut highest = 0u32;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    // A doubled quote closes and reopens: same result.
                    if d == c {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == '\n' {
                        break;
                    }
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut word = String::from(c);
                while let Some(d) = chars
                    .peek()
                    .filter(|d| d.is_ascii_alphanumeric() || **d == '_')
                {
                    word.push(*d);
                    chars.next();
                }
                // SQLite's LIKE ignores the case of ASCII letters.
                if word.eq_ignore_ascii_case("LIKE") {
                    out.push_str("ILIKE");
                } else {
                    out.push_str(&word);
                }
            }
            '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                let n = match digits.parse::<u32>() {
                    Ok(n) => n,
                    Err(_) => highest + 1,
                };
                highest = highest.max(n);
                out.push('$');
                out.push_str(&n.to_string());
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_numbered_dollars() {
        assert_eq!(
            pg_sql("SELECT a FROM t WHERE b = ?1 AND c = ?2 OR d = ?1"),
            "SELECT a FROM t WHERE b = $1 AND c = $2 OR d = $1"
        );
        assert_eq!(pg_sql("VALUES (?, ?, ?5, ?)"), "VALUES ($1, $2, $5, $6)");
    }

    #[test]
    fn quoted_text_and_comments_keep_their_question_marks() {
        assert_eq!(
            pg_sql("SELECT '?1', \"a?\" -- why?\nFROM t WHERE x = ?1"),
            "SELECT '?1', \"a?\" -- why?\nFROM t WHERE x = $1"
        );
        assert_eq!(pg_sql("SELECT 'it''s ?' , ?"), "SELECT 'it''s ?' , $1");
        assert_eq!(
            pg_sql("SELECT likes FROM t WHERE parties LIKE ?1 ESCAPE '\\'"),
            "SELECT likes FROM t WHERE parties ILIKE $1 ESCAPE '\\'"
        );
    }

    fn numeric_bytes(ndigits: u16, weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut v = Vec::new();
        for w in [ndigits, weight as u16, sign, dscale] {
            v.extend_from_slice(&w.to_be_bytes());
        }
        for d in digits {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    }

    #[test]
    fn numeric_sums_read_as_integers() {
        // 123456789 = 1 2345 6789
        let raw = numeric_bytes(3, 2, 0, 0, &[1, 2345, 6789]);
        assert_eq!(numeric(&raw).unwrap(), ValueRef::Int(123_456_789));
        // 20000 = 2 (weight 1), trailing zero digit dropped
        let raw = numeric_bytes(1, 1, 0, 0, &[2]);
        assert_eq!(numeric(&raw).unwrap(), ValueRef::Int(20_000));
        let raw = numeric_bytes(1, 0, 0x4000, 0, &[42]);
        assert_eq!(numeric(&raw).unwrap(), ValueRef::Int(-42));
        assert_eq!(
            numeric(&numeric_bytes(0, 0, 0, 0, &[])).unwrap(),
            ValueRef::Int(0)
        );
        // 1.5 = 1 . 5000
        let raw = numeric_bytes(2, 0, 0, 1, &[1, 5000]);
        assert_eq!(numeric(&raw).unwrap(), ValueRef::Real(1.5));
        assert!(numeric(&[0, 1]).is_err());
    }

    #[test]
    fn sqlite_reads_and_binds_through_the_common_handle() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let db = Db::from(&conn);
        db.execute_batch("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT, c BLOB, d REAL)")
            .unwrap();
        let none: Option<String> = None;
        assert_eq!(
            db.execute(
                "INSERT INTO t (a, b, c, d) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                args![7i64, "x", b"yz".to_vec(), 1.5f64]
            )
            .unwrap(),
            1
        );
        db.execute("INSERT INTO t (a, b) VALUES (?1, ?2)", args![8i64, none])
            .unwrap();
        let rows: Vec<(i64, Option<String>)> = db
            .query_map("SELECT a, b FROM t ORDER BY a", args![], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(rows, vec![(7, Some("x".into())), (8, None)]);
        let missing = db
            .query_row("SELECT a FROM t WHERE a = ?1", args![9i64], |r| {
                r.get::<i64>(0)
            })
            .optional()
            .unwrap();
        assert_eq!(missing, None);
        let err = db
            .query_row("SELECT b FROM t WHERE a = 7", args![], |r| r.get::<i64>(0))
            .unwrap_err();
        assert_eq!(err.to_string(), "column 0: expected an integer, found text");
    }
}
