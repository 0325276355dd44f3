//! CTI correlation from the message flows of seed 003 (Unified CCX CTI
//! guide, "Call-Event Message Flows as Seen in the Log Files"): each test
//! builds the flow's server messages as the tables list them, one second
//! apart, and checks the call cdrhub makes of them, in the tables' order and
//! in shuffled orders (the seed: "there is no guarantee of a particular
//! message order").

use cdrhub_correlate::cti::{CtiCallGroup, CtiEvent, event_keys};
use cdrhub_model::{Direction, Disposition, Timestamp};
use cdrhub_protocols::cti::{
    CallEvent, CallEventKind, CtiBody, CtiMessage, DeviceRole, FloatValue, Floating, tags,
};

const NONE: u32 = 0xFFFF_FFFF;

/// One call event of a flow: kind, call id, fixed fields and floating
/// fields by tag.
struct Ev {
    kind: CallEventKind,
    call: u32,
    csq: Option<u32>,
    app: Option<u32>,
    call_type: Option<u16>,
    secondary: Option<u32>,
    devices: Vec<(DeviceRole, u16)>,
    cause: Option<u16>,
    strs: Vec<(u16, &'static str)>,
    nums: Vec<(u16, u32)>,
    vars: Vec<(&'static str, &'static str)>,
}

fn ev(kind: CallEventKind, call: u32) -> Ev {
    Ev {
        kind,
        call,
        csq: None,
        app: None,
        call_type: None,
        secondary: None,
        devices: Vec::new(),
        cause: None,
        strs: Vec::new(),
        nums: Vec::new(),
        vars: Vec::new(),
    }
}

impl Ev {
    fn csq(mut self, csq: u32) -> Self {
        self.csq = Some(csq);
        self
    }
    fn app(mut self, app: u32) -> Self {
        self.app = Some(app);
        self
    }
    fn call_type(mut self, t: u16) -> Self {
        self.call_type = Some(t);
        self
    }
    fn secondary(mut self, id: u32) -> Self {
        self.secondary = Some(id);
        self
    }
    fn dev(mut self, role: DeviceRole, device_type: u16) -> Self {
        self.devices.push((role, device_type));
        self
    }
    fn cause(mut self, cause: u16) -> Self {
        self.cause = Some(cause);
        self
    }
    fn s(mut self, tag: u16, value: &'static str) -> Self {
        self.strs.push((tag, value));
        self
    }
    fn n(mut self, tag: u16, value: u32) -> Self {
        self.nums.push((tag, value));
        self
    }
    fn var(mut self, name: &'static str, value: &'static str) -> Self {
        self.vars.push((name, value));
        self
    }

    fn message(&self) -> CtiMessage {
        let mut floating = Floating::default();
        for (tag, v) in &self.strs {
            floating.push_str(*tag, *v);
        }
        for (tag, v) in &self.nums {
            floating.fields.push((*tag, FloatValue::U32(*v)));
        }
        for (name, value) in &self.vars {
            floating.fields.push((
                tags::NAMED_VARIABLE,
                FloatValue::NamedVar {
                    name: (*name).into(),
                    value: (*value).into(),
                },
            ));
        }
        CtiMessage {
            message_type: self.kind.message_type(),
            body: CtiBody::Call(Box::new(CallEvent {
                connection_device_id_type: 0,
                service_number: self.app,
                skill_group_number: self.csq,
                device_types: self.devices.clone(),
                event_cause: self.cause,
                secondary_device_id_type: self.secondary.map(|_| 0),
                secondary_call_id: self.secondary,
                call_type: self.call_type,
                floating,
                ..CallEvent::new(self.kind, self.call)
            })),
        }
    }
}

use CallEventKind as K;
use DeviceRole as R;

const T0: i64 = 1_795_000_000_000;

/// The flow's events one second apart.
fn timed(flow: &[Ev]) -> Vec<CtiEvent> {
    flow.iter()
        .enumerate()
        .map(|(i, e)| CtiEvent {
            received_at: Timestamp(T0 + i as i64 * 1000),
            message: e.message(),
        })
        .collect()
}

fn at(i: i64) -> Timestamp {
    Timestamp(T0 + i * 1000)
}

/// The calls the events make, grouped as the store groups them: events
/// sharing a key belong to one call.
fn correlate(events: &[CtiEvent]) -> Vec<CtiCallGroup> {
    let mut groups: Vec<(Vec<i64>, CtiCallGroup)> = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let keys = event_keys(event, "uccx");
        if keys.is_empty() {
            continue;
        }
        let mut matching: Vec<usize> = groups
            .iter()
            .enumerate()
            .filter(|(_, (k, _))| keys.iter().any(|key| k.contains(key)))
            .map(|(i, _)| i)
            .collect();
        let target = match matching.first() {
            Some(t) => *t,
            None => {
                groups.push((Vec::new(), CtiCallGroup::default()));
                groups.len() - 1
            }
        };
        matching.retain(|m| *m != target);
        for m in matching.into_iter().rev() {
            let (k, g) = groups.remove(m);
            let target = if m < target { target - 1 } else { target };
            groups[target].0.extend(k);
            groups[target].1.absorb(g);
        }
        let target = groups
            .iter()
            .position(|(k, _)| keys.iter().any(|key| k.contains(key)))
            .unwrap_or(groups.len() - 1);
        groups[target].0.extend(keys);
        groups[target].1.apply(event, i as i64 + 1);
    }
    groups.into_iter().map(|(_, g)| g).collect()
}

