//! The quarantine rule: what a posting error means, depending on when it happens.
//!
//! A document arriving at HQ was posted by its branch under the branch's profile; HQ
//! posts it again under its own, which may have changed since (a warehouse moved to
//! another branch, a product withdrawn) or may hold books the branch never saw. Such a
//! refusal is a fact about the document, not about HQ: the document is kept, marked
//! quarantined with the reason, and does not touch the books, and the chain advances so
//! later documents are not held hostage. On replay the same documents are posted again
//! in the same order with the same function, so an applied entry that no longer posts
//! means the stored journal changed: the store is damaged. Pure; must not touch storage.

use crate::error::PostError;

/// When a document is being posted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostPass {
    /// The first time HQ posts it, as its batch arrives.
    Arriving,
    /// Again, replaying a journal HQ stored as applied.
    Replay,
}

/// What to do with a document that did not post.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Keep it with this reason, mark it quarantined, leave the books as they were.
    Quarantine { reason: String },
    /// The store contradicts itself: stop and report it.
    Damaged,
}

/// The verdict on `err`, met while posting a document in `pass`.
pub fn verdict(pass: PostPass, err: &PostError) -> Verdict {
    match pass {
        // Every refusal of an arriving document is about the document (its scope, its
        // catalog, its stock, its period): the branch cannot take it back, as it is
        // already chained and signed, so HQ keeps it and says why.
        PostPass::Arriving => Verdict::Quarantine { reason: err.to_string() },
        PostPass::Replay => Verdict::Damaged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::{ProductCode, WarehouseCode};

    #[test]
    fn an_arriving_refusal_quarantines_with_its_reason_and_a_replayed_one_is_damage() {
        let errors = [
            PostError::UnknownProduct { product: ProductCode::new("P0001").expect("code") },
            PostError::WarehouseOutOfScope { warehouse: WarehouseCode::new("HB01").expect("code"), allowed: "SH01".into() },
            PostError::OpeningAfterPosting,
        ];
        for err in &errors {
            assert_eq!(verdict(PostPass::Arriving, err), Verdict::Quarantine { reason: err.to_string() });
            assert_eq!(verdict(PostPass::Replay, err), Verdict::Damaged);
        }
    }
}
