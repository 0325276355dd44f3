//! Nothing a gateway was told `OK` is ever lost: gateways send call events
//! over the feed continuously, the server is SIGKILLed in the middle, and
//! every line answered `OK` before the kill is in the journal, once; after
//! the restart the calls are rebuilt from it.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use common::{Server, get_json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const GATEWAYS: u32 = 4;
/// Lines a gateway sends before it reads their answers.
const WINDOW: u32 = 20;

/// `gateway, seq` of every feed line in the journal.
fn journal(data_dir: &std::path::Path) -> BTreeSet<(String, u32)> {
    let conn = rusqlite::Connection::open_with_flags(
        data_dir.join("cdrhub.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT s.sender, j.seq FROM journal j JOIN streams s ON s.id = j.stream \
             WHERE s.source = 'feed'",
        )
        .unwrap();
    let rows: Vec<(String, u32)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let set: BTreeSet<(String, u32)> = rows.iter().cloned().collect();
    assert_eq!(set.len(), rows.len(), "a line is stored twice");
    set
}

/// Line `seq` of gateway `n`: its LOGIN, then calls of two events each
/// (HOOK_OFF, HOOK_ON), call reference `seq / 2`.
fn line(n: u32, seq: u32) -> String {
    let gw = format!("gw={} mac=000C2A03{n:04X}", 9000 + n);
    if seq == 1 {
        return format!(
            "GWFEED/1 LOGIN seq=1 {gw} fxs=2 fxo=0 isdn=0 callref=0 clock=2000-01-01T00:00:00"
        );
    }
    let kind = if seq.is_multiple_of(2) {
        "HOOK_OFF"
    } else {
        "HOOK_ON"
    };
    format!(
        "GWFEED/1 {kind} seq={seq} {gw} ref={} port=1 at=2000-01-01T00:00:00",
        seq / 2
    )
}

#[test]
fn feed_lines_answered_ok_before_sigkill_survive_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cdrhub.toml");
    std::fs::write(
        &config,
        "[sources.feed]\nenabled = true\ntcp_listen = \"127.0.0.1:0\"\nudp_listen = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let server = Server::start_with_config(&data, Some(&config));
    let (tcp, _) = server.feed_addrs();
    let acked: Arc<Mutex<BTreeSet<(String, u32)>>> = Default::default();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let load = {
        let acked = acked.clone();
        rt.spawn(async move {
            let mut tasks = Vec::new();
            for n in 0..GATEWAYS {
                let acked = acked.clone();
                tasks.push(tokio::spawn(async move {
                    let name = format!("{}_000C2A03{n:04X}", 9000 + n);
                    let Ok(stream) = tokio::net::TcpStream::connect(tcp).await else {
                        return;
                    };
                    let mut conn = BufReader::new(stream);
                    let mut seq = 1;
                    loop {
                        let mut out = String::new();
                        for s in seq..seq + WINDOW {
                            out.push_str(&line(n, s));
                            out.push('\n');
                        }
                        if conn.get_mut().write_all(out.as_bytes()).await.is_err() {
                            return;
                        }
                        for _ in 0..WINDOW {
                            let mut answer = String::new();
                            match conn.read_line(&mut answer).await {
                                Ok(0) | Err(_) => return, // the server died under us
                                Ok(_) => {}
                            }
                            let ok = answer.trim_end().strip_prefix("GWFEED/1 OK seq=");
                            let seq: u32 = ok
                                .unwrap_or_else(|| panic!("unexpected answer {answer:?}"))
                                .parse()
                                .unwrap();
                            acked.lock().unwrap().insert((name.clone(), seq));
                        }
                        seq += WINDOW;
                    }
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
        })
    };

    common::wait_until("lines answered OK under load", || {
        acked.lock().unwrap().len() >= 4000
    });
    server.kill();
    rt.block_on(load).unwrap();
    let acked = acked.lock().unwrap().clone();

    let stored = journal(&data);
    let lost: Vec<_> = acked.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} lines answered OK were lost, e.g. {:?}",
        lost.len(),
        lost.first()
    );

    // After the restart the calls come back from the journal: one per call
    // reference with a stored event.
    let server = Server::start_with_config(&data, Some(&config));
    let refs: BTreeSet<(String, u32)> = stored
        .iter()
        .filter(|(_, seq)| *seq > 1)
        .map(|(g, seq)| (g.clone(), seq / 2))
        .collect();
    let metrics = rt.block_on(common::get_text(&server, "/metrics"));
    let calls: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("cdrhub_calls "))
        .and_then(|n| n.parse().ok())
        .expect("cdrhub_calls");
    assert_eq!(
        calls,
        refs.len() as u64,
        "one call per stored call reference"
    );
    let gateways = rt.block_on(get_json(&server, "/api/v1/gateways"));
    assert!(
        gateways
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["state"] == "offline"),
        "no session outlives its server: {gateways:#?}"
    );
    println!(
        "answered OK before SIGKILL: {}, stored at the kill: {}, calls: {calls}",
        acked.len(),
        stored.len()
    );
}
