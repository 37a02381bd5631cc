//! Red-letter reversal (红字冲账): the exact opposite of a document still in the reversal
//! window, computed from the posting the books kept for it.
//!
//! Must not: recompute the original's rule (prices and costs may have moved since); the
//! reversal undoes exactly what was posted, or is refused with the reason.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::PostError;
use crate::books::{Books, Consignment, GlLine, Loan, OpenItemMove, Posting, SalesFact, Stock, StockKey, StockMove};
use crate::codes::{PartyCode, ProductCode};
use crate::document::{DocNumber, Document};

/// 红字冲账: the exact opposite of a posted document still in an open period.
pub(super) fn reverse(books: &Books, doc: &Document, orig: &DocNumber) -> Result<Posting, PostError> {
    let Some(recent) = books.recent(orig) else {
        return Err(PostError::CannotReverse {
            doc: orig.to_string(),
            why: format!(
                "no such posted document in an open period and the last {} months; correct it with a return or an adjustment instead",
                crate::books::REVERSAL_WINDOW_MONTHS
            ),
        });
    };
    let why = |w: &str| Err(PostError::CannotReverse { doc: orig.to_string(), why: w.into() });
    if recent.is_reversal {
        return why("it is itself a reversal; post the document again instead");
    }
    if books.is_reversed(orig) {
        return why("it was already reversed");
    }
    let h = &doc.header;
    if crate::books::reversal_fingerprint(doc) != recent.fingerprint {
        return why("a reversal repeats the original's type, warehouse, counterparty, lines and amount");
    }
    let Ok(op) = postcard::from_bytes::<Posting>(&recent.posting) else {
        return why("its kept posting does not decode (a bug: please report it)");
    };
    let op = &op;
    let mut p = Posting { reverses: Some(orig.clone()), ..Posting::default() };
    // Undo stock moves last-first against scratch copies, so a product moved twice unwinds.
    let mut scratch: BTreeMap<StockKey, Stock> = BTreeMap::new();
    for m in op.stock.iter().rev() {
        let s = scratch.entry(m.key).or_insert_with(|| books.stock.get(&m.key).cloned().unwrap_or_default());
        let Some(undo) = s.undo(&m.op) else {
            return why("its goods have moved since (already issued or adjusted); post a return instead");
        };
        s.try_apply(&undo)?;
        p.stock.push(StockMove { key: m.key, op: undo });
    }
    let mut cscratch: BTreeMap<(Consignment, PartyCode, ProductCode), Stock> = BTreeMap::new();
    for (kind, party, product, o_op) in op.consignment.iter().rev() {
        let key = (*kind, *party, *product);
        let s = cscratch.entry(key).or_insert_with(|| books.consignment.get(&key).cloned().unwrap_or_default());
        let Some(undo) = s.undo(o_op) else {
            return why("consigned goods have moved since");
        };
        s.try_apply(&undo)?;
        p.consignment.push((*kind, *party, *product, undo));
    }
    // Lines repeating a product are checked together against what is still out.
    let mut out: BTreeMap<(Loan, PartyCode, ProductCode), Decimal> = BTreeMap::new();
    for (kind, party, product, q) in &op.loans {
        let key = (*kind, *party, *product);
        let out = out.entry(key).or_insert_with(|| books.loans.get(&key).copied().unwrap_or_default());
        *out -= *q;
        if *out < Decimal::ZERO {
            return why("the loan has been returned since");
        }
        p.loans.push((*kind, *party, *product, -*q));
    }
    p.gl = op.gl.iter().map(|l| GlLine { account: l.account, debit: l.credit, credit: l.debit }).collect();
    p.parties = op.parties.iter().map(|(s, party, a)| (*s, *party, -*a)).collect();
    for m in &op.open_items {
        p.open_items.push(match m {
            OpenItemMove::Create { key, item } => {
                if books.open_items.get(key).is_some_and(|now| now.open != item.total) {
                    return why("it has been (partly) settled; reverse the receipt or payment first");
                }
                OpenItemMove::Remove { key: key.clone() }
            }
            OpenItemMove::Settle { key, amount } => OpenItemMove::Settle { key: key.clone(), amount: -*amount },
            OpenItemMove::Remove { .. } => return why("it removed an open item"),
        });
    }
    // What the original added to "left to return" must still be there to take off (a
    // sale or receipt whose goods came back is not reversed; its return is, first).
    let mut left: BTreeMap<(DocNumber, ProductCode), (Decimal, Decimal)> = BTreeMap::new();
    for m in &op.returnable {
        let undo = m.negated();
        let key = (undo.doc.clone(), undo.product);
        let now = books.returnable(&undo.doc, &undo.product).map(|r| (r.left.qty, r.left.value)).unwrap_or_default();
        let l = left.entry(key).or_insert(now);
        l.0 += undo.qty;
        l.1 += undo.value;
        if l.0 < Decimal::ZERO || l.1 < Decimal::ZERO || (l.0.is_zero() && !l.1.is_zero()) {
            return why("goods of it have been returned since; reverse the return first");
        }
        p.returnable.push(undo);
    }
    p.sales = op.sales.iter().map(|s| SalesFact { key: s.key.clone(), qty: -s.qty, revenue: -s.revenue, cost: -s.cost }).collect();
    if h.date < recent.date {
        return why("a reversal cannot be dated before the original");
    }
    Ok(p)
}
