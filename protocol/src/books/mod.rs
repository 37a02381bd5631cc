//! The books (账簿): one posting engine, run by the branch when it posts and by HQ when it
//! merges, so the same journal gives the same books on both sides.
//!
//! [`post`] is pure: (books, document) → [`Posting`], a complete description of the
//! document's effect — stock layer ops, a balanced general-ledger entry, sub-ledger moves
//! (receivables, payables, open items, consignment, loans), sales facts for reports.
//! [`Books::apply`] performs a posting and cannot fail. Debits equal credits is asserted
//! when a posting is made and again when it is applied.
//!
//! Rooms: `effects` (what a posting is, as plain data), `keys` (borrowed-key lookups),
//! `posting` (computing one), `stock`, `returns`, `accounts`, `quarantine`, `reports`,
//! `checkpoint`; this module holds `Books` and how a posting is applied and digested.
//!
//! Must not: do I/O, read the clock, or depend on anything but the documents posted.

pub mod accounts;
pub mod checkpoint;
mod digest_name;
mod effects;
mod keys;
pub mod ledger_export;
mod posting;
pub mod quarantine;
pub mod reports;
pub mod returns;
pub mod stock;

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub use effects::{
    Consignment, Flow, GlLine, Loan, OpenItem, OpenItemMove, Posting, SalesFact, SalesKey, SalesTotals, Side, StockMove, TransitMove,
};
use keys::{upsert, FlowKey, StockKeyView};
pub use posting::{post, shipment_layers, stock_count_drafts, PostContext};
pub use stock::{LayerOp, Position, Stock};

use crate::codes::{AccountCode, PartyCode, ProductCode, WarehouseCode};
use crate::date::BusinessDate;
use crate::document::{CostMethod, DocNumber, Document, Period};

pub type StockKey = (WarehouseCode, ProductCode);

/// A document of the reversal window, kept so it can be reversed exactly: what a
/// reversal must repeat (as a fingerprint) and its posting (encoded). A window holds tens
/// of thousands of documents; kept this way one takes about a seventh of the memory the
/// decoded document and posting took, and is decoded only when it is reversed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Recent {
    date: crate::date::BusinessDate,
    /// It is itself a reversal (which cannot be reversed).
    is_reversal: bool,
    /// `reversal_fingerprint` of the document.
    fingerprint: [u8; 32],
    /// The posting, postcard-encoded.
    posting: Vec<u8>,
}

/// What a reversal must repeat of its original — type, warehouse, counterparty, lines,
/// amount — hashed. Decimals are normalised first, so 5 and 5.00 are the same line.
fn reversal_fingerprint(doc: &Document) -> [u8; 32] {
    // (mantissa, scale) of the normalised value: exact, and no decimal-to-text on the
    // posting path.
    let d = |x: Decimal| {
        let n = x.normalize();
        (n.mantissa(), n.scale())
    };
    let h = &doc.header;
    let lines: Vec<_> = doc.lines.iter().map(|l| (l.product, l.role, d(l.qty), d(l.unit_price), d(l.amount))).collect();
    let what = (h.doc_type, h.warehouse, h.counterparty, h.ext.money.map(d), lines);
    let bytes = postcard::to_extend(&what, Vec::with_capacity(64 + 96 * doc.lines.len())).expect("encoding into a Vec cannot fail");
    *blake3::hash(&bytes).as_bytes()
}

