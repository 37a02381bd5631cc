//! Scope over the eight range kinds, with real processes (issue 9):
//! 1. the seed 003 clerk's branch (warehouse SH01, category 01, customers 200*) refuses a
//!    sale of a category-02 product or to customer 310-0042, naming the rule;
//! 2. HQ narrows the scope while the branch cannot reach it; the branch posts under the
//!    old profile version, and on reconnect HQ applies and FLAGS the document: the books
//!    digests of branch and HQ are equal;
//! 3. a tampered agent (debug switch that skips its scope check) posts out of scope: HQ
//!    applies and QUARANTINES it, the document after it merges normally, digests equal.

use std::time::Duration;

use harness::cluster::{client, send, wait_until, AgentProc, HqProc};
use serde_json::{json, Value};

const ALL_BUT: &str = "suppliers=*; employees=*; accounts=*; expenses=*; incomes=*";

fn scope_text(categories: &str) -> String {
    format!("warehouses=SH01; categories={categories}; customers=200*; {ALL_BUT}")
}

/// HQ with products `A01` (category 01) and `B02` (category 02) and branch SH (SH01)
/// under `scope`, running, with SH's agent enrolled (not started).
fn cluster(dir: &std::path::Path, scope: &str) -> anyhow::Result<(HqProc, AgentProc)> {
    let mut hq = HqProc::init(&dir.join("hq"), 0)?;
    hq.cli(&["product", "add", "A01", "--name", "绿茶 tea", "--category", "01"])?;
    hq.cli(&["product", "add", "B02", "--name", "白酒 spirits", "--category", "02"])?;
    let token = hq.add_branch("SH", &["SH01"])?;
    let out = hq.cli(&["scope", "set", "SH", scope])?;
    assert!(out.contains("scope of SH is now"), "{out}");
    hq.start()?;
    let sh = AgentProc::enroll(&dir.join("sh"), hq.quic, &token)?;
    Ok((hq, sh))
}

fn goods(doc_type: &str, party: &str, product: &str, qty: &str, price: &str) -> Value {
    json!({"doc_type": doc_type, "date": "2026-06-09", "warehouse": "SH01", "counterparty": party,
        "lines": [{"product": product, "qty": qty, "unit_price": price}]})
}

async fn posted(sh: &AgentProc, doc: &Value) -> anyhow::Result<Value> {
    sh.post(doc).await?.map_err(|e| anyhow::anyhow!("refused: {e:?}\nagent log:\n{}", sh.log()))
}

/// Waits until HQ has applied SH's chain up to the branch's head.
async fn caught_up(hq: &HqProc, sh: &AgentProc, seq: u64) -> anyhow::Result<()> {
    wait_until(Duration::from_secs(60), "HQ caught up", || async { Ok(hq.branch_status("SH").await?["last_applied_seq"] == seq) })
        .await
        .map_err(|e| anyhow::anyhow!("{e}\nagent log:\n{}\nhq log:\n{}", sh.log(), hq.log()))
}

