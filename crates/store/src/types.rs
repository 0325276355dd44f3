use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use cdrhub_model::{Call, CallEvent, Direction, Disposition, Leg, Timestamp};
use cdrhub_protocols::cms::CmsBatch;
use serde::{Deserialize, Serialize};

use crate::StoreError;

/// Records from one sender, decoded, ready for the journal.
#[derive(Debug, Clone)]
pub struct IngestBatch {
    /// The system that sent it, as shown in `/api/v1/sources`.
    pub sender: String,
    pub received_at: Timestamp,
    pub payload: IngestPayload,
}

#[derive(Debug, Clone)]
pub enum IngestPayload {
    Cms(CmsIngest),
    Cti(CtiIngest),
    Radius(RadiusIngest),
    Feed(FeedIngest),
    Hep(HepIngest),
    Events(EventsIngest),
}

impl IngestPayload {
    pub fn source(&self) -> &'static str {
        match self {
            IngestPayload::Cms(_) => cdrhub_model::SOURCE_CMS,
            IngestPayload::Cti(_) => cdrhub_model::SOURCE_CTI,
            IngestPayload::Radius(_) => cdrhub_model::SOURCE_RADIUS,
            IngestPayload::Feed(_) => cdrhub_model::SOURCE_FEED,
            IngestPayload::Hep(_) => cdrhub_model::SOURCE_SIP,
            IngestPayload::Events(e) if e.imported => cdrhub_model::SOURCE_CSV,
            IngestPayload::Events(_) => cdrhub_model::SOURCE_EVENTS,
        }
    }

    pub fn record_count(&self) -> usize {
        match self {
            IngestPayload::Cms(c) => c.batch.records.len(),
            IngestPayload::Cti(c) => c.messages.len(),
            IngestPayload::Radius(r) => r.requests.len(),
            IngestPayload::Feed(f) => f.lines.len(),
            IngestPayload::Hep(h) => h.packets.len(),
            IngestPayload::Events(e) => e.events.len(),
        }
    }
}

/// Messages read from one CTI server connection (issue 4). The `sender` of
/// the batch names the configured server pair.
#[derive(Debug, Clone)]
pub struct CtiIngest {
    /// The node they came from (`host:port`).
    pub node: String,
    /// The connection's session: a fresh id each time the client connects.
    /// Messages are numbered within it, so a batch submitted twice is
    /// stored once.
    pub session: String,
    /// The protocol version the session was opened with (it decides the
    /// layout of the frames).
    pub version: u32,
    pub messages: Vec<CtiIngestMessage>,
}

/// Accounting-Requests from gateways (issue 5), already checked against
/// their client's secret. The `sender` of the batch is not used: each
/// request names its gateway.
#[derive(Debug, Clone)]
pub struct RadiusIngest {
    pub requests: Vec<RadiusIngestRequest>,
}

/// One Accounting-Request as received: journaled as the datagram came.
#[derive(Debug, Clone)]
pub struct RadiusIngestRequest {
    /// The gateway: its NAS-IP-Address, else the address it sent from.
    pub nas: String,
    pub received_at: Timestamp,
    pub datagram: Bytes,
    pub authenticator: [u8; 16],
    pub accounting: cdrhub_protocols::radius::Accounting,
}

/// What a gateway on the event feed said (issue 5; docs/gateway-feed.md),
/// committed together: the lines of one login of one gateway, the gateway
/// log lines they caused, and the gateway's registration. The `sender` of
/// the batch names the gateway (`id_MAC`), or the source address when no
/// gateway could be named (a bad packet).
#[derive(Debug, Clone, Default)]
pub struct FeedIngest {
    /// The login the lines came in: the server's id of the gateway's
    /// session. Lines are numbered (`seq`) within it, so a line sent again
    /// is stored once.
    pub login: String,
    pub lines: Vec<FeedIngestLine>,
    pub log: Vec<GatewayLogEntry>,
    pub registration: Option<Box<GatewayRegistration>>,
}

/// Call events of one sender (issue 7): posted to the event API (the
/// `sender` of the batch is the system that sent them), or rows of CSV
/// files (`imported`). Each is stored once per idempotency key.
#[derive(Debug, Clone)]
pub struct EventsIngest {
    pub imported: bool,
    pub events: Vec<EventIngest>,
}

