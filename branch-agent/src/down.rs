//! The branch's end of the signed down channel: verifies each message from HQ
//! (`protocol::down::DownReceiver`), stores it as a notice together with its effect and
//! the new `applied_seq` in ONE sled batch, flushes, and only then lets the forwarder ack.
//! A forged, replayed or out-of-order message is refused with a reason and changes
//! nothing. A `Reverse` order is kept as a pending order until the branch has posted the
//! red-letter reversal itself (numbered and synced like any document); when it cannot yet
//! (later documents depend on the stock), what blocks it is shown with the notices and
//! the order is retried after each new post.
//!
//! A `Reopen` order (反结账) is kept the same way, as a [`ReopenOrder`], until the branch
//! has posted the reopen document of that month itself.
//! An `Approval` decision is stored for its draft (`crate::drafts`) in the same write.
//!
//! Keys (in the branch store's tree): `m`down_applied → u64; `m`hq_down_key → [u8; 32];
//! `w` seq(be) → [`Notice`]; `o` branch seq(be) → [`Order`]; `p` down seq(be) →
//! [`ReopenOrder`].
//! Must not touch the journal except through `Store::post`/`Store::entry`, nor the wire.

use std::collections::BTreeMap;
use std::sync::Mutex;

use anyhow::Context;
use protocol::codes::OperatorId;
use protocol::down::{DownBody, DownError, DownReceiver, ResolutionOrder, SignedDown};
use protocol::record;
use protocol::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::store::Store;

/// Most notices `GET /api/notices` returns (the newest).
pub const NOTICES_SHOWN_MAX: usize = 500;

const APPLIED_KEY: &[u8] = b"mdown_applied";
const HQ_KEY_KEY: &[u8] = b"mhq_down_key";

fn notice_key(seq: u64) -> [u8; 9] {
    let mut k = [b'w'; 9];
    k[1..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn order_key(branch_seq: u64) -> [u8; 9] {
    let mut k = [b'o'; 9];
    k[1..].copy_from_slice(&branch_seq.to_be_bytes());
    k
}

/// What HQ said, as the branch keeps and shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Notice {
    pub down_seq: u64,
    pub issued_unix: u64,
    /// `rejection`, `flag`, `accept`, `reverse`, `scope`, `approval`.
    pub kind: String,
    pub branch_seq: Option<u64>,
    pub doc_number: Option<String>,
    pub text: String,
}

/// A reversal HQ ordered; `reversed_by` is set once the branch posted it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Order {
    pub down_seq: u64,
    pub branch_seq: u64,
    pub doc_number: String,
    pub by: OperatorId,
    pub reversed_by: Option<String>,
}

fn reopen_key(down_seq: u64) -> [u8; 9] {
    let mut k = [b'p'; 9];
    k[1..].copy_from_slice(&down_seq.to_be_bytes());
    k
}

/// A month reopen (反结账) HQ ordered; `posted_by` is set once the branch posted it (or
/// found the month open already).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReopenOrder {
    pub down_seq: u64,
    pub period: protocol::document::Period,
    pub by: OperatorId,
    pub why: String,
    pub posted_by: Option<String>,
}

/// What became of a message from HQ.
#[derive(Debug)]
pub enum Received {
    /// Stored durably: ack up to `seq`.
    Applied { seq: u64 },
    /// Already applied (HQ resent it after a lost ack): ack what is applied again.
    Replayed { applied: u64 },
}

pub struct Down {
    receiver: Mutex<DownReceiver>,
    hq_key: Option<VerifyingKey>,
    /// Why each pending order (by branch seq) could not post yet.
    blockers: Mutex<BTreeMap<u64, String>>,
    /// Why each pending reopen order (by down seq) could not post yet.
    reopen_blockers: Mutex<BTreeMap<u64, String>>,
    /// The last refusal, for `/api/notices`.
    last_refusal: Mutex<Option<String>>,
}

/// Stores HQ's down-channel key given at enrollment (the store is closed again after).
pub fn store_hq_key(store_path: &std::path::Path, key: [u8; 32]) -> anyhow::Result<()> {
    let db = crate::store::open_db(store_path)?;
    let tree = db.open_tree("branch")?;
    tree.insert(HQ_KEY_KEY, record::seal(&key))?;
    db.flush()?;
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    edge::lock(m)
}

