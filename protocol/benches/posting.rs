//! How fast the books engine posts a realistic day's mix of documents, beside the
//! cheapest stock-only bookkeeping of the same lines.
//!
//! A benchmark, not a test: it prints figures and asserts only that the work it timed was
//! the work intended (every document posts). Run with
//! `cargo bench -p branchline-protocol --bench posting`.
//!
//! What is timed, per document, is what both the branch and HQ do with it once it is
//! numbered: `books::post` (validation, scope and catalog checks, costing, the balanced
//! entry, sub-ledgers) and `Books::apply`, under each cost method. The documents are made
//! first, untimed, by a seeded generator that keeps its own count of stock, open items and
//! consigned goods so that every one of them posts: after three openings (one per
//! warehouse, every product), per 100 documents about 30 sales (credit and cash), 25
//! purchase receipts, 15 retail sales, 8 receipts/payments settling open documents, 5
//! transfers, 5 returns, 4 losses/gains, 4 expenses, 2 consignment documents and 2
//! red-letter reversals, 1–10 lines each over 500 products (80% of lines on 100 of them)
//! and 3 warehouses, 400 a day, with a month-end close at the start of each month.
//!
//! The baseline, timed in the same run over the same documents, is a plain
//! `BTreeMap` of (warehouse, product) → (qty, value) updated line by line: goods in add,
//! goods out subtract, at the line amount, with no checks, no costing and no ledger. It is
//! the floor for "keeping stock at all"; the ratio says what the books cost on top.
//!
//! Knobs (environment): `POSTING_BENCH_DOCS` documents after the openings (default
//! 50,000), `POSTING_BENCH_SEED` (default 1). The machine's load average is printed before
//! and after: on a 2-core machine a compiler running beside the benchmark lowers every
//! figure.

use std::collections::{BTreeMap, VecDeque};
use std::hint::black_box;
use std::time::{Duration, Instant};

use protocol::books::{post, Books, PostContext};
use protocol::codes::{AccountCode, BranchCode, OperatorId, PartyCode, ProductCode, WarehouseCode};
use protocol::date::BusinessDate;
use protocol::document::{
    CostMethod, DocExt, DocNumber, DocType, Document, Draft, Line, OpeningBalance, OpeningKind, Payment, PaymentMethod, Period, Settlement,
};
use protocol::profile::BranchProfile;
use protocol::Decimal;

const BRANCH: &str = "SH";
const WAREHOUSES: [&str; 3] = ["SH01", "SH02", "SH03"];
/// Share of documents per warehouse, in percent (the main store does most).
const WAREHOUSE_SHARE_PERCENT: [u64; 3] = [60, 25, 15];
const PRODUCTS: usize = 500;
/// Most lines go to a few products, as in any shop.
const HOT_PRODUCTS: usize = 100;
const HOT_SHARE_PERCENT: u64 = 80;
const CUSTOMERS: usize = 200;
const SUPPLIERS: usize = 40;
const DEALERS: usize = 5;
const LINES_PER_DOC_MAX: u64 = 10;
const DOCS_PER_DAY: usize = 400;
/// Opening stock of every product in every warehouse.
const OPENING_QTY: i64 = 200;
const EXPENSE_CATEGORIES: [&str; 4] = ["RENT", "UTIL", "FREIGHT", "WAGES"];
const CASH: &str = "1001";
const BANK: &str = "1002.ICBC";
/// Unix day of 2026-01-01, the opening date.
const OPENING_UNIX_DAY: i64 = 20_454;

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v.parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// splitmix64: deterministic, dependency-free, good enough to pick documents.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

/// What kind of document a slot of the mix is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    SaleCredit,
    SaleCash,
    PurchaseCredit,
    PurchaseCash,
    Retail,
    Receipt,
    Payment,
    Transfer,
    TransferChangedPrice,
    SalesReturn,
    PurchaseReturn,
    Loss,
    Gain,
    Expense,
    ConsignShip,
    ConsignSettle,
    Reversal,
}

/// The mix per 100 documents.
const MIX: &[(Kind, u64)] = &[
    (Kind::SaleCredit, 20),
    (Kind::SaleCash, 10),
    (Kind::PurchaseCredit, 15),
    (Kind::PurchaseCash, 10),
    (Kind::Retail, 15),
    (Kind::Receipt, 5),
    (Kind::Payment, 3),
    (Kind::Transfer, 4),
    (Kind::TransferChangedPrice, 1),
    (Kind::SalesReturn, 3),
    (Kind::PurchaseReturn, 2),
    (Kind::Loss, 2),
    (Kind::Gain, 2),
    (Kind::Expense, 4),
    (Kind::ConsignShip, 1),
    (Kind::ConsignSettle, 1),
    (Kind::Reversal, 2),
];

