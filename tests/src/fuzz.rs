//! Structured random inputs for every decoder and verifier of a wire, storage or token
//! format, and for the posting engine (issue 10), on stable Rust: no cargo-fuzz, no
//! nightly. Each input is derived from `(seed, index)` alone, so a failure replays with
//! `cargo run --release -p branchline-tests --bin fuzz -- --seed S --from I --inputs 1`.
//!
//! Inputs are mostly mutations of valid encodings (bit flips, interesting bytes, cuts,
//! repeats, splices, huge varints where a length goes) so they get past the first check,
//! plus purely random bytes. Targets: `wire` frames and payloads (`Message`), `batch`
//! bodies and signed batches (opened against the signing key), `journal` entries,
//! `record` sealed records, `down` signed messages, `session_token`, enroll tokens,
//! books checkpoints, and posting: random documents, figures up to the validation limits
//! and beyond, against books built by the same random documents.
//!
//! The check is: no panic (caught per input and reported with its replay command), and no
//! single allocation above [`ALLOCATION_BYTES_MAX`] (the [`CountingAlloc`] a binary or
//! test installs as its global allocator records the largest).
//!
//! Must not: start processes, touch the disk or the network, or read the clock.

use std::alloc::{GlobalAlloc, Layout, System};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};

use protocol::batch::{decode_body, SignedBatch};
use protocol::books::{checkpoint, post, Books, PostContext};
use protocol::codes::{AccountCode, BranchCode, OperatorId, PartyCode, ProductCode, WarehouseCode};
use protocol::date::BusinessDate;
use protocol::document::{
    CostMethod, DocExt, DocType, Document, Draft, EntryLine, Line, LineRole, OpeningBalance, OpeningKind, Period, Settlement,
};
use protocol::down::{DownBody, DownMessage, SignedDown};
use protocol::journal::{ChainHead, EntryHash, JournalEntry};
use protocol::wire::{FrameDecoder, Message, RejectCode};
use protocol::{Decimal, SigningKey};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The largest single allocation any input may cause. Frames and batches stop at a few
/// MiB; anything near this means a decoder trusted a length it was given.
pub const ALLOCATION_BYTES_MAX: usize = 64 * 1024 * 1024;

/// A global allocator that remembers the largest single allocation (install it with
/// `#[global_allocator] static A: CountingAlloc = CountingAlloc;`).
pub struct CountingAlloc;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

/// The largest allocation since the last call (0 unless `CountingAlloc` is installed).
pub fn take_largest_allocation() -> usize {
    LARGEST.swap(0, Ordering::Relaxed)
}

/// The formats and the engine, one input each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    Frames,
    Payload,
    BatchBody,
    BatchOpen,
    Journal,
    Record,
    Down,
    SessionToken,
    EnrollToken,
    Checkpoint,
    Posting,
}

impl Target {
    pub const ALL: [Target; 11] = [
        Target::Frames,
        Target::Payload,
        Target::BatchBody,
        Target::BatchOpen,
        Target::Journal,
        Target::Record,
        Target::Down,
        Target::SessionToken,
        Target::EnrollToken,
        Target::Checkpoint,
        Target::Posting,
    ];
}

/// Why a run failed: the input that did it, and how to replay it.
#[derive(Debug)]
pub struct Failure {
    pub seed: u64,
    pub index: u64,
    pub target: Target,
    pub what: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "input {} ({:?}) failed: {}\nreplay: cargo run --release -p branchline-tests --bin fuzz -- --seed {} --from {} --inputs 1",
            self.index, self.target, self.what, self.seed, self.index
        )
    }
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Report {
    pub inputs: u64,
    pub per_target: std::collections::BTreeMap<String, u64>,
    /// Inputs a decoder or the engine accepted (the rest were refused, as most must be).
    pub accepted: u64,
    pub largest_allocation: usize,
}

