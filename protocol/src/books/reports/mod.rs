//! Read-side views computed from the books: the statements and ledgers people ask for.
//! Pure functions of `Books` (and an "as of" date where ageing needs one). [`query`] is
//! the one way a report is asked for by name with query-string parameters, so the HTTP
//! handlers on branch and HQ only pick the books and serialize (JSON, or [`to_csv`]).
//!
//! Must not: read the clock (the caller passes today) or do I/O (CSV is written to memory).

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::Serialize;

use super::accounts::{self as acc, Class};
use super::{Books, Side};
use crate::date::BusinessDate;
use crate::document::{round_half_away, Period};

mod drill;
mod query;
pub use drill::{drill_row, DrillQuery, DRILL_ROWS_DEFAULT, DRILL_ROWS_MAX};
pub use query::*;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TrialBalanceRow {
    pub account: String,
    pub name: &'static str,
    #[serde(with = "crate::decimal_serde")]
    pub debit: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub credit: Decimal,
}

/// Every account with a balance, debit or credit side. Debits total credits, always.
pub fn trial_balance(books: &Books) -> Vec<TrialBalanceRow> {
    books
        .gl()
        .iter()
        .filter(|(_, v)| !v.is_zero())
        .map(|(a, v)| TrialBalanceRow {
            account: a.to_string(),
            name: acc::name(a.chart()),
            debit: (*v).max(Decimal::ZERO),
            credit: (-*v).max(Decimal::ZERO),
        })
        .collect()
}

/// 损益表: income, expenses and profit of the months `from`..=`to` (credit-positive
/// income), with the year to date beside it. Built from the books' income and expense
/// per month, which leave closing entries out, so a year-end carry does not empty it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct IncomeStatement {
    /// The months' totals, first and last month (`YYYY-MM`) included; read through
    /// `Deref` (`statement.revenue`), and flat in JSON beside `lines`.
    #[serde(flatten)]
    pub totals: ProfitFigures,
    pub lines: Vec<TrialBalanceRow>,
    /// The same figures from January of the year of `to` (or of the as-of date, when that
    /// is earlier) through that month: 本年累计.
    pub year_to_date: ProfitFigures,
}

impl std::ops::Deref for IncomeStatement {
    type Target = ProfitFigures;
    fn deref(&self) -> &ProfitFigures {
        &self.totals
    }
}

/// The totals of an income statement for some months.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct ProfitFigures {
    pub from: String,
    pub to: String,
    #[serde(with = "crate::decimal_serde")]
    pub revenue: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub cost_of_sales: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub gross_profit: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub other_income: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub expenses: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub net_profit: Decimal,
}

/// Income and expense of the months `from`..=`to`, per account (debit-positive).
fn pl_between(books: &Books, from: Period, to: Period) -> BTreeMap<crate::codes::AccountCode, Decimal> {
    let mut by_account = BTreeMap::new();
    for ((p, a), v) in books.pl() {
        if *p >= from && *p <= to {
            *by_account.entry(*a).or_insert(Decimal::ZERO) += *v;
        }
    }
    by_account
}

fn figures(by_account: &BTreeMap<crate::codes::AccountCode, Decimal>, from: Period, to: Period) -> ProfitFigures {
    let mut f = ProfitFigures { from: from.label(), to: to.label(), ..ProfitFigures::default() };
    for (a, v) in by_account {
        let chart = a.chart();
        match acc::class(chart) {
            Class::Income if chart == acc::REVENUE => f.revenue -= *v,
            Class::Income => f.other_income -= *v,
            Class::Expense if chart == acc::COST_OF_SALES => f.cost_of_sales += *v,
            Class::Expense => f.expenses += *v,
            _ => {}
        }
    }
    f.gross_profit = f.revenue - f.cost_of_sales;
    f.net_profit = f.gross_profit + f.other_income - f.expenses;
    f
}

/// The income statement over everything posted (the year to date is that of the latest
/// month posted).
pub fn income_statement(books: &Books) -> IncomeStatement {
    let last = books.pl().keys().map(|(p, _)| *p).max().unwrap_or(Period { year: 2000, month: 1 });
    income_statement_for(books, Period { year: 2000, month: 1 }, Period { year: 2199, month: 12 }, last)
}

