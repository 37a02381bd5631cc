//! Dates and periods with real processes (issues 10 and 11): the branch refuses a
//! document dated beyond its window ahead of today and a close of a month that has not
//! ended; an HQ auditor orders the branch's latest closed month reopened (反结账), the
//! order goes down the signed down channel, the branch posts the reopen document by
//! itself, a document dated in the reopened month then posts, and the branch's and HQ's
//! books digests are equal afterwards.

use std::time::Duration;

use harness::cluster::{client, doc, send, wait_until, AgentProc, HqProc};
use serde_json::json;

fn dated(doc_type: &str, date: &str, lines: &[(&str, &str, &str)]) -> serde_json::Value {
    let mut d = doc(doc_type, "SH01", lines);
    d["date"] = json!(date);
    d
}

fn close(date: &str, year: u16, month: u8) -> serde_json::Value {
    json!({ "doc_type": "JZ", "date": date, "warehouse": "SH01", "ext": { "period": { "year": year, "month": month } } })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_reopens_a_closed_month_and_the_branch_posts_the_reopen_by_itself() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut hq = HqProc::init(&tmp.path().join("hq"), 2)?;
    let token = hq.add_branch("SH", &["SH01"])?;
    hq.start()?;
    let mut sh = AgentProc::enroll(&tmp.path().join("sh"), hq.quic, &token)?;
    sh.start()?;
    let posted = sh.post(&dated("BY", "2026-06-09", &[("P0001", "5", "3.00")])).await?;
    assert!(posted.is_ok(), "{posted:?}");

    // The branch clock's rules: a mistyped year is refused with the reason; so is a
    // close of a month that has not ended (this one, whatever today is).
    let far = sh.post(&dated("BY", "2099-06-09", &[("P0001", "1", "3.00")])).await?;
    let (status, text) = far.expect_err("dated 2099");
    assert_eq!(status, 422, "{text}");
    assert!(text.contains("days after today") && text.contains("Asia/Shanghai"), "{text}");
    let today = edge::BusinessZone::shanghai().today();
    let refused = sh.post(&close(&today.to_string(), today.year(), today.month())).await?;
    let (status, text) = refused.expect_err("this month has not ended");
    assert!(status == 422 && text.contains("has not ended yet"), "{status} {text}");

    // June closes on 1 July; a June document is then refused.
    let closed = sh.post(&close("2026-07-01", 2026, 6)).await?;
    assert!(closed.is_ok(), "{closed:?}");
    let june = sh.post(&dated("BY", "2026-06-30", &[("P0001", "1", "2.00")])).await?;
    let (status, text) = june.expect_err("June is closed");
    assert!(status == 422 && text.contains("closed through 2026-06"), "{status} {text}");
    // A second close says what a person understands.
    let again = sh.post(&close("2026-07-02", 2026, 6)).await?;
    let (_, text) = again.expect_err("closed already");
    assert!(text.contains("2026-06 is closed already") && text.contains("the next month to close is 2026-07"), "{text}");
    // A reopen cannot be entered at the branch.
    let own = sh
        .post(&json!({ "doc_type": "FJZ", "date": "2026-07-02", "warehouse": "SH01", "ext": { "period": { "year": 2026, "month": 6 } } }))
        .await?;
    assert_eq!(own.map(|_| ()).expect_err("HQ orders reopens").0, 403);
    let t0 = std::time::Instant::now();
    wait_until(Duration::from_secs(60), "documents synced", || async { Ok(sh.sync().await?["acked_seq"] == 2) }).await?;

    eprintln!("synced after {:?}", t0.elapsed());
    // Ordering a reopen is an HQ auditor's right; only the latest closed month.
    let (status, _) = hq.post_json("/api/periods/SH/reopen", &json!({ "period": "2026-06", "why": "late invoice" })).await?;
    assert_eq!(status, 403, "an HQ admin may not reopen a month");
    hq.add_person("auditor1", &["hq-auditor"], &[], "auditor-password-1")?;
    let auditor = hq.sign_in("auditor1", "auditor-password-1").await?;
    let order = |period: &str| {
        send(
            client().post(hq.url("/api/periods/SH/reopen")).bearer_auth(&auditor).json(&json!({ "period": period, "why": "late invoice" })),
        )
    };
    let (status, body) = order("2026-05").await?;
    assert!(status == 409 && body["error"].as_str().unwrap_or("").contains("closed through 2026-06"), "{status} {body}");
    let (status, body) = order("2026-06").await?;
    assert_eq!(status, 200, "{body}");

    wait_until(Duration::from_secs(60), "the branch posts the reopen", || async {
        Ok(sh.get("/api/notices").await?["reopens"][0]["state"] == "done")
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\nagent log:\n{}\nhq log:\n{}", sh.log(), hq.log()))?;
    eprintln!("reopen posted after {:?}", t0.elapsed());
    let reopen = sh.get("/api/documents/3").await?;
    assert!(reopen.to_string().contains("FJZ-SH-"), "{reopen}");
    // June takes documents again.
    let june = sh.post(&dated("BY", "2026-06-30", &[("P0001", "1", "2.00")])).await?;
    assert!(june.is_ok(), "{june:?}");
    wait_until(Duration::from_secs(60), "HQ applied the reopen and the June document", || async { Ok(sh.sync().await?["acked_seq"] == 4) })
        .await?;
    let at_branch = sh.get("/api/reports/digest").await?;
    let at_hq = hq.get("/api/reports/digest?branch=SH").await?;
    assert_eq!(at_branch, at_hq, "books digest differs between branch and HQ");
    // HQ's copy is open again too: a second order for June is refused.
    let (status, _) = order("2026-06").await?;
    assert_eq!(status, 409);
    Ok(())
}
