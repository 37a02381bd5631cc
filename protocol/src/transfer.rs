//! Cross-branch transfers (seed 003 §2–3: transfers between branches go through HQ): the
//! order an HQ auditor issues, what travels down the channel about it, the cost layers
//! that travel with the goods, and the state of an order read off the books.
//!
//! The flow, each step a document in one branch's journal:
//! 1. HQ orders goods from A's warehouse to B's (`TransferOrder`, down to A).
//! 2. A ships (`DocType::TransferShip`, 调拨出库): the goods leave A's stock at A's cost;
//!    the document names the layers it takes (`DocExt::layers`), so the journal alone says
//!    what cost left. A books 内部往来 (inter-branch) against inventory.
//! 3. HQ applies A's shipment and forwards it down to B (`ShippedGoods`): B sees what is
//!    coming. Until B receives, the goods are in transit: A's 内部往来 with no matching
//!    receipt; consolidation reclassifies that as 在途物资 at the shipped cost.
//! 4. B receives (`DocType::TransferReceive`, 调拨入库), full or part, into its warehouse at
//!    the shipped cost: its layers are the shipment's, walked in order (`receipt_layers`),
//!    so moving average, FIFO and LIFO at B each get the right cost.
//! 5. A shortfall or excess is a discrepancy an HQ auditor settles (`Settle`), posted by the
//!    branch HQ names (`DocType::TransferSettle`, 调拨差异处理).
//!
//! A transfer price books the difference to 内部调拨差价 on both sides (A credits it, B
//! debits it), and consolidation removes it with 内部往来, so the company shows no
//! intercompany profit (`Books::consolidation_eliminated`).
//!
//! Must not: do I/O or read the clock; decide who may order (that is `people`).

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::books::Position;
use crate::codes::{BranchCode, OperatorId, ProductCode, WarehouseCode};
use crate::date::BusinessDate;
use crate::document::{DocNumber, DOC_LINES_MAX, MEMO_CHARS_MAX, PRICE_SCALE_MAX, QTY_MAX, QTY_SCALE_MAX};

/// HQ's number for a transfer order: 1, 2, 3… in the order issued.
pub type OrderId = u64;

/// What an HQ auditor decides about a discrepancy between what was shipped and received.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Settle {
    /// Shortfall written off as a loss at the shipper (responsible until received).
    LossAtShipper,
    /// Shortfall written off as a loss at the receiver.
    LossAtReceiver,
    /// Shortfall claimed against the carrier: the shipper books a receivable (其他应收款).
    CarrierClaim,
    /// Excess received kept as a stock gain at the receiver.
    GainAtReceiver,
    /// Shortfall that never reached the receiver goes back into the shipper's warehouse
    /// (the carrier brought it back), at the shipped cost.
    ReturnToShipper,
}

impl Settle {
    pub const ALL: [Settle; 5] =
        [Settle::LossAtShipper, Settle::LossAtReceiver, Settle::CarrierClaim, Settle::GainAtReceiver, Settle::ReturnToShipper];

    pub fn name(self) -> &'static str {
        match self {
            Settle::LossAtShipper => "loss-at-shipper",
            Settle::LossAtReceiver => "loss-at-receiver",
            Settle::CarrierClaim => "carrier-claim",
            Settle::GainAtReceiver => "gain-at-receiver",
            Settle::ReturnToShipper => "return-to-shipper",
        }
    }

    pub fn parse(s: &str) -> Option<Settle> {
        Settle::ALL.into_iter().find(|k| k.name() == s)
    }

    /// Does it settle an excess (more received than shipped) rather than a shortfall?
    pub fn is_excess(self) -> bool {
        self == Settle::GainAtReceiver
    }

    /// Does the shipper post it (else the receiver)?
    pub fn by_shipper(self) -> bool {
        matches!(self, Settle::LossAtShipper | Settle::CarrierClaim | Settle::ReturnToShipper)
    }
}

