//! Cross-branch transfers on disk at HQ (`protocol::transfer`): the orders auditors
//! issued (each written with the down message that carries it to the shipper, in one
//! write), the shipments HQ forwarded to receivers (written in the apply's commit write
//! with the down message, so a shipment is forwarded exactly once), and the checks a
//! transfer step gets on merge: a step HQ never ordered, from or into the wrong branch or
//! warehouse, more shipped than ordered, or a receipt whose cost is not the shipment's,
//! is quarantined with the reason.
//!
//! It also keeps, per order, the step documents HQ applied (`StepRecord`, written in the
//! apply's commit write), the stores' replenishment requests (要货, `Request`), and the
//! settlements auditors ordered, so a settlement a branch posts is checked against one.
//!
//! Keys: `T` `o` id(be) → `TransferOrder`; `T` `n` → next id; `T` `s` id(be) n(be) →
//! `ShippedGoods` as forwarded; `T` `d` id(be) n(be) → `StepRecord`; `T` `r` branch seq(be)
//! → `Request`; `T` `x` id(be) n(be) → `SettleRecord`. Must not touch the books; the state of an order
//! is read off the branches' books (`Books::transit`).

use std::collections::BTreeMap;

use protocol::books::{Books, Position};
use protocol::codes::BranchCode;
use protocol::document::{DocType, Document};
use protocol::down::DownBody;
use protocol::record;
use protocol::transfer::{receipt_layers, OrderId, ShippedGoods, TransferOrder};
use protocol::Decimal;

use super::down::DownChange;
use super::error::{Result, StoreError};
use super::keys::{key, open_rec};
use super::state::State;
use super::Store;

/// Transfers in memory.
#[derive(Default)]
pub struct TransferState {
    pub orders: BTreeMap<OrderId, TransferOrder>,
    /// Per order, the shipments forwarded to the receiver, in the order forwarded.
    pub forwarded: BTreeMap<OrderId, Vec<ShippedGoods>>,
    /// Per order, the step documents applied, in the order applied.
    pub steps: BTreeMap<OrderId, Vec<StepRecord>>,
    /// Stores' replenishment requests by (branch, branch seq).
    pub requests: BTreeMap<(BranchCode, u64), Request>,
    /// Per order, the settlements auditors ordered.
    pub settlements: BTreeMap<OrderId, Vec<SettleRecord>>,
}

/// A transfer step document HQ applied.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct StepRecord {
    pub branch: BranchCode,
    pub seq: u64,
    pub number: protocol::document::DocNumber,
    pub doc_type: DocType,
    pub date: protocol::date::BusinessDate,
    /// Quarantined on merge (the reason), yet applied.
    pub quarantined: Option<String>,
}

/// A store's replenishment request (调拨申请) and the order HQ made of it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Request {
    pub branch: BranchCode,
    pub seq: u64,
    pub number: protocol::document::DocNumber,
    pub warehouse: protocol::codes::WarehouseCode,
    pub date: protocol::date::BusinessDate,
    pub lines: Vec<(protocol::codes::ProductCode, Decimal)>,
    pub memo: String,
    pub order: Option<OrderId>,
}

/// A settlement an auditor ordered; `posted` once the branch's document matched it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SettleRecord {
    pub branch: BranchCode,
    pub settle: protocol::transfer::Settle,
    pub layers: Vec<protocol::transfer::CostLayer>,
    pub by: protocol::codes::OperatorId,
    pub down_seq: u64,
    pub posted: Option<protocol::document::DocNumber>,
}

fn step_key(id: OrderId, n: usize) -> Vec<u8> {
    key(b'T', &[b"d", &id.to_be_bytes(), &(n as u64).to_be_bytes()])
}

fn request_key(branch: &BranchCode, seq: u64) -> Vec<u8> {
    key(b'T', &[b"r", branch.as_str().as_bytes(), &seq.to_be_bytes()])
}

