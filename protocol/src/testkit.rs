//! Builders shared by the crate's tests and by benchmarks and property tests elsewhere.
//! Deterministic: everything derives from the numbers passed in. `shop` is the harness
//! the worked examples of the books are written in.
//!
//! Must not: be compiled into a release build (it is behind the `testkit` feature) or hold
//! a rule that shipped code relies on.

pub mod shop;

use ed25519_dalek::SigningKey;
use rust_decimal::Decimal;

use crate::codes::{BranchCode, OperatorId, PartyCode, ProductCode, WarehouseCode};
use crate::date::BusinessDate;
use crate::document::{DocType, Document, Draft, Line};

/// A signing key derived from a small number (tests only: not secret).
pub fn test_key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

/// A stock gain document of branch `SH` with serial `n`, one line.
pub fn sample_doc(n: u32) -> Document {
    sample_doc_lines("SH", "SH01", DocType::StockGain, n, 1)
}

/// A document with `lines` lines over products `P0000..`, quantities 1..
pub fn sample_doc_lines(branch: &str, warehouse: &str, t: DocType, serial: u32, lines: usize) -> Document {
    let branch = BranchCode::new(branch).expect("test branch code is valid");
    Draft {
        doc_type: t,
        date: BusinessDate::new(2026, 6, 9).expect("valid date"),
        operator: OperatorId::new("tester").expect("valid operator"),
        warehouse: WarehouseCode::new(warehouse).expect("valid warehouse"),
        counterparty: Some(PartyCode::new("200102").expect("valid party")),
        memo: String::new(),
        payment: None,
        ext: Default::default(),
        lines: (0..lines)
            .map(|i| {
                Line::priced(
                    ProductCode::new(format!("P{i:04}")).expect("valid product"),
                    Decimal::from(1 + i as i64 % 5),
                    Decimal::new(1250 + i as i64, 2),
                )
            })
            .collect(),
    }
    .number(branch, serial)
    .expect("sample document is valid")
}

/// Everything the books hold that a reversal must restore, zero balances left out.
/// Tests compare these where a digest cannot tell them what differs.
#[derive(Debug, PartialEq)]
pub struct BooksSnapshot {
    pub stock: Vec<(String, crate::books::Position, Vec<crate::books::Position>)>,
    pub gl: Vec<(String, Decimal)>,
    pub parties: Vec<(String, Decimal)>,
    pub open_items: Vec<(String, Decimal)>,
    pub consignment: Vec<(String, crate::books::Position)>,
    pub loans: Vec<(String, Decimal)>,
    pub sales: Vec<(String, Decimal, Decimal, Decimal)>,
}

pub fn books_snapshot(b: &crate::books::Books) -> BooksSnapshot {
    BooksSnapshot {
        stock: b
            .positions()
            .filter(|(_, p)| !p.is_zero())
            .map(|(k, p)| (format!("{k:?}"), *p, b.stock(k).map(|s| s.layers.iter().copied().collect()).unwrap_or_default()))
            .collect(),
        gl: b.gl().iter().filter(|(_, v)| !v.is_zero()).map(|(a, v)| (a.to_string(), *v)).collect(),
        parties: b.parties().iter().filter(|(_, v)| !v.is_zero()).map(|(k, v)| (format!("{k:?}"), *v)).collect(),
        open_items: b.open_items().iter().map(|(k, i)| (format!("{k:?}"), i.open)).collect(),
        consignment: b.consignment().filter(|(_, p)| !p.is_zero()).map(|(k, p)| (format!("{k:?}"), *p)).collect(),
        loans: b.loans().iter().filter(|(_, v)| !v.is_zero()).map(|(k, v)| (format!("{k:?}"), *v)).collect(),
        sales: b
            .sales()
            .iter()
            .filter(|(_, t)| !(t.qty.is_zero() && t.revenue.is_zero() && t.cost.is_zero()))
            .map(|(k, t)| (format!("{k:?}"), t.qty, t.revenue, t.cost))
            .collect(),
    }
}

