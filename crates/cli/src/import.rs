//! `cdrhub import cms FILE...`: saved CMS `<records>` documents into the same
//! pipeline as live POSTs, with the same deduplication; `cdrhub import
//! cti-trace FILE...`: Unified CCX MIVR traces into the CTI pipeline;
//! `cdrhub import csv --format FORMAT FILE...`: PBX CDR files as call
//! events (source `csv`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use cdrhub_model::Timestamp;
use cdrhub_protocols::csv_cdr;
use cdrhub_protocols::{cms, cti};
use cdrhub_server::Config;
use cdrhub_store::{
    CmsIngest, CtiIngest, CtiIngestMessage, EventIngest, EventsIngest, IngestBatch, IngestPayload,
    Store,
};
use clap::Subcommand;
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Subcommand)]
pub enum ImportKind {
    /// Cisco Meeting Server CDR documents (`<records>` XML as POSTed by a Call
    /// Bridge), one document per file. Directories are searched for *.xml.
    Cms {
        /// Name the sending system (as `?system_id=` would). Default: the
        /// document's Call Bridge id, else "import".
        #[arg(long)]
        system_id: Option<String>,
        /// The receiver URL the records were originally posted to; CMS numbers
        /// records per receiver. Default: the configured `sources.cms.path`.
        #[arg(long)]
        receiver: Option<String>,
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Unified CCX MIVR high-level text traces (seed 003, "Example 1"): the
    /// CTI event messages they show go through the same correlation as a
    /// live CTI session. Directories are searched for *.log and *.txt.
    CtiTrace {
        /// The CTI server the trace is from (the sender of its calls).
        #[arg(long, default_value = "trace")]
        server: String,
        /// The year of the trace's times (the trace has none). Default: the
        /// year the file was last written.
        #[arg(long)]
        year: Option<i32>,
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// CDR files of PBXs: Asterisk `Master.csv` (`--format asterisk`),
    /// FreeSWITCH `mod_cdr_csv` (`freeswitch`), miniSIPServer O-CDR and
    /// T-CDR files (`minisipserver`), or any CSV described by a mapping
    /// file (`--mapping FILE`). Directories are searched for *.csv. Each
    /// row becomes a call's leg (source `csv`); rows already imported are
    /// recognised and stored once.
    Csv {
        /// asterisk, freeswitch or minisipserver; not with --mapping.
        #[arg(long, required_unless_present = "mapping")]
        format: Option<String>,
        /// A TOML mapping of the columns (see the README).
        #[arg(long, conflicts_with = "format")]
        mapping: Option<PathBuf>,
        /// The zone the PBX wrote its times in: UTC (default), +02:00, or
        /// an IANA name such as Europe/Paris.
        #[arg(long, default_value = "UTC")]
        time_zone: String,
        /// The system the calls are filed under (their sender). Default:
        /// the format's name.
        #[arg(long)]
        system: Option<String>,
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

fn collect_files(paths: &[PathBuf], extensions: &[&str]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found = Vec::new();
            walk(p, extensions, &mut found)
                .with_context(|| format!("cannot read directory {}", p.display()))?;
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, extensions: &[&str], out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, extensions, out)?;
        } else if path
            .extension()
            .is_some_and(|e| extensions.iter().any(|x| e.eq_ignore_ascii_case(x)))
        {
            out.push(path);
        }
    }
    Ok(())
}

#[derive(Default)]
struct Summary {
    files: usize,
    records_read: usize,
    stored: usize,
    duplicates: usize,
    gaps: usize,
    rejected: Vec<(PathBuf, String)>,
}

pub async fn run(kind: &ImportKind, store: &dyn Store, config: &Config) -> anyhow::Result<()> {
    match kind {
        ImportKind::Cms {
            system_id,
            receiver,
            files,
        } => import_cms(system_id, receiver, files, store, config).await,
        ImportKind::CtiTrace {
            server,
            year,
            files,
        } => import_cti_trace(server, *year, files, store).await,
        ImportKind::Csv {
            format,
            mapping,
            time_zone,
            system,
            files,
        } => import_csv(format, mapping, time_zone, system, files, store).await,
    }
}

/// Per-line errors printed per file at most; the rest are counted.
const LINE_ERRORS_SHOWN: usize = 20;

async fn import_csv(
    format: &Option<String>,
    mapping: &Option<PathBuf>,
    time_zone: &str,
    system: &Option<String>,
    files: &[PathBuf],
    store: &dyn Store,
) -> anyhow::Result<()> {
    let format: csv_cdr::CsvFormat = match (format, mapping) {
        (_, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the mapping {}", path.display()))?;
            csv_cdr::CsvFormat::Generic(
                csv_cdr::Mapping::from_toml(&text)
                    .map_err(|e| anyhow::anyhow!("the mapping {} is wrong: {e}", path.display()))?,
            )
        }
        (Some(name), None) => name
            .parse()
            .map_err(|e| anyhow::anyhow!("--format {name:?}: {e}"))?,
        (None, None) => anyhow::bail!("give --format or --mapping"),
    };
    let zone: csv_cdr::TimeZone = time_zone
        .parse()
        .map_err(|e| anyhow::anyhow!("--time-zone {time_zone:?}: {e}"))?;
    let name = format.name();
    let sender = system.clone().unwrap_or_else(|| name.to_owned());
    let files = collect_files(files, &["csv"])?;
    let total_bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    let bar = progress_bar(total_bytes);
    let mut summary = Summary::default();
    let mut line_errors = 0;
    let mut pending = Vec::new();
    for path in &files {
        summary.files += 1;
        let data = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                summary
                    .rejected
                    .push((path.clone(), format!("cannot read: {e}")));
                continue;
            }
        };
        bar.inc(data.len() as u64);
        let options = csv_cdr::CsvOptions {
            time_zone: zone.clone(),
            half_call: path
                .file_name()
                .and_then(|n| csv_cdr::HalfCall::from_file_name(&n.to_string_lossy())),
        };
        let mut events = Vec::new();
        let mut shown = 0;
        for row in csv_cdr::decode(&format, &options, &data) {
            match row {
                Ok(cdr) => {
                    summary.records_read += 1;
                    let received_at = Timestamp::now();
                    events.extend(
                        csv_cdr::row_events(name, &cdr)
                            .into_iter()
                            .map(|event| EventIngest { received_at, event }),
                    );
                }
                Err(e) => {
                    line_errors += 1;
                    if shown < LINE_ERRORS_SHOWN {
                        shown += 1;
                        bar.suspend(|| eprintln!("{}: {e}", path.display()));
                    }
                }
            }
        }
        if shown == LINE_ERRORS_SHOWN {
            bar.suspend(|| {
                eprintln!(
                    "{}: more lines could not be read (see the count below)",
                    path.display()
                )
            });
        }
        for chunk in events.chunks(4000) {
            pending.push(store.submit(IngestBatch {
                sender: sender.clone(),
                received_at: Timestamp::now(),
                payload: IngestPayload::Events(EventsIngest {
                    imported: true,
                    events: chunk.to_vec(),
                }),
            }));
            if pending.len() >= 16 {
                drain(&mut pending, &mut summary).await?;
            }
        }
        bar.set_message(format!("{} rows", summary.records_read));
    }
    drain(&mut pending, &mut summary).await?;
    bar.finish_and_clear();
    println!(
        "imported {} files ({name}, calls filed under {sender}): {} rows read, {} lines with errors; {} events stored, {} already there",
        summary.files, summary.records_read, line_errors, summary.stored, summary.duplicates
    );
    for (path, reason) in &summary.rejected {
        println!("  {}: {reason}", path.display());
    }
    Ok(())
}

