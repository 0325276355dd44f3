//! Frames to messages and back (reference B.1–B.5).
//!
//! A body is read with a cursor that checks every length before it reads:
//! the fixed part by the layout of the message type, then floating fields
//! until the body ends. Nothing is read past the body and nothing panics;
//! a body whose lengths do not add up is a [`CtiError`] naming the message
//! type and the body offset.
//!
//! Layouts follow reference B.3/B.4 (the ICM field order, which the Unified
//! CCX pages repeat with "reserved" in place of the fields UCCX does not
//! use). Where UCCX (version < 20) and UCCE (version >= 20) disagree, the
//! version picks the layout; see [`call_layout`] and [`decode_agent_state`].

use super::tags::{self, FieldType};
use super::*;
use std::borrow::Cow;

/// The whole frame's length (header included) once `buf` holds its
/// header; an error when the header claims more than `MAX_FRAME_LEN`.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, CtiError> {
    let Some((body_len, message_type)) = header(buf) else {
        return Ok(None);
    };
    match HEADER_LEN.checked_add(body_len) {
        Some(len) if len <= MAX_FRAME_LEN => Ok(Some(len)),
        _ => Err(CtiError {
            message: message_type_name(message_type).into_owned(),
            offset: 0,
            reason: format!(
                "the header claims a {body_len}-byte body, more than the {} bytes a frame may \
                 carry after its header",
                MAX_FRAME_LEN - HEADER_LEN
            ),
        }),
    }
}

/// Decodes one whole frame (header and body) of protocol `version`.
pub fn decode(frame: &[u8], version: u32) -> Result<CtiMessage, CtiError> {
    let Some((body_len, message_type)) = header(frame) else {
        return Err(CtiError {
            message: "frame header".to_owned(),
            offset: 0,
            reason: format!(
                "the frame has {} bytes, fewer than the {HEADER_LEN}-byte header",
                frame.len()
            ),
        });
    };
    let body = frame.get(HEADER_LEN..).unwrap_or_default();
    let mut r = Reader {
        body,
        pos: 0,
        message_type,
        version,
    };
    if body_len != body.len() {
        return Err(r.fail(
            body_len.min(body.len()),
            format!(
                "the header gives a {body_len}-byte body but the frame holds {} bytes",
                body.len()
            ),
        ));
    }
    let body = decode_body(&mut r)?;
    Ok(CtiMessage { message_type, body })
}

/// Encodes a message as one frame (header and body) of protocol `version`,
/// in the floating-field width of that version.
///
/// The header's message type comes from the body (a [`CallEvent`]'s kind,
/// the session message of the variant); only [`CtiBody::Other`] takes
/// `message.message_type`, and sends `body_len` zero bytes. Fixed fields the
/// layout has but the message leaves `None` are sent as 0 (device types,
/// LocalConnectionState and EventCause as 0xFFFF, "none"), except optional
/// trailing fields (AGENT_STATE_EVENT from MRDID on, DepartmentID, UCCE
/// DEQUEUED's LocalConnectionState and EventCause), which end the fixed part
/// at the first `None`. A floating field the width cannot carry is cut to fit
/// (255 data bytes narrow, 65535 wide; a string keeps its NUL), and a tag
/// above 255 is left out in the narrow width.
pub fn encode(message: &CtiMessage, version: u32) -> Vec<u8> {
    let mut w = Writer {
        out: Vec::with_capacity(128),
        width: FieldWidth::for_version(version),
    };
    w.out.extend_from_slice(&[0; HEADER_LEN]);
    let message_type = match &message.body {
        CtiBody::FailureConf {
            invoke_id,
            status,
            text,
        } => {
            w.u32(*invoke_id);
            w.u32(*status);
            if let Some(text) = text {
                w.float_str(tags::TEXT, text);
            }
            message_type::FAILURE_CONF
        }
        CtiBody::FailureEvent { status, text } => {
            w.u32(*status);
            if let Some(text) = text {
                w.float_str(tags::TEXT, text);
            }
            message_type::FAILURE_EVENT
        }
        CtiBody::OpenReq(req) => {
            for n in [
                req.invoke_id,
                req.version,
                req.idle_timeout,
                req.peripheral_id,
                req.services_requested,
                req.call_msg_mask,
                req.agent_state_mask,
                req.config_msg_mask,
                0, // Reserved1..3
                0,
                0,
            ] {
                w.u32(n);
            }
            w.float_str(tags::CLIENT_ID, &req.client_id);
            w.float_bytes(tags::CLIENT_PASSWORD, req.client_password.as_bytes());
            w.floating(&req.floating);
            message_type::OPEN_REQ
        }
        CtiBody::OpenConf(conf) => {
            w.u32(conf.invoke_id);
            w.u32(conf.services_granted);
            w.u32(conf.monitor_id);
            w.u32(conf.pg_status);
            w.u32(conf.central_controller_time);
            w.u16(u16::from(conf.peripheral_online));
            w.u16(conf.peripheral_type);
            w.u16(conf.agent_state);
            if version >= 19 {
                w.i32(conf.department_id.unwrap_or(0));
            }
            w.floating(&conf.floating);
            message_type::OPEN_CONF
        }
        CtiBody::HeartbeatReq { invoke_id } => {
            w.u32(*invoke_id);
            message_type::HEARTBEAT_REQ
        }
        CtiBody::HeartbeatConf { invoke_id } => {
            w.u32(*invoke_id);
            message_type::HEARTBEAT_CONF
        }
        CtiBody::CloseReq { invoke_id, status } => {
            w.u32(*invoke_id);
            w.u32(*status);
            message_type::CLOSE_REQ
        }
        CtiBody::CloseConf { invoke_id } => {
            w.u32(*invoke_id);
            message_type::CLOSE_CONF
        }
        CtiBody::Call(event) => {
            let layout = call_layout(event.kind, version);
            for &field in layout.fields {
                let value = get_fixed(event, field);
                let value = value.unwrap_or_else(|| field.absent_value());
                if field.size() == 4 {
                    w.u32(value);
                } else {
                    // A 2-byte field's value came from a u16.
                    w.u16(value as u16);
                }
            }
            w.floating(&event.floating);
            call_message_type(event.kind)
        }
        CtiBody::AgentState(event) => {
            encode_agent_state(&mut w, event, version);
            message_type::AGENT_STATE_EVENT
        }
        CtiBody::SystemEvent(event) => {
            w.u32(event.pg_status);
            w.u32(event.central_controller_time);
            w.u32(event.system_event_id);
            for arg in event.args {
                w.u32(arg);
            }
            w.u16(event.event_device_type);
            w.floating(&event.floating);
            message_type::SYSTEM_EVENT
        }
        CtiBody::Other { body_len } => {
            w.out.resize(HEADER_LEN.saturating_add(*body_len), 0);
            message.message_type
        }
    };
    let body_len = u32::try_from(w.out.len() - HEADER_LEN).unwrap_or(u32::MAX);
    let mut out = w.out;
    out[..4].copy_from_slice(&body_len.to_be_bytes());
    out[4..HEADER_LEN].copy_from_slice(&message_type.to_be_bytes());
    out
}

