//! One client connection: the session of reference B.3. The connection's
//! reader answers the client's requests; its writer sends the queued frames
//! (confirmations and events) in order.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use cdrhub_protocols::cti::{
    CtiBody, CtiError, CtiMessage, HEADER_LEN, OpenConf, STATUS_NOT_MASTER, decode, encode,
    frame_len, message_type,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadHalf, WriteHalf};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::server::{Counters, Shared};

/// Protocol versions the simulator speaks: PV9 (the oldest guide of the
/// reference) to PV25 (UCCE 15.0).
const VERSIONS: RangeInclusive<u32> = 9..=25;
/// The version of a refusal to a client whose version is unknown: Unified
/// CCX's floating-field width (reference B.1).
const FALLBACK_VERSION: u32 = 13;
/// How long queued frames (a CLOSE_CONF, a refusal) may take to leave once
/// the client is done.
const DRAIN: Duration = Duration::from_secs(5);
/// Bytes the writer gathers into one write.
const WRITE_BATCH: usize = 64 * 1024;
/// PeripheralType ACMI_CRS: Unified CCX (reference B.6).
const PERIPHERAL_TYPE_UCCX: u16 = 21;

/// FAILURE_CONF statuses (reference B.3).
mod status {
    pub const INVALID_VERSION: u32 = 1;
    pub const SESSION_NOT_OPEN: u32 = 4;
    pub const INVALID_REQUEST_TYPE: u32 = 98;
}

/// Why a session ended without an error.
#[derive(Debug)]
enum End {
    /// The client closed the connection.
    Disconnected,
    /// CLOSE_REQ, confirmed.
    Closed,
    /// Nothing came from the client for its IdleTimeout.
    Idle,
    /// The session was not opened; FAILURE_CONF with this status was sent.
    Refused(u32),
}

#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Frame(#[from] CtiError),
    #[error("the connection closed inside a frame")]
    Truncated,
    #[error("the client does not read its confirmations")]
    QueueFull,
}

/// Runs connection `id` until the client leaves, the session ends, or the
/// simulator drops the connection (by aborting this task, which closes the
/// socket).
/// A client's byte stream: TCP, or TLS over it.
pub(super) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}
pub(super) type Stream = Box<dyn Io>;
type OwnedReadHalf = ReadHalf<Stream>;
type OwnedWriteHalf = WriteHalf<Stream>;

pub(super) async fn run(shared: Arc<Shared>, id: u64, stream: Stream, peer: SocketAddr) {
    let _registered = Registered {
        shared: &shared,
        id,
    };
    let (reader, writer) = tokio::io::split(stream);
    let (frames, queued) = mpsc::channel(shared.queue_frames);
    let writing = write_frames(writer, queued, &shared.counters);
    tokio::pin!(writing);
    let ended = tokio::select! {
        ended = read_requests(reader, frames, &shared, id, peer) => ended,
        written = &mut writing => {
            match written {
                Ok(()) => tracing::debug!(%peer, "CTI connection closed"),
                Err(e) => tracing::info!(%peer, error = %e, "CTI connection lost"),
            }
            return;
        }
    };
    // No more events; the reader's sender is gone with it, so the writer
    // ends once what is queued is written.
    shared.close_session(id);
    let drained = tokio::time::timeout(DRAIN, &mut writing).await;
    match (ended, drained) {
        (Ok(End::Refused(status)), _) => {
            tracing::info!(%peer, status, "CTI session refused");
        }
        (Ok(end), Ok(Ok(()))) => tracing::info!(%peer, ?end, "CTI session ended"),
        (Ok(end), Ok(Err(e))) => {
            tracing::info!(%peer, ?end, error = %e, "CTI session ended; the last frames were lost")
        }
        (Ok(end), Err(_)) => {
            tracing::info!(%peer, ?end, "CTI session ended; the client did not take the last frames")
        }
        (Err(SessionError::Io(e)), _) => tracing::info!(%peer, error = %e, "CTI connection lost"),
        (Err(e), _) => tracing::warn!(%peer, error = %e, "CTI connection closed"),
    }
}

/// Removes the connection from the registry when its task ends, however it
/// ends.
struct Registered<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.shared.forget(self.id);
    }
}

