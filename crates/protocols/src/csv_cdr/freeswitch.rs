//! FreeSWITCH `Master.csv` from `mod_cdr_csv`
//! (src/mod/event_handlers/mod_cdr_csv/mod_cdr_csv.c).
//!
//! A line is a template of quoted channel variables. The module's built-in
//! `default` template has 13: caller_id_name, caller_id_number,
//! destination_number, context, start_stamp, answer_stamp, end_stamp,
//! duration, billsec, hangup_cause, uuid, bleg_uuid, accountcode (with a
//! blank before the last quote, `"${bleg_uuid}", "${accountcode}"`). The
//! `example` template of the shipped `conf/vanilla/autoload_configs/
//! cdr_csv.conf.xml`, its `default-template`, adds read_codec and
//! write_codec: 15. Longer lines (the `snom` and `linksys` templates begin
//! with the same 15) keep their further columns as `column16`, ....
//!
//! Values are not escaped: a `"` in a caller name breaks the quoting, and
//! such a line may decode with shifted fields or fail. Stamps are strftime
//! `%Y-%m-%d %T` in the switch's local zone; an unanswered call has an
//! empty `answer_stamp` (FreeSWITCH before 1.0 wrote the epoch there).
//!
//! With `legs` = `a` (the default) only A-legs are written; with `ab` the
//! B-leg gets its own line. An A-leg names its B-leg in `bleg_uuid`, which
//! is how the lines of one call are tied: the B-leg takes the A-leg's uuid
//! as its `call_id`. A B-leg whose A-leg is in another file cannot be tied.

use super::cause;
use super::record::{Row, read_rows};
use super::{CsvCdr, CsvLineError, CsvOptions};
use cdrhub_model::Disposition;
use std::collections::HashMap;

/// The channel variables of the `example` template, in order.
const TEMPLATE: [&str; 15] = [
    "caller_id_name",
    "caller_id_number",
    "destination_number",
    "context",
    "start_stamp",
    "answer_stamp",
    "end_stamp",
    "duration",
    "billsec",
    "hangup_cause",
    "uuid",
    "bleg_uuid",
    "accountcode",
    "read_codec",
    "write_codec",
];
/// The built-in `default` template stops after accountcode.
const DEFAULT_TEMPLATE_LEN: usize = 13;

pub(super) fn decode(options: &CsvOptions, data: &[u8]) -> Vec<Result<CsvCdr, CsvLineError>> {
    let mut cdrs: Vec<_> = read_rows(data, b',')
        .into_iter()
        .map(|row| row.and_then(|row| decode_row(options, &row)))
        .collect();
    tie_legs(&mut cdrs);
    cdrs
}

fn decode_row(options: &CsvOptions, row: &Row) -> Result<CsvCdr, CsvLineError> {
    if row.fields.len() < DEFAULT_TEMPLATE_LEN {
        return Err(row.error(format!(
            "has {} columns, a FreeSWITCH mod_cdr_csv line has at least {DEFAULT_TEMPLATE_LEN}",
            row.fields.len()
        )));
    }
    let at = |name: &str| {
        TEMPLATE
            .iter()
            .position(|n| *n == name)
            .unwrap_or(usize::MAX)
    };
    let label = |name: &str| format!("{name:?}");
    let zone = &options.time_zone;

    let mut cdr = CsvCdr::new(
        row.line,
        row.required_time(at("start_stamp"), &label("start_stamp"), zone)?,
    );
    // Versions before 1.0 wrote an unset answer time as the epoch.
    cdr.answered_at = row
        .time(at("answer_stamp"), &label("answer_stamp"), zone)?
        .filter(|t| t.millis() > 86_400_000);
    cdr.ended_at = row.time(at("end_stamp"), &label("end_stamp"), zone)?;
    cdr.duration_s = row.seconds(at("duration"), &label("duration"))?;
    cdr.talk_s = row.seconds(at("billsec"), &label("billsec"))?;
    cdr.caller_name = row.value(at("caller_id_name"));
    cdr.caller = row.value(at("caller_id_number"));
    cdr.dialed = row.value(at("destination_number"));
    cdr.cause = row.value(at("hangup_cause"));
    if let Some(name) = &cdr.cause {
        let (q850, unanswered) = cause::freeswitch(name);
        cdr.q850_cause = q850;
        cdr.disposition = Some(if cdr.answered_at.is_some() {
            Disposition::Answered
        } else {
            unanswered
        });
    } else if cdr.answered_at.is_some() {
        cdr.disposition = Some(Disposition::Answered);
    }
    cdr.id = row.value(at("uuid")).unwrap_or_else(|| row.digest());
    cdr.call_id = cdr.id.clone();

    for name in [
        "context",
        "bleg_uuid",
        "accountcode",
        "read_codec",
        "write_codec",
    ] {
        if let Some(value) = row.value(at(name)) {
            cdr.extra.insert(name.to_owned(), value);
        }
    }
    for (i, value) in row.fields.iter().enumerate().skip(TEMPLATE.len()) {
        if !value.trim().is_empty() {
            cdr.extra.insert(format!("column{}", i + 1), value.clone());
        }
    }
    Ok(cdr)
}

