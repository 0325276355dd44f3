//! The call shapes read back by the feed's parser and by the report's
//! rules (docs/gateway-feed.md, "Report"), and whole simulations against a
//! fake server on 127.0.0.1 over TCP and UDP that answers `OK` to every
//! line it can read and `ERR` to the others.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cdrhub_protocols::feed::{
    CallEvent, CallEventKind, FeedBody, FeedMessage, FeedReply, GatewayClock, MAX_LINE_LEN,
    parse_line, split_datagram,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

use super::calls::{CallMaker, Peers, Ports};
use super::plan::{GATEWAY_EPOCH_MS, gateway_ref};
use super::*;
use crate::rng::XorShift;

/// A guard against a test hanging forever, not a measurement.
const PATIENCE: Duration = Duration::from_secs(60);

fn maker(ports: Ports, seed: u64) -> CallMaker {
    let peers = Peers {
        first: 8200,
        count: 3,
        own: 8200,
    };
    CallMaker::new(
        XorShift::new(seed),
        ports,
        GATEWAY_EPOCH_MS,
        74,
        peers,
        Timing::default(),
    )
}

fn seed_ports() -> Ports {
    Ports {
        fxs: 2,
        fxo: 2,
        isdn: 0,
    }
}

/// The notation of a call's events and whether it is "Only PSTN", by the
/// rules of docs/gateway-feed.md, "Report", read independently of the
/// shapes that made them.
fn notation_of(events: &[&CallEvent]) -> (Notation, bool) {
    let has = |name: &str| events.iter().any(|e| e.kind.name() == name);
    let first = events.first().map_or("", |e| e.kind.name());
    let notation = if has("CALL_IN_REJECT") {
        Notation::CallInReject
    } else if has("CALL_OUT_FAIL") || (first == "PSTN_CALL_IN" && !has("DIAL")) {
        Notation::CallOutFailed
    } else if first == "CALL_IN" {
        Notation::CallIn
    } else if first == "HOOK_OFF" && !has("DIAL") {
        Notation::HookOnOff
    } else {
        Notation::CallOut
    };
    (notation, has("PSTN_CALL_IN") || has("PSTN_DIAL"))
}

fn counts_of<'a>(calls: impl IntoIterator<Item = Vec<&'a CallEvent>>) -> CallCounts {
    let mut counts = CallCounts::default();
    for events in calls {
        let (notation, only_pstn) = notation_of(&events);
        match notation {
            Notation::CallOut => counts.call_out += 1,
            Notation::CallIn => counts.call_in += 1,
            Notation::HookOnOff => counts.hook_on_off += 1,
            Notation::CallInReject => counts.call_in_reject += 1,
            Notation::CallOutFailed => counts.call_out_failed += 1,
        }
        counts.only_pstn += u64::from(only_pstn);
    }
    counts
}

#[test]
fn every_shape_parses_back_line_by_line() {
    let mut maker = maker(seed_ports(), 1);
    let mut seq = 1;
    for _ in 0..20 {
        for shape in CallShape::ALL {
            for step in maker.call(shape, 0).steps {
                seq += 1;
                let message = FeedMessage {
                    seq,
                    gateway: gateway_ref(8200),
                    body: FeedBody::Call(step.event),
                };
                let line = message.to_line();
                assert_eq!(parse_line(&line), Ok(message), "{line}");
            }
        }
    }
}

#[test]
fn every_shape_reads_as_its_notation() {
    let mut maker = maker(seed_ports(), 2);
    for _ in 0..20 {
        for shape in CallShape::ALL {
            let call = maker.call(shape, 0);
            let events: Vec<&CallEvent> = call.steps.iter().map(|s| &s.event).collect();
            assert_eq!(
                notation_of(&events),
                (shape.notation(), shape.only_pstn()),
                "{shape:?}: {events:?}"
            );
            let last = events.last().unwrap().kind.name();
            let ends = if shape == CallShape::CallInReject {
                "CALL_IN_REJECT"
            } else {
                "HOOK_ON"
            };
            assert_eq!(last, ends, "{shape:?}");
            assert!(events.iter().all(|e| e.call_ref == call.call_ref));
            assert!(
                events
                    .iter()
                    .all(|e| e.port.is_some() == (shape != CallShape::CallInReject))
            );
        }
    }
}

