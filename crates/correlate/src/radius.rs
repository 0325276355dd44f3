//! VoIP gateway calls from RADIUS accounting (issue 5): each accounting
//! session (Start, Interim-Update, Stop) of a gateway is a leg; the legs
//! that share an h323 conference id on that gateway (the answer and the
//! originate leg, the PSTN side and the VoIP side) are one call.
//!
//! Times are the server's: when the record arrived, less its Acct-Delay-Time.
//! The gateway's own h323 times are kept beside them (gateway clocks are
//! often wrong; Cisco marks an unsynchronised one with `*` or `.`).

use cdrhub_model::{Call, Direction, Disposition, Leg, Timestamp};
use cdrhub_protocols::radius::{Accounting, status_type};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::cms::{CallKey, KeyKind, Touched};

/// An Accounting-Request as cdrhub received it.
#[derive(Debug, Clone, PartialEq)]
pub struct RadiusEvent {
    pub received_at: Timestamp,
    pub accounting: Accounting,
}

impl RadiusEvent {
    /// When the event happened by the server's clock: its arrival less the
    /// time the gateway says it spent trying to send it.
    pub fn at(&self) -> Timestamp {
        let delay = i64::from(self.accounting.delay_time.unwrap_or(0));
        Timestamp(self.received_at.0 - delay * 1000)
    }
}

fn key(kind: KeyKind, sender: &str, id: &str) -> i64 {
    CallKey {
        kind,
        id: &format!("{sender}/{id}"),
    }
    .hash()
}

/// The keys that tie a record to its call on gateway `sender`: the h323
/// conference id (and the incoming leg's, which the outgoing legs name),
/// else the accounting session id.
pub fn event_keys(event: &RadiusEvent, sender: &str) -> Vec<i64> {
    let a = &event.accounting;
    let mut keys = Vec::new();
    for conf in [&a.cisco.conf_id, &a.cisco.incoming_conf_id]
        .into_iter()
        .flatten()
        .filter(|c| !c.is_empty())
    {
        let k = key(KeyKind::RadiusConf, sender, conf);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    if keys.is_empty()
        && let Some(session) = a.session_id.as_deref().filter(|s| !s.is_empty())
    {
        keys.push(key(KeyKind::RadiusSession, sender, session));
    }
    keys
}

/// One call through a gateway: its accounting sessions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RadiusCallGroup {
    /// The gateway (its NAS address) the call is on.
    #[serde(default)]
    pub sender: String,
    pub legs: Vec<RadiusLeg>,
    /// Ended by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forced_end: Option<Timestamp>,
    /// The gateway said Accounting-On or Accounting-Off while the call was
    /// open: it restarted or stopped, and the call's open legs end then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nas_restart: Option<Timestamp>,
}

/// The flag of a call closed by its gateway's Accounting-On or -Off.
pub const NAS_RESTART_FLAG: &str = "closed_by_nas_restart";

/// One accounting session of a gateway.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RadiusLeg {
    pub session_id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<i64>,
    pub conf_id: Option<String>,
    pub incoming_conf_id: Option<String>,
    /// `answer` or `originate`.
    pub origin: Option<String>,
    /// `Telephony` (the PSTN side) or `VoIP`.
    pub call_type: Option<String>,
    pub calling: Option<String>,
    pub called: Option<String>,
    pub remote_address: Option<String>,
    pub user_name: Option<String>,
    pub nas_port: Option<u32>,
    pub sip_call_id: Option<String>,
    /// Start (by the server's clock).
    pub started_at: Option<Timestamp>,
    /// The last Interim-Update.
    pub updated_at: Option<Timestamp>,
    /// Stop.
    pub stopped_at: Option<Timestamp>,
    pub session_time: Option<u32>,
    pub q850_cause: Option<u8>,
    pub disconnect_cause: Option<String>,
    pub terminate_cause: Option<u32>,
    pub voice_quality: Option<String>,
    /// The gateway's own h323 times, as it sent them.
    pub gateway_setup_time: Option<String>,
    pub gateway_connect_time: Option<String>,
    pub gateway_disconnect_time: Option<String>,
    /// Attributes cdrhub does not read, from the last record (hex).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other: Vec<(u32, u8, String)>,
}

