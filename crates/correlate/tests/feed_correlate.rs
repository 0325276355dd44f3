//! Gateway-feed calls from the seed's own events (seed 001, "real-time
//! events" and "CDR Report", as docs/gateway-feed.md writes them).

use cdrhub_correlate::feed::{FeedCallGroup, FeedEvent, Notation, event_keys};
use cdrhub_model::{Direction, Disposition, Timestamp};
use cdrhub_protocols::feed::{FeedBody, parse_line};

const GW: &str = "8200_000C2A020082";
/// The server's clock: 2004-01-15 02:00:00 UTC.
const T0: i64 = 1_074_132_000_000;

/// The call of these lines, each received `gap_ms` after the one before
/// (and the same seconds apart as the gateway's clock says).
fn call_of(lines: &[&str]) -> FeedCallGroup {
    let mut group = FeedCallGroup {
        sender: GW.into(),
        ..FeedCallGroup::default()
    };
    let mut first_at = None;
    for line in lines {
        let message = parse_line(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        let FeedBody::Call(event) = message.body else {
            panic!("not a call event: {line}")
        };
        let at = match &event.at {
            cdrhub_protocols::feed::GatewayClock::Read(t) => t.0,
            other => panic!("{other:?}"),
        };
        let first = *first_at.get_or_insert(at);
        let feed = FeedEvent {
            // Half a second of network delay on top of the gateway's times.
            received_at: Timestamp(T0 + (at - first) + 500),
            login: "L1".into(),
            seq: message.seq,
            event,
        };
        assert_eq!(event_keys(&feed, GW), group_keys_or(&group, &feed));
        group.apply(&feed, i64::from(feed.seq));
    }
    group
}

fn group_keys_or(group: &FeedCallGroup, event: &FeedEvent) -> Vec<i64> {
    if group.steps.is_empty() {
        event_keys(event, GW)
    } else {
        group.keys()
    }
}

#[test]
fn the_seeds_outgoing_call_with_dtmf_is_a_call_out_of_133_seconds() {
    let g = call_of(&[
        "GWFEED/1 HOOK_OFF seq=2 gw=8200 mac=000C2A020082 ref=1 port=1 at=2000-01-01T08:13:11",
        "GWFEED/1 DIAL seq=3 gw=8200 mac=000C2A020082 ref=1 port=1 at=2000-01-01T08:13:13 digits=2252",
        "GWFEED/1 RING_BACK seq=4 gw=8200 mac=000C2A020082 ref=1 port=1 at=2000-01-01T08:13:13",
        "GWFEED/1 TALK seq=5 gw=8200 mac=000C2A020082 ref=1 port=1 at=2000-01-01T08:13:14 codec=\"C(18) M(17)\"",
        "GWFEED/1 DIAL seq=6 gw=8200 mac=000C2A020082 ref=1 port=1 at=2000-01-01T08:13:16 digits=3",
        "GWFEED/1 DIAL seq=7 gw=8200 mac=000C2A020082 ref=1 port=1 at=2000-01-01T08:13:16 digits=0",
        "GWFEED/1 DIAL seq=8 gw=8200 mac=000C2A020082 ref=1 port=1 at=2000-01-01T08:13:17 digits=1",
        "GWFEED/1 HOOK_ON seq=9 gw=8200 mac=000C2A020082 ref=1 port=1 at=2000-01-01T08:15:30",
    ]);
    assert!(g.is_finished());
    let row = g.report_row();
    assert_eq!(row.notation, Notation::CallOut);
    assert_eq!(row.port, Some(1));
    assert_eq!(row.dialed.as_deref(), Some("2252, 3, 0, 1"));
    assert_eq!(row.talk_s, Some(136), "08:13:14 to 08:15:30");
    assert_eq!(row.codec.as_deref(), Some("C(18) M(17)"));
    assert!(!row.pstn);
    assert_eq!(
        row.begin,
        Timestamp(T0 + 500),
        "the server's clock, not 2000"
    );
    let (call, legs) = g.summarize("c1", GW);
    assert_eq!(call.source, "feed");
    assert_eq!(call.direction, Some(Direction::Out));
    assert_eq!(call.disposition, Some(Disposition::Answered));
    assert_eq!(call.dialed.as_deref(), Some("2252"));
    assert_eq!(call.talk_s, Some(136));
    assert_eq!(legs.len(), 1);
    assert_eq!(g.details()["notation"], "Call out");
}

#[test]
fn the_seeds_pstn_call_on_port_4_goes_out_to_voip_with_both_talk_times() {
    let g = call_of(&[
        "GWFEED/1 PSTN_CALL_IN seq=10 gw=8200 mac=000C2A020082 ref=2 port=4 at=2000-01-01T08:47:05 cid=103",
        "GWFEED/1 PSTN_HOOK_OFF seq=11 gw=8200 mac=000C2A020082 ref=2 port=4 at=2000-01-01T08:47:05",
        "GWFEED/1 PSTN_CONNECTED seq=12 gw=8200 mac=000C2A020082 ref=2 port=4 at=2000-01-01T08:47:05",
        "GWFEED/1 DIAL seq=13 gw=8200 mac=000C2A020082 ref=2 port=4 at=2000-01-01T08:47:05 digits=2252",
        "GWFEED/1 RING_BACK seq=14 gw=8200 mac=000C2A020082 ref=2 port=4 at=2000-01-01T08:47:09",
        "GWFEED/1 TALK seq=15 gw=8200 mac=000C2A020082 ref=2 port=4 at=2000-01-01T08:47:09 codec=\"C(18) M(17)\"",
        "GWFEED/1 DIAL seq=16 gw=8200 mac=000C2A020082 ref=2 port=4 at=2000-01-01T08:47:11 digits=8",
        "GWFEED/1 REMOTE_HOOK_ON seq=22 gw=8200 mac=000C2A020082 ref=2 port=4 at=2000-01-01T08:48:44",
        "GWFEED/1 PSTN_HOOK_ON seq=23 gw=8200 mac=000C2A020082 ref=2 port=4 at=2000-01-01T08:48:44",
        "GWFEED/1 HOOK_ON seq=24 gw=8200 mac=000C2A020082 ref=2 port=4 at=2000-01-01T08:48:44",
    ]);
    let row = g.report_row();
    assert_eq!(row.notation, Notation::CallOut);
    assert!(row.pstn, "Only PSTN");
    assert_eq!(row.pstn_caller_id.as_deref(), Some("103"));
    assert_eq!(row.talk_s, Some(95), "TALK to REMOTE_HOOK_ON");
    assert_eq!(row.pstn_talk_s, Some(99), "PSTN_CONNECTED to PSTN_HOOK_ON");
    let (call, legs) = g.summarize("c2", GW);
    assert_eq!(call.caller.as_deref(), Some("103"));
    assert_eq!(legs.len(), 2, "the port and the PSTN line");
    assert_eq!(legs[0].remote_teardown, Some(true));
    assert_eq!(legs[1].direction.as_deref(), Some("incoming"));
}

#[test]
fn the_reports_other_shapes_take_their_notations() {
    let call_in = call_of(&[
        "GWFEED/1 CALL_IN seq=30 gw=8200 mac=000C2A020082 ref=98 port=1 at=2000-01-01T11:34:01 cid=8378701",
        "GWFEED/1 HOOK_OFF seq=31 gw=8200 mac=000C2A020082 ref=98 port=1 at=2000-01-01T11:34:03",
        "GWFEED/1 TALK seq=32 gw=8200 mac=000C2A020082 ref=98 port=1 at=2000-01-01T11:34:03 codec=\"C(18) M(17)\"",
        "GWFEED/1 HOOK_ON seq=33 gw=8200 mac=000C2A020082 ref=98 port=1 at=2000-01-01T11:35:08",
    ]);
    assert_eq!(call_in.notation(), Notation::CallIn);
    assert_eq!(call_in.report_row().caller_id.as_deref(), Some("8378701"));
    assert_eq!(call_in.report_row().talk_s, Some(65));
    assert_eq!(call_in.summarize("c", GW).0.direction, Some(Direction::In));

    let hook = call_of(&[
        "GWFEED/1 HOOK_OFF seq=50 gw=8200 mac=000C2A020082 ref=89 port=2 at=2000-01-01T09:13:55",
        "GWFEED/1 HOOK_ON seq=51 gw=8200 mac=000C2A020082 ref=89 port=2 at=2000-01-01T09:13:55",
    ]);
    assert_eq!(hook.notation(), Notation::HookOnOff);
    assert_eq!(
        hook.summarize("c", GW).0.disposition,
        Some(Disposition::Cancelled)
    );

    let reject = call_of(&[
        "GWFEED/1 CALL_IN_REJECT seq=60 gw=8200 mac=000C2A020082 ref=109 at=2000-01-01T12:52:18 cid=1126701 reason=\"no free port\"",
    ]);
    assert!(reject.is_finished(), "a refused call has no other event");
    let row = reject.report_row();
    assert_eq!(row.notation, Notation::CallInReject);
    assert_eq!((row.port, row.talk_s), (None, None));
    assert_eq!(row.caller_id.as_deref(), Some("1126701"));
    assert_eq!(
        reject.summarize("c", GW).0.disposition,
        Some(Disposition::Rejected)
    );

    let failed = call_of(&[
        "GWFEED/1 HOOK_OFF seq=70 gw=8200 mac=000C2A020082 ref=113 port=2 at=2000-01-01T13:20:00",
        "GWFEED/1 DIAL seq=71 gw=8200 mac=000C2A020082 ref=113 port=2 at=2000-01-01T13:20:02 digits=8378#",
        "GWFEED/1 CALL_OUT_FAIL seq=72 gw=8200 mac=000C2A020082 ref=113 port=2 at=2000-01-01T13:20:03 reason=busy",
        "GWFEED/1 HOOK_ON seq=73 gw=8200 mac=000C2A020082 ref=113 port=2 at=2000-01-01T13:20:09",
    ]);
    assert_eq!(failed.notation(), Notation::CallOutFailed);
    assert_eq!(
        failed.summarize("c", GW).0.disposition,
        Some(Disposition::Busy)
    );

    let via_pstn = call_of(&[
        "GWFEED/1 HOOK_OFF seq=40 gw=8200 mac=000C2A020082 ref=88 port=3 pport=3 at=2000-01-01T09:07:49",
        "GWFEED/1 DIAL seq=41 gw=8200 mac=000C2A020082 ref=88 port=3 at=2000-01-01T09:07:50 digits=2",
        "GWFEED/1 PSTN_DIAL seq=42 gw=8200 mac=000C2A020082 ref=88 port=3 pport=3 at=2000-01-01T09:07:51 digits=26735152",
        "GWFEED/1 PSTN_CONNECTED seq=43 gw=8200 mac=000C2A020082 ref=88 port=3 pport=3 at=2000-01-01T09:07:53",
        "GWFEED/1 TALK seq=44 gw=8200 mac=000C2A020082 ref=88 port=3 at=2000-01-01T09:07:56 codec=G.729",
    ]);
    assert!(!via_pstn.is_finished(), "no HOOK_ON yet");
    let row = via_pstn.report_row();
    assert_eq!(row.notation, Notation::CallOut);
    assert!(row.pstn);
    assert_eq!(row.pstn_dial.as_deref(), Some("26735152"));
    assert_eq!((row.talk_s, row.end), (None, None));
    assert_eq!(
        via_pstn.summarize("c", GW).0.disposition,
        None,
        "in progress"
    );
}

#[test]
fn events_out_of_order_or_twice_make_the_same_call() {
    let lines = [
        "GWFEED/1 HOOK_OFF seq=2 gw=8200 mac=000C2A020082 ref=1 port=1 at=2000-01-01T08:13:11",
        "GWFEED/1 DIAL seq=3 gw=8200 mac=000C2A020082 ref=1 port=1 at=2000-01-01T08:13:13 digits=2252",
        "GWFEED/1 TALK seq=5 gw=8200 mac=000C2A020082 ref=1 port=1 at=2000-01-01T08:13:14",
        "GWFEED/1 HOOK_ON seq=9 gw=8200 mac=000C2A020082 ref=1 port=1 at=2000-01-01T08:15:30",
    ];
    let ordered = call_of(&lines);
    let mut split = call_of(&lines[2..]);
    split.absorb(call_of(&lines[..2]));
    assert_eq!(split.report_row().dialed, ordered.report_row().dialed);
    assert_eq!(split.notation(), Notation::CallOut);
    let before = split.steps.len();
    let again = split.clone();
    split.absorb(again);
    assert_eq!(split.steps.len(), before, "the same records once");
}
