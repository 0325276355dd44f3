//! Cisco Meeting Server records into calls and legs.
//!
//! CMS reports a conference as a `call` (callStart/callEnd) and each
//! participant as a `callLeg` (callLegStart/Update/End). A leg names its call in
//! callLegStart or, when not yet known, in a later callLegUpdate; a call spread
//! over several Call Bridges carries the same `callCorrelator` on each bridge
//! (reference/cms-cdr.md A.1, A.4). Records may arrive in any order, so the
//! state here is a set of facts merged field by field, and the normalized call
//! is recomputed from them.
//!
//! Everything that belongs to one normalized call is a [`CmsCallGroup`]. Which
//! group a record belongs to is found through its [`record_keys`]: two records
//! sharing a key belong to the same call, and a record whose keys point at two
//! groups joins them ([`CmsCallGroup::absorb`]).

use cdrhub_model::{Alarm, Call, Direction, Disposition, Leg, SOURCE_CMS, Timestamp};
use cdrhub_protocols::cms::{
    CallEnd, CallLegEnd, CallLegStart, CallLegUpdate, CallStart, CmsRecord, CmsRecordBody,
    MediaSessionStart,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What kind of CMS id a [`CallKey`] is: ids of different kinds never tie
/// records together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    Call,
    Correlator,
    Leg,
    Recording,
    Streaming,
    /// A CTI call id, scoped by its server: `sender/call id`.
    CtiCall,
    /// An outbound contact (campaign and dialing-list entry) of a CTI
    /// server: its reservation and preview calls are one call.
    CtiContact,
    /// An h323 conference id of a gateway: `nas/conf id`.
    RadiusConf,
    /// A RADIUS accounting session of a gateway: `nas/session id`.
    RadiusSession,
    /// A call reference of a feed gateway within one of its logins:
    /// `gateway/login/ref`.
    FeedCall,
    /// A SIP dialog seen by a capture agent: `agent/Call-ID`.
    SipCall,
    /// A hint, held in memory a few seconds, that joins a B2BUA's two
    /// dialogs: `agent/address/caller/dialed/window`.
    SipB2bua,
    /// A call of the event API or of an import: `sender/call id`.
    EventCall,
}

impl KeyKind {
    pub fn prefix(self) -> &'static str {
        match self {
            KeyKind::Call => "call",
            KeyKind::Correlator => "corr",
            KeyKind::Leg => "leg",
            KeyKind::Recording => "rec",
            KeyKind::Streaming => "stream",
            KeyKind::CtiCall => "cti-call",
            KeyKind::CtiContact => "cti-contact",
            KeyKind::RadiusConf => "radius-conf",
            KeyKind::RadiusSession => "radius-session",
            KeyKind::FeedCall => "feed-call",
            KeyKind::SipCall => "sip-call",
            KeyKind::SipB2bua => "sip-b2bua",
            KeyKind::EventCall => "event-call",
        }
    }
}

/// A CMS id that ties records to their call, borrowed from the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallKey<'a> {
    pub kind: KeyKind,
    pub id: &'a str,
}

impl CallKey<'_> {
    /// A stable 64-bit FNV-1a hash of `kind:id`, the key's name in an index
    /// that outlives the process: the same on every build and platform.
    /// Two different keys share a hash with a chance of about n²/2⁶⁵ among
    /// n keys (under 10⁻³ for 10⁸ keys).
    pub fn hash(&self) -> i64 {
        let bytes = self
            .kind
            .prefix()
            .bytes()
            .chain(std::iter::once(b':'))
            .chain(self.id.bytes());
        fnv1a(bytes) as i64
    }
}

/// The 64-bit FNV-1a hash of `bytes`: stable across builds and platforms.
pub fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .into_iter()
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

impl std::fmt::Display for CallKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind.prefix(), self.id)
    }
}

/// The keys that tie a record to its call. Two records sharing any key belong
/// to one call.
pub fn record_keys(record: &CmsRecord) -> Vec<CallKey<'_>> {
    fn key(kind: KeyKind, id: &str) -> CallKey<'_> {
        CallKey { kind, id }
    }
    let mut keys = Vec::with_capacity(2);
    match &record.body {
        CmsRecordBody::CallStart(r) => {
            keys.push(key(KeyKind::Call, &r.id));
            if let Some(c) = non_empty(&r.call_correlator) {
                keys.push(key(KeyKind::Correlator, c));
            }
        }
        CmsRecordBody::CallEnd(r) => keys.push(key(KeyKind::Call, &r.id)),
        CmsRecordBody::CallLegStart(r) => {
            keys.push(key(KeyKind::Leg, &r.id));
            if let Some(c) = non_empty(&r.call) {
                keys.push(key(KeyKind::Call, c));
            }
        }
        CmsRecordBody::CallLegUpdate(r) => {
            keys.push(key(KeyKind::Leg, &r.id));
            if let Some(c) = non_empty(&r.call) {
                keys.push(key(KeyKind::Call, c));
            }
        }
        CmsRecordBody::CallLegEnd(r) => keys.push(key(KeyKind::Leg, &r.id)),
        CmsRecordBody::RecordingStart(r) => media_session_keys(&mut keys, KeyKind::Recording, r),
        CmsRecordBody::RecordingEnd { id } => keys.push(key(KeyKind::Recording, id)),
        CmsRecordBody::StreamingStart(r) => media_session_keys(&mut keys, KeyKind::Streaming, r),
        CmsRecordBody::StreamingEnd { id } => keys.push(key(KeyKind::Streaming, id)),
        CmsRecordBody::Unknown(_) => {}
    }
    keys
}

