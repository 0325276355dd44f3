//! `cdrhub-radiusbench`: RADIUS accounting requests answered per second
//! (issue 5, point 1). It starts `cdrhub serve` as a child with the
//! accounting server on a free port and sends the records of gateway calls
//! as a Cisco gateway does (two legs a call, each a Start and a Stop) from
//! `--gateways` sockets (one NAS each), each keeping
//! `--window` requests outstanding and sending a request again when its
//! answer is late. The figure is answers per second; afterwards the run
//! checks that every request answered is in the journal.
//!
//! With `--target` it sends to the accounting server of a cdrhub already
//! running (with `--secret`, its client's secret) and starts nothing; the
//! journal is then the caller's to check. `--rate` paces the requests
//! instead of sending them as fast as they are answered.
//!
//! ```text
//! cargo build --release -p cdrhub -p cdrhub-bench
//! target/release/cdrhub-radiusbench --cdrhub target/release/cdrhub --requests 600000
//! target/release/cdrhub-radiusbench --target 127.0.0.1:1813 --secret S --rate 2000 --requests 120000
//! ```

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::bail;
use cdrhub_protocols::radius::{self, Attribute, attr, cisco, status_type};
use clap::Parser;

#[path = "../child.rs"]
mod child;
use child::{free_tcp_port, free_udp_port, get, peak_rss_mb, start, wait_for_http};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "target/release/cdrhub")]
    cdrhub: PathBuf,
    /// Accounting requests to send: four a call (two legs, Start and Stop).
    #[arg(long, default_value_t = 600_000)]
    requests: u64,
    /// Gateways, each a socket of its own with its own NAS address.
    #[arg(long, default_value_t = 8)]
    gateways: u32,
    /// Requests each gateway keeps outstanding (at most 255: the identifier).
    #[arg(long, default_value_t = 200)]
    window: usize,
    /// Requests a second over all gateways, each gateway sending its share
    /// at even intervals; without it, as fast as answers come.
    #[arg(long)]
    rate: Option<f64>,
    /// The accounting server (UDP) of a cdrhub already running: nothing is
    /// started and the journal is not read.
    #[arg(long, value_name = "ADDR")]
    target: Option<SocketAddr>,
    /// The shared secret of the target's client for 127.0.0.1.
    #[arg(long, default_value = "bench-secret")]
    secret: String,
    #[arg(long)]
    json: bool,
}

/// How often requests are checked for an answer over a second late.
const RESEND_CHECK_EVERY: Duration = Duration::from_millis(100);

/// Request `n` of gateway `g`, four to a call as a Cisco gateway sends
/// them: the Start of the answer (PSTN) leg, the Start of the originate
/// (VoIP) leg, then their Stops.
fn request(g: u32, n: u64, identifier: u8, secret: &[u8]) -> Vec<u8> {
    let call = n / 4;
    let (leg, stop) = match n % 4 {
        0 => (0, false),
        1 => (1, false),
        2 => (1, true),
        _ => (0, true),
    };
    let (origin, call_type) = if leg == 0 {
        ("answer", "Telephony")
    } else {
        ("originate", "VoIP")
    };
    let text = |kind: u8, v: String| Attribute::new(kind, v.into_bytes());
    let h323 = |t: u8, name: &str, v: &str| {
        radius::vsa(cisco::VENDOR_ID, t, format!("{name}={v}").as_bytes())
    };
    let mut attributes = vec![
        Attribute::integer(
            attr::ACCT_STATUS_TYPE,
            if stop {
                status_type::STOP
            } else {
                status_type::START
            },
        ),
        text(attr::ACCT_SESSION_ID, format!("{g:02}-{call:010}-{leg}")),
        Attribute::new(attr::NAS_IP_ADDRESS, vec![10, 77, (g >> 8) as u8, g as u8]),
        text(
            attr::CALLING_STATION_ID,
            format!("55{:06}", call % 1_000_000),
        ),
        text(attr::CALLED_STATION_ID, format!("2{:03}", call % 1000)),
        h323(
            cisco::H323_CONF_ID,
            "h323-conf-id",
            &format!("BENCH {g:08X} {call:016X}"),
        ),
        h323(cisco::H323_CALL_ORIGIN, "h323-call-origin", origin),
        h323(cisco::H323_CALL_TYPE, "h323-call-type", call_type),
        h323(
            cisco::H323_SETUP_TIME,
            "h323-setup-time",
            "*10:23:45.123 UTC Mon Nov 20 2000",
        ),
    ];
    if stop {
        attributes.push(Attribute::integer(attr::ACCT_SESSION_TIME, 60));
        attributes.push(h323(
            cisco::H323_DISCONNECT_CAUSE,
            "h323-disconnect-cause",
            "10",
        ));
    }
    radius::accounting_request(identifier, &attributes, secret)
}

