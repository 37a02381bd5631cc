//! The signed down channel with real processes: HQ queues 1,000 down messages, the agent
//! and HQ are both killed with -9 in the middle, and every message is applied exactly
//! once and in order; and the review path: an auditor orders a reversal, the branch posts
//! it by itself, HQ shows it done and both books digests agree.

use std::time::Duration;

use harness::cluster::{client, doc, send, wait_until, AgentProc, HqProc};
use serde_json::{json, Value};

const MESSAGES: u64 = 1_000;

async fn notices(agent: &AgentProc) -> anyhow::Result<Value> {
    agent.get("/api/notices").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_down_messages_survive_kill_9_on_both_sides_and_apply_once_in_order() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut hq = HqProc::init(&tmp.path().join("hq"), 1)?;
    let token = hq.add_branch("SH", &["SH01"])?;
    hq.start()?;
    let mut sh = AgentProc::enroll(&tmp.path().join("sh"), hq.quic, &token)?;
    sh.start()?;
    wait_until(Duration::from_secs(60), "agent connects", || async { Ok(sh.sync().await?["link_up"] == true) }).await?;
    let (status, body) = hq.post_json(&format!("/api/admin/branches/SH/down/test-flags?count={MESSAGES}"), &json!({})).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["last_seq"], MESSAGES);
    // Kill both in the middle of the stream.
    wait_until(Duration::from_secs(60), "some messages applied", || async { Ok(notices(&sh).await?["applied_seq"].as_u64() >= Some(1)) })
        .await?;
    sh.kill9();
    hq.kill9();
    hq.start()?;
    sh.start()?;
    wait_until(Duration::from_secs(180), "all down messages applied", || async { Ok(notices(&sh).await?["applied_seq"] == MESSAGES) })
        .await
        .map_err(|e| anyhow::anyhow!("{e}\nagent log:\n{}\nhq log:\n{}", sh.log(), hq.log()))?;
    let n = notices(&sh).await?;
    assert_eq!(n["count"], MESSAGES, "each message stored once");
    let shown = n["notices"].as_array().expect("notices");
    let seqs: Vec<u64> = shown.iter().filter_map(|x| x["down_seq"].as_u64()).collect();
    let expected: Vec<u64> = (MESSAGES + 1 - seqs.len() as u64..=MESSAGES).collect();
    assert_eq!(seqs, expected, "in order, no gaps, no repeats");
    assert!(n["last_refusal"].is_null(), "{n}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_orders_a_reversal_and_the_branch_posts_it_by_itself() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut hq = HqProc::init(&tmp.path().join("hq"), 2)?;
    let token = hq.add_branch("SH", &["SH01"])?;
    hq.start()?;
    let mut sh = AgentProc::enroll(&tmp.path().join("sh"), hq.quic, &token)?;
    sh.start()?;
    let posted = sh.post(&doc("BY", "SH01", &[("P0001", "5", "3.00")])).await?;
    assert!(posted.is_ok(), "{posted:?}");
    wait_until(Duration::from_secs(60), "document synced", || async { Ok(sh.sync().await?["acked_seq"] == 1) }).await?;

    let (status, body) = hq.post_json("/api/admin/branches/SH/down/test-flags?seq=1", &json!({})).await?;
    assert_eq!(status, 200, "{body}");
    let review = hq.get("/api/review").await?;
    assert_eq!(review["items"][0]["state"], "open", "{review}");
    // Deciding is an HQ auditor's right (the admin only administers).
    let (status, _) = hq.post_json("/api/review/SH/1/reverse", &json!({ "why": "out of scope" })).await?;
    assert_eq!(status, 403, "an HQ admin may not decide a review");
    hq.add_person("auditor1", &["hq-auditor"], &[], "auditor-password-1")?;
    let auditor = hq.sign_in("auditor1", "auditor-password-1").await?;
    let decide = |path: &'static str| send(client().post(hq.url(path)).bearer_auth(&auditor).json(&json!({ "why": "out of scope" })));
    let (status, body) = decide("/api/review/SH/1/reverse").await?;
    assert_eq!(status, 200, "{body}");
    let (status, _) = decide("/api/review/SH/1/accept").await?;
    assert_eq!(status, 409, "decided once");

    wait_until(Duration::from_secs(60), "HQ sees the reversal arrive", || async {
        Ok(hq.get("/api/review").await?["items"][0]["state"] == "done")
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\nagent log:\n{}\nhq log:\n{}", sh.log(), hq.log()))?;
    let n = notices(&sh).await?;
    assert_eq!(n["orders"][0]["state"], "done", "{n}");
    let reversal = sh.get("/api/documents/2").await?;
    assert!(reversal.to_string().contains("reverses"), "{reversal}");
    wait_until(Duration::from_secs(30), "HQ applied the reversal", || async { Ok(sh.sync().await?["acked_seq"] == 2) }).await?;
    let at_branch = sh.get("/api/reports/digest").await?;
    let at_hq = hq.get("/api/reports/digest?branch=SH").await?;
    assert_eq!(at_branch, at_hq, "books digest differs between branch and HQ");
    Ok(())
}
