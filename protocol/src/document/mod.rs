//! The document model (单据): header plus lines, the document types that exist so far,
//! and the numbering rule `TYPE-BRANCH-MMDD-NNN` from seed 003.
//!
//! A `Draft` is what an operator submits; it has no number and never touches the books.
//! A `Document` is posted: numbered by its branch, immutable, corrected only by a
//! reversal. Validation here is about the document alone; whether the books allow it
//! (stock on hand, scope, known products) is the ledger's business.

use std::fmt;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::codes::{AccountCode, BranchCode, OperatorId, PartyCode, ProductCode, WarehouseCode};
use crate::date::BusinessDate;
use crate::error::{CodeError, DocError};

/// Most lines one document may carry; bounds batch and posting work.
pub const DOC_LINES_MAX: usize = 1_000;
/// Longest memo, in characters.
pub const MEMO_CHARS_MAX: usize = 200;
/// Decimal places allowed on quantities (weighted goods: grams of a kg).
pub const QTY_SCALE_MAX: u32 = 4;
/// Decimal places allowed on unit prices.
pub const PRICE_SCALE_MAX: u32 = 4;
/// Decimal places of money amounts (分).
pub const MONEY_SCALE: u32 = 2;
/// Largest quantity on one line (10^9).
pub const QTY_MAX: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);
/// Largest money figure on a document: a line amount, a sum, a balance, a journal line
/// (10^15 yuan). Far above any real document and far enough below `Decimal`'s limit
/// (7.9 x 10^28) that the books' sums and value x quantity products cannot overflow:
/// posting must refuse a hostile document, never panic on it.
pub const AMOUNT_MAX: Decimal = Decimal::from_parts(0xA4C6_8000, 0x0003_8D7E, 0, false, 0);

/// Rounds a money amount the way Chinese bookkeeping does (四舍五入: half away from zero)
/// to cents. Every amount the core computes goes through here, so both sides round alike.
pub fn round_money(d: Decimal) -> Decimal {
    let mut r = d.round_dp_with_strategy(MONEY_SCALE, RoundingStrategy::MidpointAwayFromZero);
    // Always two places, so amounts read as money ("25.00", not "25.0").
    r.rescale(MONEY_SCALE);
    r
}

/// Rounds to `dp` places by the one rule of the books, half away from zero (四舍五入), for
/// figures that are not money (percentages, unit costs). `Decimal::round_dp` rounds half
/// to even (0.025 → 0.02), which no accountant expects, so the workspace never calls it.
pub fn round_half_away(d: Decimal, dp: u32) -> Decimal {
    d.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero)
}

pub use doc_type::{DocType, Shape, UnknownDocType};
pub use number::DocNumber;
use validate::validate_parts;

mod doc_type;
mod number;
mod validate;

/// What a line of an assembly does; every other type uses `Normal`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum LineRole {
    #[default]
    Normal,
    /// Assembly: goes out at cost.
    Consumed,
    /// Assembly: comes in carrying the consumed cost.
    Produced,
}

/// One document line: product, quantity, unit price, amount (= qty x price, to the cent).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Line {
    pub product: ProductCode,
    #[serde(default)]
    pub role: LineRole,
    #[serde(with = "crate::decimal_serde")]
    pub qty: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub unit_price: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub amount: Decimal,
}

impl Line {
    /// A line whose amount is computed by the rounding rule.
    pub fn priced(product: ProductCode, qty: Decimal, unit_price: Decimal) -> Line {
        let amount = qty.checked_mul(unit_price).map(round_money).unwrap_or(Decimal::MAX);
        Line { product, role: LineRole::Normal, qty, unit_price, amount }
    }
}

/// How a till sale was paid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentMethod {
    Cash,
    Card,
    /// WeChat Pay / Alipay and the like.
    Mobile,
}

impl PaymentMethod {
    /// The method's name in messages and reports (the same word as its serde name).
    pub fn name(self) -> &'static str {
        match self {
            PaymentMethod::Cash => "Cash",
            PaymentMethod::Card => "Card",
            PaymentMethod::Mobile => "Mobile",
        }
    }
}

/// Payment taken at the till for a retail sale: `change = tendered - total`, exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payment {
    pub method: PaymentMethod,
    #[serde(with = "crate::decimal_serde")]
    pub tendered: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub change: Decimal,
}

impl Payment {
    /// The payment rules of a retail sale of `total`: at least the total was tendered, in
    /// cents; the change is exactly `tendered - total`; and only cash gives change (a card
    /// or mobile payment takes exactly the total, else the bank would book money the
    /// customer was handed back from the drawer). The till checks a payment with this
    /// before posting, and every retail document's validation (branch and HQ) runs it
    /// again, so a branch cannot post, nor HQ accept, a payment the till would refuse.
    pub fn check(&self, total: Decimal) -> Result<(), DocError> {
        if self.tendered < total {
            return Err(DocError::Underpaid { total, tendered: self.tendered });
        }
        let expected = self.tendered - total;
        if self.tendered.scale() > MONEY_SCALE || self.change != expected {
            return Err(DocError::WrongChange { total, tendered: self.tendered, change: self.change, expected });
        }
        if self.method != PaymentMethod::Cash && !self.change.is_zero() {
            return Err(DocError::ChangeNotCash { method: self.method.name(), total, tendered: self.tendered });
        }
        Ok(())
    }
}

