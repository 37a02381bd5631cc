//! What the sync session sees of HQ: the fetch the server runs before each step
//! (`protocol::sync::HqFacts::fetch` over [`Ctx`]), from memory plus the entry index.
//!
//! Read-only; must not write, and is never called from inside `HqSession::handle`.

use protocol::codes::BranchCode;
use protocol::journal::EntryHash;
use protocol::profile::BranchProfile;
use protocol::sync::{BranchView, HqContext, HqFacts, HqSession};
use protocol::wire::Message;
use protocol::VerifyingKey;

use super::profile::profile_of;
use super::state::State;
use super::Store;

/// HQ's state and store, as the fetch before a step reads them.
pub struct Ctx<'a> {
    pub st: &'a State,
    pub store: &'a Store,
}

impl Ctx<'_> {
    /// What `session` needs to handle `msg`, looked up now, before the step.
    pub fn facts(&self, session: &HqSession, msg: &Message) -> HqFacts {
        HqFacts::fetch(&session.needs(msg), self)
    }
}

impl HqContext for Ctx<'_> {
    fn branch(&self, code: &BranchCode) -> Option<BranchView> {
        let rec = self.st.branches.get(code)?;
        let key = VerifyingKey::from_bytes(&rec.key?).ok()?;
        Some(BranchView { key, head: rec.head, profile_version: self.st.profile_version })
    }

    fn profile(&self, code: &BranchCode) -> Option<BranchProfile> {
        profile_of(self.st, code)
    }

    fn held_hash(&self, code: &BranchCode, seq: u64) -> Option<EntryHash> {
        // Above the head an entry may be staged by an apply that never committed.
        if self.st.branches.get(code).is_none_or(|r| seq > r.head.seq) {
            return None;
        }
        match self.store.journal.entry_index(code, seq) {
            Ok(idx) => idx.map(|i| i.hash),
            Err(e) => {
                tracing::error!(branch = %code, seq, error = %e, "reading entry index");
                None
            }
        }
    }
}