/// What a transfer document says about its order (`DocExt::transfer`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferRef {
    pub order: OrderId,
    /// At a transfer price: the line amounts are the price, and the difference to cost
    /// goes to 内部调拨差价. Copied from the order, so the document alone says how it posts.
    #[serde(default)]
    pub priced: bool,
    /// A receipt: the shipment it receives against.
    #[serde(default)]
    pub shipment: Option<DocNumber>,
    /// A receipt: the receiver says nothing more will arrive for this order, so what is
    /// still in transit is a shortfall for HQ to settle.
    #[serde(default)]
    pub last: bool,
    /// A settlement: what HQ decided.
    #[serde(default)]
    pub settle: Option<Settle>,
}

/// Cost travelling with goods: `qty` of `product` worth `value` at cost, in receipt order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostLayer {
    pub product: ProductCode,
    #[serde(with = "crate::decimal_serde")]
    pub qty: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub value: Decimal,
    /// A settlement only: the same goods at the transfer price (zero at same price); a
    /// shipment or receipt takes that from its line amounts.
    #[serde(default, with = "crate::decimal_serde")]
    pub at_price: Decimal,
}

/// One line of an order: a product, a quantity, and the transfer price (zero at same price).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderLine {
    pub product: ProductCode,
    #[serde(with = "crate::decimal_serde")]
    pub qty: Decimal,
    #[serde(default, with = "crate::decimal_serde")]
    pub unit_price: Decimal,
}

/// A transfer order (调拨单) issued by an HQ auditor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferOrder {
    pub id: OrderId,
    pub from: BranchCode,
    pub from_warehouse: WarehouseCode,
    pub to: BranchCode,
    pub to_warehouse: WarehouseCode,
    /// The in-transit warehouse (在途库) the goods are reported under while travelling.
    pub transit: WarehouseCode,
    pub lines: Vec<OrderLine>,
    /// At a transfer price (变价), else at cost (同价).
    pub priced: bool,
    pub expected: Option<BusinessDate>,
    pub by: OperatorId,
    pub memo: String,
    pub issued_unix: u64,
    /// The store's replenishment request (要货) it confirms: (branch, document).
    #[serde(default)]
    pub request: Option<(BranchCode, DocNumber)>,
}

/// Why an order or a transfer step is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    #[error("a transfer order needs at least one line and at most {DOC_LINES_MAX}")]
    Lines,
    #[error("line {line}: quantity must be positive, at most 10^9 with {QTY_SCALE_MAX} decimals (got {qty})")]
    Qty { line: usize, qty: Decimal },
    #[error(
        "line {line}: a same-price order has no prices; a transfer-price order needs a price ≥ 0 with at most {PRICE_SCALE_MAX} decimals"
    )]
    Price { line: usize },
    #[error("line {line}: {product} is on the order twice; give it once with the total quantity")]
    Repeated { line: usize, product: ProductCode },
    #[error("an order goes from one branch to another; {branch} to itself is a transfer the branch posts (TJ)")]
    SameBranch { branch: BranchCode },
    #[error("memo is longer than {MEMO_CHARS_MAX} characters")]
    Memo,
}

impl TransferOrder {
    /// The order on its own: lines bounded, positive, each product once, two branches.
    pub fn check(&self) -> Result<(), TransferError> {
        if self.lines.is_empty() || self.lines.len() > DOC_LINES_MAX {
            return Err(TransferError::Lines);
        }
        if self.from == self.to {
            return Err(TransferError::SameBranch { branch: self.from });
        }
        if self.memo.chars().count() > MEMO_CHARS_MAX || crate::text::check("memo", &self.memo).is_err() {
            return Err(TransferError::Memo);
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, l) in self.lines.iter().enumerate() {
            let line = i + 1;
            if l.qty <= Decimal::ZERO || l.qty > QTY_MAX || l.qty.scale() > QTY_SCALE_MAX {
                return Err(TransferError::Qty { line, qty: l.qty });
            }
            let price_ok =
                if self.priced { l.unit_price >= Decimal::ZERO && l.unit_price.scale() <= PRICE_SCALE_MAX } else { l.unit_price.is_zero() };
            if !price_ok {
                return Err(TransferError::Price { line });
            }
            if !seen.insert(l.product) {
                return Err(TransferError::Repeated { line, product: l.product });
            }
        }
        Ok(())
    }