/// A month, for closing periods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Period {
    pub year: u16,
    pub month: u8,
}

impl Period {
    pub fn of(date: BusinessDate) -> Period {
        Period { year: date.year(), month: date.month() }
    }

    /// The month `n` months before this one.
    pub fn months_before(self, n: u32) -> Period {
        let index = (u32::from(self.year) * 12 + u32::from(self.month) - 1).saturating_sub(n);
        // `index / 12` is at most `self.year`, so it fits a u16; `index % 12 + 1` is 1..=12.
        Period { year: (index / 12) as u16, month: (index % 12 + 1) as u8 }
    }

    /// The month `n` months after this one (saturating at year 65535).
    pub fn months_after(self, n: u32) -> Period {
        let index = (u32::from(self.year) * 12 + u32::from(self.month) - 1).saturating_add(n).min(u32::from(u16::MAX) * 12 + 11);
        // Capped above, so `index / 12` fits a u16; `index % 12 + 1` is 1..=12.
        Period { year: (index / 12) as u16, month: (index % 12 + 1) as u8 }
    }

    /// `YYYY-MM`, as people read it.
    pub fn label(self) -> String {
        format!("{}-{:02}", self.year, self.month)
    }

    /// Parses `YYYY-MM`.
    pub fn parse(s: &str) -> Result<Period, CodeError> {
        let bad = || CodeError::BadDate { value: s.chars().take(20).collect() };
        let (y, m) = s.split_once('-').ok_or_else(bad)?;
        let d = BusinessDate::new(y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?, 1).map_err(|_| bad())?;
        Ok(Period::of(d))
    }
}

/// Cost method, chosen at opening and frozen afterwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum CostMethod {
    /// Moving weighted average (移动加权平均); no negative stock.
    #[default]
    MovingAverage,
    Fifo,
    Lifo,
}

impl CostMethod {
    /// The method's name in messages to people.
    pub fn label(self) -> &'static str {
        match self {
            CostMethod::MovingAverage => "moving weighted average",
            CostMethod::Fifo => "FIFO",
            CostMethod::Lifo => "LIFO",
        }
    }
}

/// Money applied to one earlier document (per-invoice settlement).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settlement {
    pub doc: DocNumber,
    #[serde(with = "crate::decimal_serde")]
    pub amount: Decimal,
}

/// What an opening balance is of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpeningKind {
    /// A customer owes us `amount`.
    Receivable(PartyCode),
    /// We owe a supplier `amount`.
    Payable(PartyCode),
    /// A cash or bank account holds `amount`.
    Account(AccountCode),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpeningBalance {
    pub kind: OpeningKind,
    #[serde(with = "crate::decimal_serde")]
    pub amount: Decimal,
}

/// One line of a manual journal entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryLine {
    pub account: AccountCode,
    #[serde(with = "crate::decimal_serde")]
    pub debit: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub credit: Decimal,
}

/// Fields only some document types use; each type's rule says which (see `DocType`).
///
/// Unknown fields are refused, naming the field and listing these: a typo (`acount` for
/// `account`) must not silently post a cash purchase on credit.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DocExt {
    /// Transfers: the receiving warehouse.
    pub to_warehouse: Option<WarehouseCode>,
    /// The cash/bank account money moves through: cash purchases and sales, payments,
    /// receipts, expenses, other income, the source of a fund transfer.
    pub account: Option<AccountCode>,
    /// Fund transfer: the receiving account.
    pub to_account: Option<AccountCode>,
    /// Expense or income category (a sub-account code, e.g. `RENT`).
    pub category: Option<String>,
    /// Money documents: the sum.
    #[serde(with = "crate::decimal_serde::option")]
    pub money: Option<Decimal>,
    /// Payments and receipts: which documents this money settles.
    pub settles: Vec<Settlement>,
    /// Red-letter reversal (红字冲账): the posted document this one cancels.
    pub reverses: Option<DocNumber>,
    /// Month-end close: the month.
    pub period: Option<Period>,
    /// Opening: the cost method, frozen from then on.
    pub cost_method: Option<CostMethod>,
    /// Opening: receivables, payables, cash and bank.
    pub balances: Vec<OpeningBalance>,
    /// Manual journal entry lines.
    pub entries: Vec<EntryLine>,
    /// Returns: the original document whose goods come back — the sale or retail sale a
    /// sales return (WJXS) takes back, the purchase receipt a purchase return (JT) gives
    /// back. Required on returns, refused on every other type.
    pub returns: Option<DocNumber>,
    /// The branch's draft id HQ approved this document under (`protocol::approval`): set
    /// only by posting an approved draft, checked by HQ against the approvals it granted.
    pub approval: Option<u64>,
    /// Cross-branch transfer steps (调拨出库 / 调拨入库 / 调拨差异处理): the HQ order and,
    /// for a receipt, the shipment it receives. Required on those types, refused elsewhere.
    pub transfer: Option<crate::transfer::TransferRef>,
    /// The cost layers a transfer step moves, in receipt order: what a shipment takes out
    /// (filled by the branch from its books; posting checks it), what a receipt or a
    /// settlement takes over from the shipment.
    pub layers: Vec<crate::transfer::CostLayer>,
}

