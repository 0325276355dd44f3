//! The SQLite store through its public interface: journal dedup, gaps, and
//! correlation across submissions, restarts and arrival orders.

use std::path::Path;
use std::time::Duration;

use cdrhub_model::{Disposition, FORCED_END_FLAG, Timestamp};
use cdrhub_protocols::cms;
use cdrhub_store::{
    CallFilter, CallSort, CmsIngest, ForceEnd, GapFilter, IngestBatch, IngestOutcome,
    IngestPayload, PruneRequest, SqliteOptions, SqliteStore, Store, StoreError,
};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn open(dir: &Path) -> SqliteStore {
    SqliteStore::open(dir, SqliteOptions::default()).unwrap()
}

fn submit(store: &SqliteStore, receiver: &str, body: Vec<u8>) -> Result<IngestOutcome, StoreError> {
    submit_at(store, receiver, body, Timestamp::now())
}

/// As `submit`, as if it had been received at `received_at`.
fn submit_at(
    store: &SqliteStore,
    receiver: &str,
    body: Vec<u8>,
    received_at: Timestamp,
) -> Result<IngestOutcome, StoreError> {
    let batch = cms::decode(&body).unwrap();
    let ingest = IngestBatch {
        sender: "cb".into(),
        received_at,
        payload: IngestPayload::Cms(CmsIngest {
            receiver: receiver.into(),
            body: body.into(),
            batch,
        }),
    };
    rt().block_on(store.submit(ingest))
}

fn doc(session: &str, bridge: Option<&str>, records: &[String]) -> Vec<u8> {
    let bridge = bridge
        .map(|b| format!(" callBridge=\"{b}\""))
        .unwrap_or_default();
    format!(
        "<?xml version=\"1.0\"?>\n<records session=\"{session}\"{bridge}>{}</records>",
        records.concat()
    )
    .into_bytes()
}

fn record(index: u64, kind: &str, second: u32, body: &str) -> String {
    format!(
        "<record type=\"{kind}\" time=\"2026-03-01T10:{:02}:{:02}Z\" recordIndex=\"{index}\" correlatorIndex=\"{}\">{body}</record>",
        second / 60,
        second % 60,
        index - 1
    )
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../../tests/data/cms/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn all_calls(store: &SqliteStore) -> Vec<cdrhub_model::Call> {
    store
        .list_calls(&CallFilter {
            limit: 10_000,
            ..Default::default()
        })
        .unwrap()
        .calls
}

#[test]
fn resent_record_is_acknowledged_and_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let post1 = fixture("seed-000-post1.xml");
    assert_eq!(
        submit(&store, "/ingest/cms", post1.clone()).unwrap().stored,
        1
    );
    let again = submit(&store, "/ingest/cms", post1.clone()).unwrap();
    assert_eq!((again.stored, again.duplicates), (0, 1));
    // Posted to a second receiver URL, CMS numbers it anew, but the session's
    // correlatorIndex is the same record.
    let other = submit(&store, "/ingest/cms?system_id=b", post1).unwrap();
    assert_eq!((other.stored, other.duplicates), (0, 1));
    let s = &store.senders().unwrap()[0];
    assert_eq!((s.records_total, s.duplicates), (1, 2));
}

#[test]
fn gaps_from_sequence_jumps_and_from_cms_reports() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let leg = |i: u64| {
        record(
            i,
            "callLegStart",
            i as u32,
            &format!("<callLeg id=\"l{i}\"><direction>incoming</direction></callLeg>"),
        )
    };
    submit(&store, "/r", doc("S", None, &[leg(1), leg(2)])).unwrap();
    let out = submit(&store, "/r", doc("S", None, &[leg(6)])).unwrap();
    assert_eq!(out.gaps, 1);
    let gaps = store.gaps(&GapFilter::default()).unwrap();
    assert_eq!(
        (
            gaps[0].kind.as_str(),
            gaps[0].first_missing,
            gaps[0].last_missing,
            gaps[0].missing
        ),
        ("sequence", Some(3), Some(5), 3)
    );
    assert!(gaps[0].open);
    // The missing records arrive late: the gap fills and closes.
    submit(&store, "/r", doc("S", None, &[leg(3), leg(4), leg(5)])).unwrap();
    let gaps = store.gaps(&GapFilter::default()).unwrap();
    assert_eq!((gaps[0].filled, gaps[0].open), (3, false));
    assert!(
        store
            .gaps(&GapFilter {
                open_only: true,
                ..Default::default()
            })
            .unwrap()
            .is_empty()
    );

    let reported = record(7, "callLegStart", 7, "<callLeg id=\"l7\"/>").replace(
        "correlatorIndex",
        "numPreceedingRecordsMissing=\"4\" correlatorIndex",
    );
    assert_eq!(
        submit(&store, "/r", doc("S", None, &[reported]))
            .unwrap()
            .gaps,
        1
    );
    let gaps = store
        .gaps(&GapFilter {
            open_only: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        (gaps[0].kind.as_str(), gaps[0].missing, gaps[0].at_index),
        ("reported", 4, 7)
    );
    let s = &store.senders().unwrap()[0];
    assert_eq!((s.gaps, s.missing_records), (2, 7));
}