#[derive(Debug, Clone)]
pub struct EventIngest {
    pub received_at: Timestamp,
    pub event: cdrhub_protocols::events::CallEvent,
}

/// HEP packets of one capture agent (issue 6), journaled as received. The
/// `sender` of the batch names the agent (`capture id@address`).
#[derive(Debug, Clone)]
pub struct HepIngest {
    /// The listener's run: a fresh id each time the server starts. Packets
    /// are numbered within it (HEP has no numbering of its own).
    pub session: String,
    pub packets: Vec<HepIngestPacket>,
}

#[derive(Debug, Clone)]
pub struct HepIngestPacket {
    /// 1, 2, 3 ... within the session, over every agent.
    pub seq: u64,
    pub received_at: Timestamp,
    /// The whole HEP packet.
    pub bytes: Bytes,
    /// The SIP message it carries, read by the listener
    /// (`cdrhub_correlate::sip::event_of_hep`), so the writer does not
    /// parse; None for a packet that carries no call's SIP.
    pub event: Option<cdrhub_correlate::sip::SipEvent>,
}

/// One line as received: journaled as the text came.
#[derive(Debug, Clone)]
pub struct FeedIngestLine {
    pub received_at: Timestamp,
    pub line: String,
    pub message: cdrhub_protocols::feed::FeedMessage,
}

/// A line of the gateway log (seed 001, "Login log").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GatewayLogEntry {
    pub at: Timestamp,
    /// `id_MAC`; none for what came from no known gateway.
    pub gateway: Option<String>,
    pub kind: GatewayLogKind,
    /// The source address the server saw.
    pub address: String,
    /// The line as the seed's log prints it.
    pub text: String,
}

/// The seed's gateway log line types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GatewayLogKind {
    Login,
    #[serde(rename = "Re-Login")]
    ReLogin,
    #[serde(rename = "Relogin Kickout")]
    ReloginKickout,
    #[serde(rename = "Gateway Disconnect")]
    Disconnect,
    #[serde(rename = "Bad Packet")]
    BadPacket,
    Logout,
}

impl GatewayLogKind {
    pub const ALL: [GatewayLogKind; 6] = [
        GatewayLogKind::Login,
        GatewayLogKind::ReLogin,
        GatewayLogKind::ReloginKickout,
        GatewayLogKind::Disconnect,
        GatewayLogKind::BadPacket,
        GatewayLogKind::Logout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GatewayLogKind::Login => "Login",
            GatewayLogKind::ReLogin => "Re-Login",
            GatewayLogKind::ReloginKickout => "Relogin Kickout",
            GatewayLogKind::Disconnect => "Gateway Disconnect",
            GatewayLogKind::BadPacket => "Bad Packet",
            GatewayLogKind::Logout => "Logout",
        }
    }

    pub fn parse(text: &str) -> Option<GatewayLogKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// What the gateway list keeps of a feed gateway from its last login. The
/// log lines committed with it say whether it is online.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GatewayRegistration {
    /// `id_MAC`.
    pub name: String,
    pub gateway_id: String,
    pub mac: String,
    pub address: String,
    pub public_address: Option<String>,
    pub fxs: u16,
    pub fxo: u16,
    pub isdn: u16,
    pub call_ref: u32,
    /// The gateway's clock at login, as it sent it.
    pub clock: String,
    /// Its clock less the server's, in seconds, when it could be read.
    pub clock_offset_s: Option<i64>,
    pub last_login: Timestamp,
}

/// A gateway of the gateway list: a feed gateway or a RADIUS client.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GatewayInfo {
    /// `id_MAC` for a feed gateway, the NAS address for RADIUS.
    pub name: String,
    /// `feed` or `radius`.
    pub source: String,
    pub gateway_id: Option<String>,
    pub mac: Option<String>,
    pub address: Option<String>,
    pub public_address: Option<String>,
    pub fxs: Option<u16>,
    pub fxo: Option<u16>,
    pub isdn: Option<u16>,
    pub call_ref: Option<u32>,
    pub clock: Option<String>,
    pub clock_offset_s: Option<i64>,
    pub last_login: Option<Timestamp>,
    pub last_seen: Option<Timestamp>,
    /// `online` or `offline` (feed); `sending` for RADIUS gateways.
    pub state: String,
}