fn settle_key(id: OrderId, n: usize) -> Vec<u8> {
    key(b'T', &[b"x", &id.to_be_bytes(), &(n as u64).to_be_bytes()])
}

/// What one apply's documents did to transfers, staged in its commit write.
#[derive(Default)]
pub(crate) struct TransferFacts {
    /// Applied shipments, to forward.
    pub shipments: Vec<ShippedGoods>,
    pub steps: Vec<(OrderId, StepRecord)>,
    pub requests: Vec<Request>,
    /// Settlements posted: (order, index in `settlements`, the document).
    pub settled: Vec<(OrderId, usize, protocol::document::DocNumber)>,
}

impl TransferFacts {
    pub(crate) fn is_empty(&self) -> bool {
        self.shipments.is_empty() && self.steps.is_empty() && self.requests.is_empty() && self.settled.is_empty()
    }
}

fn order_key(id: OrderId) -> Vec<u8> {
    key(b'T', &[b"o", &id.to_be_bytes()])
}

fn next_key() -> Vec<u8> {
    key(b'T', &[b"n"])
}

fn forwarded_key(id: OrderId, n: usize) -> Vec<u8> {
    key(b'T', &[b"s", &id.to_be_bytes(), &(n as u64).to_be_bytes()])
}

/// Shipments forwarded and transfer facts recorded, staged in an apply's commit write;
/// installed in memory once it is durable.
pub(crate) struct Forwards {
    changes: Vec<DownChange>,
    forwarded: Vec<ShippedGoods>,
    steps: Vec<(OrderId, StepRecord)>,
    requests: Vec<Request>,
    settled: Vec<(OrderId, usize, protocol::document::DocNumber)>,
}

impl Forwards {
    pub(crate) fn install(self, st: &mut State) {
        for c in self.changes {
            c.install(st);
        }
        for g in self.forwarded {
            st.transfers.forwarded.entry(g.order).or_default().push(g);
        }
        for (id, s) in self.steps {
            st.transfers.steps.entry(id).or_default().push(s);
        }
        for r in self.requests {
            st.transfers.requests.insert((r.branch, r.seq), r);
        }
        for (id, i, number) in self.settled {
            if let Some(s) = st.transfers.settlements.get_mut(&id).and_then(|v| v.get_mut(i)) {
                s.posted = Some(number);
            }
        }
    }
}

impl Store {
    pub(crate) fn load_transfers(&self, st: &mut State) -> Result<()> {
        for item in self.tree.scan_prefix(key(b'T', &[b"o", b""])) {
            let (k, v) = item?;
            let o: TransferOrder = open_rec(&k, &v)?;
            st.transfers.orders.insert(o.id, o);
        }
        for item in self.tree.scan_prefix(key(b'T', &[b"s", b""])) {
            let (k, v) = item?;
            let g: ShippedGoods = open_rec(&k, &v)?;
            st.transfers.forwarded.entry(g.order).or_default().push(g);
        }
        for item in self.tree.scan_prefix(key(b'T', &[b"d", b""])) {
            let (k, v) = item?;
            let id = order_of_key(&k)?;
            st.transfers.steps.entry(id).or_default().push(open_rec(&k, &v)?);
        }
        for item in self.tree.scan_prefix(key(b'T', &[b"x", b""])) {
            let (k, v) = item?;
            let id = order_of_key(&k)?;
            st.transfers.settlements.entry(id).or_default().push(open_rec(&k, &v)?);
        }
        for item in self.tree.scan_prefix(key(b'T', &[b"r", b""])) {
            let (k, v) = item?;
            let r: Request = open_rec(&k, &v)?;
            st.transfers.requests.insert((r.branch, r.seq), r);
        }
        Ok(())
    }

