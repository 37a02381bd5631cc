//! HQ's HTTP API: consolidated stock, branch sync status, accepted documents with their
//! signature status, rejections, and the admin calls behind `hq branch add` while HQ
//! runs. JSON under `/api`, CSV with `?format=csv`, and a plain HTML page at `/`.
//!
//! Submodules: `routes` (the one route table the router is built from), `auth` (sign-in
//! and the guard every route passes), `people` (people over HTTP). Nobody anonymous gets
//! past `/` (a sign-in hint) and `POST /api/session`.

pub mod auth;
pub mod people;
pub mod routes;

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Extension, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::{Json, Router};
use protocol::codes::{BranchCode, ProductCode, WarehouseCode};
use protocol::profile::Product;
use protocol::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::server::{now_unix, Hq};
use protocol::books::reports::{self, RawQuery};
use protocol::date::BusinessDate;

type AppState = Arc<Hq>;

/// The HTTP API, built from `routes::table`; `session_key` signs this process's sessions.
pub fn router(hq: Arc<Hq>, session_key: [u8; 32]) -> Router {
    routes::build(auth::Web { hq, session_key: Arc::new(session_key) })
}

/// An error a person can act on, as JSON with a status code: 4xx for what the request
/// got wrong, 5xx for what HQ could not do (its store, a worker thread).
#[derive(Debug, thiserror::Error)]
#[error("{1}")]
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn bad(e: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, e.to_string())
}
/// Runs `f` on a blocking thread: whatever takes the state lock to write (a sled write
/// and its fsync) or does heavy work stays off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(internal)
}

/// A failure of HQ itself (its store, a worker thread), with the chain of causes.
fn internal(e: impl std::error::Error) -> ApiError {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, text)
}

#[derive(Deserialize)]
struct StockQuery {
    warehouse: Option<String>,
    product: Option<String>,
    format: Option<String>,
}

#[derive(Serialize)]
pub struct StockRow {
    pub warehouse: String,
    pub branch: Option<String>,
    pub product: String,
    pub name: String,
    #[serde(with = "protocol::decimal_serde")]
    pub qty: Decimal,
    #[serde(with = "protocol::decimal_serde")]
    pub value: Decimal,
    #[serde(with = "protocol::decimal_serde")]
    pub average_cost: Decimal,
}

fn stock_rows(hq: &Hq, q: &StockQuery) -> Vec<StockRow> {
    // Each branch's books as a snapshot of its durable head, read with the state lock
    // let go: ingest goes on meanwhile (`store::BranchBooks`).
    let slots = hq.state().book_slots();
    let snaps = crate::store::snapshots(&slots);
    let mut rows = Vec::new();
    for (branch, books) in &snaps {
        for ((w, p), pos) in books.positions() {
            if q.warehouse.as_deref().is_some_and(|x| x != w.as_str())
                || q.product.as_deref().is_some_and(|x| x != p.as_str())
                || pos.is_zero()
            {
                continue;
            }
            rows.push(StockRow {
                warehouse: w.to_string(),
                branch: Some(branch.to_string()),
                product: p.to_string(),
                name: p.to_string(),
                qty: pos.qty,
                value: pos.value,
                average_cost: pos.average_cost(),
            });
        }
    }
    rows.sort_by(|a, b| (&a.warehouse, &a.product).cmp(&(&b.warehouse, &b.product)));
    // Names last, in one short hold of the state lock.
    let st = hq.state();
    for r in &mut rows {
        let name = ProductCode::new(&r.name).ok().and_then(|p| st.products.get(&p)).map(|x| x.name.clone());
        r.name = name.unwrap_or_default();
    }
    rows
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

async fn stock(State(hq): State<AppState>, Query(q): Query<StockQuery>) -> Response {
    let hq2 = hq.clone();
    let q2 = StockQuery { warehouse: q.warehouse.clone(), product: q.product.clone(), format: None };
    let rows = match tokio::task::spawn_blocking(move || stock_rows(&hq2, &q2)).await {
        Ok(rows) => rows,
        Err(e) => return internal(e).into_response(),
    };
    if q.format.as_deref() == Some("csv") {
        // A UTF-8 BOM so Excel opens Chinese product names correctly.
        let mut out = String::from("\u{feff}warehouse,branch,product,name,qty,value,average_cost\n");
        for r in &rows {
            out.push_str(&format!(
                "{},{},{},{},{},{},{}\n",
                csv_field(&r.warehouse),
                csv_field(r.branch.as_deref().unwrap_or("")),
                csv_field(&r.product),
                csv_field(&r.name),
                r.qty,
                r.value,
                r.average_cost
            ));
        }
        return (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8"), (header::CONTENT_DISPOSITION, "attachment; filename=\"stock.csv\"")],
            out,
        )
            .into_response();
    }
    Json(rows).into_response()
}

