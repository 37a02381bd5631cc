//! What an operator's tools call at the branch: `/healthz` (the process answers),
//! `/readyz` (the store answers a read, the branch is enrolled, posting is not stopped)
//! and `/metrics` (Prometheus text, `crate::metrics`). `crate::routes` decides who may
//! call which.
//!
//! Must not write anything, nor show data beyond the metrics: `/healthz` and `/readyz`
//! are public and name only their checks.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;

use crate::forwarder::Shared;

/// `GET /healthz`: up.
pub async fn healthz() -> Response {
    edge::metrics::healthz()
}

/// `GET /readyz`: 200 when the store answers, the branch is enrolled (it holds HQ's pin)
/// and posting is not stopped (a halt or a failed write), else 503 naming what failed.
pub async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    let store = shared.store.clone();
    let answers = tokio::task::spawn_blocking(move || store.answers()).await.unwrap_or(false);
    // The agent opens only an enrolled store; the pin is what enrollment gave it.
    let enrolled = shared.store.identity().hq_fingerprint != [0u8; 32];
    let posting = shared.store.halted().is_none();
    edge::metrics::readyz(&[("store_open", answers), ("enrolled", enrolled), ("posting", posting)])
}

/// `GET /metrics`: every metric, the gauges read from the sync status now.
pub async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    shared.metrics.scrape(&shared, edge::now_unix())
}
