//! Worked examples of dates and periods (issues 10 and 11): stock documents in date order,
//! the reversal window that one far-future document cannot evict, opening balances until
//! the first close, the month reopen (反结账), the year-end carry (本年利润 → 利润分配) and
//! the income statement of a period with the year to date beside it. Figures by hand in
//! the comments; after every posting the books must tie (as in `books_examples`).

use protocol::books::reports;
use protocol::books::{Books, Side};
use protocol::date::BusinessDate;
use protocol::document::{CostMethod, DocType, OpeningKind, Period};
use protocol::error::PostError;
use rust_decimal_macros::dec;

use protocol::testkit::shop::*;

type Snapshot = protocol::testkit::BooksSnapshot;

fn snapshot(b: &Books) -> Snapshot {
    protocol::testkit::books_snapshot(b)
}

fn on(year: u16, month: u8, day: u8) -> BusinessDate {
    BusinessDate::new(year, month, day).expect("test date")
}

fn period(year: u16, month: u8) -> Period {
    Period { year, month }
}

/// Issue 11 item 4, the example. 11-05 purchase 10 @ 3.00, 12-01 purchase 10 @
/// 4.00; a sale of 15 dated 11-20 posted after the December purchase is refused (November
/// would close at 10 − 15 = −5 and cost the sale at December's price); dated 12-02 it
/// posts. Cost of the 15: moving average (30.00 + 40.00) / 20 = 3.50 → 52.50; FIFO 10 ×
/// 3.00 + 5 × 4.00 = 50.00; LIFO 10 × 4.00 + 5 × 3.00 = 55.00. November's flow then is
/// in 10 / 30.00, out 0: its closing stock 10 @ 30.00, as the documents dated in it say.
#[test]
fn back_dated_sale_after_a_later_purchase_is_refused_with_the_date_to_use() {
    for (method, cost) in [(CostMethod::MovingAverage, dec!(52.50)), (CostMethod::Fifo, dec!(50.00)), (CostMethod::Lifo, dec!(55.00))] {
        let mut s = Shop::new(method);
        s.today = on(2026, 11, 5);
        s.stock_up("P1", dec!(10), dec!(3.00));
        s.today = on(2026, 12, 1);
        s.stock_up("P1", dec!(10), dec!(4.00));
        s.today = on(2026, 11, 20);
        let e = s.sell("P1", dec!(15), dec!(6.00)).map(|_| ()).expect_err("back-dated");
        assert_eq!(
            e,
            PostError::BackDated { warehouse: wh(W1), product: pc("P1"), date: "2026-11-20".into(), latest: "2026-12-01".into() }
        );
        assert!(e.to_string().contains("date it 2026-12-01 or later"), "{e}");
        // Another product has no December movement: a November sale of it is in order.
        s.stock_up("P2", dec!(2), dec!(1.00));
        s.sell("P2", dec!(1), dec!(2.00)).expect("in date order for P2");
        // The same sale dated 12-02 posts, at the cost of the method.
        s.today = on(2026, 12, 2);
        let (_, p) = s.sell("P1", dec!(15), dec!(6.00)).expect("in date order");
        assert_eq!(p.cost_out(), cost, "{method:?}");
        let nov = s.books.flows().get(&(period(2026, 11), wh(W1), pc("P1"))).copied().expect("a November flow");
        assert_eq!((nov.in_qty, nov.in_value, nov.out_qty), (dec!(10), dec!(30.00), dec!(0)));
        // A reversal is a stock document too: dated before the latest movement, refused.
        s.today = on(2026, 12, 1);
        let late = s.stock_up("P3", dec!(1), dec!(1.00));
        s.today = on(2026, 12, 3);
        s.stock_up("P3", dec!(1), dec!(1.00));
        s.today = on(2026, 12, 2);
        let r = s.reversal_of(&late);
        assert!(matches!(s.refuse(r), PostError::BackDated { .. }));
    }
}

