//! What a simulated CTI server does: where it listens, its agents, how many
//! calls of which flows it plays and how fast.

use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;

use super::flows::{PreviewResponse, Timing};

/// The seed: "Unified CCX listens on port 42027 for incoming client
/// connections" (the RmCm TCP Port).
pub const DEFAULT_PORT: u16 = 42027;
/// The first call id, near the seed's 16777507.
pub const DEFAULT_BASE_CALL_ID: u32 = 16_777_500;
/// The first agent's extension; agent `i` is on `FIRST_EXTENSION + i`.
pub const FIRST_EXTENSION: u32 = 2000;

#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Address to listen on; port 0 picks a free port (see
    /// [`SimHandle::addr`](super::SimHandle::addr)).
    pub listen: SocketAddr,
    /// Agents on extensions 2000, 2001, ... with ids `agt2000`, `agt2001`.
    /// Calls go to them in turn (a transfer or conference to the next one).
    pub agents: u32,
    /// New calls started per second. Each call then plays its flow with its
    /// own timing, concurrently with the others.
    pub rate: f64,
    /// Calls to start in all; `None` for no end.
    pub calls: Option<u64>,
    /// Multiplies every delay of the flows: 0.01 plays a minute-long call in
    /// 0.6 s, and 0 plays each call's messages back to back (benchmarks).
    pub time_scale: f64,
    /// How often each flow is chosen.
    pub mix: FlowMix,
    /// Seed of the pseudo-random choices (flow, durations, caller); `None`
    /// takes one from the clock.
    pub seed: Option<u64>,
    /// Start as the standby node of a pair: OPEN_REQ is answered with
    /// FAILURE_CONF E_CTI_SERVER_NOT_MASTER (reference B.3, "UCCX HA").
    pub standby: bool,
    /// The first CTI call id; ids increase from it over every call.
    pub base_call_id: u32,
    /// Frames a connection may have waiting to be written. A client that
    /// falls this far behind is disconnected, so that it never holds up the
    /// others.
    pub queue_frames: usize,
    /// Mean durations of the flows' parts; each call varies them by up to
    /// half either way.
    pub timing: Timing,
    /// The trigger callers dial (DNIS).
    pub trigger: String,
    /// UCCX ApplicationID of the trigger's application.
    pub application_id: u32,
    /// UCCX CSQID the calls queue to.
    pub csq_id: u32,
    /// `BACampaign` of outbound contacts.
    pub campaign: String,
    /// `BACampaignID` of outbound contacts.
    pub campaign_id: u32,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PORT)),
            agents: 10,
            rate: 1.0,
            calls: None,
            time_scale: 1.0,
            mix: FlowMix::default(),
            seed: None,
            standby: false,
            base_call_id: DEFAULT_BASE_CALL_ID,
            queue_frames: 65_536,
            timing: Timing::default(),
            // The seed's trigger, application and CSQ.
            trigger: "7000".to_owned(),
            application_id: 2,
            csq_id: 1,
            campaign: "LoadCamp".to_owned(),
            campaign_id: 2,
        }
    }
}

impl SimConfig {
    /// Whether the configuration can run; the error says what to change.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.agents == 0 {
            return Err(ConfigError::NoAgents);
        }
        if FIRST_EXTENSION.checked_add(self.agents).is_none() {
            return Err(ConfigError::TooManyAgents(self.agents));
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
        if self.queue_frames == 0 {
            return Err(ConfigError::NoQueue);
        }
        Ok(())
    }
}

/// Which flow a call plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowKind {
    Queued,
    Transfer,
    Conference,
    Preview(PreviewResponse),
}

/// Weights of the flows: a call plays a flow with the probability of its
/// weight over the total. Written `queued=6,transfer=1,conference=1,
/// accept=1,skip=1,reject=1`; a flow not named has weight 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowMix {
    pub queued: u32,
    pub transfer: u32,
    pub conference: u32,
    pub preview_accept: u32,
    pub preview_skip: u32,
    pub preview_reject: u32,
}

impl Default for FlowMix {
    fn default() -> Self {
        FlowMix {
            queued: 6,
            transfer: 1,
            conference: 1,
            preview_accept: 1,
            preview_skip: 1,
            preview_reject: 1,
        }
    }
}

