//! Cross-branch transfers over HQ's HTTP API: an auditor orders goods from one branch's
//! warehouse to another's (the order goes down to the shipper), the transfers board (every
//! order with its state, age and per product what was ordered, shipped, received, settled
//! and is still on the road; JSON or CSV), goods in transit per order and per in-transit
//! warehouse, and the auditor's settlement of a discrepancy (down to the branch that
//! posts it).
//!
//! Plain handler functions; the route table says who may call them (the transfers
//! function: add to order, view to read, approve to settle). Must not write the store
//! except through `Store::issue_transfer` and `Store::order_settlement`; the state of an
//! order is read off the branches' books, never kept here.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use edge::api::{ApiJson, ApiPath};
use protocol::codes::{OperatorId, ProductCode, WarehouseCode};
use protocol::date::BusinessDate;
use protocol::down::DownBody;
use protocol::transfer::{order_state, CostLayer, OrderId, OrderLine, Settle, TransferOrder, Transit};
use protocol::Decimal;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::http::auth::Session;
use crate::server::{now_unix, Hq};
use crate::store::StoreError;

type Reply = Result<Json<Value>, (StatusCode, Json<Value>)>;

fn fail(status: StatusCode, text: impl std::fmt::Display) -> (StatusCode, Json<Value>) {
    (status, Json(json!({ "error": text.to_string() })))
}

fn store_fail(e: StoreError) -> (StatusCode, Json<Value>) {
    let status = match &e {
        StoreError::NoBranch(_) => StatusCode::NOT_FOUND,
        StoreError::Transfer(_) | StoreError::Down(_) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    fail(status, e)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    /// The shipper's goods warehouse, e.g. SH01.
    pub from_warehouse: WarehouseCode,
    /// The receiver's goods warehouse, e.g. HB01.
    pub to_warehouse: WarehouseCode,
    pub lines: Vec<OrderLine>,
    /// At a transfer price (the lines' `unit_price`), else at cost.
    #[serde(default)]
    pub priced: bool,
    #[serde(default)]
    pub expected: Option<BusinessDate>,
    /// The in-transit warehouse (在途库) to report the goods under; `<receiver>ZT` when absent.
    #[serde(default)]
    pub transit: Option<WarehouseCode>,
    #[serde(default)]
    pub memo: String,
}

/// `POST /api/transfers`: issues a transfer order, ordered by the signed-in auditor.
pub async fn order(State(hq): State<Arc<Hq>>, Extension(by): Extension<Session>, ApiJson(req): ApiJson<OrderRequest>) -> Reply {
    let by = OperatorId::new(by.person.login.as_str()).map_err(|e| fail(StatusCode::BAD_REQUEST, e))?;
    let hq2 = hq.clone();
    let issued = tokio::task::spawn_blocking(move || {
        let mut st = hq2.state();
        let owner = |w: &WarehouseCode| st.branches.values().find(|b| b.warehouses.contains(w)).map(|b| b.code);
        let from = owner(&req.from_warehouse)
            .ok_or_else(|| fail(StatusCode::NOT_FOUND, format!("no branch owns warehouse {}", req.from_warehouse)))?;
        let to = owner(&req.to_warehouse)
            .ok_or_else(|| fail(StatusCode::NOT_FOUND, format!("no branch owns warehouse {}", req.to_warehouse)))?;
        let transit = match req.transit {
            Some(t) => t,
            None => WarehouseCode::new(format!("{to}ZT")).map_err(|e| fail(StatusCode::BAD_REQUEST, e))?,
        };
        let order = TransferOrder {
            id: 0,
            from,
            from_warehouse: req.from_warehouse,
            to,
            to_warehouse: req.to_warehouse,
            transit,
            lines: req.lines,
            priced: req.priced,
            expected: req.expected,
            by,
            memo: req.memo,
            issued_unix: 0,
            request: None,
        };
        hq2.store.issue_transfer(&mut st, order, now_unix()).map_err(store_fail)
    })
    .await
    .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, e))??;
    hq.down_changed();
    tracing::info!(order = issued.id, from = %issued.from, to = %issued.to, "transfer order issued");
    Ok(Json(json!({ "order": issued.id, "from": issued.from, "to": issued.to, "state": "ordered" })))
}

