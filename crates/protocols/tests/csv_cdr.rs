//! CSV CDR files against the fixtures in `tests/data/csv/` (see the README
//! there): every field of representative rows of each format, the column
//! layouts Asterisk writes, per-line errors, the generic mapping, and
//! property tests (decode never panics, line numbers stay in the file).

use cdrhub_model::{Direction, Disposition, Timestamp};
use cdrhub_protocols::csv_cdr::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/data/csv/",
            $name
        ))
    };
}

fn t(rfc3339: &str) -> Timestamp {
    Timestamp::parse_rfc3339(rfc3339).unwrap()
}

fn s(text: &str) -> Option<String> {
    Some(text.to_owned())
}

fn extra(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A row with nothing but its line and start; the tests fill the rest.
fn row(line: usize, started_at: &str) -> CsvCdr {
    CsvCdr {
        line,
        id: String::new(),
        call_id: String::new(),
        leg: None,
        caller: None,
        caller_name: None,
        dialed: None,
        destination: None,
        direction: None,
        started_at: t(started_at),
        answered_at: None,
        ended_at: None,
        duration_s: None,
        talk_s: None,
        disposition: None,
        cause: None,
        q850_cause: None,
        sip_status: None,
        extra: BTreeMap::new(),
    }
}

fn zone(name: &str) -> CsvOptions {
    CsvOptions {
        time_zone: name.parse().unwrap(),
        ..CsvOptions::default()
    }
}

fn decode_ok(format: &CsvFormat, options: &CsvOptions, data: &[u8]) -> Vec<CsvCdr> {
    decode(format, options, data)
        .into_iter()
        .map(|r| r.unwrap())
        .collect()
}

// ---- Asterisk ----------------------------------------------------------

fn asterisk() -> Vec<CsvCdr> {
    decode_ok(
        &CsvFormat::Asterisk,
        &zone("Europe/Berlin"),
        fixture!("asterisk-Master.csv"),
    )
}

#[test]
fn asterisk_answered_call_every_field() {
    let cdrs = asterisk();
    assert_eq!(cdrs.len(), 9);
    assert_eq!(
        cdrs[0],
        CsvCdr {
            id: "1710491400.0/1".to_owned(),
            call_id: "1710491400.0".to_owned(),
            leg: s("PJSIP/201-00000000"),
            caller: s("201"),
            caller_name: s("Alice"),
            dialed: s("202"),
            // Europe/Berlin is UTC+1 in March before the 31st.
            answered_at: Some(t("2024-03-15T08:30:04Z")),
            ended_at: Some(t("2024-03-15T08:31:10Z")),
            duration_s: Some(70),
            talk_s: Some(66),
            disposition: Some(Disposition::Answered),
            cause: s("ANSWERED"),
            extra: extra(&[
                ("amaflags", "DOCUMENTATION"),
                ("clid", "\"Alice\" <201>"),
                ("dcontext", "from-internal"),
                ("dstchannel", "PJSIP/202-00000001"),
                ("lastapp", "Dial"),
                ("lastdata", "PJSIP/202,30,tT"),
                ("sequence", "1"),
            ]),
            ..row(1, "2024-03-15T08:30:00Z")
        }
    );
}

#[test]
fn asterisk_unanswered_calls() {
    let cdrs = asterisk();
    assert_eq!(
        cdrs[1],
        CsvCdr {
            id: "1710492000.2/3".to_owned(),
            call_id: "1710492000.2".to_owned(),
            leg: s("PJSIP/201-00000002"),
            caller: s("201"),
            caller_name: s("Alice"),
            dialed: s("203"),
            ended_at: Some(t("2024-03-15T08:40:30Z")),
            duration_s: Some(30),
            talk_s: Some(0),
            disposition: Some(Disposition::NoAnswer),
            cause: s("NO ANSWER"),
            extra: extra(&[
                ("amaflags", "DOCUMENTATION"),
                ("clid", "\"Alice\" <201>"),
                ("dcontext", "from-internal"),
                ("dstchannel", "PJSIP/203-00000003"),
                ("lastapp", "Dial"),
                ("lastdata", "PJSIP/203,30,tT"),
                ("sequence", "3"),
            ]),
            ..row(2, "2024-03-15T08:40:00Z")
        }
    );
    assert_eq!(
        cdrs[2],
        CsvCdr {
            id: "1710492300.4/5".to_owned(),
            call_id: "1710492300.4".to_owned(),
            leg: s("PJSIP/202-00000004"),
            caller: s("202"),
            caller_name: s("Bob"),
            dialed: s("201"),
            ended_at: Some(t("2024-03-15T08:45:05Z")),
            duration_s: Some(5),
            talk_s: Some(0),
            disposition: Some(Disposition::Busy),
            cause: s("BUSY"),
            extra: extra(&[
                ("accountcode", "sales"),
                ("amaflags", "BILLING"),
                ("clid", "\"Bob\" <202>"),
                ("dcontext", "from-internal"),
                ("dstchannel", "PJSIP/201-00000005"),
                ("lastapp", "Dial"),
                ("lastdata", "PJSIP/201,30,tT"),
                ("peeraccount", "sales"),
                ("sequence", "5"),
                ("userfield", "callback-requested"),
            ]),
            ..row(3, "2024-03-15T08:45:00Z")
        }
    );
    assert_eq!(cdrs[3].disposition, Some(Disposition::Failed));
    assert_eq!(cdrs[3].cause.as_deref(), Some("FAILED"));
    assert_eq!(cdrs[3].dialed.as_deref(), Some("004930123456"));
    assert!(!cdrs[3].extra.contains_key("dstchannel"));
    assert_eq!(cdrs[4].disposition, Some(Disposition::Failed));
    assert_eq!(cdrs[4].cause.as_deref(), Some("CONGESTION"));
    assert_eq!(cdrs[4].duration_s, Some(0));
}

#[test]
fn asterisk_transfer_rows_share_the_linkedid_and_keep_their_own_ids() {
    let cdrs = asterisk();
    let transfer: Vec<(&str, &str, Option<&str>, Option<&str>)> = cdrs[5..8]
        .iter()
        .map(|c| {
            (
                c.id.as_str(),
                c.call_id.as_str(),
                c.leg.as_deref(),
                c.extra.get("dstchannel").map(String::as_str),
            )
        })
        .collect();
    assert_eq!(
        transfer,
        vec![
            (
                "1710493200.8/9",
                "1710493200.8",
                Some("PJSIP/201-00000008"),
                Some("PJSIP/202-00000009")
            ),
            (
                "1710493220.10/10",
                "1710493200.8",
                Some("PJSIP/202-0000000a"),
                Some("PJSIP/203-0000000b")
            ),
            (
                "1710493200.8/11",
                "1710493200.8",
                Some("PJSIP/201-00000008"),
                Some("PJSIP/203-0000000b")
            ),
        ]
    );
    let mut ids: Vec<&str> = cdrs.iter().map(|c| c.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), cdrs.len(), "every row has its own id");
}

