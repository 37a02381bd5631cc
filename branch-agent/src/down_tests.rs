//! The branch's down receiver on a real sled store: forged, replayed, reordered and
//! other-branch messages refused with nothing changed; applied ones survive a reopen; a
//! Reverse order posts the red-letter reversal, or waits with what blocks it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use protocol::codes::{BranchCode, OperatorId, ProductCode, WarehouseCode};
use protocol::date::BusinessDate;
use protocol::document::{DocNumber, DocType, Draft, Line};
use protocol::down::{DownBody, DownMessage, DownQueue, ResolutionOrder, SignedDown};
use protocol::profile::{BranchProfile, Product};
use protocol::{Decimal, SigningKey};

use super::*;
use crate::store::Identity;

fn sh() -> BranchCode {
    BranchCode::new("SH").expect("code")
}

fn hq_key() -> SigningKey {
    SigningKey::from_bytes(&[9; 32])
}

fn create(dir: &Path) {
    let product = Product { name: "p".into(), unit: "pcs".into(), retail_price: None, prices: Vec::new(), category: None };
    let profile = BranchProfile {
        branch: sh(),
        name: "Shanghai".into(),
        warehouses: BTreeSet::from([WarehouseCode::new("SH01").expect("warehouse")]),
        products: BTreeMap::from([(ProductCode::new("P0000").expect("product"), product)]),
        credit_limits: BTreeMap::new(),
        overdrafts: Default::default(),
        people: Vec::new(),
        approvals: Default::default(),
        scope: None,
        parties: Default::default(),
        version: 1,
    };
    let identity = Identity { branch: sh(), signing_key: [7; 32], hq_fingerprint: [0; 32] };
    Store::create(dir, &identity, &profile).expect("create");
    // `create` dropped its sled handle a moment ago; sled lets go of the lock shortly after.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match store_hq_key(dir, hq_key().verifying_key().to_bytes()) {
            Ok(()) => return,
            Err(e) if std::time::Instant::now() < deadline && format!("{e:#}").contains("in use") => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Err(e) => panic!("hq key: {e:#}"),
        }
    }
}

/// Opens what a test dropped a moment ago (sled lets go of its lock shortly after).
fn reopen(path: &Path) -> Store {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match Store::open(path) {
            Ok(s) => return s,
            Err(e) if std::time::Instant::now() < deadline && format!("{e:#}").contains("in use") => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Err(e) => panic!("reopening: {e:#}"),
        }
    }
}

fn draft(doc_type: DocType, qty: i64) -> Draft {
    Draft {
        doc_type,
        date: BusinessDate::new(2026, 6, 1).expect("date"),
        operator: OperatorId::new("tester").expect("operator"),
        warehouse: WarehouseCode::new("SH01").expect("warehouse"),
        counterparty: None,
        memo: String::new(),
        payment: None,
        lines: vec![Line::priced(ProductCode::new("P0000").expect("product"), Decimal::from(qty), Decimal::new(350, 2))],
        ext: Default::default(),
    }
}

fn flags(n: u64) -> Vec<SignedDown> {
    let mut q = DownQueue::new(sh());
    let number = DocNumber::parse("PZ-SH-0101-001").expect("number");
    (1..=n)
        .map(|i| {
            let body = DownBody::Flag { branch_seq: i, doc_number: number.clone(), reason: format!("flag {i}") };
            q.enqueue(body, 1_000 + i, &hq_key()).expect("enqueue").1
        })
        .collect()
}

fn count(down: &Down, store: &Store) -> u64 {
    down.view(store).expect("view")["count"].as_u64().expect("count")
}

