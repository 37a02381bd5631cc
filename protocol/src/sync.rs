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

/// A branch timer that fired (see [`BranchSync::poll_timeout`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BranchTimeout {
    /// The reconnect delay is over: connect again.
    Reconnect,
    /// HQ made no progress for `waited_ms` with `inflight` batches unacked (0: no resume
    /// after the hello). The state machine already counts the link as lost; the agent
    /// closes the connection.
    Stalled { waited_ms: u64, inflight: usize },
}

/// Where the branch side of a connection is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BranchState {
    Disconnected,
    AwaitingResume,
    Streaming,
    /// HQ's history and this branch's disagree (`BranchBehind` or `Fork`): the branch sends
    /// nothing more and must stop posting; only a rebuild from HQ (the provisioning path)
    /// ends this. Never left once entered.
    Halted(SyncError),
}

/// Something the branch agent must act on after a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BranchEvent {
    /// HQ told us where it stands; persist `applied` as acked, install `profile` if any.
    Resumed { applied: u64, profile: Option<Box<BranchProfile>> },
    /// Persist the new acked sequence.
    Acked { applied: u64 },
    /// HQ's history and ours disagree: persist the halt (so a restart does not post
    /// again), refuse every post, say why everywhere, and wait for a rebuild.
    Halted(SyncError),
    /// HQ saw a gap; sending restarts from `from`.
    Resend { from: u64 },
    /// HQ pushed a newer profile; install it.
    Profile(Box<BranchProfile>),
    /// A down message (signed bytes, not yet verified): verify and apply it durably
    /// (`crate::down::DownReceiver`), then send [`BranchSync::down_applied`]'s ack.
    Down(Vec<u8>),
    /// HQ holds draft `id` durably: stop resending it.
    DraftAcked { id: u64 },
}

/// Why the branch side stopped. The agent shows it as "last error" and backs off.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    #[error("HQ refused: {code:?}: {text}")]
    Rejected { code: RejectCode, text: String },
    #[error("HQ has applied up to seq {hq} but this branch's journal ends at {local}: the data directory was restored from an old copy; posting is stopped until the branch is rebuilt from HQ")]
    BranchBehind { hq: u64, local: u64 },
    #[error("HQ holds a different entry {seq} than this branch (a restored old copy that posted again, or tampering): the journals have forked; posting is stopped until the branch is rebuilt from HQ")]
    Fork { seq: u64 },
    #[error("protocol violation by HQ: {0}")]
    Protocol(String),
}

/// A batch to build: entries from `from`, at most `entries_max` of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendPlan {
    pub from: u64,
    pub entries_max: usize,
}

/// Branch side of the exchange.
#[derive(Debug)]
pub struct BranchSync {
    branch: BranchCode,
    limits: SyncLimits,
    head: ChainHead,
    acked: u64,
    next_send: u64,
    inflight: VecDeque<(u64, u64)>,
    state: BranchState,
    timers: SyncTimers,
    backoff: Backoff,
    /// While disconnected: when to connect again.
    reconnect_at_ms: u64,
    /// When HQ last made progress on this connection (or the connection started).
    progress_at_ms: u64,
    /// HQ acknowledged something on this connection: the next failure backs off from the
    /// minimum again.
    progressed: bool,
    /// Last down message applied durably (said in every hello).
    down_applied: u64,
}

impl BranchSync {
    /// A branch that is disconnected and may connect at once. `jitter_seed` seeds the
    /// reconnect jitter (random in the agent, fixed in a simulation).
    pub fn new(branch: BranchCode, limits: SyncLimits, timers: SyncTimers, head: ChainHead, acked: u64, jitter_seed: u64) -> BranchSync {
        assert!(acked <= head.seq, "acked {acked} beyond local head {}", head.seq);
        let timers = timers.checked();
        BranchSync {
            branch,
            limits: limits.checked(),
            head,
            acked,
            next_send: acked + 1,
            inflight: VecDeque::new(),
            state: BranchState::Disconnected,
            timers,
            backoff: Backoff::new(timers.reconnect_delay_ms_min, timers.reconnect_delay_ms_max, jitter_seed),
            reconnect_at_ms: 0,
            progress_at_ms: 0,
            progressed: false,
            down_applied: 0,
        }
    }

    /// Sets what the branch has stored as its down mark (at start, before the first hello).
    pub fn set_down_applied(&mut self, seq: u64) {
        self.down_applied = seq;
    }

