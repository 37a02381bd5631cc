//! `load`: many branches at once against one real HQ. Starts `hq` (the binary beside
//! this one, or `--hq-bin`), enrolls N branches through HQ's admin API and the QUIC
//! enrollment message, then opens N real QUIC connections, each proving its branch's
//! key in the TLS handshake, and has each send one small batch (one stock-gain document
//! of 1–5 lines) at random intervals, waiting for its ack before the next. Reports
//! documents/s acked, ack latency p50/p99 (send → ack), and HQ's RSS and CPU over the
//! measured window.
//!
//! `cargo run -p branchline-tests --bin load -- --branches 1000 --seconds 15`
//! `--hq-bin PATH` runs another build of `hq` (e.g. main's, for a baseline) with the
//! same generator.
//!
//! Must not: ship: it proves keys through `raw_client`, which does not pin HQ.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use edge::FrameReader;
use harness::cluster::HqProc;
use protocol::batch::SignedBatch;
use protocol::codes::{BranchCode, OperatorId, ProductCode, WarehouseCode};
use protocol::date::BusinessDate;
use protocol::document::{DocType, Draft, Line};
use protocol::journal::ChainHead;
use protocol::wire::Message;
use protocol::{Decimal, SigningKey};
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// Branches, each one QUIC connection.
    #[arg(long, default_value_t = 100)]
    branches: usize,
    /// Measured seconds (after every branch is connected).
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// Mean pause between a branch's ack and its next batch, in ms (uniform 0..2×mean);
    /// 0 sends the next batch at once (full speed).
    #[arg(long, default_value_t = 0)]
    interval_ms: u64,
    /// The hq binary (default: the one built beside this).
    #[arg(long)]
    hq_bin: Option<PathBuf>,
    /// Data directory (default: a fresh temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Products in HQ's catalog; each document's lines are drawn from them.
const PRODUCTS: usize = 5;

/// A client endpoint, with a certificate bound to `key` or none (to enroll).
fn endpoint(key: Option<&SigningKey>) -> anyhow::Result<quinn::Endpoint> {
    let tls = harness::raw_client::unpinned_tls(key)?;
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse()?)?;
    let mut client = quinn::ClientConfig::new(Arc::new(tls));
    client.transport_config(edge::transport_config());
    endpoint.set_default_client_config(client);
    Ok(endpoint)
}

/// Branch codes are uppercase letters: `L` then the index in base 26.
fn branch_code(i: usize) -> String {
    let mut s = String::new();
    let mut n = i;
    loop {
        s.insert(0, char::from(b'A' + (n % 26) as u8));
        n /= 26;
        if n == 0 {
            break;
        }
    }
    format!("L{s}")
}

struct Branch {
    code: BranchCode,
    warehouse: WarehouseCode,
    key: SigningKey,
    profile_version: u64,
}

async fn enroll(hq_quic: SocketAddr, token: String, code: BranchCode, warehouse: WarehouseCode) -> anyhow::Result<Branch> {
    let key = SigningKey::from_bytes(&rand::random());
    let ep = endpoint(None)?;
    let conn = ep.connect(hq_quic, "branchline-hq")?.await?;
    let (mut send, recv) = conn.open_bi().await?;
    let m = Message::Enroll { token, branch_key: key.verifying_key().to_bytes() };
    send.write_all(&m.to_frame()).await?;
    let mut reader = FrameReader::new(recv);
    let reply = tokio::time::timeout(Duration::from_secs(60), reader.read_message()).await.context("enrollment timed out")??;
    conn.close(0u32.into(), b"enrolled");
    match reply {
        Some(Message::Enrolled { profile, .. }) => Ok(Branch { code, warehouse, key, profile_version: profile.version }),
        other => bail!("enrolling {code}: {other:?}"),
    }
}

/// One document of 1–5 lines, the `k`th this branch sends.
fn document(b: &Branch, k: u64, rng: &mut impl rand::Rng) -> protocol::document::Document {
    let lines = rng.gen_range(1..=5usize);
    // At most 900 a day per type, then the next day: numbers stay within NNN.
    let day = k / 900;
    let date = BusinessDate::new(2026, 1 + (day / 28 % 12) as u8, 1 + (day % 28) as u8).expect("a valid date");
    Draft {
        doc_type: DocType::StockGain,
        date,
        operator: OperatorId::new("loader").expect("valid operator"),
        warehouse: b.warehouse,
        counterparty: None,
        memo: String::new(),
        payment: None,
        lines: (0..lines)
            .map(|i| Line::priced(ProductCode::new(format!("P{:04}", i % PRODUCTS)).expect("product"), Decimal::ONE, Decimal::new(250, 2)))
            .collect(),
        ext: Default::default(),
    }
    .number_under(b.code, (k % 900) as u32 + 1, b.profile_version)
    .expect("a valid document")
}

