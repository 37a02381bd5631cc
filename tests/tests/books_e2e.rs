//! A month at two branches: opening balances, then purchases, sales (cash and credit),
//! receipts and payments against specific documents, expenses, transfers, losses,
//! returns, consignment and a red-letter reversal. Hebei is cut off from HQ (through the
//! UDP relay) for the first half of the month. After sync, each branch's books digest
//! equals HQ's copy, and HQ's consolidated income statement and balance sheet are the
//! sums of the branches'.

use std::time::Duration;

use harness::cluster::{wait_until, AgentProc, HqProc};
use harness::relay::{LinkConfig, Relay};
use rust_decimal::Decimal;
use serde_json::{json, Value};

fn day(d: u32) -> String {
    format!("2026-06-{d:02}")
}

fn goods(t: &str, date: &str, wh: &str, party: Option<&str>, lines: &[(&str, &str, &str)], ext: Value) -> Value {
    json!({
        "doc_type": t, "date": date, "warehouse": wh, "counterparty": party, "ext": ext,
        "lines": lines.iter().map(|(p, q, pr)| json!({"product": p, "qty": q, "unit_price": pr})).collect::<Vec<_>>(),
    })
}

fn money(t: &str, date: &str, wh: &str, party: Option<&str>, ext: Value) -> Value {
    json!({ "doc_type": t, "date": date, "warehouse": wh, "counterparty": party, "ext": ext })
}

async fn post(agent: &AgentProc, d: Value) -> anyhow::Result<String> {
    match agent.post(&d).await? {
        Ok(v) => Ok(v["number"].as_str().unwrap_or_default().to_string()),
        Err((code, msg)) => anyhow::bail!("{code}: {msg} for {d}"),
    }
}

/// A month of business at one branch; returns the number of documents posted.
async fn month(agent: &AgentProc, wh: &str, transit: &str) -> anyhow::Result<u64> {
    let mut n = 0u64;
    let opening = json!({
        "doc_type": "QC", "date": day(1), "warehouse": wh,
        "lines": [{"product": "P0000", "qty": "100", "unit_price": "3.00"}, {"product": "P0001", "qty": "40", "unit_price": "12.50"}],
        "ext": {"cost_method": "MovingAverage", "balances": [
            {"kind": {"Receivable": "C0001"}, "amount": "800.00"},
            {"kind": {"Payable": "S0001"}, "amount": "300.00"},
            {"kind": {"Account": "1001"}, "amount": "1000.00"},
            {"kind": {"Account": "1002.ICBC"}, "amount": "20000.00"}
        ]}
    });
    post(agent, opening).await?;
    n += 1;
    for d in 2..=28u32 {
        let date = day(d);
        let receipt =
            post(agent, goods("JH", &date, wh, Some("S0001"), &[("P0000", "20", "3.10"), ("P0002", "5", "7.77")], json!({}))).await?;
        let sale =
            post(agent, goods("XS", &date, wh, Some("C0001"), &[("P0000", "15", "5.00"), ("P0002", "2", "11.00")], json!({}))).await?;
        post(agent, goods("XS", &date, wh, Some("C0002"), &[("P0001", "1", "19.90")], json!({"account": "1001"}))).await?;
        n += 3;
        if d % 3 == 0 {
            post(
                agent,
                money(
                    "SK",
                    &date,
                    wh,
                    Some("C0001"),
                    json!({"account": "1002.ICBC", "money": "60.00", "settles": [{"doc": sale, "amount": "60.00"}]}),
                ),
            )
            .await?;
            post(
                agent,
                money(
                    "FK",
                    &date,
                    wh,
                    Some("S0001"),
                    json!({"account": "1002.ICBC", "money": "50.00", "settles": [{"doc": receipt, "amount": "50.00"}]}),
                ),
            )
            .await?;
            n += 2;
        }
        if d % 5 == 0 {
            post(agent, money("FY", &date, wh, None, json!({"account": "1001", "money": "35.50", "category": "RENT"}))).await?;
            post(agent, goods("TJ", &date, wh, None, &[("P0000", "5", "0")], json!({"to_warehouse": transit}))).await?;
            post(agent, goods("BS", &date, wh, None, &[("P0002", "1", "0")], json!({}))).await?;
            n += 3;
        }
        if d % 7 == 0 {
            // Returns name their originals (issue 11): today's sale and receipt.
            post(agent, goods("WJXS", &date, wh, Some("C0001"), &[("P0000", "2", "5.00")], json!({"returns": sale}))).await?;
            post(agent, goods("JT", &date, wh, Some("S0001"), &[("P0000", "3", "3.10")], json!({"returns": receipt}))).await?;
            post(agent, goods("FS", &date, wh, Some("D0001"), &[("P0001", "2", "0")], json!({}))).await?;
            post(agent, goods("WX", &date, wh, Some("D0001"), &[("P0001", "1", "21.00")], json!({}))).await?;
            n += 4;
        }
        if d == 10 {
            // A mistaken expense, corrected by a red-letter reversal and a new document.
            let wrong =
                post(agent, money("FY", &date, wh, None, json!({"account": "1001", "money": "99.00", "category": "TRAVEL"}))).await?;
            post(
                agent,
                money("FY", &date, wh, None, json!({"account": "1001", "money": "99.00", "category": "TRAVEL", "reverses": wrong})),
            )
            .await?;
            post(agent, money("FY", &date, wh, None, json!({"account": "1001", "money": "9.90", "category": "TRAVEL"}))).await?;
            n += 3;
        }
    }
    Ok(n)
}

