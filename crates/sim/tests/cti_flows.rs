//! The flows of seed 003 as `cdrhub_sim::cti::flows` makes them: each
//! carries the fields the seed's tables show (and cdrhub's correlator
//! reads), encodes and decodes in both floating-field widths, and makes the
//! call the correlator makes of the seed's own tables.

use cdrhub_correlate::cti::{CtiCallGroup, CtiEvent, event_keys};
use cdrhub_model::{Direction, Disposition, Timestamp};
use cdrhub_protocols::cti::{
    AgentStateEvent, CallEvent, CallEventKind as K, CtiBody, DeviceRole as R, decode, encode,
    frame_len, tags,
};
use cdrhub_sim::cti::flows::{
    self, Agent, CallIds, InboundCall, NONE_U32, OutboundContact, PreviewResponse, Step, Timing,
    agent_state, call_type,
};

fn timing() -> Timing {
    Timing {
        step_ms: 0,
        ivr_ms: 3_000,
        queue_ms: 5_000,
        ring_ms: 4_000,
        talk_ms: 60_000,
        consult_ms: 15_000,
        wrapup_ms: 0,
    }
}

/// The seed's call: 2005 dials trigger 7000, CTI port 9019 answers for
/// application 2, the call queues to CSQ 1, agent 2006 takes it.
fn seed_call() -> InboundCall {
    InboundCall {
        ani: "2005".to_owned(),
        trigger: "7000".to_owned(),
        cti_port: "9019".to_owned(),
        agent: Agent::numbered(2006),
        csq_id: 1,
        application_id: 2,
        timing: timing(),
    }
}

fn seed_contact(response: PreviewResponse) -> OutboundContact {
    OutboundContact {
        agent: Agent {
            extension: "4020".to_owned(),
            id: "chli4020".to_owned(),
        },
        campaign: "LoadCamp".to_owned(),
        campaign_id: 2,
        dialing_list_id: 20779,
        account_number: "AC111".to_owned(),
        customer_number: "4022".to_owned(),
        customer_name: "John,Doe".to_owned(),
        response,
        timing: timing(),
    }
}

fn calls(steps: &[Step]) -> Vec<&CallEvent> {
    steps
        .iter()
        .filter_map(|s| match &s.message.body {
            CtiBody::Call(e) => Some(&**e),
            _ => None,
        })
        .collect()
}

fn of_kind(steps: &[Step], kind: K) -> Vec<&CallEvent> {
    calls(steps)
        .into_iter()
        .filter(|e| e.kind == kind)
        .collect()
}

/// (agent id, state, reason, next state) of every AGENT_STATE_EVENT.
fn agent_states(steps: &[Step]) -> Vec<(String, u16, u16, u32)> {
    steps
        .iter()
        .filter_map(|s| match &s.message.body {
            CtiBody::AgentState(a) => Some(agent_state_fields(a)),
            _ => None,
        })
        .collect()
}

fn agent_state_fields(a: &AgentStateEvent) -> (String, u16, u16, u32) {
    let f = &a.floating;
    let id = f.str(tags::AGENT_ID_LONG).unwrap_or_default().to_owned();
    // AgentID under both tags, and the extension of the agent's phone.
    assert_eq!(f.str(tags::AGENT_ID), Some(id.as_str()));
    let extension = f.str(tags::AGENT_EXTENSION).unwrap_or_default();
    assert!(id.ends_with(extension) && !extension.is_empty(), "{id}");
    // The seed: CSQState follows AgentState, CSQID -1, NumCSQs 0.
    assert_eq!(a.skill_group_state, a.agent_state);
    assert_eq!(a.skill_group_number, NONE_U32);
    assert_eq!(a.num_flt_skill_groups, Some(0));
    let next = f.u32(tags::NEXT_AGENT_STATE).unwrap_or(u32::MAX);
    (id, a.agent_state, a.event_reason_code, next)
}

fn str_of(e: &CallEvent, tag: u16) -> &str {
    e.floating.str(tag).unwrap_or("<none>")
}

fn device_type(e: &CallEvent, role: R) -> Option<u16> {
    e.device_types
        .iter()
        .find(|(r, _)| *r == role)
        .map(|(_, t)| *t)
}

/// The device each event of `kind` names under `tag`, in order.
fn devices(steps: &[Step], kind: K, tag: u16) -> Vec<String> {
    of_kind(steps, kind)
        .iter()
        .map(|e| str_of(e, tag).to_owned())
        .collect()
}

