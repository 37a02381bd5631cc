//! The branch's local HTTP API: post documents, read stock, read sync status. JSON under
//! `/api`, CSV with `?format=csv`, and a status page at `/`. Posting answers only after
//! the document is durable in the local store: "ok" means it survives a power cut.
//!
//! Every route is declared in `crate::routes` (with the right it needs) and reaches a
//! handler here only signed in; a document's operator is the signed-in person.
//!
//! Must not: decide who may call a route (that is `routes` and `auth`) or post other than
//! through `Store::post`; it parses, calls and serializes.

use std::sync::Arc;

use axum::extract::{Extension, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use protocol::books::reports;
use protocol::codes::{OperatorId, PartyCode, ProductCode, WarehouseCode};
use protocol::date::BusinessDate;
use protocol::document::{DocExt, DocType, Draft, Line, LineRole, Payment};
use protocol::profile::BranchProfile;
use protocol::Decimal;
use serde::Deserialize;
use serde_json::json;

use edge::api::{ApiBytes, ApiJson, ApiPath};

use crate::auth::{AgentWeb, Session};
use crate::forwarder::Shared;
use crate::store::PostFailure;

type AppState = Arc<Shared>;

#[derive(Debug)]
pub(crate) struct ApiError(pub(crate) StatusCode, pub(crate) String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

/// A document as an operator submits it. `amount` may be left out; it is then
/// quantity × unit price rounded to the cent. `doc_type` takes the seed code (`XS`), the
/// English name in any case (`Sale`, `sale`) or the Chinese name (`销售单`). Unknown
/// fields, here, in a line or in `ext`, are refused naming the field and those allowed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DraftRequest {
    pub doc_type: String,
    pub date: BusinessDate,
    /// The signed-in person; may be left out, and may not name anyone else.
    #[serde(default)]
    pub operator: Option<OperatorId>,
    pub warehouse: WarehouseCode,
    #[serde(default)]
    pub counterparty: Option<PartyCode>,
    #[serde(default)]
    pub memo: String,
    /// Till payment, for retail sales (LS) only.
    #[serde(default)]
    pub payment: Option<Payment>,
    #[serde(default)]
    pub lines: Vec<LineRequest>,
    /// Fields some types need: to_warehouse, account, money, settles, reverses… (see README).
    #[serde(default)]
    pub ext: DocExt,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineRequest {
    pub product: ProductCode,
    #[serde(default)]
    pub role: LineRole,
    #[serde(with = "protocol::decimal_serde")]
    pub qty: Decimal,
    /// Left out: taken from the catalog, at `price_level` (1-4) if given, else the
    /// retail price.
    #[serde(default, with = "opt_decimal")]
    pub unit_price: Option<Decimal>,
    #[serde(default)]
    pub price_level: Option<u8>,
    #[serde(default, with = "opt_decimal")]
    pub amount: Option<Decimal>,
}

mod opt_decimal {
    use protocol::Decimal;
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        #[derive(Deserialize)]
        struct W(#[serde(with = "protocol::decimal_serde")] Decimal);
        Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
    }
}

/// A line without a price takes the catalog's: preset level 1-4, or the retail price.
fn catalog_price(catalog: &BranchProfile, product: &ProductCode, level: Option<u8>) -> Result<Decimal, String> {
    let p = catalog.products.get(product).ok_or_else(|| format!("unknown product {product}: HQ maintains the product list"))?;
    p.price(level).map_err(|e| format!("product {product} {e}"))
}

impl DraftRequest {
    fn into_draft(self, catalog: &BranchProfile, operator: OperatorId) -> Result<Draft, String> {
        let doc_type = DocType::parse(&self.doc_type).map_err(|e| e.to_string())?;
        let lines = self
            .lines
            .into_iter()
            .map(|l| {
                let price = match (l.unit_price, l.price_level) {
                    (Some(p), _) => p,
                    (None, level) => catalog_price(catalog, &l.product, level)?,
                };
                let mut line = Line::priced(l.product, l.qty, price);
                line.role = l.role;
                if let Some(a) = l.amount {
                    line.amount = a;
                }
                Ok(line)
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Draft {
            doc_type,
            date: self.date,
            operator,
            warehouse: self.warehouse,
            counterparty: self.counterparty,
            memo: self.memo,
            payment: self.payment,
            lines,
            ext: self.ext,
        })
    }
}

/// The operator of a request: the signed-in person; naming someone else is refused.
fn operator_of(session: &Session, named: Option<OperatorId>) -> Result<OperatorId, ApiError> {
    let me = session.person.login;
    match named {
        Some(other) if other != me => {
            Err(ApiError(StatusCode::FORBIDDEN, format!("the operator of a document is the signed-in person ({me}), not {other}")))
        }
        _ => Ok(me),
    }
}

/// May the signed-in person do `right` on documents of type `t` here?
fn check_family(shared: &Shared, session: &Session, t: DocType, right: protocol::people::Right) -> Result<(), ApiError> {
    let family = protocol::people::DocFamily::of(t);
    crate::auth::allow_family(shared.store.identity().branch, &session.person, family, right)
        .map_err(|e| ApiError(StatusCode::FORBIDDEN, e.to_string()))
}

pub(crate) async fn post_document(
    State(shared): State<AppState>,
    Extension(session): Extension<Session>,
    ApiBytes(body): ApiBytes,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let draft = parse_document(&shared, &session, &body)?;
    post_draft(&shared, draft).await
}

/// A document request as its author may submit it: valid JSON, the signed-in person as
/// operator, their right to add this type, and no approval reference of its own (only
/// posting an approved draft sets `ext.approval`).
fn parse_document(shared: &Shared, session: &Session, body: &[u8]) -> Result<Draft, ApiError> {
    let req: DraftRequest = edge::api::decode(body).map_err(|r| ApiError(r.status, r.error))?;
    let operator = operator_of(session, req.operator)?;
    let doc_type = DocType::parse(&req.doc_type).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
    check_family(shared, session, doc_type, protocol::people::Right::Add)?;
    if doc_type == DocType::PeriodReopen {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "a month reopen (反结账) is ordered by an HQ auditor (POST /api/periods/{branch}/reopen at HQ); the branch posts it when the order arrives".into(),
        ));
    }
    if matches!(doc_type, DocType::TransferShip | DocType::TransferReceive | DocType::TransferSettle) {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "transfers between branches go through HQ: ship with POST /api/transfers/{order}/ship, receive with POST /api/transfers/{order}/receive; a settlement is posted when HQ orders it".into(),
        ));
    }
    if req.ext.transfer.is_some() || !req.ext.layers.is_empty() {
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "ext.transfer and ext.layers are set only by the transfer routes (/api/transfers)".into(),
        ));
    }
    if req.ext.approval.is_some() {
        let text = "ext.approval is set only by posting an approved draft (POST /api/drafts/{id}/post)";
        return Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, text.into()));
    }
    req.into_draft(&shared.store.profile(), operator).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e))
}

