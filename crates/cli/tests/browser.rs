//! The console in a real browser (headless Chromium over WebDriver) against
//! the real binary: the first login with the generated password, a lockout
//! after repeated failures and its unblocking by the admin, and a CDR search
//! with filters, its CSV export, a day's statistics with its navigation and
//! a call's page.
//!
//! With CDRHUB_SCREENSHOTS=DIR set, the pages are saved there as PNG (the
//! README's pictures come from here).

mod common;

use common::webdriver::Browser;
use common::{Conn, Server, fixture, get_json};

async fn log_in(browser: &Browser, base: &str, user: &str, password: &str) {
    browser.goto(&format!("{base}/login")).await;
    browser.type_into("#user", user).await;
    browser.type_into("#password", password).await;
    browser.click("button[type=submit]").await;
}

/// A server on a fresh data directory, and its first admin's password.
fn first_start() -> (tempfile::TempDir, Server, String) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let password = server
        .admin_password
        .clone()
        .expect("the first start logs a password");
    (dir, server, password)
}

/// Logs in and waits for the signed-in page.
async fn log_in_as(browser: &Browser, base: &str, user: &str, password: &str) {
    log_in(browser, base, user, password).await;
    assert!(browser.text("nav .who").await.contains(user));
}

/// Browser tests take turns: four Chromiums and their servers at once on a
/// two-core machine make the pages slower than the tests' patience.
async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}

