//! Refusals kept for people to see: on disk (a ring of the latest per branch) and in
//! memory (the latest few per branch). Writes are rate-limited per branch, so a peer
//! that provokes refusals cannot make HQ write without bound; what is not written is
//! still counted. Refusals of peers that never proved a branch key are only counted.
//! Must not touch the journal or the books.

use protocol::codes::BranchCode;
use protocol::record;

use super::error::Result;
use super::keys::{branch_key, open_rec, rejection_key, rejections_prefix};
use super::records::Rejection;
use super::state::State;
use super::Store;

/// Rejections kept per branch in memory for the status page.
pub const REJECTIONS_RECENT_MAX: usize = 50;
/// Rejections kept per branch on disk: the newest; older ones are removed as new ones
/// are written.
pub const REJECTIONS_KEPT_MAX: u64 = 1_000;
/// Rejection records written per branch per window; more in the same window are counted
/// but not written.
pub const REJECTION_WRITES_PER_WINDOW_MAX: u32 = 20;
/// The rate limit's window.
pub const REJECTION_WINDOW_SECS: u64 = 60;

impl Store {
    /// Keeps a refusal on disk and in the recent list, and counts it for the branch;
    /// above the rate limit it is only counted in memory. Returns whether it was written.
    pub fn record_rejection(&self, st: &mut State, branch: Option<&BranchCode>, rej: Rejection) -> Result<bool> {
        let Some(code) = branch.filter(|c| st.branches.contains_key(*c)) else {
            st.anonymous_rejections += 1;
            return Ok(false);
        };
        let window = st.rejection_window.entry(*code).or_insert((rej.at_unix, 0));
        if rej.at_unix >= window.0.saturating_add(REJECTION_WINDOW_SECS) || rej.at_unix < window.0 {
            *window = (rej.at_unix, 0);
        }
        if window.1 >= REJECTION_WRITES_PER_WINDOW_MAX {
            st.rejections_not_written += 1;
            return Ok(false);
        }
        window.1 += 1;
        let mut rec = st.branches.get(code).cloned().expect("checked above");
        rec.rejections += 1;
        let mut batch = sled::Batch::default();
        batch.insert(rejection_key(code, rec.rejections), record::seal(&rej));
        // The ring: the record `REJECTIONS_KEPT_MAX` behind this one goes.
        if let Some(old) = rec.rejections.checked_sub(REJECTIONS_KEPT_MAX).filter(|n| *n > 0) {
            batch.remove(rejection_key(code, old));
        }
        batch.insert(branch_key(code), record::seal(&rec));
        self.tree.apply_batch(batch)?;
        self.flush()?;
        st.branches.insert(*code, rec);
        let recent = st.recent_rejections.entry(*code).or_default();
        recent.push(rej);
        if recent.len() > REJECTIONS_RECENT_MAX {
            recent.remove(0);
        }
        Ok(true)
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
