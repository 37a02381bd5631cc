//! `cargo demo`: HQ plus two branch agents as separate processes on loopback.
//!
//! The branches enroll, HQ goes offline, both branches post purchase receipts, sales,
//! losses and gains while HQ is unreachable, then HQ comes back and merges everything
//! exactly once. The processes keep running until Ctrl-C so you can look around.
//!
//! Must not: be used by a test (the tests start their own clusters).

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use harness::cluster::{doc, wait_until, AgentProc, HqProc};

/// Runs a Branchline demo: one HQ and two branches (Shanghai, Hebei) on loopback.
#[derive(Parser)]
struct Args {
    /// Where the demo keeps its data (wiped at start).
    #[arg(long, default_value = "demo-data")]
    dir: PathBuf,
    /// Exit after the demo instead of keeping the processes up.
    #[arg(long)]
    no_wait: bool,
}

const PRODUCTS: &[(&str, &str, &str)] = &[
    ("6901234567892", "矿泉水 550ml", "2.00"),
    ("6920202888883", "绿茶 500ml", "3.50"),
    ("6954767470818", "方便面 五连包", "15.00"),
    ("6901028075831", "香皂 125g", "5.50"),
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.dir.exists() {
        std::fs::remove_dir_all(&args.dir)?;
    }
    println!("== building hq and branch-agent (first run takes a few minutes) ==");
    harness::cluster::bin_dir();
    let mut hq = HqProc::init(&args.dir.join("hq"), 0)?;
    for (code, name, price) in PRODUCTS {
        hq.cli(&["product", "add", code, "--name", name, "--price", price])?;
    }
    let sh_token = hq.add_branch("SH", &["SH01", "SH01-T"])?;
    let hb_token = hq.add_branch("HB", &["HB01", "HB01-T"])?;
    println!("== HQ initialised: 4 products, branches SH (上海) and HB (河北) ==");
    hq.start()?;
    let mut sh = AgentProc::enroll(&args.dir.join("branch-sh"), hq.quic, &sh_token)?;
    let mut hb = AgentProc::enroll(&args.dir.join("branch-hb"), hq.quic, &hb_token)?;
    println!("== both branches enrolled (keys made, HQ certificate pinned) ==");
    hq.kill9();
    println!("== HQ is now OFFLINE; branches keep working ==");
    sh.start()?;
    hb.start()?;
    let [water, tea, noodles, soap] = [PRODUCTS[0].0, PRODUCTS[1].0, PRODUCTS[2].0, PRODUCTS[3].0];
    for (agent, wh) in [(&sh, "SH01"), (&hb, "HB01")] {
        let docs = [
            doc("JH", wh, &[(water, "120", "1.10"), (tea, "60", "2.35"), (noodles, "40", "9.80")]),
            doc("JH", wh, &[(water, "80", "1.25"), (soap, "30", "3.60")]),
            doc("XS", wh, &[(water, "50", "2.00"), (tea, "12", "4.00")]),
            doc("XS", wh, &[(noodles, "5", "15.00")]),
            doc("BS", wh, &[(tea, "2", "0")]),
            doc("BY", wh, &[(soap, "1", "3.60")]),
        ];
        for d in docs {
            match agent.post(&d).await? {
                Ok(v) => println!("  {wh}: posted {} (seq {})", v["number"].as_str().unwrap_or("?"), v["seq"]),
                Err((code, msg)) => println!("  {wh}: refused ({code}): {msg}"),
            }
        }
        let s = agent.sync().await?;
        println!("  {wh}: link up = {}, waiting for HQ = {}", s["link_up"], s["pending"]);
    }
    match sh.post(&doc("XS", "SH01", &[(water, "100000", "2.00")])).await? {
        Err((code, msg)) => println!("  a bad document is refused and changes nothing ({code}): {msg}"),
        Ok(_) => println!("  unexpected: oversell accepted"),
    }
    println!("== HQ comes back ==");
    hq.start()?;
    for (agent, code) in [(&sh, "SH"), (&hb, "HB")] {
        wait_until(Duration::from_secs(60), "sync", || async { Ok(agent.sync().await?["pending"] == 0) }).await?;
        let b = hq.branch_status(code).await?;
        println!("  HQ applied {} documents from {code} (each exactly once), rejections {}", b["documents_applied"], b["rejections"]);
    }
    println!("== consolidated stock at HQ ==");
    for r in hq.get("/api/stock").await?.as_array().into_iter().flatten() {
        println!(
            "  {:<6} {:<14} {:<16} qty {:>6}  value {:>9}",
            r["warehouse"].as_str().unwrap_or(""),
            r["product"].as_str().unwrap_or(""),
            r["name"].as_str().unwrap_or(""),
            r["qty"].as_str().unwrap_or(""),
            r["value"].as_str().unwrap_or("")
        );
    }
    let (admin, admin_password) = hq.admin_credential()?;
    println!();
    println!("Sign in first (every page and API call needs a session; the pages show a sign-in form):");
    println!("  HQ      login {admin:<8} password {admin_password}   (HQ admin; kept in {})", hq.dir.join("admin.secret").display());
    println!(
        "  SH, HB  login {:<8} password {}   (branch accountant + cashier; also {})",
        sh.login,
        harness::cluster::PERSON_PASSWORD,
        hb.login
    );
    println!("  add people: hq user add li.jia --name 李佳 --role warehouse-clerk --branch SH --scope 'warehouses=SH01; customers=200*' --data-dir {}", hq.dir.display());
    println!("Look around:");
    println!("  HQ page               {}", hq.url("/"));
    println!("  consolidated stock    {}   (CSV: {})", hq.url("/api/stock"), hq.url("/api/stock?format=csv"));
    println!("  branch sync status    {}", hq.url("/api/branches"));
    println!("  a document at HQ      {}", hq.url("/api/branches/SH/documents/1"));
    println!("  income statement      {}", hq.url("/api/reports/income-statement"));
    println!("  balance sheet         {}", hq.url("/api/reports/balance-sheet"));
    println!("  sales by product      {}   (CSV: add &format=csv)", hq.url("/api/reports/sales?by=product"));
    println!("  receivables (ageing)  {}", hq.url("/api/reports/receivables"));
    println!("  drill-through         {}", hq.url(&format!("/api/branches/SH/movements?product={water}")));
    println!("  Shanghai branch page  {}", sh.url("/"));
    println!("  Shanghai till (POS)   {}   customer screen: {}", sh.url("/pos"), sh.url("/pos/display"));
    println!("  Hebei branch page     {}", hb.url("/"));
    println!("Post another document (sign in, then send the token):");
    println!(
        "  TOKEN=$(curl -s -XPOST {} -H 'content-type: application/json' -d '{{\"login\":\"{}\",\"password\":\"{}\"}}' | sed 's/.*\"token\":\"\\([^\"]*\\)\".*/\\1/')",
        sh.url("/api/session"),
        sh.login,
        harness::cluster::PERSON_PASSWORD
    );
    println!(
        "  curl -s -XPOST {} -H \"authorization: Bearer $TOKEN\" -H 'content-type: application/json' -d '{{\"doc_type\":\"XS\",\"date\":\"2026-06-09\",\"warehouse\":\"SH01\",\"counterparty\":\"C01\",\"lines\":[{{\"product\":\"{water}\",\"qty\":\"3\",\"unit_price\":\"2.00\"}}]}}'",
        sh.url("/api/documents")
    );
    if args.no_wait {
        return Ok(());
    }
    println!("Logs are in {}. Press Ctrl-C to stop everything.", args.dir.display());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
