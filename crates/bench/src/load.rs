//! Drives CMS CDR POSTs over keep-alive HTTP/1.1 connections and measures
//! acknowledgement latency.
//!
//! Each connection is one simulated Call Bridge with its own fresh session
//! GUID, sending its POSTs one after the other as CMS does (A.1). Closed loop:
//! the next POST leaves as soon as the previous one is answered. Open loop
//! (`rate`): POSTs are scheduled at fixed intervals and latency is measured
//! from the scheduled time, so a server that stalls is charged for the POSTs
//! queued behind the stall (no coordinated omission).
//!
//! Only `200 OK` counts as acknowledged (A.1). A POST that gets anything else,
//! or no answer, is sent again, as a Call Bridge re-sends unacknowledged
//! records.

use crate::cms::{CallBridge, TrafficShape};
use anyhow::{Context, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpStream;
use uuid::Uuid;

/// How long an open-loop run may go on past its duration to send the POSTs
/// that were scheduled before the end but are still queued.
const DRAIN_GRACE: Duration = Duration::from_secs(10);
/// Pause after a failed POST or connection attempt before trying again.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// Latencies above this are recorded as this (µs).
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Where the POSTs go: an `http://host:port/path` URL taken apart once.
#[derive(Debug, Clone)]
pub struct Target {
    host: String,
    port: u16,
    host_header: HeaderValue,
    path: Uri,
}

impl Target {
    pub fn parse(url: &str) -> anyhow::Result<Target> {
        let uri: Uri = url
            .parse()
            .with_context(|| format!("{url:?} is not a URL"))?;
        if uri.scheme_str() != Some("http") {
            bail!("{url:?} is not an http:// URL (https is not supported)");
        }
        let authority = uri.authority().context("the URL has no host")?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = authority.port_u16().unwrap_or(80);
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).parse()?;
        Ok(Target {
            host,
            port,
            host_header: HeaderValue::from_str(authority.as_str())?,
            path,
        })
    }
}

#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub target: Target,
    pub records_per_post: usize,
    pub connections: usize,
    pub duration: Duration,
    /// Records per second across all connections (open loop); `None` = as fast as answered.
    pub rate: Option<f64>,
    pub seed: u64,
    pub shape: TrafficShape,
    pub timeout: Duration,
}

/// What a run (or one connection of it) counted.
pub struct LoadStats {
    /// POSTs answered 200 and the records they carried.
    pub posts_ok: u64,
    pub records_ok: u64,
    /// Answers other than 200, by status code.
    pub non_200: BTreeMap<u16, u64>,
    /// Connection failures, broken connections and timeouts.
    pub errors: u64,
    /// Open loop: POSTs scheduled within the duration that could not be sent in time.
    pub unsent: u64,
    pub last_error: Option<String>,
    /// Acknowledgement latency of the 200 answers, in µs.
    pub latency: Histogram<u64>,
}

impl LoadStats {
    fn new() -> Self {
        LoadStats {
            posts_ok: 0,
            records_ok: 0,
            non_200: BTreeMap::new(),
            errors: 0,
            unsent: 0,
            last_error: None,
            latency: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .expect("valid histogram bounds"),
        }
    }

    fn merge(&mut self, other: LoadStats) {
        self.posts_ok += other.posts_ok;
        self.records_ok += other.records_ok;
        for (status, n) in other.non_200 {
            *self.non_200.entry(status).or_default() += n;
        }
        self.errors += other.errors;
        self.unsent += other.unsent;
        if other.last_error.is_some() {
            self.last_error = other.last_error;
        }
        self.latency
            .add(other.latency)
            .expect("histograms share bounds");
    }

    pub fn non_200_total(&self) -> u64 {
        self.non_200.values().sum()
    }

    fn error(&mut self, message: String) {
        self.errors += 1;
        self.last_error = Some(message);
    }
}

pub struct LoadResult {
    pub stats: LoadStats,
    /// From the first POST to the last answer.
    pub elapsed: Duration,
}

type Sender = SendRequest<Full<Bytes>>;

/// Opens every connection, then runs them all for the configured duration.
pub async fn run(config: &LoadConfig) -> anyhow::Result<LoadResult> {
    let mut senders = Vec::with_capacity(config.connections);
    for _ in 0..config.connections {
        let sender = connect(&config.target).await.with_context(|| {
            format!(
                "cannot connect to {}:{}",
                config.target.host, config.target.port
            )
        })?;
        senders.push(sender);
    }

    let start = Instant::now();
    let tasks: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(index, sender)| tokio::spawn(drive_connection(config.clone(), index, sender, start)))
        .collect();
    let mut stats = LoadStats::new();
    for task in tasks {
        stats.merge(task.await.context("a connection task panicked")?);
    }
    Ok(LoadResult {
        stats,
        elapsed: start.elapsed(),
    })
}

async fn connect(target: &Target) -> anyhow::Result<Sender> {
    let stream = TcpStream::connect((target.host.as_str(), target.port)).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // Ends when the sender is dropped or the server closes; the sender sees the error.
        let _ = connection.await;
    });
    Ok(sender)
}

/// Sends one POST and reads the whole answer, so the connection can be reused.
async fn post(sender: &mut Sender, target: &Target, body: Bytes) -> anyhow::Result<StatusCode> {
    sender.ready().await?;
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = target.path.clone();
    let headers = request.headers_mut();
    headers.insert(HOST, target.host_header.clone());
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    let response = sender.send_request(request).await?;
    let status = response.status();
    response.into_body().collect().await?;
    Ok(status)
}

