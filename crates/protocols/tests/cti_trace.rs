//! The MIVR text-trace reader against seed 003's Example 1 (see
//! `tests/data/cti/README.md`) and hand-made blocks of other message types
//! written with the field names of the seed's message-flow tables.

use cdrhub_model::Timestamp;
use cdrhub_protocols::cti::trace::{TraceEntry, TraceError, parse};
use cdrhub_protocols::cti::*;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/cti/",
            $name
        ))
    };
}

fn t(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).unwrap()
}

fn only_entry(text: &str) -> TraceEntry {
    let mut entries = parse(text, 2024);
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries.remove(0).unwrap()
}

fn call(entry: &TraceEntry) -> &CallEvent {
    match &entry.message.body {
        CtiBody::Call(event) => event,
        other => panic!("not a call event: {other:?}"),
    }
}

#[test]
fn seed_example_1_gives_the_begin_call_event_of_the_binary_dump() {
    let entry = only_entry(fixture!("seed-003-example1-trace.txt"));
    assert_eq!(entry.line, 1);
    // 10:43:59.435 EDT is 14:43:59.435 UTC.
    assert_eq!(entry.time, t("2024-11-20T14:43:59.435Z"));
    assert_eq!(entry.message.message_type, message_type::BEGIN_CALL_EVENT);
    let event = call(&entry);
    assert_eq!(event.kind, CallEventKind::BeginCall);
    // What the binary dump of the same event gives (cti_codec.rs).
    assert_eq!(event.connection_call_id, 16_777_488);
    assert_eq!(event.floating.str(tags::ANI), Some("2006"));
    assert_eq!(event.floating.str(tags::DNIS), Some("7000"));
    assert_eq!(event.floating.str(tags::CONNECTION_DEVID), Some("9026"));
    assert_eq!(event.call_type, Some(1));
    assert_eq!(
        (event.monitor_id, event.peripheral_id, event.peripheral_type),
        (0, 1, 21)
    );
    assert_eq!(event.connection_device_id_type, 0);
    assert_eq!(
        (
            event.num_cti_clients,
            event.num_named_variables,
            event.num_named_arrays,
            event.called_party_disposition
        ),
        (Some(0), Some(0), Some(0), Some(0))
    );
    // dialedNumber, callerEnteredDigits, callVar1..10, wrapupData are null.
    assert_eq!(event.floating.fields.len(), 3);
    assert_eq!(event.floating.str(tags::DIALED_NUMBER), None);
}

#[test]
fn the_whole_seed_chapter_reads_as_one_event_message() {
    // The chapter around Example 1 has prose, the binary dump's
    // "writing..." header line and flow tables: all skipped.
    let seed = fixture!("seed-003-chapter.txt");
    let entries = parse(seed, 2024);
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = entries[0].as_ref().unwrap();
    assert_eq!(call(entry).connection_call_id, 16_777_488);
}

