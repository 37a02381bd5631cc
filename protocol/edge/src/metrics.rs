//! What both binaries' `/metrics` share (`prometheus-client`): the HTTP request counter
//! by route and status with the middleware that feeds it, the latency buckets, the
//! text exposition of a registry, and the `/healthz` and `/readyz` answers.
//!
//! Must not decide who may read the metrics (each binary's route table does), nor hold
//! any binary's own metrics: HQ's live in `hq::metrics`, the branch's in
//! `branch-agent`'s `metrics`. Labels are bounded: a route is the table's path pattern
//! (`/api/branches/{code}/rejections`), never the path a client sent.

use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The content type of the OpenMetrics text format `prometheus_client` writes; Prometheus
/// scrapes it as such.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// One HTTP request's labels: method, the route's pattern (or `unmatched`), status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

/// HTTP requests answered, by method, route and status (`http_requests_total`).
#[derive(Clone, Default)]
pub struct Http {
    pub requests: Family<HttpLabels, Counter>,
}

impl Http {
    /// Registers the counter in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register("http_requests", "HTTP requests answered, by method, route pattern and status", self.requests.clone());
    }
}

/// Middleware over a router's routes (`Router::layer`, so the matched path is known):
/// counts every answer by route pattern and status, refusals of the guard included.
pub async fn count_http(State(http): State<Http>, req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_string();
    // The pattern, never the concrete path: a client cannot grow the label set.
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let response = next.run(req).await;
    http.requests.get_or_create(&HttpLabels { method, route, status: response.status().as_u16() }).inc();
    response
}

/// A latency histogram in seconds: 0.25 ms to about 4 s, doubling (fsyncs on a laptop
/// disk to a slow batch apply).
pub fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

/// Records `took` in `histogram`, in seconds.
pub fn observe(histogram: &Histogram, took: Duration) {
    histogram.observe(took.as_secs_f64());
}

/// The registry as the OpenMetrics text a scrape gets.
pub fn exposition(registry: &Registry) -> Response {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, registry) {
        Ok(()) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(e) => crate::api::Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, format!("encoding the metrics: {e}")).into_response(),
    }
}

/// Shortest metrics scrape token `hq.toml`/`agent.toml` accept (`metrics_token`).
pub const SCRAPE_TOKEN_CHARS_MIN: usize = 24;

/// Does the request carry `Authorization: Bearer <expected>`? Compared without an early
/// exit, so the time taken does not say how much of a guess was right.
pub fn bearer_is(headers: &axum::http::HeaderMap, expected: &str) -> bool {
    let Some(given) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")) else {
        return false;
    };
    let (a, b) = (given.trim().as_bytes(), expected.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `/healthz`: the process is up and answering. Says nothing else.
pub fn healthz() -> Response {
    (StatusCode::OK, axum::Json(serde_json::json!({ "status": "ok" }))).into_response()
}

/// `/readyz`: 200 when every check passed, else 503 naming the ones that did not. Each
/// check is (name, passed); names only, no data.
pub fn readyz(checks: &[(&'static str, bool)]) -> Response {
    let failing: Vec<&str> = checks.iter().filter(|(_, ok)| !ok).map(|(name, _)| *name).collect();
    let checks_json: serde_json::Map<String, serde_json::Value> =
        checks.iter().map(|(name, ok)| (name.to_string(), serde_json::Value::Bool(*ok))).collect();
    let status = if failing.is_empty() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let word = if failing.is_empty() { "ready" } else { "not ready" };
    (status, axum::Json(serde_json::json!({ "status": word, "checks": checks_json, "failing": failing }))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_counters_with_total_and_ends_with_eof() {
        let mut registry = Registry::default();
        let http = Http::default();
        http.register(&mut registry);
        http.requests.get_or_create(&HttpLabels { method: "GET".into(), route: "/api/stock".into(), status: 200 }).inc();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        assert!(text.contains("http_requests_total{method=\"GET\",route=\"/api/stock\",status=\"200\"} 1"), "{text}");
        assert!(text.trim_end().ends_with("# EOF"), "{text}");
    }

    #[test]
    fn a_scrape_token_matches_only_itself() {
        let mut h = axum::http::HeaderMap::new();
        assert!(!bearer_is(&h, "abcdefghijklmnopqrstuvwxyz"));
        h.insert(header::AUTHORIZATION, "Bearer abcdefghijklmnopqrstuvwxyz".parse().expect("header"));
        assert!(bearer_is(&h, "abcdefghijklmnopqrstuvwxyz"));
        assert!(!bearer_is(&h, "abcdefghijklmnopqrstuvwxyZ"));
        assert!(!bearer_is(&h, "abcdefghijklmnopqrstuvwxy"));
    }

    #[test]
    fn readyz_names_what_failed() {
        assert_eq!(readyz(&[("store_open", true), ("listening", true)]).status(), StatusCode::OK);
        assert_eq!(readyz(&[("store_open", true), ("enrolled", false)]).status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
