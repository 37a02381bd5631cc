//! Self tests of the UDP relay, with a plain UDP echo server as upstream (no QUIC).
//!
//! Not flaky by construction: senders pace themselves on the relay's own `received` counter
//! (so no kernel buffer overflows), waits are for counters or payloads to appear (the
//! deadline only matters on failure), and random outcomes come from fixed seeds with wide
//! bounds. Failure messages include the relay's Debug, which carries the seed.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness::relay::{LinkConfig, Relay, RelayStats};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Upper bound for any wait; only reached when a test is failing.
const WAIT_MS_MAX: u64 = 3_000;
/// Datagrams a test sender puts in flight before waiting for the relay to read them; well
/// below what a loopback socket buffer holds.
const SEND_WINDOW_PACKETS: usize = 32;

/// Aborts a helper task when the test is done with it.
struct Task(JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn localhost() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

/// Echoes every datagram back to its sender and remembers who sent.
struct Echo {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<SocketAddr>>>,
    _task: Task,
}

impl Echo {
    async fn start() -> Echo {
        let socket = UdpSocket::bind(localhost()).await.expect("bind echo socket");
        let addr = socket.local_addr().expect("echo address");
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&received);
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 65_535];
            loop {
                let Ok((len, from)) = socket.recv_from(&mut buf).await else { continue };
                log.lock().expect("echo log").push(from);
                let _ = socket.send_to(&buf[..len], from).await;
            }
        });
        Echo { addr, received, _task: Task(task) }
    }

    fn count(&self) -> u64 {
        self.received.lock().expect("echo log").len() as u64
    }

    fn peers(&self) -> HashSet<SocketAddr> {
        self.received.lock().expect("echo log").iter().copied().collect()
    }
}

/// A UDP client talking to the relay, collecting every reply.
struct Client {
    socket: Arc<UdpSocket>,
    replies: Arc<Mutex<Vec<Vec<u8>>>>,
    _task: Task,
}

impl Client {
    async fn connect(relay: &Relay) -> Client {
        let socket = UdpSocket::bind(localhost()).await.expect("bind client socket");
        socket.connect(relay.addr()).await.expect("connect client socket");
        let socket = Arc::new(socket);
        let replies = Arc::new(Mutex::new(Vec::new()));
        let (reader, log) = (Arc::clone(&socket), Arc::clone(&replies));
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 65_535];
            loop {
                if let Ok(len) = reader.recv(&mut buf).await {
                    log.lock().expect("client log").push(buf[..len].to_vec());
                }
            }
        });
        Client { socket, replies, _task: Task(task) }
    }

    async fn send(&self, payload: &[u8]) {
        self.socket.send(payload).await.expect("client send");
    }

    /// Sends `payload(seq)` for each seq, pacing on the relay's `received` counter so the
    /// relay's socket buffer never overflows (which would look like loss).
    async fn send_paced(&self, relay: &Relay, seqs: std::ops::Range<u64>, payload: impl Fn(u64) -> Vec<u8>) {
        let mut read_target = relay.stats().to_upstream.received;
        let seqs: Vec<u64> = seqs.collect();
        for window in seqs.chunks(SEND_WINDOW_PACKETS) {
            for &seq in window {
                self.send(&payload(seq)).await;
            }
            read_target += window.len() as u64;
            wait_until(relay, "relay read the window", |s| s.to_upstream.received >= read_target).await;
        }
    }

    fn replies(&self) -> Vec<Vec<u8>> {
        self.replies.lock().expect("client log").clone()
    }

    fn reply_count(&self) -> u64 {
        self.replies.lock().expect("client log").len() as u64
    }
}

fn seq_payload(seq: u64) -> Vec<u8> {
    seq.to_be_bytes().to_vec()
}

fn seq_of(payload: &[u8]) -> u64 {
    let bytes: [u8; 8] = payload[..8].try_into().expect("payload starts with a seq");
    u64::from_be_bytes(bytes)
}

