//! Issue 10: a branch restored from an old copy of its data directory must not believe
//! it is in sync. Sync 20 documents, copy the store, sync 15 more, restore the copy, post
//! 20 more (HQ unreachable meanwhile, so they are taken offline as they would be), then
//! let it reach HQ: it used to show `acked_seq 35` for documents HQ never received (its 21
//! is not HQ's 21). Now it finds its own entry at HQ's applied seq differs, stops posting
//! (409), says so on every answer and on its page, sends nothing, and stays stopped after
//! a restart; HQ is unchanged. (If the agent's hello went out before the 20 posts, HQ
//! refuses it as behind instead; the branch halts the same way.)

use std::path::Path;
use std::time::Duration;

use harness::cluster::{doc, wait_until, AgentProc, HqProc};

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &target)?;
        } else {
            std::fs::copy(e.path(), target)?;
        }
    }
    Ok(())
}

async fn post_n(agent: &AgentProc, n: usize, price: &str) -> anyhow::Result<()> {
    for i in 0..n {
        let posted = agent.post(&doc("JH", "SH01", &[(&format!("P{:04}", i % 3), "1", price)])).await?;
        assert!(posted.is_ok(), "post {i} refused: {posted:?}");
    }
    Ok(())
}

async fn wait_acked(agent: &AgentProc, hq: &HqProc, seq: u64) -> anyhow::Result<()> {
    wait_until(Duration::from_secs(60), &format!("HQ to ack {seq}"), || async { Ok(agent.sync().await?["acked_seq"] == seq) })
        .await
        .map_err(|e| anyhow::anyhow!("{e}\nagent log:\n{}\nhq log:\n{}", agent.log(), hq.log()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restored_copy_that_posted_again_stops_posting_and_says_so() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut hq = HqProc::init(&tmp.path().join("hq"), 3)?;
    let token = hq.add_branch("SH", &["SH01"])?;
    hq.start()?;
    let dir = tmp.path().join("sh");
    let mut sh = AgentProc::enroll(&dir, hq.quic, &token)?;
    sh.start()?;
    post_n(&sh, 20, "1.00").await?;
    wait_acked(&sh, &hq, 20).await?;

    // The copy of the data directory (taken as a crash would leave it).
    sh.kill9();
    let copy = tmp.path().join("sh-store-copy");
    copy_dir(&dir.join("store"), &copy)?;
    sh.start()?;
    post_n(&sh, 15, "2.00").await?;
    wait_acked(&sh, &hq, 35).await?;
    assert_eq!(hq.branch_status("SH").await?["last_applied_seq"], 35);

    // Restore the copy while HQ is unreachable, and post 20 more: taken offline.
    sh.kill9();
    hq.kill9();
    std::fs::remove_dir_all(dir.join("store"))?;
    copy_dir(&copy, &dir.join("store"))?;
    sh.start()?;
    post_n(&sh, 20, "3.00").await?;
    let s = sh.sync().await?;
    // The acked mark is advisory (not flushed), so the copy may hold a lower one.
    assert_eq!(s["head_seq"].as_u64(), Some(40), "{s}");
    assert!(s["acked_seq"].as_u64() <= Some(20), "{s}");

    // HQ comes back: the branch finds HQ's 35 is not its own 35 and stops.
    hq.start()?;
    wait_until(Duration::from_secs(60), "the branch to stop posting", || async {
        Ok(!sh.get("/api/sync").await?["posting_stopped"].is_null())
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\nagent log:\n{}\nhq log:\n{}", sh.log(), hq.log()))?;
    let answer = sh.get("/api/sync").await?;
    let why = answer["posting_stopped"].as_str().unwrap_or_default().to_string();
    // Found on resume (HQ's 35 is not ours: a fork), or by HQ when the hello went out
    // before the 20 posts (the branch's head then was 20: behind).
    assert!(why.contains("35") && (why.contains("forked") || why.contains("old copy")), "{why}");
    assert!(answer["status"]["acked_seq"].as_u64() <= Some(20), "acked for documents HQ never received: {answer}");
    let refused = sh.post(&doc("JH", "SH01", &[("P0000", "1", "1.00")])).await?;
    assert!(matches!(&refused, Err((409, msg)) if msg.contains("posting is stopped")), "{refused:?}");
    assert_eq!(sh.sync().await?["head_seq"], 40, "the refused post took no seq");
    // Every answer says so; so does the status page.
    let r = harness::cluster::client().get(sh.url("/api/stock")).bearer_auth(sh.token.as_deref().unwrap_or_default()).send().await?;
    assert!(r.headers().get("x-branchline-posting-stopped").is_some(), "{:?}", r.headers());
    let page =
        harness::cluster::client().get(sh.url("/")).bearer_auth(sh.token.as_deref().unwrap_or_default()).send().await?.text().await?;
    assert!(page.contains("Posting is stopped"), "{page}");
    // HQ took none of the restored branch's documents.
    let b = hq.branch_status("SH").await?;
    assert_eq!((b["last_applied_seq"].as_u64(), b["documents_applied"].as_u64()), (Some(35), Some(35)), "{b}");

    // A restart keeps it stopped (the halt is stored), and it does not talk to HQ.
    sh.kill9();
    sh.start()?;
    let refused = sh.post(&doc("JH", "SH01", &[("P0000", "1", "1.00")])).await?;
    assert!(matches!(&refused, Err((409, _))), "{refused:?}");
    assert!(!sh.get("/api/sync").await?["posting_stopped"].is_null());
    assert_eq!(hq.branch_status("SH").await?["documents_applied"], 35);
    Ok(())
}