#[derive(Debug, Clone, Default)]
pub struct GatewayLogFilter {
    pub gateway: Option<String>,
    pub kind: Option<GatewayLogKind>,
    /// Text the line or its address contains.
    pub text: Option<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub limit: usize,
    pub offset: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct GatewayLogPage {
    pub total: u64,
    pub entries: Vec<GatewayLogEntry>,
}

/// A call event of a feed gateway, as the seed's real-time event list
/// shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GatewayEvent {
    pub journal_id: i64,
    /// The server's clock.
    pub received_at: Timestamp,
    /// The gateway's clock, as sent.
    pub gateway_clock: String,
    pub gateway: String,
    pub call_ref: u32,
    pub port: Option<u16>,
    pub event: String,
    pub dialed: Option<String>,
    pub caller_id: Option<String>,
    pub info: Option<String>,
    pub pstn_port: Option<u16>,
}

/// The seed's report filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GatewayReportFilter {
    #[default]
    All,
    CallIn,
    CallOut,
    OnlyPstn,
    CallOutFailed,
    CallInReject,
    /// Hook On/Off.
    Other,
}

impl GatewayReportFilter {
    pub const ALL: [GatewayReportFilter; 7] = [
        GatewayReportFilter::All,
        GatewayReportFilter::CallIn,
        GatewayReportFilter::CallOut,
        GatewayReportFilter::OnlyPstn,
        GatewayReportFilter::CallOutFailed,
        GatewayReportFilter::CallInReject,
        GatewayReportFilter::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GatewayReportFilter::All => "all",
            GatewayReportFilter::CallIn => "call_in",
            GatewayReportFilter::CallOut => "call_out",
            GatewayReportFilter::OnlyPstn => "only_pstn",
            GatewayReportFilter::CallOutFailed => "call_out_failed",
            GatewayReportFilter::CallInReject => "call_in_reject",
            GatewayReportFilter::Other => "other",
        }
    }

    /// As the seed's report page labels it.
    pub fn label(self) -> &'static str {
        match self {
            GatewayReportFilter::All => "All",
            GatewayReportFilter::CallIn => "Call In",
            GatewayReportFilter::CallOut => "Call Out",
            GatewayReportFilter::OnlyPstn => "Only PSTN",
            GatewayReportFilter::CallOutFailed => "Call Out Failed",
            GatewayReportFilter::CallInReject => "Call In Reject",
            GatewayReportFilter::Other => "Other",
        }
    }

    pub fn parse(text: &str) -> Option<GatewayReportFilter> {
        Self::ALL.into_iter().find(|f| f.as_str() == text)
    }
}

#[derive(Debug, Clone)]
pub struct GatewayReportQuery {
    pub gateway: String,
    pub from: Timestamp,
    pub to: Timestamp,
    pub filter: GatewayReportFilter,
    pub limit: usize,
    pub offset: u64,
}

/// One row of the seed's "CDR Report".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GatewayReportRow {
    pub call_id: String,
    pub call_ref: Option<String>,
    pub port: Option<u32>,
    pub notation: String,
    pub dialed: Option<String>,
    /// Talk seconds.
    pub time_s: Option<i64>,
    pub begin: Timestamp,
    pub pstn_dial: Option<String>,
    pub pstn_time_s: Option<i64>,
    pub caller_id: Option<String>,
    pub pstn_caller_id: Option<String>,
    pub end: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GatewayReport {
    /// Every call of the gateway in the period.
    pub total: u64,
    /// Those the filter keeps.
    pub filtered: u64,
    pub rows: Vec<GatewayReportRow>,
}

/// One message as received: the frame's bytes are journaled as they came.
#[derive(Debug, Clone)]
pub struct CtiIngestMessage {
    /// 1, 2, 3 ... within the session.
    pub seq: u64,
    /// When it was read from the socket: CTI events carry no time of
    /// their own.
    pub received_at: Timestamp,
    /// The whole frame, header included.
    pub frame: Bytes,
    pub message: cdrhub_protocols::cti::CtiMessage,
}

