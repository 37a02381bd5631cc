//! Code resolution: what a scanned or typed code puts in the cart. A GTIN (and a UPC-A as
//! its EAN-13), a typed product code, or a label-scale barcode carrying a weight or a
//! price becomes a `CartLine` priced from HQ's catalog. Pure: no store, device, clock or
//! HTTP — the catalog comes in as an argument, the code already interpreted by `devices`.
//!
//! Must not: touch the cart or read a device.

use std::collections::BTreeMap;

use devices::barcode::BarcodeError;
use devices::receipt::money;
use devices::{Scanned, WeighedValue};
use protocol::codes::ProductCode;
use protocol::document::{round_half_away, round_money, Line, QTY_SCALE_MAX};
use protocol::profile::Product;
use protocol::Decimal;

use super::cart::{check_qty, CartLine};
use super::error::TillError;

/// Neighbouring quantities (in 0.0001 steps) tried when turning a price label into a
/// weight at the catalog price.
const WEIGHT_SEARCH_STEPS: i64 = 5;

/// The cashier's words for a misread barcode.
pub fn misread_message(e: &BarcodeError) -> String {
    match e {
        BarcodeError::CheckDigit { code, expected, .. } => {
            format!("barcode {code} misread (check digit should be {expected}): scan again or type the code")
        }
        BarcodeError::PriceCheckDigit { code, expected, .. } => {
            format!("barcode {code} misread (price check digit should be {expected}): scan again or type the code")
        }
        other => format!("{other}: scan again or type the code"),
    }
}

/// A catalog product with its till price.
pub fn priced<'a>(code: &str, catalog: &'a BTreeMap<ProductCode, Product>) -> Result<(ProductCode, &'a Product, Decimal), TillError> {
    let unknown = || TillError::Refused(format!("product {code} is not in HQ's catalog: set the item aside and ask HQ to add it"));
    let pc = ProductCode::new(code).map_err(|_| unknown())?;
    let product = catalog.get(&pc).ok_or_else(unknown)?;
    let price = product.retail_price.ok_or_else(|| {
        TillError::Refused(format!(
            "product {code} ({}) has no retail price; ask HQ to set one, or sell it from the back office",
            product.name
        ))
    })?;
    Ok((pc, product, price))
}

/// The weight that a label scale priced at `label_price` at `unit_price`, to 0.0001:
/// the quantity whose rounded amount is exactly the label price, so the document's
/// amount rule holds and the customer pays what the label says.
pub fn weight_for_price(label_price: Decimal, unit_price: Decimal) -> Option<Decimal> {
    if unit_price <= Decimal::ZERO || label_price <= Decimal::ZERO {
        return None;
    }
    let step = Decimal::new(1, QTY_SCALE_MAX);
    let guess = round_half_away(label_price / unit_price, QTY_SCALE_MAX);
    (0..=WEIGHT_SEARCH_STEPS)
        .flat_map(|i| [guess + step * Decimal::from(i), guess - step * Decimal::from(i)])
        .find(|q| *q > Decimal::ZERO && q.checked_mul(unit_price).map(round_money) == Some(label_price))
        .map(|q| q.normalize())
}

