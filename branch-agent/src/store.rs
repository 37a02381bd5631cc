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

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use protocol::books::{checkpoint, post, Books, Position, PostContext};
use protocol::codes::{BranchCode, ProductCode, WarehouseCode};
use protocol::document::{DocType, Document, Draft};
use protocol::error::PostError;
use protocol::journal::{ChainHead, EntryHash, JournalEntry};
use protocol::profile::BranchProfile;
use protocol::record;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

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

/// The tampered-branch switch for tests: with `BRANCHLINE_TEST_SKIP_SCOPE_CHECK=1`, a
/// debug build posts as if its scope allowed every code (catalog and credit limits still
/// checked), to prove HQ quarantines what a faulty branch sends. Release builds ignore
/// it. Returns the profile to post against instead, when the switch is on.
#[allow(clippy::type_complexity)]
fn skip_scope_check() -> Option<fn(&BranchProfile) -> BranchProfile> {
    if !cfg!(debug_assertions) || std::env::var("BRANCHLINE_TEST_SKIP_SCOPE_CHECK").as_deref() != Ok("1") {
        return None;
    }
    tracing::warn!("BRANCHLINE_TEST_SKIP_SCOPE_CHECK=1: this agent SKIPS its scope check (a test build playing a tampered branch)");
    Some(|p| BranchProfile { scope: Some(protocol::scope::Scope::all()), ..p.clone() })
}

