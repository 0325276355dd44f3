//! One gateway at work: it logs in, makes its calls at their times, sends
//! KEEPALIVE when it has been quiet, its bad lines among its events, logs
//! in again from a new address if planned, and logs out. Every line goes
//! through its [`Outbox`], which says what to send again.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use cdrhub_protocols::feed::{CallEvent, FeedBody, GatewayClock, GatewayRef, Login};
use tokio::sync::watch;
use tokio::time::Instant;

use super::bad_lines::BadLine;
use super::calls::CallMaker;
use super::config::{SimConfig, Transport};
use super::link::{Link, Received, other_loopback};
use super::outbox::Outbox;
use super::plan::{GatewayPlan, PlannedBadLine};
use super::report::{Counters, GatewayReport};

/// Connection attempts after the server closed a TCP connection.
const RECONNECT_TRIES: u32 = 5;
/// Between two of them.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);
/// Longest wait a scaled step or a call's start may have.
const LONGEST_DELAY: Duration = Duration::from_secs(24 * 3600);

/// Plays `plan` against the server of `config` from `start` on. Returns
/// the gateway's name and what it sent.
pub(super) async fn play(
    plan: GatewayPlan,
    config: Arc<SimConfig>,
    counters: Arc<Counters>,
    stop: watch::Receiver<bool>,
    start: Instant,
) -> anyhow::Result<(String, GatewayReport)> {
    let name = plan.gateway.to_string();
    let report = play_plan(plan, config, counters, stop, start)
        .await
        .with_context(|| format!("gateway {name}"))?;
    Ok((name, report))
}

async fn play_plan(
    plan: GatewayPlan,
    config: Arc<SimConfig>,
    counters: Arc<Counters>,
    stop: watch::Receiver<bool>,
    start: Instant,
) -> anyhow::Result<GatewayReport> {
    let server = config.server;
    let link = Link::open(server, None)
        .await
        .with_context(|| format!("cannot reach the server at {server}"))?;
    let outbox = Outbox::new(
        plan.gateway.clone(),
        server.transport,
        config.resend_after,
        config.max_sends,
        config.window,
        Arc::clone(&counters),
    );
    let stopping = *stop.borrow();
    let mut player = Player {
        gateway: plan.gateway,
        maker: plan.maker,
        link,
        outbox,
        clock: Clock::default(),
        stopping,
        logging_out: false,
        stop,
        report: GatewayReport::default(),
        config,
        counters,
    };
    player.pump_until(None, |p| p.outbox.is_open()).await?;
    let mut bad_lines = plan.bad_lines;
    bad_lines.sort_by_key(|b| b.call);
    let mut bad_lines = bad_lines.into_iter().peekable();
    let mut end_ms = 0;
    for n in 0..player.config.calls {
        if player.stopping {
            break;
        }
        if plan.relogin_before == Some(n) {
            player.relogin().await?;
        }
        let slot = plan
            .interval
            .checked_mul(u32::try_from(n).unwrap_or(u32::MAX))
            .and_then(|d| d.checked_add(plan.first_slot))
            .unwrap_or(LONGEST_DELAY)
            .min(LONGEST_DELAY);
        let start_ms = end_ms.max(slot.as_millis() as u64);
        player.clock.cap_ms = start_ms;
        player
            .pump_until(Some(start + slot), |p| p.stopping)
            .await?;
        if player.stopping {
            break;
        }
        let mut here: Vec<PlannedBadLine> = Vec::new();
        while let Some(bad) = bad_lines.next_if(|b| b.call == n) {
            here.push(bad);
        }
        end_ms = player.play_call(start_ms, &here).await?;
    }
    // A run stopped early still sends the bad lines it was asked for.
    for bad in bad_lines {
        player.send_bad(bad.kind).await?;
    }
    if plan
        .relogin_before
        .is_some_and(|n| n >= player.config.calls)
    {
        player.relogin().await?;
    }
    player.logging_out = true;
    player.outbox.submit(FeedBody::Logout { reason: None });
    player.pump_until(None, |p| p.outbox.is_idle()).await?;
    Counters::add(&player.counters.gateways_done, 1);
    player.report.logins = player.outbox.logins();
    Ok(player.report)
}

/// The gateway's clock while it plays: the gateway time (milliseconds on
/// its own clock since its LOGIN) of its last event, and when that was
/// sent. Between events it runs at the speed of real time over the time
/// scale, but never past the next event's time.
#[derive(Debug, Clone, Copy, Default)]
struct Clock {
    ms: u64,
    set_at: Option<Instant>,
    cap_ms: u64,
}

