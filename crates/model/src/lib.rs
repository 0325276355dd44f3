//! The normalized model of cdrhub (DESIGN.md, "Normalized model"): calls, legs,
//! events and dispositions, shared by every source. No I/O here.

mod account;
mod disposition;
mod time;

pub use account::Role;
pub use disposition::{Direction, Disposition};
pub use time::{DateError, Timestamp, TimestampError};

use serde::Serialize;

/// Which family of telephony system a record came from.
pub const SOURCE_CMS: &str = "cms";
/// Contact-centre CTI servers (Cisco UCCX, UCCE).
pub const SOURCE_CTI: &str = "cti";
/// VoIP gateways reporting calls as RADIUS accounting.
pub const SOURCE_RADIUS: &str = "radius";
/// VoIP port gateways reporting call events on the gateway feed (GWFEED/1).
pub const SOURCE_FEED: &str = "feed";
/// SIP servers mirroring their signalling over HEP (Kamailio, OpenSIPS,
/// FreeSWITCH, Asterisk).
pub const SOURCE_SIP: &str = "sip";
/// Any system posting call events to the open event API (issue 7).
pub const SOURCE_EVENTS: &str = "events";
/// CDR files of PBXs imported with `cdrhub import csv` (issue 7).
pub const SOURCE_CSV: &str = "csv";

/// The flag of a call that an operator ended by hand because its end
/// records never came.
pub const FORCED_END_FLAG: &str = "forced_end";

/// One end-to-end conversation or conference, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Call {
    pub id: String,
    /// Source family (`cms`, ...).
    pub source: String,
    /// The system that sent it (CMS `system_id`, Call Bridge id or address).
    pub sender: String,
    /// `conference`, `p2p`, `acd`, `gateway`, ...
    pub kind: String,
    pub caller: Option<String>,
    pub dialed: Option<String>,
    pub destination: Option<String>,
    pub direction: Option<Direction>,
    pub started_at: Timestamp,
    pub answered_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    /// Whole call duration in seconds, from start to end.
    pub duration_s: Option<i64>,
    /// Seconds from answer to end.
    pub talk_s: Option<i64>,
    /// `None` while the call is still in progress.
    pub disposition: Option<Disposition>,
    /// The raw cause the disposition was derived from (vendor's own words).
    pub cause: Option<String>,
    /// `audio` or `video`, when known.
    pub media: Option<String>,
    /// Number of legs cdrhub knows of.
    pub legs: u32,
    pub legs_completed: Option<u32>,
    pub max_active_legs: Option<u32>,
    /// Markers such as `timed_out` or `gap_before`.
    pub flags: Vec<String>,
    /// Source-specific fields (CMS call name, space, tenant, correlator ...).
    pub details: serde_json::Value,
}

/// One half of a call as one system saw it (a CMS call leg, an O-CDR or T-CDR, a CTI connection).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Leg {
    pub id: String,
    pub call_id: String,
    /// The id the source gave the leg (CMS callLeg GUID).
    pub source_leg_id: String,
    pub remote_party: Option<String>,
    pub local_address: Option<String>,
    pub display_name: Option<String>,
    /// `incoming` or `outgoing`, as the source says it.
    pub direction: Option<String>,
    /// `sip`, `acano`, ... as the source says it.
    pub leg_type: Option<String>,
    pub sip_call_id: Option<String>,
    pub started_at: Option<Timestamp>,
    pub connected_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub duration_s: Option<i64>,
    /// The raw end reason (CMS `reason`, SIP status, Q.850 cause ...).
    pub reason: Option<String>,
    pub remote_teardown: Option<bool>,
    pub disposition: Option<Disposition>,
    /// Codecs, resolutions, packet statistics, media usage.
    pub media: serde_json::Value,
    pub alarms: Vec<Alarm>,
    /// Source-specific fields not in the columns above.
    pub details: serde_json::Value,
}

/// A media quality alarm raised on a leg (CMS `<alarm type durationPercentage>`).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Alarm {
    #[serde(rename = "type")]
    pub alarm_type: String,
    pub duration_percentage: Option<f64>,
}

/// One decoded source event in a call's timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallEvent {
    pub time: Timestamp,
    pub received_at: Timestamp,
    /// Source event type (`callLegStart`, ...).
    #[serde(rename = "type")]
    pub event_type: String,
    /// The source's id of the leg it concerns, if any.
    pub source_leg_id: Option<String>,
    /// The decoded record, as JSON.
    pub record: serde_json::Value,
}