/// The records of one call over two Call Bridges, arriving leg-first: each
/// bridge's legs make their own partial call until the callStarts show the
/// shared callCorrelator; then everything is one call, timeline included.
#[test]
fn call_spread_over_two_bridges_is_joined_by_correlator() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let leg_records = |bridge: &str, call: &str, leg: &str| {
        vec![
            record(1, "callLegStart", 1, &format!("<callLeg id=\"{leg}\"><remoteParty>{leg}@x</remoteParty><direction>incoming</direction></callLeg>")),
            record(2, "callLegUpdate", 2, &format!("<callLeg id=\"{leg}\"><state>connected</state><call>{call}</call></callLeg>")),
            record(3, "callLegEnd", 60, &format!("<callLeg id=\"{leg}\"><reason>remoteTeardown</reason><durationSeconds>58</durationSeconds></callLeg>")),
        ]
        .into_iter()
        .map(|r| (bridge.to_owned(), r))
        .collect::<Vec<_>>()
    };
    for (bridge, call, leg) in [("B1", "C1", "L1"), ("B2", "C2", "L2")] {
        for (b, r) in leg_records(bridge, call, leg) {
            submit(&store, "/r", doc(&format!("S{b}"), Some(&b), &[r])).unwrap();
        }
    }
    assert_eq!(
        all_calls(&store).len(),
        2,
        "two partial calls before the callStarts"
    );
    for (bridge, call) in [("B1", "C1"), ("B2", "C2")] {
        let start = record(
            4,
            "callStart",
            0,
            &format!(
                "<call id=\"{call}\"><name>board</name><callType>coSpace</callType><callCorrelator>X</callCorrelator></call>"
            ),
        );
        let end = record(
            5,
            "callEnd",
            61,
            &format!(
                "<call id=\"{call}\"><callLegsCompleted>1</callLegsCompleted><callLegsMaxActive>1</callLegsMaxActive></call>"
            ),
        );
        submit(
            &store,
            "/r",
            doc(&format!("S{bridge}"), Some(bridge), &[start, end]),
        )
        .unwrap();
    }
    let calls = all_calls(&store);
    assert_eq!(calls.len(), 1, "{calls:#?}");
    let call = &calls[0];
    assert_eq!((call.legs, call.legs_completed), (2, Some(2)));
    assert_eq!(call.disposition, Some(Disposition::Answered));
    let detail = store.get_call(&call.id).unwrap().unwrap();
    assert_eq!(detail.leg_list.len(), 2);
    assert!(detail.leg_list.iter().all(|l| l.call_id == call.id));
    assert_eq!(
        detail.events.len(),
        10,
        "every record of both bridges in the timeline"
    );
}

/// Deterministic shuffle (xorshift) so the test needs no extra crate.
fn shuffle<T>(v: &mut [T], mut seed: u64) {
    for i in (1..v.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        v.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}

/// Twenty calls of one to four legs, each record in its own POST, in a
/// shuffled order, with the store closed and reopened (cold cache) in the
/// middle: the calls equal those of in-order delivery.
#[test]
fn any_arrival_order_and_restarts_give_the_same_calls() {
    let mut records = Vec::new();
    let mut index = 0;
    let mut next = |kind: &str, second: u32, body: String| {
        index += 1;
        record(index, kind, second, &body)
    };
    for c in 0..20u32 {
        let call = format!("call-{c}");
        let base = c * 100;
        records.push(next(
            "callStart",
            base,
            format!("<call id=\"{call}\"><name>room {c}</name><callType>coSpace</callType></call>"),
        ));
        for l in 0..=(c % 4) {
            let leg = format!("leg-{c}-{l}");
            // Half the legs that connect name their call only in the update.
            let updated = (c + l) % 3 != 0;
            let call_el = if l % 2 == 0 || !updated {
                format!("<call>{call}</call>")
            } else {
                String::new()
            };
            records.push(next("callLegStart", base + l, format!("<callLeg id=\"{leg}\"><remoteParty>{c}{l}@example.com</remoteParty><direction>incoming</direction>{call_el}</callLeg>")));
            if updated {
                records.push(next("callLegUpdate", base + l + 1, format!("<callLeg id=\"{leg}\"><state>connected</state><call>{call}</call></callLeg>")));
            }
            let reason = if (c + l) % 3 == 0 {
                "remoteBusy"
            } else {
                "remoteTeardown"
            };
            records.push(next("callLegEnd", base + 50, format!("<callLeg id=\"{leg}\"><reason>{reason}</reason><durationSeconds>10</durationSeconds></callLeg>")));
        }
        records.push(next(
            "callEnd",
            base + 60,
            format!(
                "<call id=\"{call}\"><callLegsCompleted>{}</callLegsCompleted></call>",
                c % 4 + 1
            ),
        ));
    }

    let summarize = |store: &SqliteStore| {
        let mut calls: Vec<_> = all_calls(store)
            .into_iter()
            .map(|mut c| {
                c.id.clear();
                let d = store
                    .get_call(
                        &all_calls(store)
                            .iter()
                            .find(|x| x.destination == c.destination)
                            .unwrap()
                            .id,
                    )
                    .unwrap()
                    .unwrap();
                (c, d.leg_list.len(), d.events.len())
            })
            .collect();
        calls.sort_by(|a, b| a.0.destination.cmp(&b.0.destination));
        calls
    };

    let dir = tempfile::tempdir().unwrap();
    let expected = {
        let store = open(dir.path());
        for r in &records {
            submit(&store, "/r", doc("S", None, std::slice::from_ref(r))).unwrap();
        }
        summarize(&store)
    };
    assert_eq!(expected.len(), 20);

    for seed in [1u64, 7, 42, 99, 1234, 5555] {
        let dir = tempfile::tempdir().unwrap();
        let mut shuffled = records.clone();
        shuffle(&mut shuffled, seed);
        let (first, second) = shuffled.split_at(shuffled.len() / 2);
        {
            let store = open(dir.path());
            for r in first {
                submit(&store, "/r", doc("S", None, std::slice::from_ref(r))).unwrap();
            }
        }
        let store = open(dir.path());
        for r in second {
            submit(&store, "/r", doc("S", None, std::slice::from_ref(r))).unwrap();
        }
        assert_eq!(summarize(&store), expected, "seed {seed}");
    }
}

/// Another process holding the database lock: the submission fails (the
/// sender gets 503 and retries), nothing is half-written, and the store works
/// again once the lock is gone.
#[test]
fn locked_database_fails_the_submission_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        dir.path(),
        SqliteOptions {
            busy_timeout: Duration::from_millis(100),
            ..Default::default()
        },
    )
    .unwrap();
    let other = rusqlite::Connection::open(dir.path().join("cdrhub.db")).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let err = submit(&store, "/r", fixture("seed-000-post1.xml")).unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    other.execute_batch("COMMIT").unwrap();
    assert_eq!(
        submit(&store, "/r", fixture("seed-000-post1.xml"))
            .unwrap()
            .stored,
        1
    );
    for i in 2..=6 {
        submit(&store, "/r", fixture(&format!("seed-000-post{i}.xml"))).unwrap();
    }
    let calls = all_calls(&store);
    assert_eq!((calls.len(), calls[0].legs), (1, 2));
}

