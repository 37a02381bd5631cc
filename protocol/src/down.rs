//! The signed down channel, HQ → branch, sans-IO: what HQ tells a branch (scope versions,
//! rejection notices, resolution orders, approval decisions), sequenced per branch and
//! signed by HQ's ed25519 key, with the same store-and-forward discipline as the up channel.
//!
//! - HQ keeps a [`DownQueue`] per branch: messages get seq 1, 2, 3…, are signed once when
//!   enqueued and resent from the branch's ack in bounded windows until acked.
//! - The branch keeps a [`DownReceiver`]: `receive` verifies the signature over the exact
//!   bytes *before* decoding, then refuses another branch's message, a replay
//!   (seq <= applied) and a gap (seq > applied + 1). It takes `&self`, so a refusal
//!   changes nothing. `applied(seq)` moves the mark once the branch has made the effect
//!   durable; the branch acks only then. So each message is applied exactly once, in order.
//!
//! This module must not do I/O, read the clock or decide what a message means to the
//! books; storage of the queue and of `applied_seq` is the caller's, as bytes.

use std::collections::VecDeque;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::codes::{BranchCode, OperatorId};
use crate::document::DocNumber;
use crate::scope::VersionedScope;

/// Format of `SignedDown::body_bytes`, its first byte. Readers refuse versions they do not know.
pub const DOWN_FORMAT_VERSION: u8 = 1;
/// Most body bytes of one down message (a scope is a few KB; master data will ride here too).
pub const DOWN_BODY_BYTES_MAX: usize = 1024 * 1024;
/// Longest reason, note or explanation in a message, in bytes.
pub const DOWN_TEXT_BYTES_MAX: usize = 2_000;
/// Most unacked messages HQ keeps for one branch; past it, HQ refuses new ones with a typed
/// error rather than grow without bound while a branch is away.
pub const DOWN_QUEUE_LEN_MAX: usize = 10_000;
/// Most messages HQ sends in one window before it waits for an ack.
pub const DOWN_WINDOW_MAX: usize = 64;

/// What HQ orders for a flagged or quarantined document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResolutionOrder {
    /// Keep it as posted.
    Accept,
    /// Post its red-letter reversal (the branch numbers and syncs it like any document).
    Reverse,
}

/// What a down message says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DownBody {
    /// A new scope for the branch; documents posted from now on name this version.
    Scope(VersionedScope),
    /// HQ quarantined the branch's document at `branch_seq` (it broke the version it claims,
    /// or claims a version HQ never issued).
    Rejection { branch_seq: u64, doc_number: DocNumber, reason: String },
    /// HQ applied the branch's document at `branch_seq` but flagged it for review (posted
    /// in good faith under a version HQ has since replaced); an auditor will decide.
    Flag { branch_seq: u64, doc_number: DocNumber, reason: String },
    /// An auditor's decision on a flagged or quarantined document.
    Resolution { branch_seq: u64, doc_number: DocNumber, order: ResolutionOrder, by: OperatorId, why: String },
    /// A decision on a draft the branch sent up for approval.
    Approval { draft_id: u64, approved: bool, by: OperatorId, note: String },
    /// 反结账: an HQ auditor ordered the branch's latest closed month `period` reopened;
    /// the branch posts the reopen document itself (numbered and synced like any other).
    Reopen { period: crate::document::Period, by: OperatorId, why: String },
    /// A transfer order for the branch to ship (it is the order's `from`).
    TransferOrder(crate::transfer::TransferOrder),
    /// Goods another branch shipped to this one: what is coming, with its cost layers.
    TransferShipped(crate::transfer::ShippedGoods),
    /// An auditor's decision on an order's discrepancy, for this branch to post as a
    /// settlement (调拨差异处理) with exactly these lines and layers.
    TransferSettle {
        order: crate::transfer::OrderId,
        settle: crate::transfer::Settle,
        priced: bool,
        layers: Vec<crate::transfer::CostLayer>,
        by: OperatorId,
        why: String,
    },
}

impl DownBody {
    /// The free text a body carries, to bound it.
    fn text(&self) -> Option<(&'static str, &str)> {
        match self {
            DownBody::Scope(_) => None,
            DownBody::Rejection { reason, .. } | DownBody::Flag { reason, .. } => Some(("reason", reason)),
            DownBody::Resolution { why, .. } => Some(("why", why)),
            DownBody::Approval { note, .. } => Some(("note", note)),
            DownBody::Reopen { why, .. } => Some(("why", why)),
            DownBody::TransferOrder(o) => Some(("memo", &o.memo)),
            DownBody::TransferShipped(_) => None,
            DownBody::TransferSettle { why, .. } => Some(("why", why)),
        }
    }
}

/// One message, as signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownMessage {
    pub branch: BranchCode,
    /// 1, 2, 3… per branch, no gaps.
    pub seq: u64,
    pub issued_unix: u64,
    pub body: DownBody,
}

