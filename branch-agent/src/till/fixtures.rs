//! Test fixtures shared by the till's module tests: a small catalog and the scan path a
//! code takes from the scanner to a cart line. Compiled only for tests.

use std::collections::BTreeMap;

use devices::barcode::{check_digit, WeighedFormat};
use protocol::codes::ProductCode;
use protocol::profile::Product;
use protocol::Decimal;
use rust_decimal_macros::dec;

use super::cart::CartLine;
use super::error::TillError;
use super::resolve::{misread_message, resolve};

pub fn catalog() -> BTreeMap<ProductCode, Product> {
    let p = |name: &str, unit: &str, price: Option<Decimal>| Product {
        name: name.into(),
        unit: unit.into(),
        retail_price: price,
        prices: Vec::new(),
        category: None,
    };
    [
        ("6901234567892", p("矿泉水 550ml", "瓶", Some(dec!(2.00)))),
        ("036000291452", p("Tissues", "box", Some(dec!(5.50)))),
        ("10001", p("香蕉", "kg", Some(dec!(6.80)))),
        ("4006381333931", p("Pen", "pc", None)),
    ]
    .into_iter()
    .map(|(c, p)| (ProductCode::new(c).expect("code"), p))
    .collect()
}

/// A code as the scanner reads it, resolved against [`catalog`].
pub fn scan(code: &str, formats: &[WeighedFormat]) -> Result<CartLine, TillError> {
    let s = devices::interpret(code, formats).map_err(|e| TillError::Refused(misread_message(&e)))?;
    resolve(&s, None, &catalog())
}

/// `body` with its EAN check digit.
pub fn ean(body: &str) -> String {
    let digits: Vec<u8> = body.bytes().map(|b| b - b'0').collect();
    format!("{body}{}", check_digit(&digits))
}
