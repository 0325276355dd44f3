//! Cisco CTI Server protocol (UCCE "GED-188") and the Unified CCX CTI
//! protocol: framing, the session messages, call events, agent state and
//! system events (reference/cti-protocol.md; seed 003).
//!
//! A frame is an 8-byte header (body length, message type; big-endian)
//! and a body: a fixed part whose layout the message type gives, then
//! floating fields (tag, length, data) in any order. The floating field's
//! tag and length are one byte each below protocol version 20 (Unified CCX)
//! and two bytes from version 20 on (UCCE): [`FieldWidth::for_version`].
//!
//! [`decode`] turns one frame into a [`CtiMessage`] and never panics;
//! [`encode`] does the reverse (the client's requests, the simulator).
//! Reserved and unknown message types decode as [`CtiBody::Other`] (their
//! body skipped by its length); unknown floating fields are kept by tag.
//! Where the Unified CCX and UCCE layouts differ (CALL_DEQUEUED_EVENT;
//! DepartmentID of OPEN_CONF and AGENT_STATE_EVENT from version 19), the
//! version picks; the codec's comments say which source each layout follows.
//!
//! [`trace`] reads the same messages from Unified CCX MIVR text traces.

mod codec;
pub mod tags;
pub mod trace;

pub use codec::{decode, encode, frame_len};

use serde::Serialize;

/// The 8-byte message header.
pub const HEADER_LEN: usize = 8;
/// The largest frame accepted, header included (PV24: 12500 bytes). A
/// header claiming more is an error: the stream cannot be trusted after it.
pub const MAX_FRAME_LEN: usize = 12_500;

/// Width of a floating field's tag and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FieldWidth {
    /// One byte each: protocol versions below 20 (Unified CCX, older ICM).
    Narrow,
    /// Two bytes each (USHORT): protocol version 20 and up (UCCE).
    Wide,
}

impl FieldWidth {
    pub fn for_version(version: u32) -> FieldWidth {
        if version >= 20 {
            FieldWidth::Wide
        } else {
            FieldWidth::Narrow
        }
    }
}

/// Message type ids (reference B.2).
pub mod message_type {
    pub const FAILURE_CONF: u32 = 1;
    pub const FAILURE_EVENT: u32 = 2;
    pub const OPEN_REQ: u32 = 3;
    pub const OPEN_CONF: u32 = 4;
    pub const HEARTBEAT_REQ: u32 = 5;
    pub const HEARTBEAT_CONF: u32 = 6;
    pub const CLOSE_REQ: u32 = 7;
    pub const CLOSE_CONF: u32 = 8;
    pub const CALL_DELIVERED_EVENT: u32 = 9;
    pub const CALL_ESTABLISHED_EVENT: u32 = 10;
    pub const CALL_HELD_EVENT: u32 = 11;
    pub const CALL_RETRIEVED_EVENT: u32 = 12;
    pub const CALL_CLEARED_EVENT: u32 = 13;
    pub const CALL_CONNECTION_CLEARED_EVENT: u32 = 14;
    pub const CALL_ORIGINATED_EVENT: u32 = 15;
    pub const CALL_FAILED_EVENT: u32 = 16;
    pub const CALL_CONFERENCED_EVENT: u32 = 17;
    pub const CALL_TRANSFERRED_EVENT: u32 = 18;
    pub const CALL_DIVERTED_EVENT: u32 = 19;
    pub const CALL_SERVICE_INITIATED_EVENT: u32 = 20;
    pub const CALL_QUEUED_EVENT: u32 = 21;
    pub const BEGIN_CALL_EVENT: u32 = 23;
    pub const END_CALL_EVENT: u32 = 24;
    pub const CALL_DATA_UPDATE_EVENT: u32 = 25;
    pub const AGENT_STATE_EVENT: u32 = 30;
    pub const SYSTEM_EVENT: u32 = 31;
    pub const CALL_DEQUEUED_EVENT: u32 = 86;
}