impl Down {
    pub fn open(store: &Store) -> anyhow::Result<Down> {
        let tree = store.tree();
        let applied: u64 = match tree.get(APPLIED_KEY)? {
            Some(v) => record::open(&"m/down_applied", &v)?,
            None => 0,
        };
        let hq_key = match tree.get(HQ_KEY_KEY)? {
            Some(v) => {
                let bytes: [u8; 32] = record::open(&"m/hq_down_key", &v)?;
                // An all-zero key is what an HQ without a down key sends: nothing verifies.
                VerifyingKey::from_bytes(&bytes).ok().filter(|_| bytes != [0; 32])
            }
            None => None,
        };
        Ok(Down {
            receiver: Mutex::new(DownReceiver::new(store.identity().branch, applied)),
            hq_key,
            blockers: Mutex::new(BTreeMap::new()),
            reopen_blockers: Mutex::new(BTreeMap::new()),
            last_refusal: Mutex::new(None),
        })
    }

    pub fn applied_seq(&self) -> u64 {
        lock(&self.receiver).applied_seq()
    }

    /// Verifies, stores and applies one message from HQ. A refusal changes nothing and
    /// is kept as the last refusal.
    pub fn receive(&self, store: &Store, bytes: &[u8]) -> anyhow::Result<Received> {
        let result = self.receive_inner(store, bytes);
        if let Err(e) = &result {
            *lock(&self.last_refusal) = Some(format!("{e:#}"));
        }
        result
    }

    fn receive_inner(&self, store: &Store, bytes: &[u8]) -> anyhow::Result<Received> {
        let key = self.hq_key.context("no HQ down-channel key stored at enrollment; down messages cannot be verified")?;
        let signed = SignedDown::from_bytes(bytes)?;
        let mut receiver = lock(&self.receiver);
        let msg = match receiver.receive(&signed, &key) {
            Ok(m) => m,
            Err(DownError::Replayed { applied, .. }) => return Ok(Received::Replayed { applied }),
            Err(e) => return Err(e.into()),
        };
        let (notice, order) = describe(&msg.body, msg.seq, msg.issued_unix);
        let tree = store.tree();
        let mut batch = sled::Batch::default();
        batch.insert(&notice_key(msg.seq), record::seal(&notice));
        if let Some(o) = &order {
            // A second order for the same document does not undo a reversal already posted.
            if tree.get(order_key(o.branch_seq))?.is_none() {
                batch.insert(&order_key(o.branch_seq), record::seal(o));
            }
        }
        if let DownBody::Reopen { period, by, why } = &msg.body {
            let order = ReopenOrder { down_seq: msg.seq, period: *period, by: *by, why: why.clone(), posted_by: None };
            batch.insert(&reopen_key(msg.seq), record::seal(&order));
        }
        match &msg.body {
            DownBody::TransferOrder(o) => {
                batch.insert(&crate::transfers::order_key(o.id), record::seal(o));
            }
            DownBody::TransferShipped(g) => {
                batch.insert(&crate::transfers::shipped_key(g.order, msg.seq), record::seal(g));
            }
            DownBody::TransferSettle { order, settle, priced, layers, by, why } => {
                let s = crate::transfers::SettleOrder {
                    down_seq: msg.seq,
                    order: *order,
                    settle: *settle,
                    priced: *priced,
                    layers: layers.clone(),
                    by: *by,
                    why: why.clone(),
                    posted_by: None,
                };
                batch.insert(&crate::transfers::settle_key(msg.seq), record::seal(&s));
            }
            _ => {}
        }
        if let DownBody::Approval { draft_id, approved, by, note } = &msg.body {
            let decision = crate::drafts::DraftDecision { approved: *approved, by: *by, note: note.clone(), down_seq: msg.seq };
            crate::drafts::stage_decision(tree, &mut batch, *draft_id, decision)?;
        }
        batch.insert(APPLIED_KEY, record::seal(&msg.seq));
        tree.apply_batch(batch)?;
        store.flush_durable()?;
        receiver.applied(msg.seq)?;
        Ok(Received::Applied { seq: msg.seq })
    }

