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

/// The simulated link for one direction: a pure state machine. No sockets and no clock —
/// `now` comes in as an argument — so it is tested exactly, without waiting.
mod link {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    use std::time::Duration;

    use rand::rngs::StdRng;
    use rand::{Rng as _, SeedableRng as _};
    use tokio::time::Instant;

    use super::{bump, DirectionCounters, LinkConfig};

    /// Datagrams on the simulated wire (delay line) at once. Beyond it they are dropped as
    /// `dropped_queue`; keeps a huge delay times a fast sender from eating memory.
    const IN_FLIGHT_PACKETS_MAX: usize = 4096;
    /// Payload bytes on the simulated wire at once, for the same reason.
    const IN_FLIGHT_BYTES_MAX: usize = 16 * 1024 * 1024;
    /// How long a datagram picked for reordering waits for a successor before it is
    /// delivered anyway; otherwise the last datagram of a burst would never arrive.
    pub(super) const REORDER_HOLD_MS_MAX: u64 = 50;
    /// IPv4 + UDP headers: they use link capacity too, which matters for small QUIC ACKs.
    pub(super) const WIRE_OVERHEAD_BYTES: u64 = 28;

    /// Orders by delivery time, then by `seq`, so equal times keep their scheduling order.
    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    struct Scheduled {
        at: Instant,
        seq: u64,
        payload: Vec<u8>,
    }

    struct Held {
        at: Instant,
        release_at: Instant,
        payload: Vec<u8>,
    }

    /// Every random decision about one datagram.
    struct Fate {
        lost: bool,
        /// Propagation delay: `delay_ms` plus this datagram's jitter.
        delay: Duration,
        hold: bool,
        /// Propagation delay of the extra copy, if there is one (it has its own jitter).
        duplicate_delay: Option<Duration>,
    }

    impl Fate {
        fn draw(rng: &mut StdRng, config: &LinkConfig) -> Fate {
            let lost = roll(rng, config.loss);
            let delay = propagation_delay(rng, config);
            let hold = roll(rng, config.reorder);
            let duplicate = roll(rng, config.duplicate);
            let duplicate_delay = propagation_delay(rng, config);
            Fate { lost, delay, hold, duplicate_delay: duplicate.then_some(duplicate_delay) }
        }
    }

    fn propagation_delay(rng: &mut StdRng, config: &LinkConfig) -> Duration {
        let jitter_us = if config.jitter_ms == 0 { 0 } else { rng.gen_range(0..=config.jitter_ms.saturating_mul(1000)) };
        Duration::from_millis(config.delay_ms) + Duration::from_micros(jitter_us)
    }

    pub(super) struct Link {
        rng: StdRng,
        /// When the bandwidth limiter finishes serialising what it has accepted.
        wire_free_at: Option<Instant>,
        held: Option<Held>,
        queue: BinaryHeap<Reverse<Scheduled>>,
        queue_bytes: usize,
        seq_next: u64,
    }

    /// A draw that consumes no randomness at the certain ends, so a perfect link stays exact.
    fn roll(rng: &mut StdRng, p: f64) -> bool {
        if p <= 0.0 {
            false
        } else if p >= 1.0 {
            true
        } else {
            rng.gen_bool(p)
        }
    }

