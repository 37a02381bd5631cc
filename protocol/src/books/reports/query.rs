//! Reports by name: [`query`] (the one entry both binaries' handlers call: the
//! query-string parameters checked, then the report run), the `Report` every one of them
//! returns, its typed `ReportError`, and [`to_csv`] for Excel. Must not compute a figure
//! itself: every statement is a function of `super` (the parent module).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::*;
use crate::date::BusinessDate;
use crate::document::Period;
use crate::error::CodeError;

/// Names of the reports [`run`] answers, for help texts and errors.
pub const REPORT_NAMES: &[&str] = &[
    "stock-status",
    "stock-distribution",
    "trial-balance",
    "income-statement",
    "balance-sheet",
    "receivables",
    "payables",
    "cash",
    "sales",
    "purchase-sales-stock",
    "digest",
];

/// Parameters of a report; each report reads what it needs.
#[derive(Clone, Copy, Debug)]
pub struct ReportParams {
    pub from: Period,
    pub to: Period,
    pub by: SalesBy,
    /// Ageing reference date (the caller supplies today; the core reads no clock).
    pub as_of: BusinessDate,
}

/// Any report, ready to serialize (JSON for the APIs, rows for CSV).
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum Report {
    Stock(Vec<StockRow>),
    Distribution(Vec<DistributionRow>),
    Trial(Vec<TrialBalanceRow>),
    // Boxed: the statement (with its year to date) is several times the other variants.
    Income(Box<IncomeStatement>),
    Balance(BalanceSheet),
    Ageing(Vec<AgeingRow>),
    Cash(Vec<CashRow>),
    Sales(Vec<SalesRow>),
    Flow(Vec<FlowRow>),
    Digest { digest: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CashRow {
    pub account: String,
    #[serde(with = "crate::decimal_serde")]
    pub balance: Decimal,
}

/// Runs the report called `name`; `None` if there is no such report.
pub fn run(books: &Books, name: &str, p: ReportParams) -> Option<Report> {
    Some(match name {
        "stock-status" => Report::Stock(stock_status(books)),
        "stock-distribution" => Report::Distribution(stock_distribution(books)),
        "trial-balance" => Report::Trial(trial_balance(books)),
        "income-statement" => Report::Income(Box::new(income_statement_for(books, p.from, p.to, Period::of(p.as_of)))),
        "balance-sheet" => Report::Balance(balance_sheet(books)),
        "receivables" => Report::Ageing(ageing(books, Side::Receivable, p.as_of)),
        "payables" => Report::Ageing(ageing(books, Side::Payable, p.as_of)),
        "cash" => Report::Cash(cash_and_bank(books).into_iter().map(|(account, d)| CashRow { account, balance: d.0 }).collect()),
        "sales" => Report::Sales(sales(books, p.by, p.from, p.to)),
        "purchase-sales-stock" => Report::Flow(purchase_sales_stock(books, p.from, p.to)),
        "digest" => Report::Digest { digest: crate::hex::encode(&books.digest()) },
        _ => return None,
    })
}

impl SalesBy {
    pub fn parse(s: &str) -> Option<SalesBy> {
        match s {
            "product" => Some(SalesBy::Product),
            "customer" => Some(SalesBy::Customer),
            "warehouse" => Some(SalesBy::Warehouse),
            "handler" => Some(SalesBy::Handler),
            _ => None,
        }
    }
}

/// Why a report request cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// `from` or `to` is not a month `YYYY-MM`.
    #[error("from/to: {0}")]
    Month(CodeError),
    /// `by` names no sales dimension.
    #[error("by={0:?}: use product, customer, warehouse or handler")]
    By(String),
    /// `as_of` is not a date `YYYY-MM-DD`.
    #[error("as_of: {0}")]
    AsOf(CodeError),
    /// No report has this name.
    #[error("no report {0:?}; reports: {names}", names = REPORT_NAMES.join(", "))]
    NoSuchReport(String),
}

impl ReportError {
    /// The request named a report that does not exist (HTTP 404), rather than giving a bad
    /// parameter (400).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReportError::NoSuchReport(_))
    }
}

/// A report's parameters as the query string gave them, unparsed.
#[derive(Clone, Copy, Debug, Default)]
pub struct RawQuery<'a> {
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub by: Option<&'a str>,
    pub as_of: Option<&'a str>,
}

/// Runs the report called `name` on `books` with the parameters of `q` (see
/// [`ReportParams::parse`]; `today` is the default `as_of`). Parameters are checked first,
/// so a bad one is reported even for an unknown name, as the handlers always did.
pub fn query(books: &Books, name: &str, q: &RawQuery<'_>, today: BusinessDate) -> Result<Report, ReportError> {
    let params = ReportParams::parse(q.from, q.to, q.by, q.as_of, today)?;
    run(books, name, params).ok_or_else(|| ReportError::NoSuchReport(name.chars().take(64).collect()))
}

