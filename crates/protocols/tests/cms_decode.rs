//! The CMS CDR decoder against the fixtures in `tests/data/cms/` (see the
//! README there for where each came from), the error cases, and property
//! tests that it never panics.

use cdrhub_model::Timestamp;
use cdrhub_protocols::cms::*;
use proptest::prelude::*;

const SESSION: &str = "a865433a-4926-4549-a701-9bb5b93c75e6";
const CALL_BRIDGE: &str = "158ba4f7-70eb-4a35-982c-71d4f1674277";
const SEED_CALL: &str = "46d49cb4-8171-4abc-97f5-b88035b1da0a";
const SEED_LEG_1: &str = "fc9c85ca-8c41-4a1a-9252-b16977d1ede1";
const SEED_LEG_2: &str = "9cfdb064-3ae9-4b08-a003-6478187f375f";

macro_rules! fixture_path {
    ($name:literal) => {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/cms/", $name)
    };
}

macro_rules! fixture {
    ($name:literal) => {
        std::fs::read(fixture_path!($name)).expect(concat!("fixture ", $name))
    };
}

fn t(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).unwrap()
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

fn extra(pairs: &[(&str, &str)]) -> Extra {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Decodes `input`, then checks that every record's `raw` range is exactly
/// its `<record ...>...</record>` element and decodes again to the same
/// record on its own.
fn decode_checked(input: &[u8]) -> CmsBatch {
    let batch = decode(input).expect("decodes");
    for rec in &batch.records {
        let raw = &input[rec.raw.clone()];
        assert!(raw.starts_with(b"<record "), "raw starts at <record");
        assert!(raw.ends_with(b"</record>"), "raw ends at </record>");
        let again = decode_record(&batch.session, raw).expect("raw record decodes");
        assert_eq!(again.raw, 0..raw.len());
        assert_eq!(
            again,
            CmsRecord {
                raw: 0..raw.len(),
                ..rec.clone()
            }
        );
    }
    batch
}

fn one_record(batch: &CmsBatch) -> &CmsRecord {
    assert_eq!(batch.records.len(), 1);
    &batch.records[0]
}

fn assert_seed_envelope(batch: &CmsBatch) {
    assert_eq!(batch.session, SESSION);
    assert_eq!(batch.call_bridge.as_deref(), Some(CALL_BRIDGE));
}

fn assert_header(rec: &CmsRecord, record_type: &str, time: &str, index: u64, correlator: u64) {
    assert_eq!(rec.record_type, record_type);
    assert_eq!(rec.time, t(time));
    assert_eq!(rec.record_index, index);
    assert_eq!(rec.correlator_index, Some(correlator));
    assert_eq!(rec.preceding_records_missing, 0);
}

fn stream(codec: &str, size: Option<(u32, u32)>, stats: Option<[f64; 4]>) -> Option<MediaStream> {
    Some(MediaStream {
        codec: s(codec),
        max_size_width: size.map(|(w, _)| w),
        max_size_height: size.map(|(_, h)| h),
        packet_statistics: stats.map(|[ld, lden, gd, gden]| PacketStatistics {
            packet_loss_bursts: Some(BurstStatistics {
                duration: Some(ld),
                density: Some(lden),
            }),
            packet_gap: Some(BurstStatistics {
                duration: Some(gd),
                density: Some(gden),
            }),
            extra: vec![],
        }),
        extra: vec![],
    })
}

fn usage(viewer: f64, contributor: f64) -> Option<MediaUsagePercentages> {
    Some(MediaUsagePercentages {
        main_video_viewer: Some(viewer),
        main_video_contributor: Some(contributor),
        ..Default::default()
    })
}

// ---------------------------------------------------------------------------
// Seed 000 chapter 6: the guide's example traffic flow.

#[test]
fn seed_post1_call_leg_start() {
    let batch = decode_checked(&fixture!("seed-000-post1.xml"));
    assert_seed_envelope(&batch);
    let rec = one_record(&batch);
    assert_header(rec, "callLegStart", "2015-07-23T07:32:55Z", 1, 0);
    assert_eq!(rec.time.millis(), 1_437_636_775_000);
    assert_eq!(rec.subject_id(), Some(SEED_LEG_1));
    assert_eq!(
        rec.body,
        CmsRecordBody::CallLegStart(Box::new(CallLegStart {
            id: SEED_LEG_1.into(),
            remote_party: s("sipclient1@example.com"),
            local_address: s("access1@127.0.0.1"),
            leg_type: s("sip"),
            direction: s("incoming"),
            group_id: s("18da80f3-8a71-4255-aa90-e1677b99b588"),
            sip_call_id: s("b8a81dab-c24c-43db-bab8-742f587faec8"),
            ..Default::default()
        }))
    );
}

#[test]
fn seed_post2_call_start_and_leg_update() {
    let batch = decode_checked(&fixture!("seed-000-post2.xml"));
    assert_seed_envelope(&batch);
    assert_eq!(batch.records.len(), 2);

    let rec = &batch.records[0];
    assert_header(rec, "callStart", "2015-07-23T07:32:55Z", 2, 1);
    assert_eq!(
        rec.body,
        CmsRecordBody::CallStart(CallStart {
            id: SEED_CALL.into(),
            name: s("test564_1"),
            call_type: s("coSpace"),
            co_space: s("50605235-60cf-484a-9fa1-278ad0646243"),
            call_correlator: s("5f3300c5-ca67-40e0-ab03-91baec70dbbe"),
            ..Default::default()
        })
    );

    let rec = &batch.records[1];
    assert_header(rec, "callLegUpdate", "2015-07-23T07:32:55Z", 3, 2);
    assert_eq!(
        rec.body,
        CmsRecordBody::CallLegUpdate(Box::new(CallLegUpdate {
            id: SEED_LEG_1.into(),
            state: s("connected"),
            call: s(SEED_CALL),
            group_id: s("18da80f3-8a71-4255-aa90-e1677b99b588"),
            sip_call_id: s("b8a81dab-c24c-43db-bab8-742f587faec8"),
            ..Default::default()
        }))
    );
    // The two raw ranges follow each other and do not overlap.
    assert!(batch.records[0].raw.end < batch.records[1].raw.start);
}

#[test]
fn seed_post3_second_call_leg_start() {
    let batch = decode_checked(&fixture!("seed-000-post3.xml"));
    assert_seed_envelope(&batch);
    let rec = one_record(&batch);
    assert_header(rec, "callLegStart", "2015-07-23T07:32:55Z", 4, 3);
    assert_eq!(
        rec.body,
        CmsRecordBody::CallLegStart(Box::new(CallLegStart {
            id: SEED_LEG_2.into(),
            remote_party: s("sipclient2@example.com"),
            local_address: s("access2@127.0.0.1"),
            leg_type: s("sip"),
            direction: s("incoming"),
            group_id: s("3420c93f-f33c-4c9e-be95-d0d1bfb207f0"),
            sip_call_id: s("a939937c-8bbe-4376-92de-97635983d7ef"),
            ..Default::default()
        }))
    );
}

#[test]
fn seed_post4_second_call_leg_update() {
    let batch = decode_checked(&fixture!("seed-000-post4.xml"));
    assert_seed_envelope(&batch);
    let rec = one_record(&batch);
    assert_header(rec, "callLegUpdate", "2015-07-23T07:32:55Z", 5, 4);
    assert_eq!(
        rec.body,
        CmsRecordBody::CallLegUpdate(Box::new(CallLegUpdate {
            id: SEED_LEG_2.into(),
            state: s("connected"),
            call: s(SEED_CALL),
            group_id: s("3420c93f-f33c-4c9e-be95-d0d1bfb207f0"),
            sip_call_id: s("a939937c-8bbe-4376-92de-97635983d7ef"),
            ..Default::default()
        }))
    );
}

#[test]
fn seed_post5_call_leg_end_with_packet_statistics() {
    let batch = decode_checked(&fixture!("seed-000-post5.xml"));
    assert_seed_envelope(&batch);
    let rec = one_record(&batch);
    assert_header(rec, "callLegEnd", "2015-07-23T07:33:05Z", 6, 5);
    assert_eq!(
        rec.body,
        CmsRecordBody::CallLegEnd(Box::new(CallLegEnd {
            id: SEED_LEG_2.into(),
            reason: s("remoteTeardown"),
            remote_teardown: Some(true),
            duration_seconds: Some(10),
            media_usage_percentages: usage(100.0, 100.0),
            unencrypted_media: Some(true),
            rx_audio: stream("g722", None, Some([0.0, 0.0, 9.701, 0.0])),
            tx_audio: stream("g722_1c", None, None),
            rx_video: stream("h264", Some((768, 448)), Some([0.0, 0.0, 8.597, 0.0])),
            tx_video: stream("h264", Some((1280, 720)), None),
            sip_call_id: s("a939937c-8bbe-4376-92de-97635983d7ef"),
            ..Default::default()
        }))
    );
}

#[test]
fn seed_post6_call_leg_end_and_call_end_in_one_batch() {
    let batch = decode_checked(&fixture!("seed-000-post6.xml"));
    assert_seed_envelope(&batch);
    assert_eq!(batch.records.len(), 2);

    let rec = &batch.records[0];
    assert_header(rec, "callLegEnd", "2015-07-23T07:33:05Z", 7, 6);
    assert_eq!(
        rec.body,
        CmsRecordBody::CallLegEnd(Box::new(CallLegEnd {
            id: SEED_LEG_1.into(),
            reason: s("callDeactivated"),
            remote_teardown: Some(false),
            duration_seconds: Some(10),
            media_usage_percentages: usage(100.0, 100.0),
            unencrypted_media: Some(true),
            rx_audio: stream("g711u", None, Some([0.0, 0.0, 9.702, 0.0])),
            tx_audio: stream("g722_1c", None, None),
            rx_video: stream("h264", Some((1280, 720)), Some([0.0, 0.0, 8.484, 0.0])),
            tx_video: stream("h264", Some((1024, 576)), None),
            sip_call_id: s("b8a81dab-c24c-43db-bab8-742f587faec8"),
            ..Default::default()
        }))
    );

    let rec = &batch.records[1];
    assert_header(rec, "callEnd", "2015-07-23T07:33:05Z", 8, 7);
    assert_eq!(
        rec.body,
        CmsRecordBody::CallEnd(CallEnd {
            id: SEED_CALL.into(),
            call_legs_completed: Some(2),
            call_legs_max_active: Some(2),
            duration_seconds: Some(10),
            ..Default::default()
        })
    );
}

#[test]
fn seed_flow_has_consecutive_indexes() {
    let inputs = [
        fixture!("seed-000-post1.xml"),
        fixture!("seed-000-post2.xml"),
        fixture!("seed-000-post3.xml"),
        fixture!("seed-000-post4.xml"),
        fixture!("seed-000-post5.xml"),
        fixture!("seed-000-post6.xml"),
    ];
    let mut indexes = vec![];
    for input in &inputs {
        let batch = decode_checked(input);
        for rec in batch.records {
            // A.3 / real 2017 data: recordIndex = correlatorIndex + 1 with one receiver.
            assert_eq!(rec.correlator_index, Some(rec.record_index - 1));
            indexes.push(rec.record_index);
        }
    }
    assert_eq!(indexes, (1..=8).collect::<Vec<_>>());
}

// ---------------------------------------------------------------------------
// Real captures.

/// `HL727/Meeting:statistics/tests/acano_cdr.json`: NDJSON of raw POST bodies.
fn hl727_posts() -> Vec<Vec<u8>> {
    let text = String::from_utf8(fixture!("hl727-acano_cdr.json")).unwrap();
    text.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            v["rawpost"].as_str().unwrap().as_bytes().to_vec()
        })
        .collect()
}