    /// Posts the reversal of every pending order that can post now; keeps why the others
    /// cannot. Returns how many were posted.
    pub fn retry_orders(&self, store: &Store, date: protocol::date::BusinessDate) -> anyhow::Result<usize> {
        let tree = store.tree();
        let mut posted = 0;
        for item in tree.scan_prefix([b'o']) {
            let (k, v) = item?;
            let mut order: Order = record::open(&"o/order", &v)?;
            if order.reversed_by.is_some() {
                continue;
            }
            match self.reverse_one(store, &order, date) {
                Ok(number) => {
                    order.reversed_by = Some(number);
                    tree.insert(k, record::seal(&order))?;
                    store.flush_durable()?;
                    lock(&self.blockers).remove(&order.branch_seq);
                    posted += 1;
                }
                Err(why) => {
                    tracing::warn!(doc = %order.doc_number, reason = %why, "reversal ordered by HQ cannot post yet");
                    lock(&self.blockers).insert(order.branch_seq, why);
                }
            }
        }
        for item in tree.scan_prefix([b'p']) {
            let (k, v) = item?;
            let mut order: ReopenOrder = record::open(&"p/reopen", &v)?;
            if order.posted_by.is_some() {
                continue;
            }
            match reopen_one(store, &order, date) {
                Ok(number) => {
                    order.posted_by = Some(number);
                    tree.insert(k, record::seal(&order))?;
                    store.flush_durable()?;
                    lock(&self.reopen_blockers).remove(&order.down_seq);
                    posted += 1;
                }
                Err(why) => {
                    tracing::warn!(period = %order.period.label(), reason = %why, "month reopen ordered by HQ cannot post yet");
                    lock(&self.reopen_blockers).insert(order.down_seq, why);
                }
            }
        }
        posted += crate::transfers::retry_settlements(store, date)?;
        Ok(posted)
    }

    /// The reopen orders with their state and what blocks the pending ones.
    fn reopens_view(&self, store: &Store) -> anyhow::Result<Vec<serde_json::Value>> {
        let blockers = lock(&self.reopen_blockers).clone();
        let mut out = Vec::new();
        for item in store.tree().scan_prefix([b'p']) {
            let (_, v) = item?;
            let o: ReopenOrder = record::open(&"p/reopen", &v)?;
            let state = if o.posted_by.is_some() { "done" } else { "pending" };
            out.push(
                serde_json::json!({ "order": o, "period": o.period.label(), "state": state, "blocked_by": blockers.get(&o.down_seq) }),
            );
        }
        Ok(out)
    }

    /// The reversal's number: one already in the journal (a crash after the post, before
    /// the order was marked), else a fresh post.
    fn reverse_one(&self, store: &Store, order: &Order, date: protocol::date::BusinessDate) -> Result<String, String> {
        let entry = store.entry(order.branch_seq).map_err(|e| format!("{e:#}"))?.ok_or("the document is not in this journal")?;
        let original = entry.doc.header.number.clone();
        if original.to_string() != order.doc_number {
            return Err(format!("entry {} is {original}, HQ named {}", order.branch_seq, order.doc_number));
        }
        for seq in order.branch_seq + 1..=store.head().seq {
            if let Some(e) = store.entry(seq).map_err(|e| format!("{e:#}"))? {
                if e.doc.header.ext.reverses.as_ref() == Some(&original) {
                    return Ok(e.doc.header.number.to_string());
                }
            }
        }
        let draft = entry.doc.reversal(date, order.by);
        store.post(draft).map(|p| p.number).map_err(|e| e.to_string())
    }

    /// Notices (newest last, at most [`NOTICES_SHOWN_MAX`]), orders with their state, and
    /// the last refusal.
    pub fn view(&self, store: &Store) -> anyhow::Result<serde_json::Value> {
        let tree = store.tree();
        let mut notices = Vec::new();
        let mut count = 0u64;
        for item in tree.scan_prefix([b'w']).rev() {
            let (_, v) = item?;
            count += 1;
            if notices.len() < NOTICES_SHOWN_MAX {
                notices.push(record::open::<Notice>(&"w/notice", &v)?);
            }
        }
        notices.reverse();
        let blockers = lock(&self.blockers).clone();
        let mut orders = Vec::new();
        for item in tree.scan_prefix([b'o']) {
            let (_, v) = item?;
            let o: Order = record::open(&"o/order", &v)?;
            let state = if o.reversed_by.is_some() { "done" } else { "pending" };
            orders.push(serde_json::json!({ "order": o, "state": state, "blocked_by": blockers.get(&o.branch_seq) }));
        }
        Ok(serde_json::json!({
            "applied_seq": self.applied_seq(),
            "count": count,
            "notices": notices,
            "orders": orders,
            "reopens": self.reopens_view(store)?,
            "last_refusal": *lock(&self.last_refusal),
        }))
    }
}

