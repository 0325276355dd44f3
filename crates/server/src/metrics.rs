//! `/metrics` in the Prometheus text format, and `/healthz`.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Mutex;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// Counters the server keeps itself (the store keeps the rest).
pub struct Metrics {
    ingest_responses: Mutex<HashMap<(&'static str, u16), u64>>,
    /// When this server started (the console's live status shows it).
    pub started_at: cdrhub_model::Timestamp,
    /// The contact-centre CTI connections.
    pub cti: std::sync::Arc<crate::sources::cti::Links>,
    /// The RADIUS accounting server's counters per client.
    pub radius: std::sync::Arc<crate::sources::radius::RadiusStatus>,
    /// The gateway feed's counters.
    pub feed: std::sync::Arc<crate::sources::feed::FeedStatus>,
    /// The HEP listener's counters.
    pub hep: std::sync::Arc<crate::sources::hep::HepStatus>,
    /// The ingest bus's counters (collector and worker).
    pub bus: std::sync::Arc<crate::bus::BusStatus>,
    /// What the web listeners turned away.
    pub http: std::sync::Arc<crate::listener::HttpStatus>,
    /// Whether the store's last commit of records failed, and why.
    pub writes: WriteHealth,
    /// The kernel inodes of the UDP sources' sockets, by source: their
    /// drops are read from `/proc/net/udp` when asked.
    pub udp_inodes: Mutex<HashMap<&'static str, u64>>,
}

/// The outcome of the store's commits of records: the console's alarm while
/// they fail (a full disk, a database that does not answer), gone with the
/// first commit that succeeds.
#[derive(Debug, Default)]
pub struct WriteHealth {
    failing: Mutex<Option<(cdrhub_model::Timestamp, String)>>,
    failures: std::sync::atomic::AtomicU64,
}

impl WriteHealth {
    /// Notes how a commit ended.
    pub fn note<T>(&self, result: &Result<T, cdrhub_store::StoreError>) {
        let mut failing = self.failing.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(_) => *failing = None,
            Err(e) => {
                self.failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if failing.is_none() {
                    tracing::error!(error = %e, "records cannot be committed; senders are told to retry");
                }
                let since = failing
                    .as_ref()
                    .map_or_else(cdrhub_model::Timestamp::now, |f| f.0);
                *failing = Some((since, e.to_string()));
            }
        }
    }

    /// The alarm while commits fail.
    pub fn alarm(&self) -> Option<String> {
        let failing = self.failing.lock().unwrap_or_else(|e| e.into_inner());
        failing.as_ref().map(|(since, error)| {
            format!(
                "Records cannot be stored since {} ({error}); senders are told to retry and nothing they were told was stored is lost.",
                since.to_rfc3339()
            )
        })
    }

    /// Commits of records that failed since the start.
    pub fn failures(&self) -> u64 {
        self.failures.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            ingest_responses: Mutex::default(),
            started_at: cdrhub_model::Timestamp::now(),
            cti: Default::default(),
            radius: Default::default(),
            feed: Default::default(),
            hep: Default::default(),
            bus: Default::default(),
            http: Default::default(),
            writes: WriteHealth::default(),
            udp_inodes: Mutex::default(),
        }
    }
}

impl Metrics {
    /// Remembers a UDP source's socket, to report its kernel drops.
    pub(crate) fn udp_socket(&self, source: &'static str, socket: &tokio::net::UdpSocket) {
        if let (Some(inode), Ok(mut inodes)) =
            (crate::sources::socket_inode(socket), self.udp_inodes.lock())
        {
            inodes.insert(source, inode);
        }
    }

    /// Datagrams the kernel dropped for a UDP source (its receive buffer
    /// was full), when it runs on Linux.
    pub(crate) fn udp_drops(&self, source: &str) -> Option<u64> {
        let inode = *self.udp_inodes.lock().ok()?.get(source)?;
        crate::sources::udp_drops(inode)
    }

