//! The till (issue 5) through the real branch agent's API, with simulated devices:
//!
//! - a whole shift offline: scan (good, misread, unknown, unpriced), weigh on a scale that
//!   first never settles, a code from a TCP line scanner, pay cash and card, receipt and
//!   drawer kick in the printer file, the customer display, shift hand-over; then HQ
//!   starts, the LS documents arrive and HQ's stock equals the branch's;
//! - a network printer unplugged mid-receipt: the sale stays posted with a warning, and
//!   the reprint works once the printer is back;
//! - `branch-agent receipt --sample --out FILE`.
//!
//! The devices are the agent's real drivers talking to small fakes on loopback (a TCP
//! "scale", "scanner" and "printer") or to a file, so nothing here is mocked inside the
//! agent.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness::cluster::{bin, doc, stock_map, wait_until, AgentProc, HqProc};
use serde_json::{json, Value};

const WATER: &str = "6901234567892";
const COLA: &str = "9501101531000";
const PEN_NO_PRICE: &str = "4006381333931";
const BANANAS: &str = "10001";
/// GB18030 of 矿泉水, as the printer must receive it.
const WATER_GB18030: [u8; 6] = [0xBF, 0xF3, 0xC8, 0xAA, 0xCB, 0xAE];
/// ESC p: the drawer kick pulse.
const ESC_P: [u8; 2] = [0x1B, b'p'];

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    count(hay, needle) > 0
}

/// HQ with the till's products, branch SH enrolled, HQ stopped again (the branch works offline).
fn setup(dir: &Path) -> anyhow::Result<(HqProc, AgentProc)> {
    let mut hq = HqProc::init(&dir.join("hq"), 0)?;
    hq.add_product_priced(WATER, "矿泉水 550ml", "瓶", "2.00")?;
    hq.add_product_priced(COLA, "Cola 330ml", "can", "3.50")?;
    hq.add_product_priced(BANANAS, "香蕉 Bananas", "kg", "6.80")?;
    hq.add_product(PEN_NO_PRICE, "Pen (no till price)")?;
    let token = hq.add_branch("SH", &["SH01"])?;
    hq.start()?;
    let agent = AgentProc::enroll(&dir.join("sh"), hq.quic, &token)?;
    hq.kill9();
    Ok((hq, agent))
}

fn append_config(agent: &AgentProc, toml: &str) -> anyhow::Result<()> {
    let path = agent.dir.join("agent.toml");
    let mut text = std::fs::read_to_string(&path)?;
    text.push('\n');
    text.push_str(toml);
    std::fs::write(path, text)?;
    Ok(())
}

/// Stocks the till's warehouse with a purchase receipt, so retail sales have goods.
async fn stock_up(agent: &AgentProc) -> anyhow::Result<()> {
    let receipt = doc("JH", "SH01", &[(WATER, "24", "1.20"), (COLA, "12", "2.00"), (BANANAS, "10", "3.00")]);
    let posted = agent.post(&receipt).await?;
    assert!(posted.is_ok(), "purchase receipt refused: {posted:?}");
    Ok(())
}

/// A scale on TCP in request mode: answers each `W` with a moving reading until
/// `settled` is set, then with a stable 0.500 kg.
fn fake_scale(settled: Arc<AtomicBool>) -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?.to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let settled = settled.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                let mut flip = false;
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    for _ in buf[..n].iter().filter(|b| **b == b'W') {
                        std::thread::sleep(Duration::from_millis(20));
                        flip = !flip;
                        let line: &[u8] = match (settled.load(Ordering::SeqCst), flip) {
                            (true, _) => b"ST,GS,+  0.500kg\r\n",
                            (false, true) => b"US,GS,+  0.498kg\r\n",
                            (false, false) => b"US,GS,+  0.503kg\r\n",
                        };
                        if s.write_all(line).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// A line scanner on TCP: the agent connects at start; the test writes codes to the stream.
fn fake_scanner() -> anyhow::Result<(String, std::sync::mpsc::Receiver<TcpStream>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?.to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            if tx.send(s).is_err() {
                return;
            }
        }
    });
    Ok((addr, rx))
}

