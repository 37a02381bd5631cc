//! Consignment: our goods out to a dealer (委托代销: ship, settle, return) and a
//! supplier's goods in with us (受托代销: receive, settle, return). Consigned goods are
//! held apart from own stock, at moving average, whatever the books' cost method.
//!
//! Must not: count consigned-in goods as ours before they are settled.

use rust_decimal::Decimal;

use super::acc::{self, code};
use super::{Builder, Consignment, PostError, Side};
use crate::books::stock;
use crate::document::DocType;

/// 发货 / 结算 / 退货 with a dealer: shipped goods leave own stock at cost and stay ours
/// until the dealer settles (revenue, cost, receivable) or returns them.
pub(super) fn out_to_dealer(b: &mut Builder<'_>) -> Result<(), PostError> {
    let doc = b.doc;
    let w = &doc.header.warehouse;
    let total = b.total()?;
    let dealer = b.party()?;
    match b.doc_type() {
        DocType::ConsignOutShip => {
            let mut cost = Decimal::ZERO;
            for l in &doc.lines {
                let c = b.take(w, l)?;
                b.consign_put(Consignment::OutToDealer, &dealer, &l.product, l.qty, c)?;
                cost = stock::add(cost, c, "the cost of the goods")?;
            }
            b.dr_cr(code(acc::CONSIGNED_OUT_GOODS), code(acc::INVENTORY), cost);
        }
        DocType::ConsignOutSettle => {
            let mut cost = Decimal::ZERO;
            for l in &doc.lines {
                let c = b.consign_take(Consignment::OutToDealer, &dealer, l)?;
                b.sales_fact(l, Some(dealer), l.qty, l.amount, c);
                cost = stock::add(cost, c, "the cost of the goods")?;
            }
            b.dr_cr(code(acc::RECEIVABLE), code(acc::REVENUE), total);
            b.party_move(Side::Receivable, dealer, total);
            b.open_item(Side::Receivable, dealer, total);
            b.dr_cr(code(acc::COST_OF_SALES), code(acc::CONSIGNED_OUT_GOODS), cost);
        }
        t => {
            assert_eq!(t, DocType::ConsignOutReturn);
            let mut value = Decimal::ZERO;
            for l in &doc.lines {
                let v = b.consign_take(Consignment::OutToDealer, &dealer, l)?;
                b.receive(w, &l.product, l.qty, v)?;
                value = stock::add(value, v, "the value of the goods")?;
            }
            b.dr_cr(code(acc::INVENTORY), code(acc::CONSIGNED_OUT_GOODS), value);
        }
    }
    Ok(())
}

/// 收货 / 结算 / 退货 with a supplier: received goods are held for them at the line
/// amounts; settled ones become ours at the settlement price, owed to the supplier.
pub(super) fn in_from_supplier(b: &mut Builder<'_>) -> Result<(), PostError> {
    let doc = b.doc;
    let w = &doc.header.warehouse;
    let total = b.total()?;
    let supplier = b.party()?;
    match b.doc_type() {
        DocType::ConsignInReceive => {
            for l in &doc.lines {
                b.consign_put(Consignment::InFromSupplier, &supplier, &l.product, l.qty, l.amount)?;
            }
            b.dr_cr(code(acc::CONSIGNED_IN_GOODS), code(acc::CONSIGNED_IN_PAYABLE), total);
        }
        DocType::ConsignInSettle => {
            // Consigned goods become ours at the settlement price, owed to the supplier.
            let mut held = Decimal::ZERO;
            for l in &doc.lines {
                held = stock::add(held, b.consign_take(Consignment::InFromSupplier, &supplier, l)?, "the value of the consigned goods")?;
                b.receive(w, &l.product, l.qty, l.amount)?;
            }
            b.dr_cr(code(acc::CONSIGNED_IN_PAYABLE), code(acc::CONSIGNED_IN_GOODS), held);
            b.dr_cr(code(acc::INVENTORY), code(acc::PAYABLE), total);
            b.party_move(Side::Payable, supplier, total);
            b.open_item(Side::Payable, supplier, total);
        }
        t => {
            assert_eq!(t, DocType::ConsignInReturn);
            let mut held = Decimal::ZERO;
            for l in &doc.lines {
                held = stock::add(held, b.consign_take(Consignment::InFromSupplier, &supplier, l)?, "the value of the consigned goods")?;
            }
            b.dr_cr(code(acc::CONSIGNED_IN_PAYABLE), code(acc::CONSIGNED_IN_GOODS), held);
        }
    }
    Ok(())
}