    pub fn line(&self, product: &ProductCode) -> Option<&OrderLine> {
        self.lines.iter().find(|l| l.product == *product)
    }
}

/// One product of a shipment as HQ forwards it to the receiver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippedLine {
    pub product: ProductCode,
    #[serde(with = "crate::decimal_serde")]
    pub qty: Decimal,
    /// The transfer price (zero at same price).
    #[serde(with = "crate::decimal_serde")]
    pub unit_price: Decimal,
    /// The line amount (the transfer price × qty; zero at same price).
    #[serde(with = "crate::decimal_serde")]
    pub amount: Decimal,
    /// The cost layers shipped, in receipt order.
    pub layers: Vec<Position>,
}

/// A shipment as HQ forwards it down to the receiving branch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippedGoods {
    pub order: OrderId,
    pub shipment: DocNumber,
    pub from: BranchCode,
    /// Where the receiver takes the goods in (the order's `to_warehouse`).
    pub to_warehouse: WarehouseCode,
    pub date: BusinessDate,
    pub priced: bool,
    pub lines: Vec<ShippedLine>,
}

impl ShippedGoods {
    /// The shipment document's goods: per product its quantity, amount and the layers the
    /// document names (`DocExt::layers`, in the order posting took them).
    pub fn from_shipment(doc: &crate::document::Document, to_warehouse: WarehouseCode) -> Option<ShippedGoods> {
        let t = doc.header.ext.transfer.as_ref()?;
        let mut lines: Vec<ShippedLine> = Vec::new();
        for l in &doc.lines {
            match lines.iter_mut().find(|s| s.product == l.product) {
                Some(s) => {
                    s.qty += l.qty;
                    s.amount += l.amount;
                }
                None => lines.push(ShippedLine {
                    product: l.product,
                    qty: l.qty,
                    unit_price: l.unit_price,
                    amount: l.amount,
                    layers: Vec::new(),
                }),
            }
        }
        for c in &doc.header.ext.layers {
            if let Some(s) = lines.iter_mut().find(|s| s.product == c.product) {
                s.layers.push(Position { qty: c.qty, value: c.value });
            }
        }
        Some(ShippedGoods {
            order: t.order,
            shipment: doc.header.number.clone(),
            from: doc.header.branch,
            to_warehouse,
            date: doc.header.date,
            priced: t.priced,
            lines,
        })
    }
}

/// The layers a receipt of `qty` takes, given what was shipped of the product (every
/// shipment's layers in shipment order) and what was received or settled already
/// (`offset`): the units in the order they were shipped. Units beyond what was shipped
/// (an excess) come at the last layer's unit cost, to the cent. Both the branch (to build
/// the receipt) and HQ (to check it) walk the same way.
pub fn receipt_layers(shipped: &[Position], offset: Decimal, qty: Decimal) -> Vec<Position> {
    let mut out = Vec::new();
    let mut skip = offset.max(Decimal::ZERO);
    let mut left = qty;
    for l in shipped {
        if left <= Decimal::ZERO {
            break;
        }
        if skip >= l.qty {
            skip -= l.qty;
            continue;
        }
        let avail = l.qty - skip;
        let take = avail.min(left);
        // The share of the layer's value for the units taken, so the whole layer taken in
        // parts adds up to its value exactly.
        let before = share(l, skip);
        let after = share(l, skip + take);
        out.push(Position { qty: take, value: after - before });
        skip = Decimal::ZERO;
        left -= take;
    }
    if left > Decimal::ZERO {
        let unit = shipped.iter().rev().find(|l| !l.qty.is_zero()).map(|l| l.value / l.qty).unwrap_or_default();
        out.push(Position { qty: left, value: crate::document::round_money(unit * left) });
    }
    out
}

/// The value of the first `q` units of layer `l`, to the cent (all of it for all units).
fn share(l: &Position, q: Decimal) -> Decimal {
    if q >= l.qty {
        l.value
    } else if q.is_zero() || l.qty.is_zero() {
        Decimal::ZERO
    } else {
        crate::document::round_money(l.value * q / l.qty)
    }
}