/// Why a down message was refused, or a queue operation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DownError {
    #[error("down message of {bytes} bytes, at most {max}")]
    TooLarge { bytes: usize, max: usize },
    #[error("down message not signed by HQ's key (forged or damaged); refused")]
    Forged,
    #[error("down message format {found}, this build reads {supported}; upgrade the branch agent")]
    UnsupportedVersion { found: u8, supported: u8 },
    #[error("malformed down message: {0}")]
    Malformed(String),
    #[error("down message {field} is {len} bytes, at most {max}")]
    TextTooLong { field: &'static str, len: usize, max: usize },
    #[error("down message {seq} is for branch {addressed}, this is {ours}; refused")]
    OtherBranch { seq: u64, addressed: BranchCode, ours: BranchCode },
    #[error("down message {seq} was already applied (applied up to {applied}); replay refused")]
    Replayed { seq: u64, applied: u64 },
    #[error("down message {seq} arrived before {expected}; out of order, refused until the gap is filled")]
    Gap { seq: u64, expected: u64 },
    #[error("applied({seq}) but the next to apply is {expected}")]
    NotNext { seq: u64, expected: u64 },
    #[error("down queue for {branch} holds {max} unacked messages; refusing more until it acks")]
    QueueFull { branch: BranchCode, max: usize },
    #[error("ack for down message {seq} but only {last} were sent to {branch}")]
    AckBeyond { branch: BranchCode, seq: u64, last: u64 },
}

/// A message as exact bytes (version byte, then postcard) and HQ's signature over them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedDown {
    pub body_bytes: Vec<u8>,
    pub signature: Signature,
}

impl SignedDown {
    /// Encodes and signs; refuses texts or bodies over their bounds, so every message HQ
    /// signs is one a branch will read.
    pub fn sign(msg: &DownMessage, key: &SigningKey) -> Result<SignedDown, DownError> {
        check_texts(&msg.body)?;
        let mut body_bytes = vec![DOWN_FORMAT_VERSION];
        body_bytes = postcard::to_extend(msg, body_bytes).expect("encoding an in-memory message into a Vec cannot fail");
        if body_bytes.len() > DOWN_BODY_BYTES_MAX {
            return Err(DownError::TooLarge { bytes: body_bytes.len(), max: DOWN_BODY_BYTES_MAX });
        }
        let signature = key.sign(&body_bytes);
        Ok(SignedDown { body_bytes, signature })
    }

    /// Checks size and signature, then version, then decodes. Touches no state.
    pub fn open(&self, hq_key: &VerifyingKey) -> Result<DownMessage, DownError> {
        if self.body_bytes.len() > DOWN_BODY_BYTES_MAX {
            return Err(DownError::TooLarge { bytes: self.body_bytes.len(), max: DOWN_BODY_BYTES_MAX });
        }
        if hq_key.verify(&self.body_bytes, &self.signature).is_err() {
            return Err(DownError::Forged);
        }
        // Signed by HQ from here on, but still checked: a newer HQ may write a newer format.
        let (&version, rest) = self.body_bytes.split_first().ok_or_else(|| DownError::Malformed("empty body".into()))?;
        if version != DOWN_FORMAT_VERSION {
            return Err(DownError::UnsupportedVersion { found: version, supported: DOWN_FORMAT_VERSION });
        }
        let (msg, tail): (DownMessage, _) = postcard::take_from_bytes(rest).map_err(|e| DownError::Malformed(e.to_string()))?;
        if !tail.is_empty() {
            return Err(DownError::Malformed(format!("{} bytes after the message", tail.len())));
        }
        check_texts(&msg.body)?;
        Ok(msg)
    }

    /// The frame a wire message carries (postcard of the bytes and the signature).
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("encoding an in-memory message into a Vec cannot fail")
    }

    /// Reads a frame, bounded before anything is allocated from a peer's length.
    pub fn from_bytes(bytes: &[u8]) -> Result<SignedDown, DownError> {
        // Body, its length prefix and a 64-byte signature.
        let max = DOWN_BODY_BYTES_MAX + 16 + 64;
        if bytes.len() > max {
            return Err(DownError::TooLarge { bytes: bytes.len(), max });
        }
        postcard::from_bytes(bytes).map_err(|e| DownError::Malformed(e.to_string()))
    }
}

fn check_texts(body: &DownBody) -> Result<(), DownError> {
    if let Some((field, text)) = body.text() {
        if text.len() > DOWN_TEXT_BYTES_MAX {
            return Err(DownError::TextTooLong { field, len: text.len(), max: DOWN_TEXT_BYTES_MAX });
        }
    }
    Ok(())
}

/// HQ's queue of down messages for one branch. Holds the unacked messages only; message
/// `i` of the queue has seq `acked + 1 + i`.
#[derive(Clone, Debug)]
pub struct DownQueue {
    branch: BranchCode,
    acked: u64,
    unacked: VecDeque<SignedDown>,
}

impl DownQueue {
    pub fn new(branch: BranchCode) -> DownQueue {
        DownQueue { branch, acked: 0, unacked: VecDeque::new() }
    }

