//! The CTI client against the simulated CTI server (`cdrhub-sim`) over real
//! sockets: sessions in both field widths make calls of every flow and agent
//! states; a restart of the server in the middle of calls and a switch to
//! the secondary node are followed.

mod common;

use std::time::{Duration, Instant};

use cdrhub_server::sources::cti::CtiSourceConfig;
use cdrhub_sim::cti::{Server, SimConfig, SimHandle};
use common::{Options, TestServer};
use serde_json::Value;

fn sim(config: SimConfig) -> SimHandle {
    Server::start(SimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..config
    })
    .expect("the simulator starts")
}

fn cti_config(primary: &SimHandle, secondary: Option<&SimHandle>, version: u32) -> CtiSourceConfig {
    let text = format!(
        "name = \"uccx\"\nprimary = \"{}\"\n{}version = {version}\nheartbeat_s = 1\nbatch_ms = 20\n",
        primary.addr,
        secondary
            .map(|s| format!("secondary = \"{}\"\n", s.addr))
            .unwrap_or_default()
    );
    toml::from_str(&text).expect("a [[sources.cti]] section")
}

async fn cti_server(config: CtiSourceConfig) -> TestServer {
    TestServer::start_with(Options {
        cti: vec![config],
        ..Options::default()
    })
    .await
}

