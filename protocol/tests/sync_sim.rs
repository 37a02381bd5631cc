//! Deterministic simulation of branches syncing their journals into one HQ, in memory.
//!
//! Shaped like quinn-proto's tests: both ends are the real sans-IO state machines
//! (`BranchSync`, `HqSession`), bytes cross a simulated link as real frames
//! (`Message::to_frame` in, `FrameDecoder` out, delivered in chunks of arbitrary size),
//! there is no clock but a step counter, and every loop is bounded. Shaped like
//! TigerBeetle's simulator: all randomness comes from one seed, so a failing run is
//! replayed exactly with `SIM_SEED=<seed>` (add `SIM_TRACE=1` to print every event).
//!
//! Two link models:
//! - `Model::Stream` is a QUIC stream: within one connection bytes arrive in order and are
//!   never lost or duplicated. Faults are connections dropping at random points (bytes in
//!   flight are lost), HQ crashing before or after its durable write (ack lost), branch
//!   agents restarting from their persisted state, and an attacker replaying captured
//!   hello and batch frames on a connection of its own. Any refusal, gap or protocol error
//!   on an honest connection is a failure here.
//! - `Model::Hostile` also drops, duplicates and reorders whole frames within a
//!   connection. That is outside what QUIC lets happen; it shows the exchange still
//!   converges when the branch reconnects on a stall timer, and never loses or doubles an
//!   entry on the way. The one refusal allowed there is `BranchBehind` for a duplicated
//!   hello that arrives after HQ has moved past the head it claims.
//!
//! After the faulty phase the link heals and the system runs to quiescence; then every
//! branch entry must be stored at HQ exactly once, heads must agree and HQ's books of a
//! branch must have the branch's own digest.
//!
//! Cost note: HQ's ed25519 check of every batch dominates a run. It takes ~35 µs with
//! dependencies optimised (the workspace's `[profile.dev.package."*"]`) but ~7 ms fully
//! unoptimised, which would make the default seed counts take minutes.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};

use protocol::batch::{decode_body, BatchBuilder, SignedBatch};
use protocol::books::{post, Books, PostContext};
use protocol::codes::{BranchCode, OperatorId, PartyCode, ProductCode, WarehouseCode};
use protocol::date::BusinessDate;
use protocol::document::{DocType, Document, Draft, Line};
use protocol::error::PostError;
use protocol::journal::{ChainHead, EntryHash, JournalEntry, VerifiedEntry};
use protocol::profile::{BranchProfile, Product};
use protocol::sync::{
    Backoff, BranchEvent, BranchState, BranchSync, BranchTimeout, BranchView, HqContext, HqFacts, HqSession, HqStep, SyncError, SyncLimits,
    SyncTimers,
};
use protocol::testkit::test_key;
use protocol::token::{TokenGrant, TokenRefusal};
use protocol::wire::{FrameDecoder, Message, RejectCode, FRAME_HEADER_BYTES};
use protocol::{Decimal, SigningKey, VerifyingKey};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

// ---------------------------------------------------------------------------------------
// Bounds of a run.

/// Random steps per seed before the link heals.
const STEPS_MAX: u64 = 200;
/// Delivery rounds allowed to reach quiescence after healing.
const QUIESCE_ROUNDS_MAX: usize = 200;
/// Stall-timer reconnects allowed while healing (hostile model only).
const HEAL_STALL_RECONNECTS_MAX: usize = 50;
/// Steps a branch waits for HQ before its stall timer reconnects (hostile model only).
const STALL_STEPS: u64 = 12;
/// Captured frames the attacker keeps.
const CAPTURED_FRAMES_MAX: usize = 24;
/// Events kept for the failure report.
const TRACE_EVENTS_MAX: usize = 60;
/// Default seeds per random test; `SIM_SEEDS` runs more.
const STREAM_SEEDS_DEFAULT: u64 = 200;
const HOSTILE_SEEDS_DEFAULT: u64 = 100;

const PRODUCTS: [&str; 4] = ["6901234567892", "A-100", "B.200", "KG_RICE"];
const MEMOS: [&str; 4] = ["", "门店日常", "weekly restock", "盘点 2026"];

struct BranchSpec {
    code: &'static str,
    warehouse: &'static str,
    key: u8,
}

/// Two branches with their own warehouses, syncing into one HQ.
const BRANCHES: [BranchSpec; 2] =
    [BranchSpec { code: "SH", warehouse: "SH01", key: 1 }, BranchSpec { code: "HB", warehouse: "HB01", key: 2 }];

fn branch_code(s: &str) -> BranchCode {
    BranchCode::new(s).expect("test branch code is valid")
}
fn warehouse(s: &str) -> WarehouseCode {
    WarehouseCode::new(s).expect("test warehouse code is valid")
}
fn product(s: &str) -> ProductCode {
    ProductCode::new(s).expect("test product code is valid")
}

fn profile_for(spec: &BranchSpec) -> BranchProfile {
    BranchProfile {
        branch: branch_code(spec.code),
        name: format!("branch {}", spec.code),
        warehouses: BTreeSet::from([warehouse(spec.warehouse)]),
        products: PRODUCTS
            .iter()
            .map(|p| {
                (
                    product(p),
                    Product { name: format!("product {p}"), unit: "pcs".into(), retail_price: None, prices: Vec::new(), category: None },
                )
            })
            .collect(),
        credit_limits: Default::default(),
        overdrafts: Default::default(),
        version: 1,
        people: Vec::new(),
        approvals: Default::default(),
        scope: None,
        parties: Default::default(),
    }
}

/// Encodes `m` as a frame and reads it back through a fresh decoder.
fn via_wire(m: &Message) -> Message {
    let mut dec = FrameDecoder::default();
    dec.push(&m.to_frame());
    let back = dec.next_message().expect("own frame decodes").expect("a whole frame was pushed");
    assert_eq!(dec.pending_bytes(), 0, "one frame, one message");
    back
}

/// Cuts a byte stream of whole frames into frames.
fn split_frames(mut buf: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while buf.len() >= FRAME_HEADER_BYTES {
        let mut header = [0u8; FRAME_HEADER_BYTES];
        header.copy_from_slice(&buf[..FRAME_HEADER_BYTES]);
        let len = FRAME_HEADER_BYTES + u32::from_be_bytes(header) as usize;
        assert!(buf.len() >= len, "stream ends inside a frame");
        out.push(buf[..len].to_vec());
        buf = &buf[len..];
    }
    assert!(buf.is_empty(), "stream ends inside a frame header");
    out
}

fn describe(m: &Message) -> String {
    match m {
        Message::Hello { branch, head, .. } => format!("hello {branch} head {}", head.seq),
        Message::Resume { applied, profile } => format!("resume applied {} profile {}", applied.seq, profile.is_some()),
        Message::Batch(b) => match decode_body(&b.body) {
            Ok(body) => {
                let seq = |bytes: &Vec<u8>| JournalEntry::decode(bytes).map(|e| e.seq).unwrap_or(0);
                let first = body.entries.first().map(seq).unwrap_or(0);
                let last = body.entries.last().map(seq).unwrap_or(0);
                format!("batch {} {first}..={last}", body.branch)
            }
            Err(e) => format!("batch (undecodable: {e})"),
        },
        Message::Ack { applied } => format!("ack {applied}"),
        Message::ResendFrom { from } => format!("resend from {from}"),
        Message::Reject { code, text } => format!("reject {code:?}: {text}"),
        Message::Enroll { .. } => "enroll".into(),
        Message::Profile { profile } => format!("profile v{}", profile.version),
        Message::Enrolled { .. } => "enrolled".into(),
        Message::Down(b) => format!("down ({} bytes)", b.len()),
        Message::DownAck { seq } => format!("down ack {seq}"),
        Message::Draft(b) => format!("draft ({} bytes)", b.len()),
        Message::DraftAck { id } => format!("draft ack {id}"),
    }
}

// ---------------------------------------------------------------------------------------
// HQ: durable per-branch state and each branch's books.

struct HqBranch {
    key: VerifyingKey,
    head: ChainHead,
    profile: BranchProfile,
    /// Entry bytes by seq: what HQ stored durably.
    stored: BTreeMap<u64, Vec<u8>>,
}

#[derive(Default)]
struct Hq {
    branches: BTreeMap<BranchCode, HqBranch>,
    /// One set of books per branch, as the real HQ keeps them: derived from `stored`.
    books: BTreeMap<BranchCode, Books>,
}

/// What "nothing changed at HQ" compares: per branch, head, entries held, books digest.
type Snapshot = Vec<(BranchCode, ChainHead, usize, [u8; 32])>;

impl HqContext for Hq {
    fn branch(&self, code: &BranchCode) -> Option<BranchView> {
        self.branches.get(code).map(|b| BranchView { key: b.key, head: b.head, profile_version: b.profile.version })
    }
    fn profile(&self, code: &BranchCode) -> Option<BranchProfile> {
        self.branches.get(code).map(|b| b.profile.clone())
    }
    fn held_hash(&self, code: &BranchCode, seq: u64) -> Option<EntryHash> {
        self.branches.get(code)?.stored.get(&seq).map(|bytes| EntryHash::of(bytes))
    }
}

/// One HQ step as the real HQ takes it: fetch what the message needs, then decide.
fn hq_step(session: &mut HqSession, msg: Message, hq: &Hq) -> HqStep {
    let facts = HqFacts::fetch(&session.needs(&msg), hq);
    session.handle(msg, facts)
}

impl Hq {
    fn enroll(&mut self, spec: &BranchSpec) {
        let b = HqBranch {
            key: test_key(spec.key).verifying_key(),
            head: ChainHead::EMPTY,
            profile: profile_for(spec),
            stored: BTreeMap::new(),
        };
        self.branches.insert(branch_code(spec.code), b);
        self.books.insert(branch_code(spec.code), Books::default());
    }