/// Every call event's id, without repeats, in order of appearance.
fn call_ids(steps: &[Step]) -> Vec<u32> {
    let mut ids = Vec::new();
    for e in calls(steps) {
        if !ids.contains(&e.connection_call_id) {
            ids.push(e.connection_call_id);
        }
    }
    ids
}

const T0: i64 = 1_795_000_000_000;

/// The flow as cdrhub receives it: each event at its step's time.
fn timed(steps: &[Step]) -> Vec<CtiEvent> {
    let mut at = T0;
    steps
        .iter()
        .map(|s| {
            at += s.after_ms as i64;
            CtiEvent {
                received_at: Timestamp(at),
                message: s.message.clone(),
            }
        })
        .collect()
}

/// The calls the correlator makes of the events: events sharing a key
/// belong to one call.
fn correlate(steps: &[Step]) -> Vec<CtiCallGroup> {
    let mut groups: Vec<(Vec<i64>, CtiCallGroup)> = Vec::new();
    for (i, event) in timed(steps).iter().enumerate() {
        let keys = event_keys(event, "sim");
        if keys.is_empty() {
            continue;
        }
        let mut merged = (keys.clone(), CtiCallGroup::default());
        let mut g = 0;
        while g < groups.len() {
            if groups[g].0.iter().any(|k| keys.contains(k)) {
                let (k, group) = groups.remove(g);
                merged.0.extend(k);
                merged.1.absorb(group);
            } else {
                g += 1;
            }
        }
        merged.1.apply(event, i as i64 + 1);
        groups.push(merged);
    }
    groups.into_iter().map(|(_, g)| g).collect()
}

#[test]
fn queued_and_answered_carries_the_seeds_fields() {
    let mut ids = CallIds::starting_at(16_777_507);
    let steps = flows::queued_and_answered(&mut ids, &seed_call());
    // The call and the agent's leg (the seed's SecondaryCallID 16777508).
    assert_eq!(ids.peek(), 16_777_509);
    assert_eq!(call_ids(&steps), [16_777_507]);
    assert_eq!(steps[0].after_ms, 0);

    let kinds: Vec<K> = calls(&steps).iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            K::BeginCall,
            K::ServiceInitiated,
            K::Originated,
            K::Delivered,
            K::Established,
            K::Queued,
            K::Delivered,
            K::CallDataUpdate,
            K::Established,
            K::Dequeued,
            K::ConnectionCleared,
            K::ConnectionCleared,
            K::ConnectionCleared,
            K::Cleared,
            K::EndCall,
        ]
    );
    let begin = of_kind(&steps, K::BeginCall)[0];
    assert_eq!(begin.call_type, Some(call_type::OUT));
    assert_eq!(str_of(begin, tags::ANI), "2005");
    assert_eq!(str_of(begin, tags::CONNECTION_DEVID), "2005");

    let originated = of_kind(&steps, K::Originated)[0];
    assert_eq!(str_of(originated, tags::CALLING_DEVID), "2005");
    assert_eq!(str_of(originated, tags::CALLED_DEVID), "7000");
    assert_eq!(device_type(originated, R::Called), Some(74));

    let [port, agent] = of_kind(&steps, K::Delivered)[..] else {
        panic!("two deliveries")
    };
    assert_eq!(port.service_number, Some(2), "ApplicationID");
    assert_eq!(port.skill_group_number, Some(NONE_U32));
    assert_eq!(device_type(port, R::Alerting), Some(73));
    assert_eq!(str_of(port, tags::ALERTING_DEVID), "9019");
    assert_eq!(str_of(port, tags::CALLING_DEVID), "2005");
    assert_eq!(str_of(port, tags::DNIS), "7000");
    assert_eq!(str_of(port, tags::DIALED_NUMBER), "7000");
    assert_eq!(str_of(port, tags::ANI), "2005");
    assert_eq!(agent.skill_group_number, Some(1), "CSQID");
    assert_eq!(device_type(agent, R::Alerting), Some(76));
    assert_eq!(str_of(agent, tags::ALERTING_DEVID), "2006");
    assert_eq!(
        agent.floating.u32(tags::SECONDARY_CONNECTION_CALL_ID),
        Some(16_777_508)
    );

    let [by_port, by_agent] = of_kind(&steps, K::Established)[..] else {
        panic!("two connections")
    };
    assert_eq!(device_type(by_port, R::Answering), Some(73));
    assert_eq!(str_of(by_port, tags::ANSWERING_DEVID), "9019");
    assert_eq!(device_type(by_agent, R::Answering), Some(76));
    assert_eq!(str_of(by_agent, tags::ANSWERING_DEVID), "2006");
    assert_eq!(str_of(by_agent, tags::LAST_REDIRECT_DEVID), "9019");
    assert_eq!(by_agent.skill_group_number, Some(1));

    let queued = of_kind(&steps, K::Queued)[0];
    assert_eq!(queued.num_skill_groups, Some(1));
    assert_eq!(
        queued
            .floating
            .u32s(tags::SKILL_GROUP_NUMBER)
            .collect::<Vec<_>>(),
        [1]
    );
    assert_eq!(device_type(queued, R::Queue), Some(77));

    assert_eq!(
        devices(&steps, K::ConnectionCleared, tags::RELEASING_DEVID),
        ["9019", "2005", "2006"]
    );
    let releasing: Vec<_> = of_kind(&steps, K::ConnectionCleared)
        .iter()
        .map(|e| device_type(e, R::Releasing))
        .collect();
    assert_eq!(releasing, [Some(73), Some(76), Some(76)]);

    // Ready, Reserved, Talking, Ready (Automatic Available).
    let states = agent_states(&steps);
    let agent_id = "agt2006".to_owned();
    assert_eq!(
        states,
        [
            (agent_id.clone(), agent_state::AVAILABLE, 0, 0xFFFF),
            (agent_id.clone(), agent_state::RESERVED, 0, 0xFFFF),
            (agent_id.clone(), agent_state::TALKING, 0, 3),
            (agent_id, agent_state::AVAILABLE, 0, 0xFFFF),
        ]
    );

    let groups = correlate(&steps);
    assert_eq!(groups.len(), 1);
    let (call, legs) = groups[0].summarize("c1", "sim");
    assert_eq!(call.caller.as_deref(), Some("2005"));
    assert_eq!(call.dialed.as_deref(), Some("7000"));
    assert_eq!(call.destination.as_deref(), Some("2006"));
    assert_eq!(call.disposition, Some(Disposition::Answered));
    assert_eq!(
        call.direction,
        Some(Direction::Out),
        "CallType 9 as the seed"
    );
    assert_eq!(legs.len(), 3, "caller, CTI port, agent");
    let details = groups[0].details();
    assert_eq!(details["csq"], 1);
    assert_eq!(details["cti_calls"][0]["application_id"], 2);
    assert_eq!(details["queue_wait_s"], 9.0, "queue, then ring");
    let agent = &groups[0].agents()[0];
    assert_eq!((agent.ring_s, agent.talk_s), (Some(4.0), Some(60.0)));
}

