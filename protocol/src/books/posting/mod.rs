//! Posting rules, one per document type (seed 003 §附1 describes each one's effect).
//!
//! Everything here computes; nothing changes the books. A `Builder` keeps scratch copies
//! of the positions a document touches, so a document whose lines repeat a product sees
//! its own earlier lines, and the resulting ops replay exactly in `Books::apply`.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::accounts::{self as acc, code};
use super::{Books, Consignment, GlLine, Loan, OpenItem, OpenItemMove, Posting, SalesFact, SalesKey, Side, Stock, StockKey, StockMove};
use crate::codes::{AccountCode, PartyCode, ProductCode, WarehouseCode};
use crate::document::{round_money, DocNumber, DocType, Document, Draft, Line, LineRole, OpeningKind, PaymentMethod, Period};
use crate::error::PostError;
use crate::profile::BranchProfile;

/// What posting checks a document against besides the books: the branch's scope, the
/// product catalog and customers' credit limits. `None` skips those checks (replaying a
/// journal whose documents were already accepted).
#[derive(Clone, Copy, Debug, Default)]
pub struct PostContext<'a> {
    pub profile: Option<&'a BranchProfile>,
}

/// Computes the posting of `doc` against `books`. Pure; nothing is changed.
pub fn post(books: &Books, doc: &Document, ctx: PostContext<'_>) -> Result<Posting, PostError> {
    doc.validate()?;
    let h = &doc.header;
    if let Some(closed) = books.closed_through {
        if Period::of(h.date) <= closed {
            return Err(PostError::PeriodClosed { date: h.date.to_string(), closed: format!("{}-{:02}", closed.year, closed.month) });
        }
    }
    if let Some(profile) = ctx.profile {
        for w in std::iter::once(&h.warehouse).chain(h.ext.to_warehouse.as_ref()) {
            if !profile.allows_warehouse(w) {
                return Err(PostError::WarehouseOutOfScope { warehouse: *w, allowed: profile.warehouses_text() });
            }
        }
        if let Some(line) = doc.lines.iter().find(|l| !profile.knows_product(&l.product)) {
            return Err(PostError::UnknownProduct { product: line.product });
        }
    }
    if let Some(orig) = &h.ext.reverses {
        return reverse(books, doc, orig);
    }
    let mut b = Builder { books, doc, p: Posting::default(), scratch: BTreeMap::new(), consign: BTreeMap::new() };
    b.rules(ctx)?;
    let p = b.p;
    assert_eq!(p.debits(), p.credits(), "posting rule for {:?} does not balance", h.doc_type);
    Ok(p)
}

struct Builder<'a> {
    books: &'a Books,
    doc: &'a Document,
    p: Posting,
    /// Keyed by codes borrowed from the document, so a lookup clones nothing.
    scratch: BTreeMap<(&'a WarehouseCode, &'a ProductCode), Stock>,
    consign: BTreeMap<(Consignment, PartyCode, ProductCode), Stock>,
}

fn party(doc: &Document) -> PartyCode {
    doc.header.counterparty.expect("validated: this type has a counterparty")
}

impl<'a> Builder<'a> {
    fn method(&self) -> crate::document::CostMethod {
        self.books.cost_method()
    }

    fn stock_mut(&mut self, w: &'a WarehouseCode, product: &'a ProductCode) -> &mut Stock {
        let books = self.books;
        self.scratch.entry((w, product)).or_insert_with(|| books.stock_at(w, product).cloned().unwrap_or_default())
    }

    /// Goods out of own stock at cost; returns the cost.
    fn take(&mut self, w: &'a WarehouseCode, l: &'a Line) -> Result<Decimal, PostError> {
        let method = self.method();
        let s = self.stock_mut(w, &l.product);
        let Some((op, cost)) = s.take(method, l.qty) else {
            return Err(PostError::NegativeStock { warehouse: *w, product: l.product, on_hand: s.pos.qty, needed: l.qty });
        };
        s.apply(&op);
        self.p.stock.push(StockMove { key: (*w, l.product), op });
        Ok(cost)
    }

