//! Posting at the branch: the checks (halt, the branch clock's dates, scope and catalog,
//! approvals), numbering, the journal append and its one sled batch, then the group flush
//! that makes it durable before anyone hears "ok". Must not open or replay the store
//! (`disk`), and decides no accounting itself: that is `protocol::books::post`.

use protocol::books::{post, PostContext};
use protocol::codes::ProductCode;
use protocol::document::{DocType, Document, Draft};
use protocol::error::PostError;
use protocol::journal::{ChainHead, EntryHash};
use protocol::profile::BranchProfile;
use protocol::record;

use super::disk::{journal_key, meta, show, write_checkpoint};
use super::{Live, PostFailure, Posted, Store};

/// The tampered-branch switch for tests: with `BRANCHLINE_TEST_SKIP_SCOPE_CHECK=1`, a
/// debug build posts as if its scope allowed every code (catalog and credit limits still
/// checked), to prove HQ quarantines what a faulty branch sends. Release builds ignore
/// it. Returns the profile to post against instead, when the switch is on.
#[allow(clippy::type_complexity)]
fn skip_scope_check() -> Option<fn(&BranchProfile) -> BranchProfile> {
    if !cfg!(debug_assertions) || std::env::var("BRANCHLINE_TEST_SKIP_SCOPE_CHECK").as_deref() != Ok("1") {
        return None;
    }
    tracing::warn!("BRANCHLINE_TEST_SKIP_SCOPE_CHECK=1: this agent SKIPS its scope check (a test build playing a tampered branch)");
    Some(|p| BranchProfile { scope: Some(protocol::scope::Scope::all()), ..p.clone() })
}

/// The tampered-branch switch for approvals: with `BRANCHLINE_TEST_SKIP_APPROVAL_CHECK=1`,
/// a debug build posts what needs HQ's approval without one, to prove HQ quarantines it.
/// Release builds ignore it.
fn skip_approval_check() -> bool {
    let skip = cfg!(debug_assertions) && std::env::var("BRANCHLINE_TEST_SKIP_APPROVAL_CHECK").as_deref() == Ok("1");
    if skip {
        tracing::warn!(
            "BRANCHLINE_TEST_SKIP_APPROVAL_CHECK=1: this agent SKIPS its approval check (a test build playing a tampered branch)"
        );
    }
    skip
}

impl Store {
    /// Validates, numbers, posts and durably appends a draft. Returns only after the
    /// flush that made it durable.
    ///
    /// Group commit: under the lock the draft is checked, posted into the books and
    /// written to sled (entry + counter + head in one batch); the flush + fsync runs after
    /// the lock is let go and is shared with every post written meanwhile. The books (and
    /// the numbering) move before the fsync so the next post can build on them; the
    /// durable head, which the forwarder sends from, moves only after it. If a flush fails
    /// the store takes no more posts until restarted (memory may hold what disk lacks).
    pub fn post(&self, draft: Draft) -> Result<Posted, PostFailure> {
        let written = {
            let mut live = self.live();
            self.post_written(&mut live, draft)?
        };
        self.durable(written)
    }

    /// 盘点: computes the stock-loss and stock-gain documents that bring `template`'s
    /// warehouse to the `counted` quantities and writes both, all under one hold of the
    /// books' lock, so no sale can post between the count's arithmetic and its documents
    /// (issue 10: a sale in between made the second document wrong). The loss posts
    /// first; if the gain is then refused, the loss stands (it is made durable) and the
    /// refusal is returned (both are computed from the same books and dated alike, so only
    /// storage can fail).
    pub fn post_count(
        &self,
        template: &Draft,
        counted: &[(ProductCode, protocol::Decimal)],
        gain_price: impl Fn(&ProductCode) -> protocol::Decimal,
    ) -> Result<Vec<Posted>, PostFailure> {
        let mut written = Vec::new();
        let refused = {
            let mut live = self.live();
            let (loss, gain) = protocol::books::stock_count_drafts(&live.books, template, counted, gain_price);
            let mut refused = None;
            for d in [loss, gain].into_iter().flatten() {
                match self.post_written(&mut live, d) {
                    Ok(w) => written.push(w),
                    Err(e) => {
                        refused = Some(e);
                        break;
                    }
                }
            }
            refused
        };
        let posted = written.into_iter().map(|w| self.durable(w)).collect::<Result<Vec<_>, _>>()?;
        match refused {
            Some(e) => Err(e),
            None => Ok(posted),
        }
    }

