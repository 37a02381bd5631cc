//! The quarantine rule: what a posting error means, depending on when it happens.
//!
//! A document arriving at HQ was posted by its branch under the branch's profile; HQ
//! posts it again under its own, which may have changed since (a warehouse moved to
//! another branch, a product withdrawn) or may hold books the branch never saw. Such a
//! refusal is a fact about the document, not about HQ: the document is kept, marked
//! quarantined with the reason, and does not touch the books, and the chain advances so
//! later documents are not held hostage. On replay the same documents are posted again
//! in the same order with the same function, so an applied entry that no longer posts
//! means the stored journal changed: the store is damaged.
//!
//! `classify` is the rule for an arriving document, which names the profile version it
//! was posted under (principle: HQ's books = the branch's books whenever the branch ran
//! the same code):
//! - posts under the version it claims, and the current version allows it too: apply;
//! - posts under the version it claims, but HQ has since replaced that version with one
//!   that refuses it: apply and FLAG for review (posted in good faith);
//! - breaks the version it claims, or claims a version HQ never issued (only a faulty or
//!   tampered branch): if it posts at all (the books alone allow it), apply and
//!   QUARANTINE, so the documents after it merge as at the branch;
//! - cannot post at all: QUARANTINE and leave it out of the books.
//!
//! Pure; must not touch storage.

use crate::error::PostError;
use crate::profile::BranchProfile;

/// The mark HQ keeps on an entry it applied or kept (shown at HQ, resolved by review).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Mark {
    /// Applied; posted in good faith under a version HQ has since replaced, whose
    /// successor would refuse it for `reason`.
    Flagged { reason: String },
    /// Breaks the version it claims (or claims one HQ never issued); applied to the books
    /// when `applied`, else left out.
    Quarantined { reason: String, applied: bool },
}

impl Mark {
    /// Whether the entry's posting is in the books (replay applies it again).
    pub fn applied(&self) -> bool {
        match self {
            Mark::Flagged { .. } => true,
            Mark::Quarantined { applied, .. } => *applied,
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Mark::Flagged { reason } | Mark::Quarantined { reason, .. } => reason,
        }
    }
}

/// What to do with an arriving document: apply `posting` (if any) and keep `mark` (if any).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Classified<P> {
    pub posting: Option<P>,
    pub mark: Option<Mark>,
}