/// `POST /api/drafts`: a document that needs HQ's approval, stored durably as a draft
/// (flushed before 201) and sent up; it touches neither the books nor the journal.
pub(crate) async fn create_draft(
    State(shared): State<AppState>,
    Extension(session): Extension<Session>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let draft = parse_document(&shared, &session, &body)?;
    let sh = shared.clone();
    let made = tokio::task::spawn_blocking(move || sh.drafts.create(&sh.store, draft, edge::now_unix()))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    match made {
        Ok(rec) => {
            shared.posted.notify_one();
            tracing::info!(draft = rec.up.id, "draft stored for HQ's approval");
            let needs: Vec<String> = rec.up.needs.iter().map(ToString::to_string).collect();
            Ok((StatusCode::CREATED, Json(json!({ "id": rec.up.id, "state": "waiting", "needs": needs }))))
        }
        Err(e) => Err(draft_failure(e)),
    }
}

fn draft_failure(e: crate::drafts::DraftFailure) -> ApiError {
    use crate::drafts::DraftFailure as F;
    let status = match &e {
        F::Post(PostFailure::Storage(_)) | F::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
        F::Unknown(_) => StatusCode::NOT_FOUND,
        F::TooMany(_) => StatusCode::CONFLICT,
        F::Post(_) | F::NotNeeded | F::NotPostable(_) => StatusCode::UNPROCESSABLE_ENTITY,
    };
    ApiError(status, e.to_string())
}

/// `GET /api/drafts`: every draft with its state (waiting / approved / refused / posted),
/// why it needs approval, and HQ's note and who decided.
pub(crate) async fn list_drafts(State(shared): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let sh = shared.clone();
    let drafts = tokio::task::spawn_blocking(move || sh.drafts.list(&sh.store))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")))?;
    Ok(Json(json!({ "drafts": drafts })))
}

