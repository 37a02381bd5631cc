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
    /// The branch's people with their password hashes, so that they can sign in at the
    /// branch while it is offline. Never served over the branch's HTTP API.
    #[serde(default)]
    pub people: Vec<PersonEntry>,
}

/// A person as HQ stores them and sends them to their branch: the record and the argon2id
/// PHC string of their password (`protocol::session_token::hash_password`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonEntry {
    pub person: crate::people::Person,
    pub password_phc: String,
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

/// HQ's parts of a branch's profile, borrowed from wherever HQ keeps them, and the two
/// profiles it builds from them: the whole one it sends, and the one posting checks a
/// batch against. Here, next to [`BranchProfile`], because what the posting view may
/// leave out is a rule of `books::post` (it asks the profile only about warehouses, the
/// products a document names, and credit limits), not of HQ's storage.
#[derive(Clone, Copy, Debug)]
pub struct ProfileSource<'a> {
    pub branch: BranchCode,
    pub name: &'a str,
    pub warehouses: &'a BTreeSet<WarehouseCode>,
    pub products: &'a BTreeMap<ProductCode, Product>,
    pub credit_limits: &'a BTreeMap<crate::codes::PartyCode, crate::decimal_serde::Dec>,
    pub version: u64,
}

impl ProfileSource<'_> {
    /// The profile HQ sends a branch: its scope plus the whole catalog.
    pub fn whole(&self) -> BranchProfile {
        self.with_products(self.products.clone())
    }

    /// The profile `books::post` checks `docs` against: the branch's scope and the part
    /// of the catalog the documents name. Posting only asks whether each line's product
    /// is in the catalog, so this answers exactly as the whole catalog would, without
    /// cloning every product (a name, a unit, a price list each) for every batch.
    pub fn for_posting<'d>(&self, docs: impl IntoIterator<Item = &'d crate::document::Document>) -> BranchProfile {
        let mut products = BTreeMap::new();
        for line in docs.into_iter().flat_map(|d| &d.lines) {
            if let std::collections::btree_map::Entry::Vacant(e) = products.entry(line.product) {
                if let Some(p) = self.products.get(&line.product) {
                    e.insert(p.clone());
                }
            }
        }
        self.with_products(products)
    }

    fn with_products(&self, products: BTreeMap<ProductCode, Product>) -> BranchProfile {
        BranchProfile {
            branch: self.branch,
            name: self.name.to_string(),
            warehouses: self.warehouses.clone(),
            products,
            credit_limits: self.credit_limits.clone(),
            version: self.version,
            people: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::books::{post, Books, PostContext};
    use crate::document::DocType;
    use crate::testkit::sample_doc_lines;

    #[test]
    fn the_posting_view_gives_the_verdicts_of_the_whole_profile() {
        let product = |c: &str| {
            (ProductCode::new(c).expect("code"), Product { name: c.into(), unit: String::new(), retail_price: None, prices: Vec::new() })
        };
        let products: BTreeMap<_, _> = ["P0000", "X0001", "X0002"].into_iter().map(product).collect();
        let warehouses = BTreeSet::from([WarehouseCode::new("SH01").expect("warehouse")]);
        let credit_limits = BTreeMap::new();
        let source = ProfileSource {
            branch: BranchCode::new("SH").expect("code"),
            name: "Shanghai",
            warehouses: &warehouses,
            products: &products,
            credit_limits: &credit_limits,
            version: 7,
        };
        let docs = [
            sample_doc_lines("SH", "SH01", DocType::StockGain, 1, 1),
            sample_doc_lines("SH", "SH01", DocType::StockGain, 2, 2),
            sample_doc_lines("SH", "HB01", DocType::StockGain, 3, 1),
        ];
        let (whole, view) = (source.whole(), source.for_posting(&docs));
        assert_eq!(whole.products.len(), 3);
        assert!(view.products.len() < whole.products.len(), "only what the documents name");
        assert_eq!((view.version, &view.warehouses), (whole.version, &whole.warehouses));
        for doc in &docs {
            let verdict =
                |p: &BranchProfile| post(&Books::default(), doc, PostContext { profile: Some(p) }).map(|_| ()).map_err(|e| e.to_string());
            assert_eq!(verdict(&view), verdict(&whole), "{}", doc.header.number);
        }
    }
}
