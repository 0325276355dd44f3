//! `cdrhub sim`: simulated telephony systems to point cdrhub at.

use std::net::SocketAddr;
use std::time::Duration;

use cdrhub_sim::cti::{FlowMix, Server, SimConfig};
use cdrhub_sim::gateway::{self, Gateways, ServerAddr, ShapeMix};
use clap::{Args, Subcommand};

/// How often `cdrhub sim cti` and `cdrhub sim gateway` print what they
/// have done.
const REPORT_EVERY: Duration = Duration::from_secs(5);

#[derive(Subcommand)]
pub enum SimCommand {
    /// A Unified CCX CTI server: every client that opens a session gets
    /// the events of every call (bridge mode), played from the message
    /// flows of the UCCX CTI guide. Runs until Ctrl-C.
    Cti(CtiArgs),
    /// VoIP port gateways (FXS, FXO, ISDN) sending their logins and call
    /// events to cdrhub over the GWFEED/1 feed, with the call shapes of the
    /// CDR Server's report. Ends when every gateway has made its calls and
    /// logged out; Ctrl-C ends the calls in progress and logs out.
    Gateway(GatewayArgs),
}

#[derive(Args)]
pub struct CtiArgs {
    /// Address to listen on (UCCX's RmCm TCP port is 42027).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:42027")]
    listen: SocketAddr,
    /// Agents, on extensions 2000, 2001, ... with ids agt2000, agt2001, ...
    #[arg(long, value_name = "N", default_value_t = 10)]
    agents: u32,
    /// New calls per second.
    #[arg(long, value_name = "CALLS_PER_S", default_value_t = 1.0)]
    rate: f64,
    /// Calls to make in all (default: no end).
    #[arg(long, value_name = "N")]
    calls: Option<u64>,
    /// Multiplies the calls' durations: 0.01 plays a one-minute call in
    /// 0.6 s; 0 sends each call's events back to back.
    #[arg(long, value_name = "FACTOR", default_value_t = 1.0)]
    time_scale: f64,
    /// Weights of the flows.
    #[arg(
        long,
        value_name = "FLOW=WEIGHT,...",
        default_value = "queued=6,transfer=1,conference=1,accept=1,skip=1,reject=1"
    )]
    mix: FlowMix,
    /// Seed of the random choices, to make the same calls again.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Act as the standby node of a pair: refuse sessions with
    /// E_CTI_SERVER_NOT_MASTER.
    #[arg(long)]
    standby: bool,
    /// The first CTI call id.
    #[arg(long, value_name = "ID", default_value_t = cdrhub_sim::cti::DEFAULT_BASE_CALL_ID)]
    base_call_id: u32,
    /// Speak TLS (UCCE's secured connection) with this PEM certificate
    /// chain; needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
}

#[derive(Args)]
pub struct GatewayArgs {
    /// The server's feed: tcp://ADDRESS:PORT or udp://ADDRESS:PORT (the
    /// feed's port is 6090).
    #[arg(long, value_name = "URL", default_value_t = gateway::SimConfig::default().server)]
    server: ServerAddr,
    /// Gateways, each with its own connection (TCP) or socket (UDP).
    #[arg(long, value_name = "N", default_value_t = gateway::SimConfig::default().gateways)]
    gateways: u32,
    /// The first gateway's id; the others follow it (8200, 8201, ...).
    #[arg(long, value_name = "ID", default_value_t = gateway::DEFAULT_FIRST_ID)]
    first_id: u32,
    /// FXS ports (phones) of each gateway.
    #[arg(long, value_name = "N", default_value_t = gateway::SimConfig::default().fxs_ports)]
    fxs: u16,
    /// FXO ports (PSTN lines) of each gateway.
    #[arg(long, value_name = "N", default_value_t = gateway::SimConfig::default().fxo_ports)]
    fxo: u16,
    /// ISDN channels of each gateway.
    #[arg(long, value_name = "N", default_value_t = gateway::SimConfig::default().isdn_channels)]
    isdn: u16,
    /// Calls each gateway makes, one after another.
    #[arg(long, value_name = "N", default_value_t = gateway::SimConfig::default().calls)]
    calls: u64,
    /// New calls per second over all gateways.
    #[arg(long, value_name = "CALLS_PER_S", default_value_t = gateway::SimConfig::default().rate)]
    rate: f64,
    /// Multiplies the calls' durations: 0.01 plays a one-minute call in
    /// 0.6 s; 0 sends each call's events back to back. The gateways'
    /// clocks keep the real durations.
    #[arg(
        long,
        value_name = "FACTOR",
        default_value_t = gateway::SimConfig::default().time_scale
    )]
    time_scale: f64,
    /// Weights of the call shapes: out, from-pstn, via-pstn, in, in-pstn,
    /// hook, reject, failed, pstn-abandoned.
    #[arg(long, value_name = "SHAPE=WEIGHT,...", default_value_t = ShapeMix::default())]
    mix: ShapeMix,
    /// Seed of the random choices, to make the same calls again.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Unreadable lines to mix into the gateways' events (a wrong version,
    /// an unknown type, a missing field, not UTF-8, over 1024 bytes).
    #[arg(long, value_name = "K", default_value_t = 0)]
    bad_packets: u32,
    /// Halfway through, the first gateway logs in again from a new address
    /// (the server's Re-Login and Relogin Kickout).
    #[arg(long)]
    relogin: bool,
}

