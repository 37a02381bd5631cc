//! Ledger documents: opening balances (期初建账), manual journal entries (凭证) and the
//! month-end close (月结).
//!
//! Must not: let a manual entry touch an account a sub-ledger keeps (stock, receivables,
//! payables, consignment): those move only with their business documents.

use super::acc::{self, code};
use super::{Builder, PostError, Side, Stock, StockMove};
use crate::document::{DocType, OpeningKind, Period};

/// 期初建账: before any other document; sets the cost method (frozen from then on) and
/// opens stock, receivables, payables and cash/bank against equity.
pub(super) fn opening(b: &mut Builder<'_>) -> Result<(), PostError> {
    assert_eq!(b.doc_type(), DocType::Opening);
    let doc = b.doc;
    let h = &doc.header;
    let w = &h.warehouse;
    if b.books.postings > 0 {
        return Err(PostError::OpeningAfterPosting);
    }
    if let (Some(now), Some(wanted)) = (b.books.cost_method, h.ext.cost_method) {
        if now != wanted {
            return Err(PostError::CostMethodFrozen { current: format!("{now:?}"), wanted: format!("{wanted:?}") });
        }
    }
    // Stock of the opening is received under the method being set.
    let method = h.ext.cost_method.or(b.books.cost_method).unwrap_or_default();
    b.p.cost_method = Some(method);
    for l in &doc.lines {
        let op = Stock::receive(method, l.qty, l.amount);
        b.stock_mut(w, &l.product).try_apply(&op)?;
        b.p.stock.push(StockMove { key: (*w, l.product), op });
    }
    b.dr_cr(code(acc::INVENTORY), code(acc::EQUITY), b.total()?);
    for bal in &h.ext.balances {
        match &bal.kind {
            OpeningKind::Receivable(p) => {
                b.dr_cr(code(acc::RECEIVABLE), code(acc::EQUITY), bal.amount);
                b.party_move(Side::Receivable, *p, bal.amount);
                b.open_item(Side::Receivable, *p, bal.amount);
            }
            OpeningKind::Payable(p) => {
                b.dr_cr(code(acc::EQUITY), code(acc::PAYABLE), bal.amount);
                b.party_move(Side::Payable, *p, bal.amount);
                b.open_item(Side::Payable, *p, bal.amount);
            }
            OpeningKind::Account(a) => {
                if !acc::is_money(a) {
                    return Err(PostError::NotMoneyAccount { account: *a });
                }
                b.dr_cr(*a, code(acc::EQUITY), bal.amount);
            }
        }
    }
    Ok(())
}

/// 凭证: the entry's lines as written (validation checked that they balance), none on a
/// control account.
pub(super) fn manual_entry(b: &mut Builder<'_>) -> Result<(), PostError> {
    assert_eq!(b.doc_type(), DocType::ManualEntry);
    for e in &b.doc.header.ext.entries {
        if acc::is_control(e.account.chart()) {
            return Err(PostError::ControlAccount { account: e.account });
        }
        b.gl(e.account, e.debit, e.credit);
    }
    // The caller asserts debits = credits on the whole posting; an unbalanced entry that
    // skipped validation must be refused here, not trip that assertion.
    if b.p.debits() != b.p.credits() {
        return Err(PostError::Invalid(crate::error::DocError::Unbalanced { debit: b.p.debits(), credit: b.p.credits() }));
    }
    Ok(())
}

/// 月结: closes `ext.period`, which must have ended by the document's date and not be
/// closed already.
pub(super) fn period_close(b: &mut Builder<'_>) -> Result<(), PostError> {
    assert_eq!(b.doc_type(), DocType::PeriodClose);
    let h = &b.doc.header;
    let period = b.need(h.ext.period, "needs the period (year and month) and nothing else")?;
    if let Some(c) = b.books.closed_through.filter(|c| period <= *c) {
        // The month after `c` (December is followed by January of the next year).
        let next = Period { year: c.year.saturating_add(u16::from(c.month == 12)), month: c.month % 12 + 1 };
        let ym = |p: Period| format!("{}-{:02}", p.year, p.month);
        return Err(PostError::AlreadyClosed { period: ym(period), closed_through: ym(c), next: ym(next) });
    }
    if period >= Period::of(h.date) {
        return Err(PostError::CloseTooEarly { period: format!("{}-{:02}", period.year, period.month), date: h.date.to_string() });
    }
    b.p.close = Some(period);
    Ok(())
}
