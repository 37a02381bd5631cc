//! `Shop`: the books of one test branch with its numbering counters and a business date,
//! and the codes, dates and drafts the worked examples of the books are written in
//! (`tests/books_examples.rs`, `tests/periods.rs`). Every post checks that `post` is
//! pure and that the books tie afterwards (`assert_books_tie`); a refusal must leave the
//! books exactly as they were. Test code: panics on what a test got wrong. Must not be
//! used outside tests and benches (it is behind the `testkit` feature).

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::books::{post, Books, Consignment, Loan, Position, PostContext, Posting, Side};
use crate::codes::{AccountCode, BranchCode, OperatorId, PartyCode, ProductCode, WarehouseCode};
use crate::date::BusinessDate;
use crate::decimal_serde::Dec;
use crate::document::{CostMethod, DocExt, DocType, Document, Draft, Line, LineRole, OpeningBalance, OpeningKind, Period};
use crate::error::PostError;
use crate::profile::{BranchProfile, Product};

pub const BRANCH: &str = "SH";
pub const W1: &str = "SH01";
pub const W2: &str = "SH02";
pub const CUSTOMER: &str = "200102";
pub const CUSTOMER2: &str = "200103";
pub const SUPPLIER: &str = "S001";
pub const DEALER: &str = "D01";
pub const CASH: &str = "1001";
pub const BANK: &str = "1002.ICBC";
pub const PRODUCTS: &[&str] = &["P1", "P2", "P3", "P4", "P9", "A", "B", "C", "D", "K", "L", "X", "Y"];

pub fn wh(s: &str) -> WarehouseCode {
    WarehouseCode::new(s).expect("test warehouse code")
}
pub fn pc(s: &str) -> ProductCode {
    ProductCode::new(s).expect("test product code")
}
pub fn party(s: &str) -> PartyCode {
    PartyCode::new(s).expect("test party code")
}
pub fn acct(s: &str) -> AccountCode {
    AccountCode::parse(s).expect("test account code")
}
pub fn date(month: u8, day: u8) -> BusinessDate {
    BusinessDate::new(2026, month, day).expect("test date")
}
pub fn line(p: &str, qty: Decimal, price: Decimal) -> Line {
    Line::priced(pc(p), qty, price)
}
pub fn role(mut l: Line, r: LineRole) -> Line {
    l.role = r;
    l
}
pub fn june() -> Period {
    Period { year: 2026, month: 6 }
}
pub fn july() -> Period {
    Period { year: 2026, month: 7 }
}

/// A profile that allows both warehouses and every test product, with the given limits.
pub fn profile(limits: &[(&str, Decimal)]) -> BranchProfile {
    BranchProfile {
        branch: BranchCode::new(BRANCH).expect("branch"),
        name: "上海".into(),
        warehouses: [W1, W2].iter().map(|w| wh(w)).collect(),
        products: PRODUCTS
            .iter()
            .map(|p| (pc(p), Product { name: (*p).into(), unit: "pcs".into(), retail_price: None, prices: Vec::new(), category: None }))
            .collect(),
        credit_limits: limits.iter().map(|(c, l)| (party(c), Dec(*l))).collect(),
        overdrafts: Default::default(),
        version: 1,
        people: Vec::new(),
        approvals: Default::default(),
        scope: None,
        parties: Default::default(),
    }
}

/// The books of one branch plus its numbering counters and a business date.
pub struct Shop {
    pub books: Books,
    pub serials: BTreeMap<(DocType, BusinessDate), u32>,
    pub today: BusinessDate,
}

impl Shop {
    /// No documents at all.
    pub fn blank() -> Shop {
        Shop { books: Books::default(), serials: BTreeMap::new(), today: date(6, 1) }
    }

    /// Opened under `method` with cash 1001 1000.00 and bank 1002.ICBC 500.00.
    pub fn new(method: CostMethod) -> Shop {
        let mut s = Shop::blank();
        s.open(
            method,
            vec![],
            &[(OpeningKind::Account(acct(CASH)), Decimal::new(100000, 2)), (OpeningKind::Account(acct(BANK)), Decimal::new(50000, 2))],
        );
        s
    }

    pub fn open(&mut self, method: CostMethod, lines: Vec<Line>, balances: &[(OpeningKind, Decimal)]) -> Document {
        let d = self.opening(Some(method), lines, balances);
        self.post(d).0
    }

    pub fn opening(&self, method: Option<CostMethod>, lines: Vec<Line>, balances: &[(OpeningKind, Decimal)]) -> Draft {
        let mut d = self.goods(DocType::Opening, None, lines);
        d.ext.cost_method = method;
        d.ext.balances = balances.iter().map(|(kind, amount)| OpeningBalance { kind: kind.clone(), amount: *amount }).collect();
        d
    }

    pub fn draft(&self, t: DocType) -> Draft {
        Draft {
            doc_type: t,
            date: self.today,
            operator: OperatorId::new("sh-li").expect("operator"),
            warehouse: wh(W1),
            counterparty: None,
            memo: String::new(),
            payment: None,
            lines: vec![],
            ext: DocExt::default(),
        }
    }

    pub fn goods(&self, t: DocType, who: Option<&str>, lines: Vec<Line>) -> Draft {
        Draft { counterparty: who.map(party), lines, ..self.draft(t) }
    }