fn media_session_keys<'a>(keys: &mut Vec<CallKey<'a>>, kind: KeyKind, r: &'a MediaSessionStart) {
    keys.push(CallKey { kind, id: &r.id });
    if let Some(c) = non_empty(&r.call) {
        keys.push(CallKey {
            kind: KeyKind::Call,
            id: c,
        });
    }
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// What cdrhub knows of one normalized call from CMS: the CMS calls (one per
/// Call Bridge), their legs, and recordings and streamings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CmsCallGroup {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<CmsCallPart>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub legs: Vec<CmsLegState>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media_sessions: Vec<CmsMediaSession>,
    /// When an operator ended the call by hand because its end records never
    /// came: parts and legs without an end of their own end then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forced_end: Option<Timestamp>,
}

/// The reason given to a leg that an operator ended by hand.
pub const FORCED_END_REASON: &str = "forcedEnd";
pub use cdrhub_model::FORCED_END_FLAG;

/// One CMS `call` as one Call Bridge reported it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CmsCallPart {
    /// Journal references of the records this was built from: its timeline.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<i64>,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_bridge: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<CallStart>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<CallEnd>,
}

/// One CMS call leg, merged from its start, updates and end. The records
/// are boxed: a leg in progress has no end yet (the largest of the three),
/// and the correlator keeps thousands of legs in progress in memory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CmsLegState {
    /// Journal references of the records this was built from: its timeline.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<i64>,
    pub id: String,
    /// The CMS call GUID, once any record named it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_bridge: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<Timestamp>,
    /// Lowest correlatorIndex (else recordIndex) of the leg's records: orders
    /// legs that started in the same second as CMS created them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Box<CallLegStart>>,
    /// The first `state=connected` update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_at: Option<Timestamp>,
    /// Every update merged field by field, newest value winning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<Box<CallLegUpdate>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<Box<CallLegEnd>>,
}

/// A recording or streaming of the call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CmsMediaSession {
    /// Journal references of the records this was built from: its timeline.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<i64>,
    /// `recording` or `streaming`.
    pub kind: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<MediaSessionStart>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
}

/// Which part of a call keeps the journal references of a record.
enum Holder {
    Call,
    Leg,
    Media,
    None,
}

impl Holder {
    fn of(body: &CmsRecordBody) -> Holder {
        match body {
            CmsRecordBody::CallStart(_) | CmsRecordBody::CallEnd(_) => Holder::Call,
            CmsRecordBody::CallLegStart(_)
            | CmsRecordBody::CallLegUpdate(_)
            | CmsRecordBody::CallLegEnd(_) => Holder::Leg,
            CmsRecordBody::RecordingStart(_)
            | CmsRecordBody::RecordingEnd { .. }
            | CmsRecordBody::StreamingStart(_)
            | CmsRecordBody::StreamingEnd { .. } => Holder::Media,
            CmsRecordBody::Unknown(_) => Holder::None,
        }
    }
}

/// Which leg a record changed, so the store rewrites only that leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Touched {
    Call,
    Leg(String),
    Nothing,
}

