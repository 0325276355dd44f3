//! The fuzz targets' bodies (issue 9, point 1). Each function takes any
//! bytes, runs them through a decoder as the server does, and hands what
//! decodes to the correlator that would receive it. A panic anywhere is a
//! finding. `fuzz/` (outside the workspace, built by `cargo fuzz`) calls
//! these; `tests/replay.rs` runs them over the kept corpora and crashers
//! so a plain `cargo test` keeps every finding fixed.

use cdrhub_correlate as correlate;
use cdrhub_model::Timestamp;
use cdrhub_protocols::{cms, csv_cdr, cti, events, feed, hep, radius, sip};

/// A fixed arrival time: 2026-12-01T00:00:00Z.
const RECEIVED_AT: Timestamp = Timestamp(1_795_996_800_000);

/// What a fuzz target does with one input.
pub type Target = fn(&[u8]);

/// The fuzz targets, by the name of their folder under `fuzz/corpus`.
pub const TARGETS: &[(&str, Target)] = &[
    ("cms_xml", cms_xml),
    ("cti_frames", cti_frames),
    ("cti_trace", cti_trace),
    ("radius", radius_packet),
    ("gateway_feed", gateway_feed),
    ("hep", hep_packet),
    ("sip", sip_message),
    ("csv_import", csv_import),
    ("call_events", call_events),
];

/// A Cisco Meeting Server POST body: `<records>` and its records, then the
/// correlator's call groups and their summaries.
pub fn cms_xml(data: &[u8]) {
    if let Ok(batch) = cms::decode(data) {
        let mut group = correlate::cms::CmsCallGroup::default();
        for (n, record) in batch.records.iter().enumerate() {
            let _ = correlate::cms::record_keys(record);
            group.apply(record, batch.call_bridge.as_deref(), n as i64);
        }
        for detail in [
            correlate::cms::Detail::Full,
            correlate::cms::Detail::Columns,
        ] {
            let _ = group.summarize("call", "fuzz", detail);
        }
    }
    let _ = cms::decode_record("session", data);
}

/// A CTI byte stream; the first byte picks the protocol version, and so the
/// width of floating fields (below 20 narrow, from 20 wide). Every frame
/// that decodes must encode and decode back to itself.
pub fn cti_frames(data: &[u8]) {
    let Some((&pick, mut stream)) = data.split_first() else {
        return;
    };
    let version = if pick & 1 == 0 { 15 } else { 24 };
    let mut group = correlate::cti::CtiCallGroup::default();
    while let Ok(Some(len)) = cti::frame_len(stream) {
        if len > stream.len() {
            break;
        }
        let (frame, rest) = stream.split_at(len);
        stream = rest;
        let Ok(message) = cti::decode(frame, version) else {
            continue;
        };
        let again = cti::decode(&cti::encode(&message, version), version)
            .expect("an encoded message decodes");
        // A string that was not UTF-8 is read with U+FFFD in place of each
        // bad byte, which may make it too long for its field: encoded, it
        // is cut. Such a message cannot come back the same (the fuzzer
        // found one, kept in fuzz/artifacts/cti_frames); any other must.
        if !format!("{message:?}").contains('\u{FFFD}') {
            assert_eq!(
                again, message,
                "a message changed on its way through encode"
            );
        }
        let _ = correlate::cti::subject(&message);
        let event = correlate::cti::CtiEvent {
            received_at: RECEIVED_AT,
            message,
        };
        let _ = correlate::cti::event_keys(&event, "fuzz");
        group.apply(&event, 1);
    }
    let _ = group.summarize("call", "fuzz");
    let _ = cti::decode(data, version);
}

/// A UCCX trace file (`cdrhub import cti-trace`), then the correlator.
pub fn cti_trace(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut group = correlate::cti::CtiCallGroup::default();
    for entry in cti::trace::parse(&text, 2026).into_iter().flatten() {
        let event = correlate::cti::CtiEvent {
            received_at: entry.time,
            message: entry.message,
        };
        group.apply(&event, entry.line as i64);
    }
    let _ = group.summarize("call", "fuzz");
}

/// A RADIUS datagram: the authenticator check, the attributes, the
/// accounting fields and the correlator.
pub fn radius_packet(data: &[u8]) {
    let _ = radius::verify_accounting_request(data, b"fuzzing");
    let Ok(packet) = radius::decode(data) else {
        return;
    };
    let accounting = radius::parse_accounting(&packet);
    let event = correlate::radius::RadiusEvent {
        received_at: RECEIVED_AT,
        accounting,
    };
    let _ = event.at();
    let _ = correlate::radius::event_keys(&event, "fuzz");
    let mut group = correlate::radius::RadiusCallGroup::default();
    group.apply(&event, 1);
    let _ = group.summarize("call", "fuzz");
}

