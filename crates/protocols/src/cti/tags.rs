//! Floating-field tags (reference B.5). UCCX reuses some numbers for its
//! own fields (ApplicationID is 77, AUTHORIZATION_CODE in the ICM table).

pub const CLIENT_ID: u16 = 1;
pub const CLIENT_PASSWORD: u16 = 2;
pub const CLIENT_SIGNATURE: u16 = 3;
pub const AGENT_EXTENSION: u16 = 4;
pub const AGENT_ID: u16 = 5;
pub const AGENT_INSTRUMENT: u16 = 6;
pub const TEXT: u16 = 7;
pub const ANI: u16 = 8;
pub const UUI: u16 = 9;
pub const DNIS: u16 = 10;
pub const DIALED_NUMBER: u16 = 11;
pub const CALLER_ENTERED_DIGITS: u16 = 12;
/// CALL_VAR_1; CallVariable n is `CALL_VAR_1 + n - 1` (13..=22).
pub const CALL_VAR_1: u16 = 13;
pub const CALL_VAR_10: u16 = 22;
pub const CTI_CLIENT_SIGNATURE: u16 = 23;
pub const CTI_CLIENT_TIMESTAMP: u16 = 24;
pub const CONNECTION_DEVID: u16 = 25;
pub const ALERTING_DEVID: u16 = 26;
pub const CALLING_DEVID: u16 = 27;
pub const CALLED_DEVID: u16 = 28;
pub const LAST_REDIRECT_DEVID: u16 = 29;
pub const ANSWERING_DEVID: u16 = 30;
pub const HOLDING_DEVID: u16 = 31;
pub const RETRIEVING_DEVID: u16 = 32;
pub const RELEASING_DEVID: u16 = 33;
pub const FAILING_DEVID: u16 = 34;
pub const PRIMARY_DEVID: u16 = 35;
pub const SECONDARY_DEVID: u16 = 36;
pub const CONTROLLER_DEVID: u16 = 37;
pub const ADDED_PARTY_DEVID: u16 = 38;
/// `ConnectedPartyCallID[n]` of CONFERENCED and TRANSFERRED (UINT).
pub const PARTY_CALLID: u16 = 39;
/// `ConnectedPartyDeviceIDType[n]` (USHORT).
pub const PARTY_DEVID_TYPE: u16 = 40;
/// `ConnectedPartyDeviceID[n]`.
pub const PARTY_DEVID: u16 = 41;
pub const TRANSFERRING_DEVID: u16 = 42;
pub const TRANSFERRED_DEVID: u16 = 43;
pub const DIVERTING_DEVID: u16 = 44;
pub const QUEUE_DEVID: u16 = 45;
pub const CALL_WRAPUP_DATA: u16 = 46;
pub const NEW_CONNECTION_DEVID: u16 = 47;
pub const TRUNK_USED_DEVID: u16 = 48;
pub const AGENT_PASSWORD: u16 = 49;
pub const ACTIVE_CONN_DEVID: u16 = 50;
pub const FACILITY_CODE: u16 = 51;
pub const OTHER_CONN_DEVID: u16 = 52;
pub const HELD_CONN_DEVID: u16 = 53;
/// `CallConnectionCallID[n]` of snapshot confirmations (UINT).
pub const CALL_CONN_CALLID: u16 = 56;
/// `CallConnectionDeviceIDType[n]` (USHORT).
pub const CALL_CONN_DEVID_TYPE: u16 = 57;
pub const CALL_CONN_DEVID: u16 = 58;
/// `CallDeviceIDType[n]` (USHORT).
pub const CALL_DEVID_TYPE: u16 = 59;
pub const CALL_DEVID: u16 = 60;
/// `CallDeviceConnectionState[n]` (USHORT).
pub const CALL_DEV_CONN_STATE: u16 = 61;
/// SkillGroupNumber of a list (UCCX `CSQID[n]`, UINT).
pub const SKILL_GROUP_NUMBER: u16 = 62;
pub const SKILL_GROUP_ID: u16 = 63;
pub const SKILL_GROUP_PRIORITY: u16 = 64;
/// SkillGroupState of a list (UCCX `CSQState[n]`, USHORT).
pub const SKILL_GROUP_STATE: u16 = 65;
pub const LINE_HANDLE: u16 = 70;
pub const LINE_TYPE: u16 = 71;
pub const ROUTER_CALL_KEY_DAY: u16 = 72;
pub const ROUTER_CALL_KEY_CALLID: u16 = 73;
/// `CallState[n]` (USHORT).
pub const CALL_STATE: u16 = 75;
pub const MONITORED_DEVID: u16 = 76;
/// UCCX ApplicationID (AUTHORIZATION_CODE in the ICM table).
pub const UCCX_APPLICATION_ID: u16 = 77;
/// AUTHORIZATION_CODE in the ICM table; UCCX uses 77 for ApplicationID.
pub const AUTHORIZATION_CODE: u16 = 77;
pub const ACCOUNT_CODE: u16 = 78;
pub const ORIGINATING_DEVID: u16 = 79;
pub const ORIGINATING_LINE_ID: u16 = 80;
pub const CLIENT_ADDRESS: u16 = 81;
pub const NAMED_VARIABLE: u16 = 82;
pub const NAMED_ARRAY: u16 = 83;
pub const SUPERVISOR_INSTRUMENT: u16 = 85;
pub const ATC_AGENT_ID: u16 = 86;
pub const AGENT_CONNECTION_DEVID: u16 = 90;
pub const SUPERVISOR_CONNECTION_DEVID: u16 = 91;
pub const SERVICE_NAME: u16 = 94;
pub const CUSTOMER_PHONE_NUMBER: u16 = 95;
pub const CUSTOMER_ACCOUNT_NUMBER: u16 = 96;
/// ApplicationPathID (UINT).
pub const APP_PATH_ID: u16 = 97;
pub const ROUTER_CALL_KEY_SEQUENCE_NUM: u16 = 110;
pub const TRUNK_NUMBER: u16 = 121;
pub const TRUNK_GROUP_NUMBER: u16 = 122;
pub const DURATION: u16 = 150;
/// NextAgentState of AGENT_STATE_EVENT (USHORT). \[UNCERTAIN\] number.
pub const NEXT_AGENT_STATE: u16 = 151;
pub const EXTENSION: u16 = 173;
/// AGENT_ID_LONG: UCCX's AgentID (up to 129 bytes).
pub const AGENT_ID_LONG: u16 = 194;
/// SecondaryConnectionCallID of CALL_DELIVERED (UINT).
pub const SECONDARY_CONNECTION_CALL_ID: u16 = 202;
/// EventDeviceID of UCCX SYSTEM_EVENT (developer.cisco.com system_event).
pub const EVENT_DEVICE_ID: u16 = 206;
pub const ANI_II: u16 = 215;
pub const CALL_REFERENCE_ID: u16 = 223;
/// MultilineAgentControl of OPEN_CONF (USHORT).
pub const MULTI_LINE_AGENT_CONTROL: u16 = 224;
/// NumPeripherals of OPEN_CONF (USHORT).
pub const NUM_PERIPHERALS: u16 = 228;