    fn head(&self, code: &BranchCode) -> ChainHead {
        self.branches[code].head
    }

    /// Carries out an `HqStep::Apply` as one atomic durable write: posts every entry into
    /// a scratch copy of the branch's books, then stores entries and head and only then
    /// puts the new books in place. Checks the preconditions the session promises.
    fn apply(&mut self, code: &BranchCode, entries: &[VerifiedEntry], new_head: ChainHead) -> Result<(), String> {
        let Hq { branches, books } = self;
        let b = branches.get_mut(code).ok_or_else(|| format!("apply for unknown branch {code}"))?;
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Err("apply of no entries".into());
        };
        if first.entry.seq != b.head.seq + 1 || first.entry.prev != b.head.hash {
            return Err(format!("apply of {}.. does not extend HQ head {:?}", first.entry.seq, b.head));
        }
        if new_head != (ChainHead { seq: last.entry.seq, hash: last.hash }) {
            return Err(format!("apply's new head {new_head:?} is not its last entry"));
        }
        let books = books.get_mut(code).ok_or_else(|| format!("no books for enrolled branch {code}"))?;
        let mut scratch = books.clone();
        for e in entries {
            let posting = post(&scratch, &e.entry.doc, PostContext::under(&b.profile))
                .map_err(|err| format!("HQ cannot post {code} seq {} ({}): {err}", e.entry.seq, e.entry.doc.header.number))?;
            scratch.apply(&e.entry.doc, &posting);
        }
        for e in entries {
            if b.stored.insert(e.entry.seq, e.bytes.clone()).is_some() {
                return Err(format!("{code} seq {} stored twice", e.entry.seq));
            }
        }
        b.head = new_head;
        *books = scratch;
        Ok(())
    }

    /// Everything durable and the books derived from it, for "nothing changed" checks.
    fn snapshot(&self) -> Snapshot {
        self.branches.iter().map(|(c, b)| (*c, b.head, b.stored.len(), self.books[c].digest())).collect()
    }
}

// ---------------------------------------------------------------------------------------
// A branch: journal, own books, sync state and what its agent persisted.

struct Branch {
    code: BranchCode,
    warehouse: WarehouseCode,
    key: SigningKey,
    profile: BranchProfile,
    profile_version: u64,
    limits: SyncLimits,
    /// Entry bytes, index `seq - 1`. Durable.
    journal: Vec<Vec<u8>>,
    head: ChainHead,
    books: Books,
    sync: BranchSync,
    /// The acked seq the agent persisted; a restarted agent resumes from it.
    acked_persisted: u64,
    serial: u32,
    day: u8,
}

fn random_qty(rng: &mut StdRng) -> Decimal {
    Decimal::new(rng.gen_range(1..=20_000), rng.gen_range(0..=3))
}

fn random_price(rng: &mut StdRng) -> Decimal {
    Decimal::new(rng.gen_range(0..=50_000), rng.gen_range(0..=4))
}

impl Branch {
    fn new(spec: &BranchSpec, limits: SyncLimits) -> Branch {
        let code = branch_code(spec.code);
        Branch {
            sync: BranchSync::new(code, limits, SyncTimers::default(), ChainHead::EMPTY, 0, 0),
            code,
            warehouse: warehouse(spec.warehouse),
            key: test_key(spec.key),
            profile: profile_for(spec),
            // A fresh install has no profile version yet: the first resume brings one.
            profile_version: 0,
            limits,
            journal: Vec::new(),
            head: ChainHead::EMPTY,
            books: Books::default(),
            acked_persisted: 0,
            serial: 0,
            day: 1,
        }
    }

    fn on_hand(&self, p: &ProductCode) -> Decimal {
        self.books.position(&(self.warehouse, *p)).qty
    }

    /// A document an operator might submit: goods in, or goods out of what is on hand.
    /// Rarely it asks for more than is on hand, which posting must refuse.
    fn random_doc(&mut self, rng: &mut StdRng) -> Document {
        let mut left: BTreeMap<ProductCode, Decimal> =
            PRODUCTS.iter().map(|p| product(p)).map(|p| (p, self.on_hand(&p))).filter(|(_, q)| *q > Decimal::ZERO).collect();
        let goes_out = !left.is_empty() && rng.gen_bool(0.45);
        let doc_type = match (goes_out, rng.gen_bool(0.8)) {
            (true, true) => DocType::Sale,
            (true, false) => DocType::StockLoss,
            (false, true) => DocType::PurchaseReceipt,
            (false, false) => DocType::StockGain,
        };
        let mut lines = Vec::new();
        for _ in 0..rng.gen_range(1..=3) {
            if goes_out {
                let stocked: Vec<(ProductCode, Decimal)> =
                    left.iter().filter(|(_, q)| **q > Decimal::ZERO).map(|(p, q)| (*p, *q)).collect();
                if stocked.is_empty() {
                    break;
                }
                let (p, q_left) = stocked[rng.gen_range(0..stocked.len())];
                let qty = match rng.gen_range(0..100) {
                    0..=2 => q_left + Decimal::ONE,
                    3..=29 => q_left,
                    _ => random_qty(rng).min(q_left),
                };
                left.insert(p, (q_left - qty).max(Decimal::ZERO));
                lines.push(Line::priced(p, qty, random_price(rng)));
            } else {
                let p = product(PRODUCTS[rng.gen_range(0..PRODUCTS.len())]);
                lines.push(Line::priced(p, random_qty(rng), random_price(rng)));
            }
        }
        if rng.gen_bool(0.1) && self.day < 28 {
            self.day += 1;
        }
        self.serial += 1;
        let counterparty = match doc_type {
            DocType::PurchaseReceipt => Some(PartyCode::new("300201").expect("valid party")),
            DocType::Sale => Some(PartyCode::new("200102").expect("valid party")),
            _ => None,
        };
        Draft {
            doc_type,
            date: BusinessDate::new(2026, 6, self.day).expect("valid date"),
            operator: OperatorId::new(format!("{}-店员", self.code)).expect("valid operator"),
            warehouse: self.warehouse,
            counterparty,
            memo: MEMOS[rng.gen_range(0..MEMOS.len())].to_string(),
            payment: None,
            ext: Default::default(),
            lines,
        }
        .number(self.code, self.serial)
        .expect("generated document is valid")
    }

    /// Posts into the branch's own books and journal, as the agent does before syncing.
    fn post(&mut self, doc: Document) -> Result<u64, PostError> {
        let posting = post(&self.books, &doc, PostContext::under(&self.profile))?;
        self.books.apply(&doc, &posting);
        let (_, bytes, head) = self.head.append(doc);
        self.journal.push(bytes);
        self.head = head;
        self.sync.local_posted(head);
        Ok(head.seq)
    }

    /// The agent process restarts: journal and persisted ack survive, nothing else.
    fn restart(&mut self) {
        self.sync = BranchSync::new(self.code, self.limits, SyncTimers::default(), self.head, self.acked_persisted, 0);
    }

    /// What the agent does on `poll_batch`: build, sign, record as sent.
    fn next_batch(&mut self, now: u64) -> Option<(SignedBatch, u64, u64)> {
        let plan = self.sync.poll_batch()?;
        let mut builder = BatchBuilder::new(plan.entries_max, self.limits.batch_bytes_max);
        let mut last = plan.from - 1;
        for seq in plan.from..=self.head.seq {
            if builder.try_push(self.journal[(seq - 1) as usize].clone()).is_err() {
                break;
            }
            last = seq;
        }
        assert!(last >= plan.from, "the first entry always fits");
        let batch = builder.finish(&self.code, &self.key);
        self.sync.batch_sent(now, plan.from, last);
        Some((batch, plan.from, last))
    }
}

// ---------------------------------------------------------------------------------------
// The link and the simulation.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Model {
    Stream,
    Hostile,
}

/// One connection: a bidirectional stream, each end's decoder, HQ's session.
#[derive(Default)]
struct Conn {
    to_hq: Vec<u8>,
    to_branch: Vec<u8>,
    hq_decoder: FrameDecoder,
    branch_decoder: FrameDecoder,
    session: HqSession,
    /// Hostile model: a frame held back to be delivered after the next one.
    held_to_hq: Option<Vec<u8>>,
    held_to_branch: Option<Vec<u8>>,
}

impl Conn {
    fn idle(&self) -> bool {
        self.to_hq.is_empty() && self.to_branch.is_empty() && self.held_to_hq.is_none() && self.held_to_branch.is_none()
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    docs_posted: u64,
    docs_refused: u64,
    batches_sent: u64,
    applies: u64,
    crashes_before_write: u64,
    crashes_after_write: u64,
    connection_drops: u64,
    branch_restarts: u64,
    reconnects: u64,
    resends: u64,
    attacks_acked: u64,
    attacks_applied: u64,
    attacks_refused: u64,
    attacks_behind: u64,
    attacks_gap: u64,
    hostile_branch_errors: u64,
    hostile_stale_hellos: u64,
    stall_reconnects: u64,
    /// Batches HQ verified: the dominant cost of a run.
    batches_verified: u64,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.docs_posted += o.docs_posted;
        self.docs_refused += o.docs_refused;
        self.batches_sent += o.batches_sent;
        self.applies += o.applies;
        self.crashes_before_write += o.crashes_before_write;
        self.crashes_after_write += o.crashes_after_write;
        self.connection_drops += o.connection_drops;
        self.branch_restarts += o.branch_restarts;
        self.reconnects += o.reconnects;
        self.resends += o.resends;
        self.attacks_acked += o.attacks_acked;
        self.attacks_applied += o.attacks_applied;
        self.attacks_refused += o.attacks_refused;
        self.attacks_behind += o.attacks_behind;
        self.attacks_gap += o.attacks_gap;
        self.hostile_branch_errors += o.hostile_branch_errors;
        self.hostile_stale_hellos += o.hostile_stale_hellos;
        self.stall_reconnects += o.stall_reconnects;
        self.batches_verified += o.batches_verified;
    }
}

