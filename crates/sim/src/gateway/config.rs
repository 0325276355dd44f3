//! What a gateway simulation does: the server it sends to, its gateways,
//! how many calls of which shapes and how fast, and what goes wrong.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use cdrhub_protocols::feed::KEEPALIVE_INTERVAL_SECS;

use super::calls::{CallShape, Ports, Timing};

/// The feed's default port, TCP and UDP.
pub const DEFAULT_PORT: u16 = 6090;
/// The first gateway's id; the seed's gateways are `8200` and `8378`.
pub const DEFAULT_FIRST_ID: u32 = 8200;
/// The seed's answer timeout: a gateway sends again over UDP what has had
/// no answer for 2 seconds (docs/gateway-feed.md, "What the server
/// answers").
pub const RESEND_AFTER: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Udp,
}

/// Where the server listens: `tcp://127.0.0.1:6090` or `udp://[::1]:6090`
/// (the port may be left out: 6090).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerAddr {
    pub transport: Transport,
    pub addr: SocketAddr,
}

impl fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.transport {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        };
        write!(f, "{scheme}://{}", self.addr)
    }
}

impl FromStr for ServerAddr {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<ServerAddr, ConfigError> {
        let bad = || ConfigError::ServerSyntax(s.to_owned());
        let (scheme, rest) = s.split_once("://").ok_or_else(bad)?;
        let transport = match scheme {
            "tcp" => Transport::Tcp,
            "udp" => Transport::Udp,
            _ => return Err(bad()),
        };
        let addr = rest
            .parse::<SocketAddr>()
            .or_else(|_| {
                let bare = rest.trim_start_matches('[').trim_end_matches(']');
                bare.parse::<IpAddr>()
                    .map(|ip| SocketAddr::new(ip, DEFAULT_PORT))
            })
            .map_err(|_| bad())?;
        Ok(ServerAddr { transport, addr })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// The server's feed address and transport.
    pub server: ServerAddr,
    /// Gateways, with ids `first_id`, `first_id + 1`, ... Each has its own
    /// connection (TCP) or socket (UDP) and makes its calls one after
    /// another.
    pub gateways: u32,
    /// The first gateway's id.
    pub first_id: u32,
    /// FXS ports of every gateway (phones), numbered from 1.
    pub fxs_ports: u16,
    /// FXO ports (PSTN lines), numbered after the FXS ports.
    pub fxo_ports: u16,
    /// ISDN channels (PSTN lines too), numbered after the FXO ports.
    pub isdn_channels: u16,
    /// Calls each gateway makes.
    pub calls: u64,
    /// New calls per second over all gateways: each gateway starts a call
    /// every `gateways / rate` seconds, or when its last call ends if that
    /// is later.
    pub rate: f64,
    /// Multiplies the durations within calls: 0.01 plays a one-minute call
    /// in 0.6 s, and 0 sends a call's events back to back. The gateways'
    /// clocks (`at`) keep the unscaled durations.
    pub time_scale: f64,
    /// How often each call shape is chosen.
    pub mix: ShapeMix,
    /// Seed of the pseudo-random choices (shapes, ports, numbers,
    /// durations, where the bad lines go); `None` takes one from the clock.
    pub seed: Option<u64>,
    /// Unreadable lines to send in all, spread over the gateways and mixed
    /// into their calls: a wrong version word, an unknown type, a missing
    /// field, bytes that are not UTF-8, a line over 1024 bytes, in turn.
    pub bad_packets: u32,
    /// Halfway through its calls, the first gateway logs in again from a
    /// new source address (over TCP, a new connection), as a gateway behind
    /// a NAT whose public address changed: the server logs `Re-Login` and
    /// `Relogin Kickout`.
    pub relogin: bool,
    /// Mean durations of the calls' parts, on the gateway's clock.
    pub timing: Timing,
    /// A gateway that has sent nothing for this long sends KEEPALIVE. Not
    /// scaled: the server ends a session after three intervals of its own
    /// clock.
    pub keepalive_after: Duration,
    /// How long a message waits for its answer before it is sent again
    /// (UDP) or the server is given up on (TCP, after `max_sends` times
    /// this).
    pub resend_after: Duration,
    /// Sends of one message without an answer before the gateway gives up
    /// and the run fails.
    pub max_sends: u32,
    /// Messages a gateway may have sent without an answer; it waits for
    /// answers before it sends more.
    pub window: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            server: ServerAddr {
                transport: Transport::Tcp,
                addr: SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PORT)),
            },
            // The seed's server page shows three gateways, each FXS(2)
            // FXO(2) ISDN(0).
            gateways: 3,
            first_id: DEFAULT_FIRST_ID,
            fxs_ports: 2,
            fxo_ports: 2,
            isdn_channels: 0,
            calls: 10,
            rate: 1.0,
            time_scale: 1.0,
            mix: ShapeMix::default(),
            seed: None,
            bad_packets: 0,
            relogin: false,
            timing: Timing::default(),
            keepalive_after: Duration::from_secs(KEEPALIVE_INTERVAL_SECS),
            resend_after: RESEND_AFTER,
            max_sends: 10,
            window: 64,
        }
    }
}