    /// Waits for the group flush that covers a written post, then moves the durable head.
    /// A failed flush stops posting until a restart: sled holds the batch and may still
    /// write it, so the entry at this seq may exist after a restart and no other document
    /// may take the seq (the restart recovers the head from disk).
    fn durable(&self, (posted, seq, hash): (Posted, u64, EntryHash)) -> Result<Posted, PostFailure> {
        if let Err(e) = self.group.durable(|| self.flush().map_err(std::io::Error::other)) {
            let why = format!("{e:#}");
            tracing::error!(seq, error = %why, "flush failed after the write; posting stops until a restart");
            self.live().stopped = Some(why.clone());
            return Err(PostFailure::Stopped(why));
        }
        let mut durable = edge::lock(&self.durable_head);
        if seq > durable.seq {
            *durable = ChainHead { seq, hash };
        }
        self.posted.inc();
        Ok(posted)
    }

    /// The part of a post under the lock: check, post, write to sled (not yet durable).
    fn post_written(&self, live: &mut Live, draft: Draft) -> Result<(Posted, u64, EntryHash), PostFailure> {
        if let Some(why) = &live.halted {
            return Err(PostFailure::Halted(why.clone()));
        }
        if let Some(why) = &live.stopped {
            return Err(PostFailure::Stopped(why.clone()));
        }
        let branch = self.identity.branch;
        let counter_key = {
            let mut k = vec![b'n'];
            k.extend_from_slice(draft.doc_type.code().as_bytes());
            k.push(0);
            k.extend_from_slice(format!("{:04}{:02}{:02}", draft.date.year(), draft.date.month(), draft.date.day()).as_bytes());
            k
        };
        let last: u32 = match self.tree.get(&counter_key).map_err(|e| PostFailure::Storage(e.into()))? {
            Some(v) => record::open(&show(&counter_key), &v).map_err(|e| PostFailure::Storage(e.into()))?,
            None => 0,
        };
        // The branch clock's rules, before anything is numbered: today in the branch's zone.
        {
            let dates = edge::lock(&self.dates);
            protocol::dating::check(
                draft.doc_type,
                draft.date,
                draft.ext.period,
                dates.zone.today(),
                dates.zone.name(),
                dates.ahead_days_max,
            )
            .map_err(PostError::from)?;
        }
        // The document names the profile version it is posted under; HQ posts it against
        // that same version.
        let doc: Document = draft.number_under(branch, last + 1, live.profile.version).map_err(PostError::from)?;
        let posting = match skip_scope_check() {
            Some(open) => post(&live.books, &doc, PostContext::under(&open(&live.profile)))?,
            None => post(&live.books, &doc, PostContext::under(&live.profile))?,
        };
        // Judged under the approval rules of the profile it is posted under, against the
        // books before it, as HQ will judge it.
        let needs = protocol::approval::needs_approval(&doc, &posting, &live.books, &live.profile);
        let approval = match needs.is_empty() || skip_approval_check() {
            true => None,
            false => {
                Some(crate::drafts::approval_for_post(&self.tree, &doc, live.head.seq + 1, &needs).map_err(PostFailure::NeedsApproval)?)
            }
        };
        let number = doc.header.number.to_string();
        let (entry, bytes, head) = live.head.append(doc);
        let mut b = sled::Batch::default();
        if let Some((k, v)) = approval {
            b.insert(&k, v);
        }
        b.insert(&journal_key(head.seq), record::seal_bytes(&bytes));
        b.insert(counter_key, record::seal(&(last + 1)));
        b.insert(meta("head"), record::seal(&head));
        self.tree.apply_batch(b).map_err(|e| PostFailure::Storage(e.into()))?;
        // Written (not yet durable): the next post builds on it; the caller waits for
        // the flush before answering (`Store::durable`).
        let warnings = posting.warnings.clone();
        let closes = entry.doc.header.doc_type == DocType::PeriodClose;
        live.books.apply_owned(entry.doc, posting);
        live.head = head;
        if closes {
            // A month close empties most of the reversal window: the books are at their
            // smallest, and a checkpoint now spares the next start this month's replay.
            // Only a cache, so a failure is logged, not returned: the post is durable.
            let written = write_checkpoint(&self.db, &self.tree, &live.books, head);
            if let Err(e) = written {
                tracing::warn!(error = %e, "writing the books checkpoint after a month close");
            }
        }
        Ok((Posted { number, seq: head.seq, hash: head.hash.to_hex(), warnings }, head.seq, head.hash))
    }

    /// What HQ's approval rules say of `draft` if it were posted now: the reasons it
    /// needs approval (none: it does not), and the profile version judged under. A draft
    /// that would not post at all is refused as posting would refuse it. Writes nothing.
    pub fn judge(&self, draft: &Draft) -> Result<(Vec<protocol::approval::Need>, u64), PostFailure> {
        let live = self.live();
        let doc: Document = draft.clone().number_under(self.identity.branch, 1, live.profile.version).map_err(PostError::from)?;
        let posting = post(&live.books, &doc, PostContext::under(&live.profile))?;
        Ok((protocol::approval::needs_approval(&doc, &posting, &live.books, &live.profile), live.profile.version))
    }
}
