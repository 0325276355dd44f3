//! Data management (issue 3, point 7; seed 002 "Administration"): the
//! daily retention job that removes calls and records past the CDR keeping
//! days and audit entries and gaps past the log keeping days, the same
//! removal on demand ("Clear History Data"), and the alarms the console
//! shows when a run fails or the disk is nearly full.
//!
//! One removal runs at a time, on a blocking thread, a step at a time (see
//! `Store::prune`), so ingest goes on beside it. The last run is kept in the
//! settings, so the console shows it after a restart.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cdrhub_model::Timestamp;
use cdrhub_store::{Accounts, AuditEntry, PruneReport, PruneRequest, StorageStatus, StoreError};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::AppState;

/// How long calls, their legs, statistics and records are kept (seed 002,
/// "CDR Keeping Days").
pub const DEFAULT_CDR_KEEPING_DAYS: u32 = 180;
/// How long audit entries and gaps are kept ("Log Data Keeping Days").
pub const DEFAULT_LOG_KEEPING_DAYS: u32 = 365;
/// Below this share of the disk free, the console shows an alarm.
pub const DISK_ALARM_PERCENT: u64 = 10;

/// How often the disk is checked and whether the daily run is due.
const CHECK_EVERY: Duration = Duration::from_secs(300);
/// The first daily run waits this long after start: the server settles
/// first (and a restart under load is not followed by a removal at once).
const FIRST_RUN_AFTER: Duration = Duration::from_secs(15 * 60);
const DAY_MS: i64 = 86_400_000;

const CDR_DAYS_KEY: &str = "retention.cdr_keeping_days";
const LOG_DAYS_KEY: &str = "retention.log_keeping_days";
const LAST_RUN_KEY: &str = "retention.last_run";
const LAST_DAILY_KEY: &str = "retention.last_daily_at";

/// The keeping days, as set in the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepingDays {
    pub cdr: u32,
    pub log: u32,
}

impl KeepingDays {
    pub const DEFAULT: KeepingDays = KeepingDays {
        cdr: DEFAULT_CDR_KEEPING_DAYS,
        log: DEFAULT_LOG_KEEPING_DAYS,
    };

    pub fn load(accounts: &dyn Accounts) -> Result<KeepingDays, StoreError> {
        let read = |key: &str, default: u32| -> Result<u32, StoreError> {
            Ok(accounts
                .setting(key)?
                .and_then(|v| v.parse().ok())
                .unwrap_or(default))
        };
        Ok(KeepingDays {
            cdr: read(CDR_DAYS_KEY, Self::DEFAULT.cdr)?,
            log: read(LOG_DAYS_KEY, Self::DEFAULT.log)?,
        })
    }

    pub fn save(self, accounts: &dyn Accounts) -> Result<(), StoreError> {
        accounts.set_setting(CDR_DAYS_KEY, &self.cdr.to_string())?;
        accounts.set_setting(LOG_DAYS_KEY, &self.log.to_string())
    }

    /// What the daily run removes at `now`.
    pub fn request(self, now: Timestamp) -> PruneRequest {
        let before = |days: u32| Some(Timestamp(now.0 - i64::from(days) * DAY_MS));
        PruneRequest {
            calls_before: before(self.cdr),
            audit_before: before(self.log),
            gaps_before: before(self.log),
        }
    }
}

/// One removal: the daily run or a clearing asked for in the console.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetentionRun {
    /// `daily`, or what an admin asked to clear.
    pub trigger: String,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// Counted as the run goes.
    pub removed: PruneReport,
    pub error: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    running: Option<RetentionRun>,
    last: Option<RetentionRun>,
    storage: Option<StorageStatus>,
    storage_error: Option<String>,
}

/// The retention job's state, shared by the daily loop and the console.
#[derive(Debug, Default)]
pub struct Retention {
    state: Mutex<State>,
}

/// What the console shows of the job.
#[derive(Debug, Clone, Default)]
pub struct RetentionView {
    pub running: Option<RetentionRun>,
    pub last: Option<RetentionRun>,
    pub storage: Option<StorageStatus>,
    /// One sentence each: a failed run, a disk nearly full.
    pub alarms: Vec<String>,
}

