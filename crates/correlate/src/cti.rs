//! Contact-centre calls from a CTI server's event stream (issue 4; the
//! message flows of seed 003).
//!
//! A CTI call id names one call on one server. A [`CtiCallGroup`] is what
//! cdrhub makes one call of: the CTI calls that a transfer or conference
//! joined (the consult and the original), or the reservation and preview
//! calls of one outbound contact. Each CTI call keeps, per device (caller,
//! CTI port, agent phone), when it rang, connected, was held and retrieved,
//! and cleared. Events are applied by their time, not their order of
//! arrival: every time kept is the earliest (or latest) seen, so the seed's
//! "order is not guaranteed" gives the same call whatever the order.

use cdrhub_model::{Call, Direction, Disposition, Leg, Timestamp};
use cdrhub_protocols::cti::{
    CallEvent, CallEventKind, CtiBody, CtiMessage, DeviceRole, FloatValue, NONE_U16, NONE_U32,
    call_type, device_type, event_cause, tags,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::cms::{CallKey, KeyKind, Touched};

/// A CTI message as cdrhub received it: CTI events carry no time, so the
/// time of receipt is the event's time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CtiEvent {
    pub received_at: Timestamp,
    pub message: CtiMessage,
}

/// The journal's subject of a message: its call id, or the agent whose
/// state it reports.
pub fn subject(message: &CtiMessage) -> Option<String> {
    match &message.body {
        CtiBody::Call(e) => Some(e.connection_call_id.to_string()),
        CtiBody::AgentState(a) => a
            .floating
            .str(tags::AGENT_ID_LONG)
            .or_else(|| a.floating.str(tags::AGENT_ID))
            .or_else(|| a.floating.str(tags::AGENT_EXTENSION))
            .map(str::to_owned),
        _ => None,
    }
}

fn call_key(sender: &str, call_id: u32) -> i64 {
    CallKey {
        kind: KeyKind::CtiCall,
        id: &format!("{sender}/{call_id}"),
    }
    .hash()
}

/// The keys that tie an event to its call: its CTI call ids (both calls a
/// transfer or conference joins, the old and new id of a data update) and,
/// for outbound calls, the contact (campaign and dialing-list entry).
pub fn event_keys(event: &CtiEvent, sender: &str) -> Vec<i64> {
    let CtiBody::Call(e) = &event.message.body else {
        return Vec::new();
    };
    let mut keys = vec![call_key(sender, e.connection_call_id)];
    for other in [e.secondary_call_id, e.new_connection_call_id]
        .into_iter()
        .flatten()
        .filter(|id| *id != e.connection_call_id && *id != 0 && *id != NONE_U32)
    {
        keys.push(call_key(sender, other));
    }
    for party in e.floating.u32s(tags::PARTY_CALLID) {
        if party != 0 && party != NONE_U32 && !keys.contains(&call_key(sender, party)) {
            keys.push(call_key(sender, party));
        }
    }
    if let Some(contact) = contact_id(&e.floating) {
        keys.push(
            CallKey {
                kind: KeyKind::CtiContact,
                id: &format!("{sender}/{contact}"),
            }
            .hash(),
        );
    }
    keys
}

/// An outbound contact's identity: campaign and dialing-list entry (the
/// `BA*` variables of seed 003's outbound flows).
fn contact_id(floating: &cdrhub_protocols::cti::Floating) -> Option<String> {
    let campaign = floating.named_variable("BACampaign")?;
    let entry = floating
        .named_variable("BADialedListID")
        .or_else(|| floating.named_variable("BAAccountNumber"))?;
    (!campaign.is_empty() && !entry.is_empty()).then(|| format!("{campaign}/{entry}"))
}

/// One cdrhub call from a contact centre: the CTI calls it is made of.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CtiCallGroup {
    /// The server (pair) the call is on: CTI call ids are its own.
    #[serde(default)]
    pub sender: String,
    pub parts: Vec<CtiCallPart>,
    /// Transfers and conferences that joined the parts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub joins: Vec<CtiJoin>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forced_end: Option<Timestamp>,
}

/// A value with the time it was reported: the latest report wins,
/// whatever the order of arrival.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timed<T> {
    pub at: Timestamp,
    pub value: T,
}

fn set_latest<T>(slot: &mut Option<Timed<T>>, at: Timestamp, value: T) {
    if slot.as_ref().is_none_or(|s| at >= s.at) {
        *slot = Some(Timed { at, value });
    }
}

fn earliest(slot: &mut Option<Timestamp>, at: Timestamp) {
    *slot = Some(slot.map_or(at, |s| s.min(at)));
}

fn latest(slot: &mut Option<Timestamp>, at: Timestamp) {
    *slot = Some(slot.map_or(at, |s| s.max(at)));
}

