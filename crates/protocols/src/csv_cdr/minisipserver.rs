//! miniSIPServer O-CDR and T-CDR files (seed 004; reference
//! half-call-cdrs.md).
//!
//! What the vendor documents: one call gives up to two records, the
//! O-CDR of the caller side and the T-CDR of the callee side (ETSI 23.078
//! half-call model); files are CSV in the `cdr` directory, one per day, one
//! record per line; the items are "Caller number", "Dialed number",
//! "Destination number", "Duration (seconds)" (the time both sides talk),
//! "Setup time", "Connect time" and "Release time", and an FCI section
//! carries `callTag=` (an internal release position) and `cause=` (the
//! cause of a SIP Reason header, else an internal cause).
//!
//! What it does not: the column order, whether there is a header line,
//! the time format, a column telling O from T, and any id tying an O-CDR
//! to its T-CDR. So this decoder reads a header line when the first line
//! names "Setup time", taking the columns it names (and a `Type`/`CDR type`
//! column of `O`/`T` if there is one); without one it takes the items in
//! the documented order, then looks for `cause=` and `callTag=` in the
//! remaining fields. Times may be `2024-03-15 09:30:00` or
//! `2024/03/15 09:30:00`. The side comes from a type column, else from
//! [`CsvOptions::half_call`].
//!
//! Since nothing ties the two halves, `call_id` is built from what both
//! records of a call share: setup time, caller number and dialled number.
//! If the T side's setup time were a second later than the O side's, the
//! halves would get different `call_id`s; the correlator should then match
//! them with a tolerance.

use super::cause;
use super::record::{Row, read_rows};
use super::{CsvCdr, CsvLineError, CsvOptions, HalfCall};
use cdrhub_model::Disposition;

/// The items of a record, in the order the vendor's table lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    Caller,
    Dialed,
    Destination,
    Duration,
    Setup,
    Connect,
    Release,
    Fci,
    Side,
}

const DOCUMENTED_ORDER: [(Item, &str); 7] = [
    (Item::Caller, "Caller number"),
    (Item::Dialed, "Dialed number"),
    (Item::Destination, "Destination number"),
    (Item::Duration, "Duration (seconds)"),
    (Item::Setup, "Setup time"),
    (Item::Connect, "Connect time"),
    (Item::Release, "Release time"),
];

impl Item {
    /// The item a header names: letters and digits only, any case, so that
    /// `Duration (seconds)`, `duration_seconds` and `DURATION` all match.
    fn from_header(name: &str) -> Option<Item> {
        let key: String = name
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        Some(match key.as_str() {
            "callernumber" | "caller" | "callingnumber" => Item::Caller,
            "dialednumber" | "dialed" | "callednumber" => Item::Dialed,
            "destinationnumber" | "destination" => Item::Destination,
            "durationseconds" | "duration" => Item::Duration,
            "setuptime" => Item::Setup,
            "connecttime" => Item::Connect,
            "releasetime" => Item::Release,
            "fci" => Item::Fci,
            "type" | "cdrtype" | "side" | "halfcall" => Item::Side,
            _ => return None,
        })
    }
}

/// Which column holds what.
struct Layout {
    /// Per column: the item it holds, if known, and its name for messages
    /// and for `extra`.
    columns: Vec<(Option<Item>, String)>,
    /// Whether the columns come from a header line (rows must then have
    /// as many fields) or from the documented order (rows may have more).
    from_header: bool,
}

impl Layout {
    fn documented() -> Layout {
        Layout {
            columns: DOCUMENTED_ORDER
                .iter()
                .map(|(item, name)| (Some(*item), (*name).to_owned()))
                .collect(),
            from_header: false,
        }
    }

    fn from_header(row: &Row) -> Option<Layout> {
        let columns: Vec<(Option<Item>, String)> = row
            .fields
            .iter()
            .map(|f| (Item::from_header(f), f.trim().to_owned()))
            .collect();
        columns
            .iter()
            .any(|(item, _)| *item == Some(Item::Setup))
            .then_some(Layout {
                columns,
                from_header: true,
            })
    }

    fn index(&self, item: Item) -> Option<usize> {
        self.columns.iter().position(|(i, _)| *i == Some(item))
    }

    fn label(&self, index: usize) -> String {
        self.columns.get(index).map_or_else(
            || index.saturating_add(1).to_string(),
            |(_, name)| format!("{name:?}"),
        )
    }
}

pub(super) fn decode(options: &CsvOptions, data: &[u8]) -> Vec<Result<CsvCdr, CsvLineError>> {
    let mut rows = read_rows(data, b',').into_iter().peekable();
    let layout = match rows.peek() {
        Some(Ok(first)) => match Layout::from_header(first) {
            Some(layout) => {
                rows.next();
                layout
            }
            None => Layout::documented(),
        },
        _ => Layout::documented(),
    };
    rows.map(|row| row.and_then(|row| decode_row(options, &layout, &row)))
        .collect()
}

