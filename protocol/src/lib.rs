//! The pure core of Branchline.
//!
//! This crate holds the document model, the branch journal and its hash chain, signed
//! batches, the wire messages and their framing, the sync exchange as sans-IO state
//! machines, and the posting rules of the books. Both `branch-agent` and `hq` run this
//! same code, so the same journal gives the same books on both sides.
//!
//! Architecture invariant: this crate does no I/O. It uses no tokio, quinn, axum, sled or
//! serial crate, opens no file or socket and never reads the clock; time, bytes and
//! stored state come in as arguments. That is what lets every protocol path be tested
//! in memory, deterministically, without waiting.

pub mod approval;
pub mod batch;
pub mod books;
pub mod codes;
pub mod date;
pub mod dating;
pub mod decimal_serde;
pub mod document;
pub mod down;
pub mod error;
pub mod hex;
pub mod journal;
pub mod parties;
pub mod people;
pub mod profile;
pub mod record;
pub mod scope;
pub mod session_token;
pub mod sheet;
pub mod sync;
/// Test keys and document builders: for tests, benches and the test harness, never in a
/// release build (feature `testkit`).
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod text;
pub mod token;
pub mod transfer;
pub mod wire;

pub use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
pub use rust_decimal::Decimal;