/// Waits (at most 30 s) until `done` says yes of the server's state.
async fn wait_for(
    server: &mut TestServer,
    what: &str,
    mut done: impl FnMut(&[Value], &Value) -> bool,
) {
    let start = Instant::now();
    loop {
        let calls = server.calls_where("source=cti&limit=1000").await;
        let sources = server.get_json("/api/v1/sources").await;
        let link = &sources["sources"][1]["servers"][0];
        if done(&calls, link) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what} never happened: {} calls, link {link}",
            calls.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ended(calls: &[Value]) -> usize {
    calls.iter().filter(|c| !c["ended_at"].is_null()).count()
}

/// Twenty calls of every flow, in the 1-byte (UCCX, version 13) and the
/// 2-byte (UCCE, version 24) field width: each becomes one call, ended, and
/// the agents' states and the contact-centre reports follow.
#[tokio::test(flavor = "multi_thread")]
async fn a_session_makes_a_call_of_each_simulated_call_in_both_widths() {
    for version in [13, 24] {
        let sim = sim(SimConfig {
            agents: 4,
            rate: 40.0,
            calls: Some(20),
            time_scale: 0.002,
            seed: Some(7),
            ..SimConfig::default()
        });
        let mut server = cti_server(cti_config(&sim, None, version)).await;
        wait_for(&mut server, "twenty ended calls", |calls, link| {
            calls.len() == 20
                && ended(calls) == 20
                && link["connection"]["heartbeats_answered"].as_u64() >= Some(1)
        })
        .await;
        let calls = server.calls_where("source=cti&limit=1000").await;
        let has = |what: &dyn Fn(&Value) -> bool| calls.iter().any(|c| what(&c["details"]));
        assert!(has(&|d| d["joins"][0]["kind"] == "transfer"), "a transfer");
        assert!(
            has(&|d| d["joins"][0]["kind"] == "conference"),
            "a conference"
        );
        assert!(
            has(&|d| d["outbound"]["campaign"].is_string()),
            "an outbound contact"
        );
        assert!(has(&|d| d["queue_wait_s"].is_number()), "a queued call");
        assert!(
            calls.iter().any(|c| c["disposition"] == "answered"),
            "{calls:#?}"
        );
        let detail = server.call(calls[0]["id"].as_str().unwrap()).await;
        assert!(detail["events"].as_array().unwrap().len() >= 5);
        let sources = server.get_json("/api/v1/sources").await;
        let link = &sources["sources"][1]["servers"][0]["connection"];
        assert_eq!(link["state"], "open", "{link}");
        assert_eq!(link["protocol_version"], version);
        assert!(link["stored"].as_u64() > Some(100), "{link}");
        let today = &cdrhub_model::Timestamp::now().to_rfc3339()[..10];
        let cc = server.get_json(&format!("/api/v1/cc?day={today}")).await;
        assert!(!cc["agents"].as_array().unwrap().is_empty(), "{cc}");
        assert!(
            cc["agents"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["calls_handled"].as_u64() > Some(0)),
            "{cc}"
        );
        sim.stop().await;
    }
}

/// The server restarts (every connection dropped) while calls are in
/// progress: the client reconnects and the calls started afterwards are
/// whole. Then the primary becomes the standby and the secondary the
/// master: the client moves to the secondary and its calls arrive.
#[tokio::test(flavor = "multi_thread")]
async fn a_restart_mid_call_and_a_switch_to_the_secondary_are_followed() {
    let primary = sim(SimConfig {
        agents: 6,
        rate: 20.0,
        time_scale: 0.02,
        seed: Some(11),
        ..SimConfig::default()
    });
    let secondary = sim(SimConfig {
        agents: 6,
        rate: 20.0,
        time_scale: 0.02,
        seed: Some(12),
        standby: true,
        base_call_id: 26_777_500,
        ..SimConfig::default()
    });
    let mut server = cti_server(cti_config(&primary, Some(&secondary), 13)).await;
    wait_for(&mut server, "calls from the primary", |calls, _| {
        ended(calls) >= 5
    })
    .await;

    // A restart in the middle of calls.
    primary.drop_connections().await;
    let before = ended(&server.calls_where("source=cti&limit=1000").await);
    wait_for(
        &mut server,
        "a new session and more calls",
        |calls, link| {
            link["connection"]["reconnects"].as_u64() >= Some(1)
                && link["connection"]["state"] == "open"
                && ended(calls) >= before + 5
        },
    )
    .await;
    assert!(primary.stats().sessions_opened >= 2);

    // The pair switches over.
    secondary.set_standby(false);
    primary.set_standby(true);
    primary.drop_connections().await;
    let secondary_addr = secondary.addr.to_string();
    wait_for(&mut server, "a session with the secondary", |_, link| {
        link["connection"]["node"] == secondary_addr.as_str()
            && link["connection"]["state"] == "open"
    })
    .await;
    let from_secondary = wait_calls_with_cti_id_above(&mut server, 26_777_500).await;
    assert!(from_secondary >= 1);
    assert!(secondary.stats().sessions_opened >= 1);
}

/// Calls whose CTI call ids come from the secondary (ids above `base`).
async fn wait_calls_with_cti_id_above(server: &mut TestServer, base: u64) -> usize {
    let start = Instant::now();
    loop {
        let calls = server.calls_where("source=cti&limit=1000").await;
        let mut n = 0;
        for c in calls.iter().filter(|c| !c["ended_at"].is_null()) {
            if c["details"]["cti_calls"][0]["call_id"].as_u64() > Some(base) {
                n += 1;
            }
        }
        if n > 0 {
            return n;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no call from the secondary"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A CTI server of a few lines: it opens the session, then does what
/// `after_open` says with the socket.
async fn fake_server<F, Fut>(after_open: F) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>)
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    use cdrhub_protocols::cti::{self, CtiBody, CtiMessage, OpenConf, message_type};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let after_open = std::sync::Arc::new(after_open);
    let task = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let after_open = after_open.clone();
            tokio::spawn(async move {
                let mut header = [0u8; 8];
                if socket.read_exact(&mut header).await.is_err() {
                    return;
                }
                let len = u32::from_be_bytes(header[..4].try_into().unwrap()) as usize;
                let mut body = vec![0u8; len];
                if socket.read_exact(&mut body).await.is_err() {
                    return;
                }
                let conf = CtiMessage {
                    message_type: message_type::OPEN_CONF,
                    body: CtiBody::OpenConf(OpenConf {
                        invoke_id: 1,
                        services_granted: cti::SERVICE_ALL_EVENTS,
                        peripheral_online: true,
                        peripheral_type: 21,
                        ..OpenConf::default()
                    }),
                };
                let _ = socket.write_all(&cti::encode(&conf, 13)).await;
                after_open(socket).await;
            });
        }
    });
    (addr, task)
}

fn link_of(sources: &Value) -> Value {
    sources["sources"][1]["servers"][0]["connection"].clone()
}