fn earliest(slot: &mut Option<Timestamp>, at: Timestamp) {
    *slot = Some(slot.map_or(at, |s| s.min(at)));
}

fn latest(slot: &mut Option<Timestamp>, at: Timestamp) {
    *slot = Some(slot.map_or(at, |s| s.max(at)));
}

/// Keeps the first value seen: what a Start says stays, a Stop fills gaps.
fn fill<T: Clone>(slot: &mut Option<T>, value: &Option<T>) {
    if slot.is_none() {
        slot.clone_from(value);
    }
}

impl RadiusCallGroup {
    pub fn is_empty(&self) -> bool {
        self.legs.is_empty()
    }

    /// Applies one accounting record (journaled under `record_ref`).
    pub fn apply(&mut self, event: &RadiusEvent, record_ref: i64) -> Touched {
        let a = &event.accounting;
        let status = a.status_type.unwrap_or(0);
        if !matches!(
            status,
            status_type::START | status_type::STOP | status_type::INTERIM_UPDATE
        ) {
            return Touched::Nothing;
        }
        let session = a.session_id.clone().unwrap_or_default();
        let at = event.at();
        let i = match self.legs.iter().position(|l| l.session_id == session) {
            Some(i) => i,
            None => {
                self.legs.push(RadiusLeg {
                    session_id: session.clone(),
                    ..RadiusLeg::default()
                });
                self.legs.len() - 1
            }
        };
        let leg = &mut self.legs[i];
        if !leg.records.contains(&record_ref) {
            leg.records.push(record_ref);
            leg.records.sort_unstable();
        }
        let c = &a.cisco;
        fill(&mut leg.conf_id, &c.conf_id);
        fill(&mut leg.incoming_conf_id, &c.incoming_conf_id);
        fill(&mut leg.origin, &c.call_origin);
        fill(&mut leg.call_type, &c.call_type);
        fill(&mut leg.calling, &a.calling_station_id);
        fill(&mut leg.called, &a.called_station_id);
        fill(&mut leg.remote_address, &c.remote_address);
        fill(&mut leg.user_name, &a.user_name);
        fill(&mut leg.nas_port, &a.nas_port);
        fill(&mut leg.sip_call_id, &c.call_id);
        fill(&mut leg.gateway_setup_time, &c.setup_time);
        match status {
            status_type::START => earliest(&mut leg.started_at, at),
            status_type::INTERIM_UPDATE => latest(&mut leg.updated_at, at),
            _ => {
                latest(&mut leg.stopped_at, at);
                leg.session_time = a.session_time.or(leg.session_time);
                leg.q850_cause = c.q850_cause.or(leg.q850_cause);
                leg.disconnect_cause = c.disconnect_cause.clone().or(leg.disconnect_cause.take());
                leg.terminate_cause = a.terminate_cause.or(leg.terminate_cause);
                leg.voice_quality = c.voice_quality.clone().or(leg.voice_quality.take());
                leg.gateway_connect_time =
                    c.connect_time.clone().or(leg.gateway_connect_time.take());
                leg.gateway_disconnect_time = c
                    .disconnect_time
                    .clone()
                    .or(leg.gateway_disconnect_time.take());
                leg.other = a
                    .other
                    .iter()
                    .map(|(v, t, b)| (*v, *t, b.iter().map(|x| format!("{x:02x}")).collect()))
                    .collect();
            }
        }
        Touched::Leg(session)
    }