#[test]
fn asterisk_caller_id_with_a_comma_inside_quotes() {
    let cdr = &asterisk()[8];
    assert_eq!(cdr.caller_name.as_deref(), Some("Smith, John"));
    assert_eq!(cdr.caller.as_deref(), Some("204"));
    assert_eq!(cdr.extra["clid"], "\"Smith, John\" <204>");
    assert_eq!(cdr.answered_at, Some(t("2024-03-15T09:05:02Z")));
}

/// The fixture's first line cut to `count` columns of the 21, keeping
/// the optional columns `keep` (16 uniqueid, 17 userfield, 18.. new ones).
fn asterisk_line(keep: &[usize], userfield: &str) -> String {
    let line = std::str::from_utf8(fixture!("asterisk-Master.csv"))
        .unwrap()
        .lines()
        .next()
        .unwrap();
    let mut fields: Vec<String> = line.split(',').map(str::to_owned).collect();
    // The lastdata "PJSIP/202,30,tT" holds two commas: glue it back.
    let lastdata = fields[8..11].join(",");
    fields.splice(8..11, [lastdata]);
    fields[17] = format!("\"{userfield}\"");
    let mut out: Vec<String> = fields[..16].to_vec();
    out.extend(keep.iter().map(|&i| fields[i].clone()));
    out.join(",")
}

