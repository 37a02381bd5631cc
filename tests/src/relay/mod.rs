//! A userspace UDP relay that stands between a branch agent and HQ and makes the link
//! patchy on purpose: loss, delay, jitter, reordering, duplication, a bandwidth cap with a
//! bounded router queue, and outages. This machine has no netem, so integration tests point
//! an agent at `Relay::addr()` instead of at HQ.
//!
//! Shape (after quinn): `link::Link` is the whole simulation for one direction of one
//! client — no sockets, no clock, time comes in as `now`. The tokio tasks below only move
//! datagrams and time in and out of it. Every decision comes from an RNG seeded from the
//! relay seed, so a failing run can be replayed by reusing the seed.
//!
//! Must not touch: anything of Branchline itself. The relay knows nothing about QUIC; it
//! forwards opaque datagrams.

use std::collections::HashMap;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{ensure, Context as _};
use tokio::net::UdpSocket;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;
use tokio::time::Instant;

mod link;

/// Largest UDP payload; the receive buffers must hold any datagram whole.
const DATAGRAM_BYTES_MAX: usize = 65_535;
/// Client sessions the relay keeps at once. Tests start a handful of branches; the bound only
/// stops a runaway sender from making the relay open sockets without end.
const CLIENTS_MAX: usize = 256;
/// Datagrams waiting between the listen task and one client's task. When full the datagram
/// is dropped and counted as `dropped_queue`, as a congested host would.
const CLIENT_INBOX_PACKETS_MAX: usize = 1024;
/// A client session that saw no traffic for this long is closed, like a NAT mapping timing
/// out. The next datagram from that address starts a new session with a new upstream port.
const CLIENT_IDLE_MS_MAX: u64 = 120_000;
/// Default router buffer in front of the bandwidth limiter (see `LinkConfig::queue_bytes_max`).
const QUEUE_BYTES_MAX_DEFAULT: usize = 64 * 1024;

/// How the simulated link behaves. Applies to each direction separately: a datagram and its
/// reply each take their own chances. `Default` is a perfect link.
///
/// Fields are public so tests can write `LinkConfig { loss: 0.1, ..Default::default() }`;
/// `Relay::start` and `Relay::set_config` reject out-of-range values via [`LinkConfig::validate`].
#[derive(Clone, Debug, PartialEq)]
pub struct LinkConfig {
    /// Probability (0.0–1.0) that a datagram is lost.
    pub loss: f64,
    /// Fixed one-way delay added to every datagram.
    pub delay_ms: u64,
    /// Extra one-way delay drawn uniformly from 0..=jitter_ms per datagram. Datagrams whose
    /// delays differ by more than their spacing overtake each other, so jitter also reorders.
    pub jitter_ms: u64,
    /// Probability (0.0–1.0) that a datagram is held back and delivered just after the next
    /// one. If no next one comes within `REORDER_HOLD_MS_MAX` it is delivered anyway.
    pub reorder: f64,
    /// Probability (0.0–1.0) that a datagram is delivered twice.
    pub duplicate: f64,
    /// Link rate. Datagrams are serialised one after another at this rate (IP and UDP
    /// headers included); a burst waits in the router queue. `None` means unlimited.
    pub bandwidth_bytes_per_sec: Option<u64>,
    /// Router buffer in front of the bandwidth limiter. A datagram that would make the
    /// backlog exceed it is dropped (`dropped_queue`), except that a datagram arriving at an
    /// idle link is always accepted. Ignored without a bandwidth cap.
    pub queue_bytes_max: usize,
    /// Drop everything, including datagrams already on the simulated wire.
    pub outage: bool,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            loss: 0.0,
            delay_ms: 0,
            jitter_ms: 0,
            reorder: 0.0,
            duplicate: 0.0,
            bandwidth_bytes_per_sec: None,
            queue_bytes_max: QUEUE_BYTES_MAX_DEFAULT,
            outage: false,
        }
    }
}

