//! The CTI codec against the seed's BEGIN_CALL_EVENT dump (see
//! `tests/data/cti/README.md`), vectors built from the fixed-part tables of
//! reference B.3/B.4 in both floating-field widths, the error cases, and
//! property tests: encode/decode round trips for every body kind and width,
//! and decode never panicking.

use cdrhub_protocols::cti::tags::{self, FieldType, field_type};
use cdrhub_protocols::cti::*;
use proptest::collection::vec;
use proptest::prelude::*;

/// Unified CCX speaks CTI versions 10–14: 1-byte tags and lengths.
const UCCX: u32 = 14;
/// UCCE 12.6: 2-byte tags and lengths.
const UCCE: u32 = 24;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/cti/",
            $name
        ))
    };
}

/// The bytes of a hex dump as UCCX prints it: `MHDR:`/`MDATA:` labels and
/// `0010:` offsets dropped, the ASCII column after the hex bytes ignored.
fn dump_bytes(dump: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    for line in dump.lines() {
        let Some(data) = line.split_once("0: ").map(|(_, rest)| rest) else {
            continue;
        };
        for token in data.split_whitespace() {
            match u8::from_str_radix(token, 16) {
                Ok(b) if token.len() == 2 => bytes.push(b),
                _ => break,
            }
        }
    }
    bytes
}

/// The seed's dump: MHDR (8 bytes) then MDATA as printed (53 bytes).
fn seed_dump() -> Vec<u8> {
    let dump = fixture!("seed-003-example2-dump.txt");
    dump_bytes(dump.lines().skip(1).collect::<Vec<_>>().join("\n").as_str())
}

/// A body under construction, in one floating-field width.
struct Body {
    bytes: Vec<u8>,
    width: FieldWidth,
}

impl Body {
    fn new(version: u32) -> Body {
        Body {
            bytes: Vec::new(),
            width: FieldWidth::for_version(version),
        }
    }

    fn u16(&mut self, v: u16) -> &mut Body {
        self.bytes.extend_from_slice(&v.to_be_bytes());
        self
    }

    fn u32(&mut self, v: u32) -> &mut Body {
        self.bytes.extend_from_slice(&v.to_be_bytes());
        self
    }

    fn field(&mut self, tag: u16, data: &[u8]) -> &mut Body {
        match self.width {
            FieldWidth::Narrow => self.bytes.extend_from_slice(&[tag as u8, data.len() as u8]),
            FieldWidth::Wide => {
                self.bytes.extend_from_slice(&tag.to_be_bytes());
                self.bytes
                    .extend_from_slice(&(data.len() as u16).to_be_bytes());
            }
        }
        self.bytes.extend_from_slice(data);
        self
    }

    fn str(&mut self, tag: u16, s: &str) -> &mut Body {
        let mut data = s.as_bytes().to_vec();
        data.push(0);
        self.field(tag, &data)
    }

    fn frame(&self, message_type: u32) -> Vec<u8> {
        let mut frame = (self.bytes.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&message_type.to_be_bytes());
        frame.extend_from_slice(&self.bytes);
        frame
    }
}

fn floating(fields: &[(u16, FloatValue)]) -> Floating {
    Floating {
        fields: fields.to_vec(),
    }
}

fn s(v: &str) -> FloatValue {
    FloatValue::Str(v.to_owned())
}

