//! The books as a plain-text accounting journal (beancount or hledger) for auditors: the
//! request as the CLI and `GET /api/export/ledger` give it, checked once, and the export
//! itself (each branch's journal posted again by the store, rendered by
//! `protocol::books::ledger_export`). One path for both callers.
//!
//! Must not: write to the store, render text itself (that is `protocol`), or know HTTP.

use protocol::books::ledger_export::{Format, Ledger, LedgerError};
use protocol::codes::BranchCode;
use protocol::document::Period;

use crate::store::{Store, StoreError};

/// What to export: one branch or all, the months `from..=to`, the dialect.
#[derive(Clone, Debug)]
pub struct LedgerRequest {
    pub branch: Option<BranchCode>,
    pub from: Period,
    pub to: Period,
    pub format: Format,
}

/// Why an export cannot be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// A parameter is wrong (HTTP 400).
    #[error("{0}")]
    Bad(String),
    /// The branch named is not enrolled (HTTP 404).
    #[error("no branch {0}")]
    NoBranch(BranchCode),
    /// Reading or replaying a journal failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl LedgerRequest {
    /// From the parameters as given: `to` defaults to `from`, `format` to beancount.
    pub fn parse(branch: Option<&str>, from: &str, to: Option<&str>, format: Option<&str>) -> Result<LedgerRequest, ExportError> {
        let branch = branch.map(|b| BranchCode::new(b).map_err(|e| ExportError::Bad(format!("branch: {e}")))).transpose()?;
        let month = |s: &str| Period::parse(s).map_err(|e| ExportError::Bad(format!("from/to: {e}")));
        let from = month(from)?;
        let to = match to {
            Some(t) => month(t)?,
            None => from,
        };
        let format = match format {
            None => Format::Beancount,
            Some(f) => Format::parse(f).ok_or_else(|| ExportError::Bad(format!("format={f:?}: use beancount or hledger")))?,
        };
        Ok(LedgerRequest { branch, from, to, format })
    }
}

/// The journal text: the branch asked for (it must be one of `enrolled`) or every branch
/// in `enrolled`, each branch's whole journal posted again. Between branches nothing is
/// eliminated: an all-branch export is the sum of the branches' books, inter-branch
/// accounts (1560, 6052) included.
pub fn export(store: &Store, enrolled: &[BranchCode], req: &LedgerRequest) -> Result<String, ExportError> {
    let mut ledger = Ledger::new(req.from, req.to).map_err(|e: LedgerError| ExportError::Bad(e.to_string()))?;
    let branches: Vec<BranchCode> = match req.branch {
        Some(b) if enrolled.contains(&b) => vec![b],
        Some(b) => return Err(ExportError::NoBranch(b)),
        None => enrolled.to_vec(),
    };
    for b in &branches {
        store.ledger_into(b, &mut ledger)?;
    }
    Ok(ledger.render(req.format))
}