fn wh(i: usize) -> WarehouseCode {
    WarehouseCode::new(WAREHOUSES[i]).expect("constant warehouse code is valid")
}
fn product(i: usize) -> ProductCode {
    ProductCode::new(format!("P{i:04}")).expect("generated product code is valid")
}
fn customer(i: usize) -> PartyCode {
    PartyCode::new(format!("C{i:04}")).expect("generated customer code is valid")
}
fn supplier(i: usize) -> PartyCode {
    PartyCode::new(format!("S{i:03}")).expect("generated supplier code is valid")
}
fn dealer(i: usize) -> PartyCode {
    PartyCode::new(format!("D{i:02}")).expect("generated dealer code is valid")
}
fn account(s: &str) -> AccountCode {
    AccountCode::parse(s).expect("constant account code is valid")
}
/// `cents` / 100, as money.
fn money(cents: i64) -> Decimal {
    Decimal::new(cents, 2)
}

/// Purchase cost of product `p` in cents: 1.00 to 50.99, fixed per product.
fn cost_cents(p: usize) -> i64 {
    100 + (p as i64 * 7_919) % 5_000
}

/// The profile the branch and HQ post with: every warehouse and product, no credit limits.
/// Built through serde so that fields HQ adds with defaults need no change here.
fn profile() -> BranchProfile {
    let products: serde_json::Map<String, serde_json::Value> =
        (0..PRODUCTS).map(|p| (product(p).to_string(), serde_json::json!({ "name": format!("product {p}"), "unit": "pcs" }))).collect();
    serde_json::from_value(serde_json::json!({
        "branch": BRANCH,
        "name": "上海",
        "warehouses": WAREHOUSES,
        "products": products,
        "version": 1,
    }))
    .expect("bench profile deserializes")
}

/// A document still open for settlement, as the generator counts it.
struct Open {
    number: DocNumber,
    open: Decimal,
}

/// How to take a document back out of the generator's counts: its stock moves (slot,
/// signed qty) and the open item it created (receivable side?, party index).
type Undo = (Vec<(usize, Decimal)>, Option<(bool, usize)>);

/// The last document, if it may be reversed, and how to undo its stock in the counts.
struct Reversible {
    doc: Document,
    stock: Vec<(usize, Decimal)>,
    /// The open item it created: (customer or supplier side, party index).
    open_item: Option<(bool, usize)>,
}

/// Makes the documents, keeping just enough state that every one of them posts under any
/// cost method: quantities on hand, consigned quantities, open items. Quantities do not
/// depend on the cost method, and neither do the amounts settled, so one list serves all.
struct Generator {
    rng: Rng,
    branch: BranchCode,
    operators: Vec<OperatorId>,
    day: i64,
    date: BusinessDate,
    serials: BTreeMap<DocType, u32>,
    /// On hand per warehouse × product (`w * PRODUCTS + p`).
    on_hand: Vec<Decimal>,
    /// At dealers per dealer × product.
    consigned: Vec<Decimal>,
    receivable: Vec<Vec<Open>>,
    payable: Vec<Vec<Open>>,
    last: Option<Reversible>,
    /// The month already closed, so a close is made once per month.
    closed: Option<Period>,
    docs: Vec<Document>,
    /// Recent sales and receipts with what each left to return, newest last: a return
    /// names its original (issue 11).
    sold: VecDeque<Returnable>,
    bought: VecDeque<Returnable>,
}

/// A sale or receipt a return may name: its warehouse, party and what it left per product.
struct Returnable {
    number: protocol::document::DocNumber,
    w: usize,
    party: usize,
    left: Vec<(usize, Decimal)>,
}

/// How many recent sales (and receipts) returns choose from.
const RETURNABLE_KEPT: usize = 64;

fn remember(list: &mut VecDeque<Returnable>, doc: &Document, w: usize, party: usize) {
    let mut left: Vec<(usize, Decimal)> = Vec::new();
    for l in &doc.lines {
        let p: usize = l.product.as_str()[1..].parse().expect("generated product code");
        match left.iter_mut().find(|(q, _)| *q == p) {
            Some((_, q)) => *q += l.qty,
            None => left.push((p, l.qty)),
        }
    }
    list.push_back(Returnable { number: doc.header.number.clone(), w, party, left });
    if list.len() > RETURNABLE_KEPT {
        list.pop_front();
    }
}

impl Generator {
    fn new(seed: u64) -> Generator {
        let date = BusinessDate::from_unix_days(OPENING_UNIX_DAY).expect("opening day is a date");
        assert_eq!((date.year(), date.month(), date.day()), (2026, 1, 1), "OPENING_UNIX_DAY is 2026-01-01");
        Generator {
            rng: Rng(seed),
            branch: BranchCode::new(BRANCH).expect("constant branch code is valid"),
            operators: ["sh-li", "sh-wang", "sh-zhao", "sh-chen"].iter().map(|o| OperatorId::new(*o).expect("operator")).collect(),
            day: 0,
            date,
            serials: BTreeMap::new(),
            on_hand: vec![Decimal::from(OPENING_QTY); WAREHOUSES.len() * PRODUCTS],
            consigned: vec![Decimal::ZERO; DEALERS * PRODUCTS],
            receivable: (0..CUSTOMERS).map(|_| Vec::new()).collect(),
            payable: (0..SUPPLIERS).map(|_| Vec::new()).collect(),
            last: None,
            closed: None,
            docs: Vec::new(),
            sold: VecDeque::new(),
            bought: VecDeque::new(),
        }
    }