#[test]
fn a_second_process_cannot_open_the_same_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let _store = open(dir.path());
    let err = SqliteStore::open(dir.path(), SqliteOptions::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("another cdrhub process"), "{err}");
}

/// Calls and legs live in `calls.db`, derived from the journal in
/// `cdrhub.db`: without it (deleted, or lost with a disk) the next start
/// rebuilds the same calls from the journal.
#[test]
fn calls_db_is_rebuilt_from_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let store = open(dir.path());
        for i in 1..=6 {
            submit(&store, "/r", fixture(&format!("seed-000-post{i}.xml"))).unwrap();
        }
        all_calls(&store)
    };
    assert_eq!((before.len(), before[0].legs), (1, 2));
    for file in ["calls.db", "calls.db-wal", "calls.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(file));
    }
    let store = open(dir.path());
    let after = all_calls(&store);
    assert_eq!(after.len(), 1);
    let summary = |c: &cdrhub_model::Call| {
        let times = (c.started_at, c.ended_at);
        (
            c.caller.clone(),
            c.dialed.clone(),
            c.legs,
            c.disposition,
            times,
        )
    };
    assert_eq!(summary(&after[0]), summary(&before[0]));
    // A record sent again after the rebuild is still known to the journal.
    let again = submit(&store, "/r", fixture("seed-000-post1.xml")).unwrap();
    assert_eq!((again.stored, again.duplicates), (0, 1));
}

/// A call whose end records never came is ended by hand: it ends, is
/// flagged and shows the operator in its timeline; the end survives a
/// rebuild of the calls from the journal; the real end, when it comes after
/// all, takes its place.
#[test]
fn a_call_ended_by_hand_stays_ended_until_its_real_end_comes() {
    let dir = tempfile::tempdir().unwrap();
    let posts = seed_posts();
    let forced_at = Timestamp::parse_rfc3339("2015-07-23T08:00:00Z").unwrap();
    let id = {
        let store = open(dir.path());
        for post in &posts[..5] {
            submit(&store, "/r", post.clone()).unwrap();
        }
        let calls = all_calls(&store);
        assert_eq!(calls[0].ended_at, None, "no callEnd yet");
        assert_eq!(
            store.force_end("no-such-call", forced_at, "op").unwrap(),
            ForceEnd::NotFound
        );
        assert_eq!(
            store.force_end(&calls[0].id, forced_at, "op").unwrap(),
            ForceEnd::Ended
        );
        assert_eq!(
            store.force_end(&calls[0].id, forced_at, "op").unwrap(),
            ForceEnd::AlreadyEnded
        );
        let detail = store.get_call(&calls[0].id).unwrap().unwrap();
        assert_eq!(detail.call.ended_at, Some(forced_at));
        assert_eq!(detail.call.flags, vec![FORCED_END_FLAG]);
        let last = detail.events.last().unwrap();
        assert_eq!(
            (last.event_type.as_str(), &last.record["by"]),
            ("forcedEnd", &serde_json::json!("op"))
        );
        calls[0].id.clone()
    };
    for file in ["calls.db", "calls.db-wal", "calls.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(file));
    }
    let store = open(dir.path());
    let rebuilt = all_calls(&store);
    assert_ne!(rebuilt[0].id, id, "call ids are new after a rebuild");
    assert_eq!(rebuilt[0].ended_at, Some(forced_at), "the end is kept");
    assert_eq!(rebuilt[0].flags, vec![FORCED_END_FLAG]);
    assert_eq!(
        store.live_status(forced_at, 10).unwrap().active_calls.len(),
        0
    );

    submit(&store, "/r", posts[5].clone()).unwrap();
    let ended = all_calls(&store);
    assert_eq!(
        ended[0].ended_at,
        Some(Timestamp::parse_rfc3339("2015-07-23T07:33:05Z").unwrap())
    );
    assert!(ended[0].flags.is_empty(), "{:?}", ended[0].flags);
}

