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

/// What a document carries, which decides how it is validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Goods lines (product, qty > 0, price, amount).
    Goods,
    /// A sum of money in `ext.money`, no lines.
    Money,
    /// Opening balances: goods lines and/or `ext.balances`.
    Opening,
    /// A manual journal voucher: `ext.entries`, which must balance.
    Manual,
    /// Month-end close: `ext.period`, nothing else.
    Close,
}

macro_rules! doc_types {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $name:literal, $party:expr, $shape:ident; )*) => {
        /// Document types. Adding one: a line here, then its posting rule in `books::posting`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum DocType {
            $( $(#[$doc])* $variant, )*
        }

        impl DocType {
            pub const ALL: &'static [DocType] = &[$(DocType::$variant),*];

            /// The type code used in document numbers (seed 003 where it names one).
            pub fn code(self) -> &'static str {
                match self { $(DocType::$variant => $code,)* }
            }

            pub fn name(self) -> &'static str {
                match self { $(DocType::$variant => $name,)* }
            }

            /// The variant's identifier (`PurchaseReceipt`), as APIs and tests spell it.
            pub fn ident(self) -> &'static str {
                match self { $(DocType::$variant => stringify!($variant),)* }
            }

            /// The counterparty this type needs, if any (role name for messages).
            pub fn counterparty_role(self) -> Option<&'static str> {
                match self { $(DocType::$variant => $party,)* }
            }

            pub fn shape(self) -> Shape {
                match self { $(DocType::$variant => Shape::$shape,)* }
            }
        }
    };
}

const SUPPLIER: Option<&str> = Some("supplier");
const CUSTOMER: Option<&str> = Some("customer");
const DEALER: Option<&str> = Some("dealer");
const PARTY: Option<&str> = Some("counterparty");

doc_types! {
    /// 采购入库 / 进货单: goods in from a supplier (cash if `ext.account`, else on credit).
    PurchaseReceipt = "JH", "purchase receipt", SUPPLIER, Goods;
    /// 采购退货: goods back to the supplier.
    PurchaseReturn = "JT", "purchase return", SUPPLIER, Goods;
    /// 付款单: money to a supplier, against specific receipts (`ext.settles`) or in advance.
    Payment = "FK", "payment", SUPPLIER, Money;
    /// 销售出库 / 销售单: goods out to a customer (cash if `ext.account`, else on credit).
    Sale = "XS", "sale", CUSTOMER, Goods;
    /// 已收款退货: a customer returns goods.
    SalesReturn = "WJXS", "sales return", CUSTOMER, Goods;
    /// 零售单: a POS sale to a walk-in customer, paid at the till.
    Retail = "LS", "retail sale", None, Goods;
    /// 收款单: money from a customer, against specific sales or in advance.
    Receipt = "SK", "receipt", CUSTOMER, Money;
    /// 同价调拨: cost moves unchanged from `warehouse` to `ext.to_warehouse`.
    TransferSamePrice = "TJ", "same-price transfer", None, Goods;
    /// 变价调拨: goods arrive at the line price; the difference goes to its own account.
    TransferChangedPrice = "BJ", "changed-price transfer", None, Goods;
    /// 报损: stock loss.
    StockLoss = "BS", "stock loss", None, Goods;
    /// 报溢: stock gain.
    StockGain = "BY", "stock gain", None, Goods;
    /// 成本调价: the line amount becomes the new book value; quantity unchanged.
    CostAdjustment = "CB", "cost adjustment", None, Goods;
    /// 拆装: consumed lines go out at cost, produced lines come in carrying that cost.
    Assembly = "CZ", "assembly/disassembly", None, Goods;
    /// 委托代销发货: goods shipped to a dealer on consignment, still ours.
    ConsignOutShip = "FS", "consignment shipment", DEALER, Goods;
    /// 与经销商结算: the dealer sold them; revenue and cost now.
    ConsignOutSettle = "WX", "consignment settlement", DEALER, Goods;
    /// 未收款退货: the dealer returns consigned goods.
    ConsignOutReturn = "WWST", "consignment return", DEALER, Goods;
    /// 受托代销收货: a supplier's goods received on consignment, not ours.
    ConsignInReceive = "ST", "consignment receipt", SUPPLIER, Goods;
    /// 受托代销结算: consigned goods become ours, owed to the supplier.
    ConsignInSettle = "STJS", "consignment-in settlement", SUPPLIER, Goods;
    /// 受托代销退货: consigned goods go back to the supplier.
    ConsignInReturn = "STTH", "consignment-in return", SUPPLIER, Goods;
    /// 借出: goods lent out (quantity only, off the book stock).
    LendOut = "JC", "lend out", PARTY, Goods;
    /// 借出还回: lent goods come back.
    LendReturn = "JCH", "lent goods returned", PARTY, Goods;
    /// 借进: goods borrowed in (quantity only).
    BorrowIn = "JR", "borrow in", PARTY, Goods;
    /// 借进还出: borrowed goods given back.
    BorrowReturn = "JRH", "borrowed goods returned", PARTY, Goods;
    /// 费用单: an expense paid from a cash/bank account (`ext.category`).
    Expense = "FY", "expense", None, Money;
    /// 其他收入: other income into a cash/bank account.
    OtherIncome = "QS", "other income", None, Money;
    /// 转款: money between two of our accounts.
    FundTransfer = "ZK", "fund transfer", None, Money;
    /// 应收增加.
    ReceivableIncrease = "YSZ", "receivable increase", CUSTOMER, Money;
    /// 应收减少.
    ReceivableDecrease = "YSJ", "receivable decrease", CUSTOMER, Money;
    /// 应付增加.
    PayableIncrease = "YFZ", "payable increase", SUPPLIER, Money;
    /// 应付减少.
    PayableDecrease = "YFJ", "payable decrease", SUPPLIER, Money;
    /// 期初建账: opening stock with cost, receivables, payables, cash and bank.
    Opening = "QC", "opening balances", None, Opening;
    /// 凭证: a manual journal entry.
    ManualEntry = "PZ", "manual journal entry", None, Manual;
    /// 月结: closes a month; later postings into it are refused.
    PeriodClose = "JZ", "month-end close", None, Close;
    /// 反结账: reopens the latest closed month (`ext.period`); ordered by an HQ auditor
    /// over the down channel and posted by the branch itself, never entered at a branch.
    PeriodReopen = "FJZ", "month reopen", None, Close;
}