/// Valid encodings of every format, the raw material of mutations.
pub struct Corpus {
    key: SigningKey,
    hq_key: SigningKey,
    branch: BranchCode,
    session_key: [u8; 32],
    frames: Vec<Vec<u8>>,
    payloads: Vec<Vec<u8>>,
    batches: Vec<SignedBatch>,
    entries: Vec<Vec<u8>>,
    records: Vec<Vec<u8>>,
    downs: Vec<Vec<u8>>,
    session_tokens: Vec<String>,
    enroll_tokens: Vec<String>,
    checkpoints: Vec<(Vec<u8>, u64, EntryHash)>,
}

fn code<T>(r: Result<T, protocol::error::CodeError>) -> T {
    r.expect("the corpus uses fixed, valid codes")
}

impl Corpus {
    pub fn new() -> Corpus {
        let key = SigningKey::from_bytes(&[7; 32]);
        let hq_key = SigningKey::from_bytes(&[9; 32]);
        let branch = code(BranchCode::new("SH"));
        let mut rng = StdRng::seed_from_u64(1);
        // A journal of random documents that post.
        let mut books = Books::default();
        let mut head = ChainHead::EMPTY;
        let mut entries = Vec::new();
        let mut docs: Vec<Document> = Vec::new();
        for serial in 1..=200u32 {
            let Some(doc) = random_doc(&mut rng, serial, &docs) else { continue };
            let Ok(p) = post(&books, &doc, PostContext::default()) else { continue };
            books.apply(&doc, &p);
            let (_, bytes, next) = head.append(doc.clone());
            head = next;
            entries.push(bytes);
            docs.push(doc);
            if entries.len() >= 24 {
                break;
            }
        }
        let batches: Vec<SignedBatch> =
            (0..entries.len().min(6)).map(|i| SignedBatch::sign(&branch, entries[i..(i + 4).min(entries.len())].to_vec(), &key)).collect();
        let profile = protocol::profile::BranchProfile {
            branch,
            name: "上海".into(),
            warehouses: [code(WarehouseCode::new("SH01"))].into_iter().collect(),
            products: Default::default(),
            credit_limits: Default::default(),
            version: 3,
            people: Vec::new(),
            scope: None,
            parties: Default::default(),
            approvals: Default::default(),
            overdrafts: Default::default(),
        };
        let messages = vec![
            Message::Hello { branch, head, profile_version: 3, down_applied: 2, agent: "branch-agent/0.1".into() },
            Message::Resume { applied: head, profile: Some(profile.clone()) },
            Message::Batch(batches[0].clone()),
            Message::Ack { applied: 5 },
            Message::ResendFrom { from: 3 },
            Message::reject(RejectCode::Fork, "entry 5 differs"),
            Message::Enroll { token: "BL1.SH.x".into(), branch_key: key.verifying_key().to_bytes() },
            Message::Enrolled { profile: profile.clone(), hq_down_key: hq_key.verifying_key().to_bytes() },
            Message::Profile { profile },
            Message::Down(vec![1, 2, 3]),
            Message::DownAck { seq: 4 },
        ];
        let frames: Vec<Vec<u8>> = messages.iter().map(|m| m.to_frame()).collect();
        let payloads = frames.iter().map(|f| f[protocol::wire::FRAME_HEADER_BYTES..].to_vec()).collect();
        let number = docs.first().map(|d| d.header.number.clone());
        let mut downs = Vec::new();
        if let Some(n) = number {
            let bodies = [
                DownBody::Rejection { branch_seq: 1, doc_number: n.clone(), reason: "out of scope".into() },
                DownBody::Flag { branch_seq: 2, doc_number: n, reason: "old version".into() },
                DownBody::Approval { draft_id: 3, approved: true, by: code(OperatorId::new("hq-admin")), note: "ok".into() },
            ];
            for (i, body) in bodies.into_iter().enumerate() {
                let m = DownMessage { branch, seq: i as u64 + 1, issued_unix: 1_780_000_000, body };
                if let Ok(s) = SignedDown::sign(&m, &hq_key) {
                    downs.push(s.to_bytes());
                }
            }
        }
        let session_key = [5u8; 32];
        let session_tokens = (0..4)
            .map(|i| protocol::session_token::mint(&session_key, &code(OperatorId::new("sh-li")), 1_000 + i, 3600, [i as u8; 16]))
            .collect();
        let enroll_tokens =
            (0..3).map(|i| protocol::token::EnrollToken { branch, secret: [i; 16], hq_cert_fingerprint: [i + 1; 32] }.encode()).collect();
        let mut records: Vec<Vec<u8>> = entries.iter().take(6).map(|e| protocol::record::seal_bytes(e)).collect();
        records.push(protocol::record::seal(&head));
        records.push(protocol::record::seal(&42u64));
        let checkpoints = vec![(checkpoint::seal(&books, head.seq, head.hash), head.seq, head.hash)];
        Corpus {
            key,
            hq_key,
            branch,
            session_key,
            frames,
            payloads,
            batches,
            entries,
            records,
            downs,
            session_tokens,
            enroll_tokens,
            checkpoints,
        }
    }
}