#[test]
fn after_call_work_puts_the_agent_in_work_then_ready() {
    let call = InboundCall {
        timing: Timing {
            wrapup_ms: 30_000,
            ..timing()
        },
        ..seed_call()
    };
    let steps = flows::queued_and_answered(&mut CallIds::starting_at(1), &call);
    let states: Vec<u16> = agent_states(&steps).iter().map(|s| s.1).collect();
    assert_eq!(
        states,
        [
            agent_state::AVAILABLE,
            agent_state::RESERVED,
            agent_state::TALKING,
            agent_state::WORK_READY,
            agent_state::AVAILABLE
        ]
    );
    let last = steps.last().unwrap();
    assert_eq!(last.after_ms, 30_000);
}

#[test]
fn a_transfer_consults_on_a_new_call_and_merges_it() {
    let mut ids = CallIds::starting_at(16_777_533);
    let to = Agent::numbered(2007);
    let steps = flows::transferred(&mut ids, &seed_call(), &to);
    let (original, consult) = (16_777_533, 16_777_535);
    assert_eq!(call_ids(&steps), [original, consult]);
    assert_eq!(ids.peek(), 16_777_536);

    let held = of_kind(&steps, K::Held)[0];
    assert_eq!(held.connection_call_id, original);
    assert_eq!(str_of(held, tags::HOLDING_DEVID), "2006");
    assert_eq!(device_type(held, R::Holding), Some(76));

    let begins = of_kind(&steps, K::BeginCall);
    assert_eq!(begins[1].connection_call_id, consult);
    assert_eq!(begins[1].call_type, Some(call_type::CONSULT));
    assert_eq!(str_of(begins[1], tags::ANI), "2006");

    let transfer = of_kind(&steps, K::Transferred)[0];
    assert_eq!(transfer.connection_call_id, original);
    assert_eq!(transfer.secondary_call_id, Some(consult));
    assert_eq!(transfer.num_parties, Some(2));
    assert_eq!(transfer.event_cause, Some(32));
    assert_eq!(str_of(transfer, tags::TRANSFERRING_DEVID), "2006");
    assert_eq!(str_of(transfer, tags::TRANSFERRED_DEVID), "2007");
    assert_eq!(device_type(transfer, R::Transferring), Some(76));
    assert_eq!(device_type(transfer, R::Transferred), Some(76));
    assert_eq!(
        transfer
            .floating
            .u32s(tags::PARTY_CALLID)
            .collect::<Vec<_>>(),
        [original, original]
    );
    assert_eq!(
        transfer
            .floating
            .strs(tags::PARTY_DEVID)
            .collect::<Vec<_>>(),
        ["2005", "2007"]
    );
    let update = of_kind(&steps, K::CallDataUpdate)
        .into_iter()
        .find(|e| e.call_type == Some(call_type::TRANSFER_IN))
        .expect("the transfer's data update");
    assert_eq!(update.connection_call_id, original);

    // The consult: 2006 calls 2007, who answers.
    let delivered = of_kind(&steps, K::Delivered);
    let to_2007 = delivered.last().unwrap();
    assert_eq!(to_2007.connection_call_id, consult);
    assert_eq!(str_of(to_2007, tags::ALERTING_DEVID), "2007");
    assert_eq!(str_of(to_2007, tags::CALLING_DEVID), "2006");

    let states = agent_states(&steps);
    let of = |agent: &str| -> Vec<(u16, u16)> {
        states
            .iter()
            .filter(|s| s.0 == agent)
            .map(|s| (s.1, s.2))
            .collect()
    };
    assert_eq!(of("agt2006"), [(3, 0), (8, 0), (4, 0), (3, 0)]);
    // Reserved for the consult, Talking (twice, as the seed), then Not
    // Ready with AGT_CALL_ENDED when the caller hangs up.
    assert_eq!(of("agt2007"), [(8, 0), (4, 0), (4, 0), (2, 32755)]);

    let groups = correlate(&steps);
    assert_eq!(groups.len(), 1, "the consult and the original are one call");
    let g = &groups[0];
    let join = &g.details()["joins"][0];
    assert_eq!(join["kind"], "transfer");
    assert_eq!(join["by"], "2006");
    assert_eq!(join["to"], "2007");
    let talk: Vec<_> = g
        .agents()
        .iter()
        .map(|a| (a.device.clone(), a.call_id))
        .collect();
    assert_eq!(
        talk,
        [
            ("2006".to_owned(), original),
            ("2007".to_owned(), consult),
            ("2007".to_owned(), original),
        ]
    );
    let (call, _) = g.summarize("c1", "sim");
    assert_eq!(call.disposition, Some(Disposition::Answered));
}

