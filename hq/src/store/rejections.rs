//! Refusals kept for people to see: on disk (all) and in memory (the latest per branch).
//! Must not touch the journal or the books.

use protocol::codes::BranchCode;
use protocol::record;

use super::error::Result;
use super::keys::{branch_key, open_rec, rejection_key, rejections_prefix};
use super::records::Rejection;
use super::state::State;
use super::Store;

/// Rejections kept per branch in memory for the status page (all are kept on disk).
pub const REJECTIONS_RECENT_MAX: usize = 50;

impl Store {
    /// Keeps a refusal on disk and in the recent list, and counts it for the branch.
    pub fn record_rejection(&self, st: &mut State, branch: Option<&BranchCode>, rej: Rejection) -> Result<()> {
        let Some(code) = branch.filter(|c| st.branches.contains_key(*c)) else {
            st.anonymous_rejections += 1;
            return Ok(());
        };
        let mut rec = st.branches.get(code).cloned().expect("checked above");
        rec.rejections += 1;
        let mut batch = sled::Batch::default();
        batch.insert(rejection_key(code, rec.rejections), record::seal(&rej));
        batch.insert(branch_key(code), record::seal(&rec));
        self.tree.apply_batch(batch)?;
        self.flush()?;
        st.branches.insert(*code, rec);
        let recent = st.recent_rejections.entry(*code).or_default();
        recent.push(rej);
        if recent.len() > REJECTIONS_RECENT_MAX {
            recent.remove(0);
        }
        Ok(())
    }

    /// The latest `limit` refusals of `branch`, newest first.
    pub fn rejections(&self, branch: &BranchCode, limit: usize) -> Result<Vec<Rejection>> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(rejections_prefix(branch)).rev().take(limit) {
            let (k, v) = item?;
            out.push(open_rec(&k, &v)?);
        }
        Ok(out)
    }
}
