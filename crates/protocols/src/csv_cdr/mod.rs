//! Call detail records from the CSV files PBXs write, for `cdrhub import`
//! (DESIGN.md, "Data flow": import (files)). [`decode`] takes a whole file
//! and returns one result per record, in file order: a line that cannot be
//! read is an error of its own, naming its line and column, and the other
//! lines still decode. No I/O, no clock, and no panic on any input.
//!
//! Formats ([`CsvFormat`]):
//! - `asterisk`: `Master.csv` of Asterisk's `cdr_csv` module, no header
//!   line, in every column layout its `cdr.conf` `[csv]` options give
//!   (`loguniqueid`, `loguserfield`, `newcdrcolumns`), see `asterisk.rs`.
//! - `freeswitch`: `Master.csv` of FreeSWITCH's `mod_cdr_csv` with its
//!   built-in `default` template or the `example` template of the shipped
//!   `cdr_csv.conf.xml`, see `freeswitch.rs`.
//! - `minisipserver`: miniSIPServer's O-CDR and T-CDR files (seed 004),
//!   see `minisipserver.rs`.
//! - generic: any other CSV, described by a TOML [`Mapping`].
//!
//! Wall-clock times are read in [`CsvOptions::time_zone`] (see
//! [`TimeZone`] for how daylight-saving changes are resolved).

mod asterisk;
mod cause;
mod events;
mod freeswitch;
mod generic;
mod minisipserver;
mod record;
mod zone;

pub use events::row_events;
pub use generic::Mapping;
pub use zone::{TimeZone, UnknownTimeZone};

use cdrhub_model::{Direction, Disposition, Timestamp};
use std::collections::BTreeMap;
use std::str::FromStr;

/// One CDR row of a CSV file, normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvCdr {
    /// 1-based line number in the file (of the record's first line).
    pub line: usize,
    /// The row's own unique id in its system, for deduplication on
    /// re-import: stable, and different for every row the system writes.
    pub id: String,
    /// The call this row belongs to: rows with the same `call_id` are legs
    /// of one call.
    pub call_id: String,
    /// The leg's name within the call (`O`/`T` for miniSIPServer half
    /// calls, the channel for Asterisk, `A`/`B` for FreeSWITCH); `None`
    /// when the row is the call's only leg.
    pub leg: Option<String>,
    /// The calling number.
    pub caller: Option<String>,
    pub caller_name: Option<String>,
    /// The number dialled.
    pub dialed: Option<String>,
    /// The final target, when the format says one.
    pub destination: Option<String>,
    pub direction: Option<Direction>,
    /// Setup or start of the call.
    pub started_at: Timestamp,
    pub answered_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    /// Seconds of the whole call; from start and end when the file has no
    /// column for it.
    pub duration_s: Option<i64>,
    /// Billable (talk) seconds; from answer and end when the file has no
    /// column for it.
    pub talk_s: Option<i64>,
    pub disposition: Option<Disposition>,
    /// The raw cause as written (Asterisk disposition text, FreeSWITCH
    /// `hangup_cause`, miniSIPServer FCI `cause=` ...).
    pub cause: Option<String>,
    pub q850_cause: Option<u16>,
    pub sip_status: Option<u16>,
    /// Every other non-empty column, name -> value, as written (for the
    /// call's details).
    pub extra: BTreeMap<String, String>,
}

impl CsvCdr {
    fn new(line: usize, started_at: Timestamp) -> CsvCdr {
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
            started_at,
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

    /// Seconds the file leaves out, from the times it has.
    fn fill_seconds(&mut self) {
        if let (None, Some(end)) = (self.duration_s, self.ended_at) {
            self.duration_s = Some(end.seconds_since(self.started_at));
        }
        if let (None, Some(answer), Some(end)) = (self.talk_s, self.answered_at, self.ended_at) {
            self.talk_s = Some(end.seconds_since(answer));
        }
    }
}

/// A line of a CSV file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct CsvLineError {
    pub line: usize,
    /// One sentence naming the problem and the column.
    pub message: String,
}

/// Which system wrote a CSV file, and so how to read it.
#[derive(Debug, Clone, PartialEq)]
pub enum CsvFormat {
    Asterisk,
    FreeSwitch,
    MiniSipServer,
    Generic(Mapping),
}