async fn digests_equal(hq: &HqProc, sh: &AgentProc) -> anyhow::Result<()> {
    let at_branch = sh.get("/api/reports/digest").await?;
    let at_hq = hq.get("/api/reports/digest?branch=SH").await?;
    assert_eq!(at_branch, at_hq, "books digest differs between branch and HQ");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_clerk_is_refused_outside_scope_with_the_rule_named() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let (hq, mut sh) = cluster(tmp.path(), &scope_text("01"))?;
    sh.start()?;
    let shown = hq.cli(&["scope", "show", "SH"])?;
    assert!(shown.contains("warehouses=SH01; categories=01; customers=200*"), "{shown}");

    posted(&sh, &goods("JH", "900001", "A01", "100", "2.00")).await?;
    posted(&sh, &goods("XS", "200102", "A01", "1", "5.00")).await?;
    let refused = sh.post(&goods("XS", "200102", "B02", "1", "5.00")).await?;
    assert_eq!(
        refused,
        Err((422, "product category 02 is outside SH's categories 01; ask HQ to widen the scope".into())),
        "a category-02 product"
    );
    let refused = sh.post(&goods("XS", "310-0042", "A01", "1", "5.00")).await?;
    assert_eq!(refused, Err((422, "customer 310-0042 is outside SH's customers 200*; ask HQ to widen the scope".into())));

    // Customers are master records; the record's credit limit is what a credit sale meets.
    hq.cli(&["customer", "add", "200102", "--name", "上海一店", "--category", "2001", "--credit-limit", "10"])?;
    hq.cli(&["supplier", "add", "900001", "--name", "茶厂", "--category", "90"])?;
    let code_taken = hq.cli(&["supplier", "add", "200102", "--name", "x"]).expect_err("a customer's code");
    assert!(code_taken.to_string().contains("already a customer"), "{code_taken}");
    wait_until(Duration::from_secs(30), "customers pushed", || async {
        let p = sh.get("/api/profile").await?;
        Ok(p["parties"].as_array().is_some_and(|a| a.len() == 2))
    })
    .await?;
    let over = sh.post(&goods("XS", "200102", "A01", "2", "5.00")).await?;
    assert!(matches!(&over, Err((422, m)) if m.contains("credit limit 10")), "{over:?}");
    caught_up(&hq, &sh, 2).await?;
    digests_equal(&hq, &sh).await?;

    // A person's scope narrows the branch's: the clerk may sell only to customers 2001*.
    let clerk_scope = "warehouses=SH01; categories=01; customers=2001*; suppliers=*; employees=*; accounts=*; expenses=*; incomes=*";
    hq.add_person("sh-clerk", &["branch-accountant"], &["--branch", "SH", "--scope", clerk_scope], "clerk-password-1")?;
    wait_until(Duration::from_secs(30), "the clerk reaches the branch", || async {
        let p = sh.get("/api/profile").await?;
        Ok(p["people"].as_array().is_some_and(|a| a.iter().any(|x| x["login"] == "sh-clerk")))
    })
    .await?;
    let clerk = sh.sign_in("sh-clerk", "clerk-password-1").await?;
    let as_clerk = |doc: Value| send(client().post(sh.url("/api/documents")).bearer_auth(&clerk).json(&doc));
    hq.cli(&["customer", "add", "200201", "--name", "上海二店", "--category", "2002"])?;
    wait_until(Duration::from_secs(30), "customer pushed", || async {
        Ok(sh.get("/api/profile").await?["parties"].as_array().is_some_and(|a| a.len() == 3))
    })
    .await?;
    let (status, body) = as_clerk(goods("XS", "200201", "A01", "1", "5.00")).await?;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"], "customer 200201 is outside sh-clerk's customers 2001*; ask HQ to widen the scope", "{body}");
    let (status, body) = as_clerk(goods("XS", "200102", "A01", "1", "5.00")).await?;
    assert_eq!(status, 201, "inside both scopes: {body}");
    // The clerk cannot read HQ's reports.
    let hq_token = hq.sign_in("sh-clerk", "clerk-password-1").await?;
    let (status, _) = send(client().get(hq.url("/api/reports/stock_status")).bearer_auth(&hq_token)).await?;
    assert_eq!(status, 403, "a branch clerk reads no HQ report");
    caught_up(&hq, &sh, 3).await?;
    digests_equal(&hq, &sh).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scope_narrowed_while_the_branch_was_away_flags_and_the_books_agree() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let (mut hq, mut sh) = cluster(tmp.path(), &scope_text("*"))?;
    sh.start()?;
    posted(&sh, &goods("JH", "900001", "A01", "100", "2.00")).await?;
    posted(&sh, &goods("JH", "900001", "B02", "100", "3.00")).await?;
    caught_up(&hq, &sh, 2).await?;
    let old = sh.get("/api/profile").await?["version"].as_u64().unwrap_or_default();

    // HQ goes away (an outage); meanwhile HQ's admin narrows SH to category 01.
    hq.kill9();
    let out = hq.cli(&["scope", "set", "SH", &scope_text("01")])?;
    assert!(out.contains("categories=01"), "{out}");
    // The branch, in good faith under the version it holds, sells category 02.
    let sale = posted(&sh, &goods("XS", "200102", "B02", "5", "6.00")).await?;
    assert_eq!(sale["seq"], 3);
    let after = posted(&sh, &goods("XS", "200102", "A01", "5", "4.00")).await?;

    hq.start()?;
    caught_up(&hq, &sh, 4).await?;
    let doc = hq.get("/api/branches/SH/documents/3").await?;
    assert_eq!(doc["profile_version"].as_u64(), Some(old), "{doc}");
    let flag = doc["mark"]["Flagged"]["reason"].as_str().unwrap_or_default().to_string();
    assert!(flag.contains("product category 02 is outside SH's categories 01"), "flagged with the current rule: {doc}");
    assert_eq!(doc["applied_to_books"], true, "{doc}");
    let next = hq.get(&format!("/api/branches/SH/documents/{}", after["seq"])).await?;
    assert_eq!(next["mark"], Value::Null, "{next}");
    digests_equal(&hq, &sh).await?;

    // The branch now holds the narrowed version and refuses what HQ no longer allows.
    wait_until(Duration::from_secs(30), "new profile", || async { Ok(sh.get("/api/profile").await?["version"].as_u64() > Some(old)) })
        .await?;
    let refused = sh.post(&goods("XS", "200102", "B02", "1", "6.00")).await?;
    assert!(matches!(&refused, Err((422, m)) if m.contains("categories 01")), "{refused:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_branch_is_quarantined_and_later_documents_merge() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let (hq, mut sh) = cluster(tmp.path(), &scope_text("01"))?;
    sh.start_with_env(&[("BRANCHLINE_TEST_SKIP_SCOPE_CHECK", "1")])?;
    posted(&sh, &goods("JH", "900001", "A01", "100", "2.00")).await?;
    // Out of scope: an honest agent refuses it; this one posts it.
    let breach = posted(&sh, &goods("JH", "900001", "B02", "10", "3.00")).await?;
    let later = posted(&sh, &goods("XS", "200102", "A01", "5", "4.00")).await?;
    caught_up(&hq, &sh, 3).await?;

    let doc = hq.get(&format!("/api/branches/SH/documents/{}", breach["seq"])).await?;
    let q = &doc["mark"]["Quarantined"];
    assert!(q["reason"].as_str().is_some_and(|r| r.contains("product category 02 is outside SH's categories 01")), "{doc}");
    assert_eq!((q["applied"].as_bool(), doc["applied_to_books"].as_bool()), (Some(true), Some(true)), "{doc}");
    let next = hq.get(&format!("/api/branches/SH/documents/{}", later["seq"])).await?;
    assert_eq!(next["mark"], Value::Null, "{next}");
    assert!(sh.log().contains("SKIPS its scope check"), "the switch is logged loudly");
    digests_equal(&hq, &sh).await
}
