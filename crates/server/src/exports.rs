//! Scheduled exports and webhooks (issue 7, point 3): the calls that ended
//! in each period (hourly, daily, or any whole number of seconds, minutes
//! or hours), as CSV or NDJSON, to a directory or an HTTP(S) endpoint; and
//! one signed JSON POST per ended call to a webhook URL. Both go through
//! the delivery spool (`crate::delivery`): kept on disk until delivered,
//! retried with backoff, shown in the console (`/admin/exports`) until
//! then, neither lost nor doubled.
//!
//! Exports and webhooks come from the config file (`[[exports]]`,
//! `[[webhooks]]`) and from the console (admin), which keeps its own in the
//! settings; a change in the console takes effect at once.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cdrhub_model::{Call, Timestamp};
use cdrhub_store::{EndedBy, EndedCallsQuery};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};
use tracing::{info, warn};

use crate::AppState;
use crate::delivery::{self, DeliveryOptions, Item, ItemStatus, Spool, Target};

/// How often the exports and webhooks look for something to send.
const TICK: Duration = Duration::from_secs(2);
/// Calls per page read from the store.
const PAGE: usize = 2_000;
/// A webhook looks this far back each time as well (by when calls were
/// written), for a clock that stepped back a little; the spool drops the
/// calls sent already.
const WEBHOOK_OVERLAP_MS: i64 = 5_000;
/// The settings key of the console's exports and webhooks.
const CONSOLE_KEY: &str = "exports.console";

/// `[[exports]]`: one scheduled export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportConfig {
    /// A name of letters, digits, `-` and `_`: the files are called
    /// `NAME-20261201T1000.csv`.
    pub name: String,
    /// `hourly` (default), `daily`, or a period such as `15m`, `6h`, `30s`;
    /// periods start at whole multiples of it since midnight UTC.
    #[serde(default = "default_every")]
    pub every: String,
    /// `csv` (default) or `ndjson` (one call as JSON a line).
    #[serde(default)]
    pub format: ExportFormat,
    /// CSV columns, in order; default all of them (as `/api/v1/calls.csv`).
    #[serde(default)]
    pub columns: Vec<String>,
    /// Only the calls of this source (`cms`, `sip`, `events` ...).
    #[serde(default)]
    pub source: Option<String>,
    /// Write the files into this directory (it must exist) ...
    #[serde(default)]
    pub directory: Option<PathBuf>,
    /// ... or POST them to this URL.
    #[serde(default)]
    pub url: Option<String>,
    /// Headers sent with each POST (an `Authorization`, say).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Signs each POST: `X-Cdrhub-Signature: sha256=HMAC(secret, "TIMESTAMP.BODY")`.
    #[serde(default)]
    pub hmac_secret: Option<String>,
    /// Seconds after a period's end before it is exported, so calls whose
    /// last records arrive late are in it. Default 300.
    #[serde(default = "default_delay")]
    pub delay_s: u64,
    /// Seconds an HTTP delivery may take. Default 30.
    #[serde(default = "default_timeout")]
    pub timeout_s: u64,
}

/// `[[webhooks]]`: one POST per ended call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub name: String,
    pub url: String,
    /// Only the calls of this source.
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub hmac_secret: Option<String>,
    #[serde(default = "default_timeout")]
    pub timeout_s: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    #[default]
    Csv,
    Ndjson,
}

fn default_every() -> String {
    "hourly".to_owned()
}

fn default_delay() -> u64 {
    300
}

fn default_timeout() -> u64 {
    30
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "the name {name:?} must be 1 to 64 letters, digits, - or _"
        ));
    }
    Ok(())
}

fn check_url(url: &str) -> Result<(), String> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(format!(
            "the URL {url:?} must start with http:// or https://"
        ))
    }
}