    /// The openings (one per warehouse: every product, plus cash, bank, a few customers'
    /// and suppliers' balances on the first) under `method`. Dated 2026-01-01.
    fn openings(&self, method: CostMethod) -> Vec<Document> {
        (0..WAREHOUSES.len())
            .map(|w| {
                let lines = (0..PRODUCTS).map(|p| Line::priced(product(p), Decimal::from(OPENING_QTY), money(cost_cents(p)))).collect();
                let mut d = self.draft(DocType::Opening, w, None, lines);
                d.date = BusinessDate::from_unix_days(OPENING_UNIX_DAY).expect("opening day is a date");
                d.ext.cost_method = Some(method);
                if w == 0 {
                    d.ext.balances = vec![
                        OpeningBalance { kind: OpeningKind::Account(account(CASH)), amount: money(5_000_000) },
                        OpeningBalance { kind: OpeningKind::Account(account(BANK)), amount: money(200_000_000) },
                        OpeningBalance { kind: OpeningKind::Receivable(customer(0)), amount: money(1_234_500) },
                        OpeningBalance { kind: OpeningKind::Payable(supplier(0)), amount: money(2_345_600) },
                    ];
                }
                d.number(self.branch, u32::try_from(w + 1).expect("three openings")).expect("opening is valid")
            })
            .collect()
    }

    fn draft(&self, t: DocType, w: usize, who: Option<PartyCode>, lines: Vec<Line>) -> Draft {
        Draft {
            doc_type: t,
            date: self.date,
            operator: self.operators[(self.day as usize + w) % self.operators.len()],
            warehouse: wh(w),
            counterparty: who,
            memo: String::new(),
            payment: None,
            lines,
            ext: DocExt::default(),
        }
    }

    fn pick_warehouse(&mut self) -> usize {
        let mut r = self.rng.below(100);
        for (i, share) in WAREHOUSE_SHARE_PERCENT.iter().enumerate() {
            if r < *share {
                return i;
            }
            r -= share;
        }
        0
    }

    fn pick_product(&mut self) -> usize {
        if self.rng.percent(HOT_SHARE_PERCENT) {
            self.rng.below(HOT_PRODUCTS as u64) as usize
        } else {
            HOT_PRODUCTS + self.rng.below((PRODUCTS - HOT_PRODUCTS) as u64) as usize
        }
    }

    fn line_count(&mut self) -> usize {
        self.rng.range(1, LINES_PER_DOC_MAX) as usize
    }

    /// Lines of goods in: `qty` in `lo..=hi`, at about the product's cost (±10%).
    fn lines_in(&mut self, w: usize, lo: u64, hi: u64, stock: &mut Vec<(usize, Decimal)>) -> Vec<Line> {
        (0..self.line_count())
            .map(|_| {
                let p = self.pick_product();
                let qty = Decimal::from(self.rng.range(lo, hi));
                let price = money(cost_cents(p) * (90 + self.rng.range(0, 20) as i64) / 100);
                self.on_hand[w * PRODUCTS + p] += qty;
                stock.push((w * PRODUCTS + p, qty));
                Line::priced(product(p), qty, price)
            })
            .collect()
    }

    /// Lines of goods out of `w` that the stock allows, priced at `markup_percent` of cost;
    /// `weighed` makes some quantities kilograms with three decimals (retail).
    fn lines_out(&mut self, w: usize, hi: u64, markup_percent: i64, weighed: bool, stock: &mut Vec<(usize, Decimal)>) -> Vec<Line> {
        let mut lines = Vec::new();
        for _ in 0..self.line_count() {
            let p = self.pick_product();
            let slot = w * PRODUCTS + p;
            let mut qty = if weighed && self.rng.percent(20) {
                Decimal::new(self.rng.range(100, 2_500) as i64, 3)
            } else {
                Decimal::from(self.rng.range(1, hi))
            };
            qty = qty.min(self.on_hand[slot]);
            if qty <= Decimal::ZERO {
                continue;
            }
            self.on_hand[slot] -= qty;
            stock.push((slot, -qty));
            lines.push(Line::priced(product(p), qty, money(cost_cents(p) * markup_percent / 100)));
        }
        lines
    }

    fn next_date(&mut self, k: usize) {
        let day = 1 + (k / DOCS_PER_DAY) as i64;
        if day != self.day {
            self.day = day;
            self.date = BusinessDate::from_unix_days(OPENING_UNIX_DAY + day).expect("bench dates are valid");
            self.serials.clear();
        }
    }

    fn number(&mut self, d: Draft) -> Document {
        let serial = self.serials.entry(d.doc_type).or_insert(0);
        *serial += 1;
        d.number(self.branch, *serial).expect("generated drafts are valid")
    }

