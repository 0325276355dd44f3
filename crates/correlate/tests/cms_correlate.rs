//! CMS correlation from the vendor document's own example traffic (seed 000
//! section 6, cleaned in tests/data/cms/) and from hand-made flows.

use cdrhub_correlate::cms::{CmsCallGroup, Detail, leg_disposition, record_keys};
use cdrhub_model::{Direction, Disposition, Timestamp};
use cdrhub_protocols::cms::{self, CmsRecord};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/../../tests/data/cms/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The eight records of the seed's example flow, in the order CMS sent them.
fn seed_records() -> (Option<String>, Vec<CmsRecord>) {
    let mut bridge = None;
    let mut records = Vec::new();
    for i in 1..=6 {
        let batch = cms::decode(&fixture(&format!("seed-000-post{i}.xml"))).unwrap();
        bridge = batch.call_bridge.clone();
        records.extend(batch.records);
    }
    assert_eq!(records.len(), 8);
    (bridge, records)
}

fn t(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).unwrap()
}

#[test]
fn seed_flow_makes_one_answered_conference_with_two_legs() {
    let (bridge, records) = seed_records();
    let mut group = CmsCallGroup::default();
    for r in &records {
        group.apply(r, bridge.as_deref(), 0);
    }
    let (call, legs) = group.summarize("c1", "cb1", Detail::Full);
    assert_eq!(call.kind, "conference");
    assert_eq!(call.caller.as_deref(), Some("sipclient1@example.com"));
    assert_eq!(call.dialed.as_deref(), Some("access1@127.0.0.1"));
    assert_eq!(call.destination.as_deref(), Some("test564_1"));
    assert_eq!(call.direction, Some(Direction::In));
    assert_eq!(call.started_at, t("2015-07-23T07:32:55Z"));
    assert_eq!(call.answered_at, Some(t("2015-07-23T07:32:55Z")));
    assert_eq!(call.ended_at, Some(t("2015-07-23T07:33:05Z")));
    assert_eq!(call.duration_s, Some(10));
    assert_eq!(call.disposition, Some(Disposition::Answered));
    assert_eq!(call.media.as_deref(), Some("video"));
    assert_eq!(call.legs, 2);
    assert_eq!(call.legs_completed, Some(2));
    assert_eq!(call.max_active_legs, Some(2));
    assert_eq!(
        call.details["call_correlator"],
        "5f3300c5-ca67-40e0-ab03-91baec70dbbe"
    );

    assert_eq!(
        legs[0].source_leg_id,
        "fc9c85ca-8c41-4a1a-9252-b16977d1ede1"
    );
    assert_eq!(legs[0].reason.as_deref(), Some("callDeactivated"));
    assert_eq!(legs[0].remote_teardown, Some(false));
    assert_eq!(
        legs[1].remote_party.as_deref(),
        Some("sipclient2@example.com")
    );
    assert_eq!(legs[1].reason.as_deref(), Some("remoteTeardown"));
    for leg in &legs {
        assert_eq!(leg.disposition, Some(Disposition::Answered));
        assert_eq!(leg.duration_s, Some(10));
        assert_eq!(leg.connected_at, Some(t("2015-07-23T07:32:55Z")));
        assert_eq!(leg.ended_at, Some(t("2015-07-23T07:33:05Z")));
        assert_eq!(
            leg.details["cms_call"],
            "46d49cb4-8171-4abc-97f5-b88035b1da0a"
        );
        assert_eq!(leg.media["rx_video"]["codec"], "h264");
    }
    assert_eq!(legs[1].media["rx_audio"]["codec"], "g722");
    assert_eq!(legs[0].media["rx_audio"]["codec"], "g711u");
}

/// Records may arrive in any order: every one of the 8! orders of the seed's
/// records ends in the same call and legs.
#[test]
fn every_arrival_order_of_the_seed_gives_the_same_call() {
    let (bridge, records) = seed_records();
    let mut in_order = CmsCallGroup::default();
    for r in &records {
        in_order.apply(r, bridge.as_deref(), 0);
    }
    let expected = in_order.summarize("c1", "cb1", Detail::Full);

    let mut order: Vec<usize> = (0..records.len()).collect();
    let mut count = 0;
    permute(&mut order, 0, &mut |perm| {
        let mut g = CmsCallGroup::default();
        for &i in perm {
            g.apply(&records[i], bridge.as_deref(), 0);
        }
        assert_eq!(
            g.summarize("c1", "cb1", Detail::Full),
            expected,
            "order {perm:?}"
        );
        count += 1;
    });
    assert_eq!(count, 40_320);
}

fn permute(v: &mut Vec<usize>, k: usize, f: &mut impl FnMut(&[usize])) {
    if k == v.len() {
        f(v);
        return;
    }
    for i in k..v.len() {
        v.swap(k, i);
        permute(v, k + 1, f);
        v.swap(k, i);
    }
}

