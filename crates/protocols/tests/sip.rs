//! The SIP parser against messages sipp and Kamailio sent
//! (`tests/data/sip/`, see the README there), the RFC 3261 §24.2 call flow,
//! hand-written messages in the style of the RFC 4475 torture tests
//! (folding, compact forms, odd whitespace, escaped display names, several
//! Vias on a line, unknown headers), SDP, the error sentences, and property
//! tests (no panic on any bytes, on any truncation or change of a capture).

use cdrhub_protocols::sip::*;
use proptest::collection::vec;
use proptest::prelude::*;

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/data/sip/",
            $name
        ))
        .as_slice()
    };
}

/// Every capture, by name.
fn captures() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("basic-invite", fixture!("basic-invite.sip")),
        ("basic-100-trying", fixture!("basic-100-trying.sip")),
        ("basic-invite-relayed", fixture!("basic-invite-relayed.sip")),
        ("basic-180-ringing", fixture!("basic-180-ringing.sip")),
        ("basic-200-ok", fixture!("basic-200-ok.sip")),
        ("basic-ack", fixture!("basic-ack.sip")),
        ("basic-bye", fixture!("basic-bye.sip")),
        ("basic-bye-200-ok", fixture!("basic-bye-200-ok.sip")),
        ("hold-reinvite", fixture!("hold-reinvite.sip")),
        ("hold-200-ok", fixture!("hold-200-ok.sip")),
        ("resume-reinvite", fixture!("resume-reinvite.sip")),
        ("resume-200-ok", fixture!("resume-200-ok.sip")),
        ("video-reinvite", fixture!("video-reinvite.sip")),
        ("video-200-ok", fixture!("video-200-ok.sip")),
        (
            "bye-with-reason-relayed",
            fixture!("bye-with-reason-relayed.sip"),
        ),
        ("busy-486", fixture!("busy-486.sip")),
        ("busy-486-relayed", fixture!("busy-486-relayed.sip")),
        ("busy-ack", fixture!("busy-ack.sip")),
        ("cancel", fixture!("cancel.sip")),
        ("cancel-200-canceling", fixture!("cancel-200-canceling.sip")),
        ("cancel-487", fixture!("cancel-487.sip")),
        ("cancel-487-relayed", fixture!("cancel-487-relayed.sip")),
        ("cancel-ack", fixture!("cancel-ack.sip")),
        ("register", fixture!("register.sip")),
        ("register-200-ok", fixture!("register-200-ok.sip")),
        (
            "kamailio-487-without-via",
            fixture!("kamailio-487-without-via.sip"),
        ),
    ]
}

fn ok(packet: &[u8]) -> SipMessage<'_> {
    parse(packet).unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(packet)))
}

/// `text` with every LF made CRLF, as on the wire.
fn crlf(text: &str) -> Vec<u8> {
    text.replace('\n', "\r\n").into_bytes()
}

/// A message: `head` (no Content-Length, no empty line) with CRLFs, a
/// Content-Length for `body`, the empty line and `body` with CRLFs.
fn with_body(head: &str, body: &str) -> Vec<u8> {
    let body = body.replace('\n', "\r\n");
    let mut out = crlf(head);
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n{body}", body.len()).as_bytes());
    out
}

fn error(packet: &[u8]) -> String {
    match parse(packet) {
        Ok(message) => panic!("parsed: {message:?}"),
        Err(e) => e.to_string(),
    }
}

fn request_uri<'a>(message: &'a SipMessage<'_>) -> &'a Uri<'a> {
    message.request_uri().expect("a request")
}

// ---------------------------------------------------------------------------
// sipp through Kamailio

#[test]
fn sipp_uac_invite_reads_every_field() {
    let m = ok(fixture!("basic-invite.sip"));
    assert!(m.is_request());
    assert_eq!(m.method(), Method::Invite);
    let uri = request_uri(&m);
    assert_eq!(uri.scheme, Scheme::Sip);
    assert_eq!(
        (uri.user, uri.host, uri.port),
        (Some("service"), "127.0.0.1", Some(5070))
    );
    assert_eq!(uri.raw, "sip:service@127.0.0.1:5070");
    assert_eq!(m.call_id, "1-19192@127.0.0.1");
    assert_eq!(m.cseq.number, 1);
    assert_eq!(m.cseq.method, Method::Invite);

    assert_eq!(m.from.display_name().as_deref(), Some("sipp"));
    assert_eq!(m.from.uri.user, Some("sipp"));
    assert_eq!(m.from.uri.host, "127.0.0.1");
    assert_eq!(m.from.uri.port, Some(5061));
    assert_eq!(m.from.tag(), Some("19192SIPpTag001"));
    assert_eq!(m.to.display_name().as_deref(), Some("service"));
    assert_eq!(m.to.uri.user, Some("service"));
    assert_eq!(m.to.tag(), None);

    let via = m.via.unwrap();
    assert_eq!(via.transport, "UDP");
    assert_eq!((via.host, via.port), ("127.0.0.1", Some(5061)));
    assert_eq!(via.branch(), Some("z9hG4bK-19192-1-0"));

    // sipp writes an addr-spec Contact without angle brackets.
    let contacts: Vec<_> = m.contacts().collect::<Result<_, _>>().unwrap();
    let [Contact::Address(contact)] = contacts.as_slice() else {
        panic!("{contacts:?}")
    };
    assert_eq!(contact.uri.raw, "sip:sipp@127.0.0.1:5061");
    assert_eq!(contact.raw_display_name(), None);
    assert_eq!(m.max_forwards().unwrap(), Some(70));
    assert_eq!(m.header("Subject"), Some("Performance Test"));
    assert_eq!(m.header("s"), Some("Performance Test"));
    // sipp pads the length: `Content-Length:   129`.
    assert_eq!(m.header("Content-Length"), Some("129"));
    assert_eq!(m.body.len(), 129);
    assert!(m.body.starts_with(b"v=0\r\n"));
    let names: Vec<_> = m.headers().iter().map(|h| h.name).collect();
    assert_eq!(
        names,
        [
            "Via",
            "From",
            "To",
            "Call-ID",
            "CSeq",
            "Contact",
            "Max-Forwards",
            "Subject",
            "Content-Type",
            "Content-Length"
        ]
    );
    assert_eq!(m.headers()[3].line, 5);

    let sdp = m.sdp().unwrap().unwrap();
    let origin = sdp.origin.unwrap();
    assert_eq!(origin.username, "user1");
    assert_eq!(origin.session_id, "53655765");
    assert_eq!(origin.session_version, "2353687637");
    assert_eq!(origin.address, "127.0.0.1");
    assert_eq!(sdp.connection.unwrap().address, "127.0.0.1");
    assert_eq!(sdp.direction, None);
    let [audio] = sdp.media.as_slice() else {
        panic!("{sdp:?}")
    };
    assert_eq!(
        (audio.kind, audio.port, audio.proto),
        ("audio", 6200, "RTP/AVP")
    );
    assert_eq!(audio.formats().collect::<Vec<_>>(), ["0"]);
    assert_eq!(
        audio.rtpmaps().collect::<Vec<_>>(),
        [RtpMap {
            payload_type: 0,
            encoding: "PCMU",
            clock_rate: 8000,
            parameters: None
        }]
    );
    assert_eq!(audio.direction, Direction::SendRecv);
    assert_eq!(audio.connection.unwrap().address, "127.0.0.1");
    assert!(!audio.is_on_hold() && !audio.is_disabled() && !sdp.is_on_hold());
}

#[test]
fn kamailio_relays_the_invite_with_its_via_on_top_and_a_record_route() {
    let sent = ok(fixture!("basic-invite.sip"));
    let relayed = ok(fixture!("basic-invite-relayed.sip"));
    assert_eq!(relayed.call_id, sent.call_id);
    assert_eq!(relayed.max_forwards().unwrap(), Some(69));
    let vias: Vec<_> = relayed.vias().collect::<Result<_, _>>().unwrap();
    assert_eq!(vias.len(), 2);
    assert_eq!(vias[0], relayed.via.unwrap());
    assert_eq!(vias[0].port, Some(5070));
    assert_eq!(
        vias[0].branch(),
        Some("z9hG4bKa5d5.4d4f6ee69c0c4f3afbb1761147338e2f.0")
    );
    assert_eq!(vias[1], sent.via.unwrap());
    let routes: Vec<_> = relayed
        .addresses("Record-Route")
        .collect::<Result<_, _>>()
        .unwrap();
    let [route] = routes.as_slice() else {
        panic!("{routes:?}")
    };
    assert_eq!(route.uri.host, "127.0.0.1");
    assert_eq!(route.uri.params.get("lr"), Some(""));
    assert_eq!(route.uri.params.get("ftag"), Some("19192SIPpTag001"));
    assert_eq!(relayed.body, sent.body);
}