impl Default for Corpus {
    fn default() -> Self {
        Corpus::new()
    }
}

/// `base` with 1..=8 structural mutations, or (one time in sixteen) random bytes.
fn mutate(rng: &mut StdRng, base: &[u8], other: &[u8]) -> Vec<u8> {
    if rng.gen_ratio(1, 16) {
        let n = rng.gen_range(0..256);
        return (0..n).map(|_| rng.gen()).collect();
    }
    let mut v = base.to_vec();
    for _ in 0..rng.gen_range(1..=8) {
        let len = v.len();
        match rng.gen_range(0..9) {
            0 if len > 0 => {
                let i = rng.gen_range(0..len);
                v[i] ^= 1 << rng.gen_range(0..8);
            }
            1 if len > 0 => {
                let i = rng.gen_range(0..len);
                v[i] = [0x00, 0x01, 0x7f, 0x80, 0xff, 0xfe, 0x40][rng.gen_range(0..7)];
            }
            2 => v.truncate(rng.gen_range(0..=len)),
            3 if len > 0 => {
                // A huge postcard varint where a length or count may sit.
                let i = rng.gen_range(0..len);
                let huge: &[u8] =
                    [&[0xff, 0xff, 0xff, 0xff, 0x0f][..], &[0xff; 10][..], &[0x80, 0x80, 0x80, 0x80, 0x08][..]][rng.gen_range(0..3)];
                v.splice(i..(i + 1).min(len), huge.iter().copied());
            }
            4 if len > 0 => {
                let a = rng.gen_range(0..len);
                let b = rng.gen_range(a..=len.min(a + 64));
                let chunk = v[a..b].to_vec();
                let at = rng.gen_range(0..=v.len());
                v.splice(at..at, chunk);
            }
            5 if len > 0 => {
                let a = rng.gen_range(0..len);
                let b = rng.gen_range(a..=len);
                v.drain(a..b);
            }
            6 if !other.is_empty() => {
                let cut = rng.gen_range(0..=v.len());
                let from = rng.gen_range(0..other.len());
                v.truncate(cut);
                v.extend_from_slice(&other[from..]);
            }
            7 => {
                let at = rng.gen_range(0..=v.len());
                let extra: Vec<u8> = (0..rng.gen_range(1..16)).map(|_| rng.gen()).collect();
                v.splice(at..at, extra);
            }
            _ if len >= 2 => {
                let i = rng.gen_range(0..len - 1);
                v.swap(i, i + 1);
            }
            _ => {}
        }
    }
    v
}

fn pick<'a, T>(rng: &mut StdRng, xs: &'a [T]) -> &'a T {
    &xs[rng.gen_range(0..xs.len())]
}

/// A mutation of one of `xs`, spliced with another of them.
fn mutate_one(rng: &mut StdRng, xs: &[Vec<u8>]) -> Vec<u8> {
    let (a, b) = (rng.gen_range(0..xs.len()), rng.gen_range(0..xs.len()));
    mutate(rng, &xs[a], &xs[b])
}