#[test]
fn the_seeds_call_out_from_pstn_is_one_of_the_shapes() {
    // The page's `ref=2`: the PSTN line rings, the gateway dials the VoIP
    // number, DTMF during the call, three hang-ups.
    let mut maker = maker(seed_ports(), 3);
    let call = (0..50)
        .map(|_| maker.call(CallShape::CallOutFromPstn, 0))
        .find(|c| {
            let dials = c.steps.iter().filter(|s| s.event.kind.name() == "DIAL");
            c.steps[4].event.kind.name() == "RING_BACK" && dials.count() > 1
        })
        .expect("a call with its number at once and DTMF");
    let names: Vec<&str> = call.steps.iter().map(|s| s.event.kind.name()).collect();
    assert_eq!(
        names[..5],
        [
            "PSTN_CALL_IN",
            "PSTN_HOOK_OFF",
            "PSTN_CONNECTED",
            "DIAL",
            "RING_BACK"
        ]
    );
    assert_eq!(
        names[names.len() - 3..],
        ["REMOTE_HOOK_ON", "PSTN_HOOK_ON", "HOOK_ON"]
    );
    // The PSTN line is an FXO port: 3 or 4 on the seed's gateways.
    assert!(matches!(call.steps[0].event.port, Some(3 | 4)));
    let talk = &call.steps[names.iter().position(|&n| n == "TALK").unwrap()];
    assert_eq!(
        talk.event.kind,
        CallEventKind::Talk {
            codec: Some(cdrhub_protocols::feed::CodecInfo::Codes { c: 18, m: 17 })
        }
    );
}

#[test]
fn calls_follow_the_gateways_clock_and_references() {
    let mut maker = maker(seed_ports(), 4);
    let mut start_ms = 0;
    let mut last_at = String::new();
    for n in 1..=30 {
        let call = maker.next_call(&ShapeMix::default(), start_ms);
        assert_eq!(
            call.call_ref,
            74 + n,
            "the LOGIN's callref is the last call's"
        );
        assert_eq!(maker.last_ref(), call.call_ref);
        for step in &call.steps {
            start_ms += step.after_ms;
            let GatewayClock::Read(at) = &step.event.at else {
                panic!("a clock");
            };
            let at = at.to_rfc3339();
            assert!(at.starts_with("2000-01-"), "{at}");
            assert!(at >= last_at, "{at} after {last_at}");
            assert!(
                at.ends_with(":00Z") || !at.contains('.'),
                "whole seconds: {at}"
            );
            last_at = at;
        }
    }
    assert!(start_ms > 0);
}

#[test]
fn a_gateway_without_pstn_lines_makes_no_pstn_calls() {
    let phones_only = Ports {
        fxs: 4,
        fxo: 0,
        isdn: 0,
    };
    let mut maker = maker(phones_only, 5);
    for shape in CallShape::ALL {
        let call = maker.call(shape, 0);
        let events: Vec<&CallEvent> = call.steps.iter().map(|s| &s.event).collect();
        assert!(!call.shape.only_pstn(), "{shape:?} became {:?}", call.shape);
        assert!(!notation_of(&events).1);
        assert!(events.iter().all(|e| e.port.is_none_or(|p| p <= 4)));
    }
}

#[test]
fn a_seed_makes_the_same_calls() {
    let (mut a, mut b) = (maker(seed_ports(), 6), maker(seed_ports(), 6));
    for _ in 0..50 {
        let mix = ShapeMix::default();
        assert_eq!(a.next_call(&mix, 0), b.next_call(&mix, 0));
    }
}

/// A line the fake server took, and where it came from.
#[derive(Debug, Clone)]
struct Taken {
    from: SocketAddr,
    message: FeedMessage,
}

/// How the fake server departs from answering every line at once.
#[derive(Debug, Clone, Copy, Default)]
struct Quirks {
    /// Leaves the first line it reads unanswered (UDP).
    drop_first_answer: bool,
    /// Answers ERR at most once a second per source, as the real server
    /// does over UDP.
    limit_errs: bool,
    /// Closes the first connection, the line unanswered, when it reads
    /// this many lines on it (TCP).
    close_first_after: Option<usize>,
}

/// What the fake server has seen.
#[derive(Debug, Default)]
struct Seen {
    /// Messages taken, each once: a `seq` taken again since the
    /// gateway's LOGIN is answered OK and dropped.
    taken: Vec<Taken>,
    /// Per gateway, the `seq`s taken since its last LOGIN.
    sessions: HashMap<String, HashSet<u32>>,
    /// Lines it could not read.
    bad: u64,
    /// Lines read, answered or not.
    lines: u64,
}

