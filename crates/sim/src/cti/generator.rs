//! Starts calls at the configured rate while a session is open, and plays
//! each call's flow with its own timing.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::config::{FIRST_EXTENSION, FlowKind, FlowMix, SimConfig};
use super::flows::{self, Agent, CallIds, InboundCall, OutboundContact, Step, Timing};
use super::server::{Counters, Shared};
use crate::rng::XorShift;

/// CTI ports of the trigger's call control group: 9000 to 9099 (the
/// seed's calls use 9019 and 9026).
const FIRST_CTI_PORT: u32 = 9000;
const CTI_PORTS: u32 = 100;
/// The seed's first dialing-list entry (`BADialedListID: 20779`).
const FIRST_DIALING_LIST_ID: u32 = 20_779;
/// Longest delay a scaled step may have.
const LONGEST_DELAY: Duration = Duration::from_secs(24 * 3600);

pub(super) async fn run(shared: Arc<Shared>, config: SimConfig) {
    let mut maker = CallMaker::new(&config);
    let (rate, scale, limit) = (config.rate, config.time_scale, config.calls);
    let mut sessions = shared.open_sessions();
    let mut calls = JoinSet::new();
    let mut started: u64 = 0;
    'run: while limit.is_none_or(|l| started < l) {
        // Calls wait for a client: events nobody receives are lost.
        if sessions.wait_for(|open| *open > 0).await.is_err() {
            break;
        }
        let since = Instant::now();
        let mut started_here: u64 = 0;
        while *sessions.borrow() > 0 {
            // The calls due by now at `rate`, the first at once.
            let due = (since.elapsed().as_secs_f64() * rate) as u64 + 1;
            while started_here < due {
                if limit.is_some_and(|l| started >= l) {
                    break 'run;
                }
                let steps = maker.next_call();
                Counters::add(&shared.counters.calls_started, 1);
                started += 1;
                started_here += 1;
                if scale == 0.0 {
                    for step in &steps {
                        shared.broadcast(&step.message);
                    }
                    tokio::task::yield_now().await;
                } else {
                    calls.spawn(play(Arc::clone(&shared), steps, scale));
                }
            }
            while calls.try_join_next().is_some() {}
            let next = Duration::try_from_secs_f64(started_here as f64 / rate)
                .ok()
                .and_then(|d| since.checked_add(d))
                .unwrap_or_else(|| Instant::now() + LONGEST_DELAY);
            tokio::time::sleep_until(next).await;
        }
    }
    // The calls in flight play to their end.
    while calls.join_next().await.is_some() {}
}

/// Plays one call: each step after its scaled delay.
async fn play(shared: Arc<Shared>, steps: Vec<Step>, scale: f64) {
    let mut at = Instant::now();
    for step in steps {
        if step.after_ms > 0 {
            let delay = Duration::try_from_secs_f64(step.after_ms as f64 * scale / 1000.0)
                .unwrap_or(LONGEST_DELAY)
                .min(LONGEST_DELAY);
            at = at.checked_add(delay).unwrap_or(at);
            tokio::time::sleep_until(at).await;
        }
        shared.broadcast(&step.message);
    }
}

/// Chooses each call's flow and parameters. Agents take calls in turn, so
/// that with fewer calls in progress than agents, none has two at once.
struct CallMaker {
    rng: XorShift,
    ids: CallIds,
    mix: FlowMix,
    agents: u32,
    next_agent: u32,
    inbound_calls: u32,
    contacts: u32,
    timing: Timing,
    trigger: String,
    application_id: u32,
    csq_id: u32,
    campaign: String,
    campaign_id: u32,
}

impl CallMaker {
    fn new(config: &SimConfig) -> CallMaker {
        let seed = config.seed.unwrap_or_else(clock_seed);
        CallMaker {
            rng: XorShift::new(seed),
            ids: CallIds::starting_at(config.base_call_id),
            mix: config.mix,
            agents: config.agents.max(1),
            next_agent: 0,
            inbound_calls: 0,
            contacts: 0,
            timing: config.timing.clone(),
            trigger: config.trigger.clone(),
            application_id: config.application_id,
            csq_id: config.csq_id,
            campaign: config.campaign.clone(),
            campaign_id: config.campaign_id,
        }
    }

