//! Tests of the down channel: refusals (forged, other branch, replayed, reordered,
//! duplicated, oversized, newer format) and a seeded simulation of 1,000 messages through
//! outages, losses, duplicates, reordering and crashes on both sides.

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::*;
use crate::scope::{Scope, ScopeVersion};
use crate::testkit::test_key;

fn sh() -> BranchCode {
    BranchCode::new("SH").expect("code")
}

fn approval(draft_id: u64) -> DownBody {
    DownBody::Approval {
        draft_id,
        approved: draft_id & 1 == 0,
        by: OperatorId::new("auditor").expect("login"),
        note: format!("draft {draft_id}"),
    }
}

fn every_kind() -> Vec<DownBody> {
    let doc_number = DocNumber::parse("XS-SH-0609-001").expect("number");
    let by = OperatorId::new("auditor").expect("login");
    vec![
        DownBody::Scope(VersionedScope { version: ScopeVersion(3), scope: "customers=200*".parse::<Scope>().expect("scope") }),
        DownBody::Rejection { branch_seq: 7, doc_number: doc_number.clone(), reason: "customer 310 outside v3".into() },
        DownBody::Resolution { branch_seq: 7, doc_number, order: ResolutionOrder::Reverse, by, why: "narrowed".into() },
        approval(4),
    ]
}

#[test]
fn every_kind_round_trips_through_sign_wire_and_open() {
    let key = test_key(1);
    let mut queue = DownQueue::new(sh());
    let receiver = DownReceiver::new(sh(), 0);
    for (i, body) in every_kind().into_iter().enumerate() {
        let (seq, signed) = queue.enqueue(body.clone(), 100, &key).expect("room");
        assert_eq!(seq, i as u64 + 1);
        let wire = SignedDown::from_bytes(&signed.to_bytes()).expect("frame");
        assert_eq!(wire.open(&key.verifying_key()).expect("open"), DownMessage { branch: sh(), seq, issued_unix: 100, body });
    }
    let first = queue.pending_from(0).next().expect("pending").1;
    assert_eq!(receiver.receive(first, &key.verifying_key()).expect("next").seq, 1);
}

#[test]
fn forged_other_branch_replayed_reordered_duplicated_are_refused() {
    let (hq, mallory) = (test_key(1), test_key(2));
    let hq_pk = hq.verifying_key();
    let mut queue = DownQueue::new(sh());
    let msgs: Vec<_> = (1..=3).map(|i| queue.enqueue(approval(i), 5, &hq).expect("room").1).collect();
    let mut r = DownReceiver::new(sh(), 0);

    let forged = SignedDown::sign(&DownMessage { branch: sh(), seq: 1, issued_unix: 5, body: approval(1) }, &mallory).expect("sign");
    assert_eq!(r.receive(&forged, &hq_pk), Err(DownError::Forged));
    let mut tampered = msgs[0].clone();
    *tampered.body_bytes.last_mut().expect("bytes") ^= 1;
    assert_eq!(r.receive(&tampered, &hq_pk), Err(DownError::Forged));

    let mut hb = DownQueue::new(BranchCode::new("HB").expect("code"));
    let for_hb = hb.enqueue(approval(1), 5, &hq).expect("room").1;
    assert!(matches!(r.receive(&for_hb, &hq_pk), Err(DownError::OtherBranch { .. })));

    assert_eq!(r.receive(&msgs[1], &hq_pk), Err(DownError::Gap { seq: 2, expected: 1 }));
    let before = r.clone();
    assert_eq!(r.receive(&msgs[0], &hq_pk).expect("next").seq, 1);
    assert_eq!(r, before, "receive changes nothing");
    r.applied(1).expect("in order");
    assert_eq!(r.receive(&msgs[0], &hq_pk), Err(DownError::Replayed { seq: 1, applied: 1 }));
    assert_eq!(r.applied(1), Err(DownError::NotNext { seq: 1, expected: 2 }));
    assert_eq!(r.applied(3), Err(DownError::NotNext { seq: 3, expected: 2 }));
    assert_eq!(r.receive(&msgs[2], &hq_pk), Err(DownError::Gap { seq: 3, expected: 2 }));
    assert_eq!(r.applied_seq(), 1);
    let refusal = r.receive(&msgs[0], &hq_pk).expect_err("replay").to_string();
    assert_eq!(refusal, "down message 1 was already applied (applied up to 1); replay refused");
}