#[derive(Serialize)]
pub struct BranchStatus {
    pub code: String,
    pub name: String,
    pub warehouses: Vec<String>,
    pub enrolled: bool,
    pub last_seen_unix: Option<u64>,
    pub last_applied_seq: u64,
    pub last_applied_unix: Option<u64>,
    pub documents_applied: u64,
    pub documents_quarantined: u64,
    pub rejections: u64,
    pub head_hash: String,
}

fn branch_statuses(hq: &Hq) -> Vec<BranchStatus> {
    let st = hq.state();
    st.branches
        .values()
        .map(|b| BranchStatus {
            code: b.code.to_string(),
            name: b.name.clone(),
            warehouses: b.warehouses.iter().map(|w| w.to_string()).collect(),
            enrolled: b.key.is_some(),
            last_seen_unix: st.last_seen_unix.get(&b.code).copied(),
            last_applied_seq: b.head.seq,
            last_applied_unix: b.last_applied_unix,
            documents_applied: b.docs_applied,
            documents_quarantined: b.docs_quarantined,
            rejections: b.rejections,
            head_hash: b.head.hash.to_hex(),
        })
        .collect()
}

async fn branches(State(hq): State<AppState>) -> Json<serde_json::Value> {
    let anonymous = hq.state().anonymous_rejections;
    Json(json!({ "branches": branch_statuses(&hq), "rejections_without_branch": anonymous }))
}

async fn document(
    State(hq): State<AppState>,
    edge::api::ApiPath((code, seq)): edge::api::ApiPath<(String, u64)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let code = BranchCode::new(code).map_err(bad)?;
    let hq2 = hq.clone();
    let found = tokio::task::spawn_blocking(move || {
        let st = hq2.state();
        hq2.store.document(&st, &code, seq)
    })
    .await
    .map_err(internal)?
    .map_err(internal)?;
    let Some((idx, entry, signature_ok)) = found else {
        return Err(ApiError(StatusCode::NOT_FOUND, format!("HQ holds no document with seq {seq} from this branch")));
    };
    Ok(Json(json!({
        "seq": entry.seq,
        "number": entry.doc.header.number.to_string(),
        "hash": idx.hash.to_hex(),
        "prev_hash": entry.prev.to_hex(),
        "signature": if signature_ok { "valid" } else { "INVALID" },
        "batch_first_seq": idx.batch_first_seq,
        "applied_to_books": idx.quarantined.is_none(),
        "quarantine_reason": idx.quarantined,
        // issue 9 "scope": HQ's mark (flagged for review, or quarantined applied or not)
        // and the profile version the document was posted under.
        "mark": idx.mark,
        "profile_version": entry.doc.header.profile_version,
        "document": entry.doc,
    })))
}