/// A network receipt printer (port-9100 style) that answers the status query "online".
/// While `unplugged` is set it takes a few bytes of the job and drops the connection,
/// as a printer whose cable is pulled mid-receipt. Jobs it printed whole are kept.
fn fake_printer(unplugged: Arc<AtomicBool>, printed: Arc<Mutex<Vec<u8>>>) -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?.to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let mut buf = [0u8; 4096];
            if unplugged.load(Ordering::SeqCst) {
                let _ = s.read(&mut buf[..16]);
                drop(s);
                continue;
            }
            let mut job = Vec::new();
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
                job.extend_from_slice(&buf[..n]);
                if job.ends_with(&[0x10, 0x04, 0x02]) {
                    job.truncate(job.len() - 3);
                    // Keep what came before the status query before answering it: the agent
                    // may report "printed" (and the test look at the paper) before this
                    // connection is closed.
                    printed.lock().expect("printer buffer").append(&mut job);
                    // Bits 1 and 4 set, nothing else: online, paper present.
                    if s.write_all(&[0x12]).is_err() {
                        break;
                    }
                }
            }
            printed.lock().expect("printer buffer").extend_from_slice(&job);
        }
    });
    Ok(addr)
}

async fn get(agent: &AgentProc, path: &str) -> anyhow::Result<Value> {
    agent.get(path).await
}

async fn delete(agent: &AgentProc, path: &str) -> anyhow::Result<(u16, Value)> {
    agent.delete(path).await
}