    fn serialisation_time(payload_bytes: usize, bytes_per_sec: u64) -> Duration {
        let bits = (payload_bytes as u128 + u128::from(WIRE_OVERHEAD_BYTES)) * 1_000_000_000;
        let nanos = bits / u128::from(bytes_per_sec);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    impl Link {
        pub(super) fn new(seed: u64) -> Self {
            Self { rng: StdRng::seed_from_u64(seed), wire_free_at: None, held: None, queue: BinaryHeap::new(), queue_bytes: 0, seq_next: 0 }
        }

        /// A datagram enters the link at `now`: decide its fate and delivery time.
        pub(super) fn handle_datagram(&mut self, now: Instant, config: &LinkConfig, payload: Vec<u8>, counters: &DirectionCounters) {
            // Drawn before anything can drop the datagram, so the k-th datagram's fate does
            // not depend on timing (queue drops) or outages: replays from a seed line up.
            let fate = Fate::draw(&mut self.rng, config);
            if config.outage {
                bump(&counters.dropped_outage);
                return;
            }
            if fate.lost {
                bump(&counters.dropped_loss);
                return;
            }
            let Some(departs_at) = self.serialise(now, config, payload.len()) else {
                bump(&counters.dropped_queue);
                return;
            };
            let at = departs_at + fate.delay;

            // A held datagram goes out right behind this one: that is the reordering.
            let released = self.held.take();
            if let Some(copy_delay) = fate.duplicate_delay {
                if self.push(departs_at + copy_delay, payload.clone()) {
                    bump(&counters.duplicated);
                } else {
                    bump(&counters.dropped_queue);
                }
            }
            if fate.hold && released.is_none() {
                let release_at = at + Duration::from_millis(REORDER_HOLD_MS_MAX);
                self.held = Some(Held { at, release_at, payload });
            } else if !self.push(at, payload) {
                bump(&counters.dropped_queue);
            }
            if let Some(held) = released {
                if self.push(held.at.max(at), held.payload) {
                    bump(&counters.reordered);
                } else {
                    bump(&counters.dropped_queue);
                }
            }
        }

        /// When the driver must call `poll_transmit` next; `None` when nothing is pending.
        #[must_use]
        pub(super) fn poll_timeout(&self) -> Option<Instant> {
            let next = self.queue.peek().map(|Reverse(s)| s.at);
            let held = self.held.as_ref().map(|h| h.release_at);
            match (next, held) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        }

        /// The next datagram due by `now`, if any. Call until `None`.
        #[must_use]
        pub(super) fn poll_transmit(&mut self, now: Instant, config: &LinkConfig, counters: &DirectionCounters) -> Option<Vec<u8>> {
            if self.held.as_ref().is_some_and(|h| h.release_at <= now) {
                if let Some(held) = self.held.take() {
                    // No successor came: deliver in order, so not counted as reordered.
                    if !self.push(held.at, held.payload) {
                        bump(&counters.dropped_queue);
                    }
                }
            }
            loop {
                match self.queue.peek() {
                    Some(Reverse(next)) if next.at <= now => {}
                    _ => return None,
                }
                let Reverse(scheduled) = self.queue.pop()?;
                self.queue_bytes -= scheduled.payload.len();
                if config.outage {
                    // The link went down while the datagram was on the wire.
                    bump(&counters.dropped_outage);
                    continue;
                }
                return Some(scheduled.payload);
            }
        }

        /// Bandwidth limiter with a bounded router queue: returns when the datagram has been
        /// fully put on the wire, or `None` when the queue is full.
        fn serialise(&mut self, now: Instant, config: &LinkConfig, len: usize) -> Option<Instant> {
            let Some(rate) = config.bandwidth_bytes_per_sec else {
                return Some(now);
            };
            let free_at = self.wire_free_at.map_or(now, |t| t.max(now));
            let backlog = free_at.saturating_duration_since(now);
            let backlog_bytes = backlog.as_nanos() * u128::from(rate) / 1_000_000_000;
            let fits = backlog_bytes + len as u128 <= config.queue_bytes_max as u128;
            if !backlog.is_zero() && !fits {
                return None;
            }
            let done_at = free_at + serialisation_time(len, rate);
            self.wire_free_at = Some(done_at);
            Some(done_at)
        }

        /// Schedules a datagram; `false` when the in-flight bounds are reached.
        fn push(&mut self, at: Instant, payload: Vec<u8>) -> bool {
            let full = self.queue.len() >= IN_FLIGHT_PACKETS_MAX || self.queue_bytes + payload.len() > IN_FLIGHT_BYTES_MAX;
            if full {
                return false;
            }
            self.queue_bytes += payload.len();
            let seq = self.seq_next;
            self.seq_next += 1;
            self.queue.push(Reverse(Scheduled { at, seq, payload }));
            true
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn ms(n: u64) -> Duration {
            Duration::from_millis(n)
        }

        /// Feeds `count` datagrams `[i]` at `now` and returns what comes out by `until`,
        /// stepping the clock through every timeout as a driver would.
        fn run(link: &mut Link, config: &LinkConfig, counters: &DirectionCounters, count: u8) -> Vec<(Duration, u8)> {
            let start = Instant::now();
            for i in 0..count {
                link.handle_datagram(start, config, vec![i], counters);
            }
            let mut out = Vec::new();
            // Bounded: each datagram leaves at most twice (a duplicate) and each step
            // delivers at least one or releases the held one.
            for _ in 0..(4 * usize::from(count) + 4) {
                let Some(now) = link.poll_timeout() else { break };
                while let Some(p) = link.poll_transmit(now, config, counters) {
                    out.push((now - start, p[0]));
                }
            }
            assert!(link.poll_timeout().is_none(), "link drained");
            out
        }

        #[test]
        fn perfect_link_delivers_in_order_at_once() {
            let counters = DirectionCounters::default();
            let out = run(&mut Link::new(1), &LinkConfig::default(), &counters, 10);
            let expected: Vec<_> = (0..10).map(|i| (Duration::ZERO, i)).collect();
            assert_eq!(out, expected);
        }

        #[test]
        fn delay_is_added_to_every_datagram() {
            let config = LinkConfig { delay_ms: 30, ..Default::default() };
            let counters = DirectionCounters::default();
            let out = run(&mut Link::new(1), &config, &counters, 3);
            assert_eq!(out, vec![(ms(30), 0), (ms(30), 1), (ms(30), 2)]);
        }

        #[test]
        fn bandwidth_serialises_one_after_another() {
            // 100 payload + 28 header bytes at 12_800 B/s = 10 ms each.
            let config = LinkConfig { bandwidth_bytes_per_sec: Some(12_800), ..Default::default() };
            let counters = DirectionCounters::default();
            let mut link = Link::new(1);
            let start = Instant::now();
            for i in 0..3u8 {
                link.handle_datagram(start, &config, vec![i; 100], &counters);
            }
            let mut out = Vec::new();
            while let Some(now) = link.poll_timeout() {
                while let Some(p) = link.poll_transmit(now, &config, &counters) {
                    out.push((now - start, p[0]));
                }
            }
            assert_eq!(out, vec![(ms(10), 0), (ms(20), 1), (ms(30), 2)]);
        }

        #[test]
        fn bandwidth_queue_overflow_drops_the_excess() {
            // 10 ms per datagram; queue of 300 bytes holds the one on the wire plus one more.
            let config = LinkConfig { bandwidth_bytes_per_sec: Some(12_800), queue_bytes_max: 300, ..Default::default() };
            let counters = DirectionCounters::default();
            let mut link = Link::new(1);
            let start = Instant::now();
            for i in 0..5u8 {
                link.handle_datagram(start, &config, vec![i; 100], &counters);
            }
            // Backlog before each: 0 (idle, accepted), 128, 256 (+100 > 300: drop), ...
            assert_eq!(counters.dropped_queue.load(std::sync::atomic::Ordering::Relaxed), 3);
            // Once the wire has drained, datagrams are accepted again.
            link.handle_datagram(start + ms(20), &config, vec![9; 100], &counters);
            let mut out = Vec::new();
            while let Some(now) = link.poll_timeout() {
                while let Some(p) = link.poll_transmit(now, &config, &counters) {
                    out.push((now - start, p[0]));
                }
            }
            assert_eq!(out, vec![(ms(10), 0), (ms(20), 1), (ms(30), 9)]);
        }

        #[test]
        fn reorder_puts_a_datagram_behind_its_successor() {
            let config = LinkConfig { reorder: 1.0, ..Default::default() };
            let counters = DirectionCounters::default();
            let out = run(&mut Link::new(1), &config, &counters, 5);
            // 0 held, released behind 1; 2 held behind 3; 4 held with no successor and
            // delivered after the hold limit.
            let hold = ms(REORDER_HOLD_MS_MAX);
            assert_eq!(out, vec![(ms(0), 1), (ms(0), 0), (ms(0), 3), (ms(0), 2), (hold, 4)]);
            assert_eq!(counters.reordered.load(std::sync::atomic::Ordering::Relaxed), 2);
        }

        #[test]
        fn duplicate_sends_two_copies() {
            let config = LinkConfig { duplicate: 1.0, ..Default::default() };
            let counters = DirectionCounters::default();
            let out = run(&mut Link::new(1), &config, &counters, 3);
            let payloads: Vec<u8> = out.iter().map(|(_, p)| *p).collect();
            assert_eq!(payloads, vec![0, 0, 1, 1, 2, 2]);
        }

        #[test]
        fn jitter_stays_within_bounds_and_reorders_some() {
            let config = LinkConfig { delay_ms: 10, jitter_ms: 20, ..Default::default() };
            let counters = DirectionCounters::default();
            let out = run(&mut Link::new(7), &config, &counters, 100);
            assert_eq!(out.len(), 100);
            assert!(out.iter().all(|(t, _)| (ms(10)..=ms(30)).contains(t)));
            let payloads: Vec<u8> = out.iter().map(|(_, p)| *p).collect();
            assert!(payloads.windows(2).any(|w| w[0] > w[1]), "jitter reorders");
        }

        #[test]
        fn outage_drops_datagrams_already_on_the_wire() {
            let mut config = LinkConfig { delay_ms: 10, ..Default::default() };
            let counters = DirectionCounters::default();
            let mut link = Link::new(1);
            let start = Instant::now();
            link.handle_datagram(start, &config, vec![0], &counters);
            config.outage = true;
            link.handle_datagram(start, &config, vec![1], &counters);
            assert_eq!(link.poll_transmit(start + ms(10), &config, &counters), None);
            assert_eq!(counters.dropped_outage.load(std::sync::atomic::Ordering::Relaxed), 2);
        }

        #[test]
        fn a_dropped_datagram_does_not_shift_later_fates() {
            let lossy = LinkConfig { loss: 0.5, jitter_ms: 5, ..Default::default() };
            let cut = LinkConfig { outage: true, ..lossy.clone() };
            let start = Instant::now();
            let deliveries = |outage_at: Option<u8>| {
                let (mut link, counters) = (Link::new(5), DirectionCounters::default());
                for i in 0..50u8 {
                    let config = if Some(i) == outage_at { &cut } else { &lossy };
                    link.handle_datagram(start, config, vec![i], &counters);
                }
                let mut out = Vec::new();
                while let Some(now) = link.poll_timeout() {
                    while let Some(p) = link.poll_transmit(now, &lossy, &counters) {
                        out.push((now, p[0]));
                    }
                }
                out
            };
            let mut expected = deliveries(None);
            expected.retain(|&(_, i)| i != 10);
            assert_eq!(deliveries(Some(10)), expected);
        }

        #[test]
        fn same_seed_same_decisions() {
            let config = LinkConfig { loss: 0.3, jitter_ms: 5, reorder: 0.2, duplicate: 0.1, ..Default::default() };
            let a = run(&mut Link::new(42), &config, &DirectionCounters::default(), 200);
            let b = run(&mut Link::new(42), &config, &DirectionCounters::default(), 200);
            let c = run(&mut Link::new(43), &config, &DirectionCounters::default(), 200);
            assert_eq!(a, b);
            assert_ne!(a, c);
        }
    }
}