/// What a scanned or typed code puts in the cart. `qty` is for counted items (default 1)
/// or a weight typed by hand; weighed labels carry their own.
pub fn resolve(scanned: &Scanned, qty: Option<Decimal>, catalog: &BTreeMap<ProductCode, Product>) -> Result<CartLine, TillError> {
    let counted_line = |code: &str, source: &str| -> Result<CartLine, TillError> {
        let (product, p, price) = priced(code, catalog)?;
        let qty = check_qty(qty.unwrap_or(Decimal::ONE))?;
        let amount = Line::priced(product, qty, price).amount;
        Ok(CartLine { product, name: p.name.clone(), qty, unit_price: price, amount, source: source.to_owned(), counted: true })
    };
    match scanned {
        Scanned::Product(gtin) => {
            let code = gtin.as_str();
            // A UPC-A is the same item as the EAN-13 with a leading 0; HQ may have either.
            match counted_line(code, code) {
                Err(TillError::Refused(e)) if code.len() == 12 => {
                    counted_line(&format!("0{code}"), code).map_err(|_| TillError::Refused(e))
                }
                other => other,
            }
        }
        Scanned::Other(code) => counted_line(code.trim(), "typed"),
        Scanned::Weighed(item) => {
            if qty.is_some() {
                return Err(TillError::Refused(format!(
                    "{} is a scale label that carries its own weight or price; scan it without a quantity",
                    item.barcode
                )));
            }
            // Label scales print the item code (PLU) with leading zeros; HQ may keep it
            // with or without them.
            let plu = item.item_code.trim_start_matches('0');
            let (product, p, price) = match priced(&item.item_code, catalog) {
                Err(TillError::Refused(e)) if !plu.is_empty() && plu != item.item_code => {
                    priced(plu, catalog).map_err(|_| TillError::Refused(e))?
                }
                other => other?,
            };
            let qty = match item.value {
                WeighedValue::WeightKg(kg) => check_qty(kg)?,
                WeighedValue::Price(label) => weight_for_price(label, price).ok_or_else(|| {
                    TillError::Refused(format!(
                        "label {} says {} but no weight at {}/{} gives that amount: weigh the item at the till",
                        item.barcode,
                        money(label),
                        money(price),
                        if p.unit.is_empty() { "unit" } else { &p.unit }
                    ))
                })?,
            };
            let amount = Line::priced(product, qty, price).amount;
            Ok(CartLine { product, name: p.name.clone(), qty, unit_price: price, amount, source: item.barcode.to_string(), counted: false })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::till::cart::Cart;
    use crate::till::fixtures::{catalog, ean, scan};
    use devices::barcode::{WeighedFormat, WeighedFormatSpec};
    use proptest::prelude::*;
    use rust_decimal_macros::dec;
    use serde_json::json;

    #[test]
    fn bad_codes_have_clear_messages() {
        let e = scan("6901234567893", &[]).expect_err("misread");
        assert_eq!(e.to_string(), "barcode 6901234567893 misread (check digit should be 2): scan again or type the code");
        let e = scan("9501101531000", &[]).expect_err("unknown");
        assert!(matches!(&e, TillError::Refused(m) if m.starts_with("product 9501101531000 is not in HQ's catalog")), "{e}");
        let e = scan("4006381333931", &[]).expect_err("no price");
        assert!(e.to_string().contains("has no retail price; ask HQ"), "{e}");
        let e = resolve(&Scanned::Other("6901234567892".into()), Some(dec!(0)), &catalog()).expect_err("zero qty");
        assert!(e.to_string().contains("must be more than 0"), "{e}");
        let e = resolve(&Scanned::Other("no such/code".into()), None, &catalog()).expect_err("not a code");
        assert!(e.to_string().contains("is not in HQ's catalog"), "{e}");
    }

    #[test]
    fn weighed_labels_become_weight_lines() {
        let format = |value: &str| -> WeighedFormat {
            let spec: WeighedFormatSpec =
                serde_json::from_value(json!({"prefix": "2", "item_digits": 6, "value_digits": 5, "value": value})).expect("spec");
            WeighedFormat::try_from(spec).expect("13 digits")
        };
        // Item 010001, 1.235 kg.
        let line = scan(&ean("201000101235"), &[format("weight_grams")]).expect("weight label");
        assert_eq!((line.product.as_str(), line.qty, line.amount, line.counted), ("10001", dec!(1.235), dec!(8.40), false));
        // Item 010001 priced 8.40 at 6.80/kg: a weight whose amount is exactly 8.40.
        let line = scan(&ean("201000100840"), &[format("price_cents")]).expect("price label");
        assert_eq!(line.amount, dec!(8.40));
        assert_eq!(round_money(line.qty * dec!(6.80)), dec!(8.40));
        assert_eq!(weight_for_price(dec!(8.40), Decimal::ZERO), None);
        // Weighed lines never merge.
        let mut cart = Cart::default();
        cart.add(line.clone()).expect("adds");
        cart.add(line).expect("adds");
        assert_eq!(cart.lines().len(), 2);
    }

    proptest! {
        /// A weight found for a price label prices to exactly the label, is positive and
        /// fits a document line; and at any price up to 100.00 a unit (where 0.0001 of a
        /// unit is worth at most a cent) every label a real weight printed is found.
        #[test]
        fn label_weights_price_to_the_label(grams in 1i64..100_000_000, price_cents in 1i64..1_000_000, label_cents in 1i64..100_000_000) {
            let unit_price = Decimal::new(price_cents, 2);
            for label in [round_money(Decimal::new(grams, 3) * unit_price), Decimal::new(label_cents, 2)] {
                match weight_for_price(label, unit_price) {
                    Some(q) => {
                        prop_assert!(q > Decimal::ZERO && q.scale() <= QTY_SCALE_MAX, "{q}");
                        prop_assert_eq!(round_money(q * unit_price), label);
                    }
                    None => prop_assert!(
                        label <= Decimal::ZERO || unit_price > dec!(100) || label == Decimal::new(label_cents, 2),
                        "no weight for the label {} printed at {}/kg", label, unit_price
                    ),
                }
            }
        }

        /// A typed code with a quantity becomes one counted line at the catalog price,
        /// its amount by the document's rounding rule; codes outside the catalog and
        /// products without a till price are refused, never priced at zero.
        #[test]
        fn typed_codes_price_from_the_catalog(i in 0usize..5, qty in (1i64..999_990_000).prop_map(|m| Decimal::new(m, 4))) {
            let catalog = catalog();
            let code = ["6901234567892", "036000291452", "10001", "4006381333931", "777"][i];
            match resolve(&Scanned::Other(code.into()), Some(qty), &catalog) {
                Ok(line) => {
                    let p = &catalog[&line.product];
                    prop_assert_eq!(Some(line.unit_price), p.retail_price);
                    prop_assert_eq!((line.qty, line.amount, line.counted), (qty, round_money(qty * line.unit_price), true));
                }
                Err(e) => prop_assert!(
                    !matches!(ProductCode::new(code).ok().and_then(|c| catalog.get(&c)), Some(p) if p.retail_price.is_some()),
                    "{code} refused: {e}"
                ),
            }
        }
    }
}