pub fn run(command: &SimCommand) -> anyhow::Result<()> {
    match command {
        SimCommand::Cti(args) => {
            let config = SimConfig {
                listen: args.listen,
                agents: args.agents,
                rate: args.rate,
                calls: args.calls,
                time_scale: args.time_scale,
                mix: args.mix,
                seed: args.seed,
                standby: args.standby,
                base_call_id: args.base_call_id,
                ..SimConfig::default()
            };
            let tls = match (&args.tls_cert, &args.tls_key) {
                (Some(cert), Some(key)) => Some(cdrhub_sim::cti::tls_acceptor(cert, key)?),
                _ => None,
            };
            let over_tls = tls.is_some();
            crate::runtime()?.block_on(async move {
                let sim = Server::start_with_tls(config, tls)?;
                println!(
                    "CTI simulator listening on {}{}{}; Ctrl-C stops it",
                    sim.addr,
                    if over_tls { " (TLS)" } else { "" },
                    if args.standby { " as the standby" } else { "" }
                );
                let shutdown = crate::shutdown_signal();
                tokio::pin!(shutdown);
                let mut report = tokio::time::interval(REPORT_EVERY);
                report.tick().await;
                loop {
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = report.tick() => println!("{}", sim.stats()),
                    }
                }
                let stats = sim.stats();
                sim.stop().await;
                println!("{stats}");
                Ok(())
            })
        }
        SimCommand::Gateway(args) => run_gateways(args),
    }
}

fn run_gateways(args: &GatewayArgs) -> anyhow::Result<()> {
    let config = gateway::SimConfig {
        server: args.server,
        gateways: args.gateways,
        first_id: args.first_id,
        fxs_ports: args.fxs,
        fxo_ports: args.fxo,
        isdn_channels: args.isdn,
        calls: args.calls,
        rate: args.rate,
        time_scale: args.time_scale,
        mix: args.mix,
        seed: args.seed,
        bad_packets: args.bad_packets,
        relogin: args.relogin,
        ..gateway::SimConfig::default()
    };
    crate::runtime()?.block_on(async move {
        let gateways = Gateways::start(config)?;
        let monitor = gateways.monitor();
        println!(
            "{} gateways from {} sending to {}; Ctrl-C ends their calls and logs them out",
            args.gateways, args.first_id, args.server
        );
        let finish = gateways.finish();
        tokio::pin!(finish);
        let shutdown = crate::shutdown_signal();
        tokio::pin!(shutdown);
        let mut stopping = false;
        let mut progress = tokio::time::interval(REPORT_EVERY);
        progress.tick().await;
        let report = loop {
            tokio::select! {
                report = &mut finish => break report?,
                _ = &mut shutdown, if !stopping => {
                    stopping = true;
                    monitor.stop();
                }
                _ = progress.tick() => println!("{}", monitor.progress()),
            }
        };
        println!("{report}");
        Ok(())
    })
}