impl FlowMix {
    fn weights(&self) -> [(FlowKind, u32); 6] {
        [
            (FlowKind::Queued, self.queued),
            (FlowKind::Transfer, self.transfer),
            (FlowKind::Conference, self.conference),
            (
                FlowKind::Preview(PreviewResponse::Accept),
                self.preview_accept,
            ),
            (FlowKind::Preview(PreviewResponse::Skip), self.preview_skip),
            (
                FlowKind::Preview(PreviewResponse::Reject),
                self.preview_reject,
            ),
        ]
    }

    pub fn total(&self) -> u64 {
        self.weights().iter().map(|(_, w)| u64::from(*w)).sum()
    }

    /// The flow of a draw `r` in `0..total()`.
    pub(crate) fn pick(&self, mut r: u64) -> FlowKind {
        for (kind, weight) in self.weights() {
            let weight = u64::from(weight);
            if r < weight {
                return kind;
            }
            r -= weight;
        }
        FlowKind::Queued
    }
}

impl FromStr for FlowMix {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<FlowMix, ConfigError> {
        let mut mix = FlowMix {
            queued: 0,
            transfer: 0,
            conference: 0,
            preview_accept: 0,
            preview_skip: 0,
            preview_reject: 0,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| ConfigError::MixSyntax(part.to_owned()))?;
            let weight: u32 = weight
                .trim()
                .parse()
                .map_err(|_| ConfigError::MixSyntax(part.to_owned()))?;
            let slot = match name.trim() {
                "queued" => &mut mix.queued,
                "transfer" => &mut mix.transfer,
                "conference" => &mut mix.conference,
                "accept" => &mut mix.preview_accept,
                "skip" => &mut mix.preview_skip,
                "reject" => &mut mix.preview_reject,
                other => return Err(ConfigError::MixFlow(other.to_owned())),
            };
            *slot = weight;
        }
        if mix.total() == 0 {
            return Err(ConfigError::EmptyMix);
        }
        Ok(mix)
    }
}

/// Why a simulator configuration cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("the simulator needs at least one agent")]
    NoAgents,
    #[error("{0} agents do not fit the extensions from 2000 on")]
    TooManyAgents(u32),
    #[error("the call rate must be a number of calls per second above 0, not {0}")]
    Rate(f64),
    #[error("the time scale must be 0 or more, not {0}")]
    TimeScale(f64),
    #[error("the flow mix gives every flow weight 0: no call could be made")]
    EmptyMix,
    #[error("a connection's queue must hold at least one frame")]
    NoQueue,
    #[error("{0:?} is not FLOW=WEIGHT (for example queued=6)")]
    MixSyntax(String),
    #[error(
        "{0:?} is not a flow; the flows are queued, transfer, conference, accept, skip and reject"
    )]
    MixFlow(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mix_names_its_flows_and_leaves_the_others_out() {
        let mix: FlowMix = "queued=3, reject=1".parse().unwrap();
        assert_eq!((mix.queued, mix.preview_reject, mix.transfer), (3, 1, 0));
        assert_eq!(mix.total(), 4);
        assert_eq!(mix.pick(0), FlowKind::Queued);
        assert_eq!(mix.pick(2), FlowKind::Queued);
        assert_eq!(mix.pick(3), FlowKind::Preview(PreviewResponse::Reject));
        assert_eq!(
            "queued".parse::<FlowMix>(),
            Err(ConfigError::MixSyntax("queued".to_owned()))
        );
        assert_eq!(
            "hold=1".parse::<FlowMix>(),
            Err(ConfigError::MixFlow("hold".to_owned()))
        );
        assert_eq!("queued=0".parse::<FlowMix>(), Err(ConfigError::EmptyMix));
    }

    #[test]
    fn the_default_configuration_runs() {
        assert_eq!(SimConfig::default().check(), Ok(()));
        let bad = SimConfig {
            rate: 0.0,
            ..SimConfig::default()
        };
        assert_eq!(bad.check(), Err(ConfigError::Rate(0.0)));
    }
}