/// All books of one branch (or of HQ's copy of that branch).
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Books {
    cost_method: Option<CostMethod>,
    /// Non-opening documents posted; once non-zero, no more openings.
    postings: u64,
    stock: BTreeMap<StockKey, Stock>,
    gl: BTreeMap<AccountCode, Decimal>,
    parties: BTreeMap<(Side, PartyCode), Decimal>,
    open_items: BTreeMap<(DocNumber, PartyCode), OpenItem>,
    consignment: BTreeMap<(Consignment, PartyCode, ProductCode), Stock>,
    loans: BTreeMap<(Loan, PartyCode, ProductCode), Decimal>,
    sales: BTreeMap<SalesKey, SalesTotals>,
    flows: BTreeMap<(Period, WarehouseCode, ProductCode), Flow>,
    closed_through: Option<Period>,
    reversed: BTreeSet<DocNumber>,
    /// The reversal window: documents that may still be reversed, with their postings.
    recent: BTreeMap<DocNumber, Recent>,
    /// The reversal window's anchor: the latest month posted, believed as the window
    /// trails it (see [`REVERSAL_WINDOW_MONTHS`] and `Books::advance_anchor`).
    latest: Option<Period>,
    /// What sales and purchase receipts of the return window left to return.
    returnable: BTreeMap<(DocNumber, ProductCode), returns::Returnable>,
    /// A month more than one ahead of the anchor, seen once and not yet believed.
    window_pending: Option<Period>,
    /// The closes before `closed_through`, oldest first: a reopen (反结账) of the latest
    /// closed month makes the one before it the latest again.
    earlier_closes: Vec<Period>,
    /// Date of the latest stock movement per warehouse × product: stock documents are
    /// posted in date order per position (see `posting::in_date_order`).
    last_move: BTreeMap<StockKey, BusinessDate>,
    /// Income and expense per month and account (debit-positive), for the income statement
    /// of a period; closing entries (the year-end carry) are not in it.
    pl: BTreeMap<(Period, AccountCode), Decimal>,
    /// The year-end carry (本年利润 → 利润分配) each December close posted, so that a
    /// reopen of that December takes it back exactly.
    carries: BTreeMap<Period, Vec<GlLine>>,
    /// What this branch shipped, received and settled of each HQ transfer order, per
    /// product (HQ adds both branches' up to see an order's state and what is in transit).
    transit: BTreeMap<(crate::transfer::OrderId, ProductCode), crate::transfer::Transit>,
}

/// How far back a red-letter reversal may reach: documents of the month of the latest
/// posted document and of the months before it, this many in all (and never into a
/// closed period). The bound keeps the window's memory finite for a branch that never
/// closes its months; it depends only on the journal, so branch and HQ agree on it.
/// Beyond it a mistake is corrected by a return or an adjustment, not a reversal.
pub const REVERSAL_WINDOW_MONTHS: u32 = 3;

impl Books {
    pub fn cost_method(&self) -> CostMethod {
        self.cost_method.unwrap_or_default()
    }
    pub fn closed_through(&self) -> Option<Period> {
        self.closed_through
    }
    pub fn stock(&self, key: &StockKey) -> Option<&Stock> {
        self.stock.get(key)
    }
    /// The stock of `product` in `w`, found without building a [`StockKey`].
    pub(crate) fn stock_at(&self, w: &WarehouseCode, product: &ProductCode) -> Option<&Stock> {
        let view: &dyn StockKeyView = &(w.as_str(), product.as_str());
        self.stock.get(view)
    }
    pub fn position(&self, key: &StockKey) -> Position {
        self.stock.get(key).map(|s| s.pos).unwrap_or_default()
    }
    pub fn positions(&self) -> impl Iterator<Item = (&StockKey, &Position)> {
        self.stock.iter().map(|(k, s)| (k, &s.pos))
    }
    pub fn gl(&self) -> &BTreeMap<AccountCode, Decimal> {
        &self.gl
    }
    pub fn parties(&self) -> &BTreeMap<(Side, PartyCode), Decimal> {
        &self.parties
    }
    pub fn open_items(&self) -> &BTreeMap<(DocNumber, PartyCode), OpenItem> {
        &self.open_items
    }
    pub fn consignment(&self) -> impl Iterator<Item = (&(Consignment, PartyCode, ProductCode), &Position)> {
        self.consignment.iter().map(|(k, s)| (k, &s.pos))
    }
    pub fn loans(&self) -> &BTreeMap<(Loan, PartyCode, ProductCode), Decimal> {
        &self.loans
    }
    pub fn sales(&self) -> &BTreeMap<SalesKey, SalesTotals> {
        &self.sales
    }
    pub fn flows(&self) -> &BTreeMap<(Period, WarehouseCode, ProductCode), Flow> {
        &self.flows
    }
    pub fn balance(&self, account: &str) -> Decimal {
        self.gl.iter().filter(|(a, _)| a.as_str() == account || a.chart() == account).map(|(_, v)| *v).sum()
    }
    /// What `doc` left to return of `product`, while within the return window.
    pub fn returnable(&self, doc: &DocNumber, product: &ProductCode) -> Option<&returns::Returnable> {
        self.returnable.get(&(doc.clone(), *product))
    }
    /// Income and expense per month and account (debit-positive), closing entries left out.
    pub fn pl(&self) -> &BTreeMap<(Period, AccountCode), Decimal> {
        &self.pl
    }
    /// The date of the latest stock movement of `key` posted.
    pub fn last_move(&self, key: &StockKey) -> Option<BusinessDate> {
        self.last_move.get(key).copied()
    }
    /// The year-end carry the close of `december` posted, if it posted one.
    pub(crate) fn carry(&self, december: Period) -> Option<&Vec<GlLine>> {
        self.carries.get(&december)
    }
    /// Transfer orders' steps as these books recorded them, per order and product.
    pub fn transit(&self) -> &BTreeMap<(crate::transfer::OrderId, ProductCode), crate::transfer::Transit> {
        &self.transit
    }

