//! Unified CCX MIVR high-level text traces (seed 003, Example 1): the
//! messages a trace shows, for `cdrhub import cti-trace`.
//!
//! An entry is a header line, `7091923: Nov 20 10:43:59.435 EDT
//! %MIVR-ICD_CTI-7-UNK:`, whose text (on that line or the next ones) says
//! `got an event message:` and is followed by a `{ length=-1
//! type=BEGIN_CALL_EVENT, monitorID: 0, ... }` block, which may span lines.
//! Any other MIVR line (the binary `writing...` dumps, other facilities) and
//! any text between entries is skipped.
//!
//! The block's fields are mapped by name onto [`CtiMessage`]: the names
//! of the trace (`connectionCallID`, `ani`, `callVar1`) and those of the
//! guide's message-flow tables (`CallID`, `CSQID`, `AlertingDeviceType`,
//! `ConnectedPartyDeviceID[0]`), in any case. `null` and empty values are
//! absent. What the trace does not print stays `None` (a trace shows what
//! Unified CCX chose to print, nothing is guessed), except the fields
//! [`CallEvent`] always has: the UCCX reserved MonitorID 0, PeripheralID 1
//! and PeripheralType 21, and ConnectionDeviceIDType none (0xFFFF). A call
//! event without its CallID is an error. Fixed fields the event type does
//! not carry, and names cdrhub does not know, are ignored.
//!
//! Numbers are decimal; a negative one is the two's complement of the field
//! (`CSQID: -1` is 0xFFFFFFFF, as the flow tables print "none"). Symbolic
//! values (`CONNECTION_ID_STATIC`, `LCS_CONNECT`) are not read: a field
//! with one is an error.

use super::codec::{self, Fixed};
use super::tags;
use super::{
    AgentStateEvent, CallEvent, CallEventKind, CtiBody, CtiMessage, FloatValue, Floating,
    SystemEvent, message_type,
};
use cdrhub_model::Timestamp;

/// One message of a trace.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceEntry {
    /// 1-based number of the entry's header line.
    pub line: usize,
    pub time: Timestamp,
    pub message: CtiMessage,
}

/// An event message of a trace that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct TraceError {
    /// 1-based number of the entry's header line.
    pub line: usize,
    pub reason: String,
}

/// The protocol version whose layouts a trace's fields are placed in:
/// Unified CCX speaks CTI versions 10–14 (reference B.1).
const UCCX_VERSION: u32 = 14;

/// Reads every event message of a trace, in order. The trace has no year:
/// `year` is that of the first line, and the year advances when the month
/// goes back (December to January).
pub fn parse(text: &str, year: i32) -> Vec<Result<TraceEntry, TraceError>> {
    let lines: Vec<&str> = text.lines().collect();
    let mut entries = Vec::new();
    let mut year = year;
    let mut last_month = None;
    let mut at = 0;
    while let Some(line) = lines.get(at) {
        let Some(header) = Header::parse(line) else {
            at += 1;
            continue;
        };
        if last_month.is_some_and(|last| header.month < last) {
            year += 1;
        }
        last_month = Some(header.month);
        let (next, entry) = read_entry(&lines, at, &header, year);
        entries.extend(entry);
        at = next;
    }
    entries
}

/// The start of an MIVR line: `<n>: <Mon> <day> <hh:mm:ss.mmm> <zone> <rest>`.
struct Header<'a> {
    month: u8,
    day: u8,
    time: &'a str,
    zone: &'a str,
    rest: &'a str,
}

