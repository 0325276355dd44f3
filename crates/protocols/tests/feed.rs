//! The gateway event feed (docs/gateway-feed.md): every example line of the
//! protocol page, every message type written and read back, the seed's
//! login line read field by field, the errors of bad lines, UDP datagrams,
//! and property tests (parse_line never panics, round trips hold).

use cdrhub_model::Timestamp;
use cdrhub_protocols::feed::*;
use proptest::collection::vec;
use proptest::prelude::*;
use std::net::{IpAddr, SocketAddr};

const PAGE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../docs/gateway-feed.md"
));

/// The lines of every fenced block of the page whose info string is `tag`.
fn fenced_lines(tag: &str) -> Vec<&'static str> {
    let mut lines = Vec::new();
    let mut inside = false;
    for line in PAGE.lines() {
        if let Some(info) = line.strip_prefix("```") {
            inside = !inside && info.trim() == tag;
        } else if inside && !line.trim().is_empty() {
            lines.push(line);
        }
    }
    lines
}

fn gateway() -> GatewayRef {
    GatewayRef {
        id: "8200".to_owned(),
        mac: Mac([0x00, 0x0C, 0x2A, 0x02, 0x00, 0x82]),
    }
}

fn wall(s: &str) -> GatewayClock {
    GatewayClock::Read(Timestamp::parse_rfc3339(&format!("{s}Z")).unwrap())
}

fn event(seq: u32, port: Option<u16>, kind: CallEventKind) -> FeedMessage {
    FeedMessage {
        seq,
        gateway: gateway(),
        body: FeedBody::Call(CallEvent {
            call_ref: 86,
            port,
            pstn_port: None,
            at: wall("2000-01-01T08:13:11"),
            kind,
        }),
    }
}

/// One message of every type, with and without its optional fields.
fn every_message_type() -> Vec<FeedMessage> {
    let mut messages = vec![
        FeedMessage {
            seq: 1,
            gateway: gateway(),
            body: FeedBody::Login(Login {
                public_addr: Some("61.222.171.22:2348".parse().unwrap()),
                fxs_ports: 2,
                fxo_ports: 2,
                isdn_channels: 0,
                call_ref: 74,
                clock: wall("2000-01-02T08:17:38"),
            }),
        },
        FeedMessage {
            seq: 1,
            gateway: gateway(),
            body: FeedBody::Login(Login {
                public_addr: None,
                fxs_ports: 0,
                fxo_ports: 0,
                isdn_channels: 30,
                call_ref: u32::MAX,
                clock: GatewayClock::Unread("not set".to_owned()),
            }),
        },
        FeedMessage {
            seq: 812,
            gateway: gateway(),
            body: FeedBody::Logout { reason: None },
        },
        FeedMessage {
            seq: 9,
            gateway: gateway(),
            body: FeedBody::Logout {
                reason: Some("config \"change\"\n".to_owned()),
            },
        },
        FeedMessage {
            seq: 40,
            gateway: gateway(),
            body: FeedBody::KeepAlive { clock: None },
        },
        FeedMessage {
            seq: 41,
            gateway: gateway(),
            body: FeedBody::KeepAlive {
                clock: Some(GatewayClock::Read(Timestamp(946_800_000_123))),
            },
        },
    ];
    let kinds = [
        CallEventKind::HookOff,
        CallEventKind::Dial {
            digits: "2252".to_owned(),
        },
        CallEventKind::RingBack,
        CallEventKind::Talk {
            codec: Some(CodecInfo::Codes { c: 18, m: 17 }),
        },
        CallEventKind::Talk {
            codec: Some(CodecInfo::Other("G.711 µ-law".to_owned())),
        },
        CallEventKind::Talk { codec: None },
        CallEventKind::HookOn,
        CallEventKind::CallIn {
            caller_id: Some("8378701".to_owned()),
        },
        CallEventKind::CallIn { caller_id: None },
        CallEventKind::PstnCallIn {
            caller_id: Some("103".to_owned()),
        },
        CallEventKind::PstnHookOff,
        CallEventKind::PstnDial {
            digits: "0,".to_owned(),
        },
        CallEventKind::PstnConnected,
        CallEventKind::RemoteHookOn,
        CallEventKind::PstnHookOn,
        CallEventKind::CallInReject {
            caller_id: Some("1126701".to_owned()),
            reason: Some("no free port".to_owned()),
        },
        CallEventKind::CallOutFail {
            reason: Some("busy".to_owned()),
        },
        CallEventKind::CallOutFail { reason: None },
    ];
    messages.extend(kinds.into_iter().map(|kind| event(2, Some(4), kind)));
    messages.push(event(
        60,
        None,
        CallEventKind::CallInReject {
            caller_id: None,
            reason: None,
        },
    ));
    let mut with_pstn_port = event(
        42,
        Some(3),
        CallEventKind::PstnDial {
            digits: "26735152".to_owned(),
        },
    );
    if let FeedBody::Call(call) = &mut with_pstn_port.body {
        call.pstn_port = Some(3);
    }
    messages.push(with_pstn_port);
    messages
}

