//! Retail barcodes: GTIN check digits (EAN-13, EAN-8, UPC-A) and in-store weighed-item
//! codes (EAN-13 starting with 2, carrying an item code and a price or weight).
//!
//! Pure functions on strings: a scanner hands in what it read, this module says what it
//! is or why it cannot be right. It knows nothing about products or prices in the books.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Why a scanned code is not a valid retail barcode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BarcodeError {
    #[error("barcode {code:?} has {len} digits; EAN-13 has 13, UPC-A 12, EAN-8 8")]
    Length { code: String, len: usize },
    #[error("barcode {code:?} holds a character that is not a digit")]
    NotDigits { code: String },
    #[error("barcode {code} has check digit {found}, expected {expected}: it was misread")]
    CheckDigit { code: String, found: u8, expected: u8 },
    #[error("barcode {code} has price check digit {found}, expected {expected}: it was misread")]
    PriceCheckDigit { code: String, found: u8, expected: u8 },
}

/// The kind of GTIN, told apart by length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Symbology {
    Ean13,
    Ean8,
    UpcA,
}

/// A GTIN whose check digit is right. Only [`Gtin::parse`] makes one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Gtin {
    digits: String,
    symbology: Symbology,
}

impl Gtin {
    pub fn parse(code: &str) -> Result<Gtin, BarcodeError> {
        let symbology = match code.len() {
            13 => Symbology::Ean13,
            12 => Symbology::UpcA,
            8 => Symbology::Ean8,
            len => return Err(BarcodeError::Length { code: code.to_owned(), len }),
        };
        let digits = digits_of(code)?;
        let (&found, body) = digits.split_last().expect("length checked above");
        let expected = check_digit(body);
        if found != expected {
            return Err(BarcodeError::CheckDigit { code: code.to_owned(), found, expected });
        }
        Ok(Gtin { digits: code.to_owned(), symbology })
    }

    pub fn as_str(&self) -> &str {
        &self.digits
    }

    pub fn symbology(&self) -> Symbology {
        self.symbology
    }
}

impl std::fmt::Display for Gtin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.digits)
    }
}

fn digits_of(code: &str) -> Result<Vec<u8>, BarcodeError> {
    code.bytes().map(|b| if b.is_ascii_digit() { Ok(b - b'0') } else { Err(BarcodeError::NotDigits { code: code.to_owned() }) }).collect()
}

/// The GS1 mod-10 check digit of `body` (the digits before the check digit). Weights 3
/// and 1 alternate from the rightmost digit, which makes one function serve EAN-13, EAN-8,
/// UPC-A and GTIN-14.
pub fn check_digit(body: &[u8]) -> u8 {
    let sum: u32 = body.iter().rev().enumerate().map(|(i, &d)| u32::from(d) * if i % 2 == 0 { 3 } else { 1 }).sum();
    u8::try_from((10 - sum % 10) % 10).expect("a value below 10")
}

// Weighted products of the GS1 price check digit (General Specifications 7.9.3). Each
// table maps a digit to the units digit of its weighted product.
const WEIGHT_2_MINUS: [u8; 10] = [0, 2, 4, 6, 8, 9, 1, 3, 5, 7];
const WEIGHT_3: [u8; 10] = [0, 3, 6, 9, 2, 5, 8, 1, 4, 7];
const WEIGHT_5_PLUS: [u8; 10] = [0, 5, 1, 6, 2, 7, 3, 8, 4, 9];
const WEIGHT_5_MINUS: [u8; 10] = [0, 5, 9, 4, 8, 3, 7, 2, 6, 1];

/// The GS1 price (or measure) verifier digit of a 4- or 5-digit value; `None` for other
/// lengths, which have no such digit.
pub fn price_check_digit(value: &[u8]) -> Option<u8> {
    if value.iter().any(|&d| d > 9) {
        return None;
    }
    let at = |i: usize| usize::from(value[i]);
    match value.len() {
        4 => {
            let sum = u32::from(WEIGHT_2_MINUS[at(0)])
                + u32::from(WEIGHT_2_MINUS[at(1)])
                + u32::from(WEIGHT_3[at(2)])
                + u32::from(WEIGHT_5_MINUS[at(3)]);
            Some(u8::try_from(sum * 3 % 10).expect("below 10"))
        }
        5 => {
            let sum = u32::from(WEIGHT_5_PLUS[at(0)])
                + u32::from(WEIGHT_2_MINUS[at(1)])
                + u32::from(WEIGHT_5_MINUS[at(2)])
                + u32::from(WEIGHT_5_PLUS[at(3)])
                + u32::from(WEIGHT_2_MINUS[at(4)]);
            let target = u8::try_from((10 - sum % 10) % 10).expect("below 10");
            // The check digit is the one whose 5- product equals the target.
            WEIGHT_5_MINUS.iter().position(|&p| p == target).and_then(|d| u8::try_from(d).ok())
        }
        _ => None,
    }
}

