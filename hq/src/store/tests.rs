//! The store's tests: crash between staging and commit, checkpoints, quarantine
//! verdicts against catalogs of any size. Each opens a fresh store in a temp dir.

use std::collections::BTreeSet;
use std::path::Path;

use protocol::batch::SignedBatch;
use protocol::books::{checkpoint, Books, Position};
use protocol::codes::{BranchCode, ProductCode, WarehouseCode};
use protocol::journal::{ChainHead, EntryHash, VerifiedEntry};
use protocol::profile::Product;
use protocol::sync::HqContext;

use super::keys::key;
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
            Product { name: "p".into(), unit: String::new(), retail_price: None, prices: Vec::new(), category: None },
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

fn is_lock_error(e: &StoreError) -> bool {
    let text = e.to_string();
    matches!(e, StoreError::InUse { .. }) || text.contains("lock") || text.contains("in use")
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
    // Posted under the version HQ holds now, as an up-to-date branch would.
    let under = |mut d: protocol::document::Document| {
        d.header.profile_version = st.profile_version;
        d
    };
    let (entries, head, signed) = batch_of(
        vec![
            under(sample_doc_lines("SH", "SH01", DocType::StockGain, 1, 1)),
            under(sample_doc_lines("SH", "SH01", DocType::StockGain, 2, 2)),
            under(sample_doc_lines("SH", "HB01", DocType::StockGain, 3, 1)),
            // Cannot post at all: more stock out than there is.
            under(sample_doc_lines("SH", "SH01", DocType::StockLoss, 4, 3)),
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
    let digest = st.books[&sh].snapshot().expect("books").digest();
    drop(store);
    let store = reopen(dir.path(), "reopen again");
    let st = store.load().expect("reload again");
    assert_eq!(st.books[&sh].snapshot().expect("books").digest(), digest, "replay gives the books memory had");
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
    assert_eq!((replayed, books.digest()), (2, st.books[&sh].snapshot().expect("books").digest()));

    store.tree.insert(key(b's', &[b"SH"]), checkpoint::seal(&Books::default(), 4, EntryHash([9; 32]))).expect("write");
    let (books, replayed) = store.replay_counted(&sh).expect("replay");
    assert_eq!((replayed, books.digest()), (6, st.books[&sh].snapshot().expect("books").digest()));
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
    assert_eq!((replayed, books.digest()), (0, st.books[&sh].snapshot().expect("books").digest()));
}

#[test]
fn catalog_and_scope_checks_do_not_depend_on_catalog_size() {
    // Posting sees only the products the batch names: the verdicts must be those of
    // the whole catalog, small or large. A document that breaks the version it claims
    // is applied and quarantined (the branch, running the same code, has it in its
    // books); one that cannot post at all is quarantined and left out.
    for extra in [0, 50] {
        let (outcome, pos) = apply_mixed(extra);
        assert_eq!(outcome.applied, 3, "catalog of {}", extra + 1);
        let seqs: Vec<u64> = outcome.quarantined.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(seqs, [2, 3, 4]);
        assert!(outcome.quarantined[0].1.contains("P0001"), "{:?}", outcome.quarantined);
        assert!(outcome.quarantined[1].1.contains("HB01"), "{:?}", outcome.quarantined);
        assert_eq!(outcome.unapplied, [4]);
        assert!(outcome.flagged.is_empty());
        assert_eq!(pos.qty, Decimal::TWO);
    }
}

/// Issue 11 item 7: a cash/bank overdraft allowance is a new profile version (the one
/// HQ then posts the branch's documents against), survives a restart, and goes when
/// removed.
#[test]
fn an_overdraft_allowance_is_a_profile_version_and_survives_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, mut st, sh) = setup(dir.path(), 0);
    let bank = protocol::codes::AccountCode::parse("1002.ICBC").expect("account");
    let allow = Decimal::new(50_000, 2);
    let before = st.profile_version;
    store.set_overdraft(&mut st, sh, bank, Some(allow)).expect("set");
    let v = st.profile_version;
    assert_eq!(v, before + 1);
    assert_eq!(st.profile_source(&sh).expect("branch").whole().overdraft(&bank), allow);
    assert_eq!(store.issued_profile(&sh, v).expect("read").expect("issued").overdraft(&bank), allow);
    drop((store, st));
    let store = reopen(dir.path(), "reopen after setting an overdraft");
    let mut st = store.load().expect("load");
    assert_eq!(st.profile_source(&sh).expect("branch").whole().overdraft(&bank), allow);
    store.set_overdraft(&mut st, sh, bank, None).expect("remove");
    assert_eq!(st.profile_source(&sh).expect("branch").whole().overdraft(&bank), Decimal::ZERO);
}