#[test]
fn a_conference_adds_the_consulted_agent_to_the_original_call() {
    let mut ids = CallIds::starting_at(16_777_539);
    let with = Agent::numbered(2007);
    let steps = flows::conferenced(&mut ids, &seed_call(), &with);
    let (original, consult) = (16_777_539, 16_777_541);
    assert_eq!(call_ids(&steps), [original, consult]);

    let conference = of_kind(&steps, K::Conferenced)[0];
    assert_eq!(conference.connection_call_id, original, "PrimaryCallID");
    assert_eq!(conference.secondary_call_id, Some(consult));
    assert_eq!(conference.num_parties, Some(3));
    assert_eq!(conference.event_cause, Some(17));
    assert_eq!(str_of(conference, tags::CONTROLLER_DEVID), "2006");
    assert_eq!(str_of(conference, tags::ADDED_PARTY_DEVID), "2007");
    assert_eq!(device_type(conference, R::Controller), Some(76));
    assert_eq!(device_type(conference, R::AddedParty), Some(76));
    assert_eq!(
        conference
            .floating
            .u32s(tags::PARTY_CALLID)
            .collect::<Vec<_>>(),
        [original; 3]
    );
    assert_eq!(
        conference
            .floating
            .strs(tags::PARTY_DEVID)
            .collect::<Vec<_>>(),
        ["2005", "2006", "2007"]
    );
    assert!(
        of_kind(&steps, K::CallDataUpdate)
            .iter()
            .any(|e| e.call_type == Some(call_type::CONFERENCE) && e.connection_call_id == original)
    );
    // Everyone leaves the original call at the end.
    let left: Vec<_> = of_kind(&steps, K::ConnectionCleared)
        .iter()
        .filter(|e| e.connection_call_id == original)
        .map(|e| str_of(e, tags::RELEASING_DEVID).to_owned())
        .collect();
    assert_eq!(left, ["9019", "2005", "2006", "2007"]);
    let last_states: Vec<_> = agent_states(&steps)
        .into_iter()
        .rev()
        .take(2)
        .map(|s| (s.0, s.1))
        .collect();
    assert_eq!(
        last_states,
        [("agt2007".to_owned(), 3), ("agt2006".to_owned(), 3)]
    );

    let groups = correlate(&steps);
    assert_eq!(groups.len(), 1);
    let details = groups[0].details();
    assert_eq!(details["joins"][0]["kind"], "conference");
    assert_eq!(
        details["joins"][0]["parties"],
        serde_json::json!(["2005", "2006", "2007"])
    );
}

