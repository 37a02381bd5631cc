//! `hq.toml`: where HQ listens and how long enrollment tokens live. Every field has a
//! default, so an empty file (or none) is a working configuration.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const CONFIG_FILE: &str = "hq.toml";

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
        }
    }
}

impl HqConfig {
    pub fn load(data_dir: &Path) -> Result<HqConfig, ConfigError> {
        let path = data_dir.join(CONFIG_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|source| ConfigError::Invalid { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HqConfig::default()),
            Err(source) => Err(ConfigError::Io { what: "reading", path, source }),
        }
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