/// Polls until `done(stats)` holds; panics with the seed and counters after `WAIT_MS_MAX`.
async fn wait_until(relay: &Relay, what: &str, mut done: impl FnMut(&RelayStats) -> bool) {
    let deadline = Instant::now() + Duration::from_millis(WAIT_MS_MAX);
    loop {
        let stats = relay.stats();
        if done(&stats) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}\n{relay:?}\n{stats:#?}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn setup(config: LinkConfig, seed: u64) -> (Echo, Relay) {
    let echo = Echo::start().await;
    let relay = Relay::start(echo.addr, config, seed).await.expect("start relay");
    (echo, relay)
}

#[tokio::test]
async fn perfect_link_delivers_everything_in_order() {
    let (echo, relay) = setup(LinkConfig::default(), 1).await;
    let client = Client::connect(&relay).await;
    client.send_paced(&relay, 0..500, seq_payload).await;
    wait_until(&relay, "all replies", |_| client.reply_count() == 500).await;

    let seqs: Vec<u64> = client.replies().iter().map(|p| seq_of(p)).collect();
    assert_eq!(seqs, (0..500).collect::<Vec<_>>(), "{relay:?}");
    let stats = relay.stats();
    for dir in [stats.to_upstream, stats.to_client] {
        assert_eq!((dir.received, dir.forwarded), (500, 500), "{relay:?} {stats:#?}");
        let dropped = dir.dropped_loss + dir.dropped_outage + dir.dropped_queue;
        assert_eq!((dropped, dir.duplicated, dir.reordered, dir.send_errors), (0, 0, 0, 0));
    }
    assert_eq!(echo.count(), 500);
}

#[tokio::test]
async fn total_loss_delivers_nothing() {
    let config = LinkConfig { loss: 1.0, ..Default::default() };
    let (echo, relay) = setup(config, 2).await;
    let client = Client::connect(&relay).await;
    client.send_paced(&relay, 0..100, seq_payload).await;

    // Every datagram has been decided on; none was sent, so none can arrive later.
    let stats = relay.stats();
    assert_eq!(stats.to_upstream.dropped_loss, 100, "{relay:?} {stats:#?}");
    assert_eq!(stats.to_upstream.forwarded, 0, "{relay:?} {stats:#?}");
    assert_eq!(echo.count(), 0);
    assert_eq!(client.reply_count(), 0);
}

#[tokio::test]
async fn partial_loss_delivers_roughly_the_rest() {
    let config = LinkConfig { loss: 0.3, ..Default::default() };
    let (echo, relay) = setup(config, 3).await;
    let client = Client::connect(&relay).await;
    client.send_paced(&relay, 0..1000, seq_payload).await;

    let up = relay.stats().to_upstream;
    assert_eq!(up.forwarded + up.dropped_loss, 1000, "{relay:?} {up:#?}");
    // Binomial(1000, 0.7) has sd ~14.5: these bounds are seven sd wide.
    assert!((600..=800).contains(&up.forwarded), "{relay:?} {up:#?}");

    // Replies take their own 30% chance on the way back.
    wait_until(&relay, "replies decided", |s| {
        let down = s.to_client;
        echo.count() == up.forwarded && down.received == up.forwarded && down.forwarded + down.dropped_loss == down.received
    })
    .await;
    let down = relay.stats().to_client;
    wait_until(&relay, "replies arrived", |_| client.reply_count() == down.forwarded).await;
    assert!((350..=650).contains(&down.forwarded), "{relay:?} {down:#?}");
}

#[tokio::test]
async fn duplication_produces_extra_copies() {
    let config = LinkConfig { duplicate: 1.0, ..Default::default() };
    let (echo, relay) = setup(config, 4).await;
    let client = Client::connect(&relay).await;
    client.send_paced(&relay, 0..100, seq_payload).await;
    // Doubled on the way up, each copy echoed and doubled again on the way down.
    wait_until(&relay, "four copies of each", |_| client.reply_count() == 400).await;

    let stats = relay.stats();
    assert_eq!((stats.to_upstream.duplicated, stats.to_upstream.forwarded), (100, 200), "{stats:#?}");
    assert_eq!((stats.to_client.duplicated, stats.to_client.forwarded), (200, 400), "{stats:#?}");
    assert_eq!(echo.count(), 200);
    let mut copies = vec![0u32; 100];
    for reply in client.replies() {
        copies[usize::try_from(seq_of(&reply)).expect("small seq")] += 1;
    }
    assert!(copies.iter().all(|&n| n == 4), "{copies:?}");
}

#[tokio::test]
async fn outage_drops_then_recovers() {
    let (echo, relay) = setup(LinkConfig::default(), 5).await;
    let client = Client::connect(&relay).await;

    relay.set_outage(true);
    client.send_paced(&relay, 0..20, seq_payload).await;
    let stats = relay.stats();
    assert_eq!((stats.to_upstream.dropped_outage, stats.to_upstream.forwarded), (20, 0), "{stats:#?}");
    assert_eq!(echo.count(), 0);

    relay.set_outage(false);
    client.send_paced(&relay, 20..40, seq_payload).await;
    wait_until(&relay, "replies after set_outage(false)", |_| client.reply_count() == 20).await;

    // outage_for cuts at once and restores by itself.
    relay.outage_for(Duration::from_millis(50));
    assert!(relay.config().outage);
    wait_until(&relay, "outage_for to end", |_| !relay.config().outage).await;
    client.send_paced(&relay, 40..60, seq_payload).await;
    wait_until(&relay, "replies after outage_for", |_| client.reply_count() == 40).await;
    let seqs: Vec<u64> = client.replies().iter().map(|p| seq_of(p)).collect();
    assert_eq!(seqs, (20..60).collect::<Vec<_>>());
}

#[tokio::test]
async fn bandwidth_cap_queues_then_drops_the_excess() {
    // (972 + 28 header) bytes at 20_000 B/s = 50 ms per datagram; the queue holds four.
    let config = LinkConfig { bandwidth_bytes_per_sec: Some(20_000), queue_bytes_max: 4_000, ..Default::default() };
    let (_echo, relay) = setup(config, 6).await;
    let client = Client::connect(&relay).await;
    let padded = |seq: u64| {
        let mut p = seq_payload(seq);
        p.resize(972, 0);
        p
    };
    let start = Instant::now();
    // One unpaced burst (40 KB, far below a socket buffer): that is what overflows a queue.
    for seq in 0..40 {
        client.send(&padded(seq)).await;
    }
    wait_until(&relay, "burst read", |s| s.to_upstream.received == 40).await;
    let up = relay.stats().to_upstream;
    // The backlog before datagram k is at most k * 1000 bytes whatever the timing, so 0..4
    // always fit; dropping none would need the relay to spread the burst over two seconds.
    assert!(up.dropped_queue > 0, "{relay:?} {up:#?}");
    let accepted = 40 - up.dropped_queue;
    assert!(accepted >= 4, "{relay:?} {up:#?}");

    wait_until(&relay, "accepted datagrams echoed", |_| client.reply_count() == accepted).await;
    let seqs: Vec<u64> = client.replies().iter().map(|p| seq_of(p)).collect();
    assert_eq!(seqs[..4], [0, 1, 2, 3], "{relay:?}");
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "a FIFO link keeps order: {seqs:?}");
    // One-sided, so it cannot flake: the relay never sends before the scheduled time, and the
    // fourth datagram leaves after four serialisation slots, its reply after one more.
    assert!(start.elapsed() >= Duration::from_millis(250), "{:?}", start.elapsed());
    let stats = relay.stats();
    assert_eq!(stats.to_client.dropped_queue, 0, "replies arrive spaced: {stats:#?}");
}

