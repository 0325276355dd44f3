//! The console's scripts, served from the binary (issue 9: no inline script
//! under the Content-Security-Policy). No login: the login page uses them.

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::AppState;

/// The shared behaviour of every page (`data-print`, `data-confirm`,
/// `data-autosubmit`), included by [`super::page`].
pub(crate) const CONSOLE_JS: &str = "/assets/console.js";
/// The live status's refresh.
pub(crate) const LIVE_JS: &str = "/assets/live.js";
/// A gateway's call events' refresh.
pub(crate) const GATEWAY_EVENTS_JS: &str = "/assets/gateway-events.js";
/// The SIP registrations' reload.
pub(crate) const SIP_JS: &str = "/assets/sip.js";

const SCRIPTS: [(&str, &str); 4] = [
    (CONSOLE_JS, include_str!("assets/console.js")),
    (LIVE_JS, include_str!("assets/live.js")),
    (GATEWAY_EVENTS_JS, include_str!("assets/gateway-events.js")),
    (SIP_JS, include_str!("assets/sip.js")),
];

pub(crate) fn routes() -> Router<AppState> {
    SCRIPTS
        .into_iter()
        .fold(Router::new(), |router, (path, source)| {
            router.route(path, get(move || async move { script(source) }))
        })
}

fn script(source: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        source,
    )
        .into_response()
}
