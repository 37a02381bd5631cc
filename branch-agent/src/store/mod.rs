//! The branch's durable state in sled, and posting.
//!
//! One sled tree with key prefixes, so a posting (journal entry, stock positions, the
//! numbering counter and the new chain head) is a single atomic `apply_batch`, flushed
//! before the caller hears "ok". Values are sealed records (format byte + checksum):
//! sled is treated as untrusted and every record is checked when read.
//!
//! Keys: `j` seq(be) → journal entry bytes;
//! `n` type 0 yyyymmdd → last serial; `m` name → meta (`identity`, `head`, `acked`,
//! `profile`, `halt`); `h` id(be) → till shift (`shift::ShiftRecord`, written by `pos`).
//!
//! Posting stops for good (until the store is rebuilt or the process restarts) in two
//! cases: HQ's history and the journal's disagree (`halt`, stored, so a restart does not
//! post again: a branch restored from an old copy), and a write whose outcome is unknown
//! (sled took the batch but the flush failed: the entry may be on disk, so its seq must
//! never be given to another document).

//! Rooms: `disk` (the key layout, opening a store and rebuilding its books from the
//! journal and the checkpoint, flush + fsync), `post` (numbering, posting and the group
//! commit of a post), `tests`. This module holds the handle and its small reads and
//! writes; it must not post (only `post` does) nor open sled itself (only `disk` does).

mod disk;
mod post;

use std::sync::{Arc, Mutex};

use anyhow::Context;
use protocol::books::{Books, Position};
use protocol::codes::{BranchCode, ProductCode, WarehouseCode};
use protocol::error::PostError;
use protocol::journal::{ChainHead, JournalEntry};
use protocol::profile::BranchProfile;
use protocol::record;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use disk::open_db;
use disk::{journal_key, meta, shift_key, show};

/// Who this branch is, as enrollment left it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Identity {
    pub branch: BranchCode,
    pub signing_key: [u8; 32],
    pub hq_fingerprint: [u8; 32],
}

/// Result of a successful post.
#[derive(Clone, Debug, Serialize)]
pub struct Posted {
    pub number: String,
    pub seq: u64,
    pub hash: String,
    /// Worth telling the operator; the document is posted (e.g. sold below cost).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Why a post was refused. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum PostFailure {
    #[error(transparent)]
    Refused(#[from] PostError),
    #[error("storage failed, nothing was posted: {0:#}")]
    Storage(anyhow::Error),
    /// HQ's history and this branch's disagree; nothing is posted until a rebuild.
    #[error("posting is stopped: {0}")]
    Halted(String),
    /// An earlier write's outcome is unknown; nothing is posted until a restart.
    #[error("posting is stopped after a failed write ({0}); restart the agent, which recovers from disk")]
    Stopped(String),
    /// It needs HQ's approval (`protocol::approval`) and names no approved draft of its own.
    #[error("{0}")]
    NeedsApproval(String),
}

struct Live {
    books: Books,
    /// The head posts append to: written to sled, durable once its group flush returns.
    head: ChainHead,
    /// Shared, never cloned per post: replaced whole when HQ sends a new one.
    profile: Arc<BranchProfile>,
    /// Why posting is stopped for good (stored as `m/halt`).
    halted: Option<String>,
    /// Why posting is stopped until a restart (a write whose outcome is unknown).
    stopped: Option<String>,
}

pub struct Store {
    db: sled::Db,
    tree: sled::Tree,
    /// sled's data file, held open to fsync it (see `flush`).
    data_file: std::fs::File,
    /// sled's blob files (large values and tree nodes), which sled never fsyncs.
    files: edge::durable::StoreFiles,
    identity: Identity,
    live: Mutex<Live>,
    /// The head as far as it is durable: what the forwarder may send and `head()` says.
    /// Behind `live.head` only while a post waits for its flush.
    durable_head: Mutex<ChainHead>,
    /// Concurrent posts share their flush + fsync.
    group: edge::GroupCommit,
    /// Journal entries replayed to rebuild the books at open (the rest came from the
    /// checkpoint).
    replayed_at_open: u64,
    /// Documents made durable since open (`/metrics`: `branch_documents_posted_total`).
    posted: prometheus_client::metrics::counter::Counter,
    /// Tests: the next flush fails (after sled took the batch).
    #[cfg(test)]
    fail_next_flush: std::sync::atomic::AtomicBool,
    /// The branch clock's date rules (`business_zone`, `ahead_days_max` in agent.toml).
    dates: Mutex<Dates>,
}

/// The branch's business time zone and how far ahead of today a document may be dated.
#[derive(Clone, Debug)]
pub struct Dates {
    pub zone: edge::BusinessZone,
    pub ahead_days_max: u32,
}

impl Default for Dates {
    fn default() -> Dates {
        Dates { zone: edge::BusinessZone::default(), ahead_days_max: protocol::dating::AHEAD_DAYS_MAX_DEFAULT }
    }
}

impl Store {
    /// The tree, for the module that keeps the down channel's records beside the journal
    /// (`down`), so a down message and its effect go in one batch.
    pub(crate) fn tree(&self) -> &sled::Tree {
        &self.tree
    }

    /// Flush + fsync, for writes made through [`Store::tree`].
    pub(crate) fn flush_durable(&self) -> anyhow::Result<()> {
        self.flush()
    }

    /// Sets the branch clock's date rules (from agent.toml; the default until then is
    /// Asia/Shanghai and `dating::AHEAD_DAYS_MAX_DEFAULT`).
    pub fn set_dates(&self, dates: Dates) {
        *edge::lock(&self.dates) = dates;
    }