    fn next_call(&mut self) -> Vec<Step> {
        let mut kind = self.mix.pick(self.rng.below(self.mix.total()));
        // A transfer or conference needs a second agent.
        if self.agents < 2 && matches!(kind, FlowKind::Transfer | FlowKind::Conference) {
            kind = FlowKind::Queued;
        }
        match kind {
            FlowKind::Queued => {
                let call = self.inbound();
                flows::queued_and_answered(&mut self.ids, &call)
            }
            FlowKind::Transfer => {
                let call = self.inbound();
                let to = self.agent();
                flows::transferred(&mut self.ids, &call, &to)
            }
            FlowKind::Conference => {
                let call = self.inbound();
                let with = self.agent();
                flows::conferenced(&mut self.ids, &call, &with)
            }
            FlowKind::Preview(response) => {
                let n = self.contacts;
                self.contacts = self.contacts.wrapping_add(1);
                let contact = OutboundContact {
                    agent: self.agent(),
                    campaign: self.campaign.clone(),
                    campaign_id: self.campaign_id,
                    dialing_list_id: FIRST_DIALING_LIST_ID.wrapping_add(n),
                    account_number: format!("AC{n:06}"),
                    customer_number: format!("556{:04}", self.rng.below(10_000)),
                    customer_name: "John,Doe".to_owned(),
                    response,
                    timing: self.timing(),
                };
                flows::outbound_preview(&mut self.ids, &contact)
            }
        }
    }

    fn agent(&mut self) -> Agent {
        let agent = Agent::numbered(FIRST_EXTENSION + self.next_agent);
        self.next_agent = (self.next_agent + 1) % self.agents;
        agent
    }

    fn inbound(&mut self) -> InboundCall {
        let port = FIRST_CTI_PORT + self.inbound_calls % CTI_PORTS;
        self.inbound_calls = self.inbound_calls.wrapping_add(1);
        InboundCall {
            // Callers outside the agents' extensions, so that a caller is
            // never taken for an agent.
            ani: format!("555{:04}", self.rng.below(10_000)),
            trigger: self.trigger.clone(),
            cti_port: port.to_string(),
            agent: self.agent(),
            csq_id: self.csq_id,
            application_id: self.application_id,
            timing: self.timing(),
        }
    }

    /// The configured timing, each wait varied by up to half either way.
    fn timing(&mut self) -> Timing {
        let t = &self.timing;
        let (ivr, queue, ring, talk, consult, wrapup) = (
            t.ivr_ms,
            t.queue_ms,
            t.ring_ms,
            t.talk_ms,
            t.consult_ms,
            t.wrapup_ms,
        );
        Timing {
            step_ms: t.step_ms,
            ivr_ms: self.rng.around(ivr),
            queue_ms: self.rng.around(queue),
            ring_ms: self.rng.around(ring),
            talk_ms: self.rng.around(talk),
            consult_ms: self.rng.around(consult),
            wrapup_ms: self.rng.around(wrapup),
        }
    }
}

fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdrhub_protocols::cti::CtiBody;

    fn first_call_ids(config: &SimConfig, calls: usize) -> Vec<u32> {
        let mut maker = CallMaker::new(config);
        (0..calls)
            .map(|_| match &maker.next_call()[0].message.body {
                CtiBody::Call(e) => e.connection_call_id,
                CtiBody::AgentState(_) => 0,
                _ => u32::MAX,
            })
            .collect()
    }

    #[test]
    fn a_seed_makes_the_same_calls() {
        let config = SimConfig {
            seed: Some(42),
            ..SimConfig::default()
        };
        let mut a = CallMaker::new(&config);
        let mut b = CallMaker::new(&config);
        for _ in 0..50 {
            assert_eq!(a.next_call(), b.next_call());
        }
        assert_eq!(first_call_ids(&config, 20), first_call_ids(&config, 20));
    }

    #[test]
    fn agents_take_calls_in_turn() {
        let config = SimConfig {
            agents: 3,
            seed: Some(1),
            ..SimConfig::default()
        };
        let mut maker = CallMaker::new(&config);
        let agents: Vec<String> = (0..4).map(|_| maker.agent().id).collect();
        assert_eq!(agents, ["agt2000", "agt2001", "agt2002", "agt2000"]);
    }

    #[test]
    fn one_agent_cannot_transfer() {
        let config = SimConfig {
            agents: 1,
            mix: "transfer=1,conference=1".parse().unwrap(),
            seed: Some(5),
            ..SimConfig::default()
        };
        let mut maker = CallMaker::new(&config);
        for _ in 0..10 {
            let steps = maker.next_call();
            assert!(steps.iter().all(|s| !matches!(
                &s.message.body,
                CtiBody::Call(e) if matches!(
                    e.kind,
                    cdrhub_protocols::cti::CallEventKind::Transferred
                        | cdrhub_protocols::cti::CallEventKind::Conferenced
                )
            )));
        }
    }
}
