//! Nothing acknowledged is ever lost: post continuously, SIGKILL the server
//! in the middle of the load, restart it, and check that every record that got
//! a 200 is stored exactly once; then re-send everything, as a Call Bridge
//! retries what it never got a 200 for, and check each record is stored once.

mod common;

use common::{Acked, Sent, Server, get_json, journal, post_until_killed, send_again};

const SENDERS: usize = 8;

#[test]
fn records_acknowledged_before_sigkill_survive_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let addr = server.addr;
    let acked: Acked = Default::default();
    let sent: Sent = Default::default();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let load = post_until_killed(&rt, addr, SENDERS, "session", &acked, &sent);

    // Kill it mid-load, once a fair number of records were acknowledged.
    common::wait_until("records acknowledged under load", || {
        acked.lock().unwrap().len() >= 3000
    });
    server.kill();
    rt.block_on(load).unwrap();
    let acked = acked.lock().unwrap().clone();

    // Every acknowledged record is in the journal, once.
    let stored = journal(dir.path());
    let lost: Vec<_> = acked.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged records lost, e.g. {:?}",
        lost.len(),
        lost.first()
    );

    // Restart and re-send everything that was ever sent, acknowledged or not.
    let server = Server::start(dir.path());
    let sent = sent.lock().unwrap().clone();
    let total = send_again(&rt, server.addr, &sent);
    let stored_after = journal(dir.path());
    assert_eq!(
        stored_after.len() as u64,
        total,
        "each record sent is stored exactly once"
    );

    // The API agrees: one call per leg, duplicates counted.
    let (records, duplicates) = rt.block_on(common::cms_counts(&server));
    assert_eq!(records, total);
    assert_eq!(
        duplicates,
        stored.len() as u64,
        "everything stored before the kill came back as a duplicate"
    );
    // Calls are rebuilt from the journal for what was committed but not yet
    // correlated at the kill: every leg here is a call of its own.
    let calls = rt.block_on(common::get_text(&server, "/metrics"));
    assert!(
        calls.contains(&format!("\ncdrhub_calls {total}\n")),
        "{calls}"
    );
    let gaps = rt.block_on(get_json(&server, "/api/v1/gaps?open=true"));
    assert_eq!(
        gaps["gaps"].as_array().unwrap().len(),
        0,
        "no record is missing after the retries"
    );
    println!(
        "acknowledged before SIGKILL: {}, stored at kill: {}, sent in all: {total}",
        acked.len(),
        stored.len()
    );
}