/// What the variable part of a weighed-item code holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueKind {
    /// The item's price in cents (fen): 01234 is 12.34.
    PriceCents,
    /// The item's net weight in grams: 01234 is 1.234 kg.
    WeightGrams,
}

/// One store's layout of in-store EAN-13 codes printed by its label scales:
/// `prefix` + item code + optional price check digit + value + EAN check digit = 13.
///
/// Example: with prefix "20", a 5-digit item code and a 5-digit price in cents, the code
/// `20 12345 01234 c` is item 12345 priced 12.34. The unit tests hold worked codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WeighedFormatSpec", into = "WeighedFormatSpec")]
pub struct WeighedFormat {
    spec: WeighedFormatSpec,
}

/// The serialized fields of a [`WeighedFormat`], checked on the way in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeighedFormatSpec {
    /// Leading digits that mark the format, e.g. "2", "20" or "28".
    pub prefix: String,
    pub item_digits: u8,
    pub value_digits: u8,
    pub value: ValueKind,
    /// A GS1 price check digit sits between the item code and the value.
    #[serde(default)]
    pub price_check_digit: bool,
}

impl TryFrom<WeighedFormatSpec> for WeighedFormat {
    type Error = String;
    fn try_from(spec: WeighedFormatSpec) -> Result<Self, String> {
        if spec.prefix.is_empty() || !spec.prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("weighed barcode prefix {:?} must be one or more digits", spec.prefix));
        }
        let inner = usize::from(spec.price_check_digit);
        let total = spec.prefix.len() + usize::from(spec.item_digits) + inner + usize::from(spec.value_digits) + 1;
        if total != 13 {
            return Err(format!(
                "weighed barcode format adds up to {total} digits (prefix {} + item {} + price check {inner} + value {} + check 1); an EAN-13 has 13",
                spec.prefix.len(),
                spec.item_digits,
                spec.value_digits
            ));
        }
        if spec.item_digits == 0 || spec.value_digits == 0 {
            return Err("weighed barcode item and value need at least one digit each".to_owned());
        }
        if spec.price_check_digit && !(4..=5).contains(&spec.value_digits) {
            return Err("a price check digit exists only for 4- or 5-digit values".to_owned());
        }
        Ok(WeighedFormat { spec })
    }
}

impl From<WeighedFormat> for WeighedFormatSpec {
    fn from(f: WeighedFormat) -> Self {
        f.spec
    }
}

/// The value read from a weighed-item code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeighedValue {
    /// Price in currency units, two decimals.
    Price(Decimal),
    /// Net weight in kilograms, three decimals.
    WeightKg(Decimal),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeighedItem {
    /// The item code as printed, leading zeros kept; the caller looks it up.
    pub item_code: String,
    pub value: WeighedValue,
    pub barcode: Gtin,
}

impl WeighedFormat {
    pub fn spec(&self) -> &WeighedFormatSpec {
        &self.spec
    }

    /// Reads `gtin` with this format; `Ok(None)` when it is not an EAN-13 with this prefix.
    pub fn decode(&self, gtin: &Gtin) -> Result<Option<WeighedItem>, BarcodeError> {
        let code = gtin.as_str();
        if gtin.symbology() != Symbology::Ean13 || !code.starts_with(&self.spec.prefix) {
            return Ok(None);
        }
        let s = &self.spec;
        let item_at = s.prefix.len();
        let check_at = item_at + usize::from(s.item_digits);
        let value_at = check_at + usize::from(s.price_check_digit);
        let value_end = value_at + usize::from(s.value_digits);
        let item_code = &code[item_at..check_at];
        let value_text = &code[value_at..value_end];
        let value_digits = digits_of(value_text)?;
        if s.price_check_digit {
            let found = code.as_bytes()[check_at] - b'0';
            let expected = price_check_digit(&value_digits).expect("format checked 4 or 5 digits");
            if found != expected {
                return Err(BarcodeError::PriceCheckDigit { code: code.to_owned(), found, expected });
            }
        }
        let raw: i64 = value_digits.iter().fold(0, |acc, &d| acc * 10 + i64::from(d));
        let value = match s.value {
            ValueKind::PriceCents => WeighedValue::Price(Decimal::new(raw, 2)),
            ValueKind::WeightGrams => WeighedValue::WeightKg(Decimal::new(raw, 3)),
        };
        Ok(Some(WeighedItem { item_code: item_code.to_owned(), value, barcode: gtin.clone() }))
    }
}

/// What a scanned code is, after checking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scanned {
    /// An EAN-13, EAN-8 or UPC-A with a right check digit.
    Product(Gtin),
    /// An in-store code from a label scale.
    Weighed(WeighedItem),
    /// Anything else (Code128, QR, a member card): passed on as read.
    Other(String),
}

