//! Calls from the open call-event API and from imported CSV CDRs (issue
//! 7): the events one sender sends under one call id are one call; each
//! `leg` of it is a leg. Events may come in any order and more than once:
//! every fact keeps the time its event gives, the earliest where an event
//! could be sent twice, so the call is the same whatever the order.

use std::collections::BTreeMap;

use cdrhub_model::{Call, Direction, Disposition, Leg, Timestamp};
use cdrhub_protocols::events::{CallEvent, EventType};
use serde_json::{Value, json};

use crate::cms::{CallKey, KeyKind, Touched};

/// An event as cdrhub received it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub received_at: Timestamp,
    pub event: CallEvent,
}

/// The key of call `call_id` of sender `sender`.
pub fn call_key(sender: &str, call_id: &str) -> i64 {
    CallKey {
        kind: KeyKind::EventCall,
        id: &format!("{sender}/{call_id}"),
    }
    .hash()
}

/// The leg events without a `leg` belong to.
pub const MAIN_LEG: &str = "A";

fn earliest(slot: &mut Option<Timestamp>, at: Timestamp) {
    *slot = Some(slot.map_or(at, |s| s.min(at)));
}

/// What the events say of one leg.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventLeg {
    pub setup_at: Option<Timestamp>,
    pub ring_at: Option<Timestamp>,
    pub answer_at: Option<Timestamp>,
    pub end_at: Option<Timestamp>,
    /// The first and last event of any type.
    pub first_at: Option<Timestamp>,
    pub last_at: Option<Timestamp>,
    pub caller: Option<String>,
    pub caller_name: Option<String>,
    pub callee: Option<String>,
    pub direction: Option<String>,
    pub video: bool,
    pub source_address: Option<String>,
    pub sip_call_id: Option<String>,
    /// Holds and resumes in time order: (time, held).
    pub holds: Vec<(Timestamp, bool)>,
    /// Transfers in time order: (time, new target).
    pub transfers: Vec<(Timestamp, String)>,
    pub sip_status: Option<u16>,
    pub q850_cause: Option<u16>,
    pub ended_by: Option<String>,
    pub disposition: Option<Disposition>,
}

impl EventLeg {
    fn apply(&mut self, e: &CallEvent) {
        let at = e.at;
        earliest(&mut self.first_at, at);
        self.last_at = Some(self.last_at.map_or(at, |l| l.max(at)));
        // Descriptive fields: the earliest event that names them wins, so a
        // late setup fills in what an early ringing did not say.
        let first = self.first_at == Some(at);
        let take = |slot: &mut Option<String>, value: &Option<String>| {
            if value.is_some() && (slot.is_none() || first) {
                slot.clone_from(value);
            }
        };
        take(&mut self.caller, &e.caller);
        take(&mut self.caller_name, &e.caller_name);
        take(&mut self.callee, &e.callee);
        take(&mut self.direction, &e.direction);
        take(&mut self.source_address, &e.source_address);
        take(&mut self.sip_call_id, &e.sip_call_id);
        self.video |= e.media.as_deref() == Some("video");
        match e.kind {
            EventType::Setup => earliest(&mut self.setup_at, at),
            EventType::Ringing => earliest(&mut self.ring_at, at),
            EventType::Answered => earliest(&mut self.answer_at, at),
            EventType::Held | EventType::Resumed => {
                let held = e.kind == EventType::Held;
                if !self.holds.contains(&(at, held)) {
                    self.holds.push((at, held));
                    self.holds.sort();
                }
            }
            EventType::Transferred => {
                let to = e.to.clone().unwrap_or_default();
                if !self.transfers.contains(&(at, to.clone())) {
                    self.transfers.push((at, to));
                    self.transfers.sort();
                }
            }
            EventType::Ended => {
                if self.end_at.is_none_or(|t| at < t) {
                    self.end_at = Some(at);
                    self.sip_status = e.sip_status.or(self.sip_status);
                    self.q850_cause = e.q850_cause.or(self.q850_cause);
                    self.ended_by = e.by.clone().or(self.ended_by.take());
                    self.disposition = e.disposition.or(self.disposition);
                }
            }
            EventType::Registration | EventType::Unregistration => {}
        }
    }

    pub fn started_at(&self) -> Option<Timestamp> {
        self.setup_at.or(self.first_at)
    }