/// Deterministic shuffle (xorshift).
fn shuffled<T: Clone>(v: &[T], mut seed: u64) -> Vec<T> {
    let mut v = v.to_vec();
    for i in (1..v.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        v.swap(i, (seed % (i as u64 + 1)) as usize);
    }
    v
}

/// Same calls whatever the arrival order: each event keeps its time.
fn same_in_any_order(events: &[CtiEvent]) {
    let summary = |groups: Vec<CtiCallGroup>| {
        let mut calls: Vec<_> = groups
            .iter()
            .map(|g| {
                let (call, legs) = g.summarize("c", "uccx");
                let mut legs: Vec<_> = legs
                    .into_iter()
                    .map(|l| (l.id, l.started_at, l.connected_at, l.ended_at, l.leg_type))
                    .collect();
                legs.sort();
                (call, legs, g.details())
            })
            .collect();
        calls.sort_by_key(|c| c.0.started_at);
        calls
    };
    let expected = summary(correlate(events));
    for seed in [3, 17, 99, 12345] {
        assert_eq!(
            summary(correlate(&shuffled(events, seed))),
            expected,
            "order {seed}"
        );
    }
}

/// Seed 003, "Queued and Answered Call": 2005 calls trigger 7000, the
/// call waits in CSQ 1, agent 2006 answers, the caller hangs up.
fn queued_and_answered(call: u32) -> Vec<Ev> {
    vec![
        ev(K::BeginCall, call)
            .call_type(9)
            .s(tags::CONNECTION_DEVID, "2005")
            .s(tags::ANI, "2005"),
        ev(K::ServiceInitiated, call)
            .app(NONE)
            .csq(NONE)
            .dev(R::Calling, 76)
            .s(tags::CONNECTION_DEVID, "2005")
            .s(tags::CALLING_DEVID, "2005"),
        ev(K::Originated, call)
            .dev(R::Calling, 76)
            .dev(R::Called, 74)
            .s(tags::CONNECTION_DEVID, "2005")
            .s(tags::CALLING_DEVID, "2005")
            .s(tags::CALLED_DEVID, "7000"),
        ev(K::Delivered, call)
            .app(2)
            .csq(NONE)
            .dev(R::Alerting, 73)
            .dev(R::Calling, 76)
            .dev(R::Called, 73)
            .cause(22)
            .s(tags::CONNECTION_DEVID, "9019")
            .s(tags::ALERTING_DEVID, "9019")
            .s(tags::CALLING_DEVID, "2005")
            .s(tags::CALLED_DEVID, "9019")
            .s(tags::ANI, "2005")
            .s(tags::DNIS, "7000")
            .s(tags::DIALED_NUMBER, "7000"),
        ev(K::Established, call)
            .app(2)
            .csq(NONE)
            .dev(R::Answering, 73)
            .dev(R::Calling, 76)
            .cause(22)
            .s(tags::CONNECTION_DEVID, "9019")
            .s(tags::ANSWERING_DEVID, "9019")
            .s(tags::CALLING_DEVID, "2005"),
        ev(K::Queued, call)
            .app(2)
            .dev(R::Queue, 77)
            .s(tags::CONNECTION_DEVID, "9019")
            .s(tags::QUEUE_DEVID, "1")
            .n(tags::SKILL_GROUP_NUMBER, 1),
        ev(K::Delivered, call)
            .app(2)
            .csq(1)
            .dev(R::Alerting, 76)
            .dev(R::Calling, 76)
            .cause(22)
            .s(tags::CONNECTION_DEVID, "2006")
            .s(tags::ALERTING_DEVID, "2006")
            .s(tags::CALLING_DEVID, "2005")
            .s(tags::CALLED_DEVID, "2006"),
        ev(K::CallDataUpdate, call)
            .call_type(10)
            .s(tags::CONNECTION_DEVID, "2005"),
        ev(K::Established, call)
            .app(NONE)
            .csq(1)
            .dev(R::Answering, 76)
            .dev(R::Calling, 76)
            .cause(22)
            .s(tags::CONNECTION_DEVID, "2006")
            .s(tags::ANSWERING_DEVID, "2006")
            .s(tags::CALLING_DEVID, "2005")
            .s(tags::LAST_REDIRECT_DEVID, "9019"),
        ev(K::Dequeued, call).app(NONE),
        ev(K::ConnectionCleared, call)
            .dev(R::Releasing, 73)
            .cause(28)
            .s(tags::CONNECTION_DEVID, "9019")
            .s(tags::RELEASING_DEVID, "9019"),
    ]
}

