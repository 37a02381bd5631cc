//! The branch's side of cross-branch transfers (`protocol::transfer`): the orders HQ sent
//! it to ship, the shipments HQ forwarded to it, the settlements HQ ordered, and the
//! shipment and receipt it posts against them.
//!
//! The down channel stores what arrives (`down.rs`, in the same write as the message's
//! mark); this module reads it, checks a step against it (no more shipped than ordered,
//! no receipt before a shipment arrived, no more received than shipped unless the
//! receiver says it counted an excess), fills in the cost layers, and posts through
//! `Store::post` like any document. A settlement is posted by itself when it arrives.
//!
//! Keys (in the branch store's tree): `t` order id(be) → `TransferOrder`; `u` order id(be)
//! down seq(be) → `ShippedGoods` (in the order they arrived); `v` down seq(be) →
//! [`SettleOrder`]. Must not touch the journal except through `Store::post`.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use edge::api::{ApiBytes, ApiPath};
use protocol::books::{shipment_layers, Position};
use protocol::codes::{OperatorId, ProductCode};
use protocol::date::BusinessDate;
use protocol::document::{DocExt, DocType, Draft, Line};
use protocol::record;
use protocol::transfer::{receipt_layers, CostLayer, OrderId, Settle, ShippedGoods, TransferOrder, TransferRef};
use protocol::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::auth::Session;
use crate::forwarder::Shared;
use crate::http::ApiError;
use crate::store::Store;

pub fn order_key(id: OrderId) -> [u8; 9] {
    let mut k = [b't'; 9];
    k[1..].copy_from_slice(&id.to_be_bytes());
    k
}

pub fn shipped_key(id: OrderId, down_seq: u64) -> [u8; 17] {
    let mut k = [b'u'; 17];
    k[1..9].copy_from_slice(&id.to_be_bytes());
    k[9..].copy_from_slice(&down_seq.to_be_bytes());
    k
}

pub fn settle_key(down_seq: u64) -> [u8; 9] {
    let mut k = [b'v'; 9];
    k[1..].copy_from_slice(&down_seq.to_be_bytes());
    k
}

/// A settlement HQ ordered; `posted_by` is set once the branch posted it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SettleOrder {
    pub down_seq: u64,
    pub order: OrderId,
    pub settle: Settle,
    pub priced: bool,
    pub layers: Vec<CostLayer>,
    pub by: OperatorId,
    pub why: String,
    pub posted_by: Option<String>,
}

/// The orders this branch was sent.
pub fn orders(store: &Store) -> anyhow::Result<Vec<TransferOrder>> {
    store.tree().scan_prefix([b't']).map(|item| Ok(record::open(&"t/transfer order", &item?.1)?)).collect()
}

fn order(store: &Store, id: OrderId) -> anyhow::Result<Option<TransferOrder>> {
    Ok(match store.tree().get(order_key(id))? {
        Some(v) => Some(record::open(&"t/transfer order", &v)?),
        None => None,
    })
}

/// The shipments of order `id` that reached this branch, in the order they came.
pub fn shipped(store: &Store, id: OrderId) -> anyhow::Result<Vec<ShippedGoods>> {
    let mut prefix = vec![b'u'];
    prefix.extend_from_slice(&id.to_be_bytes());
    store.tree().scan_prefix(prefix).map(|item| Ok(record::open(&"u/shipped goods", &item?.1)?)).collect()
}