    pub fn absorb(&mut self, other: RadiusCallGroup) {
        if self.sender.is_empty() {
            self.sender = other.sender;
        }
        for leg in other.legs {
            match self
                .legs
                .iter_mut()
                .find(|l| l.session_id == leg.session_id)
            {
                Some(mine) => {
                    mine.records.extend(leg.records);
                    mine.records.sort_unstable();
                    mine.records.dedup();
                    for (slot, t) in [
                        (&mut mine.started_at, leg.started_at),
                        (&mut mine.updated_at, leg.updated_at),
                        (&mut mine.stopped_at, leg.stopped_at),
                    ] {
                        if let Some(t) = t {
                            *slot = Some(slot.map_or(t, |s| s.min(t)));
                        }
                    }
                    fill(&mut mine.conf_id, &leg.conf_id);
                    fill(&mut mine.origin, &leg.origin);
                    fill(&mut mine.call_type, &leg.call_type);
                    fill(&mut mine.calling, &leg.calling);
                    fill(&mut mine.called, &leg.called);
                    fill(&mut mine.q850_cause, &leg.q850_cause);
                    fill(&mut mine.session_time, &leg.session_time);
                }
                None => self.legs.push(leg),
            }
        }
        let min = |a: Option<Timestamp>, b: Option<Timestamp>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.forced_end = min(self.forced_end, other.forced_end);
        self.nas_restart = min(self.nas_restart, other.nas_restart);
    }