#[test]
fn a_one_line_call_delivered_block_with_flow_table_names() {
    let text = "7092000: Nov 20 10:44:00.002 EST %MIVR-ICD_CTI-7-UNK:CSOutboundMsgProcessor: \
                got an event message: { length=-1 type=CALL_DELIVERED_EVENT, \
                ConnectionDeviceType: 0, CallID: 16777507, ApplicationID: 2, CSQID: -1, \
                AlertingDeviceType: 73, CallingDeviceType: 76, CalledDeviceType: 73, \
                LastRedirectedDeviceType: 65535, LocalConnectionState: 2, EventCause: 22, \
                NumNamedVars: 0, NumNamedArrays: 0, ConnectionDeviceID: 9019, \
                AlertingDeviceID: 9019, CallingDeviceID: 2005, CalledDeviceID: 9019, \
                LastRedirectedDeviceID: , SecondaryCallID: 0, ANI: 2005, DNIS: 7000, \
                DialedNumber: 7000 }";
    let entry = only_entry(text);
    assert_eq!(entry.time, t("2024-11-20T15:44:00.002Z"));
    let event = call(&entry);
    assert_eq!(event.kind, CallEventKind::Delivered);
    assert_eq!(event.connection_call_id, 16_777_507);
    assert_eq!(event.service_number, Some(2));
    assert_eq!(event.skill_group_number, Some(0xFFFF_FFFF));
    assert_eq!(
        event.device_types,
        [
            (DeviceRole::Alerting, 73),
            (DeviceRole::Calling, 76),
            (DeviceRole::Called, 73),
            (DeviceRole::LastRedirect, 0xFFFF)
        ]
    );
    assert_eq!(event.local_connection_state, Some(2));
    assert_eq!(event.event_cause, Some(22));
    // Not printed, so not guessed.
    assert_eq!(
        (event.line_handle, event.line_type, event.service_id),
        (None, None, None)
    );
    // SecondaryCallID of CALL_DELIVERED is a floating field; the empty
    // LastRedirectedDeviceID is absent.
    assert_eq!(
        event.floating.u32(tags::SECONDARY_CONNECTION_CALL_ID),
        Some(0)
    );
    assert_eq!(event.floating.str(tags::LAST_REDIRECT_DEVID), None);
    assert_eq!(event.floating.str(tags::CALLING_DEVID), Some("2005"));
    assert_eq!(event.floating.str(tags::DIALED_NUMBER), Some("7000"));
}

#[test]
fn an_agent_state_block_and_a_transferred_block_spanning_lines() {
    let text = "\
7092100: Nov 20 10:45:01.100 PST %MIVR-ICD_CTI-7-UNK:
CSOutboundMsgProcessor: got an event message:
{ length=-1 type=AGENT_STATE_EVENT, CSQState: 4, StateDuration: 0,
CSQID: -1, AgentState: 4, EventReasonCode: 0, NumCSQs: 0,
AgentExtension: 2007, AgentID: agt2007, NextAgentState: 3 }
7092101: Nov 20 10:45:01.200 PST %MIVR-SS_TEL-7-UNK:Call.dial() something else
7092102: Nov 20 10:45:02.000 PST %MIVR-ICD_CTI-7-UNK:
CSOutboundMsgProcessor: got an event message:
{ length=-1 type=CALL_TRANSFERRED_EVENT, PrimaryDeviceType: 0,
PrimaryCallID: 16777533, NumParties: 2, SecondaryDeviceType: 0,
SecondaryCallID: 16777535, TransferringDeviceType: 76,
TransferredDeviceType: 76, LocalConnectionState: 3, EventCause: 32,
PrimaryDeviceID: 2006, SecondaryDeviceID: 2007, TransferringDeviceID: 2006,
TransferredDeviceID: 2007, ConnectedPartyDCallID[0]: 16777533,
ConnectedPartyDeviceType[0]: 0, ConnectedPartyDeviceID[0]: 2005,
ConnectedPartyDCallID[1]: 16777533, ConnectedPartyDeviceType[1]: 0,
ConnectedPartyDeviceID[1]: 2007 }
";
    let entries: Vec<TraceEntry> = parse(text, 2024).into_iter().map(Result::unwrap).collect();
    assert_eq!(entries.len(), 2);

    assert_eq!(entries[0].line, 1);
    assert_eq!(entries[0].time, t("2024-11-20T18:45:01.100Z"));
    let CtiBody::AgentState(agent) = &entries[0].message.body else {
        panic!("not an agent state event");
    };
    assert_eq!(agent.agent_state, 4);
    assert_eq!(agent.skill_group_state, 4);
    assert_eq!(agent.skill_group_number, 0xFFFF_FFFF);
    assert_eq!(agent.num_flt_skill_groups, Some(0));
    assert_eq!(
        (agent.monitor_id, agent.peripheral_id, agent.peripheral_type),
        (0, 1, 21)
    );
    assert_eq!(agent.floating.str(tags::AGENT_ID_LONG), Some("agt2007"));
    assert_eq!(agent.floating.str(tags::AGENT_EXTENSION), Some("2007"));
    assert_eq!(agent.floating.u32(tags::NEXT_AGENT_STATE), Some(3));

    assert_eq!(entries[1].line, 7);
    let event = call(&entries[1]);
    assert_eq!(event.kind, CallEventKind::Transferred);
    assert_eq!(event.connection_call_id, 16_777_533);
    assert_eq!(event.secondary_call_id, Some(16_777_535));
    assert_eq!(event.num_parties, Some(2));
    assert_eq!(
        event.device_types,
        [
            (DeviceRole::Transferring, 76),
            (DeviceRole::Transferred, 76)
        ]
    );
    assert_eq!(
        event.floating.strs(tags::PARTY_DEVID).collect::<Vec<_>>(),
        ["2005", "2007"]
    );
    assert_eq!(
        event.floating.u32s(tags::PARTY_CALLID).collect::<Vec<_>>(),
        [16_777_533, 16_777_533]
    );
    assert_eq!(event.floating.u32(tags::PARTY_DEVID_TYPE), Some(0));
}

