//! HQ's durable state in sled and its in-memory mirror.
//!
//! Everything lives in one sled tree with key prefixes, so that applying a batch (entry
//! index, the signed batch, the branch's new head, quarantined documents) is one
//! `apply_batch`: atomic, and flushed before the ack is sent. Values are sealed records
//! (format byte + checksum) because sled is treated as untrusted.
//!
//! Key layout (`/` stands for the prefix byte followed by the parts):
//! - `b` branch code                → `BranchRecord`
//! - `e` branch 0x00 seq(be u64)    → `EntryIndex` (which batch holds the entry, its hash)
//! - `x` branch 0x00 first_seq(be)  → piece count; + piece(be u32) → a piece of the sealed
//!   `SignedBatch` as received (body + signature), split below sled's blob threshold
//! - `p` product                    → `Product`
//! - `c` customer                   → credit limit (`Dec`)
//! - `t` secret hash                → `TokenRecord`
//! - `r` branch 0x00 n(be u64)      → `Rejection`
//! - `m` name                       → meta values (`profile_version`)
//!
//! Books are not stored: they are a function of the journals, rebuilt by replay at
//! start (see `Store::replay`) and kept in memory.
//!
//! The in-memory `State` is loaded at start and changed only after the write that backs
//! it is durable: memory never runs ahead of disk.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{bail, Context};
use protocol::batch::{decode_body, SignedBatch};
use protocol::books::{checkpoint, post, Books, Position, PostContext};
use protocol::codes::{BranchCode, ProductCode, WarehouseCode};
use protocol::document::DocType;
use protocol::journal::{ChainHead, EntryHash, JournalEntry, VerifiedEntry};
use protocol::profile::{BranchProfile, Product};
use protocol::record;
use protocol::sync::{BranchView, HqContext};
use protocol::token::{secret_hash, TokenGrant, TOKEN_SECRET_BYTES};
use protocol::wire::RejectCode;
use protocol::VerifyingKey;
use serde::{Deserialize, Serialize};

/// Rejections kept per branch in memory for the status page (all are kept on disk).
pub const REJECTIONS_RECENT_MAX: usize = 50;

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
}

