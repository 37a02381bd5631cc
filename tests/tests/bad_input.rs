//! Hostile and broken input at HQ's QUIC port, from a raw client that speaks the wire
//! format directly: forged signatures, replays, broken chains, forged history, gaps,
//! random and truncated bytes, a reused enrollment token. Each is refused with a clear
//! reason (or, for a replay, acknowledged without applying), nothing is applied, and HQ
//! keeps serving.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use edge::FrameReader;
use harness::cluster::HqProc;
use protocol::batch::SignedBatch;
use protocol::codes::BranchCode;
use protocol::document::DocType;
use protocol::journal::{ChainHead, EntryHash, JournalEntry};
use protocol::testkit::{sample_doc_lines, test_key};
use protocol::wire::{Message, RejectCode};
use protocol::SigningKey;

struct Raw {
    _conn: quinn::Connection,
    send: quinn::SendStream,
    recv: FrameReader,
}

/// A connection proving branch XX's key (`test_key(42)`) in the handshake, as its agent
/// would; the hostile input below comes from a peer holding the key.
async fn connect(hq: SocketAddr) -> anyhow::Result<Raw> {
    connect_as(hq, Some(&test_key(42))).await
}

async fn connect_as(hq: SocketAddr, key: Option<&SigningKey>) -> anyhow::Result<Raw> {
    let tls = harness::raw_client::unpinned_tls(key)?;
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse()?)?;
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(tls)));
    let conn = endpoint.connect(hq, "branchline-hq")?.await?;
    let (send, recv) = conn.open_bi().await?;
    Ok(Raw { _conn: conn, send, recv: FrameReader::new(recv) })
}

impl Raw {
    async fn send(&mut self, m: &Message) -> anyhow::Result<()> {
        self.send.write_all(&m.to_frame()).await?;
        Ok(())
    }

    /// The next message that answers the up channel. HQ's down channel shares the stream
    /// and runs on its own window (here: rejection notices for documents naming a profile
    /// version HQ never issued), so `Down` frames may come before an answer; this raw
    /// client does not ack them and sets them aside.
    async fn recv(&mut self) -> anyhow::Result<Message> {
        loop {
            // The binaries' own frame reader (over `protocol::wire::FrameDecoder`).
            let msg = tokio::time::timeout(Duration::from_secs(10), self.recv.read_message()).await??;
            match msg {
                Some(Message::Down(_)) => continue,
                Some(m) => return Ok(m),
                None => anyhow::bail!("HQ ended the stream without answering"),
            }
        }
    }

    async fn ask(&mut self, m: &Message) -> anyhow::Result<Message> {
        self.send(m).await?;
        self.recv().await
    }

    /// A fresh connection that has said hello as `branch` at `head`.
    async fn hello(hq: SocketAddr, branch: &BranchCode, head: ChainHead) -> anyhow::Result<Raw> {
        let mut raw = connect(hq).await?;
        let r = raw.ask(&Message::Hello { branch: *branch, head, profile_version: 0, down_applied: 0, agent: "raw-test".into() }).await?;
        assert!(matches!(r, Message::Resume { .. }), "{r:?}");
        Ok(raw)
    }
}

/// A chain of `n` stock-gain entries of branch XX, from `from` (1-based), continuing `head`.
fn chain(head: ChainHead, from_serial: u32, n: u32) -> (Vec<Vec<u8>>, ChainHead) {
    let mut head = head;
    let mut out = Vec::new();
    for i in 0..n {
        let (_, bytes, next) = head.append(sample_doc_lines("XX", "XX01", DocType::StockGain, from_serial + i, 2));
        out.push(bytes);
        head = next;
    }
    (out, head)
}