/// One gateway: sends its share, `window` outstanding (and, given `rate`,
/// request `n` not before `n / rate` seconds), and counts answers.
fn gateway(
    target: SocketAddr,
    g: u32,
    count: u64,
    window: usize,
    secret: &[u8],
    rate: Option<f64>,
) -> anyhow::Result<(u64, u64)> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.connect(target)?;
    let wait = Duration::from_millis(50);
    socket.set_read_timeout(Some(wait))?;
    let started = Instant::now();
    let due = |n: u64| rate.map(|r| started + Duration::from_secs_f64(n as f64 / r));
    let mut checked = started;
    let mut next = 0u64;
    let mut answered = 0u64;
    let mut resent = 0u64;
    // identifier -> (request number, datagram, sent at)
    let mut outstanding: HashMap<u8, (u64, Vec<u8>, Instant)> = HashMap::new();
    let mut free: Vec<u8> = (0..=254u8).rev().collect();
    let mut buf = [0u8; 4096];
    while answered < count {
        while next < count && outstanding.len() < window {
            if due(next).is_some_and(|at| at > Instant::now()) {
                break;
            }
            let Some(id) = free.pop() else { break };
            let datagram = request(g, next, id, secret);
            socket.send(&datagram)?;
            outstanding.insert(id, (next, datagram, Instant::now()));
            next += 1;
        }
        if rate.is_some() {
            // Paced: wake up for the next request, if no answer comes first.
            let until = match due(next).filter(|_| next < count) {
                Some(at) => at.saturating_duration_since(Instant::now()),
                None => wait,
            };
            socket.set_read_timeout(Some(until.clamp(Duration::from_millis(1), wait)))?;
        }
        match socket.recv(&mut buf) {
            Ok(n) if n >= 20 && buf[0] == radius::ACCOUNTING_RESPONSE => {
                // Only the answer to the request now under this identifier:
                // a late answer to one sent again before has another
                // Response Authenticator.
                let current = outstanding.get(&buf[1]).is_some_and(|(_, datagram, _)| {
                    let mut request_auth = [0u8; 16];
                    request_auth.copy_from_slice(&datagram[4..20]);
                    radius::accounting_response(buf[1], &request_auth, secret)[..] == buf[..n]
                });
                if current {
                    outstanding.remove(&buf[1]);
                    answered += 1;
                    free.push(buf[1]);
                }
            }
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e.into()),
        }
        // Late answers: send those requests again, as a gateway does (also
        // while other answers keep coming, as they do at a steady rate).
        let now = Instant::now();
        if now.duration_since(checked) > RESEND_CHECK_EVERY {
            checked = now;
            for (_, datagram, at) in outstanding.values_mut() {
                if now.duration_since(*at) > Duration::from_secs(1) {
                    socket.send(datagram)?;
                    *at = now;
                    resent += 1;
                }
            }
        }
    }
    Ok((answered, resent))
}

/// The cdrhub this run started, and how to read its journal.
struct Started {
    server: child::Cdrhub,
    token: String,
    http: SocketAddr,
    dir: PathBuf,
}

/// Starts `cdrhub serve` with the accounting server on a free port and a
/// client for loopback with `secret`; returns it and that port.
fn start_cdrhub(cdrhub: &Path, secret: &str) -> anyhow::Result<(Started, SocketAddr)> {
    let dir = std::env::temp_dir().join(format!("cdrhub-radiusbench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let http: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()?).parse()?;
    let udp: SocketAddr = format!("127.0.0.1:{}", free_udp_port()?).parse()?;
    let (server, token) = start(
        cdrhub,
        &dir,
        http,
        &format!(
            "[sources.radius]\nenabled = true\nlisten = \"{udp}\"\n[[sources.radius.clients]]\naddress = \"127.0.0.0/8\"\nsecret = {secret:?}\n"
        ),
    )?;
    wait_for_http(http)?;
    Ok((
        Started {
            server,
            token,
            http,
            dir,
        },
        udp,
    ))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.window == 0 || args.window > 255 {
        bail!("--window must be 1 to 255 (the RADIUS identifier is one byte)");
    }
    if let Some(rate) = args.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        bail!("--rate must be a positive number of requests a second, not {rate}");
    }
    let (started_server, udp) = match args.target {
        Some(target) => (None, target),
        None => {
            let (started, udp) = start_cdrhub(&args.cdrhub, &args.secret)?;
            (Some(started), udp)
        }
    };

    let per_gateway = args.requests / u64::from(args.gateways) / 4 * 4;
    let gateway_rate = args.rate.map(|r| r / f64::from(args.gateways));
    let started = Instant::now();
    let threads: Vec<_> = (0..args.gateways)
        .map(|g| {
            let window = args.window;
            let secret = args.secret.clone().into_bytes();
            std::thread::spawn(move || gateway(udp, g, per_gateway, window, &secret, gateway_rate))
        })
        .collect();
    let mut answered = 0;
    let mut resent = 0;
    for t in threads {
        let (a, r) = t
            .join()
            .map_err(|_| anyhow::anyhow!("a gateway thread panicked"))??;
        answered += a;
        resent += r;
    }
    let elapsed = started.elapsed();
    // Every request answered is in the journal, once (when this run
    // started the server).
    let journal = match started_server {
        Some(s) => {
            let rss = peak_rss_mb(s.server.0.id());
            let sources = get(s.http, &s.token, "/api/v1/sources")?;
            let stored: u64 = sources["sources"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|s| s["source"] == "radius")
                .flat_map(|s| s["senders"].as_array().cloned().unwrap_or_default())
                .map(|s| s["records_total"].as_u64().unwrap_or(0))
                .sum();
            drop(s.server);
            let _ = std::fs::remove_dir_all(&s.dir);
            Some((stored, rss))
        }
        None => None,
    };
    let rate = answered as f64 / elapsed.as_secs_f64();
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "requests": answered, "seconds": elapsed.as_secs_f64(), "answered_per_s": rate,
                "sent_again": resent, "stored": journal.map(|j| j.0), "gateways": args.gateways,
                "window": args.window, "peak_rss_mb": journal.map(|j| j.1),
            })
        );
    } else {
        println!(
            "{answered} accounting requests from {} gateways answered in {:.1} s: {rate:.0} a second ({resent} sent again after 1 s)",
            args.gateways,
            elapsed.as_secs_f64()
        );
        if let Some((stored, rss)) = journal {
            println!("records in the journal: {stored}; cdrhub peak RSS {rss:.1} MB");
        }
    }
    if let Some((stored, _)) = journal
        && stored != answered
    {
        bail!("{answered} requests answered but {stored} records stored");
    }
    Ok(())
}