/// Message type names as the vendor documents spell them (reference B.2).
const MESSAGE_TYPE_NAMES: &[(u32, &str)] = &[
    (1, "FAILURE_CONF"),
    (2, "FAILURE_EVENT"),
    (3, "OPEN_REQ"),
    (4, "OPEN_CONF"),
    (5, "HEARTBEAT_REQ"),
    (6, "HEARTBEAT_CONF"),
    (7, "CLOSE_REQ"),
    (8, "CLOSE_CONF"),
    (9, "CALL_DELIVERED_EVENT"),
    (10, "CALL_ESTABLISHED_EVENT"),
    (11, "CALL_HELD_EVENT"),
    (12, "CALL_RETRIEVED_EVENT"),
    (13, "CALL_CLEARED_EVENT"),
    (14, "CALL_CONNECTION_CLEARED_EVENT"),
    (15, "CALL_ORIGINATED_EVENT"),
    (16, "CALL_FAILED_EVENT"),
    (17, "CALL_CONFERENCED_EVENT"),
    (18, "CALL_TRANSFERRED_EVENT"),
    (19, "CALL_DIVERTED_EVENT"),
    (20, "CALL_SERVICE_INITIATED_EVENT"),
    (21, "CALL_QUEUED_EVENT"),
    (22, "CALL_TRANSLATION_ROUTE_EVENT"),
    (23, "BEGIN_CALL_EVENT"),
    (24, "END_CALL_EVENT"),
    (25, "CALL_DATA_UPDATE_EVENT"),
    (26, "SET_CALL_DATA_REQ"),
    (27, "SET_CALL_DATA_CONF"),
    (28, "RELEASE_CALL_REQ"),
    (29, "RELEASE_CALL_CONF"),
    (30, "AGENT_STATE_EVENT"),
    (31, "SYSTEM_EVENT"),
    (32, "CLIENT_EVENT_REPORT_REQ"),
    (33, "CLIENT_EVENT_REPORT_CONF"),
    (34, "CALL_REACHED_NETWORK_EVENT"),
    (35, "CONTROL_FAILURE_CONF"),
    (36, "QUERY_AGENT_STATE_REQ"),
    (37, "QUERY_AGENT_STATE_CONF"),
    (38, "SET_AGENT_STATE_REQ"),
    (39, "SET_AGENT_STATE_CONF"),
    (78, "QUERY_DEVICE_INFO_REQ"),
    (79, "QUERY_DEVICE_INFO_CONF"),
    (82, "SNAPSHOT_CALL_REQ"),
    (83, "SNAPSHOT_CALL_CONF"),
    (84, "SNAPSHOT_DEVICE_REQ"),
    (85, "SNAPSHOT_DEVICE_CONF"),
    (86, "CALL_DEQUEUED_EVENT"),
    (91, "SEND_DTMF_SIGNAL_REQ"),
    (92, "SEND_DTMF_SIGNAL_CONF"),
    (93, "MONITOR_START_REQ"),
    (94, "MONITOR_START_CONF"),
    (95, "MONITOR_STOP_REQ"),
    (96, "MONITOR_STOP_CONF"),
    (97, "CHANGE_MONITOR_MASK_REQ"),
    (98, "CHANGE_MONITOR_MASK_CONF"),
    (99, "CLIENT_SESSION_OPENED_EVENT"),
    (100, "CLIENT_SESSION_CLOSED_EVENT"),
    (105, "AGENT_PRE_CALL_EVENT"),
    (106, "AGENT_PRE_CALL_ABORT_EVENT"),
    (116, "RTP_STARTED_EVENT"),
    (117, "RTP_STOPPED_EVENT"),
    (128, "AGENT_TEAM_CONFIG_EVENT"),
    (248, "CALL_AGENT_GREETING_EVENT"),
];

pub(super) fn message_type_name(message_type: u32) -> Cow<'static, str> {
    match MESSAGE_TYPE_NAMES.binary_search_by_key(&message_type, |&(id, _)| id) {
        Ok(i) => Cow::Borrowed(MESSAGE_TYPE_NAMES[i].1),
        Err(_) => Cow::Owned(format!("MESSAGE_TYPE_{message_type}")),
    }
}

/// The message type of a name: `BEGIN_CALL_EVENT`, and the spellings
/// traces and the UCCX guide also use (`CallDequeuedEvent`, any case,
/// underscores optional).
pub(super) fn message_type_by_name(name: &str) -> Option<u32> {
    let wanted = name.bytes().filter(|&b| b != b'_');
    MESSAGE_TYPE_NAMES.iter().find_map(|&(id, known)| {
        let known = known.bytes().filter(|&b| b != b'_');
        known
            .map(|b| b.to_ascii_lowercase())
            .eq(wanted.clone().map(|b| b.to_ascii_lowercase()))
            .then_some(id)
    })
}

/// The call event kind of a message type, if it is one.
pub(super) fn call_kind(id: u32) -> Option<CallEventKind> {
    use CallEventKind as K;
    use message_type as t;
    Some(match id {
        t::CALL_DELIVERED_EVENT => K::Delivered,
        t::CALL_ESTABLISHED_EVENT => K::Established,
        t::CALL_HELD_EVENT => K::Held,
        t::CALL_RETRIEVED_EVENT => K::Retrieved,
        t::CALL_CLEARED_EVENT => K::Cleared,
        t::CALL_CONNECTION_CLEARED_EVENT => K::ConnectionCleared,
        t::CALL_ORIGINATED_EVENT => K::Originated,
        t::CALL_FAILED_EVENT => K::Failed,
        t::CALL_CONFERENCED_EVENT => K::Conferenced,
        t::CALL_TRANSFERRED_EVENT => K::Transferred,
        t::CALL_DIVERTED_EVENT => K::Diverted,
        t::CALL_SERVICE_INITIATED_EVENT => K::ServiceInitiated,
        t::CALL_QUEUED_EVENT => K::Queued,
        t::CALL_DEQUEUED_EVENT => K::Dequeued,
        t::BEGIN_CALL_EVENT => K::BeginCall,
        t::END_CALL_EVENT => K::EndCall,
        t::CALL_DATA_UPDATE_EVENT => K::CallDataUpdate,
        _ => return None,
    })
}

pub(super) fn call_message_type(kind: CallEventKind) -> u32 {
    use CallEventKind as K;
    use message_type as t;
    match kind {
        K::Delivered => t::CALL_DELIVERED_EVENT,
        K::Established => t::CALL_ESTABLISHED_EVENT,
        K::Held => t::CALL_HELD_EVENT,
        K::Retrieved => t::CALL_RETRIEVED_EVENT,
        K::Cleared => t::CALL_CLEARED_EVENT,
        K::ConnectionCleared => t::CALL_CONNECTION_CLEARED_EVENT,
        K::Originated => t::CALL_ORIGINATED_EVENT,
        K::Failed => t::CALL_FAILED_EVENT,
        K::Conferenced => t::CALL_CONFERENCED_EVENT,
        K::Transferred => t::CALL_TRANSFERRED_EVENT,
        K::Diverted => t::CALL_DIVERTED_EVENT,
        K::ServiceInitiated => t::CALL_SERVICE_INITIATED_EVENT,
        K::Queued => t::CALL_QUEUED_EVENT,
        K::Dequeued => t::CALL_DEQUEUED_EVENT,
        K::BeginCall => t::BEGIN_CALL_EVENT,
        K::EndCall => t::END_CALL_EVENT,
        K::CallDataUpdate => t::CALL_DATA_UPDATE_EVENT,
    }
}

