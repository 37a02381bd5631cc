//! How fast HQ merges branch batches, beside raw sled doing the same writes.
//!
//! A benchmark, not a test: it prints figures and asserts only that the work it timed was
//! the work intended (every document applied, nothing quarantined). Run with
//! `cargo bench -p hq --bench apply`; results and how to read them are in BENCHMARKS.md.
//!
//! What is timed, per batch of 1,000 documents × 10 lines, is what `hq::server` does for
//! one `Batch` frame: decode the frame, `HqSession::handle` (signature, body decode, chain
//! check) and `Store::apply` (posting into the books on this thread while a second thread
//! stages the entry index and signed batch in sled, then the small commit write of the
//! head, flush and fsync). The baseline writes into a second, fresh sled the exact keys
//! and values HQ writes for each batch, with the same flush policy: one `apply_batch` and
//! one flush (plus fsync) per batch, nothing else. Which keys those are is learnt first
//! from a scratch HQ run (see `learn_writes`), and the two stores are compared at the
//! end. The HQ and raw runs alternate batch by batch, so both see the disk in the same
//! state.
//!
//! Knobs (environment): `APPLY_BENCH_BATCHES` measured batches (default 30),
//! `APPLY_BENCH_WARMUP` warm-up batches (default 5, at least 1: the first one brings the
//! opening stock), `APPLY_BENCH_CATALOG` products in HQ's catalog (default 10, the ones
//! the documents use), `APPLY_BENCH_DIR` where the stores go (default: the system temp
//! dir; must be a real disk for flush to mean anything).
//!
//! The machine's load average is printed before and after: on a 2-core machine a
//! compiler running beside the benchmark takes CPU from the HQ path (which is mostly CPU)
//! more than from raw sled (which is mostly I/O wait), and lowers the ratio.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use hq::store::{Ctx, EntryIndex, State, Store};
use protocol::batch::SignedBatch;
use protocol::books::{post, Books, PostContext};
use protocol::codes::{BranchCode, ProductCode, WarehouseCode};
use protocol::document::{DocType, Document};
use protocol::journal::{ChainHead, VerifiedEntry};
use protocol::profile::Product;
use protocol::record;
use protocol::sync::{HqSession, HqStep};
use protocol::testkit::{sample_doc_lines, test_key};
use protocol::wire::{Message, FRAME_HEADER_BYTES};

const DOCS_PER_BATCH: usize = 1_000;
const LINES_PER_DOC: usize = 10;
const LINES_PER_BATCH: usize = DOCS_PER_BATCH * LINES_PER_DOC;
const BRANCH: &str = "SH";
const WAREHOUSES: [&str; 4] = ["SH01", "SH02", "SH03", "SH04"];
/// Fixed so runs are comparable; HQ only records it.
const NOW_UNIX: u64 = 1_780_000_000;

/// Targets from the issue.
const TARGET_RATIO_MIN: f64 = 0.50;
const TARGET_LINES_PER_SEC_MIN: f64 = 250_000.0;

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v.parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// One pre-built batch: what the branch sends, and the documents in it (for the JSON size
/// and the posting breakdown).
struct Prepared {
    docs: Vec<Document>,
    signed: SignedBatch,
    frame: Vec<u8>,
    first_seq: u64,
}

/// Document `k` (0-based over the whole run). Batch 0 is the opening stock (stock gains
/// in every warehouse); after that receipts and sales alternate, so sales take part of a
/// position and posting does the moving-average division, as in a real day.
fn doc_type_of(k: usize) -> DocType {
    if k < DOCS_PER_BATCH {
        DocType::StockGain
    } else if k.is_multiple_of(2) {
        DocType::PurchaseReceipt
    } else {
        DocType::Sale
    }
}