fn dec(v: &Value) -> Decimal {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_at_two_branches_consolidates_exactly() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut hq = HqProc::init(&tmp.path().join("hq"), 3)?;
    let sh_token = hq.add_branch("SH", &["SH01", "SH01-T"])?;
    let hb_token = hq.add_branch("HB", &["HB01", "HB01-T"])?;
    hq.start()?;
    let relay = Relay::start(hq.quic, LinkConfig { outage: true, ..LinkConfig::default() }, 7).await?;
    let mut sh = AgentProc::enroll(&tmp.path().join("sh"), hq.quic, &sh_token)?;
    let mut hb = AgentProc::enroll(&tmp.path().join("hb"), hq.quic, &hb_token)?;
    hb.hq = relay.addr().to_string();
    sh.start()?;
    hb.start()?;

    // Hebei is offline while both post the month; it comes back halfway through Shanghai's.
    let sh_task = {
        let url_check = sh.url("");
        let _ = url_check;
        month(&sh, "SH01", "SH01-T")
    };
    let hb_docs = month(&hb, "HB01", "HB01-T").await?;
    assert_eq!(hb.sync().await?["link_up"], false, "Hebei is cut off");
    relay.set_outage(false);
    let sh_docs = sh_task.await?;

    for (agent, code, docs) in [(&sh, "SH", sh_docs), (&hb, "HB", hb_docs)] {
        wait_until(Duration::from_secs(120), "sync", || async { Ok(hq.branch_status(code).await?["last_applied_seq"] == docs) })
            .await
            .map_err(|e| anyhow::anyhow!("{e}\nagent log:\n{}", agent.log()))?;
        let b = hq.branch_status(code).await?;
        assert_eq!(b["documents_quarantined"], 0, "{code}");
        // Same journal, same posting code, same books.
        let at_branch = agent.get("/api/reports/digest").await?;
        let at_hq = hq.get(&format!("/api/reports/digest?branch={code}")).await?;
        assert_eq!(at_branch, at_hq, "{code}: books digest differs between branch and HQ");
    }

    // Consolidated statements are the sums of the branches'.
    let keys = ["revenue", "cost_of_sales", "gross_profit", "other_income", "expenses", "net_profit"];
    let sh_is = sh.get("/api/reports/income-statement").await?;
    let hb_is = hb.get("/api/reports/income-statement").await?;
    let all_is = hq.get("/api/reports/income-statement").await?;
    for k in keys {
        assert_eq!(dec(&all_is[k]), dec(&sh_is[k]) + dec(&hb_is[k]), "income statement {k}");
    }
    assert!(dec(&all_is["revenue"]) > Decimal::ZERO);
    let sh_bs = sh.get("/api/reports/balance-sheet").await?;
    let hb_bs = hb.get("/api/reports/balance-sheet").await?;
    let all_bs = hq.get("/api/reports/balance-sheet").await?;
    for k in ["total_assets", "total_liabilities_and_equity"] {
        assert_eq!(dec(&all_bs[k]), dec(&sh_bs[k]) + dec(&hb_bs[k]), "balance sheet {k}");
    }
    assert_eq!(dec(&all_bs["total_assets"]), dec(&all_bs["total_liabilities_and_equity"]), "the balance sheet balances");
    // The trial balance balances at HQ.
    let tb = hq.get("/api/reports/trial-balance").await?;
    let (dr, cr) =
        tb.as_array().into_iter().flatten().fold((Decimal::ZERO, Decimal::ZERO), |(d, c), r| (d + dec(&r["debit"]), c + dec(&r["credit"])));
    assert_eq!(dr, cr);
    // Drill-through: receivables → the open documents → the original document.
    let ar = hq.get("/api/reports/receivables?branch=SH&as_of=2026-06-30").await?;
    let c1 = ar.as_array().into_iter().flatten().find(|r| r["party"] == "C0001").cloned().expect("C0001 owes SH");
    let first_open = c1["items"][0][0].as_str().unwrap_or_default().to_string();
    let docs = hq.get("/api/branches/SH/movements?party=C0001").await?;
    let link = docs["documents"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["number"] == first_open.as_str())
        .map(|d| d["document"].as_str().unwrap_or_default().to_string());
    if let Some(link) = link {
        assert_eq!(hq.get(&link).await?["number"], first_open.as_str());
    } else {
        // The opening balance's open item is under the opening document, which has no party.
        assert!(first_open.starts_with("QC-"), "{first_open}");
    }
    // The branch drills through its own journal the same way.
    let local = sh.get("/api/movements?party=C0001&limit=5").await?;
    let first = local["documents"][0].clone();
    assert_eq!(sh.get(first["document"].as_str().unwrap_or("/")).await?["number"], first["number"]);
    // CSV for Excel.
    let csv = hq.get_text("/api/reports/sales?by=product&format=csv").await?;
    assert!(csv.starts_with('\u{feff}') && csv.contains("margin_pct"), "{csv}");
    Ok(())
}