/// One CTI call id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CtiCallPart {
    pub call_id: u32,
    /// Journal references of its events: its timeline.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<i64>,
    pub first_seen: Option<Timestamp>,
    /// BEGIN_CALL_EVENT.
    pub begun_at: Option<Timestamp>,
    /// CALL_CLEARED_EVENT or END_CALL_EVENT, the later.
    pub ended_at: Option<Timestamp>,
    /// CallType of BEGIN_CALL (the call's origin), and the latest one.
    pub first_call_type: Option<Timed<u16>>,
    pub call_type: Option<Timed<u16>>,
    pub ani: Option<Timed<String>>,
    pub dnis: Option<Timed<String>>,
    pub dialed_number: Option<Timed<String>>,
    pub caller_entered_digits: Option<Timed<String>>,
    pub wrapup_data: Option<Timed<String>>,
    /// CallVariable1..10 by number.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub call_variables: Vec<(u8, Timed<String>)>,
    /// Named variables (ECC, outbound `BA*`), the latest value of each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub named_variables: Vec<(String, Timed<String>)>,
    /// UCCX ApplicationID (ServiceNumber).
    pub application_id: Option<u32>,
    /// CSQs the call was queued to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub csqs: Vec<u32>,
    pub queued_at: Option<Timestamp>,
    pub dequeued_at: Option<Timestamp>,
    /// The device that placed the call (CallingDeviceID), and its type.
    pub calling_device: Option<String>,
    pub calling_device_type: Option<u16>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<CtiDevice>,
    /// A FAILED event's cause, if the call failed.
    pub failed_cause: Option<u16>,
}

/// One device's part in a CTI call: a leg.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CtiDevice {
    pub id: String,
    pub device_type: Option<u16>,
    pub first_seen: Option<Timestamp>,
    /// DELIVERED: the device rang.
    pub alerting_at: Option<Timestamp>,
    /// ORIGINATED or SERVICE_INITIATED: the device placed the call.
    pub originated_at: Option<Timestamp>,
    /// ESTABLISHED: the device answered (or its call connected).
    pub established_at: Option<Timestamp>,
    /// CONNECTION_CLEARED: the device left the call.
    pub cleared_at: Option<Timestamp>,
    /// HELD (true) and RETRIEVED (false) by time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holds: Vec<(Timestamp, bool)>,
    /// The CSQ that delivered the call to this device (UCCX CSQID).
    pub csq: Option<u32>,
    /// The latest event cause seen on the device.
    pub cause: Option<u16>,
}

/// A transfer or conference that joined two CTI calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CtiJoin {
    /// `transfer` or `conference`.
    pub kind: String,
    pub at: Timestamp,
    /// The call that remains (PrimaryCallID) and the consult call.
    pub primary_call: u32,
    pub secondary_call: Option<u32>,
    /// Who transferred or conferenced (TransferringDeviceID,
    /// ControllerDeviceID) and who was added (TransferredDeviceID,
    /// AddedPartyDeviceID).
    pub by: Option<String>,
    pub to: Option<String>,
    /// The parties connected afterwards.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parties: Vec<String>,
}

impl CtiCallGroup {
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    fn part(&mut self, call_id: u32) -> &mut CtiCallPart {
        let i = match self.parts.iter().position(|p| p.call_id == call_id) {
            Some(i) => i,
            None => {
                self.parts.push(CtiCallPart {
                    call_id,
                    ..CtiCallPart::default()
                });
                self.parts.len() - 1
            }
        };
        &mut self.parts[i]
    }

    /// Applies one event (journaled under `record_ref`). Events that are
    /// not call events change nothing.
    pub fn apply(&mut self, event: &CtiEvent, record_ref: i64) -> Touched {
        let CtiBody::Call(e) = &event.message.body else {
            return Touched::Nothing;
        };
        let at = event.received_at;
        if let Some(join) = join_of(e, at)
            && !self.joins.contains(&join)
        {
            self.joins.push(join);
            self.joins.sort_by_key(|j| j.at);
        }
        let part = self.part(e.connection_call_id);
        if !part.records.contains(&record_ref) {
            part.records.push(record_ref);
            part.records.sort_unstable();
        }
        earliest(&mut part.first_seen, at);
        part.apply(e, at);
        match device_of(e) {
            Some(device) => Touched::Leg(format!("{}/{device}", e.connection_call_id)),
            None => Touched::Call,
        }
    }