#[test]
fn every_message_type_round_trips() {
    for message in every_message_type() {
        let line = message.to_line();
        assert!(line.len() <= MAX_LINE_LEN, "{line}");
        assert_eq!(parse_line(&line), Ok(message), "{line}");
    }
}

#[test]
fn the_encoder_writes_values_bare_when_it_can_and_quoted_otherwise() {
    let lines: Vec<String> = every_message_type()
        .iter()
        .map(FeedMessage::to_line)
        .collect();
    assert_eq!(
        lines[0],
        "GWFEED/1 LOGIN seq=1 gw=8200 mac=000C2A020082 addr=61.222.171.22:2348 \
         fxs=2 fxo=2 isdn=0 callref=74 clock=2000-01-02T08:17:38"
    );
    assert_eq!(
        lines[3],
        r#"GWFEED/1 LOGOUT seq=9 gw=8200 mac=000C2A020082 reason="config \"change\"\n""#
    );
    assert_eq!(
        lines[5],
        "GWFEED/1 KEEPALIVE seq=41 gw=8200 mac=000C2A020082 clock=2000-01-02T08:00:00.123"
    );
    assert!(
        lines.contains(
            &"GWFEED/1 TALK seq=2 gw=8200 mac=000C2A020082 ref=86 port=4 \
          at=2000-01-01T08:13:11 codec=\"C(18) M(17)\""
                .to_owned()
        )
    );
    // The page's first LOGIN example is the encoder's own line.
    assert!(PAGE.contains(&lines[0]));
}

