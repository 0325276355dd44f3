//! The configuration file (TOML). Every field is documented here and in the
//! README's config reference; an unknown key is an error naming the key and
//! the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::sources::cms::CmsSourceConfig;

/// The whole configuration file. Every section is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the database lives. Default `./cdrhub-data`; `--data-dir` overrides it.
    pub data_dir: Option<PathBuf>,
    #[serde(default)]
    pub http: HttpConfig,
    /// An HTTPS listener beside (or instead of) the plain one.
    pub https: Option<HttpsConfig>,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub sources: SourcesConfig,
    /// Scheduled exports of the calls that ended in each period (issue 7).
    #[serde(default)]
    pub exports: Vec<crate::exports::ExportConfig>,
    /// A signed POST for each ended call (issue 7).
    #[serde(default)]
    pub webhooks: Vec<crate::exports::WebhookConfig>,
    /// The ingest bus between collectors and workers (issue 8).
    #[serde(default)]
    pub bus: Option<crate::bus::BusConfig>,
}

/// The plain HTTP listener: web API, ingest paths, `/metrics`, `/healthz`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address and port. Default `127.0.0.1:8200`: loopback only, because the
    /// API has no authentication yet. `--listen` overrides it.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Set to false to serve HTTPS only.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Connections open at once, per listener (HTTP and HTTPS each); one
    /// more is answered 503 and closed. Default 1024.
    #[serde(default = "default_http_connections")]
    pub max_connections: usize,
    /// Seconds a request's head (and a TLS handshake) may take to arrive; a
    /// keep-alive connection idle this long is closed. Default 10.
    #[serde(default = "default_header_timeout_s")]
    pub header_timeout_s: u64,
    /// Seconds a request's body may take to arrive, plus one for each 64 KiB
    /// it declares; a later body fails its request. Default 30.
    #[serde(default = "default_body_timeout_s")]
    pub body_timeout_s: u64,
    /// The addresses or subnets the web listeners take connections from
    /// (both listeners, console, API and ingest paths); empty: all.
    #[serde(default)]
    pub allow: crate::sources::guard::AllowList,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: default_listen(),
            enabled: true,
            max_connections: default_http_connections(),
            header_timeout_s: default_header_timeout_s(),
            body_timeout_s: default_body_timeout_s(),
            allow: Default::default(),
        }
    }
}

/// The HTTPS listener (rustls). Certificate and key are PEM files, as for the
/// `-c`/`-k` options of Cisco's example receiver.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpsConfig {
    /// Address and port, e.g. `0.0.0.0:8443`.
    pub listen: SocketAddr,
    /// PEM certificate chain, server certificate first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The store: the embedded SQLite files of the data directory, or a
/// PostgreSQL database shared by several processes (issue 8).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `postgres://user:password@host:port/database` (with
    /// `?sslmode=require` for TLS): keep everything in PostgreSQL instead of
    /// the data directory. `--store` or `CDRHUB_STORE` override it.
    #[serde(default)]
    pub url: Option<String>,
    /// Most connections to PostgreSQL this process opens. Default 16.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// `full` (default): a commit survives a power cut before the sender is
    /// acknowledged. `normal`: survives a crash of cdrhub, not of the machine.
    #[serde(default = "default_synchronous")]
    pub synchronous: cdrhub_store::Synchronous,
    /// Milliseconds a write waits for a database lock held by another process
    /// before the sender gets 503 and retries. Default 5000.
    #[serde(default = "default_busy_timeout_ms")]
    pub busy_timeout_ms: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: None,
            max_connections: default_max_connections(),
            synchronous: default_synchronous(),
            busy_timeout_ms: default_busy_timeout_ms(),
        }
    }
}

/// The Prometheus endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve `/metrics`. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Ask for an API token on `/metrics`, as on the API. Default false:
    /// Prometheus scrapes it without one.
    #[serde(default)]
    pub require_token: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            require_token: false,
        }
    }
}