    /// Takes in everything another group knew: the two are one call.
    pub fn absorb(&mut self, other: CtiCallGroup) {
        if self.sender.is_empty() {
            self.sender = other.sender;
        }
        for part in other.parts {
            match self.parts.iter_mut().find(|p| p.call_id == part.call_id) {
                Some(mine) => mine.absorb(part),
                None => self.parts.push(part),
            }
        }
        for join in other.joins {
            if !self.joins.contains(&join) {
                self.joins.push(join);
            }
        }
        self.joins.sort_by_key(|j| j.at);
        self.forced_end = match (self.forced_end, other.forced_end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    /// The keys the call is known under (as `event_keys` makes them).
    pub fn keys(&self) -> Vec<i64> {
        let sender = self.sender.as_str();
        let mut keys: Vec<i64> = self
            .parts
            .iter()
            .map(|p| call_key(sender, p.call_id))
            .collect();
        for part in &self.parts {
            let vars = part.named_variables.iter();
            let var = |name: &str| {
                vars.clone()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.value.as_str())
            };
            if let (Some(campaign), Some(entry)) = (
                var("BACampaign"),
                var("BADialedListID").or_else(|| var("BAAccountNumber")),
            ) && !campaign.is_empty()
                && !entry.is_empty()
            {
                keys.push(
                    CallKey {
                        kind: KeyKind::CtiContact,
                        id: &format!("{sender}/{campaign}/{entry}"),
                    }
                    .hash(),
                );
            }
        }
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// Every journal reference of the call's events.
    pub fn record_ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .parts
            .iter()
            .flat_map(|p| p.records.iter().copied())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Whether every CTI call of it has ended.
    pub fn is_finished(&self) -> bool {
        self.forced_end.is_some()
            || !self.parts.is_empty() && self.parts.iter().all(|p| p.ended_at.is_some())
    }

    /// The parts in the order they began: the first is the call's origin.
    fn parts_in_order(&self) -> Vec<&CtiCallPart> {
        let mut parts: Vec<&CtiCallPart> = self.parts.iter().collect();
        parts.sort_by_key(|p| (p.begun_at.or(p.first_seen), p.call_id));
        parts
    }

    /// The normalized call and its legs (one per device of each CTI call).
    pub fn summarize(&self, call_id: &str, sender: &str) -> (Call, Vec<Leg>) {
        let parts = self.parts_in_order();
        let first = parts.first().copied();
        let mut legs: Vec<Leg> = parts
            .iter()
            .flat_map(|p| {
                p.devices
                    .iter()
                    .map(move |d| leg_of(p, d, call_id, self.end_of(p, d)))
            })
            .collect();
        legs.sort_by_key(|l| (l.started_at, l.id.clone()));

        let started_at = parts
            .iter()
            .filter_map(|p| p.begun_at.or(p.first_seen))
            .min()
            .unwrap_or(Timestamp(0));
        let answered_at = parts.iter().filter_map(|p| p.answered_at()).min();
        let ended_at = if !parts.is_empty() && parts.iter().all(|p| p.ended_at.is_some()) {
            parts.iter().filter_map(|p| p.ended_at).max()
        } else {
            self.forced_end
        };
        let kind_code = first.and_then(|p| p.first_call_type.as_ref().or(p.call_type.as_ref()));
        let kind_code = kind_code.map(|t| t.value);
        let disposition = ended_at.map(|_| {
            if answered_at.is_some() {
                Disposition::Answered
            } else if let Some(cause) = parts.iter().find_map(|p| p.failed_cause) {
                if cause == event_cause::BUSY {
                    Disposition::Busy
                } else {
                    Disposition::Failed
                }
            } else if self
                .outbound_response()
                .is_some_and(|r| r.eq_ignore_ascii_case("reject"))
            {
                Disposition::Rejected
            } else {
                Disposition::Cancelled
            }
        });
        let agents = self.agents();
        let caller = first
            .and_then(|p| p.ani.as_ref().map(|a| a.value.clone()))
            .filter(|a| !a.is_empty())
            .or_else(|| parts.iter().find_map(|p| p.calling_device.clone()));
        let dialed = first.and_then(|p| {
            p.dialed_number
                .as_ref()
                .or(p.dnis.as_ref())
                .map(|d| d.value.clone())
                .filter(|d| !d.is_empty())
        });
        let outbound_number = self.named_variable("BACustomerNumber");
        let call = Call {
            id: call_id.to_owned(),
            source: cdrhub_model::SOURCE_CTI.to_owned(),
            sender: sender.to_owned(),
            kind: kind_code.map_or_else(|| "contact".to_owned(), call_type_name),
            caller,
            dialed: dialed.or(outbound_number),
            destination: agents.first().map(|a| a.device.clone()),
            direction: kind_code.and_then(direction_of),
            started_at,
            answered_at,
            ended_at,
            duration_s: ended_at.map(|e| e.seconds_since(started_at)),
            talk_s: match (answered_at, ended_at) {
                (Some(a), Some(e)) => Some(e.seconds_since(a)),
                _ => None,
            },
            disposition,
            cause: parts
                .iter()
                .find_map(|p| p.failed_cause)
                .map(|c| format!("event cause {c}")),
            media: Some("audio".to_owned()),
            legs: legs.len() as u32,
            legs_completed: None,
            max_active_legs: None,
            flags: self
                .forced_applies()
                .then(|| cdrhub_model::FORCED_END_FLAG.to_owned())
                .into_iter()
                .collect(),
            details: Value::Null,
        };
        (call, legs)
    }

    /// When a device left a CTI call: it cleared, it transferred the call
    /// away (it leaves the call that remains), or the call ended (or was
    /// ended by hand).
    fn end_of(&self, part: &CtiCallPart, d: &CtiDevice) -> Option<Timestamp> {
        let transferred_away = self
            .joins
            .iter()
            .filter(|j| j.kind == "transfer" && j.primary_call == part.call_id)
            .filter(|j| j.by.as_deref() == Some(d.id.as_str()))
            .map(|j| j.at)
            .min();
        let started = [d.alerting_at, d.originated_at, d.first_seen]
            .into_iter()
            .flatten()
            .min();
        [d.cleared_at, transferred_away]
            .into_iter()
            .flatten()
            .min()
            .or(part.ended_at)
            .or(self.forced_end.filter(|f| started.is_none_or(|s| s <= *f)))
    }

    fn forced_applies(&self) -> bool {
        self.forced_end.is_some() && self.parts.iter().any(|p| p.ended_at.is_none())
    }

    /// The latest value of a named variable over every part.
    fn named_variable(&self, name: &str) -> Option<String> {
        self.parts
            .iter()
            .flat_map(|p| p.named_variables.iter())
            .filter(|(n, v)| n == name && !v.value.is_empty())
            .max_by_key(|(_, v)| v.at)
            .map(|(_, v)| v.value.clone())
    }

    /// The agent's answer to an outbound contact (`BAResponse`).
    fn outbound_response(&self) -> Option<String> {
        self.named_variable("BAResponse")
    }

    /// The agents who talked on the call, in the order they answered, with
    /// their ring, talk and hold time.
    pub fn agents(&self) -> Vec<AgentLeg> {
        let mut agents: Vec<AgentLeg> = self
            .parts
            .iter()
            .flat_map(|p| {
                p.devices
                    .iter()
                    .filter(|d| p.is_agent_leg(d))
                    .map(move |d| AgentLeg::of(p, d, self.end_of(p, d)))
            })
            .collect();
        agents.sort_by_key(|a| (a.answered_at, a.device.clone()));
        agents
    }

    /// Source fields of the call: its CTI calls, agents, queue, joins and
    /// outbound contact, for the call page and the contact-centre reports.
    pub fn details(&self) -> Value {
        let parts: Vec<Value> = self
            .parts_in_order()
            .iter()
            .map(|p| {
                let text = |t: &Option<Timed<String>>| t.as_ref().map(|t| t.value.clone());
                json!({
                    "call_id": p.call_id,
                    "call_type": p.first_call_type.as_ref().map(|t| call_type_name(t.value)),
                    "last_call_type": p.call_type.as_ref().map(|t| call_type_name(t.value)),
                    "ani": text(&p.ani),
                    "dnis": text(&p.dnis),
                    "dialed_number": text(&p.dialed_number),
                    "caller_entered_digits": text(&p.caller_entered_digits),
                    "wrapup_data": text(&p.wrapup_data),
                    "application_id": p.application_id,
                    "csqs": p.csqs,
                    "queued_at": p.queued_at,
                    "queue_wait_s": p.queue_wait().map(|w| w as f64 / 1000.0),
                    "call_variables": p.call_variables.iter().map(|(n, v)| (format!("CallVariable{n}"), json!(v.value))).collect::<serde_json::Map<_, _>>(),
                    "named_variables": p.named_variables.iter().map(|(n, v)| (n.clone(), json!(v.value))).collect::<serde_json::Map<_, _>>(),
                })
            })
            .collect();
        let agents: Vec<Value> = self
            .agents()
            .iter()
            .map(|a| serde_json::to_value(a).unwrap_or(Value::Null))
            .collect();
        let first = self.parts_in_order().first().copied();
        json!({
            "cti_calls": parts,
            "agents": agents,
            "csq": first.and_then(|p| p.csqs.first().copied()).or_else(|| self.agents().iter().find_map(|a| a.csq)),
            "queue_wait_s": first.and_then(|p| p.queue_wait()).map(|w| w as f64 / 1000.0),
            "joins": self.joins,
            "outbound": self.named_variable("BACampaign").map(|campaign| json!({
                "campaign": campaign,
                "customer_number": self.named_variable("BACustomerNumber"),
                "account_number": self.named_variable("BAAccountNumber"),
                "response": self.outbound_response(),
                "status": self.named_variable("BAStatus"),
            })),
        })
    }
}

/// One agent's part in a call, for the call page and the reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentLeg {
    /// The agent's extension (their phone's device id).
    pub device: String,
    pub call_id: u32,
    pub csq: Option<u32>,
    pub alerting_at: Option<Timestamp>,
    pub answered_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub ring_s: Option<f64>,
    pub talk_s: Option<f64>,
    pub hold_s: f64,
}

impl AgentLeg {
    fn of(part: &CtiCallPart, d: &CtiDevice, ended_at: Option<Timestamp>) -> AgentLeg {
        let hold_ms = held_ms(&d.holds, ended_at);
        let secs = |ms: i64| ms.max(0) as f64 / 1000.0;
        AgentLeg {
            device: d.id.clone(),
            call_id: part.call_id,
            csq: d.csq,
            alerting_at: d.alerting_at,
            answered_at: d.established_at,
            ended_at,
            ring_s: match (d.alerting_at, d.established_at) {
                (Some(r), Some(a)) => Some(secs(a.0 - r.0)),
                _ => None,
            },
            talk_s: match (d.established_at, ended_at) {
                (Some(a), Some(e)) => Some(secs(e.0 - a.0 - hold_ms)),
                _ => None,
            },
            hold_s: secs(hold_ms),
        }
    }
}

/// Milliseconds on hold from HELD/RETRIEVED pairs in time order; a hold
/// with no retrieve lasts until `end`.
fn held_ms(holds: &[(Timestamp, bool)], end: Option<Timestamp>) -> i64 {
    let mut sorted = holds.to_vec();
    sorted.sort();
    let mut total = 0;
    let mut since: Option<Timestamp> = None;
    for (at, held) in sorted {
        match (held, since) {
            (true, None) => since = Some(at),
            (false, Some(s)) => {
                total += at.0 - s.0;
                since = None;
            }
            _ => {}
        }
    }
    if let (Some(s), Some(e)) = (since, end) {
        total += (e.0 - s.0).max(0);
    }
    total
}

impl CtiCallPart {
    fn device(&mut self, id: &str) -> &mut CtiDevice {
        let i = match self.devices.iter().position(|d| d.id == id) {
            Some(i) => i,
            None => {
                self.devices.push(CtiDevice {
                    id: id.to_owned(),
                    ..CtiDevice::default()
                });
                self.devices.len() - 1
            }
        };
        &mut self.devices[i]
    }

