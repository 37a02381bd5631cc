//! A bad link between branch and HQ: 10% loss, delay with jitter, reordering,
//! duplication, a bandwidth cap, and a 30 s outage in the middle. The two sides converge
//! to the same journal and stock, each document applied once.

use std::time::Duration;

use harness::cluster::{doc, stock_map, wait_until, AgentProc, HqProc};
use harness::relay::{LinkConfig, Relay};

const DOCS: usize = 120;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lossy_link_with_a_30s_outage_converges() -> anyhow::Result<()> {
    let seed: u64 = std::env::var("RELAY_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20261123);
    let tmp = tempfile::tempdir()?;
    let mut hq = HqProc::init(&tmp.path().join("hq"), 3)?;
    let token = hq.add_branch("SH", &["SH01"])?;
    hq.start()?;
    let link = LinkConfig {
        loss: 0.10,
        delay_ms: 20,
        jitter_ms: 30,
        reorder: 0.05,
        duplicate: 0.02,
        bandwidth_bytes_per_sec: Some(256 * 1024),
        ..LinkConfig::default()
    };
    let relay = Relay::start(hq.quic, link, seed).await?;
    let mut agent = AgentProc::enroll(&tmp.path().join("sh"), hq.quic, &token)?;
    agent.hq = relay.addr().to_string();
    agent.start()?;

    for i in 0..DOCS {
        if i == DOCS / 3 {
            relay.outage_for(Duration::from_secs(30));
        }
        let d = if i % 4 == 3 {
            doc("XS", "SH01", &[("P0000", "1", "8.80")])
        } else {
            doc("JH", "SH01", &[("P0000", "5", "4.40"), (&format!("P{:04}", i % 3), "1", "0.99")])
        };
        let r = agent.post(&d).await?;
        assert!(r.is_ok(), "post {i}: {r:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ctx = |e: anyhow::Error| {
        anyhow::anyhow!("seed {seed}: {e}\nrelay: {:?}\nagent log:\n{}\nhq log:\n{}", relay.stats(), agent.log(), hq.log())
    };
    wait_until(Duration::from_secs(180), "convergence over the bad link", || async {
        let b = hq.branch_status("SH").await?;
        Ok(b["last_applied_seq"] == DOCS as u64)
    })
    .await
    .map_err(ctx)?;
    let b = hq.branch_status("SH").await?;
    assert_eq!(b["documents_applied"], DOCS as u64, "seed {seed}: each document applied once");
    assert_eq!(stock_map(&hq.get("/api/stock").await?), stock_map(&agent.stock().await?));
    let stats = relay.stats();
    assert!(stats.to_upstream.dropped_loss > 0 && stats.to_upstream.dropped_outage > 0, "the link was really bad: {stats:?}");
    wait_until(Duration::from_secs(30), "agent sees the final ack", || async { Ok(agent.sync().await?["pending"] == 0) })
        .await
        .map_err(ctx)?;
    Ok(())
}
