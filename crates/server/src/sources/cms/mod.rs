//! The Cisco Meeting Server CDR receiver: `POST /ingest/cms`.
//!
//! A Call Bridge POSTs `<records>` documents and deletes its copy once it gets
//! `200 OK` (reference/cms-cdr.md A.1). So: decode the whole document first
//! (a malformed one is refused whole with 400 and changes nothing), commit
//! every record, and only then answer 200. If the store cannot commit, 503
//! makes the Call Bridge keep the records and retry.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, OriginalUri, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cdrhub_model::{SOURCE_CMS, Timestamp};
use cdrhub_protocols::cms;
use cdrhub_store::{CmsIngest, IngestBatch, IngestPayload};
use serde::Deserialize;
use tracing::{debug, warn};

use crate::AppState;

/// `[sources.cms]`: the Cisco Meeting Server CDR receiver.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CmsSourceConfig {
    /// Accept CDRs. Default true.
    #[serde(default = "crate::config::yes")]
    pub enabled: bool,
    /// The URL path Call Bridges POST to; use it in the receiver URI you give
    /// CMS (`http://host:8200/ingest/cms`). Default `/ingest/cms`.
    #[serde(default = "default_path")]
    pub path: String,
    /// Largest POST body accepted, in bytes; a larger one gets 413. Default 8 MiB.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// The addresses or subnets Call Bridges POST from; others get 403
    /// before their body is read. Empty: all.
    #[serde(default)]
    pub allow: super::guard::AllowList,
    /// Concurrent calls the Call Bridges are licensed or sized for: the
    /// "Max Call" column of the statistics. Default none.
    #[serde(default)]
    pub capacity: Option<u32>,
}

impl Default for CmsSourceConfig {
    fn default() -> Self {
        CmsSourceConfig {
            enabled: true,
            path: default_path(),
            max_body_bytes: default_max_body(),
            allow: Default::default(),
            capacity: None,
        }
    }
}

impl CmsSourceConfig {
    pub(crate) fn check(&self) -> Result<(), String> {
        if !self.path.starts_with('/') || self.path.contains(['?', '#', '{', '}', '*']) {
            return Err(format!(
                "sources.cms.path {:?} must be an absolute URL path such as \"/ingest/cms\"",
                self.path
            ));
        }
        if self.path.starts_with("/api/") {
            return Err(format!(
                "sources.cms.path {:?} may not lie under /api/",
                self.path
            ));
        }
        if self.max_body_bytes < 1024 {
            return Err("sources.cms.max_body_bytes must be at least 1024".into());
        }
        Ok(())
    }
}

fn default_path() -> String {
    "/ingest/cms".into()
}
fn default_max_body() -> usize {
    8 * 1024 * 1024
}

/// Bodies larger than this are decoded on a blocking thread, so that a big
/// document does not hold up other connections on the runtime.
const INLINE_DECODE_LIMIT: usize = 128 * 1024;

/// `system_id` from the receiver URI's query string (CMS passes it through).
fn system_id(query: Option<&str>) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == "system_id" && !v.is_empty()).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%'
            && let Some(v) = bytes
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b == b'+' { b' ' } else { b });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn plain(status: StatusCode, message: String) -> Response {
    let mut r = (status, format!("{message}\n")).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

pub(crate) async fn ingest(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    OriginalUri(uri): OriginalUri,
    peer_seen: super::guard::Peer,
    request: axum::extract::Request,
) -> Response {
    let system = system_id(uri.query());
    let receiver = uri
        .path_and_query()
        .map(|pq| pq.as_str().to_owned())
        .unwrap_or_else(|| uri.path().to_owned());
    // Until the body is decoded the sender is known by system_id or address.
    let provisional_sender = system.clone().unwrap_or_else(|| peer.ip().to_string());
    // Checked before a byte of the body is read.
    if let Err(ip) = app.config.sources.cms.allow.check(peer_seen) {
        app.metrics
            .ingest_response(SOURCE_CMS, StatusCode::FORBIDDEN);
        debug!(%ip, "CMS POST from an address outside sources.cms.allow refused");
        return plain(
            StatusCode::FORBIDDEN,
            format!("the address {ip} may not send CMS records (sources.cms.allow)"),
        );
    }
    let body = match Bytes::from_request(request, &()).await {
        Ok(b) => b,
        Err(rejection) => {
            let status = rejection.status();
            let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                format!(
                    "the body is larger than the {}-byte limit (sources.cms.max_body_bytes)",
                    app.config.sources.cms.max_body_bytes
                )
            } else {
                format!("the body could not be read: {}", rejection.body_text())
            };
            app.metrics.ingest_response(SOURCE_CMS, status);
            app.store
                .record_rejected(SOURCE_CMS, &provisional_sender, &message);
            warn!(sender = %provisional_sender, %status, "{message}");
            return plain(status, message);
        }
    };

    let decoded = if body.len() > INLINE_DECODE_LIMIT {
        let b = body.clone();
        match tokio::task::spawn_blocking(move || cms::decode(&b)).await {
            Ok(d) => d,
            Err(e) => {
                app.metrics
                    .ingest_response(SOURCE_CMS, StatusCode::SERVICE_UNAVAILABLE);
                return plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("the document could not be decoded now, retry later: {e}"),
                );
            }
        }
    } else {
        cms::decode(&body)
    };
    let batch = match decoded {
        Ok(batch) => batch,
        Err(e) => {
            let message = format!("rejected CMS CDR document: {e}");
            app.metrics
                .ingest_response(SOURCE_CMS, StatusCode::BAD_REQUEST);
            app.store
                .record_rejected(SOURCE_CMS, &provisional_sender, &message);
            warn!(sender = %provisional_sender, peer = %peer, "{message}");
            return plain(StatusCode::BAD_REQUEST, message);
        }
    };

    // Several Call Bridges may post to one URL: tell them apart by the
    // system_id they were given, else by their Call Bridge id, else by address.
    let sender = system
        .or_else(|| batch.call_bridge.clone())
        .unwrap_or(provisional_sender);
    let records = batch.records.len();
    let submission = IngestBatch {
        sender: sender.clone(),
        received_at: Timestamp::now(),
        payload: IngestPayload::Cms(CmsIngest {
            receiver,
            body,
            batch,
        }),
    };
    match crate::bus::submit(&app, submission).await {
        Ok(outcome) => {
            app.metrics.ingest_response(SOURCE_CMS, StatusCode::OK);
            debug!(%sender, records, stored = outcome.stored, duplicates = outcome.duplicates, "CMS records committed");
            // CMS expects a plain 200 (A.1); an empty body, like Cisco's sample receiver.
            StatusCode::OK.into_response()
        }
        Err(e) => {
            app.metrics
                .ingest_response(SOURCE_CMS, StatusCode::SERVICE_UNAVAILABLE);
            warn!(%sender, records, error = %e, "could not commit CMS records; answering 503 so the Call Bridge retries");
            let mut r = plain(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the records were not stored, retry later: {e}"),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_id_is_read_from_the_query() {
        assert_eq!(system_id(Some("system_id=acano1")), Some("acano1".into()));
        assert_eq!(system_id(Some("a=b&system_id=cb%201")), Some("cb 1".into()));
        assert_eq!(system_id(Some("system_id=")), None);
        assert_eq!(system_id(None), None);
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
    }
}
