//! The body element of a record (`<call>`, `<callLeg>`, `<recording>`,
//! `<streaming>`) mapped field by field onto the structs of `cms/mod.rs`
//! (reference A.4; seed 000 4.1–4.10).

use super::cursor::{Cursor, Node, TextBuf, is_blank};
use super::{CmsRecordKind, DecodeError, attributes};
use crate::cms::*;
use quick_xml::events::BytesStart;
use std::borrow::Cow;

type Result<T> = std::result::Result<T, DecodeError>;

/// A start tag just read, with what the helpers need to know about it.
pub(super) struct Child<'a> {
    start: BytesStart<'a>,
    empty: bool,
    offset: usize,
}

impl Child<'_> {
    fn name(&self) -> &str {
        self.start.name().into_inner()
    }
}

/// Decodes the body element `start` of record `number` of type `record_type`.
pub(super) fn body<'a>(
    c: &mut Cursor<'a>,
    record_type: &str,
    start: BytesStart<'a>,
    empty: bool,
    offset: usize,
    number: usize,
) -> Result<CmsRecordBody> {
    let el = Child {
        start,
        empty,
        offset,
    };
    // A known type whose body element is not the one the guide names is not
    // what this decoder knows how to read: keep it as an unknown record.
    let kind = CmsRecordKind::from_type(record_type).filter(|k| k.element() == el.name());

    let mut id = None;
    let mut extra = Extra::new();
    for attr in attributes(&el.start, offset, Some(number)) {
        let (key, value) = attr?;
        if key == "id" && id.is_none() {
            id = Some(value.into_owned());
        } else {
            extra.push((format!("@{key}"), value.into_owned()));
        }
    }

    let Some(kind) = kind else {
        let mut r = UnknownRecord {
            element: Some(el.name().to_owned()),
            id,
            extra,
        };
        let text = children(c, &el, |c, ch| unknown(c, ch, "", &mut r.extra, None))?;
        keep_text(text, "", &mut r.extra);
        return Ok(CmsRecordBody::Unknown(r));
    };
    let Some(id) = id.filter(|id| !id.is_empty()) else {
        return Err(DecodeError::MissingId {
            record: number,
            record_type: record_type.to_owned(),
            element: el.name().to_owned(),
            offset,
        });
    };

    Ok(match kind {
        CmsRecordKind::CallStart => {
            let mut s = CallStart {
                id,
                extra,
                ..CallStart::default()
            };
            call_start(c, &el, &mut s)?;
            CmsRecordBody::CallStart(s)
        }
        CmsRecordKind::CallEnd => {
            let mut s = CallEnd {
                id,
                extra,
                ..CallEnd::default()
            };
            call_end(c, &el, &mut s)?;
            CmsRecordBody::CallEnd(s)
        }
        CmsRecordKind::CallLegStart => {
            let mut s = Box::new(CallLegStart {
                id,
                extra,
                ..CallLegStart::default()
            });
            call_leg_start(c, &el, &mut s)?;
            CmsRecordBody::CallLegStart(s)
        }
        CmsRecordKind::CallLegUpdate => {
            let mut s = Box::new(CallLegUpdate {
                id,
                extra,
                ..CallLegUpdate::default()
            });
            call_leg_update(c, &el, &mut s)?;
            CmsRecordBody::CallLegUpdate(s)
        }
        CmsRecordKind::CallLegEnd => {
            let mut s = Box::new(CallLegEnd {
                id,
                extra,
                ..CallLegEnd::default()
            });
            call_leg_end(c, &el, &mut s)?;
            CmsRecordBody::CallLegEnd(s)
        }
        CmsRecordKind::RecordingStart | CmsRecordKind::StreamingStart => {
            let mut s = MediaSessionStart {
                id,
                extra,
                ..MediaSessionStart::default()
            };
            media_session_start(c, &el, &mut s)?;
            if kind == CmsRecordKind::RecordingStart {
                CmsRecordBody::RecordingStart(s)
            } else {
                CmsRecordBody::StreamingStart(s)
            }
        }
        CmsRecordKind::RecordingEnd | CmsRecordKind::StreamingEnd => {
            // The guide gives these records only the id (seed 000 4.8, 4.10)
            // and the variants have no `extra`: anything else is read (so
            // that it is checked) and dropped; the raw record keeps it.
            let mut dropped = extra;
            children(c, &el, |c, ch| unknown(c, ch, "", &mut dropped, None))?;
            if kind == CmsRecordKind::RecordingEnd {
                CmsRecordBody::RecordingEnd { id }
            } else {
                CmsRecordBody::StreamingEnd { id }
            }
        }
    })
}