/// The income statement of `from`..=`to`, with the year to date through the earlier of
/// `to` and `ytd_through` (the month of the as-of date: the default `to` is far ahead).
pub fn income_statement_for(books: &Books, from: Period, to: Period, ytd_through: Period) -> IncomeStatement {
    let by_account = pl_between(books, from, to);
    let f = figures(&by_account, from, to);
    let ytd_to = to.min(ytd_through);
    let ytd_from = Period { year: ytd_to.year, month: 1 };
    let year_to_date = figures(&pl_between(books, ytd_from, ytd_to), ytd_from, ytd_to);
    let lines = by_account
        .iter()
        .filter(|(_, v)| !v.is_zero())
        .map(|(a, v)| TrialBalanceRow {
            account: a.to_string(),
            name: acc::name(a.chart()),
            debit: (*v).max(Decimal::ZERO),
            credit: (-*v).max(Decimal::ZERO),
        })
        .collect();
    IncomeStatement { totals: f, lines, year_to_date }
}

/// 资产负债表. Payables with a debit balance are shown as advances to suppliers and
/// receivables with a credit balance as advances from customers, party by party.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct BalanceSheet {
    pub assets: BTreeMap<String, Dec>,
    pub liabilities: BTreeMap<String, Dec>,
    pub equity: BTreeMap<String, Dec>,
    #[serde(with = "crate::decimal_serde")]
    pub total_assets: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub total_liabilities_and_equity: Decimal,
}

pub use crate::decimal_serde::Dec;

pub fn balance_sheet(books: &Books) -> BalanceSheet {
    let mut bs = BalanceSheet::default();
    let add = |m: &mut BTreeMap<String, Dec>, k: &str, v: Decimal| m.entry(format!("{k} {}", acc::name(k))).or_default().0 += v;
    let mut profit = Decimal::ZERO;
    for (a, v) in books.gl() {
        let chart = a.chart();
        match acc::class(chart) {
            Class::Asset if chart == acc::RECEIVABLE || chart == acc::PAYABLE => {}
            Class::Asset => add(&mut bs.assets, chart, *v),
            Class::Liability if chart == acc::PAYABLE => {}
            Class::Liability => add(&mut bs.liabilities, chart, -*v),
            Class::Equity => add(&mut bs.equity, chart, -*v),
            Class::Income | Class::Expense => profit -= *v,
        }
    }
    // Receivables and payables from the sub-ledger, so advances land on the right side.
    for ((side, _), v) in books.parties() {
        match (side, *v >= Decimal::ZERO) {
            (Side::Receivable, true) => add(&mut bs.assets, acc::RECEIVABLE, *v),
            (Side::Receivable, false) => add(&mut bs.liabilities, acc::ADVANCES_FROM_CUSTOMERS, -*v),
            (Side::Payable, true) => add(&mut bs.liabilities, acc::PAYABLE, *v),
            (Side::Payable, false) => add(&mut bs.assets, acc::ADVANCES_TO_SUPPLIERS, -*v),
        }
    }
    bs.equity.insert("本期利润 profit to date".into(), Dec(profit));
    for m in [&mut bs.assets, &mut bs.liabilities, &mut bs.equity] {
        m.retain(|_, v| !v.0.is_zero());
    }
    bs.total_assets = bs.assets.values().map(|d| d.0).sum();
    bs.total_liabilities_and_equity = bs.liabilities.values().chain(bs.equity.values()).map(|d| d.0).sum();
    bs
}

/// One party's balance with ageing buckets of its open items (days past the item date).
/// The buckets and `unapplied` always add up to `balance` (see [`ageing`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AgeingRow {
    pub party: String,
    #[serde(with = "crate::decimal_serde")]
    pub balance: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub days_0_30: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub days_31_60: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub days_61_90: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub days_over_90: Decimal,
    /// What is on the balance but on no open document: negative is money received (or
    /// paid) beyond every open document, an advance; positive is a balance no document
    /// carries.
    #[serde(with = "crate::decimal_serde")]
    pub unapplied: Decimal,
    /// Open documents, for drilling down: (number, date, open amount as aged, i.e. after
    /// unapplied money was applied oldest-first).
    pub items: Vec<(String, String, Dec)>,
}