/// The end of the queued call: the caller hangs up, then the agent.
fn caller_hangs_up(call: u32) -> Vec<Ev> {
    vec![
        ev(K::ConnectionCleared, call)
            .dev(R::Releasing, 76)
            .s(tags::CONNECTION_DEVID, "2005")
            .s(tags::RELEASING_DEVID, "2005"),
        ev(K::ConnectionCleared, call)
            .dev(R::Releasing, 76)
            .s(tags::CONNECTION_DEVID, "2006")
            .s(tags::RELEASING_DEVID, "2006"),
        ev(K::Cleared, call)
            .cause(1014)
            .s(tags::CONNECTION_DEVID, "2005"),
        ev(K::EndCall, call),
    ]
}

#[test]
fn a_queued_call_answered_by_an_agent() {
    let call = 16_777_507;
    let flow: Vec<Ev> = queued_and_answered(call)
        .into_iter()
        .chain(caller_hangs_up(call))
        .collect();
    let events = timed(&flow);
    let groups = correlate(&events);
    assert_eq!(groups.len(), 1);
    let g = &groups[0];
    let (c, legs) = g.summarize("c1", "uccx");
    assert_eq!(c.source, "cti");
    assert_eq!(c.caller.as_deref(), Some("2005"), "ANI");
    assert_eq!(c.dialed.as_deref(), Some("7000"), "dialed number");
    assert_eq!(
        c.destination.as_deref(),
        Some("2006"),
        "the agent who answered"
    );
    assert_eq!(c.started_at, at(0));
    assert_eq!(c.answered_at, Some(at(8)), "the agent, not the CTI port");
    assert_eq!(c.ended_at, Some(at(14)));
    assert_eq!(c.disposition, Some(Disposition::Answered));
    assert_eq!(c.direction, Some(Direction::Out), "CallType 9 in the seed");
    assert_eq!(legs.len(), 3, "caller, CTI port, agent");
    let kinds: Vec<_> = legs.iter().map(|l| l.leg_type.clone().unwrap()).collect();
    assert_eq!(kinds, ["caller", "cti_port", "agent"]);

    let details = g.details();
    assert_eq!(details["cti_calls"][0]["dnis"], "7000");
    assert_eq!(details["cti_calls"][0]["application_id"], 2);
    assert_eq!(details["csq"], 1);
    assert_eq!(details["queue_wait_s"], 3.0, "queued at 5, answered at 8");
    let agent = &details["agents"][0];
    assert_eq!(agent["device"], "2006");
    assert_eq!(agent["ring_s"], 2.0, "rang at 6, answered at 8");
    assert_eq!(agent["talk_s"], 4.0, "answered at 8, left at 12");
    assert_eq!(agent["hold_s"], 0.0);
    same_in_any_order(&events);
}