#[test]
fn hl727_capture_decodes_every_post() {
    let posts = hl727_posts();
    assert_eq!(posts.len(), 10);
    let mut types = vec![];
    for post in &posts {
        let batch = decode_checked(post);
        assert_eq!(batch.session, "5552fc55-8d82-4963-8f99-d5a0be6e2f92");
        // 2017, unclustered: no callBridge (A.3).
        assert_eq!(batch.call_bridge, None);
        for rec in &batch.records {
            assert_eq!(rec.correlator_index, Some(rec.record_index - 1));
            types.push(rec.record_type.clone());
        }
    }
    assert_eq!(
        types,
        [
            "callStart",
            "callLegStart",
            "callLegUpdate",
            "callLegStart",
            "callLegUpdate",
            "callLegUpdate",
            "callLegEnd",
            "callLegUpdate",
            "callLegEnd",
            "callEnd",
            "callEnd",
        ]
    );
}

#[test]
fn hl727_call_start_and_acano_leg() {
    let posts = hl727_posts();
    let batch = decode_checked(&posts[0]);
    let rec = one_record(&batch);
    assert_header(rec, "callStart", "2017-04-24T12:00:11Z", 3141, 3140);
    assert_eq!(
        rec.body,
        CmsRecordBody::CallStart(CallStart {
            id: "f54bfbc3-c11e-47a6-a918-6a308018ac1d".into(),
            name: s("techsupport"),
            call_type: s("coSpace"),
            co_space: s("9edd2132-11ab-481e-8bc8-6ceac75e45b0"),
            call_correlator: s("f50d36fb-b258-43d2-951f-e33a8c42baa9"),
            ..Default::default()
        })
    );

    let batch = decode_checked(&posts[1]);
    let rec = one_record(&batch);
    assert_header(rec, "callLegStart", "2017-04-24T12:00:11Z", 3142, 3141);
    assert_eq!(
        rec.body,
        CmsRecordBody::CallLegStart(Box::new(CallLegStart {
            id: "9d9a01c5-8e44-4953-b8bc-a0fdf56ea1ef".into(),
            remote_party: s("christian.wahlin@example.org"),
            display_name: s("Christian Wahlin"),
            leg_type: s("acano"),
            direction: s("incoming"),
            call: s("f54bfbc3-c11e-47a6-a918-6a308018ac1d"),
            group_id: s("9d9a01c5-8e44-4953-b8bc-a0fdf56ea1ef"),
            ..Default::default()
        }))
    );

    let batch = decode_checked(&posts[5]);
    let rec = one_record(&batch);
    assert_header(rec, "callLegUpdate", "2017-04-24T12:01:52Z", 3162, 3161);
    assert_eq!(
        rec.body,
        CmsRecordBody::CallLegUpdate(Box::new(CallLegUpdate {
            id: "900ad298-dd62-4d24-a47f-406fd5564cb2".into(),
            state: s("connected"),
            call: s("f54bfbc3-c11e-47a6-a918-6a308018ac1d"),
            deactivated: Some(false),
            group_id: s("18027ec1-5097-496b-9883-1f4359851ee7"),
            sip_call_id: s("4147704e9cbe41dcbfb5d718ee9ea9e8"),
            display_name: s("User 2"),
            remote_address: s("user2@example.org"),
            ..Default::default()
        }))
    );
}