/// The name of a message type as the vendor documents spell it
/// (`BEGIN_CALL_EVENT`), or `MESSAGE_TYPE_<n>` for one cdrhub does not know.
pub fn message_type_name(message_type: u32) -> std::borrow::Cow<'static, str> {
    codec::message_type_name(message_type)
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CtiMessage {
    pub message_type: u32,
    pub body: CtiBody,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CtiBody {
    FailureConf {
        invoke_id: u32,
        status: u32,
        text: Option<String>,
    },
    FailureEvent {
        status: u32,
        text: Option<String>,
    },
    OpenReq(OpenReq),
    OpenConf(OpenConf),
    HeartbeatReq {
        invoke_id: u32,
    },
    HeartbeatConf {
        invoke_id: u32,
    },
    CloseReq {
        invoke_id: u32,
        status: u32,
    },
    CloseConf {
        invoke_id: u32,
    },
    /// Every call event, whatever its type: the fixed fields a type does
    /// not have are `None`.
    Call(Box<CallEvent>),
    AgentState(Box<AgentStateEvent>),
    SystemEvent(SystemEvent),
    /// A reserved or unknown message, skipped by its body length.
    Other {
        body_len: usize,
    },
}

/// OPEN_REQ (reference B.3). In UCCX `peripheral_id` is reserved (0).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OpenReq {
    pub invoke_id: u32,
    pub version: u32,
    /// Seconds; four times the heartbeat interval, 0xFFFFFFFF for none.
    pub idle_timeout: u32,
    pub peripheral_id: u32,
    pub services_requested: u32,
    pub call_msg_mask: u32,
    pub agent_state_mask: u32,
    pub config_msg_mask: u32,
    pub client_id: String,
    /// Sent even when empty (the protocol requires the field).
    pub client_password: String,
    pub floating: Floating,
}

/// CTI_SERVICE_ALL_EVENTS: bridge mode, every call and agent event.
pub const SERVICE_ALL_EVENTS: u32 = 0x0000_0010;
/// Every call event bit of CallMsgMask (bits 0..=22).
pub const CALL_MSG_MASK_ALL: u32 = 0x007F_FFFF;
/// Every agent state bit of AgentStateMask (bits 0..=9).
pub const AGENT_STATE_MASK_ALL: u32 = 0x0000_03FF;

/// OPEN_CONF (reference B.3).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OpenConf {
    pub invoke_id: u32,
    pub services_granted: u32,
    pub monitor_id: u32,
    pub pg_status: u32,
    /// Seconds since 1970 (ICMCentralControllerTime).
    pub central_controller_time: u32,
    pub peripheral_online: bool,
    pub peripheral_type: u16,
    pub agent_state: u16,
    /// Version 19 and up.
    pub department_id: Option<i32>,
    pub floating: Floating,
}

/// Which call event a [`CallEvent`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CallEventKind {
    Delivered,
    Established,
    Held,
    Retrieved,
    Cleared,
    ConnectionCleared,
    Originated,
    Failed,
    Conferenced,
    Transferred,
    Diverted,
    ServiceInitiated,
    Queued,
    Dequeued,
    BeginCall,
    EndCall,
    CallDataUpdate,
}

/// A call event (types 9..=25 and 86). Fields follow the fixed parts of
/// reference B.4 under their ICM names; UCCX's names are in the comments.
/// A field the event type does not carry is `None`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallEvent {
    pub kind: CallEventKind,
    pub monitor_id: u32,
    pub peripheral_id: u32,
    pub peripheral_type: u16,
    /// ConnectionDeviceIDType (PrimaryDeviceIDType in CONFERENCED and
    /// TRANSFERRED).
    pub connection_device_id_type: u16,
    /// ConnectionCallID, UCCX CallID (PrimaryCallID in CONFERENCED and
    /// TRANSFERRED).
    pub connection_call_id: u32,
    pub line_handle: Option<u16>,
    pub line_type: Option<u16>,
    /// ServiceNumber; UCCX ApplicationID.
    pub service_number: Option<u32>,
    pub service_id: Option<u32>,
    /// SkillGroupNumber; UCCX CSQID.
    pub skill_group_number: Option<u32>,
    pub skill_group_id: Option<u32>,
    pub skill_group_priority: Option<u16>,
    /// The device types of the fixed part, by role (alerting, calling,
    /// called, last redirect, answering, holding, retrieving, releasing,
    /// failing, diverting, queue, controller, added party, transferring,
    /// transferred), in the order the fixed part has them.
    pub device_types: Vec<(DeviceRole, u16)>,
    pub local_connection_state: Option<u16>,
    pub event_cause: Option<u16>,
    /// CONFERENCED, TRANSFERRED.
    pub num_parties: Option<u16>,
    pub secondary_device_id_type: Option<u16>,
    pub secondary_call_id: Option<u32>,
    /// QUEUED, DEQUEUED.
    pub num_queued: Option<u16>,
    /// NumSkillGroups; UCCX NumCSQs.
    pub num_skill_groups: Option<u16>,
    /// BEGIN_CALL, CALL_DATA_UPDATE (and NumNamed* of DELIVERED).
    pub num_cti_clients: Option<u16>,
    pub num_named_variables: Option<u16>,
    pub num_named_arrays: Option<u16>,
    pub call_type: Option<u16>,
    pub called_party_disposition: Option<u16>,
    /// CALL_DATA_UPDATE.
    pub new_connection_device_id_type: Option<u16>,
    pub new_connection_call_id: Option<u32>,
    pub campaign_id: Option<u32>,
    pub query_rule_id: Option<u32>,
    pub floating: Floating,
}

