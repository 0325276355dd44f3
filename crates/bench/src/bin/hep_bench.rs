//! `cdrhub-hepbench`: HEP packets taken over UDP on loopback (issue 6,
//! point 6: 30,000 a second, with the packets the server lost counted).
//! It starts `cdrhub serve` as a child with the HEP listener on a free
//! port and sends, at `--rate` packets a second for `--seconds`, the
//! packets Kamailio mirrored of a sipp call
//! (tests/data/hep/kamailio-uac-uas.hepstream), each call with its own
//! Call-ID. Then it waits for the journal and prints what was sent, what
//! was stored, and the datagrams the kernel dropped for the server's
//! socket.
//!
//! With `--target` it sends to the HEP listener of a cdrhub already
//! running and starts nothing: it prints what it sent, and the journal is
//! the caller's to check. `--tcp` sends over TCP instead of UDP;
//! `--first-call` numbers the calls from another place, so that two runs
//! into one store make different calls.
//!
//! ```text
//! cargo build --release -p cdrhub -p cdrhub-bench
//! target/release/cdrhub-hepbench --cdrhub target/release/cdrhub --rate 30000 --seconds 10
//! target/release/cdrhub-hepbench --target 127.0.0.1:9060 --rate 4000 --seconds 1800
//! ```

use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cdrhub_protocols::hep;
use clap::Parser;
use serde_json::Value;

#[path = "../child.rs"]
mod child;
use child::{free_tcp_port, free_udp_port, get, peak_rss_mb, start, wait_for_http};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "target/release/cdrhub")]
    cdrhub: PathBuf,
    /// Packets a second.
    #[arg(long, default_value_t = 30_000)]
    rate: u64,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// The HEP listener (UDP, or TCP with `--tcp`) of a cdrhub already
    /// running: nothing is started and the journal is not read.
    #[arg(long, value_name = "ADDR")]
    target: Option<SocketAddr>,
    /// Send over TCP (HEP frames back to back on one connection).
    #[arg(long)]
    tcp: bool,
    /// The number of the first call (each call's Call-ID carries its number).
    #[arg(long, default_value_t = 0)]
    first_call: u64,
    /// Print the result as one JSON line.
    #[arg(long)]
    json: bool,
}

/// Where the packets go: a UDP socket or a TCP connection.
enum Sender {
    Udp(UdpSocket),
    Tcp(TcpStream),
}

impl Sender {
    fn connect(target: SocketAddr, tcp: bool) -> anyhow::Result<Sender> {
        Ok(if tcp {
            Sender::Tcp(TcpStream::connect(target)?)
        } else {
            let socket = UdpSocket::bind("127.0.0.1:0")?;
            socket.connect(target)?;
            Sender::Udp(socket)
        })
    }

    fn send(&mut self, packet: &[u8]) -> std::io::Result<()> {
        match self {
            Sender::Udp(socket) => socket.send(packet).map(|_| ()),
            Sender::Tcp(stream) => stream.write_all(packet),
        }
    }
}

/// The capture's packets.
fn template() -> anyhow::Result<Vec<Vec<u8>>> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/hep/kamailio-uac-uas.hepstream"
    );
    let data = std::fs::read(path).with_context(|| format!("cannot read {path}"))?;
    let mut packets = Vec::new();
    let mut at = 0;
    while at + 4 <= data.len() {
        let n = u32::from_be_bytes(data[at..at + 4].try_into()?) as usize;
        packets.push(data[at + 4..at + 4 + n].to_vec());
        at += 4 + n;
    }
    Ok(packets)
}

/// The Call-ID's part before `@` in the capture, which each call replaces
/// with its own number of the same width.
fn call_id_prefix(packet: &[u8]) -> anyhow::Result<String> {
    let p = hep::decode(packet)?;
    let payload = p.payload.context("no payload")?;
    let text = String::from_utf8_lossy(&payload);
    let line = text
        .lines()
        .find(|l| l.starts_with("Call-ID:"))
        .context("no Call-ID")?;
    Ok(line["Call-ID:".len()..]
        .trim()
        .split('@')
        .next()
        .unwrap_or_default()
        .to_owned())
}

fn with_call_id(packet: &[u8], old: &[u8], new: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut p = hep::decode(packet)?.into_owned();
    if let Some(payload) = p.payload.as_mut() {
        let bytes = payload.to_mut();
        let mut i = 0;
        while let Some(at) = bytes[i..].windows(old.len()).position(|w| w == old) {
            bytes[i + at..i + at + old.len()].copy_from_slice(new);
            i += at + old.len();
        }
    }
    Ok(hep::encode_v3(&p))
}

fn sip_source(sources: &Value) -> Value {
    sources["sources"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["source"] == "sip")
        .cloned()
        .unwrap_or(Value::Null)
}