/// One field of a call event's fixed part, under its ICM name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fixed {
    MonitorId,
    PeripheralId,
    PeripheralType,
    /// ConnectionDeviceIDType, PrimaryDeviceIDType.
    ConnectionDeviceIdType,
    /// ConnectionCallID, PrimaryCallID; UCCX CallID.
    ConnectionCallId,
    LineHandle,
    LineType,
    /// UCCX ApplicationID.
    ServiceNumber,
    ServiceId,
    /// UCCX CSQID.
    SkillGroupNumber,
    SkillGroupId,
    SkillGroupPriority,
    DeviceType(DeviceRole),
    LocalConnectionState,
    EventCause,
    NumParties,
    SecondaryDeviceIdType,
    SecondaryCallId,
    NumQueued,
    /// UCCX NumCSQs.
    NumSkillGroups,
    NumCtiClients,
    NumNamedVariables,
    NumNamedArrays,
    CallType,
    CalledPartyDisposition,
    NewConnectionDeviceIdType,
    NewConnectionCallId,
    CampaignId,
    QueryRuleId,
}

impl Fixed {
    /// Bytes on the wire: UINT fields 4, USHORT fields 2.
    pub(super) fn size(self) -> usize {
        match self {
            Fixed::MonitorId
            | Fixed::PeripheralId
            | Fixed::ConnectionCallId
            | Fixed::ServiceNumber
            | Fixed::ServiceId
            | Fixed::SkillGroupNumber
            | Fixed::SkillGroupId
            | Fixed::SecondaryCallId
            | Fixed::NewConnectionCallId
            | Fixed::CampaignId
            | Fixed::QueryRuleId => 4,
            _ => 2,
        }
    }

    /// What [`encode`] sends for a field the event leaves `None`: "none"
    /// (0xFFFF, reference B.1) for the enumerations that have it, else 0.
    fn absent_value(self) -> u32 {
        match self {
            Fixed::DeviceType(_) | Fixed::LocalConnectionState | Fixed::EventCause => 0xFFFF,
            _ => 0,
        }
    }

    /// The field's name in the ICM documents, for error messages.
    pub(super) fn name(self) -> &'static str {
        match self {
            Fixed::MonitorId => "MonitorID",
            Fixed::PeripheralId => "PeripheralID",
            Fixed::PeripheralType => "PeripheralType",
            Fixed::ConnectionDeviceIdType => "ConnectionDeviceIDType",
            Fixed::ConnectionCallId => "ConnectionCallID",
            Fixed::LineHandle => "LineHandle",
            Fixed::LineType => "LineType",
            Fixed::ServiceNumber => "ServiceNumber",
            Fixed::ServiceId => "ServiceID",
            Fixed::SkillGroupNumber => "SkillGroupNumber",
            Fixed::SkillGroupId => "SkillGroupID",
            Fixed::SkillGroupPriority => "SkillGroupPriority",
            Fixed::DeviceType(role) => match role {
                DeviceRole::Alerting => "AlertingDeviceType",
                DeviceRole::Calling => "CallingDeviceType",
                DeviceRole::Called => "CalledDeviceType",
                DeviceRole::LastRedirect => "LastRedirectDeviceType",
                DeviceRole::Answering => "AnsweringDeviceType",
                DeviceRole::Holding => "HoldingDeviceType",
                DeviceRole::Retrieving => "RetrievingDeviceType",
                DeviceRole::Releasing => "ReleasingDeviceType",
                DeviceRole::Failing => "FailingDeviceType",
                DeviceRole::Diverting => "DivertingDeviceType",
                DeviceRole::Queue => "QueueDeviceType",
                DeviceRole::Controller => "ControllerDeviceType",
                DeviceRole::AddedParty => "AddedPartyDeviceType",
                DeviceRole::Transferring => "TransferringDeviceType",
                DeviceRole::Transferred => "TransferredDeviceType",
            },
            Fixed::LocalConnectionState => "LocalConnectionState",
            Fixed::EventCause => "EventCause",
            Fixed::NumParties => "NumParties",
            Fixed::SecondaryDeviceIdType => "SecondaryDeviceIDType",
            Fixed::SecondaryCallId => "SecondaryCallID",
            Fixed::NumQueued => "NumQueued",
            Fixed::NumSkillGroups => "NumSkillGroups",
            Fixed::NumCtiClients => "NumCTIClients",
            Fixed::NumNamedVariables => "NumNamedVariables",
            Fixed::NumNamedArrays => "NumNamedArrays",
            Fixed::CallType => "CallType",
            Fixed::CalledPartyDisposition => "CalledPartyDisposition",
            Fixed::NewConnectionDeviceIdType => "NewConnectionDeviceIDType",
            Fixed::NewConnectionCallId => "NewConnectionCallID",
            Fixed::CampaignId => "CampaignID",
            Fixed::QueryRuleId => "QueryRuleID",
        }
    }
}

/// A call event's fixed part: its fields in wire order, every one of them
/// always there (floating fields follow, so none can end early).
#[derive(Debug, Clone, Copy)]
pub(super) struct Layout {
    pub fields: &'static [Fixed],
}

impl Layout {
    const fn all(fields: &'static [Fixed]) -> Layout {
        Layout { fields }
    }
}

mod layouts {
    //! Fixed parts of the call events, reference B.4 (Haskell MessageRec.hs
    //! and the PV14/15/17 pages; the UCCX pages have the same bytes with
    //! "reserved" for MonitorID = 0, PeripheralID = 1, PeripheralType = 21,
    //! LineHandle, ServiceID, SkillGroupID, ...).
    use super::super::DeviceRole as R;
    use super::Fixed::*;
    use super::{Fixed, Layout};