impl DocType {
    pub fn from_code(code: &str) -> Option<DocType> {
        DocType::ALL.iter().copied().find(|t| t.code() == code)
    }

    /// A type as people and APIs name it: its seed code exactly (`XS`), its identifier or
    /// English name in any case (`Sale`, `sale`, `SALE`), or its Chinese name with or
    /// without the trailing 单 (`销售单`, `销售`). Codes stay exact: they are what
    /// document numbers carry.
    pub fn parse(s: &str) -> Result<DocType, UnknownDocType> {
        let zh = s.strip_suffix('单').unwrap_or(s);
        DocType::from_code(s)
            .or_else(|| DocType::ALL.iter().copied().find(|t| t.ident().eq_ignore_ascii_case(s) || t.name().eq_ignore_ascii_case(s)))
            .or_else(|| DocType::ALL.iter().copied().find(|t| !zh.is_empty() && t.zh_names().contains(&zh)))
            .ok_or_else(|| UnknownDocType { given: s.chars().take(40).collect() })
    }

    /// The Chinese names people use for the type (seed 003's, without a trailing 单).
    pub fn zh_names(self) -> &'static [&'static str] {
        match self {
            DocType::PurchaseReceipt => &["进货", "采购入库"],
            DocType::PurchaseReturn => &["采购退货", "进货退货"],
            DocType::Payment => &["付款"],
            DocType::Sale => &["销售", "销售出库"],
            DocType::SalesReturn => &["已收款退货", "销售退货"],
            DocType::Retail => &["零售"],
            DocType::Receipt => &["收款"],
            DocType::TransferSamePrice => &["同价调拨"],
            DocType::TransferChangedPrice => &["变价调拨"],
            DocType::StockLoss => &["报损"],
            DocType::StockGain => &["报溢"],
            DocType::CostAdjustment => &["成本调价"],
            DocType::Assembly => &["拆装"],
            DocType::ConsignOutShip => &["委托代销发货"],
            DocType::ConsignOutSettle => &["委托代销结算", "与经销商结算"],
            DocType::ConsignOutReturn => &["未收款退货", "委托代销退货"],
            DocType::ConsignInReceive => &["受托代销收货"],
            DocType::ConsignInSettle => &["受托代销结算"],
            DocType::ConsignInReturn => &["受托代销退货"],
            DocType::LendOut => &["借出"],
            DocType::LendReturn => &["借出还回"],
            DocType::BorrowIn => &["借进"],
            DocType::BorrowReturn => &["借进还出"],
            DocType::Expense => &["费用"],
            DocType::OtherIncome => &["其他收入"],
            DocType::FundTransfer => &["转款"],
            DocType::ReceivableIncrease => &["应收增加"],
            DocType::ReceivableDecrease => &["应收减少"],
            DocType::PayableIncrease => &["应付增加"],
            DocType::PayableDecrease => &["应付减少"],
            DocType::Opening => &["期初建账", "期初"],
            DocType::ManualEntry => &["凭证"],
            DocType::PeriodClose => &["月结", "结账"],
            DocType::PeriodReopen => &["反结账"],
        }
    }
}