    /// The agent applied down message `seq` durably: the ack to send.
    #[must_use]
    pub fn down_applied(&mut self, seq: u64) -> Message {
        self.down_applied = self.down_applied.max(seq);
        Message::DownAck { seq: self.down_applied }
    }

    pub fn down_applied_seq(&self) -> u64 {
        self.down_applied
    }

    /// A new connection (call it before the connection attempt, so a failed attempt backs
    /// off too): forget what was in flight (unacked batches will be resent) and say hello.
    pub fn connect(&mut self, now_ms: u64, profile_version: u64, agent: &str) -> Message {
        assert!(self.halted().is_none(), "a halted branch does not connect; it waits for a rebuild");
        self.inflight.clear();
        self.next_send = self.acked + 1;
        self.state = BranchState::AwaitingResume;
        self.progress_at_ms = now_ms;
        self.progressed = false;
        Message::Hello { branch: self.branch, head: self.head, profile_version, down_applied: self.down_applied, agent: agent.to_string() }
    }

    /// The connection is gone (or never came up). Sets the reconnect timer; a second call
    /// for the same loss does nothing.
    pub fn disconnected(&mut self, now_ms: u64) {
        if self.state != BranchState::Disconnected && self.halted().is_none() {
            self.link_lost(now_ms);
        }
    }

    fn link_lost(&mut self, now_ms: u64) {
        if self.halted().is_some() {
            return;
        }
        self.inflight.clear();
        self.next_send = self.acked + 1;
        self.state = BranchState::Disconnected;
        if self.progressed {
            self.backoff.reset();
        }
        self.progressed = false;
        self.reconnect_at_ms = now_ms.saturating_add(self.backoff.next_wait_ms());
    }