/// A period's length in milliseconds.
pub fn period_ms(every: &str) -> Result<i64, String> {
    let bad = || {
        format!(
            "every = {every:?} is not hourly, daily, or a number followed by s, m or h (such as 15m)"
        )
    };
    let ms = match every {
        "hourly" => 3_600_000,
        "daily" => 86_400_000,
        _ => {
            let (n, unit) = every.split_at(every.len().saturating_sub(1));
            let n: i64 = n.parse().map_err(|_| bad())?;
            let unit_ms = match unit {
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                _ => return Err(bad()),
            };
            n.checked_mul(unit_ms)
                .filter(|ms| *ms > 0)
                .ok_or_else(bad)?
        }
    };
    if 86_400_000 % ms != 0 && ms % 86_400_000 != 0 {
        return Err(format!(
            "every = {every:?} does not divide a day into whole periods"
        ));
    }
    Ok(ms)
}

impl ExportConfig {
    pub fn check(&self) -> Result<(), String> {
        check_name(&self.name)?;
        period_ms(&self.every)?;
        match (&self.directory, &self.url) {
            (Some(_), None) => {}
            (None, Some(url)) => check_url(url)?,
            _ => {
                return Err(format!(
                    "export {}: give either directory or url",
                    self.name
                ));
            }
        }
        for c in &self.columns {
            if !crate::api::calls::CSV_COLUMNS.contains(&c.as_str()) {
                return Err(format!(
                    "export {}: unknown column {c:?}; known: {}",
                    self.name,
                    crate::api::calls::CSV_COLUMNS.join(", ")
                ));
            }
        }
        Ok(())
    }

    fn target(&self) -> Target {
        match (&self.directory, &self.url) {
            (Some(dir), _) => Target::Directory(dir.clone()),
            (None, url) => Target::Http {
                url: url.clone().unwrap_or_default(),
                headers: self.headers.clone().into_iter().collect(),
                hmac_secret: self.hmac_secret.clone(),
                timeout: Duration::from_secs(self.timeout_s),
            },
        }
    }
}

impl WebhookConfig {
    pub fn check(&self) -> Result<(), String> {
        check_name(&self.name)?;
        check_url(&self.url)
    }

    fn target(&self) -> Target {
        Target::Http {
            url: self.url.clone(),
            headers: self.headers.clone().into_iter().collect(),
            hmac_secret: self.hmac_secret.clone(),
            timeout: Duration::from_secs(self.timeout_s),
        }
    }
}

/// The exports and webhooks the console added (kept in the settings).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConsoleExports {
    #[serde(default)]
    pub exports: Vec<ExportConfig>,
    #[serde(default)]
    pub webhooks: Vec<WebhookConfig>,
}

/// The running exports: the spool, and a signal that the console changed
/// them.
pub struct Exports {
    spool_dir: Option<PathBuf>,
    spool: Mutex<Option<Arc<Spool>>>,
    changed: Notify,
    backoff: delivery::Backoff,
}

impl Default for Exports {
    /// No spool: nothing is exported.
    fn default() -> Self {
        Exports {
            spool_dir: None,
            spool: Mutex::new(None),
            changed: Notify::new(),
            backoff: delivery::Backoff::default(),
        }
    }
}

impl Exports {
    /// Exports whose spool is `spool_dir` (in the data directory).
    pub fn new(spool_dir: PathBuf) -> Exports {
        Exports {
            spool_dir: Some(spool_dir),
            ..Exports::default()
        }
    }

    /// As [`Exports::new`], retrying failed deliveries after `backoff`.
    pub fn with_backoff(spool_dir: PathBuf, backoff: delivery::Backoff) -> Exports {
        Exports {
            backoff,
            ..Exports::new(spool_dir)
        }
    }

    fn spool(&self) -> Option<Arc<Spool>> {
        self.spool.lock().ok()?.clone()
    }

    /// Pending and recently delivered items, for the console.
    pub fn status(&self) -> Result<Vec<ItemStatus>, String> {
        match self.spool() {
            Some(spool) => spool.status().map_err(|e| e.to_string()),
            None => Ok(Vec::new()),
        }
    }