/// How a floating field's data is typed, which decides the
/// [`FloatValue`](super::FloatValue) it decodes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// STRING: NUL-terminated UTF-8 ([`FloatValue::Str`](super::FloatValue::Str)).
    Str,
    /// UINT or USHORT, told apart by the field's length (4 or 2); any other
    /// length is kept as bytes.
    Numeric,
    /// NAMEDVAR, tag 82.
    NamedVariable,
    /// NAMEDARRAY, tag 83.
    NamedArray,
    /// UNSPEC (CLIENT_PASSWORD, UUI) and every tag cdrhub does not know.
    Bytes,
}

/// The type of the floating field `tag` in protocol `version` (reference
/// B.1, B.4, B.5). Tag 77 is UCCX's numeric ApplicationID below version 20
/// and ICM's AUTHORIZATION_CODE string from 20 on **\[UNCERTAIN\]**: the
/// reference notes the reuse, not which versions use which.
pub fn field_type(tag: u16, version: u32) -> FieldType {
    match tag {
        NAMED_VARIABLE => FieldType::NamedVariable,
        NAMED_ARRAY => FieldType::NamedArray,
        UCCX_APPLICATION_ID if version < 20 => FieldType::Numeric,
        AUTHORIZATION_CODE => FieldType::Str,
        CTI_CLIENT_TIMESTAMP
        | PARTY_CALLID
        | PARTY_DEVID_TYPE
        | CALL_CONN_CALLID
        | CALL_CONN_DEVID_TYPE
        | CALL_DEVID_TYPE
        | CALL_DEV_CONN_STATE
        | SKILL_GROUP_NUMBER
        | SKILL_GROUP_ID
        | SKILL_GROUP_PRIORITY
        | SKILL_GROUP_STATE
        | LINE_HANDLE
        | LINE_TYPE
        | ROUTER_CALL_KEY_DAY
        | ROUTER_CALL_KEY_CALLID
        | CALL_STATE
        | APP_PATH_ID
        | ROUTER_CALL_KEY_SEQUENCE_NUM
        | TRUNK_NUMBER
        | TRUNK_GROUP_NUMBER
        | DURATION
        | NEXT_AGENT_STATE
        | SECONDARY_CONNECTION_CALL_ID
        | MULTI_LINE_AGENT_CONTROL
        | NUM_PERIPHERALS => FieldType::Numeric,
        CLIENT_ID
        | CLIENT_SIGNATURE
        | AGENT_EXTENSION
        | AGENT_ID
        | AGENT_INSTRUMENT
        | TEXT
        | ANI
        | DNIS
        | DIALED_NUMBER
        | CALLER_ENTERED_DIGITS
        | CALL_VAR_1..=CALL_VAR_10
        | CTI_CLIENT_SIGNATURE
        | CONNECTION_DEVID..=ADDED_PARTY_DEVID
        | PARTY_DEVID
        | TRANSFERRING_DEVID..=AGENT_PASSWORD
        | ACTIVE_CONN_DEVID..=HELD_CONN_DEVID
        | CALL_CONN_DEVID
        | CALL_DEVID
        | MONITORED_DEVID
        | ACCOUNT_CODE..=CLIENT_ADDRESS
        | SUPERVISOR_INSTRUMENT
        | ATC_AGENT_ID
        | AGENT_CONNECTION_DEVID
        | SUPERVISOR_CONNECTION_DEVID
        | SERVICE_NAME
        | CUSTOMER_PHONE_NUMBER
        | CUSTOMER_ACCOUNT_NUMBER
        | EXTENSION
        | AGENT_ID_LONG
        | EVENT_DEVICE_ID
        | ANI_II => FieldType::Str,
        _ => FieldType::Bytes,
    }
}