impl CsvFormat {
    /// `asterisk`, `freeswitch`, `minisipserver` or `generic`.
    pub fn name(&self) -> &'static str {
        match self {
            CsvFormat::Asterisk => "asterisk",
            CsvFormat::FreeSwitch => "freeswitch",
            CsvFormat::MiniSipServer => "minisipserver",
            CsvFormat::Generic(_) => "generic",
        }
    }
}

/// A name that is no CSV format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown CSV format {0:?}, expected asterisk, freeswitch or minisipserver (a generic format is read from a mapping file)"
)]
pub struct UnknownCsvFormat(pub String);

impl FromStr for CsvFormat {
    type Err = UnknownCsvFormat;

    /// `asterisk`, `freeswitch` or `minisipserver`, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            CsvFormat::Asterisk,
            CsvFormat::FreeSwitch,
            CsvFormat::MiniSipServer,
        ]
        .into_iter()
        .find(|f| f.name().eq_ignore_ascii_case(s.trim()))
        .ok_or_else(|| UnknownCsvFormat(s.to_owned()))
    }
}

/// How to read a file, besides its format.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsvOptions {
    /// The zone the PBX wrote its times in (a generic mapping's own
    /// `time_zone` wins over it). UTC by default.
    pub time_zone: TimeZone,
    /// The side a miniSIPServer file's records come from when the rows do
    /// not say it: O-CDRs and T-CDRs are written apart (seed 004, "Basic
    /// call model"). See [`HalfCall::from_file_name`].
    pub half_call: Option<HalfCall>,
}

/// One side of a call in the half-call model of ETSI 23.078 that
/// miniSIPServer follows (seed 004).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HalfCall {
    /// The caller side; its record is the O-CDR.
    Originating,
    /// The callee side; its record is the T-CDR.
    Terminating,
}

impl HalfCall {
    /// `O` or `T`, the leg name of its records.
    pub fn leg(self) -> &'static str {
        match self {
            HalfCall::Originating => "O",
            HalfCall::Terminating => "T",
        }
    }

    /// The side a file holds, from `O-CDR` or `T-CDR` in its name (any
    /// case). miniSIPServer documents no file name, so this is cdrhub's
    /// convention for files an operator keeps apart.
    pub fn from_file_name(name: &str) -> Option<HalfCall> {
        let name = name.to_ascii_uppercase();
        match (name.contains("O-CDR"), name.contains("T-CDR")) {
            (true, false) => Some(HalfCall::Originating),
            (false, true) => Some(HalfCall::Terminating),
            _ => None,
        }
    }
}

/// Decodes a whole file; bad lines are errors of their own, the good ones
/// are still returned, all in file order.
pub fn decode(
    format: &CsvFormat,
    options: &CsvOptions,
    data: &[u8],
) -> Vec<Result<CsvCdr, CsvLineError>> {
    let mut cdrs = match format {
        CsvFormat::Asterisk => asterisk::decode(options, data),
        CsvFormat::FreeSwitch => freeswitch::decode(options, data),
        CsvFormat::MiniSipServer => minisipserver::decode(options, data),
        CsvFormat::Generic(mapping) => mapping.decode(options, data),
    };
    for cdr in cdrs.iter_mut().flatten() {
        cdr.fill_seconds();
    }
    cdrs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names() {
        assert_eq!(
            "asterisk".parse::<CsvFormat>().unwrap(),
            CsvFormat::Asterisk
        );
        assert_eq!(
            "FreeSWITCH".parse::<CsvFormat>().unwrap(),
            CsvFormat::FreeSwitch
        );
        assert_eq!(
            "minisipserver".parse::<CsvFormat>().unwrap(),
            CsvFormat::MiniSipServer
        );
        assert_eq!(
            "cisco".parse::<CsvFormat>().unwrap_err().to_string(),
            "unknown CSV format \"cisco\", expected asterisk, freeswitch or minisipserver (a generic format is read from a mapping file)"
        );
    }

    #[test]
    fn half_call_from_file_name() {
        assert_eq!(
            HalfCall::from_file_name("minisipserver-O-CDR-20240315.csv"),
            Some(HalfCall::Originating)
        );
        assert_eq!(
            HalfCall::from_file_name("t-cdr-20240315.csv"),
            Some(HalfCall::Terminating)
        );
        assert_eq!(HalfCall::from_file_name("20240315.csv"), None);
    }
}