impl CmsCallGroup {
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty() && self.legs.is_empty() && self.media_sessions.is_empty()
    }

    /// Takes in everything another group knew: the two turned out to be one call.
    pub fn absorb(&mut self, other: CmsCallGroup) {
        self.forced_end = min_opt(self.forced_end, other.forced_end);
        for part in other.calls {
            match self.calls.iter_mut().find(|p| p.id == part.id) {
                Some(mine) => merge_call_part(mine, part),
                None => self.calls.push(part),
            }
        }
        for leg in other.legs {
            match self.legs.iter_mut().find(|l| l.id == leg.id) {
                Some(mine) => merge_leg(mine, leg),
                None => self.legs.push(leg),
            }
        }
        for session in other.media_sessions {
            match self
                .media_sessions
                .iter_mut()
                .find(|s| s.id == session.id && s.kind == session.kind)
            {
                Some(mine) => {
                    merge_refs(&mut mine.records, session.records);
                    mine.started_at = mine.started_at.or(session.started_at);
                    mine.start = mine.start.take().or(session.start);
                    mine.ended_at = mine.ended_at.or(session.ended_at);
                }
                None => self.media_sessions.push(session),
            }
        }
    }

    /// Applies one record. `call_bridge` is the `<records callBridge>` it came
    /// with; `record_ref` is where the store keeps the record (its journal id),
    /// remembered so the call's timeline can be read back.
    pub fn apply(
        &mut self,
        record: &CmsRecord,
        call_bridge: Option<&str>,
        record_ref: i64,
    ) -> Touched {
        self.apply_owned(record.clone(), call_bridge, record_ref)
    }

    /// As [`apply`](Self::apply), taking the record: its fields move into
    /// the state instead of being copied (the store's ingest path).
    pub fn apply_owned(
        &mut self,
        record: CmsRecord,
        call_bridge: Option<&str>,
        record_ref: i64,
    ) -> Touched {
        let subject = record.subject_id().map(str::to_owned);
        let holder = Holder::of(&record.body);
        let touched = self.apply_fields(record, call_bridge);
        if let Some(id) = subject {
            let refs = match holder {
                Holder::Call => self
                    .calls
                    .iter_mut()
                    .find(|p| p.id == id)
                    .map(|p| &mut p.records),
                Holder::Leg => self
                    .legs
                    .iter_mut()
                    .find(|l| l.id == id)
                    .map(|l| &mut l.records),
                Holder::Media => self
                    .media_sessions
                    .iter_mut()
                    .find(|m| m.id == id)
                    .map(|m| &mut m.records),
                Holder::None => None,
            };
            if let Some(refs) = refs
                && !refs.contains(&record_ref)
            {
                refs.push(record_ref);
            }
        }
        touched
    }

    fn apply_fields(&mut self, record: CmsRecord, call_bridge: Option<&str>) -> Touched {
        let CmsRecord {
            time: t,
            record_index,
            correlator_index,
            body,
            ..
        } = record;
        let seq = correlator_index.unwrap_or(record_index);
        match body {
            CmsRecordBody::CallStart(r) => {
                let part = self.call_part(&r.id, call_bridge, t);
                part.started_at = Some(part.started_at.map_or(t, |s| s.min(t)));
                part.start = Some(r);
                Touched::Call
            }
            CmsRecordBody::CallEnd(r) => {
                let part = self.call_part(&r.id, call_bridge, t);
                part.ended_at = Some(part.ended_at.map_or(t, |e| e.max(t)));
                part.end = Some(r);
                Touched::Call
            }
            CmsRecordBody::CallLegStart(r) => {
                let id = r.id.clone();
                let leg = self.leg(&id, call_bridge, t, seq);
                leg.started_at = Some(leg.started_at.map_or(t, |s| s.min(t)));
                if let Some(c) = non_empty(&r.call) {
                    leg.call = Some(c.to_owned());
                }
                leg.start = Some(r);
                Touched::Leg(id)
            }
            CmsRecordBody::CallLegUpdate(r) => {
                let id = r.id.clone();
                let leg = self.leg(&id, call_bridge, t, seq);
                if let Some(c) = non_empty(&r.call) {
                    leg.call = Some(c.to_owned());
                }
                if r.state.as_deref() == Some("connected") {
                    leg.connected_at = Some(leg.connected_at.map_or(t, |c| c.min(t)));
                }
                let newer = leg.last_update_at.is_none_or(|last| t >= last);
                leg.update = Some(match leg.update.take() {
                    None => r,
                    Some(old) if newer => Box::new(merge_update(*r, *old)),
                    Some(old) => Box::new(merge_update(*old, *r)),
                });
                if newer {
                    leg.last_update_at = Some(t);
                }
                Touched::Leg(id)
            }
            CmsRecordBody::CallLegEnd(r) => {
                let id = r.id.clone();
                let leg = self.leg(&id, call_bridge, t, seq);
                leg.ended_at = Some(t);
                leg.end = Some(r);
                Touched::Leg(id)
            }
            CmsRecordBody::RecordingStart(r) => self.media_start("recording", r, t),
            CmsRecordBody::StreamingStart(r) => self.media_start("streaming", r, t),
            CmsRecordBody::RecordingEnd { id } => self.media_end("recording", &id, t),
            CmsRecordBody::StreamingEnd { id } => self.media_end("streaming", &id, t),
            CmsRecordBody::Unknown(_) => Touched::Nothing,
        }
    }

    fn call_part(&mut self, id: &str, call_bridge: Option<&str>, t: Timestamp) -> &mut CmsCallPart {
        let i = match self.calls.iter().position(|p| p.id == id) {
            Some(i) => i,
            None => {
                self.calls.push(CmsCallPart {
                    id: id.to_owned(),
                    ..Default::default()
                });
                self.calls.len() - 1
            }
        };
        let part = &mut self.calls[i];
        if part.call_bridge.is_none() {
            part.call_bridge = call_bridge.map(str::to_owned);
        }
        part.first_seen = Some(part.first_seen.map_or(t, |f| f.min(t)));
        part
    }

    fn leg(
        &mut self,
        id: &str,
        call_bridge: Option<&str>,
        t: Timestamp,
        seq: u64,
    ) -> &mut CmsLegState {
        let i = match self.legs.iter().position(|l| l.id == id) {
            Some(i) => i,
            None => {
                self.legs.push(CmsLegState {
                    id: id.to_owned(),
                    ..Default::default()
                });
                self.legs.len() - 1
            }
        };
        let leg = &mut self.legs[i];
        if leg.call_bridge.is_none() {
            leg.call_bridge = call_bridge.map(str::to_owned);
        }
        leg.first_seen = Some(leg.first_seen.map_or(t, |f| f.min(t)));
        leg.first_seq = Some(leg.first_seq.map_or(seq, |f| f.min(seq)));
        leg
    }

    fn media_session(&mut self, kind: &str, id: &str) -> &mut CmsMediaSession {
        let i = match self
            .media_sessions
            .iter()
            .position(|s| s.kind == kind && s.id == id)
        {
            Some(i) => i,
            None => {
                self.media_sessions.push(CmsMediaSession {
                    kind: kind.to_owned(),
                    id: id.to_owned(),
                    ..Default::default()
                });
                self.media_sessions.len() - 1
            }
        };
        &mut self.media_sessions[i]
    }

    fn media_start(&mut self, kind: &str, r: MediaSessionStart, t: Timestamp) -> Touched {
        let s = self.media_session(kind, &r.id);
        s.started_at = Some(t);
        s.start = Some(r);
        Touched::Call
    }

    fn media_end(&mut self, kind: &str, id: &str, t: Timestamp) -> Touched {
        self.media_session(kind, id).ended_at = Some(t);
        Touched::Call
    }

    /// The call's source fields (CMS name, space, tenant, correlator, the
    /// CMS calls per Call Bridge, recordings and streamings).
    pub fn details(&self) -> Value {
        call_details(&self.parts_in_start_order(), &self.media_sessions)
    }

    /// The CMS calls (one per Call Bridge), earliest first.
    fn parts_in_start_order(&self) -> Vec<&CmsCallPart> {
        let mut parts: Vec<&CmsCallPart> = self.calls.iter().collect();
        parts.sort_by_key(|p| p.started_at.or(p.first_seen));
        parts
    }

    /// Earliest time anything of this call was seen.
    fn first_seen(&self) -> Option<Timestamp> {
        let calls = self.calls.iter().filter_map(|p| p.first_seen);
        let legs = self.legs.iter().filter_map(|l| l.first_seen);
        let media = self
            .media_sessions
            .iter()
            .filter_map(|s| s.started_at.or(s.ended_at));
        calls.chain(legs).chain(media).min()
    }

    /// The normalized call and its legs. `call_id` and `sender` come from the
    /// store. With [`Detail::Columns`] the JSON parts (media statistics, alarms,
    /// details) are left empty: the store keeps the state and derives them when
    /// a call is read, so ingest does not build them at every change.
    pub fn summarize(&self, call_id: &str, sender: &str, detail: Detail) -> (Call, Vec<Leg>) {
        let mut states: Vec<&CmsLegState> = self.legs.iter().collect();
        states.sort_by_key(|l| (leg_started_at(l), l.first_seq, l.id.clone()));
        let forced = self.forced_end;
        let legs: Vec<Leg> = states
            .iter()
            .map(|l| summarize_leg(l, call_id, detail, forced))
            .collect();

        let parts = self.parts_in_start_order();
        let first_start = parts.iter().find_map(|p| p.start.as_ref());

        let started_at = parts
            .iter()
            .filter_map(|p| p.started_at)
            .chain(legs.iter().filter_map(|l| l.started_at))
            .min()
            .or_else(|| self.first_seen())
            .unwrap_or(Timestamp(0));

        // The call ends with its callEnd records; a group without any CMS call
        // (a leg that never joined one, e.g. in the IVR) ends with its last leg.
        let ended_at = if parts.is_empty() {
            if !legs.is_empty() && legs.iter().all(|l| l.ended_at.is_some()) {
                legs.iter().filter_map(|l| l.ended_at).max()
            } else {
                None
            }
        } else if parts.iter().all(|p| part_ended_at(p, forced).is_some()) {
            parts.iter().filter_map(|p| part_ended_at(p, forced)).max()
        } else {
            None
        };
        let answered_at = legs.iter().filter_map(|l| l.connected_at).min();

        let duration_s = ended_at.map(|end| match parts.as_slice() {
            [only] => only
                .end
                .as_ref()
                .and_then(|e| e.duration_seconds)
                .unwrap_or_else(|| end.seconds_since(started_at)),
            _ => end.seconds_since(started_at),
        });
        let talk_s = match (answered_at, ended_at) {
            (Some(a), Some(e)) => Some(e.seconds_since(a)),
            _ => None,
        };

        let (disposition, cause) = if ended_at.is_some() {
            call_disposition(&legs)
        } else {
            (None, None)
        };

        // Caller and dialed number from the first incoming leg (its remote party
        // called the address it dialed); a call made only of dial-outs shows the
        // first outgoing leg the other way round.
        let first_in = legs
            .iter()
            .find(|l| l.direction.as_deref() == Some("incoming"));
        let first_out = legs
            .iter()
            .find(|l| l.direction.as_deref() == Some("outgoing"));
        let (caller, dialed) = match (first_in, first_out) {
            (Some(l), _) => (l.remote_party.clone(), l.local_address.clone()),
            (None, Some(l)) => (l.local_address.clone(), l.remote_party.clone()),
            (None, None) => (None, None),
        };
        let direction = legs.first().and_then(|l| match l.direction.as_deref() {
            Some("incoming") => Some(Direction::In),
            Some("outgoing") => Some(Direction::Out),
            _ => None,
        });

        let kind = match first_start.and_then(|s| s.call_type.as_deref()) {
            Some("forwarding") => "p2p",
            Some(_) => "conference",
            None if !parts.is_empty() => "conference",
            None if self.legs.iter().any(leg_in_ivr) => "ivr",
            None if legs.is_empty() => "recording",
            None => "leg",
        };

        let ends = || self.legs.iter().filter_map(|l| l.end.as_ref());
        let media = if ends().any(|e| e.rx_video.is_some() || e.tx_video.is_some()) {
            Some("video".to_owned())
        } else if ends().any(|e| e.rx_audio.is_some() || e.tx_audio.is_some()) {
            Some("audio".to_owned())
        } else {
            None
        };

        let legs_completed = sum_some(
            parts
                .iter()
                .map(|p| p.end.as_ref().and_then(|e| e.call_legs_completed)),
        );
        let max_active_legs = sum_some(
            parts
                .iter()
                .map(|p| p.end.as_ref().and_then(|e| e.call_legs_max_active)),
        );

        let call = Call {
            id: call_id.to_owned(),
            source: SOURCE_CMS.to_owned(),
            sender: sender.to_owned(),
            kind: kind.to_owned(),
            caller,
            dialed,
            destination: first_start
                .and_then(|s| s.name.clone())
                .filter(|n| !n.is_empty()),
            direction,
            started_at,
            answered_at,
            ended_at,
            duration_s,
            talk_s,
            disposition,
            cause,
            media,
            legs: legs.len() as u32,
            legs_completed,
            max_active_legs,
            flags: self
                .forced_applies()
                .then(|| FORCED_END_FLAG.to_owned())
                .into_iter()
                .collect(),
            details: match detail {
                Detail::Full => call_details(&parts, &self.media_sessions),
                Detail::Columns => Value::Null,
            },
        };
        (call, legs)
    }
}

