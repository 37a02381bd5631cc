//! What sales and purchase receipts left to return (退货依据): per original document and
//! product, the quantity not yet returned and what it cost, so that a return names its
//! original, is limited to what that original left unreturned, and moves the goods at
//! the cost they went out (a sale) or came in (a receipt) at.
//!
//! A sale adds what it issued at cost; a purchase receipt what it received at its line
//! amounts; a return takes its share off by the books' one rounding rule (taking all of
//! what is left takes all of its value, so no cent is stranded); a reversal undoes its
//! document's moves exactly. Entries are kept for [`RETURN_WINDOW_MONTHS`] trailing the
//! latest posted document and dropped when fully returned, so memory stays bounded for a
//! branch that never closes; the window depends only on the journal, so branch and HQ
//! agree on what may still be returned.
//!
//! Must not: move stock or money itself (the return's posting rule does that), or read
//! anything but the books.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::Position;
use crate::codes::{PartyCode, ProductCode};
use crate::date::BusinessDate;
use crate::document::DocNumber;

/// How far back a return may name its original: documents of the month of the latest
/// posted document and of the months before it, this many in all.
pub const RETURN_WINDOW_MONTHS: u32 = 12;

/// What kind of document a return goes back to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Origin {
    /// A sale or retail sale: a sales return (WJXS) brings its goods back.
    Sale,
    /// A purchase receipt: a purchase return (JT) sends its goods back.
    Receipt,
}

impl Origin {
    pub fn label(self) -> &'static str {
        match self {
            Origin::Sale => "sale",
            Origin::Receipt => "purchase receipt",
        }
    }
}

/// What one original document left to return of one product.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Returnable {
    pub origin: Origin,
    /// The customer or supplier of the original (a walk-in retail sale has none).
    pub party: Option<PartyCode>,
    pub date: BusinessDate,
    /// Quantity not yet returned and its cost.
    pub left: Position,
}

/// A signed change to what `doc` left to return of `product`: a sale or receipt adds, a
/// return takes off, a reversal negates. Carries the original's kind, party and date so
/// the reversal of a return restores an entry exactly even once it was dropped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnableMove {
    pub doc: DocNumber,
    pub product: ProductCode,
    pub origin: Origin,
    pub party: Option<PartyCode>,
    pub date: BusinessDate,
    #[serde(with = "crate::decimal_serde")]
    pub qty: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub value: Decimal,
}

impl ReturnableMove {
    /// The move that undoes this one.
    pub fn negated(&self) -> ReturnableMove {
        ReturnableMove { qty: -self.qty, value: -self.value, ..self.clone() }
    }
}
