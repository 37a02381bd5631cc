//! What HQ tells a branch about itself: its scope (管辖范围) and the product catalog.
//! Product master data is edited by HQ only; branches receive it with each sync.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::codes::{BranchCode, ProductCode, WarehouseCode};

/// One product of the HQ catalog.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub name: String,
    #[serde(default)]
    pub unit: String,
    /// Shelf price at the till (零售价), if HQ set one.
    #[serde(default, with = "crate::decimal_serde::option")]
    pub retail_price: Option<rust_decimal::Decimal>,
    /// Preset selling prices (预设售价 1–4: e.g. wholesale, dealer, member, special); a
    /// sale line may name a level instead of a price.
    #[serde(default)]
    pub prices: Vec<crate::decimal_serde::Dec>,
}

/// Why a product has no catalog price for a line that gave none.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PriceError {
    /// The line asked for a preset level the product does not carry (levels count from 1).
    #[error("has no preset price {level} (it has {levels})")]
    NoPresetPrice { level: u8, levels: usize },
    /// The line asked for the shelf price and HQ set none.
    #[error("has no retail price; give unit_price")]
    NoRetailPrice,
}

impl Product {
    /// The price a line without one takes: preset `level` 1-4, or the retail price when no
    /// level is named. The error reads after the product's code ("XYZ has no ...").
    ///
    /// ```
    /// use protocol::profile::{PriceError, Product};
    /// use protocol::decimal_serde::Dec;
    /// use protocol::Decimal;
    /// let p = Product { name: "tea".into(), unit: "box".into(), retail_price: None, prices: vec![Dec(Decimal::new(1250, 2))] };
    /// assert_eq!(p.price(Some(1)), Ok(Decimal::new(1250, 2)));
    /// assert_eq!(p.price(Some(2)), Err(PriceError::NoPresetPrice { level: 2, levels: 1 }));
    /// assert_eq!(p.price(Some(0)), Err(PriceError::NoPresetPrice { level: 0, levels: 1 }));
    /// assert_eq!(p.price(None), Err(PriceError::NoRetailPrice));
    /// ```
    pub fn price(&self, level: Option<u8>) -> Result<rust_decimal::Decimal, PriceError> {
        match level {
            // Level 0 wraps to an index no product has, so it is refused like any other.
            Some(n) => self
                .prices
                .get(usize::from(n).wrapping_sub(1))
                .map(|d| d.0)
                .ok_or(PriceError::NoPresetPrice { level: n, levels: self.prices.len() }),
            None => self.retail_price.ok_or(PriceError::NoRetailPrice),
        }
    }
}

/// Most preset price levels a product carries.
pub const PRICE_LEVELS_MAX: usize = 4;

/// A branch's scope and the catalog, versioned by HQ.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BranchProfile {
    pub branch: BranchCode,
    pub name: String,
    /// Warehouses this branch may post to.
    pub warehouses: BTreeSet<WarehouseCode>,
    pub products: BTreeMap<ProductCode, Product>,
    /// Customers' credit limits (信用额度); a customer without one has no limit.
    #[serde(default)]
    pub credit_limits: BTreeMap<crate::codes::PartyCode, crate::decimal_serde::Dec>,
    /// Grows whenever HQ changes branches or products; a branch that reports an older
    /// version in its hello gets the new profile in the resume message.
    pub version: u64,
}

impl BranchProfile {
    pub fn allows_warehouse(&self, w: &WarehouseCode) -> bool {
        self.warehouses.contains(w)
    }

    pub fn knows_product(&self, p: &ProductCode) -> bool {
        self.products.contains_key(p)
    }

    pub fn warehouses_text(&self) -> String {
        self.warehouses.iter().map(|w| w.as_str()).collect::<Vec<_>>().join(", ")
    }
}