    /// Consolidation's elimination of what branches owe each other (HQ, on the absorbed
    /// books of every branch): 内部往来 and 内部调拨差价 cancel between shipper and
    /// receiver except for goods still on the road, and what is left of the two is exactly
    /// those goods at the shipped cost, shown as 在途物资. The margin leaves the income of
    /// every period too, so the company shows no intercompany profit.
    pub fn eliminate_inter_branch(&mut self) {
        let inter = self.gl.remove(&accounts::code(accounts::INTER_BRANCH)).unwrap_or_default();
        let margin = self.gl.remove(&accounts::code(accounts::TRANSFER_MARGIN)).unwrap_or_default();
        let transit = inter + margin;
        if !transit.is_zero() {
            *self.gl.entry(accounts::code(accounts::GOODS_IN_TRANSIT)).or_default() += transit;
        }
        let margin_code = accounts::code(accounts::TRANSFER_MARGIN);
        self.pl.retain(|(_, a), _| *a != margin_code);
    }

    pub fn is_reversed(&self, n: &DocNumber) -> bool {
        self.reversed.contains(n)
    }

    /// Adds another branch's books into these, for consolidated reports at HQ. Branches
    /// own disjoint warehouses and number their documents apart, so nothing collides;
    /// balances of a customer served by two branches simply add up.
    pub fn absorb(&mut self, other: &Books) {
        for (k, s) in &other.stock {
            let mine = self.stock.entry(*k).or_default();
            mine.pos.qty += s.pos.qty;
            mine.pos.value += s.pos.value;
            mine.layers.extend(s.layers.iter().copied());
        }
        for (a, v) in &other.gl {
            *self.gl.entry(*a).or_default() += *v;
        }
        for (k, v) in &other.parties {
            *self.parties.entry(*k).or_default() += *v;
        }
        self.open_items.extend(other.open_items.iter().map(|(k, v)| (k.clone(), v.clone())));
        for (k, s) in &other.consignment {
            let mine = self.consignment.entry(*k).or_default();
            mine.pos.qty += s.pos.qty;
            mine.pos.value += s.pos.value;
        }
        for (k, v) in &other.loans {
            *self.loans.entry(*k).or_default() += *v;
        }
        for (k, t) in &other.sales {
            let mine = self.sales.entry(k.clone()).or_default();
            mine.qty += t.qty;
            mine.revenue += t.revenue;
            mine.cost += t.cost;
        }
        for (k, f) in &other.flows {
            let mine = self.flows.entry(*k).or_default();
            mine.in_qty += f.in_qty;
            mine.in_value += f.in_value;
            mine.out_qty += f.out_qty;
            mine.out_value += f.out_value;
        }
        for (k, v) in &other.pl {
            *self.pl.entry(*k).or_default() += *v;
        }
        for (k, t) in &other.transit {
            self.transit.entry(*k).or_default().absorb(t);
        }
        self.postings += other.postings;
        self.returnable.extend(other.returnable.iter().map(|(k, v)| (k.clone(), v.clone())));
    }

    /// Performs a posting computed by [`post`] against these books. Clones both; callers
    /// that are done with them should use [`Books::apply_owned`].
    pub fn apply(&mut self, doc: &Document, p: &Posting) {
        self.apply_owned(doc.clone(), p.clone());
    }