impl EntryIndex {
    fn new(batch_first_seq: u64, seq: u64, hash: EntryHash, quarantined: Option<String>) -> EntryIndex {
        // A batch holds far fewer than 2^32 entries (the frame size bounds it).
        EntryIndex { batch_first_seq, index_in_batch: (seq - batch_first_seq) as u32, hash, quarantined }
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

/// In-memory mirror of the durable state.
#[derive(Default)]
pub struct State {
    pub branches: BTreeMap<BranchCode, BranchRecord>,
    pub products: BTreeMap<ProductCode, Product>,
    pub credit_limits: BTreeMap<protocol::codes::PartyCode, protocol::decimal_serde::Dec>,
    /// Each branch's books, computed by the same posting code the branch ran. Rebuilt at
    /// start by replaying the stored journals; the journals are the truth.
    pub books: BTreeMap<BranchCode, Books>,
    pub profile_version: u64,
    pub recent_rejections: BTreeMap<BranchCode, Vec<Rejection>>,
    pub last_seen_unix: BTreeMap<BranchCode, u64>,
    /// Refusals of connections that never said who they are.
    pub anonymous_rejections: u64,
}

pub struct Store {
    db: sled::Db,
    tree: sled::Tree,
    /// sled's data file, held open to fsync it: sled 0.34's `flush` only waits for
    /// `sync_file_range` (its own fsync runs every 500 ms in the background), which does
    /// not survive a power cut. See `flush`.
    data_file: std::fs::File,
    /// Replaying more entries of a branch than this at start writes a books checkpoint.
    checkpoint_after: u64,
}

fn key(prefix: u8, parts: &[&[u8]]) -> Vec<u8> {
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

fn entry_key(branch: &BranchCode, seq: u64) -> Vec<u8> {
    key(b'e', &[branch.as_str().as_bytes(), &seq.to_be_bytes()])
}

fn batch_key(branch: &BranchCode, first: u64) -> Vec<u8> {
    key(b'x', &[branch.as_str().as_bytes(), &first.to_be_bytes()])
}

/// A long replay at start logs its progress this often (entries).
const REPLAY_PROGRESS_EVERY: u64 = 100_000;

/// Largest piece of a stored signed batch. sled 0.34 writes values above its blob
/// threshold (128 KiB) to separate files that its flush does not fsync, so a batch (often
/// 250 KiB and more) is stored in pieces well below it, all in the same atomic write.
const BATCH_CHUNK_BYTES: usize = 64 * 1024;

fn chunk_key(branch: &BranchCode, first: u64, i: u32) -> Vec<u8> {
    let mut k = batch_key(branch, first);
    k.extend_from_slice(&i.to_be_bytes());
    k
}

/// Adds a signed batch to `batch` as a manifest (piece count) plus pieces.
fn put_signed_batch(batch: &mut sled::Batch, branch: &BranchCode, first: u64, signed: &SignedBatch) {
    let sealed = record::seal(signed);
    let pieces: Vec<&[u8]> = sealed.chunks(BATCH_CHUNK_BYTES).collect();
    batch.insert(batch_key(branch, first), record::seal(&(pieces.len() as u32)));
    for (i, piece) in pieces.iter().enumerate() {
        batch.insert(chunk_key(branch, first, i as u32), *piece);
    }
}

fn show(k: &[u8]) -> String {
    String::from_utf8_lossy(k).replace('\0', "/")
}

fn open_rec<T: serde::de::DeserializeOwned>(k: &[u8], v: &[u8]) -> anyhow::Result<T> {
    Ok(record::open(&show(k), v)?)
}

/// What applying a batch did.
#[derive(Debug, Default)]
pub struct ApplyOutcome {
    pub applied: u64,
    pub quarantined: Vec<(u64, String)>,
}

impl Store {
    pub fn open(path: &Path) -> anyhow::Result<Store> {
        let db = sled::Config::new().path(path).open().map_err(|e| match e {
            sled::Error::Io(ref io) if io.kind() == std::io::ErrorKind::WouldBlock => {
                anyhow::anyhow!("the HQ store at {} is in use by another process (is `hq serve` running?)", path.display())
            }
            e => anyhow::anyhow!("opening HQ store at {}: {e}", path.display()),
        })?;
        let tree = db.open_tree("hq").context("opening HQ tree")?;
        let data_file = std::fs::File::open(path.join("db")).with_context(|| format!("opening sled's data file in {}", path.display()))?;
        Ok(Store { db, tree, data_file, checkpoint_after: checkpoint::CHECKPOINT_AFTER_ENTRIES })
    }

    /// Loads the in-memory state, checking every record.
    pub fn load(&self) -> anyhow::Result<State> {
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
            st.books.insert(*code, books);
        }
        for item in self.tree.scan_prefix([b'c']) {
            let (k, v) = item?;
            let code = protocol::codes::PartyCode::new(String::from_utf8_lossy(&k[1..]))?;
            st.credit_limits.insert(code, open_rec(&k, &v)?);
        }
        if let Some(v) = self.tree.get(key(b'm', &[b"profile_version"]))? {
            st.profile_version = open_rec(b"m/profile_version", &v)?;
        }
        for code in st.branches.keys() {
            let mut recent = Vec::new();
            for item in self.tree.scan_prefix(key(b'r', &[code.as_str().as_bytes(), b""])).rev().take(REJECTIONS_RECENT_MAX) {
                let (k, v) = item?;
                recent.push(open_rec::<Rejection>(&k, &v)?);
            }
            recent.reverse();
            st.recent_rejections.insert(*code, recent);
        }
        Ok(st)
    }

    pub fn flush(&self) -> anyhow::Result<()> {
        self.db.flush().context("flushing HQ store")?;
        // Make it durable for real: the device cache and the file's size, too.
        self.data_file.sync_data().context("fsync of the HQ store")?;
        Ok(())
    }

    fn bump_profile(&self, st: &State, batch: &mut sled::Batch) -> u64 {
        let v = st.profile_version + 1;
        batch.insert(key(b'm', &[b"profile_version"]), record::seal(&v));
        v
    }

    /// Adds a branch and returns the secret of a one-time enrollment token.
    pub fn add_branch(
        &self,
        st: &mut State,
        code: BranchCode,
        name: String,
        warehouses: BTreeSet<WarehouseCode>,
        now_unix: u64,
        ttl_secs: u64,
    ) -> anyhow::Result<[u8; TOKEN_SECRET_BYTES]> {
        if st.branches.contains_key(&code) {
            bail!("branch {code} already exists; use `hq branch token {code}` to issue a new enrollment token");
        }
        if warehouses.is_empty() {
            bail!("branch {code} needs at least one warehouse (--warehouse CODE)");
        }
        for (other, rec) in &st.branches {
            if let Some(w) = rec.warehouses.intersection(&warehouses).next() {
                bail!("warehouse {w} already belongs to branch {other}; each warehouse has one owning branch");
            }
        }
        let rec = BranchRecord {
            code,
            name,
            warehouses,
            key: None,
            head: ChainHead::EMPTY,
            docs_applied: 0,
            docs_quarantined: 0,
            rejections: 0,
            enrolled_at_unix: None,
            last_applied_unix: None,
        };
        let mut batch = sled::Batch::default();
        batch.insert(key(b'b', &[code.as_str().as_bytes()]), record::seal(&rec));
        let secret = self.token_into(&mut batch, &code, now_unix, ttl_secs);
        let version = self.bump_profile(st, &mut batch);
        self.tree.apply_batch(batch)?;
        self.flush()?;
        st.branches.insert(code, rec);
        st.profile_version = version;
        Ok(secret)
    }

    fn token_into(&self, batch: &mut sled::Batch, code: &BranchCode, now_unix: u64, ttl_secs: u64) -> [u8; TOKEN_SECRET_BYTES] {
        let secret: [u8; TOKEN_SECRET_BYTES] = rand::random();
        let tok = TokenRecord { branch: *code, expires_unix: now_unix + ttl_secs, used: false };
        batch.insert(key(b't', &[&secret_hash(&secret)]), record::seal(&tok));
        secret
    }

    /// Issues a fresh token for an existing branch (a reinstalled store).
    pub fn new_token(&self, st: &State, code: &BranchCode, now_unix: u64, ttl_secs: u64) -> anyhow::Result<[u8; TOKEN_SECRET_BYTES]> {
        if !st.branches.contains_key(code) {
            bail!("no branch {code}; add it with `hq branch add {code} --name ... --warehouse ...`");
        }
        let mut batch = sled::Batch::default();
        let secret = self.token_into(&mut batch, code, now_unix, ttl_secs);
        self.tree.apply_batch(batch)?;
        self.flush()?;
        Ok(secret)
    }

    pub fn add_product(&self, st: &mut State, code: ProductCode, product: Product) -> anyhow::Result<()> {
        self.add_products(st, vec![(code, product)]).map(|_| ())
    }

    /// Adds or updates products in one write and one profile version: an import of a
    /// whole catalog is one change for the branches. Returns how many were new.
    pub fn add_products(&self, st: &mut State, products: Vec<(ProductCode, Product)>) -> anyhow::Result<usize> {
        let mut batch = sled::Batch::default();
        for (code, product) in &products {
            batch.insert(key(b'p', &[code.as_str().as_bytes()]), record::seal(product));
        }
        let version = self.bump_profile(st, &mut batch);
        self.tree.apply_batch(batch)?;
        self.flush()?;
        let before = st.products.len();
        st.products.extend(products);
        st.profile_version = version;
        Ok(st.products.len() - before)
    }

    /// Sets (or, with `None`, removes) a customer's credit limit; branches get it with
    /// their next sync and check credit sales against it.
    pub fn set_credit_limit(
        &self,
        st: &mut State,
        customer: protocol::codes::PartyCode,
        limit: Option<protocol::Decimal>,
    ) -> anyhow::Result<()> {
        let mut batch = sled::Batch::default();
        let k = key(b'c', &[customer.as_str().as_bytes()]);
        match limit {
            Some(l) => batch.insert(k, record::seal(&protocol::decimal_serde::Dec(l))),
            None => batch.remove(k),
        }
        let version = self.bump_profile(st, &mut batch);
        self.tree.apply_batch(batch)?;
        self.flush()?;
        match limit {
            Some(l) => st.credit_limits.insert(customer, protocol::decimal_serde::Dec(l)),
            None => st.credit_limits.remove(&customer),
        };
        st.profile_version = version;
        Ok(())
    }

    /// Redeems a token for `branch` with its public key. Refusals carry a reason a
    /// technician can act on.
    pub fn enroll(
        &self,
        st: &mut State,
        branch: &BranchCode,
        secret: &[u8; TOKEN_SECRET_BYTES],
        branch_key: [u8; 32],
        now_unix: u64,
    ) -> Result<BranchProfile, String> {
        let tkey = key(b't', &[&secret_hash(secret)]);
        let tok: TokenRecord = match self.tree.get(&tkey) {
            Ok(Some(v)) => open_rec(&tkey, &v).map_err(|e| e.to_string())?,
            Ok(None) => return Err("unknown enrollment token: ask HQ for a new one (`hq branch token CODE`)".into()),
            Err(e) => return Err(format!("HQ store error: {e}")),
        };
        // Expiry and one-time use are decided in the pure core, with HQ's clock passed in.
        TokenGrant { branch: tok.branch, expires_unix: tok.expires_unix, used: tok.used }
            .redeem(branch, now_unix)
            .map_err(|e| e.to_string())?;
        VerifyingKey::from_bytes(&branch_key).map_err(|_| "branch public key is not a valid ed25519 key".to_string())?;
        let mut rec = st.branches.get(branch).cloned().ok_or("branch was removed at HQ")?;
        rec.key = Some(branch_key);
        rec.enrolled_at_unix = Some(now_unix);
        let mut batch = sled::Batch::default();
        batch.insert(tkey, record::seal(&TokenRecord { used: true, ..tok }));
        batch.insert(key(b'b', &[branch.as_str().as_bytes()]), record::seal(&rec));
        self.tree.apply_batch(batch).map_err(|e| format!("HQ store error: {e}"))?;
        self.flush().map_err(|e| format!("HQ store error: {e}"))?;
        st.branches.insert(*branch, rec);
        Ok(profile_of(st, branch).expect("branch just stored"))
    }

    /// Applies new entries of a verified batch durably, then returns; the caller acks
    /// only after that. Documents the posting rules refuse (scope changed at HQ, unknown
    /// product) are kept, quarantined with their reason, and do not touch the books; the
    /// chain still advances so later documents are not held hostage.
    ///
    /// Two writes, one flush. The batch's contents (entry index, signed batch) are staged
    /// on a second thread while this one posts the documents into the books: on two
    /// cores the posting, which is CPU, and sled's insert, which is CPU too, overlap.
    /// Then one small commit write moves the branch's head (and marks quarantined
    /// entries), then flush and fsync. The head is the truth: an entry above it is staged
    /// but not applied, and every reader (replay, lookups, drill-through) stops at the
    /// head, so a crash between the two writes leaves a staged tail that the branch's
    /// resend simply overwrites.
    // The arguments are the parts of `HqStep::Apply` plus the state and the time; the
    // server calls this with them as they come.
    #[allow(clippy::too_many_arguments)]
    pub fn apply(
        &self,
        st: &mut State,
        branch: &BranchCode,
        entries: Vec<VerifiedEntry>,
        new_head: ChainHead,
        signed: &SignedBatch,
        first_in_batch: u64,
        now_unix: u64,
    ) -> anyhow::Result<ApplyOutcome> {
        let profile = posting_profile(st, branch, &entries).context("branch vanished during apply")?;
        let mut rec = st.branches.get(branch).cloned().context("branch vanished during apply")?;
        // Post straight into the branch's books; if a write below fails they are rebuilt
        // from disk, so memory never keeps what disk does not have. Books missing from
        // memory (a rebuild that failed earlier) are rebuilt now, never started empty.
        let mut books = match st.books.remove(branch) {
            Some(b) => b,
            None => self.replay(branch).context("rebuilding the branch's books from its journal")?,
        };
        let index: Vec<(u64, EntryHash)> = entries.iter().map(|e| (e.entry.seq, e.hash)).collect();
        let mut outcome = ApplyOutcome::default();
        // The commit write: quarantine marks (overwriting their staged index records, as
        // sled applies writes in order), then the branch record with the new head.
        let mut commit = sled::Batch::default();
        let mut closes = false;
        let staged = std::thread::scope(|scope| {
            let stage = scope.spawn(|| self.stage(branch, &index, first_in_batch, signed));
            // Entries come by value: each document moves into the books' reversal window
            // instead of being cloned there.
            for e in entries {
                match post(&books, &e.entry.doc, PostContext { profile: Some(&profile) }) {
                    Ok(p) => {
                        closes |= e.entry.doc.header.doc_type == DocType::PeriodClose;
                        books.apply_owned(e.entry.doc, p);
                        outcome.applied += 1;
                    }
                    Err(err) => {
                        let why = err.to_string();
                        let idx = EntryIndex::new(first_in_batch, e.entry.seq, e.hash, Some(why.clone()));
                        commit.insert(entry_key(branch, e.entry.seq), record::seal(&idx));
                        outcome.quarantined.push((e.entry.seq, why));
                    }
                }
            }
            stage.join().unwrap_or_else(|_| Err(anyhow::anyhow!("the thread staging the batch panicked")))
        });
        rec.head = new_head;
        rec.docs_applied += outcome.applied;
        rec.docs_quarantined += outcome.quarantined.len() as u64;
        rec.last_applied_unix = Some(now_unix);
        commit.insert(key(b'b', &[branch.as_str().as_bytes()]), record::seal(&rec));
        let written =
            staged.and_then(|()| self.tree.apply_batch(commit).context("writing batch head to HQ store")).and_then(|()| self.flush());
        if let Err(e) = written {
            match self.replay(branch) {
                Ok(rebuilt) => {
                    st.books.insert(*branch, rebuilt);
                }
                // Left out of memory: the next batch of this branch tries the rebuild again.
                Err(r) => tracing::error!(branch = %branch, error = %format!("{r:#}"), "rebuilding books after a failed write"),
            }
            return Err(e);
        }
        // Durable: now memory may follow.
        if closes {
            // After a month close the books are at their smallest; a checkpoint now spares
            // the next start this month's replay. Only a cache: a failure is logged.
            if let Err(e) = self.write_checkpoint(branch, &books, new_head) {
                tracing::warn!(branch = %branch, error = %format!("{e:#}"), "writing the books checkpoint after a month close");
            }
        }
        st.books.insert(*branch, books);
        st.branches.insert(*branch, rec);
        Ok(outcome)
    }

    /// Writes a batch's entry index and the signed batch, above the branch's head: staged,
    /// not yet applied (see [`Store::apply`]).
    fn stage(&self, branch: &BranchCode, index: &[(u64, EntryHash)], first_in_batch: u64, signed: &SignedBatch) -> anyhow::Result<()> {
        let mut batch = sled::Batch::default();
        for &(seq, hash) in index {
            batch.insert(entry_key(branch, seq), record::seal(&EntryIndex::new(first_in_batch, seq, hash, None)));
        }
        put_signed_batch(&mut batch, branch, first_in_batch, signed);
        self.tree.apply_batch(batch).context("staging batch in HQ store")
    }

    /// The head of `branch` as it is on disk: entries above it are staged, not applied.
    fn durable_head(&self, branch: &BranchCode) -> anyhow::Result<u64> {
        let k = key(b'b', &[branch.as_str().as_bytes()]);
        match self.tree.get(&k)? {
            Some(v) => Ok(open_rec::<BranchRecord>(&k, &v)?.head.seq),
            None => Ok(0),
        }
    }

    /// The entry index records of `branch` from `from` up to `head`, in order.
    fn applied_entries(&self, branch: &BranchCode, from: u64, head: u64) -> sled::Iter {
        self.tree.range(entry_key(branch, from)..entry_key(branch, head.saturating_add(1)))
    }

    /// Rebuilds a branch's books by replaying its stored journal in order, from its
    /// checkpoint if one fits, skipping the quarantined entries. Every entry is checked
    /// against its stored hash, and every applied entry must post again: if one does
    /// not, the store is damaged.
    pub fn replay(&self, branch: &BranchCode) -> anyhow::Result<Books> {
        self.replay_counted(branch).map(|(books, _)| books)
    }

    /// [`Store::replay`], also saying how many entries it replayed past the checkpoint.
    fn replay_counted(&self, branch: &BranchCode) -> anyhow::Result<(Books, u64)> {
        let head = self.durable_head(branch)?;
        let (mut books, from) = match self.checkpoint(branch, head) {
            Ok(Some(cp)) => (cp.books, cp.seq + 1),
            Ok(None) => (Books::default(), 1),
            Err(why) => {
                tracing::warn!(branch = %branch, reason = %why, "ignoring the books checkpoint; replaying the whole journal");
                (Books::default(), 1)
            }
        };
        let mut cached: Option<(u64, protocol::batch::BatchBody)> = None;
        for item in self.applied_entries(branch, from, head) {
            let (k, v) = item?;
            let idx: EntryIndex = open_rec(&k, &v)?;
            if idx.quarantined.is_some() {
                continue;
            }
            if cached.as_ref().is_none_or(|(first, _)| *first != idx.batch_first_seq) {
                let signed =
                    self.signed_batch(branch, idx.batch_first_seq).with_context(|| format!("reading the batch of {}", show(&k)))?;
                cached = Some((idx.batch_first_seq, decode_body(&signed.body)?));
            }
            let body = &cached.as_ref().expect("just filled").1;
            let bytes = body.entries.get(idx.index_in_batch as usize).with_context(|| format!("{} indexes outside its batch", show(&k)))?;
            if EntryHash::of(bytes) != idx.hash {
                bail!("{} does not match its stored hash: the HQ store is damaged", show(&k));
            }
            let entry = JournalEntry::decode(bytes)?;
            if entry.seq % REPLAY_PROGRESS_EVERY == 0 {
                tracing::info!(branch = %branch, at = entry.seq, of = head, "replaying the journal");
            }
            let p = post(&books, &entry.doc, PostContext::default())
                .with_context(|| format!("entry {} of {branch} no longer posts on replay: the HQ store is damaged", entry.seq))?;
            books.apply_owned(entry.doc, p);
        }
        Ok((books, (head + 1).saturating_sub(from)))
    }

    /// The branch's books checkpoint, if it has one that fits its journal up to `head`.
    fn checkpoint(&self, branch: &BranchCode, head: u64) -> Result<Option<checkpoint::Checkpoint>, String> {
        let k = key(b's', &[branch.as_str().as_bytes()]);
        let Some(v) = self.tree.get(&k).map_err(|e| e.to_string())? else { return Ok(None) };
        let held = |seq| self.entry_index(branch, seq).ok().flatten().map(|i| i.hash);
        checkpoint::open(&show(&k), &v, head, held).map(Some)
    }

    /// Writes a checkpoint of `books`, which hold the branch's journal up to `head`. A
    /// cache: if the write is lost, the next start replays more, so no fsync.
    fn write_checkpoint(&self, branch: &BranchCode, books: &Books, head: ChainHead) -> anyhow::Result<()> {
        self.tree.insert(key(b's', &[branch.as_str().as_bytes()]), checkpoint::seal(books, head.seq, head.hash))?;
        self.db.flush()?;
        Ok(())
    }

    /// Stored, applied documents of a branch that `keep` accepts, oldest first, at most
    /// `limit`: the drill-through from a report row to the original documents.
    pub fn find_documents(
        &self,
        branch: &BranchCode,
        keep: impl Fn(&JournalEntry) -> bool,
        limit: usize,
    ) -> anyhow::Result<Vec<JournalEntry>> {
        let mut out = Vec::new();
        let mut cached: Option<(u64, protocol::batch::BatchBody)> = None;
        for item in self.applied_entries(branch, 1, self.durable_head(branch)?) {
            let (k, v) = item?;
            let idx: EntryIndex = open_rec(&k, &v)?;
            if cached.as_ref().is_none_or(|(first, _)| *first != idx.batch_first_seq) {
                let signed =
                    self.signed_batch(branch, idx.batch_first_seq).with_context(|| format!("reading the batch of {}", show(&k)))?;
                cached = Some((idx.batch_first_seq, decode_body(&signed.body)?));
            }
            let body = &cached.as_ref().expect("just filled").1;
            let bytes = body.entries.get(idx.index_in_batch as usize).with_context(|| format!("{} indexes outside its batch", show(&k)))?;
            let entry = JournalEntry::decode(bytes)?;
            if keep(&entry) {
                out.push(entry);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// All branches' books added together, for consolidated reports.
    pub fn consolidated(st: &State) -> Books {
        let mut all = Books::default();
        for b in st.books.values() {
            all.absorb(b);
        }
        all
    }

    /// Keeps a refusal on disk and in the recent list, and counts it for the branch.
    pub fn record_rejection(&self, st: &mut State, branch: Option<&BranchCode>, rej: Rejection) -> anyhow::Result<()> {
        let Some(code) = branch.filter(|c| st.branches.contains_key(*c)) else {
            st.anonymous_rejections += 1;
            return Ok(());
        };
        let mut rec = st.branches.get(code).cloned().expect("checked above");
        rec.rejections += 1;
        let mut batch = sled::Batch::default();
        batch.insert(key(b'r', &[code.as_str().as_bytes(), &rec.rejections.to_be_bytes()]), record::seal(&rej));
        batch.insert(key(b'b', &[code.as_str().as_bytes()]), record::seal(&rec));
        self.tree.apply_batch(batch)?;
        self.flush()?;
        st.branches.insert(*code, rec);
        let recent = st.recent_rejections.entry(*code).or_default();
        recent.push(rej);
        if recent.len() > REJECTIONS_RECENT_MAX {
            recent.remove(0);
        }
        Ok(())
    }

    pub fn entry_index(&self, branch: &BranchCode, seq: u64) -> anyhow::Result<Option<EntryIndex>> {
        let k = entry_key(branch, seq);
        match self.tree.get(&k)? {
            Some(v) => Ok(Some(open_rec(&k, &v)?)),
            None => Ok(None),
        }
    }

    /// A stored signed batch, reassembled from its pieces and checked.
    pub fn signed_batch(&self, branch: &BranchCode, first: u64) -> anyhow::Result<SignedBatch> {
        let mk = batch_key(branch, first);
        let mv = self.tree.get(&mk)?.with_context(|| format!("missing batch {}", show(&mk)))?;
        let pieces: u32 = open_rec(&mk, &mv)?;
        let mut sealed = Vec::new();
        for i in 0..pieces {
            let ck = chunk_key(branch, first, i);
            let piece = self.tree.get(&ck)?.with_context(|| format!("missing piece {i} of batch {}", show(&mk)))?;
            sealed.extend_from_slice(&piece);
        }
        open_rec(&mk, &sealed)
    }

    /// An accepted document with its index, batch signature status and stored entry.
    pub fn document(&self, st: &State, branch: &BranchCode, seq: u64) -> anyhow::Result<Option<(EntryIndex, JournalEntry, bool)>> {
        if st.branches.get(branch).is_none_or(|r| seq > r.head.seq) {
            return Ok(None);
        }
        let Some(idx) = self.entry_index(branch, seq)? else { return Ok(None) };
        let signed =
            self.signed_batch(branch, idx.batch_first_seq).with_context(|| format!("reading the batch of entry {seq} of {branch}"))?;
        let signature_ok = st
            .branches
            .get(branch)
            .and_then(|r| r.key)
            .and_then(|kb| VerifyingKey::from_bytes(&kb).ok())
            .is_some_and(|vk| signed.signature_ok(&vk));
        let body = decode_body(&signed.body)?;
        let bytes = body.entries.get(idx.index_in_batch as usize).with_context(|| format!("entry {seq} index outside its batch"))?;
        if EntryHash::of(bytes) != idx.hash {
            bail!("entry {seq} of {branch} does not match its stored hash: the store is corrupt");
        }
        Ok(Some((idx, JournalEntry::decode(bytes)?, signature_ok)))
    }

    pub fn rejections(&self, branch: &BranchCode, limit: usize) -> anyhow::Result<Vec<Rejection>> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(key(b'r', &[branch.as_str().as_bytes(), b""])).rev().take(limit) {
            let (k, v) = item?;
            out.push(open_rec(&k, &v)?);
        }
        Ok(out)
    }
}

/// The profile HQ sends a branch: its scope plus the whole catalog.
pub fn profile_of(st: &State, branch: &BranchCode) -> Option<BranchProfile> {
    let rec = st.branches.get(branch)?;
    Some(BranchProfile {
        branch: rec.code,
        name: rec.name.clone(),
        warehouses: rec.warehouses.clone(),
        products: st.products.clone(),
        credit_limits: st.credit_limits.clone(),
        version: st.profile_version,
    })
}

/// The profile posting checks a batch against: the branch's scope and the part of the
/// catalog its documents name. Posting only asks whether each line's product is in the
/// catalog, so this answers exactly as the whole catalog would, without cloning every
/// product (a name, a unit, a price list each) for every batch.
fn posting_profile(st: &State, branch: &BranchCode, entries: &[VerifiedEntry]) -> Option<BranchProfile> {
    let rec = st.branches.get(branch)?;
    let mut products = BTreeMap::new();
    for line in entries.iter().flat_map(|e| &e.entry.doc.lines) {
        if let std::collections::btree_map::Entry::Vacant(e) = products.entry(line.product) {
            if let Some(p) = st.products.get(&line.product) {
                e.insert(p.clone());
            }
        }
    }
    Some(BranchProfile {
        branch: rec.code,
        name: rec.name.clone(),
        warehouses: rec.warehouses.clone(),
        products,
        credit_limits: st.credit_limits.clone(),
        version: st.profile_version,
    })
}

/// The view the sync session needs, over memory plus the entry index on disk.
pub struct Ctx<'a> {
    pub st: &'a State,
    pub store: &'a Store,
}

impl HqContext for Ctx<'_> {
    fn branch(&self, code: &BranchCode) -> Option<BranchView> {
        let rec = self.st.branches.get(code)?;
        let key = VerifyingKey::from_bytes(&rec.key?).ok()?;
        Some(BranchView { key, head: rec.head, profile_version: self.st.profile_version })
    }

    fn profile(&self, code: &BranchCode) -> Option<BranchProfile> {
        profile_of(self.st, code)
    }

    fn held_hash(&self, code: &BranchCode, seq: u64) -> Option<EntryHash> {
        // Above the head an entry may be staged by an apply that never committed.
        if self.st.branches.get(code).is_none_or(|r| seq > r.head.seq) {
            return None;
        }
        match self.store.entry_index(code, seq) {
            Ok(idx) => idx.map(|i| i.hash),
            Err(e) => {
                tracing::error!(branch = %code, seq, error = %e, "reading entry index");
                None
            }
        }
    }
}

/// Consolidated position lookups for reports.
pub fn position(st: &State, w: &WarehouseCode, p: &ProductCode) -> Position {
    st.books.values().map(|b| b.position(&(*w, *p))).find(|p| !p.is_zero()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::document::DocType;
    use protocol::testkit::{sample_doc_lines, test_key};
    use protocol::Decimal;

    /// A store with branch `SH` (warehouse `SH01`) and a catalog of `P0000` plus `extra`
    /// other products.
    fn setup(dir: &Path, extra: usize) -> (Store, State, BranchCode) {
        let store = Store::open(&dir.join("hq")).expect("open");
        let mut st = store.load().expect("load");
        let sh = BranchCode::new("SH").expect("code");
        let product = |code: String| {
            (
                ProductCode::new(code).expect("product code"),
                Product { name: "p".into(), unit: String::new(), retail_price: None, prices: Vec::new() },
            )
        };
        for (code, p) in std::iter::once(product("P0000".into())).chain((0..extra).map(|i| product(format!("X{i:04}")))) {
            store.add_product(&mut st, code, p).expect("add product");
        }
        let warehouses = BTreeSet::from([WarehouseCode::new("SH01").expect("warehouse")]);
        store.add_branch(&mut st, sh, "Shanghai".into(), warehouses, 0, 60).expect("add branch");
        (store, st, sh)
    }

    /// Opens the store a test dropped a moment ago. sled's background threads let go of
    /// its file lock shortly after the `Db` is dropped, not at once, so a reopen retries
    /// for a while (a restarted HQ process never meets this: exit releases the lock).
    fn reopen(dir: &Path, what: &str) -> Store {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match Store::open(&dir.join("hq")) {
                Ok(store) => return store,
                Err(e) if std::time::Instant::now() < deadline && is_lock_error(&e) => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => panic!("{what}: {e:#}"),
            }
        }
    }

    fn is_lock_error(e: &anyhow::Error) -> bool {
        let text = format!("{e:#}");
        text.contains("lock") || text.contains("in use")
    }

    /// The next batch after `head`: its verified entries, new head and signature.
    fn batch_of(docs: Vec<protocol::document::Document>, mut head: ChainHead) -> (Vec<VerifiedEntry>, ChainHead, SignedBatch) {
        let mut entries = Vec::new();
        for doc in docs {
            let (entry, bytes, next) = head.append(doc);
            entries.push(VerifiedEntry { entry, hash: next.hash, bytes });
            head = next;
        }
        let sh = BranchCode::new("SH").expect("code");
        let signed = SignedBatch::sign(&sh, entries.iter().map(|e| e.bytes.clone()).collect(), &test_key(1));
        (entries, head, signed)
    }

    fn p0000(st: &State) -> Position {
        position(st, &WarehouseCode::new("SH01").expect("warehouse"), &ProductCode::new("P0000").expect("product"))
    }

    /// Applies three documents (one good, one naming a product HQ does not sell, one for a
    /// warehouse outside the branch's scope) with a catalog of `extra + 1` products.
    fn apply_mixed(extra: usize) -> (ApplyOutcome, Position) {
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, mut st, sh) = setup(dir.path(), extra);
        let (entries, head, signed) = batch_of(
            vec![
                sample_doc_lines("SH", "SH01", DocType::StockGain, 1, 1),
                sample_doc_lines("SH", "SH01", DocType::StockGain, 2, 2),
                sample_doc_lines("SH", "HB01", DocType::StockGain, 3, 1),
            ],
            ChainHead::EMPTY,
        );
        let outcome = store.apply(&mut st, &sh, entries, head, &signed, 1, 0).expect("apply");
        // The quarantine verdicts are durable: a restarted HQ rebuilds the same books.
        drop(store);
        let store = reopen(dir.path(), "reopen");
        let again = store.load().expect("reload");
        assert_eq!(again.branches[&sh].docs_quarantined, outcome.quarantined.len() as u64);
        assert_eq!(p0000(&again), p0000(&st));
        (outcome, p0000(&st))
    }

    #[test]
    fn a_batch_staged_but_never_committed_is_not_applied_and_its_resend_applies_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, mut st, sh) = setup(dir.path(), 0);
        let gain = |serial| sample_doc_lines("SH", "SH01", DocType::StockGain, serial, 1);
        let (entries, head, signed) = batch_of(vec![gain(1), gain(2)], ChainHead::EMPTY);
        store.apply(&mut st, &sh, entries, head, &signed, 1, 0).expect("first batch");
        let applied = p0000(&st);
        // HQ dies after staging the second batch and before its commit write.
        let (entries, head2, signed2) = batch_of(vec![gain(3), gain(4)], head);
        let index: Vec<(u64, EntryHash)> = entries.iter().map(|e| (e.entry.seq, e.hash)).collect();
        store.stage(&sh, &index, 3, &signed2).expect("stage");
        store.flush().expect("flush");
        drop((store, st));

