//! Asterisk `Master.csv`, as `build_csv_record` in Asterisk's
//! `cdr/cdr_csv.c` writes it (Asterisk 12 to 22).
//!
//! No header line. Sixteen columns always: accountcode, src, dst, dcontext,
//! clid, channel, dstchannel, lastapp, lastdata, start, answer, end,
//! duration, billsec, disposition, amaflags. Then, each only when its
//! `cdr.conf` `[csv]` option is on and in this order: `uniqueid`
//! (`loguniqueid`), `userfield` (`loguserfield`), and `peeraccount`,
//! `linkedid`, `sequence` (`newcdrcolumns`): 16 to 21 columns. The sample
//! `cdr.conf` turns on the first two, so 18 columns are the most common.
//!
//! Strings are quoted, `"` doubled inside (`"""Alice"" <201>"`); duration,
//! billsec and sequence are bare integers; an unset time (the answer of an
//! unanswered call) is an empty bare field. Times are strftime
//! `%Y-%m-%d %T` in the PBX's local zone, or in UTC with `usegmtime=yes`.
//! With 17 or 20 columns the 17th is uniqueid or userfield: it is read as
//! uniqueid when it is shaped like one (`[systemname-]<epoch>.<n>`).

use super::record::{Row, read_rows};
use super::{CsvCdr, CsvLineError, CsvOptions};
use cdrhub_model::Disposition;

/// The columns every line has, in order.
const ALWAYS: [&str; 16] = [
    "accountcode",
    "src",
    "dst",
    "dcontext",
    "clid",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
];
/// What `newcdrcolumns=yes` appends.
const NEW_COLUMNS: [&str; 3] = ["peeraccount", "linkedid", "sequence"];

pub(super) fn decode(options: &CsvOptions, data: &[u8]) -> Vec<Result<CsvCdr, CsvLineError>> {
    read_rows(data, b',')
        .into_iter()
        .map(|row| row.and_then(|row| decode_row(options, &row)))
        .collect()
}

/// The name of each column of a line with this many columns.
fn layout(row: &Row) -> Option<Vec<&'static str>> {
    let mut names = ALWAYS.to_vec();
    let seventeenth = if looks_like_uniqueid(row.text(16)) {
        "uniqueid"
    } else {
        "userfield"
    };
    match row.fields.len() {
        16 => {}
        17 => names.push(seventeenth),
        18 => names.extend(["uniqueid", "userfield"]),
        19 => names.extend(NEW_COLUMNS),
        20 => {
            names.push(seventeenth);
            names.extend(NEW_COLUMNS);
        }
        21 => {
            names.extend(["uniqueid", "userfield"]);
            names.extend(NEW_COLUMNS);
        }
        _ => return None,
    }
    Some(names)
}

