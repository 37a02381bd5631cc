//! The cart: lines scanned so far, merged and bounded, and the retail draft they become.
//! Pure: no store, device, clock or HTTP; amounts follow the document's rounding rule
//! (`Line::priced`), so the draft passes `protocol`'s validation as built.
//!
//! Must not: price a code (that is `resolve`) or judge a payment (`payment`).

use protocol::codes::{OperatorId, ProductCode, WarehouseCode};
use protocol::date::BusinessDate;
use protocol::document::{DocType, Draft, Line, Payment, DOC_LINES_MAX, QTY_SCALE_MAX};
use protocol::Decimal;
use serde::Serialize;

use super::error::TillError;

/// Lines one cart may hold: what fits one document and one printed receipt.
pub const CART_LINES_MAX: usize = 500;
const _: () = assert!(CART_LINES_MAX <= DOC_LINES_MAX && CART_LINES_MAX <= devices::receipt::RECEIPT_LINES_MAX);

/// Largest quantity one cart line may reach; bounds amounts far below overflow.
pub const LINE_QTY_MAX: i64 = 99_999;

/// One line of the cart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CartLine {
    pub product: ProductCode,
    pub name: String,
    #[serde(with = "protocol::decimal_serde")]
    pub qty: Decimal,
    #[serde(with = "protocol::decimal_serde")]
    pub unit_price: Decimal,
    #[serde(with = "protocol::decimal_serde")]
    pub amount: Decimal,
    /// How it got here: the barcode scanned, the code typed, "scale", a label code.
    pub source: String,
    /// Counted items: another scan of the same product at the same price adds to this line.
    /// Weighed items always get a line of their own.
    #[serde(skip)]
    pub counted: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Cart {
    lines: Vec<CartLine>,
}