/// callStart (A.4).
fn call_start<'a>(c: &mut Cursor<'a>, el: &Child<'a>, s: &mut CallStart) -> Result<()> {
    let text = children(c, el, |c, ch| match ch.name() {
        "name" => field(c, ch, "", &mut s.name, &mut s.extra),
        // Often `<ownerName/>`, which gives `Some("")`.
        "ownerName" => field(c, ch, "", &mut s.owner_name, &mut s.extra),
        "callType" => field(c, ch, "", &mut s.call_type, &mut s.extra),
        "coSpace" => field(c, ch, "", &mut s.co_space, &mut s.extra),
        "tenant" => field(c, ch, "", &mut s.tenant, &mut s.extra),
        "cdrTag" => field(c, ch, "", &mut s.cdr_tag, &mut s.extra),
        "callCorrelator" => field(c, ch, "", &mut s.call_correlator, &mut s.extra),
        _ => unknown(c, ch, "", &mut s.extra, None),
    })?;
    keep_text(text, "", &mut s.extra);
    Ok(())
}

/// callEnd (A.4).
fn call_end<'a>(c: &mut Cursor<'a>, el: &Child<'a>, s: &mut CallEnd) -> Result<()> {
    let text = children(c, el, |c, ch| match ch.name() {
        "callLegsCompleted" => field(c, ch, "", &mut s.call_legs_completed, &mut s.extra),
        "callLegsMaxActive" => field(c, ch, "", &mut s.call_legs_max_active, &mut s.extra),
        "durationSeconds" => field(c, ch, "", &mut s.duration_seconds, &mut s.extra),
        "endpointRecorded" => field(c, ch, "", &mut s.endpoint_recorded, &mut s.extra),
        _ => unknown(c, ch, "", &mut s.extra, None),
    })?;
    keep_text(text, "", &mut s.extra);
    Ok(())
}

/// callLegStart (A.4; 2.0 guide p.12–13; seed 000 4.3).
fn call_leg_start<'a>(c: &mut Cursor<'a>, el: &Child<'a>, s: &mut CallLegStart) -> Result<()> {
    let text = children(c, el, |c, ch| match ch.name() {
        "cdrTag" => field(c, ch, "", &mut s.cdr_tag, &mut s.extra),
        "displayName" => field(c, ch, "", &mut s.display_name, &mut s.extra),
        "guestConnection" => field(c, ch, "", &mut s.guest_connection, &mut s.extra),
        "localAddress" => field(c, ch, "", &mut s.local_address, &mut s.extra),
        "remoteAddress" => field(c, ch, "", &mut s.remote_address, &mut s.extra),
        "remoteParty" => field(c, ch, "", &mut s.remote_party, &mut s.extra),
        "type" => field(c, ch, "", &mut s.leg_type, &mut s.extra),
        // `subType` is what CMS sends; `subtype` is what leeburleson's XPath
        // expected (A.5), accepted in case some version sends it.
        "subType" | "subtype" => field(c, ch, "", &mut s.sub_type, &mut s.extra),
        "lyncSubType" => field(c, ch, "", &mut s.lync_sub_type, &mut s.extra),
        "direction" => field(c, ch, "", &mut s.direction, &mut s.extra),
        "call" => field(c, ch, "", &mut s.call, &mut s.extra),
        "ivr" => ivr(c, ch, &mut s.ivr, &mut s.extra),
        "ownerId" => field(c, ch, "", &mut s.owner_id, &mut s.extra),
        "sipCallId" => field(c, ch, "", &mut s.sip_call_id, &mut s.extra),
        // The guide's tables spell it `groupID` in places (seed 000 4.5).
        "groupId" | "groupID" => field(c, ch, "", &mut s.group_id, &mut s.extra),
        "recording" => field(c, ch, "", &mut s.recording, &mut s.extra),
        "streaming" => field(c, ch, "", &mut s.streaming, &mut s.extra),
        "replacesSipCallId" => field(c, ch, "", &mut s.replaces_sip_call_id, &mut s.extra),
        "confirmationStatus" => field(c, ch, "", &mut s.confirmation_status, &mut s.extra),
        "canMove" => field(c, ch, "", &mut s.can_move, &mut s.extra),
        "movedCallLeg" => field(c, ch, "", &mut s.moved_call_leg, &mut s.extra),
        "movedCallLegCallBridge" => {
            field(c, ch, "", &mut s.moved_call_leg_call_bridge, &mut s.extra)
        }
        _ => unknown(c, ch, "", &mut s.extra, None),
    })?;
    keep_text(text, "", &mut s.extra);
    Ok(())
}