#[test]
fn asterisk_every_column_layout_cdr_csv_writes() {
    let decode_one = |line: String| {
        let mut all = decode(
            &CsvFormat::Asterisk,
            &CsvOptions::default(),
            line.as_bytes(),
        );
        assert_eq!(all.len(), 1);
        all.remove(0)
    };
    let hex = |id: &str| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());

    // 16: no ids at all.
    let c = decode_one(asterisk_line(&[], "")).unwrap();
    assert!(hex(&c.id), "{}", c.id);
    assert_eq!(c.call_id, c.id);
    assert_eq!(c.started_at, t("2024-03-15T09:30:00Z"));
    // 17, loguniqueid.
    let c = decode_one(asterisk_line(&[16], "")).unwrap();
    assert!(c.id.starts_with("1710491400.0/") && c.id.len() == "1710491400.0/".len() + 12);
    assert_eq!(c.call_id, "1710491400.0");
    // 17, loguserfield.
    let c = decode_one(asterisk_line(&[17], "vip")).unwrap();
    assert!(hex(&c.id));
    assert_eq!(c.extra["userfield"], "vip");
    // 18, both (the sample cdr.conf).
    let c = decode_one(asterisk_line(&[16, 17], "vip")).unwrap();
    assert_eq!(c.call_id, "1710491400.0");
    assert_eq!(c.extra["userfield"], "vip");
    // 19, newcdrcolumns only: linkedid ties the call, no uniqueid.
    let c = decode_one(asterisk_line(&[18, 19, 20], "")).unwrap();
    assert!(hex(&c.id));
    assert_eq!(c.call_id, "1710491400.0");
    assert_eq!(c.extra["sequence"], "1");
    // 20, loguniqueid and newcdrcolumns.
    let c = decode_one(asterisk_line(&[16, 18, 19, 20], "")).unwrap();
    assert_eq!(c.id, "1710491400.0/1");
    // 20, loguserfield and newcdrcolumns.
    let c = decode_one(asterisk_line(&[17, 18, 19, 20], "vip")).unwrap();
    assert!(hex(&c.id));
    assert_eq!(c.extra["userfield"], "vip");
    // 22 is no layout.
    let e = decode_one(asterisk_line(&[16, 17, 18, 19, 20, 20], "")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 1: has 22 columns, an Asterisk cdr_csv line has 16 to 21"
    );
}

#[test]
fn broken_lines_are_errors_of_their_own_and_good_lines_still_decode() {
    let got: Vec<Result<(usize, String), String>> = decode(
        &CsvFormat::Asterisk,
        &CsvOptions::default(),
        fixture!("asterisk-broken.csv"),
    )
    .into_iter()
    .map(|r| r.map(|c| (c.line, c.id)).map_err(|e| e.to_string()))
    .collect();
    let id = |line: usize| {
        got.iter()
            .flatten()
            .find(|(l, _)| *l == line)
            .unwrap()
            .1
            .clone()
    };
    assert_eq!(
        got,
        vec![
            Ok((1, id(1))),
            Err("line 2: has 12 columns, an Asterisk cdr_csv line has 16 to 21".to_owned()),
            Err("line 3: column \"start\" is \"2024-02-30 08:10:00\", not a date and time such as 2024-03-15 09:30:00".to_owned()),
            Ok((4, id(4))),
            Err("line 6: column \"duration\" is \"abc\", not a number of seconds".to_owned()),
            Ok((8, id(8))),
        ]
    );
    let cdrs: Vec<CsvCdr> = decode(
        &CsvFormat::Asterisk,
        &CsvOptions::default(),
        fixture!("asterisk-broken.csv"),
    )
    .into_iter()
    .flatten()
    .collect();
    // usegmtime=yes: the times are UTC.
    assert_eq!(cdrs[0].started_at, t("2024-03-16T08:00:00Z"));
    assert_eq!(cdrs[1].extra["lastdata"], "welcome\nmenu");
    assert_eq!(cdrs[1].extra["userfield"], "ivr-visit");
    assert_eq!(cdrs[1].call_id, "1710576900.22");
    assert_eq!(cdrs[2].disposition, Some(Disposition::NoAnswer));
}

