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
//! ```text
//! cargo build --release -p cdrhub -p cdrhub-bench
//! target/release/cdrhub-hepbench --cdrhub target/release/cdrhub --rate 30000 --seconds 10
//! ```

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
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

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let template = template()?;
    let old = call_id_prefix(&template[0])?;
    let total = args.rate * args.seconds;
    let calls = total.div_ceil(template.len() as u64);
    if calls.to_string().len() > old.len() {
        bail!("too many packets for the capture's Call-ID width; lower --rate or --seconds");
    }
    let mut packets = Vec::with_capacity((calls as usize) * template.len());
    for n in 0..calls {
        let id = format!("{n:0width$}", width = old.len());
        for t in &template {
            packets.push(with_call_id(t, old.as_bytes(), id.as_bytes())?);
        }
    }
    packets.truncate(total as usize);

    let dir = std::env::temp_dir().join(format!("cdrhub-hepbench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let http: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()?).parse()?;
    let udp: SocketAddr = format!("127.0.0.1:{}", free_udp_port()?).parse()?;
    let tcp: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()?).parse()?;
    let (server, token) = start(
        &args.cdrhub,
        &dir,
        http,
        &format!("[sources.hep]\nenabled = true\nudp_listen = \"{udp}\"\ntcp_listen = \"{tcp}\"\n"),
    )?;
    let pid = server.0.id();
    wait_for_http(http)?;
    std::thread::sleep(Duration::from_millis(300));

    // Paced in 1 ms steps.
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.connect(udp)?;
    let started = Instant::now();
    for (n, p) in packets.iter().enumerate() {
        let due = started + Duration::from_nanos(n as u64 * 1_000_000_000 / args.rate);
        let now = Instant::now();
        if due > now + Duration::from_millis(1) {
            std::thread::sleep(due - now);
        }
        socket.send(p)?;
    }
    let sending = started.elapsed();

    // Wait until the journal stops growing.
    let mut last = 0;
    let mut still = 0;
    let sip = loop {
        std::thread::sleep(Duration::from_millis(500));
        let sip = sip_source(&get(http, &token, "/api/v1/sources")?);
        let now = stored(&sip);
        if now >= total || (now == last && still >= 4) {
            break sip;
        }
        still = if now == last { still + 1 } else { 0 };
        last = now;
    };
    let rss = peak_rss_mb(pid);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    let stored = stored(&sip);
    println!(
        "{total} HEP packets sent in {:.1} s ({:.0} a second); stored {stored}; lost {}; kernel drops {}; bad {}; cdrhub peak RSS {rss:.1} MB",
        sending.as_secs_f64(),
        total as f64 / sending.as_secs_f64(),
        total - stored.min(total),
        sip["kernel_drops"],
        sip["counters"]["bad_header"],
    );
    Ok(())
}
