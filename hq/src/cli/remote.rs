//! Calls to a running HQ's HTTP API, signed in as the local admin that `hq init` created:
//! the admin commands use them when `hq serve` holds the store. Nothing here decides;
//! the server checks every call against its route table.

use std::path::Path;

use anyhow::{bail, Context};
use hq::config::HqConfig;

/// The local admin credential `hq init` writes: `login` and `password` lines, mode 0600.
pub(crate) const ADMIN_SECRET_FILE: &str = "admin.secret";
pub(crate) const ADMIN_LOGIN: &str = "admin";

/// Signs in to a running HQ as the local admin (`admin.secret`, written by `hq init`).
pub(crate) async fn admin_session(dir: &Path, base: &str) -> anyhow::Result<String> {
    let path = dir.join(ADMIN_SECRET_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading the local admin credential {}", path.display()))?;
    let mut lines = text.lines();
    let (Some(login), Some(password)) = (lines.next(), lines.next()) else {
        bail!("{} should hold a login line and a password line", path.display());
    };
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/session"))
        .json(&serde_json::json!({ "login": login, "password": password }))
        .send()
        .await
        .with_context(|| format!("HQ store is locked and the API at {base} does not answer; is `hq serve` running?"))?;
    let status = resp.status();
    let value: serde_json::Value = resp.json().await.context("sign-in answered with something that is not JSON")?;
    if !status.is_success() {
        bail!("signing in as {login}: {}", value.get("error").and_then(|e| e.as_str()).unwrap_or("refused"));
    }
    Ok(value["token"].as_str().context("sign-in returned no token")?.to_string())
}

/// Calls the admin API of a running HQ (the store is locked while `hq serve` runs),
/// signed in as the local admin.
pub(crate) async fn admin_post(dir: &Path, path: &str, body: serde_json::Value) -> anyhow::Result<serde_json::Value> {
    let config = HqConfig::load(dir)?;
    let base = format!("http://{}", config.http_listen);
    let token = admin_session(dir, &base).await?;
    let url = format!("{base}{path}");
    let resp = reqwest::Client::new()
        .post(&url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("HQ store is locked and the admin API at {url} does not answer; is `hq serve` running?"))?;
    let status = resp.status();
    let value: serde_json::Value = resp.json().await.context("admin API answered with something that is not JSON")?;
    if !status.is_success() {
        bail!("{}", value.get("error").and_then(|e| e.as_str()).unwrap_or("admin call failed"));
    }
    Ok(value)
}

pub(crate) async fn admin_get_json(dir: &Path, path: &str) -> anyhow::Result<serde_json::Value> {
    Ok(serde_json::from_str(&admin_get_text(dir, path).await?)?)
}

pub(crate) async fn admin_get_text(dir: &Path, path: &str) -> anyhow::Result<String> {
    let config = HqConfig::load(dir)?;
    let base = format!("http://{}", config.http_listen);
    let token = admin_session(dir, &base).await?;
    let url = format!("{base}{path}");
    let resp = reqwest::Client::new()
        .get(&url)
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| format!("HQ store is locked and the API at {url} does not answer; is `hq serve` running?"))?;
    if !resp.status().is_success() {
        bail!("{url} answered {}", resp.status());
    }
    Ok(resp.text().await?)
}

/// Calls a running HQ's API as the person `login` (an auditor's decisions and orders are
/// theirs, never the local admin's), the password read from one line of stdin. `body`
/// `None` is a GET. The JSON answer, or the API's refusal as the error.
pub(crate) async fn as_person(dir: &Path, login: &str, path: &str, body: Option<serde_json::Value>) -> anyhow::Result<serde_json::Value> {
    let mut password = String::new();
    std::io::stdin().read_line(&mut password).context("reading the password from stdin")?;
    let base = format!("http://{}", HqConfig::load(dir)?.http_listen);
    let client = reqwest::Client::new();
    let signed = client
        .post(format!("{base}/api/session"))
        .json(&serde_json::json!({ "login": login, "password": password.trim_end_matches(['\r', '\n']) }))
        .send()
        .await
        .with_context(|| format!("HQ's API at {base} does not answer; is `hq serve` running?"))?;
    let v: serde_json::Value = signed.json().await.context("sign-in answered with something that is not JSON")?;
    let token = v["token"].as_str().with_context(|| format!("signing in as {login}: {}", v["error"].as_str().unwrap_or("refused")))?;
    let req = match body {
        Some(b) => client.post(format!("{base}{path}")).json(&b),
        None => client.get(format!("{base}{path}")),
    };
    let resp = req.bearer_auth(token).send().await?;
    let status = resp.status();
    let v: serde_json::Value = resp.json().await.context("HQ answered with something that is not JSON")?;
    if !status.is_success() {
        bail!("{}", v["error"].as_str().unwrap_or("refused"));
    }
    Ok(v)
}