#[test]
fn hl727_call_leg_end_with_two_alarms() {
    let posts = hl727_posts();
    let batch = decode_checked(&posts[6]);
    let rec = one_record(&batch);
    assert_header(rec, "callLegEnd", "2017-04-24T13:06:05Z", 3551, 3550);
    assert_eq!(
        rec.body,
        CmsRecordBody::CallLegEnd(Box::new(CallLegEnd {
            id: "9d9a01c5-8e44-4953-b8bc-a0fdf56ea1ef".into(),
            reason: s("remoteTeardown"),
            remote_teardown: Some(true),
            duration_seconds: Some(3953),
            activated_duration: Some(3953),
            media_usage_percentages: usage(98.9, 100.0),
            alarms: vec![
                CmsAlarm {
                    alarm_type: "packetLoss".into(),
                    duration_percentage: Some(1.4),
                },
                CmsAlarm {
                    alarm_type: "excessiveJitter".into(),
                    duration_percentage: Some(0.0),
                },
            ],
            encrypted_media: Some(true),
            rx_audio: stream("opus", None, None),
            tx_audio: stream("opus", None, None),
            rx_video: stream("h264", Some((1280, 720)), None),
            tx_video: stream("h264", Some((1280, 720)), None),
            ..Default::default()
        }))
    );
}

#[test]
fn hl727_two_record_batch_and_synthetic_call_end() {
    let posts = hl727_posts();
    let batch = decode_checked(&posts[8]);
    assert_eq!(batch.records.len(), 2);
    assert_eq!(batch.records[0].record_type, "callLegEnd");
    assert_eq!(
        batch.records[0].subject_id(),
        Some("aa7c3c54-07d6-4af3-b853-a25fe676e554")
    );
    assert_header(
        &batch.records[1],
        "callEnd",
        "2017-04-24T13:06:05Z",
        3554,
        3553,
    );
    assert_eq!(
        batch.records[1].body,
        CmsRecordBody::CallEnd(CallEnd {
            id: "f54bfbc3-c11e-47a6-a918-6a308018ac1d".into(),
            call_legs_completed: Some(3),
            call_legs_max_active: Some(3),
            duration_seconds: Some(3955),
            ..Default::default()
        })
    );

    // The last line is synthetic: a callEnd that also carries callStart
    // elements, which a callEnd does not have, so they are kept in `extra`.
    let batch = decode_checked(&posts[9]);
    let rec = one_record(&batch);
    assert_eq!(
        rec.body,
        CmsRecordBody::CallEnd(CallEnd {
            id: "f54bfbc3-c11e-47a6-a918-6a308018ac1d".into(),
            duration_seconds: Some(600),
            call_legs_max_active: Some(2),
            extra: extra(&[
                ("name", "techsupport"),
                ("callType", "coSpace"),
                ("coSpace", "9edd2132-11ab-481e-8bc8-6ceac75e45b0"),
                ("callCorrelator", "f50d36fb-b258-43d2-951f-e33a8c42baa9"),
            ]),
            ..Default::default()
        })
    );
}

const HL727_SESSION: &str = "8bf2f897-e4d6-4217-81d2-1ad41c245389";
const HL727_BRIDGE: &str = "04aec22b-20bb-4e71-b5bc-3e82279fb4ac";

#[test]
fn hl727_2022_call_start_with_empty_owner_name() {
    let batch = decode_checked(&fixture!("hl727-test_parsers-call_start.xml"));
    assert_eq!(batch.session, HL727_SESSION);
    assert_eq!(batch.call_bridge.as_deref(), Some(HL727_BRIDGE));
    let rec = one_record(&batch);
    assert_header(rec, "callStart", "2022-05-17T10:07:29Z", 86556, 196284);
    assert_eq!(
        rec.body,
        CmsRecordBody::CallStart(CallStart {
            id: "d4d90b1d-7590-4a1b-8586-3dfdd35936ba".into(),
            name: s("Test"),
            owner_name: s(""),
            call_type: s("coSpace"),
            co_space: s("068ee526-6f72-4ca7-ad1d-fe75e9c52753"),
            tenant: s("5f90ff0f-0705-4341-9b20-42b8df54c012"),
            call_correlator: s("4417fa02-5538-48cc-a835-ff854afc0d8c"),
            ..Default::default()
        })
    );
}

#[test]
fn hl727_2022_call_leg_update() {
    let batch = decode_checked(&fixture!("hl727-test_parsers-call_leg_update.xml"));
    assert_eq!(batch.call_bridge.as_deref(), Some(HL727_BRIDGE));
    let rec = one_record(&batch);
    assert_header(rec, "callLegUpdate", "2022-05-17T10:08:31Z", 86561, 196289);
    assert_eq!(
        rec.body,
        CmsRecordBody::CallLegUpdate(Box::new(CallLegUpdate {
            id: "1611cb0c-e6a1-4e54-bd3a-53926d321da3".into(),
            state: s("connected"),
            call: s("d4d90b1d-7590-4a1b-8586-3dfdd35936ba"),
            deactivated: Some(false),
            group_id: s("3cfa15ee-cda4-4aff-8c50-02c26201afce"),
            sip_call_id: s("1B014FC3-D50011EC-832E975D-E41722E3@cube01.smartmeeting.se"),
            remote_address: s("0701234567@node01.example.org"),
            can_move: Some(true),
            confirmation_status: s("notRequired"),
            ..Default::default()
        }))
    );
}

#[test]
fn hl727_2022_call_leg_end_rejected() {
    let batch = decode_checked(&fixture!("hl727-test_parsers-call_leg_end.xml"));
    let rec = one_record(&batch);
    assert_header(rec, "callLegEnd", "2022-05-17T10:09:08Z", 86563, 196291);
    assert_eq!(
        rec.body,
        CmsRecordBody::CallLegEnd(Box::new(CallLegEnd {
            id: "1611cb0c-e6a1-4e54-bd3a-53926d321da3".into(),
            reason: s("remoteTeardown"),
            remote_teardown: Some(true),
            confirmation_status: s("rejected"),
            duration_seconds: Some(98),
            ..Default::default()
        }))
    );
}

#[test]
fn hl727_2022_call_end() {
    let batch = decode_checked(&fixture!("hl727-test_parsers-call_end.xml"));
    let rec = one_record(&batch);
    assert_header(rec, "callEnd", "2022-05-17T10:09:08Z", 86564, 196292);
    assert_eq!(
        rec.body,
        CmsRecordBody::CallEnd(CallEnd {
            id: "d4d90b1d-7590-4a1b-8586-3dfdd35936ba".into(),
            call_legs_completed: Some(2),
            call_legs_max_active: Some(2),
            duration_seconds: Some(99),
            ..Default::default()
        })
    );
}