/// Seed 003, "Transferred Call": agent 2006 holds the caller, consults
/// 2007 on a new call, and transfers; the seed's transfer section names the
/// original call 16777533.
#[test]
fn a_consult_transfer_links_both_calls_and_splits_the_talk() {
    let (original, consult) = (16_777_533, 16_777_535);
    let mut flow = queued_and_answered(original);
    flow.extend([
        ev(K::Held, original)
            .dev(R::Holding, 76)
            .s(tags::CONNECTION_DEVID, "2006")
            .s(tags::HOLDING_DEVID, "2006"),
        ev(K::BeginCall, consult)
            .call_type(12)
            .s(tags::CONNECTION_DEVID, "2006")
            .s(tags::ANI, "2006"),
        ev(K::ServiceInitiated, consult)
            .csq(1)
            .dev(R::Calling, 76)
            .s(tags::CONNECTION_DEVID, "2006")
            .s(tags::CALLING_DEVID, "2006"),
        ev(K::Originated, consult)
            .csq(1)
            .dev(R::Calling, 76)
            .dev(R::Called, 76)
            .s(tags::CONNECTION_DEVID, "2006")
            .s(tags::CALLING_DEVID, "2006")
            .s(tags::CALLED_DEVID, "2007"),
        ev(K::Delivered, consult)
            .csq(1)
            .dev(R::Alerting, 76)
            .cause(22)
            .s(tags::CONNECTION_DEVID, "2007")
            .s(tags::ALERTING_DEVID, "2007")
            .s(tags::CALLING_DEVID, "2006")
            .s(tags::CALLED_DEVID, "2007"),
        ev(K::Established, consult)
            .csq(1)
            .dev(R::Answering, 76)
            .cause(22)
            .s(tags::CONNECTION_DEVID, "2007")
            .s(tags::ANSWERING_DEVID, "2007")
            .s(tags::CALLING_DEVID, "2006"),
        ev(K::CallDataUpdate, original)
            .call_type(4)
            .s(tags::CONNECTION_DEVID, "2005"),
        ev(K::Transferred, original)
            .secondary(consult)
            .dev(R::Transferring, 76)
            .dev(R::Transferred, 76)
            .cause(32)
            .s(tags::PRIMARY_DEVID, "2006")
            .s(tags::SECONDARY_DEVID, "2007")
            .s(tags::TRANSFERRING_DEVID, "2006")
            .s(tags::TRANSFERRED_DEVID, "2007")
            .n(tags::PARTY_CALLID, original)
            .s(tags::PARTY_DEVID, "2005")
            .n(tags::PARTY_CALLID, original)
            .s(tags::PARTY_DEVID, "2007"),
        ev(K::Established, original)
            .csq(1)
            .dev(R::Answering, 76)
            .cause(22)
            .s(tags::CONNECTION_DEVID, "2005")
            .s(tags::ANSWERING_DEVID, "2007")
            .s(tags::CALLING_DEVID, "2005")
            .s(tags::LAST_REDIRECT_DEVID, "2006"),
        ev(K::ConnectionCleared, consult)
            .dev(R::Releasing, 76)
            .s(tags::CONNECTION_DEVID, "2006")
            .s(tags::RELEASING_DEVID, "2006"),
        ev(K::ConnectionCleared, consult)
            .dev(R::Releasing, 76)
            .s(tags::CONNECTION_DEVID, "2007")
            .s(tags::RELEASING_DEVID, "2007"),
        ev(K::Cleared, consult).s(tags::CONNECTION_DEVID, "2006"),
        ev(K::EndCall, consult),
        ev(K::ConnectionCleared, original)
            .dev(R::Releasing, 76)
            .s(tags::CONNECTION_DEVID, "2005")
            .s(tags::RELEASING_DEVID, "2005"),
        ev(K::ConnectionCleared, original)
            .dev(R::Releasing, 76)
            .s(tags::CONNECTION_DEVID, "2007")
            .s(tags::RELEASING_DEVID, "2007"),
        ev(K::Cleared, original).s(tags::CONNECTION_DEVID, "2005"),
        ev(K::EndCall, original),
    ]);
    let events = timed(&flow);
    let groups = correlate(&events);
    assert_eq!(groups.len(), 1, "the consult and the original are one call");
    let g = &groups[0];
    let (c, _) = g.summarize("c1", "uccx");
    assert_eq!(c.ended_at, Some(at(27)));
    assert_eq!(c.caller.as_deref(), Some("2005"));
    let details = g.details();
    assert_eq!(details["cti_calls"].as_array().unwrap().len(), 2);
    assert_eq!(details["cti_calls"][1]["call_type"], "consult");
    let join = &details["joins"][0];
    assert_eq!(
        (
            join["kind"].as_str(),
            join["by"].as_str(),
            join["to"].as_str()
        ),
        (Some("transfer"), Some("2006"), Some("2007"))
    );
    assert_eq!(join["at"], serde_json::json!(at(18)));
    let agents = g.agents();
    let talk: Vec<_> = agents
        .iter()
        .map(|a| (a.device.as_str(), a.call_id, a.talk_s, a.hold_s))
        .collect();
    assert_eq!(
        talk,
        [
            // On the original call: answered at 8, held at 11, left at the
            // transfer (18): 3 s of talk, 7 on hold.
            ("2006", original, Some(3.0), 7.0),
            // The consult: answered at 16, left at 21.
            ("2007", consult, Some(5.0), 0.0),
            // The original, after the transfer: 19 to 25.
            ("2007", original, Some(6.0), 0.0),
        ]
    );
    same_in_any_order(&events);
}