fn progress_bar(total_bytes: u64) -> ProgressBar {
    let bar = ProgressBar::new(total_bytes);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] [{bar:40}] {bytes}/{total_bytes} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}

/// The version whose layouts trace messages are encoded in for the journal.
const TRACE_VERSION: u32 = 14;

/// Reads MIVR traces; each event message is journaled as the frame its
/// fields make, numbered by its line in its file (importing a file again
/// stores nothing new), and correlated as a live session's would be.
async fn import_cti_trace(
    server: &str,
    year: Option<i32>,
    files: &[PathBuf],
    store: &dyn Store,
) -> anyhow::Result<()> {
    let files = collect_files(files, &["log", "txt"])?;
    let total_bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    let bar = progress_bar(total_bytes);
    let mut summary = Summary::default();
    let mut pending = Vec::new();
    for path in &files {
        summary.files += 1;
        let text = match std::fs::read(path) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => {
                summary
                    .rejected
                    .push((path.clone(), format!("cannot read: {e}")));
                continue;
            }
        };
        bar.inc(text.len() as u64);
        let year = year.unwrap_or_else(|| file_year(path));
        let mut messages = Vec::new();
        for entry in cti::trace::parse(&text, year) {
            match entry {
                Ok(e) => messages.push(CtiIngestMessage {
                    seq: e.line as u64,
                    received_at: e.time,
                    frame: cti::encode(&e.message, TRACE_VERSION).into(),
                    message: e.message,
                }),
                Err(e) => summary
                    .rejected
                    .push((path.clone(), format!("line {}: {}", e.line, e.reason))),
            }
        }
        summary.records_read += messages.len();
        for chunk in messages.chunks(2000) {
            let submission = IngestBatch {
                sender: server.to_owned(),
                received_at: Timestamp::now(),
                payload: IngestPayload::Cti(CtiIngest {
                    node: "trace".into(),
                    session: format!("trace:{}", path.display()),
                    version: TRACE_VERSION,
                    messages: chunk.to_vec(),
                }),
            };
            pending.push(store.submit(submission));
            if pending.len() >= 32 {
                drain(&mut pending, &mut summary).await?;
            }
        }
        bar.set_message(format!(
            "{} messages, {} stored",
            summary.records_read, summary.stored
        ));
    }
    drain(&mut pending, &mut summary).await?;
    bar.finish_and_clear();
    println!(
        "imported {} files: {} event messages read, {} stored, {} duplicates, {} unreadable",
        summary.files,
        summary.records_read,
        summary.stored,
        summary.duplicates,
        summary.rejected.len()
    );
    for (path, reason) in &summary.rejected {
        println!("  {}: {reason}", path.display());
    }
    Ok(())
}

