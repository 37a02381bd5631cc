//! `hq transfer`: an auditor's transfer commands through the running HQ's API, signed in
//! as the auditor (orders and settlements are theirs). Parses lines as people type them
//! (`P0001:100`, `P0001:100@4.50`); the API checks everything else.

use std::path::Path;

use anyhow::Context;
use serde_json::{json, Value};

use super::args::TransferCmd;
use super::remote::as_person;

/// `PRODUCT:QTY` or `PRODUCT:QTY@PRICE` → an order line.
fn line(text: &str, priced: bool) -> anyhow::Result<Value> {
    let (product, rest) =
        text.split_once(':').with_context(|| format!("line {text:?}: write PRODUCT:QTY (or PRODUCT:QTY@PRICE with --price)"))?;
    let (qty, price) = match rest.split_once('@') {
        Some((q, p)) => (q, Some(p)),
        None => (rest, None),
    };
    match (priced, price) {
        (true, None) => anyhow::bail!("line {text:?}: with --price each line needs @PRICE"),
        (false, Some(_)) => anyhow::bail!("line {text:?}: a price needs --price (a transfer at a transfer price)"),
        _ => {}
    }
    let mut l = json!({ "product": product, "qty": qty });
    if let Some(p) = price {
        l["unit_price"] = json!(p);
    }
    Ok(l)
}

pub(crate) async fn run(dir: &Path, cmd: TransferCmd) -> anyhow::Result<()> {
    match cmd {
        TransferCmd::Order { from, to, lines, price, expected, memo, login } => {
            let lines = lines.iter().map(|l| line(l, price)).collect::<anyhow::Result<Vec<_>>>()?;
            let mut body = json!({ "from_warehouse": from, "to_warehouse": to, "lines": lines, "priced": price, "memo": memo });
            if let Some(d) = expected {
                body["expected"] = json!(d);
            }
            let v = as_person(dir, &login, "/api/transfers", Some(body)).await?;
            println!("transfer order {} issued: {} → {}; it goes down to {} now", v["order"], from, to, v["from"].as_str().unwrap_or(""));
        }
        TransferCmd::List { login } => {
            let v = as_person(dir, &login, "/api/transfers", None).await?;
            for o in v["orders"].as_array().into_iter().flatten() {
                println!(
                    "{}\t{} {}\t{} → {}\t{} days",
                    o["order"],
                    o["state"].as_str().unwrap_or(""),
                    o["state_zh"].as_str().unwrap_or(""),
                    o["from_warehouse"].as_str().unwrap_or(""),
                    o["to_warehouse"].as_str().unwrap_or(""),
                    o["age_days"]
                );
                for l in o["lines"].as_array().into_iter().flatten() {
                    let s = |k: &str| l[k].as_str().unwrap_or("").to_string();
                    println!(
                        "\t{}\tordered {}\tshipped {}\treceived {}\tsettled {}\tin transit {} ({})",
                        s("product"),
                        s("ordered"),
                        s("shipped"),
                        s("received"),
                        s("settled"),
                        s("in_transit"),
                        s("in_transit_cost")
                    );
                }
            }
        }
        TransferCmd::Settle { order, settle, why, login } => {
            let v =
                as_person(dir, &login, &format!("/api/transfers/{order}/settle"), Some(json!({ "settle": settle, "why": why }))).await?;
            println!("order {order}: {settle} goes down to {}, which posts it", v["branch"].as_str().unwrap_or(""));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::line;

    #[test]
    fn lines_read_as_people_type_them() {
        assert_eq!(line("P1:100", false).expect("plain")["qty"], "100");
        assert_eq!(line("P1:10@4.50", true).expect("priced")["unit_price"], "4.50");
        assert!(line("P1", false).is_err());
        assert!(line("P1:10", true).is_err());
        assert!(line("P1:10@4", false).is_err());
    }
}