impl SimConfig {
    /// Whether the configuration can run; the error says what to change.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.gateways == 0 {
            return Err(ConfigError::NoGateways);
        }
        // The MAC carries the id's low 16 bits: more gateways would share one.
        if self.gateways > 1 << 16 || self.first_id.checked_add(self.gateways).is_none() {
            return Err(ConfigError::TooManyGateways(self.gateways));
        }
        let ports =
            u32::from(self.fxs_ports) + u32::from(self.fxo_ports) + u32::from(self.isdn_channels);
        if ports == 0 || ports > u32::from(u16::MAX) {
            return Err(ConfigError::Ports(ports));
        }
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return Err(ConfigError::Rate(self.rate));
        }
        if !(self.time_scale.is_finite() && self.time_scale >= 0.0) {
            return Err(ConfigError::TimeScale(self.time_scale));
        }
        if self.mix.total() == 0 {
            return Err(ConfigError::EmptyMix);
        }
        if self.max_sends == 0 || self.window == 0 || self.resend_after.is_zero() {
            return Err(ConfigError::Reliability);
        }
        Ok(())
    }

    pub(super) fn ports(&self) -> Ports {
        Ports {
            fxs: self.fxs_ports,
            fxo: self.fxo_ports,
            isdn: self.isdn_channels,
        }
    }
}

/// Weights of the call shapes: a call has a shape with the probability of
/// its weight over the total. Written `out=2,from-pstn=4,in=4`; a shape not
/// named has weight 0. The names are [`CallShape::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShapeMix([u32; CallShape::ALL.len()]);

impl Default for ShapeMix {
    /// About the seed's report of gateway 8200: mostly calls out from its
    /// PSTN line and calls in to its first phone, some out through the PSTN,
    /// one of each other kind.
    fn default() -> Self {
        ShapeMix::none()
            .with(CallShape::CallOut, 2)
            .with(CallShape::CallOutFromPstn, 4)
            .with(CallShape::CallOutViaPstn, 2)
            .with(CallShape::CallIn, 4)
            .with(CallShape::CallInViaPstn, 1)
            .with(CallShape::HookOnOff, 1)
            .with(CallShape::CallInReject, 1)
            .with(CallShape::CallOutFailed, 1)
            .with(CallShape::PstnAbandoned, 1)
    }
}

impl ShapeMix {
    /// Every weight 0.
    pub fn none() -> ShapeMix {
        ShapeMix([0; CallShape::ALL.len()])
    }

    /// This mix with `shape` at `weight`.
    pub fn with(mut self, shape: CallShape, weight: u32) -> ShapeMix {
        self.0[Self::slot(shape)] = weight;
        self
    }

    pub fn weight(&self, shape: CallShape) -> u32 {
        self.0[Self::slot(shape)]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().map(|&w| u64::from(w)).sum()
    }

    fn slot(shape: CallShape) -> usize {
        CallShape::ALL
            .iter()
            .position(|&s| s == shape)
            .unwrap_or_default()
    }

    /// The shape of a draw `r` in `0..total()`.
    pub(super) fn pick(&self, mut r: u64) -> CallShape {
        for (shape, &weight) in CallShape::ALL.iter().zip(&self.0) {
            let weight = u64::from(weight);
            if r < weight {
                return *shape;
            }
            r -= weight;
        }
        CallShape::CallOut
    }
}

impl fmt::Display for ShapeMix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (shape, weight) in CallShape::ALL.iter().zip(&self.0) {
            if *weight > 0 {
                let comma = if first { "" } else { "," };
                write!(f, "{comma}{}={weight}", shape.name())?;
                first = false;
            }
        }
        Ok(())
    }
}