impl Clock {
    fn now_ms(&self, now: Instant, time_scale: f64) -> u64 {
        let Some(set_at) = self.set_at else {
            return self.ms;
        };
        if time_scale <= 0.0 {
            return self.ms;
        }
        let since = now.saturating_duration_since(set_at).as_secs_f64() * 1000.0 / time_scale;
        self.ms
            .saturating_add(since as u64)
            .min(self.cap_ms.max(self.ms))
    }
}

struct Player {
    gateway: GatewayRef,
    maker: CallMaker,
    link: Link,
    outbox: Outbox,
    clock: Clock,
    /// Asked to stop: the call in progress ends, then the gateway logs out.
    stopping: bool,
    /// LOGOUT is sent: no KEEPALIVE after it.
    logging_out: bool,
    stop: watch::Receiver<bool>,
    report: GatewayReport,
    config: Arc<SimConfig>,
    counters: Arc<Counters>,
}

impl Player {
    /// Plays one call whose first event is at gateway time `start_ms`, with
    /// `bad_lines` among its events. Returns the gateway time of its end.
    async fn play_call(
        &mut self,
        start_ms: u64,
        bad_lines: &[PlannedBadLine],
    ) -> anyhow::Result<u64> {
        let call = self.maker.next_call(&self.config.mix, start_ms);
        let events = call.steps.len() as u64;
        let before = |k: u64| bad_lines.iter().filter(move |b| b.draw % (events + 1) == k);
        let mut at = Instant::now();
        let mut at_ms = start_ms;
        for (k, step) in call.steps.into_iter().enumerate() {
            for bad in before(k as u64) {
                self.send_bad(bad.kind).await?;
            }
            at_ms += step.after_ms;
            if step.after_ms > 0 && self.config.time_scale > 0.0 {
                let delay = Duration::try_from_secs_f64(
                    step.after_ms as f64 * self.config.time_scale / 1000.0,
                )
                .unwrap_or(LONGEST_DELAY)
                .min(LONGEST_DELAY);
                at = at.checked_add(delay).unwrap_or(at);
                self.clock.cap_ms = at_ms;
                self.pump_until(Some(at), |_| false).await?;
            }
            self.send_event(step.event, at_ms).await?;
        }
        for bad in before(events) {
            self.send_bad(bad.kind).await?;
        }
        self.report.calls.add(call.shape);
        self.report.call_events += events;
        Counters::add(&self.counters.calls_done, 1);
        Ok(at_ms)
    }

    async fn send_event(&mut self, event: CallEvent, at_ms: u64) -> anyhow::Result<()> {
        self.clock = Clock {
            ms: at_ms,
            set_at: Some(Instant::now()),
            cap_ms: at_ms,
        };
        self.outbox.submit(FeedBody::Call(event));
        // Back-pressure: the next event waits while the window is full.
        self.pump_until(None, |p| p.outbox.is_flushed()).await
    }

    async fn send_bad(&mut self, kind: BadLine) -> anyhow::Result<()> {
        let line = kind.bytes(&self.gateway, self.outbox.next_seq());
        match self.link.send(&line).await {
            Ok(()) => self.outbox.unreadable_written(Instant::now()),
            // Lost with the connection; the report counts what was sent.
            Err(e) => self.lost_link(e).await?,
        }
        Ok(())
    }

    /// Logs in again from another source address once everything sent has
    /// its answer. The old connection stays open until the new LOGIN is
    /// taken, so that the server sees a re-login and kicks the old one out,
    /// rather than a disconnect and a new login.
    async fn relogin(&mut self) -> anyhow::Result<()> {
        self.pump_until(None, |p| p.outbox.is_idle()).await?;
        let server = self.config.server;
        let local = self.link.local_addr()?;
        let current = if local.ip().is_unspecified() {
            server.addr.ip()
        } else {
            local.ip()
        };
        let from_other_address = match other_loopback(current) {
            Some(ip) => Link::open(server, Some(ip)).await.ok(),
            None => None,
        };
        let link = match from_other_address {
            Some(link) => link,
            None => Link::open(server, None)
                .await
                .with_context(|| format!("cannot reach the server at {server} again"))?,
        };
        let old = std::mem::replace(&mut self.link, link);
        self.outbox.new_connection();
        self.pump_until(None, |p| p.outbox.is_open()).await?;
        drop(old);
        Counters::add(&self.counters.relogins, 1);
        Ok(())
    }

