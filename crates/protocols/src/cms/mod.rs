//! Cisco Meeting Server CDRs: the `<records>` documents a Call Bridge POSTs to
//! its CDR receivers (reference/cms-cdr.md A.1, A.3, A.4; seed 000 chapters 4–6).
//!
//! Every record type the CDR guide lists is decoded into its own struct. Values
//! the guide leaves open (reasons, codecs, types) stay strings so that unknown
//! values are kept, and elements cdrhub does not know are kept in `extra`.

mod decode;

pub use decode::{DecodeError, decode, decode_record};

use cdrhub_model::Timestamp;
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// One POST body: `<records session=".." callBridge="..">` and its records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CmsBatch {
    /// GUID the Call Bridge makes when it (re)starts (A.3).
    pub session: String,
    /// Present only on clustered Call Bridges; a missing one is normal (A.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_bridge: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<CmsRecord>,
}

/// One `<record>` element.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CmsRecord {
    /// The `type` attribute as sent (`callLegStart`, ...).
    pub record_type: String,
    pub time: Timestamp,
    /// Per receiver, starts at 1, +1 per record (A.3).
    pub record_index: u64,
    /// Per session across all receivers, starts at 0 (A.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlator_index: Option<u64>,
    /// `numPreceedingRecordsMissing` (spelled so by CMS): records discarded just before this one.
    pub preceding_records_missing: u64,
    pub body: CmsRecordBody,
    /// Byte range of the whole `<record ...>...</record>` element in the decoded input,
    /// so the raw record can be journaled as it was received.
    #[serde(skip)]
    pub raw: Range<usize>,
}

impl CmsRecord {
    /// The id of the call, call leg, recording or streaming the record is about.
    pub fn subject_id(&self) -> Option<&str> {
        match &self.body {
            CmsRecordBody::CallStart(r) => Some(&r.id),
            CmsRecordBody::CallEnd(r) => Some(&r.id),
            CmsRecordBody::CallLegStart(r) => Some(&r.id),
            CmsRecordBody::CallLegUpdate(r) => Some(&r.id),
            CmsRecordBody::CallLegEnd(r) => Some(&r.id),
            CmsRecordBody::RecordingStart(r) | CmsRecordBody::StreamingStart(r) => Some(&r.id),
            CmsRecordBody::RecordingEnd { id } | CmsRecordBody::StreamingEnd { id } => Some(id),
            CmsRecordBody::Unknown(r) => r.id.as_deref(),
        }
    }
}

/// The body of a record, by record type (guide chapter 4; seed 000 4.1–4.10).
/// The call leg records, the most frequent and the largest, are boxed: a
/// record then moves between decoder, journal writer and correlator as a
/// pointer rather than a kilobyte, and the correlator keeps the box.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum CmsRecordBody {
    CallStart(CallStart),
    CallEnd(CallEnd),
    CallLegStart(Box<CallLegStart>),
    CallLegUpdate(Box<CallLegUpdate>),
    CallLegEnd(Box<CallLegEnd>),
    RecordingStart(MediaSessionStart),
    RecordingEnd {
        id: String,
    },
    StreamingStart(MediaSessionStart),
    StreamingEnd {
        id: String,
    },
    /// A record type this decoder does not know; kept, never rejected.
    Unknown(UnknownRecord),
}

/// Elements cdrhub does not know, kept as (path below the body element, text).
/// A nested unknown element's path joins names with `/`, e.g. `newThing/value`.
pub type Extra = Vec<(String, String)>;

/// `callStart` (`<call id>`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallStart {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_name: Option<String>,
    /// `coSpace`, `adHoc`, `lyncConferencing`, `forwarding`, or a newer value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub co_space: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cdr_tag: Option<String>,
    /// Ties together the parts of one call on several Call Bridges (R1.7+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_correlator: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Extra,
}

/// `callEnd` (`<call id>`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallEnd {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_legs_completed: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_legs_max_active: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_recorded: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Extra,
}

/// `callLegStart` (`<callLeg id>`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallLegStart {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cdr_tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_connection: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_party: Option<String>,
    /// `sip`, `acano`, or a newer value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leg_type: Option<String>,
    /// `lync`, `avaya`, `distributionLink`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lync_sub_type: Option<String>,
    /// `incoming` or `outgoing`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    /// The call GUID when already known; otherwise it comes in a callLegUpdate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
    /// True when the leg is in the IVR (`<ivr/>`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ivr: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streaming: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces_sip_call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub can_move: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_call_leg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_call_leg_call_bridge: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Extra,
}

/// `callLegUpdate` (`<callLeg id>`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallLegUpdate {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cdr_tag: Option<String>,
    /// Only `connected` is documented; absent means not yet connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ivr: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// True while a guest waits in the lobby.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deactivated: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub can_move: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation_status: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Extra,
}

/// `callLegEnd` (`<callLeg id>`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallLegEnd {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cdr_tag: Option<String>,
    /// Guide chapter 5 reason; an open set (`remoteTeardown`, `remoteBusy`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_teardown: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activated_duration: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_usage_percentages: Option<MediaUsagePercentages>,
    /// Every `<alarm type durationPercentage>`, in document order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alarms: Vec<CmsAlarm>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_media: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unencrypted_media: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rx_audio: Option<MediaStream>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_audio: Option<MediaStream>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rx_video: Option<MediaStream>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_video: Option<MediaStream>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_screens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Extra,
}

/// `<mediaUsagePercentages>` of a callLegEnd.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaUsagePercentages {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main_video_viewer: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main_video_contributor: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presentation_viewer: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presentation_contributor: Option<f64>,
    /// `multistreamVideo` (2.2+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multistream_video: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Extra,
}

/// `<alarm type="packetLoss" durationPercentage="12.3"/>`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CmsAlarm {
    /// `packetLoss`, `excessiveJitter`, `highRoundTripTime`, or a newer value.
    pub alarm_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_percentage: Option<f64>,
}

/// `<rxAudio>`, `<txAudio>`, `<rxVideo>` or `<txVideo>`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaStream {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codec: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size_width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size_height: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packet_statistics: Option<PacketStatistics>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Extra,
}

/// `<packetStatistics>`: loss bursts and gaps, each a duration (s) and a density.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PacketStatistics {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packet_loss_bursts: Option<BurstStatistics>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packet_gap: Option<BurstStatistics>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BurstStatistics {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub density: Option<f64>,
}

/// `recordingStart` (`<recording id>`) or `streamingStart` (`<streaming id>`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaSessionStart {
    pub id: String,
    /// recordingStart: `path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// recordingStart: `recorderUrl` / `recorderUri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorder_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorder_uri: Option<String>,
    /// streamingStart: `streamUrl` / `streamerUrl` / `streamerUri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streamer_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streamer_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_leg: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Extra,
}

/// A record of a type this decoder does not know.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnknownRecord {
    /// Name of the body element (`call`, `callLeg`, ...), if there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub element: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Extra,
}