/// The year a file was last written (UTC), else this year.
fn file_year(path: &Path) -> i32 {
    let modified = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| Timestamp(d.as_millis() as i64))
        .unwrap_or_else(Timestamp::now);
    modified.to_rfc3339()[..4].parse().unwrap_or(2026)
}

async fn import_cms(
    system_id: &Option<String>,
    receiver: &Option<String>,
    files: &[PathBuf],
    store: &dyn Store,
    config: &Config,
) -> anyhow::Result<()> {
    let files = collect_files(files, &["xml"])?;
    let receiver = receiver
        .clone()
        .unwrap_or_else(|| config.sources.cms.path.clone());
    let total_bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    let bar = progress_bar(total_bytes);

    let mut summary = Summary::default();
    // Decode in file order; keep up to 32 commits in flight so the writer can
    // group them (one disk sync for many files).
    let mut pending = Vec::new();
    for path in &files {
        summary.files += 1;
        let body = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                summary
                    .rejected
                    .push((path.clone(), format!("cannot read: {e}")));
                continue;
            }
        };
        bar.inc(body.len() as u64);
        let batch = match cms::decode(&body) {
            Ok(b) => b,
            Err(e) => {
                summary.rejected.push((path.clone(), e.to_string()));
                continue;
            }
        };
        summary.records_read += batch.records.len();
        let sender = system_id
            .clone()
            .or_else(|| batch.call_bridge.clone())
            .unwrap_or_else(|| "import".into());
        let submission = IngestBatch {
            sender,
            received_at: Timestamp::now(),
            payload: IngestPayload::Cms(CmsIngest {
                receiver: receiver.clone(),
                body: body.into(),
                batch,
            }),
        };
        pending.push(store.submit(submission));
        if pending.len() >= 32 {
            drain(&mut pending, &mut summary).await?;
        }
        bar.set_message(format!(
            "{} records, {} stored",
            summary.records_read, summary.stored
        ));
    }
    drain(&mut pending, &mut summary).await?;
    bar.finish_and_clear();

    println!(
        "imported {} files: {} records read, {} stored, {} duplicates, {} gaps detected, {} files rejected",
        summary.files,
        summary.records_read,
        summary.stored,
        summary.duplicates,
        summary.gaps,
        summary.rejected.len()
    );
    for (path, reason) in &summary.rejected {
        println!("  rejected {}: {reason}", path.display());
    }
    Ok(())
}

async fn drain(pending: &mut Vec<cdrhub_store::Ack>, summary: &mut Summary) -> anyhow::Result<()> {
    let mut acks = futures_util::stream::iter(pending.drain(..)).buffered(64);
    while let Some(result) = acks.next().await {
        let outcome = result
            .context("the store could not commit; nothing after the last summary line is stored")?;
        summary.stored += outcome.stored;
        summary.duplicates += outcome.duplicates;
        summary.gaps += outcome.gaps;
    }
    Ok(())
}