impl<'a> Header<'a> {
    fn parse(line: &'a str) -> Option<Header<'a>> {
        let (sequence, rest) = token(line)?;
        let digits = sequence.strip_suffix(':')?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (month, rest) = token(rest)?;
        let month = month_number(month)?;
        let (day, rest) = token(rest)?;
        let day: u8 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
        let (time, rest) = token(rest)?;
        if !time.starts_with(|c: char| c.is_ascii_digit()) || !time.contains(':') {
            return None;
        }
        let (zone, rest) = token(rest)?;
        Some(Header {
            month,
            day,
            time,
            zone,
            rest: rest.trim_start(),
        })
    }

    fn timestamp(&self, year: i32) -> Result<Timestamp, String> {
        let offset = match self.zone {
            "UTC" | "GMT" => "Z",
            "EDT" => "-04:00",
            "EST" | "CDT" => "-05:00",
            "CST" | "MDT" => "-06:00",
            "MST" | "PDT" => "-07:00",
            "PST" => "-08:00",
            zone => return Err(format!("unknown time zone {zone:?}")),
        };
        let text = format!(
            "{year:04}-{:02}-{:02}T{}{offset}",
            self.month, self.day, self.time
        );
        Timestamp::parse_rfc3339(&text).map_err(|_| {
            format!(
                "invalid time {} {} {} in year {year}",
                month_name(self.month),
                self.day,
                self.time
            )
        })
    }
}

fn is_header(line: &str) -> bool {
    Header::parse(line).is_some()
}

/// The first whitespace-separated token of `s` and what follows it.
fn token(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start();
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    (end > 0).then(|| s.split_at(end))
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn month_number(name: &str) -> Option<u8> {
    let i = MONTHS.iter().position(|m| *m == name)?;
    u8::try_from(i + 1).ok()
}

fn month_name(month: u8) -> &'static str {
    MONTHS
        .get(usize::from(month).wrapping_sub(1))
        .copied()
        .unwrap_or("?")
}

/// Reads the entry whose header is line `at`: the index of the line after
/// it, and the entry if it is an event message.
fn read_entry(
    lines: &[&str],
    at: usize,
    header: &Header,
    year: i32,
) -> (usize, Option<Result<TraceEntry, TraceError>>) {
    let line = at + 1;
    let fail = |reason: String| Some(Err(TraceError { line, reason }));

    // The text before the `{`, over as many lines as it takes.
    let mut intro = String::new();
    let mut segment = header.rest;
    let mut brace_line = at;
    let block_start = loop {
        if let Some(brace) = segment.find('{') {
            intro.push_str(&segment[..brace]);
            break Some(&segment[brace..]);
        }
        intro.push_str(segment);
        intro.push(' ');
        brace_line += 1;
        match lines.get(brace_line) {
            Some(next) if !is_header(next) => segment = next,
            _ => break None,
        }
    };
    if !intro.contains("got an event message") {
        return (at + 1, None);
    }
    let Some(block_start) = block_start else {
        return (
            brace_line,
            fail("an event message without its { ... } block".to_owned()),
        );
    };

    // The block, up to the line that ends with `}`.
    let mut block = String::new();
    let mut segment = block_start;
    let mut end_line = brace_line;
    loop {
        block.push_str(segment.trim());
        if segment.trim_end().ends_with('}') {
            break;
        }
        block.push(' ');
        end_line += 1;
        match lines.get(end_line) {
            Some(next) if !is_header(next) => segment = next,
            _ => {
                return (
                    end_line,
                    fail("the event message's { block is not closed".to_owned()),
                );
            }
        }
    }
    let next = end_line + 1;

    let time = match header.timestamp(year) {
        Ok(time) => time,
        Err(reason) => return (next, fail(reason)),
    };
    match read_block(&block) {
        Ok(message) => (
            next,
            Some(Ok(TraceEntry {
                line,
                time,
                message,
            })),
        ),
        Err(reason) => (next, fail(reason)),
    }
}

/// One `name: value` of a block; `index` for list members (`CsqID[0]`).
struct Item<'a> {
    name: &'a str,
    /// The name in lowercase, letters and digits only.
    key: String,
    index: Option<u32>,
    /// `None` for `null` and empty values.
    value: Option<&'a str>,
}