/// The session: OPEN_REQ first, then heartbeats until CLOSE_REQ.
async fn read_requests(
    mut reader: OwnedReadHalf,
    frames: mpsc::Sender<Bytes>,
    shared: &Shared,
    id: u64,
    peer: SocketAddr,
) -> Result<End, SessionError> {
    let mut buf = BytesMut::with_capacity(4096);
    let Some(first) = read_frame(&mut reader, &mut buf).await? else {
        return Ok(End::Disconnected);
    };
    let body = first.get(HEADER_LEN..).unwrap_or_default();
    // OPEN_REQ's fixed part begins with InvokeID and VersionNumber; the
    // version says how to read the rest.
    let invoke_id = be_u32(body, 0).unwrap_or(0);
    let refuse = |status: u32, version: u32, text: &str| {
        let failure = CtiMessage {
            message_type: message_type::FAILURE_CONF,
            body: CtiBody::FailureConf {
                invoke_id,
                status,
                text: Some(text.to_owned()),
            },
        };
        send(&frames, &failure, version).map(|()| End::Refused(status))
    };
    if be_u32(&first, 4) != Some(message_type::OPEN_REQ) {
        return refuse(
            status::SESSION_NOT_OPEN,
            FALLBACK_VERSION,
            "open the session with OPEN_REQ first",
        );
    }
    let version = be_u32(body, 4).unwrap_or(0);
    if !VERSIONS.contains(&version) {
        return refuse(
            status::INVALID_VERSION,
            FALLBACK_VERSION,
            "protocol versions 9 to 25 are supported",
        );
    }
    let CtiBody::OpenReq(open) = decode(&first, version)?.body else {
        // Type 3 always decodes as OPEN_REQ; refuse rather than trust it.
        return refuse(status::SESSION_NOT_OPEN, version, "expected OPEN_REQ");
    };
    if shared.standby.load(Ordering::SeqCst) {
        return refuse(
            STATUS_NOT_MASTER,
            version,
            "this node is the standby: connect to the master",
        );
    }
    let conf = CtiMessage {
        message_type: message_type::OPEN_CONF,
        body: CtiBody::OpenConf(OpenConf {
            invoke_id: open.invoke_id,
            // Every client is a bridge-mode client here: it is granted what
            // it asked for and gets every event.
            services_granted: open.services_requested,
            monitor_id: 0,
            pg_status: 0,
            central_controller_time: unix_time(),
            peripheral_online: true,
            peripheral_type: PERIPHERAL_TYPE_UCCX,
            // No agent is associated with a bridge-mode session.
            agent_state: 0,
            department_id: Some(0),
            floating: Default::default(),
        }),
    };
    // OPEN_CONF is queued before the session is, so it comes first.
    send(&frames, &conf, version)?;
    if !shared.open_session(id, version, frames.clone()) {
        return Ok(End::Disconnected);
    }
    Counters::add(&shared.counters.sessions_opened, 1);
    tracing::info!(%peer, version, client = %open.client_id, "CTI session open");
    // IdleTimeout in seconds; 0xFFFFFFFF (and 0) for none (reference B.3).
    let idle = match open.idle_timeout {
        0 | u32::MAX => None,
        seconds => Some(Duration::from_secs(u64::from(seconds))),
    };
    loop {
        let frame = match idle {
            Some(idle) => match tokio::time::timeout(idle, read_frame(&mut reader, &mut buf)).await
            {
                Ok(frame) => frame?,
                Err(_) => return Ok(End::Idle),
            },
            None => read_frame(&mut reader, &mut buf).await?,
        };
        let Some(frame) = frame else {
            return Ok(End::Disconnected);
        };
        let reply = match decode(&frame, version)?.body {
            CtiBody::HeartbeatReq { invoke_id } => {
                Counters::add(&shared.counters.heartbeats_answered, 1);
                CtiMessage {
                    message_type: message_type::HEARTBEAT_CONF,
                    body: CtiBody::HeartbeatConf { invoke_id },
                }
            }
            CtiBody::CloseReq { invoke_id, .. } => {
                // No event may follow CLOSE_CONF.
                shared.close_session(id);
                let conf = CtiMessage {
                    message_type: message_type::CLOSE_CONF,
                    body: CtiBody::CloseConf { invoke_id },
                };
                send(&frames, &conf, version)?;
                return Ok(End::Closed);
            }
            // Any other request: its InvokeID leads its fixed part.
            _ => CtiMessage {
                message_type: message_type::FAILURE_CONF,
                body: CtiBody::FailureConf {
                    invoke_id: be_u32(&frame, HEADER_LEN).unwrap_or(0),
                    status: status::INVALID_REQUEST_TYPE,
                    text: Some("the simulator answers only OPEN, HEARTBEAT and CLOSE".to_owned()),
                },
            },
        };
        send(&frames, &reply, version)?;
    }
}

/// Queues a reply. A client whose queue is full is not reading.
fn send(
    frames: &mpsc::Sender<Bytes>,
    message: &CtiMessage,
    version: u32,
) -> Result<(), SessionError> {
    frames
        .try_send(Bytes::from(encode(message, version)))
        .map_err(|_| SessionError::QueueFull)
}

/// The next whole frame, or `None` when the client closed the connection
/// between frames.
async fn read_frame(
    reader: &mut OwnedReadHalf,
    buf: &mut BytesMut,
) -> Result<Option<Bytes>, SessionError> {
    loop {
        if let Some(len) = frame_len(buf)? {
            if buf.len() >= len {
                return Ok(Some(buf.split_to(len).freeze()));
            }
            buf.reserve(len - buf.len());
        }
        if reader.read_buf(buf).await? == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(SessionError::Truncated)
            };
        }
    }
}

/// Writes queued frames, several per write when they wait, until every
/// sender is gone; then closes the sending side.
async fn write_frames(
    mut writer: OwnedWriteHalf,
    mut queued: mpsc::Receiver<Bytes>,
    counters: &Counters,
) -> std::io::Result<()> {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    while let Some(frame) = queued.recv().await {
        batch.clear();
        batch.extend_from_slice(&frame);
        let mut count = 1;
        while batch.len() < WRITE_BATCH {
            match queued.try_recv() {
                Ok(frame) => {
                    batch.extend_from_slice(&frame);
                    count += 1;
                }
                Err(_) => break,
            }
        }
        writer.write_all(&batch).await?;
        Counters::add(&counters.messages_sent, count);
    }
    writer.shutdown().await
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

/// Seconds since 1970, for ICMCentralControllerTime.
fn unix_time() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| u32::try_from(d.as_secs()).ok())
        .unwrap_or(0)
}
