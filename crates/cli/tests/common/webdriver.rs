//! Headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`, which `scripts/test.sh` installs), for the console's
//! end-to-end tests. Only the handful of W3C WebDriver commands the tests
//! use, over plain HTTP to chromedriver on 127.0.0.1.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

/// The key under which WebDriver names an element (W3C WebDriver, 12.1).
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    client: Client<HttpConnector, Full<Bytes>>,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile and
    /// no background networking (reference/real-peers.md).
    pub async fn start() -> Browser {
        let port = free_port();
        // A process group of its own: dropping the browser ends chromedriver
        // and every Chromium process it started.
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (apt-get install chromium chromium-driver; scripts/test.sh does)");
        let profile = tempfile::tempdir().unwrap();
        let mut browser = Browser {
            driver,
            base: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            _profile: profile,
        };
        let start = Instant::now();
        while browser.call("GET", "/status", None).await.is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1200,800",
        ]
        .into_iter()
        .map(str::to_owned)
        .chain([format!(
            "--user-data-dir={}",
            browser._profile.path().display()
        )])
        .collect::<Vec<_>>();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args}
        }}});
        let created = browser
            .call("POST", "/session", Some(caps))
            .await
            .expect("a browser session");
        browser.session = created["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        // Finding an element waits for it (a page still loading after a click).
        browser
            .session_call("POST", "/timeouts", Some(json!({"implicit": 10_000})))
            .await;
        browser
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let uri = format!("{}{path}", self.base);
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = hyper::Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let res = self.client.request(req).await.map_err(|e| e.to_string())?;
        let status = res.status();
        let bytes = res
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let json: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{method} {path}: {status} {}", json["value"]));
        }
        Ok(json["value"].clone())
    }

    async fn session_call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        self.call(method, &path, body)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    pub async fn goto(&self, url: &str) {
        self.session_call("POST", "/url", Some(json!({"url": url})))
            .await;
    }

    pub async fn url(&self) -> String {
        self.session_call("GET", "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits (at most 10 s) until the page's address contains `part`.
    pub async fn wait_for_url(&self, part: &str) {
        let start = Instant::now();
        loop {
            let url = self.url().await;
            if url.contains(part) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{url} never contained {part}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (at most 10 s) until the first element matching `css` shows
    /// `needle`: a click's page may still be loading.
    pub async fn wait_for_text(&self, css: &str, needle: &str) {
        let start = Instant::now();
        loop {
            // The element found may go stale as the next page replaces it.
            let text = self.try_text(css).await.unwrap_or_else(|e| e);
            if text.contains(needle) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{css} never showed {needle:?}: {text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn find(&self, css: &str) -> String {
        let found = self
            .session_call(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found[ELEMENT].as_str().expect("an element").to_owned()
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.session_call("POST", &format!("/element/{id}/clear"), Some(json!({})))
            .await;
        self.session_call(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    pub async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.session_call("POST", &format!("/element/{id}/click"), Some(json!({})))
            .await;
    }

    /// Clicks the first element matching `css`, finding it again while it
    /// goes stale (a page that redraws itself) for at most 10 s.
    pub async fn click_fresh(&self, css: &str) {
        let session = format!("/session/{}", self.session);
        let start = Instant::now();
        loop {
            let by = json!({"using": "css selector", "value": css});
            let clicked = match self
                .call("POST", &format!("{session}/element"), Some(by))
                .await
            {
                Ok(found) => {
                    let id = found[ELEMENT].as_str().unwrap_or_default().to_owned();
                    self.call(
                        "POST",
                        &format!("{session}/element/{id}/click"),
                        Some(json!({})),
                    )
                    .await
                }
                Err(e) => Err(e),
            };
            match clicked {
                Ok(_) => return,
                Err(e) => assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "cannot click {css}: {e}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Accepts the page's `confirm` dialog, waiting (at most 10 s) for it.
    pub async fn accept_alert(&self) {
        let path = format!("/session/{}/alert/accept", self.session);
        let start = Instant::now();
        while let Err(e) = self.call("POST", &path, Some(json!({}))).await {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no dialog to accept: {e}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Like [`Browser::text`], with WebDriver's refusals as errors.
    async fn try_text(&self, css: &str) -> Result<String, String> {
        let session = format!("/session/{}", self.session);
        let by = json!({"using": "css selector", "value": css});
        let found = self
            .call("POST", &format!("{session}/element"), Some(by))
            .await?;
        let id = found[ELEMENT].as_str().unwrap_or_default();
        let text = self
            .call("GET", &format!("{session}/element/{id}/text"), None)
            .await?;
        Ok(text.as_str().unwrap_or_default().to_owned())
    }

    /// The visible text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        let id = self.find(css).await;
        self.session_call("GET", &format!("/element/{id}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// An attribute or property of the first element matching `css`,
    /// found again while it goes stale (the page that held it was being
    /// replaced) for at most 10 s.
    pub async fn attribute(&self, css: &str, name: &str) -> String {
        let session = format!("/session/{}", self.session);
        let start = Instant::now();
        loop {
            let by = json!({"using": "css selector", "value": css});
            let read = match self
                .call("POST", &format!("{session}/element"), Some(by))
                .await
            {
                Ok(found) => {
                    let id = found[ELEMENT].as_str().unwrap_or_default().to_owned();
                    self.call(
                        "GET",
                        &format!("{session}/element/{id}/attribute/{name}"),
                        None,
                    )
                    .await
                }
                Err(e) => Err(e),
            };
            match read {
                Ok(value) => return value.as_str().unwrap_or_default().to_owned(),
                Err(e) => assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "cannot read {name} of {css}: {e}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The value of a cookie of the current page, HttpOnly ones included.
    pub async fn cookie(&self, name: &str) -> String {
        self.session_call("GET", &format!("/cookie/{name}"), None)
            .await["value"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// A PNG of the window, into `path`.
    pub async fn screenshot(&self, path: &std::path::Path) {
        use base64::Engine;
        let png = self.session_call("GET", "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap_or_default())
            .expect("a base64 PNG");
        std::fs::write(path, bytes).expect("the screenshot is written");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.driver.id()) {
            // SAFETY: kill only sends a signal, to the group this browser made.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        let _ = self.driver.wait();
    }
}