/// `POST /api/drafts/{id}/post`: posts an approved draft as the signed-in person; the
/// document records the approval (`ext.approval`) for HQ to check.
pub(crate) async fn post_approved_draft(
    State(shared): State<AppState>,
    Extension(session): Extension<Session>,
    ApiPath(id): ApiPath<u64>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let sh = shared.clone();
    let me = session.person.login;
    // The right to add the draft's type is checked like any post.
    let listed = tokio::task::spawn_blocking(move || sh.drafts.list(&sh.store))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")))?;
    let doc_type = listed
        .iter()
        .find(|d| d["id"] == id)
        .and_then(|d| d["draft"]["doc_type"].as_str().map(str::to_string))
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no draft {id} at this branch")))?;
    let doc_type = DocType::parse(&doc_type).map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    check_family(&shared, &session, doc_type, protocol::people::Right::Add)?;
    let sh = shared.clone();
    let posted = tokio::task::spawn_blocking(move || sh.drafts.post(&sh.store, id, me))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    match posted {
        Ok(p) => {
            shared.posted.notify_one();
            tracing::info!(number = %p.number, seq = p.seq, draft = id, "approved draft posted");
            Ok((StatusCode::CREATED, Json(json!(p))))
        }
        Err(crate::drafts::DraftFailure::Post(PostFailure::NeedsApproval(why))) => Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, why)),
        Err(e) => Err(draft_failure(e)),
    }
}

pub(crate) async fn get_document(State(shared): State<AppState>, ApiPath(seq): ApiPath<u64>) -> Result<Json<serde_json::Value>, ApiError> {
    match shared.store.entry(seq) {
        Ok(Some(e)) => {
            Ok(Json(json!({ "seq": e.seq, "number": e.doc.header.number.to_string(), "prev_hash": e.prev.to_hex(), "document": e.doc })))
        }
        Ok(None) => Err(ApiError(StatusCode::NOT_FOUND, format!("no document with seq {seq} at this branch"))),
        Err(e) => Err(ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"))),
    }
}

#[derive(Deserialize)]
pub(crate) struct StockQuery {
    format: Option<String>,
}

pub(crate) async fn stock(State(shared): State<AppState>, Query(q): Query<StockQuery>) -> Response {
    let profile = shared.store.profile();
    let rows: Vec<_> = shared
        .store
        .stock()
        .into_iter()
        .map(|((w, p), pos)| {
            let name = profile.products.get(&p).map(|x| x.name.clone()).unwrap_or_default();
            json!({ "warehouse": w, "product": p, "name": name, "qty": pos.qty.to_string(), "value": pos.value.to_string(), "average_cost": pos.average_cost().to_string() })
        })
        .collect();
    if q.format.as_deref() == Some("csv") {
        // The one CSV writer (quoting, not mangling, a name with a comma), BOM for Excel.
        const COLUMNS: [&str; 6] = ["warehouse", "product", "name", "qty", "value", "average_cost"];
        let out = protocol::sheet::excel(&COLUMNS, rows.iter().map(|r| COLUMNS.map(|k| r[k].as_str().unwrap_or("").to_string())));
        return ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], out).into_response();
    }
    Json(rows).into_response()
}

pub(crate) async fn sync_status(State(shared): State<AppState>) -> Json<serde_json::Value> {
    let id = shared.store.identity();
    Json(json!({ "branch": id.branch, "status": shared.status(), "replayed_at_start": shared.store.replayed_at_open(),
        "posting_stopped": shared.store.halted() }))
}

/// What HQ said down the signed channel: notices, reversal orders and what blocks them,
/// the last refused message.
pub(crate) async fn notices(State(shared): State<AppState>) -> Response {
    match shared.down.view(&shared.store) {
        Ok(v) => Json(v).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "error": format!("{e:#}") }))).into_response(),
    }
}

pub(crate) async fn profile(State(shared): State<AppState>) -> Json<serde_json::Value> {
    let mut profile = (*shared.store.profile()).clone();
    // Password hashes stay in the store; people are listed without them.
    let people: Vec<_> = profile.people.drain(..).map(|e| json!({ "login": e.person.login, "name": e.person.name,
        "roles": e.person.roles.iter().map(|r| r.name()).collect::<Vec<_>>(), "scope": e.person.scope.to_string(), "disabled": e.person.disabled })).collect();
    let mut v = json!(profile);
    v["people"] = json!(people);
    Json(v)
}

