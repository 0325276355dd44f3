//! Gateway calls from RADIUS accounting: the answer and originate legs of
//! one h323 conference id are one call; dispositions from the Q.850 cause.

use cdrhub_correlate::radius::{RadiusCallGroup, RadiusEvent, event_keys};
use cdrhub_model::{Direction, Disposition, Timestamp};
use cdrhub_protocols::radius::{Accounting, CiscoVoice, status_type};

const T0: i64 = 1_795_000_000_000;

/// An accounting record of one leg of conference `conf`.
fn record(
    status: u32,
    session: &str,
    origin: &str,
    call_type: &str,
    conf: &str,
    cause: Option<u8>,
    session_time: Option<u32>,
) -> Accounting {
    Accounting {
        status_type: Some(status),
        session_id: Some(session.into()),
        calling_station_id: Some("4085551234".into()),
        called_station_id: Some("2001".into()),
        session_time,
        cisco: CiscoVoice {
            conf_id: Some(conf.into()),
            call_origin: Some(origin.into()),
            call_type: Some(call_type.into()),
            q850_cause: cause,
            disconnect_cause: cause.map(|c| format!("{c:x}")),
            ..CiscoVoice::default()
        },
        ..Accounting::default()
    }
}

fn call_of(records: Vec<(i64, Accounting)>) -> RadiusCallGroup {
    let mut group = RadiusCallGroup {
        sender: "10.0.0.1".into(),
        ..RadiusCallGroup::default()
    };
    let mut keys = Vec::new();
    for (i, (second, accounting)) in records.into_iter().enumerate() {
        let event = RadiusEvent {
            received_at: Timestamp(T0 + second * 1000),
            accounting,
        };
        keys.extend(event_keys(&event, "10.0.0.1"));
        group.apply(&event, i as i64 + 1);
    }
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), 1, "one conference id, one key");
    group
}

#[test]
fn the_answer_and_originate_legs_of_a_conference_are_one_answered_call() {
    let conf = "931C146B 0F4411D6 AB5591F0 CBF3D765";
    let g = call_of(vec![
        (
            0,
            record(
                status_type::START,
                "1A",
                "answer",
                "Telephony",
                conf,
                None,
                None,
            ),
        ),
        (
            1,
            record(
                status_type::START,
                "1B",
                "originate",
                "VoIP",
                conf,
                None,
                None,
            ),
        ),
        (
            31,
            record(
                status_type::STOP,
                "1B",
                "originate",
                "VoIP",
                conf,
                Some(0x10),
                Some(25),
            ),
        ),
        (
            31,
            record(
                status_type::STOP,
                "1A",
                "answer",
                "Telephony",
                conf,
                Some(0x10),
                Some(26),
            ),
        ),
    ]);
    let (call, legs) = g.summarize("c", "10.0.0.1");
    assert_eq!(legs.len(), 2);
    assert_eq!(
        call.direction,
        Some(Direction::Out),
        "answered on the PSTN side: a call out, as seed 001 names it"
    );
    assert_eq!(call.kind, "gateway");
    assert_eq!(call.disposition, Some(Disposition::Answered));
    assert_eq!(
        call.answered_at,
        Some(Timestamp(T0 + 5_000)),
        "26 s before the stop"
    );
    assert_eq!(call.ended_at, Some(Timestamp(T0 + 31_000)));
    assert_eq!(call.cause.as_deref(), Some("Q.850 16"));
    assert!(g.is_finished());
}

#[test]
fn unanswered_calls_take_their_disposition_from_the_q850_cause() {
    for (cause, disposition) in [
        (17, Disposition::Busy),
        (19, Disposition::NoAnswer),
        (21, Disposition::Rejected),
        (34, Disposition::Failed),
    ] {
        let g = call_of(vec![
            (
                0,
                record(status_type::START, "2A", "answer", "VoIP", "C1", None, None),
            ),
            (
                9,
                record(
                    status_type::STOP,
                    "2A",
                    "answer",
                    "VoIP",
                    "C1",
                    Some(cause),
                    Some(0),
                ),
            ),
        ]);
        let (call, _) = g.summarize("c", "10.0.0.1");
        assert_eq!(call.disposition, Some(disposition), "cause {cause}");
        assert_eq!(call.direction, Some(Direction::In), "answered from VoIP");
        assert_eq!(call.answered_at, None);
    }
}

#[test]
fn an_interim_update_keeps_the_call_in_progress() {
    let g = call_of(vec![
        (
            0,
            record(
                status_type::START,
                "3A",
                "answer",
                "Telephony",
                "C3",
                None,
                None,
            ),
        ),
        (
            60,
            record(
                status_type::INTERIM_UPDATE,
                "3A",
                "answer",
                "Telephony",
                "C3",
                None,
                Some(55),
            ),
        ),
    ]);
    let (call, legs) = g.summarize("c", "10.0.0.1");
    assert_eq!(call.ended_at, None);
    assert!(!g.is_finished());
    assert_eq!(
        legs[0].details["interim_at"],
        serde_json::json!(Timestamp(T0 + 60_000))
    );
}