#[test]
fn asterisk_empty_start_is_an_error_naming_the_column() {
    let line = asterisk_line(&[16, 17], "").replace("\"2024-03-15 09:30:00\"", "");
    let e = decode(
        &CsvFormat::Asterisk,
        &CsvOptions::default(),
        line.as_bytes(),
    );
    assert_eq!(
        e[0].as_ref().unwrap_err().message,
        "column \"start\" is empty, it must hold the start of the call"
    );
}

// ---- FreeSWITCH --------------------------------------------------------

fn freeswitch() -> Vec<CsvCdr> {
    decode_ok(
        &CsvFormat::FreeSwitch,
        &CsvOptions::default(),
        fixture!("freeswitch-Master.csv"),
    )
}

const A_LEG: &str = "3f9a5b2e-6c1d-4e8f-9a0b-1c2d3e4f5a6b";
const B_LEG: &str = "7c8d9e0f-1a2b-4c3d-8e4f-5a6b7c8d9e0f";

#[test]
fn freeswitch_bridged_call_both_legs_every_field() {
    let cdrs = freeswitch();
    assert_eq!(cdrs.len(), 8);
    let answered = CsvCdr {
        caller: s("1000"),
        caller_name: s("Alice"),
        dialed: s("1001"),
        answered_at: Some(t("2024-03-15T11:00:05Z")),
        ended_at: Some(t("2024-03-15T11:01:05Z")),
        duration_s: Some(65),
        talk_s: Some(60),
        disposition: Some(Disposition::Answered),
        cause: s("NORMAL_CLEARING"),
        q850_cause: Some(16),
        ..row(1, "2024-03-15T11:00:00Z")
    };
    assert_eq!(
        cdrs[0],
        CsvCdr {
            id: B_LEG.to_owned(),
            call_id: A_LEG.to_owned(),
            leg: s("B"),
            extra: extra(&[
                ("context", "default"),
                ("read_codec", "PCMU"),
                ("write_codec", "PCMU"),
            ]),
            ..answered.clone()
        }
    );
    assert_eq!(
        cdrs[1],
        CsvCdr {
            line: 2,
            id: A_LEG.to_owned(),
            call_id: A_LEG.to_owned(),
            leg: s("A"),
            extra: extra(&[
                ("accountcode", "1000"),
                ("bleg_uuid", B_LEG),
                ("context", "default"),
                ("read_codec", "PCMU"),
                ("write_codec", "PCMU"),
            ]),
            ..answered
        }
    );
}

#[test]
fn freeswitch_hangup_causes() {
    let cdrs = freeswitch();
    assert_eq!(
        cdrs[2],
        CsvCdr {
            id: "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d".to_owned(),
            call_id: "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d".to_owned(),
            caller: s("1000"),
            caller_name: s("Alice"),
            dialed: s("1002"),
            ended_at: Some(t("2024-03-15T11:05:07Z")),
            duration_s: Some(7),
            talk_s: Some(0),
            disposition: Some(Disposition::Busy),
            cause: s("USER_BUSY"),
            q850_cause: Some(17),
            extra: extra(&[
                ("accountcode", "1000"),
                ("context", "default"),
                ("read_codec", "PCMU"),
                ("write_codec", "PCMU"),
            ]),
            ..row(3, "2024-03-15T11:05:00Z")
        }
    );
    let summary: Vec<(Option<Disposition>, Option<u16>, Option<&str>)> = cdrs[3..7]
        .iter()
        .map(|c| (c.disposition, c.q850_cause, c.leg.as_deref()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (Some(Disposition::NoAnswer), Some(19), None),
            (Some(Disposition::Cancelled), None, None),
            (Some(Disposition::Rejected), Some(21), None),
            (Some(Disposition::Failed), Some(1), None),
        ]
    );
    let unallocated = &cdrs[6];
    assert_eq!(unallocated.caller_name, None);
    assert_eq!(unallocated.caller.as_deref(), Some("+4930123456"));
    assert_eq!(unallocated.extra, extra(&[("context", "public")]));
    let smith = &cdrs[7];
    assert_eq!(smith.caller_name.as_deref(), Some("Smith, John"));
    assert_eq!(smith.extra["read_codec"], "G722");
}