/// One CMS POST: its body (records are journaled as the bytes received) and
/// what the decoder made of it.
#[derive(Debug, Clone)]
pub struct CmsIngest {
    /// The receiver URL the records were posted to (path and query). CMS
    /// numbers records per receiver, so deduplication is per receiver.
    pub receiver: String,
    pub body: Bytes,
    pub batch: CmsBatch,
}

/// What became of a submission's records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IngestOutcome {
    pub stored: usize,
    pub duplicates: usize,
    /// Sequence gaps detected while storing these records.
    pub gaps: usize,
}

/// `GET /api/v1/calls` filters.
#[derive(Debug, Clone, Default)]
pub struct CallFilter {
    /// Calls that started at or after this time.
    pub from: Option<Timestamp>,
    /// Calls that started before this time.
    pub to: Option<Timestamp>,
    pub source: Option<String>,
    /// The system that sent the call (Call Bridge, gateway, CTI server).
    pub sender: Option<String>,
    pub direction: Option<Direction>,
    pub disposition: Option<Disposition>,
    /// Some(true): answered calls ("Basic call", seed 004); Some(false):
    /// calls that ended unanswered ("Failed call").
    pub answered: Option<bool>,
    pub call_type: Option<CallType>,
    /// The call's kind (`conference`, `sip`, `gateway`, a call type sent
    /// with call events such as `click_to_call` ...).
    pub kind: Option<String>,
    /// Substring of caller, dialed or destination number, or of any leg's
    /// remote party, local address or display name.
    pub q: Option<String>,
    pub limit: usize,
    pub cursor: Option<CallCursor>,
}

/// The call types of a gateway's CDR search (seed 001's filter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallType {
    /// Incoming calls.
    CallIn,
    /// Outgoing calls.
    CallOut,
    /// Outgoing calls that ended unanswered.
    CallOutFailed,
    /// Incoming calls refused (rejected or busy).
    CallInReject,
    /// Calls through a PSTN gateway (`kind` gateway).
    OnlyPstn,
    /// Calls with no direction (internal, recordings, ...).
    Other,
}

impl CallType {
    pub const ALL: [CallType; 6] = [
        CallType::CallIn,
        CallType::CallOut,
        CallType::CallOutFailed,
        CallType::CallInReject,
        CallType::OnlyPstn,
        CallType::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CallType::CallIn => "call_in",
            CallType::CallOut => "call_out",
            CallType::CallOutFailed => "call_out_failed",
            CallType::CallInReject => "call_in_reject",
            CallType::OnlyPstn => "only_pstn",
            CallType::Other => "other",
        }
    }
}

impl std::str::FromStr for CallType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CallType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                format!("call_type {s:?} is not one of call_in, call_out, call_out_failed, call_in_reject, only_pstn, other")
            })
    }
}

/// A column the console sorts calls by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CallSort {
    #[default]
    StartedAt,
    Caller,
    Dialed,
    Destination,
    Duration,
    Disposition,
    Sender,
}

impl CallSort {
    pub const ALL: [CallSort; 7] = [
        CallSort::StartedAt,
        CallSort::Caller,
        CallSort::Dialed,
        CallSort::Destination,
        CallSort::Duration,
        CallSort::Disposition,
        CallSort::Sender,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CallSort::StartedAt => "started_at",
            CallSort::Caller => "caller",
            CallSort::Dialed => "dialed",
            CallSort::Destination => "destination",
            CallSort::Duration => "duration_s",
            CallSort::Disposition => "disposition",
            CallSort::Sender => "sender",
        }
    }
}

/// One page of a console search: calls in the chosen order, how many match
/// and how many there are in all (seed 001: "Total Record Count", "Filter
/// Record Count").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallSearch {
    pub calls: Vec<Call>,
    pub matching: u64,
    pub total: u64,
}

/// Where the next page of calls starts (calls are listed newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallCursor {
    pub started_at: i64,
    pub id: String,
}

