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
//! - `sign_in`: the sign-in exchange both APIs answer (`POST /api/session`) and the form.
//! - `tls`: a branch's client certificate bound to its enrolled ed25519 key, and the
//!   key read back from a peer's certificate.
//! - `durable`: fsyncs what sled leaves unsynced (its blob files and their directories).
//! - `group_commit`: one flush for many writers that wrote meanwhile (HQ's batches of
//!   many branches, the branch's concurrent posts); the flush itself is the caller's.
//! - `init_tracing`: the one logging setup of both binaries.
//! - `stop_on_panic` and `lock`: a panic anywhere stops the whole process, and a lock is
//!   never used after a panic poisoned it (see `stop_on_panic`).
//! - `api`: how both HTTP APIs refuse (JSON `{"error"}` saying what to fix on every
//!   route; body size and nesting bounds; path and JSON extractors in the API's words).
//! - `routes`: a route table's row and the router built from a table (each row behind
//!   the binary's own guard; a wrong method names the ones the path takes).
//! - `metrics`: what both `/metrics` share (the HTTP counter by route pattern and status
//!   and its middleware, latency buckets, the text exposition) and the `/healthz` and
//!   `/readyz` answers; each binary's own metrics live in the binary.
//!
//! Architecture invariant: no decisions here. What to send, when to give up and what a
//! message means stay in `protocol`; this crate only moves bytes and time in and out.
//! It knows nothing of sled or either binary's store; of axum it knows only how a
//! refusal is shaped (`api`), never which route needs which right.

pub mod api;
pub mod clock;
pub mod durable;
pub mod framed;
pub mod group_commit;
pub mod machine;
pub mod metrics;
pub mod routes;
pub mod session;
pub mod sign_in;
pub mod tls;
pub mod transport;

pub use clock::{now_unix, today_at, BusinessZone, MonotonicClock, ZoneError, SHANGHAI_UTC_OFFSET_MINUTES};
pub use framed::{spawn_budgeted_reader, spawn_reader, write_message, ByteBudget, FrameError, FrameReader, Inbox};
pub use group_commit::{GroupCommit, GroupFlushError};
pub use transport::{hq_transport_config, transport_config, HqTransportLimits};

/// Makes any panic, on any thread or task, end the process (after the usual message)
/// instead of unwinding one task while the others keep serving from memory the panicking
/// one may have left half-updated. systemd restarts the process, which recovers from disk
/// (the journal is the truth; memory is rebuilt from it). Both binaries call this first.
/// A hook rather than `panic = "abort"` in the profiles: tests keep unwinding, and the
/// dependency cache stays shared between test and binary builds.
pub fn stop_on_panic() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        eprintln!("branchline: a panic stops the process (memory may be half-updated); restart it to recover from disk");
        std::process::abort();
    }));
}

/// Locks `m`. A poisoned lock means a panic happened while it was held, so what it guards
/// may be half-updated: never used, the caller panics too (and `stop_on_panic` ends the
/// process; in practice the first panic already did).
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(_) => panic!("a lock was poisoned by an earlier panic; refusing to use what it guards"),
    }
}

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