/// Copies a store's files as they are on disk now: what a crash at this instant leaves.
fn crash_copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for item in std::fs::read_dir(from).expect("read dir") {
        let item = item.expect("dir entry");
        let target = to.join(item.file_name());
        if item.file_type().expect("file type").is_dir() {
            crash_copy(&item.path(), &target);
        } else {
            std::fs::copy(item.path(), target).expect("copy");
        }
    }
}

#[test]
fn many_branches_apply_concurrently_each_batch_once_and_acked_only_when_durable() {
    const BRANCHES: usize = 8;
    const BATCHES: u32 = 12;
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, mut st, _) = setup(dir.path(), 0);
    let codes: Vec<(BranchCode, String)> = (0..BRANCHES)
        .map(|i| {
            let code = BranchCode::new(format!("B{}", char::from(b'A' + i as u8))).expect("code");
            let w = format!("W{i:02}");
            let warehouses = BTreeSet::from([WarehouseCode::new(&w).expect("warehouse")]);
            store.add_branch(&mut st, code, format!("branch {i}"), warehouses, 0, 60).expect("add branch");
            (code, w)
        })
        .collect();
    let version = st.profile_version;
    let state = std::sync::Mutex::new(st);
    let ingest_done = std::sync::atomic::AtomicBool::new(false);
    let acked: Vec<ChainHead> = std::thread::scope(|scope| {
        // A reader takes snapshots all the while: each is a whole number of batches.
        let reader = scope.spawn(|| {
            let mut reads = 0u64;
            while !ingest_done.load(std::sync::atomic::Ordering::Acquire) {
                let slots = apply::lock(&state).book_slots();
                for (code, snap) in snapshots(&slots) {
                    let w = &codes.iter().find(|(c, _)| *c == code).expect("known branch").1;
                    let pos = snap.position(&(WarehouseCode::new(w).expect("warehouse"), ProductCode::new("P0000").expect("product")));
                    assert_eq!(pos.qty % Decimal::TWO, Decimal::ZERO, "a snapshot holds half a batch of {code}: {}", pos.qty);
                    reads += 1;
                }
            }
            reads
        });
        let writers: Vec<_> = codes
            .iter()
            .map(|(code, w)| {
                let (store, state) = (&store, &state);
                scope.spawn(move || {
                    let mut head = ChainHead::EMPTY;
                    for b in 0..BATCHES {
                        let doc = |serial| {
                            let mut d = sample_doc_lines(code.as_str(), w, DocType::StockGain, serial, 1);
                            d.header.profile_version = version;
                            d
                        };
                        let mut entries = Vec::new();
                        let mut next = head;
                        for d in [doc(2 * b + 1), doc(2 * b + 2)] {
                            let (entry, bytes, n) = next.append(d);
                            entries.push(VerifiedEntry { entry, hash: n.hash, bytes });
                            next = n;
                        }
                        let signed = SignedBatch::sign(code, entries.iter().map(|e| e.bytes.clone()).collect(), &test_key(1));
                        let slot = apply::lock(state).books_slot(code).expect("slot");
                        let mut work = slot.writer();
                        let outcome =
                            store.apply_shared(state, &slot, &mut work, code, entries, next, &signed, head.seq + 1, 0).expect("apply");
                        assert_eq!((outcome.applied, outcome.quarantined.len()), (2, 0));
                        head = next;
                    }
                    head
                })
            })
            .collect();
        let heads = writers.into_iter().map(|w| w.join().expect("writer")).collect();
        ingest_done.store(true, std::sync::atomic::Ordering::Release);
        assert!(reader.join().expect("reader") > 0);
        heads
    });
    let (flushes, tickets) = store.group_commit_stats();
    assert_eq!(tickets, (BRANCHES as u64) * u64::from(BATCHES), "every batch waited for a flush that covered it");
    assert!(flushes <= tickets);
    // A crash right after the last ack, with no flush after it: every acked head is there.
    let copy = tempfile::tempdir().expect("temp dir");
    crash_copy(&dir.path().join("hq"), &copy.path().join("hq"));
    let st = apply::lock(&state);
    let crashed = Store::open(&copy.path().join("hq")).expect("open the copy");
    let again = crashed.load().expect("load the copy");
    for ((code, w), head) in codes.iter().zip(&acked) {
        assert_eq!(again.branches[code].head, *head, "{code}: the acked head survived");
        assert_eq!(again.branches[code].docs_applied, 2 * u64::from(BATCHES), "{code}: each document applied once");
        let key = (WarehouseCode::new(w).expect("warehouse"), ProductCode::new("P0000").expect("product"));
        let live = st.books[code].snapshot().expect("books");
        let replayed = again.books[code].snapshot().expect("books");
        assert_eq!(replayed.digest(), live.digest(), "{code}: replay gives the books memory had");
        assert_eq!(live.position(&key).qty, replayed.position(&key).qty);
    }
}

