//! quinn's transport settings, built once from `protocol::wire`'s constants so HQ and
//! branches cannot drift apart. Must not hold TLS or endpoint setup (each binary has its
//! own: HQ serves its certificate, the branch pins it).

use std::sync::Arc;
use std::time::Duration;

use protocol::wire::{IDLE_TIMEOUT_MS, KEEPALIVE_MS};

/// Idle timeout and keep-alive for both ends of a Branchline connection.
pub fn transport_config() -> Arc<quinn::TransportConfig> {
    let mut transport = quinn::TransportConfig::default();
    let idle = quinn::IdleTimeout::try_from(Duration::from_millis(IDLE_TIMEOUT_MS))
        .expect("IDLE_TIMEOUT_MS is a small constant, far below QUIC's 2^62 ms limit");
    transport.max_idle_timeout(Some(idle));
    transport.keep_alive_interval(Some(Duration::from_millis(KEEPALIVE_MS)));
    Arc::new(transport)
}