#[test]
fn kamailio_100_trying_answers_the_invite() {
    let m = ok(fixture!("basic-100-trying.sip"));
    assert_eq!(
        m.start,
        StartLine::Response {
            code: 100,
            reason: "trying -- your call is important to us"
        }
    );
    assert_eq!(m.status_code(), Some(100));
    assert_eq!(m.method(), Method::Invite);
    assert_eq!(m.header("server"), Some("kamailio (5.6.3 (x86_64/linux))"));
    assert!(m.body.is_empty());
    assert_eq!(m.sdp().unwrap(), None);
}

#[test]
fn sipp_uas_writes_both_vias_on_one_line() {
    for packet in [
        fixture!("basic-180-ringing.sip"),
        fixture!("basic-200-ok.sip"),
    ] {
        let m = ok(packet);
        assert_eq!(m.headers_named("Via").count(), 1);
        let branches: Vec<_> = m.vias().map(|v| v.unwrap().branch().unwrap()).collect();
        assert_eq!(
            branches,
            [
                "z9hG4bKa5d5.4d4f6ee69c0c4f3afbb1761147338e2f.0",
                "z9hG4bK-19192-1-0"
            ]
        );
        assert_eq!(m.via.unwrap().branch(), Some(branches[0]));
    }
}

#[test]
fn the_basic_call_is_one_dialog() {
    let flow = [
        fixture!("basic-invite.sip"),
        fixture!("basic-100-trying.sip"),
        fixture!("basic-180-ringing.sip"),
        fixture!("basic-200-ok.sip"),
        fixture!("basic-ack.sip"),
        fixture!("basic-bye.sip"),
        fixture!("basic-bye-200-ok.sip"),
    ];
    let read: Vec<_> = flow
        .iter()
        .map(|p| {
            let m = ok(p);
            (m.method(), m.status_code(), m.cseq.number, m.to.tag())
        })
        .collect();
    assert_eq!(
        read,
        [
            (Method::Invite, None, 1, None),
            (Method::Invite, Some(100), 1, None),
            (Method::Invite, Some(180), 1, Some("19173SIPpTag011")),
            (Method::Invite, Some(200), 1, Some("19173SIPpTag011")),
            (Method::Ack, None, 1, Some("19173SIPpTag011")),
            (Method::Bye, None, 2, Some("19173SIPpTag011")),
            (Method::Bye, Some(200), 2, Some("19173SIPpTag011")),
        ]
    );
    for packet in flow {
        let m = ok(packet);
        assert_eq!(m.call_id, "1-19192@127.0.0.1");
        assert_eq!(m.from.tag(), Some("19192SIPpTag001"));
    }
    let answer = ok(fixture!("basic-200-ok.sip"));
    let sdp = answer.sdp().unwrap().unwrap();
    assert_eq!(sdp.media[0].port, 6100);
    let contact = answer.contacts().next().unwrap().unwrap();
    let Contact::Address(contact) = contact else {
        panic!("{contact:?}")
    };
    assert_eq!(contact.uri.user, None);
    assert_eq!(contact.uri.params.get("transport"), Some("UDP"));
}

#[test]
fn busy_486_carries_a_q850_reason() {
    for packet in [fixture!("busy-486.sip"), fixture!("busy-486-relayed.sip")] {
        let m = ok(packet);
        assert_eq!(
            m.start,
            StartLine::Response {
                code: 486,
                reason: "Busy Here"
            }
        );
        let reasons: Vec<_> = m.reasons().collect::<Result<_, _>>().unwrap();
        let [reason] = reasons.as_slice() else {
            panic!("{reasons:?}")
        };
        assert_eq!(reason.protocol, "Q.850");
        assert_eq!(reason.cause, Some(17));
        assert_eq!(reason.text().as_deref(), Some("User busy"));
    }
    let ack = ok(fixture!("busy-ack.sip"));
    assert_eq!(ack.method(), Method::Ack);
    assert_eq!(ack.via.unwrap().branch(), Some("z9hG4bK-16857-1-0"));
}

#[test]
fn cancel_reuses_the_invite_branch_and_487_answers_the_invite() {
    let cancel = ok(fixture!("cancel.sip"));
    assert_eq!(cancel.method(), Method::Cancel);
    assert_eq!(cancel.cseq.method, Method::Cancel);
    assert_eq!(cancel.to.tag(), None);
    let branch = cancel.via.unwrap().branch();
    assert_eq!(branch, Some("z9hG4bK-19171-1-0"));

    let canceling = ok(fixture!("cancel-200-canceling.sip"));
    assert_eq!(
        canceling.start,
        StartLine::Response {
            code: 200,
            reason: "canceling"
        }
    );
    assert_eq!(canceling.method(), Method::Cancel);

    let terminated = ok(fixture!("cancel-487.sip"));
    assert_eq!(terminated.status_code(), Some(487));
    assert_eq!(terminated.method(), Method::Invite);
    assert_eq!(terminated.vias().count(), 2);
    let relayed = ok(fixture!("cancel-487-relayed.sip"));
    assert_eq!(relayed.via.unwrap().branch(), branch);
    let ack = ok(fixture!("cancel-ack.sip"));
    assert_eq!(ack.via.unwrap().branch(), branch);
    assert_eq!(ack.to.tag(), Some("19152SIPpTag011"));
}

/// A UAS dropped the caller's Via from its 487; Kamailio relayed the 487
/// with no Via at all. The call still ends with it.
#[test]
fn kamailio_487_without_via_still_parses() {
    let m = ok(fixture!("kamailio-487-without-via.sip"));
    assert_eq!(m.status_code(), Some(487));
    assert_eq!(m.via, None);
    assert_eq!(m.vias().count(), 0);
    assert_eq!(m.call_id, "1-16873@127.0.0.1");
}

#[test]
fn hold_reinvite_is_sendonly_and_its_answer_recvonly() {
    let offer = ok(fixture!("hold-reinvite.sip"));
    assert_eq!(offer.cseq.number, 2);
    assert_eq!(offer.to.tag(), Some("16829SIPpTag011"));
    assert_eq!(request_uri(&offer).raw, "sip:127.0.0.1:5080;transport=UDP");
    let route = offer.addresses("Route").next().unwrap().unwrap();
    assert_eq!(route.uri.params.get("ftag"), Some("16836SIPpTag001"));
    let sdp = offer.sdp().unwrap().unwrap();
    assert_eq!(sdp.origin.unwrap().session_version, "2353687638");
    assert_eq!(sdp.media[0].direction, Direction::SendOnly);
    assert!(sdp.media[0].is_on_hold());
    assert!(sdp.is_on_hold());

    let answer = ok(fixture!("hold-200-ok.sip")).sdp().unwrap().unwrap();
    assert_eq!(answer.media[0].direction, Direction::RecvOnly);
    assert!(!answer.is_on_hold());
}

#[test]
fn resume_reinvite_is_sendrecv_again() {
    for packet in [
        fixture!("resume-reinvite.sip"),
        fixture!("resume-200-ok.sip"),
    ] {
        let m = ok(packet);
        assert_eq!(m.cseq.number, 3);
        let sdp = m.sdp().unwrap().unwrap();
        assert_eq!(sdp.origin.unwrap().session_version, "2353687639");
        assert_eq!(sdp.media[0].direction, Direction::SendRecv);
        assert_eq!(
            sdp.media[0].attributes.last(),
            Some(&Attribute {
                name: "sendrecv",
                value: None
            })
        );
        assert!(!sdp.is_on_hold());
    }
}

#[test]
fn video_reinvite_adds_a_video_stream() {
    for (packet, port) in [
        (fixture!("video-reinvite.sip"), 6202),
        (fixture!("video-200-ok.sip"), 6102),
    ] {
        let sdp = ok(packet).sdp().unwrap().unwrap();
        let kinds: Vec<_> = sdp.media.iter().map(|m| m.kind).collect();
        assert_eq!(kinds, ["audio", "video"]);
        let video = &sdp.media[1];
        assert_eq!(video.port, port);
        assert_eq!(video.formats().collect::<Vec<_>>(), ["96"]);
        assert_eq!(video.codec_name(96), Some("H264"));
        assert_eq!(video.rtpmaps().next().unwrap().clock_rate, 90000);
        assert_eq!(video.connection.unwrap().address, "127.0.0.1");
        assert_eq!(sdp.media[0].codec_name(0), Some("PCMU"));
    }
}