    /// When the agent must call [`BranchSync::handle_timeout`] next, on its clock; `None`
    /// while nothing is awaited (connected, all acked).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        match self.state {
            BranchState::Disconnected => Some(self.reconnect_at_ms),
            BranchState::AwaitingResume => Some(self.progress_at_ms.saturating_add(self.timers.stall_ms)),
            BranchState::Streaming if !self.inflight.is_empty() => Some(self.progress_at_ms.saturating_add(self.timers.stall_ms)),
            BranchState::Streaming => None,
            BranchState::Halted(_) => None,
        }
    }

    /// Time passed; says what, if anything, is due. A stall counts as the link lost.
    pub fn handle_timeout(&mut self, now_ms: u64) -> Option<BranchTimeout> {
        let due = self.poll_timeout().is_some_and(|at| now_ms >= at);
        if !due {
            return None;
        }
        if self.state == BranchState::Disconnected {
            return Some(BranchTimeout::Reconnect);
        }
        let stalled = BranchTimeout::Stalled { waited_ms: now_ms - self.progress_at_ms, inflight: self.inflight.len() };
        self.link_lost(now_ms);
        Some(stalled)
    }

    /// Upper bound of the wait after the next failure (for status pages and tests).
    pub fn backoff_delay_ms(&self) -> u64 {
        self.backoff.delay_ms()
    }

    pub fn timers(&self) -> SyncTimers {
        self.timers
    }

    /// The local journal grew.
    pub fn local_posted(&mut self, head: ChainHead) {
        assert!(head.seq >= self.head.seq, "journal went backwards");
        self.head = head;
    }

    pub fn state(&self) -> &BranchState {
        &self.state
    }
    pub fn acked(&self) -> u64 {
        self.acked
    }
    pub fn head(&self) -> ChainHead {
        self.head
    }
    /// Documents posted here that HQ has not yet acknowledged.
    pub fn pending(&self) -> u64 {
        self.head.seq - self.acked
    }
    pub fn inflight(&self) -> usize {
        self.inflight.len()
    }

    /// The seq of this branch's own journal entry whose hash [`Self::handle`] needs for
    /// `msg`: a resume below our head is checked against our entry at HQ's applied seq
    /// (a branch restored from an old copy and posting again has a different entry there).
    #[must_use]
    pub fn own_needed(&self, msg: &Message) -> Option<u64> {
        match msg {
            Message::Resume { applied, .. } if applied.seq > 0 && applied.seq < self.head.seq => Some(applied.seq),
            _ => None,
        }
    }

    /// The halt, if HQ's history and ours disagreed.
    pub fn halted(&self) -> Option<&SyncError> {
        match &self.state {
            BranchState::Halted(e) => Some(e),
            _ => None,
        }
    }

    /// Enters the halted state (also at start, from a halt the agent stored).
    pub fn halt(&mut self, why: SyncError) {
        self.inflight.clear();
        self.state = BranchState::Halted(why);
    }

    fn halt_event(&mut self, why: SyncError) -> Result<Option<BranchEvent>, SyncError> {
        self.halt(why.clone());
        Ok(Some(BranchEvent::Halted(why)))
    }

    /// A message from HQ, received at `now_ms`. `own` is the hash of our own journal
    /// entry at [`Self::own_needed`]'s seq, when it asked for one (`None` if we hold no
    /// such entry, which counts as a mismatch).
    pub fn handle(&mut self, now_ms: u64, msg: Message, own: Option<EntryHash>) -> Result<Option<BranchEvent>, SyncError> {
        if self.halted().is_some() {
            // Nothing HQ says undoes a disagreement of histories; keep saying why.
            return Ok(None);
        }
        let own_seq = self.own_needed(&msg);
        match msg {
            Message::Resume { applied, profile } => {
                if self.state != BranchState::AwaitingResume {
                    return Err(SyncError::Protocol("resume outside of a hello".into()));
                }
                if applied.seq > self.head.seq {
                    return self.halt_event(SyncError::BranchBehind { hq: applied.seq, local: self.head.seq });
                }
                if applied.seq == self.head.seq && applied.hash != self.head.hash {
                    return self.halt_event(SyncError::Fork { seq: applied.seq });
                }
                if own_seq.is_some() && own != Some(applied.hash) {
                    // HQ's entry at its head is not ours: everything we posted after our
                    // entry there went on a history HQ never saw.
                    return self.halt_event(SyncError::Fork { seq: applied.seq });
                }
                self.acked = self.acked.max(applied.seq);
                self.next_send = applied.seq + 1;
                self.state = BranchState::Streaming;
                self.progress_at_ms = now_ms;
                Ok(Some(BranchEvent::Resumed { applied: applied.seq, profile: profile.map(Box::new) }))
            }
            Message::Ack { applied } => {
                if self.state != BranchState::Streaming {
                    return Err(SyncError::Protocol("ack before resume".into()));
                }
                if applied > self.head.seq {
                    return Err(SyncError::Protocol(format!("ack of {applied} beyond our head {}", self.head.seq)));
                }
                let inflight_before = self.inflight.len();
                while self.inflight.front().is_some_and(|&(_, last)| last <= applied) {
                    self.inflight.pop_front();
                }
                if self.inflight.len() < inflight_before {
                    self.progress_at_ms = now_ms;
                }
                if applied <= self.acked {
                    return Ok(None);
                }
                self.acked = applied;
                self.progressed = true;
                self.progress_at_ms = now_ms;
                self.next_send = self.next_send.max(applied + 1);
                Ok(Some(BranchEvent::Acked { applied }))
            }
            Message::ResendFrom { from } => {
                if self.state != BranchState::Streaming || from == 0 || from > self.head.seq + 1 {
                    return Err(SyncError::Protocol(format!("resend from {from} makes no sense at head {}", self.head.seq)));
                }
                // HQ holds everything before `from` durably, so that much is acked.
                let applied = from - 1;
                self.acked = self.acked.max(applied);
                self.inflight.clear();
                self.next_send = from;
                self.progress_at_ms = now_ms;
                Ok(Some(BranchEvent::Resend { from }))
            }
            Message::Profile { profile } => {
                if self.state != BranchState::Streaming {
                    return Err(SyncError::Protocol("profile before resume".into()));
                }
                if profile.branch != self.branch {
                    return Err(SyncError::Protocol(format!("profile for branch {} sent to {}", profile.branch, self.branch)));
                }
                Ok(Some(BranchEvent::Profile(Box::new(profile))))
            }
            Message::Down(bytes) => {
                if self.state != BranchState::Streaming {
                    return Err(SyncError::Protocol("down message before resume".into()));
                }
                Ok(Some(BranchEvent::Down(bytes)))
            }
            Message::DraftAck { id } => {
                if self.state != BranchState::Streaming {
                    return Err(SyncError::Protocol("draft ack before resume".into()));
                }
                Ok(Some(BranchEvent::DraftAcked { id }))
            }
            Message::Reject { code, text } => {
                self.link_lost(now_ms);
                match code {
                    // HQ holds more of our history than we do, or a different one: the
                    // same disagreement as found on resume.
                    RejectCode::BranchBehind | RejectCode::Fork => self.halt_event(SyncError::Rejected { code, text }),
                    _ => Err(SyncError::Rejected { code, text }),
                }
            }
            other => Err(SyncError::Protocol(format!("unexpected message from HQ: {}", message_name(&other)))),
        }
    }

    /// The next batch to send, if the window allows and there is something to send.
    #[must_use]
    pub fn poll_batch(&self) -> Option<SendPlan> {
        if self.state != BranchState::Streaming || self.inflight.len() >= self.limits.inflight_batches_max || self.next_send > self.head.seq
        {
            return None;
        }
        Some(SendPlan { from: self.next_send, entries_max: self.limits.batch_entries_max })
    }

    /// The agent built and sent entries `first..=last` for the plan it got, at `now_ms`.
    pub fn batch_sent(&mut self, now_ms: u64, first: u64, last: u64) {
        assert_eq!(first, self.next_send, "batches go out in order");
        assert!(last >= first && last <= self.head.seq);
        if self.inflight.is_empty() {
            // The stall clock runs only while something awaits an ack.
            self.progress_at_ms = now_ms;
        }
        self.inflight.push_back((first, last));
        self.next_send = last + 1;
    }

    pub fn limits(&self) -> SyncLimits {
        self.limits
    }
}

