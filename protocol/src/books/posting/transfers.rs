//! Cross-branch transfer steps (see `crate::transfer`): the shipment (调拨出库), the
//! receipt (调拨入库), the settlement of a discrepancy (调拨差异处理), and the store's
//! replenishment request (调拨申请), which posts nothing.
//!
//! Each step books against 内部往来 (`INTER_BRANCH`): the shipper debits it at the amount
//! (the transfer price, or the cost at same price), the receiver credits it; the transfer
//! price less cost goes to 内部调拨差价 (`TRANSFER_MARGIN`) on both sides, so the two
//! cancel in consolidation and the company shows no intercompany profit. Each step also
//! records what it moved per order and product (`TransitMove`), which is how HQ sees an
//! order's state and what is in transit.
//!
//! Must not: decide whether HQ ordered the step (the branch checks its orders before it
//! posts, HQ checks again on merge); the rules read only the document and the books.

use rust_decimal::Decimal;

use super::acc::{self, code};
use super::{Builder, PostError, StockMove};
use crate::books::stock::{self, Stock};
use crate::books::{Books, LayerOp, Position, TransitMove};
use crate::codes::{ProductCode, WarehouseCode};
use crate::document::{DocType, Line};
use crate::transfer::{CostLayer, Moved, Settle, Step, TransferRef};

/// The layers an issue took, in receipt order (oldest first): how they travel.
fn taken_in_receipt_order(op: &LayerOp) -> Vec<Position> {
    match op {
        LayerOp::Take { from_front: true, taken, .. } => taken.clone(),
        LayerOp::Take { from_front: false, taken, .. } => taken.iter().rev().copied().collect(),
        other => {
            let (qty, value) = other.moved();
            vec![Position { qty, value }]
        }
    }
}

/// The cost layers a shipment of `lines` out of `warehouse` takes from `books`, in the
/// order posting takes them: what the branch puts in the shipment's `ext.layers` before
/// posting it (and what posting checks it against).
pub fn shipment_layers(books: &Books, warehouse: &WarehouseCode, lines: &[Line]) -> Result<Vec<CostLayer>, PostError> {
    let method = books.cost_method();
    let mut scratch: std::collections::BTreeMap<ProductCode, Stock> = std::collections::BTreeMap::new();
    let mut out = Vec::new();
    for l in lines {
        let s = scratch.entry(l.product).or_insert_with(|| books.stock_at(warehouse, &l.product).cloned().unwrap_or_default());
        let Some((op, _)) = s.take(method, l.qty)? else {
            return Err(PostError::NegativeStock { warehouse: *warehouse, product: l.product, on_hand: s.pos.qty, needed: l.qty, method });
        };
        s.try_apply(&op)?;
        out.extend(taken_in_receipt_order(&op).into_iter().map(|p| CostLayer {
            product: l.product,
            qty: p.qty,
            value: p.value,
            at_price: Decimal::ZERO,
        }));
    }
    Ok(out)
}

fn transfer_ref<'d>(b: &Builder<'d>) -> Result<&'d TransferRef, PostError> {
    b.need(b.doc.header.ext.transfer.as_ref(), "needs the HQ transfer order it belongs to (transfer.order)")
}

/// Books `amount` to 内部往来 against `cost` to `other` and the difference to 内部调拨差价:
/// `inter_debit` for the shipper's side (内部往来 debited), else the receiver's.
fn book(b: &mut Builder<'_>, inter_debit: bool, other: &str, cost: Decimal, amount: Decimal) -> Result<(), PostError> {
    let margin = stock::sub(amount, cost, "the transfer price less cost")?;
    let zero = Decimal::ZERO;
    let (pos, neg) = if margin >= zero { (margin, zero) } else { (zero, -margin) };
    if inter_debit {
        b.gl(code(acc::INTER_BRANCH), amount, zero);
        b.gl(code(other), zero, cost);
        b.gl(code(acc::TRANSFER_MARGIN), neg, pos);
    } else {
        b.gl(code(other), cost, zero);
        b.gl(code(acc::TRANSFER_MARGIN), pos, neg);
        b.gl(code(acc::INTER_BRANCH), zero, amount);
    }
    Ok(())
}

/// 调拨出库: each line leaves `warehouse` at cost; the layers taken must be the ones the
/// document names, so the journal alone says what cost left and travels to the receiver.
pub(super) fn ship(b: &mut Builder<'_>) -> Result<(), PostError> {
    assert_eq!(b.doc_type(), DocType::TransferShip);
    let doc = b.doc;
    let t = transfer_ref(b)?;
    let w = &doc.header.warehouse;
    let mut taken = Vec::new();
    let (mut cost_total, mut amount_total) = (Decimal::ZERO, Decimal::ZERO);
    for l in &doc.lines {
        let cost = b.take(w, l)?;
        let op = b.p.stock.last().map(|m| m.op.clone()).expect("take pushed its move");
        taken.extend(taken_in_receipt_order(&op).into_iter().map(|p| CostLayer {
            product: l.product,
            qty: p.qty,
            value: p.value,
            at_price: Decimal::ZERO,
        }));
        let amount = if t.priced { l.amount } else { cost };
        b.p.transit.push(TransitMove {
            order: t.order,
            product: l.product,
            step: Step::Shipped,
            moved: Moved { qty: l.qty, cost, amount },
            last: false,
        });
        cost_total = stock::add(cost_total, cost, "the shipment's cost")?;
        amount_total = stock::add(amount_total, amount, "the shipment's amount")?;
    }
    if taken != doc.header.ext.layers {
        return Err(PostError::TransferLayers {
            doc: doc.header.number.to_string(),
            why: "the cost layers it names are not the ones the books take (post it again: the branch fills them in)".into(),
        });
    }
    book(b, true, acc::INVENTORY, cost_total, amount_total)
}