    fn push(&mut self, doc: Document, reversible: Option<Undo>) {
        self.last = reversible.map(|(stock, open_item)| Reversible { doc: doc.clone(), stock, open_item });
        self.docs.push(doc);
    }

    /// Document `k` of the run (a month-end close comes first on a month's first day).
    fn make(&mut self, k: usize) {
        self.next_date(k);
        let this_month = Period::of(self.date);
        let last_month = Period { year: this_month.year - u16::from(this_month.month == 1), month: (this_month.month + 10) % 12 + 1 };
        if self.date.month() != 1 && self.closed < Some(last_month) {
            let mut d = self.draft(DocType::PeriodClose, 0, None, vec![]);
            d.ext.period = Some(last_month);
            self.closed = Some(last_month);
            let doc = self.number(d);
            self.push(doc, None);
        }
        let mut r = self.rng.below(100);
        let mut kind = Kind::SaleCredit;
        for (k, share) in MIX {
            if r < *share {
                kind = *k;
                break;
            }
            r -= share;
        }
        self.make_kind(kind);
    }

    fn make_kind(&mut self, kind: Kind) {
        let w = self.pick_warehouse();
        let mut stock = Vec::new();
        match kind {
            Kind::SaleCredit | Kind::SaleCash | Kind::Retail => {
                let retail = kind == Kind::Retail;
                let lines = self.lines_out(w, if retail { 5 } else { 24 }, 130, retail, &mut stock);
                if lines.is_empty() {
                    return self.make_kind(Kind::PurchaseCredit);
                }
                let total: Decimal = lines.iter().map(|l| l.amount).sum();
                let c = self.rng.below(CUSTOMERS as u64) as usize;
                let who = (!retail).then(|| customer(c));
                let mut d = self.draft(if retail { DocType::Retail } else { DocType::Sale }, w, who, lines);
                if retail {
                    d.payment = Some(match self.rng.below(10) {
                        0..=4 => {
                            // Cash: the customer hands over the next round 10 or 50 yuan.
                            let step = if self.rng.percent(50) { Decimal::from(10) } else { Decimal::from(50) };
                            let tendered = ((total / step).floor() + Decimal::ONE) * step;
                            Payment { method: PaymentMethod::Cash, tendered, change: tendered - total }
                        }
                        5..=8 => Payment { method: PaymentMethod::Mobile, tendered: total, change: Decimal::ZERO },
                        _ => Payment { method: PaymentMethod::Card, tendered: total, change: Decimal::ZERO },
                    });
                } else if kind == Kind::SaleCash {
                    d.ext.account = Some(account(if self.rng.percent(50) { CASH } else { BANK }));
                }
                let doc = self.number(d);
                remember(&mut self.sold, &doc, w, c);
                let open_item = (kind == Kind::SaleCredit).then(|| {
                    self.receivable[c].push(Open { number: doc.header.number.clone(), open: total });
                    (true, c)
                });
                self.push(doc, Some((stock, open_item)));
            }
            Kind::PurchaseCredit | Kind::PurchaseCash => {
                let lines = self.lines_in(w, 5, 40, &mut stock);
                let total: Decimal = lines.iter().map(|l| l.amount).sum();
                let s = self.rng.below(SUPPLIERS as u64) as usize;
                let mut d = self.draft(DocType::PurchaseReceipt, w, Some(supplier(s)), lines);
                if kind == Kind::PurchaseCash {
                    d.ext.account = Some(account(BANK));
                }
                let doc = self.number(d);
                remember(&mut self.bought, &doc, w, s);
                let open_item = (kind == Kind::PurchaseCredit).then(|| {
                    self.payable[s].push(Open { number: doc.header.number.clone(), open: total });
                    (false, s)
                });
                self.push(doc, Some((stock, open_item)));
            }
            Kind::Receipt | Kind::Payment => {
                let receipt = kind == Kind::Receipt;
                let parties = if receipt { CUSTOMERS } else { SUPPLIERS };
                // Someone with open documents, if a few tries find one; else an advance.
                let mut who = self.rng.below(parties as u64) as usize;
                for _ in 0..8 {
                    let open = if receipt { &self.receivable[who] } else { &self.payable[who] };
                    if !open.is_empty() {
                        break;
                    }
                    who = self.rng.below(parties as u64) as usize;
                }
                let settle_count = self.rng.range(1, 3) as usize;
                let partial = self.rng.percent(30);
                let advance = if self.rng.percent(10) { money(10_000) } else { Decimal::ZERO };
                let open = if receipt { &mut self.receivable[who] } else { &mut self.payable[who] };
                let mut settles = Vec::new();
                for i in 0..settle_count.min(open.len()) {
                    let item = &mut open[i];
                    // The last one settled may be half paid.
                    let amount = if partial && i + 1 == settle_count {
                        protocol::document::round_money(item.open / Decimal::TWO)
                    } else {
                        item.open
                    };
                    if amount > Decimal::ZERO {
                        item.open -= amount;
                        settles.push(Settlement { doc: item.number.clone(), amount });
                    }
                }
                open.retain(|o| !o.open.is_zero());
                let sum: Decimal = settles.iter().map(|s| s.amount).sum::<Decimal>() + advance;
                let amount = if sum.is_zero() { money(50_000) } else { sum };
                let party = if receipt { customer(who) } else { supplier(who) };
                let mut d = self.draft(if receipt { DocType::Receipt } else { DocType::Payment }, w, Some(party), vec![]);
                d.ext.money = Some(amount);
                d.ext.account = Some(account(if self.rng.percent(30) { CASH } else { BANK }));
                d.ext.settles = settles;
                let doc = self.number(d);
                self.push(doc, None);
            }
            Kind::Transfer | Kind::TransferChangedPrice => {
                let to = (w + 1 + self.rng.below(WAREHOUSES.len() as u64 - 1) as usize) % WAREHOUSES.len();
                let changed = kind == Kind::TransferChangedPrice;
                let mut lines = self.lines_out(w, 30, if changed { 105 } else { 0 }, false, &mut stock);
                if lines.is_empty() {
                    return self.make_kind(Kind::PurchaseCredit);
                }
                for l in &mut lines {
                    let p: usize = l.product.as_str()[1..].parse().expect("generated product code");
                    self.on_hand[to * PRODUCTS + p] += l.qty;
                }
                let t = if changed { DocType::TransferChangedPrice } else { DocType::TransferSamePrice };
                let mut d = self.draft(t, w, None, lines);
                d.ext.to_warehouse = Some(wh(to));
                let doc = self.number(d);
                self.push(doc, None);
            }
            Kind::SalesReturn | Kind::PurchaseReturn => {
                // Goods of a recent sale come back to its warehouse, or goods of a recent
                // receipt go back from it, no more than the original left (and, going
                // back, than is on hand).
                let sale = kind == Kind::SalesReturn;
                let list = if sale { &self.sold } else { &self.bought };
                if list.is_empty() {
                    return self.make_kind(if sale { Kind::SaleCredit } else { Kind::PurchaseCredit });
                }
                let i = self.rng.below(list.len() as u64) as usize;
                let n = self.line_count();
                let hi = if sale { 3 } else { 5 };
                let qtys: Vec<u64> = (0..n).map(|_| self.rng.range(1, hi)).collect();
                let cash = self.rng.percent(50);
                let list = if sale { &mut self.sold } else { &mut self.bought };
                let orig = &mut list[i];
                let (w, party, number) = (orig.w, orig.party, orig.number.clone());
                let mut lines = Vec::new();
                for ((p, left), want) in orig.left.iter_mut().zip(qtys) {
                    let slot = w * PRODUCTS + *p;
                    let mut qty = Decimal::from(want).min(*left);
                    if !sale {
                        qty = qty.min(self.on_hand[slot]);
                    }
                    if qty <= Decimal::ZERO {
                        continue;
                    }
                    *left -= qty;
                    let dq = if sale { qty } else { -qty };
                    self.on_hand[slot] += dq;
                    stock.push((slot, dq));
                    lines.push(Line::priced(product(*p), qty, money(cost_cents(*p) * if sale { 130 } else { 100 } / 100)));
                }
                if lines.is_empty() {
                    return self.make_kind(if sale { Kind::SaleCredit } else { Kind::PurchaseCredit });
                }
                let who = if sale { customer(party) } else { supplier(party) };
                let mut d = self.draft(if sale { DocType::SalesReturn } else { DocType::PurchaseReturn }, w, Some(who), lines);
                d.ext.returns = Some(number);
                if sale && cash {
                    d.ext.account = Some(account(CASH));
                }
                let doc = self.number(d);
                self.push(doc, None);
            }
            Kind::Loss => {
                let lines = self.lines_out(w, 5, 0, false, &mut stock);
                if lines.is_empty() {
                    return self.make_kind(Kind::PurchaseCredit);
                }
                let d = self.draft(DocType::StockLoss, w, None, lines);
                let doc = self.number(d);
                self.push(doc, None);
            }
            Kind::Gain => {
                let lines = self.lines_in(w, 1, 3, &mut stock);
                let d = self.draft(DocType::StockGain, w, None, lines);
                let doc = self.number(d);
                self.push(doc, None);
            }
            Kind::Expense => {
                let mut d = self.draft(DocType::Expense, w, None, vec![]);
                d.ext.money = Some(money(self.rng.range(1_000, 500_000) as i64));
                d.ext.account = Some(account(if self.rng.percent(50) { CASH } else { BANK }));
                d.ext.category = Some(EXPENSE_CATEGORIES[self.rng.below(EXPENSE_CATEGORIES.len() as u64) as usize].into());
                let doc = self.number(d);
                self.push(doc, Some((vec![], None)));
            }
            Kind::ConsignShip => {
                let dl = self.rng.below(DEALERS as u64) as usize;
                let lines = self.lines_out(w, 20, 120, false, &mut stock);
                if lines.is_empty() {
                    return self.make_kind(Kind::PurchaseCredit);
                }
                for l in &lines {
                    let p: usize = l.product.as_str()[1..].parse().expect("generated product code");
                    self.consigned[dl * PRODUCTS + p] += l.qty;
                }
                let d = self.draft(DocType::ConsignOutShip, w, Some(dealer(dl)), lines);
                let doc = self.number(d);
                self.push(doc, None);
            }
            Kind::ConsignSettle => {
                // The dealer reports what it sold of what it holds.
                let dl = self.rng.below(DEALERS as u64) as usize;
                let held: Vec<usize> = (0..PRODUCTS).filter(|p| self.consigned[dl * PRODUCTS + p] > Decimal::ZERO).collect();
                if held.is_empty() {
                    return self.make_kind(Kind::ConsignShip);
                }
                let n = self.line_count().min(held.len());
                let first = self.rng.below(held.len() as u64) as usize;
                let lines = (0..n)
                    .map(|i| {
                        let p = held[(first + i) % held.len()];
                        let slot = dl * PRODUCTS + p;
                        let qty = Decimal::from(self.rng.range(1, 10)).min(self.consigned[slot]);
                        self.consigned[slot] -= qty;
                        Line::priced(product(p), qty, money(cost_cents(p) * 125 / 100))
                    })
                    .collect();
                let d = self.draft(DocType::ConsignOutSettle, w, Some(dealer(dl)), lines);
                let doc = self.number(d);
                // Its open item is the dealer's; dealers are not settled in this mix.
                self.push(doc, None);
            }
            Kind::Reversal => {
                let Some(last) = self.last.take() else {
                    return self.make_kind(Kind::Expense);
                };
                for (slot, dq) in &last.stock {
                    self.on_hand[*slot] -= *dq;
                }
                // A reversed sale or receipt is the newest remembered one; nothing can be
                // returned against it any more.
                for list in [&mut self.sold, &mut self.bought] {
                    if list.back().is_some_and(|r| r.number == last.doc.header.number) {
                        list.pop_back();
                    }
                }
                if let Some((is_receivable, i)) = last.open_item {
                    let open = if is_receivable { &mut self.receivable[i] } else { &mut self.payable[i] };
                    let gone = open.pop().expect("the reversed document's open item is the newest");
                    assert_eq!(gone.number, last.doc.header.number);
                }
                let h = &last.doc.header;
                let d = Draft {
                    doc_type: h.doc_type,
                    date: self.date,
                    operator: h.operator,
                    warehouse: h.warehouse,
                    counterparty: h.counterparty,
                    memo: format!("红字冲 {}", h.number),
                    payment: h.payment,
                    lines: last.doc.lines.clone(),
                    ext: DocExt { reverses: Some(h.number.clone()), ..h.ext.clone() },
                };
                let doc = self.number(d);
                self.push(doc, None);
            }
        }
    }
}

