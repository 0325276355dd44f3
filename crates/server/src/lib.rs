//! The cdrhub server: listeners, source receivers, the REST API and metrics,
//! wired to a [`Store`].

mod api;
pub mod auth;
pub mod bus;
pub mod config;
mod console;
pub mod delivery;
pub mod exports;
mod listener;
mod metrics;
pub mod retention;
pub mod sources;
mod spreadsheet;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use cdrhub_store::Store;
use tokio::net::TcpListener;
use tracing::{info, warn};

pub use config::Config;
pub use metrics::Metrics;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    /// The data removal job and its alarms.
    pub retention: Arc<retention::Retention>,
    /// Scheduled exports and webhooks, and their delivery spool.
    pub exports: Arc<exports::Exports>,
    /// With `[bus]` and the collector role: where the sources' batches go
    /// instead of the store (set by [`BoundServer::bind`]).
    pub bus: Option<Arc<bus::Collector>>,
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    let require_token = axum::middleware::from_fn_with_state(state.clone(), auth::require_auth);
    let mut app = api::routes()
        .route_layer(require_token.clone())
        .merge(console::routes())
        .route("/healthz", get(metrics::healthz));
    if state.config.metrics.enabled {
        let metrics = Router::new().route("/metrics", get(metrics::render));
        app = app.merge(if state.config.metrics.require_token {
            metrics.route_layer(require_token.clone())
        } else {
            metrics
        });
    }
    let events = &state.config.sources.events;
    app = app.merge(
        Router::new()
            .route(
                "/api/v1/events",
                post(sources::events::post).layer(DefaultBodyLimit::max(events.max_body_bytes)),
            )
            .route("/api/v1/events/ws", get(sources::events::websocket))
            .route_layer(require_token.clone()),
    );
    let cms = &state.config.sources.cms;
    if cms.enabled {
        app = app.route(
            &cms.path,
            post(sources::cms::ingest).layer(DefaultBodyLimit::max(cms.max_body_bytes)),
        );
    }
    // Outermost: the security headers go on every response, the API's,
    // the ingest endpoints', `/metrics`' and a 404's included.
    app.layer(axum::middleware::from_fn(console::security_headers))
        .with_state(state)
}

/// A server whose sockets are bound; [`BoundServer::run`] serves until shutdown.
pub struct BoundServer {
    state: AppState,
    http: Option<TcpListener>,
    https: Option<(TcpListener, tokio_rustls::TlsAcceptor)>,
    radius: Option<tokio::net::UdpSocket>,
    feed: Option<sources::feed::FeedSockets>,
    hep: Option<sources::hep::HepSockets>,
}