impl std::str::FromStr for DocType {
    type Err = UnknownDocType;
    fn from_str(s: &str) -> Result<DocType, UnknownDocType> {
        DocType::parse(s)
    }
}

/// A document type name that is none of the known codes, identifiers or names.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown document type {given:?}; known: {}", known_doc_types())]
pub struct UnknownDocType {
    /// What was given (at most 40 characters of it).
    pub given: String,
}

fn known_doc_types() -> String {
    DocType::ALL.iter().map(|t| format!("{} ({})", t.code(), t.name())).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod doc_type_tests {
    use super::DocType;

    #[test]
    fn a_type_parses_from_its_code_identifier_or_name_and_nothing_else() {
        for &t in DocType::ALL {
            assert_eq!(t.code().parse::<DocType>(), Ok(t));
            assert_eq!(DocType::parse(t.ident()), Ok(t));
            assert_eq!(DocType::parse(t.name()), Ok(t));
            // The identifier is what `Debug` prints, so APIs that took that still work.
            assert_eq!(t.ident(), format!("{t:?}"));
        }
        assert_eq!(DocType::parse("XS"), Ok(DocType::Sale));
        assert_eq!(DocType::parse("PurchaseReceipt"), Ok(DocType::PurchaseReceipt));
        for (given, t) in [("SALE", DocType::Sale), ("purchase RECEIPT", DocType::PurchaseReceipt), ("stockloss", DocType::StockLoss)] {
            assert_eq!(DocType::parse(given), Ok(t), "{given}");
        }
        for (given, t) in
            [("销售单", DocType::Sale), ("销售", DocType::Sale), ("进货单", DocType::PurchaseReceipt), ("报损单", DocType::StockLoss)]
        {
            assert_eq!(DocType::parse(given), Ok(t), "{given}");
        }
        // Each Chinese name names one type.
        let mut all: Vec<&str> = DocType::ALL.iter().flat_map(|t| t.zh_names().iter().copied()).collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "a Chinese name names two types");
        for bad in ["", "xs", "Sale ", "单", "XS-SH-0609-001"] {
            let e = DocType::parse(bad).expect_err(bad);
            assert!(e.to_string().starts_with(&format!("unknown document type {bad:?}; known: JH (purchase receipt), ")), "{e}");
        }
    }
}

/// `TYPE-BRANCH-MMDD-NNN`, e.g. `XS-SH-0609-001`. Serial is at least three digits and
/// widens past 999 rather than wrapping: a busy branch can post more than 999 a day.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DocNumber {
    doc_type: DocType,
    branch: BranchCode,
    month: u8,
    day: u8,
    serial: u32,
}

impl DocNumber {
    pub fn new(doc_type: DocType, branch: BranchCode, date: BusinessDate, serial: u32) -> DocNumber {
        assert!(serial >= 1, "document serials start at 1");
        DocNumber { doc_type, branch, month: date.month(), day: date.day(), serial }
    }