fn prepare(batches: usize, key: &protocol::SigningKey) -> (Vec<Prepared>, ChainHead) {
    let branch = BranchCode::new(BRANCH).expect("constant branch code is valid");
    let mut head = ChainHead::EMPTY;
    let mut out = Vec::with_capacity(batches);
    for b in 0..batches {
        let first_seq = head.seq + 1;
        let mut docs = Vec::with_capacity(DOCS_PER_BATCH);
        let mut entries = Vec::with_capacity(DOCS_PER_BATCH);
        for i in 0..DOCS_PER_BATCH {
            let k = b * DOCS_PER_BATCH + i;
            let warehouse = WAREHOUSES[(k / 2) % WAREHOUSES.len()];
            let serial = u32::try_from(k + 1).expect("bench runs far fewer than 4e9 documents");
            let doc = sample_doc_lines(BRANCH, warehouse, doc_type_of(k), serial, LINES_PER_DOC);
            let (_, bytes, next) = head.append(doc.clone());
            head = next;
            docs.push(doc);
            entries.push(bytes);
        }
        let signed = SignedBatch::sign(&branch, entries, key);
        let frame = Message::Batch(signed.clone()).to_frame();
        out.push(Prepared { docs, signed, frame, first_seq });
    }
    (out, head)
}

/// A fresh HQ store with branch `SH` (all warehouses), the products the documents use, and
/// the bench key enrolled.
fn hq_setup(dir: &Path, key: &protocol::SigningKey, catalog: usize) -> (Store, State) {
    let store = Store::open(dir).expect("open HQ store");
    let mut st = store.load().expect("load empty HQ store");
    for i in 0..catalog.max(LINES_PER_DOC) {
        let code = ProductCode::new(format!("P{i:04}")).expect("sample product code is valid");
        store
            .add_product(
                &mut st,
                code,
                Product { name: format!("product {i}"), unit: "pcs".into(), retail_price: None, prices: Vec::new(), category: None },
            )
            .expect("add product");
    }
    let branch = BranchCode::new(BRANCH).expect("constant branch code is valid");
    let warehouses: BTreeSet<WarehouseCode> = WAREHOUSES.iter().map(|w| WarehouseCode::new(*w).expect("constant warehouse")).collect();
    let secret = store.add_branch(&mut st, branch, "Shanghai".into(), warehouses, NOW_UNIX, 3600).expect("add branch");
    store.enroll(&mut st, &branch, &secret, key.verifying_key().to_bytes(), NOW_UNIX).expect("enroll");
    (store, st)
}

/// Sled writes of one batch: key and value bytes, in no particular order.
type Writes = Vec<(Vec<u8>, Vec<u8>)>;

/// The contents of HQ's sled tree.
type Snapshot = BTreeMap<Vec<u8>, Vec<u8>>;

/// Everything in the store at `dir`. HQ keeps one tree; another would mean this benchmark
/// no longer sees all that HQ writes, so it stops.
fn snapshot(dir: &Path) -> Snapshot {
    let db = sled::Config::new().path(dir).open().expect("open store to read it");
    for name in db.tree_names() {
        assert!(
            name == "hq" || name == "__sled__default",
            "HQ's store has a tree {:?} this benchmark does not know; update it",
            String::from_utf8_lossy(&name)
        );
    }
    assert!(db.is_empty(), "HQ's store uses sled's default tree; update this benchmark");
    let tree = db.open_tree("hq").expect("HQ tree");
    tree.iter().map(|kv| kv.expect("read store")).map(|(k, v)| (k.to_vec(), v.to_vec())).collect()
}

