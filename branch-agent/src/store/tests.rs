//! The branch store on a real sled directory: a failed write never lets a seq be reused,
//! a halt survives a restart, checkpoints shorten the replay (a bad one costs only time),
//! concurrent posts share flushes and are numbered once.

use std::collections::{BTreeMap, BTreeSet};

use protocol::codes::{OperatorId, ProductCode, WarehouseCode};
use protocol::date::BusinessDate;
use protocol::document::{DocType, Line};
use protocol::profile::Product;
use protocol::Decimal;

use std::path::Path;

use protocol::books::checkpoint;
use protocol::document::Draft;
use protocol::journal::EntryHash;

use super::disk::{CHECKPOINT_KEY, CHECKPOINT_TREE};
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
                if std::time::Instant::now() < deadline && (format!("{e:#}").contains("lock") || format!("{e:#}").contains("in use")) =>
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