struct EngineRun {
    wall: Duration,
    /// Per document, in order: (post, apply) in nanoseconds.
    each_ns: Vec<(u32, u32)>,
    books: Books,
}

impl EngineRun {
    fn post(&self) -> Duration {
        Duration::from_nanos(self.each_ns.iter().map(|(p, _)| u64::from(*p)).sum())
    }
    fn apply(&self) -> Duration {
        Duration::from_nanos(self.each_ns.iter().map(|(_, a)| u64::from(*a)).sum())
    }
}

fn nanos(d: Duration) -> u32 {
    u32::try_from(d.as_nanos()).unwrap_or(u32::MAX)
}

/// Posts the openings (untimed), then every document, timing post and apply of each.
fn run_engine(openings: &[Document], docs: &[Document], profile: &BranchProfile) -> EngineRun {
    let ctx = PostContext::under(profile);
    let mut books = Books::default();
    for doc in openings {
        let p = post(&books, doc, ctx).unwrap_or_else(|e| panic!("opening {} refused: {e}", doc.header.number));
        books.apply(doc, &p);
    }
    let mut each_ns = Vec::with_capacity(docs.len());
    let start = Instant::now();
    for doc in docs {
        let t0 = Instant::now();
        let p = post(&books, doc, ctx).unwrap_or_else(|e| panic!("{} refused: {e}", doc.header.number));
        let t1 = Instant::now();
        books.apply(doc, &p);
        let t2 = Instant::now();
        drop(p);
        each_ns.push((nanos(t1 - t0), nanos(t2 - t1)));
    }
    EngineRun { wall: start.elapsed(), each_ns, books }
}

