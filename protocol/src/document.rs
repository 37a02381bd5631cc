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

use crate::codes::{BranchCode, OperatorId, PartyCode, ProductCode, WarehouseCode};
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

/// Rounds a money amount the way Chinese bookkeeping does (四舍五入: half away from zero)
/// to cents. Every amount the core computes goes through here, so both sides round alike.
pub fn round_money(d: Decimal) -> Decimal {
    let mut r = d.round_dp_with_strategy(MONEY_SCALE, RoundingStrategy::MidpointAwayFromZero);
    // Always two places, so amounts read as money ("25.00", not "25.0").
    r.rescale(MONEY_SCALE);
    r
}

/// Which way a document moves stock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StockEffect {
    /// Goods come in at the line's price (purchase receipt, stock gain).
    In,
    /// Goods go out at the current cost (sale, stock loss).
    Out,
}

/// Document types. Adding one: a variant, its seed code, its effect, its counterparty rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum DocType {
    /// 采购入库 / 进货单: goods in from a supplier.
    PurchaseReceipt,
    /// 销售出库 / 销售单 (XS): goods out to a customer.
    Sale,
    /// 报损 (BS): stock loss.
    StockLoss,
    /// 报溢 (BY): stock gain.
    StockGain,
    /// 零售 (LS): a POS sale to a walk-in customer, paid at the till.
    Retail,
}

impl DocType {
    pub const ALL: [DocType; 5] = [DocType::PurchaseReceipt, DocType::Sale, DocType::StockLoss, DocType::StockGain, DocType::Retail];

    /// The type code used in document numbers (seed 003: XS, BS, BY; JH for 进货).
    pub fn code(self) -> &'static str {
        match self {
            DocType::PurchaseReceipt => "JH",
            DocType::Sale => "XS",
            DocType::StockLoss => "BS",
            DocType::StockGain => "BY",
            DocType::Retail => "LS",
        }
    }

    pub fn from_code(code: &str) -> Option<DocType> {
        DocType::ALL.into_iter().find(|t| t.code() == code)
    }

    pub fn effect(self) -> StockEffect {
        match self {
            DocType::PurchaseReceipt | DocType::StockGain => StockEffect::In,
            DocType::Sale | DocType::StockLoss | DocType::Retail => StockEffect::Out,
        }
    }

    /// The counterparty this type needs, if any: (role name for messages).
    fn counterparty_role(self) -> Option<&'static str> {
        match self {
            DocType::PurchaseReceipt => Some("supplier"),
            DocType::Sale => Some("customer"),
            DocType::StockLoss | DocType::StockGain | DocType::Retail => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DocType::PurchaseReceipt => "purchase receipt",
            DocType::Sale => "sale",
            DocType::StockLoss => "stock loss",
            DocType::StockGain => "stock gain",
            DocType::Retail => "retail sale",
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

/// One document line: product, quantity, unit price, amount (= qty x price, to the cent).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub product: ProductCode,
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
        Line { product, qty, unit_price, amount }
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

/// Payment taken at the till for a retail sale: `change = tendered - total`, exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub method: PaymentMethod,
    #[serde(with = "crate::decimal_serde")]
    pub tendered: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub change: Decimal,
}

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
    pub lines: Vec<Line>,
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
        validate_parts(self.doc_type, &self.counterparty, &self.memo, self.payment.as_ref(), &self.lines)
    }

    /// Turns a valid draft into a posted document with the given serial.
    pub fn number(self, branch: BranchCode, serial: u32) -> Result<Document, DocError> {
        self.validate()?;
        let number = DocNumber::new(self.doc_type, branch.clone(), self.date, serial);
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
            },
            lines: self.lines,
        })
    }
}

impl Document {
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
        validate_parts(h.doc_type, &h.counterparty, &h.memo, h.payment.as_ref(), &self.lines)
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
) -> Result<(), DocError> {
    if lines.is_empty() {
        return Err(DocError::NoLines);
    }
    if lines.len() > DOC_LINES_MAX {
        return Err(DocError::TooManyLines { count: lines.len(), max: DOC_LINES_MAX });
    }
    if let Some(role) = doc_type.counterparty_role() {
        if counterparty.is_none() {
            return Err(DocError::MissingCounterparty { doc_type: doc_type.name(), role });
        }
    }
    let memo_chars = memo.chars().count();
    if memo_chars > MEMO_CHARS_MAX {
        return Err(DocError::MemoTooLong { len: memo_chars, max: MEMO_CHARS_MAX });
    }
    validate_lines(lines)?;
    match (doc_type, payment) {
        (DocType::Retail, None) => return Err(DocError::MissingPayment),
        (DocType::Retail, Some(p)) => {
            let total: Decimal = lines.iter().map(|l| l.amount).sum();
            if p.tendered < total {
                return Err(DocError::Underpaid { total, tendered: p.tendered });
            }
            if p.tendered.scale() > MONEY_SCALE || p.change != p.tendered - total {
                return Err(DocError::WrongChange { total, tendered: p.tendered, change: p.change, expected: p.tendered - total });
            }
        }
        (_, Some(_)) => return Err(DocError::UnexpectedPayment { doc_type: doc_type.name() }),
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
        let expected = round_money(l.qty.checked_mul(l.unit_price).ok_or(DocError::Overflow { line })?);
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
        for bad in ["XS-SH-0609-0001", "XS-SH-0609-000", "XS-SH-1309-001", "XS-sh-0609-001", "XS-SH-0609", "XS-SH-0609-01", "XS-SH-0609-001-2"] {
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
    fn tampered_header_is_caught() {
        let mut doc = draft().number(BranchCode::new("SH").expect("b"), 7).expect("valid");
        doc.header.date = BusinessDate::parse("2026-06-10").expect("date");
        assert!(matches!(doc.validate(), Err(DocError::NumberMismatch { what: "date", .. })));
    }
}