impl CallCursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}|{}", self.started_at, self.id))
    }

    pub fn decode(s: &str) -> Result<Self, StoreError> {
        let bad =
            || StoreError::InvalidQuery(format!("cursor {s:?} is not one this server gave out"));
        let raw = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        let (t, id) = raw.split_once('|').ok_or_else(bad)?;
        Ok(CallCursor {
            started_at: t.parse().map_err(|_| bad())?,
            id: id.to_owned(),
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CallPage {
    pub calls: Vec<Call>,
    pub next_cursor: Option<String>,
}

/// One call with its legs and timeline. In JSON it is the call's fields with
/// `legs` holding the legs themselves instead of their count.
#[derive(Debug, Clone)]
pub struct CallDetail {
    pub call: Call,
    pub leg_list: Vec<Leg>,
    pub events: Vec<CallEvent>,
}

impl Serialize for CallDetail {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeMap};
        let serde_json::Value::Object(call) =
            serde_json::to_value(&self.call).map_err(S::Error::custom)?
        else {
            return Err(S::Error::custom("a call serializes to an object"));
        };
        let mut map = s.serialize_map(Some(call.len() + 1))?;
        for (k, v) in &call {
            if k != "legs" {
                map.serialize_entry(k, v)?;
            }
        }
        map.serialize_entry("legs", &self.leg_list)?;
        map.serialize_entry("events", &self.events)?;
        map.end()
    }
}

/// Per source and sender counters (`GET /api/v1/sources`).
#[derive(Debug, Clone, Serialize)]
pub struct SenderStats {
    pub source: String,
    pub sender: String,
    pub first_seen: Option<Timestamp>,
    /// When the last record from this sender was received.
    pub last_record_at: Option<Timestamp>,
    pub records_last_minute: u64,
    pub records_total: u64,
    pub duplicates: u64,
    pub rejected_documents: u64,
    pub last_rejection: Option<String>,
    pub gaps: u64,
    pub missing_records: u64,
}

#[derive(Debug, Clone, Default)]
pub struct GapFilter {
    pub source: Option<String>,
    pub sender: Option<String>,
    /// Only gaps whose records have not all arrived since.
    pub open_only: bool,
    pub limit: usize,
}

/// Records known to be missing from a sender's sequence.
#[derive(Debug, Clone, Serialize)]
pub struct Gap {
    pub id: i64,
    pub source: String,
    pub sender: String,
    pub receiver: String,
    pub session: String,
    /// `sequence`: recordIndex jumped; `reported`: CMS said it discarded records
    /// (`numPreceedingRecordsMissing`); `session_start`: a session's first record
    /// was not recordIndex 1.
    pub kind: String,
    pub first_missing: Option<i64>,
    pub last_missing: Option<i64>,
    pub missing: i64,
    /// How many of the missing records arrived later, out of order.
    pub filled: i64,
    pub open: bool,
    pub detected_at: Timestamp,
    /// The record whose arrival revealed the gap.
    pub at_index: i64,
}

/// Counters for `/metrics`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StoreTotals {
    pub per_sender: Vec<SenderStats>,
    pub calls: u64,
    pub open_gaps: u64,
}

/// A console user.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub name: String,
    pub role: cdrhub_model::Role,
    /// PHC string (argon2id).
    pub password_hash: String,
    pub disabled: bool,
    /// Console language (`en`, ...).
    pub language: String,
}

/// An API token, as found by the hash of its secret.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiToken {
    pub name: String,
    pub role: cdrhub_model::Role,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// The user, token or `cli` that acted.
    pub actor: String,
    pub role: Option<cdrhub_model::Role>,
    pub client_ip: Option<String>,
    /// What was done: `login`, `token create`, ...
    pub operation: String,
    /// What it was done to: a user or token name, ...
    pub target: Option<String>,
}

/// A signed-in console session, found by the hash of its cookie.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub user: User,
    /// The token every form and mutating request of this session must carry.
    pub csrf: String,
    pub expires_at: Timestamp,
}

/// Where a client address stands after a failed login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginFailures {
    /// Failures counted since the last success or the last block ended.
    pub failures: u32,
    /// Set while the address is blocked.
    pub blocked_until: Option<Timestamp>,
}

/// An address blocked after failed logins (seed 002, "Web Login Blocked IP").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlockedIp {
    pub client_ip: String,
    /// The login id of the last failed attempt.
    pub login_id: String,
    pub blocked_at: Timestamp,
    pub blocked_until: Timestamp,
}

