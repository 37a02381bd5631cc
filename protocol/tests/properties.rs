//! Properties of the pure core, checked with proptest over generated inputs: encodings
//! round-trip exactly, tampering is always caught, framing does not care how bytes are
//! split, hostile bytes never panic a decoder, and the posting rules keep the books
//! consistent.
//!
//! Runs are deterministic: the generator seed is fixed unless `PROPTEST_RNG_SEED` is set,
//! and failures are not persisted to files (a failure prints its minimal input).

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngSeed};
use protocol::batch::{decode_body, SignedBatch};
use protocol::books::{post, Books, LayerOp, Position, PostContext, StockKey};
use protocol::codes::{BranchCode, OperatorId, PartyCode, ProductCode, WarehouseCode};
use protocol::date::BusinessDate;
use protocol::document::{DocNumber, DocType, Document, Draft, Line};
use protocol::error::{BatchError, ChainError};
use protocol::journal::{check_links, place_run, ChainHead, EntryHash, JournalEntry, Placement, VerifiedEntry};
use protocol::profile::{BranchProfile, Product};
use protocol::testkit::{sample_doc_lines, test_key};
use protocol::wire::{FrameDecoder, Message, RejectCode};
use protocol::{Decimal, Signature};
use serde::{Deserialize, Serialize};

/// A fixed generator seed and no regression files, so every run checks the same cases.
fn config(cases: u32) -> Config {
    let mut c = Config::with_cases(cases);
    if matches!(c.rng_seed, RngSeed::Random) {
        c.rng_seed = RngSeed::Fixed(0x0B5A_11CE);
    }
    c.failure_persistence = None;
    c
}

// ---------------------------------------------------------------------------------------
// Strategies.

fn branch_code() -> impl Strategy<Value = BranchCode> {
    "[A-Z]{1,8}".prop_map(|s| BranchCode::new(s).expect("regex matches the rule"))
}
fn warehouse_code() -> impl Strategy<Value = WarehouseCode> {
    "[A-Za-z0-9_-]{1,16}".prop_map(|s| WarehouseCode::new(s).expect("regex matches the rule"))
}
fn product_code() -> impl Strategy<Value = ProductCode> {
    "[A-Za-z0-9._-]{1,32}".prop_map(|s| ProductCode::new(s).expect("regex matches the rule"))
}
fn operator() -> impl Strategy<Value = OperatorId> {
    // Up to 10 chars of at most 3 bytes: within the 32-byte limit.
    "[a-z0-9.@\u{4e00}-\u{4e2f}]{1,10}".prop_map(|s| OperatorId::new(s).expect("regex matches the rule"))
}
fn party() -> impl Strategy<Value = PartyCode> {
    "[A-Za-z0-9_-]{1,32}".prop_map(|s| PartyCode::new(s).expect("regex matches the rule"))
}
fn date() -> impl Strategy<Value = BusinessDate> {
    (2000u16..=2199, 1u8..=12, 1u8..=31).prop_filter_map("a real calendar date", |(y, m, d)| BusinessDate::new(y, m, d).ok())
}
fn doc_type() -> impl Strategy<Value = DocType> {
    prop::sample::select(vec![DocType::PurchaseReceipt, DocType::Sale, DocType::StockLoss, DocType::StockGain])
}
/// Quantities: positive, at most 4 decimal places.
fn qty() -> impl Strategy<Value = Decimal> {
    (1i64..=10_000_000, 0u32..=4).prop_map(|(m, s)| Decimal::new(m, s))
}
/// Unit prices: not negative, at most 4 decimal places.
fn price() -> impl Strategy<Value = Decimal> {
    (0i64..=100_000_000, 0u32..=4).prop_map(|(m, s)| Decimal::new(m, s))
}
/// Money: cents.
fn money() -> impl Strategy<Value = Decimal> {
    (-10_000_000_000i64..=10_000_000_000, 0u32..=2).prop_map(|(m, s)| Decimal::new(m, s))
}
/// Any decimal rust_decimal can hold: 96-bit mantissa, scale 0..=28.
fn any_decimal() -> impl Strategy<Value = Decimal> {
    let bound = (1i128 << 96) - 1;
    (-bound..=bound, 0u32..=28).prop_map(|(m, s)| Decimal::from_i128_with_scale(m, s))
}
fn line() -> impl Strategy<Value = Line> {
    (product_code(), qty(), price()).prop_map(|(p, q, pr)| Line::priced(p, q, pr))
}

