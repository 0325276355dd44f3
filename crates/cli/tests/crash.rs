//! Nothing acknowledged is ever lost: post continuously, SIGKILL the server
//! in the middle of the load, restart it, and check that every record that got
//! a 200 is stored exactly once; then re-send everything, as a Call Bridge
//! retries what it never got a 200 for, and check each record is stored once.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use common::{Conn, Server, document, get_json, journal};

const SENDERS: usize = 8;

#[test]
fn records_acknowledged_before_sigkill_survive_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let addr = server.addr;
    let acked: Arc<Mutex<BTreeSet<(String, u64)>>> = Default::default();
    let sent: Arc<Mutex<Vec<(String, u64, u64)>>> = Default::default();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let load = {
        let (acked, sent) = (acked.clone(), sent.clone());
        rt.spawn(async move {
            let mut tasks = Vec::new();
            for s in 0..SENDERS {
                let (acked, sent) = (acked.clone(), sent.clone());
                tasks.push(tokio::spawn(async move {
                    let session = format!("session-{s}");
                    let Ok(mut conn) = Conn::open(addr).await else {
                        return;
                    };
                    let mut next = 1u64;
                    loop {
                        // Mix single-record and batched POSTs.
                        let n = if next.is_multiple_of(3) { 10 } else { 1 };
                        sent.lock().unwrap().push((session.clone(), next, n));
                        match conn
                            .request("POST", "/ingest/cms", document(&session, next, n))
                            .await
                        {
                            Ok((200, _)) => {
                                let mut a = acked.lock().unwrap();
                                for i in next..next + n {
                                    a.insert((session.clone(), i));
                                }
                            }
                            Ok((status, body)) => {
                                panic!("unexpected {status}: {}", String::from_utf8_lossy(&body))
                            }
                            Err(_) => return, // the server died under us
                        }
                        next += n;
                    }
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
        })
    };

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
    let total: u64 = sent.iter().map(|(_, _, n)| n).sum();
    rt.block_on(async {
        let mut conn = Conn::open(server.addr).await.unwrap();
        for (session, first, n) in &sent {
            let (status, _) = conn
                .request("POST", "/ingest/cms", document(session, *first, *n))
                .await
                .unwrap();
            assert_eq!(status, 200);
        }
    });
    let stored_after = journal(dir.path());
    assert_eq!(
        stored_after.len() as u64,
        total,
        "each record sent is stored exactly once"
    );

    // The API agrees: one call per leg, duplicates counted.
    let sources = rt.block_on(get_json(&server, "/api/v1/sources"));
    let senders = sources["sources"][0]["senders"].as_array().unwrap();
    let records: u64 = senders
        .iter()
        .map(|s| s["records_total"].as_u64().unwrap())
        .sum();
    let duplicates: u64 = senders
        .iter()
        .map(|s| s["duplicates"].as_u64().unwrap())
        .sum();
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
