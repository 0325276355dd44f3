//! `cdrhub-ctibench`: end-to-end speed of the contact-centre source (issue
//! 4, point 7). It starts the CTI simulator (`cdrhub-sim`) in this process
//! and `cdrhub serve` as a child with a `[[sources.cti]]` pointing at it;
//! the simulator plays `--calls` calls of every flow as fast as it can once
//! cdrhub's session is open. The figure is the events cdrhub committed per
//! second, from the session's first event to the commit of the last; the
//! run then checks that every call the simulator made is in the store,
//! ended.
//!
//! ```text
//! cargo build --release -p cdrhub -p cdrhub-bench
//! target/release/cdrhub-ctibench --cdrhub target/release/cdrhub --calls 30000
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::bail;
use cdrhub_sim::cti::{Server, SimConfig};
use clap::Parser;

#[path = "../child.rs"]
mod child;
use child::{free_tcp_port, get, peak_rss_mb, start};

#[derive(Parser)]
struct Args {
    /// The cdrhub binary to run.
    #[arg(long, default_value = "target/release/cdrhub")]
    cdrhub: PathBuf,
    /// Calls the simulator makes.
    #[arg(long, default_value_t = 30_000)]
    calls: u64,
    /// Calls started per second (each plays its events back to back).
    #[arg(long, default_value_t = 5_000.0)]
    rate: f64,
    /// CTI protocol version (below 20: 1-byte floating fields).
    #[arg(long, default_value_t = 13)]
    version: u32,
    /// Agents of the simulated contact centre.
    #[arg(long, default_value_t = 200)]
    agents: u32,
    /// Print the result as one JSON line.
    #[arg(long)]
    json: bool,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("cdrhub-ctibench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let sim = Server::start(SimConfig {
        listen: "127.0.0.1:0".parse()?,
        agents: args.agents,
        rate: args.rate,
        calls: Some(args.calls),
        time_scale: 0.0,
        seed: Some(42),
        ..SimConfig::default()
    })?;
    let http: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()?).parse()?;
    let (server, token) = start(
        &args.cdrhub,
        &dir,
        http,
        &format!(
            "[[sources.cti]]\nname = \"bench\"\nprimary = \"{}\"\nversion = {}\n",
            sim.addr, args.version
        ),
    )?;
    let pid = server.0.id();

    // The clock starts with the session: the simulator sends nothing before.
    let deadline = Instant::now() + Duration::from_secs(30);
    while sim.stats().sessions_opened == 0 {
        if Instant::now() > deadline {
            bail!("cdrhub never opened a session with the simulator");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = Instant::now();
    let events_sent =
        |s: &cdrhub_sim::cti::SimStats| s.messages_sent - s.sessions_opened - s.heartbeats_answered;
    let mut sent_all_at = None;
    let (stored, committed_at) = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let stats = sim.stats();
        let done_sending = stats.calls_started >= args.calls;
        if done_sending && sent_all_at.is_none() {
            sent_all_at = Some(started.elapsed());
        }
        let sources = tokio::task::spawn_blocking({
            let token = token.clone();
            move || get(http, &token, "/api/v1/sources")
        })
        .await??;
        let stored = sources["sources"][1]["servers"][0]["connection"]["stored"]
            .as_u64()
            .unwrap_or(0);
        if done_sending && stored >= events_sent(&stats) {
            // Wait a moment: the last calls may still be playing.
            let again = sim.stats();
            if events_sent(&again) == events_sent(&stats) {
                break (stored, started.elapsed());
            }
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!(
                "cdrhub stored {stored} of {} events in 10 minutes",
                events_sent(&stats)
            );
        }
    };
    let stats = sim.stats();
    let events = events_sent(&stats);
    let rss = peak_rss_mb(pid);

    // Every call the simulator made is in the store, ended.
    let mut ended = 0u64;
    let mut total = 0u64;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/calls?source=cti&limit=1000&cursor={c}"),
            None => "/api/v1/calls?source=cti&limit=1000".to_owned(),
        };
        let page = tokio::task::spawn_blocking({
            let token = token.clone();
            move || get(http, &token, &path)
        })
        .await??;
        for c in page["calls"].as_array().into_iter().flatten() {
            total += 1;
            ended += u64::from(!c["ended_at"].is_null());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    drop(server);
    sim.stop().await;
    let _ = std::fs::remove_dir_all(&dir);

    let rate = stored as f64 / committed_at.as_secs_f64();
    let sim_rate = sent_all_at.map(|t| events as f64 / t.as_secs_f64());
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "calls": args.calls, "events": events, "stored": stored,
                "seconds": committed_at.as_secs_f64(), "events_per_s": rate,
                "simulator_events_per_s": sim_rate, "calls_in_store": total,
                "calls_ended": ended, "peak_rss_mb": rss,
                "version": args.version,
            })
        );
    } else {
        println!(
            "{events} events of {} calls (protocol version {}) committed in {:.1} s: {rate:.0} events/s",
            args.calls,
            args.version,
            committed_at.as_secs_f64()
        );
        if let Some(r) = sim_rate {
            println!("the simulator sent them at {r:.0} events/s");
        }
        println!(
            "calls in the store: {total}, ended: {ended}; cdrhub peak RSS {:.1} MB",
            rss
        );
    }
    if total != args.calls || ended != args.calls {
        bail!(
            "{} calls made, {total} in the store, {ended} ended",
            args.calls
        );
    }
    Ok(())
}
