//! `post_latency`: how long a branch takes to answer a post, durable write included,
//! beside the HTTP round trip of a cheap read measured the same way in the same run.
//!
//! Starts a real HQ and one real branch agent on loopback (release binaries when run with
//! `--release`), stocks the branch, then posts `--posts` documents one after another from
//! one client through `POST /api/documents` — each answered only after the agent's sled
//! flush — while HQ runs and the forwarder ships every post to it, as in a shop. A
//! realistic small mix: per 20 posts, 6 credit sales, 2 cash sales, 4 retail sales, 6
//! purchase receipts (1–5 lines each) and 2 receipts settling the oldest open sale.
//!
//! Each iteration also times, in rotating order so none always follows a post:
//! - `GET /api/sync`, a cheap read (a status copy under a mutex): the baseline, the cost
//!   of HTTP on loopback plus the agent's request handling;
//! - writing 1 KiB in place into a preallocated file in the agent's data directory,
//!   then `fdatasync`: what the disk asks for one write that survives a power cut;
//! - the same write, then `sync_file_range(WAIT_BEFORE | WRITE | WAIT_AFTER)`: what
//!   sled 0.34's `flush` does per call on Linux (see `range_write`).
//!
//! `cargo run --release -p branchline-tests --bin post_latency -- --posts 10000`
//!
//! Must not: be part of `cargo test`: it is a measurement, run by hand.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use clap::Parser;
use harness::cluster::{client, wait_until, AgentProc, HqProc};
use serde_json::{json, Value};

/// Local post latency at a branch (durable write included), with a read and a bare
/// fdatasync as baselines from the same run.
#[derive(Parser)]
struct Args {
    /// Documents posted and timed.
    #[arg(long, default_value_t = 10_000)]
    posts: usize,
    /// Posts (and reads) before timing starts, after the branch is stocked.
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    /// Products in HQ's catalog (each is one `hq product add`).
    #[arg(long, default_value_t = 50)]
    products: usize,
    /// Where HQ's and the agent's data go: a new or empty directory, kept afterwards
    /// (default: a fresh temp dir, removed at the end). Must be a real disk for the flush
    /// to mean anything.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Stop HQ before timing, so the forwarder is idle (the shop offline).
    #[arg(long)]
    without_hq: bool,
    /// After the sequential run: posts/s with this many concurrent clients beside one
    /// client (each for `--concurrent-seconds`); 0 skips it.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    #[arg(long, default_value_t = 5)]
    concurrent_seconds: u64,
}

/// Posts stock gains from `clients` concurrent clients for `seconds`; posts answered/s.
async fn concurrent_posts(agent: &AgentProc, clients: usize, seconds: u64, day: usize) -> anyhow::Result<f64> {
    let end = Instant::now() + Duration::from_secs(seconds);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let body = json!({"doc_type": "BY", "date": format!("2026-12-{:02}", 1 + day % 28), "warehouse": WAREHOUSE,
            "lines": [{"product": "P0000", "qty": "1", "unit_price": "1.00"}]});
        let base = agent.url("");
        let token = agent.token.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < end {
                let mut req = client().post(format!("{base}/api/documents")).json(&body);
                if let Some(t) = &token {
                    req = req.bearer_auth(t);
                }
                let (_, status, v) = timed(req).await?;
                ensure!((200..300).contains(&status), "concurrent post: {status} {v}");
                n += 1;
            }
            anyhow::Ok(n)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    Ok(total as f64 / t0.elapsed().as_secs_f64())
}

const BRANCH: &str = "SH";
const WAREHOUSE: &str = "SH01";
/// Opening purchase per product: far more than the measured sales take.
const STOCK_QTY: u64 = 100_000;
/// Posts per business day; the date moves on after each so numbering restarts.
const POSTS_PER_DAY: usize = 1_000;
/// Liveness bound for HQ to take everything after the last post (not a performance bound).
const DRAIN_LIMIT: Duration = Duration::from_secs(120);

/// splitmix64, fixed seed: the same documents in every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