#[test]
fn bounds_and_versions() {
    let key = test_key(1);
    let long = DownBody::Rejection {
        branch_seq: 1,
        doc_number: DocNumber::parse("XS-SH-0609-001").expect("number"),
        reason: "x".repeat(DOWN_TEXT_BYTES_MAX + 1),
    };
    assert!(matches!(DownQueue::new(sh()).enqueue(long, 0, &key), Err(DownError::TextTooLong { .. })));

    let msg = DownMessage { branch: sh(), seq: 1, issued_unix: 0, body: approval(1) };
    let mut newer = SignedDown::sign(&msg, &key).expect("sign");
    newer.body_bytes[0] = DOWN_FORMAT_VERSION + 1;
    newer.signature = key.sign(&newer.body_bytes);
    assert!(matches!(newer.open(&key.verifying_key()), Err(DownError::UnsupportedVersion { .. })));
    let mut trailing = SignedDown::sign(&msg, &key).expect("sign");
    trailing.body_bytes.push(0);
    trailing.signature = key.sign(&trailing.body_bytes);
    assert!(matches!(trailing.open(&key.verifying_key()), Err(DownError::Malformed(_))));
    let huge = SignedDown { body_bytes: vec![0; DOWN_BODY_BYTES_MAX + 1], signature: msg_sig(&key) };
    assert!(matches!(huge.open(&key.verifying_key()), Err(DownError::TooLarge { .. })));
    assert!(matches!(SignedDown::from_bytes(&[0xff; 8]), Err(DownError::Malformed(_))));
}

fn msg_sig(key: &SigningKey) -> Signature {
    key.sign(b"anything")
}

#[test]
fn the_queue_is_bounded_windowed_and_acked() {
    let key = test_key(1);
    let mut q = DownQueue::new(sh());
    for i in 0..DOWN_QUEUE_LEN_MAX as u64 {
        q.enqueue(approval(i), 0, &key).expect("room");
    }
    assert!(matches!(q.enqueue(approval(0), 0, &key), Err(DownError::QueueFull { .. })));
    let window: Vec<u64> = q.pending_from(0).map(|(s, _)| s).collect();
    assert_eq!(window, (1..=DOWN_WINDOW_MAX as u64).collect::<Vec<_>>());
    q.acked(100).expect("ack");
    q.acked(50).expect("an old ack changes nothing");
    assert_eq!((q.acked_seq(), q.len()), (100, DOWN_QUEUE_LEN_MAX - 100));
    assert_eq!(q.pending_from(3).next().map(|(s, _)| s), Some(101), "a stale report resumes from the mark");
    assert_eq!(q.pending_from(200).next().map(|(s, _)| s), Some(201));
    assert_eq!(q.pending_from(u64::MAX).next(), None);
    assert!(matches!(q.acked(DOWN_QUEUE_LEN_MAX as u64 + 1), Err(DownError::AckBeyond { .. })));
    q.enqueue(approval(0), 0, &key).expect("room again after the ack");
    let key_pk = key.verifying_key();
    let (seq, m) = q.pending_from(DOWN_QUEUE_LEN_MAX as u64).next().expect("the new one");
    assert_eq!((seq, m.open(&key_pk).expect("open").seq), (DOWN_QUEUE_LEN_MAX as u64 + 1, DOWN_QUEUE_LEN_MAX as u64 + 1));
}

