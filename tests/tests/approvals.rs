//! Approvals over the down channel, with real processes (issue 9):
//! 1. HQ's rules say a stock loss above 10.00 needs approval: posting one is refused at
//!    the branch (422, saying how to ask), it is drafted, shown at HQ, an HQ admin and a
//!    branch accountant get 403 trying to approve it, the HQ auditor approves it, the
//!    decision comes down, the draft posts once, goes up and HQ applies it unmarked;
//! 2. the branch is offline while the auditor refuses one draft and approves another: on
//!    reconnect each decision arrives exactly once, the refused draft cannot post and
//!    shows the note, the approved one posts;
//! 3. a tampered agent (debug switch that skips its approval check) posts a large loss
//!    without approval: HQ applies it and quarantines it, naming the reason.

use std::time::Duration;

use harness::cluster::{branch_login, client, doc, send, wait_until, AgentProc, HqProc, PERSON_PASSWORD};
use serde_json::{json, Value};

const AUDITOR: &str = "auditor1";
const AUDITOR_PASSWORD: &str = "auditor-password-1";

/// HQ (running, with an auditor and the rule "stock losses above 10.00 need approval")
/// and SH's agent (running, holding the rule), with 10 × P0000 at 3.00 in SH01.
async fn cluster(dir: &std::path::Path, env: &[(&str, &str)]) -> anyhow::Result<(HqProc, AgentProc, String)> {
    let mut hq = HqProc::init(&dir.join("hq"), 1)?;
    let token = hq.add_branch("SH", &["SH01"])?;
    hq.start()?;
    hq.add_person(AUDITOR, &["hq-auditor"], &[], AUDITOR_PASSWORD)?;
    let auditor = hq.sign_in(AUDITOR, AUDITOR_PASSWORD).await?;
    let (status, body) = hq.post_json("/api/admin/approval-rules", &json!({ "stock_loss_above": "10.00" })).await?;
    assert_eq!(status, 200, "{body}");
    let mut sh = AgentProc::enroll(&dir.join("sh"), hq.quic, &token)?;
    sh.start_with_env(env)?;
    wait_until(Duration::from_secs(60), "the branch holds the approval rule", || async {
        Ok(sh.get("/api/profile").await?["approvals"]["stock_loss_above"] == "10.00")
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\nagent log:\n{}", sh.log()))?;
    let gain = sh.post(&doc("BY", "SH01", &[("P0000", "10", "3.00")])).await?;
    assert!(gain.is_ok(), "{gain:?}");
    Ok((hq, sh, auditor))
}

/// A stock loss of `qty` × P0000 (valued at cost 3.00 each).
fn loss(qty: &str) -> Value {
    doc("BS", "SH01", &[("P0000", qty, "3.00")])
}

async fn decide(hq: &HqProc, token: &str, id: u64, verdict: &str, note: &str) -> anyhow::Result<(u16, Value)> {
    send(client().post(hq.url(&format!("/api/approvals/SH/{id}/{verdict}"))).bearer_auth(token).json(&json!({ "note": note }))).await
}

async fn draft_state(sh: &AgentProc, id: u64) -> anyhow::Result<Value> {
    let all = sh.get("/api/drafts").await?;
    Ok(all["drafts"].as_array().and_then(|d| d.iter().find(|x| x["id"] == id)).cloned().unwrap_or(Value::Null))
}

async fn hq_item(hq: &HqProc, id: u64) -> anyhow::Result<Value> {
    let all = hq.get("/api/approvals").await?;
    Ok(all["items"].as_array().and_then(|d| d.iter().find(|x| x["branch"] == "SH" && x["id"] == id)).cloned().unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_stock_loss_is_drafted_approved_by_the_auditor_and_then_posts() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let (hq, sh, auditor) = cluster(tmp.path(), &[]).await?;
    let logs = |e: anyhow::Error| anyhow::anyhow!("{e}\nagent log:\n{}\nhq log:\n{}", sh.log(), hq.log());

    // Below the threshold: posts as usual. Above it: refused, saying how to ask.
    assert!(sh.post(&loss("1")).await?.is_ok(), "3.00 at cost needs no approval");
    let refused = sh.post(&loss("5")).await?;
    let Err((422, why)) = &refused else { panic!("a 15.00 loss must be refused: {refused:?}") };
    assert!(why.contains("needs HQ approval") && why.contains("POST /api/drafts"), "{why}");
    assert_eq!(sh.sync().await?["head_seq"], 2, "the refusal wrote nothing");

    let (status, made) = sh.post_json("/api/drafts", &loss("5")).await?;
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_u64().expect("draft id");
    assert_eq!(draft_state(&sh, id).await?["state"], "waiting");
    let (status, small) = sh.post_json("/api/drafts", &loss("1")).await?;
    assert_eq!(status, 422, "a document that needs no approval is not drafted: {small}");
    assert_eq!(sh.sync().await?["head_seq"], 2, "a draft never touches the journal");

    wait_until(Duration::from_secs(60), "HQ shows the draft", || async { Ok(hq_item(&hq, id).await?["state"] == "waiting") })
        .await
        .map_err(logs)?;
    let item = hq_item(&hq, id).await?;
    assert!(item["needs"][0].as_str().unwrap_or("").contains("above the 10.00"), "{item}");

    // Approving is the HQ auditor's right: not the admin's, not a branch accountant's.
    let (status, _) = hq.post_json(&format!("/api/approvals/SH/{id}/approve"), &json!({ "note": "admin" })).await?;
    assert_eq!(status, 403, "an HQ admin may not approve");
    let clerk = hq.sign_in(&branch_login("SH"), PERSON_PASSWORD).await?;
    assert_eq!(decide(&hq, &clerk, id, "approve", "me").await?.0, 403, "a branch accountant may not approve");
    let (status, body) = decide(&hq, &auditor, id, "approve", "water damage, photos on file").await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(decide(&hq, &auditor, id, "refuse", "changed my mind").await?.0, 409, "decided once");

    wait_until(Duration::from_secs(60), "the approval comes down", || async { Ok(draft_state(&sh, id).await?["state"] == "approved") })
        .await
        .map_err(logs)?;
    let d = draft_state(&sh, id).await?;
    assert_eq!((d["by"].as_str(), d["note"].as_str()), (Some(AUDITOR), Some("water damage, photos on file")), "{d}");

    let (status, posted) = sh.post_json(&format!("/api/drafts/{id}/post"), &json!({})).await?;
    assert_eq!(status, 201, "{posted}");
    let seq = posted["seq"].as_u64().expect("seq");
    let (status, again) = sh.post_json(&format!("/api/drafts/{id}/post"), &json!({})).await?;
    assert_eq!(status, 422, "an approval posts once: {again}");
    let entry = sh.get(&format!("/api/documents/{seq}")).await?;
    assert_eq!(entry["document"]["header"]["ext"]["approval"], id, "{entry}");

    wait_until(Duration::from_secs(60), "HQ applies the approved loss", || async {
        Ok(hq.branch_status("SH").await?["last_applied_seq"] == seq)
    })
    .await
    .map_err(logs)?;
    let b = hq.branch_status("SH").await?;
    assert_eq!(b["documents_quarantined"], 0, "{b}");
    assert_eq!(hq_item(&hq, id).await?["state"], "posted");
    assert_eq!(sh.get("/api/reports/digest").await?, hq.get("/api/reports/digest?branch=SH").await?, "books digests differ");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_made_while_the_branch_is_offline_arrive_once_and_a_refused_draft_cannot_post() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let (hq, mut sh, auditor) = cluster(tmp.path(), &[]).await?;
    let logs = |e: anyhow::Error, sh: &AgentProc| anyhow::anyhow!("{e}\nagent log:\n{}\nhq log:\n{}", sh.log(), hq.log());
    let mut ids = Vec::new();
    for qty in ["4", "6"] {
        let (status, made) = sh.post_json("/api/drafts", &loss(qty)).await?;
        assert_eq!(status, 201, "{made}");
        ids.push(made["id"].as_u64().expect("id"));
    }
    wait_until(Duration::from_secs(60), "HQ holds both drafts", || async {
        Ok(hq.get("/api/approvals").await?["items"].as_array().map(Vec::len) == Some(2))
    })
    .await
    .map_err(|e| logs(e, &sh))?;
    sh.kill9();

    let (status, body) = decide(&hq, &auditor, ids[0], "refuse", "count it again first").await?;
    assert_eq!(status, 200, "{body}");
    let (status, body) = decide(&hq, &auditor, ids[1], "approve", "ok").await?;
    assert_eq!(status, 200, "{body}");

    sh.start()?;
    wait_until(Duration::from_secs(60), "both decisions arrive", || async {
        Ok(draft_state(&sh, ids[0]).await?["state"] == "refused" && draft_state(&sh, ids[1]).await?["state"] == "approved")
    })
    .await
    .map_err(|e| logs(e, &sh))?;
    // Restart once more: nothing arrives twice.
    sh.kill9();
    sh.start()?;
    wait_until(Duration::from_secs(60), "reconnected", || async { Ok(sh.sync().await?["link_up"] == true) }).await?;
    let notices = sh.get("/api/notices").await?;
    let approvals: Vec<&Value> = notices["notices"].as_array().expect("notices").iter().filter(|n| n["kind"] == "approval").collect();
    assert_eq!(approvals.len(), 2, "each decision once: {notices}");
    assert!(notices["last_refusal"].is_null(), "{notices}");

    let refused = draft_state(&sh, ids[0]).await?;
    assert_eq!(refused["note"], "count it again first", "{refused}");
    let (status, body) = sh.post_json(&format!("/api/drafts/{}/post", ids[0]), &json!({})).await?;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"].as_str().unwrap_or("").contains("count it again first"), "the refusal shows the note: {body}");
    let head = sh.sync().await?["head_seq"].as_u64().expect("head");
    let (status, body) = sh.post_json(&format!("/api/drafts/{}/post", ids[1]), &json!({})).await?;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["seq"], head + 1, "only the approved draft posted");
    wait_until(Duration::from_secs(60), "HQ applies it", || async { Ok(hq.branch_status("SH").await?["last_applied_seq"] == head + 1) })
        .await
        .map_err(|e| logs(e, &sh))?;
    assert_eq!(hq.branch_status("SH").await?["documents_quarantined"], 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_branch_posting_without_approval_is_quarantined_at_hq() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let (hq, sh, _) = cluster(tmp.path(), &[("BRANCHLINE_TEST_SKIP_APPROVAL_CHECK", "1")]).await?;
    let posted = sh.post(&loss("5")).await?;
    let seq = posted.map_err(|e| anyhow::anyhow!("the tampered agent posts: {e:?}"))?["seq"].as_u64().expect("seq");
    let after = sh.post(&loss("1")).await?;
    assert!(after.is_ok(), "{after:?}");
    wait_until(Duration::from_secs(60), "HQ applies both", || async { Ok(hq.branch_status("SH").await?["last_applied_seq"] == seq + 1) })
        .await
        .map_err(|e| anyhow::anyhow!("{e}\nagent log:\n{}\nhq log:\n{}", sh.log(), hq.log()))?;
    assert_eq!(hq.branch_status("SH").await?["documents_quarantined"], 1, "only the unapproved loss");
    let review = hq.get("/api/review").await?;
    let item = &review["items"][0];
    assert_eq!((item["seq"].as_u64(), item["kind"].as_str()), (Some(seq), Some("quarantined")), "{review}");
    assert!(item["reason"].as_str().unwrap_or("").contains("needs HQ approval"), "{review}");
    assert_eq!(sh.get("/api/reports/digest").await?, hq.get("/api/reports/digest?branch=SH").await?, "applied: books agree");
    Ok(())
}