/// Which audit entries to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditFilter {
    /// Entries at or after this time.
    pub from: Option<Timestamp>,
    /// Entries before this time.
    pub to: Option<Timestamp>,
    /// Substring of the user, operation, target or client address.
    pub q: Option<String>,
    /// Rows to skip (paging), newest first.
    pub offset: u64,
    /// Rows to return at most.
    pub limit: u64,
}

/// One stored audit entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    pub at: Timestamp,
    pub actor: String,
    pub role: Option<String>,
    pub client_ip: Option<String>,
    pub operation: String,
    pub target: Option<String>,
}

/// A page of audit entries and how many match in all.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditPage {
    pub entries: Vec<AuditRecord>,
    pub matching: u64,
    pub total: u64,
}

/// One hour of a day's statistics (seed 002, "Reports"). Peaks are the
/// most calls in progress at once within the hour, from the calls' own
/// start, answer and end times.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HourStats {
    pub hour: Timestamp,
    /// Calls attempted (started) in the hour ("Total CA").
    pub attempts: i64,
    /// Of those, answered ("Total Call").
    pub answered: i64,
    /// Most attempts in progress at once ("Peak CA").
    pub peak_attempts: i64,
    /// Most connected calls at once ("Peak Call").
    pub peak_connected: i64,
    pub video_attempts: i64,
    pub video_answered: i64,
    pub video_peak_attempts: i64,
    pub video_peak_connected: i64,
}

/// A source and sender's day: attempts by outcome and the ratios operators
/// compare gateways by. Failed attempts count in every ratio.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SenderDayStats {
    pub source: String,
    pub sender: String,
    pub attempts: i64,
    pub answered: i64,
    pub busy: i64,
    pub no_answer: i64,
    pub rejected: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub talk_s: i64,
    /// Answer-seizure ratio: answered / attempts.
    pub asr: Option<f64>,
    /// Average call duration of answered calls, seconds.
    pub acd_s: Option<f64>,
    /// Network effectiveness ratio: (answered + busy + no answer +
    /// rejected) / attempts; what the user, not the network, decided.
    pub ner: Option<f64>,
    /// Post-dial delay, where the source gives ring times (CMS does not).
    pub pdd_s: Option<f64>,
}

impl SenderDayStats {
    pub(crate) fn with_ratios(mut self) -> Self {
        let per = |n: i64, d: i64| (d > 0).then(|| n as f64 / d as f64);
        self.asr = per(self.answered, self.attempts);
        self.acd_s = per(self.talk_s, self.answered);
        self.ner = per(
            self.answered + self.busy + self.no_answer + self.rejected,
            self.attempts,
        );
        self
    }
}

/// A day's statistics: 24 hours and one row per source and sender.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DayStats {
    pub day: Timestamp,
    pub hours: Vec<HourStats>,
    pub senders: Vec<SenderDayStats>,
}

/// One agent's day (issue 4, contact-centre reports): calls handled, their
/// talk and hold time, and the time spent in each state, with not-ready
/// time by reason code. Seconds, clipped to the day.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AgentDay {
    pub sender: String,
    pub agent: String,
    pub extension: Option<String>,
    pub calls_handled: u64,
    pub talk_s: f64,
    pub hold_s: f64,
    pub ready_s: f64,
    pub not_ready_s: f64,
    /// Work (after-call) time: WORK_READY and WORK_NOT_READY.
    pub wrapup_s: f64,
    pub talking_s: f64,
    pub reserved_s: f64,
    /// Not-ready seconds by reason code, codes in order.
    pub not_ready_reasons: Vec<(u16, f64)>,
}

/// One CSQ's hour (issue 4): calls queued to it in the hour, answered by
/// an agent, abandoned (ended unanswered), and their waits in queue.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CsqHour {
    pub sender: String,
    pub csq: u32,
    pub hour: Timestamp,
    pub offered: u64,
    pub answered: u64,
    pub abandoned: u64,
    pub average_wait_s: Option<f64>,
    pub longest_wait_s: Option<f64>,
}