    /// An operator's "try now" (`discard` false) or "discard" of a pending
    /// item; whether it was pending.
    pub fn act_on(&self, id: &str, discard: Option<&str>) -> Result<bool, String> {
        let spool = self
            .spool()
            .ok_or_else(|| "the export spool is not open".to_owned())?;
        match discard {
            Some(reason) => spool.discard(id, reason),
            None => spool.retry_now(id),
        }
        .map_err(|e| e.to_string())
    }

    /// The console changed its exports: start again with them.
    pub fn reload(&self) {
        self.changed.notify_one();
    }
}

/// The console's exports and webhooks.
pub fn console_exports(app: &AppState) -> Result<ConsoleExports, String> {
    match app.store.accounts().setting(CONSOLE_KEY) {
        Ok(Some(text)) => serde_json::from_str(&text)
            .map_err(|e| format!("the exports saved in the console do not read: {e}")),
        Ok(None) => Ok(ConsoleExports::default()),
        Err(e) => Err(e.to_string()),
    }
}

pub fn save_console_exports(app: &AppState, exports: &ConsoleExports) -> Result<(), String> {
    let text = serde_json::to_string(exports).map_err(|e| e.to_string())?;
    app.store
        .accounts()
        .set_setting(CONSOLE_KEY, &text)
        .map_err(|e| e.to_string())
}

/// Every export and webhook: the config file's, then the console's.
fn all(app: &AppState) -> (Vec<ExportConfig>, Vec<WebhookConfig>) {
    let mut exports = app.config.exports.clone();
    let mut webhooks = app.config.webhooks.clone();
    match console_exports(app) {
        Ok(c) => {
            exports.extend(c.exports);
            webhooks.extend(c.webhooks);
        }
        Err(e) => warn!("{e}; only the config file's exports run"),
    }
    (exports, webhooks)
}

fn export_target(name: &str) -> String {
    format!("export:{name}")
}

fn webhook_target(name: &str) -> String {
    format!("webhook:{name}")
}

/// Runs the exports and webhooks until `stop`.
/// The claim of the process that sends a shared store's exports and
/// webhooks ("cdrhub" and 0x3000).
const EXPORTS_CLAIM: i64 = 0x6364_7268_7562_3000;

