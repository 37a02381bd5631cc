//! The simulated link for one direction: a pure state machine. No sockets and no clock —
//! `now` comes in as an argument — so it is tested exactly, without waiting.
//!
//! Must not: touch a socket, a task or the clock; `Relay` moves datagrams and time in
//! and out of it.

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
