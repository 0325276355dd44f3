//! Faults (issue 9, point 3): the wall clock jumps while records arrive.
//! The real `cdrhub serve` runs under libfaketime (Debian's `faketime`,
//! installed by scripts/test.sh), whose offset the test changes while the
//! server runs: three hours back, two days forward, then back to the true
//! time. Timers run on the monotonic clock, which is left alone, as NTP
//! leaves it. Every record posted is stored once, the calls they make are
//! whole, the API keeps answering and nothing is logged at level ERROR.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Server, document, post_cms};

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

fn set_offset(file: &Path, offset: &str) {
    std::fs::write(file, format!("{offset}\n")).unwrap();
}

/// When the server received each record, by its clock, by record index.
fn received_at(data_dir: &Path) -> std::collections::BTreeMap<u64, i64> {
    let conn = rusqlite::Connection::open_with_flags(
        data_dir.join("cdrhub.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut stmt = conn
        .prepare("SELECT seq, received_at FROM journal")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_posted_while_the_clock_jumps_back_and_forth_are_all_stored_once() {
    assert!(
        Path::new(LIBFAKETIME).exists(),
        "{LIBFAKETIME} is missing: install Debian's faketime (scripts/test.sh does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let offset = dir.path().join("faketime");
    set_offset(&offset, "+0");
    let offset_path = offset.to_str().unwrap().to_owned();
    let data_dir = dir.path().join("data");
    let server = Server::start_with_env(
        &data_dir,
        None,
        &[
            ("LD_PRELOAD", LIBFAKETIME),
            ("FAKETIME_TIMESTAMP_FILE", &offset_path),
            ("FAKETIME_NO_CACHE", "1"),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ],
    );

    let session = uuid::Uuid::new_v4().to_string();
    let mut posted = 0u64;
    let jumps = ["+0", "-3h", "-3h", "+2d", "+2d", "+0"];
    for jump in jumps {
        set_offset(&offset, jump);
        for _ in 0..3 {
            let (status, text) = post_cms(&server, document(&session, posted + 1, 10)).await;
            assert_eq!(status, 200, "at {jump}: {text}");
            posted += 10;
        }
    }
    // The clock did move, as the server saw it: each phase's 30 records
    // were received at that phase's time.
    let received = received_at(&data_dir);
    let first = received[&1];
    let hour = 3_600_000;
    for (phase, jump) in jumps.iter().enumerate() {
        let at = received[&(phase as u64 * 30 + 1)] - first;
        let expected = match *jump {
            "-3h" => -3 * hour,
            "+2d" => 48 * hour,
            _ => 0,
        };
        assert!(
            (at - expected).abs() < hour,
            "phase {phase} ({jump}) received {at} ms after the first"
        );
    }

    // A resend of the first document (a Call Bridge that lost the answer)
    // after all the jumps is still a duplicate.
    let (status, _) = post_cms(&server, document(&session, 1, 10)).await;
    assert_eq!(status, 200);

    let (stored, duplicates) = common::cms_counts(&server).await;
    assert_eq!(stored, posted);
    assert_eq!(duplicates, 10);
    assert_eq!(
        common::get_json(&server, "/api/v1/gaps").await["gaps"]
            .as_array()
            .map_or(0, Vec::len),
        0,
        "no gap in the sequence"
    );
    // One call per leg, every one whole.
    let calls = common::get_json(&server, "/api/v1/calls?limit=1000").await;
    assert_eq!(calls["calls"].as_array().unwrap().len() as u64, posted);

    tokio::time::sleep(Duration::from_millis(200)).await;
    let errors = server.errors.lock().unwrap().clone();
    assert!(errors.is_empty(), "errors in the log: {errors:#?}");
    server.kill();
}