struct Sim {
    rng: StdRng,
    model: Model,
    faults: bool,
    now: u64,
    hq: Hq,
    branches: Vec<Branch>,
    conns: Vec<Option<Conn>>,
    reconnect_at: Vec<u64>,
    /// Last step a branch heard from HQ (stall timer, hostile model).
    heard_at: Vec<u64>,
    /// Frames the attacker saw on the wire: (branch index, frame).
    captured_batches: Vec<(usize, Vec<u8>)>,
    captured_hellos: Vec<(usize, Vec<u8>)>,
    trace: VecDeque<String>,
    trace_live: bool,
    stats: Stats,
}

type SimResult = Result<(), String>;

impl Sim {
    fn new(seed: u64, model: Model) -> Sim {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut hq = Hq::default();
        let mut branches = Vec::new();
        for spec in &BRANCHES {
            hq.enroll(spec);
            let limits = SyncLimits {
                batch_entries_max: rng.gen_range(1..=6),
                batch_bytes_max: [400, 2_000, 1 << 20][rng.gen_range(0..3)],
                inflight_batches_max: rng.gen_range(1..=3),
            };
            branches.push(Branch::new(spec, limits));
        }
        let n = branches.len();
        Sim {
            rng,
            model,
            faults: true,
            now: 0,
            hq,
            branches,
            conns: (0..n).map(|_| None).collect(),
            reconnect_at: vec![0; n],
            heard_at: vec![0; n],
            captured_batches: Vec::new(),
            captured_hellos: Vec::new(),
            trace: VecDeque::new(),
            trace_live: std::env::var_os("SIM_TRACE").is_some(),
            stats: Stats::default(),
        }
    }

    fn log(&mut self, event: String) {
        let line = format!("[{:>4}] {event}", self.now);
        if self.trace_live {
            eprintln!("{line}");
        }
        if self.trace.len() == TRACE_EVENTS_MAX {
            self.trace.pop_front();
        }
        self.trace.push_back(line);
    }

    fn code(&self, bi: usize) -> BranchCode {
        self.branches[bi].code
    }

    // --- faults and actions ------------------------------------------------------------

    fn run(&mut self, steps: u64) -> SimResult {
        for _ in 0..steps {
            self.now += 1;
            self.step_random()?;
            self.timers()?;
            self.check_invariants()?;
        }
        Ok(())
    }

    fn step_random(&mut self) -> SimResult {
        let n = self.branches.len();
        let bi = self.rng.gen_range(0..n);
        match self.rng.gen_range(0..1000) {
            0..=179 => self.post_random(bi),
            180..=749 => {
                let to_hq = self.rng.gen_bool(0.5);
                self.deliver_some(bi, to_hq)
            }
            750..=789 => {
                if self.conns[bi].is_some() {
                    self.stats.connection_drops += 1;
                    self.close(bi, "connection dropped");
                }
                Ok(())
            }
            790..=799 => {
                self.crash_hq("HQ process killed");
                Ok(())
            }
            800..=839 => self.attack(),
            840..=854 => {
                self.stats.branch_restarts += 1;
                self.close(bi, "branch agent restarts");
                self.branches[bi].restart();
                Ok(())
            }
            // The agent's periodic send tick.
            855..=929 => self.pump(bi),
            _ => Ok(()),
        }
    }

    fn post_random(&mut self, bi: usize) -> SimResult {
        let doc = self.branches[bi].random_doc(&mut self.rng);
        let number = doc.header.number.to_string();
        let before = self.branches[bi].books.digest();
        match self.branches[bi].post(doc) {
            Ok(seq) => {
                self.stats.docs_posted += 1;
                self.log(format!("{} posts {number} as seq {seq}", self.code(bi)));
                // The agent's send loop wakes on a post only sometimes (it also wakes on
                // every message from HQ), so batches of several entries form.
                if self.rng.gen_bool(0.3) {
                    self.pump(bi)?;
                }
                Ok(())
            }
            Err(PostError::NegativeStock { .. }) => {
                self.stats.docs_refused += 1;
                if self.branches[bi].books.digest() != before {
                    return Err(format!("refused post of {number} changed the books"));
                }
                Ok(())
            }
            Err(e) => Err(format!("generated document {number} refused: {e}")),
        }
    }

    /// Reconnects due branches; in the hostile model, fires stall timers.
    fn timers(&mut self) -> SimResult {
        for bi in 0..self.branches.len() {
            if self.conns[bi].is_none() && self.reconnect_at[bi] <= self.now {
                self.open(bi);
            }
            if self.model == Model::Hostile && self.stalled(bi) && self.now - self.heard_at[bi] > STALL_STEPS {
                self.stats.stall_reconnects += 1;
                self.close(bi, "stall timer");
            }
        }
        Ok(())
    }

    /// Waiting for HQ with nothing on the wire that could answer.
    fn stalled(&self, bi: usize) -> bool {
        let Some(conn) = &self.conns[bi] else { return false };
        let sync = &self.branches[bi].sync;
        let waiting = *sync.state() != BranchState::Streaming || sync.inflight() > 0 || sync.pending() > 0;
        conn.idle() && waiting
    }

    fn open(&mut self, bi: usize) {
        self.stats.reconnects += 1;
        self.conns[bi] = Some(Conn::default());
        self.heard_at[bi] = self.now;
        let b = &mut self.branches[bi];
        let hello = b.sync.connect(self.now, b.profile_version, "sim-agent");
        self.log(format!("{} connects: {}", self.code(bi), describe(&hello)));
        let frame = hello.to_frame();
        self.capture(bi, &frame, false);
        self.send(bi, true, frame);
    }

    fn close(&mut self, bi: usize, why: &str) {
        if self.conns[bi].take().is_none() {
            return;
        }
        self.branches[bi].sync.disconnected(self.now);
        self.reconnect_at[bi] = if self.faults { self.now + self.rng.gen_range(1..=6) } else { self.now };
        self.log(format!("{} disconnected: {why}", self.code(bi)));
    }

    fn crash_hq(&mut self, why: &str) {
        self.log(format!("HQ crashes: {why}"));
        for bi in 0..self.branches.len() {
            self.close(bi, "HQ went away");
        }
    }

    fn capture(&mut self, bi: usize, frame: &[u8], batch: bool) {
        let list = if batch { &mut self.captured_batches } else { &mut self.captured_hellos };
        if list.len() < CAPTURED_FRAMES_MAX {
            list.push((bi, frame.to_vec()));
        } else {
            let i = self.rng.gen_range(0..CAPTURED_FRAMES_MAX);
            list[i] = (bi, frame.to_vec());
        }
    }

    /// Queues a frame on a connection; the hostile model may drop, duplicate or hold it.
    fn send(&mut self, bi: usize, to_hq: bool, frame: Vec<u8>) {
        let hostile = self.faults && self.model == Model::Hostile;
        let roll = if hostile { self.rng.gen_range(0..100) } else { 99 };
        let Some(conn) = self.conns[bi].as_mut() else { return };
        let (buf, held) = if to_hq { (&mut conn.to_hq, &mut conn.held_to_hq) } else { (&mut conn.to_branch, &mut conn.held_to_branch) };
        match roll {
            0..=3 => {}
            4..=7 => {
                buf.extend_from_slice(&frame);
                buf.extend_from_slice(&frame);
            }
            8..=11 if held.is_none() => *held = Some(frame),
            _ => {
                buf.extend_from_slice(&frame);
                if let Some(h) = held.take() {
                    buf.extend_from_slice(&h);
                }
            }
        }
    }

    fn flush_held(&mut self) {
        for conn in self.conns.iter_mut().flatten() {
            if let Some(h) = conn.held_to_hq.take() {
                conn.to_hq.extend_from_slice(&h);
            }
            if let Some(h) = conn.held_to_branch.take() {
                conn.to_branch.extend_from_slice(&h);
            }
        }
    }

    /// Delivers a random-length prefix of what is in flight one way.
    fn deliver_some(&mut self, bi: usize, to_hq: bool) -> SimResult {
        let Some(conn) = &self.conns[bi] else { return Ok(()) };
        let len = if to_hq { conn.to_hq.len() } else { conn.to_branch.len() };
        if len == 0 {
            return Ok(());
        }
        let n = if self.rng.gen_bool(0.5) { len } else { self.rng.gen_range(1..=len) };
        self.deliver(bi, to_hq, n)
    }

    fn deliver(&mut self, bi: usize, to_hq: bool, n: usize) -> SimResult {
        let Some(conn) = self.conns[bi].as_mut() else { return Ok(()) };
        if to_hq {
            let chunk: Vec<u8> = conn.to_hq.drain(..n).collect();
            conn.hq_decoder.push(&chunk);
            self.hq_receive(bi)
        } else {
            let chunk: Vec<u8> = conn.to_branch.drain(..n).collect();
            conn.branch_decoder.push(&chunk);
            self.branch_receive(bi)
        }
    }