#[test]
fn cdr_receiver_db_readme_call() {
    let batch = decode_checked(&fixture!("cdr-receiver-db-readme.xml"));
    assert_eq!(batch.call_bridge, None);
    let call = "6af88404-91a4-441a-b46e-b4c455c9959d";
    let leg = "ffaebfd2-6510-40a0-89ae-8c4a8a4d0818";
    let r = &batch.records;
    assert_eq!(r.len(), 6);
    for (i, rec) in r.iter().enumerate() {
        // 2019 sample: recordIndex and correlatorIndex differ (A.3).
        assert_eq!(rec.record_index, 19 + i as u64);
        assert_eq!(rec.correlator_index, Some(110 + i as u64));
    }
    assert_eq!(r[0].time, t("2019-04-05T16:55:18Z"));
    assert_eq!(
        r[0].body,
        CmsRecordBody::CallStart(CallStart {
            id: call.into(),
            name: s("Scarif Weekly Data Backup Planning Meeting"),
            owner_name: s("Orson Krennic"),
            call_type: s("coSpace"),
            co_space: s("529dc096-5ad9-4347-ba0d-c5908c001479"),
            call_correlator: s("c6727635-cba3-4c22-bdfa-52b1c4112db7"),
            ..Default::default()
        })
    );
    assert_eq!(
        r[1].body,
        CmsRecordBody::CallLegStart(Box::new(CallLegStart {
            id: leg.into(),
            remote_party: s("jyn@wobani.org"),
            display_name: s("Jyn Erso"),
            leg_type: s("acano"),
            direction: s("incoming"),
            call: s(call),
            group_id: s(leg),
            ..Default::default()
        }))
    );
    let update = |state: Option<String>| {
        CmsRecordBody::CallLegUpdate(Box::new(CallLegUpdate {
            id: leg.into(),
            state,
            call: s(call),
            deactivated: Some(false),
            group_id: s(leg),
            display_name: s("Jyn Erso"),
            ..Default::default()
        }))
    };
    assert_eq!(r[2].body, update(s("connected")));
    assert_eq!(r[3].body, update(None));
    assert_eq!(
        r[4].body,
        CmsRecordBody::CallLegEnd(Box::new(CallLegEnd {
            id: leg.into(),
            reason: s("remoteTeardown"),
            remote_teardown: Some(true),
            duration_seconds: Some(4),
            activated_duration: Some(4),
            media_usage_percentages: usage(100.0, 100.0),
            encrypted_media: Some(true),
            rx_audio: stream("opus", None, None),
            tx_audio: stream("opus", None, None),
            rx_video: stream("h264", None, None),
            tx_video: stream("h264", Some((800, 600)), None),
            ..Default::default()
        }))
    );
    assert_eq!(
        r[5].body,
        CmsRecordBody::CallEnd(CallEnd {
            id: call.into(),
            call_legs_completed: Some(1),
            call_legs_max_active: Some(1),
            duration_seconds: Some(4),
            ..Default::default()
        })
    );
}

// ---------------------------------------------------------------------------
// Hand-written fixtures: every field of every record type.

#[test]
fn hand_call_records_with_every_field() {
    let batch = decode_checked(&fixture!("hand-call-all-fields.xml"));
    assert_eq!(batch.session, "6c1e2a43-93ab-4b7e-8a52-0f4d6e1c2b10");
    assert_eq!(
        batch.call_bridge.as_deref(),
        Some("e3b0c442-98fc-4c14-9afb-4c8996fb9242")
    );
    let call = "0b8f6a0e-2f3c-4f6b-9e7a-1c2d3e4f5a6b";
    let leg = "11111111-2222-4333-8444-555555555555";
    let r = &batch.records;
    assert_eq!(r.len(), 4);
    assert_header(&r[0], "callStart", "2024-03-01T09:00:00Z", 101, 200);
    assert_eq!(
        r[0].body,
        CmsRecordBody::CallStart(CallStart {
            id: call.into(),
            name: s("Weekly sync"),
            owner_name: s("Alice Example"),
            call_type: s("coSpace"),
            co_space: s("7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"),
            tenant: s("5f90ff0f-0705-4341-9b20-42b8df54c012"),
            cdr_tag: s("cost-centre-42"),
            call_correlator: s("c0ffee00-1234-4abc-8def-000000000001"),
            extra: vec![],
        })
    );
    assert_header(&r[1], "callLegStart", "2024-03-01T09:00:01Z", 102, 201);
    assert_eq!(
        r[1].body,
        CmsRecordBody::CallLegStart(Box::new(CallLegStart {
            id: leg.into(),
            cdr_tag: s("room-7"),
            display_name: s("Bob Example"),
            // The guide writes "True".
            guest_connection: Some(true),
            local_address: s("meet@cms.example.com"),
            remote_address: s("bob@lync.example.com"),
            remote_party: s("bob@lync.example.com"),
            leg_type: s("sip"),
            sub_type: s("lync"),
            lync_sub_type: s("audioVideo"),
            direction: s("outgoing"),
            call: s(call),
            ivr: false,
            owner_id: s("99999999-8888-4777-8666-555555555555"),
            sip_call_id: s("abc123@lync.example.com"),
            group_id: s("22222222-3333-4444-8555-666666666666"),
            recording: Some(false),
            streaming: Some(true),
            replaces_sip_call_id: s("old456@lync.example.com"),
            confirmation_status: s("required"),
            can_move: Some(true),
            moved_call_leg: s("33333333-4444-4555-8666-777777777777"),
            moved_call_leg_call_bridge: s("44444444-5555-4666-8777-888888888888"),
            extra: vec![],
        }))
    );
    assert_header(&r[2], "callLegUpdate", "2024-03-01T09:00:02Z", 103, 202);
    assert_eq!(
        r[2].body,
        CmsRecordBody::CallLegUpdate(Box::new(CallLegUpdate {
            id: leg.into(),
            cdr_tag: s("room-7b"),
            state: s("connected"),
            call: None,
            ivr: true,
            owner_id: s("99999999-8888-4777-8666-555555555555"),
            sip_call_id: s("abc123@lync.example.com"),
            group_id: s("22222222-3333-4444-8555-666666666666"),
            deactivated: Some(true),
            display_name: s("Bob (guest)"),
            remote_address: s("bob@lync.example.com"),
            can_move: Some(false),
            confirmation_status: s("confirmed"),
            extra: vec![],
        }))
    );
    assert_header(&r[3], "callEnd", "2024-03-01T09:30:00Z", 104, 203);
    assert_eq!(
        r[3].body,
        CmsRecordBody::CallEnd(CallEnd {
            id: call.into(),
            call_legs_completed: Some(1),
            call_legs_max_active: Some(1),
            duration_seconds: Some(1800),
            endpoint_recorded: Some(true),
            extra: vec![],
        })
    );
}

