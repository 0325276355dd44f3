//! Port-gateway calls from the gateway event feed (issue 5; seed 001,
//! docs/gateway-feed.md "Report"): the events one gateway sends under one
//! call reference, from its first event to its `HOOK_ON`, are one call.
//!
//! A call has up to two legs: the gateway's port (the phone on an FXS port,
//! or the line of an FXO port, and the VoIP call it places or takes) and,
//! when the call uses the PSTN line, the PSTN side. The report row of the
//! seed's "CDR Report" (notation, dialed digits, talk times, caller ids) is
//! derived here and kept in the call's details.
//!
//! Times are the server's: when each line arrived. The gateway's clock is
//! kept beside them, and durations come from it when both ends of one are
//! readable (a clock wrong by years is still right by seconds).

use cdrhub_model::{Call, Direction, Disposition, Leg, Timestamp};
use cdrhub_protocols::feed::{CallEvent, CallEventKind, GatewayClock};
use serde::Serialize;
use serde_json::{Value, json};

use crate::cms::{CallKey, KeyKind, Touched};

/// A call event as cdrhub received it.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedEvent {
    pub received_at: Timestamp,
    /// The gateway's login the event came in (the server's session id): a
    /// gateway's call references start again when it restarts.
    pub login: String,
    /// The gateway's message counter, which orders the events of a login.
    pub seq: u32,
    pub event: CallEvent,
}

fn key(sender: &str, login: &str, call_ref: u32) -> i64 {
    CallKey {
        kind: KeyKind::FeedCall,
        id: &format!("{sender}/{login}/{call_ref}"),
    }
    .hash()
}

/// The key that ties an event of gateway `sender` to its call.
pub fn event_keys(event: &FeedEvent, sender: &str) -> Vec<i64> {
    vec![key(sender, &event.login, event.event.call_ref)]
}

/// The seed's report notation of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Notation {
    /// A phone on a port or the PSTN line calling out to the VoIP network.
    #[serde(rename = "Call out")]
    CallOut,
    /// A call from the VoIP network to a port.
    #[serde(rename = "Call in")]
    CallIn,
    /// A phone off hook and back with nothing dialled.
    #[serde(rename = "Hook On/Off")]
    HookOnOff,
    #[serde(rename = "Call in reject")]
    CallInReject,
    #[serde(rename = "Call out failed")]
    CallOutFailed,
}

impl Notation {
    pub const ALL: [Notation; 5] = [
        Notation::CallOut,
        Notation::CallIn,
        Notation::HookOnOff,
        Notation::CallInReject,
        Notation::CallOutFailed,
    ];

    /// As the seed's report prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Notation::CallOut => "Call out",
            Notation::CallIn => "Call in",
            Notation::HookOnOff => "Hook On/Off",
            Notation::CallInReject => "Call in reject",
            Notation::CallOutFailed => "Call out failed",
        }
    }
}

/// One event of the call, with where it was journaled.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedStep {
    pub record: i64,
    pub seq: u32,
    pub received_at: Timestamp,
    pub event: CallEvent,
}

/// One call reference of one gateway login.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeedCallGroup {
    /// The gateway, `id_MAC` (seed `8200_000C2A020082`).
    pub sender: String,
    pub login: String,
    pub call_ref: u32,
    /// In the gateway's order (its `seq`).
    pub steps: Vec<FeedStep>,
    /// Ended by hand.
    pub forced_end: Option<Timestamp>,
}