/// `{ length=-1 type=NAME, name: value, ... }` to a message.
fn read_block(block: &str) -> Result<CtiMessage, String> {
    let inner = block
        .strip_prefix('{')
        .and_then(|b| b.strip_suffix('}'))
        .unwrap_or(block);
    let mut segments = split_items(inner).into_iter();
    let preamble = segments.next().unwrap_or_default();
    let type_name = preamble
        .split(|c: char| c.is_whitespace() || c == ',')
        .find_map(|word| word.strip_prefix("type="))
        .filter(|name| !name.is_empty())
        .ok_or_else(|| "the block has no type=".to_owned())?;
    let id = codec::message_type_by_name(type_name)
        .ok_or_else(|| format!("unknown message type {type_name}"))?;
    let items: Vec<Item> = segments.filter_map(item).collect();
    let name = codec::message_type_name(id);
    let body = if let Some(kind) = codec::call_kind(id) {
        CtiBody::Call(Box::new(call_event(kind, &name, &items)?))
    } else if id == message_type::AGENT_STATE_EVENT {
        CtiBody::AgentState(Box::new(agent_state(&items)?))
    } else if id == message_type::SYSTEM_EVENT {
        CtiBody::SystemEvent(system_event(&items)?)
    } else {
        return Err(format!(
            "{name} is not a call, agent state or system event, the messages a trace is read for"
        ));
    };
    Ok(CtiMessage {
        message_type: id,
        body,
    })
}

/// Splits a block's content at each comma that is followed by `name:`;
/// commas inside values (`John, Doe`) stay.
fn split_items(inner: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let mut start = 0;
    for (comma, _) in inner.match_indices(',') {
        let after = &inner[comma + 1..];
        if name_at(after).is_some() {
            items.push(&inner[start..comma]);
            start = comma + 1;
        }
    }
    items.push(&inner[start..]);
    items
}

/// The `name`, optional `[index]` and the text after the `:` of `s` when
/// it starts (after spaces) with `name:` or `name[n]:` followed by a space
/// or its end.
fn name_at(s: &str) -> Option<(&str, Option<u32>, &str)> {
    let s = s.trim_start();
    if !s.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let name_end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(s.len());
    let (name, rest) = s.split_at(name_end);
    let (index, rest) = match rest.strip_prefix('[') {
        Some(bracketed) => {
            let close = bracketed.find(']')?;
            let index = bracketed[..close].parse().ok()?;
            (Some(index), &bracketed[close + 1..])
        }
        None => (None, rest),
    };
    let value = rest.strip_prefix(':')?;
    if !(value.is_empty() || value.starts_with(char::is_whitespace)) {
        return None;
    }
    Some((name, index, value))
}

fn item(segment: &str) -> Option<Item<'_>> {
    let (name, index, value) = name_at(segment)?;
    let value = value.trim();
    let key = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    Some(Item {
        name,
        key,
        index,
        value: (!value.is_empty() && value != "null").then_some(value),
    })
}

/// A decimal number for a field of `size` bytes; negative values wrap as
/// the two's complement of the field.
fn number(item: &Item, value: &str, size: usize) -> Result<u32, String> {
    let n: i64 = value
        .parse()
        .map_err(|_| format!("{} value {value:?} is not a number", item.name))?;
    let out_of_range = || format!("{} value {value} does not fit its field", item.name);
    if size == 4 {
        match n {
            -0x8000_0000..0 => Ok(n as i32 as u32),
            _ => u32::try_from(n).map_err(|_| out_of_range()),
        }
    } else {
        match n {
            -0x8000..0 => Ok(u32::from(n as i16 as u16)),
            _ => u16::try_from(n).map(u32::from).map_err(|_| out_of_range()),
        }
    }
}

