//! Delivery by HTTP(S) POST, signed with HMAC-SHA256.
//!
//! Every request carries:
//! - `X-Cdrhub-Delivery: <item id>`: the same on every attempt of an item. A
//!   2xx whose answer was lost makes the item be sent again (at least once);
//!   a receiver that drops the ids it has seen gets each item once.
//! - with a secret, `X-Cdrhub-Timestamp: <unix seconds>` and
//!   `X-Cdrhub-Signature: sha256=<hex>`, the lowercase hex HMAC-SHA256, keyed
//!   by the secret, of `<timestamp>.<body>` (the timestamp's decimal digits,
//!   a full stop, then the body's bytes as sent). A receiver computes the
//!   same, compares in constant time, and rejects a timestamp too far from
//!   its clock (say five minutes), so a captured request cannot be replayed
//!   later. Every attempt is signed anew with the time it is sent, so a
//!   retry after a long outage is not rejected as old.
//! - for a file export, `Content-Disposition: attachment; filename="<name>"`.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_DISPOSITION, CONTENT_TYPE, HeaderName, HeaderValue, USER_AGENT};
use hyper::{Method, Request, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use ring::hmac;

use super::spool::Pending;

pub const DELIVERY_HEADER: &str = "x-cdrhub-delivery";
pub const TIMESTAMP_HEADER: &str = "x-cdrhub-timestamp";
pub const SIGNATURE_HEADER: &str = "x-cdrhub-signature";

/// At most this much of an error answer's body is quoted in the error.
const QUOTED_ANSWER_CHARS: usize = 200;

/// The HTTP(S) client every target shares (it keeps connections open).
pub(super) struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// Why no `https://` URL can be reached: the system's trusted roots
    /// could not be loaded.
    tls_error: Option<String>,
}

impl HttpClient {
    /// A client trusting `tls`'s roots, or the system's when `None` (this
    /// reads the system's certificate files: call it on a blocking thread).
    pub fn new(tls: Option<Arc<rustls::ClientConfig>>) -> HttpClient {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls_error = None;
        let builder = match tls {
            Some(config) => hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(rustls::ClientConfig::clone(&config)),
            None => match hyper_rustls::HttpsConnectorBuilder::new()
                .with_provider_and_native_roots(provider.clone())
            {
                Ok(builder) => builder,
                Err(e) => {
                    tls_error = Some(format!(
                        "cannot load the system's trusted root certificates: {e}"
                    ));
                    let empty = rustls::ClientConfig::builder_with_provider(provider)
                        .with_safe_default_protocol_versions()
                        .expect("ring supports the default TLS versions")
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth();
                    hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(empty)
                }
            },
        };
        let connector = builder.https_or_http().enable_http1().build();
        HttpClient {
            client: Client::builder(TokioExecutor::new()).build(connector),
            tls_error,
        }
    }

    /// Why no `https://` URL can be reached, if so.
    pub fn tls_error(&self) -> Option<&str> {
        self.tls_error.as_deref()
    }

    /// POSTs `item` to `url`; `Err` is one sentence saying what went wrong.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        hmac_secret: Option<&str>,
        timeout: Duration,
        item: Pending,
    ) -> Result<(), String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("the URL {url:?} is not valid: {e}"))?;
        let shown = shown_url(&uri);
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                if let Some(e) = &self.tls_error {
                    return Err(format!("cannot POST {shown}: {e}"));
                }
            }
            _ => return Err(format!("the URL {shown} is not http:// or https://")),
        }
        let request = build_request(uri, headers, hmac_secret, unix_seconds(), item)
            .map_err(|e| format!("cannot POST {shown}: {e}"))?;
        let answer = async {
            let response = self.client.request(request).await.map_err(|e| {
                if e.is_connect() {
                    format!("cannot connect to {}: {}", authority(&shown), innermost(&e))
                } else {
                    format!("POST {shown} failed: {}", innermost(&e))
                }
            })?;
            let status = response.status();
            // Read to the end, so the connection can be used again.
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("POST {shown} answered {status}, then failed: {e}"))?
                .to_bytes();
            if status.is_success() {
                Ok(())
            } else {
                Err(format!("POST {shown} answered {status}{}", quote(&body)))
            }
        };
        match tokio::time::timeout(timeout, answer).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!(
                "POST {shown} got no answer within {}",
                seconds(timeout)
            )),
        }
    }
}