impl CallEvent {
    /// A call event of `kind` for the call `connection_call_id`: the UCCX
    /// reserved values in MonitorID (0), PeripheralID (1) and PeripheralType
    /// (21, ACMI_CRS), ConnectionDeviceIDType none (0xFFFF), and every
    /// optional field `None`.
    pub fn new(kind: CallEventKind, connection_call_id: u32) -> CallEvent {
        CallEvent {
            connection_call_id,
            ..codec::blank_call(kind, 0, 0)
        }
    }
}

impl CallEventKind {
    /// The message type of this kind of call event (reference B.2).
    pub fn message_type(self) -> u32 {
        codec::call_message_type(self)
    }
}

/// The role of a device type field in a call event's fixed part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceRole {
    Alerting,
    Calling,
    Called,
    LastRedirect,
    Answering,
    Holding,
    Retrieving,
    Releasing,
    Failing,
    Diverting,
    Queue,
    Controller,
    AddedParty,
    Transferring,
    Transferred,
}

/// AGENT_STATE_EVENT (reference B.4). UCCX names: SkillGroupState is
/// CSQState, SkillGroupNumber is CSQID, NumFltSkillGroups is NumCSQs.
/// Fields after `event_reason_code` that the version's layout does not
/// carry are `None`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AgentStateEvent {
    pub monitor_id: u32,
    pub peripheral_id: u32,
    pub session_id: u32,
    pub peripheral_type: u16,
    pub skill_group_state: u16,
    /// Seconds in the state before this event.
    pub state_duration: u32,
    pub skill_group_number: u32,
    pub skill_group_id: u32,
    pub skill_group_priority: u16,
    pub agent_state: u16,
    pub event_reason_code: u16,
    pub mrd_id: Option<i32>,
    pub num_tasks: Option<u32>,
    pub agent_mode: Option<u16>,
    pub max_task_limit: Option<u32>,
    pub icm_agent_id: Option<i32>,
    pub agent_availability_status: Option<u32>,
    pub num_flt_skill_groups: Option<u16>,
    pub department_id: Option<i32>,
    pub floating: Floating,
}

/// SYSTEM_EVENT (reference B.3).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SystemEvent {
    pub pg_status: u32,
    pub central_controller_time: u32,
    pub system_event_id: u32,
    pub args: [u32; 3],
    pub event_device_type: u16,
    pub floating: Floating,
}

/// SystemEventID values that matter to a client (reference B.3).
pub mod system_event {
    pub const CENTRAL_CONTROLLER_OFFLINE: u32 = 2;
    pub const PERIPHERAL_OFFLINE: u32 = 4;
    pub const PERIPHERAL_GATEWAY_OFFLINE: u32 = 6;
    pub const CTI_SERVER_OFFLINE: u32 = 7;
}

/// "None" of a USHORT enumeration (DEVID_NONE, CEC_NONE, ...; reference B.1).
pub const NONE_U16: u16 = 0xFFFF;
/// "None" of a UINT id (NULL_SKILL_GROUP, NULL_SERVICE, ...); the seed
/// prints it as -1.
pub const NONE_U32: u32 = 0xFFFF_FFFF;

/// DeviceIDType values (reference B.6).
pub mod device_type {
    pub const DEVICE_IDENTIFIER: u16 = 0;
    pub const TRUNK: u16 = 70;
    pub const TRUNK_GROUP: u16 = 71;
    pub const IP_PHONE_MAC: u16 = 72;
    pub const CTI_PORT: u16 = 73;
    pub const ROUTE_POINT: u16 = 74;
    pub const EXTERNAL: u16 = 75;
    pub const AGENT_DEVICE: u16 = 76;
    pub const QUEUE: u16 = 77;
    pub const NON_ACD_DEVICE: u16 = 78;
    pub const SHARED_DEVICE: u16 = 79;
}

/// CallType values (reference B.6; 27 and up differ by version).
pub mod call_type {
    pub const ACD_IN: u16 = 1;
    pub const PREROUTE_ACD_IN: u16 = 2;
    pub const PREROUTE_DIRECT_AGENT: u16 = 3;
    pub const TRANSFER_IN: u16 = 4;
    pub const OVERFLOW_IN: u16 = 5;
    pub const OTHER_IN: u16 = 6;
    pub const AUTO_OUT: u16 = 7;
    pub const AGENT_OUT: u16 = 8;
    pub const OUT: u16 = 9;
    pub const AGENT_INSIDE: u16 = 10;
    pub const OFFERED: u16 = 11;
    pub const CONSULT: u16 = 12;
    pub const CONSULT_OFFERED: u16 = 13;
    pub const CONSULT_CONFERENCE: u16 = 14;
    pub const CONFERENCE: u16 = 15;
    pub const UNMONITORED: u16 = 16;
    pub const PREVIEW: u16 = 17;
    pub const RESERVATION: u16 = 18;
}

