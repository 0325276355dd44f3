//! Schema migrations of the two database files, each tracked with its own
//! `PRAGMA user_version`.
//!
//! `cdrhub.db` holds what senders sent (the journal, streams, gaps and sender
//! statistics): it is synced at every commit. `calls.db` holds calls and legs,
//! derived from the journal by the correlator thread: it can always be rebuilt
//! from the journal, so it is committed without waiting for the disk, and a
//! second file lets the two be written at the same time.

use rusqlite::Connection;

/// Each entry moves `cdrhub.db` one version up; never edit a released one.
const JOURNAL_MIGRATIONS: &[&str] = &[
    r#"
-- A receiver URL and session of a sender (CMS numbers records per receiver
-- and session). `receiver` '' stands for the session across all receivers.
-- What is the same for every record of a stream is kept here, not per record.
CREATE TABLE streams (
    id           INTEGER PRIMARY KEY,
    source       TEXT NOT NULL,
    receiver     TEXT NOT NULL,
    session      TEXT NOT NULL,
    sender       TEXT NOT NULL,
    call_bridge  TEXT,
    max_seq      INTEGER,
    UNIQUE (source, receiver, session)
);

-- Every accepted record, exactly as received: the one copy of what senders
-- sent. Calls and legs (calls.db) are derived from it and rebuilt from it.
CREATE TABLE journal (
    id              INTEGER PRIMARY KEY,
    stream          INTEGER NOT NULL,
    seq             INTEGER NOT NULL,
    session_stream  INTEGER NOT NULL,
    alt_seq         INTEGER,
    received_at     INTEGER NOT NULL,
    event_time      INTEGER NOT NULL,
    event_type      TEXT NOT NULL,
    subject         TEXT,
    payload         BLOB NOT NULL,
    -- What makes a record the same record when it is sent again: the
    -- session's stream and correlatorIndex (unique across every receiver of
    -- the session), or, without one, the receiver's stream and recordIndex.
    dedup_stream    INTEGER NOT NULL,
    dedup_seq       INTEGER NOT NULL
);
CREATE UNIQUE INDEX journal_dedup ON journal(dedup_stream, dedup_seq);
-- No index on subject: ids are random, and an index on them would dirty a
-- random page at every insert. A call lists its journal ids instead.

CREATE TABLE gaps (
    id             INTEGER PRIMARY KEY,
    source         TEXT NOT NULL,
    sender         TEXT NOT NULL,
    receiver       TEXT NOT NULL,
    session        TEXT NOT NULL,
    kind           TEXT NOT NULL,
    first_missing  INTEGER,
    last_missing   INTEGER,
    missing        INTEGER NOT NULL,
    filled         INTEGER NOT NULL DEFAULT 0,
    detected_at    INTEGER NOT NULL,
    at_index       INTEGER NOT NULL
);
CREATE INDEX gaps_session ON gaps(source, receiver, session);

CREATE TABLE senders (
    source              TEXT NOT NULL,
    sender              TEXT NOT NULL,
    first_seen          INTEGER,
    last_record_at      INTEGER,
    records             INTEGER NOT NULL DEFAULT 0,
    duplicates          INTEGER NOT NULL DEFAULT 0,
    rejected_documents  INTEGER NOT NULL DEFAULT 0,
    last_rejection      TEXT,
    gaps                INTEGER NOT NULL DEFAULT 0,
    missing_records     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (source, sender)
) WITHOUT ROWID;
"#,
    // Calls and legs moved to calls.db; it is rebuilt from the journal.
    r#"
DROP TABLE IF EXISTS calls;
DROP TABLE IF EXISTS legs;
DROP TABLE IF EXISTS call_keys;
DROP TABLE IF EXISTS meta;
"#,
    // Console and API accounts (issue 3). Only hashes are kept: argon2id
    // for passwords, SHA-256 for API tokens (they are long random strings).
    r#"
