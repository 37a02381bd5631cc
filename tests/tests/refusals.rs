//! The bad-input corpus over HTTP, with one real HQ and one real branch agent for all
//! cases (to keep CI time low): each case sends one bad request, checks the status and
//! that the JSON `error` says what to fix, and checks that nothing changed (books digest
//! at both ends, the branch's head, HQ's documents and catalog). Then two clients at once
//! on the branch's write paths: no duplicate numbers, no lost posts, consistent stock.
//!
//! The corpus, case → test (cases at HQ's QUIC port live in the tests named):
//!
//! | # | case | test |
//! |---|------|------|
//! | 1 | oversized body (branch) → 413 naming the limit | `refusals::every_bad_request_is_refused_in_json_and_changes_nothing` `oversized_branch` |
//! | 2 | oversized body (HQ) → 413 | same, `oversized_hq` |
//! | 3 | wrong method → 405 naming the allowed ones (both) | same, `wrong_method_*` |
//! | 4 | unknown path → 404 (both) | same, `unknown_path_*` |
//! | 5 | bad path parameter `/api/documents/abc` → 400 "seq must be a whole number" | same, `bad_path_*` |
//! | 6 | malformed JSON → 400 | same, `malformed_json` |
//! | 7 | JSON type error: float quantity → 422 "qty must be a decimal string like \"2.5\"" | same, `float_qty` |
//! | 8 | unknown field in `ext` (`acount` on a cash purchase) → 422 naming it and the allowed | same, `unknown_ext_field` |
//! | 9 | unknown field in the draft (`memmo`) and in a line | same, `unknown_draft_field` |
//! | 10 | bidirectional override U+202E in a memo → 422 | same, `bidi_memo` |
//! | 11 | NUL / control character in a memo → 422 | same, `nul_memo` |
//! | 12 | bidi override in the operator → 422 | same, `bidi_operator` |
//! | 13 | JSON nested 5,000 deep inside `ext` → 400 | same, `deep_nesting` |
//! | 14 | bad content type → 415 | same, `bad_content_type`; also `http_doors::cross_site_requests_and_other_operators_are_refused` |
//! | 15 | unknown document type → 400 listing the known | same, `unknown_doc_type` |
//! | 16 | quantity over 10^9 (overflow guard) → 422 | same, `overflow_qty` |
//! | 17 | date outside business years (far future) → 422 | same, `far_future_date` |
//! | 18 | warehouse out of scope → 422 naming the rule | same, `out_of_scope`; also `scope::the_seed_clerk_is_refused_outside_scope_with_the_rule_named` |
//! | 19 | stock going negative → 422 | same, `negative_stock` |
//! | 20 | amount ≠ qty × price → 422 | same, `amount_mismatch` |
//! | 21 | bad query parameter → 400 JSON | same, `bad_query` |
//! | 22 | HQ: a product name with a bidi override → 400 | same, `hq_bidi_name` |
//! | 23 | HQ: unknown field in an admin request → 422 | same, `hq_unknown_field` |
//! | 24 | stock count with an unknown field / float → 422 | same, `count_unknown_field` |
//! | 25 | empty body → 400 | same, `empty_body` |
//! | 26 | forged batch signature (`BadSignature`) | `bad_input::hostile_input_is_refused_and_changes_nothing` |
//! | 27 | replayed batch (acked, not applied) | same |
//! | 28 | forked / broken chain (`Fork`) | same |
//! | 29 | truncated and random frames (`Malformed`) | same |
//! | 30 | token reuse (`BadToken`) | same |
//! | 31 | peer without an enrolled key | `closed_door::the_door_is_closed_to_peers_without_an_enrolled_key` |
//! | 32 | revoked key | same |
//! | 33 | anonymous / wrong role on every route | `http_doors::every_route_is_closed_to_anonymous_and_wrong_roles` |
//! | 34 | a draft naming another operator → 403 | `http_doors::cross_site_requests_and_other_operators_are_refused` |
//! | 35 | bad `agent.toml` / `hq.toml` values | unit tests `config::tests::bad_values_are_refused_at_load_naming_the_field` (both binaries) |
//!
//! Not here (the core half of issue 10): wrong wire version, clock skew, far-future dates
//! within the business years, Decimal overflow inside posting.