#[test]
fn hand_call_leg_end_with_every_field() {
    let batch = decode_checked(&fixture!("hand-leg-end-all-fields.xml"));
    let rec = one_record(&batch);
    assert_eq!(rec.record_type, "callLegEnd");
    assert_eq!(rec.record_index, 108);
    assert_eq!(rec.correlator_index, Some(207));
    assert_eq!(rec.preceding_records_missing, 3);
    assert_eq!(
        rec.body,
        CmsRecordBody::CallLegEnd(Box::new(CallLegEnd {
            id: "11111111-2222-4333-8444-555555555555".into(),
            cdr_tag: s("room-7b"),
            reason: s("clientInitiatedTeardown"),
            remote_teardown: Some(false),
            duration_seconds: Some(1798),
            activated_duration: Some(1790),
            confirmation_status: s("confirmed"),
            media_usage_percentages: Some(MediaUsagePercentages {
                main_video_viewer: Some(99.5),
                main_video_contributor: Some(98.0),
                presentation_viewer: Some(12.5),
                presentation_contributor: Some(3.0),
                multistream_video: Some(50.0),
                extra: vec![],
            }),
            alarms: vec![
                CmsAlarm {
                    alarm_type: "packetLoss".into(),
                    duration_percentage: Some(2.5),
                },
                CmsAlarm {
                    alarm_type: "excessiveJitter".into(),
                    duration_percentage: Some(0.7),
                },
                CmsAlarm {
                    alarm_type: "highRoundTripTime".into(),
                    duration_percentage: Some(10.0),
                },
            ],
            encrypted_media: Some(true),
            unencrypted_media: Some(false),
            rx_audio: stream("opus", None, Some([1.25, 0.05, 30.125, 0.01])),
            tx_audio: stream("opus", None, None),
            rx_video: stream("h264", Some((1920, 1080)), Some([0.5, 0.1, 12.0, 0.02])),
            tx_video: stream("vp8", Some((1280, 720)), None),
            max_screens: Some(2),
            sip_call_id: s("abc123@lync.example.com"),
            extra: vec![],
        }))
    );
}

#[test]
fn hand_recording_and_streaming_records() {
    let batch = decode_checked(&fixture!("hand-recording-streaming.xml"));
    assert_eq!(batch.session, "9d2f4a10-5b6c-4d7e-8f90-a1b2c3d4e5f6");
    assert_eq!(batch.call_bridge, None);
    let r = &batch.records;
    assert_eq!(r.len(), 4);
    assert_header(&r[0], "recordingStart", "2024-03-01T10:00:00Z", 7, 6);
    assert_eq!(
        r[0].body,
        CmsRecordBody::RecordingStart(MediaSessionStart {
            id: "aaaaaaaa-0000-4000-8000-000000000001".into(),
            path: s("spaces/weekly-sync/2024-03-01-100000"),
            recorder_url: s("https://recorder.example.com:8443/"),
            recorder_uri: s("recorder@example.com"),
            call: s("0b8f6a0e-2f3c-4f6b-9e7a-1c2d3e4f5a6b"),
            call_leg: s("bbbbbbbb-0000-4000-8000-000000000002"),
            ..Default::default()
        })
    );
    assert_header(&r[1], "streamingStart", "2024-03-01T10:00:05Z", 8, 7);
    assert_eq!(
        r[1].body,
        CmsRecordBody::StreamingStart(MediaSessionStart {
            id: "cccccccc-0000-4000-8000-000000000003".into(),
            stream_url: s("rtmp://live.example.com/app/weekly"),
            streamer_url: s("https://streamer.example.com:8443/"),
            streamer_uri: s("streamer@example.com"),
            call: s("0b8f6a0e-2f3c-4f6b-9e7a-1c2d3e4f5a6b"),
            call_leg: s("dddddddd-0000-4000-8000-000000000004"),
            ..Default::default()
        })
    );
    assert_header(&r[2], "streamingEnd", "2024-03-01T10:20:00Z", 9, 8);
    assert_eq!(
        r[2].body,
        CmsRecordBody::StreamingEnd {
            id: "cccccccc-0000-4000-8000-000000000003".into()
        }
    );
    assert_header(&r[3], "recordingEnd", "2024-03-01T10:20:01Z", 10, 9);
    assert_eq!(
        r[3].body,
        CmsRecordBody::RecordingEnd {
            id: "aaaaaaaa-0000-4000-8000-000000000001".into()
        }
    );
}

#[test]
fn hand_unknown_record_type_unknown_elements_and_variants() {
    let input = fixture!("hand-unknown-and-extra.xml");
    assert!(
        input.starts_with(b"\xEF\xBB\xBF"),
        "fixture starts with a BOM"
    );
    let batch = decode_checked(&input);
    assert_eq!(batch.session, "5552fc55-8d82-4963-8f99-d5a0be6e2f92");
    let r = &batch.records;
    assert_eq!(r.len(), 3);

    assert_header(&r[0], "participantInfo", "2024-03-01T11:00:00Z", 1, 0);
    assert_eq!(
        r[0].subject_id(),
        Some("eeeeeeee-0000-4000-8000-000000000005")
    );
    assert_eq!(
        r[0].body,
        CmsRecordBody::Unknown(UnknownRecord {
            element: s("callLeg"),
            id: s("eeeeeeee-0000-4000-8000-000000000005"),
            extra: extra(&[
                ("@kind", "guest"),
                ("ipAddress", "192.0.2.10"),
                ("device/type", "webrtc"),
                ("device/version", "1.2"),
                ("flag", ""),
            ]),
        })
    );

    assert_eq!(
        r[1].body,
        CmsRecordBody::CallLegStart(Box::new(CallLegStart {
            id: "eeeeeeee-0000-4000-8000-000000000005".into(),
            // Entity, CDATA and text are one value.
            display_name: s("Smith & Jones <Sales>"),
            remote_party: s("carol@example.com"),
            leg_type: s("acano"),
            sub_type: s("distributionLink"),
            group_id: s("ffffffff-0000-4000-8000-000000000006"),
            can_move: Some(true),
            // The first of two values is kept in the field.
            direction: s("incoming"),
            extra: extra(&[
                ("@extraAttr", "x"),
                ("recording", "yes"),
                ("newThing/value", "1"),
                ("newThing/other/@unit", "ms"),
                ("newThing/other", "20"),
                ("direction", "outgoing"),
            ]),
            ..Default::default()
        }))
    );

    assert_eq!(
        r[2].body,
        CmsRecordBody::CallLegEnd(Box::new(CallLegEnd {
            id: "eeeeeeee-0000-4000-8000-000000000005".into(),
            reason: s("someFutureReason"),
            media_usage_percentages: Some(MediaUsagePercentages {
                main_video_viewer: Some(100.0),
                multistream_video: Some(25.0),
                extra: extra(&[("futureUsage", "1.0")]),
                ..Default::default()
            }),
            // Alarms inside a wrapper element are still alarms.
            alarms: vec![
                CmsAlarm {
                    alarm_type: "packetLoss".into(),
                    duration_percentage: Some(5.0),
                },
                CmsAlarm {
                    alarm_type: "futureAlarm".into(),
                    duration_percentage: None,
                },
            ],
            rx_audio: Some(MediaStream {
                codec: s("opus"),
                packet_statistics: Some(PacketStatistics {
                    packet_loss_bursts: Some(BurstStatistics {
                        duration: None,
                        density: Some(0.01),
                    }),
                    packet_gap: None,
                    extra: extra(&[
                        ("packetLossBursts/duration", "NaN"),
                        ("packetLossBursts/count", "4"),
                    ]),
                }),
                extra: extra(&[("jitter", "12")]),
                ..Default::default()
            }),
            extra: extra(&[
                ("durationSeconds", "ten"),
                ("alarms/alarm/@durationPercentage", "n/a"),
                ("alarms/alarm/@severity", "high"),
                ("maxScreens", ""),
            ]),
            ..Default::default()
        }))
    );
}