/// Runs the exports and webhooks (see [`run`]). On a store several
/// processes share (PostgreSQL), one of them sends them, the holder of a
/// claim; the others wait and take over when it ends, from the positions
/// kept in the shared settings. Two senders would deliver everything twice.
pub async fn run_when_ours(app: AppState, mut stop: watch::Receiver<bool>) {
    let claims = match crate::bus::claims_of(&app).await {
        Ok(claims) => claims,
        Err(e) => {
            warn!(error = %e, "cannot ask the store who sends the exports; this process does not");
            return;
        }
    };
    let Some(claims) = claims else {
        return run(app, stop).await;
    };
    loop {
        match crate::bus::with_claims(&claims, |c| c.try_take(EXPORTS_CLAIM)).await {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => warn!(error = %e, "cannot ask who sends the exports; asking again"),
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
    info!("this process sends the exports and webhooks of the shared store");
    run(app, stop).await;
    crate::bus::release_claims(claims).await;
}

pub async fn run(app: AppState, mut stop: watch::Receiver<bool>) {
    let Some(dir) = app.exports.spool_dir.clone() else {
        return;
    };
    let spool = {
        let at = dir.clone();
        match tokio::task::spawn_blocking(move || Spool::open(&at)).await {
            Ok(Ok(spool)) => Arc::new(spool),
            Ok(Err(e)) => {
                warn!(error = %e, "cannot open the export spool in {}; nothing is exported", dir.display());
                return;
            }
            Err(e) => {
                warn!(error = %e, "cannot open the export spool");
                return;
            }
        }
    };
    if let Ok(mut s) = app.exports.spool.lock() {
        *s = Some(spool.clone());
    }
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    tokio::pin!(stopped);
    loop {
        let app2 = app.clone();
        let (exports, webhooks) = tokio::task::spawn_blocking(move || all(&app2))
            .await
            .unwrap_or_default();
        let mut targets = HashMap::new();
        for e in &exports {
            targets.insert(export_target(&e.name), e.target());
        }
        for w in &webhooks {
            targets.insert(webhook_target(&w.name), w.target());
        }
        if !exports.is_empty() || !webhooks.is_empty() {
            info!(
                exports = exports.len(),
                webhooks = webhooks.len(),
                "exports and webhooks running"
            );
        }
        let (inner_stop, inner_rx) = watch::channel(false);
        let options = DeliveryOptions {
            backoff: app.exports.backoff,
            tls: None,
        };
        let deliveries = tokio::spawn(delivery::run(spool.clone(), targets, options, inner_rx));
        let again = loop {
            tokio::select! {
                () = &mut stopped => break false,
                _ = app.exports.changed.notified() => break true,
                _ = tokio::time::sleep(TICK) => {
                    let (app2, spool2) = (app.clone(), spool.clone());
                    let (e2, w2) = (exports.clone(), webhooks.clone());
                    let _ = tokio::task::spawn_blocking(move || produce(&app2, &spool2, &e2, &w2)).await;
                }
            }
        };
        let _ = inner_stop.send(true);
        let _ = deliveries.await;
        if !again {
            return;
        }
    }
}

/// Spools what is due: each export's finished periods, each webhook's
/// newly ended calls.
fn produce(app: &AppState, spool: &Spool, exports: &[ExportConfig], webhooks: &[WebhookConfig]) {
    let now = Timestamp::now();
    for e in exports {
        if let Err(err) = produce_export(app, spool, e, now) {
            warn!(export = %e.name, error = %err, "cannot export now; trying again");
        }
    }
    for w in webhooks {
        if let Err(err) = produce_webhook(app, spool, w, now) {
            warn!(webhook = %w.name, error = %err, "cannot look for ended calls now; trying again");
        }
    }
}

fn setting_ms(app: &AppState, key: &str) -> Result<Option<i64>, String> {
    Ok(app
        .store
        .accounts()
        .setting(key)
        .map_err(|e| e.to_string())?
        .and_then(|v| v.parse().ok()))
}

fn set_setting_ms(app: &AppState, key: &str, ms: i64) -> Result<(), String> {
    app.store
        .accounts()
        .set_setting(key, &ms.to_string())
        .map_err(|e| e.to_string())
}

/// Every call that ended (`by` its end, or by when it was written) in
/// [`from`, `to`), of `source`, with the time it was found by.
fn ended(
    app: &AppState,
    by: EndedBy,
    from: Timestamp,
    to: Timestamp,
    source: &Option<String>,
) -> Result<Vec<(Timestamp, Call)>, String> {
    let mut out: Vec<(Timestamp, Call)> = Vec::new();
    loop {
        let page = app
            .store
            .ended_calls(&EndedCallsQuery {
                by,
                from,
                to,
                source: source.clone(),
                after: out.last().map(|(t, c)| (*t, c.id.clone())),
                limit: PAGE,
            })
            .map_err(|e| e.to_string())?;
        let more = page.len() == PAGE;
        out.extend(page);
        if !more {
            return Ok(out);
        }
    }
}

/// The export's body of these calls.
pub fn export_body(e: &ExportConfig, calls: &[Call]) -> Vec<u8> {
    match e.format {
        ExportFormat::Ndjson => {
            let mut out = Vec::new();
            for c in calls {
                if let Ok(line) = serde_json::to_vec(c) {
                    out.extend(line);
                    out.push(b'\n');
                }
            }
            out
        }
        ExportFormat::Csv => {
            let all = crate::api::calls::CSV_COLUMNS;
            let columns: Vec<usize> = if e.columns.is_empty() {
                (0..all.len()).collect()
            } else {
                e.columns
                    .iter()
                    .filter_map(|c| all.iter().position(|a| a == c))
                    .collect()
            };
            let header: Vec<&str> = columns.iter().map(|i| all[*i]).collect();
            crate::spreadsheet::csv_chunk(
                Some(&header),
                calls.iter().map(|c| {
                    let row = crate::api::calls::csv_row(c);
                    columns.iter().map(|i| row[*i].clone()).collect::<Vec<_>>()
                }),
            )
        }
    }
}

fn produce_export(
    app: &AppState,
    spool: &Spool,
    e: &ExportConfig,
    now: Timestamp,
) -> Result<(), String> {
    let period = period_ms(&e.every)?;
    let key = format!("export.{}.done_upto", e.name);
    let done = match setting_ms(app, &key)? {
        Some(done) => done,
        None => {
            // A new export starts with the period in progress: history is
            // for the CSV download.
            let start = now.0.div_euclid(period) * period;
            set_setting_ms(app, &key, start)?;
            start
        }
    };
    let delay = i64::try_from(e.delay_s.saturating_mul(1000)).unwrap_or(i64::MAX);
    let mut from = done;
    while from + period + delay <= now.0 {
        let to = from + period;
        let calls: Vec<Call> = ended(
            app,
            EndedBy::EndedAt,
            Timestamp(from),
            Timestamp(to),
            &e.source,
        )?
        .into_iter()
        .map(|(_, c)| c)
        .collect();
        let stamp = Timestamp(from).to_rfc3339();
        // 20261201T1000; with the seconds for periods shorter than a minute.
        let end = if period % 60_000 == 0 { 16 } else { 19 };
        let compact: String = stamp[..end]
            .chars()
            .filter(|c| *c != '-' && *c != ':')
            .collect();
        let (extension, content_type) = match e.format {
            ExportFormat::Csv => ("csv", "text/csv; charset=utf-8"),
            ExportFormat::Ndjson => ("ndjson", "application/x-ndjson"),
        };
        let item = Item {
            id: format!("export:{}:{stamp}", e.name),
            name: format!("{}-{compact}.{extension}", e.name),
            content_type: content_type.to_owned(),
            body: export_body(e, &calls),
            target_name: export_target(&e.name),
        };
        spool.add(item).map_err(|e| e.to_string())?;
        info!(export = %e.name, period = %stamp, calls = calls.len(), "export spooled");
        from = to;
        set_setting_ms(app, &key, from)?;
    }
    Ok(())
}

fn produce_webhook(
    app: &AppState,
    spool: &Spool,
    w: &WebhookConfig,
    now: Timestamp,
) -> Result<(), String> {
    let key = format!("webhook.{}.upto", w.name);
    let upto = match setting_ms(app, &key)? {
        Some(upto) => upto,
        None => {
            set_setting_ms(app, &key, now.0)?;
            return Ok(());
        }
    };
    let to = now.0;
    let calls = ended(
        app,
        EndedBy::WrittenAt,
        Timestamp(upto - WEBHOOK_OVERLAP_MS),
        Timestamp(to),
        &w.source,
    )?;
    for (_, c) in &calls {
        let body = serde_json::to_vec(&serde_json::json!({ "event": "call_ended", "call": c }))
            .map_err(|e| e.to_string())?;
        spool
            .add(Item {
                id: format!("webhook:{}:{}", w.name, c.id),
                name: format!("{}.json", c.id),
                content_type: "application/json".to_owned(),
                body,
                target_name: webhook_target(&w.name),
            })
            .map_err(|e| e.to_string())?;
    }
    set_setting_ms(app, &key, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_divide_a_day() {
        assert_eq!(period_ms("hourly"), Ok(3_600_000));
        assert_eq!(period_ms("daily"), Ok(86_400_000));
        assert_eq!(period_ms("15m"), Ok(900_000));
        assert_eq!(period_ms("2s"), Ok(2_000));
        assert!(period_ms("7m").unwrap_err().contains("whole periods"));
        assert!(period_ms("weekly").unwrap_err().contains("not hourly"));
        assert!(period_ms("0h").is_err());
    }
}