    fn apply(&mut self, e: &CallEvent, at: Timestamp) {
        let f = &e.floating;
        let text = |tag| f.str(tag).filter(|s| !s.is_empty()).map(str::to_owned);
        if let Some(ani) = text(tags::ANI) {
            set_latest(&mut self.ani, at, ani);
        }
        if let Some(dnis) = text(tags::DNIS) {
            set_latest(&mut self.dnis, at, dnis);
        }
        if let Some(dialed) = text(tags::DIALED_NUMBER) {
            set_latest(&mut self.dialed_number, at, dialed);
        }
        if let Some(ced) = text(tags::CALLER_ENTERED_DIGITS) {
            set_latest(&mut self.caller_entered_digits, at, ced);
        }
        if let Some(wrapup) = text(tags::CALL_WRAPUP_DATA) {
            set_latest(&mut self.wrapup_data, at, wrapup);
        }
        for (tag, value) in &f.fields {
            match value {
                FloatValue::Str(v) if (tags::CALL_VAR_1..=tags::CALL_VAR_10).contains(tag) => {
                    let n = (tag - tags::CALL_VAR_1 + 1) as u8;
                    match self.call_variables.iter_mut().find(|(k, _)| *k == n) {
                        Some((_, slot)) if at >= slot.at => {
                            *slot = Timed {
                                at,
                                value: v.clone(),
                            }
                        }
                        Some(_) => {}
                        None => self.call_variables.push((
                            n,
                            Timed {
                                at,
                                value: v.clone(),
                            },
                        )),
                    }
                }
                FloatValue::NamedVar { name, value } => {
                    match self.named_variables.iter_mut().find(|(k, _)| k == name) {
                        // An empty value does not erase a known one.
                        Some((_, slot)) if at >= slot.at && !value.is_empty() => {
                            *slot = Timed {
                                at,
                                value: value.clone(),
                            }
                        }
                        Some(_) => {}
                        None => self.named_variables.push((
                            name.clone(),
                            Timed {
                                at,
                                value: value.clone(),
                            },
                        )),
                    }
                }
                _ => {}
            }
        }
        self.call_variables.sort_by_key(|(n, _)| *n);
        if let Some(t) = e.call_type {
            set_latest(&mut self.call_type, at, t);
        }
        if let Some(n) = e.service_number.filter(|n| *n != NONE_U32 && *n != 0) {
            self.application_id = Some(n);
        }
        if let Some(calling) = f.str(tags::CALLING_DEVID).filter(|s| !s.is_empty())
            && self.calling_device.is_none()
        {
            self.calling_device = Some(calling.to_owned());
            self.calling_device_type = role_type(e, DeviceRole::Calling);
        }
        let csq = e.skill_group_number.filter(|n| *n != NONE_U32);
        let device = device_of(e).map(str::to_owned);
        match e.kind {
            CallEventKind::BeginCall => {
                earliest(&mut self.begun_at, at);
                if let Some(t) = e.call_type
                    && self.first_call_type.as_ref().is_none_or(|f| at < f.at)
                {
                    self.first_call_type = Some(Timed { at, value: t });
                }
            }
            CallEventKind::EndCall | CallEventKind::Cleared => latest(&mut self.ended_at, at),
            CallEventKind::Queued => {
                earliest(&mut self.queued_at, at);
                for q in f
                    .u32s(tags::SKILL_GROUP_NUMBER)
                    .chain(csq)
                    .filter(|q| *q != NONE_U32)
                {
                    if !self.csqs.contains(&q) {
                        self.csqs.push(q);
                    }
                }
            }
            CallEventKind::Dequeued => latest(&mut self.dequeued_at, at),
            CallEventKind::Failed => self.failed_cause = e.event_cause.filter(|c| *c != NONE_U16),
            _ => {}
        }
        let Some(device) = device else {
            return;
        };
        let own_type = own_device_type(e);
        let d = self.device(&device);
        earliest(&mut d.first_seen, at);
        if d.device_type.is_none() {
            d.device_type = own_type;
        }
        if let Some(cause) = e.event_cause.filter(|c| *c != NONE_U16) {
            d.cause = Some(cause);
        }
        match e.kind {
            CallEventKind::Delivered => {
                earliest(&mut d.alerting_at, at);
                if csq.is_some() {
                    d.csq = csq;
                }
            }
            CallEventKind::Established => {
                earliest(&mut d.established_at, at);
                if csq.is_some() {
                    d.csq = d.csq.or(csq);
                }
            }
            CallEventKind::Originated | CallEventKind::ServiceInitiated => {
                earliest(&mut d.originated_at, at)
            }
            CallEventKind::Held | CallEventKind::Retrieved => {
                let hold = (at, e.kind == CallEventKind::Held);
                if !d.holds.contains(&hold) {
                    d.holds.push(hold);
                }
            }
            CallEventKind::ConnectionCleared => latest(&mut d.cleared_at, at),
            _ => {}
        }
    }

