//! A restart during retention (issue 9, point 3): the server is SIGKILLed
//! in the middle of a data removal, and
//!
//! - nothing that should be kept is lost: every recent call, leg and
//!   record is there after the kill and after the next run (exact counts);
//! - no call is left half removed: every call has both its legs and every
//!   record it lists, no leg or source key is left without its call, and a
//!   record left in the journal with no call is only one of an old call the
//!   run had removed (it goes at the next run);
//! - the next run finishes the job: it removes exactly what the first left
//!   (the old calls, their legs and records, and the old hours' statistics)
//!   and nothing else.
//!
//! Old and recent: the removal takes calls by their start (`calls.started_at`,
//! the CMS record times) before the CDR keeping days, whole UTC days; their
//! records go with them, whatever their receive time. So the test posts, over
//! the real CMS receiver, whole two-leg calls (six records each) timed 200
//! days ago, and calls timed two and 26 hours ago, sets the keeping days to
//! 30 in the console (signed in as the generated admin) and presses "Run
//! now". The old calls are 6,000, three steps of the removal
//! (`STEP_ROWS`, 2,000 calls). The test watches `calls.db` and SIGKILLs the
//! server as soon as the run's first step is committed, which is where the
//! calls of a step are gone and their records (in `cdrhub.db`, another
//! file) are not yet; it restarts it and does the same to a second run,
//! then lets a third run end. Each check of the files is made with the
//! server dead, so the two files are seen as they were left.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;

use bytes::Bytes;
use cdrhub_model::Timestamp;
use common::{Conn, Server};
use http_body_util::{BodyExt, Full};

/// Old calls: three steps of the removal (2,000 calls a step).
const OLD_CALLS: u64 = 6_000;
/// Recent calls, half two hours old, half 26 hours old.
const RECENT_CALLS: u64 = 400;
/// Calls per POSTed document (six records each).
const CALLS_PER_DOCUMENT: u64 = 500;
const RECORDS_PER_CALL: u64 = 6;
const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
const KEEPING_DAYS: i64 = 30;

/// Call `i` of `tag` (`old` or `new`): a conference call with two legs,
/// started at `at`, both legs ending a minute later, then the call.
fn call_records(tag: &str, i: u64, at: Timestamp, first_index: u64) -> String {
    let call = format!("{tag}-call-{i}");
    let legs = [format!("{tag}-leg-{i}-a"), format!("{tag}-leg-{i}-b")];
    let end = Timestamp(at.0 + 60_000);
    let bodies = [
        (
            "callStart",
            at,
            format!(
                "<call id=\"{call}\"><name>{tag} {i}</name><callType>coSpace</callType></call>"
            ),
        ),
        (
            "callLegStart",
            at,
            format!(
                "<callLeg id=\"{}\"><remoteParty>{i}a@example.com</remoteParty><direction>incoming</direction><call>{call}</call></callLeg>",
                legs[0]
            ),
        ),
        (
            "callLegStart",
            at,
            format!(
                "<callLeg id=\"{}\"><remoteParty>{i}b@example.com</remoteParty><direction>outgoing</direction><call>{call}</call></callLeg>",
                legs[1]
            ),
        ),
        (
            "callLegEnd",
            end,
            format!(
                "<callLeg id=\"{}\"><reason>remoteTeardown</reason><remoteTeardown>true</remoteTeardown><durationSeconds>60</durationSeconds></callLeg>",
                legs[0]
            ),
        ),
        (
            "callLegEnd",
            end,
            format!(
                "<callLeg id=\"{}\"><reason>remoteTeardown</reason><remoteTeardown>false</remoteTeardown><durationSeconds>60</durationSeconds></callLeg>",
                legs[1]
            ),
        ),
        (
            "callEnd",
            end,
            format!(
                "<call id=\"{call}\"><callLegsCompleted>2</callLegsCompleted><callLegsMaxActive>2</callLegsMaxActive><durationSeconds>60</durationSeconds></call>"
            ),
        ),
    ];
    let mut out = String::new();
    for (k, (kind, time, body)) in bodies.iter().enumerate() {
        let index = first_index + k as u64;
        out.push_str(&format!(
            "<record type=\"{kind}\" time=\"{}\" recordIndex=\"{index}\" correlatorIndex=\"{}\">{body}</record>",
            time.to_rfc3339(),
            index - 1
        ));
    }
    out
}