/// A GWFEED/1 datagram or stretch of a TCP stream: every line, as a
/// gateway's message and as a server's answer. A message that parses must
/// read back the same from its own line.
pub fn gateway_feed(data: &[u8]) {
    let mut group = correlate::feed::FeedCallGroup::default();
    for line in feed::split_datagram(data).flatten() {
        let _ = feed::parse_reply(line);
        let Ok(message) = feed::parse_line(line) else {
            continue;
        };
        let again = feed::parse_line(&message.to_line()).expect("a message's own line parses");
        assert_eq!(
            again, message,
            "a message changed on its way through its line"
        );
        if let feed::FeedBody::Call(event) = message.body {
            let event = correlate::feed::FeedEvent {
                received_at: RECEIVED_AT,
                login: "login".to_owned(),
                seq: message.seq,
                event,
            };
            let _ = correlate::feed::event_keys(&event, "fuzz");
            group.apply(&event, i64::from(message.seq));
        }
    }
    let _ = group.summarize("call", "fuzz");
}

/// HEP over UDP (one packet) and over TCP (a stream of frames), the SIP
/// inside, and the dialog correlator, timed out at the end.
pub fn hep_packet(data: &[u8]) {
    let mut group = correlate::sip::SipCallGroup::default();
    let mut feed = |packet: &[u8], n: i64| {
        if let Ok(decoded) = hep::decode(packet) {
            let _ = decoded.timestamp();
            let _ = decoded.into_owned();
        }
        if let Ok(event) = correlate::sip::event_of_hep(packet, RECEIVED_AT) {
            let _ = event.keys("fuzz");
            let _ = event.b2bua_hints("fuzz");
            group.apply(&event, n);
        }
    };
    feed(data, 0);
    let mut stream = data;
    let mut n = 1;
    while let Ok(Some(len)) = hep::frame_len(stream) {
        if len == 0 || len > stream.len() {
            break;
        }
        let (frame, rest) = stream.split_at(len);
        feed(frame, n);
        stream = rest;
        n += 1;
    }
    let timeouts = correlate::sip::DialogTimeouts::default();
    let _ = group.summarize("call", "fuzz");
    let later = Timestamp(RECEIVED_AT.0 + 86_400_000);
    let _ = group.stale_since(later, timeouts);
    group.time_out(later, timeouts);
    let _ = group.summarize("call", "fuzz");
    let _ = group.details();
}

/// A SIP message as a HEP payload carries it, with everything the
/// correlator reads of it.
pub fn sip_message(data: &[u8]) {
    let Ok(message) = sip::parse(data) else {
        return;
    };
    let _ = message.method();
    let _ = message.status_code();
    let _ = message.request_uri();
    let _ = message.vias().count();
    let _ = message.contacts().count();
    let _ = message.addresses("From");
    let _ = message.addresses("To");
    let _ = message.p_asserted_identity();
    let _ = message.remote_party_id();
    let _ = message.diversions().count();
    let _ = message.refer_to();
    let _ = message.reasons().count();
    let _ = message.max_forwards();
    let _ = message.expires();
    let _ = message.content_type();
    if let Ok(Some(sdp)) = message.sdp() {
        let _ = sdp.is_on_hold();
        for media in &sdp.media {
            let _ = media.formats().count();
            let _ = media.rtpmaps().count();
            let _ = media.is_on_hold();
            let _ = media.is_disabled();
        }
    }
}

/// A CSV file of one of the import formats (the first byte picks it; the
/// generic one through the mapping of `tests/data/csv`), then the events
/// each row becomes and the correlator.
pub fn csv_import(data: &[u8]) {
    const MAPPING: &str = include_str!("../../../tests/data/csv/generic-pbx-export.toml");
    let Some((&pick, file)) = data.split_first() else {
        return;
    };
    let format = match pick % 4 {
        0 => csv_cdr::CsvFormat::Asterisk,
        1 => csv_cdr::CsvFormat::FreeSwitch,
        2 => csv_cdr::CsvFormat::MiniSipServer,
        _ => csv_cdr::CsvFormat::Generic(
            csv_cdr::Mapping::from_toml(MAPPING).expect("the test mapping reads"),
        ),
    };
    let options = csv_cdr::CsvOptions {
        half_call: (pick & 4 != 0).then_some(csv_cdr::HalfCall::Terminating),
        ..Default::default()
    };
    for cdr in csv_cdr::decode(&format, &options, file)
        .into_iter()
        .flatten()
    {
        let mut group = correlate::events::EventCallGroup::default();
        for (n, event) in csv_cdr::row_events(format.name(), &cdr)
            .into_iter()
            .enumerate()
        {
            let record = correlate::events::EventRecord {
                received_at: RECEIVED_AT,
                event,
            };
            group.apply(&record, n as i64);
        }
        let _ = group.summarize("call", "fuzz");
    }
}

/// A body of `POST /api/v1/events` (one JSON event or NDJSON), and a
/// WebSocket message, then the correlator.
pub fn call_events(data: &[u8]) {
    let _ = events::decode_one(data);
    let Ok(decoded) = events::decode(data) else {
        return;
    };
    let mut group = correlate::events::EventCallGroup::default();
    for (n, event) in decoded.into_iter().enumerate() {
        let _ = events::encode_one(&event);
        let record = correlate::events::EventRecord {
            received_at: RECEIVED_AT,
            event,
        };
        group.apply(&record, n as i64);
    }
    let _ = group.summarize("call", "fuzz");
}