/// One run of the simulation: HQ enqueues 1,000 approvals in bursts while the link drops,
/// duplicates and reorders, goes down, and either side crashes (HQ restores its queue from
/// what it stored; the branch keeps only what `applied` made durable).
fn simulate(seed: u64) {
    const TOTAL: u64 = 1_000;
    let mut rng = StdRng::seed_from_u64(seed);
    let key = test_key(1);
    let pk = key.verifying_key();
    let mut queue = DownQueue::new(sh());
    let mut receiver = DownReceiver::new(sh(), 0);
    let mut effects: Vec<u64> = Vec::new();
    let (mut enqueued, mut ack_heard) = (0u64, 0u64);
    for step in 0..100_000u64 {
        if effects.len() as u64 == TOTAL {
            assert_eq!(effects, (1..=TOTAL).collect::<Vec<_>>(), "seed {seed}: each applied once, in order");
            return;
        }
        if enqueued < TOTAL && rng.gen_bool(0.5) {
            for _ in 0..rng.gen_range(1..30u64).min(TOTAL - enqueued) {
                enqueued += 1;
                let (seq, _) = queue.enqueue(approval(enqueued), step, &key).expect("bounded below the queue max");
                assert_eq!(seq, enqueued);
            }
        }
        if rng.gen_bool(0.15) {
            continue; // outage: nothing moves this step
        }
        if rng.gen_bool(0.03) {
            // HQ restarts from its stored ack mark and messages.
            let stored: Vec<SignedDown> = queue.unacked.iter().cloned().collect();
            queue = DownQueue::restore(sh(), queue.acked_seq(), stored).expect("bounded");
            ack_heard = queue.acked_seq();
        }
        if rng.gen_bool(0.03) {
            receiver = DownReceiver::new(sh(), receiver.applied_seq()); // branch restarts from durable state
        }
        let mut flight: Vec<SignedDown> = Vec::new();
        for (_, m) in queue.pending_from(ack_heard) {
            flight.push(m.clone());
            if rng.gen_bool(0.1) {
                flight.push(m.clone());
            }
        }
        if rng.gen_bool(0.3) {
            flight.shuffle(&mut rng);
        }
        for m in flight {
            if rng.gen_bool(0.1) {
                continue; // lost
            }
            match receiver.receive(&m, &pk) {
                Ok(msg) => {
                    if rng.gen_bool(0.05) {
                        continue; // crashed before the effect was durable: not applied
                    }
                    let DownBody::Approval { draft_id, .. } = msg.body else { panic!("only approvals were sent") };
                    assert_eq!(draft_id, msg.seq);
                    effects.push(draft_id);
                    receiver.applied(msg.seq).expect("receive said this is next");
                }
                Err(DownError::Replayed { .. } | DownError::Gap { .. }) => {}
                Err(e) => panic!("seed {seed}: unexpected refusal {e}"),
            }
        }
        if rng.gen_bool(0.8) {
            queue.acked(receiver.applied_seq()).expect("the branch never acks beyond what HQ sent");
            ack_heard = receiver.applied_seq();
        }
    }
    panic!("seed {seed}: did not converge; applied {}", effects.len());
}

#[test]
fn a_thousand_messages_through_outages_and_crashes_apply_once_in_order() {
    for seed in 0..3 {
        simulate(seed);
    }
}

proptest! {
    // Each run verifies thousands of signatures (~2 s unoptimised): a few seeds per run.
    #![proptest_config(ProptestConfig::with_cases(4))]

    #[test]
    fn simulation_holds_for_any_seed(seed: u64) {
        simulate(seed);
    }

    #[test]
    fn any_flipped_bit_is_forged(pos in 0usize..4096, bit in 0u8..8, sig: bool) {
        let key = test_key(1);
        let s = SignedDown::sign(&DownMessage { branch: sh(), seq: 1, issued_unix: 9, body: every_kind()[2].clone() }, &key).expect("sign");
        let mut t = s.clone();
        if sig {
            let mut b = t.signature.to_bytes();
            b[pos % 64] ^= 1 << bit;
            t.signature = Signature::from_bytes(&b);
        } else {
            let i = pos % t.body_bytes.len();
            t.body_bytes[i] ^= 1 << bit;
        }
        prop_assert_eq!(DownReceiver::new(sh(), 0).receive(&t, &key.verifying_key()), Err(DownError::Forged));
    }
}
