//! Administrative writes of the profile parts issue 9 added: a branch's scope over the
//! eight kinds (`g` branch → `Scope`) and the customers and suppliers directory (`q` code
//! → `Party`). Each change is one write that also moves the profile version, a flush,
//! then memory, then the new version is issued (`profile_versions`).
//!
//! Must not touch the journal or the books.

use protocol::codes::BranchCode;
use protocol::parties::Party;
use protocol::record;
use protocol::scope::Scope;

use super::error::{Result, StoreError};
use super::keys::key;
use super::state::State;
use super::Store;

pub(crate) fn scope_key(branch: &BranchCode) -> Vec<u8> {
    key(b'g', &[branch.as_str().as_bytes()])
}

pub(crate) fn party_key(code: &protocol::codes::PartyCode) -> Vec<u8> {
    key(b'q', &[code.as_str().as_bytes()])
}

impl Store {
    /// Replaces `branch`'s scope; the branch gets the new profile version as soon as it is
    /// connected (or at its next hello), and documents it posted under the old one are
    /// still posted against the old one at HQ.
    pub fn set_scope(&self, st: &mut State, branch: BranchCode, scope: Scope) -> Result<()> {
        if !st.branches.contains_key(&branch) {
            return Err(StoreError::NoBranch(branch));
        }
        let mut batch = sled::Batch::default();
        batch.insert(scope_key(&branch), record::seal(&scope));
        let version = self.bump_profile(st, &mut batch);
        self.tree.apply_batch(batch)?;
        self.flush()?;
        st.scopes.insert(branch, scope);
        st.profile_version = version;
        self.issue_profiles(st)
    }

    /// Adds or (with `replace`) changes a customer or supplier. The directory's rules
    /// (valid record, codes never both) are checked before anything is written.
    pub fn put_party(&self, st: &mut State, party: Party, replace: bool) -> Result<()> {
        let mut parties = st.parties.clone();
        if replace { parties.replace(party.clone()).map(|_| ()) } else { parties.insert(party.clone()) }.map_err(StoreError::Party)?;
        let mut batch = sled::Batch::default();
        batch.insert(party_key(&party.code), record::seal(&party));
        let version = self.bump_profile(st, &mut batch);
        self.tree.apply_batch(batch)?;
        self.flush()?;
        st.parties = parties;
        st.profile_version = version;
        self.issue_profiles(st)
    }
}
