//! `agent.toml` in the data directory: where HQ is, where the local API listens, and the
//! forwarder's bounds. `enroll` writes it; every field but `hq` has a default. The till's
//! peripherals (`[devices.*]`) and point-of-sale settings (`[pos]`) are optional sections.
//!
//! Must not: decide anything from what it reads (the store, forwarder and till apply it) or
//! write anything but `agent.toml` at enrollment.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

pub const CONFIG_FILE: &str = "agent.toml";

/// Smallest `batch_bytes_max`: a full 1,000-line document must fit in one batch.
pub const BATCH_BYTES_MIN: usize = 256 * 1024;
/// Most batches in flight ahead of HQ's acks.
pub const INFLIGHT_BATCHES_MAX: usize = 64;
/// Longest reconnect delay: an hour.
pub const RECONNECT_DELAY_MS_MAX: u64 = 3_600_000;

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
    /// A bearer token a Prometheus scraper may send for `GET /metrics` instead of a
    /// person's session (at least 24 characters); unset, only people with Reports:View
    /// may read the metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_token: Option<String>,
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
            metrics_token: None,
        }
    }
}

impl AgentConfig {
    pub fn load(dir: &Path) -> anyhow::Result<AgentConfig> {
        let path = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("no {} in {}: enroll this branch first (`branch-agent enroll`)", CONFIG_FILE, dir.display()))?;
        let mut cfg: AgentConfig = toml::from_str(&text).with_context(|| format!("{} is not a valid agent config", path.display()))?;
        // The till keeps the branch's business zone unless `[pos]` fixes an offset.
        cfg.pos.zone = cfg.business_zone.clone();
        cfg.check().with_context(|| format!("{} is not a working agent config", path.display()))?;
        cfg.pos.check().with_context(|| format!("{} [pos]", path.display()))?;
        Ok(cfg)
    }

    /// Refuses, naming the field, every value that parses but would fail later: the sync
    /// machine asserts its bounds, so a zero here must stop the agent at load instead.
    pub fn check(&self) -> anyhow::Result<()> {
        use protocol::batch::{BATCH_BYTES_MAX, BATCH_ENTRIES_MAX};
        let (host, port) = self.hq.rsplit_once(':').unwrap_or((self.hq.as_str(), ""));
        if host.trim().is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
            anyhow::bail!("hq = {:?} must be HOST:PORT (e.g. \"hq.example.com:7443\")", self.hq);
        }
        if !(1..=BATCH_ENTRIES_MAX).contains(&self.batch_entries_max) {
            anyhow::bail!("batch_entries_max = {} must be 1..={BATCH_ENTRIES_MAX}", self.batch_entries_max);
        }
        if !(BATCH_BYTES_MIN..=BATCH_BYTES_MAX).contains(&self.batch_bytes_max) {
            anyhow::bail!(
                "batch_bytes_max = {} must be {BATCH_BYTES_MIN}..={BATCH_BYTES_MAX} (one large document must fit)",
                self.batch_bytes_max
            );
        }
        if !(1..=INFLIGHT_BATCHES_MAX).contains(&self.inflight_batches_max) {
            anyhow::bail!("inflight_batches_max = {} must be 1..={INFLIGHT_BATCHES_MAX}", self.inflight_batches_max);
        }
        if self.reconnect_delay_ms_min == 0 {
            anyhow::bail!("reconnect_delay_ms_min = 0 must be at least 1");
        }
        if self.metrics_token.as_ref().is_some_and(|t| t.chars().count() < edge::metrics::SCRAPE_TOKEN_CHARS_MIN || t.trim() != t) {
            anyhow::bail!("metrics_token (not shown) must be at least 24 characters, without spaces at either end");
        }
        if self.reconnect_delay_ms_max < self.reconnect_delay_ms_min || self.reconnect_delay_ms_max > RECONNECT_DELAY_MS_MAX {
            anyhow::bail!(
                "reconnect_delay_ms_max = {} must be between reconnect_delay_ms_min ({}) and {RECONNECT_DELAY_MS_MAX} (an hour)",
                self.reconnect_delay_ms_max,
                self.reconnect_delay_ms_min
            );
        }
        Ok(())
    }

    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let text = format!("# Branchline branch agent configuration.\n{}", toml::to_string_pretty(self).context("encoding config")?);
        std::fs::write(dir.join(CONFIG_FILE), text).context("writing agent config")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(toml_text: &str) -> String {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join(CONFIG_FILE), toml_text).expect("write");
        format!("{:#}", AgentConfig::load(dir.path()).expect_err(toml_text))
    }

    #[test]
    fn bad_values_are_refused_at_load_naming_the_field() {
        let hq = "hq = \"127.0.0.1:7443\"\n";
        for (extra, field) in [
            ("batch_entries_max = 0", "batch_entries_max = 0"),
            ("batch_entries_max = 1000000", "batch_entries_max"),
            ("batch_bytes_max = 0", "batch_bytes_max = 0"),
            ("inflight_batches_max = 0", "inflight_batches_max = 0"),
            ("reconnect_delay_ms_min = 0", "reconnect_delay_ms_min = 0"),
            ("reconnect_delay_ms_min = 500\nreconnect_delay_ms_max = 100", "reconnect_delay_ms_max = 100"),
            ("http_listen = \"not an address\"", "http_listen"),
            ("[pos]\nutc_offset_minutes = 100000", "utc_offset_minutes"),
        ] {
            let e = refused(&format!("{hq}{extra}\n"));
            assert!(e.contains(field), "{extra}: {e}");
        }
        for bad_hq in ["hq = \"\"", "hq = \"hq.example.com\"", "hq = \"h:0\"", "hq = \":7443\""] {
            let e = refused(bad_hq);
            assert!(e.contains("must be HOST:PORT"), "{bad_hq}: {e}");
        }
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join(CONFIG_FILE), hq).expect("write");
        assert!(AgentConfig::load(dir.path()).is_ok());
    }
}