/// A diagnostic pass (not part of the figures above it): posts and applies every document
/// again and times, for each, cloning the document and its posting and dropping the
/// clones: what `Books::apply` (by reference) costs on top of `Books::apply_owned`.
fn time_recent_clone(openings: &[Document], docs: &[Document], profile: &BranchProfile) -> Vec<u32> {
    let ctx = PostContext::under(profile);
    let mut books = Books::default();
    let mut out = Vec::with_capacity(docs.len());
    for doc in openings.iter().chain(docs) {
        let p = post(&books, doc, ctx).unwrap_or_else(|e| panic!("{} refused: {e}", doc.header.number));
        books.apply(doc, &p);
        let t0 = Instant::now();
        drop(black_box((doc.clone(), p.clone())));
        out.push(nanos(t0.elapsed()));
    }
    out.drain(..openings.len());
    out
}

/// Which way a document moves own stock: (sign at `warehouse`, sign at `to_warehouse`).
fn direction(doc: &Document) -> (i8, i8) {
    let (from, to) = match doc.header.doc_type {
        DocType::PurchaseReceipt | DocType::SalesReturn | DocType::StockGain | DocType::Opening => (1, 0),
        DocType::Sale | DocType::Retail | DocType::PurchaseReturn | DocType::StockLoss | DocType::ConsignOutShip => (-1, 0),
        DocType::TransferSamePrice | DocType::TransferChangedPrice => (-1, 1),
        _ => (0, 0),
    };
    if doc.header.ext.reverses.is_some() {
        (-from, -to)
    } else {
        (from, to)
    }
}

