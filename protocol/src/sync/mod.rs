//! The sync exchange as two sans-IO state machines, one per side.
//!
//! Neither side touches a socket, a disk or a clock. The branch agent feeds
//! [`BranchSync`] the messages it reads and its journal head, and asks it what to send;
//! HQ feeds [`HqSession`] messages plus an [`HqContext`] view of its durable state and
//! carries out the returned [`HqStep`]. The exchange:
//!
//! ```text
//! branch                                  HQ
//!   Hello{branch, head, profile_version} →
//!                                       ← Resume{applied head, new profile?}
//!   Batch(entries applied+1 ..)          →  verify sig, chain → Apply → flush
//!   Batch(...) (up to a window in flight)← Ack{applied}
//!                                       ← ResendFrom{seq}   (gap)
//!                                       ← Reject{code,text} (forged, fork, malformed)
//!                                       ← Down(signed bytes) (HQ's queue, from down_applied+1)
//!   DownAck{seq} (once durably applied)  →
//!   Draft(signed bytes) (unacked drafts) →  verify sig → store → flush
//!                                       ← DraftAck{id}
//! ```
//!
//! Drafts (`crate::approval`) go up the same stream: the branch sends every draft HQ has
//! not acked after each resume; HQ keeps one per (branch, id), so a resend is acked again
//! and changes nothing.
//!
//! The down channel (`crate::down`) rides the same stream: the hello says how far the
//! branch applied HQ's messages; HQ sends its queue from there in windows of
//! [`crate::down::DOWN_WINDOW_MAX`]; the branch verifies, applies durably, then acks.
//!
//! Time comes in as an argument too (`now_ms`, the agent's monotonic clock, as in
//! quinn-proto's `handle(now, …)` / `poll_timeout()`): the branch's reconnect backoff with
//! its seeded jitter and the stall timer are decided here, so the simulation tests them
//! without waiting and the agent only sleeps until [`BranchSync::poll_timeout`].
//!
//! Exactly-once follows from three rules: HQ applies an entry only if it extends its
//! chain head; HQ acks only after the apply is durable; the branch resends everything
//! after the last ack. Duplicates are therefore acked and skipped, never applied twice.

use std::collections::VecDeque;

use ed25519_dalek::VerifyingKey;

use crate::batch::{SignedBatch, BATCH_BYTES_MAX, BATCH_ENTRIES_MAX};
use crate::codes::BranchCode;
use crate::down::{DownQueue, DOWN_WINDOW_MAX};
use crate::error::BatchError;
use crate::journal::{place_run, ChainHead, EntryHash, Placement, VerifiedEntry};
use crate::profile::BranchProfile;
use crate::wire::{Message, RejectCode};

mod branch;
mod hq;

pub use branch::*;
pub use hq::*;

/// Bounds on what a branch puts on the wire at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncLimits {
    pub batch_entries_max: usize,
    pub batch_bytes_max: usize,
    /// Batches sent but not yet acked. More hides latency; fewer wastes less on a resend.
    pub inflight_batches_max: usize,
}

impl Default for SyncLimits {
    fn default() -> Self {
        SyncLimits { batch_entries_max: 500, batch_bytes_max: 1024 * 1024, inflight_batches_max: 4 }
    }
}

impl SyncLimits {
    pub fn checked(self) -> SyncLimits {
        assert!(self.batch_entries_max >= 1 && self.batch_entries_max <= BATCH_ENTRIES_MAX);
        assert!(self.batch_bytes_max >= 1 && self.batch_bytes_max <= BATCH_BYTES_MAX);
        assert!(self.inflight_batches_max >= 1);
        self
    }
}

/// The branch side's timing, in milliseconds of the agent's monotonic clock (passed in as
/// `now_ms`; this crate never reads a clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncTimers {
    /// First reconnect delay after a failure; doubles up to `reconnect_delay_ms_max`.
    pub reconnect_delay_ms_min: u64,
    pub reconnect_delay_ms_max: u64,
    /// No ack progress for this long while batches are in flight (or no resume this long
    /// after a hello): the link is stalled, drop it and reconnect. Longer than QUIC's idle
    /// timeout, so it catches a link that keeps alive but carries nothing, not a dead one.
    pub stall_ms: u64,
}

impl Default for SyncTimers {
    fn default() -> Self {
        SyncTimers { reconnect_delay_ms_min: 250, reconnect_delay_ms_max: 30_000, stall_ms: 30_000 }
    }
}

impl SyncTimers {
    pub fn checked(self) -> SyncTimers {
        assert!(self.reconnect_delay_ms_min >= 1);
        assert!(self.reconnect_delay_ms_max >= self.reconnect_delay_ms_min);
        assert!(self.stall_ms >= 1);
        self
    }
}

/// Exponential reconnect backoff with jitter on the upper half of each delay, so branches
/// that lost HQ together don't come back in lockstep. The jitter comes from a generator
/// seeded by the caller: a simulation replays it exactly, the agent seeds it at random.
#[derive(Clone, Debug)]
pub struct Backoff {
    delay_ms_min: u64,
    delay_ms_max: u64,
    /// Upper bound of the next wait.
    delay_ms: u64,
    jitter: SplitMix64,
}

impl Backoff {
    pub fn new(delay_ms_min: u64, delay_ms_max: u64, jitter_seed: u64) -> Backoff {
        assert!(delay_ms_min >= 1 && delay_ms_max >= delay_ms_min);
        Backoff { delay_ms_min, delay_ms_max, delay_ms: delay_ms_min, jitter: SplitMix64(jitter_seed) }
    }

    /// The link made progress: the next failure waits the minimum again.
    pub fn reset(&mut self) {
        self.delay_ms = self.delay_ms_min;
    }

    /// How long to wait after a failure: within `[delay / 2, delay]`; the delay then
    /// doubles, capped at the maximum.
    #[must_use]
    pub fn next_wait_ms(&mut self) -> u64 {
        let half = self.delay_ms / 2;
        let wait_ms = half + self.jitter.below_or_at(self.delay_ms - half);
        self.delay_ms = self.delay_ms.saturating_mul(2).min(self.delay_ms_max);
        wait_ms
    }

    /// Upper bound of the next wait.
    pub fn delay_ms(&self) -> u64 {
        self.delay_ms
    }
}

/// splitmix64: tiny, seedable, good enough to spread reconnects (not for secrets).
#[derive(Clone, Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform enough in `0..=bound` (the modulo bias is below 2^-40 for our delays).
    fn below_or_at(&mut self, bound: u64) -> u64 {
        match bound.checked_add(1) {
            Some(n) => self.next() % n,
            None => self.next(),
        }
    }
}

pub(crate) fn message_name(m: &Message) -> &'static str {
    match m {
        Message::Hello { .. } => "hello",
        Message::Resume { .. } => "resume",
        Message::Batch(_) => "batch",
        Message::Ack { .. } => "ack",
        Message::ResendFrom { .. } => "resend",
        Message::Reject { .. } => "reject",
        Message::Enroll { .. } => "enroll",
        Message::Enrolled { .. } => "enrolled",
        Message::Profile { .. } => "profile",
        Message::Down(_) => "down",
        Message::DownAck { .. } => "down ack",
        Message::Draft(_) => "draft",
        Message::DraftAck { .. } => "draft ack",
    }
}
