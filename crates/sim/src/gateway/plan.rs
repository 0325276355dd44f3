//! Who the gateways are and what each will do, drawn from the seed before
//! any of them sends: ids, MACs, clocks, call references, when their calls
//! start, where the bad lines go and who logs in again.

use std::time::Duration;

use cdrhub_protocols::feed::{GatewayRef, Mac};

use super::bad_lines::BadLine;
use super::calls::{CallMaker, Peers};
use super::config::SimConfig;
use crate::rng::XorShift;

/// The seed's gateways believe it is the year 2000: their clocks start at
/// 2000-01-01T08:00:00 when they boot (`Time[2000/01/01 08:00:12]`).
pub(super) const GATEWAY_EPOCH_MS: i64 = 946_713_600_000;
/// A gateway has been up for up to this long when it logs in (the seed's
/// clocks read 2000/01/02 and 2000/01/09).
const LONGEST_UPTIME_MS: u64 = 10 * 24 * 3600 * 1000;
/// The seed's LOGINs carry call references 2 to 122.
const LARGEST_FIRST_REF: u64 = 200;
/// The MAC prefix of the seed's gateways, `000C2A02`.
const MAC_PREFIX: [u8; 4] = [0x00, 0x0C, 0x2A, 0x02];

/// One gateway and what it will do.
#[derive(Debug, Clone)]
pub(super) struct GatewayPlan {
    pub(super) gateway: GatewayRef,
    pub(super) maker: CallMaker,
    /// When its first call is due, after the simulation starts.
    pub(super) first_slot: Duration,
    /// Between the starts of two of its calls.
    pub(super) interval: Duration,
    /// Its bad lines, by the call they go into.
    pub(super) bad_lines: Vec<PlannedBadLine>,
    /// The call before which it logs in again from a new address
    /// (`calls`: before its LOGOUT).
    pub(super) relogin_before: Option<u64>,
}

/// A bad line inside call `call`, before the event `draw % (events + 1)`
/// (after the last event when that is the number of events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PlannedBadLine {
    pub(super) call: u64,
    pub(super) draw: u64,
    pub(super) kind: BadLine,
}

/// The gateway numbered `id`: the MAC carries the id's low 16 bits after
/// the seed's prefix (8200 is `000C2A022008`).
pub(super) fn gateway_ref(id: u32) -> GatewayRef {
    let [.., high, low] = id.to_be_bytes();
    let [a, b, c, d] = MAC_PREFIX;
    GatewayRef {
        id: id.to_string(),
        mac: Mac([a, b, c, d, high, low]),
    }
}

/// The plan of every gateway of `config`, from `seed`.
pub(super) fn plan(config: &SimConfig, seed: u64) -> Vec<GatewayPlan> {
    let mut rng = XorShift::new(seed);
    let gateways = config.gateways;
    let per_call = |n: u64| Duration::try_from_secs_f64(n as f64 / config.rate);
    let interval = per_call(u64::from(gateways)).unwrap_or(Duration::MAX);
    let mut plans: Vec<GatewayPlan> = (0..gateways)
        .map(|n| {
            let id = config.first_id + n;
            let mut own = XorShift::new(rng.next_u64());
            let uptime = own.below(LONGEST_UPTIME_MS) as i64;
            let first_ref = own.below(LARGEST_FIRST_REF) as u32;
            let peers = Peers {
                first: config.first_id,
                count: gateways,
                own: id,
            };
            GatewayPlan {
                gateway: gateway_ref(id),
                maker: CallMaker::new(
                    own,
                    config.ports(),
                    GATEWAY_EPOCH_MS + uptime,
                    first_ref,
                    peers,
                    config.timing.clone(),
                ),
                first_slot: per_call(u64::from(n)).unwrap_or(Duration::MAX),
                interval,
                bad_lines: Vec::new(),
                relogin_before: None,
            }
        })
        .collect();
    for n in 0..config.bad_packets {
        let call = rng.below(config.calls);
        let draw = rng.next_u64();
        let kind = BadLine::ALL[n as usize % BadLine::ALL.len()];
        plans[(n % gateways) as usize]
            .bad_lines
            .push(PlannedBadLine { call, draw, kind });
    }
    if config.relogin {
        plans[0].relogin_before = Some(config.calls / 2);
    }
    plans
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdrhub_protocols::feed::GatewayClock;

    #[test]
    fn a_mac_carries_the_gateway_number() {
        assert_eq!(gateway_ref(8200).to_string(), "8200_000C2A022008");
        assert_eq!(gateway_ref(8201).mac.to_string(), "000C2A022009");
    }

    #[test]
    fn gateway_clocks_believe_it_is_the_year_2000() {
        let config = SimConfig {
            gateways: 5,
            ..SimConfig::default()
        };
        for plan in plan(&config, 1) {
            let GatewayClock::Read(at) = plan.maker.clock_at(0) else {
                panic!("the clock is a time");
            };
            let at = at.to_rfc3339();
            assert!(at.starts_with("2000-01-"), "{at}");
            assert!(at.as_str() >= "2000-01-01T08:00:00Z", "{at}");
        }
    }

    #[test]
    fn calls_start_at_the_rate_over_all_gateways() {
        let config = SimConfig {
            gateways: 4,
            rate: 2.0,
            ..SimConfig::default()
        };
        let plans = plan(&config, 1);
        assert_eq!(plans[0].first_slot, Duration::ZERO);
        assert_eq!(plans[3].first_slot, Duration::from_millis(1500));
        assert!(plans.iter().all(|p| p.interval == Duration::from_secs(2)));
    }

    #[test]
    fn bad_lines_go_round_the_gateways_and_kinds() {
        let config = SimConfig {
            gateways: 3,
            calls: 4,
            bad_packets: 11,
            relogin: true,
            ..SimConfig::default()
        };
        let plans = plan(&config, 9);
        let counts: Vec<usize> = plans.iter().map(|p| p.bad_lines.len()).collect();
        assert_eq!(counts, [4, 4, 3]);
        let kinds: Vec<BadLine> = plans[0].bad_lines.iter().map(|b| b.kind).collect();
        assert_eq!(
            kinds,
            [
                BadLine::WrongVersion,
                BadLine::NotUtf8,
                BadLine::UnknownType,
                BadLine::Overlong
            ]
        );
        assert!(plans.iter().flat_map(|p| &p.bad_lines).all(|b| b.call < 4));
        let relogins: Vec<Option<u64>> = plans.iter().map(|p| p.relogin_before).collect();
        assert_eq!(relogins, [Some(2), None, None]);
    }

    #[test]
    fn a_seed_makes_the_same_plan() {
        let config = SimConfig {
            bad_packets: 5,
            ..SimConfig::default()
        };
        let draws = |seed| {
            plan(&config, seed)
                .into_iter()
                .map(|p| (p.maker.last_ref(), p.maker.clock_at(0), p.bad_lines))
                .collect::<Vec<_>>()
        };
        assert_eq!(draws(4), draws(4));
        assert_ne!(draws(4), draws(5));
    }
}