    fn hq_receive(&mut self, bi: usize) -> SimResult {
        loop {
            let Some(conn) = self.conns[bi].as_mut() else { return Ok(()) };
            let msg = match conn.hq_decoder.next_message() {
                Ok(Some(m)) => m,
                Ok(None) => return Ok(()),
                Err(e) => return Err(format!("HQ cannot read a frame from {}: {e}", self.code(bi))),
            };
            let what = describe(&msg);
            let hello_seq = if let Message::Hello { head, .. } = &msg { Some(head.seq) } else { None };
            self.stats.batches_verified += u64::from(matches!(msg, Message::Batch(_)));
            let step = hq_step(&mut conn.session, msg, &self.hq);
            match step {
                HqStep::Reply(reply) => {
                    if let Message::ResendFrom { .. } = reply {
                        self.stats.resends += 1;
                        if self.model == Model::Stream {
                            return Err(format!("gap on an ordered stream: HQ answered {what} with {}", describe(&reply)));
                        }
                    }
                    self.log(format!("HQ ← {what}; replies {}", describe(&reply)));
                    self.send(bi, false, reply.to_frame());
                }
                HqStep::Apply { branch, entries, new_head, .. } => {
                    if branch != self.code(bi) {
                        return Err(format!("session of {} applies for {branch}", self.code(bi)));
                    }
                    let roll = if self.faults { self.rng.gen_range(0..100) } else { 99 };
                    if roll < 6 {
                        self.stats.crashes_before_write += 1;
                        self.crash_hq(&format!("before writing {what}"));
                        return Ok(());
                    }
                    self.hq.apply(&branch, &entries, new_head)?;
                    self.stats.applies += 1;
                    self.log(format!("HQ ← {what}; applied {}..={}", entries[0].entry.seq, new_head.seq));
                    if roll < 12 {
                        self.stats.crashes_after_write += 1;
                        self.crash_hq(&format!("after writing {what}, before the ack"));
                        return Ok(());
                    }
                    let ack = self.conns[bi].as_ref().map(|c| c.session.applied(new_head)).expect("connection is open");
                    self.send(bi, false, ack.to_frame());
                }
                HqStep::DownAcked { seq, .. } => {
                    // This simulation queues no down messages (tests/down_sync.rs does).
                    return Err(format!("HQ got a down ack {seq} nobody sent"));
                }
                HqStep::StoreDraft { draft, .. } => {
                    // Nor drafts (the approval tests send them).
                    return Err(format!("HQ got draft {} nobody sent", draft.id));
                }
                HqStep::Refuse { code, reply, .. } => {
                    // A duplicate of this connection's hello, delivered after the branch's
                    // newer entries reached HQ (by this connection or a replay), claims a
                    // head HQ has passed. Only a transport that replays within a stream
                    // can do that; HQ then refuses and closes, and the branch reconnects.
                    let stale_hello = hello_seq.is_some_and(|seq| seq < self.branches[bi].head.seq);
                    if self.model == Model::Hostile && code == RejectCode::BranchBehind && stale_hello {
                        self.stats.hostile_stale_hellos += 1;
                        self.close(bi, &format!("HQ refused a stale duplicate {what}"));
                        return Ok(());
                    }
                    // Otherwise an honest branch sends hello first and then only genuine
                    // batches: nothing it sends may be refused.
                    return Err(format!("HQ refused honest {what} from {}: {}", self.code(bi), describe(&reply)));
                }
            }
        }
    }

    fn branch_receive(&mut self, bi: usize) -> SimResult {
        loop {
            let Some(conn) = self.conns[bi].as_mut() else { return Ok(()) };
            let msg = match conn.branch_decoder.next_message() {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => return Err(format!("{} cannot read a frame from HQ: {e}", self.code(bi))),
            };
            self.heard_at[bi] = self.now;
            let what = describe(&msg);
            let b = &mut self.branches[bi];
            // The branch's own entry at HQ's resume point, when the machine asks for it.
            let own = b.sync.own_needed(&msg).and_then(|seq| {
                let i = usize::try_from(seq).ok()?.checked_sub(1)?;
                b.journal.get(i).map(|bytes| EntryHash::of(bytes))
            });
            match b.sync.handle(self.now, msg, own) {
                Ok(Some(BranchEvent::Halted(e))) => {
                    return Err(format!("{} stops on {what}: {e}", self.code(bi)));
                }
                Ok(event) => {
                    match &event {
                        Some(BranchEvent::Resumed { profile, .. }) => {
                            if let Some(p) = profile {
                                if **p != b.profile {
                                    return Err(format!("{} got someone else's profile", b.code));
                                }
                                b.profile_version = p.version;
                            } else if b.profile_version != b.profile.version {
                                return Err(format!("{} reported profile {} but got none", b.code, b.profile_version));
                            }
                            b.acked_persisted = b.sync.acked();
                        }
                        Some(BranchEvent::Acked { .. }) | Some(BranchEvent::Resend { .. }) => b.acked_persisted = b.sync.acked(),
                        Some(BranchEvent::Profile(p)) => b.profile_version = p.version,
                        Some(BranchEvent::Down(_)) => return Err(format!("{} got a down message nobody queued", b.code)),
                        Some(BranchEvent::Halted(e)) => return Err(format!("{} halted: {e}", b.code)),
                        Some(BranchEvent::DraftAcked { id }) => return Err(format!("{} got an ack of draft {id} it never sent", b.code)),
                        None => {}
                    }
                    self.log(format!("{} ← {what}; acked {}", self.code(bi), self.branches[bi].sync.acked()));
                }
                Err(e @ (SyncError::BranchBehind { .. } | SyncError::Fork { .. })) => {
                    return Err(format!("{} stops on {what}: {e}", self.code(bi)));
                }
                Err(e) => {
                    if self.model == Model::Stream {
                        return Err(format!("{} fails on {what}: {e}", self.code(bi)));
                    }
                    self.stats.hostile_branch_errors += 1;
                    self.close(bi, &format!("branch error on {what}: {e}"));
                    return Ok(());
                }
            }
        }
        self.pump(bi)
    }

    /// Sends every batch the window allows.
    fn pump(&mut self, bi: usize) -> SimResult {
        while self.conns[bi].is_some() {
            let Some((batch, first, last)) = self.branches[bi].next_batch(self.now) else { break };
            self.stats.batches_sent += 1;
            let frame = Message::Batch(batch).to_frame();
            self.capture(bi, &frame, true);
            self.log(format!("{} sends batch {first}..={last}", self.code(bi)));
            self.send(bi, true, frame);
        }
        Ok(())
    }

    /// An attacker who captured frames opens its own connection to HQ, says hello as a
    /// branch and replays a captured batch. HQ must apply nothing that is not the next
    /// part of the genuine chain, and change nothing otherwise.
    fn attack(&mut self) -> SimResult {
        if self.captured_batches.is_empty() {
            return Ok(());
        }
        let (victim, batch_frame) = self.captured_batches[self.rng.gen_range(0..self.captured_batches.len())].clone();
        let target = if self.rng.gen_bool(0.85) { victim } else { (victim + 1) % self.branches.len() };
        let old_hellos: Vec<Vec<u8>> = self.captured_hellos.iter().filter(|(b, _)| *b == target).map(|(_, f)| f.clone()).collect();
        let hello_frame = if !old_hellos.is_empty() && self.rng.gen_bool(0.3) {
            old_hellos[self.rng.gen_range(0..old_hellos.len())].clone()
        } else {
            // Hello is not signed: the attacker claims whatever head it sniffed last.
            Message::Hello {
                branch: self.code(target),
                head: self.branches[target].head,
                profile_version: 1,
                down_applied: 0,
                agent: "replay".into(),
            }
            .to_frame()
        };
        let mut decoder = FrameDecoder::default();
        decoder.push(&hello_frame);
        decoder.push(&batch_frame);
        let mut next = || decoder.next_message().map_err(|e| e.to_string())?.ok_or_else(|| "captured frame is incomplete".to_string());
        let (hello, batch) = (next()?, next()?);
        let what = describe(&batch);
        let before = self.hq.snapshot();
        let mut session = HqSession::default();
        self.stats.batches_verified += 1;
        match hq_step(&mut session, hello, &self.hq) {
            HqStep::Reply(Message::Resume { .. }) => {}
            HqStep::Refuse { code: RejectCode::BranchBehind, fatal: true, .. } => {
                self.stats.attacks_behind += 1;
                return self.unchanged(before, "replayed old hello");
            }
            other => return Err(format!("attacker hello got {other:?}")),
        }
        match hq_step(&mut session, batch, &self.hq) {
            HqStep::Reply(Message::Ack { applied }) => {
                if applied != self.hq.head(&self.code(target)).seq {
                    return Err(format!("replayed {what} acked {applied}, not HQ's head"));
                }
                self.stats.attacks_acked += 1;
                self.log(format!("attacker replays {what}: acked {applied}, nothing applied"));
                self.unchanged(before, "replayed batch acked")
            }
            HqStep::Reply(Message::ResendFrom { from }) => {
                self.stats.attacks_gap += 1;
                self.log(format!("attacker replays {what}: HQ asks to resend from {from}"));
                self.unchanged(before, "replayed batch past the head")
            }
            HqStep::Apply { branch, entries, new_head, .. } => {
                // Genuine entries the branch has not got through yet: applying them is
                // correct, and the branch's own copy must then be acked without a double.
                if branch != self.code(victim) || target != victim {
                    return Err(format!("replay of {what} applied to {branch}"));
                }
                self.hq.apply(&branch, &entries, new_head)?;
                self.stats.attacks_applied += 1;
                self.log(format!("attacker replays {what}: HQ applies {}..={}", entries[0].entry.seq, new_head.seq));
                Ok(())
            }
            HqStep::Refuse { code: RejectCode::BadSignature, fatal: false, .. } if target != victim => {
                self.stats.attacks_refused += 1;
                self.log(format!("attacker replays {what} as {}: bad signature", self.code(target)));
                self.unchanged(before, "batch under another branch's name")
            }
            other => Err(format!("replayed {what} got {other:?}")),
        }
    }

    fn unchanged(&self, before: Snapshot, what: &str) -> SimResult {
        if self.hq.snapshot() != before {
            return Err(format!("{what} changed HQ's durable state"));
        }
        Ok(())
    }

    // --- checks --------------------------------------------------------------------------