#[test]
fn raw_range_counts_the_bom() {
    let input = fixture!("hand-unknown-and-extra.xml");
    let batch = decode(&input).unwrap();
    let start = batch.records[0].raw.start;
    assert!(input[start..].starts_with(b"<record type=\"participantInfo\""));
}

// ---------------------------------------------------------------------------
// Tolerated variations, inline.

fn doc(records: &str) -> String {
    format!("<records session=\"s\">{records}</records>")
}

const R: &str = r#"type="callLegUpdate" time="2024-01-01T00:00:00Z" recordIndex="1""#;

#[test]
fn minimal_documents() {
    let batch = decode(b"<records session=\"s\"/>").unwrap();
    assert_eq!(batch.session, "s");
    assert!(batch.records.is_empty());

    let batch = decode(b"<records session=\"s\">\n\n</records>").unwrap();
    assert!(batch.records.is_empty());

    // No correlatorIndex: optional.
    let batch =
        decode(doc(&format!("<record {R}><callLeg id=\"L\"/></record>")).as_bytes()).unwrap();
    let rec = one_record(&batch);
    assert_eq!(rec.correlator_index, None);
    assert_eq!(
        rec.body,
        CmsRecordBody::CallLegUpdate(Box::new(CallLegUpdate {
            id: "L".into(),
            ..Default::default()
        }))
    );
}

#[test]
fn escapes_comments_and_processing_instructions() {
    let input = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<!-- before -->\r\n\
        <records session=\"a&amp;b\" callBridge=\"&#x63;b\"><?pi x?>\
        <record type=\"callStart\" time=\"2024-01-01T00:00:00Z\" recordIndex=\"1\">\
        <!-- c --><call id=\"C\"><name>  A &lt;&gt; &quot;B&quot; &apos;C&apos; &#233;\r\n </name>\
        <cdrTag><![CDATA[x&y]]></cdrTag></call></record></records>\r\n<!-- after -->\r\n";
    let batch = decode(input.as_bytes()).unwrap();
    assert_eq!(batch.session, "a&b");
    assert_eq!(batch.call_bridge.as_deref(), Some("cb"));
    assert_eq!(
        one_record(&batch).body,
        CmsRecordBody::CallStart(CallStart {
            id: "C".into(),
            name: s("A <> \"B\" 'C' \u{e9}"),
            cdr_tag: s("x&y"),
            ..Default::default()
        })
    );
}

