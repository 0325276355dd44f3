//! The console's login over real HTTP: sessions, CSRF, and the login
//! protection of seed 002 (audit after 3 failures, block after 5 for 60
//! minutes, the blocked-IP page and its Unblock action, the settings).

mod common;

use cdrhub_model::Role;
use common::{Client, Options, TestServer, add_user, csrf_of, log_in, signed_in};
use hyper::StatusCode;

/// Every audit entry's operation and actor, oldest first.
fn audit_log(server: &TestServer) -> Vec<(String, String)> {
    let filter = cdrhub_store::AuditFilter {
        from: None,
        to: None,
        q: None,
        offset: 0,
        limit: 100_000,
    };
    let page = server
        .with_accounts(|a| a.audit_log(&filter))
        .expect("the audit log");
    page.entries
        .into_iter()
        .rev()
        .map(|e| (e.operation, e.actor))
        .collect()
}

#[tokio::test]
async fn a_user_logs_in_gets_a_strict_cookie_and_logs_out() {
    let server = TestServer::start().await;
    add_user(&server, "ann", Role::Admin, "ann's long password");
    let mut browser = Client::plain(server.http_addr);
    assert_eq!(
        browser.get("/").await.status,
        StatusCode::SEE_OTHER,
        "to the login page"
    );

    let r = log_in(&mut browser, "ann", "ann's long password").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), Some("/"));
    let set = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("cdrhub_session="))
        .expect("a session cookie");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let home = browser.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.text().contains("ann"));

    let csrf = csrf_of(&home.text());
    let forged = browser.post_form("/logout", &[("csrf", "forged")]).await;
    assert_eq!(
        forged.status,
        StatusCode::FORBIDDEN,
        "no CSRF token, no logout"
    );
    let out = browser.post_form("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(browser.get("/").await.status, StatusCode::SEE_OTHER);
    let ops: Vec<String> = audit_log(&server).into_iter().map(|(op, _)| op).collect();
    assert_eq!(ops, ["login", "logout"]);
}