/// Ageing of receivables or payables as of `as_of`. Money that named no document (a
/// receipt or payment without `settles`, a decrease without one) lowers the balance but
/// no open item; the report applies it to the party's open documents **oldest first**
/// (by date, then number), as an accountant clearing the oldest invoice first would, so
/// an invoice partly covered shows only what is still owed. What is left over is
/// `unapplied`. So `days_0_30 + days_31_60 + days_61_90 + days_over_90 + unapplied ==
/// balance` for every row. The books' open items are not changed: settling a document
/// by name stays possible.
pub fn ageing(books: &Books, side: Side, as_of: BusinessDate) -> Vec<AgeingRow> {
    // Per party: its open documents, oldest first.
    let mut open: BTreeMap<&str, Vec<(BusinessDate, String, Decimal)>> = BTreeMap::new();
    for ((n, party), item) in books.open_items() {
        if item.side == side && !item.open.is_zero() {
            open.entry(party.as_str()).or_default().push((item.date, n.to_string(), item.open));
        }
    }
    let mut rows = Vec::new();
    for ((_, party), balance) in books.parties().iter().filter(|((s, _), _)| *s == side) {
        let mut items = open.remove(party.as_str()).unwrap_or_default();
        items.sort();
        let open_total: Decimal = items.iter().map(|i| i.2).sum();
        // Money on the balance but on no document, applied oldest first.
        let mut credit = (open_total - *balance).max(Decimal::ZERO);
        let mut row = AgeingRow {
            party: party.to_string(),
            balance: *balance,
            days_0_30: Decimal::ZERO,
            days_31_60: Decimal::ZERO,
            days_61_90: Decimal::ZERO,
            days_over_90: Decimal::ZERO,
            unapplied: Decimal::ZERO,
            items: Vec::new(),
        };
        for (date, n, amount) in items {
            let applied = credit.min(amount);
            credit -= applied;
            let left = amount - applied;
            if left.is_zero() {
                continue;
            }
            let days = as_of.day_number().saturating_sub(date.day_number());
            let bucket = match days {
                0..=30 => &mut row.days_0_30,
                31..=60 => &mut row.days_31_60,
                61..=90 => &mut row.days_61_90,
                _ => &mut row.days_over_90,
            };
            *bucket += left;
            row.items.push((n, date.to_string(), Dec(left)));
        }
        row.unapplied = *balance - (row.days_0_30 + row.days_31_60 + row.days_61_90 + row.days_over_90);
        if !row.balance.is_zero() || !row.items.is_empty() {
            rows.push(row);
        }
    }
    rows
}

/// Cash and bank balances (the cash/bank sub-ledger is the accounts themselves).
pub fn cash_and_bank(books: &Books) -> Vec<(String, Dec)> {
    books.gl().iter().filter(|(a, v)| acc::is_money(a) && !v.is_zero()).map(|(a, v)| (a.to_string(), Dec(*v))).collect()
}

/// Sales by a chosen dimension over `periods` (inclusive), with gross margin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SalesBy {
    Product,
    Customer,
    Warehouse,
    Handler,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SalesRow {
    pub key: String,
    #[serde(with = "crate::decimal_serde")]
    pub qty: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub revenue: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub cost: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub gross_profit: Decimal,
    /// Gross margin in percent, two places; zero without revenue.
    #[serde(with = "crate::decimal_serde")]
    pub margin_pct: Decimal,
}

pub fn sales(books: &Books, by: SalesBy, from: Period, to: Period) -> Vec<SalesRow> {
    let mut agg: BTreeMap<String, (Decimal, Decimal, Decimal)> = BTreeMap::new();
    for (k, t) in books.sales().iter().filter(|(k, _)| k.period >= from && k.period <= to) {
        let key = match by {
            SalesBy::Product => k.product.to_string(),
            SalesBy::Customer => k.customer.as_ref().map(|c| c.to_string()).unwrap_or_else(|| "(walk-in)".into()),
            SalesBy::Warehouse => k.warehouse.to_string(),
            SalesBy::Handler => k.handler.to_string(),
        };
        let e = agg.entry(key).or_default();
        e.0 += t.qty;
        e.1 += t.revenue;
        e.2 += t.cost;
    }
    let mut rows: Vec<SalesRow> = agg
        .into_iter()
        .map(|(key, (qty, revenue, cost))| {
            let gp = revenue - cost;
            // Checked: figures near the books' limit must not panic a report.
            let margin_pct = if revenue.is_zero() {
                Decimal::ZERO
            } else {
                let pct = gp.checked_mul(Decimal::ONE_HUNDRED).and_then(|x| x.checked_div(revenue));
                round_half_away(
                    pct.or_else(|| gp.checked_div(revenue).and_then(|r| r.checked_mul(Decimal::ONE_HUNDRED))).unwrap_or_default(),
                    2,
                )
            };
            SalesRow { key, qty, revenue, cost, gross_profit: gp, margin_pct }
        })
        .collect();
    // A ranking: best revenue first.
    rows.sort_by(|a, b| b.revenue.cmp(&a.revenue).then_with(|| a.key.cmp(&b.key)));
    rows
}