/// What HQ knows about one enrolled branch, fetched before every message is handled, so
/// it is small: the profile itself (the whole catalog) is fetched only to be sent.
#[derive(Clone, Debug)]
pub struct BranchView {
    pub key: VerifyingKey,
    pub head: ChainHead,
    pub profile_version: u64,
}

/// What HQ must look up before it hands a message to the session ([`HqSession::needs`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HqNeeds {
    /// The branch the message is about: the one a hello names, or the session's.
    pub branch: Option<BranchCode>,
    /// For a batch: the seq of its last entry as its (not yet verified) body claims, whose
    /// held hash decides whether a batch HQ already holds is a duplicate or a fork.
    pub held_seq: Option<u64>,
    /// For a hello: the profile version the branch holds; the profile is fetched only if
    /// HQ's differs.
    pub profile_unless: Option<u64>,
}

/// What HQ holds that one message needs, fetched before the step: plain data, so the
/// session reads nothing while it decides.
#[derive(Clone, Debug, Default)]
pub struct HqFacts {
    /// The branch, if it is enrolled.
    pub view: Option<BranchView>,
    /// The hash HQ holds (at or below its head) for [`HqNeeds::held_seq`].
    pub held: Option<(u64, EntryHash)>,
    /// The branch's current profile, if [`HqNeeds::profile_unless`] asked for it.
    pub profile: Option<BranchProfile>,
}

/// HQ's stored state as the fetch before a step reads it ([`HqFacts::fetch`]); the
/// session itself never calls it.
pub trait HqContext {
    fn branch(&self, code: &BranchCode) -> Option<BranchView>;
    /// The branch's current profile (scope, catalog, credit limits), to send it.
    fn profile(&self, code: &BranchCode) -> Option<BranchProfile>;
    /// Hash of the entry HQ holds for `seq` of `branch`, if any.
    fn held_hash(&self, code: &BranchCode, seq: u64) -> Option<EntryHash>;
}

impl HqFacts {
    /// Looks up what `needs` names, and nothing else.
    pub fn fetch(needs: &HqNeeds, ctx: &dyn HqContext) -> HqFacts {
        let Some(branch) = &needs.branch else { return HqFacts::default() };
        let view = ctx.branch(branch);
        let held = needs.held_seq.and_then(|seq| ctx.held_hash(branch, seq).map(|h| (seq, h)));
        let profile = match (&view, needs.profile_unless) {
            (Some(v), Some(held_version)) if v.profile_version != held_version => ctx.profile(branch),
            _ => None,
        };
        HqFacts { view, held, profile }
    }
}

/// What HQ must do next.
#[derive(Debug)]
pub enum HqStep {
    /// Send this, nothing else to do.
    Reply(Message),
    /// Apply these new entries durably (one atomic write), then send
    /// `HqSession::applied(new_head)`. Send nothing before the write is flushed.
    Apply { branch: BranchCode, entries: Vec<VerifiedEntry>, new_head: ChainHead, batch: SignedBatch, batch_first_seq: u64 },
    /// Refused: send `reply`, log and count `code` for the branch (if known), apply
    /// nothing. `fatal` means close the connection afterwards.
    Refuse { branch: Option<BranchCode>, code: RejectCode, reply: Message, fatal: bool },
    /// The branch applied down messages up to `seq` durably: record the ack (nothing to
    /// reply; the next window follows from [`HqSession::down_window`]).
    DownAcked { branch: BranchCode, seq: u64 },
    /// A draft for approval, verified against the branch's enrolled key: store it durably
    /// (idempotent per id), then send `DraftAck { id }`. Send nothing before the flush.
    StoreDraft { branch: BranchCode, draft: Box<crate::approval::DraftUp> },
}