fn unix_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// One connection = one simulated Call Bridge.
async fn drive_connection(
    config: LoadConfig,
    index: usize,
    sender: Sender,
    start: Instant,
) -> LoadStats {
    // A fresh session per run and bridge: receivers deduplicate on (session,
    // recordIndex), so reusing one would turn records into duplicates. The
    // seed shapes the calls only.
    let bridge_seed = config.seed ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut bridge = CallBridge::new(bridge_seed, Uuid::new_v4(), unix_millis(), config.shape);
    let deadline = start + config.duration;
    // Open loop: this connection's share of the rate, its start staggered among the others.
    let interval = config.rate.map(|rate| {
        Duration::from_secs_f64(config.records_per_post as f64 * config.connections as f64 / rate)
    });
    let offset = interval.map_or(Duration::ZERO, |i| {
        i.mul_f64(index as f64 / config.connections as f64)
    });

    let mut link = Link {
        config: &config,
        sender: Some(sender),
        stats: LoadStats::new(),
    };
    let mut pending: Option<Bytes> = None;
    let mut body_capacity = 4096;
    let mut sent: u64 = 0;
    loop {
        let scheduled = match interval {
            Some(interval) => start + offset + interval.mul_f64(sent as f64),
            None => Instant::now(),
        };
        if scheduled >= deadline {
            break;
        }
        if let Some(interval) = interval
            && Instant::now() > deadline + DRAIN_GRACE
        {
            let remaining = (deadline - scheduled).as_secs_f64() / interval.as_secs_f64();
            link.stats.unsent += remaining.ceil() as u64;
            break;
        }

        let body = match &pending {
            Some(body) => body.clone(),
            None => {
                let mut buf = Vec::with_capacity(body_capacity);
                bridge.write_document(config.records_per_post, &mut buf);
                body_capacity = body_capacity.max(buf.len() + buf.len() / 4);
                let body = Bytes::from(buf);
                pending = Some(body.clone());
                body
            }
        };
        let scheduled = match interval {
            Some(_) => {
                tokio::time::sleep_until(scheduled.into()).await;
                Some(scheduled)
            }
            None => None,
        };
        match link.send(body, config.records_per_post, scheduled).await {
            Sent::Acknowledged => {
                pending = None;
                sent += 1;
            }
            Sent::Refused => sent += 1,
            Sent::NotConnected => {}
        }
    }

    // A record held back to arrive out of order would otherwise never be
    // sent, and the receiver would rightly report a gap in recordIndex.
    if pending.is_none() {
        let mut buf = Vec::new();
        if bridge.write_held_back(&mut buf) {
            link.send(Bytes::from(buf), 1, None).await;
        }
    }
    link.stats
}

/// The outcome of one attempt to send a POST.
enum Sent {
    /// 200 OK.
    Acknowledged,
    /// Another status, a broken connection or no answer in time.
    Refused,
    /// No connection could be made; nothing was sent.
    NotConnected,
}

/// A keep-alive connection that reconnects when it breaks, and counts.
struct Link<'a> {
    config: &'a LoadConfig,
    sender: Option<Sender>,
    stats: LoadStats,
}

impl Link<'_> {
    /// POSTs `body` (holding `records` records) once. Latency counts from
    /// `scheduled` when given (open loop), else from when the POST leaves.
    async fn send(&mut self, body: Bytes, records: usize, scheduled: Option<Instant>) -> Sent {
        let config = self.config;
        let live = match self.sender.as_mut() {
            Some(live) => live,
            None => match connect(&config.target).await {
                Ok(fresh) => self.sender.insert(fresh),
                Err(e) => {
                    self.stats.error(format!("connect: {e:#}"));
                    tokio::time::sleep(RETRY_PAUSE).await;
                    return Sent::NotConnected;
                }
            },
        };
        let sent_at = scheduled.unwrap_or_else(Instant::now);
        let outcome = tokio::time::timeout(config.timeout, post(live, &config.target, body)).await;
        match outcome {
            Ok(Ok(StatusCode::OK)) => {
                let us = sent_at.elapsed().as_micros() as u64;
                self.stats
                    .latency
                    .saturating_record(us.clamp(1, MAX_LATENCY_US));
                self.stats.posts_ok += 1;
                self.stats.records_ok += records as u64;
                return Sent::Acknowledged;
            }
            Ok(Ok(status)) => {
                *self.stats.non_200.entry(status.as_u16()).or_default() += 1;
            }
            Ok(Err(e)) => {
                self.stats.error(format!("POST: {e:#}"));
                self.sender = None;
            }
            Err(_) => {
                self.stats
                    .error(format!("POST: no answer within {:?}", config.timeout));
                self.sender = None;
                return Sent::Refused;
            }
        }
        tokio::time::sleep(RETRY_PAUSE).await;
        Sent::Refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_target_url() {
        let t = Target::parse("http://127.0.0.1:8200/ingest/cms?system_id=cb1").unwrap();
        assert_eq!(t.host, "127.0.0.1");
        assert_eq!(t.port, 8200);
        assert_eq!(t.host_header, "127.0.0.1:8200");
        assert_eq!(t.path, "/ingest/cms?system_id=cb1");
        assert_eq!(Target::parse("http://localhost/").unwrap().port, 80);
        assert!(Target::parse("https://localhost/").is_err());
    }
}
