//! The month reopens (反结账) HQ's auditors ordered, kept so that a reopen document a branch
//! posts is checked against one: a branch cannot reopen a closed month on its own (a
//! faulty or tampered agent that posts an FJZ nobody ordered is quarantined with the
//! reason), and one order is posted once.
//!
//! Each order is written with the down message that carries it, in one write; its use is
//! marked in the apply's commit write. Keys: `R` branch 0 down seq(be) → [`ReopenRecord`].
//! Must not touch the books or the journal.

use protocol::codes::{BranchCode, OperatorId};
use protocol::document::{DocNumber, Document, Period};
use protocol::down::DownBody;
use protocol::record;
use serde::{Deserialize, Serialize};

use super::error::Result;
use super::keys::{key, open_rec};
use super::state::State;
use super::Store;

/// A reopen an auditor ordered; `posted` once the branch's document used it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReopenRecord {
    pub branch: BranchCode,
    pub period: Period,
    pub by: OperatorId,
    pub down_seq: u64,
    pub posted: Option<DocNumber>,
}

fn reopen_key(branch: &BranchCode, down_seq: u64) -> Vec<u8> {
    key(b'R', &[branch.as_str().as_bytes(), &down_seq.to_be_bytes()])
}

impl Store {
    pub(crate) fn load_reopens(&self, st: &mut State) -> Result<()> {
        for item in self.tree.scan_prefix([b'R']) {
            let (k, v) = item?;
            let r: ReopenRecord = open_rec(&k, &v)?;
            st.reopens.push(r);
        }
        Ok(())
    }

    /// Queues the reopen of `period` to `branch` with its record, in one durable write;
    /// returns the down message's seq.
    pub fn order_reopen(
        &self,
        st: &mut State,
        branch: &BranchCode,
        period: Period,
        by: OperatorId,
        why: String,
        now_unix: u64,
    ) -> Result<u64> {
        let mut batch = sled::Batch::default();
        let change = self.stage_down(st, branch, vec![DownBody::Reopen { period, by, why }], now_unix, &mut batch)?;
        let down_seq = change.last_seq();
        let rec = ReopenRecord { branch: *branch, period, by, down_seq, posted: None };
        batch.insert(reopen_key(branch, down_seq), record::seal(&rec));
        self.tree.apply_batch(batch)?;
        self.flush()?;
        change.install(st);
        st.reopens.push(rec);
        Ok(down_seq)
    }

    /// Marks the reopen at `index` used by `number`, into the apply's commit write.
    pub(crate) fn stage_reopen_used(&self, st: &State, index: usize, number: &DocNumber, batch: &mut sled::Batch) -> Option<ReopenRecord> {
        let mut rec = st.reopens.get(index)?.clone();
        rec.posted = Some(number.clone());
        batch.insert(reopen_key(&rec.branch, rec.down_seq), record::seal(&rec));
        Some(rec)
    }
}

/// The unposted reopen order of `doc`'s month for `branch` (not one of `taken`, used by
/// earlier documents of the same batch), by its index in `reopens`, or why there is none.
pub(crate) fn ordered(
    reopens: &[ReopenRecord],
    taken: &[usize],
    branch: &BranchCode,
    doc: &Document,
) -> std::result::Result<usize, String> {
    let period = doc.header.ext.period;
    reopens
        .iter()
        .enumerate()
        .position(|(i, r)| r.branch == *branch && Some(r.period) == period && r.posted.is_none() && !taken.contains(&i))
        .ok_or_else(|| {
            format!(
                "reopens {} but no HQ auditor ordered that reopen (or its order was posted already)",
                period.map(Period::label).unwrap_or_default()
            )
        })
}
