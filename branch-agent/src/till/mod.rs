//! Point of sale: the store's till (零售, LS) on top of the branch journal and the
//! `devices` crate.
//!
//! One sale: scan or type codes (or weigh) into the cart → the customer display shows the
//! item and the running total → pay (method, tendered, change) → the retail document is
//! posted with `Store::post` (durable before anything else happens; works offline and is
//! forwarded to HQ like any document) → the display shows the change → the receipt prints
//! → the drawer opens for cash. Shifts (交班) are in `crate::shift`.
//!
//! Invariant: a device never fails a sale. Peripherals are touched only after the post
//! returned; their errors come back as `warnings`, are kept as the last device error in
//! `/api/pos/status`, and the receipt can be printed again from the journal entry
//! (`POST /api/pos/reprint/{seq}`). Before payment only the scale can refuse a step, and
//! the sale goes on (type the weight instead).
//!
//! Clock: the business date of a sale is today's date in the agent's `business_zone`
//! (default Asia/Shanghai), or at `[pos] utc_offset_minutes` when that fixes an offset,
//! unless the pay request gives `date`.
//! `protocol` never reads the clock; `service` does, and hands the date in.
//!
//! Modules, pure first:
//! - `config`: `[pos]` in agent.toml, payment labels, the business-date rule;
//! - `error`: `TillError`, one HTTP status per kind;
//! - `cart`: cart lines, merging, quantity limits, the retail draft;
//! - `payment`: taking payment (the rules themselves are `protocol`'s `Payment::check`);
//! - `resolve`: a scanned or typed code → a priced cart line (UPC-A, PLUs, label scales);
//! - `receipt`: the receipt of a posted retail document;
//! - `service`: `Pos`, the till with its devices and the sale sequence (I/O);
//! - `shifts`: opening and closing a shift, and its hand-over report (I/O);
//! - `scanner`: the scanner thread;
//! - `routes`: HTTP under `/api/pos` and the `/pos`, `/pos/display` pages
//!   (`branch-agent/templates/`).
//!
//! The pure modules touch no store, device, clock or HTTP type; only `service`,
//! `scanner` and `routes` do.

mod cart;
mod config;
mod error;
mod payment;
mod receipt;
mod resolve;
pub(crate) mod routes;
mod scanner;
mod service;
mod shifts;

#[cfg(test)]
mod fixtures;

pub use config::PosConfig;
pub use service::Pos;
