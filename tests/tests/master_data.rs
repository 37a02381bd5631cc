//! Master data flows down: HQ adds a product with preset prices and sets a customer's
//! credit limit while a branch is connected; the branch receives both without
//! reconnecting, prices a sale by level, and refuses a credit sale over the limit.

use std::time::Duration;

use harness::cluster::{wait_until, AgentProc, HqProc};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_and_credit_limits_reach_a_connected_branch() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut hq = HqProc::init(&tmp.path().join("hq"), 1)?;
    let token = hq.add_branch("SH", &["SH01"])?;
    hq.start()?;
    let mut sh = AgentProc::enroll(&tmp.path().join("sh"), hq.quic, &token)?;
    sh.start()?;
    wait_until(Duration::from_secs(30), "link up", || async { Ok(sh.sync().await?["link_up"] == true) }).await?;
    let connects = sh.sync().await?["connects"].clone();

    // Through the CLI, which goes through the admin API because HQ holds the store.
    hq.cli(&["product", "add", "6920202888883", "--name", "绿茶 500ml", "--price", "3.50", "--prices", "3.00,2.80"])?;
    // Pushed on its own, not only with the next change of another kind.
    wait_until(Duration::from_secs(30), "product pushed", || async {
        Ok(sh.get("/api/profile").await?["products"]["6920202888883"]["name"] == "绿茶 500ml")
    })
    .await?;
    hq.cli(&["customer", "limit", "C0001", "100.00"])?;
    wait_until(Duration::from_secs(30), "profile pushed", || async {
        let p = sh.get("/api/profile").await?;
        Ok(p["products"]["6920202888883"]["prices"][1] == "2.80" && p["credit_limits"]["C0001"] == "100.00")
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\nagent log:\n{}\nhq log:\n{}", sh.log(), hq.log()))?;
    assert_eq!(sh.sync().await?["connects"], connects, "pushed on the open connection, no reconnect");

    let receipt = json!({"doc_type": "JH", "date": "2026-06-09", "warehouse": "SH01", "counterparty": "S0001",
        "lines": [{"product": "6920202888883", "qty": "100", "unit_price": "2.00"}]});
    assert!(sh.post(&receipt).await?.is_ok());
    // Level 2 price from the catalog: 10 x 2.80 = 28.00.
    let by_level = json!({"doc_type": "XS", "date": "2026-06-09", "warehouse": "SH01", "counterparty": "C0001",
        "lines": [{"product": "6920202888883", "qty": "10", "price_level": 2}]});
    let posted = sh.post(&by_level).await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let doc = sh.get(&format!("/api/documents/{}", posted["seq"])).await?;
    assert_eq!(doc["document"]["lines"][0]["amount"], "28.00");
    // 28.00 owed; another 10 x 8.00 = 80.00 would make 108.00 > 100.00.
    let over = json!({"doc_type": "XS", "date": "2026-06-09", "warehouse": "SH01", "counterparty": "C0001",
        "lines": [{"product": "6920202888883", "qty": "10", "unit_price": "8.00"}]});
    let refused = sh.post(&over).await?;
    assert!(matches!(&refused, Err((422, m)) if m.contains("credit limit")), "{refused:?}");
    // Cash sales are not limited.
    let mut cash = over.clone();
    cash["ext"] = json!({"account": "1001"});
    assert!(sh.post(&cash).await?.is_ok());

    // A catalog saved by Chinese Excel (GBK) is imported while HQ runs, as one change.
    let version = sh.sync().await.ok().and(sh.get("/api/profile").await.ok()).map(|p| p["version"].clone());
    let bad = tmp.path().join("bad.csv");
    std::fs::write(&bad, "code,name,retail_price\nT1,茶,1.00\nT2,,x\n")?;
    let refused = hq.cli(&["product", "import", bad.to_str().unwrap_or_default()]).expect_err("a bad file is refused");
    assert!(refused.to_string().contains("line 3") && refused.to_string().contains("nothing was imported"), "{refused}");
    let (gbk, _, _) = encoding_rs::GB18030
        .encode("code,name,unit,retail_price,price1\n6901234567892,矿泉水 550ml,瓶,2.00,1.80\nT1,\"茶, 红\",盒,12.00,\n");
    let file = tmp.path().join("catalog.csv");
    std::fs::write(&file, &gbk)?;
    let out = hq.cli(&["product", "import", file.to_str().unwrap_or_default()])?;
    assert!(out.contains("imported 2 products") && out.contains("2 new"), "{out}");
    wait_until(Duration::from_secs(30), "imported catalog pushed", || async {
        let p = sh.get("/api/profile").await?;
        Ok(p["products"]["6901234567892"]["name"] == "矿泉水 550ml" && p["products"]["T1"]["name"] == "茶, 红")
    })
    .await?;
    let p = sh.get("/api/profile").await?;
    let before = version.and_then(|v| v.as_u64()).unwrap_or(0);
    assert_eq!(p["version"].as_u64(), Some(before + 1), "the bad file changed nothing; the good one is one change");
    let exported = hq.cli(&["product", "export"])?;
    assert!(exported.starts_with("code,name,unit,retail_price,price1"), "{exported}");
    assert!(exported.contains("T1,\"茶, 红\",盒,12.00,"), "{exported}");

    // 红字冲账 through the branch API: the reversal of a cash sale puts the stock back.
    let before = sh.stock().await?;
    let sale = sh.post(&cash).await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let (status, reversed) = sh.post_json(&format!("/api/documents/{}/reverse", sale["seq"]), &json!({"date": "2026-06-10"})).await?;
    assert!((200..300).contains(&status), "{status} {reversed}");
    assert!(reversed["number"].as_str().is_some_and(|n| n.starts_with("XS-SH-0610-")), "{reversed}");
    assert_eq!(sh.stock().await?, before, "the reversal restores the stock");
    let (status, twice) = sh.post_json(&format!("/api/documents/{}/reverse", sale["seq"]), &json!({"date": "2026-06-10"})).await?;
    assert!(status == 422 && twice["error"].as_str().is_some_and(|e| e.contains("already reversed")), "{status} {twice}");
    Ok(())
}
