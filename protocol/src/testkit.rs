//! Builders shared by the crate's tests and by benchmarks and property tests elsewhere.
//! Deterministic: everything derives from the numbers passed in.

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