#[tokio::test]
async fn a_login_form_from_elsewhere_is_refused() {
    let server = TestServer::start().await;
    add_user(&server, "ann", Role::Admin, "ann's long password");
    let mut browser = Client::plain(server.http_addr);
    // No login page first: no form cookie to match.
    let r = browser
        .post_form(
            "/login",
            &[
                ("user", "ann"),
                ("password", "ann's long password"),
                ("csrf", "x"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(browser.cookie("cdrhub_session").is_none());
}

#[tokio::test]
async fn failed_logins_are_audited_after_three_and_block_the_address_after_five() {
    let server = TestServer::start().await;
    add_user(&server, "ann", Role::Admin, "ann's long password");
    let mut attacker = Client::plain(server.http_addr);
    for n in 1..=4 {
        let r = log_in(&mut attacker, "root", "guess").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "attempt {n}");
        assert!(r.text().contains("Wrong user name or password"));
    }
    assert_eq!(
        audit_log(&server),
        [("login failed".to_owned(), "root".to_owned())]
    );
    let fifth = log_in(&mut attacker, "root", "guess").await;
    assert!(fifth.text().contains("refused until"), "{}", fifth.text());
    // Blocked: even the right password is refused.
    let right = log_in(&mut attacker, "ann", "ann's long password").await;
    assert_eq!(right.status, StatusCode::UNAUTHORIZED);
    assert!(attacker.cookie("cdrhub_session").is_none());
    let ops: Vec<String> = audit_log(&server).into_iter().map(|(op, _)| op).collect();
    assert_eq!(
        ops,
        [
            "login failed",
            "login failed",
            "address blocked",
            "login refused (address blocked)"
        ]
    );

    // The admin (from another address in real life) sees and lifts the block.
    server
        .with_accounts(|a| a.clear_login_failures("127.0.0.1"))
        .unwrap();
    let mut admin = signed_in(&server, "ann", "ann's long password").await;
    for _ in 0..5 {
        log_in(&mut attacker, "root", "guess").await;
    }
    let page = admin.get("/admin/blocked").await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert!(
        html.contains("127.0.0.1") && html.contains("root"),
        "{html}"
    );
    let csrf = csrf_of(&html);
    let r = admin
        .post_form(
            "/admin/blocked/unblock",
            &[("csrf", &csrf), ("ip", "127.0.0.1")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        admin
            .get("/admin/blocked")
            .await
            .text()
            .contains("No address is blocked")
    );
    assert!(
        audit_log(&server)
            .iter()
            .any(|(op, actor)| op == "unblock address" && actor == "ann")
    );
    assert_eq!(
        log_in(&mut attacker, "ann", "ann's long password")
            .await
            .status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn an_admin_changes_the_login_failure_settings_and_a_viewer_may_not() {
    let server = TestServer::start().await;
    add_user(&server, "ann", Role::Admin, "ann's long password");
    add_user(&server, "vic", Role::Viewer, "vic's long password");
    let mut admin = signed_in(&server, "ann", "ann's long password").await;
    let page = admin.get("/admin/settings").await;
    let html = page.text();
    assert!(
        html.contains(r#"value="3""#)
            && html.contains(r#"value="5""#)
            && html.contains(r#"value="60""#)
    );
    let csrf = csrf_of(&html);
    let bad = admin
        .post_form(
            "/admin/settings",
            &[
                ("csrf", &csrf),
                ("audit_after", "0"),
                ("block_after", "2"),
                ("block_minutes", "1"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let ok = admin
        .post_form(
            "/admin/settings",
            &[
                ("csrf", &csrf),
                ("audit_after", "1"),
                ("block_after", "2"),
                ("block_minutes", "1"),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert!(
        admin
            .get("/admin/settings?saved=1")
            .await
            .text()
            .contains("Settings saved")
    );

    // Two failures now block.
    let mut other = Client::plain(server.http_addr);
    log_in(&mut other, "x", "y").await;
    assert!(
        log_in(&mut other, "x", "y")
            .await
            .text()
            .contains("refused until")
    );

    server
        .with_accounts(|a| a.clear_login_failures("127.0.0.1"))
        .unwrap();
    let mut viewer = signed_in(&server, "vic", "vic's long password").await;
    assert_eq!(
        viewer.get("/admin/settings").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        viewer.get("/admin/blocked").await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn the_audit_log_is_searchable_paged_and_exported() {
    let server = TestServer::start().await;
    add_user(&server, "ann", Role::Admin, "ann's long password");
    let mut attacker = Client::plain(server.http_addr);
    for _ in 0..4 {
        log_in(&mut attacker, "=cmd|' /C calc'!A0", "guess").await;
    }
    server
        .with_accounts(|a| a.clear_login_failures("127.0.0.1"))
        .unwrap();
    let mut admin = signed_in(&server, "ann", "ann's long password").await;
    for i in 0..20 {
        let csrf = csrf_of(&admin.get("/admin/settings").await.text());
        let n = (i % 5 + 1).to_string();
        admin
            .post_form(
                "/admin/settings",
                &[
                    ("csrf", &csrf),
                    ("audit_after", &n),
                    ("block_after", "5"),
                    ("block_minutes", "60"),
                ],
            )
            .await;
    }
    // 1 failed login audited, 1 login, 20 changes.
    let html = admin.get("/audit").await.text();
    assert!(html.contains("22 of 22 entries"), "{html}");
    assert_eq!(html.matches("<tr>").count(), 1 + 15, "a header and 15 rows");
    assert!(html.contains("page=2"));
    let second = admin.get("/audit?page=2").await.text();
    assert_eq!(second.matches("<tr>").count(), 1 + 7);
    let searched = admin.get("/audit?q=login").await.text();
    assert!(searched.contains("2 of 22 entries"), "{searched}");
    let today = cdrhub_model::Timestamp::now().to_rfc3339()[..10].to_owned();
    let dated = admin
        .get(&format!("/audit?from={today}&to={today}"))
        .await
        .text();
    assert!(dated.contains("22 of 22"));
    assert!(
        admin
            .get("/audit?from=2001-01-01&to=2001-01-02")
            .await
            .text()
            .contains("0 of 22")
    );
    assert!(
        admin
            .get("/audit?from=yesterday")
            .await
            .text()
            .contains("is not a date")
    );

    let csv = admin.get("/audit.csv?q=failed").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    let text = csv.text();
    assert!(
        text.starts_with("\u{feff}time,user,role,client_ip,operation,target\r\n"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 2);
    // A user name that looks like a formula stays text in a spreadsheet.
    assert!(text.contains(",'=cmd|"), "{text}");
}

/// Twenty one-leg calls on 2026-11-01 from 10:00, a minute apart: every
/// third busy, the others answered; even ones incoming, odd ones outgoing.
async fn twenty_calls(server: &mut TestServer) {
    use common::{CmsDoc, call_end, call_start, leg_connected, leg_end, leg_start};
    let mut index = 0;
    for i in 0..20u32 {
        let at = |s: u32| format!("2026-11-01T10:{i:02}:{s:02}Z");
        let (call, leg) = (common::guid(), common::guid());
        let direction = if i % 2 == 0 { "incoming" } else { "outgoing" };
        let mut doc = CmsDoc::new("5c8b1a8e-7b0e-4c3e-9d7e-4c7c4a5e9f01");
        let mut next = || {
            index += 1;
            index
        };
        doc = doc
            .record(
                "callStart",
                &at(0),
                next(),
                &call_start(&call, &format!("room{i}")),
            )
            .record(
                "callLegStart",
                &at(1),
                next(),
                &leg_start(
                    &leg,
                    &call,
                    &format!("sip:user{i}@example.com"),
                    &format!("room{i}@meet.example.com"),
                    &format!("User {i}"),
                    direction,
                ),
            );
        if i % 3 == 0 {
            doc = doc.record(
                "callLegEnd",
                &at(20),
                next(),
                &leg_end(&leg, "remoteBusy", 0),
            );
        } else {
            doc = doc
                .record("callLegUpdate", &at(3), next(), &leg_connected(&leg, &call))
                .record(
                    "callLegEnd",
                    &at(40),
                    next(),
                    &leg_end(&leg, "remoteTeardown", 37),
                );
        }
        doc = doc.record("callEnd", &at(41), next(), &call_end(&call, 1, 41));
        server.ingest(common::CMS, doc.build()).await;
    }
}

fn rows(html: &str) -> usize {
    let table = &html[html.find(r#"<table id="calls">"#).expect("the calls table")..];
    table[..table.find("</table>").unwrap()]
        .matches("<tr>")
        .count()
        - 1
}

#[tokio::test]
async fn cdr_search_filters_counts_pages_sorts_and_exports_the_filtered_set() {
    let mut server = TestServer::start().await;
    twenty_calls(&mut server).await;
    add_user(&server, "ann", Role::Admin, "ann's long password");
    let mut admin = signed_in(&server, "ann", "ann's long password").await;

    let all = admin.get("/calls").await.text();
    assert!(
        all.contains(r#"<b id="total">20</b>"#) && all.contains(r#"<b id="matching">20</b>"#),
        "{all}"
    );
    assert_eq!(rows(&all), 15, "15 rows a page");
    assert!(all.contains("page=2"));
    let second = admin.get("/calls?page=2").await.text();
    assert_eq!(rows(&second), 5);

    let failed = admin.get("/calls?result=failed").await.text();
    assert!(
        failed.contains(r#"<b id="matching">7</b>"#),
        "every third is busy"
    );
    let basic = admin.get("/calls?result=answered").await.text();
    assert!(basic.contains(r#"<b id="matching">13</b>"#));
    let call_in = admin.get("/calls?call_type=call_in").await.text();
    assert!(call_in.contains(r#"<b id="matching">10</b>"#));
    let out_failed = admin.get("/calls?call_type=call_out_failed").await.text();
    assert!(
        out_failed.contains(r#"<b id="matching">3</b>"#),
        "3, 9 and 15"
    );
    let party = admin.get("/calls?q=user7").await.text();
    assert!(party.contains(r#"<b id="matching">1</b>"#));
    let dated = admin
        .get("/calls?from=2026-11-01&to=2026-11-01")
        .await
        .text();
    assert!(dated.contains(r#"<b id="matching">20</b>"#));
    let other_day = admin.get("/calls?from=2026-11-02").await.text();
    assert!(other_day.contains(r#"<b id="matching">0</b>"#));
    let bad = admin.get("/calls?from=yesterday").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text().contains("is not a date"), "{}", bad.text());

    let by_caller = admin.get("/calls?sort=caller&order=asc").await.text();
    let first_row = &by_caller[by_caller.find(r#"<table id="calls">"#).unwrap()..];
    let first_row = &first_row[first_row.find("</tr>").unwrap() + 5..];
    let first_row = &first_row[..first_row.find("</tr>").unwrap()];
    // Outgoing calls' caller is the conference address: "room11@" sorts first.
    assert!(
        first_row.contains(">room11@meet.example.com<"),
        "{first_row}"
    );
    let by_caller_desc = admin.get("/calls?sort=caller&order=desc").await.text();
    let table = &by_caller_desc[by_caller_desc.find(r#"<table id="calls">"#).unwrap()..];
    assert!(table.find("sip:user8@").unwrap() < table.find("sip:user0@").unwrap());

    // The export is exactly the filtered set, through the API with the session.
    let start = failed
        .find(r#"id="export" href=""#)
        .expect("an export link")
        + 18;
    let href = failed[start..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let csv = admin.get(&href).await;
    assert_eq!(csv.status, StatusCode::OK, "{href}");
    assert_eq!(csv.text().lines().count(), 1 + 7);

    // The call page: its leg with media, and its timeline.
    let id_at = all.find(r#"href="/calls/"#).unwrap() + 13;
    let id = all[id_at..].split('"').next().unwrap().to_owned();
    let call = admin.get(&format!("/calls/{id}")).await;
    assert_eq!(call.status, StatusCode::OK);
    let html = call.text();
    assert!(
        html.contains("opus") && html.contains("callLegStart") && html.contains("data-print"),
        "{html}"
    );
    assert_eq!(
        admin.get("/calls/no-such-call").await.status,
        StatusCode::NOT_FOUND
    );

    // A viewer searches but may not export, with the page or the API.
    add_user(&server, "vic", Role::Viewer, "vic's long password");
    let mut viewer = signed_in(&server, "vic", "vic's long password").await;
    assert!(!viewer.get("/calls").await.text().contains(r#"id="export""#));
    assert_eq!(viewer.get(&href).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        viewer.get("/api/v1/calls").await.status,
        StatusCode::OK,
        "reads with the session"
    );
}

/// POSTs a form of owned values.
async fn post(client: &mut Client, path: &str, fields: Vec<(&str, String)>) -> common::Reply {
    let borrowed: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    client.post_form(path, &borrowed).await
}

/// The text of the element with `id` (a `code` or `b` holding a value).
fn element_text(html: &str, id: &str) -> String {
    let start = html.find(&format!(r#"id="{id}">"#)).expect("the element") + id.len() + 6;
    html[start..].split('<').next().unwrap().to_owned()
}

#[tokio::test]
async fn admins_manage_users_and_tokens_and_users_their_own_password() {
    let server = TestServer::start().await;
    add_user(&server, "ann", Role::Admin, "ann's long password");
    let mut admin = signed_in(&server, "ann", "ann's long password").await;
    let csrf = csrf_of(&admin.get("/admin/users").await.text());
    let add = |name: &'static str, password: &'static str| {
        [
            ("csrf", csrf.clone()),
            ("name", name.into()),
            ("password", password.into()),
            ("role", "viewer".into()),
        ]
    };
    let form = |fields: &[(&'static str, String)]| fields.to_vec();
    assert_eq!(
        post(
            &mut admin,
            "/admin/users/add",
            form(&add("bob", "bob's long password"))
        )
        .await
        .status,
        StatusCode::SEE_OTHER
    );
    let again = post(
        &mut admin,
        "/admin/users/add",
        form(&add("bob", "another password")),
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.text().contains("already exists"));
    assert_eq!(
        post(
            &mut admin,
            "/admin/users/add",
            form(&add("bad name", "long enough"))
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post(&mut admin, "/admin/users/add", form(&add("carl", "short")))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    // Bob changes his password: his other sessions end.
    let mut bob = Client::plain(server.http_addr);
    let mut bob_elsewhere = Client::plain(server.http_addr);
    log_in(&mut bob, "bob", "bob's long password").await;
    log_in(&mut bob_elsewhere, "bob", "bob's long password").await;
    let bob_csrf = csrf_of(&bob.get("/account").await.text());
    let change = |current: &str, new: &str, repeat: &str| {
        vec![
            ("csrf", bob_csrf.clone()),
            ("current", current.to_owned()),
            ("new", new.to_owned()),
            ("repeat", repeat.to_owned()),
        ]
    };
    let wrong = post(
        &mut bob,
        "/account/password",
        change("nope", "a new long one", "a new long one"),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(wrong.text().contains("current password is wrong"));
    let differ = post(
        &mut bob,
        "/account/password",
        change("bob's long password", "a new long one", "another"),
    )
    .await;
    assert!(differ.text().contains("differ"));
    let ok = post(
        &mut bob,
        "/account/password",
        change("bob's long password", "a new long one", "a new long one"),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert!(ok.text().contains("Password changed"));
    assert_eq!(
        bob.get("/calls").await.status,
        StatusCode::OK,
        "his own session stays"
    );
    assert_eq!(
        bob_elsewhere.get("/calls").await.status,
        StatusCode::SEE_OTHER,
        "the other ends"
    );
    let lang = post(
        &mut bob,
        "/account/language",
        vec![("csrf", bob_csrf.clone()), ("language", "xx".into())],
    )
    .await;
    assert_eq!(lang.status, StatusCode::BAD_REQUEST);

    // Disabling ends his session at once; an admin cannot disable herself.
    let disable = |name: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("name", name.to_owned()),
            ("disabled", "true".into()),
        ]
    };
    assert_eq!(
        post(&mut admin, "/admin/users/disable", disable("bob"))
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(bob.get("/calls").await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        log_in(&mut bob, "bob", "a new long one").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(&mut admin, "/admin/users/disable", disable("ann"))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    // A token made in the console is shown once and works until revoked.
    let created = post(
        &mut admin,
        "/admin/tokens/create",
        vec![
            ("csrf", csrf.clone()),
            ("name", "grafana".into()),
            ("role", "viewer".into()),
        ],
    )
    .await;
    assert_eq!(created.status, StatusCode::OK);
    let token = element_text(&created.text(), "new-token");
    let mut script = Client::plain(server.http_addr).with_bearer(&token);
    assert_eq!(script.get("/api/v1/calls").await.status, StatusCode::OK);
    assert!(
        !admin.get("/admin/users").await.text().contains(&token),
        "shown only once"
    );
    post(
        &mut admin,
        "/admin/tokens/revoke",
        vec![("csrf", csrf.clone()), ("name", "grafana".into())],
    )
    .await;
    assert_eq!(
        script.get("/api/v1/calls").await.status,
        StatusCode::UNAUTHORIZED
    );
    let ops: Vec<String> = audit_log(&server).into_iter().map(|(op, _)| op).collect();
    for op in [
        "user add",
        "password change",
        "user disable",
        "token create",
        "token revoke",
    ] {
        assert!(ops.iter().any(|o| o == op), "{op} in {ops:?}");
    }
}

#[tokio::test]
async fn statistics_of_a_day_by_hour_with_navigation_chart_and_csv() {
    let mut server = TestServer::start().await;
    twenty_calls(&mut server).await;
    add_user(&server, "vic", Role::Viewer, "vic's long password");
    let mut viewer = signed_in(&server, "vic", "vic's long password").await;

    let html = viewer.get("/stats?day=2026-11-01").await.text();
    assert!(html.contains("<svg id=\"chart\""), "a chart");
    let row = &html[html.find("10:00–11:00").expect("the 10 o'clock row")..];
    let row = &row[..row.find("</tr>").unwrap()];
    let cells: Vec<&str> = row
        .split("<td class=\"num\">")
        .skip(1)
        .map(|c| c.split('<').next().unwrap())
        .collect();
    // Max Call (none configured), 20 attempts, 13 answered, calls one at a
    // time, no video.
    assert_eq!(
        cells,
        ["—", "20", "13", "1", "1", "0", "0", "0", "0"],
        "{row}"
    );
    assert!(html.contains("ASR %"));
    let senders = &html[html.find(r#"<table id="senders">"#).unwrap()..];
    assert!(senders.contains(">65.0<"), "ASR 13/20: {senders}");
    assert!(
        html.contains("day=2026-10-31") && html.contains("day=2026-11-02"),
        "previous and next day"
    );

    let next = viewer.get("/stats?day=2026-11-02").await.text();
    let row = &next[next.find("10:00–11:00").unwrap()..];
    assert!(row[..row.find("</tr>").unwrap()].contains(">0<"));
    let csv = viewer.get("/stats.csv?day=2026-11-01").await;
    assert_eq!(csv.status, StatusCode::OK);
    let text = csv.text();
    assert_eq!(text.lines().count(), 25, "a header and 24 hours");
    assert!(
        text.contains("2026-11-01T10:00:00Z,,20,13,1,1,0,0,0,0"),
        "{text}"
    );
    assert_eq!(
        viewer.get("/stats?day=someday").await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn the_live_status_shows_calls_in_progress_until_they_end() {
    use common::{CmsDoc, call_end, call_start, leg_connected, leg_end, leg_start};
    let mut server = TestServer::start().await;
    add_user(&server, "sue", Role::Supervisor, "sue's long password");
    add_user(&server, "vic", Role::Viewer, "vic's long password");
    let mut sup = signed_in(&server, "sue", "sue's long password").await;
    let live = sup.get("/live.json").await.json();
    assert_eq!(
        (
            live["now-attempts"].as_i64(),
            live["active_calls"].as_array().map(Vec::len)
        ),
        (Some(0), Some(0))
    );
    assert_eq!(live["version"], env!("CARGO_PKG_VERSION"));

    let now = cdrhub_model::Timestamp::now();
    let at = |s: i64| cdrhub_model::Timestamp(now.0 - 60_000 + s * 1000).to_rfc3339();
    let (call, leg) = (common::guid(), common::guid());
    let session = common::guid();
    let doc = CmsDoc::new(&session)
        .record("callStart", &at(0), 1, &call_start(&call, "Daily"))
        .record(
            "callLegStart",
            &at(1),
            2,
            &leg_start(&leg, &call, "sip:ann@x", "daily@meet", "Ann", "incoming"),
        )
        .record("callLegUpdate", &at(2), 3, &leg_connected(&leg, &call));
    server.ingest(common::CMS, doc.build()).await;
    let live = sup.get("/live.json").await.json();
    assert_eq!(live["now-attempts"], 1);
    assert_eq!(live["now-connected"], 1);
    assert_eq!(live["active_calls"][0]["caller"], "sip:ann@x");
    assert_eq!(live["active_calls"][0]["state"], "connected");
    let page = sup.get("/live").await.text();
    assert!(page.contains("sip:ann@x") && page.contains("/assets/live.js"));

    let end = CmsDoc::new(&session)
        .record(
            "callLegEnd",
            &at(30),
            4,
            &leg_end(&leg, "clientInitiatedTeardown", 28),
        )
        .record("callEnd", &at(30), 5, &call_end(&call, 1, 30));
    server.ingest(common::CMS, end.build()).await;
    let live = sup.get("/live.json").await.json();
    assert_eq!(
        (
            live["now-attempts"].as_i64(),
            live["now-connected"].as_i64()
        ),
        (Some(0), Some(0))
    );
    assert!(live["active_calls"].as_array().unwrap().is_empty());
    assert!(
        live["hour-attempts"].as_i64().unwrap() <= 1,
        "started this hour or the last"
    );

    let mut viewer = signed_in(&server, "vic", "vic's long password").await;
    assert_eq!(viewer.get("/live").await.status, StatusCode::FORBIDDEN);
}

/// A call whose end never comes is ended by hand from the live view, by a
/// supervisor, and audited; a viewer may not, in the console or the API.
#[tokio::test]
async fn a_supervisor_ends_a_stuck_call_by_hand_and_it_is_audited() {
    use common::{CmsDoc, call_start, leg_connected, leg_start};
    let mut server = TestServer::start().await;
    add_user(&server, "sue", Role::Supervisor, "sue's long password");
    add_user(&server, "vic", Role::Viewer, "vic's long password");
    let now = cdrhub_model::Timestamp::now();
    let at = |s: i64| cdrhub_model::Timestamp(now.0 - 60_000 + s * 1000).to_rfc3339();
    let (call, leg) = (common::guid(), common::guid());
    let doc = CmsDoc::new(&common::guid())
        .record("callStart", &at(0), 1, &call_start(&call, "Stuck"))
        .record(
            "callLegStart",
            &at(1),
            2,
            &leg_start(&leg, &call, "sip:ann@x", "stuck@meet", "Ann", "incoming"),
        )
        .record("callLegUpdate", &at(2), 3, &leg_connected(&leg, &call));
    server.ingest(common::CMS, doc.build()).await;
    let id = server.calls().await[0]["id"].as_str().unwrap().to_owned();

    let mut viewer = signed_in(&server, "vic", "vic's long password").await;
    let csrf = csrf_of(&viewer.get("/calls").await.text());
    let refused = post(
        &mut viewer,
        &format!("/calls/{id}/end"),
        vec![("csrf", csrf)],
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let secret = cdrhub_server::auth::new_secret();
    server
        .with_accounts(|a| {
            a.add_token(
                "script",
                Role::Viewer,
                &cdrhub_server::auth::token_hash(&secret),
            )
        })
        .unwrap();
    let mut script = Client::plain(server.http_addr).with_bearer(&secret);
    let refused = script.post(&format!("/api/v1/calls/{id}/end"), "").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text());

    let mut sup = signed_in(&server, "sue", "sue's long password").await;
    let live = sup.get("/live").await.text();
    assert!(
        live.contains(&format!(r#"action="/calls/{id}/end""#)),
        "{live}"
    );
    let csrf = csrf_of(&live);
    let wrong = post(
        &mut sup,
        &format!("/calls/{id}/end"),
        vec![("csrf", "x".into())],
    )
    .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN, "a forged form");
    let ended = post(
        &mut sup,
        &format!("/calls/{id}/end"),
        vec![("csrf", csrf.clone())],
    )
    .await;
    assert_eq!(ended.status, StatusCode::SEE_OTHER);
    assert_eq!(ended.header("location"), Some("/live"));

    let live = sup.get("/live.json").await.json();
    assert!(live["active_calls"].as_array().unwrap().is_empty());
    let call = server.call(&id).await;
    assert_eq!(call["flags"], serde_json::json!(["forced_end"]));
    assert_eq!(call["legs"][0]["reason"], "forcedEnd");
    assert!(
        audit_log(&server).contains(&("force call end".to_owned(), "sue".to_owned())),
        "{:?}",
        audit_log(&server)
    );
    let page = sup.get(&format!("/calls/{id}")).await.text();
    assert!(page.contains("ended by hand"), "{page}");
    let again = post(&mut sup, &format!("/calls/{id}/end"), vec![("csrf", csrf)]).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.text().contains("has ended already"));
}

#[tokio::test]
async fn an_admin_downloads_a_backup_and_a_viewer_may_not() {
    // Backups in the console are SQLite's; PostgreSQL has pg_dump.
    let mut server = TestServer::start_with(Options {
        sqlite: true,
        ..Options::default()
    })
    .await;
    twenty_calls(&mut server).await;
    add_user(&server, "ann", Role::Admin, "ann's long password");
    add_user(&server, "vic", Role::Viewer, "vic's long password");
    let mut admin = signed_in(&server, "ann", "ann's long password").await;
    let r = admin.get("/admin/backup").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("application/vnd.sqlite3"));
    assert!(
        r.header("content-disposition")
            .unwrap()
            .contains("cdrhub-backup-")
    );
    assert!(r.body.starts_with(b"SQLite format 3\0"));
    // It is a whole database: open it and count the journal.
    let path = server.dir.path().join("downloaded.db");
    std::fs::write(&path, &r.body).unwrap();
    let copy = rusqlite::Connection::open(&path).unwrap();
    let records: i64 = copy
        .query_row("SELECT count(*) FROM journal", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        records,
        13 * 5 + 7 * 4,
        "every record: 13 answered calls of 5, 7 busy of 4"
    );
    let left: Vec<_> = std::fs::read_dir(server.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".backup-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(
        audit_log(&server)
            .iter()
            .any(|(op, _)| op == "backup download")
    );
    let mut viewer = signed_in(&server, "vic", "vic's long password").await;
    assert_eq!(
        viewer.get("/admin/backup").await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn the_event_view_lists_the_newest_records_with_seed_001s_columns() {
    let mut server = TestServer::start().await;
    twenty_calls(&mut server).await;
    add_user(&server, "sue", Role::Supervisor, "sue's long password");
    add_user(&server, "vic", Role::Viewer, "vic's long password");
    let mut sup = signed_in(&server, "sue", "sue's long password").await;
    let html = sup.get("/live/events").await.text();
    for column in [
        "Call reference",
        "Event",
        "Dialed",
        "Caller ID",
        "Info",
        "Port",
    ] {
        assert!(html.contains(column), "{column}");
    }
    let table = &html[html.find(r#"<table id="events">"#).unwrap()..];
    let first = &table[table.find("</tr>").unwrap()..];
    assert!(
        first.contains("callEnd"),
        "newest first: the last call's end"
    );
    assert!(table.contains("remoteBusy") && table.contains("sip:user19@example.com"));
    assert!(html.contains(r#"http-equiv="refresh""#));
    let none = sup.get("/live/events?sender=nobody").await.text();
    let table = &none[none.find(r#"<table id="events">"#).unwrap()..];
    assert_eq!(
        table[..table.find("</table>").unwrap()]
            .matches("<tr>")
            .count(),
        1
    );
    let mut viewer = signed_in(&server, "vic", "vic's long password").await;
    assert_eq!(
        viewer.get("/live/events").await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn the_api_serves_the_same_day_statistics() {
    let mut server = TestServer::start().await;
    twenty_calls(&mut server).await;
    let day = server.get_json("/api/v1/stats?day=2026-11-01").await;
    assert_eq!(day["day"], "2026-11-01T00:00:00Z");
    assert_eq!(day["hours"].as_array().unwrap().len(), 24);
    assert_eq!(day["hours"][10]["attempts"], 20);
    assert_eq!(day["hours"][10]["answered"], 13);
    assert_eq!(day["hours"][10]["peak_connected"], 1);
    assert_eq!(day["senders"][0]["asr"], 0.65);
    let bad = server.get("/api/v1/stats?day=today").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text().contains("is not a date"));
    assert_eq!(
        server.get("/api/v1/stats?hour=1").await.status,
        StatusCode::BAD_REQUEST
    );
}

/// Waits until the data page shows no removal running.
async fn removal_finished(admin: &mut Client) -> String {
    for _ in 0..200 {
        let page = admin.get("/admin/data").await.text();
        if !page.contains(r#"id="running""#) {
            return page;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the data removal did not finish");
}

/// Data management: keeping days saved and audited, Clear History Data by
/// category and age (the seed's 2015 call goes, with its counts in the
/// audit log), a viewer may not, and a backup uploaded in the console is
/// checked and kept for the next start while a file that is not one is
/// refused.
#[tokio::test]
async fn an_admin_sets_keeping_days_clears_history_and_stages_a_restore() {
    let mut server = TestServer::start().await;
    for doc in common::seeds() {
        server.ingest(common::CMS, doc).await;
    }
    assert_eq!(server.calls().await.len(), 1);
    add_user(&server, "ann", Role::Admin, "ann's long password");
    add_user(&server, "vic", Role::Viewer, "vic's long password");
    let mut viewer = signed_in(&server, "vic", "vic's long password").await;
    assert_eq!(
        viewer.get("/admin/data").await.status,
        StatusCode::FORBIDDEN
    );
    let csrf = csrf_of(&viewer.get("/calls").await.text());
    let refused = post(
        &mut viewer,
        "/admin/data/clear",
        vec![("csrf", csrf), ("calls", "on".into())],
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let mut admin = signed_in(&server, "ann", "ann's long password").await;
    let page = admin.get("/admin/data").await.text();
    assert!(
        page.contains(r#"name="cdr_days""#) && page.contains(r#"value="180""#),
        "{page}"
    );
    assert!(
        page.contains(r#"id="disk-free""#) || page.contains("Not run yet"),
        "{page}"
    );
    let csrf = csrf_of(&page);
    let saved = post(
        &mut admin,
        "/admin/data/keeping",
        vec![
            ("csrf", csrf.clone()),
            ("cdr_days", "90".into()),
            ("log_days", "30".into()),
        ],
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    let page = admin.get("/admin/data").await.text();
    assert!(page.contains(r#"value="90""#) && page.contains(r#"value="30""#));
    let bad = post(
        &mut admin,
        "/admin/data/keeping",
        vec![
            ("csrf", csrf.clone()),
            ("cdr_days", "0".into()),
            ("log_days", "x".into()),
        ],
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    let cleared = post(
        &mut admin,
        "/admin/data/clear",
        vec![
            ("csrf", csrf.clone()),
            ("calls", "on".into()),
            ("calls_days", "60".into()),
        ],
    )
    .await;
    assert_eq!(cleared.status, StatusCode::SEE_OTHER);
    let page = removal_finished(&mut admin).await;
    assert!(page.contains("1 calls, 2 legs, 8 records"), "{page}");
    assert!(server.calls().await.is_empty());
    let audit = audit_log(&server);
    assert!(
        audit.contains(&("clear history data".to_owned(), "ann".to_owned())),
        "{audit:?}"
    );
    assert!(
        audit.contains(&("change settings".to_owned(), "ann".to_owned())),
        "{audit:?}"
    );

    let backup = admin.get("/admin/backup").await;
    if server.on_postgres() {
        // Backups and restores of PostgreSQL are pg_dump's and pg_restore's.
        assert_eq!(backup.status, StatusCode::BAD_REQUEST);
        assert!(backup.text().contains("pg_dump"), "{}", backup.text());
        return;
    }
    assert_eq!(backup.status, StatusCode::OK);
    let junk = admin
        .post_multipart(
            "/admin/data/restore",
            &[("csrf", &csrf)],
            ("backup", "x.db", b"not a backup"),
        )
        .await;
    assert_eq!(junk.status, StatusCode::BAD_REQUEST);
    assert!(
        junk.text().contains("is not a cdrhub backup"),
        "{}",
        junk.text()
    );
    let forged = admin
        .post_multipart(
            "/admin/data/restore",
            &[("csrf", "x")],
            ("backup", "b.db", &backup.body),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let staged = admin
        .post_multipart(
            "/admin/data/restore",
            &[("csrf", &csrf)],
            ("backup", "b.db", &backup.body),
        )
        .await;
    assert_eq!(staged.status, StatusCode::SEE_OTHER, "{}", staged.text());
    let page = admin.get("/admin/data").await.text();
    assert!(page.contains("A backup waits to be restored"), "{page}");
    assert!(audit_log(&server).contains(&("restore staged".to_owned(), "ann".to_owned())));
}