impl FromStr for ShapeMix {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<ShapeMix, ConfigError> {
        let mut mix = ShapeMix::none();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| ConfigError::MixSyntax(part.to_owned()))?;
            let weight: u32 = weight
                .trim()
                .parse()
                .map_err(|_| ConfigError::MixSyntax(part.to_owned()))?;
            let shape = CallShape::ALL
                .into_iter()
                .find(|shape| shape.name() == name.trim())
                .ok_or_else(|| ConfigError::MixShape(name.trim().to_owned()))?;
            mix = mix.with(shape, weight);
        }
        if mix.total() == 0 {
            return Err(ConfigError::EmptyMix);
        }
        Ok(mix)
    }
}

/// Why a gateway simulation cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0:?} is not tcp://ADDRESS:PORT or udp://ADDRESS:PORT (an IP address)")]
    ServerSyntax(String),
    #[error("the simulation needs at least one gateway")]
    NoGateways,
    #[error("{0} gateways do not fit: at most 65536, and their ids must fit 32 bits")]
    TooManyGateways(u32),
    #[error("a gateway needs 1 to 65535 ports in all (FXS, FXO and ISDN), not {0}")]
    Ports(u32),
    #[error("the call rate must be a number of calls per second above 0, not {0}")]
    Rate(f64),
    #[error("the time scale must be 0 or more, not {0}")]
    TimeScale(f64),
    #[error("the shape mix gives every shape weight 0: no call could be made")]
    EmptyMix,
    #[error("the answer timeout, the sends per message and the window must all be above 0")]
    Reliability,
    #[error("{0:?} is not SHAPE=WEIGHT (for example out=2)")]
    MixSyntax(String),
    #[error(
        "{0:?} is not a call shape; the shapes are out, from-pstn, via-pstn, in, in-pstn, hook, \
         reject, failed and pstn-abandoned"
    )]
    MixShape(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_address_names_its_transport() {
        let tcp: ServerAddr = "tcp://127.0.0.1:6090".parse().unwrap();
        assert_eq!(tcp.transport, Transport::Tcp);
        assert_eq!(tcp.to_string(), "tcp://127.0.0.1:6090");
        let udp: ServerAddr = "udp://[::1]".parse().unwrap();
        assert_eq!(udp.transport, Transport::Udp);
        assert_eq!(udp.addr, "[::1]:6090".parse().unwrap());
        let no_port: ServerAddr = "udp://10.0.0.1".parse().unwrap();
        assert_eq!(no_port.addr.port(), DEFAULT_PORT);
        for bad in [
            "127.0.0.1:6090",
            "http://127.0.0.1:6090",
            "tcp://localhost:6090",
        ] {
            assert_eq!(
                bad.parse::<ServerAddr>(),
                Err(ConfigError::ServerSyntax(bad.to_owned()))
            );
        }
    }

    #[test]
    fn a_mix_names_its_shapes_and_leaves_the_others_out() {
        let mix: ShapeMix = "out=3, reject=1".parse().unwrap();
        assert_eq!(mix.weight(CallShape::CallOut), 3);
        assert_eq!(mix.weight(CallShape::CallInReject), 1);
        assert_eq!(mix.weight(CallShape::CallIn), 0);
        assert_eq!(mix.total(), 4);
        assert_eq!(mix.pick(0), CallShape::CallOut);
        assert_eq!(mix.pick(2), CallShape::CallOut);
        assert_eq!(mix.pick(3), CallShape::CallInReject);
        assert_eq!(
            "out".parse::<ShapeMix>(),
            Err(ConfigError::MixSyntax("out".to_owned()))
        );
        assert_eq!(
            "transfer=1".parse::<ShapeMix>(),
            Err(ConfigError::MixShape("transfer".to_owned()))
        );
        assert_eq!("out=0".parse::<ShapeMix>(), Err(ConfigError::EmptyMix));
    }

    #[test]
    fn a_mix_reads_back_what_it_writes() {
        let mix = ShapeMix::default();
        assert_eq!(mix.to_string().parse::<ShapeMix>(), Ok(mix));
        assert!(CallShape::ALL.iter().all(|&s| mix.weight(s) > 0));
    }

    #[test]
    fn the_default_configuration_runs() {
        assert_eq!(SimConfig::default().check(), Ok(()));
        let no_ports = SimConfig {
            fxs_ports: 0,
            fxo_ports: 0,
            isdn_channels: 0,
            ..SimConfig::default()
        };
        assert_eq!(no_ports.check(), Err(ConfigError::Ports(0)));
        let too_many = SimConfig {
            first_id: u32::MAX - 1,
            ..SimConfig::default()
        };
        assert_eq!(too_many.check(), Err(ConfigError::TooManyGateways(3)));
        let no_rate = SimConfig {
            rate: 0.0,
            ..SimConfig::default()
        };
        assert_eq!(no_rate.check(), Err(ConfigError::Rate(0.0)));
    }
}