/// A server connected to `node`, and its connection once a session has
/// ended with an error (at most 20 s).
async fn first_error(node: std::net::SocketAddr, heartbeat_s: u32) -> (TestServer, String, Value) {
    let config: CtiSourceConfig = toml::from_str(&format!(
        "name = \"uccx\"\nprimary = \"{node}\"\nversion = 13\nheartbeat_s = {heartbeat_s}\n"
    ))
    .unwrap();
    let mut server = cti_server(config).await;
    let start = Instant::now();
    loop {
        let link = link_of(&server.get_json("/api/v1/sources").await);
        if let Some(e) = link["last_error"].as_str() {
            return (server, e.to_owned(), link);
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{link}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Three heartbeats without an answer reset the connection; a frame whose
/// lengths do not add up does too, and the reason is shown.
#[tokio::test(flavor = "multi_thread")]
async fn unanswered_heartbeats_and_a_bad_frame_reset_the_connection() {
    // Reads everything, answers nothing.
    let (silent, _s) = fake_server(|mut socket| async move {
        use tokio::io::AsyncReadExt;
        let mut sink = [0u8; 1024];
        while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
    let (_server, e, _) = first_error(silent, 1).await;
    assert!(e.contains("3 heartbeats went unanswered"), "{e}");

    // Sends a BEGIN_CALL_EVENT whose header promises more than the body
    // holds, then a new header: the stream is out of step.
    let (garbled, _g) = fake_server(|mut socket| async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut frame = vec![0, 0, 0, 4, 0, 0, 0, 23];
        frame.extend_from_slice(&[0, 0, 0, 0]);
        let _ = socket.write_all(&frame).await;
        let mut sink = [0u8; 1024];
        while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
    let (_server, e, link) = first_error(garbled, 30).await;
    assert!(
        e.contains("BEGIN_CALL_EVENT") && e.contains("cannot be trusted"),
        "{e}"
    );
    assert!(link["reconnects"].as_u64() >= Some(1) || link["state"] != "open");
}

/// A SYSTEM_EVENT saying the CTI server went offline ends the session; the
/// event itself is kept.
#[tokio::test(flavor = "multi_thread")]
async fn an_offline_report_ends_the_session() {
    use cdrhub_protocols::cti::{
        self, CtiBody, CtiMessage, SystemEvent, message_type, system_event,
    };
    let (offline, _o) = fake_server(|mut socket| async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let event = CtiMessage {
            message_type: message_type::SYSTEM_EVENT,
            body: CtiBody::SystemEvent(SystemEvent {
                system_event_id: system_event::CTI_SERVER_OFFLINE,
                ..SystemEvent::default()
            }),
        };
        let _ = socket.write_all(&cti::encode(&event, 13)).await;
        let mut sink = [0u8; 1024];
        while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
    let (_server, e, link) = first_error(offline, 30).await;
    assert!(
        e.contains("reports it is offline") && e.contains("SYSTEM_EVENT 7"),
        "{e}"
    );
    assert!(
        link["stored"].as_u64() >= Some(1),
        "the event is kept: {link}"
    );
}

/// UCCE's secured connection: the simulator speaks TLS with a certificate
/// for 127.0.0.1, and the client trusts it through `tls_ca`. The same
/// calls arrive. With another CA the handshake fails, the link says why
/// and nothing is stored.
#[tokio::test(flavor = "multi_thread")]
async fn the_secured_connection_speaks_tls_and_refuses_an_unknown_certificate() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let write_cert = |name: &str| {
        let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let cert = dir.path().join(format!("{name}.crt"));
        let key = dir.path().join(format!("{name}.key"));
        std::fs::write(&cert, generated.cert.pem()).unwrap();
        std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
        (cert, key)
    };
    let (cert, key) = write_cert("cti");
    let (other_ca, _) = write_cert("other");
    let sim = Server::start_with_tls(
        SimConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            agents: 4,
            rate: 40.0,
            calls: Some(10),
            time_scale: 0.002,
            seed: Some(3),
            ..SimConfig::default()
        },
        Some(cdrhub_sim::cti::tls_acceptor(&cert, &key).unwrap()),
    )
    .unwrap();
    let mut config = cti_config(&sim, None, 24);
    config.tls = true;
    config.tls_ca = Some(cert.clone());
    let mut server = cti_server(config.clone()).await;
    wait_for(&mut server, "ten ended calls over TLS", |calls, link| {
        calls.len() == 10 && ended(calls) == 10 && link["connection"]["state"] == "open"
    })
    .await;

    config.tls_ca = Some(other_ca);
    let mut stranger = cti_server(config).await;
    wait_for(&mut stranger, "a refused handshake", |calls, link| {
        calls.is_empty()
            && link["connection"]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("TLS handshake"))
    })
    .await;
    sim.stop().await;
}

#[test]
fn tls_without_a_ca_is_a_configuration_error() {
    let text = "[[sources.cti]]\nname = \"ucce\"\nprimary = \"10.0.0.5:42030\"\ntls = true\n";
    let e = cdrhub_server::Config::parse(text, std::path::Path::new("cdrhub.toml")).unwrap_err();
    assert!(e.to_string().contains("tls needs tls_ca"), "{e}");
}
