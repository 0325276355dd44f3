//! `cdrhub-loadgen`: posts Cisco Meeting Server CDR traffic to a CDR receiver
//! and reports acknowledged records per second, acknowledgement latency and,
//! given `--pid`, the receiver's resident memory and CPU.
//!
//! It shares the machine with the server under test, so it runs on one
//! thread, writes each body with a few hundred byte copies and speaks raw
//! HTTP/1.1 over keep-alive connections.
//!
//! ```text
//! cdrhub-loadgen --url http://127.0.0.1:8200/ingest/cms --mode batch --batch-size 50 \
//!     --connections 32 --duration 20s --pid "$(pidof cdrhub)" --json
//! ```

mod cms;
mod load;
mod procfs;
mod rng;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use cms::{CallBridge, TrafficShape};
use load::{LoadConfig, LoadResult, Target};
use serde::Serialize;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;
use tokio::sync::watch;

/// Exit status when the run finished but some POSTs were not acknowledged.
const EXIT_NOT_ALL_ACKNOWLEDGED: u8 = 3;
const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// One record per POST.
    Single,
    /// `--batch-size` records per POST.
    Batch,
}

/// Load generator for cdrhub's Cisco Meeting Server CDR receiver.
///
/// Every connection is a simulated Call Bridge with a fresh session GUID that
/// POSTs `<records>` documents of calls with 2 to 10 legs (callStart,
/// callLegStart/Update/End, callEnd), several calls interleaved. Only 200 OK
/// counts as acknowledged; other answers and failures are counted and the
/// POST is sent again, as CMS does.
///
/// Exit status: 0 when every POST was acknowledged, 3 when some were not
/// (non-200 answers, connection errors, unsent POSTs), 1 on a fatal error.
#[derive(Debug, Parser)]
#[command(name = "cdrhub-loadgen", version)]
struct Cli {
    /// URL of the CDR receiver (http only).
    #[arg(long, default_value = "http://127.0.0.1:8200/ingest/cms")]
    url: String,
    /// One record per POST, or `--batch-size` records per POST.
    #[arg(long, value_enum, default_value_t = Mode::Single)]
    mode: Mode,
    /// Records per POST in batch mode.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    batch_size: u32,
    /// Keep-alive connections, each one simulated Call Bridge.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    connections: u32,
    /// How long to send, e.g. `20s`, `500ms`, `2m`.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    duration: Duration,
    /// Records per second across all connections, sent at fixed intervals
    /// (open loop). Without it each connection sends as fast as it is answered.
    #[arg(long)]
    rate: Option<f64>,
    /// Seed for the call shapes (session GUIDs are fresh on every run regardless).
    #[arg(long)]
    seed: Option<u64>,
    /// Probability that a record is delivered one place late, after the record generated next.
    #[arg(long, default_value_t = 0.05)]
    out_of_order: f64,
    /// Calls in progress at once on each simulated Call Bridge.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    concurrent_calls: u32,
    /// Process to watch: its VmRSS is sampled every 250 ms and its CPU time measured.
    #[arg(long)]
    pid: Option<u32>,
    /// Give up on a POST with no answer after this long, and reconnect.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    timeout: Duration,
    /// Print one JSON line on stdout (the human summary goes to stderr).
    #[arg(long)]
    json: bool,
    /// Print one `<records>` document of `--batch-size` records (or one record
    /// in single mode) and exit, without sending anything.
    #[arg(long)]
    sample: bool,
}

impl Cli {
    fn records_per_post(&self) -> usize {
        match self.mode {
            Mode::Single => 1,
            Mode::Batch => self.batch_size as usize,
        }
    }

    fn shape(&self) -> TrafficShape {
        TrafficShape {
            out_of_order: self.out_of_order,
            concurrent_calls: self.concurrent_calls as usize,
        }
    }
}

/// The `--json` line; field names are what scripts/bench-cms.sh reads.
#[derive(Debug, Serialize)]
struct Report {
    mode: &'static str,
    batch_size: usize,
    connections: usize,
    duration_s: f64,
    posts: u64,
    records: u64,
    records_per_s: f64,
    posts_per_s: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    non_200: u64,
    errors: u64,
    max_rss_mb: Option<f64>,
    /// Open loop: target records per second.
    rate: Option<f64>,
    unsent: u64,
    /// CPU of the watched process and of this generator, in % of one core.
    server_cpu_pct: Option<f64>,
    loadgen_cpu_pct: Option<f64>,
    url: String,
    seed: u64,
    out_of_order: f64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(clean) if clean => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(EXIT_NOT_ALL_ACKNOWLEDGED),
        Err(e) => {
            eprintln!("cdrhub-loadgen: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the load; `Ok(false)` when some POSTs were not acknowledged.
fn run(cli: &Cli) -> anyhow::Result<bool> {
    if !(0.0..=1.0).contains(&cli.out_of_order) {
        bail!(
            "--out-of-order must be between 0 and 1, not {}",
            cli.out_of_order
        );
    }
    if let Some(rate) = cli.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        bail!("--rate must be a positive number of records per second, not {rate}");
    }
    let seed = cli
        .seed
        .unwrap_or_else(|| uuid::Uuid::new_v4().as_u64_pair().0);

    if cli.sample {
        let mut bridge =
            CallBridge::new(seed, uuid::Uuid::new_v4(), 1_780_000_000_000, cli.shape());
        let mut doc = Vec::new();
        bridge.write_document(cli.records_per_post(), &mut doc);
        std::io::stdout().write_all(&doc)?;
        return Ok(true);
    }

    let config = LoadConfig {
        target: Target::parse(&cli.url)?,
        records_per_post: cli.records_per_post(),
        connections: cli.connections as usize,
        duration: cli.duration,
        rate: cli.rate,
        seed,
        shape: cli.shape(),
        timeout: cli.timeout,
    };
    if let Some(pid) = cli.pid
        && procfs::rss_kb(&pid.to_string()).is_none()
    {
        bail!("--pid {pid}: no such process to watch");
    }

    // One thread: the generator must leave the machine's cores to the server.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let (result, max_rss_mb, server_cpu_s, loadgen_cpu_s) = runtime.block_on(async {
        let (stop_tx, stop_rx) = watch::channel(false);
        let sampler = cli
            .pid
            .map(|pid| tokio::spawn(procfs::max_rss_mb(pid, RSS_SAMPLE_EVERY, stop_rx)));
        let pid = cli.pid.map(|p| p.to_string());
        let server_cpu_before = pid.as_deref().and_then(procfs::cpu_seconds);
        let own_cpu_before = procfs::cpu_seconds("self");
        let result = load::run(&config).await;
        let server_cpu_s = pid
            .as_deref()
            .and_then(procfs::cpu_seconds)
            .zip(server_cpu_before)
            .map(|(after, before)| after - before);
        let loadgen_cpu_s = procfs::cpu_seconds("self")
            .zip(own_cpu_before)
            .map(|(after, before)| after - before);
        let _ = stop_tx.send(true);
        let max_rss_mb = match sampler {
            Some(task) => task.await.ok().flatten(),
            None => None,
        };
        (result, max_rss_mb, server_cpu_s, loadgen_cpu_s)
    });
    let LoadResult { stats, elapsed } = result?;

