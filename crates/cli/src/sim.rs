//! `cdrhub sim`: simulated telephony systems to point cdrhub at.

use std::net::SocketAddr;
use std::time::Duration;

use cdrhub_sim::cti::{FlowMix, Server, SimConfig};
use clap::{Args, Subcommand};

/// How often `cdrhub sim cti` prints what it has done.
const REPORT_EVERY: Duration = Duration::from_secs(5);

#[derive(Subcommand)]
pub enum SimCommand {
    /// A Unified CCX CTI server: every client that opens a session gets
    /// the events of every call (bridge mode), played from the message
    /// flows of the UCCX CTI guide. Runs until Ctrl-C.
    Cti(CtiArgs),
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
            crate::runtime()?.block_on(async move {
                let sim = Server::start(config)?;
                println!(
                    "CTI simulator listening on {}{}; Ctrl-C stops it",
                    sim.addr,
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
    }
}