#[test]
fn every_feed_line_of_the_protocol_page_parses_and_round_trips() {
    let lines = fenced_lines("feed");
    assert!(lines.len() >= 40, "only {} feed lines found", lines.len());
    for line in lines {
        let message = parse_line(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(parse_line(&message.to_line()), Ok(message), "{line}");
    }
}

#[test]
fn every_reply_of_the_protocol_page_parses_and_round_trips() {
    let lines = fenced_lines("feed-reply");
    assert_eq!(lines.len(), 3);
    for line in lines {
        let reply = parse_reply(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(reply.to_line(), line);
    }
}

#[test]
fn every_bad_line_of_the_protocol_page_is_rejected() {
    let lines = fenced_lines("feed-bad");
    assert!(lines.len() >= 10);
    for line in lines {
        assert!(parse_line(line).is_err(), "{line} parsed");
    }
}

/// The page names every message type the parser reads, in its tables.
#[test]
fn the_protocol_page_documents_every_message_type() {
    for message in every_message_type() {
        let line = message.to_line();
        let type_word = line.split(' ').nth(1).unwrap();
        assert!(
            PAGE.contains(&format!("| `{type_word}` |"))
                || PAGE.contains(&format!("### {type_word}")),
            "{type_word} is not documented"
        );
    }
}

/// Seed 001, login log: `Gateway[8200] MAC[000C2A020082] From
/// [61.222.171.22:2348] FXS(2) FXO(2) ISDN(0) CallRef(74) Time[2000/01/02
/// 08:17:38] Login!`.
#[test]
fn the_seed_login_reads_field_by_field() {
    let message = parse_line(
        "GWFEED/1 LOGIN seq=1 gw=8200 mac=000c2a020082 addr=61.222.171.22:2348 \
         fxs=2 fxo=2 isdn=0 callref=74 clock=2000-01-02T08:17:38",
    )
    .unwrap();
    assert_eq!(message.seq, 1);
    assert_eq!(message.gateway.to_string(), "8200_000C2A020082");
    let FeedBody::Login(login) = message.body else {
        panic!("not a login: {:?}", message.body)
    };
    assert_eq!(
        login.public_addr,
        Some(SocketAddr::from(([61, 222, 171, 22], 2348)))
    );
    assert_eq!(
        (login.fxs_ports, login.fxo_ports, login.isdn_channels),
        (2, 2, 0)
    );
    assert_eq!(login.call_ref, 74);
    assert_eq!(login.clock.to_string(), "2000-01-02T08:17:38");
    assert_eq!(
        login.clock,
        GatewayClock::Read(Timestamp::parse_rfc3339("2000-01-02T08:17:38Z").unwrap())
    );
}

#[test]
fn a_clock_with_a_zone_is_read_and_one_that_is_no_time_is_kept_as_sent() {
    let keepalive = |clock: &str| {
        let line = format!("GWFEED/1 KEEPALIVE seq=4 gw=8200 mac=000C2A020082 clock={clock}");
        match parse_line(&line).unwrap().body {
            FeedBody::KeepAlive { clock } => clock.unwrap(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        keepalive("2000-01-02T16:17:38+08:00"),
        wall("2000-01-02T08:17:38")
    );
    assert_eq!(
        keepalive("2000-01-02T08:17:38Z"),
        wall("2000-01-02T08:17:38")
    );
    assert_eq!(
        keepalive("2000/01/02-08:17:38"),
        GatewayClock::Unread("2000/01/02-08:17:38".to_owned())
    );
    assert_eq!(
        keepalive(r#""2000/01/02 08:17:38""#),
        GatewayClock::Unread("2000/01/02 08:17:38".to_owned())
    );
}

/// Seed 001, real-time events: `TALK ... C(18) M(17)`.
#[test]
fn codec_information_of_the_seed_form_is_read_and_any_other_kept() {
    let talk = |codec: &str| {
        let line = format!(
            "GWFEED/1 TALK seq=5 gw=8200 mac=000C2A020082 ref=1 port=1 at=2000-01-01T08:13:14 codec={codec}"
        );
        match parse_line(&line).unwrap().body {
            FeedBody::Call(CallEvent {
                kind: CallEventKind::Talk { codec },
                ..
            }) => codec.unwrap(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(talk(r#""C(18) M(17)""#), CodecInfo::Codes { c: 18, m: 17 });
    assert_eq!(talk("G.729"), CodecInfo::Other("G.729".to_owned()));
    assert_eq!(
        talk(r#""C(18)  M(17)""#),
        CodecInfo::Other("C(18)  M(17)".to_owned())
    );
    assert_eq!(
        talk(r#""C(99999) M(1)""#),
        CodecInfo::Other("C(99999) M(1)".to_owned())
    );
    assert_eq!(
        talk(r#""C(+1) M(1)""#),
        CodecInfo::Other("C(+1) M(1)".to_owned())
    );
}

#[test]
fn fields_may_come_in_any_order_with_several_spaces_between() {
    let a = parse_line(
        "GWFEED/1 DIAL  at=2000-01-01T08:13:13 digits=2252 port=1 ref=1 mac=000C2A020082 gw=8200 seq=3  ",
    )
    .unwrap();
    let b = parse_line(
        "GWFEED/1 DIAL seq=3 gw=8200 mac=000C2A020082 ref=1 port=1 at=2000-01-01T08:13:13 digits=2252",
    )
    .unwrap();
    assert_eq!(a, b);
}

#[test]
fn only_a_rejected_call_may_have_no_port() {
    let reject =
        "GWFEED/1 CALL_IN_REJECT seq=60 gw=8200 mac=000C2A020082 ref=109 at=2000-01-01T12:52:18";
    assert!(parse_line(reject).is_ok());
    let fail =
        "GWFEED/1 CALL_OUT_FAIL seq=60 gw=8200 mac=000C2A020082 ref=109 at=2000-01-01T12:52:18";
    assert_eq!(
        parse_line(fail).unwrap_err().to_string(),
        "CALL_OUT_FAIL has no port field at column 10"
    );
}

/// Each bad line names its problem and the column where it is.
#[test]
fn bad_lines_give_one_sentence_naming_the_problem_and_column() {
    const GW: &str = "gw=8200 mac=000C2A020082";
    let cases = [
        (String::new(), "empty line at column 1"),
        ("   ".to_owned(), "empty line at column 1"),
        (
            "HOOK_OFF seq=1".to_owned(),
            "line does not start with the version word GWFEED/1 at column 1",
        ),
        (
            format!("GWFEED/2 KEEPALIVE seq=1 {GW}"),
            "unsupported protocol version \"GWFEED/2\", this server reads GWFEED/1 at column 1",
        ),
        (
            "GWFEED/1".to_owned(),
            "no message type after GWFEED/1 at column 9",
        ),
        (
            format!("GWFEED/1 HOOKOFF seq=2 {GW} ref=1 port=1 at=2000-01-01T08:13:11"),
            "unknown message type \"HOOKOFF\" at column 10",
        ),
        (
            format!("GWFEED/1 HOOK_OFF seq=2 {GW} port=1 at=2000-01-01T08:13:11"),
            "HOOK_OFF has no ref field at column 10",
        ),
        (
            "GWFEED/1 KEEPALIVE seq=2 gw=8200".to_owned(),
            "KEEPALIVE has no mac field at column 10",
        ),
        (
            "GWFEED/1 KEEPALIVE seq=2 gw=8200 mac=000C2A0200".to_owned(),
            "mac must be 12 hexadecimal digits, not \"000C2A0200\" at column 38",
        ),
        (
            format!("GWFEED/1 HOOK_OFF seq=2 {GW} ref=1 port=0 at=2000-01-01T08:13:11"),
            "port must be a port number from 1 to 65535, not \"0\" at column 61",
        ),
        (
            format!("GWFEED/1 HOOK_OFF seq=2 {GW} ref=1 port=1 at=2000-01-01T08:13:11 codec=G.729"),
            "HOOK_OFF takes no field codec at column 86",
        ),
        (
            format!("GWFEED/1 DIAL seq=3 {GW} ref=1 port=1 at=x digits=22x2"),
            "digits must be 1 to 64 of 0-9 * # + A B C D and ',', not \"22x2\" at column 71",
        ),
        (
            format!("GWFEED/1 TALK seq=5 {GW} ref=1 port=1 at=x codec=\"C(18) M(17)"),
            "the quoted value of codec has no closing quote at column 70",
        ),
        (
            format!("GWFEED/1 TALK seq=5 {GW} ref=1 port=1 at=x codec=\"C(18)\"M(17)"),
            "the quoted value of codec must be followed by a space at column 77",
        ),
        (
            format!("GWFEED/1 LOGOUT seq=9 {GW} reason=a\"b"),
            "the value of reason holds a quote or backslash; quote the value at column 56",
        ),
        (
            format!("GWFEED/1 LOGOUT seq=9 {GW} reason=\"a\\qb\""),
            "unknown escape \\q at column 57",
        ),
        (
            format!("GWFEED/1 LOGOUT seq=9 {GW} reason=\"a\\x41\""),
            "\\x41 is not a control character; \\x takes 00 to 1F or 7F at column 57",
        ),
        (
            format!("GWFEED/1 LOGOUT seq=9 {GW} reason="),
            "field reason is empty; leave it out at column 48",
        ),
        (
            format!("GWFEED/1 LOGOUT seq=9 {GW} reason=\"\""),
            "field reason is empty; leave it out at column 48",
        ),
        (
            format!("GWFEED/1 LOGOUT seq=-1 {GW}"),
            "seq must be a decimal number of at most 32 bits, not \"-1\" at column 21",
        ),
        (
            format!("GWFEED/1 LOGOUT seq=4294967296 {GW}"),
            "seq must be a decimal number of at most 32 bits, not \"4294967296\" at column 21",
        ),
        (
            "GWFEED/1 LOGOUT seq=1 gw=8200 gw=8201 mac=000C2A020082".to_owned(),
            "field gw appears twice at column 31",
        ),
        (
            "GWFEED/1 LOGOUT seq=1 gw=??? mac=000C2A020082".to_owned(),
            "gw must be 1 to 32 of A-Z a-z 0-9 . _ -, not \"???\" at column 26",
        ),
        (
            format!("GWFEED/1 LOGOUT seq=1 {GW} Reason=x"),
            "expected a field key=value with a lower-case key, found \"Reason=x\" at column 48",
        ),
        (
            format!("GWFEED/1 LOGOUT seq=1 {GW} reason=a\r"),
            "raw control character U+000D; inside a quoted value write it escaped at column 56",
        ),
        (
            format!("GWFEED/1 LOGOUT seq=1 {GW} reason=«é»\tx"),
            "raw control character U+0009; inside a quoted value write it escaped at column 58",
        ),
        (
            format!(
                "GWFEED/1 LOGIN seq=1 {GW} addr=10.10.1.111 fxs=2 fxo=2 isdn=0 callref=1 clock=x"
            ),
            "addr must be an address such as 61.222.171.22:2348 or [2001:db8::1]:2348, \
             not \"10.10.1.111\" at column 52",
        ),
        (
            format!("GWFEED/1 LOGOUT seq=1 {GW} reason={}", "x".repeat(1000)),
            "line is 1054 bytes, more than 1024 at column 1",
        ),
    ];
    for (line, expected) in cases {
        let error = parse_line(&line).unwrap_err();
        assert_eq!(error.to_string(), expected, "{line:?}");
    }
}

#[test]
fn replies_round_trip_and_bad_replies_are_errors() {
    for reply in [
        FeedReply::Ok { seq: 0 },
        FeedReply::Ok { seq: u32::MAX },
        FeedReply::Err {
            seq: Some(6),
            reason: "not logged in".to_owned(),
        },
        FeedReply::Err {
            seq: None,
            reason: "unknown message type \"HOOKOFF\" at column 10".to_owned(),
        },
    ] {
        assert_eq!(parse_reply(&reply.to_line()), Ok(reply));
    }
    assert_eq!(FeedReply::Ok { seq: 5 }.to_line(), "GWFEED/1 OK seq=5");
    assert_eq!(
        parse_reply("GWFEED/1 DONE seq=5").unwrap_err().to_string(),
        "unknown answer \"DONE\", expected OK or ERR at column 10"
    );
    assert_eq!(
        parse_reply("GWFEED/1 ERR seq=5").unwrap_err().to_string(),
        "ERR has no reason field at column 10"
    );
    assert!(parse_reply("GWFEED/1 OK seq=5 gw=8200").is_err());
}

#[test]
fn a_datagram_is_cut_into_its_lines_and_a_bad_line_does_not_hide_the_next() {
    let good = "GWFEED/1 KEEPALIVE seq=40 gw=8200 mac=000C2A020082";
    let mut datagram = Vec::new();
    datagram.extend_from_slice(format!("{good}\r\n\n").as_bytes());
    datagram.extend_from_slice(b"GWFEED/1 LOGOUT reason=\xff\xfe\n");
    datagram.extend_from_slice(&[b'x'; MAX_LINE_LEN + 1]);
    datagram.extend_from_slice(format!("\n{good}").as_bytes());
    let lines: Vec<_> = split_datagram(&datagram).collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0], Ok(good));
    assert_eq!(
        lines[1].as_ref().unwrap_err().to_string(),
        "line 3 of the datagram is not UTF-8 at column 24"
    );
    assert_eq!(
        lines[2].as_ref().unwrap_err().to_string(),
        "line 4 of the datagram is 1025 bytes, more than 1024 at column 1"
    );
    assert_eq!(lines[3], Ok(good));
    assert_eq!(split_datagram(b"").count(), 0);
    assert_eq!(split_datagram(b"\r\n\n").count(), 0);
}

/// A line exactly at the limit is read; the limit counts bytes, not
/// characters.
#[test]
fn a_line_of_exactly_the_limit_is_read() {
    let head = "GWFEED/1 LOGOUT seq=1 gw=8200 mac=000C2A020082 reason=";
    let line = format!("{head}{}", "é".repeat((MAX_LINE_LEN - head.len()) / 2));
    assert_eq!(line.len(), MAX_LINE_LEN);
    assert!(parse_line(&line).is_ok());
    assert!(parse_line(&format!("{line}x")).is_err());
    assert_eq!(
        split_datagram(line.as_bytes()).next(),
        Some(Ok(line.as_str()))
    );
}

fn any_text() -> impl Strategy<Value = String> {
    "(?s).{1,24}"
}

fn any_clock() -> impl Strategy<Value = GatewayClock> {
    prop_oneof![
        // 1970 to 2100, with milliseconds.
        (0i64..4_102_444_800_000).prop_map(|ms| GatewayClock::Read(Timestamp(ms))),
        (0i64..4_102_444_800).prop_map(|s| GatewayClock::Read(Timestamp(s * 1000))),
        any_text()
            .prop_filter("a readable time", |t| {
                Timestamp::parse_rfc3339(t).is_err()
                    && Timestamp::parse_rfc3339(&format!("{t}Z")).is_err()
            })
            .prop_map(GatewayClock::Unread),
    ]
}

fn any_digits() -> impl Strategy<Value = String> {
    "[0-9*#+ABCD,]{1,64}"
}

fn any_port() -> impl Strategy<Value = u16> {
    1..=u16::MAX
}

fn any_kind() -> impl Strategy<Value = CallEventKind> {
    let text = || proptest::option::of(any_text());
    prop_oneof![
        Just(CallEventKind::HookOff),
        any_digits().prop_map(|digits| CallEventKind::Dial { digits }),
        Just(CallEventKind::RingBack),
        proptest::option::of(prop_oneof![
            (any::<u16>(), any::<u16>()).prop_map(|(c, m)| CodecInfo::Codes { c, m }),
            any_text()
                .prop_filter("the C(n) M(n) form", |t| !t.starts_with("C("))
                .prop_map(CodecInfo::Other),
        ])
        .prop_map(|codec| CallEventKind::Talk { codec }),
        Just(CallEventKind::HookOn),
        text().prop_map(|caller_id| CallEventKind::CallIn { caller_id }),
        text().prop_map(|caller_id| CallEventKind::PstnCallIn { caller_id }),
        Just(CallEventKind::PstnHookOff),
        any_digits().prop_map(|digits| CallEventKind::PstnDial { digits }),
        Just(CallEventKind::PstnConnected),
        Just(CallEventKind::RemoteHookOn),
        Just(CallEventKind::PstnHookOn),
        (text(), text())
            .prop_map(|(caller_id, reason)| CallEventKind::CallInReject { caller_id, reason }),
        text().prop_map(|reason| CallEventKind::CallOutFail { reason }),
    ]
}

fn any_body() -> impl Strategy<Value = FeedBody> {
    prop_oneof![
        (
            proptest::option::of((any::<IpAddr>(), any::<u16>()).prop_map(SocketAddr::from)),
            any::<(u16, u16, u16, u32)>(),
            any_clock(),
        )
            .prop_map(|(public_addr, (fxs, fxo, isdn, call_ref), clock)| {
                FeedBody::Login(Login {
                    public_addr,
                    fxs_ports: fxs,
                    fxo_ports: fxo,
                    isdn_channels: isdn,
                    call_ref,
                    clock,
                })
            }),
        proptest::option::of(any_text()).prop_map(|reason| FeedBody::Logout { reason }),
        proptest::option::of(any_clock()).prop_map(|clock| FeedBody::KeepAlive { clock }),
        (
            any::<u32>(),
            proptest::option::of(any_port()),
            proptest::option::of(any_port()),
            any_clock(),
            any_kind(),
        )
            .prop_map(|(call_ref, port, pstn_port, at, kind)| {
                // Only a rejected call may have no port.
                let port = match kind {
                    CallEventKind::CallInReject { .. } => port,
                    _ => port.or(Some(1)),
                };
                FeedBody::Call(CallEvent {
                    call_ref,
                    port,
                    pstn_port,
                    at,
                    kind,
                })
            }),
    ]
}

fn any_message() -> impl Strategy<Value = FeedMessage> {
    (
        any::<u32>(),
        "[A-Za-z0-9._-]{1,32}",
        any::<[u8; 6]>(),
        any_body(),
    )
        .prop_map(|(seq, id, mac, body)| FeedMessage {
            seq,
            gateway: GatewayRef { id, mac: Mac(mac) },
            body,
        })
}

/// Lines made of the protocol's own words, so the parser gets past the
/// version word and into the fields.
fn feed_like_line() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        Just("GWFEED/1".to_owned()),
        Just("LOGIN".to_owned()),
        Just("TALK".to_owned()),
        Just("CALL_IN_REJECT".to_owned()),
        Just("seq=".to_owned()),
        Just("codec=\"".to_owned()),
        Just("mac=000C2A020082".to_owned()),
        Just("\\x".to_owned()),
        Just("\\".to_owned()),
        Just("\"".to_owned()),
        Just(" ".to_owned()),
        "(?s).{0,6}",
    ];
    vec(word, 0..24).prop_map(|words| format!("GWFEED/1 {}", words.concat()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn to_line_then_parse_line_gives_the_message_back(message in any_message()) {
        let line = message.to_line();
        prop_assert!(line.len() <= MAX_LINE_LEN);
        prop_assert!(!line.contains(['\n', '\r']));
        prop_assert_eq!(parse_line(&line), Ok(message));
    }

    #[test]
    fn replies_round_trip(seq in proptest::option::of(any::<u32>()), reason in any_text()) {
        let reply = match seq {
            Some(seq) if reason.len() % 2 == 0 => FeedReply::Ok { seq },
            seq => FeedReply::Err { seq, reason },
        };
        prop_assert_eq!(parse_reply(&reply.to_line()), Ok(reply));
    }

    #[test]
    fn parse_line_never_panics_on_arbitrary_strings(line in any::<String>()) {
        if let Err(e) = parse_line(&line) {
            prop_assert!(e.column >= 1 && e.column <= line.chars().count() + 1);
        }
        let _ = parse_reply(&line);
    }

    #[test]
    fn parse_line_never_panics_on_lines_of_protocol_words(line in feed_like_line()) {
        if let Err(e) = parse_line(&line) {
            prop_assert!(e.column >= 1 && e.column <= line.chars().count() + 1);
        }
        let _ = parse_reply(&line);
    }

}

proptest! {
    // Datagrams are long; fewer of them keep the test under a second.
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary bytes, LF and CR at arbitrary places: lines of every
    /// length around the limit.
    #[test]
    fn split_datagram_never_panics_and_every_line_it_gives_is_short(
        mut bytes in vec(any::<u8>(), 0..2100),
        breaks in vec((any::<proptest::sample::Index>(), prop_oneof![Just(b'\n'), Just(b'\r')]), 0..8),
    ) {
        if !bytes.is_empty() {
            for (at, byte) in breaks {
                let at = at.index(bytes.len());
                bytes[at] = byte;
            }
        }
        for line in split_datagram(&bytes).flatten() {
            prop_assert!(!line.is_empty() && line.len() <= MAX_LINE_LEN);
            prop_assert!(!line.contains('\n'));
            let _ = parse_line(line);
        }
    }
}
