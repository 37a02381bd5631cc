//! The branch's Prometheus metrics (`GET /metrics`, Reports:View): documents posted
//! (counted by the store when a post is durable), the outbox (entries HQ has not acked),
//! the last sync's age, the link, down messages applied, HTTP requests (`edge::metrics`).
//!
//! Must not write anything nor decide anything: the store and the forwarder count as they
//! go, and a scrape only reads `forwarder::Shared`'s status.

use std::sync::atomic::AtomicU64;

use axum::response::Response;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::forwarder::Shared;

/// Every metric the branch serves, registered once at start.
pub struct BranchMetrics {
    registry: Registry,
    pub http: edge::metrics::Http,
    /// Down messages applied since start (the forwarder counts them).
    pub down_applied: Counter,
    outbox_pending: Gauge,
    last_sync_age: Gauge,
    link_up: Gauge,
    down_applied_seq: Gauge<u64, AtomicU64>,
    /// agent.toml's `metrics_token`, if set.
    scrape_token: Option<String>,
}

impl BranchMetrics {
    /// `posted` is the store's counter of durable posts; `scrape_token` agent.toml's
    /// `metrics_token`.
    pub fn new(posted: Counter, scrape_token: Option<String>) -> BranchMetrics {
        let mut registry = Registry::with_prefix("branch");
        let http = edge::metrics::Http::default();
        http.register(&mut registry);
        let m = BranchMetrics {
            registry: Registry::default(),
            http,
            down_applied: Counter::default(),
            outbox_pending: Gauge::default(),
            last_sync_age: Gauge::default(),
            link_up: Gauge::default(),
            down_applied_seq: Gauge::default(),
            scrape_token,
        };
        registry.register("documents_posted", "Documents posted and durable at this branch since start", posted);
        registry.register("outbox_pending", "Journal entries HQ has not acknowledged", m.outbox_pending.clone());
        registry.register(
            "last_sync_age_seconds",
            "Seconds since HQ last confirmed this branch's journal (resume or ack); -1 before the first",
            m.last_sync_age.clone(),
        );
        registry.register("link_up", "1 while a sync session with HQ is open", m.link_up.clone());
        registry.register("down_applied", "Down-channel messages from HQ applied since start", m.down_applied.clone());
        registry.register("down_applied_seq", "The last down-channel seq applied durably", m.down_applied_seq.clone());
        BranchMetrics { registry, ..m }
    }

    /// Does the request carry the configured scrape token?
    pub fn scrape_token_is(&self, headers: &axum::http::HeaderMap) -> bool {
        self.scrape_token.as_deref().is_some_and(|t| edge::metrics::bearer_is(headers, t))
    }

    /// The text a scrape gets: the gauges read from `shared` now, then every metric.
    pub fn scrape(&self, shared: &Shared, now_unix: u64) -> Response {
        let status = shared.status();
        self.outbox_pending.set(i64::try_from(status.pending).unwrap_or(i64::MAX));
        let age = status.last_sync_unix.map_or(-1, |at| i64::try_from(now_unix.saturating_sub(at)).unwrap_or(i64::MAX));
        self.last_sync_age.set(age);
        self.link_up.set(i64::from(status.link_up));
        self.down_applied_seq.set(shared.down.applied_seq());
        edge::metrics::exposition(&self.registry)
    }
}