/// Removing what is older than a day takes the calls, their legs,
/// statistics and records, and nothing newer; a rebuild from the journal
/// brings back only what was kept, and the audit log is pruned on its own.
#[test]
fn old_calls_go_with_their_records_and_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let old_day = Timestamp::parse_rfc3339("2015-07-23T12:00:00Z").unwrap();
    let new_day = Timestamp::parse_rfc3339("2026-03-01T12:00:00Z").unwrap();
    let kept = {
        let store = open(dir.path());
        for post in seed_posts() {
            submit_at(&store, "/r", post, old_day).unwrap();
        }
        let call = one_leg_call(
            &mut 0,
            "kept",
            "2026-03-01T10:00:00Z",
            Some("2026-03-01T10:00:05Z"),
            Some("2026-03-01T10:05:00Z"),
            "clientInitiatedTeardown",
            false,
        );
        submit_at(&store, "/r2", doc("S2", None, &call), new_day).unwrap();
        assert_eq!(all_calls(&store).len(), 2);
        assert_eq!(
            store.day_stats(old_day, None, None).unwrap().hours[7].attempts,
            1
        );
        store
            .accounts()
            .audit(&cdrhub_store::AuditEntry {
                actor: "ann".into(),
                role: None,
                client_ip: None,
                operation: "login".into(),
                target: None,
            })
            .unwrap();

        let mut steps = 0;
        let report = store
            .prune(
                &PruneRequest {
                    calls_before: Some(Timestamp::parse_rfc3339("2020-01-01T08:00:00Z").unwrap()),
                    ..Default::default()
                },
                &mut |_| steps += 1,
            )
            .unwrap();
        assert!(steps >= 3, "progress after each step");
        assert_eq!((report.calls, report.legs, report.records), (1, 2, 8));
        assert!(report.statistics_rows >= 3, "{report:?}");
        assert_eq!(report.audit_entries, 0, "the audit log was not asked for");
        let calls = all_calls(&store);
        assert_eq!(calls.len(), 1);
        assert_eq!(
            store.day_stats(old_day, None, None).unwrap().hours[7].attempts,
            0
        );
        let calls_db = rusqlite::Connection::open(dir.path().join("calls.db")).unwrap();
        let stale: i64 = calls_db
            .query_row(
                "SELECT count(*) FROM call_keys WHERE call_id NOT IN (SELECT id FROM calls)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(stale, 0, "the removed call's source ids go with it");
        let search = store
            .search_calls(
                &CallFilter {
                    limit: 15,
                    ..Default::default()
                },
                CallSort::StartedAt,
                true,
                0,
            )
            .unwrap();
        assert_eq!((search.total, search.matching), (1, 1), "the total follows");

        let report = store
            .prune(
                &PruneRequest {
                    audit_before: Some(Timestamp(Timestamp::now().0 + 1000)),
                    ..Default::default()
                },
                &mut |_| {},
            )
            .unwrap();
        assert_eq!(report.audit_entries, 1);
        calls[0].destination.clone()
    };
    for file in ["calls.db", "calls.db-wal", "calls.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(file));
    }
    let store = open(dir.path());
    let rebuilt = all_calls(&store);
    assert_eq!(rebuilt.len(), 1, "the removed call's records are gone too");
    assert_eq!(rebuilt[0].destination, kept);
    let storage = store.storage().unwrap();
    assert!(storage.journal_bytes > 0 && storage.calls_bytes > 0);
    assert!(storage.disk_total_bytes >= storage.disk_free_bytes && storage.disk_free_bytes > 0);
}

/// The seed's conference as its six POSTs.
fn seed_posts() -> Vec<Vec<u8>> {
    (1..=6)
        .map(|i| fixture(&format!("seed-000-post{i}.xml")))
        .collect()
}

/// A backup uploaded in the console is checked, kept, and restored when
/// the store next opens, audited as the uploader's; a file that is not a
/// backup is refused and not kept.
#[test]
fn an_uploaded_backup_is_restored_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let posts = seed_posts();
    {
        let store = open(&data);
        for body in &posts[..3] {
            submit(&store, "/r", body.clone()).unwrap();
        }
        let (mut file, summary) = store.backup_file().unwrap();
        for body in &posts[3..] {
            submit(&store, "/r", body.clone()).unwrap();
        }
        let junk = store.restore_upload_path();
        std::fs::write(&junk, b"not a database").unwrap();
        let refused = store.stage_restore(&junk, "ann").unwrap_err();
        assert!(
            refused.to_string().contains("is not a cdrhub backup"),
            "{refused}"
        );
        assert!(!junk.exists() && !store.restore_pending());

        let upload = store.restore_upload_path();
        std::io::copy(&mut file, &mut std::fs::File::create(&upload).unwrap()).unwrap();
        let staged = store.stage_restore(&upload, "ann").unwrap();
        assert_eq!(staged.records, summary.records);
        assert!(store.restore_pending());
        assert!(
            all_calls(&store)[0].ended_at.is_some(),
            "nothing changes yet"
        );
    }
    let store = open(&data);
    assert!(!store.restore_pending());
    let calls = all_calls(&store);
    assert_eq!(calls[0].ended_at, None, "the call as it was at the backup");
    let audit = store
        .accounts()
        .audit_log(&cdrhub_store::AuditFilter {
            limit: 100,
            ..Default::default()
        })
        .unwrap();
    assert!(
        audit
            .entries
            .iter()
            .any(|e| e.operation == "restore" && e.actor == "console: ann"),
        "{:?}",
        audit.entries
    );
}