/// Fixed fields of the call events, by their names in traces and in the
/// guide's flow tables (seed 003).
fn call_fixed_field(key: &str) -> Option<Fixed> {
    use super::DeviceRole as R;
    Some(match key {
        "monitorid" => Fixed::MonitorId,
        "peripheralid" => Fixed::PeripheralId,
        "peripheraltype" => Fixed::PeripheralType,
        "connectiondevicetype"
        | "connectiondeviceidtype"
        | "primarydevicetype"
        | "primarydeviceidtype" => Fixed::ConnectionDeviceIdType,
        "connectioncallid" | "callid" | "primarycallid" => Fixed::ConnectionCallId,
        "linehandle" => Fixed::LineHandle,
        "linetype" => Fixed::LineType,
        "applicationid" | "servicenumber" => Fixed::ServiceNumber,
        "serviceid" => Fixed::ServiceId,
        "csqid" | "skillgroupnumber" => Fixed::SkillGroupNumber,
        "skillgroupid" => Fixed::SkillGroupId,
        "skillgrouppriority" => Fixed::SkillGroupPriority,
        "alertingdevicetype" => Fixed::DeviceType(R::Alerting),
        "callingdevicetype" => Fixed::DeviceType(R::Calling),
        "calleddevicetype" => Fixed::DeviceType(R::Called),
        "lastredirecteddevicetype" | "lastredirectdevicetype" => Fixed::DeviceType(R::LastRedirect),
        "answeringdevicetype" => Fixed::DeviceType(R::Answering),
        "holdingdevicetype" => Fixed::DeviceType(R::Holding),
        "retrievingdevicetype" => Fixed::DeviceType(R::Retrieving),
        // "ReleasingingDeviceType" is how seed 003's flow tables spell it
        // in places.
        "releasingdevicetype" | "releasingingdevicetype" => Fixed::DeviceType(R::Releasing),
        "failingdevicetype" => Fixed::DeviceType(R::Failing),
        "divertingdevicetype" => Fixed::DeviceType(R::Diverting),
        "queuedevicetype" => Fixed::DeviceType(R::Queue),
        "controllerdevicetype" => Fixed::DeviceType(R::Controller),
        "addedpartydevicetype" | "addeddevicetype" => Fixed::DeviceType(R::AddedParty),
        "transferringdevicetype" => Fixed::DeviceType(R::Transferring),
        "transferreddevicetype" => Fixed::DeviceType(R::Transferred),
        "localconnectionstate" => Fixed::LocalConnectionState,
        "eventcause" => Fixed::EventCause,
        "numparties" => Fixed::NumParties,
        "secondarydevicetype" | "secondarydeviceidtype" => Fixed::SecondaryDeviceIdType,
        "secondarycallid" => Fixed::SecondaryCallId,
        "numqueued" => Fixed::NumQueued,
        "numcsqs" | "numskillgroups" => Fixed::NumSkillGroups,
        "numcticlients" => Fixed::NumCtiClients,
        "numnamedvars" | "numnamedvariables" => Fixed::NumNamedVariables,
        "numnamedarrays" => Fixed::NumNamedArrays,
        "calltype" => Fixed::CallType,
        "calledpartydisposition" => Fixed::CalledPartyDisposition,
        "newconnectiondevicetype" | "newconnectiondeviceidtype" => Fixed::NewConnectionDeviceIdType,
        "newconnectioncallid" => Fixed::NewConnectionCallId,
        "campaignid" => Fixed::CampaignId,
        "queryruleid" => Fixed::QueryRuleId,
        _ => return None,
    })
}

/// How a floating field's trace value is read.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    U32,
    U16,
}

