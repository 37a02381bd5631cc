//! The apply pipeline: a verified batch's new entries posted into the branch's books and
//! written durably (staged contents, then one commit write), before the ack.
//!
//! Different branches apply in parallel (each under its own writer lock, see
//! `books_slot`); their fsyncs are shared (`group_commit`).
//!
//! Must not send anything (the server acks after this returns) and writes entries only
//! through the journal.

use protocol::batch::SignedBatch;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use protocol::books::quarantine::{self, Mark};
use protocol::books::{post, Books, PostContext};
use protocol::codes::BranchCode;
use protocol::document::DocType;
use protocol::journal::{ChainHead, EntryHash, VerifiedEntry};
use protocol::record;

use super::books_slot::BranchBooks;
use super::error::{Result, StoreError};
use super::journal::Journal;
use super::keys::branch_key;
use super::profile::posting_profile;
use super::state::State;
use super::ReviewKind;
use super::Store;

/// What applying a batch did.
#[derive(Debug, Default)]
pub struct ApplyOutcome {
    /// Documents whose posting is in the books now (flagged and applied-quarantined ones
    /// included).
    pub applied: u64,
    /// Applied, and flagged for review: posted in good faith under a version HQ has since
    /// replaced, which would refuse them (seq, reason).
    pub flagged: Vec<(u64, String)>,
    /// Quarantined: breaking the version they claim, or claiming one HQ never issued
    /// (seq, reason, whether applied to the books).
    pub quarantined: Vec<(u64, String)>,
    /// The seqs of `quarantined` left out of the books (they cannot post at all).
    pub unapplied: Vec<u64>,
    /// Shipments forwarded down to their receivers (other branches' queues changed).
    pub forwarded: usize,
    /// Document lines of the documents counted in `applied` (for `/metrics`).
    pub lines: u64,
    /// How long the group flush (flush + fsync) that made the batch durable took.
    pub flush: std::time::Duration,
}

impl Store {
    /// [`Store::apply_shared`] for a caller that owns the state (tests, tools): the state
    /// is moved into a lock for the call and back.
    // The arguments are the parts of `HqStep::Apply` plus the state and the time.
    #[allow(clippy::too_many_arguments)]
    pub fn apply(
        &self,
        st: &mut State,
        branch: &BranchCode,
        entries: Vec<VerifiedEntry>,
        new_head: ChainHead,
        signed: &SignedBatch,
        first_in_batch: u64,
        now_unix: u64,
    ) -> Result<ApplyOutcome> {
        let shared = Mutex::new(std::mem::take(st));
        let slot = lock(&shared).books_slot(branch);
        let result = match slot {
            Some(slot) => {
                let mut work = slot.writer();
                self.apply_shared(&shared, &slot, &mut work, branch, entries, new_head, signed, first_in_batch, now_unix)
            }
            None => Err(StoreError::NoBranch(*branch)),
        };
        *st = shared
            .into_inner()
            .unwrap_or_else(|_| panic!("the state lock was poisoned by an earlier panic; refusing to use what it guards"));
        result
    }