/// 购销存汇总: per warehouse and product, opening, in, out and closing over a period range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FlowRow {
    pub warehouse: String,
    pub product: String,
    #[serde(with = "crate::decimal_serde")]
    pub opening_qty: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub opening_value: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub in_qty: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub in_value: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub out_qty: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub out_value: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub closing_qty: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub closing_value: Decimal,
}

pub fn purchase_sales_stock(books: &Books, from: Period, to: Period) -> Vec<FlowRow> {
    let mut rows: BTreeMap<(String, String), FlowRow> = BTreeMap::new();
    for ((period, w, p), f) in books.flows() {
        if *period > to {
            continue;
        }
        let r = rows.entry((w.to_string(), p.to_string())).or_insert_with(|| FlowRow {
            warehouse: w.to_string(),
            product: p.to_string(),
            opening_qty: Decimal::ZERO,
            opening_value: Decimal::ZERO,
            in_qty: Decimal::ZERO,
            in_value: Decimal::ZERO,
            out_qty: Decimal::ZERO,
            out_value: Decimal::ZERO,
            closing_qty: Decimal::ZERO,
            closing_value: Decimal::ZERO,
        });
        if *period < from {
            r.opening_qty += f.in_qty - f.out_qty;
            r.opening_value += f.in_value - f.out_value;
        } else {
            r.in_qty += f.in_qty;
            r.in_value += f.in_value;
            r.out_qty += f.out_qty;
            r.out_value += f.out_value;
        }
        r.closing_qty = r.opening_qty + r.in_qty - r.out_qty;
        r.closing_value = r.opening_value + r.in_value - r.out_value;
    }
    rows.into_values().collect()
}

/// 库存状况表 / 库存分布表: per product, quantity and value in every warehouse, plus
/// goods at dealers on consignment and lent out (quantity only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StockRow {
    pub warehouse: String,
    pub product: String,
    #[serde(with = "crate::decimal_serde")]
    pub qty: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub value: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub average_cost: Decimal,
}

pub fn stock_status(books: &Books) -> Vec<StockRow> {
    books
        .positions()
        .filter(|(_, p)| !p.is_zero())
        .map(|((w, p), pos)| StockRow {
            warehouse: w.to_string(),
            product: p.to_string(),
            qty: pos.qty,
            value: pos.value,
            average_cost: pos.average_cost(),
        })
        .collect()
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DistributionRow {
    pub product: String,
    /// Warehouse → quantity.
    pub warehouses: BTreeMap<String, Dec>,
    #[serde(with = "crate::decimal_serde")]
    pub total_qty: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub total_value: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub consigned_out_qty: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub lent_out_qty: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub borrowed_in_qty: Decimal,
}

pub fn stock_distribution(books: &Books) -> Vec<DistributionRow> {
    let mut rows: BTreeMap<String, DistributionRow> = BTreeMap::new();
    for ((w, p), pos) in books.positions().filter(|(_, p)| !p.is_zero()) {
        let r = entry(&mut rows, p.as_str());
        r.warehouses.entry(w.to_string()).or_default().0 += pos.qty;
        r.total_qty += pos.qty;
        r.total_value += pos.value;
    }
    for ((kind, _, p), pos) in books.consignment() {
        if *kind == super::Consignment::OutToDealer && !pos.qty.is_zero() {
            entry(&mut rows, p.as_str()).consigned_out_qty += pos.qty;
        }
    }
    for ((kind, _, p), q) in books.loans().iter().filter(|(_, q)| !q.is_zero()) {
        let r = entry(&mut rows, p.as_str());
        match kind {
            super::Loan::LentOut => r.lent_out_qty += *q,
            super::Loan::BorrowedIn => r.borrowed_in_qty += *q,
        }
    }
    rows.into_values().collect()
}

fn entry<'a>(rows: &'a mut BTreeMap<String, DistributionRow>, p: &str) -> &'a mut DistributionRow {
    rows.entry(p.to_string()).or_insert_with(|| DistributionRow {
        product: p.to_string(),
        warehouses: BTreeMap::new(),
        total_qty: Decimal::ZERO,
        total_value: Decimal::ZERO,
        consigned_out_qty: Decimal::ZERO,
        lent_out_qty: Decimal::ZERO,
        borrowed_in_qty: Decimal::ZERO,
    })
}
