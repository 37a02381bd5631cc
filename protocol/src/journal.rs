//! The branch journal: every posted document gets the branch's next sequence number and
//! the hash of the previous entry, forming a hash chain. HQ uses the chain to tell a
//! duplicate from a gap, a fork or tampering without trusting the transport.
//!
//! An entry's identity is the blake3 hash of its postcard bytes. Entries travel and are
//! stored as those exact bytes, so nobody re-encodes (and so nobody can re-encode
//! differently) before hashing.
//!
//! Must not: re-encode an entry before hashing it, or store anything (the binaries do).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::document::Document;
use crate::error::{BatchError, ChainError};

/// Hash of one journal entry's bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct EntryHash(pub [u8; 32]);

impl EntryHash {
    /// The `prev` of entry 1: the chain starts from all zeroes.
    pub const GENESIS: EntryHash = EntryHash([0; 32]);

    pub fn of(entry_bytes: &[u8]) -> EntryHash {
        EntryHash(*blake3::hash(entry_bytes).as_bytes())
    }

    pub fn to_hex(self) -> String {
        crate::hex::encode(&self.0)
    }
}

impl fmt::Debug for EntryHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EntryHash({}…)", &self.to_hex()[..12])
    }
}

/// The last entry of a chain: `seq` 0 with the genesis hash means "empty".
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, Default)]
pub struct ChainHead {
    pub seq: u64,
    pub hash: EntryHash,
}

impl ChainHead {
    pub const EMPTY: ChainHead = ChainHead { seq: 0, hash: EntryHash::GENESIS };

    /// Makes the next entry for `doc` and its bytes; returns the new head too.
    pub fn append(&self, doc: Document) -> (JournalEntry, Vec<u8>, ChainHead) {
        let entry = JournalEntry { seq: self.seq + 1, prev: self.hash, doc };
        let bytes = entry.encode();
        let head = ChainHead { seq: entry.seq, hash: EntryHash::of(&bytes) };
        (entry, bytes, head)
    }
}

/// One posted document in a branch's journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub seq: u64,
    pub prev: EntryHash,
    pub doc: Document,
}

impl JournalEntry {
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("encoding an in-memory entry into a Vec cannot fail")
    }

    pub fn decode(bytes: &[u8]) -> Result<JournalEntry, BatchError> {
        postcard::from_bytes(bytes).map_err(|e| BatchError::Malformed(format!("journal entry: {e}")))
    }
}

/// An entry decoded from bytes, with its hash, ready to check against a chain.
#[derive(Clone, Debug)]
pub struct VerifiedEntry {
    pub entry: JournalEntry,
    pub hash: EntryHash,
    pub bytes: Vec<u8>,
}

/// Checks that `entries` link to each other: consecutive seqs, each `prev` the hash of
/// the one before. Says nothing about where the run starts; see [`place_run`].
pub fn check_links(entries: &[VerifiedEntry]) -> Result<(), ChainError> {
    for pair in entries.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        // Seqs come from signed but untrusted bytes: u64::MAX has no successor.
        if a.entry.seq.checked_add(1) != Some(b.entry.seq) {
            return Err(ChainError::NotConsecutive { expected: a.entry.seq.saturating_add(1), found: b.entry.seq });
        }
        if b.entry.prev != a.hash {
            return Err(ChainError::Fork { seq: b.entry.seq });
        }
    }
    Ok(())
}

/// Where a linked run of entries falls relative to the chain head we hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Everything is already held; `last` is the run's last seq (its hash must be compared
    /// with the stored one by the caller, who holds the older entries).
    AllHeld { last: u64, last_hash: EntryHash },
    /// The run starts after a gap: ask for a resend from `from`.
    Gap { from: u64 },
    /// `skip` leading entries are already held; the rest extend the chain.
    Extends { skip: usize },
}

/// Places a linked, non-empty run against `head`.
pub fn place_run(head: ChainHead, entries: &[VerifiedEntry]) -> Result<Placement, ChainError> {
    let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
        return Ok(Placement::AllHeld { last: head.seq, last_hash: head.hash });
    };
    let first_seq = first.entry.seq;
    let last_seq = last.entry.seq;
    if first_seq == 0 {
        return Err(ChainError::NotConsecutive { expected: 1, found: 0 });
    }
    if first_seq > head.seq + 1 {
        return Ok(Placement::Gap { from: head.seq + 1 });
    }
    if last_seq <= head.seq {
        return Ok(Placement::AllHeld { last: last_seq, last_hash: last.hash });
    }
    let skip = (head.seq + 1 - first_seq) as usize;
    let joint = &entries[skip];
    if joint.entry.prev != head.hash {
        return Err(ChainError::Fork { seq: joint.entry.seq });
    }
    Ok(Placement::Extends { skip })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::sample_doc;

    fn chain(n: u64) -> Vec<VerifiedEntry> {
        let mut head = ChainHead::EMPTY;
        let mut out = Vec::new();
        for i in 0..n {
            let (entry, bytes, next) = head.append(sample_doc(i as u32 + 1));
            out.push(VerifiedEntry { entry, hash: next.hash, bytes });
            head = next;
        }
        out
    }

    #[test]
    fn placement_cases() {
        let c = chain(5);
        assert_eq!(check_links(&c), Ok(()));
        let head2 = ChainHead { seq: 2, hash: c[1].hash };
        assert_eq!(place_run(head2, &c[2..]), Ok(Placement::Extends { skip: 0 }));
        assert_eq!(place_run(head2, &c[..]), Ok(Placement::Extends { skip: 2 }));
        assert_eq!(place_run(head2, &c[3..]), Ok(Placement::Gap { from: 3 }));
        assert_eq!(place_run(head2, &c[..2]), Ok(Placement::AllHeld { last: 2, last_hash: c[1].hash }));
        let wrong = ChainHead { seq: 2, hash: EntryHash([9; 32]) };
        assert_eq!(place_run(wrong, &c[2..]), Err(ChainError::Fork { seq: 3 }));
    }

    #[test]
    fn tampering_breaks_links() {
        let mut c = chain(3);
        c[1].entry.doc.lines[0].qty += rust_decimal::Decimal::ONE;
        c[1].bytes = c[1].entry.encode();
        c[1].hash = EntryHash::of(&c[1].bytes);
        assert_eq!(check_links(&c), Err(ChainError::Fork { seq: 3 }));
        let mut c = chain(3);
        c.remove(1);
        assert_eq!(check_links(&c), Err(ChainError::NotConsecutive { expected: 2, found: 3 }));
    }
}