    /// Safety at every step: HQ holds a prefix of each journal, byte for byte, and a
    /// branch never believes in an ack HQ has not made durable.
    fn check_invariants(&self) -> SimResult {
        for b in &self.branches {
            let hq = &self.hq.branches[&b.code];
            if hq.head.seq > b.head.seq {
                return Err(format!("HQ head {} of {} is past the branch's {}", hq.head.seq, b.code, b.head.seq));
            }
            if hq.stored.len() as u64 != hq.head.seq || hq.stored.keys().next_back().copied().unwrap_or(0) != hq.head.seq {
                return Err(format!("HQ holds {} entries of {} but its head is {}", hq.stored.len(), b.code, hq.head.seq));
            }
            if let Some(seq) = hq.stored.iter().find(|(seq, bytes)| b.journal[(**seq - 1) as usize] != **bytes).map(|(s, _)| *s) {
                return Err(format!("HQ's entry {seq} of {} differs from the branch's", b.code));
            }
            if hq.head.seq > 0 && hq.head.hash != EntryHash::of(&b.journal[(hq.head.seq - 1) as usize]) {
                return Err(format!("HQ head hash of {} is not the branch's entry {}", b.code, hq.head.seq));
            }
            if b.sync.acked() > hq.head.seq || b.acked_persisted > hq.head.seq {
                return Err(format!("{} believes {} is acked but HQ holds {}", b.code, b.sync.acked(), hq.head.seq));
            }
        }
        Ok(())
    }

    fn quiescent(&self) -> bool {
        self.branches.iter().zip(&self.conns).all(|(b, c)| {
            c.as_ref().is_some_and(|c| c.idle() && c.hq_decoder.pending_bytes() == 0 && c.branch_decoder.pending_bytes() == 0)
                && *b.sync.state() == BranchState::Streaming
                && b.sync.pending() == 0
                && b.sync.inflight() == 0
        })
    }

    /// Faults off, link healed: deliver everything until nothing is left to do.
    fn heal(&mut self) -> SimResult {
        self.faults = false;
        self.flush_held();
        self.log("link heals".into());
        let mut stall_reconnects = 0;
        for _ in 0..QUIESCE_ROUNDS_MAX {
            self.now += 1;
            for bi in 0..self.branches.len() {
                if self.conns[bi].is_none() {
                    self.open(bi);
                }
                self.pump(bi)?;
                for to_hq in [true, false] {
                    let len = self.conns[bi].as_ref().map_or(0, |c| if to_hq { c.to_hq.len() } else { c.to_branch.len() });
                    if len > 0 {
                        self.deliver(bi, to_hq, len)?;
                    }
                }
            }
            self.check_invariants()?;
            if self.quiescent() {
                return Ok(());
            }
            if self.conns.iter().flatten().all(Conn::idle) {
                // Nothing on the wire, yet someone waits.
                if self.model == Model::Stream {
                    return Err("stalled: nothing in flight but a branch is still waiting".into());
                }
                stall_reconnects += 1;
                if stall_reconnects > HEAL_STALL_RECONNECTS_MAX {
                    return Err("still stalled after many reconnects".into());
                }
                for bi in 0..self.branches.len() {
                    if self.stalled(bi) {
                        self.close(bi, "stall timer while healing");
                    }
                }
            }
        }
        Err(format!("no quiescence after {QUIESCE_ROUNDS_MAX} rounds"))
    }

