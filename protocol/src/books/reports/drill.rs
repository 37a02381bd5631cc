//! Drill-through (穿透查询): which posted documents stand behind a report row — a
//! warehouse (either end of a transfer), a product (any line) or a party — and the row
//! each becomes in both binaries' `movements` answers. Must not read a journal: the
//! caller walks its own and asks `matches` of each document.

use serde::Deserialize;
use serde_json::json;

use crate::document::Document;

/// How many documents one drill-through answer lists, unless it asks for fewer.
pub const DRILL_ROWS_DEFAULT: usize = 500;
/// The most documents one drill-through answer lists.
pub const DRILL_ROWS_MAX: usize = 5_000;

/// A drill-through request, as the query string gives it.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct DrillQuery {
    pub warehouse: Option<String>,
    pub product: Option<String>,
    pub party: Option<String>,
    pub limit: Option<usize>,
}

impl DrillQuery {
    /// How many documents to list: `limit`, at most [`DRILL_ROWS_MAX`].
    pub fn rows_max(&self) -> usize {
        self.limit.unwrap_or(DRILL_ROWS_DEFAULT).min(DRILL_ROWS_MAX)
    }

    /// Does `doc` stand behind the row asked for? Every criterion given must hold.
    pub fn matches(&self, doc: &Document) -> bool {
        let h = &doc.header;
        let warehouse = self
            .warehouse
            .as_deref()
            .is_none_or(|w| h.warehouse.as_str() == w || h.ext.to_warehouse.as_ref().is_some_and(|t| t.as_str() == w));
        let product = self.product.as_deref().is_none_or(|p| doc.lines.iter().any(|l| l.product.as_str() == p));
        let party = self.party.as_deref().is_none_or(|p| h.counterparty.as_ref().is_some_and(|c| c.as_str() == p));
        warehouse && product && party
    }
}

/// One document of a drill-through answer; `link` is where the API serves it whole.
pub fn drill_row(seq: u64, doc: &Document, link: String) -> serde_json::Value {
    let h = &doc.header;
    json!({
        "seq": seq, "number": h.number.to_string(), "type": h.doc_type.name(), "date": h.date,
        "warehouse": h.warehouse, "counterparty": h.counterparty, "operator": h.operator, "total": doc.total().to_string(),
        "document": link,
    })
}