CREATE TABLE users (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    role           TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    disabled       INTEGER NOT NULL DEFAULT 0,
    language       TEXT NOT NULL DEFAULT 'en',
    created_at     INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL,
    token_hash  BLOB NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

-- Every login, logout, failed login and change, with who and from where.
CREATE TABLE audit (
    id         INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    role       TEXT,
    client_ip  TEXT,
    operation  TEXT NOT NULL,
    target     TEXT
);
CREATE INDEX audit_at ON audit(at);
"#,
    // Console sessions, failed logins per client address, and settings
    // changed in the console (seed 002, "Web Service").
    r#"
CREATE TABLE sessions (
    id_hash     BLOB PRIMARY KEY,
    user_name   TEXT NOT NULL,
    csrf        TEXT NOT NULL,
    client_ip   TEXT,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE login_failures (
    client_ip      TEXT PRIMARY KEY,
    failures       INTEGER NOT NULL,
    last_login_id  TEXT NOT NULL,
    last_at        INTEGER NOT NULL,
    blocked_at     INTEGER,
    blocked_until  INTEGER
) WITHOUT ROWID;

CREATE TABLE settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
) WITHOUT ROWID;
"#,
    // Calls an operator ended by hand because their end records never came
    // (issue 3, point 6), by the hashed source ids of the call (`CallKey`):
    // call ids change when calls are rebuilt from the journal, source ids
    // do not.
    r#"
CREATE TABLE forced_ends (
    key    INTEGER PRIMARY KEY,
    at     INTEGER NOT NULL,
    actor  TEXT NOT NULL
);
"#,
    // The gateways of the event feed and their log (issue 5; seed 001,
    // "Login log"), written with the lines that caused them.
    r#"
CREATE TABLE gateway_log (
    id       INTEGER PRIMARY KEY,
    at       INTEGER NOT NULL,
    gateway  TEXT,
    kind     TEXT NOT NULL,
    address  TEXT NOT NULL,
    text     TEXT NOT NULL
);
CREATE INDEX gateway_log_at ON gateway_log(at);
CREATE INDEX gateway_log_gateway ON gateway_log(gateway, at);

CREATE TABLE gateways (
    name            TEXT PRIMARY KEY,
    gateway_id      TEXT NOT NULL,
    mac             TEXT NOT NULL,
    address         TEXT NOT NULL,
    public_address  TEXT,
    fxs             INTEGER NOT NULL,
    fxo             INTEGER NOT NULL,
    isdn            INTEGER NOT NULL,
    call_ref        INTEGER NOT NULL,
    clock           TEXT NOT NULL,
    clock_offset_s  INTEGER,
    last_login      INTEGER NOT NULL,
    last_seen       INTEGER NOT NULL,
    online          INTEGER NOT NULL
) WITHOUT ROWID;
"#,
];

