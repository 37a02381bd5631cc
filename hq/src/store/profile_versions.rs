//! Every profile version HQ issued to each branch, kept for good: a document names the
//! version it was posted under, and HQ posts it against that same version (so HQ's books
//! equal the branch's whatever HQ changed since). Key `v` branch 0x00 version(be u64) →
//! the whole `BranchProfile` as issued.
//!
//! A version is written (and flushed) before any session can send it: `issue` runs under
//! the state lock right after the change that made it, and `load` issues the current one
//! to any branch missing it. Must not touch the journal or the books.

use protocol::codes::BranchCode;
use protocol::profile::BranchProfile;
use protocol::record;

use super::error::Result;
use super::keys::{key, open_rec};
use super::profile::profile_of;
use super::state::State;
use super::Store;

pub(crate) fn version_key(branch: &BranchCode, version: u64) -> Vec<u8> {
    key(b'v', &[branch.as_str().as_bytes(), &version.to_be_bytes()])
}

impl Store {
    /// Records the current profile version of every branch that does not hold it yet,
    /// durably. Called after each change that moves the version, still under the lock.
    pub fn issue_profiles(&self, st: &State) -> Result<()> {
        let mut batch = sled::Batch::default();
        let mut any = false;
        for code in st.branches.keys() {
            let k = version_key(code, st.profile_version);
            if self.tree.contains_key(&k)? {
                continue;
            }
            if let Some(profile) = profile_of(st, code) {
                batch.insert(k, record::seal(&profile));
                any = true;
            }
        }
        if any {
            self.tree.apply_batch(batch)?;
            self.flush()?;
        }
        Ok(())
    }

    /// The profile version `version` as HQ issued it to `branch`; `None` if it never did.
    pub fn issued_profile(&self, branch: &BranchCode, version: u64) -> Result<Option<BranchProfile>> {
        let k = version_key(branch, version);
        match self.tree.get(&k)? {
            Some(v) => Ok(Some(open_rec(&k, &v)?)),
            None => Ok(None),
        }
    }
}
