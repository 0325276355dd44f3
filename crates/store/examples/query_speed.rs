//! Console query times on a large store (issue 3, point 9): a filtered CDR
//! search page and a day of hourly statistics, with LEGS legs in calls.db.
//! `cargo run --release -p cdrhub-store --example query_speed -- [LEGS] [DIR]`
//!
//! The calls, legs and statistics rows are written straight into calls.db
//! (five legs a call, eight senders, 30 days), far faster than ingesting
//! the records that would make them; the query code timed is the store's
//! own, as the console calls it. A DIR already filled is reused.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use cdrhub_model::Timestamp;
use cdrhub_store::{CallFilter, CallSort, SqliteOptions, SqliteStore, Store};
use rusqlite::{Connection, params};

const DAYS: i64 = 30;
const SENDERS: usize = 8;
/// 2026-11-01T00:00:00Z, seconds.
const FIRST_DAY: i64 = 1_793_491_200;

fn fill(dir: &std::path::Path, legs: u64) -> rusqlite::Result<()> {
    let calls_total = legs / 5;
    let conn = Connection::open(dir.join("calls.db"))?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.execute_batch("BEGIN")?;
    let mut call = conn.prepare(
        "INSERT INTO calls (id, source, sender, kind, caller, dialed, destination, direction, started_at, \
         answered_at, ended_at, duration_s, talk_s, disposition, cause, media, legs, legs_completed, \
         max_active_legs, flags, details, records, parties) VALUES (?1, 'cms', ?2, 'conference', ?3, ?4, ?5, \
         ?6, ?7, ?8, ?9, ?10, ?11, ?12, NULL, 'audio', 5, 5, 5, '[]', '{}', '[]', ?13)",
    )?;
    let mut leg = conn.prepare(
        "INSERT INTO legs (call_id, id, source_leg_id, remote_party, local_address, display_name, direction, \
         started_at, connected_at, ended_at, duration_s, reason, disposition) \
         VALUES (?1, ?2, ?2, ?3, ?4, ?5, 'incoming', ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    let mut hourly: HashMap<(usize, i64), [i64; 3]> = HashMap::new();
    let mut events: HashMap<(usize, i64), [i64; 4]> = HashMap::new();
    let span = DAYS * 86_400;
    for i in 0..calls_total as i64 {
        let sender = (i as usize * 7) % SENDERS;
        let start = FIRST_DAY + i * span / calls_total as i64;
        let answered = i % 4 != 0;
        let duration = 30 + (i * 37) % 900;
        let end = start + duration;
        let answer = answered.then_some(start + 5);
        let (disposition, reason) = if answered {
            ("answered", "clientInitiatedTeardown")
        } else {
            ("no_answer", "ringingTimeout")
        };
        let id = format!("{:012x}-7000-8000-{:012x}", start, i);
        let caller = format!("sip:user{}@example.com", i % 100_000);
        let room = format!("room{}@meet.example.com", i % 5_000);
        let party = |l: i64| format!("sip:party{}@example.com", (i * 5 + l) % 1_000_000);
        let mut parties = vec![caller.clone(), room.clone(), format!("Room {}", i % 5_000)];
        for l in 0..5 {
            parties.push(party(l));
            parties.push(format!("Party {l}"));
        }
        call.execute(params![
            id,
            format!("callbridge-{sender}"),
            caller,
            room,
            format!("Room {}", i % 5_000),
            if i % 2 == 0 { "in" } else { "out" },
            start * 1000,
            answer.map(|a| a * 1000),
            end * 1000,
            duration,
            answer.map(|a| end - a),
            disposition,
            parties.join("\n"),
        ])?;
        for l in 0..5 {
            leg.execute(params![
                id,
                format!("{id}-{l}"),
                party(l),
                room,
                format!("Party {l}"),
                start * 1000,
                answer.map(|a| a * 1000),
                end * 1000,
                duration,
                reason,
                disposition,
            ])?;
        }
        let h = hourly
            .entry((sender, start.div_euclid(3600) * 3600))
            .or_default();
        h[0] += 1;
        h[1] += i64::from(answered);
        h[2] += answer.map_or(0, |a| end - a);
        events.entry((sender, start)).or_default()[0] += 1;
        events.entry((sender, end)).or_default()[1] += 1;
        if let Some(a) = answer {
            events.entry((sender, a)).or_default()[2] += 1;
            events.entry((sender, end)).or_default()[3] += 1;
        }
    }
    for ((sender, hour), h) in hourly {
        conn.execute(
            "INSERT INTO stats_hourly VALUES ('cms', ?1, ?2, ?3, ?4, 0, 0, 0, ?5, 0, 0, 0, ?6)",
            params![
                format!("callbridge-{sender}"),
                hour,
                h[0],
                h[1],
                h[0] - h[1],
                h[2]
            ],
        )?;
    }
    for ((sender, at), e) in events {
        conn.execute(
            "INSERT INTO stats_events VALUES ('cms', ?1, ?2, ?3, ?4, ?5, ?6, 0, 0, 0, 0)",
            params![format!("callbridge-{sender}"), at, e[0], e[1], e[2], e[3]],
        )?;
    }
    // Every call of the fill has ended: the levels at the days' ends are 0.
    for sender in 0..SENDERS {
        for day in 0..DAYS {
            conn.execute(
                "INSERT INTO stats_level VALUES ('cms', ?1, ?2, 0, 0, 0, 0)",
                params![format!("callbridge-{sender}"), FIRST_DAY + day * 86_400],
            )?;
        }
    }
    conn.execute_batch("COMMIT")?;
    conn.execute_batch("ANALYZE")
}

/// A query to time, by name.
type Case<'a> = (&'static str, Box<dyn FnMut() + 'a>);

/// The median of `runs` timings of `f`, in ms.
fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[runs / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let legs: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let dir = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join(format!("cdrhub-query-speed-{legs}")));
    let fresh = !dir.join("calls.db").exists();
    // Create the schema (and let the store take its lock) once.
    drop(SqliteStore::open(&dir, SqliteOptions::default()).expect("the store opens"));
    if fresh {
        let t = Instant::now();
        fill(&dir, legs).expect("the fill");
        eprintln!(
            "filled {} with {legs} legs in {:.0} s",
            dir.display(),
            t.elapsed().as_secs_f64()
        );
    }
    let store = &SqliteStore::open(&dir, SqliteOptions::default()).expect("the store opens");
    let day = Timestamp((FIRST_DAY + 14 * 86_400) * 1000);
    let next = Timestamp(day.0 + 86_400_000);
    let page = |filter: CallFilter, sort: CallSort| {
        let f = CallFilter {
            limit: 15,
            ..filter
        };
        move || {
            store.search_calls(&f, sort, true, 0).expect("a search");
        }
    };
    let cases: Vec<Case> = vec![
        (
            "search: one day, failed calls, newest first",
            Box::new(page(
                CallFilter {
                    from: Some(day),
                    to: Some(next),
                    answered: Some(false),
                    ..Default::default()
                },
                CallSort::StartedAt,
            )),
        ),
        (
            "search: one day, one sender, by caller",
            Box::new(page(
                CallFilter {
                    from: Some(day),
                    to: Some(next),
                    sender: Some("callbridge-3".into()),
                    ..Default::default()
                },
                CallSort::Caller,
            )),
        ),
        (
            "search: one day, party number",
            Box::new(page(
                CallFilter {
                    from: Some(day),
                    to: Some(next),
                    q: Some("party4242".into()),
                    ..Default::default()
                },
                CallSort::StartedAt,
            )),
        ),
        (
            "search: everything, newest first",
            Box::new(page(CallFilter::default(), CallSort::StartedAt)),
        ),
        (
            "statistics: a day, all senders",
            Box::new(|| {
                store.day_stats(day, None, None).expect("the day");
            }),
        ),
        (
            "statistics: a day, one sender",
            Box::new(|| {
                store
                    .day_stats(day, Some("cms"), Some("callbridge-3"))
                    .expect("the day");
            }),
        ),
    ];
    println!(
        "{legs} legs in calls.db; median of 5 runs, store time (the console adds page rendering)"
    );
    for (name, mut f) in cases {
        f();
        println!("{:>9.1} ms  {name}", median_ms(5, &mut f));
    }
}