#[tokio::test]
async fn clients_are_kept_apart() {
    let (echo, relay) = setup(LinkConfig::default(), 7).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(Client::connect(&relay).await);
    }
    for round in 0..2u64 {
        for (id, client) in clients.iter().enumerate() {
            let tagged = |seq: u64| {
                let mut p = seq_payload(seq);
                p.push(u8::try_from(id).expect("few clients"));
                p
            };
            client.send_paced(&relay, round * 25..(round + 1) * 25, tagged).await;
        }
    }
    for client in &clients {
        wait_until(&relay, "each client's replies", |_| client.reply_count() == 50).await;
    }
    for (id, client) in clients.iter().enumerate() {
        let replies = client.replies();
        assert!(replies.iter().all(|p| usize::from(p[8]) == id), "client {id} got another's reply");
        let seqs: Vec<u64> = replies.iter().map(|p| seq_of(p)).collect();
        assert_eq!(seqs, (0..50).collect::<Vec<_>>());
    }
    assert_eq!(relay.stats().clients_seen, 3);
    let peers = echo.peers();
    assert_eq!(peers.len(), 3, "one upstream socket per client: {peers:?}");
    assert!(!peers.contains(&relay.addr()));
}

#[tokio::test]
async fn dropping_the_relay_closes_its_sockets() {
    let (echo, relay) = setup(LinkConfig::default(), 8).await;
    let client = Client::connect(&relay).await;
    client.send_paced(&relay, 0..5, seq_payload).await;
    wait_until(&relay, "replies", |_| client.reply_count() == 5).await;
    let mut ports: Vec<SocketAddr> = echo.peers().into_iter().collect();
    ports.push(relay.addr());
    drop(relay);

    // A port can be bound again only once the task owning its socket has stopped. (The
    // upstream socket is bound to 0.0.0.0, which blocks 127.0.0.1 on the same port.)
    let deadline = Instant::now() + Duration::from_millis(WAIT_MS_MAX);
    for addr in ports {
        while UdpSocket::bind(addr).await.is_err() {
            assert!(Instant::now() < deadline, "{addr} still bound after drop");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

#[tokio::test]
async fn invalid_config_is_rejected() {
    let echo = Echo::start().await;
    let bad = LinkConfig { loss: 1.5, ..Default::default() };
    assert!(Relay::start(echo.addr, bad.clone(), 9).await.is_err());
    let relay = Relay::start(echo.addr, LinkConfig::default(), 9).await.expect("start relay");
    assert!(relay.set_config(bad).is_err());
    assert_eq!(relay.config(), LinkConfig::default());
}
