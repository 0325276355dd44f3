//! REST API v1 (JSON). Handlers parse parameters and call the store; the SQL
//! lives in the store crate. Blocking reads run on blocking threads.

pub(crate) mod calls;
mod error;
pub(crate) mod gateways;
pub(crate) mod openapi;
mod sip;
mod status;

use axum::Router;
use axum::routing::{get, post};

pub(crate) use error::ApiError;

use crate::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/calls", get(calls::list))
        .route("/api/v1/calls.csv", get(calls::csv))
        .route("/api/v1/calls/{id}", get(calls::get_one))
        .route("/api/v1/calls/{id}/end", post(calls::force_end))
        .route("/api/v1/sources", get(status::sources))
        .route("/api/v1/gaps", get(status::gaps))
        .route("/api/v1/stats", get(status::stats))
        .route("/api/v1/cc", get(status::contact_centre))
        .route("/api/v1/gateways", get(gateways::list))
        .route("/api/v1/gateways/log", get(gateways::log))
        .route("/api/v1/gateways/{name}/events", get(gateways::events))
        .route("/api/v1/gateways/{name}/report", get(gateways::report))
        .route(
            "/api/v1/gateways/{name}/report.csv",
            get(gateways::report_csv),
        )
        .route("/api/v1/sip/registrations", get(sip::registrations))
        .route("/api/v1/sip/register-stats", get(sip::register_stats))
        .route("/api/v1/openapi.json", get(openapi::document))
}

/// Runs a blocking store read off the async runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, cdrhub_store::StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(ApiError::from)
}

/// As [`blocking`], for work that answers with an API error of its own.
pub(crate) async fn blocking_api<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
}
