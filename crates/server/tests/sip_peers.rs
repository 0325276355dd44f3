//! SIP calls against real peers (issue 6, point 5): Debian's Kamailio is
//! the proxy between sipp user agents on 127.0.0.1 and mirrors every
//! message to cdrhub over HEPv3 (tests/kamailio, tests/sipp). The calls
//! cdrhub makes of it match what sipp did: how many, their dispositions,
//! and their talk times within a second.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cdrhub_server::sources::hep::HepSourceConfig;
use common::TestServer;
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A free UDP port on 127.0.0.1 (taken back at once: a small race).
fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A process stopped with SIGTERM when dropped (Kamailio stops its
/// children then), or killed if it does not go.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn kamailio(port: u16, hep: SocketAddr, run_dir: &Path) -> Peer {
    let child = Command::new("kamailio")
        .args(["-DD", "-E", "-f"])
        .arg(repo().join("tests/kamailio/kamailio.cfg"))
        .arg("-Y")
        .arg(run_dir)
        .args([
            "-A",
            &format!("LISTEN_ADDR=udp:127.0.0.1:{port}"),
            "-A",
            &format!("HEP_URI=\"sip:{hep}\""),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("kamailio runs (apt-get install kamailio; scripts/test.sh does)");
    Peer(child)
}

/// Waits until Kamailio answers on `port` (its 405 to an OPTIONS).
fn wait_for_proxy(port: u16) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let local = socket.local_addr().unwrap();
    let options = format!(
        "OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-probe\r\n\
         From: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:127.0.0.1:{port}>\r\nCall-ID: probe\r\n\
         CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    let mut buf = [0u8; 2048];
    for _ in 0..100 {
        socket
            .send_to(options.as_bytes(), ("127.0.0.1", port))
            .unwrap();
        if socket.recv_from(&mut buf).is_ok() {
            return;
        }
    }
    panic!("kamailio did not answer on port {port}");
}

fn sipp() -> Command {
    let mut c = Command::new("sipp");
    c.args(["-i", "127.0.0.1", "-nostdin"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// A sipp UAS on its own port, in the background of the test.
fn uas(scenario: &str, port: u16) -> Peer {
    let child = sipp()
        .arg("-sf")
        .arg(repo().join("tests/sipp").join(scenario))
        .args(["-p", &port.to_string(), "-mp", &free_port().to_string()])
        .spawn()
        .expect("sipp runs (apt-get install sip-tester; scripts/test.sh does)");
    Peer(child)
}

/// Runs a sipp UAC to completion: `calls` calls to `service` through the
/// proxy, each `duration_ms` long; panics unless every call succeeded.
/// sipp's own count of a run: calls created, successful and failed (its
/// `-trace_stat` file, the cumulative columns of the last line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SippStats {
    created: u64,
    successful: u64,
    failed: u64,
}

fn uac(scenario: &str, proxy: u16, service: u16, calls: u32, duration_ms: u32) -> SippStats {
    let stats_dir = tempfile::tempdir().unwrap();
    let stats = stats_dir.path().join("stats.csv");
    let status = sipp()
        .arg("-sf")
        .arg(repo().join("tests/sipp").join(scenario))
        .arg(format!("127.0.0.1:{proxy}"))
        .args([
            "-s",
            &service.to_string(),
            "-p",
            &free_port().to_string(),
            "-mp",
            &free_port().to_string(),
            "-m",
            &calls.to_string(),
            "-d",
            &duration_ms.to_string(),
            "-timeout",
            "30",
            "-timeout_error",
            "-trace_stat",
            "-stf",
        ])
        .arg(&stats)
        .status()
        .expect("sipp runs");
    assert!(status.success(), "sipp {scenario} failed: {status}");
    let text = std::fs::read_to_string(&stats).expect("sipp's statistics file");
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next().expect("a header").split(';').collect();
    let last: Vec<&str> = lines
        .next_back()
        .expect("a line of counts")
        .split(';')
        .collect();
    let column = |name: &str| -> u64 {
        let i = header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no {name} column"));
        last[i]
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} = {:?}", last[i]))
    };
    SippStats {
        created: column("TotalCallCreated"),
        successful: column("SuccessfulCall(C)"),
        failed: column("FailedCall(C)"),
    }
}

/// One sipp UAC run of the test and what cdrhub must make of it.
struct Step {
    scenario: &'static str,
    /// The number dialled: the port of the UAS that takes the call.
    service: u16,
    calls: u32,
    /// sipp's `-d`: talk (or ringing) time in milliseconds.
    ms: u32,
    /// The disposition of each call; empty for a REGISTER, which is no call.
    disposition: &'static str,
    talk_s: Option<i64>,
}

async fn sip_calls(server: &mut TestServer, expected: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let calls = server.calls_where("source=sip&limit=100").await;
        let ended = calls.iter().filter(|c| !c["ended_at"].is_null()).count();
        if ended >= expected || tokio::time::Instant::now() > deadline {
            return calls;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_through_kamailio_become_the_cdrs_sipp_made() {
    let mut server = TestServer::with_hep(HepSourceConfig::default()).await;
    let (hep, _) = server.hep_addrs.unwrap();
    let run_dir = tempfile::tempdir().unwrap();
    let proxy_port = free_port();
    let _proxy = kamailio(proxy_port, hep, run_dir.path());
    wait_for_proxy(proxy_port);

    let (answer, busy, notfound, ring) = (free_port(), free_port(), free_port(), free_port());
    let _uas = [
        uas("uas-answer.xml", answer),
        uas("uas-busy.xml", busy),
        uas("uas-notfound.xml", notfound),
        uas("uas-ring.xml", ring),
    ];
    std::thread::sleep(Duration::from_millis(300));

    let step = |scenario, service, calls, ms, disposition, talk_s| Step {
        scenario,
        service,
        calls,
        ms,
        disposition,
        talk_s,
    };
    let plan = [
        step("uac-answer.xml", answer, 3, 2_000, "answered", Some(2)),
        step("uac-hold.xml", answer, 1, 1_000, "answered", Some(3)),
        step("uac-busy.xml", busy, 2, 0, "busy", None),
        step("uac-notfound.xml", notfound, 1, 0, "failed", None),
        step("uac-cancel.xml", ring, 1, 500, "no_answer", None),
        step("uac-register.xml", 1001, 1, 200, "", None),
    ];
    let sipp_said: Vec<SippStats> = plan
        .iter()
        .map(|s| uac(s.scenario, proxy_port, s.service, s.calls, s.ms))
        .collect();
    for (s, said) in plan.iter().zip(&sipp_said) {
        // Every scenario, a 486 or a CANCEL included, is a call sipp
        // completed as written.
        assert_eq!(
            *said,
            SippStats {
                created: u64::from(s.calls),
                successful: u64::from(s.calls),
                failed: 0
            },
            "{}",
            s.scenario
        );
    }

    let calls_made: Vec<&Step> = plan.iter().filter(|s| !s.disposition.is_empty()).collect();
    let expected: usize = calls_made.iter().map(|s| s.calls as usize).sum();
    let calls = sip_calls(&mut server, expected).await;
    assert_eq!(
        calls.len(),
        expected,
        "one call per INVITE dialog, no REGISTER: {calls:#?}"
    );
    let sipp_calls: u64 = plan
        .iter()
        .zip(&sipp_said)
        .filter(|(s, _)| !s.disposition.is_empty())
        .map(|(_, said)| said.created)
        .sum();
    assert_eq!(
        calls.len() as u64,
        sipp_calls,
        "cdrhub's calls are sipp's calls"
    );
    for (s, said) in plan
        .iter()
        .zip(&sipp_said)
        .filter(|(s, _)| !s.disposition.is_empty())
    {
        let service = s.service.to_string();
        let held = |c: &Value| !c["details"]["holds"].as_array().unwrap().is_empty();
        let mine: Vec<&Value> = calls
            .iter()
            .filter(|c| c["dialed"].as_str() == Some(service.as_str()))
            .filter(|c| match s.scenario {
                "uac-hold.xml" => held(c),
                "uac-answer.xml" => !held(c),
                _ => true,
            })
            .collect();
        assert_eq!(
            mine.len() as u64,
            said.successful,
            "{}: {calls:#?}",
            s.scenario
        );
        for c in mine {
            assert_eq!(c["disposition"], s.disposition, "{}: {c:#}", s.scenario);
            assert_eq!(c["caller"], "sipp");
            assert!(!c["ended_at"].is_null(), "{} ended", s.scenario);
            if let Some(talk) = s.talk_s {
                let got = c["talk_s"].as_i64().unwrap();
                assert!(
                    (got - talk).abs() <= 1,
                    "{}: talk {got} s, sipp {talk} s",
                    s.scenario
                );
            }
        }
    }
    let busy_call = calls.iter().find(|c| c["disposition"] == "busy").unwrap();
    assert_eq!(busy_call["details"]["q850_cause"], 17, "the 486's Reason");
    let hold = calls
        .iter()
        .find(|c| !c["details"]["holds"].as_array().unwrap().is_empty())
        .unwrap();
    let holds: Vec<bool> = hold["details"]["holds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["held"].as_bool().unwrap())
        .collect();
    assert_eq!(holds, [true, false], "held, then resumed");

    // The console's half-call tables (seed 004): Basic call, Failed call.
    common::add_user(
        &server,
        "vic",
        cdrhub_model::Role::Viewer,
        "vic's long password",
    );
    let mut browser = common::signed_in(&server, "vic", "vic's long password").await;
    let page = browser.get("/sip").await.text();
    assert!(page.contains("Basic call (4)"), "{page}");
    assert!(page.contains("Failed call (4)"), "{page}");
    assert!(
        page.contains("<td>caller</td>"),
        "who released a basic call"
    );
    assert!(
        page.contains("<td>486</td>") && page.contains("<td>17</td>"),
        "status and cause"
    );

    // The REGISTER and its refresh: one binding of extension 1001, from
    // sipp's address, its login time kept by the refresh (seed 002).
    let regs = server.get_json("/api/v1/sip/registrations").await;
    let regs = regs.as_array().unwrap();
    assert_eq!(regs.len(), 1, "{regs:#?}");
    let r = &regs[0];
    assert_eq!(r["extension"], "1001");
    let source = r["source"].as_str().unwrap();
    assert!(source.starts_with("127.0.0.1:"), "{r:#}");
    assert_eq!(r["contact"], format!("sip:1001@{source}"), "{r:#}");
    let time = |k: &str| cdrhub_model::Timestamp::parse_rfc3339(r[k].as_str().unwrap()).unwrap();
    let (login, refreshed, expires) = (time("login_at"), time("refreshed_at"), time("expires_at"));
    assert!(
        login < refreshed && refreshed.0 - login.0 < 5_000,
        "the re-REGISTER refreshed the binding: {r:#}"
    );
    assert_eq!(expires.0 - refreshed.0, 3_600_000, "Expires 3600: {r:#}");
    let day = &r["login_at"].as_str().unwrap()[..10];
    let hour: usize = r["login_at"].as_str().unwrap()[11..13].parse().unwrap();
    let stats = server
        .get_json(&format!("/api/v1/sip/register-stats?day={day}"))
        .await;
    assert_eq!(stats["peak"], 1, "{stats:#}");
    assert_eq!(stats["hours"][hour]["peak"], 1);
    assert_eq!(stats["hours"][hour]["logins"], 1, "a refresh is no login");
    let page = browser
        .get(&format!("/sip/registrations?day={day}"))
        .await
        .text();
    assert!(
        page.contains("Register status (1)") && page.contains("<td>1001</td>"),
        "{page}"
    );
    assert!(page.contains("Peak registered"), "{page}");
}
