//! HQ's QUIC door, with real processes: a peer that proves no enrolled key (no client
//! certificate, or a self-signed one of a key HQ never enrolled) is refused at hello,
//! learns nothing about any branch and costs HQ no disk write; ten thousand such peers
//! leave HQ serving a real branch with bounded memory; a revoked branch is refused and
//! its agent shows why.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use edge::FrameReader;
use harness::cluster::{doc, wait_until, AgentProc, HqProc};
use protocol::codes::BranchCode;
use protocol::journal::ChainHead;
use protocol::wire::{Message, RejectCode};
use protocol::SigningKey;

/// A client endpoint without a certificate (`None`) or with one self-signed by `key`.
fn stranger(key: Option<&SigningKey>) -> anyhow::Result<quinn::Endpoint> {
    let tls = harness::raw_client::unpinned_tls(key)?;
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse()?)?;
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(tls)));
    Ok(endpoint)
}

/// Says hello as `branch` and returns everything HQ sends before it ends the stream.
async fn hello_as(endpoint: &quinn::Endpoint, hq: SocketAddr, branch: &BranchCode) -> anyhow::Result<Vec<Message>> {
    let conn = endpoint.connect(hq, "branchline-hq")?.await?;
    let (mut send, recv) = conn.open_bi().await?;
    let hello = Message::Hello { branch: *branch, head: ChainHead::EMPTY, profile_version: 0, down_applied: 0, agent: "stranger".into() };
    send.write_all(&hello.to_frame()).await?;
    let mut reader = FrameReader::new(recv);
    let mut got = Vec::new();
    while let Ok(Ok(Some(m))) = tokio::time::timeout(Duration::from_secs(10), reader.read_message()).await {
        got.push(m);
    }
    conn.close(0u32.into(), b"done");
    Ok(got)
}

/// The reply must be one UnknownBranch refusal that names no branch and no head.
fn assert_refused_blind(got: &[Message], head_hex: &str) {
    match got {
        [Message::Reject { code: RejectCode::UnknownBranch, text }] => {
            assert!(!text.contains("SH"), "the refusal names a branch: {text}");
            assert!(!text.contains(head_hex), "the refusal shows a head hash: {text}");
        }
        other => panic!("expected exactly one UnknownBranch refusal, got {other:?}"),
    }
}

/// HQ's log without terminal colour codes (`ESC [ … m`).
fn plain(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The `store_writes` of HQ's latest door log line (one a second at most).
fn door_store_writes(log: &str) -> Option<u64> {
    let log = plain(log);
    let line = log.lines().rev().find(|l| l.contains("door: hello refused"))?;
    let tail = line.split("store_writes=").nth(1)?;
    tail.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// The pid of the `hq serve` whose data directory is `dir`.
fn hq_pid(dir: &Path) -> anyhow::Result<u32> {
    let want = dir.to_string_lossy().to_string();
    for entry in std::fs::read_dir("/proc")? {
        let entry = entry?;
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let args: Vec<String> = cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).to_string()).collect();
        if args.iter().any(|a| a == "serve") && args.contains(&want) {
            return Ok(pid);
        }
    }
    anyhow::bail!("no hq serve process for {want}")
}

fn rss_kb(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).ok_or_else(|| anyhow::anyhow!("no VmRSS"))?;
    Ok(line.split_whitespace().nth(1).unwrap_or("0").parse()?)
}

/// Sizes and modification times of every file under `dir` (sled's files).
fn files_state(dir: &Path) -> Vec<(String, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let Ok(md) = e.metadata() else { continue };
            if md.is_dir() {
                stack.push(e.path());
            } else {
                out.push((e.path().display().to_string(), md.len(), md.modified().unwrap_or(std::time::UNIX_EPOCH)));
            }
        }
    }
    out.sort();
    out
}