fn expect_reject(m: &Message, code: RejectCode, words: &str) {
    match m {
        Message::Reject { code: c, text } => {
            assert_eq!(*c, code, "{text}");
            assert!(text.contains(words), "reason {text:?} should mention {words:?}");
        }
        other => panic!("expected a {code:?} reject, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_is_refused_and_changes_nothing() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut hq = HqProc::init(&tmp.path().join("hq"), 2)?;
    let token = hq.add_branch("XX", &["XX01"])?;
    hq.start()?;
    let xx = BranchCode::new("XX")?;
    let key: SigningKey = test_key(42);

    // Enroll with the token, then try to reuse it.
    let mut raw = connect(hq.quic).await?;
    let r = raw.ask(&Message::Enroll { token: token.clone(), branch_key: key.verifying_key().to_bytes() }).await?;
    assert!(matches!(r, Message::Enrolled { .. }), "{r:?}");
    let mut raw = connect(hq.quic).await?;
    let r = raw.ask(&Message::Enroll { token: token.clone(), branch_key: test_key(7).verifying_key().to_bytes() }).await?;
    expect_reject(&r, RejectCode::BadToken, "already used");

    // Three good documents.
    let (entries, head3) = chain(ChainHead::EMPTY, 1, 3);
    let good = SignedBatch::sign(&xx, entries.clone(), &key);
    let mut raw = Raw::hello(hq.quic, &xx, ChainHead::EMPTY).await?;
    assert_eq!(raw.ask(&Message::Batch(good.clone())).await?, Message::Ack { applied: 3 });
    let applied = |b: serde_json::Value| (b["last_applied_seq"].as_u64(), b["documents_applied"].as_u64());
    assert_eq!(applied(hq.branch_status("XX").await?), (Some(3), Some(3)));
    let stock_before = hq.get("/api/stock").await?;

    // A replayed old batch: acknowledged, not applied again.
    let mut raw = Raw::hello(hq.quic, &xx, head3).await?;
    assert_eq!(raw.ask(&Message::Batch(good.clone())).await?, Message::Ack { applied: 3 });
    assert_eq!(applied(hq.branch_status("XX").await?), (Some(3), Some(3)));

    // Signed by the wrong key.
    let (next, _) = chain(head3, 4, 1);
    let r = raw.ask(&Message::Batch(SignedBatch::sign(&xx, next.clone(), &test_key(9)))).await?;
    expect_reject(&r, RejectCode::BadSignature, "signature");

    // A broken hash chain inside the batch: entry 5 does not point at entry 4.
    let (mut broken, _) = chain(head3, 4, 2);
    let mut e5 = JournalEntry::decode(&broken[1])?;
    e5.prev = EntryHash([7; 32]);
    broken[1] = e5.encode();
    let r = raw.ask(&Message::Batch(SignedBatch::sign(&xx, broken, &key))).await?;
    expect_reject(&r, RejectCode::Fork, "fork");

    // Forged history: a different document 2, validly signed, contradicting what HQ holds.
    let mut forged = entries.clone();
    let mut e2 = JournalEntry::decode(&forged[1])?;
    e2.doc.header.memo = "rewritten".into();
    forged[1] = e2.encode();
    let mut e3 = JournalEntry::decode(&forged[2])?;
    e3.prev = EntryHash::of(&forged[1]);
    forged[2] = e3.encode();
    let r = raw.ask(&Message::Batch(SignedBatch::sign(&xx, forged, &key))).await?;
    expect_reject(&r, RejectCode::Fork, "differs");

    // A gap: entries 5..6 while HQ holds up to 3 → resend from 4.
    let (four_to_six, head6) = chain(head3, 4, 3);
    let r = raw.ask(&Message::Batch(SignedBatch::sign(&xx, four_to_six[1..].to_vec(), &key))).await?;
    assert_eq!(r, Message::ResendFrom { from: 4 });

    // Random bytes on a stream.
    let mut junk = connect(hq.quic).await?;
    junk.send.write_all(&[0, 0, 0, 9, 1, 0xde, 0xad, 0xbe, 0xef, 0xff, 0xff, 0xff, 0xff]).await?;
    expect_reject(&junk.recv().await?, RejectCode::Malformed, "unreadable frame");
    let mut junk = connect(hq.quic).await?;
    junk.send.write_all(&[0xff; 64]).await?;
    expect_reject(&junk.recv().await?, RejectCode::Malformed, "exceeds the limit");
    // A truncated frame: the length promises more than arrives before the stream ends.
    let mut cut = connect(hq.quic).await?;
    let frame = Message::Batch(SignedBatch::sign(&xx, four_to_six.clone(), &key)).to_frame();
    cut.send.write_all(&frame[..frame.len() / 2]).await?;
    cut.send.finish()?;
    expect_reject(&cut.recv().await?, RejectCode::Malformed, "truncated");
    // A batch before any hello.
    let mut early = connect(hq.quic).await?;
    expect_reject(&early.ask(&Message::Batch(good.clone())).await?, RejectCode::OutOfOrder, "before hello");
    // A branch that was never enrolled, from a peer without a key (the door's own tests
    // are in `closed_door.rs`), and XX's key claiming another branch.
    let mut stranger = connect_as(hq.quic, None).await?;
    let r = stranger
        .ask(&Message::Hello {
            branch: BranchCode::new("ZZ")?,
            head: ChainHead::EMPTY,
            profile_version: 0,
            down_applied: 0,
            agent: "x".into(),
        })
        .await?;
    expect_reject(&r, RejectCode::UnknownBranch, "no enrolled branch key");
    let mut other = connect(hq.quic).await?;
    let r = other
        .ask(&Message::Hello {
            branch: BranchCode::new("ZZ")?,
            head: ChainHead::EMPTY,
            profile_version: 0,
            down_applied: 0,
            agent: "x".into(),
        })
        .await?;
    expect_reject(&r, RejectCode::UnknownBranch, "enrolled for branch XX");

    // Nothing of the above was applied.
    assert_eq!(applied(hq.branch_status("XX").await?), (Some(3), Some(3)));
    assert_eq!(hq.get("/api/stock").await?, stock_before);

    // HQ keeps serving: the honest continuation is applied.
    let mut raw = Raw::hello(hq.quic, &xx, head3).await?;
    assert_eq!(raw.ask(&Message::Batch(SignedBatch::sign(&xx, four_to_six, &key))).await?, Message::Ack { applied: 6 });
    let b = hq.branch_status("XX").await?;
    assert_eq!(applied(b.clone()), (Some(6), Some(6)));
    assert_eq!(b["head_hash"], head6.hash.to_hex());

    // Refusals are kept and shown to people.
    let rej = hq.get("/api/branches/XX/rejections").await?;
    let texts: Vec<String> = rej["rejections"].as_array().into_iter().flatten().map(|r| format!("{} {}", r["code"], r["text"])).collect();
    for needle in ["BadSignature", "Fork", "BadToken"] {
        assert!(texts.iter().any(|t| t.contains(needle)), "rejections should include {needle}: {texts:#?}");
    }
    Ok(())
}