    /// Rebuilds a queue from what the caller stored: the ack mark and the unacked messages
    /// in seq order (seqs `acked + 1 …`).
    pub fn restore(branch: BranchCode, acked: u64, unacked: Vec<SignedDown>) -> Result<DownQueue, DownError> {
        if unacked.len() > DOWN_QUEUE_LEN_MAX {
            return Err(DownError::QueueFull { branch, max: DOWN_QUEUE_LEN_MAX });
        }
        Ok(DownQueue { branch, acked, unacked: unacked.into() })
    }

    pub fn branch(&self) -> BranchCode {
        self.branch
    }

    /// Highest seq the branch acked.
    pub fn acked_seq(&self) -> u64 {
        self.acked
    }

    /// Seq of the last message enqueued (0 if none ever was).
    pub fn last_seq(&self) -> u64 {
        self.acked + self.unacked.len() as u64
    }

    pub fn len(&self) -> usize {
        self.unacked.len()
    }

    pub fn is_empty(&self) -> bool {
        self.unacked.is_empty()
    }

    /// Signs `body` as the next message and keeps it until acked. Returns its seq and the
    /// signed bytes (which the caller stores before sending).
    pub fn enqueue(&mut self, body: DownBody, issued_unix: u64, hq_key: &SigningKey) -> Result<(u64, SignedDown), DownError> {
        if self.unacked.len() >= DOWN_QUEUE_LEN_MAX {
            return Err(DownError::QueueFull { branch: self.branch, max: DOWN_QUEUE_LEN_MAX });
        }
        let seq = self.last_seq() + 1;
        let signed = SignedDown::sign(&DownMessage { branch: self.branch, seq, issued_unix, body }, hq_key)?;
        self.unacked.push_back(signed.clone());
        debug_assert_eq!(self.last_seq(), seq);
        Ok((seq, signed))
    }

    /// What to send to a branch that reports `branch_acked`: at most [`DOWN_WINDOW_MAX`]
    /// messages after it, in seq order. A report behind our own ack mark (it cannot go
    /// back: the branch acks only what is durable) resumes from the mark.
    pub fn pending_from(&self, branch_acked: u64) -> impl Iterator<Item = (u64, &SignedDown)> {
        let skip = branch_acked.saturating_sub(self.acked).min(self.unacked.len() as u64) as usize;
        let first = self.acked.max(branch_acked.min(self.last_seq())) + 1;
        self.unacked.iter().skip(skip).take(DOWN_WINDOW_MAX).zip(first..).map(|(m, seq)| (seq, m))
    }

    /// The branch has durably applied everything up to `seq`: forget those messages. An
    /// old or repeated ack changes nothing; an ack beyond what was sent is refused.
    pub fn acked(&mut self, seq: u64) -> Result<(), DownError> {
        if seq > self.last_seq() {
            return Err(DownError::AckBeyond { branch: self.branch, seq, last: self.last_seq() });
        }
        while self.acked < seq {
            self.unacked.pop_front().expect("acked < seq <= last_seq, so a message is queued");
            self.acked += 1;
        }
        Ok(())
    }
}

/// The branch's side: what it has applied, and the checks on what arrives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownReceiver {
    branch: BranchCode,
    applied_seq: u64,
}

impl DownReceiver {
    /// `applied_seq` is what the branch stored with the last effect it applied (0 at first).
    pub fn new(branch: BranchCode, applied_seq: u64) -> DownReceiver {
        DownReceiver { branch, applied_seq }
    }

    pub fn applied_seq(&self) -> u64 {
        self.applied_seq
    }

    /// Verifies and checks one message; `Ok` is the next one to apply. Changes nothing.
    pub fn receive(&self, signed: &SignedDown, hq_key: &VerifyingKey) -> Result<DownMessage, DownError> {
        let msg = signed.open(hq_key)?;
        if msg.branch != self.branch {
            return Err(DownError::OtherBranch { seq: msg.seq, addressed: msg.branch, ours: self.branch });
        }
        if msg.seq <= self.applied_seq {
            return Err(DownError::Replayed { seq: msg.seq, applied: self.applied_seq });
        }
        // Seqs come from signed bytes, but a gap must still not wrap: checked.
        let expected = self.applied_seq.checked_add(1).ok_or(DownError::Replayed { seq: msg.seq, applied: self.applied_seq })?;
        if msg.seq != expected {
            return Err(DownError::Gap { seq: msg.seq, expected });
        }
        Ok(msg)
    }

    /// The branch made message `seq`'s effect durable (together with `seq` itself); the
    /// next ack reports it.
    pub fn applied(&mut self, seq: u64) -> Result<(), DownError> {
        let expected = self.applied_seq.saturating_add(1);
        if seq != expected || seq == self.applied_seq {
            return Err(DownError::NotNext { seq, expected });
        }
        self.applied_seq = seq;
        Ok(())
    }
}

#[cfg(test)]
#[path = "down_tests.rs"]
mod tests;
