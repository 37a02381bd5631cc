//! Checkpoints of the books: a cache of a replay, never the truth.
//!
//! Branch and HQ rebuild their books at start by replaying the journal, which grows
//! without end. A checkpoint records the books as they stood after entry `seq` (and that
//! entry's hash), so a restart replays only the entries after it. The journal stays the
//! truth: a checkpoint is used only when it was written by this engine and names the very
//! entry the journal holds at `seq`. Anything else — another build, a restored store with
//! a different history, a torn or flipped record — and the caller replays from the start.
//! Losing one therefore costs time, never books, so it needs no fsync of its own.

use serde::{Deserialize, Serialize};

use super::Books;
use crate::journal::EntryHash;
use crate::record;

/// The posting rules' version. A checkpoint holds their results, so any change to what
/// `post` or `Books::apply` compute, or to the fields of `Books`, must bump this: older
/// checkpoints are then ignored and the journal is replayed once.
pub const ENGINE_VERSION: u32 = 8;

/// Replaying more entries than this at start writes a new checkpoint.
pub const CHECKPOINT_AFTER_ENTRIES: u64 = 10_000;

#[derive(Serialize)]
struct CheckpointRef<'a> {
    engine: u32,
    seq: u64,
    hash: EntryHash,
    books: &'a Books,
}

/// The books after entry `seq`, as read back from storage.
#[derive(Deserialize)]
pub struct Checkpoint {
    engine: u32,
    pub seq: u64,
    pub hash: EntryHash,
    pub books: Books,
}

/// A sealed checkpoint record of `books` as they stand after entry `seq` with `hash`.
pub fn seal(books: &Books, seq: u64, hash: EntryHash) -> Vec<u8> {
    record::seal(&CheckpointRef { engine: ENGINE_VERSION, seq, hash, books })
}

/// Why a stored checkpoint cannot stand in for a replay. Each is logged and the caller
/// replays the journal from the start; none is an error of the books.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The record is torn, flipped, of another format or does not decode.
    #[error(transparent)]
    Record(#[from] record::RecordError),
    /// Written by another posting engine, whose results this build may not share.
    #[error("checkpoint is from posting engine {found}, this build runs {ENGINE_VERSION}")]
    OtherEngine { found: u32 },
    /// Past the end of the journal (a store restored from an older copy).
    #[error("checkpoint is at entry {seq} but the journal ends at {head}")]
    PastHead { seq: u64, head: u64 },
    /// The journal holds another entry at `seq`: another history.
    #[error("checkpoint names an entry {seq} the journal does not hold (another history)")]
    OtherHistory { seq: u64 },
}

/// Opens a stored checkpoint and checks that it may stand in for replaying entries
/// `1..=seq`: same engine, `seq` within the journal's `head`, and `held(seq)` (the hash
/// of the entry the journal holds there) equal to the hash it names. The error says why
/// not, for the log; the caller then replays from the start.
pub fn open(key: &str, bytes: &[u8], head: u64, held: impl FnOnce(u64) -> Option<EntryHash>) -> Result<Checkpoint, CheckpointError> {
    let cp: Checkpoint = record::open(&key, bytes)?;
    if cp.engine != ENGINE_VERSION {
        return Err(CheckpointError::OtherEngine { found: cp.engine });
    }
    if cp.seq > head {
        return Err(CheckpointError::PastHead { seq: cp.seq, head });
    }
    if held(cp.seq) != Some(cp.hash) {
        return Err(CheckpointError::OtherHistory { seq: cp.seq });
    }
    Ok(cp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::books::{post, PostContext};
    use crate::document::DocType;
    use crate::testkit::sample_doc_lines;

    fn books_after(n: u32) -> Books {
        let mut books = Books::default();
        for serial in 1..=n {
            let t = if serial % 3 == 0 { DocType::Sale } else { DocType::StockGain };
            let doc = sample_doc_lines("SH", "SH01", t, serial, 3);
            let p = post(&books, &doc, PostContext::default()).expect("posts");
            books.apply_owned(doc, p);
        }
        books
    }

    /// Pins what the engine computes, as a checkpoint holds it. When this fails, posting
    /// results or the fields of `Books` changed: if that is intended, bump
    /// `ENGINE_VERSION` (old checkpoints must be ignored, not trusted) and update both
    /// figures here together.
    #[test]
    fn engine_version_moves_with_what_posting_computes() {
        let sealed = seal(&books_after(30), 30, EntryHash([3; 32]));
        let pinned = blake3::hash(&sealed).to_hex().to_string();
        assert_eq!(
            (ENGINE_VERSION, pinned.as_str()),
            (8, "f2fc413c5d104e970e24855d3c265de19c6761beb5e55c93b63f1204c772682f"),
            "posting results changed: bump ENGINE_VERSION and update this pin"
        );
    }

    #[test]
    fn a_checkpoint_gives_back_the_same_books_and_only_for_the_entry_it_names() {
        let books = books_after(9);
        let hash = EntryHash([3; 32]);
        let sealed = seal(&books, 9, hash);
        let cp = open("k", &sealed, 9, |_| Some(hash)).expect("fits");
        assert_eq!((cp.seq, cp.books == books), (9, true));
        assert_eq!(open("k", &sealed, 8, |_| Some(hash)).err(), Some(CheckpointError::PastHead { seq: 9, head: 8 }));
        assert_eq!(open("k", &sealed, 9, |_| Some(EntryHash([4; 32]))).err(), Some(CheckpointError::OtherHistory { seq: 9 }));
        let mut torn = sealed.clone();
        torn.truncate(sealed.len() / 2);
        assert!(matches!(open("k", &torn, 9, |_| Some(hash)), Err(CheckpointError::Record(_))), "torn");
    }
}
