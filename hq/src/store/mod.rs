//! HQ's durable state in sled and its in-memory mirror.
//!
//! Everything lives in one sled tree with key prefixes (`keys`), so that applying a
//! batch (entry index, the signed batch, the branch's new head, quarantined documents) is
//! atomic and flushed before the ack is sent. Values are sealed records (format byte +
//! checksum) because sled is treated as untrusted.
//!
//! Books are not stored: they are a function of the journals, rebuilt by replay at
//! start (see `Store::replay`) and kept in memory. The in-memory `State` is loaded at
//! start and changed only after the write that backs it is durable: memory never runs
//! ahead of disk.
//!
//! Modules: `keys` (layout), `records` (stored types), `state` (the mirror), `journal`
//! (entry index and signed batches: the storage boundary every entry read and write
//! goes through), `admin` (branches, tokens, products, credit limits), `apply` (a
//! batch, durably), `replay` (books from the journal, checkpoints), `drill` (documents
//! behind a report row), `rejections` (bounded and rate-limited), `people` (who signs
//! in), `keys_index` (which branch holds which key; revocation), `profile` (what a branch
//! is sent and posted against), `profile_versions` (every version issued, posted against
//! again), `scope_parties` (branch scopes, customers and suppliers), `sync_ctx` (what the
//! sync session is shown), `down` (the down queues and the review items), `books_slot`
//! (a branch's working books and the snapshot readers get), `group_commit` (one flush for
//! many writers), `error`.
//! This module holds the `Store` handle and its open, load and flush; it must not hold
//! any of the above.

mod admin;
mod apply;
mod approvals;
mod books_slot;
mod down;
mod drill;
mod error;
mod group_commit;
mod journal;
mod keys;
mod keys_index;
mod people;
mod profile;
mod profile_versions;
mod records;
mod rejections;
mod reopens;
mod replay;
mod scope_parties;
mod state;
mod sync_ctx;
#[cfg(test)]
mod tests;
pub mod transfers;

use std::path::Path;

use protocol::books::checkpoint;
use protocol::codes::{BranchCode, PartyCode, ProductCode};

pub use apply::ApplyOutcome;
pub use approvals::{ApprovalDecision, ApprovalItem, ApprovalState};
pub use books_slot::BranchBooks;
pub use down::{Decision, DownState, ReviewItem, ReviewKind};
pub use error::{EnrollError, StoreError};
pub use keys_index::{KeyIndex, KeyStatus, RevokedKey};
pub use people::{people_of, PeopleError, PEOPLE_MAX};
pub use profile::profile_of;
pub use records::{BranchRecord, EntryIndex, Rejection, TokenRecord};
pub use rejections::{REJECTIONS_KEPT_MAX, REJECTIONS_RECENT_MAX};
pub use state::{consolidated, merged, position, snapshots, State};
pub use sync_ctx::Ctx;

use error::Result;
use journal::Journal;
use keys::{key, open_rec, rejections_prefix, PROFILE_VERSION};

pub struct Store {
    db: sled::Db,
    tree: sled::Tree,
    /// The entry index and signed batches, over the same tree: every entry is written
    /// and read through it.
    journal: Journal,
    /// sled's data file, held open to fsync it: sled 0.34's `flush` only waits for
    /// `sync_file_range` (its own fsync runs every 500 ms in the background), which does
    /// not survive a power cut. See `flush`.
    data_file: std::fs::File,
    /// sled's blob files (large tree nodes land there), which sled never fsyncs.
    files: edge::durable::StoreFiles,
    /// Replaying more entries of a branch than this at start writes a books checkpoint.
    checkpoint_after: u64,
    /// Flushes since open: every durable write ends in one, so this counts HQ's disk
    /// writes (the QUIC door's tests check that refused peers cost none).
    flushes: std::sync::atomic::AtomicU64,
    /// Writers waiting for durability share flushes (`group_commit`).
    group: edge::GroupCommit,
}

impl Store {
    pub fn open(path: &Path) -> Result<Store> {
        let db = sled::Config::new().path(path).open().map_err(|e| match e {
            sled::Error::Io(ref io) if io.kind() == std::io::ErrorKind::WouldBlock => StoreError::InUse { path: path.to_path_buf() },
            source => StoreError::Open { path: path.to_path_buf(), source },
        })?;
        let tree = db.open_tree("hq")?;
        let data_file = std::fs::File::open(path.join("db"))
            .map_err(|source| StoreError::Io { what: format!("opening sled's data file in {}", path.display()), source })?;
        let journal = Journal::new(tree.clone());
        let files = edge::durable::StoreFiles::new(path);
        Ok(Store {
            db,
            tree,
            journal,
            data_file,
            files,
            checkpoint_after: checkpoint::CHECKPOINT_AFTER_ENTRIES,
            flushes: Default::default(),
            group: Default::default(),
        })
    }

