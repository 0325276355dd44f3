//! What every network source shares to keep strangers and floods in their
//! place (issue 9): allow-lists of sender addresses, and a limiter that
//! keeps one misbehaving address from filling the log.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use serde::Deserialize;

/// Addresses the limiter remembers at most; beyond, the oldest are let go.
const LIMITER_SIZE: usize = 4096;

/// An address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Subnet {
    pub fn parse(text: &str) -> Result<Subnet, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or subnet"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {max}"))?,
            None => max,
        };
        Ok(Subnet { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        // Both as 128 bits, an IPv4 address in the top 32.
        let (bits, own, width) = match (ip, self.addr) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (
                u128::from(u32::from(a)) << 96,
                u128::from(u32::from(b)) << 96,
                32,
            ),
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
            _ => return false,
        };
        let prefix = u32::from(self.prefix).min(width);
        let mask = if prefix == 0 {
            0
        } else {
            u128::MAX << (128 - prefix)
        };
        bits & mask == own & mask
    }
}

/// The senders a source takes, by address or subnet (`allow = ["10.1.0.0/16",
/// "192.0.2.7", "2001:db8::/32"]`). Empty: every address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Vec<String>")]
pub struct AllowList(Vec<Subnet>);

impl TryFrom<Vec<String>> for AllowList {
    type Error = String;

    fn try_from(entries: Vec<String>) -> Result<Self, String> {
        entries
            .iter()
            .map(|e| Subnet::parse(e).map_err(|m| format!("allow: {m}")))
            .collect::<Result<Vec<_>, _>>()
            .map(AllowList)
    }
}

impl AllowList {
    /// Whether `ip` may send.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.0.is_empty() || self.0.iter().any(|s| s.contains(ip))
    }

    /// `Err(address)` when the sender of a request may not send. A
    /// request that came through no listener (a test calling the router)
    /// names no address and passes.
    pub fn check(&self, peer: Peer) -> Result<(), IpAddr> {
        match peer.0 {
            Some(addr) if !self.allows(addr.ip()) => Err(addr.ip()),
            _ => Ok(()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The address a request came from, as the listener saw it; none for a
/// request that came through no listener. Never refuses a request.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<SocketAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

/// At most one event per source address per interval; says how many were
/// held back since the last one let through.
pub struct Limiter {
    every: Duration,
    seen: HashMap<IpAddr, (Instant, u64)>,
}

impl Limiter {
    pub fn new(every: Duration) -> Self {
        Limiter {
            every,
            seen: HashMap::new(),
        }
    }

    /// `Some(held back)` when an event from `ip` may go now.
    pub fn allow(&mut self, ip: IpAddr) -> Option<u64> {
        let now = Instant::now();
        if self.seen.len() >= LIMITER_SIZE {
            let every = self.every;
            self.seen
                .retain(|_, (at, _)| now.duration_since(*at) < every);
        }
        match self.seen.get_mut(&ip) {
            Some((at, held)) if now.duration_since(*at) < self.every => {
                *held += 1;
                None
            }
            Some((at, held)) => {
                let was = *held;
                *at = now;
                *held = 0;
                Some(was)
            }
            None => {
                if self.seen.len() < LIMITER_SIZE {
                    self.seen.insert(ip, (now, 0));
                }
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AllowList {
        AllowList::try_from(entries.iter().map(|e| e.to_string()).collect::<Vec<_>>())
            .expect("a valid list")
    }

    #[test]
    fn an_empty_list_allows_everyone() {
        assert!(list(&[]).allows("203.0.113.9".parse().unwrap()));
    }

    #[test]
    fn addresses_and_subnets_of_both_families() {
        let l = list(&["10.1.0.0/16", "192.0.2.7", "2001:db8::/32"]);
        for ok in [
            "10.1.200.3",
            "192.0.2.7",
            "2001:db8:5::1",
            "::ffff:10.1.0.1",
        ] {
            assert!(l.allows(ok.parse().unwrap()), "{ok}");
        }
        for no in ["10.2.0.1", "192.0.2.8", "2001:db9::1", "127.0.0.1"] {
            assert!(!l.allows(no.parse().unwrap()), "{no}");
        }
    }

    #[test]
    fn a_bad_entry_is_named() {
        let e = AllowList::try_from(vec!["10.0.0.0/33".to_owned()]).unwrap_err();
        assert!(e.contains("10.0.0.0/33") && e.contains("0 to 32"), "{e}");
        let e = AllowList::try_from(vec!["gateway-1".to_owned()]).unwrap_err();
        assert!(e.contains("not an IP address"), "{e}");
    }

    #[test]
    fn subnets_match_addresses() {
        let s = Subnet::parse("10.1.2.0/24").unwrap();
        assert!(s.contains("10.1.2.77".parse().unwrap()));
        assert!(!s.contains("10.1.3.1".parse().unwrap()));
        assert!(s.contains("::ffff:10.1.2.9".parse().unwrap()), "v4-mapped");
        let one = Subnet::parse("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        assert!(
            Subnet::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        let v6 = Subnet::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        assert!(Subnet::parse("10.0.0.0/33").is_err());
        assert!(Subnet::parse("gateway").is_err());
    }

    #[test]
    fn a_limiter_lets_one_through_per_interval_and_counts_the_rest() {
        let mut l = Limiter::new(Duration::from_secs(3600));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(l.allow(ip), Some(0));
        assert_eq!(l.allow(ip), None);
        assert_eq!(l.allow(ip), None);
        assert_eq!(l.allow("192.0.2.2".parse().unwrap()), Some(0));
        l.every = Duration::ZERO;
        assert_eq!(l.allow(ip), Some(2), "two held back");
    }
}