#[test]
fn bye_carries_q850_cause_16() {
    let m = ok(fixture!("bye-with-reason-relayed.sip"));
    assert_eq!(m.method(), Method::Bye);
    assert_eq!(m.cseq.number, 5);
    let reason = m.reasons().next().unwrap().unwrap();
    assert_eq!((reason.protocol, reason.cause), ("Q.850", Some(16)));
    assert_eq!(reason.text().as_deref(), Some("Normal call clearing"));
}

#[test]
fn register_has_expires_and_a_contact_expires_param() {
    let register = ok(fixture!("register.sip"));
    assert_eq!(register.method(), Method::Register);
    let uri = request_uri(&register);
    assert_eq!(
        (uri.user, uri.host, uri.port),
        (None, "127.0.0.1", Some(5070))
    );
    assert_eq!(register.expires().unwrap(), Some(3600));
    assert_eq!(register.header("User-Agent"), Some("SIPp"));
    let Contact::Address(contact) = register.contacts().next().unwrap().unwrap() else {
        panic!("a wildcard")
    };
    assert_eq!(contact.params.get("expires"), Some("3600"));
    assert_eq!(contact.uri.port, Some(5061));

    let answer = ok(fixture!("register-200-ok.sip"));
    assert_eq!(answer.status_code(), Some(200));
    assert_eq!(answer.method(), Method::Register);
    assert_eq!(answer.expires().unwrap(), None);
    let Contact::Address(bound) = answer.contacts().next().unwrap().unwrap() else {
        panic!("a wildcard")
    };
    assert_eq!(bound.params.get("Expires"), Some("3600"));
    assert_eq!(
        answer.to.tag(),
        Some("df673b98c9e0bd9172cfc0d849035098.9eb26232")
    );
}

// ---------------------------------------------------------------------------
// RFC 3261 §24.2, "Session Setup". The RFC does not show the SDP; the
// bodies here are ours, and so is each Content-Length.

const RFC3261_F1_HEAD: &str = "\
INVITE sip:bob@biloxi.com SIP/2.0
Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8
Max-Forwards: 70
To: Bob <sip:bob@biloxi.com>
From: Alice <sip:alice@atlanta.com>;tag=1928301774
Call-ID: a84b4c76e66710
CSeq: 314159 INVITE
Contact: <sip:alice@pc33.atlanta.com>
Content-Type: application/sdp
";

const ALICE_SDP: &str = "\
v=0
o=alice 2890844526 2890844526 IN IP4 pc33.atlanta.com
s=-
c=IN IP4 pc33.atlanta.com
t=0 0
m=audio 49172 RTP/AVP 0
a=rtpmap:0 PCMU/8000
";

const RFC3261_F9_HEAD: &str = "\
SIP/2.0 200 OK
Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8;received=192.0.2.1
To: Bob <sip:bob@biloxi.com>;tag=a6c85cf
From: Alice <sip:alice@atlanta.com>;tag=1928301774
Call-ID: a84b4c76e66710
CSeq: 314159 INVITE
Contact: <sip:bob@192.0.2.4>
Content-Type: application/sdp
";

const BOB_SDP: &str = "\
v=0
o=bob 2808844564 2808844564 IN IP4 192.0.2.4
s=-
c=IN IP4 192.0.2.4
t=0 0
m=audio 3456 RTP/AVP 0
a=rtpmap:0 PCMU/8000
";

const RFC3261_F2: &str = "\
SIP/2.0 100 Trying
Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8;received=192.0.2.1
To: Bob <sip:bob@biloxi.com>
From: Alice <sip:alice@atlanta.com>;tag=1928301774
Call-ID: a84b4c76e66710
CSeq: 314159 INVITE
Content-Length: 0

";

const RFC3261_F8: &str = "\
SIP/2.0 180 Ringing
Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8;received=192.0.2.1
To: Bob <sip:bob@biloxi.com>;tag=a6c85cf
From: Alice <sip:alice@atlanta.com>;tag=1928301774
Call-ID: a84b4c76e66710
Contact: <sip:bob@192.0.2.4>
CSeq: 314159 INVITE
Content-Length: 0

";

const RFC3261_F12: &str = "\
ACK sip:bob@192.0.2.4 SIP/2.0
Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds9
Max-Forwards: 70
To: Bob <sip:bob@biloxi.com>;tag=a6c85cf
From: Alice <sip:alice@atlanta.com>;tag=1928301774
Call-ID: a84b4c76e66710
CSeq: 314159 ACK
Content-Length: 0

";

const RFC3261_F13: &str = "\
BYE sip:alice@pc33.atlanta.com SIP/2.0
Via: SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKnashds10
Max-Forwards: 70
From: Bob <sip:bob@biloxi.com>;tag=a6c85cf
To: Alice <sip:alice@atlanta.com>;tag=1928301774
Call-ID: a84b4c76e66710
CSeq: 231 BYE
Content-Length: 0

";

#[test]
fn rfc3261_invite_f1() {
    let packet = with_body(RFC3261_F1_HEAD, ALICE_SDP);
    let m = ok(&packet);
    assert_eq!(m.method(), Method::Invite);
    assert_eq!(request_uri(&m).raw, "sip:bob@biloxi.com");
    assert_eq!(request_uri(&m).port, None);
    assert_eq!(m.call_id, "a84b4c76e66710");
    assert_eq!(m.cseq.number, 314159);
    assert_eq!(m.from.display_name().as_deref(), Some("Alice"));
    assert_eq!(m.from.tag(), Some("1928301774"));
    assert_eq!(m.to.uri.user, Some("bob"));
    let via = m.via.unwrap();
    assert_eq!((via.host, via.port), ("pc33.atlanta.com", None));
    assert_eq!(via.branch(), Some("z9hG4bKnashds8"));
    let content_type = m.content_type().unwrap().unwrap();
    assert!(content_type.is("application", "sdp"));
    let sdp = m.sdp().unwrap().unwrap();
    assert_eq!(sdp.media[0].port, 49172);
    assert_eq!(sdp.connection.unwrap().address, "pc33.atlanta.com");
}

#[test]
fn rfc3261_responses_f2_f8_f9() {
    let trying = crlf(RFC3261_F2);
    let m = ok(&trying);
    assert_eq!(
        m.start,
        StartLine::Response {
            code: 100,
            reason: "Trying"
        }
    );
    assert_eq!(m.via.unwrap().params.get("received"), Some("192.0.2.1"));
    assert_eq!(m.to.tag(), None);

    let ringing = crlf(RFC3261_F8);
    let m = ok(&ringing);
    assert_eq!(m.status_code(), Some(180));
    assert_eq!(m.to.tag(), Some("a6c85cf"));

    let answer = with_body(RFC3261_F9_HEAD, BOB_SDP);
    let m = ok(&answer);
    assert_eq!(m.status_code(), Some(200));
    assert_eq!(m.method(), Method::Invite);
    let Contact::Address(contact) = m.contacts().next().unwrap().unwrap() else {
        panic!("a wildcard")
    };
    assert_eq!(
        (contact.uri.user, contact.uri.host),
        (Some("bob"), "192.0.2.4")
    );
    let sdp = m.sdp().unwrap().unwrap();
    assert_eq!(sdp.origin.unwrap().username, "bob");
    assert_eq!(sdp.media[0].port, 3456);
}

#[test]
fn rfc3261_ack_f12_and_bye_f13() {
    let ack = crlf(RFC3261_F12);
    let m = ok(&ack);
    assert_eq!(m.method(), Method::Ack);
    assert_eq!(request_uri(&m).host, "192.0.2.4");
    assert_eq!(m.cseq.method, Method::Ack);

    let bye = crlf(RFC3261_F13);
    let m = ok(&bye);
    assert_eq!(m.method(), Method::Bye);
    // Bob hangs up: From and To swap, Bob's CSeq has its own numbers.
    assert_eq!(m.from.uri.user, Some("bob"));
    assert_eq!(m.from.tag(), Some("a6c85cf"));
    assert_eq!(m.to.tag(), Some("1928301774"));
    assert_eq!(m.cseq.number, 231);
    assert_eq!(m.via.unwrap().host, "192.0.2.4");
    assert_eq!(m.reasons().count(), 0);
}