#[test]
fn an_accepted_preview_dials_the_customer_on_a_new_call() {
    let mut ids = CallIds::starting_at(16_800_096);
    let steps = flows::outbound_preview(&mut ids, &seed_contact(PreviewResponse::Accept));
    let (preview, reservation) = (16_800_096, 16_800_097);
    assert_eq!(ids.peek(), 16_800_098);

    let begins = of_kind(&steps, K::BeginCall);
    assert_eq!(begins.len(), 2);
    let (r, p) = (begins[0], begins[1]);
    assert_eq!(r.connection_call_id, reservation);
    assert_eq!(r.call_type, Some(call_type::RESERVATION));
    assert_eq!(r.num_named_variables, Some(8));
    assert_eq!(str_of(r, tags::CONNECTION_DEVID), "4020");
    for (name, value) in [
        ("BACampaign", "LoadCamp"),
        ("BADialedListID", "20779"),
        ("BAAccountNumber", "AC111"),
        ("BAStatus", "DO"),
        ("BAResponse", ""),
    ] {
        assert_eq!(r.floating.named_variable(name), Some(value), "{name}");
    }
    assert_eq!(p.connection_call_id, preview);
    assert_eq!(p.call_type, Some(call_type::PREVIEW));
    assert_eq!(p.num_named_variables, Some(10));
    assert_eq!(str_of(p, tags::DIALED_NUMBER), "4022");
    for (name, value) in [
        ("BACampaign", "LoadCamp"),
        ("BACampaignID", "2"),
        ("BADialedListID", "20779"),
        ("BAAccountNumber", "AC111"),
        ("BACustomerNumber", "4022"),
        ("BAResponse", "Accept"),
        ("BAStatus", "CO"),
    ] {
        assert_eq!(p.floating.named_variable(name), Some(value), "{name}");
    }
    let answer = of_kind(&steps, K::CallDataUpdate)[0];
    assert_eq!(answer.floating.named_variable("BAResponse"), Some("Accept"));
    assert_eq!(answer.num_named_variables, Some(1));
    assert_eq!(
        answer.new_connection_call_id,
        Some(answer.connection_call_id)
    );

    let originated = of_kind(&steps, K::Originated)[0];
    assert_eq!(originated.connection_call_id, preview);
    assert_eq!(str_of(originated, tags::CALLED_DEVID), "4022");
    // Both calls end; the reservation first.
    let ends: Vec<u32> = of_kind(&steps, K::EndCall)
        .iter()
        .map(|e| e.connection_call_id)
        .collect();
    assert_eq!(ends, [reservation, preview]);
    let states: Vec<_> = agent_states(&steps)
        .into_iter()
        .map(|s| (s.0, s.1, s.3))
        .collect();
    let id = "chli4020".to_owned();
    assert_eq!(
        states,
        [
            (id.clone(), agent_state::RESERVED, 0xFFFF),
            (id.clone(), agent_state::TALKING, 5),
            (id, agent_state::WORK_NOT_READY, 0xFFFF),
        ]
    );

    let groups = correlate(&steps);
    assert_eq!(groups.len(), 1, "reservation and preview are one call");
    let (call, _) = groups[0].summarize("c1", "sim");
    assert_eq!(call.kind, "reservation");
    assert_eq!(call.direction, Some(Direction::Out));
    assert_eq!(call.caller.as_deref(), Some("4020"));
    assert_eq!(call.dialed.as_deref(), Some("4022"));
    assert_eq!(call.disposition, Some(Disposition::Answered));
    let outbound = &groups[0].details()["outbound"];
    assert_eq!(outbound["campaign"], "LoadCamp");
    assert_eq!(outbound["response"], "Accept");
    assert_eq!(outbound["account_number"], "AC111");
}

