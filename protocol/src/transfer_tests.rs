use super::*;
use rust_decimal_macros::dec;

fn pos(q: Decimal, v: Decimal) -> Position {
    Position { qty: q, value: v }
}

#[test]
fn receipt_layers_walk_the_shipped_units_in_order_and_add_up_to_each_layer() {
    let shipped = [pos(dec!(3), dec!(10.00)), pos(dec!(2), dec!(7.00))];
    // 1 + 1 + 1 of a 3-unit layer worth 10.00: 3.33, 3.34, 3.33 (the shares of the first
    // k units differ by the cent so that the three add up to 10.00).
    let a = receipt_layers(&shipped, dec!(0), dec!(1));
    let b = receipt_layers(&shipped, dec!(1), dec!(1));
    let c = receipt_layers(&shipped, dec!(2), dec!(1));
    assert_eq!(a[0].value + b[0].value + c[0].value, dec!(10.00));
    // Across the boundary, and past the end at the last unit cost (3.50).
    let d = receipt_layers(&shipped, dec!(2), dec!(4));
    assert_eq!(d, vec![pos(dec!(1), dec!(3.33)), pos(dec!(2), dec!(7.00)), pos(dec!(1), dec!(3.50))]);
}

fn order() -> TransferOrder {
    TransferOrder {
        id: 1,
        from: BranchCode::new("SH").expect("b"),
        from_warehouse: WarehouseCode::new("SH01").expect("w"),
        to: BranchCode::new("HB").expect("b"),
        to_warehouse: WarehouseCode::new("HB01").expect("w"),
        transit: WarehouseCode::new("HBZT").expect("w"),
        lines: vec![OrderLine { product: ProductCode::new("P1").expect("p"), qty: dec!(10), unit_price: Decimal::ZERO }],
        priced: false,
        expected: None,
        by: OperatorId::new("audit").expect("op"),
        memo: String::new(),
        issued_unix: 0,
        request: None,
    }
}

#[test]
fn an_order_is_checked_on_its_own() {
    assert_eq!(order().check(), Ok(()));
    let mut o = order();
    o.to = o.from;
    assert!(matches!(o.check(), Err(TransferError::SameBranch { .. })));
    let mut o = order();
    o.lines[0].unit_price = dec!(1);
    assert!(matches!(o.check(), Err(TransferError::Price { line: 1 })));
    let mut o = order();
    o.lines.push(o.lines[0].clone());
    assert!(matches!(o.check(), Err(TransferError::Repeated { line: 2, .. })));
    let mut o = order();
    o.lines[0].qty = dec!(0);
    assert!(matches!(o.check(), Err(TransferError::Qty { .. })));
}

#[test]
fn the_state_of_an_order_follows_its_steps() {
    let o = order();
    let p = o.lines[0].product;
    let m = |q: Decimal| Moved { qty: q, cost: q, amount: q };
    let mut t = Transit::default();
    let at = |t: &Transit| order_state(&o, &[(p, *t)].into_iter().collect());
    assert_eq!(at(&t), OrderState::Ordered);
    t.add(Step::Shipped, &m(dec!(4)), false);
    assert_eq!(at(&t), OrderState::ShippedInPart);
    t.add(Step::Shipped, &m(dec!(6)), false);
    assert_eq!(at(&t), OrderState::InTransit);
    t.add(Step::Received, &m(dec!(10)), false);
    assert_eq!(at(&t), OrderState::Received);
    let mut short = Transit::default();
    short.add(Step::Shipped, &m(dec!(10)), false);
    short.add(Step::Received, &m(dec!(8)), true);
    assert_eq!(at(&short), OrderState::Discrepancy);
    short.add(Step::Settled, &m(dec!(2)), false);
    assert_eq!(at(&short), OrderState::Closed);
}
