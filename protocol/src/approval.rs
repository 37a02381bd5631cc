//! Approvals (审批), sans-IO: which documents need HQ's approval before they may post
//! (the rules travel in the versioned branch profile), and the signed message that carries
//! a draft up to HQ.
//!
//! - [`ApprovalRules`] is part of `BranchProfile`: a document is judged against the rules of
//!   the version it names, at the branch when it is posted and at HQ when it arrives, so
//!   both sides reach the same verdict from the same journal.
//! - [`needs_approval`] is the rule: gifts (a goods line given free on a sale or retail),
//!   stock losses above a threshold (valued at cost), sales below cost, and credit sales
//!   that take a customer past its credit limit. It reads the books before the document
//!   and the document's computed posting; it changes nothing.
//! - [`SignedDraft`]: a draft as exact bytes (format byte, then postcard of [`DraftUp`])
//!   and the branch's ed25519 signature over them, bounded and versioned like batches.
//!   HQ keeps drafts by `(branch, id)`: the same id again with the same bytes is a
//!   harmless resend, with other bytes a refusal.
//!
//! Must not do I/O, read the clock, or know how either side stores drafts or decisions.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::books::{Books, Posting, Side};
use crate::codes::BranchCode;
use crate::document::{DocType, Document, Draft};
use crate::profile::BranchProfile;

/// Format of `SignedDraft::body_bytes`, its first byte. Readers refuse versions they do not know.
pub const DRAFT_FORMAT_VERSION: u8 = 1;
/// Most body bytes of one draft (a thousand-line document is well under it).
pub const DRAFT_BODY_BYTES_MAX: usize = 512 * 1024;
/// Most reasons a draft carries (one per rule and line at most; bounded anyway).
pub const DRAFT_REASONS_MAX: usize = 16;
/// Longest reason text, in bytes.
pub const DRAFT_REASON_BYTES_MAX: usize = 500;
/// Most drafts a branch keeps waiting for HQ's decision; past it, drafting is refused
/// until HQ decides (or a draft is posted), rather than grow without bound offline.
pub const DRAFTS_WAITING_MAX: usize = 500;

/// Which documents need HQ's approval before they may post. The default needs none.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApprovalRules {
    /// A goods line given free (amount 0) on a sale (`XS`) or retail sale (`LS`).
    pub gifts: bool,
    /// A stock loss (`BS`) whose value at cost is above this amount.
    #[serde(with = "crate::decimal_serde::option")]
    pub stock_loss_above: Option<Decimal>,
    /// A sale or retail sale whose revenue is below the cost of the goods it takes out.
    pub below_cost: bool,
    /// A credit sale that takes the customer's receivable past its credit limit.
    pub over_credit_limit: bool,
}

impl ApprovalRules {
    pub fn is_empty(&self) -> bool {
        *self == ApprovalRules::default()
    }

    /// Refuses a negative threshold (HQ checks before it issues the rules).
    pub fn validate(&self) -> Result<(), String> {
        match self.stock_loss_above {
            Some(t) if t.is_sign_negative() && !t.is_zero() => Err(format!("stock_loss_above {t} is negative")),
            _ => Ok(()),
        }
    }
}

/// Why a document needs HQ's approval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Need {
    #[error("line {line} ({product}) is given free (a gift)")]
    Gift { line: usize, product: String },
    #[error("the stock loss is worth {value} at cost, above the {threshold} HQ allows without approval")]
    StockLossAbove { value: Decimal, threshold: Decimal },
    #[error("it sells for {revenue}, below the goods' cost {cost}")]
    BelowCost { revenue: Decimal, cost: Decimal },
    #[error("customer {customer} would owe {owed_after}, over its credit limit {limit}")]
    OverCreditLimit { customer: String, owed_after: Decimal, limit: Decimal },
}

/// Whether `doc`, whose posting against `books` is `posting`, needs approval under the
/// rules of `profile` (the version the document names). Reversals never do: HQ ordered or
/// allowed them, and they only undo.
pub fn needs_approval(doc: &Document, posting: &Posting, books: &Books, profile: &BranchProfile) -> Vec<Need> {
    let rules = &profile.approvals;
    let h = &doc.header;
    let mut needs = Vec::new();
    if rules.is_empty() || h.ext.reverses.is_some() {
        return needs;
    }
    let selling = matches!(h.doc_type, DocType::Sale | DocType::Retail);
    if rules.gifts && selling {
        for (i, l) in doc.lines.iter().enumerate() {
            if l.amount.is_zero() && !l.qty.is_zero() {
                needs.push(Need::Gift { line: i + 1, product: l.product.to_string() });
            }
        }
    }
    if let (Some(threshold), DocType::StockLoss) = (rules.stock_loss_above, h.doc_type) {
        let value = posting.cost_out();
        if value > threshold {
            needs.push(Need::StockLossAbove { value, threshold });
        }
    }
    if rules.below_cost && selling {
        let (revenue, cost) = (doc.total(), posting.cost_out());
        if revenue < cost {
            needs.push(Need::BelowCost { revenue, cost });
        }
    }
    if rules.over_credit_limit && h.doc_type == DocType::Sale {
        if let Some(customer) = &h.counterparty {
            let added: Decimal =
                posting.parties.iter().filter(|(side, c, _)| *side == Side::Receivable && c == customer).map(|(_, _, d)| *d).sum();
            if let Some(limit) = profile.credit_limit(customer) {
                let owed_after = books.parties().get(&(Side::Receivable, *customer)).copied().unwrap_or_default() + added;
                if added > Decimal::ZERO && owed_after > limit {
                    needs.push(Need::OverCreditLimit { customer: customer.to_string(), owed_after, limit });
                }
            }
        }
    }
    needs.truncate(DRAFT_REASONS_MAX);
    needs
}

