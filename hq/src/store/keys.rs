//! HQ's key layout: one sled tree, one prefix byte per kind of record.
//!
//! Holds the key builders and the sealed-record opener; it must not read or write the
//! tree itself (the modules that own each kind of record do).
//!
//! Key layout (`/` stands for the prefix byte followed by the parts):
//! - `b` branch code                → `BranchRecord`
//! - `e` branch 0x00 seq(be u64)    → `EntryIndex` (which batch holds the entry, its hash)
//! - `x` branch 0x00 first_seq(be)  → piece count; + piece(be u32) → a piece of the sealed
//!   `SignedBatch` as received (body + signature), split below sled's blob threshold
//! - `p` product                    → `Product`
//! - `c` customer                   → credit limit (`Dec`)
//! - `o` branch 0x00 account        → cash/bank overdraft allowance (`Dec`)
//! - `t` secret hash                → `TokenRecord`
//! - `u` login                      → `PersonEntry` (person and password hash)
//! - `r` branch 0x00 n(be u64)      → `Rejection`
//! - `s` branch                     → books checkpoint
//! - `g` branch                     → the branch's `Scope` as HQ set it
//! - `q` party code                 → `Party` (customer or supplier)
//! - `v` branch 0x00 version(be)    → `BranchProfile` as issued (every version, kept)
//! - `m` name                       → meta values (`profile_version`)
//! - `d` branch 0x00 seq(be u64)    → an unacked `SignedDown` (see `down`)
//! - `a` branch                     → the branch's down ack mark
//! - `w` branch 0x00 seq(be u64)    → `ReviewItem` (flagged/quarantined, the decision)
//! - `k` ed25519 public key         → `RevokedKey` (a key HQ revoked; see `keys_index`)
//! - `y` branch 0x00 id(be u64)     → `ApprovalItem` (a draft for approval, its decision; see `approvals`)
//! - `m` `approval_rules`           → `ApprovalRules` (issued with every profile)

use protocol::codes::BranchCode;
use protocol::record;

use super::error::Result;

pub(crate) fn key(prefix: u8, parts: &[&[u8]]) -> Vec<u8> {
    // Sized up front: an apply builds over a thousand of these.
    let mut k = Vec::with_capacity(1 + parts.iter().map(|p| p.len() + 1).sum::<usize>());
    k.push(prefix);
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(0);
        }
        k.extend_from_slice(p);
    }
    k
}

pub(crate) fn branch_key(branch: &BranchCode) -> Vec<u8> {
    key(b'b', &[branch.as_str().as_bytes()])
}

pub(crate) fn entry_key(branch: &BranchCode, seq: u64) -> Vec<u8> {
    key(b'e', &[branch.as_str().as_bytes(), &seq.to_be_bytes()])
}

pub(crate) fn batch_key(branch: &BranchCode, first: u64) -> Vec<u8> {
    key(b'x', &[branch.as_str().as_bytes(), &first.to_be_bytes()])
}

pub(crate) fn chunk_key(branch: &BranchCode, first: u64, i: u32) -> Vec<u8> {
    let mut k = batch_key(branch, first);
    k.extend_from_slice(&i.to_be_bytes());
    k
}

pub(crate) fn checkpoint_key(branch: &BranchCode) -> Vec<u8> {
    key(b's', &[branch.as_str().as_bytes()])
}

/// Prefix of a branch's rejections (`r` branch 0x00).
pub(crate) fn rejections_prefix(branch: &BranchCode) -> Vec<u8> {
    key(b'r', &[branch.as_str().as_bytes(), b""])
}

pub(crate) fn rejection_key(branch: &BranchCode, n: u64) -> Vec<u8> {
    key(b'r', &[branch.as_str().as_bytes(), &n.to_be_bytes()])
}

pub(crate) const PROFILE_VERSION: &[u8] = b"profile_version";

/// A key as people read it in an error message.
pub(crate) fn show(k: &[u8]) -> String {
    String::from_utf8_lossy(k).replace('\0', "/")
}

/// Opens a sealed record stored under `k`.
pub(crate) fn open_rec<T: serde::de::DeserializeOwned>(k: &[u8], v: &[u8]) -> Result<T> {
    Ok(record::open(&show(k), v)?)
}