/// Seed 003, "Conferenced Call": 2006 consults 2007 and conferences; all
/// three parties are legs of the original call. (The seed's table names the
/// primary call 16777507 but every other event of the conference 16777539:
/// this uses 16777539 throughout.)
#[test]
fn a_conference_merges_the_consult_into_the_original() {
    let (original, consult) = (16_777_539, 16_777_541);
    let mut flow = queued_and_answered(original);
    flow.extend([
        ev(K::Held, original)
            .dev(R::Holding, 76)
            .s(tags::HOLDING_DEVID, "2006")
            .s(tags::CONNECTION_DEVID, "2006"),
        ev(K::BeginCall, consult)
            .call_type(12)
            .s(tags::CONNECTION_DEVID, "2006")
            .s(tags::ANI, "2006"),
        ev(K::Delivered, consult)
            .csq(1)
            .dev(R::Alerting, 76)
            .s(tags::ALERTING_DEVID, "2007")
            .s(tags::CALLING_DEVID, "2006"),
        ev(K::Established, consult)
            .csq(1)
            .dev(R::Answering, 76)
            .s(tags::ANSWERING_DEVID, "2007")
            .s(tags::CALLING_DEVID, "2006"),
        ev(K::CallDataUpdate, original)
            .call_type(15)
            .s(tags::CONNECTION_DEVID, "2005"),
        ev(K::Conferenced, original)
            .secondary(consult)
            .dev(R::Controller, 76)
            .dev(R::AddedParty, 76)
            .cause(17)
            .s(tags::CONTROLLER_DEVID, "2006")
            .s(tags::ADDED_PARTY_DEVID, "2007")
            .n(tags::PARTY_CALLID, original)
            .s(tags::PARTY_DEVID, "2005")
            .n(tags::PARTY_CALLID, original)
            .s(tags::PARTY_DEVID, "2006")
            .n(tags::PARTY_CALLID, original)
            .s(tags::PARTY_DEVID, "2007"),
        ev(K::ConnectionCleared, consult)
            .s(tags::RELEASING_DEVID, "2006")
            .s(tags::CONNECTION_DEVID, "2006"),
        ev(K::Established, original)
            .csq(1)
            .dev(R::Answering, NONE as u16)
            .s(tags::CONNECTION_DEVID, "2005")
            .s(tags::ANSWERING_DEVID, "Unknown")
            .s(tags::CALLING_DEVID, "2005"),
        ev(K::ConnectionCleared, consult)
            .s(tags::RELEASING_DEVID, "2007")
            .s(tags::CONNECTION_DEVID, "2007"),
        ev(K::Cleared, consult).s(tags::CONNECTION_DEVID, "2006"),
        ev(K::EndCall, consult),
        ev(K::ConnectionCleared, original)
            .dev(R::Releasing, 76)
            .s(tags::RELEASING_DEVID, "2005")
            .s(tags::CONNECTION_DEVID, "2005"),
        ev(K::ConnectionCleared, original)
            .dev(R::Releasing, 76)
            .s(tags::RELEASING_DEVID, "2006")
            .s(tags::CONNECTION_DEVID, "2006"),
        ev(K::ConnectionCleared, original)
            .dev(R::Releasing, 76)
            .s(tags::RELEASING_DEVID, "2007")
            .s(tags::CONNECTION_DEVID, "2007"),
        ev(K::Cleared, original).s(tags::CONNECTION_DEVID, "2005"),
        ev(K::EndCall, original),
    ]);
    let events = timed(&flow);
    let groups = correlate(&events);
    assert_eq!(groups.len(), 1);
    let g = &groups[0];
    let details = g.details();
    assert_eq!(details["joins"][0]["kind"], "conference");
    assert_eq!(
        details["joins"][0]["parties"],
        serde_json::json!(["2005", "2006", "2007"])
    );
    let (c, legs) = g.summarize("c1", "uccx");
    assert_eq!(c.disposition, Some(Disposition::Answered));
    let parties_of_original: Vec<_> = legs
        .iter()
        .filter(|l| l.details["cti_call_id"] == original)
        .filter_map(|l| l.remote_party.clone())
        .collect();
    for party in ["2005", "2006", "2007"] {
        assert!(
            parties_of_original.iter().any(|p| p == party),
            "{party} is a leg of the original call: {parties_of_original:?}"
        );
    }
    same_in_any_order(&events);
}