#[test]
fn a_queued_block_keeps_its_csq_list_and_the_guides_camel_case_type_names() {
    let text = "1: Nov 20 10:46:00.000 UTC %MIVR-ICD_CTI-7-UNK:CSOutboundMsgProcessor: got an \
                event message: { length=-1 type=CALL_QUEUED_EVENT, ConnectionDeviceType: 0, \
                CallID: 16777507, ApplicationID: 2, QueueDeviceType: 77, CallingDeviceType: 76, \
                CalledDeviceType: 74, LastRedirectedDeviceType: 65535, NumCSQs: 1, \
                LocalConnectionState: 5, EventCause: 65535, ConnectionDeviceID: 9019, \
                QueueDeviceID: 1, CsqID[0]: 1 }\n\
                2: Nov 20 10:46:01.000 UTC %MIVR-ICD_CTI-7-UNK:CSOutboundMsgProcessor: got an \
                event message: { length=-1 type=CallDequeuedEvent, ConnectionDeviceType: 65535, \
                CallID: 16777507, ApplicationID: -1, QueueDeviceType: 0, NumQueued: 0, \
                NumCSQs: 0, LocalConnectionState: 3, EventCause: 65535, ConnectionDeviceID: , \
                QueueDeviceID: }\n";
    let entries: Vec<TraceEntry> = parse(text, 2024).into_iter().map(Result::unwrap).collect();
    let queued = call(&entries[0]);
    assert_eq!(queued.num_skill_groups, Some(1));
    assert_eq!(queued.device_types.first(), Some(&(DeviceRole::Queue, 77)));
    assert_eq!(queued.floating.u32(tags::SKILL_GROUP_NUMBER), Some(1));
    assert_eq!(queued.floating.str(tags::QUEUE_DEVID), Some("1"));
    let dequeued = call(&entries[1]);
    assert_eq!(
        entries[1].message.message_type,
        message_type::CALL_DEQUEUED_EVENT
    );
    assert_eq!(dequeued.kind, CallEventKind::Dequeued);
    assert_eq!(dequeued.connection_device_id_type, 0xFFFF);
    assert_eq!(dequeued.service_number, Some(0xFFFF_FFFF));
    assert!(dequeued.floating.fields.is_empty());
}

#[test]
fn the_year_advances_when_the_month_goes_back() {
    let text = "\
1: Dec 31 23:59:59.900 UTC %MIVR-ICD_CTI-7-UNK:CSOutboundMsgProcessor: got an event message: { length=-1 type=END_CALL_EVENT, ConnectionDeviceType: 0, ConnectionCallID: 1, ConnectionDeviceID: }
2: Jan 1 00:00:00.100 UTC %MIVR-ICD_CTI-7-UNK:CSOutboundMsgProcessor: got an event message: { length=-1 type=END_CALL_EVENT, ConnectionDeviceType: 0, ConnectionCallID: 2, ConnectionDeviceID: }
";
    let times: Vec<Timestamp> = parse(text, 2024)
        .into_iter()
        .map(|e| e.unwrap().time)
        .collect();
    assert_eq!(
        times,
        [t("2024-12-31T23:59:59.900Z"), t("2025-01-01T00:00:00.100Z")]
    );
}