fn decode_row(options: &CsvOptions, layout: &Layout, row: &Row) -> Result<CsvCdr, CsvLineError> {
    let count = row.fields.len();
    if layout.from_header && count != layout.columns.len() {
        return Err(row.error(format!(
            "has {count} columns, the header line has {}",
            layout.columns.len()
        )));
    }
    if !layout.from_header && count < DOCUMENTED_ORDER.len() {
        return Err(row.error(format!(
            "has {count} columns, a miniSIPServer record has at least {} (caller number to release time)",
            DOCUMENTED_ORDER.len()
        )));
    }
    let at = |item| layout.index(item).unwrap_or(usize::MAX);
    let label = |item| layout.label(at(item));
    let zone = &options.time_zone;

    let mut cdr = CsvCdr::new(
        row.line,
        row.required_time(at(Item::Setup), &label(Item::Setup), zone)?,
    );
    cdr.answered_at = row.time(at(Item::Connect), &label(Item::Connect), zone)?;
    cdr.ended_at = row.time(at(Item::Release), &label(Item::Release), zone)?;
    cdr.talk_s = row.seconds(at(Item::Duration), &label(Item::Duration))?;
    cdr.caller = row.value(at(Item::Caller));
    cdr.dialed = row.value(at(Item::Dialed));
    cdr.destination = row.value(at(Item::Destination));

    let side = row
        .value(at(Item::Side))
        .and_then(|s| side(&s))
        .or(options.half_call);
    cdr.leg = side.map(|s| s.leg().to_owned());

    for (i, text) in row.fields.iter().enumerate() {
        let item = layout.columns.get(i).and_then(|(item, _)| *item);
        if matches!(item, Some(Item::Fci) | None) {
            for (key, value) in fci_parameters(text) {
                if key.eq_ignore_ascii_case("cause") {
                    cdr.cause = Some(value.to_owned());
                } else if key.eq_ignore_ascii_case("calltag") {
                    cdr.extra.insert("callTag".to_owned(), value.to_owned());
                }
            }
        }
        if matches!(item, Some(Item::Fci) | None) && !text.trim().is_empty() {
            let name = match layout.columns.get(i) {
                Some((_, name)) if layout.from_header || item.is_some() => name.clone(),
                _ => format!("column{}", i + 1),
            };
            cdr.extra.insert(name, text.clone());
        }
    }

    // `cause=` holds the cause of a SIP Reason header or an internal cause
    // (vendor blog, "call tag and cause"): a Q.850 cause or a SIP status.
    match cdr.cause.as_deref().and_then(|c| c.parse::<u16>().ok()) {
        Some(n @ 1..=127) => cdr.q850_cause = Some(n),
        Some(n @ 300..=699) => cdr.sip_status = Some(n),
        _ => {}
    }
    cdr.disposition = Some(if cdr.answered_at.is_some() {
        Disposition::Answered
    } else if let Some(q850) = cdr.q850_cause {
        cause::unanswered_q850(q850)
    } else {
        // Not answered: the vendor's "Failed call" table.
        cdr.sip_status
            .and_then(cause::sip_status)
            .unwrap_or(Disposition::Failed)
    });

    let setup = cdr.started_at.to_rfc3339();
    let caller = cdr.caller.as_deref().unwrap_or("");
    let dialed = cdr.dialed.as_deref().unwrap_or("");
    cdr.call_id = format!("{setup}/{caller}/{dialed}");
    cdr.id = format!("{}/{}", cdr.leg.as_deref().unwrap_or("-"), cdr.call_id);
    Ok(cdr)
}

/// The side a type column names: `O`, `O-CDR`, `caller`, `originating`
/// or `T`, `T-CDR`, `callee`, `terminating`, in any case.
fn side(text: &str) -> Option<HalfCall> {
    let text = text.trim().to_ascii_lowercase();
    if text.starts_with('o') || text == "caller" {
        Some(HalfCall::Originating)
    } else if text.starts_with('t') || text == "callee" {
        Some(HalfCall::Terminating)
    } else {
        None
    }
}

/// The `key=value` parameters of an FCI text such as `callTag=3;cause=16`
/// (separated by `;`, `&`, `|`, `,` or blanks).
fn fci_parameters(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.split([';', '&', '|', ',', ' ', '\t'])
        .filter_map(|part| part.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .filter(|(k, v)| !k.is_empty() && !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_match_loosely() {
        assert_eq!(
            Item::from_header("Duration (seconds)"),
            Some(Item::Duration)
        );
        assert_eq!(Item::from_header("SETUP_TIME"), Some(Item::Setup));
        assert_eq!(Item::from_header(" Caller number "), Some(Item::Caller));
        assert_eq!(Item::from_header("Codec"), None);
    }

    #[test]
    fn fci_text() {
        let got: Vec<_> = fci_parameters("callTag=3;cause=16").collect();
        assert_eq!(got, vec![("callTag", "3"), ("cause", "16")]);
        assert_eq!(fci_parameters("no parameters").count(), 0);
    }

    #[test]
    fn sides() {
        assert_eq!(side("O-CDR"), Some(HalfCall::Originating));
        assert_eq!(side("callee"), Some(HalfCall::Terminating));
        assert_eq!(side("x"), None);
    }
}