/// Every order id a shipment reached this branch for.
fn incoming_orders(store: &Store) -> anyhow::Result<Vec<OrderId>> {
    let mut ids = Vec::new();
    for item in store.tree().scan_prefix([b'u']) {
        let (k, _) = item?;
        let id = u64::from_be_bytes(k.get(1..9).and_then(|b| b.try_into().ok()).context("short shipped-goods key")?);
        if ids.last() != Some(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// What this branch's books recorded of order `id`: per product (shipped, received + settled).
fn progress(store: &Store, id: OrderId) -> BTreeMap<ProductCode, protocol::transfer::Transit> {
    store.with_books(|b| b.transit().iter().filter(|((o, _), _)| *o == id).map(|((_, p), t)| (*p, *t)).collect())
}

/// Why a step cannot be posted: 404 no such order, 422 what the order allows.
fn refuse(status: StatusCode, why: impl Into<String>) -> ApiError {
    ApiError(status, why.into())
}

fn storage(e: anyhow::Error) -> ApiError {
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"))
}

/// The draft of a shipment of `lines` (product, qty; all that is left when empty) on `id`.
pub fn shipment_draft(
    store: &Store,
    id: OrderId,
    lines: &[(ProductCode, Decimal)],
    date: BusinessDate,
    operator: OperatorId,
) -> Result<Draft, ApiError> {
    let me = store.identity().branch;
    let o = order(store, id)
        .map_err(storage)?
        .ok_or_else(|| refuse(StatusCode::NOT_FOUND, format!("no transfer order {id} was sent to this branch")))?;
    if o.from != me {
        return Err(refuse(StatusCode::UNPROCESSABLE_ENTITY, format!("transfer order {id} ships from {}, not from {me}", o.from)));
    }
    let done = progress(store, id);
    let left = |p: &ProductCode, ordered: Decimal| ordered - done.get(p).map(|t| t.shipped.qty).unwrap_or_default();
    let wanted: Vec<(ProductCode, Decimal)> = if lines.is_empty() {
        o.lines.iter().map(|l| (l.product, left(&l.product, l.qty))).filter(|(_, q)| *q > Decimal::ZERO).collect()
    } else {
        lines.to_vec()
    };
    if wanted.is_empty() {
        return Err(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("transfer order {id} is shipped in full already; nothing is left to ship"),
        ));
    }
    let mut doc_lines = Vec::new();
    for (p, q) in &wanted {
        let Some(ol) = o.line(p) else {
            return Err(refuse(StatusCode::UNPROCESSABLE_ENTITY, format!("{p} is not on transfer order {id}; ship only what HQ ordered")));
        };
        let rest = left(p, ol.qty);
        if *q > rest {
            return Err(refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("transfer order {id} has {rest} of {p} left to ship (ordered {}); cannot ship {q}", ol.qty),
            ));
        }
        doc_lines.push(Line::priced(*p, *q, if o.priced { ol.unit_price } else { Decimal::ZERO }));
    }
    let layers = store
        .with_books(|b| shipment_layers(b, &o.from_warehouse, &doc_lines))
        .map_err(|e| refuse(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    Ok(Draft {
        doc_type: DocType::TransferShip,
        date,
        operator,
        warehouse: o.from_warehouse,
        counterparty: None,
        memo: format!("调拨出库 HQ transfer order {id} to {}", o.to).chars().take(200).collect(),
        payment: None,
        lines: doc_lines,
        ext: DocExt {
            transfer: Some(TransferRef { order: id, priced: o.priced, shipment: None, last: false, settle: None }),
            layers,
            ..Default::default()
        },
    })
}

/// The draft of a receipt on order `id` (all that is left when `lines` is empty).
pub fn receipt_draft(
    store: &Store,
    id: OrderId,
    lines: &[(ProductCode, Decimal)],
    last: bool,
    excess: bool,
    date: BusinessDate,
    operator: OperatorId,
) -> Result<Draft, ApiError> {
    let goods = shipped(store, id).map_err(storage)?;
    let Some(latest) = goods.last() else {
        return Err(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("no shipment of transfer order {id} has reached this branch yet; receive it once it shows in GET /api/transfers"),
        ));
    };
    let done = progress(store, id);
    let shipped_of = |p: &ProductCode| -> (Decimal, Vec<Position>, Decimal) {
        let mut q = Decimal::ZERO;
        let mut layers = Vec::new();
        let mut price = Decimal::ZERO;
        for g in &goods {
            for l in g.lines.iter().filter(|l| l.product == *p) {
                q += l.qty;
                layers.extend(l.layers.iter().copied());
                price = l.unit_price;
            }
        }
        (q, layers, price)
    };
    let taken = |p: &ProductCode| done.get(p).map(|t| t.received.qty + t.settled.qty).unwrap_or_default();
    let mut products: Vec<ProductCode> = Vec::new();
    for g in &goods {
        for l in &g.lines {
            if !products.contains(&l.product) {
                products.push(l.product);
            }
        }
    }
    let wanted: Vec<(ProductCode, Decimal)> = if lines.is_empty() {
        products.iter().map(|p| (*p, shipped_of(p).0 - taken(p))).filter(|(_, q)| *q > Decimal::ZERO).collect()
    } else {
        lines.to_vec()
    };
    if wanted.is_empty() {
        return Err(refuse(StatusCode::UNPROCESSABLE_ENTITY, format!("what came of transfer order {id} is received in full already")));
    }
    let mut doc_lines = Vec::new();
    let mut layers = Vec::new();
    for (p, q) in &wanted {
        let (came, shipped_layers, price) = shipped_of(p);
        if came.is_zero() {
            return Err(refuse(StatusCode::UNPROCESSABLE_ENTITY, format!("no {p} was shipped on transfer order {id}")));
        }
        let left = came - taken(p);
        if *q > left && !excess {
            return Err(refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{left} of {p} came on transfer order {id} and is not received yet; cannot receive {q} (if you counted more than was shipped, say excess: true)"),
            ));
        }
        doc_lines.push(Line::priced(*p, *q, price));
        layers.extend(receipt_layers(&shipped_layers, taken(p), *q).into_iter().map(|l| CostLayer {
            product: *p,
            qty: l.qty,
            value: l.value,
            at_price: Decimal::ZERO,
        }));
    }
    Ok(Draft {
        doc_type: DocType::TransferReceive,
        date,
        operator,
        warehouse: latest.to_warehouse,
        counterparty: None,
        memo: format!("调拨入库 HQ transfer order {id} from {}", latest.from).chars().take(200).collect(),
        payment: None,
        lines: doc_lines,
        ext: DocExt {
            transfer: Some(TransferRef { order: id, priced: latest.priced, shipment: Some(latest.shipment.clone()), last, settle: None }),
            layers,
            ..Default::default()
        },
    })
}

/// Posts every settlement HQ ordered that is not posted yet; returns how many posted.
pub fn retry_settlements(store: &Store, date: BusinessDate) -> anyhow::Result<usize> {
    let tree = store.tree();
    let mut posted = 0;
    for item in tree.scan_prefix([b'v']) {
        let (k, v) = item?;
        let mut s: SettleOrder = record::open(&"v/settle order", &v)?;
        if s.posted_by.is_some() {
            continue;
        }
        let mut lines: Vec<Line> = Vec::new();
        for l in &s.layers {
            match lines.iter_mut().find(|x| x.product == l.product) {
                Some(x) => x.qty += l.qty,
                None => lines.push(Line::priced(l.product, l.qty, Decimal::ZERO)),
            }
        }
        // Goods that come back go into the warehouse they left; otherwise any of ours.
        let warehouse = match order(store, s.order)? {
            Some(o) if o.from == store.identity().branch => o.from_warehouse,
            _ => store.profile().warehouses.iter().next().copied().context("the branch has no warehouse in its profile")?,
        };
        let draft = Draft {
            doc_type: DocType::TransferSettle,
            date,
            operator: s.by,
            warehouse,
            counterparty: None,
            memo: format!("调拨差异处理 {} ordered by HQ: {}", s.settle.name(), s.why).chars().take(200).collect(),
            payment: None,
            lines,
            ext: DocExt {
                transfer: Some(TransferRef { order: s.order, priced: s.priced, shipment: None, last: false, settle: Some(s.settle) }),
                layers: s.layers.clone(),
                ..Default::default()
            },
        };
        match store.post(draft) {
            Ok(p) => {
                s.posted_by = Some(p.number);
                tree.insert(k, record::seal(&s))?;
                store.flush_durable()?;
                posted += 1;
            }
            Err(e) => tracing::warn!(order = s.order, reason = %e, "settlement ordered by HQ cannot post yet"),
        }
    }
    Ok(posted)
}

/// What the branch shows: orders to ship with what is left, goods coming with what is
/// left to receive, and settlements HQ ordered.
pub fn view(store: &Store) -> anyhow::Result<Value> {
    let me = store.identity().branch;
    let mut to_ship = Vec::new();
    for o in orders(store)?.into_iter().filter(|o| o.from == me) {
        let done = progress(store, o.id);
        let lines: Vec<Value> = o
            .lines
            .iter()
            .map(|l| {
                let shipped = done.get(&l.product).map(|t| t.shipped.qty).unwrap_or_default();
                json!({ "product": l.product, "ordered": l.qty.to_string(), "shipped": shipped.to_string(), "left": (l.qty - shipped).to_string() })
            })
            .collect();
        to_ship.push(json!({ "order": o.id, "to": o.to, "from_warehouse": o.from_warehouse, "priced": o.priced, "expected": o.expected.map(|d| d.to_string()), "by": o.by, "memo": o.memo, "lines": lines }));
    }
    let mut incoming = Vec::new();
    for id in incoming_orders(store)? {
        let goods = shipped(store, id)?;
        let done = progress(store, id);
        let mut per: BTreeMap<ProductCode, Decimal> = BTreeMap::new();
        for g in &goods {
            for l in &g.lines {
                *per.entry(l.product).or_default() += l.qty;
            }
        }
        let lines: Vec<Value> = per
            .iter()
            .map(|(p, q)| {
                let got = done.get(p).map(|t| t.received.qty).unwrap_or_default();
                json!({ "product": p, "shipped": q.to_string(), "received": got.to_string(), "left": (*q - got).to_string() })
            })
            .collect();
        let from = goods.first().map(|g| g.from);
        let shipments: Vec<String> = goods.iter().map(|g| g.shipment.to_string()).collect();
        incoming.push(json!({ "order": id, "from": from, "shipments": shipments, "lines": lines }));
    }
    let mut settlements = Vec::new();
    for item in store.tree().scan_prefix([b'v']) {
        let s: SettleOrder = record::open(&"v/settle order", &item?.1)?;
        settlements.push(json!({ "order": s.order, "settle": s.settle.name(), "by": s.by, "why": s.why, "posted_by": s.posted_by }));
    }
    Ok(json!({ "to_ship": to_ship, "incoming": incoming, "settlements": settlements }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StepLine {
    product: ProductCode,
    #[serde(with = "protocol::decimal_serde")]
    qty: Decimal,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct StepRequest {
    /// The lines; all that is left when absent.
    #[serde(default)]
    lines: Vec<StepLine>,
    /// The business date; today when absent.
    #[serde(default)]
    date: Option<BusinessDate>,
    /// A receipt: nothing more will arrive for this order.
    #[serde(default)]
    last: bool,
    /// A receipt: more was counted than shipped.
    #[serde(default)]
    excess: bool,
}

fn step_request(body: &[u8]) -> Result<StepRequest, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(StepRequest::default());
    }
    edge::api::decode(body).map_err(|r| ApiError(r.status, r.error))
}

/// `GET /api/transfers`.
pub(crate) async fn list(State(shared): State<Arc<Shared>>) -> Result<Json<Value>, ApiError> {
    let sh = shared.clone();
    tokio::task::spawn_blocking(move || view(&sh.store)).await.map_err(|e| storage(e.into()))?.map(Json).map_err(storage)
}

/// The step a request asks for.
#[derive(Clone, Copy)]
enum Step {
    Ship,
    Receive,
}

async fn step(shared: Arc<Shared>, session: Session, id: OrderId, body: &[u8], what: Step) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req = step_request(body)?;
    let date = req.date.unwrap_or_else(|| shared.store.today().0);
    let lines: Vec<(ProductCode, Decimal)> = req.lines.iter().map(|l| (l.product, l.qty)).collect();
    let me = session.person.login;
    let draft = match what {
        Step::Ship => shipment_draft(&shared.store, id, &lines, date, me)?,
        Step::Receive => receipt_draft(&shared.store, id, &lines, req.last, req.excess, date, me)?,
    };
    crate::http::post_draft(&shared, draft).await
}

/// `POST /api/transfers/{order}/ship` `{"lines": [{"product", "qty"}]}` (all that is left
/// when empty): posts the shipment (调拨出库) as the signed-in person.
pub(crate) async fn ship(
    State(shared): State<Arc<Shared>>,
    Extension(session): Extension<Session>,
    ApiPath(id): ApiPath<OrderId>,
    ApiBytes(body): ApiBytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    step(shared, session, id, &body, Step::Ship).await
}

/// `POST /api/transfers/{order}/receive` `{"lines": [...], "last": bool, "excess": bool}`:
/// posts the receipt (调拨入库) at the shipped cost.
pub(crate) async fn receive(
    State(shared): State<Arc<Shared>>,
    Extension(session): Extension<Session>,
    ApiPath(id): ApiPath<OrderId>,
    ApiBytes(body): ApiBytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    step(shared, session, id, &body, Step::Receive).await
}
