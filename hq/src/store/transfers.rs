//! Cross-branch transfers on disk at HQ (`protocol::transfer`): the orders auditors
//! issued (each written with the down message that carries it to the shipper, in one
//! write), the shipments HQ forwarded to receivers (written in the apply's commit write
//! with the down message, so a shipment is forwarded exactly once), and the checks a
//! transfer step gets on merge: a step HQ never ordered, from or into the wrong branch or
//! warehouse, more shipped than ordered, or a receipt whose cost is not the shipment's,
//! is quarantined with the reason.
//!
//! Keys: `T` `o` id(be) → `TransferOrder`; `T` `n` → next id; `T` `s` id(be) down-seq
//! order → `ShippedGoods` as forwarded. Must not touch the books; the state of an order
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

/// Shipments to forward, staged in an apply's commit write.
pub(crate) struct Forwards {
    changes: Vec<DownChange>,
    forwarded: Vec<ShippedGoods>,
}

impl Forwards {
    pub(crate) fn install(self, st: &mut State) {
        for c in self.changes {
            c.install(st);
        }
        for g in self.forwarded {
            st.transfers.forwarded.entry(g.order).or_default().push(g);
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
    /// posts it; one durable write.
    pub fn order_settlement(&self, st: &mut State, branch: &BranchCode, body: DownBody, now_unix: u64) -> Result<u64> {
        self.enqueue_down(st, branch, vec![body], now_unix)
    }

    /// Stages the down messages forwarding `shipments` (applied shipments of one batch) to
    /// their receivers, and their records, into the apply's commit write.
    pub(crate) fn stage_forwards(
        &self,
        st: &State,
        shipments: Vec<ShippedGoods>,
        now_unix: u64,
        batch: &mut sled::Batch,
    ) -> Result<Forwards> {
        let mut by_receiver: BTreeMap<BranchCode, Vec<ShippedGoods>> = BTreeMap::new();
        for g in shipments {
            let to =
                st.transfers.orders.get(&g.order).map(|o| o.to).ok_or_else(|| StoreError::Transfer(format!("no order {}", g.order)))?;
            by_receiver.entry(to).or_default().push(g);
        }
        let mut out = Forwards { changes: Vec::new(), forwarded: Vec::new() };
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

/// Checks a transfer step from `branch` against the order it names and, for a receipt,
/// the shipments HQ forwarded; `books` are the branch's books before it. `Ok` for any
/// other document.
pub(crate) fn check_step(t: &TransferState, branch: &BranchCode, doc: &Document, books: &Books) -> std::result::Result<(), String> {
    let h = &doc.header;
    if !matches!(h.doc_type, DocType::TransferShip | DocType::TransferReceive | DocType::TransferSettle) {
        return Ok(());
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
            Ok(())
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
            let mut products: Vec<_> = doc.lines.iter().map(|l| l.product).collect();
            products.dedup();
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
            Ok(())
        }
        _ => {
            let by_shipper = r.settle.is_some_and(|s| s.by_shipper());
            let poster = if by_shipper { o.from } else { o.to };
            if *branch != poster {
                return Err(format!("a settlement of transfer order {} is posted by {poster}, not {branch}", o.id));
            }
            Ok(())
        }
    }
}