/// A backup taken while the store runs is one consistent moment; restoring
/// it brings back exactly that journal (and its accounts), keeps the
/// replaced database, and the next start rebuilds the calls.
#[test]
fn a_backup_restores_the_journal_and_the_calls_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let copy = dir.path().join("backup.db");
    let posts = seed_posts();
    let count = |posts: &[Vec<u8>]| -> u64 {
        posts
            .iter()
            .map(|b| cms::decode(b).unwrap().records.len() as u64)
            .sum()
    };
    let first = count(&posts[..3]);
    {
        let store = open(&data);
        for body in &posts[..3] {
            submit(&store, "/r", body.clone()).unwrap();
        }
        store
            .accounts()
            .add_user("ann", cdrhub_model::Role::Admin, "$argon2id$x")
            .unwrap();
        let summary = cdrhub_store::backup(&data, &copy, None).unwrap();
        assert!(summary.bytes > 0);
        assert_eq!(summary.records, first);
        for body in &posts[3..] {
            submit(&store, "/r", body.clone()).unwrap();
        }
        assert_eq!(all_calls(&store).len(), 1);
        // While it runs, the directory cannot be restored into.
        let refused = cdrhub_store::restore(&data, &copy).unwrap_err();
        assert!(
            refused.to_string().contains("another cdrhub process"),
            "{refused}"
        );
    }
    let restored = cdrhub_store::restore(&data, &copy).unwrap();
    assert_eq!(restored.records, first);
    assert!(data.join("cdrhub-before-restore.db").exists());
    assert!(
        !data.join("calls.db").exists(),
        "calls are rebuilt at the next start"
    );

    let store = open(&data);
    let calls = all_calls(&store);
    assert!(!calls.is_empty(), "rebuilt from the restored records");
    assert!(
        calls.iter().all(|c| c.ended_at.is_none()),
        "the conference had not ended at the backup"
    );
    assert!(store.accounts().user("ann").unwrap().is_some());
    let audit = store
        .accounts()
        .audit_log(&cdrhub_store::AuditFilter {
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(audit.entries[0].operation, "restore");
    // The rest can be sent again and is taken.
    for body in &posts[3..] {
        let stored = submit(&store, "/r", body.clone()).unwrap().stored as u64;
        assert_eq!(stored, count(std::slice::from_ref(body)));
    }
    let calls = all_calls(&store);
    assert_eq!(calls.len(), 1, "the leg joined its call again");
    assert!(calls[0].ended_at.is_some());
}

#[test]
fn restore_refuses_what_is_not_a_cdrhub_backup() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let garbage = dir.path().join("notes.txt");
    std::fs::write(
        &garbage,
        "not a database at all, just some words to fill a page",
    )
    .unwrap();
    let e = cdrhub_store::restore(&data, &garbage)
        .unwrap_err()
        .to_string();
    assert!(e.contains("is not a cdrhub backup"), "{e}");
    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    let e = cdrhub_store::restore(&data, &other)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no cdrhub tables"), "{e}");
    assert!(!data.join("cdrhub.db").exists(), "nothing changed");
}

/// The records of a one-leg CMS call at full times; `answer` None for a leg
/// that never connected; `video` adds a video stream to the leg's end.
#[allow(clippy::too_many_arguments)]
fn one_leg_call(
    index: &mut u64,
    name: &str,
    start: &str,
    answer: Option<&str>,
    end: Option<&str>,
    reason: &str,
    video: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut rec = |kind: &str, time: &str, body: String| {
        *index += 1;
        out.push(format!(
            "<record type=\"{kind}\" time=\"{time}\" recordIndex=\"{index}\" correlatorIndex=\"{}\">{body}</record>",
            *index - 1
        ));
    };
    let (call, leg) = (format!("call-{name}"), format!("leg-{name}"));
    rec(
        "callStart",
        start,
        format!("<call id=\"{call}\"><name>{name}</name><callType>coSpace</callType></call>"),
    );
    rec(
        "callLegStart",
        start,
        format!(
            "<callLeg id=\"{leg}\"><remoteParty>{name}@x</remoteParty><direction>incoming</direction><call>{call}</call></callLeg>"
        ),
    );
    if let Some(at) = answer {
        rec(
            "callLegUpdate",
            at,
            format!("<callLeg id=\"{leg}\"><state>connected</state><call>{call}</call></callLeg>"),
        );
    }
    if let Some(at) = end {
        let media = if video {
            "<rxVideo><codec>h264</codec></rxVideo>"
        } else {
            "<rxAudio><codec>opus</codec></rxAudio>"
        };
        rec(
            "callLegEnd",
            at,
            format!("<callLeg id=\"{leg}\"><reason>{reason}</reason>{media}</callLeg>"),
        );
        rec(
            "callEnd",
            at,
            format!("<call id=\"{call}\"><callLegsCompleted>1</callLegsCompleted></call>"),
        );
    }
    out
}