    /// Performs a posting computed by [`post`] against these books, keeping `doc` and `p`
    /// (for reversal while the period is open) without copying them.
    pub fn apply_owned(&mut self, doc: Document, p: Posting) {
        let (debits, credits) = p.checked_totals().expect("`post` refused postings whose sums do not fit");
        assert_eq!(debits, credits, "posting of {} does not balance", doc.header.number);
        let period = Period::of(doc.header.date);
        let reversal = p.reverses.is_some();
        let date = doc.header.date;
        // Keys are cloned only when a map gains an entry: most moves hit positions,
        // accounts and sales rows that already exist.
        for m in &p.stock {
            match self.last_move.get_mut(&m.key) {
                Some(d) => *d = (*d).max(date),
                None => {
                    self.last_move.insert(m.key, date);
                }
            }
            let (dq, dv) = upsert(&mut self.stock, &m.key, |s: &mut Stock| {
                let before = s.pos;
                s.apply(&m.op);
                assert!(s.pos.qty >= Decimal::ZERO, "no cost method allows negative stock");
                (s.pos.qty - before.qty, s.pos.value - before.value)
            });
            // A red-letter reversal takes back what its original moved: undoing an issue
            // reduces the outflow (it is no receipt), undoing a receipt reduces the inflow.
            let inflow = dq > Decimal::ZERO || (dq.is_zero() && dv > Decimal::ZERO);
            let add = |f: &mut Flow| {
                if reversal {
                    if inflow {
                        f.out_qty -= dq;
                        f.out_value -= dv;
                    } else {
                        f.in_qty += dq;
                        f.in_value += dv;
                    }
                } else if inflow {
                    f.in_qty += dq;
                    f.in_value += dv;
                } else {
                    f.out_qty -= dq;
                    f.out_value -= dv;
                }
            };
            let view: &dyn FlowKey = &(period, m.key.0.as_str(), m.key.1.as_str());
            match self.flows.get_mut(view) {
                Some(f) => add(f),
                None => add(self.flows.entry((period, m.key.0, m.key.1)).or_default()),
            }
        }
        // Closing entries move profit between accounts; they are no income of a period.
        let in_pl = !matches!(doc.header.doc_type, crate::document::DocType::PeriodClose | crate::document::DocType::PeriodReopen);
        for l in &p.gl {
            upsert(&mut self.gl, &l.account, |v: &mut Decimal| *v += l.debit - l.credit);
            if in_pl && matches!(accounts::class(l.account.chart()), accounts::Class::Income | accounts::Class::Expense) {
                *self.pl.entry((period, l.account)).or_default() += l.debit - l.credit;
            }
        }
        for (side, party, amount) in &p.parties {
            *self.parties.entry((*side, *party)).or_default() += *amount;
        }
        for m in &p.open_items {
            match m {
                OpenItemMove::Create { key, item } => {
                    self.open_items.insert(key.clone(), item.clone());
                }
                OpenItemMove::Remove { key } => {
                    self.open_items.remove(key);
                }
                OpenItemMove::Settle { key, amount } => {
                    if let Some(item) = self.open_items.get_mut(key) {
                        item.open -= *amount;
                    }
                }
            }
        }
        for (kind, party, product, op) in &p.consignment {
            self.consignment.entry((*kind, *party, *product)).or_default().apply(op);
        }
        for (kind, party, product, qty) in &p.loans {
            *self.loans.entry((*kind, *party, *product)).or_default() += *qty;
        }
        for s in &p.sales {
            upsert(&mut self.sales, &s.key, |t: &mut SalesTotals| {
                t.qty += s.qty;
                t.revenue += s.revenue;
                t.cost += s.cost;
            });
        }
        for m in &p.returnable {
            let key = (m.doc.clone(), m.product);
            let r = self.returnable.entry(key.clone()).or_insert_with(|| returns::Returnable {
                origin: m.origin,
                party: m.party,
                date: m.date,
                left: Position::default(),
            });
            r.left.qty += m.qty;
            r.left.value += m.value;
            debug_assert!(r.left.qty >= Decimal::ZERO, "a return takes no more than was left (checked by post)");
            if r.left.qty.is_zero() {
                self.returnable.remove(&key);
            }
        }
        for m in &p.transit {
            self.transit.entry((m.order, m.product)).or_default().add(m.step, &m.moved, m.last);
        }
        if let Some(m) = p.cost_method {
            self.cost_method = Some(m);
        }
        if doc.header.doc_type != crate::document::DocType::Opening {
            self.postings += 1;
        }
        if let Some(orig) = &p.reverses {
            self.reversed.insert(orig.clone());
        }
        let anchor = self.advance_anchor(period);
        let oldest = anchor.months_before(REVERSAL_WINDOW_MONTHS - 1);
        if let Some(month) = p.reopen {
            debug_assert_eq!(self.closed_through, Some(month), "a reopen names the latest closed month");
            self.closed_through = self.earlier_closes.pop();
            self.carries.remove(&month);
        }
        if let Some(closed) = p.close {
            if let Some(before) = self.closed_through.replace(closed) {
                self.earlier_closes.push(before);
            }
            if closed.month == 12 {
                self.carries.insert(closed, p.gl.clone());
            }
            // Reversals reach only into open periods; forget what can no longer be reversed.
            self.recent.retain(|_, r| Period::of(r.date) > closed);
        } else if period >= oldest {
            let recent = Recent {
                date: doc.header.date,
                is_reversal: doc.header.ext.reverses.is_some(),
                fingerprint: reversal_fingerprint(&doc),
                posting: postcard::to_extend(&p, Vec::with_capacity(128 + 96 * p.stock.len())).expect("encoding into a Vec cannot fail"),
            };
            self.recent.insert(doc.header.number.clone(), recent);
        }
        debug_assert_eq!(self.gl.values().copied().sum::<Decimal>(), Decimal::ZERO, "trial balance");
    }