#[test]
fn freeswitch_builtin_default_template_with_its_blank_before_accountcode() {
    // mod_cdr_csv.c `default_template`: 13 columns, `", "` before accountcode;
    // an unanswered call of FreeSWITCH before 1.0 has the epoch as answer.
    let data = concat!(
        "\"Bob\",\"1001\",\"1000\",\"default\",\"2024-03-15 12:00:00\",\"1970-01-01 00:00:00\",",
        "\"2024-03-15 12:00:09\",\"9\",\"0\",\"NO_USER_RESPONSE\",\"9e8d7c6b-0000-4000-8000-000000000001\",\"\", \"acme\"\n",
        "\"Bob\",\"1001\",\"1000\",\"default\",\"2024-03-15 12:00:00\"\n",
    );
    let got = decode(
        &CsvFormat::FreeSwitch,
        &CsvOptions::default(),
        data.as_bytes(),
    );
    let cdr = got[0].as_ref().unwrap();
    assert_eq!(
        cdr.extra,
        extra(&[("accountcode", "acme"), ("context", "default")])
    );
    assert_eq!(cdr.answered_at, None);
    assert_eq!(cdr.disposition, Some(Disposition::NoAnswer));
    assert_eq!(cdr.q850_cause, Some(18));
    assert_eq!(cdr.leg, None);
    assert_eq!(
        got[1].as_ref().unwrap_err().to_string(),
        "line 2: has 5 columns, a FreeSWITCH mod_cdr_csv line has at least 13"
    );
}

// ---- miniSIPServer -----------------------------------------------------

fn minisipserver(name: &str, data: &[u8]) -> Vec<CsvCdr> {
    let options = CsvOptions {
        time_zone: "Asia/Shanghai".parse().unwrap(),
        half_call: HalfCall::from_file_name(name),
    };
    decode_ok(&CsvFormat::MiniSipServer, &options, data)
}