/// Quantity, cost and amount (at the transfer price; the cost at same price).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Moved {
    #[serde(with = "crate::decimal_serde")]
    pub qty: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub cost: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub amount: Decimal,
}

impl Moved {
    pub fn add(&mut self, o: &Moved) {
        self.qty += o.qty;
        self.cost += o.cost;
        self.amount += o.amount;
    }
    pub fn minus(&self, o: &Moved) -> Moved {
        Moved { qty: self.qty - o.qty, cost: self.cost - o.cost, amount: self.amount - o.amount }
    }
    pub fn is_zero(&self) -> bool {
        self.qty.is_zero() && self.cost.is_zero() && self.amount.is_zero()
    }
}

/// Which step of an order a document was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Step {
    Shipped,
    Received,
    /// Signed: a shortfall settled is positive, an excess settled negative.
    Settled,
}

/// One product of one order as a branch's books record it (shipper and receiver each
/// record their own steps; HQ adds them up across branches).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Transit {
    pub shipped: Moved,
    pub received: Moved,
    pub settled: Moved,
    /// A receipt said nothing more will arrive.
    pub last_received: bool,
}

impl Transit {
    pub fn add(&mut self, step: Step, m: &Moved, last: bool) {
        match step {
            Step::Shipped => self.shipped.add(m),
            Step::Received => self.received.add(m),
            Step::Settled => self.settled.add(m),
        }
        self.last_received |= last;
    }

    pub fn absorb(&mut self, o: &Transit) {
        self.shipped.add(&o.shipped);
        self.received.add(&o.received);
        self.settled.add(&o.settled);
        self.last_received |= o.last_received;
    }

    /// What is still on the road: shipped, less received, less settled. Negative: more
    /// received than shipped (an excess not yet settled).
    pub fn in_transit(&self) -> Moved {
        self.shipped.minus(&self.received).minus(&self.settled)
    }
}

/// Where an order stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderState {
    /// Nothing shipped yet.
    Ordered,
    /// Part shipped; more to come.
    ShippedInPart,
    /// All shipped, some not yet received.
    InTransit,
    /// Shipped and received differ and the receiver said nothing more comes (or more came
    /// than was shipped): an HQ auditor settles it.
    Discrepancy,
    /// All shipped and received, nothing settled.
    Received,
    /// Done after a settlement.
    Closed,
}

impl OrderState {
    pub fn name(self) -> &'static str {
        match self {
            OrderState::Ordered => "ordered",
            OrderState::ShippedInPart => "shipped in part",
            OrderState::InTransit => "in transit",
            OrderState::Discrepancy => "discrepancy",
            OrderState::Received => "received",
            OrderState::Closed => "closed",
        }
    }

    pub fn zh(self) -> &'static str {
        match self {
            OrderState::Ordered => "已下单",
            OrderState::ShippedInPart => "部分发货",
            OrderState::InTransit => "在途",
            OrderState::Discrepancy => "差异待处理",
            OrderState::Received => "已收货",
            OrderState::Closed => "已关闭",
        }
    }
}

/// The state of `order` from what the books of both branches recorded of it.
pub fn order_state(order: &TransferOrder, progress: &BTreeMap<ProductCode, Transit>) -> OrderState {
    let get = |p: &ProductCode| progress.get(p).copied().unwrap_or_default();
    let any_shipped = order.lines.iter().any(|l| !get(&l.product).shipped.qty.is_zero());
    if !any_shipped {
        return OrderState::Ordered;
    }
    let excess = progress.values().any(|t| t.in_transit().qty < Decimal::ZERO);
    let last = progress.values().any(|t| t.last_received);
    let open = progress.values().any(|t| !t.in_transit().qty.is_zero());
    if excess || (last && open) {
        return OrderState::Discrepancy;
    }
    let all_shipped = order.lines.iter().all(|l| get(&l.product).shipped.qty >= l.qty);
    if !all_shipped && !last {
        return OrderState::ShippedInPart;
    }
    if open {
        return OrderState::InTransit;
    }
    if progress.values().any(|t| !t.settled.qty.is_zero()) {
        OrderState::Closed
    } else {
        OrderState::Received
    }
}

#[cfg(test)]
#[path = "transfer_tests.rs"]
mod tests;
