//! Stock documents: transfers between warehouses (同价/变价调拨), losses and gains
//! (报损/报溢), cost adjustments (成本调价), assembly (拆装), and the drafts a stock
//! count (盘点) turns into.
//!
//! Must not: touch parties, receivables or payables (stock moves are internal).

use rust_decimal::Decimal;

use super::acc::{self, code};
use super::{Builder, PostError, StockMove};
use crate::books::stock;
use crate::books::{Books, LayerOp};
use crate::codes::ProductCode;
use crate::document::{round_half_away, CostMethod, DocType, Draft, Line, LineRole, PRICE_SCALE_MAX};

const WHAT_DIFF: &str = "the transfer price difference";
const WHAT_SHARE: &str = "the produced lines' share of the consumed cost";

/// 同价调拨 / 变价调拨: out of `warehouse` at cost, into `ext.to_warehouse` at that cost
/// (same price) or at the line amount (changed price, the difference to its own account).
pub(super) fn transfer(b: &mut Builder<'_>) -> Result<(), PostError> {
    let t = b.doc_type();
    assert!(matches!(t, DocType::TransferSamePrice | DocType::TransferChangedPrice));
    let doc = b.doc;
    let h = &doc.header;
    let w = &h.warehouse;
    let to = b.need(h.ext.to_warehouse.as_ref(), "needs the receiving warehouse (to_warehouse)")?;
    if to == w {
        return Err(PostError::SameWarehouse { warehouse: *to });
    }
    let mut diff = Decimal::ZERO;
    for l in &doc.lines {
        if t == DocType::TransferSamePrice {
            // The goods travel with their layers (see `Stock::receive_moved`): no
            // difference, and the receipt order and costs survive the move.
            b.move_layers(w, to, l)?;
        } else {
            let cost = b.take(w, l)?;
            b.receive(to, &l.product, l.qty, l.amount)?;
            diff = stock::add(diff, stock::sub(l.amount, cost, WHAT_DIFF)?, WHAT_DIFF)?;
        }
    }
    b.dr_cr(code(acc::INVENTORY), code(acc::TRANSFER_PRICE_DIFFERENCE), diff);
    Ok(())
}

/// 报损 out at cost / 报溢 in at the line amounts, against inventory over and short.
pub(super) fn loss_or_gain(b: &mut Builder<'_>) -> Result<(), PostError> {
    let doc = b.doc;
    let w = &doc.header.warehouse;
    match b.doc_type() {
        DocType::StockLoss => {
            let mut cost = Decimal::ZERO;
            for l in &doc.lines {
                cost = stock::add(cost, b.take(w, l)?, "the cost of the goods")?;
            }
            b.dr_cr(code(acc::INVENTORY_OVER_SHORT), code(acc::INVENTORY), cost);
        }
        t => {
            assert_eq!(t, DocType::StockGain);
            for l in &doc.lines {
                b.receive(w, &l.product, l.qty, l.amount)?;
            }
            b.dr_cr(code(acc::INVENTORY), code(acc::INVENTORY_OVER_SHORT), b.total()?);
        }
    }
    Ok(())
}

/// 成本调价: each line names the quantity on hand and its new book value.
pub(super) fn cost_adjustment(b: &mut Builder<'_>) -> Result<(), PostError> {
    assert_eq!(b.doc_type(), DocType::CostAdjustment);
    let doc = b.doc;
    let w = &doc.header.warehouse;
    let mut delta = Decimal::ZERO;
    let method = b.method();
    for l in &doc.lines {
        let s = b.stock_mut(w, &l.product);
        if s.pos.qty != l.qty || s.pos.qty.is_zero() {
            return Err(PostError::AdjustQtyMismatch { warehouse: *w, product: l.product, on_hand: s.pos.qty, given: l.qty });
        }
        let change = stock::sub(l.amount, s.pos.value, "the change of value")?;
        delta = stock::add(delta, change, "the change of value")?;
        let op = match method {
            CostMethod::MovingAverage => LayerOp::Average { qty: Decimal::ZERO, value: change },
            _ => s.revalue_layers(l.amount)?,
        };
        s.try_apply(&op)?;
        b.p.stock.push(StockMove { key: (*w, l.product), op });
    }
    b.dr_cr(code(acc::INVENTORY), code(acc::COST_ADJUSTMENT_DIFFERENCE), delta);
    Ok(())
}

/// 拆装: consumed lines go out at cost, produced lines come in carrying that cost.
pub(super) fn assembly(b: &mut Builder<'_>) -> Result<(), PostError> {
    assert_eq!(b.doc_type(), DocType::Assembly);
    let doc = b.doc;
    let w = &doc.header.warehouse;
    let mut consumed = Decimal::ZERO;
    for l in doc.lines.iter().filter(|l| l.role == LineRole::Consumed) {
        consumed = stock::add(consumed, b.take(w, l)?, "the cost of the consumed goods")?;
    }
    // The consumed cost is shared by the produced lines in proportion to their
    // amounts (by quantity if all are priced zero); the last line takes the
    // remainder so the shares add up to the cent. No share may exceed what is
    // left, or rounding up could leave the last line a negative cost.
    let produced: Vec<&Line> = doc.lines.iter().filter(|l| l.role == LineRole::Produced).collect();
    let weights: Vec<Decimal> = if produced.iter().all(|l| l.amount.is_zero()) {
        produced.iter().map(|l| l.qty).collect()
    } else {
        produced.iter().map(|l| l.amount).collect()
    };
    let weight_total = stock::sum(weights.iter().copied(), WHAT_SHARE)?;
    if !produced.is_empty() && weight_total.is_zero() {
        // Validation asks for produced lines with positive quantities; without them the
        // shares below would divide by zero.
        return Err(b.invalid("needs consumed and produced lines"));
    }
    let mut left = consumed;
    for (i, l) in produced.iter().enumerate() {
        let share = if i + 1 == produced.len() { left } else { stock::prorate(consumed, weights[i], weight_total, WHAT_SHARE)?.min(left) };
        left = stock::sub(left, share, WHAT_SHARE)?;
        b.receive(w, &l.product, l.qty, share)?;
    }
    Ok(())
}

/// 盘点: counted quantities in; a stock-loss draft and a stock-gain draft out (either may
/// be absent). Gains are valued at the current average cost (or `gain_price` when the
/// book quantity is zero). The drafts are posted like any other document.
pub fn stock_count_drafts(
    books: &Books,
    template: &Draft,
    counted: &[(ProductCode, Decimal)],
    gain_price: impl Fn(&ProductCode) -> Decimal,
) -> (Option<Draft>, Option<Draft>) {
    let mut loss = Vec::new();
    let mut gain = Vec::new();
    for (product, qty) in counted {
        let pos = books.position(&(template.warehouse, *product));
        let diff = *qty - pos.qty;
        if diff < Decimal::ZERO {
            loss.push(Line::priced(*product, -diff, Decimal::ZERO));
        } else if diff > Decimal::ZERO {
            let unit = if pos.qty.is_zero() { gain_price(product) } else { round_half_away(pos.value / pos.qty, PRICE_SCALE_MAX) };
            gain.push(Line::priced(*product, diff, unit));
        }
    }
    let make =
        |t: DocType, lines: Vec<Line>| (!lines.is_empty()).then(|| Draft { doc_type: t, lines, counterparty: None, ..template.clone() });
    (make(DocType::StockLoss, loss), make(DocType::StockGain, gain))
}
