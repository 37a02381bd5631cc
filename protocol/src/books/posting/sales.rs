//! Sales: credit and cash sales (销售单), till sales (零售单) and sales returns, with
//! the sales facts reports rank by.
//!
//! Must not: read the till's payment beyond its method (the till checked the change).

use rust_decimal::Decimal;

use super::acc::{self, code};
use super::{Builder, PostContext, PostError, Side};
use crate::books::returns::Origin;
use crate::books::stock;
use crate::codes::AccountCode;
use crate::document::{DocType, PaymentMethod};

/// 销售单 / 零售单: stock out at cost, revenue at the line amounts. A retail sale is paid
/// into cash or bank (by its payment method unless it names the account); a sale without
/// an account goes on the customer's receivable, within their credit limit.
pub(super) fn sale(b: &mut Builder<'_>, account: Option<AccountCode>, ctx: PostContext<'_>) -> Result<(), PostError> {
    assert!(matches!(b.doc_type(), DocType::Sale | DocType::Retail));
    let doc = b.doc;
    let h = &doc.header;
    let w = &h.warehouse;
    let total = b.total()?;
    let customer = h.counterparty;
    let mut cost = Decimal::ZERO;
    for l in &doc.lines {
        let c = b.take(w, l)?;
        if l.amount < c {
            b.p.warnings.push(format!("{} sold at {} below its cost {}", l.product, l.amount, c));
        }
        b.sales_fact(l, customer, l.qty, l.amount, c);
        b.returnable(Origin::Sale, l.product, l.qty, c);
        cost = stock::add(cost, c, "the cost of the goods")?;
    }
    let cash = if h.doc_type == DocType::Retail {
        Some(account.unwrap_or_else(|| match h.payment.map(|p| p.method) {
            Some(PaymentMethod::Cash) | None => code(acc::CASH),
            Some(_) => code(acc::BANK),
        }))
    } else {
        account
    };
    match cash {
        Some(a) => b.gl(a, total, Decimal::ZERO),
        None => {
            let c = b.party()?;
            if let Some(limit) = ctx.profile.and_then(|p| p.credit_limit(&c)) {
                let owed = b.books.parties.get(&(Side::Receivable, c)).copied().unwrap_or_default();
                if owed.checked_add(total).is_none_or(|t| t > limit) {
                    return Err(PostError::CreditLimit { customer: c, limit, owed, adding: total });
                }
            }
            b.gl(code(acc::RECEIVABLE), total, Decimal::ZERO);
            b.party_move(Side::Receivable, c, total);
            b.open_item(Side::Receivable, c, total);
        }
    }
    b.gl(code(acc::REVENUE), Decimal::ZERO, total);
    b.dr_cr(code(acc::COST_OF_SALES), code(acc::INVENTORY), cost);
    Ok(())
}

/// 已收款退货: the customer returns goods of the sale `ext.returns` names, no more than it
/// left unreturned; refunded (the line amounts) in cash or off their receivable.
pub(super) fn take_back(b: &mut Builder<'_>, account: Option<AccountCode>) -> Result<(), PostError> {
    assert_eq!(b.doc_type(), DocType::SalesReturn);
    let doc = b.doc;
    let h = &doc.header;
    let w = &h.warehouse;
    let total = b.total()?;
    // Returned goods come back at the cost they went out at: their share of the cost
    // the sale issued and has not yet taken back (under FIFO/LIFO as one new layer).
    let mut cost = Decimal::ZERO;
    for l in &doc.lines {
        let value = b.unreturned(Origin::Sale, l)?;
        b.receive(w, &l.product, l.qty, value)?;
        b.sales_fact(l, h.counterparty, -l.qty, -l.amount, -value);
        cost = stock::add(cost, value, "the cost of the goods")?;
    }
    b.gl(code(acc::REVENUE), total, Decimal::ZERO);
    match account {
        Some(a) => b.gl(a, Decimal::ZERO, total),
        None => {
            let customer = b.party()?;
            b.gl(code(acc::RECEIVABLE), Decimal::ZERO, total);
            b.party_move(Side::Receivable, customer, -total);
            b.settle(Side::Receivable, &customer)?;
        }
    }
    b.dr_cr(code(acc::INVENTORY), code(acc::COST_OF_SALES), cost);
    Ok(())
}
