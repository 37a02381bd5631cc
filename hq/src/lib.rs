//! Branchline HQ as a library, so the binary, the benchmarks and tests share one code path.
//!
//! - `catalog`: the product catalog as CSV (import from Excel, export).
//! - `config`: `hq.toml` with defaults.
//! - `identity`: HQ's self-signed certificate, pinned by branches.
//! - `store`: sled state (one tree, sealed records) and its in-memory mirror; the only
//!   place that writes. Entries go through `store`'s journal module, the storage boundary.
//! - `door`: who a QUIC peer is (its certificate's ed25519 key) and whether its hello
//!   may pass.
//! - `server`: the QUIC listener; moves frames between branches and `protocol::sync`.
//! - `http`: reports, status and admin over axum.
//! - `ledger_export`: the books as a beancount or hledger journal (`hq export ledger`).
//! - `metrics`: what `/metrics` serves (counters the server bumps, gauges read at scrape).
//! - `review`: the review queue (flagged/quarantined documents, accept/reverse) handlers.
//!
//! Errors are typed (`store::StoreError`, `store::EnrollError`, `config::ConfigError`,
//! `identity::IdentityError`, `catalog::CatalogProblem`, `ledger_export::ExportError`, `http::ApiError`,
//! `server::EndpointError`); `anyhow` belongs to the binary (`main.rs`, `cli`).
//!
//! Must not: know the command line (`main.rs` and `cli` are the binary's own).

pub mod approvals;
pub mod catalog;
pub mod config;
pub mod door;
pub mod http;
pub mod identity;
pub mod ledger_export;
pub mod metrics;
pub mod periods;
pub mod review;
pub mod server;
pub mod store;
pub mod transfers;