/// What `Store::apply` writes for each batch, learnt by running every batch through a
/// scratch HQ and comparing its store before and after, so the baseline follows the store
/// whatever its layout. Entry index (`e`) and batch (`x`) records belong to the batch
/// their sequence numbers fall in; any other key apply writes (the branch record, stock
/// positions if the layout has them) is counted as rewritten by every batch, which is
/// what apply does with them when, as here, every batch touches every position.
fn learn_writes(dir: &Path, key: &protocol::SigningKey, catalog: usize, batches: &[Prepared], head: ChainHead) -> Vec<Writes> {
    drop(hq_setup(dir, key, catalog));
    let before = snapshot(dir);
    {
        let store = Store::open(dir).expect("reopen scratch HQ store");
        let mut st = store.load().expect("load scratch HQ store");
        run(&store, &mut st, batches, head, None);
    }
    let after = snapshot(dir);
    assert!(before.keys().all(|k| after.contains_key(k)), "apply deleted keys; update this benchmark to replay deletions");
    let mut writes: Vec<Writes> = vec![Writes::new(); batches.len()];
    // `e`/`x` keys are prefix, branch, 0, seq (8 bytes) — and for batch pieces a piece
    // number after that — so the seq is the 8 bytes after the first 0.
    let batch_of = |k: &[u8]| {
        let sep = k.iter().skip(1).position(|b| *b == 0).expect("branch separator") + 1;
        let seq = u64::from_be_bytes(k[sep + 1..sep + 9].try_into().expect("8 bytes"));
        usize::try_from((seq - 1) / DOCS_PER_BATCH as u64).expect("small")
    };
    for (k, v) in after {
        if before.get(&k) == Some(&v) {
            continue;
        }
        match k[0] {
            b'e' | b'x' => writes[batch_of(&k)].push((k, v)),
            _ => writes.iter_mut().for_each(|w| w.push((k.clone(), v.clone()))),
        }
    }
    for (i, w) in writes.iter().enumerate() {
        let count = |prefix: u8| w.iter().filter(|(k, _)| k[0] == prefix).count();
        assert_eq!(count(b'e'), DOCS_PER_BATCH, "batch {i}: expected one entry index per document");
        assert!(count(b'x') >= 2, "batch {i}: expected the batch record (a manifest and its pieces)");
    }
    writes
}

/// Time of each phase of one batch on the HQ path.
#[derive(Clone, Copy, Default)]
struct HqTimes {
    frame_decode: Duration,
    handle: Duration,
    apply: Duration,
}

impl HqTimes {
    fn total(&self) -> Duration {
        self.frame_decode + self.handle + self.apply
    }
}

/// Runs every batch through the HQ path as the server does and, if `raw` names a
/// directory and the writes of each batch, the raw sled baseline right beside each, so
/// both see the disk in the same state.
fn run(
    store: &Store,
    st: &mut State,
    batches: &[Prepared],
    head: ChainHead,
    raw: Option<(&Path, &[Writes])>,
) -> (Vec<HqTimes>, Vec<Duration>) {
    let branch = BranchCode::new(BRANCH).expect("constant branch code is valid");
    let mut session = HqSession::default();
    let hello = Message::Hello { branch, head, profile_version: st.profile_version, down_applied: 0, agent: "bench".into() };
    let facts = Ctx { st, store }.facts(&session, &hello);
    match session.handle(hello, facts) {
        HqStep::Reply(Message::Resume { .. }) => {}
        other => panic!("hello not accepted: {other:?}"),
    }
    let raw = raw.map(|(dir, writes)| {
        let db = sled::Config::new().path(dir).open().expect("open raw sled");
        let tree = db.open_tree("hq").expect("raw tree");
        // The same flush policy as HQ's store: sled's flush, then an fsync of its data file.
        let data = std::fs::File::open(dir.join("db")).expect("raw sled data file");
        (db, tree, writes, data)
    });

    let mut hq_times = Vec::with_capacity(batches.len());
    let mut raw_times = Vec::with_capacity(batches.len());
    for (i, p) in batches.iter().enumerate() {
        // Handing sled the bytes is part of writing them, as it is for HQ.
        let mut raw_write = || {
            if let Some((db, tree, writes, data)) = &raw {
                let t0 = Instant::now();
                let mut batch = sled::Batch::default();
                for (k, v) in &writes[i] {
                    batch.insert(k.as_slice(), v.as_slice());
                }
                tree.apply_batch(batch).expect("raw apply_batch");
                db.flush().expect("raw flush");
                data.sync_data().expect("raw fsync");
                raw_times.push(t0.elapsed());
            }
        };
        // Alternate which goes first, so neither always follows the other's fsync.
        let raw_first = i % 2 == 1;
        if raw_first {
            raw_write();
        }

        let t0 = Instant::now();
        let msg = Message::from_payload(&p.frame[FRAME_HEADER_BYTES..]).expect("bench frame decodes");
        let t1 = Instant::now();
        let facts = Ctx { st, store }.facts(&session, &msg);
        let step = session.handle(msg, facts);
        let t2 = Instant::now();
        let HqStep::Apply { branch, entries, new_head, batch, batch_first_seq } = step else {
            panic!("batch at seq {} was not accepted for apply: {step:?}", p.first_seq);
        };
        let outcome = store.apply(st, &branch, entries, new_head, &batch, batch_first_seq, NOW_UNIX).expect("apply");
        // The server drops the batch after the ack; its freeing is part of the cost.
        drop(batch);
        let t3 = Instant::now();
        assert_eq!(outcome.applied, DOCS_PER_BATCH as u64, "every document should post: {:?}", outcome.quarantined.first());
        hq_times.push(HqTimes { frame_decode: t1 - t0, handle: t2 - t1, apply: t3 - t2 });

        if !raw_first {
            raw_write();
        }
    }
    (hq_times, raw_times)
}