/// Issue 10: one far-future document (a mistyped year) no longer evicts the reversal
/// window. A June receipt, then a receipt of another product dated 2099-01-01: the June
/// receipt can still be reversed. A branch idle for two months moves the window with its
/// second document: two September documents make July–September the window, and June's
/// receipt is no longer reversible.
#[test]
fn one_far_future_document_does_not_evict_the_reversal_window() {
    let mut s = Shop::new(CostMethod::MovingAverage);
    s.today = on(2026, 6, 10);
    let june = s.stock_up("P1", dec!(10), dec!(3.00));
    s.today = on(2099, 1, 1);
    s.stock_up("P9", dec!(1), dec!(1.00));
    s.today = on(2026, 6, 11);
    let r = s.reversal_of(&june);
    s.post(r);
    assert!(s.books.is_reversed(&june.header.number));

    let mut s = Shop::new(CostMethod::MovingAverage);
    s.today = on(2026, 6, 10);
    let june = s.stock_up("P1", dec!(10), dec!(3.00));
    s.today = on(2026, 9, 1);
    s.stock_up("P2", dec!(1), dec!(1.00));
    // One September document alone is not believed yet: June is still reversible...
    let probe = s.reversal_of(&june);
    let before = s.books.clone();
    assert!(s.try_post(probe).is_ok());
    s.books = before;
    // ...the second moves the window to July–September.
    s.stock_up("P2", dec!(1), dec!(1.00));
    let r = s.reversal_of(&june);
    assert!(matches!(s.refuse(r), PostError::CannotReverse { .. }));
}

/// Issue 11 item 6: a branch that posted before its openings can still enter them, until
/// the first month is closed; the cost method is chosen only before other documents.
/// Receipt of 100.00 cash first, then opening cash 1000.00 and a receivable 500.00: the
/// receipt settles nothing, so 1001 = 100.00 + 1000.00 = 1100.00 and the customer owes
/// 500.00 − 100.00 = 400.00.
#[test]
fn opening_balances_are_taken_until_the_first_close() {
    let mut s = Shop::blank();
    s.today = on(2026, 6, 3);
    let d = s.money(DocType::Receipt, Some(CUSTOMER), dec!(100.00), Some(CASH));
    s.post(d);
    let d = s.opening(Some(CostMethod::Fifo), vec![], &[(OpeningKind::Account(acct(CASH)), dec!(1.00))]);
    let e = s.refuse(d);
    assert_eq!(e, PostError::CostMethodAfterPosting { current: "MovingAverage".into(), wanted: "Fifo".into(), posted: 1 });
    let d = s.opening(
        None,
        vec![line("P1", dec!(4), dec!(2.50))],
        &[(OpeningKind::Account(acct(CASH)), dec!(1000.00)), (OpeningKind::Receivable(party(CUSTOMER)), dec!(500.00))],
    );
    s.post(d);
    assert_eq!((s.bal(CASH), s.owed(Side::Receivable, CUSTOMER), s.bal("1405")), (dec!(1100.00), dec!(400.00), dec!(10.00)));
    s.today = on(2026, 7, 1);
    s.close(period(2026, 6)).expect("June closes on 1 July");
    let d = s.opening(None, vec![], &[(OpeningKind::Account(acct(CASH)), dec!(1.00))]);
    let e = s.refuse(d);
    assert_eq!(e, PostError::OpeningAfterClose { closed: "2026-06".into() });
    assert!(e.to_string().contains("until the first month is closed"), "{e}");
}

/// 反结账: June is closed on 1 July; a June sale is refused; the reopen of June (dated 2
/// July) makes it open again and the June sale posts. Only the latest closed month can be
/// reopened, and the message says which to reopen first.
#[test]
fn reopen_makes_the_latest_closed_month_take_documents_again() {
    let mut s = Shop::new(CostMethod::MovingAverage);
    s.today = on(2026, 5, 20);
    s.stock_up("P1", dec!(10), dec!(3.00));
    s.today = on(2026, 7, 1);
    s.close(period(2026, 5)).expect("May closes");
    s.close(period(2026, 6)).expect("June closes");
    assert_eq!(s.books.closed_through(), Some(period(2026, 6)));
    s.today = on(2026, 6, 30);
    assert!(matches!(s.sell("P1", dec!(1), dec!(5.00)), Err(PostError::PeriodClosed { .. })));
    s.today = on(2026, 7, 2);
    let e = s.reopen(period(2026, 5)).map(|_| ()).expect_err("not the latest");
    assert_eq!(e.to_string(), "only the latest closed month can be reopened: the books are closed through 2026-06, so 2026-05 cannot be reopened; reopen 2026-06 first");
    let (doc, p) = s.reopen(period(2026, 6)).expect("June reopens");
    assert_eq!((p.reopen, doc.header.number.to_string().starts_with("FJZ-SH-0702-")), (Some(period(2026, 6)), true));
    assert_eq!(s.books.closed_through(), Some(period(2026, 5)), "May stays closed");
    s.today = on(2026, 6, 30);
    s.sell("P1", dec!(1), dec!(5.00)).expect("June is open again");
    // A reopen cannot be reversed (close it again instead).
    assert!(s.reversal_of(&doc).validate().is_err());
    s.today = on(2026, 7, 3);
    s.close(period(2026, 6)).expect("June closes again");
}