    /// Goods into own stock worth `value`.
    fn receive(&mut self, w: &'a WarehouseCode, product: &'a ProductCode, qty: Decimal, value: Decimal) {
        let op = Stock::receive(self.method(), qty, value);
        self.stock_mut(w, product).apply(&op);
        self.p.stock.push(StockMove { key: (*w, *product), op });
    }

    fn gl(&mut self, account: AccountCode, debit: Decimal, credit: Decimal) {
        if !(debit.is_zero() && credit.is_zero()) {
            self.p.gl.push(GlLine { account, debit, credit });
        }
    }

    /// Debit one account and credit another by `amount`; a negative amount swaps sides.
    fn dr_cr(&mut self, dr: AccountCode, cr: AccountCode, amount: Decimal) {
        if amount > Decimal::ZERO {
            self.gl(dr, amount, Decimal::ZERO);
            self.gl(cr, Decimal::ZERO, amount);
        } else if amount < Decimal::ZERO {
            self.gl(cr, -amount, Decimal::ZERO);
            self.gl(dr, Decimal::ZERO, -amount);
        }
    }

    fn money_account(&self, a: &Option<AccountCode>) -> Result<Option<AccountCode>, PostError> {
        match a {
            Some(a) if !acc::is_money(a) => Err(PostError::NotMoneyAccount { account: *a }),
            other => Ok(*other),
        }
    }

    fn party_move(&mut self, side: Side, p: PartyCode, amount: Decimal) {
        self.p.parties.push((side, p, amount));
    }

    fn open_item(&mut self, side: Side, p: PartyCode, amount: Decimal) {
        let h = &self.doc.header;
        let item = OpenItem { side, party: p, date: h.date, total: amount, open: amount };
        self.p.open_items.push(OpenItemMove::Create { key: (h.number.clone(), p), item });
    }

    fn consign_take(&mut self, kind: Consignment, p: &PartyCode, l: &Line) -> Result<Decimal, PostError> {
        let books = self.books;
        let key = (kind, *p, l.product);
        let s = self.consign.entry(key).or_insert_with(|| books.consignment.get(&key).cloned().unwrap_or_default());
        let Some((op, value)) = s.take(crate::document::CostMethod::MovingAverage, l.qty) else {
            return Err(PostError::NotEnoughConsigned { party: *p, product: l.product, held: s.pos.qty, needed: l.qty });
        };
        s.apply(&op);
        self.p.consignment.push((kind, *p, l.product, op));
        Ok(value)
    }

    fn consign_put(&mut self, kind: Consignment, p: &PartyCode, product: &ProductCode, qty: Decimal, value: Decimal) {
        let books = self.books;
        let key = (kind, *p, *product);
        let op = Stock::receive(crate::document::CostMethod::MovingAverage, qty, value);
        self.consign.entry(key).or_insert_with(|| books.consignment.get(&key).cloned().unwrap_or_default()).apply(&op);
        self.p.consignment.push((kind, *p, *product, op));
    }

    fn sales_fact(&mut self, l: &Line, customer: Option<PartyCode>, qty: Decimal, revenue: Decimal, cost: Decimal) {
        let h = &self.doc.header;
        let key = SalesKey { period: Period::of(h.date), warehouse: h.warehouse, product: l.product, customer, handler: h.operator };
        self.p.sales.push(SalesFact { key, qty, revenue, cost });
    }