/// What every branch's books recorded of each order, added up: the company's transit
/// ledger. Reads the branches' published snapshots (take the slots under the state lock,
/// call this after letting go of it); no whole books are merged for it.
fn company_transit(slots: &[(protocol::codes::BranchCode, Arc<crate::store::BranchBooks>)]) -> BTreeMap<(OrderId, ProductCode), Transit> {
    let mut all: BTreeMap<(OrderId, ProductCode), Transit> = BTreeMap::new();
    for (_, books) in crate::store::snapshots(slots) {
        for (k, t) in books.transit() {
            all.entry(*k).or_default().absorb(t);
        }
    }
    all
}

/// Every order with what the branches' books recorded of it, newest first.
fn board(hq: &Hq) -> Vec<Value> {
    let (orders, forwarded, steps, books) = {
        let st = hq.state();
        let orders: Vec<TransferOrder> = st.transfers.orders.values().cloned().collect();
        let forwarded: BTreeMap<OrderId, Vec<String>> =
            st.transfers.forwarded.iter().map(|(id, gs)| (*id, gs.iter().map(|g| g.shipment.to_string()).collect())).collect();
        let steps: BTreeMap<OrderId, Vec<Value>> = st
            .transfers
            .steps
            .iter()
            .map(|(id, ss)| {
                let docs = ss
                    .iter()
                    .map(|s| json!({ "branch": s.branch, "seq": s.seq, "number": s.number.to_string(), "type": s.doc_type.code(), "date": s.date.to_string(), "quarantined": s.quarantined, "link": format!("/api/branches/{}/documents/{}", s.branch, s.seq) }))
                    .collect();
                (*id, docs)
            })
            .collect();
        (orders, forwarded, steps, st.book_slots())
    };
    let transit = company_transit(&books);
    let now = now_unix();
    orders
        .iter()
        .rev()
        .map(|o| {
            let progress: BTreeMap<ProductCode, Transit> =
                transit.iter().filter(|((id, _), _)| *id == o.id).map(|((_, p), t)| (*p, *t)).collect();
            let state = order_state(o, &progress);
            let lines: Vec<Value> = o
                .lines
                .iter()
                .map(|l| {
                    let t = progress.get(&l.product).copied().unwrap_or_default();
                    let road = t.in_transit();
                    json!({
                        "product": l.product, "ordered": l.qty.to_string(), "unit_price": l.unit_price.to_string(),
                        "shipped": t.shipped.qty.to_string(), "received": t.received.qty.to_string(), "settled": t.settled.qty.to_string(),
                        "in_transit": road.qty.to_string(), "in_transit_cost": road.cost.to_string(),
                    })
                })
                .collect();
            json!({
                "order": o.id, "state": state.name(), "state_zh": state.zh(), "from": o.from, "from_warehouse": o.from_warehouse,
                "to": o.to, "to_warehouse": o.to_warehouse, "transit": o.transit, "priced": o.priced, "by": o.by, "memo": o.memo,
                "expected": o.expected.map(|d| d.to_string()), "age_days": now.saturating_sub(o.issued_unix) / 86_400,
                "shipments": forwarded.get(&o.id).cloned().unwrap_or_default(), "documents": steps.get(&o.id).cloned().unwrap_or_default(),
                "request": o.request.as_ref().map(|(b, n)| json!({ "branch": b, "number": n.to_string() })), "lines": lines,
            })
        })
        .collect()
}

#[derive(Deserialize)]
pub struct BoardQuery {
    format: Option<String>,
}

/// `GET /api/transfers[?format=csv]`: the transfers board.
pub async fn list(State(hq): State<Arc<Hq>>, Query(q): Query<BoardQuery>) -> Response {
    let rows = board(&hq);
    if q.format.as_deref() != Some("csv") {
        return Json(json!({ "orders": rows })).into_response();
    }
    let mut w = csv::Writer::from_writer(vec![0xEF, 0xBB, 0xBF]);
    let head = [
        "order",
        "state",
        "from",
        "to",
        "transit",
        "age_days",
        "product",
        "ordered",
        "shipped",
        "received",
        "settled",
        "in_transit",
        "in_transit_cost",
    ];
    let mut out = w.write_record(head);
    for o in &rows {
        for l in o["lines"].as_array().into_iter().flatten() {
            let s = |v: &Value| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
            let rec = [
                s(&o["order"]),
                s(&o["state"]),
                s(&o["from"]),
                s(&o["to"]),
                s(&o["transit"]),
                s(&o["age_days"]),
                s(&l["product"]),
                s(&l["ordered"]),
                s(&l["shipped"]),
                s(&l["received"]),
                s(&l["settled"]),
                s(&l["in_transit"]),
                s(&l["in_transit_cost"]),
            ];
            out = out.and_then(|()| w.write_record(rec));
        }
    }
    match out.map_err(|e| e.to_string()).and_then(|()| w.into_inner().map_err(|e| e.to_string())) {
        Ok(bytes) => ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], bytes).into_response(),
        Err(e) => fail(StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    }
}

