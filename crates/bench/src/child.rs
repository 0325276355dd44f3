//! What the end-to-end benchmarks share: the cdrhub child process and a
//! plain HTTP GET of its API with a token.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Child;
use std::time::Duration;

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
#[allow(dead_code)] // the CTI bench lets its simulator pick ports
pub fn free_tcp_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A free UDP port on 127.0.0.1.
#[allow(dead_code)] // the CTI bench lets its simulator pick ports
pub fn free_udp_port() -> anyhow::Result<u16> {
    Ok(std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