#[test]
fn broken_event_messages_are_errors_with_their_line_and_the_rest_still_reads() {
    let text = "\
1: Nov 20 10:43:59.435 IST %MIVR-ICD_CTI-7-UNK:CSOutboundMsgProcessor: got an event message: { length=-1 type=END_CALL_EVENT, ConnectionCallID: 1 }
2: Nov 20 10:43:59.500 EDT %MIVR-ICD_CTI-7-UNK:CSOutboundMsgProcessor: got an event message: { length=-1 type=CALL_CLEARED_EVENT, CallID: 7, LocalConnectionState: LCS_NULL }
3: Nov 20 10:43:59.600 EDT %MIVR-ICD_CTI-7-UNK:CSOutboundMsgProcessor: got an event message: { length=-1 type=NO_SUCH_EVENT, CallID: 7 }
4: Nov 20 10:43:59.700 EDT %MIVR-ICD_CTI-7-UNK:CSOutboundMsgProcessor: got an event message: { length=-1 type=CALL_HELD_EVENT, HoldingDeviceType: 76 }
5: Nov 20 10:43:59.800 EDT %MIVR-ICD_CTI-7-UNK:CSOutboundMsgProcessor: got an event message: { length=-1 type=OPEN_CONF, InvokeID: 1 }
6: Nov 31 10:43:59.900 EDT %MIVR-ICD_CTI-7-UNK:CSOutboundMsgProcessor: got an event message: { length=-1 type=END_CALL_EVENT, ConnectionCallID: 1 }
7: Nov 20 10:44:00.000 EDT %MIVR-ICD_CTI-7-UNK:CSOutboundMsgProcessor: got an event message:
{ length=-1 type=END_CALL_EVENT, ConnectionCallID: 1,
8: Nov 20 10:44:00.100 EDT %MIVR-ICD_CTI-7-UNK:CSOutboundMsgProcessor: got an event message: { length=-1 type=END_CALL_EVENT, ConnectionCallID: 8 }
";
    let results = parse(text, 2024);
    let errors: Vec<TraceError> = results
        .iter()
        .filter_map(|r| r.as_ref().err().cloned())
        .collect();
    let reasons: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        reasons,
        [
            "line 1: unknown time zone \"IST\"",
            "line 2: LocalConnectionState value \"LCS_NULL\" is not a number",
            "line 3: unknown message type NO_SUCH_EVENT",
            "line 4: the CALL_HELD_EVENT block has no CallID",
            "line 5: OPEN_CONF is not a call, agent state or system event, the messages a trace \
             is read for",
            "line 6: invalid time Nov 31 10:43:59.900 in year 2024",
            "line 7: the event message's { block is not closed",
        ]
    );
    let last = results.last().unwrap().as_ref().unwrap();
    assert_eq!(last.line, 9);
    assert_eq!(call(last).connection_call_id, 8);
}

#[test]
fn other_mivr_lines_and_non_event_blocks_are_skipped() {
    let text = "\
7091948: Nov 20 10:43:59.435 EDT %MIVR-ICD_CTI-7-UNK:writing...
MHDR:    0000: 00 00 00 36 00 00 00 17 ...6....
7091950: Nov 20 10:43:59.440 EDT %MIVR-ICD_CTI-7-UNK:CSInboundMsgProcessor: got a request message: { length=-1 type=OPEN_REQ, invokeID: 1 }
not a header at all
";
    assert!(parse(text, 2024).is_empty());
}
