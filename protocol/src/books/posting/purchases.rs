//! Purchases: goods in from a supplier (采购入库) and goods back to them (采购退货),
//! paid from a cash/bank account or on credit against the supplier's payable.
//!
//! Must not: touch receivables or sales facts (a purchase is no sale).

use rust_decimal::Decimal;

use super::acc::{self, code};
use super::{Builder, PostError, Side};
use crate::books::returns::Origin;
use crate::books::stock;
use crate::codes::AccountCode;
use crate::document::DocType;

/// 进货单: stock in at the line amounts; cash if `account`, else owed to the supplier as
/// an open item.
pub(super) fn receipt(b: &mut Builder<'_>, account: Option<AccountCode>) -> Result<(), PostError> {
    assert_eq!(b.doc_type(), DocType::PurchaseReceipt);
    let doc = b.doc;
    let w = &doc.header.warehouse;
    let total = b.total()?;
    for l in &doc.lines {
        b.receive(w, &l.product, l.qty, l.amount)?;
        b.returnable(Origin::Receipt, l.product, l.qty, l.amount);
    }
    b.gl(code(acc::INVENTORY), total, Decimal::ZERO);
    match account {
        Some(a) => b.gl(a, Decimal::ZERO, total),
        None => {
            let supplier = b.party()?;
            b.gl(code(acc::PAYABLE), Decimal::ZERO, total);
            b.party_move(Side::Payable, supplier, total);
            b.open_item(Side::Payable, supplier, total);
        }
    }
    Ok(())
}

/// 采购退货: goods of the receipt `ext.returns` names go back to its supplier, no more
/// than it left unreturned, out of stock at the receipt's cost (moving average; under
/// FIFO/LIFO by the layers, which are the goods on hand); refunded at the line amounts
/// (cash, or less owed). The difference between refund and cost is a cost adjustment.
pub(super) fn give_back(b: &mut Builder<'_>, account: Option<AccountCode>) -> Result<(), PostError> {
    assert_eq!(b.doc_type(), DocType::PurchaseReturn);
    let doc = b.doc;
    let w = &doc.header.warehouse;
    let total = b.total()?;
    let mut cost = Decimal::ZERO;
    for l in &doc.lines {
        let at_receipt = b.unreturned(Origin::Receipt, l)?;
        cost = stock::add(cost, b.take_at(w, l, at_receipt)?, "the cost of the goods")?;
    }
    match account {
        Some(a) => b.gl(a, total, Decimal::ZERO),
        None => {
            let supplier = b.party()?;
            b.gl(code(acc::PAYABLE), total, Decimal::ZERO);
            b.party_move(Side::Payable, supplier, -total);
            b.settle(Side::Payable, &supplier)?;
        }
    }
    b.gl(code(acc::INVENTORY), Decimal::ZERO, cost);
    // Refund above or below book cost: the difference is a cost adjustment.
    let diff = stock::sub(total, cost, "the difference to cost")?;
    if diff > Decimal::ZERO {
        b.gl(code(acc::COST_ADJUSTMENT_DIFFERENCE), Decimal::ZERO, diff);
    } else if diff < Decimal::ZERO {
        b.gl(code(acc::COST_ADJUSTMENT_DIFFERENCE), -diff, Decimal::ZERO);
    }
    Ok(())
}