/// HQ side of one connection.
#[derive(Debug, Default)]
pub struct HqSession {
    branch: Option<BranchCode>,
    /// Profile version the branch holds, as far as this session knows.
    profile_version: Option<u64>,
    /// Down messages: the highest the branch acked on this connection, and the highest sent.
    down_acked: u64,
    down_sent: u64,
}

impl HqSession {
    pub fn branch(&self) -> Option<&BranchCode> {
        self.branch.as_ref()
    }

    /// What HQ must fetch ([`HqFacts::fetch`]) before handing `msg` to [`Self::handle`].
    pub fn needs(&self, msg: &Message) -> HqNeeds {
        match msg {
            Message::Hello { branch, profile_version, .. } => {
                HqNeeds { branch: Some(*branch), held_seq: None, profile_unless: Some(*profile_version) }
            }
            // The claimed last seq is read from the body before the signature is checked:
            // it only picks which stored hash to look up; `handle` decides nothing until
            // the batch is verified, and then compares seqs as well as hashes.
            Message::Batch(batch) => HqNeeds { branch: self.branch, held_seq: claimed_last_seq(batch), profile_unless: None },
            // The enrolled key, to verify the draft's signature.
            Message::Draft(_) => HqNeeds { branch: self.branch, held_seq: None, profile_unless: None },
            _ => HqNeeds::default(),
        }
    }

    /// Decides what to do with `msg`, given what HQ fetched for it (see [`Self::needs`]).
    pub fn handle(&mut self, msg: Message, facts: HqFacts) -> HqStep {
        match msg {
            Message::Hello { branch, head, profile_version, down_applied, .. } => {
                let Some(view) = facts.view else {
                    return refuse(
                        None,
                        RejectCode::UnknownBranch,
                        format!("branch {branch} is not enrolled at this HQ; enroll it with a token from `hq branch add`"),
                        true,
                    );
                };
                if head.seq < view.head.seq {
                    return refuse(
                        Some(branch),
                        RejectCode::BranchBehind,
                        format!(
                            "HQ has applied up to seq {} but the branch journal ends at {}: restored from an old copy?",
                            view.head.seq, head.seq
                        ),
                        true,
                    );
                }
                self.branch = Some(branch);
                let profile = if profile_version == view.profile_version { None } else { facts.profile };
                self.profile_version = Some(profile.as_ref().map_or(view.profile_version, |p| p.version));
                self.down_acked = down_applied;
                self.down_sent = down_applied;
                HqStep::Reply(Message::Resume { applied: view.head, profile })
            }
            Message::Batch(batch) => self.batch(batch, facts),
            Message::DownAck { seq } => {
                let Some(branch) = self.branch else {
                    return refuse(None, RejectCode::OutOfOrder, "down ack before hello".to_string(), true);
                };
                if seq > self.down_sent {
                    let text = format!("down ack for {seq} but only up to {} was sent", self.down_sent);
                    return refuse(Some(branch), RejectCode::OutOfOrder, text, true);
                }
                self.down_acked = self.down_acked.max(seq);
                HqStep::DownAcked { branch, seq }
            }
            Message::Draft(bytes) => self.draft(bytes, facts),
            other => refuse(self.branch, RejectCode::OutOfOrder, format!("unexpected {} from a branch", message_name(&other)), true),
        }
    }

    fn draft(&mut self, bytes: Vec<u8>, facts: HqFacts) -> HqStep {
        use crate::approval::{DraftError, SignedDraft};
        let Some(branch) = self.branch else {
            return refuse(None, RejectCode::OutOfOrder, "draft before hello".to_string(), true);
        };
        let Some(view) = facts.view else {
            return refuse(Some(branch), RejectCode::UnknownBranch, format!("branch {branch} is no longer enrolled"), true);
        };
        match SignedDraft::from_bytes(&bytes).and_then(|s| s.open(&branch, &view.key)) {
            Ok(up) => HqStep::StoreDraft { branch, draft: Box::new(up) },
            Err(e) => {
                let code = match &e {
                    DraftError::Forged { .. } => RejectCode::BadSignature,
                    DraftError::UnsupportedVersion { .. } => RejectCode::UnsupportedVersion,
                    _ => RejectCode::Malformed,
                };
                refuse(Some(branch), code, e.to_string(), false)
            }
        }
    }

