//! The HTTP and HTTPS listeners: one accept loop for both, holding the
//! limits of `[http]` (issue 9). A stranger cannot tie the server up:
//!
//! - at most `max_connections` connections are open per listener; one more
//!   is answered `503` and closed at once;
//! - a sender outside `[http] allow` is closed before a byte is read;
//! - a TLS handshake has `header_timeout_s` to finish;
//! - a request's head has `header_timeout_s` to arrive, and a keep-alive
//!   connection idle that long is closed (hyper's header read timeout);
//! - a request's body has `body_timeout_s` to arrive, plus a second for each
//!   64 KiB it declares; a body that is late fails its request.
//!
//! Refused and timed-out connections are counted for `/metrics` and logged
//! at most once per address every 10 s.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::ConnectInfo;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;
use tracing::{debug, warn};

use crate::sources::guard::{AllowList, Limiter};

/// How long a refused connection's log line stands for the next ones.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// Connections still open at shutdown get this long to finish.
const DRAIN: Duration = Duration::from_secs(10);
/// Bytes of a declared body that buy one more second.
const BYTES_PER_EXTRA_SECOND: u64 = 64 * 1024;

/// The limits one listener holds, from `[http]`.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub allow: AllowList,
}

impl HttpLimits {
    pub fn of(config: &crate::config::HttpConfig) -> HttpLimits {
        HttpLimits {
            max_connections: config.max_connections,
            header_timeout: Duration::from_secs(config.header_timeout_s),
            body_timeout: Duration::from_secs(config.body_timeout_s),
            allow: config.allow.clone(),
        }
    }
}

/// What the web listeners turned away, for `/metrics` and `/api/v1/sources`.
#[derive(Debug, Default, Serialize)]
pub struct HttpStatus {
    /// Connections answered 503 because `max_connections` were open.
    pub refused_at_cap: AtomicU64,
    /// Connections from an address outside `[http] allow`.
    pub refused_not_allowed: AtomicU64,
    /// TLS handshakes that failed or did not finish in time.
    pub tls_failed: AtomicU64,
    /// Request bodies that did not arrive within their deadline.
    pub body_timeouts: AtomicU64,
}

/// Serves `app` on `listener` (over TLS with `tls`) until `stop` turns true,
/// then lets open connections finish for up to ten seconds.
pub async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: Router,
    limits: HttpLimits,
    status: Arc<HttpStatus>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let limits = Arc::new(limits);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let log = Arc::new(Mutex::new(Limiter::new(LOG_EVERY)));
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors, most likely: wait for some to close.
                warn!(error = %e, "cannot accept a web connection; going on");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if !limits.allow.allows(peer.ip()) {
            status.refused_not_allowed.fetch_add(1, Ordering::Relaxed);
            if let Some(held) = log.lock().ok().and_then(|mut l| l.allow(peer.ip())) {
                warn!(%peer, more_not_logged = held, "web connection from an address outside [http] allow closed");
            }
            continue;
        }
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            status.refused_at_cap.fetch_add(1, Ordering::Relaxed);
            if let Some(held) = log.lock().ok().and_then(|mut l| l.allow(peer.ip())) {
                warn!(%peer, max = limits.max_connections, more_not_logged = held,
                    "web connection refused: [http] max_connections are open");
            }
            tokio::spawn(refuse(stream));
            continue;
        };
        let (app, limits, status, stop) =
            (app.clone(), limits.clone(), status.clone(), stop.clone());
        let tls = tls.clone();
        connections.spawn(async move {
            let _permit = permit;
            let _ = stream.set_nodelay(true);
            match tls {
                None => connection(TokioIo::new(stream), peer, app, &limits, status, stop).await,
                Some(acceptor) => {
                    let handshake = crate::sources::tls::handshake(
                        &acceptor,
                        stream,
                        peer,
                        limits.header_timeout,
                    );
                    match handshake.await {
                        Some(stream) => {
                            connection(TokioIo::new(stream), peer, app, &limits, status, stop).await
                        }
                        None => {
                            status.tls_failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        });
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        debug!("web connections still open after {DRAIN:?}; closed");
    }
    Ok(())
}

/// One more connection than allowed: a short 503, so the sender knows why
/// (a CMS retries its POST later), then closed.
async fn refuse(mut stream: TcpStream) {
    let body = "too many open connections; try again later\n";
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Serves HTTP/1.1 on one connection (WebSocket upgrades included) until it
/// closes, or until shutdown, when the request in flight is finished first.
async fn connection<I>(
    io: I,
    peer: SocketAddr,
    app: Router,
    limits: &HttpLimits,
    status: Arc<HttpStatus>,
    mut stop: watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let body_timeout = limits.body_timeout;
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let declared = request
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let deadline = body_timeout + Duration::from_secs(declared / BYTES_PER_EXTRA_SECOND);
        let status = status.clone();
        let request = request.map(|body| Body::new(DeadlineBody::new(body, deadline, status)));
        app.clone().oneshot(request)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    let finished = tokio::select! {
        r = conn.as_mut() => Some(r),
        _ = stop.wait_for(|s| *s) => None,
    };
    let result = match finished {
        Some(r) => r,
        None => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        debug!(%peer, error = %e, "web connection ended with an error");
    }
}

/// A request body that fails once its deadline has passed: a sender that
/// trickles a byte a second cannot hold a request open for ever.
struct DeadlineBody {
    inner: Incoming,
    deadline: Duration,
    /// Started at the first read, so time spent in earlier layers (waiting
    /// for a lock, checking a token) is not counted against the sender.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    status: Arc<HttpStatus>,
}

impl DeadlineBody {
    fn new(inner: Incoming, deadline: Duration, status: Arc<HttpStatus>) -> Self {
        DeadlineBody {
            inner,
            deadline,
            timer: None,
            status,
        }
    }
}

/// A body that did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?} ([http] body_timeout_s)")]
struct BodyTimedOut(Duration);

impl HttpBody for DeadlineBody {
    type Data = bytes::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let deadline = this.deadline;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(deadline)));
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.status.body_timeouts.fetch_add(1, Ordering::Relaxed);
                Poll::Ready(Some(Err(BodyTimedOut(deadline).into())))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