/// The year-end carry and the income statement of a period. 2026-11: sale 2 @ 10.00 of
/// stock bought at 4.00 (revenue 20.00, cost 8.00); 2026-12: sale 5 @ 10.00 (revenue
/// 50.00, cost 20.00); 2027-01-05: sale 1 @ 10.00 (revenue 10.00, cost 4.00), posted
/// before December's close. Close December on 2027-01-06: 6001 − (20 + 50) and 6401 −
/// (8 + 20) leave through 3103; profit 70.00 − 28.00 = 42.00 goes to 3104 (credit). January's
/// 10.00 / 4.00 stay in 6001 / 6401. The income statement of 2026-12 still says revenue
/// 50.00, profit 30.00, year to date (2026-01..12) 70.00 / 42.00; of 2027-01: 10.00 / 6.00.
/// Reopening December takes the carry back line by line.
#[test]
fn year_end_close_carries_profit_to_retained_earnings_and_reopen_takes_it_back() {
    let mut s = Shop::new(CostMethod::MovingAverage);
    s.today = on(2026, 11, 2);
    s.stock_up("P1", dec!(10), dec!(4.00));
    s.sell("P1", dec!(2), dec!(10.00)).expect("Nov sale");
    s.today = on(2026, 12, 15);
    s.sell("P1", dec!(5), dec!(10.00)).expect("Dec sale");
    s.today = on(2027, 1, 5);
    s.sell("P1", dec!(1), dec!(10.00)).expect("Jan sale");
    let before_close = snapshot(&s.books);
    s.today = on(2027, 1, 6);
    s.close(period(2026, 11)).expect("Nov closes");
    let (_, p) = s.close(period(2026, 12)).expect("Dec closes");
    assert_eq!(p.debits(), dec!(20.00) + dec!(50.00) + dec!(28.00) + dec!(42.00), "6001 and 3103's carries");
    assert_eq!((s.bal("3104"), s.bal("3103"), s.bal("6001"), s.bal("6401")), (dec!(-42.00), dec!(0), dec!(-10.00), dec!(4.00)));
    let bs = reports::balance_sheet(&s.books);
    assert_eq!(bs.total_assets, bs.total_liabilities_and_equity);
    let dec_is = reports::income_statement_for(&s.books, period(2026, 12), period(2026, 12), period(2027, 1));
    assert_eq!((dec_is.revenue, dec_is.cost_of_sales, dec_is.net_profit), (dec!(50.00), dec!(20.00), dec!(30.00)));
    let ytd = &dec_is.year_to_date;
    assert_eq!((ytd.from.as_str(), ytd.to.as_str(), ytd.revenue, ytd.net_profit), ("2026-01", "2026-12", dec!(70.00), dec!(42.00)));
    let jan = reports::income_statement_for(&s.books, period(2027, 1), period(2027, 1), period(2027, 1));
    assert_eq!((jan.revenue, jan.net_profit, jan.year_to_date.net_profit), (dec!(10.00), dec!(6.00), dec!(6.00)));
    // The query honours from/to.
    let raw = reports::RawQuery { from: Some("2026-11"), to: Some("2026-11"), by: None, as_of: None };
    match reports::query(&s.books, "income-statement", &raw, on(2027, 1, 6)).expect("report") {
        reports::Report::Income(is) => {
            assert_eq!((is.revenue, is.net_profit, is.year_to_date.net_profit), (dec!(20.00), dec!(12.00), dec!(12.00)))
        }
        other => panic!("not an income statement: {other:?}"),
    }
    // 反结账 of December: the carry comes back out; the books are as before the close
    // (the November close stays).
    s.today = on(2027, 1, 7);
    s.reopen(period(2026, 12)).expect("Dec reopens");
    assert_eq!(snapshot(&s.books), before_close);
    assert_eq!(s.books.closed_through(), Some(period(2026, 11)));
}