impl Seen {
    /// The answer to a line from `from` (or to the reason it is not a
    /// line), and whether it is an ERR.
    fn answer(&mut self, line: Result<&str, String>, from: SocketAddr) -> (String, bool) {
        self.lines += 1;
        let read = line.and_then(|line| parse_line(line).map_err(|e| e.to_string()));
        let reply = match read {
            Ok(message) => {
                let name = message.gateway.to_string();
                let seq = message.seq;
                if matches!(message.body, FeedBody::Login(_)) {
                    self.sessions.insert(name.clone(), HashSet::new());
                }
                let new = self.sessions.entry(name).or_default().insert(seq);
                if new {
                    self.taken.push(Taken { from, message });
                }
                FeedReply::Ok { seq }
            }
            Err(reason) => {
                self.bad += 1;
                FeedReply::Err { seq: None, reason }
            }
        };
        let is_err = matches!(reply, FeedReply::Err { .. });
        (reply.to_line(), is_err)
    }

    /// The calls taken, each gateway's by reference.
    fn calls(&self) -> BTreeMap<String, CallCounts> {
        let mut by_ref: BTreeMap<(String, u32), Vec<&CallEvent>> = BTreeMap::new();
        for taken in &self.taken {
            if let FeedBody::Call(event) = &taken.message.body {
                let name = taken.message.gateway.to_string();
                by_ref
                    .entry((name, event.call_ref))
                    .or_default()
                    .push(event);
            }
        }
        let mut calls: BTreeMap<String, Vec<Vec<&CallEvent>>> = BTreeMap::new();
        for ((name, _), events) in by_ref {
            calls.entry(name).or_default().push(events);
        }
        calls
            .into_iter()
            .map(|(name, events)| (name, counts_of(events)))
            .collect()
    }

    fn of_type(&self, name: &str, pick: fn(&FeedBody) -> bool) -> Vec<&Taken> {
        self.taken
            .iter()
            .filter(|t| t.message.gateway.to_string() == name && pick(&t.message.body))
            .collect()
    }
}