impl BoundServer {
    /// Binds the configured listeners. `http_listen` overrides `http.listen`.
    pub async fn bind(mut state: AppState) -> anyhow::Result<Self> {
        let config = state.config.clone();
        if state.bus.is_none() {
            state.bus = bus::collector_for(&config, state.metrics.bus.clone()).await?;
        }
        // A worker-only process runs no listener of its own.
        let collects = bus::collects(&state);
        let http = if config.http.enabled {
            let addr = config.http.listen;
            Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr}"))?,
            )
        } else {
            None
        };
        let https = match &config.https {
            Some(tls) => {
                let rustls =
                    axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
                        .await
                        .with_context(|| {
                            format!(
                                "cannot load the HTTPS certificate {} and key {}",
                                tls.cert.display(),
                                tls.key.display()
                            )
                        })?;
                let listener = TcpListener::bind(tls.listen)
                    .await
                    .with_context(|| format!("cannot listen on {}", tls.listen))?;
                Some((
                    listener,
                    tokio_rustls::TlsAcceptor::from(rustls.get_inner()),
                ))
            }
            None => None,
        };
        // The TCP sources' TLS listeners use the same certificate.
        let tls = https.as_ref().map(|(_, acceptor)| acceptor);
        let radius = if collects && config.sources.radius.enabled {
            Some(sources::radius::bind(&config.sources.radius).await?)
        } else {
            None
        };
        let feed = if collects && config.sources.feed.enabled {
            Some(sources::feed::bind(&config.sources.feed, tls).await?)
        } else {
            None
        };
        let hep = if collects && config.sources.hep.enabled {
            Some(sources::hep::bind(&config.sources.hep, tls).await?)
        } else {
            None
        };
        Ok(BoundServer {
            state,
            http,
            https,
            radius,
            feed,
            hep,
        })
    }

    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Where the RADIUS accounting server listens, when enabled.
    pub fn radius_addr(&self) -> Option<SocketAddr> {
        self.radius.as_ref().and_then(|s| s.local_addr().ok())
    }

    /// Where the gateway feed listens (TCP, UDP), when enabled.
    pub fn feed_addrs(&self) -> Option<(SocketAddr, SocketAddr)> {
        let f = self.feed.as_ref()?;
        Some((f.tcp.local_addr().ok()?, f.udp.local_addr().ok()?))
    }

    /// Where the HEP listener listens (UDP, TCP), when enabled.
    pub fn hep_addrs(&self) -> Option<(SocketAddr, SocketAddr)> {
        let h = self.hep.as_ref()?;
        Some((h.udp.local_addr().ok()?, h.tcp.local_addr().ok()?))
    }

    /// Where the gateway feed takes TLS, when `tls_listen` is set.
    pub fn feed_tls_addr(&self) -> Option<SocketAddr> {
        let tls = self.feed.as_ref()?.tls.as_ref()?;
        tls.listener.local_addr().ok()
    }

    /// Where HEP is taken over TLS, when `tls_listen` is set.
    pub fn hep_tls_addr(&self) -> Option<SocketAddr> {
        let tls = self.hep.as_ref()?.tls.as_ref()?;
        tls.listener.local_addr().ok()
    }

    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// Serves until `shutdown` resolves, then lets requests in flight finish.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let app = router(self.state.clone());
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });

        tokio::spawn(retention::run_daily(self.state.clone(), stop_rx.clone()));
        if bus::stores(&self.state) {
            tokio::spawn(exports::run_when_ours(self.state.clone(), stop_rx.clone()));
        } else if !self.state.config.exports.is_empty() || !self.state.config.webhooks.is_empty() {
            warn!(
                "exports and webhooks run where the calls are stored: this collector-only process ignores them"
            );
        }
        if let Some(socket) = self.radius {
            tokio::spawn(sources::radius::run(
                self.state.clone(),
                socket,
                stop_rx.clone(),
            ));
        }
        if let Some(sockets) = self.hep {
            tokio::spawn(sources::hep::run(
                self.state.clone(),
                sockets,
                stop_rx.clone(),
            ));
        }
        if let Some(sockets) = self.feed {
            tokio::spawn(sources::feed::run(
                self.state.clone(),
                sockets,
                stop_rx.clone(),
            ));
        }
        if let Some(bus) = self
            .state
            .config
            .bus
            .clone()
            .filter(|b| b.has(bus::BusRole::Worker))
        {
            tokio::spawn(bus::run_worker(self.state.clone(), bus, stop_rx.clone()));
        }
        let cti_clients = if bus::collects(&self.state) {
            self.state.config.sources.cti.clone()
        } else {
            Vec::new()
        };
        for cti in &cti_clients {
            tokio::spawn(sources::cti::run(
                self.state.clone(),
                cti.clone(),
                stop_rx.clone(),
            ));
        }
        let mut tasks = tokio::task::JoinSet::new();
        let limits = listener::HttpLimits::of(&self.state.config.http);
        let http_status = self.state.metrics.http.clone();
        if let Some(listener) = self.http {
            let addr = listener.local_addr()?;
            if !addr.ip().is_loopback() {
                warn!(
                    %addr,
                    "plain HTTP beyond loopback: passwords and API tokens cross the network unencrypted; prefer the HTTPS listener"
                );
            }
            info!("listening on http://{addr}");
            let app = app.clone();
            let (limits, status, stop) = (limits.clone(), http_status.clone(), stop_rx.clone());
            tasks.spawn(async move {
                listener::serve(listener, None, app, limits, status, stop)
                    .await
                    .context("HTTP listener failed")
            });
        }
        if let Some((listener, acceptor)) = self.https {
            let addr = listener.local_addr()?;
            info!("listening on https://{addr}");
            // Cookies set over HTTPS are marked Secure.
            let app = app.layer(axum::Extension(console::OverHttps));
            let (limits, status, stop) = (limits.clone(), http_status.clone(), stop_rx.clone());
            tasks.spawn(async move {
                listener::serve(listener, Some(acceptor), app, limits, status, stop)
                    .await
                    .context("HTTPS listener failed")
            });
        }
        while let Some(r) = tasks.join_next().await {
            r??;
        }
        Ok(())
    }
}
