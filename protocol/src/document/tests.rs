//! Tests of the document model.

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
    for bad in ["XS-SH-0609-0001", "XS-SH-0609-000", "XS-SH-1309-001", "XS-sh-0609-001", "XS-SH-0609", "XS-SH-0609-01", "XS-SH-0609-001-2"]
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
