//! How the books' maps are looked up without building owned keys: `upsert` (clone a
//! key only to insert it) and borrowed views of flow and stock keys that order exactly
//! as the owned keys do. Must not hold books or decide anything about them.

use std::collections::BTreeMap;

use super::StockKey;
use crate::codes::{ProductCode, WarehouseCode};
use crate::document::Period;

/// Runs `f` on the value at `key`, inserting a default (and cloning the key) only when
/// there is none yet.
pub(super) fn upsert<K: Ord + Clone, V: Default, R>(map: &mut BTreeMap<K, V>, key: &K, f: impl FnOnce(&mut V) -> R) -> R {
    match map.get_mut(key) {
        Some(v) => f(v),
        None => f(map.entry(key.clone()).or_default()),
    }
}

/// Borrowed-key views compare by their `parts()`, so a map keyed by owned codes can be
/// looked up with borrowed ones without building a key.
macro_rules! ordered_by_parts {
    ($view:ident) => {
        impl PartialEq for dyn $view + '_ {
            fn eq(&self, other: &Self) -> bool {
                self.parts() == other.parts()
            }
        }

        impl Eq for dyn $view + '_ {}

        impl PartialOrd for dyn $view + '_ {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for dyn $view + '_ {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.parts().cmp(&other.parts())
            }
        }
    };
}

/// A flow key seen through borrowed codes, so a flow that exists is found without
/// cloning its warehouse and product. Orders exactly as the owned key does (the codes
/// order as their strings).
pub(super) trait FlowKey {
    fn parts(&self) -> (Period, &str, &str);
}

impl FlowKey for (Period, WarehouseCode, ProductCode) {
    fn parts(&self) -> (Period, &str, &str) {
        (self.0, self.1.as_str(), self.2.as_str())
    }
}

impl FlowKey for (Period, &str, &str) {
    fn parts(&self) -> (Period, &str, &str) {
        *self
    }
}

impl<'a> std::borrow::Borrow<dyn FlowKey + 'a> for (Period, WarehouseCode, ProductCode) {
    fn borrow(&self) -> &(dyn FlowKey + 'a) {
        self
    }
}

ordered_by_parts!(FlowKey);

/// A stock key seen through borrowed codes (see [`FlowKey`]).
pub(super) trait StockKeyView {
    fn parts(&self) -> (&str, &str);
}

impl StockKeyView for StockKey {
    fn parts(&self) -> (&str, &str) {
        (self.0.as_str(), self.1.as_str())
    }
}

impl StockKeyView for (&str, &str) {
    fn parts(&self) -> (&str, &str) {
        *self
    }
}

impl<'a> std::borrow::Borrow<dyn StockKeyView + 'a> for StockKey {
    fn borrow(&self) -> &(dyn StockKeyView + 'a) {
        self
    }
}

ordered_by_parts!(StockKeyView);
