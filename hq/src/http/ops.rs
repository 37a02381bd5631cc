//! What an operator's tools call: `/healthz` (the process answers), `/readyz` (the store
//! answers a read and the QUIC listener is accepting) and `/metrics` (Prometheus text,
//! `crate::metrics`). The route table decides who may call which.
//!
//! Must not write anything, nor show data beyond the metrics: `/healthz` and `/readyz`
//! are public and name only their checks.

use axum::extract::State;
use axum::response::Response;

use super::AppState;
use crate::server::now_unix;

/// `GET /healthz`: up.
pub(super) async fn healthz() -> Response {
    edge::metrics::healthz()
}

/// `GET /readyz`: 200 when the store answers and QUIC is listening, else 503.
pub(super) async fn readyz(State(hq): State<AppState>) -> Response {
    let store = tokio::task::spawn_blocking({
        let hq = hq.clone();
        move || hq.store.answers()
    })
    .await
    .unwrap_or(false);
    edge::metrics::readyz(&[("store_open", store), ("quic_listening", hq.metrics.listening())])
}

/// `GET /metrics`: every metric, the per-branch gauges read from the state now.
pub(super) async fn metrics(State(hq): State<AppState>) -> Response {
    let st = hq.state();
    hq.metrics.scrape(&st, now_unix())
}