    /// Issues `order` (its id is assigned here): the order record and the down message to
    /// the shipper in one durable write. Returns the order as issued.
    pub fn issue_transfer(&self, st: &mut State, mut order: TransferOrder, now_unix: u64) -> Result<TransferOrder> {
        for b in [&order.from, &order.to] {
            if !st.branches.contains_key(b) {
                return Err(StoreError::NoBranch(*b));
            }
        }
        let owns = |b: &BranchCode, w| st.branches.get(b).is_some_and(|r| r.warehouses.contains(w));
        if !owns(&order.from, &order.from_warehouse) {
            return Err(StoreError::Transfer(format!("warehouse {} is not branch {}'s", order.from_warehouse, order.from)));
        }
        if !owns(&order.to, &order.to_warehouse) {
            return Err(StoreError::Transfer(format!("warehouse {} is not branch {}'s", order.to_warehouse, order.to)));
        }
        if let Some(l) = order.lines.iter().find(|l| !st.products.contains_key(&l.product)) {
            return Err(StoreError::Transfer(format!("unknown product {}: add it to the catalog first", l.product)));
        }
        let id = match self.tree.get(next_key())? {
            Some(v) => open_rec::<u64>(&next_key(), &v)?,
            None => 1,
        };
        order.id = id;
        order.issued_unix = now_unix;
        order.check().map_err(|e| StoreError::Transfer(e.to_string()))?;
        let mut batch = sled::Batch::default();
        let change = self.stage_down(st, &order.from, vec![DownBody::TransferOrder(order.clone())], now_unix, &mut batch)?;
        batch.insert(order_key(id), record::seal(&order));
        batch.insert(next_key(), record::seal(&(id + 1)));
        self.tree.apply_batch(batch)?;
        self.flush()?;
        change.install(st);
        st.transfers.orders.insert(id, order.clone());
        Ok(order)
    }

    /// Queues a settlement order (what HQ decided about a discrepancy) to the branch that
    /// posts it, with its record (checked when the branch's document arrives); one
    /// durable write. Returns the down message's seq.
    pub fn order_settlement(&self, st: &mut State, branch: &BranchCode, body: DownBody, now_unix: u64) -> Result<u64> {
        let DownBody::TransferSettle { order, settle, layers, by, .. } = &body else {
            return Err(StoreError::Transfer("a settlement order carries a TransferSettle".into()));
        };
        let (order, settle, layers, by) = (*order, *settle, layers.clone(), *by);
        let mut batch = sled::Batch::default();
        let change = self.stage_down(st, branch, vec![body], now_unix, &mut batch)?;
        let down_seq = change.last_seq();
        let rec = SettleRecord { branch: *branch, settle, layers, by, down_seq, posted: None };
        let n = st.transfers.settlements.get(&order).map_or(0, Vec::len);
        batch.insert(settle_key(order, n), record::seal(&rec));
        self.tree.apply_batch(batch)?;
        self.flush()?;
        change.install(st);
        st.transfers.settlements.entry(order).or_default().push(rec);
        Ok(down_seq)
    }

    /// Confirms a store's replenishment request as a transfer order (`order`'s `to` and
    /// `to_warehouse` are the request's; its lines may differ: HQ may change quantities).
    pub fn confirm_request(
        &self,
        st: &mut State,
        branch: &BranchCode,
        seq: u64,
        mut order: TransferOrder,
        now_unix: u64,
    ) -> Result<TransferOrder> {
        let mut req = st
            .transfers
            .requests
            .get(&(*branch, seq))
            .cloned()
            .ok_or_else(|| StoreError::Transfer(format!("no replenishment request {seq} of {branch}")))?;
        if let Some(id) = req.order {
            return Err(StoreError::Transfer(format!("request {} is confirmed already as transfer order {id}", req.number)));
        }
        order.to = req.branch;
        order.to_warehouse = req.warehouse;
        order.request = Some((req.branch, req.number.clone()));
        let issued = self.issue_transfer(st, order, now_unix)?;
        req.order = Some(issued.id);
        self.tree.insert(request_key(branch, seq), record::seal(&req))?;
        self.flush()?;
        st.transfers.requests.insert((*branch, seq), req);
        Ok(issued)
    }