/// The status page: with a session that may see reports, the link and stock; otherwise
/// nothing but a sign-in form.
pub(crate) async fn index(State(web): State<AgentWeb>, headers: HeaderMap) -> Html<String> {
    let here = Some(web.shared.store.identity().branch);
    let allowed = crate::auth::signed_in(&web, &headers)
        .ok()
        .filter(|p| protocol::people::authorize(p, protocol::people::Function::Reports, protocol::people::Right::View, here).is_ok());
    if allowed.is_none() {
        return Html(format!(
            "<!doctype html><meta charset=utf-8><title>Branchline</title><style>body{{font-family:sans-serif;margin:2em}}</style>\
             <h1>Branchline branch</h1><p>Sign in to see this branch (the till: <a href=/pos>/pos</a>).</p>{}",
            crate::auth::SIGN_IN_FORM
        ));
    }
    let shared = web.shared;
    let s = shared.status();
    let id = shared.store.identity();
    let esc = |x: &str| x.replace('&', "&amp;").replace('<', "&lt;");
    let mut page = format!(
        "<!doctype html><meta charset=utf-8><title>Branchline {b}</title><style>body{{font-family:sans-serif;margin:2em}}td,th{{border:1px solid #ccc;padding:4px 8px}}table{{border-collapse:collapse}}</style>\
         <h1>Branch {b}</h1>{halt}<p><a href=/pos>Till</a> · <a href=/pos/display>Customer display</a></p><p>Link to HQ: <b>{link}</b> · posted {head} · acknowledged by HQ {acked} · waiting {pending}</p><p>Last error: {err}</p>\
         <h2>Stock</h2><p><a href=/api/stock?format=csv>Export CSV (Excel)</a></p><table><tr><th>Warehouse</th><th>Product</th><th>Qty</th><th>Value</th></tr>",
        b = id.branch,
        halt = match shared.store.halted() {
            Some(why) => format!("<p style=\"background:#c00;color:#fff;padding:1em\"><b>Posting is stopped:</b> {}</p>", esc(&why)),
            None => String::new(),
        },
        link = if s.link_up { "up" } else { "down (documents are kept and sent when it returns)" },
        head = s.head_seq,
        acked = s.acked_seq,
        pending = s.pending,
        err = esc(s.last_error.as_deref().unwrap_or("none")),
    );
    for ((w, p), pos) in shared.store.stock() {
        page.push_str(&format!("<tr><td>{w}</td><td>{p}</td><td>{}</td><td>{}</td></tr>", pos.qty, pos.value));
    }
    page.push_str("</table>");
    // What HQ said down the signed channel: reversal orders (and what blocks them), then
    // the newest notices.
    if let Ok(v) = shared.down.view(&shared.store) {
        page.push_str(&format!("<h2>From HQ</h2><p>{} notices · <a href=/api/notices>all (JSON)</a></p><ul>", v["count"]));
        for o in v["orders"].as_array().into_iter().flatten() {
            let doc = o["order"]["doc_number"].as_str().unwrap_or("");
            let state = o["state"].as_str().unwrap_or("");
            let blocked = o["blocked_by"].as_str().map(|b| format!(": blocked by {b}")).unwrap_or_default();
            page.push_str(&format!("<li>reversal of {} ordered by HQ: {state}{}</li>", esc(doc), esc(&blocked)));
        }
        for n in v["notices"].as_array().into_iter().flatten().rev().take(20) {
            page.push_str(&format!("<li>{}</li>", esc(n["text"].as_str().unwrap_or(""))));
        }
        page.push_str("</ul>");
    }
    Html(page)
}

#[derive(Deserialize)]
pub(crate) struct ReportQuery {
    from: Option<String>,
    to: Option<String>,
    by: Option<String>,
    as_of: Option<String>,
    format: Option<String>,
}