    let secs = elapsed.as_secs_f64().max(1e-9);
    let quantile_ms = |q: f64| {
        if stats.latency.is_empty() {
            0.0
        } else {
            round(stats.latency.value_at_quantile(q) as f64 / 1000.0, 3)
        }
    };
    let report = Report {
        mode: match cli.mode {
            Mode::Single => "single",
            Mode::Batch => "batch",
        },
        batch_size: config.records_per_post,
        connections: config.connections,
        duration_s: round(secs, 3),
        posts: stats.posts_ok,
        records: stats.records_ok,
        records_per_s: round(stats.records_ok as f64 / secs, 1),
        posts_per_s: round(stats.posts_ok as f64 / secs, 1),
        p50_ms: quantile_ms(0.50),
        p90_ms: quantile_ms(0.90),
        p99_ms: quantile_ms(0.99),
        max_ms: if stats.latency.is_empty() {
            0.0
        } else {
            round(stats.latency.max() as f64 / 1000.0, 3)
        },
        non_200: stats.non_200_total(),
        errors: stats.errors,
        max_rss_mb: max_rss_mb.map(|mb| round(mb, 1)),
        rate: cli.rate,
        unsent: stats.unsent,
        server_cpu_pct: server_cpu_s.map(|s| round(100.0 * s / secs, 1)),
        loadgen_cpu_pct: loadgen_cpu_s.map(|s| round(100.0 * s / secs, 1)),
        url: cli.url.clone(),
        seed,
        out_of_order: cli.out_of_order,
    };

    let summary = summary(&report, &stats.non_200, stats.last_error.as_deref());
    if cli.json {
        eprint!("{summary}");
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{summary}");
    }
    Ok(report.non_200 == 0 && report.errors == 0 && report.unsent == 0)
}

fn summary(
    r: &Report,
    non_200: &std::collections::BTreeMap<u16, u64>,
    last_error: Option<&str>,
) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let what = match r.mode {
        "single" => "single-record POSTs".to_owned(),
        _ => format!("{}-record POSTs", r.batch_size),
    };
    let pacing = match r.rate {
        Some(rate) => format!("open loop at {rate} records/s"),
        None => "closed loop".to_owned(),
    };
    let _ = writeln!(
        s,
        "cdrhub-loadgen: {what}, {} connections, {pacing}, {}",
        r.connections, r.url
    );
    let _ = writeln!(s, "  elapsed       {:.1} s", r.duration_s);
    let _ = writeln!(
        s,
        "  acknowledged  {} posts, {} records",
        r.posts, r.records
    );
    let _ = writeln!(
        s,
        "  throughput    {:.0} records/s, {:.0} posts/s",
        r.records_per_s, r.posts_per_s
    );
    let _ = writeln!(
        s,
        "  latency (ms)  p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
        r.p50_ms, r.p90_ms, r.p99_ms, r.max_ms
    );
    let statuses: Vec<String> = non_200
        .iter()
        .map(|(code, n)| format!("{code}×{n}"))
        .collect();
    let _ = writeln!(
        s,
        "  failures      non-200 {}{}, errors {}, unsent {}",
        r.non_200,
        if statuses.is_empty() {
            String::new()
        } else {
            format!(" ({})", statuses.join(", "))
        },
        r.errors,
        r.unsent
    );
    if let Some(e) = last_error {
        let _ = writeln!(s, "  last error    {e}");
    }
    if r.max_rss_mb.is_some() || r.server_cpu_pct.is_some() {
        let _ = writeln!(
            s,
            "  server        max RSS {} MB, CPU {} % of one core",
            r.max_rss_mb.map_or("?".to_owned(), |v| format!("{v:.1}")),
            r.server_cpu_pct
                .map_or("?".to_owned(), |v| format!("{v:.0}"))
        );
    }
    if let Some(cpu) = r.loadgen_cpu_pct {
        let _ = writeln!(s, "  loadgen       CPU {cpu:.0} % of one core");
    }
    s
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// `20s`, `1.5s`, `500ms`, `2m`, `1h`, or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 20s"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?} (use ms, s, m or h)"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("20"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("20 parsecs").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
