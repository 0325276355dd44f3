//! Accounts on a real PostgreSQL server: the behaviours of the SQLite
//! accounts, plus what sharing one database between processes adds.
//!
//! The server is the machine's own (127.0.0.1:5432, trust authentication),
//! or the one `CDRHUB_TEST_POSTGRES` names (a URL of a database the user may
//! create databases from). Each test works in a database of its own,
//! created for it and dropped at its end, even when it fails.

use std::sync::Barrier;

use cdrhub_model::{Role, Timestamp};
use cdrhub_store::postgres::{PgAccounts, PgPool};
use cdrhub_store::{Accounts, AuditEntry, AuditFilter, LoginFailures, StoreError};

use cdrhub_store::postgres::testing::{TestDb, admin};

fn open(db: &TestDb) -> PgAccounts {
    PgAccounts::open(&db.url()).expect("open the accounts")
}

fn entry(actor: &str, operation: &str, target: Option<&str>, ip: Option<&str>) -> AuditEntry {
    AuditEntry {
        actor: actor.into(),
        role: Some(Role::Admin),
        client_ip: ip.map(Into::into),
        operation: operation.into(),
        target: target.map(Into::into),
    }
}

#[test]
fn users_and_tokens_are_kept_by_name_and_hash() {
    let db = TestDb::new();
    let accounts = open(&db);
    assert_eq!(accounts.user_count().unwrap(), 0);
    accounts
        .add_user("admin", Role::Admin, "$argon2id$x")
        .unwrap();
    let taken = accounts.add_user("admin", Role::Viewer, "$argon2id$y");
    match taken {
        Err(StoreError::Conflict(message)) => {
            assert_eq!(message, "a user named \"admin\" already exists")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(accounts.user_count().unwrap(), 1);
    let admin = accounts.user("admin").unwrap().unwrap();
    assert_eq!(
        (
            admin.role,
            admin.disabled,
            admin.password_hash.as_str(),
            admin.language.as_str()
        ),
        (Role::Admin, false, "$argon2id$x", "en")
    );
    assert!(accounts.user("nobody").unwrap().is_none());
    assert!(accounts.set_language("admin", "de").unwrap());
    assert!(!accounts.set_language("nobody", "de").unwrap());
    assert_eq!(accounts.user("admin").unwrap().unwrap().language, "de");
    accounts
        .add_user("bob", Role::Viewer, "$argon2id$b")
        .unwrap();
    let names: Vec<String> = accounts
        .users()
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["admin", "bob"]);

    accounts
        .add_token("grafana", Role::Viewer, &[7; 32])
        .unwrap();
    assert!(matches!(
        accounts.add_token("grafana", Role::Admin, &[9; 32]),
        Err(StoreError::Conflict(_))
    ));
    assert!(
        matches!(
            accounts.add_token("other", Role::Admin, &[7; 32]),
            Err(StoreError::Conflict(_))
        ),
        "the same secret twice"
    );
    let token = accounts.token(&[7; 32]).unwrap().unwrap();
    assert_eq!((token.name.as_str(), token.role), ("grafana", Role::Viewer));
    assert!(accounts.token(&[8; 32]).unwrap().is_none());
    assert_eq!(accounts.tokens().unwrap(), [token]);
    assert!(accounts.revoke_token("grafana").unwrap());
    assert!(!accounts.revoke_token("grafana").unwrap());
    assert!(accounts.token(&[7; 32]).unwrap().is_none());

    accounts
        .audit(&AuditEntry {
            actor: "cli".into(),
            role: None,
            client_ip: None,
            operation: "token revoke".into(),
            target: Some("grafana".into()),
        })
        .unwrap();
    let all = accounts
        .audit_log(&AuditFilter {
            limit: 10,
            ..AuditFilter::default()
        })
        .unwrap();
    assert_eq!(
        (all.total, all.matching, all.entries[0].operation.as_str()),
        (1, 1, "token revoke")
    );
    assert_eq!(all.entries[0].role, None);
    let none = accounts
        .audit_log(&AuditFilter {
            q: Some("50%_off".into()),
            limit: 10,
            ..AuditFilter::default()
        })
        .unwrap();
    assert_eq!((none.total, none.matching, none.entries.len()), (1, 0, 0));
    let found = accounts
        .audit_log(&AuditFilter {
            q: Some("GRAF".into()),
            limit: 10,
            ..AuditFilter::default()
        })
        .unwrap();
    assert_eq!(found.matching, 1, "the search ignores case");
}

#[test]
fn an_address_is_blocked_after_its_failures_until_the_block_ends() {
    let db = TestDb::new();
    let accounts = open(&db);
    let t0 = Timestamp(1_800_000_000_000);
    let fail = |t: Timestamp| {
        accounts
            .record_login_failure("192.0.2.7", "root", t, 5, 60)
            .unwrap()
    };
    for n in 1..=4 {
        assert_eq!(
            fail(t0),
            LoginFailures {
                failures: n,
                blocked_until: None
            }
        );
    }
    let blocked = fail(t0);
    assert_eq!(blocked.failures, 5);
    let until = blocked.blocked_until.expect("blocked at the fifth");
    assert_eq!(until.0 - t0.0, 60 * 60_000);
    assert_eq!(
        accounts.blocked_until("192.0.2.7", t0).unwrap(),
        Some(until)
    );
    assert_eq!(accounts.blocked_until("192.0.2.8", t0).unwrap(), None);
    let list = accounts.blocked_ips(t0).unwrap();
    assert_eq!(
        (
            list.len(),
            list[0].login_id.as_str(),
            list[0].blocked_at,
            list[0].blocked_until
        ),
        (1, "root", t0, until)
    );
    // Failing while blocked does not extend the block.
    let later = Timestamp(t0.0 + 1000);
    assert_eq!(
        accounts
            .record_login_failure("192.0.2.7", "admin", later, 5, 60)
            .unwrap()
            .blocked_until,
        Some(until)
    );
    let list = accounts.blocked_ips(t0).unwrap();
    assert_eq!(
        (list[0].login_id.as_str(), list[0].blocked_at),
        ("admin", t0),
        "the last login id is kept, the block's start too"
    );
    // Once it has ended, counting starts again.
    assert_eq!(accounts.blocked_until("192.0.2.7", until).unwrap(), None);
    assert!(accounts.blocked_ips(until).unwrap().is_empty());
    assert_eq!(
        fail(until),
        LoginFailures {
            failures: 1,
            blocked_until: None
        }
    );
    assert!(
        !accounts.unblock("192.0.2.7").unwrap(),
        "not blocked any more"
    );
    for _ in 0..4 {
        fail(until);
    }
    assert!(accounts.unblock("192.0.2.7").unwrap());
    assert_eq!(accounts.blocked_until("192.0.2.7", until).unwrap(), None);

    // A successful login forgets the failures.
    for _ in 0..4 {
        fail(until);
    }
    accounts.clear_login_failures("192.0.2.7").unwrap();
    assert_eq!(fail(until).failures, 1);
}

#[test]
fn a_session_ends_with_its_expiry_its_deletion_or_its_user() {
    let db = TestDb::new();
    let accounts = open(&db);
    accounts
        .add_user("ann", Role::Supervisor, "$argon2id$x")
        .unwrap();
    let now = Timestamp(1_800_000_000_000);
    let later = Timestamp(now.0 + 1000);
    accounts
        .create_session(&[1; 32], "ann", "csrf-1", Some("127.0.0.1"), later)
        .unwrap();
    let session = accounts.session(&[1; 32], now).unwrap().unwrap();
    assert_eq!(
        (
            session.user.name.as_str(),
            session.user.role,
            session.csrf.as_str(),
            session.expires_at
        ),
        ("ann", Role::Supervisor, "csrf-1", later)
    );
    assert!(
        accounts.session(&[1; 32], later).unwrap().is_none(),
        "expired"
    );
    assert!(accounts.session(&[2; 32], now).unwrap().is_none());
    accounts.delete_session(&[1; 32]).unwrap();
    assert!(accounts.session(&[1; 32], now).unwrap().is_none());
    for id in [[3; 32], [4; 32]] {
        accounts
            .create_session(&id, "ann", "c", None, later)
            .unwrap();
    }
    assert!(
        accounts
            .set_password("ann", "$argon2id$new", Some(&[3; 32]))
            .unwrap()
    );
    assert_eq!(
        accounts.user("ann").unwrap().unwrap().password_hash,
        "$argon2id$new"
    );
    assert!(
        accounts.session(&[3; 32], now).unwrap().is_some(),
        "the changer's own session stays"
    );
    assert!(
        accounts.session(&[4; 32], now).unwrap().is_none(),
        "the others end"
    );
    assert!(accounts.set_user_disabled("ann", true).unwrap());
    assert!(
        accounts.session(&[3; 32], now).unwrap().is_none(),
        "disabled: no session"
    );
    assert!(accounts.set_user_disabled("ann", false).unwrap());
    assert!(
        accounts.session(&[3; 32], now).unwrap().is_some(),
        "enabled again"
    );
    assert!(
        accounts.set_password("ann", "$argon2id$3", None).unwrap(),
        "no session kept"
    );
    assert!(accounts.session(&[3; 32], now).unwrap().is_none());
    assert!(!accounts.set_user_disabled("nobody", true).unwrap());
    assert!(
        !accounts
            .set_password("nobody", "$argon2id$x", None)
            .unwrap()
    );
    assert_eq!(accounts.users().unwrap().len(), 1);
}

#[test]
fn the_audit_log_pages_newest_first_and_filters() {
    let db = TestDb::new();
    let accounts = open(&db);
    for i in 0..25 {
        let ip = if i % 5 == 0 {
            "198.51.100.9"
        } else {
            "192.0.2.1"
        };
        accounts
            .audit(&entry(
                if i % 2 == 0 { "Alice" } else { "bob" },
                &format!("op {i:02}"),
                (i == 7).then_some("50%_off\\x"),
                Some(ip),
            ))
            .unwrap();
    }
    let all = accounts
        .audit_log(&AuditFilter {
            limit: 100,
            ..AuditFilter::default()
        })
        .unwrap();
    assert_eq!((all.total, all.matching, all.entries.len()), (25, 25, 25));
    let ops: Vec<&str> = all.entries.iter().map(|e| e.operation.as_str()).collect();
    assert_eq!((ops[0], ops[24]), ("op 24", "op 00"), "newest first");
    assert_eq!(all.entries[0].role.as_deref(), Some("admin"));

    // Paging.
    let page = |offset, limit| {
        accounts
            .audit_log(&AuditFilter {
                offset,
                limit,
                ..AuditFilter::default()
            })
            .unwrap()
    };
    let third = page(20, 10);
    assert_eq!((third.total, third.matching), (25, 25));
    let third: Vec<&str> = third.entries.iter().map(|e| e.operation.as_str()).collect();
    assert_eq!(third, ["op 04", "op 03", "op 02", "op 01", "op 00"]);
    assert_eq!(page(10, 3).entries[0].operation, "op 14");
    assert!(page(25, 10).entries.is_empty());
    assert!(page(0, 0).entries.is_empty());
    assert_eq!(page(u64::MAX, u64::MAX).matching, 25);

    // The search looks in the actor, operation, target and address, with
    // `%`, `_` and `\` taken literally.
    let search = |q: &str| {
        accounts
            .audit_log(&AuditFilter {
                q: Some(q.into()),
                limit: 100,
                ..AuditFilter::default()
            })
            .unwrap()
    };
    assert_eq!(search("ALICE").matching, 13);
    assert_eq!(search("op 1").matching, 10);
    assert_eq!(search("198.51.100").matching, 5);
    let odd = search("50%_off\\");
    assert_eq!(
        (odd.matching, odd.entries[0].operation.as_str()),
        (1, "op 07")
    );
    assert_eq!(search("5_%").matching, 0);
    assert_eq!(search("").matching, 25, "an empty search is no search");

    // From is inclusive, to exclusive; the times are those written.
    let times: Vec<Timestamp> = all.entries.iter().map(|e| e.at).collect();
    let pivot = times[12];
    let expect_from = times.iter().filter(|t| **t >= pivot).count() as u64;
    let expect_to = times.iter().filter(|t| **t < pivot).count() as u64;
    let filtered = |from, to| {
        accounts
            .audit_log(&AuditFilter {
                from,
                to,
                limit: 100,
                ..AuditFilter::default()
            })
            .unwrap()
    };
    let from = filtered(Some(pivot), None);
    assert_eq!((from.matching, from.total), (expect_from, 25));
    assert!(from.entries.iter().all(|e| e.at >= pivot));
    assert_eq!(filtered(None, Some(pivot)).matching, expect_to);
    assert_eq!(filtered(Some(pivot), Some(pivot)).matching, 0);
    let everything = filtered(Some(times[24]), Some(Timestamp(times[0].0 + 1)));
    assert_eq!(everything.matching, 25);
    let both = accounts
        .audit_log(&AuditFilter {
            from: Some(times[24]),
            q: Some("bob".into()),
            limit: 5,
            ..AuditFilter::default()
        })
        .unwrap();
    assert_eq!((both.matching, both.entries.len()), (12, 5));
    assert!(both.entries.iter().all(|e| e.actor == "bob"));
}

#[test]
fn settings_round_trip() {
    let db = TestDb::new();
    let accounts = open(&db);
    assert_eq!(accounts.setting("login.block_after").unwrap(), None);
    accounts.set_setting("login.block_after", "7").unwrap();
    assert_eq!(
        accounts.setting("login.block_after").unwrap().as_deref(),
        Some("7")
    );
    accounts.set_setting("login.block_after", "9").unwrap();
    accounts
        .set_setting("banner", "Grüße; DROP TABLE settings; --'")
        .unwrap();
    assert_eq!(
        accounts.setting("login.block_after").unwrap().as_deref(),
        Some("9")
    );
    assert_eq!(
        accounts.setting("banner").unwrap().as_deref(),
        Some("Grüße; DROP TABLE settings; --'")
    );
    assert_eq!(accounts.setting("nothing").unwrap(), None);
}

/// The versions in `schema_version`, in order.
fn schema_versions(db: &TestDb) -> Vec<i32> {
    let pool = PgPool::connect(&db.url(), 1).unwrap();
    let mut conn = pool.get().unwrap();
    conn.query("SELECT version FROM schema_version ORDER BY version", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn two_processes_share_one_database_and_migrate_once() {
    let db = TestDb::new();
    // Both start at the same moment on an empty database.
    let barrier = Barrier::new(2);
    let (a, b) = std::thread::scope(|s| {
        let open = || {
            barrier.wait();
            open(&db)
        };
        let a = s.spawn(open);
        let b = s.spawn(open);
        (a.join().unwrap(), b.join().unwrap())
    });
    let versions = schema_versions(&db);
    assert!(!versions.is_empty());
    assert_eq!(
        versions,
        (1..=versions.len() as i32).collect::<Vec<_>>(),
        "each migration once"
    );
    drop(open(&db));
    assert_eq!(
        schema_versions(&db),
        versions,
        "nothing to do the next time"
    );

    a.add_user("ann", Role::Admin, "$argon2id$x").unwrap();
    assert_eq!(b.user("ann").unwrap().unwrap().role, Role::Admin);
    assert!(matches!(
        b.add_user("ann", Role::Viewer, "$argon2id$y"),
        Err(StoreError::Conflict(_))
    ));
    b.set_setting("retention.days", "90").unwrap();
    assert_eq!(a.setting("retention.days").unwrap().as_deref(), Some("90"));
    let now = Timestamp(1_800_000_000_000);
    a.create_session(&[5; 32], "ann", "c", None, Timestamp(now.0 + 60_000))
        .unwrap();
    assert!(b.session(&[5; 32], now).unwrap().is_some());
    b.set_user_disabled("ann", true).unwrap();
    assert!(
        a.session(&[5; 32], now).unwrap().is_none(),
        "disabled by the other process"
    );
    a.audit(&entry("ann", "login", None, None)).unwrap();
    b.audit(&entry("ann", "logout", None, None)).unwrap();
    let log = a
        .audit_log(&AuditFilter {
            limit: 10,
            ..AuditFilter::default()
        })
        .unwrap();
    let ops: Vec<&str> = log.entries.iter().map(|e| e.operation.as_str()).collect();
    assert_eq!(ops, ["logout", "login"]);
}

#[test]
fn failures_counted_by_two_processes_at_once_all_count() {
    let db = TestDb::new();
    let (a, b) = (open(&db), open(&db));
    let now = Timestamp(1_800_000_000_000);
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        for accounts in [&a, &b] {
            let barrier = &barrier;
            s.spawn(move || {
                barrier.wait();
                for _ in 0..20 {
                    accounts
                        .record_login_failure("192.0.2.9", "root", now, 1000, 60)
                        .unwrap();
                }
            });
        }
    });
    let next = a
        .record_login_failure("192.0.2.9", "root", now, 1000, 60)
        .unwrap();
    assert_eq!(next.failures, 41);
}

#[test]
fn accounts_answer_on_a_blocking_thread_of_the_runtime() {
    let db = TestDb::new();
    let accounts = std::sync::Arc::new(open(&db));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let count = rt.block_on(async {
        let accounts = accounts.clone();
        tokio::task::spawn_blocking(move || {
            accounts.add_user("ann", Role::Viewer, "$argon2id$x")?;
            accounts.user_count()
        })
        .await
        .unwrap()
    });
    assert_eq!(count.unwrap(), 1);
}

#[test]
fn a_server_that_does_not_answer_is_unavailable_and_named() {
    // Port 1 on loopback: nothing listens there.
    match PgAccounts::open("postgres://postgres@127.0.0.1:1/cdrhub") {
        Err(StoreError::Unavailable(message)) => {
            assert!(
                message.contains("cannot connect to the PostgreSQL server at 127.0.0.1:1"),
                "{message}"
            );
            assert!(message.contains("\"cdrhub\""), "{message}");
        }
        other => panic!("{:?}", other.err()),
    }
    let db = TestDb::new();
    let missing = db.url().replace(&db.name, "cdrhub_test_missing");
    match PgAccounts::open(&missing) {
        Err(StoreError::Unavailable(message)) => {
            assert!(message.contains("does not exist"), "{message}")
        }
        other => panic!("{:?}", other.err()),
    }
    assert!(matches!(
        PgAccounts::open("postgres://[bad"),
        Err(StoreError::Open(_))
    ));
}

#[test]
fn a_connection_the_server_ended_is_replaced() {
    let db = TestDb::new();
    let pool = PgPool::connect(&db.url(), 1).unwrap();
    let accounts = PgAccounts::with_pool(pool.clone()).unwrap();
    let pid: i32 = pool
        .get()
        .unwrap()
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    admin()
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .unwrap();
    // The first call may still find the old connection and fail; the pool
    // then forgets it and the next call opens a new one.
    if let Err(e) = accounts.user_count() {
        assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
        assert!(e.to_string().contains("127.0.0.1:5432"), "{e}");
    }
    assert_eq!(accounts.user_count().unwrap(), 0);
}

/// Debian's cluster serves TLS with its snake-oil certificate, made for
/// `localhost`; elsewhere this test has nothing to check.
const SNAKEOIL: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";

#[test]
fn tls_is_used_and_the_server_certificate_checked() {
    let db = TestDb::new();
    let ssl_on: String = admin().query_one("SHOW ssl", &[]).unwrap().get(0);
    if ssl_on != "on" || !std::path::Path::new(SNAKEOIL).exists() {
        eprintln!("the server has no TLS with {SNAKEOIL}: nothing to check");
        return;
    }
    let url = format!(
        "{}?sslmode=require&sslrootcert={SNAKEOIL}",
        db.url_on("localhost")
    );
    let pool = PgPool::connect(&url, 2).unwrap();
    let accounts = PgAccounts::with_pool(pool.clone()).unwrap();
    accounts
        .add_user("ann", Role::Viewer, "$argon2id$x")
        .unwrap();
    let encrypted: bool = pool
        .get()
        .unwrap()
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(encrypted);

    // The certificate names localhost, not 127.0.0.1: refused.
    let wrong_name = format!(
        "{}?sslmode=verify-full&sslrootcert={SNAKEOIL}",
        db.url_on("127.0.0.1")
    );
    match PgAccounts::open(&wrong_name) {
        Err(StoreError::Unavailable(message)) => {
            assert!(message.contains("127.0.0.1:5432"), "{message}")
        }
        other => panic!("{:?}", other.err()),
    }
    // Without sslmode the connection is plain, and still works.
    let plain = PgPool::connect(&db.url_on("localhost"), 1).unwrap();
    let encrypted: bool = plain
        .get()
        .unwrap()
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(!encrypted);
}
