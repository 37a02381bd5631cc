//! The down channel through both sync machines, as frames: a queue of 1,000 signed
//! messages at HQ reaches the branch in order and is applied exactly once, across lost
//! connections, HQ restarts (its ack mark written lazily) and branch restarts (the applied
//! mark durable with each effect). A failing seed replays exactly.

use ed25519_dalek::SigningKey;
use protocol::codes::BranchCode;
use protocol::down::{DownBody, DownQueue, DownReceiver, SignedDown, DOWN_WINDOW_MAX};
use protocol::journal::ChainHead;
use protocol::sync::{BranchEvent, BranchSync, BranchView, HqFacts, HqSession, HqStep, SyncLimits, SyncTimers};
use protocol::wire::{FrameDecoder, Message};

/// splitmix64, so a seed replays.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }
}

fn via_wire(m: &Message) -> Message {
    let mut d = FrameDecoder::default();
    d.push(&m.to_frame());
    d.next_message().expect("valid frame").expect("whole frame")
}

fn sh() -> BranchCode {
    BranchCode::new("SH").expect("code")
}

fn facts(branch_key: &SigningKey) -> HqFacts {
    HqFacts {
        view: Some(BranchView { key: branch_key.verifying_key(), head: ChainHead::EMPTY, profile_version: 1 }),
        held: None,
        profile: None,
    }
}

const MESSAGES: u64 = 1_000;

fn run(seed: u64) -> Result<(), String> {
    let mut rng = Rng(seed);
    let hq_key = SigningKey::from_bytes(&[3; 32]);
    let branch_key = SigningKey::from_bytes(&[4; 32]);
    // HQ's durable state: every message ever enqueued, and an ack mark written lazily.
    let mut all: Vec<SignedDown> = Vec::new();
    let mut queue = DownQueue::new(sh());
    for i in 1..=MESSAGES {
        let body = DownBody::Rejection {
            branch_seq: i,
            doc_number: protocol::document::DocNumber::parse("XS-SH-0601-001").expect("number"),
            reason: format!("notice {i}"),
        };
        all.push(queue.enqueue(body, i, &hq_key).map_err(|e| e.to_string())?.1);
    }
    let mut hq_acked_durable = 0u64;
    // The branch's durable state: the applied mark, written with each effect.
    let mut applied_durable = 0u64;
    let mut effects: Vec<u64> = Vec::new();
    let mut receiver = DownReceiver::new(sh(), 0);
    let mut sync = BranchSync::new(sh(), SyncLimits::default(), SyncTimers::default(), ChainHead::EMPTY, 0, seed);
    let mut now = 0u64;
    let (mut lost_links, mut hq_crashes, mut branch_crashes) = (0, 0, 0);
    for _connection in 0..10_000 {
        if applied_durable == MESSAGES {
            break;
        }
        now += 1_000;
        sync.set_down_applied(applied_durable);
        let mut session = HqSession::default();
        let hello = via_wire(&sync.connect(now, 1, "sim"));
        let resume = match session.handle(hello, facts(&branch_key)) {
            HqStep::Reply(m @ Message::Resume { .. }) => m,
            other => return Err(format!("hello answered with {other:?}")),
        };
        queue.acked(session.down_acked()).map_err(|e| e.to_string())?;
        match sync.handle(now, via_wire(&resume), None) {
            Ok(Some(BranchEvent::Resumed { .. })) => {}
            other => return Err(format!("resume gave {other:?}")),
        }
        let mut to_branch: Vec<Message> = session.down_window(&queue);
        if to_branch.len() > DOWN_WINDOW_MAX {
            return Err(format!("window of {}", to_branch.len()));
        }
        // One connection: messages flow until a fault ends it.
        'link: loop {
            let mut to_hq = Vec::new();
            for m in to_branch.drain(..) {
                if rng.below(400) == 0 {
                    lost_links += 1;
                    break 'link;
                }
                let Ok(Some(BranchEvent::Down(bytes))) = sync.handle(now, via_wire(&m), None) else {
                    return Err("not a down event".into());
                };
                let signed = SignedDown::from_bytes(&bytes).map_err(|e| e.to_string())?;
                match receiver.receive(&signed, &hq_key.verifying_key()) {
                    Ok(msg) => {
                        // The effect and the mark in one durable write, then the ack.
                        effects.push(msg.seq);
                        applied_durable = msg.seq;
                        receiver.applied(msg.seq).map_err(|e| e.to_string())?;
                        if rng.below(300) == 0 {
                            // Crash after the write, before the ack.
                            branch_crashes += 1;
                            receiver = DownReceiver::new(sh(), applied_durable);
                            break 'link;
                        }
                        to_hq.push(sync.down_applied(msg.seq));
                    }
                    Err(e) => return Err(format!("honest message {} refused: {e}", applied_durable + 1)),
                }
            }
            if to_hq.is_empty() {
                break;
            }
            for ack in to_hq {
                if rng.below(400) == 0 {
                    lost_links += 1;
                    break 'link;
                }
                match session.handle(via_wire(&ack), HqFacts::default()) {
                    HqStep::DownAcked { seq, .. } => queue.acked(seq).map_err(|e| e.to_string())?,
                    other => return Err(format!("down ack gave {other:?}")),
                }
                if rng.below(10) == 0 {
                    hq_acked_durable = queue.acked_seq();
                }
                if rng.below(500) == 0 {
                    // HQ restarts: its queue comes back from disk, the ack mark maybe behind.
                    hq_crashes += 1;
                    let acked = hq_acked_durable;
                    queue = DownQueue::restore(sh(), acked, all[acked as usize..].to_vec()).map_err(|e| e.to_string())?;
                    break 'link;
                }
            }
            to_branch = session.down_window(&queue);
        }
        sync.disconnected(now);
    }
    let expected: Vec<u64> = (1..=MESSAGES).collect();
    if effects != expected {
        return Err(format!("applied {} effects, not 1..={MESSAGES} once each in order", effects.len()));
    }
    if lost_links + hq_crashes + branch_crashes == 0 {
        return Err("no fault happened; the seed tests nothing".into());
    }
    Ok(())
}