fn cents_text(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// Purchase cost of product `p` in cents (1.00 to 9.99).
fn cost_cents(p: usize) -> u64 {
    100 + (p as u64 * 7_919) % 900
}

/// Makes the documents of the mix and keeps the open credit sales for the receipts.
struct Mix {
    rng: Rng,
    products: usize,
    /// Credit sales not yet settled: (number, customer, total in cents).
    open: std::collections::VecDeque<(String, String, u64)>,
}

impl Mix {
    fn date(k: usize) -> String {
        format!("2026-06-{:02}", 1 + k / POSTS_PER_DAY)
    }

    /// 1–5 lines: `(product, qty, unit price cents)`.
    fn lines(&mut self, qty_lo: u64, qty_hi: u64, markup_percent: u64) -> Vec<(String, u64, u64)> {
        let n = self.rng.range(1, 5);
        (0..n)
            .map(|_| {
                let p = self.rng.range(0, self.products as u64 - 1) as usize;
                (format!("P{p:04}"), self.rng.range(qty_lo, qty_hi), cost_cents(p) * markup_percent / 100)
            })
            .collect()
    }

    /// Document `k` (0-based over warm-up and measured posts) and, for a credit sale, its
    /// customer and total so the answer's number can be remembered.
    fn doc(&mut self, k: usize) -> (Value, Option<(String, u64)>) {
        let date = Mix::date(k);
        let json_lines = |lines: &[(String, u64, u64)]| -> Vec<Value> {
            lines.iter().map(|(p, q, c)| json!({"product": p, "qty": q.to_string(), "unit_price": cents_text(*c)})).collect()
        };
        let total = |lines: &[(String, u64, u64)]| lines.iter().map(|(_, q, c)| q * c).sum::<u64>();
        let base = |doc_type: &str| json!({"doc_type": doc_type, "date": date, "operator": "sh-li", "warehouse": WAREHOUSE});
        match k % 20 {
            // Receipts settle the oldest open credit sale, if there is one.
            9 | 19 if !self.open.is_empty() => {
                let (number, customer, cents) = self.open.pop_front().expect("checked non-empty");
                let mut d = base("SK");
                d["counterparty"] = json!(customer);
                d["ext"] =
                    json!({"account": "1002.ICBC", "money": cents_text(cents), "settles": [{"doc": number, "amount": cents_text(cents)}]});
                (d, None)
            }
            0 | 2 | 4 | 11 | 13 | 15 => {
                let lines = self.lines(1, 5, 130);
                let customer = format!("C{:04}", self.rng.range(1, 40));
                let mut d = base("XS");
                d["counterparty"] = json!(customer);
                d["lines"] = json!(json_lines(&lines));
                (d, Some((customer, total(&lines))))
            }
            6 | 17 => {
                let lines = self.lines(1, 5, 130);
                let mut d = base("XS");
                d["counterparty"] = json!(format!("C{:04}", self.rng.range(1, 40)));
                d["lines"] = json!(json_lines(&lines));
                d["ext"] = json!({"account": "1001"});
                (d, None)
            }
            1 | 7 | 12 | 18 => {
                let lines = self.lines(1, 3, 135);
                let t = total(&lines);
                let mut d = base("LS");
                d["lines"] = json!(json_lines(&lines));
                d["payment"] = if k.is_multiple_of(2) {
                    // Cash: the next 50 yuan up.
                    let tendered = (t / 5_000 + 1) * 5_000;
                    json!({"method": "Cash", "tendered": cents_text(tendered), "change": cents_text(tendered - t)})
                } else {
                    json!({"method": "Mobile", "tendered": cents_text(t), "change": "0.00"})
                };
                (d, None)
            }
            _ => {
                let lines = self.lines(10, 50, 100);
                let mut d = base("JH");
                d["counterparty"] = json!(format!("S{:02}", self.rng.range(1, 5)));
                d["lines"] = json!(json_lines(&lines));
                (d, None)
            }
        }
    }
}

/// One request, timed from before sending to the last byte of the answer. The body is
/// serialized before the clock starts and the answer parsed after it stops.
async fn timed(req: reqwest::RequestBuilder) -> anyhow::Result<(Duration, u16, Value)> {
    let t0 = Instant::now();
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await?;
    let took = t0.elapsed();
    let v: Value = serde_json::from_slice(&bytes).with_context(|| format!("answer is not JSON: {}", String::from_utf8_lossy(&bytes)))?;
    Ok((took, status, v))
}

async fn post_doc(agent: &AgentProc, body: &Value) -> anyhow::Result<(Duration, Value)> {
    let bytes = serde_json::to_vec(body)?;
    let req = client()
        .post(agent.url("/api/documents"))
        .bearer_auth(agent.token.as_deref().unwrap_or(""))
        .header("content-type", "application/json")
        .body(bytes);
    let (took, status, v) = timed(req).await?;
    ensure!(status == 201, "post refused ({status}): {v}\ndocument: {body}");
    Ok((took, v))
}

async fn get_sync(agent: &AgentProc) -> anyhow::Result<(Duration, Value)> {
    let (took, status, v) = timed(client().get(agent.url("/api/sync")).bearer_auth(agent.token.as_deref().unwrap_or(""))).await?;
    ensure!(status == 200, "GET /api/sync answered {status}: {v}");
    Ok((took, v))
}

/// Size of the file the disk probe writes into, allocated and synced before timing.
const PROBE_FILE_BYTES: u64 = 4 << 20;
const PROBE_WRITE_BYTES: u64 = 1024;

/// A file written in place, as sled writes into its log segments: the size never
/// changes, so `fdatasync` has only the data to flush, not the file's metadata.
fn probe_file(path: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let mut f = std::fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(path)?;
    f.write_all(&vec![0u8; PROBE_FILE_BYTES as usize])?;
    f.sync_all()?;
    Ok(f)
}

fn probe_offset(k: usize) -> u64 {
    (k as u64 * PROBE_WRITE_BYTES) % PROBE_FILE_BYTES
}

/// Writes 1 KiB at the `k`-th place and waits for `fdatasync`: one durable write,
/// nothing else.
fn disk_write(f: &std::fs::File, k: usize) -> anyhow::Result<Duration> {
    use std::os::unix::fs::FileExt;
    let t0 = Instant::now();
    f.write_all_at(&[0x5a; PROBE_WRITE_BYTES as usize], probe_offset(k))?;
    f.sync_data()?;
    Ok(t0.elapsed())
}

/// Writes 1 KiB at the `k`-th place and waits as sled 0.34's `flush` does on Linux
/// (`pagecache/iobuf.rs`): `sync_file_range` with WAIT_BEFORE | WRITE | WAIT_AFTER. That
/// waits until the kernel has handed the range to the device, but flushes neither the
/// device's write cache nor the file's metadata; sled leaves those to a background
/// `fsync` every `flush_every_ms` (500 ms by default).
#[cfg(target_os = "linux")]
fn range_write(f: &std::fs::File, k: usize) -> anyhow::Result<Duration> {
    use std::os::raw::{c_int, c_uint};
    use std::os::unix::fs::FileExt;
    use std::os::unix::io::AsRawFd;
    extern "C" {
        fn sync_file_range(fd: c_int, offset: i64, nbytes: i64, flags: c_uint) -> c_int;
    }
    const WAIT_BEFORE_WRITE_WAIT_AFTER: c_uint = 1 | 2 | 4;
    let offset = probe_offset(k);
    let t0 = Instant::now();
    f.write_all_at(&[0x5a; PROBE_WRITE_BYTES as usize], offset)?;
    // SAFETY: glibc's sync_file_range(2) wrapper; `f` stays open for the whole call and
    // the other arguments are plain integers (the range lies inside the file).
    let ret = unsafe { sync_file_range(f.as_raw_fd(), offset as i64, PROBE_WRITE_BYTES as i64, WAIT_BEFORE_WRITE_WAIT_AFTER) };
    if ret != 0 {
        return Err(std::io::Error::last_os_error()).context("sync_file_range");
    }
    Ok(t0.elapsed())
}

#[cfg(not(target_os = "linux"))]
fn range_write(_: &std::fs::File, _: usize) -> anyhow::Result<Duration> {
    bail!("the sync_file_range probe exists on Linux only")
}

/// Latency figures of one kind of request.
struct Stats {
    samples: Vec<Duration>,
}

impl Stats {
    /// Nearest-rank percentile.
    fn pct(&self, p: f64) -> Duration {
        let n = self.samples.len();
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        self.samples[rank.clamp(1, n) - 1]
    }
    fn mean(&self) -> Duration {
        self.samples.iter().sum::<Duration>() / self.samples.len() as u32
    }
    fn new(mut samples: Vec<Duration>) -> Stats {
        samples.sort();
        Stats { samples }
    }
    fn row(&self, name: &str) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let total: Duration = self.samples.iter().sum();
        format!(
            "{name:<30} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>10.0}",
            ms(self.pct(50.0)),
            ms(self.pct(90.0)),
            ms(self.pct(99.0)),
            ms(self.pct(99.9)),
            ms(*self.samples.last().expect("at least one sample")),
            ms(self.mean()),
            self.samples.len() as f64 / total.as_secs_f64()
        )
    }
}