#[test]
fn forged_replayed_reordered_and_foreign_messages_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    create(&path);
    let store = Store::open(&path).expect("open");
    let down = Down::open(&store).expect("down");
    let msgs = flags(3);

    assert!(matches!(down.receive(&store, &msgs[0].to_bytes()), Ok(Received::Applied { seq: 1 })));
    // Replayed: acked again, nothing stored twice.
    assert!(matches!(down.receive(&store, &msgs[0].to_bytes()), Ok(Received::Replayed { applied: 1 })));
    // Out of order: 3 before 2.
    let gap = down.receive(&store, &msgs[2].to_bytes()).expect_err("gap refused");
    assert!(format!("{gap:#}").contains("out of order"), "{gap:#}");
    // Forged: the same message signed by another key.
    let msg = DownMessage {
        branch: sh(),
        seq: 2,
        issued_unix: 1,
        body: DownBody::Flag { branch_seq: 2, doc_number: DocNumber::parse("PZ-SH-0101-001").expect("number"), reason: "forged".into() },
    };
    let forged = SignedDown::sign(&msg, &SigningKey::from_bytes(&[1; 32])).expect("sign");
    assert!(format!("{:#}", down.receive(&store, &forged.to_bytes()).expect_err("forged")).contains("not signed by HQ"));
    // A flipped byte of a genuine message.
    let mut tampered = msgs[1].clone();
    tampered.body_bytes[5] ^= 1;
    assert!(down.receive(&store, &tampered.to_bytes()).is_err());
    // Another branch's message, genuinely signed.
    let mut other = DownQueue::new(BranchCode::new("BJ").expect("code"));
    let (_, for_bj) = other.enqueue(msg.body.clone(), 1, &hq_key()).expect("enqueue");
    assert!(format!("{:#}", down.receive(&store, &for_bj.to_bytes()).expect_err("other branch")).contains("for branch BJ"));
    // Garbage.
    assert!(down.receive(&store, &[0xff; 40]).is_err());

    assert_eq!(down.applied_seq(), 1);
    assert_eq!(count(&down, &store), 1);
    assert!(down.view(&store).expect("view")["last_refusal"].is_string());

    assert!(matches!(down.receive(&store, &msgs[1].to_bytes()), Ok(Received::Applied { seq: 2 })));
    drop(down);
    drop(store);
    // Durable: a reopened store resumes at 2 and takes 3.
    let store = reopen(&path);
    let down = Down::open(&store).expect("down");
    assert_eq!(down.applied_seq(), 2);
    assert!(matches!(down.receive(&store, &msgs[1].to_bytes()), Ok(Received::Replayed { applied: 2 })));
    assert!(matches!(down.receive(&store, &msgs[2].to_bytes()), Ok(Received::Applied { seq: 3 })));
    assert_eq!(count(&down, &store), 3);
}

#[test]
fn a_reverse_order_posts_the_reversal_or_waits_with_its_blocker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    create(&path);
    let store = Store::open(&path).expect("open");
    let down = Down::open(&store).expect("down");
    let gain = store.post(draft(DocType::StockGain, 5)).expect("gain");
    let loss = store.post(draft(DocType::StockLoss, 4)).expect("loss");
    let by = OperatorId::new("auditor").expect("operator");
    let mut q = DownQueue::new(sh());
    let order = |q: &mut DownQueue, seq: u64, number: &str| {
        let body = DownBody::Resolution {
            branch_seq: seq,
            doc_number: DocNumber::parse(number).expect("number"),
            order: ResolutionOrder::Reverse,
            by,
            why: "out of scope".into(),
        };
        q.enqueue(body, 5, &hq_key()).expect("enqueue").1
    };
    let date = BusinessDate::new(2026, 6, 2).expect("date");
    // Reversing the gain of 5 would leave -1 in stock after the loss of 4: blocked.
    let m1 = order(&mut q, gain.seq, &gain.number);
    assert!(matches!(down.receive(&store, &m1.to_bytes()), Ok(Received::Applied { seq: 1 })));
    assert_eq!(down.retry_orders(&store, date).expect("retry"), 0);
    let view = down.view(&store).expect("view");
    assert_eq!(view["orders"][0]["state"], "pending", "{view}");
    assert!(view["orders"][0]["blocked_by"].is_string(), "{view}");
    assert_eq!(store.head().seq, 2);
    // Reversing the loss gives the stock back; then the gain's reversal can post too.
    let m2 = order(&mut q, loss.seq, &loss.number);
    assert!(matches!(down.receive(&store, &m2.to_bytes()), Ok(Received::Applied { seq: 2 })));
    assert_eq!(down.retry_orders(&store, date).expect("retry"), 1);
    assert_eq!(down.retry_orders(&store, date).expect("retry"), 1);
    assert_eq!(down.retry_orders(&store, date).expect("retry"), 0, "each order posts once");
    assert_eq!(store.head().seq, 4);
    let reversed: Vec<_> =
        (3..=4).map(|s| store.entry(s).expect("read").expect("entry").doc.header.ext.reverses.expect("a reversal").to_string()).collect();
    assert_eq!(reversed, vec![loss.number.clone(), gain.number.clone()]);
    let view = down.view(&store).expect("view");
    assert!(view["orders"].as_array().expect("orders").iter().all(|o| o["state"] == "done"), "{view}");
}