/// Calls that ended in a period, in the order of their end (issue 7:
/// scheduled exports and webhooks), a page at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedCallsQuery {
    /// Whether `from`, `to` and `after` are times of the calls' end, or of
    /// when cdrhub last wrote them (a call written again after its end
    /// comes again).
    pub by: EndedBy,
    pub from: Timestamp,
    pub to: Timestamp,
    pub source: Option<String>,
    /// The (time, `id`) of the last call of the page before.
    pub after: Option<(Timestamp, String)>,
    pub limit: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndedBy {
    EndedAt,
    WrittenAt,
}

/// A SIP extension bound to a contact (issue 6, point 4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SipRegistration {
    /// The capture agent that saw it.
    pub sender: String,
    pub extension: String,
    pub contact: String,
    /// Where the extension registered from (the REGISTER's source address).
    pub source: Option<String>,
    pub user_agent: Option<String>,
    /// The REGISTER that made the binding; refreshes keep it.
    pub login_at: Timestamp,
    pub refreshed_at: Timestamp,
    pub expires_at: Timestamp,
}

/// One hour of seed 002's Register Statistic Report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RegisterHour {
    /// The hour's start.
    pub hour: Timestamp,
    /// The most bindings in force at once during the hour.
    pub peak: u64,
    /// Bindings made during the hour (refreshes not counted).
    pub logins: u64,
}

/// A day of contact-centre reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ContactCentreDay {
    pub day: Timestamp,
    pub agents: Vec<AgentDay>,
    pub csqs: Vec<CsqHour>,
}

/// What to remove (issue 3, point 7): everything older than each time given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneRequest {
    /// Calls that started before this, their legs and statistics, and
    /// journaled records received before it. Rounded down to the start of
    /// its UTC day, so the hourly statistics go with their calls.
    pub calls_before: Option<Timestamp>,
    /// Audit entries made before this.
    pub audit_before: Option<Timestamp>,
    /// Sequence gaps detected before this.
    pub gaps_before: Option<Timestamp>,
}

/// What a prune removed, counted as it goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneReport {
    pub calls: u64,
    pub legs: u64,
    pub records: u64,
    pub statistics_rows: u64,
    pub audit_entries: u64,
    pub gaps: u64,
}

impl PruneReport {
    pub fn total(&self) -> u64 {
        self.calls
            + self.legs
            + self.records
            + self.statistics_rows
            + self.audit_entries
            + self.gaps
    }
}

/// The size of the store on disk and the room left beside it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StorageStatus {
    /// `cdrhub.db` with its write-ahead log: journal, accounts, audit.
    pub journal_bytes: u64,
    /// `calls.db` with its write-ahead log: calls, legs, statistics.
    pub calls_bytes: u64,
    /// Free space of the file system holding the data directory, for
    /// cdrhub's user.
    pub disk_free_bytes: u64,
    pub disk_total_bytes: u64,
}

/// What came of ending a call by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ForceEnd {
    /// The call is ended, and stays so when calls are rebuilt.
    Ended,
    NotFound,
    /// Its end records had come: there was nothing to end.
    AlreadyEnded,
}

/// What is going on now (the console's live status, seed 002 "Diagnostic").
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LiveStatus {
    /// Attempts in progress now (started, not ended).
    pub attempts: i64,
    /// Connected calls in progress now.
    pub connected: i64,
    pub video_attempts: i64,
    pub video_connected: i64,
    /// The hour so far: attempts, answered and the peaks.
    pub this_hour: HourStats,
    /// Calls in progress, newest first (at most the number asked for).
    pub active_calls: Vec<Call>,
}

/// A record as the journal received it, decoded (the real-time event view).
#[derive(Debug, Clone, PartialEq)]
pub struct RecentRecord {
    pub journal_id: i64,
    pub received_at: Timestamp,
    pub source: String,
    pub sender: String,
    pub record: RecentBody,
}

/// A record as its source decoded it.
#[derive(Debug, Clone, PartialEq)]
pub enum RecentBody {
    Cms(Box<cdrhub_protocols::cms::CmsRecord>),
    Cti(cdrhub_protocols::cti::CtiMessage),
    /// A gateway feed line (LOGIN, LOGOUT, a call event).
    Feed(cdrhub_protocols::feed::FeedMessage),
}