/// Most settlements, opening balances or manual lines on one document.
pub const DOC_EXT_ITEMS_MAX: usize = 1_000;

/// What an operator submits for posting. No number yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    pub doc_type: DocType,
    pub date: BusinessDate,
    pub operator: OperatorId,
    pub warehouse: WarehouseCode,
    #[serde(default)]
    pub counterparty: Option<PartyCode>,
    #[serde(default)]
    pub memo: String,
    /// Required for retail sales, absent otherwise.
    #[serde(default)]
    pub payment: Option<Payment>,
    #[serde(default)]
    pub lines: Vec<Line>,
    #[serde(default)]
    pub ext: DocExt,
}

/// The header of a posted document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub number: DocNumber,
    pub branch: BranchCode,
    pub doc_type: DocType,
    pub date: BusinessDate,
    pub operator: OperatorId,
    pub warehouse: WarehouseCode,
    pub counterparty: Option<PartyCode>,
    pub memo: String,
    pub payment: Option<Payment>,
    pub ext: DocExt,
    /// The profile version (scope, catalog, parties) HQ issued and the branch posted this
    /// under; both sides post the document against that same version, so the same
    /// journal gives the same books whatever HQ changed since. 0: posted before the
    /// branch held any issued profile.
    pub profile_version: u64,
}

/// A posted document. Fields are public for reading; construct only via `Document::number`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    pub header: Header,
    pub lines: Vec<Line>,
}

impl Draft {
    /// Checks everything that does not depend on the books.
    pub fn validate(&self) -> Result<(), DocError> {
        validate_parts(self.doc_type, &self.counterparty, &self.memo, self.payment.as_ref(), &self.lines, &self.ext)
    }

    /// Turns a valid draft into a posted document with the given serial, under no
    /// issued profile (version 0); see [`Draft::number_under`].
    pub fn number(self, branch: BranchCode, serial: u32) -> Result<Document, DocError> {
        self.number_under(branch, serial, 0)
    }

    /// Turns a valid draft into a posted document with the given serial, recording the
    /// profile version it is posted under.
    pub fn number_under(self, branch: BranchCode, serial: u32, profile_version: u64) -> Result<Document, DocError> {
        self.validate()?;
        let number = DocNumber::new(self.doc_type, branch, self.date, serial);
        Ok(Document {
            header: Header {
                number,
                branch,
                doc_type: self.doc_type,
                date: self.date,
                operator: self.operator,
                warehouse: self.warehouse,
                counterparty: self.counterparty,
                memo: self.memo,
                payment: self.payment,
                ext: self.ext,
                profile_version,
            },
            lines: self.lines,
        })
    }
}

impl Document {
    /// The draft of this document's red-letter reversal (红字冲账): same type, warehouse,
    /// counterparty, lines and amounts, `ext.reverses` naming this one, dated `date` and
    /// posted by `operator`.
    pub fn reversal(&self, date: BusinessDate, operator: OperatorId) -> Draft {
        let h = &self.header;
        Draft {
            doc_type: h.doc_type,
            date,
            operator,
            warehouse: h.warehouse,
            counterparty: h.counterparty,
            memo: format!("红字冲销 reversal of {}", h.number),
            payment: h.payment,
            lines: self.lines.clone(),
            ext: DocExt { reverses: Some(h.number.clone()), approval: None, ..h.ext.clone() },
        }
    }

    /// Full validation of a document received from elsewhere (HQ re-checks every one).
    pub fn validate(&self) -> Result<(), DocError> {
        let h = &self.header;
        let n = &h.number;
        if n.doc_type != h.doc_type {
            return Err(DocError::NumberMismatch { number: n.to_string(), what: "type" });
        }
        if n.branch != h.branch {
            return Err(DocError::NumberMismatch { number: n.to_string(), what: "branch" });
        }
        if n.month != h.date.month() || n.day != h.date.day() {
            return Err(DocError::NumberMismatch { number: n.to_string(), what: "date" });
        }
        validate_parts(h.doc_type, &h.counterparty, &h.memo, h.payment.as_ref(), &self.lines, &h.ext)
    }

    /// Sum of line amounts.
    pub fn total(&self) -> Decimal {
        self.lines.iter().map(|l| l.amount).sum()
    }
}

#[cfg(test)]
mod tests;