/// Floating fields by name (reference B.4, B.5); `indexed` for the list
/// members the flow tables print as `name[n]`.
fn floating_field(key: &str, indexed: bool) -> Option<(u16, Kind)> {
    if indexed {
        return Some(match key {
            // "ConnectedPartyDCallID" is the flow tables' spelling.
            "connectedpartycallid" | "connectedpartydcallid" => (tags::PARTY_CALLID, Kind::U32),
            "connectedpartydevicetype" | "connectedpartydeviceidtype" => {
                (tags::PARTY_DEVID_TYPE, Kind::U16)
            }
            "connectedpartydeviceid" => (tags::PARTY_DEVID, Kind::Str),
            "csqid" | "skillgroupnumber" => (tags::SKILL_GROUP_NUMBER, Kind::U32),
            "csqstate" | "skillgroupstate" => (tags::SKILL_GROUP_STATE, Kind::U16),
            _ => return None,
        });
    }
    let tag = match key {
        // "ani1" is how seed 003 prints the ANI: its footnote marker 1 is
        // glued to the name.
        "ani" | "ani1" => tags::ANI,
        "dnis" => tags::DNIS,
        "dialednumber" => tags::DIALED_NUMBER,
        "callerentereddigits" | "ced" => tags::CALLER_ENTERED_DIGITS,
        "wrapupdata" | "callwrapupdata" => tags::CALL_WRAPUP_DATA,
        "connectiondeviceid" => tags::CONNECTION_DEVID,
        "alertingdeviceid" => tags::ALERTING_DEVID,
        "callingdeviceid" => tags::CALLING_DEVID,
        "calleddeviceid" => tags::CALLED_DEVID,
        "lastredirecteddeviceid" | "lastredirectdeviceid" => tags::LAST_REDIRECT_DEVID,
        "answeringdeviceid" => tags::ANSWERING_DEVID,
        "holdingdeviceid" => tags::HOLDING_DEVID,
        "retrievingdeviceid" => tags::RETRIEVING_DEVID,
        "releasingdeviceid" => tags::RELEASING_DEVID,
        "failingdeviceid" => tags::FAILING_DEVID,
        "primarydeviceid" => tags::PRIMARY_DEVID,
        "secondarydeviceid" => tags::SECONDARY_DEVID,
        "controllerdeviceid" => tags::CONTROLLER_DEVID,
        "addeddeviceid" | "addedpartydeviceid" => tags::ADDED_PARTY_DEVID,
        "transferringdeviceid" => tags::TRANSFERRING_DEVID,
        "transferreddeviceid" => tags::TRANSFERRED_DEVID,
        "divertingdeviceid" => tags::DIVERTING_DEVID,
        "queuedeviceid" => tags::QUEUE_DEVID,
        "newconnectiondeviceid" => tags::NEW_CONNECTION_DEVID,
        "customerphonenumber" => tags::CUSTOMER_PHONE_NUMBER,
        "customeraccountnumber" => tags::CUSTOMER_ACCOUNT_NUMBER,
        "agentextension" => tags::AGENT_EXTENSION,
        // UCCX's AgentID is AGENT_ID_LONG (reference B.3).
        "agentid" => tags::AGENT_ID_LONG,
        "agentinstrument" => tags::AGENT_INSTRUMENT,
        "text" => tags::TEXT,
        "eventdeviceid" => tags::EVENT_DEVICE_ID,
        "nextagentstate" => return Some((tags::NEXT_AGENT_STATE, Kind::U16)),
        "duration" => return Some((tags::DURATION, Kind::U32)),
        // CALL_DELIVERED's SecondaryCallID is floating; CONFERENCED's and
        // TRANSFERRED's is fixed (taken before this is asked).
        "secondarycallid" => return Some((tags::SECONDARY_CONNECTION_CALL_ID, Kind::U32)),
        _ => {
            let n: u16 = key
                .strip_prefix("callvariable")
                .or_else(|| key.strip_prefix("callvar"))?
                .parse()
                .ok()
                .filter(|n| (1..=10).contains(n))?;
            tags::CALL_VAR_1 + n - 1
        }
    };
    Some((tag, Kind::Str))
}