/// The branch's own books, through the same report code HQ runs.
pub(crate) async fn report(
    State(shared): State<AppState>,
    ApiPath(name): ApiPath<String>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    use protocol::books::reports::{self, RawQuery};
    let raw = RawQuery { from: q.from.as_deref(), to: q.to.as_deref(), by: q.by.as_deref(), as_of: q.as_of.as_deref() };
    let report = shared
        .store
        .with_books(|b| reports::query(b, &name, &raw, shared.store.today().0))
        .map_err(|e| ApiError(if e.is_not_found() { StatusCode::NOT_FOUND } else { StatusCode::BAD_REQUEST }, e.to_string()))?;
    if q.format.as_deref() == Some("csv") {
        return Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], reports::to_csv(&report)).into_response());
    }
    Ok(Json(json!(report)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReverseRequest {
    #[serde(default)]
    operator: Option<OperatorId>,
    date: BusinessDate,
    #[serde(default)]
    memo: String,
}

/// 红字冲账: posts the exact reversal of document `seq` (same type, lines and amounts).
pub(crate) async fn reverse_document(
    State(shared): State<AppState>,
    Extension(session): Extension<Session>,
    ApiPath(seq): ApiPath<u64>,
    ApiJson(req): ApiJson<ReverseRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let operator = operator_of(&session, req.operator)?;
    let orig = match shared.store.entry(seq) {
        Ok(Some(e)) => e.doc,
        Ok(None) => return Err(ApiError(StatusCode::NOT_FOUND, format!("no document with seq {seq} at this branch"))),
        Err(e) => return Err(ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"))),
    };
    check_family(&shared, &session, orig.header.doc_type, protocol::people::Right::Manage)?;
    let mut draft = orig.reversal(req.date, operator);
    if !req.memo.is_empty() {
        draft.memo = req.memo;
    }
    post_draft(&shared, draft).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CountRequest {
    date: BusinessDate,
    #[serde(default)]
    operator: Option<OperatorId>,
    warehouse: WarehouseCode,
    /// Counted quantity per product.
    counted: Vec<CountLine>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CountLine {
    product: ProductCode,
    #[serde(with = "protocol::decimal_serde")]
    qty: Decimal,
}

/// 盘点: counted quantities in; the stock-loss and stock-gain documents that bring the
/// books to the count are posted and returned.
pub(crate) async fn stock_count(
    State(shared): State<AppState>,
    Extension(session): Extension<Session>,
    ApiJson(req): ApiJson<CountRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let template = Draft {
        doc_type: DocType::StockLoss,
        date: req.date,
        operator: operator_of(&session, req.operator)?,
        warehouse: req.warehouse,
        counterparty: None,
        memo: "盘点 stock count".into(),
        payment: None,
        lines: Vec::new(),
        ext: DocExt::default(),
    };
    let counted: Vec<_> = req.counted.into_iter().map(|c| (c.product, c.qty)).collect();
    let store = shared.store.clone();
    // Computed and posted under one hold of the books (`Store::post_count`).
    let posted = tokio::task::spawn_blocking(move || {
        let profile = store.profile();
        let price = |p: &ProductCode| profile.products.get(p).and_then(|x| x.retail_price).unwrap_or_default();
        store.post_count(&template, &counted, price)
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    match posted {
        Ok(posted) => {
            if !posted.is_empty() {
                shared.posted.notify_one();
            }
            for p in &posted {
                tracing::info!(number = %p.number, seq = p.seq, "stock count document posted");
            }
            Ok((StatusCode::CREATED, Json(json!({ "posted": posted }))))
        }
        Err(e) => Err(refusal(e)),
    }
}

pub(crate) async fn post_draft(shared: &Arc<Shared>, draft: Draft) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let store = shared.store.clone();
    let posted = tokio::task::spawn_blocking(move || store.post(draft))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    match posted {
        Ok(p) => {
            shared.posted.notify_one();
            tracing::info!(number = %p.number, seq = p.seq, "document posted");
            Ok((StatusCode::CREATED, Json(json!(p))))
        }
        Err(e) => Err(refusal(e)),
    }
}

/// The answer to a post the store did not take, for every posting route alike.
fn refusal(e: PostFailure) -> ApiError {
    match e {
        PostFailure::Refused(e) => ApiError(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
        PostFailure::NeedsApproval(why) => ApiError(StatusCode::UNPROCESSABLE_ENTITY, why),
        e @ PostFailure::Storage(_) => ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        // 409: the branch's state forbids posting (its history disagrees with HQ's).
        e @ PostFailure::Halted(_) => ApiError(StatusCode::CONFLICT, e.to_string()),
        e @ PostFailure::Stopped(_) => ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// Drill-through: the posted documents behind a report row, newest first, each linking to
/// `/api/documents/{seq}`.
pub(crate) async fn movements(
    State(shared): State<AppState>,
    Query(q): Query<reports::DrillQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = q.rows_max();
    let store = shared.store.clone();
    let rows = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<serde_json::Value>> {
        let mut rows = Vec::new();
        for seq in (1..=store.head().seq).rev() {
            let Some(e) = store.entry(seq)? else { continue };
            if q.matches(&e.doc) {
                rows.push(reports::drill_row(e.seq, &e.doc, format!("/api/documents/{}", e.seq)));
                if rows.len() >= limit {
                    break;
                }
            }
        }
        Ok(rows)
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")))?;
    Ok(Json(json!({ "documents": rows })))
}