    /// A goods document paid in cash at once (`ext.account`).
    pub fn cash_goods(&self, t: DocType, who: Option<&str>, lines: Vec<Line>) -> Draft {
        let mut d = self.goods(t, who, lines);
        d.ext.account = Some(acct(CASH));
        d
    }

    pub fn money(&self, t: DocType, who: Option<&str>, amount: Decimal, account: Option<&str>) -> Draft {
        let mut d = Draft { counterparty: who.map(party), ..self.draft(t) };
        d.ext.money = Some(amount);
        d.ext.account = account.map(acct);
        d
    }

    pub fn transfer(&self, t: DocType, to: &str, lines: Vec<Line>) -> Draft {
        let mut d = self.goods(t, None, lines);
        d.ext.to_warehouse = Some(wh(to));
        d
    }

    /// The red-letter reversal of `doc`, dated today.
    pub fn reversal_of(&self, doc: &Document) -> Draft {
        doc.reversal(self.today, doc.header.operator)
    }

    pub fn number(&mut self, d: Draft) -> Document {
        let serial = self.serials.entry((d.doc_type, d.date)).or_insert(0);
        *serial += 1;
        d.number(BranchCode::new(BRANCH).expect("branch"), *serial).expect("test drafts are valid")
    }

    pub fn try_post_with(&mut self, d: Draft, ctx: PostContext<'_>) -> Result<(Document, Posting), PostError> {
        let doc = self.number(d);
        let before = self.books.digest();
        let result = post(&self.books, &doc, ctx);
        assert_eq!(self.books.digest(), before, "post() is pure");
        let p = result?;
        self.books.apply(&doc, &p);
        super::assert_books_tie(&self.books);
        Ok((doc, p))
    }

    pub fn try_post(&mut self, d: Draft) -> Result<(Document, Posting), PostError> {
        self.try_post_with(d, PostContext::default())
    }

    pub fn post(&mut self, d: Draft) -> (Document, Posting) {
        let t = d.doc_type;
        self.try_post(d).unwrap_or_else(|e| panic!("{t:?} refused: {e}"))
    }

    /// Posts a document that must be refused; the books must not change.
    pub fn refuse(&mut self, d: Draft) -> PostError {
        self.refuse_with(d, PostContext::default())
    }

    pub fn refuse_with(&mut self, d: Draft, ctx: PostContext<'_>) -> PostError {
        let before = self.books.digest();
        let snap = super::books_snapshot(&self.books);
        let e = self.try_post_with(d, ctx).map(|(doc, _)| doc.header.number.to_string()).expect_err("this document must be refused");
        assert_eq!(self.books.digest(), before);
        assert_eq!(super::books_snapshot(&self.books), snap);
        e
    }

    pub fn pos(&self, w: &str, p: &str) -> Position {
        self.books.position(&(wh(w), pc(p)))
    }
    pub fn layers(&self, w: &str, p: &str) -> Vec<Position> {
        self.books.stock(&(wh(w), pc(p))).map(|s| s.layers.iter().copied().collect()).unwrap_or_default()
    }
    pub fn bal(&self, account: &str) -> Decimal {
        self.books.balance(account)
    }
    pub fn owed(&self, side: Side, who: &str) -> Decimal {
        self.books.parties().get(&(side, party(who))).copied().unwrap_or_default()
    }
    pub fn open_amount(&self, doc: &Document, who: &str) -> Option<Decimal> {
        self.books.open_items().get(&(doc.header.number.clone(), party(who))).map(|i| i.open)
    }
    pub fn consigned(&self, kind: Consignment, who: &str, p: &str) -> Position {
        self.books.consignment().find(|(k, _)| **k == (kind, party(who), pc(p))).map(|(_, pos)| *pos).unwrap_or_default()
    }
    pub fn on_loan(&self, kind: Loan, who: &str, p: &str) -> Decimal {
        self.books.loans().get(&(kind, party(who), pc(p))).copied().unwrap_or_default()
    }

    /// Receives `qty` of `p` into W1 at `price`, paid in cash.
    pub fn stock_up(&mut self, p: &str, qty: Decimal, price: Decimal) -> Document {
        let d = self.cash_goods(DocType::PurchaseReceipt, Some(SUPPLIER), vec![line(p, qty, price)]);
        self.post(d).0
    }

    /// Closes month `p` (月结), as posted today.
    pub fn close(&mut self, p: Period) -> Result<(Document, Posting), PostError> {
        let mut d = self.draft(DocType::PeriodClose);
        d.ext.period = Some(p);
        self.try_post(d)
    }

    /// Reopens month `p` (反结账), as posted today.
    pub fn reopen(&mut self, p: Period) -> Result<(Document, Posting), PostError> {
        let mut d = self.draft(DocType::PeriodReopen);
        d.ext.period = Some(p);
        self.try_post(d)
    }

    /// Sells `qty` of `p` from W1 to CUSTOMER at `price`, paid in cash.
    pub fn sell(&mut self, p: &str, qty: Decimal, price: Decimal) -> Result<(Document, Posting), PostError> {
        let d = self.cash_goods(DocType::Sale, Some(CUSTOMER), vec![line(p, qty, price)]);
        self.try_post(d)
    }
}
