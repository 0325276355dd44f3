//! The RADIUS accounting server against radclient (freeradius-utils), the
//! client real deployments test with: answered, busy and unanswered calls
//! as Cisco gateways report them, an interim update, a retransmission, a
//! wrong secret and an Accounting-On.

mod common;

use std::process::{Command, Stdio};

use cdrhub_server::sources::radius::RadiusSourceConfig;
use common::{Options, TestServer};
use serde_json::Value;

const SECRET: &str = "testing123";

async fn radius_server() -> TestServer {
    let config: RadiusSourceConfig = toml::from_str(&format!(
        "enabled = true\n[[clients]]\naddress = \"127.0.0.0/8\"\nsecret = \"{SECRET}\"\n"
    ))
    .unwrap();
    TestServer::start_with(Options {
        radius: Some(config),
        ..Options::default()
    })
    .await
}

/// Sends one Accounting-Request with radclient; whether it was answered.
/// `count` > 1 sends it again as new packets (new identifier), as a gateway
/// that did not hear the answer does.
fn radclient(server: &TestServer, secret: &str, count: u32, attributes: &[&str]) -> bool {
    let addr = server.radius_addr.expect("the RADIUS server listens");
    let mut child = Command::new("radclient")
        .args(["-r", "1", "-t", "2", "-c", &count.to_string()])
        .arg(addr.to_string())
        .args(["acct", secret])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("radclient runs (apt-get install freeradius-utils; scripts/test.sh does)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(attributes.join(", ").as_bytes())
        .unwrap();
    child.wait().unwrap().success()
}

/// One leg's record: Start or Stop of session `session` of conference `conf`.
fn leg(status: &str, session: &str, conf: &str, origin: &str, call_type: &str) -> Vec<String> {
    vec![
        format!("Acct-Status-Type = {status}"),
        format!("Acct-Session-Id = \"{session}\""),
        "NAS-IP-Address = 10.9.9.1".into(),
        "Calling-Station-Id = \"4085551234\"".into(),
        "Called-Station-Id = \"2001\"".into(),
        format!("h323-conf-id = \"h323-conf-id={conf}\""),
        format!("h323-call-origin = \"h323-call-origin={origin}\""),
        format!("h323-call-type = \"h323-call-type={call_type}\""),
        "h323-setup-time = \"h323-setup-time=*10:23:45.123 UTC Mon Nov 20 2000\"".into(),
    ]
}

fn stop(
    session: &str,
    conf: &str,
    origin: &str,
    call_type: &str,
    cause_hex: &str,
    secs: u32,
) -> Vec<String> {
    let mut a = leg("Stop", session, conf, origin, call_type);
    a.push(format!(
        "h323-disconnect-cause = \"h323-disconnect-cause={cause_hex}\""
    ));
    a.push(format!("Acct-Session-Time = {secs}"));
    a.push("Acct-Terminate-Cause = User-Request".into());
    a
}

fn send(server: &TestServer, attributes: Vec<String>) {
    let refs: Vec<&str> = attributes.iter().map(String::as_str).collect();
    assert!(
        radclient(server, SECRET, 1, &refs),
        "answered: {attributes:?}"
    );
}

fn by_conf<'a>(calls: &'a [Value], conf: &str) -> &'a Value {
    calls
        .iter()
        .find(|c| c["details"]["conf_id"] == conf)
        .unwrap_or_else(|| panic!("a call of conference {conf}: {calls:#?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn radclient_reports_calls_that_become_gateway_calls() {
    let mut server = radius_server().await;
    // Answered: the PSTN leg the gateway answered and the VoIP leg it placed.
    send(
        &server,
        leg("Start", "A-1", "CONF-A", "answer", "Telephony"),
    );
    send(&server, leg("Start", "A-2", "CONF-A", "originate", "VoIP"));
    send(
        &server,
        stop("A-2", "CONF-A", "originate", "VoIP", "10", 42),
    );
    send(
        &server,
        stop("A-1", "CONF-A", "answer", "Telephony", "10", 43),
    );
    // Busy (17 = 0x11) and unanswered (19 = 0x13).
    send(&server, leg("Start", "B-1", "CONF-B", "answer", "VoIP"));
    send(&server, stop("B-1", "CONF-B", "answer", "VoIP", "11", 0));
    send(&server, stop("C-1", "CONF-C", "answer", "VoIP", "13", 0));
    // Still in progress, with an interim update.
    send(
        &server,
        leg("Start", "D-1", "CONF-D", "answer", "Telephony"),
    );
    let mut interim = leg("Interim-Update", "D-1", "CONF-D", "answer", "Telephony");
    interim.push("Acct-Session-Time = 30".into());
    send(&server, interim);

    // Sent again as new packets: answered both times, stored once.
    let again = stop("A-1", "CONF-A", "answer", "Telephony", "10", 43);
    let refs: Vec<&str> = again.iter().map(String::as_str).collect();
    assert!(radclient(&server, SECRET, 2, &refs));
    // A wrong secret gets no answer at all.
    assert!(
        !radclient(&server, "not-the-secret", 1, &refs),
        "silence for a wrong secret"
    );

    let calls = server.calls_where("source=radius&limit=100").await;
    assert_eq!(calls.len(), 4, "{calls:#?}");
    let a = by_conf(&calls, "CONF-A");
    assert_eq!(a["disposition"], "answered");
    assert_eq!(a["direction"], "out", "from the PSTN out to VoIP");
    assert_eq!(a["kind"], "gateway");
    assert_eq!(a["caller"], "4085551234");
    assert_eq!(a["legs"], 2);
    assert_eq!(a["sender"], "10.9.9.1");
    assert_eq!(by_conf(&calls, "CONF-B")["disposition"], "busy");
    assert_eq!(by_conf(&calls, "CONF-C")["disposition"], "no_answer");
    let d = by_conf(&calls, "CONF-D");
    assert!(d["ended_at"].is_null(), "in progress");

    let sources = server.get_json("/api/v1/sources").await;
    let radius = sources["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == "radius")
        .expect("the radius source")
        .clone();
    let client = &radius["clients"]["127.0.0.0/8"];
    assert!(client["bad_authenticator"].as_u64() >= Some(1), "{radius}");
    let stats = &radius["senders"][0];
    assert_eq!(stats["sender"], "10.9.9.1");
    assert!(stats["duplicates"].as_u64() >= Some(1), "{radius}");

    // The gateway restarts: its open call is closed, and marked so.
    send(
        &server,
        vec![
            "Acct-Status-Type = Accounting-On".into(),
            "NAS-IP-Address = 10.9.9.1".into(),
        ],
    );
    let calls = server.calls_where("source=radius&limit=100").await;
    let d = by_conf(&calls, "CONF-D");
    assert!(!d["ended_at"].is_null(), "closed by Accounting-On: {d}");
    assert_eq!(d["flags"], serde_json::json!(["closed_by_nas_restart"]));
    let detail = server.call(d["id"].as_str().unwrap()).await;
    assert_eq!(common::event_types(&detail), ["Start", "Interim-Update"]);

    // The gateway is in the gateway list, and has the seed's CDR report.
    let gateways = server.get_json("/api/v1/gateways").await;
    let g = gateways
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "10.9.9.1")
        .expect("the RADIUS gateway is listed")
        .clone();
    assert_eq!(
        (g["source"].as_str(), g["state"].as_str()),
        (Some("radius"), Some("sending"))
    );
    let report = server
        .get_json("/api/v1/gateways/10.9.9.1/report?limit=100")
        .await;
    assert_eq!(report["total"], 4, "{report:#?}");
    let row = |conf: &str| {
        report["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["call_ref"] == conf)
            .unwrap_or_else(|| panic!("{conf} in {report:#}"))
            .clone()
    };
    let a = row("CONF-A");
    assert_eq!(a["notation"], "Call out", "answered on the PSTN side");
    assert_eq!(
        (a["time_s"].as_i64(), a["pstn_caller_id"].as_str()),
        (Some(43), Some("4085551234"))
    );
    // CONF-D was closed unanswered by the Accounting-On: a failed call out.
    for (filter, count) in [
        ("call_out", 1),
        ("call_out_failed", 1),
        ("call_in", 1),
        ("call_in_reject", 1),
        ("only_pstn", 2),
    ] {
        let r = server
            .get_json(&format!("/api/v1/gateways/10.9.9.1/report?filter={filter}"))
            .await;
        assert_eq!(r["filtered"], count, "{filter}: {r:#?}");
    }
}