fn error_of(v: &Value) -> &str {
    v["error"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retail_shift_offline_then_synced_to_hq() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let (mut hq, mut agent) = setup(tmp.path())?;
    let settled = Arc::new(AtomicBool::new(false));
    let scale = fake_scale(settled.clone())?;
    let (scanner, scanner_conn) = fake_scanner()?;
    let receipts = tmp.path().join("receipts.bin");
    append_config(
        &agent,
        &format!(
            r#"
[devices.printer]
kind = "file"
path = "{receipts}"

[devices.receipt]
width_chars = 42
header_lines = ["88 Nanjing Rd"]
footer_lines = ["谢谢惠顾"]

[devices.drawer]
kind = "printer"

[devices.display]
kind = "simulator"

[devices.scale]
kind = "tcp"
addr = "{scale}"
request = "W\r"
timeout_ms = 300

[devices.scanner]
kind = "tcp"
addr = "{scanner}"

[pos]
store_name = "好邻居 南京路店"
"#,
            receipts = receipts.display()
        ),
    )?;
    agent.start()?;
    let mut scanner_conn = scanner_conn.recv_timeout(Duration::from_secs(20))?;
    stock_up(&agent).await?;

    // No sale without an open shift.
    let (status, v) = agent.post_json("/api/pos/scan", &json!({"code": WATER})).await?;
    assert_eq!((status, error_of(&v).contains("no shift is open")), (409, true), "{v}");
    let (status, v) = agent.post_json("/api/pos/shift/open", &json!({"cashier": "sh-li", "float": "200.00"})).await?;
    assert_eq!(status, 201, "{v}");
    assert_eq!((v["shift"].as_u64(), v["float"].as_str()), (Some(1), Some("200.00")));

    // Good scans: one, then two more of the same (one line of three).
    let (status, v) = agent.post_json("/api/pos/scan", &json!({"code": WATER})).await?;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["total"], "2.00");
    let (status, v) = agent.post_json("/api/pos/scan", &json!({"code": WATER, "qty": "2"})).await?;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["lines"].as_array().map(Vec::len), v["lines"][0]["qty"].as_str(), v["total"].as_str()),
        (Some(1), Some("3"), Some("6.00"))
    );
    // The customer display shows the item and the running total.
    let d = get(&agent, "/api/pos/display").await?;
    assert!(d["line1"].as_str().is_some_and(|l| l.starts_with("矿泉水") && l.ends_with("4.00")), "{d}");
    assert!(d["line2"].as_str().is_some_and(|l| l.starts_with("TOTAL") && l.ends_with("6.00")), "{d}");

    // Bad input, each with its message; the cart is untouched.
    let (status, v) = agent.post_json("/api/pos/scan", &json!({"code": "6901234567893"})).await?;
    assert_eq!(status, 422);
    assert_eq!(error_of(&v), "barcode 6901234567893 misread (check digit should be 2): scan again or type the code");
    let (status, v) = agent.post_json("/api/pos/scan", &json!({"code": "96385074"})).await?;
    assert_eq!(status, 422);
    assert!(error_of(&v).starts_with("product 96385074 is not in HQ's catalog"), "{v}");
    let (status, v) = agent.post_json("/api/pos/scan", &json!({"code": PEN_NO_PRICE})).await?;
    assert_eq!(status, 422);
    assert!(error_of(&v).contains("has no retail price; ask HQ"), "{v}");

    // The scale never settles: a clear error, and the sale goes on.
    let (status, v) = agent.post_json("/api/pos/weigh", &json!({"product": BANANAS})).await?;
    assert_eq!(status, 503, "{v}");
    assert_eq!(error_of(&v), format!("scale at {scale} never settled within 300 ms; weigh again or enter the weight by hand"));
    let status_v = get(&agent, "/api/pos/status").await?;
    assert_eq!(status_v["last_device_error"]["device"], "scale", "{status_v}");
    settled.store(true, Ordering::SeqCst);
    let (status, v) = agent.post_json("/api/pos/weigh", &json!({"product": BANANAS})).await?;
    assert_eq!(status, 200, "{v}");
    assert_eq!((v["added"]["qty"].as_str(), v["added"]["amount"].as_str(), v["total"].as_str()), (Some("0.5"), Some("3.40"), Some("9.40")));

    // The line scanner: a misread is reported, a good code lands in the cart.
    scanner_conn.write_all(format!("{}1\r", &COLA[..12]).as_bytes())?;
    wait_until(Duration::from_secs(20), "the scanner's misread to be reported", || async {
        let c = get(&agent, "/api/pos/cart").await?;
        Ok(c["last_scan"]["ok"] == false
            && c["last_scan"]["message"].as_str().is_some_and(|m| m.contains("misread (check digit should be 0)")))
    })
    .await?;
    scanner_conn.write_all(format!("{COLA}\r").as_bytes())?;
    wait_until(Duration::from_secs(20), "the scanned cola in the cart", || async {
        Ok(get(&agent, "/api/pos/cart").await?["total"] == "12.90")
    })
    .await?;

    // Underpaid: refused, nothing posted. Then cash with change.
    let (status, v) = agent.post_json("/api/pos/pay", &json!({"method": "Cash", "tendered": "10.00", "date": "2026-06-09"})).await?;
    assert_eq!(status, 422);
    assert_eq!(error_of(&v), "tendered 10.00 is less than the total 12.90: take 2.90 more");
    let (status, sale) = agent.post_json("/api/pos/pay", &json!({"method": "Cash", "tendered": "20", "date": "2026-06-09"})).await?;
    assert_eq!(status, 201, "{sale}");
    assert_eq!(sale["number"], "LS-SH-0609-001");
    assert_eq!((sale["payment"]["tendered"].as_str(), sale["payment"]["change"].as_str()), (Some("20.00"), Some("7.10")));
    assert_eq!((sale["receipt_printed"].as_bool(), sale["warnings"].as_array().map(Vec::len)), (Some(true), Some(0)), "{sale}");
    let d = get(&agent, "/api/pos/display").await?;
    assert!(d["line2"].as_str().is_some_and(|l| l.starts_with("CHANGE") && l.ends_with("7.10")), "{d}");
    assert_eq!(get(&agent, "/api/pos/cart").await?["lines"], json!([]));

    // The receipt: document number, the product name in GB18030, totals; then the drawer kick.
    let paper = std::fs::read(&receipts)?;
    assert!(contains(&paper, b"LS-SH-0609-001"), "no document number on the receipt");
    assert!(contains(&paper, &WATER_GB18030), "no GB18030 product name on the receipt");
    assert!(contains(&paper, b"12.90") && contains(&paper, b"7.10") && contains(&paper, b"Cash"));
    assert_eq!(count(&paper, &ESC_P), 1, "one drawer kick for the cash sale");

    // A card sale: exact amount, no drawer.
    agent.post_json("/api/pos/scan", &json!({"code": COLA})).await?;
    let (status, v) = agent.post_json("/api/pos/pay", &json!({"method": "card", "tendered": "5.00", "date": "2026-06-09"})).await?;
    assert_eq!(status, 422);
    assert!(error_of(&v).contains("change is given only for cash"), "{v}");
    let (status, card) = agent.post_json("/api/pos/pay", &json!({"method": "card", "date": "2026-06-09"})).await?;
    assert_eq!((status, card["number"].as_str()), (201, Some("LS-SH-0609-002")), "{card}");
    assert_eq!(count(&std::fs::read(&receipts)?, &ESC_P), 1, "no drawer kick for a card sale");

    // Hand-over: not with items in the cart; then the report.
    agent.post_json("/api/pos/scan", &json!({"code": WATER})).await?;
    let (status, v) = agent.post_json("/api/pos/shift/close", &json!({"counted_cash": "213.00"})).await?;
    assert_eq!(status, 409, "{v}");
    assert!(error_of(&v).contains("cart is not empty"), "{v}");
    let (status, _) = delete(&agent, "/api/pos/cart").await?;
    assert_eq!(status, 200);
    let (status, report) = agent.post_json("/api/pos/shift/close", &json!({"counted_cash": "213.00"})).await?;
    assert_eq!(status, 200, "{report}");
    for (field, want) in [
        ("sales_total", "16.40"),
        ("float", "200.00"),
        ("cash_sales", "12.90"),
        ("expected_cash", "212.90"),
        ("counted_cash", "213.00"),
        ("over_short", "0.10"),
    ] {
        assert_eq!(report[field], want, "{field} in {report}");
    }
    assert_eq!(report["sales_count"], 2);
    assert_eq!(report["by_method"]["Cash"], json!({"count": 1, "total": "12.90"}));
    assert_eq!(report["by_method"]["Card"], json!({"count": 1, "total": "3.50"}));
    assert_eq!(report["documents"][0]["number"], "LS-SH-0609-001");
    assert_eq!(report["report_printed"], true);
    assert!(contains(&std::fs::read(&receipts)?, b"212.90"), "the shift report is printed");
    let stored = get(&agent, "/api/pos/shifts/1").await?;
    assert_eq!((stored["open"].as_bool(), stored["over_short"].as_str()), (Some(false), Some("0.10")));
    let (status, _) = agent.post_json("/api/pos/scan", &json!({"code": WATER})).await?;
    assert_eq!(status, 409, "no sale after the hand-over");

    // Everything waited offline; HQ starts and receives the retail documents.
    let s = agent.sync().await?;
    assert_eq!((s["link_up"].as_bool(), s["pending"].as_u64()), (Some(false), Some(3)), "{s}");
    hq.start()?;
    wait_until(Duration::from_secs(60), "the branch to drain its outbox", || async {
        let s = agent.sync().await?;
        Ok(s["acked_seq"] == 3 && s["pending"] == 0)
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\nagent log:\n{}\nhq log:\n{}", agent.log(), hq.log()))?;
    let d = hq.get("/api/branches/SH/documents/2").await?;
    assert_eq!((d["number"].as_str(), d["signature"].as_str()), (Some("LS-SH-0609-001"), Some("valid")), "{d}");
    assert_eq!(d["document"]["header"]["doc_type"], "Retail");
    assert_eq!(d["document"]["header"]["payment"]["change"], "7.10");
    assert_eq!(d["applied_to_books"], true, "{d}");
    let branch = stock_map(&agent.stock().await?);
    assert_eq!(branch.get(&("SH01".to_string(), WATER.to_string())).map(|(q, _)| q.as_str()), Some("21"));
    assert_eq!(branch.get(&("SH01".to_string(), BANANAS.to_string())).map(|(q, _)| q.as_str()), Some("9.5"));
    assert_eq!(stock_map(&hq.get("/api/stock").await?), branch, "HQ's stock equals the branch's");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn printer_unplugged_mid_receipt_keeps_the_sale_and_reprints_later() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let (_hq, mut agent) = setup(tmp.path())?;
    let unplugged = Arc::new(AtomicBool::new(true));
    let printed = Arc::new(Mutex::new(Vec::new()));
    let printer = fake_printer(unplugged.clone(), printed.clone())?;
    append_config(
        &agent,
        &format!("[devices.printer]\nkind = \"tcp\"\naddr = \"{printer}\"\ntimeout_ms = 2000\n\n[devices.drawer]\nkind = \"printer\"\n"),
    )?;
    agent.start()?;
    stock_up(&agent).await?;
    agent.post_json("/api/pos/shift/open", &json!({"cashier": "sh-wang"})).await?;
    agent.post_json("/api/pos/scan", &json!({"code": WATER})).await?;

    // No date given: the business date is today's in the business zone (Asia/Shanghai by default).
    let (status, sale) = agent.post_json("/api/pos/pay", &json!({"method": "Cash", "tendered": "2.00"})).await?;
    assert_eq!(status, 201, "the sale stands: {sale}");
    let number = sale["number"].as_str().unwrap_or_default().to_owned();
    assert!(number.starts_with("LS-SH-") && number.ends_with("-001") && number.len() == "LS-SH-0609-001".len(), "{number}");
    assert_eq!(sale["receipt_printed"], false);
    let warnings: Vec<&str> = sale["warnings"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with(&format!("receipt printer at {printer}")) && w.contains("the sale is saved — reprint the receipt")),
        "{warnings:?}"
    );
    let seq = sale["seq"].as_u64().unwrap_or_default();
    assert_eq!(get(&agent, &format!("/api/documents/{seq}")).await?["number"], number.as_str(), "posted in the journal");
    let status_v = get(&agent, "/api/pos/status").await?;
    assert!(status_v["last_device_error"]["error"].as_str().is_some_and(|e| e.contains(&printer)), "{status_v}");

    // The printer is back: reprint from the journal.
    unplugged.store(false, Ordering::SeqCst);
    let (status, v) = agent.post_json(&format!("/api/pos/reprint/{seq}"), &json!({})).await?;
    assert_eq!((status, v["printed"].as_bool()), (200, Some(true)), "{v}");
    let paper = printed.lock().expect("printer buffer").clone();
    assert!(contains(&paper, number.as_bytes()) && contains(&paper, b"(reprint)") && contains(&paper, &WATER_GB18030));
    assert!(!contains(&paper, &ESC_P), "a reprint does not open the drawer");

    // Only retail documents have receipts.
    let (status, v) = agent.post_json("/api/pos/reprint/1", &json!({})).await?;
    assert_eq!(status, 422);
    assert!(error_of(&v).contains("not a retail sale"), "{v}");
    let (status, _) = agent.post_json("/api/pos/reprint/99", &json!({})).await?;
    assert_eq!(status, 404);

    let stock = stock_map(&agent.stock().await?);
    assert_eq!(stock.get(&("SH01".to_string(), WATER.to_string())).map(|(q, _)| q.as_str()), Some("23"));
    Ok(())
}

#[test]
fn receipt_sample_cli_writes_escpos_bytes() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let out = tmp.path().join("sample.bin");
    let run = std::process::Command::new(bin("branch-agent"))
        .current_dir(tmp.path())
        .args(["receipt", "--sample", "--out"])
        .arg(&out)
        .output()?;
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let bytes = std::fs::read(&out)?;
    assert!(bytes.starts_with(&[0x1B, b'@']), "starts with ESC @");
    assert!(contains(&bytes, &[0xBA, 0xC3, 0xC1, 0xDA, 0xBE, 0xD3]), "store name 好邻居 in GB18030");
    assert!(contains(&bytes, b"S-012-0315-007"));
    assert!(contains(&bytes, &[0x1D, b'V']), "cuts the paper");
    let entries: Vec<_> = std::fs::read_dir(tmp.path())?.collect();
    assert_eq!(entries.len(), 1, "no data directory was created");

    let run = std::process::Command::new(bin("branch-agent")).current_dir(tmp.path()).args(["receipt", "--out"]).arg(&out).output()?;
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("only --sample"), "{}", String::from_utf8_lossy(&run.stderr));
    Ok(())
}