#[derive(Default)]
struct Totals {
    docs: AtomicU64,
    errors: AtomicU64,
}

/// One branch's session: hello, then batches until `stop`; returns its ack latencies in
/// microseconds measured after `measure_from`.
// The shared handles of one run, passed as they are; a struct would only rename them.
#[allow(clippy::too_many_arguments)]
async fn run_branch(
    hq_quic: SocketAddr,
    b: Branch,
    interval_ms: u64,
    ready: Arc<tokio::sync::Barrier>,
    measure_from: Arc<std::sync::OnceLock<Instant>>,
    stop_at: Arc<std::sync::OnceLock<Instant>>,
    totals: Arc<Totals>,
    connecting: Arc<tokio::sync::Semaphore>,
) -> anyhow::Result<Vec<u32>> {
    let connected = async {
        // A bounded number of handshakes at a time, as a fleet of stores reconnecting.
        let _slot = connecting.acquire().await?;
        let ep = endpoint(Some(&b.key))?;
        let conn = ep.connect(hq_quic, "branchline-hq")?.await?;
        let (mut send, recv) = conn.open_bi().await?;
        let hello = Message::Hello {
            branch: b.code,
            head: ChainHead::EMPTY,
            profile_version: b.profile_version,
            down_applied: 0,
            agent: "load".into(),
        };
        send.write_all(&hello.to_frame()).await?;
        let mut reader = FrameReader::new(recv);
        loop {
            match reader.read_message().await? {
                Some(Message::Resume { .. }) => break,
                Some(_) => continue,
                None => bail!("{}: stream ended before resume", b.code),
            }
        }
        anyhow::Ok((ep, conn, send, reader))
    }
    .await;
    // Every session reaches the barrier, connected or not, so one failure cannot hang
    // the run; a failed one is counted at the end.
    ready.wait().await;
    let (_ep, conn, mut send, mut reader) = connected?;
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::from_entropy();
    let mut head = ChainHead::EMPTY;
    let mut lat = Vec::new();
    let mut k = 0u64;
    loop {
        let now = Instant::now();
        if stop_at.get().is_some_and(|s| now >= *s) {
            break;
        }
        if interval_ms > 0 {
            let pause = rand::Rng::gen_range(&mut rng, 0..=2 * interval_ms);
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        let doc = document(&b, k, &mut rng);
        k += 1;
        let (_, bytes, next) = head.append(doc);
        let signed = SignedBatch::sign(&b.code, vec![bytes], &b.key);
        let sent = Instant::now();
        send.write_all(&Message::Batch(signed).to_frame()).await?;
        loop {
            match reader.read_message().await? {
                Some(Message::Ack { applied }) if applied >= next.seq => break,
                Some(Message::Reject { text, .. }) => {
                    totals.errors.fetch_add(1, Ordering::Relaxed);
                    bail!("{}: rejected: {text}", b.code)
                }
                Some(_) => continue,
                None => bail!("{}: stream ended", b.code),
            }
        }
        let acked = Instant::now();
        head = next;
        if measure_from.get().is_some_and(|m| sent >= *m) && stop_at.get().is_none_or(|s| acked <= *s) {
            totals.docs.fetch_add(1, Ordering::Relaxed);
            lat.push(u32::try_from(acked.duration_since(sent).as_micros()).unwrap_or(u32::MAX));
        }
    }
    conn.close(0u32.into(), b"done");
    Ok(lat)
}

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
    bail!("no hq serve process for {want}")
}

