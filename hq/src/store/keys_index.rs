//! Which branch holds which key: the in-memory index HQ's QUIC door consults after the
//! TLS handshake, and the durable revocation of a branch's key.
//!
//! The index maps an ed25519 public key to the branch it is enrolled for, or to the
//! branch it was revoked from (so a revoked branch is told why). It is rebuilt at start
//! from the branch records (`b`) and the revoked-key records (`k` key → [`RevokedKey`]),
//! and changed only after the write that backs a change is durable. Must not touch the
//! journal, the books or the session.

use std::collections::HashMap;

use protocol::codes::BranchCode;
use protocol::record;
use serde::{Deserialize, Serialize};

use super::error::{Result, StoreError};
use super::keys::{branch_key, key, open_rec};
use super::state::State;
use super::Store;

/// A key taken from a branch: kept so that a peer still holding it is told why.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RevokedKey {
    pub branch: BranchCode,
    pub at_unix: u64,
    pub reason: String,
}

/// What HQ knows of a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyStatus {
    /// The key `branch` is enrolled with now.
    Enrolled(BranchCode),
    /// A key `branch` held until HQ revoked it.
    Revoked { branch: BranchCode, at_unix: u64, reason: String },
}

/// ed25519 public key → what HQ knows of it.
#[derive(Debug, Default)]
pub struct KeyIndex {
    keys: HashMap<[u8; 32], KeyStatus>,
}

impl KeyIndex {
    pub fn lookup(&self, key: &[u8; 32]) -> Option<&KeyStatus> {
        self.keys.get(key)
    }

    /// How many keys are enrolled (for status and tests).
    pub fn enrolled(&self) -> usize {
        self.keys.values().filter(|s| matches!(s, KeyStatus::Enrolled(_))).count()
    }

    pub(crate) fn set_enrolled(&mut self, key: [u8; 32], branch: BranchCode) {
        self.keys.insert(key, KeyStatus::Enrolled(branch));
    }

    fn set_revoked(&mut self, key: [u8; 32], rec: &RevokedKey) {
        self.keys.insert(key, KeyStatus::Revoked { branch: rec.branch, at_unix: rec.at_unix, reason: rec.reason.clone() });
    }
}

fn revoked_key_key(k: &[u8; 32]) -> Vec<u8> {
    key(b'k', &[k])
}

impl Store {
    /// Rebuilds `st.keys` from the branch records already in `st` and the revoked keys.
    pub(crate) fn load_key_index(&self, st: &mut State) -> Result<()> {
        let mut index = KeyIndex::default();
        for item in self.tree.scan_prefix([b'k']) {
            let (k, v) = item?;
            let rec: RevokedKey = open_rec(&k, &v)?;
            let bytes: [u8; 32] =
                k[1..].try_into().map_err(|_| StoreError::Damaged(format!("a revoked-key record under a key of {} bytes", k.len())))?;
            index.set_revoked(bytes, &rec);
        }
        for rec in st.branches.values() {
            if let Some(k) = rec.key {
                index.set_enrolled(k, rec.code);
            }
        }
        st.keys = index;
        Ok(())
    }

    /// Takes `code`'s enrolled key away, durably: from now on a peer presenting it is
    /// refused, and the branch needs a new token and enrollment. Returns the revoked key,
    /// or `None` if the branch had none. The caller closes live connections
    /// (`server::Hq::revoke_branch` does both).
    pub fn revoke_branch_key(&self, st: &mut State, code: &BranchCode, reason: &str, now_unix: u64) -> Result<Option<[u8; 32]>> {
        let mut batch = sled::Batch::default();
        let revoked = self.revoke_into(st, code, reason, now_unix, &mut batch)?;
        if revoked.is_none() {
            return Ok(None);
        }
        self.tree.apply_batch(batch)?;
        self.flush()?;
        self.revoked_in_memory(st, code, revoked.as_ref());
        Ok(revoked.map(|(k, _)| k))
    }

    /// Adds the revocation of `code`'s key to `batch`; nothing changes until it is
    /// applied and [`Self::revoked_in_memory`] is called.
    pub(crate) fn revoke_into(
        &self,
        st: &State,
        code: &BranchCode,
        reason: &str,
        now_unix: u64,
        batch: &mut sled::Batch,
    ) -> Result<Option<([u8; 32], RevokedKey)>> {
        let mut rec = st.branches.get(code).cloned().ok_or(StoreError::NoBranch(*code))?;
        let Some(old) = rec.key.take() else { return Ok(None) };
        let revoked = RevokedKey { branch: *code, at_unix: now_unix, reason: reason.to_string() };
        batch.insert(revoked_key_key(&old), record::seal(&revoked));
        batch.insert(branch_key(code), record::seal(&rec));
        Ok(Some((old, revoked)))
    }

