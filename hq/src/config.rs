//! `hq.toml`: where HQ listens and how long enrollment tokens live. Every field has a
//! default, so an empty file (or none) is a working configuration.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

pub const CONFIG_FILE: &str = "hq.toml";

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
}

impl Default for HqConfig {
    fn default() -> Self {
        HqConfig {
            quic_listen: "0.0.0.0:7443".parse().expect("literal address"),
            http_listen: "127.0.0.1:8080".parse().expect("literal address"),
            token_ttl_hours: 72,
        }
    }
}

impl HqConfig {
    pub fn load(data_dir: &Path) -> anyhow::Result<HqConfig> {
        let path = data_dir.join(CONFIG_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).with_context(|| format!("{} is not a valid HQ config", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HqConfig::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn write_default_if_missing(data_dir: &Path) -> anyhow::Result<()> {
        let path = data_dir.join(CONFIG_FILE);
        if path.exists() {
            return Ok(());
        }
        let text = format!(
            "# Branchline HQ configuration. Every field is optional; these are the defaults.\n{}",
            toml::to_string_pretty(&HqConfig::default()).context("encoding default config")?
        );
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    }
}