    /// Loads the in-memory state, checking every record.
    pub fn load(&self) -> Result<State> {
        let mut st = State::default();
        for item in self.tree.scan_prefix([b'b']) {
            let (k, v) = item?;
            let rec: BranchRecord = open_rec(&k, &v)?;
            st.branches.insert(rec.code, rec);
        }
        for item in self.tree.scan_prefix([b'p']) {
            let (k, v) = item?;
            let code = ProductCode::new(String::from_utf8_lossy(&k[1..]))?;
            st.products.insert(code, open_rec(&k, &v)?);
        }
        for (code, rec) in &st.branches {
            let (books, replayed) = self.replay_counted(code)?;
            tracing::info!(branch = %code, entries = rec.head.seq, replayed, "books rebuilt from the journal");
            if replayed > self.checkpoint_after {
                self.write_checkpoint(code, &books, rec.head)?;
            }
            st.books.insert(*code, std::sync::Arc::new(BranchBooks::new(books)));
        }
        for item in self.tree.scan_prefix([b'c']) {
            let (k, v) = item?;
            let code = PartyCode::new(String::from_utf8_lossy(&k[1..]))?;
            st.credit_limits.insert(code, open_rec(&k, &v)?);
        }
        for item in self.tree.scan_prefix([b'o']) {
            let (k, v) = item?;
            let (branch, account) = admin::overdraft_key_parts(&k)?;
            st.overdrafts.entry(branch).or_default().insert(account, open_rec(&k, &v)?);
        }
        for item in self.tree.scan_prefix([b'u']) {
            let (k, v) = item?;
            let entry: protocol::profile::PersonEntry = open_rec(&k, &v)?;
            st.people.insert(entry.person.login, entry);
        }
        for item in self.tree.scan_prefix([b'g']) {
            let (k, v) = item?;
            let code = BranchCode::new(String::from_utf8_lossy(&k[1..]))?;
            st.scopes.insert(code, open_rec(&k, &v)?);
        }
        for item in self.tree.scan_prefix([b'q']) {
            let (k, v) = item?;
            st.parties.insert(open_rec(&k, &v)?).map_err(|e| StoreError::Damaged(format!("stored party {}: {e}", keys::show(&k))))?;
        }
        if let Some(v) = self.tree.get(key(b'm', &[PROFILE_VERSION]))? {
            st.profile_version = open_rec(b"m/profile_version", &v)?;
        }
        for code in st.branches.keys() {
            let mut recent = Vec::new();
            for item in self.tree.scan_prefix(rejections_prefix(code)).rev().take(REJECTIONS_RECENT_MAX) {
                let (k, v) = item?;
                recent.push(open_rec::<Rejection>(&k, &v)?);
            }
            recent.reverse();
            st.recent_rejections.insert(*code, recent);
        }
        self.load_key_index(&mut st)?;
        self.load_down(&mut st)?;
        self.load_approvals(&mut st)?;
        self.load_transfers(&mut st)?;
        self.load_reopens(&mut st)?;
        // A store from before versions were kept, or a crash between a change and its
        // issue: the version branches will be sent is recorded before any session runs.
        self.issue_profiles(&st)?;
        Ok(st)
    }

    pub fn flush(&self) -> Result<()> {
        self.flushes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.db.flush()?;
        // Make it durable for real: the device cache and the file's size, too; and the
        // blob files the flushed log points to (issue 10: sled never fsyncs those).
        self.files.sync_new().map_err(|source| StoreError::Io { what: "fsync of the HQ store's blob files".into(), source })?;
        self.data_file.sync_data().map_err(|source| StoreError::Io { what: "fsync of the HQ store".into(), source })
    }

    /// Durable writes (flushes) since the store was opened.
    pub fn writes(&self) -> u64 {
        self.flushes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The store answers a read (for `/readyz`): sled's tree is open and its pages load.
    pub fn answers(&self) -> bool {
        self.tree.first().is_ok()
    }

    /// All branches' books added together, for consolidated reports.
    pub fn consolidated(st: &State) -> protocol::books::Books {
        consolidated(st)
    }

    /// The index record of entry `seq` of `branch`, staged or applied.
    pub fn entry_index(&self, branch: &BranchCode, seq: u64) -> Result<Option<EntryIndex>> {
        self.journal.entry_index(branch, seq)
    }

    /// A stored signed batch, reassembled from its pieces and checked.
    pub fn signed_batch(&self, branch: &BranchCode, first: u64) -> Result<protocol::batch::SignedBatch> {
        self.journal.signed_batch(branch, first)
    }
}