/// Seed 003, "Outbound Option Call": a reservation call to agent 4020, the
/// agent accepts, and a preview call to customer 4022 under another call id;
/// the campaign and dialing-list entry make them one call.
#[test]
fn an_accepted_preview_links_the_reservation_and_the_customer_call() {
    let (reservation, preview) = (16_800_097, 16_800_096);
    let campaign = |e: Ev| {
        e.var("BACampaign", "LoadCamp")
            .var("BAAccountNumber", "AC111")
            .var("BADialedListID", "20779")
            .var("BABuddyName", "John,Doe")
    };
    let flow = vec![
        campaign(
            ev(K::BeginCall, reservation)
                .call_type(18)
                .s(tags::CONNECTION_DEVID, "4020")
                .var("BAStatus", "DO")
                .var("BAResponse", ""),
        ),
        ev(K::Delivered, reservation)
            .cause(22)
            .s(tags::CONNECTION_DEVID, "4020")
            .s(tags::ALERTING_DEVID, "4020")
            .s(tags::CALLED_DEVID, "4020"),
        ev(K::CallDataUpdate, preview)
            .call_type(18)
            .s(tags::CONNECTION_DEVID, "4020")
            .var("BAResponse", "Accept"),
        campaign(
            ev(K::BeginCall, preview)
                .call_type(17)
                .s(tags::CONNECTION_DEVID, "4020")
                .s(tags::DIALED_NUMBER, "4022")
                .var("BACampaignID", "2")
                .var("BAResponse", "Accept")
                .var("BAStatus", "CO")
                .var("BACustomerNumber", "4022"),
        ),
        ev(K::ConnectionCleared, reservation)
            .dev(R::Releasing, 76)
            .s(tags::CONNECTION_DEVID, "4020")
            .s(tags::RELEASING_DEVID, "4020"),
        ev(K::Cleared, reservation).s(tags::CONNECTION_DEVID, "4020"),
        ev(K::EndCall, reservation),
        ev(K::ServiceInitiated, preview)
            .dev(R::Calling, 76)
            .s(tags::CONNECTION_DEVID, "4020")
            .s(tags::CALLING_DEVID, "4020"),
        ev(K::Originated, preview)
            .dev(R::Calling, 76)
            .dev(R::Called, 0)
            .s(tags::CONNECTION_DEVID, "4020")
            .s(tags::CALLING_DEVID, "4020")
            .s(tags::CALLED_DEVID, "4022"),
        ev(K::Established, preview)
            .dev(R::Calling, 76)
            .cause(22)
            .s(tags::CONNECTION_DEVID, "4020")
            .s(tags::ANSWERING_DEVID, "Unknown")
            .s(tags::CALLING_DEVID, "4020"),
        ev(K::ConnectionCleared, preview)
            .dev(R::Releasing, 76)
            .s(tags::CONNECTION_DEVID, "4020")
            .s(tags::RELEASING_DEVID, "4020"),
        ev(K::Cleared, preview).s(tags::CONNECTION_DEVID, "4020"),
        ev(K::EndCall, preview),
    ];
    let events = timed(&flow);
    let groups = correlate(&events);
    assert_eq!(groups.len(), 1, "reservation and preview are one call");
    let g = &groups[0];
    let (c, _) = g.summarize("c1", "uccx");
    assert_eq!(c.kind, "reservation", "it began as the reservation");
    assert_eq!(c.direction, Some(Direction::Out));
    assert_eq!(c.caller.as_deref(), Some("4020"), "the agent");
    assert_eq!(c.dialed.as_deref(), Some("4022"), "the customer");
    assert_eq!(c.answered_at, Some(at(9)));
    assert_eq!(c.disposition, Some(Disposition::Answered));
    let outbound = &g.details()["outbound"];
    assert_eq!(outbound["campaign"], "LoadCamp");
    assert_eq!(outbound["customer_number"], "4022");
    assert_eq!(outbound["response"], "Accept");
    same_in_any_order(&events);
}

