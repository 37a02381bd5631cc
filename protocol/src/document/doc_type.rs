//! The document types (单据类型): seed codes, names in English and Chinese, the shape
//! each has (which decides how it is validated), and parsing a type from what people type.
//! Must not: validate documents (that is `validate`) or number them (`number`).

use super::*;

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
    /// 调拨出库: goods leave for another branch on an HQ transfer order (`ext.transfer`),
    /// at cost, into 内部往来; `ext.layers` names the cost layers taken.
    TransferShip = "DBCK", "transfer shipment", None, Goods;
    /// 调拨入库: goods of another branch's shipment arrive, at the shipped cost (`ext.layers`).
    TransferReceive = "DBRK", "transfer receipt", None, Goods;
    /// 调拨差异处理: a shortfall or excess of a transfer, settled as HQ decided.
    TransferSettle = "DBCY", "transfer discrepancy settlement", None, Goods;
    /// 调拨申请 / 要货: a store asks HQ for goods; no effect on the books until HQ turns it
    /// into a transfer order.
    TransferRequest = "DBSQ", "replenishment request", None, Goods;
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
            DocType::TransferShip => &["调拨出库"],
            DocType::TransferReceive => &["调拨入库"],
            DocType::TransferSettle => &["调拨差异处理"],
            DocType::TransferRequest => &["调拨申请", "要货"],
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