/// Split into two groups and joined later, as the store does when a record
/// reveals that two partial calls are one, the result is the same.
#[test]
fn absorbing_partial_groups_equals_applying_everything_to_one() {
    let (bridge, records) = seed_records();
    let mut whole = CmsCallGroup::default();
    for r in &records {
        whole.apply(r, bridge.as_deref(), 0);
    }
    for split in 1..records.len() {
        let (mut a, mut b) = (CmsCallGroup::default(), CmsCallGroup::default());
        for (i, r) in records.iter().enumerate() {
            if i % split == 0 { &mut a } else { &mut b }.apply(r, bridge.as_deref(), 0);
        }
        b.absorb(a);
        assert_eq!(
            b.summarize("c", "s", Detail::Full),
            whole.summarize("c", "s", Detail::Full),
            "split {split}"
        );
    }
}

fn key_names(record: &CmsRecord) -> Vec<String> {
    record_keys(record)
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn record_keys_tie_legs_to_calls_and_bridges_by_correlator() {
    let (_, records) = seed_records();
    // callLegStart without a call: only its own key.
    assert_eq!(
        key_names(&records[0]),
        vec!["leg:fc9c85ca-8c41-4a1a-9252-b16977d1ede1"]
    );
    // callStart: the call and its correlator.
    assert_eq!(
        key_names(&records[1]),
        vec![
            "call:46d49cb4-8171-4abc-97f5-b88035b1da0a",
            "corr:5f3300c5-ca67-40e0-ab03-91baec70dbbe"
        ]
    );
    // callLegUpdate naming the call joins the leg to it.
    assert_eq!(
        key_names(&records[2]),
        vec![
            "leg:fc9c85ca-8c41-4a1a-9252-b16977d1ede1",
            "call:46d49cb4-8171-4abc-97f5-b88035b1da0a"
        ]
    );
    // The index hash is stable: calls.db on disk depends on it.
    assert_eq!(record_keys(&records[0])[0].hash(), FNV_OF_SEED_LEG);
}

/// FNV-1a 64 of `leg:fc9c85ca-8c41-4a1a-9252-b16977d1ede1`, computed independently.
const FNV_OF_SEED_LEG: i64 = -7_885_980_610_620_823_498;

/// CDR guide chapter 5 reasons to dispositions; the raw reason stays on the leg.
#[test]
fn leg_dispositions_follow_the_end_reason() {
    use Disposition::*;
    let cases = [
        ("remoteBusy", false, Busy),
        ("ringingTimeout", false, NoAnswer),
        ("remoteRejected", false, Rejected),
        ("unknownDestination", false, Failed),
        ("dnsFailure", false, Failed),
        ("error", false, Failed),
        ("encryptionRequired", false, Failed),
        ("participantLimitReached", false, Failed),
        ("remoteTeardown", false, Cancelled),
        ("clientInitiatedTeardown", false, Cancelled),
        ("remoteTeardown", true, Answered),
        ("localTeardown", true, Answered),
        ("callDeactivated", true, Answered),
        ("error", true, Answered),
        ("somethingNewInCms4", false, Failed),
        ("somethingNewInCms4", true, Answered),
    ];
    for (reason, connected, expected) in cases {
        assert_eq!(
            leg_disposition(Some(reason), connected),
            expected,
            "{reason} connected={connected}"
        );
    }
    assert_eq!(leg_disposition(None, false), Failed);
}

fn doc(session: &str, bridge: Option<&str>, records: &str) -> Vec<u8> {
    let bridge = bridge
        .map(|b| format!(" callBridge=\"{b}\""))
        .unwrap_or_default();
    format!("<?xml version=\"1.0\"?>\n<records session=\"{session}\"{bridge}>{records}</records>")
        .into_bytes()
}

fn record(index: u64, kind: &str, time: &str, body: &str) -> String {
    format!(
        "<record type=\"{kind}\" time=\"{time}\" recordIndex=\"{index}\" correlatorIndex=\"{}\">{body}</record>",
        index - 1
    )
}

/// A leg that rang out and one that was busy: the call is not answered, and
/// busy (more telling than no answer) names it, with its raw reason.
#[test]
fn unanswered_call_takes_the_most_telling_failure() {
    let body = [
        record(1, "callStart", "2026-01-01T10:00:00Z", "<call id=\"c\"><name>sales</name><callType>coSpace</callType></call>"),
        record(2, "callLegStart", "2026-01-01T10:00:01Z", "<callLeg id=\"l1\"><remoteParty>1001</remoteParty><localAddress>sales@cms</localAddress><direction>outgoing</direction><call>c</call></callLeg>"),
        record(3, "callLegStart", "2026-01-01T10:00:02Z", "<callLeg id=\"l2\"><remoteParty>1002</remoteParty><direction>outgoing</direction><call>c</call></callLeg>"),
        record(4, "callLegEnd", "2026-01-01T10:00:31Z", "<callLeg id=\"l1\"><reason>ringingTimeout</reason><durationSeconds>0</durationSeconds></callLeg>"),
        record(5, "callLegEnd", "2026-01-01T10:00:05Z", "<callLeg id=\"l2\"><reason>remoteBusy</reason><durationSeconds>0</durationSeconds></callLeg>"),
        record(6, "callEnd", "2026-01-01T10:00:32Z", "<call id=\"c\"><callLegsCompleted>2</callLegsCompleted><callLegsMaxActive>0</callLegsMaxActive><durationSeconds>32</durationSeconds></call>"),
    ]
    .concat();
    let batch = cms::decode(&doc("s", None, &body)).unwrap();
    let mut g = CmsCallGroup::default();
    for r in &batch.records {
        g.apply(r, None, 0);
    }
    let (call, legs) = g.summarize("c", "s", Detail::Full);
    assert_eq!(call.disposition, Some(Disposition::Busy));
    assert_eq!(call.cause.as_deref(), Some("remoteBusy"));
    assert_eq!(call.answered_at, None);
    assert_eq!(call.talk_s, None);
    assert_eq!(call.direction, Some(Direction::Out));
    // A dial-out only call: the caller is the CMS side, the dialed the first callee.
    assert_eq!(call.caller.as_deref(), Some("sales@cms"));
    assert_eq!(call.dialed.as_deref(), Some("1001"));
    assert_eq!(legs[0].disposition, Some(Disposition::NoAnswer));
    assert_eq!(legs[1].disposition, Some(Disposition::Busy));
}

/// Until callEnd arrives the call is in progress: no end, no disposition.
#[test]
fn call_without_call_end_is_in_progress() {
    let (bridge, records) = seed_records();
    let mut g = CmsCallGroup::default();
    for r in records.iter().filter(|r| r.record_type != "callEnd") {
        g.apply(r, bridge.as_deref(), 0);
    }
    let (call, _) = g.summarize("c", "s", Detail::Full);
    assert_eq!(call.ended_at, None);
    assert_eq!(call.disposition, None);
    assert_eq!(call.answered_at, Some(t("2015-07-23T07:32:55Z")));
}

/// An operator ends a call whose end records never came: what had not ended
/// ends at that time, with the reason `forcedEnd` and the call flagged;
/// what had ended keeps its own end, and a real end that comes later wins.
#[test]
fn a_forced_end_ends_what_had_not_ended() {
    let (bridge, records) = seed_records();
    let mut g = CmsCallGroup::default();
    // Everything but the call's end and the second leg's end.
    for r in records
        .iter()
        .filter(|r| r.record_type != "callEnd")
        .filter(|r| !(r.record_type == "callLegEnd" && r.record_index == 6))
    {
        g.apply(r, bridge.as_deref(), 0);
    }
    let forced_at = t("2015-07-23T08:00:00Z");
    g.forced_end = Some(forced_at);
    let (call, legs) = g.summarize("c", "s", Detail::Full);
    assert_eq!(call.ended_at, Some(forced_at));
    assert_eq!(call.flags, vec![cdrhub_correlate::cms::FORCED_END_FLAG]);
    assert_eq!(call.disposition, Some(Disposition::Answered));
    let ended_by_itself = legs
        .iter()
        .find(|l| l.reason.as_deref() == Some("callDeactivated"));
    assert_eq!(
        ended_by_itself.and_then(|l| l.ended_at),
        Some(t("2015-07-23T07:33:05Z"))
    );
    let forced = legs
        .iter()
        .find(|l| l.reason.as_deref() == Some(cdrhub_correlate::cms::FORCED_END_REASON))
        .expect("the open leg is ended by hand");
    assert_eq!(forced.ended_at, Some(forced_at));
    assert_eq!(forced.disposition, Some(Disposition::Answered));

    // The real end arrives after all.
    for r in records
        .iter()
        .filter(|r| r.record_type == "callEnd" || r.record_type == "callLegEnd")
    {
        g.apply(r, bridge.as_deref(), 0);
    }
    let (call, legs) = g.summarize("c", "s", Detail::Full);
    assert_eq!(call.ended_at, Some(t("2015-07-23T07:33:05Z")));
    assert!(call.flags.is_empty());
    assert!(
        legs.iter()
            .all(|l| l.reason.as_deref() != Some("forcedEnd"))
    );
}

/// One call over two Call Bridges: each bridge's callStart carries the same
/// callCorrelator, and the store joins them; the summary counts both.
#[test]
fn call_over_two_bridges_sums_their_call_ends() {
    let mut g = CmsCallGroup::default();
    for (bridge, call, leg, party) in [("b1", "ca", "la", "alice"), ("b2", "cb", "lb", "bob")] {
        let body = [
            record(1, "callStart", "2026-01-01T10:00:00Z", &format!("<call id=\"{call}\"><name>board</name><callType>coSpace</callType><callCorrelator>X</callCorrelator></call>")),
            record(2, "callLegStart", "2026-01-01T10:00:01Z", &format!("<callLeg id=\"{leg}\"><remoteParty>{party}</remoteParty><direction>incoming</direction><call>{call}</call></callLeg>")),
            record(3, "callLegUpdate", "2026-01-01T10:00:02Z", &format!("<callLeg id=\"{leg}\"><state>connected</state><call>{call}</call></callLeg>")),
            record(4, "callLegEnd", "2026-01-01T10:10:00Z", &format!("<callLeg id=\"{leg}\"><reason>remoteTeardown</reason><durationSeconds>599</durationSeconds></callLeg>")),
            record(5, "callEnd", "2026-01-01T10:10:01Z", &format!("<call id=\"{call}\"><callLegsCompleted>1</callLegsCompleted><callLegsMaxActive>1</callLegsMaxActive><durationSeconds>601</durationSeconds></call>")),
        ]
        .concat();
        let batch = cms::decode(&doc(&format!("s-{bridge}"), Some(bridge), &body)).unwrap();
        let mut part = CmsCallGroup::default();
        for r in &batch.records {
            part.apply(r, Some(bridge), 0);
        }
        g.absorb(part);
    }
    let (call, legs) = g.summarize("c", "s", Detail::Full);
    assert_eq!(legs.len(), 2);
    assert_eq!(call.legs_completed, Some(2));
    assert_eq!(call.max_active_legs, Some(2));
    assert_eq!(call.duration_s, Some(601));
    assert_eq!(call.details["cms_calls"].as_array().unwrap().len(), 2);
    assert_eq!(call.disposition, Some(Disposition::Answered));
}

/// A leg that never joined a call (it ended in the IVR) is a call of its own,
/// ended when the leg ended; a callLegEnd alone still gives a start time.
#[test]
fn ivr_leg_without_call_and_end_before_start() {
    let body = [
        record(2, "callLegEnd", "2026-01-01T10:00:20Z", "<callLeg id=\"l\"><reason>ivrTimeout</reason><durationSeconds>20</durationSeconds></callLeg>"),
        record(1, "callLegStart", "2026-01-01T10:00:00Z", "<callLeg id=\"l\"><remoteParty>2001</remoteParty><direction>incoming</direction><ivr/></callLeg>"),
    ]
    .concat();
    let batch = cms::decode(&doc("s", None, &body)).unwrap();
    let mut g = CmsCallGroup::default();
    g.apply(&batch.records[0], None, 0);
    let (call, legs) = g.summarize("c", "s", Detail::Full);
    assert_eq!(
        legs[0].started_at,
        Some(t("2026-01-01T10:00:00Z")),
        "end less duration"
    );
    assert_eq!(call.ended_at, Some(t("2026-01-01T10:00:20Z")));
    g.apply(&batch.records[1], None, 0);
    let (call, legs) = g.summarize("c", "s", Detail::Full);
    assert_eq!(call.kind, "ivr");
    assert_eq!(call.disposition, Some(Disposition::Failed));
    assert_eq!(call.cause.as_deref(), Some("ivrTimeout"));
    assert_eq!(legs[0].remote_party.as_deref(), Some("2001"));
}

/// Later updates win field by field; an older update arriving late fills only
/// what is still unknown.
#[test]
fn updates_merge_newest_first() {
    let body = [
        record(1, "callLegStart", "2026-01-01T10:00:00Z", "<callLeg id=\"l\"><displayName>Old</displayName><direction>incoming</direction></callLeg>"),
        record(3, "callLegUpdate", "2026-01-01T10:00:09Z", "<callLeg id=\"l\"><displayName>Newest</displayName></callLeg>"),
        record(2, "callLegUpdate", "2026-01-01T10:00:05Z", "<callLeg id=\"l\"><displayName>Middle</displayName><state>connected</state><remoteAddress>10.0.0.1</remoteAddress></callLeg>"),
    ]
    .concat();
    let batch = cms::decode(&doc("s", None, &body)).unwrap();
    let mut g = CmsCallGroup::default();
    for r in &batch.records {
        g.apply(r, None, 0);
    }
    let (_, legs) = g.summarize("c", "s", Detail::Full);
    assert_eq!(legs[0].display_name.as_deref(), Some("Newest"));
    assert_eq!(legs[0].details["remote_address"], "10.0.0.1");
    assert_eq!(legs[0].connected_at, Some(t("2026-01-01T10:00:05Z")));
}
