//! The receipt of a posted retail document, built from the journal entry alone (plus the
//! catalog for names), so a reprint is the same paper as the original. Pure: it reads
//! no store and prints nothing; `service` fetches the entry and hands the paper to the
//! printer.

use std::collections::BTreeMap;

use devices::{Receipt, ReceiptLine};
use protocol::codes::ProductCode;
use protocol::document::Document;
use protocol::profile::Product;
use protocol::Decimal;

use super::config::PaymentLabels;

/// The receipt of `doc`; `issued_at` is the printed date and time.
pub fn receipt_for(
    doc: &Document,
    catalog: &BTreeMap<ProductCode, Product>,
    store_name: &str,
    issued_at: String,
    labels: &PaymentLabels,
) -> Receipt {
    let payment = doc.header.payment;
    Receipt {
        store_name: store_name.to_owned(),
        document_number: doc.header.number.to_string(),
        issued_at,
        cashier: doc.header.operator.to_string(),
        lines: doc
            .lines
            .iter()
            .map(|l| ReceiptLine {
                name: catalog.get(&l.product).map_or_else(|| l.product.to_string(), |p| p.name.clone()),
                quantity: l.qty,
                unit_price: l.unit_price,
                amount: l.amount,
            })
            .collect(),
        total: doc.total(),
        payments: payment
            .iter()
            .map(|p| devices::receipt::Payment { method: labels.of(p.method).to_owned(), amount: p.tendered })
            .collect(),
        change: payment.map_or(Decimal::ZERO, |p| p.change),
        points: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::till::fixtures::catalog;
    use proptest::prelude::*;
    use protocol::codes::{BranchCode, OperatorId, WarehouseCode};
    use protocol::date::BusinessDate;
    use protocol::document::{DocType, Draft, Line, Payment, PaymentMethod};

    proptest! {
        /// Whatever was sold, the paper says what the journal says: one line per document
        /// line with the same figures, the document's total, what was tendered and the
        /// change; products HQ has since dropped print by their code.
        #[test]
        fn receipts_repeat_the_document(
            lines in proptest::collection::vec((0usize..5, 1i64..100_000, 0i64..100_000), 1..40),
            extra_cents in 0i64..10_000,
        ) {
            let codes = ["6901234567892", "036000291452", "10001", "4006381333931", "DROPPED1"];
            let lines: Vec<Line> = lines
                .into_iter()
                .map(|(i, qty, price)| Line::priced(ProductCode::new(codes[i]).expect("code"), Decimal::new(qty, 3), Decimal::new(price, 2)))
                .collect();
            let total: Decimal = lines.iter().map(|l| l.amount).sum();
            let tendered = total + Decimal::new(extra_cents, 2);
            let draft = Draft {
                doc_type: DocType::Retail,
                date: BusinessDate::parse("2026-06-09").expect("date"),
                operator: OperatorId::new("sh-li").expect("op"),
                warehouse: WarehouseCode::new("SH01").expect("wh"),
                counterparty: None,
                memo: String::new(),
                payment: Some(Payment { method: PaymentMethod::Cash, tendered, change: tendered - total }),
                lines,
                ext: Default::default(),
            };
            let doc = draft.number(BranchCode::new("SH").expect("b"), 1).expect("a valid sale");
            let r = receipt_for(&doc, &catalog(), "SH", "2026-06-09 10:00".into(), &PaymentLabels::default());
            prop_assert_eq!(r.lines.len(), doc.lines.len());
            for (p, l) in r.lines.iter().zip(&doc.lines) {
                prop_assert_eq!((p.quantity, p.unit_price, p.amount), (l.qty, l.unit_price, l.amount));
                let name = catalog().get(&l.product).map_or_else(|| l.product.to_string(), |c| c.name.clone());
                prop_assert_eq!(&p.name, &name);
            }
            prop_assert_eq!((r.total, r.change), (total, tendered - total));
            prop_assert_eq!(r.payments.len(), 1);
            prop_assert_eq!((r.payments[0].method.as_str(), r.payments[0].amount), ("Cash", tendered));
            prop_assert_eq!(r.document_number.as_str(), "LS-SH-0609-001");
        }
    }
}