struct FakeServer {
    addr: ServerAddr,
    seen: Arc<Mutex<Seen>>,
    task: JoinHandle<()>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeServer {
    async fn start(transport: Transport, quirks: Quirks) -> FakeServer {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (addr, task) = match transport {
            Transport::Tcp => {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                (
                    addr,
                    tokio::spawn(serve_tcp(listener, Arc::clone(&seen), quirks)),
                )
            }
            Transport::Udp => {
                let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                let addr = socket.local_addr().unwrap();
                (
                    addr,
                    tokio::spawn(serve_udp(socket, Arc::clone(&seen), quirks)),
                )
            }
        };
        FakeServer {
            addr: ServerAddr { transport, addr },
            seen,
            task,
        }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap()
    }
}

async fn serve_tcp(listener: TcpListener, seen: Arc<Mutex<Seen>>, quirks: Quirks) {
    let mut connections = 0;
    loop {
        let Ok((stream, from)) = listener.accept().await else {
            return;
        };
        let close_after = quirks.close_first_after.filter(|_| connections == 0);
        connections += 1;
        let seen = Arc::clone(&seen);
        // Answers must not wait for the gateway's delayed ACK.
        stream.set_nodelay(true).unwrap();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut read = BufReader::new(read);
            let mut lines = 0;
            loop {
                let mut line = Vec::new();
                if read.read_until(b'\n', &mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                lines += 1;
                if close_after == Some(lines) {
                    return;
                }
                let line = line.strip_suffix(b"\n").unwrap_or(&line);
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let line = if line.len() > MAX_LINE_LEN {
                    Err("line too long".to_owned())
                } else {
                    std::str::from_utf8(line).map_err(|_| "not UTF-8".to_owned())
                };
                let (answer, _) = seen.lock().unwrap().answer(line, from);
                if write
                    .write_all(format!("{answer}\n").as_bytes())
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
    }
}

async fn serve_udp(socket: UdpSocket, seen: Arc<Mutex<Seen>>, quirks: Quirks) {
    let mut buf = vec![0; 65_536];
    let mut dropped = !quirks.drop_first_answer;
    let mut last_err: HashMap<SocketAddr, tokio::time::Instant> = HashMap::new();
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            return;
        };
        let mut answers = Vec::new();
        for line in split_datagram(&buf[..n]) {
            let line = line.map_err(|e| e.to_string());
            let (answer, is_err) = seen.lock().unwrap().answer(line, from);
            if !dropped {
                dropped = true;
                continue;
            }
            if is_err && quirks.limit_errs {
                let now = tokio::time::Instant::now();
                if last_err
                    .get(&from)
                    .is_some_and(|at| now < *at + Duration::from_secs(1))
                {
                    continue;
                }
                last_err.insert(from, now);
            }
            answers.push(answer);
        }
        if !answers.is_empty() {
            let _ = socket.send_to(answers.join("\n").as_bytes(), from).await;
        }
    }
}

/// Calls back to back, every gateway at once.
fn fast(server: ServerAddr) -> SimConfig {
    SimConfig {
        server,
        gateways: 3,
        calls: 30,
        rate: 1e9,
        time_scale: 0.0,
        seed: Some(7),
        resend_after: Duration::from_millis(200),
        ..SimConfig::default()
    }
}

async fn run_patiently(config: SimConfig) -> anyhow::Result<Report> {
    tokio::time::timeout(PATIENCE, run(config))
        .await
        .expect("the simulation ends")
}

/// The checks every run must pass: the server's calls are the report's,
/// and every message sent was taken.
fn assert_the_server_saw_the_report(server: &FakeServer, report: &Report, config: &SimConfig) {
    let seen = server.seen();
    let sent: BTreeMap<String, CallCounts> = report
        .gateways
        .iter()
        .map(|(name, gateway)| (name.clone(), gateway.calls))
        .collect();
    assert_eq!(seen.calls(), sent);
    assert_eq!(report.gateways.len(), config.gateways as usize);
    assert_eq!(
        report.calls().total(),
        u64::from(config.gateways) * config.calls
    );
    let events = seen
        .taken
        .iter()
        .filter(|t| matches!(t.message.body, FeedBody::Call(_)))
        .count() as u64;
    assert_eq!(events, report.call_events_sent);
    assert_eq!(
        report.gateways.values().map(|g| g.call_events).sum::<u64>(),
        report.call_events_sent
    );
    for name in report.gateways.keys() {
        let logouts = seen.of_type(name, |b| matches!(b, FeedBody::Logout { .. }));
        assert_eq!(logouts.len(), 1, "{name} logs out once");
    }
    assert_eq!(seen.bad, report.bad_packets_sent);
}

#[tokio::test]
async fn tcp_gateways_deliver_every_call_with_bad_lines_and_a_relogin() {
    let server = FakeServer::start(Transport::Tcp, Quirks::default()).await;
    let config = SimConfig {
        bad_packets: 7,
        relogin: true,
        ..fast(server.addr)
    };
    let report = run_patiently(config.clone()).await.unwrap();
    assert_the_server_saw_the_report(&server, &report, &config);
    assert_eq!(report.bad_packets_sent, 7);
    // Over TCP every line has its answer.
    assert_eq!(report.errs, 7);
    assert_eq!(report.oks, report.messages_sent);
    assert_eq!(report.resends, 0);
    assert_eq!(report.lines_sent, report.messages_sent + 7);
    assert_eq!((report.logins, report.relogins), (4, 1));
    let seen = server.seen();
    // The first gateway came back from another address.
    let logins = seen.of_type("8200_000C2A022008", |b| matches!(b, FeedBody::Login(_)));
    assert_eq!(logins.len(), 2);
    assert_ne!(logins[0].from, logins[1].from);
    assert_eq!(report.gateways["8200_000C2A022008"].logins, 2);
    // A gateway on TCP knows the address it sends from.
    for login in &logins {
        let FeedBody::Login(body) = &login.message.body else {
            unreachable!("a LOGIN");
        };
        assert_eq!(body.public_addr, Some(login.from));
    }
    // Each session numbers its messages 1, 2, 3, ... in the order sent.
    let mut next: HashMap<String, u32> = HashMap::new();
    for taken in &seen.taken {
        let name = taken.message.gateway.to_string();
        let expected = match taken.message.body {
            FeedBody::Login(_) => 1,
            _ => next[&name],
        };
        assert_eq!(taken.message.seq, expected, "{name}");
        next.insert(name, expected + 1);
    }
}

#[tokio::test]
async fn udp_gateway_sends_again_when_an_answer_is_lost() {
    let quirks = Quirks {
        drop_first_answer: true,
        ..Quirks::default()
    };
    let server = FakeServer::start(Transport::Udp, quirks).await;
    let config = SimConfig {
        gateways: 1,
        ..fast(server.addr)
    };
    let report = run_patiently(config.clone()).await.unwrap();
    assert_the_server_saw_the_report(&server, &report, &config);
    assert!(report.resends >= 1, "{report:?}");
    assert_eq!(report.lines_sent, report.messages_sent + report.resends);
    // The LOGIN went twice with seq=1; every other seq once.
    let seen = server.seen();
    assert_eq!(seen.lines, report.lines_sent);
}

#[tokio::test]
async fn udp_bad_lines_do_not_wait_for_rate_limited_answers() {
    let quirks = Quirks {
        limit_errs: true,
        ..Quirks::default()
    };
    let server = FakeServer::start(Transport::Udp, quirks).await;
    let config = SimConfig {
        bad_packets: 10,
        relogin: true,
        ..fast(server.addr)
    };
    let report = run_patiently(config.clone()).await.unwrap();
    assert_the_server_saw_the_report(&server, &report, &config);
    assert_eq!(report.bad_packets_sent, 10);
    // At most one ERR a second per source: some bad lines have none, and
    // the gateways did not wait for them.
    assert!(report.errs <= 10, "{report:?}");
    let seen = server.seen();
    let logins = seen.of_type("8200_000C2A022008", |b| matches!(b, FeedBody::Login(_)));
    assert_eq!(logins.len(), 2);
    assert_ne!(logins[0].from, logins[1].from);
}

#[tokio::test]
async fn tcp_gateway_connects_again_when_the_server_closes() {
    let quirks = Quirks {
        close_first_after: Some(10),
        ..Quirks::default()
    };
    let server = FakeServer::start(Transport::Tcp, quirks).await;
    let config = SimConfig {
        gateways: 1,
        ..fast(server.addr)
    };
    let report = run_patiently(config.clone()).await.unwrap();
    assert_the_server_saw_the_report(&server, &report, &config);
    assert_eq!(report.reconnects, 1);
    assert_eq!(report.logins, 2);
    assert!(report.resends >= 1, "the unanswered line is sent again");
}

#[tokio::test]
async fn a_quiet_gateway_sends_keepalive() {
    let server = FakeServer::start(Transport::Tcp, Quirks::default()).await;
    // Each call waits 100 gateway seconds, 0.2 s of real time, between its
    // answer and its end: far longer than the keep-alive interval.
    let config = SimConfig {
        gateways: 1,
        calls: 2,
        mix: "in=1".parse().unwrap(),
        time_scale: 0.002,
        timing: Timing {
            talk_ms: 100_000,
            ..Timing::default()
        },
        keepalive_after: Duration::from_millis(20),
        ..fast(server.addr)
    };
    let report = run_patiently(config.clone()).await.unwrap();
    assert_the_server_saw_the_report(&server, &report, &config);
    assert!(report.keepalives_sent >= 1, "{report:?}");
    let seen = server.seen();
    let keepalives = seen.of_type("8200_000C2A022008", |b| {
        matches!(b, FeedBody::KeepAlive { clock: Some(_) })
    });
    assert_eq!(keepalives.len() as u64, report.keepalives_sent);
}

#[tokio::test]
async fn stop_ends_the_calls_and_logs_out() {
    let server = FakeServer::start(Transport::Tcp, Quirks::default()).await;
    // A call a day: only the first call of each gateway is due.
    let config = SimConfig {
        rate: 1.0 / 86_400.0,
        ..fast(server.addr)
    };
    let gateways = Gateways::start(config).unwrap();
    let monitor = gateways.monitor();
    let first_call = async {
        while monitor.progress().calls_done < 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(PATIENCE, first_call).await.unwrap();
    monitor.stop();
    let report = tokio::time::timeout(PATIENCE, gateways.finish())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.calls().total(), 1);
    let seen = server.seen();
    for name in report.gateways.keys() {
        assert_eq!(
            seen.of_type(name, |b| matches!(b, FeedBody::Logout { .. }))
                .len(),
            1
        );
    }
}

#[tokio::test]
async fn an_absent_server_fails_the_run() {
    // A port just freed: nothing listens there.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let config = fast(ServerAddr {
        transport: Transport::Tcp,
        addr,
    });
    let error = run_patiently(config).await.unwrap_err();
    assert!(
        format!("{error:#}").contains("cannot reach the server at tcp://127.0.0.1"),
        "{error:#}"
    );
}

#[tokio::test]
async fn an_absent_udp_server_fails_the_run_after_the_last_send() {
    let addr = UdpSocket::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let config = SimConfig {
        gateways: 1,
        resend_after: Duration::from_millis(20),
        max_sends: 3,
        ..fast(ServerAddr {
            transport: Transport::Udp,
            addr,
        })
    };
    let error = run_patiently(config).await.unwrap_err();
    assert!(
        format!("{error:#}").contains("did not answer message seq=1 (3 sends)"),
        "{error:#}"
    );
}