    pub const DELIVERED: Layout = Layout::all(&[
        MonitorId,
        PeripheralId,
        PeripheralType,
        ConnectionDeviceIdType,
        ConnectionCallId,
        LineHandle,
        LineType,
        ServiceNumber,
        ServiceId,
        SkillGroupNumber,
        SkillGroupId,
        SkillGroupPriority,
        DeviceType(R::Alerting),
        DeviceType(R::Calling),
        DeviceType(R::Called),
        DeviceType(R::LastRedirect),
        LocalConnectionState,
        EventCause,
        NumNamedVariables,
        NumNamedArrays,
    ]);
    pub const ESTABLISHED: Layout = Layout::all(&[
        MonitorId,
        PeripheralId,
        PeripheralType,
        ConnectionDeviceIdType,
        ConnectionCallId,
        LineHandle,
        LineType,
        ServiceNumber,
        ServiceId,
        SkillGroupNumber,
        SkillGroupId,
        SkillGroupPriority,
        DeviceType(R::Answering),
        DeviceType(R::Calling),
        DeviceType(R::Called),
        DeviceType(R::LastRedirect),
        LocalConnectionState,
        EventCause,
    ]);
    pub const HELD: Layout = Layout::all(&with_device(R::Holding));
    pub const RETRIEVED: Layout = Layout::all(&with_device(R::Retrieving));
    pub const CONNECTION_CLEARED: Layout = Layout::all(&with_device(R::Releasing));
    pub const CLEARED: Layout = Layout::all(&[
        MonitorId,
        PeripheralId,
        PeripheralType,
        ConnectionDeviceIdType,
        ConnectionCallId,
        LocalConnectionState,
        EventCause,
    ]);
    pub const ORIGINATED: Layout = Layout::all(&[
        MonitorId,
        PeripheralId,
        PeripheralType,
        ConnectionDeviceIdType,
        ConnectionCallId,
        LineHandle,
        LineType,
        ServiceNumber,
        ServiceId,
        SkillGroupNumber,
        SkillGroupId,
        SkillGroupPriority,
        DeviceType(R::Calling),
        DeviceType(R::Called),
        LocalConnectionState,
        EventCause,
    ]);
    /// With MonitorID, as the ICM pages and the Haskell driver have it; the
    /// Scala driver's vector lacks it \[UNCERTAIN\] (reference B.8).
    pub const FAILED: Layout = Layout::all(&[
        MonitorId,
        PeripheralId,
        PeripheralType,
        ConnectionDeviceIdType,
        ConnectionCallId,
        DeviceType(R::Failing),
        DeviceType(R::Called),
        LocalConnectionState,
        EventCause,
    ]);
    pub const CONFERENCED: Layout = Layout::all(&[
        MonitorId,
        PeripheralId,
        PeripheralType,
        ConnectionDeviceIdType,
        ConnectionCallId,
        LineHandle,
        LineType,
        SkillGroupNumber,
        SkillGroupId,
        SkillGroupPriority,
        NumParties,
        SecondaryDeviceIdType,
        SecondaryCallId,
        DeviceType(R::Controller),
        DeviceType(R::AddedParty),
        LocalConnectionState,
        EventCause,
    ]);
    pub const TRANSFERRED: Layout = Layout::all(&[
        MonitorId,
        PeripheralId,
        PeripheralType,
        ConnectionDeviceIdType,
        ConnectionCallId,
        LineHandle,
        LineType,
        SkillGroupNumber,
        SkillGroupId,
        SkillGroupPriority,
        NumParties,
        SecondaryDeviceIdType,
        SecondaryCallId,
        DeviceType(R::Transferring),
        DeviceType(R::Transferred),
        LocalConnectionState,
        EventCause,
    ]);
    pub const DIVERTED: Layout = Layout::all(&[
        MonitorId,
        PeripheralId,
        PeripheralType,
        ConnectionDeviceIdType,
        ConnectionCallId,
        ServiceNumber,
        ServiceId,
        DeviceType(R::Diverting),
        DeviceType(R::Called),
        LocalConnectionState,
        EventCause,
    ]);
    pub const SERVICE_INITIATED: Layout = Layout::all(&[
        MonitorId,
        PeripheralId,
        PeripheralType,
        ConnectionDeviceIdType,
        ConnectionCallId,
        LineHandle,
        LineType,
        ServiceNumber,
        ServiceId,
        SkillGroupNumber,
        SkillGroupId,
        SkillGroupPriority,
        DeviceType(R::Calling),
        LocalConnectionState,
        EventCause,
    ]);
    /// ICM PV15 and UCCX call_queued_event give the same bytes: UCCX's
    /// ApplicationID, reserved 0xFFFFFFFF, reserved 0 and NumCSQs sit where
    /// ICM has ServiceNumber, ServiceID, NumQueued and NumSkillGroups, so
    /// one layout serves both versions.
    pub const QUEUED: Layout = Layout::all(&[
        MonitorId,
        PeripheralId,
        PeripheralType,
        ConnectionDeviceIdType,
        ConnectionCallId,
        ServiceNumber,
        ServiceId,
        DeviceType(R::Queue),
        DeviceType(R::Calling),
        DeviceType(R::Called),
        DeviceType(R::LastRedirect),
        NumQueued,
        NumSkillGroups,
        LocalConnectionState,
        EventCause,
    ]);
    /// UCCX call_dequeued_event (version < 20): ApplicationID and a
    /// reserved UINT come before QueueDeviceType.
    pub const DEQUEUED_UCCX: Layout = Layout::all(&[
        MonitorId,
        PeripheralId,
        PeripheralType,
        ConnectionDeviceIdType,
        ConnectionCallId,
        ServiceNumber,
        ServiceId,
        DeviceType(R::Queue),
        NumQueued,
        NumSkillGroups,
        LocalConnectionState,
        EventCause,
    ]);
    /// ICM PV17 page 90 (used for version >= 20): QueueDeviceType comes
    /// before ServiceNumber and ServiceID. The page was not read past
    /// NumSkillGroups; LocalConnectionState and EventCause are inferred
    /// from the other events and the Scala driver \[UNCERTAIN\].
    pub const DEQUEUED_UCCE: Layout = Layout::all(&[
        MonitorId,
        PeripheralId,
        PeripheralType,
        ConnectionDeviceIdType,
        ConnectionCallId,
        DeviceType(R::Queue),
        ServiceNumber,
        ServiceId,
        NumQueued,
        NumSkillGroups,
        LocalConnectionState,
        EventCause,
    ]);
    /// PV15 page 60; UCCX begin_call_event is identical.
    pub const BEGIN_CALL: Layout = Layout::all(&[
        MonitorId,
        PeripheralId,
        PeripheralType,
        NumCtiClients,
        NumNamedVariables,
        NumNamedArrays,
        CallType,
        ConnectionDeviceIdType,
        ConnectionCallId,
        CalledPartyDisposition,
    ]);
    pub const END_CALL: Layout = Layout::all(&[
        MonitorId,
        PeripheralId,
        PeripheralType,
        ConnectionDeviceIdType,
        ConnectionCallId,
    ]);
    pub const CALL_DATA_UPDATE: Layout = Layout::all(&[
        MonitorId,
        PeripheralId,
        PeripheralType,
        NumCtiClients,
        NumNamedVariables,
        NumNamedArrays,
        CallType,
        ConnectionDeviceIdType,
        ConnectionCallId,
        NewConnectionDeviceIdType,
        NewConnectionCallId,
        CalledPartyDisposition,
        CampaignId,
        QueryRuleId,
    ]);

    /// HELD, RETRIEVED, CONNECTION_CLEARED: one device type between the
    /// call's id and its state.
    const fn with_device(role: R) -> [Fixed; 8] {
        [
            MonitorId,
            PeripheralId,
            PeripheralType,
            ConnectionDeviceIdType,
            ConnectionCallId,
            DeviceType(role),
            LocalConnectionState,
            EventCause,
        ]
    }
}