/// One section per source.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcesConfig {
    #[serde(default)]
    pub cms: CmsSourceConfig,
    /// Contact-centre CTI servers to connect to (issue 4), one entry per
    /// server pair.
    #[serde(default)]
    pub cti: Vec<crate::sources::cti::CtiSourceConfig>,
    /// The RADIUS accounting server for VoIP gateways (issue 5).
    #[serde(default)]
    pub radius: crate::sources::radius::RadiusSourceConfig,
    /// The gateway event feed, GWFEED/1 over TCP and UDP (issue 5).
    #[serde(default)]
    pub feed: crate::sources::feed::FeedSourceConfig,
    /// The HEP listener for SIP servers mirroring their signalling (issue 6).
    #[serde(default)]
    pub hep: crate::sources::hep::HepSourceConfig,
    /// The call-event API, `POST /api/v1/events` and its WebSocket (issue 7).
    #[serde(default)]
    pub events: crate::sources::events::EventsSourceConfig,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8200))
}
fn default_http_connections() -> usize {
    1024
}
fn default_header_timeout_s() -> u64 {
    10
}
fn default_body_timeout_s() -> u64 {
    30
}
fn default_synchronous() -> cdrhub_store::Synchronous {
    cdrhub_store::Synchronous::Full
}
fn default_max_connections() -> usize {
    16
}
fn default_busy_timeout_ms() -> u64 {
    5000
}
pub(crate) fn yes() -> bool {
    true
}

/// A configuration problem, said in one sentence naming the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses config text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: path.to_owned(),
            // toml's message names the key, the line and the column.
            message: e.to_string().trim().replace('\n', " ").replace("  ", " "),
        })?;
        config.check().map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        self.sources.cms.check()?;
        self.sources.radius.check()?;
        let mut names = std::collections::HashSet::new();
        for cti in &self.sources.cti {
            cti.check()?;
            if !names.insert(cti.name.as_str()) {
                return Err(format!("two [[sources.cti]] are named {:?}", cti.name));
            }
        }
        let mut names = std::collections::HashSet::new();
        for e in &self.exports {
            e.check()?;
            if !names.insert(e.name.as_str()) {
                return Err(format!("two [[exports]] are named {:?}", e.name));
            }
        }
        let mut names = std::collections::HashSet::new();
        for w in &self.webhooks {
            w.check()?;
            if !names.insert(w.name.as_str()) {
                return Err(format!("two [[webhooks]] are named {:?}", w.name));
            }
        }
        if let Some(bus) = &self.bus {
            bus.check()?;
        }
        for (key, set) in [
            (
                "sources.feed.tls_listen",
                self.sources.feed.tls_listen.is_some(),
            ),
            (
                "sources.hep.tls_listen",
                self.sources.hep.tls_listen.is_some(),
            ),
        ] {
            if set && self.https.is_none() {
                return Err(format!(
                    "{key} needs the [https] section: its certificate and key are used"
                ));
            }
        }
        if self.http.max_connections == 0 {
            return Err("http.max_connections must be at least 1".into());
        }
        if self.http.header_timeout_s == 0 || self.http.body_timeout_s == 0 {
            return Err("http.header_timeout_s and http.body_timeout_s must be at least 1".into());
        }
        if !self.http.enabled && self.https.is_none() {
            return Err(
                "http.enabled is false and there is no [https] section: nothing would listen"
                    .into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::parse("", Path::new("x.toml")).unwrap();
        assert_eq!(c.http.listen, default_listen());
        assert_eq!(c.sources.cms.path, "/ingest/cms");
        assert_eq!(c.sources.cms.max_body_bytes, 8 * 1024 * 1024);
    }

    #[test]
    fn unknown_key_is_named_with_the_file() {
        let e = Config::parse(
            "[http]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n",
            Path::new("/etc/cdrhub.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("/etc/cdrhub.toml"), "{e}");
        assert!(e.contains("lisen"), "{e}");
    }

    #[test]
    fn unknown_section_is_named() {
        let e = Config::parse("[sources.smdr]\nport = 1752\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("smdr"), "{e}");
        let e = Config::parse("[sources.radius]\nport = 1813\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("port"), "{e}");
    }

    #[test]
    fn radius_needs_clients_with_secrets() {
        let e = Config::parse("[sources.radius]\nenabled = true\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("declares no"), "{e}");
        let e = Config::parse(
            "[sources.radius]\nenabled = true\n[[sources.radius.clients]]\naddress = \"10.0.0.0/40\"\nsecret = \"s\"\n",
            Path::new("c.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("prefix length"), "{e}");
    }

    #[test]
    fn cms_path_must_be_absolute() {
        let e = Config::parse("[sources.cms]\npath = \"ingest\"\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("sources.cms.path"), "{e}");
    }
}
