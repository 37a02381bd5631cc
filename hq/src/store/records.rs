//! The records HQ stores: branch, entry index, enrollment token, rejection.
//!
//! Plain serde types. Changing a field changes what is on disk: add with
//! `#[serde(default)]`, never rename. Must not read or write the store.

use std::collections::BTreeSet;

use protocol::books::quarantine::Mark;
use protocol::codes::{BranchCode, WarehouseCode};
use protocol::journal::{ChainHead, EntryHash};
use protocol::wire::RejectCode;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BranchRecord {
    pub code: BranchCode,
    pub name: String,
    pub warehouses: BTreeSet<WarehouseCode>,
    pub key: Option<[u8; 32]>,
    pub head: ChainHead,
    pub docs_applied: u64,
    pub docs_quarantined: u64,
    pub rejections: u64,
    pub enrolled_at_unix: Option<u64>,
    pub last_applied_unix: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EntryIndex {
    pub batch_first_seq: u64,
    pub index_in_batch: u32,
    pub hash: EntryHash,
    /// Why HQ did not apply this document to its books, if it did not.
    pub quarantined: Option<String>,
    /// HQ's mark on the document, if any: flagged for review (applied), or quarantined
    /// (applied or not) — `protocol::books::quarantine::classify`.
    #[serde(default)]
    pub mark: Option<Mark>,
}

impl EntryIndex {
    pub(crate) fn new(batch_first_seq: u64, seq: u64, hash: EntryHash, quarantined: Option<String>) -> EntryIndex {
        // A batch holds far fewer than 2^32 entries (the frame size bounds it).
        EntryIndex { batch_first_seq, index_in_batch: (seq - batch_first_seq) as u32, hash, quarantined, mark: None }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenRecord {
    pub branch: BranchCode,
    pub expires_unix: u64,
    pub used: bool,
}

/// A refusal, kept for people to see.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Rejection {
    pub at_unix: u64,
    pub code: RejectCode,
    pub text: String,
    pub peer: String,
}