impl CmsCallGroup {
    /// The hashed keys (`CallKey::hash`) under which the call's CMS ids are
    /// known, as `record_keys` makes them.
    pub fn keys(&self) -> impl Iterator<Item = i64> + '_ {
        let key = |kind, id: &str| CallKey { kind, id }.hash();
        let calls = self.calls.iter().flat_map(move |c| {
            let corr = c
                .start
                .as_ref()
                .and_then(|s| s.call_correlator.as_deref())
                .filter(|x| !x.is_empty())
                .map(|x| key(KeyKind::Correlator, x));
            std::iter::once(key(KeyKind::Call, &c.id)).chain(corr)
        });
        let legs = self.legs.iter().map(move |l| key(KeyKind::Leg, &l.id));
        let media = self.media_sessions.iter().map(move |m| {
            let kind = if m.kind == "recording" {
                KeyKind::Recording
            } else {
                KeyKind::Streaming
            };
            key(kind, &m.id)
        });
        calls.chain(legs).chain(media)
    }

    /// Whether the forced end ends anything that had not ended by itself.
    fn forced_applies(&self) -> bool {
        let forced = self.forced_end;
        forced.is_some()
            && (self
                .calls
                .iter()
                .any(|p| p.ended_at.is_none() && part_ended_at(p, forced).is_some())
                || self.legs.iter().any(|l| {
                    l.ended_at.is_none() && forced_for(leg_started_at(l), forced).is_some()
                }))
    }
}

