//! Two branches post while HQ is down; HQ starts; every document arrives exactly once
//! and HQ's consolidated stock equals the sum of the branches' stock.

use std::time::Duration;

use harness::cluster::{doc, stock_map, wait_until, AgentProc, HqProc};

const DOCS_PER_BRANCH: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn branches_post_offline_and_hq_merges_exactly_once() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut hq = HqProc::init(&tmp.path().join("hq"), 5)?;
    let sh_token = hq.add_branch("SH", &["SH01", "SH01-T"])?;
    let hb_token = hq.add_branch("HB", &["HB01"])?;
    hq.start()?;
    let mut sh = AgentProc::enroll(&tmp.path().join("sh"), hq.quic, &sh_token)?;
    let mut hb = AgentProc::enroll(&tmp.path().join("hb"), hq.quic, &hb_token)?;
    hq.kill9();

    sh.start()?;
    hb.start()?;
    for (agent, wh) in [(&sh, "SH01"), (&hb, "HB01")] {
        for i in 0..DOCS_PER_BRANCH {
            let p = format!("P{:04}", i % 5);
            let d = match i % 4 {
                0 | 1 => doc("JH", wh, &[(&p, "10", "3.30"), ("P0004", "1.5", "2.125")]),
                // Sell from the receipt just before, so stock is always there.
                2 => doc("XS", wh, &[(&format!("P{:04}", (i - 1) % 5), "3", "9.99")]),
                _ => doc("BY", wh, &[(&p, "1", "3.00")]),
            };
            let posted = agent.post(&d).await?;
            assert!(posted.is_ok(), "post {i} at {wh} refused: {posted:?}");
        }
        let s = agent.sync().await?;
        assert_eq!(s["link_up"], false, "HQ is down");
        assert_eq!(s["pending"], DOCS_PER_BRANCH as u64, "all documents wait in the outbox");
    }
    // A refusal changes nothing: selling more than is on hand under moving average.
    let refused = sh.post(&doc("XS", "SH01", &[("P0001", "100000", "1")])).await?;
    assert!(matches!(&refused, Err((422, msg)) if msg.contains("not enough stock")), "{refused:?}");
    let refused = sh.post(&doc("JH", "HB01", &[("P0001", "1", "1")])).await?;
    assert!(matches!(&refused, Err((422, msg)) if msg.contains("HB01 is outside SH's warehouses")), "{refused:?}");
    let refused = sh.post(&doc("JH", "SH01", &[("NOPE", "1", "1")])).await?;
    assert!(matches!(&refused, Err((422, msg)) if msg.contains("unknown product")), "{refused:?}");

    hq.start()?;
    for (agent, code) in [(&sh, "SH"), (&hb, "HB")] {
        wait_until(Duration::from_secs(60), "branch to drain its outbox", || async {
            let s = agent.sync().await?;
            Ok(s["acked_seq"] == DOCS_PER_BRANCH as u64 && s["pending"] == 0)
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}\nagent log:\n{}\nhq log:\n{}", agent.log(), hq.log()))?;
        let b = hq.branch_status(code).await?;
        assert_eq!(b["last_applied_seq"], DOCS_PER_BRANCH as u64);
        assert_eq!(b["documents_applied"], DOCS_PER_BRANCH as u64, "each document applied exactly once");
        assert_eq!(b["rejections"], 0);
    }
    // HQ's consolidated stock is the union of the branches' (their warehouses are disjoint).
    let mut expected = stock_map(&sh.stock().await?);
    expected.extend(stock_map(&hb.stock().await?));
    let at_hq = stock_map(&hq.get("/api/stock").await?);
    assert_eq!(at_hq, expected);
    assert!(!expected.is_empty());

    // Every accepted document is kept with its signature.
    let d = hq.get("/api/branches/SH/documents/1").await?;
    assert_eq!(d["signature"], "valid");
    assert_eq!(d["number"], "JH-SH-0609-001");
    let d = hq.get(&format!("/api/branches/HB/documents/{DOCS_PER_BRANCH}")).await?;
    assert_eq!(d["signature"], "valid");
    assert_eq!(d["applied_to_books"], true);

    // Restarting the agents replays nothing new: still exactly once.
    sh.kill9();
    sh.start()?;
    wait_until(Duration::from_secs(30), "agent reconnects", || async { Ok(sh.sync().await?["link_up"] == true) }).await?;
    assert_eq!(hq.branch_status("SH").await?["documents_applied"], DOCS_PER_BRANCH as u64);
    Ok(())
}
