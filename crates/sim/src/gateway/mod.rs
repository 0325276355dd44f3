//! Simulated VoIP port gateways (FXS, FXO, ISDN) that report their logins
//! and call events to cdrhub over the gateway event feed, `GWFEED/1`
//! (docs/gateway-feed.md; the gateways of seed 001's CDR Server).
//!
//! Each gateway (`8200`, `8201`, ... with MACs `000C2A022008`, ...) opens
//! its own TCP connection or UDP socket, logs in with a clock that believes
//! it is the year 2000, and makes its calls one after another, each of one
//! of the [`CallShape`]s of the page's "Report" section. It keeps every
//! message until the server's `OK`, sends again what needs it, sends
//! KEEPALIVE when it has been quiet, and logs out at the end. On request it
//! mixes unreadable lines into its events (`bad_packets`), and the first
//! gateway logs in again from a new address halfway.
//!
//! [`run`] plays a whole simulation and returns its [`Report`]: what was
//! sent, what the server answered, and every gateway's calls by the
//! notation the server's report must give them. [`Gateways::start`] does
//! the same, with a [`Monitor`] to follow its [`Progress`] and stop it.

mod bad_lines;
mod calls;
mod config;
mod link;
mod outbox;
mod plan;
mod player;
mod report;
#[cfg(test)]
mod tests;

pub use calls::{CallShape, Notation, Timing};
pub use config::{
    ConfigError, DEFAULT_FIRST_ID, DEFAULT_PORT, RESEND_AFTER, ServerAddr, ShapeMix, SimConfig,
    Transport,
};
pub use outbox::OutboxError;
pub use report::{CallCounts, GatewayReport, Progress, Report};

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use report::Counters;

/// Plays the simulation of `config` to its end: every gateway logs in,
/// makes its calls and logs out. Fails if the server cannot be reached or
/// stops answering.
pub async fn run(config: SimConfig) -> anyhow::Result<Report> {
    Gateways::start(config)?.finish().await
}

/// A running simulation; see the [module documentation](self). Dropping it
/// stops every gateway at once, without LOGOUT.
pub struct Gateways {
    tasks: JoinSet<anyhow::Result<(String, GatewayReport)>>,
    monitor: Monitor,
}

impl Gateways {
    /// Starts every gateway. Must be called within a Tokio runtime.
    pub fn start(config: SimConfig) -> anyhow::Result<Gateways> {
        config.check()?;
        let runtime = tokio::runtime::Handle::try_current()
            .context("the gateway simulator must be started within a Tokio runtime")?;
        let seed = config.seed.unwrap_or_else(clock_seed);
        let plans = plan::plan(&config, seed);
        let gateways = u64::from(config.gateways);
        let monitor = Monitor {
            counters: Arc::new(Counters::default()),
            stop: Arc::new(watch::Sender::new(false)),
            gateways,
            calls: gateways.saturating_mul(config.calls),
        };
        let config = Arc::new(config);
        let start = Instant::now();
        let mut tasks = JoinSet::new();
        for plan in plans {
            tasks.spawn_on(
                player::play(
                    plan,
                    Arc::clone(&config),
                    Arc::clone(&monitor.counters),
                    monitor.stop.subscribe(),
                    start,
                ),
                &runtime,
            );
        }
        tracing::info!(server = %config.server, gateways, seed, "gateway simulator started");
        Ok(Gateways { tasks, monitor })
    }

    /// A handle to follow the simulation and stop it while
    /// [`Gateways::finish`] waits.
    pub fn monitor(&self) -> Monitor {
        self.monitor.clone()
    }

    /// Waits until every gateway has logged out; the first gateway to fail
    /// fails the run and stops the others.
    pub async fn finish(mut self) -> anyhow::Result<Report> {
        let mut gateways = BTreeMap::new();
        while let Some(joined) = self.tasks.join_next().await {
            let (name, gateway) = joined.context("a simulated gateway panicked")??;
            gateways.insert(name, gateway);
        }
        let mut report = self.monitor.counters.report();
        report.gateways = gateways;
        Ok(report)
    }
}

/// Follows a running simulation, and stops it.
#[derive(Debug, Clone)]
pub struct Monitor {
    counters: Arc<Counters>,
    stop: Arc<watch::Sender<bool>>,
    gateways: u64,
    calls: u64,
}

impl Monitor {
    pub fn progress(&self) -> Progress {
        self.counters.progress(self.gateways, self.calls)
    }

    /// Asks every gateway to finish the call it is making and log out;
    /// [`Gateways::finish`] then returns soon.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }
}

fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}