        let store = reopen(dir.path(), "reopen");
        let mut st = store.load().expect("reload");
        assert_eq!(st.branches[&sh].head, head, "the head stays where the last commit left it");
        assert_eq!(p0000(&st), applied, "the staged tail is not in the books");
        assert!(store.document(&st, &sh, 3).expect("lookup").is_none(), "a staged entry is not an accepted document");
        assert!(Ctx { st: &st, store: &store }.held_hash(&sh, 3).is_none());
        assert_eq!(store.find_documents(&sh, |_| true, 10).expect("find").len(), 2);

        // The branch resends; HQ applies it exactly once over the staged copy.
        let outcome = store.apply(&mut st, &sh, entries, head2, &signed2, 3, 0).expect("resend");
        assert_eq!(outcome.applied, 2);
        assert_eq!(p0000(&st).qty, applied.qty * Decimal::TWO);
        let digest = st.books[&sh].digest();
        drop(store);
        let store = reopen(dir.path(), "reopen again");
        let st = store.load().expect("reload again");
        assert_eq!(st.books[&sh].digest(), digest, "replay gives the books memory had");
        assert!(store.document(&st, &sh, 4).expect("lookup").is_some());
    }

    #[test]
    fn a_restart_replays_only_past_the_checkpoint_and_ignores_one_of_another_history() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, mut st, sh) = setup(dir.path(), 0);
        let gain = |serial| sample_doc_lines("SH", "SH01", DocType::StockGain, serial, 1);
        let (entries, head, signed) = batch_of((1..=4).map(gain).collect(), ChainHead::EMPTY);
        store.apply(&mut st, &sh, entries, head, &signed, 1, 0).expect("first batch");
        drop((store, st));

        // Four entries replayed at start (more than 2): a checkpoint is written at entry 4.
        let mut store = reopen(dir.path(), "reopen");
        store.checkpoint_after = 2;
        let mut st = store.load().expect("reload");
        assert_eq!(store.replay_counted(&sh).expect("replay").1, 0, "all of it is in the checkpoint");
        let (entries, head2, signed) = batch_of((5..=6).map(gain).collect(), head);
        store.apply(&mut st, &sh, entries, head2, &signed, 5, 0).expect("second batch");
        let (books, replayed) = store.replay_counted(&sh).expect("replay");
        assert_eq!((replayed, books.digest()), (2, st.books[&sh].digest()));

        store.tree.insert(key(b's', &[b"SH"]), checkpoint::seal(&Books::default(), 4, EntryHash([9; 32]))).expect("write");
        let (books, replayed) = store.replay_counted(&sh).expect("replay");
        assert_eq!((replayed, books.digest()), (6, st.books[&sh].digest()));
    }

    #[test]
    fn a_month_close_leaves_a_checkpoint_so_the_next_start_replays_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, mut st, sh) = setup(dir.path(), 0);
        let gain = sample_doc_lines("SH", "SH01", DocType::StockGain, 1, 1);
        let close = protocol::document::Draft {
            doc_type: DocType::PeriodClose,
            date: gain.header.date,
            operator: gain.header.operator,
            warehouse: gain.header.warehouse,
            counterparty: None,
            memo: String::new(),
            payment: None,
            lines: Vec::new(),
            ext: protocol::document::DocExt { period: Some(protocol::document::Period { year: 2026, month: 5 }), ..Default::default() },
        }
        .number(sh, 1)
        .expect("a valid close");
        let docs =
            vec![sample_doc_lines("SH", "SH01", DocType::StockGain, 1, 1), sample_doc_lines("SH", "SH01", DocType::StockGain, 2, 1), close];
        let (entries, head, signed) = batch_of(docs, ChainHead::EMPTY);
        let outcome = store.apply(&mut st, &sh, entries, head, &signed, 1, 0).expect("apply");
        assert_eq!(outcome.applied, 3, "{:?}", outcome.quarantined);
        let (books, replayed) = store.replay_counted(&sh).expect("replay");
        assert_eq!((replayed, books.digest()), (0, st.books[&sh].digest()));
    }

    #[test]
    fn catalog_and_scope_checks_do_not_depend_on_catalog_size() {
        // Posting sees only the products the batch names: the verdicts must be those of
        // the whole catalog, small or large.
        for extra in [0, 50] {
            let (outcome, pos) = apply_mixed(extra);
            assert_eq!(outcome.applied, 1, "catalog of {}", extra + 1);
            let seqs: Vec<u64> = outcome.quarantined.iter().map(|(seq, _)| *seq).collect();
            assert_eq!(seqs, [2, 3]);
            assert!(outcome.quarantined[0].1.contains("P0001"), "{:?}", outcome.quarantined);
            assert!(outcome.quarantined[1].1.contains("HB01"), "{:?}", outcome.quarantined);
            assert_eq!(pos.qty, Decimal::ONE);
        }
    }
}