/// Asserts that the ledgers tie and nothing is negative: trial balance, every sub-ledger
/// against its control account, layers against positions, open items within their
/// totals, a balancing balance sheet and an income statement that agrees with the GL.
pub fn assert_books_tie(b: &crate::books::Books) {
    use crate::books::accounts::{self, Class};
    use crate::books::{reports, Consignment, Side};
    use crate::document::CostMethod;

    let tb = reports::trial_balance(b);
    assert_eq!(tb.iter().map(|r| r.debit).sum::<Decimal>(), tb.iter().map(|r| r.credit).sum::<Decimal>(), "trial balance: {tb:#?}");
    let value = |kind: Consignment| b.consignment().filter(|((k, _, _), _)| *k == kind).map(|(_, p)| p.value).sum::<Decimal>();
    let owed = |side: Side| b.parties().iter().filter(|((s, _), _)| *s == side).map(|(_, v)| *v).sum::<Decimal>();
    assert_eq!(b.positions().map(|(_, p)| p.value).sum::<Decimal>(), b.balance(accounts::INVENTORY), "stock vs 1405");
    assert_eq!(owed(Side::Receivable), b.balance(accounts::RECEIVABLE), "receivables vs 1122");
    assert_eq!(owed(Side::Payable), -b.balance(accounts::PAYABLE), "payables vs 2202");
    assert_eq!(value(Consignment::OutToDealer), b.balance(accounts::CONSIGNED_OUT_GOODS), "consigned out vs 1406");
    assert_eq!(value(Consignment::InFromSupplier), b.balance(accounts::CONSIGNED_IN_GOODS), "consigned in vs 1321");
    assert_eq!(value(Consignment::InFromSupplier), -b.balance(accounts::CONSIGNED_IN_PAYABLE), "consigned in vs 2314");
    for (k, p) in b.positions() {
        assert!(p.qty >= Decimal::ZERO && p.value >= Decimal::ZERO, "{k:?} negative: {p:?}");
        assert!(!p.qty.is_zero() || p.value.is_zero(), "{k:?} keeps value on zero stock: {p:?}");
        let s = b.stock(k).expect("listed");
        if b.cost_method() == CostMethod::MovingAverage {
            assert!(s.layers.is_empty(), "moving average keeps no layers");
        } else {
            assert!(s.layers.iter().all(|l| l.qty > Decimal::ZERO && l.value >= Decimal::ZERO), "{k:?} layers {:?}", s.layers);
            assert_eq!(
                (s.layers.iter().map(|l| l.qty).sum::<Decimal>(), s.layers.iter().map(|l| l.value).sum::<Decimal>()),
                (p.qty, p.value),
                "{k:?} layers vs position"
            );
        }
    }
    for (k, p) in b.consignment() {
        assert!(p.qty >= Decimal::ZERO && p.value >= Decimal::ZERO && (!p.qty.is_zero() || p.value.is_zero()), "{k:?} consigned: {p:?}");
    }
    for (k, q) in b.loans() {
        assert!(*q >= Decimal::ZERO, "{k:?} on loan {q}");
    }
    for (k, i) in b.open_items() {
        let within = if i.total >= Decimal::ZERO {
            i.open >= Decimal::ZERO && i.open <= i.total
        } else {
            i.open <= Decimal::ZERO && i.open >= i.total
        };
        assert!(within, "{k:?}: open {} of {}", i.open, i.total);
    }
    let bs = reports::balance_sheet(b);
    assert_eq!(bs.total_assets, bs.total_liabilities_and_equity, "balance sheet: {bs:#?}");
    let is = reports::income_statement(b);
    let profit = -b
        .gl()
        .iter()
        .filter(|(a, _)| {
            // The year-end carry moves profit into 3103/3104; the statement still shows it.
            matches!(accounts::class(a.chart()), Class::Income | Class::Expense)
                || matches!(a.chart(), accounts::PROFIT_THIS_YEAR | accounts::RETAINED_EARNINGS)
        })
        .map(|(_, v)| *v)
        .sum::<Decimal>();
    assert_eq!(is.net_profit, profit, "income statement");
    assert_eq!(is.gross_profit, is.revenue - is.cost_of_sales);
}