    fn absorb(&mut self, other: CtiCallPart) {
        self.records.extend(other.records);
        self.records.sort_unstable();
        self.records.dedup();
        let min = |a: Option<Timestamp>, b: Option<Timestamp>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let max = |a: Option<Timestamp>, b: Option<Timestamp>| a.max(b);
        self.first_seen = min(self.first_seen, other.first_seen);
        self.begun_at = min(self.begun_at, other.begun_at);
        self.ended_at = max(self.ended_at, other.ended_at);
        self.queued_at = min(self.queued_at, other.queued_at);
        self.dequeued_at = max(self.dequeued_at, other.dequeued_at);
        fn later<T>(a: Option<Timed<T>>, b: Option<Timed<T>>) -> Option<Timed<T>> {
            match (a, b) {
                (Some(a), Some(b)) => Some(if b.at > a.at { b } else { a }),
                (a, b) => a.or(b),
            }
        }
        self.first_call_type = match (self.first_call_type.take(), other.first_call_type) {
            (Some(a), Some(b)) => Some(if b.at < a.at { b } else { a }),
            (a, b) => a.or(b),
        };
        self.call_type = later(self.call_type.take(), other.call_type);
        self.ani = later(self.ani.take(), other.ani);
        self.dnis = later(self.dnis.take(), other.dnis);
        self.dialed_number = later(self.dialed_number.take(), other.dialed_number);
        self.caller_entered_digits = later(
            self.caller_entered_digits.take(),
            other.caller_entered_digits,
        );
        self.wrapup_data = later(self.wrapup_data.take(), other.wrapup_data);
        for (n, v) in other.call_variables {
            match self.call_variables.iter_mut().find(|(k, _)| *k == n) {
                Some((_, slot)) if v.at >= slot.at => *slot = v,
                Some(_) => {}
                None => self.call_variables.push((n, v)),
            }
        }
        self.call_variables.sort_by_key(|(n, _)| *n);
        for (n, v) in other.named_variables {
            match self.named_variables.iter_mut().find(|(k, _)| *k == n) {
                Some((_, slot)) if v.at >= slot.at && !v.value.is_empty() => *slot = v,
                Some(_) => {}
                None => self.named_variables.push((n, v)),
            }
        }
        self.application_id = self.application_id.or(other.application_id);
        for q in other.csqs {
            if !self.csqs.contains(&q) {
                self.csqs.push(q);
            }
        }
        self.calling_device = self.calling_device.take().or(other.calling_device);
        self.calling_device_type = self.calling_device_type.or(other.calling_device_type);
        self.failed_cause = self.failed_cause.or(other.failed_cause);
        for d in other.devices {
            match self.devices.iter_mut().find(|x| x.id == d.id) {
                Some(mine) => {
                    mine.device_type = mine.device_type.or(d.device_type);
                    mine.first_seen = min(mine.first_seen, d.first_seen);
                    mine.alerting_at = min(mine.alerting_at, d.alerting_at);
                    mine.originated_at = min(mine.originated_at, d.originated_at);
                    mine.established_at = min(mine.established_at, d.established_at);
                    mine.cleared_at = max(mine.cleared_at, d.cleared_at);
                    for h in d.holds {
                        if !mine.holds.contains(&h) {
                            mine.holds.push(h);
                        }
                    }
                    mine.csq = mine.csq.or(d.csq);
                    mine.cause = mine.cause.or(d.cause);
                }
                None => self.devices.push(d),
            }
        }
    }