prop_compose! {
    fn document()(
        doc_type in doc_type(),
        branch in branch_code(),
        date in date(),
        operator in operator(),
        warehouse in warehouse_code(),
        counterparty in party(),
        with_counterparty in any::<bool>(),
        memo in "[^\\p{C}\\p{Zl}\\p{Zp}]{0,40}", // what `protocol::text` lets through
        lines in prop::collection::vec(line(), 1..6),
        serial in 1u32..,
    ) -> Document {
        let needs_counterparty = matches!(doc_type, DocType::PurchaseReceipt | DocType::Sale);
        let counterparty = (needs_counterparty || with_counterparty).then_some(counterparty);
        Draft { doc_type, date, operator, warehouse, counterparty, memo, payment: None, lines, ext: Default::default() }
            .number(branch, serial)
            .expect("generated draft is valid")
    }
}

fn chain_head() -> impl Strategy<Value = ChainHead> {
    (any::<u64>(), any::<[u8; 32]>()).prop_map(|(seq, h)| ChainHead { seq, hash: EntryHash(h) })
}

fn journal_entry() -> impl Strategy<Value = JournalEntry> {
    (any::<u64>(), any::<[u8; 32]>(), document()).prop_map(|(seq, prev, doc)| JournalEntry { seq, prev: EntryHash(prev), doc })
}

fn profile() -> impl Strategy<Value = BranchProfile> {
    let product =
        ("\\PC{0,12}", "\\PC{0,4}").prop_map(|(name, unit)| Product { name, unit, retail_price: None, prices: Vec::new(), category: None });
    (
        branch_code(),
        "\\PC{0,20}",
        prop::collection::btree_set(warehouse_code(), 0..3),
        prop::collection::btree_map(product_code(), product, 0..4),
        any::<u64>(),
    )
        .prop_map(|(branch, name, warehouses, products, version)| BranchProfile {
            branch,
            name,
            warehouses,
            products,
            credit_limits: Default::default(),
            overdrafts: Default::default(),
            version,
            people: Vec::new(),
            approvals: Default::default(),
            scope: None,
            parties: Default::default(),
        })
}

fn reject_code() -> impl Strategy<Value = RejectCode> {
    prop::sample::select(vec![
        RejectCode::Malformed,
        RejectCode::BadSignature,
        RejectCode::Fork,
        RejectCode::UnknownBranch,
        RejectCode::BadToken,
        RejectCode::UnsupportedVersion,
        RejectCode::OutOfOrder,
        RejectCode::BranchBehind,
        RejectCode::Internal,
    ])
}

fn message() -> impl Strategy<Value = Message> {
    let signature = prop::array::uniform::<_, 64>(any::<u8>()).prop_map(|b| Signature::from_bytes(&b));
    prop_oneof![
        (branch_code(), chain_head(), any::<u64>(), any::<u64>(), "\\PC{0,20}").prop_map(
            |(branch, head, profile_version, down_applied, agent)| Message::Hello { branch, head, profile_version, down_applied, agent }
        ),
        (chain_head(), prop::option::of(profile())).prop_map(|(applied, profile)| Message::Resume { applied, profile }),
        (prop::collection::vec(any::<u8>(), 0..200), signature)
            .prop_map(|(body, signature)| Message::Batch(SignedBatch { body, signature })),
        any::<u64>().prop_map(|applied| Message::Ack { applied }),
        any::<u64>().prop_map(|from| Message::ResendFrom { from }),
        (reject_code(), "\\PC{0,60}").prop_map(|(code, text)| Message::Reject { code, text }),
        ("\\PC{0,60}", any::<[u8; 32]>()).prop_map(|(token, branch_key)| Message::Enroll { token, branch_key }),
        (profile(), any::<[u8; 32]>()).prop_map(|(profile, hq_down_key)| Message::Enrolled { profile, hq_down_key }),
        prop::collection::vec(any::<u8>(), 0..200).prop_map(Message::Down),
        any::<u64>().prop_map(|seq| Message::DownAck { seq }),
        prop::collection::vec(any::<u8>(), 0..200).prop_map(Message::Draft),
        any::<u64>().prop_map(|id| Message::DraftAck { id }),
    ]
}

