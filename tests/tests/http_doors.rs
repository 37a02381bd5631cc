//! The closed HTTP doors of HQ and a branch, over their real route tables (`hq routes`,
//! `branch-agent routes`): every route anonymous → 401 and with a wrong role → 403, with
//! the books digest and document counts unchanged; only `/`, sign-in and the probes
//! (`/healthz`, `/readyz`) are public, `/` shows nothing but a sign-in hint and the probes
//! only status words; cross-site requests to the branch are refused;
//! the operator is the signed-in person; the seed 003 clerk cannot read HQ's reports.

use std::process::Command;
use std::time::Duration;

use harness::cluster::{bin, client, doc, send, wait_until, AgentProc, HqProc, PERSON_PASSWORD};
use protocol::codes::BranchCode;
use protocol::people::{authorize, Function, Home, Person, Right, Role};
use protocol::scope::Scope;
use serde_json::{json, Value};

struct Row {
    method: String,
    path: String,
    access: String,
}

fn table(binary: &str) -> anyhow::Result<Vec<Row>> {
    let out = Command::new(bin(binary)).arg("routes").output()?;
    anyhow::ensure!(out.status.success(), "{binary} routes failed");
    let rows = String::from_utf8(out.stdout)?
        .lines()
        .filter_map(|l| {
            let mut p = l.split_whitespace();
            Some(Row { method: p.next()?.into(), path: p.next()?.into(), access: p.next()?.into() })
        })
        .collect::<Vec<_>>();
    anyhow::ensure!(rows.len() > 5, "{binary} printed no route table");
    Ok(rows)
}

fn concrete(path: &str) -> String {
    path.replace("{code}", "SH")
        .replace("{seq}", "1")
        .replace("{name}", "income-statement")
        .replace("{login}", "sh-li")
        .replace("{n}", "0")
        .replace("{id}", "1")
}

fn request(base: &str, row: &Row, token: Option<&str>) -> reqwest::RequestBuilder {
    let url = format!("{base}{}", concrete(&row.path));
    let method = reqwest::Method::from_bytes(row.method.as_bytes()).expect("method from the table");
    let mut req = client().request(method.clone(), url);
    if method != reqwest::Method::GET {
        // A body that would change something if a check were missing.
        req = req.json(&doc("JH", "SH01", &[("P0000", "5", "1.00")]));
    }
    match token {
        Some(t) => req.bearer_auth(t),
        None => req,
    }
}

/// A person of SH with these roles, as the branch's guard sees them.
fn person(roles: &[Role]) -> Person {
    Person {
        login: protocol::codes::OperatorId::new("x").expect("login"),
        name: String::new(),
        roles: roles.to_vec(),
        home: Home::Branch(BranchCode::new("SH").expect("code")),
        scope: Scope::all(),
        disabled: false,
    }
}

/// Is a branch route (`Function:Right` or `Docs:Right`) closed to a person with `roles`?
fn branch_denies(access: &str, roles: &[Role]) -> bool {
    // `Reports:View|metrics_token`: a person needs the right (the token is not sent here).
    let access = access.split('|').next().unwrap_or(access);
    let (f, r) = access.split_once(':').expect("access is FUNCTION:RIGHT");
    let right = Right::ALL.into_iter().find(|x| format!("{x:?}") == r).expect("a right");
    let here = Some(BranchCode::new("SH").expect("code"));
    let p = person(roles);
    let functions: Vec<Function> =
        if f == "Docs" { Function::ALL[..8].to_vec() } else { Function::ALL.into_iter().filter(|x| format!("{x:?}") == f).collect() };
    assert!(!functions.is_empty(), "unknown function {f}");
    functions.into_iter().all(|function| authorize(&p, function, right, here).is_err())
}

