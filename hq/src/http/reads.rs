//! What HQ's API shows: consolidated stock (JSON or CSV), branch status, one document
//! with its signature status, rejections, reports (consolidated or one branch's),
//! drill-through to the documents behind a report row, and the catalog. Reads only:
//! must not write to the store (admin writes are `admin`).

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use protocol::books::reports::{self, RawQuery};
use protocol::codes::{BranchCode, ProductCode};
use protocol::date::BusinessDate;
use protocol::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{bad, internal, ApiError, AppState};
use crate::server::Hq;

#[derive(Deserialize)]
pub(super) struct StockQuery {
    pub(super) warehouse: Option<String>,
    pub(super) product: Option<String>,
    pub(super) format: Option<String>,
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

pub(super) fn stock_rows(hq: &Hq, q: &StockQuery) -> Vec<StockRow> {
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

pub(super) async fn stock(State(hq): State<AppState>, Query(q): Query<StockQuery>) -> Response {
    let hq2 = hq.clone();
    let q2 = StockQuery { warehouse: q.warehouse.clone(), product: q.product.clone(), format: None };
    let rows = match tokio::task::spawn_blocking(move || stock_rows(&hq2, &q2)).await {
        Ok(rows) => rows,
        Err(e) => return internal(e).into_response(),
    };
    if q.format.as_deref() == Some("csv") {
        // A UTF-8 BOM so Excel opens Chinese product names correctly.
        let out = protocol::sheet::excel(
            &["warehouse", "branch", "product", "name", "qty", "value", "average_cost"],
            rows.iter().map(|r| {
                [
                    r.warehouse.clone(),
                    r.branch.clone().unwrap_or_default(),
                    r.product.clone(),
                    r.name.clone(),
                    r.qty.to_string(),
                    r.value.to_string(),
                    r.average_cost.to_string(),
                ]
            }),
        );
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

pub(super) fn branch_statuses(hq: &Hq) -> Vec<BranchStatus> {
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

pub(super) async fn branches(State(hq): State<AppState>) -> Json<serde_json::Value> {
    let anonymous = hq.state().anonymous_rejections;
    Json(json!({ "branches": branch_statuses(&hq), "rejections_without_branch": anonymous }))
}

pub(super) async fn document(
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

pub(super) async fn rejections(
    State(hq): State<AppState>,
    edge::api::ApiPath(code): edge::api::ApiPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let code = BranchCode::new(code).map_err(bad)?;
    let list = hq.store.rejections(&code, 200).map_err(internal)?;
    Ok(Json(json!({ "branch": code, "rejections": list })))
}

/// The catalog, as JSON or (`?format=csv`) as the spreadsheet `hq product import` reads.
pub(super) async fn products(State(hq): State<AppState>, Query(q): Query<FormatQuery>) -> Response {
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
pub(super) struct FormatQuery {
    format: Option<String>,
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
pub(super) fn today(hq: &Hq) -> BusinessDate {
    hq.config.business_zone.today()
}

pub(super) async fn report(
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

/// Drill-through: the documents behind a report row (a warehouse, product or party).
pub(super) async fn movements(
    State(hq): State<AppState>,
    edge::api::ApiPath(code): edge::api::ApiPath<String>,
    Query(q): Query<reports::DrillQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let code = BranchCode::new(code).map_err(bad)?;
    let limit = q.rows_max();
    let hq2 = hq.clone();
    let found = tokio::task::spawn_blocking(move || hq2.store.find_documents(&code, |e| q.matches(&e.doc), limit))
        .await
        .map_err(internal)?
        .map_err(internal)?;
    let rows: Vec<_> =
        found.iter().map(|e| reports::drill_row(e.seq, &e.doc, format!("/api/branches/{code}/documents/{}", e.seq))).collect();
    Ok(Json(json!({ "branch": code, "documents": rows })))
}

#[derive(Deserialize)]
pub(super) struct LedgerQuery {
    branch: Option<String>,
    from: Option<String>,
    to: Option<String>,
    format: Option<String>,
}

/// `GET /api/export/ledger?branch=SH&from=2026-06&to=2026-06&format=beancount|hledger`:
/// the books as a plain-text accounting journal (`crate::ledger_export`), every branch
/// without `branch`. Each journal is posted again on a blocking thread.
pub(super) async fn export_ledger(State(hq): State<AppState>, Query(q): Query<LedgerQuery>) -> Result<Response, ApiError> {
    use crate::ledger_export::{export, ExportError, LedgerRequest};
    let from = q.from.as_deref().ok_or_else(|| ApiError(StatusCode::BAD_REQUEST, "from: give the first month, YYYY-MM".into()))?;
    let req = LedgerRequest::parse(q.branch.as_deref(), from, q.to.as_deref(), q.format.as_deref()).map_err(bad)?;
    let enrolled: Vec<BranchCode> = hq.state().branches.keys().copied().collect();
    let hq2 = hq.clone();
    let req2 = req.clone();
    let text = tokio::task::spawn_blocking(move || export(&hq2.store, &enrolled, &req2)).await.map_err(internal)?.map_err(|e| match e {
        ExportError::Bad(_) => ApiError(StatusCode::BAD_REQUEST, e.to_string()),
        ExportError::NoBranch(_) => ApiError(StatusCode::NOT_FOUND, e.to_string()),
        _ => internal(e),
    })?;
    let name = format!(
        "attachment; filename=\"{}-{}-{}.{}\"",
        req.branch.map(|b| b.to_string()).unwrap_or_else(|| "all".into()),
        req.from.label(),
        req.to.label(),
        req.format.extension()
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8".to_string()), (header::CONTENT_DISPOSITION, name)], text).into_response())
}