    /// Memory follows a durable revocation.
    pub(crate) fn revoked_in_memory(&self, st: &mut State, code: &BranchCode, revoked: Option<&([u8; 32], RevokedKey)>) {
        if let Some((old, rec)) = revoked {
            st.keys.set_revoked(*old, rec);
            if let Some(b) = st.branches.get_mut(code) {
                b.key = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use protocol::codes::{BranchCode, WarehouseCode};

    use super::*;
    use crate::store::rejections::{REJECTIONS_KEPT_MAX, REJECTION_WRITES_PER_WINDOW_MAX};
    use crate::store::Rejection;

    /// A valid ed25519 public key (not every 32 bytes are one).
    fn key(n: u8) -> [u8; 32] {
        protocol::SigningKey::from_bytes(&[n; 32]).verifying_key().to_bytes()
    }

    fn enrolled_store(dir: &std::path::Path) -> (Store, State, BranchCode) {
        let store = Store::open(&dir.join("hq")).expect("open");
        let mut st = store.load().expect("load");
        let sh = BranchCode::new("SH").expect("code");
        let whs = BTreeSet::from([WarehouseCode::new("SH01").expect("warehouse")]);
        let secret = store.add_branch(&mut st, sh, "Shanghai".into(), whs, 0, 60).expect("add branch");
        store.enroll(&mut st, &sh, &secret, key(1), 1).expect("enroll");
        (store, st, sh)
    }

    #[test]
    fn revocation_is_durable_and_a_new_token_revokes_the_enrolled_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, mut st, sh) = enrolled_store(dir.path());
        assert_eq!(st.keys.lookup(&key(1)), Some(&KeyStatus::Enrolled(sh)));
        // A new token revokes key 1 in the same write; the next enrollment brings key 2.
        let (secret, revoked) = store.new_token(&mut st, &sh, 2, 60).expect("token");
        assert_eq!(revoked, Some(key(1)));
        assert!(matches!(st.keys.lookup(&key(1)), Some(KeyStatus::Revoked { at_unix: 2, .. })));
        assert!(matches!(store.enroll(&mut st, &sh, &secret, key(1), 3), Err(crate::store::EnrollError::KeyKnown)));
        store.enroll(&mut st, &sh, &secret, key(2), 3).expect("re-enroll");
        assert_eq!(store.revoke_branch_key(&mut st, &sh, "stolen", 4).expect("revoke"), Some(key(2)));
        assert_eq!(store.revoke_branch_key(&mut st, &sh, "again", 5).expect("revoke"), None, "nothing left to revoke");
        assert_eq!(st.keys.enrolled(), 0);
        drop(store);
        // Rebuilt at start from the records.
        let store = Store::open(&dir.path().join("hq")).expect("reopen");
        let st = store.load().expect("load");
        assert!(matches!(st.keys.lookup(&key(2)), Some(KeyStatus::Revoked { reason, .. }) if reason == "stolen"));
        assert!(st.branches[&sh].key.is_none());
    }

    #[test]
    fn rejection_records_are_rate_limited_and_kept_in_a_ring() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, mut st, sh) = enrolled_store(dir.path());
        let rej = |at_unix| Rejection { at_unix, code: protocol::wire::RejectCode::Malformed, text: "x".into(), peer: "p".into() };
        let written = (0..100).filter(|_| store.record_rejection(&mut st, Some(&sh), rej(10)).expect("record")).count();
        assert_eq!(written as u32, REJECTION_WRITES_PER_WINDOW_MAX, "one window's worth is written");
        assert_eq!(st.rejections_not_written, 100 - written as u64);
        // Unknown branches are only counted.
        let stranger = BranchCode::new("ZZ").expect("code");
        assert!(!store.record_rejection(&mut st, Some(&stranger), rej(10)).expect("record"));
        // Across many windows, at most REJECTIONS_KEPT_MAX stay on disk.
        for w in 1..=(REJECTIONS_KEPT_MAX / u64::from(REJECTION_WRITES_PER_WINDOW_MAX) + 5) {
            for _ in 0..REJECTION_WRITES_PER_WINDOW_MAX {
                store.record_rejection(&mut st, Some(&sh), rej(10 + w * 60)).expect("record");
            }
        }
        let kept = store.rejections(&sh, usize::MAX).expect("read").len() as u64;
        assert_eq!(kept, REJECTIONS_KEPT_MAX);
    }
}
