//! The simulated CTI server over TCP, with a client built from the
//! protocols codec: sessions at version 13 (Unified CCX, one-byte floating
//! tags) and 24 (UCCE, two-byte), heartbeats, every flow's events, the
//! standby's refusal, dropped connections and a client that does not read.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use cdrhub_protocols::cti::{
    AGENT_STATE_MASK_ALL, CALL_MSG_MASK_ALL, CallEventKind as K, CtiBody, CtiMessage, OpenReq,
    SERVICE_ALL_EVENTS, STATUS_NOT_MASTER, decode, encode, frame_len, message_type, tags,
};
use cdrhub_sim::cti::flows::call_type;
use cdrhub_sim::cti::{FlowMix, Server, SimConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const BASE: u32 = 16_777_500;
/// A guard against a test hanging forever, not a measurement.
const PATIENCE: Duration = Duration::from_secs(60);

fn config() -> SimConfig {
    SimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        agents: 4,
        rate: 1_000.0,
        calls: Some(0),
        time_scale: 0.0,
        mix: "queued=1,transfer=1,conference=1,accept=1,skip=1,reject=1"
            .parse()
            .unwrap(),
        seed: Some(3),
        base_call_id: BASE,
        ..SimConfig::default()
    }
}

/// A CTI client speaking one protocol version.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
    version: u32,
}

impl Client {
    async fn connect(addr: SocketAddr, version: u32) -> Client {
        Client {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
            version,
        }
    }

    async fn send(&mut self, body: CtiBody, message_type: u32) {
        let frame = encode(&CtiMessage { message_type, body }, self.version);
        self.stream.write_all(&frame).await.unwrap();
    }

    async fn open_req(&mut self, invoke_id: u32) {
        let req = OpenReq {
            invoke_id,
            version: self.version,
            idle_timeout: 120,
            peripheral_id: 0,
            services_requested: SERVICE_ALL_EVENTS,
            call_msg_mask: CALL_MSG_MASK_ALL,
            agent_state_mask: AGENT_STATE_MASK_ALL,
            config_msg_mask: 0,
            client_id: "cdrhub-test".to_owned(),
            client_password: String::new(),
            floating: Default::default(),
        };
        self.send(CtiBody::OpenReq(req), message_type::OPEN_REQ)
            .await;
    }

    /// The next message, or `None` when the server closed the connection.
    async fn next(&mut self) -> Option<CtiMessage> {
        tokio::time::timeout(PATIENCE, self.read_message())
            .await
            .expect("the server sends or closes")
    }