    /// The disposition of an ended leg: the sender's, else from the answer
    /// and the SIP status or Q.850 cause.
    pub fn disposition(&self) -> Option<Disposition> {
        self.end_at?;
        if let Some(d) = self.disposition {
            return Some(d);
        }
        if self.answer_at.is_some() {
            return Some(Disposition::Answered);
        }
        Some(match (self.sip_status, self.q850_cause) {
            (Some(486 | 600), _) | (None, Some(17)) => Disposition::Busy,
            (Some(408 | 480), _) | (None, Some(18 | 19)) => Disposition::NoAnswer,
            (Some(487), _) => {
                if self.ring_at.is_some() {
                    Disposition::NoAnswer
                } else {
                    Disposition::Cancelled
                }
            }
            (Some(403 | 603), _) | (None, Some(21)) => Disposition::Rejected,
            // Ended normally before an answer: the caller gave up.
            (None, Some(16) | None) if self.ended_by.as_deref() == Some("caller") => {
                if self.ring_at.is_some() {
                    Disposition::NoAnswer
                } else {
                    Disposition::Cancelled
                }
            }
            _ => Disposition::Failed,
        })
    }

    fn cause(&self) -> Option<String> {
        crate::sip::cause_text(self.sip_status, self.q850_cause)
    }
}

/// One call of the event API or of an import.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventCallGroup {
    pub sender: String,
    pub call_id: String,
    /// By leg name.
    pub legs: BTreeMap<String, EventLeg>,
    pub records: Vec<i64>,
    pub forced_end: Option<Timestamp>,
    /// The import format, for a call of source `csv`.
    pub imported: Option<String>,
    pub call_type: Option<String>,
    pub ucid: Option<String>,
    pub data: BTreeMap<String, Value>,
}

