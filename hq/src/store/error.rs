//! What can go wrong in HQ's store, as one typed error for the library's callers.
//!
//! Holds only the error type; it must not decide anything (the callers do: the server
//! refuses, the HTTP API answers 4xx/5xx, the binary prints and exits).

use std::path::PathBuf;

use protocol::codes::{BranchCode, WarehouseCode};
use protocol::error::{BatchError, CodeError, PostError};
use protocol::record::RecordError;

/// An error of HQ's store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another process holds the store's lock.
    #[error("the HQ store at {} is in use by another process (is `hq serve` running?)", path.display())]
    InUse { path: PathBuf },
    /// sled could not open the store.
    #[error("opening HQ store at {}: {source}", path.display())]
    Open { path: PathBuf, source: sled::Error },
    /// A file operation outside sled (its data file, the fsync) failed.
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    /// A sled read or write failed.
    #[error("HQ store error: {0}")]
    Db(#[from] sled::Error),
    /// A stored record failed its checksum or did not decode.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// A stored key holds a code that is not valid.
    #[error("a stored key: {0}")]
    Code(#[from] CodeError),
    /// A stored batch or entry does not decode.
    #[error("a stored batch: {0}")]
    Batch(#[from] BatchError),
    /// The store contradicts itself: a piece is missing, an entry does not match its
    /// hash or no longer posts on replay.
    #[error("{0}")]
    Damaged(String),
    /// An entry stored as applied no longer posts on replay: the store is damaged.
    #[error("entry {seq} of {branch} no longer posts on replay: the HQ store is damaged: {source}")]
    NoLongerPosts { branch: BranchCode, seq: u64, source: Box<PostError> },
    /// `add_branch` for a code that exists.
    #[error("branch {0} already exists; use `hq branch token {0}` to issue a new enrollment token")]
    BranchExists(BranchCode),
    /// `add_branch` without a warehouse.
    #[error("branch {0} needs at least one warehouse (--warehouse CODE)")]
    NoWarehouse(BranchCode),
    /// `add_branch` with a warehouse another branch owns.
    #[error("warehouse {warehouse} already belongs to branch {owner}; each warehouse has one owning branch")]
    WarehouseTaken { warehouse: WarehouseCode, owner: BranchCode },
    /// A name that breaks the one text rule (`protocol::text`).
    #[error(transparent)]
    Text(#[from] protocol::text::TextError),
    /// A customer or supplier record, or a change to the directory, was refused.
    #[error(transparent)]
    Party(protocol::parties::PartyError),
    /// A branch that HQ does not know.
    #[error("no branch {0}; add it with `hq branch add {0} --name ... --warehouse ...`")]
    NoBranch(BranchCode),
    /// A down-queue operation refused (queue full, an ack beyond what was sent).
    #[error("down channel: {0}")]
    Down(protocol::down::DownError),
    /// A transfer order HQ cannot issue as given (the text says why and what to fix).
    #[error("transfer: {0}")]
    Transfer(String),
    /// HQ has no down-channel key loaded, so it cannot sign down messages.
    #[error("HQ's down-channel key is not loaded; nothing can be sent down to branches")]
    NoDownKey,
    /// A decision on a document that is neither flagged nor quarantined.
    #[error("document {seq} of {branch} is not in the review queue")]
    NotForReview { branch: BranchCode, seq: u64 },
    /// A second decision on the same document.
    #[error("document {seq} of {branch} was already decided ({order:?})")]
    AlreadyDecided { branch: BranchCode, seq: u64, order: protocol::down::ResolutionOrder },
    /// A draft under an id HQ holds with other content (a faulty or tampered branch).
    #[error("branch {branch} sent draft {id} again with different content; HQ keeps the first")]
    DraftConflict { branch: BranchCode, id: u64 },
    /// Too many undecided drafts from one branch.
    #[error("branch {branch} has {max} drafts awaiting a decision; decide some first")]
    TooManyDrafts { branch: BranchCode, max: usize },
    /// A decision on a draft HQ does not hold.
    #[error("no draft {id} from branch {branch} in the approval queue")]
    NoDraft { branch: BranchCode, id: u64 },
    /// A second decision on the same draft.
    #[error("draft {id} of {branch} was already decided (approved: {approved})")]
    DraftDecided { branch: BranchCode, id: u64, approved: bool },
    /// Approval rules that cannot be issued.
    #[error("approval rules refused: {0}")]
    BadRules(String),
    /// The thread staging a batch panicked (a bug); nothing was committed.
    #[error("the thread staging the batch panicked")]
    StagingPanicked,
}

/// Why an enrollment was refused; the text is sent to the branch's technician.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnrollError {
    /// No token with this secret was issued.
    #[error("unknown enrollment token: ask HQ for a new one (`hq branch token CODE`)")]
    UnknownToken,
    /// The token is not valid for this branch now (other branch, used, expired): decided
    /// by the pure core with HQ's clock passed in.
    #[error(transparent)]
    Refused(#[from] protocol::token::TokenRefusal),
    /// The branch's public key is not an ed25519 key.
    #[error("branch public key is not a valid ed25519 key")]
    BadKey,
    /// The key is already enrolled or was revoked: a branch enrolls a fresh key.
    #[error("this key is already known at HQ (enrolled or revoked); enroll with a freshly generated key")]
    KeyKnown,
    /// The branch was removed at HQ after the token was issued.
    #[error("branch was removed at HQ")]
    BranchRemoved,
    /// Reading or writing the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