/// `1710495000.12` or, with `systemname` set, `pbx1-1710495000.12`: the
/// channel's creation time and a counter (main/channel.c).
fn looks_like_uniqueid(text: &str) -> bool {
    let id = text.rsplit_once('-').map_or(text, |(_, id)| id);
    match id.split_once('.') {
        Some((secs, n)) => {
            !secs.is_empty()
                && !n.is_empty()
                && secs.bytes().all(|b| b.is_ascii_digit())
                && n.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

fn decode_row(options: &CsvOptions, row: &Row) -> Result<CsvCdr, CsvLineError> {
    let names = layout(row).ok_or_else(|| {
        row.error(format!(
            "has {} columns, an Asterisk cdr_csv line has 16 to 21",
            row.fields.len()
        ))
    })?;
    let column = |name: &str| names.iter().position(|n| *n == name);
    let at = |name: &str| column(name).unwrap_or(usize::MAX);
    let label = |name: &str| format!("{name:?}");
    let zone = &options.time_zone;

    let mut cdr = CsvCdr::new(
        row.line,
        row.required_time(at("start"), &label("start"), zone)?,
    );
    cdr.answered_at = row.time(at("answer"), &label("answer"), zone)?;
    cdr.ended_at = row.time(at("end"), &label("end"), zone)?;
    cdr.duration_s = row.seconds(at("duration"), &label("duration"))?;
    cdr.talk_s = row.seconds(at("billsec"), &label("billsec"))?;
    cdr.caller = row.value(at("src"));
    cdr.dialed = row.value(at("dst"));
    cdr.caller_name = row
        .value(at("clid"))
        .and_then(|clid| caller_id_name(&clid, cdr.caller.as_deref()));
    cdr.leg = row.value(at("channel"));
    cdr.cause = row.value(at("disposition"));
    cdr.disposition = cdr.cause.as_deref().and_then(disposition);

    // A channel's uniqueid is not unique per line: Asterisk 12+ writes a
    // new CDR for the same channel at each bridge change (a transfer), so
    // the line's own id adds the CDR's sequence, or else a digest.
    let uniqueid = row.value(at("uniqueid"));
    cdr.id = match (&uniqueid, row.value(at("sequence"))) {
        (Some(u), Some(sequence)) => format!("{u}/{sequence}"),
        (Some(u), None) => format!("{u}/{}", &row.digest()[..12]),
        (None, _) => row.digest(),
    };
    cdr.call_id = row
        .value(at("linkedid"))
        .or(uniqueid)
        .unwrap_or_else(|| cdr.id.clone());

    for name in [
        "accountcode",
        "dcontext",
        "clid",
        "dstchannel",
        "lastapp",
        "lastdata",
        "amaflags",
        "userfield",
        "peeraccount",
        "sequence",
    ] {
        if let Some(i) = column(name)
            && !row.text(i).is_empty()
        {
            cdr.extra.insert(name.to_owned(), row.text(i).to_owned());
        }
    }
    Ok(cdr)
}

/// `ast_cdr_disp2str` (main/cdr.c): ANSWERED, NO ANSWER, BUSY, FAILED,
/// CONGESTION.
fn disposition(text: &str) -> Option<Disposition> {
    match text {
        "ANSWERED" => Some(Disposition::Answered),
        "NO ANSWER" => Some(Disposition::NoAnswer),
        "BUSY" => Some(Disposition::Busy),
        "FAILED" | "CONGESTION" => Some(Disposition::Failed),
        _ => None,
    }
}

/// The name in a caller id as `ast_callerid_merge` writes it: `"Alice"
/// <201>`, or the name or the number alone.
fn caller_id_name(clid: &str, number: Option<&str>) -> Option<String> {
    let name = match clid.rfind('<') {
        Some(open) if clid.trim_end().ends_with('>') => clid[..open].trim(),
        _ => {
            let alone = clid.trim();
            let is_number = Some(alone) == number
                || alone
                    .bytes()
                    .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'*' | b'#'));
            if is_number {
                return None;
            }
            alone
        }
    };
    let name = name
        .strip_prefix('"')
        .and_then(|n| n.strip_suffix('"'))
        .unwrap_or(name)
        .trim();
    (!name.is_empty()).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_id_names() {
        let name = |clid, number| caller_id_name(clid, number);
        assert_eq!(
            name("\"Alice\" <201>", Some("201")).as_deref(),
            Some("Alice")
        );
        assert_eq!(
            name("\"Smith, John\" <204>", Some("204")).as_deref(),
            Some("Smith, John")
        );
        assert_eq!(name("Bob <202>", Some("202")).as_deref(), Some("Bob"));
        assert_eq!(name("\"\" <201>", Some("201")), None);
        assert_eq!(name("<201>", Some("201")), None);
        assert_eq!(name("201", Some("201")), None);
        assert_eq!(name("+4930123456", None), None);
        assert_eq!(name("Reception", Some("200")).as_deref(), Some("Reception"));
    }

    #[test]
    fn uniqueid_shapes() {
        assert!(looks_like_uniqueid("1710495000.12"));
        assert!(looks_like_uniqueid("pbx-1-1710495000.12"));
        assert!(!looks_like_uniqueid(""));
        assert!(!looks_like_uniqueid("vip customer"));
        assert!(!looks_like_uniqueid("1710495000"));
    }
}
