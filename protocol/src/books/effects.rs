//! What a posting is: `Posting`, the complete effect of one document (stock layer ops,
//! a balanced general-ledger entry, sub-ledger moves, sales facts), and the sub-ledger
//! records the books keep (`OpenItem`, `Side`, `Consignment`, `Loan`, sales and flows).
//! Plain data: must not compute a posting (that is `posting`) nor apply one (`Books`).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{returns, stock, LayerOp, StockKey};
use crate::codes::{AccountCode, OperatorId, PartyCode, ProductCode, WarehouseCode};
use crate::date::BusinessDate;
use crate::document::{CostMethod, DocNumber, Period};

/// Receivable (a customer owes us) or payable (we owe a supplier).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Side {
    Receivable,
    Payable,
}

/// An unsettled credit sale, purchase or opening balance, for settlement and ageing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenItem {
    pub side: Side,
    pub party: PartyCode,
    pub date: BusinessDate,
    #[serde(with = "crate::decimal_serde")]
    pub total: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub open: Decimal,
}

/// One line of the general-ledger entry of a posting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlLine {
    pub account: AccountCode,
    #[serde(with = "crate::decimal_serde")]
    pub debit: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub credit: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockMove {
    pub key: StockKey,
    pub op: LayerOp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpenItemMove {
    Create {
        key: (DocNumber, PartyCode),
        item: OpenItem,
    },
    /// Removes a still fully open item (reversal of the document that made it).
    Remove {
        key: (DocNumber, PartyCode),
    },
    /// Signed: positive settles, negative re-opens (reversal of a settlement).
    Settle {
        key: (DocNumber, PartyCode),
        #[serde(with = "crate::decimal_serde")]
        amount: Decimal,
    },
}

/// Consigned goods: out to dealers or in from suppliers, apart from own stock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Consignment {
    OutToDealer,
    InFromSupplier,
}

/// Quantity-only loans of goods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Loan {
    LentOut,
    BorrowedIn,
}

/// What a sale contributed, for sales rankings and gross margin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SalesFact {
    pub key: SalesKey,
    #[serde(with = "crate::decimal_serde")]
    pub qty: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub revenue: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub cost: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SalesKey {
    pub period: Period,
    pub warehouse: WarehouseCode,
    pub product: ProductCode,
    pub customer: Option<PartyCode>,
    pub handler: OperatorId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SalesTotals {
    #[serde(with = "crate::decimal_serde")]
    pub qty: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub revenue: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub cost: Decimal,
}

/// Goods in and out per period, for the purchase–sales–stock summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Flow {
    #[serde(with = "crate::decimal_serde")]
    pub in_qty: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub in_value: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub out_qty: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub out_value: Decimal,
}

/// One product's step of a cross-branch transfer order (`crate::transfer`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitMove {
    pub order: crate::transfer::OrderId,
    pub product: ProductCode,
    pub step: crate::transfer::Step,
    pub moved: crate::transfer::Moved,
    /// A receipt after which nothing more will arrive.
    pub last: bool,
}

/// The complete effect of one document.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Posting {
    pub stock: Vec<StockMove>,
    pub gl: Vec<GlLine>,
    /// Signed change of a party's balance (receivable: they owe more; payable: we owe more).
    pub parties: Vec<(Side, PartyCode, Decimal)>,
    pub open_items: Vec<OpenItemMove>,
    pub consignment: Vec<(Consignment, PartyCode, ProductCode, LayerOp)>,
    pub loans: Vec<(Loan, PartyCode, ProductCode, Decimal)>,
    pub sales: Vec<SalesFact>,
    pub close: Option<Period>,
    pub cost_method: Option<CostMethod>,
    pub reverses: Option<DocNumber>,
    /// Changes to what sales and receipts left to return (see [`returns`]).
    pub returnable: Vec<returns::ReturnableMove>,
    /// 反结账: the month this document reopens (the latest closed one).
    pub reopen: Option<Period>,
    /// Things worth telling the operator that do not stop the posting (sold below cost).
    pub warnings: Vec<String>,
    /// Cross-branch transfer steps this document made.
    pub transit: Vec<TransitMove>,
}

impl Posting {
    pub fn debits(&self) -> Decimal {
        self.gl.iter().map(|l| l.debit).sum()
    }
    pub fn credits(&self) -> Decimal {
        self.gl.iter().map(|l| l.credit).sum()
    }
    /// Debits and credits, or `None` if either sum exceeds a `Decimal` (posting refuses
    /// such a document before anyone calls the unchecked sums above).
    pub fn checked_totals(&self) -> Option<(Decimal, Decimal)> {
        let debits = stock::sum(self.gl.iter().map(|l| l.debit), "debits").ok()?;
        let credits = stock::sum(self.gl.iter().map(|l| l.credit), "credits").ok()?;
        Some((debits, credits))
    }
    /// Cost of goods that left own stock (positive).
    pub fn cost_out(&self) -> Decimal {
        self.stock
            .iter()
            .map(|m| match &m.op {
                LayerOp::Average { value, .. } if *value < Decimal::ZERO => -*value,
                LayerOp::Take { taken, .. } => taken.iter().map(|t| t.value).sum(),
                _ => Decimal::ZERO,
            })
            .sum()
    }
}
