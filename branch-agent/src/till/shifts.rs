//! The till's shifts (交班): open with a float, close with the counted cash, and the
//! hand-over report, recomputed from the retail documents of the journal between the
//! shift's first and last seq (`crate::shift` computes it). Part of the till service (I/O:
//! the store, the clock); must not touch the cart or the devices.

use devices::DisplayState;
use protocol::codes::OperatorId;
use protocol::document::{DocType, Document, MONEY_SCALE};
use protocol::Decimal;
use serde_json::{json, Value};
use tracing::info;

use super::error::{internal, TillError};
use super::service::{blocking, Pos};
use crate::shift::{self, ShiftRecord, SHIFT_DOCUMENTS_MAX, SHIFT_RECORD_VERSION};
use crate::store::Store;

use edge::now_unix;

impl Pos {
    pub async fn open_shift(&self, cashier: OperatorId, float: Decimal) -> Result<Value, TillError> {
        if float < Decimal::ZERO || float.scale() > MONEY_SCALE {
            return Err(TillError::Refused(format!("float {float} must be 0 or more, in cents")));
        }
        let mut till = self.till.lock().await;
        if let Some(s) = &till.shift {
            return Err(TillError::State(format!(
                "shift {} of {} is open since {}: close it first (POST /api/pos/shift/close with counted_cash)",
                s.id,
                s.cashier,
                self.config.local(s.opened_at_unix)
            )));
        }
        let store = self.store().clone();
        let last: Option<ShiftRecord> = blocking(move || store.last_shift()).await?.map_err(internal)?;
        let mut float = float;
        float.rescale(MONEY_SCALE);
        let record = ShiftRecord {
            version: SHIFT_RECORD_VERSION,
            id: last.map_or(1, |s| s.id + 1),
            cashier: cashier.to_string(),
            float,
            opened_at_unix: now_unix(),
            first_seq: self.store().head().seq + 1,
            closed: None,
        };
        let (store, r) = (self.store().clone(), record.clone());
        blocking(move || store.put_shift(r.id, &r)).await?.map_err(|e| TillError::Internal(format!("saving the shift: {e:#}")))?;
        info!(shift = record.id, cashier = %record.cashier, %float, "shift opened");
        till.shift = Some(record.clone());
        let warnings = self.show(DisplayState::default()).await;
        let mut v = self.report(&record).await?;
        v["warnings"] = json!(warnings);
        Ok(v)
    }

    /// Hand-over: counts the drawer against the shift's cash sales, closes the shift and
    /// prints the report.
    pub async fn close_shift(&self, counted_cash: Decimal) -> Result<Value, TillError> {
        if counted_cash < Decimal::ZERO || counted_cash.scale() > MONEY_SCALE {
            return Err(TillError::Refused(format!("counted cash {counted_cash} must be 0 or more, in cents")));
        }
        let mut till = self.till.lock().await;
        let Some(open) = till.shift.clone() else { return Err(TillError::State("no shift is open".into())) };
        if !till.cart.is_empty() {
            return Err(TillError::State("the cart is not empty: take payment or clear it before handing over".into()));
        }
        let mut counted_cash = counted_cash;
        counted_cash.rescale(MONEY_SCALE);
        let mut record = open;
        record.closed = Some(shift::ShiftClose { closed_at_unix: now_unix(), last_seq: self.store().head().seq, counted_cash });
        let (store, r) = (self.store().clone(), record.clone());
        blocking(move || store.put_shift(r.id, &r)).await?.map_err(|e| TillError::Internal(format!("saving the shift: {e:#}")))?;
        till.shift = None;
        let r = self.report_of(&record).await?;
        info!(shift = record.id, cashier = %record.cashier, expected = %r.expected_cash, counted = %counted_cash, "shift closed");
        let receipt = &self.devices_config.receipt;
        let job = shift::render_report(&r, &self.store_name(), receipt.width_chars.columns(), receipt.cut);
        let mut report = json!(r);
        let (print, show) = self.with_devices(move |d| (d.print_job(&job), d.show(DisplayState::default()))).await?;
        let printed = print.is_ok();
        let warnings = self.note([print.err(), show.err()].into_iter().flatten().collect());
        report["report_printed"] = json!(printed);
        report["warnings"] = json!(warnings);
        Ok(report)
    }

    async fn report_of(&self, record: &ShiftRecord) -> Result<shift::ShiftReport, TillError> {
        let store = self.store().clone();
        let last_seq = record.last_seq(store.head().seq);
        let first_seq = record.first_seq;
        let (docs, truncated) =
            blocking(move || retail_documents(&store, first_seq, last_seq)).await?.map_err(|e| internal(format!("{e:#}")))?;
        let config = self.config.clone();
        Ok(record.report(last_seq, &docs, truncated, |t| config.local(t).to_string()))
    }

    async fn report(&self, record: &ShiftRecord) -> Result<Value, TillError> {
        Ok(json!(self.report_of(record).await?))
    }

    /// The open shift's running report.
    pub async fn current_shift(&self) -> Result<Value, TillError> {
        let shift = self.till.lock().await.shift.clone();
        match shift {
            Some(s) => self.report(&s).await,
            None => Err(TillError::NotFound("no shift is open".into())),
        }
    }

    pub async fn shift_report(&self, id: u64) -> Result<Value, TillError> {
        let store = self.store().clone();
        let record: Option<ShiftRecord> = blocking(move || store.shift(id)).await?.map_err(internal)?;
        match record {
            Some(r) => self.report(&r).await,
            None => Err(TillError::NotFound(format!("no shift {id} at this till"))),
        }
    }
}

/// Retail documents with seq in `first ..= last`, at most [`SHIFT_DOCUMENTS_MAX`] entries
/// looked at; `true` when the range was cut.
fn retail_documents(store: &Store, first: u64, last: u64) -> anyhow::Result<(Vec<(u64, Document)>, bool)> {
    let end = last.min(first.saturating_add(SHIFT_DOCUMENTS_MAX - 1));
    let mut docs = Vec::new();
    for seq in first..=end {
        if let Some(e) = store.entry(seq)? {
            if e.doc.header.doc_type == DocType::Retail {
                docs.push((seq, e.doc));
            }
        }
    }
    Ok((docs, end < last))
}
