//! HQ's side of the exchange: [`HqSession`] and the facts it decides on ([`HqFacts`],
//! fetched before each step), and the [`HqStep`] HQ carries out.
//! Must not: read HQ's store itself (the facts come in), read a clock or touch a socket.

use super::*;

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