/// Posts the reopen (反结账) document of `order.period`, dated `date`, by the auditor who
/// ordered it. If the month is open already (a crash after the post, before the order was
/// marked, or a reopen posted meanwhile), the order is done: the books say so, not a scan.
fn reopen_one(store: &Store, order: &ReopenOrder, date: protocol::date::BusinessDate) -> Result<String, String> {
    let closed = store.with_books(|b| b.closed_through());
    match closed {
        None => return Ok(format!("{} is open already", order.period.label())),
        Some(c) if c < order.period => return Ok(format!("{} is open already", order.period.label())),
        _ => {}
    }
    let ext = protocol::document::DocExt { period: Some(order.period), ..Default::default() };
    let warehouse = store.profile().warehouses.iter().next().copied().ok_or("the branch has no warehouse in its profile")?;
    let draft = protocol::document::Draft {
        doc_type: protocol::document::DocType::PeriodReopen,
        date,
        operator: order.by,
        warehouse,
        counterparty: None,
        memo: format!("反结账 ordered by HQ (down message {}): {}", order.down_seq, order.why).chars().take(200).collect(),
        payment: None,
        lines: Vec::new(),
        ext,
    };
    store.post(draft).map(|p| p.number).map_err(|e| e.to_string())
}

fn describe(body: &DownBody, seq: u64, issued_unix: u64) -> (Notice, Option<Order>) {
    let n = |kind: &str, branch_seq: Option<u64>, doc: Option<String>, text: String| Notice {
        down_seq: seq,
        issued_unix,
        kind: kind.to_string(),
        branch_seq,
        doc_number: doc,
        text,
    };
    match body {
        DownBody::Rejection { branch_seq, doc_number, reason } => {
            (n("rejection", Some(*branch_seq), Some(doc_number.to_string()), format!("HQ quarantined {doc_number}: {reason}")), None)
        }
        DownBody::Flag { branch_seq, doc_number, reason } => {
            (n("flag", Some(*branch_seq), Some(doc_number.to_string()), format!("HQ flagged {doc_number} for review: {reason}")), None)
        }
        DownBody::Resolution { branch_seq, doc_number, order, by, why } => match order {
            ResolutionOrder::Accept => {
                (n("accept", Some(*branch_seq), Some(doc_number.to_string()), format!("{by} accepted {doc_number}: {why}")), None)
            }
            ResolutionOrder::Reverse => (
                n("reverse", Some(*branch_seq), Some(doc_number.to_string()), format!("{by} ordered {doc_number} reversed: {why}")),
                Some(Order { down_seq: seq, branch_seq: *branch_seq, doc_number: doc_number.to_string(), by: *by, reversed_by: None }),
            ),
        },
        DownBody::Scope(s) => (n("scope", None, None, format!("HQ issued scope version {:?}", s.version)), None),
        DownBody::Approval { draft_id, approved, by, note } => {
            let verdict = if *approved { "approved" } else { "refused" };
            (n("approval", None, None, format!("{by} {verdict} draft {draft_id}: {note}")), None)
        }
        DownBody::Reopen { period, by, why } => {
            (n("reopen", None, None, format!("{by} ordered {} reopened (反结账): {why}", period.label())), None)
        }
        DownBody::TransferOrder(o) => {
            let what: Vec<String> = o.lines.iter().map(|l| format!("{} × {}", l.product, l.qty)).collect();
            let text =
                format!("{} ordered transfer {} from {} to {} ({}): {}", o.by, o.id, o.from_warehouse, o.to, what.join(", "), o.memo);
            (n("transfer-order", None, None, text), None)
        }
        DownBody::TransferShipped(g) => {
            let what: Vec<String> = g.lines.iter().map(|l| format!("{} × {}", l.product, l.qty)).collect();
            let text = format!(
                "{} shipped {} on transfer {} ({}): receive it into {}",
                g.from,
                g.shipment,
                g.order,
                what.join(", "),
                g.to_warehouse
            );
            (n("transfer-shipped", None, Some(g.shipment.to_string()), text), None)
        }
        DownBody::TransferSettle { order, settle, by, why, .. } => {
            (n("transfer-settle", None, None, format!("{by} settled transfer {order} as {}: {why}", settle.name())), None)
        }
    }
}

#[cfg(test)]
#[path = "down_tests.rs"]
mod tests;