/// callLegUpdate (A.4; seed 000 4.5).
fn call_leg_update<'a>(c: &mut Cursor<'a>, el: &Child<'a>, s: &mut CallLegUpdate) -> Result<()> {
    let text = children(c, el, |c, ch| match ch.name() {
        "cdrTag" => field(c, ch, "", &mut s.cdr_tag, &mut s.extra),
        "state" => field(c, ch, "", &mut s.state, &mut s.extra),
        "call" => field(c, ch, "", &mut s.call, &mut s.extra),
        "ivr" => ivr(c, ch, &mut s.ivr, &mut s.extra),
        "ownerId" => field(c, ch, "", &mut s.owner_id, &mut s.extra),
        "sipCallId" => field(c, ch, "", &mut s.sip_call_id, &mut s.extra),
        "groupId" | "groupID" => field(c, ch, "", &mut s.group_id, &mut s.extra),
        "deactivated" => field(c, ch, "", &mut s.deactivated, &mut s.extra),
        "displayName" => field(c, ch, "", &mut s.display_name, &mut s.extra),
        "remoteAddress" => field(c, ch, "", &mut s.remote_address, &mut s.extra),
        "canMove" => field(c, ch, "", &mut s.can_move, &mut s.extra),
        "confirmationStatus" => field(c, ch, "", &mut s.confirmation_status, &mut s.extra),
        _ => unknown(c, ch, "", &mut s.extra, None),
    })?;
    keep_text(text, "", &mut s.extra);
    Ok(())
}

/// callLegEnd (A.4). `<alarm>` elements are collected wherever they appear
/// among the body's elements, also inside an unknown wrapper such as
/// `<alarms>`.
fn call_leg_end<'a>(c: &mut Cursor<'a>, el: &Child<'a>, s: &mut CallLegEnd) -> Result<()> {
    let text = children(c, el, |c, ch| match ch.name() {
        "cdrTag" => field(c, ch, "", &mut s.cdr_tag, &mut s.extra),
        "reason" => field(c, ch, "", &mut s.reason, &mut s.extra),
        "remoteTeardown" => field(c, ch, "", &mut s.remote_teardown, &mut s.extra),
        "durationSeconds" => field(c, ch, "", &mut s.duration_seconds, &mut s.extra),
        "activatedDuration" => field(c, ch, "", &mut s.activated_duration, &mut s.extra),
        "confirmationStatus" => field(c, ch, "", &mut s.confirmation_status, &mut s.extra),
        "mediaUsagePercentages" => media_usage(c, ch, &mut s.media_usage_percentages),
        "encryptedMedia" => field(c, ch, "", &mut s.encrypted_media, &mut s.extra),
        "unencryptedMedia" => field(c, ch, "", &mut s.unencrypted_media, &mut s.extra),
        "rxAudio" => media_stream(c, ch, &mut s.rx_audio),
        "txAudio" => media_stream(c, ch, &mut s.tx_audio),
        "rxVideo" => media_stream(c, ch, &mut s.rx_video),
        "txVideo" => media_stream(c, ch, &mut s.tx_video),
        "maxScreens" => field(c, ch, "", &mut s.max_screens, &mut s.extra),
        "sipCallId" => field(c, ch, "", &mut s.sip_call_id, &mut s.extra),
        // `alarm` itself is caught by `unknown` through the hook.
        _ => unknown(c, ch, "", &mut s.extra, Some(&mut s.alarms)),
    })?;
    keep_text(text, "", &mut s.extra);
    Ok(())
}

/// `<mediaUsagePercentages>` of a callLegEnd.
fn media_usage<'a>(
    c: &mut Cursor<'a>,
    el: &Child<'a>,
    slot: &mut Option<MediaUsagePercentages>,
) -> Result<()> {
    let s = slot.get_or_insert_with(Default::default);
    push_attributes(c, el, "", &mut s.extra)?;
    let text = children(c, el, |c, ch| match ch.name() {
        "mainVideoViewer" => field(c, ch, "", &mut s.main_video_viewer, &mut s.extra),
        "mainVideoContributor" => field(c, ch, "", &mut s.main_video_contributor, &mut s.extra),
        "presentationViewer" => field(c, ch, "", &mut s.presentation_viewer, &mut s.extra),
        "presentationContributor" => {
            field(c, ch, "", &mut s.presentation_contributor, &mut s.extra)
        }
        // The 2.9 change history writes `multiStreamVideo`, parsers write
        // `multistreamVideo` (A.0, A.4); accept both.
        "multistreamVideo" | "multiStreamVideo" => {
            field(c, ch, "", &mut s.multistream_video, &mut s.extra)
        }
        _ => unknown(c, ch, "", &mut s.extra, None),
    })?;
    keep_text(text, "", &mut s.extra);
    Ok(())
}