/// Posts calls `calls` of `tag` from the Call Bridge session `session`,
/// `CALLS_PER_DOCUMENT` a document, call `i` starting at `at(i)`.
async fn post_calls(
    addr: SocketAddr,
    session: &str,
    tag: &str,
    calls: std::ops::Range<u64>,
    at: impl Fn(u64) -> Timestamp,
) {
    let mut conn = Conn::open(addr).await.unwrap();
    let all: Vec<u64> = calls.collect();
    for chunk in all.chunks(CALLS_PER_DOCUMENT as usize) {
        let mut body = format!("<?xml version=\"1.0\"?>\n<records session=\"{session}\">");
        for &i in chunk {
            body.push_str(&call_records(tag, i, at(i), i * RECORDS_PER_CALL + 1));
        }
        body.push_str("</records>");
        let (status, answer) = conn
            .request("POST", "/ingest/cms", body.into_bytes())
            .await
            .unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    }
}

/// A console request: status, the `Set-Cookie` values, the body.
async fn console(
    addr: SocketAddr,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    form: &[(&str, &str)],
) -> (u16, Vec<String>, String) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    if let Some(cookie) = cookie {
        req = req.header("cookie", cookie);
    }
    let body = form
        .iter()
        .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    if method == "POST" {
        req = req.header("content-type", "application/x-www-form-urlencoded");
    }
    let resp = sender
        .send_request(req.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let cookies = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, cookies, String::from_utf8(body.to_vec()).unwrap())
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The hidden CSRF field of the first form on a page.
fn csrf_of(html: &str) -> String {
    let start = html.find(r#"name="csrf" value=""#).expect("a CSRF field") + 19;
    html[start..].split('"').next().unwrap().to_owned()
}

/// Signs in to the console as `admin`; the session cookie.
async fn sign_in(addr: SocketAddr, password: &str) -> String {
    let (status, cookies, page) = console(addr, "GET", "/login", None, &[]).await;
    assert_eq!(status, 200);
    let login = cookies
        .iter()
        .find(|c| c.starts_with("cdrhub_login="))
        .expect("the login cookie")
        .clone();
    let csrf = csrf_of(&page);
    let (status, cookies, page) = console(
        addr,
        "POST",
        "/login",
        Some(&login),
        &[("user", "admin"), ("password", password), ("csrf", &csrf)],
    )
    .await;
    assert_eq!(status, 303, "{page}");
    cookies
        .into_iter()
        .find(|c| c.starts_with("cdrhub_session=") && c.len() > "cdrhub_session=".len())
        .expect("a session cookie")
}

/// Presses "Run now" on the Data page (the removal with the keeping days).
async fn run_now(addr: SocketAddr, session: &str) {
    let (_, _, page) = console(addr, "GET", "/admin/data", Some(session), &[]).await;
    let csrf = csrf_of(&page);
    let (status, _, page) = console(
        addr,
        "POST",
        "/admin/data/run",
        Some(session),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(status, 303, "{page}");
}

/// The calls `/metrics` counts (a read: calls are brought up to date first).
fn calls_metric(rt: &tokio::runtime::Runtime, server: &Server) -> u64 {
    let metrics = rt.block_on(common::get_text(server, "/metrics"));
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("cdrhub_calls "))
        .expect("cdrhub_calls in /metrics")
        .parse()
        .unwrap()
}

fn open(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
}

fn count(conn: &rusqlite::Connection, sql: &str, cutoff: i64) -> u64 {
    let params: &[&dyn rusqlite::ToSql] = if sql.contains("?1") { &[&cutoff] } else { &[] };
    conn.query_row(sql, params, |r| r.get::<_, i64>(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}")) as u64
}

/// What the two files hold, read with the server dead.
#[derive(Debug)]
struct Stored {
    old_calls: u64,
    recent_calls: u64,
    recent_legs: u64,
    /// Journal records of old and recent calls (by their event time).
    old_records: u64,
    recent_records: u64,
    /// Journal records that no call lists: records of removed calls.
    orphans: u64,
    old_statistics_hours: u64,
    recent_statistics_hours: u64,
}

/// Reads the data directory and checks that no call is half there: each has
/// both legs and its six records, no leg or source key is without its call,
/// and a record without a call is an old one.
fn check_whole(data_dir: &Path, cutoff: i64) -> Stored {
    let calls = open(&data_dir.join("calls.db"));
    let journal = open(&data_dir.join("cdrhub.db"));
    assert_eq!(
        count(
            &calls,
            "SELECT count(*) FROM legs WHERE call_id NOT IN (SELECT id FROM calls)",
            cutoff
        ),
        0,
        "legs without their call"
    );
    assert_eq!(
        count(
            &calls,
            "SELECT count(*) FROM calls c WHERE c.legs != 2 \
             OR (SELECT count(*) FROM legs l WHERE l.call_id = c.id) != 2",
            cutoff
        ),
        0,
        "calls without both their legs"
    );
    assert_eq!(
        count(
            &calls,
            "SELECT count(*) FROM call_keys WHERE call_id NOT IN (SELECT id FROM calls)",
            cutoff
        ),
        0,
        "source keys of calls that are gone"
    );

    // Journal id -> event time.
    let mut stmt = journal
        .prepare("SELECT id, event_time FROM journal")
        .unwrap();
    let records: BTreeMap<i64, i64> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut stmt = calls
        .prepare("SELECT id, started_at, records FROM calls")
        .unwrap();
    let mut listed = BTreeSet::new();
    for row in stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .unwrap()
    {
        let (id, started_at, ids) = row.unwrap();
        let ids: Vec<i64> = serde_json::from_str(&ids).unwrap();
        assert_eq!(
            ids.len() as u64,
            RECORDS_PER_CALL,
            "call {id} lists {ids:?}"
        );
        for r in &ids {
            let at = records
                .get(r)
                .unwrap_or_else(|| panic!("call {id} (started {started_at}) lost its record {r}"));
            assert_eq!(
                *at < cutoff,
                started_at < cutoff,
                "call {id}: record {r} of another age"
            );
            assert!(listed.insert(*r), "record {r} listed by two calls");
        }
    }
    let orphans: Vec<(&i64, &i64)> = records
        .iter()
        .filter(|(r, _)| !listed.contains(r))
        .collect();
    let recent_orphans: Vec<_> = orphans.iter().filter(|(_, at)| **at >= cutoff).collect();
    assert!(
        recent_orphans.is_empty(),
        "recent records without their call: {recent_orphans:?}"
    );
    let old_records = records.values().filter(|at| **at < cutoff).count() as u64;
    Stored {
        old_calls: count(
            &calls,
            "SELECT count(*) FROM calls WHERE started_at < ?1",
            cutoff,
        ),
        recent_calls: count(
            &calls,
            "SELECT count(*) FROM calls WHERE started_at >= ?1",
            cutoff,
        ),
        recent_legs: count(
            &calls,
            "SELECT count(*) FROM legs WHERE call_id IN (SELECT id FROM calls WHERE started_at >= ?1)",
            cutoff,
        ),
        old_records,
        recent_records: records.len() as u64 - old_records,
        orphans: orphans.len() as u64,
        old_statistics_hours: count(
            &calls,
            "SELECT count(*) FROM stats_hourly WHERE hour * 1000 < ?1",
            cutoff,
        ),
        recent_statistics_hours: count(
            &calls,
            "SELECT count(*) FROM stats_hourly WHERE hour * 1000 >= ?1",
            cutoff,
        ),
    }
}

/// Nothing recent is lost: exact counts.
fn check_recent_kept(stored: &Stored) {
    assert_eq!(stored.recent_calls, RECENT_CALLS, "{stored:?}");
    assert_eq!(stored.recent_legs, 2 * RECENT_CALLS, "{stored:?}");
    assert_eq!(
        stored.recent_records,
        RECORDS_PER_CALL * RECENT_CALLS,
        "{stored:?}"
    );
    assert!(stored.recent_statistics_hours > 0, "{stored:?}");
}

#[test]
fn a_removal_killed_midway_keeps_what_it_should_and_the_next_run_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = Server::start(dir.path());
    let password = server
        .admin_password
        .clone()
        .expect("the first start makes an admin");
    let addr = server.addr;

    // Whole seconds, so the record times need no fraction.
    let now = Timestamp::now().0 / 1000 * 1000;
    // The removal's cutoff is 30 days ago (start of that UTC day); the test
    // tells old from recent halfway between the two ages.
    let cutoff = now - 100 * DAY_MS;
    let old_start = now - 200 * DAY_MS;
    rt.block_on(async {
        // One Call Bridge a minute apart over about four days, another with
        // the recent calls.
        post_calls(addr, "cb-old", "old", 0..OLD_CALLS, |i| {
            Timestamp(old_start + i as i64 * 60_000)
        })
        .await;
        post_calls(addr, "cb-new", "new", 0..RECENT_CALLS, |i| {
            let ago = if i % 2 == 0 {
                2 * HOUR_MS
            } else {
                26 * HOUR_MS
            };
            Timestamp(now - ago + i as i64 * 1000)
        })
        .await;
    });
    // Every call written before the removal looks for them.
    assert_eq!(calls_metric(&rt, &server), OLD_CALLS + RECENT_CALLS);

    // The keeping days, then "Run now", in the console.
    let session = rt.block_on(sign_in(addr, &password));
    rt.block_on(async {
        let (_, _, page) = console(addr, "GET", "/admin/data", Some(&session), &[]).await;
        let csrf = csrf_of(&page);
        let (status, _, page) = console(
            addr,
            "POST",
            "/admin/data/keeping",
            Some(&session),
            &[
                ("csrf", &csrf),
                ("cdr_days", &KEEPING_DAYS.to_string()),
                ("log_days", "365"),
            ],
        )
        .await;
        assert_eq!(status, 303, "{page}");
    });
    // Twice: "Run now", SIGKILL as soon as its first step of calls is
    // committed, check the files, restart.
    let mut server = server;
    let mut left = OLD_CALLS;
    let mut before = check_whole(dir.path(), cutoff);
    for kill in 1..=2 {
        let watch = open(&dir.path().join("calls.db"));
        let old_now = || {
            count(
                &watch,
                "SELECT count(*) FROM calls WHERE started_at < ?1",
                cutoff,
            )
        };
        assert_eq!(old_now(), left);
        rt.block_on(run_now(server.addr, &session));
        let mut at_kill = left;
        common::wait_until("the removal's first step", || {
            at_kill = old_now();
            at_kill < left
        });
        server.kill();
        drop(watch);
        assert!(
            at_kill > 0,
            "the removal ended before the kill: make the old data bigger"
        );

        let after = check_whole(dir.path(), cutoff);
        check_recent_kept(&after);
        assert!(
            after.old_calls > 0 && after.old_calls < left,
            "killed midway: {after:?}"
        );
        // No step of statistics came yet.
        assert_eq!(
            after.old_statistics_hours, before.old_statistics_hours,
            "{after:?}"
        );
        // Records without their call are only of calls this run removed:
        // it began with those the run before left.
        assert_eq!(
            after.old_records,
            RECORDS_PER_CALL * after.old_calls + after.orphans,
            "{after:?}"
        );
        assert!(
            after.orphans <= RECORDS_PER_CALL * (left - after.old_calls),
            "{after:?}"
        );
        println!(
            "kill {kill}: {} old calls removed before it ({} left), {} old records left, \
             {} of them of calls removed",
            left - after.old_calls,
            after.old_calls,
            after.old_records,
            after.orphans,
        );
        left = after.old_calls;
        before = after;

        // The restart: everything recent is there, nothing old came back.
        // The console session is kept in cdrhub.db: it outlives the kill.
        server = Server::start(dir.path());
        assert_eq!(calls_metric(&rt, &server), left + RECENT_CALLS);
    }

    // The next run removes exactly what the two before left, and the old
    // hours' statistics (checked in the files below).
    rt.block_on(run_now(server.addr, &session));
    let last = rt.block_on(last_run(server.addr, &session));
    assert!(!last.contains("failed"), "{last}");
    let expected = format!(
        "{left} calls, {} legs, {} records, ",
        2 * left,
        before.old_records
    );
    assert!(
        last.contains(&expected),
        "the run said {last:?}, not {expected:?}"
    );
    assert_eq!(calls_metric(&rt, &server), RECENT_CALLS);
    server.kill();

    let at_end = check_whole(dir.path(), cutoff);
    check_recent_kept(&at_end);
    assert_eq!(at_end.old_calls, 0, "{at_end:?}");
    assert_eq!(at_end.old_records, 0, "{at_end:?}");
    assert_eq!(at_end.orphans, 0, "{at_end:?}");
    assert_eq!(at_end.old_statistics_hours, 0, "{at_end:?}");
    println!("the run after: {last}");
}

/// Waits for the removal to end; the Data page's line of the last run.
async fn last_run(addr: SocketAddr, session: &str) -> String {
    let start = std::time::Instant::now();
    loop {
        let (status, _, page) = console(addr, "GET", "/admin/data", Some(session), &[]).await;
        assert_eq!(status, 200);
        if !page.contains(r#"id="running""#) {
            let at = page.find(r#"id="last-run">"#).expect("the last run") + 14;
            return page[at..].split('<').next().unwrap().to_owned();
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "the removal did not end"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
