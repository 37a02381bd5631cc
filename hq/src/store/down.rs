//! HQ's down channel on disk: each branch's queue of signed down messages
//! (`protocol::down::DownQueue`), its ack mark, and the review items (flagged or
//! quarantined documents) with the auditor's decision, whose orders ride the queue.
//!
//! Every change is one sled write and a flush before memory follows, like the rest of the
//! store; a message enqueued with another change (a quarantine mark, a decision) is in
//! that change's write, so a crash loses neither without the other. Must not touch the
//! journal or the books, and must not send anything (the server does).

use std::collections::BTreeMap;

use protocol::codes::BranchCode;
use protocol::document::DocNumber;
use protocol::down::{DownBody, DownError, DownQueue, ResolutionOrder, SignedDown};
use protocol::record;
use protocol::SigningKey;
use serde::{Deserialize, Serialize};

use super::error::{Result, StoreError};
use super::keys::{key, open_rec};
use super::state::State;
use super::Store;

/// Why a document awaits an auditor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReviewKind {
    /// Kept but not applied to HQ's books (it broke the version it claims).
    Quarantined,
    /// Applied, posted in good faith under a version HQ has since replaced.
    Flagged,
}

/// An auditor's decision on a review item.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Decision {
    pub order: ResolutionOrder,
    pub by: String,
    pub why: String,
    pub at_unix: u64,
    /// The down message that carries the order.
    pub down_seq: u64,
}

/// A flagged or quarantined document, as the review queue shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReviewItem {
    pub kind: ReviewKind,
    pub doc_number: DocNumber,
    pub reason: String,
    pub decision: Option<Decision>,
}

/// The down channel in memory: HQ's signing key (set by the binary from its identity;
/// without one nothing can be enqueued) and, per branch, the unacked queue and the
/// review items by branch seq.
#[derive(Default)]
pub struct DownState {
    pub key: Option<SigningKey>,
    pub queues: BTreeMap<BranchCode, DownQueue>,
    pub review: BTreeMap<(BranchCode, u64), ReviewItem>,
}

fn message_key(branch: &BranchCode, seq: u64) -> Vec<u8> {
    key(b'd', &[branch.as_str().as_bytes(), &seq.to_be_bytes()])
}

fn acked_key(branch: &BranchCode) -> Vec<u8> {
    key(b'a', &[branch.as_str().as_bytes()])
}

fn review_key(branch: &BranchCode, seq: u64) -> Vec<u8> {
    key(b'w', &[branch.as_str().as_bytes(), &seq.to_be_bytes()])
}

/// Queues and review items changed in a write, installed in memory once it is durable.
#[derive(Default)]
pub(crate) struct DownChange {
    queue: Option<DownQueue>,
    review: Vec<((BranchCode, u64), ReviewItem)>,
}

impl DownChange {
    /// The seq of the last message this change enqueued (0 if none).
    pub(crate) fn last_seq(&self) -> u64 {
        self.queue.as_ref().map_or(0, DownQueue::last_seq)
    }

    pub(crate) fn install(self, st: &mut State) {
        if let Some(q) = self.queue {
            st.down.queues.insert(q.branch(), q);
        }
        st.down.review.extend(self.review);
    }
}

impl Store {
    /// Loads every branch's queue, ack mark and review items (at start).
    pub(crate) fn load_down(&self, st: &mut State) -> Result<()> {
        for code in st.branches.keys() {
            let acked: u64 = match self.tree.get(acked_key(code))? {
                Some(v) => open_rec(&acked_key(code), &v)?,
                None => 0,
            };
            let mut unacked = Vec::new();
            for item in self.tree.scan_prefix(key(b'd', &[code.as_str().as_bytes(), b""])) {
                let (k, v) = item?;
                unacked.push(open_rec::<SignedDown>(&k, &v)?);
            }
            st.down.queues.insert(*code, DownQueue::restore(*code, acked, unacked).map_err(StoreError::Down)?);
            for item in self.tree.scan_prefix(key(b'w', &[code.as_str().as_bytes(), b""])) {
                let (k, v) = item?;
                let seq_bytes: [u8; 8] = k[k.len() - 8..].try_into().map_err(|_| StoreError::Damaged("short review key".into()))?;
                st.down.review.insert((*code, u64::from_be_bytes(seq_bytes)), open_rec(&k, &v)?);
            }
        }
        Ok(())
    }

    /// Signs `bodies` as the branch's next down messages into `batch`; the returned
    /// change is installed after the write is durable.
    pub(crate) fn stage_down(
        &self,
        st: &State,
        branch: &BranchCode,
        bodies: Vec<DownBody>,
        now_unix: u64,
        batch: &mut sled::Batch,
    ) -> Result<DownChange> {
        let key = st.down.key.as_ref().ok_or(StoreError::NoDownKey)?;
        let mut queue = st.down.queues.get(branch).cloned().unwrap_or_else(|| DownQueue::new(*branch));
        // All signed before any goes into the write: a refusal half way leaves it untouched.
        let mut signed = Vec::new();
        for body in bodies {
            signed.push(queue.enqueue(body, now_unix, key).map_err(StoreError::Down)?);
        }
        for (seq, m) in signed {
            batch.insert(message_key(branch, seq), record::seal(&m));
        }
        Ok(DownChange { queue: Some(queue), review: Vec::new() })
    }