/// A forced end, for something that started at `started_at`: a part or leg
/// that started after it (the call turned out to be alive) is not ended by it.
fn forced_for(started_at: Option<Timestamp>, forced: Option<Timestamp>) -> Option<Timestamp> {
    forced.filter(|f| started_at.is_none_or(|s| s <= *f))
}

fn part_ended_at(part: &CmsCallPart, forced: Option<Timestamp>) -> Option<Timestamp> {
    part.ended_at.or(forced_for(part.started_at, forced))
}

fn leg_in_ivr(l: &CmsLegState) -> bool {
    l.start.as_ref().is_some_and(|s| s.ivr) || l.update.as_ref().is_some_and(|u| u.ivr)
}

/// How much of a summary to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Everything, JSON parts included: what the API shows.
    Full,
    /// Only what the store keeps in columns.
    Columns,
}

/// The sum of the values present, or `None` when none is.
fn sum_some(values: impl Iterator<Item = Option<u32>>) -> Option<u32> {
    values
        .flatten()
        .fold(None, |acc, v| Some(acc.unwrap_or(0) + v))
}

fn merge_call_part(mine: &mut CmsCallPart, other: CmsCallPart) {
    merge_refs(&mut mine.records, other.records);
    mine.call_bridge = mine.call_bridge.take().or(other.call_bridge);
    mine.first_seen = min_opt(mine.first_seen, other.first_seen);
    mine.started_at = min_opt(mine.started_at, other.started_at);
    mine.start = mine.start.take().or(other.start);
    mine.ended_at = mine.ended_at.max(other.ended_at);
    mine.end = mine.end.take().or(other.end);
}