/// The seed's report row of a call ("CDR Report"; docs/gateway-feed.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportRow {
    pub call_ref: u32,
    pub port: Option<u16>,
    pub pstn_port: Option<u16>,
    pub notation: Notation,
    /// A PSTN_CALL_IN or a PSTN_DIAL: the seed's "Only PSTN" filter.
    pub pstn: bool,
    /// Every DIAL's digits, joined by `, `.
    pub dialed: Option<String>,
    /// Seconds from TALK to the first hang-up after it.
    pub talk_s: Option<i64>,
    pub begin: Timestamp,
    pub pstn_dial: Option<String>,
    /// Seconds from PSTN_CONNECTED to the PSTN line's release.
    pub pstn_talk_s: Option<i64>,
    pub caller_id: Option<String>,
    pub pstn_caller_id: Option<String>,
    pub end: Option<Timestamp>,
    pub codec: Option<String>,
    /// Of CALL_IN_REJECT or CALL_OUT_FAIL.
    pub reason: Option<String>,
}

fn is_pstn_event(kind: &CallEventKind) -> bool {
    matches!(
        kind,
        CallEventKind::PstnCallIn { .. }
            | CallEventKind::PstnHookOff
            | CallEventKind::PstnDial { .. }
            | CallEventKind::PstnConnected
            | CallEventKind::PstnHookOn
    )
}

/// Seconds between two events: by the gateway's clock when both are
/// readable and in order, else by the server's.
fn seconds_between(from: &FeedStep, to: &FeedStep) -> i64 {
    match (&from.event.at, &to.event.at) {
        (GatewayClock::Read(a), GatewayClock::Read(b)) if b.0 >= a.0 => b.seconds_since(*a),
        _ => to.received_at.seconds_since(from.received_at).max(0),
    }
}