impl LinkConfig {
    /// Checks the ranges the simulation relies on (a probability outside 0..=1 would make
    /// the RNG panic inside a relay task, far from the caller that set it).
    pub fn validate(&self) -> anyhow::Result<()> {
        for (name, p) in [("loss", self.loss), ("reorder", self.reorder), ("duplicate", self.duplicate)] {
            ensure!((0.0..=1.0).contains(&p), "{name} must be a probability in 0.0..=1.0, got {p}");
        }
        ensure!(self.bandwidth_bytes_per_sec != Some(0), "bandwidth_bytes_per_sec must be positive (use outage to cut the link)");
        Ok(())
    }
}

/// Counters for one direction. Snapshot, taken with `Relay::stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirectionStats {
    /// Datagrams that entered this direction. Once the link is idle:
    /// `received + duplicated == forwarded + dropped_* + send_errors`.
    pub received: u64,
    /// Datagrams sent on, duplicates included.
    pub forwarded: u64,
    pub dropped_loss: u64,
    /// Dropped because of an outage, on arrival or while on the simulated wire.
    pub dropped_outage: u64,
    /// Dropped because a bounded queue was full (router queue, in-flight bound, client inbox).
    pub dropped_queue: u64,
    /// Extra copies made (each also counts in `forwarded` once sent).
    pub duplicated: u64,
    /// Datagrams delivered behind the one that arrived after them (by `reorder`, not jitter).
    pub reordered: u64,
    /// The relay's own socket refused to send (e.g. upstream port closed).
    pub send_errors: u64,
}

/// Snapshot of all relay counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Client → upstream (branch → HQ).
    pub to_upstream: DirectionStats,
    /// Upstream → client (HQ → branch).
    pub to_client: DirectionStats,
    /// Client sessions opened (one upstream socket each).
    pub clients_seen: u64,
    /// Datagrams from new clients refused because `CLIENTS_MAX` sessions were open (also
    /// counted in `to_upstream.dropped_queue`).
    pub clients_rejected: u64,
}

#[derive(Default)]
struct DirectionCounters {
    received: AtomicU64,
    forwarded: AtomicU64,
    dropped_loss: AtomicU64,
    dropped_outage: AtomicU64,
    dropped_queue: AtomicU64,
    duplicated: AtomicU64,
    reordered: AtomicU64,
    send_errors: AtomicU64,
}

/// Relaxed is enough everywhere: counters are statistics, nothing is synchronised through them.
fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl DirectionCounters {
    fn snapshot(&self) -> DirectionStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DirectionStats {
            received: get(&self.received),
            forwarded: get(&self.forwarded),
            dropped_loss: get(&self.dropped_loss),
            dropped_outage: get(&self.dropped_outage),
            dropped_queue: get(&self.dropped_queue),
            duplicated: get(&self.duplicated),
            reordered: get(&self.reordered),
            send_errors: get(&self.send_errors),
        }
    }
}

#[derive(Default)]
struct Counters {
    to_upstream: DirectionCounters,
    to_client: DirectionCounters,
    clients_seen: AtomicU64,
    clients_rejected: AtomicU64,
}

