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
