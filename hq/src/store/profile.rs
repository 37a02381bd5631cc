//! The profiles HQ builds of a branch from its state: the whole one it sends, and the
//! one posting checks a batch against. The rule of what the posting view may leave out
//! is `protocol::profile::ProfileSource`'s; this only points it at HQ's state.
//! Must not touch sled.

use protocol::codes::BranchCode;
use protocol::journal::VerifiedEntry;
use protocol::profile::BranchProfile;

use super::state::State;

/// The profile HQ sends a branch: its scope plus the whole catalog, and its people.
pub fn profile_of(st: &State, branch: &BranchCode) -> Option<BranchProfile> {
    let mut profile = st.profile_source(branch)?.whole();
    profile.people = super::people::people_of(st, branch);
    Some(profile)
}

/// The profile posting checks a batch of `branch` against.
pub(crate) fn posting_profile(st: &State, branch: &BranchCode, entries: &[VerifiedEntry]) -> Option<BranchProfile> {
    Some(st.profile_source(branch)?.for_posting(entries.iter().map(|e| &e.entry.doc)))
}
