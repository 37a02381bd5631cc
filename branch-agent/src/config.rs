//! `agent.toml` in the data directory: where HQ is, where the local API listens, and the
//! forwarder's bounds. `enroll` writes it; every field but `hq` has a default. The till's
//! peripherals (`[devices.*]`) and point-of-sale settings (`[pos]`) are optional sections.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

pub const CONFIG_FILE: &str = "agent.toml";

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// HQ's QUIC address, `HOST:PORT`.
    pub hq: String,
    /// Local HTTP API. Loopback by default: the API posts documents without a login, so
    /// it must not face the shop network.
    pub http_listen: SocketAddr,
    /// Documents per batch on the wire.
    pub batch_entries_max: usize,
    /// Bytes per batch on the wire.
    pub batch_bytes_max: usize,
    /// Batches sent ahead of HQ's acks.
    pub inflight_batches_max: usize,
    /// First reconnect delay after a failure; doubles up to `reconnect_delay_ms_max`.
    pub reconnect_delay_ms_min: u64,
    pub reconnect_delay_ms_max: u64,
    /// Till peripherals: `[devices.printer]`, `[devices.receipt]`, `[devices.drawer]`,
    /// `[devices.display]`, `[devices.scanner]`, `[devices.scale]`,
    /// `[[devices.weighed_barcodes]]`. Each absent section means "no such device".
    #[serde(skip_serializing_if = "is_default")]
    pub devices: devices::DevicesConfig,
    /// The IANA time zone of the branch's business day (default `Asia/Shanghai`): the date
    /// of today for the date rules, the till and the reports. A name that is no zone is
    /// refused when the file is loaded.
    pub business_zone: edge::BusinessZone,
    /// How many days ahead of today (in `business_zone`) a document may be dated; later
    /// dates are refused with the reason (default 7).
    pub ahead_days_max: u32,
    /// Point-of-sale settings (`[pos]`): warehouse, store name, business-date offset.
    #[serde(skip_serializing_if = "is_default")]
    pub pos: crate::till::PosConfig,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            hq: String::new(),
            http_listen: "127.0.0.1:8181".parse().expect("literal address"),
            batch_entries_max: 500,
            batch_bytes_max: 1024 * 1024,
            inflight_batches_max: 4,
            reconnect_delay_ms_min: 250,
            reconnect_delay_ms_max: 30_000,
            devices: devices::DevicesConfig::default(),
            business_zone: edge::BusinessZone::default(),
            ahead_days_max: protocol::dating::AHEAD_DAYS_MAX_DEFAULT,
            pos: crate::till::PosConfig::default(),
        }
    }
}

impl AgentConfig {
    pub fn load(dir: &Path) -> anyhow::Result<AgentConfig> {
        let path = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("no {} in {}: enroll this branch first (`branch-agent enroll`)", CONFIG_FILE, dir.display()))?;
        let cfg: AgentConfig = toml::from_str(&text).with_context(|| format!("{} is not a valid agent config", path.display()))?;
        if cfg.hq.is_empty() {
            anyhow::bail!("{} does not say where HQ is (hq = \"HOST:PORT\")", path.display());
        }
        cfg.pos.check().with_context(|| format!("{} [pos]", path.display()))?;
        Ok(cfg)
    }

    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let text = format!("# Branchline branch agent configuration.\n{}", toml::to_string_pretty(self).context("encoding config")?);
        std::fs::write(dir.join(CONFIG_FILE), text).context("writing agent config")
    }
}