const ATTEMPTS: usize = 10_000;
const CONCURRENCY: usize = 32;
const RSS_GROWTH_KB_MAX: u64 = 64 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_door_is_closed_to_peers_without_an_enrolled_key() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let hq_dir = tmp.path().join("hq");
    let mut hq = HqProc::init(&hq_dir, 3)?;
    let token = hq.add_branch("SH", &["SH01"])?;
    hq.start()?;
    let mut sh = AgentProc::enroll(&tmp.path().join("sh"), hq.quic, &token)?;
    sh.start()?;
    let logs = |hq: &HqProc, sh: &AgentProc| format!("agent log:\n{}\nhq log:\n{}", sh.log(), hq.log());
    assert!(sh.post(&doc("JH", "SH01", &[("P0001", "10", "3.30")])).await?.is_ok());
    wait_until(Duration::from_secs(60), "the real branch syncs", || async { Ok(sh.sync().await?["acked_seq"] == 1) })
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", logs(&hq, &sh)))?;
    let head_hex = hq.branch_status("SH").await?["head_hash"].as_str().unwrap_or("none").to_string();
    let code = BranchCode::new("SH")?;

    // Without a certificate, and with a self-signed certificate of a key HQ never saw.
    let no_cert = stranger(None)?;
    let unknown_key = SigningKey::from_bytes(&rand::random());
    let unknown = stranger(Some(&unknown_key))?;
    let sled_before = files_state(&hq_dir.join("store"));
    assert_refused_blind(&hello_as(&no_cert, hq.quic, &code).await?, &head_hex);
    assert_refused_blind(&hello_as(&unknown, hq.quic, &code).await?, &head_hex);
    let first = wait_for_door_line(&hq).await?;
    for _ in 0..20 {
        assert_refused_blind(&hello_as(&no_cert, hq.quic, &code).await?, &head_hex);
        assert_refused_blind(&hello_as(&unknown, hq.quic, &code).await?, &head_hex);
    }
    // The door logs at most once a second; the next line carries the counters.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_refused_blind(&hello_as(&unknown, hq.quic, &code).await?, &head_hex);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = plain(&hq.log());
    let last = door_store_writes(&log).expect("door line");
    assert_eq!(first, last, "refused peers made HQ write to disk:\n{log}");
    assert!(log.contains("refused_unknown=43"), "43 refusals counted:\n{log}");
    assert_eq!(files_state(&hq_dir.join("store")), sled_before, "HQ's files changed for refused peers");
    let rejections = hq.branch_status("SH").await?["rejections"].clone();
    assert_eq!(rejections, 0, "no rejection record for unknown peers");

    // Ten thousand of them, 32 at a time, while the real branch keeps posting.
    let pid = hq_pid(&hq_dir)?;
    let rss_before = rss_kb(pid)?;
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..CONCURRENCY {
        let ep = if w % 2 == 0 { stranger(None)? } else { stranger(Some(&SigningKey::from_bytes(&rand::random())))? };
        let addr = hq.quic;
        workers.push(tokio::spawn(async move {
            let mut refused = 0usize;
            for _ in 0..ATTEMPTS / CONCURRENCY {
                if let Ok(got) = hello_as(&ep, addr, &code).await {
                    assert!(
                        got.iter().all(|m| matches!(m, Message::Reject { code: RejectCode::UnknownBranch, .. })),
                        "a stranger got {got:?}"
                    );
                    refused += 1;
                }
            }
            refused
        }));
    }
    let mut posted = 1u64;
    let mut rss_max = rss_before;
    while workers.iter().any(|w| !w.is_finished()) {
        assert!(sh.post(&doc("JH", "SH01", &[("P0002", "1", "2.00")])).await?.is_ok());
        posted += 1;
        rss_max = rss_max.max(rss_kb(pid)?);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut refused = 0;
    for w in workers {
        refused += w.await?;
    }
    assert!(refused >= ATTEMPTS * 9 / 10, "only {refused} attempts were answered");
    let rss_after = rss_kb(pid)?;
    rss_max = rss_max.max(rss_after);
    eprintln!("{refused} strangers refused in {:?}; HQ RSS {rss_before} kB → max {rss_max} kB", started.elapsed());
    assert!(rss_max < rss_before + RSS_GROWTH_KB_MAX, "HQ's memory grew from {rss_before} kB to {rss_max} kB");
    wait_until(Duration::from_secs(60), "the real branch still syncs", || async { Ok(sh.sync().await?["acked_seq"] == posted) })
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", logs(&hq, &sh)))?;
    assert_eq!(hq.branch_status("SH").await?["documents_applied"], posted);
    assert_eq!(hq.branch_status("SH").await?["rejections"], 0);

    // Revoked (HQ stopped: the CLI opens the store), the branch is refused and says why.
    hq.kill9();
    hq.cli(&["branch", "revoke", "SH", "--reason", "stolen till"])?;
    hq.start()?;
    wait_until(Duration::from_secs(60), "the agent shows the revocation", || async {
        let s = sh.sync().await?;
        Ok(s["link_up"] == false && s["last_error"].as_str().is_some_and(|e| e.contains("revoked") && e.contains("stolen till")))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", logs(&hq, &sh)))?;
    assert!(sh.post(&doc("JH", "SH01", &[("P0002", "1", "2.00")])).await?.is_ok(), "the branch still posts offline");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(hq.branch_status("SH").await?["documents_applied"], posted, "nothing from a revoked key is applied");
    Ok(())
}

/// Waits for HQ's first door log line and returns its `store_writes`.
async fn wait_for_door_line(hq: &HqProc) -> anyhow::Result<u64> {
    for _ in 0..50 {
        if let Some(n) = door_store_writes(&hq.log()) {
            return Ok(n);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("no door line in HQ's log:\n{}", hq.log())
}
