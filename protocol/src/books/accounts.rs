//! The chart of accounts: a small fixed chart after the Chinese small-business standard
//! (小企业会计准则) numbering, with sub-accounts (`1002.ICBC`, `6601.RENT`) made by
//! documents as needed.
//!
//! Must not: hold balances (that is `Books`) or post (that is `posting`).

use crate::codes::AccountCode;

pub const CASH: &str = "1001";
pub const BANK: &str = "1002";
pub const RECEIVABLE: &str = "1122";
/// Presentation only: a debit balance on payables is shown as advances to suppliers.
pub const ADVANCES_TO_SUPPLIERS: &str = "1123";
/// 其他应收款: a claim against a carrier for goods lost in transit.
pub const OTHER_RECEIVABLE: &str = "1221";
pub const CONSIGNED_IN_GOODS: &str = "1321";
/// 在途物资: goods between branches, at the shipped cost. Only in consolidated statements,
/// where 内部往来 and 内部调拨差价 are eliminated into it; no branch posts to it.
pub const GOODS_IN_TRANSIT: &str = "1402";
pub const INVENTORY: &str = "1405";
pub const CONSIGNED_OUT_GOODS: &str = "1406";
/// 内部往来: what one branch owes or is owed by the others for goods transferred between
/// them (the shipper debits it, the receiver credits it); eliminated in consolidation.
pub const INTER_BRANCH: &str = "1560";
pub const PAYABLE: &str = "2202";
/// Presentation only: a credit balance on receivables is shown as advances from customers.
pub const ADVANCES_FROM_CUSTOMERS: &str = "2203";
pub const CONSIGNED_IN_PAYABLE: &str = "2314";
pub const EQUITY: &str = "4001";
/// 本年利润: where the year-end close gathers the year's income and expenses.
pub const PROFIT_THIS_YEAR: &str = "3103";
/// 利润分配—未分配利润: where the year-end close carries the year's profit.
pub const RETAINED_EARNINGS: &str = "3104";
pub const REVENUE: &str = "6001";
/// 内部调拨差价: the transfer price less cost of goods moved between branches (the
/// shipper's credit, the receiver's debit); eliminated in consolidation, so the company
/// shows no intercompany profit.
pub const TRANSFER_MARGIN: &str = "6052";
pub const OTHER_INCOME: &str = "6301";
pub const COST_OF_SALES: &str = "6401";
pub const TRANSFER_PRICE_DIFFERENCE: &str = "6402";
pub const COST_ADJUSTMENT_DIFFERENCE: &str = "6403";
pub const EXPENSES: &str = "6601";
pub const INVENTORY_OVER_SHORT: &str = "6711";

/// Where an account goes in the statements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Class {
    Asset,
    Liability,
    Equity,
    Income,
    Expense,
}

pub fn class(chart: &str) -> Class {
    match chart.as_bytes().first() {
        Some(b'1') => Class::Asset,
        Some(b'2') => Class::Liability,
        Some(b'3') | Some(b'4') => Class::Equity,
        _ if chart < "6400" => Class::Income,
        _ => Class::Expense,
    }
}

pub fn name(chart: &str) -> &'static str {
    match chart {
        CASH => "库存现金 cash",
        BANK => "银行存款 bank",
        RECEIVABLE => "应收账款 receivables",
        ADVANCES_TO_SUPPLIERS => "预付账款 advances to suppliers",
        CONSIGNED_IN_GOODS => "受托代销商品 consigned-in goods",
        OTHER_RECEIVABLE => "其他应收款 other receivables",
        GOODS_IN_TRANSIT => "在途物资 goods in transit",
        INTER_BRANCH => "内部往来 inter-branch",
        TRANSFER_MARGIN => "内部调拨差价 inter-branch transfer margin",
        INVENTORY => "库存商品 inventory",
        CONSIGNED_OUT_GOODS => "发出商品 goods on consignment",
        PAYABLE => "应付账款 payables",
        ADVANCES_FROM_CUSTOMERS => "预收账款 advances from customers",
        CONSIGNED_IN_PAYABLE => "受托代销商品款 consigned-in goods payable",
        EQUITY => "实收资本 equity",
        PROFIT_THIS_YEAR => "本年利润 profit this year",
        RETAINED_EARNINGS => "利润分配 retained earnings",
        REVENUE => "主营业务收入 revenue",
        OTHER_INCOME => "其他收入 other income",
        COST_OF_SALES => "主营业务成本 cost of goods sold",
        TRANSFER_PRICE_DIFFERENCE => "调拨价差 transfer price difference",
        COST_ADJUSTMENT_DIFFERENCE => "成本调价差 cost adjustment difference",
        EXPENSES => "费用 expenses",
        INVENTORY_OVER_SHORT => "盘盈盘亏 inventory over/short",
        _ => "其他 other",
    }
}

/// Accounts whose balance is carried by a sub-ledger; manual entries may not touch them,
/// or the sub-ledger and the general ledger would disagree.
pub fn is_control(chart: &str) -> bool {
    matches!(
        chart,
        RECEIVABLE
            | PAYABLE
            | INVENTORY
            | CONSIGNED_OUT_GOODS
            | CONSIGNED_IN_GOODS
            | CONSIGNED_IN_PAYABLE
            | INTER_BRANCH
            | TRANSFER_MARGIN
            | GOODS_IN_TRANSIT
    )
}

/// Cash and bank accounts (the cash/bank sub-ledger is these accounts themselves).
pub fn is_money(account: &AccountCode) -> bool {
    matches!(account.chart(), CASH | BANK)
}

pub fn code(chart: &str) -> AccountCode {
    AccountCode::parse(chart).expect("chart constants are valid account codes")
}