/// The baseline: (warehouse, product) → (qty, value), updated line by line at the line
/// amount. Nested by warehouse so a lookup borrows the codes instead of cloning them:
/// the cheapest stock-only bookkeeping we could write.
type StockOnly = BTreeMap<WarehouseCode, BTreeMap<ProductCode, (Decimal, Decimal)>>;

fn bump(m: &mut StockOnly, w: &WarehouseCode, l: &Line, sign: i8) {
    let (q, v) = if sign > 0 { (l.qty, l.amount) } else { (-l.qty, -l.amount) };
    let per_w = match m.get_mut(w) {
        Some(x) => x,
        None => m.entry(*w).or_default(),
    };
    match per_w.get_mut(&l.product) {
        Some(pos) => {
            pos.0 += q;
            pos.1 += v;
        }
        None => {
            per_w.insert(l.product, (q, v));
        }
    }
}

fn run_baseline(openings: &[Document], docs: &[Document]) -> (Duration, Decimal) {
    let mut m = StockOnly::new();
    for doc in openings {
        for l in &doc.lines {
            bump(&mut m, &doc.header.warehouse, l, 1);
        }
    }
    let start = Instant::now();
    for doc in docs {
        let (from, to) = direction(black_box(doc));
        if from != 0 {
            for l in &doc.lines {
                bump(&mut m, &doc.header.warehouse, l, from);
            }
        }
        if let (Some(tw), true) = (&doc.header.ext.to_warehouse, to != 0) {
            for l in &doc.lines {
                bump(&mut m, tw, l, to);
            }
        }
    }
    let wall = start.elapsed();
    let qty: Decimal = m.values().flat_map(|ps| ps.values()).map(|(q, _)| *q).sum();
    (wall, black_box(qty))
}

fn per_sec(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn us(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1e6 / n.max(1) as f64
}

fn median<T: Ord + Copy>(v: &mut [T]) -> T {
    v.sort_unstable();
    v[v.len() / 2]
}

fn method_name(m: CostMethod) -> &'static str {
    match m {
        CostMethod::MovingAverage => "MA",
        CostMethod::Fifo => "FIFO",
        CostMethod::Lifo => "LIFO",
    }
}

/// Engine runs per cost method; the median is reported.
const ROUNDS: usize = 3;