async fn counts(hq: &HqProc, sh: &AgentProc) -> anyhow::Result<Value> {
    Ok(json!({
        "hq_digest": hq.get("/api/reports/digest?branch=SH").await?,
        "hq_docs": hq.branch_status("SH").await?["documents_applied"],
        "branch_digest": sh.get("/api/reports/digest").await?,
        "branch_head": sh.sync().await?["head_seq"],
        "people": hq.get("/api/people").await?,
        "products": hq.get("/api/products").await?,
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_closed_to_anonymous_and_wrong_roles() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut hq = HqProc::init(&tmp.path().join("hq"), 2)?;
    let token = hq.add_branch("SH", &["SH01"])?;
    hq.start()?;
    let clerk_scope = "warehouses=SH01; categories=01*; customers=200*";
    hq.add_person("sh-cash", &["cashier"], &["--branch", "SH"], PERSON_PASSWORD)?;
    hq.add_person("sh-tech", &["technician"], &["--branch", "SH"], PERSON_PASSWORD)?;
    hq.add_person("sh-clerk", &["warehouse-clerk"], &["--branch", "SH", "--scope", clerk_scope], PERSON_PASSWORD)?;
    let mut sh = AgentProc::enroll(&tmp.path().join("sh"), hq.quic, &token)?;
    sh.start()?;
    assert!(sh.post(&doc("JH", "SH01", &[("P0000", "10", "2.00")])).await?.is_ok());
    wait_until(Duration::from_secs(60), "sync", || async { Ok(sh.sync().await?["pending"] == 0) }).await?;
    wait_until(Duration::from_secs(60), "the branch knows its people", || async {
        Ok(sh.get("/api/profile").await?["people"].as_array().map_or(0, |p| p.len()) == 4)
    })
    .await?;
    let profile = sh.get("/api/profile").await?;
    assert!(!profile.to_string().contains("argon2"), "password hashes are never served");

    let hq_cash = hq.sign_in("sh-cash", PERSON_PASSWORD).await?;
    let mut at_branch = Vec::new();
    for (login, roles) in [("sh-tech", vec![Role::Technician]), ("sh-cash", vec![Role::Cashier]), ("sh-clerk", vec![Role::WarehouseClerk])]
    {
        at_branch.push((sh.sign_in(login, PERSON_PASSWORD).await?, roles));
    }
    let before = counts(&hq, &sh).await?;

    for (name, base, rows) in [("hq", hq.url(""), table("hq")?), ("branch", sh.url(""), table("branch-agent")?)] {
        let public: Vec<_> = rows.iter().filter(|r| r.access == "public").map(|r| format!("{} {}", r.method, r.path)).collect();
        assert_eq!(
            public,
            ["GET /", "POST /api/session", "GET /healthz", "GET /readyz"],
            "{name}: only the status page, sign-in and the probes are public"
        );
        // The probes answer anonymously with status words and check names, no data.
        for probe in ["/healthz", "/readyz"] {
            let (status, body) = send(client().get(format!("{base}{probe}"))).await?;
            assert_eq!(status, 200, "{name} {probe}: {body}");
            let text = body.to_string();
            assert!(!text.contains("SH") && !text.contains("P0000"), "{name} {probe} shows no data: {text}");
        }
        for row in rows.iter().filter(|r| r.access != "public") {
            let what = format!("{name} {} {}", row.method, row.path);
            let (status, body) = send(request(&base, row, None)).await?;
            assert_eq!(status, 401, "{what} anonymous: {body}");
            // Pages answer with a sign-in form instead of JSON.
            assert!(!row.path.starts_with("/api/") || body["error"].is_string(), "{what}: a reason");
            let (status, _) = send(request(&base, row, Some("BLS1.00.00"))).await?;
            assert_eq!(status, 401, "{what} with a bad token");
            let wrong = if name == "hq" {
                // A Shanghai cashier has no business at HQ.
                hq_cash.clone()
            } else {
                let (t, _) = at_branch
                    .iter()
                    .find(|(_, roles)| branch_denies(&row.access, roles))
                    .unwrap_or_else(|| panic!("{what}: every branch role may call it"));
                t.clone()
            };
            let (status, body) = send(request(&base, row, Some(&wrong))).await?;
            assert_eq!(status, 403, "{what} with a wrong role: {body}");
            assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{what}: a reason");
        }
        // The status page shows nothing but a sign-in hint.
        let page = client().get(format!("{base}/")).send().await?.text().await?;
        assert!(page.contains("Sign in") && !page.contains("SH01") && !page.contains("P0000"), "{name} /: {page}");
    }
    assert_eq!(counts(&hq, &sh).await?, before, "nothing changed");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_requests_and_other_operators_are_refused() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut hq = HqProc::init(&tmp.path().join("hq"), 2)?;
    let token = hq.add_branch("SH", &["SH01"])?;
    let clerk_scope = "warehouses=SH01; categories=01*; customers=200*";
    hq.add_person("li.jia", &["warehouse-clerk"], &["--branch", "SH", "--scope", clerk_scope], PERSON_PASSWORD)?;
    hq.start()?;
    let mut sh = AgentProc::enroll(&tmp.path().join("sh"), hq.quic, &token)?;
    sh.start()?;
    let t = sh.token.clone().expect("signed in");
    let url = sh.url("/api/documents");
    let body = doc("JH", "SH01", &[("P0000", "10", "2.00")]).to_string();
    let head = sh.sync().await?["head_seq"].clone();
    for ct in ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x"] {
        let req = client().post(&url).header("content-type", ct).header("origin", "http://evil.example").body(body.clone());
        let (status, v) = send(req).await?;
        assert_eq!(status, 415, "{ct}: {v}");
        let (status, _) = send(client().post(&url).bearer_auth(&t).header("content-type", ct).body(body.clone())).await?;
        assert_eq!(status, 415, "{ct} even with a token");
    }
    let foreign = client().post(&url).bearer_auth(&t).header("origin", "http://evil.example").header("content-type", "application/json");
    let (status, v) = send(foreign.body(body.clone())).await?;
    assert_eq!(status, 403, "foreign Origin: {v}");
    let mut other = doc("JH", "SH01", &[("P0000", "10", "2.00")]);
    other["operator"] = json!("somebody-else");
    let (status, v) = sh.post_json("/api/documents", &other).await?;
    assert_eq!(status, 403, "a draft naming someone else: {v}");
    assert_eq!(sh.sync().await?["head_seq"], head, "nothing posted");
    let own = client().post(&url).bearer_auth(&t).header("origin", sh.url("")).header("content-type", "application/json");
    let (status, v) = send(own.body(body)).await?;
    assert_eq!(status, 201, "own origin: {v}");
    assert_eq!(v["number"].as_str().map(|n| n.starts_with("JH-SH")), Some(true));
    let posted = sh.get(&format!("/api/documents/{}", v["seq"])).await?;
    assert_eq!(posted["document"]["header"]["operator"], json!(sh.login), "the operator is the signed-in person");

    // The seed 003 clerk: signed in at HQ, HQ's reports are closed, with the reason.
    let clerk = hq.sign_in("li.jia", PERSON_PASSWORD).await?;
    let (status, v) = send(client().get(hq.url("/api/reports/income-statement")).bearer_auth(&clerk)).await?;
    assert_eq!(status, 403, "{v}");
    assert!(v["error"].as_str().unwrap_or("").contains("for people at HQ"), "{v}");
    let (status, v) = send(client().get(hq.url("/api/reports/income-statement?branch=HB")).bearer_auth(&clerk)).await?;
    assert_eq!(status, 403, "{v}");
    assert!(v["error"].as_str().unwrap_or("").contains("not at HB"), "{v}");
    let (status, _) = send(client().post(hq.url("/api/session")).json(&json!({"login": "li.jia", "password": "wrong"}))).await?;
    assert_eq!(status, 401, "a wrong password");
    Ok(())
}