/// The fixed part of a call event kind in protocol `version`.
pub(super) fn call_layout(kind: CallEventKind, version: u32) -> Layout {
    use CallEventKind as K;
    match kind {
        K::Delivered => layouts::DELIVERED,
        K::Established => layouts::ESTABLISHED,
        K::Held => layouts::HELD,
        K::Retrieved => layouts::RETRIEVED,
        K::Cleared => layouts::CLEARED,
        K::ConnectionCleared => layouts::CONNECTION_CLEARED,
        K::Originated => layouts::ORIGINATED,
        K::Failed => layouts::FAILED,
        K::Conferenced => layouts::CONFERENCED,
        K::Transferred => layouts::TRANSFERRED,
        K::Diverted => layouts::DIVERTED,
        K::ServiceInitiated => layouts::SERVICE_INITIATED,
        K::Queued => layouts::QUEUED,
        K::Dequeued if version < 20 => layouts::DEQUEUED_UCCX,
        K::Dequeued => layouts::DEQUEUED_UCCE,
        K::BeginCall => layouts::BEGIN_CALL,
        K::EndCall => layouts::END_CALL,
        K::CallDataUpdate => layouts::CALL_DATA_UPDATE,
    }
}

/// A call event of `kind` with every optional field `None`, the reserved
/// fields at their UCCX values (MonitorID 0, PeripheralID 1, PeripheralType
/// 21) and ConnectionDeviceIDType none (0xFFFF).
pub(super) fn blank_call(kind: CallEventKind, device_types: usize, floating: usize) -> CallEvent {
    CallEvent {
        kind,
        monitor_id: 0,
        peripheral_id: 1,
        peripheral_type: 21,
        connection_device_id_type: 0xFFFF,
        connection_call_id: 0,
        line_handle: None,
        line_type: None,
        service_number: None,
        service_id: None,
        skill_group_number: None,
        skill_group_id: None,
        skill_group_priority: None,
        device_types: Vec::with_capacity(device_types),
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
        floating: Floating {
            fields: Vec::with_capacity(floating),
        },
    }
}

/// Sets one fixed field; `value` of a 2-byte field fits in a u16. A device
/// type is appended to `device_types`.
pub(super) fn set_fixed(event: &mut CallEvent, field: Fixed, value: u32) {
    // 2-byte fields were read as u16, so `as u16` keeps every bit.
    let short = value as u16;
    match field {
        Fixed::MonitorId => event.monitor_id = value,
        Fixed::PeripheralId => event.peripheral_id = value,
        Fixed::PeripheralType => event.peripheral_type = short,
        Fixed::ConnectionDeviceIdType => event.connection_device_id_type = short,
        Fixed::ConnectionCallId => event.connection_call_id = value,
        Fixed::LineHandle => event.line_handle = Some(short),
        Fixed::LineType => event.line_type = Some(short),
        Fixed::ServiceNumber => event.service_number = Some(value),
        Fixed::ServiceId => event.service_id = Some(value),
        Fixed::SkillGroupNumber => event.skill_group_number = Some(value),
        Fixed::SkillGroupId => event.skill_group_id = Some(value),
        Fixed::SkillGroupPriority => event.skill_group_priority = Some(short),
        Fixed::DeviceType(role) => event.device_types.push((role, short)),
        Fixed::LocalConnectionState => event.local_connection_state = Some(short),
        Fixed::EventCause => event.event_cause = Some(short),
        Fixed::NumParties => event.num_parties = Some(short),
        Fixed::SecondaryDeviceIdType => event.secondary_device_id_type = Some(short),
        Fixed::SecondaryCallId => event.secondary_call_id = Some(value),
        Fixed::NumQueued => event.num_queued = Some(short),
        Fixed::NumSkillGroups => event.num_skill_groups = Some(short),
        Fixed::NumCtiClients => event.num_cti_clients = Some(short),
        Fixed::NumNamedVariables => event.num_named_variables = Some(short),
        Fixed::NumNamedArrays => event.num_named_arrays = Some(short),
        Fixed::CallType => event.call_type = Some(short),
        Fixed::CalledPartyDisposition => event.called_party_disposition = Some(short),
        Fixed::NewConnectionDeviceIdType => event.new_connection_device_id_type = Some(short),
        Fixed::NewConnectionCallId => event.new_connection_call_id = Some(value),
        Fixed::CampaignId => event.campaign_id = Some(value),
        Fixed::QueryRuleId => event.query_rule_id = Some(value),
    }
}

fn get_fixed(event: &CallEvent, field: Fixed) -> Option<u32> {
    let short = |v: Option<u16>| v.map(u32::from);
    match field {
        Fixed::MonitorId => Some(event.monitor_id),
        Fixed::PeripheralId => Some(event.peripheral_id),
        Fixed::PeripheralType => Some(u32::from(event.peripheral_type)),
        Fixed::ConnectionDeviceIdType => Some(u32::from(event.connection_device_id_type)),
        Fixed::ConnectionCallId => Some(event.connection_call_id),
        Fixed::LineHandle => short(event.line_handle),
        Fixed::LineType => short(event.line_type),
        Fixed::ServiceNumber => event.service_number,
        Fixed::ServiceId => event.service_id,
        Fixed::SkillGroupNumber => event.skill_group_number,
        Fixed::SkillGroupId => event.skill_group_id,
        Fixed::SkillGroupPriority => short(event.skill_group_priority),
        Fixed::DeviceType(role) => event
            .device_types
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, v)| u32::from(*v)),
        Fixed::LocalConnectionState => short(event.local_connection_state),
        Fixed::EventCause => short(event.event_cause),
        Fixed::NumParties => short(event.num_parties),
        Fixed::SecondaryDeviceIdType => short(event.secondary_device_id_type),
        Fixed::SecondaryCallId => event.secondary_call_id,
        Fixed::NumQueued => short(event.num_queued),
        Fixed::NumSkillGroups => short(event.num_skill_groups),
        Fixed::NumCtiClients => short(event.num_cti_clients),
        Fixed::NumNamedVariables => short(event.num_named_variables),
        Fixed::NumNamedArrays => short(event.num_named_arrays),
        Fixed::CallType => short(event.call_type),
        Fixed::CalledPartyDisposition => short(event.called_party_disposition),
        Fixed::NewConnectionDeviceIdType => short(event.new_connection_device_id_type),
        Fixed::NewConnectionCallId => event.new_connection_call_id,
        Fixed::CampaignId => event.campaign_id,
        Fixed::QueryRuleId => event.query_rule_id,
    }
}

/// Body length and message type of a buffer holding at least a header.
fn header(buf: &[u8]) -> Option<(usize, u32)> {
    let len: [u8; 4] = buf.get(0..4)?.try_into().ok()?;
    let message_type: [u8; 4] = buf.get(4..HEADER_LEN)?.try_into().ok()?;
    let body_len = usize::try_from(u32::from_be_bytes(len)).unwrap_or(usize::MAX);
    Some((body_len, u32::from_be_bytes(message_type)))
}