/// Adds the item to `floating` if it names a floating field.
fn push_floating(floating: &mut Floating, item: &Item, value: &str) -> Result<(), String> {
    let Some((tag, kind)) = floating_field(&item.key, item.index.is_some()) else {
        return Ok(());
    };
    let value = match kind {
        Kind::Str => FloatValue::Str(value.to_owned()),
        Kind::U32 => FloatValue::U32(number(item, value, 4)?),
        // A 2-byte number fits in a u16.
        Kind::U16 => FloatValue::U16(number(item, value, 2)? as u16),
    };
    floating.fields.push((tag, value));
    Ok(())
}

fn call_event(kind: CallEventKind, name: &str, items: &[Item]) -> Result<CallEvent, String> {
    let layout = codec::call_layout(kind, UCCX_VERSION);
    let position = |field: Fixed| layout.fields.iter().position(|f| *f == field);
    let devices = layout
        .fields
        .iter()
        .filter(|f| matches!(f, Fixed::DeviceType(_)))
        .count();
    let mut event = codec::blank_call(kind, devices, items.len());
    let mut has_call_id = false;
    for item in items {
        let Some(value) = item.value else { continue };
        let fixed = item
            .index
            .is_none()
            .then(|| call_fixed_field(&item.key))
            .flatten()
            .filter(|f| position(*f).is_some());
        match fixed {
            Some(field) => {
                let n = number(item, value, field.size())?;
                if let Fixed::DeviceType(role) = field {
                    // A repeated device type replaces the earlier one.
                    event.device_types.retain(|(r, _)| *r != role);
                }
                codec::set_fixed(&mut event, field, n);
                has_call_id |= field == Fixed::ConnectionCallId;
            }
            None => push_floating(&mut event.floating, item, value)?,
        }
    }
    if !has_call_id {
        return Err(format!("the {name} block has no CallID"));
    }
    event
        .device_types
        .sort_by_key(|(role, _)| position(Fixed::DeviceType(*role)));
    Ok(event)
}

fn agent_state(items: &[Item]) -> Result<AgentStateEvent, String> {
    // The UCCX reserved values (agent_state_event), and "none" for the CSQ.
    let mut event = AgentStateEvent {
        monitor_id: 0,
        peripheral_id: 1,
        session_id: 0,
        peripheral_type: 21,
        skill_group_number: 0xFFFF_FFFF,
        skill_group_id: 0xFFFF_FFFF,
        floating: Floating {
            fields: Vec::with_capacity(items.len()),
        },
        ..AgentStateEvent::default()
    };
    let mut has_state = false;
    for item in items {
        let Some(value) = item.value else { continue };
        let u32_ = || number(item, value, 4);
        // 2-byte numbers fit in a u16; signed fields take the bits as i32.
        let u16_ = || number(item, value, 2).map(|n| n as u16);
        let i32_ = || number(item, value, 4).map(|n| n as i32);
        if item.index.is_some() {
            push_floating(&mut event.floating, item, value)?;
            continue;
        }
        match item.key.as_str() {
            "monitorid" => event.monitor_id = u32_()?,
            "peripheralid" => event.peripheral_id = u32_()?,
            "sessionid" => event.session_id = u32_()?,
            "peripheraltype" => event.peripheral_type = u16_()?,
            "csqstate" | "skillgroupstate" => event.skill_group_state = u16_()?,
            "stateduration" => event.state_duration = u32_()?,
            "csqid" | "skillgroupnumber" => event.skill_group_number = u32_()?,
            "skillgroupid" => event.skill_group_id = u32_()?,
            "skillgrouppriority" => event.skill_group_priority = u16_()?,
            "agentstate" => {
                event.agent_state = u16_()?;
                has_state = true;
            }
            "eventreasoncode" => event.event_reason_code = u16_()?,
            "mrdid" => event.mrd_id = Some(i32_()?),
            "numtasks" => event.num_tasks = Some(u32_()?),
            "agentmode" => event.agent_mode = Some(u16_()?),
            "maxtasklimit" => event.max_task_limit = Some(u32_()?),
            "icmagentid" => event.icm_agent_id = Some(i32_()?),
            "agentavailabilitystatus" => event.agent_availability_status = Some(u32_()?),
            "numcsqs" | "numfltskillgroups" => event.num_flt_skill_groups = Some(u16_()?),
            "departmentid" => event.department_id = Some(i32_()?),
            _ => push_floating(&mut event.floating, item, value)?,
        }
    }
    if !has_state {
        return Err("the AGENT_STATE_EVENT block has no AgentState".to_owned());
    }
    Ok(event)
}

