//! HQ's status page at `/`: branches and consolidated stock for a person with the
//! HQ-wide reports right, else only a sign-in form. Must not compute what it shows: the
//! rows come from `reads`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Html;

use super::auth;

use super::reads::{branch_statuses, stock_rows, StockQuery};

pub(super) fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The status page: with a session that may see HQ-wide reports, branches and stock;
/// otherwise nothing but a sign-in form.
pub(super) async fn index(State(web): State<auth::Web>, headers: HeaderMap) -> Html<String> {
    let allowed = auth::signed_in(&web, &headers)
        .ok()
        .filter(|p| protocol::people::authorize(p, protocol::people::Function::Reports, protocol::people::Right::View, None).is_ok());
    if allowed.is_none() {
        return Html(format!(
            "<!doctype html><meta charset=utf-8><title>Branchline HQ</title><style>body{{font-family:sans-serif;margin:2em}}</style>\
             <h1>Branchline HQ</h1><p>Sign in to see branches and stock (people at HQ with the reports right).</p>{}",
            auth::SIGN_IN_FORM
        ));
    }
    let hq = web.hq;
    let mut page = String::from(
        "<!doctype html><meta charset=utf-8><title>Branchline HQ</title>\
         <style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}td.n{text-align:right}</style>\
         <h1>Branchline HQ</h1><h2>Branches</h2><table><tr><th>Branch</th><th>Name</th><th>Warehouses</th><th>Enrolled</th><th>Last applied seq</th><th>Documents</th><th>Quarantined</th><th>Rejections</th></tr>",
    );
    for b in branch_statuses(&hq) {
        page.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n><a href=\"/api/branches/{}/rejections\">{}</a></td></tr>",
            esc(&b.code),
            esc(&b.name),
            esc(&b.warehouses.join(", ")),
            if b.enrolled { "yes" } else { "no" },
            b.last_applied_seq,
            b.documents_applied,
            b.documents_quarantined,
            esc(&b.code),
            b.rejections
        ));
    }
    page.push_str("</table><h2>Consolidated stock</h2><p><a href=\"/api/stock?format=csv\">Export CSV (Excel)</a> · <a href=\"/api/stock\">JSON</a></p><table><tr><th>Warehouse</th><th>Branch</th><th>Product</th><th>Name</th><th>Qty</th><th>Value</th><th>Avg cost</th></tr>");
    for r in stock_rows(&hq, &StockQuery { warehouse: None, product: None, format: None }) {
        page.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
            esc(&r.warehouse),
            esc(r.branch.as_deref().unwrap_or("")),
            esc(&r.product),
            esc(&r.name),
            r.qty,
            r.value,
            r.average_cost
        ));
    }
    page.push_str("</table>");
    Html(page)
}
