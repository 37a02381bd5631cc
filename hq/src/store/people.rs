//! People who sign in (HQ's and every branch's): their records with password hashes,
//! stored under `u` login, and the profile version each change moves, since a branch's
//! people travel to it in its profile (so they can sign in while it is offline).
//!
//! Each change is one sled write and a flush before memory follows. Holds no password in
//! clear and decides no right (`protocol::people` does); must not touch the journal or
//! the books.

use protocol::codes::{BranchCode, OperatorId};
use protocol::people::{Home, Person, PersonError};
use protocol::profile::PersonEntry;
use protocol::record;

use super::error::StoreError;
use super::keys::{key, PROFILE_VERSION};
use super::state::State;
use super::Store;

/// Most people HQ keeps (all branches together): bounds a branch's profile and the sign-in
/// table in memory.
pub const PEOPLE_MAX: usize = 10_000;

/// Why a change to the people was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeopleError {
    #[error("{0} already exists; disable it or choose another login")]
    Exists(OperatorId),
    #[error("nobody signs in as {0}")]
    NoPerson(OperatorId),
    #[error("no branch {0}; add it with `hq branch add {0} ...` first")]
    NoBranch(BranchCode),
    #[error("HQ keeps at most {0} people")]
    Full(usize),
    #[error(transparent)]
    Person(#[from] PersonError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sled::Error> for PeopleError {
    fn from(e: sled::Error) -> PeopleError {
        PeopleError::Store(e.into())
    }
}

pub(crate) fn person_key(login: &OperatorId) -> Vec<u8> {
    key(b'u', &[login.as_str().as_bytes()])
}

impl Store {
    /// Adds a person; `password_phc` is an argon2id PHC string made by the caller.
    pub fn add_person(&self, st: &mut State, person: Person, password_phc: String) -> Result<(), PeopleError> {
        person.validate()?;
        if st.people.contains_key(&person.login) {
            return Err(PeopleError::Exists(person.login));
        }
        if st.people.len() >= PEOPLE_MAX {
            return Err(PeopleError::Full(PEOPLE_MAX));
        }
        if let Home::Branch(b) = person.home {
            if !st.branches.contains_key(&b) {
                return Err(PeopleError::NoBranch(b));
            }
        }
        self.put_person(st, PersonEntry { person, password_phc })
    }

    /// Disables a person: they can no longer sign in, at HQ or at their branch (once the
    /// branch has the new profile), and their open sessions are refused.
    pub fn disable_person(&self, st: &mut State, login: &OperatorId) -> Result<(), PeopleError> {
        let mut entry = st.people.get(login).cloned().ok_or(PeopleError::NoPerson(*login))?;
        entry.person.disabled = true;
        self.put_person(st, entry)
    }

    fn put_person(&self, st: &mut State, entry: PersonEntry) -> Result<(), PeopleError> {
        let version = st.profile_version + 1;
        let mut batch = sled::Batch::default();
        batch.insert(person_key(&entry.person.login), record::seal(&entry));
        batch.insert(key(b'm', &[PROFILE_VERSION]), record::seal(&version));
        self.tree.apply_batch(batch)?;
        self.flush()?;
        st.people.insert(entry.person.login, entry);
        st.profile_version = version;
        // People travel in the profile: the new version is recorded as issued to every
        // branch now, or documents posted under it would be quarantined as claiming a
        // version HQ never issued (found by the transfers test, which adds an auditor
        // after the branches).
        self.issue_profiles(st)?;
        Ok(())
    }
}

/// The people whose home is `branch`, as its profile carries them.
pub fn people_of(st: &State, branch: &BranchCode) -> Vec<PersonEntry> {
    st.people.values().filter(|e| e.person.home == Home::Branch(*branch)).cloned().collect()
}