    /// Applies `ext.settles` against `party`'s open items on `side` (per-invoice
    /// settlement). One item may be named twice; together they may not exceed what is open.
    fn settle(&mut self, side: Side, p: &PartyCode) -> Result<(), PostError> {
        let mut settled: BTreeMap<(DocNumber, PartyCode), Decimal> = BTreeMap::new();
        for s in &self.doc.header.ext.settles {
            let key = (s.doc.clone(), *p);
            let before = settled.entry(key.clone()).or_default();
            match self.books.open_items.get(&key) {
                Some(item) if item.side == side && *before + s.amount <= item.open => {}
                Some(item) => return Err(PostError::OverSettled { doc: s.doc.to_string(), open: item.open - *before, amount: s.amount }),
                None => return Err(PostError::NothingToSettle { doc: s.doc.to_string(), party: *p }),
            }
            *before += s.amount;
            self.p.open_items.push(OpenItemMove::Settle { key, amount: s.amount });
        }
        Ok(())
    }

    fn rules(&mut self, ctx: PostContext<'_>) -> Result<(), PostError> {
        let doc = self.doc;
        let h = &doc.header;
        let w = &h.warehouse;
        let total: Decimal = doc.lines.iter().map(|l| l.amount).sum();
        let money = h.ext.money.unwrap_or_default();
        let account = self.money_account(&h.ext.account)?;
        match h.doc_type {
            DocType::PurchaseReceipt => {
                for l in &doc.lines {
                    self.receive(w, &l.product, l.qty, l.amount);
                }
                self.gl(code(acc::INVENTORY), total, Decimal::ZERO);
                match account {
                    Some(a) => self.gl(a, Decimal::ZERO, total),
                    None => {
                        self.gl(code(acc::PAYABLE), Decimal::ZERO, total);
                        self.party_move(Side::Payable, party(doc), total);
                        self.open_item(Side::Payable, party(doc), total);
                    }
                }
            }
            DocType::PurchaseReturn => {
                let mut cost = Decimal::ZERO;
                for l in &doc.lines {
                    cost += self.take(w, l)?;
                }
                match account {
                    Some(a) => self.gl(a, total, Decimal::ZERO),
                    None => {
                        self.gl(code(acc::PAYABLE), total, Decimal::ZERO);
                        self.party_move(Side::Payable, party(doc), -total);
                        self.settle(Side::Payable, &party(doc))?;
                    }
                }
                self.gl(code(acc::INVENTORY), Decimal::ZERO, cost);
                // Refund above or below book cost: the difference is a cost adjustment.
                let diff = total - cost;
                if diff > Decimal::ZERO {
                    self.gl(code(acc::COST_ADJUSTMENT_DIFFERENCE), Decimal::ZERO, diff);
                } else if diff < Decimal::ZERO {
                    self.gl(code(acc::COST_ADJUSTMENT_DIFFERENCE), -diff, Decimal::ZERO);
                }
            }
            DocType::Sale | DocType::Retail => {
                let customer = h.counterparty;
                let mut cost = Decimal::ZERO;
                for l in &doc.lines {
                    let c = self.take(w, l)?;
                    if l.amount < c {
                        self.p.warnings.push(format!("{} sold at {} below its cost {}", l.product, l.amount, c));
                    }
                    self.sales_fact(l, customer, l.qty, l.amount, c);
                    cost += c;
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
                    Some(a) => self.gl(a, total, Decimal::ZERO),
                    None => {
                        let c = party(doc);
                        if let Some(limit) = ctx.profile.and_then(|p| p.credit_limits.get(&c)).map(|d| &d.0) {
                            let owed = self.books.parties.get(&(Side::Receivable, c)).copied().unwrap_or_default();
                            if owed + total > *limit {
                                return Err(PostError::CreditLimit { customer: c, limit: *limit, owed, adding: total });
                            }
                        }
                        self.gl(code(acc::RECEIVABLE), total, Decimal::ZERO);
                        self.party_move(Side::Receivable, c, total);
                        self.open_item(Side::Receivable, c, total);
                    }
                }
                self.gl(code(acc::REVENUE), Decimal::ZERO, total);
                self.dr_cr(code(acc::COST_OF_SALES), code(acc::INVENTORY), cost);
            }
            DocType::SalesReturn => {
                // Returned goods come back at the current average cost of what is on hand,
                // or at the line price when none is left to take a cost from.
                let mut cost = Decimal::ZERO;
                for l in &doc.lines {
                    let pos = self.stock_mut(w, &l.product).pos;
                    let value = if pos.qty.is_zero() { l.amount } else { round_money(pos.value * l.qty / pos.qty) };
                    self.receive(w, &l.product, l.qty, value);
                    self.sales_fact(l, h.counterparty, -l.qty, -l.amount, -value);
                    cost += value;
                }
                self.gl(code(acc::REVENUE), total, Decimal::ZERO);
                match account {
                    Some(a) => self.gl(a, Decimal::ZERO, total),
                    None => {
                        self.gl(code(acc::RECEIVABLE), Decimal::ZERO, total);
                        self.party_move(Side::Receivable, party(doc), -total);
                        self.settle(Side::Receivable, &party(doc))?;
                    }
                }
                self.dr_cr(code(acc::INVENTORY), code(acc::COST_OF_SALES), cost);
            }
            DocType::Receipt | DocType::Payment => {
                let (side, control) =
                    if h.doc_type == DocType::Receipt { (Side::Receivable, acc::RECEIVABLE) } else { (Side::Payable, acc::PAYABLE) };
                let a = account.expect("validated: receipts and payments name an account");
                let p = party(doc);
                self.settle(side, &p)?;
                if side == Side::Receivable {
                    self.dr_cr(a, code(control), money);
                } else {
                    self.dr_cr(code(control), a, money);
                }
                // What exceeds the balance is an advance: the balance simply goes past zero.
                self.party_move(side, p, -money);
            }
            DocType::TransferSamePrice | DocType::TransferChangedPrice => {
                let to = h.ext.to_warehouse.as_ref().expect("validated: transfers name a receiving warehouse");
                if to == w {
                    return Err(PostError::SameWarehouse { warehouse: *to });
                }
                let mut diff = Decimal::ZERO;
                for l in &doc.lines {
                    let cost = self.take(w, l)?;
                    let value = if h.doc_type == DocType::TransferSamePrice { cost } else { l.amount };
                    self.receive(to, &l.product, l.qty, value);
                    diff += value - cost;
                }
                self.dr_cr(code(acc::INVENTORY), code(acc::TRANSFER_PRICE_DIFFERENCE), diff);
            }
            DocType::StockLoss => {
                let mut cost = Decimal::ZERO;
                for l in &doc.lines {
                    cost += self.take(w, l)?;
                }
                self.dr_cr(code(acc::INVENTORY_OVER_SHORT), code(acc::INVENTORY), cost);
            }
            DocType::StockGain => {
                for l in &doc.lines {
                    self.receive(w, &l.product, l.qty, l.amount);
                }
                self.dr_cr(code(acc::INVENTORY), code(acc::INVENTORY_OVER_SHORT), total);
            }
            DocType::CostAdjustment => {
                let mut delta = Decimal::ZERO;
                let method = self.method();
                for l in &doc.lines {
                    let s = self.stock_mut(w, &l.product);
                    if s.pos.qty != l.qty || s.pos.qty.is_zero() {
                        return Err(PostError::AdjustQtyMismatch { warehouse: *w, product: l.product, on_hand: s.pos.qty, given: l.qty });
                    }
                    delta += l.amount - s.pos.value;
                    let op = match method {
                        crate::document::CostMethod::MovingAverage => {
                            crate::books::LayerOp::Average { qty: Decimal::ZERO, value: l.amount - s.pos.value }
                        }
                        _ => s.revalue_layers(l.amount),
                    };
                    s.apply(&op);
                    self.p.stock.push(StockMove { key: (*w, l.product), op });
                }
                self.dr_cr(code(acc::INVENTORY), code(acc::COST_ADJUSTMENT_DIFFERENCE), delta);
            }
            DocType::Assembly => {
                let mut consumed = Decimal::ZERO;
                for l in doc.lines.iter().filter(|l| l.role == LineRole::Consumed) {
                    consumed += self.take(w, l)?;
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
                let weight_total: Decimal = weights.iter().sum();
                let mut left = consumed;
                for (i, l) in produced.iter().enumerate() {
                    let share = if i + 1 == produced.len() { left } else { round_money(consumed * weights[i] / weight_total).min(left) };
                    left -= share;
                    self.receive(w, &l.product, l.qty, share);
                }
            }
            DocType::ConsignOutShip => {
                let dealer = party(doc);
                let mut cost = Decimal::ZERO;
                for l in &doc.lines {
                    let c = self.take(w, l)?;
                    self.consign_put(Consignment::OutToDealer, &dealer, &l.product, l.qty, c);
                    cost += c;
                }
                self.dr_cr(code(acc::CONSIGNED_OUT_GOODS), code(acc::INVENTORY), cost);
            }
            DocType::ConsignOutSettle => {
                let dealer = party(doc);
                let mut cost = Decimal::ZERO;
                for l in &doc.lines {
                    let c = self.consign_take(Consignment::OutToDealer, &dealer, l)?;
                    self.sales_fact(l, Some(dealer), l.qty, l.amount, c);
                    cost += c;
                }
                self.dr_cr(code(acc::RECEIVABLE), code(acc::REVENUE), total);
                self.party_move(Side::Receivable, dealer, total);
                self.open_item(Side::Receivable, dealer, total);
                self.dr_cr(code(acc::COST_OF_SALES), code(acc::CONSIGNED_OUT_GOODS), cost);
            }
            DocType::ConsignOutReturn => {
                let dealer = party(doc);
                let mut value = Decimal::ZERO;
                for l in &doc.lines {
                    let v = self.consign_take(Consignment::OutToDealer, &dealer, l)?;
                    self.receive(w, &l.product, l.qty, v);
                    value += v;
                }
                self.dr_cr(code(acc::INVENTORY), code(acc::CONSIGNED_OUT_GOODS), value);
            }
            DocType::ConsignInReceive => {
                let supplier = party(doc);
                for l in &doc.lines {
                    self.consign_put(Consignment::InFromSupplier, &supplier, &l.product, l.qty, l.amount);
                }
                self.dr_cr(code(acc::CONSIGNED_IN_GOODS), code(acc::CONSIGNED_IN_PAYABLE), total);
            }
            DocType::ConsignInSettle => {
                // Consigned goods become ours at the settlement price, owed to the supplier.
                let supplier = party(doc);
                let mut held = Decimal::ZERO;
                for l in &doc.lines {
                    held += self.consign_take(Consignment::InFromSupplier, &supplier, l)?;
                    self.receive(w, &l.product, l.qty, l.amount);
                }
                self.dr_cr(code(acc::CONSIGNED_IN_PAYABLE), code(acc::CONSIGNED_IN_GOODS), held);
                self.dr_cr(code(acc::INVENTORY), code(acc::PAYABLE), total);
                self.party_move(Side::Payable, supplier, total);
                self.open_item(Side::Payable, supplier, total);
            }
            DocType::ConsignInReturn => {
                let supplier = party(doc);
                let mut held = Decimal::ZERO;
                for l in &doc.lines {
                    held += self.consign_take(Consignment::InFromSupplier, &supplier, l)?;
                }
                self.dr_cr(code(acc::CONSIGNED_IN_PAYABLE), code(acc::CONSIGNED_IN_GOODS), held);
            }
            DocType::LendOut | DocType::LendReturn | DocType::BorrowIn | DocType::BorrowReturn => {
                let p = party(doc);
                let (kind, sign) = match h.doc_type {
                    DocType::LendOut => (Loan::LentOut, Decimal::ONE),
                    DocType::LendReturn => (Loan::LentOut, Decimal::NEGATIVE_ONE),
                    DocType::BorrowIn => (Loan::BorrowedIn, Decimal::ONE),
                    _ => (Loan::BorrowedIn, Decimal::NEGATIVE_ONE),
                };
                let mut pending: BTreeMap<&ProductCode, Decimal> = BTreeMap::new();
                for l in &doc.lines {
                    let out = pending
                        .entry(&l.product)
                        .or_insert_with(|| self.books.loans.get(&(kind, p, l.product)).copied().unwrap_or_default());
                    if sign < Decimal::ZERO && l.qty > *out {
                        return Err(PostError::NotEnoughOnLoan { party: p, product: l.product, outstanding: *out, returning: l.qty });
                    }
                    *out += sign * l.qty;
                    self.p.loans.push((kind, p, l.product, sign * l.qty));
                }
            }
            DocType::Expense => {
                let cat = h.ext.category.as_deref().expect("validated: expenses have a category");
                let a = account.expect("validated: expenses name an account");
                self.dr_cr(sub(acc::EXPENSES, cat)?, a, money);
            }
            DocType::OtherIncome => {
                let cat = h.ext.category.as_deref().expect("validated: income has a category");
                let a = account.expect("validated: income names an account");
                self.dr_cr(a, sub(acc::OTHER_INCOME, cat)?, money);
            }
            DocType::FundTransfer => {
                let to = self.money_account(&h.ext.to_account)?.expect("validated: transfers name both accounts");
                let from = account.expect("validated: transfers name both accounts");
                self.dr_cr(to, from, money);
            }
            // The other side goes to other income or expenses, to the sub-account of
            // `ext.category` when the document names one (e.g. `6301.REBATE`).
            DocType::ReceivableIncrease => {
                self.dr_cr(code(acc::RECEIVABLE), categorised(acc::OTHER_INCOME, &h.ext.category)?, money);
                self.party_move(Side::Receivable, party(doc), money);
                self.open_item(Side::Receivable, party(doc), money);
            }
            DocType::ReceivableDecrease => {
                self.dr_cr(categorised(acc::EXPENSES, &h.ext.category)?, code(acc::RECEIVABLE), money);
                self.party_move(Side::Receivable, party(doc), -money);
                self.settle(Side::Receivable, &party(doc))?;
            }
            DocType::PayableIncrease => {
                self.dr_cr(categorised(acc::EXPENSES, &h.ext.category)?, code(acc::PAYABLE), money);
                self.party_move(Side::Payable, party(doc), money);
                self.open_item(Side::Payable, party(doc), money);
            }
            DocType::PayableDecrease => {
                self.dr_cr(code(acc::PAYABLE), categorised(acc::OTHER_INCOME, &h.ext.category)?, money);
                self.party_move(Side::Payable, party(doc), -money);
                self.settle(Side::Payable, &party(doc))?;
            }
            DocType::Opening => {
                if self.books.postings > 0 {
                    return Err(PostError::OpeningAfterPosting);
                }
                if let (Some(now), Some(wanted)) = (self.books.cost_method, h.ext.cost_method) {
                    if now != wanted {
                        return Err(PostError::CostMethodFrozen { current: format!("{now:?}"), wanted: format!("{wanted:?}") });
                    }
                }
                self.p.cost_method = Some(h.ext.cost_method.or(self.books.cost_method).unwrap_or_default());
                // Stock of the opening is received under the method being set.
                let method = self.p.cost_method.unwrap_or_default();
                for l in &doc.lines {
                    let op = Stock::receive(method, l.qty, l.amount);
                    self.stock_mut(w, &l.product).apply(&op);
                    self.p.stock.push(StockMove { key: (*w, l.product), op });
                }
                self.dr_cr(code(acc::INVENTORY), code(acc::EQUITY), total);
                for b in &h.ext.balances {
                    match &b.kind {
                        OpeningKind::Receivable(p) => {
                            self.dr_cr(code(acc::RECEIVABLE), code(acc::EQUITY), b.amount);
                            self.party_move(Side::Receivable, *p, b.amount);
                            self.open_item(Side::Receivable, *p, b.amount);
                        }
                        OpeningKind::Payable(p) => {
                            self.dr_cr(code(acc::EQUITY), code(acc::PAYABLE), b.amount);
                            self.party_move(Side::Payable, *p, b.amount);
                            self.open_item(Side::Payable, *p, b.amount);
                        }
                        OpeningKind::Account(a) => {
                            let a = self.money_account(&Some(*a))?.expect("some in, some out");
                            self.dr_cr(a, code(acc::EQUITY), b.amount);
                        }
                    }
                }
            }
            DocType::ManualEntry => {
                for e in &h.ext.entries {
                    if acc::is_control(e.account.chart()) {
                        return Err(PostError::ControlAccount { account: e.account });
                    }
                    self.gl(e.account, e.debit, e.credit);
                }
            }
            DocType::PeriodClose => {
                let period = h.ext.period.expect("validated: a close names its period");
                if self.books.closed_through.is_some_and(|c| period <= c) {
                    return Err(PostError::PeriodClosed { date: format!("{}-{:02}", period.year, period.month), closed: "already".into() });
                }
                if period >= Period::of(h.date) {
                    return Err(PostError::CloseTooEarly {
                        period: format!("{}-{:02}", period.year, period.month),
                        date: h.date.to_string(),
                    });
                }
                self.p.close = Some(period);
            }
        }
        Ok(())
    }
}

fn sub(chart: &str, cat: &str) -> Result<AccountCode, PostError> {
    AccountCode::sub(chart, cat).map_err(|_| PostError::BadCategory { category: cat.to_string() })
}

/// The chart account, or its sub-account for `category` when there is one.
fn categorised(chart: &str, category: &Option<String>) -> Result<AccountCode, PostError> {
    match category {
        Some(cat) => sub(chart, cat),
        None => Ok(code(chart)),
    }
}

/// 红字冲账: the exact opposite of a posted document still in an open period.
fn reverse(books: &Books, doc: &Document, orig: &DocNumber) -> Result<Posting, PostError> {
    let Some(recent) = books.recent(orig) else {
        return Err(PostError::CannotReverse {
            doc: orig.to_string(),
            why: format!(
                "no such posted document in an open period and the last {} months; correct it with a return or an adjustment instead",
                super::REVERSAL_WINDOW_MONTHS
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
    if super::reversal_fingerprint(doc) != recent.fingerprint {
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
        s.apply(&undo);
        p.stock.push(StockMove { key: m.key, op: undo });
    }
    let mut cscratch: BTreeMap<(Consignment, PartyCode, ProductCode), Stock> = BTreeMap::new();
    for (kind, party, product, o_op) in op.consignment.iter().rev() {
        let key = (*kind, *party, *product);
        let s = cscratch.entry(key).or_insert_with(|| books.consignment.get(&key).cloned().unwrap_or_default());
        let Some(undo) = s.undo(o_op) else {
            return why("consigned goods have moved since");
        };
        s.apply(&undo);
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
    p.sales = op.sales.iter().map(|s| SalesFact { key: s.key.clone(), qty: -s.qty, revenue: -s.revenue, cost: -s.cost }).collect();
    if h.date < recent.date {
        return why("a reversal cannot be dated before the original");
    }
    Ok(p)
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
            let unit =
                if pos.qty.is_zero() { gain_price(product) } else { (pos.value / pos.qty).round_dp(crate::document::PRICE_SCALE_MAX) };
            gain.push(Line::priced(*product, diff, unit));
        }
    }
    let make =
        |t: DocType, lines: Vec<Line>| (!lines.is_empty()).then(|| Draft { doc_type: t, lines, counterparty: None, ..template.clone() });
    (make(DocType::StockLoss, loss), make(DocType::StockGain, gain))
}