    pub fn parse(s: &str) -> Result<DocNumber, CodeError> {
        let bad = || CodeError::BadDocNumber { value: s.chars().take(40).collect() };
        let mut parts = s.split('-');
        let (Some(t), Some(b), Some(md), Some(n), None) = (parts.next(), parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let doc_type = DocType::from_code(t).ok_or_else(bad)?;
        let branch = BranchCode::new(b).map_err(|_| bad())?;
        if md.len() != 4 || n.len() < 3 || !md.bytes().chain(n.bytes()).all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        // One spelling per number: serials widen past 999 without leading zeros.
        if n.len() > 3 && n.starts_with('0') {
            return Err(bad());
        }
        let month: u8 = md[0..2].parse().map_err(|_| bad())?;
        let day: u8 = md[2..4].parse().map_err(|_| bad())?;
        // 2000 is a leap year, so this accepts 02-29 and checks month/day ranges.
        BusinessDate::new(2000, month, day).map_err(|_| bad())?;
        let serial: u32 = n.parse().map_err(|_| bad())?;
        if serial == 0 {
            return Err(bad());
        }
        Ok(DocNumber { doc_type, branch, month, day, serial })
    }

    pub fn doc_type(&self) -> DocType {
        self.doc_type
    }
    pub fn branch(&self) -> &BranchCode {
        &self.branch
    }
    pub fn serial(&self) -> u32 {
        self.serial
    }
}

impl fmt::Display for DocNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{:02}{:02}-{:03}", self.doc_type.code(), self.branch, self.month, self.day, self.serial)
    }
}
impl fmt::Debug for DocNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocNumber({self})")
    }
}
impl TryFrom<String> for DocNumber {
    type Error = CodeError;
    fn try_from(s: String) -> Result<Self, CodeError> {
        DocNumber::parse(&s)
    }
}
impl From<DocNumber> for String {
    fn from(n: DocNumber) -> String {
        n.to_string()
    }
}

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