fn stored(sip: &Value) -> u64 {
    sip["senders"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| s["records_total"].as_u64().unwrap_or(0))
        .sum()
}

/// The cdrhub this run started, and how to read its journal.
struct Started {
    server: child::Cdrhub,
    token: String,
    http: SocketAddr,
    dir: PathBuf,
}

/// Starts `cdrhub serve` with the HEP listener on free ports; returns it
/// and the address to send to (UDP, or TCP with `tcp`).
fn start_cdrhub(cdrhub: &Path, tcp: bool) -> anyhow::Result<(Started, SocketAddr)> {
    let dir = std::env::temp_dir().join(format!("cdrhub-hepbench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let http: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()?).parse()?;
    let udp: SocketAddr = format!("127.0.0.1:{}", free_udp_port()?).parse()?;
    let tcp_listen: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()?).parse()?;
    let (server, token) = start(
        cdrhub,
        &dir,
        http,
        &format!(
            "[sources.hep]\nenabled = true\nudp_listen = \"{udp}\"\ntcp_listen = \"{tcp_listen}\"\n"
        ),
    )?;
    wait_for_http(http)?;
    std::thread::sleep(Duration::from_millis(300));
    let started = Started {
        server,
        token,
        http,
        dir,
    };
    Ok((started, if tcp { tcp_listen } else { udp }))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.rate == 0 {
        bail!("--rate must be at least 1 packet a second");
    }
    let template = template()?;
    let old = call_id_prefix(&template[0])?;
    let total = args.rate * args.seconds;
    let calls = total.div_ceil(template.len() as u64);
    if (args.first_call + calls).to_string().len() > old.len() {
        bail!(
            "too many packets for the capture's Call-ID width; lower --rate, --seconds or --first-call"
        );
    }
    // Call n's packets, made as they are sent: a long run does not fit
    // in memory.
    let packets = (args.first_call..args.first_call + calls)
        .flat_map(|n| {
            let id = format!("{n:0width$}", width = old.len());
            template
                .iter()
                .map(|t| with_call_id(t, old.as_bytes(), id.as_bytes()))
                .collect::<Vec<_>>()
        })
        .take(total as usize);

    let (started_server, target) = match args.target {
        Some(target) => (None, target),
        None => {
            let (started, target) = start_cdrhub(&args.cdrhub, args.tcp)?;
            (Some(started), target)
        }
    };

    // Paced in 1 ms steps.
    let mut sender = Sender::connect(target, args.tcp)?;
    let started = Instant::now();
    for (n, p) in packets.enumerate() {
        let due = started + Duration::from_nanos(n as u64 * 1_000_000_000 / args.rate);
        let now = Instant::now();
        if due > now + Duration::from_millis(1) {
            std::thread::sleep(due - now);
        }
        sender.send(&p?)?;
    }
    let sending = started.elapsed();
    drop(sender);
    let sent_per_s = total as f64 / sending.as_secs_f64();

    let Some(s) = started_server else {
        if args.json {
            println!(
                "{}",
                serde_json::json!({
                    "sent": total, "seconds": sending.as_secs_f64(), "sent_per_s": sent_per_s,
                    "transport": if args.tcp { "tcp" } else { "udp" },
                })
            );
        } else {
            println!(
                "{total} HEP packets sent in {:.1} s ({sent_per_s:.0} a second)",
                sending.as_secs_f64()
            );
        }
        return Ok(());
    };

    // Wait until the journal stops growing.
    let mut last = 0;
    let mut still = 0;
    let sip = loop {
        std::thread::sleep(Duration::from_millis(500));
        let sip = sip_source(&get(s.http, &s.token, "/api/v1/sources")?);
        let now = stored(&sip);
        if now >= total || (now == last && still >= 4) {
            break sip;
        }
        still = if now == last { still + 1 } else { 0 };
        last = now;
    };
    let rss = peak_rss_mb(s.server.0.id());
    drop(s.server);
    let _ = std::fs::remove_dir_all(&s.dir);
    let stored = stored(&sip);
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "sent": total, "seconds": sending.as_secs_f64(), "sent_per_s": sent_per_s,
                "transport": if args.tcp { "tcp" } else { "udp" }, "stored": stored,
                "lost": total - stored.min(total), "kernel_drops": sip["kernel_drops"],
                "bad": sip["counters"]["bad_header"], "peak_rss_mb": rss,
            })
        );
    } else {
        println!(
            "{total} HEP packets sent in {:.1} s ({sent_per_s:.0} a second); stored {stored}; lost {}; kernel drops {}; bad {}; cdrhub peak RSS {rss:.1} MB",
            sending.as_secs_f64(),
            total - stored.min(total),
            sip["kernel_drops"],
            sip["counters"]["bad_header"],
        );
    }
    Ok(())
}
