//! Ledger documents: opening balances (期初建账), manual journal entries (凭证) and the
//! month-end close (月结).
//!
//! Must not: let a manual entry touch an account a sub-ledger keeps (stock, receivables,
//! payables, consignment): those move only with their business documents.

use super::acc::{self, code};
use super::{Builder, PostError, Side, Stock, StockMove};
use crate::document::{CostMethod, DocType, OpeningKind, Period};

/// 期初建账: opens stock, receivables, payables and cash/bank against equity. Taken until
/// the first month is closed (issue 11 item 6: a branch that posted a sale before its
/// openings can still enter them); the cost method, though, is chosen only before the
/// first other document (stock already costed under one method cannot change method).
/// Opening stock follows the date-order rule like any stock document.
pub(super) fn opening(b: &mut Builder<'_>) -> Result<(), PostError> {
    assert_eq!(b.doc_type(), DocType::Opening);
    let doc = b.doc;
    let h = &doc.header;
    let w = &h.warehouse;
    if let Some(closed) = b.books.closed_through.or_else(|| b.books.earlier_closes.first().copied()) {
        return Err(PostError::OpeningAfterClose { closed: closed.label() });
    }
    if let (Some(now), Some(wanted)) = (b.books.cost_method, h.ext.cost_method) {
        if now != wanted {
            return Err(PostError::CostMethodFrozen { current: format!("{now:?}"), wanted: format!("{wanted:?}") });
        }
    }
    if let (None, Some(wanted)) = (b.books.cost_method, h.ext.cost_method) {
        let current = CostMethod::default();
        if b.books.postings > 0 && wanted != current {
            return Err(PostError::CostMethodAfterPosting {
                current: format!("{current:?}"),
                wanted: format!("{wanted:?}"),
                posted: b.books.postings,
            });
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
        return Err(PostError::AlreadyClosed { period: period.label(), closed: c.label(), next: c.months_after(1).label() });
    }
    if period >= Period::of(h.date) {
        return Err(PostError::CloseTooEarly { period: period.label(), date: h.date.to_string() });
    }
    b.p.close = Some(period);
    if period.month == 12 {
        carry_year_end(b, period);
    }
    Ok(())
}

/// The year-end carry of a December close: every income and expense account's balance
/// for the months up to `december` goes to 本年利润 (3103), and 本年利润's total to
/// 利润分配 (3104), so the new year starts with empty income accounts and last year's
/// profit in equity. Documents dated after December (posted before the close) stay in
/// their accounts: the amount carried is the balance less what later months posted.
fn carry_year_end(b: &mut Builder<'_>, december: Period) {
    let mut amounts: std::collections::BTreeMap<crate::codes::AccountCode, rust_decimal::Decimal> = b
        .books
        .gl
        .iter()
        .filter(|(a, _)| matches!(acc::class(a.chart()), acc::Class::Income | acc::Class::Expense))
        .map(|(a, v)| (*a, *v))
        .collect();
    for ((p, a), v) in &b.books.pl {
        if *p > december {
            if let Some(x) = amounts.get_mut(a) {
                *x -= *v;
            }
        }
    }
    let profit_this_year = code(acc::PROFIT_THIS_YEAR);
    let mut net = rust_decimal::Decimal::ZERO;
    for (a, v) in amounts.into_iter().filter(|(_, v)| !v.is_zero()) {
        // A debit balance (expense) is credited away, a credit balance (income) debited.
        if v > rust_decimal::Decimal::ZERO {
            b.gl(a, rust_decimal::Decimal::ZERO, v);
            b.gl(profit_this_year, v, rust_decimal::Decimal::ZERO);
        } else {
            b.gl(a, -v, rust_decimal::Decimal::ZERO);
            b.gl(profit_this_year, rust_decimal::Decimal::ZERO, -v);
        }
        net += v;
    }
    // `net` is debit-positive: a profit is a credit balance of 本年利润, carried by a debit.
    if net < rust_decimal::Decimal::ZERO {
        b.dr_cr(profit_this_year, code(acc::RETAINED_EARNINGS), -net);
    } else if net > rust_decimal::Decimal::ZERO {
        b.dr_cr(code(acc::RETAINED_EARNINGS), profit_this_year, net);
    }
}

/// 反结账: reopens `ext.period`, which must be the latest closed month; the month closed
/// before it becomes the latest again. A December's year-end carry is taken back line by
/// line. What the close forgot of the reversal window stays forgotten: a document of a
/// reopened month is corrected by a new document dated in it, not by a reversal.
pub(super) fn period_reopen(b: &mut Builder<'_>) -> Result<(), PostError> {
    assert_eq!(b.doc_type(), DocType::PeriodReopen);
    let h = &b.doc.header;
    let period = b.need(h.ext.period, "needs the period (year and month) and nothing else")?;
    let Some(closed) = b.books.closed_through else {
        return Err(PostError::ReopenNotLatest {
            period: period.label(),
            closed: "no month (nothing is closed)".into(),
            hint: String::new(),
        });
    };
    if period != closed {
        let hint = if period < closed { format!("; reopen {} first", closed.label()) } else { String::new() };
        return Err(PostError::ReopenNotLatest { period: period.label(), closed: closed.label(), hint });
    }
    if let Some(lines) = b.books.carry(period) {
        for l in lines.clone() {
            b.gl(l.account, l.credit, l.debit);
        }
    }
    b.p.reopen = Some(period);
    Ok(())
}