fn merge_leg(mine: &mut CmsLegState, other: CmsLegState) {
    merge_refs(&mut mine.records, other.records);
    mine.call = mine.call.take().or(other.call);
    mine.call_bridge = mine.call_bridge.take().or(other.call_bridge);
    mine.first_seen = min_opt(mine.first_seen, other.first_seen);
    mine.first_seq = min_opt(mine.first_seq, other.first_seq);
    mine.started_at = min_opt(mine.started_at, other.started_at);
    mine.start = mine.start.take().or(other.start);
    mine.connected_at = min_opt(mine.connected_at, other.connected_at);
    mine.update = match (mine.update.take(), other.update) {
        (Some(a), Some(b)) if other.last_update_at > mine.last_update_at => {
            Some(Box::new(merge_update(*b, *a)))
        }
        (Some(a), Some(b)) => Some(Box::new(merge_update(*a, *b))),
        (a, b) => a.or(b),
    };
    mine.last_update_at = mine.last_update_at.max(other.last_update_at);
    mine.ended_at = mine.ended_at.or(other.ended_at);
    mine.end = mine.end.take().or(other.end);
}

fn merge_refs(mine: &mut Vec<i64>, other: Vec<i64>) {
    mine.extend(other);
    mine.sort_unstable();
    mine.dedup();
}

/// The smaller of two optional values; a missing one does not count.
fn min_opt<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Field-by-field merge of two updates: `newer` wins where it has a value.
fn merge_update(newer: CallLegUpdate, older: CallLegUpdate) -> CallLegUpdate {
    let mut extra = older.extra;
    for (k, v) in newer.extra {
        extra.retain(|(ok, _)| *ok != k);
        extra.push((k, v));
    }
    CallLegUpdate {
        id: newer.id,
        cdr_tag: newer.cdr_tag.or(older.cdr_tag),
        state: newer.state.or(older.state),
        call: newer.call.or(older.call),
        ivr: newer.ivr || older.ivr,
        owner_id: newer.owner_id.or(older.owner_id),
        sip_call_id: newer.sip_call_id.or(older.sip_call_id),
        group_id: newer.group_id.or(older.group_id),
        deactivated: newer.deactivated.or(older.deactivated),
        display_name: newer.display_name.or(older.display_name),
        remote_address: newer.remote_address.or(older.remote_address),
        can_move: newer.can_move.or(older.can_move),
        confirmation_status: newer.confirmation_status.or(older.confirmation_status),
        extra,
    }
}

