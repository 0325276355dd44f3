//! Resident memory and CPU time of a process, read from Linux `/proc`.

use std::time::Duration;
use tokio::sync::watch;

/// Clock ticks per second of `/proc/PID/stat` times; 100 on every Linux
/// architecture cdrhub targets (USER_HZ).
const TICKS_PER_SECOND: f64 = 100.0;

/// `VmRSS` of `/proc/PID/status` in kB.
pub fn rss_kb(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User plus system CPU seconds used so far by a process (`self` for this one).
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after it are plain.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let mut fields = after_name.split_whitespace();
    // utime and stime are fields 14 and 15, i.e. 12th and 13th after the name.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SECOND)
}

/// Samples `VmRSS` of `pid` every `every` until `stop` turns true; returns the
/// largest value seen in MB, or `None` if the process could never be read.
pub async fn max_rss_mb(pid: u32, every: Duration, mut stop: watch::Receiver<bool>) -> Option<f64> {
    let pid = pid.to_string();
    let mut max_kb = rss_kb(&pid);
    let mut ticker = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if let Some(kb) = rss_kb(&pid) {
                    max_kb = Some(max_kb.map_or(kb, |m| m.max(kb)));
                }
            }
            _ = stop.changed() => break,
        }
    }
    if let Some(kb) = rss_kb(&pid) {
        max_kb = Some(max_kb.map_or(kb, |m| m.max(kb)));
    }
    max_kb.map(|kb| kb as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        assert!(rss_kb("self").unwrap() > 0);
        assert!(cpu_seconds("self").unwrap() >= 0.0);
    }
}