impl Cart {
    pub fn lines(&self) -> &[CartLine] {
        &self.lines
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Sum of line amounts; each amount is already rounded to the cent, as the document's.
    pub fn total(&self) -> Decimal {
        self.lines.iter().map(|l| l.amount).sum()
    }

    /// Adds a line (or adds to the same counted product's line). Returns the 0-based line
    /// index and the amount this step added. A refused line leaves the cart as it was.
    pub fn add(&mut self, line: CartLine) -> Result<(usize, Decimal), TillError> {
        let qty_max = Decimal::from(LINE_QTY_MAX);
        if line.counted {
            if let Some(i) = self.lines.iter().position(|l| l.counted && l.product == line.product && l.unit_price == line.unit_price) {
                let old = &self.lines[i];
                let qty = old.qty + line.qty;
                if qty > qty_max {
                    return Err(TillError::Refused(format!("{} would reach quantity {qty}; at most {LINE_QTY_MAX} per line", old.name)));
                }
                let amount = Line::priced(old.product, qty, old.unit_price).amount;
                let added = amount - old.amount;
                let l = &mut self.lines[i];
                l.qty = qty;
                l.amount = amount;
                return Ok((i, added));
            }
        }
        if line.qty > qty_max {
            return Err(TillError::Refused(format!("quantity {} is above {LINE_QTY_MAX}", line.qty)));
        }
        if self.lines.len() >= CART_LINES_MAX {
            return Err(TillError::Refused(format!(
                "the cart holds {CART_LINES_MAX} lines, the most one receipt takes: pay this part first"
            )));
        }
        let added = line.amount;
        self.lines.push(line);
        Ok((self.lines.len() - 1, added))
    }

    /// Removes line `n` (1-based, as shown).
    pub fn void(&mut self, n: usize) -> Result<CartLine, TillError> {
        if n == 0 || n > self.lines.len() {
            return Err(TillError::NotFound(format!("the cart has no line {n} (it has {})", self.lines.len())));
        }
        Ok(self.lines.remove(n - 1))
    }

    pub fn clear(&mut self) {
        self.lines.clear();
    }

    pub fn draft(&self, date: BusinessDate, operator: OperatorId, warehouse: WarehouseCode, payment: Payment) -> Draft {
        Draft {
            doc_type: DocType::Retail,
            date,
            operator,
            warehouse,
            counterparty: None,
            memo: String::new(),
            payment: Some(payment),
            lines: self
                .lines
                .iter()
                .map(|l| Line { product: l.product, role: Default::default(), qty: l.qty, unit_price: l.unit_price, amount: l.amount })
                .collect(),
            ext: Default::default(),
        }
    }
}

/// A quantity one line may carry: positive, at most [`QTY_SCALE_MAX`] decimals (grams of a
/// kg) and at most [`LINE_QTY_MAX`].
pub fn check_qty(qty: Decimal) -> Result<Decimal, TillError> {
    if qty <= Decimal::ZERO {
        return Err(TillError::Refused(format!("quantity {qty} must be more than 0")));
    }
    if qty.scale() > QTY_SCALE_MAX {
        return Err(TillError::Refused(format!("quantity {qty} has more than {QTY_SCALE_MAX} decimals")));
    }
    if qty > Decimal::from(LINE_QTY_MAX) {
        return Err(TillError::Refused(format!("quantity {qty} is above {LINE_QTY_MAX}")));
    }
    Ok(qty)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::till::config::PaymentLabels;
    use crate::till::fixtures::{catalog, scan};
    use crate::till::payment::take_payment;
    use crate::till::receipt::receipt_for;
    use crate::till::resolve::resolve;
    use devices::Scanned;
    use proptest::prelude::*;
    use protocol::codes::BranchCode;
    use protocol::document::{round_money, PaymentMethod};
    use rust_decimal_macros::dec;

    #[test]
    fn cart_merges_counted_items_and_totals() {
        let mut cart = Cart::default();
        let water = scan("6901234567892", &[]).expect("known");
        assert_eq!(cart.add(water.clone()).expect("adds"), (0, dec!(2.00)));
        assert_eq!(cart.add(water).expect("adds"), (0, dec!(2.00)), "same product, same line");
        let tissues = scan("036000291452", &[]).expect("UPC-A");
        cart.add(tissues).expect("adds");
        let bananas = resolve(&Scanned::Other("10001".into()), Some(dec!(1.235)), &catalog()).expect("typed weight");
        assert_eq!(bananas.amount, dec!(8.40), "1.235 x 6.80 = 8.398 -> 8.40");
        cart.add(bananas).expect("adds");
        assert_eq!(cart.lines().len(), 3);
        assert_eq!(cart.lines()[0].qty, dec!(2));
        assert_eq!(cart.lines()[0].amount, dec!(4.00));
        assert_eq!(cart.total(), dec!(17.90));
        let removed = cart.void(2).expect("line 2 exists");
        assert_eq!(removed.name, "Tissues");
        assert!(matches!(cart.void(9), Err(TillError::NotFound(_))));
        assert_eq!(cart.total(), dec!(12.40));

        // The draft carries the same lines and passes the protocol's own checks.
        let pay = take_payment(PaymentMethod::Cash, Some(dec!(20)), cart.total()).expect("enough");
        assert_eq!((pay.tendered.to_string().as_str(), pay.change), ("20.00", dec!(7.60)));
        let draft = cart.draft(
            BusinessDate::parse("2026-06-09").expect("date"),
            OperatorId::new("sh-li").expect("op"),
            WarehouseCode::new("SH01").expect("wh"),
            pay,
        );
        let doc = draft.number(BranchCode::new("SH").expect("b"), 1).expect("valid retail document");
        assert_eq!(doc.header.number.to_string(), "LS-SH-0609-001");
        assert_eq!(doc.total(), dec!(12.40));

        let r = receipt_for(&doc, &catalog(), "好邻居 SH", "2026-06-09 10:00".into(), &PaymentLabels::default());
        assert_eq!(r.lines[0].name, "矿泉水 550ml");
        assert_eq!((r.total, r.change, r.payments[0].amount), (dec!(12.40), dec!(7.60), dec!(20.00)));
        devices::render(&r, &devices::ReceiptLayout::default()).expect("renders");
    }

    #[test]
    fn lines_and_quantities_are_bounded() {
        // Typed codes are counted lines; the weighed copy never merges.
        let line = |code: &str, qty: Decimal| resolve(&Scanned::Other(code.into()), Some(qty), &catalog()).expect("priced");
        let weighed = |qty: Decimal| CartLine { counted: false, ..line("10001", qty) };
        let mut cart = Cart::default();
        cart.add(line("6901234567892", Decimal::from(LINE_QTY_MAX))).expect("at the limit");
        let e = cart.add(line("6901234567892", dec!(1))).expect_err("over the limit");
        assert!(e.to_string().contains("would reach quantity 100000"), "{e}");
        assert_eq!(cart.lines()[0].qty, Decimal::from(LINE_QTY_MAX), "a refused add changes nothing");
        assert!(check_qty(dec!(0.00001)).is_err() && check_qty(dec!(100000)).is_err() && check_qty(dec!(-1)).is_err());
        let mut full = Cart::default();
        for _ in 0..CART_LINES_MAX {
            full.add(weighed(dec!(0.5))).expect("room");
        }
        let e = full.add(weighed(dec!(0.5))).expect_err("full");
        assert!(e.to_string().contains("pay this part first"), "{e}");
        assert_eq!(full.lines().len(), CART_LINES_MAX);
    }

    /// A line as `resolve` or the scale builds it: one of a few products, at one of two
    /// prices, counted or weighed, the amount by the document's rounding rule.
    fn any_line() -> impl Strategy<Value = CartLine> {
        (
            0usize..3,
            prop_oneof![Just(dec!(2.00)), Just(dec!(6.8)), (1i64..1_000_000).prop_map(|c| Decimal::new(c, 4))],
            1i64..50_000,
            any::<bool>(),
        )
            .prop_map(|(p, price, qty_units, counted)| {
                let product = ProductCode::new(["6901234567892", "10001", "036000291452"][p]).expect("code");
                // Counted lines in whole units, weighed ones to the gram.
                let qty = if counted { Decimal::from(qty_units % 20 + 1) } else { Decimal::new(qty_units, 3) };
                let amount = Line::priced(product, qty, price).amount;
                CartLine { product, name: format!("item {p}"), qty, unit_price: price, amount, source: "test".into(), counted }
            })
    }

    proptest! {
        /// Whatever is scanned, the cart stays a valid retail document: the total is the
        /// sum of the lines, every amount is qty x price by the rounding rule, counted
        /// lines of one product and price are merged into one, limits hold, and a refused
        /// step leaves the cart as it was.
        #[test]
        fn cart_stays_a_valid_document(lines in proptest::collection::vec(any_line(), 1..60), voids in proptest::collection::vec(0usize..70, 0..5)) {
            let mut cart = Cart::default();
            for line in lines {
                let before = cart.lines().to_vec();
                let total_before = cart.total();
                match cart.add(line) {
                    Ok((i, added)) => {
                        prop_assert!(i < cart.lines().len());
                        prop_assert_eq!(cart.total(), total_before + added);
                    }
                    Err(_) => prop_assert_eq!(cart.lines(), &before[..]),
                }
            }
            for n in voids {
                let before = cart.total();
                match cart.void(n) {
                    Ok(removed) => prop_assert_eq!(cart.total(), before - removed.amount),
                    Err(_) => prop_assert!(n == 0 || n > cart.lines().len()),
                }
            }
            prop_assert!(cart.lines().len() <= CART_LINES_MAX);
            prop_assert_eq!(cart.total(), cart.lines().iter().map(|l| l.amount).sum::<Decimal>());
            for (i, l) in cart.lines().iter().enumerate() {
                prop_assert_eq!(l.amount, round_money(l.qty * l.unit_price));
                prop_assert!(l.qty > Decimal::ZERO && l.qty <= Decimal::from(LINE_QTY_MAX));
                let twin = cart.lines()[i + 1..].iter().any(|m| l.counted && m.counted && m.product == l.product && m.unit_price == l.unit_price);
                prop_assert!(!twin, "counted line {} was not merged", i + 1);
            }
            if !cart.is_empty() {
                let pay = take_payment(PaymentMethod::Cash, Some(cart.total().ceil()), cart.total()).expect("rounded up is enough");
                let draft = cart.draft(
                    BusinessDate::parse("2026-06-09").expect("date"),
                    OperatorId::new("sh-li").expect("op"),
                    WarehouseCode::new("SH01").expect("wh"),
                    pay,
                );
                prop_assert_eq!(draft.validate(), Ok(()));
            }
        }
    }
}