    /// Quarantined documents of one apply: review items and rejection notices, into the
    /// apply's commit write. A failure (no key, queue full) is returned for the caller to
    /// log; the apply itself goes on.
    pub(crate) fn stage_review_notices(
        &self,
        st: &State,
        branch: &BranchCode,
        marked: Vec<(u64, DocNumber, String, ReviewKind)>,
        now_unix: u64,
        batch: &mut sled::Batch,
    ) -> Result<DownChange> {
        let bodies = marked
            .iter()
            .map(|(seq, number, reason, kind)| match kind {
                ReviewKind::Quarantined => DownBody::Rejection { branch_seq: *seq, doc_number: number.clone(), reason: reason.clone() },
                ReviewKind::Flagged => DownBody::Flag { branch_seq: *seq, doc_number: number.clone(), reason: reason.clone() },
            })
            .collect();
        let mut change = self.stage_down(st, branch, bodies, now_unix, batch)?;
        for (seq, doc_number, reason, kind) in marked {
            let item = ReviewItem { kind, doc_number, reason, decision: None };
            batch.insert(review_key(branch, seq), record::seal(&item));
            change.review.push(((*branch, seq), item));
        }
        Ok(change)
    }

    /// Enqueues down messages on their own (flag notices, admin messages) in one durable
    /// write; returns the last seq. All or none: a full queue refuses the lot.
    pub fn enqueue_down(&self, st: &mut State, branch: &BranchCode, bodies: Vec<DownBody>, now_unix: u64) -> Result<u64> {
        if !st.branches.contains_key(branch) {
            return Err(StoreError::NoBranch(*branch));
        }
        let mut batch = sled::Batch::default();
        let change = self.stage_down(st, branch, bodies, now_unix, &mut batch)?;
        self.tree.apply_batch(batch)?;
        self.flush()?;
        change.install(st);
        Ok(st.down.queues.get(branch).map_or(0, DownQueue::last_seq))
    }

    /// Flags an applied document for review and sends the branch a flag notice, in one
    /// write (for posting against a replaced version; and the test path).
    pub fn flag_for_review(&self, st: &mut State, branch: &BranchCode, seq: u64, reason: &str, now_unix: u64) -> Result<()> {
        let number = match self.document(st, branch, seq)? {
            Some((_, entry, _)) => entry.doc.header.number,
            None => return Err(StoreError::NotForReview { branch: *branch, seq }),
        };
        let body = DownBody::Flag { branch_seq: seq, doc_number: number.clone(), reason: reason.to_string() };
        let mut batch = sled::Batch::default();
        let mut change = self.stage_down(st, branch, vec![body], now_unix, &mut batch)?;
        let item = ReviewItem { kind: ReviewKind::Flagged, doc_number: number, reason: reason.to_string(), decision: None };
        batch.insert(review_key(branch, seq), record::seal(&item));
        change.review.push(((*branch, seq), item));
        self.tree.apply_batch(batch)?;
        self.flush()?;
        change.install(st);
        Ok(())
    }

    /// Records an auditor's decision on a review item and enqueues its order, in one write.
    // The decision's parts as the HTTP request gives them, plus the state and the time.
    #[allow(clippy::too_many_arguments)]
    pub fn decide(
        &self,
        st: &mut State,
        branch: &BranchCode,
        seq: u64,
        order: ResolutionOrder,
        by: &str,
        why: &str,
        now_unix: u64,
    ) -> Result<Decision> {
        let item = st.down.review.get(&(*branch, seq)).cloned().ok_or(StoreError::NotForReview { branch: *branch, seq })?;
        if let Some(d) = &item.decision {
            return Err(StoreError::AlreadyDecided { branch: *branch, seq, order: d.order });
        }
        let by_code = protocol::codes::OperatorId::new(by)?;
        let body = DownBody::Resolution { branch_seq: seq, doc_number: item.doc_number.clone(), order, by: by_code, why: why.to_string() };
        let mut batch = sled::Batch::default();
        let mut change = self.stage_down(st, branch, vec![body], now_unix, &mut batch)?;
        let down_seq = change.queue.as_ref().map_or(0, DownQueue::last_seq);
        let decision = Decision { order, by: by.to_string(), why: why.to_string(), at_unix: now_unix, down_seq };
        let item = ReviewItem { decision: Some(decision.clone()), ..item };
        batch.insert(review_key(branch, seq), record::seal(&item));
        change.review.push(((*branch, seq), item));
        self.tree.apply_batch(batch)?;
        self.flush()?;
        change.install(st);
        Ok(decision)
    }

    /// The branch applied down messages up to `seq` durably: forget them. An old ack
    /// changes nothing; one beyond what was enqueued is refused.
    pub fn down_ack(&self, st: &mut State, branch: &BranchCode, seq: u64) -> Result<()> {
        let Some(queue) = st.down.queues.get(branch) else {
            return if seq == 0 { Ok(()) } else { Err(StoreError::Down(DownError::AckBeyond { branch: *branch, seq, last: 0 })) };
        };
        if seq <= queue.acked_seq() {
            return Ok(());
        }
        if seq > queue.last_seq() {
            return Err(StoreError::Down(DownError::AckBeyond { branch: *branch, seq, last: queue.last_seq() }));
        }
        let mut batch = sled::Batch::default();
        for s in queue.acked_seq() + 1..=seq {
            batch.remove(message_key(branch, s));
        }
        batch.insert(acked_key(branch), record::seal(&seq));
        // Not flushed: a lost ack only resends what the branch then refuses as a replay and
        // re-acks (its hello also says how far it applied).
        self.tree.apply_batch(batch)?;
        if let Some(q) = st.down.queues.get_mut(branch) {
            q.acked(seq).map_err(StoreError::Down)?;
        }
        Ok(())
    }
}