#[test]
fn minisipserver_o_cdr_every_field() {
    let cdrs = minisipserver(
        "minisipserver-O-CDR-20240315.csv",
        fixture!("minisipserver-O-CDR-20240315.csv"),
    );
    assert_eq!(cdrs.len(), 5);
    assert_eq!(
        cdrs[0],
        CsvCdr {
            id: "O/2024-03-15T01:00:00Z/201/8001".to_owned(),
            call_id: "2024-03-15T01:00:00Z/201/8001".to_owned(),
            leg: s("O"),
            caller: s("201"),
            dialed: s("8001"),
            destination: s("203"),
            // Asia/Shanghai is UTC+8.
            answered_at: Some(t("2024-03-15T01:00:06Z")),
            ended_at: Some(t("2024-03-15T01:01:41Z")),
            duration_s: Some(101),
            talk_s: Some(95),
            disposition: Some(Disposition::Answered),
            cause: s("16"),
            q850_cause: Some(16),
            extra: extra(&[("FCI", "callTag=3;cause=16"), ("callTag", "3")]),
            ..row(2, "2024-03-15T01:00:00Z")
        }
    );
    let summary: Vec<_> = cdrs[1..]
        .iter()
        .map(|c| {
            (
                c.line,
                c.disposition,
                c.q850_cause,
                c.sip_status,
                c.duration_s,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (3, Some(Disposition::Busy), Some(17), None, Some(2)),
            (4, Some(Disposition::NoAnswer), Some(19), None, Some(40)),
            (5, Some(Disposition::Cancelled), Some(16), None, Some(8)),
            (6, Some(Disposition::NoAnswer), None, Some(480), Some(1)),
        ]
    );
}

#[test]
fn minisipserver_t_cdr_without_header_pairs_with_its_o_cdr() {
    let o = minisipserver(
        "minisipserver-O-CDR-20240315.csv",
        fixture!("minisipserver-O-CDR-20240315.csv"),
    );
    let t_cdrs = minisipserver(
        "minisipserver-T-CDR-20240315.csv",
        fixture!("minisipserver-T-CDR-20240315.csv"),
    );
    assert_eq!(
        t_cdrs[0],
        CsvCdr {
            line: 1,
            id: "T/2024-03-15T01:00:00Z/201/8001".to_owned(),
            leg: s("T"),
            extra: extra(&[("callTag", "4"), ("column8", "callTag=4;cause=16")]),
            ..o[0].clone()
        }
    );
    for (o, t) in o.iter().zip(&t_cdrs) {
        assert_eq!(o.call_id, t.call_id);
        assert_ne!(o.id, t.id);
    }
}

#[test]
fn minisipserver_type_column_and_short_lines() {
    let data = "Type,Caller number,Dialed number,Setup time,Connect time,Release time,Duration\n\
                T,201,202,2024/03/15 09:00:00,2024/03/15 09:00:02,2024/03/15 09:00:12,10\n\
                O,201,202,2024/03/15 09:00:00\n";
    let got = decode(
        &CsvFormat::MiniSipServer,
        &CsvOptions::default(),
        data.as_bytes(),
    );
    let cdr = got[0].as_ref().unwrap();
    assert_eq!(cdr.leg.as_deref(), Some("T"));
    assert_eq!(cdr.talk_s, Some(10));
    assert_eq!(cdr.started_at, t("2024-03-15T09:00:00Z"));
    assert_eq!(cdr.disposition, Some(Disposition::Answered));
    assert!(cdr.extra.is_empty());
    assert_eq!(
        got[1].as_ref().unwrap_err().to_string(),
        "line 3: has 4 columns, the header line has 7"
    );
    let headerless = decode(
        &CsvFormat::MiniSipServer,
        &CsvOptions::default(),
        b"201,202,202,0,2024-03-15 09:00:00\n201,202,202,0,2024-03-15 09:00:00,,x,\n",
    );
    assert_eq!(
        headerless[0].as_ref().unwrap_err().to_string(),
        "line 1: has 5 columns, a miniSIPServer record has at least 7 (caller number to release time)"
    );
    assert_eq!(
        headerless[1].as_ref().unwrap_err().to_string(),
        "line 2: column \"Release time\" is \"x\", not a date and time such as 2024-03-15 09:30:00"
    );
}

// ---- generic -----------------------------------------------------------

fn generic_mapping() -> Mapping {
    Mapping::from_toml(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/csv/generic-pbx-export.toml"
    )))
    .unwrap()
}

