//! `hq export ledger` with real processes (issue 16): a branch posts an opening, a
//! purchase, sales and an expense; HQ exports June as beancount (HTTP) and hledger (the
//! CLI, through the running HQ's API); `bean-check` and `hledger check` accept both files,
//! and each tool's balances equal HQ's trial balance to the cent.
//!
//! Needs `bean-check` (pip: beancount) and `hledger` (Debian) on PATH; `.ci/run` installs
//! them. Must not install anything itself: without them it fails saying so.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{bail, Context};
use harness::cluster::{wait_until, AgentProc, HqProc};
use protocol::books::ledger_export::account_name;
use protocol::codes::AccountCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};

fn goods(t: &str, date: &str, party: Option<&str>, lines: &[(&str, &str, &str)], ext: Value) -> Value {
    json!({
        "doc_type": t, "date": date, "warehouse": "SH01", "counterparty": party, "ext": ext,
        "lines": lines.iter().map(|(p, q, pr)| json!({"product": p, "qty": q, "unit_price": pr})).collect::<Vec<_>>(),
    })
}

async fn post(agent: &AgentProc, d: Value) -> anyhow::Result<()> {
    match agent.post(&d).await? {
        Ok(_) => Ok(()),
        Err((code, msg)) => bail!("{code}: {msg} for {d}"),
    }
}

