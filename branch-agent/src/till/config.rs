//! `[pos]` in agent.toml (warehouse, store name, an optional fixed offset over the agent's
//! business zone, payment labels) and
//! the business-date rule of a sale. Pure: the caller reads the clock and passes unix
//! seconds in; nothing here touches the store, devices or HTTP.

use protocol::codes::WarehouseCode;
use protocol::date::{BusinessDate, LocalTime};
use protocol::document::PaymentMethod;
use serde::{Deserialize, Serialize};

use super::error::TillError;

/// Largest business-date offset from UTC accepted, in minutes (UTC+14 is the furthest zone).
pub const UTC_OFFSET_MINUTES_MAX: i32 = 14 * 60;

/// `[pos]` in agent.toml.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PosConfig {
    /// Warehouse the till sells from. Default: the first warehouse (in code order) of the
    /// branch's scope as HQ sent it.
    pub warehouse: Option<WarehouseCode>,
    /// Printed at the top of receipts and shift reports. Default: the branch name from HQ.
    pub store_name: Option<String>,
    /// A fixed offset east of UTC, in minutes, for the till's business day and printed
    /// times, overriding the agent's `business_zone`. Default: none, the till keeps the
    /// zone's time like every other rule of the branch (Asia/Shanghai unless set).
    pub utc_offset_minutes: Option<i32>,
    /// The agent's `business_zone`, set when the config is loaded (not a `[pos]` key).
    #[serde(skip)]
    pub zone: edge::BusinessZone,
    /// How payment methods are printed.
    pub payment_labels: PaymentLabels,
}

impl PosConfig {
    pub fn check(&self) -> anyhow::Result<()> {
        if let Some(m) = self.utc_offset_minutes.filter(|m| m.abs() > UTC_OFFSET_MINUTES_MAX) {
            anyhow::bail!("utc_offset_minutes = {m} is beyond ±{UTC_OFFSET_MINUTES_MAX} (UTC+8 is 480)");
        }
        Ok(())
    }

    /// Minutes east of UTC at `unix`: the fixed override, else the business zone's offset
    /// then (daylight saving included).
    pub fn offset_minutes_at(&self, unix: u64) -> i32 {
        self.utc_offset_minutes.unwrap_or_else(|| self.zone.offset_minutes_at(unix))
    }

    /// The store's wall clock at `unix` seconds.
    pub fn local(&self, unix: u64) -> LocalTime {
        LocalTime::from_unix(unix, self.offset_minutes_at(unix))
    }
}

/// The business date a sale made at `now` is posted under. A clock outside the years
/// business dates cover is the cashier's to fix (or to override with `date`).
pub fn business_date(now: LocalTime) -> Result<BusinessDate, TillError> {
    now.business_date().map_err(|_| {
        TillError::State(format!(
            "the system clock says {:04}-{:02}-{:02}, which is not a business date: set the clock, or give \"date\"",
            now.year(),
            now.month(),
            now.day()
        ))
    })
}

/// Words printed for each payment method (receipts, shift reports).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentLabels {
    pub cash: String,
    pub card: String,
    pub mobile: String,
}

impl Default for PaymentLabels {
    fn default() -> Self {
        PaymentLabels { cash: "Cash".into(), card: "Card".into(), mobile: "Mobile".into() }
    }
}

impl PaymentLabels {
    pub fn of(&self, m: PaymentMethod) -> &str {
        match m {
            PaymentMethod::Cash => &self.cash,
            PaymentMethod::Card => &self.card,
            PaymentMethod::Mobile => &self.mobile,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn business_dates_at_the_store_offset() {
        let utc = PosConfig { utc_offset_minutes: Some(0), ..PosConfig::default() };
        let shanghai = PosConfig::default();
        // 2026-06-09 23:30 UTC is already 06-10 07:30 in Shanghai, the default zone.
        let t = 1_781_047_800;
        assert_eq!(utc.local(t).to_string(), "2026-06-09 23:30");
        assert_eq!(shanghai.local(t).to_string(), "2026-06-10 07:30");
        let berlin = PosConfig { zone: edge::BusinessZone::parse("Europe/Berlin").expect("zone"), ..PosConfig::default() };
        assert_eq!(berlin.local(t).to_string(), "2026-06-10 01:30", "summer time in the zone");
        assert_eq!(business_date(shanghai.local(t)).expect("valid").to_string(), "2026-06-10");
        let e = business_date(utc.local(0)).expect_err("1970 is not a business date");
        assert!(matches!(&e, TillError::State(m) if m.starts_with("the system clock says 1970-01-01")), "{e}");
    }

    #[test]
    fn offsets_beyond_any_zone_are_refused() {
        let at = |m| PosConfig { utc_offset_minutes: Some(m), ..PosConfig::default() }.check();
        assert!(at(UTC_OFFSET_MINUTES_MAX).is_ok() && at(-UTC_OFFSET_MINUTES_MAX).is_ok());
        assert!(at(UTC_OFFSET_MINUTES_MAX + 1).is_err());
    }
}