/// Hourly attempts, answers and exact peaks, a call carried over midnight,
/// a call written in progress and again when it ended, and the day's
/// ratios: the rollups agree with the calls.
#[test]
fn day_statistics_count_hours_and_peaks_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut i = 0;
    let day = |t: &str| format!("2026-03-01T{t}Z");
    // D: from the evening before to 00:10, connected all along.
    let d = one_leg_call(
        &mut i,
        "d",
        "2026-02-28T23:50:00Z",
        Some("2026-02-28T23:50:10Z"),
        Some(&day("00:10:00")),
        "clientInitiatedTeardown",
        false,
    );
    submit(&store, "/r", doc("S", None, &d)).unwrap();
    // A: in progress first (and written so, by the read), ended later.
    let a = one_leg_call(
        &mut i,
        "a",
        &day("09:59:50"),
        Some(&day("09:59:55")),
        Some(&day("10:30:00")),
        "clientInitiatedTeardown",
        false,
    );
    submit(&store, "/r", doc("S", None, &a[..3])).unwrap();
    let partial = store
        .day_stats(
            Timestamp::parse_rfc3339(&day("12:00:00")).unwrap(),
            None,
            None,
        )
        .unwrap();
    assert_eq!(partial.hours[11].peak_connected, 1, "A is still connected");
    submit(&store, "/r", doc("S", None, &a[3..])).unwrap();
    let b = one_leg_call(
        &mut i,
        "b",
        &day("10:10:00"),
        Some(&day("10:10:05")),
        Some(&day("10:20:00")),
        "clientInitiatedTeardown",
        true,
    );
    let c = one_leg_call(
        &mut i,
        "c",
        &day("10:15:00"),
        None,
        Some(&day("10:15:20")),
        "remoteBusy",
        false,
    );
    submit(&store, "/r", doc("S", None, &[b, c].concat())).unwrap();

    let stats = store
        .day_stats(
            Timestamp::parse_rfc3339(&day("12:00:00")).unwrap(),
            None,
            None,
        )
        .unwrap();
    assert_eq!(
        stats.day,
        Timestamp::parse_rfc3339(&day("00:00:00")).unwrap()
    );
    let h = |n: usize| {
        let h = &stats.hours[n];
        (h.attempts, h.answered, h.peak_attempts, h.peak_connected)
    };
    assert_eq!(h(0), (0, 0, 1, 1), "D carried over midnight");
    assert_eq!(h(1), (0, 0, 0, 0));
    assert_eq!(h(9), (1, 1, 1, 1));
    assert_eq!(
        h(10),
        (2, 1, 3, 2),
        "A, B and C at 10:15, A and B connected"
    );
    assert_eq!(h(11), (0, 0, 0, 0), "A's end counted once");
    let v = &stats.hours[10];
    assert_eq!(
        (
            v.video_attempts,
            v.video_answered,
            v.video_peak_attempts,
            v.video_peak_connected
        ),
        (1, 1, 1, 1)
    );

    assert_eq!(stats.senders.len(), 1);
    let s = &stats.senders[0];
    assert_eq!((s.attempts, s.answered, s.busy), (3, 2, 1));
    assert_eq!(s.asr, Some(2.0 / 3.0));
    assert_eq!(
        s.ner,
        Some(1.0),
        "busy is the user's answer, not the network's failure"
    );
    assert_eq!(s.acd_s, Some((1805.0 + 595.0) / 2.0));
    assert_eq!(s.pdd_s, None, "CMS gives no ring times");

    let before = store
        .day_stats(
            Timestamp::parse_rfc3339("2026-02-28T12:00:00Z").unwrap(),
            None,
            None,
        )
        .unwrap();
    assert_eq!(
        (before.hours[23].attempts, before.hours[23].peak_connected),
        (1, 1)
    );
    let other = store
        .day_stats(
            Timestamp::parse_rfc3339(&day("12:00:00")).unwrap(),
            Some("cms"),
            Some("nobody"),
        )
        .unwrap();
    assert_eq!(other.hours[10].attempts, 0);
    assert_eq!(other.hours[0].peak_attempts, 0);
}

mod cti_flow {
    use cdrhub_protocols::cti::{
        AgentStateEvent, CallEvent, CallEventKind, CtiBody, CtiMessage, DeviceRole, Floating, tags,
    };

    /// A call event with the fields the correlator reads.
    pub fn call(
        kind: CallEventKind,
        call_id: u32,
        csq: Option<u32>,
        fields: &[(u16, &str)],
    ) -> CtiMessage {
        let mut floating = Floating::default();
        for (tag, value) in fields {
            floating.push_str(*tag, *value);
        }
        let role = match kind {
            CallEventKind::Delivered => Some(DeviceRole::Alerting),
            CallEventKind::Established => Some(DeviceRole::Answering),
            CallEventKind::ConnectionCleared => Some(DeviceRole::Releasing),
            _ => None,
        };
        CtiMessage {
            message_type: kind.message_type(),
            body: CtiBody::Call(Box::new(CallEvent {
                connection_device_id_type: 0,
                skill_group_number: csq,
                device_types: role.map(|r| vec![(r, 76)]).unwrap_or_default(),
                num_cti_clients: (kind == CallEventKind::BeginCall).then_some(0),
                num_named_variables: (kind == CallEventKind::BeginCall).then_some(0),
                num_named_arrays: (kind == CallEventKind::BeginCall).then_some(0),
                call_type: (kind == CallEventKind::BeginCall).then_some(1),
                called_party_disposition: (kind == CallEventKind::BeginCall).then_some(0),
                floating,
                ..CallEvent::new(kind, call_id)
            })),
        }
    }

