//! The PostgreSQL store (issue 8): several cdrhub processes share one
//! database. This part holds the foundation (a blocking connection pool with
//! optional TLS, and migrations) and the [`crate::Accounts`] of
//! [`PgAccounts`], with the semantics of the SQLite store.
//!
//! Connection strings are `postgres://user:password@host:port/database`,
//! with `?sslmode=require` for TLS, verified against the system's roots or
//! the PEM file named by `&sslrootcert=FILE`.

mod accounts;
mod migrate;
mod pool;
mod schema;
mod store;
#[doc(hidden)]
pub mod testing;

pub use accounts::PgAccounts;
pub use migrate::{MigrateProgress, MigrateSummary, migrate_sqlite_to_postgres};
pub use pool::{PgConnection, PgPool};
pub use store::{PgBackend, PgOptions, PgStore};