fn system_event(items: &[Item]) -> Result<SystemEvent, String> {
    let mut event = SystemEvent {
        event_device_type: 0xFFFF,
        ..SystemEvent::default()
    };
    let mut has_id = false;
    for item in items {
        let Some(value) = item.value else { continue };
        if item.index.is_some() {
            push_floating(&mut event.floating, item, value)?;
            continue;
        }
        // UCCX names (system_event): CCXStatus, CCXTime.
        match item.key.as_str() {
            "pgstatus" | "ccxstatus" => event.pg_status = number(item, value, 4)?,
            "icmcentralcontrollertime" | "ccxtime" => {
                event.central_controller_time = number(item, value, 4)?
            }
            "systemeventid" => {
                event.system_event_id = number(item, value, 4)?;
                has_id = true;
            }
            "systemeventarg1" => event.args[0] = number(item, value, 4)?,
            "systemeventarg2" => event.args[1] = number(item, value, 4)?,
            "systemeventarg3" => event.args[2] = number(item, value, 4)?,
            // A 2-byte number fits in a u16.
            "eventdevicetype" => event.event_device_type = number(item, value, 2)? as u16,
            _ => push_floating(&mut event.floating, item, value)?,
        }
    }
    if !has_id {
        return Err("the SYSTEM_EVENT block has no SystemEventID".to_owned());
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_split_at_commas_that_start_a_name() {
        let items = split_items(" length=-1 type=X, a: 1, b: John, Doe, c[2]: , d: null");
        assert_eq!(
            items,
            vec![
                " length=-1 type=X",
                " a: 1",
                " b: John, Doe",
                " c[2]: ",
                " d: null"
            ]
        );
        let c = item(items[3]).unwrap();
        assert_eq!((c.key.as_str(), c.index, c.value), ("c", Some(2), None));
        assert_eq!(item(items[4]).unwrap().value, None);
        assert_eq!(item(items[2]).unwrap().value, Some("John, Doe"));
    }

    #[test]
    fn numbers_wrap_negative_values_into_the_field() {
        let it = item("CSQID: -1").unwrap();
        assert_eq!(number(&it, "-1", 4), Ok(0xFFFF_FFFF));
        assert_eq!(number(&it, "-1", 2), Ok(0xFFFF));
        assert_eq!(number(&it, "65535", 2), Ok(0xFFFF));
        assert!(number(&it, "65536", 2).is_err());
        assert!(number(&it, "N/A", 4).is_err());
    }

    #[test]
    fn headers_need_a_sequence_number_a_month_a_day_and_a_time() {
        let h = Header::parse("7091923: Nov 20 10:43:59.435 EDT %MIVR-ICD_CTI-7-UNK:").unwrap();
        assert_eq!(
            (h.month, h.day, h.time, h.zone),
            (11, 20, "10:43:59.435", "EDT")
        );
        assert_eq!(h.rest, "%MIVR-ICD_CTI-7-UNK:");
        assert!(Header::parse("CSOutboundMsgProcessor: got an event message:").is_none());
        assert!(Header::parse("0010: 00 01 00 00 01 00 01 10").is_none());
        assert!(Header::parse("7: Foo 20 10:43:59 EDT x").is_none());
    }
}
