//! The command line as a user runs it: config errors, `import cms`, users
//! and API tokens.

mod common;

use cdrhub_store::Accounts;
use common::{Server, cdrhub, fixture, get_json};

#[test]
fn unknown_config_key_is_named_with_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cdrhub.toml");
    std::fs::write(
        &config,
        "[http]\nlisten = \"127.0.0.1:0\"\nlisten_port = 9\n",
    )
    .unwrap();
    let out = cdrhub()
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("listen_port") && err.contains(&*config.to_string_lossy()),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn import_cms_files_then_reimport_finds_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let bad = dir.path().join("broken.xml");
    std::fs::write(&bad, "<records session=\"x\"><record type=\"callStart\"").unwrap();
    let mut files: Vec<_> = (1..=6)
        .map(|i| fixture(&format!("seed-000-post{i}.xml")))
        .collect();
    files.push(bad.clone());

    let run = || {
        let out = cdrhub()
            .arg("--data-dir")
            .arg(&data)
            .args(["import", "cms"])
            .args(&files)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let first = run();
    assert!(
        first.contains("imported 7 files: 8 records read, 8 stored, 0 duplicates"),
        "{first}"
    );
    assert!(
        first.contains("1 files rejected") && first.contains("broken.xml"),
        "{first}"
    );
    let second = run();
    assert!(
        second.contains("8 records read, 0 stored, 8 duplicates"),
        "{second}"
    );

    let server = Server::start(&data);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let calls = rt.block_on(get_json(&server, "/api/v1/calls"));
    let calls = calls["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["legs"], 2);
    assert_eq!(calls[0]["disposition"], "answered");
}

/// A Unified CCX MIVR trace (seed 003's Example 1 and the events that
/// follow it in a queued call) becomes one answered CTI call; importing it
/// again stores nothing new.
#[test]
fn import_cti_trace_makes_the_call_and_reimport_finds_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let trace = format!(
        "{}/../../tests/data/cti/mivr-answered-call.log",
        env!("CARGO_MANIFEST_DIR")
    );
    let run = || {
        let out = cdrhub()
            .arg("--data-dir")
            .arg(&data)
            .args(["import", "cti-trace", "--server", "uccx", "--year", "2026"])
            .arg(&trace)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let first = run();
    assert!(
        first.contains(
            "imported 1 files: 7 event messages read, 7 stored, 0 duplicates, 0 unreadable"
        ),
        "{first}"
    );
    let second = run();
    assert!(
        second.contains("7 event messages read, 0 stored, 7 duplicates"),
        "{second}"
    );

    let server = Server::start(&data);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let calls = rt.block_on(get_json(&server, "/api/v1/calls?source=cti"));
    let calls = calls["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{calls:#?}");
    let call = &calls[0];
    assert_eq!(call["sender"], "uccx");
    assert_eq!(call["caller"], "2006", "the ANI of Example 1");
    assert_eq!(call["destination"], "2007", "the agent who answered");
    assert_eq!(call["disposition"], "answered");
    assert_eq!(
        call["started_at"], "2026-11-20T14:43:59.435Z",
        "EDT is UTC-4"
    );
    assert_eq!(call["details"]["csq"], 1);
    assert_eq!(call["details"]["queue_wait_s"], 5.38);
}

#[test]
fn import_refuses_a_data_dir_a_server_is_using() {
    let dir = tempfile::tempdir().unwrap();
    let _server = Server::start(dir.path());
    let out = cdrhub()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["import", "cms"])
        .arg(fixture("seed-000-post1.xml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another cdrhub process"), "{err}");
}

/// No default password: the first start makes `admin` with a generated
/// password, logged once; later starts do not.
#[test]
fn the_first_start_creates_admin_with_a_password_shown_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let password = server
        .admin_password
        .clone()
        .expect("the password is logged");
    assert!(password.len() >= 32, "{password}");
    server.kill();
    let accounts = cdrhub_store::SqliteAccounts::open(dir.path()).unwrap();
    let admin = accounts.user("admin").unwrap().expect("admin exists");
    assert_eq!(admin.role, cdrhub_model::Role::Admin);
    assert!(cdrhub_server::auth::verify_password(
        &password,
        &admin.password_hash
    ));
    assert!(!admin.password_hash.contains(&password));
    drop(accounts);

    let again = Server::start(dir.path());
    assert_eq!(again.admin_password, None);
}

/// `cdrhub user` and `cdrhub token` change accounts while a server runs.
#[test]
fn users_and_tokens_from_the_command_line_while_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();

    let mut add = cdrhub()
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "user",
            "add",
            "alice",
            "--role",
            "viewer",
            "--password-stdin",
        ])
        .output_with_stdin(b"a long secret\n");
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    add = cdrhub()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["user", "add", "alice", "--role", "admin"])
        .output()
        .unwrap();
    assert!(!add.status.success());
    assert!(String::from_utf8_lossy(&add.stderr).contains("already exists"));

    let created = cdrhub()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["token", "create", "reader", "--role", "viewer"])
        .output()
        .unwrap();
    assert!(created.status.success());
    let token = String::from_utf8(created.stdout).unwrap().trim().to_owned();
    let get = |path: &'static str| rt.block_on(common::get(server.addr, &token, path)).0;
    assert_eq!(get("/api/v1/calls"), 200);
    assert_eq!(get("/api/v1/calls.csv"), 403, "a viewer may not export");

    let revoke = |name: &str| {
        cdrhub()
            .arg("--data-dir")
            .arg(dir.path())
            .args(["token", "revoke", name])
            .output()
            .unwrap()
    };
    assert!(revoke("reader").status.success());
    assert_eq!(get("/api/v1/calls"), 401);
    let again = revoke("reader");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("no token named"));
}