/// Seed 003, "The Agent Skips the Contact" and "Rejects the Reservation
/// Call": the reservation call ends unanswered with the agent's response.
#[test]
fn a_skipped_or_rejected_reservation_keeps_the_agents_response() {
    for (response, disposition) in [
        ("Skip", Disposition::Cancelled),
        ("Reject", Disposition::Rejected),
    ] {
        let call = 16_800_098;
        let flow = vec![
            ev(K::BeginCall, call)
                .call_type(18)
                .s(tags::CONNECTION_DEVID, "4020")
                .var("BACampaign", "LoadCamp")
                .var("BADialedListID", "20780"),
            ev(K::Delivered, call)
                .s(tags::CONNECTION_DEVID, "4020")
                .s(tags::ALERTING_DEVID, "4020"),
            ev(K::CallDataUpdate, call)
                .call_type(18)
                .s(tags::CONNECTION_DEVID, "4020")
                .var("BAResponse", response),
            ev(K::ConnectionCleared, call)
                .s(tags::CONNECTION_DEVID, "4020")
                .s(tags::RELEASING_DEVID, "4020"),
            ev(K::Cleared, call).s(tags::CONNECTION_DEVID, "4020"),
            ev(K::EndCall, call),
        ];
        let groups = correlate(&timed(&flow));
        let (c, _) = groups[0].summarize("c1", "uccx");
        assert_eq!(c.disposition, Some(disposition), "{response}");
        assert_eq!(c.answered_at, None);
        assert_eq!(groups[0].details()["outbound"]["response"], response);
    }
}

/// HELD and RETRIEVED pairs make the hold time, whatever their order.
#[test]
fn hold_time_comes_from_held_and_retrieved() {
    let call = 42;
    let mut flow = queued_and_answered(call);
    flow.extend([
        ev(K::Held, call)
            .s(tags::HOLDING_DEVID, "2006")
            .s(tags::CONNECTION_DEVID, "2006"),
        ev(K::Retrieved, call)
            .s(tags::RETRIEVING_DEVID, "2006")
            .s(tags::CONNECTION_DEVID, "2006"),
        ev(K::Held, call)
            .s(tags::HOLDING_DEVID, "2006")
            .s(tags::CONNECTION_DEVID, "2006"),
        ev(K::Retrieved, call)
            .s(tags::RETRIEVING_DEVID, "2006")
            .s(tags::CONNECTION_DEVID, "2006"),
    ]);
    flow.extend(caller_hangs_up(call));
    let events = timed(&flow);
    let groups = correlate(&events);
    let agent = &groups[0].agents()[0];
    // Held 11-12 and 13-14; answered at 8, left at 16.
    assert_eq!((agent.hold_s, agent.talk_s), (2.0, Some(6.0)));
    same_in_any_order(&events);
}