/// The disposition of a leg from its callLegEnd `reason` (CDR guide chapter 5;
/// seed 000 section 5). A leg that connected was answered whatever ended it;
/// the raw reason is kept beside the disposition.
pub fn leg_disposition(reason: Option<&str>, connected: bool) -> Disposition {
    if connected {
        return Disposition::Answered;
    }
    match reason {
        Some("remoteBusy") => Disposition::Busy,
        Some("ringingTimeout") => Disposition::NoAnswer,
        Some("remoteRejected") => Disposition::Rejected,
        // Ordinary teardowns before the leg ever connected: the attempt was abandoned.
        Some(
            "remoteTeardown"
            | "localTeardown"
            | "callEnded"
            | "clientInitiatedTeardown"
            | "apiInitiatedTeardown"
            | "callDeactivated"
            | "callMoved",
        ) => Disposition::Cancelled,
        // unknownDestination, dnsFailure, error, timeouts, limits and any reason
        // this table does not know.
        _ => Disposition::Failed,
    }
}

/// An answered leg makes the call answered; otherwise the most telling
/// failure. Among equals the earliest leg (`legs` are in start order) gives the cause.
fn call_disposition(legs: &[Leg]) -> (Option<Disposition>, Option<String>) {
    let best = legs
        .iter()
        .enumerate()
        .filter_map(|(i, l)| l.disposition.map(|d| (d, i, l)))
        .min_by_key(|(d, i, _)| (std::cmp::Reverse(d.rank()), *i))
        .map(|(d, _, l)| (d, l));
    match best {
        Some((d, leg)) => (Some(d), leg.reason.clone()),
        None => (Some(Disposition::Failed), None),
    }
}

/// The callLegStart time; without one, the end less its duration as CMS
/// counts it; failing that, the first record seen.
fn leg_started_at(state: &CmsLegState) -> Option<Timestamp> {
    state
        .started_at
        .or_else(|| {
            let end_at = state.ended_at?;
            let secs = state.end.as_ref()?.duration_seconds?;
            Some(Timestamp(end_at.0 - secs * 1000))
        })
        .or(state.first_seen)
}

/// `forced` ends a leg that has no end of its own (an operator ended its call).
fn summarize_leg(
    state: &CmsLegState,
    call_id: &str,
    detail: Detail,
    forced: Option<Timestamp>,
) -> Leg {
    let start = state.start.as_ref();
    let update = state.update.as_ref();
    let end = state.end.as_ref();
    let started_at = leg_started_at(state);
    let forced = forced_for(started_at, forced);
    let ended_at = state.ended_at.or(forced);
    let duration_s = ended_at.map(|e| {
        end.and_then(|e| e.duration_seconds)
            .unwrap_or_else(|| started_at.map_or(0, |s| e.seconds_since(s)))
    });
    let reason = match end {
        Some(e) => e.reason.clone(),
        None if state.ended_at.is_none() && forced.is_some() => Some(FORCED_END_REASON.to_owned()),
        None => None,
    };
    let disposition =
        ended_at.map(|_| leg_disposition(reason.as_deref(), state.connected_at.is_some()));

    let media = match end.filter(|_| detail == Detail::Full) {
        Some(e) => json!({
            "encrypted_media": e.encrypted_media,
            "unencrypted_media": e.unencrypted_media,
            "rx_audio": e.rx_audio,
            "tx_audio": e.tx_audio,
            "rx_video": e.rx_video,
            "tx_video": e.tx_video,
            "media_usage_percentages": e.media_usage_percentages,
            "max_screens": e.max_screens,
            "activated_duration_s": e.activated_duration,
        }),
        None => Value::Object(Default::default()),
    };
    let alarms = end
        .filter(|_| detail == Detail::Full)
        .map(|e| {
            e.alarms
                .iter()
                .map(|a| Alarm {
                    alarm_type: a.alarm_type.clone(),
                    duration_percentage: a.duration_percentage,
                })
                .collect()
        })
        .unwrap_or_default();

    let details = match detail {
        Detail::Full => leg_details(state),
        Detail::Columns => Value::Null,
    };

    Leg {
        id: state.id.clone(),
        call_id: call_id.to_owned(),
        source_leg_id: state.id.clone(),
        remote_party: start.and_then(|s| s.remote_party.clone()),
        local_address: start.and_then(|s| s.local_address.clone()),
        display_name: update
            .and_then(|u| u.display_name.clone())
            .or_else(|| start.and_then(|s| s.display_name.clone()))
            .filter(|n| !n.is_empty()),
        direction: start.and_then(|s| s.direction.clone()),
        leg_type: start.and_then(|s| s.leg_type.clone()),
        sip_call_id: end
            .and_then(|e| e.sip_call_id.clone())
            .or_else(|| update.and_then(|u| u.sip_call_id.clone()))
            .or_else(|| start.and_then(|s| s.sip_call_id.clone())),
        started_at,
        connected_at: state.connected_at,
        ended_at,
        duration_s,
        reason,
        remote_teardown: end.and_then(|e| e.remote_teardown),
        disposition,
        media,
        alarms,
        details,
    }
}

