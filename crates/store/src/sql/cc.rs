//! Contact-centre reports (issue 4, point 4): per agent per day, from the
//! agent state intervals and the agents' legs of CTI calls; per CSQ per
//! hour, from the calls queued. Computed from a day's rows when asked: a
//! contact centre's day is thousands of calls, not millions.

#[allow(unused_imports)]
use crate::db::{self, Db, OptionalExt, Result, args};
use std::collections::BTreeMap;

use cdrhub_model::Timestamp;
use serde_json::Value;

use cdrhub_protocols::cti::agent_state as state;

use crate::{AgentDay, ContactCentreDay, CsqHour, StoreError};

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

pub(crate) fn day(
    conn: Db<'_>,
    day: Timestamp,
    sender: Option<&str>,
    now: Timestamp,
) -> Result<ContactCentreDay, StoreError> {
    let start = day.0.div_euclid(DAY_MS) * DAY_MS;
    let end = start + DAY_MS;
    let mut agents: BTreeMap<(String, String), AgentDay> = BTreeMap::new();
    // Extension to agent, per server, from the agents' own states.
    let mut by_extension: BTreeMap<(String, String), String> = BTreeMap::new();
    {
        let stmt = "SELECT sender, agent, extension, state, reason_code, started_at, ended_at \
             FROM agent_states WHERE started_at < ?2 AND (ended_at IS NULL OR ended_at > ?1) \
             AND (CAST(?3 AS TEXT) IS NULL OR sender = ?3)";
        let rows = conn.query_map(stmt, args![start, end, sender], |r| {
            Ok((
                r.get::<String>(0)?,
                r.get::<String>(1)?,
                r.get::<Option<String>>(2)?,
                r.get::<u16>(3)?,
                r.get::<u16>(4)?,
                r.get::<i64>(5)?,
                r.get::<Option<i64>>(6)?,
            ))
        })?;
        for row in rows {
            let (sender, agent, extension, st, reason, from, to) = row;
            let to = to.unwrap_or(now.0).min(end);
            let secs = (to - from.max(start)).max(0) as f64 / 1000.0;
            if let Some(ext) = &extension {
                by_extension.insert((sender.clone(), ext.clone()), agent.clone());
            }
            let a = agents
                .entry((sender.clone(), agent.clone()))
                .or_insert_with(|| AgentDay {
                    sender,
                    agent,
                    ..AgentDay::default()
                });
            if a.extension.is_none() {
                a.extension = extension;
            }
            match st {
                state::AVAILABLE => a.ready_s += secs,
                state::NOT_READY => {
                    a.not_ready_s += secs;
                    match a.not_ready_reasons.iter_mut().find(|(c, _)| *c == reason) {
                        Some((_, s)) => *s += secs,
                        None => a.not_ready_reasons.push((reason, secs)),
                    }
                }
                state::WORK_NOT_READY | state::WORK_READY => a.wrapup_s += secs,
                state::TALKING => a.talking_s += secs,
                state::RESERVED => a.reserved_s += secs,
                _ => {}
            }
        }
    }

    let mut csqs: BTreeMap<(String, u32, i64), (CsqHour, f64)> = BTreeMap::new();
    let stmt = "SELECT sender, details, ended_at FROM calls WHERE started_at >= ?1 AND started_at < ?2 \
         AND source = 'cti' AND (CAST(?3 AS TEXT) IS NULL OR sender = ?3)";
    let rows = conn.query_map(stmt, args![start, end, sender], |r| {
        Ok((
            r.get::<String>(0)?,
            r.get::<String>(1)?,
            r.get::<Option<i64>>(2)?,
        ))
    })?;
    for row in rows {
        let (sender, details, ended_at) = row;
        let details: Value = serde_json::from_str(&details).unwrap_or(Value::Null);
        let legs = details["agents"].as_array().cloned().unwrap_or_default();
        for leg in &legs {
            let Some(device) = leg["device"].as_str() else {
                continue;
            };
            let agent = by_extension
                .get(&(sender.clone(), device.to_owned()))
                .cloned()
                .unwrap_or_else(|| device.to_owned());
            let a = agents
                .entry((sender.clone(), agent.clone()))
                .or_insert_with(|| AgentDay {
                    sender: sender.clone(),
                    agent,
                    extension: Some(device.to_owned()),
                    ..AgentDay::default()
                });
            a.calls_handled += 1;
            a.talk_s += leg["talk_s"].as_f64().unwrap_or(0.0);
            a.hold_s += leg["hold_s"].as_f64().unwrap_or(0.0);
        }
        let first = &details["cti_calls"][0];
        let (Some(csq), Some(queued_at)) = (
            details["csq"].as_u64(),
            first["queued_at"]
                .as_str()
                .and_then(|t| Timestamp::parse_rfc3339(t).ok()),
        ) else {
            continue;
        };
        let hour = queued_at.0.div_euclid(HOUR_MS) * HOUR_MS;
        let entry = csqs
            .entry((sender.clone(), csq as u32, hour))
            .or_insert_with(|| {
                (
                    CsqHour {
                        sender: sender.clone(),
                        csq: csq as u32,
                        hour: Timestamp(hour),
                        ..CsqHour::default()
                    },
                    0.0,
                )
            });
        let (h, total_wait) = entry;
        h.offered += 1;
        if !legs.is_empty() {
            h.answered += 1;
        } else if ended_at.is_some() {
            h.abandoned += 1;
        }
        if let Some(wait) = details["queue_wait_s"].as_f64() {
            *total_wait += wait;
            h.longest_wait_s = Some(h.longest_wait_s.map_or(wait, |l| l.max(wait)));
        }
    }
    let csqs = csqs
        .into_values()
        .map(|(mut h, total)| {
            if h.longest_wait_s.is_some() {
                h.average_wait_s = Some(total / h.offered as f64);
            }
            h
        })
        .collect();
    let mut agents: Vec<AgentDay> = agents.into_values().collect();
    for a in &mut agents {
        a.not_ready_reasons.sort_by_key(|(c, _)| *c);
    }
    Ok(ContactCentreDay {
        day: Timestamp(start),
        agents,
        csqs,
    })
}