    /// The device that placed the call.
    fn is_caller(&self, d: &CtiDevice) -> bool {
        self.calling_device.as_deref() == Some(d.id.as_str())
            || self.ani.as_ref().is_some_and(|a| a.value == d.id)
    }

    /// A leg of an agent who answered: an agent phone that connected and
    /// did not place the call (the caller's own connection is reported the
    /// same way after a conference).
    fn is_agent_leg(&self, d: &CtiDevice) -> bool {
        d.device_type == Some(device_type::AGENT_DEVICE)
            && d.established_at.is_some()
            && !self.is_caller(d)
    }

    /// When someone answered: the first device that connected other than a
    /// CTI port, a route point or a queue (the IVR accepting a call is not
    /// an answer); for a call an agent placed, its connection.
    fn answered_at(&self) -> Option<Timestamp> {
        self.devices
            .iter()
            .filter(|d| {
                !matches!(
                    d.device_type,
                    Some(device_type::CTI_PORT | device_type::ROUTE_POINT | device_type::QUEUE)
                )
            })
            .filter(|d| !self.is_caller(d) || self.placed_by_agent())
            .filter_map(|d| d.established_at)
            .min()
    }

    fn placed_by_agent(&self) -> bool {
        let t = self
            .first_call_type
            .as_ref()
            .or(self.call_type.as_ref())
            .map(|t| t.value);
        matches!(
            t,
            Some(
                call_type::AGENT_OUT
                    | call_type::OUT
                    | call_type::AUTO_OUT
                    | call_type::PREVIEW
                    | call_type::RESERVATION
            )
        )
    }