fn joined<'a>(parts: impl Iterator<Item = &'a str>) -> Option<String> {
    let parts: Vec<&str> = parts.collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

impl FeedCallGroup {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Applies one event (journaled under `record_ref`).
    pub fn apply(&mut self, event: &FeedEvent, record_ref: i64) -> Touched {
        if self.steps.is_empty() {
            self.login.clone_from(&event.login);
            self.call_ref = event.event.call_ref;
        }
        let leg = if is_pstn_event(&event.event.kind) {
            "pstn"
        } else {
            "port"
        };
        if self.steps.iter().any(|s| s.record == record_ref) {
            return Touched::Nothing;
        }
        self.steps.push(FeedStep {
            record: record_ref,
            seq: event.seq,
            received_at: event.received_at,
            event: event.event.clone(),
        });
        self.steps.sort_by_key(|s| (s.seq, s.record));
        Touched::Leg(leg.to_owned())
    }

    pub fn absorb(&mut self, other: FeedCallGroup) {
        if self.sender.is_empty() {
            self.sender = other.sender;
        }
        if self.steps.is_empty() {
            self.login = other.login;
            self.call_ref = other.call_ref;
        }
        for step in other.steps {
            if !self.steps.iter().any(|s| s.record == step.record) {
                self.steps.push(step);
            }
        }
        self.steps.sort_by_key(|s| (s.seq, s.record));
        self.forced_end = match (self.forced_end, other.forced_end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    pub fn keys(&self) -> Vec<i64> {
        if self.steps.is_empty() {
            return Vec::new();
        }
        vec![key(&self.sender, &self.login, self.call_ref)]
    }

    pub fn record_ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self.steps.iter().map(|s| s.record).collect();
        ids.sort_unstable();
        ids
    }

    /// The event that ends the call: its `HOOK_ON`, or a refused call's
    /// `CALL_IN_REJECT`.
    fn end_step(&self) -> Option<&FeedStep> {
        self.steps.iter().rev().find(|s| {
            matches!(
                s.event.kind,
                CallEventKind::HookOn | CallEventKind::CallInReject { .. }
            )
        })
    }

    pub fn is_finished(&self) -> bool {
        self.forced_end.is_some() || self.end_step().is_some()
    }

    pub fn leg_ids(&self) -> Vec<String> {
        let mut ids = vec!["port".to_owned()];
        if self.steps.iter().any(|s| is_pstn_event(&s.event.kind)) {
            ids.push("pstn".to_owned());
        }
        ids
    }

    fn find(&self, pick: impl Fn(&CallEventKind) -> bool) -> Option<&FeedStep> {
        self.steps.iter().find(|s| pick(&s.event.kind))
    }

    /// The first step after `from` that `pick` takes.
    fn after(&self, from: &FeedStep, pick: impl Fn(&CallEventKind) -> bool) -> Option<&FeedStep> {
        self.steps
            .iter()
            .skip_while(|s| s.record != from.record)
            .skip(1)
            .find(|s| pick(&s.event.kind))
    }

    pub fn notation(&self) -> Notation {
        let has = |pick: fn(&CallEventKind) -> bool| self.find(pick).is_some();
        let first = self.steps.first().map(|s| &s.event.kind);
        if has(|k| matches!(k, CallEventKind::CallInReject { .. })) {
            Notation::CallInReject
        } else if has(|k| matches!(k, CallEventKind::CallOutFail { .. })) {
            Notation::CallOutFailed
        } else if matches!(first, Some(CallEventKind::CallIn { .. })) {
            Notation::CallIn
        } else if has(|k| {
            matches!(
                k,
                CallEventKind::Dial { .. } | CallEventKind::PstnDial { .. }
            )
        }) {
            Notation::CallOut
        } else if matches!(first, Some(CallEventKind::PstnCallIn { .. })) {
            // The PSTN line rang and the VoIP call was never placed.
            Notation::CallOutFailed
        } else {
            Notation::HookOnOff
        }
    }

    /// The seed's report row of the call.
    pub fn report_row(&self) -> ReportRow {
        let talk = self.find(|k| matches!(k, CallEventKind::Talk { .. }));
        let hang_up = |k: &CallEventKind| {
            matches!(
                k,
                CallEventKind::HookOn | CallEventKind::RemoteHookOn | CallEventKind::PstnHookOn
            )
        };
        let talk_s = talk.and_then(|t| self.after(t, hang_up).map(|e| seconds_between(t, e)));
        let pstn_connected = self.find(|k| matches!(k, CallEventKind::PstnConnected));
        let pstn_talk_s = pstn_connected.and_then(|c| {
            self.after(c, |k| {
                matches!(k, CallEventKind::PstnHookOn | CallEventKind::HookOn)
            })
            .map(|e| seconds_between(c, e))
        });
        let digits = |pstn: bool| {
            joined(self.steps.iter().filter_map(|s| match &s.event.kind {
                CallEventKind::Dial { digits } if !pstn => Some(digits.as_str()),
                CallEventKind::PstnDial { digits } if pstn => Some(digits.as_str()),
                _ => None,
            }))
        };
        let caller_id = self.steps.iter().find_map(|s| match &s.event.kind {
            CallEventKind::CallIn { caller_id } | CallEventKind::CallInReject { caller_id, .. } => {
                caller_id.clone()
            }
            _ => None,
        });
        let pstn_caller_id = self.steps.iter().find_map(|s| match &s.event.kind {
            CallEventKind::PstnCallIn { caller_id } => caller_id.clone(),
            _ => None,
        });
        let codec = self.steps.iter().find_map(|s| match &s.event.kind {
            CallEventKind::Talk { codec } => codec.as_ref().map(|c| c.to_string()),
            _ => None,
        });
        let reason = self.steps.iter().find_map(|s| match &s.event.kind {
            CallEventKind::CallInReject { reason, .. } | CallEventKind::CallOutFail { reason } => {
                reason.clone()
            }
            _ => None,
        });
        ReportRow {
            call_ref: self.call_ref,
            port: self.steps.iter().find_map(|s| s.event.port),
            pstn_port: self.steps.iter().find_map(|s| s.event.pstn_port),
            notation: self.notation(),
            pstn: self
                .find(|k| {
                    matches!(
                        k,
                        CallEventKind::PstnCallIn { .. } | CallEventKind::PstnDial { .. }
                    )
                })
                .is_some(),
            dialed: digits(false),
            talk_s,
            begin: self.started_at(),
            pstn_dial: digits(true),
            pstn_talk_s,
            caller_id,
            pstn_caller_id,
            end: self.ended_at(),
            codec,
            reason,
        }
    }

    fn started_at(&self) -> Timestamp {
        self.steps
            .iter()
            .map(|s| s.received_at)
            .min()
            .unwrap_or(Timestamp(0))
    }

    /// The server's time of the end event, else the end forced by hand.
    fn ended_at(&self) -> Option<Timestamp> {
        self.end_step()
            .map(|s| {
                self.steps
                    .iter()
                    .map(|x| x.received_at)
                    .max()
                    .unwrap_or(s.received_at)
            })
            .or(self.forced_end)
    }

    fn disposition_of(row: &ReportRow, answered: bool) -> Disposition {
        if answered {
            return Disposition::Answered;
        }
        match row.notation {
            Notation::CallInReject => Disposition::Rejected,
            Notation::CallOutFailed => {
                let reason = row.reason.as_deref().unwrap_or_default().to_lowercase();
                if reason.contains("busy") {
                    Disposition::Busy
                } else if reason.contains("no answer") || reason.contains("no-answer") {
                    Disposition::NoAnswer
                } else if reason.is_empty() {
                    // The PSTN caller hung up before the gateway dialled.
                    Disposition::Cancelled
                } else {
                    Disposition::Failed
                }
            }
            _ => Disposition::Cancelled,
        }
    }

    /// The call and its legs.
    pub fn summarize(&self, call_id: &str, sender: &str) -> (Call, Vec<Leg>) {
        let row = self.report_row();
        let started_at = row.begin;
        let ended_at = row.end;
        let answered_at = self
            .find(|k| matches!(k, CallEventKind::Talk { .. }))
            .map(|s| s.received_at);
        let disposition = ended_at.map(|_| Self::disposition_of(&row, answered_at.is_some()));
        let direction = match row.notation {
            Notation::CallIn | Notation::CallInReject => Some(Direction::In),
            Notation::CallOut | Notation::CallOutFailed => Some(Direction::Out),
            Notation::HookOnOff => None,
        };
        let (caller, dialed) = match row.notation {
            Notation::CallIn | Notation::CallInReject => {
                (row.caller_id.clone(), row.port.map(|p| format!("port {p}")))
            }
            _ => (
                row.pstn_caller_id
                    .clone()
                    .or_else(|| row.port.map(|p| format!("port {p}"))),
                first_dial(self),
            ),
        };
        let mut legs = vec![self.port_leg(call_id, &row, disposition)];
        if let Some(pstn) = self.pstn_leg(call_id, &row) {
            legs.push(pstn);
        }
        let mut flags = Vec::new();
        if self.end_step().is_none() && self.forced_end.is_some() {
            flags.push(cdrhub_model::FORCED_END_FLAG.to_owned());
        }
        let call = Call {
            id: call_id.to_owned(),
            source: cdrhub_model::SOURCE_FEED.to_owned(),
            sender: sender.to_owned(),
            kind: "gateway".to_owned(),
            caller,
            dialed,
            destination: row.pstn_dial.clone(),
            direction,
            started_at,
            answered_at,
            ended_at,
            duration_s: ended_at.map(|e| e.seconds_since(started_at)),
            talk_s: ended_at.and(row.talk_s),
            disposition,
            cause: row.reason.clone(),
            media: Some("audio".to_owned()),
            legs: legs.len() as u32,
            legs_completed: None,
            max_active_legs: None,
            flags,
            details: Value::Null,
        };
        (call, legs)
    }

    fn port_leg(&self, call_id: &str, row: &ReportRow, disposition: Option<Disposition>) -> Leg {
        let port_steps: Vec<&FeedStep> = self
            .steps
            .iter()
            .filter(|s| !is_pstn_event(&s.event.kind))
            .collect();
        let started_at = port_steps.first().map(|s| s.received_at);
        let ended_at = row.end;
        Leg {
            id: "port".to_owned(),
            call_id: call_id.to_owned(),
            source_leg_id: row
                .port
                .map_or_else(|| "no port".to_owned(), |p| format!("port {p}")),
            remote_party: row.caller_id.clone().or_else(|| first_dial(self)),
            local_address: row.port.map(|p| format!("port {p}")),
            display_name: None,
            direction: Some(
                match row.notation {
                    Notation::CallIn | Notation::CallInReject => "incoming",
                    _ => "outgoing",
                }
                .to_owned(),
            ),
            leg_type: Some("port".to_owned()),
            sip_call_id: None,
            started_at,
            connected_at: self
                .find(|k| matches!(k, CallEventKind::Talk { .. }))
                .map(|s| s.received_at),
            ended_at,
            duration_s: match (started_at, ended_at) {
                (Some(s), Some(e)) => Some(e.seconds_since(s)),
                _ => None,
            },
            reason: row.reason.clone(),
            remote_teardown: ended_at.map(|_| {
                self.find(|k| matches!(k, CallEventKind::RemoteHookOn))
                    .is_some()
            }),
            disposition,
            media: row
                .codec
                .as_ref()
                .map(|c| json!({ "codec": c }))
                .unwrap_or_else(|| Value::Object(Default::default())),
            alarms: Vec::new(),
            details: json!({ "talk_s": row.talk_s }),
        }
    }

    fn pstn_leg(&self, call_id: &str, row: &ReportRow) -> Option<Leg> {
        let steps: Vec<&FeedStep> = self
            .steps
            .iter()
            .filter(|s| is_pstn_event(&s.event.kind))
            .collect();
        let first = steps.first()?;
        let ended_at = steps
            .iter()
            .find(|s| matches!(s.event.kind, CallEventKind::PstnHookOn))
            .map(|s| s.received_at)
            .or(row.end);
        let connected_at = steps
            .iter()
            .find(|s| matches!(s.event.kind, CallEventKind::PstnConnected))
            .map(|s| s.received_at);
        let port = row.pstn_port.or(row.port);
        Some(Leg {
            id: "pstn".to_owned(),
            call_id: call_id.to_owned(),
            source_leg_id: port.map_or_else(|| "pstn".to_owned(), |p| format!("pstn {p}")),
            remote_party: row.pstn_caller_id.clone().or(row.pstn_dial.clone()),
            local_address: port.map(|p| format!("port {p}")),
            display_name: None,
            direction: Some(
                if matches!(first.event.kind, CallEventKind::PstnCallIn { .. }) {
                    "incoming"
                } else {
                    "outgoing"
                }
                .to_owned(),
            ),
            leg_type: Some("pstn".to_owned()),
            sip_call_id: None,
            started_at: Some(first.received_at),
            connected_at,
            ended_at,
            duration_s: ended_at.map(|e| e.seconds_since(first.received_at)),
            reason: None,
            remote_teardown: None,
            disposition: ended_at.map(|_| {
                if connected_at.is_some() {
                    Disposition::Answered
                } else {
                    Disposition::Cancelled
                }
            }),
            media: Value::Object(Default::default()),
            alarms: Vec::new(),
            details: json!({ "pstn_talk_s": row.pstn_talk_s }),
        })
    }

    /// The report row, the gateway and its login: what the gateway report
    /// reads of a call (`notation`, `pstn` are its filters).
    pub fn details(&self) -> Value {
        let mut details = serde_json::to_value(self.report_row()).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut details {
            map.insert("gateway".into(), json!(self.sender));
            map.insert("login".into(), json!(self.login));
        }
        details
    }
}

/// The number the call dialled first: the digits of its first DIAL.
fn first_dial(group: &FeedCallGroup) -> Option<String> {
    group.steps.iter().find_map(|s| match &s.event.kind {
        CallEventKind::Dial { digits } => Some(digits.clone()),
        _ => None,
    })
}