async fn screenshot(browser: &Browser, name: &str) {
    if let Some(dir) = std::env::var_os("CDRHUB_SCREENSHOTS") {
        std::fs::create_dir_all(&dir).unwrap();
        browser
            .screenshot(&std::path::Path::new(&dir).join(name))
            .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn first_login_lockout_and_unblock_in_a_real_browser() {
    let _turn = one_at_a_time().await;
    let (_dir, server, password) = first_start();
    let base = format!("http://{}", server.addr);

    let admin = Browser::start().await;
    admin.goto(&base).await;
    assert!(
        admin.url().await.ends_with("/login"),
        "{}",
        admin.url().await
    );
    log_in_as(&admin, &base, "admin", &password).await;

    // Another browser guesses: the fourth and fifth failures are audited,
    // the fifth blocks the address.
    let attacker = Browser::start().await;
    for _ in 0..4 {
        log_in(&attacker, &base, "admin", "guess").await;
        attacker
            .wait_for_text(".error", "Wrong user name or password")
            .await;
    }
    log_in(&attacker, &base, "admin", "guess").await;
    attacker.wait_for_text(".error", "refused until").await;
    // Blocked, right password or not.
    log_in(&attacker, &base, "admin", &password).await;
    attacker.wait_for_text(".error", "refused until").await;

    // The admin, still signed in, sees the block and lifts it.
    admin.goto(&format!("{base}/admin/blocked")).await;
    let table = admin.text("#blocked").await;
    assert!(
        table.contains("127.0.0.1") && table.contains("admin"),
        "{table}"
    );
    screenshot(&admin, "console-blocked-ips.png").await;
    admin.click("#blocked button[type=submit]").await;
    admin.wait_for_text("main", "No address is blocked").await;

    log_in_as(&attacker, &base, "admin", &password).await;

    admin.goto(&format!("{base}/audit")).await;
    let audit = admin.text("#audit").await;
    for operation in [
        "login failed",
        "address blocked",
        "unblock address",
        "login",
    ] {
        assert!(audit.contains(operation), "{operation} in {audit}");
    }
    screenshot(&admin, "console-audit.png").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cdr_search_statistics_and_a_call_page_in_a_real_browser() {
    let _turn = one_at_a_time().await;
    let (_dir, server, password) = first_start();
    let base = format!("http://{}", server.addr);
    // Every CMS fixture: the seed's conference, hand-made and captured calls.
    let mut conn = Conn::open(server.addr).await.unwrap();
    let mut names: Vec<_> = std::fs::read_dir(fixture(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".xml"))
        .collect();
    names.sort();
    for name in names {
        let body = std::fs::read(fixture(&name)).unwrap();
        let (status, _) = conn.request("POST", "/ingest/cms", body).await.unwrap();
        assert_eq!(status, 200, "{name}");
    }

    let browser = Browser::start().await;
    log_in_as(&browser, &base, "admin", &password).await;
    browser.goto(&format!("{base}/calls")).await;
    let total: u64 = browser.text("#total").await.parse().unwrap();
    assert!(total >= 3, "{total} calls");
    screenshot(&browser, "console-calls.png").await;

    browser.click("#result option[value=answered]").await;
    browser.click("form.filters button[type=submit]").await;
    browser.wait_for_url("result=answered").await;
    let answered: u64 = browser.text("#matching").await.parse().unwrap();
    assert!(answered >= 1 && answered < total, "{answered} of {total}");

    // The export link fetches exactly the filtered set, with the session.
    let href = browser.attribute("#export", "href").await;
    let session = browser.cookie("cdrhub_session").await;
    let path = href.strip_prefix(&base).unwrap_or(&href);
    assert!(path.starts_with("/api/v1/calls.csv?"), "{href}");
    let mut conn = Conn::open(server.addr).await.unwrap();
    conn.cookie = Some(format!("cdrhub_session={session}"));
    let (status, csv) = conn.request("GET", path, Vec::new()).await.unwrap();
    assert_eq!(status, 200);
    let csv = String::from_utf8(csv.to_vec()).unwrap();
    assert_eq!(csv.lines().count() as u64, 1 + answered, "{csv}");

    // The statistics of the seed conference's day, and the next day.
    browser.goto(&format!("{base}/stats?day=2024-03-01")).await;
    assert_eq!(browser.text("#stats-day").await, "2024-03-01 (UTC)");
    assert!(browser.text("#hours").await.contains("09:00–10:00"));
    screenshot(&browser, "console-stats.png").await;
    browser.click("#next-day").await;
    browser.wait_for_url("day=2024-03-02").await;
    assert_eq!(browser.text("#stats-day").await, "2024-03-02 (UTC)");
    browser.click("#prev-day").await;
    browser.wait_for_url("day=2024-03-01").await;

    browser.goto(&format!("{base}/calls")).await;
    browser.click("#calls td a").await;
    browser.wait_for_url("/calls/").await;
    assert!(!browser.text("#legs").await.is_empty());
    assert!(browser.text("#timeline").await.contains("callLeg"));
}

/// The live status changes in the browser, without a reload, while calls
/// are posted.
#[tokio::test(flavor = "multi_thread")]
async fn the_live_view_follows_calls_as_they_are_posted() {
    let _turn = one_at_a_time().await;
    let (_dir, server, password) = first_start();
    let base = format!("http://{}", server.addr);
    let browser = Browser::start().await;
    log_in_as(&browser, &base, "admin", &password).await;
    browser.goto(&format!("{base}/live")).await;
    assert_eq!(browser.text("#now-attempts").await, "0");

    // Three calls start (and stay in progress), posted as a Call Bridge would.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut records = String::new();
    for i in 0..3u64 {
        let time = cdrhub_model::Timestamp((now - 30 + i) as i64 * 1000).to_rfc3339();
        records.push_str(&format!(
            "<record type=\"callStart\" time=\"{time}\" recordIndex=\"{}\" correlatorIndex=\"{i}\">\
             <call id=\"c{i}-{now}\"><name>Room {i}</name></call></record>",
            i + 1
        ));
    }
    let body = format!("<records session=\"live-{now}\">{records}</records>");
    let mut conn = Conn::open(server.addr).await.unwrap();
    let (status, _) = conn
        .request("POST", "/ingest/cms", body.into_bytes())
        .await
        .unwrap();
    assert_eq!(status, 200);

    let start = std::time::Instant::now();
    loop {
        if browser.text("#now-attempts").await == "3" {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(15),
            "the page never showed the calls"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(browser.text("#active-rows").await.contains("Room 2"));
    screenshot(&browser, "console-live.png").await;

    // The newest call's end never comes: an operator ends it by hand, after
    // the confirmation, and the live view follows.
    browser
        .click_fresh("#active-rows form.force-end button")
        .await;
    browser.accept_alert().await;
    browser.wait_for_text("#now-attempts", "2").await;
    assert!(!browser.text("#active-rows").await.contains("Room 2"));

    // The event view's sender list submits its form when it changes (no
    // inline handler: the console's script, under its Content-Security-Policy).
    browser.goto(&format!("{base}/live/events")).await;
    browser
        .click_fresh("select[name=sender] option:nth-child(2)")
        .await;
    browser.wait_for_url("sender=").await;

    // Clear History Data: every call, with its records and statistics.
    browser.goto(&format!("{base}/admin/data")).await;
    browser.click("#clear input[name=calls]").await;
    browser
        .click("#clear select[name=calls_days] option[value='0']")
        .await;
    browser.click("#clear button[type=submit]").await;
    browser.wait_for_text("#last-run", "3 calls").await;
    assert!(browser.text("#disk-free").await.contains("GiB"));
    screenshot(&browser, "console-data.png").await;
    browser.goto(&format!("{base}/live")).await;
    assert_eq!(browser.text("#now-attempts").await, "0");
}

/// A contact centre (the CTI simulator) in a real browser: the connection,
/// the agents' day and the CSQs' hours on the Contact centre page, and a
/// call's agents on its page.
#[tokio::test(flavor = "multi_thread")]
async fn contact_centre_reports_in_a_real_browser() {
    let _turn = one_at_a_time().await;
    let sim = cdrhub_sim::cti::Server::start(cdrhub_sim::cti::SimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        agents: 3,
        rate: 20.0,
        calls: Some(12),
        time_scale: 0.005,
        seed: Some(5),
        ..Default::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cdrhub.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources.cti]]\nname = \"uccx\"\nprimary = \"{}\"\nheartbeat_s = 5\n",
            sim.addr
        ),
    )
    .unwrap();
    let server = Server::start_with_config(&dir.path().join("data"), Some(&config));
    let password = server.admin_password.clone().expect("a first password");
    let base = format!("http://{}", server.addr);

    // Every simulated call ended in the store.
    let start = std::time::Instant::now();
    let calls = loop {
        let calls = get_json(&server, "/api/v1/calls?source=cti&limit=100").await;
        let list = calls["calls"].as_array().cloned().unwrap_or_default();
        if list.len() == 12 && list.iter().all(|c| !c["ended_at"].is_null()) {
            break list;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "the calls never all ended: {}",
            list.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };

    let browser = Browser::start().await;
    log_in_as(&browser, &base, "admin", &password).await;
    browser.goto(&format!("{base}/cc")).await;
    assert!(browser.text("#cti-links").await.contains("open"));
    browser.wait_for_text("#agents", "agt200").await;
    assert!(browser.text("#csqs").await.contains("CSQ"));
    screenshot(&browser, "console-cc.png").await;

    let answered = calls
        .iter()
        .find(|c| {
            c["details"]["agents"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        })
        .expect("an answered call");
    browser
        .goto(&format!(
            "{base}/calls/{}",
            answered["id"].as_str().unwrap()
        ))
        .await;
    browser.wait_for_text("#cti-agents", "200").await;
    assert!(browser.text("#cti-calls").await.contains("555"));
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_list_log_report_and_events_in_a_real_browser() {
    let _turn = one_at_a_time().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cdrhub.toml");
    std::fs::write(
        &config,
        "[sources.feed]\nenabled = true\ntcp_listen = \"127.0.0.1:0\"\nudp_listen = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let server = Server::start_with_config(&dir.path().join("data"), Some(&config));
    let password = server.admin_password.clone().expect("a first password");
    let base = format!("http://{}", server.addr);
    let (tcp, _) = server.feed_addrs();
    let sent = cdrhub_sim::gateway::run(cdrhub_sim::gateway::SimConfig {
        server: format!("tcp://{tcp}").parse().unwrap(),
        gateways: 2,
        calls: 15,
        rate: 100.0,
        time_scale: 0.0,
        seed: Some(3),
        bad_packets: 2,
        relogin: true,
        ..Default::default()
    })
    .await
    .expect("the simulated gateways finish");
    let (name, first) = sent.gateways.iter().next().unwrap();

    let browser = Browser::start().await;
    log_in_as(&browser, &base, "admin", &password).await;
    browser.click("nav a[href='/gateways']").await;
    browser.wait_for_text("#gateways", "8200").await;
    browser
        .wait_for_text("#gateway-log", "Relogin Kickout")
        .await;
    assert!(browser.text("#gateway-log").await.contains("Bad Packet"));
    screenshot(&browser, "console-gateways.png").await;

    // The report of the first gateway, then its Call In filter.
    browser.click(&format!("a[href='/gateways/{name}']")).await;
    let total = first.calls.total();
    browser
        .wait_for_text("#report-count", &format!("{total} / {total} records"))
        .await;
    assert!(browser.text("#report").await.contains("Call out"));
    screenshot(&browser, "console-gateway-report.png").await;
    browser.click("input[value='call_in']").await;
    browser.click("form.filters button[type=submit]").await;
    browser
        .wait_for_text(
            "#report-count",
            &format!("{} / {total} records", first.calls.call_in),
        )
        .await;
    assert!(
        browser
            .attribute("#report-csv", "href")
            .await
            .contains("filter=call_in")
    );

    browser.click("#events-link").await;
    browser.wait_for_text("#event-rows", "HOOK_ON").await;

    // More calls: the event rows follow without a reload.
    let before = browser.text("#event-rows").await;
    cdrhub_sim::gateway::run(cdrhub_sim::gateway::SimConfig {
        server: format!("tcp://{tcp}").parse().unwrap(),
        gateways: 2,
        calls: 2,
        rate: 100.0,
        time_scale: 0.0,
        seed: Some(4),
        ..Default::default()
    })
    .await
    .expect("the simulated gateways finish again");
    let start = std::time::Instant::now();
    while browser.text("#event-rows").await == before {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(15),
            "the event rows never followed the new calls"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// A HEPv3 packet of capture agent 1 holding `sip`, between two loopback
/// addresses.
fn hep_packet(src: &str, dst: &str, sip: &str) -> Vec<u8> {
    use cdrhub_protocols::hep::{Endpoint, HepPacket, encode_v3};
    let endpoint = |a: &str| {
        let a: std::net::SocketAddr = a.parse().unwrap();
        Endpoint {
            ip: Some(a.ip()),
            port: Some(a.port()),
        }
    };
    encode_v3(&HepPacket {
        src: endpoint(src),
        dst: endpoint(dst),
        capture_id: Some(1),
        payload: Some(std::borrow::Cow::Owned(
            sip.replace('\n', "\r\n").into_bytes(),
        )),
        ..HepPacket::default()
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn sip_cdr_tables_and_registrations_in_a_real_browser() {
    let _turn = one_at_a_time().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cdrhub.toml");
    std::fs::write(
        &config,
        "[sources.hep]\nenabled = true\nudp_listen = \"127.0.0.1:0\"\ntcp_listen = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let server = Server::start_with_config(&dir.path().join("data"), Some(&config));
    let password = server.admin_password.clone().expect("a first password");
    let base = format!("http://{}", server.addr);
    let (udp, _) = server.hep_addrs();

    // The call Kamailio mirrored (tests/data/hep), then a REGISTER of
    // extension 2001 and the registrar's 200.
    let capture = std::fs::read(fixture("../hep/kamailio-uac-uas.hepstream")).unwrap();
    let mut packets = Vec::new();
    let mut at = 0;
    while at + 4 <= capture.len() {
        let n = u32::from_be_bytes(capture[at..at + 4].try_into().unwrap()) as usize;
        packets.push(capture[at + 4..at + 4 + n].to_vec());
        at += 4 + n;
    }
    let head = "Via: SIP/2.0/UDP 127.0.0.9:5062;branch=z9hG4bK-r1\n\
From: <sip:2001@127.0.0.1>;tag=r\nTo: <sip:2001@127.0.0.1>\nCall-ID: reg-2001\nCSeq: 1 REGISTER\n";
    packets.push(hep_packet(
        "127.0.0.9:5062",
        "127.0.0.1:5070",
        &format!("REGISTER sip:127.0.0.1 SIP/2.0\n{head}Contact: <sip:2001@127.0.0.9:5062>\nExpires: 600\nUser-Agent: Yealink T46U\nContent-Length: 0\n\n"),
    ));
    packets.push(hep_packet(
        "127.0.0.1:5070",
        "127.0.0.9:5062",
        &format!("SIP/2.0 200 OK\n{head}Contact: <sip:2001@127.0.0.9:5062>;expires=600\nContent-Length: 0\n\n"),
    ));
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for p in &packets {
        socket.send_to(p, udp).unwrap();
    }

    let browser = Browser::start().await;
    log_in_as(&browser, &base, "admin", &password).await;
    // The capture's call is from its own day: the half-call tables of it.
    browser.click("nav a[href='/sip']").await;
    browser.wait_for_text("#basic-title", "Basic call").await;
    let mut day = None;
    for _ in 0..200 {
        let calls = get_json(&server, "/api/v1/calls?source=sip").await;
        if let Some(t) = calls["calls"][0]["ended_at"].as_str() {
            day = Some(t[..10].to_owned());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let day = day.expect("the captured call is stored");
    browser.goto(&format!("{base}/sip?day={day}")).await;
    browser
        .wait_for_text("#basic-title", "Basic call (1)")
        .await;
    assert!(browser.text("#basic").await.contains("sipp"));
    screenshot(&browser, "console-sip.png").await;
    browser.goto(&format!("{base}/sip")).await;
    browser.click("a[href='/sip/registrations']").await;
    browser.wait_for_text("#registered", "2001").await;
    let row = browser.text("#registered").await;
    assert!(
        row.contains("127.0.0.9:5062") && row.contains("Yealink T46U"),
        "{row}"
    );
    let hours = browser.text("#register-hours").await;
    assert!(
        hours.contains("Peak registered") && hours.contains("23-24"),
        "{hours}"
    );
    screenshot(&browser, "console-sip-registrations.png").await;

    // Today's registrations reload themselves: extension 2002 registers
    // and shows without a click.
    let head = head.replace("2001", "2002").replace("5062", "5064");
    for p in [
        hep_packet(
            "127.0.0.9:5064",
            "127.0.0.1:5070",
            &format!(
                "REGISTER sip:127.0.0.1 SIP/2.0\n{head}Contact: <sip:2002@127.0.0.9:5064>\nExpires: 600\nContent-Length: 0\n\n"
            ),
        ),
        hep_packet(
            "127.0.0.1:5070",
            "127.0.0.9:5064",
            &format!(
                "SIP/2.0 200 OK\n{head}Contact: <sip:2002@127.0.0.9:5064>;expires=600\nContent-Length: 0\n\n"
            ),
        ),
    ] {
        socket.send_to(&p, udp).unwrap();
    }
    browser.wait_for_text("#registered", "2002").await;
}
