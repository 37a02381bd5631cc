//! The journal HQ holds of each branch: the entry index and the signed batches, stored in
//! pieces. How entries are written (staged above the head, quarantine marks in the
//! commit) and read back (one entry, or a run up to the head, each checked against its
//! stored hash).
//!
//! This is the storage boundary: the rest of the store reaches entries only through
//! [`Journal`], so that a different backend can take its place. It must not read or
//! write branch records, heads or books; callers pass the head that bounds a read.

use protocol::batch::{decode_body, BatchBody, SignedBatch};
use protocol::books::quarantine::Mark;
use protocol::codes::BranchCode;
use protocol::journal::{EntryHash, JournalEntry};
use protocol::record;

use super::error::{Result, StoreError};
use super::keys::{batch_key, chunk_key, entry_key, open_rec, show};
use super::records::EntryIndex;

/// Largest piece of a stored signed batch. sled 0.34 writes values above its blob
/// threshold (128 KiB) to separate files that its flush does not fsync, so a batch (often
/// 250 KiB and more) is stored in pieces well below it, all in the same atomic write.
const BATCH_CHUNK_BYTES: usize = 64 * 1024;

/// The entries index and signed batches of every branch.
#[derive(Clone)]
pub(crate) struct Journal {
    tree: sled::Tree,
}

impl Journal {
    pub(crate) fn new(tree: sled::Tree) -> Journal {
        Journal { tree }
    }

    /// Writes a batch's entry index and the signed batch in one atomic write, above the
    /// branch's head: staged, not yet applied (see `Store::apply`).
    pub(crate) fn stage(&self, branch: &BranchCode, index: &[(u64, EntryHash)], first_in_batch: u64, signed: &SignedBatch) -> Result<()> {
        let mut batch = sled::Batch::default();
        for &(seq, hash) in index {
            batch.insert(entry_key(branch, seq), record::seal(&EntryIndex::new(first_in_batch, seq, hash, None)));
        }
        let sealed = record::seal(signed);
        let pieces: Vec<&[u8]> = sealed.chunks(BATCH_CHUNK_BYTES).collect();
        batch.insert(batch_key(branch, first_in_batch), record::seal(&(pieces.len() as u32)));
        for (i, piece) in pieces.iter().enumerate() {
            batch.insert(chunk_key(branch, first_in_batch, i as u32), *piece);
        }
        Ok(self.tree.apply_batch(batch)?)
    }

    /// Adds to `commit` HQ's mark on entry `seq` of a staged batch (flagged, or
    /// quarantined applied or not); an unapplied one is left out of replays. The commit
    /// is written after the staging write, and sled applies writes in order, so the mark
    /// overwrites the staged index record.
    pub(crate) fn mark(commit: &mut sled::Batch, branch: &BranchCode, first_in_batch: u64, seq: u64, hash: EntryHash, mark: Mark) {
        let unapplied = (!mark.applied()).then(|| mark.reason().to_string());
        let idx = EntryIndex { mark: Some(mark), ..EntryIndex::new(first_in_batch, seq, hash, unapplied) };
        commit.insert(entry_key(branch, seq), record::seal(&idx));
    }

    /// The index record of entry `seq`, staged or applied (the caller compares with the
    /// head).
    pub(crate) fn entry_index(&self, branch: &BranchCode, seq: u64) -> Result<Option<EntryIndex>> {
        let k = entry_key(branch, seq);
        match self.tree.get(&k)? {
            Some(v) => Ok(Some(open_rec(&k, &v)?)),
            None => Ok(None),
        }
    }

    /// A stored signed batch, reassembled from its pieces and checked.
    pub(crate) fn signed_batch(&self, branch: &BranchCode, first: u64) -> Result<SignedBatch> {
        let mk = batch_key(branch, first);
        let mv = self.tree.get(&mk)?.ok_or_else(|| StoreError::Damaged(format!("missing batch {}", show(&mk))))?;
        let pieces: u32 = open_rec(&mk, &mv)?;
        let mut sealed = Vec::new();
        for i in 0..pieces {
            let ck = chunk_key(branch, first, i);
            let piece = self.tree.get(&ck)?.ok_or_else(|| StoreError::Damaged(format!("missing piece {i} of batch {}", show(&mk))))?;
            sealed.extend_from_slice(&piece);
        }
        open_rec(&mk, &sealed)
    }

    /// Entry `seq` with its index and the signed batch that carried it, if the index holds
    /// it; `seq` must be at or below the head (the caller checks).
    pub(crate) fn entry(&self, branch: &BranchCode, seq: u64) -> Result<Option<(EntryIndex, JournalEntry, SignedBatch)>> {
        let Some(idx) = self.entry_index(branch, seq)? else { return Ok(None) };
        let signed = self.signed_batch(branch, idx.batch_first_seq)?;
        let body = decode_body(&signed.body)?;
        let entry = checked_entry(&body, &idx, &show(&entry_key(branch, seq)))?;
        Ok(Some((idx, entry, signed)))
    }

    /// The entries of `branch` from `from` up to `head`, in order, each checked against
    /// its stored hash; with `skip_quarantined`, quarantined ones are left out (and their
    /// batches not read for them).
    pub(crate) fn entries(&self, branch: &BranchCode, from: u64, head: u64, skip_quarantined: bool) -> Entries {
        Entries {
            journal: self.clone(),
            branch: *branch,
            range: self.tree.range(entry_key(branch, from)..entry_key(branch, head.saturating_add(1))),
            cached: None,
            skip_quarantined,
        }
    }
}

/// Entry bytes of `idx` out of its batch's `body`, checked against the stored hash.
fn checked_entry(body: &BatchBody, idx: &EntryIndex, what: &str) -> Result<JournalEntry> {
    let bytes =
        body.entries.get(idx.index_in_batch as usize).ok_or_else(|| StoreError::Damaged(format!("{what} indexes outside its batch")))?;
    if EntryHash::of(bytes) != idx.hash {
        return Err(StoreError::Damaged(format!("{what} does not match its stored hash: the HQ store is damaged")));
    }
    Ok(JournalEntry::decode(bytes)?)
}

/// A run of stored entries in seq order ([`Journal::entries`]); each batch is read and
/// decoded once for all its entries.
pub(crate) struct Entries {
    journal: Journal,
    branch: BranchCode,
    range: sled::Iter,
    /// The batch the previous entry came from, decoded.
    cached: Option<(u64, BatchBody)>,
    skip_quarantined: bool,
}

impl Entries {
    fn read(&mut self, k: &[u8], v: &[u8]) -> Result<Option<(EntryIndex, JournalEntry)>> {
        let idx: EntryIndex = open_rec(k, v)?;
        if self.skip_quarantined && idx.quarantined.is_some() {
            return Ok(None);
        }
        let body = match &self.cached {
            Some((first, body)) if *first == idx.batch_first_seq => body,
            _ => {
                let signed = self.journal.signed_batch(&self.branch, idx.batch_first_seq)?;
                &self.cached.insert((idx.batch_first_seq, decode_body(&signed.body)?)).1
            }
        };
        let entry = checked_entry(body, &idx, &show(k))?;
        Ok(Some((idx, entry)))
    }
}

impl Iterator for Entries {
    type Item = Result<(EntryIndex, JournalEntry)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (k, v) = match self.range.next()? {
                Ok(kv) => kv,
                Err(e) => return Some(Err(e.into())),
            };
            match self.read(&k, &v) {
                Ok(Some(item)) => return Some(Ok(item)),
                Ok(None) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