fn validate_parts(
    doc_type: DocType,
    counterparty: &Option<PartyCode>,
    memo: &str,
    payment: Option<&Payment>,
    lines: &[Line],
    ext: &DocExt,
) -> Result<(), DocError> {
    let name = doc_type.name();
    if let Some(role) = doc_type.counterparty_role() {
        if counterparty.is_none() {
            return Err(DocError::MissingCounterparty { doc_type: name, role });
        }
    }
    let memo_chars = memo.chars().count();
    if memo_chars > MEMO_CHARS_MAX {
        return Err(DocError::MemoTooLong { len: memo_chars, max: MEMO_CHARS_MAX });
    }
    // Printed on receipts and reports: the one text rule, on both sides.
    crate::text::check("memo", memo)?;
    if lines.len() > DOC_LINES_MAX {
        return Err(DocError::TooManyLines { count: lines.len(), max: DOC_LINES_MAX });
    }
    let items = ext.settles.len().max(ext.balances.len()).max(ext.entries.len());
    if items > DOC_EXT_ITEMS_MAX {
        return Err(DocError::TooManyLines { count: items, max: DOC_EXT_ITEMS_MAX });
    }
    if ext.category.as_ref().is_some_and(|c| c.is_empty() || c.len() > 16 || !c.chars().all(|ch| ch.is_ascii_alphanumeric())) {
        return Err(DocError::Field { doc_type: name, what: "category must be 1-16 letters or digits (it becomes a sub-account)" });
    }
    let need = |ok: bool, what: &'static str| if ok { Ok(()) } else { Err(DocError::Field { doc_type: name, what }) };
    if matches!(doc_type, DocType::SalesReturn | DocType::PurchaseReturn) {
        need(ext.returns.is_some(), "needs the original document it returns (returns: the sale or purchase receipt)")?;
    } else {
        need(ext.returns.is_none(), "names no original (returns is for sales and purchase returns)")?;
    }
    let mut figures = ext
        .money
        .iter()
        .chain(ext.settles.iter().map(|s| &s.amount))
        .chain(ext.balances.iter().map(|b| &b.amount))
        .chain(ext.entries.iter().flat_map(|e| [&e.debit, &e.credit]))
        .chain(payment.into_iter().flat_map(|p| [&p.tendered, &p.change]));
    need(figures.all(|d| d.abs() <= AMOUNT_MAX), "amounts must not exceed 10^15 yuan")?;
    match doc_type.shape() {
        Shape::Goods => {
            if lines.is_empty() {
                return Err(DocError::NoLines);
            }
            validate_lines(lines)?;
            need(
                ext.money.is_none() && ext.balances.is_empty() && ext.entries.is_empty(),
                "takes goods lines, not money, balances or journal lines",
            )?;
        }
        Shape::Money => {
            need(lines.is_empty(), "takes an amount of money, not goods lines")?;
            let money = ext.money.ok_or(DocError::Field { doc_type: name, what: "needs the amount (money)" })?;
            need(money > Decimal::ZERO && money.scale() <= MONEY_SCALE, "amount must be positive, in yuan and fen (two decimals at most)")?;
            let settled: Decimal = ext.settles.iter().map(|s| s.amount).sum();
            need(
                ext.settles.iter().all(|s| s.amount > Decimal::ZERO && s.amount.scale() <= MONEY_SCALE),
                "each settled amount must be positive",
            )?;
            need(settled <= money, "settles more than the amount paid")?;
        }
        Shape::Opening => {
            need(!lines.is_empty() || !ext.balances.is_empty(), "needs opening stock lines or balances")?;
            validate_lines(lines)?;
            need(
                ext.balances.iter().all(|b| b.amount.scale() <= MONEY_SCALE && !b.amount.is_zero()),
                "opening balances must be non-zero, two decimals at most",
            )?;
        }
        Shape::Manual => {
            need(lines.is_empty() && ext.entries.len() >= 2, "needs at least two journal lines and no goods lines")?;
            for e in &ext.entries {
                let one_sided = (e.debit > Decimal::ZERO && e.credit.is_zero()) || (e.credit > Decimal::ZERO && e.debit.is_zero());
                need(
                    one_sided && e.debit.scale() <= MONEY_SCALE && e.credit.scale() <= MONEY_SCALE,
                    "each journal line is either a positive debit or a positive credit",
                )?;
            }
            let debit: Decimal = ext.entries.iter().map(|e| e.debit).sum();
            let credit: Decimal = ext.entries.iter().map(|e| e.credit).sum();
            if debit != credit {
                return Err(DocError::Unbalanced { debit, credit });
            }
        }
        Shape::Close => need(lines.is_empty() && ext.period.is_some(), "needs the period (year and month) and nothing else")?,
    }
    match doc_type {
        DocType::TransferSamePrice | DocType::TransferChangedPrice => {
            need(ext.to_warehouse.is_some(), "needs the receiving warehouse (to_warehouse)")?
        }
        DocType::FundTransfer => need(
            ext.account.is_some() && ext.to_account.is_some() && ext.account != ext.to_account,
            "needs two different accounts (account, to_account)",
        )?,
        DocType::Payment | DocType::Receipt => need(ext.account.is_some(), "needs the cash/bank account")?,
        DocType::Expense | DocType::OtherIncome => {
            need(ext.account.is_some() && ext.category.is_some(), "needs the cash/bank account and a category")?
        }
        _ => {}
    }
    let assembly = doc_type == DocType::Assembly;
    let has = |r: LineRole| lines.iter().any(|l| l.role == r);
    if assembly {
        need(has(LineRole::Consumed) && has(LineRole::Produced) && !has(LineRole::Normal), "needs consumed and produced lines")?;
    } else {
        need(!has(LineRole::Consumed) && !has(LineRole::Produced), "only assemblies have consumed/produced lines")?;
    }
    // Money that reduces what a party owes or is owed may say which documents it clears:
    // payments and receipts, credit returns, and receivable/payable decreases.
    let settles_ok = matches!(
        doc_type,
        DocType::Payment
            | DocType::Receipt
            | DocType::SalesReturn
            | DocType::PurchaseReturn
            | DocType::ReceivableDecrease
            | DocType::PayableDecrease
    );
    need(ext.settles.is_empty() || settles_ok, "only payments, receipts, returns and decreases settle documents")?;
    need(
        ext.settles.is_empty() || doc_type.shape() != Shape::Goods || ext.account.is_none(),
        "a cash return settles nothing; leave out settles or account",
    )?;
    if doc_type.shape() == Shape::Goods && !ext.settles.is_empty() {
        let total: Decimal = lines.iter().map(|l| l.amount).sum();
        let settled: Decimal = ext.settles.iter().map(|s| s.amount).sum();
        need(
            ext.settles.iter().all(|s| s.amount > Decimal::ZERO && s.amount.scale() <= MONEY_SCALE),
            "each settled amount must be positive",
        )?;
        need(settled <= total, "settles more than the return is worth")?;
    }
    need(
        ext.reverses.is_none() || !matches!(doc_type, DocType::PeriodClose | DocType::PeriodReopen | DocType::Opening),
        "cannot be reversed",
    )?;
    need(ext.cost_method.is_none() || doc_type == DocType::Opening, "only the opening sets the cost method")?;
    match (doc_type, payment) {
        (DocType::Retail, None) => return Err(DocError::MissingPayment),
        (DocType::Retail, Some(p)) => p.check(lines.iter().map(|l| l.amount).sum())?,
        (_, Some(_)) => return Err(DocError::UnexpectedPayment { doc_type: name }),
        (_, None) => {}
    }
    Ok(())
}