/// The reasons as one sentence for people (`needs HQ approval: …`).
pub fn describe(needs: &[Need]) -> String {
    needs.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// Whether `doc` is the document `draft` describes: what HQ approved is what was posted
/// (type, date, warehouse, counterparty, memo, payment, lines and ext, the approval
/// reference aside). The operator may differ: whoever posts it signs it.
pub fn matches(draft: &Draft, doc: &Document) -> bool {
    let h = &doc.header;
    let ext = crate::document::DocExt { approval: None, ..h.ext.clone() };
    let draft_ext = crate::document::DocExt { approval: None, ..draft.ext.clone() };
    draft.doc_type == h.doc_type
        && draft.date == h.date
        && draft.warehouse == h.warehouse
        && draft.counterparty == h.counterparty
        && draft.memo == h.memo
        && draft.payment == h.payment
        && draft.lines == doc.lines
        && draft_ext == ext
}

/// A draft as the branch sends it up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftUp {
    pub branch: BranchCode,
    /// 1, 2, 3… per branch (the branch's draft counter); HQ keeps one draft per id.
    pub id: u64,
    /// When the branch stored it (its clock, for people only).
    pub created_unix: u64,
    /// The profile version whose rules asked for approval.
    pub profile_version: u64,
    pub draft: Draft,
    /// Why it needs approval, as the branch judged it (shown at HQ).
    pub needs: Vec<Need>,
}

/// Why a draft message was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DraftError {
    #[error("draft message of {bytes} bytes, at most {max}")]
    TooLarge { bytes: usize, max: usize },
    #[error("draft not signed by branch {branch}'s enrolled key (forged or damaged); refused")]
    Forged { branch: BranchCode },
    #[error("draft format {found}, this build reads {supported}; upgrade")]
    UnsupportedVersion { found: u8, supported: u8 },
    #[error("malformed draft message: {0}")]
    Malformed(String),
    #[error("draft {id} is from branch {claimed}, sent on {session}'s connection; refused")]
    OtherBranch { id: u64, claimed: BranchCode, session: BranchCode },
    #[error("draft id 0 is not a draft")]
    ZeroId,
    #[error("draft carries {count} reasons, at most {max}")]
    TooManyReasons { count: usize, max: usize },
}

/// A draft as exact bytes and the branch's signature over them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedDraft {
    pub body_bytes: Vec<u8>,
    pub signature: Signature,
}

impl SignedDraft {
    pub fn sign(up: &DraftUp, key: &SigningKey) -> Result<SignedDraft, DraftError> {
        check(up)?;
        let mut body_bytes = vec![DRAFT_FORMAT_VERSION];
        body_bytes = postcard::to_extend(up, body_bytes).expect("encoding an in-memory draft into a Vec cannot fail");
        if body_bytes.len() > DRAFT_BODY_BYTES_MAX {
            return Err(DraftError::TooLarge { bytes: body_bytes.len(), max: DRAFT_BODY_BYTES_MAX });
        }
        let signature = key.sign(&body_bytes);
        Ok(SignedDraft { body_bytes, signature })
    }

    /// Checks size, then the signature against `branch`'s enrolled key, then version,
    /// then decodes and checks the branch and bounds. Touches no state.
    pub fn open(&self, branch: &BranchCode, key: &VerifyingKey) -> Result<DraftUp, DraftError> {
        if self.body_bytes.len() > DRAFT_BODY_BYTES_MAX {
            return Err(DraftError::TooLarge { bytes: self.body_bytes.len(), max: DRAFT_BODY_BYTES_MAX });
        }
        if key.verify(&self.body_bytes, &self.signature).is_err() {
            return Err(DraftError::Forged { branch: *branch });
        }
        let (&version, rest) = self.body_bytes.split_first().ok_or_else(|| DraftError::Malformed("empty body".into()))?;
        if version != DRAFT_FORMAT_VERSION {
            return Err(DraftError::UnsupportedVersion { found: version, supported: DRAFT_FORMAT_VERSION });
        }
        let (up, tail): (DraftUp, _) = postcard::take_from_bytes(rest).map_err(|e| DraftError::Malformed(e.to_string()))?;
        if !tail.is_empty() {
            return Err(DraftError::Malformed(format!("{} bytes after the draft", tail.len())));
        }
        if up.branch != *branch {
            return Err(DraftError::OtherBranch { id: up.id, claimed: up.branch, session: *branch });
        }
        check(&up)?;
        up.draft.validate().map_err(|e| DraftError::Malformed(e.to_string()))?;
        Ok(up)
    }

    /// The frame a wire message carries.
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("encoding an in-memory message into a Vec cannot fail")
    }

    /// Reads a frame, bounded before anything is allocated from a peer's length.
    pub fn from_bytes(bytes: &[u8]) -> Result<SignedDraft, DraftError> {
        let max = DRAFT_BODY_BYTES_MAX + 16 + 64;
        if bytes.len() > max {
            return Err(DraftError::TooLarge { bytes: bytes.len(), max });
        }
        postcard::from_bytes(bytes).map_err(|e| DraftError::Malformed(e.to_string()))
    }
}

fn check(up: &DraftUp) -> Result<(), DraftError> {
    if up.id == 0 {
        return Err(DraftError::ZeroId);
    }
    if up.needs.len() > DRAFT_REASONS_MAX {
        return Err(DraftError::TooManyReasons { count: up.needs.len(), max: DRAFT_REASONS_MAX });
    }
    Ok(())
}

#[cfg(test)]
#[path = "approval_tests.rs"]
mod tests;