    pub(crate) fn ingest_response(&self, source: &'static str, status: StatusCode) {
        if let Ok(mut m) = self.ingest_responses.lock() {
            *m.entry((source, status.as_u16())).or_default() += 1;
        }
    }
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub(crate) async fn render(State(app): State<AppState>) -> Response {
    let store = app.store.clone();
    let totals = match tokio::task::spawn_blocking(move || store.totals()).await {
        Ok(Ok(t)) => Some(t),
        _ => None,
    };
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    family("cdrhub_up", "gauge", "1 when the store answers reads.");
    let _ = writeln!(out, "cdrhub_up {}", u8::from(totals.is_some()));

    if let Some(t) = &totals {
        type Field = fn(&cdrhub_store::SenderStats) -> u64;
        let per_sender: [(&str, &str, Field); 6] = [
            (
                "cdrhub_records_total",
                "Records stored, per source and sender.",
                |s| s.records_total,
            ),
            (
                "cdrhub_duplicate_records_total",
                "Re-sent records acknowledged and dropped.",
                |s| s.duplicates,
            ),
            (
                "cdrhub_rejected_documents_total",
                "Documents refused as malformed or too large.",
                |s| s.rejected_documents,
            ),
            (
                "cdrhub_sequence_gaps_total",
                "Gaps detected in a sender's record sequence.",
                |s| s.gaps,
            ),
            (
                "cdrhub_missing_records_total",
                "Records known to be missing from a sender's sequence.",
                |s| s.missing_records,
            ),
            (
                "cdrhub_records_last_minute",
                "Records received in the last 60 seconds.",
                |s| s.records_last_minute,
            ),
        ];
        for (name, help, field) in per_sender {
            let kind = if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for s in &t.per_sender {
                let _ = writeln!(
                    out,
                    "{name}{{source=\"{}\",sender=\"{}\"}} {}",
                    label(&s.source),
                    label(&s.sender),
                    field(s)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP cdrhub_calls Calls in the store.\n# TYPE cdrhub_calls gauge\ncdrhub_calls {}",
            t.calls
        );
        let _ = writeln!(
            out,
            "# HELP cdrhub_open_gaps Sequence gaps whose records have not all arrived.\n# TYPE cdrhub_open_gaps gauge\ncdrhub_open_gaps {}",
            t.open_gaps
        );
    }

    let _ = writeln!(
        out,
        "# HELP cdrhub_ingest_responses_total Answers given to senders, per source and HTTP status.\n# TYPE cdrhub_ingest_responses_total counter"
    );
    if let Ok(m) = app.metrics.ingest_responses.lock() {
        let mut rows: Vec<_> = m.iter().collect();
        rows.sort();
        for ((source, status), n) in rows {
            let _ = writeln!(
                out,
                "cdrhub_ingest_responses_total{{source=\"{source}\",status=\"{status}\"}} {n}"
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP cdrhub_store_write_failures_total Commits of records that failed (senders were told to retry).\n# TYPE cdrhub_store_write_failures_total counter\ncdrhub_store_write_failures_total {}",
        app.metrics.writes.failures()
    );
    let h = &app.metrics.http;
    let _ = writeln!(
        out,
        "# HELP cdrhub_http_refused_total Web connections and requests turned away, per reason.\n# TYPE cdrhub_http_refused_total counter"
    );
    for (reason, n) in [
        ("max_connections", &h.refused_at_cap),
        ("not_allowed", &h.refused_not_allowed),
        ("tls_handshake", &h.tls_failed),
        ("body_timeout", &h.body_timeouts),
    ] {
        let _ = writeln!(
            out,
            "cdrhub_http_refused_total{{reason=\"{reason}\"}} {}",
            n.load(std::sync::atomic::Ordering::Relaxed)
        );
    }
    let job = app.retention.view();
    if let Some(s) = job.storage {
        for (name, help, value) in [
            (
                "cdrhub_journal_db_bytes",
                "Size of cdrhub.db and its write-ahead log.",
                s.journal_bytes,
            ),
            (
                "cdrhub_calls_db_bytes",
                "Size of calls.db and its write-ahead log.",
                s.calls_bytes,
            ),
            (
                "cdrhub_disk_free_bytes",
                "Free space of the data directory's file system.",
                s.disk_free_bytes,
            ),
            (
                "cdrhub_disk_size_bytes",
                "Size of the data directory's file system.",
                s.disk_total_bytes,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP cdrhub_alarms Alarms the console shows (a failed data removal, a disk nearly full).\n# TYPE cdrhub_alarms gauge\ncdrhub_alarms {}",
        job.alarms.len()
    );
    let mut r = out.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

pub(crate) async fn healthz(State(app): State<AppState>) -> Response {
    let store = app.store.clone();
    match tokio::task::spawn_blocking(move || store.check_health()).await {
        Ok(Ok(())) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({"status": "ok"})),
        )
            .into_response(),
        Ok(Err(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": "unavailable", "error": e.to_string()})),
        )
            .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": "unavailable", "error": e.to_string()})),
        )
            .into_response(),
    }
}