/// Ties each B-leg line to the A-leg line naming it in `bleg_uuid`: the
/// B-leg joins the A-leg's call. The first leg of a call is `A`, the legs
/// it led to `B`, `C`, ... along a chain of transfers; a bridged A-leg
/// whose B-leg is not in the file is still `A`, an unbridged line has no
/// leg name.
fn tie_legs(cdrs: &mut [Result<CsvCdr, CsvLineError>]) {
    let decoded: Vec<(usize, &CsvCdr)> = cdrs
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.as_ref().ok().map(|c| (i, c)))
        .collect();
    let by_uuid: HashMap<&str, usize> = decoded
        .iter()
        .rev()
        .map(|(i, c)| (c.id.as_str(), *i))
        .collect();
    let bleg = |c: &CsvCdr| c.extra.get("bleg_uuid").cloned();

    // parent[b] = a when line a names line b as its B-leg.
    let mut parent: HashMap<usize, usize> = HashMap::new();
    for &(a, cdr) in &decoded {
        let Some(b) = bleg(cdr).and_then(|u| by_uuid.get(u.as_str()).copied()) else {
            continue;
        };
        if b == a {
            continue;
        }
        // Two lines naming each other: the one that started first is A.
        let (child, up) = match (cdrs.get(a), cdrs.get(b)) {
            (Some(Ok(x)), Some(Ok(y)))
                if bleg(y).as_deref() == Some(x.id.as_str())
                    && (y.started_at, y.line) < (x.started_at, x.line) =>
            {
                (a, b)
            }
            _ => (b, a),
        };
        if !parent.contains_key(&child) && !leads_to(&parent, up, child) {
            parent.insert(child, up);
        }
    }

    let roots: Vec<(usize, String, usize)> = decoded
        .iter()
        .map(|&(i, _)| {
            let mut at = i;
            let mut depth = 0;
            while let Some(&up) = parent.get(&at) {
                at = up;
                depth += 1;
            }
            let root_id = cdrs
                .get(at)
                .and_then(|r| r.as_ref().ok())
                .map_or_else(String::new, |c| c.id.clone());
            (i, root_id, depth)
        })
        .collect();
    for (i, root_id, depth) in roots {
        let Some(Ok(cdr)) = cdrs.get_mut(i) else {
            continue;
        };
        let has_bleg = cdr.extra.contains_key("bleg_uuid");
        cdr.call_id = root_id;
        cdr.leg = match depth {
            0 if !has_bleg => None,
            _ => Some(leg_name(depth)),
        };
    }
}

/// Whether the chain of A-legs above `from` reaches `target` (or is it):
/// a link from `target` to `from` would then close a loop.
fn leads_to(parent: &HashMap<usize, usize>, from: usize, target: usize) -> bool {
    let mut at = from;
    for _ in 0..=parent.len() {
        if at == target {
            return true;
        }
        match parent.get(&at) {
            Some(&up) => at = up,
            None => return false,
        }
    }
    true
}

/// `A`, `B`, ... `Z`, then `L27`, ... for legs this deep in a call.
fn leg_name(depth: usize) -> String {
    match u8::try_from(depth) {
        Ok(d) if d < 26 => char::from(b'A' + d).to_string(),
        _ => format!("L{}", depth + 1),
    }
}
