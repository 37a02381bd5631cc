//! The I/O edge shared by both binaries (`hq` and `branch-agent`). It is NOT part of the
//! pure core: it lives next to `protocol` only because the two binaries share nothing
//! else, and it is where sockets, tasks and clocks meet the sans-IO code.
//!
//! - `framed`: a QUIC stream as messages — frames read through `protocol::wire`'s
//!   tested `FrameDecoder`, frames written, and the reader task with its abort-on-drop
//!   guard.
//! - `transport`: quinn's `TransportConfig` from the protocol's idle/keep-alive constants.
//! - `clock`: wall-clock seconds for records, and the monotonic milliseconds the sync
//!   state machines take as `now_ms`.
//! - `session`: the session key file, secret files (0600), tokens from request headers.
//! - `tls`: a branch's client certificate bound to its enrolled ed25519 key, and the
//!   key read back from a peer's certificate.
//! - `group_commit`: one flush for many writers that wrote meanwhile (HQ's batches of
//!   many branches, the branch's concurrent posts); the flush itself is the caller's.
//! - `init_tracing`: the one logging setup of both binaries.
//!
//! Architecture invariant: no decisions here. What to send, when to give up and what a
//! message means stay in `protocol`; this crate only moves bytes and time in and out.
//! It knows nothing of sled, axum or either binary's store.

pub mod clock;
pub mod framed;
pub mod group_commit;
pub mod session;
pub mod tls;
pub mod transport;

pub use clock::{now_unix, today_at, MonotonicClock, SHANGHAI_UTC_OFFSET_MINUTES};
pub use framed::{spawn_budgeted_reader, spawn_reader, write_message, ByteBudget, FrameError, FrameReader, Inbox};
pub use group_commit::{GroupCommit, GroupFlushError};
pub use transport::{hq_transport_config, transport_config, HqTransportLimits};

/// Logs to stderr, filtered by `BRANCHLINE_LOG` (default `info`); JSON lines if `json`.
pub fn init_tracing(json: bool) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("BRANCHLINE_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