async fn rejections(
    State(hq): State<AppState>,
    edge::api::ApiPath(code): edge::api::ApiPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let code = BranchCode::new(code).map_err(bad)?;
    let list = hq.store.rejections(&code, 200).map_err(internal)?;
    Ok(Json(json!({ "branch": code, "rejections": list })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddBranch {
    pub code: String,
    pub name: String,
    pub warehouses: Vec<String>,
}

async fn add_branch(
    State(hq): State<AppState>,
    edge::api::ApiJson(req): edge::api::ApiJson<AddBranch>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let code = BranchCode::new(req.code).map_err(bad)?;
    let warehouses = req.warehouses.into_iter().map(WarehouseCode::new).collect::<Result<BTreeSet<_>, _>>().map_err(bad)?;
    let hq2 = hq.clone();
    let secret = tokio::task::spawn_blocking(move || {
        let mut st = hq2.state();
        hq2.store.add_branch(&mut st, code, req.name, warehouses, now_unix(), hq2.config.token_ttl_hours * 3600)
    })
    .await
    .map_err(internal)?
    .map_err(bad)?;
    hq.profile_changed();
    Ok(Json(json!({ "branch": code, "token": hq.token_text(&code, secret), "expires_in_hours": hq.config.token_ttl_hours })))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRequest {
    #[serde(default)]
    reason: Option<String>,
}

/// Revokes a branch's enrolled key: its connections are closed and refused until it
/// enrolls again with a new token. Logged with who did it.
async fn revoke_branch(
    State(hq): State<AppState>,
    Extension(by): Extension<auth::Session>,
    edge::api::ApiPath(code): edge::api::ApiPath<String>,
    edge::api::ApiJson(req): edge::api::ApiJson<RevokeRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let code = BranchCode::new(code).map_err(bad)?;
    let reason = req.reason.unwrap_or_else(|| "revoked by an HQ administrator".into());
    tracing::warn!(by = %by.person.login, branch = %code, %reason, "branch key revocation requested");
    let hq2 = hq.clone();
    let revoked = blocking(move || hq2.revoke_branch(&code, &reason)).await?.map_err(bad)?;
    Ok(Json(json!({ "branch": code, "revoked": revoked })))
}

async fn new_token(
    State(hq): State<AppState>,
    Extension(by): Extension<auth::Session>,
    edge::api::ApiPath(code): edge::api::ApiPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let code = BranchCode::new(code).map_err(bad)?;
    // Revokes the enrolled key and closes its connections; who did it is kept in the log.
    tracing::warn!(by = %by.person.login, branch = %code, "enrollment token issued for an existing branch");
    let hq2 = hq.clone();
    let token = blocking(move || hq2.reissue_token(&code)).await?.map_err(bad)?;
    Ok(Json(json!({ "branch": code, "token": token, "expires_in_hours": hq.config.token_ttl_hours })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddProduct {
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub unit: String,
    #[serde(default, with = "protocol::decimal_serde::option")]
    pub retail_price: Option<Decimal>,
    #[serde(default)]
    pub prices: Vec<protocol::decimal_serde::Dec>,
    /// Product category code (scope's category rule runs over it).
    #[serde(default)]
    pub category: Option<protocol::scope::ScopeCode>,
}

impl AddProduct {
    fn into_product(self) -> Result<(ProductCode, Product), String> {
        let code = ProductCode::new(&self.code).map_err(|e| e.to_string())?;
        if self.prices.len() > protocol::profile::PRICE_LEVELS_MAX {
            return Err(format!("product {code}: at most {} preset prices", protocol::profile::PRICE_LEVELS_MAX));
        }
        let product =
            Product { name: self.name, unit: self.unit, retail_price: self.retail_price, prices: self.prices, category: self.category };
        product.check_text().map_err(|e| format!("product {code}: {e}"))?;
        Ok((code, product))
    }
}

async fn add_product(
    State(hq): State<AppState>,
    edge::api::ApiJson(req): edge::api::ApiJson<AddProduct>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (code, product) = req.into_product().map_err(bad)?;
    let hq2 = hq.clone();
    let version = blocking(move || {
        let mut st = hq2.state();
        hq2.store.add_product(&mut st, code, product).map(|()| st.profile_version)
    })
    .await?
    .map_err(internal)?;
    hq.profile_changed();
    Ok(Json(json!({ "product": code, "profile_version": version })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportProducts {
    pub products: Vec<AddProduct>,
}

/// Adds or updates many products as one change (`hq product import` sends a parsed CSV
/// here while HQ is running). All or nothing: one bad product refuses the lot.
async fn import_products(
    State(hq): State<AppState>,
    edge::api::ApiJson(req): edge::api::ApiJson<ImportProducts>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let products = req.products.into_iter().map(AddProduct::into_product).collect::<Result<Vec<_>, _>>().map_err(bad)?;
    let count = products.len();
    let hq2 = hq.clone();
    let (added, version) = blocking(move || {
        let mut st = hq2.state();
        hq2.store.add_products(&mut st, products).map(|added| (added, st.profile_version))
    })
    .await?
    .map_err(internal)?;
    hq.profile_changed();
    Ok(Json(json!({ "products": count, "new": added, "profile_version": version })))
}

/// The catalog, as JSON or (`?format=csv`) as the spreadsheet `hq product import` reads.
async fn products(State(hq): State<AppState>, Query(q): Query<FormatQuery>) -> Response {
    let st = hq.state();
    if q.format.as_deref() == Some("csv") {
        let body = crate::catalog::to_csv(&st.products);
        return (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8"), (header::CONTENT_DISPOSITION, "attachment; filename=\"products.csv\"")],
            body,
        )
            .into_response();
    }
    Json(json!(st.products)).into_response()
}

#[derive(Deserialize)]
struct FormatQuery {
    format: Option<String>,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The status page: with a session that may see HQ-wide reports, branches and stock;
/// otherwise nothing but a sign-in form.
async fn index(State(web): State<auth::Web>, headers: HeaderMap) -> Html<String> {
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

/// Parameters every report understands. Without `branch` the report is consolidated over
/// all branches.
#[derive(Deserialize, Default)]
pub struct ReportQuery {
    pub branch: Option<String>,
    /// First month, `YYYY-MM` (default: the beginning).
    pub from: Option<String>,
    /// Last month, `YYYY-MM` (default: the end).
    pub to: Option<String>,
    /// Sales: product, customer, warehouse or handler.
    pub by: Option<String>,
    /// Ageing reference date, `YYYY-MM-DD` (default: today, UTC).
    pub as_of: Option<String>,
    pub format: Option<String>,
}

/// Today at HQ in its business zone (`business_zone` in hq.toml).
fn today(hq: &Hq) -> BusinessDate {
    hq.config.business_zone.today()
}

async fn report(
    State(hq): State<AppState>,
    edge::api::ApiPath(name): edge::api::ApiPath<String>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    let today = today(&hq);
    // The books are snapshots of durable heads, taken with the state lock held only to
    // list the branches; merging and the report run on a blocking thread, so neither
    // waits for ingest nor holds up an async worker.
    let slots = {
        let st = hq.state();
        match &q.branch {
            Some(b) => {
                let code = BranchCode::new(b.clone()).map_err(bad)?;
                let slot = st.books.get(&code).cloned();
                vec![(code, slot.ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no books for branch {code}")))?)]
            }
            None => st.book_slots(),
        }
    };
    let one = q.branch.is_some();
    let (from, to, by, as_of) = (q.from.clone(), q.to.clone(), q.by.clone(), q.as_of.clone());
    let csv = q.format.as_deref() == Some("csv");
    let built = tokio::task::spawn_blocking(move || {
        let snaps = crate::store::snapshots(&slots);
        if one && snaps.is_empty() {
            return Err(ApiError(StatusCode::NOT_FOUND, "no books in memory for this branch".into()));
        }
        let merged;
        let books = match (one, snaps.first()) {
            (true, Some((_, b))) => &**b,
            _ => {
                merged = crate::store::merged(&snaps);
                &merged
            }
        };
        let raw = RawQuery { from: from.as_deref(), to: to.as_deref(), by: by.as_deref(), as_of: as_of.as_deref() };
        let report = reports::query(books, &name, &raw, today)
            .map_err(|e| ApiError(if e.is_not_found() { StatusCode::NOT_FOUND } else { StatusCode::BAD_REQUEST }, e.to_string()))?;
        Ok(if csv { reports::to_csv(&report).into_bytes() } else { serde_json::to_vec(&json!(report)).map_err(internal)? })
    })
    .await
    .map_err(internal)??;
    let ctype = if csv { "text/csv; charset=utf-8" } else { "application/json" };
    Ok(([(header::CONTENT_TYPE, ctype)], built).into_response())
}

#[derive(Deserialize)]
struct MovementQuery {
    warehouse: Option<String>,
    product: Option<String>,
    party: Option<String>,
    limit: Option<usize>,
}

/// Drill-through: the documents behind a report row (a warehouse, product or party).
async fn movements(
    State(hq): State<AppState>,
    edge::api::ApiPath(code): edge::api::ApiPath<String>,
    Query(q): Query<MovementQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let code = BranchCode::new(code).map_err(bad)?;
    let limit = q.limit.unwrap_or(500).min(5_000);
    let hq2 = hq.clone();
    let found = tokio::task::spawn_blocking(move || {
        hq2.store.find_documents(
            &code,
            |e| {
                let h = &e.doc.header;
                let wh_ok = q
                    .warehouse
                    .as_deref()
                    .is_none_or(|w| h.warehouse.as_str() == w || h.ext.to_warehouse.as_ref().is_some_and(|t| t.as_str() == w));
                let product_ok = q.product.as_deref().is_none_or(|p| e.doc.lines.iter().any(|l| l.product.as_str() == p));
                let party_ok = q.party.as_deref().is_none_or(|p| h.counterparty.as_ref().is_some_and(|c| c.as_str() == p));
                wh_ok && product_ok && party_ok
            },
            limit,
        )
    })
    .await
    .map_err(internal)?
    .map_err(internal)?;
    let rows: Vec<_> = found
        .iter()
        .map(|e| {
            let h = &e.doc.header;
            json!({
                "seq": e.seq, "number": h.number.to_string(), "type": h.doc_type.name(), "date": h.date,
                "warehouse": h.warehouse, "counterparty": h.counterparty, "operator": h.operator, "total": e.doc.total().to_string(),
                "document": format!("/api/branches/{code}/documents/{}", e.seq),
            })
        })
        .collect();
    Ok(Json(json!({ "branch": code, "documents": rows })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetCreditLimit {
    pub customer: String,
    #[serde(default, with = "protocol::decimal_serde::option")]
    pub limit: Option<Decimal>,
}

async fn set_credit_limit(
    State(hq): State<AppState>,
    edge::api::ApiJson(req): edge::api::ApiJson<SetCreditLimit>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let code = protocol::codes::PartyCode::new(req.customer).map_err(bad)?;
    let hq2 = hq.clone();
    let limit = req.limit;
    let version = blocking(move || {
        let mut st = hq2.state();
        hq2.store.set_credit_limit(&mut st, code, limit).map(|()| st.profile_version)
    })
    .await?
    .map_err(internal)?;
    hq.profile_changed();
    Ok(Json(json!({ "customer": code, "limit": req.limit.map(|l| l.to_string()), "profile_version": version })))
}

#[derive(Deserialize)]
pub struct SetOverdraft {
    pub branch: String,
    /// A cash (1001…) or bank (1002…) account, e.g. `1002.ICBC`.
    pub account: String,
    /// How far below zero it may go, in yuan; absent or null removes the allowance.
    #[serde(default, with = "protocol::decimal_serde::option")]
    pub allow: Option<Decimal>,
}

/// Sets how far below zero a branch's cash/bank account may go (issue 11); a new
/// profile version, so branch and HQ refuse the same documents.
async fn set_overdraft(State(hq): State<AppState>, Json(req): Json<SetOverdraft>) -> Result<Json<serde_json::Value>, ApiError> {
    let branch = protocol::codes::BranchCode::new(req.branch).map_err(bad)?;
    let account = protocol::codes::AccountCode::parse(&req.account).map_err(bad)?;
    if !protocol::books::accounts::is_money(&account) {
        return Err(bad(format!("{account} is not a cash (1001) or bank (1002) account")));
    }
    if let Some(a) = req.allow {
        if a < Decimal::ZERO || a.scale() > 2 || a > protocol::document::AMOUNT_MAX {
            return Err(bad(format!("allow {a}: an amount of yuan and fen, zero or more, at most 10^15")));
        }
    }
    let mut st = hq.state();
    if !st.branches.contains_key(&branch) {
        return Err(bad(format!("no branch {branch}")));
    }
    hq.store.set_overdraft(&mut st, branch, account, req.allow).map_err(internal)?;
    let version = st.profile_version;
    drop(st);
    hq.profile_changed();
    Ok(Json(json!({ "branch": branch, "account": account, "allow": req.allow.map(|a| a.to_string()), "profile_version": version })))
}

// ---- issue 9 "scope" handlers: a branch's scope, customers and suppliers.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetScope {
    /// The scope text, `warehouses=SH01; categories=01; customers=200*; …`.
    pub scope: String,
}

async fn set_scope(
    State(hq): State<AppState>,
    edge::api::ApiPath(code): edge::api::ApiPath<String>,
    edge::api::ApiJson(req): edge::api::ApiJson<SetScope>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let code = protocol::codes::BranchCode::new(code).map_err(bad)?;
    let scope: protocol::scope::Scope = req.scope.parse().map_err(bad)?;
    let hq2 = hq.clone();
    let scope2 = scope.clone();
    let version = blocking(move || {
        let mut st = hq2.state();
        if !st.branches.contains_key(&code) {
            return Err(ApiError(StatusCode::NOT_FOUND, format!("no branch {code}")));
        }
        hq2.store.set_scope(&mut st, code, scope2).map_err(internal)?;
        Ok(st.profile_version)
    })
    .await??;
    hq.profile_changed();
    Ok(Json(json!({ "branch": code, "scope": scope.to_string(), "profile_version": version })))
}

async fn show_scope(
    State(hq): State<AppState>,
    edge::api::ApiPath(code): edge::api::ApiPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let code = protocol::codes::BranchCode::new(code).map_err(bad)?;
    let st = hq.state();
    let profile = crate::store::profile_of(&st, &code).ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no branch {code}")))?;
    Ok(Json(json!({ "branch": code, "scope": profile.scope().to_string(), "profile_version": profile.version })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutParty {
    pub party: protocol::parties::Party,
    #[serde(default)]
    pub replace: bool,
}

async fn put_customer(
    State(hq): State<AppState>,
    edge::api::ApiJson(req): edge::api::ApiJson<PutParty>,
) -> Result<Json<serde_json::Value>, ApiError> {
    blocking(move || put_party(hq, req, protocol::parties::PartyRole::Customer)).await?
}

async fn put_supplier(
    State(hq): State<AppState>,
    edge::api::ApiJson(req): edge::api::ApiJson<PutParty>,
) -> Result<Json<serde_json::Value>, ApiError> {
    blocking(move || put_party(hq, req, protocol::parties::PartyRole::Supplier)).await?
}

fn put_party(hq: AppState, req: PutParty, role: protocol::parties::PartyRole) -> Result<Json<serde_json::Value>, ApiError> {
    if req.party.role != role {
        return Err(bad(format!("this route takes {}s", role.name())));
    }
    let code = req.party.code;
    let mut st = hq.state();
    hq.store.put_party(&mut st, req.party, req.replace).map_err(|e| match e {
        crate::store::StoreError::Party(p) => bad(p),
        e => internal(e),
    })?;
    let version = st.profile_version;
    drop(st);
    hq.profile_changed();
    Ok(Json(json!({ role.name(): code, "profile_version": version })))
}