// ---------------------------------------------------------------------------
// Torture-test style messages, written for cdrhub after the kinds of case
// RFC 4475 §3.1.1 lists.

#[test]
fn folded_headers_are_one_header() {
    let packet = crlf(
        "\
INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0
TO :
 sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n
from   : \"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>
  ;
  tag = 98asjd8
MaX-fOrWaRdS: 0068
Call-ID: wsinv.ndaksdj@192.0.2.1
Content-Length   : 0
cseq: 0009
  INVITE
Via  : SIP  /   2.0
 /UDP
    192.0.2.2;branch=390skdjuw
s :
NewFangledHeader:   newfangled value
 continued newfangled value
UnknownHeaderWithUnusualValue: ;;,,;;,;
Route:
 <sip:services.example.com;lr;unknownwith=value;unknown-no-value>
v:  SIP  / 2.0  / TCP     spindle.example.com   ;
  branch  =   z9hG4bK9ikj8  ,
 SIP  /    2.0   / UDP  192.168.255.111   ; branch=
 z9hG4bK30239
m:\"Quoted string \\\"\\\"\" <sip:jdrosen@example.com> ; newparam =
      newvalue ;
  secondparam ; q = 0.33

",
    );
    let m = ok(&packet);
    assert_eq!(m.method(), Method::Invite);
    assert_eq!(request_uri(&m).params.get("unknownparam"), Some(""));
    assert_eq!(m.to.uri.raw, "sip:vivekg@chair-dnrc.example.com");
    assert_eq!(m.to.tag(), Some("1918181833n"));
    assert_eq!(m.from.display_name().as_deref(), Some("J Rosenberg \\\""));
    assert_eq!(m.from.tag(), Some("98asjd8"));
    assert_eq!(m.max_forwards().unwrap(), Some(68));
    assert_eq!(m.cseq.number, 9);
    assert_eq!(m.cseq.method, Method::Invite);
    assert_eq!(m.via.unwrap().host, "192.0.2.2");
    assert_eq!(m.via.unwrap().branch(), Some("390skdjuw"));
    let vias: Vec<_> = m.vias().collect::<Result<_, _>>().unwrap();
    let sent_by: Vec<_> = vias.iter().map(|v| (v.transport, v.host)).collect();
    assert_eq!(
        sent_by,
        [
            ("UDP", "192.0.2.2"),
            ("TCP", "spindle.example.com"),
            ("UDP", "192.168.255.111")
        ]
    );
    assert_eq!(vias[1].branch(), Some("z9hG4bK9ikj8"));
    assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));
    assert_eq!(m.header("Subject"), Some(""));
    let folded = m.headers_named("newfangledheader").next().unwrap();
    assert_eq!(
        folded.value,
        "newfangled value\r\n continued newfangled value"
    );
    assert_eq!(
        folded.unfolded(),
        "newfangled value continued newfangled value"
    );
    assert_eq!(m.header("UnknownHeaderWithUnusualValue"), Some(";;,,;;,;"));
    let Contact::Address(contact) = m.contacts().next().unwrap().unwrap() else {
        panic!("a wildcard")
    };
    assert_eq!(
        contact.display_name().as_deref(),
        Some("Quoted string \"\"")
    );
    assert_eq!(contact.params.get("newparam"), Some("newvalue"));
    assert_eq!(contact.params.get("secondparam"), Some(""));
    assert_eq!(contact.params.get("q"), Some("0.33"));
    assert!(m.body.is_empty());
}

#[test]
fn compact_forms_name_the_same_headers() {
    let packet = with_body(
        "\
INVITE sip:+4930123456@gw.example.net;user=phone SIP/2.0
v: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-compact
f: \"Anna\" <sip:100@pbx.example.net>;tag=f1
t: <sip:+4930123456@gw.example.net;user=phone>
i: compact-1@192.0.2.10
CSeq: 7 INVITE
m: <sip:100@192.0.2.10:5060>
k: timer, 100rel
s: compact forms
e: identity
o: presence
r: <sip:200@pbx.example.net>
b: <sip:100@pbx.example.net>
x: 1800;refresher=uac
u: talk, hold
c: application/sdp
",
        ALICE_SDP,
    );
    // with_body writes the long Content-Length; make it `l:`.
    let text = String::from_utf8(packet).unwrap();
    let packet = text.replace("Content-Length:", "l:").into_bytes();
    let m = ok(&packet);
    assert_eq!(m.call_id, "compact-1@192.0.2.10");
    assert_eq!(m.from.display_name().as_deref(), Some("Anna"));
    assert_eq!(m.to.uri.params.get("user"), Some("phone"));
    assert_eq!(m.via.unwrap().branch(), Some("z9hG4bK-compact"));
    for (long, value) in [
        ("Supported", "timer, 100rel"),
        ("Subject", "compact forms"),
        ("Content-Encoding", "identity"),
        ("Event", "presence"),
        ("Refer-To", "<sip:200@pbx.example.net>"),
        ("Referred-By", "<sip:100@pbx.example.net>"),
        ("Session-Expires", "1800;refresher=uac"),
        ("Allow-Events", "talk, hold"),
        ("Content-Type", "application/sdp"),
        ("call-id", "compact-1@192.0.2.10"),
    ] {
        assert_eq!(m.header(long), Some(value), "{long}");
    }
    let canonical: Vec<_> = m.headers().iter().map(|h| h.canonical_name()).collect();
    assert_eq!(
        canonical,
        [
            "Via",
            "From",
            "To",
            "Call-ID",
            "CSeq",
            "Contact",
            "Supported",
            "Subject",
            "Content-Encoding",
            "Event",
            "Refer-To",
            "Referred-By",
            "Session-Expires",
            "Allow-Events",
            "Content-Type",
            "Content-Length"
        ]
    );
    assert!(m.headers()[0].is("VIA") && m.headers()[0].is("v"));
    assert_eq!(m.refer_to().unwrap().unwrap().uri.user, Some("200"));
    assert_eq!(m.sdp().unwrap().unwrap().media.len(), 1);
}

#[test]
fn display_names_quoted_escaped_token_and_utf8() {
    let cases: [(&str, Option<&str>, Option<&str>); 8] = [
        ("\"Alice\" <sip:a@x>", Some("Alice"), Some("\"Alice\"")),
        (
            "\"Alice \\\"Al\\\" Smith\" <sip:a@x>",
            Some("Alice \"Al\" Smith"),
            Some("\"Alice \\\"Al\\\" Smith\""),
        ),
        ("\"back\\\\slash\"<sip:a@x>", Some("back\\slash"), None),
        ("\"\" <sip:a@x>", None, Some("\"\"")),
        (
            "Anna Maria   Schmidt <sip:a@x>",
            Some("Anna Maria   Schmidt"),
            None,
        ),
        ("\"Jürgen Groß\" <sip:a@x>", Some("Jürgen Groß"), None),
        ("\"a, b; c <d>\" <sip:a@x>", Some("a, b; c <d>"), None),
        ("<sip:a@x>", None, None),
    ];
    for (value, name, raw) in cases {
        let packet = crlf(&format!(
            "\
OPTIONS sip:x SIP/2.0
Via: SIP/2.0/UDP h;branch=z9hG4bK1
From: {value};tag=1
To: <sip:b@x>
Call-ID: names
CSeq: 1 OPTIONS

"
        ));
        let m = ok(&packet);
        assert_eq!(m.from.display_name().as_deref(), name, "{value}");
        if raw.is_some() {
            assert_eq!(m.from.raw_display_name(), raw, "{value}");
        }
        assert_eq!(m.from.uri.raw, "sip:a@x", "{value}");
        assert_eq!(m.from.tag(), Some("1"), "{value}");
    }
}