/// Source fields of a leg that have no column of their own.
fn leg_details(state: &CmsLegState) -> Value {
    let start = state.start.as_ref();
    let update = state.update.as_ref();
    let end = state.end.as_ref();
    json!({
        "cms_call": state.call,
        "call_bridge": state.call_bridge,
        "ivr": leg_in_ivr(state),
        "cdr_tag": end.and_then(|e| e.cdr_tag.clone()).or_else(|| update.and_then(|u| u.cdr_tag.clone())).or_else(|| start.and_then(|s| s.cdr_tag.clone())),
        "remote_address": update.and_then(|u| u.remote_address.clone()).or_else(|| start.and_then(|s| s.remote_address.clone())),
        "sub_type": start.and_then(|s| s.sub_type.clone()),
        "lync_sub_type": start.and_then(|s| s.lync_sub_type.clone()),
        "guest_connection": start.and_then(|s| s.guest_connection),
        "owner_id": update.and_then(|u| u.owner_id.clone()).or_else(|| start.and_then(|s| s.owner_id.clone())),
        "group_id": update.and_then(|u| u.group_id.clone()).or_else(|| start.and_then(|s| s.group_id.clone())),
        "recording": start.and_then(|s| s.recording),
        "streaming": start.and_then(|s| s.streaming),
        "replaces_sip_call_id": start.and_then(|s| s.replaces_sip_call_id.clone()),
        "confirmation_status": end.and_then(|e| e.confirmation_status.clone()).or_else(|| update.and_then(|u| u.confirmation_status.clone())).or_else(|| start.and_then(|s| s.confirmation_status.clone())),
        "can_move": update.and_then(|u| u.can_move).or_else(|| start.and_then(|s| s.can_move)),
        "moved_call_leg": start.and_then(|s| s.moved_call_leg.clone()),
        "moved_call_leg_call_bridge": start.and_then(|s| s.moved_call_leg_call_bridge.clone()),
        "deactivated": update.and_then(|u| u.deactivated),
        "state": update.and_then(|u| u.state.clone()),
        "extra": extras(state),
    })
}

/// Unknown elements of the leg's records, by record type, so nothing CMS sent is hidden.
fn extras(state: &CmsLegState) -> Value {
    let mut out = serde_json::Map::new();
    let mut put = |name: &str, extra: &[(String, String)]| {
        if !extra.is_empty() {
            let m: serde_json::Map<String, Value> = extra
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            out.insert(name.to_owned(), Value::Object(m));
        }
    };
    if let Some(s) = &state.start {
        put("callLegStart", &s.extra);
    }
    if let Some(u) = &state.update {
        put("callLegUpdate", &u.extra);
    }
    if let Some(e) = &state.end {
        put("callLegEnd", &e.extra);
    }
    Value::Object(out)
}

fn call_details(parts: &[&CmsCallPart], sessions: &[CmsMediaSession]) -> Value {
    let first = parts.iter().find_map(|p| p.start.as_ref());
    json!({
        "name": first.and_then(|s| s.name.clone()),
        "call_type": first.and_then(|s| s.call_type.clone()),
        "co_space": first.and_then(|s| s.co_space.clone()),
        "tenant": first.and_then(|s| s.tenant.clone()),
        "owner_name": first.and_then(|s| s.owner_name.clone()),
        "cdr_tag": first.and_then(|s| s.cdr_tag.clone()),
        "call_correlator": first.and_then(|s| s.call_correlator.clone()),
        "cms_calls": parts.iter().map(|p| json!({
            "id": p.id,
            "call_bridge": p.call_bridge,
            "started_at": p.started_at,
            "ended_at": p.ended_at,
            "call_legs_completed": p.end.as_ref().and_then(|e| e.call_legs_completed),
            "call_legs_max_active": p.end.as_ref().and_then(|e| e.call_legs_max_active),
            "duration_s": p.end.as_ref().and_then(|e| e.duration_seconds),
            "endpoint_recorded": p.end.as_ref().and_then(|e| e.endpoint_recorded),
            "extra": p.start.as_ref().map(|s| &s.extra).into_iter().chain(p.end.as_ref().map(|e| &e.extra)).flatten().collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "recordings": sessions.iter().filter(|s| s.kind == "recording").map(media_session_json).collect::<Vec<_>>(),
        "streamings": sessions.iter().filter(|s| s.kind == "streaming").map(media_session_json).collect::<Vec<_>>(),
    })
}

fn media_session_json(s: &CmsMediaSession) -> Value {
    json!({
        "id": s.id,
        "started_at": s.started_at,
        "ended_at": s.ended_at,
        "start": s.start,
    })
}