    async fn read_message(&mut self) -> Option<CtiMessage> {
        loop {
            if let Some(len) = frame_len(&self.buf).expect("a frame within the limit")
                && self.buf.len() >= len
            {
                let frame: Vec<u8> = self.buf.drain(..len).collect();
                return Some(decode(&frame, self.version).expect("a decodable frame"));
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => {
                    assert!(self.buf.is_empty(), "closed inside a frame");
                    return None;
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads bytes until the server closes the connection. A connection
    /// the server drops may end inside a frame, as at a crash.
    async fn until_closed(&mut self) {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            let read = tokio::time::timeout(PATIENCE, self.stream.read(&mut chunk))
                .await
                .expect("the server closes");
            if matches!(read, Ok(0) | Err(_)) {
                return;
            }
        }
    }
}

/// Opens a session and checks the OPEN_CONF.
async fn open(addr: SocketAddr, version: u32) -> Client {
    let mut client = Client::connect(addr, version).await;
    client.open_req(7).await;
    match client.next().await.map(|m| m.body) {
        Some(CtiBody::OpenConf(conf)) => {
            assert_eq!(conf.invoke_id, 7);
            assert_eq!(conf.services_granted, SERVICE_ALL_EVENTS);
            assert_eq!(conf.peripheral_type, 21, "Unified CCX");
            assert!(conf.peripheral_online);
        }
        other => panic!("expected OPEN_CONF, got {other:?}"),
    }
    client
}

/// What a client saw of the calls.
#[derive(Default)]
struct Seen {
    /// Call ids in the order their BEGIN_CALL came, with the call type.
    begun: Vec<(u32, u16)>,
    ended: BTreeSet<u32>,
    /// Every call event's id.
    ids: BTreeSet<u32>,
    /// The flows: inbound and outbound calls by their first call id.
    roots: Vec<u32>,
    transfers: Vec<(u32, u32)>,
    conferences: Vec<(u32, u32)>,
    previews: usize,
    responses: BTreeMap<String, usize>,
    agent_states: usize,
    heartbeats: Vec<u32>,
}

impl Seen {
    fn take(&mut self, message: CtiMessage) {
        match message.body {
            CtiBody::Call(e) => {
                self.ids.insert(e.connection_call_id);
                match e.kind {
                    K::BeginCall => {
                        let t = e.call_type.unwrap_or(0);
                        self.begun.push((e.connection_call_id, t));
                        match t {
                            call_type::OUT | call_type::RESERVATION => {
                                self.roots.push(e.connection_call_id)
                            }
                            call_type::PREVIEW => self.previews += 1,
                            _ => {}
                        }
                    }
                    K::EndCall => {
                        self.ended.insert(e.connection_call_id);
                    }
                    K::Transferred | K::Conferenced => {
                        let pair = (e.connection_call_id, e.secondary_call_id.unwrap_or(0));
                        // The connected parties are on the original call.
                        assert!(
                            e.floating.u32s(tags::PARTY_CALLID).all(|p| p == pair.0),
                            "{e:?}"
                        );
                        if e.kind == K::Transferred {
                            self.transfers.push(pair);
                        } else {
                            self.conferences.push(pair);
                        }
                    }
                    K::CallDataUpdate => {
                        if let Some(r) = e.floating.named_variable("BAResponse")
                            && e.call_type == Some(call_type::RESERVATION)
                        {
                            *self.responses.entry(r.to_owned()).or_default() += 1;
                        }
                    }
                    _ => {}
                }
            }
            CtiBody::AgentState(a) => {
                assert!(a.floating.str(tags::AGENT_ID_LONG).is_some());
                assert!(a.floating.str(tags::AGENT_EXTENSION).is_some());
                self.agent_states += 1;
            }
            CtiBody::HeartbeatConf { invoke_id } => self.heartbeats.push(invoke_id),
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Every flow of `calls` calls has begun and every call has ended.
    fn complete(&self, calls: usize) -> bool {
        self.roots.len() == calls && self.begun.iter().all(|(id, _)| self.ended.contains(id))
    }
}

/// Reads until `calls` calls are complete.
async fn receive_calls(client: &mut Client, seen: &mut Seen, calls: usize) {
    while !seen.complete(calls) {
        let message = client.next().await.expect("the session stays open");
        seen.take(message);
    }
}

/// Checks the call ids of `calls` flows from `BASE`: a consult is the
/// original's id + 2 (the seed's 16777533/16777535), and no id repeats
/// across calls.
fn check_call_ids(seen: &Seen, calls: usize) {
    assert_eq!(seen.roots.len(), calls);
    assert_eq!(
        seen.ids.first(),
        Some(&BASE),
        "the first call has the base id"
    );
    assert!(
        seen.ids
            .iter()
            .all(|id| (BASE..BASE + 3 * calls as u32).contains(id))
    );
    let begun: BTreeSet<u32> = seen.begun.iter().map(|(id, _)| *id).collect();
    assert_eq!(begun.len(), seen.begun.len(), "a call id begins once");
    assert_eq!(begun, seen.ended, "every call that began ended");
    for (original, consult) in seen.transfers.iter().chain(&seen.conferences) {
        assert_eq!(*consult, original + 2);
        assert!(begun.contains(original) && begun.contains(consult));
    }
}

/// Every flow kind appears among the calls.
fn check_every_flow(seen: &Seen) {
    assert!(!seen.transfers.is_empty(), "a transfer");
    assert!(!seen.conferences.is_empty(), "a conference");
    assert!(seen.previews > 0, "an accepted preview");
    for response in ["Accept", "Skip", "Reject"] {
        assert!(seen.responses.contains_key(response), "{response}");
    }
    assert_eq!(seen.previews, seen.responses["Accept"]);
    let inbound = seen
        .begun
        .iter()
        .filter(|(_, t)| *t == call_type::OUT)
        .count();
    assert!(
        inbound > seen.transfers.len() + seen.conferences.len(),
        "a plain queued call"
    );
    assert!(seen.agent_states > 0);
}

async fn a_session_gets_heartbeats_and_every_flow(version: u32, time_scale: f64) {
    let calls = 30;
    let sim = Server::start(SimConfig {
        calls: Some(calls as u64),
        time_scale,
        ..config()
    })
    .unwrap();
    let mut client = open(sim.addr, version).await;
    client
        .send(
            CtiBody::HeartbeatReq { invoke_id: 77 },
            message_type::HEARTBEAT_REQ,
        )
        .await;
    let mut seen = Seen::default();
    receive_calls(&mut client, &mut seen, calls).await;
    // The heartbeat's confirmation comes among the events.
    while seen.heartbeats.is_empty() {
        let message = client.next().await.expect("HEARTBEAT_CONF");
        seen.take(message);
    }
    assert_eq!(seen.heartbeats, [77]);
    check_call_ids(&seen, calls);
    check_every_flow(&seen);
    if time_scale == 0.0 {
        // Played one after another: the flows' first ids increase.
        assert!(
            seen.roots.windows(2).all(|w| w[0] < w[1]),
            "{:?}",
            seen.roots
        );
    }

    client
        .send(
            CtiBody::CloseReq {
                invoke_id: 78,
                status: 0,
            },
            message_type::CLOSE_REQ,
        )
        .await;
    match client.next().await.map(|m| m.body) {
        Some(CtiBody::CloseConf { invoke_id }) => assert_eq!(invoke_id, 78),
        other => panic!("expected CLOSE_CONF, got {other:?}"),
    }
    assert!(client.next().await.is_none(), "closed after CLOSE_CONF");
    let stats = sim.stats();
    assert_eq!(stats.calls_started, calls as u64);
    assert_eq!(stats.sessions_opened, 1);
    assert_eq!(stats.heartbeats_answered, 1);
    assert_eq!(stats.slow_clients_dropped, 0);
    sim.stop().await;
}

#[tokio::test]
async fn a_version_13_session_gets_heartbeats_and_every_flow() {
    a_session_gets_heartbeats_and_every_flow(13, 0.0).await;
}

#[tokio::test]
async fn a_version_24_session_gets_heartbeats_and_every_flow() {
    a_session_gets_heartbeats_and_every_flow(24, 0.0).await;
}

/// Calls with delays play concurrently, each in its own order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_with_delays_arrive_whole() {
    a_session_gets_heartbeats_and_every_flow(13, 0.000_5).await;
}

/// A UCCX (13) and a UCCE (24) session get the same events, each in its
/// width; the second to open may miss the first calls.
#[tokio::test]
async fn two_sessions_of_different_versions_get_the_same_events() {
    let calls = 12;
    let sim = Server::start(SimConfig {
        calls: Some(calls as u64),
        rate: 50.0,
        ..config()
    })
    .unwrap();
    let mut narrow = open(sim.addr, 13).await;
    let mut wide = open(sim.addr, 24).await;
    let mut seen = Seen::default();
    let mut narrow_events = Vec::new();
    while !seen.complete(calls) {
        let message = narrow.next().await.expect("the session stays open");
        narrow_events.push(comparable(&message));
        seen.take(message);
    }
    let last = narrow_events.last().cloned();
    let mut wide_events = Vec::new();
    while wide_events.last() != last.as_ref() {
        let message = wide.next().await.expect("the session stays open");
        wide_events.push(comparable(&message));
    }
    assert!(!wide_events.is_empty());
    assert!(narrow_events.ends_with(&wide_events));
    sim.stop().await;
}

/// A message as both versions decode it: DepartmentID exists only from
/// version 19 on.
fn comparable(message: &CtiMessage) -> CtiMessage {
    let mut message = message.clone();
    if let CtiBody::AgentState(a) = &mut message.body {
        a.department_id = None;
    }
    message
}

#[tokio::test]
async fn a_standby_node_refuses_the_session_with_not_master() {
    let sim = Server::start(SimConfig {
        standby: true,
        ..config()
    })
    .unwrap();
    let mut client = Client::connect(sim.addr, 13).await;
    client.open_req(9).await;
    match client.next().await.map(|m| m.body) {
        Some(CtiBody::FailureConf {
            invoke_id, status, ..
        }) => {
            assert_eq!(invoke_id, 9);
            assert_eq!(status, STATUS_NOT_MASTER);
            assert_eq!(status, 92);
        }
        other => panic!("expected FAILURE_CONF, got {other:?}"),
    }
    assert!(client.next().await.is_none(), "the standby closes");

    // Promoted, it opens sessions.
    sim.set_standby(false);
    let _client = open(sim.addr, 24).await;
    let stats = sim.stats();
    assert_eq!((stats.connections_accepted, stats.sessions_opened), (2, 1));
    sim.stop().await;
}

#[tokio::test]
async fn drop_connections_closes_every_socket_and_keeps_listening() {
    let sim = Server::start(config()).unwrap();
    let mut first = open(sim.addr, 13).await;
    let mut second = open(sim.addr, 24).await;
    assert_eq!(sim.stats().sessions_open, 2);
    sim.drop_connections().await;
    assert!(first.next().await.is_none());
    assert!(second.next().await.is_none());
    assert_eq!(sim.stats().sessions_open, 0);

    let mut again = open(sim.addr, 13).await;
    again
        .send(
            CtiBody::HeartbeatReq { invoke_id: 5 },
            message_type::HEARTBEAT_REQ,
        )
        .await;
    assert_eq!(
        again.next().await.map(|m| m.body),
        Some(CtiBody::HeartbeatConf { invoke_id: 5 })
    );
    assert_eq!(sim.stats().connections_accepted, 3);
    sim.stop().await;
}

#[tokio::test]
async fn a_request_before_open_req_or_of_an_unknown_version_is_refused() {
    let sim = Server::start(config()).unwrap();
    let mut early = Client::connect(sim.addr, 13).await;
    early
        .send(
            CtiBody::HeartbeatReq { invoke_id: 3 },
            message_type::HEARTBEAT_REQ,
        )
        .await;
    match early.next().await.map(|m| m.body) {
        Some(CtiBody::FailureConf {
            invoke_id, status, ..
        }) => assert_eq!((invoke_id, status), (3, 4), "E_CTI_SESSION_NOT_OPEN"),
        other => panic!("expected FAILURE_CONF, got {other:?}"),
    }
    assert!(early.next().await.is_none());

    let mut future = Client::connect(sim.addr, 99).await;
    future.open_req(4).await;
    // The refusal is in Unified CCX's width, whatever the client asked.
    future.version = 13;
    match future.next().await.map(|m| m.body) {
        Some(CtiBody::FailureConf {
            invoke_id, status, ..
        }) => assert_eq!((invoke_id, status), (4, 1), "E_CTI_INVALID_VERSION"),
        other => panic!("expected FAILURE_CONF, got {other:?}"),
    }
    assert_eq!(sim.stats().sessions_opened, 0);
    sim.stop().await;
}

/// A client that opens a session and never reads is disconnected once its
/// queue is full; the client that reads gets every call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_is_dropped_and_does_not_hold_up_the_others() {
    // Enough calls (about 2.5 kB each) to fill the socket buffers between
    // the server and the idle client (up to 4 MB here, tcp_wmem) and its
    // queue; a queue and a rate that leave the reading client a margin on
    // a busy machine.
    let calls = 4_000;
    let sim = Server::start(SimConfig {
        calls: Some(calls as u64),
        rate: 1_000.0,
        queue_frames: 8_192,
        mix: FlowMix::default(),
        ..config()
    })
    .unwrap();
    let mut reader = open(sim.addr, 13).await;
    // The idle client takes little into its own buffer.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(sim.addr).await.unwrap();
    let mut idle = Client {
        stream,
        buf: Vec::new(),
        version: 13,
    };
    idle.open_req(1).await;

    let mut seen = Seen::default();
    receive_calls(&mut reader, &mut seen, calls).await;
    check_call_ids(&seen, calls);
    assert_eq!(sim.stats().slow_clients_dropped, 1);
    // What was already sent reaches the idle client, then the end.
    idle.until_closed().await;
    sim.stop().await;
}