impl ReportParams {
    /// From query-string values: months `YYYY-MM`, `by` a sales dimension, `as_of`
    /// `YYYY-MM-DD` (default `today`, which the caller reads from its clock).
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        by: Option<&str>,
        as_of: Option<&str>,
        today: BusinessDate,
    ) -> Result<ReportParams, ReportError> {
        let month = |s: Option<&str>, default: Period| s.map_or(Ok(default), |s| Period::parse(s).map_err(ReportError::Month));
        Ok(ReportParams {
            from: month(from, Period { year: 2000, month: 1 })?,
            to: month(to, Period { year: 2199, month: 12 })?,
            by: match by {
                None => SalesBy::Product,
                Some(b) => SalesBy::parse(b).ok_or_else(|| ReportError::By(b.chars().take(64).collect()))?,
            },
            as_of: as_of.map_or(Ok(today), |d| BusinessDate::parse(d).map_err(ReportError::AsOf))?,
        })
    }
}

/// A report as CSV for Excel: a UTF-8 BOM (so Excel reads Chinese names), a header row
/// and one row per report row; nested values are written as JSON text. Statements that
/// are a single object (income statement, balance sheet) come out as one row. Columns
/// are the first row's fields in the order the row's type declares them.
pub fn to_csv(report: &Report) -> String {
    // serde_json's `Value` would sort the fields by name; the text keeps their order.
    let text = serde_json::to_string(report).unwrap_or_default();
    let rows = match serde_json::from_str::<Rows>(&text) {
        Ok(Rows::Many(rows)) => rows,
        Ok(Rows::One(row)) => vec![row],
        Ok(Rows::Other(_)) | Err(_) => Vec::new(),
    };
    let Some(first) = rows.first() else { return crate::sheet::EXCEL_BOM.to_string() };
    let cols: Vec<&str> = first.0.iter().map(|(k, _)| k.as_str()).collect();
    let cells = |r: &Fields| -> Vec<String> {
        cols.iter()
            .map(|c| match r.0.iter().find(|(k, _)| k == c).map(|(_, v)| v) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            })
            .collect()
    };
    crate::sheet::excel(&cols, rows.iter().map(cells))
}

/// A report's JSON: rows, one object, or something else (no rows).
#[derive(Deserialize)]
#[serde(untagged)]
enum Rows {
    Many(Vec<Fields>),
    One(Fields),
    Other(serde::de::IgnoredAny),
}

/// A JSON object's fields in the order they were written.
struct Fields(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Fields, D::Error> {
        struct InOrder;
        impl<'de> serde::de::Visitor<'de> for InOrder {
            type Value = Fields;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<Fields, M::Error> {
                // Our own reports' rows: a few dozen fields at most.
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
                while let Some(field) = map.next_entry::<String, serde_json::Value>()? {
                    fields.push(field);
                }
                Ok(Fields(fields))
            }
        }
        d.deserialize_map(InOrder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> BusinessDate {
        BusinessDate::new(2024, 6, 9).expect("a date")
    }

    #[test]
    fn query_checks_parameters_then_the_name() {
        let books = Books::default();
        let q = |from, by, as_of| RawQuery { from, to: None, by, as_of };
        assert!(matches!(query(&books, "sales", &q(Some("2024-13"), None, None), today()), Err(ReportError::Month(_))));
        assert_eq!(query(&books, "sales", &q(None, Some("colour"), None), today()).err(), Some(ReportError::By("colour".into())));
        assert!(matches!(query(&books, "nope", &q(None, None, Some("2024-02-30")), today()), Err(ReportError::AsOf(_))));
        let e = query(&books, "nope", &RawQuery::default(), today()).expect_err("no such report");
        assert!(e.is_not_found() && e.to_string().starts_with("no report \"nope\"; reports: stock-status, "), "{e}");
        for name in REPORT_NAMES {
            assert!(query(&books, name, &RawQuery::default(), today()).is_ok(), "{name}");
        }
    }

    #[test]
    fn csv_has_a_bom_a_header_and_quotes_only_what_needs_it() {
        let rows = vec![
            CashRow { account: "1001 现金".into(), balance: Decimal::new(1250, 2) },
            CashRow { account: "1002.A,\"B\"".into(), balance: Decimal::new(-5, 0) },
        ];
        assert_eq!(to_csv(&Report::Cash(rows)), "\u{feff}account,balance\n1001 现金,12.50\n\"1002.A,\"\"B\"\"\",-5\n");
        assert_eq!(to_csv(&Report::Cash(Vec::new())), "\u{feff}");
        // A single object is one row; nested values are JSON text.
        let csv = to_csv(&Report::Balance(BalanceSheet::default()));
        assert_eq!(csv, "\u{feff}assets,liabilities,equity,total_assets,total_liabilities_and_equity\n{},{},{},0,0\n");
        // Columns in the row type's order, not by name (serde_json's map would sort them).
        let sales = vec![SalesRow {
            key: "P1".into(),
            qty: Decimal::ONE,
            revenue: Decimal::TEN,
            cost: Decimal::ONE,
            gross_profit: Decimal::new(9, 0),
            margin_pct: Decimal::new(9000, 2),
        }];
        assert_eq!(to_csv(&Report::Sales(sales)), "\u{feff}key,qty,revenue,cost,gross_profit,margin_pct\nP1,1,10,1,9,90.00\n");
    }
}
