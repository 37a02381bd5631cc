//! Drill-through: from a report row to the documents behind it, and one document by seq.
//!
//! Reads stop at the branch's head (entries above it are staged, not applied). Must not
//! write, and reaches entries only through the journal.

use protocol::codes::BranchCode;
use protocol::journal::JournalEntry;
use protocol::VerifyingKey;

use super::error::Result;
use super::records::EntryIndex;
use super::state::State;
use super::Store;

impl Store {
    /// An accepted document with its index, batch signature status and stored entry.
    pub fn document(&self, st: &State, branch: &BranchCode, seq: u64) -> Result<Option<(EntryIndex, JournalEntry, bool)>> {
        let Some(rec) = st.branches.get(branch).filter(|r| seq <= r.head.seq) else { return Ok(None) };
        let Some((idx, entry, signed)) = self.journal.entry(branch, seq)? else { return Ok(None) };
        let signature_ok = rec.key.and_then(|kb| VerifyingKey::from_bytes(&kb).ok()).is_some_and(|vk| signed.signature_ok(&vk));
        Ok(Some((idx, entry, signature_ok)))
    }

    /// Stored, applied documents of a branch that `keep` accepts, oldest first, at most
    /// `limit`: the drill-through from a report row to the original documents.
    pub fn find_documents(&self, branch: &BranchCode, keep: impl Fn(&JournalEntry) -> bool, limit: usize) -> Result<Vec<JournalEntry>> {
        let mut out = Vec::new();
        for item in self.journal.entries(branch, 1, self.durable_head(branch)?, false) {
            let (_, entry) = item?;
            if keep(&entry) {
                out.push(entry);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }
}
