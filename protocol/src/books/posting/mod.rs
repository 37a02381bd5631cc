//! Posting: (books, document) → [`Posting`], one rule per document type (seed 003 §附1
//! describes each one's effect), grouped by family in the child modules.
//!
//! This module holds the entry point [`post`] (validation, period, scope and catalog
//! checks, then the rule of the document's type) and the `Builder` the rules share. A
//! `Builder` keeps scratch copies of the positions a document touches, so a document whose
//! lines repeat a product sees its own earlier lines, and the resulting ops replay exactly
//! in `Books::apply`.
//!
//! Families: `purchases` (receipt, return), `sales` (sale, retail, return), `inventory`
//! (transfers, loss/gain, cost adjustment, assembly; stock-count drafts), `money`
//! (receipts/payments, expense/income/fund transfer, receivable/payable adjustments),
//! `consignment` (out to dealers, in from suppliers), `loans`, `ledger` (opening, manual
//! entry, month close) and `reverse` (red-letter reversal of any of them).
//!
//! Must not: change the books (everything here computes), read the clock, or do I/O. Any
//! change to what a rule computes must bump `checkpoint::ENGINE_VERSION`.

mod consignment;
mod inventory;
mod ledger;
mod loans;
mod money;
mod purchases;
mod reverse;
mod sales;
mod transfers;

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::accounts::{self as acc, code};
use super::returns::{Origin, ReturnableMove};
use super::stock;
use super::{Books, Consignment, GlLine, OpenItem, OpenItemMove, Position, Posting, SalesFact, SalesKey, Side, Stock, StockMove};
use crate::codes::{AccountCode, PartyCode, ProductCode, WarehouseCode};
use crate::document::{DocNumber, DocType, Document, Line, Period};
use crate::error::{DocError, PostError};
use crate::profile::BranchProfile;

pub use inventory::stock_count_drafts;
pub use transfers::shipment_layers;

/// What posting checks a document against besides the books: the branch's scope over
/// the eight kinds (and the person's within it), the product catalog and customers'
/// credit limits. `None` skips those checks (replaying a journal whose documents were
/// already accepted).
#[derive(Clone, Copy, Debug, Default)]
pub struct PostContext<'a> {
    pub profile: Option<&'a BranchProfile>,
    /// The signed-in person whose scope narrows the branch's; `None`: the branch's only.
    pub person: Option<&'a crate::people::Person>,
}

impl<'a> PostContext<'a> {
    /// Checks against `profile` (the branch's scope only).
    pub fn under(profile: &'a BranchProfile) -> PostContext<'a> {
        PostContext { profile: Some(profile), person: None }
    }
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
        // The person is the document's operator as the profile the document names knows
        // them (people travel in the versioned profile), so branch and HQ narrow the
        // scope by the same person's scope whenever either posts it.
        let person = ctx.person.or_else(|| profile.people.iter().find(|e| e.person.login == h.operator).map(|e| &e.person));
        crate::profile::scope_check(doc, profile, person)?;
        if let Some(line) = doc.lines.iter().find(|l| !profile.knows_product(&l.product)) {
            return Err(PostError::UnknownProduct { product: line.product });
        }
    }
    let p = if let Some(orig) = &h.ext.reverses {
        reverse::reverse(books, doc, orig)?
    } else {
        let mut b =
            Builder { books, doc, p: Posting::default(), scratch: BTreeMap::new(), consign: BTreeMap::new(), returned: BTreeMap::new() };
        rules(&mut b, ctx)?;
        within_books_limit(&b)?;
        b.p
    };
    in_date_order(books, doc, &p)?;
    let (debits, credits) = p.checked_totals().ok_or(PostError::Overflow { what: "the journal's debits or credits" })?;
    assert_eq!(debits, credits, "posting rule for {:?} does not balance", h.doc_type);
    if let (Some(profile), None) = (ctx.profile, &h.ext.reverses) {
        no_overdraft(books, &p, profile)?;
    }
    Ok(p)
}