fn validate_lines(lines: &[Line]) -> Result<(), DocError> {
    for (i, l) in lines.iter().enumerate() {
        let line = i + 1;
        if l.qty <= Decimal::ZERO {
            return Err(DocError::NonPositiveQty { line, qty: l.qty });
        }
        if l.unit_price < Decimal::ZERO {
            return Err(DocError::NegativePrice { line, price: l.unit_price });
        }
        if l.qty.scale() > QTY_SCALE_MAX {
            return Err(DocError::TooPrecise { line, field: "quantity", value: l.qty, max: QTY_SCALE_MAX });
        }
        if l.unit_price.scale() > PRICE_SCALE_MAX {
            return Err(DocError::TooPrecise { line, field: "unit price", value: l.unit_price, max: PRICE_SCALE_MAX });
        }
        if l.qty > QTY_MAX {
            return Err(DocError::Overflow { line });
        }
        let expected = round_money(l.qty.checked_mul(l.unit_price).ok_or(DocError::Overflow { line })?);
        if expected > AMOUNT_MAX {
            return Err(DocError::Overflow { line });
        }
        if l.amount != expected {
            return Err(DocError::AmountMismatch { line, given: l.amount, expected });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn draft() -> Draft {
        Draft {
            doc_type: DocType::Sale,
            date: BusinessDate::parse("2026-06-09").expect("date"),
            operator: OperatorId::new("sh-li").expect("op"),
            warehouse: WarehouseCode::new("SH01").expect("wh"),
            counterparty: Some(PartyCode::new("200102").expect("party")),
            memo: String::new(),
            payment: None,
            ext: Default::default(),
            lines: vec![Line::priced(ProductCode::new("6901234567892").expect("p"), dec!(3), dec!(1.335))],
        }
    }

    #[test]
    fn numbering_follows_the_seed_rule() {
        let doc = draft().number(BranchCode::new("SH").expect("b"), 1).expect("valid");
        assert_eq!(doc.header.number.to_string(), "XS-SH-0609-001");
        assert_eq!(DocNumber::parse("RS-SH-0609-001").ok(), None, "RS is not a type yet");
        let n = DocNumber::parse("XS-SH-0609-1234").expect("wide serial");
        assert_eq!(n.serial(), 1234);
        assert_eq!(n.to_string(), "XS-SH-0609-1234");
        for bad in
            ["XS-SH-0609-0001", "XS-SH-0609-000", "XS-SH-1309-001", "XS-sh-0609-001", "XS-SH-0609", "XS-SH-0609-01", "XS-SH-0609-001-2"]
        {
            assert!(DocNumber::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn amounts_round_half_away_from_zero() {
        // 3 x 1.335 = 4.005 -> 4.01 (half away from zero, not banker's 4.00).
        assert_eq!(draft().lines[0].amount, dec!(4.01));
        assert_eq!(round_money(dec!(-4.005)), dec!(-4.01));
    }

    #[test]
    fn bad_lines_are_refused() {
        let mut d = draft();
        d.lines[0].qty = dec!(-1);
        assert!(matches!(d.validate(), Err(DocError::NonPositiveQty { .. })));
        let mut d = draft();
        d.lines[0].amount = dec!(4.00);
        assert!(matches!(d.validate(), Err(DocError::AmountMismatch { .. })));
        let mut d = draft();
        d.counterparty = None;
        assert!(matches!(d.validate(), Err(DocError::MissingCounterparty { .. })));
        let mut d = draft();
        d.lines.clear();
        assert_eq!(d.validate(), Err(DocError::NoLines));
    }

    #[test]
    fn retail_needs_exact_change() {
        let mut d = draft();
        d.doc_type = DocType::Retail;
        d.counterparty = None;
        assert_eq!(d.validate(), Err(DocError::MissingPayment));
        // Total 4.01; tendered 10.00 → change 5.99.
        d.payment = Some(Payment { method: PaymentMethod::Cash, tendered: dec!(10.00), change: dec!(5.99) });
        assert_eq!(d.validate(), Ok(()));
        d.payment = Some(Payment { method: PaymentMethod::Cash, tendered: dec!(10.00), change: dec!(6.00) });
        assert!(matches!(d.validate(), Err(DocError::WrongChange { .. })));
        d.payment = Some(Payment { method: PaymentMethod::Cash, tendered: dec!(4.00), change: dec!(0) });
        assert!(matches!(d.validate(), Err(DocError::Underpaid { .. })));
        let mut sale = draft();
        sale.payment = Some(Payment { method: PaymentMethod::Card, tendered: dec!(4.01), change: dec!(0) });
        assert!(matches!(sale.validate(), Err(DocError::UnexpectedPayment { .. })));
    }

    #[test]
    fn retail_gives_change_only_for_cash() {
        let mut d = draft();
        d.doc_type = DocType::Retail;
        d.counterparty = None;
        // Total 4.01: card and mobile take exactly that.
        for method in [PaymentMethod::Card, PaymentMethod::Mobile] {
            d.payment = Some(Payment { method, tendered: dec!(4.01), change: dec!(0) });
            assert_eq!(d.validate(), Ok(()), "{method:?}, exact");
            // Change that adds up is still refused: only the drawer hands money back.
            d.payment = Some(Payment { method, tendered: dec!(5.00), change: dec!(0.99) });
            let e = d.validate().expect_err("card change");
            assert_eq!(e, DocError::ChangeNotCash { method: method.name(), total: dec!(4.01), tendered: dec!(5.00) });
            assert!(e.to_string().contains("change is given only for cash"), "{e}");
        }
        // The draft never gets a number...
        assert!(matches!(d.clone().number(BranchCode::new("SH").expect("b"), 1), Err(DocError::ChangeNotCash { .. })));
        // ...and a posted document carrying such a payment (HQ re-validates every one it
        // receives) is refused too.
        d.payment = Some(Payment { method: PaymentMethod::Card, tendered: dec!(4.01), change: dec!(0) });
        let mut doc = d.number(BranchCode::new("SH").expect("b"), 1).expect("exact card payment");
        assert_eq!(doc.validate(), Ok(()));
        doc.header.payment = Some(Payment { method: PaymentMethod::Card, tendered: dec!(10.00), change: dec!(5.99) });
        assert!(matches!(doc.validate(), Err(DocError::ChangeNotCash { .. })));
        // Cash keeps its change.
        doc.header.payment = Some(Payment { method: PaymentMethod::Cash, tendered: dec!(10.00), change: dec!(5.99) });
        assert_eq!(doc.validate(), Ok(()));
    }

    proptest::proptest! {
        /// `Payment::check` accepts exactly the payments the rules describe: enough, in
        /// cents, change = tendered - total, and change only for cash.
        #[test]
        fn payment_check_is_the_rule(
            total_cents in 0i64..1_000_000,
            tendered_cents in 0i64..1_000_000,
            change_cents in -10i64..1_000_000,
            method in proptest::sample::select(vec![PaymentMethod::Cash, PaymentMethod::Card, PaymentMethod::Mobile]),
        ) {
            let (total, tendered, change) =
                (Decimal::new(total_cents, 2), Decimal::new(tendered_cents, 2), Decimal::new(change_cents, 2));
            let ok = Payment { method, tendered, change }.check(total).is_ok();
            let rule = tendered >= total && change == tendered - total && (method == PaymentMethod::Cash || change.is_zero());
            proptest::prop_assert_eq!(ok, rule);
            // The change the rule asks for is always accepted for cash.
            let exact = Payment { method: PaymentMethod::Cash, tendered, change: tendered - total }.check(total);
            proptest::prop_assert_eq!(exact.is_ok(), tendered >= total);
        }
    }

    #[test]
    fn tampered_header_is_caught() {
        let mut doc = draft().number(BranchCode::new("SH").expect("b"), 7).expect("valid");
        doc.header.date = BusinessDate::parse("2026-06-10").expect("date");
        assert!(matches!(doc.validate(), Err(DocError::NumberMismatch { what: "date", .. })));
    }
}