/// A chain of `n` small documents of branch SH, with hashes.
fn chain_of(n: usize, salt: u32) -> Vec<VerifiedEntry> {
    let mut head = ChainHead::EMPTY;
    (0..n)
        .map(|i| {
            let doc = sample_doc_lines("SH", "SH01", DocType::StockGain, salt + i as u32 + 1, 1 + i % 3);
            let (entry, bytes, next) = head.append(doc);
            head = next;
            VerifiedEntry { entry, hash: next.hash, bytes }
        })
        .collect()
}

fn head_at(chain: &[VerifiedEntry], k: usize) -> ChainHead {
    if k == 0 {
        ChainHead::EMPTY
    } else {
        ChainHead { seq: k as u64, hash: chain[k - 1].hash }
    }
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Wrapped(#[serde(with = "protocol::decimal_serde")] Decimal);

/// Same value and same representation (a decimal's scale is data: "12.50" is not "12.5").
fn same_decimal(a: Decimal, b: Decimal) -> bool {
    a == b && a.scale() == b.scale() && a.mantissa() == b.mantissa()
}

// ---------------------------------------------------------------------------------------
// Encodings.

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn document_round_trips_in_postcard_and_json(doc in document()) {
        let bytes = postcard::to_allocvec(&doc).expect("encodes");
        prop_assert_eq!(&postcard::from_bytes::<Document>(&bytes).expect("decodes"), &doc);
        let json = serde_json::to_string(&doc).expect("json");
        let back: Document = serde_json::from_str(&json).expect("json decodes");
        for (a, b) in back.lines.iter().zip(&doc.lines) {
            prop_assert!(same_decimal(a.qty, b.qty) && same_decimal(a.unit_price, b.unit_price) && same_decimal(a.amount, b.amount));
        }
        prop_assert_eq!(back, doc);
    }

    #[test]
    fn journal_entry_round_trips_and_its_hash_is_of_its_bytes(entry in journal_entry()) {
        let bytes = entry.encode();
        let back = JournalEntry::decode(&bytes).expect("decodes");
        prop_assert_eq!(&back, &entry);
        // Encoding is a function of the value: the hash of a re-encoding is the same.
        prop_assert_eq!(EntryHash::of(&back.encode()), EntryHash::of(&bytes));
        for (a, b) in back.doc.lines.iter().zip(&entry.doc.lines) {
            prop_assert!(same_decimal(a.qty, b.qty) && same_decimal(a.unit_price, b.unit_price) && same_decimal(a.amount, b.amount));
        }
    }

    #[test]
    fn message_round_trips_in_postcard_and_as_a_frame(msg in message()) {
        let bytes = postcard::to_allocvec(&msg).expect("encodes");
        prop_assert_eq!(&postcard::from_bytes::<Message>(&bytes).expect("decodes"), &msg);
        let frame = msg.to_frame();
        prop_assert_eq!(&Message::from_payload(&frame[4..]).expect("payload decodes"), &msg);
        let mut dec = FrameDecoder::default();
        dec.push(&frame);
        prop_assert_eq!(dec.next_message().expect("frame decodes"), Some(msg));
        prop_assert_eq!(dec.pending_bytes(), 0);
    }

    #[test]
    fn decimal_serde_is_exact_in_postcard_and_json(d in prop_oneof![any_decimal(), money(), qty(), price()]) {
        let bytes = postcard::to_allocvec(&Wrapped(d)).expect("encodes");
        let back: Wrapped = postcard::from_bytes(&bytes).expect("decodes");
        prop_assert!(same_decimal(back.0, d), "postcard: {} became {}", d, back.0);
        let json = serde_json::to_string(&Wrapped(d)).expect("json");
        prop_assert_eq!(&json, &format!("\"{d}\""), "JSON carries the decimal as a string");
        let back: Wrapped = serde_json::from_str(&json).expect("json decodes");
        prop_assert!(same_decimal(back.0, d), "JSON: {} became {}", d, back.0);
    }

    #[test]
    fn doc_number_parse_inverts_display(t in doc_type(), branch in branch_code(), date in date(), serial in 1u32..) {
        let n = DocNumber::new(t, branch, date, serial);
        let text = n.to_string();
        let back = DocNumber::parse(&text).expect("a displayed number parses");
        prop_assert_eq!(&back, &n);
        prop_assert_eq!(back.to_string(), text);
        // Serde goes through the same text.
        let json = serde_json::to_string(&n).expect("json");
        prop_assert_eq!(serde_json::from_str::<DocNumber>(&json).expect("json decodes"), n);
    }

    #[test]
    fn doc_number_parse_never_panics_and_is_stable(s in "[A-Z]{0,3}-[A-Za-z]{0,9}-[0-9]{0,5}-[0-9]{0,12}|\\PC{0,30}") {
        if let Ok(n) = DocNumber::parse(&s) {
            // Whatever parses displays as something that parses to the same number.
            prop_assert_eq!(DocNumber::parse(&n.to_string()).expect("display parses"), n);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Tampering and chains.

proptest! {
    #![proptest_config(config(96))]

    #[test]
    fn any_single_bit_flip_of_a_signed_batch_is_refused(n in 1usize..4, salt in 0u32..1000, bit in any::<Index>(), in_signature in any::<bool>()) {
        let sh = BranchCode::new("SH").expect("code");
        let key = test_key(1);
        let batch = SignedBatch::sign(&sh, chain_of(n, salt).into_iter().map(|e| e.bytes).collect(), &key);
        prop_assert!(batch.open(&sh, &key.verifying_key()).is_ok());
        let mut flipped = batch.clone();
        if in_signature {
            let mut sig = flipped.signature.to_bytes();
            let i = bit.index(sig.len() * 8);
            sig[i / 8] ^= 1 << (i % 8);
            flipped.signature = Signature::from_bytes(&sig);
        } else {
            let i = bit.index(flipped.body.len() * 8);
            flipped.body[i / 8] ^= 1 << (i % 8);
        }
        let refused = matches!(flipped.open(&sh, &key.verifying_key()), Err(BatchError::BadSignature { .. }));
        prop_assert!(refused);
    }

    #[test]
    fn removed_duplicated_swapped_or_altered_entries_break_the_links(n in 3usize..10, a in any::<Index>(), b in any::<Index>(), kind in 0u8..4) {
        let chain = chain_of(n, 0);
        prop_assert_eq!(check_links(&chain), Ok(()));
        let mut run = chain.clone();
        match kind {
            0 => {
                // Removing an interior entry; removing an end just makes a shorter run.
                run.remove(1 + a.index(n - 2));
            }
            1 => {
                let i = a.index(n);
                let copy = run[i].clone();
                run.insert(i + 1, copy);
            }
            2 => {
                let i = a.index(n);
                let j = (i + 1 + b.index(n - 1)) % n;
                run.swap(i, j);
            }
            _ => {
                // Same seq and prev, different document: the next entry no longer links.
                let i = a.index(n - 1);
                let mut altered = run[i].entry.clone();
                altered.doc = sample_doc_lines("SH", "SH01", DocType::StockGain, 9_000 + b.index(1000) as u32, 2);
                let bytes = altered.encode();
                run[i] = VerifiedEntry { hash: EntryHash::of(&bytes), bytes, entry: altered };
                prop_assert_eq!(check_links(&run), Err(ChainError::Fork { seq: i as u64 + 2 }));
            }
        }
        prop_assert!(check_links(&run).is_err(), "kind {} went undetected", kind);
        // Without the first entry, a run placed against an empty chain is a gap.
        prop_assert_eq!(place_run(ChainHead::EMPTY, &chain[1..]), Ok(Placement::Gap { from: 1 }));
    }

    #[test]
    fn place_run_matches_the_chain_arithmetic(n in 1usize..10, k in any::<Index>(), a in any::<Index>(), len in any::<Index>()) {
        let chain = chain_of(n, 0);
        let k = k.index(n + 1); // HQ holds 1..=k
        let first = 1 + a.index(n); // run is first..=last
        let last = first + len.index(n - first + 1);
        let run = &chain[first - 1..last];
        let expected = if first > k + 1 {
            Placement::Gap { from: k as u64 + 1 }
        } else if last <= k {
            Placement::AllHeld { last: last as u64, last_hash: chain[last - 1].hash }
        } else {
            Placement::Extends { skip: k + 1 - first }
        };
        prop_assert_eq!(place_run(head_at(&chain, k), run), Ok(expected));
        // The same seqs from a different history: a fork wherever it meets the head.
        let other = chain_of(n, 5_000);
        let forged = &other[first - 1..last];
        let placed = place_run(head_at(&chain, k), forged);
        if k >= 1 && first <= k + 1 && last > k {
            prop_assert_eq!(placed, Err(ChainError::Fork { seq: k as u64 + 1 }));
        } else if first <= k + 1 && last <= k {
            // Everything "held": the caller must compare hashes, and they differ.
            let differs = matches!(placed, Ok(Placement::AllHeld { last_hash, .. }) if last_hash != chain[last - 1].hash);
            prop_assert!(differs, "forged run placed as {:?}", placed);
        }
    }
    #[test]
    fn chain_checks_never_panic_on_extreme_seqs(
        seqs in prop::collection::vec(prop_oneof![Just(0u64), Just(1), Just(u64::MAX - 1), Just(u64::MAX), any::<u64>()], 1..4),
        linked in any::<bool>(),
        head_seq in prop_oneof![Just(0u64), Just(u64::MAX - 1), any::<u64>()],
    ) {
        // A signed batch is only as sane as the branch that signed it: its seqs can be
        // anything, and checking them must give an answer, not an overflow.
        let mut prev = EntryHash::GENESIS;
        let run: Vec<VerifiedEntry> = seqs
            .iter()
            .enumerate()
            .map(|(i, &seq)| {
                let entry = JournalEntry { seq, prev: if linked { prev } else { EntryHash([i as u8; 32]) }, doc: sample_doc_lines("SH", "SH01", DocType::StockGain, 1, 1) };
                let bytes = entry.encode();
                prev = EntryHash::of(&bytes);
                VerifiedEntry { hash: prev, bytes, entry }
            })
            .collect();
        if check_links(&run).is_ok() && head_seq < u64::MAX {
            // place_run's precondition is a linked run; HQ's own head never reaches MAX.
            if let Ok(Placement::Extends { skip }) = place_run(ChainHead { seq: head_seq, hash: EntryHash::GENESIS }, &run) {
                prop_assert!(skip < run.len());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Framing and hostile bytes.

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn frames_split_anywhere_decode_to_the_same_messages(msgs in prop::collection::vec(message(), 1..6), cuts in prop::collection::vec(any::<Index>(), 0..12)) {
        let stream: Vec<u8> = msgs.iter().flat_map(Message::to_frame).collect();
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        let mut dec = FrameDecoder::default();
        let mut got = Vec::new();
        for w in points.windows(2) {
            dec.push(&stream[w[0]..w[1]]);
            while let Some(m) = dec.next_message().expect("valid frames") {
                got.push(m);
            }
        }
        prop_assert_eq!(got, msgs);
        prop_assert_eq!(dec.pending_bytes(), 0);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoders(bytes in prop::collection::vec(any::<u8>(), 0..400), framed in any::<bool>()) {
        let input = if framed {
            // A length prefix that fits, so the bytes reach the message decoder.
            let mut v = (bytes.len() as u32).to_be_bytes().to_vec();
            v.extend_from_slice(&bytes);
            v
        } else {
            bytes.clone()
        };
        let mut dec = FrameDecoder::default();
        dec.push(&input);
        // Bounded: each Ok(Some) consumes at least a header.
        for _ in 0..=input.len() {
            match dec.next_message() {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        let _ = Message::from_payload(&bytes);
        let _ = decode_body(&bytes);
        let _ = JournalEntry::decode(&bytes);
        let _ = postcard::from_bytes::<Document>(&bytes);
        let _ = postcard::from_bytes::<Wrapped>(&bytes);
    }

    #[test]
    fn corrupted_valid_encodings_never_panic_the_decoders(entry in journal_entry(), msg in message(), edits in prop::collection::vec((any::<Index>(), any::<u8>()), 1..6)) {
        let mut entry_bytes = entry.encode();
        let mut frame = msg.to_frame();
        let mut body = SignedBatch::sign(&entry.doc.header.branch, vec![entry_bytes.clone()], &test_key(3)).body;
        for (i, b) in &edits {
            let at = i.index(entry_bytes.len());
            entry_bytes[at] = *b;
            let at = i.index(body.len());
            body[at] = *b;
            // Leave the length prefix alone so the payload is decoded.
            let at = 4 + i.index(frame.len() - 4);
            frame[at] = *b;
        }
        let _ = JournalEntry::decode(&entry_bytes);
        let _ = decode_body(&body);
        let mut dec = FrameDecoder::default();
        dec.push(&frame);
        let _ = dec.next_message();
    }
}

// ---------------------------------------------------------------------------------------
// Posting stock.

const LEDGER_PRODUCTS: [&str; 3] = ["A", "B", "C"];
const LEDGER_WAREHOUSES: [&str; 2] = ["SH01", "HB01"];

#[derive(Clone, Debug)]
struct Op {
    doc_type: DocType,
    warehouse: usize,
    lines: Vec<(usize, Decimal, Decimal)>,
}

fn op() -> impl Strategy<Value = Op> {
    // Goods out are usually smaller than goods in, so most of them post.
    let small_qty = (1i64..=3_000, 0u32..=3).prop_map(|(m, s)| Decimal::new(m, s));
    let line = (0..LEDGER_PRODUCTS.len(), small_qty, price());
    (doc_type(), 0..LEDGER_WAREHOUSES.len(), prop::collection::vec(line, 1..4)).prop_map(|(doc_type, warehouse, lines)| Op {
        doc_type,
        warehouse,
        lines,
    })
}

fn op_doc(op: &Op, serial: u32) -> Document {
    Draft {
        doc_type: op.doc_type,
        date: BusinessDate::new(2026, 6, 9).expect("valid date"),
        operator: OperatorId::new("prop").expect("valid operator"),
        warehouse: WarehouseCode::new(LEDGER_WAREHOUSES[op.warehouse]).expect("valid warehouse"),
        counterparty: Some(PartyCode::new("C1").expect("valid party")),
        memo: String::new(),
        payment: None,
        ext: Default::default(),
        lines: op
            .lines
            .iter()
            .map(|(p, q, pr)| Line::priced(ProductCode::new(LEDGER_PRODUCTS[*p]).expect("valid product"), *q, *pr))
            .collect(),
    }
    .number(BranchCode::new("SH").expect("valid branch"), serial)
    .expect("generated draft is valid")
}

/// Everything the books show, for "same books" checks: `Books` has no `PartialEq`, and
/// its digest leaves out the sales and flow figures.
fn shown(b: &Books) -> impl PartialEq + std::fmt::Debug + '_ {
    (
        b.positions().collect::<Vec<_>>(),
        b.gl(),
        b.parties(),
        b.open_items(),
        b.consignment().collect::<Vec<_>>(),
        b.loans(),
        b.sales(),
        b.flows(),
        b.cost_method(),
        b.closed_through(),
    )
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn posting_keeps_the_books_consistent(ops in prop::collection::vec(op(), 1..40), batch_len in 1usize..8) {
        let mut books = Books::default();
        let mut moved: BTreeMap<StockKey, Position> = BTreeMap::new();
        let mut accepted = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            let doc = op_doc(op, i as u32 + 1);
            let before = books.clone();
            match post(&books, &doc, PostContext::default()) {
                Ok(posting) => {
                    prop_assert_eq!(posting.stock.len(), doc.lines.len());
                    for m in &posting.stock {
                        // The books start on moving average, which moves only totals.
                        let LayerOp::Average { qty, value } = &m.op else {
                            return Err(TestCaseError::fail(format!("moving average made {:?}", m.op)));
                        };
                        let sum = moved.entry(m.key).or_default();
                        sum.qty += *qty;
                        sum.value += *value;
                    }
                    books.apply(&doc, &posting);
                    accepted.push(doc);
                }
                Err(_) => {
                    // Refusal is pure: nothing changed, and only goods out can be refused.
                    prop_assert_eq!(shown(&books), shown(&before));
                    prop_assert_eq!(books.digest(), before.digest());
                    prop_assert!(matches!(op.doc_type, DocType::Sale | DocType::StockLoss));
                }
            }
            for (key, pos) in books.positions() {
                let sum = moved.get(key).copied().unwrap_or_default();
                prop_assert_eq!(pos.qty, sum.qty, "qty of {:?} is not the sum of its moves", key);
                prop_assert_eq!(pos.value, sum.value, "value of {:?} is not the sum of its moves", key);
                prop_assert!(pos.qty >= Decimal::ZERO && pos.value >= Decimal::ZERO, "{:?} went negative: {:?}", key, pos);
                prop_assert!(!pos.qty.is_zero() || pos.value.is_zero(), "{:?} keeps value {} on zero stock", key, pos.value);
                prop_assert!(pos.value.scale() <= 2, "{:?} value {} is not in cents", key, pos.value);
            }
        }
        // Same documents, same order: same books, on another instance and batch by batch
        // into a scratch copy that replaces the base only once the whole batch posted
        // (how memory is kept from running ahead of a durable write).
        let mut again = Books::default();
        let mut base = Books::default();
        for batch in accepted.chunks(batch_len) {
            let base_digest = base.digest();
            let mut scratch = base.clone();
            for doc in batch {
                let posting = post(&again, doc, PostContext::default()).expect("posted before");
                again.apply(doc, &posting);
                let posting = post(&scratch, doc, PostContext::default()).expect("posted before");
                scratch.apply(doc, &posting);
            }
            prop_assert_eq!(base.digest(), base_digest, "the base is not touched");
            base = scratch;
        }
        prop_assert_eq!(again.digest(), books.digest());
        prop_assert_eq!(shown(&again), shown(&books));
        prop_assert_eq!(base.digest(), books.digest());
        prop_assert_eq!(shown(&base), shown(&books));
    }

    #[test]
    fn taking_everything_out_leaves_nothing(ins in prop::collection::vec((qty(), price()), 1..6), parts in 1usize..5) {
        // Receive several lots, then take all of it out in `parts` sales: no cent remains.
        let mut books = Books::default();
        let key = (WarehouseCode::new("SH01").expect("wh"), ProductCode::new("A").expect("p"));
        for (i, (q, p)) in ins.iter().enumerate() {
            let doc = op_doc(&Op { doc_type: DocType::PurchaseReceipt, warehouse: 0, lines: vec![(0, *q, *p)] }, i as u32 + 1);
            let posting = post(&books, &doc, PostContext::default()).expect("goods in always post");
            books.apply(&doc, &posting);
        }
        let start = books.position(&key);
        let mut cost_out = Decimal::ZERO;
        for i in 0..parts {
            let on_hand = books.position(&key).qty;
            let q = if i + 1 == parts { on_hand } else { protocol::document::round_half_away(on_hand / Decimal::from(parts as u64 - i as u64), 4) };
            if q.is_zero() {
                continue;
            }
            let doc = op_doc(&Op { doc_type: DocType::Sale, warehouse: 0, lines: vec![(0, q, Decimal::ONE)] }, 100 + i as u32);
            let posting = post(&books, &doc, PostContext::default()).expect("never more than on hand");
            cost_out += posting.cost_out();
            books.apply(&doc, &posting);
        }
        prop_assert_eq!(books.position(&key), Position::default());
        prop_assert_eq!(cost_out, start.value);
    }
}