/// 反结账 at HQ: a reopen document nobody ordered is quarantined with the reason (still
/// applied: the branch's books have it); one an auditor ordered is taken, once.
#[test]
fn a_reopen_nobody_ordered_is_quarantined_and_an_ordered_one_is_taken_once() {
    use protocol::codes::OperatorId;
    use protocol::date::BusinessDate;
    use protocol::document::{DocExt, Draft, Period};
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, mut st, sh) = setup(dir.path(), 0);
    st.down.key = Some(protocol::SigningKey::from_bytes(&[3; 32]));
    let june = Period { year: 2026, month: 6 };
    let doc = |t: DocType, day: u8, serial: u32| {
        let d = Draft {
            doc_type: t,
            date: BusinessDate::new(2026, 7, day).expect("date"),
            operator: OperatorId::new("li").expect("operator"),
            warehouse: WarehouseCode::new("SH01").expect("warehouse"),
            counterparty: None,
            memo: String::new(),
            payment: None,
            lines: Vec::new(),
            ext: DocExt { period: Some(june), ..Default::default() },
        };
        d.number_under(sh, serial, st.profile_version).expect("valid")
    };
    let (close, reopen_1, close_2, reopen_2) = (
        doc(DocType::PeriodClose, 1, 1),
        doc(DocType::PeriodReopen, 2, 1),
        doc(DocType::PeriodClose, 3, 2),
        doc(DocType::PeriodReopen, 4, 2),
    );
    let (entries, head, signed) = batch_of(vec![close, reopen_1], ChainHead::EMPTY);
    let outcome = store.apply(&mut st, &sh, entries, head, &signed, 1, 0).expect("apply");
    assert_eq!(outcome.quarantined.len(), 1, "{:?}", outcome.quarantined);
    assert!(outcome.quarantined[0].1.contains("no HQ auditor ordered"), "{:?}", outcome.quarantined);
    assert!(outcome.unapplied.is_empty(), "applied all the same");
    // Ordered now: the next reopen of June is taken, and the order is used up.
    store.order_reopen(&mut st, &sh, june, OperatorId::new("audit1").expect("operator"), "late invoice".into(), 0).expect("order");
    let (entries, head2, signed) = batch_of(vec![close_2, reopen_2], head);
    let outcome = store.apply(&mut st, &sh, entries, head2, &signed, 3, 0).expect("apply");
    assert!(outcome.quarantined.is_empty(), "{:?}", outcome.quarantined);
    assert!(st.reopens.iter().all(|r| r.posted.is_some()));
}