/// HQ's start on the store the run left: the first `load` replays the whole journal (and,
/// as it is longer than the checkpoint threshold, writes a books checkpoint); the second
/// starts from that checkpoint. Returns both times; the books must agree.
fn time_restarts(hq_dir: &Path) -> (Duration, Duration) {
    let branch = BranchCode::new(BRANCH).expect("constant branch code is valid");
    let load = || {
        let t = Instant::now();
        let store = Store::open(hq_dir).expect("reopen HQ store");
        let st = store.load().expect("load HQ store");
        (t.elapsed(), st.books[&branch].snapshot().expect("books in memory after the apply").digest())
    };
    let (full, a) = load();
    let (from_checkpoint, b) = load();
    assert_eq!(a, b, "books from the checkpoint differ from a full replay");
    (full, from_checkpoint)
}

/// Checks that the raw run left what HQ's store holds for every key it wrote.
fn check_same_contents(hq_dir: &Path, raw_dir: &Path) {
    let hq = snapshot(hq_dir);
    let raw = snapshot(raw_dir);
    for (k, v) in &raw {
        assert_eq!(hq.get(k), Some(v), "raw sled and HQ differ under {}", String::from_utf8_lossy(k));
    }
}

/// Parts of the HQ path timed on their own, with the same public functions, for the
/// split: signature check, open (signature + decode + links), posting into the branch's
/// books as `Store::apply` does, and sealing the entry index and batch records.
struct Parts {
    verify: Vec<Duration>,
    open: Vec<Duration>,
    posting: Vec<Duration>,
    seal: Vec<Duration>,
}

