//! The signed down channel through a bad link (issue 9): HQ queues a few hundred down
//! messages for a branch behind the userspace UDP relay (loss, jitter, reordering,
//! duplication, a bandwidth cap), half of them during a 20 s outage; every message is
//! applied exactly once and in order, and nothing is refused.

use std::time::Duration;

use harness::cluster::{wait_until, AgentProc, HqProc};
use harness::relay::{LinkConfig, Relay};
use serde_json::json;

const HALF: u64 = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_messages_through_a_lossy_link_with_an_outage_apply_once_in_order() -> anyhow::Result<()> {
    let seed: u64 = std::env::var("RELAY_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20261204);
    let tmp = tempfile::tempdir()?;
    let mut hq = HqProc::init(&tmp.path().join("hq"), 1)?;
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
    let mut sh = AgentProc::enroll(&tmp.path().join("sh"), hq.quic, &token)?;
    sh.hq = relay.addr().to_string();
    sh.start()?;
    let ctx = |e: anyhow::Error, sh: &AgentProc, hq: &HqProc| {
        anyhow::anyhow!("seed {seed}: {e}\nrelay: {:?}\nagent log:\n{}\nhq log:\n{}", relay.stats(), sh.log(), hq.log())
    };
    wait_until(Duration::from_secs(60), "agent connects through the relay", || async { Ok(sh.sync().await?["link_up"] == true) })
        .await
        .map_err(|e| ctx(e, &sh, &hq))?;
    let (status, body) = hq.post_json(&format!("/api/admin/branches/SH/down/test-flags?count={HALF}"), &json!({})).await?;
    assert_eq!(status, 200, "{body}");
    wait_until(Duration::from_secs(120), "some of the first half applied", || async {
        Ok(sh.get("/api/notices").await?["applied_seq"].as_u64() >= Some(1))
    })
    .await
    .map_err(|e| ctx(e, &sh, &hq))?;
    // The second half is queued while the link is down.
    relay.outage_for(Duration::from_secs(20));
    let (status, body) = hq.post_json(&format!("/api/admin/branches/SH/down/test-flags?count={HALF}"), &json!({})).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["last_seq"], 2 * HALF);
    wait_until(Duration::from_secs(240), "every down message applied", || async {
        Ok(sh.get("/api/notices").await?["applied_seq"] == 2 * HALF)
    })
    .await
    .map_err(|e| ctx(e, &sh, &hq))?;
    let n = sh.get("/api/notices").await?;
    assert_eq!(n["count"], 2 * HALF, "seed {seed}: each message stored once");
    let seqs: Vec<u64> = n["notices"].as_array().expect("notices").iter().filter_map(|x| x["down_seq"].as_u64()).collect();
    assert_eq!(seqs, (1..=2 * HALF).collect::<Vec<_>>(), "seed {seed}: in order, no gaps, no repeats");
    // Texts say which queueing each came from: 1..150 twice, in order.
    let texts: Vec<String> =
        n["notices"].as_array().expect("notices").iter().filter_map(|x| x["text"].as_str().map(String::from)).collect();
    assert!(texts[0].ends_with("test flag 1") && texts[HALF as usize].ends_with("test flag 1"), "{:?}", &texts[..2]);
    assert!(n["last_refusal"].is_null(), "seed {seed}: nothing refused: {n}");
    let stats = relay.stats();
    assert!(
        stats.to_client.dropped_loss > 0 && stats.to_client.dropped_outage + stats.to_upstream.dropped_outage > 0,
        "the link was really bad: {stats:?}"
    );
    Ok(())
}