fn mutated_text(rng: &mut StdRng, base: &str, other: &str) -> String {
    let bytes = mutate(rng, base.as_bytes(), other.as_bytes());
    // Mostly valid UTF-8 (tokens arrive as text); sometimes lossy garbage.
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// A figure: small, at the validation limits, beyond them, odd scales, sometimes negative.
fn figure(rng: &mut StdRng) -> Decimal {
    let d = match rng.gen_range(0..8) {
        0 => Decimal::new(rng.gen_range(0..10_000), rng.gen_range(0..=4)),
        1 => Decimal::new(rng.gen_range(1..1_000_000_000), 0),
        2 => Decimal::from(1_000_000_000u64),
        3 => Decimal::from(1_000_000u64),
        4 => Decimal::new(rng.gen_range(1..i64::MAX), rng.gen_range(0..=28)),
        5 => Decimal::from_i128_with_scale(rng.gen_range(0..=79_228_162_514_264_337_593_543_950_335i128), rng.gen_range(0..=6)),
        6 => Decimal::from(1_000_000_000_000_000u64),
        _ => Decimal::new(rng.gen_range(1..100), 2),
    };
    if rng.gen_ratio(1, 20) {
        -d
    } else {
        d
    }
}

const PRODUCTS: [&str; 4] = ["P0", "P1", "P2", "P3"];

/// A random document of any type (validation decides whether it is one), dated in June
/// or July 2026; reversals name earlier documents.
fn random_doc(rng: &mut StdRng, serial: u32, earlier: &[Document]) -> Option<Document> {
    let doc_type = *pick(rng, DocType::ALL);
    let date = BusinessDate::new(2026, rng.gen_range(6..=7), rng.gen_range(1..=28)).ok()?;
    let lines: Vec<Line> = (0..rng.gen_range(0..=4))
        .map(|_| {
            let product = ProductCode::new(*pick(rng, &PRODUCTS)).expect("fixed code");
            let qty = if rng.gen_bool(0.8) { Decimal::new(rng.gen_range(1..200), rng.gen_range(0..=2)) } else { figure(rng) };
            let price = if rng.gen_bool(0.8) { Decimal::new(rng.gen_range(0..100_000), rng.gen_range(0..=4)) } else { figure(rng) };
            let mut l = Line::priced(product, qty, price);
            if doc_type == DocType::Assembly {
                l.role = if rng.gen_bool(0.5) { LineRole::Consumed } else { LineRole::Produced };
            }
            if rng.gen_ratio(1, 30) {
                l.amount = figure(rng);
            }
            l
        })
        .collect();
    let party = |rng: &mut StdRng| PartyCode::new(["200102", "S001", "D01"][rng.gen_range(0..3)]).ok();
    let account = |rng: &mut StdRng| AccountCode::parse(["1001", "1002.ICBC", "6601.X", "1405"][rng.gen_range(0..4)]).ok();
    let mut ext = DocExt::default();
    if rng.gen_bool(0.5) {
        ext.money = Some(if rng.gen_bool(0.7) { Decimal::new(rng.gen_range(1..1_000_000), 2) } else { figure(rng) });
    }
    if rng.gen_bool(0.5) {
        ext.account = account(rng);
    }
    if rng.gen_bool(0.2) {
        ext.to_account = account(rng);
    }
    if rng.gen_bool(0.3) {
        ext.to_warehouse = WarehouseCode::new(["SH01", "SH02"][rng.gen_range(0..2)]).ok();
    }
    if rng.gen_bool(0.2) {
        ext.category = Some("OFFICE".into());
    }
    if rng.gen_bool(0.1) {
        ext.period = Some(Period { year: 2026, month: rng.gen_range(5..=7) });
    }
    if rng.gen_bool(0.1) {
        ext.cost_method = Some([CostMethod::MovingAverage, CostMethod::Fifo, CostMethod::Lifo][rng.gen_range(0..3)]);
    }
    if !earlier.is_empty() && rng.gen_ratio(1, 8) {
        ext.reverses = Some(pick(rng, earlier).header.number.clone());
    }
    if !earlier.is_empty() && rng.gen_ratio(1, 8) {
        ext.settles = vec![Settlement { doc: pick(rng, earlier).header.number.clone(), amount: figure(rng) }];
    }
    if rng.gen_ratio(1, 8) {
        let kind = match rng.gen_range(0..3) {
            0 => OpeningKind::Receivable(party(rng)?),
            1 => OpeningKind::Payable(party(rng)?),
            _ => OpeningKind::Account(account(rng)?),
        };
        ext.balances = vec![OpeningBalance { kind, amount: figure(rng) }];
    }
    if rng.gen_ratio(1, 8) {
        let amount = figure(rng);
        ext.entries = vec![
            EntryLine { account: account(rng)?, debit: amount, credit: Decimal::ZERO },
            EntryLine { account: account(rng)?, debit: Decimal::ZERO, credit: amount },
        ];
    }
    let payment = (doc_type == DocType::Retail).then(|| {
        let total: Decimal = lines.iter().map(|l| l.amount).fold(Decimal::ZERO, |a, b| a.checked_add(b).unwrap_or(a));
        protocol::document::Payment { method: protocol::document::PaymentMethod::Cash, tendered: total, change: Decimal::ZERO }
    });
    let draft = Draft {
        doc_type,
        date,
        operator: OperatorId::new("sh-li").ok()?,
        warehouse: WarehouseCode::new(if rng.gen_ratio(1, 10) { "SH02" } else { "SH01" }).ok()?,
        counterparty: if rng.gen_bool(0.7) { party(rng) } else { None },
        memo: String::new(),
        payment,
        lines,
        ext,
    };
    draft.number(BranchCode::new("SH").ok()?, serial).ok()
}

/// One input for `target`; `Ok(true)` if it was accepted.
fn one(c: &Corpus, target: Target, rng: &mut StdRng) -> bool {
    match target {
        Target::Frames => {
            let mut stream = Vec::new();
            for _ in 0..rng.gen_range(1..4) {
                stream.extend(mutate_one(rng, &c.frames));
            }
            let mut dec = FrameDecoder::default();
            let mut accepted = false;
            // Fed in random pieces, as a stream arrives.
            let mut at = 0;
            while at < stream.len() {
                let n = rng.gen_range(1..=stream.len() - at);
                dec.push(&stream[at..at + n]);
                at += n;
                while let Ok(Some(_)) = dec.next_message() {
                    accepted = true;
                }
            }
            accepted
        }
        Target::Payload => Message::from_payload(&mutate_one(rng, &c.payloads)).is_ok(),
        Target::BatchBody => {
            let body = pick(rng, &c.batches).body.clone();
            let other = pick(rng, &c.entries).clone();
            decode_body(&mutate(rng, &body, &other)).is_ok()
        }
        Target::BatchOpen => {
            // Mutate body or signature; sometimes re-sign a mutated body, so the decoding
            // behind the signature check is reached with hostile bytes too.
            let mut b = pick(rng, &c.batches).clone();
            match rng.gen_range(0..3) {
                0 => {
                    let other = pick(rng, &c.entries).clone();
                    b.body = mutate(rng, &b.body, &other);
                }
                1 => {
                    let mut sig = b.signature.to_bytes();
                    let i = rng.gen_range(0..sig.len());
                    sig[i] ^= 1 << rng.gen_range(0..8);
                    b.signature = protocol::Signature::from_bytes(&sig);
                }
                _ => {
                    let other = pick(rng, &c.entries).clone();
                    let body = mutate(rng, &b.body, &other);
                    b = signed_raw(&c.key, body);
                }
            }
            b.open(&c.branch, &c.key.verifying_key()).is_ok()
        }
        Target::Journal => JournalEntry::decode(&mutate_one(rng, &c.entries)).is_ok(),
        Target::Record => {
            let bytes = mutate_one(rng, &c.records);
            let a = protocol::record::open_bytes(&"fuzz", &bytes).is_ok();
            let b = protocol::record::open::<ChainHead>(&"fuzz", &bytes).is_ok();
            let d = protocol::record::open::<Document>(&"fuzz", &bytes).is_ok();
            a || b || d
        }
        Target::Down => {
            let bytes = mutate_one(rng, &c.downs);
            match SignedDown::from_bytes(&bytes) {
                Ok(s) => {
                    let receiver = protocol::down::DownReceiver::new(c.branch, 0);
                    let _ = receiver.receive(&s, &c.hq_key.verifying_key());
                    s.open(&c.hq_key.verifying_key()).is_ok()
                }
                Err(_) => false,
            }
        }
        Target::SessionToken => {
            let (a, b) = (pick(rng, &c.session_tokens).clone(), pick(rng, &c.session_tokens).clone());
            let t = mutated_text(rng, &a, &b);
            protocol::session_token::verify(&c.session_key, &t, rng.gen_range(0..5_000)).is_ok()
        }
        Target::EnrollToken => {
            let (a, b) = (pick(rng, &c.enroll_tokens).clone(), pick(rng, &c.enroll_tokens).clone());
            let t = mutated_text(rng, &a, &b);
            protocol::token::EnrollToken::parse(&t).is_ok()
        }
        Target::Checkpoint => {
            let (bytes, seq, hash) = pick(rng, &c.checkpoints).clone();
            let other = pick(rng, &c.records).clone();
            let bytes = mutate(rng, &bytes, &other);
            let head = if rng.gen_bool(0.8) { seq } else { rng.gen() };
            let held = if rng.gen_bool(0.8) { Some(hash) } else { None };
            checkpoint::open("fuzz", &bytes, head, |_| held).is_ok()
        }
        Target::Posting => {
            // Random books (built by random documents that post), then random documents.
            let mut books = Books::default();
            let mut docs = Vec::new();
            let mut accepted = false;
            for serial in 1..=rng.gen_range(1..=12u32) {
                let Some(doc) = random_doc(rng, serial, &docs) else { continue };
                if let Ok(p) = post(&books, &doc, PostContext::default()) {
                    books.apply(&doc, &p);
                    accepted = true;
                }
                docs.push(doc);
            }
            let _ = books.digest();
            let _ = protocol::books::reports::trial_balance(&books);
            accepted
        }
    }
}

/// A batch whose signature is right for `body`, whatever `body` holds.
fn signed_raw(key: &SigningKey, body: Vec<u8>) -> SignedBatch {
    use ed25519_dalek::Signer;
    let signature = key.sign(&body);
    SignedBatch { body, signature }
}

/// Runs inputs `from..from + inputs` of `seed`, calling `progress` every 100,000.
pub fn run(c: &Corpus, seed: u64, from: u64, inputs: u64, mut progress: impl FnMut(u64)) -> Result<Report, Failure> {
    let mut report = Report::default();
    take_largest_allocation();
    for index in from..from.saturating_add(inputs) {
        let mut rng = StdRng::seed_from_u64(seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let target = *pick(&mut rng, &Target::ALL);
        let result = catch_unwind(AssertUnwindSafe(|| one(c, target, &mut rng)));
        let largest = take_largest_allocation();
        report.largest_allocation = report.largest_allocation.max(largest);
        match result {
            Ok(accepted) => report.accepted += u64::from(accepted),
            Err(panic) => {
                let what = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "a panic".into());
                return Err(Failure { seed, index, target, what: format!("panic: {what}") });
            }
        }
        if largest > ALLOCATION_BYTES_MAX {
            return Err(Failure { seed, index, target, what: format!("allocated {largest} bytes at once") });
        }
        *report.per_target.entry(format!("{target:?}")).or_default() += 1;
        report.inputs += 1;
        if report.inputs % 100_000 == 0 {
            progress(report.inputs);
        }
    }
    Ok(report)
}
