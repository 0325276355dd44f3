//! `cdrhub`: the command line. Thin: the libraries beside it do the work.

mod accounts;
mod import;
mod sim;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use cdrhub_server::{AppState, BoundServer, Config, Metrics};
use cdrhub_store::postgres::{PgOptions, PgStore};
use cdrhub_store::{SqliteOptions, SqliteStore, Store, StoreError};
use clap::{Parser, Subcommand};

/// cdrhub: a call detail record server. It receives CDRs and call events from
/// telephony systems, keeps every one, correlates them into calls and legs,
/// and serves search, reports and exports.
#[derive(Parser)]
#[command(name = "cdrhub", version)]
struct Cli {
    /// Configuration file (TOML). Without one, built-in defaults apply.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (database). Overrides `data_dir` of the config file.
    /// Default ./cdrhub-data
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Keep everything in this PostgreSQL database instead of the data
    /// directory: postgres://user:password@host:port/database (add
    /// ?sslmode=require for TLS). Overrides `[store] url`.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "CDRHUB_STORE",
        hide_env_values = true
    )]
    store: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: ingest paths, web console, REST API, metrics.
    Serve {
        /// Address for the HTTP listener, overriding `http.listen`
        /// (default 127.0.0.1:8200).
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
    },
    /// Read saved records from files into the store, with the same
    /// deduplication as live ingest. The server must not be running on the
    /// same data directory.
    Import {
        #[command(subcommand)]
        kind: import::ImportKind,
    },
    /// Console users.
    User {
        #[command(subcommand)]
        command: accounts::UserCommand,
    },
    /// API tokens for scripts (`Authorization: Bearer TOKEN`).
    Token {
        #[command(subcommand)]
        command: accounts::TokenCommand,
    },
    /// Write a consistent copy of the journal, accounts and settings to
    /// FILE, also while a server runs. Calls are not copied: they are
    /// rebuilt from the journal after a restore.
    Backup {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Replace the data directory's journal, accounts and settings with a
    /// backup. The server must be stopped; the replaced database is kept as
    /// cdrhub-before-restore.db, and the next start rebuilds the calls.
    Restore {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Move the SQLite data directory's journal, accounts and settings to
    /// an empty PostgreSQL database. The server must be stopped; calls are
    /// not copied: cdrhub rebuilds them from the journal at its first start
    /// on PostgreSQL.
    Migrate {
        /// The PostgreSQL database to fill:
        /// postgres://user:password@host:port/database
        #[arg(long, value_name = "URL")]
        to: String,
    },
    /// Simulated telephony systems to point cdrhub at.
    Sim {
        #[command(subcommand)]
        command: sim::SimCommand,
    },
}

/// Records are decoded on the HTTP threads and freed on the correlator
/// thread. glibc's malloc serialized those frees on arena locks, kept freed
/// memory in the middle of its heap (it needed a trim every second), and
/// cost a tenth of the correlator's time; mimalloc frees across threads
/// without locks and hands unused pages back by itself. In the CMS
/// benchmark it raised (b) by about 15% and halved the p99 of (c) after the
/// bursts (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        // The PostgreSQL driver logs the server's notices (such as "already
        // exists, skipping" of every start's migration check) at info.
        .unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new("info,postgres=warn,tokio_postgres=warn")
        });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cdrhub: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// SQLite allocates through the C library's malloc, each of its threads
/// (writer, correlator, checkpointer, readers) from an arena of its own by
/// default. Two arenas are enough for its page caches and keep resident
/// memory down.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes an allocator setting; it is called before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// The config file if one was named, else the defaults.
fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    Ok(match &cli.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    })
}

fn data_dir(cli: &Cli, config: &Config) -> PathBuf {
    cli.data_dir
        .clone()
        .or_else(|| config.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from("cdrhub-data"))
}

/// The PostgreSQL database named by `--store` or `[store] url`, if any.
fn store_url(cli: &Cli, config: &Config) -> Option<String> {
    cli.store.clone().or_else(|| config.store.url.clone())
}

