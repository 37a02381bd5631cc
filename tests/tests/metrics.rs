//! `/metrics`, `/healthz` and `/readyz` on real processes (issue 16): a branch posts three
//! documents (four lines), syncs, and both scrapes — parsed from the Prometheus text
//! format by the small parser below — say what happened: documents and lines ingested at
//! HQ, batches, no lag, the connection open, HTTP requests by route and status; at the
//! branch documents posted, nothing pending, a fresh last sync, the link up. The probes
//! answer anonymously; `/metrics` does not.
//!
//! Touches only its own temporary directories and the processes it starts.

use std::collections::BTreeMap;
use std::time::Duration;

use harness::cluster::{client, doc, send, wait_until, AgentProc, HqProc};

/// The scrape token both configs get (`metrics_token`).
const SCRAPE_TOKEN: &str = "scrape-0123456789abcdef-test";

/// Puts `line` first in a TOML file (before any `[table]`, so it stays a top-level key).
fn prepend(path: &std::path::Path, line: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)?;
    std::fs::write(path, format!("{line}{text}"))?;
    Ok(())
}

/// One sample: metric name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the Prometheus / OpenMetrics text format's sample lines (`# ...` lines are
/// skipped): `name{k="v",...} value [timestamp]`. Escapes in label values (`\"`, `\\`,
/// `\n`) are undone.
fn parse(text: &str) -> anyhow::Result<Vec<Sample>> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (name, rest) = match line.find(['{', ' ']) {
            Some(i) => line.split_at(i),
            None => anyhow::bail!("no value: {line}"),
        };
        let mut labels = BTreeMap::new();
        let rest = if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.char_indices();
            let mut end = None;
            loop {
                // key
                let mut key = String::new();
                for (i, c) in chars.by_ref() {
                    if c == '=' {
                        break;
                    }
                    if c == '}' {
                        end = Some(i);
                        break;
                    }
                    if c != ',' {
                        key.push(c);
                    }
                }
                if end.is_some() {
                    break;
                }
                anyhow::ensure!(chars.next().map(|(_, c)| c) == Some('"'), "a label value opens with a quote: {line}");
                let mut value = String::new();
                let mut escaped = false;
                for (_, c) in chars.by_ref() {
                    match (escaped, c) {
                        (true, 'n') => (value.push('\n'), escaped = false).1,
                        (true, c) => (value.push(c), escaped = false).1,
                        (false, '\\') => escaped = true,
                        (false, '"') => break,
                        (false, c) => value.push(c),
                    }
                }
                labels.insert(key.trim().to_string(), value);
            }
            let end = end.ok_or_else(|| anyhow::anyhow!("labels not closed: {line}"))?;
            &body[end + 1..]
        } else {
            rest
        };
        let value_text = rest.split_whitespace().next().ok_or_else(|| anyhow::anyhow!("no value: {line}"))?;
        let value = match value_text {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().map_err(|e| anyhow::anyhow!("value {v:?} in {line}: {e}"))?,
        };
        out.push(Sample { name: name.to_string(), labels, value });
    }
    Ok(out)
}

/// The value of `name` with (at least) `labels`; an error naming what was there if none.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> anyhow::Result<f64> {
    samples
        .iter()
        .find(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
        .map(|s| s.value)
        .ok_or_else(|| {
            let near: Vec<_> = samples.iter().filter(|s| s.name.starts_with(name)).collect();
            anyhow::anyhow!("no {name} {labels:?}; samples of that name: {near:?}")
        })
}