/// A sequential client: one runtime thread is all it needs, and it adds no cross-thread
/// wake-ups to what is measured.
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(args.posts > 0 && args.products > 0, "--posts and --products must be at least 1");
    let temp = tempfile::tempdir()?;
    let root = match &args.dir {
        Some(d) => {
            if d.exists() && std::fs::read_dir(d)?.next().is_some() {
                bail!("{} is not empty; give a new directory", d.display());
            }
            d.clone()
        }
        None => temp.path().to_path_buf(),
    };
    println!(
        "post latency: {} posts (+{} warm-up), one sequential client, {}",
        args.posts,
        args.warmup,
        if args.without_hq { "HQ stopped (forwarder idle)" } else { "HQ running (forwarder active)" }
    );
    println!("machine: {}", edge::machine::describe());
    println!("data under {}", root.display());

    let t = Instant::now();
    harness::cluster::bin_dir();
    println!("hq and branch-agent built (or up to date) in {:.1} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let mut hq = HqProc::init(&root.join("hq"), args.products)?;
    let token = hq.add_branch(BRANCH, &[WAREHOUSE])?;
    hq.start()?;
    let mut agent = AgentProc::enroll(&root.join("agent"), hq.quic, &token)?;
    agent.start()?;
    let products = args.products;
    wait_until(Duration::from_secs(60), "the branch to receive HQ's catalog", || async {
        let p = agent.get("/api/profile").await?;
        Ok(p["products"].as_object().map_or(0, |m| m.len()) == products)
    })
    .await?;
    println!("HQ ({} products) and branch {BRANCH} up in {:.1} s", args.products, t.elapsed().as_secs_f64());

    // Stock every product (untimed), ten lines a receipt.
    for (i, chunk) in (0..args.products).collect::<Vec<_>>().chunks(10).enumerate() {
        let lines: Vec<Value> = chunk
            .iter()
            .map(|p| json!({"product": format!("P{p:04}"), "qty": STOCK_QTY.to_string(), "unit_price": cents_text(cost_cents(*p))}))
            .collect();
        let d = json!({"doc_type": "JH", "date": "2026-06-01", "operator": "sh-li", "warehouse": WAREHOUSE,
                       "counterparty": format!("S{:02}", 1 + i % 5), "lines": lines});
        post_doc(&agent, &d).await?;
    }
    if args.without_hq {
        wait_until(DRAIN_LIMIT, "HQ to take the stock receipts", || async { Ok(agent.sync().await?["pending"] == 0) }).await?;
        hq.kill9();
        // The agent notices a dead HQ only when QUIC gives up on the connection; until
        // then its forwarder keeps sending. Time from then on, when it is really idle.
        let t = Instant::now();
        wait_until(DRAIN_LIMIT, "the branch to notice HQ is gone", || async { Ok(agent.sync().await?["link_up"] == false) }).await?;
        println!("HQ killed (kill -9); the branch reported the link down {:.1} s later", t.elapsed().as_secs_f64());
    }

    let mut mix = Mix { rng: Rng(0x5eed), products: args.products, open: Default::default() };
    let probe = probe_file(&agent.dir.join("probe-fdatasync.bin"))?;
    let range_probe = probe_file(&agent.dir.join("probe-sync-file-range.bin"))?;
    let sync_before = agent.sync().await?;
    // Samples per kind: post, read, fdatasync, sync_file_range.
    let mut samples: [Vec<Duration>; 4] = std::array::from_fn(|_| Vec::with_capacity(args.posts));
    let mut link_up_reads = 0usize;
    let mut last_seq = 0u64;
    let mut measured_wall = Duration::ZERO;
    for k in 0..args.warmup + args.posts {
        let measured = k >= args.warmup;
        let (body, credit) = mix.doc(k);
        let t_iter = Instant::now();
        // Rotate the order so no kind always follows a post (and its forwarding to HQ).
        for step in 0..4 {
            let kind = (k + step) % 4;
            let took = match kind {
                0 => {
                    let (took, v) = post_doc(&agent, &body).await?;
                    let seq = v["seq"].as_u64().context("post answer has a seq")?;
                    ensure!(seq > last_seq, "seq went from {last_seq} to {seq}");
                    last_seq = seq;
                    if let Some((customer, cents)) = &credit {
                        let number = v["number"].as_str().context("post answer has a number")?;
                        mix.open.push_back((number.to_string(), customer.clone(), *cents));
                    }
                    took
                }
                1 => {
                    let (took, v) = get_sync(&agent).await?;
                    if measured {
                        link_up_reads += usize::from(v["status"]["link_up"] == true);
                    }
                    took
                }
                2 => disk_write(&probe, k)?,
                _ => range_write(&range_probe, k)?,
            };
            if measured {
                samples[kind].push(took);
            }
        }
        if measured {
            measured_wall += t_iter.elapsed();
        }
    }
    let sync_after = agent.sync().await?;
    let load_after = edge::machine::load_average();

    let [posts, reads, disk, range] = samples.map(Stats::new);
    println!();
    println!("{:<30} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10}", "ms", "median", "p90", "p99", "p99.9", "max", "mean", "per second");
    println!("{}", posts.row("POST /api/documents"));
    println!("{}", reads.row("GET /api/sync (baseline)"));
    println!("{}", disk.row("1 KiB write + fdatasync"));
    println!("{}", range.row("1 KiB write + sync_file_range"));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!();
    println!(
        "post / read, median: {:.1}x; post - read: median {:.3} ms, p99 {:.3} ms (the post itself: parse, books::post, sled batch + flush, answer)",
        posts.pct(50.0).as_secs_f64() / reads.pct(50.0).as_secs_f64(),
        ms(posts.pct(50.0)) - ms(reads.pct(50.0)),
        ms(posts.pct(99.0)) - ms(reads.pct(99.0)),
    );
    println!(
        "posts/s for one sequential client: {:.0} (from the mean latency); measured loop {:.1} s wall for {n} posts, {n} reads and 2 x {n} probe writes",
        args.posts as f64 / posts.samples.iter().sum::<Duration>().as_secs_f64(),
        measured_wall.as_secs_f64(),
        n = args.posts,
    );
    println!(
        "link to HQ: before {} (connects {}), up in {link_up_reads} of {} reads, after {} (connects {}, pending {})",
        if sync_before["link_up"] == true { "up" } else { "down" },
        sync_before["connects"],
        args.posts,
        if sync_after["link_up"] == true { "up" } else { "down" },
        sync_after["connects"],
        sync_after["pending"],
    );
    if !args.without_hq {
        let t = Instant::now();
        wait_until(DRAIN_LIMIT, "HQ to acknowledge every post", || async { Ok(agent.sync().await?["pending"] == 0) }).await?;
        let b = hq.branch_status(BRANCH).await?;
        println!(
            "HQ: all acknowledged {:.2} s after the last post; {} documents applied from {BRANCH}, {} quarantined, {} rejections",
            t.elapsed().as_secs_f64(),
            b["documents_applied"],
            b["documents_quarantined"],
            b["rejections"]
        );
        if b["documents_applied"].as_u64() != Some(last_seq) {
            bail!("HQ applied {} documents, the branch posted {last_seq}", b["documents_applied"]);
        }
    }
    if args.clients > 0 {
        // Stock gains on their own days, so numbering never runs out within a day.
        let one = concurrent_posts(&agent, 1, args.concurrent_seconds, 0).await?;
        let many = concurrent_posts(&agent, args.clients, args.concurrent_seconds, 1).await?;
        println!(
            "concurrent posts (stock gains, {} s each): 1 client {one:.0}/s, {} clients {many:.0}/s ({:.1}x)",
            args.concurrent_seconds,
            args.clients,
            many / one
        );
    }
    println!("machine after: load average {load_after}");
    drop((agent, hq));
    Ok(())
}