    /// Stages the down messages forwarding `shipments` (applied shipments of one batch) to
    /// their receivers, and their records, into the apply's commit write.
    pub(crate) fn stage_transfer_facts(
        &self,
        st: &State,
        facts: TransferFacts,
        now_unix: u64,
        batch: &mut sled::Batch,
    ) -> Result<Forwards> {
        let TransferFacts { shipments, steps, requests, settled } = facts;
        let mut by_receiver: BTreeMap<BranchCode, Vec<ShippedGoods>> = BTreeMap::new();
        for g in shipments {
            let to =
                st.transfers.orders.get(&g.order).map(|o| o.to).ok_or_else(|| StoreError::Transfer(format!("no order {}", g.order)))?;
            by_receiver.entry(to).or_default().push(g);
        }
        let mut out = Forwards { changes: Vec::new(), forwarded: Vec::new(), steps: Vec::new(), requests: Vec::new(), settled: Vec::new() };
        let mut step_counts: BTreeMap<OrderId, usize> = BTreeMap::new();
        for (id, s) in steps {
            let n = step_counts.entry(id).or_insert_with(|| st.transfers.steps.get(&id).map_or(0, Vec::len));
            batch.insert(step_key(id, *n), record::seal(&s));
            *n += 1;
            out.steps.push((id, s));
        }
        for r in requests {
            batch.insert(request_key(&r.branch, r.seq), record::seal(&r));
            out.requests.push(r);
        }
        for (id, i, number) in settled {
            if let Some(mut rec) = st.transfers.settlements.get(&id).and_then(|v| v.get(i)).cloned() {
                rec.posted = Some(number.clone());
                batch.insert(settle_key(id, i), record::seal(&rec));
            }
            out.settled.push((id, i, number));
        }
        let mut counts: BTreeMap<OrderId, usize> = BTreeMap::new();
        for (to, goods) in by_receiver {
            let bodies = goods.iter().cloned().map(DownBody::TransferShipped).collect();
            out.changes.push(self.stage_down(st, &to, bodies, now_unix, batch)?);
            for g in goods {
                let n = counts.entry(g.order).or_insert_with(|| st.transfers.forwarded.get(&g.order).map_or(0, Vec::len));
                batch.insert(forwarded_key(g.order, *n), record::seal(&g));
                *n += 1;
                out.forwarded.push(g);
            }
        }
        Ok(out)
    }
}

fn order_of_key(k: &[u8]) -> Result<OrderId> {
    // `T` `x` 0 id(8) 0 n(8)
    k.get(3..11).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes).ok_or_else(|| StoreError::Damaged("short transfer key".into()))
}

