//! `cdrhub migrate`: an SQLite installation moves to PostgreSQL with its
//! journal, accounts and API tokens; the server started on PostgreSQL then
//! rebuilds the same calls from the journal, and the old token still works.

mod common;

use std::time::{Duration, Instant};

use cdrhub_store::postgres::testing::TestDb;
use common::{Server, cdrhub, fixture, get, get_json};
use serde_json::Value;

/// Stops the server the way an operator does (SIGTERM), so its data
/// directory is released and its files are checkpointed.
fn stop(mut server: Server) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(server.child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "cdrhub did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every call with its detail (legs, records), without cdrhub's own call
/// ids: the correlator makes new ones (UUIDv7) whenever it rebuilds the
/// calls from the journal, as it does on PostgreSQL after a migration.
async fn calls_with_legs(server: &Server) -> Vec<(Value, Value)> {
    let page = get_json(server, "/api/v1/calls?limit=1000").await;
    let mut out = Vec::new();
    for call in page["calls"].as_array().unwrap() {
        let id = call["id"].as_str().unwrap();
        let mut detail = get_json(server, &format!("/api/v1/calls/{id}")).await;
        let mut call = call.clone();
        call.as_object_mut().unwrap().remove("id");
        detail.as_object_mut().unwrap().remove("id");
        for leg in detail["legs"].as_array_mut().unwrap() {
            leg.as_object_mut().unwrap().remove("call_id");
        }
        out.push((call, detail));
    }
    out.sort_by_key(|(c, _)| c.to_string());
    out
}

#[test]
fn an_sqlite_installation_moves_to_postgres_and_its_calls_are_rebuilt() {
    let db = TestDb::new();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let rt = tokio::runtime::Runtime::new().unwrap();

    let server = Server::start(&data);
    let old_token = server.token.clone();
    let mut conn = rt.block_on(common::Conn::open(server.addr)).unwrap();
    for i in 1..=6 {
        let body = std::fs::read(fixture(&format!("seed-000-post{i}.xml"))).unwrap();
        let (status, body) = rt
            .block_on(conn.request("POST", "/ingest/cms", body))
            .unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
    let before = rt.block_on(calls_with_legs(&server));
    assert_eq!(before.len(), 1, "the seed posts make one call");
    drop(conn);
    stop(server);

    let migrate = || {
        cdrhub()
            .arg("--data-dir")
            .arg(&data)
            .args(["migrate", "--to", &db.url()])
            .output()
            .unwrap()
    };
    let out = migrate();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("copied 8 records, 1 user, 1 API token"),
        "{stdout}"
    );
    assert!(stdout.contains(&db.name), "{stdout}");
    assert!(
        stdout.contains("rebuilds them from the journal"),
        "{stdout}"
    );

    // A second run would mix two installations: refused, nothing written.
    let again = migrate();
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success());
    assert!(
        stderr.contains("already holds cdrhub data")
            && stderr.contains("8 journal records, 1 row in senders, 1 user, 1 API token")
            && stderr.contains("empty database"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "one line says what is wrong: {stderr}");

    // The server on PostgreSQL: the helper's new token lands in PG after
    // the copied one (so the identity moved past the copied ids).
    let config = tmp.path().join("pg.toml");
    std::fs::write(&config, format!("[store]\nurl = \"{}\"\n", db.url())).unwrap();
    let server = Server::start_with_config(&tmp.path().join("pg"), Some(&config));
    assert!(
        server.admin_password.is_none(),
        "the copied admin user counts"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        let after = rt.block_on(calls_with_legs(&server));
        if after == before || Instant::now() > deadline {
            break after;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(after, before, "the calls rebuilt on PostgreSQL");

    // The token made before the migration still works.
    let (status, _) = rt.block_on(get(server.addr, &old_token, "/api/v1/calls"));
    assert_eq!(status, 200);

    // New records get journal and stream ids after the copied ones.
    let mut conn = rt.block_on(common::Conn::open(server.addr)).unwrap();
    let (status, body) = rt
        .block_on(conn.request(
            "POST",
            "/ingest/cms",
            common::document("after-migrate", 1, 3),
        ))
        .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let journal = {
        let url = db.url();
        std::thread::spawn(move || {
            let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            let row = client
                .query_one("SELECT count(*), count(DISTINCT id) FROM journal", &[])
                .unwrap();
            (row.get::<_, i64>(0), row.get::<_, i64>(1))
        })
        .join()
        .unwrap()
    };
    assert_eq!(journal, (11, 11));
}
