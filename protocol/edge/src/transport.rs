//! quinn's transport settings, built once from `protocol::wire`'s constants so HQ and
//! branches cannot drift apart, plus the bounds HQ puts on what a peer may make it
//! buffer. Must not hold TLS or endpoint setup (each binary has its own: HQ serves its
//! certificate, the branch pins it).

use std::sync::Arc;
use std::time::Duration;

use protocol::wire::{IDLE_TIMEOUT_MS, KEEPALIVE_MS};

fn base() -> quinn::TransportConfig {
    let mut transport = quinn::TransportConfig::default();
    let idle = quinn::IdleTimeout::try_from(Duration::from_millis(IDLE_TIMEOUT_MS))
        .expect("IDLE_TIMEOUT_MS is a small constant, far below QUIC's 2^62 ms limit");
    transport.max_idle_timeout(Some(idle));
    transport.keep_alive_interval(Some(Duration::from_millis(KEEPALIVE_MS)));
    transport
}

/// Idle timeout and keep-alive for both ends of a Branchline connection.
pub fn transport_config() -> Arc<quinn::TransportConfig> {
    Arc::new(base())
}

/// What one peer may make HQ hold, per connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HqTransportLimits {
    /// Bidirectional streams a peer may have open at once (a branch uses one).
    pub bidi_streams_max: u32,
    /// Bytes a peer may send on one stream before HQ has read them.
    pub stream_window_bytes: u32,
    /// Bytes a peer may send on all its streams together before HQ has read them.
    pub connection_window_bytes: u32,
}

/// HQ's side: the shared settings, no unidirectional streams at all, and the receive
/// windows bounded so one peer cannot make quinn buffer more than
/// `connection_window_bytes` for it.
pub fn hq_transport_config(limits: HqTransportLimits) -> Arc<quinn::TransportConfig> {
    let mut transport = base();
    transport.max_concurrent_bidi_streams(limits.bidi_streams_max.into());
    transport.max_concurrent_uni_streams(0u32.into());
    transport.stream_receive_window(limits.stream_window_bytes.into());
    transport.receive_window(limits.connection_window_bytes.into());
    // HQ sends little (acks, profiles); a modest send window bounds what a peer that
    // never reads can leave queued here.
    transport.send_window(u64::from(limits.connection_window_bytes));
    Arc::new(transport)
}
