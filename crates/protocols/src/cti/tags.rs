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
/// ConnectedPartyCallID[n] of CONFERENCED and TRANSFERRED (UINT).
pub const PARTY_CALLID: u16 = 39;
/// ConnectedPartyDeviceIDType[n] (USHORT).
pub const PARTY_DEVID_TYPE: u16 = 40;
/// ConnectedPartyDeviceID[n].
pub const PARTY_DEVID: u16 = 41;
pub const TRANSFERRING_DEVID: u16 = 42;
pub const TRANSFERRED_DEVID: u16 = 43;
pub const DIVERTING_DEVID: u16 = 44;
pub const QUEUE_DEVID: u16 = 45;
pub const CALL_WRAPUP_DATA: u16 = 46;
pub const NEW_CONNECTION_DEVID: u16 = 47;
pub const TRUNK_USED_DEVID: u16 = 48;
pub const AGENT_PASSWORD: u16 = 49;
/// SkillGroupNumber of a list (UCCX CSQID[n], UINT).
pub const SKILL_GROUP_NUMBER: u16 = 62;
pub const SKILL_GROUP_ID: u16 = 63;
pub const SKILL_GROUP_PRIORITY: u16 = 64;
/// SkillGroupState of a list (UCCX CSQState[n], USHORT).
pub const SKILL_GROUP_STATE: u16 = 65;
pub const LINE_HANDLE: u16 = 70;
pub const LINE_TYPE: u16 = 71;
pub const ROUTER_CALL_KEY_DAY: u16 = 72;
pub const ROUTER_CALL_KEY_CALLID: u16 = 73;
pub const CALL_STATE: u16 = 75;
/// UCCX ApplicationID (AUTHORIZATION_CODE in the ICM table).
pub const UCCX_APPLICATION_ID: u16 = 77;
pub const NAMED_VARIABLE: u16 = 82;
pub const NAMED_ARRAY: u16 = 83;
pub const SERVICE_NAME: u16 = 94;
pub const CUSTOMER_PHONE_NUMBER: u16 = 95;
pub const CUSTOMER_ACCOUNT_NUMBER: u16 = 96;
pub const APP_PATH_ID: u16 = 97;
pub const ROUTER_CALL_KEY_SEQUENCE_NUM: u16 = 110;
pub const TRUNK_NUMBER: u16 = 121;
pub const TRUNK_GROUP_NUMBER: u16 = 122;
pub const DURATION: u16 = 150;
/// NextAgentState of AGENT_STATE_EVENT (USHORT). [UNCERTAIN] number.
pub const NEXT_AGENT_STATE: u16 = 151;
pub const EXTENSION: u16 = 173;
/// AGENT_ID_LONG: UCCX's AgentID (up to 129 bytes).
pub const AGENT_ID_LONG: u16 = 194;
pub const SECONDARY_CONNECTION_CALL_ID: u16 = 202;
pub const ANI_II: u16 = 215;
pub const CALL_REFERENCE_ID: u16 = 223;
pub const NUM_PERIPHERALS: u16 = 228;