fn transfer_order(id: u64, qty: i64) -> protocol::transfer::TransferOrder {
    protocol::transfer::TransferOrder {
        id,
        from: sh(),
        from_warehouse: WarehouseCode::new("SH01").expect("warehouse"),
        to: BranchCode::new("HB").expect("code"),
        to_warehouse: WarehouseCode::new("HB01").expect("warehouse"),
        transit: WarehouseCode::new("HBZT").expect("warehouse"),
        lines: vec![protocol::transfer::OrderLine {
            product: ProductCode::new("P0000").expect("product"),
            qty: Decimal::from(qty),
            unit_price: Decimal::ZERO,
        }],
        priced: false,
        expected: None,
        by: OperatorId::new("audit1").expect("operator"),
        memo: String::new(),
        issued_unix: 1,
        request: None,
    }
}

#[test]
fn a_forged_or_replayed_transfer_order_is_refused_and_the_branch_ships_only_what_was_ordered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    create(&path);
    let store = Store::open(&path).expect("open");
    let down = Down::open(&store).expect("down");
    store.post(draft(DocType::StockGain, 100)).expect("stock");
    let mut q = DownQueue::new(sh());
    let (_, genuine) = q.enqueue(DownBody::TransferOrder(transfer_order(1, 30)), 1, &hq_key()).expect("enqueue");
    // Forged: an order for 90 signed by another key is refused; no order is stored.
    let msg = DownMessage { branch: sh(), seq: 1, issued_unix: 1, body: DownBody::TransferOrder(transfer_order(1, 90)) };
    let forged = SignedDown::sign(&msg, &SigningKey::from_bytes(&[1; 32])).expect("sign");
    assert!(down.receive(&store, &forged.to_bytes()).is_err());
    assert!(crate::transfers::orders(&store).expect("orders").is_empty());
    let date = BusinessDate::new(2026, 6, 2).expect("date");
    let me = OperatorId::new("tester").expect("operator");
    let none = crate::transfers::shipment_draft(&store, 1, &[], date, me).map(|_| ()).expect_err("no order yet");
    assert_eq!(none.0, axum::http::StatusCode::NOT_FOUND);
    // The genuine order; its replay changes nothing.
    assert!(matches!(down.receive(&store, &genuine.to_bytes()), Ok(Received::Applied { seq: 1 })));
    assert!(matches!(down.receive(&store, &genuine.to_bytes()), Ok(Received::Replayed { applied: 1 })));
    assert_eq!(crate::transfers::orders(&store).expect("orders").len(), 1);
    // Shipping more than ordered is refused; all of it posts once, and then nothing is left.
    let p = ProductCode::new("P0000").expect("product");
    let over = crate::transfers::shipment_draft(&store, 1, &[(p, Decimal::from(31))], date, me).map(|_| ()).expect_err("over");
    assert!(over.1.contains("30 of P0000 left to ship"), "{}", over.1);
    let all = crate::transfers::shipment_draft(&store, 1, &[], date, me).expect("draft");
    store.post(all).expect("shipment posts");
    let again = crate::transfers::shipment_draft(&store, 1, &[], date, me).map(|_| ()).expect_err("twice");
    assert!(again.1.contains("shipped in full"), "{}", again.1);
    assert_eq!(store.with_books(|b| b.position(&(WarehouseCode::new("SH01").expect("w"), p))).qty, Decimal::from(70));
}
