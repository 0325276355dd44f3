//! `/api/v1/sources` and `/api/v1/gaps`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use cdrhub_store::GapFilter;
use serde_json::{Value, json};

use super::{ApiError, blocking};
use crate::AppState;

/// Per source and sender: last record time, records in the last minute and in
/// total, rejected documents, duplicates, gaps.
pub(crate) async fn sources(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let store = app.store.clone();
    let senders = blocking(move || store.senders()).await?;
    let cms = &app.config.sources.cms;
    Ok(Json(json!({
        "sources": [{
            "source": "cms",
            "enabled": cms.enabled,
            "endpoint": cms.path,
            "senders": senders.iter().filter(|s| s.source == "cms").collect::<Vec<_>>(),
        }],
    })))
}

pub(crate) async fn gaps(
    State(app): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let mut filter = GapFilter {
        limit: 1000,
        ..Default::default()
    };
    for (key, value) in &params {
        match key.as_str() {
            "source" => filter.source = Some(value.clone()),
            "sender" => filter.sender = Some(value.clone()),
            "open" => {
                filter.open_only = match value.as_str() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => {
                        return Err(ApiError::BadRequest(format!(
                            "parameter open={value:?} must be true or false"
                        )));
                    }
                }
            }
            "limit" => {
                filter.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=10_000).contains(n))
                    .ok_or_else(|| {
                        ApiError::BadRequest(format!(
                            "parameter limit={value:?} must be between 1 and 10000"
                        ))
                    })?
            }
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "unknown parameter {key:?}; known: source, sender, open, limit"
                )));
            }
        }
    }
    let store = app.store.clone();
    let gaps = blocking(move || store.gaps(&filter)).await?;
    Ok(Json(json!({ "gaps": gaps })))
}