/// The tampered-branch switch for approvals: with `BRANCHLINE_TEST_SKIP_APPROVAL_CHECK=1`,
/// a debug build posts what needs HQ's approval without one, to prove HQ quarantines it.
/// Release builds ignore it.
fn skip_approval_check() -> bool {
    let skip = cfg!(debug_assertions) && std::env::var("BRANCHLINE_TEST_SKIP_APPROVAL_CHECK").as_deref() == Ok("1");
    if skip {
        tracing::warn!(
            "BRANCHLINE_TEST_SKIP_APPROVAL_CHECK=1: this agent SKIPS its approval check (a test build playing a tampered branch)"
        );
    }
    skip
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

fn meta(name: &str) -> Vec<u8> {
    let mut k = vec![b'm'];
    k.extend_from_slice(name.as_bytes());
    k
}

fn journal_key(seq: u64) -> [u8; 9] {
    let mut k = [b'j'; 9];
    k[1..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn shift_key(id: u64) -> [u8; 9] {
    let mut k = [b'h'; 9];
    k[1..].copy_from_slice(&id.to_be_bytes());
    k
}

fn show(k: &[u8]) -> String {
    String::from_utf8_lossy(k).replace('\0', "/")
}

pub fn open_db(path: &Path) -> anyhow::Result<sled::Db> {
    sled::Config::new().path(path).open().map_err(|e| match e {
        sled::Error::Io(ref io) if io.kind() == std::io::ErrorKind::WouldBlock => {
            anyhow::anyhow!("the branch store at {} is in use by another process (is `branch-agent run` already running?)", path.display())
        }
        e => anyhow::anyhow!("opening branch store at {}: {e}", path.display()),
    })
}

/// sled's data file. sled 0.34's `flush` only waits for `sync_file_range` and leaves the
/// fsync to a background thread every 500 ms, so a post "flushed" by sled alone can be
/// lost in a power cut; we fsync this file ourselves before answering.
fn sync_dir_files(dir: &Path) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    for e in entries {
        std::fs::File::open(e?.path())?.sync_all()?;
    }
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// The books checkpoint has a tree of its own: sled rewrites a node with each change of
/// a key in it, and a checkpoint (35 MB for a busy branch) beside the head or the ack
/// mark was rewritten with every post and every ack.
const CHECKPOINT_TREE: &str = "checkpoint";
const CHECKPOINT_KEY: &[u8] = b"books";

/// Writes the books checkpoint into its own tree (dropping one a store from before kept
/// beside the meta records). Not flushed: a cache.
fn write_checkpoint(db: &sled::Db, tree: &sled::Tree, books: &Books, head: ChainHead) -> sled::Result<()> {
    db.open_tree(CHECKPOINT_TREE)?.insert(CHECKPOINT_KEY, checkpoint::seal(books, head.seq, head.hash))?;
    tree.remove(meta("checkpoint"))?;
    Ok(())
}

fn data_file(path: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::File::open(path.join("db")).with_context(|| format!("opening sled's data file in {}", path.display()))
}

impl Store {
    /// Flushes sled and fsyncs its data file: after this, the writes survive a power cut.
    fn flush(&self) -> anyhow::Result<()> {
        #[cfg(test)]
        if self.fail_next_flush.swap(false, std::sync::atomic::Ordering::SeqCst) {
            bail!("injected flush failure");
        }
        self.db.flush()?;
        self.files.sync_new()?;
        self.data_file.sync_data()?;
        Ok(())
    }

    /// fsyncs sled's blob files: values over 128 KiB (a large catalog in the profile) live
    /// there, and sled never fsyncs them.
    fn sync_blobs(&self) -> anyhow::Result<()> {
        self.files.sync_new()?;
        Ok(())
    }

    /// Writes identity and profile of a freshly enrolled branch.
    pub fn create(path: &Path, identity: &Identity, profile: &BranchProfile) -> anyhow::Result<()> {
        let db = open_db(path)?;
        let tree = db.open_tree("branch")?;
        if tree.get(meta("identity"))?.is_some() {
            bail!("{} already holds an enrolled branch; use a new --data-dir (a branch's journal must never be restarted)", path.display());
        }
        let mut b = sled::Batch::default();
        b.insert(meta("identity"), record::seal(identity));
        b.insert(meta("profile"), record::seal(profile));
        b.insert(meta("head"), record::seal(&ChainHead::EMPTY));
        b.insert(meta("acked"), record::seal(&0u64));
        tree.apply_batch(b)?;
        db.flush()?;
        data_file(path)?.sync_data()?;
        sync_dir_files(&path.join("blobs"))?;
        Ok(())
    }

    pub fn open(path: &Path) -> anyhow::Result<Store> {
        Store::open_checkpointing_after(path, checkpoint::CHECKPOINT_AFTER_ENTRIES)
    }

    /// `open`, writing a books checkpoint when more than `checkpoint_after` journal entries
    /// had to be replayed (tests lower it).
    pub fn open_checkpointing_after(path: &Path, checkpoint_after: u64) -> anyhow::Result<Store> {
        let db = open_db(path)?;
        let tree = db.open_tree("branch")?;
        let get = |name: &str| -> anyhow::Result<sled::IVec> {
            tree.get(meta(name))?.with_context(|| format!("branch store has no {name}: enroll first (`branch-agent enroll`)"))
        };
        let identity: Identity = record::open(&"m/identity", &get("identity")?)?;
        let head: ChainHead = record::open(&"m/head", &get("head")?)?;
        let profile: BranchProfile = record::open(&"m/profile", &get("profile")?)?;
        let halted: Option<String> = match tree.get(meta("halt"))? {
            Some(v) => Some(record::open(&"m/halt", &v)?),
            None => None,
        };
        // The head must point at the last journal entry we hold, else the store is damaged.
        if head.seq > 0 {
            let bytes = tree
                .get(journal_key(head.seq))?
                .with_context(|| format!("journal entry {} (the head) is missing: the store is damaged", head.seq))?;
            let payload = record::open_bytes(&format!("j/{}", head.seq), &bytes)?;
            if EntryHash::of(payload) != head.hash {
                bail!("journal entry {} does not match the recorded head: the store is damaged", head.seq);
            }
        }
        if tree.get(journal_key(head.seq + 1))?.is_some() {
            bail!("journal holds entries past the recorded head {}: the store is damaged", head.seq);
        }
        // The books are a function of the journal: replay it, from the checkpoint if one
        // fits. Every entry posted once, so every entry must post again; one that does not
        // means the store is damaged.
        let entry_hash = |seq: u64| -> Option<EntryHash> {
            let v = tree.get(journal_key(seq)).ok()??;
            record::open_bytes(&format!("j/{seq}"), &v).ok().map(EntryHash::of)
        };
        let checkpoints = db.open_tree(CHECKPOINT_TREE)?;
        let stored = match checkpoints.get(CHECKPOINT_KEY) {
            Ok(None) => tree.get(meta("checkpoint")),
            found => found,
        };
        let (mut books, from) = match stored {
            Ok(Some(v)) => match checkpoint::open("m/checkpoint", &v, head.seq, entry_hash) {
                Ok(cp) => (cp.books, cp.seq + 1),
                Err(why) => {
                    tracing::warn!(reason = %why, "ignoring the books checkpoint; replaying the whole journal");
                    (Books::default(), 1)
                }
            },
            Ok(None) => (Books::default(), 1),
            Err(e) => {
                tracing::warn!(error = %e, "reading the books checkpoint; replaying the whole journal");
                (Books::default(), 1)
            }
        };
        for seq in from..=head.seq {
            let v = tree.get(journal_key(seq))?.with_context(|| format!("journal entry {seq} is missing: the store is damaged"))?;
            let entry = JournalEntry::decode(record::open_bytes(&format!("j/{seq}"), &v)?)?;
            if seq % 100_000 == 0 {
                tracing::info!(at = seq, of = head.seq, "replaying the journal");
            }
            let p = post(&books, &entry.doc, PostContext::default())
                .with_context(|| format!("journal entry {seq} no longer posts on replay: the store is damaged"))?;
            books.apply_owned(entry.doc, p);
        }
        let replayed = (head.seq + 1).saturating_sub(from);
        tracing::info!(entries = head.seq, replayed, "books rebuilt from the journal");
        if replayed > checkpoint_after {
            // A cache: if this write is lost, the next start replays a little more.
            write_checkpoint(&db, &tree, &books, head)?;
            db.flush()?;
        }
        Ok(Store {
            db,
            tree,
            data_file: data_file(path)?,
            files: edge::durable::StoreFiles::new(path),
            identity,
            live: Mutex::new(Live { books, head, profile: Arc::new(profile), halted, stopped: None }),
            durable_head: Mutex::new(head),
            group: edge::GroupCommit::default(),
            replayed_at_open: replayed,
            #[cfg(test)]
            fail_next_flush: std::sync::atomic::AtomicBool::new(false),
            dates: Mutex::new(Dates::default()),
        })
    }

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

    /// Validates, numbers, posts and durably appends a draft. Returns only after the
    /// flush that made it durable.
    ///
    /// Group commit: under the lock the draft is checked, posted into the books and
    /// written to sled (entry + counter + head in one batch); the flush + fsync runs after
    /// the lock is let go and is shared with every post written meanwhile. The books (and
    /// the numbering) move before the fsync so the next post can build on them; the
    /// durable head, which the forwarder sends from, moves only after it. If a flush fails
    /// the store takes no more posts until restarted (memory may hold what disk lacks).
    pub fn post(&self, draft: Draft) -> Result<Posted, PostFailure> {
        let written = {
            let mut live = self.live();
            self.post_written(&mut live, draft)?
        };
        self.durable(written)
    }

    /// 盘点: computes the stock-loss and stock-gain documents that bring `template`'s
    /// warehouse to the `counted` quantities and writes both, all under one hold of the
    /// books' lock, so no sale can post between the count's arithmetic and its documents
    /// (issue 10: a sale in between made the second document wrong). The loss posts
    /// first; if the gain is then refused, the loss stands (it is made durable) and the
    /// refusal is returned (both are computed from the same books and dated alike, so only
    /// storage can fail).
    pub fn post_count(
        &self,
        template: &Draft,
        counted: &[(ProductCode, protocol::Decimal)],
        gain_price: impl Fn(&ProductCode) -> protocol::Decimal,
    ) -> Result<Vec<Posted>, PostFailure> {
        let mut written = Vec::new();
        let refused = {
            let mut live = self.live();
            let (loss, gain) = protocol::books::stock_count_drafts(&live.books, template, counted, gain_price);
            let mut refused = None;
            for d in [loss, gain].into_iter().flatten() {
                match self.post_written(&mut live, d) {
                    Ok(w) => written.push(w),
                    Err(e) => {
                        refused = Some(e);
                        break;
                    }
                }
            }
            refused
        };
        let posted = written.into_iter().map(|w| self.durable(w)).collect::<Result<Vec<_>, _>>()?;
        match refused {
            Some(e) => Err(e),
            None => Ok(posted),
        }
    }

    /// Waits for the group flush that covers a written post, then moves the durable head.
    /// A failed flush stops posting until a restart: sled holds the batch and may still
    /// write it, so the entry at this seq may exist after a restart and no other document
    /// may take the seq (the restart recovers the head from disk).
    fn durable(&self, (posted, seq, hash): (Posted, u64, EntryHash)) -> Result<Posted, PostFailure> {
        if let Err(e) = self.group.durable(|| self.flush().map_err(std::io::Error::other)) {
            let why = format!("{e:#}");
            tracing::error!(seq, error = %why, "flush failed after the write; posting stops until a restart");
            self.live().stopped = Some(why.clone());
            return Err(PostFailure::Stopped(why));
        }
        let mut durable = edge::lock(&self.durable_head);
        if seq > durable.seq {
            *durable = ChainHead { seq, hash };
        }
        Ok(posted)
    }

    /// The part of a post under the lock: check, post, write to sled (not yet durable).
    fn post_written(&self, live: &mut Live, draft: Draft) -> Result<(Posted, u64, EntryHash), PostFailure> {
        if let Some(why) = &live.halted {
            return Err(PostFailure::Halted(why.clone()));
        }
        if let Some(why) = &live.stopped {
            return Err(PostFailure::Stopped(why.clone()));
        }
        let branch = self.identity.branch;
        let counter_key = {
            let mut k = vec![b'n'];
            k.extend_from_slice(draft.doc_type.code().as_bytes());
            k.push(0);
            k.extend_from_slice(format!("{:04}{:02}{:02}", draft.date.year(), draft.date.month(), draft.date.day()).as_bytes());
            k
        };
        let last: u32 = match self.tree.get(&counter_key).map_err(|e| PostFailure::Storage(e.into()))? {
            Some(v) => record::open(&show(&counter_key), &v).map_err(|e| PostFailure::Storage(e.into()))?,
            None => 0,
        };
        // The branch clock's rules, before anything is numbered: today in the branch's zone.
        {
            let dates = edge::lock(&self.dates);
            protocol::dating::check(
                draft.doc_type,
                draft.date,
                draft.ext.period,
                dates.zone.today(),
                dates.zone.name(),
                dates.ahead_days_max,
            )
            .map_err(PostError::from)?;
        }
        // The document names the profile version it is posted under; HQ posts it against
        // that same version.
        let doc: Document = draft.number_under(branch, last + 1, live.profile.version).map_err(PostError::from)?;
        let posting = match skip_scope_check() {
            Some(open) => post(&live.books, &doc, PostContext::under(&open(&live.profile)))?,
            None => post(&live.books, &doc, PostContext::under(&live.profile))?,
        };
        // Judged under the approval rules of the profile it is posted under, against the
        // books before it, as HQ will judge it.
        let needs = protocol::approval::needs_approval(&doc, &posting, &live.books, &live.profile);
        let approval = match needs.is_empty() || skip_approval_check() {
            true => None,
            false => {
                Some(crate::drafts::approval_for_post(&self.tree, &doc, live.head.seq + 1, &needs).map_err(PostFailure::NeedsApproval)?)
            }
        };
        let number = doc.header.number.to_string();
        let (entry, bytes, head) = live.head.append(doc);
        let mut b = sled::Batch::default();
        if let Some((k, v)) = approval {
            b.insert(&k, v);
        }
        b.insert(&journal_key(head.seq), record::seal_bytes(&bytes));
        b.insert(counter_key, record::seal(&(last + 1)));
        b.insert(meta("head"), record::seal(&head));
        self.tree.apply_batch(b).map_err(|e| PostFailure::Storage(e.into()))?;
        // Written (not yet durable): the next post builds on it; the caller waits for
        // the flush before answering (`Store::durable`).
        let warnings = posting.warnings.clone();
        let closes = entry.doc.header.doc_type == DocType::PeriodClose;
        live.books.apply_owned(entry.doc, posting);
        live.head = head;
        if closes {
            // A month close empties most of the reversal window: the books are at their
            // smallest, and a checkpoint now spares the next start this month's replay.
            // Only a cache, so a failure is logged, not returned: the post is durable.
            let written = write_checkpoint(&self.db, &self.tree, &live.books, head);
            if let Err(e) = written {
                tracing::warn!(error = %e, "writing the books checkpoint after a month close");
            }
        }
        Ok((Posted { number, seq: head.seq, hash: head.hash.to_hex(), warnings }, head.seq, head.hash))
    }

    /// What HQ's approval rules say of `draft` if it were posted now: the reasons it
    /// needs approval (none: it does not), and the profile version judged under. A draft
    /// that would not post at all is refused as posting would refuse it. Writes nothing.
    pub fn judge(&self, draft: &Draft) -> Result<(Vec<protocol::approval::Need>, u64), PostFailure> {
        let live = self.live();
        let doc: Document = draft.clone().number_under(self.identity.branch, 1, live.profile.version).map_err(PostError::from)?;
        let posting = post(&live.books, &doc, PostContext::under(&live.profile))?;
        Ok((protocol::approval::needs_approval(&doc, &posting, &live.books, &live.profile), live.profile.version))
    }

    /// Reads the books under the lock (reports, stock counts).
    /// The person of this branch who signs in as `login`, from the profile HQ sent (read
    /// without cloning the catalog).
    pub fn person(&self, login: &protocol::codes::OperatorId) -> Option<protocol::profile::PersonEntry> {
        self.live().profile.people.iter().find(|e| e.person.login == *login).cloned()
    }

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
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use protocol::codes::{OperatorId, ProductCode, WarehouseCode};
    use protocol::date::BusinessDate;
    use protocol::document::{DocType, Line};
    use protocol::profile::Product;
    use protocol::Decimal;

    use super::*;

    fn create(dir: &Path) {
        let branch = BranchCode::new("SH").expect("code");
        let identity = Identity { branch, signing_key: [7; 32], hq_fingerprint: [0; 32] };
        let product = Product { name: "p".into(), unit: "pcs".into(), retail_price: None, prices: Vec::new(), category: None };
        let profile = BranchProfile {
            branch,
            name: "Shanghai".into(),
            warehouses: BTreeSet::from([WarehouseCode::new("SH01").expect("warehouse")]),
            products: BTreeMap::from([(ProductCode::new("P0000").expect("product"), product)]),
            credit_limits: BTreeMap::new(),
            overdrafts: Default::default(),
            version: 1,
            people: Vec::new(),
            approvals: Default::default(),
            scope: None,
            parties: Default::default(),
        };
        Store::create(dir, &identity, &profile).expect("create");
    }

    fn gain(day: u8) -> Draft {
        Draft {
            doc_type: DocType::StockGain,
            date: BusinessDate::new(2026, 6, day).expect("date"),
            operator: OperatorId::new("tester").expect("operator"),
            warehouse: WarehouseCode::new("SH01").expect("warehouse"),
            counterparty: None,
            memo: String::new(),
            payment: None,
            lines: vec![Line::priced(ProductCode::new("P0000").expect("product"), Decimal::ONE, Decimal::new(350, 2))],
            ext: Default::default(),
        }
    }

    /// Opens what a test dropped a moment ago. sled's background threads let go of the
    /// store's file lock shortly after the `Db` is dropped, not at once, so this retries
    /// for a while (a restarted agent process never meets this: exit releases the lock).
    fn after_drop<T>(open: impl Fn() -> anyhow::Result<T>) -> T {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match open() {
                Ok(t) => return t,
                Err(e)
                    if std::time::Instant::now() < deadline
                        && (format!("{e:#}").contains("lock") || format!("{e:#}").contains("in use")) =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => panic!("reopening: {e:#}"),
            }
        }
    }

    fn reopen(path: &Path, checkpoint_after: u64) -> Store {
        after_drop(|| Store::open_checkpointing_after(path, checkpoint_after))
    }

    fn digest(s: &Store) -> [u8; 32] {
        s.with_books(|b| b.digest())
    }

    /// A fresh store holding stock gains dated June 1..=`days`, opened with the given
    /// checkpoint threshold.
    fn store_with_gains(days: u8, checkpoint_after: u64) -> (tempfile::TempDir, std::path::PathBuf, Store) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store");
        create(&path);
        let s = Store::open_checkpointing_after(&path, checkpoint_after).expect("open");
        for day in 1..=days {
            s.post(gain(day)).expect("post");
        }
        (dir, path, s)
    }

    /// Issue 10: a post whose flush fails after sled took the batch may be on disk; its seq
    /// is never given to another document. Posting stops until a restart, which finds the
    /// entry (or not) and carries on from what is on disk.
    #[test]
    fn a_failed_write_never_lets_another_document_reuse_its_seq() {
        let (_dir, path, s) = store_with_gains(2, 100);
        s.fail_next_flush.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(matches!(s.post(gain(3)), Err(PostFailure::Stopped(_))));
        assert_eq!(s.head().seq, 2);
        // The next document is refused rather than numbered 3 again.
        assert!(matches!(s.post(gain(4)), Err(PostFailure::Stopped(_))));
        assert!(s.halted().is_some());
        drop(s);
        // After the restart the head is what is on disk, and the next seq follows it.
        let s = reopen(&path, 100);
        let on_disk = s.head();
        assert!(on_disk.seq == 2 || on_disk.seq == 3, "{on_disk:?}");
        let next = s.post(gain(5)).expect("posting resumes after a restart");
        assert_eq!(next.seq, on_disk.seq + 1);
        if on_disk.seq == 3 {
            let third = s.entry(3).expect("read").expect("entry 3");
            assert_eq!(third.doc.header.date, BusinessDate::new(2026, 6, 3).expect("date"), "seq 3 is the first document's");
        }
    }

    /// A halt (HQ's history disagrees) refuses every post and survives a restart.
    #[test]
    fn a_halt_refuses_posts_and_survives_a_restart() {
        let (_dir, path, s) = store_with_gains(1, 100);
        s.halt("HQ holds a different entry 1").expect("halt");
        assert!(matches!(s.post(gain(2)), Err(PostFailure::Halted(why)) if why.contains("different entry")));
        drop(s);
        let s = reopen(&path, 100);
        assert_eq!(s.halted_by_hq().as_deref(), Some("HQ holds a different entry 1"));
        assert!(matches!(s.post(gain(2)), Err(PostFailure::Halted(_))));
        assert_eq!(s.head().seq, 1);
    }

    #[test]
    fn a_month_close_leaves_a_checkpoint_so_the_next_start_replays_nothing() {
        let (_dir, path, s) = store_with_gains(3, 100);
        let mut close = gain(30);
        close.doc_type = DocType::PeriodClose;
        close.lines.clear();
        close.ext.period = Some(protocol::document::Period { year: 2026, month: 5 });
        s.post(close).expect("close May");
        let closed = digest(&s);
        drop(s);
        let s = reopen(&path, 100);
        assert_eq!((s.replayed_at_open(), digest(&s)), (0, closed));
    }

    #[test]
    fn a_restart_replays_only_past_the_checkpoint_and_a_bad_checkpoint_costs_only_time() {
        let (_dir, path, s) = store_with_gains(5, 2);
        let five = digest(&s);
        drop(s);

        // Five entries replayed (more than 2): a checkpoint is written at entry 5.
        let s = reopen(&path, 2);
        assert_eq!((s.replayed_at_open(), digest(&s)), (5, five));
        s.post(gain(6)).expect("post");
        s.post(gain(7)).expect("post");
        let seven = digest(&s);
        drop(s);

        // Only the two entries past the checkpoint are replayed, to the same books.
        let s = reopen(&path, 2);
        assert_eq!((s.replayed_at_open(), digest(&s)), (2, seven));
        drop(s);

        // A flipped bit, or a checkpoint of another history: the whole journal is replayed.
        let flip = |f: &dyn Fn(&mut Vec<u8>)| {
            let db = after_drop(|| open_db(&path));
            let tree = db.open_tree(CHECKPOINT_TREE).expect("tree");
            let mut v = tree.get(CHECKPOINT_KEY).expect("read").expect("a checkpoint").to_vec();
            f(&mut v);
            tree.insert(CHECKPOINT_KEY, v).expect("write");
            db.flush().expect("flush");
        };
        flip(&|v| *v.last_mut().expect("bytes") ^= 1);
        let s = reopen(&path, 100);
        assert_eq!((s.replayed_at_open(), digest(&s)), (7, seven));
        drop(s);
        flip(&|v| *v = checkpoint::seal(&Books::default(), 5, EntryHash([9; 32])));
        let s = reopen(&path, 100);
        assert_eq!((s.replayed_at_open(), digest(&s)), (7, seven));
    }

    #[test]
    fn concurrent_posts_share_flushes_are_all_durable_and_numbered_once() {
        const CLIENTS: usize = 8;
        const POSTS: usize = 20;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store");
        create(&path);
        let s = Store::open(&path).expect("open");
        let posted: Vec<Posted> = std::thread::scope(|scope| {
            let s = &s;
            let clients: Vec<_> =
                (0..CLIENTS).map(|_| scope.spawn(move || (0..POSTS).map(|_| s.post(gain(9)).expect("post")).collect::<Vec<_>>())).collect();
            clients.into_iter().flat_map(|c| c.join().expect("client")).collect()
        });
        let total = (CLIENTS * POSTS) as u64;
        let seqs: BTreeSet<u64> = posted.iter().map(|p| p.seq).collect();
        let numbers: BTreeSet<&str> = posted.iter().map(|p| p.number.as_str()).collect();
        assert_eq!(seqs, (1..=total).collect::<BTreeSet<_>>(), "each post got its own seq, none skipped");
        assert_eq!(numbers.len(), posted.len(), "no document number given twice");
        assert_eq!(s.head().seq, total, "every answered post is durable");
        let (flushes, waited) = s.group_commit_stats();
        assert_eq!(waited, total, "every post waited for a flush that covered it");
        assert!(flushes <= waited);
        let before = digest(&s);
        drop(s);
        let s = reopen(&path, 1_000);
        assert_eq!((s.head().seq, digest(&s)), (total, before), "a restart holds every answered post, once");
    }
}