/// Aborts the task when dropped, so dropping a `Relay` stops every task it started.
struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A running relay. Dropping it stops all its tasks and closes its sockets (asynchronously,
/// at the tasks' next poll).
pub struct Relay {
    addr: SocketAddr,
    upstream: SocketAddr,
    seed: u64,
    config: Arc<watch::Sender<LinkConfig>>,
    counters: Arc<Counters>,
    runtime: Handle,
    /// The timer started by `outage_for`; replaced or cancelled by any later config change so
    /// an old timer cannot end a newer outage.
    outage_end: Mutex<Option<AbortOnDrop>>,
    /// Owns the client sessions; aborting it drops them, which aborts their tasks.
    _listener: AbortOnDrop,
}

impl fmt::Debug for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Relay")
            .field("addr", &self.addr)
            .field("upstream", &self.upstream)
            .field("seed", &self.seed)
            .field("config", &*self.config.borrow())
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// Starts a relay listening on 127.0.0.1 (any free port) that forwards to `upstream`.
    pub async fn start(upstream: SocketAddr, config: LinkConfig, seed: u64) -> anyhow::Result<Relay> {
        let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        Self::start_on(listen, upstream, config, seed).await
    }

    /// Like `start`, on a chosen listen address (for the `udp-relay` binary).
    pub async fn start_on(listen: SocketAddr, upstream: SocketAddr, config: LinkConfig, seed: u64) -> anyhow::Result<Relay> {
        config.validate()?;
        let socket = UdpSocket::bind(listen).await.with_context(|| format!("relay: binding listen socket {listen}"))?;
        let addr = socket.local_addr().context("relay: reading listen address")?;
        tracing::info!(%addr, %upstream, seed, ?config, "relay started");

        let (config_tx, config_rx) = watch::channel(config);
        let counters = Arc::new(Counters::default());
        let listener = Listener {
            socket: Arc::new(socket),
            upstream,
            seed,
            config: config_rx,
            counters: Arc::clone(&counters),
            clients: HashMap::new(),
        };
        let listener = tokio::spawn(listener.run()).abort_handle();
        Ok(Relay {
            addr,
            upstream,
            seed,
            config: Arc::new(config_tx),
            counters,
            runtime: Handle::current(),
            outage_end: Mutex::new(None),
            _listener: AbortOnDrop(listener),
        })
    }

    /// Where clients send to instead of `upstream`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// The seed every random decision derives from; pass it to `start` to replay a run.
    ///
    /// Each client and direction has its own RNG stream, and the k-th datagram's fate
    /// (lost, jitter, held, duplicated) depends only on k and the config. So a replay is
    /// exact as long as the datagram order is the same; what it cannot pin down is timing
    /// (which datagrams a full bandwidth queue drops), the moment a `set_config` lands, and,
    /// with several clients, which client showed up first.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The link as it is now (`outage` included).
    pub fn config(&self) -> LinkConfig {
        self.config.borrow().clone()
    }

    /// Replaces the whole link configuration, `outage` included; cancels a pending
    /// `outage_for`. Datagrams already scheduled keep their delivery time.
    pub fn set_config(&self, config: LinkConfig) -> anyhow::Result<()> {
        config.validate()?;
        self.cancel_outage_end();
        tracing::debug!(seed = self.seed, ?config, "relay config changed");
        self.config.send_replace(config);
        Ok(())
    }

    /// Cuts (`true`) or restores (`false`) the link; cancels a pending `outage_for`.
    pub fn set_outage(&self, outage: bool) {
        self.cancel_outage_end();
        self.apply_outage(outage);
    }

    /// Cuts the link now and restores it after `duration`, unless another config change
    /// comes first.
    pub fn outage_for(&self, duration: Duration) {
        self.set_outage(true);
        let config = Arc::clone(&self.config);
        let ender = self.runtime.spawn(async move {
            tokio::time::sleep(duration).await;
            tracing::debug!("relay outage over");
            config.send_modify(|c| c.outage = false);
        });
        *self.lock_outage_end() = Some(AbortOnDrop(ender.abort_handle()));
    }

    pub fn stats(&self) -> RelayStats {
        RelayStats {
            to_upstream: self.counters.to_upstream.snapshot(),
            to_client: self.counters.to_client.snapshot(),
            clients_seen: self.counters.clients_seen.load(Ordering::Relaxed),
            clients_rejected: self.counters.clients_rejected.load(Ordering::Relaxed),
        }
    }

    fn apply_outage(&self, outage: bool) {
        tracing::debug!(seed = self.seed, outage, "relay outage changed");
        self.config.send_modify(|c| c.outage = outage);
    }

    fn cancel_outage_end(&self) {
        // Dropping the guard aborts the timer.
        self.lock_outage_end().take();
    }

    fn lock_outage_end(&self) -> std::sync::MutexGuard<'_, Option<AbortOnDrop>> {
        // The lock only guards a swap of an Option; a panic while holding it cannot leave it
        // half-written, so a poisoned lock is still usable.
        self.outage_end.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Derives an independent RNG seed per client and direction, so that one direction's
/// traffic does not shift the other's random decisions (replays stay comparable).
fn link_seed(seed: u64, client_index: u64, to_client: bool) -> u64 {
    // splitmix64 finaliser: cheap, and neighbouring inputs give unrelated outputs.
    let mut z = seed ^ (client_index.wrapping_mul(2) + u64::from(to_client)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Reads the listen socket and hands each datagram to its client's session.
struct Listener {
    socket: Arc<UdpSocket>,
    upstream: SocketAddr,
    seed: u64,
    config: watch::Receiver<LinkConfig>,
    counters: Arc<Counters>,
    clients: HashMap<SocketAddr, ClientHandle>,
}

struct ClientHandle {
    inbox: mpsc::Sender<Vec<u8>>,
    _task: AbortOnDrop,
}

impl Listener {
    async fn run(mut self) {
        let mut buf = vec![0u8; DATAGRAM_BYTES_MAX];
        loop {
            let (len, from) = match self.socket.recv_from(&mut buf).await {
                Ok(received) => received,
                Err(error) => {
                    // UDP receive errors are per-datagram (e.g. a truncated read); keep going.
                    tracing::debug!(%error, "relay: receive on listen socket failed");
                    continue;
                }
            };
            bump(&self.counters.to_upstream.received);
            let mut payload = buf[..len].to_vec();
            if let Some(client) = self.clients.get(&from) {
                match client.inbox.try_send(payload) {
                    Ok(()) => continue,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        bump(&self.counters.to_upstream.dropped_queue);
                        continue;
                    }
                    Err(mpsc::error::TrySendError::Closed(returned)) => {
                        // The session idled out; start a fresh one, as a NAT would.
                        self.clients.remove(&from);
                        payload = returned;
                    }
                }
            }
            self.open_client(from, payload).await;
        }
    }

    async fn open_client(&mut self, from: SocketAddr, payload: Vec<u8>) {
        if self.clients.len() >= CLIENTS_MAX {
            self.clients.retain(|_, client| !client.inbox.is_closed());
        }
        if self.clients.len() >= CLIENTS_MAX {
            bump(&self.counters.clients_rejected);
            bump(&self.counters.to_upstream.dropped_queue);
            tracing::warn!(%from, clients_max = CLIENTS_MAX, "relay: too many clients, dropping datagram");
            return;
        }
        let upstream_socket = match self.connect_upstream().await {
            Ok(socket) => socket,
            Err(error) => {
                bump(&self.counters.to_upstream.send_errors);
                tracing::warn!(%from, error = format!("{error:#}"), "relay: cannot open upstream socket");
                return;
            }
        };
        let client_index = self.counters.clients_seen.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%from, client_index, seed = self.seed, "relay: new client");
        let (inbox, inbox_rx) = mpsc::channel(CLIENT_INBOX_PACKETS_MAX);
        let session = ClientSession {
            client: from,
            listen_socket: Arc::clone(&self.socket),
            upstream_socket,
            inbox: inbox_rx,
            config: self.config.clone(),
            counters: Arc::clone(&self.counters),
            to_upstream: link::Link::new(link_seed(self.seed, client_index, false)),
            to_client: link::Link::new(link_seed(self.seed, client_index, true)),
        };
        let task = tokio::spawn(session.run()).abort_handle();
        // Cannot fail: the channel is new, empty and its receiver is alive in the task.
        if inbox.try_send(payload).is_err() {
            bump(&self.counters.to_upstream.dropped_queue);
        }
        self.clients.insert(from, ClientHandle { inbox, _task: AbortOnDrop(task) });
    }

    async fn connect_upstream(&self) -> anyhow::Result<UdpSocket> {
        let any: SocketAddr = if self.upstream.is_ipv4() { (Ipv4Addr::UNSPECIFIED, 0).into() } else { (Ipv6Addr::UNSPECIFIED, 0).into() };
        let socket = UdpSocket::bind(any).await.context("binding upstream socket")?;
        // Connected, so the kernel filters out datagrams from anyone but the upstream.
        socket.connect(self.upstream).await.with_context(|| format!("connecting upstream socket to {}", self.upstream))?;
        Ok(socket)
    }
}

/// One client: its own upstream socket and one simulated link per direction.
struct ClientSession {
    client: SocketAddr,
    listen_socket: Arc<UdpSocket>,
    upstream_socket: UdpSocket,
    inbox: mpsc::Receiver<Vec<u8>>,
    config: watch::Receiver<LinkConfig>,
    counters: Arc<Counters>,
    to_upstream: link::Link,
    to_client: link::Link,
}

impl ClientSession {
    async fn run(mut self) {
        let mut buf = vec![0u8; DATAGRAM_BYTES_MAX];
        let idle_max = Duration::from_millis(CLIENT_IDLE_MS_MAX);
        let mut active_at = Instant::now();
        loop {
            let idle_at = active_at + idle_max;
            let wake_at =
                [self.to_upstream.poll_timeout(), self.to_client.poll_timeout()].into_iter().flatten().fold(idle_at, Instant::min);
            tokio::select! {
                received = self.inbox.recv() => {
                    // The listener dropped the session: the relay is going away.
                    let Some(payload) = received else { return };
                    active_at = Instant::now();
                    let config = self.config.borrow().clone();
                    self.to_upstream.handle_datagram(active_at, &config, payload, &self.counters.to_upstream);
                }
                received = self.upstream_socket.recv(&mut buf) => match received {
                    Ok(len) => {
                        bump(&self.counters.to_client.received);
                        active_at = Instant::now();
                        let config = self.config.borrow().clone();
                        self.to_client.handle_datagram(active_at, &config, buf[..len].to_vec(), &self.counters.to_client);
                    }
                    // Typically ECONNREFUSED after the upstream port was closed; the next
                    // datagram may well succeed once it is back.
                    Err(error) => tracing::trace!(client = %self.client, %error, "relay: upstream receive failed"),
                },
                () = tokio::time::sleep_until(wake_at) => {
                    let idle = self.to_upstream.poll_timeout().is_none() && self.to_client.poll_timeout().is_none();
                    if idle && Instant::now() >= idle_at {
                        tracing::debug!(client = %self.client, "relay: client idle, closing session");
                        // The listener may have queued a datagram since the last wake-up.
                        // Closing first makes its next try_send open a fresh session, and
                        // what is already queued is counted rather than lost silently.
                        self.inbox.close();
                        while self.inbox.try_recv().is_ok() {
                            bump(&self.counters.to_upstream.dropped_queue);
                        }
                        return;
                    }
                }
            }
            self.flush().await;
        }
    }

    /// Sends everything that is due in both directions.
    async fn flush(&mut self) {
        let now = Instant::now();
        let config = self.config.borrow().clone();
        let up = &self.counters.to_upstream;
        while let Some(payload) = self.to_upstream.poll_transmit(now, &config, up) {
            match self.upstream_socket.send(&payload).await {
                Ok(_) => bump(&up.forwarded),
                Err(error) => {
                    bump(&up.send_errors);
                    tracing::trace!(client = %self.client, %error, "relay: send upstream failed");
                }
            }
        }
        let down = &self.counters.to_client;
        while let Some(payload) = self.to_client.poll_transmit(now, &config, down) {
            match self.listen_socket.send_to(&payload, self.client).await {
                Ok(_) => bump(&down.forwarded),
                Err(error) => {
                    bump(&down.send_errors);
                    tracing::trace!(client = %self.client, %error, "relay: send to client failed");
                }
            }
        }
    }
}