/// (RSS in KiB, CPU ticks user+system) of `pid`.
fn usage(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss = status.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0) + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    Ok((rss, ticks))
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(bin) = &args.hq_bin {
        // Read by the harness when it starts `hq`; set while this is the only thread that
        // reads the environment (the runtime's workers do not).
        unsafe { std::env::set_var("BRANCHLINE_HQ_BIN", bin) };
    }
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().join("hq"));
    let mut hq = HqProc::init(&dir, PRODUCTS)?;
    // Room for every branch's connection (the default is 256).
    let toml = dir.join("hq.toml");
    let cfg = std::fs::read_to_string(&toml).unwrap_or_default();
    let mut cfg: String = cfg.lines().filter(|l| !l.trim_start().starts_with("max_connections")).map(|l| format!("{l}\n")).collect();
    cfg.push_str(&format!("max_connections = {}\n", args.branches + 64));
    std::fs::write(&toml, cfg)?;
    hq.start()?;
    let t0 = Instant::now();
    let mut tokens = Vec::with_capacity(args.branches);
    for i in 0..args.branches {
        let code = branch_code(i);
        let w = format!("W{i}");
        let (status, v) = hq.post_json("/api/admin/branches", &json!({ "code": code, "name": code, "warehouses": [w] })).await?;
        if status != 200 {
            bail!("adding branch {code}: {status} {v}");
        }
        let token = v["token"].as_str().context("no token")?.to_string();
        tokens.push((BranchCode::new(code)?, WarehouseCode::new(w)?, token));
    }
    eprintln!("{} branches added in {:.1}s", args.branches, t0.elapsed().as_secs_f64());
    let t1 = Instant::now();
    let quic = hq.quic;
    let mut branches = Vec::with_capacity(args.branches);
    for chunk in tokens.chunks(32) {
        let joins: Vec<_> = chunk.iter().cloned().map(|(c, w, t)| tokio::spawn(enroll(quic, t, c, w))).collect();
        for j in joins {
            branches.push(j.await??);
        }
    }
    eprintln!("{} branches enrolled in {:.1}s", branches.len(), t1.elapsed().as_secs_f64());
    let pid = hq_pid(&dir)?;
    let ready = Arc::new(tokio::sync::Barrier::new(branches.len() + 1));
    let measure_from = Arc::new(std::sync::OnceLock::new());
    let stop_at = Arc::new(std::sync::OnceLock::new());
    let totals = Arc::new(Totals::default());
    let connecting = Arc::new(tokio::sync::Semaphore::new(32));
    let mut tasks = Vec::new();
    for b in branches {
        tasks.push(tokio::spawn(run_branch(
            quic,
            b,
            args.interval_ms,
            ready.clone(),
            measure_from.clone(),
            stop_at.clone(),
            totals.clone(),
            connecting.clone(),
        )));
    }
    ready.wait().await;
    eprintln!("all {} connected; warming up 2 s", args.branches);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let start = Instant::now();
    let (_, ticks0) = usage(pid)?;
    let _ = measure_from.set(start);
    let mut rss_max = 0;
    let end = start + Duration::from_secs(args.seconds);
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(500)).await;
        rss_max = rss_max.max(usage(pid)?.0);
    }
    let (rss_end, ticks1) = usage(pid)?;
    let _ = stop_at.set(Instant::now());
    let elapsed = start.elapsed().as_secs_f64();
    let docs = totals.docs.load(Ordering::Relaxed);
    let mut lat = Vec::new();
    let mut failed = 0;
    for t in tasks {
        match t.await? {
            Ok(l) => lat.extend(l),
            Err(e) => {
                failed += 1;
                if failed <= 3 {
                    eprintln!("branch session failed: {e:#}");
                }
            }
        }
    }
    lat.sort_unstable();
    let hz = 100.0; // USER_HZ on Linux
    let cpu = (ticks1 - ticks0) as f64 / hz / elapsed * 100.0;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "branches={} interval_ms={} seconds={:.1} docs_acked={} docs_per_s={:.0} ack_p50_ms={:.1} ack_p99_ms={:.1} hq_rss_mib_max={:.0} hq_rss_mib_end={:.0} hq_cpu_pct_of_one_core={:.0} failed_sessions={} loadavg={}",
        args.branches,
        args.interval_ms,
        elapsed,
        docs,
        docs as f64 / elapsed,
        pct(&lat, 0.50),
        pct(&lat, 0.99),
        rss_max as f64 / 1024.0,
        rss_end as f64 / 1024.0,
        cpu,
        failed,
        load.split_whitespace().take(3).collect::<Vec<_>>().join("/"),
    );
    drop(hq);
    Ok(())
}