/// `GET /api/transfers/in-transit`: goods on the road at the shipped cost, per order and
/// per in-transit warehouse, with the company's total.
pub async fn in_transit(State(hq): State<Arc<Hq>>) -> Json<Value> {
    let (orders, books) = {
        let st = hq.state();
        (st.transfers.orders.clone(), st.book_slots())
    };
    let transit = company_transit(&books);
    let mut per_order = Vec::new();
    let mut per_warehouse: BTreeMap<(WarehouseCode, ProductCode), (Decimal, Decimal)> = BTreeMap::new();
    let (mut qty, mut cost) = (Decimal::ZERO, Decimal::ZERO);
    for ((id, p), t) in &transit {
        let road = t.in_transit();
        if road.is_zero() {
            continue;
        }
        let transit = orders.get(id).map(|o| o.transit);
        per_order
            .push(json!({ "order": id, "transit": transit, "product": p, "qty": road.qty.to_string(), "cost": road.cost.to_string() }));
        if let Some(w) = transit {
            let e = per_warehouse.entry((w, *p)).or_default();
            e.0 += road.qty;
            e.1 += road.cost;
        }
        qty += road.qty;
        cost += road.cost;
    }
    let per_warehouse: Vec<Value> = per_warehouse
        .iter()
        .map(|((w, p), (q, c))| json!({ "transit": w, "product": p, "qty": q.to_string(), "cost": c.to_string() }))
        .collect();
    Json(json!({ "orders": per_order, "warehouses": per_warehouse, "total_qty": qty.to_string(), "total_cost": cost.to_string() }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettleRequest {
    /// `loss-at-shipper`, `loss-at-receiver`, `carrier-claim` (shortfalls) or
    /// `gain-at-receiver` (an excess).
    pub settle: String,
    pub why: String,
}

/// `POST /api/transfers/{order}/settle`: an auditor's decision on what is still open on
/// an order (a shortfall or an excess), sent to the branch that posts it.
pub async fn settle(
    State(hq): State<Arc<Hq>>,
    Extension(by): Extension<Session>,
    ApiPath(id): ApiPath<OrderId>,
    ApiJson(req): ApiJson<SettleRequest>,
) -> Reply {
    let kind = Settle::parse(&req.settle).ok_or_else(|| {
        let known: Vec<&str> = Settle::ALL.iter().map(|s| s.name()).collect();
        fail(StatusCode::BAD_REQUEST, format!("settle must be one of {}", known.join(", ")))
    })?;
    let why = req.why.trim().to_string();
    if why.is_empty() || why.chars().count() > 200 {
        return Err(fail(StatusCode::BAD_REQUEST, "why: say in 1 to 200 characters why it is settled so"));
    }
    let by = OperatorId::new(by.person.login.as_str()).map_err(|e| fail(StatusCode::BAD_REQUEST, e))?;
    let hq2 = hq.clone();
    let (branch, down_seq) = tokio::task::spawn_blocking(move || {
        let mut st = hq2.state();
        let o = st.transfers.orders.get(&id).cloned().ok_or_else(|| fail(StatusCode::NOT_FOUND, format!("no transfer order {id}")))?;
        // Decided on the snapshots as of now, under the lock, so the order goes down with them.
        let transit = company_transit(&st.book_slots());
        let mut layers = Vec::new();
        for ((oid, p), t) in &transit {
            let road = t.in_transit();
            if *oid != id || road.qty.is_zero() {
                continue;
            }
            if (road.qty < Decimal::ZERO) != kind.is_excess() {
                let what = if road.qty > Decimal::ZERO { "a shortfall" } else { "an excess" };
                return Err(fail(
                    StatusCode::CONFLICT,
                    format!("{p} on order {id} is {what} of {}; {} does not settle that", road.qty.abs(), kind.name()),
                ));
            }
            let sign = if kind.is_excess() { Decimal::NEGATIVE_ONE } else { Decimal::ONE };
            layers.push(CostLayer {
                product: *p,
                qty: sign * road.qty,
                value: sign * road.cost,
                at_price: if o.priced { sign * road.amount } else { Decimal::ZERO },
            });
        }
        if layers.is_empty() {
            return Err(fail(StatusCode::CONFLICT, format!("nothing is open on transfer order {id}: all that was shipped was received")));
        }
        let branch = if kind.by_shipper() { o.from } else { o.to };
        let body = DownBody::TransferSettle { order: id, settle: kind, priced: o.priced, layers, by, why };
        let seq = hq2.store.order_settlement(&mut st, &branch, body, now_unix()).map_err(store_fail)?;
        Ok((branch, seq))
    })
    .await
    .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, e))??;
    hq.down_changed();
    Ok(Json(json!({ "order": id, "settle": kind.name(), "branch": branch, "down_seq": down_seq, "state": "ordered" })))
}

/// `GET /api/transfers/requests`: the stores' replenishment requests (要货), open first.
pub async fn requests(State(hq): State<Arc<Hq>>) -> Json<Value> {
    let st = hq.state();
    let mut rows: Vec<&crate::store::transfers::Request> = st.transfers.requests.values().collect();
    rows.sort_by_key(|r| (r.order.is_some(), r.date, r.branch, r.seq));
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            let lines: Vec<Value> = r.lines.iter().map(|(p, q)| json!({ "product": p, "qty": q.to_string() })).collect();
            json!({ "branch": r.branch, "seq": r.seq, "number": r.number.to_string(), "warehouse": r.warehouse, "date": r.date.to_string(),
                    "memo": r.memo, "lines": lines, "state": if r.order.is_some() { "confirmed" } else { "open" }, "order": r.order })
        })
        .collect();
    Json(json!({ "requests": rows }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    /// The warehouse the goods come from (HQ's or a branch's).
    pub from_warehouse: WarehouseCode,
    /// The lines HQ confirms; the request's when absent (HQ may change quantities).
    #[serde(default)]
    pub lines: Option<Vec<OrderLine>>,
    #[serde(default)]
    pub priced: bool,
    #[serde(default)]
    pub expected: Option<BusinessDate>,
    #[serde(default)]
    pub memo: String,
}

/// `POST /api/transfers/requests/{code}/{seq}/confirm`: 要货确认 — turns a store's request
/// into a transfer order from `from_warehouse`, ordered by the signed-in auditor.
pub async fn confirm(
    State(hq): State<Arc<Hq>>,
    Extension(by): Extension<Session>,
    ApiPath((code, seq)): ApiPath<(String, u64)>,
    ApiJson(req): ApiJson<ConfirmRequest>,
) -> Reply {
    let branch = protocol::codes::BranchCode::new(code).map_err(|e| fail(StatusCode::BAD_REQUEST, e))?;
    let by = OperatorId::new(by.person.login.as_str()).map_err(|e| fail(StatusCode::BAD_REQUEST, e))?;
    let hq2 = hq.clone();
    let issued = tokio::task::spawn_blocking(move || {
        let mut st = hq2.state();
        let asked = st
            .transfers
            .requests
            .get(&(branch, seq))
            .cloned()
            .ok_or_else(|| fail(StatusCode::NOT_FOUND, format!("no replenishment request {seq} of {branch}")))?;
        let from = st
            .branches
            .values()
            .find(|b| b.warehouses.contains(&req.from_warehouse))
            .map(|b| b.code)
            .ok_or_else(|| fail(StatusCode::NOT_FOUND, format!("no branch owns warehouse {}", req.from_warehouse)))?;
        let lines = req
            .lines
            .unwrap_or_else(|| asked.lines.iter().map(|(p, q)| OrderLine { product: *p, qty: *q, unit_price: Decimal::ZERO }).collect());
        let transit = WarehouseCode::new(format!("{branch}ZT")).map_err(|e| fail(StatusCode::BAD_REQUEST, e))?;
        let order = TransferOrder {
            id: 0,
            from,
            from_warehouse: req.from_warehouse,
            to: branch,
            to_warehouse: asked.warehouse,
            transit,
            lines,
            priced: req.priced,
            expected: req.expected,
            by,
            memo: if req.memo.is_empty() { format!("要货确认 {}", asked.number) } else { req.memo },
            issued_unix: 0,
            request: None,
        };
        hq2.store.confirm_request(&mut st, &branch, seq, order, now_unix()).map_err(store_fail)
    })
    .await
    .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, e))??;
    hq.down_changed();
    Ok(Json(json!({ "order": issued.id, "from": issued.from, "to": issued.to, "state": "ordered" })))
}