    /// Digest of everything the books hold, in a fixed order; equal books give equal
    /// digests on branch and HQ. Zero balances count as absent.
    pub fn digest(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        let mut put = |parts: &[&str]| {
            for p in parts {
                h.update(p.as_bytes());
                h.update(&[0]);
            }
            h.update(&[1]);
        };
        let d = |x: &Decimal| x.normalize().to_string();
        put(&["cost", digest_name::cost_method(self.cost_method), &digest_name::closed_through(self.closed_through)]);
        for ((w, p), s) in &self.stock {
            if !s.pos.is_zero() {
                put(&["s", w.as_str(), p.as_str(), &d(&s.pos.qty), &d(&s.pos.value), &s.layers.len().to_string()]);
                // FIFO/LIFO: the layers decide every later cost, so two books that agree
                // on totals but not on layers are not the same books.
                for l in &s.layers {
                    put(&["sl", &d(&l.qty), &d(&l.value)]);
                }
            }
        }
        for (a, v) in self.gl.iter().filter(|(_, v)| !v.is_zero()) {
            put(&["g", a.as_str(), &d(v)]);
        }
        for ((side, p), v) in self.parties.iter().filter(|(_, v)| !v.is_zero()) {
            put(&["p", digest_name::side(*side), p.as_str(), &d(v)]);
        }
        for ((n, p), i) in self.open_items.iter().filter(|(_, i)| !i.open.is_zero()) {
            put(&["o", &n.to_string(), p.as_str(), &d(&i.open)]);
        }
        for ((k, party, p), s) in self.consignment.iter().filter(|(_, s)| !s.pos.is_zero()) {
            put(&["c", digest_name::consignment(*k), party.as_str(), p.as_str(), &d(&s.pos.qty), &d(&s.pos.value)]);
        }
        for ((k, party, p), q) in self.loans.iter().filter(|(_, q)| !q.is_zero()) {
            put(&["l", digest_name::loan(*k), party.as_str(), p.as_str(), &d(q)]);
        }
        for n in &self.reversed {
            put(&["r", &n.to_string()]);
        }
        // What may still be returned decides which later returns post.
        for ((n, p), r) in &self.returnable {
            put(&["rt", &n.to_string(), p.as_str(), &d(&r.left.qty), &d(&r.left.value)]);
        }
        for ((order, p), t) in &self.transit {
            let (s, r, x) = (&t.shipped, &t.received, &t.settled);
            put(&["tr", &order.to_string(), p.as_str(), &d(&s.qty), &d(&s.cost), &d(&s.amount), &d(&r.qty), &d(&r.cost), &d(&r.amount)]);
            put(&["ts", &d(&x.qty), &d(&x.cost), &d(&x.amount), if t.last_received { "last" } else { "" }]);
        }
        *h.finalize().as_bytes()
    }

    /// Moves the reversal window's anchor for a document of month `p` and forgets what
    /// falls out of the window; returns the anchor. The anchor follows the latest month
    /// posted, but a jump of more than one month is believed only when a second document
    /// beyond the anchor arrives (then the anchor moves to the earlier of the two): one
    /// document dated far in the future (a mistyped year) does not evict three months of
    /// documents that may still need reversing, while a branch that was idle for a while
    /// moves on with its second document. Depends only on the journal's order, so branch
    /// and HQ agree.
    fn advance_anchor(&mut self, p: Period) -> Period {
        let Some(anchor) = self.latest else {
            self.latest = Some(p);
            return p;
        };
        if p <= anchor {
            return anchor;
        }
        let new = if p <= anchor.months_after(1) {
            p
        } else if let Some(q) = self.window_pending {
            q.min(p)
        } else {
            self.window_pending = Some(p);
            return anchor;
        };
        let other = self.window_pending.map_or(p, |q| q.max(p));
        self.window_pending = (other > new).then_some(other);
        self.latest = Some(new);
        let oldest = new.months_before(REVERSAL_WINDOW_MONTHS - 1);
        self.recent.retain(|_, r| Period::of(r.date) >= oldest);
        let oldest_returnable = new.months_before(returns::RETURN_WINDOW_MONTHS - 1);
        self.returnable.retain(|_, r| Period::of(r.date) >= oldest_returnable);
        new
    }

    fn recent(&self, n: &DocNumber) -> Option<&Recent> {
        self.recent.get(n)
    }
}
