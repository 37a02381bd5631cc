//! The apply pipeline: a verified batch's new entries posted into the branch's books and
//! written durably (staged contents, then one commit write), before the ack.
//!
//! Must not send anything (the server acks after this returns) and writes entries only
//! through the journal.

use protocol::batch::SignedBatch;
use std::collections::BTreeMap;

use protocol::books::quarantine::{self, Mark};
use protocol::books::{post, PostContext};
use protocol::codes::BranchCode;
use protocol::document::DocType;
use protocol::journal::{ChainHead, EntryHash, VerifiedEntry};
use protocol::record;

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
}

impl Store {
    /// Applies new entries of a verified batch durably, then returns; the caller acks
    /// only after that. Each document is posted against the profile version it names, as
    /// HQ issued it; `protocol::books::quarantine::classify` says whether it is applied,
    /// flagged for review or quarantined (applied or not), and the chain advances in
    /// every case so later documents are not held hostage.
    ///
    /// Two writes, one flush. The batch's contents (entry index, signed batch) are staged
    /// on a second thread while this one posts the documents into the books: on two
    /// cores the posting, which is CPU, and sled's insert, which is CPU too, overlap.
    /// Then one small commit write moves the branch's head (and marks quarantined
    /// entries), then flush and fsync. The head is the truth: an entry above it is staged
    /// but not applied, and every reader (replay, lookups, drill-through) stops at the
    /// head, so a crash between the two writes leaves a staged tail that the branch's
    /// resend simply overwrites.
    // The arguments are the parts of `HqStep::Apply` plus the state and the time; the
    // server calls this with them as they come.
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
        let profile = posting_profile(st, branch, &entries).ok_or(StoreError::NoBranch(*branch))?;
        // The versions this batch's documents name, as HQ issued them (`None`: never).
        let mut claimed: BTreeMap<u64, Option<protocol::profile::BranchProfile>> = BTreeMap::new();
        for e in &entries {
            let v = e.entry.doc.header.profile_version;
            if let std::collections::btree_map::Entry::Vacant(slot) = claimed.entry(v) {
                slot.insert(self.issued_profile(branch, v)?);
            }
        }
        let mut rec = st.branches.get(branch).cloned().ok_or(StoreError::NoBranch(*branch))?;
        // Post straight into the branch's books; if a write below fails they are rebuilt
        // from disk, so memory never keeps what disk does not have. Books missing from
        // memory (a rebuild that failed earlier) are rebuilt now, never started empty.
        let mut books = match st.books.remove(branch) {
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
                            match super::approvals::granted(st, branch, e.entry.seq, &e.entry.doc) {
                                Ok(()) => approvals_used.extend(e.entry.doc.header.ext.approval.map(|id| (*branch, id, e.entry.seq))),
                                Err(why) => {
                                    let reason = format!("needs HQ approval ({}) but {why}", protocol::approval::describe(&needs));
                                    c.mark = Some(Mark::Quarantined { reason, applied: true });
                                }
                            }
                        }
                    }
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
                    books.apply_owned(e.entry.doc, p);
                    outcome.applied += 1;
                }
            }
            stage.join().unwrap_or(Err(StoreError::StagingPanicked))
        });
        rec.head = new_head;
        rec.docs_applied += outcome.applied;
        rec.docs_quarantined += outcome.quarantined.len() as u64;
        rec.last_applied_unix = Some(now_unix);
        commit.insert(branch_key(branch), record::seal(&rec));
        let used = self.stage_approvals_used(st, &approvals_used, &mut commit);
        let down = if notices.is_empty() {
            None
        } else {
            // Without a key or with a full queue the notices are lost but the marks stay
            // (and show at HQ); the batch must still apply.
            self.stage_review_notices(st, branch, notices, now_unix, &mut commit)
                .inspect_err(|e| tracing::error!(branch = %branch, error = %e, "queueing rejection notices"))
                .ok()
        };
        let written = staged.and_then(|()| Ok(self.tree.apply_batch(commit)?)).and_then(|()| self.flush());
        if let Err(e) = written {
            match self.replay(branch) {
                Ok(rebuilt) => {
                    st.books.insert(*branch, rebuilt);
                }
                // Left out of memory: the next batch of this branch tries the rebuild again.
                Err(r) => tracing::error!(branch = %branch, error = %r, "rebuilding books after a failed write"),
            }
            return Err(e);
        }
        // Durable: now memory may follow.
        if closes {
            // After a month close the books are at their smallest; a checkpoint now spares
            // the next start this month's replay. Only a cache: a failure is logged.
            if let Err(e) = self.write_checkpoint(branch, &books, new_head) {
                tracing::warn!(branch = %branch, error = %e, "writing the books checkpoint after a month close");
            }
        }
        st.books.insert(*branch, books);
        st.branches.insert(*branch, rec);
        if let Some(change) = down {
            change.install(st);
        }
        for item in used {
            st.approvals.items.insert((item.draft.branch, item.draft.id), item);
        }
        Ok(outcome)
    }

    /// Writes a batch's entry index and the signed batch, above the branch's head: staged,
    /// not yet applied (see [`Store::apply`]).
    pub(crate) fn stage(&self, branch: &BranchCode, index: &[(u64, EntryHash)], first_in_batch: u64, signed: &SignedBatch) -> Result<()> {
        self.journal.stage(branch, index, first_in_batch, signed)
    }
}
