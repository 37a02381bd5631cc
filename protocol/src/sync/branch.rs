//! The branch side of the exchange: [`BranchSync`], its states, events and timers.
//! Must not: hold HQ's view of anything (that is `hq`), read a clock or touch a socket.

use super::*;

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
