//! The security headers on every response (issue 9), and a console that
//! works under its Content-Security-Policy: no inline script, no inline
//! event handler, its scripts served by the server without a login.

mod common;

use cdrhub_model::Role;
use common::{CMS, Client, Options, Reply, TestServer, add_user, seeds, signed_in};
use hyper::StatusCode;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// The headers every response carries, whatever it is.
fn assert_common_headers(r: &Reply, what: &str) {
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "same-origin"),
        ("cross-origin-opener-policy", "same-origin"),
        ("content-security-policy", CSP),
    ] {
        assert_eq!(r.header(name), Some(value), "{name} of {what}");
        assert_eq!(
            r.headers.get_all(name).iter().count(),
            1,
            "one {name} on {what}"
        );
    }
}

/// An HTML page's headers: the common ones, and no copy in any cache.
fn assert_page_headers(r: &Reply, what: &str) {
    assert!(r.content_type().starts_with("text/html"), "{what}");
    assert_common_headers(r, what);
    assert_eq!(r.header("cache-control"), Some("no-store"), "{what}");
}

#[tokio::test]
async fn every_kind_of_response_carries_the_headers_and_plain_http_no_hsts() {
    let mut server = TestServer::start().await;
    add_user(&server, "ann", Role::Admin, "ann's long password");

    let mut anonymous = Client::plain(server.http_addr);
    let login = anonymous.get("/login").await;
    assert_eq!(login.status, StatusCode::OK);
    assert_page_headers(&login, "the login page");
    let redirect = anonymous.get("/calls").await;
    assert_eq!(redirect.status, StatusCode::SEE_OTHER);
    assert_common_headers(&redirect, "the redirect to the login page");

    let mut ann = signed_in(&server, "ann", "ann's long password").await;
    let calls = ann.get("/calls").await;
    assert_eq!(calls.status, StatusCode::OK);
    assert_page_headers(&calls, "a signed-in page");

    let api = server.get("/api/v1/calls").await;
    assert_eq!(api.status, StatusCode::OK);
    assert!(api.content_type().starts_with("application/json"));
    assert_common_headers(&api, "an API answer");
    assert_eq!(api.header("cache-control"), None, "JSON keeps its caching");
    let refused = anonymous.get("/api/v1/calls").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_common_headers(&refused, "a refused API call");

    let health = anonymous.get("/healthz").await;
    assert_eq!(health.status, StatusCode::OK);
    assert_common_headers(&health, "/healthz");
    let metrics = anonymous.get("/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert_common_headers(&metrics, "/metrics");
    let missing = anonymous.get("/no/such/page").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_common_headers(&missing, "a 404");
    for doc in seeds() {
        let r = server.post(CMS, doc).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_common_headers(&r, "the CMS ingest's acknowledgement");
    }

    for r in [&login, &calls, &api, &health, &metrics, &missing] {
        assert_eq!(
            r.header("strict-transport-security"),
            None,
            "no HSTS over plain HTTP"
        );
    }
}

#[tokio::test]
async fn over_https_the_answers_also_carry_hsts() {
    let server = TestServer::start_with(Options {
        https: true,
        ..Options::default()
    })
    .await;
    let mut tls = server.https_client();
    for path in ["/login", "/healthz", "/api/v1/calls"] {
        let r = tls.get(path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_common_headers(&r, path);
        assert_eq!(
            r.header("strict-transport-security"),
            Some("max-age=31536000"),
            "{path}"
        );
    }
    let mut plain = server.http_client();
    assert_eq!(
        plain
            .get("/healthz")
            .await
            .header("strict-transport-security"),
        None,
        "the same server over plain HTTP"
    );
}

#[tokio::test]
async fn the_scripts_are_served_without_a_login_and_cached_for_an_hour() {
    let server = TestServer::start().await;
    let mut anonymous = Client::plain(server.http_addr);
    for path in [
        "/assets/console.js",
        "/assets/live.js",
        "/assets/gateway-events.js",
        "/assets/sip.js",
    ] {
        let r = anonymous.get(path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.content_type(), "text/javascript; charset=utf-8", "{path}");
        assert_eq!(
            r.header("cache-control"),
            Some("public, max-age=3600"),
            "{path}"
        );
        assert_common_headers(&r, path);
        assert!(!r.body.is_empty(), "{path}");
    }
    // The login page loads the shared script.
    let login = anonymous.get("/login").await.text();
    assert!(
        login.contains(r#"<script src="/assets/console.js" defer></script>"#),
        "{login}"
    );
}

/// `<script>` elements with content, or without a `src`.
fn inline_scripts(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    let lower = html.to_ascii_lowercase();
    let mut at = 0;
    while let Some(start) = lower[at..].find("<script").map(|i| i + at) {
        let open_end = lower[start..]
            .find('>')
            .map_or(lower.len(), |i| start + i + 1);
        let close = lower[open_end..]
            .find("</script")
            .map_or(lower.len(), |i| open_end + i);
        let tag = &lower[start..open_end];
        if !html[open_end..close].trim().is_empty() || !tag.contains(" src=") {
            found.push(html[start..close].to_owned());
        }
        at = close;
    }
    found
}

/// Attributes named `on…` (inline event handlers) and `javascript:` URLs.
fn inline_handlers(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for tag in html.split('<').skip(1) {
        let tag = tag.split('>').next().unwrap_or_default();
        let bytes = tag.as_bytes();
        for (i, _) in tag.match_indices("on") {
            let after_space = i > 0 && bytes[i - 1].is_ascii_whitespace();
            let letters = bytes[i + 2..]
                .iter()
                .take_while(|b| b.is_ascii_lowercase())
                .count();
            let equals = bytes.get(i + 2 + letters) == Some(&b'=');
            if after_space && letters > 0 && equals {
                found.push(tag.to_owned());
            }
        }
        if tag.to_ascii_lowercase().contains("javascript:") {
            found.push(tag.to_owned());
        }
    }
    found
}

#[test]
fn the_scans_find_what_they_look_for() {
    assert_eq!(inline_scripts("<script>alert(1)</script>").len(), 1);
    assert_eq!(inline_scripts("<SCRIPT >x</SCRIPT>").len(), 1);
    assert_eq!(inline_scripts(r#"<script src="/a.js">x</script>"#).len(), 1);
    assert!(inline_scripts(r#"<script src="/a.js" defer></script>"#).is_empty());
    assert_eq!(inline_handlers(r#"<button onclick="x()">"#).len(), 1);
    assert_eq!(inline_handlers(r#"<form class="a" onsubmit=x>"#).len(), 1);
    assert_eq!(inline_handlers(r#"<a href="javascript:x()">"#).len(), 1);
    assert!(inline_handlers(r#"<p title="on the line">based on=3</p>"#).is_empty());
}

#[tokio::test]
async fn no_console_page_has_inline_script_or_handlers() {
    let mut server = TestServer::start().await;
    add_user(&server, "ann", Role::Admin, "ann's long password");
    for doc in seeds() {
        server.ingest(CMS, doc).await;
    }
    let calls = server.calls().await;
    let call = calls[0]["id"].as_str().expect("the seed call").to_owned();
    let gateway = "8200_000C2A020082";

    let mut anonymous = Client::plain(server.http_addr);
    let mut ann = signed_in(&server, "ann", "ann's long password").await;
    let mut pages = vec![(anonymous.get("/login").await, "/login".to_owned())];
    for path in [
        "/".to_owned(),
        "/calls".into(),
        format!("/calls/{call}"),
        "/stats".into(),
        "/cc".into(),
        "/gateways".into(),
        format!("/gateways/{gateway}"),
        format!("/gateways/{gateway}/events"),
        "/sip".into(),
        "/sip/registrations".into(),
        "/live".into(),
        "/live/events".into(),
        "/admin/users".into(),
        "/admin/blocked".into(),
        "/admin/settings".into(),
        "/admin/exports".into(),
        "/admin/data".into(),
        "/audit".into(),
        "/account".into(),
    ] {
        pages.push((ann.get(&path).await, path));
    }
    let mut scripts = Vec::new();
    for (r, path) in &pages {
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_page_headers(r, path);
        let html = r.text();
        assert_eq!(inline_scripts(&html), Vec::<String>::new(), "{path}");
        assert_eq!(inline_handlers(&html), Vec::<String>::new(), "{path}");
        assert!(
            html.contains(r#"<script src="/assets/console.js" defer></script>"#),
            "{path} loads the shared script"
        );
        for (i, _) in html.match_indices(r#"<script src=""#) {
            let src = html[i + 13..].split('"').next().unwrap().to_owned();
            if !scripts.contains(&src) {
                scripts.push(src);
            }
        }
    }
    // What the inline code did is now in data- attributes and scripts.
    let text = |path: &str| {
        pages
            .iter()
            .find(|(_, p)| p == path)
            .map(|(r, _)| r.text())
            .unwrap()
    };
    assert!(text("/live").contains(r#"data-confirm="End this call now?"#));
    assert!(text("/live").contains(r#"<script src="/assets/live.js" defer>"#));
    assert!(text("/live/events").contains(r#"select name="sender" data-autosubmit"#));
    assert!(text(&format!("/calls/{call}")).contains("data-print"));
    assert!(text("/calls").contains("data-print"));
    assert!(text(&format!("/gateways/{gateway}/events")).contains("/assets/gateway-events.js"));
    assert!(text("/sip/registrations").contains("/assets/sip.js"));
    // Every script a page names is there.
    for src in scripts {
        let r = anonymous.get(&src).await;
        assert_eq!(r.status, StatusCode::OK, "{src}");
        assert!(r.content_type().starts_with("text/javascript"), "{src}");
    }
}