    pub fn keys(&self) -> Vec<i64> {
        let mut keys: Vec<i64> = self
            .legs
            .iter()
            .flat_map(|l| {
                let confs = [&l.conf_id, &l.incoming_conf_id]
                    .into_iter()
                    .flatten()
                    .filter(|c| !c.is_empty())
                    .map(|c| key(KeyKind::RadiusConf, &self.sender, c));
                let session = (l.conf_id.is_none() && l.incoming_conf_id.is_none())
                    .then(|| key(KeyKind::RadiusSession, &self.sender, &l.session_id));
                confs.chain(session).collect::<Vec<_>>()
            })
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    pub fn record_ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .legs
            .iter()
            .flat_map(|l| l.records.iter().copied())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    pub fn is_finished(&self) -> bool {
        self.forced_end.is_some()
            || self.nas_restart.is_some()
            || !self.legs.is_empty() && self.legs.iter().all(|l| l.stopped_at.is_some())
    }

    /// When the open legs end without a Stop of their own: by hand, or
    /// when the gateway restarted, whichever came first.
    fn cut_off(&self) -> Option<Timestamp> {
        match (self.forced_end, self.nas_restart) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn leg_ids(&self) -> Vec<String> {
        self.legs.iter().map(|l| l.session_id.clone()).collect()
    }

    /// The call and its legs.
    pub fn summarize(&self, call_id: &str, sender: &str) -> (Call, Vec<Leg>) {
        let mut legs: Vec<Leg> = self
            .legs
            .iter()
            .map(|l| summarize_leg(l, call_id, self.cut_off()))
            .collect();
        legs.sort_by_key(|l| (l.started_at, l.id.clone()));
        // The answer leg is where the call came in; the originate leg where
        // the gateway sent it on.
        let answer = self
            .legs
            .iter()
            .find(|l| l.origin.as_deref() == Some("answer"));
        let first = answer.or(self.legs.first());
        let started_at = legs
            .iter()
            .filter_map(|l| l.started_at)
            .min()
            .unwrap_or(Timestamp(0));
        let answered_at = legs.iter().filter_map(|l| l.connected_at).min();
        let ended_at = if !legs.is_empty() && legs.iter().all(|l| l.ended_at.is_some()) {
            legs.iter().filter_map(|l| l.ended_at).max()
        } else {
            None
        };
        let cause = self.legs.iter().find_map(|l| l.q850_cause);
        let disposition = ended_at.map(|_| {
            if answered_at.is_some() {
                Disposition::Answered
            } else {
                q850_disposition(cause)
            }
        });
        // As the gateway report of seed 001 names them, seen from the
        // gateway's VoIP side: answered on the telephony side (a phone or
        // the PSTN calling out through the gateway) is a call out; answered
        // from the VoIP network, a call in.
        let direction = answer.and_then(|l| match l.call_type.as_deref() {
            Some(t) if t.eq_ignore_ascii_case("telephony") => Some(Direction::Out),
            Some(t) if t.eq_ignore_ascii_case("voip") => Some(Direction::In),
            _ => None,
        });
        let call = Call {
            id: call_id.to_owned(),
            source: cdrhub_model::SOURCE_RADIUS.to_owned(),
            sender: sender.to_owned(),
            kind: "gateway".to_owned(),
            caller: first.and_then(|l| l.calling.clone()),
            dialed: first.and_then(|l| l.called.clone()),
            destination: self
                .legs
                .iter()
                .find(|l| l.origin.as_deref() == Some("originate"))
                .and_then(|l| l.called.clone().or(l.remote_address.clone())),
            direction,
            started_at,
            answered_at,
            ended_at,
            duration_s: ended_at.map(|e| e.seconds_since(started_at)),
            talk_s: match (answered_at, ended_at) {
                (Some(a), Some(e)) => Some(e.seconds_since(a)),
                _ => None,
            },
            disposition,
            cause: cause.map(|c| format!("Q.850 {c}")),
            media: Some("audio".to_owned()),
            legs: legs.len() as u32,
            legs_completed: None,
            max_active_legs: None,
            flags: self.flags(),
            details: Value::Null,
        };
        (call, legs)
    }

    fn flags(&self) -> Vec<String> {
        let open = self.legs.iter().any(|l| l.stopped_at.is_none());
        let mut flags = Vec::new();
        if open && self.nas_restart.is_some() {
            flags.push(NAS_RESTART_FLAG.to_owned());
        }
        if open && self.forced_end.is_some() {
            flags.push(cdrhub_model::FORCED_END_FLAG.to_owned());
        }
        flags
    }

    /// The legs as the gateway reported them, with its own clock.
    pub fn details(&self) -> Value {
        json!({
            "conf_id": self.legs.iter().find_map(|l| l.conf_id.clone()),
            "legs": self.legs,
        })
    }
}

/// A disposition from the Q.850 cause of an unanswered call (16 normal
/// clearing, 17 busy, 18/19 no answer, 21 rejected, the rest failed).
pub fn q850_disposition(cause: Option<u8>) -> Disposition {
    match cause {
        Some(17) => Disposition::Busy,
        Some(18 | 19) => Disposition::NoAnswer,
        Some(21) => Disposition::Rejected,
        Some(16) | None => Disposition::Cancelled,
        Some(_) => Disposition::Failed,
    }
}

fn summarize_leg(l: &RadiusLeg, call_id: &str, forced: Option<Timestamp>) -> Leg {
    let ended_at = l
        .stopped_at
        .or(forced.filter(|f| l.started_at.is_none_or(|s| s <= *f)));
    // Connected for Acct-Session-Time before the Stop (Cisco counts it from
    // the connect).
    let connected_at = match (l.stopped_at, l.session_time) {
        (Some(stop), Some(secs)) if secs > 0 => Some(Timestamp(stop.0 - i64::from(secs) * 1000)),
        _ => None,
    };
    let started_at = l.started_at.or(connected_at).or(l.stopped_at);
    Leg {
        id: l.session_id.clone(),
        call_id: call_id.to_owned(),
        source_leg_id: l.session_id.clone(),
        remote_party: l.calling.clone(),
        local_address: l.called.clone(),
        display_name: l.user_name.clone(),
        direction: l.origin.clone(),
        leg_type: l.call_type.clone(),
        sip_call_id: l.sip_call_id.clone(),
        started_at,
        connected_at,
        ended_at,
        duration_s: match (started_at, ended_at) {
            (Some(s), Some(e)) => Some(e.seconds_since(s)),
            _ => None,
        },
        reason: l
            .disconnect_cause
            .clone()
            .or_else(|| l.q850_cause.map(|c| c.to_string())),
        remote_teardown: None,
        disposition: ended_at.map(|_| {
            if connected_at.is_some() {
                Disposition::Answered
            } else {
                q850_disposition(l.q850_cause)
            }
        }),
        media: l
            .voice_quality
            .as_ref()
            .map(|q| json!({ "voice_quality": q }))
            .unwrap_or_else(|| Value::Object(Default::default())),
        alarms: Vec::new(),
        details: json!({
            "nas_port": l.nas_port,
            "remote_address": l.remote_address,
            "q850_cause": l.q850_cause,
            "terminate_cause": l.terminate_cause,
            "gateway_setup_time": l.gateway_setup_time,
            "gateway_connect_time": l.gateway_connect_time,
            "gateway_disconnect_time": l.gateway_disconnect_time,
            "interim_at": l.updated_at,
        }),
    }
}