/// Checks a transfer step from `branch` against the order it names and, for a receipt,
/// the shipments HQ forwarded; `books` are the branch's books before it. `Ok(None)` for
/// any other document; for a settlement, `Ok(Some(i))`: the ordered settlement it posts.
pub(crate) fn check_step(
    t: &TransferState,
    branch: &BranchCode,
    doc: &Document,
    books: &Books,
) -> std::result::Result<Option<usize>, String> {
    let h = &doc.header;
    if !matches!(h.doc_type, DocType::TransferShip | DocType::TransferReceive | DocType::TransferSettle) {
        return Ok(None);
    }
    let Some(r) = &h.ext.transfer else { return Err("names no transfer order".into()) };
    let Some(o) = t.orders.get(&r.order) else { return Err(format!("names transfer order {}, which HQ never issued", r.order)) };
    if r.priced != o.priced {
        return Err(format!(
            "says priced = {}, but transfer order {} is {}",
            r.priced,
            o.id,
            if o.priced { "at a transfer price" } else { "at cost" }
        ));
    }
    let done = |p| books.transit().get(&(o.id, p)).copied().unwrap_or_default();
    match h.doc_type {
        DocType::TransferShip => {
            if *branch != o.from || h.warehouse != o.from_warehouse {
                return Err(format!(
                    "transfer order {} ships from {} of {}, not {} of {branch}",
                    o.id, o.from_warehouse, o.from, h.warehouse
                ));
            }
            let mut shipping: BTreeMap<_, Decimal> = BTreeMap::new();
            for l in &doc.lines {
                let Some(ol) = o.line(&l.product) else {
                    return Err(format!("ships {}, which is not on transfer order {}", l.product, o.id));
                };
                if o.priced && l.unit_price != ol.unit_price {
                    return Err(format!("ships {} at {}, transfer order {} says {}", l.product, l.unit_price, o.id, ol.unit_price));
                }
                *shipping.entry(l.product).or_default() += l.qty;
            }
            for (p, q) in shipping {
                let ordered = o.line(&p).map(|l| l.qty).unwrap_or_default();
                let before = done(p).shipped.qty;
                if before + q > ordered {
                    return Err(format!("ships {q} of {p} on transfer order {} after {before}, more than the {ordered} ordered", o.id));
                }
            }
            Ok(None)
        }
        DocType::TransferReceive => {
            if *branch != o.to || h.warehouse != o.to_warehouse {
                return Err(format!(
                    "transfer order {} is received into {} of {}, not {} of {branch}",
                    o.id, o.to_warehouse, o.to, h.warehouse
                ));
            }
            let forwarded = t.forwarded.get(&o.id).map(Vec::as_slice).unwrap_or_default();
            let named = r.shipment.as_ref();
            let Some(upto) = forwarded.iter().position(|g| Some(&g.shipment) == named) else {
                return Err(format!(
                    "receives shipment {}, which HQ never forwarded to {branch}",
                    named.map(ToString::to_string).unwrap_or_default()
                ));
            };
            let known = &forwarded[..=upto];
            let products: std::collections::BTreeSet<_> = doc.lines.iter().map(|l| l.product).collect();
            for p in products {
                let qty: Decimal = doc.lines.iter().filter(|l| l.product == p).map(|l| l.qty).sum();
                let shipped: Vec<Position> =
                    known.iter().flat_map(|g| g.lines.iter().filter(|l| l.product == p).flat_map(|l| l.layers.iter().copied())).collect();
                let before = done(p);
                let expected = receipt_layers(&shipped, before.received.qty + before.settled.qty, qty);
                let given: Vec<Position> =
                    h.ext.layers.iter().filter(|c| c.product == p).map(|c| Position { qty: c.qty, value: c.value }).collect();
                if given != expected {
                    return Err(format!(
                        "receives {p} at a cost that is not the shipment's (the units shipped, in order): {given:?} vs {expected:?}"
                    ));
                }
            }
            Ok(None)
        }
        _ => {
            let by_shipper = r.settle.is_some_and(|s| s.by_shipper());
            let poster = if by_shipper { o.from } else { o.to };
            if *branch != poster {
                return Err(format!("a settlement of transfer order {} is posted by {poster}, not {branch}", o.id));
            }
            if r.settle == Some(protocol::transfer::Settle::ReturnToShipper) && h.warehouse != o.from_warehouse {
                return Err(format!("goods of transfer order {} come back into {}, not {}", o.id, o.from_warehouse, h.warehouse));
            }
            // It posts exactly a settlement an auditor ordered, one not posted yet.
            let ordered = t.settlements.get(&o.id).map(Vec::as_slice).unwrap_or_default();
            ordered
                .iter()
                .position(|s| s.posted.is_none() && s.branch == *branch && Some(s.settle) == r.settle && s.layers == h.ext.layers)
                .map(Some)
                .ok_or_else(|| format!("settles transfer order {} in a way no auditor ordered (or ordered once and posted already)", o.id))
        }
    }
}