/// `sha256=<hex>`: the value of `X-Cdrhub-Signature` for `body` sent at
/// `timestamp` (unix seconds).
pub fn signature(secret: &str, timestamp: u64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    let tag = ctx.sign();
    let mut hex = String::with_capacity(7 + 64);
    hex.push_str("sha256=");
    for b in tag.as_ref() {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

fn build_request(
    uri: Uri,
    headers: &[(String, String)],
    hmac_secret: Option<&str>,
    timestamp: u64,
    item: Pending,
) -> Result<Request<Full<Bytes>>, String> {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    let h = request.headers_mut();
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("{name:?} is not a valid header name"))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| format!("the value of header {name} is not valid"))?;
        h.append(name, value);
    }
    let value =
        |s: &str| HeaderValue::from_str(s).map_err(|_| format!("{s:?} is not valid in a header"));
    h.insert(CONTENT_TYPE, value(&item.content_type)?);
    h.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("cdrhub/", env!("CARGO_PKG_VERSION"))),
    );
    h.insert(DELIVERY_HEADER, value(&item.id)?);
    h.insert(
        CONTENT_DISPOSITION,
        value(&format!("attachment; filename=\"{}\"", item.name))?,
    );
    if let Some(secret) = hmac_secret {
        h.insert(TIMESTAMP_HEADER, HeaderValue::from(timestamp));
        h.insert(
            SIGNATURE_HEADER,
            value(&signature(secret, timestamp, &item.body))?,
        );
    }
    *request.body_mut() = Full::new(Bytes::from(item.body));
    Ok(request)
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The URL without its query, which may hold a token not to be shown.
fn shown_url(uri: &Uri) -> String {
    format!(
        "{}://{}{}",
        uri.scheme_str().unwrap_or(""),
        uri.authority().map_or("", |a| a.as_str()),
        uri.path()
    )
}

/// `host:port` of a shown URL.
fn authority(shown: &str) -> &str {
    let rest = shown.split_once("://").map_or(shown, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

/// The deepest cause of `e`: "connection refused" rather than "client error
/// (Connect)".
fn innermost(e: &(dyn StdError + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    if let Some(io) = cause.downcast_ref::<std::io::Error>() {
        use std::io::ErrorKind;
        let plain = match io.kind() {
            ErrorKind::ConnectionRefused => Some("connection refused"),
            ErrorKind::ConnectionReset => Some("connection reset"),
            ErrorKind::TimedOut => Some("timed out"),
            ErrorKind::HostUnreachable => Some("host unreachable"),
            ErrorKind::NetworkUnreachable => Some("network unreachable"),
            _ => None,
        };
        if let Some(plain) = plain {
            return plain.to_owned();
        }
    }
    cause.to_string()
}

/// `: <start of the answer>` when the answer has text to show.
fn quote(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty());
    match line {
        None => String::new(),
        Some(line) => {
            let mut quoted: String = line.chars().take(QUOTED_ANSWER_CHARS).collect();
            if quoted.len() < line.len() {
                quoted.push('…');
            }
            format!(": {quoted}")
        }
    }
}

fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Computed apart from this code, with
    /// `printf '1767225600.{"call":"c1"}' | openssl dgst -sha256 -hmac s3cret`.
    #[test]
    fn signature_matches_openssl() {
        assert_eq!(
            signature("s3cret", 1_767_225_600, br#"{"call":"c1"}"#),
            "sha256=9e291db3f4ada7bc94860a7969d70b84f3aaa23b6fd8d6ac1ccda987ebc796b1"
        );
    }

    #[test]
    fn shown_url_drops_the_query() {
        let uri: Uri = "https://hooks.example:8443/cdr?token=abc".parse().unwrap();
        assert_eq!(shown_url(&uri), "https://hooks.example:8443/cdr");
        assert_eq!(authority(&shown_url(&uri)), "hooks.example:8443");
    }

    #[test]
    fn quote_takes_the_first_line_of_the_answer() {
        assert_eq!(quote(b""), "");
        assert_eq!(
            quote(b"\n  missing field call\nmore"),
            ": missing field call"
        );
        assert_eq!(
            quote("x".repeat(300).as_bytes()).chars().count(),
            2 + 200 + 1
        );
    }
}