fn call(message: CtiMessage) -> CallEvent {
    match message.body {
        CtiBody::Call(event) => *event,
        other => panic!("not a call event: {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Seed 003, Example 2 (reference B.7)

#[test]
fn seed_begin_call_dump_as_printed_is_rejected_naming_begin_call_event() {
    let frame = seed_dump();
    assert_eq!(frame.len(), 8 + 53, "the dump holds 53 body bytes");
    assert_eq!(frame_len(&frame), Ok(Some(8 + 54)), "its header says 54");
    let e = decode(&frame, UCCX).unwrap_err();
    assert_eq!(e.message, "BEGIN_CALL_EVENT");
    assert_eq!(e.offset, 53);
    assert_eq!(
        e.to_string(),
        "BEGIN_CALL_EVENT: the header gives a 54-byte body but the frame holds 53 bytes \
         at body offset 53"
    );
}

#[test]
fn seed_begin_call_dump_with_its_header_trusted_overruns_its_first_floating_field() {
    // Believing the 53 bytes: CallType reads 256, ConnectionCallID
    // 0x00011000, and the first floating field is tag 5 with length 50
    // (reference B.7).
    let mut frame = seed_dump();
    frame[3] = 53;
    let e = decode(&frame, UCCX).unwrap_err();
    assert_eq!(e.message, "BEGIN_CALL_EVENT");
    assert_eq!(e.offset, 26);
    assert_eq!(
        e.reason,
        "floating field 5 of 50 bytes runs past the end of the body (25 bytes left after its \
         tag and length)"
    );
}

#[test]
fn seed_begin_call_dump_with_the_missing_byte_restored_decodes() {
    let mut frame = seed_dump();
    // One 00 of the zero run after `00 15` (PeripheralType) is missing.
    frame.insert(8 + 10, 0);
    let message = decode(&frame, UCCX).unwrap();
    assert_eq!(message.message_type, message_type::BEGIN_CALL_EVENT);
    let event = call(message);
    assert_eq!(event.kind, CallEventKind::BeginCall);
    assert_eq!(
        (event.monitor_id, event.peripheral_id, event.peripheral_type),
        (0, 1, 21)
    );
    assert_eq!(event.connection_call_id, 16_777_488);
    assert_eq!(event.call_type, Some(1));
    assert_eq!(event.num_cti_clients, Some(0));
    assert_eq!(event.num_named_variables, Some(0));
    assert_eq!(event.num_named_arrays, Some(0));
    assert_eq!(event.connection_device_id_type, 0);
    assert_eq!(event.called_party_disposition, Some(0));
    assert_eq!(event.floating.str(tags::ANI), Some("2006"));
    assert_eq!(event.floating.str(tags::DIALED_NUMBER), Some("7000"));
    assert_eq!(event.floating.str(tags::CONNECTION_DEVID), Some("9026"));
    assert_eq!(event.floating.str(tags::DNIS), Some("7000"));
    // Wire order, which is not the guide's listing order.
    let order: Vec<u16> = event.floating.fields.iter().map(|(t, _)| *t).collect();
    assert_eq!(
        order,
        [
            tags::ANI,
            tags::DIALED_NUMBER,
            tags::CONNECTION_DEVID,
            tags::DNIS
        ]
    );
    assert!(event.device_types.is_empty());
    assert_eq!(event.line_handle, None);
    // And it encodes back to the same bytes.
    assert_eq!(
        encode(
            &CtiMessage {
                message_type: 23,
                body: CtiBody::Call(Box::new(event))
            },
            UCCX
        ),
        frame
    );
}

// ---------------------------------------------------------------------------
// Call event vectors from the fixed-part tables of reference B.4

/// A call event with every optional field `None`.
fn blank(kind: CallEventKind) -> CallEvent {
    CallEvent {
        kind,
        monitor_id: 0,
        peripheral_id: 0,
        peripheral_type: 0,
        connection_device_id_type: 0,
        connection_call_id: 0,
        line_handle: None,
        line_type: None,
        service_number: None,
        service_id: None,
        skill_group_number: None,
        skill_group_id: None,
        skill_group_priority: None,
        device_types: Vec::new(),
        local_connection_state: None,
        event_cause: None,
        num_parties: None,
        secondary_device_id_type: None,
        secondary_call_id: None,
        num_queued: None,
        num_skill_groups: None,
        num_cti_clients: None,
        num_named_variables: None,
        num_named_arrays: None,
        call_type: None,
        called_party_disposition: None,
        new_connection_device_id_type: None,
        new_connection_call_id: None,
        campaign_id: None,
        query_rule_id: None,
        floating: Floating::default(),
    }
}

const ALL_KINDS: [CallEventKind; 17] = [
    CallEventKind::Delivered,
    CallEventKind::Established,
    CallEventKind::Held,
    CallEventKind::Retrieved,
    CallEventKind::Cleared,
    CallEventKind::ConnectionCleared,
    CallEventKind::Originated,
    CallEventKind::Failed,
    CallEventKind::Conferenced,
    CallEventKind::Transferred,
    CallEventKind::Diverted,
    CallEventKind::ServiceInitiated,
    CallEventKind::Queued,
    CallEventKind::Dequeued,
    CallEventKind::BeginCall,
    CallEventKind::EndCall,
    CallEventKind::CallDataUpdate,
];

fn kind_message_type(kind: CallEventKind) -> u32 {
    use CallEventKind as K;
    match kind {
        K::Delivered => 9,
        K::Established => 10,
        K::Held => 11,
        K::Retrieved => 12,
        K::Cleared => 13,
        K::ConnectionCleared => 14,
        K::Originated => 15,
        K::Failed => 16,
        K::Conferenced => 17,
        K::Transferred => 18,
        K::Diverted => 19,
        K::ServiceInitiated => 20,
        K::Queued => 21,
        K::BeginCall => 23,
        K::EndCall => 24,
        K::CallDataUpdate => 25,
        K::Dequeued => 86,
    }
}

/// The fixed part of each call event as reference B.4 lists it: ICM field
/// names and their sizes (UINT 4, USHORT 2).
fn b4_layout(kind: CallEventKind, version: u32) -> Vec<(&'static str, usize)> {
    use CallEventKind as K;
    let mpp = [("MonitorID", 4), ("PeripheralID", 4), ("PeripheralType", 2)];
    let conn = [("ConnectionDeviceIDType", 2), ("ConnectionCallID", 4)];
    let line = [("LineHandle", 2), ("LineType", 2)];
    let service = [("ServiceNumber", 4), ("ServiceID", 4)];
    let skill = [
        ("SkillGroupNumber", 4),
        ("SkillGroupID", 4),
        ("SkillGroupPriority", 2),
    ];
    let end = [("LocalConnectionState", 2), ("EventCause", 2)];
    let mut fields: Vec<(&'static str, usize)> = mpp.to_vec();
    let rest: Vec<(&'static str, usize)> = match kind {
        K::Delivered => [
            &conn[..],
            &line,
            &service,
            &skill,
            &[
                ("AlertingDeviceType", 2),
                ("CallingDeviceType", 2),
                ("CalledDeviceType", 2),
                ("LastRedirectDeviceType", 2),
            ],
            &end,
            &[("NumNamedVariables", 2), ("NumNamedArrays", 2)],
        ]
        .concat(),
        K::Established => [
            &conn[..],
            &line,
            &service,
            &skill,
            &[
                ("AnsweringDeviceType", 2),
                ("CallingDeviceType", 2),
                ("CalledDeviceType", 2),
                ("LastRedirectDeviceType", 2),
            ],
            &end,
        ]
        .concat(),
        K::Held => [&conn[..], &[("HoldingDeviceType", 2)], &end].concat(),
        K::Retrieved => [&conn[..], &[("RetrievingDeviceType", 2)], &end].concat(),
        K::Cleared => [&conn[..], &end].concat(),
        K::ConnectionCleared => [&conn[..], &[("ReleasingDeviceType", 2)], &end].concat(),
        K::Originated => [
            &conn[..],
            &line,
            &service,
            &skill,
            &[("CallingDeviceType", 2), ("CalledDeviceType", 2)],
            &end,
        ]
        .concat(),
        K::Failed => [
            &conn[..],
            &[("FailingDeviceType", 2), ("CalledDeviceType", 2)],
            &end,
        ]
        .concat(),
        K::Conferenced | K::Transferred => {
            let devices = if kind == K::Conferenced {
                [("ControllerDeviceType", 2), ("AddedPartyDeviceType", 2)]
            } else {
                [("TransferringDeviceType", 2), ("TransferredDeviceType", 2)]
            };
            [
                &conn[..],
                &line,
                &skill,
                &[
                    ("NumParties", 2),
                    ("SecondaryDeviceIDType", 2),
                    ("SecondaryCallID", 4),
                ],
                &devices,
                &end,
            ]
            .concat()
        }
        K::Diverted => [
            &conn[..],
            &service,
            &[("DivertingDeviceType", 2), ("CalledDeviceType", 2)],
            &end,
        ]
        .concat(),
        K::ServiceInitiated => [
            &conn[..],
            &line,
            &service,
            &skill,
            &[("CallingDeviceType", 2)],
            &end,
        ]
        .concat(),
        K::Queued => [
            &conn[..],
            &service,
            &[
                ("QueueDeviceType", 2),
                ("CallingDeviceType", 2),
                ("CalledDeviceType", 2),
                ("LastRedirectDeviceType", 2),
                ("NumQueued", 2),
                ("NumSkillGroups", 2),
            ],
            &end,
        ]
        .concat(),
        // UCCX: ApplicationID, reserved, QueueDeviceType, NumQueued, NumCSQs.
        K::Dequeued if version < 20 => [
            &conn[..],
            &service,
            &[
                ("QueueDeviceType", 2),
                ("NumQueued", 2),
                ("NumSkillGroups", 2),
            ],
            &end,
        ]
        .concat(),
        // ICM PV17: QueueDeviceType before ServiceNumber, ServiceID.
        K::Dequeued => [
            &conn[..],
            &[("QueueDeviceType", 2)],
            &service,
            &[("NumQueued", 2), ("NumSkillGroups", 2)],
            &end,
        ]
        .concat(),
        K::BeginCall => [
            ("NumCTIClients", 2),
            ("NumNamedVariables", 2),
            ("NumNamedArrays", 2),
            ("CallType", 2),
            conn[0],
            conn[1],
            ("CalledPartyDisposition", 2),
        ]
        .to_vec(),
        K::EndCall => conn.to_vec(),
        K::CallDataUpdate => [
            ("NumCTIClients", 2),
            ("NumNamedVariables", 2),
            ("NumNamedArrays", 2),
            ("CallType", 2),
            conn[0],
            conn[1],
            ("NewConnectionDeviceIDType", 2),
            ("NewConnectionCallID", 4),
            ("CalledPartyDisposition", 2),
            ("CampaignID", 4),
            ("QueryRuleID", 4),
        ]
        .to_vec(),
    };
    fields.extend(rest);
    fields
}

/// Sets the field `name` of reference B.4 in `event`.
fn set(event: &mut CallEvent, name: &str, v: u32) {
    let short = v as u16;
    let device = |role| (role, short);
    match name {
        "MonitorID" => event.monitor_id = v,
        "PeripheralID" => event.peripheral_id = v,
        "PeripheralType" => event.peripheral_type = short,
        "ConnectionDeviceIDType" => event.connection_device_id_type = short,
        "ConnectionCallID" => event.connection_call_id = v,
        "LineHandle" => event.line_handle = Some(short),
        "LineType" => event.line_type = Some(short),
        "ServiceNumber" => event.service_number = Some(v),
        "ServiceID" => event.service_id = Some(v),
        "SkillGroupNumber" => event.skill_group_number = Some(v),
        "SkillGroupID" => event.skill_group_id = Some(v),
        "SkillGroupPriority" => event.skill_group_priority = Some(short),
        "AlertingDeviceType" => event.device_types.push(device(DeviceRole::Alerting)),
        "CallingDeviceType" => event.device_types.push(device(DeviceRole::Calling)),
        "CalledDeviceType" => event.device_types.push(device(DeviceRole::Called)),
        "LastRedirectDeviceType" => event.device_types.push(device(DeviceRole::LastRedirect)),
        "AnsweringDeviceType" => event.device_types.push(device(DeviceRole::Answering)),
        "HoldingDeviceType" => event.device_types.push(device(DeviceRole::Holding)),
        "RetrievingDeviceType" => event.device_types.push(device(DeviceRole::Retrieving)),
        "ReleasingDeviceType" => event.device_types.push(device(DeviceRole::Releasing)),
        "FailingDeviceType" => event.device_types.push(device(DeviceRole::Failing)),
        "DivertingDeviceType" => event.device_types.push(device(DeviceRole::Diverting)),
        "QueueDeviceType" => event.device_types.push(device(DeviceRole::Queue)),
        "ControllerDeviceType" => event.device_types.push(device(DeviceRole::Controller)),
        "AddedPartyDeviceType" => event.device_types.push(device(DeviceRole::AddedParty)),
        "TransferringDeviceType" => event.device_types.push(device(DeviceRole::Transferring)),
        "TransferredDeviceType" => event.device_types.push(device(DeviceRole::Transferred)),
        "LocalConnectionState" => event.local_connection_state = Some(short),
        "EventCause" => event.event_cause = Some(short),
        "NumParties" => event.num_parties = Some(short),
        "SecondaryDeviceIDType" => event.secondary_device_id_type = Some(short),
        "SecondaryCallID" => event.secondary_call_id = Some(v),
        "NumQueued" => event.num_queued = Some(short),
        "NumSkillGroups" => event.num_skill_groups = Some(short),
        "NumCTIClients" => event.num_cti_clients = Some(short),
        "NumNamedVariables" => event.num_named_variables = Some(short),
        "NumNamedArrays" => event.num_named_arrays = Some(short),
        "CallType" => event.call_type = Some(short),
        "CalledPartyDisposition" => event.called_party_disposition = Some(short),
        "NewConnectionDeviceIDType" => event.new_connection_device_id_type = Some(short),
        "NewConnectionCallID" => event.new_connection_call_id = Some(v),
        "CampaignID" => event.campaign_id = Some(v),
        "QueryRuleID" => event.query_rule_id = Some(v),
        other => panic!("no field {other}"),
    }
}

/// A call event with the given fixed values in the B.4 layout and floating
/// fields; values beyond a 2-byte field's range are masked.
fn canonical_call(
    kind: CallEventKind,
    version: u32,
    values: &[u32],
    floating: Floating,
) -> CallEvent {
    let mut event = blank(kind);
    for (i, (name, size)) in b4_layout(kind, version).into_iter().enumerate() {
        let v = values.get(i).copied().unwrap_or(0);
        set(&mut event, name, if size == 2 { v & 0xFFFF } else { v });
    }
    event.floating = floating;
    event
}

#[test]
fn every_call_event_decodes_from_its_reference_table_in_both_widths() {
    for version in [UCCX, UCCE] {
        for kind in ALL_KINDS {
            let layout = b4_layout(kind, version);
            let mut body = Body::new(version);
            let mut values = Vec::new();
            // A distinct value per field, so a field read from the wrong
            // place shows.
            for (i, (_, size)) in layout.iter().enumerate() {
                let i = i as u32;
                if *size == 4 {
                    values.push(0x0A00_0000 + i);
                    body.u32(0x0A00_0000 + i);
                } else {
                    values.push(0x0100 + i);
                    body.u16(0x0100 + i as u16);
                }
            }
            body.str(tags::CONNECTION_DEVID, "9019")
                .field(tags::ROUTER_CALL_KEY_DAY, &150_000u32.to_be_bytes())
                .str(tags::CALLING_DEVID, "2005");
            let frame = body.frame(kind_message_type(kind));
            let expected = canonical_call(
                kind,
                version,
                &values,
                floating(&[
                    (tags::CONNECTION_DEVID, s("9019")),
                    (tags::ROUTER_CALL_KEY_DAY, FloatValue::U32(150_000)),
                    (tags::CALLING_DEVID, s("2005")),
                ]),
            );
            let message = decode(&frame, version)
                .unwrap_or_else(|e| panic!("{kind:?} version {version}: {e}"));
            assert_eq!(message.message_type, kind_message_type(kind));
            assert_eq!(
                call(message.clone()),
                expected,
                "{kind:?} version {version}"
            );
            assert_eq!(
                encode(&message, version),
                frame,
                "{kind:?} version {version}"
            );
        }
    }
}

/// Seed 003, "Queued and Answered Call" step 1: the trigger is alerted.
#[test]
fn uccx_call_delivered_from_the_seed_flow_table() {
    let mut body = Body::new(UCCX);
    body.u32(0)
        .u32(1)
        .u16(21) // reserved MonitorID, PeripheralID, PeripheralType
        .u16(0) // ConnectionDeviceType
        .u32(16_777_507) // CallID
        .u16(0xFFFF) // reserved LineHandle
        .u16(3) // lineType
        .u32(2) // ApplicationID
        .u32(0xFFFF_FFFF) // reserved
        .u32(0xFFFF_FFFF) // CSQID -1
        .u32(0xFFFF_FFFF) // reserved
        .u16(0) // reserved
        .u16(73)
        .u16(76)
        .u16(73)
        .u16(0xFFFF) // Alerting, Calling, Called, LastRedirected device types
        .u16(2) // LCS_ALERTING
        .u16(22) // CEC_NEW_CALL
        .u16(0)
        .u16(0) // NumNamedVars, NumNamedArrays
        .str(tags::CONNECTION_DEVID, "9019")
        .str(tags::ALERTING_DEVID, "9019")
        .str(tags::CALLING_DEVID, "2005")
        .str(tags::CALLED_DEVID, "9019")
        .str(tags::LAST_REDIRECT_DEVID, "")
        .field(tags::SECONDARY_CONNECTION_CALL_ID, &0u32.to_be_bytes())
        .str(tags::ANI, "2005")
        .str(tags::DNIS, "7000")
        .str(tags::DIALED_NUMBER, "7000");
    let event = call(decode(&body.frame(9), UCCX).unwrap());
    assert_eq!(event.kind, CallEventKind::Delivered);
    assert_eq!(event.connection_call_id, 16_777_507);
    assert_eq!(event.service_number, Some(2));
    assert_eq!(event.skill_group_number, Some(0xFFFF_FFFF));
    assert_eq!(event.line_type, Some(3));
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
    assert_eq!(event.floating.str(tags::LAST_REDIRECT_DEVID), Some(""));
    assert_eq!(
        event.floating.u32(tags::SECONDARY_CONNECTION_CALL_ID),
        Some(0)
    );
    assert_eq!(event.floating.str(tags::DNIS), Some("7000"));
}

/// Seed 003, "Transferred Call" step 3: connected parties are lists of
/// floating fields; numeric tags decode by their length.
#[test]
fn call_transferred_keeps_connected_party_lists_in_wire_order() {
    for version in [UCCX, UCCE] {
        let mut body = Body::new(version);
        body.u32(0).u32(1).u16(21);
        body.u16(0).u32(16_777_533); // Primary
        body.u16(0xFFFF).u16(3); // LineHandle, LineType
        body.u32(0xFFFF_FFFF).u32(0xFFFF_FFFF).u16(0); // skill group
        body.u16(2).u16(0).u32(16_777_535); // NumParties, Secondary
        body.u16(76).u16(76).u16(3).u16(32);
        body.str(tags::PRIMARY_DEVID, "2006")
            .str(tags::SECONDARY_DEVID, "2007");
        for party in ["2005", "2007"] {
            body.field(tags::PARTY_CALLID, &16_777_533u32.to_be_bytes())
                .field(tags::PARTY_DEVID_TYPE, &0u16.to_be_bytes())
                .str(tags::PARTY_DEVID, party);
        }
        let event = call(decode(&body.frame(18), version).unwrap());
        assert_eq!(event.connection_call_id, 16_777_533);
        assert_eq!(event.num_parties, Some(2));
        assert_eq!(event.secondary_call_id, Some(16_777_535));
        assert_eq!(
            event.device_types,
            [
                (DeviceRole::Transferring, 76),
                (DeviceRole::Transferred, 76)
            ]
        );
        assert_eq!(event.event_cause, Some(32));
        assert_eq!(
            event.floating.strs(tags::PARTY_DEVID).collect::<Vec<_>>(),
            ["2005", "2007"]
        );
        assert_eq!(
            event.floating.u32s(tags::PARTY_CALLID).collect::<Vec<_>>(),
            [16_777_533, 16_777_533]
        );
        assert_eq!(
            event.floating.fields[3],
            (tags::PARTY_DEVID_TYPE, FloatValue::U16(0))
        );
    }
}

#[test]
fn call_dequeued_layout_depends_on_the_version() {
    let mut body = Body::new(UCCX);
    body.u32(0).u32(1).u16(21).u16(0).u32(16_777_507);
    body.u32(2).u32(0xFFFF_FFFF).u16(77); // ApplicationID, reserved, QueueDeviceType
    body.u16(0).u16(0).u16(3).u16(0xFFFF);
    let frame = body.frame(86);
    let uccx = call(decode(&frame, UCCX).unwrap());
    assert_eq!(uccx.service_number, Some(2));
    assert_eq!(uccx.device_types, [(DeviceRole::Queue, 77)]);
    assert_eq!(uccx.local_connection_state, Some(3));

    // UCCE: QueueDeviceType first.
    let mut body = Body::new(UCCE);
    body.u32(0).u32(5000).u16(22).u16(1).u32(42);
    body.u16(77).u32(6001).u32(6002).u16(4).u16(1);
    body.u16(5).u16(0xFFFF);
    let ucce = call(decode(&body.frame(86), UCCE).unwrap());
    assert_eq!(ucce.device_types, [(DeviceRole::Queue, 77)]);
    assert_eq!(
        (ucce.service_number, ucce.service_id),
        (Some(6001), Some(6002))
    );
    assert_eq!((ucce.num_queued, ucce.num_skill_groups), (Some(4), Some(1)));
    assert_eq!(
        (ucce.local_connection_state, ucce.event_cause),
        (Some(5), Some(0xFFFF))
    );
    assert!(ucce.floating.fields.is_empty());
}

// ---------------------------------------------------------------------------
// AGENT_STATE_EVENT

/// UCCX agent_state_event up to NumCSQs, with the reserved values the page
/// gives, then the floating part of seed 003's flow tables and CSQ records.
fn uccx_agent_state_body() -> Body {
    let mut body = Body::new(UCCX);
    body.u32(0).u32(1).u32(0).u16(21); // reserved
    body.u16(3).u32(0).u32(1); // CSQState, StateDuration, CSQID
    body.u32(0xFFFF_FFFF).u16(0); // reserved
    body.u16(3).u16(0); // AgentState AVAILABLE, EventReasonCode
    body.u32(1).u32(0).u16(0).u32(0).u32(0).u32(1); // reserved MRDID .. availability
    body.u16(1); // NumCSQs
    body.str(tags::AGENT_EXTENSION, "2006")
        .str(tags::AGENT_ID_LONG, "agt2006")
        .field(tags::NEXT_AGENT_STATE, &0xFFFFu16.to_be_bytes())
        .field(tags::SKILL_GROUP_NUMBER, &1u32.to_be_bytes())
        .field(tags::SKILL_GROUP_ID, &0u32.to_be_bytes())
        .field(tags::SKILL_GROUP_PRIORITY, &0u16.to_be_bytes())
        .field(tags::SKILL_GROUP_STATE, &3u16.to_be_bytes());
    body
}

#[test]
fn uccx_agent_state_event_ends_at_num_csqs() {
    let message = decode(&uccx_agent_state_body().frame(30), UCCX).unwrap();
    let CtiBody::AgentState(event) = message.body else {
        panic!("not an agent state event");
    };
    assert_eq!(event.agent_state, 3);
    assert_eq!(event.skill_group_state, 3);
    assert_eq!(event.skill_group_number, 1);
    assert_eq!(event.mrd_id, Some(1));
    assert_eq!(event.agent_availability_status, Some(1));
    assert_eq!(event.num_flt_skill_groups, Some(1));
    assert_eq!(event.department_id, None);
    assert_eq!(event.floating.str(tags::AGENT_ID_LONG), Some("agt2006"));
    assert_eq!(event.floating.u32(tags::NEXT_AGENT_STATE), Some(0xFFFF));
    assert_eq!(event.floating.u32(tags::SKILL_GROUP_NUMBER), Some(1));
    assert_eq!(event.floating.u32(tags::SKILL_GROUP_STATE), Some(3));
}

/// The fixed part is read whole: floating fields follow it, so a body that
/// stops inside it is an error naming the field, not a shorter event.
#[test]
fn agent_state_event_that_ends_inside_its_fixed_part_is_an_error() {
    for version in [UCCX, UCCE] {
        let mut body = Body::new(version);
        body.u32(0).u32(5000).u32(77).u16(22);
        body.u16(4).u32(12).u32(3001).u32(3002).u16(1);
        body.u16(4).u16(0);
        body.u32(1).u32(2);
        body.bytes.push(0);
        let e = decode(&body.frame(30), version).unwrap_err();
        assert_eq!(e.message, "AGENT_STATE_EVENT");
        assert_eq!(e.offset, 42);
        assert_eq!(
            e.reason,
            "the body ends inside the fixed field AgentMode (2 bytes needed, 1 left)"
        );
    }
}

#[test]
fn ucce_agent_state_event_has_a_department_id() {
    let mut body = Body::new(UCCE);
    body.u32(9).u32(5000).u32(77).u16(22);
    body.u16(4).u32(12).u32(3001).u32(3002).u16(1);
    body.u16(4).u16(0);
    body.u32(1).u32(1).u16(0).u32(1).u32(5001).u32(0).u16(0);
    body.u32(0xFFFF_FFFF); // DepartmentID -1
    body.str(tags::AGENT_ID, "1001");
    let CtiBody::AgentState(event) = decode(&body.frame(30), UCCE).unwrap().body else {
        panic!("not an agent state event");
    };
    assert_eq!(event.icm_agent_id, Some(5001));
    assert_eq!(event.num_flt_skill_groups, Some(0));
    assert_eq!(event.department_id, Some(-1));
    assert_eq!(event.floating.str(tags::AGENT_ID), Some("1001"));
}

// ---------------------------------------------------------------------------
// Session messages and system events (reference B.3)

#[test]
fn session_messages_decode_in_both_widths() {
    for version in [UCCX, UCCE] {
        let mut body = Body::new(version);
        body.u32(7).u32(92).str(tags::TEXT, "not master");
        assert_eq!(
            decode(&body.frame(1), version).unwrap().body,
            CtiBody::FailureConf {
                invoke_id: 7,
                status: STATUS_NOT_MASTER,
                text: Some("not master".to_owned())
            }
        );
        let mut body = Body::new(version);
        body.u32(17);
        assert_eq!(
            decode(&body.frame(2), version).unwrap().body,
            CtiBody::FailureEvent {
                status: 17,
                text: None
            }
        );
        for (message_type, expected) in [
            (
                5,
                CtiBody::HeartbeatReq {
                    invoke_id: 0x0102_0304,
                },
            ),
            (
                6,
                CtiBody::HeartbeatConf {
                    invoke_id: 0x0102_0304,
                },
            ),
            (
                8,
                CtiBody::CloseConf {
                    invoke_id: 0x0102_0304,
                },
            ),
        ] {
            let mut body = Body::new(version);
            body.u32(0x0102_0304);
            let frame = body.frame(message_type);
            assert_eq!(frame.len(), 12, "12 bytes with the header");
            assert_eq!(decode(&frame, version).unwrap().body, expected);
        }
        let mut body = Body::new(version);
        body.u32(3).u32(37);
        assert_eq!(
            decode(&body.frame(7), version).unwrap().body,
            CtiBody::CloseReq {
                invoke_id: 3,
                status: 37
            }
        );

        let mut body = Body::new(version);
        body.u32(0)
            .u32(1_700_000_000)
            .u32(4)
            .u32(1)
            .u32(2)
            .u32(3)
            .u16(0xFFFF);
        body.str(tags::TEXT, "peripheral offline");
        assert_eq!(
            decode(&body.frame(31), version).unwrap().body,
            CtiBody::SystemEvent(SystemEvent {
                pg_status: 0,
                central_controller_time: 1_700_000_000,
                system_event_id: system_event::PERIPHERAL_OFFLINE,
                args: [1, 2, 3],
                event_device_type: 0xFFFF,
                floating: floating(&[(tags::TEXT, s("peripheral offline"))]),
            })
        );
    }
}

#[test]
fn open_req_sends_client_id_and_password_first_even_when_the_password_is_empty() {
    let req = OpenReq {
        invoke_id: 1,
        version: UCCX,
        idle_timeout: 120,
        peripheral_id: 0,
        services_requested: SERVICE_ALL_EVENTS,
        call_msg_mask: CALL_MSG_MASK_ALL,
        agent_state_mask: AGENT_STATE_MASK_ALL,
        config_msg_mask: 0,
        client_id: "cdrhub".to_owned(),
        client_password: String::new(),
        floating: floating(&[(tags::AGENT_ID_LONG, s("agt2006"))]),
    };
    let message = CtiMessage {
        message_type: message_type::OPEN_REQ,
        body: CtiBody::OpenReq(req),
    };
    let mut body = Body::new(UCCX);
    body.u32(1)
        .u32(UCCX)
        .u32(120)
        .u32(0)
        .u32(0x10)
        .u32(0x007F_FFFF);
    body.u32(0x3FF).u32(0).u32(0).u32(0).u32(0);
    body.str(tags::CLIENT_ID, "cdrhub")
        .field(tags::CLIENT_PASSWORD, b"")
        .str(tags::AGENT_ID_LONG, "agt2006");
    let frame = body.frame(3);
    assert_eq!(encode(&message, UCCX), frame);
    assert_eq!(decode(&frame, UCCX).unwrap(), message);
}

#[test]
fn open_req_decodes_in_the_wide_width() {
    let mut body = Body::new(UCCE);
    body.u32(0x0403_0201)
        .u32(UCCE)
        .u32(0xFFFF_FFFF)
        .u32(5000)
        .u32(0x10);
    body.u32(0x6000).u32(0x208).u32(0).u32(0).u32(0).u32(0);
    body.str(tags::CLIENT_ID, "ClientID")
        .field(tags::CLIENT_PASSWORD, b"secret")
        .str(tags::CLIENT_SIGNATURE, "cdrhub")
        .field(tags::APP_PATH_ID, &0x0304_0506u32.to_be_bytes());
    let CtiBody::OpenReq(req) = decode(&body.frame(3), UCCE).unwrap().body else {
        panic!("not an OPEN_REQ");
    };
    assert_eq!(req.idle_timeout, 0xFFFF_FFFF);
    assert_eq!(req.peripheral_id, 5000);
    assert_eq!((req.call_msg_mask, req.agent_state_mask), (0x6000, 0x208));
    assert_eq!(req.client_id, "ClientID");
    assert_eq!(req.client_password, "secret");
    assert_eq!(
        req.floating,
        floating(&[
            (tags::CLIENT_SIGNATURE, s("cdrhub")),
            (tags::APP_PATH_ID, FloatValue::U32(0x0304_0506))
        ])
    );
}

#[test]
fn open_conf_has_a_department_id_from_version_19() {
    let conf_body = |version| {
        let mut body = Body::new(version);
        body.u32(1).u32(0x10).u32(0).u32(0).u32(1_700_000_000);
        body.u16(1).u16(21).u16(3);
        body
    };
    let mut body = conf_body(UCCX);
    body.field(tags::NUM_PERIPHERALS, &1u16.to_be_bytes());
    let CtiBody::OpenConf(conf) = decode(&body.frame(4), UCCX).unwrap().body else {
        panic!("not an OPEN_CONF");
    };
    assert!(conf.peripheral_online);
    assert_eq!((conf.peripheral_type, conf.agent_state), (21, 3));
    assert_eq!(conf.department_id, None);
    assert_eq!(conf.floating.u32(tags::NUM_PERIPHERALS), Some(1));

    let mut body = conf_body(UCCE);
    body.u32(12);
    let CtiBody::OpenConf(conf) = decode(&body.frame(4), UCCE).unwrap().body else {
        panic!("not an OPEN_CONF");
    };
    assert_eq!(conf.department_id, Some(12));

    // From version 19 the fixed part has it: a body without it is refused.
    let e = decode(&conf_body(UCCE).frame(4), UCCE).unwrap_err();
    assert_eq!(e.message, "OPEN_CONF");
}

// ---------------------------------------------------------------------------
// Skipping and keeping what cdrhub does not know

#[test]
fn unknown_and_reserved_message_types_are_skipped_by_their_length() {
    for (message_type, name) in [
        (22u32, "CALL_TRANSLATION_ROUTE_EVENT"),
        (35, "CONTROL_FAILURE_CONF"),
        (230, "MESSAGE_TYPE_230"),
        (9999, "MESSAGE_TYPE_9999"),
    ] {
        let mut frame = 5u32.to_be_bytes().to_vec();
        frame.extend_from_slice(&message_type.to_be_bytes());
        frame.extend_from_slice(&[0xFF, 1, 2, 3, 4]);
        let message = decode(&frame, UCCX).unwrap();
        assert_eq!(message.message_type, message_type);
        assert_eq!(message.body, CtiBody::Other { body_len: 5 });
        assert_eq!(message_type_name(message_type), name);
    }
}

#[test]
fn unknown_floating_tags_are_kept_as_bytes_in_wire_order() {
    let mut body = Body::new(UCCX);
    body.u32(0).u32(1).u16(21).u16(0).u32(42);
    body.field(250, &[1, 2, 3])
        .str(tags::CONNECTION_DEVID, "2005")
        .field(tags::UUI, &[0, 9, 8]);
    let event = call(decode(&body.frame(24), UCCX).unwrap());
    assert_eq!(
        event.floating,
        floating(&[
            (250, FloatValue::Bytes(vec![1, 2, 3])),
            (tags::CONNECTION_DEVID, s("2005")),
            (tags::UUI, FloatValue::Bytes(vec![0, 9, 8])),
        ])
    );

    let mut body = Body::new(UCCE);
    body.u32(0).u32(1).u16(22).u16(0).u32(42);
    body.field(4000, b"media").field(tags::DURATION, &[0, 7]);
    let event = call(decode(&body.frame(24), UCCE).unwrap());
    assert_eq!(
        event.floating,
        floating(&[
            (4000, FloatValue::Bytes(b"media".to_vec())),
            (tags::DURATION, FloatValue::U16(7)),
        ])
    );
}

#[test]
fn floating_values_follow_their_tags_type() {
    let mut body = Body::new(UCCX);
    body.u32(0).u32(1).u16(21).u16(0).u32(42);
    body.field(tags::ANI, b"2005") // no NUL: accepted as is
        .field(tags::DNIS, b"70\xff0\0") // invalid UTF-8 replaced
        .field(tags::TRUNK_NUMBER, &[0, 0, 0, 9])
        .field(tags::TRUNK_GROUP_NUMBER, &[1, 2, 3]) // odd length: bytes
        .field(tags::NAMED_VARIABLE, b"user.layout\0OODefault\0")
        .field(tags::NAMED_ARRAY, b"\x02arr\0val\0")
        .field(tags::NAMED_VARIABLE, b"no-nul") // no name terminator: bytes
        .field(tags::UCCX_APPLICATION_ID, &[0, 0, 0, 2]);
    let event = call(decode(&body.frame(24), UCCX).unwrap());
    assert_eq!(
        event.floating.fields,
        [
            (tags::ANI, s("2005")),
            (tags::DNIS, s("70\u{fffd}0")),
            (tags::TRUNK_NUMBER, FloatValue::U32(9)),
            (tags::TRUNK_GROUP_NUMBER, FloatValue::Bytes(vec![1, 2, 3])),
            (
                tags::NAMED_VARIABLE,
                FloatValue::NamedVar {
                    name: "user.layout".to_owned(),
                    value: "OODefault".to_owned()
                }
            ),
            (
                tags::NAMED_ARRAY,
                FloatValue::NamedArray {
                    index: 2,
                    name: "arr".to_owned(),
                    value: "val".to_owned()
                }
            ),
            (tags::NAMED_VARIABLE, FloatValue::Bytes(b"no-nul".to_vec())),
            (tags::UCCX_APPLICATION_ID, FloatValue::U32(2)),
        ]
    );
    assert_eq!(
        event.floating.named_variable("user.layout"),
        Some("OODefault")
    );
    // Tag 77 is UCCX's ApplicationID below version 20, ICM's
    // AUTHORIZATION_CODE string from 20 on.
    assert_eq!(field_type(77, UCCX), FieldType::Numeric);
    assert_eq!(field_type(77, UCCE), FieldType::Str);
}

// ---------------------------------------------------------------------------
// Framing and errors

#[test]
fn frame_len_waits_for_the_header_and_refuses_oversized_frames() {
    assert_eq!(frame_len(&[]), Ok(None));
    assert_eq!(frame_len(&[0, 0, 0, 4, 0, 0, 0]), Ok(None));
    assert_eq!(frame_len(&[0, 0, 0, 4, 0, 0, 0, 5]), Ok(Some(12)));
    assert_eq!(frame_len(&[0, 0, 0, 4, 0, 0, 0, 5, 9, 9]), Ok(Some(12)));
    let max_body = (MAX_FRAME_LEN - HEADER_LEN) as u32;
    let mut header = max_body.to_be_bytes().to_vec();
    header.extend_from_slice(&23u32.to_be_bytes());
    assert_eq!(frame_len(&header), Ok(Some(MAX_FRAME_LEN)));
    header[..4].copy_from_slice(&(max_body + 1).to_be_bytes());
    let e = frame_len(&header).unwrap_err();
    assert_eq!(
        e.to_string(),
        "BEGIN_CALL_EVENT: the header claims a 12493-byte body, more than the 12492 bytes a \
         frame may carry after its header at body offset 0"
    );
    header[..4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(frame_len(&header).is_err());
}

#[test]
fn malformed_frames_are_errors_naming_the_message_type_and_offset() {
    let e = decode(&[0, 0, 0, 0, 0, 0], UCCX).unwrap_err();
    assert_eq!(
        e.to_string(),
        "frame header: the frame has 6 bytes, fewer than the 8-byte header at body offset 0"
    );

    // A fixed part longer than the body.
    let mut body = Body::new(UCCX);
    body.u32(0).u32(1).u16(21).u16(0).u16(0);
    let e = decode(&body.frame(13), UCCX).unwrap_err();
    assert_eq!(
        e.to_string(),
        "CALL_CLEARED_EVENT: the body ends inside the fixed field ConnectionCallID (4 bytes \
         needed, 2 left) at body offset 12"
    );

    // A floating field header cut in two (wide: 4 bytes).
    let mut body = Body::new(UCCE);
    body.u32(1);
    body.bytes.extend_from_slice(&[0, 7, 0]);
    let e = decode(&body.frame(5), UCCE).unwrap_err();
    assert_eq!(e.message, "HEARTBEAT_REQ");
    assert_eq!(e.offset, 4);
    assert_eq!(
        e.reason,
        "the body ends inside a floating field's tag and length (4 bytes needed, 3 left)"
    );

    // A body longer than the header says.
    let mut frame = Body::new(UCCX).u32(1).frame(5);
    frame.push(0);
    let e = decode(&frame, UCCX).unwrap_err();
    assert_eq!(e.message, "HEARTBEAT_REQ");
    assert_eq!(
        e.reason,
        "the header gives a 4-byte body but the frame holds 5 bytes"
    );
}

// ---------------------------------------------------------------------------
// Property tests

fn versions() -> impl Strategy<Value = u32> {
    prop_oneof![Just(UCCX), Just(19u32), Just(20u32), Just(UCCE)]
}

/// A string the protocol can carry: no NUL (a STRING ends at its first).
fn text() -> impl Strategy<Value = String> {
    "[^\\x00]{0,12}"
}

/// A floating field whose value has the type its tag has in `version`,
/// so that it decodes to itself.
fn float_field(version: u32) -> impl Strategy<Value = (u16, FloatValue)> {
    let tag = if version >= 20 {
        prop_oneof![0..=255u16, any::<u16>()].boxed()
    } else {
        (0..=255u16).boxed()
    };
    (
        tag,
        any::<bool>(),
        any::<u32>(),
        text(),
        text(),
        any::<u8>(),
        vec(any::<u8>(), 0..24),
    )
        .prop_map(move |(tag, wide, n, a, b, index, bytes)| {
            let value = match field_type(tag, version) {
                FieldType::Str => FloatValue::Str(a),
                FieldType::Numeric if wide => FloatValue::U32(n),
                FieldType::Numeric => FloatValue::U16(n as u16),
                FieldType::NamedVariable => FloatValue::NamedVar { name: a, value: b },
                FieldType::NamedArray => FloatValue::NamedArray {
                    index,
                    name: a,
                    value: b,
                },
                FieldType::Bytes => FloatValue::Bytes(bytes),
            };
            (tag, value)
        })
}

fn floating_part(version: u32) -> impl Strategy<Value = Floating> {
    vec(float_field(version), 0..8).prop_map(|fields| Floating { fields })
}

fn call_message(version: u32) -> impl Strategy<Value = CtiMessage> {
    (
        proptest::sample::select(ALL_KINDS.to_vec()),
        vec(any::<u32>(), 20),
        floating_part(version),
    )
        .prop_map(move |(kind, values, floating)| CtiMessage {
            message_type: kind_message_type(kind),
            body: CtiBody::Call(Box::new(canonical_call(kind, version, &values, floating))),
        })
}

fn agent_state_message(version: u32) -> impl Strategy<Value = CtiMessage> {
    (
        (
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u16>(),
            any::<u16>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u16>(),
            any::<u16>(),
            any::<u16>(),
        ),
        (
            any::<i32>(),
            any::<u32>(),
            any::<u16>(),
            any::<u32>(),
            any::<i32>(),
            any::<u32>(),
            any::<u16>(),
            any::<i32>(),
        ),
        proptest::option::of(0..8usize),
        floating_part(version),
    )
        .prop_map(move |(fixed, trailing, _, floating)| {
            let event = AgentStateEvent {
                monitor_id: fixed.0,
                peripheral_id: fixed.1,
                session_id: fixed.2,
                peripheral_type: fixed.3,
                skill_group_state: fixed.4,
                state_duration: fixed.5,
                skill_group_number: fixed.6,
                skill_group_id: fixed.7,
                skill_group_priority: fixed.8,
                agent_state: fixed.9,
                event_reason_code: fixed.10,
                mrd_id: Some(trailing.0),
                num_tasks: Some(trailing.1),
                agent_mode: Some(trailing.2),
                max_task_limit: Some(trailing.3),
                icm_agent_id: Some(trailing.4),
                agent_availability_status: Some(trailing.5),
                num_flt_skill_groups: Some(trailing.6),
                department_id: (version >= 19).then_some(trailing.7),
                floating,
            };
            CtiMessage {
                message_type: message_type::AGENT_STATE_EVENT,
                body: CtiBody::AgentState(Box::new(event)),
            }
        })
}

fn session_message(version: u32) -> impl Strategy<Value = CtiMessage> {
    let failure_conf = (any::<u32>(), any::<u32>(), proptest::option::of(text())).prop_map(
        |(invoke_id, status, text)| {
            (
                1,
                CtiBody::FailureConf {
                    invoke_id,
                    status,
                    text,
                },
            )
        },
    );
    let failure_event = (any::<u32>(), proptest::option::of(text()))
        .prop_map(|(status, text)| (2, CtiBody::FailureEvent { status, text }));
    let open_req = (vec(any::<u32>(), 8), text(), text(), floating_part(version)).prop_map(
        |(n, client_id, client_password, floating)| {
            (
                3,
                CtiBody::OpenReq(OpenReq {
                    invoke_id: n[0],
                    version: n[1],
                    idle_timeout: n[2],
                    peripheral_id: n[3],
                    services_requested: n[4],
                    call_msg_mask: n[5],
                    agent_state_mask: n[6],
                    config_msg_mask: n[7],
                    client_id,
                    client_password,
                    floating,
                }),
            )
        },
    );
    let open_conf = (
        vec(any::<u32>(), 5),
        any::<bool>(),
        any::<u16>(),
        any::<u16>(),
        any::<i32>(),
        floating_part(version),
    )
        .prop_map(
            move |(n, online, peripheral_type, agent_state, dept, floating)| {
                (
                    4,
                    CtiBody::OpenConf(OpenConf {
                        invoke_id: n[0],
                        services_granted: n[1],
                        monitor_id: n[2],
                        pg_status: n[3],
                        central_controller_time: n[4],
                        peripheral_online: online,
                        peripheral_type,
                        agent_state,
                        department_id: (version >= 19).then_some(dept),
                        floating,
                    }),
                )
            },
        );
    let small = (0..4u32, any::<u32>(), any::<u32>()).prop_map(|(which, a, b)| match which {
        0 => (5, CtiBody::HeartbeatReq { invoke_id: a }),
        1 => (6, CtiBody::HeartbeatConf { invoke_id: a }),
        2 => (
            7,
            CtiBody::CloseReq {
                invoke_id: a,
                status: b,
            },
        ),
        _ => (8, CtiBody::CloseConf { invoke_id: a }),
    });
    let system = (vec(any::<u32>(), 6), any::<u16>(), floating_part(version)).prop_map(
        |(n, event_device_type, floating)| {
            (
                31,
                CtiBody::SystemEvent(SystemEvent {
                    pg_status: n[0],
                    central_controller_time: n[1],
                    system_event_id: n[2],
                    args: [n[3], n[4], n[5]],
                    event_device_type,
                    floating,
                }),
            )
        },
    );
    let other = (
        proptest::sample::select(vec![22u32, 26, 35, 37, 99, 230, 9999, u32::MAX]),
        0..64usize,
    )
        .prop_map(|(message_type, body_len)| (message_type, CtiBody::Other { body_len }));
    prop_oneof![
        failure_conf,
        failure_event,
        open_req,
        open_conf,
        small,
        system,
        other
    ]
    .prop_map(|(message_type, body)| CtiMessage { message_type, body })
}

fn any_message() -> impl Strategy<Value = (u32, CtiMessage)> {
    versions().prop_flat_map(|version| {
        (
            Just(version),
            prop_oneof![
                call_message(version),
                agent_state_message(version),
                session_message(version)
            ],
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// decode reads exactly what encode writes, for every body kind and
    /// both widths, and the frame's header gives its length.
    #[test]
    fn encode_then_decode_gives_the_message_back((version, message) in any_message()) {
        let frame = encode(&message, version);
        prop_assert_eq!(frame_len(&frame), Ok(Some(frame.len())));
        let decoded = decode(&frame, version);
        prop_assert_eq!(decoded, Ok(message));
    }

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(
        bytes in vec(any::<u8>(), 0..160),
        version in versions(),
    ) {
        let _ = frame_len(&bytes);
        let _ = decode(&bytes, version);
    }

    /// Arbitrary bodies behind a header that agrees with them, so that the
    /// body decoders run on garbage.
    #[test]
    fn decode_never_panics_on_arbitrary_bodies(
        message_type in prop_oneof![1..=31u32, Just(86u32), any::<u32>()],
        body in vec(any::<u8>(), 0..160),
        version in versions(),
    ) {
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&message_type.to_be_bytes());
        frame.extend_from_slice(&body);
        if let Err(e) = decode(&frame, version) {
            prop_assert!(e.offset <= body.len());
            prop_assert_eq!(e.message, message_type_name(message_type));
        }
    }

    /// Every truncation of a valid frame is an error; with its header made to
    /// agree, it decodes or fails without panicking.
    #[test]
    fn truncated_frames_are_errors_not_panics((version, message) in any_message()) {
        let frame = encode(&message, version);
        for cut in 0..frame.len() {
            prop_assert!(decode(&frame[..cut], version).is_err());
            if cut >= HEADER_LEN {
                let mut short = frame[..cut].to_vec();
                short[..4].copy_from_slice(&((cut - HEADER_LEN) as u32).to_be_bytes());
                let _ = decode(&short, version);
            }
        }
    }
}