    /// Convergence: every entry stored once, heads equal, books agree.
    fn check_converged(&self) -> SimResult {
        // HQ's consolidated books (all branches added up, as its reports show them).
        let mut consolidated = Books::default();
        for books in self.hq.books.values() {
            consolidated.absorb(books);
        }
        for b in &self.branches {
            let hq = &self.hq.branches[&b.code];
            if hq.head != b.head {
                return Err(format!("{}: HQ head {:?} != branch head {:?}", b.code, hq.head, b.head));
            }
            let held: Vec<&Vec<u8>> = hq.stored.values().collect();
            let mine: Vec<&Vec<u8>> = b.journal.iter().collect();
            if held != mine || !hq.stored.keys().copied().eq(1..=b.head.seq) {
                return Err(format!("{}: HQ holds {} entries, the branch {}", b.code, held.len(), mine.len()));
            }
            if b.sync.acked() != b.head.seq || b.acked_persisted != b.head.seq {
                return Err(format!("{}: acked {} (persisted {}) at head {}", b.code, b.sync.acked(), b.acked_persisted, b.head.seq));
            }
            let hq_books = self.hq.books.get(&b.code).ok_or_else(|| format!("{}: HQ keeps no books", b.code))?;
            if hq_books.digest() != b.books.digest() {
                return Err(format!("{}: HQ books differ from the branch's", b.code));
            }
            let wh = &b.warehouse;
            if b.books.positions().any(|((w, _), pos)| w != wh || pos.qty < Decimal::ZERO || pos.value < Decimal::ZERO) {
                return Err(format!("{}: branch books hold a negative or foreign position", b.code));
            }
            if !consolidated.positions().filter(|((w, _), _)| w == wh).eq(b.books.positions()) {
                return Err(format!("{}: HQ's consolidated stock in {wh} differs from the branch's", b.code));
            }
            // Replaying HQ's stored journal reproduces HQ's books (they are derived data).
            let mut rebuilt = Books::default();
            for bytes in hq.stored.values() {
                let entry = JournalEntry::decode(bytes).map_err(|e| e.to_string())?;
                let posting = post(&rebuilt, &entry.doc, PostContext::under(&hq.profile)).map_err(|e| e.to_string())?;
                rebuilt.apply(&entry.doc, &posting);
            }
            if rebuilt.digest() != hq_books.digest() {
                return Err(format!("{}: HQ books differ from a replay of HQ's stored journal", b.code));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Running seeds.

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(v.trim().parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a number")))
}

fn run_seed(seed: u64, model: Model) -> Result<Stats, String> {
    let mut sim = Sim::new(seed, model);
    let outcome = sim.run(STEPS_MAX).and_then(|()| sim.heal()).and_then(|()| sim.check_converged());
    match outcome {
        Ok(()) => Ok(sim.stats),
        Err(e) => {
            let trace: Vec<String> = sim.trace.into_iter().collect();
            Err(format!("{e}\n--- last events ---\n{}", trace.join("\n")))
        }
    }
}

/// Runs the default seeds (or `SIM_SEED` alone, or `SIM_SEEDS` of them); any failure
/// names its seed and how to replay it.
fn run_seeds(test: &str, model: Model, seeds_default: u64) -> Option<Stats> {
    let (seeds, full) = match (env_u64("SIM_SEED"), env_u64("SIM_SEEDS")) {
        (Some(seed), _) => (seed..seed + 1, false),
        (None, Some(n)) => (0..n, n >= seeds_default),
        (None, None) => (0..seeds_default, true),
    };
    let mut total = Stats::default();
    for seed in seeds {
        let result = catch_unwind(AssertUnwindSafe(|| run_seed(seed, model)));
        let replay = format!("replay: SIM_SEED={seed} SIM_TRACE=1 cargo test -p branchline-protocol --test sync_sim {test} -- --nocapture");
        match result {
            Ok(Ok(stats)) => total.add(&stats),
            Ok(Err(e)) => panic!("{model:?} simulation failed for seed {seed}: {e}\n{replay}"),
            Err(_) => panic!("{model:?} simulation panicked for seed {seed} (message above)\n{replay}"),
        }
    }
    eprintln!("{test}: {total:?}");
    full.then_some(total)
}

#[test]
fn stream_faults_converge_exactly_once() {
    let Some(s) = run_seeds("stream_faults_converge_exactly_once", Model::Stream, STREAM_SEEDS_DEFAULT) else { return };
    // The run must actually have gone through the paths it claims to test.
    let covered = [
        ("refused posts", s.docs_refused),
        ("crashes before the write", s.crashes_before_write),
        ("crashes after the write", s.crashes_after_write),
        ("connection drops", s.connection_drops),
        ("branch restarts", s.branch_restarts),
        ("replays acked", s.attacks_acked),
        ("replays applied", s.attacks_applied),
        ("replays under another name", s.attacks_refused),
        ("replayed old hellos", s.attacks_behind),
    ];
    for (what, n) in covered {
        assert!(n > 0, "no {what} across all seeds: {s:?}");
    }
}

#[test]
fn hostile_frames_still_converge_exactly_once() {
    let Some(s) = run_seeds("hostile_frames_still_converge_exactly_once", Model::Hostile, HOSTILE_SEEDS_DEFAULT) else { return };
    for (what, n) in [("resends", s.resends), ("stall reconnects", s.stall_reconnects), ("branch protocol errors", s.hostile_branch_errors)]
    {
        assert!(n > 0, "no {what} across all seeds: {s:?}");
    }
}

#[test]
fn same_seed_same_run() {
    let a = run_seed(7, Model::Hostile).expect("seed 7 converges");
    let b = run_seed(7, Model::Hostile).expect("seed 7 converges");
    assert_eq!(format!("{a:?}"), format!("{b:?}"), "a seed must replay exactly");
}

// ---------------------------------------------------------------------------------------
// Targeted cases.

/// A quiet sim (no random faults) with `docs` posted at the first branch.
fn quiet_sim(docs: u64) -> Sim {
    let mut sim = Sim::new(1, Model::Stream);
    sim.faults = false;
    sim.branches[0].limits = SyncLimits { batch_entries_max: 2, batch_bytes_max: 1 << 20, inflight_batches_max: 3 };
    sim.branches[0].restart();
    while sim.branches[0].head.seq < docs {
        sim.post_random(0).expect("posts or refuses cleanly");
    }
    sim
}

/// Connects branch `bi` and exchanges hello and resume.
fn handshake(sim: &mut Sim, bi: usize) {
    sim.open(bi);
    let len = sim.conns[bi].as_ref().expect("open").to_hq.len();
    sim.deliver(bi, true, len).expect("hello");
    let len = sim.conns[bi].as_ref().expect("open").to_branch.len();
    sim.deliver(bi, false, len).expect("resume");
    assert_eq!(*sim.branches[bi].sync.state(), BranchState::Streaming);
}

/// An HQ with branch SH enrolled and `n` entries of SH already applied; returns HQ and
/// the branch's journal of `total` entries (the first `n` applied).
fn hq_holding(n: u64, total: u64) -> (Hq, Vec<Vec<u8>>, Vec<ChainHead>) {
    let mut hq = Hq::default();
    hq.enroll(&BRANCHES[0]);
    let mut branch = Branch::new(&BRANCHES[0], SyncLimits::default());
    let mut rng = StdRng::seed_from_u64(99);
    let mut heads = vec![ChainHead::EMPTY];
    while branch.head.seq < total {
        let doc = branch.random_doc(&mut rng);
        if branch.post(doc).is_ok() {
            heads.push(branch.head);
        }
    }
    let sh = branch_code("SH");
    let key = test_key(1).verifying_key();
    if n > 0 {
        let batch = SignedBatch::sign(&sh, branch.journal[..n as usize].to_vec(), &test_key(1));
        let entries = batch.open(&sh, &key).expect("genuine batch opens");
        hq.apply(&sh, &entries, heads[n as usize]).expect("applies");
    }
    (hq, branch.journal, heads)
}

/// Hello then `batch` on a fresh session, through the wire; returns the batch's step.
fn hello_then(hq: &Hq, head: ChainHead, batch: SignedBatch) -> HqStep {
    let mut session = HqSession::default();
    let hello = Message::Hello { branch: branch_code("SH"), head, profile_version: 1, down_applied: 0, agent: "t".into() };
    match hq_step(&mut session, via_wire(&hello), hq) {
        HqStep::Reply(Message::Resume { .. }) => {}
        other => panic!("hello got {other:?}"),
    }
    hq_step(&mut session, via_wire(&Message::Batch(batch)), hq)
}

#[test]
fn gap_causes_resend_then_convergence() {
    let mut sim = quiet_sim(7);
    handshake(&mut sim, 0);
    // Three batches of two went out (window of three). Lose the first in transit, as a
    // broken transport or agent would.
    let conn = sim.conns[0].as_mut().expect("open");
    let mut frames = split_frames(&conn.to_hq);
    assert_eq!(frames.len(), 3, "three batches in flight");
    frames.remove(0);
    conn.to_hq = frames.concat();
    let len = conn.to_hq.len();
    // Stream mode treats a gap as a failure; this test wants to see one.
    sim.model = Model::Hostile;
    sim.deliver(0, true, len).expect("HQ reads the rest");
    let replies: Vec<Message> = {
        let conn = sim.conns[0].as_ref().expect("open");
        let mut dec = FrameDecoder::default();
        dec.push(&conn.to_branch);
        std::iter::from_fn(|| dec.next_message().expect("valid")).collect()
    };
    assert_eq!(replies, vec![Message::ResendFrom { from: 1 }, Message::ResendFrom { from: 1 }]);
    assert_eq!(sim.hq.head(&branch_code("SH")), ChainHead::EMPTY, "nothing applied past a gap");
    sim.heal().expect("converges");
    sim.check_converged().expect("converged");
    assert_eq!(sim.stats.resends, 2);
}

#[test]
fn wrong_key_batch_is_refused_and_nothing_applied() {
    let (hq, journal, _) = hq_holding(0, 3);
    let before = hq.snapshot();
    let forged = SignedBatch::sign(&branch_code("SH"), journal.clone(), &test_key(9));
    match hello_then(&hq, ChainHead::EMPTY, forged) {
        HqStep::Refuse {
            code: RejectCode::BadSignature,
            fatal: false,
            reply: Message::Reject { code: RejectCode::BadSignature, .. },
            ..
        } => {}
        other => panic!("forged batch got {other:?}"),
    }
    assert_eq!(hq.snapshot(), before);
    // The same entries properly signed are applied: it was the key, nothing else.
    assert!(matches!(
        hello_then(&hq, ChainHead::EMPTY, SignedBatch::sign(&branch_code("SH"), journal, &test_key(1))),
        HqStep::Apply { .. }
    ));
}

#[test]
fn replayed_old_batch_is_acked_without_applying() {
    let (hq, journal, heads) = hq_holding(4, 4);
    let before = hq.snapshot();
    let sh = branch_code("SH");
    for (from, to) in [(0, 2), (1, 3), (0, 4), (3, 4)] {
        let old = SignedBatch::sign(&sh, journal[from..to].to_vec(), &test_key(1));
        match hello_then(&hq, heads[4], old) {
            HqStep::Reply(Message::Ack { applied: 4 }) => {}
            other => panic!("replay of {}..={to} got {other:?}", from + 1),
        }
        assert_eq!(hq.snapshot(), before);
    }
    // A replay that overlaps the head applies only what is new.
    let (hq, journal, heads) = hq_holding(2, 4);
    match hello_then(&hq, heads[4], SignedBatch::sign(&sh, journal[..4].to_vec(), &test_key(1))) {
        HqStep::Apply { entries, new_head, .. } => {
            assert_eq!(entries.iter().map(|e| e.entry.seq).collect::<Vec<_>>(), vec![3, 4]);
            assert_eq!(new_head, heads[4]);
        }
        other => panic!("overlapping batch got {other:?}"),
    }
}

#[test]
fn forged_history_at_a_held_seq_is_a_fork() {
    let (hq, journal, heads) = hq_holding(3, 3);
    let before = hq.snapshot();
    let sh = branch_code("SH");
    let key = test_key(1);
    // A different, validly signed document at seq 3, chained after the genuine seq 2.
    let (_, forged3, forged_head) = heads[2].append(protocol::testkit::sample_doc(777));
    let (_, forged4, _) = forged_head.append(protocol::testkit::sample_doc(778));
    let cases = [
        ("3' alone", vec![forged3.clone()]),
        ("3' and 4'", vec![forged3.clone(), forged4]),
        ("genuine 2 then 3'", vec![journal[1].clone(), forged3]),
    ];
    for (what, entries) in cases {
        match hello_then(&hq, heads[3], SignedBatch::sign(&sh, entries, &key)) {
            HqStep::Refuse { code: RejectCode::Fork, .. } => {}
            other => panic!("{what} got {other:?}"),
        }
        assert_eq!(hq.snapshot(), before, "{what} changed HQ");
    }
    // A batch that rewrites history from seq 1 is a fork as well.
    let mut head = ChainHead::EMPTY;
    let rewritten: Vec<Vec<u8>> = (0..4)
        .map(|i| {
            let (_, bytes, next) = head.append(protocol::testkit::sample_doc(900 + i));
            head = next;
            bytes
        })
        .collect();
    assert!(matches!(hello_then(&hq, head, SignedBatch::sign(&sh, rewritten, &key)), HqStep::Refuse { code: RejectCode::Fork, .. }));
    assert_eq!(hq.snapshot(), before);
}

#[test]
fn branch_restored_from_an_old_copy_is_behind() {
    let (hq, journal, heads) = hq_holding(5, 5);
    // HQ side: the hello of a branch whose journal ends at 3 is refused, fatally.
    let mut session = HqSession::default();
    let hello = Message::Hello { branch: branch_code("SH"), head: heads[3], profile_version: 1, down_applied: 0, agent: "t".into() };
    match hq_step(&mut session, via_wire(&hello), &hq) {
        HqStep::Refuse { code: RejectCode::BranchBehind, fatal: true, .. } => {}
        other => panic!("old copy got {other:?}"),
    }
    // Branch side: a resume past the local head stops the branch.
    let mut old = BranchSync::new(branch_code("SH"), SyncLimits::default(), SyncTimers::default(), heads[3], 3, 0);
    let _hello = old.connect(0, 1, "t");
    let resume = Message::Resume { applied: heads[5], profile: None };
    let behind = SyncError::BranchBehind { hq: 5, local: 3 };
    assert_eq!(old.handle(0, via_wire(&resume), None), Ok(Some(BranchEvent::Halted(behind.clone()))));
    assert_eq!(old.halted(), Some(&behind));
    assert_eq!(old.poll_batch(), None);
    // A restored copy that posted on to the same length differs at the head: fork.
    let (_, _, diverged) = heads[4].append(protocol::testkit::sample_doc(555));
    let mut restored = BranchSync::new(branch_code("SH"), SyncLimits::default(), SyncTimers::default(), diverged, 4, 0);
    let _hello = restored.connect(0, 1, "t");
    assert_eq!(restored.handle(0, resume, None), Ok(Some(BranchEvent::Halted(SyncError::Fork { seq: 5 }))));
    // One that posted past HQ's head passes the hello, but its next batch is a fork.
    let (_, e5, h5) = heads[4].append(protocol::testkit::sample_doc(556));
    let (_, e6, h6) = h5.append(protocol::testkit::sample_doc(557));
    let batch = SignedBatch::sign(&branch_code("SH"), vec![journal[3].clone(), e5, e6], &test_key(1));
    assert!(matches!(hello_then(&hq, h6, batch), HqStep::Refuse { code: RejectCode::Fork, .. }));
}

#[test]
fn messages_out_of_order_are_refused() {
    let (hq, journal, _) = hq_holding(0, 2);
    let batch = SignedBatch::sign(&branch_code("SH"), journal, &test_key(1));
    // Batch before hello.
    let mut session = HqSession::default();
    match hq_step(&mut session, via_wire(&Message::Batch(batch.clone())), &hq) {
        HqStep::Refuse { code: RejectCode::OutOfOrder, fatal: true, .. } => {}
        other => panic!("batch before hello got {other:?}"),
    }
    assert_eq!(hq.head(&branch_code("SH")), ChainHead::EMPTY);
    // Messages only HQ sends are out of order from a branch, before or after hello.
    for msg in [Message::Ack { applied: 1 }, Message::Resume { applied: ChainHead::EMPTY, profile: None }, Message::ResendFrom { from: 1 }]
    {
        let mut session = HqSession::default();
        assert!(matches!(hq_step(&mut session, via_wire(&msg), &hq), HqStep::Refuse { code: RejectCode::OutOfOrder, fatal: true, .. }));
        let hello =
            Message::Hello { branch: branch_code("SH"), head: ChainHead::EMPTY, profile_version: 1, down_applied: 0, agent: "t".into() };
        assert!(matches!(hq_step(&mut session, hello, &hq), HqStep::Reply(Message::Resume { .. })));
        assert!(matches!(hq_step(&mut session, via_wire(&msg), &hq), HqStep::Refuse { code: RejectCode::OutOfOrder, fatal: true, .. }));
    }
    // A branch that is not enrolled.
    let mut session = HqSession::default();
    let hello =
        Message::Hello { branch: branch_code("XJ"), head: ChainHead::EMPTY, profile_version: 0, down_applied: 0, agent: "t".into() };
    assert!(matches!(hq_step(&mut session, hello, &hq), HqStep::Refuse { code: RejectCode::UnknownBranch, branch: None, fatal: true, .. }));
    // Branch side: nothing but a resume is accepted before the resume.
    let mut sync = BranchSync::new(branch_code("SH"), SyncLimits::default(), SyncTimers::default(), ChainHead::EMPTY, 0, 0);
    assert!(matches!(sync.handle(0, Message::Ack { applied: 0 }, None), Err(SyncError::Protocol(_))));
    let _hello = sync.connect(0, 0, "t");
    assert!(matches!(sync.handle(0, Message::Ack { applied: 0 }, None), Err(SyncError::Protocol(_))));
    assert!(matches!(sync.handle(0, Message::ResendFrom { from: 1 }, None), Err(SyncError::Protocol(_))));
    assert!(matches!(sync.handle(0, Message::Batch(batch), None), Err(SyncError::Protocol(_))));
    assert_eq!(sync.poll_batch(), None, "nothing is sent before the resume");
}

#[test]
fn random_bytes_never_panic_the_frame_decoder() {
    let mut rng = StdRng::seed_from_u64(0xF4A3E);
    let valid: Vec<u8> = [
        Message::Hello { branch: branch_code("SH"), head: ChainHead::EMPTY, profile_version: 1, down_applied: 0, agent: "t".into() },
        Message::Batch(SignedBatch::sign(&branch_code("SH"), vec![vec![1, 2, 3]], &test_key(1))),
        Message::Ack { applied: 3 },
    ]
    .iter()
    .flat_map(Message::to_frame)
    .collect();
    for round in 0..2_000 {
        let mut bytes: Vec<u8> = if round % 2 == 0 {
            (0..rng.gen_range(0..300)).map(|_| rng.gen()).collect()
        } else {
            // Valid frames with a few bytes changed get past the length check.
            let mut b = valid.clone();
            for _ in 0..rng.gen_range(1..4) {
                let i = rng.gen_range(0..b.len());
                b[i] = rng.gen();
            }
            b
        };
        if round % 3 == 0 {
            // A plausible length prefix in front of garbage.
            let len = rng.gen_range(1..=bytes.len().max(1)) as u32;
            let mut framed = len.to_be_bytes().to_vec();
            framed.append(&mut bytes);
            bytes = framed;
        }
        let mut dec = FrameDecoder::default();
        let mut rest = &bytes[..];
        // Bounded: every push is at least one byte, every decode pops a frame or stops.
        while !rest.is_empty() {
            let n = rng.gen_range(1..=rest.len());
            dec.push(&rest[..n]);
            rest = &rest[n..];
            for _ in 0..rest.len() + n {
                match dec.next_message() {
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
        }
        assert!(dec.pending_bytes() <= bytes.len());
    }
}

#[test]
fn signed_batch_with_a_seq_past_u64_max_is_refused_not_a_panic() {
    // Regression: check_links computed `seq + 1` unchecked, so a validly signed batch
    // with seq u64::MAX followed by another entry overflowed (a panic in debug builds,
    // a wrap to 0 that passed the check in release).
    let (hq, _, _) = hq_holding(0, 0);
    let doc = protocol::testkit::sample_doc(1);
    let last = JournalEntry { seq: u64::MAX, prev: EntryHash::GENESIS, doc: doc.clone() }.encode();
    let wrapped = JournalEntry { seq: 0, prev: EntryHash::of(&last), doc }.encode();
    let batch = SignedBatch::sign(&branch_code("SH"), vec![last, wrapped], &test_key(1));
    match hello_then(&hq, ChainHead::EMPTY, batch) {
        HqStep::Refuse { code: RejectCode::Malformed, fatal: false, .. } => {}
        other => panic!("wrapping seqs got {other:?}"),
    }
    assert_eq!(hq.head(&branch_code("SH")), ChainHead::EMPTY);
}

#[test]
fn batch_claiming_another_branch_is_refused() {
    // SH's key signs a body that claims HB, with HB's documents: the signature is good
    // for the SH session, so only the claimed-branch check stands between HB's entries
    // and SH's chain.
    let (hq, _, _) = hq_holding(0, 0);
    let (_, hb_entry, _) = ChainHead::EMPTY.append(protocol::testkit::sample_doc_lines("HB", "HB01", DocType::StockGain, 1, 1));
    let batch = SignedBatch::sign(&branch_code("HB"), vec![hb_entry], &test_key(1));
    match hello_then(&hq, ChainHead::EMPTY, batch) {
        HqStep::Refuse { code: RejectCode::Malformed, fatal: false, reply: Message::Reject { text, .. }, .. } => {
            assert!(text.contains("HB"), "{text}");
        }
        other => panic!("batch claiming HB got {other:?}"),
    }
    // A body that says SH but carries an HB document is refused as well.
    let (_, hb_entry, _) = ChainHead::EMPTY.append(protocol::testkit::sample_doc_lines("HB", "HB01", DocType::StockGain, 1, 1));
    let batch = SignedBatch::sign(&branch_code("SH"), vec![hb_entry], &test_key(1));
    assert!(matches!(hello_then(&hq, ChainHead::EMPTY, batch), HqStep::Refuse { code: RejectCode::Malformed, .. }));
    assert_eq!(hq.snapshot(), { hq_holding(0, 0).0 }.snapshot());
}

// ---------------------------------------------------------------------------------------
// Time as an argument: backoff, stall timer, token expiry. The clock is a plain number of
// milliseconds the test moves by hand; nothing here waits.

fn timed_branch(timers: SyncTimers, head_seq: u64, seed: u64) -> BranchSync {
    // Only the seq matters to the timers; the hash is never compared here.
    let head = ChainHead { seq: head_seq, hash: EntryHash::GENESIS };
    BranchSync::new(branch_code("SH"), SyncLimits::default(), timers, head, 0, seed)
}

/// Fails `attempts` connection attempts in a row and returns the waits they got.
fn failed_attempt_waits(sync: &mut BranchSync, now: &mut u64, attempts: usize) -> Vec<u64> {
    let mut waits = Vec::new();
    for _ in 0..attempts {
        let at = sync.poll_timeout().expect("a disconnected branch always has a reconnect timer");
        assert!(at >= *now);
        if at > *now {
            assert_eq!(sync.handle_timeout(at - 1), None, "the reconnect timer fired early");
        }
        *now = at;
        assert_eq!(sync.handle_timeout(*now), Some(BranchTimeout::Reconnect));
        let _hello = sync.connect(*now, 1, "t");
        // The attempt fails at once (HQ unreachable); a second report changes nothing.
        sync.disconnected(*now);
        sync.disconnected(*now);
        waits.push(sync.poll_timeout().expect("reconnect timer") - *now);
    }
    waits
}

#[test]
fn backoff_grows_with_jitter_and_is_capped() {
    let timers = SyncTimers { reconnect_delay_ms_min: 100, reconnect_delay_ms_max: 1_000, stall_ms: 5_000 };
    let mut sync = timed_branch(timers, 3, 7);
    let mut now = 0;
    // A fresh agent connects at once.
    assert_eq!(sync.poll_timeout(), Some(0));
    let waits = failed_attempt_waits(&mut sync, &mut now, 12);
    let bounds = [100u64, 200, 400, 800, 1_000, 1_000, 1_000, 1_000, 1_000, 1_000, 1_000, 1_000];
    for (wait, bound) in waits.iter().zip(bounds) {
        assert!(*wait >= bound / 2 && *wait <= bound, "wait {wait} outside [{}, {bound}]: {waits:?}", bound / 2);
    }
    // Jitter: the capped waits are not all the same, and the same seed replays them.
    assert!(waits[4..].iter().any(|w| *w != waits[4]), "no jitter: {waits:?}");
    let mut again = timed_branch(timers, 3, 7);
    assert_eq!(failed_attempt_waits(&mut again, &mut 0, 12), waits, "same seed, same waits");
    let mut other = timed_branch(timers, 3, 8);
    assert_ne!(failed_attempt_waits(&mut other, &mut 0, 12), waits, "another seed, other waits");

    // A connection on which HQ acked something resets the backoff to the minimum.
    now = sync.poll_timeout().expect("reconnect timer");
    let _hello = sync.connect(now, 1, "t");
    sync.handle(now, Message::Resume { applied: ChainHead::EMPTY, profile: None }, None).expect("resume");
    let plan = sync.poll_batch().expect("entries to send");
    sync.batch_sent(now, plan.from, 3);
    assert_eq!(sync.handle(now + 10, Message::Ack { applied: 3 }, None), Ok(Some(BranchEvent::Acked { applied: 3 })));
    now += 20;
    sync.disconnected(now);
    let wait = sync.poll_timeout().expect("reconnect timer") - now;
    assert!((50..=100).contains(&wait), "after progress the wait starts over: {wait}");
    assert_eq!(sync.backoff_delay_ms(), 200);

    // A reject also counts as a failed connection.
    now += wait;
    let _hello = sync.connect(now, 1, "t");
    let refused = sync.handle(now, Message::reject(RejectCode::Internal, "disk"), None);
    assert!(matches!(refused, Err(SyncError::Rejected { code: RejectCode::Internal, .. })));
    assert_eq!(*sync.state(), BranchState::Disconnected);
    let wait = sync.poll_timeout().expect("reconnect timer") - now;
    assert!((100..=200).contains(&wait), "{wait}");

    // The bare backoff, as the agent could use it elsewhere.
    let mut b = Backoff::new(10, 30, 1);
    let w: Vec<u64> = (0..4).map(|_| b.next_wait_ms()).collect();
    assert!(w[0] <= 10 && w[1] <= 20 && w[2] <= 30 && w[3] <= 30 && w[3] >= 15, "{w:?}");
    b.reset();
    assert_eq!(b.delay_ms(), 10);
}

#[test]
fn stalled_link_is_detected() {
    let timers = SyncTimers { reconnect_delay_ms_min: 100, reconnect_delay_ms_max: 1_000, stall_ms: 5_000 };
    let mut sync = timed_branch(timers, 3, 1);
    let _hello = sync.connect(0, 1, "t");
    // Waiting for the resume is on the stall clock too.
    assert_eq!(sync.poll_timeout(), Some(5_000));
    sync.handle(100, Message::Resume { applied: ChainHead::EMPTY, profile: None }, None).expect("resume");
    assert_eq!(sync.poll_timeout(), None, "nothing in flight: no timer");
    // Two batches in flight; the clock starts with the first.
    sync.batch_sent(200, 1, 1);
    sync.batch_sent(300, 2, 3);
    assert_eq!(sync.poll_timeout(), Some(5_200));
    // An ack of the first batch is progress: the clock restarts.
    assert_eq!(sync.handle(4_000, Message::Ack { applied: 1 }, None), Ok(Some(BranchEvent::Acked { applied: 1 })));
    assert_eq!(sync.poll_timeout(), Some(9_000));
    assert_eq!(sync.handle_timeout(8_999), None);
    assert_eq!(*sync.state(), BranchState::Streaming);
    // Then nothing for 5 s with a batch in flight: stalled, the link counts as lost.
    assert_eq!(sync.handle_timeout(9_000), Some(BranchTimeout::Stalled { waited_ms: 5_000, inflight: 1 }));
    assert_eq!(*sync.state(), BranchState::Disconnected);
    assert_eq!(sync.inflight(), 0);
    assert_eq!(sync.acked(), 1);
    assert_eq!(sync.poll_batch(), None);
    // HQ acked on that connection, so the reconnect comes after the minimum delay.
    let at = sync.poll_timeout().expect("reconnect timer");
    assert!((9_050..=9_100).contains(&at), "{at}");
    sync.disconnected(9_001);
    assert_eq!(sync.poll_timeout(), Some(at), "the agent's own report of the loss changes nothing");
    // On the next connection everything unacked goes out again.
    let _hello = sync.connect(at, 1, "t");
    // (The timers' branch has fake hashes: its own entry 1 is "GENESIS" too.)
    sync.handle(at, Message::Resume { applied: ChainHead { seq: 1, hash: EntryHash::GENESIS }, profile: None }, Some(EntryHash::GENESIS))
        .expect("resume");
    assert_eq!(sync.poll_batch().map(|p| p.from), Some(2));

    // A hello HQ never answers stalls as well, with nothing in flight.
    let mut quiet = timed_branch(timers, 3, 1);
    let _hello = quiet.connect(20_000, 1, "t");
    assert_eq!(quiet.handle_timeout(24_999), None);
    assert_eq!(quiet.handle_timeout(25_000), Some(BranchTimeout::Stalled { waited_ms: 5_000, inflight: 0 }));
}

#[test]
fn expired_token_is_refused() {
    let sh = branch_code("SH");
    let grant = TokenGrant { branch: sh, expires_unix: 1_000, used: false };
    assert_eq!(grant.redeem(&sh, 999), Ok(()));
    assert_eq!(grant.redeem(&sh, 1_000), Ok(()), "valid through its expiry second");
    assert_eq!(grant.redeem(&sh, 1_001), Err(TokenRefusal::Expired));
    assert_eq!(TokenGrant { used: true, ..grant }.redeem(&sh, 999), Err(TokenRefusal::Used));
    assert_eq!(grant.redeem(&branch_code("HB"), 999), Err(TokenRefusal::WrongBranch));
}

/// One connection of `b` to `hq`, everything delivered at once, until nothing moves:
/// the events the branch saw, or the error it stopped on.
fn exchange(hq: &mut Hq, b: &mut Branch) -> Result<Vec<BranchEvent>, SyncError> {
    let mut session = HqSession::default();
    let mut to_branch = VecDeque::new();
    let mut to_hq = VecDeque::from([b.sync.connect(0, b.profile_version, "t")]);
    let mut events = Vec::new();
    while !(to_hq.is_empty() && to_branch.is_empty()) {
        while let Some(m) = to_hq.pop_front() {
            match hq_step(&mut session, via_wire(&m), hq) {
                HqStep::Reply(r) => to_branch.push_back(r),
                HqStep::Apply { branch, entries, new_head, .. } => {
                    hq.apply(&branch, &entries, new_head).expect("HQ applies what its session accepted");
                    to_branch.push_back(session.applied(new_head));
                }
                HqStep::Refuse { reply, .. } => to_branch.push_back(reply),
                HqStep::DownAcked { .. } => {}
                HqStep::StoreDraft { .. } => panic!("this exchange sends no drafts"),
            }
        }
        while let Some(m) = to_branch.pop_front() {
            let own = b.sync.own_needed(&m).map(|seq| EntryHash::of(&b.journal[(seq - 1) as usize]));
            if let Some(e) = b.sync.handle(0, via_wire(&m), own)? {
                if matches!(e, BranchEvent::Resumed { .. } | BranchEvent::Acked { .. }) {
                    b.acked_persisted = b.sync.acked();
                }
                events.push(e);
            }
        }
        while let Some((batch, _, _)) = b.next_batch(0) {
            to_hq.push_back(Message::Batch(batch));
        }
    }
    Ok(events)
}

/// Posts random documents on `b` until its journal holds `n` entries.
fn post_to(b: &mut Branch, rng: &mut StdRng, n: u64) {
    while b.head.seq < n {
        let doc = b.random_doc(rng);
        let _ = b.post(doc);
    }
}

/// Issue 10: sync 20, copy the data dir, sync 15 more, restore the copy, post 20 more.
/// The restored branch (head 40) used to take HQ's resume at 35 as "acked 35" for
/// documents HQ never received (its 21..35 are not HQ's). It now checks its own entry
/// at HQ's applied seq, finds a different one, halts, and sends nothing more.
#[test]
fn restored_copy_that_posted_again_halts_instead_of_believing_it_is_in_sync() {
    let mut hq = Hq::default();
    hq.enroll(&BRANCHES[0]);
    let mut rng = StdRng::seed_from_u64(10);
    let mut live = Branch::new(&BRANCHES[0], SyncLimits::default());
    post_to(&mut live, &mut rng, 20);
    exchange(&mut hq, &mut live).expect("first sync");
    assert_eq!(live.sync.acked(), 20);
    // The copy: the durable state of the data dir (journal, books, persisted ack).
    let (journal, head, books, acked) = (live.journal.clone(), live.head, live.books.clone(), live.acked_persisted);
    post_to(&mut live, &mut rng, 35);
    live.restart();
    exchange(&mut hq, &mut live).expect("second sync");
    let hq_head = hq.branches[&branch_code("SH")].head;
    assert_eq!(hq_head.seq, 35);
    // Restore the copy and post 20 more (other documents than the lost 21..35).
    let mut restored = Branch::new(&BRANCHES[0], SyncLimits::default());
    restored.profile_version = live.profile_version;
    (restored.journal, restored.head, restored.books, restored.acked_persisted) = (journal, head, books, acked);
    restored.restart();
    let mut other = StdRng::seed_from_u64(11);
    post_to(&mut restored, &mut other, 40);
    assert_ne!(EntryHash::of(&restored.journal[34]), hq_head.hash, "the restored branch's 35 is another document");
    let events = exchange(&mut hq, &mut restored).expect("a halt is an event, not an error");
    assert_eq!(events, vec![BranchEvent::Halted(SyncError::Fork { seq: 35 })]);
    assert_eq!(restored.sync.halted(), Some(&SyncError::Fork { seq: 35 }));
    assert!(restored.sync.acked() <= 20, "acked {} for documents HQ never received", restored.sync.acked());
    assert_eq!(restored.sync.poll_batch(), None, "a halted branch sends nothing");
    assert_eq!(restored.sync.poll_timeout(), None, "and does not reconnect");
    assert_eq!(hq.branches[&branch_code("SH")].head, hq_head, "HQ is unchanged");
    // Whatever HQ says next changes nothing.
    assert_eq!(restored.sync.handle(0, Message::Ack { applied: 40 }, None), Ok(None));
    assert_eq!(restored.sync.acked(), 20);

    // The same copy restored without posting more is behind HQ: refused by HQ, halted.
    let mut behind = Branch::new(&BRANCHES[0], SyncLimits::default());
    (behind.journal, behind.head) = (restored.journal[..20].to_vec(), head);
    behind.restart();
    let events = exchange(&mut hq, &mut behind).expect("halted");
    assert!(matches!(&events[..], [BranchEvent::Halted(SyncError::Rejected { code: RejectCode::BranchBehind, .. })]), "{events:?}");
    assert!(behind.sync.halted().is_some());

    // A copy restored, posted on past HQ's head, whose entry at 35 *is* HQ's (it was
    // copied after the second sync) resumes normally.
    assert!(exchange(&mut hq, &mut live).is_ok());
    post_to(&mut live, &mut rng, 45);
    let events = exchange(&mut hq, &mut live).expect("normal resume");
    assert!(matches!(events.first(), Some(BranchEvent::Resumed { applied: 35, .. })), "{events:?}");
    assert_eq!(live.sync.acked(), 45);
}
