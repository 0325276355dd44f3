//! What the correlator needs of a source's correlation state (`Group`):
//! CMS call groups and CTI calls are cached, merged, written and rebuilt
//! from the journal the same way (`correlation.rs`); only this differs.

#[allow(unused_imports)]
use crate::db::{self, Db, OptionalExt, Result, args};
use cdrhub_correlate::cms::{self, CallKey, CmsCallGroup, Detail, Touched};
use cdrhub_correlate::cti::{self, CtiCallGroup, CtiEvent};
use cdrhub_correlate::events::{self, EventCallGroup, EventRecord};
use cdrhub_correlate::feed::{self, FeedCallGroup, FeedEvent};
use cdrhub_correlate::radius::{self, RadiusCallGroup, RadiusEvent};
use cdrhub_correlate::sip::{self, SipCallGroup, SipEvent};
use cdrhub_model::{Call, Leg, Timestamp};
use cdrhub_protocols::cms::CmsRecord;
use serde_json::Value;

use super::records;

/// Where a record came from, as its commit says.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Origin<'a> {
    pub sender: &'a str,
    /// CMS: the `<records callBridge>` it came with.
    pub call_bridge: Option<&'a str>,
}

/// One call's correlation state for one source.
pub(crate) trait Group: Default + Send + Sized + 'static {
    type Record;

    /// The hashed source keys (`CallKey::hash`) a record names: the call
    /// it belongs to is the one that has any of them.
    fn record_keys(record: &Self::Record, origin: Origin<'_>) -> Vec<i64>;
    /// Hints (held in memory a few seconds, never written) that join calls
    /// no key joins: the ones the record looks for (a call that left one
    /// is this call), and the ones it leaves for later records. A call
    /// that left a hint first keeps it.
    fn record_hints(_record: &Self::Record, _origin: Origin<'_>) -> (Vec<i64>, Vec<i64>) {
        (Vec::new(), Vec::new())
    }
    /// Applies a record journaled under `journal_id`.
    fn apply(&mut self, record: Self::Record, origin: Origin<'_>, journal_id: i64) -> Touched;
    /// Takes in everything another group knew: the two are one call.
    fn absorb(&mut self, other: Self);
    /// Every key the call is known under.
    fn keys(&self) -> Vec<i64>;
    /// The call and its legs, without the parts derived only when read.
    fn summarize(&self, call_id: &str, sender: &str) -> (Call, Vec<Leg>);
    /// Source fields of the call, kept as JSON with it.
    fn details(&self) -> Value;
    /// A finished call is unlikely to change again: it is written at once.
    fn is_finished(&self) -> bool;
    /// Journal ids of every record of the call.
    fn record_ids(&self) -> Vec<i64>;
    /// Ids of the legs, all of which a merge rewrites.
    fn leg_ids(&self) -> Vec<String>;
    fn set_forced_end(&mut self, at: Timestamp);
    /// The call rebuilt from its journaled records (`journal` reads
    /// `cdrhub.db`), with the end an operator forced on it.
    fn load(journal: Db<'_>, ids: &[i64]) -> Result<Self>;
}

/// A source whose journaled records are applied by reference, so its
/// calls are rebuilt from the journal by one code path
/// (`records::rebuild_events`).
pub(crate) trait FromJournal: Group {
    type DecodeError: std::fmt::Display;
    /// A journaled record read again.
    fn decode(payload: &[u8], received_at: Timestamp) -> Result<Self::Record, Self::DecodeError>;
    /// Applies a record from `sender` (the call takes the sender of its
    /// first record).
    fn apply_journaled(&mut self, sender: &str, record: &Self::Record, journal_id: i64) -> Touched;
}

impl Group for CmsCallGroup {
    type Record = CmsRecord;

    fn record_keys(record: &CmsRecord, _: Origin<'_>) -> Vec<i64> {
        cms::record_keys(record).iter().map(CallKey::hash).collect()
    }

    fn apply(&mut self, record: CmsRecord, origin: Origin<'_>, journal_id: i64) -> Touched {
        self.apply_owned(record, origin.call_bridge, journal_id)
    }

    fn absorb(&mut self, other: Self) {
        CmsCallGroup::absorb(self, other)
    }

    fn keys(&self) -> Vec<i64> {
        CmsCallGroup::keys(self).collect()
    }

    fn summarize(&self, call_id: &str, sender: &str) -> (Call, Vec<Leg>) {
        CmsCallGroup::summarize(self, call_id, sender, Detail::Columns)
    }

    fn details(&self) -> Value {
        CmsCallGroup::details(self)
    }

    fn is_finished(&self) -> bool {
        self.forced_end.is_some()
            || !self.calls.is_empty()
                && self.calls.iter().all(|c| c.end.is_some())
                && self.legs.iter().all(|l| l.end.is_some())
    }

    fn record_ids(&self) -> Vec<i64> {
        records::group_ids(self)
    }

    fn leg_ids(&self) -> Vec<String> {
        self.legs.iter().map(|l| l.id.clone()).collect()
    }

    fn set_forced_end(&mut self, at: Timestamp) {
        self.forced_end = Some(self.forced_end.map_or(at, |f| f.min(at)));
    }

    fn load(journal: Db<'_>, ids: &[i64]) -> Result<Self> {
        records::rebuild(journal, &records::load(journal, ids)?)
    }
}

impl Group for CtiCallGroup {
    type Record = CtiEvent;

    fn record_keys(event: &CtiEvent, origin: Origin<'_>) -> Vec<i64> {
        cti::event_keys(event, origin.sender)
    }

    fn apply(&mut self, event: CtiEvent, origin: Origin<'_>, journal_id: i64) -> Touched {
        self.apply_journaled(origin.sender, &event, journal_id)
    }

    fn absorb(&mut self, other: Self) {
        CtiCallGroup::absorb(self, other)
    }

    fn keys(&self) -> Vec<i64> {
        CtiCallGroup::keys(self)
    }

    fn summarize(&self, call_id: &str, sender: &str) -> (Call, Vec<Leg>) {
        CtiCallGroup::summarize(self, call_id, sender)
    }

    fn details(&self) -> Value {
        CtiCallGroup::details(self)
    }

    fn is_finished(&self) -> bool {
        CtiCallGroup::is_finished(self)
    }

    fn record_ids(&self) -> Vec<i64> {
        CtiCallGroup::record_ids(self)
    }

    fn leg_ids(&self) -> Vec<String> {
        self.parts
            .iter()
            .flat_map(|p| {
                p.devices
                    .iter()
                    .map(move |d| format!("{}/{}", p.call_id, d.id))
            })
            .collect()
    }

    fn set_forced_end(&mut self, at: Timestamp) {
        self.forced_end = Some(self.forced_end.map_or(at, |f| f.min(at)));
    }

    fn load(journal: Db<'_>, ids: &[i64]) -> Result<Self> {
        records::rebuild_events(journal, &records::load_events::<Self>(journal, ids)?)
    }
}

impl FromJournal for CtiCallGroup {
    type DecodeError = cdrhub_protocols::cti::CtiError;

    fn decode(payload: &[u8], received_at: Timestamp) -> Result<CtiEvent, Self::DecodeError> {
        records::decode_cti(payload, received_at)
    }

    fn apply_journaled(&mut self, sender: &str, event: &CtiEvent, journal_id: i64) -> Touched {
        if self.sender.is_empty() {
            self.sender = sender.to_owned();
        }
        CtiCallGroup::apply(self, event, journal_id)
    }
}

impl Group for RadiusCallGroup {
    type Record = RadiusEvent;

    fn record_keys(event: &RadiusEvent, origin: Origin<'_>) -> Vec<i64> {
        radius::event_keys(event, origin.sender)
    }

    fn apply(&mut self, event: RadiusEvent, origin: Origin<'_>, journal_id: i64) -> Touched {
        self.apply_journaled(origin.sender, &event, journal_id)
    }

    fn absorb(&mut self, other: Self) {
        RadiusCallGroup::absorb(self, other)
    }

    fn keys(&self) -> Vec<i64> {
        RadiusCallGroup::keys(self)
    }

    fn summarize(&self, call_id: &str, sender: &str) -> (Call, Vec<Leg>) {
        RadiusCallGroup::summarize(self, call_id, sender)
    }

    fn details(&self) -> Value {
        RadiusCallGroup::details(self)
    }

    fn is_finished(&self) -> bool {
        RadiusCallGroup::is_finished(self)
    }

    fn record_ids(&self) -> Vec<i64> {
        RadiusCallGroup::record_ids(self)
    }

    fn leg_ids(&self) -> Vec<String> {
        RadiusCallGroup::leg_ids(self)
    }

    fn set_forced_end(&mut self, at: Timestamp) {
        self.forced_end = Some(self.forced_end.map_or(at, |f| f.min(at)));
    }

    fn load(journal: Db<'_>, ids: &[i64]) -> Result<Self> {
        records::rebuild_events(journal, &records::load_events::<Self>(journal, ids)?)
    }
}

impl FromJournal for RadiusCallGroup {
    type DecodeError = cdrhub_protocols::radius::RadiusError;

    fn decode(payload: &[u8], received_at: Timestamp) -> Result<RadiusEvent, Self::DecodeError> {
        records::decode_radius(payload, received_at)
    }

    fn apply_journaled(&mut self, sender: &str, event: &RadiusEvent, journal_id: i64) -> Touched {
        if self.sender.is_empty() {
            self.sender = sender.to_owned();
        }
        RadiusCallGroup::apply(self, event, journal_id)
    }
}

impl Group for FeedCallGroup {
    type Record = FeedEvent;

    fn record_keys(event: &FeedEvent, origin: Origin<'_>) -> Vec<i64> {
        feed::event_keys(event, origin.sender)
    }

    fn apply(&mut self, event: FeedEvent, origin: Origin<'_>, journal_id: i64) -> Touched {
        self.apply_journaled(origin.sender, &event, journal_id)
    }

    fn absorb(&mut self, other: Self) {
        FeedCallGroup::absorb(self, other)
    }

    fn keys(&self) -> Vec<i64> {
        FeedCallGroup::keys(self)
    }

    fn summarize(&self, call_id: &str, sender: &str) -> (Call, Vec<Leg>) {
        FeedCallGroup::summarize(self, call_id, sender)
    }

    fn details(&self) -> Value {
        FeedCallGroup::details(self)
    }

    fn is_finished(&self) -> bool {
        FeedCallGroup::is_finished(self)
    }

    fn record_ids(&self) -> Vec<i64> {
        FeedCallGroup::record_ids(self)
    }

    fn leg_ids(&self) -> Vec<String> {
        FeedCallGroup::leg_ids(self)
    }

    fn set_forced_end(&mut self, at: Timestamp) {
        self.forced_end = Some(self.forced_end.map_or(at, |f| f.min(at)));
    }

    fn load(journal: Db<'_>, ids: &[i64]) -> Result<Self> {
        records::rebuild_events(journal, &records::load_events::<Self>(journal, ids)?)
    }
}

impl FromJournal for FeedCallGroup {
    type DecodeError = String;

    fn decode(payload: &[u8], received_at: Timestamp) -> Result<FeedEvent, String> {
        records::decode_feed(payload, received_at)
    }

    fn apply_journaled(&mut self, sender: &str, event: &FeedEvent, journal_id: i64) -> Touched {
        if self.sender.is_empty() {
            self.sender = sender.to_owned();
        }
        FeedCallGroup::apply(self, event, journal_id)
    }
}

impl Group for SipCallGroup {
    type Record = SipEvent;

    fn record_keys(event: &SipEvent, origin: Origin<'_>) -> Vec<i64> {
        event.keys(origin.sender)
    }

    fn record_hints(event: &SipEvent, origin: Origin<'_>) -> (Vec<i64>, Vec<i64>) {
        event.b2bua_hints(origin.sender)
    }

    fn apply(&mut self, event: SipEvent, origin: Origin<'_>, journal_id: i64) -> Touched {
        self.apply_journaled(origin.sender, &event, journal_id)
    }

    fn absorb(&mut self, other: Self) {
        SipCallGroup::absorb(self, other)
    }

    fn keys(&self) -> Vec<i64> {
        SipCallGroup::keys(self)
    }

    fn summarize(&self, call_id: &str, sender: &str) -> (Call, Vec<Leg>) {
        SipCallGroup::summarize(self, call_id, sender)
    }

    fn details(&self) -> Value {
        SipCallGroup::details(self)
    }

    fn is_finished(&self) -> bool {
        SipCallGroup::is_finished(self)
    }

    fn record_ids(&self) -> Vec<i64> {
        SipCallGroup::record_ids(self)
    }

    fn leg_ids(&self) -> Vec<String> {
        SipCallGroup::leg_ids(self)
    }

    fn set_forced_end(&mut self, at: Timestamp) {
        self.forced_end = Some(self.forced_end.map_or(at, |f| f.min(at)));
    }

    fn load(journal: Db<'_>, ids: &[i64]) -> Result<Self> {
        records::rebuild_events(journal, &records::load_events::<Self>(journal, ids)?)
    }
}

impl FromJournal for SipCallGroup {
    type DecodeError = sip::NotSip;

    fn decode(payload: &[u8], received_at: Timestamp) -> Result<SipEvent, sip::NotSip> {
        sip::event_of_hep(payload, received_at)
    }

    fn apply_journaled(&mut self, sender: &str, event: &SipEvent, journal_id: i64) -> Touched {
        if self.sender.is_empty() {
            self.sender = sender.to_owned();
        }
        SipCallGroup::apply(self, event, journal_id)
    }
}

impl Group for EventCallGroup {
    type Record = EventRecord;

    fn record_keys(record: &EventRecord, origin: Origin<'_>) -> Vec<i64> {
        record
            .event
            .call_id
            .as_deref()
            .map(|c| vec![events::call_key(origin.sender, c)])
            .unwrap_or_default()
    }

    fn apply(&mut self, record: EventRecord, origin: Origin<'_>, journal_id: i64) -> Touched {
        self.apply_journaled(origin.sender, &record, journal_id)
    }

    fn absorb(&mut self, other: Self) {
        EventCallGroup::absorb(self, other)
    }

    fn keys(&self) -> Vec<i64> {
        EventCallGroup::keys(self)
    }

    fn summarize(&self, call_id: &str, sender: &str) -> (Call, Vec<Leg>) {
        EventCallGroup::summarize(self, call_id, sender)
    }

    fn details(&self) -> Value {
        EventCallGroup::details(self)
    }

    fn is_finished(&self) -> bool {
        EventCallGroup::is_finished(self)
    }

    fn record_ids(&self) -> Vec<i64> {
        self.records.clone()
    }

    fn leg_ids(&self) -> Vec<String> {
        EventCallGroup::leg_ids(self)
    }

    fn set_forced_end(&mut self, at: Timestamp) {
        self.forced_end = Some(self.forced_end.map_or(at, |f| f.min(at)));
    }

    fn load(journal: Db<'_>, ids: &[i64]) -> Result<Self> {
        records::rebuild_events(journal, &records::load_events::<Self>(journal, ids)?)
    }
}

impl FromJournal for EventCallGroup {
    type DecodeError = String;

    fn decode(payload: &[u8], received_at: Timestamp) -> Result<EventRecord, String> {
        cdrhub_protocols::events::decode_one(payload)
            .map(|event| EventRecord { received_at, event })
    }

    fn apply_journaled(&mut self, sender: &str, record: &EventRecord, journal_id: i64) -> Touched {
        if self.sender.is_empty() {
            self.sender = sender.to_owned();
        }
        EventCallGroup::apply(self, record, journal_id)
    }
}
