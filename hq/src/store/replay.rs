//! Books rebuilt from the stored journal, and the checkpoints that shorten that replay.
//!
//! A checkpoint is a cache of a replay, never the truth. Reads stop at the head on disk;
//! entries come only through the journal. Must not write anything but checkpoints.

use protocol::books::ledger_export::{Ledger, LedgerDoc};
use protocol::books::quarantine::{self, PostPass, Verdict};
use protocol::books::{checkpoint, post, Books, PostContext, Posting};
use protocol::codes::BranchCode;
use protocol::document::Document;
use protocol::journal::ChainHead;

use super::error::{Result, StoreError};
use super::keys::{branch_key, checkpoint_key, open_rec, show};
use super::records::BranchRecord;
use super::Store;

/// A long replay at start logs its progress this often (entries).
const REPLAY_PROGRESS_EVERY: u64 = 100_000;

impl Store {
    /// The head of `branch` as it is on disk: entries above it are staged, not applied.
    pub(crate) fn durable_head(&self, branch: &BranchCode) -> Result<u64> {
        let k = branch_key(branch);
        match self.tree.get(&k)? {
            Some(v) => Ok(open_rec::<BranchRecord>(&k, &v)?.head.seq),
            None => Ok(0),
        }
    }

    /// Rebuilds a branch's books by replaying its stored journal in order, from its
    /// checkpoint if one fits, skipping the quarantined entries. Every entry is checked
    /// against its stored hash, and every applied entry must post again: if one does
    /// not, the store is damaged.
    pub fn replay(&self, branch: &BranchCode) -> Result<Books> {
        self.replay_counted(branch).map(|(books, _)| books)
    }

    /// [`Store::replay`], also saying how many entries it replayed past the checkpoint.
    pub(crate) fn replay_counted(&self, branch: &BranchCode) -> Result<(Books, u64)> {
        let head = self.durable_head(branch)?;
        let (mut books, from) = match self.checkpoint(branch, head) {
            Ok(Some(cp)) => (cp.books, cp.seq + 1),
            Ok(None) => (Books::default(), 1),
            Err(why) => {
                tracing::warn!(branch = %branch, reason = %why, "ignoring the books checkpoint; replaying the whole journal");
                (Books::default(), 1)
            }
        };
        self.replay_entries(branch, &mut books, from, head, |_, _, _| {})?;
        Ok((books, (head + 1).saturating_sub(from)))
    }

    /// The branch's whole journal as a plain-text accounting journal's documents: every
    /// applied entry posted again from empty books (no checkpoint: each posting's lines
    /// are wanted), handed to `ledger`, which keeps those of its months. The branch's
    /// cost method is named in it too.
    pub fn ledger_into(&self, branch: &BranchCode, ledger: &mut Ledger) -> Result<()> {
        let head = self.durable_head(branch)?;
        let mut books = Books::default();
        self.replay_entries(branch, &mut books, 1, head, |seq, doc, p| ledger.take(LedgerDoc::of(seq, doc, p)))?;
        ledger.branch(*branch, books.cost_method());
        Ok(())
    }

    /// Posts and applies the entries `from..=head` of `branch` onto `books`, skipping the
    /// quarantined ones, showing each posting to `each` before it is applied. An entry
    /// that no longer posts means the store is damaged.
    fn replay_entries(
        &self,
        branch: &BranchCode,
        books: &mut Books,
        from: u64,
        head: u64,
        mut each: impl FnMut(u64, &Document, &Posting),
    ) -> Result<()> {
        for item in self.journal.entries(branch, from, head, true) {
            let (_, entry) = item?;
            if entry.seq % REPLAY_PROGRESS_EVERY == 0 {
                tracing::info!(branch = %branch, at = entry.seq, of = head, "replaying the journal");
            }
            let p = match post(books, &entry.doc, PostContext::default()) {
                Ok(p) => p,
                // The rule gives `Damaged` on replay; a replay that met any other verdict
                // still could not go on without this entry, so it stops all the same.
                Err(source) => {
                    debug_assert_eq!(quarantine::verdict(PostPass::Replay, &source), Verdict::Damaged);
                    return Err(StoreError::NoLongerPosts { branch: *branch, seq: entry.seq, source: Box::new(source) });
                }
            };
            each(entry.seq, &entry.doc, &p);
            books.apply_owned(entry.doc, p);
        }
        Ok(())
    }

    /// The branch's books checkpoint, if it has one that fits its journal up to `head`.
    fn checkpoint(&self, branch: &BranchCode, head: u64) -> Result<Option<checkpoint::Checkpoint>, String> {
        let k = checkpoint_key(branch);
        let Some(v) = self.tree.get(&k).map_err(|e| e.to_string())? else { return Ok(None) };
        let held = |seq| self.journal.entry_index(branch, seq).ok().flatten().map(|i| i.hash);
        checkpoint::open(&show(&k), &v, head, held).map(Some).map_err(|e| e.to_string())
    }

    /// Writes a checkpoint of `books`, which hold the branch's journal up to `head`. A
    /// cache: if the write is lost, the next start replays more, so no fsync.
    pub(crate) fn write_checkpoint(&self, branch: &BranchCode, books: &Books, head: ChainHead) -> Result<()> {
        self.tree.insert(checkpoint_key(branch), checkpoint::seal(books, head.seq, head.hash))?;
        self.db.flush()?;
        Ok(())
    }
}
