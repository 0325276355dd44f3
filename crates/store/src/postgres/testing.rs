//! Databases for tests on a real PostgreSQL server: the machine's own
//! (127.0.0.1:5432, trust authentication), or the one `CDRHUB_TEST_POSTGRES`
//! names (a URL of a database the user may create databases from). Each
//! [`TestDb`] is created for one test and dropped with it, even when the
//! test fails. Not part of the store's API.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The URLs tried for the administrative connection, first that answers.
fn admin_candidates() -> Vec<String> {
    match std::env::var("CDRHUB_TEST_POSTGRES") {
        Ok(url) => vec![url],
        Err(_) => vec![
            "postgres://postgres@127.0.0.1:5432/postgres".into(),
            "postgres://root@127.0.0.1:5432/postgres".into(),
        ],
    }
}

fn try_admin() -> Option<(String, ::postgres::Client)> {
    admin_candidates().into_iter().find_map(|url| {
        let client = ::postgres::Client::connect(&url, ::postgres::NoTls).ok()?;
        Some((url, client))
    })
}

/// The administrative URL; starts the machine's cluster the first time if
/// nothing answers.
pub fn admin_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Some((url, _)) = try_admin() {
            return url;
        }
        let started = std::process::Command::new("sh")
            .arg("-c")
            .arg("pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start")
            .status();
        eprintln!("PostgreSQL did not answer; starting it: {started:?}");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some((url, _)) = try_admin() {
                return url;
            }
            assert!(
                Instant::now() < deadline,
                "no PostgreSQL server answers at {:?}",
                admin_candidates()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    })
}

pub fn admin() -> ::postgres::Client {
    ::postgres::Client::connect(admin_url(), ::postgres::NoTls).expect("administrative connection")
}

/// A database of one test, dropped with the guard.
pub struct TestDb {
    pub name: String,
}

impl TestDb {
    #[allow(clippy::new_without_default)]
    pub fn new() -> TestDb {
        let name = format!("cdrhub_test_{}", uuid::Uuid::new_v4().simple());
        // The name is ours and plain ASCII: an identifier cannot be a
        // parameter.
        let sql = format!("CREATE DATABASE {name}");
        off_runtime(move || admin().batch_execute(&sql)).expect("create the test database");
        TestDb { name }
    }

    /// The URL of this database, on `host` (the administrative one's user).
    pub fn url_on(&self, host: &str) -> String {
        let admin = admin_url();
        let user = admin
            .strip_prefix("postgres://")
            .and_then(|rest| rest.split_once('@'))
            .map(|(user, _)| user)
            .unwrap_or("postgres");
        format!("postgres://{user}@{host}:5432/{}", self.name)
    }

    pub fn url(&self) -> String {
        self.url_on("127.0.0.1")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // FORCE ends connections a failed test left open (PostgreSQL 13+).
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let dropped = off_runtime(move || admin().batch_execute(&sql));
        if let Err(e) = dropped {
            eprintln!("cannot drop {}: {e}", self.name);
        }
    }
}

/// Runs `f` on a thread of its own: the blocking PostgreSQL client cannot
/// run on a thread that drives an async runtime (an async test's).
fn off_runtime<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f)
        .join()
        .expect("the PostgreSQL call panicked")
}