#[test]
fn spelling_variants_are_accepted() {
    let input = doc(&format!(
        "<record {R} numPrecedingRecordsMissing=\"2\"><callLeg id=\"L\"><groupID>G</groupID></callLeg></record>"
    ));
    let batch = decode(input.as_bytes()).unwrap();
    let rec = one_record(&batch);
    assert_eq!(rec.preceding_records_missing, 2);
    match &rec.body {
        CmsRecordBody::CallLegUpdate(u) => assert_eq!(u.group_id.as_deref(), Some("G")),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn known_type_with_other_body_element_is_kept_as_unknown() {
    let input = doc(&format!(
        "<record {R}><call id=\"C\"><state>x</state></call></record>"
    ));
    let batch = decode(input.as_bytes()).unwrap();
    let rec = one_record(&batch);
    assert_eq!(rec.record_type, "callLegUpdate");
    assert_eq!(
        rec.body,
        CmsRecordBody::Unknown(UnknownRecord {
            element: s("call"),
            id: s("C"),
            extra: extra(&[("state", "x")]),
        })
    );
}

#[test]
fn unknown_type_without_body_is_kept() {
    let input = doc(r#"<record type="future" time="2024-01-01T00:00:00Z" recordIndex="9"/>"#);
    let batch = decode(input.as_bytes()).unwrap();
    let rec = one_record(&batch);
    assert_eq!(rec.body, CmsRecordBody::Unknown(UnknownRecord::default()));
    assert_eq!(rec.subject_id(), None);
}

#[test]
fn ivr_element_forms() {
    for (ivr, expected, kept) in [
        ("<ivr/>", true, None),
        ("<ivr></ivr>", true, None),
        ("<ivr>true</ivr>", true, None),
        ("<ivr>false</ivr>", false, None),
        ("<ivr>maybe</ivr>", true, Some("maybe")),
    ] {
        let input = doc(&format!(
            "<record {R}><callLeg id=\"L\">{ivr}</callLeg></record>"
        ));
        let batch = decode(input.as_bytes()).unwrap();
        let CmsRecordBody::CallLegUpdate(u) = &one_record(&batch).body else {
            panic!("not a callLegUpdate");
        };
        assert_eq!(u.ivr, expected, "{ivr}");
        let kept: Extra = kept.map(|v| extra(&[("ivr", v)])).unwrap_or_default();
        assert_eq!(u.extra, kept, "{ivr}");
    }
}

#[test]
fn decode_record_takes_a_journaled_record() {
    let raw =
        format!("  <record {R}><callLeg id=\"L\"><state>connected</state></callLeg></record>\n");
    let rec = decode_record("s1", raw.as_bytes()).unwrap();
    assert_eq!(rec.raw, 2..raw.len() - 1);
    assert_eq!(rec.record_index, 1);
}

// ---------------------------------------------------------------------------
// Errors: each names the problem and where.

fn err(input: &str) -> DecodeError {
    match decode(input.as_bytes()) {
        Ok(batch) => panic!("decoded {batch:?} from {input:?}"),
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.starts_with(|c: char| c.is_lowercase() || c == '<'),
                "{message}"
            );
            assert!(!message.ends_with('.'), "{message}");
            e
        }
    }
}

fn xml_err(input: &str) -> (usize, Option<usize>, String) {
    match err(input) {
        DecodeError::Xml {
            offset,
            record,
            message,
        } => (offset, record, message),
        other => panic!("expected an xml error, got {other:?} for {input:?}"),
    }
}

#[test]
fn empty_body() {
    assert_eq!(decode(b""), Err(DecodeError::Empty));
    assert_eq!(decode(b" \r\n\t"), Err(DecodeError::Empty));
    assert_eq!(decode(b"\xEF\xBB\xBF\n"), Err(DecodeError::Empty));
    assert_eq!(
        DecodeError::Empty.to_string(),
        "empty body: no xml document"
    );
}

#[test]
fn malformed_xml() {
    // Garbage.
    let (offset, _, message) = xml_err("hello");
    assert_eq!(offset, 0);
    assert!(message.contains("text"), "{message}");
    // Only a declaration.
    let (_, _, message) = xml_err("<?xml version=\"1.0\"?>");
    assert!(message.contains("no <records>"), "{message}");
    // Unclosed tags.
    let (_, _, message) = xml_err(&format!(
        "<records session=\"s\"><record {R}><callLeg id=\"L\">"
    ));
    assert!(message.contains("<callLeg> is closed"), "{message}");
    let (_, _, message) = xml_err("<records session=\"s\">");
    assert!(message.contains("<records> is closed"), "{message}");
    // Truncated inside a tag.
    let (offset, _, message) = xml_err(&format!("<records session=\"s\"><record {R}><callLe"));
    assert!(message.contains("not closed"), "{message}");
    assert_eq!(offset, 21 + 8 + R.len() + 1);
    // Mismatched end tag, reported in its record at the `</`.
    let input = doc(&format!(
        "<record {R}><callLeg id=\"L\"><state>x</status></callLeg></record>"
    ));
    let (offset, record, message) = xml_err(&input);
    assert_eq!(record, Some(1));
    assert_eq!(&input[offset..offset + 9], "</status>");
    assert!(
        message.contains("mismatch") || message.contains("expected"),
        "{message}"
    );
    let e = err(&input).to_string();
    assert!(e.starts_with("malformed xml in record 1 at byte "), "{e}");
    // Stray end tag after the root.
    xml_err("<records session=\"s\"></records></records>");
    // Trailing garbage and a second root.
    let (offset, _, message) = xml_err("<records session=\"s\"></records>junk");
    assert_eq!(offset, 31);
    assert!(message.contains("after </records>"), "{message}");
    xml_err("<records session=\"s\"/><records session=\"s\"/>");
    // Invalid UTF-8 in text.
    let mut bytes = doc(&format!(
        "<record {R}><callLeg id=\"L\"><state>X</state></callLeg></record>"
    ))
    .into_bytes();
    let at = bytes.iter().position(|&b| b == b'X').unwrap();
    bytes[at] = 0xFF;
    match decode(&bytes) {
        Err(DecodeError::Xml { message, .. }) => assert_eq!(message, "invalid utf-8"),
        other => panic!("{other:?}"),
    }
    // Text where only elements belong.
    let (_, record, _) = xml_err(&doc(&format!(
        "<record {R}>oops<callLeg id=\"L\"/></record>"
    )));
    assert_eq!(record, Some(1));
    xml_err(&doc("oops"));
}

#[test]
fn entities_and_doctype_are_refused() {
    let (_, _, message) = xml_err(&doc(&format!(
        "<record {R}><callLeg id=\"L\"><state>&bogus;</state></callLeg></record>"
    )));
    assert_eq!(message, "unknown entity &bogus;");
    let (_, _, message) = xml_err("<records session=\"&bogus;\"/>");
    assert!(message.contains("bad attribute value"), "{message}");
    let (_, _, message) = xml_err(&doc(&format!(
        "<record {R}><callLeg id=\"L\"><state>&#xZZ;</state></callLeg></record>"
    )));
    assert!(message.contains("character reference"), "{message}");
    let (_, _, message) =
        xml_err("<!DOCTYPE records [<!ENTITY x \"y\">]><records session=\"s\"><record/></records>");
    assert!(message.contains("document type"), "{message}");
    // A lone ampersand.
    xml_err(&doc(&format!(
        "<record {R}><callLeg id=\"L\"><state>a & b</state></callLeg></record>"
    )));
}

#[test]
fn wrong_root() {
    let e = err("<?xml version=\"1.0\"?>\n<cdrs session=\"s\"/>");
    assert_eq!(
        e,
        DecodeError::WrongRoot {
            expected: "records",
            found: "cdrs".into(),
            offset: 22
        }
    );
    assert_eq!(
        e.to_string(),
        "root element is <cdrs> at byte 22, expected <records>"
    );
    assert!(matches!(
        decode_record("s", b"<records session=\"s\"/>"),
        Err(DecodeError::WrongRoot {
            expected: "record",
            ..
        })
    ));
}

#[test]
fn records_without_session() {
    assert_eq!(err("<records/>"), DecodeError::MissingSession { offset: 0 });
    assert_eq!(
        err(" <records callBridge=\"b\" session=\"\"></records>"),
        DecodeError::MissingSession { offset: 1 }
    );
    assert_eq!(
        DecodeError::MissingSession { offset: 1 }.to_string(),
        "<records> at byte 1 has no session attribute"
    );
}

#[test]
fn record_attribute_errors() {
    let good = "<record type=\"callEnd\" time=\"2024-01-01T00:00:00Z\" recordIndex=\"1\"><call id=\"C\"/></record>";
    let second = |attrs: &str| doc(&format!("{good}<record {attrs}><call id=\"C\"/></record>"));
    let offset = 21 + good.len();

    let e = err(&second("time=\"2024-01-01T00:00:00Z\" recordIndex=\"2\""));
    assert_eq!(
        e,
        DecodeError::MissingAttribute {
            record: 2,
            attribute: "type",
            offset
        }
    );
    assert_eq!(
        e.to_string(),
        format!("record 2 at byte {offset} has no type attribute")
    );

    let e = err(&second("type=\"callEnd\" recordIndex=\"2\""));
    assert!(matches!(
        e,
        DecodeError::MissingAttribute {
            record: 2,
            attribute: "time",
            ..
        }
    ));

    let e = err(&second(
        "type=\"callEnd\" time=\"yesterday\" recordIndex=\"2\"",
    ));
    assert_eq!(
        e,
        DecodeError::InvalidAttribute {
            record: 2,
            attribute: "time",
            value: "yesterday".into(),
            offset
        }
    );
    assert_eq!(
        e.to_string(),
        format!("record 2 at byte {offset} has an invalid time attribute \"yesterday\"")
    );

    let e = err(&second("type=\"callEnd\" time=\"2024-01-01T00:00:00Z\""));
    assert!(matches!(
        e,
        DecodeError::MissingAttribute {
            record: 2,
            attribute: "recordIndex",
            ..
        }
    ));
    for bad in ["abc", "-1", "", "1.5", "99999999999999999999999"] {
        let e = err(&second(&format!(
            "type=\"callEnd\" time=\"2024-01-01T00:00:00Z\" recordIndex=\"{bad}\""
        )));
        assert!(
            matches!(
                e,
                DecodeError::InvalidAttribute {
                    record: 2,
                    attribute: "recordIndex",
                    ..
                }
            ),
            "{e:?}"
        );
    }
    let e = err(&second(
        "type=\"callEnd\" time=\"2024-01-01T00:00:00Z\" recordIndex=\"2\" correlatorIndex=\"x\"",
    ));
    assert!(matches!(
        e,
        DecodeError::InvalidAttribute {
            attribute: "correlatorIndex",
            ..
        }
    ));
    let e = err(&second(
        "type=\"callEnd\" time=\"2024-01-01T00:00:00Z\" recordIndex=\"2\" numPreceedingRecordsMissing=\"many\"",
    ));
    assert!(matches!(
        e,
        DecodeError::InvalidAttribute {
            attribute: "numPreceedingRecordsMissing",
            ..
        }
    ));
    let e = err(&second(
        "type=\"callEnd\" time=\"2024-01-01T00:00:00Z\" recordIndex=\"2\" recordIndex=\"3\"",
    ));
    assert!(matches!(
        e,
        DecodeError::InvalidAttribute {
            attribute: "recordIndex",
            ..
        }
    ));
}

#[test]
fn record_without_body() {
    let input = doc(&format!("<record {R}>\n</record>"));
    let e = err(&input);
    assert_eq!(
        e,
        DecodeError::MissingBody {
            record: 1,
            record_type: "callLegUpdate".into(),
            offset: 21
        }
    );
    assert_eq!(
        e.to_string(),
        "record 1 (callLegUpdate) at byte 21 has no body element"
    );
    assert!(matches!(
        err(&doc(&format!("<record {R}/>"))),
        DecodeError::MissingBody { .. }
    ));
}

#[test]
fn body_without_id() {
    let first = "<record type=\"callEnd\" time=\"2024-01-01T00:00:00Z\" recordIndex=\"1\"><call id=\"C\"/></record>";
    let input = doc(&format!(
        "{first}<record type=\"callLegEnd\" time=\"2024-01-01T00:00:00Z\" recordIndex=\"2\"><callLeg><reason>x</reason></callLeg></record>"
    ));
    let e = err(&input);
    let DecodeError::MissingId { offset, .. } = &e else {
        panic!("{e:?}")
    };
    assert!(input[*offset..].starts_with("<callLeg>"));
    assert_eq!(
        e.to_string(),
        format!("record 2 (callLegEnd) has a <callLeg> without an id attribute at byte {offset}")
    );
    // An empty id is no id.
    assert!(matches!(
        err(&doc(&format!("<record {R}><callLeg id=\"\"/></record>"))),
        DecodeError::MissingId { .. }
    ));
}

#[test]
fn unexpected_elements_in_the_envelope() {
    let e = err(&doc("<recrod/>"));
    assert_eq!(
        e,
        DecodeError::UnexpectedElement {
            element: "recrod".into(),
            parent: "records",
            record: None,
            offset: 21
        }
    );
    assert_eq!(e.to_string(), "unexpected <recrod> in <records> at byte 21");
    let e = err(&doc(&format!(
        "<record {R}><callLeg id=\"L\"/><callLeg id=\"M\"/></record>"
    )));
    assert!(matches!(
        e,
        DecodeError::UnexpectedElement {
            parent: "record",
            record: Some(1),
            ..
        }
    ));
    assert!(e.to_string().contains("in record 1"), "{e}");
}

#[test]
fn nesting_is_limited() {
    let deep = |n: usize| {
        let open: String = (0..n).map(|_| "<x>").collect();
        let close: String = (0..n).map(|_| "</x>").collect();
        doc(&format!(
            "<record {R}><callLeg id=\"L\">{open}v{close}</callLeg></record>"
        ))
    };
    // records, record, callLeg + 29 = 32 levels: accepted.
    let batch = decode(deep(29).as_bytes()).unwrap();
    let CmsRecordBody::CallLegUpdate(u) = &one_record(&batch).body else {
        panic!()
    };
    assert_eq!(u.extra.len(), 1);
    assert_eq!(u.extra[0].0.matches('/').count(), 28);
    // One more is refused, also as an empty element.
    let e = err(&deep(30));
    assert!(matches!(e, DecodeError::TooDeep { limit: 32, .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("elements nested deeper than 32 levels at byte ")
    );
    let empty = doc(&format!(
        "<record {R}><callLeg id=\"L\">{}<x/>{}</callLeg></record>",
        "<x>".repeat(29),
        "</x>".repeat(29)
    ));
    assert!(matches!(err(&empty), DecodeError::TooDeep { .. }));
    // Hostile depth does not overflow the stack.
    let hostile = format!(
        "<records session=\"s\"><record {R}><callLeg id=\"L\">{}",
        "<a>".repeat(100_000)
    );
    assert!(matches!(err(&hostile), DecodeError::TooDeep { .. }));
}

#[test]
fn decode_record_errors() {
    assert_eq!(decode_record("s", b""), Err(DecodeError::Empty));
    let raw = format!("<record {R}><callLeg id=\"L\"/></record>");
    assert!(decode_record("s", raw.as_bytes()).is_ok());
    let trailing = format!("{raw}<record {R}><callLeg id=\"L\"/></record>");
    match decode_record("s", trailing.as_bytes()) {
        Err(DecodeError::Xml {
            message, offset, ..
        }) => {
            assert!(message.contains("after </record>"), "{message}");
            assert_eq!(offset, raw.len());
        }
        other => panic!("{other:?}"),
    }
    for cut in 0..raw.len() {
        assert!(
            decode_record("s", &raw.as_bytes()[..cut]).is_err(),
            "prefix {cut}"
        );
    }
}

// ---------------------------------------------------------------------------
// Never panics.

#[test]
fn every_truncation_of_a_batch_is_an_error() {
    let input = fixture!("seed-000-post6.xml");
    let end = input.iter().rposition(|&b| b == b'>').unwrap() + 1;
    for cut in 0..end {
        assert!(
            decode(&input[..cut]).is_err(),
            "prefix of {cut} bytes decoded"
        );
    }
    for cut in end..=input.len() {
        assert!(decode(&input[..cut]).is_ok(), "prefix of {cut} bytes");
    }
}

#[test]
fn every_truncation_of_every_fixture_is_an_error() {
    let inputs = [
        fixture!("seed-000-post2.xml"),
        fixture!("hand-leg-end-all-fields.xml"),
        fixture!("hand-unknown-and-extra.xml"),
        fixture!("hand-recording-streaming.xml"),
    ];
    for input in &inputs {
        let end = input.iter().rposition(|&b| b == b'>').unwrap() + 1;
        for cut in 0..end {
            assert!(decode(&input[..cut]).is_err());
        }
    }
}

/// An edit of a byte string: replace, insert or remove at a position.
#[derive(Debug, Clone)]
enum Edit {
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    // Bytes that matter to XML are tried more often than others.
    let byte = prop_oneof![
        any::<u8>(),
        prop::sample::select(b"<>/&;\"'=!?[]- \n#x".to_vec()),
    ];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Edit::Set(i, b)),
        (any::<usize>(), byte).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Remove),
    ]
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let len = bytes.len().max(1);
        match *e {
            Edit::Set(i, b) if !bytes.is_empty() => bytes[i % len] = b,
            Edit::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
            Edit::Remove(i) if !bytes.is_empty() => {
                bytes.remove(i % len);
            }
            _ => {}
        }
    }
    bytes
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&bytes);
        let _ = decode_record("s", &bytes);
    }

    #[test]
    fn never_panics_on_xml_like_text(
        text in "[<>/a-z =\"'&;#!?\\[\\]-]{0,300}",
    ) {
        let _ = decode(text.as_bytes());
        let _ = decode(format!("<records session=\"s\">{text}").as_bytes());
        let _ = decode_record("s", text.as_bytes());
    }

    #[test]
    fn never_panics_on_mutated_fixtures(
        which in 0usize..3,
        edits in prop::collection::vec(edit(), 1..8),
    ) {
        let base = match which {
            0 => fixture!("seed-000-post6.xml"),
            1 => fixture!("hand-unknown-and-extra.xml"),
            _ => fixture!("hand-call-all-fields.xml"),
        };
        let bytes = apply(base, &edits);
        if let Ok(batch) = decode(&bytes) {
            // Whatever decodes keeps raw ranges that decode again.
            for rec in &batch.records {
                let raw = &bytes[rec.raw.clone()];
                prop_assert!(raw.starts_with(b"<record"));
                let again = decode_record(&batch.session, raw);
                prop_assert!(again.is_ok(), "{:?}", again);
            }
        }
    }
}