/// Each entry moves `calls.db` one version up; never edit a released one.
const CALLS_MIGRATIONS: &[&str] = &[
    r#"
-- Journal rows up to `correlated_upto` are reflected in calls and legs.
CREATE TABLE correlation_state (
    key    TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO correlation_state (key, value) VALUES ('correlated_upto', 0);

CREATE TABLE calls (
    id               TEXT PRIMARY KEY,
    source           TEXT NOT NULL,
    sender           TEXT NOT NULL,
    kind             TEXT NOT NULL,
    caller           TEXT,
    dialed           TEXT,
    destination      TEXT,
    direction        TEXT,
    started_at       INTEGER NOT NULL,
    answered_at      INTEGER,
    ended_at         INTEGER,
    duration_s       INTEGER,
    talk_s           INTEGER,
    disposition      TEXT,
    cause            TEXT,
    media            TEXT,
    legs             INTEGER NOT NULL,
    legs_completed   INTEGER,
    max_active_legs  INTEGER,
    flags            TEXT NOT NULL,
    -- Source fields of the call (JSON).
    details          TEXT NOT NULL,
    -- Journal ids of every record of the call (JSON array): the call and its
    -- legs are rebuilt from them.
    records          TEXT NOT NULL
);
CREATE INDEX calls_started ON calls(started_at, id);

-- Clustered by call: a call's legs are written and read together, and call
-- ids grow with time, so new legs go to the end of the table.
CREATE TABLE legs (
    call_id          TEXT NOT NULL,
    id               TEXT NOT NULL,
    source_leg_id    TEXT NOT NULL,
    remote_party     TEXT,
    local_address    TEXT,
    display_name     TEXT,
    direction        TEXT,
    leg_type         TEXT,
    sip_call_id      TEXT,
    started_at       INTEGER,
    connected_at     INTEGER,
    ended_at         INTEGER,
    duration_s       INTEGER,
    reason           TEXT,
    remote_teardown  INTEGER,
    -- Media statistics, alarms and details are derived from the call's
    -- records when the call is read.
    disposition      TEXT,
    PRIMARY KEY (call_id, id)
) WITHOUT ROWID;

-- Source ids (CMS call, leg, correlator, recording ids) to the call they
-- belong to. When calls merge, the merged call's keys are written again.
CREATE TABLE call_keys (
    key      TEXT PRIMARY KEY,
    call_id  TEXT NOT NULL
) WITHOUT ROWID;
"#,
    // Call keys by a 64-bit hash of the CMS id (`CallKey::hash`) instead of
    // its text: an integer B-tree a third the size, so each flush dirties
    // fewer of its random pages. The old keys cannot be converted, so calls
    // and legs are rebuilt from the journal.
    r#"
DROP TABLE call_keys;
CREATE TABLE call_keys (
    key      INTEGER PRIMARY KEY,
    call_id  TEXT NOT NULL
);
DELETE FROM calls;
DELETE FROM legs;
UPDATE correlation_state SET value = 0 WHERE key = 'correlated_upto';
"#,
    // Hourly statistics kept as calls are written (rollup.rs); the calls
    // already written have none, so everything is rebuilt from the journal.
    r#"
CREATE TABLE stats_hourly (
    source          TEXT NOT NULL,
    sender          TEXT NOT NULL,
    hour            INTEGER NOT NULL,
    attempts        INTEGER NOT NULL,
    answered        INTEGER NOT NULL,
    video_attempts  INTEGER NOT NULL,
    video_answered  INTEGER NOT NULL,
    busy            INTEGER NOT NULL,
    no_answer       INTEGER NOT NULL,
    rejected        INTEGER NOT NULL,
    failed          INTEGER NOT NULL,
    cancelled       INTEGER NOT NULL,
    talk_s          INTEGER NOT NULL,
    PRIMARY KEY (source, sender, hour)
) WITHOUT ROWID;
CREATE TABLE stats_events (
    source    TEXT NOT NULL,
    sender    TEXT NOT NULL,
    at        INTEGER NOT NULL,
    a_start   INTEGER NOT NULL,
    a_end     INTEGER NOT NULL,
    c_start   INTEGER NOT NULL,
    c_end     INTEGER NOT NULL,
    va_start  INTEGER NOT NULL,
    va_end    INTEGER NOT NULL,
    vc_start  INTEGER NOT NULL,
    vc_end    INTEGER NOT NULL,
    PRIMARY KEY (source, sender, at)
) WITHOUT ROWID;
CREATE INDEX stats_events_at ON stats_events(at);
CREATE TABLE stats_level (
    source           TEXT NOT NULL,
    sender           TEXT NOT NULL,
    day              INTEGER NOT NULL,
    attempts         INTEGER NOT NULL,
    connected        INTEGER NOT NULL,
    video_attempts   INTEGER NOT NULL,
    video_connected  INTEGER NOT NULL,
    PRIMARY KEY (source, sender, day)
) WITHOUT ROWID;
DELETE FROM calls;
DELETE FROM legs;
DELETE FROM call_keys;
UPDATE correlation_state SET value = 0 WHERE key = 'correlated_upto';
"#,
    // Calls in progress, for the live view, without reading the others.
    r#"
CREATE INDEX calls_open ON calls(started_at) WHERE ended_at IS NULL;
"#,
    // A day's events for every sender come from this index alone, without a
    // lookup in the table per second (93 -> 33 ms a day at 10 million legs,
    // example query_speed).
    r#"
DROP INDEX stats_events_at;
CREATE INDEX stats_events_at ON stats_events(at, a_start, a_end, c_start, c_end, va_start, va_end, vc_start, vc_end);
"#,
    // Every party of a call and its legs in one column of the call, one a
    // line: a party search tests the day's calls, not each of their legs
    // (a day at 10 million legs: 213 -> 37 ms with the counts below, example
    // query_speed).
    r#"
ALTER TABLE calls ADD COLUMN parties TEXT NOT NULL DEFAULT '';
UPDATE calls SET parties = concat_ws(char(10), caller, dialed, destination,
    (SELECT group_concat(concat_ws(char(10), remote_party, local_address, display_name), char(10))
     FROM legs WHERE legs.call_id = calls.id));
"#,
    // Agent state intervals of contact-centre agents (issue 4): each state
    // from the AGENT_STATE_EVENT that entered it to the next.
    r#"
CREATE TABLE agent_states (
    source       TEXT NOT NULL,
    sender       TEXT NOT NULL,
    agent        TEXT NOT NULL,
    extension    TEXT,
    state        INTEGER NOT NULL,
    reason_code  INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    ended_at     INTEGER,
    journal_id   INTEGER NOT NULL,
    PRIMARY KEY (sender, agent, started_at)
) WITHOUT ROWID;
CREATE INDEX agent_states_started ON agent_states(started_at);
"#,
    // SIP registrations (issue 6): each binding of an extension from the
    // REGISTER that made it to its expiry or unregistration; refreshes
    // move the expiry on.
    r#"
CREATE TABLE sip_registrations (
    sender        TEXT NOT NULL,
    extension     TEXT NOT NULL,
    contact       TEXT NOT NULL,
    source        TEXT,
    user_agent    TEXT,
    login_at      INTEGER NOT NULL,
    refreshed_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    unregistered  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (sender, extension, contact, login_at)
) WITHOUT ROWID;
CREATE INDEX sip_registrations_expires ON sip_registrations(expires_at);
"#,
    // Calls by their end (issue 7): scheduled exports send the calls that
    // ended in a period; webhooks, the ended calls written since they last
    // looked (written_at: when the correlator last wrote the row).
    r#"
CREATE INDEX calls_ended ON calls(ended_at, id) WHERE ended_at IS NOT NULL;
ALTER TABLE calls ADD COLUMN written_at INTEGER;
CREATE INDEX calls_written ON calls(written_at, id) WHERE ended_at IS NOT NULL;
"#,
];

/// The layout version of `cdrhub.db` this build writes.
pub fn journal_version() -> i64 {
    JOURNAL_MIGRATIONS.len() as i64
}

pub fn migrate_journal(conn: &mut Connection) -> rusqlite::Result<()> {
    migrate(conn, JOURNAL_MIGRATIONS)
}

pub fn migrate_calls(conn: &mut Connection) -> rusqlite::Result<()> {
    migrate(conn, CALLS_MIGRATIONS)
}

fn migrate(conn: &mut Connection, migrations: &[&str]) -> rusqlite::Result<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in migrations.iter().enumerate().skip(current.max(0) as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A calls.db of the first layout: text call keys that cannot be
    /// converted. Migrating it empties calls and legs and rewinds the
    /// watermark, so the next start rebuilds them from the journal.
    #[test]
    fn calls_db_of_the_first_layout_is_rebuilt_from_the_journal() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(CALLS_MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute_batch(
            "INSERT INTO calls (id, source, sender, kind, started_at, legs, flags, details, records) \
             VALUES ('c1', 'cms', 's', 'conference', 0, 1, '[]', '{}', '[1]');
             INSERT INTO legs (call_id, id, source_leg_id) VALUES ('c1', 'l1', 'l1');
             INSERT INTO call_keys (key, call_id) VALUES ('cms:leg:l1', 'c1');
             UPDATE correlation_state SET value = 42;",
        )
        .unwrap();
        migrate_calls(&mut conn).unwrap();
        let count = |table: &str| -> i64 {
            conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(
            (count("calls"), count("legs"), count("call_keys")),
            (0, 0, 0)
        );
        let upto: i64 = conn
            .query_row(
                "SELECT value FROM correlation_state WHERE key = 'correlated_upto'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(upto, 0);
        conn.execute(
            "INSERT INTO call_keys (key, call_id) VALUES (?1, 'c2')",
            [-7_i64],
        )
        .unwrap();
    }
}