use std::time::Duration;

use harness::cluster::{client, doc, send, wait_until, AgentProc, HqProc};
use serde_json::{json, Value};

async fn state(hq: &HqProc, sh: &AgentProc) -> anyhow::Result<Value> {
    Ok(json!({
        "hq_digest": hq.get("/api/reports/digest?branch=SH").await?,
        "hq_docs": hq.branch_status("SH").await?["documents_applied"],
        "branch_digest": sh.get("/api/reports/digest").await?,
        "branch_head": sh.sync().await?["head_seq"],
        "products": hq.get("/api/products").await?,
    }))
}

/// Sends `body` as raw bytes with `content_type`, signed in at `proc`.
fn raw(
    proc: &harness::cluster::Proc,
    method: &str,
    path: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::RequestBuilder {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let req = client().request(method, proc.url(path)).header("content-type", content_type).body(body);
    match &proc.token {
        Some(t) => req.bearer_auth(t),
        None => req,
    }
}

/// The refusal's status and `error` text; fails if the body is not `{"error": "..."}`.
async fn refused(name: &str, req: reqwest::RequestBuilder) -> anyhow::Result<(u16, String)> {
    let (status, body) = send(req).await?;
    let error = body["error"].as_str().unwrap_or_else(|| panic!("{name}: {status} without a JSON error: {body}")).to_string();
    assert!(!error.is_empty(), "{name}: empty error");
    println!("{name}: {status} {error}");
    Ok((status, error))
}

fn expect(name: &str, got: (u16, String), status: u16, words: &[&str]) {
    assert_eq!(got.0, status, "{name}: {}", got.1);
    for w in words {
        assert!(got.1.contains(w), "{name}: {:?} does not say {w:?}", got.1);
    }
}

async fn cluster(tmp: &std::path::Path) -> anyhow::Result<(HqProc, AgentProc)> {
    let mut hq = HqProc::init(&tmp.join("hq"), 3)?;
    let token = hq.add_branch("SH", &["SH01"])?;
    hq.start()?;
    let mut sh = AgentProc::enroll(&tmp.join("sh"), hq.quic, &token)?;
    sh.start()?;
    let first = sh.post(&doc("JH", "SH01", &[("P0000", "100", "2.00"), ("P0001", "50", "3.00")])).await?;
    assert!(first.is_ok(), "{first:?}");
    wait_until(Duration::from_secs(60), "sync", || async { Ok(sh.sync().await?["pending"] == 0) }).await?;
    Ok((hq, sh))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_request_is_refused_in_json_and_changes_nothing() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let (hq, sh) = cluster(tmp.path()).await?;
    let before = state(&hq, &sh).await?;
    let json_ct = "application/json";
    let good = doc("JH", "SH01", &[("P0000", "5", "2.00")]);
    let with = |f: &dyn Fn(&mut Value)| {
        let mut d = good.clone();
        f(&mut d);
        d.to_string()
    };

    // 1-2: oversized bodies name the limit.
    let big = vec![b' '; 3 * 1024 * 1024];
    expect(
        "oversized_branch",
        refused("oversized_branch", raw(&sh, "POST", "/api/documents", json_ct, big.clone())).await?,
        413,
        &["2097152 bytes"],
    );
    expect("oversized_hq", refused("oversized_hq", raw(&hq, "POST", "/api/admin/products", json_ct, big)).await?, 413, &["2097152 bytes"]);

    // 3: wrong method names the allowed ones.
    let r = send(raw(&sh, "PUT", "/api/documents", json_ct, "{}")).await?;
    assert_eq!(r.0, 405, "wrong_method_branch: {}", r.1);
    expect(
        "wrong_method_branch",
        (r.0, r.1["error"].as_str().unwrap_or("").into()),
        405,
        &["PUT is not allowed on /api/documents", "allowed: POST"],
    );
    let got = refused("wrong_method_hq", raw(&hq, "DELETE", "/api/products", json_ct, "")).await?;
    expect("wrong_method_hq", got, 405, &["DELETE is not allowed", "GET"]);

    // 4: unknown paths.
    expect(
        "unknown_path_branch",
        refused("unknown_path_branch", raw(&sh, "GET", "/api/nope", json_ct, "")).await?,
        404,
        &["no route /api/nope"],
    );
    expect("unknown_path_hq", refused("unknown_path_hq", raw(&hq, "GET", "/api/nope", json_ct, "")).await?, 404, &["no route"]);

    // 5: bad path parameters, in words.
    let got = refused("bad_path_branch", raw(&sh, "GET", "/api/documents/abc", json_ct, "")).await?;
    expect("bad_path_branch", got, 400, &["seq must be a whole number", "\"abc\""]);
    let got = refused("bad_path_reverse", raw(&sh, "POST", "/api/documents/x1/reverse", json_ct, r#"{"date":"2026-06-10"}"#)).await?;
    expect("bad_path_reverse", got, 400, &["seq must be a whole number"]);
    let got = refused("bad_path_hq", raw(&hq, "GET", "/api/branches/SH/documents/abc", json_ct, "")).await?;
    expect("bad_path_hq", got, 400, &["seq must be a whole number"]);
    let got = refused("bad_path_till", raw(&sh, "DELETE", "/api/pos/cart/lines/-1", json_ct, "")).await?;
    expect("bad_path_till", got, 400, &["n must be a whole number"]);

    // 6, 25: malformed and empty JSON.
    let got = refused("malformed_json", raw(&sh, "POST", "/api/documents", json_ct, r#"{"doc_type": "JH", "#)).await?;
    expect("malformed_json", got, 400, &["not valid JSON"]);
    expect("empty_body", refused("empty_body", raw(&sh, "POST", "/api/documents", json_ct, "")).await?, 400, &["needs a JSON body"]);

    // 7: a float quantity, in the API's words.
    let body = with(&|d| d["lines"][0]["qty"] = json!(2.5));
    let got = refused("float_qty", raw(&sh, "POST", "/api/documents", json_ct, body)).await?;
    expect("float_qty", got.clone(), 422, &["lines[0].qty must be a decimal string like \"2.5\""]);
    assert!(!got.1.contains("untagged"), "float_qty: {}", got.1);

    // 8: the typo that would post a cash purchase on credit.
    let body = with(&|d| d["ext"] = json!({"acount": "1001"}));
    let got = refused("unknown_ext_field", raw(&sh, "POST", "/api/documents", json_ct, body)).await?;
    expect("unknown_ext_field", got, 422, &["ext.acount is not a field", "`account`", "`to_warehouse`"]);

    // 9: unknown fields in the draft and in a line.
    let got = refused("unknown_draft_field", raw(&sh, "POST", "/api/documents", json_ct, with(&|d| d["memmo"] = json!("x")))).await?;
    expect("unknown_draft_field", got, 422, &["memmo is not a field", "`memo`"]);
    let got =
        refused("unknown_line_field", raw(&sh, "POST", "/api/documents", json_ct, with(&|d| d["lines"][0]["price"] = json!("2")))).await?;
    expect("unknown_line_field", got, 422, &["lines[0].price is not a field", "`unit_price`"]);

    // 10-12: controls and bidirectional overrides in memo and operator.
    let got =
        refused("bidi_memo", raw(&sh, "POST", "/api/documents", json_ct, with(&|d| d["memo"] = json!("退货 \u{202e}100.00")))).await?;
    expect("bidi_memo", got, 422, &["memo holds a bidirectional control (U+202E) at character 4"]);
    let got = refused("nul_memo", raw(&sh, "POST", "/api/documents", json_ct, with(&|d| d["memo"] = json!("a\u{0}b")))).await?;
    expect("nul_memo", got, 422, &["memo holds NUL (U+0000)"]);
    let got = refused("esc_memo", raw(&sh, "POST", "/api/documents", json_ct, with(&|d| d["memo"] = json!("\u{1b}@")))).await?;
    expect("esc_memo", got, 422, &["ESC (U+001B)"]);
    let login = sh.login.clone();
    let got =
        refused("bidi_operator", raw(&sh, "POST", "/api/documents", json_ct, with(&|d| d["operator"] = json!(format!("{login}\u{202e}")))))
            .await?;
    expect("bidi_operator", got, 422, &["operator"]);

    // 13: nesting 5,000 deep inside ext.
    let deep = format!(
        r#"{{"doc_type":"JH","date":"2026-06-09","warehouse":"SH01","ext":{{"settles":{}{}}}}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let got = refused("deep_nesting", raw(&sh, "POST", "/api/documents", json_ct, deep)).await?;
    expect("deep_nesting", got, 400, &["nested deeper than 32 levels"]);

    // 14: not JSON.
    let got = refused("bad_content_type", raw(&sh, "POST", "/api/documents", "text/plain", good.to_string())).await?;
    expect("bad_content_type", got, 415, &["application/json"]);
    let got = refused("bad_content_type_hq", raw(&hq, "POST", "/api/admin/products", "text/plain", r#"{"code":"P9","name":"x"}"#)).await?;
    expect("bad_content_type_hq", got, 415, &["application/json"]);

    // 15-20: documents the rules refuse.
    let got = refused("unknown_doc_type", raw(&sh, "POST", "/api/documents", json_ct, with(&|d| d["doc_type"] = json!("XSS")))).await?;
    expect("unknown_doc_type", got, 400, &["unknown document type \"XSS\"", "JH (purchase receipt)"]);
    let got = refused("overflow_qty", raw(&sh, "POST", "/api/documents", json_ct, with(&|d| d["lines"][0]["qty"] = json!("10000000000"))))
        .await?;
    expect("overflow_qty", got, 422, &["line 1"]);
    let got = refused("far_future_date", raw(&sh, "POST", "/api/documents", json_ct, with(&|d| d["date"] = json!("9999-12-31")))).await?;
    assert!(got.0 == 422 || got.0 == 400, "far_future_date: {got:?}");
    let got = refused("out_of_scope", raw(&sh, "POST", "/api/documents", json_ct, with(&|d| d["warehouse"] = json!("HB01")))).await?;
    expect("out_of_scope", got, 422, &["HB01"]);
    let sale = doc("XS", "SH01", &[("P0000", "1000", "5.00")]).to_string();
    expect("negative_stock", refused("negative_stock", raw(&sh, "POST", "/api/documents", json_ct, sale)).await?, 422, &["P0000"]);
    let got =
        refused("amount_mismatch", raw(&sh, "POST", "/api/documents", json_ct, with(&|d| d["lines"][0]["amount"] = json!("9.99")))).await?;
    expect("amount_mismatch", got, 422, &["amount 9.99 does not equal"]);

    // 21: a bad query parameter.
    let got = refused("bad_query", raw(&sh, "GET", "/api/movements?limit=lots", json_ct, "")).await?;
    expect("bad_query", got, 400, &["query string"]);

    // 22-23: HQ's master data.
    let got = refused(
        "hq_bidi_name",
        raw(&hq, "POST", "/api/admin/products", json_ct, json!({"code": "P9", "name": "绿茶\u{202e}"}).to_string()),
    )
    .await?;
    expect("hq_bidi_name", got, 400, &["product name holds a bidirectional control"]);
    let got = refused(
        "hq_unknown_field",
        raw(&hq, "POST", "/api/admin/products", json_ct, json!({"code": "P9", "name": "x", "retail": "2"}).to_string()),
    )
    .await?;
    expect("hq_unknown_field", got, 422, &["retail is not a field", "`retail_price`"]);

    // 24: the stock count reads its request as strictly.
    let count = json!({"date": "2026-06-09", "warehouse": "SH01", "counted": [{"product": "P0000", "qty": "90", "note": "x"}]});
    let got = refused("count_unknown_field", raw(&sh, "POST", "/api/stock-count", json_ct, count.to_string())).await?;
    expect("count_unknown_field", got, 422, &["counted[0].note is not a field"]);
    let count = json!({"date": "2026-06-09", "warehouse": "SH01", "counted": [{"product": "P0000", "qty": 90.5}]});
    let got = refused("count_float", raw(&sh, "POST", "/api/stock-count", json_ct, count.to_string())).await?;
    expect("count_float", got, 422, &["counted[0].qty must be a decimal string"]);

    assert_eq!(state(&hq, &sh).await?, before, "a refusal changed something");

    // The document types people name are accepted: English in any case, Chinese.
    for t in ["purchase RECEIPT", "进货单"] {
        let posted = sh.post(&with_type(&good, t)).await?;
        assert!(posted.as_ref().is_ok_and(|p| p["number"].as_str().is_some_and(|n| n.starts_with("JH-SH-"))), "{t}: {posted:?}");
    }
    Ok(())
}

fn with_type(d: &Value, t: &str) -> Value {
    let mut d = d.clone();
    d["doc_type"] = json!(t);
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_at_once_lose_nothing_and_duplicate_nothing() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let (hq, sh) = cluster(tmp.path()).await?;
    let head0 = sh.sync().await?["head_seq"].as_u64().expect("head");
    const EACH: usize = 12;

    // Posts: two clients, each posting receipts and sales at once.
    let client_posts = |kind: &'static str| {
        let sh = &sh;
        async move {
            let mut numbers = Vec::new();
            for _ in 0..EACH {
                let d =
                    if kind == "JH" { doc("JH", "SH01", &[("P0001", "2", "3.00")]) } else { doc("XS", "SH01", &[("P0000", "1", "5.00")]) };
                match sh.post(&d).await? {
                    Ok(p) => numbers.push(p["number"].as_str().expect("number").to_string()),
                    Err(e) => anyhow::bail!("{kind} refused under concurrency: {e:?}"),
                }
            }
            anyhow::Ok(numbers)
        }
    };
    let (a, b) = tokio::join!(client_posts("JH"), client_posts("XS"));
    let mut numbers: Vec<String> = a?.into_iter().chain(b?).collect();
    let n = numbers.len();
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), n, "duplicate document numbers");
    assert_eq!(sh.sync().await?["head_seq"].as_u64(), Some(head0 + 2 * EACH as u64), "lost or extra posts");

    // Stock counts: two clients count the same shelf at once; the books end at the count,
    // not at the count minus the difference twice.
    let count = json!({"date": "2026-06-09", "warehouse": "SH01", "counted": [{"product": "P0000", "qty": "70"}]});
    let (x, y) = tokio::join!(sh.post_json("/api/stock-count", &count), sh.post_json("/api/stock-count", &count));
    let (x, y) = (x?, y?);
    assert_eq!((x.0, y.0), (201, 201), "{x:?} {y:?}");
    let posted = x.1["posted"].as_array().map_or(0, Vec::len) + y.1["posted"].as_array().map_or(0, Vec::len);
    assert_eq!(posted, 1, "one count posts the loss, the other finds nothing to post: {x:?} {y:?}");
    let stock = harness::cluster::stock_map(&sh.stock().await?);
    let p0000 = stock.get(&("SH01".to_string(), "P0000".to_string())).expect("P0000 on hand");
    assert_eq!(p0000.0.parse::<protocol::Decimal>()?, protocol::Decimal::from(70), "stock after two equal counts: {p0000:?}");

    // Reprints: two clients reprint the same receipt at once; the answers agree and
    // nothing is posted (a reprint is built from the journal).
    let head = sh.sync().await?["head_seq"].clone();
    let path = format!("/api/pos/reprint/{head0}");
    let empty = json!({});
    let (x, y) = tokio::join!(sh.post_json(&path, &empty), sh.post_json(&path, &empty));
    let (x, y) = (x?, y?);
    assert_eq!(x.0, y.0, "{x:?} {y:?}");
    assert!(x.1["error"].is_string() || x.0 == 200, "{x:?}");
    assert_eq!(sh.sync().await?["head_seq"], head, "a reprint posted something");

    // Everything arrives at HQ once, and HQ's books equal the branch's.
    let head = sh.sync().await?["head_seq"].as_u64().expect("head");
    wait_until(Duration::from_secs(60), "HQ has every document", || async {
        Ok(hq.branch_status("SH").await?["documents_applied"].as_u64() == Some(head))
    })
    .await?;
    assert_eq!(hq.get("/api/reports/digest?branch=SH").await?, sh.get("/api/reports/digest").await?, "books differ");
    Ok(())
}