/// `<rxAudio>`, `<txAudio>`, `<rxVideo>` or `<txVideo>`.
fn media_stream<'a>(
    c: &mut Cursor<'a>,
    el: &Child<'a>,
    slot: &mut Option<MediaStream>,
) -> Result<()> {
    let s = slot.get_or_insert_with(Default::default);
    push_attributes(c, el, "", &mut s.extra)?;
    let text = children(c, el, |c, ch| match ch.name() {
        "codec" => field(c, ch, "", &mut s.codec, &mut s.extra),
        "maxSizeWidth" => field(c, ch, "", &mut s.max_size_width, &mut s.extra),
        "maxSizeHeight" => field(c, ch, "", &mut s.max_size_height, &mut s.extra),
        "packetStatistics" => packet_statistics(c, ch, &mut s.packet_statistics),
        _ => unknown(c, ch, "", &mut s.extra, None),
    })?;
    keep_text(text, "", &mut s.extra);
    Ok(())
}

/// `<packetStatistics>` of a media stream.
fn packet_statistics<'a>(
    c: &mut Cursor<'a>,
    el: &Child<'a>,
    slot: &mut Option<PacketStatistics>,
) -> Result<()> {
    let s = slot.get_or_insert_with(Default::default);
    push_attributes(c, el, "", &mut s.extra)?;
    let text = children(c, el, |c, ch| match ch.name() {
        "packetLossBursts" => burst(c, ch, &mut s.packet_loss_bursts, &mut s.extra),
        "packetGap" => burst(c, ch, &mut s.packet_gap, &mut s.extra),
        _ => unknown(c, ch, "", &mut s.extra, None),
    })?;
    keep_text(text, "", &mut s.extra);
    Ok(())
}

/// `<packetLossBursts>` or `<packetGap>`. [`BurstStatistics`] has no `extra`,
/// so what it cannot hold goes to the `<packetStatistics>` one, under
/// `packetLossBursts/...` or `packetGap/...`.
fn burst<'a>(
    c: &mut Cursor<'a>,
    el: &Child<'a>,
    slot: &mut Option<BurstStatistics>,
    extra: &mut Extra,
) -> Result<()> {
    let name = el.name();
    let s = slot.get_or_insert_with(Default::default);
    push_attributes(c, el, name, extra)?;
    let text = children(c, el, |c, ch| match ch.name() {
        "duration" => field(c, ch, name, &mut s.duration, extra),
        "density" => field(c, ch, name, &mut s.density, extra),
        _ => unknown(c, ch, name, extra, None),
    })?;
    keep_text(text, name, extra);
    Ok(())
}

/// recordingStart / streamingStart (A.4; seed 000 4.7, 4.9).
fn media_session_start<'a>(
    c: &mut Cursor<'a>,
    el: &Child<'a>,
    s: &mut MediaSessionStart,
) -> Result<()> {
    let text = children(c, el, |c, ch| match ch.name() {
        "path" => field(c, ch, "", &mut s.path, &mut s.extra),
        "recorderUrl" => field(c, ch, "", &mut s.recorder_url, &mut s.extra),
        "recorderUri" => field(c, ch, "", &mut s.recorder_uri, &mut s.extra),
        "streamUrl" => field(c, ch, "", &mut s.stream_url, &mut s.extra),
        "streamerUrl" => field(c, ch, "", &mut s.streamer_url, &mut s.extra),
        "streamerUri" => field(c, ch, "", &mut s.streamer_uri, &mut s.extra),
        "call" => field(c, ch, "", &mut s.call, &mut s.extra),
        "callLeg" => field(c, ch, "", &mut s.call_leg, &mut s.extra),
        _ => unknown(c, ch, "", &mut s.extra, None),
    })?;
    keep_text(text, "", &mut s.extra);
    Ok(())
}