/// The classification of an arriving document claiming profile version `claimed_version`.
/// `claimed` is HQ's copy of that version (`None`: HQ never issued it), `current` the
/// version HQ holds now; `post_under(Some(profile))` posts with the profile's checks,
/// `post_under(None)` with the books' alone. Each posting is computed at most once more
/// than needed: the current version is tried only when it differs from the claimed one.
pub fn classify<P>(
    claimed_version: u64,
    claimed: Option<&BranchProfile>,
    current: &BranchProfile,
    mut post_under: impl FnMut(Option<&BranchProfile>) -> Result<P, PostError>,
) -> Classified<P> {
    let breach = match claimed {
        Some(profile) => match post_under(Some(profile)) {
            Ok(p) => {
                if profile.version == current.version {
                    return Classified { posting: Some(p), mark: None };
                }
                let mark = post_under(Some(current)).err().map(|e| Mark::Flagged {
                    reason: format!("posted under profile v{claimed_version}; v{} would refuse it: {e}", current.version),
                });
                return Classified { posting: Some(p), mark };
            }
            Err(e) => format!("breaks profile v{claimed_version} it claims: {e}"),
        },
        None => format!("claims profile v{claimed_version}, which HQ never issued to this branch"),
    };
    match post_under(None) {
        Ok(p) => Classified { posting: Some(p), mark: Some(Mark::Quarantined { reason: breach, applied: true }) },
        Err(e) => {
            Classified { posting: None, mark: Some(Mark::Quarantined { reason: format!("{breach}; does not post: {e}"), applied: false }) }
        }
    }
}

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
    use crate::books::{post, Books, PostContext};
    use crate::codes::{BranchCode, ProductCode, WarehouseCode};
    use crate::document::{DocType, Document};
    use crate::profile::Product;
    use crate::scope::Scope;
    use crate::testkit::sample_doc_lines;

    fn profile(version: u64, scope: &str) -> BranchProfile {
        let products = ["P0000", "P0001"]
            .into_iter()
            .map(|c| {
                let p = Product { name: c.into(), unit: String::new(), retail_price: None, prices: Vec::new(), category: None };
                (ProductCode::new(c).expect("code"), p)
            })
            .collect();
        BranchProfile {
            branch: BranchCode::new("SH").expect("code"),
            name: "Shanghai".into(),
            warehouses: Default::default(),
            products,
            credit_limits: Default::default(),
            overdrafts: Default::default(),
            version,
            scope: Some(scope.parse::<Scope>().expect("scope")),
            parties: Default::default(),
            people: Vec::new(),
            approvals: Default::default(),
        }
    }

    fn run(doc: &Document, claimed: u64, claimed_p: Option<&BranchProfile>, current: &BranchProfile) -> Classified<()> {
        classify(claimed, claimed_p, current, |p| post(&Books::default(), doc, p.map(PostContext::under).unwrap_or_default()).map(|_| ()))
    }

    const WIDE: &str = "warehouses=SH*; categories=*; customers=*; suppliers=*; employees=*; accounts=*; expenses=*; incomes=*";
    const NARROW: &str = "warehouses=SH02; categories=*; customers=*; suppliers=*; employees=*; accounts=*; expenses=*; incomes=*";

    #[test]
    fn the_four_classes() {
        let gain = sample_doc_lines("SH", "SH01", DocType::StockGain, 1, 1);
        let (v1, v2) = (profile(1, WIDE), profile(2, NARROW));
        // Same version, in scope: apply.
        assert_eq!(run(&gain, 1, Some(&v1), &v1), Classified { posting: Some(()), mark: None });
        // Good faith under a replaced version: apply and flag, with the current reason.
        let c = run(&gain, 1, Some(&v1), &v2);
        assert!(c.posting.is_some());
        let Some(Mark::Flagged { reason }) = c.mark else { panic!("flagged: {:?}", c.mark) };
        assert!(reason.contains("v2 would refuse it") && reason.contains("warehouse SH01 is outside SH's warehouses SH02"), "{reason}");
        // Breaks the version it claims: applied and quarantined.
        let c = run(&gain, 2, Some(&v2), &v2);
        assert!(c.posting.is_some());
        assert!(
            matches!(&c.mark, Some(Mark::Quarantined { applied: true, reason }) if reason.contains("breaks profile v2")),
            "{:?}",
            c.mark
        );
        // Claims a version never issued: applied and quarantined.
        let c = run(&gain, 9, None, &v2);
        assert!(matches!(&c.mark, Some(Mark::Quarantined { applied: true, reason }) if reason.contains("never issued")), "{:?}", c.mark);
        // Cannot post at all (stock it does not have): quarantined, out of the books.
        let loss = sample_doc_lines("SH", "SH01", DocType::StockLoss, 2, 1);
        let c = run(&loss, 1, Some(&v1), &v1);
        assert_eq!(c.posting, None);
        assert!(matches!(&c.mark, Some(Mark::Quarantined { applied: false, .. })), "{:?}", c.mark);
        assert!(c.mark.as_ref().is_some_and(|m| !m.applied()));
    }

    #[test]
    fn an_arriving_refusal_quarantines_with_its_reason_and_a_replayed_one_is_damage() {
        let errors = [
            PostError::UnknownProduct { product: ProductCode::new("P0001").expect("code") },
            PostError::NegativeStock {
                warehouse: WarehouseCode::new("HB01").expect("code"),
                product: ProductCode::new("P0001").expect("code"),
                on_hand: Default::default(),
                needed: Default::default(),
                method: Default::default(),
            },
            PostError::OpeningAfterPosting,
        ];
        for err in &errors {
            assert_eq!(verdict(PostPass::Arriving, err), Verdict::Quarantine { reason: err.to_string() });
            assert_eq!(verdict(PostPass::Replay, err), Verdict::Damaged);
        }
    }
}