trait OutputWithStdin {
    fn output_with_stdin(&mut self, input: &[u8]) -> std::process::Output;
}

impl OutputWithStdin for std::process::Command {
    /// Runs the command with `input` on its standard input.
    fn output_with_stdin(&mut self, input: &[u8]) -> std::process::Output {
        use std::io::Write;
        let mut child = self
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }
}

/// `cdrhub backup` while the server runs; `cdrhub restore` once it stops.
#[test]
fn backup_while_serving_and_restore_when_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("cdrhub-backup.db");
    let server = Server::start(&data);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut conn = rt.block_on(common::Conn::open(server.addr)).unwrap();
    for i in 1..=6 {
        let body = std::fs::read(fixture(&format!("seed-000-post{i}.xml"))).unwrap();
        let (status, _) = rt
            .block_on(conn.request("POST", "/ingest/cms", body))
            .unwrap();
        assert_eq!(status, 200);
    }
    let run = |args: &[&std::ffi::OsStr]| {
        cdrhub()
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .output()
            .unwrap()
    };
    let backed = run(&["backup".as_ref(), file.as_os_str()]);
    assert!(
        backed.status.success(),
        "{}",
        String::from_utf8_lossy(&backed.stderr)
    );
    assert!(String::from_utf8_lossy(&backed.stdout).contains("backed up 8 records"));

    let refused = run(&["restore".as_ref(), file.as_os_str()]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("another cdrhub process"));
    server.kill();

    let restored = run(&["restore".as_ref(), file.as_os_str()]);
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    assert!(String::from_utf8_lossy(&restored.stdout).contains("restored 8 records"));
    let server = Server::start(&data);
    let calls = rt.block_on(get_json(&server, "/api/v1/calls"));
    assert_eq!(
        calls["calls"].as_array().unwrap().len(),
        1,
        "rebuilt from the journal"
    );
}

/// `cdrhub import csv` of each PBX format's file (tests/data/csv): the
/// rows become calls of source `csv`, a broken line is named with its line
/// number while the others are stored, an O-CDR and its T-CDR are one
/// call's two legs, times are read in the zone given, and importing again
/// stores nothing.
#[test]
fn import_csv_of_each_pbx_format_then_reimport_finds_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = |name: &str| format!("{}/../../tests/data/csv/{name}", env!("CARGO_MANIFEST_DIR"));
    let run = |args: &[&str]| {
        let out = cdrhub()
            .arg("--data-dir")
            .arg(&data)
            .args(["import", "csv"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let asterisk = [
        "--format",
        "asterisk",
        "--time-zone",
        "Europe/Berlin",
        &file("asterisk-Master.csv"),
        &file("asterisk-broken.csv"),
    ];
    let (out, err) = run(&asterisk);
    assert!(
        out.contains("imported 2 files (asterisk, calls filed under asterisk): 12 rows read, 3 lines with errors"),
        "{out}"
    );
    assert!(
        err.contains("asterisk-broken.csv: line 2: has 12 columns")
            && err.contains("line 3: column \"start\" is \"2024-02-30 08:10:00\""),
        "{err}"
    );
    let (again, _) = run(&asterisk);
    assert!(again.contains("0 events stored"), "{again}");
    run(&["--format", "freeswitch", &file("freeswitch-Master.csv")]);
    run(&[
        "--format",
        "minisipserver",
        "--system",
        "mss",
        &file("minisipserver-O-CDR-20240315.csv"),
        &file("minisipserver-T-CDR-20240315.csv"),
    ]);
    run(&[
        "--mapping",
        &file("generic-pbx-export.toml"),
        &file("generic-pbx-export.csv"),
    ]);

    let server = Server::start(&data);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let calls = rt.block_on(get_json(&server, "/api/v1/calls?source=csv&limit=100"));
    let calls = calls["calls"].as_array().unwrap();
    let of = |sender: &str| calls.iter().filter(|c| c["sender"] == sender).count();
    assert_eq!(
        (of("asterisk"), of("freeswitch"), of("mss"), of("generic")),
        (10, 7, 5, 5),
        "{calls:#?}"
    );
    // miniSIPServer's answered call: its O-CDR and T-CDR, one call.
    let mss = calls
        .iter()
        .find(|c| c["sender"] == "mss" && c["dialed"] == "8001")
        .unwrap();
    assert_eq!(
        (
            mss["destination"].as_str(),
            mss["talk_s"].as_i64(),
            mss["legs"].as_i64()
        ),
        (Some("203"), Some(95), Some(2)),
        "{mss:#}"
    );
    let busy = calls
        .iter()
        .filter(|c| c["sender"] == "asterisk" && c["disposition"] == "busy")
        .count();
    assert_eq!(busy, 1);
    // Asterisk wrote local time (Berlin, UTC+1 in March).
    let first = calls
        .iter()
        .filter(|c| c["sender"] == "asterisk")
        .map(|c| c["started_at"].as_str().unwrap())
        .min()
        .unwrap();
    assert!(
        first.ends_with(":00Z") && first.starts_with("2024-03-15T0"),
        "{first}"
    );
}