#[test]
fn a_skipped_or_rejected_contact_ends_with_the_reservation_call() {
    for (response, disposition, ready) in [
        (PreviewResponse::Skip, Disposition::Cancelled, true),
        (PreviewResponse::Reject, Disposition::Rejected, false),
    ] {
        let mut ids = CallIds::starting_at(16_800_098);
        let steps = flows::outbound_preview(&mut ids, &seed_contact(response));
        assert_eq!(call_ids(&steps), [16_800_098], "{response:?}");
        assert_eq!(ids.peek(), 16_800_099);
        let answer = of_kind(&steps, K::CallDataUpdate)[0];
        assert_eq!(answer.call_type, Some(call_type::RESERVATION));
        assert_eq!(
            answer.floating.named_variable("BAResponse"),
            Some(response.as_str())
        );
        assert_eq!(
            devices(&steps, K::ConnectionCleared, tags::RELEASING_DEVID),
            ["4020"]
        );
        let states: Vec<u16> = agent_states(&steps).iter().map(|s| s.1).collect();
        if ready {
            assert_eq!(states, [agent_state::RESERVED, agent_state::AVAILABLE]);
        } else {
            assert_eq!(states, [agent_state::RESERVED]);
        }
        assert!(of_kind(&steps, K::Originated).is_empty());

        let groups = correlate(&steps);
        assert_eq!(groups.len(), 1);
        let (call, _) = groups[0].summarize("c1", "sim");
        assert_eq!(call.disposition, Some(disposition), "{response:?}");
        assert_eq!(call.answered_at, None);
        assert_eq!(
            groups[0].details()["outbound"]["response"],
            response.as_str()
        );
    }
}

/// Every message of every flow is one frame in both widths, decodes to
/// the same call id and floating fields, and encodes back to the same
/// bytes.
#[test]
fn every_flow_encodes_and_decodes_in_both_widths() {
    let mut ids = CallIds::starting_at(16_777_500);
    let mut all: Vec<Step> = Vec::new();
    all.extend(flows::queued_and_answered(&mut ids, &seed_call()));
    all.extend(flows::transferred(
        &mut ids,
        &seed_call(),
        &Agent::numbered(2007),
    ));
    all.extend(flows::conferenced(
        &mut ids,
        &seed_call(),
        &Agent::numbered(2007),
    ));
    for response in [
        PreviewResponse::Accept,
        PreviewResponse::Skip,
        PreviewResponse::Reject,
    ] {
        all.extend(flows::outbound_preview(&mut ids, &seed_contact(response)));
    }
    for version in [13, 24] {
        for step in &all {
            let frame = encode(&step.message, version);
            assert_eq!(frame_len(&frame), Ok(Some(frame.len())));
            let decoded = decode(&frame, version)
                .unwrap_or_else(|e| panic!("{e}: {:?}", step.message.message_type));
            assert_eq!(decoded.message_type, step.message.message_type);
            assert_eq!(encode(&decoded, version), frame, "version {version}");
            match (&decoded.body, &step.message.body) {
                (CtiBody::Call(d), CtiBody::Call(s)) => {
                    assert_eq!(d.connection_call_id, s.connection_call_id);
                    assert_eq!(d.floating, s.floating);
                    assert_eq!(d.device_types, s.device_types);
                    assert_eq!(d.skill_group_number, s.skill_group_number);
                    assert_eq!(d.service_number, s.service_number);
                }
                (CtiBody::AgentState(d), CtiBody::AgentState(s)) => {
                    assert_eq!(d.floating, s.floating);
                    assert_eq!(d.agent_state, s.agent_state);
                }
                (d, s) => panic!("{d:?} is not {s:?}"),
            }
        }
    }
    // The narrow width carries every tag (all below 256), with NUL-ended
    // strings: one field of the seed's dump.
    let begin = encode(&all[0].message, 13);
    let ani = [tags::ANI as u8, 5, b'2', b'0', b'0', b'5', 0];
    assert!(begin.windows(ani.len()).any(|w| w == ani));
}