fn time_parts(batches: &[Prepared], key: &protocol::SigningKey, st: &State) -> Parts {
    let branch = BranchCode::new(BRANCH).expect("constant branch code is valid");
    let vk = key.verifying_key();
    let profile = hq::store::profile_of(st, &branch).expect("branch exists");
    let mut books = Books::default();
    let mut out = Parts { verify: vec![], open: vec![], posting: vec![], seal: vec![] };
    for p in batches {
        let t0 = Instant::now();
        assert!(p.signed.signature_ok(&vk));
        out.verify.push(t0.elapsed());

        let t0 = Instant::now();
        let entries: Vec<VerifiedEntry> = p.signed.open(&branch, &vk).expect("opens");
        out.open.push(t0.elapsed());

        let t0 = Instant::now();
        for e in &entries {
            let posting = post(&books, &e.entry.doc, PostContext::under(&profile)).expect("posts");
            books.apply(&e.entry.doc, &posting);
        }
        out.posting.push(t0.elapsed());

        let t0 = Instant::now();
        let mut sealed_bytes = 0;
        for e in &entries {
            let idx = EntryIndex {
                batch_first_seq: p.first_seq,
                index_in_batch: (e.entry.seq - p.first_seq) as u32,
                hash: e.hash,
                quarantined: None,
                mark: None,
            };
            sealed_bytes += record::seal(&idx).len();
        }
        sealed_bytes += record::seal(&p.signed).len();
        std::hint::black_box(sealed_bytes);
        out.seal.push(t0.elapsed());
    }
    out
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn sum(v: &[Duration]) -> Duration {
    v.iter().sum()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn lines_per_sec(lines: usize, d: Duration) -> f64 {
    lines as f64 / d.as_secs_f64()
}

fn main() {
    let warmup = env_usize("APPLY_BENCH_WARMUP", 5).max(1);
    let measured = env_usize("APPLY_BENCH_BATCHES", 30).max(1);
    let catalog = env_usize("APPLY_BENCH_CATALOG", LINES_PER_DOC);
    let root = match std::env::var_os("APPLY_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .expect("temp dir");
    let total = warmup + measured;
    println!(
        "apply bench: {warmup} warm-up + {measured} measured batches of {DOCS_PER_BATCH} documents x {LINES_PER_DOC} lines, stores under {}",
        root.path().display()
    );

    println!("machine: {}", edge::machine::describe());

    let key = test_key(7);
    let t = Instant::now();
    let (batches, head) = prepare(total, &key);
    println!("prepared and signed {total} batches in {:.0} ms (branch side, not timed below)", ms(t.elapsed()));

    let writes = learn_writes(&root.path().join("learn"), &key, catalog, &batches, head);
    let hq_dir = root.path().join("hq");
    let raw_dir = root.path().join("raw");
    let t = Instant::now();
    let (store, mut st) = hq_setup(&hq_dir, &key, catalog);
    println!("HQ store set up with {} products in {:.0} ms", st.products.len(), ms(t.elapsed()));
    let parts = time_parts(&batches, &key, &st);
    let (hq_times, raw_times) = run(&store, &mut st, &batches, head, Some((&raw_dir, &writes)));
    drop((store, st));
    check_same_contents(&hq_dir, &raw_dir);
    let restart = time_restarts(&hq_dir);
    let hq_measured = &hq_times[warmup..];
    let raw_measured = &raw_times[warmup..];
    let writes = &writes[warmup..];
    let keys_per_batch = writes.iter().map(Vec::len).sum::<usize>() as f64 / measured as f64;
    let bytes_per_batch = writes.iter().flatten().map(|(k, v)| k.len() + v.len()).sum::<usize>() as f64 / measured as f64;

    let lines = measured * LINES_PER_BATCH;
    let hq_total: Duration = hq_measured.iter().map(HqTimes::total).sum();
    let raw_total = sum(raw_measured);
    let hq_lps = lines_per_sec(lines, hq_total);
    let raw_lps = lines_per_sec(lines, raw_total);
    let hq_med = median(hq_measured.iter().map(HqTimes::total).collect());
    let raw_med = median(raw_measured.to_vec());
    let ratio = hq_lps / raw_lps;

    println!();
    println!("writes per batch (both runs): {keys_per_batch:.0} keys, {:.0} KiB keys+values", bytes_per_batch / 1024.0);
    println!("{:<28} {:>14} {:>16} {:>16}", "", "total lines/s", "median ms/batch", "median lines/s");
    println!("{:<28} {:>14.0} {:>16.2} {:>16.0}", "HQ apply (verify..flush)", hq_lps, ms(hq_med), lines_per_sec(LINES_PER_BATCH, hq_med));
    println!("{:<28} {:>14.0} {:>16.2} {:>16.0}", "raw sled (same writes)", raw_lps, ms(raw_med), lines_per_sec(LINES_PER_BATCH, raw_med));
    println!("ratio HQ / raw sled (totals): {ratio:.2}  (median-based: {:.2})", raw_med.as_secs_f64() / hq_med.as_secs_f64());
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    println!(
        "targets: ratio >= {TARGET_RATIO_MIN:.2}: {}; >= {TARGET_LINES_PER_SEC_MIN:.0} lines/s: {}",
        verdict(ratio >= TARGET_RATIO_MIN),
        verdict(hq_lps >= TARGET_LINES_PER_SEC_MIN)
    );

    println!();
    println!("HQ per-batch split (median ms over measured batches):");
    let per = |f: fn(&HqTimes) -> Duration| median(hq_measured.iter().map(f).collect());
    println!("  frame decode              {:>8.2}", ms(per(|t| t.frame_decode)));
    println!("  handle (sig+decode+chain) {:>8.2}", ms(per(|t| t.handle)));
    println!("  apply (post+seal+write+flush) {:>4.2}", ms(per(|t| t.apply)));
    println!("re-measured with the same functions, outside HQ (median ms):");
    let verify = median(parts.verify[warmup..].to_vec());
    let open = median(parts.open[warmup..].to_vec());
    let posting = median(parts.posting[warmup..].to_vec());
    let seal = median(parts.seal[warmup..].to_vec());
    println!("  signature verify          {:>8.2}", ms(verify));
    println!("  body+entry decode, links  {:>8.2}", ms(open.saturating_sub(verify)));
    println!("  posting into the books    {:>8.2}", ms(posting));
    println!("  sealing index+batch records {:>6.2}", ms(seal));
    println!("  raw sled write+flush      {:>8.2}", ms(raw_med));
    // Posting runs beside the staging write, so apply is not the sum of its parts: what
    // the overlap saves is the serial sum minus what apply took.
    let serial = posting + seal + raw_med;
    let apply_med = per(|t| t.apply);
    println!("  overlap saved (posting + sealing + raw sled - apply) {:.2}", ms(serial.saturating_sub(apply_med)));

    println!();
    println!(
        "restart with {} journal entries: full replay {:.0} ms (then writes a checkpoint), from the checkpoint {:.0} ms ({:.1}x faster)",
        total * DOCS_PER_BATCH,
        ms(restart.0),
        ms(restart.1),
        restart.0.as_secs_f64() / restart.1.as_secs_f64()
    );

    // Wire size: the postcard batch as framed on the wire vs the same documents as JSON.
    let frame_bytes: usize = batches[warmup..].iter().map(|p| p.frame.len()).sum();
    let body_bytes: usize = batches[warmup..].iter().map(|p| p.signed.body.len()).sum();
    let json_bytes: usize = batches[warmup..].iter().map(|p| serde_json::to_vec(&p.docs).expect("documents encode as JSON").len()).sum();
    let per_line = |b: usize| b as f64 / lines as f64;
    println!();
    println!("wire bytes per document line:");
    println!("  postcard batch frame (signed, framed) {:>7.1}", per_line(frame_bytes));
    println!("  postcard batch body only              {:>7.1}", per_line(body_bytes));
    println!("  JSON of the same documents            {:>7.1}", per_line(json_bytes));
    println!("  postcard frame / JSON                 {:>7.2}", frame_bytes as f64 / json_bytes as f64);

    let summary = [
        ("hq_lines_per_sec", format!("{hq_lps:.0}")),
        ("raw_sled_lines_per_sec", format!("{raw_lps:.0}")),
        ("ratio", format!("{ratio:.2}")),
        ("wire_postcard_bytes_per_line", format!("{:.1}", per_line(frame_bytes))),
        ("wire_json_bytes_per_line", format!("{:.1}", per_line(json_bytes))),
    ];
    println!();
    println!("load average after: {}", edge::machine::load_average());
    println!("summary {}", summary.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" "));
}