/// A cursor over one body that checks every read against its end.
struct Reader<'a> {
    body: &'a [u8],
    pos: usize,
    message_type: u32,
    version: u32,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.body.len().saturating_sub(self.pos)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.body.len()
    }

    fn fail(&self, offset: usize, reason: String) -> CtiError {
        CtiError {
            message: message_type_name(self.message_type).into_owned(),
            offset,
            reason,
        }
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], CtiError> {
        let bytes = self
            .body
            .get(self.pos..)
            .and_then(|rest| rest.get(..N))
            .and_then(|b| <[u8; N]>::try_from(b).ok());
        match bytes {
            Some(b) => {
                self.pos += N;
                Ok(b)
            }
            None => Err(self.fail(
                self.pos,
                format!(
                    "the body ends inside the fixed field {field} ({N} bytes needed, {} left)",
                    self.remaining()
                ),
            )),
        }
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, CtiError> {
        self.array(field).map(u16::from_be_bytes)
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, CtiError> {
        self.array(field).map(u32::from_be_bytes)
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, CtiError> {
        self.array(field).map(i32::from_be_bytes)
    }

    /// The floating part: every field from here to the end of the body.
    fn floating(&mut self) -> Result<Floating, CtiError> {
        let width = FieldWidth::for_version(self.version);
        let rest = self.body.get(self.pos..).unwrap_or_default();
        let mut fields = Vec::with_capacity(count_floating(rest, width));
        while !self.at_end() {
            let (tag, data) = self.floating_field(width)?;
            fields.push((tag, float_value(tag, data, self.version)));
        }
        Ok(Floating { fields })
    }

    fn floating_field(&mut self, width: FieldWidth) -> Result<(u16, &'a [u8]), CtiError> {
        let start = self.pos;
        let Some((tag, len, header_len)) = floating_header(self.body, start, width) else {
            return Err(self.fail(
                start,
                format!(
                    "the body ends inside a floating field's tag and length ({} bytes needed, \
                     {} left)",
                    width_header_len(width),
                    self.remaining()
                ),
            ));
        };
        let data_start = start + header_len;
        match self.body.get(data_start..).and_then(|rest| rest.get(..len)) {
            Some(data) => {
                self.pos = data_start + len;
                Ok((tag, data))
            }
            None => Err(self.fail(
                start,
                format!(
                    "floating field {tag} of {len} bytes runs past the end of the body \
                     ({} bytes left after its tag and length)",
                    self.body.len().saturating_sub(data_start)
                ),
            )),
        }
    }
}

fn width_header_len(width: FieldWidth) -> usize {
    match width {
        FieldWidth::Narrow => 2,
        FieldWidth::Wide => 4,
    }
}

/// Tag, data length and header length of the floating field at `at`.
fn floating_header(body: &[u8], at: usize, width: FieldWidth) -> Option<(u16, usize, usize)> {
    let rest = body.get(at..)?;
    match width {
        FieldWidth::Narrow => match *rest {
            [tag, len, ..] => Some((u16::from(tag), usize::from(len), 2)),
            _ => None,
        },
        FieldWidth::Wide => match *rest {
            [t0, t1, l0, l1, ..] => Some((
                u16::from_be_bytes([t0, t1]),
                usize::from(u16::from_be_bytes([l0, l1])),
                4,
            )),
            _ => None,
        },
    }
}

/// How many whole floating fields `rest` holds, to size the vector once.
fn count_floating(rest: &[u8], width: FieldWidth) -> usize {
    let mut count = 0;
    let mut at = 0;
    while let Some((_, len, header_len)) = floating_header(rest, at, width) {
        at += header_len + len;
        if at > rest.len() {
            break;
        }
        count += 1;
    }
    count
}

/// The value of one floating field, typed by its tag (reference B.1, B.5).
fn float_value(tag: u16, data: &[u8], version: u32) -> FloatValue {
    match tags::field_type(tag, version) {
        FieldType::Str => FloatValue::Str(c_string(data).0),
        FieldType::Numeric => match *data {
            [a, b, c, d] => FloatValue::U32(u32::from_be_bytes([a, b, c, d])),
            [a, b] => FloatValue::U16(u16::from_be_bytes([a, b])),
            _ => FloatValue::Bytes(data.to_vec()),
        },
        FieldType::NamedVariable => match split_named(data) {
            Some((name, value)) => FloatValue::NamedVar { name, value },
            None => FloatValue::Bytes(data.to_vec()),
        },
        FieldType::NamedArray => match data.split_first() {
            Some((&index, rest)) => match split_named(rest) {
                Some((name, value)) => FloatValue::NamedArray { index, name, value },
                None => FloatValue::Bytes(data.to_vec()),
            },
            None => FloatValue::Bytes(Vec::new()),
        },
        FieldType::Bytes => FloatValue::Bytes(data.to_vec()),
    }
}

/// A STRING: the bytes before the first NUL (all of them when there is
/// none), as UTF-8 with invalid bytes replaced; and what follows that NUL.
fn c_string(data: &[u8]) -> (String, Option<&[u8]>) {
    let (text, rest) = match data.iter().position(|&b| b == 0) {
        Some(nul) => (&data[..nul], data.get(nul + 1..)),
        None => (data, None),
    };
    let text = match std::str::from_utf8(text) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(text).into_owned(),
    };
    (text, rest)
}

/// `name\0value\0` of NAMEDVAR and NAMEDARRAY; `None` without the NUL
/// after the name. The value's NUL may be missing.
fn split_named(data: &[u8]) -> Option<(String, String)> {
    let (name, rest) = c_string(data);
    let rest = rest?;
    let (value, _) = c_string(rest);
    Some((name, value))
}

fn decode_body(r: &mut Reader) -> Result<CtiBody, CtiError> {
    use message_type as t;
    if let Some(kind) = call_kind(r.message_type) {
        return decode_call(r, kind).map(|event| CtiBody::Call(Box::new(event)));
    }
    Ok(match r.message_type {
        t::FAILURE_CONF => {
            let invoke_id = r.u32("InvokeID")?;
            let status = r.u32("Status")?;
            let text = text_of(r.floating()?);
            CtiBody::FailureConf {
                invoke_id,
                status,
                text,
            }
        }
        t::FAILURE_EVENT => {
            let status = r.u32("Status")?;
            let text = text_of(r.floating()?);
            CtiBody::FailureEvent { status, text }
        }
        t::OPEN_REQ => CtiBody::OpenReq(decode_open_req(r)?),
        t::OPEN_CONF => {
            let mut conf = OpenConf {
                invoke_id: r.u32("InvokeID")?,
                services_granted: r.u32("ServicesGranted")?,
                monitor_id: r.u32("MonitorID")?,
                pg_status: r.u32("PGStatus")?,
                central_controller_time: r.u32("ICMCentralControllerTime")?,
                peripheral_online: r.u16("PeripheralOnline")? != 0,
                peripheral_type: r.u16("PeripheralType")?,
                agent_state: r.u16("AgentState")?,
                department_id: None,
                floating: Floating::default(),
            };
            // DepartmentID from version 19 (Haskell MessageRec.hs); a body
            // that ends before it is accepted as without one.
            if r.version >= 19 {
                conf.department_id = Some(r.i32("DepartmentID")?);
            }
            conf.floating = r.floating()?;
            CtiBody::OpenConf(conf)
        }
        t::HEARTBEAT_REQ => {
            let invoke_id = r.u32("InvokeID")?;
            r.floating()?;
            CtiBody::HeartbeatReq { invoke_id }
        }
        t::HEARTBEAT_CONF => {
            let invoke_id = r.u32("InvokeID")?;
            r.floating()?;
            CtiBody::HeartbeatConf { invoke_id }
        }
        t::CLOSE_REQ => {
            let invoke_id = r.u32("InvokeID")?;
            let status = r.u32("Status")?;
            r.floating()?;
            CtiBody::CloseReq { invoke_id, status }
        }
        t::CLOSE_CONF => {
            let invoke_id = r.u32("InvokeID")?;
            r.floating()?;
            CtiBody::CloseConf { invoke_id }
        }
        t::AGENT_STATE_EVENT => CtiBody::AgentState(Box::new(decode_agent_state(r)?)),
        t::SYSTEM_EVENT => CtiBody::SystemEvent(SystemEvent {
            pg_status: r.u32("PGStatus")?,
            central_controller_time: r.u32("ICMCentralControllerTime")?,
            system_event_id: r.u32("SystemEventID")?,
            args: [
                r.u32("SystemEventArg1")?,
                r.u32("SystemEventArg2")?,
                r.u32("SystemEventArg3")?,
            ],
            event_device_type: r.u16("EventDeviceType")?,
            floating: r.floating()?,
        }),
        _ => CtiBody::Other {
            body_len: r.body.len(),
        },
    })
}

/// FAILURE_CONF and FAILURE_EVENT carry only Text[7].
fn text_of(floating: Floating) -> Option<String> {
    floating
        .fields
        .into_iter()
        .find_map(|(tag, value)| match value {
            FloatValue::Str(s) if tag == tags::TEXT => Some(s),
            _ => None,
        })
}

fn decode_call(r: &mut Reader, kind: CallEventKind) -> Result<CallEvent, CtiError> {
    let layout = call_layout(kind, r.version);
    let devices = layout
        .fields
        .iter()
        .filter(|f| matches!(f, Fixed::DeviceType(_)))
        .count();
    let mut event = blank_call(kind, devices, 0);
    for &field in layout.fields {
        let value = if field.size() == 4 {
            r.u32(field.name())?
        } else {
            u32::from(r.u16(field.name())?)
        };
        set_fixed(&mut event, field, value);
    }
    event.floating = r.floating()?;
    Ok(event)
}

/// AGENT_STATE_EVENT (reference B.4). One layout for both protocols: the
/// UCCX page (agent_state_event) lists the same fields as ICM with the
/// unused ones "reserved" (SessionID 0, SkillGroupID 0xFFFFFFFF, MRDID 1,
/// ...) and ends at NumCSQs (= NumFltSkillGroups); DepartmentID follows
/// only from version 19 (Haskell MessageRec.hs).
///
/// The reference also says the UCCX event "ends at numCSQs": so it does
/// here, with every field up to it read \[UNCERTAIN\]. A fixed part cannot
/// end early and be told from the floating fields that follow it, so no
/// field of it is optional.
fn decode_agent_state(r: &mut Reader) -> Result<AgentStateEvent, CtiError> {
    let mut event = AgentStateEvent {
        monitor_id: r.u32("MonitorID")?,
        peripheral_id: r.u32("PeripheralID")?,
        session_id: r.u32("SessionID")?,
        peripheral_type: r.u16("PeripheralType")?,
        skill_group_state: r.u16("SkillGroupState")?,
        state_duration: r.u32("StateDuration")?,
        skill_group_number: r.u32("SkillGroupNumber")?,
        skill_group_id: r.u32("SkillGroupID")?,
        skill_group_priority: r.u16("SkillGroupPriority")?,
        agent_state: r.u16("AgentState")?,
        event_reason_code: r.u16("EventReasonCode")?,
        mrd_id: Some(r.i32("MRDID")?),
        num_tasks: Some(r.u32("NumTasks")?),
        agent_mode: Some(r.u16("AgentMode")?),
        max_task_limit: Some(r.u32("MaxTaskLimit")?),
        icm_agent_id: Some(r.i32("ICMAgentID")?),
        agent_availability_status: Some(r.u32("AgentAvailabilityStatus")?),
        num_flt_skill_groups: Some(r.u16("NumFltSkillGroups")?),
        department_id: None,
        floating: Floating::default(),
    };
    if r.version >= 19 {
        event.department_id = Some(r.i32("DepartmentID")?);
    }
    event.floating = r.floating()?;
    Ok(event)
}

fn encode_agent_state(w: &mut Writer, event: &AgentStateEvent, version: u32) {
    w.u32(event.monitor_id);
    w.u32(event.peripheral_id);
    w.u32(event.session_id);
    w.u16(event.peripheral_type);
    w.u16(event.skill_group_state);
    w.u32(event.state_duration);
    w.u32(event.skill_group_number);
    w.u32(event.skill_group_id);
    w.u16(event.skill_group_priority);
    w.u16(event.agent_state);
    w.u16(event.event_reason_code);
    // The whole fixed part is always there (UCCX sends its reserved
    // values); a field left `None` goes as 0.
    w.u32(event.mrd_id.unwrap_or(0) as u32);
    w.u32(event.num_tasks.unwrap_or(0));
    w.u16(event.agent_mode.unwrap_or(0));
    w.u32(event.max_task_limit.unwrap_or(0));
    w.u32(event.icm_agent_id.unwrap_or(0) as u32);
    w.u32(event.agent_availability_status.unwrap_or(0));
    w.u16(event.num_flt_skill_groups.unwrap_or(0));
    if version >= 19 {
        w.u32(event.department_id.unwrap_or(0) as u32);
    }
    w.floating(&event.floating);
}

fn decode_open_req(r: &mut Reader) -> Result<OpenReq, CtiError> {
    let mut req = OpenReq {
        invoke_id: r.u32("InvokeID")?,
        version: r.u32("VersionNumber")?,
        idle_timeout: r.u32("IdleTimeout")?,
        peripheral_id: r.u32("PeripheralID")?,
        services_requested: r.u32("ServicesRequested")?,
        call_msg_mask: r.u32("CallMsgMask")?,
        agent_state_mask: r.u32("AgentStateMask")?,
        config_msg_mask: r.u32("ConfigMsgMask")?,
        ..OpenReq::default()
    };
    r.u32("Reserved1")?;
    r.u32("Reserved2")?;
    r.u32("Reserved3")?;
    let all = r.floating()?;
    // The first ClientID and ClientPassword go to their own fields; the
    // rest, repeats included, stay in `floating` in wire order.
    let (mut have_id, mut have_password) = (false, false);
    req.floating.fields.reserve(all.fields.len());
    for (tag, value) in all.fields {
        match (tag, value) {
            (tags::CLIENT_ID, FloatValue::Str(id)) if !have_id => {
                req.client_id = id;
                have_id = true;
            }
            (tags::CLIENT_PASSWORD, FloatValue::Bytes(password)) if !have_password => {
                // UNSPEC; a client that sends it as a string adds a NUL.
                req.client_password = c_string(&password).0;
                have_password = true;
            }
            (tag, value) => req.floating.fields.push((tag, value)),
        }
    }
    Ok(req)
}

/// Builds a body in one field width.
struct Writer {
    out: Vec<u8>,
    width: FieldWidth,
}

impl Writer {
    fn u16(&mut self, n: u16) {
        self.out.extend_from_slice(&n.to_be_bytes());
    }

    fn u32(&mut self, n: u32) {
        self.out.extend_from_slice(&n.to_be_bytes());
    }

    fn i32(&mut self, n: i32) {
        self.out.extend_from_slice(&n.to_be_bytes());
    }

    fn max_len(&self) -> usize {
        match self.width {
            FieldWidth::Narrow => usize::from(u8::MAX),
            FieldWidth::Wide => usize::from(u16::MAX),
        }
    }

    /// Tag and length; `false` when the tag does not fit the width.
    fn field_header(&mut self, tag: u16, len: usize) -> bool {
        match self.width {
            FieldWidth::Narrow => {
                let (Ok(tag), Ok(len)) = (u8::try_from(tag), u8::try_from(len)) else {
                    return false;
                };
                self.out.extend_from_slice(&[tag, len]);
            }
            FieldWidth::Wide => {
                let Ok(len) = u16::try_from(len) else {
                    return false;
                };
                self.u16(tag);
                self.u16(len);
            }
        }
        true
    }

    fn float_bytes(&mut self, tag: u16, data: &[u8]) {
        let data = &data[..data.len().min(self.max_len())];
        if self.field_header(tag, data.len()) {
            self.out.extend_from_slice(data);
        }
    }

    /// A STRING with its NUL, cut at a character boundary to fit.
    fn float_str(&mut self, tag: u16, s: &str) {
        let s = cut(s, self.max_len() - 1);
        if self.field_header(tag, s.len() + 1) {
            self.out.extend_from_slice(s.as_bytes());
            self.out.push(0);
        }
    }

    /// `[index] name\0value\0`, the value cut to fit.
    fn float_named(&mut self, tag: u16, index: Option<u8>, name: &str, value: &str) {
        let prefix = usize::from(index.is_some());
        let name = cut(name, self.max_len().saturating_sub(prefix + 2));
        let value = cut(
            value,
            self.max_len().saturating_sub(prefix + name.len() + 2),
        );
        if self.field_header(tag, prefix + name.len() + value.len() + 2) {
            self.out.extend(index);
            self.out.extend_from_slice(name.as_bytes());
            self.out.push(0);
            self.out.extend_from_slice(value.as_bytes());
            self.out.push(0);
        }
    }

    fn floating(&mut self, floating: &Floating) {
        for (tag, value) in &floating.fields {
            match value {
                FloatValue::Str(s) => self.float_str(*tag, s),
                FloatValue::U32(n) => self.float_bytes(*tag, &n.to_be_bytes()),
                FloatValue::U16(n) => self.float_bytes(*tag, &n.to_be_bytes()),
                FloatValue::NamedVar { name, value } => self.float_named(*tag, None, name, value),
                FloatValue::NamedArray { index, name, value } => {
                    self.float_named(*tag, Some(*index), name, value)
                }
                FloatValue::Bytes(b) => self.float_bytes(*tag, b),
            }
        }
    }
}

/// The longest prefix of `s` of at most `max` bytes ending at a character
/// boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kind's message type maps back to the kind, and every layout
    /// starts as call events do.
    #[test]
    fn layouts_are_consistent() {
        use CallEventKind as K;
        let kinds = [
            K::Delivered,
            K::Established,
            K::Held,
            K::Retrieved,
            K::Cleared,
            K::ConnectionCleared,
            K::Originated,
            K::Failed,
            K::Conferenced,
            K::Transferred,
            K::Diverted,
            K::ServiceInitiated,
            K::Queued,
            K::Dequeued,
            K::BeginCall,
            K::EndCall,
            K::CallDataUpdate,
        ];
        for kind in kinds {
            assert_eq!(call_kind(call_message_type(kind)), Some(kind));
            for version in [14, 24] {
                let layout = call_layout(kind, version);
                // Every call event starts with MonitorID, PeripheralID,
                // PeripheralType and carries its ConnectionCallID.
                assert_eq!(
                    &layout.fields[..3],
                    &[Fixed::MonitorId, Fixed::PeripheralId, Fixed::PeripheralType]
                );
                assert!(layout.fields.contains(&Fixed::ConnectionCallId));
                assert!(layout.fields.contains(&Fixed::ConnectionDeviceIdType));
            }
        }
    }

    #[test]
    fn message_type_names_are_sorted_and_found_by_name() {
        assert!(MESSAGE_TYPE_NAMES.windows(2).all(|w| w[0].0 < w[1].0));
        for &(id, name) in MESSAGE_TYPE_NAMES {
            assert_eq!(message_type_by_name(name), Some(id));
        }
        assert_eq!(message_type_by_name("CallDequeuedEvent"), Some(86));
        assert_eq!(message_type_by_name("NO_SUCH_EVENT"), None);
        assert_eq!(message_type_name(23), "BEGIN_CALL_EVENT");
        assert_eq!(message_type_name(4000), "MESSAGE_TYPE_4000");
    }

    #[test]
    fn strings_end_at_their_first_nul_and_may_lack_one() {
        assert_eq!(c_string(b"2006\0").0, "2006");
        assert_eq!(c_string(b"2006").0, "2006");
        assert_eq!(c_string(b"\0").0, "");
        assert_eq!(c_string(b"ab\xffcd\0").0, "ab\u{fffd}cd");
        assert_eq!(
            split_named(b"ECCVar\0ECCVal\0"),
            Some(("ECCVar".to_owned(), "ECCVal".to_owned()))
        );
        assert_eq!(
            split_named(b"ECCVar\0ECCVal"),
            Some(("ECCVar".to_owned(), "ECCVal".to_owned()))
        );
        assert_eq!(split_named(b"ECCVar"), None);
    }

    #[test]
    fn cut_keeps_characters_whole() {
        assert_eq!(cut("abc", 5), "abc");
        assert_eq!(cut("aé", 2), "a");
        assert_eq!(cut("aé", 3), "aé");
    }

    #[test]
    fn narrow_width_leaves_out_tags_above_255_and_cuts_long_data() {
        let mut w = Writer {
            out: Vec::new(),
            width: FieldWidth::Narrow,
        };
        w.float_str(312, "voice");
        assert!(w.out.is_empty());
        w.float_str(tags::ANI, &"9".repeat(300));
        assert_eq!(w.out.len(), 2 + 255);
        assert_eq!(w.out[1], 255);
        assert_eq!(w.out.last(), Some(&0));
    }
}
