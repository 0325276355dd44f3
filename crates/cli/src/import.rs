//! `cdrhub import cms FILE...`: saved CMS `<records>` documents into the same
//! pipeline as live POSTs, with the same deduplication.

use std::path::{Path, PathBuf};

use anyhow::Context;
use cdrhub_model::Timestamp;
use cdrhub_protocols::cms;
use cdrhub_server::Config;
use cdrhub_store::{CmsIngest, IngestBatch, IngestPayload, Store};
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
}

fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found = Vec::new();
            walk(p, &mut found)
                .with_context(|| format!("cannot read directory {}", p.display()))?;
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("xml"))
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
    let ImportKind::Cms {
        system_id,
        receiver,
        files,
    } = kind;
    let files = collect_files(files)?;
    let receiver = receiver
        .clone()
        .unwrap_or_else(|| config.sources.cms.path.clone());
    let total_bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    let bar = ProgressBar::new(total_bytes);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] [{bar:40}] {bytes}/{total_bytes} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );

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