/// `<ivr/>` (A.4): present means the leg is in the IVR. `<ivr>false</ivr>`
/// is read as false; any other text is kept in `extra`.
fn ivr<'a>(c: &mut Cursor<'a>, el: &Child<'a>, slot: &mut bool, extra: &mut Extra) -> Result<()> {
    let text = leaf(c, el, "", extra)?;
    *slot = !text.eq_ignore_ascii_case("false");
    if !(text.is_empty() || text.eq_ignore_ascii_case("true") || text.eq_ignore_ascii_case("false"))
    {
        extra.push(("ivr".to_owned(), text.into_owned()));
    }
    Ok(())
}

/// `<alarm type=".." durationPercentage=".."/>` (A.4). An alarm without a
/// `type` gets an empty one; what [`CmsAlarm`] cannot hold goes to `extra`
/// under `alarm/...` (below `prefix`).
fn alarm<'a>(
    c: &mut Cursor<'a>,
    el: &Child<'a>,
    prefix: &str,
    extra: &mut Extra,
) -> Result<CmsAlarm> {
    let path = join(prefix, el.name());
    let mut alarm = CmsAlarm::default();
    let (mut has_type, mut has_duration) = (false, false);
    for attr in attributes(&el.start, el.offset, c.record) {
        let (key, value) = attr?;
        match key {
            "type" if !has_type => {
                has_type = true;
                alarm.alarm_type = value.into_owned();
            }
            "durationPercentage" if !has_duration => {
                has_duration = true;
                match f64::from_text(value) {
                    Ok(v) => alarm.duration_percentage = Some(v),
                    Err(raw) => extra.push((format!("{path}/@{key}"), raw.into_owned())),
                }
            }
            _ => extra.push((format!("{path}/@{key}"), value.into_owned())),
        }
    }
    let text = children(c, el, |c, ch| unknown(c, ch, &path, extra, None))?;
    keep_text(text, &path, extra);
    Ok(alarm)
}

/// Reads the children of `el` up to its end tag, handing each child element
/// to `on_child`, and returns the element's own text if it is not blank.
/// Blank text between children is skipped without being gathered.
fn children<'a, F>(c: &mut Cursor<'a>, el: &Child<'a>, mut on_child: F) -> Result<Option<String>>
where
    F: FnMut(&mut Cursor<'a>, &Child<'a>) -> Result<()>,
{
    if el.empty {
        return Ok(None);
    }
    let mut text = TextBuf::default();
    loop {
        match c.next()? {
            Node::Element {
                start,
                empty,
                offset,
            } => on_child(
                c,
                &Child {
                    start,
                    empty,
                    offset,
                },
            )?,
            Node::Text(t) if is_blank(&t) => {}
            Node::Text(t) => text.push(t),
            Node::End { .. } => break,
            // The cursor refuses the end of input inside an element.
            Node::Eof => return Err(c.error(c.position(), "document ends inside an element")),
        }
    }
    let text = text.finish();
    Ok((!text.is_empty()).then(|| text.into_owned()))
}

/// Keeps the non-blank text of an element that should only hold elements.
fn keep_text(text: Option<String>, prefix: &str, extra: &mut Extra) {
    if let Some(text) = text {
        extra.push((join(prefix, "#text"), text));
    }
}

/// Reads the text of a leaf element (trimmed). Its attributes and any
/// elements inside it are kept in `extra` below `prefix/name`.
fn leaf<'a>(
    c: &mut Cursor<'a>,
    el: &Child<'a>,
    prefix: &str,
    extra: &mut Extra,
) -> Result<Cow<'a, str>> {
    if !is_blank(el.start.attributes_raw()) {
        push_attributes(c, el, &join(prefix, el.name()), extra)?;
    }
    if el.empty {
        return Ok(Cow::Borrowed(""));
    }
    let mut text = TextBuf::default();
    loop {
        match c.next()? {
            Node::Element {
                start,
                empty,
                offset,
            } => {
                let path = join(prefix, el.name());
                let child = Child {
                    start,
                    empty,
                    offset,
                };
                unknown(c, &child, &path, extra, None)?;
            }
            Node::Text(t) => text.push(t),
            Node::End { .. } => break,
            Node::Eof => return Err(c.error(c.position(), "document ends inside an element")),
        }
    }
    Ok(text.finish())
}

