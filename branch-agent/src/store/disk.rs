//! Opening the branch store: the key layout, sled's files (which we fsync ourselves),
//! the books checkpoint's own tree, and the replay that rebuilds the books from the
//! journal at open (from a checkpoint when one fits). Must not post or number documents:
//! that is `post`; a damaged store is refused here, never repaired.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use protocol::books::{checkpoint, post, Books, PostContext};
use protocol::journal::{ChainHead, EntryHash, JournalEntry};
use protocol::profile::BranchProfile;
use protocol::record;

use super::{Dates, Identity, Live, Store};

pub(super) fn meta(name: &str) -> Vec<u8> {
    let mut k = vec![b'm'];
    k.extend_from_slice(name.as_bytes());
    k
}

pub(super) fn journal_key(seq: u64) -> [u8; 9] {
    let mut k = [b'j'; 9];
    k[1..].copy_from_slice(&seq.to_be_bytes());
    k
}

pub(super) fn shift_key(id: u64) -> [u8; 9] {
    let mut k = [b'h'; 9];
    k[1..].copy_from_slice(&id.to_be_bytes());
    k
}

pub(super) fn show(k: &[u8]) -> String {
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
pub(super) const CHECKPOINT_TREE: &str = "checkpoint";
pub(super) const CHECKPOINT_KEY: &[u8] = b"books";

/// Writes the books checkpoint into its own tree (dropping one a store from before kept
/// beside the meta records). Not flushed: a cache.
pub(super) fn write_checkpoint(db: &sled::Db, tree: &sled::Tree, books: &Books, head: ChainHead) -> sled::Result<()> {
    db.open_tree(CHECKPOINT_TREE)?.insert(CHECKPOINT_KEY, checkpoint::seal(books, head.seq, head.hash))?;
    tree.remove(meta("checkpoint"))?;
    Ok(())
}

pub(super) fn data_file(path: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::File::open(path.join("db")).with_context(|| format!("opening sled's data file in {}", path.display()))
}

impl Store {
    /// Flushes sled and fsyncs its data file: after this, the writes survive a power cut.
    pub(super) fn flush(&self) -> anyhow::Result<()> {
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
    pub(super) fn sync_blobs(&self) -> anyhow::Result<()> {
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
            posted: Default::default(),
            #[cfg(test)]
            fail_next_flush: std::sync::atomic::AtomicBool::new(false),
            dates: Mutex::new(Dates::default()),
        })
    }
}
