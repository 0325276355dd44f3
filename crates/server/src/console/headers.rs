//! Security headers on every response (issue 9): the console's pages, the
//! API, the ingest endpoints and `/metrics` alike. A header a handler set
//! itself is left as it is.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use super::OverHttps;

/// What a page may load: scripts and styles from the server only (inline
/// styles aside), no framing, forms posted to the server only.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Set on every response.
const ALWAYS: [(HeaderName, &str); 5] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "same-origin"),
    (
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    ),
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
];

/// Over HTTPS only: browsers ignore it over plain HTTP, and a server that
/// also answers on plain HTTP (loopback) must stay reachable there.
const HSTS: &str = "max-age=31536000";

/// The middleware (`axum::middleware::from_fn`), outermost in
/// [`crate::router`].
pub(crate) async fn security_headers(request: Request, next: Next) -> Response {
    let https = request.extensions().get::<OverHttps>().is_some();
    let mut response = next.run(request).await;
    add(response.headers_mut(), https);
    response
}

fn add(headers: &mut HeaderMap, https: bool) {
    for (name, value) in ALWAYS {
        set_default(headers, name, value);
    }
    // Pages show personal call data: no copy of them in any cache.
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"));
    if html {
        set_default(headers, header::CACHE_CONTROL, "no-store");
    }
    if https {
        set_default(headers, header::STRICT_TRANSPORT_SECURITY, HSTS);
    }
}

fn set_default(headers: &mut HeaderMap, name: HeaderName, value: &'static str) {
    headers
        .entry(name)
        .or_insert_with(|| HeaderValue::from_static(value));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_gets_no_store_and_a_handlers_own_headers_stay() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        headers.insert(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("SAMEORIGIN"),
        );
        add(&mut headers, false);
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(headers[header::X_FRAME_OPTIONS], "SAMEORIGIN");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(!headers.contains_key(header::STRICT_TRANSPORT_SECURITY));
    }

    #[test]
    fn other_content_keeps_its_caching_and_https_adds_hsts() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        add(&mut headers, true);
        assert!(!headers.contains_key(header::CACHE_CONTROL));
        assert_eq!(headers[header::STRICT_TRANSPORT_SECURITY], HSTS);
        assert_eq!(
            headers[header::CONTENT_SECURITY_POLICY],
            CONTENT_SECURITY_POLICY
        );
    }
}