    /// Applies new entries of a verified batch durably, then returns; the caller acks
    /// only after that. Each document is posted against the profile version it names, as
    /// HQ issued it; `protocol::books::quarantine::classify` says whether it is applied,
    /// flagged for review or quarantined (applied or not), and the chain advances in
    /// every case so later documents are not held hostage.
    ///
    /// The caller holds the branch's writer lock (`work`, from `slot`) from its decision
    /// on, so one branch's batches apply one at a time; batches of different branches run
    /// here in parallel. The state lock is taken twice, briefly, never across I/O that
    /// waits for the disk: to read the posting profile, and for the commit write.
    ///
    /// The batch's contents (entry index, signed batch) are staged on a second thread
    /// while this one posts the documents into the working books. Then, under the state
    /// lock, one small commit write moves the branch's head (and marks quarantined
    /// entries) in sled and in memory together, so every other writer of the branch record
    /// builds on it. Then the group flush (`flush_grouped`: one fsync for every branch
    /// that wrote meanwhile), and only then does this return. The head is the truth: an
    /// entry above it is staged but not applied, and every reader (replay, lookups,
    /// drill-through) stops at the head, so a crash between the two writes leaves a staged
    /// tail that the branch's resend simply overwrites.
    #[allow(clippy::too_many_arguments)]
    pub fn apply_shared(
        &self,
        state: &Mutex<State>,
        slot: &BranchBooks,
        work: &mut Option<Books>,
        branch: &BranchCode,
        entries: Vec<VerifiedEntry>,
        new_head: ChainHead,
        signed: &SignedBatch,
        first_in_batch: u64,
        now_unix: u64,
    ) -> Result<ApplyOutcome> {
        let profile = posting_profile(&lock(state), branch, &entries).ok_or(StoreError::NoBranch(*branch))?;
        // The versions this batch's documents name, as HQ issued them (`None`: never).
        let mut claimed: BTreeMap<u64, Option<protocol::profile::BranchProfile>> = BTreeMap::new();
        for e in &entries {
            let v = e.entry.doc.header.profile_version;
            if let std::collections::btree_map::Entry::Vacant(slot) = claimed.entry(v) {
                slot.insert(self.issued_profile(branch, v)?);
            }
        }
        // Post straight into the branch's working books; if a write below fails they are
        // rebuilt from disk, so memory never keeps what disk does not have. Books missing
        // from memory (a rebuild that failed earlier) are rebuilt now, never started empty.
        let mut books = match work.take() {
            Some(b) => b,
            None => self.replay(branch)?,
        };
        let index: Vec<(u64, EntryHash)> = entries.iter().map(|e| (e.entry.seq, e.hash)).collect();
        let mut outcome = ApplyOutcome::default();
        // The commit write: quarantine marks (overwriting their staged index records, as
        // sled applies writes in order), then the branch record with the new head.
        let mut commit = sled::Batch::default();
        let mut closes = false;
        // Flagged and quarantined documents with their numbers: each gets a notice down to
        // the branch (flag or rejection) and a review item, in the same commit write as its mark.
        let mut notices = Vec::new();
        // Approvals that documents of this batch used: (branch, draft id, branch seq).
        let mut approvals_used = Vec::new();
        // Transfer facts of this batch (shipments to forward, steps, requests), staged in
        // the commit write.
        let mut facts = super::transfers::TransferFacts::default();
        // Reopen orders this batch's 反结账 documents used: (index in `reopens`, document).
        let mut reopens_used: Vec<(usize, protocol::document::DocNumber)> = Vec::new();
        let staged = std::thread::scope(|scope| {
            let stage = scope.spawn(|| self.stage(branch, &index, first_in_batch, signed));
            // Entries come by value: each document moves into the books' reversal window
            // instead of being cloned there.
            for e in entries {
                let v = e.entry.doc.header.profile_version;
                let claimed = claimed.get(&v).and_then(Option::as_ref);
                let mut c = quarantine::classify(v, claimed, &profile, |p| {
                    post(&books, &e.entry.doc, p.map(PostContext::under).unwrap_or_default())
                });
                // Approvals: judged under the version the document names, against the books
                // before it, as the branch judged it; one that needed HQ's approval and
                // carries none HQ granted for it is quarantined (still applied: it posts).
                if let (Some(p), Some(claimed)) = (&c.posting, claimed) {
                    if !matches!(c.mark, Some(Mark::Quarantined { .. })) {
                        let needs = protocol::approval::needs_approval(&e.entry.doc, p, &books, claimed);
                        if !needs.is_empty() {
                            match super::approvals::granted(&lock(state), branch, e.entry.seq, &e.entry.doc) {
                                Ok(()) => approvals_used.extend(e.entry.doc.header.ext.approval.map(|id| (*branch, id, e.entry.seq))),
                                Err(why) => {
                                    let reason = format!("needs HQ approval ({}) but {why}", protocol::approval::describe(&needs));
                                    c.mark = Some(Mark::Quarantined { reason, applied: true });
                                }
                            }
                        }
                    }
                }
                // Transfer steps: against the order HQ issued and what it forwarded, with
                // the branch's books before the step (quarantined but applied: it posts).
                let step =
                    matches!(e.entry.doc.header.doc_type, DocType::TransferShip | DocType::TransferReceive | DocType::TransferSettle);
                let h = &e.entry.doc.header;
                if step && c.posting.is_some() {
                    let st = lock(state);
                    let checked = match &c.mark {
                        Some(Mark::Quarantined { reason, .. }) => Err(reason.clone()),
                        _ => super::transfers::check_step(&st.transfers, branch, &e.entry.doc, &books),
                    };
                    match &checked {
                        Err(why) if !matches!(c.mark, Some(Mark::Quarantined { .. })) => {
                            c.mark = Some(Mark::Quarantined { reason: format!("transfer step refused by HQ: {why}"), applied: true })
                        }
                        Ok(Some(i)) => facts.settled.extend(h.ext.transfer.as_ref().map(|r| (r.order, *i, h.number.clone()))),
                        Ok(None) if h.doc_type == DocType::TransferShip => {
                            if let Some(o) = h.ext.transfer.as_ref().and_then(|r| st.transfers.orders.get(&r.order)) {
                                facts.shipments.extend(protocol::transfer::ShippedGoods::from_shipment(&e.entry.doc, o.to_warehouse));
                            }
                        }
                        _ => {}
                    }
                    if let Some(r) = &h.ext.transfer {
                        let quarantined = match &c.mark {
                            Some(Mark::Quarantined { reason, .. }) => Some(reason.clone()),
                            _ => None,
                        };
                        let rec = super::transfers::StepRecord {
                            branch: *branch,
                            seq: e.entry.seq,
                            number: h.number.clone(),
                            doc_type: h.doc_type,
                            date: h.date,
                            quarantined,
                        };
                        facts.steps.push((r.order, rec));
                    }
                }
                // 反结账 only as an auditor ordered it (applied either way: the branch's books
                // have it, and so must HQ's copy; an unordered one is quarantined).
                if h.doc_type == DocType::PeriodReopen && c.posting.is_some() && !matches!(c.mark, Some(Mark::Quarantined { .. })) {
                    let st = lock(state);
                    let taken: Vec<usize> = reopens_used.iter().map(|(i, _)| *i).collect();
                    match super::reopens::ordered(&st.reopens, &taken, branch, &e.entry.doc) {
                        Ok(i) => reopens_used.push((i, h.number.clone())),
                        Err(why) => c.mark = Some(Mark::Quarantined { reason: why, applied: true }),
                    }
                }
                if h.doc_type == DocType::TransferRequest && c.posting.is_some() {
                    facts.requests.push(super::transfers::Request {
                        branch: *branch,
                        seq: e.entry.seq,
                        number: h.number.clone(),
                        warehouse: h.warehouse,
                        date: h.date,
                        lines: e.entry.doc.lines.iter().map(|l| (l.product, l.qty)).collect(),
                        memo: h.memo.clone(),
                        order: None,
                    });
                }
                match &c.mark {
                    Some(Mark::Flagged { reason }) => {
                        notices.push((e.entry.seq, e.entry.doc.header.number.clone(), reason.clone(), ReviewKind::Flagged));
                        outcome.flagged.push((e.entry.seq, reason.clone()));
                    }
                    Some(Mark::Quarantined { reason, applied }) => {
                        notices.push((e.entry.seq, e.entry.doc.header.number.clone(), reason.clone(), ReviewKind::Quarantined));
                        outcome.quarantined.push((e.entry.seq, reason.clone()));
                        if !applied {
                            outcome.unapplied.push(e.entry.seq);
                        }
                    }
                    None => {}
                }
                if let Some(mark) = c.mark {
                    Journal::mark(&mut commit, branch, first_in_batch, e.entry.seq, e.hash, mark);
                }
                if let Some(p) = c.posting {
                    closes |= e.entry.doc.header.doc_type == DocType::PeriodClose;
                    outcome.lines += e.entry.doc.lines.len() as u64;
                    books.apply_owned(e.entry.doc, p);
                    outcome.applied += 1;
                }
            }
            stage.join().unwrap_or(Err(StoreError::StagingPanicked))
        });
        // The commit write, under the state lock: the branch record is taken as memory has
        // it now (an admin change made meanwhile is kept), and memory moves with sled's
        // view in the same hold, so the next writer of this record builds on this head.
        // No fsync here: sled's write only queues it.
        let written = staged.and_then(|()| {
            let mut st = lock(state);
            let mut rec = st.branches.get(branch).cloned().ok_or(StoreError::NoBranch(*branch))?;
            rec.head = new_head;
            rec.docs_applied += outcome.applied;
            rec.docs_quarantined += outcome.quarantined.len() as u64;
            rec.last_applied_unix = Some(now_unix);
            commit.insert(branch_key(branch), record::seal(&rec));
            let used = self.stage_approvals_used(&st, &approvals_used, &mut commit);
            // A shipment HQ cannot forward (no down key, the receiver's queue full) is not
            // applied: the branch resends it, and it is forwarded once it can be.
            outcome.forwarded = facts.shipments.len();
            let reopened: Vec<(usize, super::reopens::ReopenRecord)> =
                reopens_used.iter().filter_map(|(i, n)| self.stage_reopen_used(&st, *i, n, &mut commit).map(|r| (*i, r))).collect();
            let forwards = if facts.is_empty() {
                None
            } else {
                Some(self.stage_transfer_facts(&st, std::mem::take(&mut facts), now_unix, &mut commit)?)
            };
            let down = if notices.is_empty() {
                None
            } else {
                // Without a key or with a full queue the notices are lost but the marks stay
                // (and show at HQ); the batch must still apply.
                self.stage_review_notices(&st, branch, std::mem::take(&mut notices), now_unix, &mut commit)
                    .inspect_err(|e| tracing::error!(branch = %branch, error = %e, "queueing rejection notices"))
                    .ok()
            };
            self.tree.apply_batch(commit)?;
            st.branches.insert(*branch, rec);
            if let Some(change) = down {
                change.install(&mut st);
            }
            for item in used {
                st.approvals.items.insert((item.draft.branch, item.draft.id), item);
            }
            if let Some(f) = forwards {
                f.install(&mut st);
            }
            for (i, r) in reopened {
                if let Some(slot) = st.reopens.get_mut(i) {
                    *slot = r;
                }
            }
            Ok(())
        });
        if let Err(e) = written {
            match self.replay(branch) {
                Ok(rebuilt) => *work = Some(rebuilt),
                // Left out of memory: the next batch of this branch tries the rebuild again.
                Err(r) => {
                    tracing::error!(branch = %branch, error = %r, "rebuilding books after a failed write");
                    slot.lost();
                }
            }
            return Err(e);
        }
        // Sled holds the commit and memory follows it; the working books match both. Now
        // the fsync, shared with every branch that wrote meanwhile; no ack before it. If
        // it fails nothing is acked, and what sled holds is made durable by a later flush
        // or lost with a crash (then the branch resends from HQ's head after restart).
        let flush_started = std::time::Instant::now();
        let flushed = self.flush_grouped();
        outcome.flush = flush_started.elapsed();
        if flushed.is_ok() && closes {
            // After a month close the books are at their smallest; a checkpoint now spares
            // the next start this month's replay. Only a cache: a failure is logged.
            if let Err(e) = self.write_checkpoint(branch, &books, new_head) {
                tracing::warn!(branch = %branch, error = %e, "writing the books checkpoint after a month close");
            }
        }
        if flushed.is_ok() {
            slot.committed(&books);
        }
        *work = Some(books);
        flushed.map(|()| outcome)
    }

    /// Writes a batch's entry index and the signed batch, above the branch's head: staged,
    /// not yet applied (see [`Store::apply`]).
    pub(crate) fn stage(&self, branch: &BranchCode, index: &[(u64, EntryHash)], first_in_batch: u64, signed: &SignedBatch) -> Result<()> {
        self.journal.stage(branch, index, first_in_batch, signed)
    }
}

/// The state lock. A panic while holding it ends the process (`edge::stop_on_panic`), and
/// a poisoned lock is never used: memory it guarded may be half-updated; disk is the truth.
pub(crate) fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    edge::lock(state)
}