fn main() {
    let count = env_usize("POSTING_BENCH_DOCS", 50_000).max(1);
    let seed = env_usize("POSTING_BENCH_SEED", 1) as u64;
    println!("posting bench: {count} documents after 3 openings, {PRODUCTS} products, {} warehouses, seed {seed}", WAREHOUSES.len());
    println!("machine: {}", edge::machine::describe());

    let t = Instant::now();
    let mut g = Generator::new(seed);
    for k in 0..count {
        g.make(k);
    }
    let methods = [CostMethod::MovingAverage, CostMethod::Fifo, CostMethod::Lifo];
    let openings: Vec<Vec<Document>> = methods.iter().map(|m| g.openings(*m)).collect();
    let docs = std::mem::take(&mut g.docs);
    let lines: usize = docs.iter().map(|d| d.lines.len()).sum();
    let goods_docs = docs.iter().filter(|d| !d.lines.is_empty()).count();
    let reversals = docs.iter().filter(|d| d.header.ext.reverses.is_some()).count();
    let settlements: usize = docs.iter().map(|d| d.header.ext.settles.len()).sum();
    println!(
        "generated {} documents ({goods_docs} with goods lines, {:.1} lines each), {lines} lines, {reversals} reversals, {settlements} settlements, dated {} to {}, in {:.0} ms (not timed)",
        docs.len(),
        lines as f64 / goods_docs.max(1) as f64,
        docs.first().map(|d| d.header.date.to_string()).unwrap_or_default(),
        docs.last().map(|d| d.header.date.to_string()).unwrap_or_default(),
        t.elapsed().as_secs_f64() * 1e3
    );
    let profile = profile();

    // Rounds of: baseline, MA, baseline, FIFO, baseline, LIFO; then a last baseline. The
    // baseline runs beside every engine run, so both see the machine in the same state.
    let mut base: Vec<Duration> = Vec::new();
    let mut runs: Vec<Vec<EngineRun>> = methods.iter().map(|_| Vec::new()).collect();
    for _ in 0..ROUNDS {
        for (i, method) in methods.iter().enumerate() {
            let (d, checksum) = run_baseline(&openings[0], &docs);
            base.push(d);
            let r = run_engine(&openings[i], &docs, &profile);
            let on_hand: Decimal = r.books.positions().map(|(_, p)| p.qty).sum();
            assert_eq!(on_hand, checksum, "{method:?}: the books and the baseline disagree on the quantity on hand");
            runs[i].push(r);
        }
    }
    base.push(run_baseline(&openings[0], &docs).0);
    let base_median = median(&mut base.clone());
    let base_rate = per_sec(lines, base_median);

    println!();
    println!(
        "baseline  stock-only BTreeMap update: {:>10.0} lines/s  {:>6.2} ms per pass (median of {}; fastest {:.2}, slowest {:.2})",
        base_rate,
        base_median.as_secs_f64() * 1e3,
        base.len(),
        base.iter().min().expect("ran").as_secs_f64() * 1e3,
        base.iter().max().expect("ran").as_secs_f64() * 1e3,
    );
    for (i, method) in methods.iter().enumerate() {
        let mut order: Vec<usize> = (0..runs[i].len()).collect();
        order.sort_by_key(|k| runs[i][*k].wall);
        let r = &runs[i][order[order.len() / 2]];
        let rate = per_sec(lines, r.wall);
        println!(
            "{:<9} post + apply:              {:>10.0} lines/s  {:>6.0} ms per pass (median of {ROUNDS}; fastest {:.0}, slowest {:.0})  {:>6.0} documents/s  {:>5.1} µs/document (post {:.1} + apply {:.1})",
            method_name(*method),
            rate,
            r.wall.as_secs_f64() * 1e3,
            runs[i][order[0]].wall.as_secs_f64() * 1e3,
            runs[i][order[order.len() - 1]].wall.as_secs_f64() * 1e3,
            per_sec(docs.len(), r.wall),
            us(r.wall, docs.len()),
            us(r.post(), docs.len()),
            us(r.apply(), docs.len()),
        );
        println!("          ratio to baseline (lines/s): {:.4}, i.e. the baseline is {:.0}x faster", rate / base_rate, base_rate / rate);
    }

    println!();
    println!("per document type: median µs per document, post + apply, over all {ROUNDS} runs:");
    print!("{:<6} {:>6} {:>7}", "type", "docs", "lines");
    for m in &methods {
        print!(" {:>15}", method_name(*m));
    }
    println!();
    let mut types: Vec<DocType> = docs.iter().map(|d| d.header.doc_type).collect();
    types.sort();
    types.dedup();
    for t in types {
        let idx: Vec<usize> = (0..docs.len()).filter(|k| docs[*k].header.doc_type == t).collect();
        let n_lines: usize = idx.iter().map(|k| docs[*k].lines.len()).sum();
        print!("{:<6} {:>6} {:>7}", t.code(), idx.len(), n_lines);
        for per_method in &runs {
            let mut p: Vec<u32> = per_method.iter().flat_map(|r| idx.iter().map(|k| r.each_ns[*k].0)).collect();
            let mut a: Vec<u32> = per_method.iter().flat_map(|r| idx.iter().map(|k| r.each_ns[*k].1)).collect();
            print!(" {:>6.1} + {:>6.1}", f64::from(median(&mut p)) / 1e3, f64::from(median(&mut a)) / 1e3);
        }
        println!();
    }
    let mut clone_ns = time_recent_clone(&openings[0], &docs, &profile);
    let clone_total = Duration::from_nanos(clone_ns.iter().map(|n| u64::from(*n)).sum());
    let mut apply_ns: Vec<u32> = runs[0].iter().flat_map(|r| r.each_ns.iter().map(|(_, a)| *a)).collect();
    println!(
        "diagnostic (MA, separate pass): cloning and dropping a document and its posting, what apply by reference adds: \
         median {:.1} µs, mean {:.1} µs per document; median apply {:.1} µs",
        f64::from(median(&mut clone_ns)) / 1e3,
        us(clone_total, docs.len()),
        f64::from(median(&mut apply_ns)) / 1e3,
    );

    println!();
    for (i, m) in methods.iter().enumerate() {
        let b = &runs[i][0].books;
        let layers: usize = b.positions().map(|(k, _)| b.stock(k).map_or(0, |s| s.layers.len())).sum();
        let digests: Vec<[u8; 32]> = runs[i].iter().map(|r| r.books.digest()).collect();
        assert!(digests.iter().all(|d| *d == digests[0]), "{m:?}: runs over the same documents gave different books");
        println!(
            "{}: {} positions, {layers} cost layers at the end, same books digest in all runs ({})",
            method_name(*m),
            b.positions().count(),
            digests[0][..6].iter().map(|x| format!("{x:02x}")).collect::<String>()
        );
    }
    println!("machine after: load average {}", edge::machine::load_average());
}
