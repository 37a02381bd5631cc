//! Loans of goods (借出 / 借进 and their returns): quantities only, off the book stock
//! and the general ledger.
//!
//! Must not: move stock or post to the general ledger.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::{Builder, PostError};
use crate::books::Loan;
use crate::codes::ProductCode;
use crate::document::DocType;

/// Lends or borrows goods, or returns them; a return may not exceed what is out, lines
/// repeating a product counted together.
pub(super) fn loan(b: &mut Builder<'_>) -> Result<(), PostError> {
    let doc = b.doc;
    let p = b.party()?;
    let (kind, sign) = match b.doc_type() {
        DocType::LendOut => (Loan::LentOut, Decimal::ONE),
        DocType::LendReturn => (Loan::LentOut, Decimal::NEGATIVE_ONE),
        DocType::BorrowIn => (Loan::BorrowedIn, Decimal::ONE),
        t => {
            assert_eq!(t, DocType::BorrowReturn);
            (Loan::BorrowedIn, Decimal::NEGATIVE_ONE)
        }
    };
    let mut pending: BTreeMap<&ProductCode, Decimal> = BTreeMap::new();
    for l in &doc.lines {
        let out = pending.entry(&l.product).or_insert_with(|| b.books.loans.get(&(kind, p, l.product)).copied().unwrap_or_default());
        if sign < Decimal::ZERO && l.qty > *out {
            return Err(PostError::NotEnoughOnLoan { party: p, product: l.product, outstanding: *out, returning: l.qty });
        }
        *out += sign * l.qty;
        b.p.loans.push((kind, p, l.product, sign * l.qty));
    }
    Ok(())
}