#[test]
fn generic_export_every_field() {
    let cdrs = decode_ok(
        &CsvFormat::Generic(generic_mapping()),
        &CsvOptions::default(),
        fixture!("generic-pbx-export.csv"),
    );
    assert_eq!(cdrs.len(), 5);
    assert_eq!(
        cdrs[0],
        CsvCdr {
            id: "c-1001".to_owned(),
            call_id: "c-1001".to_owned(),
            leg: s("PJSIP/201-01"),
            caller: s("201"),
            caller_name: s("Alice"),
            dialed: s("004930123456"),
            direction: Some(Direction::Out),
            // The mapping's Europe/Berlin wins over the options' UTC.
            answered_at: Some(t("2024-03-15T09:00:07Z")),
            ended_at: Some(t("2024-03-15T09:01:12Z")),
            duration_s: Some(72),
            talk_s: Some(65),
            disposition: Some(Disposition::Answered),
            cause: s("ANSWER"),
            sip_status: Some(200),
            extra: extra(&[("Trunk", "telekom")]),
            ..row(2, "2024-03-15T09:00:00Z")
        }
    );
    let summary: Vec<_> = cdrs[1..]
        .iter()
        .map(|c| {
            (
                c.direction,
                c.disposition,
                c.caller_name.as_deref(),
                c.sip_status,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                Some(Direction::In),
                Some(Disposition::NoAnswer),
                None,
                Some(480)
            ),
            (
                Some(Direction::Internal),
                Some(Disposition::Busy),
                Some("Bob"),
                Some(486)
            ),
            (
                Some(Direction::Internal),
                Some(Disposition::Cancelled),
                Some("Meier; Anna"),
                Some(487)
            ),
            (None, Some(Disposition::Failed), Some("Alice"), Some(503)),
        ]
    );
    assert_eq!(
        cdrs[4].extra,
        extra(&[("Direction", "sideways"), ("Trunk", "telekom")])
    );
    assert_eq!(cdrs[2].extra, BTreeMap::new());
}

#[test]
fn generic_without_header_by_column_numbers() {
    let mapping = Mapping::from_toml(
        "header = false\n\
         [columns]\n\
         started_at = 1\n\
         ended_at = 2\n\
         caller = 3\n\
         dialed = 4\n\
         sip_status = 5\n",
    )
    .unwrap();
    let options = zone("+02:00");
    let data = b"2024-03-15 10:00:00,2024-03-15 10:00:30,201,202,486,extra\n\
                 2024-03-15 10:05:00,2024-03-15 10:05:30,201,202,busy\n\
                 2024-03-15 10:05:00,2024-03-15 10:05:30,201,202,486\n";
    let got = decode(&CsvFormat::Generic(mapping), &options, data);
    let cdr = got[0].as_ref().unwrap();
    assert_eq!(cdr.started_at, t("2024-03-15T08:00:00Z"));
    assert_eq!(cdr.duration_s, Some(30));
    assert_eq!(cdr.disposition, Some(Disposition::Busy));
    assert_eq!(cdr.extra, extra(&[("column6", "extra")]));
    assert_eq!(cdr.call_id, cdr.id);
    assert_eq!(cdr.id.len(), 32);
    assert_eq!(
        got[1].as_ref().unwrap_err().to_string(),
        "line 2: column 5 is \"busy\", not a cause number"
    );
    // The same row imported twice gets the same id; another row another.
    let again = decode(
        &CsvFormat::Generic(
            Mapping::from_toml("header = false\n[columns]\nstarted_at = 1\n").unwrap(),
        ),
        &options,
        data,
    );
    let ids: Vec<String> = again.into_iter().map(|r| r.unwrap().id).collect();
    assert_ne!(ids[0], ids[1]);
    assert_ne!(ids[1], ids[2]);
    assert_eq!(ids[0], cdr.id);
}

#[test]
fn generic_header_problems() {
    let mapping =
        Mapping::from_toml("[columns]\nstarted_at = \"Start\"\ncaller = \"Caller\"\n").unwrap();
    let got = decode(
        &CsvFormat::Generic(mapping.clone()),
        &CsvOptions::default(),
        b"start,from\n2024-03-15 10:00:00,201\n",
    );
    assert_eq!(
        got.iter()
            .map(|r| r.as_ref().map(|c| c.line).map_err(|e| e.to_string()))
            .collect::<Vec<_>>(),
        vec![Err(
            "line 1: the header line has no column \"Caller\" (columns.caller)".to_owned()
        )]
    );
    let got = decode(
        &CsvFormat::Generic(mapping),
        &CsvOptions::default(),
        b"\n\nSTART,caller\n2024-03-15 10:00:00,201\n2024-03-15 10:00:00\n",
    );
    assert_eq!(got[0].as_ref().unwrap().line, 4);
    assert_eq!(got[0].as_ref().unwrap().caller.as_deref(), Some("201"));
    assert_eq!(
        got[1].as_ref().unwrap_err().to_string(),
        "line 5: has 1 columns, the header line has 2"
    );
}

