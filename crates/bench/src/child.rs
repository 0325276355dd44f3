//! What the end-to-end benchmarks share: the cdrhub child process and a
//! plain HTTP GET of its API with a token.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

/// `cdrhub serve`, killed when dropped.
pub struct Cdrhub(pub Child);

impl Drop for Cdrhub {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A GET with the bench's API token: a few requests, no client pool.
pub fn get(addr: SocketAddr, token: &str, path: &str) -> anyhow::Result<Value> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    s.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("an HTTP response without a body")?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!("GET {path}: {}", head.lines().next().unwrap_or(""));
    }
    // Bodies are sent whole or chunked; the JSON is what lies between.
    let start = body.find('{').context("no JSON in the response")?;
    let end = body.rfind('}').context("no JSON in the response")?;
    Ok(serde_json::from_str(&body[start..=end])?)
}

/// The peak resident memory of a process, in MB (0 when unknown).
pub fn peak_rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0) as f64
        / 1024.0
}

/// A free TCP port on 127.0.0.1 (given back at once: a small race).
pub fn free_tcp_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A free UDP port on 127.0.0.1.
#[allow(dead_code)] // the CTI bench has no UDP source
pub fn free_udp_port() -> anyhow::Result<u16> {
    Ok(std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Starts `cdrhub serve` on a data directory in `dir`, its HTTP on `http`
/// and the config's source sections `sources`, with an admin API token
/// made first. CDRHUB_BENCH_LOG=FILE keeps the server's log (with
/// RUST_LOG as set).
pub fn start(
    cdrhub: &Path,
    dir: &Path,
    http: SocketAddr,
    sources: &str,
) -> anyhow::Result<(Cdrhub, String)> {
    let config = dir.join("cdrhub.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[http]\nlisten = \"{http}\"\n{sources}",
            dir.join("data")
        ),
    )?;
    let token = Command::new(cdrhub)
        .arg("--config")
        .arg(&config)
        .args(["token", "create", "bench", "--role", "admin"])
        .output()
        .with_context(|| format!("cannot run {}", cdrhub.display()))?;
    if !token.status.success() {
        bail!("token create: {}", String::from_utf8_lossy(&token.stderr));
    }
    let token = String::from_utf8(token.stdout)?.trim().to_owned();
    let log = match std::env::var_os("CDRHUB_BENCH_LOG") {
        Some(path) => Stdio::from(std::fs::File::create(path)?),
        None => Stdio::null(),
    };
    let server = Cdrhub(
        Command::new(cdrhub)
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?,
    );
    Ok((server, token))
}

/// Waits until the server takes connections on `http`.
#[allow(dead_code)] // the CTI bench waits for its simulator's session
pub fn wait_for_http(http: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(http).is_err() {
        if Instant::now() > deadline {
            bail!("cdrhub did not start");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}