    pub fn agent_state(agent: &str, extension: &str, state: u16, reason: u16) -> CtiMessage {
        let mut floating = Floating::default();
        floating.push_str(tags::AGENT_EXTENSION, extension);
        floating.push_str(tags::AGENT_ID_LONG, agent);
        CtiMessage {
            message_type: 30,
            body: CtiBody::AgentState(Box::new(AgentStateEvent {
                peripheral_id: 1,
                peripheral_type: 21,
                skill_group_state: state,
                skill_group_number: 0xFFFF_FFFF,
                agent_state: state,
                event_reason_code: reason,
                num_flt_skill_groups: Some(0),
                floating,
                ..AgentStateEvent::default()
            })),
        }
    }

    /// An inbound call answered by agent 2006 from CSQ 1, with the agent's
    /// states around it, one second apart.
    pub fn answered_call(call_id: u32) -> Vec<CtiMessage> {
        use CallEventKind as K;
        vec![
            agent_state("agt2006", "2006", 3, 0),
            call(
                K::BeginCall,
                call_id,
                None,
                &[
                    (tags::CONNECTION_DEVID, "2005"),
                    (tags::ANI, "+15551234"),
                    (tags::DNIS, "7000"),
                ],
            ),
            call(
                K::Queued,
                call_id,
                Some(1),
                &[(tags::CONNECTION_DEVID, "9019")],
            ),
            call(
                K::Delivered,
                call_id,
                Some(1),
                &[
                    (tags::CONNECTION_DEVID, "2006"),
                    (tags::ALERTING_DEVID, "2006"),
                    (tags::CALLING_DEVID, "+15551234"),
                ],
            ),
            agent_state("agt2006", "2006", 4, 0),
            call(
                K::Established,
                call_id,
                Some(1),
                &[
                    (tags::CONNECTION_DEVID, "2006"),
                    (tags::ANSWERING_DEVID, "2006"),
                    (tags::CALLING_DEVID, "+15551234"),
                ],
            ),
            call(
                K::ConnectionCleared,
                call_id,
                None,
                &[
                    (tags::CONNECTION_DEVID, "2006"),
                    (tags::RELEASING_DEVID, "2006"),
                ],
            ),
            agent_state("agt2006", "2006", 6, 0),
            call(
                K::Cleared,
                call_id,
                None,
                &[(tags::CONNECTION_DEVID, "2005")],
            ),
            call(K::EndCall, call_id, None, &[]),
            agent_state("agt2006", "2006", 2, 32760),
        ]
    }
}

fn submit_cti(
    store: &SqliteStore,
    session: &str,
    first_seq: u64,
    messages: Vec<cdrhub_protocols::cti::CtiMessage>,
) -> IngestOutcome {
    let t0 = Timestamp::parse_rfc3339("2026-11-02T09:00:00Z").unwrap();
    let messages = messages
        .into_iter()
        .enumerate()
        .map(|(i, message)| {
            let seq = first_seq + i as u64;
            cdrhub_store::CtiIngestMessage {
                seq,
                received_at: Timestamp(t0.0 + seq as i64 * 1000),
                frame: cdrhub_protocols::cti::encode(&message, 13).into(),
                message,
            }
        })
        .collect();
    let batch = IngestBatch {
        sender: "uccx".into(),
        received_at: t0,
        payload: IngestPayload::Cti(cdrhub_store::CtiIngest {
            node: "127.0.0.1:42027".into(),
            session: session.into(),
            version: 13,
            messages,
        }),
    };
    rt().block_on(store.submit(batch)).unwrap()
}

/// CTI messages go through the journal like CMS records: a call answered by
/// an agent and the agent's state intervals, stored once when submitted
/// twice, and the same after calls.db is rebuilt from the journal.
#[test]
fn cti_messages_make_calls_and_agent_states_that_survive_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let agent_states = |dir: &Path| -> Vec<(i64, i64, Option<i64>)> {
        let db = rusqlite::Connection::open(dir.join("calls.db")).unwrap();
        let mut stmt = db
            .prepare("SELECT state, started_at, ended_at FROM agent_states WHERE agent = 'agt2006' ORDER BY started_at")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let (before, states) = {
        let store = open(dir.path());
        let flow = cti_flow::answered_call(16_777_507);
        let (first, second) = flow.split_at(4);
        let outcome = submit_cti(&store, "s1", 1, first.to_vec());
        assert_eq!(outcome.stored, 4);
        let live = store
            .list_calls(&CallFilter {
                limit: 10,
                ..Default::default()
            })
            .unwrap()
            .calls;
        assert_eq!(live[0].ended_at, None, "in progress");
        submit_cti(&store, "s1", 5, second.to_vec());
        let again = submit_cti(&store, "s1", 5, second.to_vec());
        assert_eq!(
            (again.stored, again.duplicates),
            (0, 7),
            "the same batch twice"
        );
        let calls = all_calls(&store);
        assert_eq!(calls.len(), 1);
        let c = &calls[0];
        assert_eq!((c.source.as_str(), c.sender.as_str()), ("cti", "uccx"));
        assert_eq!(c.caller.as_deref(), Some("+15551234"));
        assert_eq!(c.destination.as_deref(), Some("2006"));
        assert_eq!(c.disposition, Some(Disposition::Answered));
        let detail = store.get_call(&c.id).unwrap().unwrap();
        assert_eq!(detail.call.details["agents"][0]["talk_s"], 1.0);
        assert_eq!(
            detail.events.len(),
            7,
            "the call events, not the agent states"
        );
        let cc = store
            .contact_centre_day(
                Timestamp::parse_rfc3339("2026-11-02T12:00:00Z").unwrap(),
                None,
            )
            .unwrap();
        let a = &cc.agents[0];
        assert_eq!(
            (a.agent.as_str(), a.extension.as_deref()),
            ("agt2006", Some("2006"))
        );
        assert_eq!((a.calls_handled, a.talk_s), (1, 1.0));
        assert_eq!((a.ready_s, a.talking_s, a.wrapup_s), (4.0, 3.0, 3.0));
        assert_eq!(a.not_ready_reasons[0].0, 32760);
        let q = &cc.csqs[0];
        assert_eq!((q.csq, q.offered, q.answered, q.abandoned), (1, 1, 1, 0));
        assert_eq!((q.average_wait_s, q.longest_wait_s), (Some(3.0), Some(3.0)));
        assert_eq!(detail.events[0].event_type, "BEGIN_CALL_EVENT");
        let found = store
            .search_calls(
                &CallFilter {
                    q: Some("5551234".into()),
                    limit: 15,
                    ..Default::default()
                },
                CallSort::StartedAt,
                true,
                0,
            )
            .unwrap();
        assert_eq!(found.matching, 1, "party search finds CTI calls");
        (calls, agent_states(dir.path()))
    };
    assert_eq!(
        states.iter().map(|s| s.0).collect::<Vec<_>>(),
        [3, 4, 6, 2],
        "ready, talking, work, not ready"
    );
    assert!(states[..3].iter().all(|s| s.2.is_some()) && states[3].2.is_none());
    for file in ["calls.db", "calls.db-wal", "calls.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(file));
    }
    let store = open(dir.path());
    let after = all_calls(&store);
    assert_eq!(after.len(), 1);
    assert_eq!(
        (
            after[0].caller.clone(),
            after[0].answered_at,
            after[0].ended_at
        ),
        (
            before[0].caller.clone(),
            before[0].answered_at,
            before[0].ended_at
        )
    );
    assert_eq!(agent_states(dir.path()), states);
}