fn open_store(
    dir: &std::path::Path,
    url: Option<&str>,
    config: &Config,
) -> anyhow::Result<Arc<dyn Store>> {
    // The journal is read again with the same correlation header.
    config.sources.hep.install_correlation_header();
    if let Some(url) = url {
        let options = PgOptions {
            max_connections: config.store.max_connections,
            dialog_timeouts: config.sources.hep.dialog_timeouts(),
            ..PgOptions::default()
        };
        let store = PgStore::open(url, options)?;
        tracing::info!(server = store.server(), "store open on PostgreSQL");
        return Ok(Arc::new(store));
    }
    let options = SqliteOptions {
        synchronous: config.store.synchronous,
        busy_timeout: Duration::from_millis(config.store.busy_timeout_ms),
        dialog_timeouts: config.sources.hep.dialog_timeouts(),
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open(dir, options)?;
    tracing::info!(data_dir = %dir.display(), "store open");
    Ok(Arc::new(store))
}

/// Backups of a PostgreSQL store are PostgreSQL's own.
fn sqlite_only(url: Option<&str>, what: &str) -> anyhow::Result<()> {
    if url.is_some() {
        anyhow::bail!(
            "{what} works on the SQLite data directory; the store is PostgreSQL, \
             so use pg_dump and pg_restore (docs/deployment.md)"
        );
    }
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn run(cli: Cli) -> anyhow::Result<()> {
    // One crypto provider for rustls, chosen explicitly (reference/crates.md, trap 2).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = load_config(&cli)?;
    let dir = data_dir(&cli, &config);
    let url = store_url(&cli, &config);
    match &cli.command {
        Command::Serve { listen } => {
            if let Some(addr) = listen {
                config.http.listen = *addr;
            }
            let store = open_store(&dir, url.as_deref(), &config)?;
            if let Some(password) = cdrhub_server::auth::ensure_first_admin(store.accounts())? {
                tracing::warn!(
                    "created the first user, admin, with the password {password} \
                     (shown only now; or add users with `cdrhub user add NAME --role admin`)"
                );
            }
            let state = AppState {
                store,
                config: Arc::new(config),
                metrics: Arc::new(Metrics::default()),
                retention: Default::default(),
                bus: None,
                exports: Arc::new(cdrhub_server::exports::Exports::new(dir.join("spool"))),
            };
            runtime()?.block_on(async move {
                let server = BoundServer::bind(state).await?;
                server.run(shutdown_signal()).await
            })
        }
        Command::Import { kind } => {
            let store = open_store(&dir, url.as_deref(), &config)?;
            runtime()?.block_on(import::run(kind, &*store, &config))
        }
        Command::Backup { file } => {
            sqlite_only(url.as_deref(), "cdrhub backup")?;
            let bar = indicatif::ProgressBar::new(0);
            let mut progress = |p: rusqlite::backup::Progress| {
                bar.set_length(p.pagecount.max(0) as u64);
                bar.set_position((p.pagecount - p.remaining).max(0) as u64);
            };
            let summary = cdrhub_store::backup(&dir, file, Some(&mut progress))?;
            bar.finish_and_clear();
            println!(
                "backed up {} records ({} bytes) to {}",
                summary.records,
                summary.bytes,
                file.display()
            );
            Ok(())
        }
        Command::Restore { file } => {
            sqlite_only(url.as_deref(), "cdrhub restore")?;
            let summary = cdrhub_store::restore(&dir, file)?;
            println!(
                "restored {} records from {} into {}; calls are rebuilt at the next start",
                summary.records,
                file.display(),
                dir.display()
            );
            Ok(())
        }
        Command::Migrate { to } => migrate(&dir, to),
        Command::User { command } => accounts::user(&dir, url.as_deref(), command),
        Command::Token { command } => accounts::token(&dir, url.as_deref(), command),
        Command::Sim { command } => sim::run(command),
    }
}

/// `cdrhub migrate`: copies the data directory into PostgreSQL with a
/// progress bar, then says what was copied and how to start on it.
fn migrate(dir: &std::path::Path, url: &str) -> anyhow::Result<()> {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "[{elapsed_precise}] [{bar:40}] {human_pos}/{human_len} rows {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let mut progress = |p: &cdrhub_store::postgres::MigrateProgress| {
        bar.set_length(p.total);
        bar.set_position(p.copied);
        bar.set_message(p.table);
    };
    let summary = cdrhub_store::postgres::migrate_sqlite_to_postgres(dir, url, &mut progress);
    bar.finish_and_clear();
    let summary = summary
        .map_err(|e| {
            // The messages say what is wrong by themselves; the kind would
            // only add "cannot open store" or "store unavailable".
            let (StoreError::Open(why)
            | StoreError::Unavailable(why)
            | StoreError::Conflict(why)
            | StoreError::InvalidQuery(why)) = e;
            anyhow::anyhow!(why)
        })
        .with_context(|| format!("cannot migrate {} to PostgreSQL", dir.display()))?;
    let counted = [
        ("journal", "record", "records"),
        ("users", "user", "users"),
        ("api_tokens", "API token", "API tokens"),
        ("audit", "audit entry", "audit entries"),
    ];
    let mut parts: Vec<String> = counted
        .iter()
        .map(|(table, one, many)| count(summary.rows(table), one, many))
        .collect();
    let others: u64 = summary
        .tables
        .iter()
        .filter(|(table, _)| !counted.iter().any(|(t, _, _)| t == table))
        .map(|(_, n)| n)
        .sum();
    parts.push(count(others, "other row", "other rows"));
    let last = parts.pop().unwrap_or_default();
    println!(
        "copied {} and {last} from {} to the PostgreSQL server at {}",
        parts.join(", "),
        dir.display(),
        summary.server
    );
    if !summary.skipped_columns.is_empty() {
        println!(
            "not copied, as the PostgreSQL tables have no such columns: {}",
            summary.skipped_columns.join(", ")
        );
    }
    println!(
        "calls are not copied: start cdrhub with --store URL (or [store] url) \
         and it rebuilds them from the journal"
    );
    Ok(())
}

/// "1 user", "1,234 users".
fn count(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

/// 1234567 as 1,234,567.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
