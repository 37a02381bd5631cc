//! The names `Books::digest` hashes for enums and options.
//!
//! They spell exactly what `Debug` printed when the digest was defined (digests are
//! compared between branch and HQ builds, so their bytes must not change), but are written
//! out so that renaming a variant or deriving `Debug` differently cannot change a digest.
//!
//! Must not: change a name. A new variant needs a new name, and the test below pins them.

use super::{Consignment, Loan, Side};
use crate::document::{CostMethod, Period};

pub(super) fn cost_method(m: Option<CostMethod>) -> &'static str {
    match m {
        None => "None",
        Some(CostMethod::MovingAverage) => "Some(MovingAverage)",
        Some(CostMethod::Fifo) => "Some(Fifo)",
        Some(CostMethod::Lifo) => "Some(Lifo)",
    }
}

pub(super) fn closed_through(p: Option<Period>) -> String {
    match p {
        None => "None".into(),
        Some(Period { year, month }) => format!("Some(Period {{ year: {year}, month: {month} }})"),
    }
}

pub(super) fn side(s: Side) -> &'static str {
    match s {
        Side::Receivable => "Receivable",
        Side::Payable => "Payable",
    }
}

pub(super) fn consignment(k: Consignment) -> &'static str {
    match k {
        Consignment::OutToDealer => "OutToDealer",
        Consignment::InFromSupplier => "InFromSupplier",
    }
}

pub(super) fn loan(k: Loan) -> &'static str {
    match k {
        Loan::LentOut => "LentOut",
        Loan::BorrowedIn => "BorrowedIn",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digest's bytes must not change: each name is what `Debug` printed.
    #[test]
    fn names_spell_what_debug_printed() {
        for m in [None, Some(CostMethod::MovingAverage), Some(CostMethod::Fifo), Some(CostMethod::Lifo)] {
            assert_eq!(cost_method(m), format!("{m:?}"));
        }
        for p in [None, Some(Period { year: 2024, month: 1 }), Some(Period { year: 2199, month: 12 })] {
            assert_eq!(closed_through(p), format!("{p:?}"));
        }
        for s in [Side::Receivable, Side::Payable] {
            assert_eq!(side(s), format!("{s:?}"));
        }
        for k in [Consignment::OutToDealer, Consignment::InFromSupplier] {
            assert_eq!(consignment(k), format!("{k:?}"));
        }
        for k in [Loan::LentOut, Loan::BorrowedIn] {
            assert_eq!(loan(k), format!("{k:?}"));
        }
    }
}
