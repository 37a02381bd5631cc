//! The integration harness (`branchline-tests`, lib `harness`): `cluster` (real `hq` and
//! `branch-agent` processes in temp dirs), `relay` (the patchy-link UDP relay), `fuzz`
//! (structured random inputs for every decoder and the posting engine) and `raw_client`
//! (an unpinned QUIC client TLS for tests and the load generator).
//!
//! Must not: be a dependency of anything that ships.

pub mod cluster;
pub mod fuzz;
pub mod raw_client;
pub mod relay;