    /// Today's business date in the branch's zone, and the zone's name.
    pub fn today(&self) -> (protocol::date::BusinessDate, String) {
        let dates = edge::lock(&self.dates);
        (dates.zone.today(), dates.zone.name().to_string())
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The counter of documents made durable since open, for the metrics registry.
    pub fn posted_counter(&self) -> prometheus_client::metrics::counter::Counter {
        self.posted.clone()
    }

    /// The store answers a read (for `/readyz`).
    pub fn answers(&self) -> bool {
        self.tree.first().is_ok()
    }

    pub fn replayed_at_open(&self) -> u64 {
        self.replayed_at_open
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        edge::lock(&self.live)
    }

    /// The durable head: every entry up to it survives a power cut, so the forwarder
    /// sends nothing past it.
    pub fn head(&self) -> ChainHead {
        *edge::lock(&self.durable_head)
    }

    /// The profile HQ sent, shared (the catalog is not copied).
    pub fn profile(&self) -> Arc<BranchProfile> {
        self.live().profile.clone()
    }

    /// (flushes, posts they made durable) since open: how well concurrent posts group.
    pub fn group_commit_stats(&self) -> (u64, u64) {
        self.group.stats()
    }

    pub fn acked(&self) -> anyhow::Result<u64> {
        match self.tree.get(meta("acked"))? {
            Some(v) => Ok(record::open(&"m/acked", &v)?),
            None => Ok(0),
        }
    }

    /// Records HQ's ack. Not flushed: losing it only means HQ sees a duplicate, which it
    /// acknowledges without applying.
    /// A small write: the checkpoint lives in its own tree (`CHECKPOINT_TREE`).
    pub fn set_acked(&self, seq: u64) -> anyhow::Result<()> {
        self.tree.insert(meta("acked"), record::seal(&seq))?;
        Ok(())
    }

    /// Stops posting for good: HQ's history and ours disagree (`why` says how). Stored and
    /// flushed first, so a restart stays stopped; only a rebuild of the store ends it.
    pub fn halt(&self, why: &str) -> anyhow::Result<()> {
        let mut live = self.live();
        if live.halted.is_none() {
            tracing::error!(reason = why, "posting stopped: this branch's history disagrees with HQ's; rebuild it from HQ");
            self.tree.insert(meta("halt"), record::seal(&why.to_string()))?;
            self.flush()?;
            live.halted = Some(why.to_string());
        }
        Ok(())
    }

    /// Why posting is stopped, if it is: a disagreement with HQ (for good) or a write
    /// whose outcome is unknown (until a restart).
    pub fn halted(&self) -> Option<String> {
        let live = self.live();
        live.halted.clone().or_else(|| live.stopped.as_ref().map(|w| format!("a write failed ({w}); restart the agent")))
    }

    /// Only the stored halt (a disagreement with HQ), for the forwarder.
    pub fn halted_by_hq(&self) -> Option<String> {
        self.live().halted.clone()
    }

    pub fn set_profile(&self, profile: BranchProfile) -> anyhow::Result<()> {
        self.tree.insert(meta("profile"), record::seal(&profile))?;
        self.flush()?;
        self.sync_blobs()?;
        self.live().profile = Arc::new(profile);
        Ok(())
    }

    /// The person of this branch who signs in as `login`, from the profile HQ sent (read
    /// without cloning the catalog).
    pub fn person(&self, login: &protocol::codes::OperatorId) -> Option<protocol::profile::PersonEntry> {
        self.live().profile.people.iter().find(|e| e.person.login == *login).cloned()
    }

    /// Reads the books under the lock (reports, stock counts).
    pub fn with_books<R>(&self, f: impl FnOnce(&Books) -> R) -> R {
        f(&self.live().books)
    }

    /// Journal entry bytes for `seq`, checked.
    pub fn entry_bytes(&self, seq: u64) -> anyhow::Result<Vec<u8>> {
        let v = self.tree.get(journal_key(seq))?.with_context(|| format!("journal entry {seq} is missing"))?;
        Ok(record::open_bytes(&format!("j/{seq}"), &v)?.to_vec())
    }

    pub fn entry(&self, seq: u64) -> anyhow::Result<Option<JournalEntry>> {
        match self.tree.get(journal_key(seq))? {
            Some(v) => Ok(Some(JournalEntry::decode(record::open_bytes(&format!("j/{seq}"), &v)?)?)),
            None => Ok(None),
        }
    }

    /// Stock positions with a non-zero quantity or value.
    pub fn stock(&self) -> Vec<((WarehouseCode, ProductCode), Position)> {
        self.live().books.positions().filter(|(_, p)| !p.is_zero()).map(|(k, p)| (*k, *p)).collect()
    }

    /// Writes a till shift record and flushes: a shift that was opened or closed stays so
    /// after a power cut. Not part of the journal: shifts are the till's own bookkeeping
    /// and never travel to HQ.
    pub fn put_shift<T: Serialize>(&self, id: u64, record: &T) -> anyhow::Result<()> {
        self.tree.insert(shift_key(id), record::seal(record))?;
        self.flush()?;
        Ok(())
    }

    pub fn shift<T: DeserializeOwned>(&self, id: u64) -> anyhow::Result<Option<T>> {
        match self.tree.get(shift_key(id))? {
            Some(v) => Ok(Some(record::open(&format!("h/{id}"), &v)?)),
            None => Ok(None),
        }
    }

    /// The shift with the highest id, if any.
    pub fn last_shift<T: DeserializeOwned>(&self) -> anyhow::Result<Option<T>> {
        match self.tree.scan_prefix([b'h']).next_back() {
            Some(item) => {
                let (k, v) = item?;
                Ok(Some(record::open(&show(&k), &v)?))
            }
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests;
