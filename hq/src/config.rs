//! `hq.toml`: where HQ listens and how long enrollment tokens live. Every field has a
//! default, so an empty file (or none) is a working configuration.
//!
//! Must not: decide anything from what it reads; the server and store apply it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const CONFIG_FILE: &str = "hq.toml";

/// Smallest QUIC stream window accepted.
pub const WINDOW_BYTES_MIN: u32 = 64 * 1024;
/// Longest enrollment token life: a year.
pub const TOKEN_TTL_HOURS_MAX: u64 = 24 * 365;

/// Why `hq.toml` could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file exists but is not a valid HQ config.
    #[error("{} is not a valid HQ config: {source}", path.display())]
    Invalid { path: PathBuf, source: toml::de::Error },
    /// The file could not be read or written.
    #[error("{what} {}: {source}", path.display())]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    /// A value that parses but cannot work; the field is named, nothing starts.
    #[error("{}: {field} = {value} {problem}", path.display())]
    Value { path: PathBuf, field: &'static str, value: String, problem: &'static str },
    /// The default config could not be encoded (a bug).
    #[error("encoding default config: {0}")]
    Encode(#[from] toml::ser::Error),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HqConfig {
    /// UDP address of the QUIC listener branches connect to.
    pub quic_listen: SocketAddr,
    /// HTTP address of reports and the admin API. Loopback by default: put a reverse
    /// proxy with authentication in front before exposing it.
    pub http_listen: SocketAddr,
    /// How long an enrollment token from `hq branch add` stays valid.
    pub token_ttl_hours: u64,
    /// QUIC connections at once (handshakes included); more are refused at once.
    pub max_connections: u32,
    /// Bidirectional streams one connection may have open (a branch uses one).
    pub max_concurrent_bidi_streams: u32,
    /// Bytes a peer may have in flight to HQ on one stream, and on one connection.
    pub stream_window_bytes: u32,
    pub connection_window_bytes: u32,
    /// Bytes of frames read but not yet handled, across all connections together.
    pub buffered_bytes_max: u64,
    /// The IANA time zone of HQ's business day (default `Asia/Shanghai`): today's date for
    /// reports (the as-of date, the year to date). A name that is no zone is refused when
    /// the file is loaded.
    pub business_zone: edge::BusinessZone,
    /// A bearer token a Prometheus scraper may send for `GET /metrics` instead of a
    /// person's session (at least 24 characters); unset, only people with Reports:View
    /// may read the metrics.
    pub metrics_token: Option<String>,
}

impl Default for HqConfig {
    fn default() -> Self {
        HqConfig {
            quic_listen: "0.0.0.0:7443".parse().expect("literal address"),
            http_listen: "127.0.0.1:8080".parse().expect("literal address"),
            token_ttl_hours: 72,
            max_connections: 256,
            max_concurrent_bidi_streams: 2,
            stream_window_bytes: 1024 * 1024,
            connection_window_bytes: 2 * 1024 * 1024,
            buffered_bytes_max: 64 * 1024 * 1024,
            business_zone: edge::BusinessZone::default(),
            metrics_token: None,
        }
    }
}

impl HqConfig {
    pub fn load(data_dir: &Path) -> Result<HqConfig, ConfigError> {
        let path = data_dir.join(CONFIG_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let cfg: HqConfig = toml::from_str(&text).map_err(|source| ConfigError::Invalid { path: path.clone(), source })?;
                cfg.check(&path)?;
                Ok(cfg)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HqConfig::default()),
            Err(source) => Err(ConfigError::Io { what: "reading", path, source }),
        }
    }

    /// Refuses values that parse but would fail later (a zero bound, a TTL whose
    /// seconds overflow), naming the field: nothing downstream asserts on them.
    pub fn check(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |field: &'static str, value: String, problem: &'static str| {
            Err(ConfigError::Value { path: path.to_path_buf(), field, value, problem })
        };
        if self.token_ttl_hours == 0 || self.token_ttl_hours > TOKEN_TTL_HOURS_MAX {
            return bad("token_ttl_hours", self.token_ttl_hours.to_string(), "must be 1..=8760 (at most a year)");
        }
        if self.max_connections == 0 {
            return bad("max_connections", "0".into(), "must be at least 1");
        }
        if self.max_concurrent_bidi_streams == 0 {
            return bad("max_concurrent_bidi_streams", "0".into(), "must be at least 1 (a branch uses one stream)");
        }
        // Flow control refills as HQ reads, but a window this small would crawl.
        if self.stream_window_bytes < WINDOW_BYTES_MIN {
            return bad("stream_window_bytes", self.stream_window_bytes.to_string(), "must be at least 65536");
        }
        if self.connection_window_bytes < self.stream_window_bytes {
            return bad("connection_window_bytes", self.connection_window_bytes.to_string(), "must be at least stream_window_bytes");
        }
        if self.metrics_token.as_ref().is_some_and(|t| t.chars().count() < edge::metrics::SCRAPE_TOKEN_CHARS_MIN || t.trim() != t) {
            return bad("metrics_token", "(not shown)".into(), "must be at least 24 characters, without spaces at either end");
        }
        // Budget below one frame: a full batch could never be taken in.
        let frame = protocol::wire::FRAME_BYTES_MAX as u64;
        if self.buffered_bytes_max < frame {
            return bad("buffered_bytes_max", self.buffered_bytes_max.to_string(), "must hold one frame (at least 4259840 bytes)");
        }
        Ok(())
    }

    pub fn write_default_if_missing(data_dir: &Path) -> Result<(), ConfigError> {
        let path = data_dir.join(CONFIG_FILE);
        if path.exists() {
            return Ok(());
        }
        let text = format!(
            "# Branchline HQ configuration. Every field is optional; these are the defaults.\n{}",
            toml::to_string_pretty(&HqConfig::default())?
        );
        std::fs::write(&path, text).map_err(|source| ConfigError::Io { what: "writing", path, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_are_refused_at_load_naming_the_field() {
        for (text, field) in [
            ("token_ttl_hours = 0", "token_ttl_hours = 0"),
            ("token_ttl_hours = 18446744073709551615", "token_ttl_hours"),
            ("max_connections = 0", "max_connections = 0"),
            ("max_concurrent_bidi_streams = 0", "max_concurrent_bidi_streams = 0"),
            ("stream_window_bytes = 10", "stream_window_bytes = 10"),
            ("connection_window_bytes = 65536", "connection_window_bytes = 65536"),
            ("buffered_bytes_max = 1", "buffered_bytes_max = 1"),
            ("http_listen = \"localhost\"", "http_listen"),
            ("no_such_field = 1", "no_such_field"),
        ] {
            let dir = tempfile::tempdir().expect("temp dir");
            std::fs::write(dir.path().join(CONFIG_FILE), text).expect("write");
            let e = HqConfig::load(dir.path()).expect_err(text).to_string();
            assert!(e.contains(field), "{text}: {e}");
        }
        let dir = tempfile::tempdir().expect("temp dir");
        HqConfig::write_default_if_missing(dir.path()).expect("default");
        assert!(HqConfig::load(dir.path()).is_ok(), "the written default loads");
    }
}