#[test]
fn generic_time_format_with_offset_and_unix_seconds() {
    let with_offset = Mapping::from_toml(
        "time_format = \"%Y-%m-%dT%H:%M:%S%:z\"\n[columns]\nstarted_at = \"t\"\n",
    )
    .unwrap();
    let got = decode_ok(
        &CsvFormat::Generic(with_offset),
        &zone("Europe/Berlin"),
        b"t\n2024-03-15T10:00:00-05:00\n",
    );
    assert_eq!(got[0].started_at, t("2024-03-15T15:00:00Z"));
    let unix = Mapping::from_toml("time_format = \"%s\"\n[columns]\nstarted_at = \"t\"\n").unwrap();
    let got = decode(
        &CsvFormat::Generic(unix),
        &CsvOptions::default(),
        b"t\n1710496800\nyesterday\n",
    );
    assert_eq!(
        got[0].as_ref().unwrap().started_at,
        t("2024-03-15T10:00:00Z")
    );
    assert_eq!(
        got[1].as_ref().unwrap_err().to_string(),
        "line 3: column \"t\" is \"yesterday\", not a time in the mapping's time_format \"%s\""
    );
}

// ---- properties --------------------------------------------------------

fn every_format() -> Vec<CsvFormat> {
    vec![
        CsvFormat::Asterisk,
        CsvFormat::FreeSwitch,
        CsvFormat::MiniSipServer,
        CsvFormat::Generic(generic_mapping()),
        CsvFormat::Generic(
            Mapping::from_toml(
                "header = false\n[columns]\nstarted_at = 1\nduration_s = 2\nq850_cause = 3\nid = 40\n",
            )
            .unwrap(),
        ),
    ]
}

/// Decodes `data` in every format and checks what holds for any input:
/// no panic, and every result's line is in the file.
fn decode_everywhere(data: &[u8]) {
    let lines = data.iter().filter(|&&b| b == b'\n' || b == b'\r').count() + 1;
    for format in every_format() {
        for result in decode(&format, &zone("Europe/Berlin"), data) {
            let line = match result {
                Ok(cdr) => cdr.line,
                Err(e) => e.line,
            };
            assert!((1..=lines).contains(&line), "line {line} of {lines}");
        }
    }
}

proptest! {
    #[test]
    fn decode_never_panics_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        decode_everywhere(&data);
    }

    #[test]
    fn decode_never_panics_on_csv_like_text(
        data in "([\",;\n\r 0-9:./=+-]|ANSWERED|NORMAL_CLEARING|2024-03-15 10:00:00|cause=|Setup time|é){0,200}"
    ) {
        decode_everywhere(data.as_bytes());
    }

    #[test]
    fn fixture_lines_with_a_field_mangled_still_decode_or_fail_cleanly(
        which in 0usize..4,
        line in 0usize..8,
        field in 0usize..22,
        text in "[ -~]{0,30}",
    ) {
        let file: &[u8] = match which {
            0 => fixture!("asterisk-Master.csv"),
            1 => fixture!("freeswitch-Master.csv"),
            2 => fixture!("minisipserver-O-CDR-20240315.csv"),
            _ => fixture!("generic-pbx-export.csv"),
        };
        let mut lines: Vec<String> = std::str::from_utf8(file).unwrap().lines().map(str::to_owned).collect();
        let index = line % lines.len();
        let mut fields: Vec<String> = lines[index].split([',', ';']).map(str::to_owned).collect();
        let slot = field % fields.len();
        fields[slot] = text;
        lines[index] = fields.join(if which == 3 { ";" } else { "," });
        decode_everywhere(lines.join("\n").as_bytes());
    }
}