impl EventCallGroup {
    pub fn apply(&mut self, record: &EventRecord, journal_id: i64) -> Touched {
        let e = &record.event;
        if self.records.contains(&journal_id) || e.kind.is_registration() {
            return Touched::Nothing;
        }
        self.records.push(journal_id);
        self.records.sort_unstable();
        if self.call_id.is_empty()
            && let Some(c) = &e.call_id
        {
            self.call_id.clone_from(c);
        }
        if self.imported.is_none() {
            self.imported.clone_from(&e.imported);
        }
        if self.call_type.is_none() {
            self.call_type.clone_from(&e.call_type);
        }
        if self.ucid.is_none() {
            self.ucid.clone_from(&e.ucid);
        }
        for (k, v) in &e.data {
            self.data.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let leg = e.leg.clone().unwrap_or_else(|| MAIN_LEG.to_owned());
        self.legs.entry(leg.clone()).or_default().apply(e);
        Touched::Leg(leg)
    }

    pub fn absorb(&mut self, other: EventCallGroup) {
        // Calls merge only when their keys meet, which for this source is
        // the same call id: the records are applied again by the store.
        if self.sender.is_empty() {
            self.sender = other.sender;
        }
        if self.call_id.is_empty() {
            self.call_id = other.call_id;
        }
        for (name, leg) in other.legs {
            self.legs.entry(name).or_insert(leg);
        }
        self.records.extend(other.records);
        self.records.sort_unstable();
        self.records.dedup();
        self.forced_end = match (self.forced_end, other.forced_end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    pub fn keys(&self) -> Vec<i64> {
        if self.call_id.is_empty() {
            return Vec::new();
        }
        vec![call_key(&self.sender, &self.call_id)]
    }

    pub fn is_finished(&self) -> bool {
        self.forced_end.is_some()
            || (!self.legs.is_empty() && self.legs.values().all(|l| l.end_at.is_some()))
    }

    pub fn leg_ids(&self) -> Vec<String> {
        self.legs.keys().cloned().collect()
    }

    pub fn source(&self) -> &'static str {
        if self.imported.is_some() {
            cdrhub_model::SOURCE_CSV
        } else {
            cdrhub_model::SOURCE_EVENTS
        }
    }

    pub fn summarize(&self, call_id: &str, sender: &str) -> (Call, Vec<Leg>) {
        let legs: Vec<(&String, &EventLeg)> = self.legs.iter().collect();
        let first = legs
            .iter()
            .min_by_key(|(name, l)| (l.started_at(), *name))
            .map(|(_, l)| *l);
        let empty = EventLeg::default();
        let first = first.unwrap_or(&empty);
        let started_at = legs
            .iter()
            .filter_map(|(_, l)| l.started_at())
            .min()
            .unwrap_or(Timestamp(0));
        let answered_at = legs.iter().filter_map(|(_, l)| l.answer_at).min();
        let all_ended = !legs.is_empty() && legs.iter().all(|(_, l)| l.end_at.is_some());
        let ended_at = if all_ended {
            legs.iter().filter_map(|(_, l)| l.end_at).max()
        } else {
            self.forced_end
        };
        let disposition = if all_ended {
            legs.iter()
                .filter_map(|(_, l)| l.disposition())
                .max_by_key(|d| d.rank())
        } else {
            self.forced_end.map(|_| {
                if answered_at.is_some() {
                    Disposition::Answered
                } else {
                    Disposition::Failed
                }
            })
        };
        // The final target: the last transfer's, else the callee of the
        // last leg set up.
        let last_transfer = legs
            .iter()
            .flat_map(|(_, l)| l.transfers.iter())
            .max()
            .map(|(_, to)| to.clone());
        let last_leg = legs
            .iter()
            .max_by_key(|(name, l)| (l.started_at(), *name))
            .map(|(_, l)| *l)
            .unwrap_or(&empty);
        let destination = last_transfer.or(last_leg.callee.clone());
        let direction = first.direction.as_deref().and_then(|d| match d {
            "in" => Some(Direction::In),
            "out" => Some(Direction::Out),
            "internal" => Some(Direction::Internal),
            _ => None,
        });
        let talk = |answer: Option<Timestamp>, end: Option<Timestamp>| match (answer, end) {
            (Some(a), Some(e)) => Some(e.seconds_since(a).max(0)),
            _ => None,
        };
        let mut out_legs = Vec::with_capacity(legs.len());
        for (name, l) in &legs {
            let end = l.end_at.or(self.forced_end);
            out_legs.push(Leg {
                id: (*name).clone(),
                call_id: call_id.to_owned(),
                source_leg_id: format!("{}/{name}", self.call_id),
                remote_party: l.callee.clone(),
                local_address: l.caller.clone(),
                display_name: l.caller_name.clone(),
                direction: l.direction.as_deref().map(|d| {
                    match d {
                        "in" => "incoming",
                        "out" => "outgoing",
                        _ => "internal",
                    }
                    .to_owned()
                }),
                leg_type: Some(self.source().to_owned()),
                sip_call_id: l.sip_call_id.clone(),
                started_at: l.started_at(),
                connected_at: l.answer_at,
                ended_at: end,
                duration_s: talk(l.answer_at, end),
                reason: l.cause(),
                remote_teardown: l.ended_by.as_deref().map(|b| b == "callee"),
                disposition: if l.end_at.is_some() {
                    l.disposition()
                } else {
                    end.and(disposition)
                },
                media: json!({ "video": l.video }),
                alarms: Vec::new(),
                details: Value::Null,
            });
        }
        let mut flags = Vec::new();
        if !all_ended && self.forced_end.is_some() {
            flags.push(cdrhub_model::FORCED_END_FLAG.to_owned());
        }
        let video = legs.iter().any(|(_, l)| l.video);
        let call = Call {
            id: call_id.to_owned(),
            source: self.source().to_owned(),
            sender: sender.to_owned(),
            kind: self.call_type.clone().unwrap_or_else(|| "call".to_owned()),
            caller: first.caller.clone(),
            dialed: first.callee.clone(),
            destination,
            direction,
            started_at,
            answered_at,
            ended_at,
            duration_s: ended_at.map(|e| e.seconds_since(started_at)),
            talk_s: talk(answered_at, ended_at),
            disposition,
            cause: first.cause().or_else(|| last_leg.cause()),
            media: Some(if video { "video" } else { "audio" }.to_owned()),
            legs: out_legs.len() as u32,
            legs_completed: Some(legs.iter().filter(|(_, l)| l.end_at.is_some()).count() as u32),
            max_active_legs: None,
            flags,
            details: Value::Null,
        };
        (call, out_legs)
    }

    /// What the call's page shows beyond its columns.
    pub fn details(&self) -> Value {
        let first = self.legs.values().min_by_key(|l| l.started_at());
        json!({
            "call_id": self.call_id,
            "call_type": self.call_type,
            "ucid": self.ucid,
            "imported": self.imported,
            "source_address": first.and_then(|l| l.source_address.clone()),
            "ring_at": first.and_then(|l| l.ring_at),
            "ended_by": first.and_then(|l| l.ended_by.clone()),
            "holds": self.legs.values().flat_map(|l| &l.holds).map(|(t, held)| json!({ "at": t, "held": held })).collect::<Vec<_>>(),
            "transfers": self.legs.values().flat_map(|l| &l.transfers).map(|(t, to)| json!({ "at": t, "to": to })).collect::<Vec<_>>(),
            "data": self.data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdrhub_protocols::events::decode;

    fn records(ndjson: &str) -> Vec<EventRecord> {
        decode(ndjson.as_bytes())
            .unwrap()
            .into_iter()
            .map(|event| EventRecord {
                received_at: event.at,
                event,
            })
            .collect()
    }

    const CALL: &str = r#"{"type":"setup","call_id":"c","key":"1","at":"2026-12-01T10:00:00Z","caller":"201","callee":"5001","direction":"out","source_address":"203.0.113.7","call_type":"click_to_call","data":{"guest":"Ann"}}
{"type":"ringing","call_id":"c","key":"2","at":"2026-12-01T10:00:01Z"}
{"type":"answered","call_id":"c","key":"3","at":"2026-12-01T10:00:04Z"}
{"type":"held","call_id":"c","key":"4","at":"2026-12-01T10:00:10Z"}
{"type":"resumed","call_id":"c","key":"5","at":"2026-12-01T10:00:20Z"}
{"type":"transferred","call_id":"c","key":"6","at":"2026-12-01T10:00:30Z","to":"5002"}
{"type":"ended","call_id":"c","key":"7","at":"2026-12-01T10:01:04Z","by":"callee","sip_status":200,"q850_cause":16}"#;

    #[test]
    fn any_order_makes_the_same_call() {
        let rs = records(CALL);
        let mut in_order = EventCallGroup::default();
        for (i, r) in rs.iter().enumerate() {
            in_order.apply(r, i as i64 + 1);
        }
        let mut reversed = EventCallGroup::default();
        for (i, r) in rs.iter().enumerate().rev() {
            reversed.apply(r, i as i64 + 1);
        }
        // Sent twice: stored once by the journal, and harmless here too.
        reversed.apply(&rs[6], 7);
        let (a, a_legs) = in_order.summarize("id", "pbx");
        let (b, b_legs) = reversed.summarize("id", "pbx");
        assert_eq!(a, b);
        assert_eq!(a_legs, b_legs);
        assert_eq!(in_order.details(), reversed.details());
        assert_eq!(a.source, "events");
        assert_eq!(a.kind, "click_to_call");
        assert_eq!(
            (a.caller.as_deref(), a.dialed.as_deref()),
            (Some("201"), Some("5001"))
        );
        assert_eq!(a.destination.as_deref(), Some("5002"), "transferred");
        assert_eq!(a.direction, Some(Direction::Out));
        assert_eq!(a.talk_s, Some(60));
        assert_eq!(a.duration_s, Some(64));
        assert_eq!(a.disposition, Some(Disposition::Answered));
        assert_eq!(a.cause.as_deref(), Some("SIP 200; Q.850 16"));
        assert!(in_order.is_finished());
        let d = in_order.details();
        assert_eq!(d["holds"].as_array().unwrap().len(), 2);
        assert_eq!(d["data"]["guest"], "Ann");
        assert_eq!(d["source_address"], "203.0.113.7");
    }

    #[test]
    fn dispositions_of_calls_never_answered() {
        for (ended, want) in [
            (r#""sip_status":486"#, Disposition::Busy),
            (r#""q850_cause":17"#, Disposition::Busy),
            (r#""sip_status":480"#, Disposition::NoAnswer),
            (r#""sip_status":603"#, Disposition::Rejected),
            (r#""sip_status":404"#, Disposition::Failed),
            (r#""by":"caller""#, Disposition::NoAnswer),
            (r#""disposition":"cancelled""#, Disposition::Cancelled),
        ] {
            let text = format!(
                "{}\n{}\n{{\"type\":\"ended\",\"call_id\":\"c\",\"key\":\"9\",\"at\":\"2026-12-01T10:00:09Z\",{ended}}}",
                CALL.lines().next().unwrap(),
                CALL.lines().nth(1).unwrap()
            );
            let mut g = EventCallGroup::default();
            for (i, r) in records(&text).iter().enumerate() {
                g.apply(r, i as i64);
            }
            assert_eq!(g.summarize("id", "s").0.disposition, Some(want), "{ended}");
        }
    }

    #[test]
    fn legs_end_the_call_when_all_have_ended() {
        let text = r#"{"type":"setup","call_id":"c","key":"1","at":"2026-12-01T10:00:00Z","leg":"A","caller":"201","callee":"600"}
{"type":"answered","call_id":"c","key":"2","at":"2026-12-01T10:00:01Z","leg":"A"}
{"type":"setup","call_id":"c","key":"3","at":"2026-12-01T10:00:05Z","leg":"B","caller":"201","callee":"5001"}
{"type":"ended","call_id":"c","key":"4","at":"2026-12-01T10:00:30Z","leg":"B","sip_status":486}
{"type":"ended","call_id":"c","key":"5","at":"2026-12-01T10:00:40Z","leg":"A","by":"caller"}"#;
        let rs = records(text);
        let mut g = EventCallGroup::default();
        for (i, r) in rs[..4].iter().enumerate() {
            g.apply(r, i as i64);
        }
        assert!(!g.is_finished());
        assert_eq!(g.summarize("id", "s").0.ended_at, None);
        g.apply(&rs[4], 4);
        let (call, legs) = g.summarize("id", "s");
        assert_eq!(call.legs, 2);
        assert_eq!(call.dialed.as_deref(), Some("600"));
        assert_eq!(call.destination.as_deref(), Some("5001"));
        assert_eq!(call.disposition, Some(Disposition::Answered));
        assert_eq!(
            call.ended_at,
            Some(Timestamp::parse_rfc3339("2026-12-01T10:00:40Z").unwrap())
        );
        assert_eq!(legs[1].disposition, Some(Disposition::Busy));
    }
}