#[test]
fn the_parser_reads_labels_values_and_escapes() -> anyhow::Result<()> {
    let text = "# TYPE x counter\nx_total{a=\"1\",b=\"q\\\"uote\"} 3\ny 0.5\nz_bucket{le=\"+Inf\"} 2\n# EOF\n";
    let s = parse(text)?;
    assert_eq!(value(&s, "x_total", &[("a", "1"), ("b", "q\"uote")])?, 3.0);
    assert_eq!(value(&s, "y", &[])?, 0.5);
    assert_eq!(value(&s, "z_bucket", &[("le", "+Inf")])?, 2.0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_scrapes_count_what_happened_and_the_probes_answer() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut hq = HqProc::init(&tmp.path().join("hq"), 2)?;
    let token = hq.add_branch("SH", &["SH01"])?;
    prepend(&hq.dir.join("hq.toml"), &format!("metrics_token = \"{SCRAPE_TOKEN}\"\n"))?;
    hq.start()?;
    let mut sh = AgentProc::enroll(&tmp.path().join("sh"), hq.quic, &token)?;
    prepend(&sh.dir.join("agent.toml"), &format!("metrics_token = \"{SCRAPE_TOKEN}\"\n"))?;
    sh.start()?;

    // The probes: anonymous, 200, ready.
    for (name, base) in [("hq", hq.url("")), ("branch", sh.url(""))] {
        let (status, body) = send(client().get(format!("{base}/healthz"))).await?;
        assert_eq!((status, body["status"].as_str()), (200, Some("ok")), "{name} /healthz: {body}");
        wait_until(Duration::from_secs(30), "ready", || async {
            let (status, body) = send(client().get(format!("{base}/readyz"))).await?;
            Ok(status == 200 && body["status"] == "ready")
        })
        .await?;
        // The metrics are not for anonymous callers.
        let (status, _) = send(client().get(format!("{base}/metrics"))).await?;
        assert_eq!(status, 401, "{name} /metrics anonymous");
        // A scraper with the configured token gets them; a wrong token is refused.
        let scrape = client().get(format!("{base}/metrics")).bearer_auth(SCRAPE_TOKEN).send().await?;
        assert_eq!(scrape.status(), 200, "{name} /metrics with the scrape token");
        assert!(scrape.text().await?.contains("_http_requests_total"), "{name}: the scraper gets the metrics");
        let (status, _) = send(client().get(format!("{base}/metrics")).bearer_auth(format!("{SCRAPE_TOKEN}x"))).await?;
        assert_eq!(status, 401, "{name} /metrics with a wrong token");
    }

    // Three documents, four lines.
    for lines in [vec![("P0000", "10", "2.00")], vec![("P0000", "1", "2.00"), ("P0001", "3", "1.50")], vec![("P0001", "2", "1.50")]] {
        let posted = sh.post(&doc("JH", "SH01", &lines)).await?;
        assert!(posted.is_ok(), "{posted:?}");
    }
    wait_until(Duration::from_secs(60), "sync", || async { Ok(sh.sync().await?["pending"] == 0) }).await?;
    assert_eq!(hq.branch_status("SH").await?["documents_applied"], 3);

    let hq_text = hq.get_text("/metrics").await?;
    assert!(hq_text.trim_end().ends_with("# EOF"), "{hq_text}");
    let m = parse(&hq_text)?;
    let sh_label = [("branch", "SH")];
    assert_eq!(value(&m, "hq_documents_ingested_total", &sh_label)?, 3.0, "{hq_text}");
    assert_eq!(value(&m, "hq_lines_ingested_total", &sh_label)?, 4.0, "{hq_text}");
    let batches = value(&m, "hq_batches_applied_total", &sh_label)?;
    assert!((1.0..=3.0).contains(&batches), "one to three batches: {hq_text}");
    assert_eq!(value(&m, "hq_branch_lag_entries", &sh_label)?, 0.0, "{hq_text}");
    let lag_s = value(&m, "hq_branch_lag_seconds", &sh_label)?;
    assert!((0.0..120.0).contains(&lag_s), "applied moments ago: {lag_s}");
    assert_eq!(value(&m, "hq_down_queue_depth", &sh_label)?, 0.0, "{hq_text}");
    assert_eq!(value(&m, "hq_quic_connections_open", &[])?, 1.0, "{hq_text}");
    assert_eq!(value(&m, "hq_apply_seconds_count", &[])?, batches, "one apply observed per batch");
    assert_eq!(value(&m, "hq_flush_seconds_count", &[])?, batches, "one flush observed per batch");
    assert_eq!(value(&m, "hq_apply_seconds_bucket", &[("le", "+Inf")])?, batches);
    let branches_ok = [("method", "GET"), ("route", "/api/branches"), ("status", "200")];
    assert!(value(&m, "hq_http_requests_total", &branches_ok)? >= 1.0, "{hq_text}");
    let anon = [("method", "GET"), ("route", "/metrics"), ("status", "401")];
    assert_eq!(value(&m, "hq_http_requests_total", &anon)?, 2.0, "the anonymous and wrong-token scrapes, by route pattern");

    let sh_text = sh.get_text("/metrics").await?;
    let b = parse(&sh_text)?;
    assert_eq!(value(&b, "branch_documents_posted_total", &[])?, 3.0, "{sh_text}");
    assert_eq!(value(&b, "branch_outbox_pending", &[])?, 0.0, "{sh_text}");
    let age = value(&b, "branch_last_sync_age_seconds", &[])?;
    assert!((0.0..120.0).contains(&age), "synced moments ago: {sh_text}");
    assert_eq!(value(&b, "branch_link_up", &[])?, 1.0, "{sh_text}");
    assert!(value(&b, "branch_down_applied_total", &[])? >= 0.0);
    let posts = [("method", "POST"), ("route", "/api/documents"), ("status", "201")];
    assert_eq!(value(&b, "branch_http_requests_total", &posts)?, 3.0, "{sh_text}");

    // Another post moves the branch's counter, and HQ's once it has synced.
    assert!(sh.post(&doc("JH", "SH01", &[("P0000", "1", "2.00")])).await?.is_ok());
    wait_until(Duration::from_secs(60), "the fourth document at HQ", || async {
        let m = parse(&hq.get_text("/metrics").await?)?;
        Ok(value(&m, "hq_documents_ingested_total", &sh_label)? == 4.0)
    })
    .await?;
    let b = parse(&sh.get_text("/metrics").await?)?;
    assert_eq!(value(&b, "branch_documents_posted_total", &[])?, 4.0);

    // Sync that fails is loud: stop HQ and the branch says so at warn.
    hq.kill9();
    wait_until(Duration::from_secs(60), "the branch warns that the link is down", || async {
        Ok(sh.log().lines().any(|l| l.contains("WARN") && l.contains("sync with HQ failed")))
    })
    .await?;
    let b = parse(&sh.get_text("/metrics").await?)?;
    assert_eq!(value(&b, "branch_link_up", &[])?, 0.0);
    Ok(())
}