/// Removes every call there is, and its records (the console's "clear
/// history data").
fn clear_every_call(store: &SqliteStore) -> Result<cdrhub_store::PruneReport, StoreError> {
    store.prune(
        &PruneRequest {
            calls_before: Some(Timestamp(Timestamp::now().0 + 86_400_000)),
            ..Default::default()
        },
        &mut |_| {},
    )
}

/// Clearing every call removes the newest records too: SQLite would give
/// their ids again, and the correlator, which reads past the last id it
/// read, would never make calls of the records that come next. New records
/// get ids above every id given before, also after a restart.
#[test]
fn calls_that_come_after_clearing_everything_are_made() {
    let dir = tempfile::tempdir().unwrap();
    let posts = |store: &SqliteStore, session: &str, day: &str| {
        let mut index = 0;
        for n in 0..3 {
            let call = one_leg_call(
                &mut index,
                &format!("{session}-{n}"),
                &format!("{day}T10:00:0{n}Z"),
                Some(&format!("{day}T10:00:1{n}Z")),
                Some(&format!("{day}T10:05:0{n}Z")),
                "clientInitiatedTeardown",
                false,
            );
            submit(store, &format!("/{session}"), doc(session, None, &call)).unwrap();
        }
    };
    {
        let store = open(dir.path());
        posts(&store, "S1", "2026-03-01");
        assert_eq!(all_calls(&store).len(), 3);
        let report = clear_every_call(&store).unwrap();
        assert_eq!(report.calls, 3, "{report:?}");
        assert!(all_calls(&store).is_empty());
        posts(&store, "S2", "2026-03-02");
        assert_eq!(all_calls(&store).len(), 3, "the calls after the clearing");
    }
    // Cleared again, and the next records come after a restart.
    {
        let store = open(dir.path());
        clear_every_call(&store).unwrap();
    }
    let store = open(dir.path());
    posts(&store, "S3", "2026-03-03");
    assert_eq!(all_calls(&store).len(), 3, "the calls after a restart");
}

/// A removal run waits for a lock held by another writer instead of
/// failing at once: under a steady load the writer commits without a
/// break, and a run that gave up would leave old data for ever.
#[test]
fn a_removal_run_waits_for_a_locked_journal() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        dir.path(),
        SqliteOptions {
            busy_timeout: std::time::Duration::from_millis(100),
            ..SqliteOptions::default()
        },
    )
    .unwrap();
    let mut index = 0;
    let call = one_leg_call(
        &mut index,
        "old",
        "2026-03-01T10:00:00Z",
        Some("2026-03-01T10:00:05Z"),
        Some("2026-03-01T10:05:00Z"),
        "clientInitiatedTeardown",
        false,
    );
    submit(&store, "/r", doc("S1", None, &call)).unwrap();
    assert_eq!(all_calls(&store).len(), 1);
    // Another writer holds the journal for two seconds, twenty busy
    // timeouts.
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let journal = dir.path().join("cdrhub.db");
    let holder = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(journal).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        locked_tx.send(()).unwrap();
        std::thread::sleep(std::time::Duration::from_secs(2));
        conn.execute_batch("COMMIT").unwrap();
    });
    locked_rx.recv().unwrap();
    let report = clear_every_call(&store).expect("the run waits for the lock");
    holder.join().unwrap();
    assert_eq!((report.calls, report.records), (1, 5), "{report:?}");
    assert!(all_calls(&store).is_empty());
}