    /// Milliseconds the call waited in queue: until an agent answered, it
    /// left the queue, or it ended.
    fn queue_wait(&self) -> Option<i64> {
        let queued = self.queued_at?;
        let agent_answer = self
            .devices
            .iter()
            .filter(|d| self.is_agent_leg(d))
            .filter_map(|d| d.established_at)
            .min();
        let out = agent_answer.or(self.dequeued_at).or(self.ended_at)?;
        Some((out.0 - queued.0).max(0))
    }
}

/// The device an event is about: ConnectionDeviceID, or for events that
/// name it so, the alerting, answering, holding ... device.
fn device_of(e: &CallEvent) -> Option<&str> {
    let f = &e.floating;
    let named = match e.kind {
        CallEventKind::Delivered => f.str(tags::ALERTING_DEVID),
        CallEventKind::Established => f.str(tags::ANSWERING_DEVID),
        CallEventKind::Held => f.str(tags::HOLDING_DEVID),
        CallEventKind::Retrieved => f.str(tags::RETRIEVING_DEVID),
        CallEventKind::ConnectionCleared => f.str(tags::RELEASING_DEVID),
        CallEventKind::Failed => f.str(tags::FAILING_DEVID),
        CallEventKind::Originated | CallEventKind::ServiceInitiated => f.str(tags::CALLING_DEVID),
        // The call as a whole, not a device of it.
        CallEventKind::BeginCall
        | CallEventKind::EndCall
        | CallEventKind::Cleared
        | CallEventKind::CallDataUpdate
        | CallEventKind::Queued
        | CallEventKind::Dequeued
        | CallEventKind::Conferenced
        | CallEventKind::Transferred => return None,
        CallEventKind::Diverted => f.str(tags::DIVERTING_DEVID),
    };
    let known = |d: &&str| !d.is_empty() && !d.eq_ignore_ascii_case("unknown");
    named
        .filter(known)
        .or_else(|| f.str(tags::CONNECTION_DEVID).filter(known))
}

/// The device type of a role in an event's fixed part.
fn role_type(e: &CallEvent, role: DeviceRole) -> Option<u16> {
    e.device_types
        .iter()
        .find(|(r, _)| *r == role)
        .map(|(_, t)| *t)
        .filter(|t| *t != NONE_U16)
}

/// The type of the device the event is about.
fn own_device_type(e: &CallEvent) -> Option<u16> {
    let role = match e.kind {
        CallEventKind::Delivered => DeviceRole::Alerting,
        CallEventKind::Established => DeviceRole::Answering,
        CallEventKind::Held => DeviceRole::Holding,
        CallEventKind::Retrieved => DeviceRole::Retrieving,
        CallEventKind::ConnectionCleared => DeviceRole::Releasing,
        CallEventKind::Failed => DeviceRole::Failing,
        CallEventKind::Originated | CallEventKind::ServiceInitiated => DeviceRole::Calling,
        CallEventKind::Diverted => DeviceRole::Diverting,
        _ => return None,
    };
    role_type(e, role)
}

/// The transfer or conference an event reports.
fn join_of(e: &CallEvent, at: Timestamp) -> Option<CtiJoin> {
    let (kind, by, to) = match e.kind {
        CallEventKind::Transferred => (
            "transfer",
            tags::TRANSFERRING_DEVID,
            tags::TRANSFERRED_DEVID,
        ),
        CallEventKind::Conferenced => (
            "conference",
            tags::CONTROLLER_DEVID,
            tags::ADDED_PARTY_DEVID,
        ),
        _ => return None,
    };
    let f = &e.floating;
    let text = |tag| f.str(tag).filter(|s| !s.is_empty()).map(str::to_owned);
    Some(CtiJoin {
        kind: kind.to_owned(),
        at,
        primary_call: e.connection_call_id,
        secondary_call: e.secondary_call_id,
        by: text(by),
        to: text(to),
        parties: f.strs(tags::PARTY_DEVID).map(str::to_owned).collect(),
    })
}

fn leg_of(part: &CtiCallPart, d: &CtiDevice, call_id: &str, ended_at: Option<Timestamp>) -> Leg {
    let started_at = [d.alerting_at, d.originated_at, d.first_seen]
        .into_iter()
        .flatten()
        .min();
    let connected = d.established_at.is_some();
    let role = if part.is_caller(d) {
        "caller"
    } else if part.is_agent_leg(d) {
        "agent"
    } else {
        match d.device_type {
            Some(device_type::CTI_PORT) => "cti_port",
            Some(device_type::ROUTE_POINT) => "route_point",
            Some(device_type::QUEUE) => "queue",
            Some(device_type::AGENT_DEVICE) => "agent_phone",
            _ => "device",
        }
    };
    Leg {
        id: format!("{}/{}", part.call_id, d.id),
        call_id: call_id.to_owned(),
        source_leg_id: format!("{}/{}", part.call_id, d.id),
        remote_party: Some(d.id.clone()),
        local_address: None,
        display_name: None,
        direction: Some(
            if part.is_caller(d) {
                "incoming"
            } else {
                "outgoing"
            }
            .to_owned(),
        ),
        leg_type: Some(role.to_owned()),
        sip_call_id: None,
        started_at,
        connected_at: d.established_at,
        ended_at,
        duration_s: match (started_at, ended_at) {
            (Some(s), Some(e)) => Some(e.seconds_since(s)),
            _ => None,
        },
        reason: d.cause.map(|c| format!("event cause {c}")),
        remote_teardown: None,
        disposition: ended_at.map(|_| {
            if connected {
                Disposition::Answered
            } else {
                Disposition::NoAnswer
            }
        }),
        media: Value::Object(Default::default()),
        alarms: Vec::new(),
        details: json!({
            "cti_call_id": part.call_id,
            "device_type": d.device_type,
            "csq": d.csq,
            "hold_s": held_ms(&d.holds, ended_at) as f64 / 1000.0,
        }),
    }
}

/// Which way a call of this CallType goes.
fn direction_of(t: u16) -> Option<Direction> {
    match t {
        1..=6 => Some(Direction::In),
        call_type::AUTO_OUT
        | call_type::AGENT_OUT
        | call_type::OUT
        | call_type::PREVIEW
        | call_type::RESERVATION => Some(Direction::Out),
        call_type::AGENT_INSIDE..=16 => Some(Direction::Internal),
        _ => None,
    }
}

/// CallType as a short name (reference B.6; 27 and up by the PV20 table).
pub fn call_type_name(t: u16) -> String {
    const NAMES: [&str; 27] = [
        "",
        "acd_in",
        "preroute_acd_in",
        "preroute_direct_agent",
        "transfer_in",
        "overflow_in",
        "other_in",
        "auto_out",
        "agent_out",
        "out",
        "agent_inside",
        "offered",
        "consult",
        "consult_offered",
        "consult_conference",
        "conference",
        "unmonitored",
        "preview",
        "reservation",
        "assist",
        "emergency",
        "supervisor_monitor",
        "supervisor_whisper",
        "supervisor_barge_in",
        "supervisor_intercept",
        "task_routed_by_icm",
        "task_routed_by_application",
    ];
    NAMES
        .get(usize::from(t))
        .filter(|n| !n.is_empty())
        .map_or_else(|| format!("call_type_{t}"), |n| (*n).to_owned())
}