    /// Sends and reads until `done` holds or `deadline` passes, whichever
    /// is first: the outbox's lines, its resends, KEEPALIVE when due.
    async fn pump_until(
        &mut self,
        deadline: Option<Instant>,
        done: fn(&Player) -> bool,
    ) -> anyhow::Result<()> {
        loop {
            let now = Instant::now();
            let keepalive_due = self.keepalive_due();
            if keepalive_due.is_some_and(|due| now >= due) {
                let clock = self.gateway_clock(now);
                self.outbox
                    .submit(FeedBody::KeepAlive { clock: Some(clock) });
            }
            let clock = self.gateway_clock(now);
            let ports = self.config.ports();
            let call_ref = self.maker.last_ref();
            let lines = self.outbox.poll(now, || Login {
                // The address the gateway sends from, when it knows it (a
                // socket bound to all addresses does not).
                public_addr: self
                    .link
                    .local_addr()
                    .ok()
                    .filter(|a| !a.ip().is_unspecified()),
                fxs_ports: ports.fxs,
                fxo_ports: ports.fxo,
                isdn_channels: ports.isdn,
                call_ref,
                clock,
            })?;
            for line in lines {
                if let Err(e) = self.link.send(line.as_bytes()).await {
                    self.lost_link(e).await?;
                    break;
                }
            }
            if done(self) || deadline.is_some_and(|d| now >= d) {
                return Ok(());
            }
            let wake = [deadline, self.outbox.next_deadline(), self.keepalive_due()]
                .into_iter()
                .flatten()
                .min();
            let sleep = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let woke = tokio::select! {
                () = sleep => Woke::Timer,
                got = self.link.receive() => Woke::Link(got),
                changed = self.stop.changed(), if !self.stopping => Woke::Stop(changed.is_ok()),
            };
            match woke {
                Woke::Timer => {}
                Woke::Link(Ok(Received::Lines(lines))) => {
                    let now = Instant::now();
                    for line in lines {
                        self.outbox.on_answer(&line, now)?;
                    }
                }
                Woke::Link(Ok(Received::Nothing)) => {}
                Woke::Link(Ok(Received::Closed)) => {
                    let closed = std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "the server closed the connection",
                    );
                    self.lost_link(closed).await?;
                }
                Woke::Link(Err(e)) => self.lost_link(e).await?,
                // The sender gone (the run dropped) also ends the calls.
                Woke::Stop(changed) => self.stopping = !changed || *self.stop.borrow(),
            }
        }
    }

    /// When KEEPALIVE is due: the session is open and not ending, nothing
    /// waits to be sent, and nothing has been sent for `keepalive_after`.
    fn keepalive_due(&self) -> Option<Instant> {
        if self.logging_out || !self.outbox.is_open() || !self.outbox.is_flushed() {
            return None;
        }
        self.outbox
            .last_write()
            .and_then(|last| last.checked_add(self.config.keepalive_after))
    }

    fn gateway_clock(&self, now: Instant) -> GatewayClock {
        self.maker
            .clock_at(self.clock.now_ms(now, self.config.time_scale))
    }

    /// The socket failed or the server closed the connection. Over TCP
    /// the gateway connects again and logs in; what had no answer is sent
    /// again after the LOGIN. Over UDP the failure is the run's.
    async fn lost_link(&mut self, error: std::io::Error) -> anyhow::Result<()> {
        let server = self.config.server;
        if server.transport == Transport::Udp {
            return Err(error).with_context(|| format!("cannot send to {server}"));
        }
        tracing::info!(gateway = %self.gateway, %error, "connecting to the server again");
        let mut last = error;
        for attempt in 0..RECONNECT_TRIES {
            if attempt > 0 {
                tokio::time::sleep(RECONNECT_PAUSE).await;
            }
            match Link::open(server, None).await {
                Ok(link) => {
                    self.link = link;
                    self.outbox.new_connection();
                    Counters::add(&self.counters.reconnects, 1);
                    return Ok(());
                }
                Err(e) => last = e,
            }
        }
        Err(last)
            .with_context(|| format!("lost the connection to {server} and could not connect again"))
    }
}

enum Woke {
    Timer,
    Link(std::io::Result<Received>),
    /// Whether the stop signal is still there.
    Stop(bool),
}
