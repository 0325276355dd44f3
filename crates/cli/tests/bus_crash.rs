//! Nothing acknowledged is lost across the ingest bus (issue 8, point 3):
//! a collector and a worker, two `cdrhub serve` processes on the machine's
//! NATS JetStream, each with its own data directory. Call Bridges post to
//! the collector without pause; the worker is SIGKILLed in the middle of
//! the load, then the collector; both start again, and the Call Bridges
//! send again what they never got a 200 for (here: everything). Every
//! record acknowledged by the collector is in the worker's journal, and
//! every record sent is there exactly once.

mod common;

use std::path::Path;

use common::{Acked, Sent, Server, journal, post_until_killed, send_again};

const SENDERS: usize = 4;

/// A config file for one role, on a stream of its own.
fn config(dir: &Path, stream: &str, role: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{role}.toml"));
    std::fs::write(
        &path,
        format!(
            "[bus]\nnats = \"nats://127.0.0.1:4222\"\nstream = \"{stream}\"\n\
             subject_prefix = \"cdrhub-crash.{stream}\"\nroles = [\"{role}\"]\n"
        ),
    )
    .unwrap();
    path
}

#[test]
fn records_acknowledged_by_a_collector_survive_sigkill_of_worker_and_collector() {
    common::ensure_nats();
    let dir = tempfile::tempdir().unwrap();
    let stream = format!("CDRHUB_CRASH_{}", std::process::id());
    let (collector_dir, worker_dir) = (dir.path().join("collector"), dir.path().join("worker"));
    let collector_config = config(dir.path(), &stream, "collector");
    let worker_config = config(dir.path(), &stream, "worker");
    let collector = Server::start_with_config(&collector_dir, Some(&collector_config));
    let worker = Server::start_with_config(&worker_dir, Some(&worker_config));
    let acked: Acked = Default::default();
    let sent: Sent = Default::default();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let running = post_until_killed(&rt, collector.addr, SENDERS, "bus-session", &acked, &sent);

    // The worker dies once it has stored some; the collector goes on
    // acknowledging into JetStream, then dies too.
    common::wait_until("the worker stores under load", || {
        worker_dir.join("cdrhub.db").exists() && journal(&worker_dir).len() >= 500
    });
    worker.kill();
    let at_worker_kill = acked.lock().unwrap().len();
    common::wait_until("the collector acknowledges with no worker", || {
        acked.lock().unwrap().len() >= at_worker_kill + 1000
    });
    collector.kill();
    rt.block_on(running).unwrap();
    let acked = acked.lock().unwrap().clone();

    // Both come back; the Call Bridges send everything again.
    let worker = Server::start_with_config(&worker_dir, Some(&worker_config));
    let collector = Server::start_with_config(&collector_dir, Some(&collector_config));
    let sent = sent.lock().unwrap().clone();
    let total = send_again(&rt, collector.addr, &sent);
    common::wait_until("the worker has every record", || {
        journal(&worker_dir).len() as u64 >= total
    });
    let stored = journal(&worker_dir);
    let lost: Vec<_> = acked.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged records lost, e.g. {:?}",
        lost.len(),
        lost.first()
    );
    assert_eq!(
        stored.len() as u64,
        total,
        "each record sent is stored exactly once"
    );
    println!(
        "acknowledged before the kills: {}, sent in all: {total}, in the worker's journal: {}",
        acked.len(),
        stored.len()
    );
    drop((worker, collector));
    rt.block_on(async {
        let client = async_nats::connect("nats://127.0.0.1:4222").await.unwrap();
        let _ = async_nats::jetstream::new(client)
            .delete_stream(&stream)
            .await;
    });
}
