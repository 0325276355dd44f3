//! TLS for the TCP sources that can speak it (the gateway feed, HEP from
//! agents such as heplify): a listener of its own beside the plain one,
//! with the certificate and key of `[https]`.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::debug;

/// A TLS handshake has this long to finish.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A source's TLS listener and what it accepts with.
pub struct TlsListener {
    pub listener: TcpListener,
    pub acceptor: TlsAcceptor,
}

/// Binds `addr` for TLS with `acceptor` (the `[https]` certificate).
pub async fn bind(
    addr: SocketAddr,
    acceptor: Option<&TlsAcceptor>,
    what: &str,
) -> anyhow::Result<TlsListener> {
    use anyhow::Context;
    let acceptor = acceptor.cloned().with_context(|| {
        format!("{what} over TLS needs the [https] section's certificate and key")
    })?;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for {what} on tls {addr}"))?;
    Ok(TlsListener { listener, acceptor })
}

/// The TLS side of an accepted connection; `None` (logged at debug) when
/// the handshake fails or takes longer than `within` (the sources'
/// [`HANDSHAKE_TIMEOUT`], the web listener's header timeout).
pub async fn handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    from: SocketAddr,
    within: Duration,
) -> Option<TlsStream<TcpStream>> {
    match tokio::time::timeout(within, acceptor.accept(stream)).await {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            debug!(%from, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            debug!(%from, "TLS handshake not finished in time; closed");
            None
        }
    }
}