/// Sorts a scanned code: a GTIN-length all-digit code must have a right check digit (a
/// wrong one is a misread, never another kind of code), then the store's weighed formats
/// are tried in order.
pub fn interpret(code: &str, formats: &[WeighedFormat]) -> Result<Scanned, BarcodeError> {
    let gtin_like = matches!(code.len(), 8 | 12 | 13) && code.bytes().all(|b| b.is_ascii_digit());
    if !gtin_like {
        return Ok(Scanned::Other(code.to_owned()));
    }
    let gtin = Gtin::parse(code)?;
    for format in formats {
        if let Some(item) = format.decode(&gtin)? {
            return Ok(Scanned::Weighed(item));
        }
    }
    Ok(Scanned::Product(gtin))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits(s: &str) -> Vec<u8> {
        s.bytes().map(|b| b - b'0').collect()
    }

    fn format(prefix: &str, item: u8, value: u8, kind: ValueKind, inner: bool) -> WeighedFormat {
        WeighedFormat::try_from(WeighedFormatSpec {
            prefix: prefix.to_owned(),
            item_digits: item,
            value_digits: value,
            value: kind,
            price_check_digit: inner,
        })
        .expect("valid format")
    }

    /// Appends the EAN check digit to 12 digits.
    fn ean(body: &str) -> String {
        format!("{body}{}", check_digit(&digits(body)))
    }

    #[test]
    fn real_gtins_pass() {
        for code in ["6901234567892", "4006381333931", "9501101531000", "96385074", "036000291452"] {
            Gtin::parse(code).unwrap_or_else(|e| panic!("{code}: {e}"));
        }
        assert_eq!(Gtin::parse("96385074").map(|g| g.symbology()), Ok(Symbology::Ean8));
        assert_eq!(Gtin::parse("036000291452").map(|g| g.symbology()), Ok(Symbology::UpcA));
    }

    #[test]
    fn misread_is_a_clear_error() {
        let e = Gtin::parse("6901234567891").expect_err("wrong check digit");
        assert_eq!(e, BarcodeError::CheckDigit { code: "6901234567891".into(), found: 1, expected: 2 });
        assert_eq!(e.to_string(), "barcode 6901234567891 has check digit 1, expected 2: it was misread");
        assert!(matches!(Gtin::parse("69012345678"), Err(BarcodeError::Length { len: 11, .. })));
        assert!(matches!(Gtin::parse("69012345678X2"), Err(BarcodeError::NotDigits { .. })));
    }

    #[test]
    fn price_check_digits_from_gs1_examples() {
        assert_eq!(price_check_digit(&digits("2875")), Some(9));
        assert_eq!(price_check_digit(&digits("14685")), Some(6));
        assert_eq!(price_check_digit(&digits("123")), None);
    }

    #[test]
    fn weighed_price_code() {
        // "20" + item 12345 + price 01234 (12.34) + EAN check.
        let code = ean("201234501234");
        let f = format("20", 5, 5, ValueKind::PriceCents, false);
        let Scanned::Weighed(item) = interpret(&code, &[f]).expect("valid") else { panic!("not weighed") };
        assert_eq!(item.item_code, "12345");
        assert_eq!(item.value, WeighedValue::Price(Decimal::new(1234, 2)));
    }

    #[test]
    fn weighed_weight_code_with_price_check_digit() {
        // "2" + flag 8 + item 0042 + inner check of 14685 (6) + 14685 g + EAN check.
        let code = ean("280042614685");
        let f = format("28", 4, 5, ValueKind::WeightGrams, true);
        let Scanned::Weighed(item) = interpret(&code, std::slice::from_ref(&f)).expect("valid") else { panic!("not weighed") };
        assert_eq!(item.item_code, "0042");
        assert_eq!(item.value, WeighedValue::WeightKg(Decimal::new(14685, 3)));

        let bad = ean("280042514685");
        assert!(matches!(interpret(&bad, &[f]), Err(BarcodeError::PriceCheckDigit { found: 5, expected: 6, .. })));
    }

    #[test]
    fn other_prefixes_stay_products() {
        let f = format("2", 6, 5, ValueKind::PriceCents, false);
        assert!(matches!(interpret("6901234567892", &[f]), Ok(Scanned::Product(_))));
        assert_eq!(interpret("DOC-0001", &[]), Ok(Scanned::Other("DOC-0001".into())));
    }

    #[test]
    fn format_must_add_up_to_13() {
        let spec = WeighedFormatSpec {
            prefix: "2".into(),
            item_digits: 5,
            value_digits: 5,
            value: ValueKind::PriceCents,
            price_check_digit: false,
        };
        let e = WeighedFormat::try_from(spec).expect_err("12 digits");
        assert!(e.contains("adds up to 12"), "{e}");
    }
}