/// A removal was asked for while one runs.
#[derive(Debug)]
pub struct AlreadyRunning;

impl Retention {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn view(&self) -> RetentionView {
        let s = self.lock();
        RetentionView {
            running: s.running.clone(),
            last: s.last.clone(),
            storage: s.storage,
            alarms: s.alarms(),
        }
    }

    /// The alarms only (every console page shows them, so the runs are not
    /// copied for them).
    pub fn alarms(&self) -> Vec<String> {
        self.lock().alarms()
    }

    /// Starts a removal on a blocking thread; `audit`, if given, is written
    /// when it ends, with what was removed.
    pub fn start(
        self: &Arc<Self>,
        app: &AppState,
        request: PruneRequest,
        trigger: String,
        audit: Option<AuditEntry>,
    ) -> Result<(), AlreadyRunning> {
        {
            let mut s = self.lock();
            if s.running.is_some() {
                return Err(AlreadyRunning);
            }
            s.running = Some(RetentionRun {
                trigger,
                started_at: Timestamp::now(),
                finished_at: None,
                removed: PruneReport::default(),
                error: None,
            });
        }
        let me = self.clone();
        let store = app.store.clone();
        tokio::task::spawn_blocking(move || {
            let result = store.prune(&request, &mut |so_far| {
                if let Some(run) = me.lock().running.as_mut() {
                    run.removed = *so_far;
                }
            });
            let mut run = me.lock().running.clone().expect("set when started");
            run.finished_at = Some(Timestamp::now());
            match result {
                Ok(removed) => {
                    run.removed = removed;
                    info!(trigger = %run.trigger, ?removed, "old data removed");
                }
                Err(e) => {
                    warn!(trigger = %run.trigger, error = %e, "removing old data failed");
                    run.error = Some(e.to_string());
                }
            }
            let accounts = store.accounts();
            if let Ok(json) = serde_json::to_string(&run)
                && let Err(e) = accounts.set_setting(LAST_RUN_KEY, &json)
            {
                warn!(error = %e, "cannot keep the last data removal's result");
            }
            if let Some(mut entry) = audit {
                entry.target = Some(format!(
                    "{}: {}",
                    entry.target.unwrap_or_default(),
                    describe(&run)
                ));
                if let Err(e) = accounts.audit(&entry) {
                    warn!(error = %e, "cannot audit the data removal");
                }
            }
            let storage = store.storage();
            // Done, in one step: what watches the job sees it running until
            // it shows as the last run, with its audit entry written.
            let mut s = me.lock();
            s.running = None;
            s.last = Some(run);
            s.record_storage(storage);
        });
        Ok(())
    }
}

impl State {
    /// One sentence each: a failed run, the disk unreadable or nearly full.
    fn alarms(&self) -> Vec<String> {
        let mut alarms = Vec::new();
        if let Some(error) = self.last.as_ref().and_then(|r| r.error.as_ref()) {
            alarms.push(format!("The last data removal failed: {error}"));
        }
        if let Some(error) = &self.storage_error {
            alarms.push(error.clone());
        }
        if let Some(alarm) = self.storage.and_then(disk_alarm) {
            alarms.push(alarm);
        }
        alarms
    }

    fn record_storage(&mut self, storage: Result<StorageStatus, StoreError>) {
        match storage {
            Ok(status) => {
                self.storage = Some(status);
                self.storage_error = None;
            }
            Err(e) => self.storage_error = Some(e.to_string()),
        }
    }
}

/// The alarm for a disk with less than `DISK_ALARM_PERCENT` free.
fn disk_alarm(s: StorageStatus) -> Option<String> {
    (s.disk_total_bytes > 0 && s.disk_free_bytes * 100 < s.disk_total_bytes * DISK_ALARM_PERCENT)
        .then(|| {
            format!(
                "The disk of the data directory is nearly full: {} free of {}. Lower the keeping days or clear history data.",
                bytes(s.disk_free_bytes),
                bytes(s.disk_total_bytes)
            )
        })
}