#[test]
fn several_vias_on_one_line_and_across_lines_keep_their_order() {
    let packet = crlf("\
SIP/2.0 200 OK
Via: SIP/2.0/UDP proxy1.example.com:5060;branch=z9hG4bK-p1;received=198.51.100.1;rport=5062, SIP/2.0/TCP [2001:db8::9:1]:5070;branch=z9hG4bK-p2
v: SIP/2.0/TLS client.example.com;branch=z9hG4bK-c
Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK-ws;rport
From: <sip:a@example.com>;tag=1
To: <sip:b@example.com>;tag=2
Call-ID: vias
CSeq: 1 OPTIONS
Content-Length: 0

");
    let m = ok(&packet);
    let vias: Vec<_> = m.vias().collect::<Result<_, _>>().unwrap();
    let read: Vec<_> = vias
        .iter()
        .map(|v| (v.transport, v.host, v.port, v.branch().unwrap()))
        .collect();
    assert_eq!(
        read,
        [
            ("UDP", "proxy1.example.com", Some(5060), "z9hG4bK-p1"),
            ("TCP", "[2001:db8::9:1]", Some(5070), "z9hG4bK-p2"),
            ("TLS", "client.example.com", None, "z9hG4bK-c"),
            ("WSS", "df7jal23ls0d.invalid", None, "z9hG4bK-ws"),
        ]
    );
    assert_eq!(vias[0].params.get("rport"), Some("5062"));
    assert_eq!(vias[3].params.get("rport"), Some(""));
    assert_eq!(m.via, Some(vias[0]));
}

#[test]
fn unknown_headers_are_kept_for_correlation() {
    let packet = crlf(
        "\
INVITE sip:bob@example.com SIP/2.0
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-x
From: <sip:alice@example.com>;tag=a
To: <sip:bob@example.com>
Call-ID: x-cid-test
CSeq: 1 INVITE
X-CID: 9f1c2a77-0001
x-cid: second value
P-Charging-Vector: icid-value=1234bc9876e;icid-generated-at=192.0.6.8
X-Empty:
Content-Length: 0

",
    );
    let m = ok(&packet);
    assert_eq!(m.header("X-CID"), Some("9f1c2a77-0001"));
    assert_eq!(m.header("x-Cid"), Some("9f1c2a77-0001"));
    let all: Vec<_> = m
        .headers_named("X-CID")
        .map(|h| (h.name, h.value))
        .collect();
    assert_eq!(all, [("X-CID", "9f1c2a77-0001"), ("x-cid", "second value")]);
    assert_eq!(
        m.header("P-Charging-Vector"),
        Some("icid-value=1234bc9876e;icid-generated-at=192.0.6.8")
    );
    assert_eq!(m.header("X-Empty"), Some(""));
    assert_eq!(m.header("X-Missing"), None);
    // A compact letter no header has is an unknown name, not a form of one.
    assert_eq!(m.header("z"), None);
}

#[test]
fn uris_sip_sips_tel_and_others() {
    /// The URI, then its scheme, user, host, port and parameters.
    type Case = (
        &'static str,
        Scheme<'static>,
        Option<&'static str>,
        &'static str,
        Option<u16>,
        &'static str,
    );
    let cases: [Case; 8] = [
        (
            "sip:+49-30-1234567@gw.example.net:5060;user=phone",
            Scheme::Sip,
            Some("+49-30-1234567"),
            "gw.example.net",
            Some(5060),
            ";user=phone",
        ),
        (
            "sips:alice:secret@atlanta.example.com;transport=tls",
            Scheme::Sips,
            Some("alice"),
            "atlanta.example.com",
            None,
            ";transport=tls",
        ),
        (
            "tel:+1-201-555-0123;phone-context=example.com",
            Scheme::Tel,
            Some("+1-201-555-0123"),
            "",
            None,
            ";phone-context=example.com",
        ),
        (
            "sip:+12125551212;npdi;rn=+12125550000@gw.example.com;user=phone",
            Scheme::Sip,
            Some("+12125551212;npdi;rn=+12125550000"),
            "gw.example.com",
            None,
            ";user=phone",
        ),
        (
            "SIP:bob@[2001:db8::10]:5080",
            Scheme::Sip,
            Some("bob"),
            "[2001:db8::10]",
            Some(5080),
            "",
        ),
        (
            "sip:carol@chicago.example.com?Subject=conference&Priority=urgent",
            Scheme::Sip,
            Some("carol"),
            "chicago.example.com",
            None,
            "",
        ),
        (
            "sip:127.0.0.1:5080;transport=UDP",
            Scheme::Sip,
            None,
            "127.0.0.1",
            Some(5080),
            ";transport=UDP",
        ),
        ("urn:service:sos", Scheme::Other("urn"), None, "", None, ""),
    ];
    for (text, scheme, user, host, port, params) in cases {
        let packet = crlf(&format!(
            "\
OPTIONS {text} SIP/2.0
Via: SIP/2.0/UDP h;branch=z9hG4bK1
From: <sip:a@x>;tag=1
To: <{text}>
Call-ID: uris
CSeq: 1 OPTIONS

"
        ));
        let m = ok(&packet);
        for uri in [request_uri(&m), &m.to.uri] {
            assert_eq!(uri.scheme, scheme, "{text}");
            assert_eq!(uri.user, user, "{text}");
            assert_eq!(uri.host, host, "{text}");
            assert_eq!(uri.port, port, "{text}");
            assert_eq!(uri.params.as_str(), params, "{text}");
            assert_eq!(uri.raw, text);
            assert_eq!(uri.to_string(), text);
        }
    }
}

#[test]
fn number_strips_visual_separators_only_when_asked() {
    let packet = crlf(
        "\
INVITE tel:+1-(201)-555.0123 SIP/2.0
Via: SIP/2.0/UDP h;branch=z9hG4bK1
From: <sip:+12125551212;npdi;rn=+12125550000@gw.example.com;user=phone>;tag=1
To: <sip:0049301234567@gw.example.com;user=phone>
Call-ID: numbers
CSeq: 1 INVITE

",
    );
    let m = ok(&packet);
    let uri = request_uri(&m);
    assert_eq!(uri.user, Some("+1-(201)-555.0123"));
    assert_eq!(uri.number().as_deref(), Some("+12015550123"));
    assert_eq!(m.from.uri.number().as_deref(), Some("+12125551212"));
    assert_eq!(m.to.uri.number().as_deref(), Some("0049301234567"));
    assert_eq!(m.to.uri.params.get("USER"), Some("phone"));
}

#[test]
fn asserted_identity_diversion_remote_party_id_and_refer_to() {
    let packet = crlf("\
INVITE sip:+4930555@gw.example.net SIP/2.0
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-d
From: \"Anonymous\" <sip:anonymous@anonymous.invalid>;tag=a
To: <sip:+4930555@gw.example.net>
Call-ID: identities
CSeq: 1 INVITE
P-Asserted-Identity: \"Anna, Sales\" <sip:+4930111@pbx.example.net;user=phone>, <tel:+4930111>
Remote-Party-ID: \"Anna\" <sip:+4930111@pbx.example.net>;party=calling;privacy=full;screen=yes
Diversion: <sip:+4930222@pbx.example.net>;reason=unconditional;counter=1, <sip:+4930333@pbx.example.net>;reason=no-answer
Diversion: <tel:+4930444>;reason=user-busy
Refer-To: <sip:carol@example.net?Replaces=12345%40192.0.2.1%3Bto-tag%3D12345%3Bfrom-tag%3D5FFE-3994>
Content-Length: 0

");
    let m = ok(&packet);
    let identities: Vec<_> = m
        .addresses("P-Asserted-Identity")
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(identities.len(), 2);
    assert_eq!(identities[0].display_name().as_deref(), Some("Anna, Sales"));
    assert_eq!(identities[0].uri.user, Some("+4930111"));
    assert_eq!(identities[1].uri.scheme, Scheme::Tel);
    assert_eq!(m.p_asserted_identity().unwrap(), Some(identities[0]));

    let party = m.remote_party_id().unwrap().unwrap();
    assert_eq!(party.params.get("party"), Some("calling"));
    assert_eq!(party.params.get("privacy"), Some("full"));

    let diversions: Vec<_> = m
        .diversions()
        .map(|d| {
            let d = d.unwrap();
            (d.uri.number().unwrap().into_owned(), d.params.get("reason"))
        })
        .collect();
    assert_eq!(
        diversions,
        [
            ("+4930222".to_owned(), Some("unconditional")),
            ("+4930333".to_owned(), Some("no-answer")),
            ("+4930444".to_owned(), Some("user-busy")),
        ]
    );

    let refer_to = m.refer_to().unwrap().unwrap();
    assert_eq!(refer_to.uri.user, Some("carol"));
    assert!(refer_to.uri.headers.starts_with("Replaces=12345%40"));
    assert_eq!(refer_to.uri.params.as_str(), "");
}

#[test]
fn reasons_several_in_one_header_and_across_headers() {
    let packet = crlf("\
CANCEL sip:bob@example.com SIP/2.0
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-r
From: <sip:alice@example.com>;tag=a
To: <sip:bob@example.com>
Call-ID: reasons
CSeq: 1 CANCEL
Reason: SIP;cause=200;text=\"Call completed elsewhere\", Q.850 ; cause=26 ; text=\"non-selected user clearing, \\\"elsewhere\\\"\"
Reason: SIP;cause=487
Content-Length: 0

");
    let m = ok(&packet);
    let reasons: Vec<_> = m
        .reasons()
        .map(|r| {
            let r = r.unwrap();
            (r.protocol, r.cause, r.text().map(|t| t.into_owned()))
        })
        .collect();
    assert_eq!(
        reasons,
        [
            (
                "SIP",
                Some(200),
                Some("Call completed elsewhere".to_owned())
            ),
            (
                "Q.850",
                Some(26),
                Some("non-selected user clearing, \"elsewhere\"".to_owned())
            ),
            ("SIP", Some(487), None),
        ]
    );
}

#[test]
fn contacts_wildcard_and_lists() {
    let packet = crlf(
        "\
REGISTER sip:registrar.example.com SIP/2.0
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-c
From: <sip:alice@example.com>;tag=a
To: <sip:alice@example.com>
Call-ID: contacts
CSeq: 2 REGISTER
Contact: *
Expires: 0
Content-Length: 0

",
    );
    let m = ok(&packet);
    assert_eq!(m.contacts().next().unwrap().unwrap(), Contact::Wildcard);
    assert_eq!(m.expires().unwrap(), Some(0));

    let packet = crlf("\
SIP/2.0 200 OK
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-c
From: <sip:alice@example.com>;tag=a
To: <sip:alice@example.com>;tag=b
Call-ID: contacts
CSeq: 3 REGISTER
Contact: \"Desk, Phone\" <sip:alice@192.0.2.1>;expires=3600;q=0.9, <sip:alice@198.51.100.7:5062;transport=tcp>;expires=120
m: sip:alice@203.0.113.5;expires=60
Expires: 99999999999
Content-Length: 0

");
    let m = ok(&packet);
    let contacts: Vec<_> = m
        .contacts()
        .map(|c| match c.unwrap() {
            Contact::Address(a) => (a.uri.host, a.params.get("expires")),
            Contact::Wildcard => panic!("a wildcard"),
        })
        .collect();
    assert_eq!(
        contacts,
        [
            ("192.0.2.1", Some("3600")),
            ("198.51.100.7", Some("120")),
            ("203.0.113.5", Some("60")),
        ]
    );
    // RFC 3261 §10.2.1: a larger value is taken as 2^32 - 1.
    assert_eq!(m.expires().unwrap(), Some(u32::MAX));
}

#[test]
fn body_framing() {
    let head = "\
MESSAGE sip:bob@example.com SIP/2.0
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-b
From: <sip:alice@example.com>;tag=a
To: <sip:bob@example.com>
Call-ID: framing
CSeq: 1 MESSAGE
Content-Type: text/plain
";
    // Bytes after Content-Length are dropped (RFC 3261 §18.3).
    let mut packet = crlf(head);
    packet.extend_from_slice(b"Content-Length: 5\r\n\r\nhello, and more");
    assert_eq!(ok(&packet).body, b"hello");
    // No Content-Length: the rest of the datagram.
    let mut packet = crlf(head);
    packet.extend_from_slice(b"\r\nhello, and more");
    assert_eq!(ok(&packet).body, b"hello, and more");
    // CRLFs before the start line are skipped (§7.5).
    let mut packet = b"\r\n\r\n".to_vec();
    packet.extend(with_body(head, "hi"));
    assert_eq!(ok(&packet).body, b"hi");
    // Bare LF line ends are read as well.
    let mut packet = head.as_bytes().to_vec();
    packet.extend_from_slice(b"Content-Length: 2\n\nhi");
    let m = ok(&packet);
    assert_eq!((m.body, m.call_id), (b"hi".as_slice(), "framing"));
    // A binary body is fine; it is not SDP.
    let mut packet = crlf(head);
    packet.extend_from_slice(b"Content-Length: 3\r\n\r\n\xff\x00\xfe");
    let m = ok(&packet);
    assert_eq!(m.body, b"\xff\x00\xfe");
    assert_eq!(m.sdp().unwrap(), None);
    // A message without its empty line is all headers.
    let packet = crlf(head);
    assert_eq!(ok(&packet).body, b"");
}

#[test]
fn sdp_inside_a_multipart_body() {
    let body = "\
--unique-boundary-1
Content-Type: application/sdp

v=0
o=- 1 2 IN IP4 192.0.2.9
s=-
c=IN IP4 192.0.2.9
t=0 0
m=audio 20000 RTP/AVP 8 101
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
--unique-boundary-1
Content-Type: application/isup; version=itu-t92+
Content-Disposition: signal; handling=optional

\u{1}\u{0}ISUP
--unique-boundary-1--
";
    let head = "\
INVITE sip:+4930123@gw.example.net SIP/2.0
Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK-mp
From: <sip:+4930999@192.0.2.9>;tag=mp
To: <sip:+4930123@gw.example.net>
Call-ID: multipart
CSeq: 1 INVITE
MIME-Version: 1.0
Content-Type: multipart/mixed;boundary=unique-boundary-1
";
    let packet = with_body(head, body);
    let m = ok(&packet);
    let sdp = m.sdp().unwrap().unwrap();
    let audio = &sdp.media[0];
    assert_eq!(audio.port, 20000);
    assert_eq!(audio.formats().collect::<Vec<_>>(), ["8", "101"]);
    assert_eq!(audio.codec_name(8), Some("PCMA"));
    assert_eq!(audio.codec_name(101), Some("telephone-event"));
    assert_eq!(
        audio.attributes[1],
        Attribute {
            name: "fmtp",
            value: Some("101 0-15")
        }
    );

    // The same with a quoted boundary and only the ISUP part: no SDP.
    let only_isup = body
        .split("--unique-boundary-1\n")
        .nth(2)
        .map(|isup| format!("--unique-boundary-1\n{isup}"))
        .unwrap();
    let packet = with_body(
        &head.replace(
            "boundary=unique-boundary-1",
            "boundary=\"unique-boundary-1\"",
        ),
        &only_isup,
    );
    assert_eq!(ok(&packet).sdp().unwrap(), None);
}

#[test]
fn sdp_directions_hold_and_disabled_streams() {
    let text = crlf(
        "\
v=0
o=- 20518 0 IN IP4 203.0.113.1
s= 
c=IN IP4 0.0.0.0
t=0 0
a=sendonly
m=audio 54400 RTP/SAVPF 0 96
a=rtpmap:96 opus/48000/2
m=video 0 RTP/AVP 31
m=audio 54402/2 RTP/AVP 18
c=IN IP4 224.2.1.1/127/3
a=recvonly
a=inactive
",
    );
    let sdp = Sdp::parse(&text).unwrap();
    assert_eq!(sdp.direction, Some(Direction::SendOnly));
    assert_eq!(
        sdp.attributes,
        [Attribute {
            name: "sendonly",
            value: None
        }]
    );
    let [first, video, last] = sdp.media.as_slice() else {
        panic!("{sdp:?}")
    };
    // The session's direction and c= apply where a stream has none.
    assert_eq!(first.direction, Direction::SendOnly);
    assert!(first.connection.unwrap().is_unspecified());
    assert!(first.is_on_hold());
    let opus = first.rtpmaps().next().unwrap();
    assert_eq!(
        (opus.encoding, opus.clock_rate, opus.parameters),
        ("opus", 48000, Some("2"))
    );
    assert!(video.is_disabled());
    assert_eq!(video.codec_name(31), Some("H261"));
    // The stream's own lines win; the last direction counts.
    assert_eq!(last.direction, Direction::Inactive);
    assert_eq!(last.port_count, Some(2));
    assert_eq!(last.connection.unwrap().address, "224.2.1.1");
    assert_eq!(last.codec_name(18), Some("G729"));
    assert_eq!(last.codec_name(99), None);
    assert!(sdp.is_on_hold());

    // c=0.0.0.0 alone is the RFC 2543 hold; the disabled stream does not
    // count either way.
    let old_hold =
        Sdp::parse(b"v=0\nc=IN IP4 0.0.0.0\nm=audio 4000 RTP/AVP 0\nm=video 0 RTP/AVP 31\n")
            .unwrap();
    assert_eq!(old_hold.media[0].direction, Direction::SendRecv);
    assert!(old_hold.is_on_hold());
    // Nothing but disabled streams is not a hold.
    let all_disabled = Sdp::parse(b"v=0\r\nm=audio 0 RTP/AVP 0\r\n").unwrap();
    assert!(!all_disabled.is_on_hold());
    assert_eq!(static_payload_name(8), Some("PCMA"));
    assert_eq!(static_payload_name(96), None);
}

// ---------------------------------------------------------------------------
// Errors: one sentence each

const GOOD_HEAD: &str = "\
INVITE sip:bob@example.com SIP/2.0
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-e
From: <sip:alice@example.com>;tag=a
To: <sip:bob@example.com>
Call-ID: errors
CSeq: 1 INVITE
";

/// GOOD_HEAD with `line` (1-based) replaced by `with`, or removed if empty.
fn changed(line: usize, with: &str) -> Vec<u8> {
    let mut lines: Vec<&str> = GOOD_HEAD.lines().collect();
    if with.is_empty() {
        lines.remove(line - 1);
    } else {
        lines[line - 1] = with;
    }
    crlf(&format!("{}\nContent-Length: 0\n\n", lines.join("\n")))
}

#[test]
fn packet_level_errors() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"".to_vec(), "the packet is empty"),
        (
            b"\r\n\r\n".to_vec(),
            "the packet holds only line breaks (a keep-alive), no message",
        ),
        (
            b"HELLO\r\n\r\n".to_vec(),
            "start line is neither a request nor a SIP/2.0 response: \"HELLO\"",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            "start line is neither a request nor a SIP/2.0 response: \"GET / HTTP/1.1\"",
        ),
        (
            changed(1, "INVITE sip:bob@example.com SIP/3.0"),
            "the request line has version \"SIP/3.0\", not SIP/2.0",
        ),
        (
            changed(1, "INVITE bob@example.com SIP/2.0"),
            "the request line has URI \"bob@example.com\" with no scheme such as sip:",
        ),
        (
            changed(1, "INVITE sip:bob@example.com:99999 SIP/2.0"),
            "the request line has URI \"sip:bob@example.com:99999\" with port \"99999\", not a number from 0 to 65535",
        ),
        (
            b"SIP/2.1 200 OK\r\n\r\n".to_vec(),
            "the status line has version \"SIP/2.1\", not SIP/2.0",
        ),
        (
            b"SIP/2.0 2000 OK\r\n\r\n".to_vec(),
            "the status line has status code \"2000\", not a number from 100 to 699",
        ),
        (
            b"SIP/2.0 099 Early\r\n\r\n".to_vec(),
            "the status line has status code \"099\", not a number from 100 to 699",
        ),
        (
            changed(2, "Via SIP/2.0/UDP"),
            "line 2 has no colon: \"Via SIP/2.0/UDP\"",
        ),
        (
            changed(2, "Via SIP/2.0/UDP 192.0.2.1:5060"),
            "line 2 does not start with a header name and a colon: \"Via SIP/2.0/UDP 192.0.2.1:5060\"",
        ),
        (
            changed(2, " folded: onto nothing"),
            "line 2 starts with white space but continues no header: \" folded: onto nothing\"",
        ),
        (changed(5, ""), "the message has no Call-ID header"),
        (changed(6, ""), "the message has no CSeq header"),
        (changed(3, ""), "the message has no From header"),
        (changed(4, ""), "the message has no To header"),
        (
            changed(5, "Call-ID: two words"),
            "the Call-ID header on line 5 is empty or has white space in it: \"two words\"",
        ),
        (
            changed(6, "CSeq: INVITE"),
            "the CSeq header on line 6 does not start with a sequence number: \"INVITE\"",
        ),
        (
            changed(6, "CSeq: 2147483648 INVITE"),
            "the CSeq header on line 6 has sequence number 2147483648, 2^31 or more: \"2147483648 INVITE\"",
        ),
        (
            changed(6, "CSeq: 1 BYE"),
            "the CSeq header on line 6 names method BYE, not the request's INVITE: \"1 BYE\"",
        ),
        (
            changed(6, "CSeq: 1"),
            "the CSeq header on line 6 has no space between the sequence number and the method: \"1\"",
        ),
        (
            changed(3, "From: <sip:alice@example.com;tag=a"),
            "the From header on line 3 has no closing \">\": \"<sip:alice@example.com;tag=a\"",
        ),
        (
            changed(3, "From: \"Alice <sip:alice@example.com>;tag=a"),
            "the From header on line 3 has a display name with no closing quote: \"\\\"Alice <sip:alice@example.com>;tag=a\"",
        ),
        (
            changed(4, "To: Bob"),
            "the To header on line 4 has URI \"Bob\" with no scheme such as sip:: \"Bob\"",
        ),
        (
            changed(4, "To: <sip:>"),
            "the To header on line 4 has URI \"sip:\" with no host: \"<sip:>\"",
        ),
        (
            changed(2, "Via: SIP/1.0/UDP 192.0.2.1"),
            "the Via header on line 2 names protocol SIP/1.0, not SIP/2.0: \"SIP/1.0/UDP 192.0.2.1\"",
        ),
        (
            changed(2, "Via: 192.0.2.1:5060"),
            "the Via header on line 2 does not start with a protocol such as \"SIP/2.0/UDP\": \"192.0.2.1:5060\"",
        ),
        (
            changed(2, "Via: SIP/2.0/UDP [2001:db8::1;branch=x"),
            "the Via header on line 2 has an IPv6 address with no closing \"]\": \"SIP/2.0/UDP [2001:db8::1;branch=x\"",
        ),
    ];
    for (packet, sentence) in cases {
        assert_eq!(
            error(&packet),
            sentence,
            "{}",
            String::from_utf8_lossy(&packet)
        );
    }
}

#[test]
fn content_length_errors() {
    let mut short = crlf(GOOD_HEAD);
    short.extend_from_slice(b"Content-Length: 300\r\n\r\n");
    short.extend_from_slice(&[b'x'; 120]);
    assert_eq!(
        error(&short),
        "Content-Length says 300 but the body has 120 bytes"
    );
    let mut not_a_number = crlf(GOOD_HEAD);
    not_a_number.extend_from_slice(b"l: 12a\r\n\r\n");
    assert_eq!(
        error(&not_a_number),
        "the Content-Length header on line 7 is not a number of bytes: \"12a\""
    );
    let mut huge = crlf(GOOD_HEAD);
    huge.extend_from_slice(b"Content-Length: 99999999999999999999999\r\n\r\n");
    assert_eq!(
        error(&huge),
        "the Content-Length header on line 7 is larger than any packet: \"99999999999999999999999\""
    );
    let mut two = crlf(GOOD_HEAD);
    two.extend_from_slice(b"Content-Length: 0\r\nl: 4\r\n\r\nabcd");
    assert_eq!(error(&two), "Content-Length is 0 on line 7 but 4 on line 8");
    let mut same_twice = crlf(GOOD_HEAD);
    same_twice.extend_from_slice(b"Content-Length: 4\r\nl: 4\r\n\r\nabcd");
    assert_eq!(ok(&same_twice).body, b"abcd");
}

#[test]
fn a_header_that_is_not_utf8_names_its_line() {
    let mut packet = crlf(GOOD_HEAD);
    let at = packet.len();
    packet.extend_from_slice(b"Subject: M\xfcller\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(
        error(&packet),
        format!(
            "line 7 is not UTF-8 (byte 0xFC at offset {})",
            at + "Subject: M".len()
        )
    );
    // The fallback the module documents: parse a lossy copy.
    let lossy = String::from_utf8_lossy(&packet);
    let m = ok(lossy.as_bytes());
    assert_eq!(m.header("Subject"), Some("M\u{fffd}ller"));
}

#[test]
fn errors_of_headers_read_when_asked() {
    let mut packet = crlf(GOOD_HEAD);
    packet.extend(crlf(
        "\
Max-Forwards: seventy
Expires: -1
Contact: <sip:alice@192.0.2.1
Reason: Q.850;cause=sixteen
Reason: ;cause=16
Diversion: tel:
Content-Type: sdp
P-Asserted-Identity: \"Anna\" sip:anna@example.com
Content-Length: 0

",
    ));
    let m = ok(&packet);
    let sentence = |e: SipError| e.to_string();
    assert_eq!(
        sentence(m.max_forwards().unwrap_err()),
        "the Max-Forwards header on line 7 is not a number: \"seventy\""
    );
    assert_eq!(
        sentence(m.expires().unwrap_err()),
        "the Expires header on line 8 is not a number: \"-1\""
    );
    assert_eq!(
        sentence(m.contacts().next().unwrap().unwrap_err()),
        "the Contact header on line 9 has no closing \">\": \"<sip:alice@192.0.2.1\""
    );
    let reasons: Vec<_> = m.reasons().map(|r| sentence(r.unwrap_err())).collect();
    assert_eq!(
        reasons,
        [
            "the Reason header on line 10 has cause \"sixteen\", not a number: \"Q.850;cause=sixteen\"",
            "the Reason header on line 11 does not start with a protocol such as Q.850 or SIP: \";cause=16\""
        ]
    );
    assert_eq!(
        sentence(m.diversions().next().unwrap().unwrap_err()),
        "the Diversion header on line 12 has tel URI \"tel:\" with no number: \"tel:\""
    );
    assert_eq!(
        sentence(m.content_type().unwrap_err()),
        "the Content-Type header on line 13 is not a media type such as application/sdp: \"sdp\""
    );
    assert_eq!(
        sentence(m.p_asserted_identity().unwrap_err()),
        "the P-Asserted-Identity header on line 14 has a quoted display name not followed by \"<\": \"\\\"Anna\\\" sip:anna@example.com\""
    );
}

#[test]
fn sdp_errors() {
    let cases: [(&[u8], &str); 7] = [
        (
            b"v=0\r\nthis is not sdp\r\n",
            "SDP line 2 is not of the form x=value: \"this is not sdp\"",
        ),
        (
            b"v=0\r\no=alice 1 2 IN IP4\r\n",
            "SDP line 2 does not have the six fields of an origin: \"o=alice 1 2 IN IP4\"",
        ),
        (
            b"v=0\r\nc=IN IP4\r\n",
            "SDP line 2 does not have the three fields of a connection: \"c=IN IP4\"",
        ),
        (
            b"v=0\r\nm=audio\r\n",
            "SDP line 2 does not have the media, port and proto fields of a media line: \"m=audio\"",
        ),
        (
            b"v=0\r\nm=audio 70000 RTP/AVP 0\r\n",
            "SDP line 2 has port \"70000\", not a number from 0 to 65535: \"m=audio 70000 RTP/AVP 0\"",
        ),
        (
            b"v=0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:zero PCMU/8000\r\n",
            "SDP line 3 is not an rtpmap of the form a=rtpmap:<payload type> <encoding>/<clock rate>: \"a=rtpmap:zero PCMU/8000\"",
        ),
        (
            b"v=0\r\ns=M\xfcller\r\n",
            "the SDP body is not UTF-8 (byte 0xFC at offset 8)",
        ),
    ];
    for (body, sentence) in cases {
        assert_eq!(Sdp::parse(body).unwrap_err().to_string(), sentence);
    }

    let head = GOOD_HEAD.to_owned() + "Content-Type: multipart/mixed\n";
    let packet = with_body(&head, "--b\r\n\r\nv=0\r\n--b--\r\n");
    assert_eq!(
        ok(&packet).sdp().unwrap_err().to_string(),
        "the multipart Content-Type has no boundary parameter"
    );
    let head = GOOD_HEAD.to_owned() + "Content-Type: multipart/mixed;boundary=xyz\n";
    let packet = with_body(&head, "no delimiter here");
    assert_eq!(
        ok(&packet).sdp().unwrap_err().to_string(),
        "the multipart body has no \"--xyz\" delimiter line"
    );
}

// ---------------------------------------------------------------------------
// Properties

/// Reads everything a message offers, so that nothing lazily parsed
/// escapes the property tests.
fn read_everything(packet: &[u8]) {
    let Ok(m) = parse(packet) else {
        return;
    };
    let _ = (m.method(), m.status_code(), m.request_uri(), m.is_request());
    let _ = (m.from.display_name(), m.to.tag(), m.from.uri.number());
    for header in m.headers() {
        let _ = (header.canonical_name(), header.unfolded());
        let _ = m.header(header.name);
    }
    m.vias().for_each(drop);
    m.contacts().for_each(drop);
    m.reasons().for_each(|r| {
        let _ = r.map(|r| r.text());
    });
    for name in ["Route", "Record-Route", "P-Asserted-Identity", "Diversion"] {
        m.addresses(name).for_each(|a| {
            let _ = a.map(|a| (a.display_name(), a.uri.number()));
        });
    }
    let _ = (
        m.max_forwards(),
        m.expires(),
        m.content_type(),
        m.refer_to(),
    );
    let _ = (m.p_asserted_identity(), m.remote_party_id());
    if let Ok(Some(sdp)) = m.sdp() {
        let _ = sdp.is_on_hold();
        for media in &sdp.media {
            let _ = (media.formats().count(), media.rtpmaps().count());
            let _ = (media.codec_name(0), media.is_on_hold());
        }
    }
}

/// Header lines that exercise every parser, some of them broken.
fn any_header_line() -> impl Strategy<Value = String> {
    let names = prop_oneof![
        Just("Via"),
        Just("v"),
        Just("From"),
        Just("To"),
        Just("Call-ID"),
        Just("CSeq"),
        Just("Contact"),
        Just("m"),
        Just("Content-Length"),
        Just("Content-Type"),
        Just("Reason"),
        Just("Max-Forwards"),
        Just("Expires"),
        Just("Diversion"),
        Just("P-Asserted-Identity"),
        Just("X-CID"),
        Just(" "),
    ];
    let pieces = prop_oneof![
        Just("SIP/2.0/UDP "),
        Just("[::1]:5060"),
        Just(";branch=z9hG4bK"),
        Just("\"A \\\" b\" "),
        Just("<sip:"),
        Just("tel:+1-2"),
        Just("@host:"),
        Just(">"),
        Just(";tag="),
        Just(", "),
        Just("1 INVITE"),
        Just("Q.850;cause="),
        Just("application/sdp"),
        Just("multipart/mixed;boundary=b"),
        Just("\r\n "),
        Just("\""),
        Just("\\"),
        Just("é"),
        Just("12"),
        Just(";"),
        Just("="),
    ];
    (names, vec(pieces, 0..8)).prop_map(|(name, pieces)| format!("{name}: {}\r\n", pieces.concat()))
}

fn plausible_message() -> impl Strategy<Value = Vec<u8>> {
    let start = prop_oneof![
        Just("INVITE sip:bob@example.com SIP/2.0\r\n"),
        Just("SIP/2.0 200 OK\r\n"),
        Just("BYE tel:+1 SIP/2.0\r\n"),
    ];
    let body = prop_oneof![
        Just(b"".to_vec()),
        Just(ALICE_SDP.as_bytes().to_vec()),
        vec(any::<u8>(), 0..64),
        Just(
            b"--b\r\nContent-Type: application/sdp\r\n\r\nv=0\r\nm=audio 1 RTP/AVP 0\r\n--b--"
                .to_vec()
        ),
    ];
    (start, vec(any_header_line(), 0..12), body).prop_map(|(start, headers, body)| {
        let mut out = start.as_bytes().to_vec();
        out.extend(headers.concat().into_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend(body);
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// No bytes make the parser or any reader panic.
    #[test]
    fn parse_never_panics(packet in prop_oneof![vec(any::<u8>(), 0..2000), plausible_message()]) {
        read_everything(&packet);
        let _ = Sdp::parse(&packet);
    }

    /// Every truncation of a capture parses or errors, never panics; a cut
    /// inside the body is the Content-Length sentence.
    #[test]
    fn truncated_captures_never_panic(which in 0usize..26, cut in 0usize..700) {
        let (name, packet) = captures()[which];
        let cut = cut.min(packet.len());
        let truncated = &packet[..cut];
        read_everything(truncated);
        let full = parse(packet).unwrap();
        let body_start = packet.len() - full.body.len();
        if cut >= body_start && cut < packet.len() {
            let sentence = format!(
                "Content-Length says {} but the body has {} bytes",
                full.body.len(),
                cut - body_start
            );
            prop_assert_eq!(error(truncated), sentence, "{}", name);
        }
    }

    /// A changed byte anywhere in a capture never makes it panic.
    #[test]
    fn changed_captures_never_panic(which in 0usize..26, at in 0usize..700, byte in any::<u8>()) {
        let mut packet = captures()[which].1.to_vec();
        let at = at % packet.len();
        packet[at] = byte;
        read_everything(&packet);
    }
}

#[test]
fn every_capture_parses() {
    assert_eq!(captures().len(), 26);
    for (name, packet) in captures() {
        let m = parse(packet).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(m.call_id.ends_with("@127.0.0.1"), "{name}");
        m.vias().for_each(|v| assert!(v.is_ok(), "{name}"));
        assert!(m.sdp().is_ok(), "{name}");
    }
}