/// Reads a leaf element into `slot`. A value that does not parse, or a
/// second one for a slot already filled, is kept raw in `extra` under
/// `prefix/name`.
fn field<'a, T: FromText>(
    c: &mut Cursor<'a>,
    el: &Child<'a>,
    prefix: &str,
    slot: &mut Option<T>,
    extra: &mut Extra,
) -> Result<()> {
    let text = leaf(c, el, prefix, extra)?;
    let raw = if slot.is_none() {
        match T::from_text(text) {
            Ok(value) => {
                *slot = Some(value);
                return Ok(());
            }
            Err(raw) => raw,
        }
    } else {
        text
    };
    extra.push((join(prefix, el.name()), raw.into_owned()));
    Ok(())
}

/// Keeps an element this decoder does not know, and everything inside it, in
/// `extra`: one entry per leaf (`prefix/name/child`, text), one per attribute
/// (`prefix/name/@attr`, value). With `alarms`, `<alarm>` elements at any
/// depth are decoded into it instead.
fn unknown<'a>(
    c: &mut Cursor<'a>,
    el: &Child<'a>,
    prefix: &str,
    extra: &mut Extra,
    mut alarms: Option<&mut Vec<CmsAlarm>>,
) -> Result<()> {
    if el.name() == "alarm"
        && let Some(alarms) = alarms.as_deref_mut()
    {
        let alarm = alarm(c, el, prefix, extra)?;
        alarms.push(alarm);
        return Ok(());
    }
    let path = join(prefix, el.name());
    let has_attributes = push_attributes(c, el, &path, extra)?;
    if el.empty {
        if !has_attributes {
            extra.push((path, String::new()));
        }
        return Ok(());
    }
    let mut text = TextBuf::default();
    let mut has_children = false;
    loop {
        match c.next()? {
            Node::Element {
                start,
                empty,
                offset,
            } => {
                has_children = true;
                let child = Child {
                    start,
                    empty,
                    offset,
                };
                unknown(c, &child, &path, extra, alarms.as_deref_mut())?;
            }
            Node::Text(t) if has_children && is_blank(&t) => {}
            Node::Text(t) => text.push(t),
            Node::End { .. } => break,
            Node::Eof => return Err(c.error(c.position(), "document ends inside an element")),
        }
    }
    let text = text.finish();
    // An element with neither children nor attributes is kept even when
    // empty, so that its presence is not lost.
    if !text.is_empty() || !(has_children || has_attributes) {
        extra.push((path, text.into_owned()));
    }
    Ok(())
}

/// Keeps the attributes of `el` in `extra` as `path/@name` (`@name` when
/// `path` is empty). Returns whether there were any.
fn push_attributes(c: &Cursor<'_>, el: &Child<'_>, path: &str, extra: &mut Extra) -> Result<bool> {
    if is_blank(el.start.attributes_raw()) {
        return Ok(false);
    }
    let mut any = false;
    for attr in attributes(&el.start, el.offset, c.record) {
        let (key, value) = attr?;
        any = true;
        let name = if path.is_empty() {
            format!("@{key}")
        } else {
            format!("{path}/@{key}")
        };
        extra.push((name, value.into_owned()));
    }
    Ok(any)
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}/{name}")
    }
}

/// A field value read from (trimmed) element text; `Err` hands the text back
/// so that it can be kept raw.
trait FromText: Sized {
    fn from_text(text: Cow<'_, str>) -> std::result::Result<Self, Cow<'_, str>>;
}

impl FromText for String {
    fn from_text(text: Cow<'_, str>) -> std::result::Result<Self, Cow<'_, str>> {
        Ok(text.into_owned())
    }
}

/// `true` / `false` in any case: CMS sends `true`, the guide writes `True`.
impl FromText for bool {
    fn from_text(text: Cow<'_, str>) -> std::result::Result<Self, Cow<'_, str>> {
        if text.eq_ignore_ascii_case("true") {
            Ok(true)
        } else if text.eq_ignore_ascii_case("false") {
            Ok(false)
        } else {
            Err(text)
        }
    }
}

macro_rules! from_text_by_parse {
    ($($t:ty),*) => {$(
        impl FromText for $t {
            fn from_text(text: Cow<'_, str>) -> std::result::Result<Self, Cow<'_, str>> {
                match text.parse() {
                    Ok(v) => Ok(v),
                    Err(_) => Err(text),
                }
            }
        }
    )*};
}
from_text_by_parse!(u32, i64);

/// Percentages and packet statistics: finite decimals only (`inf`, `NaN`
/// are kept raw).
impl FromText for f64 {
    fn from_text(text: Cow<'_, str>) -> std::result::Result<Self, Cow<'_, str>> {
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(text),
        }
    }
}