#[test]
fn a_thousand_down_messages_arrive_once_in_order_across_faults() {
    for seed in 0..20 {
        if let Err(e) = run(seed) {
            panic!("seed {seed}: {e}");
        }
    }
}

#[test]
fn a_down_ack_beyond_what_was_sent_is_refused() {
    let branch_key = SigningKey::from_bytes(&[4; 32]);
    let mut session = HqSession::default();
    let hello = Message::Hello { branch: sh(), head: ChainHead::EMPTY, profile_version: 1, down_applied: 0, agent: "t".into() };
    assert!(matches!(session.handle(hello, facts(&branch_key)), HqStep::Reply(Message::Resume { .. })));
    assert!(matches!(session.handle(Message::DownAck { seq: 1 }, HqFacts::default()), HqStep::Refuse { .. }));
    let mut fresh = HqSession::default();
    assert!(matches!(fresh.handle(Message::DownAck { seq: 0 }, HqFacts::default()), HqStep::Refuse { branch: None, .. }));
}

#[test]
fn the_hello_carries_the_branch_down_mark_and_a_down_message_before_resume_is_an_error() {
    let mut sync = BranchSync::new(sh(), SyncLimits::default(), SyncTimers::default(), ChainHead::EMPTY, 0, 1);
    sync.set_down_applied(41);
    assert!(matches!(sync.connect(0, 1, "t"), Message::Hello { down_applied: 41, .. }));
    assert!(sync.handle(1, Message::Down(vec![1]), None).is_err());
    assert_eq!(sync.down_applied(42), Message::DownAck { seq: 42 });
    assert_eq!(sync.down_applied_seq(), 42);
}