/// Bytes for people: `12.3 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// What a run removed, in one line.
pub fn describe(run: &RetentionRun) -> String {
    let r = &run.removed;
    let counts = format!(
        "{} calls, {} legs, {} records, {} statistics rows, {} audit entries, {} gaps removed",
        r.calls, r.legs, r.records, r.statistics_rows, r.audit_entries, r.gaps
    );
    match &run.error {
        Some(e) => format!("{counts}, then failed: {e}"),
        None => counts,
    }
}

/// Checks the disk every few minutes and runs the daily removal when it is
/// due, until `stop`.
pub async fn run_daily(app: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let store = app.store.clone();
    let loaded = tokio::task::spawn_blocking(move || {
        let last = store
            .accounts()
            .setting(LAST_RUN_KEY)
            .ok()
            .flatten()
            .and_then(|json| serde_json::from_str::<RetentionRun>(&json).ok());
        (last, store.storage())
    })
    .await;
    if let Ok((last, storage)) = loaded {
        let mut s = app.retention.lock();
        s.last = s.last.take().or(last);
        s.record_storage(storage);
    }
    let started = tokio::time::Instant::now();
    // The disk is looked at a minute after start, then every few minutes.
    let mut wait = Duration::from_secs(60);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        wait = CHECK_EVERY;
        let store = app.store.clone();
        let checked = tokio::task::spawn_blocking(move || {
            let accounts = store.accounts();
            let last_daily = accounts
                .setting(LAST_DAILY_KEY)?
                .and_then(|v| v.parse::<i64>().ok());
            let days = KeepingDays::load(accounts)?;
            Ok::<_, StoreError>((last_daily, days, store.storage()))
        })
        .await;
        let (last_daily, days, storage) = match checked {
            Ok(Ok(checked)) => checked,
            Ok(Err(e)) => {
                warn!(error = %e, "cannot read the retention settings; will retry");
                continue;
            }
            Err(_) => continue,
        };
        app.retention.lock().record_storage(storage);
        let now = Timestamp::now();
        if started.elapsed() < FIRST_RUN_AFTER || last_daily.is_some_and(|at| now.0 - at < DAY_MS) {
            continue;
        }
        if app
            .retention
            .start(&app, days.request(now), "daily".into(), None)
            .is_ok()
        {
            let store = app.store.clone();
            let at = now.0.to_string();
            let kept = tokio::task::spawn_blocking(move || {
                store.accounts().set_setting(LAST_DAILY_KEY, &at)
            })
            .await;
            if !matches!(kept, Ok(Ok(()))) {
                warn!("cannot keep the time of the daily data removal; it may run again soon");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage(free: u64, total: u64) -> StorageStatus {
        StorageStatus {
            journal_bytes: 1,
            calls_bytes: 1,
            disk_free_bytes: free,
            disk_total_bytes: total,
        }
    }

    #[test]
    fn a_disk_under_a_tenth_free_raises_an_alarm() {
        assert_eq!(disk_alarm(storage(50, 100)), None);
        assert_eq!(disk_alarm(storage(10, 100)), None);
        let alarm = disk_alarm(storage(9 << 30, 100 << 30)).expect("an alarm");
        assert!(alarm.contains("9.0 GiB free of 100.0 GiB"), "{alarm}");
        assert_eq!(disk_alarm(storage(0, 0)), None, "no size known");
    }

    #[test]
    fn a_failed_run_raises_an_alarm_until_one_succeeds() {
        let retention = Retention::default();
        let run = |error: Option<&str>| RetentionRun {
            trigger: "daily".into(),
            started_at: Timestamp(0),
            finished_at: Some(Timestamp(1000)),
            removed: PruneReport::default(),
            error: error.map(str::to_owned),
        };
        retention.lock().last = Some(run(Some("database is locked")));
        assert_eq!(
            retention.alarms(),
            vec!["The last data removal failed: database is locked".to_owned()]
        );
        retention.lock().last = Some(run(None));
        assert!(retention.alarms().is_empty());
    }

    #[test]
    fn keeping_days_become_cutoffs() {
        let now = Timestamp(100 * DAY_MS);
        let r = KeepingDays { cdr: 30, log: 7 }.request(now);
        assert_eq!(r.calls_before, Some(Timestamp(70 * DAY_MS)));
        assert_eq!(r.audit_before, Some(Timestamp(93 * DAY_MS)));
        assert_eq!(r.gaps_before, r.audit_before);
    }
}