/// AgentState values (reference B.6).
pub mod agent_state {
    pub const LOGIN: u16 = 0;
    pub const LOGOUT: u16 = 1;
    pub const NOT_READY: u16 = 2;
    pub const AVAILABLE: u16 = 3;
    pub const TALKING: u16 = 4;
    pub const WORK_NOT_READY: u16 = 5;
    pub const WORK_READY: u16 = 6;
    pub const BUSY_OTHER: u16 = 7;
    pub const RESERVED: u16 = 8;
    pub const UNKNOWN: u16 = 9;
    pub const HOLD: u16 = 10;
}

/// EventCause values cdrhub reads (reference B.6).
pub mod event_cause {
    pub const BUSY: u16 = 3;
    pub const KEY_CONFERENCE: u16 = 17;
    pub const NEW_CALL: u16 = 22;
    pub const REDIRECTED: u16 = 28;
    pub const TRANSFER: u16 = 32;
}

/// FAILURE_CONF status of a standby UCCX node: E_CTI_SERVER_NOT_MASTER.
pub const STATUS_NOT_MASTER: u32 = 92;

/// The floating part: every field in wire order. Tags repeat for list
/// members (CSQ ids, connected parties, named variables).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Floating {
    pub fields: Vec<(u16, FloatValue)>,
}

/// A floating field's data, by the type its tag has (reference B.4, B.5).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum FloatValue {
    /// STRING: UTF-8 (invalid bytes replaced), the terminating NUL removed.
    Str(String),
    /// A 4-byte numeric field (ROUTER_CALL_KEY_*, TRUNK_NUMBER, ...).
    U32(u32),
    /// A 2-byte numeric field (device id types, ...).
    U16(u16),
    /// NAMEDVAR (tag 82): `name\0value\0`.
    NamedVar { name: String, value: String },
    /// NAMEDARRAY (tag 83): `index`, `name\0value\0`.
    NamedArray {
        index: u8,
        name: String,
        value: String,
    },
    /// UNSPEC data, and fields of a tag cdrhub does not know.
    Bytes(Vec<u8>),
}

impl Floating {
    /// The first string field with `tag`.
    pub fn str(&self, tag: u16) -> Option<&str> {
        self.fields.iter().find_map(|(t, v)| match v {
            FloatValue::Str(s) if *t == tag => Some(s.as_str()),
            _ => None,
        })
    }

    /// Every string field with `tag`, in wire order.
    pub fn strs(&self, tag: u16) -> impl Iterator<Item = &str> + '_ {
        self.fields.iter().filter_map(move |(t, v)| match v {
            FloatValue::Str(s) if *t == tag => Some(s.as_str()),
            _ => None,
        })
    }

    /// The first numeric field with `tag`.
    pub fn u32(&self, tag: u16) -> Option<u32> {
        self.fields.iter().find_map(|(t, v)| match v {
            FloatValue::U32(n) if *t == tag => Some(*n),
            FloatValue::U16(n) if *t == tag => Some(u32::from(*n)),
            _ => None,
        })
    }

    /// Every numeric field with `tag`, in wire order.
    pub fn u32s(&self, tag: u16) -> impl Iterator<Item = u32> + '_ {
        self.fields.iter().filter_map(move |(t, v)| match v {
            FloatValue::U32(n) if *t == tag => Some(*n),
            FloatValue::U16(n) if *t == tag => Some(u32::from(*n)),
            _ => None,
        })
    }

    /// Named variables (ECC variables, outbound `BA*` fields), in wire order.
    pub fn named_variables(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.fields.iter().filter_map(|(_, v)| match v {
            FloatValue::NamedVar { name, value } => Some((name.as_str(), value.as_str())),
            _ => None,
        })
    }

    /// The value of the named variable `name`, the last one if repeated.
    pub fn named_variable(&self, name: &str) -> Option<&str> {
        self.named_variables()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v)
            .last()
    }

    pub fn push_str(&mut self, tag: u16, value: impl Into<String>) {
        self.fields.push((tag, FloatValue::Str(value.into())));
    }
}

/// Why a frame cannot be decoded: one sentence naming the message type and
/// the offset in the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}: {reason} at body offset {offset}")]
pub struct CtiError {
    /// The message type's name (`CALL_DELIVERED_EVENT`), or `frame header`.
    pub message: String,
    pub offset: usize,
    pub reason: String,
}