/// Runs a checker; its absence is a clear failure, not a skip.
fn tool(name: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(name).args(args).output().with_context(|| {
        format!("{name} is not installed: `.ci/run` installs it (hledger: apt-get install hledger; bean-check: pip install beancount)")
    })?;
    if !out.status.success() {
        bail!("{name} {args:?} failed:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// `account,amount` lines → amounts per account, zeros left out.
fn balances(text: &str) -> anyhow::Result<BTreeMap<String, Decimal>> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (a, v) = line.rsplit_once(',').with_context(|| format!("no comma in {line:?}"))?;
        let v = Decimal::from_str(v.trim().trim_matches('"').trim_end_matches("CNY").trim())?;
        if !v.is_zero() {
            out.insert(a.trim_matches('"').to_string(), v);
        }
    }
    Ok(out)
}

const BEANCOUNT_BALANCES: &str = r#"
import sys
from collections import defaultdict
from decimal import Decimal
from beancount import loader
from beancount.core import data
entries, errors, _ = loader.load_file(sys.argv[1])
if errors:
    sys.exit("beancount errors: %r" % errors)
b = defaultdict(Decimal)
for e in entries:
    if isinstance(e, data.Transaction):
        for p in e.postings:
            assert p.units.currency == "CNY", p
            b[p.account] += p.units.number
for a, v in sorted(b.items()):
    print("%s,%s" % (a, v))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_export_checks_in_beancount_and_hledger_and_matches_the_trial_balance() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut hq = HqProc::init(&tmp.path().join("hq"), 3)?;
    let token = hq.add_branch("SH", &["SH01"])?;
    hq.start()?;
    let mut sh = AgentProc::enroll(&tmp.path().join("sh"), hq.quic, &token)?;
    sh.start()?;

    // May (brought forward): the opening, FIFO, and a purchase.
    let opening = json!({
        "doc_type": "QC", "date": "2026-05-01", "warehouse": "SH01",
        "lines": [{"product": "P0000", "qty": "100", "unit_price": "3.00"}],
        "ext": {"cost_method": "Fifo", "balances": [
            {"kind": {"Payable": "S0001"}, "amount": "300.00"},
            {"kind": {"Account": "1001"}, "amount": "1000.00"},
            {"kind": {"Account": "1002.ICBC"}, "amount": "20000.00"}
        ]}
    });
    post(&sh, opening).await?;
    post(&sh, goods("JH", "2026-05-20", Some("S0001"), &[("P0000", "10", "3.30")], json!({}))).await?;
    // June: purchase, credit sale, cash sale, expense.
    post(&sh, goods("JH", "2026-06-02", Some("S0001"), &[("P0000", "20", "3.10"), ("P0001", "5", "7.77")], json!({}))).await?;
    post(&sh, goods("XS", "2026-06-05", Some("C0001"), &[("P0000", "115", "5.00"), ("P0001", "2", "11.00")], json!({}))).await?;
    post(&sh, goods("XS", "2026-06-06", Some("C0001"), &[("P0001", "1", "19.90")], json!({"account": "1001"}))).await?;
    post(&sh, json!({"doc_type": "FY", "date": "2026-06-07", "warehouse": "SH01", "ext": {"account": "1001", "money": "35.50", "category": "RENT"}}))
        .await?;
    let t0 = std::time::Instant::now();
    wait_until(Duration::from_secs(60), "documents synced", || async { Ok(sh.sync().await?["acked_seq"] == 6) }).await?;

    eprintln!("synced after {:?}", t0.elapsed());
    let dir = tmp.path();
    let bean = hq.get_text("/api/export/ledger?branch=SH&from=2026-06&to=2026-06&format=beancount").await?;
    let bean_path = dir.join("sh.beancount");
    std::fs::write(&bean_path, &bean)?;
    let hl_path = dir.join("sh.journal");
    let said = hq.cli(&[
        "export",
        "ledger",
        "--branch",
        "SH",
        "--from",
        "2026-06",
        "--to",
        "2026-06",
        "--format",
        "hledger",
        "--out",
        path(&hl_path)?,
    ])?;
    assert!(said.contains("ledger written"), "{said}");
    let hl = std::fs::read_to_string(&hl_path)?;
    eprintln!("{bean}\n{hl}");
    for text in [&bean, &hl] {
        assert!(text.contains("balances brought forward"), "May is carried in: {text}");
        assert!(!text.contains("JH-SH-0520"), "May's purchase is not a June transaction: {text}");
        assert!(text.contains("cost method FIFO"), "{text}");
        for t in ["JH-SH-0602-001", "XS-SH-0605-001", "XS-SH-0606-001", "FY-SH-0607-001"] {
            assert!(text.contains(t), "{t} missing: {text}");
        }
    }
    assert!(bean.contains("^XS-SH-0605-001"), "the number is the link: {bean}");

    eprintln!("exported after {:?}", t0.elapsed());
    tool("bean-check", &[path(&bean_path)?])?;
    tool("hledger", &["check", "-s", "-f", path(&hl_path)?])?;
    let from_bean = balances(&tool("python3", &["-c", BEANCOUNT_BALANCES, path(&bean_path)?])?)?;
    let from_hl = balances(
        &tool("hledger", &["-f", path(&hl_path)?, "balance", "--flat", "--no-total", "-O", "csv"])?.replace("\"account\",\"balance\"", ""),
    )?;

    eprintln!("checked after {:?}", t0.elapsed());
    let trial = hq.get("/api/reports/trial-balance?branch=SH").await?;
    let mut want = BTreeMap::new();
    for row in trial.as_array().context("trial balance is a list")? {
        let account = AccountCode::parse(row["account"].as_str().context("account")?)?;
        let amount = |k: &str| -> anyhow::Result<Decimal> { Ok(Decimal::from_str(row[k].as_str().context("amount string")?)?) };
        let v = amount("debit")? - amount("credit")?;
        if !v.is_zero() {
            want.insert(account_name(&account), v);
        }
    }
    assert!(want.len() >= 6, "{trial}");
    assert_eq!(from_bean, want, "beancount's balances vs HQ's trial balance");
    assert_eq!(from_hl, want, "hledger's balances vs HQ's trial balance");

    // All branches (one here) export the same books; a bad month or format is refused.
    let all = hq.get_text("/api/export/ledger?from=2026-06&format=hledger").await?;
    assert_eq!(all, hl);
    assert!(hq.get_text("/api/export/ledger?branch=SH&from=2026-13").await.is_err());
    assert!(hq.get_text("/api/export/ledger?branch=SH&from=2026-06&format=gnucash").await.is_err());
    assert!(hq.get_text("/api/export/ledger?branch=BJ&from=2026-06").await.is_err());
    Ok(())
}

fn path(p: &Path) -> anyhow::Result<&str> {
    p.to_str().context("temp path is UTF-8")
}