/// Each line with the document's layers for it, in order: a line takes whole layers of
/// its product until its quantity is reached.
fn lines_with_layers<'d>(b: &Builder<'d>) -> Result<Vec<(&'d Line, Vec<&'d CostLayer>)>, PostError> {
    let doc = b.doc;
    let mut cursor: std::collections::BTreeMap<ProductCode, usize> = std::collections::BTreeMap::new();
    let mut out = Vec::new();
    let bad = || PostError::TransferLayers {
        doc: doc.header.number.to_string(),
        why: "its cost layers do not divide among its lines (each line takes whole layers of its product)".into(),
    };
    for l in &doc.lines {
        let at = cursor.entry(l.product).or_insert(0);
        let mut got = Vec::new();
        let mut qty = Decimal::ZERO;
        for (i, c) in doc.header.ext.layers.iter().enumerate().filter(|(_, c)| c.product == l.product) {
            if i < *at {
                continue;
            }
            if qty >= l.qty {
                break;
            }
            qty += c.qty;
            got.push(c);
            *at = i + 1;
        }
        if qty != l.qty {
            return Err(bad());
        }
        out.push((l, got));
    }
    Ok(out)
}

/// Line `l`'s goods into `w` with `layers` (worth `cost` together): each layer whole under
/// FIFO/LIFO, joining the average under moving average.
fn take_in<'d>(b: &mut Builder<'d>, w: &'d WarehouseCode, l: &'d Line, layers: &[&CostLayer], cost: Decimal) -> Result<(), PostError> {
    let ops: Vec<LayerOp> = match b.method() {
        crate::document::CostMethod::MovingAverage => vec![LayerOp::Average { qty: l.qty, value: cost }],
        _ => layers.iter().map(|c| LayerOp::PushBack(Position { qty: c.qty, value: c.value })).collect(),
    };
    for op in ops {
        b.stock_mut(w, &l.product).try_apply(&op)?;
        b.p.stock.push(StockMove { key: (*w, l.product), op });
    }
    Ok(())
}

/// 调拨入库: the goods arrive into `warehouse` with the shipment's layers (each layer
/// whole under FIFO/LIFO; joining the average under moving average).
pub(super) fn receive(b: &mut Builder<'_>) -> Result<(), PostError> {
    assert_eq!(b.doc_type(), DocType::TransferReceive);
    let doc = b.doc;
    let t = transfer_ref(b)?;
    let w = &doc.header.warehouse;
    let (mut cost_total, mut amount_total) = (Decimal::ZERO, Decimal::ZERO);
    for (l, layers) in lines_with_layers(b)? {
        let cost = stock::sum(layers.iter().map(|c| c.value), "the receipt's cost")?;
        take_in(b, w, l, &layers, cost)?;
        let amount = if t.priced { l.amount } else { cost };
        b.p.transit.push(TransitMove {
            order: t.order,
            product: l.product,
            step: Step::Received,
            moved: Moved { qty: l.qty, cost, amount },
            last: t.last,
        });
        cost_total = stock::add(cost_total, cost, "the receipt's cost")?;
        amount_total = stock::add(amount_total, amount, "the receipt's amount")?;
    }
    book(b, false, acc::INVENTORY, cost_total, amount_total)
}

/// 调拨差异处理: HQ's decision on a shortfall (a loss at the shipper or receiver, or a
/// claim against the carrier) or an excess (a gain at the receiver). No goods move: a
/// shortfall's goods are gone, an excess is in the receiver's stock already.
pub(super) fn settle(b: &mut Builder<'_>) -> Result<(), PostError> {
    assert_eq!(b.doc_type(), DocType::TransferSettle);
    let t = transfer_ref(b)?;
    let kind = b.need(t.settle, "needs HQ's decision (transfer.settle)")?;
    let account = match kind {
        Settle::LossAtShipper | Settle::LossAtReceiver | Settle::GainAtReceiver => acc::INVENTORY_OVER_SHORT,
        Settle::CarrierClaim => acc::OTHER_RECEIVABLE,
        Settle::ReturnToShipper => acc::INVENTORY,
    };
    let w = &b.doc.header.warehouse;
    let (mut cost_total, mut amount_total) = (Decimal::ZERO, Decimal::ZERO);
    for (l, layers) in lines_with_layers(b)? {
        let cost = stock::sum(layers.iter().map(|c| c.value), "the settled cost")?;
        let amount = if t.priced { stock::sum(layers.iter().map(|c| c.at_price), "the settled amount")? } else { cost };
        if kind == Settle::ReturnToShipper {
            // The goods come back into the shipper's warehouse with the layers they left with.
            take_in(b, w, l, &layers, cost)?;
        }
        let sign = if kind.is_excess() { Decimal::NEGATIVE_ONE } else { Decimal::ONE };
        b.p.transit.push(TransitMove {
            order: t.order,
            product: l.product,
            step: Step::Settled,
            moved: Moved { qty: sign * l.qty, cost: sign * cost, amount: sign * amount },
            last: false,
        });
        cost_total = stock::add(cost_total, cost, "the settled cost")?;
        amount_total = stock::add(amount_total, amount, "the settled amount")?;
    }
    if kind.is_excess() {
        // The excess came in against 内部往来 at the receiver; it becomes a gain instead.
        book(b, true, account, cost_total, amount_total)
    } else {
        book(b, false, account, cost_total, amount_total)
    }
}
