//! HQ's Prometheus metrics (`GET /metrics`, Reports:View at HQ): what the server counts
//! as it goes (documents, lines and batches applied, refusals by code, apply and flush
//! latency, QUIC connections open, HTTP requests) and what a scrape reads from the state
//! (per-branch lag in entries and seconds, down-channel queue depth).
//!
//! Must not write anything, nor decide anything: counters are bumped by `server` after
//! the fact, and a scrape only reads the state under its lock for a moment. Labels are
//! bounded: branch codes are enrolled branches (at most `BranchCode`'s 32 bytes each),
//! rejection codes are `RejectCode`'s variants.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use protocol::codes::BranchCode;
use protocol::wire::RejectCode;

use crate::store::State;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BranchLabel {
    pub branch: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    pub code: String,
}

fn branch(code: &BranchCode) -> BranchLabel {
    BranchLabel { branch: code.to_string() }
}

/// Every metric HQ serves, registered once at start.
pub struct HqMetrics {
    registry: Registry,
    pub http: edge::metrics::Http,
    documents: Family<BranchLabel, Counter>,
    lines: Family<BranchLabel, Counter>,
    batches: Family<BranchLabel, Counter>,
    rejections: Family<CodeLabel, Counter>,
    apply_seconds: Histogram,
    flush_seconds: Histogram,
    quic_connections: Gauge,
    lag_entries: Family<BranchLabel, Gauge>,
    lag_seconds: Family<BranchLabel, Gauge>,
    down_depth: Family<BranchLabel, Gauge>,
    /// The highest seq each branch said it holds (its hello's head, or the last batch HQ
    /// applied): lag in entries is this minus HQ's head. HQ cannot know of entries a
    /// branch has not announced yet (the branch's `branch_outbox_pending` does).
    announced: Mutex<BTreeMap<BranchCode, u64>>,
    /// The QUIC endpoint is accepting (for `/readyz`).
    listening: AtomicBool,
}

impl Default for HqMetrics {
    fn default() -> HqMetrics {
        HqMetrics::new()
    }
}

impl HqMetrics {
    pub fn new() -> HqMetrics {
        let mut registry = Registry::with_prefix("hq");
        let http = edge::metrics::Http::default();
        http.register(&mut registry);
        let m = HqMetrics {
            registry: Registry::default(),
            http,
            documents: Family::default(),
            lines: Family::default(),
            batches: Family::default(),
            rejections: Family::default(),
            apply_seconds: edge::metrics::latency_histogram(),
            flush_seconds: edge::metrics::latency_histogram(),
            quic_connections: Gauge::default(),
            lag_entries: Family::default(),
            lag_seconds: Family::default(),
            down_depth: Family::default(),
            announced: Mutex::new(BTreeMap::new()),
            listening: AtomicBool::new(false),
        };
        registry.register("documents_ingested", "Documents applied to a branch's books at HQ since start", m.documents.clone());
        registry.register("lines_ingested", "Document lines applied at HQ since start", m.lines.clone());
        registry.register("batches_applied", "Signed batches applied and acked since start", m.batches.clone());
        registry.register("rejections", "Refusals sent to branches or peers since start, by reject code", m.rejections.clone());
        registry.register("apply_seconds", "Time to apply one batch, decision to durable commit", m.apply_seconds.clone());
        registry.register("flush_seconds", "Time of the group flush + fsync that made a batch durable", m.flush_seconds.clone());
        registry.register("quic_connections_open", "QUIC connections open now", m.quic_connections.clone());
        registry.register("branch_lag_entries", "Entries a branch announced that HQ has not applied", m.lag_entries.clone());
        registry.register("branch_lag_seconds", "Seconds since HQ last applied a batch of the branch", m.lag_seconds.clone());
        registry.register("down_queue_depth", "Down-channel messages queued for the branch and not yet acked", m.down_depth.clone());
        HqMetrics { registry, ..m }
    }

    /// A batch of `branch` applied: its documents and lines, how long the apply and its
    /// flush took, and the head it reached.
    pub fn applied(&self, code: &BranchCode, documents: u64, lines: u64, head_seq: u64, apply: Duration, flush: Duration) {
        let label = branch(code);
        self.documents.get_or_create(&label).inc_by(documents);
        self.lines.get_or_create(&label).inc_by(lines);
        self.batches.get_or_create(&label).inc();
        edge::metrics::observe(&self.apply_seconds, apply);
        edge::metrics::observe(&self.flush_seconds, flush);
        self.announce(code, head_seq);
    }

    /// The branch said (hello) or showed (an applied batch) that it holds entries up to
    /// `seq`.
    pub fn announce(&self, code: &BranchCode, seq: u64) {
        let mut announced = edge::lock(&self.announced);
        let at = announced.entry(*code).or_insert(0);
        *at = (*at).max(seq);
    }

    /// A refusal went out with `code`.
    pub fn rejected(&self, code: RejectCode) {
        self.rejections.get_or_create(&CodeLabel { code: format!("{code:?}") }).inc();
    }

    /// A QUIC connection opened; the guard closes it in the gauge when dropped.
    pub fn connection_opened(&self) -> ConnectionOpen<'_> {
        self.quic_connections.inc();
        ConnectionOpen(&self.quic_connections)
    }

    pub fn set_listening(&self, on: bool) {
        self.listening.store(on, Ordering::Relaxed);
    }

    pub fn listening(&self) -> bool {
        self.listening.load(Ordering::Relaxed)
    }

    /// The text a scrape gets: the gauges read from `st` now, then every metric.
    pub fn scrape(&self, st: &State, now_unix: u64) -> Response {
        let announced = edge::lock(&self.announced).clone();
        for (code, rec) in &st.branches {
            if rec.key.is_none() {
                continue; // not enrolled: nothing to lag behind
            }
            let label = branch(code);
            let said = announced.get(code).copied().unwrap_or(0);
            self.lag_entries.get_or_create(&label).set(gauge_value(said.saturating_sub(rec.head.seq)));
            if let Some(at) = rec.last_applied_unix {
                self.lag_seconds.get_or_create(&label).set(gauge_value(now_unix.saturating_sub(at)));
            }
            let depth = st.down.queues.get(code).map_or(0, |q| q.len() as u64);
            self.down_depth.get_or_create(&label).set(gauge_value(depth));
        }
        edge::metrics::exposition(&self.registry)
    }
}

/// A gauge holds an i64; counts above it (never in practice) show as the maximum.
fn gauge_value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Counts one open QUIC connection while it lives.
pub struct ConnectionOpen<'a>(&'a Gauge);

impl Drop for ConnectionOpen<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}