/// The date-order policy for stock (issue 11 item 4): every position (warehouse ×
/// product) takes its movements in date order, so a document dated before the latest
/// movement already posted for a position it moves is refused with that date. A period's
/// quantities and costs then are exactly what the documents dated in it made them: no
/// month closes below zero, and no cost of sales is taken at a later month's price. A
/// late document is dated today instead (a correction of an earlier month is a new
/// document of this month). Pure in the journal, so HQ judges each entry as the branch did.
fn in_date_order(books: &Books, doc: &Document, p: &Posting) -> Result<(), PostError> {
    let date = doc.header.date;
    for m in &p.stock {
        if let Some(latest) = books.last_move(&m.key) {
            if date < latest {
                return Err(PostError::BackDated {
                    warehouse: m.key.0,
                    product: m.key.1,
                    date: date.to_string(),
                    latest: latest.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// Cash and bank never go below zero without a word (issue 11): a document that would
/// take an account below the overdraft HQ allows it in the profile (none unless set) is
/// refused. Checked where scope and credit limits are, against the profile version the
/// document names, so branch and HQ agree. A red-letter reversal is not checked: it
/// restores the books to what they were without its original.
fn no_overdraft(books: &Books, p: &Posting, profile: &BranchProfile) -> Result<(), PostError> {
    let mut change: BTreeMap<AccountCode, Decimal> = BTreeMap::new();
    for l in p.gl.iter().filter(|l| acc::is_money(&l.account)) {
        *change.entry(l.account).or_default() += l.debit - l.credit;
    }
    for (account, delta) in change.into_iter().filter(|(_, d)| *d < Decimal::ZERO) {
        let balance = books.gl.get(&account).copied().unwrap_or_default();
        let allowed = profile.overdraft(&account);
        if balance + delta < -allowed {
            return Err(PostError::Overdrawn { account, balance, taking: -delta, allowed });
        }
    }
    Ok(())
}

/// Largest balance the books keep (10^22 yuan or units): any stock position, account or
/// party balance a posting would leave beyond it is refused. Far above anything real (a
/// document line stops at 10^15), and low enough that reports summing a million such
/// balances (7.9 × 10^28 is `Decimal`'s limit) cannot overflow.
pub const BOOKS_FIGURE_MAX: Decimal = Decimal::from_parts(0xB240_0000, 0x19E0_C9BA, 0x0000_021E, false, 0);

/// The balances the posting would leave, each within [`BOOKS_FIGURE_MAX`].
fn within_books_limit(b: &Builder<'_>) -> Result<(), PostError> {
    let fits = |d: Decimal| d.abs() <= BOOKS_FIGURE_MAX;
    let over = |what| Err(PostError::Overflow { what });
    if !b.scratch.values().chain(b.consign.values()).all(|s| fits(s.pos.qty) && fits(s.pos.value)) {
        return over("a stock position (the books keep at most 10^22)");
    }
    // Accounts and parties: the balance before plus this posting's moves, per key.
    let mut gl: BTreeMap<AccountCode, Decimal> = BTreeMap::new();
    for l in &b.p.gl {
        let v = gl.entry(l.account).or_insert_with(|| b.books.gl.get(&l.account).copied().unwrap_or_default());
        *v = stock::sub(stock::add(*v, l.debit, "an account balance")?, l.credit, "an account balance")?;
    }
    if !gl.values().all(|v| fits(*v)) {
        return over("an account balance (the books keep at most 10^22)");
    }
    let mut parties: BTreeMap<(Side, PartyCode), Decimal> = BTreeMap::new();
    for (side, party, amount) in &b.p.parties {
        let v = parties.entry((*side, *party)).or_insert_with(|| b.books.parties.get(&(*side, *party)).copied().unwrap_or_default());
        *v = stock::add(*v, *amount, "a party's balance")?;
    }
    if !parties.values().all(|v| fits(*v)) {
        return over("a party's balance (the books keep at most 10^22)");
    }
    Ok(())
}

struct Builder<'a> {
    books: &'a Books,
    doc: &'a Document,
    p: Posting,
    /// Keyed by codes borrowed from the document, so a lookup clones nothing.
    scratch: BTreeMap<(&'a WarehouseCode, &'a ProductCode), Stock>,
    consign: BTreeMap<(Consignment, PartyCode, ProductCode), Stock>,
    /// A return's running view of what its original left per product, so lines
    /// repeating a product are limited together.
    returned: BTreeMap<ProductCode, Position>,
}

/// The rule of the document's type. `post` has validated the document, but a rule does not
/// lean on that for the fields it reads: a missing one is a `PostError`, not a panic.
fn rules(b: &mut Builder<'_>, ctx: PostContext<'_>) -> Result<(), PostError> {
    assert!(b.doc.header.ext.reverses.is_none(), "reversals are posted by `reverse`, not by a type's rule");
    assert!(b.p == Posting::default(), "a rule starts from an empty posting");
    // Checked for every type (as it always was), so a wrong account is refused alike
    // whether or not the type moves money.
    let account = b.money_account(&b.doc.header.ext.account)?;
    match b.doc.header.doc_type {
        DocType::PurchaseReceipt => purchases::receipt(b, account),
        DocType::PurchaseReturn => purchases::give_back(b, account),
        DocType::Sale | DocType::Retail => sales::sale(b, account, ctx),
        DocType::SalesReturn => sales::take_back(b, account),
        DocType::Receipt | DocType::Payment => money::settlement(b, account),
        DocType::Expense | DocType::OtherIncome | DocType::FundTransfer => money::cash_and_bank(b, account),
        DocType::ReceivableIncrease | DocType::ReceivableDecrease | DocType::PayableIncrease | DocType::PayableDecrease => {
            money::adjust_balance(b)
        }
        DocType::TransferSamePrice | DocType::TransferChangedPrice => inventory::transfer(b),
        DocType::StockLoss | DocType::StockGain => inventory::loss_or_gain(b),
        DocType::CostAdjustment => inventory::cost_adjustment(b),
        DocType::Assembly => inventory::assembly(b),
        DocType::ConsignOutShip | DocType::ConsignOutSettle | DocType::ConsignOutReturn => consignment::out_to_dealer(b),
        DocType::ConsignInReceive | DocType::ConsignInSettle | DocType::ConsignInReturn => consignment::in_from_supplier(b),
        DocType::LendOut | DocType::LendReturn | DocType::BorrowIn | DocType::BorrowReturn => loans::loan(b),
        DocType::Opening => ledger::opening(b),
        DocType::ManualEntry => ledger::manual_entry(b),
        DocType::PeriodClose => ledger::period_close(b),
        DocType::PeriodReopen => ledger::period_reopen(b),
        DocType::TransferShip => transfers::ship(b),
        DocType::TransferReceive => transfers::receive(b),
        DocType::TransferSettle => transfers::settle(b),
        // A request asks HQ for goods; the books change when goods move.
        DocType::TransferRequest => Ok(()),
    }
}

impl<'a> Builder<'a> {
    fn doc_type(&self) -> DocType {
        self.doc.header.doc_type
    }

    /// Sum of the line amounts (each within validation's limit, but checked all the same:
    /// a rule does not lean on validation).
    fn total(&self) -> Result<Decimal, PostError> {
        Ok(stock::sum(self.doc.lines.iter().map(|l| l.amount), "the document's total")?)
    }

    /// The counterparty, which the type requires (validation refuses a document without
    /// one; this refuses it too, should a caller ever skip validation).
    fn party(&self) -> Result<PartyCode, PostError> {
        let t = self.doc_type();
        self.doc.header.counterparty.ok_or(PostError::Invalid(DocError::MissingCounterparty {
            doc_type: t.name(),
            role: t.counterparty_role().unwrap_or("counterparty"),
        }))
    }

    /// The refusal validation gives a document of this type that lacks `what`.
    fn invalid(&self, what: &'static str) -> PostError {
        PostError::Invalid(DocError::Field { doc_type: self.doc_type().name(), what })
    }

    /// A field the type requires, or the same refusal validation gives without it.
    fn need<T>(&self, field: Option<T>, what: &'static str) -> Result<T, PostError> {
        field.ok_or_else(|| self.invalid(what))
    }

    /// The sum of a money document.
    fn money(&self) -> Result<Decimal, PostError> {
        self.need(self.doc.header.ext.money, "needs the amount (money)")
    }

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
        let Some((op, cost)) = s.take(method, l.qty)? else {
            return Err(PostError::NegativeStock { warehouse: *w, product: l.product, on_hand: s.pos.qty, needed: l.qty, method });
        };
        s.try_apply(&op)?;
        self.p.stock.push(StockMove { key: (*w, l.product), op });
        Ok(cost)
    }

    /// Goods from `from` to `to` with their cost layers (one stock move per layer at
    /// `to`); returns the cost moved. The primitive every move of own goods between
    /// warehouses uses, so layers travel the same way whatever moves them.
    fn move_layers(&mut self, from: &'a WarehouseCode, to: &'a WarehouseCode, l: &'a Line) -> Result<Decimal, PostError> {
        assert_ne!(from, to, "a move needs two warehouses (checked by the rule)");
        let method = self.method();
        let cost = self.take(from, l)?;
        let issue = self.p.stock.last().map(|m| m.op.clone()).expect("take pushed its move");
        for op in Stock::receive_moved(method, &issue) {
            self.stock_mut(to, &l.product).try_apply(&op)?;
            self.p.stock.push(StockMove { key: (*to, l.product), op });
        }
        Ok(cost)
    }

    /// Records that this document (a sale or a receipt) issued or received `qty` of
    /// `product` at `value`, for returns against it.
    fn returnable(&mut self, origin: Origin, product: ProductCode, qty: Decimal, value: Decimal) {
        let h = &self.doc.header;
        self.p.returnable.push(ReturnableMove { doc: h.number.clone(), product, origin, party: h.counterparty, date: h.date, qty, value });
    }

    /// Takes line `l` of a return off what its original (`ext.returns`, an `origin`)
    /// left to return; returns the cost of the line's goods there (their share of what is
    /// left, all of it for the last of them). Refused, with the reason, when the original
    /// is no such document of the product, was with another party, or left less.
    fn unreturned(&mut self, origin: Origin, l: &Line) -> Result<Decimal, PostError> {
        let orig = self.need(self.doc.header.ext.returns.as_ref(), "needs the original document it returns (returns)")?;
        let party = self.party()?;
        let books = self.books;
        let no_original = || PostError::ReturnNoOriginal { doc: orig.to_string(), product: l.product, what: origin.label() };
        let r = books.returnable(orig, &l.product).filter(|r| r.origin == origin).ok_or_else(no_original)?;
        if let Some(original) = r.party.filter(|p| *p != party) {
            return Err(PostError::ReturnWrongParty { doc: orig.to_string(), what: origin.label(), original, party });
        }
        let left = self.returned.entry(l.product).or_insert(r.left);
        let Some(value) = left.share(l.qty)? else {
            return Err(PostError::ReturnTooMuch { doc: orig.to_string(), product: l.product, left: left.qty, qty: l.qty });
        };
        // Never more than is left (checked just above), so neither can pass below zero.
        left.qty -= l.qty;
        left.value -= value;
        self.p.returnable.push(ReturnableMove {
            doc: orig.clone(),
            product: l.product,
            origin,
            party: r.party,
            date: r.date,
            qty: -l.qty,
            value: -value,
        });
        Ok(value)
    }

    /// Goods out of own stock at `value` (a purchase return at its receipt's cost) under
    /// moving average; by the layers under FIFO/LIFO, whose layers are the goods on hand.
    /// Never leaves a position that cannot exist: taking all takes all of the value, and
    /// no more value than is held is taken. Returns the cost taken.
    fn take_at(&mut self, w: &'a WarehouseCode, l: &'a Line, value: Decimal) -> Result<Decimal, PostError> {
        let method = self.method();
        if method != crate::document::CostMethod::MovingAverage {
            return self.take(w, l);
        }
        let s = self.stock_mut(w, &l.product);
        if l.qty > s.pos.qty {
            return Err(PostError::NegativeStock { warehouse: *w, product: l.product, on_hand: s.pos.qty, needed: l.qty, method });
        }
        let v = if l.qty == s.pos.qty { s.pos.value } else { value.min(s.pos.value) };
        let op = crate::books::LayerOp::Average { qty: -l.qty, value: -v };
        s.try_apply(&op)?;
        self.p.stock.push(StockMove { key: (*w, l.product), op });
        Ok(v)
    }

    /// Goods into own stock worth `value`.
    fn receive(&mut self, w: &'a WarehouseCode, product: &'a ProductCode, qty: Decimal, value: Decimal) -> Result<(), PostError> {
        let op = Stock::receive(self.method(), qty, value);
        self.stock_mut(w, product).try_apply(&op)?;
        self.p.stock.push(StockMove { key: (*w, *product), op });
        Ok(())
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
        let Some((op, value)) = s.take(crate::document::CostMethod::MovingAverage, l.qty)? else {
            return Err(PostError::NotEnoughConsigned { party: *p, product: l.product, held: s.pos.qty, needed: l.qty });
        };
        s.try_apply(&op)?;
        self.p.consignment.push((kind, *p, l.product, op));
        Ok(value)
    }

    fn consign_put(
        &mut self,
        kind: Consignment,
        p: &PartyCode,
        product: &ProductCode,
        qty: Decimal,
        value: Decimal,
    ) -> Result<(), PostError> {
        let books = self.books;
        let key = (kind, *p, *product);
        let op = Stock::receive(crate::document::CostMethod::MovingAverage, qty, value);
        self.consign.entry(key).or_insert_with(|| books.consignment.get(&key).cloned().unwrap_or_default()).try_apply(&op)?;
        self.p.consignment.push((kind, *p, *product, op));
        Ok(())
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
                Some(item) if item.side == side && before.checked_add(s.amount).is_some_and(|t| t <= item.open) => {}
                Some(item) => return Err(PostError::OverSettled { doc: s.doc.to_string(), open: item.open - *before, amount: s.amount }),
                None => return Err(PostError::NothingToSettle { doc: s.doc.to_string(), party: *p }),
            }
            *before += s.amount;
            self.p.open_items.push(OpenItemMove::Settle { key, amount: s.amount });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::books::Position;
    use crate::testkit::sample_doc_lines;

    /// Books holding `value` of P0000 in SH01 (set directly: no document could get there).
    fn books_holding(qty: Decimal, value: Decimal) -> Books {
        let mut books = Books::default();
        let key = (WarehouseCode::new("SH01").expect("wh"), ProductCode::new("P0000").expect("product"));
        books.stock.insert(key, Stock { pos: Position { qty, value }, layers: Default::default() });
        books.gl.insert(code(acc::INVENTORY), value);
        books.gl.insert(code(acc::EQUITY), -value);
        books
    }

    #[test]
    fn a_posting_past_the_books_limit_or_decimal_is_refused_not_a_panic() {
        let gain = sample_doc_lines("SH", "SH01", DocType::StockGain, 1, 1);
        for value in [BOOKS_FIGURE_MAX, Decimal::MAX - Decimal::ONE] {
            let books = books_holding(Decimal::ONE, value);
            let e = post(&books, &gain, PostContext::default()).expect_err("past the limit");
            assert!(matches!(e, PostError::Overflow { .. }), "{e}");
        }
        // Costing out of a position whose value × quantity exceeds `Decimal`.
        let books = books_holding(Decimal::from(1_000_000_000u64), Decimal::MAX / Decimal::TWO);
        let loss = sample_doc_lines("SH", "SH01", DocType::StockLoss, 1, 1);
        let e = post(&books, &loss, PostContext::default()).expect_err("value x qty overflows");
        assert!(matches!(e, PostError::Overflow { .. }), "{e}");
    }

    #[test]
    fn books_figure_max_is_ten_to_the_twenty_two() {
        assert_eq!(super::BOOKS_FIGURE_MAX.to_string(), format!("1{}", "0".repeat(22)));
    }
}