    fn batch(&mut self, batch: SignedBatch, facts: HqFacts) -> HqStep {
        let Some(branch) = self.branch else {
            return refuse(None, RejectCode::OutOfOrder, "batch before hello".to_string(), true);
        };
        let Some(view) = facts.view else {
            return refuse(Some(branch), RejectCode::UnknownBranch, format!("branch {branch} is no longer enrolled"), true);
        };
        let entries = match batch.open(&branch, &view.key) {
            Ok(e) => e,
            Err(e) => {
                let code = match &e {
                    BatchError::BadSignature { .. } => RejectCode::BadSignature,
                    BatchError::UnsupportedVersion { .. } => RejectCode::UnsupportedVersion,
                    BatchError::Chain(crate::error::ChainError::Fork { .. }) => RejectCode::Fork,
                    _ => RejectCode::Malformed,
                };
                return refuse(Some(branch), code, e.to_string(), false);
            }
        };
        match place_run(view.head, &entries) {
            Err(e) => refuse(Some(branch), RejectCode::Fork, e.to_string(), false),
            Ok(Placement::Gap { from }) => HqStep::Reply(Message::ResendFrom { from }),
            Ok(Placement::AllHeld { last, last_hash }) => match facts.held {
                Some((seq, h)) if seq == last && h == last_hash => HqStep::Reply(Message::Ack { applied: view.head.seq }),
                _ => refuse(
                    Some(branch),
                    RejectCode::Fork,
                    format!("entry {last} differs from the one HQ holds (replayed or forged history)"),
                    false,
                ),
            },
            Ok(Placement::Extends { skip }) => {
                let mut entries = entries;
                let batch_first_seq = entries[0].entry.seq;
                entries.drain(..skip);
                let last = entries.last().expect("Extends has at least one new entry");
                let new_head = ChainHead { seq: last.entry.seq, hash: last.hash };
                HqStep::Apply { branch, entries, new_head, batch, batch_first_seq }
            }
        }
    }

    /// The profile to push if HQ's version moved past what this session has sent; the
    /// server calls this when it learns of a change (HQ's memory only, no stored entries).
    pub fn profile_update(&mut self, ctx: &dyn HqContext) -> Option<Message> {
        let branch = self.branch.as_ref()?;
        let view = ctx.branch(branch)?;
        if self.profile_version == Some(view.profile_version) {
            return None;
        }
        let profile = ctx.profile(branch)?;
        self.profile_version = Some(profile.version);
        Some(Message::Profile { profile })
    }

    /// The highest down message the branch said it applied on this connection (in its
    /// hello or a `DownAck`): HQ records it as acked before sending more.
    pub fn down_acked(&self) -> u64 {
        self.down_acked
    }

    /// The down messages to send now from `queue` (HQ's queue for this session's branch):
    /// those after what was sent, while at most [`DOWN_WINDOW_MAX`] are unacked.
    #[must_use]
    pub fn down_window(&mut self, queue: &DownQueue) -> Vec<Message> {
        if self.branch != Some(queue.branch()) {
            return Vec::new();
        }
        let acked = self.down_acked.max(queue.acked_seq());
        let limit = acked.saturating_add(DOWN_WINDOW_MAX as u64);
        let mut out = Vec::new();
        for (seq, signed) in queue.pending_from(self.down_sent.max(acked)) {
            if seq > limit {
                break;
            }
            out.push(Message::Down(signed.to_bytes()));
            self.down_sent = seq;
        }
        out
    }

    /// The write of an `Apply` is durable: acknowledge it.
    pub fn applied(&self, new_head: ChainHead) -> Message {
        Message::Ack { applied: new_head.seq }
    }
}

/// The seq of a batch's last entry as its unverified body claims, if it decodes.
fn claimed_last_seq(batch: &SignedBatch) -> Option<u64> {
    let body = crate::batch::decode_body(&batch.body).ok()?;
    crate::journal::JournalEntry::decode(body.entries.last()?).ok().map(|e| e.seq)
}

fn refuse(branch: Option<BranchCode>, code: RejectCode, text: String, fatal: bool) -> HqStep {
    HqStep::Refuse { branch, code, reply: Message::reject(code, text), fatal }
}

fn message_name(m: &Message) -> &'static str {
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
